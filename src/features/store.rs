//! The embedded feature store: every game in the data folder and its feature vector, built
//! in memory at start.
//!
//! A scheduled game after the data is answered from the final history in constant time. One
//! inside the data needs the history as of its date: the build keeps a copy of the history
//! every [`CHECKPOINT_DAYS`] game days, so a lookup replays at most that many days of games
//! (tens of microseconds) instead of every season before it.
//!
//! Results arriving during a season ([`EmbeddedStore::with_results`]) make a new store that
//! shares nothing mutable with the old one: the build resumes from the last checkpoint before
//! the earliest changed date. Each game day also carries a digest of every game before it
//! ([`EmbeddedStore::history_before`]): what a game's features were computed from, which the
//! feature cache keys carry, so features computed before a result can never be read after it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};

use super::history::History;
use super::lookup::GameFeatures;
use super::settings::DataSettings;
use super::spec::FeatureVector;
use crate::db::DbError;
use crate::games::{
    self, DataError, Game, GameId, PitcherId, Pitchers, StaffMember, Starters, TeamCode,
};

/// Game days between two kept histories: ~400 copies of ~30 team states for 2010–2024.
const CHECKPOINT_DAYS: usize = 7;

#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    games: Vec<Game>,
    /// Each game's features from the starters it names.
    vectors: Vec<FeatureVector>,
    index: HashMap<GameId, usize>,
    /// `(i, history)`: the history of `games[..i]`, where `games[i]` opens a game day; one
    /// every [`CHECKPOINT_DAYS`] game days from the first.
    checkpoints: Vec<(usize, History)>,
    latest: History,
    /// Each game day, and the digest of every game up to and including it.
    days: Vec<(NaiveDate, u64)>,
    /// Every team code in the data, All-Star sides included, with the first and last season
    /// it played under that code.
    teams: HashMap<TeamCode, (i32, i32)>,
    schedule_horizon_days: u32,
}

/// Where a build starts: from nothing, or from a checkpoint of an earlier build whose games
/// before it are unchanged.
struct Resume {
    vectors: Vec<FeatureVector>,
    checkpoints: Vec<(usize, History)>,
    history: History,
}

/// How far after the last game in the data a scheduled game may be priced, unless
/// `features.schedule_horizon_days` says otherwise: to about the end of the next season.
pub const DEFAULT_SCHEDULE_HORIZON_DAYS: u32 = 400;

/// Where feature vectors come from: the embedded store, or PostgreSQL. Both answer with
/// the same vectors for the same games (a test compares them over a whole season).
pub trait FeatureStore {
    /// A stored game and its features; `None` when the store does not hold it.
    fn game(
        &self,
        id: GameId,
    ) -> impl Future<Output = Result<Option<GameFeatures>, StoreError>> + Send;

    /// Features of a game between `home` and `away` on `date` started by `starters`, from
    /// the games before it.
    fn scheduled(
        &self,
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
        starters: Starters,
    ) -> impl Future<Output = Result<FeatureVector, StoreError>> + Send;
}

/// Why a store could not answer. Cheap to clone (caches hand one error to every waiter).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// The store could not be read (PostgreSQL down or slow): it passes.
    #[error("the feature store is unavailable")]
    Unavailable(#[source] Arc<DbError>),
    /// The store holds data that cannot be decoded: it stays until someone fixes it.
    #[error("the feature store holds data bullpen cannot read")]
    Corrupt(#[source] Arc<DbError>),
}

impl From<DbError> for StoreError {
    fn from(error: DbError) -> Self {
        if error.is_corrupt() {
            Self::Corrupt(Arc::new(error))
        } else {
            Self::Unavailable(Arc::new(error))
        }
    }
}

/// Why features for a scheduled game cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("team `{0}` has no games in the data")]
    UnknownTeam(TeamCode),
    #[error(
        "no pitcher `{0}` in the data: name a pitcher by his Retrosheet id \
         (GET /api/v1/pitchers lists a team's)"
    )]
    UnknownPitcher(PitcherId),
    #[error("a team cannot play itself ({0})")]
    SameTeam(TeamCode),
    #[error(
        "team `{team}` played under that code from {first} to {last}; the franchise plays as {successor}"
    )]
    RetiredCode {
        team: TeamCode,
        first: i32,
        last: i32,
        successor: TeamCode,
    },
    #[error("{date} is not after the first day in the data ({first})")]
    BeforeData { date: NaiveDate, first: NaiveDate },
    #[error(
        "{date} is more than {days} days after the last game in the data ({last}): its \
         features would be stale"
    )]
    AfterHorizon {
        date: NaiveDate,
        last: NaiveDate,
        days: u32,
    },
}

