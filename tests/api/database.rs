//! PostgreSQL: migrations, the import, and the PostgreSQL feature store, each test in a
//! database of its own on the real server.

use std::io::{Read, Write};

use bullpen::db::{self, Pool};
use bullpen::features::{FeatureStore, PostgresStore};
use bullpen::games::Starters;
use tokio_postgres::NoTls;

use crate::helpers::{TestApp, pitchers, repo_path, store, test_settings};

const ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

/// A new, empty database; dropped by [`TestDatabase::drop_now`].
pub struct TestDatabase {
    pub name: String,
    pub pool: Pool,
}

impl TestDatabase {
    pub async fn new() -> Self {
        let name = format!("bullpen_test_{}", uuid::Uuid::new_v4().simple());
        admin(&format!("CREATE DATABASE {name}")).await;
        let mut settings = test_settings();
        settings.database.url = format!("postgres://postgres@127.0.0.1:5432/{name}").into();
        let pool = db::pool(&settings.database).expect("pool");
        Self { name, pool }
    }

    /// A new database holding every shipped season, imported.
    pub async fn imported() -> Self {
        let database = Self::new().await;
        db::migrate(&database.pool).await.expect("migrate");
        bullpen::features::import_dir(
            &database.pool,
            &repo_path("data/retrosheet"),
            &pitchers(),
            |_| {},
        )
        .await
        .expect("import every season");
        database
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    pub async fn count(&self, table: &str) -> i64 {
        let client = self.pool.get().await.expect("connection");
        client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count")
            .get(0)
    }

    /// Writes a copy of the stored game `from` (its row and features) as game `number` of
    /// the same day, `home_runs` set when given: a game a replica's view of the games does
    /// not hold until its next refresh.
    pub async fn copy_game(&self, from: &str, number: u8, home_runs: Option<i16>) -> String {
        let id = format!("{}{number}", &from[..from.len() - 1]);
        let runs = home_runs.map_or_else(String::new, |runs| format!(", home_runs = {runs}"));
        self.pool
            .get()
            .await
            .expect("connection")
            .batch_execute(&format!(
                "CREATE TEMP TABLE copied AS SELECT * FROM games WHERE game_id = '{from}'; \
                 UPDATE copied SET game_id = '{id}', number = {number}{runs}; \
                 INSERT INTO games SELECT * FROM copied; \
                 INSERT INTO game_features (game_id, feature_version, features) \
                 SELECT '{id}', feature_version, features FROM game_features \
                 WHERE game_id = '{from}'"
            ))
            .await
            .expect("a copied game");
        id
    }

    /// A copy of the stored game `from`, written once `app`'s view of the games is built
    /// (a scheduled game needs it): with `features.refresh_ms` long, a game only the table
    /// holds, which a request reads from PostgreSQL.
    pub async fn game_only_the_table_holds(&self, app: &TestApp, from: &str) -> String {
        let scheduled =
            serde_json::json!({ "game": { "home": "NYA", "away": "BOS", "date": "2025-04-05" } });
        assert_eq!(app.predict(&scheduled).await.status, 200);
        self.copy_game(from, 1, None).await
    }

    pub async fn drop_now(self) {
        drop(self.pool);
        admin(&format!("DROP DATABASE {} WITH (FORCE)", self.name)).await;
    }
}

async fn admin(statement: &str) {
    let (client, connection) = tokio_postgres::connect(ADMIN, NoTls)
        .await
        .expect("PostgreSQL is running on 127.0.0.1:5432 (see .ci/run)");
    tokio::spawn(connection);
    client.batch_execute(statement).await.expect(statement);
}

/// A folder holding copies of some shipped season files.
fn seasons_dir(seasons: &[i32]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for season in seasons {
        let name = format!("teams-{season}.csv.gz");
        std::fs::copy(
            repo_path("data/retrosheet").join(&name),
            dir.path().join(&name),
        )
        .expect("copy season");
    }
    dir
}

#[tokio::test]
async fn imported_games_read_back_with_their_starters_and_lines() {
    let database = TestDatabase::imported().await;
    let client = database.pool.get().await.expect("connection");
    let stored = db::load_games(&*client, None).await.expect("games load");
    let shipped = store().games();
    assert_eq!(stored.len(), shipped.len());
    assert_eq!(stored, shipped, "every game, its lines and its starters");
    let with_lines = stored
        .iter()
        .filter(|game| game.home.starter.is_some_and(|start| start.line.is_some()))
        .count();
    // 2010–2023 and the 2024 postseason have lines; the 2024 regular season names starters only.
    assert!(with_lines > 30_000, "{with_lines}");
    let named_only = stored
        .iter()
        .filter(|game| game.away.starter.is_some_and(|start| start.line.is_none()))
        .count();
    assert!(named_only > 2_000, "{named_only}");
    drop(client);
    database.drop_now().await;
}

#[tokio::test]
async fn migrations_apply_from_empty_and_a_rerun_applies_nothing() {
    let database = TestDatabase::new().await;
    assert_eq!(
        db::migrate(&database.pool).await.expect("migrate"),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(
        db::migrate(&database.pool).await.expect("rerun"),
        Vec::<u32>::new()
    );
    for table in [
        "games",
        "game_features",
        "prediction_log",
        "api_keys",
        "model_outcomes",
    ] {
        assert_eq!(
            database.count(table).await,
            0,
            "{table} exists and is empty"
        );
    }
    database.drop_now().await;
}

mod v1_only {
    refinery::embed_migrations!("migrations");
}

/// A database at V1 holding data V2 cannot take (two active keys named alike, which V1
/// allowed): `migrate` refuses before changing anything and names the keys; once the
/// operator revokes one, the upgrade runs and keeps every row.
#[tokio::test]
async fn upgrading_a_v1_database_with_data_refuses_what_v2_cannot_take_then_upgrades() {
    let database = TestDatabase::new().await;
    {
        let mut client = database.pool.get().await.expect("connection");
        v1_only::migrations::runner()
            .set_target(refinery::Target::Version(1))
            .run_async(&mut *client)
            .await
            .expect("V1");
        client
            .batch_execute(
                "INSERT INTO api_keys (name, key_hash, scopes) VALUES \
                 ('desk', decode(repeat('01', 32), 'hex'), '{predict}'), \
                 ('desk', decode(repeat('02', 32), 'hex'), '{predict}'), \
                 ('other', decode(repeat('03', 32), 'hex'), '{admin}')",
            )
            .await
            .expect("V1 data");
    }
    let refused = db::migrate(&database.pool).await.expect_err("duplicates");
    let message = refused.to_string();
    assert!(
        message.contains("nothing was changed") && message.contains("`desk` (ids 1, 2)"),
        "{message}"
    );
    assert!(!message.contains("other"), "{message}");
    let client = database.pool.get().await.expect("connection");
    let burst_column: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns \
             WHERE table_name = 'api_keys' AND column_name = 'burst'",
            &[],
        )
        .await
        .expect("columns")
        .get(0);
    assert_eq!(burst_column, 0, "still at V1");

    client
        .batch_execute("UPDATE api_keys SET revoked_at = now() WHERE id = 1")
        .await
        .expect("revoke");
    assert_eq!(
        db::migrate(&database.pool).await.expect("upgrade"),
        vec![2, 3, 4, 5, 6]
    );
    assert_eq!(database.count("api_keys").await, 3, "every row kept");
    drop(client);
    database.drop_now().await;
}

#[tokio::test]
async fn importing_two_seasons_twice_gives_the_same_rows() {
    let database = TestDatabase::new().await;
    db::migrate(&database.pool).await.expect("migrate");
    let dir = seasons_dir(&[2023, 2024]);
    let expected = bullpen::games::load_dir(dir.path()).expect("parse").len();

    let first = bullpen::features::import_dir(
        &database.pool,
        dir.path(),
        &std::sync::Arc::default(),
        |_| {},
    )
    .await
    .expect("import");
    assert_eq!(
        (first.files, first.games, first.features),
        (2, expected, expected)
    );
    let counts = (
        database.count("games").await,
        database.count("game_features").await,
    );
    assert_eq!(counts, (expected as i64, expected as i64));

    let second = bullpen::features::import_dir(
        &database.pool,
        dir.path(),
        &std::sync::Arc::default(),
        |_| {},
    )
    .await
    .expect("import again");
    assert_eq!(second, first);
    assert_eq!(
        (
            database.count("games").await,
            database.count("game_features").await
        ),
        counts
    );
    database.drop_now().await;
}

#[tokio::test]
async fn a_malformed_file_names_its_line_and_leaves_nothing_of_itself() {
    let database = TestDatabase::new().await;
    db::migrate(&database.pool).await.expect("migrate");
    let dir = seasons_dir(&[2023]);
    // 2024, uncompressed, with one runs value that is not a number on line 1000.
    let mut text = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(repo_path("data/retrosheet/teams-2024.csv.gz")).expect("open"),
    )
    .read_to_string(&mut text)
    .expect("decompress");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let runs_column = lines[0]
        .split(',')
        .position(|c| c == "B_R")
        .expect("B_R column");
    let mut fields: Vec<&str> = lines[999].split(',').collect();
    fields[runs_column] = "x";
    lines[999] = fields.join(",");
    let bad = dir.path().join("teams-2024.csv");
    std::fs::File::create(&bad)
        .and_then(|mut f| f.write_all(lines.join("\n").as_bytes()))
        .expect("write");

