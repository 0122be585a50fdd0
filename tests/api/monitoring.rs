//! Monitoring: exact counter movements, a scrape under load checked by promtool, the
//! dashboard and alert rules against the exported metrics, live quality against the
//! evaluation report, and the status page in headless Chromium.

use std::collections::{BTreeMap, HashSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use bullpen::auth::ConfiguredKey;
use serde_json::{Value, json};

use crate::database::TestDatabase;
use crate::helpers::{TestApp, eventually, game_ids, repo_path, spawn_app_with};

/// The samples of a scrape: `name` and its sorted labels → value as written.
fn samples(scrape: &str) -> BTreeMap<(String, BTreeMap<String, String>), String> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').expect("label=value");
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            ((name.to_owned(), labels), value.to_owned())
        })
        .collect()
}

async fn scrape(app: &TestApp) -> String {
    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.expect("text")
}

fn sample(scrape: &str, name: &str, labels: &[(&str, &str)]) -> Option<String> {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples(scrape).remove(&(name.to_owned(), wanted))
}

/// A counter's value (0 when the series is absent).
fn count(scrape: &str, name: &str, labels: &[(&str, &str)]) -> u64 {
    sample(scrape, name, labels).map_or(0, |v| v.parse().expect("an integer count"))
}

fn value(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(scrape, name, labels).map_or(f64::NAN, |v| v.parse().expect("a number"))
}

#[tokio::test]
async fn counters_move_by_exactly_what_a_known_sequence_of_requests_does() {
    let app = spawn_app_with(|_| {}).await;
    let game = json!({ "game_id": "KCA202404100" });
    for _ in 0..3 {
        assert_eq!(app.predict(&game).await.status, 200);
    }
    assert_eq!(app.predict(&json!({ "game_id": "bad" })).await.status, 400);
    assert_eq!(app.get("/api/v1/models").await.status, 200);
    assert_eq!(app.get("/no/such/route").await.status, 404);
    let batch = app
        .post_json(
            "/api/v1/predict/batch",
            &json!({ "items": [game, { "game_id": "NYA202409280" }] }),
        )
        .await;
    assert_eq!(batch.status, 200);

    let text = scrape(&app).await;
    let predict = [("method", "POST"), ("route", "/api/v1/predict")];
    let http = |extra: &[(&'static str, &'static str)]| {
        let labels: Vec<(&str, &str)> = extra.to_vec();
        count(&text, "bullpen_http_requests_total", &labels)
    };
    assert_eq!(http(&[predict[0], predict[1], ("status", "200")]), 3);
    assert_eq!(http(&[predict[0], predict[1], ("status", "400")]), 1);
    assert_eq!(
        http(&[
            ("method", "GET"),
            ("route", "/api/v1/models"),
            ("status", "200")
        ]),
        1
    );
    assert_eq!(
        http(&[("method", "GET"), ("route", "unmatched"), ("status", "404")]),
        1
    );
    assert_eq!(
        count(
            &text,
            "bullpen_http_request_duration_seconds_count",
            &[("route", "/api/v1/predict")]
        ),
        4
    );
    let tier = |tier| {
        count(
            &text,
            "bullpen_predictions_total",
            &[
                ("model", "home_win"),
                ("version", "1"),
                ("tier", tier),
                ("protocol", "v1"),
            ],
        )
    };
    // Single: 1 computed, 2 from memory; batch: KCA from memory, NYA computed.
    assert_eq!((tier("computed"), tier("memory")), (2, 3));
    let lookups = |result| {
        count(
            &text,
            "bullpen_cache_lookups_total",
            &[("tier", "memory"), ("result", result)],
        )
    };
    assert_eq!((lookups("hit"), lookups("miss")), (3, 2));
    assert_eq!(
        count(
            &text,
            "bullpen_rejections_total",
            &[("reason", "validation")]
        ),
        2
    );
    let model = [("model", "home_win"), ("version", "1")];
    assert_eq!(
        count(&text, "bullpen_inference_run_seconds_count", &model),
        2
    );
    assert_eq!(count(&text, "bullpen_inference_queue_depth", &model), 0);
    assert!(value(&text, "bullpen_process_resident_memory_bytes", &[]) > 1e6);
}

