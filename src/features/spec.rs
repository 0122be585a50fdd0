//! Feature specs: the name and position of every input the models see. `v1` describes the
//! two teams; `v2` is `v1` followed by the two starting pitchers.
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

/// Features of one starter.
pub const PER_STARTER: usize = 30;
/// Starter features: per starter, then home − away differences.
pub const STARTER_COUNT: usize = 2 * PER_STARTER + 14;

/// One starter's features, each name prefixed by `home_sp_` or `away_sp_`.
#[cfg(test)]
const STARTER_FIELDS: [&str; PER_STARTER] = [
    "starts",
    "season_starts",
    "rest_days",
    "career_k_rate",
    "career_bb_rate",
    "career_hr_rate",
    "career_fip",
    "career_era",
    "season_k_rate",
    "season_bb_rate",
    "season_hr_rate",
    "season_fip",
    "season_era",
    "last5_k_rate",
    "last5_bb_rate",
    "last5_fip",
    "recent_fip",
    "recent_era",
    "proj_k_rate",
    "proj_bb_rate",
    "proj_fip",
    "proj_era",
    "outs_per_start",
    "expected_runs",
    "prev_starts",
    "prev_outs",
    "prev_k_rate",
    "prev_bb_rate",
    "prev_fip",
    "prev_era",
];

/// Every starter feature, in `v2`'s order after the team features.
const STARTER_NAMES: [&str; STARTER_COUNT] = [
    "home_sp_starts",
    "home_sp_season_starts",
    "home_sp_rest_days",
    "home_sp_career_k_rate",
    "home_sp_career_bb_rate",
    "home_sp_career_hr_rate",
    "home_sp_career_fip",
    "home_sp_career_era",
    "home_sp_season_k_rate",
    "home_sp_season_bb_rate",
    "home_sp_season_hr_rate",
    "home_sp_season_fip",
    "home_sp_season_era",
    "home_sp_last5_k_rate",
    "home_sp_last5_bb_rate",
    "home_sp_last5_fip",
    "home_sp_recent_fip",
    "home_sp_recent_era",
    "home_sp_proj_k_rate",
    "home_sp_proj_bb_rate",
    "home_sp_proj_fip",
    "home_sp_proj_era",
    "home_sp_outs_per_start",
    "home_sp_expected_runs",
    "home_sp_prev_starts",
    "home_sp_prev_outs",
    "home_sp_prev_k_rate",
    "home_sp_prev_bb_rate",
    "home_sp_prev_fip",
    "home_sp_prev_era",
    "away_sp_starts",
    "away_sp_season_starts",
    "away_sp_rest_days",
    "away_sp_career_k_rate",
    "away_sp_career_bb_rate",
    "away_sp_career_hr_rate",
    "away_sp_career_fip",
    "away_sp_career_era",
    "away_sp_season_k_rate",
    "away_sp_season_bb_rate",
    "away_sp_season_hr_rate",
    "away_sp_season_fip",
    "away_sp_season_era",
    "away_sp_last5_k_rate",
    "away_sp_last5_bb_rate",
    "away_sp_last5_fip",
    "away_sp_recent_fip",
    "away_sp_recent_era",
    "away_sp_proj_k_rate",
    "away_sp_proj_bb_rate",
    "away_sp_proj_fip",
    "away_sp_proj_era",
    "away_sp_outs_per_start",
    "away_sp_expected_runs",
    "away_sp_prev_starts",
    "away_sp_prev_outs",
    "away_sp_prev_k_rate",
    "away_sp_prev_bb_rate",
    "away_sp_prev_fip",
    "away_sp_prev_era",
    "sp_career_fip_diff",
    "sp_season_fip_diff",
    "sp_last5_fip_diff",
    "sp_recent_fip_diff",
    "sp_prev_fip_diff",
    "sp_career_era_diff",
    "sp_recent_era_diff",
    "sp_prev_era_diff",
    "sp_proj_fip_diff",
    "sp_proj_era_diff",
    "sp_career_k_bb_diff",
    "sp_season_k_bb_diff",
    "sp_outs_per_start_diff",
    "sp_expected_runs_diff",
];

