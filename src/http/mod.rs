//! The HTTP layer (the `/api/v1` adapter): routes grouped by resource, the error table, and
//! the middleware (request id, request metrics, admission, access). Handlers parse, call a
//! service, and map the result; they record nothing themselves.

mod access;
mod admin_api;
mod admission;
mod docs_api;
mod drain;
pub mod errors;
mod games_api;
mod health_api;
mod json;
mod limits;
pub mod load_report;
mod metrics;
mod models_api;
mod monitoring_api;
pub mod openapi;
mod predict_api;
mod prediction_api;
#[cfg(test)]
mod properties;
mod rendered;
pub mod request_id;
mod settings;
mod v2;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::from_fn;
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, Route, web};

use crate::auth::Scope;

use access::Access;
pub use admission::Admission;
pub use drain::Drain;
use errors::ApiError;
pub use health_api::is_ready;
pub use json::BodyLimit;
pub use limits::HeadLimits;
pub use metrics::observe;
pub use settings::ServerSettings;

/// Limits the handlers enforce themselves.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_batch: usize,
}

/// 405 problem with the `Allow` header RFC 9110 asks for: the methods the resource takes.
/// The error stays attached to the answer, so `/v2` renders it as its protocol says.
fn method_not_allowed(request: &HttpRequest, allow: &HeaderValue) -> HttpResponse {
    let mut response = HttpResponse::from_error(ApiError::MethodNotAllowed {
        method: request.method().to_string(),
        path: request.path().to_owned(),
    });
    response.headers_mut().insert(header::ALLOW, allow.clone());
    response
}

pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound {
        method: request.method().to_string(),
        path: request.path().to_owned(),
    })
}

/// The resource of `route`: its access rule, its metrics label and its handlers; other
/// methods get a 405 naming the ones it takes.
fn resource(
    route: RouteEntry,
) -> Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let allow = route
        .methods
        .iter()
        .map(|(method, _)| method.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let allow = HeaderValue::from_str(&allow).expect("method names are header-safe; this is a bug");
    let label = metrics::Route::new(&format!("{}{}", route.scope, route.path));
    let access = route.access;
    let mut registered = web::resource(route.path)
        .default_service(web::to(move |request: HttpRequest| {
            let response = method_not_allowed(&request, &allow);
            async move { response }
        }))
        .wrap(from_fn(move |request, next| {
            label.label(&request);
            access::guard(access, request, next)
        }));
    for (_, handler) in route.methods {
        registered = registered.route(handler);
    }
    registered
}

/// Where the API lives.
pub const API: &str = "/api/v1";

/// One route: where it lives, who may call it, and its handler for each method.
struct RouteEntry {
    scope: &'static str,
    path: &'static str,
    access: Access,
    methods: Vec<(Method, Route)>,
}

fn entry(
    scope: &'static str,
    path: &'static str,
    access: Access,
    methods: Vec<(Method, Route)>,
) -> RouteEntry {
    RouteEntry {
        scope,
        path,
        access,
        methods,
    }
}

/// Every route, with who may call it: the tables `configure` registers and [`route_table`]
/// lists. Probes at the root; the API under `/api/v1`; the Open Inference Protocol under
/// `/v2`.
fn routes() -> Vec<RouteEntry> {
    let mut routes = root_routes();
    routes.extend(api_routes());
    routes.extend(v2::routes().into_iter().map(|(route, _)| route));
    routes
}

/// `handler` for `method`, with the method kept beside it for [`route_table`] and `Allow`.
fn on<F, Args>(method: Method, handler: F) -> (Method, Route)
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    (method.clone(), web::method(method).to(handler))
}

