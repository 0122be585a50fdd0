//! Every client error: its status, its whole problem body, and a server that keeps serving.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

fn problem(code: &str, title: &str, status: u16, detail: &str) -> Value {
    json!({
        "type": format!("urn:bullpen:error:{code}"),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    })
}

async fn assert_predict_error(app: &TestApp, body: Value, expected: Value) {
    let reply = app.predict(&body).await;
    assert_eq!(
        u64::from(reply.status),
        expected["status"].as_u64().expect("status"),
        "{}",
        reply.body
    );
    assert_eq!(reply.problem(), expected, "for {body}");
}

async fn assert_all(cases: Vec<(Value, Value)>) {
    let app = spawn_app().await;
    for (body, expected) in cases {
        assert_predict_error(&app, body, expected).await;
    }
    assert_eq!(app.get("/health").await.status, 200);
    app.assert_still_serves().await;
}

#[tokio::test]
async fn bad_games_get_their_own_code_and_the_server_keeps_serving() {
    assert_all(vec![
        (
            json!({ "game_id": "NYA202404050", "game": { "home": "NYA", "away": "BOS", "date": "2024-04-05" } }),
            problem(
                "invalid_request",
                "The request is incomplete or contradictory",
                400,
                "give either `game_id` or `game`, not both",
            ),
        ),
        (
            json!({ "model": "home_win" }),
            problem(
                "invalid_request",
                "The request is incomplete or contradictory",
                400,
                "give `game_id` (a stored game) or `game` (home, away, date)",
            ),
        ),
        (
            json!({ "game_id": "NYA2024" }),
            problem(
                "invalid_game_id",
                "Not a game id",
                400,
                "`NYA2024` is not a game id (home team, YYYYMMDD and game number, e.g. NYA202404050)",
            ),
        ),
        (
            json!({ "game_id": "NYA202401010" }),
            problem(
                "game_not_found",
                "No such game",
                404,
                "no game `NYA202401010` in the data",
            ),
        ),
        (
            json!({ "game": { "home": "NEW YORK", "away": "BOS", "date": "2025-04-05" } }),
            problem(
                "invalid_team",
                "Not a team code",
                400,
                "`NEW YORK` is not a team code (three letters such as NYA or BOS)",
            ),
        ),
        (
            json!({ "game": { "home": "XYZ", "away": "BOS", "date": "2025-04-05" } }),
            problem(
                "unknown_team",
                "No such team in the data",
                404,
                "team `XYZ` has no games in the data",
            ),
        ),
        (
            json!({ "game": { "home": "BOS", "away": "BOS", "date": "2025-04-05" } }),
            problem(
                "invalid_matchup",
                "The teams cannot play each other",
                422,
                "a team cannot play itself (BOS)",
            ),
        ),
        (
            json!({ "game": { "home": "NYA", "away": "BOS", "date": "April 5" } }),
            problem(
                "invalid_date",
                "Not a date",
                400,
                "`April 5` is not a date in YYYY-MM-DD form",
            ),
        ),
        (
            json!({ "game": { "home": "NYA", "away": "BOS", "date": "2009-04-05" } }),
            problem(
                "date_out_of_range",
                "The date is outside the data",
                422,
                "2009-04-05 is not after the first day in the data (2010-04-04)",
            ),
        ),
    ])
    .await;
}

#[tokio::test]
async fn bad_models_odds_and_fields_get_their_own_code_and_the_server_keeps_serving() {
    assert_all(vec![
        (
            json!({ "game_id": "KCA202404100", "model": "spread" }),
            problem(
                "model_not_found",
                "No such model",
                404,
                "no model named `spread`",
            ),
        ),
        (
            json!({ "game_id": "KCA202404100", "model_name": "home_win@9" }),
            problem(
                "model_version_not_found",
                "No such model version",
                404,
                "model `home_win` has no version `9`",
            ),
        ),
        (
            json!({ "game_id": "KCA202404100", "model": "home win" }),
            problem(
                "invalid_model",
                "Not a model reference",
                400,
                "`home win` is not a model reference (`name` or `name@version`: letters, digits, `_`, `-`, `.`, starting with a letter or digit)",
            ),
        ),
        (
            json!({ "game_id": "KCA202404100", "odds": { "home": -50, "away": 130 } }),
            problem(
                "invalid_odds",
                "The odds are not odds",
                422,
                "cannot tell whether -50 and 130 are American or decimal odds; add \"format\": \"american\" or \"decimal\"",
            ),
        ),
        (
            json!({ "game_id": "KCA202404100", "odds": { "home": -50, "away": 130, "format": "american" } }),
            problem(
                "invalid_odds",
                "The odds are not odds",
                422,
                "American odds must be from -100,000 to -100 or from +100 to +100,000, got -50",
            ),
        ),
        (
            json!({ "game_id": "KCA202404100", "odds": { "home": 0.5, "away": 2.0, "format": "decimal" } }),
            problem(
                "invalid_odds",
                "The odds are not odds",
                422,
                "decimal odds must be above 1.0 and at most 1001, got 0.5",
            ),
        ),
        (
            json!({ "game_id": "KCA202404100", "season": 2024 }),
            problem(
                "unknown_field",
                "The body has a field this endpoint does not take",
                400,
                "unknown field `season`, expected one of `game_id`, `game`, `model`, `model_name`, `odds`, `starters` at line 1 column 34",
            ),
        ),
        (
            json!({ "game_id": 42 }),
            problem(
                "invalid_body",
                "The body does not have the expected shape",
                400,
                "invalid type: integer `42`, expected a string at line 1 column 13",
            ),
        ),
    ])
    .await;
}

