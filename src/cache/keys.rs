//! Every Redis key and channel bullpen uses, in one place. Each key type renders as the
//! documented layout under the shared tier's prefix:
//!
//! | key | value |
//! |---|---|
//! | `prediction:{model}:{version}:{game}:{feature_hash}` | P(home win), f32 |
//! | `features:{feature_version}:{game}:{history}` | a game and its feature vector |
//! | `model:{name}:{version}` | the fingerprint of the model file that version was loaded from |
//! | `ratelimit:{identity}` | a credential's GCRA theoretical arrival time (µs) |
//! | channel `invalidate` | key patterns every replica drops from its in-process tier |
//! | channel `routing` | a model whose routing changed |
//! | channel `results` | the earliest date new results changed |
//!
//! `{game}` is a stored game's id, or `AWAY@HOMEyyyymmdd` for a scheduled one (`-n` after it
//! when the request gives the game's number, then `/home/away` starters when it names any,
//! `-` for a side it does not). `{feature_hash}` hashes the features the model reads (its
//! spec's width), so a `v1` model's answer does not move when only the starters do. `{history}` is the digest of every game before
//! the game's date that the features were computed from (`EmbeddedStore::history_before`):
//! a replica that knows a result another does not reads other keys, so features computed
//! before a result are never read after it, whatever pub/sub delivered. The cached values
//! ([`CacheKey`]) name the type they store, so a prediction can never be read back as
//! features.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use chrono::NaiveDate;

use super::codec::Codec;
use super::pattern::KeyPattern;
use crate::features::{FeatureSpec, FeatureVector, GameFeatures, WIDTH};
use crate::games::GameRef;

const PREDICTION: &str = "prediction:";
const FEATURES: &str = "features:";
const MODEL: &str = "model:";
const RATE_LIMIT: &str = "ratelimit:";
const ROUTING: &str = "routing:";

/// The pub/sub channel, under the prefix, on which replicas announce invalidations.
pub const INVALIDATION_CHANNEL: &str = "invalidate";
/// The pub/sub channel on which replicas announce a model's new routing (its name).
pub const ROUTING_CHANNEL: &str = "routing";
/// The pub/sub channel on which replicas announce new results (the earliest changed date).
pub const RESULTS_CHANNEL: &str = "results";

/// The key spaces an invalidation pattern may start with: cached values only (or `*`).
pub(super) const INVALIDATABLE: [&str; 3] = [PREDICTION, FEATURES, "*"];

/// Whether `key` (without the tier's prefix) holds a cached value, the only keys an
/// invalidation may delete: a pattern such as `*` also matches model fingerprints and
/// rate-limit state, which are not the cache's to drop.
pub(super) fn holds_cached_value(key: &str) -> bool {
    key.starts_with(PREDICTION) || key.starts_with(FEATURES)
}

/// The date of the game a rendered feature or prediction key (without the prefix) is about;
/// `None` for any other key.
pub(super) fn game_date(key: &str) -> Option<NaiveDate> {
    let mut parts = key.split(':');
    let game = match parts.next()? {
        "features" => parts.nth(1)?,
        "prediction" => parts.nth(3)?,
        _ => return None,
    };
    // `HOMEyyyymmddN`, or `AWAY@HOMEyyyymmdd` with `-N` when the number was given.
    let home_and_date = game.split_once('@').map_or(game, |(_, home)| home);
    let digits = home_and_date.get(3..11)?;
    NaiveDate::parse_from_str(digits, "%Y%m%d").ok()
}

pub trait CacheKey: Hash + Eq + Clone + fmt::Display + Send + Sync + 'static {
    type Value: Clone + Codec + Send + Sync + 'static;

    /// The game the value is about.
    fn game(&self) -> &GameRef;
}

/// `{game}` of the layout.
struct GameSegment<'a>(&'a GameRef);

impl fmt::Display for GameSegment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            GameRef::Stored(id) => write!(f, "{id}"),
            GameRef::Scheduled {
                home,
                away,
                date,
                number,
                starters,
            } => {
                write!(f, "{away}@{home}{}", date.format("%Y%m%d"))?;
                if let Some(number) = number {
                    write!(f, "-{number}")?;
                }
                if !starters.is_empty() {
                    for starter in [starters.home, starters.away] {
                        match starter {
                            Some(id) => write!(f, "/{id}")?,
                            None => f.write_str("/-")?,
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeatureKey {
    pub version: &'static str,
    pub game: GameRef,
    /// The digest of the games before the game's date the features are computed from.
    pub history: u64,
}

impl fmt::Display for FeatureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{FEATURES}{}:{}:{:016x}",
            self.version,
            GameSegment(&self.game),
            self.history
        )
    }
}

impl CacheKey for FeatureKey {
    type Value = GameFeatures;

    fn game(&self) -> &GameRef {
        &self.game
    }
}

/// A prediction is keyed by the exact features it was made from, so new data for a game can
/// never be answered with an old prediction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PredictionKey {
    pub model: Arc<str>,
    pub version: Arc<str>,
    /// Of the model file (`ServedModel::fingerprint_key`): a version reloaded from another
    /// file never reads what the one before answered, on any replica.
    pub fingerprint: u64,
    pub game: GameRef,
    pub feature_hash: u64,
}

