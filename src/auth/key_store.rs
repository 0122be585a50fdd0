//! Where API keys live: the config file (`[[auth.keys]]`, hashes only) or PostgreSQL
//! (`api_keys`, managed with `bullpen keys`).

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

use super::api_key::{self, KeyHash};
use super::scope::Scopes;
use super::settings::ConfiguredKey;
use crate::db::{DbError, Pool, RowError};

/// What a key may do, as stored.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    /// The row id in PostgreSQL; `None` for keys in the config file.
    pub id: Option<i64>,
    pub scopes: Scopes,
    pub rate_per_minute: Option<u32>,
    pub burst: Option<u32>,
    pub revoked: bool,
}

/// A key as `bullpen keys list` shows it.
#[derive(Debug)]
pub struct ListedKey {
    pub id: i64,
    pub name: String,
    pub hash_prefix: String,
    pub scopes: Vec<String>,
    pub rate_per_minute: Option<u32>,
    pub burst: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug)]
pub enum KeyStore {
    Config(Vec<(KeyHash, KeyRecord)>),
    Postgres(Pool),
}

impl KeyStore {
    /// The keys of the config file (hashes and scopes checked when the file was read).
    pub fn from_config(keys: &[ConfiguredKey]) -> Self {
        let records = keys
            .iter()
            .map(|key| {
                let record = KeyRecord {
                    id: None,
                    scopes: key.scopes,
                    rate_per_minute: key.rate_per_minute,
                    burst: key.burst,
                    revoked: false,
                };
                (key.hash, record)
            })
            .collect();
        Self::Config(records)
    }

    /// The record for `hash`, revoked or not. Config keys are compared in constant time,
    /// every one of them; PostgreSQL finds the row by the hash's unique index (the hash of
    /// a 256-bit key gives a timing observer nothing to work with).
    pub async fn find(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, DbError> {
        match self {
            Self::Config(keys) => {
                let mut found = None;
                for (stored, record) in keys {
                    if bool::from(stored.ct_eq(hash)) {
                        found = Some(record.clone());
                    }
                }
                Ok(found)
            }
            Self::Postgres(pool) => {
                let connection = pool.get().await?;
                let row = connection
                    .query_opt(
                        "SELECT id, scopes, rate_per_minute, burst, revoked_at IS NOT NULL \
                         FROM api_keys WHERE key_hash = $1",
                        &[&hash.as_slice()],
                    )
                    .await?;
                row.map(|row| record_from_row(&row)).transpose()
            }
        }
    }
}

fn non_negative(value: Option<i32>) -> Option<u32> {
    value.and_then(|value| u32::try_from(value).ok())
}

fn record_from_row(row: &tokio_postgres::Row) -> Result<KeyRecord, DbError> {
    let names: Vec<String> = row.try_get(1)?;
    let scopes = Scopes::parse_all(&names).map_err(|error| DbError::Corrupt {
        table: "api_keys",
        source: RowError::invalid("scopes", error.0, "a known scope"),
    })?;
    Ok(KeyRecord {
        id: Some(row.try_get(0)?),
        scopes,
        rate_per_minute: non_negative(row.try_get(2)?),
        burst: non_negative(row.try_get(3)?),
        revoked: row.try_get(4)?,
    })
}

/// Stores a new key's hash; returns its id.
pub async fn insert(
    pool: &Pool,
    name: &str,
    hash: &KeyHash,
    scopes: Scopes,
    rate_per_minute: Option<u32>,
    burst: Option<u32>,
) -> Result<i64, DbError> {
    let to_sql = |value: Option<u32>| value.and_then(|value| i32::try_from(value).ok());
    let connection = pool.get().await?;
    let row = connection
        .query_one(
            "INSERT INTO api_keys (name, key_hash, scopes, rate_per_minute, burst) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[
                &name,
                &hash.as_slice(),
                &scopes.names(),
                &to_sql(rate_per_minute),
                &to_sql(burst),
            ],
        )
        .await?;
    Ok(row.try_get(0)?)
}

pub async fn list(pool: &Pool) -> Result<Vec<ListedKey>, DbError> {
    let connection = pool.get().await?;
    let rows = connection
        .query(
            "SELECT id, name, key_hash, scopes, rate_per_minute, burst, created_at, revoked_at \
             FROM api_keys ORDER BY id",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let hash: Vec<u8> = row.try_get(2)?;
            let hash_prefix = api_key::hash_hex(&hash[..hash.len().min(6)]);
            Ok(ListedKey {
                id: row.try_get(0)?,
                name: row.try_get(1)?,
                hash_prefix,
                scopes: row.try_get(3)?,
                rate_per_minute: non_negative(row.try_get(4)?),
                burst: non_negative(row.try_get(5)?),
                created_at: row.try_get(6)?,
                revoked_at: row.try_get(7)?,
            })
        })
        .collect()
}

/// Revokes the active keys named `name`; returns how many.
pub async fn revoke(pool: &Pool, name: &str) -> Result<u64, DbError> {
    let connection = pool.get().await?;
    Ok(connection
        .execute(
            "UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL",
            &[&name],
        )
        .await?)
}
