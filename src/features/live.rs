//! The embedded store during a season: the games of the data folder, then the results posted
//! since (replayed from the journal at start), as one [`EmbeddedStore`] behind an `ArcSwap`.
//! Readers take the current store without a lock; a set of results makes a new store and
//! swaps it in, after its journal line is on disk.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use chrono::NaiveDate;

use super::journal::{Journal, JournalError, TornLine};
use super::results::{self, Ingested, PlanError, ResultBody};
use super::store::{EmbeddedStore, StoreError};
use crate::games::{Game, GameId};

#[derive(Debug)]
pub struct LiveStore {
    current: ArcSwap<EmbeddedStore>,
    /// `None` when results are kept in memory only (`features.results_dir` empty). The lock
    /// also makes sets of results apply one at a time.
    journal: Mutex<Option<Journal>>,
}

/// Why a set of results was not applied; nothing of it was.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the results could not be applied: the server is stopping")]
    Interrupted,
}

impl LiveStore {
    /// `store` and then the results the journal in `results_dir` holds, if any; the torn
    /// last line of a crash mid-write, when there was one, is returned to be reported.
    pub fn open(
        store: EmbeddedStore,
        results_dir: Option<&Path>,
    ) -> Result<(Self, Option<TornLine>), JournalError> {
        let Some(dir) = results_dir else {
            return Ok((Self::in_memory(store), None));
        };
        let (journal, replayed) = Journal::open(dir)?;
        // Later sets win for a game given twice, as they did when they were posted.
        let mut latest: HashMap<GameId, Game> = HashMap::new();
        for game in replayed.sets.into_iter().flatten() {
            latest.insert(game.id, game);
        }
        let games: Vec<Game> = latest.into_values().collect();
        let store = if games.is_empty() {
            store
        } else {
            tracing::info!(
                results = games.len(),
                journal = %journal.path().display(),
                "results journal replayed"
            );
            store.with_results(&games)
        };
        let live = Self {
            current: ArcSwap::from_pointee(store),
            journal: Mutex::new(Some(journal)),
        };
        Ok((live, replayed.torn))
    }

    /// Results are applied in memory only: a restart forgets them.
    pub fn in_memory(store: EmbeddedStore) -> Self {
        Self {
            current: ArcSwap::from_pointee(store),
            journal: Mutex::new(None),
        }
    }

    /// The games as they stand; cheap, never blocks.
    pub fn current(&self) -> arc_swap::Guard<Arc<EmbeddedStore>> {
        self.current.load()
    }

    /// Checks `results` against the current games, journals what changes, and swaps in a
    /// store with it. Blocking (the journal's fsync): run off the async workers.
    pub fn ingest(
        &self,
        results: &[ResultBody],
        correct: bool,
        today: NaiveDate,
    ) -> Result<Ingested, IngestError> {
        let mut journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        let store = self.current.load_full();
        let plan = results::plan(&store, results, correct, today)?;
        if plan.changes.is_empty() {
            return Ok(plan.outcome);
        }
        if let Some(journal) = journal.as_mut() {
            journal.append(&plan.changes)?;
        }
        self.current
            .store(Arc::new(store.with_results(&plan.changes)));
        Ok(plan.outcome)
    }
}
