//! Results during a season. A set of results is applied to the feature store (which checks
//! it whole), then the cached features and predictions of every later game are dropped here
//! and the earliest changed date announced on Redis; every other replica brings its view of
//! the games up to the store and drops its own. The cache keys carry the history of games
//! they were computed from, so a replica that misses the announcement still reads nothing
//! computed before a result it knows of: it learns of results within `features.refresh_ms`
//! by checking the store itself.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::service::PredictService;
use crate::cache::RESULTS_CHANNEL;
use crate::features::{FeatureSource, IngestError, Ingested, ResultsBody};
use crate::telemetry::Chain;

impl PredictService {
    /// Applies `body`'s results; what depended on the games they change is dropped here and
    /// on every replica.
    pub async fn ingest_results(&self, body: ResultsBody) -> Result<Ingested, IngestError> {
        let today = chrono::Utc::now().date_naive();
        let count = body.results.len();
        let outcome = self
            .source()
            .ingest(body.results, body.correct, today)
            .await?;
        tracing::info!(
            results = count,
            added = outcome.added.len(),
            corrected = outcome.corrected.len(),
            unchanged = outcome.unchanged.len(),
            changed_from = ?outcome.changed_from,
            "results applied"
        );
        if let Some(from) = outcome.changed_from {
            self.caches().invalidate_after(from);
            if let Some(shared) = self.caches().shared() {
                let notified = shared.publish(RESULTS_CHANNEL, &from.to_string()).await;
                let deleted = shared.delete_games_after(from).await;
                tracing::info!(
                    ?notified,
                    ?deleted,
                    "replicas told of the results; cached values of later games deleted"
                );
            }
        }
        Ok(outcome)
    }

    /// Brings this replica's view of the games up to the store, dropping what depended on
    /// the games that changed. `failing` says whether the last check failed: a store that
    /// stays down is logged once, and its return once.
    async fn catch_up(&self, failing: &mut bool) {
        match self.source().refresh().await {
            Ok(changed) => {
                if std::mem::take(failing) {
                    tracing::info!("the games can be checked for new results again");
                }
                if let Some(from) = changed {
                    tracing::info!(changed_from = %from, "results written elsewhere applied");
                    self.caches().invalidate_after(from);
                }
            }
            Err(error) if !*failing => {
                *failing = true;
                tracing::warn!(error = %Chain(&error), "cannot check the games for new results");
            }
            Err(_) => {}
        }
    }
}

/// With the PostgreSQL store: keeps this replica's view of the games in step with the table
/// until `stop`, at once when a replica announces results on Redis, and every `interval`.
pub fn follow_results(
    service: &PredictService,
    interval: Duration,
    stop: &CancellationToken,
    tasks: &TaskTracker,
) {
    if !matches!(service.source(), FeatureSource::Postgres(_)) {
        return;
    }
    let announced = Arc::new(Notify::new());
    if let Some(shared) = service.caches().shared() {
        let announced = Arc::clone(&announced);
        shared.follow(stop.clone(), RESULTS_CHANNEL, move |_: String| {
            announced.notify_one();
        });
    }
    let service = service.clone();
    tasks.spawn(stop.clone().run_until_cancelled_owned(async move {
        // The view is built at once, not by the first request that needs it.
        let mut failing = false;
        loop {
            service.catch_up(&mut failing).await;
            tokio::select! {
                () = announced.notified() => {}
                () = tokio::time::sleep(interval) => {}
            }
        }
    }));
}