fn configured_key(name: &str, scope: &str, limit: Option<u32>) -> (String, ConfiguredKey) {
    use bullpen::auth::{Scopes, api_key};
    let key = api_key::generate().expect("random");
    let entry = ConfiguredKey {
        name: name.to_owned(),
        hash: api_key::hash(&key),
        scopes: Scopes::parse_all(&[scope]).expect("known scope"),
        rate_per_minute: limit,
        burst: limit,
    };
    (key, entry)
}

#[tokio::test]
async fn refusals_are_counted_by_reason() {
    let (key, entry) = configured_key("desk", "features:read", Some(1));
    let (trader, trader_entry) = configured_key("trader", "predict", None);
    let app = spawn_app_with(move |settings| {
        settings.auth.enabled = true;
        settings.auth.keys = vec![entry, trader_entry];
        settings.server.max_in_flight = 1;
        // Read without a key (else the scrape is a refusal too).
        settings.auth.open_status = true;
    })
    .await;
    let bearer = format!("Bearer {key}");
    let get = |path: &str, auth: bool| {
        let request = app.request(reqwest::Method::GET, path);
        let request = if auth {
            request.header("authorization", &bearer)
        } else {
            request
        };
        app.send(request)
    };
    assert_eq!(
        get("/api/v1/games/KCA202404100/features", false)
            .await
            .status,
        401
    );
    assert_eq!(get("/api/v1/models", true).await.status, 403);
    assert_eq!(
        get("/api/v1/games/KCA202404100/features", true)
            .await
            .status,
        200
    );
    assert_eq!(
        get("/api/v1/games/KCA202404100/features", true)
            .await
            .status,
        429
    );
    let held = app
        .start_slow_post_with(
            "/api/v1/predict",
            r#"{"game_id": "KCA202404100"}"#,
            &format!("Authorization: Bearer {trader}\r\n"),
        )
        .await;
    assert_eq!(
        get("/api/v1/games/KCA202404100/features", true)
            .await
            .status,
        503
    );
    let (status, _) = held.finish().await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");

    let text = scrape(&app).await;
    let reason = |reason| count(&text, "bullpen_rejections_total", &[("reason", reason)]);
    assert_eq!(
        (
            reason("auth"),
            reason("rate_limit"),
            reason("admission"),
            reason("validation")
        ),
        (2, 1, 1, 0)
    );
}

/// Metric names (`bullpen_...`) used by `PromQL` text, histogram series mapped to their family.
fn metric_names(text: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(found) = text[start..].find("bullpen_") {
        let begin = start + found;
        let mut end = begin;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &text[begin..end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        names.insert(family.to_owned());
        start = end;
    }
    names
}

/// Every metric the Grafana dashboard, the alert rules and the Kubernetes autoscaling and
/// rollout analysis query is in `scrape`.
fn assert_dashboard_and_alerts_use_only_exported_metrics(scrape: &str) {
    let exported: HashSet<String> = scrape
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("deploy/grafana/bullpen-dashboard.json"))
            .expect("dashboard"),
    )
    .expect("the dashboard is valid JSON");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().expect("targets").clone())
        .map(|target| target["expr"].as_str().expect("expr").to_owned())
        .collect();
    let read = |path: &str| std::fs::read_to_string(repo_path(path)).expect(path);
    let rules = read("deploy/prometheus/alerts.yml");
    // What Kubernetes scales and rolls out on: the HPA, KEDA, the prometheus-adapter rule and
    // the Argo Rollouts analysis.
    let scaling = [
        "deploy/k8s/base/hpa.yaml",
        "deploy/k8s/overlays/keda/scaledobject.yaml",
        "deploy/k8s/prometheus-adapter/values.yaml",
        "deploy/k8s/overlays/rollouts/analysis-templates.yaml",
    ]
    .map(read)
    .join("\n");
    for (source, used) in [
        ("dashboard", metric_names(&exprs.join("\n"))),
        ("alert rules", metric_names(&rules)),
        (
            "Kubernetes autoscaling and analysis",
            metric_names(&scaling),
        ),
    ] {
        assert!(!used.is_empty());
        let missing: Vec<&String> = used
            .iter()
            .filter(|name| !exported.contains(*name))
            .collect();
        assert!(
            missing.is_empty(),
            "{source} uses metrics not exported: {missing:?}"
        );
    }
}

