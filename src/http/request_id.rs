//! The request id: taken from `X-Request-Id` when the client sends a sane one, generated
//! otherwise; echoed on the response, put on the request's tracing span, and readable by
//! error bodies through a task-local while the request is handled.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Whether a client's request id can be kept (HTTP header or gRPC metadata): 1 to 128
/// visible ASCII characters.
pub fn is_sane(text: &str) -> bool {
    !text.is_empty() && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_graphic())
}

fn from_client(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    is_sane(text).then(|| text.to_owned())
}

pub async fn middleware(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(from_client)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.path(),
    );
    let header = HeaderValue::from_str(&id).expect("request ids are visible ASCII; this is a bug");
    let handled = async {
        match next.call(request).await {
            Ok(response) => Ok::<_, actix_web::Error>(response),
            // An error raised by a middleware (not a handler) is rendered here, while the
            // request id is still in scope, and passed on as a finished response.
            Err(error) => {
                let mut response = error.error_response();
                response.headers_mut().insert(HEADER, header.clone());
                Err(InternalError::from_response(error.to_string(), response).into())
            }
        }
    };
    let mut response = REQUEST_ID
        .scope(id, handled)
        .instrument(span.clone())
        .await?;
    response.headers_mut().insert(HEADER, header);
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "answered"));
    Ok(response)
}
