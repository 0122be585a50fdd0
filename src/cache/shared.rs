//! The shared (L2) tier: one Redis server (or the master Redis Sentinel names) through a bb8
//! pool of multiplexed connections, or a Redis Cluster through the `redis` crate's cluster
//! client, under a key prefix.
//!
//! Redis must never hurt a request: every call has a short timeout, failures are counted
//! and never returned, and a circuit breaker stops calling a Redis that keeps failing. After
//! `breaker_cooldown_ms` one call is let through as a probe: success closes the breaker,
//! failure opens it again for another cool-down.

use std::fmt::Display;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use prometheus::IntCounter;
use redis::AsyncCommands;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::keys::{self, INVALIDATION_CHANNEL, ModelFingerprintKey};
use super::pattern::KeyPattern;
use super::settings::{RedisSettings, address};
use crate::monitoring::{CacheTier, Metrics};

#[derive(Debug, thiserror::Error)]
#[error("redis.url, redis.cluster_nodes or redis.sentinel is not usable")]
pub struct RedisUrlError(#[from] redis::RedisError);

/// Counters of the shared tier since start (exported as metrics).
#[derive(Debug, Clone)]
pub struct SharedCounters {
    pub hits: IntCounter,
    pub misses: IntCounter,
    pub errors: IntCounter,
    /// Calls not made because the breaker was open.
    pub skipped: IntCounter,
}

impl SharedCounters {
    pub fn new(metrics: &Metrics) -> Self {
        let (hits, misses) = metrics.cache_counters(CacheTier::Redis);
        Self {
            hits,
            misses,
            errors: metrics.redis_errors.clone(),
            skipped: metrics.redis_skipped.clone(),
        }
    }
}

#[derive(Debug)]
struct Breaker {
    consecutive_failures: AtomicU32,
    open_until: Mutex<Option<Instant>>,
    threshold: u32,
    cooldown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
        let mut open_until = self
            .open_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if open_until.take().is_some() {
            tracing::info!("Redis answering again: circuit breaker closed");
        }
    }

    /// Logged once when the breaker opens; a probe that fails again re-opens it quietly (a
    /// Redis that stays down, or refuses the password, is one line, not one a cool-down).
    fn failed(&self) {
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= self.threshold {
            let mut open_until = self
                .open_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if open_until.is_none() {
                tracing::warn!(failures, "Redis failing: circuit breaker open");
            }
            *open_until = Some(Instant::now() + self.cooldown);
        }
    }
}

/// The server new connections go to: one named by its URL, or the master a set of Sentinels
/// names at the time of connecting (so after a failover, a new connection reaches the new
/// master).
#[derive(Clone)]
enum Target {
    Server {
        client: redis::Client,
        address: String,
    },
    Sentinel {
        client: Arc<tokio::sync::Mutex<SentinelClient>>,
        master_name: String,
    },
}

impl Target {
    fn server(url: &SecretString) -> Result<Self, RedisUrlError> {
        Ok(Self::Server {
            client: redis::Client::open(url.expose_secret())?,
            address: address(url),
        })
    }

    /// The master of `[redis.sentinel]`, reached with `redis.url`'s password and database.
    fn sentinel(settings: &RedisSettings) -> Result<Self, RedisUrlError> {
        let master = redis::IntoConnectionInfo::into_connection_info(settings.url.expose_secret())?;
        let sentinels = settings
            .sentinel
            .nodes
            .iter()
            .map(ExposeSecret::expose_secret)
            .collect();
        let client = SentinelClient::build(
            sentinels,
            settings.sentinel.master_name.clone(),
            Some(
                SentinelNodeConnectionInfo::default()
                    .set_redis_connection_info(master.redis_settings().clone()),
            ),
            SentinelServerType::Master,
        )?;
        Ok(Self::Sentinel {
            client: Arc::new(tokio::sync::Mutex::new(client)),
            master_name: settings.sentinel.master_name.clone(),
        })
    }

    async fn client(&self) -> redis::RedisResult<redis::Client> {
        match self {
            Self::Server { client, .. } => Ok(client.clone()),
            Self::Sentinel { client, .. } => client.lock().await.async_get_client().await,
        }
    }
}

/// Where it points, safe to log (never a password).
impl Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Server { address, .. } => f.write_str(address),
            Self::Sentinel { master_name, .. } => write!(f, "sentinel master {master_name}"),
        }
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Display::fmt(self, f)
    }
}

