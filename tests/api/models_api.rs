use bullpen::features::{FEATURE_SPEC, FEATURE_SPEC_V2};
use serde_json::json;

use crate::helpers::{repo_path, spawn_app};

#[tokio::test]
async fn models_lists_every_version_with_its_manifest() {
    let app = spawn_app().await;
    let reply = app.get("/api/v1/models").await;
    assert_eq!(reply.status, 200);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("models/home_win/1/manifest.json")).expect("manifest"),
    )
    .expect("json");
    let fingerprint = reply.body["models"][0]["fingerprint"].clone();
    assert_eq!(
        fingerprint.as_str().map(str::len),
        Some(32),
        "XXH3-128 in hex"
    );
    // Version 2 (the logistic regression) is loaded beside it, without traffic.
    let second = reply.body["models"][1].clone();
    assert_eq!(
        (
            &second["version"],
            &second["routing_weight"],
            &second["state"]
        ),
        (&json!("2"), &json!(0), &json!("ready"))
    );
    // Version 3 reads the starters too (feature spec `v2`), also without traffic.
    let third = reply.body["models"][2].clone();
    assert_eq!(
        (
            &third["version"],
            &third["routing_weight"],
            &third["feature_spec"]["version"],
            &third["feature_spec"]["names"],
        ),
        (
            &json!("3"),
            &json!(0),
            &json!("v2"),
            &json!(FEATURE_SPEC_V2.names)
        )
    );
    assert_eq!(
        reply.body,
        json!({
            "default": "home_win",
            "models": [{
                "name": "home_win",
                "version": "1",
                "state": "ready",
                "routing_weight": 100,
                "shadow": false,
                "fingerprint": fingerprint,
                "created_at": manifest["created_at"],
                "feature_spec": { "version": "v1", "names": FEATURE_SPEC.names },
                "input": "input",
                "output": "probabilities",
                "training": manifest["training"],
                "metrics": manifest["metrics"],
                "inference_calls": 0,
                "rows_inferred": 0,
            }, second, third],
            "failed": [],
        })
    );
}
