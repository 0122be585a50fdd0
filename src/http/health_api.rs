//! `GET /health` (the process answers) and `GET /ready` (models loaded and warm, data loaded).

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::resource;
use crate::predict::PredictService;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health").route(web::get().to(health)))
        .service(resource("/ready").route(web::get().to(ready)));
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[derive(Debug, Serialize)]
struct ReadyBody<'a> {
    status: &'static str,
    models: Vec<ModelState<'a>>,
    features: StoreState,
}

#[derive(Debug, Serialize)]
struct ModelState<'a> {
    name: &'a str,
    version: &'a str,
    warm: bool,
}

#[derive(Debug, Serialize)]
struct StoreState {
    store: &'static str,
    games: usize,
    last_game_date: Option<chrono::NaiveDate>,
}

/// Models are loaded and warmed before the server accepts connections, so a server that
/// answers is ready; the body says what it serves.
async fn ready(service: web::Data<PredictService>) -> HttpResponse {
    let store = service.store();
    HttpResponse::Ok().json(ReadyBody {
        status: "ready",
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
        features: StoreState {
            store: "embedded",
            games: store.games().len(),
            last_game_date: store.games().last().map(|game| game.date),
        },
    })
}
