//! Starting pitchers: Retrosheet pitcher ids, a starter's line in one game, and the reader of
//! `data/pitchers` (`starters_YYYY.csv[.gz]`, one row per game with both starters and their
//! lines; `lahman_pitching_*.csv[.gz]`, every pitcher's season totals).
//!
//! A starters row whose game is not in the games is skipped (the files have the single-game
//! wild-card rounds retrosplits lacks); any row that cannot be read stops the load with an
//! error naming the file and line.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::csv_rows::{CsvRow, read_rows};
use super::retrosheet::{DataError, open_data_file};
use super::{Game, GameId, TeamCode};

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

/// The two starters of a game as a request or the data names them; `None`: not named.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
pub struct Starters {
    /// Retrosheet id; `null`: not named, read as a league-average debut.
    #[schema(value_type = Option<String>, pattern = "^[a-z-]{4}[a-z][0-9]{3}$", example = "glast001")]
    pub home: Option<PitcherId>,
    #[schema(value_type = Option<String>, pattern = "^[a-z-]{4}[a-z][0-9]{3}$", example = "darvy001")]
    pub away: Option<PitcherId>,
}

impl Starters {
    /// The starters a stored game names.
    pub fn of(game: &Game) -> Self {
        Self {
            home: game.home.starter.map(|start| start.pitcher),
            away: game.away.starter.map(|start| start.pitcher),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.home.is_none() && self.away.is_none()
    }
}

/// One pitcher of a team's staff in a season and the games he started for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    pub id: PitcherId,
    /// `None` for a pitcher only posted results name.
    pub name: Option<Arc<str>>,
    pub starts: u32,
}

/// Everything `data/pitchers` holds.
#[derive(Debug, Clone, Default)]
pub struct Pitchers {
    /// Per game: the home starter, then the visitors'.
    starts: HashMap<GameId, [Start; 2]>,
    totals: HashMap<(PitcherId, i32), SeasonTotals>,
    /// Every pitcher the files name, and his name.
    names: HashMap<PitcherId, Arc<str>>,
    /// Per franchise and season: who pitched for it (Lahman), and his games started (`GS`).
    staffs: HashMap<(TeamCode, i32), BTreeMap<PitcherId, u32>>,
}

impl Pitchers {
    /// Whether the files name this pitcher (a start, or a season's totals).
    pub fn knows(&self, pitcher: PitcherId) -> bool {
        self.names.contains_key(&pitcher)
    }

    /// A pitcher's name, as the files give it.
    pub fn name(&self, pitcher: PitcherId) -> Option<&Arc<str>> {
        self.names.get(&pitcher)
    }

    /// Who pitched for `team`'s franchise in `season` by the season totals, with his games
    /// started.
    pub fn staff(&self, team: TeamCode, season: i32) -> impl Iterator<Item = (PitcherId, u32)> {
        self.staffs
            .get(&(team.franchise(), season))
            .into_iter()
            .flatten()
            .map(|(id, starts)| (*id, *starts))
    }

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
    #[serde(rename = "home_sp_name")]
    home_name: String,
    #[serde(rename = "away_sp_name")]
    away_name: String,
}

/// The columns of a Lahman row that bullpen uses.
#[derive(Debug, Deserialize)]
struct TotalsRow {
    #[serde(rename = "yearID")]
    season: i32,
    #[serde(rename = "retroID")]
    pitcher: PitcherId,
    #[serde(rename = "nameFirst")]
    first_name: String,
    #[serde(rename = "nameLast")]
    last_name: String,
    /// Lahman's code: Retrosheet's, but `LAA` for the Angels (`ANA`).
    #[serde(rename = "teamID")]
    team: TeamCode,
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
        for (pitcher, name) in [(row.home, &row.home_name), (row.away, &row.away_name)] {
            self.names
                .entry(pitcher)
                .or_insert_with(|| Arc::from(name.as_str()));
        }
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
        self.names
            .entry(row.pitcher)
            .or_insert_with(|| Arc::from(format!("{} {}", row.first_name, row.last_name)));
        *self
            .staffs
            .entry((row.team.lahman_to_retrosheet().franchise(), row.season))
            .or_default()
            .entry(row.pitcher)
            .or_default() += row.starts;
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
