use serde_json::{Value, json};

use crate::helpers::{parity_of, spawn_app, spawn_app_with};

fn probability(body: &Value, field: &str) -> f64 {
    body[field].as_f64().expect("probability is a number")
}

/// The body with the probabilities checked and removed, so the rest compares whole.
fn without_probabilities(mut body: Value, home: f64, tolerance: f64) -> Value {
    assert!(
        (probability(&body, "home_win_probability") - home).abs() <= tolerance,
        "{body}"
    );
    assert!((probability(&body, "away_win_probability") - (1.0 - home)).abs() <= tolerance);
    let object = body.as_object_mut().expect("object");
    object.remove("home_win_probability");
    object.remove("away_win_probability");
    body
}

/// Each version answers a stored game with what its training recorded: version 1 from the
/// teams (`v1`), version 3 from the teams and the data's starters (`v2`).
#[tokio::test]
async fn predict_returns_the_probabilities_training_recorded_for_real_2024_games() {
    let app = spawn_app().await;
    for (version, spec) in [("1", "v1"), ("3", "v2")] {
        let parity = parity_of(version);
        for game in &parity.games {
            let reply = app
                .predict(
                    &json!({ "game_id": game.game_id, "model": format!("home_win@{version}") }),
                )
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let stored = crate::helpers::store()
                .game(game.game_id)
                .expect("stored")
                .0;
            assert_eq!(
                without_probabilities(reply.body, game.probability, parity.tolerance),
                json!({
                    "game": {
                        "game_id": game.game_id,
                        "home": stored.home.team.to_string(),
                        "away": stored.away.team.to_string(),
                        "date": stored.date.to_string(),
                        "starters": bullpen::games::Starters::of(stored),
                    },
                    "model": { "name": "home_win", "version": version },
                    "feature_version": spec,
                    "cached": false,
                })
            );
        }
    }
}

#[tokio::test]
async fn a_repeated_prediction_comes_from_the_cache_with_the_same_answer() {
    let app = spawn_app().await;
    let body = json!({ "game_id": "KCA202404100" });
    let first = app.predict(&body).await;
    let second = app.predict(&body).await;
    assert_eq!(first.body["cached"], false);
    assert_eq!(second.body["cached"], true);
    assert_eq!(
        first.body["home_win_probability"],
        second.body["home_win_probability"]
    );
    assert_eq!(app.inference_calls().await, 1);
}