/// The first and last game days of a store, and how far after the last one a scheduled
/// game may be.
#[derive(Debug, Clone, Copy)]
pub(super) struct DataSpan {
    pub first: Option<NaiveDate>,
    pub last: Option<NaiveDate>,
    pub horizon_days: u32,
}

impl EmbeddedStore {
    /// Loads the games and starters `data` names and computes all feature vectors;
    /// `progress` hears how many games each step finished.
    pub fn load(data: &DataSettings, progress: impl FnMut(usize)) -> Result<Self, DataError> {
        let (games, pitchers) = data.load()?;
        Ok(Self::from_games_and_pitchers(games, pitchers, progress))
    }

    /// Builds the store from games sorted by date (then number and id, as [`games::load_dir`]
    /// sorts them).
    pub fn from_games(games: Vec<Game>, progress: impl FnMut(usize)) -> Self {
        Self::from_games_and_pitchers(games, Arc::default(), progress)
    }

    /// Builds the store from games sorted by date whose starters' earlier seasons are in
    /// `pitchers`.
    pub fn from_games_and_pitchers(
        games: Vec<Game>,
        pitchers: Arc<Pitchers>,
        progress: impl FnMut(usize),
    ) -> Self {
        let resume = Resume {
            vectors: Vec::with_capacity(games.len()),
            checkpoints: Vec::new(),
            history: History::with_pitchers(pitchers),
        };
        Self::build(games, resume, progress)
    }

    fn build(games: Vec<Game>, resume: Resume, mut progress: impl FnMut(usize)) -> Self {
        let Resume {
            mut vectors,
            mut checkpoints,
            mut history,
        } = resume;
        let mut start = vectors.len();
        // A resumed build starts on the day of its last checkpoint.
        let first_day = checkpoints.len().saturating_sub(1) * CHECKPOINT_DAYS;
        for (day_number, day) in games[start..]
            .chunk_by(|a, b| a.date == b.date)
            .enumerate()
            .map(|(n, day)| (n + first_day, day))
        {
            if day_number % CHECKPOINT_DAYS == 0
                && checkpoints.last().is_none_or(|(at, _)| *at < start)
            {
                checkpoints.push((start, history.clone()));
            }
            // Every game of the day is read before any of them is recorded.
            for game in day {
                let starters = Starters::of(game);
                vectors.push(history.features(game.home.team, game.away.team, game.date, starters));
            }
            for game in day {
                history.record(game);
            }
            start += day.len();
            progress(day.len());
        }
        if checkpoints.is_empty() {
            checkpoints.push((0, history.emptied()));
        }
        let index = games
            .iter()
            .enumerate()
            .map(|(i, game)| (game.id, i))
            .collect();
        let mut days: Vec<(NaiveDate, u64)> = Vec::new();
        let mut digest = 0;
        for game in &games {
            digest ^= game_digest(game);
            match days.last_mut() {
                Some((date, cumulative)) if *date == game.date => *cumulative = digest,
                _ => days.push((game.date, digest)),
            }
        }
        let mut teams: HashMap<TeamCode, (i32, i32)> = HashMap::new();
        for game in &games {
            let season = game.season();
            for team in [game.home.team, game.away.team] {
                let span = teams.entry(team).or_insert((season, season));
                *span = (span.0.min(season), span.1.max(season));
            }
        }
        Self {
            games,
            vectors,
            index,
            checkpoints,
            latest: history,
            days,
            teams,
            schedule_horizon_days: DEFAULT_SCHEDULE_HORIZON_DAYS,
        }
    }

    /// A new store with `results` added, each replacing the stored game of its id if there is
    /// one. Only what follows the earliest of their dates is computed again.
    #[must_use]
    pub fn with_results(&self, results: &[Game]) -> Self {
        let Some(earliest) = results.iter().map(|game| game.date).min() else {
            return self.clone();
        };
        let mut games = self.games.clone();
        let mut replaced: HashMap<GameId, &Game> =
            results.iter().map(|game| (game.id, game)).collect();
        for game in &mut games {
            if let Some(result) = replaced.remove(&game.id) {
                *game = result.clone();
            }
        }
        let mut added: Vec<Game> = replaced.into_values().cloned().collect();
        games.append(&mut added);
        games.sort_by_key(|game| (game.date, game.number, game.id));
        // The last checkpoint whose games are all before `earliest` is still right.
        let kept = self
            .checkpoints
            .iter()
            .rposition(|(start, _)| {
                self.games
                    .get(*start)
                    .is_none_or(|game| game.date <= earliest)
            })
            .unwrap_or(0);
        let (start, history) = self.checkpoints[kept].clone();
        let resume = Resume {
            vectors: self.vectors[..start].to_vec(),
            checkpoints: self.checkpoints[..=kept].to_vec(),
            history,
        };
        Self::build(games, resume, |_| {}).with_schedule_horizon(self.schedule_horizon_days)
    }

