//! The OpenAPI 3.1 document of the HTTP API. Operations come from the handlers'
//! `#[utoipa::path]` attributes and schemas from the body types' derives, so the document
//! follows the code; what every operation shares (the bearer scheme, the problem+json errors
//! by cause, `X-Request-Id`, the `RateLimit-*` headers) is added here once, from one table.
//! Served at `GET /api/v1/openapi.json`, printed by `bullpen openapi`.

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder};

use super::errors::Problem;
use super::{
    admin_api, docs_api, games_api, health_api, models_api, monitoring_api, predict_api,
    prediction_api, v2,
};

/// An Open Inference Protocol error, as `/v2` answers it.
#[derive(Debug, utoipa::ToSchema)]
#[schema(as = OipError)]
#[expect(
    dead_code,
    reason = "only its schema is used: `/v2` errors are rendered by http::v2"
)]
struct OipErrorBody {
    /// What went wrong.
    error: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bullpen",
        description = "MLB win probabilities from point-in-time features, served by one binary. \
            Errors are RFC 9457 problem details (`application/problem+json`) with a stable \
            `code`; every answer carries `X-Request-Id`.",
    ),
    paths(
        health_api::health,
        health_api::ready,
        monitoring_api::metrics,
        monitoring_api::status_page,
        monitoring_api::status_data,
        docs_api::page,
        docs_api::renderer,
        openapi_json,
        predict_api::predict,
        predict_api::predict_batch,
        prediction_api::game_prediction,
        prediction_api::scheduled_prediction,
        models_api::list,
        monitoring_api::quality,
        games_api::features,
        games_api::games_on_date,
        games_api::pitchers,
        admin_api::invalidate,
        games_api::post_results,
        admin_api::reload,
        admin_api::load_version,
        admin_api::unload_version,
        admin_api::routing,
        admin_api::set_routing,
        v2::server_metadata,
        v2::live,
        v2::ready,
        v2::model_metadata,
        v2::version_metadata,
        v2::model_ready,
        v2::version_ready,
        v2::infer,
        v2::infer_version,
    ),
    components(schemas(Problem, OipErrorBody)),
    modifiers(&Shared),
    tags(
        (name = "predict", description = "Win probabilities, one game or a batch"),
        (name = "models", description = "The served model versions and their live quality"),
        (name = "features", description = "Point-in-time features of stored games"),
        (name = "admin", description = "Cache invalidation and the model lifecycle (scope `admin`)"),
        (name = "probes", description = "Liveness and readiness"),
        (name = "monitoring", description = "The status page, its numbers and the Prometheus metrics (live quality: scope `predict` unless `auth.open_status`)"),
        (name = "open inference protocol", description = "The Open Inference Protocol (KServe v2) over REST, as Triton and KServe serve it, \
            with Triton's binary tensor data extension and bullpen's game inputs (`game_id`; `home`, `away`, `date`, \
            and optionally `home_starter`, `away_starter`). \
            Errors are `{\"error\": \"<message>\"}`, as the protocol says."),
    ),
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The document as JSON.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "probes",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)),
)]
pub(super) async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}

/// Example answers too long to write inline: real answers kept in `docs/examples/`.
fn example(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_default()
}

pub(super) fn example_pitchers() -> serde_json::Value {
    example(include_str!("../../docs/examples/pitchers.json"))
}

pub(super) fn example_models() -> serde_json::Value {
    example(include_str!("../../docs/examples/models.json"))
}

pub(super) fn example_loaded_version() -> serde_json::Value {
    example(include_str!("../../docs/examples/load_model_version.json"))
}

/// What an operation with a body can answer about the body.
const BODY_ERRORS: [(u16, &str); 3] = [
    (
        400,
        "The body is not JSON, has an unknown field, or a value is not valid",
    ),
    (413, "The body is larger than `server.max_body_bytes`"),
    (415, "The body is not `application/json`"),
];

