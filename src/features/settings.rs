//! `[data]` and `[features]`: where the games are, and which store and spec serve features.

use std::path::PathBuf;

use serde::Deserialize;

use super::spec::FEATURE_SPEC;
use crate::validation::InvalidSetting;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSettings {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSettings {
    pub version: String,
    pub store: StoreKind,
    /// Scheduled games more than this many days after the last game in the data get 422
    /// `date_out_of_range`: their features would be stale.
    pub schedule_horizon_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Embedded,
    Postgres,
}

impl FeatureSettings {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.version == FEATURE_SPEC.version {
            Ok(())
        } else {
            Err(InvalidSetting::new(
                "features.version",
                format!(
                    "this build computes feature spec `{}`, not `{}`",
                    FEATURE_SPEC.version, self.version
                ),
            ))
        }
    }
}
