//! Monitoring over HTTP: the metrics middleware, `GET /metrics`, model quality, and the
//! status page with its data.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use std::sync::RwLock;

use super::access::{Route, RouteHandles};
use super::errors::{ApiError, ErrorCode};
use crate::cache::BreakerState;
use crate::features::FeatureSource;
use crate::monitoring::quality::{Quality, Window};
use crate::monitoring::{Live, Metrics, Recorder, Rejection, Sampler};
use crate::predict::{PredictError, PredictService};

/// Counts every request by route pattern, method and status, times it, tracks requests in
/// flight, and counts refusals by reason.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = request
        .app_data::<web::Data<Metrics>>()
        .expect("Metrics are registered with the app; this is a bug")
        .clone();
    if !metrics.count_requests {
        return next.call(request).await;
    }
    let started = Instant::now();
    metrics.in_flight.inc();
    let method = request.method().clone();
    let response = next.call(request).await;
    metrics.in_flight.dec();
    let (status, route, code) = match &response {
        Ok(response) => (
            response.status(),
            response.request().extensions().get::<Route>().cloned(),
            response
                .response()
                .error()
                .and_then(|error| error.as_error::<ApiError>())
                .map(ApiError::code),
        ),
        Err(error) => (
            error.as_response_error().status_code(),
            None,
            error.as_error::<ApiError>().map(ApiError::code),
        ),
    };
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(route) = route {
        count_route(&metrics, &route, &method, status, elapsed);
    } else {
        let labels = ["unmatched", method.as_str(), status.as_str()];
        metrics.http_requests.with_label_values(&labels).inc();
        metrics
            .http_duration
            .with_label_values(&["unmatched"])
            .observe(elapsed);
    }
    if let Some(reason) = code.and_then(rejection) {
        metrics.rejected(reason);
    }
    response
}

/// Counts one answer of `route` through its cached handles, resolving them on first use.
fn count_route(
    metrics: &Metrics,
    route: &Route,
    method: &Method,
    status: StatusCode,
    seconds: f64,
) {
    let handles = route.handles.get_or_init(|| RouteHandles {
        duration: metrics.http_duration.with_label_values(&[&*route.pattern]),
        requests: RwLock::default(),
    });
    handles.duration.observe(seconds);
    {
        let known = handles
            .requests
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, _, counter)) = known.iter().find(|(m, s, _)| m == method && *s == status) {
            counter.inc();
            return;
        }
    }
    let labels = [&*route.pattern, method.as_str(), status.as_str()];
    let counter = metrics.http_requests.with_label_values(&labels);
    counter.inc();
    let mut known = handles
        .requests
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    known.push((method.clone(), status, counter));
}

fn rejection(code: ErrorCode) -> Option<Rejection> {
    match code {
        ErrorCode::MissingCredentials
        | ErrorCode::MalformedCredentials
        | ErrorCode::InvalidCredentials
        | ErrorCode::InsufficientScope => Some(Rejection::Auth),
        ErrorCode::RateLimited => Some(Rejection::RateLimit),
        ErrorCode::Overloaded | ErrorCode::RequestTimeout => Some(Rejection::Admission),
        code if code.status().is_client_error() => Some(Rejection::Validation),
        _ => None,
    }
}

