//! Building and running the application: the one builder `main` and every test use. This is
//! the composition root: it turns each section of the settings into its module's service,
//! starts the background work, and on shutdown stops all of it in order.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Gatekeeper;
use crate::cache::{Caches, SharedTier};
use crate::db;
use crate::features::{
    DataSettings, EmbeddedStore, FeatureSource, LiveStore, PostgresStore, StoreKind, warmup_vector,
};
use crate::games::Pitchers;
use crate::grpc::Inference;
use crate::http::{self, Admission, BodyLimit, Drain, HeadLimits, Limits};
use crate::lb;
use crate::models::{Catalog, CatalogOptions};
use crate::monitoring::{Metrics, Sampler};
use crate::predict::{
    self, Demand, LogWriter, PredictService, PredictionLog, Recorder, RolloutSettings, ShadowJobs,
    ShadowQueue,
};
use crate::settings::Settings;

/// A bound, loaded, running server.
pub struct Application {
    port: u16,
    /// The gRPC service's port; `None` when `server.grpc_port` is 0.
    grpc_port: Option<u16>,
    server: Server,
    background: Background,
    shutdown: Shutdown,
}

/// How the server goes away when asked to: drain (`/ready` 503, still serving) for
/// `server.drain_secs`, then stop accepting and let requests in flight finish.
#[derive(Clone)]
pub struct Shutdown {
    drain: Drain,
    drain_for: Duration,
    /// `server.shutdown_timeout_secs`: for the requests in flight, then again for the
    /// background work.
    timeout: Duration,
    server: ServerHandle,
}

/// Added to what a shutdown may take before the process exits whatever is still running.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The exit status of a shutdown cut off by its hard deadline.
const EXIT_PAST_DEADLINE: i32 = 70;

