//! How the HTTP layer counts requests: every answer by route pattern, method and status, its
//! latency, requests in flight, and refusals by reason. Each resource carries its [`Route`]
//! label, whose metric handles are resolved on first use, so counting a request needs no
//! label lookup. What a prediction records is the prediction service's business, not this.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::errors::{ApiError, ErrorCode};
use super::v2::V2Error;
use crate::monitoring::{Metrics, Rejection, RouteMetrics};

/// The route pattern of the resource that took a request (`/api/v1/predict`): the label of
/// its request metrics.
#[derive(Debug, Clone)]
pub struct Route {
    pattern: Arc<str>,
    handles: Arc<OnceLock<RouteMetrics>>,
}

impl Route {
    pub fn new(pattern: &str) -> Self {
        Self {
            pattern: pattern.into(),
            handles: Arc::default(),
        }
    }

    /// Marks `request` as taken by this route.
    pub fn label(&self, request: &ServiceRequest) {
        request.extensions_mut().insert(self.clone());
    }
}

/// Counts every request by route pattern, method and status, times it, tracks requests in
/// flight, and counts refusals by reason.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = request
        .app_data::<web::Data<Metrics>>()
        .expect("Metrics are registered with the app; this is a bug")
        .clone();
    if !metrics.count_requests {
        return next.call(request).await;
    }
    let started = Instant::now();
    metrics.in_flight.inc();
    let method = request.method().clone();
    let response = next.call(request).await;
    metrics.in_flight.dec();
    let (status, route, refused) = match &response {
        Ok(response) => (
            response.status(),
            response.request().extensions().get::<Route>().cloned(),
            response.response().error().and_then(refusal),
        ),
        Err(error) => (
            error.as_response_error().status_code(),
            None,
            refusal(error),
        ),
    };
    let elapsed = started.elapsed().as_secs_f64();
    let handles = match &route {
        Some(route) => route.handles.get_or_init(|| metrics.route(&route.pattern)),
        None => metrics.unmatched(),
    };
    handles.observe(method.as_str(), status.as_u16(), elapsed);
    if let Some(reason) = refused {
        metrics.rejected(reason);
    }
    response
}

/// Why a request was refused, from the error it was answered with (either protocol's).
fn refusal(error: &actix_web::Error) -> Option<Rejection> {
    if let Some(error) = error.as_error::<ApiError>() {
        return rejection(error.code());
    }
    match error.as_error::<V2Error>()? {
        V2Error::Shared(error) => rejection(error.code()),
        error if error.is_validation() => Some(Rejection::Validation),
        V2Error::Protocol(_) => None,
    }
}

fn rejection(code: ErrorCode) -> Option<Rejection> {
    match code {
        ErrorCode::MissingCredentials
        | ErrorCode::MalformedCredentials
        | ErrorCode::InvalidCredentials
        | ErrorCode::InsufficientScope => Some(Rejection::Auth),
        ErrorCode::RateLimited => Some(Rejection::RateLimit),
        ErrorCode::Overloaded | ErrorCode::RequestTimeout => Some(Rejection::Admission),
        code if code.status().is_client_error() => Some(Rejection::Validation),
        _ => None,
    }
}
