//! The prediction service: features through the cache, the model through the cache, and the
//! market read when odds are given. A cheap-clone handle shared by every worker.

use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;

use super::answer::{Prediction, Served, answer};
use super::odds::MarketOdds;
use super::recorder::{Caller, Recorder};
use super::request::PredictRequest;
use super::shadow::{ShadowJob, ShadowJobs, ShadowQueue, is_shadowed};
use crate::cache::{Caches, FeatureKey, PredictionKey, Source, Transient};
use crate::db::DbError;
use crate::features::{
    FeatureSource, FeatureStore, FeatureVector, GameFeatures, GameInfo, STORED_SPEC, ScheduleError,
    StoreError, WIDTH,
};
use crate::games::{GameId, GameRef, TeamCode};
use crate::models::{Catalog, InferenceError, ModelRef, ResolveError, ServedModel, Snapshot};
use crate::monitoring::ShadowOutcome;

/// Why a prediction could not be answered. Cheap to clone: caches hand one error to every
/// caller waiting on the same key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PredictError {
    #[error("no game `{0}` in the data")]
    GameNotFound(GameId),
    /// A numbered scheduled game that the data's games of that day rule out: another
    /// game under its id, or one of its teams in a game that cannot share the day with it.
    #[error(
        "{sent_away} at {sent_home}, game {number} on {date}, is not a game of the data: \
         that day has {stored}, {away} at {home}"
    )]
    GameMismatch {
        sent_home: TeamCode,
        sent_away: TeamCode,
        number: u8,
        date: NaiveDate,
        stored: GameId,
        home: TeamCode,
        away: TeamCode,
    },
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// PostgreSQL cannot be reached: it passes, and an expired answer may stand in.
    #[error("the feature store is unavailable")]
    StoreUnavailable(#[source] Arc<DbError>),
    /// The store holds a row that cannot be decoded: no old answer hides it.
    #[error("the feature store holds data bullpen cannot read")]
    CorruptData(#[source] Arc<DbError>),
    #[error(transparent)]
    Model(#[from] ResolveError),
    #[error(transparent)]
    Inference(#[from] InferenceError),
    /// Feature rows of another width than the model's manifest names.
    #[error("model `{model}` takes {expected} features per row ({names}), not {got}")]
    Shape {
        model: String,
        expected: usize,
        got: usize,
        names: String,
    },
}

/// What an Open Inference Protocol request gives a model to score.
#[derive(Debug, Clone, PartialEq)]
pub enum InferInput {
    /// Feature rows, row-major, `width` values each: checked against the model's manifest.
    Features { width: usize, values: Vec<f32> },
    /// Games whose features bullpen computes, as `/api/v1/predict` does for each.
    Games(Vec<GameRef>),
}

/// The answer to an [`InferInput`]: per row, the home side's win probability and the
/// version that made it.
#[derive(Debug)]
pub struct Inferred {
    pub home_win: Vec<f32>,
    pub models: Vec<Arc<ServedModel>>,
}

#[derive(Debug, Clone)]
pub struct PredictService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    source: FeatureSource,
    catalog: Catalog,
    caches: Caches,
    recorder: Recorder,
    shadow: ShadowQueue,
}

/// A batch item with its features, waiting for its probability.
struct Pending {
    index: usize,
    model: Arc<ServedModel>,
    key: PredictionKey,
    features: GameFeatures,
    stale: bool,
    odds: Option<MarketOdds>,
}

impl Pending {
    fn answer(self, probability: f32, source: Source) -> Prediction {
        let served = Served {
            source,
            stale_features: self.stale,
        };
        answer(self.model, &self.features, probability, served, self.odds)
    }
}

impl PredictService {
    pub fn new(
        source: FeatureSource,
        catalog: Catalog,
        caches: Caches,
        recorder: Recorder,
        shadow: ShadowQueue,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                catalog,
                caches,
                recorder,
                shadow,
            }),
        }
    }

    /// What every answer is recorded with: metrics, the prediction log, live quality.
    pub fn recorder(&self) -> &Recorder {
        &self.inner.recorder
    }

    /// The loaded model versions and their routing.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    pub fn source(&self) -> &FeatureSource {
        &self.inner.source
    }

    pub fn caches(&self) -> &Caches {
        &self.inner.caches
    }

    /// A game's features. With the embedded store a stored game is read directly: it is
    /// already in memory, and a cache lookup would cost more than the read it saves. Every
    /// other read (computed features, PostgreSQL) goes through the cache, keyed by the
    /// history of games before the game's date as this replica knows it.
    pub async fn features(&self, game: GameRef) -> Result<(GameFeatures, Source), PredictError> {
        let source = &self.inner.source;
        if let (FeatureSource::Embedded(live), GameRef::Stored(id)) = (source, game) {
            let store = live.current();
            let (found, vector) = store.game(id).ok_or(PredictError::GameNotFound(id))?;
            return Ok((GameFeatures::stored(found, *vector), Source::Fresh));
        }
        self.check_identity(game).await?;
        let key = FeatureKey {
            version: STORED_SPEC.version,
            game,
            history: source.history_before(game.date()).await?,
        };
        let compute = async { self.read_features(game).await };
        self.inner
            .caches
            .features
            .get_or_compute(key, compute)
            .await
    }

    /// A scheduled game that gives its number names the id its result is stored under, and
    /// so reaches the prediction log and live quality: a game the data already has is that
    /// game, and its teams must be the stored ones (else 422 `game_mismatch`, naming them).
    /// Without a number the answer names no id, and any matchup may be priced.
    async fn check_identity(&self, game: GameRef) -> Result<(), PredictError> {
        let GameRef::Scheduled {
            home,
            away,
            date,
            number: Some(number),
            ..
        } = game
        else {
            return Ok(());
        };
        let view = self.inner.source.view().await?;
        match view
            .games_on(date)
            .iter()
            .find(|stored| stored.excludes(home, away, number).is_some())
        {
            None => Ok(()),
            Some(stored) => Err(PredictError::GameMismatch {
                sent_home: home,
                sent_away: away,
                number,
                date,
                stored: stored.id,
                home: stored.home.team,
                away: stored.away.team,
            }),
        }
    }

    async fn read_features(&self, game: GameRef) -> Result<GameFeatures, PredictError> {
        let source = &self.inner.source;
        match game {
            GameRef::Stored(id) => FeatureStore::game(source, id)
                .await?
                .ok_or(PredictError::GameNotFound(id)),
            GameRef::Scheduled {
                home,
                away,
                date,
                number,
                starters,
            } => Ok(GameFeatures {
                game: GameInfo {
                    game_id: number.map(|number| GameId::new(home, date, number)),
                    home,
                    away,
                    date,
                    starters,
                },
                vector: FeatureStore::scheduled(source, home, away, date, starters).await?,
            }),
        }
    }

    fn prediction_key(
        model: &ServedModel,
        game: GameRef,
        features: &GameFeatures,
    ) -> PredictionKey {
        let feature_hash = PredictionKey::feature_hash(&features.vector, &model.spec);
        Self::key_of(model, game, feature_hash)
    }

    /// The cache key of `model`'s answer for `game` from the features hashed to `feature_hash`.
    pub(super) fn key_of(model: &ServedModel, game: GameRef, feature_hash: u64) -> PredictionKey {
        PredictionKey {
            model: Arc::clone(&model.name),
            version: Arc::clone(&model.version),
            fingerprint: model.fingerprint_key,
            game,
            feature_hash,
        }
    }

    /// Answers one request and records the answer.
    pub async fn predict(
        &self,
        request: PredictRequest,
        caller: &Caller,
    ) -> Result<Prediction, PredictError> {
        let started = Instant::now();
        let catalog = self.inner.catalog.snapshot();
        let model = catalog.resolve(request.model.as_ref(), request.game)?;
        let (features, feature_source) = self.features(request.game).await?;
        let key = Self::prediction_key(&model, request.game, &features);
        let infer = async { Ok::<_, PredictError>(model.pool.predict_row(features.vector).await?) };
        let computed = self
            .inner
            .caches
            .predictions
            .get_or_compute(key, infer)
            .await;
        let metrics = model.pool.metrics();
        metrics.answer.observe(started.elapsed().as_secs_f64());
        let (probability, source) = computed.inspect_err(|error| {
            if matches!(error, PredictError::Inference(_)) {
                metrics.failures.inc();
            }
        })?;
        if request.is_routed() {
            self.offer_shadow(&catalog, &model, request.game, &features, caller);
        }
        let served = Served {
            source,
            stale_features: feature_source == Source::Stale,
        };
        let prediction = answer(model, &features, probability, served, request.odds);
        self.inner.recorder.record(&prediction, caller);
        Ok(prediction)
    }

    /// Scores an Open Inference Protocol request with model `name` (at `version`, else
    /// routed): feature rows with one version (named, else the route's stable one: rows carry
    /// no game to route by), never cached; games each as `/api/v1/predict` answers them
    /// (cache, routing, shadows, the prediction log). The first failing row fails the call.
    pub async fn infer(
        &self,
        name: &str,
        version: Option<&str>,
        input: InferInput,
        caller: &Caller,
    ) -> Result<Inferred, PredictError> {
        match input {
            InferInput::Features { width, values } => {
                self.infer_rows(name, version, width, values, caller).await
            }
            InferInput::Games(games) => {
                let model = ModelRef {
                    name: name.to_owned(),
                    version: version.map(str::to_owned),
                };
                let requests = games
                    .into_iter()
                    .map(|game| PredictRequest {
                        game,
                        model: Some(model.clone()),
                        odds: None,
                    })
                    .collect();
                let mut home_win = Vec::new();
                let mut models = Vec::new();
                for answer in self.predict_batch(requests, caller).await {
                    let prediction = answer?;
                    home_win.push(prediction.home_win_probability);
                    models.push(prediction.model);
                }
                Ok(Inferred { home_win, models })
            }
        }
    }

    async fn infer_rows(
        &self,
        name: &str,
        version: Option<&str>,
        width: usize,
        values: Vec<f32>,
        caller: &Caller,
    ) -> Result<Inferred, PredictError> {
        let started = Instant::now();
        let model = self.inner.catalog.snapshot().unrouted(name, version)?;
        let spec = model.spec;
        if width != spec.width() {
            return Err(PredictError::Shape {
                model: model.label(),
                expected: spec.width(),
                got: width,
                names: spec.names.join(", "),
            });
        }
        // The model reads the first `width` values of each row.
        let rows: Vec<FeatureVector> = values
            .chunks_exact(width)
            .map(|row| {
                let mut vector = [0.0; WIDTH];
                vector[..width].copy_from_slice(row);
                FeatureVector(vector)
            })
            .collect();
        let count = rows.len();
        let metrics = model.pool.metrics();
        let computed = model.pool.predict(rows).await;
        metrics.answer.observe(started.elapsed().as_secs_f64());
        let home_win = computed.inspect_err(|_| metrics.failures.inc())?;
        self.inner.recorder.record_rows(&model, count, caller);
        Ok(Inferred {
            home_win,
            models: vec![model; count],
        })
    }

    /// Hands a routed request to the versions that shadow the one that served it.
    fn offer_shadow(
        &self,
        catalog: &Snapshot,
        served: &Arc<ServedModel>,
        game: GameRef,
        features: &GameFeatures,
        caller: &Caller,
    ) {
        if let Some(route) = catalog.route(&served.name)
            && is_shadowed(route, served)
        {
            self.inner
                .shadow
                .offer(route, served, game, features, caller);
        }
    }

    /// Makes shadow predictions off the response path: cached ones read, the rest run in
    /// one call per version on its dedicated threads; each recorded as shadow.
    pub async fn score_shadows(&self, jobs: Vec<ShadowJob>) {
        let mut missed: Vec<(ShadowJob, PredictionKey)> = Vec::new();
        for job in jobs {
            let key = Self::prediction_key(&job.model, job.game, &job.features);
            match self.inner.caches.predictions.get(&key).await {
                Some(probability) => self.record_shadow(job, probability, Source::Cache),
                None => missed.push((job, key)),
            }
        }
        for (model, group) in by_model(missed, |(job, _)| &job.model) {
            let rows = group.iter().map(|(job, _)| job.features.vector).collect();
            match model.pool.predict_off_path(rows).await {
                Ok(probabilities) => {
                    for ((job, key), probability) in group.into_iter().zip(probabilities) {
                        self.inner.caches.predictions.insert(key, probability).await;
                        self.record_shadow(job, probability, Source::Fresh);
                    }
                }
                Err(_) => {
                    for _ in &group {
                        model.pool.metrics().shadow(ShadowOutcome::Failed);
                    }
                }
            }
        }
    }

    /// Makes the shadow predictions offered until the queue closes or the caller stops
    /// waiting: whatever is waiting is taken at once, up to 256 jobs, and scored in one
    /// inference call per version.
    pub async fn run_shadow(self, mut jobs: ShadowJobs) {
        let mut batch = Vec::with_capacity(256);
        while jobs.take(&mut batch, 256).await > 0 {
            self.score_shadows(std::mem::take(&mut batch)).await;
        }
    }

    fn record_shadow(&self, job: ShadowJob, probability: f32, source: Source) {
        job.model.pool.metrics().shadow(ShadowOutcome::Scored);
        let served = Served {
            source,
            stale_features: false,
        };
        let prediction = answer(job.model, &job.features, probability, served, None);
        self.inner.recorder.record_shadow(&prediction, &job.caller);
    }

    /// Answers each request on its own: in-process hits first, then one shared-tier read
    /// for what missed, then one model call per model for the rest. Each answer is recorded.
    pub async fn predict_batch(
        &self,
        requests: Vec<PredictRequest>,
        caller: &Caller,
    ) -> Vec<Result<Prediction, PredictError>> {
        let mut answers: Vec<Option<Result<Prediction, PredictError>>> = vec![None; requests.len()];
        let mut pending = Vec::new();
        let catalog = self.inner.catalog.snapshot();
        for (index, request) in requests.into_iter().enumerate() {
            let looked_up = async {
                let model = catalog.resolve(request.model.as_ref(), request.game)?;
                let (features, source) = self.features(request.game).await?;
                Ok::<_, PredictError>((model, features, source == Source::Stale))
            };
            let (model, features, stale) = match looked_up.await {
                Ok(found) => found,
                Err(error) => {
                    answers[index] = Some(Err(error));
                    continue;
                }
            };
            if request.is_routed() {
                self.offer_shadow(&catalog, &model, request.game, &features, caller);
            }
            let item = Pending {
                index,
                key: Self::prediction_key(&model, request.game, &features),
                model,
                features,
                stale,
                odds: request.odds,
            };
            if let Some(probability) = self.inner.caches.predictions.get(&item.key).await {
                answers[index] = Some(Ok(item.answer(probability, Source::Cache)));
            } else {
                pending.push(item);
            }
        }

        if !pending.is_empty() {
            let keys: Vec<PredictionKey> = pending.iter().map(|item| item.key.clone()).collect();
            let shared = self.inner.caches.predictions.get_shared(&keys).await;
            let mut missed = Vec::with_capacity(pending.len());
            for (item, found) in pending.into_iter().zip(shared) {
                match found {
                    Some(probability) => {
                        let index = item.index;
                        answers[index] = Some(Ok(item.answer(probability, Source::Shared)));
                    }
                    None => missed.push(item),
                }
            }
            pending = missed;
        }

        for (model, group) in by_model(pending, |item| &item.model) {
            let rows = group.iter().map(|item| item.features.vector).collect();
            match model.pool.predict(rows).await {
                Ok(probabilities) => {
                    for (item, probability) in group.into_iter().zip(probabilities) {
                        self.inner
                            .caches
                            .predictions
                            .insert(item.key.clone(), probability)
                            .await;
                        let index = item.index;
                        answers[index] = Some(Ok(item.answer(probability, Source::Fresh)));
                    }
                }
                Err(error) => {
                    for item in group {
                        answers[item.index] = Some(Err(error.clone().into()));
                    }
                }
            }
        }
        answers
            .into_iter()
            .map(|answer| {
                let answer = answer.expect("every batch item is answered; this is a bug");
                if let Ok(prediction) = &answer {
                    self.inner.recorder.record(prediction, caller);
                }
                answer
            })
            .collect()
    }
}

