//! Layered configuration: the defaults compiled into the binary, then `config/default.toml`,
//! then `config/{BULLPEN_ENV}.toml`, then `BULLPEN__SECTION__KEY` environment variables.
//!
//! This file only layers the sources and composes the sections: each section's fields,
//! defaults' meaning and checks live in the module that uses them.

use std::path::Path;

use serde::Deserialize;

use crate::auth::{AuthSettings, RateLimitSettings};
use crate::cache::{CacheSettings, RedisSettings};
use crate::db::DatabaseSettings;
use crate::features::{DataSettings, FeatureSettings};
use crate::http::ServerSettings;
use crate::lb::LbSettings;
use crate::models::{InferenceSettings, ModelSettings};
use crate::monitoring::MonitoringSettings;
use crate::predict::{PredictionLogSettings, RolloutSettings, ScheduleSettings};
use crate::telemetry::TelemetrySettings;
use crate::validation::InvalidSetting;

const EMBEDDED_DEFAULTS: &str = include_str!("../config/default.toml");

/// Everything the binary can be configured with; see `config/default.toml` for each key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub cache: CacheSettings,
    pub data: DataSettings,
    pub features: FeatureSettings,
    pub database: DatabaseSettings,
    pub prediction_log: PredictionLogSettings,
    pub redis: RedisSettings,
    pub models: ModelSettings,
    pub inference: InferenceSettings,
    pub rollout: RolloutSettings,
    pub schedule: ScheduleSettings,
    pub telemetry: TelemetrySettings,
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
    pub monitoring: MonitoringSettings,
    pub lb: LbSettings,
    /// `BULLPEN_ENV` at load time (`local` when unset).
    #[serde(skip)]
    pub environment: String,
}

