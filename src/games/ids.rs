//! Identifiers parsed at the edge: a value of these types is always well formed.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A Retrosheet team code: three upper-case letters or digits, e.g. `NYA`, `LAN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
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

impl From<TeamCode> for String {
    fn from(code: TeamCode) -> Self {
        code.as_str().to_owned()
    }
}

impl fmt::Display for TeamCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Retrosheet game id: home team, date and doubleheader number, e.g. `NYA202404050`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
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
        NaiveDate::parse_from_str(&self.as_str()[3..11], "%Y%m%d")
            .expect("a GameId holds a valid date; this is a bug")
    }

    pub fn number(&self) -> u8 {
        self.0[11] - b'0'
    }
}

impl FromStr for GameId {
    type Err = GameIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || GameIdError(s.to_owned());
        let bytes: [u8; 12] = s.as_bytes().try_into().map_err(|_| error())?;
        if !bytes.is_ascii() {
            return Err(error());
        }
        let team_ok = bytes[..3]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        let date_ok = NaiveDate::parse_from_str(&s[3..11], "%Y%m%d").is_ok();
        if team_ok && date_ok && bytes[11].is_ascii_digit() {
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

impl From<GameId> for String {
    fn from(id: GameId) -> Self {
        id.as_str().to_owned()
    }
}

impl fmt::Display for GameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
