use bullpen::features::{EmbeddedStore, FeatureVector, ScheduleError};
use bullpen::games::{Game, GameId, Starters, TeamCode};
use chrono::NaiveDate;

use crate::helpers::{pitchers, store};

fn date(text: &str) -> NaiveDate {
    text.parse().expect("valid date")
}

fn team(code: &str) -> TeamCode {
    code.parse().expect("valid team")
}

fn features_of(store: &EmbeddedStore, id: &str) -> FeatureVector {
    let id: GameId = id.parse().expect("valid id");
    *store.game(id).expect("game is stored").1
}

fn assert_close(vector: &FeatureVector, name: &str, expected: f64) {
    let actual = f64::from(vector.get(name).expect("feature exists"));
    assert!(
        (actual - expected).abs() < 1e-4,
        "{name}: expected {expected}, got {actual}"
    );
}

/// Kansas City (home) v Houston, 2024-04-10. Counted by hand from `teams-2024.csv` and
/// `teams-2023.csv`: KC was 7-4 (6-2 at home, 48 runs scored, 28 allowed, 7 wins in its last 10,
/// played 04-09, six games in 04-03..04-09, 150 + 164 pitches on 04-07 and 04-09, 56-106 in
/// 2023); Houston was 4-8 (2-3 on the road, 4 wins in its last 10, six games in the last
/// week, 129 + 137 + 158 pitches on 04-07..04-09, 90-72 in 2023).
#[test]
fn hand_computed_values_for_a_real_game() {
    let v = features_of(store(), "KCA202404100");
    assert_close(&v, "home_games_played", 11.0);
    assert_close(&v, "away_games_played", 12.0);
    assert_close(&v, "home_win_pct", (7.0 + 12.5) / (11.0 + 25.0));
    assert_close(&v, "away_win_pct", (4.0 + 12.5) / (12.0 + 25.0));
    let home_pct = (7.0 + 12.5) / 36.0;
    let away_pct = (4.0 + 12.5) / 37.0;
    assert_close(
        &v,
        "home_home_win_pct",
        (6.0 + 20.0 * home_pct) / (8.0 + 20.0),
    );
    assert_close(
        &v,
        "away_road_win_pct",
        (2.0 + 20.0 * away_pct) / (5.0 + 20.0),
    );
    assert_close(&v, "home_last10_win_pct", 0.7);
    assert_close(&v, "away_last10_win_pct", 0.4);
    assert_close(&v, "home_rest_days", 1.0);
    assert_close(&v, "away_rest_days", 1.0);
    assert_close(&v, "home_games_last7", 6.0);
    assert_close(&v, "away_games_last7", 6.0);
    assert_close(&v, "home_pitches_last3", 314.0);
    assert_close(&v, "away_pitches_last3", 424.0);
    assert_close(&v, "home_prev_win_pct", 56.0 / 162.0);
    assert_close(&v, "away_prev_win_pct", 90.0 / 162.0);

    // Runs per game shrink 48 scored and 28 allowed in 11 games by the same 20 games of
    // league scoring, so both imply the same league figure.
    let scored = f64::from(v.get("home_runs_scored_pg").expect("feature"));
    let allowed = f64::from(v.get("home_runs_allowed_pg").expect("feature"));
    assert!(((scored * 31.0 - 48.0) - (allowed * 31.0 - 28.0)).abs() < 1e-3);
    let (home_elo, away_elo) = (
        f64::from(v.get("home_elo").expect("feature")),
        f64::from(v.get("away_elo").expect("feature")),
    );
    assert_close(&v, "elo_diff", home_elo - away_elo);
    assert_close(
        &v,
        "elo_home_win_prob",
        1.0 / (1.0 + 10f64.powf(-(home_elo - away_elo + 24.0) / 400.0)),
    );
}