/// The work that runs beside the server: every task watches `stop` and runs on `tasks`;
/// the prediction log writer is stopped last, once nothing can record any more.
struct Background {
    stop: CancellationToken,
    tasks: TaskTracker,
    log_writer: Option<LogWriter>,
    timeout: Duration,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("draining", &self.drain.is_draining())
            .field("drain_for", &self.drain_for)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds the listener first (port 0 picks a free one), loads the data and every model
    /// (warm), then starts serving. Must be called inside a Tokio runtime.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let listeners = Listeners::bind(&settings.server, &settings.lb)?;
        let (port, grpc_port) = (listeners.port, listeners.grpc_port);
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let metrics = Metrics::new(&settings.monitoring)?;
        let (log, log_writer) = start_prediction_log(settings, &metrics)?.unzip();
        let demand = Demand::load(&settings.schedule)?.map(Arc::new);
        let recorder = Recorder::new(log, demand.clone());
        let (service, shadow_jobs) = load_service(settings, &metrics, recorder, &tasks).await?;
        let drain = Drain::default();
        let background = BackgroundWork {
            metrics: &metrics,
            refresh_ms: settings.features.refresh_ms,
            rollout: &settings.rollout,
            stop: &stop,
            tasks: &tasks,
        };
        background.start(&service, shadow_jobs, demand).await;
        let sampler = background.start_sampling(settings, listeners.agent, &service, &drain)?;
        let metrics = web::Data::new(metrics);
        let server_settings = &settings.server;
        let workers = server_settings.worker_count();
        let admission = web::Data::new(Admission::new(
            server_settings.max_in_flight,
            Duration::from_millis(server_settings.request_timeout_ms),
        ));
        let limits = web::Data::new(Limits {
            max_batch: server_settings.max_batch,
        });
        let gatekeeper = web::Data::new(Gatekeeper::new(
            &settings.auth,
            &settings.rate_limit,
            &settings.database,
            service.caches().shared(),
        )?);
        if let Some(listener) = listeners.grpc {
            let inference = Inference::new(
                service.clone(),
                gatekeeper.clone().into_inner(),
                admission.get_ref().clone(),
                drain.clone(),
                metrics.clone().into_inner(),
                server_settings.max_batch,
            );
            tasks.spawn(inference.serve(listener, stop.clone(), settings.lb.orca));
        }
        let body_limit = web::Data::new(BodyLimit(server_settings.max_body_bytes));
        let head_limits = HeadLimits::new(server_settings);
        let draining = web::Data::new(drain.clone());
        let shutdown_drain = drain.clone();
        let orca = settings.lb.orca;
        let server = HttpServer::new(move || {
            let drain = drain.clone();
            // The service, admission and metrics every request reads are each worker's own
            // handles: one `web::Data` for all would move its count between cores each time.
            App::new()
                .wrap_fn(move |request, service| head_limits.enforce(request, service))
                .wrap_fn(move |request, service| drain.close_connections(request, service))
                .wrap(Condition::new(orca, from_fn(http::load_report::attach)))
                .wrap(from_fn(http::observe))
                .wrap(from_fn(http::request_id::middleware))
                .app_data(body_limit.clone())
                .app_data(web::Data::new(service.clone()))
                .app_data(gatekeeper.clone())
                .app_data(web::Data::new(admission.get_ref().clone()))
                .app_data(limits.clone())
                .app_data(sampler.clone())
                .app_data(web::Data::new(metrics.get_ref().clone()))
                .app_data(draining.clone())
                .configure(http::configure)
                .default_service(web::to(http::not_found))
        })
        .workers(workers)
        .shutdown_timeout(server_settings.shutdown_timeout_secs)
        // Signals are handled once, by `StopSignals`, which stops through the handle.
        .disable_signals()
        .listen(listeners.http)
        .context("starting the HTTP server")?
        .run();
        tracing::info!(port, grpc_port, workers, "serving");
        let shutdown = Shutdown {
            drain: shutdown_drain,
            drain_for: Duration::from_secs(server_settings.drain_secs),
            timeout: Duration::from_secs(server_settings.shutdown_timeout_secs),
            server: server.handle(),
        };
        Ok(Self {
            port,
            grpc_port,
            server,
            shutdown,
            background: Background {
                stop,
                tasks,
                log_writer,
                timeout: Duration::from_secs(server_settings.shutdown_timeout_secs),
            },
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The gRPC service's port, when it is on.
    pub fn grpc_port(&self) -> Option<u16> {
        self.grpc_port
    }

    /// Stops the server: `handle.stop(true)` stops accepting, lets requests in flight finish
    /// (up to `server.shutdown_timeout_secs`), then ends `run_until_stopped`.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Drains, then stops: what a SIGTERM does.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Serves until stopped, then stops the background work and waits for it (within
    /// `server.shutdown_timeout_secs`), writing what the prediction log still holds last.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.background.stop().await;
        served
    }
}

impl Shutdown {
    /// Marks the server draining at once, keeps serving for `server.drain_secs` (or until
    /// `cut_short` resolves, e.g. on a second signal), then stops accepting and waits for the
    /// requests in flight (up to `server.shutdown_timeout_secs`).
    pub async fn drain_then_stop(self, cut_short: impl Future<Output = ()>) {
        self.drain.start();
        tracing::info!(
            drain_secs = self.drain_for.as_secs(),
            "draining: /ready answers 503, requests are still served"
        );
        tokio::select! {
            () = tokio::time::sleep(self.drain_for) => {}
            () = cut_short => tracing::info!("drain cut short"),
        }
        tracing::info!("drained: no longer accepting, finishing requests in flight");
        self.server.stop(true).await;
    }

    /// The longest an orderly shutdown takes: the drain, the requests in flight and the
    /// background work each within their settings, and a margin.
    pub fn deadline(&self) -> Duration {
        self.drain_for + 2 * self.timeout + SHUTDOWN_GRACE
    }

    /// Ends the process (status 70) if it is still running [`Shutdown::deadline`] from now,
    /// whatever holds it up: a shutdown always ends. Runs on a thread of its own, so a
    /// runtime that no longer makes progress cannot stop it.
    pub fn exit_at_deadline(&self) {
        let deadline = self.deadline();
        let armed = std::thread::Builder::new()
            .name("bullpen-deadline".to_owned())
            .spawn(move || {
                std::thread::sleep(deadline);
                tracing::error!(
                    deadline_secs = deadline.as_secs(),
                    "shutdown past its deadline: exiting with what is still running"
                );
                std::process::exit(EXIT_PAST_DEADLINE);
            });
        if let Err(error) = armed {
            tracing::warn!(%error, "cannot arm the shutdown deadline");
        }
    }