/// Pooled connections to one Redis server. bb8-redis's manager sends a PING on every
/// checkout, a round trip before each call; here a connection is trusted until a call on it
/// fails or never finishes (as one to a master demoted by a failover does: it refuses
/// writes), and then replaced.
#[derive(Debug)]
struct Manager(Target);

struct Pooled {
    connection: redis::aio::MultiplexedConnection,
    /// A call started and has not ended well (set before, cleared after).
    in_doubt: bool,
}

impl bb8::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = redis::RedisError;

    async fn connect(&self) -> Result<Pooled, redis::RedisError> {
        Ok(Pooled {
            connection: self
                .0
                .client()
                .await?
                .get_multiplexed_async_connection()
                .await?,
            in_doubt: false,
        })
    }

    async fn is_valid(&self, pooled: &mut Pooled) -> Result<(), redis::RedisError> {
        redis::cmd("PING").query_async(&mut pooled.connection).await
    }

    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        pooled.in_doubt
    }
}

/// Where the shared tier lives.
enum Backend {
    Server(bb8::Pool<Manager>),
    /// Connected on first use, so a cluster that is down at start is just an open breaker.
    Cluster {
        client: Box<ClusterClient>,
        connection: tokio::sync::OnceCell<ClusterConnection>,
    },
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Server(_) => "Server",
            Self::Cluster { .. } => "Cluster",
        })
    }
}

/// One connection of either backend; commands sent through it go where they belong (in a
/// cluster, to the node holding the key's slot).
enum Connection<'a> {
    Server(bb8::PooledConnection<'a, Manager>),
    Cluster(ClusterConnection),
}

impl Connection<'_> {
    /// Marks a pooled connection in doubt until [`Self::ended_well`]: dropped mid-call (a
    /// timeout) or failed, it is replaced instead of reused.
    fn starting(&mut self) {
        if let Self::Server(pooled) = self {
            pooled.in_doubt = true;
        }
    }

    fn ended_well(&mut self) {
        if let Self::Server(pooled) = self {
            pooled.in_doubt = false;
        }
    }
}

impl redis::aio::ConnectionLike for Connection<'_> {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Server(pooled) => pooled.connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Server(pooled) => pooled
                .connection
                .req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(pooled) => pooled.connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

impl Backend {
    fn new(
        settings: &RedisSettings,
        target: Option<Target>,
        timeout: Duration,
    ) -> Result<Self, RedisUrlError> {
        if let Some(target) = target {
            let manager = Manager(target);
            let pool = bb8::Pool::builder()
                .max_size(settings.max_connections)
                .connection_timeout(timeout)
                .test_on_check_out(false)
                .build_unchecked(manager);
            return Ok(Self::Server(pool));
        }
        let nodes = settings
            .cluster_nodes
            .iter()
            .map(ExposeSecret::expose_secret);
        let client = ClusterClient::builder(nodes)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(1)
            .build()?;
        Ok(Self::Cluster {
            client: Box::new(client),
            connection: tokio::sync::OnceCell::new(),
        })
    }

    async fn connection(&self) -> Option<Connection<'_>> {
        match self {
            Self::Server(pool) => pool.get().await.ok().map(Connection::Server),
            Self::Cluster { client, connection } => connection
                .get_or_try_init(|| client.get_async_connection())
                .await
                .ok()
                .cloned()
                .map(Connection::Cluster),
        }
    }
}

#[derive(Debug)]
pub struct SharedTier {
    backend: Backend,
    /// The servers tried in order for pub/sub: the server, or the cluster's configured nodes
    /// (a message published on any cluster node reaches the subscribers of every node).
    pubsub: Vec<Target>,
    prefix: String,
    timeout: Duration,
    breaker: Breaker,
    counters: SharedCounters,
    /// Where writes behind an answer run, so shutdown can wait for them.
    tasks: TaskTracker,
}

