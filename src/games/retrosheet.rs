//! Reader for Retrosheet team day-by-day files (`teams-YYYY.csv`, optionally gzip-compressed).
//!
//! Each game appears once per team and once per source (`evt` play-by-play, `box` box score,
//! `ded` deduced). One source is used per game, `evt` first, and the two team rows of that
//! source are joined into one [`Game`]. Any row that cannot be read or joined stops the file
//! with an error naming the file and line: nothing is dropped silently.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;

use super::csv_rows::read_rows;
use super::{Game, GameId, Phase, TeamCode, TeamLine};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Malformed {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("no Retrosheet files (teams-YYYY.csv[.gz]) in {0}")]
    Empty(PathBuf),
}

/// The columns of a day-by-day row that bullpen uses; the others are ignored.
#[derive(Debug, Deserialize)]
struct Row {
    #[serde(rename = "game.key")]
    key: GameId,
    #[serde(rename = "game.source")]
    source: String,
    #[serde(rename = "game.date")]
    date: NaiveDate,
    #[serde(rename = "game.number")]
    number: u8,
    #[serde(rename = "season.phase")]
    phase: String,
    #[serde(rename = "team.alignment")]
    alignment: u8,
    #[serde(rename = "team.key")]
    team: TeamCode,
    #[serde(rename = "opponent.key")]
    opponent: TeamCode,
    #[serde(rename = "B_R")]
    runs: u16,
    #[serde(rename = "B_H")]
    hits: u16,
    #[serde(rename = "B_BB")]
    walks: u16,
    #[serde(rename = "B_HR")]
    home_runs: u16,
    #[serde(rename = "B_SO")]
    strikeouts: u16,
    #[serde(rename = "P_R")]
    runs_allowed: u16,
    #[serde(rename = "P_PITCH")]
    pitches: Option<u16>,
    #[serde(rename = "P_TBF")]
    batters_faced: u16,
}

/// Source preference: a lower rank wins.
fn source_rank(source: &str) -> Option<u8> {
    match source {
        "evt" => Some(0),
        "box" => Some(1),
        "ded" => Some(2),
        _ => None,
    }
}

fn phase(code: &str) -> Option<Phase> {
    match code {
        "R" => Some(Phase::Regular),
        "D" | "L" | "W" | "F" => Some(Phase::Postseason),
        "A" => Some(Phase::AllStar),
        _ => None,
    }
}

/// The `teams-YYYY.csv[.gz]` files in `dir`, oldest season first.
pub fn season_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<(i32, PathBuf)> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".gz").unwrap_or(&name);
            let season = stem
                .strip_prefix("teams-")?
                .strip_suffix(".csv")?
                .parse()
                .ok()?;
            Some((season, entry.path()))
        })
        .collect();
    if files.is_empty() {
        return Err(DataError::Empty(dir.to_path_buf()));
    }
    files.sort();
    Ok(files.into_iter().map(|(_, path)| path).collect())
}

/// Reads every season file in `dir`; games come back in the order they were played (date,
/// then doubleheader number, then id).
pub fn load_dir(dir: &Path) -> Result<Vec<Game>, DataError> {
    let mut games = Vec::new();
    for path in season_files(dir)? {
        games.extend(parse_season(&path)?);
    }
    games.sort_by_key(|game| (game.date, game.number, game.id));
    Ok(games)
}

/// Parses one season file into games, in file order of their first row.
pub fn parse_season(path: &Path) -> Result<Vec<Game>, DataError> {
    parse_reader(path, open_data_file(path)?)
}

/// A data file for reading, decompressed when its name ends in `.gz`.
pub(super) fn open_data_file(path: &Path) -> Result<Box<dyn Read>, DataError> {
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(if path.extension().is_some_and(|ext| ext == "gz") {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    })
}

fn parse_reader(path: &Path, reader: impl Read) -> Result<Vec<Game>, DataError> {
    // Per game id: the best source seen so far and its rows, with their line numbers.
    let mut order: Vec<GameId> = Vec::new();
    let mut rows: HashMap<GameId, (u8, Vec<(u64, Row)>)> = HashMap::new();
    read_rows(path, reader, |record| {
        let line = record.line;
        let row: Row = record.read()?;
        let rank = source_rank(&row.source)
            .ok_or_else(|| (line, format!("unknown game.source `{}`", row.source)))?;
        match rows.get_mut(&row.key) {
            None => {
                order.push(row.key);
                rows.insert(row.key, (rank, vec![(line, row)]));
            }
            Some((best, kept)) if rank < *best => {
                *best = rank;
                *kept = vec![(line, row)];
            }
            Some((best, kept)) if rank == *best => kept.push((line, row)),
            Some(_) => {}
        }
        Ok(())
    })?;

    let malformed = |line: u64, reason: String| DataError::Malformed {
        path: path.to_path_buf(),
        line,
        reason,
    };
    order
        .into_iter()
        .map(|id| {
            let (_, kept) = rows
                .remove(&id)
                .expect("every ordered id has rows; this is a bug");
            join(id, kept).map_err(|(line, reason)| malformed(line, reason))
        })
        .collect()
}

