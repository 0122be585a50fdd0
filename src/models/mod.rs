//! The models module: ONNX models on disk, their manifests, and the runtime that runs them.

mod manifest;
mod onnx;
pub mod runtime;

pub use manifest::{Manifest, ManifestError, ManifestSpec};
pub use onnx::{ModelError, OnnxModel};
