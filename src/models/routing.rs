//! Which version of a model answers a request that names none.
//!
//! A model's routing gives each version an integer weight (summing to 100). Every game falls
//! in one of 100 buckets (`GameRef::bucket`, a fixed hash), and versions take consecutive
//! ranges of buckets in version order: with `{"1": 90, "2": 10}` version 1 serves buckets
//! 0–89 and version 2 buckets 90–99. So a game gets the same version on every replica and
//! every retry, and raising the newer version's weight only adds games to it.
//!
//! Shadow versions score the same requests off the response path; the guard (see
//! `predict::rollout`) may take a canary's weight away, recorded here as a [`Trip`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::registry::compare_versions;
use crate::games::BUCKETS;

/// What an operator sets (`PUT /api/v1/admin/models/{name}/routing`, whose body the HTTP
/// layer checks field by field), and what replicas share through Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoutingSpec {
    /// Version → share of the buckets, integers summing to 100.
    pub weights: BTreeMap<String, u8>,
    /// Versions that score every routed request off the response path.
    #[serde(default)]
    pub shadow: Vec<String>,
    /// When set, a canary that does worse than the stable version is rolled back.
    #[serde(default)]
    pub guard: Option<GuardSpec>,
}

/// The rollback guard of one model: the limits a canary (a version with weight, not the
/// largest) must hold over the last `window_secs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GuardSpec {
    /// Seconds of history judged: at least 1, at most a day.
    #[schema(minimum = 1, maximum = 86400)]
    pub window_secs: u64,
    /// Share of the canary's requests answered 5xx.
    #[schema(minimum = 0, maximum = 1)]
    pub max_error_rate: f64,
    /// The canary's p95 latency.
    #[schema(exclusive_minimum = 0)]
    pub max_p95_ms: f64,
    /// How much worse (higher) the canary's Brier score may be than the stable version's on
    /// the same games before it is rolled back...
    #[schema(minimum = 0, maximum = 1)]
    pub brier_margin: f64,
    /// ...once at least this many of those games have results.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub min_games: usize,
}

/// The longest window the guard judges (a day): a larger one would never forget a bad spell.
const MAX_WINDOW_SECS: u64 = 86_400;
/// More games than any season has: a larger minimum would never trip.
const MAX_MIN_GAMES: usize = 1_000_000;

impl Default for GuardSpec {
    fn default() -> Self {
        Self {
            window_secs: 300,
            max_error_rate: 0.01,
            max_p95_ms: 500.0,
            brier_margin: 0.005,
            min_games: 500,
        }
    }
}

/// A rollback the guard made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Trip {
    pub version: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// A model's routing as every replica holds it: the spec, what the guard did, and a
/// revision that only grows, so a replica ignores a change older than the one it has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoutingState {
    #[serde(flatten)]
    pub spec: RoutingSpec,
    #[serde(default)]
    pub trips: Vec<Trip>,
    pub revision: u64,
    pub updated_at: DateTime<Utc>,
}

impl RoutingState {
    /// All traffic to `version`, nothing else.
    pub fn only(version: &str) -> Self {
        Self {
            spec: RoutingSpec {
                weights: BTreeMap::from([(version.to_owned(), 100)]),
                shadow: Vec::new(),
                guard: None,
            },
            trips: Vec::new(),
            revision: 0,
            updated_at: Utc::now(),
        }
    }

    /// The next state: `spec` replaces this one's; trips are kept.
    #[must_use]
    pub fn next(&self, spec: RoutingSpec) -> Self {
        Self {
            spec,
            trips: self.trips.clone(),
            revision: self.revision + 1,
            updated_at: Utc::now(),
        }
    }

    /// The version with the most weight (the oldest among equals: at 50/50 the newer one is
    /// still the canary): the stable one.
    pub fn stable(&self) -> Option<&str> {
        self.weighted()
            .max_by(|(a, wa), (b, wb)| wa.cmp(wb).then_with(|| compare_versions(b, a)))
            .map(|(version, _)| version)
    }

    /// The versions with weight above zero, in version order.
    pub fn weighted(&self) -> impl Iterator<Item = (&str, u8)> {
        let mut versions: Vec<(&str, u8)> = self
            .spec
            .weights
            .iter()
            .filter(|(_, weight)| **weight > 0)
            .map(|(version, weight)| (version.as_str(), *weight))
            .collect();
        versions.sort_by(|(a, _), (b, _)| compare_versions(a, b));
        versions.into_iter()
    }

    /// Whether `version` takes part in routing (weight or shadow).
    pub fn uses(&self, version: &str) -> bool {
        self.spec.weights.get(version).is_some_and(|w| *w > 0)
            || self.spec.shadow.iter().any(|v| v == version)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("the weights sum to {0}; they must sum to 100")]
    WeightsSum(u32),
    #[error("version `{0}` is not loaded; load it first")]
    NotLoaded(String),
    #[error("version `{0}` cannot both carry weight and run in shadow")]
    ShadowWithWeight(String),
    #[error("version `{0}` is named twice in shadow")]
    ShadowTwice(String),
    #[error("guard.{field}: {reason}")]
    Guard {
        field: &'static str,
        reason: &'static str,
    },
}

