use std::path::Path;

use bullpen::features::FEATURE_COUNT;
use bullpen::models::{OnnxModel, runtime};

use crate::helpers::{parity, repo_path, store};

const MODEL_DIR: &str = "models/home_win/1";

fn load_model() -> OnnxModel {
    let environment = runtime::environment(Path::new("")).expect("ONNX Runtime loads");
    OnnxModel::load(environment, &repo_path(MODEL_DIR), 1).expect("model loads")
}

#[test]
fn onnx_model_reproduces_the_training_probabilities_from_rust_features() {
    let parity = parity();
    assert!(parity.games.len() >= 5);
    let mut model = load_model();

    let mut rows = Vec::new();
    for game in &parity.games {
        // Serving computes the same features that training saw.
        let (stored, vector) = store().game(game.game_id).expect("game is in the data");
        assert_eq!(stored.season(), 2024);
        assert_eq!(game.features.len(), FEATURE_COUNT);
        for (i, (ours, theirs)) in vector.values().iter().zip(&game.features).enumerate() {
            assert!(
                (ours - theirs).abs() <= 1e-6,
                "{} feature {i}: {ours} v {theirs}",
                game.game_id
            );
        }
        let single = model
            .predict(std::slice::from_ref(vector))
            .expect("inference runs");
        let diff = (f64::from(single[0]) - game.probability).abs();
        assert!(
            diff <= parity.tolerance,
            "{}: {} v {} (diff {diff:e})",
            game.game_id,
            single[0],
            game.probability
        );
        rows.push(*vector);
    }

    // A batch gives the same answers as single rows.
    let batch = model.predict(&rows).expect("batch inference runs");
    for (p, game) in batch.iter().zip(&parity.games) {
        assert!((f64::from(*p) - game.probability).abs() <= parity.tolerance);
    }
}

#[test]
fn the_manifest_names_this_builds_feature_spec_and_training_seasons() {
    let model = load_model();
    let manifest = model.manifest();
    assert_eq!(manifest.name, "home_win");
    assert_eq!(manifest.feature_spec.version, "v1");
    let seasons = manifest.training["seasons"]
        .as_array()
        .expect("seasons listed");
    assert_eq!(
        seasons.first().and_then(serde_json::Value::as_i64),
        Some(2010)
    );
    assert_eq!(
        seasons.last().and_then(serde_json::Value::as_i64),
        Some(2023)
    );
    assert_eq!(manifest.metrics["holdout_season"], 2024);
}

#[test]
fn a_model_with_another_feature_spec_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        repo_path(MODEL_DIR).join("model.onnx"),
        dir.path().join("model.onnx"),
    )
    .expect("copy");
    let manifest =
        std::fs::read_to_string(repo_path(MODEL_DIR).join("manifest.json")).expect("manifest");
    std::fs::write(
        dir.path().join("manifest.json"),
        manifest.replace("\"v1\"", "\"v0\""),
    )
    .expect("write");

    let environment = runtime::environment(Path::new("")).expect("ONNX Runtime loads");
    let error = OnnxModel::load(environment, dir.path(), 1).expect_err("spec mismatch");
    assert_eq!(
        error.to_string(),
        "model home_win@1 expects feature spec v0, but this server computes v1, v2 (each with \
         its own names)"
    );
    // A spec this build computes, with another spec's names, is refused too.
    std::fs::write(
        dir.path().join("manifest.json"),
        manifest.replace("\"v1\"", "\"v2\""),
    )
    .expect("write");
    let error = OnnxModel::load(environment, dir.path(), 1).expect_err("names mismatch");
    assert!(
        error.to_string().contains("expects feature spec v2"),
        "{error}"
    );
}
