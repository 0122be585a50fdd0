//! Which game a request is about.

use chrono::NaiveDate;

use crate::cache::GameKey;
use crate::games::{GameId, TeamCode};

/// A game named by a request: stored (by id) or scheduled (teams and date).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GameRef {
    Stored(GameId),
    Scheduled {
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
    },
}

impl GameRef {
    pub fn cache_key(self) -> GameKey {
        match self {
            Self::Stored(id) => GameKey::Stored(id),
            Self::Scheduled { home, away, date } => GameKey::Scheduled { home, away, date },
        }
    }
}
