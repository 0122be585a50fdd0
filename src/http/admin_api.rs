//! The admin routes (scope `admin`): cache invalidation, and the model lifecycle (load,
//! unload, reload, routing).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::errors::ApiError;
use super::json::ApiJson;
use super::models_api::VersionBody;
use crate::cache::KeyPattern;
use crate::models::{Change, ModelRef, ResolveError, RoutingSpec, RoutingState};
use crate::predict::{PredictError, PredictService, RequestError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InvalidateBody {
    /// A key pattern such as `prediction:home_win:*` (see `cache::KeyPattern`).
    pattern: String,
}

#[derive(Debug, Serialize)]
struct InvalidateAnswer {
    pattern: String,
    /// What happened in Redis; absent when there is no shared tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    shared: Option<SharedInvalidation>,
}

/// `null` fields mean Redis could not be reached.
#[derive(Debug, Serialize)]
struct SharedInvalidation {
    keys_deleted: Option<u64>,
    /// Replicas that heard the broadcast, this one included.
    replicas_notified: Option<u64>,
}

/// Drops matching entries here, deletes them from Redis, and tells every replica to drop
/// its own in-process copies.
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
#[derive(Debug, Deserialize)]
pub(super) struct VersionPath {
    name: String,
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

#[derive(Debug, Serialize)]
struct VersionAnswer<'a> {
    change: Change,
    model: VersionBody<'a>,
}

/// `POST /api/v1/admin/models/{name}/versions/{version}/load`: loads, checks and warms the
/// version from `models.dir`, then answers its state. Routing is not changed.
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

#[derive(Debug, Serialize)]
struct UnloadAnswer<'a> {
    change: Change,
    name: &'a str,
    version: &'a str,
}

/// `DELETE /api/v1/admin/models/{name}/versions/{version}`: takes the version out; refused
/// (409) while routing uses it or when it is the only one.
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
pub(super) async fn reload(service: web::Data<PredictService>) -> Result<HttpResponse, ApiError> {
    let report = service.catalog().rescan().await.map_err(ApiError::Rescan)?;
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Debug, Serialize)]
struct RoutingAnswer<'a> {
    model: &'a str,
    #[serde(flatten)]
    routing: &'a RoutingState,
}

#[derive(Debug, Deserialize)]
pub(super) struct ModelPath {
    name: String,
}

/// `GET /api/v1/admin/models/{name}/routing`.
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
pub(super) async fn set_routing(
    service: web::Data<PredictService>,
    path: web::Path<ModelPath>,
    ApiJson(spec): ApiJson<RoutingSpec>,
) -> Result<HttpResponse, ApiError> {
    let state = service.catalog().set_routing(&path.name, spec).await?;
    tracing::info!(model = %path.name, weights = ?state.spec.weights, shadow = ?state.spec.shadow, revision = state.revision, "routing changed");
    Ok(HttpResponse::Ok().json(RoutingAnswer {
        model: &path.name,
        routing: &state,
    }))
}