    /// The digest of every game played before `date`: equal for two stores exactly when they
    /// hold the same games before it (a 64-bit hash, so up to its collisions), whatever their
    /// source. A game's features are a function of these games.
    pub fn history_before(&self, date: NaiveDate) -> u64 {
        let days = self.days.partition_point(|(day, _)| *day < date);
        days.checked_sub(1).map_or(0, |last| self.days[last].1)
    }

    /// The first game day whose history differs between two stores (a game added, removed
    /// or changed on it): the features of every game after it may differ. `None` when both
    /// hold the same games.
    pub fn first_difference(&self, other: &Self) -> Option<NaiveDate> {
        let common = self.days.iter().zip(&other.days).position(|(a, b)| a != b);
        match common {
            Some(index) => Some(self.days[index].0.min(other.days[index].0)),
            None if self.days.len() == other.days.len() => None,
            None => {
                let shorter = self.days.len().min(other.days.len());
                let longer = if self.days.len() > shorter {
                    self
                } else {
                    other
                };
                Some(longer.days[shorter].0)
            }
        }
    }

    /// The games played on `date`, in the store's order.
    pub fn games_on(&self, date: NaiveDate) -> &[Game] {
        let start = self.games.partition_point(|game| game.date < date);
        let end = self.games.partition_point(|game| game.date <= date);
        &self.games[start..end]
    }

    /// Whether a game of the data involved team code `team`.
    pub fn knows_team(&self, team: TeamCode) -> bool {
        self.teams.contains_key(&team)
    }

    /// The first and last game days.
    pub fn span(&self) -> Option<(NaiveDate, NaiveDate)> {
        Some((self.games.first()?.date, self.games.last()?.date))
    }

    /// Scheduled games more than `days` after the last game in the data are refused.
    #[must_use]
    pub fn with_schedule_horizon(mut self, days: u32) -> Self {
        self.schedule_horizon_days = days;
        self
    }

    pub fn games(&self) -> &[Game] {
        &self.games
    }

    pub fn vectors(&self) -> &[FeatureVector] {
        &self.vectors
    }

    /// Whether a game of the store or the season totals name this pitcher.
    pub fn knows_pitcher(&self, pitcher: PitcherId) -> bool {
        self.latest.knows_pitcher(pitcher)
    }

    /// Who pitched for `team`'s franchise in `season`: every starter of its games in the
    /// store (results posted included) and every pitcher of the season totals, with his
    /// games started (the larger count of the two), starters first, then by id.
    pub fn staff(&self, team: TeamCode, season: i32) -> Vec<StaffMember> {
        let franchise = team.franchise();
        let mut starts: BTreeMap<PitcherId, u32> = BTreeMap::new();
        let first = self.games.partition_point(|game| game.season() < season);
        let last = self.games.partition_point(|game| game.season() <= season);
        for game in &self.games[first..last] {
            if game.phase != games::Phase::Regular {
                continue;
            }
            for line in [&game.home, &game.away] {
                if line.team.franchise() == franchise
                    && let Some(start) = line.starter
                {
                    *starts.entry(start.pitcher).or_default() += 1;
                }
            }
        }
        let seasons = self.latest.seasons();
        for (id, started) in seasons.staff(franchise, season) {
            let count = starts.entry(id).or_default();
            *count = (*count).max(started);
        }
        let mut staff: Vec<StaffMember> = starts
            .into_iter()
            .map(|(id, starts)| StaffMember {
                id,
                name: seasons.name(id).cloned(),
                starts,
            })
            .collect();
        staff.sort_by(|a, b| b.starts.cmp(&a.starts).then(a.id.cmp(&b.id)));
        staff
    }

