//! Monitoring over HTTP: `GET /metrics`, model quality, and the status page with its data.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::errors::ApiError;
use crate::cache::BreakerState;
use crate::features::FeatureSource;
use crate::games::parse_date;
use crate::models::ResolveError;
use crate::monitoring::quality::{Quality, Window};
use crate::monitoring::{CacheTier, Live, Metrics, PoolName, Sampler};
use crate::predict::{PredictError, PredictService};

/// The state gauges, read now, then every metric in the Prometheus text format.
/// They carry live model quality (`bullpen_model_quality`), so they need scope `predict` as
/// the status page's numbers do, unless `auth.open_status`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "monitoring",
    operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format",
               content_type = "text/plain; version=0.0.4", body = String)),
    security(("bearer" = ["predict"]), ()),
)]
pub(super) async fn metrics(
    metrics: web::Data<Metrics>,
    service: web::Data<PredictService>,
) -> HttpResponse {
    for model in service.catalog().snapshot().versions() {
        let pool = &model.pool;
        pool.metrics().set_queue_depth(pool.queue_depth());
    }
    let mut pools = Vec::new();
    if let FeatureSource::Postgres(store) = service.source() {
        pools.push((PoolName::Postgres, store.pool().state()));
    }
    if let Some(pool) = service.recorder().log_pool() {
        pools.push((PoolName::PredictionLog, pool.state()));
    }
    for (name, state) in pools {
        let idle = state.idle_connections;
        metrics.set_pool(name, state.connections - idle, idle);
    }
    if let Some(shared) = service.caches().shared() {
        if let Some((in_use, idle)) = shared.pool_state() {
            metrics.set_pool(PoolName::Redis, in_use, idle);
        }
        metrics.redis_breaker.set(match shared.breaker_state() {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        });
    }
    for found in every_model_quality(&service).await {
        for version in &found.versions {
            metrics.set_quality(&found.model, &version.version, &version.quality);
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}

/// `?from=YYYY-MM-DD&to=YYYY-MM-DD`, both optional; nothing else.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct QualityQuery {
    /// First game date counted, `YYYY-MM-DD`.
    #[param(format = Date)]
    from: Option<String>,
    /// Last game date counted, `YYYY-MM-DD`.
    #[param(format = Date)]
    to: Option<String>,
}

impl QualityQuery {
    /// The window asked for, or why the query string is not one.
    fn window(query_string: &str) -> Result<Window, ApiError> {
        let query = web::Query::<Self>::from_query(query_string).map_err(|error| {
            ApiError::InvalidQuery(format!(
                "{error}; the query takes `from` and `to`, dates as YYYY-MM-DD"
            ))
        })?;
        let date = |name: &str, text: &Option<String>| {
            text.as_deref()
                .map(|text| {
                    parse_date(text).ok_or_else(|| {
                        ApiError::InvalidQuery(format!(
                            "`{name}={text}` is not a date in YYYY-MM-DD form"
                        ))
                    })
                })
                .transpose()
        };
        let window = Window {
            from: date("from", &query.from)?,
            to: date("to", &query.to)?,
        };
        if let (Some(from), Some(to)) = (window.from, window.to)
            && from > to
        {
            return Err(ApiError::InvalidQuery(format!(
                "the window runs backwards: from {from} is after to {to}"
            )));
        }
        Ok(window)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ModelQuality {
    model: String,
    source: &'static str,
    window: Window,
    versions: Vec<VersionQuality>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct VersionQuality {
    version: String,
    #[serde(flatten)]
    quality: Quality,
}

async fn model_quality(
    service: &PredictService,
    name: &str,
    window: Window,
) -> Result<ModelQuality, ApiError> {
    if service.catalog().snapshot().route(name).is_none() {
        return Err(PredictError::Model(ResolveError::UnknownModel(name.to_owned())).into());
    }
    let recorder = service.recorder();
    let versions = recorder
        .quality(name, window, service.source())
        .await
        .map_err(PredictError::from)?
        .into_iter()
        .map(|(version, quality)| VersionQuality {
            version: version.to_string(),
            quality,
        })
        .collect();
    Ok(ModelQuality {
        model: name.to_owned(),
        source: recorder.quality_source(),
        window,
        versions,
    })
}

/// The all-time quality of every model served here; a model whose quality cannot be read
/// now (the prediction log's database down) is left out.
async fn every_model_quality(service: &PredictService) -> Vec<ModelQuality> {
    let snapshot = service.catalog().snapshot();
    let names: Vec<&str> = snapshot.routes().iter().map(|r| &*r.name).collect();
    let mut qualities = Vec::new();
    for name in names {
        if let Ok(found) = model_quality(service, name, Window::default()).await {
            qualities.push(found);
        }
    }
    qualities
}

/// `GET /api/v1/models/{name}/quality?from=&to=`: per version, over served predictions of
/// games (dated within the window) whose results are in.
#[utoipa::path(
    get,
    path = "/api/v1/models/{name}/quality",
    tag = "models",
    operation_id = "model_quality",
    params(("name" = String, Path, description = "A model name", example = "home_win"),
           QualityQuery),
    responses((status = 200, description = "Brier score, log loss, accuracy and calibration per version",
               body = ModelQuality,
               example = json!({"model": "home_win", "source": "served_here",
                                "window": {"from": null, "to": null}, "versions": []}))),
    security(("bearer" = ["predict"])),
)]
pub(super) async fn quality(
    service: web::Data<PredictService>,
    name: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let window = QualityQuery::window(request.query_string())?;
    let body = model_quality(&service, &name, window).await?;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /status`: one self-contained page (no external assets) that polls `/status/data`.
#[utoipa::path(
    get,
    path = "/status",
    tag = "monitoring",
    operation_id = "status_page",
    responses((status = 200, description = "The status page", content_type = "text/html", body = String)),
)]
pub(super) async fn status_page() -> HttpResponse {
    HttpResponse::build(StatusCode::OK)
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(include_str!("status.html"))
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct StatusData {
    /// Requests per second, latency percentiles, errors, in flight, over the last minute.
    #[schema(value_type = Object)]
    live: Live,
    cache: Vec<TierState>,
    models: Vec<ModelRow>,
    quality: Vec<ModelQuality>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TierState {
    tier: &'static str,
    hits: u64,
    misses: u64,
    hit_rate: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ModelRow {
    name: String,
    version: String,
    /// Share (0-100) of the model's unpinned requests this version serves.
    routing_weight: u8,
    shadow: bool,
    /// Why the rollback guard last took this version's weight, if it did.
    rolled_back: Option<String>,
    inference_calls: u64,
    queue_depth: usize,
}

/// `GET /status/data`: the numbers of the status page.
#[utoipa::path(
    get,
    path = "/status/data",
    tag = "monitoring",
    operation_id = "status_data",
    responses((status = 200, description = "The status page's numbers", body = StatusData)),
    security(("bearer" = ["predict"]), ()),
)]
pub(super) async fn status_data(
    metrics: web::Data<Metrics>,
    sampler: web::Data<Sampler>,
    service: web::Data<PredictService>,
) -> HttpResponse {
    let cache = CacheTier::ALL
        .into_iter()
        .filter(|tier| *tier == CacheTier::Memory || service.caches().shared().is_some())
        .map(|tier| {
            let (hits, misses) = metrics.cache_counters(tier);
            let (hits, misses) = (hits.get(), misses.get());
            let total = hits + misses;
            TierState {
                tier: tier.label(),
                hits,
                misses,
                hit_rate: (total > 0).then(|| hits as f64 / total as f64),
            }
        })
        .collect();
    let snapshot = service.catalog().snapshot();
    let models = snapshot
        .versions()
        .iter()
        .map(|model| {
            let route = snapshot.route(&model.name);
            ModelRow {
                name: model.name.to_string(),
                version: model.version.to_string(),
                routing_weight: route.map_or(0, |route| route.weight(&model.version)),
                shadow: route.is_some_and(|route| {
                    route
                        .shadow()
                        .iter()
                        .any(|m| std::sync::Arc::ptr_eq(m, model))
                }),
                rolled_back: route.and_then(|route| {
                    let trips = &route.state.trips;
                    let last = trips.iter().rfind(|trip| *trip.version == *model.version)?;
                    Some(last.reason.clone())
                }),
                inference_calls: model.pool.calls(),
                queue_depth: model.pool.queue_depth(),
            }
        })
        .collect();
    let quality = every_model_quality(&service).await;
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(StatusData {
            live: sampler.live(&metrics),
            cache,
            models,
            quality,
        })
}