/// The state gauges, read now, then every metric in the Prometheus text format.
pub(super) async fn metrics(
    metrics: web::Data<Metrics>,
    service: web::Data<PredictService>,
    recorder: web::Data<Recorder>,
) -> HttpResponse {
    for model in service.registry().models() {
        let depth = i64::try_from(model.pool.queue_depth()).unwrap_or(i64::MAX);
        metrics
            .inference_queue_depth
            .with_label_values(&[&*model.name, &*model.version])
            .set(depth);
    }
    let mut pools = Vec::new();
    if let FeatureSource::Postgres(store) = service.source() {
        pools.push(("postgres", store.pool().state()));
    }
    if let Some(pool) = recorder.log_pool() {
        pools.push(("prediction_log", pool.state()));
    }
    for (name, state) in pools {
        let idle = state.idle_connections;
        set_pool(&metrics, name, state.connections - idle, idle);
    }
    if let Some(shared) = service.caches().shared() {
        if let Some((in_use, idle)) = shared.pool_state() {
            set_pool(&metrics, "redis", in_use, idle);
        }
        metrics.redis_breaker.set(match shared.breaker_state() {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        });
    }
    for found in every_model_quality(&service, &recorder).await {
        for version in &found.versions {
            let quality = &version.quality;
            let measures = [
                ("brier", quality.brier),
                ("log_loss", quality.log_loss),
                ("accuracy", quality.accuracy),
                ("games", quality.games as f64),
            ];
            for (measure, value) in measures {
                metrics
                    .model_quality
                    .with_label_values(&[&found.model, &version.version, measure])
                    .set(value);
            }
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}

fn set_pool(metrics: &Metrics, pool: &str, in_use: u32, idle: u32) {
    let gauge = |state| metrics.pool_connections.with_label_values(&[pool, state]);
    gauge("in_use").set(i64::from(in_use));
    gauge("idle").set(i64::from(idle));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QualityQuery {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

#[derive(Debug, Serialize)]
struct ModelQuality {
    model: String,
    source: &'static str,
    window: Window,
    versions: Vec<VersionQuality>,
}

#[derive(Debug, Serialize)]
struct VersionQuality {
    version: String,
    #[serde(flatten)]
    quality: Quality,
}

async fn model_quality(
    service: &PredictService,
    recorder: &Recorder,
    name: &str,
    window: Window,
) -> Result<ModelQuality, ApiError> {
    if !service.registry().models().iter().any(|m| &*m.name == name) {
        return Err(
            PredictError::Model(crate::models::ResolveError::UnknownModel(name.to_owned())).into(),
        );
    }
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
async fn every_model_quality(service: &PredictService, recorder: &Recorder) -> Vec<ModelQuality> {
    let mut names: Vec<&str> = service
        .registry()
        .models()
        .iter()
        .map(|m| &*m.name)
        .collect();
    names.dedup();
    let mut qualities = Vec::new();
    for name in names {
        if let Ok(found) = model_quality(service, recorder, name, Window::default()).await {
            qualities.push(found);
        }
    }
    qualities
}

/// `GET /api/v1/models/{name}/quality?from=&to=`: per version, over served predictions of
/// games (dated within the window) whose results are in.
pub(super) async fn quality(
    service: web::Data<PredictService>,
    recorder: web::Data<Recorder>,
    name: web::Path<String>,
    query: web::Query<QualityQuery>,
) -> Result<HttpResponse, ApiError> {
    let window = Window {
        from: query.from,
        to: query.to,
    };
    if let (Some(from), Some(to)) = (window.from, window.to)
        && from > to
    {
        return Err(ApiError::InvalidBody(format!(
            "the window runs backwards: from {from} is after to {to}"
        )));
    }
    let body = model_quality(&service, &recorder, &name, window).await?;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /status`: one self-contained page (no external assets) that polls `/status/data`.
pub(super) async fn status_page() -> HttpResponse {
    HttpResponse::build(StatusCode::OK)
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(include_str!("status.html"))
}

#[derive(Debug, Serialize)]
struct StatusData {
    live: Live,
    cache: Vec<TierState>,
    models: Vec<ModelRow>,
    quality: Vec<ModelQuality>,
}

#[derive(Debug, Serialize)]
struct TierState {
    tier: &'static str,
    hits: u64,
    misses: u64,
    hit_rate: Option<f64>,
}

#[derive(Debug, Serialize)]
struct ModelRow {
    name: String,
    version: String,
    default: bool,
    inference_calls: u64,
    queue_depth: usize,
}

/// `GET /status/data`: the numbers of the status page.
pub(super) async fn status_data(
    metrics: web::Data<Metrics>,
    sampler: web::Data<Sampler>,
    service: web::Data<PredictService>,
    recorder: web::Data<Recorder>,
) -> HttpResponse {
    let cache = ["memory", "redis"]
        .into_iter()
        .filter(|tier| *tier == "memory" || service.caches().shared().is_some())
        .map(|tier| {
            let (hits, misses) = metrics.cache_counters(tier);
            let (hits, misses) = (hits.get(), misses.get());
            let total = hits + misses;
            TierState {
                tier,
                hits,
                misses,
                hit_rate: (total > 0).then(|| hits as f64 / total as f64),
            }
        })
        .collect();
    let registry = service.registry();
    let models = registry
        .models()
        .iter()
        .map(|model| ModelRow {
            name: model.name.to_string(),
            version: model.version.to_string(),
            default: std::sync::Arc::ptr_eq(model, registry.default_model()),
            inference_calls: model.pool.calls(),
            queue_depth: model.pool.queue_depth(),
        })
        .collect();
    let quality = every_model_quality(&service, &recorder).await;
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(StatusData {
            live: sampler.live(&metrics),
            cache,
            models,
            quality,
        })
}
