//! The in-process (L1) cache tier: one bounded moka cache per key type.
//!
//! Keys are types ([`CacheKey`]), each naming the type of value it stores, so a prediction
//! can never be read back as features. Lookups go through [`Tier::get_or_compute`]: when many
//! requests miss on one key at once, moka runs the computation once and hands its value to all
//! of them (single flight). A shared tier slots in behind this one without touching callers.
//!
//! Entries are fresh for their TTL and kept (within the size bound) for `stale_ttl_secs`
//! after that. An expired entry is recomputed as usual; only when that fails for a reason
//! that passes ([`Transient`], such as PostgreSQL being down) is the old value served,
//! marked [`Source::Stale`], so a dependency outage degrades answers instead of failing them.

mod keys;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use keys::{CacheKey, FeatureKey, GameKey, PredictionKey};

use crate::settings::CacheSettings;

/// One cache tier for one key type; `None` inside when caching is disabled.
#[derive(Debug)]
pub struct Tier<K: CacheKey> {
    inner: Option<moka::future::Cache<K, Timed<K::Value>>>,
    ttl: Duration,
}

/// A value and when it was stored.
#[derive(Debug, Clone)]
struct Timed<V> {
    value: V,
    stored: Instant,
}

impl<V> Timed<V> {
    fn now(value: V) -> Self {
        Self {
            value,
            stored: Instant::now(),
        }
    }
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cache,
    /// Looked up or computed by this call.
    Fresh,
    /// An expired cache entry, served because recomputing it failed for a passing reason.
    Stale,
}

/// Errors after which an expired value is better than none.
pub trait Transient {
    fn is_transient(&self) -> bool;
}

impl<K: CacheKey> Tier<K> {
    pub fn new(enabled: bool, max_entries: u64, ttl: Duration, stale_for: Duration) -> Self {
        let inner = enabled.then(|| {
            moka::future::Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(ttl + stale_for)
                .build()
        });
        Self { inner, ttl }
    }

    /// The cached value for `key`, or the result of `compute` (stored on success). Concurrent
    /// callers for one missing key share a single run of `compute`.
    pub async fn get_or_compute<F, E>(&self, key: K, compute: F) -> Result<(K::Value, Source), E>
    where
        F: Future<Output = Result<K::Value, E>>,
        E: Transient + Clone + Send + Sync + 'static,
    {
        let Some(cache) = &self.inner else {
            return compute.await.map(|value| (value, Source::Fresh));
        };
        // A plain read first: hits, the common case, skip the entry machinery.
        match cache.get(&key).await {
            Some(found) if found.stored.elapsed() <= self.ttl => {
                return Ok((found.value, Source::Cache));
            }
            Some(expired) => {
                return match compute.await {
                    Ok(value) => {
                        cache.insert(key, Timed::now(value.clone())).await;
                        Ok((value, Source::Fresh))
                    }
                    Err(error) if error.is_transient() => Ok((expired.value, Source::Stale)),
                    Err(error) => Err(error),
                };
            }
            None => {}
        }
        let entry = cache
            .entry(key)
            .or_try_insert_with(async { compute.await.map(Timed::now) })
            .await
            .map_err(|error: Arc<E>| E::clone(&error))?;
        let source = if entry.is_fresh() {
            Source::Fresh
        } else {
            Source::Cache
        };
        Ok((entry.into_value().value, source))
    }

    /// The value for `key` while it is fresh.
    pub async fn get(&self, key: &K) -> Option<K::Value> {
        let cache = self.inner.as_ref()?;
        cache
            .get(key)
            .await
            .filter(|found| found.stored.elapsed() <= self.ttl)
            .map(|found| found.value)
    }

    pub async fn insert(&self, key: K, value: K::Value) {
        if let Some(cache) = &self.inner {
            cache.insert(key, Timed::now(value)).await;
        }
    }

    /// Entries held now (approximate: moka applies writes in batches).
    pub fn entry_count(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, moka::future::Cache::entry_count)
    }
}

/// The caches the prediction path uses.
#[derive(Debug)]
pub struct Caches {
    pub features: Tier<FeatureKey>,
    pub predictions: Tier<PredictionKey>,
}

impl Caches {
    pub fn new(settings: &CacheSettings) -> Self {
        Self {
            features: Tier::new(
                settings.enabled,
                settings.features_max_entries,
                Duration::from_secs(settings.features_ttl_secs),
                Duration::from_secs(settings.stale_ttl_secs),
            ),
            predictions: Tier::new(
                settings.enabled,
                settings.predictions_max_entries,
                Duration::from_secs(settings.predictions_ttl_secs),
                Duration::from_secs(settings.stale_ttl_secs),
            ),
        }
    }
}
