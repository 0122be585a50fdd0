//! What is known about each team and the league after some games: the state the
//! point-in-time features are read from. It only moves forward, one game at a time.

use std::collections::VecDeque;

use chrono::NaiveDate;

use crate::games::{Game, Phase, TeamLine};

/// Elo scale of `FiveThirtyEight`'s MLB ratings: mean 1500, K 4, home edge 24 points.
pub const ELO_MEAN: f64 = 1500.0;
pub const ELO_K: f64 = 4.0;
pub const ELO_HOME_EDGE: f64 = 24.0;
/// Share of a rating's distance from the mean given up between seasons.
pub const ELO_SEASON_REGRESSION: f64 = 1.0 / 3.0;
/// League runs per team-game before any season is known (MLB 2010 scored 4.38).
pub const LEAGUE_RUNS_FALLBACK: f64 = 4.4;
/// Estimate for box-score games, which do not record pitches: MLB averages ~3.9 per batter.
pub const PITCHES_PER_BATTER: f64 = 3.9;
/// How many days of games the workload window keeps.
pub const RECENT_DAYS: i64 = 7;

/// Regular-season totals of one team.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SeasonRecord {
    pub games: u32,
    pub wins: u32,
    pub runs_scored: u32,
    pub runs_allowed: u32,
    pub home_games: u32,
    pub home_wins: u32,
    pub road_games: u32,
    pub road_wins: u32,
}

impl SeasonRecord {
    pub fn win_pct(&self) -> Option<f64> {
        (self.games > 0).then(|| f64::from(self.wins) / f64::from(self.games))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TeamState {
    pub season: i32,
    pub elo: f64,
    pub current: SeasonRecord,
    pub previous: Option<SeasonRecord>,
    /// Results of this season's last ten regular-season games, newest last.
    pub last10: VecDeque<bool>,
    /// Date and pitches thrown of each game in the last days, any phase.
    pub recent: VecDeque<(NaiveDate, f64)>,
    pub last_played: Option<NaiveDate>,
}

impl TeamState {
    pub fn new(season: i32) -> Self {
        Self {
            season,
            elo: ELO_MEAN,
            current: SeasonRecord::default(),
            previous: None,
            last10: VecDeque::with_capacity(10),
            recent: VecDeque::new(),
            last_played: None,
        }
    }

    /// The state at the start of `season`: last season's record becomes `previous` and the
    /// rating regresses toward the mean. A no-op within a season.
    pub fn roll_to(&mut self, season: i32) {
        if season <= self.season {
            return;
        }
        self.previous = (self.current.games > 0)
            .then_some(self.current)
            .or(self.previous);
        self.current = SeasonRecord::default();
        self.last10.clear();
        self.elo = ELO_MEAN + (self.elo - ELO_MEAN) * (1.0 - ELO_SEASON_REGRESSION);
        self.season = season;
    }

    fn record(&mut self, game: &Game, line: &TeamLine, opponent: &TeamLine, at_home: bool) {
        let won = line.runs > opponent.runs;
        if game.phase == Phase::Regular {
            let season = &mut self.current;
            season.games += 1;
            season.wins += u32::from(won);
            season.runs_scored += u32::from(line.runs);
            season.runs_allowed += u32::from(opponent.runs);
            if at_home {
                season.home_games += 1;
                season.home_wins += u32::from(won);
            } else {
                season.road_games += 1;
                season.road_wins += u32::from(won);
            }
            if self.last10.len() == 10 {
                self.last10.pop_front();
            }
            self.last10.push_back(won);
        }
        let pitches = line.pitches.map_or_else(
            || f64::from(line.batters_faced) * PITCHES_PER_BATTER,
            f64::from,
        );
        self.recent.push_back((game.date, pitches));
        while self
            .recent
            .front()
            .is_some_and(|(date, _)| (game.date - *date).num_days() > RECENT_DAYS)
        {
            self.recent.pop_front();
        }
        self.last_played = Some(game.date);
    }
}

/// League-wide run environment, used as the prior that early-season figures shrink toward.
#[derive(Debug, Clone, PartialEq)]
pub struct LeagueState {
    pub season: i32,
    pub runs: u64,
    pub team_games: u64,
    pub previous_runs_per_game: Option<f64>,
}

impl LeagueState {
    /// Team-games of last season's rate blended into this season's, so April is not noise.
    const PRIOR_TEAM_GAMES: f64 = 300.0;

    pub fn new(season: i32) -> Self {
        Self {
            season,
            runs: 0,
            team_games: 0,
            previous_runs_per_game: None,
        }
    }

    pub fn roll_to(&mut self, season: i32) {
        if season <= self.season {
            return;
        }
        if self.team_games > 0 {
            self.previous_runs_per_game = Some(self.runs as f64 / self.team_games as f64);
        }
        self.runs = 0;
        self.team_games = 0;
        self.season = season;
    }

    pub fn runs_per_game(&self) -> f64 {
        let prior = self.previous_runs_per_game.unwrap_or(LEAGUE_RUNS_FALLBACK);
        (self.runs as f64 + Self::PRIOR_TEAM_GAMES * prior)
            / (self.team_games as f64 + Self::PRIOR_TEAM_GAMES)
    }
}

/// Elo's expected score for the home side.
pub fn elo_home_win_prob(home_elo: f64, away_elo: f64) -> f64 {
    1.0 / (1.0 + 10f64.powf(-(home_elo - away_elo + ELO_HOME_EDGE) / 400.0))
}

/// Applies one finished game to both teams and the league.
pub fn record_game(
    home: &mut TeamState,
    away: &mut TeamState,
    league: &mut LeagueState,
    game: &Game,
) {
    let season = game.season();
    home.roll_to(season);
    away.roll_to(season);
    league.roll_to(season);

    let expected = elo_home_win_prob(home.elo, away.elo);
    let actual = match game.home_win() {
        Some(true) => 1.0,
        Some(false) => 0.0,
        None => 0.5,
    };
    let shift = ELO_K * (actual - expected);
    home.elo += shift;
    away.elo -= shift;

    home.record(game, &game.home, &game.away, true);
    away.record(game, &game.away, &game.home, false);
    if game.phase == Phase::Regular {
        league.runs += u64::from(game.home.runs) + u64::from(game.away.runs);
        league.team_games += 2;
    }
}
