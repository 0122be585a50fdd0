//! Auth and the rate limit on the real server: API keys from the config file and from
//! PostgreSQL, JWTs (HS256, RS256), scopes, and the limit shared through Redis.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bullpen::auth::{ConfiguredKey, RateLimitMode, Scopes, api_key, key_store};
use bullpen::settings::Settings;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

use crate::database::TestDatabase;
use crate::helpers::{Reply, TestApp, eventually, repo_path, spawn_app_with};
use crate::shared_cache::OwnRedis;

const HS256_SECRET: &str = "a-test-secret-of-at-least-thirty-two-bytes";

/// A new key and its config entry.
pub fn configured(
    name: &str,
    scopes: &[&str],
    rate: Option<(u32, u32)>,
) -> (String, ConfiguredKey) {
    let key = api_key::generate().expect("random");
    let entry = ConfiguredKey {
        name: name.to_owned(),
        hash: api_key::hash(&key),
        scopes: Scopes::parse_all(scopes).expect("known scopes"),
        rate_per_minute: rate.map(|(per_minute, _)| per_minute),
        burst: rate.map(|(_, burst)| burst),
    };
    (key, entry)
}

pub async fn auth_app(keys: Vec<ConfiguredKey>, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(move |settings| {
        settings.auth.enabled = true;
        settings.auth.keys = keys;
        settings.auth.jwt.hs256_secret = HS256_SECRET.to_owned().into();
        settings.auth.jwt.rs256_public_key = repo_path("tests/fixtures/jwt-rs256-public.pem");
        configure(settings);
    })
    .await
}

async fn call(app: &TestApp, method: Method, path: &str, authorization: Option<&str>) -> Reply {
    let mut request = app.request(method.clone(), path);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    if method == Method::POST {
        request = request.json(&json!({ "game_id": "KCA202404100" }));
    }
    app.send(request).await
}

async fn predict_with(app: &TestApp, bearer: &str) -> Reply {
    call(
        app,
        Method::POST,
        "/api/v1/predict",
        Some(&format!("Bearer {bearer}")),
    )
    .await
}

#[tokio::test]
async fn missing_malformed_and_unknown_credentials_get_401_or_400_with_a_challenge() {
    let (key, entry) = configured("desk", &["predict"], None);
    let app = auth_app(vec![entry], |_| {}).await;

    let cases = [
        (None, "missing_credentials", r#"Bearer realm="bullpen""#),
        // Another scheme is no credentials at all (RFC 6750 §3.1): 401, a bare challenge.
        (
            Some("Basic dXNlcjpwYXNz"),
            "missing_credentials",
            r#"Bearer realm="bullpen""#,
        ),
        (
            Some("Negotiate"),
            "missing_credentials",
            r#"Bearer realm="bullpen""#,
        ),
        (
            Some("Bearer"),
            "malformed_credentials",
            r#"Bearer realm="bullpen", error="invalid_request""#,
        ),
        (
            Some("(bad) scheme"),
            "malformed_credentials",
            r#"Bearer realm="bullpen", error="invalid_request""#,
        ),
        (
            Some("Bearer "),
            "malformed_credentials",
            r#"Bearer realm="bullpen", error="invalid_request""#,
        ),
        (
            Some("Bearer bp_0000000000000000000000000000000000000000000"),
            "invalid_credentials",
            r#"Bearer realm="bullpen", error="invalid_token""#,
        ),
        (
            Some("Bearer not-a-key-or-a-token"),
            "invalid_credentials",
            r#"Bearer realm="bullpen", error="invalid_token""#,
        ),
    ];
    for (authorization, code, challenge) in cases {
        let reply = call(&app, Method::POST, "/api/v1/predict", authorization).await;
        // RFC 6750: a malformed request is 400, a missing or bad credential 401.
        let status = if code == "malformed_credentials" {
            400
        } else {
            401
        };
        assert_eq!(reply.status, status, "{authorization:?}: {}", reply.body);
        assert_eq!(reply.problem()["code"], code, "{authorization:?}");
        assert_eq!(reply.header("www-authenticate"), Some(challenge));
        assert_eq!(reply.header("ratelimit-limit"), None);
    }
    // The scheme is case-insensitive; probes stay open.
    let ok = call(
        &app,
        Method::POST,
        "/api/v1/predict",
        Some(&format!("bearer {key}")),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(app.get("/health").await.status, 200);
    assert_eq!(app.get("/ready").await.status, 200);
}

/// Two `Authorization` headers are refused whatever their order: a good one first used to
/// win over a bad second one.
#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let (key, entry) = configured("desk", &["predict"], None);
    let app = auth_app(vec![entry], |_| {}).await;
    let good = format!("Bearer {key}");
    let bad = "Bearer bp_0000000000000000000000000000000000000000000";
    for pair in [[good.as_str(), bad], [bad, good.as_str()], [&good, &good]] {
        let request = app
            .request(Method::POST, "/api/v1/predict")
            .header("authorization", pair[0])
            .header("authorization", pair[1])
            .json(&json!({ "game_id": "KCA202404100" }));
        let reply = app.send(request).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.problem()["code"], "malformed_credentials");
    }
    assert_eq!(predict_with(&app, &key).await.status, 200);
}

