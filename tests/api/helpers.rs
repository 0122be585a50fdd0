use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use bullpen::features::{DataSettings, EmbeddedStore};
use bullpen::games::GameId;
use bullpen::settings::Settings;
use bullpen::startup::Application;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The store built from the shipped data, once for the whole test binary (it is read-only).
pub fn store() -> &'static EmbeddedStore {
    static STORE: OnceLock<EmbeddedStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let data = DataSettings {
            dir: repo_path("data/retrosheet"),
            pitchers_dir: repo_path("data/pitchers"),
        };
        EmbeddedStore::load(&data, |_| {}).expect("shipped data loads")
    })
}

/// The shipped starters and season totals, loaded once.
pub fn pitchers() -> std::sync::Arc<bullpen::games::Pitchers> {
    static PITCHERS: OnceLock<std::sync::Arc<bullpen::games::Pitchers>> = OnceLock::new();
    std::sync::Arc::clone(PITCHERS.get_or_init(|| {
        std::sync::Arc::new(
            bullpen::games::load_pitchers(&repo_path("data/pitchers")).expect("shipped starters"),
        )
    }))
}

/// Every `step`-th regular-season game id of `season`, at most `count` of them.
pub fn game_ids(season: i32, step: usize, count: usize) -> Vec<String> {
    store()
        .games()
        .iter()
        .filter(|g| g.season() == season && g.phase == bullpen::games::Phase::Regular)
        .step_by(step)
        .take(count)
        .map(|g| g.id.to_string())
        .collect()
}

/// The shared tier's key of the features of the scheduled game BOS at NYA on 2025-04-05, as
/// a replica on the shipped data writes it: the digest of every game before that day is part
/// of it.
pub fn scheduled_features_key(prefix: &str) -> String {
    let date = chrono::NaiveDate::from_ymd_opt(2025, 4, 5).expect("date");
    format!(
        "{prefix}features:v2:BOS@NYA20250405:{:016x}",
        store().history_before(date)
    )
}

/// Probabilities recorded by `training/train.py` for a few real 2024 games.
#[derive(Deserialize)]
pub struct Parity {
    pub tolerance: f64,
    pub games: Vec<ParityGame>,
}

#[derive(Deserialize)]
pub struct ParityGame {
    pub game_id: GameId,
    pub features: Vec<f32>,
    pub probability: f64,
}

pub fn parity() -> Parity {
    parity_of("1")
}

/// What training recorded for `home_win@{version}`: games, their features and probabilities.
pub fn parity_of(version: &str) -> Parity {
    let path = repo_path(&format!("models/home_win/{version}/parity.json"));
    let text = std::fs::read_to_string(path).expect("parity file");
    serde_json::from_str(&text).expect("parity JSON")
}

/// The defaults, with a free port, gRPC off (tests that speak it turn it on with
/// [`free_port`]) and the repository's data and models.
pub fn test_settings() -> Settings {
    let mut settings = Settings::load(&repo_path("config")).expect("default settings load");
    settings.server.port = 0;
    settings.server.grpc_port = 0;
    settings.data.dir = repo_path("data/retrosheet");
    // Results posted by a test stay in memory unless it names a journal folder.
    settings.features.results_dir = PathBuf::new();
    settings.models.dir = repo_path("models");
    settings
}

/// A loopback port free now: the kernel's pick, released for the caller to bind.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A running app on its own port, built by the same builder as `main`.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    /// The gRPC service's address, when `server.grpc_port` turned it on.
    pub grpc: Option<String>,
    pub client: reqwest::Client,
    pub handle: ServerHandle,
    pub server: JoinHandle<std::io::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings();
    configure(&mut settings);
    let app = Application::build(&settings)
        .await
        .expect("the application builds");
    let port = app.port();
    let grpc = app
        .grpc_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        grpc,
        // A stuck server fails the test that waits on it instead of hanging the suite.
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client"),
        handle,
        server,
    }
}

