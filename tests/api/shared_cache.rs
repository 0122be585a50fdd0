//! The shared (Redis) tier on the real server, each test under its own key prefix.

use std::time::Duration;

use redis::AsyncCommands;
use serde_json::json;

use crate::helpers::{TestApp, eventually, spawn_app_with};

const REDIS: &str = "redis://127.0.0.1:6379";

fn unique_prefix() -> String {
    format!("bullpen_test:{}:", uuid::Uuid::new_v4().simple())
}

async fn redis_app(prefix: &str, url: &str) -> TestApp {
    let (prefix, url) = (prefix.to_owned(), url.to_owned());
    spawn_app_with(move |settings| {
        settings.redis.enabled = true;
        settings.redis.key_prefix = prefix;
        settings.redis.url = url.into();
        settings.redis.breaker_failures = 3;
    })
    .await
}

async fn connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis is running on 127.0.0.1:6379 (see .ci/run)")
}

/// Waits (polling, up to 5 s) until Redis holds at least `count` keys under `prefix` that
/// contain `part`: the writes behind the answers have landed.
async fn written(prefix: &str, part: &str, count: usize) {
    eventually(
        "the writes behind the answers",
        Duration::from_secs(5),
        || async {
            let found = keys(prefix).await;
            (found.iter().filter(|k| k.contains(part)).count() >= count).then_some(())
        },
    )
    .await;
}

/// Every key under `prefix`, by SCAN.
async fn keys(prefix: &str) -> Vec<String> {
    let mut connection = connection().await;
    let mut found = Vec::new();
    let mut iter: redis::AsyncIter<String> = connection
        .scan_match(format!("{prefix}*"))
        .await
        .expect("scan");
    while let Some(key) = iter.next_item().await {
        found.push(key.expect("key"));
    }
    found.sort();
    found
}

async fn ttl(key: &str) -> i64 {
    connection().await.ttl(key).await.expect("ttl")
}

#[tokio::test]
async fn a_second_replica_answers_from_what_the_first_stored_in_redis() {
    let prefix = unique_prefix();
    let first_replica = redis_app(&prefix, REDIS).await;
    let second_replica = redis_app(&prefix, REDIS).await;

    let stored = json!({ "game_id": "KCA202404100" });
    let scheduled = json!({ "game": { "home": "NYA", "away": "BOS", "date": "2025-04-05" } });
    let computed = first_replica.predict(&stored).await;
    assert_eq!(computed.body["cached"], false);
    first_replica.predict(&scheduled).await;
    written(&prefix, ":prediction:", 2).await;

    // The second replica's in-process cache is empty: its answer comes from Redis.
    let shared = second_replica.predict(&stored).await;
    assert_eq!(shared.status, 200);
    assert_eq!(shared.body["cached"], true);
    assert_eq!(
        shared.body["home_win_probability"],
        computed.body["home_win_probability"]
    );
    assert_eq!(
        second_replica.inference_calls().await,
        0,
        "no inference on the second replica"
    );

    let keys = keys(&prefix).await;
    let predictions: Vec<&String> = keys.iter().filter(|k| k.contains(":prediction:")).collect();
    let features: Vec<&String> = keys.iter().filter(|k| k.contains(":features:")).collect();
    assert_eq!(predictions.len(), 2, "{keys:?}");
    assert!(predictions.iter().any(
        |k| k.starts_with(&format!("{prefix}prediction:home_win:1:"))
            && k.contains(":KCA202404100:")
    ));
    assert_eq!(
        features,
        vec![&crate::helpers::scheduled_features_key(&prefix)]
    );
    for key in &predictions {
        assert!((1790..=1800).contains(&ttl(key).await), "{key}");
    }
    assert!((3590..=3600).contains(&ttl(features[0]).await));

    let ready = second_replica.get("/ready").await;
    assert_eq!(ready.body["shared_cache"]["breaker"], "closed");
    assert!(ready.body["shared_cache"]["hits"].as_u64().expect("hits") >= 1);
    let mut connection = connection().await;
    let _: () = connection.del(&keys).await.expect("clean up");
}

