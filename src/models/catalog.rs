//! The model catalog: every loaded version and each model's routing, as one [`Snapshot`]
//! swapped atomically (`arc-swap`). The request path reads the current snapshot without a
//! lock; a change (load, unload, reload, routing) builds a new snapshot beside it, one at a
//! time, and swaps it in. A version is loaded, checked against the feature spec and warmed
//! before any snapshot holds it, so it never takes a request cold or broken. A version that
//! leaves the catalog is dropped when the last request holding it ends: its sessions and
//! inference threads go with it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::Utc;
use ort::environment::Environment;
use tokio::sync::{Mutex, broadcast};

use super::manifest::Manifest;
use super::onnx::ModelError;
use super::pool::{InferencePool, PoolOptions};
use super::registry::{
    ModelRef, RegistryError, ResolveError, ServedModel, compare_versions, folder_label,
    version_dirs,
};
use super::release;
use super::routing::{RoutingError, RoutingSpec, RoutingState, Trip, bucket_table};
use super::runtime;
use crate::features::FeatureVector;
use crate::games::{BUCKETS, GameRef};
use crate::monitoring::Metrics;
use crate::telemetry::Chain;

/// One model's routing, resolved against the loaded versions.
#[derive(Debug)]
pub struct Route {
    pub name: Arc<str>,
    pub state: RoutingState,
    /// The versions with weight, in version order; `table` indexes into it.
    routed: Vec<Arc<ServedModel>>,
    table: [u8; BUCKETS as usize],
    shadow: Vec<Arc<ServedModel>>,
}

impl Route {
    fn new(name: Arc<str>, state: RoutingState, versions: &[Arc<ServedModel>]) -> Self {
        let find = |version: &str| {
            versions
                .iter()
                .find(|m| m.name == name && *m.version == *version)
                .cloned()
        };
        let routed = state.weighted().filter_map(|(v, _)| find(v)).collect();
        let shadow = state.spec.shadow.iter().filter_map(|v| find(v)).collect();
        Self {
            table: bucket_table(&state),
            name,
            state,
            routed,
            shadow,
        }
    }

    /// The version that serves `game`.
    pub fn pick(&self, game: GameRef) -> &Arc<ServedModel> {
        &self.routed[usize::from(self.table[usize::from(game.bucket())])]
    }

    /// The version with the most weight.
    pub fn stable(&self) -> Option<&Arc<ServedModel>> {
        let stable = self.state.stable()?;
        self.routed.iter().find(|m| *m.version == *stable)
    }

    /// Versions that score this model's requests off the response path.
    pub fn shadow(&self) -> &[Arc<ServedModel>] {
        &self.shadow
    }

    /// The routing weight of `version` (0 when it has none).
    pub fn weight(&self, version: &str) -> u8 {
        self.state.spec.weights.get(version).copied().unwrap_or(0)
    }
}

/// What the catalog holds at one moment.
#[derive(Debug)]
pub struct Snapshot {
    /// Sorted by name, then version (newest last).
    versions: Vec<Arc<ServedModel>>,
    /// One per model name, sorted by name.
    routes: Vec<Route>,
    /// The model a request that names none is answered by.
    default: Arc<str>,
    /// Versions that failed to load, with the reason, until a load of them succeeds.
    failures: BTreeMap<(String, String), String>,
}

