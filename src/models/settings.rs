//! `[models]` and `[inference]`: where models are, which answers by default, and how each
//! version runs.

use std::path::PathBuf;

use serde::Deserialize;

use super::pool::{Batching, PoolOptions};
use super::registry::ModelRef;
use crate::validation::{InvalidSetting, at_least_one};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    pub dir: PathBuf,
    /// `name` (its newest version) or `name@version`.
    pub default: ModelRef,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferenceSettings {
    /// Empty means: search the usual places (see `models::runtime`).
    pub ort_library: PathBuf,
    pub intra_threads: usize,
    pub inline_max_rows: usize,
    pub threads: usize,
    pub queue_capacity: usize,
    /// Dynamic batching of single uncached rows: `off`, `worker` or `shared`.
    pub batching: Batching,
    /// How long a batch waits for more rows, in microseconds; 0 turns batching off.
    pub batch_wait_us: u64,
    pub batch_max_rows: usize,
}

impl InferenceSettings {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        at_least_one(&[
            ("inference.intra_threads", self.intra_threads as u64),
            ("inference.threads", self.threads as u64),
            ("inference.queue_capacity", self.queue_capacity as u64),
            ("inference.batch_max_rows", self.batch_max_rows as u64),
        ])
    }

    /// How each version's pool is sized, with `inline_sessions` sessions for inline calls
    /// (one per HTTP worker).
    pub fn pool(&self, inline_sessions: usize) -> PoolOptions {
        PoolOptions {
            inline_sessions,
            inline_max_rows: self.inline_max_rows,
            threads: self.threads,
            queue_capacity: self.queue_capacity,
            intra_threads: self.intra_threads,
            batching: self.batching,
            batch_wait: std::time::Duration::from_micros(self.batch_wait_us),
            batch_max_rows: self.batch_max_rows,
        }
    }
}
