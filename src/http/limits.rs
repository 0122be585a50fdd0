//! Limits on the request head, below the parser's own. actix-web reads heads of up to 96
//! headers, 128 KiB in all and a URI of up to 64 KiB, and answers a head beyond those itself
//! (400 or 431, no body, nothing bullpen can shape). Anything it reads is checked here against
//! tighter, configured limits and refused with a problem body: 414 `uri_too_long`, 431
//! `headers_too_large`.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use futures_util::future::Either;

use super::errors::ApiError;
use super::settings::ServerSettings;

#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    uri_bytes: usize,
    headers: usize,
    header_bytes: usize,
}

impl HeadLimits {
    pub fn new(settings: &ServerSettings) -> Self {
        Self {
            uri_bytes: settings.max_uri_bytes,
            headers: settings.max_headers,
            header_bytes: settings.max_header_bytes,
        }
    }

    fn check(&self, request: &ServiceRequest) -> Result<(), ApiError> {
        let uri = request.path().len() + request.query_string().len();
        if uri > self.uri_bytes {
            return Err(ApiError::UriTooLong {
                limit: self.uri_bytes,
            });
        }
        let headers = request.headers();
        if headers.len() > self.headers {
            return Err(ApiError::HeadersTooLarge(format!(
                "the request has {} headers; the limit is {}",
                headers.len(),
                self.headers
            )));
        }
        let bytes: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if bytes > self.header_bytes {
            return Err(ApiError::HeadersTooLarge(format!(
                "the headers hold {bytes} bytes; the limit is {}",
                self.header_bytes
            )));
        }
        Ok(())
    }

    /// Wraps every request: one over a limit is refused before any route sees it.
    pub fn enforce<S, B>(
        &self,
        request: ServiceRequest,
        service: &S,
    ) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
    where
        S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        match self.check(&request) {
            Ok(()) => Either::Left(service.call(request)),
            Err(refused) => Either::Right(std::future::ready(Err(refused.into()))),
        }
    }
}