impl Snapshot {
    fn new(
        mut versions: Vec<Arc<ServedModel>>,
        mut states: BTreeMap<Arc<str>, RoutingState>,
        default: Arc<str>,
        failures: BTreeMap<(String, String), String>,
    ) -> Self {
        versions.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| compare_versions(&a.version, &b.version))
        });
        let mut routes: Vec<Route> = Vec::new();
        for model in &versions {
            if routes.last().is_some_and(|r| r.name == model.name) {
                continue;
            }
            let newest = versions
                .iter()
                .rfind(|m| m.name == model.name)
                .expect("the model itself is there; this is a bug");
            let state = states
                .remove(&model.name)
                .unwrap_or_else(|| RoutingState::only(&newest.version));
            routes.push(Route::new(Arc::clone(&model.name), state, &versions));
        }
        Self {
            versions,
            routes,
            default,
            failures,
        }
    }

    /// The model a request asked for: by version when it names one, else routed by its game
    /// among the versions of the named model (the default model when it names none).
    pub fn resolve(
        &self,
        model: Option<&ModelRef>,
        game: GameRef,
    ) -> Result<Arc<ServedModel>, ResolveError> {
        let name = model.map_or(&*self.default, |m| m.name.as_str());
        let route = self
            .route(name)
            .ok_or_else(|| ResolveError::UnknownModel(name.to_owned()))?;
        match model.and_then(|m| m.version.as_deref()) {
            None => Ok(Arc::clone(route.pick(game))),
            Some(version) => {
                self.version(name, version)
                    .cloned()
                    .ok_or_else(|| ResolveError::UnknownVersion {
                        name: name.to_owned(),
                        version: version.to_owned(),
                    })
            }
        }
    }

    /// The version of model `name` that scores what carries no game to route by: `version`
    /// when named, else the route's stable version (the one with the most weight).
    pub fn unrouted(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<ServedModel>, ResolveError> {
        let route = self
            .route(name)
            .ok_or_else(|| ResolveError::UnknownModel(name.to_owned()))?;
        let found = match version {
            Some(version) => self.version(name, version),
            None => route.stable(),
        };
        found.cloned().ok_or_else(|| ResolveError::UnknownVersion {
            name: name.to_owned(),
            version: version.unwrap_or_default().to_owned(),
        })
    }

    pub fn versions(&self) -> &[Arc<ServedModel>] {
        &self.versions
    }

    /// The loaded versions of model `name`, oldest first.
    pub fn versions_of(&self, name: &str) -> Vec<&str> {
        self.versions
            .iter()
            .filter(|m| *m.name == *name)
            .map(|m| &*m.version)
            .collect()
    }

    /// Every loaded version but `name@version`.
    fn versions_without(&self, name: &str, version: &str) -> Vec<Arc<ServedModel>> {
        self.versions
            .iter()
            .filter(|m| !(*m.name == *name && *m.version == *version))
            .cloned()
            .collect()
    }

    pub fn version(&self, name: &str, version: &str) -> Option<&Arc<ServedModel>> {
        self.versions
            .iter()
            .find(|m| *m.name == *name && *m.version == *version)
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| *r.name == *name)
    }

    pub fn default_name(&self) -> &str {
        &self.default
    }

    /// Versions that failed to load, `(name, version) → reason`.
    pub fn failures(&self) -> &BTreeMap<(String, String), String> {
        &self.failures
    }

    fn states(&self) -> BTreeMap<Arc<str>, RoutingState> {
        self.routes
            .iter()
            .map(|r| (Arc::clone(&r.name), r.state.clone()))
            .collect()
    }
}

/// Why a catalog change was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("no model files for {name}@{version} in {dir}")]
    FilesNotFound {
        name: String,
        version: String,
        dir: PathBuf,
    },
    #[error("{name}@{version} cannot be loaded")]
    Load {
        name: String,
        version: String,
        #[source]
        source: RegistryError,
    },
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("{name}@{version} cannot be unloaded: {reason}")]
    InUse {
        name: String,
        version: String,
        reason: &'static str,
    },
    #[error(transparent)]
    Routing(#[from] RoutingError),
}

impl CatalogError {
    /// Whether the files were there but describe a model this server cannot serve (another
    /// feature spec, another input or output), as opposed to files that are broken.
    pub fn is_spec_mismatch(&self) -> bool {
        matches!(
            self,
            Self::Load {
                source: RegistryError::Model(
                    ModelError::FeatureSpec { .. } | ModelError::Shape { .. }
                ),
                ..
            }
        )
    }
}

/// What one change did to a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Loaded,
    Reloaded,
    Unchanged,
    Unloaded,
}

