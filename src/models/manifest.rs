//! The manifest beside each model: what it expects as input and how it was trained.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::features::FeatureSpec;

/// `models/<name>/<version>/manifest.json`, written by `training/train.py`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub created_at: String,
    /// File name of the ONNX graph, relative to the manifest.
    pub model_file: String,
    pub feature_spec: ManifestSpec,
    /// Name of the `[N, F]` float32 input.
    pub input: String,
    /// Name of the `[N, 2]` float32 class-probability output; column 1 is P(home win).
    pub output: String,
    pub training: serde_json::Value,
    pub metrics: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSpec {
    pub version: String,
    pub names: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid manifest: {source}")]
    Invalid {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl Manifest {
    pub const FILE_NAME: &str = "manifest.json";

    /// The spec of this build the manifest names, when it lists that spec's names exactly.
    pub fn served_spec(&self) -> Option<FeatureSpec> {
        FeatureSpec::named(&self.feature_spec.version)
            .filter(|spec| spec.names.iter().eq(self.feature_spec.names.iter()))
    }

    pub fn load(model_dir: &Path) -> Result<Self, ManifestError> {
        let path = model_dir.join(Self::FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ManifestError::Invalid { path, source })
    }
}
