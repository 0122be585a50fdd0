//! A live season: results posted day by day, features kept point-in-time, the journal that
//! keeps them across restarts, and results that must be refused.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bullpen::features::ResultBody;
use bullpen::games::{Game, Phase, Starters};
use serde_json::{Value, json};

use crate::database::TestDatabase;
use crate::helpers::{TestApp, eventually, repo_path, spawn_app, spawn_app_with};
use crate::process::ServerProcess;

/// A data folder holding the shipped seasons up to 2023 (links to the files).
pub fn data_through_2023() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for season in 2010..=2023 {
        let name = format!("teams-{season}.csv.gz");
        std::os::unix::fs::symlink(
            repo_path("data/retrosheet").join(&name),
            dir.path().join(&name),
        )
        .expect("link a season");
    }
    dir
}

/// Every game of 2024 in the order the store keeps them, with its starters.
pub fn season_2024() -> Vec<Game> {
    let mut games = bullpen::games::parse_season(&repo_path("data/retrosheet/teams-2024.csv.gz"))
        .expect("2024 parses");
    crate::helpers::pitchers().attach(&mut games);
    games.sort_by_key(|game| (game.date, game.number, game.id));
    games
}

pub fn result(game: &Game) -> Value {
    serde_json::to_value(ResultBody::of(game)).expect("a result is JSON")
}

/// The game as a bettor names it before first pitch: teams, date, number and probable
/// starters, no id.
pub fn scheduled(game: &Game) -> Value {
    json!({
        "game": {
            "home": game.home.team.to_string(),
            "away": game.away.team.to_string(),
            "date": game.date.to_string(),
            "number": game.number,
        },
        "starters": Starters::of(game),
    })
}

/// The versions a replay asks for each game, and the feature spec each reads: the teams
/// (`v1`, the default) and the starters (`v2`).
pub const REPLAYED: [(&str, &str); 2] = [("1", "v1"), ("3", "v2")];

