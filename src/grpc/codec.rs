//! How the gRPC service reads and counts calls. The codec is prost's, except that a request
//! that is not a valid protobuf message is the caller's mistake: `INVALID_ARGUMENT`, as HTTP
//! answers 400 to a body it cannot read (gRPC's own libraries say `INTERNAL`, which tells a
//! client the server failed). [`Counted`] counts every call by method and status, including
//! calls refused before a handler runs, such as one whose message cannot be read.

use std::sync::Arc;
use std::time::Instant;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tonic::server::NamedService;
use tonic::{Code, Status};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

use crate::monitoring::{Metrics, Rejection};

/// The codec the generated service uses (`codec_path` in `build.rs`).
#[derive(Debug, Clone)]
pub struct RequestCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for RequestCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for RequestCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder(self.0.decoder())
    }
}

#[derive(Debug, Clone)]
pub struct RequestDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| {
            Status::invalid_argument(format!(
                "the request is not a valid protobuf message of this method: {}",
                status.message()
            ))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// The methods of the service, the only values of the `rpc` label (anything else is
/// `unknown`, so a client cannot grow the metrics).
const METHODS: [&str; 8] = [
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
    "RepositoryModelLoad",
    "RepositoryModelUnload",
];

/// A gRPC service whose every call is counted in `grpc_requests_total` and timed, by method
/// and status: what a handler answered, and what was refused before one ran.
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Counted<S> {
    pub fn new(inner: S, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

impl<S: NamedService> NamedService for Counted<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, R> Service<http::Request<B>> for Counted<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().rsplit('/').next().unwrap_or_default();
        let rpc = METHODS
            .iter()
            .find(|known| **known == method)
            .copied()
            .unwrap_or("unknown");
        let metrics = Arc::clone(&self.metrics);
        let started = Instant::now();
        let answered = self.inner.call(request);
        Box::pin(async move {
            let response = answered.await?;
            // A refusal is a response of headers only, its status among them; an answer
            // sends its status (OK) after the message.
            let code = response
                .headers()
                .get("grpc-status")
                .map_or(Code::Ok, |status| Code::from_bytes(status.as_bytes()));
            metrics.grpc_answered(rpc, code_label(code), started.elapsed().as_secs_f64());
            if let Some(reason) = rejection(code) {
                metrics.rejected(reason);
            }
            Ok(response)
        })
    }
}

fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::NotFound => "NOT_FOUND",
        Code::Unauthenticated => "UNAUTHENTICATED",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::Unavailable => "UNAVAILABLE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        _ => "OTHER",
    }
}

fn rejection(code: Code) -> Option<Rejection> {
    match code {
        Code::Unauthenticated | Code::PermissionDenied => Some(Rejection::Auth),
        Code::ResourceExhausted => Some(Rejection::RateLimit),
        Code::InvalidArgument | Code::NotFound => Some(Rejection::Validation),
        _ => None,
    }
}
