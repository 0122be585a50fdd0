//! The protocol's errors: a kind each transport maps to its status (HTTP status, gRPC code)
//! and a message for `{"error": ...}` or the gRPC status message.

use crate::models::{InferenceError, ResolveError};
use crate::predict::PredictError;

use super::tensor::TensorError;

/// What went wrong, as the protocol distinguishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong: shape, datatype, names, data (HTTP 400, `INVALID_ARGUMENT`).
    InvalidArgument,
    /// No such model or version (HTTP 404, `NOT_FOUND`).
    NotFound,
    /// Not now: overloaded, a dependency down (HTTP 503, `UNAVAILABLE`).
    Unavailable,
    /// bullpen failed (HTTP 500, `INTERNAL`).
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OipError {
    pub kind: ErrorKind,
    pub message: String,
}

impl OipError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidArgument,
            message: message.into(),
        }
    }
}

impl From<TensorError> for OipError {
    fn from(error: TensorError) -> Self {
        Self::invalid(error.to_string())
    }
}

impl From<ResolveError> for OipError {
    fn from(error: ResolveError) -> Self {
        Self {
            kind: ErrorKind::NotFound,
            message: error.to_string(),
        }
    }
}

impl From<PredictError> for OipError {
    fn from(error: PredictError) -> Self {
        let kind = match &error {
            PredictError::GameNotFound(_)
            | PredictError::GameMismatch { .. }
            | PredictError::Schedule(_)
            | PredictError::Shape { .. } => ErrorKind::InvalidArgument,
            PredictError::Model(error) => return error.clone().into(),
            PredictError::StoreUnavailable(_)
            | PredictError::Inference(InferenceError::Overloaded | InferenceError::Stopped) => {
                ErrorKind::Unavailable
            }
            PredictError::CorruptData(_) | PredictError::Inference(InferenceError::Failed(_)) => {
                ErrorKind::Internal
            }
        };
        Self {
            kind,
            message: error.to_string(),
        }
    }
}
