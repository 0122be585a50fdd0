//! Once a second: the smoothed requests-per-second gauge an autoscaler reads, and a short
//! history of request counts and latency buckets, from which the status page shows live
//! rates and percentiles.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::Metrics;

/// Seconds of history kept (the status page's charts).
const HISTORY: usize = 300;
/// The window of the live figures, in seconds.
const WINDOW: usize = 10;

#[derive(Debug, Clone)]
struct Sample {
    requests: u64,
    errors: u64,
    buckets: Vec<(f64, u64)>,
}

/// One point of the status page's charts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Point {
    /// Seconds before now.
    pub age: usize,
    pub requests_per_second: f64,
    pub p99_ms: Option<f64>,
}

/// The live figures over the last [`WINDOW`] seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Live {
    /// Requests answered since start, as of the last sample.
    pub requests_total: u64,
    pub requests_per_second: f64,
    pub smoothed_requests_per_second: f64,
    pub error_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub history: Vec<Point>,
}

#[derive(Debug, Default)]
pub struct Sampler {
    samples: Mutex<VecDeque<Sample>>,
}

impl Sampler {
    /// Samples `metrics` every second until `stop` is cancelled.
    pub async fn run(&self, metrics: &Metrics, stop: CancellationToken) {
        // A 10 s time constant for 1 s steps.
        let alpha = 1.0 - (-0.1f64).exp();
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stop.cancelled() => return,
            }
            let (requests, errors) = metrics.http_totals();
            let sample = Sample {
                requests,
                errors,
                buckets: metrics.latency_buckets(),
            };
            let mut samples = self.lock();
            if let Some(previous) = samples.back() {
                let rate = requests.saturating_sub(previous.requests) as f64;
                let smoothed = metrics.requests_per_second.get();
                metrics
                    .requests_per_second
                    .set(smoothed + alpha * (rate - smoothed));
            }
            samples.push_back(sample);
            if samples.len() > HISTORY + 1 {
                samples.pop_front();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Sample>> {
        self.samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn live(&self, metrics: &Metrics) -> Live {
        let samples = self.lock();
        let between = |newer: &Sample, older: &Sample, seconds: usize| {
            let requests = newer.requests.saturating_sub(older.requests);
            let buckets: Vec<(f64, u64)> = newer
                .buckets
                .iter()
                .zip(&older.buckets)
                .map(|(new, old)| (new.0, new.1.saturating_sub(old.1)))
                .collect();
            (requests as f64 / seconds as f64, buckets)
        };
        let mut live = Live {
            requests_total: samples.back().map_or(0, |sample| sample.requests),
            requests_per_second: 0.0,
            smoothed_requests_per_second: metrics.requests_per_second.get(),
            error_rate: None,
            p50_ms: None,
            p95_ms: None,
            p99_ms: None,
            history: Vec::new(),
        };
        let (Some(newest), len) = (samples.back(), samples.len()) else {
            return live;
        };
        let span = (len - 1).min(WINDOW);
        if span > 0 {
            let older = &samples[len - 1 - span];
            let (rate, buckets) = between(newest, older, span);
            let requests = newest.requests.saturating_sub(older.requests);
            let errors = newest.errors.saturating_sub(older.errors);
            live.requests_per_second = rate;
            live.error_rate = (requests > 0).then(|| errors as f64 / requests as f64);
            live.p50_ms = quantile_ms(&buckets, 0.50);
            live.p95_ms = quantile_ms(&buckets, 0.95);
            live.p99_ms = quantile_ms(&buckets, 0.99);
        }
        live.history = samples
            .iter()
            .zip(samples.iter().skip(1))
            .enumerate()
            .map(|(index, (older, newer))| {
                let (rate, buckets) = between(newer, older, 1);
                Point {
                    age: len - 2 - index,
                    requests_per_second: rate,
                    p99_ms: quantile_ms(&buckets, 0.99),
                }
            })
            .collect();
        live
    }
}

/// The `q` quantile in milliseconds from cumulative bucket counts, interpolating linearly
/// inside the bucket (as Prometheus's `histogram_quantile` does); `None` without requests.
fn quantile_ms(buckets: &[(f64, u64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut lower = (0.0, 0u64);
    for &(bound, count) in buckets {
        if count as f64 >= rank {
            let inside = (count - lower.1) as f64;
            let fraction = if inside > 0.0 {
                (rank - lower.1 as f64) / inside
            } else {
                0.0
            };
            return Some((lower.0 + (bound - lower.0) * fraction) * 1000.0);
        }
        lower = (bound, count);
    }
    Some(lower.0 * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        let buckets = [(0.001, 50), (0.002, 90), (0.004, 100)];
        assert_eq!(quantile_ms(&buckets, 0.5), Some(1.0));
        let p75 = quantile_ms(&buckets, 0.75).expect("requests");
        assert!((p75 - 1.625).abs() < 1e-9, "{p75}");
        assert_eq!(quantile_ms(&[(0.001, 0)], 0.5), None);
    }
}