/// What the offline path gives each 2024 game for `version`, which reads feature spec
/// `spec`: `bullpen features export --seasons 2024 --version {spec}` on the full data
/// (regular season), scored by the model through the feature-row input of a server on the
/// full data; postseason games, which the export leaves out, asked by id.
async fn offline_probabilities(games: &[Game], version: &str, spec: &str) -> HashMap<String, f64> {
    let out = tempfile::tempdir().expect("temp dir");
    let table = crate::export::export_2024(out.path(), spec);
    let mut reader = csv::Reader::from_path(&table).expect("CSV");
    let width = reader.headers().expect("header").len() - 4;
    let rows: Vec<(String, Vec<f32>)> = reader
        .records()
        .map(|record| {
            let record = record.expect("row");
            let features = record
                .iter()
                .skip(3)
                .take(width)
                .map(|value| value.parse::<f32>().expect("a number"))
                .collect();
            (record[0].to_owned(), features)
        })
        .collect();
    let reference = spawn_app().await;
    let mut expected = HashMap::new();
    // As many values per request as 256 rows of `v1` (the body limit).
    for chunk in rows.chunks(256 * 27 / width) {
        let data: Vec<f32> = chunk.iter().flat_map(|(_, f)| f.clone()).collect();
        let body = json!({"inputs": [
            {"name": "input", "shape": [chunk.len(), width], "datatype": "FP32", "data": data}]});
        let reply = reference
            .post_json(
                &format!("/v2/models/home_win/versions/{version}/infer"),
                &body,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let output = reply.body["outputs"]
            .as_array()
            .and_then(|outputs| outputs.iter().find(|o| o["name"] == "home_win_probability"))
            .expect("the probability output");
        for ((id, _), p) in chunk.iter().zip(output["data"].as_array().expect("data")) {
            expected.insert(id.clone(), p.as_f64().expect("number"));
        }
    }
    let postseason: Vec<Value> = games
        .iter()
        .filter(|game| game.phase == Phase::Postseason)
        .map(|game| json!({ "game_id": game.id.to_string(), "model": format!("home_win@{version}") }))
        .collect();
    let reply = reference
        .post_json("/api/v1/predict/batch", &json!({ "items": postseason }))
        .await;
    for item in reply.body["results"].as_array().expect("results") {
        let prediction = &item["prediction"];
        expected.insert(
            prediction["game"]["game_id"]
                .as_str()
                .expect("id")
                .to_owned(),
            prediction["home_win_probability"].as_f64().expect("p"),
        );
    }
    expected
}

/// What a replay served and how long it took.
pub struct Replayed {
    /// The probability each version of [`REPLAYED`] served for each game, by version and id.
    pub served: HashMap<&'static str, HashMap<String, f64>>,
    pub took: Duration,
    /// For each day, how long each replica but the first took to know its results.
    pub lag: Vec<Duration>,
}

/// Replays 2024 on `replicas` (which start from data through 2023): each date's games asked
/// by teams, date, number and starters (of each replica in turn, day by day; of the default
/// version, then of each other version of [`REPLAYED`] in a batch), then that date's results,
/// with their starters' lines, posted to the first; before the next day, every other replica has caught up (its
/// `GET /api/v1/games` shows the day), as a client that reads its writes waits.
pub async fn replay(replicas: &[&TestApp], games: &[Game]) -> Replayed {
    let mut days: BTreeMap<chrono::NaiveDate, Vec<&Game>> = BTreeMap::new();
    for game in games {
        days.entry(game.date).or_default().push(game);
    }
    let started = Instant::now();
    let mut served: HashMap<&'static str, HashMap<String, f64>> = HashMap::new();
    let mut lag = Vec::new();
    // All-Star sides are not clubs: their game is posted, never asked.
    let clubs = |day: &[&Game]| -> Vec<Value> {
        day.iter()
            .filter(|g| g.phase != Phase::AllStar)
            .map(|game| scheduled(game))
            .collect()
    };
    let days: Vec<_> = days.into_iter().collect();
    for (index, (date, day)) in days.iter().enumerate() {
        let asked = replicas[index % replicas.len()];
        // Tomorrow's games asked singly, twice, before today's results: the worker keeps
        // those answers, and today's results must end them.
        if let Some((_, tomorrow)) = days.get(index + 1) {
            let asks_tomorrow = replicas[(index + 1) % replicas.len()];
            for ask in clubs(tomorrow) {
                for _ in 0..2 {
                    let reply = asks_tomorrow.predict(&ask).await;
                    assert_eq!(reply.status, 200, "{date}: {}", reply.body);
                }
            }
        }
        let singles = clubs(day);
        let clubs: Vec<&&Game> = day.iter().filter(|g| g.phase != Phase::AllStar).collect();
        if !clubs.is_empty() {
            let items: Vec<Value> = clubs.iter().map(|game| scheduled(game)).collect();
            let reply = asked
                .post_json("/api/v1/predict/batch", &json!({ "items": items }))
                .await;
            assert_eq!(reply.status, 200, "{date}: {}", reply.body);
            assert_eq!(reply.body["failed"], 0, "{date}: {}", reply.body);
            let answers = reply.body["results"].as_array().expect("results");
            for (game, item) in clubs.iter().zip(answers) {
                let prediction = &item["prediction"];
                assert_eq!(prediction["game"]["game_id"], game.id.to_string());
                assert!(prediction.get("stale").is_none(), "{prediction}");
                served.entry(REPLAYED[0].0).or_default().insert(
                    game.id.to_string(),
                    prediction["home_win_probability"].as_f64().expect("p"),
                );
            }
            for (version, spec) in &REPLAYED[1..] {
                let answers = ask_pinned(asked, version, &items).await;
                for (game, prediction) in clubs.iter().zip(answers) {
                    assert_eq!(prediction["feature_version"], *spec, "{prediction}");
                    assert!(prediction.get("unknown_starters").is_none(), "{prediction}");
                    served.entry(version).or_default().insert(
                        game.id.to_string(),
                        prediction["home_win_probability"].as_f64().expect("p"),
                    );
                }
            }
            // The same games asked singly (the second served again as kept): the batch's
            // answers, made since yesterday's results.
            for (ask, item) in singles.iter().zip(answers) {
                for _ in 0..2 {
                    let reply = asked.predict(ask).await;
                    assert_eq!(
                        reply.body["home_win_probability"],
                        item["prediction"]["home_win_probability"],
                        "{date}: {ask}"
                    );
                }
            }
        }
        let results: Vec<Value> = day.iter().map(|game| result(game)).collect();
        let reply = replicas[0]
            .post_json("/api/v1/admin/results", &json!({ "results": results }))
            .await;
        assert_eq!(reply.status, 200, "{date}: {}", reply.body);
        assert_eq!(
            reply.body["added"].as_array().map(Vec::len),
            Some(results.len()),
            "{date}: {}",
            reply.body
        );
        for other in &replicas[1..] {
            lag.push(caught_up(other, *date, day.len()).await);
        }
    }
    lag.sort();
    Replayed {
        served,
        took: started.elapsed(),
        lag,
    }
}

/// The predictions of `home_win@{version}` for `items`, asked in one batch.
async fn ask_pinned(app: &TestApp, version: &str, items: &[Value]) -> Vec<Value> {
    let pinned: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut item = item.clone();
            item["model"] = json!(format!("home_win@{version}"));
            item
        })
        .collect();
    let reply = app
        .post_json("/api/v1/predict/batch", &json!({ "items": pinned }))
        .await;
    assert_eq!(reply.body["failed"], 0, "{}", reply.body);
    let answers = reply.body["results"].as_array().expect("results");
    answers
        .iter()
        .map(|item| item["prediction"].clone())
        .collect()
}

