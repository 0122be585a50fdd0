//! The shared tier on a Redis Cluster: three `redis-server --cluster-enabled yes` of the
//! test's own on free loopback ports, joined by `redis-cli --cluster create`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redis::AsyncCommands;
use serde_json::json;

use crate::helpers::{TestApp, game_ids, spawn_app_with};

/// A 3-primary cluster that lives as long as the value.
struct OwnCluster {
    ports: Vec<u16>,
    nodes: Vec<Child>,
    _dir: tempfile::TempDir,
}

/// `count` distinct free loopback ports, held until all are chosen.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("bound").port())
        .collect()
}

impl OwnCluster {
    async fn start() -> Self {
        // Each node needs a client port and a cluster-bus port.
        let ports = free_ports(6);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let nodes = ports
            .chunks(2)
            .map(|pair| {
                Command::new("redis-server")
                    .args(["--port", &pair[0].to_string()])
                    .args(["--cluster-port", &pair[1].to_string()])
                    .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                    .args(["--cluster-enabled", "yes"])
                    .args(["--cluster-config-file", &format!("nodes-{}.conf", pair[0])])
                    .args(["--cluster-node-timeout", "5000"])
                    .current_dir(dir.path())
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("redis-server is installed")
            })
            .collect();
        let cluster = Self {
            ports: ports.chunks(2).map(|pair| pair[0]).collect(),
            nodes,
            _dir: dir,
        };
        for port in &cluster.ports {
            wait_for_ping(*port).await;
        }
        let addresses: Vec<String> = cluster
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let created = tokio::task::spawn_blocking(move || {
            Command::new("redis-cli")
                .args(["--cluster", "create"])
                .args(&addresses)
                .args(["--cluster-replicas", "0", "--cluster-yes"])
                .output()
        })
        .await
        .expect("joined")
        .expect("redis-cli is installed");
        assert!(
            created.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        for port in &cluster.ports {
            cluster.wait_until_ok(*port).await;
        }
        cluster
    }

    fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect()
    }

