//! The admin routes (scope `admin`): cache invalidation, and the model lifecycle (load,
//! unload, reload, routing).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::errors::ApiError;
use super::json::ApiJson;
use super::models_api::VersionBody;
use crate::cache::KeyPattern;
use crate::models::{Change, GuardSpec, ModelRef, Rescan, ResolveError, RoutingSpec, RoutingState};
use crate::predict::{PredictError, PredictService, RequestError};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct InvalidateBody {
    /// A key pattern such as `prediction:home_win:*` (see `cache::KeyPattern`).
    #[schema(
        example = "prediction:home_win:*",
        pattern = "^(prediction:|features:|\\*)[\\x21-\\x7e]{0,199}$"
    )]
    pattern: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct InvalidateAnswer {
    pattern: String,
    /// What happened in Redis; absent when there is no shared tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    shared: Option<SharedInvalidation>,
}

/// `null` fields mean Redis could not be reached.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SharedInvalidation {
    keys_deleted: Option<u64>,
    /// Replicas that heard the broadcast, this one included.
    replicas_notified: Option<u64>,
}

/// Drops matching entries here, deletes them from Redis, and tells every replica to drop
/// its own in-process copies.
#[utoipa::path(
    post,
    path = "/api/v1/admin/cache/invalidate",
    tag = "admin",
    operation_id = "invalidate_cache",
    request_body(content = InvalidateBody, example = json!({"pattern": "prediction:home_win:*"})),
    responses((status = 200, description = "What was dropped (`shared`: in Redis, when there is a shared tier)",
               body = InvalidateAnswer, example = json!({"pattern": "prediction:home_win:*"}))),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn invalidate(
    service: web::Data<PredictService>,
    ApiJson(body): ApiJson<InvalidateBody>,
) -> Result<HttpResponse, ApiError> {
    let pattern: KeyPattern = body.pattern.parse()?;
    let caches = service.caches();
    caches.invalidate_local(&pattern);
    let shared = match caches.shared() {
        Some(shared) => Some(SharedInvalidation {
            keys_deleted: shared.delete_matching(&pattern).await,
            replicas_notified: shared.publish_invalidation(&pattern).await,
        }),
        None => None,
    };
    tracing::info!(%pattern, ?shared, "cache invalidated");
    Ok(HttpResponse::Ok().json(InvalidateAnswer {
        pattern: pattern.to_string(),
        shared,
    }))
}

/// `{name}` and `{version}` of the model admin routes, checked as a model reference is (so
/// no path outside `models.dir` can be named).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct VersionPath {
    /// A model name, e.g. `home_win`.
    #[param(pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$", example = "home_win")]
    name: String,
    /// A version folder of the model in `models.dir`, e.g. `2`.
    #[param(pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$", example = "2")]
    version: String,
}

