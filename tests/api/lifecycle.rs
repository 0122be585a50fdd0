//! The model lifecycle through the admin API: load, route, pin, unload, reload, SIGHUP.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, repo_path, spawn_app_with};
use crate::process::ServerProcess;

const ADMIN: &str = "/api/v1/admin/models";

/// Copies the shipped `home_win@1` into `dir` as version `version` (same model file).
pub fn add_version(dir: &Path, version: &str) {
    let from = repo_path("models/home_win/1");
    let to = dir.join("home_win").join(version);
    std::fs::create_dir_all(&to).expect("version folder");
    std::fs::copy(from.join("model.onnx"), to.join("model.onnx")).expect("model file");
    let mut manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(from.join("manifest.json")).expect("manifest"),
    )
    .expect("manifest json");
    manifest["version"] = json!(version);
    std::fs::write(to.join("manifest.json"), manifest.to_string()).expect("manifest written");
}

/// Replaces the model file of `version` with the fixture that answers 0.5 for a team's first
/// game (`tests/fixtures/make-failing-model.py`): another file, another fingerprint.
fn replace_model_file(dir: &Path, version: &str) {
    std::fs::copy(
        repo_path("tests/fixtures/failing-models/home_win/1/model.onnx"),
        dir.join("home_win").join(version).join("model.onnx"),
    )
    .expect("model file replaced");
}

async fn app_with_models(dir: &Path) -> TestApp {
    let dir = dir.to_path_buf();
    spawn_app_with(move |settings| {
        settings.models.dir = dir;
        settings.models.default = "home_win".parse().expect("model ref");
    })
    .await
}

/// Which version served a prediction, from its `Bullpen-Model` header (checked against the
/// body).
async fn served_by(app: &TestApp, game: &str, pin: Option<&str>) -> String {
    let mut request = app
        .request(Method::POST, "/api/v1/predict")
        .json(&json!({ "game_id": game }));
    if let Some(version) = pin {
        request = request.header("bullpen-model-version", version);
    }
    let reply = app.send(request).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let header = reply
        .header("bullpen-model")
        .expect("Bullpen-Model")
        .to_owned();
    let version = reply.body["model"]["version"].as_str().expect("version");
    assert_eq!(header, format!("home_win@{version}"));
    version.to_owned()
}

async fn put_routing(app: &TestApp, body: &Value) -> crate::helpers::Reply {
    app.send(
        app.request(Method::PUT, &format!("{ADMIN}/home_win/routing"))
            .json(body),
    )
    .await
}

async fn delete_version(app: &TestApp, version: &str) -> crate::helpers::Reply {
    app.send(app.request(
        Method::DELETE,
        &format!("{ADMIN}/home_win/versions/{version}"),
    ))
    .await
}

/// 300 stored 2024 games spread over the season: a spread of buckets.
fn games() -> Vec<String> {
    crate::helpers::game_ids(2024, 8, 300)
}

#[tokio::test]
async fn a_loaded_version_takes_traffic_only_when_routed_and_leaves_when_unrouted() {
    let dir = tempfile::tempdir().expect("temp dir");
    add_version(dir.path(), "1");
    let app = app_with_models(dir.path()).await;
    let game = "KCA202404100";
    assert_eq!(served_by(&app, game, None).await, "1");

    // Load version 2: warm and listed, but no traffic moves.
    add_version(dir.path(), "2");
    let loaded = app
        .post_json(&format!("{ADMIN}/home_win/versions/2/load"), &json!({}))
        .await;
    assert_eq!(loaded.status, 200, "{}", loaded.body);
    assert_eq!(loaded.body["change"], "loaded");
    assert_eq!(loaded.body["model"]["state"], "ready");
    assert_eq!(loaded.body["model"]["routing_weight"], 0);
    let again = app
        .post_json(&format!("{ADMIN}/home_win/versions/2/load"), &json!({}))
        .await;
    assert_eq!(again.body["change"], "unchanged");
    for game in games().iter().take(50) {
        assert_eq!(served_by(&app, game, None).await, "1", "{game}");
    }
    // A pin reaches it.
    assert_eq!(served_by(&app, game, Some("2")).await, "2");

    // 50/50: games split by bucket, each game always on the same version.
    let routed = put_routing(&app, &json!({ "weights": { "1": 50, "2": 50 } })).await;
    assert_eq!(routed.status, 200, "{}", routed.body);
    assert_eq!(routed.body["weights"], json!({ "1": 50, "2": 50 }));
    let got = app.get(&format!("{ADMIN}/home_win/routing")).await;
    assert_eq!(got.body["weights"], json!({ "1": 50, "2": 50 }));
    let mut on_two = 0;
    for game in &games() {
        let first = served_by(&app, game, None).await;
        assert_eq!(
            served_by(&app, game, None).await,
            first,
            "{game} kept its version"
        );
        on_two += usize::from(first == "2");
    }
    assert!(
        (100..200).contains(&on_two),
        "{on_two} of 300 games on version 2"
    );

    // Version 1 carries weight: it stays.
    let refused = delete_version(&app, "1").await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.body["code"], "model_in_use");

    // All to version 2, then version 1 goes.
    put_routing(&app, &json!({ "weights": { "2": 100 } })).await;
    let unloaded = delete_version(&app, "1").await;
    assert_eq!(unloaded.status, 200, "{}", unloaded.body);
    assert_eq!(served_by(&app, game, None).await, "2");
    let listed = app.get("/api/v1/models").await;
    let versions: Vec<&str> = listed.body["models"]
        .as_array()
        .expect("models")
        .iter()
        .filter_map(|m| m["version"].as_str())
        .collect();
    assert_eq!(versions, ["2"]);
    // Now the only version: it stays.
    put_routing(&app, &json!({ "weights": { "2": 100 } })).await;
    let only = delete_version(&app, "2").await;
    assert_eq!(only.status, 409, "{}", only.body);
    let pinned_gone = app
        .send(
            app.request(Method::POST, "/api/v1/predict")
                .header("bullpen-model-version", "1")
                .json(&json!({ "game_id": game })),
        )
        .await;
    assert_eq!(pinned_gone.status, 404);
    assert_eq!(pinned_gone.body["code"], "model_version_not_found");
}

