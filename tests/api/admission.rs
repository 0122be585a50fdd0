use serde_json::json;

use crate::helpers::spawn_app_with;

#[tokio::test]
async fn past_the_in_flight_cap_requests_are_refused_at_once() {
    let app = spawn_app_with(|settings| settings.server.max_in_flight = 1).await;
    let held = app
        .start_slow_post("/api/v1/predict", r#"{"game_id": "KCA202404100"}"#)
        .await;
    let refused = app.predict(&json!({ "game_id": "KCA202404100" })).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(
        refused.problem(),
        json!({ "type": "urn:bullpen:error:overloaded", "title": "Too much work in flight; retry shortly",
                "status": 503, "detail": "too many requests are in flight", "code": "overloaded" })
    );
    assert_eq!(
        app.get("/health").await.status,
        200,
        "health is outside admission control"
    );

    let (status, _) = held.finish().await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    app.assert_still_serves().await;
}

#[tokio::test]
async fn a_request_over_its_deadline_gets_a_timeout_problem() {
    let app = spawn_app_with(|settings| settings.server.request_timeout_ms = 100).await;
    let slow = app
        .start_slow_post("/api/v1/predict", r#"{"game_id": "KCA202404100"}"#)
        .await;
    // Waiting for time itself: the body stays incomplete past the 100 ms deadline.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, body) = slow.finish().await;
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    let problem: serde_json::Value = serde_json::from_str(&body).expect("problem JSON");
    assert_eq!(problem["code"], "request_timeout");
    assert_eq!(
        problem["detail"],
        "the request did not finish within 100 ms"
    );
    assert!(problem["request_id"].is_string());
    app.assert_still_serves().await;
}
