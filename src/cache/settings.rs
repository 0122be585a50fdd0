//! `[cache]` (the in-process tier) and `[redis]` (the shared tier).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::validation::{InvalidSetting, at_least_one};

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

impl CacheSettings {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        for (key, ttl) in [
            ("cache.features_ttl_secs", self.features_ttl_secs),
            ("cache.predictions_ttl_secs", self.predictions_ttl_secs),
        ] {
            if ttl == 0 {
                return Err(InvalidSetting::new(
                    key,
                    "must be at least 1 (set cache.enabled = false to disable)",
                ));
            }
        }
        Ok(())
    }
}

/// URLs may hold a password (`redis://:SECRET@host:6379`): they are secrets, and only their
/// host and port ([`address`]) ever reach a log line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub enabled: bool,
    pub url: SecretString,
    /// Nodes of a Redis Cluster; when any are given they are used instead of `url`.
    pub cluster_nodes: Vec<SecretString>,
    pub sentinel: SentinelSettings,
    pub key_prefix: String,
    pub timeout_ms: u64,
    pub max_connections: u32,
    pub breaker_failures: u32,
    pub breaker_cooldown_ms: u64,
}

impl RedisSettings {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if redis::Client::open(self.url.expose_secret()).is_err() {
            return Err(InvalidSetting::new(
                "redis.url",
                "is not a Redis URL such as redis://127.0.0.1:6379",
            ));
        }
        if self
            .cluster_nodes
            .iter()
            .any(|node| redis::Client::open(node.expose_secret()).is_err())
        {
            return Err(InvalidSetting::new(
                "redis.cluster_nodes",
                "holds something that is not a Redis URL such as redis://10.0.0.1:6379",
            ));
        }
        self.sentinel.validate()?;
        if self.sentinel.is_on() && !self.cluster_nodes.is_empty() {
            return Err(InvalidSetting::new(
                "redis.sentinel.nodes",
                "cannot be used with redis.cluster_nodes: a Redis Cluster fails over by itself",
            ));
        }
        at_least_one(&[
            ("redis.timeout_ms", self.timeout_ms),
            ("redis.max_connections", u64::from(self.max_connections)),
            ("redis.breaker_failures", u64::from(self.breaker_failures)),
        ])
    }
}

/// `[redis.sentinel]`: a master found through Redis Sentinel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelSettings {
    pub master_name: String,
    /// Sentinels' URLs (they may hold the Sentinels' password); empty: Sentinel is off.
    pub nodes: Vec<SecretString>,
}

impl SentinelSettings {
    pub fn is_on(&self) -> bool {
        !self.nodes.is_empty()
    }

    fn validate(&self) -> Result<(), InvalidSetting> {
        if self
            .nodes
            .iter()
            .any(|node| redis::Client::open(node.expose_secret()).is_err())
        {
            return Err(InvalidSetting::new(
                "redis.sentinel.nodes",
                "holds something that is not a Sentinel URL such as redis://10.0.0.1:26379",
            ));
        }
        if self.is_on() && self.master_name.trim().is_empty() {
            return Err(InvalidSetting::new(
                "redis.sentinel.master_name",
                "must name the master the Sentinels watch",
            ));
        }
        Ok(())
    }
}

/// The `host:port` of a Redis URL, safe to log; `?` when it does not parse.
pub fn address(url: &SecretString) -> String {
    redis::IntoConnectionInfo::into_connection_info(url.expose_secret())
        .map_or_else(|_| "?".to_owned(), |info| info.addr().to_string())
}