#[tokio::test]
async fn lifecycle_requests_that_cannot_work_get_a_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    add_version(dir.path(), "1");
    let app = app_with_models(dir.path()).await;
    let code = |reply: &crate::helpers::Reply| reply.body["code"].as_str().map(str::to_owned);

    let missing = app
        .post_json(&format!("{ADMIN}/home_win/versions/9/load"), &json!({}))
        .await;
    assert_eq!(
        (missing.status, code(&missing)),
        (404, Some("model_files_not_found".into()))
    );

    // Files of another feature spec: refused with the reason, reported, never routed.
    add_version(dir.path(), "3");
    let manifest_path = dir.path().join("home_win/3/manifest.json");
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).expect("read"))
            .expect("json");
    manifest["feature_spec"]["version"] = json!("v0");
    std::fs::write(&manifest_path, manifest.to_string()).expect("write");
    let mismatch = app
        .post_json(&format!("{ADMIN}/home_win/versions/3/load"), &json!({}))
        .await;
    assert_eq!(mismatch.status, 422, "{}", mismatch.body);
    assert_eq!(code(&mismatch).as_deref(), Some("model_spec_mismatch"));
    assert!(
        mismatch.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("v0")),
        "{}",
        mismatch.body
    );
    let listed = app.get("/api/v1/models").await;
    assert_eq!(listed.body["failed"][0]["version"], "3", "{}", listed.body);
    assert_eq!(listed.body["models"].as_array().map(Vec::len), Some(1));

    for (body, why) in [
        (json!({ "weights": { "1": 60 } }), "sum"),
        (json!({ "weights": { "1": 90, "3": 10 } }), "not loaded"),
        (
            json!({ "weights": { "1": 100 }, "shadow": ["1"] }),
            "shadow with weight",
        ),
        (
            json!({ "weights": { "1": 100 }, "guard": { "min_games": 0 } }),
            "guard",
        ),
    ] {
        let reply = put_routing(&app, &body).await;
        assert_eq!(
            (reply.status, code(&reply)),
            (422, Some("invalid_routing".into())),
            "{why}"
        );
    }
    let bad_body = put_routing(&app, &json!({ "weights": { "1": 1000 } })).await;
    assert_eq!(bad_body.status, 400, "{}", bad_body.body);

    let traversal = app
        .post_json(&format!("{ADMIN}/home_win/versions/../load"), &json!({}))
        .await;
    assert!(
        traversal.status == 400 || traversal.status == 404,
        "{}",
        traversal.status
    );
    let dots = app
        .post_json(
            &format!("{ADMIN}/home_win/versions/..%2F..%2Fetc/load"),
            &json!({}),
        )
        .await;
    assert_eq!(
        (dots.status, code(&dots)),
        (400, Some("invalid_model".into()))
    );

    let unknown = app.get(&format!("{ADMIN}/away_win/routing")).await;
    assert_eq!(
        (unknown.status, code(&unknown)),
        (404, Some("model_not_found".into()))
    );

    let conflicting = app
        .send(
            app.request(Method::POST, "/api/v1/predict")
                .header("bullpen-model-version", "2")
                .json(&json!({ "game_id": "KCA202404100", "model": "home_win@1" })),
        )
        .await;
    assert_eq!(conflicting.status, 400);
    assert_eq!(code(&conflicting).as_deref(), Some("invalid_request"));
    app.assert_still_serves().await;
}

