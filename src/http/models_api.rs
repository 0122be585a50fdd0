//! `GET /api/v1/models`.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::models::ManifestSpec;
use crate::predict::PredictService;

#[derive(Debug, Serialize)]
struct ModelsBody<'a> {
    default: String,
    models: Vec<ModelBody<'a>>,
}

#[derive(Debug, Serialize)]
struct ModelBody<'a> {
    name: &'a str,
    version: &'a str,
    default: bool,
    created_at: &'a str,
    feature_spec: &'a ManifestSpec,
    input: &'a str,
    output: &'a str,
    training: &'a serde_json::Value,
    metrics: &'a serde_json::Value,
    /// Share of unpinned traffic for this name; one version serves it all for now.
    routing_weight: f64,
    /// Inference calls and rows run since start.
    inference_calls: u64,
    rows_inferred: u64,
}

pub(super) async fn list(service: web::Data<PredictService>) -> HttpResponse {
    let registry = service.registry();
    let default = registry.default_model();
    let models = registry
        .models()
        .iter()
        .map(|model| {
            let newest = registry
                .models()
                .iter()
                .rfind(|m| m.name == model.name)
                .is_some_and(|newest| std::ptr::eq(newest.as_ref(), model.as_ref()));
            ModelBody {
                name: &model.name,
                version: &model.version,
                default: std::ptr::eq(model.as_ref(), default.as_ref()),
                created_at: &model.manifest.created_at,
                feature_spec: &model.manifest.feature_spec,
                input: &model.manifest.input,
                output: &model.manifest.output,
                training: &model.manifest.training,
                metrics: &model.manifest.metrics,
                routing_weight: if newest { 1.0 } else { 0.0 },
                inference_calls: model.pool.calls(),
                rows_inferred: model.pool.rows_inferred(),
            }
        })
        .collect();
    HttpResponse::Ok().json(ModelsBody {
        default: format!("{}@{}", default.name, default.version),
        models,
    })
}
