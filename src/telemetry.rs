//! Logging through `tracing-subscriber`: pretty for a terminal, JSON for collectors. A leaf:
//! every module may log, and [`Chain`] prints an error with its causes.

use std::error::Error;
use std::fmt;
use std::io::Write;
use std::sync::LazyLock;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use prometheus::{IntCounter, Opts};

use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// `[telemetry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub format: LogFormat,
    pub level: String,
}

impl TelemetrySettings {
    pub fn validate(&self) -> Result<(), crate::validation::InvalidSetting> {
        EnvFilter::try_new(&self.level).map(drop).map_err(|_| {
            crate::validation::InvalidSetting::new(
                "telemetry.level",
                "is not a tracing filter such as `info`",
            )
        })
    }
}

/// An error and every cause below it, `outer: inner: innermost`, for a log line. Errors name
/// their own step and leave the cause to `source()`, so this prints each message once.
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `level`.
/// Tests pass a sink as `writer`; calling it twice leaves the first subscriber in place.
pub fn init_telemetry<W>(format: LogFormat, level: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // A line that cannot be written is counted by the writer, never reported on stderr.
        .log_internal_errors(false)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Err(error) = installed {
        // Only a second initialisation fails, and then the first subscriber keeps working.
        let _ = writeln!(std::io::stderr(), "telemetry already initialised: {error}");
    }
}

/// Log lines that could not be written: the queue to the writer thread was full, or the
/// output refused them (a closed pipe, a full disk). One counter per process, as the
/// subscriber is; `Metrics` registers it as `bullpen_log_lines_dropped_total`.
pub fn log_lines_dropped() -> IntCounter {
    static DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
        IntCounter::with_opts(
            Opts::new(
                "log_lines_dropped_total",
                "Log lines dropped because the log output was full, slow or closed.",
            )
            .namespace("bullpen"),
        )
        .expect("the counter's options are valid; this is a bug")
    });
    DROPPED.clone()
}

/// Log lines waiting for the writer thread; beyond this, lines are dropped (and counted).
const LOG_QUEUE_LINES: usize = 4_096;

/// How long [`LogOutput`]'s guard waits at exit for queued lines to be written.
const FLUSH_AT_EXIT: Duration = Duration::from_secs(1);

/// Where the server's log goes: standard error, written by a thread of its own. A line
/// never panics, blocks or fails the code that logs it: the caller only queues it, and
/// what cannot be queued or written is dropped and counted ([`log_lines_dropped`]). So a
/// log reader that is gone (`bullpen serve 2>&1 | head`) or stuck cannot stop the server
/// or hold up its shutdown.
#[derive(Debug, Clone)]
pub struct LogOutput {
    lines: Sender<Message>,
}

#[derive(Debug)]
enum Message {
    Line(Vec<u8>),
    /// Answer once every line queued before this one is written (or dropped).
    Flush(Sender<()>),
}

impl LogOutput {
    /// Starts the writer thread over `output`; the guard, dropped at exit, waits (briefly)
    /// for the lines still queued.
    pub fn start(output: impl Write + Send + 'static) -> (Self, FlushGuard) {
        let (lines, queued) = crossbeam_channel::bounded(LOG_QUEUE_LINES);
        let dropped = log_lines_dropped();
        let spawned = std::thread::Builder::new()
            .name("bullpen-log".to_owned())
            .spawn(move || write_lines(&queued, output, &dropped));
        if spawned.is_err() {
            // No thread, no log: every line is then dropped and counted.
            log_lines_dropped().inc();
        }
        let output = Self { lines };
        let guard = FlushGuard(output.clone());
        (output, guard)
    }

    /// Standard error.
    pub fn stderr() -> (Self, FlushGuard) {
        Self::start(std::io::stderr())
    }
}

fn write_lines(queued: &Receiver<Message>, mut output: impl Write, dropped: &IntCounter) {
    for message in queued {
        match message {
            Message::Line(line) => {
                if output.write_all(&line).is_err() {
                    dropped.inc();
                }
            }
            Message::Flush(done) => {
                let _ = output.flush();
                let _ = done.send(());
            }
        }
    }
}

/// Waits, when dropped, up to a second for the log lines still queued.
#[derive(Debug)]
#[must_use = "dropping the guard at once loses the last log lines at exit"]
pub struct FlushGuard(LogOutput);

impl Drop for FlushGuard {
    fn drop(&mut self) {
        let (done, flushed) = crossbeam_channel::bounded(1);
        if self
            .0
            .lines
            .send_timeout(Message::Flush(done), FLUSH_AT_EXIT)
            .is_ok()
        {
            let _ = flushed.recv_timeout(FLUSH_AT_EXIT);
        }
    }
}

impl Write for LogOutput {
    /// Queues `line` (tracing writes each event whole); never fails, never waits.
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if self.lines.try_send(Message::Line(line.to_vec())).is_err() {
            log_lines_dropped().inc();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogOutput {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading the games")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_chain_prints_every_cause_once() {
        let error = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(Chain(&error).to_string(), "reading the games: disk on fire");
    }
}