/// Every probability served by each version equals the offline one; live quality over the
/// regular season equals the evaluation report's.
pub async fn assert_replay_matches_offline(
    app: &TestApp,
    served: &HashMap<&'static str, HashMap<String, f64>>,
    games: &[Game],
) {
    let asked = games.iter().filter(|g| g.phase != Phase::AllStar).count();
    for (version, spec) in REPLAYED {
        let expected = offline_probabilities(games, version, spec).await;
        let served = &served[version];
        assert_eq!(served.len(), asked);
        let mut worst = 0.0_f64;
        for (id, p) in served {
            let want = expected
                .get(id)
                .unwrap_or_else(|| panic!("{id} scored offline"));
            worst = worst.max((p - want).abs());
        }
        assert!(
            worst <= 1e-6,
            "home_win@{version}: largest difference from the offline score: {worst}"
        );
        println!("home_win@{version}: {asked} games, largest difference from offline {worst:e}");
    }

    let reply = app
        .get("/api/v1/models/home_win/quality?from=2024-01-01&to=2024-09-30")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    crate::monitoring::assert_matches_report(&reply.body["versions"][0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_season_replayed_day_by_day_serves_what_the_offline_export_scores() {
    let data = data_through_2023();
    let journal = tempfile::tempdir().expect("temp dir");
    let (data_dir, journal_dir) = (data.path().to_path_buf(), journal.path().to_path_buf());
    let app = spawn_app_with(move |settings| {
        settings.data.dir = data_dir;
        settings.features.results_dir = journal_dir;
    })
    .await;
    let games = season_2024();
    let replayed = replay(&[&app], &games).await;
    println!(
        "replayed 2024 on the embedded store in {:.1} s ({} games asked, {} results posted)",
        replayed.took.as_secs_f64(),
        replayed.served[REPLAYED[0].0].len(),
        games.len(),
    );
    assert_replay_matches_offline(&app, &replayed.served, &games).await;
}

fn journal_env(data: &Path, journal: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("BULLPEN__DATA__DIR", data.display().to_string()),
        (
            "BULLPEN__FEATURES__RESULTS_DIR",
            journal.display().to_string(),
        ),
    ]
}

/// POSTs `body` and returns the answer, failing the test unless it is 200.
async fn post(address: &str, path: &str, body: &Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{address}{path}"))
        .json(body)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let answer = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{path}: {answer}");
    answer
}

async fn get(address: &str, path: &str) -> Value {
    reqwest::get(format!("{address}{path}"))
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON")
}

/// The journal keeps posted results across a restart; a last line cut by a crash is
/// reported, kept aside, and applies nothing.
#[tokio::test]
async fn the_journal_survives_a_restart_and_reports_a_torn_last_line() {
    let data = data_through_2023();
    let journal = tempfile::tempdir().expect("temp dir");
    let env = journal_env(data.path(), journal.path());
    let games = season_2024();
    let opening: Vec<Value> = games
        .iter()
        .filter(|g| g.date < "2024-03-29".parse().expect("date"))
        .map(result)
        .collect();
    let later = games
        .iter()
        .find(|g| g.date == "2024-04-01".parse().expect("date"))
        .expect("a game on April 1");
    let ask = scheduled(later);

    let mut first = ServerProcess::start(&env);
    let before = post(&first.address, "/api/v1/predict", &ask).await;
    post(
        &first.address,
        "/api/v1/admin/results",
        &json!({ "results": opening }),
    )
    .await;
    let after = post(&first.address, "/api/v1/predict", &ask).await;
    assert_ne!(
        before["home_win_probability"], after["home_win_probability"],
        "the opening results move the features"
    );
    first.terminate(Duration::from_secs(10));

    let second = ServerProcess::start(&env);
    let again = post(&second.address, "/api/v1/predict", &ask).await;
    assert_eq!(again["home_win_probability"], after["home_win_probability"]);
    let day = get(&second.address, "/api/v1/games?date=2024-03-28").await;
    let on_28th = opening.iter().filter(|r| r["date"] == "2024-03-28").count();
    assert_eq!(
        day["games"].as_array().map(Vec::len),
        Some(on_28th),
        "{day}"
    );
    drop(second);

    // A crash in the middle of a write: the last line has no end.
    let path = journal.path().join("results.jsonl");
    let whole = std::fs::read(&path).expect("journal");
    let torn = br#"{"results":[{"game_id":"SDN202403200","home":{"team":"SD"#;
    let mut cut = whole.clone();
    cut.extend_from_slice(torn);
    std::fs::write(&path, &cut).expect("write");
    let third = ServerProcess::start(&env);
    let reported = third
        .logged(Duration::from_secs(5), |line| {
            line.contains("cut by a crash")
        })
        .await
        .expect("the torn line is reported");
    assert!(reported.contains("\"bytes\":"), "{reported}");
    assert_eq!(
        std::fs::read(&path).expect("journal"),
        whole,
        "cut back to the last whole line"
    );
    let kept = std::fs::read(journal.path().join("results.jsonl.torn")).expect("kept aside");
    assert!(kept.starts_with(torn));
    let again = post(&third.address, "/api/v1/predict", &ask).await;
    assert_eq!(again["home_win_probability"], after["home_win_probability"]);
    drop(third);

    // A bad line that is not the last is no crash: the server refuses to start.
    let mut broken = b"not json\n".to_vec();
    broken.extend_from_slice(&whole);
    std::fs::write(&path, &broken).expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_bullpen"))
        .current_dir(repo_path(""))
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (*k, v.clone())))
        .env("BULLPEN__SERVER__PORT", "0")
        .env("BULLPEN__SERVER__GRPC_PORT", "0")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 1 of the results journal"), "{stderr}");
}