    let error = bullpen::features::import_dir(
        &database.pool,
        dir.path(),
        &std::sync::Arc::default(),
        |_| {},
    )
    .await
    .expect_err("line 1000 is malformed");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("{}:1000: bad value", bad.display())),
        "{message}"
    );
    let games_2023 = bullpen::games::parse_season(&dir.path().join("teams-2023.csv.gz"))
        .expect("2023 parses")
        .len();
    assert_eq!(
        database.count("games").await,
        games_2023 as i64,
        "2023 stays, no 2024 row"
    );
    let client = database.pool.get().await.expect("connection");
    let from_2024: i64 = client
        .query_one(
            "SELECT count(*) FROM games WHERE source_file = 'teams-2024.csv'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(from_2024, 0);
    drop(client);
    database.drop_now().await;
}

#[tokio::test]
async fn both_stores_give_identical_vectors_for_every_2024_game() {
    let database = TestDatabase::imported().await;
    let postgres = PostgresStore::new(database.pool.clone(), database.pool.clone(), pitchers());
    let embedded = store();

    let mut compared = 0;
    for (game, vector) in embedded.games().iter().zip(embedded.vectors()) {
        if game.season() != 2024 {
            continue;
        }
        let found = FeatureStore::game(&postgres, game.id)
            .await
            .expect("read")
            .expect("imported");
        assert_eq!(found.vector, *vector, "{}", game.id);
        assert_eq!(found.game.home, game.home.team);
        compared += 1;
    }
    assert!(compared > 2_400, "{compared}");

    for date in ["2024-04-10", "2024-07-03", "2025-04-01"] {
        let date = date.parse().expect("date");
        let (home, away) = ("KCA".parse().expect("team"), "HOU".parse().expect("team"));
        let starters = Starters {
            home: Some("lugos001".parse().expect("pitcher")),
            away: Some("valdf001".parse().expect("pitcher")),
        };
        for starters in [starters, Starters::default()] {
            assert_eq!(
                FeatureStore::scheduled(&postgres, home, away, date, starters)
                    .await
                    .expect("PostgreSQL computes it"),
                FeatureStore::scheduled(embedded, home, away, date, starters)
                    .await
                    .expect("the embedded store computes it"),
                "{date}"
            );
        }
    }
    let unknown = FeatureStore::game(&postgres, "KCA202401010".parse().expect("id")).await;
    assert!(matches!(unknown, Ok(None)), "{unknown:?}");
    database.drop_now().await;
}

