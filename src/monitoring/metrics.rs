//! Prometheus metrics under the prefix `bullpen_`, one registry per application (tests run
//! many in one process). Counters other modules keep (cache lookups, the Redis tier, the
//! prediction log) are Prometheus counters themselves, so the hot path pays one atomic add;
//! state (queue depths, pools, the breaker) is read when `/metrics` is scraped. Labels are
//! bounded and typed: routes are patterns, never paths; tiers, pools and reasons are enums;
//! no game ids or credentials. Handles are resolved once (per route, per model version) and
//! kept by their owner, so counting on the hot path needs no label lookup.

use std::sync::{Arc, RwLock};

use prometheus::core::Collector;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use serde::Deserialize;

use super::load_report::LoadFigures;
use super::quality::Quality;

/// `[monitoring]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringSettings {
    /// Count every request and prediction; off only to measure what counting costs.
    pub request_metrics: bool,
}

fn route_metrics(requests: &IntCounterVec, duration: &HistogramVec, pattern: &str) -> RouteMetrics {
    RouteMetrics {
        pattern: pattern.into(),
        duration: duration.with_label_values(&[pattern]),
        counters: requests.clone(),
        requests: RwLock::default(),
    }
}

/// Latency buckets in seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Inference buckets in seconds: 2 µs to 1 s.
const INFERENCE_BUCKETS: &[f64] = &[
    0.000_002, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
    0.005, 0.01, 0.025, 0.1, 1.0,
];

/// Why a request was refused.
#[derive(Debug, Clone, Copy)]
pub enum Rejection {
    Auth,
    RateLimit,
    Admission,
    Validation,
}

impl Rejection {
    fn label(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::RateLimit => "rate_limit",
            Self::Admission => "admission",
            Self::Validation => "validation",
        }
    }
}

/// A cache tier, as `cache_lookups_total` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheTier {
    Memory,
    Redis,
}

impl CacheTier {
    pub const ALL: [Self; 2] = [Self::Memory, Self::Redis];

    pub fn label(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
        }
    }
}

/// Where a served prediction came from, as `predictions_total` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    Memory,
    Redis,
    Computed,
    Stale,
}

impl Answered {
    const ALL: [Self; 4] = [Self::Memory, Self::Redis, Self::Computed, Self::Stale];

    fn label(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::Computed => "computed",
            Self::Stale => "stale",
        }
    }
}

/// The protocol a prediction was asked over, as `predictions_total` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `/api/v1`.
    #[default]
    V1,
    /// The Open Inference Protocol over REST (`/v2`).
    V2,
    /// The Open Inference Protocol over gRPC.
    Grpc,
}

impl Protocol {
    const ALL: [Self; 3] = [Self::V1, Self::V2, Self::Grpc];

    fn label(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
            Self::Grpc => "grpc",
        }
    }
}

/// A connection pool, as `pool_connections` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolName {
    Postgres,
    PredictionLog,
    Redis,
}

impl PoolName {
    fn label(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::PredictionLog => "prediction_log",
            Self::Redis => "redis",
        }
    }
}

/// The handles of one model version: predictions by [`Answered`], inference timings, the
/// queue depth. Kept by the loaded version itself, so they go when it goes.
#[derive(Debug, Clone)]
pub struct ModelMetrics {
    /// By protocol, then tier; `None` when requests are not counted.
    predictions: Option<[[IntCounter; 4]; 3]>,
    pub queue: Histogram,
    pub run: Histogram,
    queue_depth: IntGauge,
    /// Time to answer each prediction this version served (or failed): the guard's latency.
    pub answer: Histogram,
    /// Predictions this version failed to make (5xx): the guard's error rate.
    pub failures: IntCounter,
    /// Shadow predictions by outcome: scored, dropped (queue full), failed.
    shadow: [IntCounter; 3],
}

/// What became of a shadow prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowOutcome {
    Scored,
    /// The shadow queue was full: dropped, never the answer.
    Dropped,
    Failed,
}

