//! What a hostile client tries, and what must hold whatever it sends.

use reqwest::Method;

use crate::helpers::spawn_app;

async fn scrape(app: &crate::helpers::TestApp) -> String {
    app.client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("scrape body")
}

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
    scrape(&app).await;
    let before = scrape(&app).await;
    for n in 1..=1000 {
        let answer = send(n).await.expect("sent");
        assert!(answer.status().is_client_error(), "{}", answer.status());
    }
    let after = scrape(&app).await;
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