impl VersionPath {
    fn checked(&self) -> Result<(&str, &str), ApiError> {
        let text = format!("{}@{}", self.name, self.version);
        text.parse::<ModelRef>()
            .map_err(|error| ApiError::Request(RequestError::Model(error)))?;
        Ok((&self.name, &self.version))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct VersionAnswer<'a> {
    change: Change,
    model: VersionBody<'a>,
}

/// `POST /api/v1/admin/models/{name}/versions/{version}/load`: loads, checks and warms the
/// version from `models.dir`, then answers its state. Routing is not changed.
#[utoipa::path(
    post,
    path = "/api/v1/admin/models/{name}/versions/{version}/load",
    tag = "admin",
    operation_id = "load_model_version",
    params(VersionPath),
    responses((status = 200, description = "Loaded, checked and warm; routing unchanged",
               body = VersionAnswer, example = super::openapi::example_loaded_version)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn load_version(
    service: web::Data<PredictService>,
    path: web::Path<VersionPath>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.checked()?;
    let change = service.catalog().load_version(name, version).await?;
    let snapshot = service.catalog().snapshot();
    let model = snapshot.version(name, version).ok_or_else(|| {
        PredictError::Model(ResolveError::UnknownVersion {
            name: name.to_owned(),
            version: version.to_owned(),
        })
    })?;
    tracing::info!(model = name, version, ?change, "model version load asked");
    Ok(HttpResponse::Ok().json(VersionAnswer {
        change,
        model: VersionBody::of(&snapshot, model),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct UnloadAnswer<'a> {
    change: Change,
    name: &'a str,
    version: &'a str,
}

/// `DELETE /api/v1/admin/models/{name}/versions/{version}`: takes the version out; refused
/// (409) while routing uses it or when it is the only one.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/models/{name}/versions/{version}",
    tag = "admin",
    operation_id = "unload_model_version",
    params(VersionPath),
    responses((status = 200, description = "Unloaded", body = UnloadAnswer,
               example = json!({"change": "unloaded", "name": "home_win", "version": "2"}))),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn unload_version(
    service: web::Data<PredictService>,
    path: web::Path<VersionPath>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.checked()?;
    service.catalog().unload(name, version).await?;
    Ok(HttpResponse::Ok().json(UnloadAnswer {
        change: Change::Unloaded,
        name,
        version,
    }))
}

/// `POST /api/v1/admin/models/reload`, as SIGHUP: loads what is new in `models.dir`,
/// reloads what changed, keeps routing.
#[utoipa::path(
    post,
    path = "/api/v1/admin/models/reload",
    tag = "admin",
    operation_id = "reload_models",
    responses((status = 200, description = "What the rescan changed", body = Rescan,
        example = json!({"changes": [
            {"name": "home_win", "version": "1", "change": "unchanged"},
            {"name": "home_win", "version": "2", "change": "unchanged"},
            {"name": "home_win", "version": "3", "change": "unchanged"}], "failures": []}))),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn reload(service: web::Data<PredictService>) -> Result<HttpResponse, ApiError> {
    let report = service.catalog().rescan().await.map_err(ApiError::Rescan)?;
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RoutingAnswer<'a> {
    model: &'a str,
    #[serde(flatten)]
    routing: &'a RoutingState,
}

/// The body of `PUT .../routing`: a routing spec, with no field it does not know.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RoutingBody {
    /// Version → share of the model's buckets (0-100), integers summing to 100.
    #[schema(example = json!({"1": 90, "2": 10}))]
    weights: BTreeMap<String, u8>,
    /// Versions that score every routed request off the response path.
    #[serde(default)]
    shadow: Vec<String>,
    /// When set, a canary that does worse than the stable version is rolled back.
    #[serde(default)]
    guard: Option<GuardSpec>,
}

impl From<RoutingBody> for RoutingSpec {
    fn from(body: RoutingBody) -> Self {
        Self {
            weights: body.weights,
            shadow: body.shadow,
            guard: body.guard,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct ModelPath {
    /// A model name, e.g. `home_win`.
    #[param(pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$", example = "home_win")]
    name: String,
}

/// `GET /api/v1/admin/models/{name}/routing`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/models/{name}/routing",
    tag = "admin",
    operation_id = "get_routing",
    params(ModelPath),
    responses((status = 200, description = "The model's routing", body = RoutingAnswer,
        example = json!({"model": "home_win", "weights": {"1": 100}, "shadow": [], "guard": null,
                         "trips": [], "revision": 0, "updated_at": "2026-11-28T08:57:08.202430148Z"}))),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn routing(
    service: web::Data<PredictService>,
    path: web::Path<ModelPath>,
) -> Result<HttpResponse, ApiError> {
    let snapshot = service.catalog().snapshot();
    let route = snapshot
        .route(&path.name)
        .ok_or_else(|| PredictError::Model(ResolveError::UnknownModel(path.name.clone())))?;
    Ok(HttpResponse::Ok().json(RoutingAnswer {
        model: &route.name,
        routing: &route.state,
    }))
}

/// `PUT /api/v1/admin/models/{name}/routing`: weights (integers summing to 100), shadow
/// versions and the guard, applied at once.
#[utoipa::path(
    put,
    path = "/api/v1/admin/models/{name}/routing",
    tag = "admin",
    operation_id = "set_routing",
    params(ModelPath),
    request_body(content = RoutingBody, example = json!({"weights": {"1": 100}, "shadow": []})),
    responses((status = 200, description = "The routing now in force, on every replica",
               body = RoutingAnswer,
               example = json!({"model": "home_win", "weights": {"1": 100}, "shadow": [],
                                "guard": null, "trips": [], "revision": 1,
                                "updated_at": "2026-11-28T08:58:21.639339368Z"}))),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn set_routing(
    service: web::Data<PredictService>,
    path: web::Path<ModelPath>,
    ApiJson(body): ApiJson<RoutingBody>,
) -> Result<HttpResponse, ApiError> {
    let state = service
        .catalog()
        .set_routing(&path.name, RoutingSpec::from(body))
        .await?;
    tracing::info!(model = %path.name, weights = ?state.spec.weights, shadow = ?state.spec.shadow, revision = state.revision, "routing changed");
    Ok(HttpResponse::Ok().json(RoutingAnswer {
        model: &path.name,
        routing: &state,
    }))
}
