//! Games as rows of the `games` table, both ways.

use chrono::NaiveDate;
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Row, Transaction};

use super::DbError;
use crate::games::{Game, Phase, PitcherLine, Start, TeamLine};

/// The columns of `games`, in the order rows are written and read.
pub const COLUMNS: &str = "game_id, date, number, phase, home_team, away_team, \
    home_runs, away_runs, home_hits, away_hits, home_walks, away_walks, home_home_runs, \
    away_home_runs, home_strikeouts, away_strikeouts, home_pitches, away_pitches, \
    home_batters_faced, away_batters_faced, source_file, home_starter, away_starter, \
    home_starter_line, away_starter_line";

pub const TYPES: [Type; 25] = [
    Type::TEXT,
    Type::DATE,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT2,
    Type::INT2,
    Type::INT2,
    Type::INT2,
    Type::INT2,
    Type::INT2,
    Type::INT2,
    Type::INT2,
    Type::INT2,
    Type::INT2,
    Type::INT2,
    Type::INT2,
    Type::INT2,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT2_ARRAY,
    Type::INT2_ARRAY,
];

/// A game's values for one `COPY` row: owned, so the caller can borrow them as `ToSql`.
#[derive(Debug)]
pub struct GameRow {
    id: String,
    date: NaiveDate,
    number: i16,
    phase: &'static str,
    home: String,
    away: String,
    counts: [i16; 10],
    pitches: [Option<i16>; 2],
    batters_faced: [i16; 2],
    source: String,
    starters: [Option<String>; 2],
    starter_lines: [Option<Vec<Option<i16>>>; 2],
}

/// Box-score totals are far below `i16::MAX`; a value above it is clamped rather than
/// wrapped (none occurs in the data).
fn small(value: u16) -> i16 {
    i16::try_from(value).unwrap_or(i16::MAX)
}

impl GameRow {
    pub fn new(game: &Game, source: &str) -> Self {
        let (h, a) = (&game.home, &game.away);
        Self {
            id: game.id.to_string(),
            date: game.date,
            number: i16::from(game.number),
            phase: game.phase.name(),
            home: h.team.to_string(),
            away: a.team.to_string(),
            counts: [
                h.runs,
                a.runs,
                h.hits,
                a.hits,
                h.walks,
                a.walks,
                h.home_runs,
                a.home_runs,
                h.strikeouts,
                a.strikeouts,
            ]
            .map(small),
            pitches: [h.pitches.map(small), a.pitches.map(small)],
            batters_faced: [small(h.batters_faced), small(a.batters_faced)],
            source: source.to_owned(),
            starters: [h, a].map(|side| side.starter.map(|start| start.pitcher.to_string())),
            starter_lines: [h, a].map(|side| {
                let line = side.starter?.line?;
                let counts = line.counts().into_iter().map(|count| Some(small(count)));
                Some(counts.chain([line.pitches.map(small)]).collect())
            }),
        }
    }

    pub fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut values: Vec<&(dyn ToSql + Sync)> = vec![
            &self.id,
            &self.date,
            &self.number,
            &self.phase,
            &self.home,
            &self.away,
        ];
        values.extend(self.counts.iter().map(|v| v as &(dyn ToSql + Sync)));
        values.extend(self.pitches.iter().map(|v| v as &(dyn ToSql + Sync)));
        values.extend(self.batters_faced.iter().map(|v| v as &(dyn ToSql + Sync)));
        values.push(&self.source);
        values.extend(self.starters.iter().map(|v| v as &(dyn ToSql + Sync)));
        values.extend(self.starter_lines.iter().map(|v| v as &(dyn ToSql + Sync)));
        values
    }
}

/// Why a row cannot be read as what it should hold.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("cannot read column `{column}`")]
    Read {
        column: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("column `{column}` holds {value}, which is not {expected}")]
    Invalid {
        column: String,
        value: String,
        expected: &'static str,
    },
}

impl RowError {
    /// `column` holds `value`, which is not what it should be.
    pub fn invalid(column: &str, value: impl std::fmt::Display, expected: &'static str) -> Self {
        Self::Invalid {
            column: column.to_owned(),
            value: format!("`{value}`"),
            expected,
        }
    }
}

/// The value of `column` in `row`; a column missing or of another type is a [`RowError`].
pub fn read_column<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    column: &str,
) -> Result<T, RowError> {
    row.try_get(column).map_err(|source| RowError::Read {
        column: column.to_owned(),
        source,
    })
}

fn unsigned(row: &Row, column: &str) -> Result<u16, RowError> {
    let value: i16 = read_column(row, column)?;
    u16::try_from(value).map_err(|_| RowError::invalid(column, value, "a count (0 or more)"))
}

fn team_line(row: &Row, side: &str) -> Result<TeamLine, RowError> {
    let column = |name: &str| format!("{side}_{name}");
    let team_column = column("team");
    let team: String = read_column(row, &team_column)?;
    let pitches: Option<i16> = read_column(row, &column("pitches"))?;
    Ok(TeamLine {
        team: team
            .parse()
            .map_err(|_| RowError::invalid(&team_column, &team, "a team code"))?,
        runs: unsigned(row, &column("runs"))?,
        hits: unsigned(row, &column("hits"))?,
        walks: unsigned(row, &column("walks"))?,
        home_runs: unsigned(row, &column("home_runs"))?,
        strikeouts: unsigned(row, &column("strikeouts"))?,
        pitches: pitches.and_then(|p| u16::try_from(p).ok()),
        batters_faced: unsigned(row, &column("batters_faced"))?,
        starter: starter(row, side)?,
    })
}