impl ShadowOutcome {
    const ALL: [Self; 3] = [Self::Scored, Self::Dropped, Self::Failed];

    fn label(self) -> &'static str {
        match self {
            Self::Scored => "scored",
            Self::Dropped => "dropped",
            Self::Failed => "failed",
        }
    }
}

impl ModelMetrics {
    /// Counts `count` predictions served over `protocol`.
    pub fn served(&self, protocol: Protocol, answered: Answered, count: u64) {
        if let Some(counters) = &self.predictions {
            counters[protocol as usize][answered as usize].inc_by(count);
        }
    }

    pub fn shadow(&self, outcome: ShadowOutcome) {
        self.shadow[outcome as usize].inc();
    }

    /// Shadow predictions with `outcome` so far.
    pub fn shadow_count(&self, outcome: ShadowOutcome) -> u64 {
        self.shadow[outcome as usize].get()
    }

    pub fn set_queue_depth(&self, depth: usize) {
        self.queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }
}

/// The handles of one route pattern: its latency histogram, and a requests counter per
/// `(method, status)` resolved on first use.
#[derive(Debug)]
pub struct RouteMetrics {
    pattern: Arc<str>,
    duration: Histogram,
    counters: IntCounterVec,
    requests: RwLock<Vec<(&'static str, u16, IntCounter)>>,
}

impl RouteMetrics {
    /// Counts one answer of this route and its time. A method outside HTTP's own is counted
    /// as `other`, so a client cannot add series by inventing methods.
    pub fn observe(&self, method: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.duration.observe(seconds);
        {
            let known = self
                .requests
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((_, _, counter)) =
                known.iter().find(|(m, s, _)| *m == method && *s == status)
            {
                counter.inc();
                return;
            }
        }
        let counter =
            self.counters
                .with_label_values(&[&*self.pattern, method, &status.to_string()]);
        counter.inc();
        self.requests
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((method, status, counter));
    }
}

/// The `method` label: one of HTTP's methods, or `other`.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("other")
}

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Whether each HTTP request and prediction is counted (`monitoring.request_metrics`);
    /// off only to measure what counting costs.
    pub count_requests: bool,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    /// Requests that matched no route.
    unmatched: Arc<RouteMetrics>,
    pub in_flight: IntGauge,
    predictions: IntCounterVec,
    cache_lookups: IntCounterVec,
    inference_queue: HistogramVec,
    inference_run: HistogramVec,
    inference_queue_depth: IntGaugeVec,
    rejections: IntCounterVec,
    pool_connections: IntGaugeVec,
    pub redis_errors: IntCounter,
    pub redis_skipped: IntCounter,
    pub redis_breaker: IntGauge,
    pub log_written: IntCounter,
    pub log_dropped: IntCounter,
    pub log_failed: IntCounter,
    pub requests_per_second: Gauge,
    pub schedule_games_starting: IntGauge,
    pub schedule_expected_requests_per_second: Gauge,
    pub lb_weight_percent: IntGauge,
    /// The figures of the ORCA load reports (`lb.orca`), set with the weight.
    pub load_figures: Arc<LoadFigures>,
    model_quality: GaugeVec,
    routing_weight: IntGaugeVec,
    guard_trips: IntCounterVec,
    model_answer: HistogramVec,
    model_failures: IntCounterVec,
    shadow_predictions: IntCounterVec,
    grpc_requests: IntCounterVec,
    grpc_duration: HistogramVec,
}

/// `collector`, registered with `registry`.
fn registered<C: Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> Result<C, MetricsError> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

#[derive(Debug, thiserror::Error)]
#[error("cannot register the metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace("bullpen")
}

