//! `bullpen serve` as a real process: configured through the environment as a deployment
//! would, its log captured whole, stopped by a real SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::repo_path;

pub struct ServerProcess {
    pub address: String,
    child: Child,
    log: Arc<Mutex<String>>,
    /// Reads the log until the process closes its stderr.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ServerProcess {
    /// `bullpen serve` on a free port with JSON logs on a pipe, and `env` on top.
    pub fn command(env: &[(&str, String)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bullpen"));
        command
            .current_dir(repo_path(""))
            .arg("serve")
            .env_remove("RUST_LOG")
            .env("BULLPEN__SERVER__PORT", "0")
            .env("BULLPEN__SERVER__GRPC_PORT", "0")
            .env("BULLPEN__TELEMETRY__FORMAT", "json")
            .env("BULLPEN__SERVER__WORKERS", "2")
            // Tests that drain say so; the others stop at once.
            .env("BULLPEN__SERVER__DRAIN_SECS", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        command
    }

    /// Starts `bullpen serve` on a free port with JSON logs and `env` on top, and waits until
    /// it logs that it serves.
    pub fn start(env: &[(&str, String)]) -> Self {
        let mut child = Self::command(env).spawn().expect("bullpen starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (port_sender, port) = std::sync::mpsc::channel();
        let reader = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                        && event["message"] == "serving"
                        && let Some(port) = event["port"].as_u64()
                    {
                        let _ = port_sender.send(port);
                    }
                    let mut log = log.lock().expect("log lock");
                    log.push_str(&line);
                    log.push('\n');
                }
            })
        };
        let Ok(port) = port.recv_timeout(Duration::from_secs(45)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bullpen did not serve: {}", log.lock().expect("log lock"));
        };
        Self {
            address: format!("http://127.0.0.1:{port}"),
            child,
            log,
            reader: Some(reader),
        }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// The first log line `matches` accepts, waiting up to `within` for it: the server writes
    /// its log off the request path, so a line can arrive after the answer it explains.
    pub async fn logged(&self, within: Duration, matches: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.log().lines().find(|line| matches(line)) {
                return Some(line.to_owned());
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM and waits (up to `limit`) for the process to exit: its status and how
    /// long it took, or `None` (and the process killed) when it did not exit in time.
    pub fn terminate(&mut self, limit: Duration) -> Option<(ExitStatus, Duration)> {
        let sent = self.send_sigterm();
        self.wait_exit(sent, limit)
    }

    /// Sends SIGTERM and returns at once, with when it was sent.
    pub fn send_sigterm(&self) -> Instant {
        self.send_signal("TERM")
    }

    /// Sends signal `name` (`HUP`, `TERM`) to the process; when it was sent.
    pub fn send_signal(&self, name: &str) -> Instant {
        let sent = Instant::now();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIG{name} sent");
        sent
    }

    /// Waits until `limit` after `sent` for the process to exit: its status and how long
    /// after `sent` it exited, or `None` (and the process killed) when it did not.
    pub fn wait_exit(&mut self, sent: Instant, limit: Duration) -> Option<(ExitStatus, Duration)> {
        while sent.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // The last lines are in the log once the reader has seen the pipe close.
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return Some((status, sent.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sum of every series of metric `name` on the server at `address`.
pub async fn metric(address: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("{address}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(
        text.lines()
            .filter(|line| {
                line.starts_with(&format!("{name} ")) || line.starts_with(&format!("{name}{{"))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}
