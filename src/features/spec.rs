//! Feature spec `v1`: the name and position of every input the models see.
//!
//! Training reads this spec (`bullpen features spec`) and copies it into each model's
//! manifest; the server refuses a model whose manifest names another version or other names.

use serde::Serialize;

/// A versioned, ordered list of feature names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FeatureSpec {
    pub version: &'static str,
    pub names: &'static [&'static str],
}

pub const FEATURE_COUNT: usize = 27;

const NAMES: [&str; FEATURE_COUNT] = [
    "home_elo",
    "away_elo",
    "elo_diff",
    "elo_home_win_prob",
    "home_win_pct",
    "away_win_pct",
    "home_runs_scored_pg",
    "home_runs_allowed_pg",
    "away_runs_scored_pg",
    "away_runs_allowed_pg",
    "home_pythag",
    "away_pythag",
    "pythag_diff",
    "home_last10_win_pct",
    "away_last10_win_pct",
    "home_home_win_pct",
    "away_road_win_pct",
    "home_rest_days",
    "away_rest_days",
    "home_games_last7",
    "away_games_last7",
    "home_pitches_last3",
    "away_pitches_last3",
    "home_prev_win_pct",
    "away_prev_win_pct",
    "home_games_played",
    "away_games_played",
];

pub const FEATURE_SPEC: FeatureSpec = FeatureSpec {
    version: "v1",
    names: &NAMES,
};

/// The features of one game, in spec order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct FeatureVector(pub [f32; FEATURE_COUNT]);

impl FeatureVector {
    pub fn values(&self) -> &[f32; FEATURE_COUNT] {
        &self.0
    }

    /// The value of a named feature, for tests and diagnostics.
    pub fn get(&self, name: &str) -> Option<f32> {
        NAMES.iter().position(|n| *n == name).map(|i| self.0[i])
    }
}
