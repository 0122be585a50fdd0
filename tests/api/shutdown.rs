use std::time::Duration;

use serde_json::json;

use crate::helpers::spawn_app;
use crate::process::ServerProcess;

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight_then_stops() {
    let app = spawn_app().await;
    let in_flight = app
        .start_slow_post("/api/v1/predict", r#"{"game_id": "KCA202404100"}"#)
        .await;

    let handle = app.handle.clone();
    let stopping = tokio::spawn(async move { handle.stop(true).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !app.server.is_finished(),
        "the server waits for the request in flight"
    );

    let (status, body) = in_flight.finish().await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("prediction JSON");
    assert_eq!(answer["game"]["game_id"], json!("KCA202404100"));

    stopping.await.expect("stop completes");
    let result = tokio::time::timeout(Duration::from_secs(5), app.server)
        .await
        .expect("the server stops once the request is done")
        .expect("server task");
    assert!(result.is_ok());
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", app.port))
            .await
            .is_err(),
        "no longer accepting"
    );
}

/// SIGTERM with every background task running (the sampler, the Redis invalidation follower
/// and writes behind answers, the prediction log writer): the process stops within
/// `server.shutdown_timeout_secs`, having stopped and awaited each task, and the log holds
/// every prediction served.
#[tokio::test]
async fn sigterm_stops_every_background_task_within_the_timeout() {
    let database = crate::database::TestDatabase::new().await;
    bullpen::db::migrate(&database.pool).await.expect("migrate");
    let timeout_secs = 3;
    let mut server = ServerProcess::start(&[
        (
            "BULLPEN__SERVER__SHUTDOWN_TIMEOUT_SECS",
            timeout_secs.to_string(),
        ),
        ("BULLPEN__REDIS__ENABLED", "true".to_owned()),
        (
            "BULLPEN__REDIS__KEY_PREFIX",
            format!("bullpen_test:{}:", uuid::Uuid::new_v4().simple()),
        ),
        ("BULLPEN__DATABASE__URL", database.url()),
        ("BULLPEN__PREDICTION_LOG__ENABLED", "true".to_owned()),
        // Entries wait in the queue until shutdown flushes them.
        (
            "BULLPEN__PREDICTION_LOG__FLUSH_INTERVAL_MS",
            "60000".to_owned(),
        ),
    ]);
    let client = reqwest::Client::new();
    let games = crate::helpers::game_ids(2024, 40, 20);
    for game in &games {
        let answer = client
            .post(format!("{}/api/v1/predict", server.address))
            .json(&json!({ "game_id": game }))
            .send()
            .await
            .expect("request sent");
        assert_eq!(answer.status(), 200);
    }
    // The sampler has ticked, so it is running.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let (status, took) = server
        .terminate(Duration::from_secs(timeout_secs + 5))
        .expect("the process exits");
    let log = server.log();
    assert!(status.success(), "{status}: {log}");
    assert!(
        took < Duration::from_secs(timeout_secs),
        "stopped in {took:?}, beyond the {timeout_secs} s timeout: {log}"
    );
    assert!(log.contains("background tasks stopped"), "{log}");
    assert!(!log.contains("still running"), "{log}");
    assert_eq!(
        database.count("prediction_log").await,
        games.len() as i64,
        "the queued entries were written on the way out"
    );
    database.drop_now().await;
}
