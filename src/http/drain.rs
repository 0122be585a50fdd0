//! Draining: the state between SIGTERM and the moment the server stops accepting. While it
//! lasts, `/ready` answers 503 so load balancers and the Kubernetes endpoints controller stop
//! sending, every request is still served, and each response closes its connection so a
//! keep-alive client opens a new one (which the balancer sends to another replica).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;

/// Set once, when shutdown begins; read by `/ready` and on every response.
#[derive(Debug, Clone, Default)]
pub struct Drain(Arc<AtomicBool>);

impl Drain {
    pub fn start(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Wraps every response: while draining, it closes its connection once answered.
    pub fn close_connections<S, B>(
        &self,
        request: ServiceRequest,
        service: &S,
    ) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
    where
        S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let drain = self.clone();
        let answered = service.call(request);
        async move {
            let mut response = answered.await?;
            if drain.is_draining() {
                response
                    .response_mut()
                    .head_mut()
                    .set_connection_type(ConnectionType::Close);
            }
            Ok(response)
        }
    }
}