impl SharedTier {
    /// Connects lazily: a Redis that is down at start is just a breaker that opens. Writes
    /// behind answers run on `tasks`.
    pub fn new(
        settings: &RedisSettings,
        metrics: &Metrics,
        tasks: TaskTracker,
    ) -> Result<Self, RedisUrlError> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        // The one server (or Sentinel's master) of a pool; none for a cluster.
        let target = if settings.sentinel.is_on() {
            Some(Target::sentinel(settings)?)
        } else if settings.cluster_nodes.is_empty() {
            Some(Target::server(&settings.url)?)
        } else {
            None
        };
        let pubsub = match &target {
            Some(target) => vec![target.clone()],
            None => settings
                .cluster_nodes
                .iter()
                .map(Target::server)
                .collect::<Result<_, _>>()?,
        };
        Ok(Self {
            backend: Backend::new(settings, target, timeout)?,
            pubsub,
            prefix: settings.key_prefix.clone(),
            timeout,
            breaker: Breaker {
                consecutive_failures: AtomicU32::new(0),
                open_until: Mutex::new(None),
                threshold: settings.breaker_failures,
                cooldown: Duration::from_millis(settings.breaker_cooldown_ms),
            },
            counters: SharedCounters::new(metrics),
            tasks,
        })
    }

    /// Connections of the server pool as `(in use, idle)`; `None` for a cluster, whose
    /// client keeps one multiplexed connection per node.
    pub fn pool_state(&self) -> Option<(u32, u32)> {
        match &self.backend {
            Backend::Server(pool) => {
                let state = pool.state();
                Some((
                    state.connections - state.idle_connections,
                    state.idle_connections,
                ))
            }
            Backend::Cluster { .. } => None,
        }
    }

    pub fn counters(&self) -> &SharedCounters {
        &self.counters
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// `key` under the prefix.
    pub fn key(&self, key: &impl Display) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs one Redis call under the breaker and the timeout; `None` when it was skipped or
    /// failed (counted either way).
    async fn call<T, F>(&self, call: F) -> Option<T>
    where
        F: AsyncFnOnce(&mut Connection<'_>) -> redis::RedisResult<T>,
    {
        if !self.breaker.allows() {
            self.counters.skipped.inc();
            return None;
        }
        let attempt = async {
            let mut connection = self.backend.connection().await?;
            connection.starting();
            let value = call(&mut connection).await.ok()?;
            connection.ended_well();
            Some(value)
        };
        if let Ok(Some(value)) = tokio::time::timeout(self.timeout, attempt).await {
            self.breaker.succeeded();
            Some(value)
        } else {
            self.counters.errors.inc();
            self.breaker.failed();
            None
        }
    }

    /// A cache lookup: counted as a hit or a miss.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let found = self.read(key).await;
        if found.is_some() {
            self.counters.hits.inc();
        } else {
            self.counters.misses.inc();
        }
        found
    }

    /// Reads `key` (state such as a routing, not a cache entry: not counted as a lookup).
    pub async fn read(&self, key: &str) -> Option<Vec<u8>> {
        self.call(async |connection| connection.get(key).await)
            .await
            .flatten()
    }

    /// Runs `script` on `key` (under the prefix) with `args`, under the breaker and timeout;
    /// `None` when it was skipped or failed.
    pub async fn run_script(
        &self,
        script: &redis::Script,
        key: &impl Display,
        args: &[i64],
    ) -> Option<Vec<i64>> {
        let key = self.key(key);
        self.call(async |connection| {
            let mut invocation = script.key(&key);
            for arg in args {
                invocation.arg(*arg);
            }
            invocation.invoke_async(connection).await
        })
        .await
    }

    /// Looks many keys up with one `MGET` (split by slot in a cluster).
    pub async fn get_many(&self, keys: &[String]) -> Vec<Option<Vec<u8>>> {
        let found: Vec<Option<Vec<u8>>> = self
            .call(async |connection| connection.mget(keys).await)
            .await
            .filter(|found: &Vec<_>| found.len() == keys.len())
            .unwrap_or_else(|| vec![None; keys.len()]);
        let hits = found.iter().filter(|value| value.is_some()).count() as u64;
        self.counters.hits.inc_by(hits);
        self.counters.misses.inc_by(keys.len() as u64 - hits);
        found
    }

    /// Stores `fingerprint` as the artifact of model `name` `version` and returns the one it
    /// replaced (`Some(None)` when there was none; `None` when Redis could not be reached).
    async fn swap_model_fingerprint(
        &self,
        name: &str,
        version: &str,
        fingerprint: &str,
    ) -> Option<Option<String>> {
        let key = self.key(&ModelFingerprintKey { name, version });
        self.call(async |connection| {
            redis::cmd("SET")
                .arg(&key)
                .arg(fingerprint)
                .arg("GET")
                .query_async(connection)
                .await
        })
        .await
    }

    pub async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let seconds = ttl.as_secs().max(1);
        let _: Option<()> = self
            .call(async |connection| connection.set_ex(key, value, seconds).await)
            .await;
    }

    /// [`SharedTier::set`] behind the caller's back, on the tracked tasks.
    pub fn set_behind(self: &Arc<Self>, key: String, value: Vec<u8>, ttl: Duration) {
        let shared = Arc::clone(self);
        self.tasks
            .spawn(async move { shared.set(&key, value, ttl).await });
    }

    /// Stores `value` at `key` with no expiry: state every replica reads (a model's
    /// routing), not a cache entry. `None` when Redis could not take it.
    pub async fn set_persistent(&self, key: &str, value: Vec<u8>) -> Option<()> {
        self.call(async |connection| connection.set(key, value).await)
            .await
    }

    /// Publishes `message` on `channel` (under the prefix) to every replica, this one
    /// included: the number of subscribers that heard it on the node it was published to,
    /// or `None` when no node answered.
    pub async fn publish(&self, channel: &str, message: &str) -> Option<u64> {
        let channel = self.key(&channel);
        for target in &self.pubsub {
            let connected = async {
                target
                    .client()
                    .await?
                    .get_multiplexed_async_connection()
                    .await
            };
            if let Ok(mut connection) = connected.await {
                return connection.publish(&channel, message).await.ok();
            }
        }
        None
    }

    /// Calls `on_message` with each message published on `channel` (under the prefix) by
    /// any replica, this one included, until `stop` is cancelled; on the tracked tasks.
    pub fn follow(
        &self,
        stop: CancellationToken,
        channel: &str,
        on_message: impl Fn(String) + Send + 'static,
    ) {
        let (targets, channel) = (self.pubsub.clone(), self.key(&channel));
        let failures = self.counters.errors.clone();
        self.tasks.spawn(async move {
            stop.run_until_cancelled(follow_channel(targets, channel, failures, on_message))
                .await;
        });
    }

    /// Drops the shared predictions of every model version whose file differs from the one
    /// that made them (a model replaced under the same version), here and on every replica.
    /// `models` are `(name, version, fingerprint)`. Bounded in time: a Redis that does not
    /// answer delays the start by at most a few seconds.
    pub async fn forget_replaced_models(&self, models: &[(&str, &str, &str)]) {
        let forget = async {
            for &(name, version, fingerprint) in models {
                let previous = self
                    .swap_model_fingerprint(name, version, fingerprint)
                    .await;
                let Some(Some(previous)) = previous else {
                    continue;
                };
                if previous == fingerprint {
                    continue;
                }
                let pattern = match KeyPattern::predictions_of(name, version) {
                    Ok(pattern) => pattern,
                    Err(error) => {
                        tracing::warn!(%error, name, version, "cannot name the stale predictions");
                        continue;
                    }
                };
                let deleted = self.delete_matching(&pattern).await;
                let notified = self.publish_invalidation(&pattern).await;
                tracing::info!(
                    name,
                    version,
                    ?deleted,
                    ?notified,
                    "model file replaced: its cached predictions dropped"
                );
            }
        };
        if tokio::time::timeout(Duration::from_secs(5), forget)
            .await
            .is_err()
        {
            tracing::warn!("Redis too slow to check for replaced models; going on");
        }
    }

    /// Follows the invalidations every replica announces (this one's included) until `stop`
    /// is cancelled, calling `invalidate` with each pattern; on the tracked tasks.
    pub fn follow_invalidations(
        &self,
        stop: CancellationToken,
        invalidate: impl Fn(&KeyPattern) + Send + 'static,
    ) {
        self.follow(stop, INVALIDATION_CHANNEL, move |message| {
            if let Ok(pattern) = message.parse::<KeyPattern>() {
                invalidate(&pattern);
            } else {
                tracing::warn!("ignored a malformed invalidation message");
            }
        });
    }

    /// Deletes the keys matching `pattern` under the prefix, found with `SCAN` (never
    /// `KEYS`, which blocks Redis) on the server or on every primary of the cluster; `None`
    /// when Redis could not be reached.
    pub async fn delete_matching(&self, pattern: &KeyPattern) -> Option<u64> {
        self.delete_where(pattern, |_| true).await
    }

    /// Deletes the cached features and predictions of games played after `date`, which a
    /// new result changed; `None` when Redis could not be reached. (Their keys carry the
    /// history or features they were computed from, so no replica would read them again:
    /// this frees the memory they hold before their TTL.)
    pub async fn delete_games_after(&self, date: NaiveDate) -> Option<u64> {
        let mut deleted = 0;
        for pattern in [KeyPattern::every_feature(), KeyPattern::every_prediction()] {
            deleted += self
                .delete_where(&pattern, |key| {
                    keys::game_date(key).is_some_and(|played| played > date)
                })
                .await?;
        }
        Some(deleted)
    }

    /// Deletes the cached values matching `pattern` whose key (without the prefix) `wanted`
    /// picks.
    async fn delete_where(
        &self,
        pattern: &KeyPattern,
        wanted: impl Fn(&str) -> bool + Copy,
    ) -> Option<u64> {
        let full = format!("{}{pattern}", self.prefix);
        let mut connection = self.backend.connection().await?;
        connection.starting();
        let mut deleted = 0;
        match &mut connection {
            Connection::Server(_) => {
                deleted +=
                    scan_and_unlink(&mut connection, &self.prefix, &full, None, wanted).await?;
            }
            Connection::Cluster(cluster) => {
                for (host, port) in primaries(cluster).await? {
                    let node =
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                    deleted +=
                        scan_and_unlink(&mut connection, &self.prefix, &full, Some(node), wanted)
                            .await?;
                }
            }
        }
        connection.ended_well();
        Some(deleted)
    }

    /// Tells every replica (this one included) to drop matching in-process entries; the
    /// number of subscribers that heard it on the node it was published to (every replica,
    /// as they subscribe to the same first reachable node), or `None` when no node answered.
    pub async fn publish_invalidation(&self, pattern: &KeyPattern) -> Option<u64> {
        self.publish(INVALIDATION_CHANNEL, pattern.as_str()).await
    }
}

