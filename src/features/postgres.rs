//! The PostgreSQL feature store: the games and features `bullpen import` wrote. Feature
//! reads go to the read pool (a replica when `database.read_url` is set).
//!
//! A scheduled game needs the history of every game before its date. Replaying the games
//! table for each one cost 110–150 ms, so the store keeps the games in memory as the
//! embedded store does (checkpoints of the history every few game days), built once from
//! the table and rebuilt only when `games_revision` (moved by a trigger on every change to
//! `games`) says the table changed: a cold scheduled game is one indexed read of that
//! counter and a replay of at most a few days, and an unknown team or a date outside the
//! data is refused from memory.

use std::collections::HashMap;

use chrono::NaiveDate;
use tokio_postgres::types::Type;

use std::sync::Arc;

use super::lookup::GameFeatures;
use super::spec::{FEATURE_COUNT, FEATURE_SPEC, FeatureVector};
use super::store::{DEFAULT_SCHEDULE_HORIZON_DAYS, EmbeddedStore, FeatureStore, StoreError};
use crate::db::{self, DbError, Pool, RowError};
use crate::games::{Game, GameId, TeamCode};

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: Pool,
    schedule_horizon_days: u32,
    /// The games as of a `games_revision`, replayed in memory; built on the first scheduled
    /// game and after every change. The lock makes concurrent cold requests wait for one
    /// build instead of each loading the table.
    replay: Arc<tokio::sync::Mutex<Option<Replay>>>,
}

/// The games table at one revision, held as the embedded store holds its data.
#[derive(Debug)]
struct Replay {
    revision: i64,
    store: Arc<EmbeddedStore>,
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
            replay: Arc::default(),
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

    /// The games in memory as of the table's revision now: one read of `games_revision`,
    /// and a load of the table when it moved since the last build.
    async fn replay(&self) -> Result<Arc<EmbeddedStore>, StoreError> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let row = client
            .query_one("SELECT revision FROM games_revision", &[])
            .await
            .map_err(unavailable)?;
        let revision: i64 = db::read_column(&row, "revision")
            .map_err(|source| corrupt("games_revision", source))?;
        let mut replay = self.replay.lock().await;
        if let Some(current) = replay.as_ref()
            && current.revision == revision
        {
            return Ok(Arc::clone(&current.store));
        }
        let started = std::time::Instant::now();
        let games = db::load_games(&client, None).await?;
        let store = Arc::new(
            EmbeddedStore::from_games(games, |_| {})
                .with_schedule_horizon(self.schedule_horizon_days),
        );
        tracing::info!(
            revision,
            games = store.games().len(),
            elapsed_ms = started.elapsed().as_millis(),
            "games replayed in memory for scheduled games"
        );
        *replay = Some(Replay {
            revision,
            store: Arc::clone(&store),
        });
        Ok(store)
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

    /// From the games in memory at the table's current revision (rebuilt when it moved).
    async fn scheduled(
        &self,
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
    ) -> Result<FeatureVector, StoreError> {
        let replay = self.replay().await?;
        Ok(replay.scheduled_features(home, away, date)?)
    }
}