impl RoutingSpec {
    /// Checks the spec against the versions loaded for its model.
    pub fn validate(&self, loaded: &[&str]) -> Result<(), RoutingError> {
        let sum: u32 = self.weights.values().map(|w| u32::from(*w)).sum();
        if sum != 100 {
            return Err(RoutingError::WeightsSum(sum));
        }
        for version in self.weights.keys().chain(&self.shadow) {
            if !loaded.contains(&version.as_str()) {
                return Err(RoutingError::NotLoaded(version.clone()));
            }
        }
        if let Some(version) = self
            .shadow
            .iter()
            .find(|v| self.weights.get(*v).is_some_and(|w| *w > 0))
        {
            return Err(RoutingError::ShadowWithWeight(version.clone()));
        }
        if let Some((_, version)) = self
            .shadow
            .iter()
            .enumerate()
            .find(|(at, v)| self.shadow[..*at].contains(v))
        {
            return Err(RoutingError::ShadowTwice(version.clone()));
        }
        if let Some(guard) = &self.guard {
            guard.validate()?;
        }
        Ok(())
    }
}

impl GuardSpec {
    fn validate(&self) -> Result<(), RoutingError> {
        let fail = |field, reason| Err(RoutingError::Guard { field, reason });
        if !(1..=MAX_WINDOW_SECS).contains(&self.window_secs) {
            return fail("window_secs", "must be from 1 to 86400 (a day)");
        }
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return fail("max_error_rate", "must be between 0 and 1");
        }
        if !(self.max_p95_ms.is_finite() && self.max_p95_ms > 0.0) {
            return fail("max_p95_ms", "must be a positive number");
        }
        if !(0.0..=1.0).contains(&self.brier_margin) {
            return fail("brier_margin", "must be between 0 and 1");
        }
        if !(1..=MAX_MIN_GAMES).contains(&self.min_games) {
            return fail("min_games", "must be from 1 to 1000000");
        }
        Ok(())
    }
}

/// For each bucket, the index (into the weighted versions in version order) of the version
/// that serves it.
pub fn bucket_table(state: &RoutingState) -> [u8; BUCKETS as usize] {
    let mut table = [0u8; BUCKETS as usize];
    let mut start = 0usize;
    for (index, (_, weight)) in state.weighted().enumerate() {
        let end = (start + usize::from(weight)).min(table.len());
        let index = u8::try_from(index).unwrap_or(u8::MAX);
        table[start..end].fill(index);
        start = end;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(weights: &[(&str, u8)]) -> RoutingState {
        RoutingState::only("1").next(RoutingSpec {
            weights: weights.iter().map(|(v, w)| ((*v).to_owned(), *w)).collect(),
            shadow: Vec::new(),
            guard: None,
        })
    }

    #[test]
    fn versions_take_bucket_ranges_in_version_order() {
        let table = bucket_table(&state(&[("10", 10), ("9", 90)]));
        assert!(table[..90].iter().all(|&i| i == 0), "version 9 first");
        assert!(table[90..].iter().all(|&i| i == 1), "then version 10");
        assert_eq!(state(&[("10", 10), ("9", 90)]).stable(), Some("9"));
        assert_eq!(state(&[("1", 50), ("2", 50)]).stable(), Some("1"));
        assert_eq!(state(&[("1", 25), ("2", 75)]).stable(), Some("2"));
    }

    #[test]
    fn raising_the_newer_weight_only_adds_buckets_to_it() {
        let mut before = bucket_table(&state(&[("1", 90), ("2", 10)]));
        for weight in [25u8, 50, 75, 100] {
            let after = bucket_table(&state(&[("1", 100 - weight), ("2", weight)]));
            // At 100 version 2 is the only weighted version, index 0.
            let v2_after = u8::from(weight != 100);
            for (bucket, (was, is)) in before.iter().zip(&after).enumerate() {
                if *was == 1 {
                    assert_eq!(*is, v2_after, "bucket {bucket} left version 2 at {weight}");
                }
            }
            before = after;
        }
    }

    #[test]
    fn specs_are_checked_against_what_is_loaded() {
        let spec = |weights: &[(&str, u8)], shadow: &[&str]| RoutingSpec {
            weights: weights.iter().map(|(v, w)| ((*v).to_owned(), *w)).collect(),
            shadow: shadow.iter().map(|v| (*v).to_owned()).collect(),
            guard: None,
        };
        let loaded = ["1", "2", "3"];
        assert_eq!(
            spec(&[("1", 90), ("2", 10)], &["3"]).validate(&loaded),
            Ok(())
        );
        assert_eq!(
            spec(&[("1", 90), ("2", 20)], &[]).validate(&loaded),
            Err(RoutingError::WeightsSum(110))
        );
        assert_eq!(
            spec(&[("1", 100)], &["4"]).validate(&loaded),
            Err(RoutingError::NotLoaded("4".into()))
        );
        assert_eq!(
            spec(&[("1", 100)], &["1"]).validate(&loaded),
            Err(RoutingError::ShadowWithWeight("1".into()))
        );
        assert_eq!(
            spec(&[("1", 100)], &["2", "3", "2"]).validate(&loaded),
            Err(RoutingError::ShadowTwice("2".into()))
        );
        let mut guarded = spec(&[("1", 100)], &[]);
        guarded.guard = Some(GuardSpec {
            max_error_rate: 2.0,
            ..GuardSpec::default()
        });
        assert!(matches!(
            guarded.validate(&loaded),
            Err(RoutingError::Guard {
                field: "max_error_rate",
                ..
            })
        ));
        // Found by schemathesis: a window of 2^63 s, or a minimum no season reaches, is
        // refused rather than kept.
        for (guard, field) in [
            (
                GuardSpec {
                    window_secs: 1 << 63,
                    ..GuardSpec::default()
                },
                "window_secs",
            ),
            (
                GuardSpec {
                    min_games: 1 << 40,
                    ..GuardSpec::default()
                },
                "min_games",
            ),
        ] {
            guarded.guard = Some(guard);
            assert!(
                matches!(guarded.validate(&loaded), Err(RoutingError::Guard { field: f, .. }) if f == field),
                "{field}"
            );
        }
    }
}
