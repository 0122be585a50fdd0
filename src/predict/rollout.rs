//! Rolling out model versions: routing shared by the replicas through Redis, and the
//! rollback guard that takes a canary's weight away when it does worse than stable.
//!
//! A routing change made on any replica (an operator's `PUT .../routing`, a guard rollback)
//! is stored in Redis under `routing:{model}` and its model name published on the `routing`
//! channel; every replica, the one that made it included, reads the stored routing and
//! applies it, loading from its own `models.dir` any version it names that is not loaded
//! yet. A replica that starts later reads the stored routing of each model before serving.
//! Without Redis, routing is per replica.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::core::Metric;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::recorder::Paired;
use super::service::PredictService;
use crate::cache::{ROUTING_CHANNEL, RoutingKey, SharedTier};
use crate::models::{GuardSpec, RoutingState, ServedModel};
use crate::monitoring::Metrics;
use crate::telemetry::Chain;
use crate::validation::{InvalidSetting, at_least_one};

/// Reads the routing stored in Redis for model `name` and applies it here.
async fn pull(service: &PredictService, shared: &SharedTier, name: &str) {
    let key = shared.key(&RoutingKey(name));
    let Some(bytes) = shared.read(&key).await else {
        return;
    };
    let state: RoutingState = match serde_json::from_slice(&bytes) {
        Ok(state) => state,
        Err(error) => {
            tracing::warn!(model = name, %error, "ignored a stored routing that is not valid");
            return;
        }
    };
    match service.catalog().apply_remote(name, state).await {
        Ok(true) => tracing::info!(model = name, "routing applied from Redis"),
        Ok(false) => {}
        Err(error) => {
            tracing::warn!(model = name, error = %Chain(&error), "cannot apply the shared routing; keeping this replica's");
        }
    }
}

/// Stores a routing this replica set and tells every replica.
async fn push(shared: &SharedTier, name: &str, state: &RoutingState) {
    let key = shared.key(&RoutingKey(name));
    let stored = match serde_json::to_vec(state) {
        Ok(bytes) => shared.set_persistent(&key, bytes).await,
        Err(error) => {
            tracing::error!(model = name, %error, "cannot encode a routing");
            None
        }
    };
    let notified = shared.publish(ROUTING_CHANNEL, name).await;
    if stored.is_none() || notified.is_none() {
        tracing::warn!(
            model = name,
            "Redis did not take the routing; other replicas keep theirs until it does"
        );
    }
}

/// Applies the routing stored for every model, then keeps this replica in step until
/// `stop`: its own changes go to Redis, everyone's come back from it.
pub async fn share_routing(
    service: &PredictService,
    shared: &Arc<SharedTier>,
    stop: &CancellationToken,
    tasks: &TaskTracker,
) {
    let names: Vec<String> = service
        .catalog()
        .snapshot()
        .routes()
        .iter()
        .map(|route| route.name.to_string())
        .collect();
    for name in &names {
        pull(service, shared, name).await;
    }

    // Announcements arrive on the subscription's task; the routing is applied on this one.
    let (announced, mut announcements) = mpsc::unbounded_channel::<String>();
    shared.follow(stop.clone(), ROUTING_CHANNEL, move |name| {
        let _ = announced.send(name);
    });
    let (follower, shared_in) = (service.clone(), Arc::clone(shared));
    tasks.spawn(stop.clone().run_until_cancelled_owned(async move {
        while let Some(name) = announcements.recv().await {
            pull(&follower, &shared_in, &name).await;
        }
    }));

    let mut changes = service.catalog().routing_changes();
    let (service, shared_out) = (service.clone(), Arc::clone(shared));
    tasks.spawn(stop.clone().run_until_cancelled_owned(async move {
        loop {
            match changes.recv().await {
                Ok((name, state)) => push(&shared_out, &name, &state).await,
                // Some changes were missed: push every model's routing as it is now.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let snapshot = service.catalog().snapshot();
                    for route in snapshot.routes() {
                        push(&shared_out, &route.name, &route.state).await;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    }));
}

/// `[rollout]`: shadow scoring and the rollback guard.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutSettings {
    /// Shadow predictions that may wait; beyond, they are dropped and counted.
    pub shadow_queue: usize,
    /// How often the rollback guard looks at each canary.
    pub guard_interval_ms: u64,
}

impl RolloutSettings {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        at_least_one(&[
            ("rollout.shadow_queue", self.shadow_queue as u64),
            ("rollout.guard_interval_ms", self.guard_interval_ms),
        ])
    }
}

/// A canary needs this many answers in the window before its error rate and p95 count.
const MIN_ANSWERS: u64 = 20;

/// A canary's answer counters at one moment.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    failures: u64,
    /// Cumulative answers at or below each latency bound, with the bound in seconds; the
    /// last bound is +Inf (every answer).
    buckets: Vec<(f64, u64)>,
}