    /// Stops accepting and waits for the requests in flight, with no drain.
    pub async fn stop_now(self) {
        self.drain.start();
        self.server.stop(true).await;
    }
}

impl Background {
    async fn stop(self) {
        self.stop.cancel();
        self.tasks.close();
        let deadline = tokio::time::Instant::now() + self.timeout;
        if tokio::time::timeout_at(deadline, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tasks.len(),
                "background tasks still running at the shutdown deadline"
            );
        }
        if let Some(writer) = self.log_writer
            && tokio::time::timeout_at(deadline, writer.shutdown())
                .await
                .is_err()
        {
            tracing::error!("the prediction log was not flushed by the shutdown deadline");
        }
        tracing::info!("background tasks stopped");
    }
}

/// The prediction log and its writer, when `prediction_log.enabled`.
fn start_prediction_log(
    settings: &Settings,
    metrics: &Metrics,
) -> anyhow::Result<Option<((PredictionLog, db::Pool), LogWriter)>> {
    if !settings.prediction_log.enabled {
        return Ok(None);
    }
    let pool = db::pool(&settings.database)?;
    let (log, writer) = PredictionLog::start(pool.clone(), &settings.prediction_log, metrics);
    Ok(Some(((log, pool), writer)))
}

/// The bound listeners: HTTP (port 0 picks a free one), gRPC unless its port is 0, and the
/// HAProxy agent check when `lb.agent_port` is set.
struct Listeners {
    http: TcpListener,
    port: u16,
    grpc: Option<TcpListener>,
    grpc_port: Option<u16>,
    agent: Option<TcpListener>,
}

impl Listeners {
    fn bind(server: &http::ServerSettings, lb: &lb::LbSettings) -> anyhow::Result<Self> {
        let address = (server.host.as_str(), server.port);
        let http = TcpListener::bind(address)
            .with_context(|| format!("binding {}:{}", address.0, address.1))?;
        let port = http
            .local_addr()
            .context("reading the bound address")?
            .port();
        let grpc = Self::optional(server, server.grpc_port, "gRPC", "server.grpc_port")?;
        let grpc_port = match &grpc {
            Some(grpc) => Some(
                grpc.local_addr()
                    .context("reading the gRPC address")?
                    .port(),
            ),
            None => None,
        };
        let agent = Self::optional(server, lb.agent_port, "the agent check", "lb.agent_port")?;
        Ok(Self {
            http,
            port,
            grpc,
            grpc_port,
            agent,
        })
    }

    /// A non-blocking listener on `port` for `what`, or none when `port` (`key`) is 0.
    fn optional(
        server: &http::ServerSettings,
        port: u16,
        what: &str,
        key: &str,
    ) -> anyhow::Result<Option<TcpListener>> {
        if port == 0 {
            return Ok(None);
        }
        let address = (server.host.as_str(), port);
        let listener = TcpListener::bind(address).with_context(|| {
            format!(
                "binding {what} to {}:{} ({key}; 0 turns it off)",
                address.0, address.1
            )
        })?;
        listener
            .set_nonblocking(true)
            .with_context(|| format!("making the {what} listener non-blocking"))?;
        Ok(Some(listener))
    }
}

