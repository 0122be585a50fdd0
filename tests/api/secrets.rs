//! Credentials never leave the process: with a password in the Redis and PostgreSQL URLs and
//! a JWT secret, nothing the server logs or answers on its probes, status and metrics holds
//! any of them, through requests, refusals and a Redis outage.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::auth::hs256;
use crate::database::TestDatabase;
use crate::process::ServerProcess;

const REDIS_PASSWORD: &str = "redis-pw-Zq8vX1cN";
const DATABASE_PASSWORD: &str = "pg-pw-Kt4mW9yB";
const JWT_SECRET: &str = "jwt-secret-Hn2pR7-of-at-least-thirty-two-bytes";

/// A redis-server that wants `REDIS_PASSWORD`, on a free port, up when this returns.
struct GuardedRedis {
    port: u16,
    child: std::process::Child,
}

impl GuardedRedis {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let redis = Self {
            port,
            child: Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--requirepass", REDIS_PASSWORD])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server is installed"),
        };
        let url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{port}");
        for _ in 0..200 {
            if let Ok(client) = redis::Client::open(url.as_str())
                && let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .is_ok()
            {
                return redis;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server on {port} did not start");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GuardedRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Requests to one server, each answer (status line, headers and body) kept.
struct Client<'a> {
    server: &'a ServerProcess,
    http: reqwest::Client,
    seen: Vec<String>,
}

impl Client<'_> {
    async fn call(&mut self, path: &str, bearer: Option<&str>, body: Option<Value>) -> u16 {
        let url = format!("{}{path}", self.server.address);
        let mut request = match &body {
            Some(body) => self.http.post(url).json(body),
            None => self.http.get(url),
        };
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        self.seen.push(format!("{response:?}"));
        self.seen.push(response.text().await.expect("body"));
        status
    }

    /// The open probe, and the numbers about model quality (scope `predict`) with `token`:
    /// the status page's and the metrics.
    async fn probes(&mut self, token: &str) {
        assert_eq!(self.call("/ready", None, None).await, 200);
        for path in ["/status/data", "/metrics"] {
            assert_eq!(self.call(path, None, None).await, 401, "{path}");
            assert_eq!(self.call(path, Some(token), None).await, 200, "{path}");
        }
    }
}

async fn start(redis: &GuardedRedis, database: &TestDatabase) -> ServerProcess {
    bullpen::db::migrate(&database.pool).await.expect("migrate");
    let redis_url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}", redis.port);
    let database_url = format!(
        "postgres://postgres:{DATABASE_PASSWORD}@127.0.0.1:5432/{}",
        database.name
    );
    ServerProcess::start(&[
        ("BULLPEN__TELEMETRY__LEVEL", "debug".to_owned()),
        ("BULLPEN__REDIS__ENABLED", "true".to_owned()),
        ("BULLPEN__REDIS__URL", redis_url),
        (
            "BULLPEN__REDIS__KEY_PREFIX",
            format!("bullpen_test:{}:", uuid::Uuid::new_v4().simple()),
        ),
        ("BULLPEN__REDIS__TIMEOUT_MS", "500".to_owned()),
        ("BULLPEN__DATABASE__URL", database_url),
        ("BULLPEN__PREDICTION_LOG__ENABLED", "true".to_owned()),
        ("BULLPEN__AUTH__ENABLED", "true".to_owned()),
        ("BULLPEN__AUTH__JWT__HS256_SECRET", JWT_SECRET.to_owned()),
    ])
}

