//! gRPC server instrumentation: a tower layer recording `rpc.server.call.duration` (RED per
//! method and status) and, while tracing is on, a SERVER span per call continuing the caller's
//! W3C trace context.
//!
//! The duration runs from the request's arrival to the end of the response: for unary calls
//! and streams alike, it is recorded when the `grpc-status` is known — in the response headers
//! for a trailers-only response (an error before any message), else in the trailers that end
//! the body (so a stream's duration is its whole life). A response body dropped before its
//! trailers (the client went away) counts as CANCELLED (1).
//!
//! Label sets are built once per method and status code when the layer is created, from the
//! services' file descriptor sets: recording does not allocate. Paths of no known method are
//! recorded as `rpc_service="_OTHER", rpc_method="_OTHER"` (bounded cardinality).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, Meter};
use pin_project_lite::pin_project;
use prost::Message;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::DURATION_BUCKETS;
use crate::propagation::extract_from_headers;
use crate::setup::tracing_enabled;

/// gRPC status codes as label values, indexed by code.
const CODES: [&str; 17] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];

/// CANCELLED: the client went away before the status was sent.
const CANCELLED: usize = 1;
/// UNKNOWN: the server failed without a status.
const UNKNOWN: usize = 2;

/// Codes that are server errors for span status (OTel semantic conventions for gRPC servers).
fn is_server_error(code: usize) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// One method: its names and its label set per status code.
#[derive(Debug)]
struct MethodLabels {
    service: String,
    method: String,
    span_name: String,
    by_code: Vec<[KeyValue; 4]>,
}

impl MethodLabels {
    fn new(service: &str, method: &str) -> Self {
        let by_code = CODES
            .iter()
            .map(|code| {
                [
                    KeyValue::new("rpc.system", "grpc"),
                    KeyValue::new("rpc.service", service.to_owned()),
                    KeyValue::new("rpc.method", method.to_owned()),
                    KeyValue::new("rpc.grpc.status_code", *code),
                ]
            })
            .collect();
        Self {
            service: service.to_owned(),
            method: method.to_owned(),
            span_name: format!("{service}/{method}"),
            by_code,
        }
    }
}

#[derive(Debug)]
struct Instruments {
    duration: Histogram<f64>,
    methods: HashMap<String, Arc<MethodLabels>>,
    other: Arc<MethodLabels>,
}

impl Instruments {
    fn method(&self, path: &str) -> Arc<MethodLabels> {
        Arc::clone(self.methods.get(path).unwrap_or(&self.other))
    }
}

/// The tower layer for a tonic server (`Server::builder().layer(..)`).
#[derive(Debug, Clone)]
pub struct RpcLayer {
    instruments: Arc<Instruments>,
}

impl RpcLayer {
    /// Instruments calls to every method of the services described by `descriptor_sets`
    /// (encoded `FileDescriptorSet`s, as given to reflection).
    pub fn new(meter: &Meter, descriptor_sets: &[&[u8]]) -> Self {
        let duration = meter
            .f64_histogram("rpc.server.call.duration")
            .with_unit("s")
            .with_description("Duration of gRPC server calls, to the end of the response stream")
            .with_boundaries(DURATION_BUCKETS.to_vec())
            .build();
        let mut methods = HashMap::new();
        for encoded in descriptor_sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*encoded) else {
                continue;
            };
            for file in set.file {
                let package = file.package.unwrap_or_default();
                for service in file.service {
                    let service_name = match (package.as_str(), service.name.as_deref()) {
                        (_, None) => continue,
                        ("", Some(name)) => name.to_owned(),
                        (package, Some(name)) => format!("{package}.{name}"),
                    };
                    for method in service.method {
                        let Some(method) = method.name else { continue };
                        methods.insert(
                            format!("/{service_name}/{method}"),
                            Arc::new(MethodLabels::new(&service_name, &method)),
                        );
                    }
                }
            }
        }
        Self {
            instruments: Arc::new(Instruments {
                duration,
                methods,
                other: Arc::new(MethodLabels::new("_OTHER", "_OTHER")),
            }),
        }
    }
}

