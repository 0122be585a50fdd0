//! Starting pitchers: Retrosheet pitcher ids, a starter's line in one game, and the reader of
//! `data/pitchers` (`starters_YYYY.csv[.gz]`, one row per game with both starters and their
//! lines; `lahman_pitching_*.csv[.gz]`, every pitcher's season totals).
//!
//! A starters row whose game is not in the games is skipped (the files have the single-game
//! wild-card rounds retrosplits lacks); any row that cannot be read stops the load with an
//! error naming the file and line.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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

/// A pitcher as `GET /api/v1/pitchers` lists him.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pitcher {
    pub name: String,
    pub throws: Option<char>,
}

/// Everything `data/pitchers` holds.
#[derive(Debug, Clone, Default)]
pub struct Pitchers {
    /// Per game: the home starter, then the visitors'.
    starts: HashMap<GameId, [Start; 2]>,
    totals: HashMap<(PitcherId, i32), SeasonTotals>,
    people: HashMap<PitcherId, Pitcher>,
    /// Who pitched for a team in a season: its starters and anyone in the season totals.
    staffs: HashMap<(TeamCode, i32), BTreeSet<PitcherId>>,
}

impl Pitchers {
    /// Each game's starters, home first, as the files give them.
    pub fn starts(&self, id: GameId) -> Option<&[Start; 2]> {
        self.starts.get(&id)
    }

    /// A pitcher's regular-season totals of `season`.
    pub fn totals(&self, pitcher: PitcherId, season: i32) -> Option<&SeasonTotals> {
        self.totals.get(&(pitcher, season))
    }

    pub fn person(&self, pitcher: PitcherId) -> Option<&Pitcher> {
        self.people.get(&pitcher)
    }

    /// The pitchers of a franchise in a season, by id.
    pub fn staff(&self, team: TeamCode, season: i32) -> impl Iterator<Item = PitcherId> + '_ {
        self.staffs
            .get(&(team.franchise(), season))
            .into_iter()
            .flatten()
            .copied()
    }

    /// The seasons any staff is known for, oldest first.
    pub fn seasons(&self) -> BTreeSet<i32> {
        self.staffs.keys().map(|(_, season)| *season).collect()
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
    game_id: GameId,
    home_team: TeamCode,
    away_team: TeamCode,
    home_sp_id: PitcherId,
    home_sp_name: String,
    away_sp_id: PitcherId,
    away_sp_name: String,
}

/// The columns of a Lahman row that bullpen uses.
#[derive(Debug, Deserialize)]
struct TotalsRow {
    #[serde(rename = "yearID")]
    season: i32,
    #[serde(rename = "retroID")]
    pitcher: PitcherId,
    #[serde(rename = "nameFirst")]
    first: String,
    #[serde(rename = "nameLast")]
    last: String,
    throws: String,
    #[serde(rename = "teamID")]
    team: String,
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

/// Lahman's team ids where they differ from Retrosheet's codes.
fn retrosheet_team(lahman: &str) -> Option<TeamCode> {
    let code = match lahman {
        "CHW" => "CHA",
        "CHC" => "CHN",
        "KCR" => "KCA",
        "LAA" => "ANA",
        "LAD" => "LAN",
        "NYY" => "NYA",
        "NYM" => "NYN",
        "SDP" => "SDN",
        "SFG" => "SFN",
        "STL" => "SLN",
        "TBR" | "TBD" => "TBA",
        "WSN" => "WAS",
        "FLA" => "FLO",
        other => other,
    };
    code.parse().ok()
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
            read_csv(&path, |row| {
                let starts: StartsRow = row.read()?;
                pitchers
                    .add_starts(&starts, &row)
                    .map_err(|reason| (row.line, reason))
            })?;
            any = true;
        } else if stem.starts_with("lahman_pitching_") {
            read_csv(&path, |row| {
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

/// One CSV row and the file's header.
struct Row<'a> {
    line: u64,
    headers: &'a csv::StringRecord,
    record: csv::StringRecord,
}

impl Row<'_> {
    fn read<T: serde::de::DeserializeOwned>(&self) -> Result<T, (u64, String)> {
        self.record
            .deserialize(Some(self.headers))
            .map_err(|e| (self.line, format!("bad value: {e}")))
    }

    fn get(&self, column: &str) -> Option<&str> {
        let at = self.headers.iter().position(|name| name == column)?;
        self.record.get(at)
    }
}

fn read_csv(
    path: &Path,
    mut each: impl FnMut(Row<'_>) -> Result<(), (u64, String)>,
) -> Result<(), DataError> {
    let malformed = |line: u64, reason: String| DataError::Malformed {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut csv = csv::Reader::from_reader(open_data_file(path)?);
    let headers = csv
        .headers()
        .map_err(|e| malformed(1, format!("unreadable header: {e}")))?
        .clone();
    for record in csv.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            malformed(line, format!("unreadable row: {e}"))
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let row = Row {
            line,
            headers: &headers,
            record,
        };
        each(row).map_err(|(line, reason)| malformed(line, reason))?;
    }
    Ok(())
}

impl Pitchers {
    fn add_starts(&mut self, row: &StartsRow, record: &Row<'_>) -> Result<(), String> {
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
            pitcher: row.home_sp_id,
            line: line("home")?,
        };
        let away = Start {
            pitcher: row.away_sp_id,
            line: line("away")?,
        };
        let season = chrono::Datelike::year(&row.game_id.date());
        for (pitcher, name, team) in [
            (row.home_sp_id, &row.home_sp_name, row.home_team),
            (row.away_sp_id, &row.away_sp_name, row.away_team),
        ] {
            self.people.entry(pitcher).or_insert_with(|| Pitcher {
                name: name.clone(),
                throws: None,
            });
            self.staffs
                .entry((team.franchise(), season))
                .or_default()
                .insert(pitcher);
        }
        self.starts.insert(row.game_id, [home, away]);
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
        let person = self.people.entry(row.pitcher).or_insert_with(|| Pitcher {
            name: format!("{} {}", row.first, row.last),
            throws: None,
        });
        person.throws = row.throws.chars().next();
        if let Some(team) = retrosheet_team(&row.team) {
            self.staffs
                .entry((team.franchise(), row.season))
                .or_default()
                .insert(row.pitcher);
        }
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
