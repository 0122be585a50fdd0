//! Scaling ahead of first pitch (the design's custom autoscaler): the schedule's first
//! pitches, read from `schedule.file`, and how many predictions each game drew in the
//! `lookahead` before its first pitch, counted as they are served. From them two gauges an
//! autoscaler reads before the rush arrives: the games starting within the lookahead, and the
//! request rate they are expected to bring (the games × the predictions a game drew in its
//! last lookahead, averaged over the games of the last `history_days` / the lookahead).
//!
//! Counted per replica: each sees its share of the traffic, so the cluster's expected rate is
//! the sum over replicas (docs/deploy.md). A replica counts only what it served, so after a
//! restart it knows no history: `requests_per_game` stands in until a game it saw starts.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Deserialize;

use crate::features::GameInfo;
use crate::games::TeamCode;
use crate::monitoring::Metrics;
use crate::validation::{InvalidSetting, at_least_one};

/// `[schedule]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    /// CSV `date,home,away,number,first_pitch` (RFC 3339); empty: no schedule, no gauges.
    pub file: String,
    /// How long before its first pitch a game's demand is counted and expected.
    pub lookahead_minutes: u32,
    /// The games whose demand is averaged: those that started in the last this many days.
    pub history_days: u32,
    /// Predictions a game is expected to draw in its lookahead until one has been counted.
    pub requests_per_game: f64,
    /// How often the file is checked for a change and the gauges are set.
    pub refresh_ms: u64,
}

impl ScheduleSettings {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        at_least_one(&[
            (
                "schedule.lookahead_minutes",
                u64::from(self.lookahead_minutes),
            ),
            ("schedule.history_days", u64::from(self.history_days)),
            ("schedule.refresh_ms", self.refresh_ms),
        ])?;
        if !(self.requests_per_game.is_finite() && self.requests_per_game >= 0.0) {
            return Err(InvalidSetting::new(
                "schedule.requests_per_game",
                "must be a number of at least 0",
            ));
        }
        Ok(())
    }
}

/// Why the schedule file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("cannot read the schedule {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("schedule {path}, line {line}: {reason}")]
    Row {
        path: String,
        line: u64,
        reason: String,
    },
}

/// One line of the file.
#[derive(Debug, Deserialize)]
struct Row {
    date: NaiveDate,
    home: TeamCode,
    /// Checked to name a team; a game is found by its home team.
    #[serde(rename = "away")]
    _away: TeamCode,
    #[serde(default)]
    number: u8,
    first_pitch: DateTime<Utc>,
}

/// A game of the schedule and the predictions it drew in its lookahead.
#[derive(Debug)]
struct Game {
    number: u8,
    first_pitch: DateTime<Utc>,
    asked: AtomicU64,
}

/// The games by date and home team: what a prediction's game names.
type Games = HashMap<(NaiveDate, TeamCode), Vec<Arc<Game>>>;

/// The schedule and its counts.
#[derive(Debug)]
pub struct Demand {
    settings: ScheduleSettings,
    lookahead: TimeDelta,
    started: DateTime<Utc>,
    games: ArcSwap<Games>,
    modified: std::sync::Mutex<Option<SystemTime>>,
}

impl Demand {
    /// The schedule of `settings.file`; `None` when none is configured.
    pub fn load(settings: &ScheduleSettings) -> Result<Option<Self>, ScheduleError> {
        if settings.file.is_empty() {
            return Ok(None);
        }
        let path = Path::new(&settings.file);
        let modified = modified(path);
        let games = read(path)?;
        Ok(Some(Self {
            settings: settings.clone(),
            lookahead: TimeDelta::minutes(i64::from(settings.lookahead_minutes)),
            started: Utc::now(),
            games: ArcSwap::from_pointee(games),
            modified: std::sync::Mutex::new(modified),
        }))
    }

