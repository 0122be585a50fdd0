//! The prediction service: requests, the betting maths, the service that answers them, and
//! what is recorded of every answer (metrics, the prediction log, live quality).

mod log;
mod odds;
mod recorder;
mod request;
mod rollout;
mod service;

pub use log::{LogCounters, LogEntry, LogWriter, PredictionLog, PredictionLogSettings};
pub use odds::{DecimalOdds, MarketOdds, MarketView, OddsError, OddsFormat, SideValue};
pub use recorder::{Caller, Recorder};
pub use request::{BatchBody, OddsBody, PredictBody, PredictRequest, RequestError, ScheduledBody};
pub use rollout::share_routing;
pub use service::{PredictError, PredictService, Prediction};