impl<S> tower_layer::Layer<S> for RpcLayer {
    type Service = RpcService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            instruments: Arc::clone(&self.instruments),
        }
    }
}

/// The service [`RpcLayer`] wraps around the server's routes.
#[derive(Debug, Clone)]
pub struct RpcService<S> {
    inner: S,
    instruments: Arc<Instruments>,
}

/// The SERVER span of a call, a child of the trace context in the request headers.
fn server_span(method: &MethodLabels, headers: &http::HeaderMap) -> Span {
    let span = tracing::debug_span!(
        "grpc.server",
        otel.name = %method.span_name,
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = %method.service,
        rpc.method = %method.method,
        rpc.grpc.status_code = Empty,
    );
    let _ = span.set_parent(extract_from_headers(headers));
    span
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for RpcService<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<RecordedBody<ResBody>>;
    type Error = S::Error;
    type Future = RpcFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let method = self.instruments.method(request.uri().path());
        let span = if tracing_enabled() {
            server_span(&method, request.headers())
        } else {
            Span::none()
        };
        let inner = span.in_scope(|| self.inner.call(request));
        RpcFuture {
            inner,
            call: Some(Call {
                instruments: Arc::clone(&self.instruments),
                method,
                start: Instant::now(),
                span,
            }),
        }
    }
}

/// One call in flight, recorded once when its status is known.
#[derive(Debug)]
struct Call {
    instruments: Arc<Instruments>,
    method: Arc<MethodLabels>,
    start: Instant,
    span: Span,
}

impl Call {
    fn finish(self, code: usize) {
        let code = code.min(CODES.len() - 1);
        self.instruments.duration.record(
            self.start.elapsed().as_secs_f64(),
            &self.method.by_code[code],
        );
        if !self.span.is_none() {
            self.span.record("rpc.grpc.status_code", code as i64);
            if is_server_error(code) {
                self.span.record("otel.status_code", "ERROR");
            }
        }
    }
}

/// The `grpc-status` in a header map, if there is one.
fn status_in(headers: &http::HeaderMap) -> Option<usize> {
    let value = headers.get("grpc-status")?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(UNKNOWN),
    )
}

pin_project! {
    /// The future of an instrumented call.
    pub struct RpcFuture<F> {
        #[pin]
        inner: F,
        call: Option<Call>,
    }
}

impl<F, ResBody, E> Future for RpcFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<RecordedBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.call.as_ref() {
            Some(call) => {
                let _entered = call.span.enter();
                std::task::ready!(this.inner.poll(cx))
            }
            None => std::task::ready!(this.inner.poll(cx)),
        };
        let call = this.call.take();
        Poll::Ready(match result {
            Ok(response) => {
                let call = match (call, status_in(response.headers())) {
                    // Trailers-only: the status is in the headers, the body is empty.
                    (Some(call), Some(code)) => {
                        call.finish(code);
                        None
                    }
                    (call, _) => call,
                };
                Ok(response.map(|inner| RecordedBody { inner, call }))
            }
            Err(error) => {
                if let Some(call) = call {
                    call.finish(UNKNOWN);
                }
                Err(error)
            }
        })
    }
}

pin_project! {
    /// A response body that records its call when the trailers pass (or when it is dropped
    /// before them).
    pub struct RecordedBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }

    impl<B> PinnedDrop for RecordedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(call) = this.project().call.take() {
                call.finish(CANCELLED);
            }
        }
    }
}

impl<B: Body> Body for RecordedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = match this.call.as_ref() {
            Some(call) => {
                let _entered = call.span.enter();
                this.inner.poll_frame(cx)
            }
            None => this.inner.poll_frame(cx),
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_in)
                    && let Some(call) = this.call.take()
                {
                    call.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.call.take() {
                    call.finish(UNKNOWN);
                }
            }
            Poll::Ready(None) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
