//! Final results as a season's feed sends them: `POST /api/v1/admin/results`, the rows of
//! `bullpen import --results`, and the lines of the results journal all read [`ResultBody`].
//!
//! A result is checked alone first (every field named in its error), then against the games
//! the store holds ([`plan`]): a team the data has never seen, a date before the data or in
//! the future, a game already final with another result (refused unless the request corrects
//! it). The same result twice changes nothing.

use std::collections::HashSet;
use std::io::Read;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store::EmbeddedStore;
use crate::games::{
    Game, GameId, Phase, PitcherId, PitcherLine, Start, TeamCode, TeamLine, parse_date,
};

/// Most results one request (or one CSV file) may carry: a season is about 2,500 games.
pub const MAX_RESULTS: usize = 5_000;

/// Most runs, hits and the like one side may have in a game (the record is 30 runs).
const MAX_COUNT: i64 = 999;

/// `POST /api/v1/admin/results`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultsBody {
    /// At least one final result, at most 5,000 (422 `batch_too_large` beyond), within
    /// `server.max_body_bytes` (413 beyond: the default 256 KiB holds about 700 results).
    #[schema(min_items = 1)]
    pub results: Vec<ResultBody>,
    /// Replace games already final with another result (else such a game is refused, 409).
    #[serde(default)]
    pub correct: bool,
}

/// One final result. `game_id` may be left out when `date` and the home team name the game
/// (with `number` in a doubleheader); when both are given they must agree.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = "^[A-Z0-9]{3}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-2]$",
        example = "BAL202403280"
    )]
    pub game_id: Option<String>,
    /// `YYYY-MM-DD`; may be left out when `game_id` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Date, example = "2024-03-28")]
    pub date: Option<String>,
    /// 0 for a single game (the default), 1 or 2 in a doubleheader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 2, example = 0)]
    pub number: Option<i64>,
    /// `regular` (the default), `postseason` or `allstar`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "regular")]
    pub phase: Option<String>,
    pub home: Option<LineBody>,
    pub away: Option<LineBody>,
}

/// One side's totals, as Retrosheet names them: `B_R`, `B_H`, `B_BB`, `B_HR`, `B_SO` of its
/// batters, `P_PITCH` and `P_TBF` of its pitchers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineBody {
    #[schema(pattern = "^[A-Za-z0-9]{3}$", example = "BAL")]
    pub team: Option<String>,
    #[schema(minimum = 0, example = 11)]
    pub runs: Option<i64>,
    #[schema(minimum = 0, example = 10)]
    pub hits: Option<i64>,
    #[schema(minimum = 0, example = 6)]
    pub walks: Option<i64>,
    #[schema(minimum = 0, example = 2)]
    pub home_runs: Option<i64>,
    #[schema(minimum = 0, example = 5)]
    pub strikeouts: Option<i64>,
    /// Pitches thrown by this side's pitchers; `null` when the source lacks them (box scores).
    #[serde(default)]
    #[schema(minimum = 0, example = 138)]
    pub pitches: Option<i64>,
    /// Batters faced by this side's pitchers.
    #[schema(minimum = 0, example = 31)]
    pub batters_faced: Option<i64>,
    /// This side's starting pitcher and his line; optional (a result without it leaves his
    /// starter features as they were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starter: Option<StarterBody>,
}

/// A starting pitcher: his Retrosheet id and what he did, every count within his side's (his
/// hits, walks, strikeouts, home runs and runs are the other side's batters'). The id alone
/// (every count absent) names him without a line.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StarterBody {
    #[schema(pattern = "^[a-z-]{4}[a-z][0-9]{3}$", example = "burnc002")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Outs recorded (three an inning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, example = 18)]
    pub outs: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, example = 24)]
    pub batters_faced: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, example = 5)]
    pub hits: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, example = 1)]
    pub home_runs: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, example = 2)]
    pub walks: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, example = 7)]
    pub strikeouts: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, example = 0)]
    pub hit_by_pitch: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, example = 2)]
    pub runs: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, example = 2)]
    pub earned_runs: Option<i64>,
    /// Absent (or `null`) when the source lacks them (box scores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, example = 96)]
    pub pitches: Option<i64>,
}

/// Why a result cannot be taken: the field (`results[3].home.runs`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ResultError {
    pub field: String,
    pub problem: String,
}

