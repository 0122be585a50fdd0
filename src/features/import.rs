//! `bullpen import`: Retrosheet files into PostgreSQL, then their features.
//!
//! Each file is parsed whole before anything is written, then written in one transaction
//! (binary `COPY` into a temporary table, then an upsert), so a bad row leaves nothing of
//! its file behind and running the import twice changes nothing. Features are computed
//! afterwards over every stored game, by the same code the server uses, and upserted the
//! same way.

use std::path::{Path, PathBuf};

use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use super::postgres::GAMES_LOCK;
use super::spec::FEATURE_SPEC;
use super::store::EmbeddedStore;
use crate::db::{DbError, Pool, load_games, upsert_games};
use crate::games::{self, DataError};

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

/// Imports every `teams-YYYY.csv[.gz]` in `dir`, oldest first; `progress` hears each file.
pub async fn import_dir(
    pool: &Pool,
    dir: &Path,
    mut progress: impl FnMut(&Path),
) -> Result<ImportSummary, ImportError> {
    let mut summary = ImportSummary::default();
    for path in games::season_files(dir)? {
        let parsed = games::parse_season(&path)?;
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
    summary.features = write_features(pool).await.map_err(ImportError::Features)?;
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

/// Waits for any other writer of games (results posted to a replica, another import).
async fn lock_games(transaction: &tokio_postgres::Transaction<'_>) -> Result<(), DbError> {
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&GAMES_LOCK])
        .await?;
    Ok(())
}

/// Recomputes the current spec's features of every stored game and upserts them.
async fn write_features(pool: &Pool) -> Result<usize, DbError> {
    let mut connection = pool.get().await?;
    let transaction = connection.transaction().await?;
    lock_games(&transaction).await?;
    let stored = load_games(&transaction, None).await?;
    let store = EmbeddedStore::from_games(stored, |_| {});
    transaction
        .batch_execute(
            "CREATE TEMP TABLE features_in (game_id text, feature_version text, features real[]) \
             ON COMMIT DROP",
        )
        .await?;
    let sink = transaction
        .copy_in("COPY features_in (game_id, feature_version, features) FROM STDIN BINARY")
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::TEXT, Type::FLOAT4_ARRAY]);
    pin_mut!(writer);
    for (game, vector) in store.games().iter().zip(store.vectors()) {
        let id = game.id.to_string();
        let values = vector.values().to_vec();
        writer
            .as_mut()
            .write(&[&id, &FEATURE_SPEC.version, &values])
            .await?;
    }
    writer.finish().await?;
    transaction
        .batch_execute(
            "INSERT INTO game_features (game_id, feature_version, features) \
             SELECT game_id, feature_version, features FROM features_in \
             ON CONFLICT (game_id, feature_version) \
             DO UPDATE SET features = EXCLUDED.features, computed_at = now()",
        )
        .await?;
    transaction.commit().await?;
    Ok(store.games().len())
}