/// The problem statuses each operation can answer besides the shared ones, and why.
fn own_errors(operation_id: &str) -> &'static [(u16, &'static str)] {
    match operation_id {
        "predict" | "predict_batch" => &[
            (404, "No such game, team or model (version)"),
            (
                422,
                "Odds that are not odds, teams that cannot meet, a date outside the data, or a batch that is empty or too large",
            ),
            (500, "The model could not be run"),
        ],
        "game_prediction" | "scheduled_prediction" => &[
            (
                400,
                "A query it does not take, or not a game id, team, date or model reference",
            ),
            (404, "No such game, team or model (version)"),
            (
                422,
                "Odds that are not odds, teams that cannot meet, a date outside the data, or a game number the data holds for other teams",
            ),
            (500, "The model could not be run"),
        ],
        "game_features" => &[(400, "Not a game id"), (404, "No such game")],
        "games_on_date" => &[(400, "The query string is not `date=YYYY-MM-DD`")],
        "post_results" => &[
            (
                409,
                "A game already final with another result, and the request does not correct it",
            ),
            (
                422,
                "A result that is incomplete or impossible (the field is named), or none, or too many",
            ),
            (500, "The feature store holds data bullpen cannot read"),
        ],
        "model_quality" => &[
            (400, "The query string is not a window of dates"),
            (404, "No such model"),
        ],
        "load_model_version" => &[
            (400, "Not a model reference"),
            (404, "No model files for this version in `models.dir`"),
            (422, "The files do not load, or do not fit the feature spec"),
        ],
        "unload_model_version" => &[
            (400, "Not a model reference"),
            (404, "No such version loaded"),
            (
                409,
                "The version has weight or runs in shadow, or is the model's only one",
            ),
        ],
        "get_routing" | "v2_model_metadata" | "v2_model_ready" => &[(404, "No such model")],
        "v2_model_version_metadata" | "v2_model_version_ready" => {
            &[(404, "No such model or version")]
        }
        "v2_infer" | "v2_infer_version" => &[
            (
                400,
                "Tensors that do not fit (shape, datatype, data, binary framing), unknown inputs or outputs, games that cannot be scored",
            ),
            (404, "No such model or version"),
            (500, "The model could not be run"),
            (
                503,
                "Overloaded, too slow, shutting down, or a dependency is unavailable; retry shortly",
            ),
        ],
        "set_routing" => &[
            (404, "No such model"),
            (
                422,
                "Weights that do not sum to 100, or name versions not loaded",
            ),
        ],
        _ => &[],
    }
}

/// What every operation shares, added to the generated document.
#[derive(Debug)]
struct Shared;

impl utoipa::Modify for Shared {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key or a JWT (HS256 or RS256), as `Authorization: Bearer <token>`. \
                         Each operation names the scope it needs. Only enforced with \
                         `auth.enabled`; probes are open unless `auth.open_probes` is off.",
                    ))
                    .build(),
            ),
        );
        for (path, item) in &mut openapi.paths.paths {
            let family = if path.starts_with(super::API) {
                Family::Api
            } else if path.starts_with(v2::V2) {
                Family::V2
            } else {
                Family::Root
            };
            for operation in [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.head.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                complete(operation, family);
            }
        }
    }
}

/// Where an operation lives, which decides its shared errors and how they are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// Probes, metrics, the status page and `/docs`.
    Root,
    /// `/api/v1`: behind admission control; problem+json errors.
    Api,
    /// `/v2`: the Open Inference Protocol's `{"error": ...}`.
    V2,
}