/// An answer asked again and again is kept rendered and served as it is (`http::rendered`):
/// the same answer, each one counted as a prediction from memory, odds and all; an
/// invalidation ends it at once.
#[tokio::test]
async fn an_answer_served_again_is_the_same_counted_and_gone_once_invalidated() {
    let app = spawn_app().await;
    let plain = json!({ "game_id": "KCA202404100" });
    let with_odds = json!({ "game_id": "KCA202404100", "odds": { "home": -135, "away": 115 } });
    // The odds body's probability is the plain body's, from the cache from its first ask.
    for (body, first_cached) in [(&plain, false), (&with_odds, true)] {
        let first = app.predict(body).await;
        assert_eq!(first.body["cached"], first_cached);
        let second = app.predict(body).await;
        assert_eq!(second.body["cached"], true);
        for _ in 0..3 {
            let again = app.predict(body).await;
            assert_eq!(again.body, second.body);
            assert_eq!(again.header("bullpen-model"), Some("home_win@1"));
        }
        assert_eq!(
            body.get("odds").is_some(),
            second.body.get("market").is_some()
        );
    }
    let scrape = app.scrape().await;
    let from_memory: u64 = scrape
        .lines()
        .filter(|line| {
            line.starts_with("bullpen_predictions_total{")
                && line.contains("tier=\"memory\"")
                && line.contains("protocol=\"v1\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    // Four from memory after the plain body's first, five of the odds body.
    assert_eq!(from_memory, 9, "{scrape}");
    assert_eq!(app.inference_calls().await, 1);

    let reply = app
        .post_json(
            "/api/v1/admin/cache/invalidate",
            &json!({ "pattern": "prediction:home_win:*:KCA202404100:*" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(app.predict(&with_odds).await.body["cached"], false);
    assert_eq!(app.inference_calls().await, 2);
}

/// A body that differs only in its odds (every one new) is answered from the answer kept
/// for what it asks, with its own market: the same answer, market and all, as one computed
/// by a server without a cache.
#[tokio::test]
async fn bodies_differing_only_in_odds_get_the_kept_answer_with_their_own_market() {
    let app = spawn_app().await;
    let uncached = spawn_app_with(|settings| settings.cache.enabled = false).await;
    let plain = json!({ "game_id": "KCA202404100" });
    app.predict(&plain).await;
    app.predict(&plain).await;
    for (home, away) in [(-135, 115), (-150, 130), (-121, 101)] {
        let body = json!({ "game_id": "KCA202404100", "odds": { "home": home, "away": away } });
        let mut kept = app.predict(&body).await.body;
        let mut computed = uncached.predict(&body).await.body;
        assert_eq!(kept["cached"], true);
        assert_eq!(computed["cached"], false);
        kept["cached"] = json!(null);
        computed["cached"] = json!(null);
        assert_eq!(kept, computed);
    }
    assert_eq!(app.inference_calls().await, 1);
}

#[tokio::test]
async fn scheduled_games_are_predicted_from_the_games_before_them() {
    let app = spawn_app().await;
    let reply = app
        .predict(&json!({
            "game": { "home": "NYA", "away": "BOS", "date": "2025-04-05" },
            "model_name": "home_win@1",
        }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let home = probability(&reply.body, "home_win_probability");
    assert!((0.3..0.7).contains(&home));
    assert_eq!(
        without_probabilities(reply.body, home, 1e-6),
        json!({
            "game": { "home": "NYA", "away": "BOS", "date": "2025-04-05" },
            "model": { "name": "home_win", "version": "1" },
            "feature_version": "v1",
            "cached": false,
        })
    );

    // A scheduled game on a stored game's date gets that game's prediction.
    let stored = app.predict(&json!({ "game_id": "KCA202404100" })).await;
    let scheduled = app
        .predict(&json!({ "game": { "home": "KCA", "away": "HOU", "date": "2024-04-10" }, "model": "home_win" }))
        .await;
    assert_eq!(
        stored.body["home_win_probability"],
        scheduled.body["home_win_probability"]
    );
}

#[tokio::test]
async fn odds_are_read_against_the_model() {
    let app = spawn_app().await;
    let american = app
        .predict(&json!({ "game_id": "KCA202404100", "odds": { "home": -150, "away": 130 } }))
        .await;
    assert_eq!(american.status, 200, "{}", american.body);
    let p = probability(&american.body, "home_win_probability");
    let market = &american.body["market"];
    let implied_home = 0.6;
    let implied_away = 1.0 / 2.3;
    let book = implied_home + implied_away;
    let close = |value: &Value, expected: f64| {
        let actual = value.as_f64().expect("number");
        assert!((actual - expected).abs() < 1e-6, "{actual} v {expected}");
    };
    close(&market["overround"], book - 1.0);
    close(&market["home"]["decimal_odds"], 1.0 + 100.0 / 150.0);
    close(&market["home"]["market_probability"], implied_home / book);
    close(&market["home"]["edge"], p - implied_home / book);
    close(
        &market["home"]["expected_value"],
        p * (1.0 + 100.0 / 150.0) - 1.0,
    );
    close(&market["away"]["expected_value"], (1.0 - p) * 2.3 - 1.0);
    close(
        &market["away"]["kelly_fraction"],
        ((1.3 * (1.0 - p) - p) / 1.3).max(0.0),
    );

    let decimal = app
        .predict(&json!({ "game_id": "KCA202404100", "odds": { "home": 1.0 + 100.0 / 150.0, "away": 2.3 } }))
        .await;
    for side in ["home", "away"] {
        for (field, value) in american.body["market"][side].as_object().expect("side") {
            close(
                &decimal.body["market"][side][field],
                value.as_f64().expect("number"),
            );
        }
    }
}

/// Single flight: 32 requests for one cold game, each taken by the server (head read, half
/// the body sent) before any is let go, then released together: one computation, one answer
/// marked computed, the same probability for all.
#[tokio::test]
async fn concurrent_cold_requests_for_one_game_run_one_inference() {
    let app = spawn_app().await;
    let body = r#"{"game_id": "NYA202409280"}"#;
    let mut held = Vec::new();
    for _ in 0..32 {
        held.push(app.start_slow_post("/api/v1/predict", body).await);
    }
    let replies =
        futures_util::future::join_all(held.into_iter().map(crate::helpers::SlowRequest::finish))
            .await;
    let answers: Vec<Value> = replies
        .iter()
        .map(|(status, body)| {
            assert!(status.starts_with("HTTP/1.1 200"), "{status}");
            serde_json::from_str(body).expect("JSON")
        })
        .collect();
    let first = &answers[0]["home_win_probability"];
    assert!(answers.iter().all(|a| &a["home_win_probability"] == first));
    assert_eq!(answers.iter().filter(|a| a["cached"] == false).count(), 1);
    assert_eq!(
        app.inference_calls().await,
        1,
        "single flight: one computation for 32 requests"
    );
}

#[tokio::test]
async fn with_the_cache_disabled_every_request_runs_the_model() {
    let app = spawn_app_with(|settings| settings.cache.enabled = false).await;
    let body = json!({ "game_id": "KCA202404100" });
    let first = app.predict(&body).await;
    let second = app.predict(&body).await;
    assert_eq!(
        (first.body["cached"].clone(), second.body["cached"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(
        first.body["home_win_probability"],
        second.body["home_win_probability"]
    );
    assert_eq!(app.inference_calls().await, 2);
}

/// Dynamic batching changes how many calls the model makes, never an answer: concurrent
/// uncached requests scored together (each batch mode) answer what they answer one by one.
#[tokio::test]
async fn batched_and_unbatched_inference_give_identical_probabilities() {
    let ids = crate::helpers::game_ids(2024, 11, 48);
    let answers = async |app: &crate::helpers::TestApp| {
        let replies = futures_util::future::join_all(
            ids.iter()
                .map(|id| async move { app.predict(&json!({ "game_id": id })).await }),
        )
        .await;
        replies
            .into_iter()
            .map(|reply| {
                assert_eq!(reply.status, 200, "{}", reply.body);
                reply.body["home_win_probability"].clone()
            })
            .collect::<Vec<_>>()
    };
    let alone = spawn_app_with(|settings| {
        settings.cache.enabled = false;
        settings.inference.batch_wait_us = 0;
    })
    .await;
    let expected = answers(&alone).await;
    assert_eq!(alone.inference_calls().await, ids.len() as u64);
    for mode in [
        bullpen::models::Batching::Worker,
        bullpen::models::Batching::Shared,
    ] {
        let batched = spawn_app_with(move |settings| {
            settings.cache.enabled = false;
            settings.inference.batching = mode;
            // Long enough that requests sent together meet in one batch.
            settings.inference.batch_wait_us = 20_000;
        })
        .await;
        assert_eq!(answers(&batched).await, expected, "{mode:?}");
        let calls = batched.inference_calls().await;
        assert!(
            calls < ids.len() as u64,
            "{mode:?}: {calls} calls for {} rows: nothing was batched",
            ids.len()
        );
    }
}