/// The features of every game up to `cutoff` in a store built from `games`.
fn vectors_until(games: Vec<Game>, cutoff: NaiveDate) -> Vec<(GameId, FeatureVector)> {
    let store = EmbeddedStore::from_games(games, |_| {});
    store
        .games()
        .iter()
        .zip(store.vectors())
        .filter(|(game, _)| game.date <= cutoff)
        .map(|(game, vector)| (game.id, *vector))
        .collect()
}

#[test]
fn no_feature_changes_when_later_games_are_added_or_removed() {
    let all = store().games().to_vec();
    let cutoff = date("2024-06-15");
    let full = vectors_until(all.clone(), cutoff);
    assert!(full.len() > 30_000);

    let truncated: Vec<Game> = all.iter().filter(|g| g.date <= cutoff).cloned().collect();
    assert_eq!(
        vectors_until(truncated, cutoff),
        full,
        "removing every later game"
    );

    let thinned: Vec<Game> = all
        .iter()
        .enumerate()
        .filter(|(i, g)| g.date <= cutoff || i % 3 == 0)
        .map(|(_, g)| g.clone())
        .collect();
    assert_eq!(
        vectors_until(thinned, cutoff),
        full,
        "removing some later games"
    );
}

#[test]
fn a_games_own_result_never_reaches_its_features() {
    let mut games = store().games().to_vec();
    let target: GameId = "KCA202404100".parse().expect("valid id");
    let position = games.iter().position(|g| g.id == target).expect("stored");
    let before = EmbeddedStore::from_games(games.clone(), |_| {});

    // Flip the result: Houston now wins 13-2.
    let game = &mut games[position];
    std::mem::swap(&mut game.home.runs, &mut game.away.runs);
    let after = EmbeddedStore::from_games(games, |_| {});

    assert_eq!(
        before.game(target).map(|g| *g.1),
        after.game(target).map(|g| *g.1)
    );
    let next: GameId = "KCA202404110".parse().expect("valid id");
    assert_ne!(
        before.game(next).map(|g| *g.1),
        after.game(next).map(|g| *g.1),
        "the next day's game does see the changed result"
    );
}

#[test]
fn scheduled_games_get_the_same_vector_as_stored_ones() {
    let store = store();
    let sample = store
        .games()
        .iter()
        .filter(|g| {
            g.season() >= 2023 && g.home.team.as_str() != "ALS" && g.home.team.as_str() != "NLS"
        })
        .step_by(97);
    let mut checked = 0;
    for game in sample {
        let (_, stored) = store.game(game.id).expect("stored");
        let scheduled = store
            .scheduled_features(
                game.home.team,
                game.away.team,
                game.date,
                Starters::of(game),
            )
            .expect("teams and starters are known");
        assert_eq!(&scheduled, stored, "game {}", game.id);
        checked += 1;
    }
    assert!(checked > 40);
}

#[test]
fn scheduled_games_after_the_data_carry_history_into_the_new_season() {
    let store = store();
    let v = store
        .scheduled_features(
            team("NYA"),
            team("BOS"),
            date("2025-03-27"),
            Starters::default(),
        )
        .expect("both teams are known");
    assert_close(&v, "home_games_played", 0.0);
    assert_close(&v, "home_win_pct", 0.5);
    assert_close(&v, "home_prev_win_pct", 94.0 / 162.0);
    assert_close(&v, "away_prev_win_pct", 81.0 / 162.0);
    assert_close(&v, "home_rest_days", 10.0);
    let elo = f64::from(v.get("home_elo").expect("feature"));
    assert!(elo > 1500.0 && elo < 1560.0, "regressed toward 1500: {elo}");

    // Marlins history continues from FLO to MIA, but the club plays as MIA: FLO names it
    // only in the seasons it was used.
    assert!(
        store
            .scheduled_features(
                team("MIA"),
                team("BOS"),
                date("2025-03-27"),
                Starters::default()
            )
            .is_ok()
    );
    let refused = store
        .scheduled_features(
            team("FLO"),
            team("BOS"),
            date("2025-03-27"),
            Starters::default(),
        )
        .expect_err("a retired code");
    assert!(refused.to_string().contains("MIA"), "{refused}");
}

