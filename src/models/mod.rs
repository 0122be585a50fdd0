//! The models module: ONNX models on disk, their manifests, the runtime that runs them, and
//! the registry that serves them.

mod manifest;
mod onnx;
mod pool;
mod registry;
pub mod runtime;
mod settings;

pub use manifest::{Manifest, ManifestError, ManifestSpec};
pub use onnx::{ModelError, OnnxModel};
pub use pool::{InferenceError, InferencePool, PoolOptions};
pub use registry::{
    ModelRef, ModelRefError, ModelRegistry, RegistryError, RegistryOptions, ResolveError,
    ServedModel,
};
pub use settings::{InferenceSettings, ModelSettings};
