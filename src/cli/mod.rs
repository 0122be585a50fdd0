//! The command line: `bullpen <command>`. Each command is a thin call into the library.

mod keys;
mod loadtest;
mod probe;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cache::{KeyPattern, RESULTS_CHANNEL, SharedTier};
use crate::db;
use crate::features::{self, EmbeddedStore, FEATURE_SPECS, FeatureSpec, PostgresStore, StoreKind};
use crate::monitoring::Metrics;
use crate::settings::Settings;
use crate::startup::{self, Application, StopSignal, StopSignals};

#[derive(Debug, Parser)]
#[command(
    name = "bullpen",
    version,
    about = "MLB win-probability prediction server"
)]
pub struct Cli {
    /// Folder holding `default.toml` and `{BULLPEN_ENV}.toml`.
    #[arg(
        long,
        global = true,
        default_value = "config",
        env = "BULLPEN_CONFIG_DIR"
    )]
    pub config_dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API until SIGTERM or Ctrl-C.
    Serve,
    /// Apply pending database migrations (`migrations/`) to `database.url`.
    Migrate,
    /// Load Retrosheet files into PostgreSQL and compute their features; or, with
    /// `--results`, final results from a season's feed. Idempotent.
    Import {
        /// Folder of `teams-YYYY.csv[.gz]` files; `data.dir` when absent.
        #[arg(long, conflicts_with = "results")]
        dir: Option<PathBuf>,
        /// A CSV of final results (a header row names the columns: `game_id`, `date`,
        /// `number`, `phase`, then for `home_` and `away_`: `team`, `runs`, `hits`, `walks`,
        /// `home_runs`, `strikeouts`, `pitches`, `batters_faced`), checked and applied as
        /// `POST /api/v1/admin/results` applies them, all or nothing.
        #[arg(long)]
        results: Option<PathBuf>,
        /// With `--results`: replace games already final with another result.
        #[arg(long, requires = "results")]
        correct: bool,
    },
    /// Feature spec and training data.
    #[command(subcommand)]
    Features(FeaturesCommand),
    /// API keys: create (shown once), list, revoke.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// GET a path of the server on this host (`server.port`): exit 0 on 2xx, 1 otherwise. The
    /// image's HEALTHCHECK.
    Probe {
        #[arg(long, default_value = "/ready")]
        path: String,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Load a server that speaks bullpen's API (open or closed loop, ramps, a request mix)
    /// and judge it against SLOs: p50..max per phase and kind, errors, a per-second timeline.
    Loadtest(Box<loadtest::LoadtestArgs>),
    /// Print the OpenAPI 3.1 document of the HTTP API (as served at /api/v1/openapi.json), to
    /// generate a client without a server.
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum FeaturesCommand {
    /// Write the training table (game id, date, season, features, `home_win`) as CSV.
    Export {
        /// Seasons to write: `2024`, `2010-2023` or `2010,2015-2016`. Earlier seasons in the
        /// data are still read, since features carry history across seasons.
        #[arg(long, value_parser = parse_seasons)]
        seasons: Seasons,
        /// Output file; standard output when absent.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Feature spec: `v1` (the teams) or `v2` (the teams and the starting pitchers).
        #[arg(long, default_value = "v1", value_parser = parse_spec)]
        version: FeatureSpec,
    },
    /// Print a feature spec (version and ordered names) as JSON.
    Spec {
        #[arg(long, default_value = "v1", value_parser = parse_spec)]
        version: FeatureSpec,
    },
}

fn parse_spec(text: &str) -> Result<FeatureSpec, String> {
    FEATURE_SPECS
        .into_iter()
        .find(|spec| spec.version == text)
        .ok_or_else(|| {
            let known: Vec<_> = FEATURE_SPECS.iter().map(|spec| spec.version).collect();
            format!("this build computes feature specs {}", known.join(", "))
        })
}

/// A sorted, de-duplicated set of seasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seasons(pub Vec<i32>);

fn parse_seasons(text: &str) -> Result<Seasons, String> {
    let year = |s: &str| {
        s.trim()
            .parse::<i32>()
            .ok()
            .filter(|y| (1871..=2100).contains(y))
            .ok_or_else(|| format!("`{s}` is not a season such as 2024"))
    };
    let mut seasons = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (year(first)?, year(last)?);
                if first > last {
                    return Err(format!("`{part}` runs backwards"));
                }
                seasons.extend(first..=last);
            }
            None => seasons.push(year(part)?),
        }
    }
    seasons.sort_unstable();
    seasons.dedup();
    Ok(Seasons(seasons))
}