async fn load_service(
    settings: &Settings,
    metrics: &Metrics,
    recorder: Recorder,
    tasks: &TaskTracker,
) -> anyhow::Result<(PredictService, ShadowJobs)> {
    let started = std::time::Instant::now();
    let source = match settings.features.store {
        StoreKind::Embedded => {
            let store = EmbeddedStore::load(&settings.data, |_| {})
                .with_context(|| format!("loading games from {}", settings.data.dir.display()))?
                .with_schedule_horizon(settings.features.schedule_horizon_days);
            tracing::info!(games = store.games().len(), "embedded feature store loaded");
            let (live, torn) = LiveStore::open(store, settings.features.journal_dir())
                .context("replaying the results journal (features.results_dir)")?;
            if let Some(torn) = torn {
                tracing::error!(
                    line = torn.line,
                    bytes = torn.bytes,
                    kept_in = %torn.kept_in.display(),
                    "the results journal's last line was cut by a crash mid-write: that set of \
                     results was never acknowledged and is not applied; its bytes are kept \
                     aside, post it again"
                );
            }
            FeatureSource::Embedded(Arc::new(live))
        }
        StoreKind::Postgres => {
            let database = &settings.database;
            let primary = db::pool(database)?;
            if database.migrate_on_start {
                let applied = db::migrate(&primary)
                    .await
                    .context("migrating database.url")?;
                tracing::info!(?applied, "migrations applied");
            }
            let pitchers = load_pitchers(&settings.data)?;
            let store = PostgresStore::new(db::read_pool(database, &primary)?, primary, pitchers)
                .with_schedule_horizon(settings.features.schedule_horizon_days);
            // Scheduled games are answered from the view of the games: built before serving,
            // so a new replica's first requests do not all wait for it (past their timeout).
            if let Err(error) = store.refresh().await {
                let error = crate::telemetry::Chain(&error);
                tracing::warn!(
                    %error,
                    "the games are not loaded: scheduled games wait for the database, checked \
                     again every features.refresh_ms"
                );
            }
            FeatureSource::Postgres(store)
        }
    };
    let inference = &settings.inference;
    let catalog = Catalog::load(
        &CatalogOptions {
            dir: &settings.models.dir,
            default: &settings.models.default,
            ort_library: &inference.ort_library,
            pool: inference.pool(settings.server.worker_count()),
            metrics,
        },
        warmup_vector(),
    )
    .context("loading models")?;
    tracing::info!(
        models = catalog.snapshot().versions().len(),
        elapsed_ms = started.elapsed().as_millis(),
        "features and models ready"
    );
    let shared = if settings.redis.enabled {
        let shared = SharedTier::new(&settings.redis, metrics, tasks.clone())?;
        let snapshot = catalog.snapshot();
        let fingerprints: Vec<(&str, &str, &str)> = snapshot
            .versions()
            .iter()
            .map(|model| (&*model.name, &*model.version, model.fingerprint.as_str()))
            .collect();
        shared.forget_replaced_models(&fingerprints).await;
        Some(Arc::new(shared))
    } else {
        None
    };
    let (shadow, shadow_jobs) = ShadowQueue::new(settings.rollout.shadow_queue);
    let service = PredictService::new(
        source,
        catalog,
        Caches::new(&settings.cache, shared.as_ref(), metrics),
        recorder,
        shadow,
    );
    Ok((service, shadow_jobs))
}

/// What runs beside the server for the models, each task until `stop`.
struct BackgroundWork<'a> {
    metrics: &'a Metrics,
    /// `features.refresh_ms`.
    refresh_ms: u64,
    rollout: &'a RolloutSettings,
    stop: &'a CancellationToken,
    tasks: &'a TaskTracker,
}

impl BackgroundWork<'_> {
    /// The sampler behind the status page and the autoscaling gauge, and the load reports
    /// when a balancer reads them (`lb.agent_port`, its listener bound; `lb.orca`).
    fn start_sampling(
        &self,
        settings: &Settings,
        agent: Option<TcpListener>,
        service: &PredictService,
        drain: &Drain,
    ) -> anyhow::Result<web::Data<Sampler>> {
        let sampler = web::Data::new(Sampler::default());
        {
            let (sampler, metrics, stop) =
                (sampler.clone(), self.metrics.clone(), self.stop.clone());
            self.tasks
                .spawn(async move { sampler.run(&metrics, stop).await });
        }
        if settings.lb.reports() {
            let sources = lb::Sources {
                service: service.clone(),
                drain: drain.clone(),
                metrics: self.metrics.clone(),
                sampler: sampler.clone().into_inner(),
                max_in_flight: settings.server.max_in_flight,
                queue_capacity: settings.inference.queue_capacity,
            };
            lb::start(agent, &settings.lb, sources, self.tasks, self.stop)
                .context("serving the agent check (lb.agent_port)")?;
        }
        Ok(sampler)
    }

    /// Shadow scoring, the rollback guard and (PostgreSQL store) results written elsewhere;
    /// with Redis, invalidations and routing set on any replica; on SIGHUP, a rescan of
    /// `models.dir`; with a schedule, its gauges.
    async fn start(
        &self,
        service: &PredictService,
        shadow_jobs: ShadowJobs,
        demand: Option<Arc<Demand>>,
    ) {
        let (stop, tasks) = (self.stop, self.tasks);
        if let Some(demand) = demand {
            let (metrics, stop) = (self.metrics.clone(), stop.clone());
            tasks.spawn(async move { follow_schedule(&demand, &metrics, &stop).await });
        }
        tasks.spawn(
            stop.clone()
                .run_until_cancelled_owned(service.clone().run_shadow(shadow_jobs)),
        );
        predict::follow_results(service, Duration::from_millis(self.refresh_ms), stop, tasks);
        tasks.spawn(predict::run_guard(
            service.clone(),
            self.metrics.clone(),
            Duration::from_millis(self.rollout.guard_interval_ms),
            stop.clone(),
        ));
        if let Some(shared) = service.caches().shared() {
            // Invalidations announced by any replica (this one included) reach this one's
            // in-process caches.
            let follower = service.clone();
            shared.follow_invalidations(stop.clone(), move |pattern| {
                follower.caches().invalidate_local(pattern);
            });
            // Routing is the same on every replica: stored in Redis and announced there.
            predict::share_routing(service, shared, stop, tasks).await;
        }
        // Listened for before the server says it serves: SIGHUP's default action ends the
        // process.
        let hangups = listen(
            SignalKind::hangup(),
            "SIGHUP; reload with POST /api/v1/admin/models/reload",
        );
        if let Some(hangups) = hangups {
            let (service, stop) = (service.clone(), stop.clone());
            tasks.spawn(async move { reload_on_sighup(hangups, &service, &stop).await });
        }
    }
}

