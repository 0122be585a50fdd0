//! The monitoring module: Prometheus metrics, the prediction log, live model quality and
//! the status page's numbers.

mod metrics;
mod prediction_log;
pub mod quality;
mod recorder;
mod sampler;

pub use metrics::{Metrics, MetricsError, Rejection};
pub use prediction_log::{LogCounters, LogEntry, LogWriter, PredictionLog};
pub use recorder::Recorder;
pub use sampler::{Live, Point, Sampler};
