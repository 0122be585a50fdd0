//! Shadow scoring and the rollback guard, with real models: `home_win@1` (LightGBM), the
//! shipped `home_win@2` (logistic regression) and a logistic regression trained on shuffled
//! labels (`tests/fixtures/shuffled-labels`), over the 2024 games the data holds.

use std::path::Path;
use std::time::Duration;

use bullpen::db;
use reqwest::Method;
use serde_json::{Value, json};

use crate::database::TestDatabase;
use crate::helpers::{TestApp, eventually, game_ids, repo_path, spawn_app_with};

const ROUTING: &str = "/api/v1/admin/models/home_win/routing";

/// Copies the version folder `from` into `dir` as `home_win/{version}`.
fn copy_version(dir: &Path, from: &str, version: &str) {
    let from = repo_path(from);
    let to = dir.join("home_win").join(version);
    std::fs::create_dir_all(&to).expect("version folder");
    for file in ["model.onnx", "manifest.json"] {
        std::fs::copy(from.join(file), to.join(file)).expect("copied");
    }
}

/// A models folder with the shipped version 1 and, as version 2, `second`.
fn models(second: &str) -> tempfile::TempDir {
    models_with(second, "2")
}

/// A models folder with the shipped version 1 and, as `version`, the folder `from`.
fn models_with(from: &str, version: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_version(dir.path(), "models/home_win/1", "1");
    copy_version(dir.path(), from, version);
    dir
}

async fn app(dir: &Path, configure: impl FnOnce(&mut bullpen::settings::Settings)) -> TestApp {
    let dir = dir.to_path_buf();
    spawn_app_with(move |settings| {
        settings.models.dir = dir;
        settings.rollout.guard_interval_ms = 100;
        configure(settings);
    })
    .await
}

/// Versions 1 and 2 shipped, with the prediction log on in a database of its own; the
/// folder lives as long as the app.
async fn logged_app() -> (TestDatabase, tempfile::TempDir, TestApp) {
    let database = TestDatabase::new().await;
    db::migrate(&database.pool).await.expect("migrate");
    let url = database.url();
    let dir = models("models/home_win/2");
    let app = app(dir.path(), move |settings| {
        settings.prediction_log.enabled = true;
        settings.database.url = url.into();
    })
    .await;
    (database, dir, app)
}

/// Predicts every game in `games`, in batches of 100 (routed: no version named).
async fn replay(app: &TestApp, games: &[String]) {
    for chunk in games.chunks(100) {
        let items: Vec<Value> = chunk.iter().map(|id| json!({ "game_id": id })).collect();
        let reply = app
            .post_json("/api/v1/predict/batch", &json!({ "items": items }))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["failed"], 0, "{}", reply.body);
    }
}

/// A counter or gauge of `/metrics` with these labels (0 when absent).
async fn metric(app: &TestApp, name: &str, labels: &str) -> u64 {
    let wanted = format!("{name}{{{labels}}} ");
    app.scrape()
        .await
        .lines()
        .find_map(|line| line.strip_prefix(&wanted)?.parse().ok())
        .unwrap_or(0)
}

