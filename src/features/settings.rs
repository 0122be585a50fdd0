//! `[data]` and `[features]`: where the games are, and which store and spec serve features.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::spec::STORED_SPEC;
use crate::games::{self, DataError, Game, Pitchers};
use crate::validation::{InvalidSetting, at_least_one};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSettings {
    pub dir: PathBuf,
    /// Starting pitchers (`starters_YYYY.csv[.gz]`) and their season totals
    /// (`lahman_pitching_*.csv[.gz]`); empty: games without starters.
    pub pitchers_dir: PathBuf,
}

impl DataSettings {
    /// The games in `dir`, in the order they were played, each with the starters
    /// `pitchers_dir` names for it, and what `pitchers_dir` holds.
    pub fn load(&self) -> Result<(Vec<Game>, Arc<Pitchers>), DataError> {
        let mut games = games::load_dir(&self.dir)?;
        let pitchers = self.load_pitchers()?;
        pitchers.attach(&mut games);
        Ok((games, pitchers))
    }

    /// What `pitchers_dir` holds; nothing when it is empty.
    pub fn load_pitchers(&self) -> Result<Arc<Pitchers>, DataError> {
        if self.pitchers_dir.as_os_str().is_empty() {
            return Ok(Arc::default());
        }
        Ok(Arc::new(games::load_pitchers(&self.pitchers_dir)?))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSettings {
    pub version: String,
    pub store: StoreKind,
    /// Scheduled games more than this many days after the last game in the data get 422
    /// `date_out_of_range`: their features would be stale.
    pub schedule_horizon_days: u32,
    /// Embedded store: the folder of the results journal (`results.jsonl`), replayed at
    /// start; empty keeps posted results in memory only.
    pub results_dir: PathBuf,
    /// PostgreSQL store: how often a replica checks `games_revision` for results written
    /// elsewhere (it also hears them at once on Redis's results channel).
    pub refresh_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Embedded,
    Postgres,
}

impl FeatureSettings {
    /// The journal's folder, when results are journaled.
    pub fn journal_dir(&self) -> Option<&std::path::Path> {
        (!self.results_dir.as_os_str().is_empty()).then_some(self.results_dir.as_path())
    }

    pub fn validate(&self) -> Result<(), InvalidSetting> {
        at_least_one(&[("features.refresh_ms", self.refresh_ms)])?;
        if self.version == STORED_SPEC.version {
            Ok(())
        } else {
            Err(InvalidSetting::new(
                "features.version",
                format!(
                    "this build stores feature spec `{}`, not `{}` (every model reads the part \
                     its manifest names: `v1` is the first {} features)",
                    STORED_SPEC.version,
                    self.version,
                    super::spec::FEATURE_COUNT
                ),
            ))
        }
    }
}