#[tokio::test]
async fn bodies_that_are_not_json_are_refused() {
    let app = spawn_app().await;
    let malformed = app
        .post_raw("/api/v1/predict", "application/json", "{\"game_id\": ")
        .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(
        malformed.problem(),
        problem(
            "malformed_json",
            "The body is not valid JSON",
            400,
            "the body is not valid JSON: EOF while parsing a value at line 1 column 12"
        )
    );

    let text = app
        .post_raw(
            "/api/v1/predict",
            "text/plain",
            "{\"game_id\": \"KCA202404100\"}",
        )
        .await;
    assert_eq!(text.status, 415);
    assert_eq!(
        text.problem(),
        problem(
            "unsupported_media_type",
            "The body must be application/json",
            415,
            "send the body with Content-Type: application/json"
        )
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused() {
    let app = spawn_app_with(|settings| settings.server.max_body_bytes = 256).await;
    let padding = "x".repeat(300);
    let body = format!("{{\"game_id\": \"KCA202404100\", \"model\": \"{padding}\"}}");
    let reply = app
        .post_raw("/api/v1/predict", "application/json", &body)
        .await;
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.problem(),
        problem(
            "payload_too_large",
            "The body is too large",
            413,
            "the body is larger than the limit of 256 bytes"
        )
    );
    app.assert_still_serves().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_get_problems_too() {
    let app = spawn_app().await;
    let missing = app.get("/api/v1/forecasts").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.problem(),
        problem(
            "not_found",
            "No such endpoint",
            404,
            "no endpoint GET /api/v1/forecasts"
        )
    );
    let wrong_method = app.get("/api/v1/predict").await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(
        wrong_method.problem(),
        problem(
            "method_not_allowed",
            "The endpoint does not take this method",
            405,
            "GET is not allowed on /api/v1/predict"
        )
    );
}

#[tokio::test]
async fn a_client_request_id_is_echoed_and_a_missing_one_generated() {
    let app = spawn_app().await;
    let reply = app
        .client
        .post(format!("{}/api/v1/predict", app.address))
        .header("x-request-id", "bet-slip-42")
        .json(&json!({ "game_id": "bad" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(reply.headers()["x-request-id"], "bet-slip-42");
    let body: Value = reply.json().await.expect("json");
    assert_eq!(body["request_id"], "bet-slip-42");

    let generated = app.get("/health").await;
    let id = generated.header("x-request-id").expect("generated id");
    assert_eq!(id.len(), 36, "a UUID: {id}");
}

/// A model that loads, passes the spec check and warms up, then fails inside ONNX Runtime on
/// real games (`tests/fixtures/make-failing-model.py`: it gathers a row indexed by
/// `home_games_played`). The failing game gets 500 `inference_failed` with the cause kept in
/// the log, not the answer; it is not cached, and the games the model can run are still served.
#[tokio::test]
async fn a_model_that_fails_at_run_time_answers_inference_failed() {
    let app = spawn_app_with(|settings| {
        settings.models.dir = crate::helpers::repo_path("tests/fixtures/failing-models");
    })
    .await;
    let late_game = json!({ "game_id": "KCA202404100" });
    let calls_before = app.inference_calls().await;
    for _ in 0..2 {
        let reply = app.predict(&late_game).await;
        assert_eq!(
            reply.problem(),
            problem(
                "inference_failed",
                "The model could not be run",
                500,
                "the model could not be run; the error is logged with the request id",
            )
        );
        assert!(!reply.body.to_string().contains("Gather"), "{}", reply.body);
    }
    assert_eq!(
        app.inference_calls().await - calls_before,
        2,
        "a failure is not cached: each attempt ran the model"
    );

    // Opening day: the home team has played no game yet, so the model can run it.
    let opener = app.predict(&json!({ "game_id": "BAL202403280" })).await;
    assert_eq!(opener.status, 200, "{}", opener.body);
    assert_eq!(opener.body["home_win_probability"], 0.5);
}
