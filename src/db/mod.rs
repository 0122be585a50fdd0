//! PostgreSQL: its settings, connection pools, migrations, and games as rows.

mod games;
mod settings;

use std::time::Duration;

use bb8::ManageConnection;
use bb8_postgres::PostgresConnectionManager;
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::NoTls;

pub use games::{
    COLUMNS as GAME_COLUMNS, RowError, game_from_row, load_games, load_games_since, read_column,
    upsert_games,
};
pub use settings::DatabaseSettings;

pub type Pool = bb8::Pool<Manager>;

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
    #[error("migrations not started, nothing was changed: {0}")]
    MigrationBlocked(String),
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

/// What a pool's connections must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The primary, which takes writes: a connection to a member that has become a replica
    /// (a failover or switchover behind a multi-host `database.url`, a proxy, a moved DNS
    /// name) is dropped at check-out and a new one made, which
    /// `target_session_attrs=read-write` sends to the new primary.
    Primary,
    /// Any member: reads (`database.read_url`).
    Any,
}

/// bb8-postgres's connections, with a check-out probe that also refuses a replica where the
/// primary is wanted.
#[derive(Debug)]
pub struct Manager {
    connections: PostgresConnectionManager<NoTls>,
    /// Sent on every check-out: one round trip either way. `pg_current_wal_lsn()` fails on a
    /// replica ("recovery is in progress") and writes nothing on the primary.
    probe: &'static str,
}

impl ManageConnection for Manager {
    type Connection = tokio_postgres::Client;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<Self::Connection, Self::Error> {
        self.connections.connect().await
    }

    async fn is_valid(&self, client: &mut Self::Connection) -> Result<(), Self::Error> {
        client.simple_query(self.probe).await.map(|_| ())
    }

    fn has_broken(&self, client: &mut Self::Connection) -> bool {
        self.connections.has_broken(client)
    }
}

/// The pool on the primary, `database.url`: every write, and reads when `read_url` is empty.
pub fn pool(settings: &DatabaseSettings) -> Result<Pool, DbError> {
    connect(settings, &settings.url, Role::Primary)
}

/// A pool for `url`, with the configured size and timeouts; each connection runs with the
/// configured statement timeout. Connections are made on demand, so a pool can be built while
/// PostgreSQL is down and recovers by itself when it comes back.
fn connect(settings: &DatabaseSettings, url: &SecretString, role: Role) -> Result<Pool, DbError> {
    let mut config: tokio_postgres::Config = url.expose_secret().parse().map_err(DbError::Url)?;
    config
        .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .options(format!(
            "-c statement_timeout={}",
            settings.statement_timeout_ms
        ))
        .application_name("bullpen");
    let manager = Manager {
        connections: PostgresConnectionManager::new(config, NoTls),
        probe: match role {
            Role::Primary => "SELECT pg_current_wal_lsn()",
            Role::Any => "",
        },
    };
    Ok(bb8::Pool::builder()
        .max_size(settings.max_connections)
        .min_idle(Some(settings.min_connections))
        .connection_timeout(Duration::from_millis(settings.connect_timeout_ms))
        // Each check-out is probed (`Manager::probe`). It costs a round trip (measured:
        // uncached PostgreSQL reads ~15% faster without it), but without it a connection
        // whose backend was killed is handed out before its task notices, and the first
        // request after PostgreSQL returns fails; and a primary pool would keep writing to
        // a member that is no longer the primary.
        .test_on_check_out(true)
        .build_unchecked(manager))
}

/// The pool for feature reads: `read_url` when set, else the primary.
pub fn read_pool(settings: &DatabaseSettings, primary: &Pool) -> Result<Pool, DbError> {
    if settings.read_url.expose_secret().is_empty() {
        Ok(primary.clone())
    } else {
        connect(settings, &settings.read_url, Role::Any)
    }
}

/// `url` without its password, for messages: `database `bullpen` on 127.0.0.1:5432`.
pub fn describe(url: &SecretString) -> String {
    let Ok(config) = url.expose_secret().parse::<tokio_postgres::Config>() else {
        return "database.url (not a PostgreSQL URL)".to_owned();
    };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    format!(
        "database `{}` on {}",
        config.get_dbname().unwrap_or("(default)"),
        hosts.join(",")
    )
}