/// Adds the shared errors, the request id and, where a credential is needed, the
/// rate-limit headers to one operation.
fn complete(operation: &mut Operation, family: Family) {
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let mut errors: Vec<(u16, &str)> = vec![
        (414, "The URI is longer than `server.max_uri_bytes`"),
        (431, "Too many headers, or too large"),
    ];
    if secured {
        errors.extend([
            (
                400,
                "The Authorization header is malformed, or sent more than once",
            ),
            (401, "No credentials, or credentials that are not valid"),
            (
                403,
                "The credentials do not hold the scope this operation needs",
            ),
            (
                429,
                "The credential's rate limit is spent; `Retry-After` says when to retry",
            ),
        ]);
    }
    if family == Family::Api {
        errors.push((
            503,
            "Overloaded, too slow, shutting down, or a dependency is unavailable; retry shortly",
        ));
    }
    if operation.request_body.is_some() {
        // `/v2` reads any content type: the binary framing is not JSON.
        errors.extend(
            BODY_ERRORS
                .into_iter()
                .filter(|(status, _)| family != Family::V2 || *status != 415),
        );
    }
    errors.extend_from_slice(own_errors(operation.operation_id.as_deref().unwrap_or("")));
    // One answer per status, naming every cause that leads to it.
    let mut causes: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for (status, why) in errors {
        causes.entry(status).or_default().push(why);
    }
    let responses = &mut operation.responses.responses;
    for (status, why) in causes {
        let key = status.to_string();
        if responses.contains_key(&key) {
            continue;
        }
        let mut response =
            error_response(family, &why.join("; or: ")).header("X-Request-Id", request_id_header());
        if matches!(status, 429 | 503) {
            response = response.header(
                "Retry-After",
                integer_header("Seconds to wait before retrying"),
            );
        }
        responses.insert(key, response.build().into());
    }
    responses.insert(
        "default".to_owned(),
        error_response(family, "Any other error").build().into(),
    );
    for (status, response) in responses.iter_mut() {
        let utoipa::openapi::RefOr::T(response) = response else {
            continue;
        };
        response
            .headers
            .entry("X-Request-Id".to_owned())
            .or_insert_with(request_id_header);
        if secured && status.starts_with('2') {
            for (name, what) in [
                (
                    "RateLimit-Limit",
                    "Requests the credential may make per window",
                ),
                ("RateLimit-Remaining", "Requests left in this window"),
                ("RateLimit-Reset", "Seconds until the window has room again"),
            ] {
                response
                    .headers
                    .entry(name.to_owned())
                    .or_insert_with(|| integer_header(what));
            }
        }
    }
}

/// An error answer: problem details (`application/problem+json`, the `Problem` schema), or
/// under `/v2` the protocol's `{"error": ...}` (`application/json`, the `OipError` schema).
fn error_response(family: Family, description: &str) -> ResponseBuilder {
    let (content_type, schema) = match family {
        Family::V2 => ("application/json", "OipError"),
        Family::Root | Family::Api => ("application/problem+json", "Problem"),
    };
    ResponseBuilder::new().description(description).content(
        content_type,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(schema)))
            .build(),
    )
}

fn request_id_header() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(
            "The request's id: the client's `X-Request-Id` when sane, else generated; also in the logs",
        ))
        .build()
}

fn integer_header(description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some(description))
        .build()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The document and `configure` name the same operations: a route added without its
    /// `#[utoipa::path]` (or the reverse) fails here.
    #[test]
    fn every_route_is_documented_and_every_documented_operation_is_a_route() {
        let openapi = ApiDoc::openapi();
        let documented: BTreeSet<(String, String)> = openapi
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                [
                    ("GET", item.get.is_some()),
                    ("PUT", item.put.is_some()),
                    ("POST", item.post.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("HEAD", item.head.is_some()),
                ]
                .into_iter()
                .filter(|(_, present)| *present)
                .map(move |(method, _)| (method.to_owned(), path.clone()))
            })
            .collect();
        let registered: BTreeSet<(String, String)> = super::super::route_table()
            .into_iter()
            // HEAD of a probe is its GET without the body.
            .filter(|(method, _)| method != actix_web::http::Method::HEAD)
            .map(|(method, path)| (method.to_string(), path))
            .collect();
        assert_eq!(documented, registered);
    }

    #[test]
    fn every_operation_has_an_id_errors_and_the_request_id() {
        let openapi = ApiDoc::openapi();
        assert!(
            openapi
                .components
                .as_ref()
                .is_some_and(|c| c.schemas.contains_key("Problem"))
        );
        for (path, item) in &openapi.paths.paths {
            for operation in [&item.get, &item.put, &item.post, &item.delete]
                .into_iter()
                .flatten()
            {
                assert!(operation.operation_id.is_some(), "{path}");
                let responses = &operation.responses.responses;
                assert!(responses.contains_key("default"), "{path}");
                assert!(
                    responses.keys().any(|status| status.starts_with('2')),
                    "{path}"
                );
            }
        }
    }
}