/// `SCAN`s one node (or the server) for keys matching `pattern` and unlinks those under
/// `prefix` that hold cached values and that `wanted` picks; in a cluster `UNLINK` is split
/// by slot, so keys on any node may go in one call.
async fn scan_and_unlink(
    connection: &mut Connection<'_>,
    prefix: &str,
    pattern: &str,
    node: Option<RoutingInfo>,
    wanted: impl Fn(&str) -> bool,
) -> Option<u64> {
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(500);
        let (next, mut keys): (u64, Vec<String>) = match (&mut *connection, &node) {
            (Connection::Cluster(cluster), Some(node)) => {
                let reply = cluster.route_command(scan, node.clone()).await.ok()?;
                redis::from_redis_value(reply).ok()?
            }
            _ => scan.query_async(&mut *connection).await.ok()?,
        };
        keys.retain(|key| {
            key.strip_prefix(prefix)
                .is_some_and(|key| keys::holds_cached_value(key) && wanted(key))
        });
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

/// The addresses of the cluster's primaries, from `CLUSTER NODES`
/// (`<id> <host>:<port>@<bus-port>[,<hostname>] <flags> ...`).
async fn primaries(cluster: &mut ClusterConnection) -> Option<Vec<(String, u16)>> {
    let reply = cluster
        .route_command(
            redis::cmd("CLUSTER").arg("NODES").clone(),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
        )
        .await
        .ok()?;
    let nodes: String = redis::from_redis_value(reply).ok()?;
    let primaries = nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = fields.nth(1)?;
            let flags = fields.next()?;
            let is_live_primary =
                flags.split(',').any(|flag| flag == "master") && !flags.contains("fail");
            let (host, port) = address.split(['@', ',']).next()?.rsplit_once(':')?;
            is_live_primary.then(|| Some((host.to_owned(), port.parse().ok()?)))?
        })
        .collect();
    Some(primaries)
}