fn promtool(args: &[&str], input: Option<&str>) -> std::process::Output {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package `prometheus`; scripts/test installs it)");
    if let Some(input) = input {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
    }
    child.wait_with_output().expect("promtool ran")
}

#[tokio::test]
async fn a_scrape_under_load_passes_promtool_and_the_dashboard_and_alerts_use_only_exported_metrics()
 {
    let database = TestDatabase::new().await;
    bullpen::db::migrate(&database.pool).await.expect("migrate");
    bullpen::features::import_dir(
        &database.pool,
        &repo_path("data/retrosheet"),
        &crate::helpers::pitchers(),
        |_| {},
    )
    .await
    .expect("import");
    let (url, prefix) = (
        database.url(),
        format!("bullpen_test:{}:", uuid::Uuid::new_v4().simple()),
    );
    let app = spawn_app_with(move |settings| {
        settings.prediction_log.enabled = true;
        settings.database.url = url.into();
        settings.redis.enabled = true;
        settings.redis.key_prefix = prefix;
    })
    .await;
    assert_eq!(app.predict(&json!({ "game_id": "bad" })).await.status, 400);

    let ids = game_ids(2024, 7, 200);
    let load = futures_util::future::join_all((0..4).map(|worker| {
        let ids = ids.clone();
        let app = &app;
        async move {
            for id in ids.iter().skip(worker).step_by(4) {
                assert_eq!(app.predict(&json!({ "game_id": id })).await.status, 200);
            }
        }
    }));
    // The scrape that counts: one taken while predictions are being answered.
    let (_, under_load) = tokio::join!(load, async {
        eventually("a scrape under load", Duration::from_secs(30), || async {
            let text = scrape(&app).await;
            text.contains(r#"route="/api/v1/predict",status="200""#)
                .then_some(text)
        })
        .await
    });
    let checked = promtool(&["check", "metrics"], Some(&under_load));
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // With the prediction log on, quality reads the log once its writer has flushed.
    eventually(
        "the prediction log written",
        Duration::from_secs(10),
        || async { (database.count("prediction_log").await >= ids.len() as i64).then_some(()) },
    )
    .await;
    let text = eventually(
        "live quality published",
        Duration::from_secs(10),
        || async {
            let text = scrape(&app).await;
            text.contains("bullpen_model_quality{").then_some(text)
        },
    )
    .await;
    assert_dashboard_and_alerts_use_only_exported_metrics(&text);
    let checked = promtool(
        &[
            "check",
            "rules",
            repo_path("deploy/prometheus/alerts.yml")
                .to_str()
                .expect("path"),
        ],
        None,
    );
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );

    let quality = app.get("/api/v1/models/home_win/quality").await;
    assert_eq!(quality.status, 200, "{}", quality.body);
    assert_eq!(quality.body["source"], "prediction_log");
    assert_eq!(quality.body["versions"][0]["games"], ids.len());
    assert!(
        value(
            &text,
            "bullpen_pool_connections",
            &[("pool", "prediction_log"), ("state", "idle")]
        ) >= 0.0
    );
    assert!(text.contains("bullpen_pool_connections{pool=\"redis\""));
    database.drop_now().await;
}

/// Live quality of version 1 (an entry of the quality endpoint's `versions`) is the
/// evaluation report's on the 2024 regular season: games, Brier, log loss and accuracy.
pub fn assert_matches_report(version: &Value) {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("models/home_win/1/manifest.json")).expect("manifest"),
    )
    .expect("JSON");
    let report = &manifest["metrics"];
    assert_eq!(version["version"], "1");
    assert_eq!(version["games"], report["games"]);
    for measure in ["brier", "log_loss", "accuracy"] {
        let live = version[measure].as_f64().expect("number");
        let offline = report[measure].as_f64().expect("number");
        assert!(
            (live - offline).abs() < 1e-6,
            "{measure}: live {live}, report {offline}"
        );
    }
}

