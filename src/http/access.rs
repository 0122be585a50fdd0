//! Who may call a route. Every resource is made by [`resource`] with its [`Access`], so no
//! route exists without one; the route table in `http::configure` is the one place each
//! route's scope is stated. The middleware authenticates, then checks the scope, then the
//! rate limit, and adds the `RateLimit-*` headers to what it lets through. Credentials are
//! never logged.

use std::sync::{Arc, OnceLock, RwLock};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage, Resource, web};
use prometheus::{Histogram, IntCounter};

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
}

/// The route pattern of the resource that took a request (`/api/v1/predict`), the label of
/// its request metrics, with the metric handles of that label once resolved (so counting a
/// request needs no label lookup).
#[derive(Debug, Clone)]
pub struct Route {
    pub pattern: Arc<str>,
    pub handles: Arc<OnceLock<RouteHandles>>,
}

#[derive(Debug)]
pub struct RouteHandles {
    pub duration: Histogram,
    /// `(method, status)` → requests counter, for the answers seen so far.
    pub requests: RwLock<Vec<(Method, StatusCode, IntCounter)>>,
}

/// A resource at `path` under `scope` with its access rule; other methods get a 405
/// problem, not an empty body.
pub fn resource(
    scope: &str,
    path: &str,
    access: Access,
) -> Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let route = Route {
        pattern: format!("{scope}{path}").into(),
        handles: Arc::default(),
    };
    web::resource(path)
        .default_service(web::to(super::method_not_allowed))
        .wrap(from_fn(move |request, next| {
            guard(access, route.clone(), request, next)
        }))
}

async fn guard(
    access: Access,
    route: Route,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    request.extensions_mut().insert(route);
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
    if matches!(access, Access::Probe) && gatekeeper.open_probes {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let refuse = |request: ServiceRequest, error: ApiError| {
        Ok(request.error_response(error).map_into_right_body())
    };
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let principal = match authenticator.authenticate(header).await {
        Ok(principal) => principal,
        Err(error) => return refuse(request, error.into()),
    };
    let Access::Needs(scope) = access else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body);
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
