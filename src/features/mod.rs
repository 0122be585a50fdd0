//! The features module: point-in-time feature vectors for stored and scheduled games, the
//! stores that hold them (embedded or PostgreSQL), final results arriving during a season,
//! the import that fills PostgreSQL, and the training table.

mod export;
mod history;
mod import;
mod journal;
mod live;
mod lookup;
mod pitching;
mod postgres;
mod results;
mod settings;
mod source;
mod spec;
mod state;
mod store;

pub use export::{ExportSummary, Table};
pub use history::{History, warmup_vector};
pub use import::{ImportError, ImportSummary, import_dir};
pub use journal::{JournalError, TornLine};
pub use live::{IngestError, LiveStore};
pub use lookup::{Decided, GameFeatures, GameInfo};
pub use postgres::PostgresStore;
pub use results::{
    CSV_COLUMNS, Ingested, LineBody, MAX_RESULTS, PlanError, ResultBody, ResultError, ResultsBody,
    read_csv,
};
pub use settings::{DataSettings, FeatureSettings, StoreKind};
pub use source::FeatureSource;
pub use spec::{
    FEATURE_COUNT, FEATURE_SPEC, FEATURE_SPEC_V2, FEATURE_SPECS, FeatureSpec, FeatureVector,
    STORED_SPEC, WIDTH,
};
pub use store::{EmbeddedStore, FeatureStore, ScheduleError, StoreError};
