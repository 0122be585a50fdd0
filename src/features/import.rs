//! `bullpen import`: Retrosheet files into PostgreSQL, then their features.
//!
//! Each file is parsed whole before anything is written, then written in one transaction
//! (binary `COPY` into a temporary table, then an upsert), so a bad row leaves nothing of
//! its file behind and running the import twice changes nothing. Features are computed
//! afterwards over every stored game, by the same code the server uses, and upserted the
//! same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::postgres::{lock_games, upsert_features};
use super::store::EmbeddedStore;
use crate::db::{DbError, Pool, load_games, upsert_games};
use crate::games::{self, DataError, Pitchers};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("importing {path}")]
    Write { path: PathBuf, source: DbError },
    #[error("writing features")]
    Features(#[source] DbError),
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportSummary {
    pub files: usize,
    pub games: usize,
    pub features: usize,
}

/// Imports every `teams-YYYY.csv[.gz]` in `dir`, oldest first, each game with the starters
/// `pitchers` names for it; `progress` hears each file.
pub async fn import_dir(
    pool: &Pool,
    dir: &Path,
    pitchers: &Arc<Pitchers>,
    mut progress: impl FnMut(&Path),
) -> Result<ImportSummary, ImportError> {
    let mut summary = ImportSummary::default();
    for path in games::season_files(dir)? {
        let mut parsed = games::parse_season(&path)?;
        pitchers.attach(&mut parsed);
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        write_games(pool, &parsed, &name)
            .await
            .map_err(|source| ImportError::Write {
                path: path.clone(),
                source,
            })?;
        summary.files += 1;
        summary.games += parsed.len();
        progress(&path);
    }
    summary.features = write_features(pool, pitchers)
        .await
        .map_err(ImportError::Features)?;
    Ok(summary)
}

async fn write_games(pool: &Pool, parsed: &[games::Game], source: &str) -> Result<(), DbError> {
    let mut connection = pool.get().await?;
    let transaction = connection.transaction().await?;
    lock_games(&transaction).await?;
    upsert_games(&transaction, parsed, source).await?;
    transaction.commit().await?;
    Ok(())
}

/// Recomputes the stored spec's features of every stored game (starters' earlier seasons
/// from `pitchers`) and upserts them.
async fn write_features(pool: &Pool, pitchers: &Arc<Pitchers>) -> Result<usize, DbError> {
    let mut connection = pool.get().await?;
    let transaction = connection.transaction().await?;
    lock_games(&transaction).await?;
    let stored = load_games(&transaction, None).await?;
    let store = EmbeddedStore::from_games_and_pitchers(stored, Arc::clone(pitchers), |_| {});
    let written = upsert_features(&transaction, store.games().iter().zip(store.vectors())).await?;
    transaction.commit().await?;
    Ok(written)
}
