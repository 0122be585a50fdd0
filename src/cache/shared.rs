//! The shared (L2) tier: Redis through bb8-redis, under a key prefix.
//!
//! Redis must never hurt a request: every call has a short timeout, failures are counted
//! and never returned, and a circuit breaker stops calling a Redis that keeps failing. After
//! `breaker_cooldown_ms` one call is let through as a probe: success closes the breaker,
//! failure opens it again for another cool-down.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bb8_redis::RedisConnectionManager;
use redis::AsyncCommands;
use serde::Serialize;

use super::pattern::KeyPattern;
use crate::settings::RedisSettings;

#[derive(Debug, thiserror::Error)]
#[error("redis.url is not a Redis URL: {0}")]
pub struct RedisUrlError(#[from] redis::RedisError);

/// Counters of the shared tier since start.
#[derive(Debug, Default)]
pub struct SharedCounters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub errors: AtomicU64,
    /// Calls not made because the breaker was open.
    pub skipped: AtomicU64,
}

#[derive(Debug)]
struct Breaker {
    consecutive_failures: AtomicU32,
    open_until: Mutex<Option<Instant>>,
    threshold: u32,
    cooldown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    /// The cool-down is over; the next call is the probe.
    HalfOpen,
}

impl Breaker {
    fn allows(&self) -> bool {
        let open_until = self
            .open_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        open_until.is_none_or(|until| Instant::now() >= until)
    }

    fn state(&self) -> BreakerState {
        let open_until = self
            .open_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match *open_until {
            None => BreakerState::Closed,
            Some(until) if Instant::now() < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    fn succeeded(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
        *self
            .open_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    fn failed(&self) {
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= self.threshold {
            let mut open_until = self
                .open_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if open_until.is_none_or(|until| Instant::now() >= until) {
                tracing::warn!(failures, "Redis failing: circuit breaker open");
            }
            *open_until = Some(Instant::now() + self.cooldown);
        }
    }
}

#[derive(Debug)]
pub struct SharedTier {
    pool: bb8::Pool<RedisConnectionManager>,
    url: String,
    prefix: String,
    timeout: Duration,
    breaker: Breaker,
    counters: SharedCounters,
}

impl SharedTier {
    /// Connects lazily: a Redis that is down at start is just a breaker that opens.
    pub fn new(settings: &RedisSettings) -> Result<Self, RedisUrlError> {
        let manager = RedisConnectionManager::new(settings.url.as_str())?;
        let timeout = Duration::from_millis(settings.timeout_ms);
        let pool = bb8::Pool::builder()
            .max_size(settings.max_connections)
            .connection_timeout(timeout)
            .build_unchecked(manager);
        Ok(Self {
            pool,
            url: settings.url.clone(),
            prefix: settings.key_prefix.clone(),
            timeout,
            breaker: Breaker {
                consecutive_failures: AtomicU32::new(0),
                open_until: Mutex::new(None),
                threshold: settings.breaker_failures,
                cooldown: Duration::from_millis(settings.breaker_cooldown_ms),
            },
            counters: SharedCounters::default(),
        })
    }

    pub fn counters(&self) -> &SharedCounters {
        &self.counters
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    pub fn key(&self, key: &impl std::fmt::Display) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs one Redis call under the breaker and the timeout; `None` when it was skipped or
    /// failed (counted either way).
    async fn call<T, F>(&self, call: F) -> Option<T>
    where
        F: AsyncFnOnce(
            &mut bb8::PooledConnection<'_, RedisConnectionManager>,
        ) -> redis::RedisResult<T>,
    {
        if !self.breaker.allows() {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let attempt = async {
            let mut connection = self.pool.get().await.ok()?;
            call(&mut connection).await.ok()
        };
        if let Ok(Some(value)) = tokio::time::timeout(self.timeout, attempt).await {
            self.breaker.succeeded();
            Some(value)
        } else {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
            self.breaker.failed();
            None
        }
    }

    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let found: Option<Vec<u8>> = self
            .call(async |connection| connection.get(key).await)
            .await
            .flatten();
        let counter = if found.is_some() {
            &self.counters.hits
        } else {
            &self.counters.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The pub/sub channel on which replicas announce invalidations.
    pub fn invalidation_channel(&self) -> String {
        format!("{}invalidate", self.prefix)
    }

    /// Deletes the keys matching `pattern` under the prefix, found with `SCAN` (never
    /// `KEYS`, which blocks Redis); `None` when Redis could not be reached.
    pub async fn delete_matching(&self, pattern: &KeyPattern) -> Option<u64> {
        let full = format!("{}{pattern}", self.prefix);
        let mut connection = self.pool.get().await.ok()?;
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&full)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut *connection)
                .await
                .ok()?;
            if !keys.is_empty() {
                let removed: u64 = redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async(&mut *connection)
                    .await
                    .ok()?;
                deleted += removed;
            }
            if next == 0 {
                return Some(deleted);
            }
            cursor = next;
        }
    }

    /// Tells every replica (this one included) to drop matching in-process entries; the
    /// number of replicas that heard it, or `None` when Redis could not be reached.
    pub async fn publish_invalidation(&self, pattern: &KeyPattern) -> Option<u64> {
        let channel = self.invalidation_channel();
        let mut connection = self.pool.get().await.ok()?;
        connection.publish(channel, pattern.as_str()).await.ok()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let seconds = ttl.as_secs().max(1);
        let _: Option<()> = self
            .call(async |connection| connection.set_ex(key, value, seconds).await)
            .await;
    }
}

/// Listens on `channel` of the Redis at `url` and calls `invalidate` with each pattern
/// announced, reconnecting a second after any error. Runs until the process ends.
pub async fn follow_invalidations(url: String, channel: String, invalidate: impl Fn(&KeyPattern)) {
    use futures_util::StreamExt;
    loop {
        let subscribed = async {
            let client = redis::Client::open(url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match subscribed.await {
            Ok(mut pubsub) => {
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    let pattern = message
                        .get_payload::<String>()
                        .ok()
                        .and_then(|p| p.parse().ok());
                    if let Some(pattern) = pattern {
                        invalidate(&pattern);
                    } else {
                        tracing::warn!("ignored a malformed invalidation message");
                    }
                }
                tracing::warn!("invalidation subscription ended; resubscribing");
            }
            Err(error) => tracing::warn!(%error, "cannot subscribe to invalidations; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
