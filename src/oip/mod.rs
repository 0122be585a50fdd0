//! The Open Inference Protocol (KServe "v2", as Triton, KServe and MLServer speak it) apart
//! from its transports: tensors and their datatypes, what an infer request asks of a model,
//! the model and server metadata, and the protocol's error kinds. The REST adapter
//! (`http::v2`) and the gRPC adapter (`grpc`) parse their wire formats into these types and
//! render these answers; both score through [`infer`], one call into the prediction service.
//!
//! Outputs: `home_win_probability` (`FP32 [-1]`) and the model's class probabilities under
//! the name its manifest gives (`FP32 [-1, 2]`: away win, home win). Inputs: the manifest's
//! feature input (`FP32 [-1, F]`; FP64 rounded to the nearest FP32, integer types when
//! exactly representable), or bullpen's extension: `BYTES` inputs `game_id`, or `home`,
//! `away` and `date` (`YYYY-MM-DD`), whose features bullpen computes as `/api/v1/predict`
//! does.

mod error;
mod infer;
mod metadata;
mod tensor;

pub use error::{ErrorKind, OipError};
pub use infer::{InferAnswer, InferRequest, OutputTensor, RequestedOutput, infer};
pub use metadata::{
    EXTENSIONS, ModelMetadata, SERVER_NAME, TensorMetadata, model_metadata, model_ready,
};
pub use tensor::{Datatype, Tensor, TensorError, Values, exact, fp32_bytes};
