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
//!
//! Dynamic batching ([`InferencePool::predict_row`]): single rows that miss the cache at the
//! same moment can be scored as one call, as Triton's dynamic batcher does. The first row
//! opens a batch and a flusher task that waits up to `inference.batch_wait_us` (yielding, so
//! the other requests ready on that worker can join) or until `batch_max_rows` rows, then
//! makes one call and hands each row its probability. `batching = "worker"` keeps a batch per
//! worker thread (no cross-thread hop: the flusher runs on the worker that opened it);
//! `"shared"` has one batch for every thread.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use ort::environment::Environment;
use tokio::sync::oneshot;

use super::onnx::{ModelError, OnnxModel};
use crate::features::{FeatureSpec, FeatureVector};
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
    pub batching: Batching,
    /// How long a batch waits for more rows; zero turns batching off.
    pub batch_wait: Duration,
    pub batch_max_rows: usize,
}

/// Where single uncached rows wait to be scored together (`inference.batching`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Batching {
    /// Each row is its own call.
    Off,
    /// One batch per worker thread, flushed on that thread.
    Worker,
    /// One batch for every thread.
    Shared,
}

/// Rows waiting to be scored as one call, and where each answer goes.
struct Batch {
    rows: Vec<FeatureVector>,
    replies: Vec<oneshot::Sender<Result<f32, InferenceError>>>,
}

/// The open batches: one per worker thread, or one (`None`) shared.
type Batches = Mutex<Vec<(Option<ThreadId>, Batch)>>;

struct Job {
    rows: Vec<FeatureVector>,
    queued: Instant,
    reply: oneshot::Sender<Result<Vec<f32>, InferenceError>>,
}

#[derive(Debug)]
pub struct InferencePool {
    /// The spec whose features the model reads.
    spec: FeatureSpec,
    inline: Vec<Mutex<OnnxModel>>,
    next: AtomicUsize,
    inline_max_rows: usize,
    queue: Sender<Job>,
    rows_inferred: AtomicU64,
    calls: AtomicU64,
    metrics: ModelMetrics,
    batching: Batching,
    batch_wait: Duration,
    batch_max_rows: usize,
    batches: Batches,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("rows", &self.rows.len())
            .finish_non_exhaustive()
    }
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
        let spec = inline
            .first()
            .map(|model| model.lock().unwrap_or_else(PoisonError::into_inner).spec())
            .expect("at least one inline session is opened; this is a bug");
        Ok(Self {
            spec,
            inline,
            next: AtomicUsize::new(0),
            inline_max_rows: options.inline_max_rows,
            queue,
            rows_inferred: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            metrics,
            batching: if options.batch_wait.is_zero() || options.batch_max_rows < 2 {
                Batching::Off
            } else {
                options.batching
            },
            batch_wait: options.batch_wait,
            batch_max_rows: options.batch_max_rows,
            batches: Mutex::default(),
        })
    }

    /// P(home win) for one row, scored together with the rows that arrive while it waits
    /// (dynamic batching), or alone when batching is off.
    pub async fn predict_row(self: &Arc<Self>, row: FeatureVector) -> Result<f32, InferenceError> {
        let key = match self.batching {
            Batching::Off => return Ok(self.predict(vec![row]).await?[0]),
            Batching::Worker => Some(thread::current().id()),
            Batching::Shared => None,
        };
        let (reply, answer) = oneshot::channel();
        let (opened, full) = {
            let mut batches = self.batches.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(index) = batches.iter().position(|(open, _)| *open == key) {
                let batch = &mut batches[index].1;
                batch.rows.push(row);
                batch.replies.push(reply);
                let full = batch.rows.len() >= self.batch_max_rows;
                (false, full.then(|| batches.swap_remove(index).1))
            } else {
                let batch = Batch {
                    rows: vec![row],
                    replies: vec![reply],
                };
                batches.push((key, batch));
                (true, None)
            }
        };
        if let Some(batch) = full {
            self.run_batch(batch).await;
        } else if opened {
            // On an actix worker (a current-thread runtime) the flusher runs on this thread.
            tokio::spawn(Arc::clone(self).flush_after_wait(key));
        }
        answer.await.map_err(|_| InferenceError::Stopped)?
    }

    /// Waits up to `batch_wait` (yielding, so requests ready on this thread can join), then
    /// scores the batch of `key` unless a full batch already went.
    async fn flush_after_wait(self: Arc<Self>, key: Option<ThreadId>) {
        let deadline = Instant::now() + self.batch_wait;
        while Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        let batch = {
            let mut batches = self.batches.lock().unwrap_or_else(PoisonError::into_inner);
            batches
                .iter()
                .position(|(open, _)| *open == key)
                .map(|index| batches.swap_remove(index).1)
        };
        if let Some(batch) = batch {
            self.run_batch(batch).await;
        }
    }

    /// One call for every row of `batch`; each waiting request gets its row's answer.
    async fn run_batch(&self, batch: Batch) {
        match self.predict(batch.rows).await {
            Ok(probabilities) => {
                for (reply, probability) in batch.replies.into_iter().zip(probabilities) {
                    let _ = reply.send(Ok(probability));
                }
            }
            Err(error) => {
                for reply in batch.replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
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

    /// The spec whose features the model reads.
    pub fn spec(&self) -> FeatureSpec {
        self.spec
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
