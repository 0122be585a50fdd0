//! The features module: point-in-time feature vectors for stored and scheduled games.

mod export;
mod history;
mod lookup;
mod postgres;
mod source;
mod spec;
mod state;
mod store;

pub use export::{ExportSummary, write_table};
pub use history::History;
pub use lookup::{GameFeatures, GameInfo};
pub use postgres::PostgresStore;
pub use source::FeatureSource;
pub use spec::{FEATURE_COUNT, FEATURE_SPEC, FeatureSpec, FeatureVector};
pub use store::{EmbeddedStore, FeatureStore, ScheduleError, StoreError};
