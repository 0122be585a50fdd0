//! What happens to every prediction served, whichever protocol asked and whether it came
//! alone or in a batch: counted by model, version and tier; written to the prediction log
//! when it is on, else kept in process for live quality. The prediction service calls
//! [`Recorder::record`] once per answer, so no handler records anything itself.
//!
//! Live quality joins those predictions with game results: from the prediction log when it
//! is on (every replica, across restarts), else from what this process served (the latest
//! probability per model version and game, bounded).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::answer::Prediction;
use super::log::{LogEntry, PredictionLog};
use super::schedule::Demand;
use crate::cache::Source;
use crate::db::Pool;
use crate::features::{Decided, FeatureSource, StoreError};
use crate::games::{GameId, TeamCode};
use crate::models::ServedModel;
use crate::monitoring::quality::{self, Quality, Window};
use crate::monitoring::{Answered, Protocol};

/// Stored games whose served predictions this process keeps per model version.
const SERVED_CAPACITY: usize = 100_000;

/// Who asked for a prediction, for the prediction log.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub request_id: String,
    /// The API key (`api_keys.id`) that asked, for keys kept in PostgreSQL.
    pub key_id: Option<i64>,
    /// The protocol it asked over, for the metrics.
    pub protocol: Protocol,
}

#[derive(Debug)]
pub struct Recorder {
    log: Option<PredictionLog>,
    /// The database of the prediction log, where quality is read from when the log is on.
    log_pool: Option<Pool>,
    served: ServedPredictions,
    /// The schedule's games, counting the predictions each draws before its first pitch.
    demand: Option<Arc<Demand>>,
}

impl Recorder {
    pub fn new(log: Option<(PredictionLog, Pool)>, demand: Option<Arc<Demand>>) -> Self {
        let (log, log_pool) = log.unzip();
        Self {
            log,
            log_pool,
            served: ServedPredictions::new(SERVED_CAPACITY),
            demand,
        }
    }

    /// The prediction log's database, when the log is on.
    pub fn log_pool(&self) -> Option<&Pool> {
        self.log_pool.as_ref()
    }

    /// Never waits: the log queue refuses rather than blocks.
    pub fn record(&self, prediction: &Prediction, caller: &Caller) {
        let answered = match prediction.source {
            Source::Cache => Answered::Memory,
            Source::Shared => Answered::Redis,
            Source::Fresh => Answered::Computed,
            Source::Stale => Answered::Stale,
        };
        prediction
            .model
            .pool
            .metrics()
            .served(caller.protocol, answered, 1);
        if let Some(demand) = &self.demand {
            demand.asked(&prediction.game);
        }
        self.keep(prediction, caller, false);
    }

    /// `rows` feature rows `model` scored for an Open Inference Protocol client: counted as
    /// computed. They name no game, so neither the prediction log nor live quality can
    /// join them with a result: they are not written there.
    pub fn record_rows(&self, model: &ServedModel, rows: usize, caller: &Caller) {
        model
            .pool
            .metrics()
            .served(caller.protocol, Answered::Computed, rows as u64);
    }

    /// A prediction a shadow version made off the response path: into the log (marked) and
    /// live quality, not into the served counts.
    pub fn record_shadow(&self, prediction: &Prediction, caller: &Caller) {
        self.keep(prediction, caller, true);
    }

    fn keep(&self, prediction: &Prediction, caller: &Caller, shadow: bool) {
        let model = &prediction.model;
        let game = &prediction.game;
        let Some(log) = &self.log else {
            if let Some(id) = game.game_id {
                let probability = prediction.home_win_probability;
                self.served
                    .record(&model.name, &model.version, (id, game.away), probability);
            }
            return;
        };
        log.record(LogEntry {
            request_id: caller.request_id.clone(),
            predicted_at: chrono::Utc::now(),
            model_name: Arc::clone(&model.name),
            model_version: Arc::clone(&model.version),
            game_id: game.game_id.map(|id| id.to_string()),
            home_team: game.home.to_string(),
            away_team: game.away.to_string(),
            game_date: game.date,
            feature_hash: prediction.feature_hash,
            home_win_probability: prediction.home_win_probability,
            odds: prediction
                .market
                .map(|market| (market.home.decimal_odds, market.away.decimal_odds)),
            cached: prediction.cached,
            key_id: caller.key_id,
            shadow,
        });
    }

    /// Where quality is computed from: `prediction_log` or `served_here`.
    pub fn quality_source(&self) -> &'static str {
        if self.log_pool.is_some() {
            "prediction_log"
        } else {
            "served_here"
        }
    }

    /// The quality of each version of model `name` over the games in `window` that have a
    /// result, from the latest prediction served for each game.
    pub async fn quality(
        &self,
        name: &str,
        window: Window,
        results: &FeatureSource,
    ) -> Result<Vec<(Arc<str>, Quality)>, StoreError> {
        let served = match &self.log_pool {
            Some(pool) => logged(pool, name, window).await?,
            None => self.served.of_model(name, window),
        };
        let mut qualities = Vec::new();
        for (version, games) in served {
            let ids: Vec<GameId> = games.iter().map(|((id, _), _)| *id).collect();
            let decided = results.decided(&ids).await?;
            let pairs: Vec<(f64, bool)> = games
                .iter()
                .filter_map(|(game, p)| Some((*p, home_won(&decided, *game)?)))
                .collect();
            if let Some(quality) = quality::score(&pairs) {
                qualities.push((version, quality));
            }
        }
        qualities.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(qualities)
    }
}