/// Scheduled games come from the games held in memory: once built, a cold one (and a refusal
/// of an unknown team or a date outside the data) reads no game row, which a renamed
/// `games` table proves; a change to the games moves `games_revision`, and is in the next
/// answer once the view is refreshed (as every replica does every `features.refresh_ms`),
/// which names the changed game's date.
#[tokio::test]
async fn scheduled_games_replay_in_memory_and_follow_every_change_to_the_games() {
    let database = TestDatabase::imported().await;
    let postgres = PostgresStore::new(database.pool.clone(), database.pool.clone(), pitchers());
    let team = |code: &str| code.parse::<bullpen::games::TeamCode>().expect("team");
    let date = |text: &str| text.parse::<chrono::NaiveDate>().expect("date");
    let kansas_city_opener = || {
        let (home, away, day) = (team("KCA"), team("HOU"), date("2025-04-01"));
        FeatureStore::scheduled(&postgres, home, away, day, Starters::default())
    };
    let after = kansas_city_opener().await.expect("computed");

    let client = database.pool.get().await.expect("connection");
    client
        .batch_execute("ALTER TABLE games RENAME TO games_elsewhere")
        .await
        .expect("rename");
    for (home, away, day) in [
        ("NYA", "BOS", "2024-05-17"),
        ("SDN", "LAN", "2019-08-02"),
        ("KCA", "HOU", "2025-04-01"),
    ] {
        let vector = FeatureStore::scheduled(
            &postgres,
            team(home),
            team(away),
            date(day),
            Starters::default(),
        )
        .await;
        let expected = FeatureStore::scheduled(
            store(),
            team(home),
            team(away),
            date(day),
            Starters::default(),
        )
        .await;
        assert_eq!(
            vector.ok(),
            expected.ok(),
            "{home}-{away} {day}, without the table"
        );
    }
    for (home, away, day, refusal) in [
        ("XXX", "BOS", "2024-05-17", "has no games"),
        ("NYA", "BOS", "2001-05-17", "not after the first day"),
        ("NYA", "BOS", "2031-05-17", "days after the last game"),
    ] {
        let error = FeatureStore::scheduled(
            &postgres,
            team(home),
            team(away),
            date(day),
            Starters::default(),
        )
        .await
        .expect_err("refused");
        assert!(error.to_string().contains(refusal), "{error}");
    }
    client
        .batch_execute(
            "ALTER TABLE games_elsewhere RENAME TO games; \
             UPDATE games SET home_runs = home_runs + 10 \
             WHERE game_id = (SELECT game_id FROM games WHERE home_team = 'KCA' ORDER BY date DESC LIMIT 1)",
        )
        .await
        .expect("change a result");
    let row = client
        .query_one(
            "SELECT date FROM games WHERE home_team = 'KCA' ORDER BY date DESC LIMIT 1",
            &[],
        )
        .await
        .expect("the changed game");
    let changed_on: chrono::NaiveDate = row.get(0);
    assert_eq!(
        postgres.refresh().await.expect("refreshed"),
        Some(changed_on)
    );
    assert_eq!(postgres.refresh().await.expect("refreshed"), None, "once");
    let changed = kansas_city_opener().await.expect("computed");
    assert_ne!(changed, after, "the changed result is in the next answer");
    drop(client);
    database.drop_now().await;
}

