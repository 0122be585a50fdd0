//! The Open Inference Protocol over REST (`/v2`), as Triton and KServe serve it: health,
//! server and model metadata, model readiness, and infer with JSON or binary tensors. Its
//! own routes and error renderer; the same access rules, admission, metrics, caches and
//! prediction log as `/api/v1`, through the same prediction service.

mod errors;
mod wire;

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{Access, Charge, KeyId, insert_rate_limit_headers};
use super::json::RawBody;
use super::predict_api::caller;
use super::{Drain, Limits, RouteEntry, admission, entry, health_api, on, resource};
use crate::auth::Scope;
use crate::monitoring::Protocol;
use crate::oip::{self, EXTENSIONS, OipError, SERVER_NAME};
use crate::predict::PredictService;

pub use errors::V2Error;
pub(super) use wire::{InferBody, InferResponseBody};

/// Where the protocol lives.
pub(super) const V2: &str = "/v2";

/// The `/v2` routes, with who may call them and whether admission control applies.
pub(super) fn routes() -> Vec<(RouteEntry, bool)> {
    use Access::{Needs, NeedsPerItem, Probe};
    use Scope::Predict;

    vec![
        (
            entry(V2, "", Probe, vec![on(Method::GET, server_metadata)]),
            false,
        ),
        (
            entry(V2, "/health/live", Probe, vec![on(Method::GET, live)]),
            false,
        ),
        (
            entry(V2, "/health/ready", Probe, vec![on(Method::GET, ready)]),
            false,
        ),
        (
            entry(
                V2,
                "/models/{model}",
                Needs(Predict),
                vec![on(Method::GET, model_metadata)],
            ),
            false,
        ),
        (
            entry(
                V2,
                "/models/{model}/versions/{version}",
                Needs(Predict),
                vec![on(Method::GET, version_metadata)],
            ),
            false,
        ),
        (
            entry(
                V2,
                "/models/{model}/ready",
                Needs(Predict),
                vec![on(Method::GET, model_ready)],
            ),
            false,
        ),
        (
            entry(
                V2,
                "/models/{model}/versions/{version}/ready",
                Needs(Predict),
                vec![on(Method::GET, version_ready)],
            ),
            false,
        ),
        (
            entry(
                V2,
                "/models/{model}/infer",
                NeedsPerItem(Predict),
                vec![on(Method::POST, infer)],
            ),
            true,
        ),
        (
            entry(
                V2,
                "/models/{model}/versions/{version}/infer",
                NeedsPerItem(Predict),
                vec![on(Method::POST, infer_version)],
            ),
            true,
        ),
    ]
}

/// Registers the `/v2` scope: its errors rendered as the protocol says, infer behind
/// admission control.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    let mut scope = web::scope(V2)
        .wrap(from_fn(errors::render))
        .default_service(web::to(errors::not_found));
    for (route, admitted) in routes() {
        let registered = resource(route);
        scope = if admitted {
            scope.service(registered.wrap(from_fn(admission::middleware)))
        } else {
            scope.service(registered)
        };
    }
    cfg.service(scope);
}

/// A model, and a version when the path names one.
#[derive(Debug, Deserialize)]
pub(super) struct ModelPath {
    model: String,
    version: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ServerMetadataBody {
    #[schema(example = "bullpen")]
    name: &'static str,
    #[schema(example = "0.1.0")]
    version: &'static str,
    #[schema(example = json!(["binary_tensor_data", "bullpen_game_inputs"]))]
    extensions: [&'static str; 2],
}

/// The server: its name, version and the protocol extensions it speaks.
#[utoipa::path(get, path = "/v2", tag = "open inference protocol", operation_id = "v2_server_metadata",
    responses((status = 200, description = "Server metadata", body = ServerMetadataBody,
               example = json!({"name": "bullpen", "version": "0.1.0",
                                "extensions": ["binary_tensor_data", "bullpen_game_inputs"]}))))]
pub(super) async fn server_metadata() -> HttpResponse {
    HttpResponse::Ok().json(ServerMetadataBody {
        name: SERVER_NAME,
        version: env!("CARGO_PKG_VERSION"),
        extensions: EXTENSIONS,
    })
}

/// The process answers.
#[utoipa::path(get, path = "/v2/health/live", tag = "open inference protocol",
    operation_id = "v2_live",
    responses((status = 200, description = "Live", body = Object, example = json!({"live": true}))))]
pub(super) async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "live": true }))
}

/// Ready for traffic, as `/ready` decides: 503 while draining or when the database lacks
/// what serving needs.
#[utoipa::path(get, path = "/v2/health/ready", tag = "open inference protocol",
    operation_id = "v2_ready",
    responses(
        (status = 200, description = "Ready", body = Object, example = json!({"ready": true})),
        (status = 503, description = "Not ready", body = Object, example = json!({"ready": false}))))]