    /// How often [`Self::refresh`] runs.
    pub fn refresh_every(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.settings.refresh_ms)
    }

    /// Counts a prediction for `game` served now against the scheduled game whose lookahead
    /// it falls in, if any: one map lookup and an atomic add.
    pub fn asked(&self, game: &GameInfo) {
        let games = self.games.load();
        let Some(candidates) = games.get(&(game.date, game.home)) else {
            return;
        };
        let now = Utc::now();
        let number = game.game_id.map(|id| id.number());
        if let Some(game) = candidates.iter().find(|candidate| {
            number.is_none_or(|number| number == candidate.number)
                && candidate.first_pitch - self.lookahead <= now
                && now < candidate.first_pitch
        }) {
            game.asked.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reads the file again when it changed (keeping the counts of the games it still
    /// holds; a file that no longer reads keeps the schedule as it was, logged) and sets the
    /// gauges.
    pub fn refresh(&self, metrics: &Metrics) {
        self.reload();
        let (starting, expected) = self.ahead(Utc::now());
        metrics.schedule_games_starting.set(starting);
        metrics.schedule_expected_requests_per_second.set(expected);
    }

    fn reload(&self) {
        let path = Path::new(&self.settings.file);
        let modified = modified(path);
        let mut seen = self
            .modified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if modified == *seen {
            return;
        }
        *seen = modified;
        match read(path) {
            Ok(games) => {
                let old = self.games.load();
                for ((date, home), fresh) in &games {
                    for game in fresh {
                        let kept = old.get(&(*date, *home)).and_then(|games| {
                            games.iter().find(|old| {
                                old.number == game.number && old.first_pitch == game.first_pitch
                            })
                        });
                        if let Some(kept) = kept {
                            game.asked
                                .store(kept.asked.load(Ordering::Relaxed), Ordering::Relaxed);
                        }
                    }
                }
                self.games.store(Arc::new(games));
                tracing::info!(file = %path.display(), "schedule reloaded");
            }
            Err(error) => {
                tracing::warn!(%error, "the schedule file changed and does not read; keeping the schedule as it was");
            }
        }
    }

    /// The games starting within the lookahead of `now`, and the requests per second they are
    /// expected to bring over it.
    fn ahead(&self, now: DateTime<Utc>) -> (i64, f64) {
        let history = TimeDelta::days(i64::from(self.settings.history_days));
        let games = self.games.load();
        let (mut starting, mut counted, mut asked) = (0_i64, 0_u64, 0_u64);
        for game in games.values().flatten() {
            if now <= game.first_pitch && game.first_pitch < now + self.lookahead {
                starting += 1;
            } else if self.started < game.first_pitch
                && game.first_pitch <= now
                && now - history <= game.first_pitch
            {
                counted += 1;
                asked += game.asked.load(Ordering::Relaxed);
            }
        }
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let per_game = if counted == 0 {
            self.settings.requests_per_game
        } else {
            asked as f64 / counted as f64
        };
        #[expect(clippy::cast_precision_loss, reason = "a few dozen games")]
        let expected = starting as f64 * per_game / self.lookahead.as_seconds_f64();
        (starting, expected)
    }
}

/// When the file at `path` was last changed, if that can be told.
fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
}

/// The games of the file at `path`.
fn read(path: &Path) -> Result<Games, ScheduleError> {
    let shown = || path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| ScheduleError::Read {
        path: shown(),
        source,
    })?;
    let mut reader = csv::Reader::from_reader(file);
    let mut games = Games::new();
    for row in reader.deserialize::<Row>() {
        let row = row.map_err(|error| ScheduleError::Row {
            path: shown(),
            line: error.position().map_or(0, csv::Position::line),
            reason: error.to_string(),
        })?;
        games
            .entry((row.date, row.home))
            .or_default()
            .push(Arc::new(Game {
                number: row.number,
                first_pitch: row.first_pitch,
                asked: AtomicU64::new(0),
            }));
    }
    Ok(games)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(rows: &str, started: DateTime<Utc>) -> Demand {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("schedule.csv");
        std::fs::write(&path, format!("date,home,away,number,first_pitch\n{rows}"))
            .expect("written");
        let settings = ScheduleSettings {
            file: path.display().to_string(),
            lookahead_minutes: 60,
            history_days: 14,
            requests_per_game: 36.0,
            refresh_ms: 1000,
        };
        let mut demand = Demand::load(&settings)
            .expect("it reads")
            .expect("a schedule");
        demand.started = started;
        demand
    }

    #[test]
    fn games_ahead_are_expected_to_draw_what_the_games_before_them_drew() {
        let now = Utc::now();
        let at = |minutes: i64| (now + TimeDelta::minutes(minutes)).to_rfc3339();
        let rows = format!(
            "2024-04-10,KCA,HOU,0,{}\n2024-04-11,KCA,HOU,0,{}\n2024-04-12,NYA,BOS,0,{}\n",
            at(-10),
            at(30),
            at(90),
        );
        let demand = demand(&rows, now - TimeDelta::hours(2));
        // No game has started since the replica did: the configured guess.
        let games = demand.games.load();
        let (starting, expected) = demand.ahead(now - TimeDelta::minutes(20));
        assert_eq!(starting, 2);
        assert!((expected - 2.0 * 36.0 / 3600.0).abs() < 1e-12);
        // The game that started ten minutes ago drew 720 predictions in its hour.
        let day = NaiveDate::from_ymd_opt(2024, 4, 10).expect("a date");
        let home = TeamCode::try_from("KCA".to_owned()).expect("a team");
        games[&(day, home)][0].asked.store(720, Ordering::Relaxed);
        let (starting, expected) = demand.ahead(now);
        assert_eq!(starting, 1);
        assert!((expected - 720.0 / 3600.0).abs() < 1e-12);
    }
}