#[tokio::test]
async fn with_redis_unreachable_every_request_succeeds_and_the_breaker_opens() {
    // Nothing listens on port 1: every call to this "Redis" fails.
    let app = redis_app(&unique_prefix(), "redis://127.0.0.1:1").await;
    let ids = crate::helpers::game_ids(2024, 50, 30);
    for id in &ids {
        let reply = app.predict(&json!({ "game_id": id })).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let ready = app.get("/ready").await;
    let shared = &ready.body["shared_cache"];
    assert_eq!(shared["breaker"], "open");
    assert!(shared["errors"].as_u64().expect("errors") >= 3, "{shared}");
    assert!(
        shared["skipped"].as_u64().expect("skipped") > 0,
        "the breaker stopped the calls"
    );
}

#[tokio::test]
async fn concurrent_cold_requests_make_one_redis_read_and_one_computation() {
    let prefix = unique_prefix();
    let app = redis_app(&prefix, REDIS).await;
    let body = json!({ "game_id": "NYA202409280" });
    let replies = futures_util::future::join_all((0..24).map(|_| app.predict(&body))).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(app.inference_calls().await, 1);
    let ready = app.get("/ready").await;
    let shared = &ready.body["shared_cache"];
    assert_eq!(
        shared["misses"], 1,
        "one Redis read for 24 requests: {shared}"
    );
    assert_eq!(shared["hits"], 0);
    written(&prefix, ":prediction:", 1).await;
    let keys = keys(&prefix).await;
    assert_eq!(
        keys.iter().filter(|k| k.contains(":prediction:")).count(),
        1,
        "{keys:?}"
    );
    let mut connection = connection().await;
    let _: () = connection.del(&keys).await.expect("clean up");
}

/// A Redis server of the test's own on a free port, so it can be stopped and started.
pub struct OwnRedis {
    pub port: u16,
    child: std::process::Child,
}

/// A test that fails leaves no redis-server behind (SIGKILL ends a stopped one too).
impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OwnRedis {
    pub fn start_on(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        Self { port, child }
    }

    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Self::start_on(port)
    }

    pub async fn wait_until_up(&self) {
        let url = format!("redis://127.0.0.1:{}", self.port);
        for _ in 0..100 {
            if let Ok(client) = redis::Client::open(url.as_str())
                && client.get_multiplexed_async_connection().await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server on {} did not start", self.port);
    }

    pub fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`): a Redis that hangs with its connections open,
    /// not one that refuses them.
    pub fn freeze(&self, frozen: bool) {
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal}");
    }
}

#[tokio::test]
async fn redis_stopping_mid_run_fails_no_request_and_its_return_closes_the_breaker() {
    let redis = OwnRedis::start();
    redis.wait_until_up().await;
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let prefix = unique_prefix();
    let app = spawn_app_with({
        let (prefix, url) = (prefix.clone(), url.clone());
        move |settings| {
            settings.redis.enabled = true;
            settings.redis.key_prefix = prefix;
            settings.redis.url = url.into();
            settings.redis.breaker_failures = 3;
            settings.redis.breaker_cooldown_ms = 300;
        }
    })
    .await;
    let games = crate::helpers::game_ids(2024, 25, 90);
    let predict_all = async |ids: &[String]| {
        for id in ids {
            let reply = app.predict(&json!({ "game_id": id })).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
    };

    predict_all(&games[..30]).await;
    let port = redis.stop();
    predict_all(&games[30..60]).await;
    let down = app.get("/ready").await.body["shared_cache"].clone();
    assert_eq!(down["breaker"], "open", "{down}");
    assert!(down["errors"].as_u64().expect("errors") >= 3);

    let redis = OwnRedis::start_on(port);
    redis.wait_until_up().await;
    tokio::time::sleep(Duration::from_millis(400)).await; // past the cool-down
    predict_all(&games[60..]).await;
    let up = app.get("/ready").await.body["shared_cache"].clone();
    assert_eq!(up["breaker"], "closed", "{up}");
    let client = redis::Client::open(url.as_str()).expect("url");
    eventually(
        "Redis fills again once it is back",
        Duration::from_secs(5),
        || async {
            let mut connection = client.get_multiplexed_async_connection().await.ok()?;
            let filled: Vec<String> = connection.keys(format!("{prefix}*")).await.ok()?;
            (!filled.is_empty()).then_some(())
        },
    )
    .await;
    redis.stop();
}

/// A Redis that hangs (SIGSTOP: connections open, nothing answered) costs each request at
/// most `redis.timeout_ms` per call until the breaker opens; every request is answered 200.
/// SIGCONT: after the cool-down the breaker closes again.
#[tokio::test]
async fn a_hanging_redis_costs_its_timeout_then_the_breaker_opens_and_closes_on_return() {
    let redis = OwnRedis::start();
    redis.wait_until_up().await;
    let timeout_ms = 50;
    let app = spawn_app_with({
        let (prefix, url) = (unique_prefix(), format!("redis://127.0.0.1:{}", redis.port));
        move |settings| {
            settings.redis.enabled = true;
            settings.redis.key_prefix = prefix;
            settings.redis.url = url.into();
            settings.redis.timeout_ms = timeout_ms;
            settings.redis.breaker_failures = 3;
            settings.redis.breaker_cooldown_ms = 300;
        }
    })
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let games = crate::helpers::game_ids(2024, 23, 60);
    // Each call that waits on Redis gives up after timeout_ms; a request makes at most
    // two such calls (features, prediction), plus its own work.
    let bound = Duration::from_millis(2 * timeout_ms + 400);
    let predict_all = async |ids: &[String]| {
        for id in ids {
            let started = std::time::Instant::now();
            let reply = client
                .post(format!("{}/api/v1/predict", app.address))
                .json(&json!({ "game_id": id }))
                .send()
                .await
                .expect("answered before the client's timeout");
            assert_eq!(reply.status(), 200);
            let took = started.elapsed();
            assert!(took < bound, "{id} took {took:?} with Redis hanging");
        }
    };
    predict_all(&games[..10]).await;

    redis.freeze(true);
    predict_all(&games[10..40]).await;
    let hung = app.get("/ready").await.body["shared_cache"].clone();
    assert_eq!(hung["breaker"], "open", "{hung}");
    assert!(hung["errors"].as_u64().expect("errors") >= 3, "{hung}");

    redis.freeze(false);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for id in games[40..].iter().cycle() {
        predict_all(std::slice::from_ref(id)).await;
        let state = app.get("/ready").await.body["shared_cache"]["breaker"].clone();
        if state == "closed" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the breaker stayed {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    redis.stop();
}

#[tokio::test]
async fn an_invalidation_on_one_replica_empties_the_other_within_a_second() {
    let prefix = unique_prefix();
    let first_replica = redis_app(&prefix, REDIS).await;
    let second_replica = redis_app(&prefix, REDIS).await;
    let body = json!({ "game_id": "KCA202404100" });
    first_replica.predict(&body).await;
    written(&prefix, ":prediction:", 1).await;
    assert_eq!(second_replica.predict(&body).await.body["cached"], true);
    // Now in the second replica's own cache: answered without Redis or inference.
    assert_eq!(second_replica.predict(&body).await.body["cached"], true);
    assert_eq!(second_replica.inference_calls().await, 0);

    let reply = first_replica
        .post_json(
            "/api/v1/admin/cache/invalidate",
            &json!({ "pattern": "prediction:home_win:*:KCA202404100:*" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["pattern"],
        "prediction:home_win:*:KCA202404100:*"
    );
    assert_eq!(
        reply.body["shared"],
        json!({ "keys_deleted": 1, "replicas_notified": 2 })
    );

    // Gone from both tiers of the other replica.
    second_replica
        .computed_again(&body, Duration::from_secs(1))
        .await;
    assert_eq!(second_replica.inference_calls().await, 1);

    let bad = first_replica
        .post_json(
            "/api/v1/admin/cache/invalidate",
            &json!({ "pattern": "games:*" }),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.problem()["code"], "invalid_pattern");
    let mut connection = connection().await;
    let leftover = keys(&prefix).await;
    if !leftover.is_empty() {
        let _: () = connection.del(&leftover).await.expect("clean up");
    }
}

/// `*` (or any pattern) drops cached values only: the model fingerprints and rate-limit state
/// under the same prefix stay.
#[tokio::test]
async fn an_invalidation_of_everything_leaves_what_is_not_cache() {
    let prefix = unique_prefix();
    let app = redis_app(&prefix, REDIS).await;
    assert_eq!(
        app.predict(&json!({ "game_id": "KCA202404100" }))
            .await
            .status,
        200
    );
    let mut connection = connection().await;
    let rate_limit = format!("{prefix}ratelimit:someone");
    let _: () = connection.set(&rate_limit, 1).await.expect("set");
    // The answer is written to Redis behind the response: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let before = loop {
        let found = keys(&prefix).await;
        if found.iter().any(|k| k.contains(":prediction:")) {
            break found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never written: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        before.iter().any(|k| k.contains(":model:home_win:1")),
        "{before:?}"
    );

    for pattern in ["*", "*home_win*"] {
        let reply = app
            .post_json(
                "/api/v1/admin/cache/invalidate",
                &json!({ "pattern": pattern }),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let after = keys(&prefix).await;
    assert!(
        after
            .iter()
            .all(|k| !k.contains(":prediction:") && !k.contains(":features:")),
        "{after:?}"
    );
    let kept: Vec<&String> = before
        .iter()
        .filter(|k| k.contains(":model:") || k.contains(":ratelimit:"))
        .collect();
    assert_eq!(after.iter().collect::<Vec<_>>(), kept);
    let _: () = connection.del(&after).await.expect("clean up");
}

#[tokio::test]
async fn a_batch_reads_what_missed_in_process_from_redis_in_one_call() {
    let prefix = unique_prefix();
    let first_replica = redis_app(&prefix, REDIS).await;
    let second_replica = redis_app(&prefix, REDIS).await;
    let ids = crate::helpers::game_ids(2024, 60, 20);
    let items: Vec<serde_json::Value> = ids.iter().map(|id| json!({ "game_id": id })).collect();
    let computed = first_replica
        .post_json("/api/v1/predict/batch", &json!({ "items": items[..15] }))
        .await;
    assert_eq!(computed.body["succeeded"], 15, "{}", computed.body);
    written(&prefix, ":prediction:", 15).await;

    let reply = second_replica
        .post_json("/api/v1/predict/batch", &json!({ "items": items }))
        .await;
    assert_eq!(reply.body["succeeded"], 20, "{}", reply.body);
    let results = reply.body["results"].as_array().expect("results");
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result["prediction"]["cached"], index < 15, "item {index}");
    }
    for (shared, own) in results
        .iter()
        .zip(computed.body["results"].as_array().expect("results"))
    {
        assert_eq!(
            shared["prediction"]["home_win_probability"],
            own["prediction"]["home_win_probability"]
        );
    }
    assert_eq!(
        second_replica.inference_calls().await,
        1,
        "one model call for the 5 that Redis did not hold"
    );
    let shared = second_replica.get("/ready").await.body["shared_cache"].clone();
    assert_eq!(
        (shared["hits"].as_u64(), shared["misses"].as_u64()),
        (Some(15), Some(5))
    );
    // Now in the second replica's own cache.
    let again = second_replica
        .post_json("/api/v1/predict/batch", &json!({ "items": items }))
        .await;
    assert_eq!(second_replica.inference_calls().await, 1);
    assert_eq!(again.body["succeeded"], 20);
    let mut connection = connection().await;
    let _: () = connection.del(keys(&prefix).await).await.expect("clean up");
}

#[tokio::test]
async fn a_replica_started_with_a_replaced_model_file_drops_the_old_files_predictions() {
    let prefix = unique_prefix();
    let first = redis_app(&prefix, REDIS).await;
    let body = json!({ "game_id": "KCA202404100" });
    first.predict(&body).await;
    first
        .predict(&json!({ "game": { "home": "NYA", "away": "BOS", "date": "2025-04-05" } }))
        .await;
    written(&prefix, ":prediction:", 2).await;
    let fingerprint_key = format!("{prefix}model:home_win:1");
    let mut connection = connection().await;
    let recorded: String = connection
        .get(&fingerprint_key)
        .await
        .expect("recorded at start");
    assert_eq!(recorded.len(), 32, "{recorded}");

    // The same file again: what it made stays shared.
    let same = redis_app(&prefix, REDIS).await;
    assert_eq!(same.predict(&body).await.body["cached"], true);
    assert_eq!(
        keys(&prefix).await.len(),
        6,
        "2 predictions, 1 feature vector, 3 fingerprints (versions 1, 2 and 3)"
    );

    // Another file under the same version: its predictions go, its features stay, and the
    // replicas already running drop theirs.
    let _: () = connection
        .set(&fingerprint_key, "0".repeat(32))
        .await
        .expect("set");
    let replaced = redis_app(&prefix, REDIS).await;
    let left = keys(&prefix).await;
    assert_eq!(
        left,
        vec![
            crate::helpers::scheduled_features_key(&prefix),
            fingerprint_key.clone(),
            format!("{prefix}model:home_win:2"),
            format!("{prefix}model:home_win:3"),
        ],
    );
    let now: String = connection.get(&fingerprint_key).await.expect("fingerprint");
    assert_eq!(now, recorded);
    first.computed_again(&body, Duration::from_secs(5)).await;
    assert_eq!(replaced.inference_calls().await, 0);
    let _: () = connection.del(keys(&prefix).await).await.expect("clean up");
}

/// The Redis counters of `/ready`: lookups made so far (hits and misses).
async fn redis_lookups(app: &TestApp) -> u64 {
    let shared = app.get("/ready").await.body["shared_cache"].clone();
    shared["hits"].as_u64().expect("hits") + shared["misses"].as_u64().expect("misses")
}

/// Requests in flight, from `/metrics` (the scrape counts itself).
async fn in_flight(app: &TestApp) -> f64 {
    app.scrape()
        .await
        .lines()
        .find_map(|line| line.strip_prefix("bullpen_http_requests_in_flight "))
        .and_then(|value| value.parse().ok())
        .expect("the in-flight gauge")
}

/// 32 requests for one game while the feature store is held (a lock on `game_features`, read
/// for a game written after the replica's view of the games was built), so they all wait
/// together whatever the machine's speed; released, they must have made what one request
/// makes: one inference and one request's Redis lookups. Then again once every entry has
/// expired, the path that used to let every caller recompute and skip Redis.
#[tokio::test]
async fn single_flight_holds_for_held_requests_cold_and_after_expiry() {
    let database = crate::database::TestDatabase::imported().await;
    let (url, prefix) = (database.url(), unique_prefix());
    let key_prefix = prefix.clone();
    let app = spawn_app_with(move |settings| {
        settings.features.store = bullpen::features::StoreKind::Postgres;
        settings.database.url = url.into();
        settings.redis.enabled = true;
        settings.redis.key_prefix = prefix;
        settings.cache.predictions_ttl_secs = 1;
        settings.cache.features_ttl_secs = 1;
        // The view is built once and not moved by the game written below.
        settings.features.refresh_ms = 3_600_000;
    })
    .await;
    let only_in_table = database
        .game_only_the_table_holds(&app, "KCA202404100")
        .await;
    // What one request costs: a game of its own, cold.
    let (lookups, inferences) = (redis_lookups(&app).await, app.inference_calls().await);
    assert_eq!(
        app.predict(&json!({ "game_id": "NYA202409280" }))
            .await
            .status,
        200
    );
    let one_request = redis_lookups(&app).await - lookups;
    assert_eq!(app.inference_calls().await - inferences, 1);

    let body = json!({ "game_id": only_in_table });
    for round in ["cold", "after expiry"] {
        if round == "after expiry" {
            // Waiting for time itself: both TTLs (1 s) run out.
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        let (lookups, inferences) = (redis_lookups(&app).await, app.inference_calls().await);
        let mut lock = database.pool.get().await.expect("connection");
        let held = lock.transaction().await.expect("begin");
        held.batch_execute("LOCK TABLE game_features IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock");
        let requests: Vec<_> = (0..32)
            .map(|_| {
                let (app, body) = (&app, body.clone());
                async move { app.predict(&body).await }
            })
            .collect();
        let answers = async { futures_util::future::join_all(requests).await };
        let release = async {
            // Until all 32 wait (with single flight, behind one held query), or 5 s: a
            // request answered early shows up in the checks below.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while in_flight(&app).await < 33.0 && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            held.commit().await.expect("release");
        };
        let (answers, ()) = tokio::join!(answers, release);
        for answer in &answers {
            assert_eq!(answer.status, 200, "{round}: {}", answer.body);
            assert_ne!(answer.body["stale"], true, "{round}: {}", answer.body);
        }
        assert_eq!(
            app.inference_calls().await - inferences,
            1,
            "{round}: one inference for 32 requests"
        );
        assert_eq!(
            redis_lookups(&app).await - lookups,
            one_request,
            "{round}: the Redis lookups of one request"
        );
    }
    let leftover = keys(&key_prefix).await;
    if !leftover.is_empty() {
        let _: () = connection().await.del(&leftover).await.expect("clean up");
    }
    database.drop_now().await;
}
