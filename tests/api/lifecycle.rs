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

/// Replaces the model file of `version` with the one at `source`: another file, another
/// fingerprint.
fn replace_model_file(dir: &Path, version: &str, source: &str) {
    std::fs::copy(
        repo_path(source),
        dir.join("home_win").join(version).join("model.onnx"),
    )
    .expect("model file replaced");
}

/// The fixture that answers 0.5 for a team's first game (`tests/fixtures/make-failing-model.py`).
const HALF_ON_OPENERS: &str = "tests/fixtures/failing-models/home_win/1/model.onnx";
/// The shipped logistic regression: a valid model file other than version 1's.
const LOGISTIC: &str = "models/home_win/2/model.onnx";

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
        // Asked three times: from the second on, the answer is kept rendered
        // (`http::rendered`), and the routing change below must still move it.
        for _ in 0..3 {
            assert_eq!(served_by(&app, game, None).await, "1", "{game}");
        }
    }
    // A pin reaches it.
    assert_eq!(served_by(&app, game, Some("2")).await, "2");

    // 50/50: games split by bucket, each game always on the same version.
    let routed = put_routing(&app, &json!({ "weights": { "1": 50, "2": 50 } })).await;
    assert_eq!(routed.status, 200, "{}", routed.body);
    assert_eq!(routed.body["weights"], json!({ "1": 50, "2": 50 }));
    let got = app.get(&format!("{ADMIN}/home_win/routing")).await;
    assert_eq!(got.body["weights"], json!({ "1": 50, "2": 50 }));
    let (mut on_two, mut kept_on_two) = (0, 0);
    for (index, game) in games().iter().enumerate() {
        let first = served_by(&app, game, None).await;
        assert_eq!(
            served_by(&app, game, None).await,
            first,
            "{game} kept its version"
        );
        on_two += usize::from(first == "2");
        kept_on_two += usize::from(first == "2" && index < 50);
    }
    assert!(
        (100..200).contains(&on_two),
        "{on_two} of 300 games on version 2"
    );
    assert!(
        (10..40).contains(&kept_on_two),
        "{kept_on_two} of the 50 games asked before the change on version 2"
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
    // A rescan leaves out what the operator unloaded.
    let rescan = app.post_json(&format!("{ADMIN}/reload"), &json!({})).await;
    assert_eq!(
        rescan.body["changes"][0],
        json!({ "name": "home_win", "version": "1", "change": "unloaded" })
    );
    assert_eq!(
        app.get("/api/v1/models").await.body["models"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
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
    // The body is checked field by field, nested guard included.
    for body in [
        json!({ "weights": { "1": 100 }, "revision": 7 }),
        json!({ "weights": { "1": 100 }, "guard": { "window": 60 } }),
    ] {
        let unknown = put_routing(&app, &body).await;
        assert_eq!(
            (unknown.status, code(&unknown)),
            (400, Some("unknown_field".into())),
            "{body}"
        );
    }

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
    // The unpinned body too, three times: its answer is kept and served again.
    let unpinned = json!({ "game_id": opener });
    let kept = asked_thrice(&app, &unpinned).await;
    assert_eq!(kept, before.body["home_win_probability"]);

    replace_model_file(dir.path(), "2", HALF_ON_OPENERS);
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

    // Not the answer kept before: version 2's new file, computed.
    let unpinned = app.predict(&unpinned).await;
    assert_eq!(
        unpinned.body["home_win_probability"], 0.5,
        "{}",
        unpinned.body
    );
    assert_eq!(unpinned.body["cached"], false, "{}", unpinned.body);
    let after = app
        .send(
            app.request(Method::POST, "/api/v1/predict")
                .header("bullpen-model-version", "2")
                .json(&json!({ "game_id": opener })),
        )
        .await;
    assert_eq!(after.body["home_win_probability"], 0.5, "{}", after.body);
    // Routing kept: the newest at start (2) still serves unpinned requests.
    let routing = app.get(&format!("{ADMIN}/home_win/routing")).await;
    assert_eq!(routing.body["weights"], json!({ "2": 100 }));
}

/// Asks `body` three times (computed, then from memory, then served again as kept) and
/// returns the probability, checking that the last two came from memory.
async fn asked_thrice(app: &TestApp, body: &Value) -> Value {
    let first = app.predict(body).await;
    assert_eq!(first.status, 200, "{}", first.body);
    for _ in 0..2 {
        let again = app.predict(body).await;
        assert_eq!(again.body["cached"], true, "{}", again.body);
        assert_eq!(
            again.body["home_win_probability"],
            first.body["home_win_probability"]
        );
    }
    first.body["home_win_probability"].clone()
}

/// SIGHUP rescans `models.dir` in the real binary: a new version is loaded, and a replaced
/// file serves at once, never the answer kept from the file before.
#[tokio::test]
async fn sighup_loads_what_is_new_in_the_models_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    add_version(dir.path(), "1");
    let server = ServerProcess::start(&[
        ("BULLPEN__MODELS__DIR", dir.path().display().to_string()),
        ("BULLPEN__MODELS__DEFAULT", "home_win".to_owned()),
    ]);
    let client = reqwest::Client::new();
    let predict = format!("{}/api/v1/predict", server.address);
    let ask = || async {
        let answer: Value = client
            .post(&predict)
            .json(&json!({ "game_id": "BAL202403280" }))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        answer
    };
    let before = ask().await;
    for _ in 0..2 {
        assert_eq!(ask().await["cached"], true);
    }
    assert_ne!(before["home_win_probability"], 0.5);
    replace_model_file(dir.path(), "1", HALF_ON_OPENERS);
    add_version(dir.path(), "2");
    server.send_signal("HUP");
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
        server
            .logged(Duration::from_secs(5), |line| line
                .contains("SIGHUP: models.dir rescanned"))
            .await
            .is_some(),
        "{}",
        server.log()
    );
    let after = ask().await;
    assert_eq!(after["home_win_probability"], 0.5, "{after}");
    assert_eq!(after["cached"], false, "{after}");
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
    // An answer the first replica keeps ends with a routing change made on the second.
    let kept = json!({ "game_id": games[0] });
    asked_thrice(&first, &kept).await;
    assert_eq!(served_by(&first, &games[0], None).await, "1");
    put_routing(&second, &json!({ "weights": { "2": 100 } })).await;
    let moved = eventually(
        "the first replica answers with version 2",
        Duration::from_secs(1),
        || async {
            let answer = first.predict(&kept).await;
            (answer.header("bullpen-model") == Some("home_win@2")).then_some(answer)
        },
    )
    .await;
    assert_eq!(moved.body["cached"], false, "{}", moved.body);
    put_routing(&second, &json!({ "weights": { "1": 100 } })).await;
    eventually(
        "the first replica routes to 1 again",
        Duration::from_secs(1),
        || async {
            let routing = first.get(&format!("{ADMIN}/home_win/routing")).await;
            (routing.body["weights"] == json!({ "1": 100, "2": 0 })
                || routing.body["weights"] == json!({ "1": 100 }))
            .then_some(())
        },
    )
    .await;

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

/// One answer seen by the load: which phase it was sent in, its status, the version that
/// answered, its latency.
struct Answer {
    phase: usize,
    status: u16,
    version: Option<String>,
    latency: Duration,
}

/// A keep-alive client posting stored and scheduled games without pause until `stop`.
async fn load(
    address: String,
    bodies: std::sync::Arc<Vec<Value>>,
    skip: usize,
    phase: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Vec<Answer> {
    use std::sync::atomic::Ordering;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut answers = Vec::new();
    for body in bodies.iter().cycle().skip(skip) {
        let now = phase.load(Ordering::Acquire);
        if now == PHASES.len() {
            break;
        }
        let sent = std::time::Instant::now();
        let reply = client
            .post(format!("{address}/api/v1/predict"))
            .json(body)
            .send()
            .await;
        let latency = sent.elapsed();
        let (status, version) = match reply {
            Ok(reply) => (
                reply.status().as_u16(),
                reply
                    .headers()
                    .get("bullpen-model")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ),
            Err(_) => (0, None),
        };
        answers.push(Answer {
            phase: now,
            status,
            version,
            latency,
        });
    }
    answers
}

const PHASES: [&str; 3] = ["before", "during", "after"];

/// The versions `GET /api/v1/models` lists.
async fn loaded_versions(client: &reqwest::Client, address: &str) -> Option<Vec<String>> {
    let url = format!("{address}/api/v1/models");
    let body: Value = client.get(url).send().await.ok()?.json().await.ok()?;
    let versions = body["models"].as_array()?.iter();
    Some(
        versions
            .filter_map(|m| m["version"].as_str().map(str::to_owned))
            .collect(),
    )
}

/// Every stored 2024 game, and 56 scheduled games of the next season.
fn every_game() -> Vec<Value> {
    let mut bodies: Vec<Value> = crate::helpers::game_ids(2024, 1, 3000)
        .into_iter()
        .map(|id| json!({ "game_id": id }))
        .collect();
    let teams = ["NYA", "BOS", "LAN", "SFN", "CHN", "SLN", "HOU", "TEX"];
    for (n, home) in teams.iter().enumerate() {
        for away in teams.iter().filter(|away| *away != home) {
            let date = format!("2025-04-{:02}", 1 + n);
            bodies.push(json!({ "game": { "home": home, "away": away, "date": date } }));
        }
    }
    bodies
}

/// Prints the answers and p99 of each phase, and checks the load kept going in each.
fn report_phases(answers: &[Answer]) {
    for (index, name) in PHASES.iter().enumerate() {
        let mut latencies: Vec<Duration> = answers
            .iter()
            .filter(|a| a.phase == index)
            .map(|a| a.latency)
            .collect();
        latencies.sort();
        let p99 = latencies
            .get(latencies.len() * 99 / 100)
            .copied()
            .unwrap_or_default();
        eprintln!("{name}: {} answers, p99 {p99:?}", latencies.len());
        assert!(latencies.len() > 50, "{name}: load kept going");
    }
}

/// Under continuous load (32 connections over every 2024 game and scheduled games): load
/// version 2, route 50/50, all to 2, unload 1, reload 2 after replacing its file, SIGHUP
/// (which loads a new version 3): not one request fails, and every answer comes from a
/// version loaded at the time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lifecycle_step_under_load_fails_no_request() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().expect("temp dir");
    add_version(dir.path(), "1");
    let server = ServerProcess::start(&[
        ("BULLPEN__MODELS__DIR", dir.path().display().to_string()),
        ("BULLPEN__MODELS__DEFAULT", "home_win@1".to_owned()),
    ]);
    let address = server.address.clone();
    let bodies = Arc::new(every_game());
    let phase = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..32)
        .map(|n| {
            tokio::spawn(load(
                address.clone(),
                Arc::clone(&bodies),
                n * 97,
                Arc::clone(&phase),
            ))
        })
        .collect();

    let admin = reqwest::Client::new();
    let call = |method: Method, path: &str, body: Option<Value>| {
        let mut request = admin.request(method, format!("{address}{ADMIN}{path}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let reply = request.send().await.expect("admin call");
            let status = reply.status().as_u16();
            let body: Value = reply.json().await.expect("json");
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let pause = || tokio::time::sleep(Duration::from_millis(500));
    pause().await;
    phase.store(1, Ordering::Release);
    add_version(dir.path(), "2");
    call(Method::POST, "/home_win/versions/2/load", None).await;
    pause().await;
    let halves = json!({ "weights": { "1": 50, "2": 50 } });
    call(Method::PUT, "/home_win/routing", Some(halves)).await;
    pause().await;
    let all_two = json!({ "weights": { "2": 100 } });
    call(Method::PUT, "/home_win/routing", Some(all_two)).await;
    pause().await;
    call(Method::DELETE, "/home_win/versions/1", None).await;
    pause().await;
    replace_model_file(dir.path(), "2", LOGISTIC);
    let reloaded = call(Method::POST, "/reload", None).await;
    let changes = &reloaded["changes"];
    assert_eq!(changes[0]["change"], "unloaded", "{reloaded}");
    assert_eq!(changes[1]["change"], "reloaded", "{reloaded}");
    pause().await;
    add_version(dir.path(), "3");
    server.send_signal("HUP");
    // Version 3 is new; version 1, unloaded by the operator, stays out.
    eventually(
        "version 3 loaded by SIGHUP",
        Duration::from_secs(20),
        || async { (loaded_versions(&admin, &address).await? == ["2", "3"]).then_some(()) },
    )
    .await;
    phase.store(2, Ordering::Release);
    pause().await;
    phase.store(PHASES.len(), Ordering::Release);

    let mut answers = Vec::new();
    for client in clients {
        answers.extend(client.await.expect("client"));
    }
    report_phases(&answers);
    let failed: Vec<(usize, u16)> = answers
        .iter()
        .filter(|a| a.status != 200)
        .map(|a| (a.phase, a.status))
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed, the first: {:?}",
        failed.len(),
        &failed[..failed.len().min(10)]
    );
    // Version 3 was loaded, never routed: every answer came from 1 or 2.
    let strays: Vec<&Option<String>> = answers
        .iter()
        .map(|a| &a.version)
        .filter(|v| !matches!(v.as_deref(), Some("home_win@1" | "home_win@2")))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
    assert!(
        answers
            .iter()
            .any(|a| a.phase == 2 && a.version.as_deref() == Some("home_win@2"))
    );
}
