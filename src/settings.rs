//! Layered configuration: the defaults compiled into the binary, then `config/default.toml`,
//! then `config/{BULLPEN_ENV}.toml`, then `BULLPEN__SECTION__KEY` environment variables.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::telemetry::LogFormat;

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
    pub telemetry: TelemetrySettings,
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
    pub monitoring: MonitoringSettings,
    /// `BULLPEN_ENV` at load time (`local` when unset).
    #[serde(skip)]
    pub environment: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// 0 means one per core.
    pub workers: usize,
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub max_in_flight: usize,
    pub request_timeout_ms: u64,
    pub shutdown_timeout_secs: u64,
}

impl ServerSettings {
    pub fn worker_count(&self) -> usize {
        if self.workers == 0 {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        } else {
            self.workers
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    pub enabled: bool,
    pub features_ttl_secs: u64,
    pub predictions_ttl_secs: u64,
    pub features_max_entries: u64,
    pub predictions_max_entries: u64,
    pub stale_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub enabled: bool,
    pub url: String,
    /// Nodes of a Redis Cluster; when any are given they are used instead of `url`.
    pub cluster_nodes: Vec<String>,
    pub key_prefix: String,
    pub timeout_ms: u64,
    pub max_connections: u32,
    pub breaker_failures: u32,
    pub breaker_cooldown_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringSettings {
    pub request_metrics: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub enabled: bool,
    pub key_store: KeyStoreKind,
    pub key_cache_ttl_secs: u64,
    pub open_probes: bool,
    pub keys: Vec<ConfiguredKey>,
    pub jwt: JwtSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStoreKind {
    Config,
    Postgres,
}

/// An API key listed in the config file, by its hash (`bullpen keys create --print-config`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredKey {
    pub name: String,
    pub hash: String,
    pub scopes: Vec<String>,
    pub rate_per_minute: Option<u32>,
    pub burst: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// Empty: HS256 tokens are not accepted.
    pub hs256_secret: SecretString,
    /// A PEM file; empty: RS256 tokens are not accepted.
    pub rs256_public_key: PathBuf,
    pub audience: String,
    /// Empty: not checked.
    pub issuer: String,
    pub leeway_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub per_minute: u32,
    pub burst: u32,
    pub replicas: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionLogSettings {
    pub enabled: bool,
    pub capacity: usize,
    pub batch_size: usize,
    pub flush_interval_ms: u64,
}

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Embedded,
    Postgres,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Holds a password in production: never printed.
    pub url: SecretString,
    /// Empty means `url`.
    pub read_url: SecretString,
    pub min_connections: u32,
    pub max_connections: u32,
    pub connect_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    pub dir: PathBuf,
    pub default: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferenceSettings {
    /// Empty means: search the usual places (see `models::runtime`).
    pub ort_library: PathBuf,
    pub intra_threads: usize,
    pub inline_max_rows: usize,
    pub threads: usize,
    pub queue_capacity: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub format: LogFormat,
    pub level: String,
}

/// A configuration that could not be read or does not make sense; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration could not be read: {0}")]
    Read(#[from] config::ConfigError),
    #[error("configuration key `{key}` is invalid: {reason}")]
    Invalid { key: &'static str, reason: String },
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
                    .with_list_parse_key("redis.cluster_nodes"),
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

    /// Checks what serde cannot: values that parse but cannot work.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.features.version != crate::features::FEATURE_SPEC.version {
            return Err(SettingsError::Invalid {
                key: "features.version",
                reason: format!(
                    "this build computes feature spec `{}`, not `{}`",
                    crate::features::FEATURE_SPEC.version,
                    self.features.version
                ),
            });
        }
        if self.models.default.trim().is_empty() {
            return invalid("models.default", "must name a model");
        }
        let at_least_one = [
            ("inference.intra_threads", self.inference.intra_threads),
            ("inference.threads", self.inference.threads),
            ("inference.queue_capacity", self.inference.queue_capacity),
            ("server.max_body_bytes", self.server.max_body_bytes),
            ("server.max_batch", self.server.max_batch),
            ("server.max_in_flight", self.server.max_in_flight),
            ("prediction_log.capacity", self.prediction_log.capacity),
            ("prediction_log.batch_size", self.prediction_log.batch_size),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, value)| *value == 0) {
            return invalid(key, "must be at least 1");
        }
        self.database.validate()?;
        self.redis.validate()?;
        self.auth.validate(&self.environment)?;
        let limits = [
            ("rate_limit.per_minute", self.rate_limit.per_minute),
            ("rate_limit.burst", self.rate_limit.burst),
            ("rate_limit.replicas", self.rate_limit.replicas),
        ];
        if let Some((key, _)) = limits.iter().find(|(_, value)| *value == 0) {
            return invalid(key, "must be at least 1");
        }
        if self.server.request_timeout_ms == 0 {
            return invalid("server.request_timeout_ms", "must be at least 1");
        }
        if self.cache.features_ttl_secs == 0 || self.cache.predictions_ttl_secs == 0 {
            let key = if self.cache.features_ttl_secs == 0 {
                "cache.features_ttl_secs"
            } else {
                "cache.predictions_ttl_secs"
            };
            return invalid(
                key,
                "must be at least 1 (set cache.enabled = false to disable)",
            );
        }
        if self.server.host.parse::<std::net::IpAddr>().is_err() && self.server.host != "localhost"
        {
            return invalid(
                "server.host",
                "must be an IP address such as 127.0.0.1 or 0.0.0.0",
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.telemetry.level).is_err() {
            return invalid("telemetry.level", "is not a tracing filter such as `info`");
        }
        Ok(())
    }
}

/// The error for a key whose value parses but cannot work.
fn invalid(key: &'static str, reason: &str) -> Result<(), SettingsError> {
    Err(SettingsError::Invalid {
        key,
        reason: reason.to_owned(),
    })
}

impl DatabaseSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        let database = self;
        if database
            .url
            .expose_secret()
            .parse::<tokio_postgres::Config>()
            .is_err()
        {
            return invalid(
                "database.url",
                "is not a PostgreSQL URL such as postgres://user@host:5432/db",
            );
        }
        let read_url = database.read_url.expose_secret();
        if !read_url.is_empty() && read_url.parse::<tokio_postgres::Config>().is_err() {
            return invalid("database.read_url", "is not a PostgreSQL URL (or empty)");
        }
        if database.max_connections == 0 || database.min_connections > database.max_connections {
            return invalid(
                "database.max_connections",
                "must be at least 1 and at least database.min_connections",
            );
        }
        if database.connect_timeout_ms == 0 {
            return invalid("database.connect_timeout_ms", "must be at least 1");
        }
        if database.statement_timeout_ms == 0 {
            return invalid("database.statement_timeout_ms", "must be at least 1");
        }
        Ok(())
    }
}

impl AuthSettings {
    fn validate(&self, environment: &str) -> Result<(), SettingsError> {
        if !self.enabled {
            if environment == "production" {
                return invalid(
                    "auth.enabled",
                    "must be true when BULLPEN_ENV=production (every request needs credentials)",
                );
            }
            return Ok(());
        }
        let jwt = &self.jwt;
        let jwt_on = !jwt.hs256_secret.expose_secret().is_empty()
            || !jwt.rs256_public_key.as_os_str().is_empty();
        if self.key_store == KeyStoreKind::Config && self.keys.is_empty() && !jwt_on {
            return invalid(
                "auth.keys",
                "is empty, and no JWT key is set: nobody could call the API \
                 (`bullpen keys create --print-config` makes a key)",
            );
        }
        if jwt_on && jwt.audience.trim().is_empty() {
            return invalid(
                "auth.jwt.audience",
                "must name this service when JWTs are on",
            );
        }
        if self.key_cache_ttl_secs == 0 {
            return invalid("auth.key_cache_ttl_secs", "must be at least 1");
        }
        let mut names = std::collections::HashSet::new();
        for key in &self.keys {
            if crate::auth::api_key::parse_hash_hex(&key.hash).is_none() {
                return invalid(
                    "auth.keys",
                    &format!("key `{}`: hash must be 64 hex digits", key.name),
                );
            }
            if let Err(error) = crate::auth::Scopes::parse_all(&key.scopes) {
                return invalid("auth.keys", &format!("key `{}`: {error}", key.name));
            }
            if !names.insert(key.name.as_str()) {
                return invalid("auth.keys", &format!("two keys are named `{}`", key.name));
            }
            if key.rate_per_minute == Some(0) || key.burst == Some(0) {
                return invalid(
                    "auth.keys",
                    &format!("key `{}`: limits must be at least 1", key.name),
                );
            }
        }
        Ok(())
    }
}

impl RedisSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        let redis = self;
        if redis::Client::open(redis.url.as_str()).is_err() {
            return invalid(
                "redis.url",
                "is not a Redis URL such as redis://127.0.0.1:6379",
            );
        }
        if redis
            .cluster_nodes
            .iter()
            .any(|node| redis::Client::open(node.as_str()).is_err())
        {
            return invalid(
                "redis.cluster_nodes",
                "holds something that is not a Redis URL such as redis://10.0.0.1:6379",
            );
        }
        let redis_at_least_one = [
            ("redis.timeout_ms", redis.timeout_ms),
            ("redis.max_connections", u64::from(redis.max_connections)),
            ("redis.breaker_failures", u64::from(redis.breaker_failures)),
        ];
        if let Some((key, _)) = redis_at_least_one.iter().find(|(_, value)| *value == 0) {
            return invalid(key, "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_load_and_validate() {
        let empty = tempfile::tempdir().expect("temp dir");
        let settings = Settings::load(empty.path()).expect("defaults are valid");
        assert_eq!(settings.features.version, "v1");
        assert_eq!(settings.models.default, "home_win");
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
    }

    #[test]
    fn production_refuses_to_start_without_auth_that_admits_someone() {
        let empty = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::load(empty.path()).expect("defaults are valid");
        settings.environment = "production".to_owned();
        let key_of = |error: SettingsError| match error {
            SettingsError::Invalid { key, .. } => key,
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
        settings.auth.jwt.hs256_secret = "a secret".to_owned().into();
        settings.validate().expect("JWTs");
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
}
