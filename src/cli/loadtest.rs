//! `bullpen loadtest`: the flags, the games to ask about, and the report.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Datelike;
use clap::Args;
use secrecy::SecretString;

use crate::games::{self, Phase};
use crate::loadtest::{self, Games, Kind, Load, LoadTest, Mix, Slo};
use crate::settings::Settings;

/// Requests rendered once and cycled through.
const RENDERED: usize = 20_000;

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when every SLO held, 1 when one was missed, 2 on a usage error.\n\
                  Example: bullpen loadtest --url http://127.0.0.1:8080 --rate 2000 --duration 60s --ramp-up 10s --json report.json"
)]
pub struct LoadtestArgs {
    /// Server to load: http://HOST:PORT (bullpen, or a balancer in front of replicas).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Open loop: requests per second at full rate, due at a constant arrival rate;
    /// latency counts from when each was due (no coordinated omission).
    #[arg(long, conflicts_with = "users")]
    rate: Option<f64>,
    /// Closed loop instead: this many users, each sending its next request when the last
    /// is answered.
    #[arg(long)]
    users: Option<usize>,
    /// Open loop: keep-alive connections the requests are dealt to.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long the full rate (or every user) is held: `60s`, `2m`, `500ms`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Rising to the full rate (users joining) before it.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    ramp_up: Duration,
    /// Falling from it (users leaving) after it.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    ramp_down: Duration,
    /// Request mix as weights: `stored` (a game id), `scheduled` (teams + date), `batch`,
    /// `get` (a stored game by `GET /api/v1/games/{id}/prediction`); `odds=PERCENT` of
    /// requests carry odds; `batch_size=N` items per batch.
    #[arg(long, default_value = "stored=100")]
    mix: Mix,
    /// Games to ask about: a CSV with a `game_id` column (`bullpen features export`) or one id
    /// per line. Without it: the last season in `data.dir`, and next season's matchups for
    /// scheduled games.
    #[arg(long)]
    games: Option<PathBuf>,
    /// Bearer token (API key or JWT) sent with every request.
    #[arg(long, env = "BULLPEN_LOADTEST_TOKEN", hide_env_values = true)]
    token: Option<SecretString>,
    /// Threads sending the load, each with its own event loop and a share of the connections.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// A request not answered within this counts as a `timeout` failure.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also draw the per-second timeline (answered and failed a second; p50 and p99 of the
    /// answers) as an SVG here.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Marks to draw across the timeline, read when the run ends: lines of `UNIX_SECONDS
    /// LABEL` (a drill appends one when it kills something while the load runs).
    #[arg(long, value_name = "FILE", requires = "plot")]
    plot_marks: Option<PathBuf>,
    /// SLO: p95 latency over the sustain phase below this, in ms.
    #[arg(long, default_value_t = 500.0)]
    slo_p95_ms: f64,
    /// SLO: failed requests below this share of all.
    #[arg(long, default_value_t = 0.01)]
    slo_error_rate: f64,
    /// SLO (open loop): achieved rate over the sustain phase within this share below --rate.
    #[arg(long, default_value_t = 0.05)]
    slo_rps_tolerance: f64,
    /// No live progress line.
    #[arg(long)]
    quiet: bool,
}

/// `500ms`, `30s`, `2m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 500ms, 30s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        _ => return Err(format!("`{text}`: the unit is ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

/// Stored game ids from `--games`, or from the last season in `data.dir`; scheduled games
/// for the next season between the teams of that season.
fn games(args: &LoadtestArgs, settings: &Settings) -> anyhow::Result<Games> {
    // The data folder is read only when it is needed: for ids, or for scheduled games.
    let needs_data = args.games.is_none()
        || args.mix.weights.contains_key(&Kind::Scheduled)
        || args.mix.weights.contains_key(&Kind::Batch);
    let data = if needs_data {
        games::load_dir(&settings.data.dir).ok()
    } else {
        None
    };
    let last_season = data
        .as_ref()
        .and_then(|games| games.iter().map(|g| g.date.year()).max());
    let stored = match &args.games {
        Some(path) => ids_from_file(path)?,
        None => data
            .iter()
            .flatten()
            .filter(|g| Some(g.date.year()) == last_season && g.phase == Phase::Regular)
            .map(|g| g.id.to_string())
            .collect(),
    };
    let mut teams: Vec<String> = data
        .iter()
        .flatten()
        .filter(|g| Some(g.date.year()) == last_season && g.phase == Phase::Regular)
        .map(|g| g.home.team.to_string())
        .collect();
    teams.sort();
    teams.dedup();
    let next = last_season.map_or(2025, |season| season + 1);
    let mut scheduled = Vec::new();
    for (n, home) in teams.iter().enumerate() {
        for away in teams.iter().filter(|away| *away != home) {
            let date = format!("{next}-05-{:02}", 1 + n % 28);
            scheduled.push((home.clone(), away.clone(), date));
        }
    }
    Ok(Games { stored, scheduled })
}