/// Sets the schedule's gauges (and reads its file again when it changed) every
/// `schedule.refresh_ms`, until `stop`.
async fn follow_schedule(demand: &Demand, metrics: &Metrics, stop: &CancellationToken) {
    let mut ticks = tokio::time::interval(demand.refresh_every());
    while stop.run_until_cancelled(ticks.tick()).await.is_some() {
        demand.refresh(metrics);
    }
}

/// On SIGHUP, rescans `models.dir` as `POST /api/v1/admin/models/reload` does, until `stop`.
async fn reload_on_sighup(mut hangups: Signal, service: &PredictService, stop: &CancellationToken) {
    while stop
        .run_until_cancelled(hangups.recv())
        .await
        .flatten()
        .is_some()
    {
        match service.catalog().rescan().await {
            Ok(report) => tracing::info!(?report, "SIGHUP: models.dir rescanned"),
            Err(error) => {
                let error = crate::telemetry::Chain(&error);
                tracing::error!(%error, "SIGHUP: cannot rescan models.dir");
            }
        }
    }
}

/// Which signal asked the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGTERM, from an orchestrator: drain first.
    Terminate,
    /// Ctrl-C, from a person at a terminal: stop at once.
    Interrupt,
}

/// SIGTERM and Ctrl-C, listened for from the moment this is made. Made before the server
/// starts, so a signal that comes while it loads, or just after it says `serving`, is
/// handled (drained or stopped) instead of ending the process by the default action.
#[derive(Debug)]
pub struct StopSignals {
    terminate: Option<Signal>,
    interrupt: Option<Signal>,
}

impl StopSignals {
    /// Must be called inside a Tokio runtime. A signal that cannot be listened for is
    /// logged; the other still works.
    pub fn listen() -> Self {
        Self {
            terminate: listen(SignalKind::terminate(), "SIGTERM"),
            interrupt: listen(SignalKind::interrupt(), "Ctrl-C"),
        }
    }

    /// Resolves on the next SIGTERM or Ctrl-C, saying which.
    pub async fn next(&mut self) -> StopSignal {
        tokio::select! {
            () = received(self.interrupt.as_mut()) => {
                tracing::info!("Ctrl-C: shutting down");
                StopSignal::Interrupt
            }
            () = received(self.terminate.as_mut()) => {
                tracing::info!("SIGTERM: shutting down");
                StopSignal::Terminate
            }
        }
    }
}

/// Listens for `kind`; logs "cannot listen for `what`" when it cannot.
fn listen(kind: SignalKind, what: &str) -> Option<Signal> {
    signal(kind)
        .inspect_err(|error| tracing::error!(%error, "cannot listen for {what}"))
        .ok()
}

/// Resolves when `signal` arrives; never, for a signal not listened for.
async fn received(signal: Option<&mut Signal>) {
    let arrived = match signal {
        Some(signal) => signal.recv().await.is_some(),
        None => false,
    };
    if !arrived {
        std::future::pending::<()>().await;
    }
}

/// The starters and season totals `data.pitchers_dir` holds, for a command that writes or
/// reads games in PostgreSQL.
pub fn load_pitchers(data: &DataSettings) -> anyhow::Result<Arc<Pitchers>> {
    data.load_pitchers().with_context(|| {
        format!(
            "loading starters from {} (data.pitchers_dir)",
            data.pitchers_dir.display()
        )
    })
}
