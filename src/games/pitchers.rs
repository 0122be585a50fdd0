//! Starting pitchers: Retrosheet pitcher ids, a starter's line in one game, and the reader of
//! `data/pitchers` (`starters_YYYY.csv[.gz]`, one row per game with both starters and their
//! lines; `lahman_pitching_*.csv[.gz]`, every pitcher's season totals).
//!
//! A starters row whose game is not in the games is skipped (the files have the single-game
//! wild-card rounds retrosplits lacks); any row that cannot be read stops the load with an
//! error naming the file and line.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::csv_rows::{CsvRow, read_rows};
use super::retrosheet::{DataError, open_data_file};
use super::{Game, GameId};

/// A Retrosheet person id: four letters of the surname (`-` pads short ones), the first
/// initial, and three digits, e.g. `glast001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct PitcherId([u8; 8]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Retrosheet pitcher id (such as glast001)")]
pub struct PitcherIdError(pub String);

impl PitcherId {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a PitcherId holds ASCII; this is a bug")
    }
}

impl FromStr for PitcherId {
    type Err = PitcherIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let well_formed = |id: &[u8; 8]| {
            id[..4].iter().all(|b| b.is_ascii_lowercase() || *b == b'-')
                && id[4].is_ascii_lowercase()
                && id[5..].iter().all(u8::is_ascii_digit)
        };
        match <[u8; 8]>::try_from(s.as_bytes()) {
            Ok(id) if well_formed(&id) => Ok(Self(id)),
            _ => Err(PitcherIdError(s.to_owned())),
        }
    }
}

impl TryFrom<String> for PitcherId {
    type Error = PitcherIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl Serialize for PitcherId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for PitcherId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one pitcher did in one game.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PitcherLine {
    pub outs: u16,
    pub batters_faced: u16,
    pub hits: u16,
    pub home_runs: u16,
    pub walks: u16,
    pub strikeouts: u16,
    pub hit_by_pitch: u16,
    pub runs: u16,
    pub earned_runs: u16,
    /// Box scores do not record pitches.
    pub pitches: Option<u16>,
}

impl PitcherLine {
    /// Every count but pitches, in one order: outs, batters faced, hits, home runs, walks,
    /// strikeouts, hit batters, runs, earned runs (stored rows and digests use it).
    pub fn counts(&self) -> [u16; 9] {
        [
            self.outs,
            self.batters_faced,
            self.hits,
            self.home_runs,
            self.walks,
            self.strikeouts,
            self.hit_by_pitch,
            self.runs,
            self.earned_runs,
        ]
    }

    /// The line of [`PitcherLine::counts`] and a pitch count.
    pub fn from_counts(counts: [u16; 9], pitches: Option<u16>) -> Self {
        let [
            outs,
            batters_faced,
            hits,
            home_runs,
            walks,
            strikeouts,
            hit_by_pitch,
            runs,
            earned_runs,
        ] = counts;
        Self {
            outs,
            batters_faced,
            hits,
            home_runs,
            walks,
            strikeouts,
            hit_by_pitch,
            runs,
            earned_runs,
            pitches,
        }
    }
}

/// A game's starting pitcher, with his line when the source has it (the 2024 regular season
/// names its starters but has no lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    pub pitcher: PitcherId,
    pub line: Option<PitcherLine>,
}

/// One pitcher's totals over one regular season, every team and role together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeasonTotals {
    pub starts: u32,
    pub outs: u32,
    pub batters_faced: u32,
    pub home_runs: u32,
    pub walks: u32,
    pub hit_by_pitch: u32,
    pub strikeouts: u32,
    pub earned_runs: u32,
}

/// Everything `data/pitchers` holds.
#[derive(Debug, Clone, Default)]
pub struct Pitchers {
    /// Per game: the home starter, then the visitors'.
    starts: HashMap<GameId, [Start; 2]>,
    totals: HashMap<(PitcherId, i32), SeasonTotals>,
}

impl Pitchers {
    /// A pitcher's regular-season totals of `season`.
    pub fn totals(&self, pitcher: PitcherId, season: i32) -> Option<&SeasonTotals> {
        self.totals.get(&(pitcher, season))
    }

    /// Gives each game the starters the files name for it; the number of games given them.
    pub fn attach(&self, games: &mut [Game]) -> usize {
        let mut attached = 0;
        for game in games {
            if let Some([home, away]) = self.starts.get(&game.id) {
                game.home.starter = Some(*home);
                game.away.starter = Some(*away);
                attached += 1;
            }
        }
        attached
    }
}

