//! The prediction service: requests, the betting maths, the service that answers them, and
//! what is recorded of every answer (metrics, the prediction log, live quality), and the
//! results that arrive during a season, and when an answer may be served again.

mod answer;
mod log;
mod odds;
mod recorder;
mod replay;
mod request;
mod rollout;
mod schedule;
mod season;
mod service;
mod shadow;

pub use answer::Prediction;
pub use log::{LogCounters, LogEntry, LogWriter, PredictionLog, PredictionLogSettings};
pub use odds::{DecimalOdds, MarketOdds, MarketView, OddsError, OddsFormat, SideValue};
pub use recorder::{Caller, Paired, Recorder};
pub use replay::Stamp;
pub use request::{
    BatchBody, OddsBody, PredictBody, PredictRequest, RequestError, ScheduledBody, StartersBody,
};
pub use rollout::{RolloutSettings, run_guard, share_routing};
pub use schedule::{Demand, ScheduleError, ScheduleSettings};
pub use season::follow_results;
pub use service::{InferInput, Inferred, PredictError, PredictService};
pub use shadow::{ShadowJob, ShadowJobs, ShadowQueue};