/// Live model quality is served in three places under one rule: scope `predict`, unless
/// `auth.open_status` opens the status page's numbers and the metrics (which carry
/// `bullpen_model_quality`). The page itself holds no data.
#[tokio::test]
async fn the_status_data_needs_the_scope_quality_needs_unless_opened() {
    let (key, entry) = configured("desk", &["predict"], None);
    let (other, other_entry) = configured("features", &["features:read"], None);
    let app = auth_app(vec![entry.clone(), other_entry.clone()], |_| {}).await;
    for path in [
        "/status/data",
        "/metrics",
        "/api/v1/models/home_win/quality",
    ] {
        assert_eq!(
            call(&app, Method::GET, path, None).await.status,
            401,
            "{path}"
        );
        let wrong_scope = call(&app, Method::GET, path, Some(&format!("Bearer {other}"))).await;
        assert_eq!(wrong_scope.status, 403, "{path}");
        let allowed = call(&app, Method::GET, path, Some(&format!("Bearer {key}"))).await;
        assert_eq!(allowed.status, 200, "{path}: {}", allowed.body);
    }
    assert_eq!(app.get("/status").await.status, 200);

    let opened = auth_app(vec![entry, other_entry], |settings| {
        settings.auth.open_status = true;
    })
    .await;
    assert_eq!(opened.get("/status/data").await.status, 200);
    assert_eq!(opened.get("/metrics").await.status, 200);
    let quality = opened.get("/api/v1/models/home_win/quality").await;
    assert_eq!(quality.status, 401, "the API keeps its scope");
}

/// A batch costs one rate-limit token per item: one key inside its limit cannot keep the CPU
/// busy with large batches (256 items used to cost what one prediction costs).
#[tokio::test]
async fn a_batch_costs_a_token_per_item() {
    // One token a minute: nothing refills during the test.
    let (key, entry) = configured("desk", &["predict"], Some((1, 60)));
    let app = auth_app(vec![entry], |_| {}).await;
    let batch = |n: usize| {
        let items: Vec<Value> = crate::helpers::game_ids(2024, 5, n)
            .into_iter()
            .map(|id| json!({ "game_id": id }))
            .collect();
        app.request(Method::POST, "/api/v1/predict/batch")
            .header("authorization", format!("Bearer {key}"))
            .json(&json!({ "items": items }))
    };
    let ten = app.send(batch(10)).await;
    assert_eq!(ten.status, 200, "{}", ten.body);
    assert_eq!(ten.header("ratelimit-remaining"), Some("50"));
    // More items than the burst left: refused as a whole, nothing charged.
    let refused = app.send(batch(51)).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.problem()["code"], "rate_limited");
    let fifty = app.send(batch(50)).await;
    assert_eq!(fifty.status, 200, "{}", fifty.body);
    assert_eq!(fifty.header("ratelimit-remaining"), Some("0"));
    assert_eq!(predict_with(&app, &key).await.status, 429);
}