/// An app serving from the PostgreSQL store of `database`, with `configure` applied last.
async fn postgres_app(
    database: &TestDatabase,
    configure: impl FnOnce(&mut bullpen::settings::Settings),
) -> TestApp {
    let url = database.url();
    crate::helpers::spawn_app_with(move |settings| {
        settings.features.store = bullpen::features::StoreKind::Postgres;
        settings.database.url = url.into();
        settings.database.connect_timeout_ms = 500;
        configure(settings);
    })
    .await
}

/// Makes PostgreSQL refuse `database` and drop every connection to it.
pub async fn cut_off(database: &TestDatabase) {
    let name = &database.name;
    admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
    admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;
}

pub async fn reconnect(database: &TestDatabase) {
    admin(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS true",
        database.name
    ))
    .await;
}

#[tokio::test]
async fn the_server_answers_from_postgres_like_from_the_embedded_store() {
    let database = TestDatabase::imported().await;
    let app = postgres_app(&database, |_| {}).await;
    let embedded = crate::helpers::spawn_app().await;
    for body in [
        serde_json::json!({ "game_id": "KCA202404100" }),
        serde_json::json!({ "game": { "home": "NYA", "away": "BOS", "date": "2025-04-05" } }),
    ] {
        let ours = app.predict(&body).await;
        let theirs = embedded.predict(&body).await;
        assert_eq!(ours.status, 200, "{}", ours.body);
        assert_eq!(ours.body, theirs.body);
    }
    let ready = app.get("/ready").await;
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(ready.body["features"]["store"], "postgres");
    assert_eq!(ready.body["features"]["database"], "up");
    database.drop_now().await;
}