/// A configuration that could not be read or does not make sense; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration could not be read: {0}")]
    Read(#[from] config::ConfigError),
    #[error(transparent)]
    Invalid(#[from] InvalidSetting),
}

impl Settings {
    /// Loads the layers from `config_dir` and the process environment, then validates them.
    pub fn load(config_dir: &Path) -> Result<Self, SettingsError> {
        let environment = std::env::var("BULLPEN_ENV").unwrap_or_else(|_| "local".to_owned());
        let settings: Self = config::Config::builder()
            .add_source(config::File::from_str(
                EMBEDDED_DEFAULTS,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from(config_dir.join("default.toml")).required(false))
            .add_source(config::File::from(config_dir.join(&environment)).required(false))
            .add_source(
                config::Environment::with_prefix("BULLPEN")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    // BULLPEN__REDIS__CLUSTER_NODES="redis://a:6379,redis://b:6379"
                    .list_separator(",")
                    .with_list_parse_key("redis.cluster_nodes")
                    .with_list_parse_key("redis.sentinel.nodes"),
            )
            .build()?
            .try_deserialize()?;
        let settings = Self {
            environment,
            ..settings
        };
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what serde cannot (values that parse but cannot work): each section checks
    /// its own keys.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.server.validate()?;
        self.cache.validate()?;
        self.features.validate()?;
        self.database.validate()?;
        self.prediction_log.validate()?;
        self.redis.validate()?;
        self.inference.validate()?;
        self.rollout.validate()?;
        self.schedule.validate()?;
        self.telemetry.validate()?;
        self.auth.validate(&self.environment)?;
        self.rate_limit.validate()?;
        self.lb.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::KeyStoreKind;
    use crate::telemetry::LogFormat;

    #[test]
    fn embedded_defaults_load_and_validate() {
        let empty = tempfile::tempdir().expect("temp dir");
        let settings = Settings::load(empty.path()).expect("defaults are valid");
        assert_eq!(settings.features.version, "v2");
        assert_eq!(settings.models.default.to_string(), "home_win@1");
        assert_eq!(settings.telemetry.format, LogFormat::Pretty);
    }

    #[test]
    fn files_override_defaults_and_bad_values_name_their_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("default.toml"),
            "[inference]\nintra_threads = 0\n",
        )
        .expect("write config");
        let error = Settings::load(dir.path()).expect_err("zero threads is refused");
        assert_eq!(
            error.to_string(),
            "configuration key `inference.intra_threads` is invalid: must be at least 1"
        );

        std::fs::write(
            dir.path().join("default.toml"),
            "[telemetry]\nformat = \"xml\"\n",
        )
        .expect("write config");
        let error = Settings::load(dir.path()).expect_err("unknown format is refused");
        assert!(error.to_string().contains("telemetry.format"), "{error}");

        // `BULLPEN__DATABASE__URL=` (empty) is a mistake, not a database.
        for url in ["", "dbname=bullpen"] {
            std::fs::write(
                dir.path().join("default.toml"),
                format!("[database]\nurl = \"{url}\"\n"),
            )
            .expect("write config");
            let error = Settings::load(dir.path()).expect_err("a URL with no host is refused");
            assert!(
                error.to_string().contains("`database.url`"),
                "{url}: {error}"
            );
        }
    }

    #[test]
    fn production_refuses_to_start_without_auth_that_admits_someone() {
        let empty = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::load(empty.path()).expect("defaults are valid");
        settings.environment = "production".to_owned();
        let key_of = |error: SettingsError| match error {
            SettingsError::Invalid(invalid) => invalid.key,
            SettingsError::Read(error) => panic!("{error}"),
        };
        let refused = settings.validate().expect_err("auth is off");
        assert_eq!(key_of(refused), "auth.enabled");
        settings.auth.enabled = true;
        let refused = settings.validate().expect_err("no key and no JWT");
        assert_eq!(key_of(refused), "auth.keys");
        settings.auth.key_store = KeyStoreKind::Postgres;
        settings.validate().expect("keys in PostgreSQL");
        settings.auth.key_store = KeyStoreKind::Config;
        settings.auth.jwt.hs256_secret = "a".to_owned().into();
        let refused = settings.validate().expect_err("a one-byte HS256 secret");
        assert_eq!(key_of(refused), "auth.jwt.hs256_secret");
        settings.auth.jwt.hs256_secret = "0123456789abcdef0123456789abcde".to_owned().into();
        let refused = settings.validate().expect_err("31 bytes");
        assert_eq!(key_of(refused), "auth.jwt.hs256_secret");
        settings.auth.jwt.hs256_secret = "0123456789abcdef0123456789abcdef".to_owned().into();
        settings.validate().expect("JWTs with a 32-byte secret");
        settings.environment = "local".to_owned();
        settings.auth.jwt.hs256_secret = "a".to_owned().into();
        settings
            .validate()
            .expect("a short secret only warns outside production");
    }

    #[test]
    fn cluster_nodes_are_a_list_of_redis_urls() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |nodes: &str| {
            std::fs::write(
                dir.path().join("default.toml"),
                format!("[redis]\ncluster_nodes = {nodes}\n"),
            )
            .expect("write config");
        };
        write(r#"["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]"#);
        let settings = Settings::load(dir.path()).expect("valid nodes");
        assert_eq!(settings.redis.cluster_nodes.len(), 2);
        write(r#"["redis://10.0.0.1:6379", "10.0.0.2"]"#);
        let error = Settings::load(dir.path()).expect_err("a node that is no URL is refused");
        assert!(error.to_string().contains("redis.cluster_nodes"), "{error}");
    }

    #[test]
    fn sentinel_needs_urls_a_master_name_and_no_cluster() {
        let dir = tempfile::tempdir().expect("temp dir");
        let load = |redis: &str| {
            std::fs::write(
                dir.path().join("default.toml"),
                format!("[redis]\n{redis}\n"),
            )
            .expect("write config");
            Settings::load(dir.path())
        };
        let settings = load("[redis.sentinel]\nnodes = [\"redis://10.0.0.1:26379\"]")
            .expect("valid Sentinel settings");
        assert!(settings.redis.sentinel.is_on());
        assert_eq!(settings.redis.sentinel.master_name, "mymaster");
        for (redis, key) in [
            (
                "[redis.sentinel]\nnodes = [\"10.0.0.1\"]",
                "redis.sentinel.nodes",
            ),
            (
                "[redis.sentinel]\nmaster_name = \" \"\nnodes = [\"redis://10.0.0.1:26379\"]",
                "redis.sentinel.master_name",
            ),
            (
                "cluster_nodes = [\"redis://10.0.0.2:6379\"]\n\
                 [redis.sentinel]\nnodes = [\"redis://10.0.0.1:26379\"]",
                "redis.sentinel.nodes",
            ),
        ] {
            let error = load(redis).expect_err("refused");
            assert!(error.to_string().contains(key), "{redis}: {error}");
        }
    }
}