impl ResultError {
    /// What is wrong with `field` of the result at `at` (e.g. `results[3]`).
    fn at(at: &str, field: &str, problem: String) -> Self {
        Self {
            field: format!("{at}.{field}"),
            problem,
        }
    }
}

/// Why a set of results is refused as a whole; nothing of it is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no results: send at least one")]
    Empty,
    #[error("at most {limit} results at once; this has {count}")]
    TooMany { limit: usize, count: usize },
    #[error(transparent)]
    Invalid(#[from] ResultError),
    /// A game already final with another result, and the request does not correct it.
    #[error(
        "{id} is final with another result ({difference}); send \"correct\": true to replace it"
    )]
    Conflict { id: GameId, difference: String },
}

/// What a set of results did, game by game.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Ingested {
    #[schema(value_type = Vec<String>, example = json!(["BAL202403280"]))]
    pub added: Vec<GameId>,
    #[schema(value_type = Vec<String>)]
    pub unchanged: Vec<GameId>,
    #[schema(value_type = Vec<String>)]
    pub corrected: Vec<GameId>,
    /// The earliest date whose later games' features changed; absent when nothing changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub changed_from: Option<NaiveDate>,
}

/// Checked results and what applying them changes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The games to add or replace, in the order given.
    pub changes: Vec<Game>,
    pub outcome: Ingested,
}

impl ResultBody {
    /// The body of a stored game: what the journal writes and `GET /api/v1/games` shows.
    pub fn of(game: &Game) -> Self {
        let line = |line: &TeamLine| LineBody {
            team: Some(line.team.to_string()),
            runs: Some(line.runs.into()),
            hits: Some(line.hits.into()),
            walks: Some(line.walks.into()),
            home_runs: Some(line.home_runs.into()),
            strikeouts: Some(line.strikeouts.into()),
            pitches: line.pitches.map(i64::from),
            batters_faced: Some(line.batters_faced.into()),
            starter: line.starter.as_ref().map(StarterBody::of),
        };
        Self {
            game_id: Some(game.id.to_string()),
            date: Some(game.date.to_string()),
            number: Some(game.number.into()),
            phase: Some(game.phase.name().to_owned()),
            home: Some(line(&game.home)),
            away: Some(line(&game.away)),
        }
    }

    /// The game this result describes, checked on its own (the store is not consulted);
    /// `at` names it in errors, e.g. `results[3]`.
    pub fn to_game(&self, at: &str) -> Result<Game, ResultError> {
        let error = |field: &str, problem: String| ResultError::at(at, field, problem);
        let id = self
            .game_id
            .as_deref()
            .map(str::parse::<GameId>)
            .transpose()
            .map_err(|e| error("game_id", e.to_string()))?;
        let date = match (&self.date, id) {
            (Some(date), _) => parse_date(date).ok_or_else(|| {
                error("date", format!("`{date}` is not a date in YYYY-MM-DD form"))
            })?,
            (None, Some(id)) => id.date(),
            (None, None) => return Err(error("date", "missing (or give game_id)".to_owned())),
        };
        let number = match (self.number, id) {
            (Some(n @ 0..=2), _) => u8::try_from(n).unwrap_or(0),
            (Some(n), _) => return Err(error("number", format!("{n} is not 0, 1 or 2"))),
            (None, Some(id)) => id.number(),
            (None, None) => 0,
        };
        let phase = match self.phase.as_deref() {
            None => Phase::Regular,
            Some(name) => Phase::from_name(name).ok_or_else(|| {
                error(
                    "phase",
                    format!("`{name}` is not regular, postseason or allstar"),
                )
            })?,
        };
        let side = |name: &str, line: &Option<LineBody>| -> Result<TeamLine, ResultError> {
            let line = line
                .as_ref()
                .ok_or_else(|| error(name, "missing".to_owned()))?;
            line.to_line(&format!("{at}.{name}"))
        };
        let (home, away) = (side("home", &self.home)?, side("away", &self.away)?);
        check_sides(&home, &away).map_err(|(field, problem)| error(&field, problem))?;
        if home.team.franchise() == away.team.franchise() {
            return Err(error(
                "away.team",
                format!("{} cannot play itself", away.team),
            ));
        }
        if home.runs == away.runs && phase == Phase::Postseason {
            return Err(error(
                "home.runs",
                format!("a postseason game cannot end tied ({0}-{0})", home.runs),
            ));
        }
        let id = match id {
            Some(id) => {
                if id.date() != date {
                    return Err(error("date", format!("{date} is not the date of {id}")));
                }
                if id.number() != number {
                    return Err(error(
                        "number",
                        format!("{number} is not the number of {id}"),
                    ));
                }
                if id.home() != home.team {
                    return Err(error(
                        "home.team",
                        format!("{} is not the home team of {id}", home.team),
                    ));
                }
                id
            }
            None => GameId::new(home.team, date, number),
        };
        Ok(Game {
            id,
            date,
            number,
            phase,
            home,
            away,
        })
    }
}