/// Runs the command; its exit status (`bullpen loadtest` says whether its SLOs held).
pub fn run(cli: Cli, settings: &Settings) -> anyhow::Result<std::process::ExitCode> {
    let done = match cli.command {
        Command::Loadtest(args) => return loadtest::run(*args, settings),
        Command::Serve => serve(settings),
        Command::Migrate => runtime()?.block_on(migrate(settings)),
        Command::Import {
            results: Some(file),
            correct,
            ..
        } => runtime()?.block_on(import_results(settings, &file, correct)),
        Command::Import { dir, .. } => {
            let dir = dir.unwrap_or_else(|| settings.data.dir.clone());
            runtime()?.block_on(import(settings, &dir))
        }
        Command::Probe { path, timeout_ms } => probe::probe(
            settings.server.port,
            &path,
            std::time::Duration::from_millis(timeout_ms),
        ),
        Command::Features(FeaturesCommand::Spec { version }) => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &version)?;
            writeln!(out)?;
            Ok(())
        }
        Command::Features(FeaturesCommand::Export {
            seasons,
            output,
            version,
        }) => export(settings, &seasons, output.as_deref(), version),
        Command::Keys(command) => runtime()?.block_on(keys::run(command, settings)),
        Command::Openapi => {
            writeln!(
                std::io::stdout().lock(),
                "{}",
                crate::http::openapi::document()
            )?;
            Ok(())
        }
    };
    done.map(|()| std::process::ExitCode::SUCCESS)
}

/// The runtime of the commands. The HTTP workers run their own threads, so one is enough.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the Tokio runtime")
}

/// A pool on `database.url`, after one direct connection has shown PostgreSQL accepts it: a
/// pool alone would only say "Timed out in bb8" for a database that does not exist.
async fn primary_pool(settings: &Settings) -> anyhow::Result<db::Pool> {
    let url = &settings.database.url;
    db::check_connection(&settings.database, url)
        .await
        .map_err(|error| {
            anyhow::anyhow!(
                "cannot connect to {} (database.url): {}",
                db::describe(url),
                crate::telemetry::Chain(&error)
            )
        })?;
    Ok(db::pool(&settings.database)?)
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = primary_pool(settings).await?;
    let applied = db::migrate(&pool).await.context("migrating database.url")?;
    tracing::info!(?applied, "migrations applied");
    Ok(())
}

async fn import(settings: &Settings, dir: &Path) -> anyhow::Result<()> {
    let pool = primary_pool(settings).await?;
    db::migrate(&pool).await.context("migrating database.url")?;
    let files = crate::games::season_files(dir)?;
    let progress = ProgressBar::new(files.len() as u64 + 1).with_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({elapsed})")
            .expect("the template is valid; this is a bug"),
    );
    progress.set_message("importing");
    let pitchers = startup::load_pitchers(&settings.data)?;
    let summary = features::import_dir(&pool, dir, &pitchers, |path| {
        progress.set_message(format!("imported {}", path.display()));
        progress.inc(1);
    })
    .await?;
    progress.finish_and_clear();
    tracing::info!(
        files = summary.files,
        games = summary.games,
        features = summary.features,
        "import done"
    );
    if settings.redis.enabled {
        // New games change features: drop cached features everywhere. Predictions are keyed
        // by the features' hash, so new features never meet an old prediction.
        let shared = shared_tier(settings)?;
        let pattern = KeyPattern::every_feature();
        let deleted = shared.delete_matching(&pattern).await;
        let notified = shared.publish_invalidation(&pattern).await;
        tracing::info!(?deleted, ?notified, "cached features invalidated");
        shared.publish(RESULTS_CHANNEL, "import").await;
    }
    Ok(())
}

/// Redis, for a command that writes games and tells the replicas.
fn shared_tier(settings: &Settings) -> anyhow::Result<SharedTier> {
    let metrics = Metrics::new(&settings.monitoring)?;
    let tasks = tokio_util::task::TaskTracker::new();
    Ok(SharedTier::new(&settings.redis, &metrics, tasks)?)
}

