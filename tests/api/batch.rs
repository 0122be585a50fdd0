use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn a_batch_answers_each_item_and_one_bad_item_fails_alone() {
    let app = spawn_app().await;
    let single = app.predict(&json!({ "game_id": "KCA202404100" })).await;
    let reply = app
        .post_json(
            "/api/v1/predict/batch",
            &json!({ "items": [
                { "game_id": "KCA202404100" },
                { "game_id": "bad" },
                { "game": { "home": "NYA", "away": "BOS", "date": "2025-04-05" }, "odds": { "home": -120, "away": 110 } },
                { "game_id": "KCA202404100", "model": "spread" },
                { "game_id": "NYA202409280", "extra": true },
            ] }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = &reply.body;
    assert_eq!(body["succeeded"], 2);
    assert_eq!(body["failed"], 3);
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 5);
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result["index"], index);
    }
    assert_eq!(
        results[0]["prediction"]["home_win_probability"],
        single.body["home_win_probability"]
    );
    assert_eq!(results[0]["prediction"]["cached"], true);
    assert_eq!(results[1]["error"]["code"], "invalid_game_id");
    assert_eq!(results[1]["error"]["status"], 400);
    assert_eq!(results[2]["prediction"]["game"]["home"], "NYA");
    assert!(results[2]["prediction"]["market"]["home"]["edge"].is_number());
    assert_eq!(results[3]["error"]["code"], "model_not_found");
    assert_eq!(results[4]["error"]["code"], "unknown_field");
    assert_eq!(
        results[1]["error"]["request_id"],
        reply.header("x-request-id").expect("id")
    );
}

#[tokio::test]
async fn batch_predictions_equal_single_ones_and_run_as_one_call() {
    let app = spawn_app().await;
    let ids = crate::helpers::game_ids(2024, 50, usize::MAX);
    let items: Vec<_> = ids.iter().map(|id| json!({ "game_id": id })).collect();
    let reply = app
        .post_json("/api/v1/predict/batch", &json!({ "items": items }))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(app.inference_calls().await, 1, "every miss in one call");

    let cold = spawn_app().await;
    for (id, result) in ids
        .iter()
        .zip(reply.body["results"].as_array().expect("results"))
    {
        let single = cold.predict(&json!({ "game_id": id })).await;
        let (batch, one) = (
            result["prediction"]["home_win_probability"]
                .as_f64()
                .expect("p"),
            single.body["home_win_probability"].as_f64().expect("p"),
        );
        assert!((batch - one).abs() < 1e-6, "{id}: {batch} v {one}");
    }
}

#[tokio::test]
async fn empty_and_oversized_batches_are_refused() {
    let app = spawn_app_with(|settings| settings.server.max_batch = 3).await;
    let empty = app
        .post_json("/api/v1/predict/batch", &json!({ "items": [] }))
        .await;
    assert_eq!(empty.status, 422);
    assert_eq!(
        empty.problem(),
        json!({ "type": "urn:bullpen:error:batch_empty", "title": "The batch has no items", "status": 422,
                "detail": "a batch needs at least one item", "code": "batch_empty" })
    );
    let items: Vec<_> = (0..4)
        .map(|_| json!({ "game_id": "KCA202404100" }))
        .collect();
    let over = app
        .post_json("/api/v1/predict/batch", &json!({ "items": items }))
        .await;
    assert_eq!(over.status, 422);
    assert_eq!(
        over.problem(),
        json!({ "type": "urn:bullpen:error:batch_too_large", "title": "The batch has too many items", "status": 422,
                "detail": "a batch holds at most 3 items; this one has 4", "code": "batch_too_large" })
    );
}
