//! Load reports to balancers: HAProxy's agent check (`lb.agent_port`) answers a weight while
//! the replica serves, and `drain` from the moment a SIGTERM drain begins.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use crate::helpers::{eventually, free_port, spawn_app, spawn_app_with};
use crate::process::{ServerProcess, metric};

/// What the agent on `port` answers one connection: a line, then the connection closes.
async fn agent(port: u16) -> String {
    let mut connection = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the agent listens");
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), connection.read_to_string(&mut line))
        .await
        .expect("the agent closes the connection")
        .expect("a line");
    line
}

fn weight(line: &str) -> Option<u8> {
    line.strip_prefix("up ")?.strip_suffix("%\n")?.parse().ok()
}

#[tokio::test]
async fn the_agent_reports_a_weight_then_drain_from_the_sigterm() {
    let port = free_port();
    let mut server = ServerProcess::start(&[
        ("BULLPEN__LB__AGENT_PORT", port.to_string()),
        ("BULLPEN__SERVER__DRAIN_SECS", "2".to_owned()),
    ]);
    let line = agent(port).await;
    assert!(
        weight(&line).is_some_and(|weight| (1..=100).contains(&weight)),
        "{line:?}"
    );
    // Worked out every second, and exported.
    let exported = eventually("the weight exported", Duration::from_secs(5), || async {
        metric(&server.address, "bullpen_lb_weight_percent")
            .await
            .filter(|weight| *weight > 0.0)
    })
    .await;
    assert!(exported <= 100.0, "{exported}");

    let sent_at = server.send_sigterm();
    loop {
        let line = agent(port).await;
        if line == "drain\n" {
            break;
        }
        assert!(weight(&line).is_some(), "{line:?}");
        assert!(
            sent_at.elapsed() < Duration::from_millis(500),
            "still {line:?} {:?} after the SIGTERM",
            sent_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained_after = sent_at.elapsed();
    assert!(
        drained_after < Duration::from_millis(500),
        "{drained_after:?}"
    );
    let (status, _) = server
        .wait_exit(Instant::now(), Duration::from_secs(15))
        .expect("the process exits");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn orca_reports_ride_on_every_answer_when_asked_for() {
    let off = spawn_app().await;
    assert_eq!(
        off.get("/health").await.header("endpoint-load-metrics"),
        None
    );

    let app = spawn_app_with(|settings| settings.lb.orca = true).await;
    for path in [
        "/health",
        "/api/v1/games/BAL202403280/prediction",
        "/nowhere",
    ] {
        let reply = app.get(path).await;
        let report = reply
            .header("endpoint-load-metrics")
            .unwrap_or_else(|| panic!("{path}: no report"));
        let pairs: Vec<(&str, f64)> = report
            .strip_prefix("TEXT ")
            .expect("ORCA's text form")
            .split(", ")
            .map(|pair| {
                let (name, value) = pair.split_once('=').expect("name=value");
                (name, value.parse().expect("a number"))
            })
            .collect();
        let names: Vec<&str> = pairs.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "cpu_utilization",
                "rps_fractional",
                "application_utilization",
                "named_metrics.inference_queue"
            ],
            "{report}"
        );
        assert!(pairs.iter().all(|(_, value)| *value >= 0.0), "{report}");
    }
}
