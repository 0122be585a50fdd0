//! The HTTP layer: routes grouped by resource, the error table, and the middleware.

mod admin_api;
mod admission;
pub mod errors;
mod games_api;
mod health_api;
mod json;
mod models_api;
mod predict_api;
pub mod request_id;

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};

pub use admission::Admission;
use errors::ApiError;
pub use json::BodyLimit;

/// Limits the handlers enforce themselves.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_batch: usize,
}

/// A resource whose other methods get a 405 problem, not an empty body.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed {
        method: request.method().to_string(),
        path: request.path().to_owned(),
    })
}

pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound {
        method: request.method().to_string(),
        path: request.path().to_owned(),
    })
}

/// Every route: health at the root, the API under `/api/v1` behind admission control.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health_api::configure).service(
        web::scope("/api/v1")
            .wrap(from_fn(admission::middleware))
            .configure(predict_api::configure)
            .configure(models_api::configure)
            .configure(games_api::configure)
            .configure(admin_api::configure),
    );
}
