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

mod codec;
mod keys;
mod pattern;
mod settings;
mod shared;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use codec::Codec;
pub use keys::{
    CacheKey, FeatureKey, PredictionKey, RESULTS_CHANNEL, ROUTING_CHANNEL, RateLimitKey, RoutingKey,
};
pub use pattern::{KeyPattern, KeyPatternError};
pub use settings::{CacheSettings, RedisSettings};
pub use shared::{BreakerState, RedisUrlError, SharedCounters, SharedTier};

use moka::ops::compute::{CompResult, Op};
use prometheus::IntCounter;

use crate::monitoring::{CacheTier, Metrics};

/// One cache tier for one key type; `None` inside when caching is disabled.
#[derive(Debug)]
pub struct Tier<K: CacheKey> {
    inner: Option<moka::future::Cache<K, Timed<K::Value>, Hasher>>,
    ttl: Duration,
    shared: Option<Arc<SharedTier>>,
    hits: IntCounter,
    misses: IntCounter,
}

/// The in-process entries' hasher: foldhash, seeded per process as the default `SipHash` is,
/// at a fraction of its cost on a hit.
type Hasher = foldhash::fast::RandomState;

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
    /// Read from the shared tier (another replica computed it).
    Shared,
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
    pub fn new(
        enabled: bool,
        max_entries: u64,
        ttl: Duration,
        stale_for: Duration,
        shared: Option<Arc<SharedTier>>,
        (hits, misses): (IntCounter, IntCounter),
    ) -> Self {
        let inner = enabled.then(|| {
            moka::future::Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(ttl + stale_for)
                .support_invalidation_closures()
                .build_with_hasher(Hasher::default())
        });
        Self {
            inner,
            ttl,
            shared,
            hits,
            misses,
        }
    }

    /// The most entries this tier keeps in memory (0 when it keeps none).
    pub fn capacity(&self) -> u64 {
        self.inner
            .as_ref()
            .and_then(|cache| cache.policy().max_capacity())
            .unwrap_or(0)
    }

    /// Writes a value to the shared tier behind the caller's back.
    fn share(&self, key: &K, value: &K::Value) {
        if let Some(shared) = &self.shared {
            shared.set_behind(shared.key(key), value.encode(), self.ttl);
        }
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
        let found = cache.get(&key).await;
        match &found {
            Some(found) if found.stored.elapsed() <= self.ttl => self.hits.inc(),
            _ => self.misses.inc(),
        }
        match found {
            Some(found) if found.stored.elapsed() <= self.ttl => {
                return Ok((found.value, Source::Cache));
            }
            // Boxed: moka's compute future is large, and this path is rare.
            Some(expired) => {
                return Box::pin(self.refresh(cache, key, expired.value, compute)).await;
            }
            None => {}
        }
        // Single flight across tiers: one caller per key reads the shared tier and, on a
        // miss there, computes; the others wait for its value.
        let from_shared = AtomicBool::new(false);
        let load = self.load(&key, compute, &from_shared);
        let entry = cache
            .entry(key.clone())
            .or_try_insert_with(load)
            .await
            .map_err(|error: Arc<E>| E::clone(&error))?;
        let source = match (entry.is_fresh(), from_shared.load(Ordering::Relaxed)) {
            (true, true) => Source::Shared,
            (true, false) => Source::Fresh,
            (false, _) => Source::Cache,
        };
        Ok((entry.into_value().value, source))
    }

    /// The shared tier's value for `key`, or `compute`'s (then written to the shared tier);
    /// `from_shared` says which.
    async fn load<F, E>(
        &self,
        key: &K,
        compute: F,
        from_shared: &AtomicBool,
    ) -> Result<Timed<K::Value>, E>
    where
        F: Future<Output = Result<K::Value, E>>,
    {
        if let Some(shared) = &self.shared {
            let found = shared.get(&shared.key(key)).await;
            if let Some(value) = found.as_deref().and_then(K::Value::decode) {
                from_shared.store(true, Ordering::Relaxed);
                return Ok(Timed::now(value));
            }
        }
        let value = compute.await?;
        self.share(key, &value);
        Ok(Timed::now(value))
    }

    /// Replaces the expired value of `key`, single flight as for a missing key: calls on one
    /// key run one at a time, so the first reads the shared tier (then computes) and those
    /// waiting behind it find its fresh value. When the new value cannot be had for a
    /// transient reason, the expired one is served, flagged stale.
    async fn refresh<F, E>(
        &self,
        cache: &moka::future::Cache<K, Timed<K::Value>, Hasher>,
        key: K,
        stale: K::Value,
        compute: F,
    ) -> Result<(K::Value, Source), E>
    where
        F: Future<Output = Result<K::Value, E>>,
        E: Transient + Send + Sync + 'static,
    {
        let from_shared = AtomicBool::new(false);
        let refreshed = cache
            .entry(key.clone())
            .and_try_compute_with(|current| async {
                if current.is_some_and(|entry| entry.value().stored.elapsed() <= self.ttl) {
                    // Refreshed by the call before this one.
                    return Ok(Op::Nop);
                }
                self.load(&key, compute, &from_shared).await.map(Op::Put)
            })
            .await;
        match refreshed {
            Ok(CompResult::Inserted(entry) | CompResult::ReplacedWith(entry)) => {
                let source = if from_shared.load(Ordering::Relaxed) {
                    Source::Shared
                } else {
                    Source::Fresh
                };
                Ok((entry.into_value().value, source))
            }
            Ok(CompResult::Unchanged(entry)) => Ok((entry.into_value().value, Source::Cache)),
            // Evicted meanwhile and not put back: only `Op::Nop` on a missing entry does this,
            // which the closure never asks for; the expired value is what there is.
            Ok(CompResult::StillNone(_) | CompResult::Removed(_)) => Ok((stale, Source::Stale)),
            Err(error) if error.is_transient() => Ok((stale, Source::Stale)),
            Err(error) => Err(error),
        }
    }

    /// Until when the value for `key` is fresh, when this tier holds one that is.
    pub async fn fresh_until(&self, key: &K) -> Option<Instant> {
        let stored = self.inner.as_ref()?.get(key).await?.stored;
        let until = stored + self.ttl;
        (until > Instant::now()).then_some(until)
    }

    /// Counts a hit on a value a caller kept from this tier and served again: a hit of this
    /// replica's memory as much as a lookup that finds it.
    pub fn count_hit(&self) {
        self.hits.inc();
    }

    /// The value for `key` while it is fresh.
    pub async fn get(&self, key: &K) -> Option<K::Value> {
        let cache = self.inner.as_ref()?;
        let found = cache
            .get(key)
            .await
            .filter(|found| found.stored.elapsed() <= self.ttl)
            .map(|found| found.value);
        if found.is_some() {
            self.hits.inc();
        } else {
            self.misses.inc();
        }
        found
    }

    /// Looks `keys` up in the shared tier with one call; what it holds fills this tier.
    pub async fn get_shared(&self, keys: &[K]) -> Vec<Option<K::Value>> {
        let Some(shared) = &self.shared else {
            return vec![None; keys.len()];
        };
        let rendered: Vec<String> = keys.iter().map(|key| shared.key(key)).collect();
        let mut values = Vec::with_capacity(keys.len());
        for (key, bytes) in keys.iter().zip(shared.get_many(&rendered).await) {
            let value = bytes.as_deref().and_then(K::Value::decode);
            if let (Some(cache), Some(value)) = (&self.inner, &value) {
                cache.insert(key.clone(), Timed::now(value.clone())).await;
            }
            values.push(value);
        }
        values
    }

    pub async fn insert(&self, key: K, value: K::Value) {
        if let Some(cache) = &self.inner {
            self.share(&key, &value);
            cache.insert(key, Timed::now(value)).await;
        }
    }

    /// Drops the in-process entries of games played after `date`.
    fn invalidate_after(&self, date: chrono::NaiveDate) {
        self.invalidate_if(move |key| key.game().date() > date);
    }

    /// Drops the in-process entries whose rendered key matches.
    fn invalidate_local(&self, pattern: &KeyPattern) {
        let pattern = pattern.clone();
        self.invalidate_if(move |key| pattern.matches(&key.to_string()));
    }

    /// Drops the in-process entries whose key `dropped` picks (moka runs it behind).
    fn invalidate_if(&self, dropped: impl Fn(&K) -> bool + Send + Sync + 'static) {
        if let Some(cache) = &self.inner {
            let registered = cache.invalidate_entries_if(move |key, _| dropped(key));
            if let Err(error) = registered {
                tracing::error!(%error, "cannot invalidate cache entries");
            }
        }
    }
}