impl PredictionKey {
    /// The hash of the features a model of `spec` reads from `vector`.
    pub fn feature_hash(vector: &FeatureVector, spec: &FeatureSpec) -> u64 {
        let values = vector.of(spec);
        let mut bytes = [0u8; WIDTH * 4];
        for (chunk, value) in bytes.chunks_exact_mut(4).zip(values) {
            chunk.copy_from_slice(&value.to_le_bytes());
        }
        xxhash_rust::xxh3::xxh3_64(&bytes[..values.len() * 4])
    }
}

impl fmt::Display for PredictionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREDICTION}{}:{}:{:016x}:{}:{:016x}",
            self.model,
            self.version,
            self.fingerprint,
            GameSegment(&self.game),
            self.feature_hash
        )
    }
}

impl CacheKey for PredictionKey {
    /// P(home win).
    type Value = f32;

    fn game(&self) -> &GameRef {
        &self.game
    }
}

/// Where a model version's file fingerprint is recorded.
#[derive(Debug, Clone, Copy)]
pub struct ModelFingerprintKey<'a> {
    pub name: &'a str,
    pub version: &'a str,
}

impl fmt::Display for ModelFingerprintKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{MODEL}{}:{}", self.name, self.version)
    }
}

/// Where a model's routing lives (JSON, no expiry): every replica applies it.
#[derive(Debug, Clone, Copy)]
pub struct RoutingKey<'a>(pub &'a str);

impl fmt::Display for RoutingKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ROUTING}{}", self.0)
    }
}

/// Where a credential's rate-limit state lives; `identity` never holds the credential.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitKey<'a>(pub &'a str);

impl fmt::Display for RateLimitKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{RATE_LIMIT}{}", self.0)
    }
}

impl KeyPattern {
    /// Every cached prediction of model `name` version `version`.
    pub fn predictions_of(name: &str, version: &str) -> Result<Self, super::KeyPatternError> {
        format!("{PREDICTION}{name}:{version}:*").parse()
    }

    /// Every cached feature vector.
    pub fn every_feature() -> Self {
        Self::from_layout(format!("{FEATURES}*"))
    }

    /// Every cached prediction.
    pub fn every_prediction() -> Self {
        Self::from_layout(format!("{PREDICTION}*"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::Starters;

    #[test]
    fn keys_render_in_the_documented_layout() {
        let stored = GameRef::Stored("NYA202404050".parse().expect("id"));
        let feature = FeatureKey {
            version: "v1",
            game: stored,
            history: 0xfe,
        };
        assert_eq!(
            feature.to_string(),
            "features:v1:NYA202404050:00000000000000fe"
        );
        let scheduled = GameRef::Scheduled {
            home: "NYA".parse().expect("team"),
            away: "BOS".parse().expect("team"),
            date: "2025-04-05".parse().expect("date"),
            number: None,
            starters: Starters::default(),
        };
        let prediction = PredictionKey {
            model: "home_win".into(),
            version: "1".into(),
            fingerprint: 0x1f,
            game: scheduled,
            feature_hash: 0xabc,
        };
        assert_eq!(
            prediction.to_string(),
            "prediction:home_win:1:000000000000001f:BOS@NYA20250405:0000000000000abc"
        );
        let model = ModelFingerprintKey {
            name: "home_win",
            version: "1",
        };
        assert_eq!(model.to_string(), "model:home_win:1");
        assert_eq!(RateLimitKey("key:00ab").to_string(), "ratelimit:key:00ab");
        let pattern = KeyPattern::predictions_of("home_win", "1").expect("pattern");
        assert!(pattern.matches(&prediction.to_string()));
        assert!(!pattern.matches(&feature.to_string()));
        assert!(KeyPattern::every_feature().matches(&feature.to_string()));
        assert!(KeyPattern::every_prediction().matches(&prediction.to_string()));
        let day = |text: &str| text.parse::<NaiveDate>().ok();
        assert_eq!(game_date(&feature.to_string()), day("2024-04-05"));
        assert_eq!(game_date(&prediction.to_string()), day("2025-04-05"));
        let numbered = FeatureKey {
            game: GameRef::Scheduled {
                home: "NYA".parse().expect("team"),
                away: "BOS".parse().expect("team"),
                date: "2025-04-06".parse().expect("date"),
                number: Some(2),
                starters: Starters {
                    home: None,
                    away: Some("darvy001".parse().expect("pitcher")),
                },
            },
            ..feature
        };
        assert_eq!(
            numbered.to_string(),
            "features:v1:BOS@NYA20250406-2/-/darvy001:00000000000000fe"
        );
        assert_eq!(game_date(&numbered.to_string()), day("2025-04-06"));
        assert_eq!(game_date("ratelimit:key:00ab"), None);
        assert_eq!(game_date("features:v1:nonsense"), None);
    }
}
