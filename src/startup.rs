//! Building and running the application: the one builder `main` and every test use.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use chrono::NaiveDate;

use crate::auth::{Authenticator, Gatekeeper, JwtVerifier, KeyStore, Rate, RateLimiter};
use crate::cache::{Caches, KeyPattern, SharedTier, follow_invalidations};
use crate::db;
use crate::features::{EmbeddedStore, FeatureSource, FeatureVector, History, PostgresStore};
use crate::http::{self, Admission, BodyLimit, Limits};
use crate::models::{ModelRegistry, PoolOptions, RegistryOptions};
use crate::monitoring::{LogWriter, Metrics, PredictionLog, Recorder, Sampler};
use crate::predict::PredictService;
use crate::settings::{KeyStoreKind, Settings, StoreKind};

/// A bound, loaded, running server.
pub struct Application {
    port: u16,
    server: Server,
    log_writer: Option<LogWriter>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds the listener first (port 0 picks a free one), loads the data and every model
    /// (warm), then starts serving. Must be called inside a Tokio runtime.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let address = (settings.server.host.as_str(), settings.server.port);
        let listener = TcpListener::bind(address)
            .with_context(|| format!("binding {}:{}", address.0, address.1))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();

        let mut metrics = Metrics::new()?;
        metrics.count_requests = settings.monitoring.request_metrics;
        let service = load_service(settings, &metrics).await?;
        if let Some(shared) = service.caches().shared() {
            // Invalidations announced by any replica (this one included) reach this one's
            // in-process caches.
            let (urls, channel, follower) = (
                shared.pubsub_urls().to_vec(),
                shared.invalidation_channel(),
                service.clone(),
            );
            tokio::spawn(follow_invalidations(urls, channel, move |pattern| {
                follower.caches().invalidate_local(pattern);
            }));
        }
        let (log, log_writer) = if settings.prediction_log.enabled {
            let pool = db::pool(&settings.database, &settings.database.url)?;
            let (log, writer) =
                PredictionLog::start(pool.clone(), &settings.prediction_log, &metrics);
            (Some((log, pool)), Some(writer))
        } else {
            (None, None)
        };
        let recorder = web::Data::new(Recorder::new(
            log,
            metrics.count_requests.then(|| metrics.predictions.clone()),
        ));
        let sampler = web::Data::new(Sampler::default());
        let metrics = web::Data::new(metrics);
        {
            let (sampler, metrics) = (sampler.clone(), metrics.clone());
            tokio::spawn(async move { sampler.run(&metrics).await });
        }
        let workers = settings.server.worker_count();
        let admission = web::Data::new(Admission::new(
            settings.server.max_in_flight,
            Duration::from_millis(settings.server.request_timeout_ms),
        ));
        let limits = web::Data::new(Limits {
            max_batch: settings.server.max_batch,
        });
        let gatekeeper = web::Data::new(gatekeeper(settings, service.caches().shared())?);
        let service = web::Data::new(service);
        let body_limit = web::Data::new(BodyLimit(settings.server.max_body_bytes));
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(http::observe))
                .wrap(from_fn(http::request_id::middleware))
                .app_data(body_limit.clone())
                .app_data(service.clone())
                .app_data(gatekeeper.clone())
                .app_data(admission.clone())
                .app_data(limits.clone())
                .app_data(recorder.clone())
                .app_data(sampler.clone())
                .app_data(metrics.clone())
                .configure(http::configure)
                .default_service(web::to(http::not_found))
        })
        .workers(workers)
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        // Signals are handled once, by `shutdown_signal`, which stops through the handle.
        .disable_signals()
        .listen(listener)
        .context("starting the HTTP server")?
        .run();
        tracing::info!(port, workers, "serving");
        Ok(Self {
            port,
            server,
            log_writer,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server: `handle.stop(true)` stops accepting, lets requests in flight finish
    /// (up to `server.shutdown_timeout_secs`), then ends `run_until_stopped`.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, then writes what the prediction log still holds.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Some(writer) = self.log_writer {
            writer.shutdown().await;
        }
        served
    }
}