#[tokio::test]
async fn live_quality_on_the_2024_season_agrees_with_the_evaluation_report() {
    let app = spawn_app_with(|_| {}).await;
    let ids = game_ids(2024, 1, 10_000);
    assert_eq!(ids.len(), 2429);
    for chunk in ids.chunks(256) {
        let items: Vec<Value> = chunk.iter().map(|id| json!({ "game_id": id })).collect();
        let reply = app
            .post_json("/api/v1/predict/batch", &json!({ "items": items }))
            .await;
        assert_eq!(reply.body["failed"], 0, "{}", reply.body);
    }
    // A game of 2023 served too: outside the window, so not scored.
    app.predict(&json!({ "game_id": "KCA202304100" })).await;

    let reply = app
        .get("/api/v1/models/home_win/quality?from=2024-01-01&to=2024-12-31")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["source"], "served_here");
    let version = &reply.body["versions"][0];
    assert_matches_report(version);
    let bins = version["calibration"].as_array().expect("bins");
    let games: u64 = bins
        .iter()
        .map(|bin| bin["games"].as_u64().expect("games"))
        .sum();
    assert_eq!(games, 2429);
    assert_eq!(bins[0]["games"], 38, "the report's first calibration row");

    let unknown = app.get("/api/v1/models/nope/quality").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.problem()["code"], "model_not_found");
    let backwards = app
        .get("/api/v1/models/home_win/quality?from=2024-12-31&to=2024-01-01")
        .await;
    assert_eq!(backwards.status, 400);
}

/// Headless Chromium on `url`: with `--dump-dom`, the page after `budget_ms` of (virtual)
/// time; with a screenshot path, writes it.
pub async fn chromium(url: String, budget_ms: u32, screenshot: Option<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new("chromium");
        command.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--window-size=1280,1000",
            &format!("--virtual-time-budget={budget_ms}"),
        ]);
        match &screenshot {
            Some(path) => command.arg(format!("--screenshot={path}")),
            None => command.arg("--dump-dom"),
        };
        let output =
            command.arg(url).stderr(Stdio::null()).output().expect(
                "chromium is installed (Debian package `chromium`; scripts/test installs it)",
            );
        assert!(output.status.success(), "chromium failed");
        String::from_utf8(output.stdout).expect("UTF-8")
    })
    .await
    .expect("joined")
}

/// The number inside `<... id="{id}">N</...>` of a dumped page.
fn number_in(page: &str, id: &str) -> f64 {
    let marker = format!("id=\"{id}\">");
    let start = page.find(&marker).expect("element present") + marker.len();
    let end = start + page[start..].find('<').expect("closing tag");
    page[start..end].trim().parse().unwrap_or(f64::NAN)
}

