//! The models module: ONNX models on disk, their manifests, the runtime that runs them, and
//! the catalog that serves them and routes requests between versions.

mod catalog;
mod manifest;
mod onnx;
mod pool;
mod registry;
mod release;
mod routing;
pub mod runtime;
mod settings;

pub use catalog::{
    Catalog, CatalogError, CatalogOptions, Change, Rescan, Route, Snapshot, VersionChange,
    VersionFailure,
};
pub use manifest::{Manifest, ManifestError, ManifestSpec};
pub use onnx::{ModelError, OnnxModel};
pub use pool::{Batching, InferenceError, InferencePool, PoolOptions};
pub use registry::{
    ModelRef, ModelRefError, RegistryError, ResolveError, ServedModel, compare_versions,
};
pub use routing::{GuardSpec, RoutingError, RoutingSpec, RoutingState, Trip};
pub use settings::{InferenceSettings, ModelSettings};