/// Connects once, directly (no pool, whose time-out hides the cause): `Ok` when PostgreSQL
/// accepts the connection, else its own words, e.g. `database "x" does not exist`.
pub async fn check_connection(
    settings: &DatabaseSettings,
    url: &SecretString,
) -> Result<(), DbError> {
    let mut config: tokio_postgres::Config = url.expose_secret().parse().map_err(DbError::Url)?;
    config.connect_timeout(Duration::from_millis(settings.connect_timeout_ms));
    let (client, connection) = config.connect(NoTls).await?;
    drop(client);
    // The client is gone, so the connection ends; its result says nothing new.
    let _ = connection.await;
    Ok(())
}

/// The latest migration this build carries.
pub fn expected_schema_version() -> u32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(refinery::Migration::version)
        .max()
        .unwrap_or(0)
}

/// What the database holds of what serving needs: its schema version (`None` before the
/// first migration) and whether `games` has rows (`None` when the table is missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaState {
    pub version: Option<u32>,
    pub has_games: Option<bool>,
}

/// Reads [`SchemaState`]; `Err` only when PostgreSQL cannot be asked.
pub async fn schema_state(pool: &Pool) -> Result<SchemaState, DbError> {
    let client = pool.get().await?;
    let version = schema_version(&client).await?;
    let has_games = match client
        .query_one("SELECT EXISTS (SELECT 1 FROM games)", &[])
        .await
    {
        Ok(row) => Some(row.try_get::<_, bool>(0)?),
        Err(error) if missing_table(&error) => None,
        Err(error) => return Err(error.into()),
    };
    Ok(SchemaState { version, has_games })
}

/// Refuses, before any migration runs, an upgrade that would fail on the data: V2 makes
/// active key names unique, which a V1 database may break (V1 allowed two active keys with
/// one name). Which keys to revoke is the operator's call, so the message lists them.
async fn check_upgrade(client: &tokio_postgres::Client) -> Result<(), DbError> {
    if schema_version(client).await? != Some(1) {
        return Ok(());
    }
    let duplicates = client
        .query(
            "SELECT name, array_agg(id ORDER BY id) FROM api_keys WHERE revoked_at IS NULL \
             GROUP BY name HAVING count(*) > 1 ORDER BY name",
            &[],
        )
        .await?;
    if duplicates.is_empty() {
        return Ok(());
    }
    let mut listed = Vec::with_capacity(duplicates.len());
    for row in &duplicates {
        let name: String = row.try_get(0)?;
        let ids: Vec<i64> = row.try_get(1)?;
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        listed.push(format!("`{name}` (ids {})", ids.join(", ")));
    }
    Err(DbError::MigrationBlocked(format!(
        "migration V2 makes active API key names unique, and these names have more than one \
         active key: {}. Revoke all but one of each (`UPDATE api_keys SET revoked_at = now() \
         WHERE id IN (...)`), then migrate again",
        listed.join("; ")
    )))
}

/// The latest migration applied, `None` before the first.
async fn schema_version(client: &tokio_postgres::Client) -> Result<Option<u32>, DbError> {
    match client
        .query_one("SELECT max(version) FROM refinery_schema_history", &[])
        .await
    {
        Ok(row) => Ok(row
            .try_get::<_, Option<i32>>(0)?
            .and_then(|v| u32::try_from(v).ok())),
        Err(error) if missing_table(&error) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

fn missing_table(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
}

/// Applies every pending migration in `migrations/`, in order, recording each in
/// `refinery_schema_history`. Returns the versions applied now.
pub async fn migrate(pool: &Pool) -> Result<Vec<u32>, DbError> {
    let mut connection = pool.get().await?;
    check_upgrade(&connection).await?;
    let report = embedded::migrations::runner()
        .run_async(&mut *connection)
        .await?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(refinery::Migration::version)
        .collect())
}