    /// A stored game and its features.
    pub fn game(&self, id: GameId) -> Option<(&Game, &FeatureVector)> {
        self.index
            .get(&id)
            .map(|&i| (&self.games[i], &self.vectors[i]))
    }

    /// Features of a game between `home` and `away` on `date` started by `starters`, from
    /// the games before it.
    pub fn scheduled_features(
        &self,
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
        starters: Starters,
    ) -> Result<FeatureVector, ScheduleError> {
        let span = DataSpan {
            first: self.games.first().map(|game| game.date),
            last: self.games.last().map(|game| game.date),
            horizon_days: self.schedule_horizon_days,
        };
        // A code the franchise left for another (FLO for MIA) names the club only in the
        // seasons it was used; the franchise's own code stands for it at any date.
        let retired = |team: TeamCode| {
            (team.franchise() != team)
                .then(|| self.teams.get(&team).copied())
                .flatten()
        };
        check_schedule(
            |team| self.latest.knows(team),
            retired,
            span,
            home,
            away,
            date,
        )?;
        if let Some(unknown) = [starters.home, starters.away]
            .into_iter()
            .flatten()
            .find(|pitcher| !self.knows_pitcher(*pitcher))
        {
            return Err(ScheduleError::UnknownPitcher(unknown));
        }
        if self.latest.last_date().is_none_or(|last| last < date) {
            return Ok(self.latest.features(home, away, date, starters));
        }
        let end = self.games.partition_point(|game| game.date < date);
        let (start, checkpoint) = self
            .checkpoints
            .iter()
            .rev()
            .find(|(start, _)| *start <= end)
            .expect("the first checkpoint starts at game 0; this is a bug");
        let mut history = checkpoint.clone();
        for game in &self.games[*start..end] {
            history.record(game);
        }
        Ok(history.features(home, away, date, starters))
    }
}

impl FeatureStore for EmbeddedStore {
    async fn game(&self, id: GameId) -> Result<Option<GameFeatures>, StoreError> {
        Ok(EmbeddedStore::game(self, id).map(|(game, vector)| GameFeatures::stored(game, *vector)))
    }

    async fn scheduled(
        &self,
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
        starters: Starters,
    ) -> Result<FeatureVector, StoreError> {
        Ok(self.scheduled_features(home, away, date, starters)?)
    }
}