impl Sample {
    fn of(model: &ServedModel) -> Self {
        let metrics = model.pool.metrics();
        let histogram = metrics.answer.metric();
        let mut buckets: Vec<(f64, u64)> = histogram
            .get_histogram()
            .get_bucket()
            .iter()
            .map(|b| (b.upper_bound(), b.cumulative_count()))
            .collect();
        buckets.push((f64::INFINITY, histogram.get_histogram().get_sample_count()));
        Self {
            at: Instant::now(),
            failures: metrics.failures.get(),
            buckets,
        }
    }

    fn answers(&self) -> u64 {
        self.buckets.last().map_or(0, |(_, count)| *count)
    }
}

/// What happened between two samples: answers, failures, and the p95 latency in ms (the
/// upper bound of the bucket it falls in, as Prometheus' `histogram_quantile` would bound it).
fn window(oldest: &Sample, latest: &Sample) -> (u64, u64, f64) {
    let answers = latest.answers().saturating_sub(oldest.answers());
    let failures = latest.failures.saturating_sub(oldest.failures);
    let wanted = (answers as f64 * 0.95).ceil() as u64;
    let p95 = latest
        .buckets
        .iter()
        .zip(&oldest.buckets)
        .find(|((_, now), (_, then))| now.saturating_sub(*then) >= wanted)
        .map_or(f64::INFINITY, |((bound, _), _)| bound * 1000.0);
    (answers, failures, p95)
}

/// Why the guard rolled a canary back.
fn verdict(
    guard: &GuardSpec,
    (answers, failures, p95_ms): (u64, u64, f64),
    paired: Option<Paired>,
) -> Option<(&'static str, String)> {
    if answers >= MIN_ANSWERS {
        let rate = failures as f64 / answers as f64;
        if rate > guard.max_error_rate {
            return Some((
                "errors",
                format!(
                    "{failures} of {answers} answers failed ({:.2} %) in the last {} s; the limit is {:.2} %",
                    rate * 100.0,
                    guard.window_secs,
                    guard.max_error_rate * 100.0
                ),
            ));
        }
        if p95_ms > guard.max_p95_ms {
            return Some((
                "latency",
                format!(
                    "p95 {p95_ms} ms over {answers} answers in the last {} s; the limit is {} ms",
                    guard.window_secs, guard.max_p95_ms
                ),
            ));
        }
    }
    let paired = paired?;
    let worse = paired.brier_a - paired.brier_b;
    (paired.games >= guard.min_games && worse > guard.brier_margin).then(|| {
        (
            "quality",
            format!(
                "Brier {:.4} vs stable {:.4} on the same {} games with results: worse by {worse:.4}, more than the margin {}",
                paired.brier_a, paired.brier_b, paired.games, guard.brier_margin
            ),
        )
    })
}

