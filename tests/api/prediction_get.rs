//! The prediction as a resource: `GET /api/v1/games/{id}/prediction` and
//! `GET /api/v1/predictions?home=&away=&date=`, the POST's answer with an `ETag`, 304 on
//! `If-None-Match`, and `Cache-Control: max-age` from the cache entry's time left.

use serde_json::json;

use crate::helpers::{Reply, TestApp, spawn_app, spawn_app_with};
use crate::season::{data_through_2023, result, season_2024};

async fn get_with(app: &TestApp, path: &str, etag: &str) -> Reply {
    app.send(
        app.request(reqwest::Method::GET, path)
            .header("if-none-match", etag),
    )
    .await
}

/// `private, max-age=N` with N within the predictions' TTL.
fn max_age(reply: &Reply, ttl: u64) -> u64 {
    let header = reply.header("cache-control").expect("Cache-Control");
    let age = header
        .strip_prefix("private, max-age=")
        .and_then(|age| age.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{header}"));
    assert!(age <= ttl && age + 5 >= ttl, "{header}");
    age
}

#[tokio::test]
async fn a_stored_game_by_get_answers_as_the_post_with_an_etag_and_304_when_unchanged() {
    let app = spawn_app().await;
    let ttl = bullpen::settings::Settings::load(&crate::helpers::repo_path("config"))
        .expect("settings")
        .cache
        .predictions_ttl_secs;
    let path = "/api/v1/games/BAL202403280/prediction";
    let posted = app.predict(&json!({ "game_id": "BAL202403280" })).await;
    // Twice: the answer made, then the answer kept by the worker; both alike.
    for _ in 0..2 {
        let got = app.get(path).await;
        assert_eq!(got.status, 200, "{}", got.body);
        assert_eq!(
            got.body["home_win_probability"],
            posted.body["home_win_probability"]
        );
        assert_eq!(got.body["game"], posted.body["game"]);
        assert_eq!(got.header("bullpen-model"), Some("home_win@1"));
        let etag = got.header("etag").expect("an ETag");
        assert!(etag.starts_with("W/\"home_win@1-"), "{etag}");
        max_age(&got, ttl);

        let unchanged = get_with(&app, path, etag).await;
        assert_eq!(unchanged.status, 304);
        assert_eq!(unchanged.header("etag"), Some(etag));
        max_age(&unchanged, ttl);
        // Another tag, or another version's answer: the whole answer.
        let other = get_with(&app, path, "W/\"home_win@1-0-0\"").await;
        assert_eq!(other.status, 200);
        let pinned = get_with(&app, &format!("{path}?model=home_win@2"), etag).await;
        assert_eq!(pinned.status, 200, "{}", pinned.body);
        assert_eq!(pinned.header("bullpen-model"), Some("home_win@2"));
        assert_ne!(pinned.header("etag"), Some(etag));
    }

    // Odds in the query: the POST's market.
    let with_odds = app
        .get(&format!("{path}?home_odds=-135&away_odds=115"))
        .await;
    let posted_odds = app
        .predict(&json!({ "game_id": "BAL202403280", "odds": {"home": -135, "away": 115} }))
        .await;
    assert_eq!(with_odds.status, 200, "{}", with_odds.body);
    assert_eq!(with_odds.body["market"], posted_odds.body["market"]);
}

#[tokio::test]
async fn a_scheduled_game_by_get_answers_as_the_post_and_bad_queries_are_400() {
    let app = spawn_app().await;
    let got = app
        .get("/api/v1/predictions?home=NYA&away=BOS&date=2025-04-05")
        .await;
    assert_eq!(got.status, 200, "{}", got.body);
    let posted = app
        .predict(&json!({ "game": {"home": "NYA", "away": "BOS", "date": "2025-04-05"} }))
        .await;
    assert_eq!(
        got.body["home_win_probability"],
        posted.body["home_win_probability"]
    );
    assert!(got.header("etag").is_some());

    for (path, code) in [
        (
            "/api/v1/predictions?home=NYA&date=2025-04-05",
            "invalid_query",
        ),
        (
            "/api/v1/predictions?home=NYA&away=BOS&date=2025-04-05&home_odds=-135",
            "invalid_query",
        ),
        (
            "/api/v1/predictions?home=NYA&away=BOS&date=2025-04-05&odds=1",
            "invalid_query",
        ),
        (
            "/api/v1/predictions?home=NYA&away=BOS&date=2025-13-05",
            "invalid_date",
        ),
        ("/api/v1/games/NYA2024/prediction", "invalid_game_id"),
        (
            "/api/v1/games/BAL202403280/prediction?model=x@",
            "invalid_model",
        ),
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.body);
        assert_eq!(reply.problem()["code"], code, "{path}");
    }
    let missing = app.get("/api/v1/games/BAL202403281/prediction").await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    app.assert_still_serves().await;
}

#[tokio::test]
async fn a_result_posted_since_changes_the_tag_of_the_games_after_it() {
    let data = data_through_2023();
    let data_dir = data.path().to_path_buf();
    let app = spawn_app_with(|settings| settings.data.dir = data_dir).await;
    let season = season_2024();
    let first = &season[0];
    // The same teams' next game, asked before the first one's result is in.
    let next = season
        .iter()
        .find(|game| game.date > first.date && game.home.team == first.home.team)
        .expect("a later home game");
    let path = format!(
        "/api/v1/predictions?home={}&away={}&date={}&number={}",
        next.home.team, next.away.team, next.date, next.number
    );
    let before = app.get(&path).await;
    assert_eq!(before.status, 200, "{}", before.body);
    let etag = before.header("etag").expect("an ETag").to_owned();
    assert_eq!(get_with(&app, &path, &etag).await.status, 304);

    let posted = app
        .post_json(
            "/api/v1/admin/results",
            &json!({ "results": [result(first)] }),
        )
        .await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    let after = get_with(&app, &path, &etag).await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_ne!(after.header("etag"), Some(etag.as_str()));
    assert_ne!(
        after.body["home_win_probability"],
        before.body["home_win_probability"]
    );
}