/// The caches the prediction path uses.
#[derive(Debug)]
pub struct Caches {
    pub features: Tier<FeatureKey>,
    pub predictions: Tier<PredictionKey>,
    shared: Option<Arc<SharedTier>>,
    /// Counts the invalidations of this replica's in-process entries.
    epoch: AtomicU64,
}

impl Caches {
    /// Drops this replica's in-process entries that match `pattern`.
    pub fn invalidate_local(&self, pattern: &KeyPattern) {
        self.features.invalidate_local(pattern);
        self.predictions.invalidate_local(pattern);
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// How many times in-process entries were invalidated: what was read from this tier
    /// before the count moved may be gone from it now.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Drops this replica's in-process features and predictions of games after `date`,
    /// whose history a new result changed. Their keys carry the history they were computed
    /// from, so they could not be read again anyway (here, in Redis, or on another replica):
    /// this frees the room they hold.
    pub fn invalidate_after(&self, date: chrono::NaiveDate) {
        self.features.invalidate_after(date);
        self.predictions.invalidate_after(date);
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// The shared tier, when Redis is configured.
    pub fn shared(&self) -> Option<&Arc<SharedTier>> {
        self.shared.as_ref()
    }

    pub fn new(
        settings: &CacheSettings,
        shared: Option<&Arc<SharedTier>>,
        metrics: &Metrics,
    ) -> Self {
        Self {
            features: Tier::new(
                settings.enabled,
                settings.features_max_entries,
                Duration::from_secs(settings.features_ttl_secs),
                Duration::from_secs(settings.stale_ttl_secs),
                shared.cloned(),
                metrics.cache_counters(CacheTier::Memory),
            ),
            predictions: Tier::new(
                settings.enabled,
                settings.predictions_max_entries,
                Duration::from_secs(settings.predictions_ttl_secs),
                Duration::from_secs(settings.stale_ttl_secs),
                shared.cloned(),
                metrics.cache_counters(CacheTier::Memory),
            ),
            shared: shared.cloned(),
            epoch: AtomicU64::new(0),
        }
    }
}