/// A server on the data through 2023 with a journal; the folders live as long as it does.
async fn app_through_2023() -> (TestApp, tempfile::TempDir, tempfile::TempDir) {
    let data = data_through_2023();
    let journal = tempfile::tempdir().expect("temp dir");
    let (data_dir, journal_dir) = (data.path().to_path_buf(), journal.path().to_path_buf());
    let app = spawn_app_with(move |settings| {
        settings.data.dir = data_dir;
        settings.features.results_dir = journal_dir;
    })
    .await;
    (app, data, journal)
}

/// The first game of 2024, and a later game of its home team (which it changes).
fn opener_and_later(games: &[Game]) -> (&Game, &Game) {
    let opener = &games[0];
    let later = games
        .iter()
        .find(|g| g.date > opener.date && g.home.team == opener.home.team)
        .expect("a later game");
    (opener, later)
}

/// Another single game (number 0) on the day of `good`, with `good`'s home team visiting.
fn second_single_game(good: &Value) -> Value {
    let mut other = good.clone();
    other["game_id"] = Value::Null;
    other["away"]["team"] = good["home"]["team"].clone();
    other["home"]["team"] = json!(if good["away"]["team"] == "TEX" {
        "SEA"
    } else {
        "TEX"
    });
    other
}

/// Bodies with one thing wrong each: its status, code, and the field the detail names.
#[expect(clippy::too_many_lines, reason = "one table of cases, read best whole")]
fn bad_results(good: &Value) -> Vec<(Value, u16, &'static str, &'static str)> {
    let with = |change: &dyn Fn(&mut Value)| {
        let mut sent = good.clone();
        change(&mut sent);
        json!({ "results": [sent] })
    };
    let unidentified = |r: &mut Value| r["game_id"] = Value::Null;
    vec![
        (
            with(&|r| r["home"]["team"] = json!("XYZ")),
            422,
            "invalid_result",
            "results[0].home.team",
        ),
        (
            with(&|r| {
                r["away"]["team"] = r["home"]["team"].clone();
                unidentified(r);
            }),
            422,
            "invalid_result",
            "results[0].away.team",
        ),
        (
            with(&|r| r["away"]["runs"] = json!(-2)),
            422,
            "invalid_result",
            "results[0].away.runs",
        ),
        (
            with(&|r| {
                r["date"] = json!("2009-04-06");
                unidentified(r);
            }),
            422,
            "invalid_result",
            "results[0].date",
        ),
        (
            with(&|r| {
                r["phase"] = json!("postseason");
                r["away"]["runs"] = r["home"]["runs"].clone();
            }),
            422,
            "invalid_result",
            "results[0].home.runs",
        ),
        (
            with(&|r| r["home"]["batters_faced"] = Value::Null),
            422,
            "invalid_result",
            "results[0].home.batters_faced",
        ),
        (
            with(&|r| {
                r["date"] = json!("2099-04-01");
                unidentified(r);
            }),
            422,
            "invalid_result",
            "results[0].date",
        ),
        (
            // The number in an id is checked as a number sent alone is: a result the
            // journal could not replay is never acknowledged.
            with(&|r| {
                let id = r["game_id"].as_str().expect("an id");
                r["game_id"] = json!(format!("{}9", &id[..11]));
                r["number"] = Value::Null;
            }),
            422,
            "invalid_result",
            "results[0].game_id",
        ),
        (
            with(&|r| {
                r["home"]["runs"] = json!(30);
                r["away"]["batters_faced"] = json!(5);
            }),
            422,
            "invalid_result",
            "results[0].home.runs",
        ),
        (
            with(&|r| {
                let tomorrow = chrono::Utc::now().date_naive() + chrono::Days::new(1);
                r["date"] = json!(tomorrow.to_string());
                unidentified(r);
            }),
            422,
            "invalid_result",
            "results[0].date",
        ),
        (
            // The home team also plays a second single game that day, as the visitor.
            json!({ "results": [good.clone(), second_single_game(good)] }),
            422,
            "invalid_result",
            "results[1].number",
        ),
        (json!({ "results": [] }), 422, "batch_empty", ""),
        (
            json!({ "results": [good.clone(), good.clone()] }),
            422,
            "invalid_result",
            "results[1].game_id",
        ),
        (
            json!({ "results": [good.clone()], "extra": 1 }),
            400,
            "unknown_field",
            "",
        ),
    ]
}