/// `bullpen import --results FILE.csv`: into PostgreSQL, as the server applies posted results.
async fn import_results(settings: &Settings, file: &Path, correct: bool) -> anyhow::Result<()> {
    if settings.features.store == StoreKind::Embedded {
        anyhow::bail!(
            "features.store is embedded: POST the results to the server \
             (POST /api/v1/admin/results), which journals them; `bullpen import --results` \
             writes to PostgreSQL (features.store = \"postgres\")"
        );
    }
    let reader = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let results = features::read_csv(std::io::BufReader::new(reader))
        .with_context(|| format!("reading {}", file.display()))?;
    let pool = primary_pool(settings).await?;
    db::migrate(&pool).await.context("migrating database.url")?;
    let pitchers = startup::load_pitchers(&settings.data)?;
    let store = PostgresStore::new(pool.clone(), pool, pitchers)
        .with_schedule_horizon(settings.features.schedule_horizon_days);
    let today = chrono::Utc::now().date_naive();
    let outcome = store
        .ingest(&results, correct, today)
        .await
        .with_context(|| format!("applying the results of {}", file.display()))?;
    tracing::info!(
        added = outcome.added.len(),
        corrected = outcome.corrected.len(),
        unchanged = outcome.unchanged.len(),
        changed_from = ?outcome.changed_from,
        "results imported"
    );
    if settings.redis.enabled
        && let Some(from) = outcome.changed_from
    {
        // Replicas check the games every features.refresh_ms; this tells them now.
        shared_tier(settings)?
            .publish(RESULTS_CHANNEL, &from.to_string())
            .await;
    }
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

fn serve(settings: &Settings) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut signals = StopSignals::listen();
        // A signal while loading stops the start: there is nothing to drain yet.
        let app = tokio::select! {
            app = Application::build(settings) => app?,
            _ = signals.next() => {
                tracing::info!("stopped before serving");
                return Ok(());
            }
        };
        let shutdown = app.shutdown();
        tokio::spawn(async move {
            let signal = signals.next().await;
            shutdown.exit_at_deadline();
            match signal {
                StopSignal::Terminate => {
                    // A second signal ends the drain early.
                    let second = async {
                        signals.next().await;
                    };
                    shutdown.drain_then_stop(second).await;
                }
                StopSignal::Interrupt => shutdown.stop_now().await,
            }
        });
        app.run_until_stopped().await.context("serving")?;
        tracing::info!("stopped");
        Ok(())
    })
}

fn export(
    settings: &Settings,
    seasons: &Seasons,
    output: Option<&Path>,
    spec: FeatureSpec,
) -> anyhow::Result<()> {
    let (games, pitchers) = settings.data.load().with_context(|| {
        format!(
            "loading games from {} and {}",
            settings.data.dir.display(),
            settings.data.pitchers_dir.display()
        )
    })?;
    let progress = ProgressBar::new(games.len() as u64).with_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} games ({elapsed})")
            .expect("the template is valid; this is a bug"),
    );
    progress.set_message("computing features");
    let store = EmbeddedStore::from_games_and_pitchers(games, pitchers, |n| {
        progress.inc(n as u64);
    });
    progress.finish_and_clear();

    let table = features::Table {
        spec,
        games: store.games(),
        vectors: store.vectors(),
    };
    let summary = match output {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("creating {}", path.display()))?;
            table.write(BufWriter::new(file), &seasons.0)
        }
        None => table.write(std::io::stdout().lock(), &seasons.0),
    }
    .context("writing the training table")?;
    if summary.rows == 0 {
        anyhow::bail!(
            "no regular-season games of {:?} in {}",
            seasons.0,
            settings.data.dir.display()
        );
    }
    tracing::info!(
        rows = summary.rows,
        ties_skipped = summary.ties_skipped,
        output = %output.map_or("stdout".into(), |p| p.display().to_string()),
        "wrote training table"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seasons_parse_as_lists_and_ranges() {
        assert_eq!(parse_seasons("2024"), Ok(Seasons(vec![2024])));
        assert_eq!(
            parse_seasons("2010-2012,2011,2020"),
            Ok(Seasons(vec![2010, 2011, 2012, 2020]))
        );
        assert!(parse_seasons("2024-2010").is_err());
        assert!(parse_seasons("twenty").is_err());
        assert!(parse_seasons("").is_err());
    }
}