    /// Waits until the node at `port` sees every slot served.
    async fn wait_until_ok(&self, port: u16) {
        for _ in 0..200 {
            let info: Option<String> = async {
                let mut connection = node(port).await?;
                redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut connection)
                    .await
                    .ok()
            }
            .await;
            if info.is_some_and(|info| info.contains("cluster_state:ok")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the cluster node on {port} never reached cluster_state:ok");
    }

    /// The keys under `prefix` on each node, by SCAN on that node.
    async fn keys_by_node(&self, prefix: &str) -> Vec<Vec<String>> {
        let mut by_node = Vec::new();
        for port in &self.ports {
            let mut connection = node(*port).await.expect("node answers");
            let mut iter: redis::AsyncIter<String> = connection
                .scan_match(format!("{prefix}*"))
                .await
                .expect("scan");
            let mut keys = Vec::new();
            while let Some(key) = iter.next_item().await {
                keys.push(key.expect("key"));
            }
            drop(iter);
            by_node.push(keys);
        }
        by_node
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

async fn node(port: u16) -> Option<redis::aio::MultiplexedConnection> {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .ok()?
        .get_multiplexed_async_connection()
        .await
        .ok()
}

async fn wait_for_ping(port: u16) {
    for _ in 0..200 {
        if node(port).await.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("redis-server on {port} did not start");
}

async fn cluster_app(prefix: &str, nodes: Vec<String>) -> TestApp {
    let prefix = prefix.to_owned();
    spawn_app_with(move |settings| {
        settings.redis.enabled = true;
        settings.redis.key_prefix = prefix;
        settings.redis.cluster_nodes = nodes.into_iter().map(Into::into).collect();
        settings.redis.breaker_failures = 3;
    })
    .await
}

#[tokio::test]
async fn a_redis_cluster_is_shared_by_replicas_and_invalidated_on_every_node() {
    let cluster = OwnCluster::start().await;
    let prefix = "bullpen_cluster_test:";
    let first_replica = cluster_app(prefix, cluster.urls()).await;
    let second_replica = cluster_app(prefix, cluster.urls()).await;

    // Cold keys on one replica: one Redis read and one inference for many requests.
    let cold = json!({ "game_id": "NYA202409280" });
    let replies =
        futures_util::future::join_all((0..16).map(|_| first_replica.predict(&cold))).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(first_replica.inference_calls().await, 1);
    let shared = first_replica.get("/ready").await.body["shared_cache"].clone();
    assert_eq!(shared["misses"], 1, "{shared}");
    assert_eq!(shared["breaker"], "closed", "{shared}");

    let ids: Vec<String> = game_ids(2024, 40, 31)
        .into_iter()
        .filter(|id| id != "NYA202409280")
        .take(30)
        .collect();
    for id in &ids {
        assert_eq!(
            first_replica
                .predict(&json!({ "game_id": id }))
                .await
                .status,
            200
        );
    }
    let scheduled = json!({ "game": { "home": "NYA", "away": "BOS", "date": "2025-04-05" } });
    first_replica.predict(&scheduled).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the writes are behind the answers

    // The keys are spread over the nodes by slot, each with its TTL.
    let by_node = cluster.keys_by_node(prefix).await;
    let total: usize = by_node.iter().map(Vec::len).sum();
    // A prediction for each stored game, the cold one and the scheduled one; the scheduled
    // game's features; the fingerprints of the three model files.
    assert_eq!(total, ids.len() + 6, "{by_node:?}");
    assert!(
        by_node.iter().filter(|keys| !keys.is_empty()).count() >= 2,
        "keys on more than one node: {by_node:?}"
    );
    for (port, keys) in cluster.ports.iter().zip(&by_node) {
        let mut connection = node(*port).await.expect("node answers");
        for key in keys {
            let ttl: i64 = connection.ttl(key).await.expect("ttl");
            let expected = match key.split(':').nth(1) {
                Some("features") => 3590..=3600,
                Some("prediction") => 1790..=1800,
                _ => -1..=-1, // the model fingerprint does not expire
            };
            assert!(expected.contains(&ttl), "{key}: {ttl}");
        }
    }

    // The second replica answers from the cluster without inference, one by one and in a
    // batch (one MGET, split by slot over the nodes).
    for id in &ids[..5] {
        let reply = second_replica.predict(&json!({ "game_id": id })).await;
        assert_eq!(reply.body["cached"], true, "{id}: {}", reply.body);
    }
    let items: Vec<serde_json::Value> = ids.iter().map(|id| json!({ "game_id": id })).collect();
    let batch = second_replica
        .post_json("/api/v1/predict/batch", &json!({ "items": items }))
        .await;
    let results = batch.body["results"].as_array().expect("results");
    assert!(
        results.iter().all(|r| r["prediction"]["cached"] == true),
        "{}",
        batch.body
    );
    assert_eq!(second_replica.inference_calls().await, 0);

    // An invalidation on the first replica removes the keys on every node and the second
    // replica's in-process entries.
    let reply = first_replica
        .post_json(
            "/api/v1/admin/cache/invalidate",
            &json!({ "pattern": "prediction:*" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["shared"]["keys_deleted"], ids.len() + 2);
    assert_eq!(reply.body["shared"]["replicas_notified"], 2);
    let mut left: Vec<String> = cluster.keys_by_node(prefix).await.concat();
    left.sort();
    assert_eq!(
        left,
        vec![
            crate::helpers::scheduled_features_key(prefix),
            format!("{prefix}model:home_win:1"),
            format!("{prefix}model:home_win:2"),
            format!("{prefix}model:home_win:3"),
        ]
    );
    // Gone from the other replica too.
    second_replica
        .computed_again(&json!({ "game_id": ids[0] }), Duration::from_secs(5))
        .await;
    assert_eq!(second_replica.inference_calls().await, 1);
}

#[tokio::test]
async fn a_cluster_that_goes_away_fails_no_request_and_opens_the_breaker() {
    let cluster = OwnCluster::start().await;
    let app = cluster_app("bullpen_cluster_test:", cluster.urls()).await;
    let ids = game_ids(2024, 30, 60);
    for id in &ids[..20] {
        assert_eq!(app.predict(&json!({ "game_id": id })).await.status, 200);
    }
    drop(cluster);
    for id in &ids[20..] {
        let reply = app.predict(&json!({ "game_id": id })).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let shared = app.get("/ready").await.body["shared_cache"].clone();
    assert_eq!(shared["breaker"], "open", "{shared}");
    assert!(shared["errors"].as_u64().expect("errors") >= 3, "{shared}");
}
