//! One ONNX model and its session. `Session::run` takes `&mut self`, so an `OnnxModel` is
//! owned by whoever runs it; the server keeps one per inference thread.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use super::manifest::{Manifest, ManifestError};
use crate::features::{FEATURE_SPECS, FeatureSpec, FeatureVector};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(
        "model {model} expects feature spec {expected}, but this server computes {actual} \
         (each with its own names)"
    )]
    FeatureSpec {
        model: String,
        expected: String,
        actual: String,
    },
    #[error("model {model}: {reason}")]
    Shape { model: String, reason: String },
    #[error("model {path}: ONNX Runtime failed")]
    Onnx {
        path: PathBuf,
        #[source]
        source: ort::Error,
    },
    #[error("model {path}: cannot start an inference thread")]
    Thread {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug)]
pub struct OnnxModel {
    manifest: Manifest,
    path: PathBuf,
    /// The spec the manifest names: rows are read to its width.
    spec: FeatureSpec,
    session: Session,
}

impl OnnxModel {
    /// Reads the manifest in `dir`, checks it against this build's feature spec and opens
    /// the ONNX session with `intra_threads` threads and no spinning (a server shares cores).
    pub fn load(
        environment: &Environment,
        dir: &Path,
        intra_threads: usize,
    ) -> Result<Self, ModelError> {
        let manifest = Manifest::load(dir)?;
        let label = format!("{}@{}", manifest.name, manifest.version);
        let Some(spec) = manifest.served_spec() else {
            let computed: Vec<&str> = FEATURE_SPECS.iter().map(|spec| spec.version).collect();
            return Err(ModelError::FeatureSpec {
                model: label,
                expected: manifest.feature_spec.version.clone(),
                actual: computed.join(", "),
            });
        };
        let path = dir.join(&manifest.model_file);
        let session =
            open_session(environment, &path, intra_threads).map_err(|source| ModelError::Onnx {
                path: path.clone(),
                source,
            })?;

        let input = session
            .inputs()
            .iter()
            .find(|input| input.name() == manifest.input)
            .ok_or_else(|| ModelError::Shape {
                model: label.clone(),
                reason: format!("has no input named `{}`", manifest.input),
            })?;
        let width = input
            .dtype()
            .tensor_shape()
            .and_then(|shape| shape.last().copied());
        if width != i64::try_from(spec.width()).ok() {
            return Err(ModelError::Shape {
                model: label,
                reason: format!(
                    "input width is {width:?}, feature spec {} has {}",
                    spec.version,
                    spec.width()
                ),
            });
        }
        if !session
            .outputs()
            .iter()
            .any(|o| o.name() == manifest.output)
        {
            return Err(ModelError::Shape {
                model: label,
                reason: format!("has no output named `{}`", manifest.output),
            });
        }
        Ok(Self {
            manifest,
            path,
            spec,
            session,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The spec whose features this model reads.
    pub fn spec(&self) -> FeatureSpec {
        self.spec
    }

    /// P(home win) for each row.
    pub fn predict(&mut self, rows: &[FeatureVector]) -> Result<Vec<f32>, ModelError> {
        let width = self.spec.width();
        let flat: Vec<f32> = rows
            .iter()
            .flat_map(|row| row.of(&self.spec).iter().copied())
            .collect();
        let input = Array2::from_shape_vec((rows.len(), width), flat)
            .expect("each row gives the spec's width; this is a bug");
        let onnx_error = |source: ort::Error| ModelError::Onnx {
            path: self.path.clone(),
            source,
        };
        let tensor = TensorRef::from_array_view(&input).map_err(onnx_error)?;
        let outputs = self
            .session
            .run(ort::inputs![self.manifest.input.as_str() => tensor])
            .map_err(onnx_error)?;
        let probabilities = outputs[self.manifest.output.as_str()]
            .try_extract_array::<f32>()
            .map_err(onnx_error)?;
        if probabilities.shape() != [rows.len(), 2] {
            return Err(ModelError::Shape {
                model: format!("{}@{}", self.manifest.name, self.manifest.version),
                reason: format!(
                    "output shape is {:?}, expected [{}, 2]",
                    probabilities.shape(),
                    rows.len()
                ),
            });
        }
        Ok(probabilities.outer_iter().map(|row| row[1]).collect())
    }
}

fn open_session(
    environment: &Environment,
    path: &Path,
    intra_threads: usize,
) -> ort::Result<Session> {
    Session::builder(environment)?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .with_intra_threads(intra_threads)?
        .with_intra_op_spinning(false)?
        .commit_from_file(path)
}
