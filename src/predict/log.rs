//! The prediction log: every served prediction, written to PostgreSQL behind the response.
//!
//! Handlers hand entries to a bounded channel and never wait. One writer task takes them in
//! batches (up to `batch_size` rows or `flush_interval_ms`, whichever comes first) and
//! writes each batch with one binary `COPY`. A failed write is retried with back-off (up to
//! [`MAX_BACKOFF`]) until PostgreSQL takes it, so a restart or a failover loses nothing
//! while new entries queue behind it; when the queue is full, entries are dropped and counted
//! rather than slowing requests. On shutdown the channel is closed and everything buffered
//! is written before the process exits; a batch still refused after
//! [`SHUTDOWN_ATTEMPTS`] more tries is then counted as failed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::pin_mut;
use prometheus::IntCounter;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_util::sync::CancellationToken;

use crate::db::{DbError, Pool};
use crate::monitoring::Metrics;
use crate::telemetry::Chain;
use crate::validation::{InvalidSetting, at_least_one};

/// `[prediction_log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionLogSettings {
    pub enabled: bool,
    pub capacity: usize,
    pub batch_size: usize,
    pub flush_interval_ms: u64,
}

impl PredictionLogSettings {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        at_least_one(&[
            ("prediction_log.capacity", self.capacity as u64),
            ("prediction_log.batch_size", self.batch_size as u64),
        ])
    }
}

/// One served prediction.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub request_id: String,
    pub predicted_at: DateTime<Utc>,
    pub model_name: Arc<str>,
    pub model_version: Arc<str>,
    pub game_id: Option<String>,
    pub home_team: String,
    pub away_team: String,
    pub game_date: NaiveDate,
    pub feature_hash: u64,
    pub home_win_probability: f32,
    /// Decimal odds `(home, away)` when the request gave odds.
    pub odds: Option<(f64, f64)>,
    pub cached: bool,
    /// The API key (`api_keys.id`) that asked, for keys kept in PostgreSQL.
    pub key_id: Option<i64>,
    /// Made by a shadow version off the response path, never served.
    pub shadow: bool,
}

/// What the log has done since start (exported as metrics).
#[derive(Debug, Clone)]
pub struct LogCounters {
    pub written: IntCounter,
    /// Entries refused because the queue was full.
    pub dropped: IntCounter,
    /// Entries lost because PostgreSQL refused their batch until shutdown ended.
    pub failed: IntCounter,
}

/// The handlers' side: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct PredictionLog {
    sender: mpsc::Sender<LogEntry>,
    counters: Arc<LogCounters>,
}

/// The writer task, kept by the application to flush it on shutdown.
#[derive(Debug)]
pub struct LogWriter {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl PredictionLog {
    /// Starts the writer task on the current runtime.
    pub fn start(
        pool: Pool,
        settings: &PredictionLogSettings,
        metrics: &Metrics,
    ) -> (Self, LogWriter) {
        let (sender, receiver) = mpsc::channel(settings.capacity);
        let counters = Arc::new(LogCounters {
            written: metrics.log_written.clone(),
            dropped: metrics.log_dropped.clone(),
            failed: metrics.log_failed.clone(),
        });
        let shutdown = CancellationToken::new();
        let writer = Writer {
            pool,
            receiver,
            counters: Arc::clone(&counters),
            batch_size: settings.batch_size,
            flush_interval: Duration::from_millis(settings.flush_interval_ms),
        };
        let task = tokio::spawn(writer.run(shutdown.clone()));
        (Self { sender, counters }, LogWriter { shutdown, task })
    }

    /// Queues an entry; when the queue is full the entry is dropped and counted.
    pub fn record(&self, entry: LogEntry) {
        if self.sender.try_send(entry).is_err() {
            self.counters.dropped.inc();
            let dropped = self.counters.dropped.get();
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "prediction log queue full: entries dropped");
            }
        }
    }

    pub fn counters(&self) -> &LogCounters {
        &self.counters
    }
}

impl LogWriter {
    /// Closes the queue, writes everything in it, and waits for the writer to finish.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the prediction log writer failed");
        }
    }
}

struct Writer {
    pool: Pool,
    receiver: mpsc::Receiver<LogEntry>,
    counters: Arc<LogCounters>,
    batch_size: usize,
    flush_interval: Duration,
}