async fn shadow_scored(app: &TestApp, version: &str) -> u64 {
    let labels = format!(r#"model="home_win",outcome="scored",version="{version}""#);
    metric(app, "bullpen_shadow_predictions_total", &labels).await
}

/// A shadow version scores every routed request off the response path: the answers stay
/// version 1's, the shadow's predictions go to the prediction log marked as shadow and into
/// live quality, so both versions are compared on the same games.
#[tokio::test]
async fn a_shadow_version_scores_every_routed_request_and_is_logged_as_shadow() {
    let (database, _dir, app) = logged_app().await;
    let routed = app
        .send(
            app.request(Method::PUT, ROUTING)
                .json(&json!({ "weights": { "1": 100 }, "shadow": ["2"] })),
        )
        .await;
    assert_eq!(routed.status, 200, "{}", routed.body);

    let games = game_ids(2024, 12, 200);
    for game in games.iter().take(20) {
        let reply = app.predict(&json!({ "game_id": game })).await;
        assert_eq!(reply.header("bullpen-model"), Some("home_win@1"));
    }
    replay(&app, &games[20..]).await;
    eventually(
        "every request scored in shadow",
        Duration::from_secs(10),
        || async { (shadow_scored(&app, "2").await == games.len() as u64).then_some(()) },
    )
    .await;
    // A pinned request is not shadowed.
    app.send(
        app.request(Method::POST, "/api/v1/predict")
            .header("bullpen-model-version", "1")
            .json(&json!({ "game_id": games[0] })),
    )
    .await;

    let logged = eventually("the log holds both", Duration::from_secs(10), || async {
        let client = database.pool.get().await.ok()?;
        let rows = client
            .query(
                "SELECT model_version, shadow, count(*) FROM prediction_log \
                 GROUP BY 1, 2 ORDER BY 1, 2",
                &[],
            )
            .await
            .ok()?;
        let counts: Vec<(String, bool, i64)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        (counts.len() == 2 && counts.iter().map(|c| c.2).sum::<i64>() == 401).then_some(counts)
    })
    .await;
    assert_eq!(
        logged,
        vec![("1".to_owned(), false, 201), ("2".to_owned(), true, 200)]
    );
    let quality = app.get("/api/v1/models/home_win/quality").await;
    let games_of = |version: &str| {
        quality.body["versions"]
            .as_array()
            .and_then(|all| all.iter().find(|v| v["version"] == version))
            .map(|v| v["games"].clone())
    };
    assert_eq!(games_of("1"), Some(json!(200)), "{}", quality.body);
    assert_eq!(games_of("2"), Some(json!(200)), "{}", quality.body);
}

/// When the shadow queue is full, shadow work is dropped and counted; every answer is made.
#[tokio::test]
async fn a_full_shadow_queue_drops_shadow_work_never_answers() {
    let dir = models("models/home_win/2");
    let app = app(dir.path(), |settings| settings.rollout.shadow_queue = 1).await;
    app.send(
        app.request(Method::PUT, ROUTING)
            .json(&json!({ "weights": { "1": 100 }, "shadow": ["2"] })),
    )
    .await;
    replay(&app, &game_ids(2024, 1, 256)).await;
    let dropped = metric(
        &app,
        "bullpen_shadow_predictions_total",
        r#"model="home_win",outcome="dropped",version="2""#,
    )
    .await;
    assert!(dropped > 0, "{dropped}");
    let scored = eventually(
        "the queued ones scored",
        Duration::from_secs(10),
        || async {
            let scored = shadow_scored(&app, "2").await;
            (scored + dropped == 256).then_some(scored)
        },
    )
    .await;
    assert!(scored >= 1);
}

/// Version 1 stable and `from`, as `version`, a canary with half the games.
async fn canary(from: &str, version: &str) -> (tempfile::TempDir, TestApp, Vec<String>) {
    let dir = models_with(from, version);
    let app = app(dir.path(), |_| {}).await;
    let routed = app
        .send(app.request(Method::PUT, ROUTING).json(&json!({
            "weights": { "1": 50, version: 50 },
            "guard": { "min_games": 300, "brier_margin": 0.003 },
        })))
        .await;
    assert_eq!(routed.status, 200, "{}", routed.body);
    (dir, app, game_ids(2024, 1, 3000))
}

/// A canary of the shuffled-label model is rolled back once enough of its games have results
/// (the 2024 season, replayed): paired with stable, which scores the canary's games in shadow.
#[tokio::test]
async fn the_guard_rolls_back_a_canary_that_predicts_worse_than_stable() {
    let (_dir, app, games) = canary("tests/fixtures/shuffled-labels/home_win/2", "2").await;
    replay(&app, &games).await;
    let routing = eventually(
        "the canary rolled back",
        Duration::from_secs(15),
        || async {
            let routing = app.get(ROUTING).await;
            (routing.body["weights"] == json!({ "1": 100, "2": 0 })).then_some(routing.body)
        },
    )
    .await;
    let trip = &routing["trips"][0];
    assert_eq!(trip["version"], "2", "{routing}");
    let reason = trip["reason"].as_str().expect("reason");
    assert!(
        reason.contains("Brier") && reason.contains("same"),
        "{reason}"
    );
    assert_eq!(
        metric(
            &app,
            "bullpen_model_guard_trips_total",
            r#"model="home_win",reason="quality",version="2""#
        )
        .await,
        1
    );
    assert_eq!(
        metric(
            &app,
            "bullpen_model_routing_weight",
            r#"model="home_win",version="2""#
        )
        .await,
        0
    );
    // Every game now goes to stable.
    for game in games.iter().take(30) {
        let reply = app.predict(&json!({ "game_id": game })).await;
        assert_eq!(reply.header("bullpen-model"), Some("home_win@1"));
    }
}

/// `home_win@3`, which reads the starters (feature spec `v2`), as a canary of `home_win@1`
/// (`v1`) over the same season is not rolled back: each scores the other's games in shadow
/// from the same game's features, each reading its own spec.
#[tokio::test]
async fn the_guard_keeps_a_canary_of_another_feature_version_that_predicts_better() {
    let (_dir, app, games) = canary("models/home_win/3", "3").await;
    replay(&app, &games).await;
    // Stable has scored the canary's games in shadow, and the guard has looked since.
    let canary_games = eventually(
        "stable scored the canary's games",
        Duration::from_secs(15),
        || async {
            let scored = shadow_scored(&app, "1").await;
            (scored > 1000).then_some(scored)
        },
    )
    .await;
    // Nothing to wait for but time: ten guard intervals, each with every paired game scored.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let routing = app.get(ROUTING).await;
    assert_eq!(
        routing.body["weights"],
        json!({ "1": 50, "3": 50 }),
        "{}",
        routing.body
    );
    assert_eq!(
        routing.body["trips"],
        json!([]),
        "after {canary_games} paired games"
    );
}

/// A canary's answer asked again is scored by stable in shadow each time, logged each time,
/// and counted in the canary's answer times (the guard's latency and error windows), as the
/// first was: answers kept for serving again are not kept for a canary.
#[tokio::test]
async fn a_canary_answer_asked_again_is_shadowed_logged_and_timed_each_time() {
    let (database, _dir, app) = logged_app().await;
    let routed = app
        .send(
            app.request(Method::PUT, ROUTING)
                .json(&json!({ "weights": { "1": 90, "2": 10 } })),
        )
        .await;
    assert_eq!(routed.status, 200, "{}", routed.body);
    let mut canary_game = None;
    for game in game_ids(2024, 1, 500) {
        let reply = app.predict(&json!({ "game_id": game })).await;
        if reply.header("bullpen-model") == Some("home_win@2") {
            canary_game = Some(game);
            break;
        }
    }
    let game = canary_game.expect("a game routed to the canary among 500");
    for _ in 0..4 {
        let reply = app.predict(&json!({ "game_id": game })).await;
        assert_eq!(reply.header("bullpen-model"), Some("home_win@2"));
    }
    eventually(
        "stable scored all five answers",
        Duration::from_secs(10),
        || async { (shadow_scored(&app, "1").await == 5).then_some(()) },
    )
    .await;
    let answers = metric(
        &app,
        "bullpen_model_answer_seconds_count",
        r#"model="home_win",version="2""#,
    )
    .await;
    assert_eq!(
        answers, 5,
        "every answer of the canary is in the guard's window"
    );
    let shadow_rows = eventually("five shadow rows", Duration::from_secs(10), || async {
        let client = database.pool.get().await.ok()?;
        let row = client
            .query_one(
                "SELECT count(*) FROM prediction_log \
                 WHERE model_version = '1' AND shadow AND game_id = $1",
                &[&game],
            )
            .await
            .ok()?;
        let count: i64 = row.get(0);
        (count >= 5).then_some(count)
    })
    .await;
    assert_eq!(shadow_rows, 5);
}