/// Game ids from a CSV with a `game_id` column, or one per line.
fn ids_from_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header.split(',').position(|c| c.trim() == "game_id");
    let first = column.is_none().then_some(header);
    let ids: Vec<String> = first
        .into_iter()
        .chain(lines)
        .filter_map(|line| {
            let field = line.split(',').nth(column.unwrap_or(0))?.trim();
            (!field.is_empty()).then(|| field.to_owned())
        })
        .collect();
    anyhow::ensure!(!ids.is_empty(), "{} holds no game ids", path.display());
    Ok(ids)
}

/// A usage or setup error: exit status 2, before any load is sent.
const USAGE: u8 = 2;

/// The flags' values that no run can use, named by flag.
fn check(args: &LoadtestArgs) -> Result<(), String> {
    let positive = |flag: &str, value: Duration| {
        if value.is_zero() {
            Err(format!("{flag} must be longer than 0"))
        } else {
            Ok(())
        }
    };
    positive("--duration", args.duration)?;
    positive("--timeout", args.timeout)?;
    if args.connections == 0 {
        return Err("--connections must be at least 1".to_owned());
    }
    if args.threads == 0 {
        return Err("--threads must be at least 1".to_owned());
    }
    if !(args.slo_p95_ms.is_finite() && args.slo_p95_ms > 0.0) {
        return Err("--slo-p95-ms must be a positive number of milliseconds".to_owned());
    }
    for (flag, share) in [
        ("--slo-error-rate", args.slo_error_rate),
        ("--slo-rps-tolerance", args.slo_rps_tolerance),
    ] {
        if !(0.0..=1.0).contains(&share) {
            return Err(format!("{flag} is a share from 0 to 1, not {share}"));
        }
    }
    match (args.rate, args.users) {
        (Some(rate), _) if !(rate > 0.0 && rate.is_finite()) => {
            Err("--rate must be a positive number".to_owned())
        }
        (None, Some(0)) => Err("--users must be at least 1".to_owned()),
        _ => Ok(()),
    }
}

fn read_marks(path: &Path, started: f64) -> anyhow::Result<Vec<loadtest::Mark>> {
    Ok(loadtest::parse_marks(
        &std::fs::read_to_string(path)?,
        started,
    )?)
}

pub fn run(args: LoadtestArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let usage = |error: &dyn std::fmt::Display| {
        let _ = writeln!(std::io::stderr(), "error: {error}");
        Ok(ExitCode::from(USAGE))
    };
    if let Err(error) = check(&args) {
        return usage(&error);
    }
    let games = match games(&args, settings) {
        Ok(games) => games,
        Err(error) => return usage(&format_args!("{error:#}")),
    };
    // Opened before the run, so a path that cannot be written fails now, not after it.
    let json = match args.json.as_deref().map(File::create).transpose() {
        Ok(file) => file,
        Err(error) => {
            let path = args.json.as_deref().unwrap_or(Path::new("")).display();
            return usage(&format_args!("cannot create {path}: {error}"));
        }
    };
    if let Some(path) = args.plot.as_deref()
        && let Err(error) = File::create(path)
    {
        return usage(&format_args!("cannot create {}: {error}", path.display()));
    }
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64());
    let load = match args.users {
        Some(users) => Load::Closed { users },
        None => Load::Open {
            rate: args.rate.unwrap_or(100.0),
            connections: args.connections,
        },
    };
    let title = format!(
        "bullpen loadtest {}: {}",
        args.url,
        match load {
            Load::Closed { users } => format!("{users} users"),
            Load::Open { rate, .. } => format!("{rate} req/s"),
        }
    );
    let test = LoadTest {
        url: args.url,
        load,
        ramp_up: args.ramp_up,
        duration: args.duration,
        ramp_down: args.ramp_down,
        requests: Arc::new(loadtest::render(&args.mix, &games, RENDERED)),
        token: args.token,
        timeout: args.timeout,
        threads: args.threads,
        slo: Slo {
            p95_ms: args.slo_p95_ms,
            error_rate: args.slo_error_rate,
            rps_tolerance: args.slo_rps_tolerance,
        },
        progress: !args.quiet,
    };
    // The load runs on its own threads; this one only waits and draws progress.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    let report = match runtime.block_on(loadtest::run(test)) {
        Ok(report) => report,
        Err(
            error @ (loadtest::LoadTestError::Url(_)
            | loadtest::LoadTestError::Resolve(..)
            | loadtest::LoadTestError::NothingToSend),
        ) => return usage(&crate::telemetry::Chain(&error)),
        Err(error) => return Err(error.into()),
    };
    print!("{}", report.markdown());
    if let Some(file) = json {
        serde_json::to_writer_pretty(file, &report)?;
    }
    if let Some(path) = args.plot.as_deref() {
        // The report is out already: bad marks are told, and the timeline drawn without them.
        let marks = match args.plot_marks.as_deref() {
            Some(path) => read_marks(path, started).unwrap_or_else(|error| {
                let _ = writeln!(
                    std::io::stderr(),
                    "warning: no marks drawn from {}: {error:#}",
                    path.display()
                );
                Vec::new()
            }),
            None => Vec::new(),
        };
        loadtest::plot(path, &title, &report.timeline, &marks)?;
    }
    Ok(if report.slo.held {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
