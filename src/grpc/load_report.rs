//! ORCA load reports on gRPC answers (`lb.orca`): the `endpoint-load-metrics-bin` trailer,
//! the serialised xDS `OrcaLoadReport`, as gRPC's `weighted_round_robin` and Envoy read it.
//! [`Reported`] adds it to the trailers every answer ends with; a call refused before a
//! handler ran (headers only) carries none.

use std::pin::Pin;
use std::sync::Arc;
use std::task::ready;

use http_body::{Body, Frame, SizeHint};
use prost::Message;
use tonic::codegen::{Context, Poll, Service, http};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::server::NamedService;

use crate::monitoring::{LoadFigures, ORCA_TRAILER};

/// A gRPC service whose answers carry the load report, when `figures` are given.
#[derive(Debug, Clone)]
pub struct Reported<S> {
    inner: S,
    figures: Option<Arc<LoadFigures>>,
}

impl<S> Reported<S> {
    pub fn new(inner: S, figures: Option<Arc<LoadFigures>>) -> Self {
        Self { inner, figures }
    }
}

impl<S: NamedService> NamedService for Reported<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, R> Service<http::Request<B>> for Reported<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = http::Response<ReportingBody<R>>;
    type Error = S::Error;
    type Future = Answered<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        Answered {
            inner: Box::pin(self.inner.call(request)),
            figures: self.figures.clone(),
        }
    }
}

/// The answer, its body carrying the report.
#[derive(Debug)]
pub struct Answered<F> {
    inner: Pin<Box<F>>,
    figures: Option<Arc<LoadFigures>>,
}

impl<F, R, E> Future for Answered<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = Result<http::Response<ReportingBody<R>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = ready!(self.inner.as_mut().poll(cx))?;
        let report = self.figures.as_ref().and_then(|figures| trailer(figures));
        Poll::Ready(Ok(response.map(|inner| ReportingBody { inner, report })))
    }
}

/// The trailer's value: the report serialised, as binary metadata (base64) carries it.
fn trailer(figures: &LoadFigures) -> Option<http::HeaderValue> {
    let bytes = figures.report().encode_to_vec();
    let mut metadata = MetadataMap::new();
    metadata.insert_bin(ORCA_TRAILER, MetadataValue::from_bytes(&bytes));
    metadata.into_headers().remove(ORCA_TRAILER)
}

/// A response body that adds the report to its trailers.
#[derive(Debug)]
pub struct ReportingBody<B> {
    inner: B,
    report: Option<http::HeaderValue>,
}

impl<B: Body + Unpin> Body for ReportingBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        let Some(Ok(mut frame)) = frame else {
            return Poll::Ready(frame);
        };
        if let Some(trailers) = frame.trailers_mut()
            && let Some(report) = this.report.take()
        {
            trailers.insert(ORCA_TRAILER, report);
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures_util::stream;
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    #[tokio::test]
    async fn the_report_joins_the_trailers_the_answer_ends_with() {
        let figures = LoadFigures::default();
        figures.set(0.5, 0.25, 10.0, 2.0);
        let mut status = http::HeaderMap::new();
        status.insert("grpc-status", http::HeaderValue::from_static("0"));
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = vec![
            Ok(Frame::data(Bytes::from_static(b"answer"))),
            Ok(Frame::trailers(status)),
        ];
        let body = ReportingBody {
            inner: StreamBody::new(stream::iter(frames)),
            report: trailer(&figures),
        };
        let collected = body.collect().await.expect("infallible");
        let trailers = collected.trailers().cloned().expect("trailers");
        assert_eq!(trailers["grpc-status"], "0");
        let mut metadata = MetadataMap::from_headers(trailers);
        let value = metadata
            .remove_bin(ORCA_TRAILER)
            .expect("the report")
            .to_bytes()
            .expect("base64");
        let report = crate::monitoring::OrcaLoadReport::decode(value).expect("the message");
        assert_eq!(report, figures.report());
    }
}
