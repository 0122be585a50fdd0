//! The PostgreSQL feature store: the games and features `bullpen import` wrote. Feature
//! reads go to the read pool (a replica when `database.read_url` is set); results are
//! written to the primary.
//!
//! A scheduled game needs the history of every game before its date. Replaying the games
//! table for each one cost 110–150 ms, so the store keeps the games in memory as the
//! embedded store does (checkpoints of the history every few game days): this replica's
//! *view* of the games, built from the table and rebuilt when `games_revision` (moved by a
//! trigger on every change to `games`) says the table changed. The view is what the feature
//! cache keys are computed from (each game's history digest), so it moves as one: a result
//! written by any replica, or by hand, reaches it when [`PostgresStore::refresh`] runs —
//! on the results channel at once, and every `features.refresh_ms` whatever the channel does.
//! Stored games are answered from the view too; a request reads the tables only for a game
//! the view does not hold yet.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use chrono::NaiveDate;
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::{IsolationLevel, Transaction};

use super::live::IngestError;
use super::lookup::{Decided, GameFeatures};
use super::results::{self, Ingested, ResultBody};
use super::spec::{FeatureVector, STORED_SPEC, WIDTH};
use super::store::{DEFAULT_SCHEDULE_HORIZON_DAYS, EmbeddedStore, FeatureStore, StoreError};
use crate::db::{self, DbError, Pool, RowError};
use crate::games::{Game, GameId, Pitchers, Starters, TeamCode};

#[derive(Debug, Clone)]
pub struct PostgresStore {
    /// Feature reads.
    pool: Pool,
    /// Results are written here (the same pool when there is no read replica).
    primary: Pool,
    schedule_horizon_days: u32,
    /// Season totals of the starters' earlier seasons (`data.pitchers_dir`): the view's
    /// features read them as the embedded store's do.
    pitchers: Arc<Pitchers>,
    /// This replica's view of the games table, and the revision it was built from.
    view: Arc<ArcSwapOption<Replay>>,
    /// One build or ingestion at a time: concurrent cold requests wait for one build instead
    /// of each loading the table.
    building: Arc<tokio::sync::Mutex<()>>,
}

/// The games table at one revision, held as the embedded store holds its data.
#[derive(Debug)]
struct Replay {
    revision: i64,
    store: Arc<EmbeddedStore>,
}

/// The transaction-wide advisory lock of [`lock_games`].
const GAMES_LOCK: i64 = 0x6275_6c6c_7065_6e31;

/// A failure to reach or query PostgreSQL: it passes.
fn unavailable(error: impl Into<DbError>) -> StoreError {
    StoreError::from(error.into())
}

/// A row of `table` that cannot be decoded: a data error.
fn corrupt(table: &'static str, source: RowError) -> StoreError {
    StoreError::from(DbError::Corrupt { table, source })
}