#[tokio::test]
async fn no_credential_reaches_a_log_line_a_probe_the_status_or_the_metrics() {
    let mut redis = GuardedRedis::start().await;
    let database = TestDatabase::new().await;
    let mut server = start(&redis, &database).await;
    let now = jsonwebtoken::get_current_timestamp().cast_signed();
    let claims =
        json!({"sub": "desk", "aud": "bullpen", "exp": now + 600, "scope": "predict admin"});
    let token = hs256(&claims, JWT_SECRET);
    let forged = hs256(&claims, "not-the-secret-but-thirty-two-bytes-long");
    let mut client = Client {
        server: &server,
        http: reqwest::Client::new(),
        seen: Vec::new(),
    };
    let predict = json!({"game_id": "KCA202404100"});
    let path = "/api/v1/predict";
    assert_eq!(
        client.call(path, Some(&token), Some(predict.clone())).await,
        200
    );
    assert_eq!(
        client
            .call(path, Some(&forged), Some(predict.clone()))
            .await,
        401
    );
    assert_eq!(client.call(path, None, Some(predict.clone())).await, 401);
    let bad = json!({"game_id": 7});
    assert_eq!(client.call(path, Some(&token), Some(bad)).await, 400);
    let batch = json!({"items": [predict, {"game_id": "XXX"}]});
    let batch_path = "/api/v1/predict/batch";
    assert_eq!(
        client.call(batch_path, Some(&token), Some(batch)).await,
        200
    );
    let pattern = json!({"pattern": "prediction:*"});
    let invalidate = "/api/v1/admin/cache/invalidate";
    assert_eq!(
        client.call(invalidate, Some(&token), Some(pattern)).await,
        200
    );
    client.probes(&token).await;

    // Redis goes away: the failures are logged (with the node's host and port), and
    // requests go on without it.
    redis.stop();
    let node = format!("127.0.0.1:{}", redis.port);
    let logged = server
        .logged(Duration::from_secs(10), |line| line.contains(&node))
        .await;
    assert!(
        logged.is_some(),
        "the Redis failure is logged: {}",
        server.log()
    );
    let scheduled = json!({"game": {"home": "NYA", "away": "BOS", "date": "2025-04-05"}});
    assert_eq!(client.call(path, Some(&token), Some(scheduled)).await, 200);
    client.probes(&token).await;
    let answers = client.seen.join("\n");

    let (status, _) = server
        .terminate(Duration::from_secs(15))
        .expect("the server stops on SIGTERM");
    assert!(status.success(), "{status}");
    let log = server.log();
    for secret in [REDIS_PASSWORD, DATABASE_PASSWORD, JWT_SECRET] {
        assert!(!log.contains(secret), "a secret in the log: {log}");
        assert!(
            !answers.contains(secret),
            "a secret in an answer: {answers}"
        );
    }
    assert_eq!(
        database.count("prediction_log").await,
        3,
        "the two predictions and the batch's good item were logged"
    );
    database.drop_now().await;
}

/// A password Redis refuses is logged once per kind of failure, not twice a second for
/// ever; each failure is counted in `bullpen_redis_errors_total`, and requests go on.
#[tokio::test]
async fn a_refused_redis_password_is_logged_once_and_counted() {
    let redis = GuardedRedis::start().await;
    let server = ServerProcess::start(&[
        ("BULLPEN__REDIS__ENABLED", "true".to_owned()),
        (
            "BULLPEN__REDIS__URL",
            format!("redis://:not-the-password@127.0.0.1:{}", redis.port),
        ),
        (
            "BULLPEN__REDIS__KEY_PREFIX",
            format!("bullpen_test:{}:", uuid::Uuid::new_v4().simple()),
        ),
        ("BULLPEN__REDIS__BREAKER_COOLDOWN_MS", "200".to_owned()),
    ]);
    let http = reqwest::Client::new();
    // Four seconds of retries (every second per channel, every cool-down for the breaker),
    // with requests that keep meeting the open breaker.
    for n in 0..40 {
        let game = format!("KCA2024041{}0", n % 10);
        let answer = http
            .post(format!("{}/api/v1/predict", server.address))
            .json(&json!({ "game_id": game }))
            .send()
            .await
            .expect("sent");
        assert!(answer.status().is_success() || answer.status() == 404);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counted = crate::process::metric(&server.address, "bullpen_redis_errors_total")
        .await
        .expect("scraped");
    assert!(counted >= 6.0, "each failure counted: {counted}");
    let log = server.log();
    let warnings = log
        .lines()
        .filter(|line| {
            line.contains(r#""level":"WARN""#) && line.contains(r#""target":"bullpen::cache"#)
        })
        .count();
    // One for the breaker, one per followed channel (invalidations, routing).
    assert!(warnings <= 3, "{warnings} warnings in 4 s: {log}");
    assert!(!log.contains("not-the-password"), "the password in the log");
}