/// Listens on `channel` of the first of `targets` that answers (a server, or nodes of one
/// cluster) and calls `on_message` with each message, subscribing again a second after any
/// error. A failure is counted in `failures` each time and logged when it is new (the first,
/// or another error than the last); a subscription after failures is logged once. Never
/// ends by itself: the caller cancels it.
async fn follow_channel(
    targets: Vec<Target>,
    channel: String,
    failures: IntCounter,
    on_message: impl Fn(String),
) {
    use futures_util::StreamExt;
    let mut last_problem: Option<String> = None;
    loop {
        for target in &targets {
            let node = target.to_string();
            let subscribed = async {
                let mut pubsub = target.client().await?.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            match subscribed.await {
                Ok(mut pubsub) => {
                    if last_problem.take().is_some() {
                        tracing::info!(%node, %channel, "subscribed again");
                    }
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        if let Ok(text) = message.get_payload::<String>() {
                            on_message(text);
                        } else {
                            tracing::warn!(%channel, "ignored a message that is not text");
                        }
                    }
                    tracing::warn!(%node, %channel, "subscription ended; resubscribing");
                    break;
                }
                Err(error) => {
                    failures.inc();
                    let problem = format!("{node}: {error}");
                    if last_problem.as_ref() != Some(&problem) {
                        tracing::warn!(
                            %node,
                            %channel,
                            %error,
                            "cannot subscribe; retrying every second, logged again only if \
                             the error changes"
                        );
                        last_problem = Some(problem);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