impl PostgresStore {
    /// Reads from `pool`, writes results to `primary`; starters' earlier seasons from
    /// `pitchers`.
    pub fn new(pool: Pool, primary: Pool, pitchers: Arc<Pitchers>) -> Self {
        Self {
            pool,
            primary,
            schedule_horizon_days: DEFAULT_SCHEDULE_HORIZON_DAYS,
            pitchers,
            view: Arc::default(),
            building: Arc::default(),
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

    /// This replica's view of the games: built at start (or on first use, when the database
    /// was down then), then moved by [`Self::refresh`].
    pub async fn view(&self) -> Result<Arc<EmbeddedStore>, StoreError> {
        if let Some(view) = self.view.load().as_ref() {
            return Ok(Arc::clone(&view.store));
        }
        Ok(self.reload().await?.0)
    }

    /// The view as it is now, without building one: `None` before the first build.
    pub fn loaded(&self) -> Option<Arc<EmbeddedStore>> {
        self.view
            .load()
            .as_ref()
            .map(|view| Arc::clone(&view.store))
    }

    /// Whether `store` is the view as it is now.
    pub fn is_loaded(&self, store: &Arc<EmbeddedStore>) -> bool {
        self.view
            .load()
            .as_ref()
            .is_some_and(|view| Arc::ptr_eq(&view.store, store))
    }

    /// Reads `games_revision` and, when it moved since the view was built, loads the games
    /// again. Answers the earliest date whose later games' features changed, if any did.
    pub async fn refresh(&self) -> Result<Option<NaiveDate>, StoreError> {
        Ok(self.reload().await?.1)
    }

    async fn reload(&self) -> Result<(Arc<EmbeddedStore>, Option<NaiveDate>), StoreError> {
        let _building = self.building.lock().await;
        let mut client = self.pool.get().await.map_err(unavailable)?;
        // One snapshot: the revision and the rows it covers.
        let snapshot = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(unavailable)?;
        let revision = read_revision(&snapshot).await?;
        let current = self.view.load_full();
        if let Some(view) = current.as_ref() {
            if view.revision == revision {
                return Ok((Arc::clone(&view.store), None));
            }
            if let Some(store) = self.catch_up(&snapshot, view).await? {
                return Ok(self.move_view(Some(view), revision, store));
            }
        }
        let started = std::time::Instant::now();
        let store = self.load_all(&snapshot).await?;
        tracing::info!(
            revision,
            games = store.games().len(),
            elapsed_ms = started.elapsed().as_millis(),
            "games loaded in memory"
        );
        Ok(self.move_view(current.as_deref(), revision, store))
    }

    /// Every game of the table, held in memory.
    async fn load_all(
        &self,
        client: &impl tokio_postgres::GenericClient,
    ) -> Result<EmbeddedStore, StoreError> {
        let games = db::load_games(client, None).await?;
        let store =
            EmbeddedStore::from_games_and_pitchers(games, Arc::clone(&self.pitchers), |_| {});
        Ok(store.with_schedule_horizon(self.schedule_horizon_days))
    }

    /// `view` with the rows written since its revision; `None` when rows were also deleted
    /// (then only a full load is right).
    async fn catch_up(
        &self,
        snapshot: &Transaction<'_>,
        view: &Replay,
    ) -> Result<Option<EmbeddedStore>, StoreError> {
        let changed = db::load_games_since(snapshot, view.revision).await?;
        let row = snapshot
            .query_one("SELECT count(*) AS games FROM games", &[])
            .await
            .map_err(unavailable)?;
        let count: i64 =
            db::read_column(&row, "games").map_err(|source| corrupt("games", source))?;
        let added = changed
            .iter()
            .filter(|game| view.store.game(game.id).is_none())
            .count();
        let expected = i64::try_from(view.store.games().len() + added).unwrap_or(i64::MAX);
        Ok((count == expected).then(|| view.store.with_results(&changed)))
    }

    /// Swaps in `store` at `revision`; the earliest date whose later games changed since
    /// `previous`, if any did.
    fn move_view(
        &self,
        previous: Option<&Replay>,
        revision: i64,
        store: EmbeddedStore,
    ) -> (Arc<EmbeddedStore>, Option<NaiveDate>) {
        let changed = previous.and_then(|view| view.store.first_difference(&store));
        let store = Arc::new(store);
        self.view.store(Some(Arc::new(Replay {
            revision,
            store: Arc::clone(&store),
        })));
        (store, changed)
    }

    /// Checks `results` against the games, writes what changes (games and the features of
    /// every game from the earliest changed date on) in one transaction on the primary, and
    /// moves this replica's view to it. Sets of results run one at a time on every replica.
    pub async fn ingest(
        &self,
        results: &[ResultBody],
        correct: bool,
        today: NaiveDate,
    ) -> Result<Ingested, IngestError> {
        let _building = self.building.lock().await;
        let mut client = self.primary.get().await.map_err(unavailable)?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        lock_games(&transaction).await.map_err(StoreError::from)?;
        // The primary's games as of now, under the lock (this replica's view may lag).
        let revision = read_revision(&transaction).await?;
        let current = match self.view.load_full() {
            Some(view) if view.revision == revision => Arc::clone(&view.store),
            _ => Arc::new(self.load_all(&transaction).await?),
        };
        let plan = results::plan(&current, results, correct, today)?;
        let Some(from) = plan.outcome.changed_from else {
            return Ok(plan.outcome);
        };
        let next = current.with_results(&plan.changes);
        db::upsert_games(&transaction, &plan.changes, "results")
            .await
            .map_err(StoreError::from)?;
        let recomputed = next
            .games()
            .iter()
            .zip(next.vectors())
            .filter(|(game, _)| game.date >= from);
        upsert_features(&transaction, recomputed)
            .await
            .map_err(StoreError::from)?;
        let written = read_revision(&transaction).await?;
        // The table is `current` and these changes, unless a writer that does not take the
        // lock (SQL by hand) got in: then only a full load is right.
        let row = transaction
            .query_one(
                "SELECT count(*) FILTER (WHERE revision > $1) AS changed, count(*) AS games \
                 FROM games",
                &[&revision],
            )
            .await
            .map_err(unavailable)?;
        let count = |column| -> Result<usize, StoreError> {
            let value: i64 =
                db::read_column(&row, column).map_err(|source| corrupt("games", source))?;
            Ok(usize::try_from(value).unwrap_or(usize::MAX))
        };
        let alone =
            count("changed")? == plan.changes.len() && count("games")? == next.games().len();
        transaction.commit().await.map_err(unavailable)?;
        let view = alone.then(|| {
            Arc::new(Replay {
                revision: written,
                store: Arc::new(next),
            })
        });
        self.view.store(view);
        Ok(plan.outcome)
    }

    /// Whether the home team won each of `ids` that has a decided result.
    pub async fn decided(&self, ids: &[GameId]) -> Result<HashMap<GameId, Decided>, StoreError> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let ids: Vec<&str> = ids.iter().map(GameId::as_str).collect();
        let rows = client
            .query(
                "SELECT game_id, away_team, home_runs > away_runs AS home_win FROM games \
                 WHERE game_id = ANY($1) AND home_runs <> away_runs",
                &[&ids],
            )
            .await
            .map_err(unavailable)?;
        let mut decided = HashMap::with_capacity(rows.len());
        let decode = |row: &tokio_postgres::Row| -> Result<(GameId, Decided), RowError> {
            let id: &str = db::read_column(row, "game_id")?;
            let id = id
                .parse()
                .map_err(|_| RowError::invalid("game_id", id, "a game id"))?;
            let away: &str = db::read_column(row, "away_team")?;
            let away = away
                .parse()
                .map_err(|_| RowError::invalid("away_team", away, "a team code"))?;
            let home_won = db::read_column(row, "home_win")?;
            Ok((id, Decided { away, home_won }))
        };
        for row in &rows {
            let (id, result) = decode(row).map_err(|source| corrupt("games", source))?;
            decided.insert(id, result);
        }
        Ok(decided)
    }

    /// A stored game and the features `bullpen import` (or an ingestion) wrote for it.
    async fn game_from_table(&self, id: GameId) -> Result<Option<GameFeatures>, StoreError> {
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
                    (&STORED_SPEC.version, Type::TEXT),
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
        let values: [f32; WIDTH] = values.try_into().map_err(|values: Vec<f32>| {
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
}

impl FeatureStore for PostgresStore {
    /// From this replica's view of the games, with no round trip; from the table only for
    /// a game the view does not hold (written since the last refresh, or before the first
    /// view is built).
    async fn game(&self, id: GameId) -> Result<Option<GameFeatures>, StoreError> {
        if let Some(view) = self.view.load().as_ref()
            && let Some((game, vector)) = view.store.game(id)
        {
            return Ok(Some(GameFeatures::stored(game, *vector)));
        }
        self.game_from_table(id).await
    }

    /// From this replica's view of the games.
    async fn scheduled(
        &self,
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
        starters: Starters,
    ) -> Result<FeatureVector, StoreError> {
        Ok(self
            .view()
            .await?
            .scheduled_features(home, away, date, starters)?)
    }
}

async fn read_revision(client: &impl tokio_postgres::GenericClient) -> Result<i64, StoreError> {
    let row = client
        .query_one("SELECT revision FROM games_revision", &[])
        .await
        .map_err(unavailable)?;
    db::read_column(&row, "revision").map_err(|source| corrupt("games_revision", source))
}

/// Waits for any other writer of games (results posted to any replica, `bullpen import`):
/// they apply one at a time across replicas and processes.
pub(super) async fn lock_games(transaction: &Transaction<'_>) -> Result<(), DbError> {
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&GAMES_LOCK])
        .await?;
    Ok(())
}

/// Upserts the stored spec's features of `games` in `transaction`: binary `COPY` into a
/// temporary table, then one upsert. Answers how many.
pub(super) async fn upsert_features<'a>(
    transaction: &Transaction<'_>,
    games: impl IntoIterator<Item = (&'a Game, &'a FeatureVector)>,
) -> Result<usize, DbError> {
    transaction
        .batch_execute(
            "CREATE TEMP TABLE features_in (game_id text, feature_version text, features real[]) \
             ON COMMIT DROP",
        )
        .await?;
    let sink = transaction
        .copy_in("COPY features_in (game_id, feature_version, features) FROM STDIN BINARY")
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::TEXT, Type::FLOAT4_ARRAY]);
    pin_mut!(writer);
    let mut written = 0;
    for (game, vector) in games {
        let id = game.id.to_string();
        let values = vector.values().to_vec();
        writer
            .as_mut()
            .write(&[&id, &STORED_SPEC.version, &values])
            .await?;
        written += 1;
    }
    writer.finish().await?;
    transaction
        .batch_execute(
            "INSERT INTO game_features (game_id, feature_version, features) \
             SELECT game_id, feature_version, features FROM features_in \
             ON CONFLICT (game_id, feature_version) \
             DO UPDATE SET features = EXCLUDED.features, computed_at = now()",
        )
        .await?;
    Ok(written)
}