/// A response's status, headers and JSON body.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body with `request_id` checked against the response header and removed, so the
    /// rest can be compared whole.
    pub fn problem(&self) -> Value {
        let mut body = self.body.clone();
        let id = body
            .as_object_mut()
            .and_then(|o| o.remove("request_id"))
            .expect("problems carry a request_id");
        assert_eq!(
            Some(id.as_str().expect("string id")),
            self.header("x-request-id")
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        body
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> Reply {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent");
        reply(response).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .expect("request sent");
        reply(response).await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> Reply {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent");
        reply(response).await
    }

    /// A request to `path` on this app, to finish and [`TestApp::send`].
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        reply(request.send().await.expect("request sent")).await
    }

    pub async fn predict(&self, body: &Value) -> Reply {
        self.post_json("/api/v1/predict", body).await
    }

    /// Fails the test unless a prediction for a real game still succeeds: after an error or
    /// a refusal, the server keeps serving.
    pub async fn assert_still_serves(&self) {
        let reply = self
            .predict(&serde_json::json!({ "game_id": "KCA202404100" }))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    /// The `/metrics` text.
    pub async fn scrape(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("scrape body")
    }

    /// Inference calls the default model has made so far.
    /// Asks `body` until the answer is computed again (`cached: false`), up to `within`: an
    /// invalidation sent from elsewhere reaches this replica when it reaches it, and each ask
    /// before that only reads the entry it will drop.
    pub async fn computed_again(&self, body: &Value, within: Duration) -> Reply {
        eventually(
            "the entry dropped here, so computed again",
            within,
            || async {
                let reply = self.predict(body).await;
                (reply.body["cached"] == false).then_some(reply)
            },
        )
        .await
    }

    pub async fn inference_calls(&self) -> u64 {
        let models = self.get("/api/v1/models").await;
        models.body["models"][0]["inference_calls"]
            .as_u64()
            .expect("inference_calls is a number")
    }

    /// Starts a POST whose body is sent only in part: the request is in flight until
    /// [`SlowRequest::finish`] sends the rest.
    pub async fn start_slow_post(&self, path: &str, body: &str) -> SlowRequest {
        self.start_slow_post_with(path, body, "").await
    }

    /// [`TestApp::start_slow_post`] with extra header lines (each ending in `\r\n`).
    pub async fn start_slow_post_with(&self, path: &str, body: &str, headers: &str) -> SlowRequest {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect");
        // `Expect: 100-continue`: the server's interim answer says it has read the head and
        // taken the request, so nothing here waits on a guess of how long that takes.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}Expect: 100-continue\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("write head");
        let mut interim = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), async {
            let mut byte = [0_u8; 1];
            while !interim.ends_with(b"\r\n\r\n") {
                stream
                    .read_exact(&mut byte)
                    .await
                    .expect("read 100 Continue");
                interim.push(byte[0]);
            }
        })
        .await
        .expect("the server answers 100 Continue");
        assert!(
            interim.starts_with(b"HTTP/1.1 100"),
            "{}",
            String::from_utf8_lossy(&interim)
        );
        let (first, rest) = body.split_at(body.len() / 2);
        stream
            .write_all(first.as_bytes())
            .await
            .expect("write half the body");
        stream.flush().await.expect("flush");
        SlowRequest {
            stream,
            rest: rest.to_owned(),
        }
    }
}

pub struct SlowRequest {
    stream: TcpStream,
    rest: String,
}

impl SlowRequest {
    /// Sends the rest of the body and returns the raw status line and body.
    pub async fn finish(mut self) -> (String, String) {
        // A server that already answered may have closed its side: ignore write errors.
        let _ = self.stream.write_all(self.rest.as_bytes()).await;
        let mut raw = String::new();
        self.stream
            .read_to_string(&mut raw)
            .await
            .expect("read response");
        let status = raw.lines().next().unwrap_or_default().to_owned();
        let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        (status, body)
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body read");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

/// Polls `check` every 20 ms until it gives `Some`, and panics naming `what` when `within`
/// passes first: the way tests wait for work done behind an answer, instead of sleeping.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
