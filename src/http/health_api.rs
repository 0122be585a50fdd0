//! `GET /health` (the process answers) and `GET /ready` (models loaded and warm; the feature
//! store and its dependency; 503 once the server drains).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::cache::{BreakerState, SharedTier};
use crate::db;
use crate::features::FeatureSource;
use crate::predict::PredictService;

use super::Drain;

/// The process answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "probes",
    operation_id = "health",
    responses((status = 200, description = "Alive", body = Object,
               example = json!({"status": "ok"}))),
)]
pub(super) async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ReadyBody<'a> {
    /// `ready`; `degraded` (the database does not answer: cached answers still come);
    /// `unready` (503: the database lacks the schema or games); `draining` (503).
    status: &'static str,
    models: Vec<ModelState<'a>>,
    features: StoreState,
    #[serde(skip_serializing_if = "Option::is_none")]
    shared_cache: Option<SharedCacheState>,
}

/// The Redis tier: its breaker and what it has done since start.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SharedCacheState {
    breaker: BreakerState,
    hits: u64,
    misses: u64,
    errors: u64,
    skipped: u64,
}

impl SharedCacheState {
    fn of(shared: &SharedTier) -> Self {
        let counters = shared.counters();
        Self {
            breaker: shared.breaker_state(),
            hits: counters.hits.get(),
            misses: counters.misses.get(),
            errors: counters.errors.get(),
            skipped: counters.skipped.get(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ModelState<'a> {
    name: &'a str,
    version: &'a str,
    warm: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "store", rename_all = "lowercase")]
pub(super) enum StoreState {
    Embedded {
        games: usize,
        #[schema(value_type = Option<String>, format = Date)]
        last_game_date: Option<chrono::NaiveDate>,
    },
    Postgres {
        database: DependencyState,
        connections: u32,
        idle_connections: u32,
        /// What serving needs that the database lacks (its schema at this build's version,
        /// games in it); empty when all is there or the database could not be asked.
        missing: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum DependencyState {
    Up,
    Down,
}

/// Whether PostgreSQL answers within a second, and what it lacks that serving needs.
async fn database_state(pool: &db::Pool) -> (DependencyState, Vec<String>) {
    match tokio::time::timeout(Duration::from_secs(1), db::schema_state(pool)).await {
        Ok(Ok(schema)) => (DependencyState::Up, missing(schema)),
        Ok(Err(_)) | Err(_) => (DependencyState::Down, Vec::new()),
    }
}

/// What the feature store cannot serve without, said so an operator knows what to run.
fn missing(schema: db::SchemaState) -> Vec<String> {
    let expected = db::expected_schema_version();
    let mut missing = Vec::new();
    match schema.version {
        Some(version) if version >= expected => {}
        Some(version) => missing.push(format!(
            "schema at version {expected} (found {version}): run `bullpen migrate`"
        )),
        None => missing.push(format!(
            "schema at version {expected} (found none): run `bullpen migrate`"
        )),
    }
    if schema.has_games != Some(true) {
        missing.push("games: run `bullpen import`".to_owned());
    }
    missing
}

/// The feature store's state, and the status it gives the server: `ready`, `unready` (the
/// database lacks what serving needs) or `degraded` (the database does not answer).
async fn store_state(service: &PredictService) -> (StoreState, &'static str) {
    match service.source() {
        FeatureSource::Embedded(live) => {
            let store = live.current();
            let state = StoreState::Embedded {
                games: store.games().len(),
                last_game_date: store.games().last().map(|game| game.date),
            };
            (state, "ready")
        }
        FeatureSource::Postgres(store) => {
            let (database, missing) = database_state(store.pool()).await;
            let state = store.pool().state();
            let status = match database {
                DependencyState::Up if missing.is_empty() => "ready",
                DependencyState::Up => "unready",
                DependencyState::Down => "degraded",
            };
            let features = StoreState::Postgres {
                database,
                connections: state.connections,
                idle_connections: state.idle_connections,
                missing,
            };
            (features, status)
        }
    }
}

/// Whether this replica should take traffic: what `/ready` answers 200 for, and the Open
/// Inference Protocol's server readiness (REST and gRPC).
pub async fn is_ready(service: &PredictService, drain: &Drain) -> bool {
    !drain.is_draining() && store_state(service).await.1 != "unready"
}

/// Models are loaded and warmed before the server accepts connections, so a server that
/// answers has its models ready. With the PostgreSQL store the body also says whether the
/// database answers (`degraded` when it does not: predictions still come from the caches,
/// and a 503 would take every replica out of service at once) and whether it holds the
/// schema at this build's version and games (`unready`, 503, naming what is missing). Once
/// shutdown begins the status is `draining` and the answer 503, so balancers stop sending.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "probes",
    operation_id = "ready",
    responses(
        (status = 200, description = "Ready (or degraded: serving from the caches)", body = ReadyBody,
         example = json!({"status": "ready",
             "models": [{"name": "home_win", "version": "1", "warm": true},
                        {"name": "home_win", "version": "2", "warm": true},
                        {"name": "home_win", "version": "3", "warm": true}],
             "features": {"store": "embedded", "games": 35479, "last_game_date": "2024-10-30"}})),
        (status = 503, description = "Not ready, or draining: send traffic elsewhere", body = ReadyBody),
    ),
)]
pub(super) async fn ready(
    service: web::Data<PredictService>,
    drain: web::Data<Drain>,
) -> HttpResponse {
    let (features, status) = store_state(&service).await;
    let draining = drain.is_draining();
    let snapshot = service.catalog().snapshot();
    // Draining, or a database that lacks what serving needs: take this replica out of
    // service. A database that does not answer is `degraded` (200): the caches still serve,
    // and a 503 would take every replica out at once.
    let mut answer = if draining || status == "unready" {
        HttpResponse::ServiceUnavailable()
    } else {
        HttpResponse::Ok()
    };
    answer.json(ReadyBody {
        status: if draining { "draining" } else { status },
        models: snapshot
            .versions()
            .iter()
            .map(|m| ModelState {
                name: &m.name,
                version: &m.version,
                warm: true,
            })
            .collect(),
        features,
        shared_cache: service
            .caches()
            .shared()
            .map(|shared| SharedCacheState::of(shared)),
    })
}
