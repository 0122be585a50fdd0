//! The embedded feature store: every game in the data folder and its feature vector, built
//! in memory at start.
//!
//! A scheduled game after the data is answered from the final history in constant time. One
//! inside the data needs the history as of its date: the build keeps a copy of the history
//! every [`CHECKPOINT_DAYS`] game days, so a lookup replays at most that many days of games
//! (tens of microseconds) instead of every season before it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;

use super::history::History;
use super::lookup::GameFeatures;
use super::spec::FeatureVector;
use crate::db::DbError;
use crate::games::{self, DataError, Game, GameId, TeamCode};

/// Game days between two kept histories: ~400 copies of ~30 team states for 2010–2024.
const CHECKPOINT_DAYS: usize = 7;

#[derive(Debug)]
pub struct EmbeddedStore {
    games: Vec<Game>,
    vectors: Vec<FeatureVector>,
    index: HashMap<GameId, usize>,
    /// `(i, history)`: the history of `games[..i]`, where `games[i]` opens a game day.
    checkpoints: Vec<(usize, History)>,
    latest: History,
    schedule_horizon_days: u32,
}

/// How far after the last game in the data a scheduled game may be priced, unless
/// `features.schedule_horizon_days` says otherwise: to about the end of the next season.
pub const DEFAULT_SCHEDULE_HORIZON_DAYS: u32 = 400;

/// Where feature vectors come from: the embedded store, or PostgreSQL. Both answer with
/// the same vectors for the same games (a test compares them over a whole season).
pub trait FeatureStore {
    /// A stored game and its features; `None` when the store does not hold it.
    fn game(
        &self,
        id: GameId,
    ) -> impl Future<Output = Result<Option<GameFeatures>, StoreError>> + Send;

    /// Features of a game between `home` and `away` on `date`, from the games before it.
    fn scheduled(
        &self,
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
    ) -> impl Future<Output = Result<FeatureVector, StoreError>> + Send;
}

/// Why a store could not answer. Cheap to clone (caches hand one error to every waiter).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// The store could not be read (PostgreSQL down or slow): it passes.
    #[error("the feature store is unavailable")]
    Unavailable(#[source] Arc<DbError>),
    /// The store holds data that cannot be decoded: it stays until someone fixes it.
    #[error("the feature store holds data bullpen cannot read")]
    Corrupt(#[source] Arc<DbError>),
}

impl From<DbError> for StoreError {
    fn from(error: DbError) -> Self {
        if error.is_corrupt() {
            Self::Corrupt(Arc::new(error))
        } else {
            Self::Unavailable(Arc::new(error))
        }
    }
}

/// Why features for a scheduled game cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("team `{0}` has no games in the data")]
    UnknownTeam(TeamCode),
    #[error("a team cannot play itself ({0})")]
    SameTeam(TeamCode),
    #[error("{date} is not after the first day in the data ({first})")]
    BeforeData { date: NaiveDate, first: NaiveDate },
    #[error(
        "{date} is more than {days} days after the last game in the data ({last}): its \
         features would be stale"
    )]
    AfterHorizon {
        date: NaiveDate,
        last: NaiveDate,
        days: u32,
    },
}

/// The first and last game days of a store, and how far after the last one a scheduled
/// game may be.
#[derive(Debug, Clone, Copy)]
pub(super) struct DataSpan {
    pub first: Option<NaiveDate>,
    pub last: Option<NaiveDate>,
    pub horizon_days: u32,
}

impl EmbeddedStore {
    /// Loads every season file in `dir` and computes all feature vectors; `progress` hears
    /// how many games each step finished.
    pub fn load(dir: &Path, progress: impl FnMut(usize)) -> Result<Self, DataError> {
        Ok(Self::from_games(games::load_dir(dir)?, progress))
    }