async fn load_service(settings: &Settings, metrics: &Metrics) -> anyhow::Result<PredictService> {
    let started = std::time::Instant::now();
    let source = match settings.features.store {
        StoreKind::Embedded => {
            let store = EmbeddedStore::load(&settings.data.dir, |_| {})
                .with_context(|| format!("loading games from {}", settings.data.dir.display()))?;
            tracing::info!(games = store.games().len(), "embedded feature store loaded");
            FeatureSource::Embedded(Arc::new(store))
        }
        StoreKind::Postgres => {
            let database = &settings.database;
            let primary = db::pool(database, &database.url)?;
            if database.migrate_on_start {
                let applied = db::migrate(&primary)
                    .await
                    .context("migrating database.url")?;
                tracing::info!(?applied, "migrations applied");
            }
            FeatureSource::Postgres(PostgresStore::new(db::read_pool(database, &primary)?))
        }
    };
    let inference = &settings.inference;
    let registry = ModelRegistry::load(
        &RegistryOptions {
            dir: &settings.models.dir,
            default: &settings.models.default,
            ort_library: &inference.ort_library,
            pool: PoolOptions {
                inline_sessions: settings.server.worker_count(),
                inline_max_rows: inference.inline_max_rows,
                threads: inference.threads,
                queue_capacity: inference.queue_capacity,
                intra_threads: inference.intra_threads,
            },
            metrics,
        },
        warmup_vector(),
    )
    .context("loading models")?;
    tracing::info!(
        models = registry.models().len(),
        elapsed_ms = started.elapsed().as_millis(),
        "features and models ready"
    );
    let shared = if settings.redis.enabled {
        let shared = SharedTier::new(&settings.redis, metrics)?;
        forget_replaced_models(&shared, &registry).await;
        Some(Arc::new(shared))
    } else {
        None
    };
    Ok(PredictService::new(
        source,
        registry,
        Caches::new(&settings.cache, shared.as_ref(), metrics),
    ))
}

/// The auth and rate-limit settings made live; with auth off, says so loudly.
fn gatekeeper(settings: &Settings, shared: Option<&Arc<SharedTier>>) -> anyhow::Result<Gatekeeper> {
    let auth = &settings.auth;
    if !auth.enabled {
        tracing::warn!(
            "AUTH IS OFF: anyone who reaches this port may call every endpoint, admin included; \
             set auth.enabled = true (BULLPEN_ENV=production refuses to start without it)"
        );
        return Ok(Gatekeeper {
            authenticator: None,
            limiter: None,
            open_probes: true,
        });
    }
    let keys = match auth.key_store {
        KeyStoreKind::Config => KeyStore::from_config(&auth.keys),
        KeyStoreKind::Postgres => {
            KeyStore::Postgres(db::pool(&settings.database, &settings.database.url)?)
        }
    };
    let jwt = JwtVerifier::new(&auth.jwt)?;
    let limits = &settings.rate_limit;
    let default_rate = Rate {
        per_minute: limits.per_minute,
        burst: limits.burst,
    };
    let limiter = limits
        .enabled
        .then(|| RateLimiter::new(shared.cloned(), limits.replicas));
    tracing::info!(
        key_store = ?auth.key_store,
        jwt = jwt.is_some(),
        rate_limit = limiter.is_some(),
        shared_rate_limit = limiter.is_some() && shared.is_some(),
        "auth on"
    );
    Ok(Gatekeeper {
        authenticator: Some(Authenticator::new(
            keys,
            jwt,
            Duration::from_secs(auth.key_cache_ttl_secs),
            default_rate,
        )),
        limiter,
        open_probes: auth.open_probes,
    })
}

/// Drops the shared predictions of every model version whose file differs from the one
/// that made them (a model replaced under the same version), here and on every replica.
/// Bounded in time: a Redis that does not answer delays the start by at most a few seconds.
async fn forget_replaced_models(shared: &SharedTier, registry: &ModelRegistry) {
    let forget = async {
        for model in registry.models() {
            let (name, version) = (&*model.name, &*model.version);
            let previous = shared
                .swap_model_fingerprint(name, version, &model.fingerprint)
                .await;
            let Some(Some(previous)) = previous else {
                continue;
            };
            if previous == model.fingerprint {
                continue;
            }
            let pattern: KeyPattern = match format!("prediction:{name}:{version}:*").parse() {
                Ok(pattern) => pattern,
                Err(error) => {
                    tracing::warn!(%error, name, version, "cannot name the stale predictions");
                    continue;
                }
            };
            let deleted = shared.delete_matching(&pattern).await;
            let notified = shared.publish_invalidation(&pattern).await;
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

/// The features of an opening-day game between two teams with no history: a real vector
/// from the feature code that needs no data, so models warm up whatever the store's state.
fn warmup_vector() -> FeatureVector {
    let team = |code: &str| code.parse().expect("a valid team code; this is a bug");
    let date = NaiveDate::from_ymd_opt(2024, 3, 28).expect("a valid date; this is a bug");
    History::new().features(team("HOM"), team("AWY"), date)
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
