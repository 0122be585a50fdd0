//! `ApiJson<T>`: the JSON body extractor of the API. It checks the content type with a plain
//! comparison, reads the body up to the configured limit and parses it, mapping each failure
//! to its own [`ApiError`] (415, 413, malformed JSON, unknown field, wrong shape).
//! [`JsonBody`] is the same body read and not parsed yet.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::errors::{self, ApiError};

/// The largest body the API reads, registered as app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

#[derive(Debug)]
pub struct ApiJson<T>(pub T);

fn is_json(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || (mime.len() > 5 && mime[mime.len() - 5..].eq_ignore_ascii_case("+json"))
        })
}

/// A request body read whole, up to `server.max_body_bytes` (413 beyond), whatever its
/// content type: the Open Inference Protocol's binary framing is not JSON.
#[derive(Debug)]
pub struct RawBody(pub web::Bytes);

/// Reads the body of `request` up to its limit.
fn read_body(
    request: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::Bytes, ApiError>> + use<> {
    let limit = request
        .app_data::<web::Data<BodyLimit>>()
        .map_or(256 * 1024, |limit| limit.0);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    let mut payload = payload.take();
    async move {
        if declared.is_some_and(|length| length > limit) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        let mut body = web::BytesMut::with_capacity(declared.unwrap_or(256).min(limit));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|error| ApiError::InvalidBody(error.to_string()))?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

/// A JSON request body read whole, not parsed yet: for a handler that looks at the bytes
/// before it parses them.
#[derive(Debug)]
pub struct JsonBody(pub web::Bytes);

impl JsonBody {
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.0).map_err(|error| errors::from_serde(&error))
    }
}

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(request);
        let body = read_body(request, payload);
        Box::pin(async move {
            if !json {
                return Err(ApiError::UnsupportedMediaType);
            }
            body.await.map(JsonBody)
        })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = JsonBody::from_request(request, payload);
        Box::pin(async move { body.await?.parse().map(ApiJson) })
    }
}

impl FromRequest for RawBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(request, payload);
        Box::pin(async move { body.await.map(RawBody) })
    }
}
