//! What is known about each starting pitcher and the league's starters after some games: the
//! state the starter features of spec `v2` are read from. Like the teams' state it only moves
//! forward, one game at a time, and reads nothing of the game it describes.
//!
//! Rates are per batter faced and shrunk toward the league's starters by batters faced, so a
//! pitcher with few starts reads close to the league; a debut, or a starter nobody named,
//! reads exactly the league with counts of 0.

use chrono::NaiveDate;

use super::spec::{PER_STARTER, STARTER_COUNT};
use crate::games::{PitcherLine, SeasonTotals};

/// Batters faced of league-average pitching blended into each window's rates.
const CAREER_PRIOR_BF: f64 = 300.0;
const SEASON_PRIOR_BF: f64 = 150.0;
const LAST_PRIOR_BF: f64 = 100.0;
const PREVIOUS_PRIOR_BF: f64 = 200.0;
/// Home runs per batter settle far slower than strikeouts or walks: their prior counts this
/// many times the others'.
const HOME_RUN_PRIOR_WEIGHT: f64 = 1.0;
/// Starts of league-average length blended into a starter's outs per start.
const OUTS_PRIOR_STARTS: f64 = 5.0;
/// The starts the short window keeps.
pub const LAST_STARTS: usize = 5;
/// Rest beyond this many days (injury, the off-season, a debut) counts as this many.
const MAX_REST_DAYS: i64 = 20;
/// Batters faced of last season's league rates blended into this season's.
const LEAGUE_PRIOR_BF: f64 = 20_000.0;
/// Added to FIP's weighted events per inning so it reads on the ERA scale.
const FIP_CONSTANT: f64 = 3.1;
/// League starters before any line is known (MLB starters 2010–2019, roughly).
const FALLBACK: Rates = Rates {
    strikeouts: 0.20,
    walks: 0.085,
    home_runs: 0.028,
    outs: 0.70,
    earned_runs: 0.11,
};
/// How much each start weighs against the one after it in the recent figures: a start ten
/// starts ago counts half.
const RECENT_DECAY: f64 = 0.933;
const RECENT_PRIOR_BF: f64 = 150.0;
/// The projection's weights of this season, last season and the one before (Marcel's
/// pattern), and the league batters blended in.
const PROJECTION_WEIGHTS: [f64; 3] = [1.0, 0.5, 0.25];
const PROJECTION_PRIOR_BF: f64 = 250.0;
const FALLBACK_OUTS_PER_START: f64 = 17.0;

/// Sums of starters' lines.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    starts: u32,
    outs: u32,
    batters_faced: u32,
    strikeouts: u32,
    /// Walks and hit batters.
    walks: u32,
    home_runs: u32,
    earned_runs: u32,
}

impl Tally {
    fn add(&mut self, other: &Self) {
        self.starts += other.starts;
        self.outs += other.outs;
        self.batters_faced += other.batters_faced;
        self.strikeouts += other.strikeouts;
        self.walks += other.walks;
        self.home_runs += other.home_runs;
        self.earned_runs += other.earned_runs;
    }
}

/// Sums of lines, each counted with a weight: the recent figures multiply the earlier starts
/// by [`RECENT_DECAY`] at each start; the projection weighs whole seasons.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Weighted {
    batters_faced: f64,
    strikeouts: f64,
    walks: f64,
    home_runs: f64,
    outs: f64,
    earned_runs: f64,
}

impl Weighted {
    fn sums(&mut self) -> [&mut f64; 6] {
        [
            &mut self.batters_faced,
            &mut self.strikeouts,
            &mut self.walks,
            &mut self.home_runs,
            &mut self.outs,
            &mut self.earned_runs,
        ]
    }

    /// Adds `tally` counted `weight` times.
    fn add_weighted(&mut self, tally: &Tally, weight: f64) {
        let counts = [
            tally.batters_faced,
            tally.strikeouts,
            tally.walks,
            tally.home_runs,
            tally.outs,
            tally.earned_runs,
        ];
        for (sum, count) in self.sums().into_iter().zip(counts) {
            *sum += weight * f64::from(count);
        }
    }

