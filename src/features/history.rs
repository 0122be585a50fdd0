//! Point-in-time features. A [`History`] holds the state after some games; [`History::features`]
//! reads a game's vector from it. A stored game and a scheduled one go through the same
//! function: the only difference is which games were recorded before the call, and those are
//! always the games played on earlier dates (never the same day, so the two games of a
//! doubleheader see the same past).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};

use super::pitching::{PitcherState, PitchingLeague, StarterInput, starter_vector};
use super::spec::{FEATURE_COUNT, FeatureVector, STARTER_COUNT};
use super::state::{self, LeagueState, TeamState};
use crate::games::{Game, Phase, PitcherId, Pitchers, Starters, TeamCode};

/// Games of .500 blended into a season win percentage (a team's record regresses hard early).
const WIN_PCT_PRIOR_GAMES: f64 = 25.0;
/// Games of league-average scoring blended into a team's runs per game.
const RUNS_PRIOR_GAMES: f64 = 20.0;
/// Games of the team's overall rate blended into its home or road rate.
const SPLIT_PRIOR_GAMES: f64 = 20.0;
/// Exponent of the Pythagorean expectation for baseball.
const PYTHAG_EXPONENT: f64 = 1.83;
/// Rest beyond this many days (the off-season, the All-Star break) counts as this many.
const MAX_REST_DAYS: i64 = 10;
const LAST10_WINDOW: usize = 10;
const PITCHES_WINDOW_DAYS: i64 = 3;
const GAMES_WINDOW_DAYS: i64 = 7;

/// The state of every team and of the league after the games recorded so far.
#[derive(Debug, Clone)]
pub struct History {
    teams: HashMap<TeamCode, TeamState>,
    league: LeagueState,
    /// Shared, so the store's kept copies of a history copy pointers, not starters.
    pitchers: HashMap<PitcherId, Arc<PitcherState>>,
    pitching: PitchingLeague,
    /// Season totals (`data/pitchers`): last season's figures of each starter.
    seasons: Arc<Pitchers>,
    last_date: Option<NaiveDate>,
}

/// The features of an opening-day game between two teams with no history: a real vector
/// from the feature code that needs no data, so models warm up whatever the store's state.
pub fn warmup_vector() -> FeatureVector {
    let team = |code: &str| code.parse().expect("a valid team code; this is a bug");
    let date = NaiveDate::from_ymd_opt(2024, 3, 28).expect("a valid date; this is a bug");
    History::new().features(team("HOM"), team("AWY"), date, Starters::default())
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    pub fn new() -> Self {
        Self::with_pitchers(Arc::default())
    }

    /// An empty history whose starters' earlier seasons come from `seasons`.
    pub fn with_pitchers(seasons: Arc<Pitchers>) -> Self {
        Self {
            teams: HashMap::new(),
            league: LeagueState::new(i32::MIN),
            pitchers: HashMap::new(),
            pitching: PitchingLeague::new(i32::MIN),
            seasons,
            last_date: None,
        }
    }

    /// A history of no games that reads earlier seasons from the same totals.
    #[must_use]
    pub fn emptied(&self) -> Self {
        Self::with_pitchers(Arc::clone(&self.seasons))
    }

    /// The date of the latest game recorded.
    pub fn last_date(&self) -> Option<NaiveDate> {
        self.last_date
    }

    /// Whether a recorded game or the season totals name this pitcher.
    pub fn knows_pitcher(&self, pitcher: PitcherId) -> bool {
        self.pitchers.contains_key(&pitcher) || self.seasons.knows(pitcher)
    }

    /// The season totals the starters' earlier seasons are read from.
    pub fn seasons(&self) -> &Arc<Pitchers> {
        &self.seasons
    }

    /// Whether any recorded game involved this franchise.
    pub fn knows(&self, team: TeamCode) -> bool {
        self.teams.contains_key(&team.franchise())
    }

    /// Applies a finished game. Games must come in date order; All-Star games are skipped
    /// (their teams are not clubs).
    pub fn record(&mut self, game: &Game) {
        debug_assert!(
            self.last_date.is_none_or(|last| last <= game.date),
            "games are recorded in date order; this is a bug"
        );
        if game.phase == Phase::AllStar {
            return;
        }
        let season = game.season();
        let home_key = game.home.team.franchise();
        let away_key = game.away.team.franchise();
        let mut home = self
            .teams
            .remove(&home_key)
            .unwrap_or_else(|| TeamState::new(season));
        let away = self
            .teams
            .entry(away_key)
            .or_insert_with(|| TeamState::new(season));
        state::record_game(&mut home, away, &mut self.league, game);
        self.teams.insert(home_key, home);
        for start in [&game.home.starter, &game.away.starter]
            .into_iter()
            .flatten()
        {
            let pitcher = self
                .pitchers
                .entry(start.pitcher)
                .or_insert_with(|| Arc::new(PitcherState::new(season)));
            Arc::make_mut(pitcher).record(game.date, start.line.as_ref());
            if let Some(line) = &start.line {
                self.pitching.record(game.date, line);
            }
        }
        self.last_date = Some(game.date);
    }

    fn team(&self, team: TeamCode, season: i32) -> Cow<'_, TeamState> {
        match self.teams.get(&team.franchise()) {
            Some(state) if state.season >= season => Cow::Borrowed(state),
            Some(state) => {
                let mut rolled = state.clone();
                rolled.roll_to(season);
                Cow::Owned(rolled)
            }
            None => Cow::Owned(TeamState::new(season)),
        }
    }

    /// The feature vector of a game between `home` and `away` on `date` started by
    /// `starters`, from the games recorded so far. The caller guarantees none of them was
    /// played on or after `date`.
    pub fn features(
        &self,
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
        starters: Starters,
    ) -> FeatureVector {
        FeatureVector::new(
            self.team_features(home, away, date),
            self.starter_features(starters, date),
        )
    }

    fn team_features(
        &self,
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
    ) -> [f32; FEATURE_COUNT] {
        debug_assert!(
            self.last_date.is_none_or(|last| last < date),
            "features read only from earlier games; this is a bug"
        );
        let season = date.year();
        let mut league = self.league.clone();
        league.roll_to(season);
        let league_rpg = league.runs_per_game();
        let home = TeamView::new(&self.team(home, season), league_rpg, date);
        let away = TeamView::new(&self.team(away, season), league_rpg, date);

        let values: [f64; FEATURE_COUNT] = [
            home.elo,
            away.elo,
            home.elo - away.elo,
            state::elo_home_win_prob(home.elo, away.elo),
            home.win_pct,
            away.win_pct,
            home.runs_scored,
            home.runs_allowed,
            away.runs_scored,
            away.runs_allowed,
            home.pythag,
            away.pythag,
            home.pythag - away.pythag,
            home.last10,
            away.last10,
            home.home_win_pct,
            away.road_win_pct,
            home.rest_days,
            away.rest_days,
            home.games_last7,
            away.games_last7,
            home.pitches_last3,
            away.pitches_last3,
            home.prev_win_pct,
            away.prev_win_pct,
            home.games_played,
            away.games_played,
        ];
        values.map(|v| v as f32)
    }

    /// The starter features of a game on `date` (a starter not named reads as a debut).
    fn starter_features(&self, starters: Starters, date: NaiveDate) -> [f32; STARTER_COUNT] {
        debug_assert!(
            self.last_date.is_none_or(|last| last < date),
            "features read only from earlier games; this is a bug"
        );
        let season = date.year();
        let mut league = self.pitching.clone();
        league.roll_to(season);
        let input = |pitcher: Option<PitcherId>| StarterInput {
            state: pitcher
                .and_then(|id| self.pitchers.get(&id))
                .map(AsRef::as_ref),
            previous: pitcher.and_then(|id| self.seasons.totals(id, season - 1)),
            two_back: pitcher.and_then(|id| self.seasons.totals(id, season - 2)),
        };
        starter_vector(&input(starters.home), &input(starters.away), &league, date)
    }
}

