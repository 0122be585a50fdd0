//! Errors as the API shows them: RFC 9457 problem details with a stable `code` from one
//! table, and the request id. Every error the HTTP layer can return is an [`ApiError`]; its
//! mapping to a code is one exhaustive match, so a new variant forces a decision.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use super::request_id;
use crate::auth::{AuthError, Decision, Scope};
use crate::cache::KeyPatternError;
use crate::features::{IngestError, PlanError, ScheduleError, StoreError};
use crate::models::{CatalogError, InferenceError, RegistryError, ResolveError};
use crate::predict::{PredictError, RequestError};
use crate::telemetry::Chain;

macro_rules! error_codes {
    ($($variant:ident => $status:ident, $code:literal, $title:literal;)*) => {
        /// Every error code the API returns, with its status and title.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode { $($variant),* }

        impl ErrorCode {
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant),*];

            pub fn status(self) -> StatusCode {
                match self { $(Self::$variant => StatusCode::$status),* }
            }

            pub fn code(self) -> &'static str {
                match self { $(Self::$variant => $code),* }
            }

            pub fn title(self) -> &'static str {
                match self { $(Self::$variant => $title),* }
            }
        }
    };
}

error_codes! {
    MalformedJson => BAD_REQUEST, "malformed_json", "The body is not valid JSON";
    UnknownField => BAD_REQUEST, "unknown_field", "The body has a field this endpoint does not take";
    InvalidBody => BAD_REQUEST, "invalid_body", "The body does not have the expected shape";
    InvalidRequest => BAD_REQUEST, "invalid_request", "The request is incomplete or contradictory";
    InvalidQuery => BAD_REQUEST, "invalid_query", "The query string is not valid";
    InvalidGameId => BAD_REQUEST, "invalid_game_id", "Not a game id";
    InvalidTeam => BAD_REQUEST, "invalid_team", "Not a team code";
    InvalidPitcher => BAD_REQUEST, "invalid_pitcher", "Not a Retrosheet pitcher id";
    InvalidDate => BAD_REQUEST, "invalid_date", "Not a date";
    InvalidModel => BAD_REQUEST, "invalid_model", "Not a model reference";
    InvalidOdds => UNPROCESSABLE_ENTITY, "invalid_odds", "The odds are not odds";
    InvalidPattern => BAD_REQUEST, "invalid_pattern", "Not a cache key pattern";
    InvalidMatchup => UNPROCESSABLE_ENTITY, "invalid_matchup", "The teams cannot play each other";
    DateOutOfRange => UNPROCESSABLE_ENTITY, "date_out_of_range", "The date is outside the data";
    BatchEmpty => UNPROCESSABLE_ENTITY, "batch_empty", "The batch has no items";
    InvalidResult => UNPROCESSABLE_ENTITY, "invalid_result", "A result is incomplete or impossible";
    ResultConflict => CONFLICT, "result_conflict", "The game is final with another result";
    BatchTooLarge => UNPROCESSABLE_ENTITY, "batch_too_large", "The batch has too many items";
    PayloadTooLarge => PAYLOAD_TOO_LARGE, "payload_too_large", "The body is too large";
    UriTooLong => URI_TOO_LONG, "uri_too_long", "The URI is too long";
    HeadersTooLarge => REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", "The request headers are too many or too large";
    UnsupportedMediaType => UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "The body must be application/json";
    MissingCredentials => UNAUTHORIZED, "missing_credentials", "Credentials are required";
    MalformedCredentials => BAD_REQUEST, "malformed_credentials", "The Authorization header is malformed, or sent more than once";
    InvalidCredentials => UNAUTHORIZED, "invalid_credentials", "The credentials are not valid";
    InsufficientScope => FORBIDDEN, "insufficient_scope", "The credentials do not allow this";
    RateLimited => TOO_MANY_REQUESTS, "rate_limited", "Too many requests for this credential";
    GameNotFound => NOT_FOUND, "game_not_found", "No such game";
    GameMismatch => UNPROCESSABLE_ENTITY, "game_mismatch", "The data has another game under this number";
    UnknownTeam => NOT_FOUND, "unknown_team", "No such team in the data";
    UnknownPitcher => UNPROCESSABLE_ENTITY, "unknown_pitcher", "No such pitcher in the data";
    ModelNotFound => NOT_FOUND, "model_not_found", "No such model";
    ModelVersionNotFound => NOT_FOUND, "model_version_not_found", "No such model version";
    ModelFilesNotFound => NOT_FOUND, "model_files_not_found", "No model files for this version in models.dir";
    ModelSpecMismatch => UNPROCESSABLE_ENTITY, "model_spec_mismatch", "The model does not fit the features this server computes";
    ModelInvalid => UNPROCESSABLE_ENTITY, "model_invalid", "The model files cannot be loaded";
    ModelInUse => CONFLICT, "model_in_use", "The version is in use";
    InvalidRouting => UNPROCESSABLE_ENTITY, "invalid_routing", "The routing cannot be applied";
    RouteNotFound => NOT_FOUND, "not_found", "No such endpoint";
    MethodNotAllowed => METHOD_NOT_ALLOWED, "method_not_allowed", "The endpoint does not take this method";
    Overloaded => SERVICE_UNAVAILABLE, "overloaded", "Too much work in flight; retry shortly";
    RequestTimeout => SERVICE_UNAVAILABLE, "request_timeout", "The request took too long";
    Unavailable => SERVICE_UNAVAILABLE, "unavailable", "The service is shutting down";
    AuthUnavailable => SERVICE_UNAVAILABLE, "auth_unavailable", "Credentials cannot be checked; retry shortly";
    StoreUnavailable => SERVICE_UNAVAILABLE, "feature_store_unavailable", "The feature store cannot be read; retry shortly";
    JournalUnavailable => SERVICE_UNAVAILABLE, "journal_unavailable", "The results journal cannot be written; nothing was applied";
    InferenceFailed => INTERNAL_SERVER_ERROR, "inference_failed", "The model could not be run";
    Internal => INTERNAL_SERVER_ERROR, "internal", "Something went wrong inside the server";
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    UnknownField(String),
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("the body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the URI is longer than the limit of {limit} bytes")]
    UriTooLong { limit: usize },
    #[error("{0}")]
    HeadersTooLarge(String),
    #[error("send the body with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("a batch needs at least one item")]
    BatchEmpty,
    #[error("a batch holds at most {limit} items; this one has {items}")]
    BatchTooLarge { limit: usize, items: usize },
    #[error("no endpoint {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("too many requests are in flight")]
    Overloaded,
    #[error("the request did not finish within {0} ms")]
    RequestTimeout(u64),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("this endpoint needs the `{0}` scope")]
    InsufficientScope(Scope),
    #[error("the rate limit of this credential is spent; retry in {} s", .0.retry_after_secs)]
    RateLimited(Decision),
    #[error(transparent)]
    Pattern(#[from] KeyPatternError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Predict(#[from] PredictError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// Boxed: the model admin routes are rare, and every other answer carries its size.
    #[error(transparent)]
    Catalog(Box<CatalogError>),
    #[error("models.dir cannot be scanned")]
    Rescan(#[source] RegistryError),
    #[error("the body names {body}, the Bullpen-Model-Version header pins {header}")]
    ConflictingVersion { body: String, header: String },
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        Self::Catalog(Box::new(error))
    }
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::MalformedJson(_) => ErrorCode::MalformedJson,
            Self::UnknownField(_) => ErrorCode::UnknownField,
            // Only the Open Inference Protocol sends feature rows.
            Self::InvalidBody(_) | Self::Predict(PredictError::Shape { .. }) => {
                ErrorCode::InvalidBody
            }
            Self::InvalidQuery(_) => ErrorCode::InvalidQuery,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::UriTooLong { .. } => ErrorCode::UriTooLong,
            Self::HeadersTooLarge(_) => ErrorCode::HeadersTooLarge,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::BatchEmpty => ErrorCode::BatchEmpty,
            Self::BatchTooLarge { .. } => ErrorCode::BatchTooLarge,
            Self::RouteNotFound { .. } => ErrorCode::RouteNotFound,
            Self::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Self::Overloaded
            | Self::Predict(PredictError::Inference(InferenceError::Overloaded)) => {
                ErrorCode::Overloaded
            }
            Self::RequestTimeout(_) => ErrorCode::RequestTimeout,
            Self::Auth(AuthError::Missing | AuthError::UnsupportedScheme) => {
                ErrorCode::MissingCredentials
            }
            Self::Auth(AuthError::Malformed) => ErrorCode::MalformedCredentials,
            Self::Auth(AuthError::Invalid(_)) => ErrorCode::InvalidCredentials,
            Self::Auth(AuthError::Unavailable(_)) => ErrorCode::AuthUnavailable,
            Self::InsufficientScope(_) => ErrorCode::InsufficientScope,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::Pattern(_) => ErrorCode::InvalidPattern,
            Self::Request(
                RequestError::BothGames
                | RequestError::NoGame
                | RequestError::Number(_)
                | RequestError::StartersOfStoredGame,
            )
            | Self::ConflictingVersion { .. } => ErrorCode::InvalidRequest,
            Self::Request(RequestError::GameId(_)) => ErrorCode::InvalidGameId,
            Self::Request(RequestError::Team(_)) => ErrorCode::InvalidTeam,
            Self::Request(RequestError::Pitcher(_)) => ErrorCode::InvalidPitcher,
            Self::Request(RequestError::Date(_)) => ErrorCode::InvalidDate,
            Self::Request(RequestError::Model(_)) => ErrorCode::InvalidModel,
            Self::Request(RequestError::Odds(_)) => ErrorCode::InvalidOdds,
            Self::Predict(PredictError::GameNotFound(_)) => ErrorCode::GameNotFound,
            Self::Predict(PredictError::GameMismatch { .. }) => ErrorCode::GameMismatch,
            Self::Predict(PredictError::Schedule(ScheduleError::UnknownTeam(_))) => {
                ErrorCode::UnknownTeam
            }
            Self::Predict(PredictError::Schedule(ScheduleError::UnknownPitcher(_))) => {
                ErrorCode::UnknownPitcher
            }
            Self::Predict(PredictError::Schedule(ScheduleError::SameTeam(_))) => {
                ErrorCode::InvalidMatchup
            }
            Self::Predict(PredictError::Schedule(
                ScheduleError::BeforeData { .. }
                | ScheduleError::AfterHorizon { .. }
                | ScheduleError::RetiredCode { .. },
            )) => ErrorCode::DateOutOfRange,
            Self::Predict(PredictError::Model(ResolveError::UnknownModel(_))) => {
                ErrorCode::ModelNotFound
            }
            Self::Predict(PredictError::Model(ResolveError::UnknownVersion { .. })) => {
                ErrorCode::ModelVersionNotFound
            }
            Self::Predict(PredictError::StoreUnavailable(_)) => ErrorCode::StoreUnavailable,
            Self::Predict(PredictError::CorruptData(_)) | Self::Rescan(_) => ErrorCode::Internal,
            Self::Predict(PredictError::Inference(InferenceError::Stopped)) => {
                ErrorCode::Unavailable
            }
            Self::Predict(PredictError::Inference(InferenceError::Failed(_))) => {
                ErrorCode::InferenceFailed
            }
            Self::Catalog(error) => match error.as_ref() {
                CatalogError::FilesNotFound { .. } => ErrorCode::ModelFilesNotFound,
                CatalogError::Load { .. } if error.is_spec_mismatch() => {
                    ErrorCode::ModelSpecMismatch
                }
                CatalogError::Load { .. } => ErrorCode::ModelInvalid,
                CatalogError::Resolve(ResolveError::UnknownModel(_)) => ErrorCode::ModelNotFound,
                CatalogError::Resolve(ResolveError::UnknownVersion { .. }) => {
                    ErrorCode::ModelVersionNotFound
                }
                CatalogError::InUse { .. } => ErrorCode::ModelInUse,
                CatalogError::Routing(_) => ErrorCode::InvalidRouting,
            },
            Self::Ingest(error) => match error {
                IngestError::Plan(PlanError::Empty) => ErrorCode::BatchEmpty,
                IngestError::Plan(PlanError::TooMany { .. }) => ErrorCode::BatchTooLarge,
                IngestError::Plan(PlanError::Invalid(_)) => ErrorCode::InvalidResult,
                IngestError::Plan(PlanError::Conflict { .. }) => ErrorCode::ResultConflict,
                IngestError::Journal(_) => ErrorCode::JournalUnavailable,
                IngestError::Store(StoreError::Unavailable(_)) => ErrorCode::StoreUnavailable,
                IngestError::Store(_) => ErrorCode::Internal,
                IngestError::Interrupted => ErrorCode::Unavailable,
            },
        }
    }

    /// The detail shown to clients: the message, except for failures inside the server,
    /// whose cause chain goes to the log (once, here, where it becomes an answer) and never
    /// to the client.
    fn detail(&self) -> String {
        let logged = |what: &str| {
            tracing::error!(error = %Chain(self), "{what}");
            format!("{what}; the error is logged with the request id")
        };
        match self.code() {
            ErrorCode::InferenceFailed => logged("the model could not be run"),
            ErrorCode::StoreUnavailable => logged("the feature store cannot be read"),
            ErrorCode::JournalUnavailable => logged("the results journal cannot be written"),
            ErrorCode::AuthUnavailable => logged("the key store cannot be read"),
            ErrorCode::Internal => logged("the server failed to answer"),
            // An operator (scope `admin`) loading a model needs the reason, cause included.
            ErrorCode::ModelInvalid | ErrorCode::ModelSpecMismatch => Chain(self).to_string(),
            _ => self.to_string(),
        }
    }

    /// The problem object, also used for the items of a batch.
    pub fn problem(&self) -> Problem {
        let code = self.code();
        Problem {
            kind: format!("urn:bullpen:error:{}", code.code()),
            title: code.title(),
            status: code.status().as_u16(),
            detail: self.detail(),
            code: code.code(),
            request_id: request_id::current(),
        }
    }
}