    /// Adds the latest start, the earlier ones decayed.
    fn add(&mut self, tally: &Tally) {
        for sum in self.sums() {
            *sum *= RECENT_DECAY;
        }
        self.add_weighted(tally, 1.0);
    }
}

impl From<&PitcherLine> for Tally {
    fn from(line: &PitcherLine) -> Self {
        Self {
            starts: 1,
            outs: u32::from(line.outs),
            batters_faced: u32::from(line.batters_faced),
            strikeouts: u32::from(line.strikeouts),
            walks: u32::from(line.walks) + u32::from(line.hit_by_pitch),
            home_runs: u32::from(line.home_runs),
            earned_runs: u32::from(line.earned_runs),
        }
    }
}

impl From<&SeasonTotals> for Tally {
    fn from(totals: &SeasonTotals) -> Self {
        Self {
            starts: totals.starts,
            outs: totals.outs,
            batters_faced: totals.batters_faced,
            strikeouts: totals.strikeouts,
            walks: totals.walks + totals.hit_by_pitch,
            home_runs: totals.home_runs,
            earned_runs: totals.earned_runs,
        }
    }
}

/// Events per batter faced.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rates {
    strikeouts: f64,
    walks: f64,
    home_runs: f64,
    outs: f64,
    earned_runs: f64,
}

impl Rates {
    /// `tally`'s rates with `prior_bf` batters of `league` blended in.
    fn shrunk(tally: &Tally, prior_bf: f64, league: &Self) -> Self {
        let mut sums = Weighted::default();
        sums.add_weighted(tally, 1.0);
        Self::shrunk_weighted(&sums, prior_bf, league)
    }

    fn shrunk_weighted(sums: &Weighted, prior_bf: f64, league: &Self) -> Self {
        let rate = |events: f64, prior: f64, weight: f64| {
            (events + prior * prior_bf * weight) / (sums.batters_faced + prior_bf * weight)
        };
        Self {
            strikeouts: rate(sums.strikeouts, league.strikeouts, 1.0),
            walks: rate(sums.walks, league.walks, 1.0),
            home_runs: rate(sums.home_runs, league.home_runs, HOME_RUN_PRIOR_WEIGHT),
            outs: rate(sums.outs, league.outs, 1.0),
            earned_runs: rate(sums.earned_runs, league.earned_runs, 1.0),
        }
    }

    /// Earned runs per nine innings.
    fn era(&self) -> f64 {
        27.0 * self.earned_runs / self.outs
    }

    fn strikeouts_less_walks(&self) -> f64 {
        self.strikeouts - self.walks
    }

    /// A FIP-like figure: home runs, walks and strikeouts weighted per inning, on the ERA
    /// scale.
    fn fip(&self) -> f64 {
        let innings_per_batter = self.outs / 3.0;
        (13.0 * self.home_runs + 3.0 * self.walks - 2.0 * self.strikeouts) / innings_per_batter
            + FIP_CONSTANT
    }
}

/// One starter's history as of some date.
#[derive(Debug, Clone, PartialEq)]
pub struct PitcherState {
    season: i32,
    /// Starts in the data, with or without a line.
    starts: u32,
    season_starts: u32,
    career: Tally,
    current: Tally,
    /// The lines of his last starts that have one, oldest first.
    last: [Tally; LAST_STARTS],
    recent: Weighted,
    last_start: Option<NaiveDate>,
}

impl PitcherState {
    pub fn new(season: i32) -> Self {
        Self {
            season,
            starts: 0,
            season_starts: 0,
            career: Tally::default(),
            current: Tally::default(),
            last: [Tally::default(); LAST_STARTS],
            recent: Weighted::default(),
            last_start: None,
        }
    }

