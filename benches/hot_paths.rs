//! Criterion benchmarks of the hot functions: feature lookups, the cached prediction path,
//! and inference inline versus through the dedicated threads (the split `inline_max_rows`
//! chooses). Run with `cargo bench --bench hot_paths`.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bullpen::cache::Caches;
use bullpen::features::{DataSettings, EmbeddedStore, FeatureSource, FeatureVector, LiveStore};
use bullpen::games::GameRef;
use bullpen::games::{GameId, Starters, TeamCode};
use bullpen::models::{Batching, Catalog, CatalogOptions, InferencePool, PoolOptions, runtime};
use bullpen::monitoring::{Metrics, MonitoringSettings};
use bullpen::predict::{Caller, PredictRequest, PredictService, Recorder, ShadowQueue};
use bullpen::settings::Settings;
use criterion::{Criterion, criterion_group, criterion_main};

fn repo(relative: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn store() -> EmbeddedStore {
    let data = DataSettings {
        dir: repo("data/retrosheet"),
        pitchers_dir: repo("data/pitchers"),
    };
    EmbeddedStore::load(&data, |_| {}).expect("data loads")
}

fn team(code: &str) -> TeamCode {
    code.parse().expect("team")
}

fn features(c: &mut Criterion) {
    let store = store();
    let id: GameId = "KCA202404100".parse().expect("id");
    c.bench_function("features/stored game", |b| {
        b.iter(|| store.game(black_box(id)));
    });
    let after = "2025-04-05".parse().expect("date");
    c.bench_function("features/scheduled after the data", |b| {
        b.iter(|| {
            store.scheduled_features(
                team("NYA"),
                team("BOS"),
                black_box(after),
                Starters::default(),
            )
        });
    });
    let inside = "2024-07-03".parse().expect("date");
    c.bench_function(
        "features/scheduled inside the data (checkpoint replay)",
        |b| {
            b.iter(|| {
                black_box(store.scheduled_features(
                    team("NYA"),
                    team("BOS"),
                    black_box(inside),
                    Starters::default(),
                ))
            });
        },
    );
}

fn pool(store: &EmbeddedStore, inline_max_rows: usize) -> InferencePool {
    let environment = runtime::environment(Path::new("")).expect("ONNX Runtime loads");
    let options = PoolOptions {
        inline_sessions: 1,
        inline_max_rows,
        threads: 1,
        queue_capacity: 64,
        intra_threads: 1,
        batching: Batching::Off,
        batch_wait: Duration::ZERO,
        batch_max_rows: 16,
    };
    let warmup = *store.vectors().last().expect("games");
    let metrics = Metrics::new(&MonitoringSettings {
        request_metrics: true,
    })
    .expect("metrics");
    InferencePool::start(
        environment,
        &repo("models/home_win/1"),
        options,
        warmup,
        metrics.model("home_win", "1"),
    )
    .expect("pool")
}

fn inference(c: &mut Criterion) {
    let store = store();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let rows: Vec<FeatureVector> = store.vectors()[store.vectors().len() - 100..].to_vec();
    for (label, inline_max_rows) in [("inline", usize::MAX), ("dedicated thread", 0)] {
        let pool = pool(&store, inline_max_rows);
        for count in [1, 16, 100] {
            let batch = rows[..count].to_vec();
            c.bench_function(&format!("inference/{count} rows, {label}"), |b| {
                b.iter(|| runtime.block_on(pool.predict(batch.clone())));
            });
        }
    }
}

fn cached_prediction(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut settings = Settings::load(&repo("config")).expect("settings");
    settings.models.dir = repo("models");
    let metrics = Metrics::new(&settings.monitoring).expect("metrics");
    let catalog = Catalog::load(
        &CatalogOptions {
            dir: &settings.models.dir,
            default: &settings.models.default,
            ort_library: Path::new(""),
            pool: PoolOptions {
                inline_sessions: 1,
                inline_max_rows: 8,
                threads: 1,
                queue_capacity: 64,
                intra_threads: 1,
                batching: Batching::Off,
                batch_wait: Duration::ZERO,
                batch_max_rows: 16,
            },
            metrics: &metrics,
        },
        *store().vectors().last().expect("games"),
    )
    .expect("catalog");
    let service = PredictService::new(
        FeatureSource::Embedded(Arc::new(LiveStore::in_memory(store()))),
        catalog,
        Caches::new(&settings.cache, None, &metrics),
        Recorder::new(None, None),
        ShadowQueue::new(1).0,
    );
    let caller = Caller::default();
    let request = PredictRequest {
        game: GameRef::Stored("KCA202404100".parse().expect("id")),
        model: None,
        odds: None,
    };
    runtime
        .block_on(service.predict(request.clone(), &caller))
        .expect("first prediction");
    let key = bullpen::cache::PredictionKey {
        model: "home_win".into(),
        version: "1".into(),
        fingerprint: 0,
        game: request.game,
        feature_hash: 7,
    };
    runtime.block_on(service.caches().predictions.insert(key.clone(), 0.5));
    c.bench_function("predict/cache read (moka hit)", |b| {
        b.iter(|| runtime.block_on(service.caches().predictions.get(black_box(&key))));
    });
    c.bench_function("predict/cached stored game", |b| {
        b.iter(|| runtime.block_on(service.predict(black_box(request.clone()), &caller)));
    });
}

criterion_group!(benches, features, inference, cached_prediction);
criterion_main!(benches);
