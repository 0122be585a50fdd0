//! The monitoring module: the prediction log (and, later, metrics and live calibration).

mod prediction_log;

pub use prediction_log::{LogCounters, LogEntry, LogWriter, PredictionLog};
