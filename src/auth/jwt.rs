//! JWTs as the alternative bearer: HS256 with a shared secret and/or RS256 with a public key,
//! `exp`, `nbf` and `aud` always checked (`iss` when configured), scopes from the `scope`
//! claim (space-separated, as in OAuth 2) or a `scopes` array.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::scope::Scopes;
use super::settings::JwtSettings;

pub struct JwtVerifier {
    keys: Vec<(Algorithm, DecodingKey)>,
    audience: String,
    issuer: Option<String>,
    leeway_secs: u64,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algorithms: Vec<Algorithm> = self.keys.iter().map(|(alg, _)| *alg).collect();
        f.debug_struct("JwtVerifier")
            .field("algorithms", &algorithms)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JwtSetupError {
    #[error("cannot read auth.jwt.rs256_public_key {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A private key where the public one belongs: a secret in the wrong place, refused
    /// rather than used to verify.
    #[error(
        "auth.jwt.rs256_public_key {path} holds a private key: give the public key only \
         (openssl rsa -in private.pem -pubout -out public.pem), and keep the private key \
         away from the server"
    )]
    PrivateKey { path: std::path::PathBuf },
    #[error("auth.jwt.rs256_public_key {path} is not an RSA public key in PEM: {source}")]
    Key {
        path: std::path::PathBuf,
        source: jsonwebtoken::errors::Error,
    },
}

/// The subject and scopes of a verified token.
#[derive(Debug)]
pub struct VerifiedToken {
    pub subject: String,
    pub scopes: Scopes,
}

#[derive(Deserialize)]
struct Claims {
    /// Required; optional here so that a token without it is refused for that reason, not
    /// as malformed.
    sub: Option<String>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    scopes: Vec<String>,
}

impl JwtVerifier {
    /// `None` when neither an HS256 secret nor an RS256 key is configured.
    pub fn new(settings: &JwtSettings) -> Result<Option<Self>, JwtSetupError> {
        let mut keys = Vec::new();
        let secret = settings.hs256_secret.expose_secret();
        if !secret.is_empty() {
            keys.push((
                Algorithm::HS256,
                DecodingKey::from_secret(secret.as_bytes()),
            ));
        }
        let path = &settings.rs256_public_key;
        if !path.as_os_str().is_empty() {
            let pem = std::fs::read(path).map_err(|source| JwtSetupError::Read {
                path: path.clone(),
                source,
            })?;
            if pem
                .windows(b"PRIVATE KEY-----".len())
                .any(|window| window == b"PRIVATE KEY-----")
            {
                return Err(JwtSetupError::PrivateKey { path: path.clone() });
            }
            let key = DecodingKey::from_rsa_pem(&pem).map_err(|source| JwtSetupError::Key {
                path: path.clone(),
                source,
            })?;
            keys.push((Algorithm::RS256, key));
        }
        if keys.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self {
            keys,
            audience: settings.audience.clone(),
            issuer: (!settings.issuer.is_empty()).then(|| settings.issuer.clone()),
            leeway_secs: settings.leeway_secs,
        }))
    }

    /// Verifies `token`; the error is a reason fit to show the caller.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, &'static str> {
        let header = jsonwebtoken::decode_header(token).map_err(|error| reason(&error))?;
        let (algorithm, key) = self
            .keys
            .iter()
            .find(|(algorithm, _)| *algorithm == header.alg)
            .ok_or("the token's algorithm is not accepted here")?;
        let mut validation = Validation::new(*algorithm);
        validation.set_audience(&[&self.audience]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway_secs;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|error| reason(&error))?;
        let claims = data.claims;
        let subject = claims.sub.ok_or(MISSING_CLAIM)?;
        let scopes = Scopes::known(
            claims
                .scope
                .split_whitespace()
                .chain(claims.scopes.iter().map(String::as_str)),
        );
        Ok(VerifiedToken { subject, scopes })
    }
}

const MISSING_CLAIM: &str = "the token lacks a required claim (exp, aud, sub)";

fn reason(error: &jsonwebtoken::errors::Error) -> &'static str {
    match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
        ErrorKind::InvalidAudience => "the token is meant for another audience",
        ErrorKind::InvalidIssuer => "the token comes from another issuer",
        ErrorKind::InvalidSignature => "the token's signature does not verify",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "the token's algorithm is not accepted here"
        }
        ErrorKind::MissingRequiredClaim(_) => MISSING_CLAIM,
        _ => "the token is malformed",
    }
}
