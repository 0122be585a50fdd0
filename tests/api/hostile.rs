//! What a hostile client tries, and what must hold whatever it sends.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Reply, spawn_app};

/// Invented methods (1,000 of them, 100 characters each) are counted as `other`: the scrape
/// does not grow with what clients send, and no invented name reaches it.
#[tokio::test]
async fn invented_methods_never_add_metric_series() {
    let app = spawn_app().await;
    let send = |n: usize| {
        let method = Method::from_bytes(format!("M{n:05}{}", "A".repeat(94)).as_bytes())
            .expect("a valid token");
        app.client
            .request(method, format!("{}/api/v1/predict", app.address))
            .send()
    };
    send(0).await.expect("sent");
    // The first scrape is counted after it is rendered: take the second.
    app.scrape().await;
    let before = app.scrape().await;
    for n in 1..=1000 {
        let answer = send(n).await.expect("sent");
        assert!(answer.status().is_client_error(), "{}", answer.status());
    }
    let after = app.scrape().await;
    assert!(!after.contains("M00001"), "an invented method is a label");
    assert!(after.contains(r#"method="other""#), "{after}");
    // Counters tick (a few more digits), no series is added.
    let lines = |text: &str| text.lines().count();
    assert_eq!(lines(&after), lines(&before), "series were added");
    assert!(
        after.len() < before.len() + 200,
        "the scrape grew from {} to {} bytes",
        before.len(),
        after.len()
    );
}

/// Odds and dates a client can send but no market or schedule has: refused with a code,
/// never priced (the exact requests that were once answered 200).
#[tokio::test]
async fn impossible_odds_and_dates_are_refused() {
    let app = spawn_app().await;
    let game = "KCA202404100";
    let cases = [
        (
            json!({ "game_id": game, "odds": { "home": -1e308, "away": 130 } }),
            422,
            "invalid_odds",
        ),
        (
            json!({ "game_id": game, "odds": { "home": 1e308, "away": 1e308, "format": "decimal" } }),
            422,
            "invalid_odds",
        ),
        // Both at +200: the implied probabilities add up to 2/3, an arbitrage.
        (
            json!({ "game_id": game, "odds": { "home": 200, "away": 200 } }),
            422,
            "invalid_odds",
        ),
        // Both sides heavy favourites: a margin of ~98 %, no book's price.
        (
            json!({ "game_id": game, "odds": { "home": -10_000, "away": -10_000 } }),
            422,
            "invalid_odds",
        ),
        (
            json!({ "game_id": game, "odds": { "home": 1.01, "away": 1.01 } }),
            422,
            "invalid_odds",
        ),
        // A franchise code that left the data (the Marlins played as FLO until 2011).
        (
            json!({ "game": { "home": "FLO", "away": "NYA", "date": "2025-05-01" } }),
            422,
            "date_out_of_range",
        ),
        (
            json!({ "game": { "home": "NYA", "away": "FLO", "date": "2013-05-01" } }),
            422,
            "date_out_of_range",
        ),
        (
            json!({ "game": { "home": "NYA", "away": "BOS", "date": "2025-4-5" } }),
            400,
            "invalid_date",
        ),
        (
            json!({ "game": { "home": "NYA", "away": "BOS", "date": "+10000-01-01" } }),
            400,
            "invalid_date",
        ),
        (
            json!({ "game": { "home": "NYA", "away": "BOS", "date": "9999-12-31" } }),
            422,
            "date_out_of_range",
        ),
    ];
    for (body, status, code) in cases {
        let reply = app.predict(&body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert_eq!(reply.problem()["code"], code, "{body}");
        if body.to_string().contains("FLO") {
            let detail = reply.problem()["detail"].to_string();
            assert!(
                detail.contains("MIA") && detail.contains("2011"),
                "{detail}"
            );
        }
    }
    // The old code inside its seasons, and its successor, are priced.
    for (home, away, date) in [("FLO", "NYA", "2011-05-01"), ("MIA", "NYA", "2025-05-01")] {
        let game = json!({ "game": { "home": home, "away": away, "date": date } });
        assert_eq!(app.predict(&game).await.status, 200, "{game}");
    }
    // The edges that are real stay open: a long shot, and the next season.
    let long_shot = json!({ "game_id": game, "odds": { "home": -100_000, "away": 100_000 } });
    assert_eq!(app.predict(&long_shot).await.status, 200);
    let next_season = json!({ "game": { "home": "NYA", "away": "BOS", "date": "2025-09-28" } });
    assert_eq!(app.predict(&next_season).await.status, 200);
}

/// A query string that is not the endpoint's is a problem+json 400 with a code, like a bad
/// body (it used to be text/plain "Query deserialize error").
#[tokio::test]
async fn bad_query_strings_get_a_problem() {
    let app = spawn_app().await;
    for query in [
        "from=x",
        "foo=1",
        "from=2025-02-30",
        "from=2025-4-5",
        "from=2024-10-01&to=2024-04-01",
    ] {
        let reply = app
            .client
            .get(format!(
                "{}/api/v1/models/home_win/quality?{query}",
                app.address
            ))
            .send()
            .await
            .expect("sent");
        assert_eq!(reply.status(), 400, "{query}");
        assert_eq!(
            reply.headers()["content-type"],
            "application/problem+json",
            "{query}"
        );
        let problem: serde_json::Value = reply.json().await.expect("JSON");
        assert_eq!(problem["code"], "invalid_query", "{query}: {problem}");
    }
    let fine = app
        .get("/api/v1/models/home_win/quality?from=2024-04-01&to=2024-10-01")
        .await;
    assert_eq!(fine.status, 200, "{}", fine.body);
}

/// Slowloris: connections that never finish their headers are cut (actix-web's 5 s request
/// timeout) while ordinary requests are served all along.
#[tokio::test]
async fn slowloris_connections_are_cut_while_others_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let started = std::time::Instant::now();
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
            .await
            .expect("connect");
        stream
            .write_all(b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nX-Slow: 1")
            .await
            .expect("a partial head");
        slow.push(stream);
    }
    let answered = app.predict(&json!({ "game_id": "KCA202404100" })).await;
    assert_eq!(answered.status, 200, "served beside 20 slow clients");
    for mut stream in slow {
        let mut rest = Vec::new();
        let cut = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut rest),
        )
        .await;
        assert!(cut.is_ok(), "a slow connection was never cut");
    }
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(8),
        "cut after {took:?}"
    );
    // On a new connection: the first answer's, idle since, may be closing just now (the
    // server's keep-alive is 5 s too), and a client that reuses it reads no answer.
    let after = reqwest::Client::new()
        .post(format!("{}/api/v1/predict", app.address))
        .json(&json!({ "game_id": "KCA202404100" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(after.status(), 200);
}

/// Long URLs and header floods within what the parser reads are refused by bullpen's own
/// limits (`server.max_uri_bytes`, `max_headers`, `max_header_bytes`) with a problem body,
/// before any route: an open probe and an authenticated route alike.
#[tokio::test]
async fn long_urls_and_header_floods_get_a_problem() {
    let app = spawn_app().await;
    let refused = |status: u16, code: &'static str| {
        move |reply: Reply| {
            assert_eq!(reply.status, status, "{}", reply.body);
            assert_eq!(reply.problem()["code"], code, "{}", reply.body);
        }
    };
    let long_uri = format!("/health?pad={}", "a".repeat(20_000));
    refused(414, "uri_too_long")(app.get(&long_uri).await);
    let long_path = format!("/api/v1/games/{}/features", "A".repeat(9_000));
    refused(414, "uri_too_long")(app.get(&long_path).await);

    for (what, count, size) in [("80 headers", 80, 8), ("40 headers of 1 KB", 40, 1_000)] {
        let mut request = app.request(Method::GET, "/health");
        for n in 0..count {
            request = request.header(format!("x-flood-{n}"), "v".repeat(size));
        }
        let reply = app.send(request).await;
        assert!(
            reply.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("limit")),
            "{what}: {}",
            reply.body
        );
        refused(431, "headers_too_large")(reply);
    }
    // Within the limits, the same requests are served.
    assert_eq!(
        app.get(&format!("/health?pad={}", "a".repeat(7_000)))
            .await
            .status,
        200
    );
}

