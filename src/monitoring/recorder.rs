//! What happens to every prediction served: counted by model, version and tier; written to
//! the prediction log when it is on, else kept in process for live quality.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use prometheus::{IntCounter, IntCounterVec};

use super::quality::{self, Quality, ServedByVersion, ServedPredictions, Window};
use super::{LogEntry, PredictionLog};
use crate::cache::Source;
use crate::db::Pool;
use crate::features::{FeatureSource, StoreError};
use crate::games::GameId;
use crate::models::ServedModel;
use crate::predict::Prediction;

/// Stored games whose served predictions this process keeps per model version.
const SERVED_CAPACITY: usize = 100_000;

/// `bullpen_predictions_total`, with each model version's four tier counters resolved once.
#[derive(Debug)]
struct PredictionCounters {
    vec: IntCounterVec,
    by_model: RwLock<Vec<(Arc<ServedModel>, [IntCounter; 4])>>,
}

impl PredictionCounters {
    fn count(&self, model: &Arc<ServedModel>, source: Source) {
        let tier = match source {
            Source::Cache => 0,
            Source::Shared => 1,
            Source::Fresh => 2,
            Source::Stale => 3,
        };
        {
            let known = self
                .by_model
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((_, counters)) = known.iter().find(|(m, _)| Arc::ptr_eq(m, model)) {
                counters[tier].inc();
                return;
            }
        }
        let counters = ["memory", "redis", "computed", "stale"].map(|tier| {
            self.vec
                .with_label_values(&[&*model.name, &*model.version, tier])
        });
        counters[tier].inc();
        let mut known = self
            .by_model
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        known.push((Arc::clone(model), counters));
    }
}

#[derive(Debug)]
pub struct Recorder {
    log: Option<PredictionLog>,
    /// The database of the prediction log, where quality is read from when the log is on.
    log_pool: Option<Pool>,
    /// `None` when requests are not counted.
    predictions: Option<PredictionCounters>,
    served: ServedPredictions,
}

impl Recorder {
    pub fn new(log: Option<(PredictionLog, Pool)>, predictions: Option<IntCounterVec>) -> Self {
        let (log, log_pool) = log.unzip();
        Self {
            log,
            log_pool,
            predictions: predictions.map(|vec| PredictionCounters {
                vec,
                by_model: RwLock::default(),
            }),
            served: ServedPredictions::new(SERVED_CAPACITY),
        }
    }

    /// The prediction log's database, when the log is on.
    pub fn log_pool(&self) -> Option<&Pool> {
        self.log_pool.as_ref()
    }

    /// Never waits: the log queue refuses rather than blocks. `key_id` is the API key that
    /// asked, when it is kept in PostgreSQL.
    pub fn record(&self, prediction: &Prediction, request_id: String, key_id: Option<i64>) {
        let model = &prediction.model;
        if let Some(predictions) = &self.predictions {
            predictions.count(model, prediction.source);
        }
        let game = &prediction.game;
        let Some(log) = &self.log else {
            if let Some(id) = game.game_id {
                let probability = prediction.home_win_probability;
                self.served
                    .record(&model.name, &model.version, id, probability);
            }
            return;
        };
        log.record(LogEntry {
            request_id,
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
            key_id,
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
            let ids: Vec<GameId> = games.iter().map(|(id, _)| *id).collect();
            let wins = results.home_wins(&ids).await?;
            let pairs: Vec<(f64, bool)> = games
                .iter()
                .filter_map(|(id, p)| Some((*p, *wins.get(id)?)))
                .collect();
            if let Some(quality) = quality::score(&pairs) {
                qualities.push((version, quality));
            }
        }
        qualities.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(qualities)
    }
}

/// The latest logged probability per version and game of model `name`.
async fn logged(pool: &Pool, name: &str, window: Window) -> Result<ServedByVersion, StoreError> {
    let unavailable = |error: &dyn std::fmt::Display| StoreError::Unavailable(error.to_string());
    let client = pool.get().await.map_err(|e| unavailable(&e))?;
    let rows = client
        .query(
            "SELECT DISTINCT ON (model_version, game_id) model_version, game_id, \
             home_win_probability FROM prediction_log \
             WHERE model_name = $1 AND game_id IS NOT NULL \
             ORDER BY model_version, game_id, predicted_at DESC",
            &[&name],
        )
        .await
        .map_err(|e| unavailable(&e))?;
    let mut by_version: HashMap<Arc<str>, Vec<(GameId, f64)>> = HashMap::new();
    for row in &rows {
        let version: &str = row.get(0);
        let Ok(game) = row.get::<_, &str>(1).parse::<GameId>() else {
            continue;
        };
        if window.contains(game.date()) {
            let probability: f32 = row.get(2);
            by_version
                .entry(version.into())
                .or_default()
                .push((game, f64::from(probability)));
        }
    }
    Ok(by_version.into_iter().collect())
}
