//! Games as rows of the `games` table, both ways.

use chrono::NaiveDate;
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

use super::DbError;
use crate::games::{Game, Phase, TeamLine};

/// The columns of `games`, in the order rows are written and read.
pub const COLUMNS: &str = "game_id, date, number, phase, home_team, away_team, \
    home_runs, away_runs, home_hits, away_hits, home_walks, away_walks, home_home_runs, \
    away_home_runs, home_strikeouts, away_strikeouts, home_pitches, away_pitches, \
    home_batters_faced, away_batters_faced, source_file";

pub(super) const TYPES: [Type; 21] = [
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
];

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Regular => "regular",
        Phase::Postseason => "postseason",
        Phase::AllStar => "allstar",
    }
}

/// A game's values for one `COPY` row: owned, so the caller can borrow them as `ToSql`.
pub(super) struct GameRow {
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
}

/// Box-score totals are far below `i16::MAX`; a value above it is clamped rather than
/// wrapped (none occurs in the data).
fn small(value: u16) -> i16 {
    i16::try_from(value).unwrap_or(i16::MAX)
}

impl GameRow {
    pub(super) fn new(game: &Game, source: &str) -> Self {
        let (h, a) = (&game.home, &game.away);
        Self {
            id: game.id.to_string(),
            date: game.date,
            number: i16::from(game.number),
            phase: phase_name(game.phase),
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
        }
    }

    pub(super) fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
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
        values
    }
}

fn unsigned(row: &Row, column: &str) -> Result<u16, String> {
    let value: i16 = row.try_get(column).map_err(|e| e.to_string())?;
    u16::try_from(value).map_err(|_| format!("{column} is negative ({value})"))
}

fn team_line(row: &Row, side: &str) -> Result<TeamLine, String> {
    let column = |name: &str| format!("{side}_{name}");
    let team: String = row
        .try_get(column("team").as_str())
        .map_err(|e| e.to_string())?;
    let pitches: Option<i16> = row
        .try_get(column("pitches").as_str())
        .map_err(|e| e.to_string())?;
    Ok(TeamLine {
        team: team.parse().map_err(|e| format!("{e}"))?,
        runs: unsigned(row, &column("runs"))?,
        hits: unsigned(row, &column("hits"))?,
        walks: unsigned(row, &column("walks"))?,
        home_runs: unsigned(row, &column("home_runs"))?,
        strikeouts: unsigned(row, &column("strikeouts"))?,
        pitches: pitches.and_then(|p| u16::try_from(p).ok()),
        batters_faced: unsigned(row, &column("batters_faced"))?,
    })
}

/// A `games` row (with at least [`COLUMNS`]) as a game.
pub fn game_from_row(row: &Row) -> Result<Game, String> {
    let id: String = row.try_get("game_id").map_err(|e| e.to_string())?;
    let phase: String = row.try_get("phase").map_err(|e| e.to_string())?;
    let number: i16 = row.try_get("number").map_err(|e| e.to_string())?;
    Ok(Game {
        id: id.parse().map_err(|e| format!("{e}"))?,
        date: row.try_get("date").map_err(|e| e.to_string())?,
        number: u8::try_from(number).map_err(|_| format!("game number {number}"))?,
        phase: match phase.as_str() {
            "regular" => Phase::Regular,
            "postseason" => Phase::Postseason,
            "allstar" => Phase::AllStar,
            other => return Err(format!("unknown phase `{other}`")),
        },
        home: team_line(row, "home")?,
        away: team_line(row, "away")?,
    })
}

/// Every stored game played before `before` (all of them for `None`), in the order they
/// were played — the order the feature history needs.
pub async fn load_games(
    client: &tokio_postgres::Client,
    before: Option<NaiveDate>,
) -> Result<Vec<Game>, DbError> {
    let query = format!(
        "SELECT {COLUMNS} FROM games WHERE $1::date IS NULL OR date < $1 ORDER BY date, number, game_id"
    );
    let rows = client.query(&query, &[&before]).await?;
    rows.iter()
        .map(|row| {
            game_from_row(row).map_err(|reason| DbError::Corrupt {
                table: "games",
                reason,
            })
        })
        .collect()
}
