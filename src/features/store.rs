//! The embedded feature store: every game in the data folder and its feature vector, built
//! in memory at start. Scheduled games after the data are answered from the final history in
//! constant time; a date inside the data replays the games before it.

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDate;

use super::history::{self, History};
use super::spec::FeatureVector;
use crate::games::{self, DataError, Game, GameId, TeamCode};

#[derive(Debug)]
pub struct EmbeddedStore {
    games: Vec<Game>,
    vectors: Vec<FeatureVector>,
    index: HashMap<GameId, usize>,
    latest: History,
}

/// Why features for a scheduled game cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("team `{0}` has no games in the data")]
    UnknownTeam(TeamCode),
    #[error("a team cannot play itself ({0})")]
    SameTeam(TeamCode),
    #[error("{date} is before the first game in the data ({first})")]
    BeforeData { date: NaiveDate, first: NaiveDate },
}

impl EmbeddedStore {
    /// Loads every season file in `dir` and computes all feature vectors.
    pub fn load(dir: &Path, progress: impl FnMut(usize)) -> Result<Self, DataError> {
        Ok(Self::from_games(games::load_dir(dir)?, progress))
    }

    /// Builds the store from games sorted by date.
    pub fn from_games(games: Vec<Game>, progress: impl FnMut(usize)) -> Self {
        let vectors = history::compute_all(&games, progress);
        let index = games
            .iter()
            .enumerate()
            .map(|(i, game)| (game.id, i))
            .collect();
        let mut latest = History::new();
        for game in &games {
            latest.record(game);
        }
        Self {
            games,
            vectors,
            index,
            latest,
        }
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
    pub fn scheduled(
        &self,
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
    ) -> Result<FeatureVector, ScheduleError> {
        if home.franchise() == away.franchise() {
            return Err(ScheduleError::SameTeam(home));
        }
        for team in [home, away] {
            if !self.latest.knows(team) {
                return Err(ScheduleError::UnknownTeam(team));
            }
        }
        let first = self.games.first().map(|game| game.date);
        if let Some(first) = first.filter(|first| date <= *first) {
            return Err(ScheduleError::BeforeData { date, first });
        }
        if self.latest.last_date().is_none_or(|last| last < date) {
            return Ok(self.latest.features(home, away, date));
        }
        let before = self.games.partition_point(|game| game.date < date);
        Ok(History::replay(&self.games[..before], date).features(home, away, date))
    }
}