/// RFC 9457 problem details, with bullpen's `code` and `request_id` extensions.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The problem schema of the OpenAPI document: `code` is one of [`ErrorCode::ALL`], so a
/// client can switch on it and the document lists every code there is.
impl utoipa::PartialSchema for Problem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let string = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        ObjectBuilder::new()
            .description(Some(
                "An error as RFC 9457 problem details (application/problem+json), with a stable code.",
            ))
            .property(
                "type",
                string("`urn:bullpen:error:` and the code").examples([serde_json::json!(
                    "urn:bullpen:error:game_not_found"
                )]),
            )
            .required("type")
            .property("title", string("The code's title, the same for every occurrence"))
            .required("title")
            .property(
                "status",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(400))
                    .maximum(Some(599)),
            )
            .required("status")
            .property("detail", string("What was wrong with this request"))
            .required("detail")
            .property(
                "code",
                string("The stable error code").enum_values(Some(
                    ErrorCode::ALL.iter().map(|code| code.code()),
                )),
            )
            .required("code")
            .property(
                "request_id",
                string("The request's `X-Request-Id`, when it has one"),
            )
            .into()
    }
}

impl utoipa::ToSchema for Problem {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        // RFC 6750: how to authenticate, and what went wrong.
        let challenge = match self {
            Self::Auth(AuthError::Missing | AuthError::UnsupportedScheme) => {
                Some(r#"Bearer realm="bullpen""#.to_owned())
            }
            Self::Auth(AuthError::Malformed) => {
                Some(r#"Bearer realm="bullpen", error="invalid_request""#.to_owned())
            }
            Self::Auth(AuthError::Invalid(_)) => {
                Some(r#"Bearer realm="bullpen", error="invalid_token""#.to_owned())
            }
            Self::InsufficientScope(scope) => Some(format!(
                r#"Bearer realm="bullpen", error="insufficient_scope", scope="{scope}""#
            )),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        if let Self::RateLimited(decision) = self {
            response.insert_header((header::RETRY_AFTER, decision.retry_after_secs));
            rate_limit_headers(decision, |name, value| {
                response.insert_header((name, value));
            });
        }
        response.json(self.problem())
    }
}

/// Writes the `RateLimit-*` headers (draft-ietf-httpapi-ratelimit-headers) of `decision`.
pub fn rate_limit_headers(decision: &Decision, mut insert: impl FnMut(&'static str, u64)) {
    insert("ratelimit-limit", u64::from(decision.limit));
    insert("ratelimit-remaining", u64::from(decision.remaining));
    insert("ratelimit-reset", decision.reset_secs);
}

/// Classifies a JSON body error: syntax, an unknown field, or the wrong shape.
pub fn from_serde(error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let message = error.to_string();
    match error.classify() {
        Category::Data if message.starts_with("unknown field") => ApiError::UnknownField(message),
        Category::Data => ApiError::InvalidBody(message),
        Category::Syntax | Category::Eof | Category::Io => ApiError::MalformedJson(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_every_one_is_a_client_or_server_error() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.code()), "duplicate code {}", code.code());
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }
}