impl LineBody {
    fn to_line(&self, at: &str) -> Result<TeamLine, ResultError> {
        let error = |field: &str, problem: String| ResultError::at(at, field, problem);
        let team = self
            .team
            .as_deref()
            .ok_or_else(|| error("team", "missing".to_owned()))?
            .parse::<TeamCode>()
            .map_err(|e| error("team", e.to_string()))?;
        let count = |field: &str, value: Option<i64>| count(at, field, value);
        let runs = count("runs", self.runs)?;
        let hits = count("hits", self.hits)?;
        let home_runs = count("home_runs", self.home_runs)?;
        if home_runs > hits {
            return Err(error(
                "home_runs",
                format!("{home_runs} home runs but {hits} hits (a home run is a hit)"),
            ));
        }
        if home_runs > runs {
            return Err(error(
                "home_runs",
                format!("{home_runs} home runs but {runs} runs (each scores one)"),
            ));
        }
        let pitches = match self.pitches {
            None => None,
            Some(value) if (0..=i64::from(u16::MAX / 2)).contains(&value) => {
                Some(u16::try_from(value).unwrap_or(0))
            }
            Some(value) => return Err(error("pitches", format!("{value} is not a pitch count"))),
        };
        Ok(TeamLine {
            team,
            runs,
            hits,
            walks: count("walks", self.walks)?,
            home_runs,
            strikeouts: count("strikeouts", self.strikeouts)?,
            pitches,
            batters_faced: count("batters_faced", self.batters_faced)?,
            starter: self
                .starter
                .as_ref()
                .map(|starter| starter.to_start(&format!("{at}.starter")))
                .transpose()?,
        })
    }
}

impl StarterBody {
    /// The body of a stored start: his id, and his line when it is known.
    fn of(start: &Start) -> Self {
        let Some(line) = start.line.as_ref() else {
            return Self {
                id: Some(start.pitcher.to_string()),
                outs: None,
                batters_faced: None,
                hits: None,
                home_runs: None,
                walks: None,
                strikeouts: None,
                hit_by_pitch: None,
                runs: None,
                earned_runs: None,
                pitches: None,
            };
        };
        Self {
            id: Some(start.pitcher.to_string()),
            outs: Some(line.outs.into()),
            batters_faced: Some(line.batters_faced.into()),
            hits: Some(line.hits.into()),
            home_runs: Some(line.home_runs.into()),
            walks: Some(line.walks.into()),
            strikeouts: Some(line.strikeouts.into()),
            hit_by_pitch: Some(line.hit_by_pitch.into()),
            runs: Some(line.runs.into()),
            earned_runs: Some(line.earned_runs.into()),
            pitches: line.pitches.map(i64::from),
        }
    }

