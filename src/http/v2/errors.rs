//! The `/v2` error renderer: `{"error": "<message>"}` with the protocol's status, as the
//! Open Inference Protocol says, never problem+json. Refusals raised by the shared layers
//! (auth, rate limit, admission, body limits) keep their status and headers
//! (`WWW-Authenticate`, `RateLimit-*`, `Retry-After`) and get this body.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::http::errors::ApiError;
use crate::oip::{ErrorKind, OipError};

/// An error of a `/v2` route.
#[derive(Debug, thiserror::Error)]
pub enum V2Error {
    /// Refused by a layer `/api/v1` shares (auth, rate limit, admission, body limits).
    #[error(transparent)]
    Shared(#[from] ApiError),
    #[error(transparent)]
    Protocol(#[from] OipError),
}

impl From<crate::predict::PredictError> for V2Error {
    fn from(error: crate::predict::PredictError) -> Self {
        Self::Protocol(error.into())
    }
}

impl V2Error {
    /// Whether it is the client's mistake, for the refusal counters.
    pub fn is_validation(&self) -> bool {
        matches!(self, Self::Protocol(error) if error.kind == ErrorKind::InvalidArgument)
    }
}

fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `{"error": message}` as JSON bytes.
fn body(message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": message }))
        .expect("a string map serialises; this is a bug")
}

/// `response` (a shared layer's refusal) with the protocol's body instead of a problem.
fn as_protocol(mut response: HttpResponse, message: &str) -> HttpResponse {
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.set_body(BoxBody::new(body(message)))
}

impl ResponseError for V2Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Shared(error) => error.status_code(),
            Self::Protocol(error) => status(error.kind),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Shared(error) => as_protocol(error.error_response(), &error.to_string()),
            Self::Protocol(error) => {
                let mut response = HttpResponse::build(self.status_code());
                if error.kind == ErrorKind::Unavailable {
                    response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
                }
                response
                    .content_type("application/json")
                    .body(body(&error.message))
            }
        }
    }
}

/// Renders what the shared layers refused under `/v2` as the protocol's errors.
pub async fn render(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    let response = match next.call(request).await {
        Ok(response) => response,
        // Admission's time-out is the one refusal raised as an error in this scope.
        Err(error) => {
            return Err(match error.as_error::<ApiError>() {
                Some(ApiError::RequestTimeout(millis)) => {
                    V2Error::Shared(ApiError::RequestTimeout(*millis)).into()
                }
                _ => error,
            });
        }
    };
    let message = response
        .response()
        .error()
        .and_then(|error| error.as_error::<ApiError>())
        .map(ToString::to_string);
    Ok(match message {
        Some(message) => response.map_body(|head, _| {
            head.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            EitherBody::right(BoxBody::new(body(&message)))
        }),
        None => response.map_body(|_, body| EitherBody::left(body.boxed())),
    })
}

/// A `/v2` path that names no route.
pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, V2Error> {
    Err(OipError {
        kind: ErrorKind::NotFound,
        message: format!("no route {} {}", request.method(), request.path()),
    }
    .into())
}
