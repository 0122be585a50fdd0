//! Who may call a route. Every resource is made by `http::resource` with its [`Access`], so
//! no route exists without one; the route table in `http::configure` is the one place each
//! route's scope is stated. The guard authenticates, then checks the scope, then the rate
//! limit, and adds the `RateLimit-*` headers to what it lets through. Credentials are never
//! logged.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::errors::{ApiError, rate_limit_headers};
use crate::auth::{Gatekeeper, Scope};

/// The `api_keys` row of the key that made a request, for the prediction log.
#[derive(Debug, Clone, Copy)]
pub struct KeyId(pub i64);

#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Health, readiness and metrics: open unless `auth.open_probes` is off, then any valid
    /// credential; never rate limited.
    Probe,
    /// Needs a credential holding this scope.
    Needs(Scope),
    /// The status page's numbers: open with `auth.open_status`, else as `Needs(Predict)`.
    Status,
}

pub async fn guard(
    access: Access,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let gatekeeper = request
        .app_data::<web::Data<Gatekeeper>>()
        .expect("the Gatekeeper is registered with the app; this is a bug")
        .clone();
    let Some(authenticator) = &gatekeeper.authenticator else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let open = match access {
        Access::Probe => gatekeeper.open_probes,
        Access::Status => gatekeeper.open_status,
        Access::Needs(_) => false,
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
        Access::Needs(scope) => scope,
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
    let decision = match &gatekeeper.limiter {
        Some(limiter) => Some(limiter.check(&principal.identity, principal.rate).await),
        None => None,
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
        rate_limit_headers(&decision, |name, value| {
            response
                .headers_mut()
                .insert(HeaderName::from_static(name), HeaderValue::from(value));
        });
    }
    Ok(response.map_into_left_body())
}
