//! The PostgreSQL feature store: the games and features `bullpen import` wrote. Feature
//! reads go to the read pool (a replica when `database.read_url` is set).

use std::collections::HashMap;

use chrono::NaiveDate;
use tokio_postgres::types::Type;

use super::history::History;
use super::lookup::GameFeatures;
use super::spec::{FEATURE_COUNT, FEATURE_SPEC, FeatureVector};
use super::store::{
    DEFAULT_SCHEDULE_HORIZON_DAYS, DataSpan, FeatureStore, StoreError, check_schedule,
};
use crate::db::{self, DbError, Pool, RowError};
use crate::games::{Game, GameId, TeamCode};

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: Pool,
    schedule_horizon_days: u32,
}

/// A failure to reach or query PostgreSQL: it passes.
fn unavailable(error: impl Into<DbError>) -> StoreError {
    StoreError::from(error.into())
}

/// A row of `table` that cannot be decoded: a data error.
fn corrupt(table: &'static str, source: RowError) -> StoreError {
    StoreError::from(DbError::Corrupt { table, source })
}

impl PostgresStore {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            schedule_horizon_days: DEFAULT_SCHEDULE_HORIZON_DAYS,
        }
    }

    /// Scheduled games more than `days` after the last game in the data are refused.
    #[must_use]
    pub fn with_schedule_horizon(mut self, days: u32) -> Self {
        self.schedule_horizon_days = days;
        self
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Whether the home team won each of `ids` that has a decided result.
    pub async fn home_wins(&self, ids: &[GameId]) -> Result<HashMap<GameId, bool>, StoreError> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let ids: Vec<&str> = ids.iter().map(GameId::as_str).collect();
        let rows = client
            .query(
                "SELECT game_id, home_runs > away_runs AS home_win FROM games \
                 WHERE game_id = ANY($1) AND home_runs <> away_runs",
                &[&ids],
            )
            .await
            .map_err(unavailable)?;
        let mut wins = HashMap::with_capacity(rows.len());
        let decode = |row: &tokio_postgres::Row| -> Result<(GameId, bool), RowError> {
            let id: &str = db::read_column(row, "game_id")?;
            let id = id
                .parse()
                .map_err(|_| RowError::invalid("game_id", id, "a game id"))?;
            Ok((id, db::read_column(row, "home_win")?))
        };
        for row in &rows {
            let (id, won) = decode(row).map_err(|source| corrupt("games", source))?;
            wins.insert(id, won);
        }
        Ok(wins)
    }
}

impl FeatureStore for PostgresStore {
    async fn game(&self, id: GameId) -> Result<Option<GameFeatures>, StoreError> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let query = format!(
            "SELECT {}, f.features FROM games g JOIN game_features f USING (game_id) \
             WHERE g.game_id = $1 AND f.feature_version = $2",
            db::GAME_COLUMNS
        );
        // Typed parameters: one round trip, no separate prepare.
        let rows = client
            .query_typed(
                &query,
                &[
                    (&id.as_str(), Type::TEXT),
                    (&FEATURE_SPEC.version, Type::TEXT),
                ],
            )
            .await
            .map_err(unavailable)?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let game: Game = db::game_from_row(row).map_err(|source| corrupt("games", source))?;
        let values: Vec<f32> =
            db::read_column(row, "features").map_err(|source| corrupt("game_features", source))?;
        let values: [f32; FEATURE_COUNT] = values.try_into().map_err(|values: Vec<f32>| {
            corrupt(
                "game_features",
                RowError::Invalid {
                    column: "features".to_owned(),
                    value: format!("{} values for {id}", values.len()),
                    expected: "one value per feature of the spec",
                },
            )
        })?;
        Ok(Some(GameFeatures::stored(&game, FeatureVector(values))))
    }

    /// Replays the stored games before `date`. The result is cached by the caller's tier,
    /// so each scheduled game costs one read of the games table until it expires.
    async fn scheduled(
        &self,
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
    ) -> Result<FeatureVector, StoreError> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let teams: Vec<String> = client
            .query("SELECT DISTINCT home_team FROM games", &[])
            .await
            .map_err(unavailable)?
            .iter()
            .filter_map(|row| row.try_get(0).ok())
            .collect();
        let bounds = client
            .query_one("SELECT min(date), max(date) FROM games", &[])
            .await
            .map_err(unavailable)?;
        let span = DataSpan {
            first: bounds.try_get(0).map_err(unavailable)?,
            last: bounds.try_get(1).map_err(unavailable)?,
            horizon_days: self.schedule_horizon_days,
        };
        let knows = |team: TeamCode| {
            teams
                .iter()
                .filter_map(|code| code.parse::<TeamCode>().ok())
                .any(|known| known.franchise() == team.franchise())
        };
        check_schedule(knows, span, home, away, date)?;
        let games = db::load_games(&client, Some(date)).await?;
        let mut history = History::new();
        for game in &games {
            history.record(game);
        }
        Ok(history.features(home, away, date))
    }
}
