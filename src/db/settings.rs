//! `[database]`: where PostgreSQL is and how the pools behave.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::validation::{InvalidSetting, at_least_one};

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

impl DatabaseSettings {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        // An empty string parses as a configuration with no host at all: refused by name
        // rather than started with every PostgreSQL part failing.
        if !names_a_host(self.url.expose_secret()) {
            return Err(InvalidSetting::new(
                "database.url",
                "is not a PostgreSQL URL with a host, such as postgres://user@host:5432/db",
            ));
        }
        let read_url = self.read_url.expose_secret();
        if !read_url.is_empty() && !names_a_host(read_url) {
            return Err(InvalidSetting::new(
                "database.read_url",
                "is not a PostgreSQL URL with a host (or empty: then database.url)",
            ));
        }
        if self.max_connections == 0 || self.min_connections > self.max_connections {
            return Err(InvalidSetting::new(
                "database.max_connections",
                "must be at least 1 and at least database.min_connections",
            ));
        }
        at_least_one(&[
            ("database.connect_timeout_ms", self.connect_timeout_ms),
            ("database.statement_timeout_ms", self.statement_timeout_ms),
        ])
    }
}

/// Whether `url` is a PostgreSQL connection string that names at least one host.
fn names_a_host(url: &str) -> bool {
    url.parse::<tokio_postgres::Config>()
        .is_ok_and(|config| !config.get_hosts().is_empty())
}