/// Probes, metrics and the status page.
fn root_routes() -> Vec<RouteEntry> {
    use Access::{Probe, Status};
    // Probes answer HEAD as GET; actix-web sends the head without the body.
    vec![
        entry(
            "",
            "/health",
            Probe,
            vec![
                on(Method::GET, health_api::health),
                on(Method::HEAD, health_api::health),
            ],
        ),
        entry(
            "",
            "/ready",
            Probe,
            vec![
                on(Method::GET, health_api::ready),
                on(Method::HEAD, health_api::ready),
            ],
        ),
        // The metrics carry live model quality (`bullpen_model_quality`): the rule of the
        // status page's numbers, not of the probes.
        entry(
            "",
            "/metrics",
            Status,
            vec![on(Method::GET, monitoring_api::metrics)],
        ),
        entry(
            "",
            "/status",
            Probe,
            vec![on(Method::GET, monitoring_api::status_page)],
        ),
        entry(
            "",
            "/status/data",
            Status,
            vec![on(Method::GET, monitoring_api::status_data)],
        ),
        entry("", "/docs", Probe, vec![on(Method::GET, docs_api::page)]),
        entry(
            "",
            "/docs/redoc.standalone.js",
            Probe,
            vec![on(Method::GET, docs_api::renderer)],
        ),
    ]
}

/// The API, behind admission control.
#[expect(
    clippy::too_many_lines,
    reason = "the route table is data: an entry per route"
)]
fn api_routes() -> Vec<RouteEntry> {
    use Access::{Needs, NeedsPerItem, Probe};
    use Scope::{Admin, FeaturesRead, Predict};
    vec![
        entry(
            API,
            "/predict",
            Needs(Predict),
            vec![on(Method::POST, predict_api::predict)],
        ),
        entry(
            API,
            "/predict/batch",
            NeedsPerItem(Predict),
            vec![on(Method::POST, predict_api::predict_batch)],
        ),
        entry(
            API,
            "/games/{game_id}/prediction",
            Needs(Predict),
            vec![on(Method::GET, prediction_api::game_prediction)],
        ),
        entry(
            API,
            "/predictions",
            Needs(Predict),
            vec![on(Method::GET, prediction_api::scheduled_prediction)],
        ),
        entry(
            API,
            "/openapi.json",
            Probe,
            vec![on(Method::GET, openapi::openapi_json)],
        ),
        entry(
            API,
            "/models",
            Needs(Predict),
            vec![on(Method::GET, models_api::list)],
        ),
        entry(
            API,
            "/models/{name}/quality",
            Needs(Predict),
            vec![on(Method::GET, monitoring_api::quality)],
        ),
        entry(
            API,
            "/games",
            Needs(FeaturesRead),
            vec![on(Method::GET, games_api::games_on_date)],
        ),
        entry(
            API,
            "/games/{game_id}/features",
            Needs(FeaturesRead),
            vec![on(Method::GET, games_api::features)],
        ),
        entry(
            API,
            "/pitchers",
            Needs(FeaturesRead),
            vec![on(Method::GET, games_api::pitchers)],
        ),
        entry(
            API,
            "/admin/cache/invalidate",
            Needs(Admin),
            vec![on(Method::POST, admin_api::invalidate)],
        ),
        entry(
            API,
            "/admin/results",
            Needs(Admin),
            vec![on(Method::POST, games_api::post_results)],
        ),
        entry(
            API,
            "/admin/models/reload",
            Needs(Admin),
            vec![on(Method::POST, admin_api::reload)],
        ),
        entry(
            API,
            "/admin/models/{name}/versions/{version}/load",
            Needs(Admin),
            vec![on(Method::POST, admin_api::load_version)],
        ),
        entry(
            API,
            "/admin/models/{name}/versions/{version}",
            Needs(Admin),
            vec![on(Method::DELETE, admin_api::unload_version)],
        ),
        entry(
            API,
            "/admin/models/{name}/routing",
            Needs(Admin),
            vec![
                on(Method::GET, admin_api::routing),
                on(Method::PUT, admin_api::set_routing),
            ],
        ),
    ]
}

/// The method and full path of every route `configure` registers, in its order.
pub fn route_table() -> Vec<(Method, String)> {
    routes()
        .into_iter()
        .flat_map(|route| {
            let path = format!("{}{}", route.scope, route.path);
            route
                .methods
                .into_iter()
                .map(move |(method, _)| (method, path.clone()))
        })
        .collect()
}

/// Registers every route: the probes, `/api/v1` behind admission control with problem+json
/// errors, and `/v2` with the Open Inference Protocol's.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for route in root_routes() {
        cfg.service(resource(route));
    }
    let mut api = web::scope(API).wrap(from_fn(admission::middleware));
    for route in api_routes() {
        api = api.service(resource(route));
    }
    cfg.service(api);
    v2::configure(cfg);
}
