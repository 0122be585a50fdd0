//! Shadow scoring: versions that score the requests another version answers, off the
//! response path, so two versions are compared on the same games.
//!
//! After an answer is recorded, the service offers a job per shadow version to a bounded
//! queue and returns: a full queue drops the job and counts it, never the answer. One task
//! takes the jobs and scores each through the prediction cache and the version's dedicated
//! inference threads (never the sessions requests use), then records the prediction as
//! shadow: into the prediction log (marked) and live quality.
//!
//! Who shadows a request routed to version `v` of a model: the model's shadow versions, and,
//! when `v` is a canary (weight, not the largest), the stable version, so the rollback guard
//! compares the canary with stable on identical games.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::recorder::Caller;
use crate::features::GameFeatures;
use crate::games::GameRef;
use crate::models::{Route, ServedModel};
use crate::monitoring::ShadowOutcome;

/// One shadow prediction to make.
#[derive(Debug)]
pub struct ShadowJob {
    pub model: Arc<ServedModel>,
    pub game: GameRef,
    pub features: GameFeatures,
    pub caller: Caller,
}

/// The service's side: offers never wait.
#[derive(Debug)]
pub struct ShadowQueue {
    sender: mpsc::Sender<ShadowJob>,
}

/// The worker's side, taken once by whoever runs the shadow work.
#[derive(Debug)]
pub struct ShadowJobs(mpsc::Receiver<ShadowJob>);

impl ShadowJobs {
    /// Waits for jobs, then moves what is waiting (up to `limit`) into `batch`; 0 once the
    /// queue is closed.
    pub async fn take(&mut self, batch: &mut Vec<ShadowJob>, limit: usize) -> usize {
        self.0.recv_many(batch, limit).await
    }
}

impl ShadowQueue {
    pub fn new(capacity: usize) -> (Self, ShadowJobs) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (Self { sender }, ShadowJobs(receiver))
    }

    /// Offers a job per version that shadows `served` on this request; a full queue drops
    /// the job (counted on the shadow version).
    pub fn offer(
        &self,
        route: &Route,
        served: &Arc<ServedModel>,
        game: GameRef,
        features: &GameFeatures,
        caller: &Caller,
    ) {
        let canary = route.weight(&served.version) > 0
            && route
                .stable()
                .is_some_and(|stable| !Arc::ptr_eq(stable, served));
        let stable = route.stable().filter(|_| canary);
        for model in route.shadow().iter().chain(stable) {
            if Arc::ptr_eq(model, served) {
                continue;
            }
            let job = ShadowJob {
                model: Arc::clone(model),
                game,
                features: *features,
                caller: caller.clone(),
            };
            if self.sender.try_send(job).is_err() {
                model.pool.metrics().shadow(ShadowOutcome::Dropped);
            }
        }
    }
}

/// Whether anything shadows requests served by `served` under `route`: the common case
/// (no shadow, the stable version) costs two comparisons.
pub fn is_shadowed(route: &Route, served: &Arc<ServedModel>) -> bool {
    !route.shadow().is_empty()
        || route
            .stable()
            .is_some_and(|stable| !Arc::ptr_eq(stable, served))
}