/// Migrates `database` and stores a new key `desk` of scope `predict` in it: the key and
/// its row id.
async fn key_in_postgres(database: &TestDatabase) -> (String, i64) {
    bullpen::db::migrate(&database.pool).await.expect("migrate");
    let key = api_key::generate().expect("random");
    let scopes = Scopes::parse_all(&["predict"]).expect("scope");
    let id = key_store::insert(
        &database.pool,
        "desk",
        &api_key::hash(&key),
        scopes,
        None,
        None,
    )
    .await
    .expect("insert");
    (key, id)
}

/// The PostgreSQL key store unreachable: a key it must look up gets 503 `auth_unavailable`
/// (try again), never 401 (a client would drop a good key); back, the key works again.
#[tokio::test]
async fn an_unreachable_key_store_answers_auth_unavailable_then_recovers() {
    let database = TestDatabase::new().await;
    let (key, _) = key_in_postgres(&database).await;
    let url = database.url();
    let app = auth_app(Vec::new(), move |settings| {
        settings.auth.key_store = bullpen::auth::KeyStoreKind::Postgres;
        settings.database.url = url.into();
        settings.database.connect_timeout_ms = 300;
    })
    .await;
    crate::database::cut_off(&database).await;
    let refused = predict_with(&app, &key).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.problem()["code"], "auth_unavailable");
    assert!(refused.header("retry-after").is_some());

    crate::database::reconnect(&database).await;
    eventually("the key store back", Duration::from_secs(10), || async {
        (predict_with(&app, &key).await.status == 200).then_some(())
    })
    .await;
    database.drop_now().await;
}

#[tokio::test]
async fn each_route_needs_its_scope_and_answers_carry_the_rate_limit() {
    let (predict_key, predict_entry) = configured("predictor", &["predict"], Some((120, 5)));
    let (admin_key, admin_entry) = configured("operator", &["admin", "features:read"], None);
    let app = auth_app(vec![predict_entry, admin_entry], |settings| {
        settings.auth.open_probes = false;
    })
    .await;
    let bearer = |key: &str| format!("Bearer {key}");

    let predicted = call(
        &app,
        Method::POST,
        "/api/v1/predict",
        Some(&bearer(&predict_key)),
    )
    .await;
    assert_eq!(predicted.status, 200);
    assert_eq!(predicted.header("ratelimit-limit"), Some("5"));
    assert_eq!(predicted.header("ratelimit-remaining"), Some("4"));
    assert_eq!(predicted.header("ratelimit-reset"), Some("1"));

    let expectations: [(&Method, &str, &str, u16, Option<&str>); 6] = [
        (&Method::GET, "/api/v1/models", &predict_key, 200, None),
        (
            &Method::GET,
            "/api/v1/games/KCA202404100/features",
            &predict_key,
            403,
            Some("features:read"),
        ),
        (
            &Method::POST,
            "/api/v1/admin/cache/invalidate",
            &predict_key,
            403,
            Some("admin"),
        ),
        (
            &Method::POST,
            "/api/v1/predict",
            &admin_key,
            403,
            Some("predict"),
        ),
        (
            &Method::GET,
            "/api/v1/games/KCA202404100/features",
            &admin_key,
            200,
            None,
        ),
        (&Method::GET, "/ready", &admin_key, 200, None),
    ];
    for (method, path, key, status, scope) in expectations {
        let reply = call(&app, method.clone(), path, Some(&bearer(key))).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.body);
        if let Some(scope) = scope {
            assert_eq!(reply.problem()["code"], "insufficient_scope");
            assert_eq!(
                reply.header("www-authenticate"),
                Some(
                    format!(
                        r#"Bearer realm="bullpen", error="insufficient_scope", scope="{scope}""#
                    )
                    .as_str()
                )
            );
        }
    }
    // With open_probes off, probes need a credential (any scope) and are not rate limited.
    assert_eq!(app.get("/health").await.status, 401);
    let probe = call(&app, Method::GET, "/health", Some(&bearer(&predict_key))).await;
    assert_eq!(probe.status, 200);
    assert_eq!(probe.header("ratelimit-limit"), None);
}