/// What a rescan of `models.dir` did, version by version.
#[derive(Debug, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Rescan {
    pub changes: Vec<VersionChange>,
    pub failures: Vec<VersionFailure>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct VersionChange {
    pub name: String,
    pub version: String,
    pub change: Change,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct VersionFailure {
    pub name: String,
    pub version: String,
    pub reason: String,
}

/// Where versions come from and how each is run.
#[derive(Debug, Clone)]
struct Loader {
    environment: &'static Environment,
    dir: PathBuf,
    pool: PoolOptions,
    warmup: FeatureVector,
    metrics: Metrics,
}

impl Loader {
    /// Reads, checks and warms the version in `dir` (blocking: sessions open and run).
    fn open(&self, dir: &Path) -> Result<ServedModel, RegistryError> {
        let manifest = Manifest::load(dir)?;
        let folder = folder_label(dir);
        let label = format!("{}/{}", manifest.name, manifest.version);
        if folder != label {
            return Err(RegistryError::Misplaced {
                path: dir.to_path_buf(),
                manifest: label,
                folder,
            });
        }
        let fingerprint = fingerprint(&dir.join(&manifest.model_file))?;
        let metrics = self.metrics.model(&manifest.name, &manifest.version);
        let pool = InferencePool::start(self.environment, dir, self.pool, self.warmup, metrics)?;
        tracing::info!(model = %manifest.name, version = %manifest.version, %fingerprint, "model loaded and warm");
        Ok(ServedModel::new(manifest, fingerprint, pool))
    }

    async fn open_async(&self, name: &str, version: &str) -> Result<ServedModel, CatalogError> {
        let dir = self.dir.join(name).join(version);
        if !dir.join(Manifest::FILE_NAME).is_file() {
            return Err(CatalogError::FilesNotFound {
                name: name.to_owned(),
                version: version.to_owned(),
                dir: self.dir.clone(),
            });
        }
        let loader = self.clone();
        let load_error = |source| CatalogError::Load {
            name: name.to_owned(),
            version: version.to_owned(),
            source,
        };
        tokio::task::spawn_blocking(move || loader.open(&dir))
            .await
            .map_err(|joined| load_error(RegistryError::Panicked(joined.to_string())))?
            .map_err(load_error)
    }

    fn fingerprint_of(&self, name: &str, version: &str) -> Option<String> {
        let dir = self.dir.join(name).join(version);
        let manifest = Manifest::load(&dir).ok()?;
        fingerprint(&dir.join(&manifest.model_file)).ok()
    }
}

/// XXH3-128 of a model file, in hex: tells a replaced artifact from the one before.
fn fingerprint(model_file: &Path) -> Result<String, RegistryError> {
    let bytes = std::fs::read(model_file).map_err(|source| RegistryError::Io {
        path: model_file.to_path_buf(),
        source,
    })?;
    Ok(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes)))
}

/// Where to find models and how to run them.
#[derive(Debug, Clone)]
pub struct CatalogOptions<'a> {
    pub dir: &'a Path,
    pub default: &'a ModelRef,
    pub ort_library: &'a Path,
    pub pool: PoolOptions,
    pub metrics: &'a Metrics,
}

#[derive(Debug)]
pub struct Catalog {
    current: ArcSwap<Snapshot>,
    loader: Loader,
    /// Held by each change, so changes apply one after another on the latest snapshot.
    changes: Mutex<()>,
    /// Routing changes made here (not those received from other replicas), for whoever
    /// shares them.
    routing_changes: broadcast::Sender<(Arc<str>, RoutingState)>,
    /// Versions an operator unloaded: a rescan leaves them out until one is loaded by name.
    unloaded: std::sync::Mutex<BTreeSet<(String, String)>>,
}

impl Catalog {
    /// Loads and warms every version under `options.dir`; fails if any is broken or the
    /// default is missing. Each model routes all traffic to one version: the one
    /// `models.default` names for the default model, else the newest.
    pub fn load(
        options: &CatalogOptions<'_>,
        warmup: FeatureVector,
    ) -> Result<Self, RegistryError> {
        let loader = Loader {
            environment: runtime::environment(options.ort_library)?,
            dir: options.dir.to_path_buf(),
            pool: options.pool,
            warmup,
            metrics: options.metrics.clone(),
        };
        let mut versions = Vec::new();
        for dir in version_dirs(options.dir)? {
            versions.push(Arc::new(loader.open(&dir)?));
        }
        if versions.is_empty() {
            return Err(RegistryError::Empty(options.dir.to_path_buf()));
        }
        let default = options.default;
        let mut states = BTreeMap::new();
        if let Some(version) = &default.version {
            states.insert(
                Arc::from(default.name.as_str()),
                RoutingState::only(version),
            );
        }
        let snapshot = Snapshot::new(
            versions,
            states,
            Arc::from(default.name.as_str()),
            BTreeMap::new(),
        );
        if snapshot.route(&default.name).is_none() {
            let missing = ResolveError::UnknownModel(default.name.clone());
            return Err(RegistryError::Default(missing));
        }
        if let Some(version) = &default.version
            && snapshot.version(&default.name, version).is_none()
        {
            return Err(RegistryError::Default(ResolveError::UnknownVersion {
                name: default.name.clone(),
                version: version.clone(),
            }));
        }
        let catalog = Self {
            current: ArcSwap::from_pointee(snapshot),
            loader,
            changes: Mutex::new(()),
            routing_changes: broadcast::channel(64).0,
            unloaded: std::sync::Mutex::default(),
        };
        catalog.publish_weights(&catalog.snapshot());
        Ok(catalog)
    }

    /// The catalog as it is now. Cheap; hold it only briefly (a held snapshot keeps its
    /// versions alive).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Whether `snapshot` is the catalog as it is now: no version loaded or unloaded and no
    /// routing changed since it was taken. Takes no reference, so readers on every worker
    /// do not contend.
    pub fn is_current(&self, snapshot: &Arc<Snapshot>) -> bool {
        Arc::ptr_eq(&self.current.load(), snapshot)
    }