    fn roll_to(&mut self, season: i32) {
        if season > self.season {
            self.season = season;
            self.season_starts = 0;
            self.current = Tally::default();
        }
    }

    /// Applies one start on `date`.
    pub fn record(&mut self, date: NaiveDate, line: Option<&PitcherLine>) {
        self.roll_to(chrono::Datelike::year(&date));
        self.starts += 1;
        self.season_starts += 1;
        self.last_start = Some(date);
        if let Some(line) = line {
            let tally = Tally::from(line);
            self.career.add(&tally);
            self.current.add(&tally);
            self.last.rotate_left(1);
            self.last[LAST_STARTS - 1] = tally;
            self.recent.add(&tally);
        }
    }
}

/// The league's starters: this season's lines and last season's.
#[derive(Debug, Clone, PartialEq)]
pub struct PitchingLeague {
    season: i32,
    current: Tally,
    previous: Option<Tally>,
}

impl PitchingLeague {
    pub fn new(season: i32) -> Self {
        Self {
            season,
            current: Tally::default(),
            previous: None,
        }
    }

    pub fn roll_to(&mut self, season: i32) {
        if season > self.season {
            if self.current.batters_faced > 0 {
                self.previous = Some(self.current);
            }
            self.current = Tally::default();
            self.season = season;
        }
    }

    pub fn record(&mut self, date: NaiveDate, line: &PitcherLine) {
        self.roll_to(chrono::Datelike::year(&date));
        self.current.add(&Tally::from(line));
    }

    /// This season's rates with last season's (or the fallback's) blended in.
    fn rates(&self) -> (Rates, f64) {
        let (prior, prior_outs_per_start) =
            self.previous
                .map_or((FALLBACK, FALLBACK_OUTS_PER_START), |previous| {
                    let rates = Rates::shrunk(&previous, 0.0, &FALLBACK);
                    (
                        rates,
                        f64::from(previous.outs) / f64::from(previous.starts.max(1)),
                    )
                });
        let rates = Rates::shrunk(&self.current, LEAGUE_PRIOR_BF, &prior);
        let prior_starts = LEAGUE_PRIOR_BF / 25.0;
        let outs_per_start = (f64::from(self.current.outs) + prior_outs_per_start * prior_starts)
            / (f64::from(self.current.starts) + prior_starts);
        (rates, outs_per_start)
    }
}

/// One starter's figures, before they are laid out in spec order.
struct StarterView {
    starts: f64,
    season_starts: f64,
    rest_days: f64,
    career: Rates,
    season: Rates,
    last: Rates,
    recent: Rates,
    /// This season's lines and the last two seasons' totals, weighted.
    projected: Rates,
    outs_per_start: f64,
    previous_starts: f64,
    previous_outs: f64,
    previous: Rates,
}

impl StarterView {
    /// `league`: the league's rates and outs per start (`PitchingLeague::rates`).
    fn new(input: &StarterInput<'_>, league: (Rates, f64), date: NaiveDate) -> Self {
        let (league_rates, league_outs_per_start) = league;
        let season = chrono::Datelike::year(&date);
        let fresh = PitcherState::new(season);
        let state = input.state.unwrap_or(&fresh);
        let (season_starts, current) = if state.season == season {
            (state.season_starts, state.current)
        } else {
            (0, Tally::default())
        };
        let mut last = Tally::default();
        for tally in &state.last {
            last.add(tally);
        }
        let rest_days = state.last_start.map_or(MAX_REST_DAYS, |day| {
            (date - day).num_days().clamp(0, MAX_REST_DAYS)
        });
        let previous = input.previous.map(Tally::from).unwrap_or_default();
        let mut projection = Weighted::default();
        let seasons = [
            current,
            previous,
            input.two_back.map(Tally::from).unwrap_or_default(),
        ];
        for (tally, weight) in seasons.iter().zip(PROJECTION_WEIGHTS) {
            projection.add_weighted(tally, weight);
        }
        let outs_per_start = (f64::from(state.career.outs)
            + league_outs_per_start * OUTS_PRIOR_STARTS)
            / (f64::from(state.career.starts) + OUTS_PRIOR_STARTS);
        Self {
            starts: f64::from(state.starts),
            season_starts: f64::from(season_starts),
            rest_days: rest_days as f64,
            career: Rates::shrunk(&state.career, CAREER_PRIOR_BF, &league_rates),
            season: Rates::shrunk(&current, SEASON_PRIOR_BF, &league_rates),
            last: Rates::shrunk(&last, LAST_PRIOR_BF, &league_rates),
            recent: Rates::shrunk_weighted(&state.recent, RECENT_PRIOR_BF, &league_rates),
            projected: Rates::shrunk_weighted(&projection, PROJECTION_PRIOR_BF, &league_rates),
            outs_per_start,
            previous_starts: f64::from(previous.starts),
            previous_outs: f64::from(previous.outs),
            previous: Rates::shrunk(&previous, PREVIOUS_PRIOR_BF, &league_rates),
        }
    }

