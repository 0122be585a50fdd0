//! The monitoring module: Prometheus metrics with typed labels, the once-a-second sampler
//! behind the status page and the autoscaling gauge, and the scoring of live model quality.
//!
//! A leaf: every layer may count into it, and it imports nothing of the crate above it.
//! What is recorded for each prediction is decided by the prediction service
//! (`predict::Recorder`); how a request is counted, by the HTTP layer (`http::metrics`).

mod load_report;
mod metrics;
pub mod quality;
mod sampler;

pub use load_report::{LoadFigures, ORCA_HEADER, ORCA_TRAILER, OrcaLoadReport};
pub use metrics::{
    Answered, CacheTier, Metrics, MetricsError, ModelMetrics, MonitoringSettings, PoolName,
    Protocol, Rejection, RouteMetrics, ShadowOutcome,
};
pub use sampler::{Live, Point, Sampler};