#[tokio::test]
async fn with_postgres_gone_cached_answers_still_flow_and_the_pool_recovers() {
    let database = TestDatabase::imported().await;
    let app = postgres_app(&database, |settings| {
        settings.features.refresh_ms = 3_600_000;
    })
    .await;
    let cold_game = database
        .game_only_the_table_holds(&app, "NYA202409280")
        .await;
    let warm = serde_json::json!({ "game_id": "KCA202404100" });
    let first = app.predict(&warm).await;
    assert_eq!(first.status, 200);

    cut_off(&database).await;

    let cached = app.predict(&warm).await;
    assert_eq!(cached.status, 200, "served from the cache: {}", cached.body);
    assert_eq!(cached.body["cached"], true);
    assert_eq!(
        cached.body["home_win_probability"],
        first.body["home_win_probability"]
    );
    let viewed = app
        .predict(&serde_json::json!({ "game_id": "NYA202409280" }))
        .await;
    assert_eq!(viewed.status, 200, "from the view: {}", viewed.body);
    let cold = app
        .predict(&serde_json::json!({ "game_id": cold_game }))
        .await;
    assert_eq!(cold.status, 503);
    assert_eq!(cold.problem()["code"], "feature_store_unavailable");
    assert_eq!(cold.header("retry-after"), Some("1"));
    let ready = app.get("/ready").await;
    assert_eq!(
        (ready.status, ready.body["status"].clone()),
        (200, serde_json::json!("degraded"))
    );
    assert_eq!(ready.body["features"]["database"], "down");

    // PostgreSQL is back: the same pool serves again, no restart.
    reconnect(&database).await;
    let recovered = app
        .predict(&serde_json::json!({ "game_id": cold_game }))
        .await;
    assert_eq!(recovered.status, 200, "{}", recovered.body);
    assert_eq!(app.get("/ready").await.body["features"]["database"], "up");
    database.drop_now().await;
}

/// PostgreSQL refusing the prediction log for 4 s (a restart, a failover) loses no row: the
/// writer keeps its batch and retries until it is taken, while answers go on.
#[tokio::test]
async fn a_prediction_log_outage_of_seconds_loses_no_row() {
    let database = TestDatabase::new().await;
    db::migrate(&database.pool).await.expect("migrate");
    let url = database.url();
    let app = crate::helpers::spawn_app_with(move |settings| {
        settings.prediction_log.enabled = true;
        settings.prediction_log.batch_size = 10;
        settings.prediction_log.flush_interval_ms = 20;
        settings.database.url = url.into();
        settings.database.connect_timeout_ms = 300;
    })
    .await;
    cut_off(&database).await;
    let ids = crate::helpers::game_ids(2024, 40, 30);
    for id in &ids {
        let reply = app.predict(&serde_json::json!({ "game_id": id })).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        tokio::time::sleep(std::time::Duration::from_millis(130)).await;
    }
    reconnect(&database).await;
    crate::helpers::eventually(
        "every row written",
        std::time::Duration::from_secs(10),
        || async { (database.count("prediction_log").await == ids.len() as i64).then_some(()) },
    )
    .await;
    app.handle.stop(true).await;
    app.server.await.expect("server task").expect("clean stop");
    assert_eq!(database.count("prediction_log").await, ids.len() as i64);
    database.drop_now().await;
}

