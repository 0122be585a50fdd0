//! Admission control for the API routes: at most `max_in_flight` requests at once, each for
//! at most `request_timeout`. A request over the cap is refused at once with 503 and
//! `Retry-After`, never queued; one over time is dropped (its queued inference is skipped)
//! and answered 503.

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::errors::ApiError;

#[derive(Debug, Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    timeout: Duration,
}

impl Admission {
    pub fn new(max_in_flight: usize, timeout: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
            timeout,
        }
    }

    /// A place among the requests in flight, held until dropped; `None` when all are taken.
    /// Shared by every protocol: gRPC calls and HTTP requests count against one cap.
    pub fn try_admit(&self) -> Option<SemaphorePermit<'_>> {
        self.permits.try_acquire().ok()
    }

    /// How long an admitted request may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

pub async fn middleware(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let admission = request
        .app_data::<web::Data<Admission>>()
        .expect("Admission is registered with the API routes; this is a bug")
        .clone();
    let Some(_permit) = admission.try_admit() else {
        return Ok(request
            .error_response(ApiError::Overloaded)
            .map_into_right_body());
    };
    // On time-out the request is gone with the dropped future (routing needs it unshared,
    // so no copy is kept): the error travels out and the request-id layer renders it.
    if let Ok(response) = tokio::time::timeout(admission.timeout, next.call(request)).await {
        response.map(ServiceResponse::map_into_left_body)
    } else {
        let millis = u64::try_from(admission.timeout.as_millis()).unwrap_or(u64::MAX);
        Err(ApiError::RequestTimeout(millis).into())
    }
}