    /// Runs the starter is expected to allow in a start of his usual length, at his
    /// projected FIP.
    fn expected_runs(&self) -> f64 {
        self.projected.fip() * self.outs_per_start / 27.0
    }

    fn values(&self) -> [f64; PER_STARTER] {
        [
            self.starts,
            self.season_starts,
            self.rest_days,
            self.career.strikeouts,
            self.career.walks,
            self.career.home_runs,
            self.career.fip(),
            self.career.era(),
            self.season.strikeouts,
            self.season.walks,
            self.season.home_runs,
            self.season.fip(),
            self.season.era(),
            self.last.strikeouts,
            self.last.walks,
            self.last.fip(),
            self.recent.fip(),
            self.recent.era(),
            self.projected.strikeouts,
            self.projected.walks,
            self.projected.fip(),
            self.projected.era(),
            self.outs_per_start,
            self.expected_runs(),
            self.previous_starts,
            self.previous_outs,
            self.previous.strikeouts,
            self.previous.walks,
            self.previous.fip(),
            self.previous.era(),
        ]
    }
}

/// A starter as the features see him: his state (none for a debut or an unnamed starter) and
/// the totals of the two seasons before.
pub struct StarterInput<'a> {
    pub state: Option<&'a PitcherState>,
    pub previous: Option<&'a SeasonTotals>,
    pub two_back: Option<&'a SeasonTotals>,
}

/// The starter features of a game on `date`, in spec order.
pub fn starter_vector(
    home: &StarterInput<'_>,
    away: &StarterInput<'_>,
    league: &PitchingLeague,
    date: NaiveDate,
) -> [f32; STARTER_COUNT] {
    let league = league.rates();
    let home = StarterView::new(home, league, date);
    let away = StarterView::new(away, league, date);
    let mut values = [0.0; STARTER_COUNT];
    let (sides, differences) = values.split_at_mut(2 * PER_STARTER);
    sides[..PER_STARTER].copy_from_slice(&home.values());
    sides[PER_STARTER..].copy_from_slice(&away.values());
    differences.copy_from_slice(&[
        home.career.fip() - away.career.fip(),
        home.season.fip() - away.season.fip(),
        home.last.fip() - away.last.fip(),
        home.recent.fip() - away.recent.fip(),
        home.previous.fip() - away.previous.fip(),
        home.career.era() - away.career.era(),
        home.recent.era() - away.recent.era(),
        home.previous.era() - away.previous.era(),
        home.projected.fip() - away.projected.fip(),
        home.projected.era() - away.projected.era(),
        home.career.strikeouts_less_walks() - away.career.strikeouts_less_walks(),
        home.season.strikeouts_less_walks() - away.season.strikeouts_less_walks(),
        home.outs_per_start - away.outs_per_start,
        home.expected_runs() - away.expected_runs(),
    ]);
    values.map(|v| v as f32)
}