/// Two versions of one model scored on the same games (those both predicted and that have a
/// result): the rollback guard's quality comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    pub games: usize,
    /// Mean Brier score of each version over those games.
    pub brier_a: f64,
    pub brier_b: f64,
}

impl Recorder {
    /// Versions `a` and `b` of model `name` on the games both predicted that have results;
    /// `None` when there are none.
    pub async fn paired(
        &self,
        name: &str,
        (a, b): (&str, &str),
        results: &FeatureSource,
    ) -> Result<Option<Paired>, StoreError> {
        let everything = Window {
            from: None,
            to: None,
        };
        let served = match &self.log_pool {
            Some(pool) => logged(pool, name, everything).await?,
            None => self.served.of_model(name, everything),
        };
        let of = |version: &str| -> HashMap<Identity, f64> {
            served
                .iter()
                .find(|(v, _)| &**v == version)
                .map(|(_, games)| games.iter().copied().collect())
                .unwrap_or_default()
        };
        let (of_a, of_b) = (of(a), of(b));
        let common: Vec<Identity> = of_a
            .keys()
            .filter(|game| of_b.contains_key(game))
            .copied()
            .collect();
        if common.is_empty() {
            return Ok(None);
        }
        let ids: Vec<GameId> = common.iter().map(|(id, _)| *id).collect();
        let decided = results.decided(&ids).await?;
        let (mut games, mut sum_a, mut sum_b) = (0usize, 0.0, 0.0);
        for game in &common {
            let Some(won) = home_won(&decided, *game) else {
                continue;
            };
            let outcome = if won { 1.0 } else { 0.0 };
            sum_a += (of_a[game] - outcome).powi(2);
            sum_b += (of_b[game] - outcome).powi(2);
            games += 1;
        }
        Ok((games > 0).then(|| Paired {
            games,
            brier_a: sum_a / games as f64,
            brier_b: sum_b / games as f64,
        }))
    }
}

/// The latest logged probability per version and game of model `name`.
async fn logged(pool: &Pool, name: &str, window: Window) -> Result<ServedByVersion, StoreError> {
    let client = pool.get().await.map_err(crate::db::DbError::from)?;
    let rows = client
        .query(
            "SELECT DISTINCT ON (model_version, game_id, away_team) model_version, game_id, \
             away_team, home_win_probability FROM prediction_log \
             WHERE model_name = $1 AND game_id IS NOT NULL \
             ORDER BY model_version, game_id, away_team, predicted_at DESC",
            &[&name],
        )
        .await
        .map_err(crate::db::DbError::from)?;
    let mut by_version: HashMap<Arc<str>, Vec<(Identity, f64)>> = HashMap::new();
    for row in &rows {
        let version: &str = row.get(0);
        let (Ok(game), Ok(away)) = (
            row.get::<_, &str>(1).parse::<GameId>(),
            row.get::<_, &str>(2).parse::<TeamCode>(),
        ) else {
            continue;
        };
        if window.contains(game.date()) {
            let probability: f32 = row.get(3);
            by_version
                .entry(version.into())
                .or_default()
                .push(((game, away), f64::from(probability)));
        }
    }
    Ok(by_version.into_iter().collect())
}

type VersionKey = (Arc<str>, Arc<str>);

/// A game as a prediction named it: its id and its visitors. A result scores the prediction
/// only when it names the same visitors, so a prediction for teams that did not play the
/// game under that id (a scheduled game guessed wrong) never reaches live quality.
type Identity = (GameId, TeamCode);

/// Whether the home team won `game`, when its result is in and names the same visitors.
fn home_won(decided: &HashMap<GameId, Decided>, (id, away): Identity) -> Option<bool> {
    decided
        .get(&id)
        .filter(|result| result.away == away)
        .map(|result| result.home_won)
}

/// Served probabilities by model version: `(version, [(game, probability)])`.
pub type ServedByVersion = Vec<(Arc<str>, Vec<(Identity, f64)>)>;

/// The latest probability this process served per model version and stored game.
#[derive(Debug)]
pub struct ServedPredictions {
    by_version: Mutex<HashMap<VersionKey, HashMap<Identity, f32>>>,
    capacity: usize,
}

impl ServedPredictions {
    /// Keeps at most `capacity` games per model version (later games beyond it are not kept).
    pub fn new(capacity: usize) -> Self {
        Self {
            by_version: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    pub fn record(&self, name: &Arc<str>, version: &Arc<str>, game: Identity, probability: f32) {
        let mut by_version = self
            .by_version
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (Arc::clone(name), Arc::clone(version));
        let games = by_version.entry(key).or_default();
        if games.len() < self.capacity || games.contains_key(&game) {
            games.insert(game, probability);
        }
    }

    /// The served probabilities of `name` (every version) for games in `window`.
    pub fn of_model(&self, name: &str, window: Window) -> ServedByVersion {
        let by_version = self
            .by_version
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        by_version
            .iter()
            .filter(|((model, _), _)| &**model == name)
            .map(|((_, version), games)| {
                let served = games
                    .iter()
                    .filter(|((id, _), _)| window.contains(id.date()))
                    .map(|(game, p)| (*game, f64::from(*p)))
                    .collect();
                (Arc::clone(version), served)
            })
            .collect()
    }
}