#[tokio::test]
async fn every_served_prediction_is_logged_once_through_a_burst_and_a_graceful_stop() {
    let database = TestDatabase::new().await;
    db::migrate(&database.pool).await.expect("migrate");
    let url = database.url();
    let app = crate::helpers::spawn_app_with(move |settings| {
        settings.prediction_log.enabled = true;
        settings.prediction_log.batch_size = 50;
        settings.database.url = url.into();
    })
    .await;

    let ids = crate::helpers::game_ids(2024, 20, 100);
    let bodies: Vec<serde_json::Value> = ids
        .iter()
        .flat_map(|id| {
            [
                serde_json::json!({ "game_id": id }),
                serde_json::json!({ "game_id": id, "odds": { "home": -120, "away": 110 } }),
            ]
        })
        .collect();
    let replies = futures_util::future::join_all(bodies.iter().map(|body| app.predict(body))).await;
    assert!(replies.iter().all(|r| r.status == 200));
    let batch: Vec<serde_json::Value> = ids[..10]
        .iter()
        .map(|id| serde_json::json!({ "game_id": id }))
        .collect();
    let batch_reply = app
        .post_json(
            "/api/v1/predict/batch",
            &serde_json::json!({ "items": batch }),
        )
        .await;
    assert_eq!(batch_reply.status, 200);
    let refused = app.predict(&serde_json::json!({ "game_id": "bad" })).await;
    assert_eq!(refused.status, 400, "errors are not predictions");

    app.handle.stop(true).await;
    app.server.await.expect("server task").expect("clean stop");

    let served = (bodies.len() + 10) as i64;
    assert_eq!(database.count("prediction_log").await, served);
    let client = database.pool.get().await.expect("connection");
    let row = client
        .query_one(
            "SELECT count(DISTINCT request_id), count(*) FILTER (WHERE odds_home IS NOT NULL), \
             count(*) FILTER (WHERE cached) FROM prediction_log",
            &[],
        )
        .await
        .expect("query");
    let (distinct, with_odds, cached): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        distinct,
        bodies.len() as i64 + 1,
        "one id per request, the batch shares one"
    );
    assert_eq!(with_odds, 100);
    assert!(
        cached >= 100,
        "repeats of a game come from the cache: {cached}"
    );
    let outcomes: i64 = client
        .query_one("SELECT count(*) FROM model_outcomes", &[])
        .await
        .expect("view")
        .get(0);
    assert_eq!(
        outcomes, 0,
        "no games imported in this database, so nothing to join"
    );
    drop(client);
    database.drop_now().await;
}

/// During an outage, the games this replica's view holds answer fresh (no round trip to
/// PostgreSQL); a game only the table holds is served from its expired entry, flagged stale.
#[tokio::test]
async fn during_an_outage_expired_entries_are_served_flagged_stale() {
    let database = TestDatabase::imported().await;
    let app = postgres_app(&database, |settings| {
        settings.cache.features_ttl_secs = 1;
        settings.cache.predictions_ttl_secs = 1;
        settings.features.refresh_ms = 3_600_000;
    })
    .await;
    let in_view = serde_json::json!({ "game_id": "KCA202404100" });
    let body = serde_json::json!({
        "game_id": database.game_only_the_table_holds(&app, "KCA202404100").await
    });
    let fresh = app.predict(&body).await;
    assert_eq!(fresh.status, 200);
    assert!(fresh.body.get("stale").is_none(), "no flag while fresh");
    assert_eq!(app.predict(&in_view).await.status, 200);

    cut_off(&database).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let stale = app.predict(&body).await;
    assert_eq!(stale.status, 200, "{}", stale.body);
    assert_eq!(stale.body["stale"], true, "features from the expired entry");
    assert_eq!(
        stale.body["home_win_probability"],
        fresh.body["home_win_probability"]
    );
    let viewed = app.predict(&in_view).await;
    assert_eq!(viewed.status, 200, "{}", viewed.body);
    assert!(viewed.body.get("stale").is_none(), "{}", viewed.body);

    reconnect(&database).await;
    let again = app.predict(&body).await;
    assert_eq!(again.status, 200);
    assert!(
        again.body.get("stale").is_none(),
        "fresh again once PostgreSQL is back"
    );
    database.drop_now().await;
}