#[test]
fn scheduled_games_that_cannot_be_computed_say_why() {
    let store = store();
    assert_eq!(
        store.scheduled_features(
            team("XXX"),
            team("BOS"),
            date("2025-04-01"),
            Starters::default()
        ),
        Err(ScheduleError::UnknownTeam(team("XXX")))
    );
    assert_eq!(
        store.scheduled_features(
            team("BOS"),
            team("BOS"),
            date("2025-04-01"),
            Starters::default()
        ),
        Err(ScheduleError::SameTeam(team("BOS")))
    );
    assert!(matches!(
        store.scheduled_features(
            team("NYA"),
            team("BOS"),
            date("2001-04-01"),
            Starters::default()
        ),
        Err(ScheduleError::BeforeData { .. })
    ));
    let nobody = Starters {
        home: Some("glast001".parse().expect("pitcher")),
        away: Some("zzzzz999".parse().expect("a well-formed id")),
    };
    assert_eq!(
        store.scheduled_features(team("LAN"), team("SDN"), date("2025-04-01"), nobody),
        Err(ScheduleError::UnknownPitcher(
            "zzzzz999".parse().expect("id")
        ))
    );
}

/// Everything a store holds that features and cache keys are read from.
fn assert_same_store(a: &EmbeddedStore, b: &EmbeddedStore) {
    assert_eq!(a.games(), b.games());
    assert_eq!(a.vectors(), b.vectors());
    assert_eq!(a.first_difference(b), None);
    for game in a.games().iter().step_by(97) {
        assert_eq!(a.history_before(game.date), b.history_before(game.date));
        let (home, away) = (game.home.team, game.away.team);
        let starters = Starters::of(game);
        assert_eq!(
            a.scheduled_features(home, away, game.date, starters),
            b.scheduled_features(home, away, game.date, starters)
        );
    }
}

/// Results added to a store in sets (new days, then a correction deep in the past) give the
/// store built from every game at once: a build resumed from a checkpoint is exact.
#[test]
fn results_added_in_sets_give_the_store_built_with_them() {
    let games = store().games().to_vec();
    let cut = games.partition_point(|g| g.date < date("2024-06-01"));
    let mut grown =
        EmbeddedStore::from_games_and_pitchers(games[..cut].to_vec(), pitchers(), |_| {});
    for set in games[cut..].chunks(400) {
        let before = grown.history_before(set[0].date);
        grown = grown.with_results(set);
        assert_eq!(
            grown.history_before(set[0].date),
            before,
            "a day's history is before it"
        );
    }
    assert_same_store(&grown, store());

    let mut corrected = games.clone();
    let old = corrected
        .iter()
        .position(|g| g.id.as_str() == "BOS201708150")
        .expect("stored");
    corrected[old].away.runs += 3;
    let changed = grown.with_results(&corrected[old..=old]);
    assert_eq!(changed.first_difference(&grown), Some(date("2017-08-15")));
    assert_eq!(
        changed.history_before(date("2017-08-15")),
        grown.history_before(date("2017-08-15"))
    );
    assert_ne!(
        changed.history_before(date("2017-08-16")),
        grown.history_before(date("2017-08-16"))
    );
    assert_same_store(
        &changed,
        &EmbeddedStore::from_games_and_pitchers(corrected, pitchers(), |_| {}),
    );
}

/// Every shipped game, starters and lines included, reads back through the results body a
/// feed would post: the checks refuse nothing real.
#[test]
fn every_shipped_result_passes_the_results_checks_with_its_starters() {
    for game in store().games() {
        let body = bullpen::features::ResultBody::of(game);
        let again = body
            .to_game("shipped")
            .unwrap_or_else(|error| panic!("{}: {error}", game.id));
        assert_eq!(&again, game);
    }
}