/// A `games` row (with at least [`COLUMNS`]) as a game.
pub fn game_from_row(row: &Row) -> Result<Game, RowError> {
    let id: String = read_column(row, "game_id")?;
    let phase: String = read_column(row, "phase")?;
    let number: i16 = read_column(row, "number")?;
    Ok(Game {
        id: id
            .parse()
            .map_err(|_| RowError::invalid("game_id", &id, "a game id"))?,
        date: read_column(row, "date")?,
        number: u8::try_from(number)
            .map_err(|_| RowError::invalid("number", number, "a game number"))?,
        phase: Phase::from_name(&phase)
            .ok_or_else(|| RowError::invalid("phase", &phase, "regular, postseason or allstar"))?,
        home: team_line(row, "home")?,
        away: team_line(row, "away")?,
    })
}

/// A side's starter (`home` or `away`), when the row names one.
fn starter(row: &Row, side: &str) -> Result<Option<Start>, RowError> {
    let column = format!("{side}_starter");
    let Some(id): Option<String> = read_column(row, &column)? else {
        return Ok(None);
    };
    let pitcher = id
        .parse()
        .map_err(|_| RowError::invalid(&column, &id, "a Retrosheet pitcher id"))?;
    let column = format!("{side}_starter_line");
    let Some(values): Option<Vec<Option<i16>>> = read_column(row, &column)? else {
        return Ok(Some(Start {
            pitcher,
            line: None,
        }));
    };
    let invalid = || RowError::invalid(&column, format!("{values:?}"), "a starter's line");
    // The counts of `PitcherLine::counts`, then pitches (NULL when unknown).
    let Some((pitches, counts)) = values.split_last() else {
        return Err(invalid());
    };
    let counts: Vec<u16> = counts
        .iter()
        .map(|value| value.and_then(|value| u16::try_from(value).ok()))
        .collect::<Option<_>>()
        .ok_or_else(invalid)?;
    let counts: [u16; 9] = counts.try_into().map_err(|_| invalid())?;
    let pitches = pitches
        .map(|value| u16::try_from(value).map_err(|_| invalid()))
        .transpose()?;
    Ok(Some(Start {
        pitcher,
        line: Some(PitcherLine::from_counts(counts, pitches)),
    }))
}

/// Every stored game played before `before` (all of them for `None`), in the order they
/// were played — the order the feature history needs.
pub async fn load_games(
    client: &impl tokio_postgres::GenericClient,
    before: Option<NaiveDate>,
) -> Result<Vec<Game>, DbError> {
    let query = format!(
        "SELECT {COLUMNS} FROM games WHERE $1::date IS NULL OR date < $1 ORDER BY date, number, game_id"
    );
    games_from_rows(&client.query(&query, &[&before]).await?)
}

fn games_from_rows(rows: &[Row]) -> Result<Vec<Game>, DbError> {
    rows.iter()
        .map(|row| {
            game_from_row(row).map_err(|source| DbError::Corrupt {
                table: "games",
                source,
            })
        })
        .collect()
}

/// The games written since revision `after` of `games_revision` (each row is stamped with
/// the revision that wrote it), in the order they were played.
pub async fn load_games_since(
    client: &impl tokio_postgres::GenericClient,
    after: i64,
) -> Result<Vec<Game>, DbError> {
    let query =
        format!("SELECT {COLUMNS} FROM games WHERE revision > $1 ORDER BY date, number, game_id");
    games_from_rows(&client.query(&query, &[&after]).await?)
}

/// Writes `games` (from `source`, e.g. a file name) in `transaction`: binary `COPY` into a
/// temporary table, then one upsert, so writing the same games twice changes nothing.
pub async fn upsert_games(
    transaction: &Transaction<'_>,
    games: &[Game],
    source: &str,
) -> Result<(), DbError> {
    transaction
        .batch_execute("CREATE TEMP TABLE games_in (LIKE games INCLUDING DEFAULTS) ON COMMIT DROP")
        .await?;
    let sink = transaction
        .copy_in(&format!("COPY games_in ({COLUMNS}) FROM STDIN BINARY"))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &TYPES);
    pin_mut!(writer);
    for game in games {
        let row = GameRow::new(game, source);
        writer.as_mut().write(&row.values()).await?;
    }
    writer.finish().await?;
    let updates = COLUMNS
        .split(", ")
        .skip(1)
        .map(|column| format!("{column} = EXCLUDED.{column}"))
        .collect::<Vec<_>>()
        .join(", ");
    transaction
        .batch_execute(&format!(
            "INSERT INTO games ({COLUMNS}) SELECT {COLUMNS} FROM games_in \
             ON CONFLICT (game_id) DO UPDATE SET {updates}"
        ))
        .await?;
    Ok(())
}
