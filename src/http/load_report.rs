//! ORCA load reports on HTTP answers (`lb.orca`): the `endpoint-load-metrics` header in ORCA's
//! text form, as Envoy's client-side weighted round robin reads it from each answer.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use crate::monitoring::{Metrics, ORCA_HEADER};

/// Adds the latest load report (`Metrics::load_figures`) to the answer.
pub async fn attach(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let figures = request
        .app_data::<web::Data<Metrics>>()
        .map(|metrics| metrics.load_figures.clone());
    let mut response = next.call(request).await?;
    let report = figures.and_then(|figures| HeaderValue::from_str(&figures.report().text()).ok());
    if let Some(report) = report {
        response
            .headers_mut()
            .insert(HeaderName::from_static(ORCA_HEADER), report);
    }
    Ok(response)
}
