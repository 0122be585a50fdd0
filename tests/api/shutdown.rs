use std::time::Duration;

use serde_json::json;

use crate::helpers::spawn_app;

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