/// Results that cannot be right are refused with a clear 4xx naming what is wrong, and
/// change nothing.
#[tokio::test]
async fn bad_results_are_refused_and_change_nothing() {
    let (app, _data, journal) = app_through_2023().await;
    let games = season_2024();
    let (opener, later) = opener_and_later(&games);
    let ask = scheduled(later);
    let before = app.predict(&ask).await.body["home_win_probability"].clone();
    let good = result(opener);
    let cases = bad_results(&good);
    for (body, status, code, field) in &cases {
        let reply = app.post_json("/api/v1/admin/results", body).await;
        assert_eq!(reply.status, *status, "{body}: {}", reply.body);
        assert_eq!(reply.body["code"], *code, "{}", reply.body);
        let detail = reply.body["detail"].as_str().expect("detail");
        assert!(detail.contains(field), "{detail} names {field}");
    }
    let malformed = app
        .request(reqwest::Method::POST, "/api/v1/admin/results")
        .header("content-type", "application/json")
        .body("{\"results\": [");
    let reply = app.send(malformed).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["code"], "malformed_json");
    // 10,000 results are far past the body limit.
    let many = json!({ "results": vec![good.clone(); 10_000] });
    let reply = app.post_json("/api/v1/admin/results", &many).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(reply.body["code"], "payload_too_large");

    let day = app
        .get(&format!("/api/v1/games?date={}", opener.date))
        .await;
    assert_eq!(day.body["games"], json!([]), "nothing was applied");
    assert!(
        !journal.path().join("results.jsonl").exists(),
        "nothing was journaled"
    );
    assert_eq!(app.predict(&ask).await.body["home_win_probability"], before);
    for query in ["", "?date=yesterday", "?date=2024-03-28&x=1"] {
        let reply = app.get(&format!("/api/v1/games{query}")).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
    }
}

