//! `GET /api/v1/models`, and the version state the model admin routes answer with.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::models::{ManifestSpec, ServedModel, Snapshot};
use crate::predict::PredictService;

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ModelsBody<'a> {
    /// The model a request that names none is answered by (routed among its versions).
    default: &'a str,
    models: Vec<VersionBody<'a>>,
    /// Versions whose last load failed, with the reason; they take no traffic.
    failed: Vec<FailedBody<'a>>,
}

/// One loaded version: what it is, and what share of its model's traffic it takes.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct VersionBody<'a> {
    name: &'a str,
    version: &'a str,
    state: &'static str,
    /// Share (0-100) of the model's unpinned requests, by game bucket.
    routing_weight: u8,
    /// Scores the model's routed requests off the response path.
    shadow: bool,
    fingerprint: &'a str,
    created_at: &'a str,
    /// The feature spec the version was trained on (version, names, hash).
    #[schema(value_type = Object)]
    feature_spec: &'a ManifestSpec,
    input: &'a str,
    output: &'a str,
    #[schema(value_type = Object)]
    training: &'a serde_json::Value,
    #[schema(value_type = Object)]
    metrics: &'a serde_json::Value,
    /// Inference calls and rows run since it was loaded.
    inference_calls: u64,
    rows_inferred: u64,
}

impl<'a> VersionBody<'a> {
    pub(super) fn of(snapshot: &'a Snapshot, model: &'a ServedModel) -> Self {
        let route = snapshot.route(&model.name);
        Self {
            name: &model.name,
            version: &model.version,
            state: "ready",
            routing_weight: route.map_or(0, |route| route.weight(&model.version)),
            shadow: route.is_some_and(|route| {
                route
                    .shadow()
                    .iter()
                    .any(|m| std::ptr::eq(m.as_ref(), model))
            }),
            fingerprint: &model.fingerprint,
            created_at: &model.manifest.created_at,
            feature_spec: &model.manifest.feature_spec,
            input: &model.manifest.input,
            output: &model.manifest.output,
            training: &model.manifest.training,
            metrics: &model.manifest.metrics,
            inference_calls: model.pool.calls(),
            rows_inferred: model.pool.rows_inferred(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct FailedBody<'a> {
    name: &'a str,
    version: &'a str,
    state: &'static str,
    reason: &'a str,
}

/// The loaded model versions, their routing share, and versions that failed to load.
#[utoipa::path(
    get,
    path = "/api/v1/models",
    tag = "models",
    operation_id = "list_models",
    responses((status = 200, description = "Every loaded version", body = ModelsBody,
               example = super::openapi::example_models)),
    security(("bearer" = ["predict"])),
)]
pub(super) async fn list(service: web::Data<PredictService>) -> HttpResponse {
    let snapshot = service.catalog().snapshot();
    HttpResponse::Ok().json(ModelsBody {
        default: snapshot.default_name(),
        models: snapshot
            .versions()
            .iter()
            .map(|model| VersionBody::of(&snapshot, model))
            .collect(),
        failed: snapshot
            .failures()
            .iter()
            .map(|((name, version), reason)| FailedBody {
                name,
                version,
                state: "failed",
                reason,
            })
            .collect(),
    })
}
