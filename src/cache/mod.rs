//! The in-process (L1) cache tier: one bounded moka cache per key type.
//!
//! Keys are types ([`CacheKey`]), each naming the type of value it stores, so a prediction
//! can never be read back as features. Lookups go through [`Tier::get_or_compute`]: when many
//! requests miss on one key at once, moka runs the computation once and hands its value to all
//! of them (single flight). A shared tier slots in behind this one without touching callers.

mod keys;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use keys::{CacheKey, FeatureKey, GameKey, PredictionKey};

use crate::settings::CacheSettings;

/// One cache tier for one key type; `None` inside when caching is disabled.
#[derive(Debug)]
pub struct Tier<K: CacheKey> {
    inner: Option<moka::future::Cache<K, K::Value>>,
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cache,
    /// Looked up or computed by this call.
    Fresh,
}

impl<K: CacheKey> Tier<K> {
    pub fn new(enabled: bool, max_entries: u64, ttl: Duration) -> Self {
        let inner = enabled.then(|| {
            moka::future::Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(ttl)
                .build()
        });
        Self { inner }
    }

    /// The cached value for `key`, or the result of `compute` (stored on success). Concurrent
    /// callers for one missing key share a single run of `compute`.
    pub async fn get_or_compute<F, E>(&self, key: K, compute: F) -> Result<(K::Value, Source), E>
    where
        F: Future<Output = Result<K::Value, E>>,
        E: Clone + Send + Sync + 'static,
    {
        let Some(cache) = &self.inner else {
            return compute.await.map(|value| (value, Source::Fresh));
        };
        // A plain read first: hits, the common case, skip the entry machinery.
        if let Some(value) = cache.get(&key).await {
            return Ok((value, Source::Cache));
        }
        let entry = cache
            .entry(key)
            .or_try_insert_with(compute)
            .await
            .map_err(|error: Arc<E>| E::clone(&error))?;
        let source = if entry.is_fresh() {
            Source::Fresh
        } else {
            Source::Cache
        };
        Ok((entry.into_value(), source))
    }

    pub async fn get(&self, key: &K) -> Option<K::Value> {
        match &self.inner {
            Some(cache) => cache.get(key).await,
            None => None,
        }
    }

    pub async fn insert(&self, key: K, value: K::Value) {
        if let Some(cache) = &self.inner {
            cache.insert(key, value).await;
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
            ),
            predictions: Tier::new(
                settings.enabled,
                settings.predictions_max_entries,
                Duration::from_secs(settings.predictions_ttl_secs),
            ),
        }
    }
}