/// The same result twice changes nothing; another result for a final game is a conflict
/// unless the request corrects it, and the correction is in the next answer.
#[tokio::test]
async fn a_result_is_idempotent_and_replaced_only_when_corrected() {
    let (app, _data, _journal) = app_through_2023().await;
    let games = season_2024();
    let (opener, later) = opener_and_later(&games);
    let ask = scheduled(later);
    let before = app.predict(&ask).await.body["home_win_probability"].clone();
    // Asked until the answer is kept rendered (`http::rendered`): the result must move it all
    // the same.
    for _ in 0..2 {
        let again = app.predict(&ask).await;
        assert_eq!(again.body["home_win_probability"], before);
        assert_eq!(again.body["cached"], true);
    }
    let good = result(opener);
    let id = json!([opener.id.to_string()]);
    let reply = app
        .post_json(
            "/api/v1/admin/results",
            &json!({ "results": [good.clone()] }),
        )
        .await;
    assert_eq!(reply.body["added"], id, "{}", reply.body);
    assert_eq!(reply.body["changed_from"], opener.date.to_string());
    let moved = app.predict(&ask).await.body["home_win_probability"].clone();
    assert_ne!(moved, before, "the result moved a later game's features");
    let reply = app
        .post_json(
            "/api/v1/admin/results",
            &json!({ "results": [good.clone()] }),
        )
        .await;
    assert_eq!(reply.body["unchanged"], id, "{}", reply.body);
    assert!(reply.body.get("changed_from").is_none());

    let mut other = good.clone();
    other["home"]["runs"] = json!(opener.home.runs + 5);
    let reply = app
        .post_json(
            "/api/v1/admin/results",
            &json!({ "results": [other.clone()] }),
        )
        .await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert_eq!(reply.body["code"], "result_conflict");
    let detail = reply.body["detail"].as_str().expect("detail");
    assert!(detail.contains("home.runs"), "{detail}");
    assert_eq!(app.predict(&ask).await.body["home_win_probability"], moved);
    let reply = app
        .post_json(
            "/api/v1/admin/results",
            &json!({ "results": [other], "correct": true }),
        )
        .await;
    assert_eq!(reply.body["corrected"], id, "{}", reply.body);
    let corrected = app.predict(&ask).await.body["home_win_probability"].clone();
    assert_ne!(corrected, moved, "the correction is in the next answer");
    let day = app
        .get(&format!("/api/v1/games?date={}", opener.date))
        .await;
    assert_eq!(day.body["games"][0]["home"]["runs"], opener.home.runs + 5);
}

/// A database holding the seasons up to 2023, imported.
async fn database_through_2023() -> TestDatabase {
    let database = TestDatabase::new().await;
    bullpen::db::migrate(&database.pool).await.expect("migrate");
    let data = data_through_2023();
    bullpen::features::import_dir(
        &database.pool,
        data.path(),
        &crate::helpers::pitchers(),
        |_| {},
    )
    .await
    .expect("import up to 2023");
    database
}

fn unique_prefix() -> String {
    format!("bullpen_test:{}:", uuid::Uuid::new_v4().simple())
}

/// A replica on `database`'s games with Redis under `prefix` and the prediction log on.
async fn replica(database: &TestDatabase, prefix: &str, refresh_ms: u64) -> TestApp {
    let (url, prefix) = (database.url(), prefix.to_owned());
    spawn_app_with(move |settings| {
        settings.features.store = bullpen::features::StoreKind::Postgres;
        settings.database.url = url.into();
        settings.features.refresh_ms = refresh_ms;
        settings.redis.enabled = true;
        settings.redis.key_prefix = prefix;
        settings.prediction_log.enabled = true;
        settings.prediction_log.flush_interval_ms = 20;
    })
    .await
}

/// Two replicas on a database holding the seasons up to 2023, sharing Redis under a prefix
/// of their own, each checking the games every `refresh_ms`.
async fn two_replicas(refresh_ms: u64) -> (TestDatabase, String, TestApp, TestApp) {
    let database = database_through_2023().await;
    let prefix = unique_prefix();
    let a = replica(&database, &prefix, refresh_ms).await;
    let b = replica(&database, &prefix, refresh_ms).await;
    (database, prefix, a, b)
}

/// Waits until `app` knows the results of `date` (its view of the games caught up), and
/// says how long that took.
async fn caught_up(app: &TestApp, date: chrono::NaiveDate, games: usize) -> Duration {
    let started = Instant::now();
    let path = format!("/api/v1/games?date={date}");
    eventually(&format!("{date} known"), Duration::from_secs(5), || async {
        let day = app.get(&path).await;
        (day.body["games"].as_array().map(Vec::len) == Some(games)).then_some(())
    })
    .await;
    started.elapsed()
}