    /// Routing changes made on this replica.
    pub fn routing_changes(&self) -> broadcast::Receiver<(Arc<str>, RoutingState)> {
        self.routing_changes.subscribe()
    }

    fn swap(&self, snapshot: Snapshot) {
        self.publish_weights(&snapshot);
        self.current.store(Arc::new(snapshot));
    }

    fn publish_weights(&self, snapshot: &Snapshot) {
        for model in snapshot.versions() {
            let weight = snapshot
                .route(&model.name)
                .map_or(0, |route| route.weight(&model.version));
            self.loader
                .metrics
                .set_routing_weight(&model.name, &model.version, weight);
        }
    }

    /// Loads `name@version` from `models.dir` and answers once it is warm. Loading never
    /// moves traffic, except to the first version of a model. A version already loaded from
    /// the same files is left as it is; from other files, it is replaced (see [`Self::rescan`]).
    pub async fn load_version(&self, name: &str, version: &str) -> Result<Change, CatalogError> {
        let _change = self.changes.lock().await;
        self.unloaded_versions()
            .remove(&(name.to_owned(), version.to_owned()));
        self.load_locked(name, version).await
    }

    fn unloaded_versions(&self) -> std::sync::MutexGuard<'_, BTreeSet<(String, String)>> {
        self.unloaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`Self::load_version`], with the change lock held by the caller.
    async fn load_locked(&self, name: &str, version: &str) -> Result<Change, CatalogError> {
        let current = self.snapshot();
        let loaded = current.version(name, version);
        if let Some(model) = loaded
            && self.loader.fingerprint_of(name, version).as_deref() == Some(&model.fingerprint)
        {
            return Ok(Change::Unchanged);
        }
        let opened = self.loader.open_async(name, version).await;
        let mut failures = current.failures().clone();
        let key = (name.to_owned(), version.to_owned());
        let model = match opened {
            Ok(model) => {
                failures.remove(&key);
                Arc::new(model)
            }
            Err(error) => {
                if !matches!(error, CatalogError::FilesNotFound { .. }) {
                    failures.insert(key, Chain(&error).to_string());
                    self.swap(Snapshot::new(
                        current.versions().to_vec(),
                        current.states(),
                        Arc::from(current.default_name()),
                        failures,
                    ));
                }
                return Err(error);
            }
        };
        let change = if loaded.is_some() {
            Change::Reloaded
        } else {
            Change::Loaded
        };
        let replaced = loaded.map(Arc::downgrade);
        let mut versions = current.versions_without(name, version);
        versions.push(model);
        self.swap(Snapshot::new(
            versions,
            current.states(),
            Arc::from(current.default_name()),
            failures,
        ));
        drop(current);
        if let Some(replaced) = replaced {
            release::when_dropped(replaced);
        }
        Ok(change)
    }

    /// Takes `name@version` out of the catalog; refused while routing uses it or when it is
    /// the model's only version. Requests already holding it finish on it.
    pub async fn unload(&self, name: &str, version: &str) -> Result<(), CatalogError> {
        let _change = self.changes.lock().await;
        let current = self.snapshot();
        let missing = || {
            if current.route(name).is_some() {
                ResolveError::UnknownVersion {
                    name: name.to_owned(),
                    version: version.to_owned(),
                }
            } else {
                ResolveError::UnknownModel(name.to_owned())
            }
        };
        let unloaded = Arc::downgrade(current.version(name, version).ok_or_else(missing)?);
        let in_use = |reason| CatalogError::InUse {
            name: name.to_owned(),
            version: version.to_owned(),
            reason,
        };
        let route = current.route(name).ok_or_else(missing)?;
        if route.weight(version) > 0 {
            return Err(in_use(
                "it carries routing weight; route its share elsewhere first",
            ));
        }
        if route.state.spec.shadow.iter().any(|v| v == version) {
            return Err(in_use(
                "it runs in shadow; take it out of the shadow list first",
            ));
        }
        if current.versions_of(name).len() == 1 {
            return Err(in_use("it is the model's only version"));
        }
        self.swap(Snapshot::new(
            current.versions_without(name, version),
            current.states(),
            Arc::from(current.default_name()),
            current.failures().clone(),
        ));
        drop(current);
        release::when_dropped(unloaded);
        self.loader.metrics.forget_version(name, version);
        self.unloaded_versions()
            .insert((name.to_owned(), version.to_owned()));
        tracing::info!(model = name, version, "model version unloaded");
        Ok(())
    }

    /// Rescans `models.dir`: loads versions that are new, reloads those whose model file
    /// changed (by fingerprint), keeps routing. A version that fails is reported and the
    /// others go on; versions whose folder is gone stay loaded, and versions an operator
    /// unloaded stay unloaded (reported as `unloaded`) until loaded by name.
    pub async fn rescan(&self) -> Result<Rescan, RegistryError> {
        let dirs = version_dirs(&self.loader.dir)?;
        let mut report = Rescan::default();
        for dir in dirs {
            let label = folder_label(&dir);
            let Some((name, version)) = label.split_once('/') else {
                continue;
            };
            let unloaded = self
                .unloaded_versions()
                .contains(&(name.to_owned(), version.to_owned()));
            let loaded = if unloaded {
                Ok(Change::Unloaded)
            } else {
                let _change = self.changes.lock().await;
                self.load_locked(name, version).await
            };
            match loaded {
                Ok(change) => report.changes.push(VersionChange {
                    name: name.to_owned(),
                    version: version.to_owned(),
                    change,
                }),
                Err(error) => {
                    let reason = Chain(&error).to_string();
                    tracing::warn!(error = %reason, model = name, version, "rescan: version not loaded");
                    report.failures.push(VersionFailure {
                        name: name.to_owned(),
                        version: version.to_owned(),
                        reason,
                    });
                }
            }
        }
        Ok(report)
    }

    /// Sets the routing of model `name`, atomically: every request after this answers by it.
    pub async fn set_routing(
        &self,
        name: &str,
        spec: RoutingSpec,
    ) -> Result<RoutingState, CatalogError> {
        let _change = self.changes.lock().await;
        let current = self.snapshot();
        let route = current
            .route(name)
            .ok_or_else(|| ResolveError::UnknownModel(name.to_owned()))?;
        spec.validate(&current.versions_of(name))?;
        let state = route.state.next(spec);
        self.apply_and_share(&current, &route.name, &state);
        Ok(state)
    }

    /// Applies the routing replicas share (stored in Redis, the source of truth), loading from
    /// `models.dir` any version it names that is not loaded here. Answers whether it changed
    /// anything.
    pub async fn apply_remote(
        &self,
        name: &str,
        state: RoutingState,
    ) -> Result<bool, CatalogError> {
        let needed: Vec<String> = state
            .spec
            .weights
            .keys()
            .chain(&state.spec.shadow)
            .cloned()
            .collect();
        for version in needed {
            if self.snapshot().version(name, &version).is_none() {
                self.load_version(name, &version).await?;
            }
        }
        let _change = self.changes.lock().await;
        let current = self.snapshot();
        let Some(route) = current.route(name) else {
            return Ok(false);
        };
        if state == route.state {
            return Ok(false);
        }
        state.spec.validate(&current.versions_of(name))?;
        self.apply(&current, &route.name, state);
        Ok(true)
    }

    /// Rolls a canary back: its weight goes to the stable version, and the reason is kept in
    /// the routing. Answers the new routing, or `None` when `version` no longer has weight.
    pub async fn trip(
        &self,
        name: &str,
        version: &str,
        reason: String,
    ) -> Result<Option<RoutingState>, CatalogError> {
        let _change = self.changes.lock().await;
        let current = self.snapshot();
        let route = current
            .route(name)
            .ok_or_else(|| ResolveError::UnknownModel(name.to_owned()))?;
        let weight = route.weight(version);
        let Some(stable) = route.state.stable().map(str::to_owned) else {
            return Ok(None);
        };
        if weight == 0 || stable == version {
            return Ok(None);
        }
        let mut spec = route.state.spec.clone();
        spec.weights.insert(version.to_owned(), 0);
        *spec.weights.entry(stable).or_insert(0) += weight;
        let mut state = route.state.next(spec);
        state.trips.push(Trip {
            version: version.to_owned(),
            reason,
            at: Utc::now(),
        });
        self.apply_and_share(&current, &route.name, &state);
        Ok(Some(state))
    }

    /// Applies a routing decided here and hands it to whoever shares it with the replicas.
    fn apply_and_share(&self, current: &Snapshot, name: &Arc<str>, state: &RoutingState) {
        self.apply(current, name, state.clone());
        let _ = self.routing_changes.send((Arc::clone(name), state.clone()));
    }

    fn apply(&self, current: &Snapshot, name: &Arc<str>, state: RoutingState) {
        let mut states = current.states();
        states.insert(Arc::clone(name), state);
        self.swap(Snapshot::new(
            current.versions().to_vec(),
            states,
            Arc::from(current.default_name()),
            current.failures().clone(),
        ));
    }
}
