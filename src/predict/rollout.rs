//! Rolling out model versions across replicas: routing shared through Redis, so every
//! replica answers a game with the same version.
//!
//! A routing change made on any replica (an operator's `PUT .../routing`, a guard rollback)
//! is stored in Redis under `routing:{model}` and its model name published on the `routing`
//! channel; every replica, the one that made it included, reads the stored routing and
//! applies it, loading from its own `models.dir` any version it names that is not loaded
//! yet. A replica that starts later reads the stored routing of each model before serving.
//! Without Redis, routing is per replica.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::service::PredictService;
use crate::cache::{ROUTING_CHANNEL, RoutingKey, SharedTier};
use crate::models::RoutingState;
use crate::telemetry::Chain;

/// Reads the routing stored in Redis for model `name` and applies it here.
async fn pull(service: &PredictService, shared: &SharedTier, name: &str) {
    let key = shared.key(&RoutingKey(name));
    let Some(bytes) = shared.read(&key).await else {
        return;
    };
    let state: RoutingState = match serde_json::from_slice(&bytes) {
        Ok(state) => state,
        Err(error) => {
            tracing::warn!(model = name, %error, "ignored a stored routing that is not valid");
            return;
        }
    };
    match service.catalog().apply_remote(name, state).await {
        Ok(true) => tracing::info!(model = name, "routing applied from Redis"),
        Ok(false) => {}
        Err(error) => {
            tracing::warn!(model = name, error = %Chain(&error), "cannot apply the shared routing; keeping this replica's");
        }
    }
}

/// Stores a routing this replica set and tells every replica.
async fn push(shared: &SharedTier, name: &str, state: &RoutingState) {
    let key = shared.key(&RoutingKey(name));
    let stored = match serde_json::to_vec(state) {
        Ok(bytes) => shared.set_persistent(&key, bytes).await,
        Err(error) => {
            tracing::error!(model = name, %error, "cannot encode a routing");
            None
        }
    };
    let notified = shared.publish(ROUTING_CHANNEL, name).await;
    if stored.is_none() || notified.is_none() {
        tracing::warn!(
            model = name,
            "Redis did not take the routing; other replicas keep theirs until it does"
        );
    }
}

/// Applies the routing stored for every model, then keeps this replica in step until
/// `stop`: its own changes go to Redis, everyone's come back from it.
pub async fn share_routing(
    service: &PredictService,
    shared: &Arc<SharedTier>,
    stop: &CancellationToken,
    tasks: &TaskTracker,
) {
    let names: Vec<String> = service
        .catalog()
        .snapshot()
        .routes()
        .iter()
        .map(|route| route.name.to_string())
        .collect();
    for name in &names {
        pull(service, shared, name).await;
    }

    // Announcements arrive on the subscription's task; the routing is applied on this one.
    let (announced, mut announcements) = mpsc::unbounded_channel::<String>();
    shared.follow(stop.clone(), ROUTING_CHANNEL, move |name| {
        let _ = announced.send(name);
    });
    let (follower, shared_in) = (service.clone(), Arc::clone(shared));
    tasks.spawn(stop.clone().run_until_cancelled_owned(async move {
        while let Some(name) = announcements.recv().await {
            pull(&follower, &shared_in, &name).await;
        }
    }));

    let mut changes = service.catalog().routing_changes();
    let (service, shared_out) = (service.clone(), Arc::clone(shared));
    tasks.spawn(stop.clone().run_until_cancelled_owned(async move {
        loop {
            match changes.recv().await {
                Ok((name, state)) => push(&shared_out, &name, &state).await,
                // Some changes were missed: push every model's routing as it is now.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let snapshot = service.catalog().snapshot();
                    for route in snapshot.routes() {
                        push(&shared_out, &route.name, &route.state).await;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    }));
}