fn claims(audience: &str, expires_in: i64, not_before_in: i64) -> Value {
    let now = jsonwebtoken::get_current_timestamp().cast_signed();
    json!({
        "sub": "pricing-service",
        "aud": audience,
        "exp": now + expires_in,
        "nbf": now + not_before_in,
        "scope": "predict openid",
    })
}

pub fn hs256(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode")
}

fn rs256(claims: &Value) -> String {
    let pem = std::fs::read(repo_path("tests/fixtures/jwt-rs256-private.pem")).expect("test key");
    let key = EncodingKey::from_rsa_pem(&pem).expect("RSA key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("encode")
}

#[tokio::test]
async fn jwts_are_checked_for_signature_algorithm_expiry_and_audience() {
    let app = auth_app(Vec::new(), |settings| settings.auth.jwt.leeway_secs = 0).await;
    let valid = claims("bullpen", 300, -10);

    let accepted = predict_with(&app, &hs256(&valid, HS256_SECRET)).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(predict_with(&app, &rs256(&valid)).await.status, 200);

    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(valid.to_string())
    );
    let mut without_sub = valid.clone();
    without_sub.as_object_mut().expect("claims").remove("sub");
    let public_pem = std::fs::read_to_string(repo_path("tests/fixtures/jwt-rs256-public.pem"))
        .expect("test key");
    let refused = [
        (
            hs256(&claims("bullpen", -60, -120), HS256_SECRET),
            "expired",
        ),
        (
            hs256(&claims("another-service", 300, -10), HS256_SECRET),
            "another audience",
        ),
        (
            hs256(&claims("bullpen", 300, 120), HS256_SECRET),
            "not valid yet",
        ),
        (
            hs256(&valid, "the-wrong-secret-of-at-least-thirty-two-bytes"),
            "signature",
        ),
        (unsigned, "malformed"),
        // The RSA public key used as an HMAC secret: the classic algorithm confusion.
        (hs256(&valid, &public_pem), "signature"),
        (
            rs256(&json!({ "sub": "x", "aud": "bullpen" })),
            "required claim",
        ),
        // `sub` is required (README): it names the caller for the rate limit and the log.
        (hs256(&without_sub, HS256_SECRET), "required claim"),
    ];
    for (token, reason) in refused {
        let reply = predict_with(&app, &token).await;
        assert_eq!(reply.status, 401, "{reason}: {}", reply.body);
        let problem = reply.problem();
        assert_eq!(problem["code"], "invalid_credentials");
        assert!(
            problem["detail"].as_str().expect("detail").contains(reason),
            "{reason}: {problem}"
        );
    }

    // Scopes come from the token: this one may predict, not administer.
    let admin = call(
        &app,
        Method::POST,
        "/api/v1/admin/cache/invalidate",
        Some(&format!("Bearer {}", hs256(&valid, HS256_SECRET))),
    )
    .await;
    assert_eq!(admin.status, 403);
}

