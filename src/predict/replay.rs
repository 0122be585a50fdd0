//! Serving an answer again. A caller that keeps answers it served (the HTTP layer keeps each
//! worker's rendered answers) asks the service whether one may be kept, and until when, and
//! whether what it was made from still stands: the same versions and routing, the same
//! games, no cache invalidation since. Each answer served again is recorded as every answer
//! is.

use std::sync::Arc;
use std::time::Instant;

use super::answer::Prediction;
use super::recorder::Caller;
use super::service::PredictService;
use super::shadow::is_shadowed;
use crate::cache::Source;
use crate::features::EmbeddedStore;
use crate::games::GameRef;
use crate::models::Snapshot;

/// What answers are made from at one moment.
#[derive(Debug, Clone)]
pub struct Stamp {
    catalog: Arc<Snapshot>,
    /// `None` while a PostgreSQL store has no view yet: such a stamp never stands.
    view: Option<Arc<EmbeddedStore>>,
    epoch: u64,
}

impl PredictService {
    /// What answers are made from now. Taken before asking, so that a change while the
    /// answer is made leaves the stamp behind.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            catalog: self.catalog().snapshot(),
            view: self.source().loaded(),
            epoch: self.caches().epoch(),
        }
    }

    /// Whether the answers made under `stamp` are still the answers: cheap (no reference
    /// taken, no lock), for every request.
    pub fn stands(&self, stamp: &Stamp) -> bool {
        stamp.epoch == self.caches().epoch()
            && self.catalog().is_current(&stamp.catalog)
            && stamp
                .view
                .as_ref()
                .is_some_and(|view| self.source().is_loaded(view))
    }

    /// Records `prediction` served again to `caller` from `started`: a hit of this replica's
    /// memory, and an answer like any other (metrics, the version's answer time that the
    /// rollback guard reads, the prediction log, live quality).
    pub fn served_again(&self, prediction: &Prediction, caller: &Caller, started: Instant) {
        self.caches().predictions.count_hit();
        let metrics = prediction.model.pool.metrics();
        metrics.answer.observe(started.elapsed().as_secs_f64());
        self.recorder().record(prediction, caller);
    }

    /// Whether `prediction`, the answer to a request routed when the request pinned no
    /// version, may be served again as it is (for as long as its cache entry is fresh,
    /// [`Self::fresh_until`]): an answer from this replica's memory that no other version
    /// scores beside it (neither a shadow version nor, for a canary's answer, the stable one).
    pub fn replayable(&self, routed: bool, prediction: &Prediction) -> bool {
        if prediction.source != Source::Cache {
            return false;
        }
        let model = &prediction.model;
        let shadowed = routed
            && self
                .catalog()
                .snapshot()
                .route(&model.name)
                .is_some_and(|route| is_shadowed(route, model));
        !shadowed
    }

    /// Until when the cache entry `prediction` (an answer to a request for `game`) was served
    /// from or stored in stays fresh: how long a client may keep the answer. `None` for a
    /// stale answer, or when nothing holds it (the cache off, the entry evicted).
    pub async fn fresh_until(&self, game: GameRef, prediction: &Prediction) -> Option<Instant> {
        if prediction.stale {
            return None;
        }
        let key = Self::key_of(&prediction.model, game, prediction.feature_hash);
        self.caches().predictions.fresh_until(&key).await
    }
}
