//! The HTTP layer (the `/api/v1` adapter): routes grouped by resource, the error table, and
//! the middleware (request id, request metrics, admission, access). Handlers parse, call a
//! service, and map the result; they record nothing themselves.

mod access;
mod admin_api;
mod admission;
mod drain;
pub mod errors;
mod games_api;
mod health_api;
mod json;
mod limits;
mod metrics;
mod models_api;
mod monitoring_api;
mod predict_api;
#[cfg(test)]
mod properties;
pub mod request_id;
mod settings;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, Resource, web};

use crate::auth::Scope;

use access::Access;
pub use admission::Admission;
pub use drain::Drain;
use errors::ApiError;
pub use json::BodyLimit;
pub use limits::HeadLimits;
pub use metrics::observe;
pub use settings::ServerSettings;

/// Limits the handlers enforce themselves.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_batch: usize,
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

/// A resource at `path` under `scope` with its access rule and its metrics label; other
/// methods get a 405 problem, not an empty body.
fn resource(
    scope: &str,
    path: &str,
    access: Access,
) -> Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let route = metrics::Route::new(&format!("{scope}{path}"));
    web::resource(path)
        .default_service(web::to(method_not_allowed))
        .wrap(from_fn(move |request, next| {
            route.label(&request);
            access::guard(access, request, next)
        }))
}

/// Where the API lives.
const API: &str = "/api/v1";

/// Every route, with who may call it: health at the root, the API under `/api/v1` behind
/// admission control.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use Access::{Needs, NeedsPerItem, Probe, Status};
    use Scope::{Admin, FeaturesRead, Predict};
    // Probes answer HEAD as GET; actix-web sends the head without the body.
    cfg.service(
        resource("", "/health", Probe)
            .route(web::get().to(health_api::health))
            .route(web::head().to(health_api::health)),
    )
    .service(
        resource("", "/ready", Probe)
            .route(web::get().to(health_api::ready))
            .route(web::head().to(health_api::ready)),
    )
    .service(resource("", "/metrics", Probe).route(web::get().to(monitoring_api::metrics)))
    .service(resource("", "/status", Probe).route(web::get().to(monitoring_api::status_page)))
    .service(resource("", "/status/data", Status).route(web::get().to(monitoring_api::status_data)))
    .service(
        web::scope(API)
            .wrap(from_fn(admission::middleware))
            .service(
                resource(API, "/predict", Needs(Predict))
                    .route(web::post().to(predict_api::predict)),
            )
            .service(
                resource(API, "/predict/batch", NeedsPerItem(Predict))
                    .route(web::post().to(predict_api::predict_batch)),
            )
            .service(
                resource(API, "/models", Needs(Predict)).route(web::get().to(models_api::list)),
            )
            .service(
                resource(API, "/models/{name}/quality", Needs(Predict))
                    .route(web::get().to(monitoring_api::quality)),
            )
            .service(
                resource(API, "/games/{game_id}/features", Needs(FeaturesRead))
                    .route(web::get().to(games_api::features)),
            )
            .service(
                resource(API, "/admin/cache/invalidate", Needs(Admin))
                    .route(web::post().to(admin_api::invalidate)),
            )
            .service(
                resource(API, "/admin/models/reload", Needs(Admin))
                    .route(web::post().to(admin_api::reload)),
            )
            .service(
                resource(
                    API,
                    "/admin/models/{name}/versions/{version}/load",
                    Needs(Admin),
                )
                .route(web::post().to(admin_api::load_version)),
            )
            .service(
                resource(API, "/admin/models/{name}/versions/{version}", Needs(Admin))
                    .route(web::delete().to(admin_api::unload_version)),
            )
            .service(
                resource(API, "/admin/models/{name}/routing", Needs(Admin))
                    .route(web::get().to(admin_api::routing))
                    .route(web::put().to(admin_api::set_routing)),
            ),
    );
}