const V2_NAMES: [&str; FEATURE_COUNT + STARTER_COUNT] = concat(NAMES, STARTER_NAMES);

/// `a` then `b`, at compile time.
const fn concat<const A: usize, const B: usize, const C: usize>(
    a: [&'static str; A],
    b: [&'static str; B],
) -> [&'static str; C] {
    let mut out = [""; C];
    let mut i = 0;
    while i < C {
        out[i] = if i < A { a[i] } else { b[i - A] };
        i += 1;
    }
    out
}

pub const FEATURE_SPEC_V2: FeatureSpec = FeatureSpec {
    version: "v2",
    names: &V2_NAMES,
};

/// The specs this build computes.
pub const FEATURE_SPECS: [FeatureSpec; 2] = [FEATURE_SPEC, FEATURE_SPEC_V2];

/// The widest spec this build computes: what the stores keep and the caches hold for a game.
/// Every other spec is a prefix of it (a test holds them so), so a model reads the first
/// [`FeatureSpec::width`] values of a game's vector.
pub const STORED_SPEC: FeatureSpec = FEATURE_SPEC_V2;

/// Values in a game's vector: every feature of [`STORED_SPEC`].
pub const WIDTH: usize = FEATURE_COUNT + STARTER_COUNT;

impl FeatureSpec {
    /// How many values a model of this spec reads.
    pub fn width(&self) -> usize {
        self.names.len()
    }

    /// Whether a model of this spec reads the starters (their features follow the teams').
    pub fn reads_starters(&self) -> bool {
        self.width() > FEATURE_COUNT
    }

    /// The spec this build computes under `version`, if any.
    pub fn named(version: &str) -> Option<Self> {
        FEATURE_SPECS
            .into_iter()
            .find(|spec| spec.version == version)
    }
}

/// The features of one game in [`STORED_SPEC`]'s order: the teams, then the starters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureVector(pub [f32; WIDTH]);

impl FeatureVector {
    /// A vector from the team features and the starter features.
    pub fn new(teams: [f32; FEATURE_COUNT], starters: [f32; STARTER_COUNT]) -> Self {
        let mut values = [0.0; WIDTH];
        values[..FEATURE_COUNT].copy_from_slice(&teams);
        values[FEATURE_COUNT..].copy_from_slice(&starters);
        Self(values)
    }

    pub fn values(&self) -> &[f32; WIDTH] {
        &self.0
    }

    /// The values a model of `spec` reads.
    pub fn of(&self, spec: &FeatureSpec) -> &[f32] {
        &self.0[..spec.width()]
    }

    /// The value of a named feature, for tests and diagnostics.
    pub fn get(&self, name: &str) -> Option<f32> {
        V2_NAMES.iter().position(|n| *n == name).map(|i| self.0[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_is_v1_then_each_starter_then_the_differences() {
        assert_eq!(V2_NAMES[..FEATURE_COUNT], NAMES);
        let sides = ["home", "away"].iter().flat_map(|side| {
            STARTER_FIELDS
                .iter()
                .map(move |field| format!("{side}_sp_{field}"))
        });
        for (name, expected) in V2_NAMES[FEATURE_COUNT..].iter().zip(sides) {
            assert_eq!(*name, expected);
        }
        assert!(
            V2_NAMES[FEATURE_COUNT + 2 * PER_STARTER..]
                .iter()
                .all(|n| n.ends_with("_diff"))
        );
        let unique: std::collections::HashSet<_> = V2_NAMES.iter().collect();
        assert_eq!(unique.len(), V2_NAMES.len());
        for spec in FEATURE_SPECS {
            assert_eq!(spec.names, &STORED_SPEC.names[..spec.width()]);
        }
        assert_eq!(STORED_SPEC.width(), WIDTH);
        assert!(!FEATURE_SPEC.reads_starters() && FEATURE_SPEC_V2.reads_starters());
    }
}
