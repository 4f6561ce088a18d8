//! W3C trace context (`traceparent`, `tracestate`) in and out of carriers: HTTP/2 headers of
//! incoming gRPC and HTTP requests, gRPC metadata of outgoing calls, Kafka record headers.
//! Everything here is a no-op while tracing is off.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::setup::tracing_enabled;

/// The header carrying the W3C trace parent.
pub const TRACEPARENT: &str = "traceparent";
/// The header carrying the W3C vendor trace state.
pub const TRACESTATE: &str = "tracestate";

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The trace context a request's headers carry (empty when none, or tracing is off).
pub fn extract_from_headers(headers: &http::HeaderMap) -> Context {
    if !tracing_enabled() {
        return Context::new();
    }
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    })
}

struct PairsExtractor<'a>(Vec<(&'a str, &'a str)>);

impl Extractor for PairsExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| *value)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| *name).collect()
    }
}

/// The trace context carried by `(name, value)` pairs such as Kafka record headers (values that
/// are not UTF-8 are ignored).
pub fn extract_from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Context {
    let pairs: Vec<(&str, &str)> = pairs
        .into_iter()
        .filter(|(name, _)| {
            name.eq_ignore_ascii_case(TRACEPARENT) || name.eq_ignore_ascii_case(TRACESTATE)
        })
        .filter_map(|(name, value)| Some((name, std::str::from_utf8(value).ok()?)))
        .collect();
    if pairs.is_empty() {
        return Context::new();
    }
    let extractor = PairsExtractor(pairs);
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&extractor))
}

struct PairsInjector(Vec<(String, String)>);

impl Injector for PairsInjector {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// `traceparent` (and `tracestate` when there is one) for `span`'s context; empty when the span
/// is not exported or tracing is off.
pub fn context_pairs(span: &tracing::Span) -> Vec<(String, String)> {
    if !tracing_enabled() {
        return Vec::new();
    }
    let context = span.context();
    let mut injector = PairsInjector(Vec::new());
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut injector)
    });
    injector.0
}

/// A gRPC client interceptor writing the current span's trace context into the request
/// metadata, so the server's spans become its children.
#[derive(Debug, Clone, Copy, Default)]
pub struct InjectTraceContext;

impl tonic::service::Interceptor for InjectTraceContext {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        for (key, value) in context_pairs(&tracing::Span::current()) {
            if let (Ok(key), Ok(value)) = (
                tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
                value.parse(),
            ) {
                request.metadata_mut().insert(key, value);
            }
        }
        Ok(request)
    }
}
