//! The store a server reads features from, chosen by `features.store`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;

use super::lookup::GameFeatures;
use super::postgres::PostgresStore;
use super::spec::FeatureVector;
use super::store::{EmbeddedStore, FeatureStore, StoreError};
use crate::games::{GameId, TeamCode};

#[derive(Debug, Clone)]
pub enum FeatureSource {
    Embedded(Arc<EmbeddedStore>),
    Postgres(PostgresStore),
}

impl FeatureSource {
    /// Whether the home team won each of `ids` that has a decided result in the store.
    pub async fn home_wins(&self, ids: &[GameId]) -> Result<HashMap<GameId, bool>, StoreError> {
        match self {
            Self::Embedded(store) => Ok(ids
                .iter()
                .filter_map(|id| Some((*id, store.game(*id)?.0.home_win()?)))
                .collect()),
            Self::Postgres(store) => store.home_wins(ids).await,
        }
    }
}

impl FeatureStore for FeatureSource {
    async fn game(&self, id: GameId) -> Result<Option<GameFeatures>, StoreError> {
        match self {
            Self::Embedded(store) => FeatureStore::game(store.as_ref(), id).await,
            Self::Postgres(store) => store.game(id).await,
        }
    }

    async fn scheduled(
        &self,
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
    ) -> Result<FeatureVector, StoreError> {
        match self {
            Self::Embedded(store) => {
                FeatureStore::scheduled(store.as_ref(), home, away, date).await
            }
            Self::Postgres(store) => store.scheduled(home, away, date).await,
        }
    }
}
