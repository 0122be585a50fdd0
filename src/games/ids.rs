//! Identifiers parsed at the edge: a value of these types is always well formed.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A Retrosheet team code: three upper-case letters or digits, e.g. `NYA`, `LAN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct TeamCode([u8; 3]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a team code (three letters such as NYA or BOS)")]
pub struct TeamCodeError(pub String);

impl TeamCode {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a TeamCode holds ASCII; this is a bug")
    }

    /// The code under which a franchise's history continues: the Marlins played as `FLO`
    /// until 2011 and as `MIA` since.
    #[must_use]
    pub fn franchise(self) -> Self {
        match &self.0 {
            b"FLO" => Self(*b"MIA"),
            _ => self,
        }
    }

    /// This Lahman `teamID` as Retrosheet codes it: the same but for the Angels (`LAA`).
    #[must_use]
    pub(super) fn lahman_to_retrosheet(self) -> Self {
        match &self.0 {
            b"LAA" => Self(*b"ANA"),
            _ => self,
        }
    }
}

impl FromStr for TeamCode {
    type Err = TeamCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        match <[u8; 3]>::try_from(upper.as_bytes()) {
            Ok(code) if code.iter().all(u8::is_ascii_alphanumeric) => Ok(Self(code)),
            _ => Err(TeamCodeError(s.to_owned())),
        }
    }
}

impl TryFrom<String> for TeamCode {
    type Error = TeamCodeError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

// Written by hand so answers serialize ids without allocating.
impl Serialize for TeamCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for TeamCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Retrosheet game id: home team, date and doubleheader number, e.g. `NYA202404050`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct GameId([u8; 12]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a game id (home team, YYYYMMDD and game number, e.g. NYA202404050)")]
pub struct GameIdError(pub String);

impl GameId {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a GameId holds ASCII; this is a bug")
    }

    pub fn home(&self) -> TeamCode {
        TeamCode([self.0[0], self.0[1], self.0[2]])
    }

    pub fn date(&self) -> NaiveDate {
        id_date(&self.0[3..11]).expect("a GameId holds a valid date; this is a bug")
    }

    pub fn number(&self) -> u8 {
        self.0[11] - b'0'
    }

    /// The id of the single game (number 0) `home` plays at home on `date`, as a scheduled
    /// game is named when it has no id yet.
    pub fn single(home: TeamCode, date: NaiveDate) -> Self {
        Self::new(home, date, 0)
    }

    /// The id of game `number` (0 for a single game, 1 or 2 in a doubleheader; a digit) that
    /// `home` plays at home on `date`. A year outside 0..=9999 has no id: callers check dates
    /// against the data first.
    pub fn new(home: TeamCode, date: NaiveDate, number: u8) -> Self {
        use chrono::Datelike;
        let year = u32::try_from(date.year()).unwrap_or(0);
        let digits = [
            year / 1000,
            year / 100,
            year / 10,
            year,
            date.month() / 10,
            date.month(),
            date.day() / 10,
            date.day(),
        ];
        let mut bytes = [b'0'; 12];
        bytes[..3].copy_from_slice(&home.0);
        for (byte, digit) in bytes[3..11].iter_mut().zip(digits) {
            *byte = b'0' + u8::try_from(digit % 10).unwrap_or(0);
        }
        bytes[11] = b'0' + number % 10;
        Self(bytes)
    }
}

/// The date in a game id's `YYYYMMDD`, parsed by hand: this runs on every request.
fn id_date(digits: &[u8]) -> Option<NaiveDate> {
    let number = |range: std::ops::Range<usize>| {
        digits[range].iter().try_fold(0u32, |value, &b| {
            b.is_ascii_digit().then(|| value * 10 + u32::from(b - b'0'))
        })
    };
    let year = i32::try_from(number(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, number(4..6)?, number(6..8)?)
}

impl FromStr for GameId {
    type Err = GameIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || GameIdError(s.to_owned());
        let bytes: [u8; 12] = s.as_bytes().try_into().map_err(|_| error())?;
        let team_ok = bytes[..3]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        // The game's number is 0 (a single game), 1 or 2 (a doubleheader), as everywhere else.
        if team_ok && id_date(&bytes[3..11]).is_some() && (b'0'..=b'2').contains(&bytes[11]) {
            Ok(Self(bytes))
        } else {
            Err(error())
        }
    }
}

impl TryFrom<String> for GameId {
    type Error = GameIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl Serialize for GameId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for GameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A date written exactly `YYYY-MM-DD`: chrono alone also takes `2025-4-5` and `+10000-01-01`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let shape = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    shape
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_game_id_is_built_from_team_and_date() {
        let home: TeamCode = "KCA".parse().expect("team");
        let date = NaiveDate::from_ymd_opt(2024, 4, 10).expect("date");
        assert_eq!(GameId::single(home, date).as_str(), "KCA202404100");
    }

    #[test]
    fn game_ids_parse_and_expose_their_parts() {
        let id: GameId = "NYA202404052".parse().expect("valid id");
        assert_eq!(id.home().as_str(), "NYA");
        assert_eq!(
            id.date(),
            NaiveDate::from_ymd_opt(2024, 4, 5).expect("date")
        );
        assert_eq!(id.number(), 2);
        for bad in [
            "",
            "NYA20240405",
            "NYA2024040500",
            "nya202404050",
            "NYA202413050",
            "NYA20240405x",
            "NYA202404053",
            "MIL202504089",
        ] {
            assert!(bad.parse::<GameId>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn team_codes_are_three_alphanumerics_and_marlins_are_one_franchise() {
        assert_eq!("nya".parse::<TeamCode>().expect("valid").as_str(), "NYA");
        assert!("NY".parse::<TeamCode>().is_err());
        assert!("N-A".parse::<TeamCode>().is_err());
        let flo: TeamCode = "FLO".parse().expect("valid");
        assert_eq!(flo.franchise().as_str(), "MIA");
    }

    #[test]
    fn dates_are_exactly_yyyy_mm_dd() {
        assert_eq!(
            parse_date("2025-04-05"),
            NaiveDate::from_ymd_opt(2025, 4, 5)
        );
        for loose in [
            "2025-4-5",
            "+10000-01-01",
            "2025-02-30",
            "2025-04-05 ",
            " 2025-04-05",
            "2025/04/05",
            "20250405",
            "",
        ] {
            assert_eq!(parse_date(loose), None, "{loose:?}");
        }
    }
}
