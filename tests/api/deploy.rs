//! The settings the Kubernetes manifests ship (deploy/k8s) are settings bullpen accepts: the
//! cluster config file, the production one on top, and every `BULLPEN_*` variable the
//! manifests set. A misspelt key or variable fails here, not in a cluster.

use std::collections::BTreeSet;
use std::process::Command;

use crate::helpers::repo_path;

/// Every `BULLPEN_*` variable name the manifest at `path` sets.
fn variables_in(path: &str) -> BTreeSet<String> {
    std::fs::read_to_string(repo_path(path))
        .expect(path)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- name: "))
        .filter(|name| name.starts_with("BULLPEN_"))
        .map(str::to_owned)
        .collect()
}

/// Runs `bullpen features spec` (which loads and validates the settings first) with the
/// config folder `dir` and `env`; its stderr when it fails.
fn load_settings(dir: &std::path::Path, env: &[(&str, &str)]) -> Result<(), String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bullpen"));
    command
        .args([
            "--config-dir",
            dir.to_str().expect("path"),
            "features",
            "spec",
        ])
        .env_remove("BULLPEN_ENV");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("bullpen runs");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn the_cluster_config_and_every_variable_the_manifests_set_are_valid_settings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = |from: &str, to: &str| {
        std::fs::copy(repo_path(from), dir.path().join(to)).expect(from);
    };
    copy("deploy/k8s/base/config/default.toml", "default.toml");
    // The base and local overlay: the cluster file alone.
    load_settings(dir.path(), &[]).expect("the base config loads");

    copy(
        "deploy/k8s/overlays/production/config/production.toml",
        "production.toml",
    );
    let production = [
        ("BULLPEN_ENV", "production"),
        (
            "BULLPEN__DATABASE__URL",
            "postgres://app:0123abcd@bullpen-db-rw:5432/bullpen",
        ),
        (
            "BULLPEN__DATABASE__READ_URL",
            "postgres://app:0123abcd@bullpen-db-ro:5432/bullpen",
        ),
        (
            "BULLPEN__REDIS__CLUSTER_NODES",
            "redis://:ab12@redis-cluster-0.redis-cluster:6379,redis://:ab12@redis-cluster-1.redis-cluster:6379",
        ),
        ("BULLPEN__REDIS__URL", "redis://redis:6379"),
        (
            "BULLPEN__AUTH__JWT__HS256_SECRET",
            "0123456789abcdef0123456789abcdef",
        ),
    ];
    load_settings(dir.path(), &production).expect("the production config loads");

    let set: BTreeSet<String> = production.iter().map(|(k, _)| (*k).to_owned()).collect();
    for manifest in [
        "deploy/k8s/base/deployment.yaml",
        "deploy/k8s/overlays/production/deployment-patch.yaml",
        "deploy/k8s/overlays/production/import-job.yaml",
    ] {
        let named = variables_in(manifest);
        assert!(!named.is_empty(), "{manifest} sets no BULLPEN_ variable");
        let untested: Vec<&String> = named.difference(&set).collect();
        assert!(
            untested.is_empty(),
            "{manifest} sets {untested:?}, which this test does not load"
        );
    }

    // And the check can fail: a variable naming no setting is refused.
    let mut misspelt = production.to_vec();
    misspelt.push(("BULLPEN__REDIS__CLUSTERNODES", "redis://x:6379"));
    let refused = load_settings(dir.path(), &misspelt).expect_err("an unknown key");
    assert!(refused.contains("clusternodes"), "{refused}");
}
