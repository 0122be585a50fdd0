//! `GET /health` (the process answers) and `GET /ready` (models loaded and warm; the feature
//! store and its dependency; 503 once the server drains).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::cache::{BreakerState, SharedTier};
use crate::features::FeatureSource;
use crate::predict::PredictService;

use super::Drain;

pub(super) async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[derive(Debug, Serialize)]
struct ReadyBody<'a> {
    status: &'static str,
    models: Vec<ModelState<'a>>,
    features: StoreState,
    #[serde(skip_serializing_if = "Option::is_none")]
    shared_cache: Option<SharedCacheState>,
}

/// The Redis tier: its breaker and what it has done since start.
#[derive(Debug, Serialize)]
struct SharedCacheState {
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

#[derive(Debug, Serialize)]
struct ModelState<'a> {
    name: &'a str,
    version: &'a str,
    warm: bool,
}

#[derive(Debug, Serialize)]
#[serde(tag = "store", rename_all = "lowercase")]
enum StoreState {
    Embedded {
        games: usize,
        last_game_date: Option<chrono::NaiveDate>,
    },
    Postgres {
        database: DependencyState,
        connections: u32,
        idle_connections: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum DependencyState {
    Up,
    Down,
}

/// Whether PostgreSQL answers a trivial query within a second.
async fn database_state(pool: &crate::db::Pool) -> DependencyState {
    let probe = async {
        let client = pool.get().await.ok()?;
        client.simple_query("SELECT 1").await.ok()
    };
    match tokio::time::timeout(Duration::from_secs(1), probe).await {
        Ok(Some(_)) => DependencyState::Up,
        Ok(None) | Err(_) => DependencyState::Down,
    }
}

/// Models are loaded and warmed before the server accepts connections, so a server that
/// answers has its models ready. With the PostgreSQL store the body also says whether the
/// database answers, and the status is `degraded` when it does not: predictions still come
/// from the caches, and a 503 would take every replica out of service at once. Once shutdown
/// begins the status is `draining` and the answer 503, so balancers stop sending.
pub(super) async fn ready(
    service: web::Data<PredictService>,
    drain: web::Data<Drain>,
) -> HttpResponse {
    let (features, status) = match service.source() {
        FeatureSource::Embedded(store) => (
            StoreState::Embedded {
                games: store.games().len(),
                last_game_date: store.games().last().map(|game| game.date),
            },
            "ready",
        ),
        FeatureSource::Postgres(store) => {
            let database = database_state(store.pool()).await;
            let state = store.pool().state();
            let status = match database {
                DependencyState::Up => "ready",
                DependencyState::Down => "degraded",
            };
            let features = StoreState::Postgres {
                database,
                connections: state.connections,
                idle_connections: state.idle_connections,
            };
            (features, status)
        }
    };
    let draining = drain.is_draining();
    let mut answer = if draining {
        HttpResponse::ServiceUnavailable()
    } else {
        HttpResponse::Ok()
    };
    answer.json(ReadyBody {
        status: if draining { "draining" } else { status },
        models: service
            .registry()
            .models()
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
