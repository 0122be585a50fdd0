//! PostgreSQL: its settings, connection pools, migrations, and games as rows.

mod games;
mod settings;

use std::time::Duration;

use bb8_postgres::PostgresConnectionManager;
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::NoTls;

pub use games::{
    COLUMNS as GAME_COLUMNS, GameRow, RowError, TYPES as GAME_TYPES, game_from_row, load_games,
    read_column,
};
pub use settings::DatabaseSettings;

pub type Pool = bb8::Pool<PostgresConnectionManager<NoTls>>;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// A PostgreSQL failure. Messages name the step; the cause is the error's source, so log
/// it with its chain (`telemetry::Chain`). [`DbError::Corrupt`] is a data error: retrying
/// or serving an old answer does not fix it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database.url is not a PostgreSQL URL")]
    Url(#[source] tokio_postgres::Error),
    #[error("PostgreSQL")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL pool")]
    Pool(#[from] bb8::RunError<tokio_postgres::Error>),
    #[error("migrations failed")]
    Migration(#[from] refinery::Error),
    #[error("table {table} holds a row bullpen cannot read")]
    Corrupt {
        table: &'static str,
        #[source]
        source: RowError,
    },
}

impl DbError {
    /// Whether the data is at fault (a row that cannot be decoded), not the connection.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Self::Corrupt { .. })
    }
}

/// A pool for `url`, with the configured size and timeouts; each connection runs with the
/// configured statement timeout. Connections are made on demand, so a pool can be built while
/// PostgreSQL is down and recovers by itself when it comes back.
pub fn pool(settings: &DatabaseSettings, url: &SecretString) -> Result<Pool, DbError> {
    let mut config: tokio_postgres::Config = url.expose_secret().parse().map_err(DbError::Url)?;
    config
        .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .options(format!(
            "-c statement_timeout={}",
            settings.statement_timeout_ms
        ))
        .application_name("bullpen");
    let manager = PostgresConnectionManager::new(config, NoTls);
    Ok(bb8::Pool::builder()
        .max_size(settings.max_connections)
        .min_idle(Some(settings.min_connections))
        .connection_timeout(Duration::from_millis(settings.connect_timeout_ms))
        // Each check-out is probed with an empty query. It costs a round trip (measured:
        // uncached PostgreSQL reads ~15% faster without it), but without it a connection
        // whose backend was killed is handed out before its task notices, and the first
        // request after PostgreSQL returns fails.
        .test_on_check_out(true)
        .build_unchecked(manager))
}

/// The pool for feature reads: `read_url` when set, else the primary.
pub fn read_pool(settings: &DatabaseSettings, primary: &Pool) -> Result<Pool, DbError> {
    if settings.read_url.expose_secret().is_empty() {
        Ok(primary.clone())
    } else {
        pool(settings, &settings.read_url)
    }
}

/// Applies every pending migration in `migrations/`, in order, recording each in
/// `refinery_schema_history`. Returns the versions applied now.
pub async fn migrate(pool: &Pool) -> Result<Vec<u32>, DbError> {
    let mut connection = pool.get().await?;
    let report = embedded::migrations::runner()
        .run_async(&mut *connection)
        .await?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(refinery::Migration::version)
        .collect())
}
