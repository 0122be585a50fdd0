//! The store a server reads features from, chosen by `features.store`.

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
