//! Who may call a route. Every resource is made by `http::resource` with its [`Access`], so
//! no route exists without one; the route table in `http::configure` is the one place each
//! route's scope is stated. The guard authenticates, then checks the scope, then the rate
//! limit, and adds the `RateLimit-*` headers to what it lets through. Credentials are never
//! logged.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::errors::{ApiError, rate_limit_headers};
use crate::auth::{Decision, Gatekeeper, Principal, Scope};

/// The `api_keys` row of the key that made a request, for the prediction log.
#[derive(Debug, Clone, Copy)]
pub struct KeyId(pub i64);

/// The rate-limit charge of a request priced per item, left by the guard for the handler.
#[derive(Clone)]
pub struct Charge {
    gatekeeper: web::Data<Gatekeeper>,
    principal: Arc<Principal>,
}

impl Charge {
    /// Takes `items` tokens (at least 1): the decision for the `RateLimit-*` headers (none
    /// when the rate limit is off), or 429 `rate_limited`.
    pub async fn items(&self, items: usize) -> Result<Option<Decision>, ApiError> {
        let Some(limiter) = &self.gatekeeper.limiter else {
            return Ok(None);
        };
        let cost = u32::try_from(items).unwrap_or(u32::MAX);
        let decision = limiter
            .check(&self.principal.identity, self.principal.rate, cost)
            .await;
        if decision.allowed {
            Ok(Some(decision))
        } else {
            Err(ApiError::RateLimited(decision))
        }
    }
}

/// Adds the `RateLimit-*` headers of an admitted request's `decision` to its answer.
pub fn insert_rate_limit_headers(decision: &Decision, headers: &mut HeaderMap) {
    rate_limit_headers(decision, |name, value| {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    });
}

#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Health, readiness, the status page and the docs: open unless `auth.open_probes` is
    /// off, then any valid credential; never rate limited.
    Probe,
    /// Needs a credential holding this scope; one rate-limit token per request.
    Needs(Scope),
    /// Needs a credential holding this scope, and costs one rate-limit token per item: the
    /// handler charges through [`Charge`] once it has counted them.
    NeedsPerItem(Scope),
    /// Live traffic and model quality (`/status/data`, `/metrics`): open with
    /// `auth.open_status`, else as `Needs(Predict)`.
    Status,
}

pub async fn guard(
    access: Access,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    // Borrowed from the request, not cloned: a handle shared by the workers would have its
    // count moved between cores on every request.
    let gatekeeper = request
        .app_data::<web::Data<Gatekeeper>>()
        .expect("the Gatekeeper is registered with the app; this is a bug");
    let Some(authenticator) = &gatekeeper.authenticator else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let open = match access {
        Access::Probe => gatekeeper.open_probes,
        Access::Status => gatekeeper.open_status,
        Access::Needs(_) | Access::NeedsPerItem(_) => false,
    };
    if open {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let refuse = |request: ServiceRequest, error: ApiError| {
        Ok(request.error_response(error).map_into_right_body())
    };
    // Two Authorization headers are refused, not resolved: a proxy and the server could
    // each read a different one.
    let mut headers = request.headers().get_all(header::AUTHORIZATION);
    let header = headers.next().map(HeaderValue::as_bytes);
    if headers.next().is_some() {
        return refuse(request, crate::auth::AuthError::Malformed.into());
    }
    let principal = match authenticator.authenticate(header).await {
        Ok(principal) => principal,
        Err(error) => return refuse(request, error.into()),
    };
    let scope = match access {
        Access::Needs(scope) | Access::NeedsPerItem(scope) => scope,
        Access::Status => Scope::Predict,
        Access::Probe => {
            return next
                .call(request)
                .await
                .map(ServiceResponse::map_into_left_body);
        }
    };
    if !principal.scopes.contains(scope) {
        return refuse(request, ApiError::InsufficientScope(scope));
    }
    let decision = match (access, &gatekeeper.limiter) {
        // Charged by the handler, once it has counted the items.
        (Access::NeedsPerItem(_), _) => {
            request.extensions_mut().insert(Charge {
                gatekeeper: gatekeeper.clone(),
                principal: principal.clone(),
            });
            None
        }
        (_, Some(limiter)) => Some(limiter.check(&principal.identity, principal.rate, 1).await),
        (_, None) => None,
    };
    if let Some(decision) = decision
        && !decision.allowed
    {
        return refuse(request, ApiError::RateLimited(decision));
    }
    if let Some(id) = principal.key_id {
        request.extensions_mut().insert(KeyId(id));
    }
    let mut response = next.call(request).await?;
    if let Some(decision) = decision {
        insert_rate_limit_headers(&decision, response.headers_mut());
    }
    Ok(response.map_into_left_body())
}