/// A row that cannot be decoded is a data error. Written after this replica's view of the
/// games was built, it stops the view from moving (each refresh logs its cause) while the
/// games the view holds still serve; a game only the table holds answers 500 `internal`
/// with the request id and its cause in the log, neither a stale answer nor a 503 that
/// would hide it.
#[tokio::test]
async fn a_corrupt_row_is_a_logged_data_error_not_a_stale_answer_or_an_outage() {
    let database = TestDatabase::imported().await;
    let server = crate::process::ServerProcess::start(&[
        ("BULLPEN__FEATURES__STORE", "postgres".to_owned()),
        ("BULLPEN__DATABASE__URL", database.url()),
        ("BULLPEN__CACHE__FEATURES_TTL_SECS", "1".to_owned()),
        ("BULLPEN__CACHE__PREDICTIONS_TTL_SECS", "1".to_owned()),
    ]);
    let wait = std::time::Duration::from_secs(10);
    assert!(
        server
            .logged(wait, |line| line.contains("games loaded in memory"))
            .await
            .is_some(),
        "the view is built at start: {}",
        server.log()
    );
    let client = reqwest::Client::new();
    let predict = async |game: &str, request_id: &str| {
        let response = client
            .post(format!("{}/api/v1/predict", server.address))
            .header("x-request-id", request_id)
            .json(&serde_json::json!({ "game_id": game }))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (
            status,
            response.json::<serde_json::Value>().await.expect("JSON"),
        )
    };
    let (status, before) = predict("KCA202404100", "before").await;
    assert_eq!(status, 200, "{before}");
    // Two games written after the view was built, one with a corrupt result and one with
    // corrupt features, and a game the view holds corrupted.
    let corrupt_runs = database.copy_game("KCA202404100", 2, Some(-1)).await;
    let corrupt_features = database.copy_game("KCA202404100", 1, None).await;
    database
        .pool
        .get()
        .await
        .expect("connection")
        .batch_execute(&format!(
            "UPDATE game_features SET features = features[1:3] WHERE game_id = '{corrupt_features}'; \
             UPDATE games SET home_runs = -1 WHERE game_id = 'KCA202404100'"
        ))
        .await
        .expect("corrupt rows");
    let refused = server
        .logged(wait, |line| {
            line.contains("cannot check the games") && line.contains("`home_runs` holds `-1`")
        })
        .await;
    assert!(refused.is_some(), "the refresh logs why: {}", server.log());
    let (status, held) = predict("KCA202404100", "held").await;
    assert_eq!(status, 200, "the view still serves: {held}");
    assert_eq!(held["home_win_probability"], before["home_win_probability"]);

    let cases = [
        (
            &corrupt_runs,
            "corrupt-runs",
            "column `home_runs` holds `-1`",
        ),
        (
            &corrupt_features,
            "corrupt-features",
            "column `features` holds 3 values",
        ),
    ];
    for (game, request_id, cause) in cases {
        let (status, body) = predict(game, request_id).await;
        assert_eq!(status, 500, "{game}: {body}");
        assert_eq!(body["code"], "internal", "{body}");
        assert_eq!(body["request_id"], request_id, "{body}");
        assert!(
            !body.to_string().contains(cause),
            "the cause stays in the log: {body}"
        );
        let logged = server
            .logged(wait, |line| {
                line.contains(request_id) && line.contains(cause)
            })
            .await;
        assert!(
            logged.is_some(),
            "the cause is logged with the request id: {}",
            server.log()
        );
    }
    let (status, body) = predict("KCA202405050", "healthy").await;
    assert_eq!(status, 200, "other games still serve: {body}");
    drop(server);
    database.drop_now().await;
}

/// `/ready` checks what serving from PostgreSQL needs, not only that it answers: an empty
/// database (every predict 503 `feature_store_unavailable`) used to be "ready".
#[tokio::test]
async fn ready_names_what_the_database_lacks_until_it_can_serve() {
    let database = TestDatabase::new().await;
    let app = postgres_app(&database, |_| {}).await;
    let expected = db::expected_schema_version();
    let ready = app.get("/ready").await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.body["status"], "unready");
    assert_eq!(
        ready.body["features"]["missing"],
        serde_json::json!([
            format!("schema at version {expected} (found none): run `bullpen migrate`"),
            "games: run `bullpen import`"
        ])
    );

    db::migrate(&database.pool).await.expect("migrate");
    let ready = app.get("/ready").await;
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.body["features"]["missing"],
        serde_json::json!(["games: run `bullpen import`"])
    );

    bullpen::features::import_dir(
        &database.pool,
        &repo_path("data/retrosheet"),
        &pitchers(),
        |_| {},
    )
    .await
    .expect("import");
    let ready = app.get("/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(ready.body["features"]["missing"], serde_json::json!([]));
    database.drop_now().await;
}

