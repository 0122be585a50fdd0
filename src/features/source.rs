//! The store a server reads features from, chosen by `features.store`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;

use super::live::{IngestError, LiveStore};
use super::lookup::{Decided, GameFeatures};
use super::postgres::PostgresStore;
use super::results::{Ingested, ResultBody};
use super::spec::FeatureVector;
use super::store::{EmbeddedStore, FeatureStore, StoreError};
use crate::games::{Game, GameId, Starters, TeamCode};

#[derive(Debug, Clone)]
pub enum FeatureSource {
    Embedded(Arc<LiveStore>),
    Postgres(PostgresStore),
}

impl FeatureSource {
    /// The games as this replica knows them now.
    pub async fn view(&self) -> Result<Arc<EmbeddedStore>, StoreError> {
        match self {
            Self::Embedded(live) => Ok(Arc::clone(&live.current())),
            Self::Postgres(store) => store.view().await,
        }
    }

    /// The games as this replica knows them now, without waiting: `None` while the
    /// PostgreSQL view is not built yet.
    pub fn loaded(&self) -> Option<Arc<EmbeddedStore>> {
        match self {
            Self::Embedded(live) => Some(Arc::clone(&live.current())),
            Self::Postgres(store) => store.loaded(),
        }
    }

    /// Whether `view` is still the games this replica knows: no result, correction or
    /// refresh since [`FeatureSource::loaded`] gave it. Takes no reference, so readers on
    /// every worker do not contend.
    pub fn is_loaded(&self, view: &Arc<EmbeddedStore>) -> bool {
        match self {
            Self::Embedded(live) => Arc::ptr_eq(&live.current(), view),
            Self::Postgres(store) => store.is_loaded(view),
        }
    }

    /// The digest of every game this replica knows before `date`
    /// ([`EmbeddedStore::history_before`]): what the features of a game on `date` are
    /// computed from, and part of their cache key.
    pub async fn history_before(&self, date: NaiveDate) -> Result<u64, StoreError> {
        match self {
            Self::Embedded(live) => Ok(live.current().history_before(date)),
            Self::Postgres(store) => Ok(store.view().await?.history_before(date)),
        }
    }

    /// The games known on `date`, stored and ingested.
    pub async fn games_on(&self, date: NaiveDate) -> Result<Vec<Game>, StoreError> {
        Ok(self.view().await?.games_on(date).to_vec())
    }

    /// Applies final results: in memory and the journal (embedded), or in PostgreSQL with
    /// their features (postgres). Nothing of a refused set is applied.
    pub async fn ingest(
        &self,
        results: Vec<ResultBody>,
        correct: bool,
        today: NaiveDate,
    ) -> Result<Ingested, IngestError> {
        match self {
            Self::Embedded(live) => {
                let live = Arc::clone(live);
                tokio::task::spawn_blocking(move || live.ingest(&results, correct, today))
                    .await
                    .map_err(|_| IngestError::Interrupted)?
            }
            Self::Postgres(store) => store.ingest(&results, correct, today).await,
        }
    }

    /// Brings this replica's view up to the store (PostgreSQL: when `games_revision`
    /// moved); the earliest date whose later games' features changed, if any did.
    pub async fn refresh(&self) -> Result<Option<NaiveDate>, StoreError> {
        match self {
            Self::Embedded(_) => Ok(None),
            Self::Postgres(store) => store.refresh().await,
        }
    }

    /// The decided result of each of `ids` the store holds: who the visitors were, and
    /// whether the home team won (ties are left out).
    pub async fn decided(&self, ids: &[GameId]) -> Result<HashMap<GameId, Decided>, StoreError> {
        match self {
            Self::Embedded(live) => {
                let store = live.current();
                Ok(ids
                    .iter()
                    .filter_map(|id| {
                        let (game, _) = store.game(*id)?;
                        let decided = Decided {
                            away: game.away.team,
                            home_won: game.home_win()?,
                        };
                        Some((*id, decided))
                    })
                    .collect())
            }
            Self::Postgres(store) => store.decided(ids).await,
        }
    }
}

impl FeatureStore for FeatureSource {
    async fn game(&self, id: GameId) -> Result<Option<GameFeatures>, StoreError> {
        match self {
            Self::Embedded(live) => FeatureStore::game(live.current().as_ref(), id).await,
            Self::Postgres(store) => store.game(id).await,
        }
    }

    async fn scheduled(
        &self,
        home: TeamCode,
        away: TeamCode,
        date: NaiveDate,
        starters: Starters,
    ) -> Result<FeatureVector, StoreError> {
        match self {
            Self::Embedded(live) => Ok(live
                .current()
                .scheduled_features(home, away, date, starters)?),
            Self::Postgres(store) => store.scheduled(home, away, date, starters).await,
        }
    }
}