pub(super) async fn ready(
    service: web::Data<PredictService>,
    drain: web::Data<Drain>,
) -> HttpResponse {
    let ready = health_api::is_ready(&service, &drain).await;
    let mut answer = if ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    answer.json(serde_json::json!({ "ready": ready }))
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TensorMetadataBody {
    #[schema(example = "input")]
    name: String,
    #[schema(example = "FP32")]
    datatype: &'static str,
    #[schema(example = json!([-1, 27]))]
    shape: Vec<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ModelMetadataBody {
    #[schema(example = "home_win")]
    name: String,
    #[schema(example = json!(["1", "2"]))]
    versions: Vec<String>,
    #[schema(example = "onnxruntime_onnx")]
    platform: &'static str,
    inputs: Vec<TensorMetadataBody>,
    outputs: Vec<TensorMetadataBody>,
}

fn tensors(tensors: Vec<oip::TensorMetadata>) -> Vec<TensorMetadataBody> {
    tensors
        .into_iter()
        .map(|tensor| TensorMetadataBody {
            name: tensor.name,
            datatype: tensor.datatype,
            shape: tensor.shape,
        })
        .collect()
}

/// A model's versions, platform, and the tensors it takes and gives.
#[utoipa::path(get, path = "/v2/models/{model}", tag = "open inference protocol",
    operation_id = "v2_model_metadata",
    params(("model" = String, Path, description = "Model name", example = "home_win")),
    responses((status = 200, description = "Model metadata", body = ModelMetadataBody,
        example = json!({"name": "home_win", "versions": ["1", "2", "3"], "platform": "onnxruntime_onnx",
                   "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 27]}],
                   "outputs": [{"name": "home_win_probability", "datatype": "FP32", "shape": [-1]},
                               {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]}))),
    security(("bearer" = ["predict"])))]
pub(super) async fn model_metadata(
    service: web::Data<PredictService>,
    path: web::Path<ModelPath>,
) -> Result<HttpResponse, V2Error> {
    metadata(&service, &path)
}

/// One version of a model: the tensors it takes and gives.
#[utoipa::path(get, path = "/v2/models/{model}/versions/{version}", tag = "open inference protocol",
    operation_id = "v2_model_version_metadata",
    params(("model" = String, Path, description = "Model name", example = "home_win"),
           ("version" = String, Path, description = "Model version", example = "1")),
    responses((status = 200, description = "Model metadata", body = ModelMetadataBody,
        example = json!({"name": "home_win", "versions": ["1"], "platform": "onnxruntime_onnx",
                   "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 27]}],
                   "outputs": [{"name": "home_win_probability", "datatype": "FP32", "shape": [-1]},
                               {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]}))),
    security(("bearer" = ["predict"])))]
pub(super) async fn version_metadata(
    service: web::Data<PredictService>,
    path: web::Path<ModelPath>,
) -> Result<HttpResponse, V2Error> {
    metadata(&service, &path)
}

fn metadata(service: &PredictService, path: &ModelPath) -> Result<HttpResponse, V2Error> {
    let snapshot = service.catalog().snapshot();
    let metadata = oip::model_metadata(&snapshot, &path.model, path.version.as_deref())?;
    Ok(HttpResponse::Ok().json(ModelMetadataBody {
        name: metadata.name,
        versions: metadata.versions,
        platform: metadata.platform,
        inputs: tensors(metadata.inputs),
        outputs: tensors(metadata.outputs),
    }))
}

/// A model (or one version) is loaded and warm; 404 when it is not loaded.
#[utoipa::path(get, path = "/v2/models/{model}/ready", tag = "open inference protocol",
    operation_id = "v2_model_ready",
    params(("model" = String, Path, description = "Model name", example = "home_win")),
    responses((status = 200, description = "Ready", body = Object,
               example = json!({"name": "home_win", "ready": true}))),
    security(("bearer" = ["predict"])))]
pub(super) async fn model_ready(
    service: web::Data<PredictService>,
    path: web::Path<ModelPath>,
) -> Result<HttpResponse, V2Error> {
    readiness(&service, &path)
}

/// One version of a model is loaded and warm; 404 when it is not loaded.
#[utoipa::path(get, path = "/v2/models/{model}/versions/{version}/ready",
    tag = "open inference protocol", operation_id = "v2_model_version_ready",
    params(("model" = String, Path, description = "Model name", example = "home_win"),
           ("version" = String, Path, description = "Model version", example = "1")),
    responses((status = 200, description = "Ready", body = Object,
               example = json!({"name": "home_win", "ready": true}))),
    security(("bearer" = ["predict"])))]
