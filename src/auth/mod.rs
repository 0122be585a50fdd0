//! Who is calling and what they may do: API keys (random, stored only as SHA-256, in the
//! config file or PostgreSQL), JWTs (HS256/RS256), scopes, and a rate limit per credential
//! that all replicas share through Redis.

pub mod api_key;
mod jwt;
pub mod key_store;
mod rate_limit;
mod scope;
mod settings;

use std::sync::Arc;
use std::time::Duration;

pub use jwt::{JwtSetupError, JwtVerifier};
pub use key_store::{KeyRecord, KeyStore};
pub use rate_limit::{Decision, Leasing, Mode as RateLimitMode, Rate, RateLimiter};
pub use scope::{Scope, ScopeError, Scopes};
pub use settings::{AuthSettings, ConfiguredKey, JwtSettings, KeyStoreKind, RateLimitSettings};

use crate::cache::SharedTier;
use crate::db::{self, DatabaseSettings, DbError};

/// A caller whose credential checked out.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Names the credential in the rate limiter and logs without revealing it: `key:` and
    /// the first 16 hex digits of the key's hash, or `jwt:` and a hash of the subject.
    pub identity: String,
    /// The `api_keys` row, for keys kept in PostgreSQL.
    pub key_id: Option<i64>,
    pub scopes: Scopes,
    pub rate: Rate,
}

/// Why a request was not let in.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("send `Authorization: Bearer <API key or JWT>`")]
    Missing,
    #[error("the Authorization header must be `Bearer <API key or JWT>`")]
    Malformed,
    /// Another scheme than Bearer (`Basic …`): as if no credentials were sent (RFC 6750
    /// §3.1), so the answer is 401 with a bare challenge.
    #[error("only Bearer credentials are accepted: send `Authorization: Bearer <API key or JWT>`")]
    UnsupportedScheme,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("credentials cannot be checked right now")]
    Unavailable(#[source] Arc<DbError>),
}

/// Checks credentials: API keys through a short-lived cache in front of the key store, JWTs
/// by signature and claims.
#[derive(Debug)]
pub struct Authenticator {
    keys: KeyStore,
    /// Key hash → its principal, or why it is refused, for `auth.key_cache_ttl_secs`.
    cache: moka::future::Cache<api_key::KeyHash, Result<Arc<Principal>, &'static str>>,
    jwt: Option<JwtVerifier>,
    default_rate: Rate,
}

impl Authenticator {
    pub fn new(
        keys: KeyStore,
        jwt: Option<JwtVerifier>,
        cache_ttl: Duration,
        default_rate: Rate,
    ) -> Self {
        Self {
            keys,
            cache: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(cache_ttl)
                .build(),
            jwt,
            default_rate,
        }
    }

    /// The caller behind the `Authorization` header value (`None`: no header).
    pub async fn authenticate(&self, header: Option<&[u8]>) -> Result<Arc<Principal>, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let value = std::str::from_utf8(header).map_err(|_| AuthError::Malformed)?;
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(if is_token(scheme) {
                AuthError::UnsupportedScheme
            } else {
                AuthError::Malformed
            });
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Malformed);
        }
        if api_key::looks_like_key(token) {
            self.api_key(token).await
        } else if let Some(jwt) = &self.jwt {
            let verified = jwt.verify(token).map_err(AuthError::Invalid)?;
            let subject_hash = xxhash_rust::xxh3::xxh3_64(verified.subject.as_bytes());
            Ok(Arc::new(Principal {
                identity: format!("jwt:{subject_hash:016x}"),
                key_id: None,
                scopes: verified.scopes,
                rate: self.default_rate,
            }))
        } else {
            Err(AuthError::Invalid(
                "not an API key, and JWTs are not accepted here",
            ))
        }
    }

    /// A key's principal: from the cache (a plain read on the hot path), else from the
    /// store, once for concurrent callers.
    async fn api_key(&self, key: &str) -> Result<Arc<Principal>, AuthError> {
        let hash = api_key::hash(key);
        let found = match self.cache.get(&hash).await {
            Some(found) => found,
            None => self
                .cache
                .try_get_with(hash, async {
                    let record = self.keys.find(&hash).await?;
                    Ok::<_, DbError>(self.principal(&hash, record))
                })
                .await
                .map_err(AuthError::Unavailable)?,
        };
        found.map_err(AuthError::Invalid)
    }

    fn principal(
        &self,
        hash: &api_key::KeyHash,
        record: Option<KeyRecord>,
    ) -> Result<Arc<Principal>, &'static str> {
        let record = record.ok_or("the API key is not known")?;
        if record.revoked {
            return Err("the API key is revoked");
        }
        Ok(Arc::new(Principal {
            identity: format!("key:{}", api_key::hash_hex(&hash[..8])),
            key_id: record.id,
            scopes: record.scopes,
            rate: Rate {
                per_minute: record
                    .rate_per_minute
                    .unwrap_or(self.default_rate.per_minute),
                burst: record.burst.unwrap_or(self.default_rate.burst),
            },
        }))
    }
}