/// Requests past the HTTP parser's fixed limits (a malformed Content-Length, 120 headers, a
/// 100 KB URL) are refused before any handler, with 400 or 431, and the server goes on
/// serving. actix-web writes these answers itself, with no body and no hook to give them one
/// (README, errors).
#[tokio::test]
async fn requests_the_parser_refuses_get_4xx_and_the_server_goes_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let many_headers = (0..120).fold(String::new(), |mut all, n| {
        use std::fmt::Write;
        let _ = write!(all, "X-Flood-{n}: {n}\r\n");
        all
    });
    let cases = [
        (
            "bad Content-Length",
            "POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n".to_owned(),
        ),
        (
            "120 headers",
            format!("GET /health HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n"),
        ),
        (
            "100 KB URL",
            format!(
                "GET /health?{} HTTP/1.1\r\nHost: x\r\n\r\n",
                "a".repeat(100_000)
            ),
        ),
    ];
    for (what, request) in cases {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
            .await
            .expect("connect");
        // The server may answer and close before it has read everything sent.
        let _ = stream.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_to_end(&mut answer),
        )
        .await
        .expect("answered, then closed");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 431"),
            "{what}: {answer}"
        );
        assert_eq!(
            app.predict(&json!({ "game_id": "KCA202404100" }))
                .await
                .status,
            200,
            "{what}: still serving"
        );
    }
}
