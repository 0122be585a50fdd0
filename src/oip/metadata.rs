//! Server and model metadata: what `GET /v2`, `GET /v2/models/{m}` and their gRPC twins
//! answer, read from the catalog and each version's manifest.

use crate::models::{ServedModel, Snapshot};

use super::error::OipError;

pub const SERVER_NAME: &str = "bullpen";

/// The protocol extensions bullpen speaks: Triton's binary tensor data, and its own game
/// inputs (`game_id`; `home`, `away`, `date`).
pub const EXTENSIONS: [&str; 2] = ["binary_tensor_data", "bullpen_game_inputs"];

/// The output every model answers beside its class probabilities.
pub const HOME_WIN_OUTPUT: &str = "home_win_probability";

/// ONNX Runtime serves every version, as Triton names that backend.
const PLATFORM: &str = "onnxruntime_onnx";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: &'static str,
    pub shape: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMetadata {
    pub name: String,
    pub versions: Vec<String>,
    pub platform: &'static str,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
}

/// The outputs of `model`, in the order an answer gives them by default.
pub(super) fn output_names(model: &ServedModel) -> Vec<String> {
    vec![HOME_WIN_OUTPUT.to_owned(), model.manifest.output.clone()]
}

/// Model `name` (at `version`, else the version that scores unrouted rows): its loaded
/// versions and the tensors it takes and gives.
pub fn model_metadata(
    snapshot: &Snapshot,
    name: &str,
    version: Option<&str>,
) -> Result<ModelMetadata, OipError> {
    let model = snapshot.unrouted(name, version)?;
    let features = model.manifest.feature_spec.names.len() as i64;
    let versions = match version {
        Some(version) => vec![version.to_owned()],
        None => snapshot
            .versions_of(name)
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    Ok(ModelMetadata {
        name: name.to_owned(),
        versions,
        platform: PLATFORM,
        inputs: vec![TensorMetadata {
            name: model.manifest.input.clone(),
            datatype: "FP32",
            shape: vec![-1, features],
        }],
        outputs: vec![
            TensorMetadata {
                name: HOME_WIN_OUTPUT.to_owned(),
                datatype: "FP32",
                shape: vec![-1],
            },
            TensorMetadata {
                name: model.manifest.output.clone(),
                datatype: "FP32",
                shape: vec![-1, 2],
            },
        ],
    })
}

/// Whether model `name` (at `version`) is loaded, and so warm: versions are warmed before
/// they join the catalog.
pub fn model_ready(snapshot: &Snapshot, name: &str, version: Option<&str>) -> bool {
    snapshot.unrouted(name, version).is_ok()
}