/// Everything the access middleware needs: `None` parts are switched off.
#[derive(Debug)]
pub struct Gatekeeper {
    pub authenticator: Option<Authenticator>,
    pub limiter: Option<RateLimiter>,
    /// Whether `/health`, `/ready` and `/metrics` answer without credentials.
    pub open_probes: bool,
    pub open_status: bool,
}

/// Why the auth settings cannot be made live.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("cannot reach the key store at database.url")]
    KeyStore(#[source] DbError),
    #[error(transparent)]
    Jwt(#[from] JwtSetupError),
}

impl Gatekeeper {
    /// The auth and rate-limit settings made live; with auth off, says so loudly. The rate
    /// limit is shared through `shared` (Redis) when there is one.
    pub fn new(
        auth: &AuthSettings,
        limits: &RateLimitSettings,
        database: &DatabaseSettings,
        shared: Option<&Arc<SharedTier>>,
    ) -> Result<Self, AuthSetupError> {
        if !auth.enabled {
            tracing::warn!(
                "AUTH IS OFF: anyone who reaches this port may call every endpoint, admin \
                 included; set auth.enabled = true (BULLPEN_ENV=production refuses to start \
                 without it)"
            );
            return Ok(Self {
                authenticator: None,
                limiter: None,
                open_probes: true,
                open_status: true,
            });
        }
        if auth.jwt.hs256_secret_is_short() {
            tracing::warn!(
                "auth.jwt.hs256_secret is shorter than {} bytes: tokens signed with it can be \
                 forged by brute force (BULLPEN_ENV=production refuses to start with it)",
                settings::MIN_HS256_SECRET
            );
        }
        let keys = match auth.key_store {
            KeyStoreKind::Config => KeyStore::from_config(&auth.keys),
            KeyStoreKind::Postgres => {
                KeyStore::Postgres(db::pool(database).map_err(AuthSetupError::KeyStore)?)
            }
        };
        let jwt = JwtVerifier::new(&auth.jwt)?;
        let limiter = limits
            .enabled
            .then(|| RateLimiter::new(shared.cloned(), limits.replicas, limits.leasing()));
        tracing::info!(
            key_store = ?auth.key_store,
            jwt = jwt.is_some(),
            rate_limit = limiter.is_some(),
            shared_rate_limit = limiter.is_some() && shared.is_some(),
            "auth on"
        );
        Ok(Self {
            authenticator: Some(Authenticator::new(
                keys,
                jwt,
                Duration::from_secs(auth.key_cache_ttl_secs),
                limits.default_rate(),
            )),
            limiter,
            open_probes: auth.open_probes,
            open_status: auth.open_status,
        })
    }
}

/// Whether `scheme` is an HTTP authentication scheme name (an RFC 9110 token).
fn is_token(scheme: &str) -> bool {
    !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
