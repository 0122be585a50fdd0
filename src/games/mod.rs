//! Games: the domain types for one MLB game and the Retrosheet reader that produces them.

mod ids;
mod retrosheet;

use chrono::NaiveDate;

pub use ids::{GameId, GameIdError, TeamCode, TeamCodeError, parse_date};
pub use retrosheet::{DataError, load_dir, parse_season, season_files};

/// A game as a request names it: stored (by id) or scheduled (teams and date). The same
/// value keys the caches (`cache::keys` renders it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GameRef {
    Stored(GameId),
    Scheduled {
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
    },
}

/// The part of the season a game belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Regular,
    Postseason,
    AllStar,
}

/// One side of a game: who played and the totals the features use.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamLine {
    pub team: TeamCode,
    pub runs: u16,
    pub hits: u16,
    pub walks: u16,
    pub home_runs: u16,
    pub strikeouts: u16,
    /// Pitches thrown by this team's pitchers; box-score sources do not record them.
    pub pitches: Option<u16>,
    /// Batters faced by this team's pitchers.
    pub batters_faced: u16,
}

/// One game, both teams joined, from a single source.
#[derive(Debug, Clone, PartialEq)]
pub struct Game {
    pub id: GameId,
    pub date: NaiveDate,
    /// 0 for a single game, 1 and 2 for the games of a doubleheader.
    pub number: u8,
    pub phase: Phase,
    pub home: TeamLine,
    pub away: TeamLine,
}

impl Game {
    pub fn season(&self) -> i32 {
        chrono::Datelike::year(&self.date)
    }

    /// `Some(true)` when the home team won, `None` for a tie (a game called and never resumed).
    pub fn home_win(&self) -> Option<bool> {
        match self.home.runs.cmp(&self.away.runs) {
            std::cmp::Ordering::Greater => Some(true),
            std::cmp::Ordering::Less => Some(false),
            std::cmp::Ordering::Equal => None,
        }
    }
}
