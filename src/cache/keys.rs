//! Cache keys as types. Each renders as the product's key layout
//! (`features:{feature_version}:{game}`, `prediction:{model}:{version}:{game}:{feature_hash}`)
//! and names the value type stored under it.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use chrono::NaiveDate;

use super::codec::Codec;
use crate::features::GameFeatures;
use crate::features::{FEATURE_COUNT, FeatureVector};
use crate::games::{GameId, TeamCode};

pub trait CacheKey: Hash + Eq + Clone + fmt::Display + Send + Sync + 'static {
    type Value: Clone + Codec + Send + Sync + 'static;
}

/// A game as a cache key: a stored game by id, a scheduled one as `AWAY@HOMEyyyymmdd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GameKey {
    Stored(GameId),
    Scheduled {
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
    },
}

impl fmt::Display for GameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stored(id) => write!(f, "{id}"),
            Self::Scheduled { home, away, date } => {
                write!(f, "{away}@{home}{}", date.format("%Y%m%d"))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeatureKey {
    pub version: &'static str,
    pub game: GameKey,
}

impl fmt::Display for FeatureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "features:{}:{}", self.version, self.game)
    }
}

impl CacheKey for FeatureKey {
    type Value = GameFeatures;
}

/// A prediction is keyed by the exact features it was made from, so new data for a game can
/// never be answered with an old prediction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PredictionKey {
    pub model: Arc<str>,
    pub version: Arc<str>,
    pub game: GameKey,
    pub feature_hash: u64,
}

impl PredictionKey {
    pub fn feature_hash(vector: &FeatureVector) -> u64 {
        let mut bytes = [0u8; FEATURE_COUNT * 4];
        for (chunk, value) in bytes.chunks_exact_mut(4).zip(vector.values()) {
            chunk.copy_from_slice(&value.to_le_bytes());
        }
        xxhash_rust::xxh3::xxh3_64(&bytes)
    }
}

impl fmt::Display for PredictionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "prediction:{}:{}:{}:{:016x}",
            self.model, self.version, self.game, self.feature_hash
        )
    }
}

impl CacheKey for PredictionKey {
    /// P(home win).
    type Value = f32;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_render_in_the_documented_layout() {
        let stored = GameKey::Stored("NYA202404050".parse().expect("id"));
        let feature = FeatureKey {
            version: "v1",
            game: stored,
        };
        assert_eq!(feature.to_string(), "features:v1:NYA202404050");
        let scheduled = GameKey::Scheduled {
            home: "NYA".parse().expect("team"),
            away: "BOS".parse().expect("team"),
            date: "2025-04-05".parse().expect("date"),
        };
        let prediction = PredictionKey {
            model: "home_win".into(),
            version: "1".into(),
            game: scheduled,
            feature_hash: 0xabc,
        };
        assert_eq!(
            prediction.to_string(),
            "prediction:home_win:1:BOS@NYA20250405:0000000000000abc"
        );
    }
}
