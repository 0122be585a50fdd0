//! `[auth]` and `[rate_limit]`: who may call, and how often.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::api_key::{self, KeyHash};
use super::rate_limit::{Leasing, Mode, Rate};
use super::scope::Scopes;
use crate::validation::{InvalidSetting, at_least_one};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub enabled: bool,
    pub key_store: KeyStoreKind,
    pub key_cache_ttl_secs: u64,
    pub open_probes: bool,
    /// `/status/data` (live traffic and model quality) answers without credentials; off, it
    /// needs scope `predict`, like `/api/v1/models/{name}/quality`.
    pub open_status: bool,
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
    /// SHA-256 of the key, 64 hex digits in the file.
    #[serde(deserialize_with = "api_key::deserialize_hash_hex")]
    pub hash: KeyHash,
    pub scopes: Scopes,
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
    pub mode: Mode,
    /// The most tokens one lease takes.
    pub lease_tokens: u32,
    /// How long a lease's tokens may be spent.
    pub lease_ms: u64,
}

impl RateLimitSettings {
    /// The limit of a credential that sets none of its own.
    pub fn default_rate(&self) -> Rate {
        Rate {
            per_minute: self.per_minute,
            burst: self.burst,
        }
    }

    /// How replicas share allowances through Redis.
    pub fn leasing(&self) -> Leasing {
        Leasing {
            mode: self.mode,
            max_tokens: self.lease_tokens,
            ttl: Duration::from_millis(self.lease_ms),
        }
    }

    pub fn validate(&self) -> Result<(), InvalidSetting> {
        at_least_one(&[
            ("rate_limit.per_minute", u64::from(self.per_minute)),
            ("rate_limit.burst", u64::from(self.burst)),
            ("rate_limit.replicas", u64::from(self.replicas)),
            ("rate_limit.lease_tokens", u64::from(self.lease_tokens)),
            ("rate_limit.lease_ms", self.lease_ms),
        ])
    }
}

/// The shortest HS256 secret production accepts: 256 bits, the size of the HMAC-SHA256 key
/// (RFC 7518, section 3.2). Elsewhere a shorter one starts with a warning.
pub const MIN_HS256_SECRET: usize = 32;

impl JwtSettings {
    /// Whether an HS256 secret is set but shorter than [`MIN_HS256_SECRET`].
    pub fn hs256_secret_is_short(&self) -> bool {
        let secret = self.hs256_secret.expose_secret();
        !secret.is_empty() && secret.len() < MIN_HS256_SECRET
    }

    /// Whether any JWT key is configured.
    pub fn enabled(&self) -> bool {
        !self.hs256_secret.expose_secret().is_empty()
            || !self.rs256_public_key.as_os_str().is_empty()
    }
}

impl AuthSettings {
    /// `environment` is `BULLPEN_ENV`: production refuses to run without auth.
    pub fn validate(&self, environment: &str) -> Result<(), InvalidSetting> {
        if !self.enabled {
            if environment == "production" {
                return Err(InvalidSetting::new(
                    "auth.enabled",
                    "must be true when BULLPEN_ENV=production (every request needs credentials)",
                ));
            }
            return Ok(());
        }
        let jwt_on = self.jwt.enabled();
        if self.key_store == KeyStoreKind::Config && self.keys.is_empty() && !jwt_on {
            return Err(InvalidSetting::new(
                "auth.keys",
                "is empty, and no JWT key is set: nobody could call the API \
                 (`bullpen keys create --print-config` makes a key)",
            ));
        }
        if environment == "production" && self.jwt.hs256_secret_is_short() {
            return Err(InvalidSetting::new(
                "auth.jwt.hs256_secret",
                format!(
                    "is shorter than {MIN_HS256_SECRET} bytes, which BULLPEN_ENV=production \
                     needs (`openssl rand -hex 32` makes one)"
                ),
            ));
        }
        if jwt_on && self.jwt.audience.trim().is_empty() {
            return Err(InvalidSetting::new(
                "auth.jwt.audience",
                "must name this service when JWTs are on",
            ));
        }
        at_least_one(&[("auth.key_cache_ttl_secs", self.key_cache_ttl_secs)])?;
        let mut names = HashSet::new();
        for key in &self.keys {
            if !names.insert(key.name.as_str()) {
                return Err(InvalidSetting::new(
                    "auth.keys",
                    format!("two keys are named `{}`", key.name),
                ));
            }
            if key.rate_per_minute == Some(0) || key.burst == Some(0) {
                return Err(InvalidSetting::new(
                    "auth.keys",
                    format!("key `{}`: limits must be at least 1", key.name),
                ));
            }
        }
        Ok(())
    }
}