/// The same season on the PostgreSQL store, Redis on, two replicas: the days' games asked of
/// either replica in turn, results posted to one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_season_replayed_on_postgres_with_two_replicas_serves_what_the_offline_export_scores() {
    let (database, _, a, b) = two_replicas(500).await;
    let games = season_2024();
    let replayed = replay(&[&a, &b], &games).await;
    let lag = &replayed.lag;
    println!(
        "replayed 2024 on PostgreSQL with two replicas in {:.1} s; the other replica caught up \
         with a day's results in {:.0} ms at the median, {:.0} ms at worst",
        replayed.took.as_secs_f64(),
        lag[lag.len() / 2].as_secs_f64() * 1e3,
        lag[lag.len() - 1].as_secs_f64() * 1e3,
    );
    assert_replay_matches_offline(&a, &replayed.served, &games).await;
    database.drop_now().await;
}

/// The games of the opening days (up to March 28th), and a game of April 1st they change.
fn opening_and_later(games: &[Game]) -> (Vec<Value>, &Game) {
    let opening = games
        .iter()
        .filter(|g| g.date < "2024-03-29".parse().expect("date"))
        .map(result)
        .collect();
    let later = games
        .iter()
        .find(|g| g.date == "2024-04-01".parse().expect("date"))
        .expect("a game on April 1");
    (opening, later)
}

/// The Redis keys under `prefix` of the cached features of `game` asked as scheduled.
async fn feature_keys(prefix: &str, game: &Game) -> Vec<String> {
    let mut redis = redis::Client::open("redis://127.0.0.1:6379")
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let segment = format!(
        "{}@{}{}-{}",
        game.away.team,
        game.home.team,
        game.date.format("%Y%m%d"),
        game.number
    );
    // The segment ends before the starters (`/home/away`) or the history (`:`).
    redis::AsyncCommands::keys(&mut redis, format!("{prefix}features:*{segment}[:/]*"))
        .await
        .expect("keys")
}

/// Polls `app` for `ask` until its probability is `want`; how long that took.
async fn answers(app: &TestApp, ask: &Value, want: &Value, within: Duration) -> Duration {
    let started = Instant::now();
    eventually(&format!("the price {want}"), within, || async {
        let reply = app.predict(ask).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        (reply.body["home_win_probability"] == *want).then_some(())
    })
    .await;
    started.elapsed()
}

