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
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::Instant;

use crossbeam_channel::{Sender, TrySendError};
use ort::environment::Environment;
use prometheus::Histogram;
use tokio::sync::oneshot;

use super::onnx::{ModelError, OnnxModel};
use crate::features::FeatureVector;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InferenceError {
    #[error("the inference queue is full")]
    Overloaded,
    #[error("inference failed: {0}")]
    Failed(String),
    #[error("the inference threads have stopped")]
    Stopped,
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

/// Where a pool records how long calls waited for a dedicated thread and how long they ran.
#[derive(Debug, Clone)]
pub struct InferenceTimings {
    pub queue: Histogram,
    pub run: Histogram,
}

#[derive(Debug)]
pub struct InferencePool {
    inline: Vec<Mutex<OnnxModel>>,
    next: AtomicUsize,
    inline_max_rows: usize,
    queue: Sender<Job>,
    rows_inferred: AtomicU64,
    calls: AtomicU64,
    timings: InferenceTimings,
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
        timings: InferenceTimings,
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
            let timings = timings.clone();
            thread::Builder::new()
                .name(format!("inference-{index}"))
                .spawn(move || serve_jobs(model, &jobs, &timings))
                .map_err(|error| ModelError::Onnx {
                    path: dir.to_path_buf(),
                    reason: format!("cannot start an inference thread: {error}"),
                })?;
        }
        Ok(Self {
            inline,
            next: AtomicUsize::new(0),
            inline_max_rows: options.inline_max_rows,
            queue,
            rows_inferred: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            timings,
        })
    }

    /// P(home win) for each row.
    pub async fn predict(&self, rows: Vec<FeatureVector>) -> Result<Vec<f32>, InferenceError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.rows_inferred
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        if rows.len() <= self.inline_max_rows {
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            for offset in 0..self.inline.len() {
                let slot = &self.inline[(start + offset) % self.inline.len()];
                if let Ok(mut model) = slot.try_lock() {
                    let _timer = self.timings.run.start_timer();
                    return model
                        .predict(&rows)
                        .map_err(|error| InferenceError::Failed(error.to_string()));
                }
            }
        }
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
}

/// The loop of one dedicated thread; it ends when the pool (the last sender) is dropped.
fn serve_jobs(
    mut model: OnnxModel,
    jobs: &crossbeam_channel::Receiver<Job>,
    timings: &InferenceTimings,
) {
    for job in jobs {
        timings.queue.observe(job.queued.elapsed().as_secs_f64());
        if job.reply.is_closed() {
            continue; // the caller timed out or went away
        }
        let timer = timings.run.start_timer();
        let result = model
            .predict(&job.rows)
            .map_err(|error| InferenceError::Failed(error.to_string()));
        timer.observe_duration();
        let _ = job.reply.send(result);
    }
}
