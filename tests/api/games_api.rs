use bullpen::features::{FEATURE_SPEC, FEATURE_SPEC_V2};
use serde_json::json;

use crate::helpers::{spawn_app, store};

#[tokio::test]
async fn features_of_a_stored_game_are_the_vector_the_model_sees() {
    let app = spawn_app().await;
    let reply = app.get("/api/v1/games/KCA202404100/features").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (_, vector) = store()
        .game("KCA202404100".parse().expect("id"))
        .expect("stored");
    let mut body = reply.body;
    let features = body
        .as_object_mut()
        .and_then(|o| o.remove("features"))
        .expect("features");
    assert_eq!(
        body,
        json!({
            "game": { "game_id": "KCA202404100", "home": "KCA", "away": "HOU", "date": "2024-04-10",
                      "starters": { "home": "lugos001", "away": "arris001" } },
            "feature_version": "v1",
            "cached": false,
        })
    );
    // Every feature, by name, exactly as the f32 the model is given.
    let features = features.as_object().expect("a map");
    assert_eq!(features.len(), FEATURE_SPEC.names.len());
    for (name, value) in FEATURE_SPEC.names.iter().zip(vector.values()) {
        let served = features[*name].as_f64().expect("number") as f32;
        assert_eq!(served.to_bits(), value.to_bits(), "{name}");
    }
    // `v2`: the same, and the starters'.
    let reply = app
        .get("/api/v1/games/KCA202404100/features?version=v2")
        .await;
    assert_eq!(reply.body["feature_version"], "v2");
    let features = reply.body["features"].as_object().expect("a map");
    assert_eq!(features.len(), FEATURE_SPEC_V2.names.len());
    for (name, value) in FEATURE_SPEC_V2.names.iter().zip(vector.values()) {
        let served = features[*name].as_f64().expect("number") as f32;
        assert_eq!(served.to_bits(), value.to_bits(), "{name}");
    }
    let unknown = app
        .get("/api/v1/games/KCA202404100/features?version=v9")
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.body["code"], "invalid_query");
}

/// A team's pitchers of a season, by the ids a request names starters with; bad and unknown
/// teams refused.
#[tokio::test]
async fn pitchers_lists_a_teams_staff_with_the_ids_requests_use() {
    let app = spawn_app().await;
    let reply = app.get("/api/v1/pitchers?team=KCA&season=2024").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["team"], "KCA");
    let pitchers = reply.body["pitchers"].as_array().expect("pitchers");
    let lugo = pitchers
        .iter()
        .find(|p| p["id"] == "lugos001")
        .expect("Seth Lugo pitched for Kansas City in 2024");
    assert_eq!(lugo["name"], "Seth Lugo");
    assert_eq!(lugo["starts"], 33);
    assert!(pitchers[0]["starts"].as_u64() >= pitchers[pitchers.len() - 1]["starts"].as_u64());
    // The Marlins' staff under either code.
    let flo = app.get("/api/v1/pitchers?team=FLO&season=2010").await;
    let mia = app.get("/api/v1/pitchers?team=MIA&season=2010").await;
    assert_eq!(flo.body["pitchers"], mia.body["pitchers"]);
    assert!(
        !flo.body["pitchers"]
            .as_array()
            .expect("pitchers")
            .is_empty()
    );
    for (query, status, code) in [
        ("team=K", 400, "invalid_team"),
        ("team=XXX", 404, "unknown_team"),
        ("season=2024", 400, "invalid_query"),
        ("team=KCA&season=soon", 400, "invalid_query"),
    ] {
        let reply = app.get(&format!("/api/v1/pitchers?{query}")).await;
        assert_eq!(reply.status, status, "{query}: {}", reply.body);
        assert_eq!(reply.body["code"], code, "{query}");
    }
}

#[tokio::test]
async fn features_of_a_bad_or_unknown_game_id_are_refused() {
    let app = spawn_app().await;
    let bad = app.get("/api/v1/games/KC/features").await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.problem(),
        json!({ "type": "urn:bullpen:error:invalid_game_id", "title": "Not a game id", "status": 400,
                "detail": "`KC` is not a game id (home team, YYYYMMDD and game number, e.g. NYA202404050)",
                "code": "invalid_game_id" })
    );
    let unknown = app.get("/api/v1/games/KCA202401010/features").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.problem(),
        json!({ "type": "urn:bullpen:error:game_not_found", "title": "No such game", "status": 404,
                "detail": "no game `KCA202401010` in the data", "code": "game_not_found" })
    );
}
