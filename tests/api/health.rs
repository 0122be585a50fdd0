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
            "models": [
                { "name": "home_win", "version": "1", "warm": true },
                { "name": "home_win", "version": "2", "warm": true },
                { "name": "home_win", "version": "3", "warm": true },
            ],
            "features": { "store": "embedded", "games": store().games().len(), "last_game_date": "2024-10-30" },
        })
    );
}

/// Load balancers probe with HEAD: the probes answer it as GET, with the head only.
#[tokio::test]
async fn probes_answer_head_without_a_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    for path in ["/health", "/ready"] {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
            .await
            .expect("connect");
        stream
            .write_all(
                format!("HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
        assert!(
            answer.ends_with("\r\n\r\n"),
            "{path} sent a body: {answer:?}"
        );
        assert!(
            answer
                .to_lowercase()
                .contains("content-type: application/json"),
            "{answer}"
        );
    }
}