    /// Builds the store from games sorted by date.
    pub fn from_games(games: Vec<Game>, mut progress: impl FnMut(usize)) -> Self {
        let mut history = History::new();
        let mut vectors = Vec::with_capacity(games.len());
        let mut checkpoints = Vec::new();
        let mut start = 0;
        for (day_number, day) in games.chunk_by(|a, b| a.date == b.date).enumerate() {
            if day_number % CHECKPOINT_DAYS == 0 {
                checkpoints.push((start, history.clone()));
            }
            // Every game of the day is read before any of them is recorded.
            for game in day {
                vectors.push(history.features(game.home.team, game.away.team, game.date));
            }
            for game in day {
                history.record(game);
            }
            start += day.len();
            progress(day.len());
        }
        let index = games
            .iter()
            .enumerate()
            .map(|(i, game)| (game.id, i))
            .collect();
        Self {
            games,
            vectors,
            index,
            checkpoints,
            latest: history,
            schedule_horizon_days: DEFAULT_SCHEDULE_HORIZON_DAYS,
        }
    }

    /// Scheduled games more than `days` after the last game in the data are refused.
    #[must_use]
    pub fn with_schedule_horizon(mut self, days: u32) -> Self {
        self.schedule_horizon_days = days;
        self
    }

    pub fn games(&self) -> &[Game] {
        &self.games
    }

    pub fn vectors(&self) -> &[FeatureVector] {
        &self.vectors
    }

    /// A stored game and its features.
    pub fn game(&self, id: GameId) -> Option<(&Game, &FeatureVector)> {
        self.index
            .get(&id)
            .map(|&i| (&self.games[i], &self.vectors[i]))
    }

    /// Features of a game between `home` and `away` on `date`, from the games before it.
    pub fn scheduled_features(
        &self,
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
    ) -> Result<FeatureVector, ScheduleError> {
        let span = DataSpan {
            first: self.games.first().map(|game| game.date),
            last: self.games.last().map(|game| game.date),
            horizon_days: self.schedule_horizon_days,
        };
        check_schedule(|team| self.latest.knows(team), span, home, away, date)?;
        if self.latest.last_date().is_none_or(|last| last < date) {
            return Ok(self.latest.features(home, away, date));
        }
        let end = self.games.partition_point(|game| game.date < date);
        let (start, checkpoint) = self
            .checkpoints
            .iter()
            .rev()
            .find(|(start, _)| *start <= end)
            .expect("the first checkpoint starts at game 0; this is a bug");
        let mut history = checkpoint.clone();
        for game in &self.games[*start..end] {
            history.record(game);
        }
        Ok(history.features(home, away, date))
    }
}

impl FeatureStore for EmbeddedStore {
    async fn game(&self, id: GameId) -> Result<Option<GameFeatures>, StoreError> {
        Ok(EmbeddedStore::game(self, id).map(|(game, vector)| GameFeatures::stored(game, *vector)))
    }

    async fn scheduled(
        &self,
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
    ) -> Result<FeatureVector, StoreError> {
        Ok(self.scheduled_features(home, away, date)?)
    }
}

/// Checks that need only the list of known franchises and the span of the data, the same for
/// every store.
pub(super) fn check_schedule(
    knows: impl Fn(TeamCode) -> bool,
    span: DataSpan,
    home: TeamCode,
    away: TeamCode,
    date: NaiveDate,
) -> Result<(), ScheduleError> {
    if home.franchise() == away.franchise() {
        return Err(ScheduleError::SameTeam(home));
    }
    for team in [home, away] {
        if !knows(team) {
            return Err(ScheduleError::UnknownTeam(team));
        }
    }
    if let Some(first) = span.first
        && date <= first
    {
        return Err(ScheduleError::BeforeData { date, first });
    }
    // A horizon past chrono's last date is no limit.
    if let Some(last) = span.last
        && let Some(horizon) = last.checked_add_days(chrono::Days::new(span.horizon_days.into()))
        && date > horizon
    {
        return Err(ScheduleError::AfterHorizon {
            date,
            last,
            days: span.horizon_days,
        });
    }
    Ok(())
}
