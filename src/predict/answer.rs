//! An answered prediction, and how one is put together from the features, the probability,
//! where it came from and the market.

use std::sync::Arc;

use super::odds::{MarketOdds, MarketView};
use crate::cache::{PredictionKey, Source};
use crate::features::{GameFeatures, GameInfo};
use crate::models::ServedModel;

/// One answered prediction.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub game: GameInfo,
    pub model: Arc<ServedModel>,
    /// Identifies the exact features the probability came from (see `PredictionKey`).
    pub feature_hash: u64,
    pub home_win_probability: f32,
    pub cached: bool,
    /// Served from an expired cache entry because a dependency is down.
    pub stale: bool,
    /// Where the probability came from.
    pub source: Source,
    pub market: Option<MarketView>,
}

/// How an answer was served.
#[derive(Debug, Clone, Copy)]
pub(super) struct Served {
    pub source: Source,
    /// The features came from an expired cache entry.
    pub stale_features: bool,
}

pub(super) fn answer(
    model: Arc<ServedModel>,
    features: &GameFeatures,
    probability: f32,
    served: Served,
    odds: Option<MarketOdds>,
) -> Prediction {
    Prediction {
        game: features.game,
        feature_hash: PredictionKey::feature_hash(&features.vector, &model.spec),
        model,
        home_win_probability: probability,
        cached: served.source != Source::Fresh,
        stale: served.source == Source::Stale || served.stale_features,
        source: served.source,
        market: odds.map(|odds| odds.evaluate(f64::from(probability))),
    }
}