/// The columns of a starters row that bullpen uses.
#[derive(Debug, Deserialize)]
struct StartsRow {
    #[serde(rename = "game_id")]
    game: GameId,
    #[serde(rename = "home_sp_id")]
    home: PitcherId,
    #[serde(rename = "away_sp_id")]
    away: PitcherId,
}

/// The columns of a Lahman row that bullpen uses.
#[derive(Debug, Deserialize)]
struct TotalsRow {
    #[serde(rename = "yearID")]
    season: i32,
    #[serde(rename = "retroID")]
    pitcher: PitcherId,
    #[serde(rename = "GS")]
    starts: u32,
    #[serde(rename = "IPouts")]
    outs: u32,
    #[serde(rename = "BFP")]
    batters_faced: u32,
    #[serde(rename = "HR")]
    home_runs: u32,
    #[serde(rename = "BB")]
    walks: u32,
    #[serde(rename = "HBP")]
    hit_by_pitch: u32,
    #[serde(rename = "SO")]
    strikeouts: u32,
    #[serde(rename = "ER")]
    earned_runs: u32,
}

/// Reads `dir`: every `starters_YYYY.csv[.gz]` and `lahman_pitching_*.csv[.gz]`.
pub fn load_pitchers(dir: &Path) -> Result<Pitchers, DataError> {
    let mut pitchers = Pitchers::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| DataError::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    files.sort();
    let mut any = false;
    for path in files {
        let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        let stem = name.strip_suffix(".gz").unwrap_or(name);
        if !Path::new(stem)
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"))
        {
            continue;
        }
        if stem.starts_with("starters_") {
            read_rows(&path, open_data_file(&path)?, |row| {
                let starts: StartsRow = row.read()?;
                pitchers
                    .add_starts(&starts, &row)
                    .map_err(|reason| (row.line, reason))
            })?;
            any = true;
        } else if stem.starts_with("lahman_pitching_") {
            read_rows(&path, open_data_file(&path)?, |row| {
                pitchers.add_totals(&row.read()?);
                Ok(())
            })?;
            any = true;
        }
    }
    if any {
        Ok(pitchers)
    } else {
        Err(DataError::Empty(dir.to_path_buf()))
    }
}

impl Pitchers {
    fn add_starts(&mut self, row: &StartsRow, record: &CsvRow<'_>) -> Result<(), String> {
        let line = |side: &str| -> Result<Option<PitcherLine>, String> {
            let count = |field: &str| -> Result<Option<u16>, String> {
                let column = format!("{side}_sp_{field}");
                match record.get(&column) {
                    None | Some("") => Ok(None),
                    Some(text) => text
                        .parse()
                        .map(Some)
                        .map_err(|_| format!("{column} is `{text}`, not a count")),
                }
            };
            let Some(outs) = count("outs")? else {
                return Ok(None);
            };
            let required =
                |field: &str| count(field)?.ok_or_else(|| format!("{side}_sp_{field} is missing"));
            Ok(Some(PitcherLine {
                outs,
                batters_faced: required("bf")?,
                hits: required("h")?,
                home_runs: required("hr")?,
                walks: required("bb")?,
                strikeouts: required("so")?,
                hit_by_pitch: required("hbp")?,
                runs: required("r")?,
                earned_runs: required("er")?,
                pitches: count("pitches")?,
            }))
        };
        let home = Start {
            pitcher: row.home,
            line: line("home")?,
        };
        let away = Start {
            pitcher: row.away,
            line: line("away")?,
        };
        self.starts.insert(row.game, [home, away]);
        Ok(())
    }

    fn add_totals(&mut self, row: &TotalsRow) {
        let totals = self.totals.entry((row.pitcher, row.season)).or_default();
        totals.starts += row.starts;
        totals.outs += row.outs;
        totals.batters_faced += row.batters_faced;
        totals.home_runs += row.home_runs;
        totals.walks += row.walks;
        totals.hit_by_pitch += row.hit_by_pitch;
        totals.strikeouts += row.strikeouts;
        totals.earned_runs += row.earned_runs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pitcher_ids_are_retrosheet_person_ids() {
        for id in ["glast001", "oh--s001", "jax-g001"] {
            assert_eq!(id.parse::<PitcherId>().expect(id).as_str(), id);
        }
        for bad in [
            "",
            "glast01",
            "GLAST001",
            "glast0011",
            "glas1001",
            "g'ast001",
        ] {
            assert!(bad.parse::<PitcherId>().is_err(), "{bad}");
        }
    }
}