    fn to_start(&self, at: &str) -> Result<Start, ResultError> {
        let error = |field: &str, problem: String| ResultError::at(at, field, problem);
        let pitcher = self
            .id
            .as_deref()
            .ok_or_else(|| error("id", "missing".to_owned()))?
            .parse::<PitcherId>()
            .map_err(|e| error("id", e.to_string()))?;
        let counts = [
            self.outs,
            self.batters_faced,
            self.hits,
            self.home_runs,
            self.walks,
            self.strikeouts,
            self.hit_by_pitch,
            self.runs,
            self.earned_runs,
            self.pitches,
        ];
        // Named only: who started, without his line (a feed that has no box score yet).
        if counts.iter().all(Option::is_none) {
            return Ok(Start {
                pitcher,
                line: None,
            });
        }
        let count = |field: &str, value: Option<i64>| count(at, field, value);
        let line = PitcherLine {
            outs: count("outs", self.outs)?,
            batters_faced: count("batters_faced", self.batters_faced)?,
            hits: count("hits", self.hits)?,
            home_runs: count("home_runs", self.home_runs)?,
            walks: count("walks", self.walks)?,
            strikeouts: count("strikeouts", self.strikeouts)?,
            hit_by_pitch: count("hit_by_pitch", self.hit_by_pitch)?,
            runs: count("runs", self.runs)?,
            earned_runs: count("earned_runs", self.earned_runs)?,
            pitches: self
                .pitches
                .map(|pitches| count("pitches", Some(pitches)))
                .transpose()?,
        };
        let within = |field: &str, part: u16, of: &str, whole: u16| {
            if part > whole {
                Err(error(
                    field,
                    format!("{part} is more than his {whole} {of}"),
                ))
            } else {
                Ok(())
            }
        };
        // Earned runs may pass runs: the scorer charges runs to the pitcher responsible for
        // the runner, earned runs by reconstructing the inning (Retrosheet has such lines).
        within("home_runs", line.home_runs, "hits", line.hits)?;
        let reached = line.hits + line.walks + line.hit_by_pitch + line.strikeouts;
        within("hits", reached, "batters faced", line.batters_faced)?;
        Ok(Start {
            pitcher,
            line: Some(line),
        })
    }
}

/// A present count of 0 to [`MAX_COUNT`] of the field `field` of the body at `at`.
fn count(at: &str, field: &str, value: Option<i64>) -> Result<u16, ResultError> {
    let value = value.ok_or_else(|| ResultError::at(at, field, "missing".to_owned()))?;
    if !(0..=MAX_COUNT).contains(&value) {
        return Err(ResultError::at(
            at,
            field,
            format!("{value} is not a count from 0 to {MAX_COUNT}"),
        ));
    }
    Ok(u16::try_from(value).unwrap_or(0))
}

/// The two sides' lines against each other: the field (`home.runs`) and what is wrong.
fn check_sides(home: &TeamLine, away: &TeamLine) -> Result<(), (String, String)> {
    // A side's batters bat against the other side's pitchers: each of their runs is one
    // of the batters those pitchers faced, and a plate appearance ends in at most one of
    // a hit, a walk or a strikeout.
    for (name, batting, pitching) in [("home", home, away), ("away", away, home)] {
        let faced = pitching.batters_faced;
        if batting.runs > faced {
            return Err((
                format!("{name}.runs"),
                format!(
                    "{} runs against {faced} batters faced by {}'s pitchers",
                    batting.runs, pitching.team
                ),
            ));
        }
        if batting.hits + batting.walks + batting.strikeouts > faced {
            return Err((
                format!("{name}.hits"),
                format!(
                    "{} hits, {} walks and {} strikeouts against {faced} batters faced by \
                         {}'s pitchers",
                    batting.hits, batting.walks, batting.strikeouts, pitching.team
                ),
            ));
        }
    }
    for (name, pitching, batting) in [("home", home, away), ("away", away, home)] {
        if let Some(start) = &pitching.starter
            && let Some(line) = &start.line
        {
            check_starter(line, pitching, batting)
                .map_err(|(field, problem)| (format!("{name}.starter.{field}"), problem))?;
        }
    }
    Ok(())
}

/// A starter's line against his side's totals: he is one of its pitchers, and the batters
/// he faced are the other side's. The field and what is wrong.
fn check_starter(
    line: &PitcherLine,
    pitching: &TeamLine,
    batting: &TeamLine,
) -> Result<(), (&'static str, String)> {
    let checks = [
        (
            "batters_faced",
            line.batters_faced,
            pitching.batters_faced,
            "batters faced",
        ),
        ("hits", line.hits, batting.hits, "hits"),
        ("home_runs", line.home_runs, batting.home_runs, "home runs"),
        ("walks", line.walks, batting.walks, "walks"),
        (
            "strikeouts",
            line.strikeouts,
            batting.strikeouts,
            "strikeouts",
        ),
        ("runs", line.runs, batting.runs, "runs"),
    ];
    for (field, his, theirs, what) in checks {
        if his > theirs {
            return Err((
                field,
                format!(
                    "{his} {what}, more than the {theirs} of the whole game ({} against {})",
                    pitching.team, batting.team
                ),
            ));
        }
    }
    // Pitches are not compared: the teams' counts (Retrosheet's P_PITCH, by Chadwick's rule)
    // and the starters' (the true count) are counted differently and can disagree.
    Ok(())
}