/// A game's part of [`EmbeddedStore::history_before`]: every field the features read.
fn game_digest(game: &Game) -> u64 {
    let mut bytes = Vec::with_capacity(48);
    bytes.extend_from_slice(game.id.as_str().as_bytes());
    bytes.push(game.number);
    bytes.push(match game.phase {
        games::Phase::Regular => 0,
        games::Phase::Postseason => 1,
        games::Phase::AllStar => 2,
    });
    for line in [&game.home, &game.away] {
        bytes.extend_from_slice(line.team.as_str().as_bytes());
        for count in [
            line.runs,
            line.hits,
            line.walks,
            line.home_runs,
            line.strikeouts,
            line.pitches.unwrap_or(u16::MAX),
            line.batters_faced,
        ] {
            bytes.extend_from_slice(&count.to_le_bytes());
        }
        bytes.push(u8::from(line.pitches.is_some()));
        if let Some(start) = &line.starter {
            bytes.extend_from_slice(start.pitcher.as_str().as_bytes());
            if let Some(pitched) = &start.line {
                let pitches = pitched.pitches.unwrap_or(u16::MAX);
                for count in pitched.counts().into_iter().chain([pitches]) {
                    bytes.extend_from_slice(&count.to_le_bytes());
                }
            }
        }
    }
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// Checks that need only the list of known franchises and the span of the data, the same for
/// every store.
pub(super) fn check_schedule(
    knows: impl Fn(TeamCode) -> bool,
    retired: impl Fn(TeamCode) -> Option<(i32, i32)>,
    span: DataSpan,
    home: TeamCode,
    away: TeamCode,
    date: NaiveDate,
) -> Result<(), ScheduleError> {
    if home.franchise() == away.franchise() {
        return Err(ScheduleError::SameTeam(home));
    }
    for team in [home, away] {
        if !knows(team) {
            return Err(ScheduleError::UnknownTeam(team));
        }
        if let Some((first, last)) = retired(team)
            && !(first..=last).contains(&date.year())
        {
            return Err(ScheduleError::RetiredCode {
                team,
                first,
                last,
                successor: team.franchise(),
            });
        }
    }
    if let Some(first) = span.first
        && date <= first
    {
        return Err(ScheduleError::BeforeData { date, first });
    }
    // A horizon past chrono's last date is no limit.
    if let Some(last) = span.last
        && let Some(horizon) = last.checked_add_days(chrono::Days::new(span.horizon_days.into()))
        && date > horizon
    {
        return Err(ScheduleError::AfterHorizon {
            date,
            last,
            days: span.horizon_days,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::games::{Phase, PitcherLine, Start, TeamLine};

    const TEAMS: [&str; 4] = ["BOS", "NYA", "TBA", "TOR"];
    const PITCHERS: [&str; 6] = [
        "aaaaa001", "bbbbb001", "ccccc001", "ddddd001", "eeeee001", "fffff001",
    ];

    fn date(offset: u32) -> NaiveDate {
        // Across a season boundary, so seasons roll.
        NaiveDate::from_ymd_opt(2022, 9, 20).expect("a date") + chrono::Days::new(offset.into())
    }

    fn start() -> impl Strategy<Value = Option<Start>> {
        let line = (
            0u16..28,
            0u16..12,
            0u16..5,
            0u16..6,
            0u16..13,
            0u16..3,
            0u16..9,
        )
            .prop_map(
                |(outs, hits, home_runs, walks, strikeouts, hit_by_pitch, earned_runs)| {
                    PitcherLine {
                        outs,
                        batters_faced: outs + hits + walks + hit_by_pitch,
                        hits,
                        home_runs: home_runs.min(hits),
                        walks,
                        strikeouts: strikeouts.min(outs),
                        hit_by_pitch,
                        runs: earned_runs,
                        earned_runs,
                        pitches: Some(outs * 5),
                    }
                },
            );
        proptest::option::weighted(
            0.9,
            (0..PITCHERS.len(), proptest::option::weighted(0.8, line)).prop_map(|(p, line)| {
                Start {
                    pitcher: PITCHERS[p].parse().expect("a pitcher id"),
                    line,
                }
            }),
        )
    }

    fn team_line(team: &str, runs: u16, starter: Option<Start>) -> TeamLine {
        TeamLine {
            team: team.parse().expect("a team"),
            runs,
            hits: runs + 3,
            walks: 2,
            home_runs: 1,
            strikeouts: 7,
            pitches: Some(140),
            batters_faced: 38,
            starter,
        }
    }

    /// A game on one of 160 days between two of the teams (game 0: two games with one id are
    /// kept once, by `sorted`).
    fn game() -> impl Strategy<Value = Game> {
        (
            0u32..160,
            0..TEAMS.len(),
            1..TEAMS.len(),
            0u16..10,
            0u16..10,
            start(),
            start(),
        )
            .prop_map(
                |(offset, home, shift, home_runs, away_runs, home_sp, away_sp)| {
                    let home_team = TEAMS[home];
                    let away_team = TEAMS[(home + shift) % TEAMS.len()];
                    let day = date(offset);
                    Game {
                        id: GameId::new(home_team.parse().expect("a team"), day, 0),
                        date: day,
                        number: 0,
                        phase: Phase::Regular,
                        home: team_line(home_team, home_runs, home_sp),
                        away: team_line(
                            away_team,
                            away_runs + u16::from(home_runs == away_runs),
                            away_sp,
                        ),
                    }
                },
            )
    }

    fn sorted(mut games: Vec<Game>) -> Vec<Game> {
        games.sort_by_key(|game| (game.date, game.number, game.id));
        games.dedup_by_key(|game| game.id);
        games
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Point in time: a game added on or after a game's day (with its starters' lines)
        /// changes nothing of that game's features, team or starter, whether the store is
        /// built again or moved by the result.
        #[test]
        fn a_later_game_never_changes_an_earlier_games_features(
            games in proptest::collection::vec(game(), 1..60),
            later in game(),
        ) {
            let games = sorted(games);
            prop_assume!(games.iter().all(|game| game.id != later.id));
            let before = EmbeddedStore::from_games(games.clone(), |_| {});
            let mut with_later = games.clone();
            with_later.push(later.clone());
            let rebuilt = EmbeddedStore::from_games(sorted(with_later), |_| {});
            let moved = before.with_results(std::slice::from_ref(&later));
            for (i, game) in before.games().iter().enumerate() {
                if game.date > later.date {
                    continue;
                }
                for after in [&rebuilt, &moved] {
                    let at = after.index[&game.id];
                    prop_assert_eq!(before.vectors()[i], after.vectors()[at]);
                }
            }
        }
    }
}