/// `items` in groups that share a model version (by identity), in the order each version
/// first appears: one inference call per group.
fn by_model<T>(
    items: Vec<T>,
    model_of: impl Fn(&T) -> &Arc<ServedModel>,
) -> Vec<(Arc<ServedModel>, Vec<T>)> {
    let mut groups: Vec<(Arc<ServedModel>, Vec<T>)> = Vec::new();
    for item in items {
        let model = model_of(&item);
        match groups.iter_mut().find(|(m, _)| Arc::ptr_eq(m, model)) {
            Some((_, group)) => group.push(item),
            None => groups.push((Arc::clone(model), vec![item])),
        }
    }
    groups
}

impl From<StoreError> for PredictError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Schedule(error) => Self::Schedule(error),
            StoreError::Unavailable(error) => Self::StoreUnavailable(error),
            StoreError::Corrupt(error) => Self::CorruptData(error),
        }
    }
}

impl Transient for PredictError {
    fn is_transient(&self) -> bool {
        match self {
            Self::StoreUnavailable(_) => true,
            Self::GameNotFound(_)
            | Self::GameMismatch { .. }
            | Self::Schedule(_)
            | Self::CorruptData(_)
            | Self::Model(_)
            | Self::Inference(_)
            | Self::Shape { .. } => false,
        }
    }
}