/// Checks `results` against the games `store` holds and sorts them into added, unchanged and
/// corrected; refuses the whole set on the first problem. `today` (UTC) bounds dates: every
/// game ends on a UTC day no earlier than its local date, so no final result is dated later.
pub fn plan(
    store: &EmbeddedStore,
    results: &[ResultBody],
    correct: bool,
    today: NaiveDate,
) -> Result<Plan, PlanError> {
    if results.is_empty() {
        return Err(PlanError::Empty);
    }
    if results.len() > MAX_RESULTS {
        return Err(PlanError::TooMany {
            limit: MAX_RESULTS,
            count: results.len(),
        });
    }
    let mut seen = HashSet::with_capacity(results.len());
    let mut plan = Plan {
        changes: Vec::new(),
        outcome: Ingested::default(),
    };
    for (index, body) in results.iter().enumerate() {
        let at = format!("results[{index}]");
        let mut game = body.to_game(&at)?;
        let error = |field: &str, problem: String| ResultError::at(&at, field, problem);
        if let Some((stored, _)) = store.game(game.id) {
            // A result that names no starter says nothing of him: the one stored stays (a
            // feed without starters posts a known game again unchanged, not in conflict).
            for (sent, kept) in [
                (&mut game.home, &stored.home),
                (&mut game.away, &stored.away),
            ] {
                if sent.starter.is_none() && sent.team == kept.team {
                    sent.starter = kept.starter;
                }
            }
        }
        if !seen.insert(game.id) {
            return Err(error("game_id", format!("{} is given twice", game.id)).into());
        }
        for (side, line) in [("home", &game.home), ("away", &game.away)] {
            if !store.knows_team(line.team) {
                return Err(error(
                    &format!("{side}.team"),
                    format!("team `{}` has no games in the data", line.team),
                )
                .into());
            }
        }
        if let Some((first, _)) = store.span()
            && game.date < first
        {
            return Err(error(
                "date",
                format!(
                    "{} is before the first day in the data ({first})",
                    game.date
                ),
            )
            .into());
        }
        if game.date > today {
            return Err(error(
                "date",
                format!("{} has not been played yet (today is {today})", game.date),
            )
            .into());
        }
        let mut others = store
            .games_on(game.date)
            .iter()
            .filter(|other| other.id != game.id && !plan.changes.iter().any(|c| c.id == other.id))
            .chain(plan.changes.iter().filter(|other| other.date == game.date));
        if let Some((team, other)) = others.find_map(|other| {
            let team = other.excludes(game.home.team, game.away.team, game.number)?;
            Some((team, other))
        }) {
            return Err(error(
                "number",
                format!(
                    "{team} also plays {} on {}: a team plays one game a day (number 0), or \
                     games 1 and 2 of a doubleheader",
                    other.id, game.date
                ),
            )
            .into());
        }
        match store.game(game.id) {
            Some((stored, _)) if *stored == game => plan.outcome.unchanged.push(game.id),
            Some((stored, _)) if !correct => {
                return Err(PlanError::Conflict {
                    id: game.id,
                    difference: difference(stored, &game),
                });
            }
            Some(_) => {
                plan.outcome.corrected.push(game.id);
                plan.changes.push(game);
            }
            None => {
                plan.outcome.added.push(game.id);
                plan.changes.push(game);
            }
        }
    }
    plan.outcome.changed_from = plan.changes.iter().map(|game| game.date).min();
    Ok(plan)
}

/// The first field in which two results of one game differ, for a 409's detail.
fn difference(stored: &Game, sent: &Game) -> String {
    let (a, b) = (ResultBody::of(stored), ResultBody::of(sent));
    let (a, b) = (
        serde_json::to_value(a).unwrap_or_default(),
        serde_json::to_value(b).unwrap_or_default(),
    );
    let mut differences = Vec::new();
    collect_differences("", &a, &b, &mut differences);
    differences
        .into_iter()
        .next()
        .unwrap_or_else(|| "the same fields, in another form".to_owned())
}

fn collect_differences(
    path: &str,
    a: &serde_json::Value,
    b: &serde_json::Value,
    out: &mut Vec<String>,
) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (key, value) in a {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                collect_differences(
                    &path,
                    value,
                    b.get(key).unwrap_or(&serde_json::Value::Null),
                    out,
                );
            }
        }
        _ if a != b => out.push(format!("{path} is {a}, not {b}")),
        _ => {}
    }
}

