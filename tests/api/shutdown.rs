use std::time::Duration;

use serde_json::json;

use crate::helpers::spawn_app;
use crate::process::ServerProcess;

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight_then_stops() {
    let app = spawn_app().await;
    let in_flight = app
        .start_slow_post("/api/v1/predict", r#"{"game_id": "KCA202404100"}"#)
        .await;

    let handle = app.handle.clone();
    let stopping = tokio::spawn(async move { handle.stop(true).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !app.server.is_finished(),
        "the server waits for the request in flight"
    );

    let (status, body) = in_flight.finish().await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("prediction JSON");
    assert_eq!(answer["game"]["game_id"], json!("KCA202404100"));

    stopping.await.expect("stop completes");
    let result = tokio::time::timeout(Duration::from_secs(5), app.server)
        .await
        .expect("the server stops once the request is done")
        .expect("server task");
    assert!(result.is_ok());
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", app.port))
            .await
            .is_err(),
        "no longer accepting"
    );
}

/// SIGTERM with every background task running (the sampler, the Redis invalidation follower
/// and writes behind answers, the prediction log writer): the process stops within
/// `server.shutdown_timeout_secs`, having stopped and awaited each task, and the log holds
/// every prediction served.
#[tokio::test]
async fn sigterm_stops_every_background_task_within_the_timeout() {
    let database = crate::database::TestDatabase::new().await;
    bullpen::db::migrate(&database.pool).await.expect("migrate");
    let timeout_secs = 3;
    let mut server = ServerProcess::start(&[
        (
            "BULLPEN__SERVER__SHUTDOWN_TIMEOUT_SECS",
            timeout_secs.to_string(),
        ),
        ("BULLPEN__REDIS__ENABLED", "true".to_owned()),
        (
            "BULLPEN__REDIS__KEY_PREFIX",
            format!("bullpen_test:{}:", uuid::Uuid::new_v4().simple()),
        ),
        ("BULLPEN__DATABASE__URL", database.url()),
        ("BULLPEN__PREDICTION_LOG__ENABLED", "true".to_owned()),
        // Entries wait in the queue until shutdown flushes them.
        (
            "BULLPEN__PREDICTION_LOG__FLUSH_INTERVAL_MS",
            "60000".to_owned(),
        ),
    ]);
    let client = reqwest::Client::new();
    let games = crate::helpers::game_ids(2024, 40, 20);
    for game in &games {
        let answer = client
            .post(format!("{}/api/v1/predict", server.address))
            .json(&json!({ "game_id": game }))
            .send()
            .await
            .expect("request sent");
        assert_eq!(answer.status(), 200);
    }
    // The sampler has ticked (it measured the requests), so it is running.
    crate::helpers::eventually("the sampler ticked", Duration::from_secs(5), || async {
        (crate::process::metric(&server.address, "bullpen_http_requests_per_second").await? > 0.0)
            .then_some(())
    })
    .await;

    let (status, took) = server
        .terminate(Duration::from_secs(timeout_secs + 5))
        .expect("the process exits");
    let log = server.log();
    assert!(status.success(), "{status}: {log}");
    assert!(
        took < Duration::from_secs(timeout_secs),
        "stopped in {took:?}, beyond the {timeout_secs} s timeout: {log}"
    );
    assert!(log.contains("background tasks stopped"), "{log}");
    assert!(!log.contains("still running"), "{log}");
    assert_eq!(
        database.count("prediction_log").await,
        games.len() as i64,
        "the queued entries were written on the way out"
    );
    database.drop_now().await;
}

/// What a load client saw: when each request was sent, relative to the SIGTERM, and its
/// answer (status or transport error).
struct Sent {
    at: std::time::Instant,
    answer: Result<u16, String>,
}

/// A rolling update, one replica's view: keep-alive clients send without pause; SIGTERM
/// turns `/ready` to 503 within 100 ms while every request sent during the drain window is
/// answered 200 (responses close their connections, so the clients reconnect); then the
/// process stops accepting, exits 0 within the drain plus the shutdown timeout, and the
/// prediction log holds every prediction served.
#[tokio::test]
async fn sigterm_drains_under_load_then_exits_cleanly() {
    let database = crate::database::TestDatabase::new().await;
    bullpen::db::migrate(&database.pool).await.expect("migrate");
    let (drain_secs, timeout_secs) = (2, 3);
    let mut server = ServerProcess::start(&[
        ("BULLPEN__SERVER__DRAIN_SECS", drain_secs.to_string()),
        (
            "BULLPEN__SERVER__SHUTDOWN_TIMEOUT_SECS",
            timeout_secs.to_string(),
        ),
        ("BULLPEN__DATABASE__URL", database.url()),
        ("BULLPEN__PREDICTION_LOG__ENABLED", "true".to_owned()),
        ("BULLPEN__PREDICTION_LOG__CAPACITY", "1000000".to_owned()),
    ]);
    let games = std::sync::Arc::new(crate::helpers::game_ids(2024, 7, 300));
    let sigterm = std::sync::Arc::new(std::sync::OnceLock::<std::time::Instant>::new());
    // The clients stop sending before the drain window closes, so each request they send
    // falls inside it (or before the SIGTERM).
    let load_for = Duration::from_millis(drain_secs * 1000 - 500);
    let clients: Vec<_> = (0..8)
        .map(|n| {
            let (address, games, sigterm) =
                (server.address.clone(), games.clone(), sigterm.clone());
            tokio::spawn(keep_sending(address, games, n * 37, sigterm, load_for))
        })
        .collect();
    // The load is flowing: the clients' first predictions are answered.
    crate::helpers::eventually("predictions answered", Duration::from_secs(5), || async {
        (crate::process::metric(&server.address, "bullpen_predictions_total").await? > 0.0)
            .then_some(())
    })
    .await;

    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let ready = probe
        .get(format!("{}/ready", server.address))
        .send()
        .await
        .expect("ready answers");
    assert_eq!(ready.status(), 200, "ready before the SIGTERM");
    let sent_at = server.send_sigterm();
    sigterm.set(sent_at).expect("set once");
    let unready_after = wait_until_unready(&probe, &server.address, sent_at).await;
    assert!(
        unready_after < Duration::from_millis(100),
        "/ready answered 503 only {unready_after:?} after the SIGTERM"
    );

    let mut answered = 0;
    let mut during_drain = 0;
    for client in clients {
        for request in client.await.expect("client task") {
            assert_eq!(
                request.answer,
                Ok(200),
                "a request sent {:?} after the SIGTERM",
                request.at.checked_duration_since(sent_at)
            );
            answered += 1;
            if request.at > sent_at {
                during_drain += 1;
            }
        }
    }
    assert!(
        during_drain > 100,
        "only {during_drain} requests during the drain"
    );

    let (status, took) = server
        .wait_exit(sent_at, Duration::from_secs(drain_secs + timeout_secs + 5))
        .expect("the process exits");
    let log = server.log();
    assert!(status.success(), "{status}: {log}");
    assert!(
        took >= Duration::from_secs(drain_secs)
            && took < Duration::from_secs(drain_secs + timeout_secs),
        "exited {took:?} after the SIGTERM (drain {drain_secs} s, timeout {timeout_secs} s)"
    );
    assert!(log.contains("background tasks stopped"), "{log}");
    assert_eq!(
        database.count("prediction_log").await,
        answered,
        "every prediction served was logged"
    );
    database.drop_now().await;
}

/// One keep-alive client posting predictions without pause, from the `skip`th game on, until
/// `load_for` after the SIGTERM.
async fn keep_sending(
    address: String,
    games: std::sync::Arc<Vec<String>>,
    skip: usize,
    sigterm: std::sync::Arc<std::sync::OnceLock<std::time::Instant>>,
    load_for: Duration,
) -> Vec<Sent> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut sent = Vec::new();
    for game in games.iter().cycle().skip(skip) {
        if sigterm.get().is_some_and(|at| at.elapsed() >= load_for) {
            break;
        }
        let at = std::time::Instant::now();
        let answer = client
            .post(format!("{address}/api/v1/predict"))
            .json(&json!({ "game_id": game }))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| format!("{e:?}"));
        sent.push(Sent { at, answer });
    }
    sent
}