/// Joins the two rows of one game and source, checking that they describe the same game.
fn join(id: GameId, rows: Vec<(u64, Row)>) -> Result<Game, (u64, String)> {
    let first_line = rows[0].0;
    let mut home = None;
    let mut away = None;
    for (line, row) in rows {
        let slot = match row.alignment {
            0 => &mut away,
            1 => &mut home,
            other => return Err((line, format!("team.alignment is {other}, not 0 or 1"))),
        };
        if let Some((earlier, _)) = slot {
            return Err((
                line,
                format!(
                    "game {id} has a second {} row (first at line {earlier})",
                    if row.alignment == 1 {
                        "home"
                    } else {
                        "visitor"
                    }
                ),
            ));
        }
        *slot = Some((line, row));
    }
    let ((home_line, home), (_, away)) = match (home, away) {
        (Some(home), Some(away)) => (home, away),
        (Some(_), None) => return Err((first_line, format!("game {id} has no visitor row"))),
        (None, _) => return Err((first_line, format!("game {id} has no home row"))),
    };
    let consistent = home.team == id.home()
        && home.opponent == away.team
        && away.opponent == home.team
        && home.date == away.date
        && home.date == id.date()
        && home.number == id.number()
        && home.phase == away.phase
        && home.runs == away.runs_allowed
        && away.runs == home.runs_allowed;
    if !consistent {
        return Err((
            home_line,
            format!("the two rows of game {id} disagree (teams, date, phase or runs)"),
        ));
    }
    let phase = phase(&home.phase)
        .ok_or_else(|| (home_line, format!("unknown season.phase `{}`", home.phase)))?;
    Ok(Game {
        id,
        date: home.date,
        number: home.number,
        phase,
        home: team_line(&home),
        away: team_line(&away),
    })
}

fn team_line(row: &Row) -> TeamLine {
    TeamLine {
        team: row.team,
        runs: row.runs,
        hits: row.hits,
        walks: row.walks,
        home_runs: row.home_runs,
        strikeouts: row.strikeouts,
        pitches: row.pitches,
        batters_faced: row.batters_faced,
        starter: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "game.key,game.source,game.date,game.number,site.key,season.phase,team.alignment,team.key,opponent.key,B_R,B_H,B_BB,B_HR,B_SO,P_R,P_PITCH,P_TBF";

    fn parse(body: &str) -> Result<Vec<Game>, DataError> {
        let text = format!("{HEADER}\n{body}");
        parse_reader(Path::new("teams-test.csv"), text.as_bytes())
    }

    #[test]
    fn joins_both_rows_and_prefers_evt_over_box() {
        let games = parse(
            "BAL202403280,box,2024-03-28,0,BAL12,R,0,ANA,BAL,3,2,3,1,14,11,,41\n\
             BAL202403280,box,2024-03-28,0,BAL12,R,1,BAL,ANA,11,10,6,2,5,3,,31\n\
             BAL202403280,evt,2024-03-28,0,BAL12,R,0,ANA,BAL,3,2,3,1,14,11,180,41\n\
             BAL202403280,evt,2024-03-28,0,BAL12,R,1,BAL,ANA,11,10,6,2,5,3,140,31\n",
        )
        .expect("valid rows");
        assert_eq!(games.len(), 1);
        let game = &games[0];
        assert_eq!(game.home.team.as_str(), "BAL");
        assert_eq!(game.away.team.as_str(), "ANA");
        assert_eq!((game.home.runs, game.away.runs), (11, 3));
        assert_eq!(game.home.pitches, Some(140), "the evt row was used");
        assert_eq!(game.home_win(), Some(true));
        assert_eq!(game.phase, Phase::Regular);
    }

    #[test]
    fn a_bad_value_names_file_and_line() {
        let error = parse(
            "BAL202403280,evt,2024-03-28,0,BAL12,R,0,ANA,BAL,3,2,3,1,14,11,180,41\n\
             BAL202403280,evt,2024-03-28,0,BAL12,R,1,BAL,ANA,eleven,10,6,2,5,3,140,31\n",
        )
        .expect_err("runs must be a number");
        let message = error.to_string();
        assert!(
            message.starts_with("teams-test.csv:3: bad value"),
            "{message}"
        );
    }

    #[test]
    fn a_game_missing_a_team_row_is_an_error() {
        let error = parse("BAL202403280,evt,2024-03-28,0,BAL12,R,1,BAL,ANA,11,10,6,2,5,3,140,31\n")
            .expect_err("the visitor row is missing");
        assert_eq!(
            error.to_string(),
            "teams-test.csv:2: game BAL202403280 has no visitor row"
        );
    }

    #[test]
    fn rows_that_disagree_are_an_error() {
        let error = parse(
            "BAL202403280,evt,2024-03-28,0,BAL12,R,0,ANA,BAL,3,2,3,1,14,11,180,41\n\
             BAL202403280,evt,2024-03-28,0,BAL12,R,1,BAL,ANA,11,10,6,2,5,4,140,31\n",
        )
        .expect_err("home allowed 4 but the visitor scored 3");
        assert!(
            error
                .to_string()
                .contains("teams-test.csv:3: the two rows of game BAL202403280 disagree"),
            "{error}"
        );
    }

    #[test]
    fn a_truncated_row_is_an_error_not_a_panic() {
        let error = parse("BAL202403280,evt,2024-03-28\n").expect_err("short row");
        assert!(
            error.to_string().starts_with("teams-test.csv:2:"),
            "{error}"
        );
    }
}
