use serde_json::json;

use crate::helpers::{spawn_app, store};

#[tokio::test]
async fn health_and_ready_answer() {
    let app = spawn_app().await;
    let health = app.get("/health").await;
    assert_eq!(
        (health.status, health.body),
        (200, json!({ "status": "ok" }))
    );
    let ready = app.get("/ready").await;
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.body,
        json!({
            "status": "ready",
            "models": [{ "name": "home_win", "version": "1", "warm": true }],
            "features": { "store": "embedded", "games": store().games().len(), "last_game_date": "2024-10-30" },
        })
    );
}