#[tokio::test]
async fn a_key_revoked_in_postgres_is_refused_within_the_cache_ttl() {
    let database = TestDatabase::new().await;
    let (key, id) = key_in_postgres(&database).await;
    let url = database.url();
    let app = auth_app(Vec::new(), move |settings| {
        settings.auth.key_store = bullpen::auth::KeyStoreKind::Postgres;
        settings.auth.key_cache_ttl_secs = 1;
        settings.database.url = url.into();
        settings.prediction_log.enabled = true;
    })
    .await;
    assert_eq!(predict_with(&app, &key).await.status, 200);
    // The prediction log (written behind the answer) says which key asked.
    let logged = |key_id: i64| {
        let pool = database.pool.clone();
        async move {
            let client = pool.get().await.expect("connection");
            let count: i64 = client
                .query_one(
                    "SELECT count(*) FROM prediction_log WHERE key_id = $1",
                    &[&key_id],
                )
                .await
                .expect("count")
                .get(0);
            (count == 1).then_some(())
        }
    };
    eventually("the logged prediction", Duration::from_secs(5), || {
        logged(id)
    })
    .await;

    assert_eq!(
        key_store::revoke(&database.pool, "desk")
            .await
            .expect("revoke"),
        1
    );
    let revoked = Instant::now();
    let refusal = loop {
        // Judged by when the request was sent: one sent after the TTL must be refused.
        let sent = revoked.elapsed();
        let reply = predict_with(&app, &key).await;
        if reply.status != 200 {
            break reply;
        }
        assert!(
            sent < Duration::from_millis(1200),
            "admitted {sent:?} after the revoke, past the 1 s TTL"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(refusal.status, 401);
    assert_eq!(refusal.problem()["detail"], "the API key is revoked");
    database.drop_now().await;
}

/// Sends requests alternating between `apps`, `pause` apart, until `count` are sent and
/// `window` has passed; the number admitted, the statuses seen, and the time taken.
async fn hammer(
    apps: &[&TestApp],
    key: &str,
    count: usize,
    window: Duration,
    pause: Duration,
) -> (usize, Vec<u16>, Duration) {
    let started = Instant::now();
    let mut statuses = Vec::with_capacity(count);
    while statuses.len() < count || started.elapsed() < window {
        tokio::time::sleep(pause).await;
        let app = apps[statuses.len() % apps.len()];
        let reply = call(
            app,
            Method::GET,
            "/api/v1/models",
            Some(&format!("Bearer {key}")),
        )
        .await;
        if reply.status == 429 {
            assert_eq!(reply.problem()["code"], "rate_limited");
            let retry: u64 = reply
                .header("retry-after")
                .expect("Retry-After")
                .parse()
                .expect("secs");
            assert!(retry >= 1);
            assert_eq!(reply.header("ratelimit-remaining"), Some("0"));
        }
        statuses.push(reply.status);
    }
    let admitted = statuses.iter().filter(|status| **status == 200).count();
    (admitted, statuses, started.elapsed())
}

/// Two replicas of `entry` sharing a fresh Redis prefix, with `mode` and `replicas` set
/// and leases spendable for 5 s.
async fn two_replicas(entry: ConfiguredKey, mode: RateLimitMode, replicas: u32) -> [TestApp; 2] {
    let prefix = format!("bullpen_test:{}:", uuid::Uuid::new_v4().simple());
    let replica = |entry: ConfiguredKey| {
        let prefix = prefix.clone();
        auth_app(vec![entry], move |settings| {
            settings.redis.enabled = true;
            settings.redis.key_prefix = prefix;
            settings.redis.timeout_ms = 1000;
            settings.rate_limit.mode = mode;
            settings.rate_limit.replicas = replicas;
            // Leases outlive the tests' pauses: a window can start with tokens held.
            settings.rate_limit.lease_ms = 5000;
        })
    };
    [replica(entry.clone()).await, replica(entry).await]
}

#[tokio::test]
async fn two_replicas_sharing_redis_admit_one_keys_rate_together() {
    // 600/min is one request per 100 ms after a burst of 10.
    let (key, entry) = configured("desk", &["predict"], Some((600, 10)));
    let [first, second] = two_replicas(entry, RateLimitMode::Exact, 1).await;

    let (admitted, statuses, elapsed) = hammer(
        &[&first, &second],
        &key,
        50,
        Duration::from_millis(1500),
        Duration::from_millis(5),
    )
    .await;
    let refills = usize::try_from(elapsed.as_millis() / 100).expect("small");
    assert!(
        (10 + refills).saturating_sub(2) <= admitted && admitted <= 10 + refills + 2,
        "admitted {admitted} in {elapsed:?}: expected 10 + {refills}"
    );
    assert!(
        statuses
            .iter()
            .all(|status| *status == 200 || *status == 429)
    );
    let per_replica = |offset: usize| {
        statuses
            .iter()
            .skip(offset)
            .step_by(2)
            .filter(|s| **s == 200)
            .count()
    };
    assert!(per_replica(0) > 0 && per_replica(1) > 0, "{statuses:?}");
    let ready = first.get("/ready").await;
    assert_eq!(ready.body["shared_cache"]["breaker"], "closed");
}

/// Leases: over a stream from two replicas, no more than the shared allowance is ever
/// admitted, and no fewer than it less the tokens each replica may still hold (a block).
#[tokio::test]
async fn two_replicas_taking_leases_admit_the_keys_rate_less_what_they_hold() {
    // A burst of 20 shared by 2 replicas: blocks of 20 / (2 × 2) = 5 tokens.
    let (key, entry) = configured("desk", &["predict"], Some((600, 20)));
    let [first, second] = two_replicas(entry, RateLimitMode::Lease, 2).await;
    let (admitted, statuses, elapsed) = hammer(
        &[&first, &second],
        &key,
        60,
        Duration::from_millis(1500),
        Duration::from_millis(5),
    )
    .await;
    let allowance = 20 + usize::try_from(elapsed.as_millis() / 100).expect("small");
    assert!(
        allowance.saturating_sub(2 * 5 + 2) <= admitted && admitted <= allowance + 1,
        "admitted {admitted} in {elapsed:?}: expected {allowance} less at most 2 blocks held"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
}

/// The bound the lease scheme documents: tokens debited before a window and spent in it
/// let the replicas admit up to `replicas × block` more than the exact limit in that
/// window, and no more.
#[tokio::test]
async fn leases_overshoot_a_window_by_at_most_replicas_times_the_block() {
    let (key, entry) = configured("desk", &["predict"], Some((600, 20)));
    let [first, second] = two_replicas(entry, RateLimitMode::Lease, 2).await;
    // Each replica takes a lease of 5 and spends 1 of it: 4 held by each.
    for app in [&first, &second] {
        let (admitted, _, _) = hammer(&[app], &key, 1, Duration::ZERO, Duration::ZERO).await;
        assert_eq!(admitted, 1);
    }
    // The allowance refills whatever was debited (20 tokens at 100 ms each: a wrong block
    // of 10 would have debited them all); the held tokens are still spendable.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (admitted, statuses, elapsed) = hammer(
        &[&first, &second],
        &key,
        60,
        Duration::from_millis(500),
        Duration::ZERO,
    )
    .await;
    let exact = 20 + usize::try_from(elapsed.as_millis() / 100).expect("small");
    assert!(
        admitted <= exact + 2 * 5 + 1,
        "admitted {admitted} in {elapsed:?}: the exact limit is {exact}, the bound {}",
        exact + 2 * 5
    );
    assert!(admitted > exact, "the held tokens were spent: {statuses:?}");
}

/// Commands the Redis server on `port` has processed since it started.
async fn redis_commands(port: u16) -> u64 {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("a URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connected");
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut connection)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("the command count")
}

/// An answer the replica holds costs no Redis round trip: with the shared rate limit and
/// Redis L2 on, 200 cached answers cost a lease now and then (blocks of 100 tokens), where
/// a call per request would cost 200.
#[tokio::test]
async fn cached_answers_cost_no_redis_round_trip_but_a_lease_now_and_then() {
    let redis = OwnRedis::start();
    redis.wait_until_up().await;
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let (key, entry) = configured("desk", &["predict"], Some((600_000, 10_000)));
    let app = auth_app(vec![entry], move |settings| {
        settings.redis.enabled = true;
        settings.redis.url = url.into();
    })
    .await;
    assert_eq!(predict_with(&app, &key).await.status, 200, "warm");
    let before = redis_commands(redis.port).await;
    for _ in 0..200 {
        let reply = predict_with(&app, &key).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["cached"], true);
    }
    // Two or three leases (a script call each, and a load of the script the first time),
    // and the INFO that counts.
    let spent = redis_commands(redis.port).await - before;
    assert!(spent <= 8, "{spent} Redis commands for 200 cached answers");
}