/// One team's figures as of a date, before they are laid out in spec order.
struct TeamView {
    elo: f64,
    win_pct: f64,
    runs_scored: f64,
    runs_allowed: f64,
    pythag: f64,
    last10: f64,
    home_win_pct: f64,
    road_win_pct: f64,
    rest_days: f64,
    games_last7: f64,
    pitches_last3: f64,
    prev_win_pct: f64,
    games_played: f64,
}

fn shrunk(successes: f64, trials: f64, prior: f64, prior_weight: f64) -> f64 {
    (successes + prior * prior_weight) / (trials + prior_weight)
}

impl TeamView {
    fn new(team: &TeamState, league_rpg: f64, date: NaiveDate) -> Self {
        let season = &team.current;
        let games = f64::from(season.games);
        let win_pct = shrunk(f64::from(season.wins), games, 0.5, WIN_PCT_PRIOR_GAMES);
        let runs_scored = shrunk(
            f64::from(season.runs_scored),
            games,
            league_rpg,
            RUNS_PRIOR_GAMES,
        );
        let runs_allowed = shrunk(
            f64::from(season.runs_allowed),
            games,
            league_rpg,
            RUNS_PRIOR_GAMES,
        );
        let scored = runs_scored.powf(PYTHAG_EXPONENT);
        let pythag = scored / (scored + runs_allowed.powf(PYTHAG_EXPONENT));

        let played = team.last10.len();
        let last10_wins = team.last10.iter().filter(|won| **won).count();
        // Games not yet played in the window count as half a win each.
        let last10 =
            (last10_wins as f64 + 0.5 * (LAST10_WINDOW - played) as f64) / LAST10_WINDOW as f64;

        let days_ago = |day: NaiveDate| (date - day).num_days();
        let rest_days = team
            .last_played
            .map_or(MAX_REST_DAYS, |last| days_ago(last).min(MAX_REST_DAYS));
        let games_last7 = team
            .recent
            .iter()
            .filter(|(day, _)| days_ago(*day) <= GAMES_WINDOW_DAYS)
            .count();
        let pitches_last3: f64 = team
            .recent
            .iter()
            .filter(|(day, _)| days_ago(*day) <= PITCHES_WINDOW_DAYS)
            .fold(0.0, |total, (_, pitches)| total + pitches);

        Self {
            elo: team.elo,
            win_pct,
            runs_scored,
            runs_allowed,
            pythag,
            last10,
            home_win_pct: shrunk(
                f64::from(season.home_wins),
                f64::from(season.home_games),
                win_pct,
                SPLIT_PRIOR_GAMES,
            ),
            road_win_pct: shrunk(
                f64::from(season.road_wins),
                f64::from(season.road_games),
                win_pct,
                SPLIT_PRIOR_GAMES,
            ),
            rest_days: rest_days as f64,
            games_last7: games_last7 as f64,
            pitches_last3,
            prev_win_pct: team
                .previous
                .and_then(|record| record.win_pct())
                .unwrap_or(0.5),
            games_played: games,
        }
    }
}
