//! The prediction module: requests, games, the betting maths and the service that answers.

mod game;
mod odds;
mod request;
mod service;

pub use game::GameRef;
pub use odds::{DecimalOdds, MarketOdds, MarketView, OddsError, OddsFormat, SideValue};
pub use request::{BatchBody, OddsBody, PredictBody, PredictRequest, RequestError, ScheduledBody};
pub use service::{PredictError, PredictService, Prediction};