#[tokio::test]
async fn with_redis_stopped_each_replica_admits_its_share_and_nothing_errors() {
    let redis = OwnRedis::start();
    redis.wait_until_up().await;
    let url = format!("redis://127.0.0.1:{}", redis.port);
    // 60/min with a burst of 10, shared by 2 replicas: alone, each admits a burst of 5 and
    // then one request per 2 s.
    let (key, entry) = configured("desk", &["predict"], Some((60, 10)));
    let replica = |entry: ConfiguredKey| {
        let url = url.clone();
        auth_app(vec![entry], move |settings| {
            settings.redis.enabled = true;
            settings.redis.url = url.into();
            settings.redis.breaker_failures = 1;
            settings.rate_limit.replicas = 2;
        })
    };
    let first = replica(entry.clone()).await;
    let second = replica(entry).await;
    redis.stop();

    for app in [&first, &second] {
        let (admitted, statuses, elapsed) =
            hammer(&[app], &key, 8, Duration::ZERO, Duration::ZERO).await;
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        assert_eq!(admitted, 5, "{statuses:?}");
        assert!(
            statuses
                .iter()
                .all(|status| *status == 200 || *status == 429)
        );
    }
}

/// An answer served again from a worker's kept answers obeys auth as every answer does: the
/// rate limit counts each (200, 200, 200, then 429 with `RateLimit-Remaining` falling to 0),
/// and a key without scope `predict` gets 403 on the very body another key had kept.
#[tokio::test]
async fn answers_served_again_obey_auth_scope_and_the_rate_limit() {
    let (key, entry) = configured("desk", &["predict"], Some((1, 3)));
    let (reader, reader_entry) = configured("reader", &["features:read"], None);
    let app = auth_app(vec![entry, reader_entry], |_| {}).await;
    let ask = |bearer: &str| {
        let request = app
            .request(Method::POST, "/api/v1/predict")
            .header("authorization", format!("Bearer {bearer}"))
            .body(r#"{"game_id": "KCA202404100"}"#)
            .header("content-type", "application/json");
        app.send(request)
    };
    let mut seen = Vec::new();
    for _ in 0..5 {
        let reply = ask(&key).await;
        seen.push((
            reply.status,
            reply.header("ratelimit-remaining").map(str::to_owned),
            reply.body["cached"].clone(),
        ));
    }
    let statuses: Vec<u16> = seen.iter().map(|(status, _, _)| *status).collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429], "{seen:?}");
    let remaining: Vec<Option<&str>> = seen.iter().map(|(_, left, _)| left.as_deref()).collect();
    assert_eq!(
        remaining,
        [Some("2"), Some("1"), Some("0"), Some("0"), Some("0")]
    );
    // The third was served again from what the worker kept.
    assert_eq!(seen[2].2, true, "{seen:?}");
    let refused = ask(&reader).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.problem()["code"], "insufficient_scope");
    let nobody = app
        .send(
            app.request(Method::POST, "/api/v1/predict")
                .body(r#"{"game_id": "KCA202404100"}"#)
                .header("content-type", "application/json"),
        )
        .await;
    assert_eq!(nobody.status, 401);
}