/// A reload puts a replaced file in service under the same version, and its cached answers
/// from the file before are never served again.
#[tokio::test]
async fn reload_replaces_a_changed_version_and_its_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    add_version(dir.path(), "1");
    add_version(dir.path(), "2");
    let app = app_with_models(dir.path()).await;
    let opener = "BAL202403280";
    let before = app
        .send(
            app.request(Method::POST, "/api/v1/predict")
                .header("bullpen-model-version", "2")
                .json(&json!({ "game_id": opener })),
        )
        .await;
    assert_ne!(before.body["home_win_probability"], 0.5);

    replace_model_file(dir.path(), "2");
    add_version(dir.path(), "4");
    let reloaded = app.post_json(&format!("{ADMIN}/reload"), &json!({})).await;
    assert_eq!(reloaded.status, 200, "{}", reloaded.body);
    let change = |version: &str| {
        reloaded.body["changes"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["version"] == version))
            .map(|c| c["change"].clone())
    };
    assert_eq!(change("1"), Some(json!("unchanged")));
    assert_eq!(change("2"), Some(json!("reloaded")));
    assert_eq!(change("4"), Some(json!("loaded")));

    let after = app
        .send(
            app.request(Method::POST, "/api/v1/predict")
                .header("bullpen-model-version", "2")
                .json(&json!({ "game_id": opener })),
        )
        .await;
    assert_eq!(after.body["home_win_probability"], 0.5, "{}", after.body);
    assert_eq!(after.body["cached"], false);
    // Routing kept: the newest at start (2) still serves unpinned requests.
    let routing = app.get(&format!("{ADMIN}/home_win/routing")).await;
    assert_eq!(routing.body["weights"], json!({ "2": 100 }));
}

/// SIGHUP rescans `models.dir` in the real binary.
#[tokio::test]
async fn sighup_loads_what_is_new_in_the_models_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    add_version(dir.path(), "1");
    let server = ServerProcess::start(&[
        ("BULLPEN__MODELS__DIR", dir.path().display().to_string()),
        ("BULLPEN__MODELS__DEFAULT", "home_win".to_owned()),
    ]);
    add_version(dir.path(), "2");
    server.send_signal("HUP");
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/models", server.address);
    eventually(
        "version 2 loaded after SIGHUP",
        Duration::from_secs(20),
        || async {
            let body: Value = client.get(&url).send().await.ok()?.json().await.ok()?;
            let versions = body["models"].as_array()?.len();
            (versions == 2).then_some(())
        },
    )
    .await;
    assert!(
        server.log().contains("SIGHUP: models.dir rescanned"),
        "{}",
        server.log()
    );
}

/// A replica with Redis under `prefix`, serving the versions in `dir`.
async fn replica(dir: &Path, prefix: &str) -> TestApp {
    let (dir, prefix) = (dir.to_path_buf(), prefix.to_owned());
    spawn_app_with(move |settings| {
        settings.models.dir = dir;
        settings.models.default = "home_win@1".parse().expect("model ref");
        settings.redis.enabled = true;
        settings.redis.key_prefix = prefix;
    })
    .await
}

/// Two replicas sharing Redis put every game on the same version; a routing change made on
/// one is applied by both within a second; a replica started later takes it up, loading the
/// version it names.
#[tokio::test]
async fn replicas_sharing_redis_route_every_game_alike_and_switch_together() {
    let dir = tempfile::tempdir().expect("temp dir");
    add_version(dir.path(), "1");
    add_version(dir.path(), "2");
    let prefix = format!("bullpen_test:{}:", uuid::Uuid::new_v4().simple());
    let first = replica(dir.path(), &prefix).await;
    let second = replica(dir.path(), &prefix).await;
    let games = games();

    let routed = put_routing(&first, &json!({ "weights": { "1": 75, "2": 25 } })).await;
    assert_eq!(routed.status, 200, "{}", routed.body);
    let changed = std::time::Instant::now();
    eventually(
        "the second replica routes 75/25",
        Duration::from_secs(1),
        || async {
            let routing = second.get(&format!("{ADMIN}/home_win/routing")).await;
            (routing.body["weights"] == json!({ "1": 75, "2": 25 })).then_some(())
        },
    )
    .await;
    assert!(changed.elapsed() < Duration::from_secs(1));
    let mut on_two = Vec::new();
    for game in &games {
        let version = served_by(&first, game, None).await;
        assert_eq!(served_by(&second, game, None).await, version, "{game}");
        if version == "2" {
            on_two.push(game.clone());
        }
    }
    assert!(!on_two.is_empty());

    // Raising the canary only adds games to it, on both replicas.
    put_routing(&second, &json!({ "weights": { "1": 50, "2": 50 } })).await;
    eventually(
        "the first replica routes 50/50",
        Duration::from_secs(1),
        || async {
            let routing = first.get(&format!("{ADMIN}/home_win/routing")).await;
            (routing.body["weights"] == json!({ "1": 50, "2": 50 })).then_some(())
        },
    )
    .await;
    for game in &on_two {
        assert_eq!(
            served_by(&first, game, None).await,
            "2",
            "{game} stayed on 2"
        );
        assert_eq!(
            served_by(&second, game, None).await,
            "2",
            "{game} stayed on 2"
        );
    }

    // A replica that starts later, its default pinned to 1, takes the shared routing.
    let third = replica(dir.path(), &prefix).await;
    let routing = third.get(&format!("{ADMIN}/home_win/routing")).await;
    assert_eq!(routing.body["weights"], json!({ "1": 50, "2": 50 }));
    for game in games.iter().take(40) {
        assert_eq!(
            served_by(&third, game, None).await,
            served_by(&first, game, None).await
        );
    }
}