/// `bullpen migrate` against a database that does not exist names it and PostgreSQL's reason
/// (it used to say only "Timed out in bb8").
#[test]
fn migrate_names_a_missing_database_and_the_cause() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bullpen"))
        .arg("migrate")
        .env(
            "BULLPEN__DATABASE__URL",
            "postgres://postgres@127.0.0.1:5432/bullpen_no_such_database",
        )
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("bullpen runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("database `bullpen_no_such_database` on 127.0.0.1:5432")
            && stderr.contains(r#"database "bullpen_no_such_database" does not exist"#),
        "{stderr}"
    );
    assert!(!stderr.contains("Timed out"), "{stderr}");
}

/// `bullpen` on this database, its exit status and what it printed.
fn bullpen_on(database: &TestDatabase, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_bullpen"))
        .current_dir(repo_path(""))
        .args(args)
        .env("BULLPEN__DATABASE__URL", database.url())
        .env("BULLPEN__TELEMETRY__FORMAT", "json")
        .env_remove("RUST_LOG")
        .output()
        .expect("bullpen runs")
}

/// Each migration in turn on a database that holds data written at every version before it
/// (a game with its features, a key, logged predictions), the last ones by `bullpen migrate`
/// as an operator runs it: every row kept, and read back by the commands that read them.
#[tokio::test]
async fn each_migration_upgrades_a_populated_database() {
    let database = TestDatabase::new().await;
    let mut client = database.pool.get().await.expect("connection");
    let run_to =
        |version: u32| v1_only::migrations::runner().set_target(refinery::Target::Version(version));
    let logged = |version: u32| {
        format!(
            "INSERT INTO prediction_log (request_id, predicted_at, model_name, model_version, \
             game_id, home_team, away_team, game_date, feature_hash, home_win_probability, \
             cached, key_id) VALUES ('at-v{version}', now(), 'home_win', '1', 'KCA202404100', \
             'KCA', 'MIN', '2024-04-10', 7, 0.5, false, 1)"
        )
    };
    run_to(1).run_async(&mut *client).await.expect("V1");
    client
        .batch_execute(&format!(
            "INSERT INTO games VALUES ('KCA202404100', '2024-04-10', 0, 'regular', 'KCA', 'MIN', \
             4, 2, 8, 6, 3, 2, 1, 0, 7, 9, 140, 150, 36, 33, 'teams-2024.csv.gz'); \
             INSERT INTO game_features (game_id, feature_version, features) \
             VALUES ('KCA202404100', 'v1', array_fill(0.5::real, ARRAY[27])); \
             INSERT INTO api_keys (name, key_hash, scopes, rate_per_minute) \
             VALUES ('desk', decode(repeat('01', 32), 'hex'), '{{predict}}', 60); {}",
            logged(1)
        ))
        .await
        .expect("V1 data");
    for version in 2..=3 {
        run_to(version)
            .run_async(&mut *client)
            .await
            .unwrap_or_else(|error| panic!("V{version}: {error}"));
        client
            .batch_execute(&logged(version))
            .await
            .unwrap_or_else(|error| panic!("data at V{version}: {error}"));
    }
    drop(client);

    let migrated = bullpen_on(&database, &["migrate"]);
    let log = String::from_utf8_lossy(&migrated.stderr);
    assert!(migrated.status.success(), "{log}");
    assert!(log.contains(r#""applied":"[4, 5, 6]""#), "{log}");
    let again = bullpen_on(&database, &["migrate"]);
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{log}");
    assert!(log.contains(r#""applied":"[]""#), "{log}");

    for (table, rows) in [
        ("games", 1),
        ("game_features", 1),
        ("api_keys", 1),
        ("prediction_log", 3),
    ] {
        assert_eq!(database.count(table).await, rows, "{table}");
    }
    let client = database.pool.get().await.expect("connection");
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM prediction_log WHERE NOT shadow), \
             (SELECT count(*) FROM model_outcomes), (SELECT revision FROM games)",
            &[],
        )
        .await
        .expect("the upgraded schema");
    let (unshadowed, outcomes, revision): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((unshadowed, outcomes, revision), (3, 3, 0));
    let keys = bullpen_on(&database, &["keys", "list"]);
    let listed = String::from_utf8_lossy(&keys.stdout);
    assert!(
        keys.status.success(),
        "{}",
        String::from_utf8_lossy(&keys.stderr)
    );
    assert!(
        listed.contains("\tdesk\t") && listed.contains("\t60\tdefault\t"),
        "{listed}"
    );
    drop(client);
    database.drop_now().await;
}