/// A result posted to one replica is in the other's next answer within a second, told by
/// Redis (the other replica would only check the games itself once a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_posted_to_one_replica_is_in_the_others_next_answer_within_a_second() {
    let (database, prefix, a, b) = two_replicas(60_000).await;
    let games = season_2024();
    let (opening, later) = opening_and_later(&games);
    let ask = scheduled(later);
    let before = b.predict(&ask).await.body["home_win_probability"].clone();
    let cached = b.predict(&ask).await;
    assert_eq!(cached.body["cached"], true, "{}", cached.body);

    let reply = a
        .post_json("/api/v1/admin/results", &json!({ "results": opening }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let want = a.predict(&ask).await.body["home_win_probability"].clone();
    assert_ne!(want, before, "the opening results move the features");
    let took = answers(&b, &ask, &want, Duration::from_secs(1)).await;
    println!("the other replica answered with the new result after {took:?}");
    // The features of the old history were deleted from Redis by the post; those written
    // since are of the new one.
    let keys = feature_keys(&prefix, later).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    database.drop_now().await;
}

/// Results that reach the games with no announcement (pub/sub down, or written by
/// `bullpen import --results` with Redis off) are found by each replica's own check of the
/// games: no replica answers from features computed before them once it knows them, though
/// those features are still in Redis, under the history they were computed from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pubsub_the_history_in_the_key_decides() {
    let (database, prefix, a, b) = two_replicas(200).await;
    let games = season_2024();
    let (opening, later) = opening_and_later(&games);
    let ask = scheduled(later);
    let before = a.predict(&ask).await;
    assert_eq!(before.status, 200, "{}", before.body);
    let before = before.body["home_win_probability"].clone();
    let other = b.predict(&ask).await;
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(other.body["home_win_probability"], before);

    // The nightly batch job, with no Redis to announce on.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("opening.csv");
    let mut csv = csv::Writer::from_path(&file).expect("csv");
    csv.write_record(&bullpen::features::CSV_COLUMNS[..20])
        .expect("header");
    for result in &opening {
        let cell = |value: &Value| match value {
            Value::Null => String::new(),
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let mut row = vec![
            cell(&result["game_id"]),
            cell(&result["date"]),
            cell(&result["number"]),
            cell(&result["phase"]),
        ];
        for side in ["home", "away"] {
            for field in [
                "team",
                "runs",
                "hits",
                "walks",
                "home_runs",
                "strikeouts",
                "pitches",
                "batters_faced",
            ] {
                row.push(cell(&result[side][field]));
            }
        }
        csv.write_record(&row).expect("row");
    }
    csv.flush().expect("flush");
    drop(csv);
    let output = Command::new(env!("CARGO_BIN_EXE_bullpen"))
        .current_dir(repo_path(""))
        .args(["import", "--results"])
        .arg(&file)
        .env("BULLPEN__FEATURES__STORE", "postgres")
        .env("BULLPEN__DATABASE__URL", database.url())
        .env("BULLPEN__REDIS__ENABLED", "false")
        .output()
        .expect("bullpen runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let imported: Value = serde_json::from_slice(&output.stdout).expect("the outcome as JSON");
    assert_eq!(
        imported["added"].as_array().map(Vec::len),
        Some(opening.len())
    );

    // The reference: a replica started after the import.
    let fresh = replica(&database, &unique_prefix(), 200).await;
    let want = fresh.predict(&ask).await.body["home_win_probability"].clone();
    assert_ne!(want, before);
    for app in [&a, &b] {
        let took = answers(app, &ask, &want, Duration::from_secs(1)).await;
        println!("a replica with no announcement answered with the new results after {took:?}");
    }
    // Both histories are in Redis: with no announcement nothing was deleted; the old
    // features are only never read.
    let keys = feature_keys(&prefix, later).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    database.drop_now().await;
}

/// A numbered scheduled game is the stored game of that id, or refused: teams that
/// disagree with the data are 422 `game_mismatch` naming the stored teams. A prediction for
/// a game not yet played is scored only by a result for the teams it named.
#[tokio::test]
async fn a_numbered_game_is_the_stored_game_and_only_its_teams_reach_quality() {
    let app = spawn_app().await;
    let world_series = |home: &str, away: &str, number: Option<u8>| json!({ "game": { "home": home, "away": away, "date": "2024-10-25", "number": number } });
    for (home, away) in [("LAN", "BOS"), ("NYA", "LAN"), ("BOS", "NYA")] {
        let reply = app.predict(&world_series(home, away, Some(0))).await;
        assert_eq!(reply.status, 422, "{home}-{away}: {}", reply.body);
        assert_eq!(reply.body["code"], "game_mismatch");
        let detail = reply.body["detail"].as_str().expect("detail");
        assert!(detail.contains("LAN202410250, NYA at LAN"), "{detail}");
    }
    let reply = app.predict(&world_series("LAN", "NYA", Some(0))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["game"]["game_id"], "LAN202410250");
    // Without a number the answer names no game: any matchup may be priced.
    let reply = app.predict(&world_series("LAN", "BOS", None)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["game"].get("game_id"), None, "{}", reply.body);

    let (app, _data, _journal) = app_through_2023().await;
    let games = season_2024();
    let opener = &games[0];
    let mut guessed = scheduled(opener);
    let wrong = if opener.away.team.as_str() == "TEX" {
        "SEA"
    } else {
        "TEX"
    };
    guessed["game"]["away"] = json!(wrong);
    let reply = app.predict(&guessed).await;
    assert_eq!(reply.status, 200, "not played yet: {}", reply.body);
    assert_eq!(reply.body["game"]["game_id"], opener.id.to_string());
    let posted = app
        .post_json(
            "/api/v1/admin/results",
            &json!({ "results": [result(opener)] }),
        )
        .await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    let quality = || app.get("/api/v1/models/home_win/quality?from=2024-01-01&to=2024-12-31");
    let reply = quality().await;
    assert_eq!(reply.body["versions"], json!([]), "{}", reply.body);
    let refused = app.predict(&guessed).await;
    assert_eq!(refused.body["code"], "game_mismatch", "{}", refused.body);
    let reply = app.predict(&scheduled(opener)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = quality().await;
    assert_eq!(reply.body["versions"][0]["games"], 1, "{}", reply.body);
}
