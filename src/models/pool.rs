//! Running one model version: a few sessions called inline for small inputs, and dedicated
//! threads behind a bounded queue for large ones.
//!
//! A single-row tree-model call takes ~10 µs, less than handing it to another thread and
//! back, so calls of up to `inline_max_rows` rows run on the caller's thread, on the first
//! free session of a small pool (`try_lock` round-robin: a busy session is skipped, never
//! waited for). Larger calls, and small ones that find every session busy, go to the
//! dedicated threads through a bounded queue and get their answer through a oneshot. A full
//! queue refuses at once ([`InferenceError::Overloaded`]); a job whose caller has gone is
//! skipped.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use crossbeam_channel::{Sender, TrySendError};
use ort::environment::Environment;
use tokio::sync::oneshot;

use super::onnx::{ModelError, OnnxModel};
use crate::features::FeatureVector;
use crate::monitoring::ModelMetrics;

/// Why a call did not run. Cheap to clone: one failure may answer a whole batch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InferenceError {
    #[error("the inference queue is full")]
    Overloaded,
    #[error("inference failed")]
    Failed(#[source] Arc<ModelError>),
    #[error("the inference threads have stopped")]
    Stopped,
}

fn failed(error: ModelError) -> InferenceError {
    InferenceError::Failed(Arc::new(error))
}

/// How a pool is sized; see `[inference]` in the configuration.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    pub inline_sessions: usize,
    pub inline_max_rows: usize,
    pub threads: usize,
    pub queue_capacity: usize,
    pub intra_threads: usize,
}

struct Job {
    rows: Vec<FeatureVector>,
    queued: Instant,
    reply: oneshot::Sender<Result<Vec<f32>, InferenceError>>,
}

#[derive(Debug)]
pub struct InferencePool {
    inline: Vec<Mutex<OnnxModel>>,
    next: AtomicUsize,
    inline_max_rows: usize,
    queue: Sender<Job>,
    rows_inferred: AtomicU64,
    calls: AtomicU64,
    metrics: ModelMetrics,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("rows", &self.rows.len())
            .finish_non_exhaustive()
    }
}

impl InferencePool {
    /// Opens every session and runs `warmup` through each once, so the first request pays
    /// no start-up cost. Returns when all sessions, inline and threaded, are warm.
    pub fn start(
        environment: &'static Environment,
        dir: &Path,
        options: PoolOptions,
        warmup: FeatureVector,
        metrics: ModelMetrics,
    ) -> Result<Self, ModelError> {
        let open = || -> Result<OnnxModel, ModelError> {
            let mut model = OnnxModel::load(environment, dir, options.intra_threads)?;
            model.predict(&[warmup])?;
            Ok(model)
        };
        let inline = (0..options.inline_sessions.max(1))
            .map(|_| open().map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;

        let (queue, jobs) = crossbeam_channel::bounded::<Job>(options.queue_capacity);
        for index in 0..options.threads.max(1) {
            let model = open()?;
            let jobs = jobs.clone();
            let metrics = metrics.clone();
            thread::Builder::new()
                .name(format!("inference-{index}"))
                .spawn(move || serve_jobs(model, &jobs, &metrics))
                .map_err(|source| ModelError::Thread {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        Ok(Self {
            inline,
            next: AtomicUsize::new(0),
            inline_max_rows: options.inline_max_rows,
            queue,
            rows_inferred: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            metrics,
        })
    }

    /// P(home win) for each row.
    pub async fn predict(&self, rows: Vec<FeatureVector>) -> Result<Vec<f32>, InferenceError> {
        self.count(&rows);
        if rows.len() <= self.inline_max_rows {
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            for offset in 0..self.inline.len() {
                let slot = &self.inline[(start + offset) % self.inline.len()];
                if let Ok(mut model) = slot.try_lock() {
                    let _timer = self.metrics.run.start_timer();
                    return model.predict(&rows).map_err(failed);
                }
            }
        }
        self.queued(rows).await
    }

    /// P(home win) for each row, on a dedicated thread whatever the size: work off the
    /// response path (shadow scoring) never takes a session a request could use.
    pub async fn predict_off_path(
        &self,
        rows: Vec<FeatureVector>,
    ) -> Result<Vec<f32>, InferenceError> {
        self.count(&rows);
        self.queued(rows).await
    }

    fn count(&self, rows: &[FeatureVector]) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.rows_inferred
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
    }

    async fn queued(&self, rows: Vec<FeatureVector>) -> Result<Vec<f32>, InferenceError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send(Job {
                rows,
                queued: Instant::now(),
                reply,
            })
            .map_err(|error| match error {
                TrySendError::Full(_) => InferenceError::Overloaded,
                TrySendError::Disconnected(_) => InferenceError::Stopped,
            })?;
        answer.await.map_err(|_| InferenceError::Stopped)?
    }

    /// Inference calls made so far (one per request or batch, not per row).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn rows_inferred(&self) -> u64 {
        self.rows_inferred.load(Ordering::Relaxed)
    }

    /// Calls waiting for a dedicated thread now.
    pub fn queue_depth(&self) -> usize {
        self.queue.len()
    }

    /// The metric handles of this model version.
    pub fn metrics(&self) -> &ModelMetrics {
        &self.metrics
    }
}

/// The loop of one dedicated thread; it ends when the pool (the last sender) is dropped.
fn serve_jobs(
    mut model: OnnxModel,
    jobs: &crossbeam_channel::Receiver<Job>,
    metrics: &ModelMetrics,
) {
    for job in jobs {
        metrics.queue.observe(job.queued.elapsed().as_secs_f64());
        if job.reply.is_closed() {
            continue; // the caller timed out or went away
        }
        let timer = metrics.run.start_timer();
        let result = model.predict(&job.rows).map_err(failed);
        timer.observe_duration();
        let _ = job.reply.send(result);
    }
}
