//! Which game a request is about, and that game with its features.

use chrono::NaiveDate;
use serde::Serialize;

use crate::cache::GameKey;
use crate::features::FeatureVector;
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

/// The game as answers describe it; `game_id` is absent for a scheduled game.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GameInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub game_id: Option<GameId>,
    pub home: TeamCode,
    pub away: TeamCode,
    pub date: NaiveDate,
}

/// A game and the feature vector a model sees for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GameFeatures {
    pub game: GameInfo,
    pub vector: FeatureVector,
}