pub(super) async fn version_ready(
    service: web::Data<PredictService>,
    path: web::Path<ModelPath>,
) -> Result<HttpResponse, V2Error> {
    readiness(&service, &path)
}

fn readiness(service: &PredictService, path: &ModelPath) -> Result<HttpResponse, V2Error> {
    let snapshot = service.catalog().snapshot();
    snapshot
        .unrouted(&path.model, path.version.as_deref())
        .map_err(OipError::from)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "name": path.model, "ready": true })))
}

/// Scores feature rows (the model's input), or games by id or by teams and date (bullpen's
/// BYTES inputs). JSON, or Triton's binary framing with `Inference-Header-Content-Length`.
/// Costs one rate-limit token per row.
#[utoipa::path(post, path = "/v2/models/{model}/infer", tag = "open inference protocol",
    operation_id = "v2_infer",
    params(("model" = String, Path, description = "Model name", example = "home_win")),
    request_body(content = InferBody, example = json!({"id": "1", "inputs": [
        {"name": "game_id", "shape": [1], "datatype": "BYTES", "data": ["NYA202404050"]}]})),
    responses((status = 200, description = "The outputs; with binary outputs, JSON then the binary section (`application/octet-stream`)",
               body = InferResponseBody,
               example = json!({"model_name": "home_win", "model_version": "1", "id": "1", "outputs": [
                   {"name": "home_win_probability", "datatype": "FP32", "shape": [1], "data": [0.558_316_65]},
                   {"name": "probabilities", "datatype": "FP32", "shape": [1, 2], "data": [0.441_683_35, 0.558_316_65]}]}))),
    security(("bearer" = ["predict"])))]
pub(super) async fn infer(
    context: InferContext,
    path: web::Path<ModelPath>,
    http: HttpRequest,
    body: RawBody,
) -> Result<HttpResponse, V2Error> {
    score(context, path.into_inner(), &http, &body.0).await
}

/// Scores with one version of a model, as `/v2/models/{model}/infer` does.
#[utoipa::path(post, path = "/v2/models/{model}/versions/{version}/infer",
    tag = "open inference protocol", operation_id = "v2_infer_version",
    params(("model" = String, Path, description = "Model name", example = "home_win"),
           ("version" = String, Path, description = "Model version", example = "1")),
    request_body(content = InferBody, example = json!({"inputs": [
        {"name": "home", "shape": [1], "datatype": "BYTES", "data": ["NYA"]},
        {"name": "away", "shape": [1], "datatype": "BYTES", "data": ["BOS"]},
        {"name": "date", "shape": [1], "datatype": "BYTES", "data": ["2025-04-05"]}]})),
    responses((status = 200, description = "The outputs; with binary outputs, JSON then the binary section (`application/octet-stream`)",
               body = InferResponseBody,
               example = json!({"model_name": "home_win", "model_version": "1", "outputs": [
                   {"name": "home_win_probability", "datatype": "FP32", "shape": [1], "data": [0.552_746_1]},
                   {"name": "probabilities", "datatype": "FP32", "shape": [1, 2], "data": [0.447_253_88, 0.552_746_1]}]}))),
    security(("bearer" = ["predict"])))]
pub(super) async fn infer_version(
    context: InferContext,
    path: web::Path<ModelPath>,
    http: HttpRequest,
    body: RawBody,
) -> Result<HttpResponse, V2Error> {
    score(context, path.into_inner(), &http, &body.0).await
}

/// What an infer handler reads from the app and the access guard: the service, the limits,
/// the key that asked and its rate-limit charge.
type InferContext = (
    web::Data<PredictService>,
    web::Data<Limits>,
    Option<web::ReqData<KeyId>>,
    Option<web::ReqData<Charge>>,
);

async fn score(
    context: InferContext,
    path: ModelPath,
    http: &HttpRequest,
    body: &[u8],
) -> Result<HttpResponse, V2Error> {
    let (service, limits, key, charge) = context;
    let ModelPath { model, version } = path;
    let header = http
        .headers()
        .get(wire::HEADER_LENGTH)
        .map(|value| value.to_str().unwrap_or("?"));
    let (json, binary) = wire::split(body, header)?;
    let request = wire::parse(json, binary, model, version, limits.max_batch)?;
    let decision = match &charge {
        Some(charge) => charge.items(request.rows()).await?,
        None => None,
    };
    let answer = oip::infer(&service, request, &caller(key, Protocol::V2)).await?;
    let (bytes, header_length) = wire::render(answer);
    let mut response = match header_length {
        Some(length) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .insert_header((wire::HEADER_LENGTH, length))
            .body(bytes),
        None => HttpResponse::Ok()
            .content_type("application/json")
            .body(bytes),
    };
    if let Some(decision) = &decision {
        insert_rate_limit_headers(decision, response.headers_mut());
    }
    Ok(response)
}