#[tokio::test]
async fn the_status_page_shows_live_numbers_in_headless_chromium() {
    let app = spawn_app_with(|_| {}).await;
    let ids = game_ids(2024, 3, 500);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, client, address) = (stop.clone(), app.client.clone(), app.address.clone());
        tokio::spawn(async move {
            for id in ids.iter().cycle() {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let _ = client
                    .post(format!("{address}/api/v1/predict"))
                    .json(&json!({ "game_id": id }))
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    // The sampler has seen the load: the page has numbers to show.
    let live = || async {
        let data = app.get("/status/data").await;
        let live = &data.body["live"];
        (live["requests_per_second"].as_f64()? > 0.0).then(|| live["requests_total"].as_f64())?
    };
    eventually(
        "the sampler measured the load",
        Duration::from_secs(10),
        &live,
    )
    .await;
    let url = format!("{}/status", app.address);

    let first = chromium(url.clone(), 5000, None).await;
    assert!(first.contains("<h1>bullpen</h1>"));
    let updates = first
        .split("data-updates=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse::<u32>().ok())
        .expect("the body counts its updates");
    assert!(updates >= 2, "the page refreshed itself: {updates} updates");
    assert!(
        first.contains(r#"class="badge ok">ready<"#),
        "dependencies read"
    );
    let served_then = number_in(&first, "requests-total");
    assert!(
        number_in(&first, "rps") > 0.0,
        "requests per second shown under load"
    );

    // A sample taken after the first page was read.
    eventually("a later sample", Duration::from_secs(10), || async {
        live().await.filter(|total| *total > served_then)
    })
    .await;
    let second = chromium(url.clone(), 3000, None).await;
    let served_now = number_in(&second, "requests-total");
    assert!(served_now > served_then, "{served_then} → {served_now}");
    assert!(second.contains("home_win"), "models and quality listed");

    let path = repo_path("target/status-page.png");
    chromium(url, 5000, Some(path.display().to_string())).await;
    let size = std::fs::metadata(&path).expect("screenshot written").len();
    assert!(size > 20_000, "a real screenshot: {size} bytes");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.expect("load task");
}

/// A full prediction-log queue drops entries and counts them; answers never wait for it.
/// PostgreSQL refuses the writer, so it holds its one-entry batch through its retries while
/// the queue (room for 2) fills.
#[tokio::test]
async fn a_full_prediction_log_drops_and_counts_without_slowing_answers() {
    let database = TestDatabase::new().await;
    bullpen::db::migrate(&database.pool).await.expect("migrate");
    let url = database.url();
    let app = spawn_app_with(move |settings| {
        settings.prediction_log.enabled = true;
        settings.database.url = url.into();
        settings.database.connect_timeout_ms = 300;
        settings.prediction_log.capacity = 2;
        settings.prediction_log.batch_size = 1;
    })
    .await;
    crate::database::cut_off(&database).await;
    for id in game_ids(2024, 11, 20) {
        let reply = app.predict(&json!({ "game_id": id })).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let text = scrape(&app).await;
    let dropped = value(&text, "bullpen_prediction_log_dropped_total", &[]);
    assert!(
        dropped >= 17.0,
        "20 answers, room for 2 and one in the writer's hands: {dropped} dropped"
    );
    crate::database::reconnect(&database).await;
    database.drop_now().await;
}

/// Scaling ahead of first pitch: the games of `schedule.file` within the lookahead, and the
/// rate they are expected to bring, from `requests_per_game` until a game this replica
/// counted has started, then from what that game drew.
#[tokio::test]
async fn the_schedule_gauges_count_the_games_ahead_and_what_the_games_before_drew() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("schedule.csv");
    // The first game's first pitch `first_in` from now, the second's half an hour away.
    let write_schedule = |first_in: i64| {
        let now = chrono::Utc::now();
        let at = |seconds: i64| (now + chrono::TimeDelta::seconds(seconds)).to_rfc3339();
        std::fs::write(
            &file,
            format!(
                "date,home,away,number,first_pitch\n2024-04-10,KCA,HOU,0,{}\n2024-04-11,KCA,HOU,0,{}\n",
                at(first_in),
                at(1800),
            ),
        )
        .expect("the schedule is written");
    };
    write_schedule(600);
    let app = spawn_app_with(|settings| {
        settings.schedule.file = file.display().to_string();
        settings.schedule.requests_per_game = 36.0;
        settings.schedule.refresh_ms = 100;
    })
    .await;
    // Timed once the server is up (a loaded machine takes seconds to start it): the file is
    // read again when it changes.
    write_schedule(6);
    let gauges = || async {
        let scrape = scrape(&app).await;
        let samples = samples(&scrape);
        let value = |name: &str| samples.get(&(name.to_owned(), BTreeMap::new())).cloned();
        let expected = value("bullpen_schedule_expected_requests_per_second")
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        (value("bullpen_schedule_games_starting"), expected)
    };
    eventually(
        "both games ahead, at the configured guess",
        Duration::from_secs(4),
        || async {
            let (starting, expected) = gauges().await;
            (starting.as_deref() == Some("2") && (expected - 2.0 * 36.0 / 3600.0).abs() < 1e-9)
                .then_some(())
        },
    )
    .await;
    // Five predictions of the first game before its first pitch (two asked as a scheduled
    // game), one of a game not on the schedule.
    for _ in 0..3 {
        assert_eq!(
            app.predict(&json!({ "game_id": "KCA202404100" }))
                .await
                .status,
            200
        );
    }
    for _ in 0..2 {
        let scheduled = json!({ "game": { "home": "KCA", "away": "HOU", "date": "2024-04-10" } });
        assert_eq!(app.predict(&scheduled).await.status, 200);
    }
    assert_eq!(
        app.predict(&json!({ "game_id": "NYA202404050" }))
            .await
            .status,
        200
    );
    eventually(
        "the first game started: one ahead, at what it drew",
        Duration::from_secs(10),
        || async {
            let (starting, expected) = gauges().await;
            (starting.as_deref() == Some("1") && (expected - 5.0 / 3600.0).abs() < 1e-9)
                .then_some(())
        },
    )
    .await;
}