/// Looks at every canary each `interval` until `stop`, and rolls back one that breaks its
/// model's guard: its weight goes to the stable version, the reason goes into the routing
/// (`GET .../routing`), the metrics and the log.
pub async fn run_guard(
    service: PredictService,
    metrics: Metrics,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut samples: HashMap<(Arc<str>, Arc<str>), VecDeque<Sample>> = HashMap::new();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while stop.run_until_cancelled(ticks.tick()).await.is_some() {
        let snapshot = service.catalog().snapshot();
        let mut watched = Vec::new();
        for route in snapshot.routes() {
            let (Some(guard), Some(stable)) = (&route.state.spec.guard, route.stable()) else {
                continue;
            };
            for (version, _) in route.state.weighted() {
                let Some(canary) = snapshot.version(&route.name, version) else {
                    continue;
                };
                if Arc::ptr_eq(canary, stable) {
                    continue;
                }
                let key = (Arc::clone(&canary.name), Arc::clone(&canary.version));
                watched.push(key.clone());
                let history = samples.entry(key).or_default();
                history.push_back(Sample::of(canary));
                let horizon = Duration::from_secs(guard.window_secs);
                while history.front().is_some_and(|s| s.at.elapsed() > horizon) {
                    history.pop_front();
                }
                let (Some(oldest), Some(latest)) = (history.front(), history.back()) else {
                    continue;
                };
                let recent = window(oldest, latest);
                let paired = service
                    .recorder()
                    .paired(&route.name, (version, &stable.version), service.source())
                    .await
                    .unwrap_or_else(|error| {
                        tracing::warn!(model = %route.name, error = %Chain(&error), "guard: quality cannot be read now");
                        None
                    });
                let Some((kind, reason)) = verdict(guard, recent, paired) else {
                    continue;
                };
                match service
                    .catalog()
                    .trip(&route.name, version, reason.clone())
                    .await
                {
                    Ok(Some(_)) => {
                        metrics.guard_tripped(&route.name, version, kind);
                        tracing::warn!(model = %route.name, version, kind, %reason, "guard: canary rolled back");
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::error!(model = %route.name, version, error = %Chain(&error), "guard: cannot roll back");
                    }
                }
            }
        }
        samples.retain(|key, _| watched.contains(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(failures: u64, counts: &[u64]) -> Sample {
        let bounds = [0.01, 0.1, 1.0, f64::INFINITY];
        Sample {
            at: Instant::now(),
            failures,
            buckets: bounds.iter().copied().zip(counts.iter().copied()).collect(),
        }
    }

    #[test]
    fn the_window_counts_answers_failures_and_bounds_the_p95() {
        let oldest = sample(1, &[10, 10, 10, 10]);
        // 100 answers since: 90 under 10 ms, 8 under 100 ms, 2 under 1 s.
        let latest = sample(4, &[100, 108, 110, 110]);
        assert_eq!(window(&oldest, &latest), (100, 3, 100.0));
    }

    #[test]
    fn the_guard_trips_on_errors_latency_or_quality_and_not_below_its_minimums() {
        let guard = GuardSpec::default();
        let paired = |games, a, b| {
            Some(Paired {
                games,
                brier_a: a,
                brier_b: b,
            })
        };
        let kind = |recent, quality| verdict(&guard, recent, quality).map(|(kind, _)| kind);
        assert_eq!(kind((100, 2, 50.0), None), Some("errors"));
        assert_eq!(kind((100, 0, 800.0), None), Some("latency"));
        assert_eq!(kind((5, 5, 800.0), None), None, "too few answers to judge");
        assert_eq!(
            kind((100, 0, 50.0), paired(600, 0.26, 0.24)),
            Some("quality")
        );
        assert_eq!(
            kind((100, 0, 50.0), paired(100, 0.26, 0.24)),
            None,
            "too few games"
        );
        assert_eq!(
            kind((100, 0, 50.0), paired(600, 0.242, 0.24)),
            None,
            "within the margin"
        );
    }
}