/// The columns of `bullpen import --results` files, in order; a header row names them.
/// The columns a results CSV may have: a game, each side's line, and each side's starter
/// (`home_sp_id` and his line; leave them empty, or out, for a result without starters).
pub const CSV_COLUMNS: [&str; 42] = [
    "game_id",
    "date",
    "number",
    "phase",
    "home_team",
    "home_runs",
    "home_hits",
    "home_walks",
    "home_home_runs",
    "home_strikeouts",
    "home_pitches",
    "home_batters_faced",
    "away_team",
    "away_runs",
    "away_hits",
    "away_walks",
    "away_home_runs",
    "away_strikeouts",
    "away_pitches",
    "away_batters_faced",
    "home_sp_id",
    "home_sp_outs",
    "home_sp_batters_faced",
    "home_sp_hits",
    "home_sp_home_runs",
    "home_sp_walks",
    "home_sp_strikeouts",
    "home_sp_hit_by_pitch",
    "home_sp_runs",
    "home_sp_earned_runs",
    "home_sp_pitches",
    "away_sp_id",
    "away_sp_outs",
    "away_sp_batters_faced",
    "away_sp_hits",
    "away_sp_home_runs",
    "away_sp_walks",
    "away_sp_strikeouts",
    "away_sp_hit_by_pitch",
    "away_sp_runs",
    "away_sp_earned_runs",
    "away_sp_pitches",
];