/// Polls `/ready` until it answers 503 `draining`: how long after `sent_at` it did.
async fn wait_until_unready(
    probe: &reqwest::Client,
    address: &str,
    sent_at: std::time::Instant,
) -> Duration {
    loop {
        let ready = probe
            .get(format!("{address}/ready"))
            .send()
            .await
            .expect("ready answers while draining");
        if ready.status() == 503 {
            let elapsed = sent_at.elapsed();
            let body: serde_json::Value = ready.json().await.expect("ready JSON");
            assert_eq!(body["status"], json!("draining"));
            return elapsed;
        }
        assert!(
            sent_at.elapsed() < Duration::from_secs(1),
            "/ready never said 503"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `GET {address}/ready` until 200, failing if `child` exits first or 45 s pass.
async fn ready_while_alive(child: &mut std::process::Child, address: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("bullpen exited ({status}) before it was ready");
        }
        if let Ok(reply) = reqwest::get(format!("{address}/ready")).await
            && reply.status() == 200
        {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "not ready in 45 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGTERM, then the exit status within `limit`; the process is killed if it hangs.
fn terminate_within(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let sent = std::time::Instant::now();
    while sent.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("SIGTERM did not end the process within {limit:?}");
}

/// SIGTERM while the server loads (an orchestrator that gives up on a slow start, or a
/// signal just as it says `serving`) ends the process cleanly, not by the signal's default
/// action.
#[tokio::test]
async fn sigterm_while_loading_ends_the_process_cleanly() {
    use std::io::{BufRead, BufReader};
    let mut child = ServerProcess::command(&[]).spawn().expect("bullpen starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut messages = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(&line)
                .map(|event| event["message"].as_str().unwrap_or_default().to_owned())
                .unwrap_or(line)
        });
    // Logged while loading, before the models are read.
    assert!(
        messages.any(|message| message == "embedded feature store loaded"),
        "the store loads"
    );
    let status = terminate_within(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{status}");
    let last = messages.last().unwrap_or_default();
    // The signal nearly always comes while the models load; just after, it drains (0 s).
    assert!(
        last == "stopped before serving" || last == "stopped",
        "the last line: {last}"
    );
}

/// A log whose reader is gone before the server starts (`bullpen serve 2>&1 | head -5`):
/// the server starts, serves, and stops on SIGTERM.
#[tokio::test]
async fn a_log_pipe_closed_before_start_neither_stops_the_start_nor_the_shutdown() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut child = ServerProcess::command(&[
        ("BULLPEN__SERVER__PORT", port.to_string()),
        ("BULLPEN__SERVER__DRAIN_SECS", "1".to_owned()),
    ])
    .spawn()
    .expect("bullpen starts");
    drop(child.stderr.take());
    let address = format!("http://127.0.0.1:{port}");
    ready_while_alive(&mut child, &address).await;
    let answer = reqwest::Client::new()
        .post(format!("{address}/api/v1/predict"))
        .json(&json!({ "game_id": "KCA202404100" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(answer.status(), 200);
    let status = terminate_within(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{status}");
}

/// A log whose reader goes away while the server runs: the lines it cannot write are
/// dropped and counted, and SIGTERM still drains and ends the process.
#[tokio::test]
async fn a_log_pipe_closed_while_serving_drops_lines_and_the_drain_still_ends() {
    use std::io::{BufRead, BufReader};
    // The drain is long enough for a loaded machine to read the metric inside it.
    let mut child = ServerProcess::command(&[("BULLPEN__SERVER__DRAIN_SECS", "8".to_owned())])
        .spawn()
        .expect("bullpen starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("a log line before the pipe closes")
            .expect("UTF-8");
        if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
            && event["message"] == "serving"
        {
            break event["port"].as_u64().expect("the port");
        }
    };
    drop(lines);
    let address = format!("http://127.0.0.1:{port}");
    // SIGTERM logs, and then the drain logs; both lines meet the closed pipe.
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let dropped = crate::helpers::eventually(
        "the dropped lines counted while draining",
        Duration::from_secs(7),
        || async {
            let dropped =
                crate::process::metric(&address, "bullpen_log_lines_dropped_total").await?;
            (dropped > 0.0).then_some(dropped)
        },
    )
    .await;
    assert!(dropped > 0.0);
    let status = terminate_within(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{status}");
}