impl Metrics {
    /// Inference calls waiting on the model version with the most waiting.
    pub fn inference_queue_depth_max(&self) -> i64 {
        self.inference_queue_depth
            .collect()
            .iter()
            .flat_map(prometheus::proto::MetricFamily::get_metric)
            .map(|metric| metric.get_gauge().get_value() as i64)
            .max()
            .unwrap_or(0)
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one registration per metric, read best as one list"
    )]
    pub fn new(settings: &MonitoringSettings) -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let counter = |name, help| -> Result<IntCounter, MetricsError> {
            let counter = IntCounter::with_opts(opts(name, help))?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        let counters = |name, help, labels: &[&str]| -> Result<IntCounterVec, MetricsError> {
            let vec = IntCounterVec::new(opts(name, help), labels)?;
            registry.register(Box::new(vec.clone()))?;
            Ok(vec)
        };
        let gauges = |name, help, labels: &[&str]| -> Result<IntGaugeVec, MetricsError> {
            let vec = IntGaugeVec::new(opts(name, help), labels)?;
            registry.register(Box::new(vec.clone()))?;
            Ok(vec)
        };
        let histograms = |name, help, buckets: &[f64], labels: &[&str]| {
            let options = HistogramOpts::new(name, help)
                .namespace("bullpen")
                .buckets(buckets.to_vec());
            let vec = HistogramVec::new(options, labels)?;
            registry.register(Box::new(vec.clone()))?;
            Ok::<_, MetricsError>(vec)
        };
        let in_flight = registered(
            &registry,
            IntGauge::with_opts(opts(
                "http_requests_in_flight",
                "HTTP requests being served now.",
            ))?,
        )?;
        let redis_breaker = registered(
            &registry,
            IntGauge::with_opts(opts(
                "redis_breaker_state",
                "The Redis circuit breaker: 0 closed, 1 half-open, 2 open.",
            ))?,
        )?;
        let requests_per_second = registered(
            &registry,
            Gauge::with_opts(opts(
                "http_requests_per_second",
                "HTTP requests per second, smoothed over about 10 s (for autoscaling).",
            ))?,
        )?;
        let schedule_games_starting = registered(
            &registry,
            IntGauge::with_opts(opts(
                "schedule_games_starting",
                "Games of the schedule whose first pitch is within schedule.lookahead_minutes (for autoscaling ahead of them).",
            ))?,
        )?;
        let lb_weight_percent = registered(
            &registry,
            IntGauge::with_opts(opts(
                "lb_weight_percent",
                "The weight this replica reports to HAProxy's agent check (lb.agent_port): 1-100 from its headroom, 0 while not ready.",
            ))?,
        )?;
        let schedule_expected_requests_per_second = registered(
            &registry,
            Gauge::with_opts(opts(
                "schedule_expected_requests_per_second",
                "Requests per second this replica expects from the games starting within the lookahead, from what the games before them drew here.",
            ))?,
        )?;
        let model_quality = GaugeVec::new(
            opts(
                "model_quality",
                "Live quality of served predictions whose games have results: brier, log_loss, accuracy, games.",
            ),
            &["model", "version", "measure"],
        )?;
        registry.register(Box::new(model_quality.clone()))?;
        registry.register(Box::new(crate::telemetry::log_lines_dropped()))?;
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::new(
                std::process::id().cast_signed(),
                "bullpen",
            ),
        ))?;

        let http_requests = counters(
            "http_requests_total",
            "HTTP requests answered, by route pattern, method and status.",
            &["route", "method", "status"],
        )?;
        let http_duration = histograms(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route pattern.",
            LATENCY_BUCKETS,
            &["route"],
        )?;
        Ok(Self {
            unmatched: Arc::new(route_metrics(&http_requests, &http_duration, "unmatched")),
            http_requests,
            http_duration,
            in_flight,
            predictions: counters(
                "predictions_total",
                "Predictions served, by model, version, where the answer came from (memory, redis, computed, stale) and the protocol asked over (v1, v2, grpc).",
                &["model", "version", "tier", "protocol"],
            )?,
            cache_lookups: counters(
                "cache_lookups_total",
                "Cache lookups by tier (memory, redis) and result (hit, miss).",
                &["tier", "result"],
            )?,
            inference_queue: histograms(
                "inference_queue_seconds",
                "Time an inference call waited for a session.",
                INFERENCE_BUCKETS,
                &["model", "version"],
            )?,
            inference_run: histograms(
                "inference_run_seconds",
                "Time an inference call ran in ONNX Runtime.",
                INFERENCE_BUCKETS,
                &["model", "version"],
            )?,
            inference_queue_depth: gauges(
                "inference_queue_depth",
                "Inference calls waiting for a dedicated thread.",
                &["model", "version"],
            )?,
            routing_weight: gauges(
                "model_routing_weight",
                "Share (0-100) of a model's unpinned requests each loaded version serves.",
                &["model", "version"],
            )?,
            guard_trips: counters(
                "model_guard_trips_total",
                "Canaries the rollback guard took the weight from, by reason (errors, latency, quality).",
                &["model", "version", "reason"],
            )?,
            model_answer: histograms(
                "model_answer_seconds",
                "Time to answer a prediction, by the model version that served it.",
                LATENCY_BUCKETS,
                &["model", "version"],
            )?,
            model_failures: counters(
                "model_failures_total",
                "Predictions a model version failed to make (inference failed or overloaded).",
                &["model", "version"],
            )?,
            shadow_predictions: counters(
                "shadow_predictions_total",
                "Predictions made off the response path by shadow versions, by outcome (scored, dropped: queue full, failed).",
                &["model", "version", "outcome"],
            )?,
            grpc_requests: counters(
                "grpc_requests_total",
                "gRPC calls answered, by method (ModelInfer, ...) and status code (OK, INVALID_ARGUMENT, ...).",
                &["rpc", "code"],
            )?,
            grpc_duration: histograms(
                "grpc_request_duration_seconds",
                "Time to answer a gRPC call, by method.",
                LATENCY_BUCKETS,
                &["rpc"],
            )?,
            rejections: counters(
                "rejections_total",
                "Requests refused, by reason (auth, rate_limit, admission, validation).",
                &["reason"],
            )?,
            pool_connections: gauges(
                "pool_connections",
                "Connections of each pool (postgres, postgres_read, redis) by state (in_use, idle).",
                &["pool", "state"],
            )?,
            redis_errors: counter(
                "redis_errors_total",
                "Redis calls that failed or timed out (never returned to a client).",
            )?,
            redis_skipped: counter(
                "redis_skipped_total",
                "Redis calls not made because the circuit breaker was open.",
            )?,
            redis_breaker,
            log_written: counter(
                "prediction_log_written_total",
                "Predictions written to the PostgreSQL prediction log.",
            )?,
            log_dropped: counter(
                "prediction_log_dropped_total",
                "Predictions not logged because the log queue was full.",
            )?,
            log_failed: counter(
                "prediction_log_failed_total",
                "Predictions lost because PostgreSQL refused their batch after every retry.",
            )?,
            requests_per_second,
            schedule_games_starting,
            schedule_expected_requests_per_second,
            lb_weight_percent,
            load_figures: Arc::default(),
            model_quality,
            registry,
            count_requests: settings.request_metrics,
        })
    }

    /// The hit and miss counters of one cache tier.
    pub fn cache_counters(&self, tier: CacheTier) -> (IntCounter, IntCounter) {
        (
            self.cache_lookups.with_label_values(&[tier.label(), "hit"]),
            self.cache_lookups
                .with_label_values(&[tier.label(), "miss"]),
        )
    }

    /// The handles of model `name` version `version`.
    pub fn model(&self, name: &str, version: &str) -> ModelMetrics {
        let labels = [name, version];
        ModelMetrics {
            predictions: self.count_requests.then(|| {
                Protocol::ALL.map(|protocol| {
                    Answered::ALL.map(|answered| {
                        self.predictions.with_label_values(&[
                            name,
                            version,
                            answered.label(),
                            protocol.label(),
                        ])
                    })
                })
            }),
            queue: self.inference_queue.with_label_values(&labels),
            run: self.inference_run.with_label_values(&labels),
            queue_depth: self.inference_queue_depth.with_label_values(&labels),
            answer: self.model_answer.with_label_values(&labels),
            failures: self.model_failures.with_label_values(&labels),
            shadow: ShadowOutcome::ALL.map(|outcome| {
                self.shadow_predictions
                    .with_label_values(&[name, version, outcome.label()])
            }),
        }
    }

    /// The handles of the route `pattern` (`/api/v1/predict`).
    pub fn route(&self, pattern: &str) -> RouteMetrics {
        route_metrics(&self.http_requests, &self.http_duration, pattern)
    }

    /// The handles for requests that matched no route.
    pub fn unmatched(&self) -> &RouteMetrics {
        &self.unmatched
    }

    pub fn set_pool(&self, pool: PoolName, in_use: u32, idle: u32) {
        let gauge = |state| {
            self.pool_connections
                .with_label_values(&[pool.label(), state])
        };
        gauge("in_use").set(i64::from(in_use));
        gauge("idle").set(i64::from(idle));
    }

    /// Publishes the live quality of model `name` version `version`.
    pub fn set_quality(&self, name: &str, version: &str, quality: &Quality) {
        let measures = [
            ("brier", quality.brier),
            ("log_loss", quality.log_loss),
            ("accuracy", quality.accuracy),
            ("games", quality.games as f64),
        ];
        for (measure, value) in measures {
            self.model_quality
                .with_label_values(&[name, version, measure])
                .set(value);
        }
    }

    pub fn set_routing_weight(&self, name: &str, version: &str, weight: u8) {
        self.routing_weight
            .with_label_values(&[name, version])
            .set(i64::from(weight));
    }

    /// Forgets the series of a version no longer loaded.
    pub fn forget_version(&self, name: &str, version: &str) {
        let _ = self.routing_weight.remove_label_values(&[name, version]);
        let _ = self
            .inference_queue_depth
            .remove_label_values(&[name, version]);
    }

    pub fn guard_tripped(&self, name: &str, version: &str, reason: &str) {
        self.guard_trips
            .with_label_values(&[name, version, reason])
            .inc();
    }

    /// Counts one gRPC call of method `rpc` answered with status `code`, and its time.
    pub fn grpc_answered(&self, rpc: &str, code: &str, seconds: f64) {
        if !self.count_requests {
            return;
        }
        self.grpc_requests.with_label_values(&[rpc, code]).inc();
        self.grpc_duration
            .with_label_values(&[rpc])
            .observe(seconds);
    }

    pub fn rejected(&self, reason: Rejection) {
        self.rejections.with_label_values(&[reason.label()]).inc();
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|error| format!("# cannot encode the metrics: {error}\n"))
    }

    /// All HTTP requests answered so far, and those answered with a 5xx.
    pub fn http_totals(&self) -> (u64, u64) {
        let mut total = 0;
        let mut errors = 0;
        for family in self.http_requests.collect() {
            for metric in family.get_metric() {
                let count = metric.get_counter().get_value() as u64;
                total += count;
                let server_error = metric
                    .get_label()
                    .iter()
                    .any(|label| label.name() == "status" && label.value().starts_with('5'));
                if server_error {
                    errors += count;
                }
            }
        }
        (total, errors)
    }

    /// The request-latency histogram summed over routes: cumulative counts per bucket bound.
    pub fn latency_buckets(&self) -> Vec<(f64, u64)> {
        let mut buckets: Vec<(f64, u64)> = LATENCY_BUCKETS.iter().map(|b| (*b, 0)).collect();
        for family in self.http_duration.collect() {
            for metric in family.get_metric() {
                for (sum, bucket) in buckets.iter_mut().zip(metric.get_histogram().get_bucket()) {
                    sum.1 += bucket.cumulative_count();
                }
            }
        }
        buckets
    }
}