/// Reads a results CSV (a header row of [`CSV_COLUMNS`], any order; empty cells are absent
/// values) into bodies; a row that cannot be read is named by its line.
pub fn read_csv(reader: impl Read) -> Result<Vec<ResultBody>, ResultError> {
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let line_error = |line: u64, problem: String| ResultError {
        field: format!("line {line}"),
        problem,
    };
    let headers = csv
        .headers()
        .map_err(|e| line_error(1, format!("unreadable header: {e}")))?
        .clone();
    let column = |name: &str| headers.iter().position(|header| header == name);
    if let Some(unknown) = headers.iter().find(|header| !CSV_COLUMNS.contains(header)) {
        return Err(line_error(
            1,
            format!(
                "unknown column `{unknown}` (columns: {})",
                CSV_COLUMNS.join(", ")
            ),
        ));
    }
    let mut bodies = Vec::new();
    for record in csv.records() {
        let record = record.map_err(|e| {
            line_error(
                e.position().map_or(0, csv::Position::line),
                format!("unreadable row: {e}"),
            )
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let text = |name: &str| {
            column(name)
                .and_then(|i| record.get(i))
                .filter(|cell| !cell.is_empty())
                .map(str::to_owned)
        };
        let number = |name: &str| -> Result<Option<i64>, ResultError> {
            text(name)
                .map(|cell| {
                    cell.parse::<i64>().map_err(|_| {
                        line_error(line, format!("{name}: `{cell}` is not a whole number"))
                    })
                })
                .transpose()
        };
        let side = |prefix: &str| -> Result<LineBody, ResultError> {
            let field = |name: &str| format!("{prefix}_{name}");
            let starter = |name: &str| format!("{prefix}_sp_{name}");
            let starter = match text(&starter("id")) {
                None => None,
                Some(id) => Some(StarterBody {
                    id: Some(id),
                    outs: number(&starter("outs"))?,
                    batters_faced: number(&starter("batters_faced"))?,
                    hits: number(&starter("hits"))?,
                    home_runs: number(&starter("home_runs"))?,
                    walks: number(&starter("walks"))?,
                    strikeouts: number(&starter("strikeouts"))?,
                    hit_by_pitch: number(&starter("hit_by_pitch"))?,
                    runs: number(&starter("runs"))?,
                    earned_runs: number(&starter("earned_runs"))?,
                    pitches: number(&starter("pitches"))?,
                }),
            };
            Ok(LineBody {
                team: text(&field("team")),
                runs: number(&field("runs"))?,
                hits: number(&field("hits"))?,
                walks: number(&field("walks"))?,
                home_runs: number(&field("home_runs"))?,
                strikeouts: number(&field("strikeouts"))?,
                pitches: number(&field("pitches"))?,
                batters_faced: number(&field("batters_faced"))?,
                starter,
            })
        };
        bodies.push(ResultBody {
            game_id: text("game_id"),
            date: text("date"),
            number: number("number")?,
            phase: text("phase"),
            home: Some(side("home")?),
            away: Some(side("away")?),
        });
        if bodies.len() > MAX_RESULTS {
            return Err(line_error(
                line,
                format!("more than {MAX_RESULTS} results in one file"),
            ));
        }
    }
    Ok(bodies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> ResultBody {
        serde_json::from_value(serde_json::json!({
            "date": "2024-03-28", "number": 0, "phase": "regular",
            "home": {"team": "BAL", "runs": 11, "hits": 13, "walks": 5, "home_runs": 2,
                     "strikeouts": 8, "pitches": 155, "batters_faced": 37},
            "away": {"team": "ANA", "runs": 3, "hits": 6, "walks": 3, "home_runs": 1,
                     "strikeouts": 9, "pitches": null, "batters_faced": 41}
        }))
        .expect("a body")
    }

    #[test]
    fn a_result_names_its_game_and_round_trips() {
        let game = body().to_game("results[0]").expect("valid");
        assert_eq!(game.id.as_str(), "BAL202403280");
        assert_eq!(game.away.pitches, None);
        let again = ResultBody::of(&game).to_game("x").expect("valid");
        assert_eq!(again, game);
    }

    #[test]
    fn each_problem_names_its_field() {
        fn home(b: &mut ResultBody) -> &mut LineBody {
            b.home.as_mut().expect("a home line")
        }
        fn away(b: &mut ResultBody) -> &mut LineBody {
            b.away.as_mut().expect("an away line")
        }
        type Change = fn(&mut ResultBody);
        let cases: [(Change, &str); 12] = [
            (|b| b.date = None, "results[0].date"),
            (|b| b.date = Some("2024-13-01".into()), "results[0].date"),
            (|b| b.number = Some(3), "results[0].number"),
            (|b| b.phase = Some("spring".into()), "results[0].phase"),
            (|b| b.home = None, "results[0].home"),
            (|b| home(b).runs = Some(-1), "results[0].home.runs"),
            (|b| away(b).hits = None, "results[0].away.hits"),
            (
                |b| away(b).team = Some("BAL".into()),
                "results[0].away.team",
            ),
            (
                |b| home(b).home_runs = Some(14),
                "results[0].home.home_runs",
            ),
            (
                |b| b.game_id = Some("BAL202403281".into()),
                "results[0].number",
            ),
            (
                |b| b.game_id = Some("NYA202403280".into()),
                "results[0].home.team",
            ),
            (
                |b| {
                    b.phase = Some("postseason".into());
                    away(b).runs = Some(11);
                },
                "results[0].home.runs",
            ),
        ];
        for (change, field) in cases {
            let mut sent = body();
            change(&mut sent);
            let error = sent.to_game("results[0]").expect_err(field);
            assert_eq!(error.field, field, "{error}");
        }
    }

    #[test]
    fn csv_rows_read_as_bodies() {
        let text = "game_id,date,number,phase,home_team,home_runs,home_hits,home_walks,\
            home_home_runs,home_strikeouts,home_pitches,home_batters_faced,away_team,away_runs,\
            away_hits,away_walks,away_home_runs,away_strikeouts,away_pitches,away_batters_faced\n\
            ,2024-03-28,0,regular,BAL,11,13,5,2,8,155,37,ANA,3,6,3,1,9,,41\n";
        let bodies = read_csv(text.as_bytes()).expect("reads");
        assert_eq!(bodies, vec![body()]);
        let bad = read_csv("date,home_team,nope\n".as_bytes()).expect_err("unknown column");
        assert!(bad.problem.contains("nope"), "{bad}");
        let bad = read_csv("date,home_team,home_runs\n2024-03-28,BAL,x\n".as_bytes())
            .expect_err("not a number");
        assert_eq!(bad.field, "line 2");
        let text = "date,home_team,home_runs,home_sp_id,home_sp_outs,home_sp_pitches\n\
            2024-03-28,BAL,11,burnc002,18,\n2024-03-28,BAL,11,,,\n";
        let bodies = read_csv(text.as_bytes()).expect("reads");
        let starter = bodies[0]
            .home
            .as_ref()
            .and_then(|home| home.starter.as_ref());
        assert_eq!(starter.and_then(|s| s.id.as_deref()), Some("burnc002"));
        assert_eq!(starter.and_then(|s| s.outs), Some(18));
        assert_eq!(
            bodies[1].home.as_ref().map(|home| &home.starter),
            Some(&None)
        );
    }

    fn with_starters() -> ResultBody {
        let mut sent = body();
        let starter = |id: &str, outs: i64| {
            serde_json::from_value(serde_json::json!({
                "id": id, "outs": outs, "batters_faced": 24, "hits": 5, "home_runs": 1,
                "walks": 2, "strikeouts": 7, "hit_by_pitch": 0, "runs": 3, "earned_runs": 2,
                "pitches": 96
            }))
            .expect("a starter")
        };
        sent.home.as_mut().expect("home").starter = Some(starter("burnc002", 18));
        sent.away.as_mut().expect("away").starter = Some(starter("andet002", 15));
        sent
    }

    #[test]
    fn starters_travel_with_the_result_and_round_trip() {
        let game = with_starters().to_game("results[0]").expect("valid");
        let start = game.home.starter.expect("a home starter");
        assert_eq!(start.pitcher.as_str(), "burnc002");
        assert_eq!(start.line.map(|line| line.outs), Some(18));
        // The away side had no pitch count: his own count stands alone.
        assert_eq!(
            game.away
                .starter
                .and_then(|s| s.line)
                .and_then(|l| l.pitches),
            Some(96)
        );
        let again = ResultBody::of(&game).to_game("x").expect("valid");
        assert_eq!(again, game);
        // Named only: the starter without his line.
        let mut named = with_starters();
        named.away.as_mut().expect("away").starter = Some(StarterBody::of(&Start {
            pitcher: "andet002".parse().expect("an id"),
            line: None,
        }));
        let game = named.to_game("results[0]").expect("valid");
        assert_eq!(game.away.starter.map(|start| start.line), Some(None));
        assert_eq!(ResultBody::of(&game).to_game("x").expect("valid"), game);
    }

    #[test]
    fn a_starters_line_is_checked_alone_and_against_his_side() {
        fn starter(side: Option<&mut LineBody>) -> &mut StarterBody {
            side.and_then(|line| line.starter.as_mut())
                .expect("a starter")
        }
        type Change = fn(&mut ResultBody);
        let cases: [(Change, &str); 8] = [
            (
                |b| starter(b.home.as_mut()).id = Some("Burnes".into()),
                "results[0].home.starter.id",
            ),
            (
                |b| starter(b.home.as_mut()).id = None,
                "results[0].home.starter.id",
            ),
            (
                |b| starter(b.home.as_mut()).outs = Some(-3),
                "results[0].home.starter.outs",
            ),
            (
                |b| starter(b.home.as_mut()).home_runs = Some(6),
                "results[0].home.starter.home_runs",
            ),
            (
                |b| starter(b.home.as_mut()).walks = None,
                "results[0].home.starter.walks",
            ),
            // Ten strikeouts, but the visitors struck out nine times in the whole game.
            (
                |b| starter(b.home.as_mut()).strikeouts = Some(10),
                "results[0].home.starter.strikeouts",
            ),
            // Four runs charged to him, but the visitors scored three.
            (
                |b| starter(b.home.as_mut()).runs = Some(4),
                "results[0].home.starter.runs",
            ),
            (
                |b| starter(b.home.as_mut()).pitches = Some(-1),
                "results[0].home.starter.pitches",
            ),
        ];
        for (change, field) in cases {
            let mut sent = with_starters();
            change(&mut sent);
            let error = sent.to_game("results[0]").expect_err(field);
            assert_eq!(error.field, field, "{error}");
        }
    }

    #[test]
    fn a_result_without_starters_leaves_the_stored_ones() {
        let stored = with_starters().to_game("stored").expect("valid");
        let store = EmbeddedStore::from_games(vec![stored.clone()], |_| {});
        let today = stored.date + chrono::Days::new(1);
        let again = plan(&store, &[body()], false, today).expect("a known result");
        assert_eq!(again.outcome.unchanged, vec![stored.id]);
        // Another starter is another result.
        let mut other = with_starters();
        if let Some(starter) = other.home.as_mut().and_then(|home| home.starter.as_mut()) {
            starter.id = Some("glast001".into());
        }
        let conflict = plan(&store, &[other], false, today).expect_err("a different starter");
        assert!(matches!(conflict, PlanError::Conflict { .. }), "{conflict}");
    }
}
