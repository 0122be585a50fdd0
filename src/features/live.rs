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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::features::results::LineBody;

    const TEAMS: [&str; 5] = ["BAL", "BOS", "NYA", "TOR", "ZZZ"];

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 4, d).expect("a date")
    }

    /// Three days of games among four teams: the data a journal is replayed onto.
    fn base() -> EmbeddedStore {
        let games = (1..=3)
            .flat_map(|d| {
                [("BAL", "BOS"), ("NYA", "TOR")].map(|(home, away)| {
                    ResultBody {
                        game_id: None,
                        date: Some(day(d).to_string()),
                        number: Some(0),
                        phase: None,
                        home: Some(line(home, [4, 8, 3, 1, 7], 36)),
                        away: Some(line(away, [2, 6, 2, 0, 9], 34)),
                    }
                    .to_game("base")
                    .expect("a valid game")
                })
            })
            .collect();
        EmbeddedStore::from_games(games, |_| {})
    }

    fn line(team: &str, [runs, hits, walks, home_runs, strikeouts]: [i64; 5], bf: i64) -> LineBody {
        LineBody {
            team: Some(team.to_owned()),
            runs: Some(runs),
            hits: Some(hits),
            walks: Some(walks),
            home_runs: Some(home_runs),
            strikeouts: Some(strikeouts),
            pitches: None,
            batters_faced: Some(bf),
            starter: None,
        }
    }

    /// Results as a hostile or careless client sends them: valid and invalid, by id (any
    /// last digit) or by date and number, on days in the data, after it and after today.
    fn result() -> impl Strategy<Value = ResultBody> {
        // Mostly plausible lines and numbers, so that most posts are accepted.
        let counts = (0i64..9, 5i64..12, 0i64..6, 0i64..3, 3i64..12).prop_map(
            |(runs, hits, walks, home_runs, strikeouts)| [runs, hits, walks, home_runs, strikeouts],
        );
        let side = (0..TEAMS.len(), counts, 26i64..45);
        (
            (1u32..=10, prop_oneof![0u8..=2, 0u8..=9], any::<bool>()),
            prop_oneof![Just(None), prop::option::of(-1i64..=3)],
            prop::option::of(prop::sample::select(vec![
                "regular",
                "postseason",
                "spring",
            ])),
            side.clone(),
            side,
        )
            .prop_map(|((d, digit, by_id), number, phase, home, away)| {
                let (home_team, away_team) = (TEAMS[home.0], TEAMS[away.0]);
                ResultBody {
                    game_id: by_id
                        .then(|| format!("{home_team}{}{digit}", day(d).format("%Y%m%d"))),
                    date: (!by_id).then(|| day(d).to_string()),
                    number,
                    phase: phase.map(str::to_owned),
                    home: Some(line(home_team, home.1, home.2)),
                    away: Some(line(away_team, away.1, away.2)),
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Whatever is posted, what was acknowledged is exactly what a restart replays: the
        /// same games and features, no line judged torn, and the journal opens.
        #[test]
        fn what_is_acknowledged_is_what_a_restart_replays(
            posts in prop::collection::vec(
                (prop::collection::vec(result(), 1..4), any::<bool>()), 1..12),
        ) {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let (live, torn) = LiveStore::open(base(), Some(dir.path())).expect("opens");
            prop_assert!(torn.is_none());
            let mut acknowledged = 0;
            for (results, correct) in &posts {
                if live.ingest(results, *correct, day(8)).is_ok() {
                    acknowledged += 1;
                }
            }
            let (restarted, torn) =
                LiveStore::open(base(), Some(dir.path())).expect("the journal replays");
            prop_assert!(torn.is_none(), "a line judged torn after {acknowledged} posts");
            prop_assert!(!dir.path().join("results.jsonl.torn").exists());
            let (before, after) = (live.current(), restarted.current());
            prop_assert_eq!(before.games(), after.games());
            prop_assert_eq!(before.vectors(), after.vectors());
        }

        /// A result the validator accepts is written back (as the journal writes it) to the
        /// same game: the number of an id is checked as a number sent alone is.
        #[test]
        fn an_accepted_result_reads_back_as_the_same_game(body in result()) {
            if let Ok(game) = body.to_game("results[0]") {
                prop_assert_eq!(ResultBody::of(&game).to_game("journal"), Ok(game));
            }
        }
    }
}