impl Writer {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut batch = Vec::with_capacity(self.batch_size);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                entry = self.receiver.recv() => match entry {
                    Some(entry) => batch.push(entry),
                    None => break,
                },
            }
            let deadline = tokio::time::sleep(self.flush_interval);
            tokio::pin!(deadline);
            while batch.len() < self.batch_size {
                tokio::select! {
                    entry = self.receiver.recv() => match entry {
                        Some(entry) => batch.push(entry),
                        None => break,
                    },
                    () = &mut deadline => break,
                }
            }
            self.write(&mut batch, &shutdown).await;
        }
        // Shutdown: nothing new gets in; everything already queued is written.
        self.receiver.close();
        while let Some(entry) = self.receiver.recv().await {
            batch.push(entry);
            if batch.len() >= self.batch_size {
                self.write(&mut batch, &shutdown).await;
            }
        }
        self.write(&mut batch, &shutdown).await;
    }

    /// Writes and empties `batch`: retried while serving until PostgreSQL takes it; once
    /// shutting down, given [`SHUTDOWN_ATTEMPTS`] more tries before it is counted as lost.
    async fn write(&self, batch: &mut Vec<LogEntry>, shutdown: &CancellationToken) {
        if batch.is_empty() {
            return;
        }
        let mut delay = FIRST_BACKOFF;
        let mut attempt: u32 = 0;
        let mut left_after_shutdown = SHUTDOWN_ATTEMPTS;
        loop {
            attempt += 1;
            let error = match copy(&self.pool, batch).await {
                Ok(()) => {
                    if attempt > 1 {
                        tracing::info!(
                            attempt,
                            rows = batch.len(),
                            "prediction log written after retries"
                        );
                    }
                    self.counters.written.inc_by(batch.len() as u64);
                    batch.clear();
                    return;
                }
                Err(error) => error,
            };
            if shutdown.is_cancelled() {
                left_after_shutdown -= 1;
                if left_after_shutdown == 0 {
                    break;
                }
                delay = delay.min(FIRST_BACKOFF * 4);
            }
            // The first failure, then fewer as the outage lasts.
            if attempt.is_power_of_two() {
                tracing::warn!(error = %Chain(&error), attempt, rows = batch.len(), "prediction log write failed; retrying");
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                // Shutting down: no long sleep before the last tries.
                () = shutdown.cancelled(), if !shutdown.is_cancelled() => {}
            }
            delay = (delay * 2).min(MAX_BACKOFF);
        }
        self.counters.failed.inc_by(batch.len() as u64);
        tracing::error!(
            rows = batch.len(),
            "prediction log batch lost: PostgreSQL refused it through shutdown"
        );
        batch.clear();
    }
}

/// The first wait after a failed write; it doubles with each failure, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Tries a batch still gets once shutdown has begun.
const SHUTDOWN_ATTEMPTS: u32 = 5;

const TYPES: [Type; 15] = [
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::DATE,
    Type::INT8,
    Type::FLOAT4,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::BOOL,
    Type::INT8,
    Type::BOOL,
];

async fn copy(pool: &Pool, batch: &[LogEntry]) -> Result<(), DbError> {
    let client = pool.get().await?;
    let sink = client
        .copy_in(
            "COPY prediction_log (request_id, predicted_at, model_name, model_version, game_id, \
             home_team, away_team, game_date, feature_hash, home_win_probability, odds_home, \
             odds_away, cached, key_id, shadow) FROM STDIN BINARY",
        )
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &TYPES);
    pin_mut!(writer);
    for entry in batch {
        // The hash is stored as the signed 64-bit integer with the same bits.
        let hash = i64::from_ne_bytes(entry.feature_hash.to_ne_bytes());
        let (odds_home, odds_away) = entry.odds.unzip();
        writer
            .as_mut()
            .write(&[
                &entry.request_id,
                &entry.predicted_at,
                &entry.model_name.as_ref(),
                &entry.model_version.as_ref(),
                &entry.game_id,
                &entry.home_team,
                &entry.away_team,
                &entry.game_date,
                &hash,
                &entry.home_win_probability,
                &odds_home,
                &odds_away,
                &entry.cached,
                &entry.key_id,
                &entry.shadow,
            ])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}
