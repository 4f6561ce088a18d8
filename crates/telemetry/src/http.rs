//! HTTP server instrumentation for axum routers: `http.server.request.duration` per method,
//! route template (axum's [`MatchedPath`], e.g. `/schemas/ids/{id}`) and status, recorded when
//! the response head is ready (the API's bodies are complete by then), and, while tracing is
//! on, a SERVER span per request continuing the caller's W3C trace context.
//!
//! Add it with `Router::layer` so it wraps each route (that is where `MatchedPath` is set);
//! requests no route matches are recorded without `http_route`.
//!
//! Per request, the hot path allocates nothing of its own: the route attribute is shared
//! (reference-counted) and remembered by the service wrapping its route, the method and status
//! attributes are static or plain numbers, and no span is created while tracing is off.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, Meter};
use parking_lot::RwLock;
use pin_project_lite::pin_project;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::DURATION_BUCKETS;
use crate::propagation::extract_from_headers;
use crate::setup::tracing_enabled;

#[derive(Debug)]
struct Instruments {
    duration: Histogram<f64>,
    /// Route template -> its attribute (routes are a fixed set, so this stays small).
    routes: RwLock<std::collections::HashMap<String, KeyValue>>,
}

impl Instruments {
    fn route(&self, template: &str) -> KeyValue {
        if let Some(route) = self.routes.read().get(template) {
            return route.clone();
        }
        // Reference-counted, so recording it clones a pointer rather than the text.
        let route = KeyValue::new("http.route", Arc::<str>::from(template));
        self.routes
            .write()
            .insert(template.to_owned(), route.clone());
        route
    }
}

/// The tower layer for an axum router.
#[derive(Debug, Clone)]
pub struct HttpLayer {
    instruments: Arc<Instruments>,
}

impl HttpLayer {
    pub fn new(meter: &Meter) -> Self {
        Self {
            instruments: Arc::new(Instruments {
                duration: meter
                    .f64_histogram("http.server.request.duration")
                    .with_unit("s")
                    .with_description("Duration of HTTP server requests")
                    .with_boundaries(DURATION_BUCKETS.to_vec())
                    .build(),
                routes: RwLock::default(),
            }),
        }
    }
}

impl<S> tower_layer::Layer<S> for HttpLayer {
    type Service = HttpService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HttpService {
            inner,
            instruments: Arc::clone(&self.instruments),
            first_route: Arc::default(),
        }
    }
}

/// The service [`HttpLayer`] wraps around each route.
#[derive(Debug, Clone)]
pub struct HttpService<S> {
    inner: S,
    instruments: Arc<Instruments>,
    /// The attribute of the first route template this service saw. `Router::layer` wraps each
    /// route in a service of its own, so this is nearly always the one asked for, found without
    /// the shared map's lock and hashing.
    first_route: Arc<OnceLock<KeyValue>>,
}

impl<S> HttpService<S> {
    fn route(&self, template: &str) -> KeyValue {
        if let Some(route) = self.first_route.get()
            && route.value.as_str() == template
        {
            return route.clone();
        }
        let route = self.instruments.route(template);
        let _ = self.first_route.set(route.clone());
        route
    }
}

fn method_name(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::PATCH => "PATCH",
        http::Method::OPTIONS => "OPTIONS",
        _ => "_OTHER",
    }
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for HttpService<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = HttpFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let method = method_name(request.method());
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(|matched| self.route(matched.as_str()));
        let span = if tracing_enabled() {
            let template = route.as_ref().map(|r| r.value.as_str());
            let span = tracing::debug_span!(
                "http.server",
                otel.name = %match &template {
                    Some(template) => format!("{method} {template}"),
                    None => method.to_owned(),
                },
                otel.kind = "server",
                otel.status_code = Empty,
                http.request.method = method,
                http.route = template.as_deref(),
                url.path = request.uri().path(),
                http.response.status_code = Empty,
            );
            let _ = span.set_parent(extract_from_headers(request.headers()));
            span
        } else {
            Span::none()
        };
        let inner = span.in_scope(|| self.inner.call(request));
        HttpFuture {
            inner,
            request: Some(Request {
                instruments: Arc::clone(&self.instruments),
                method,
                route,
                start: Instant::now(),
                span,
            }),
        }
    }
}

#[derive(Debug)]
struct Request {
    instruments: Arc<Instruments>,
    method: &'static str,
    route: Option<KeyValue>,
    start: Instant,
    span: Span,
}

pin_project! {
    /// The future of an instrumented request.
    pub struct HttpFuture<F> {
        #[pin]
        inner: F,
        request: Option<Request>,
    }
}

impl<F, ResBody, E> Future for HttpFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.request.as_ref() {
            Some(request) => {
                let _entered = request.span.enter();
                std::task::ready!(this.inner.poll(cx))
            }
            None => std::task::ready!(this.inner.poll(cx)),
        };
        if let Some(request) = this.request.take() {
            let status = match &result {
                Ok(response) => response.status().as_u16(),
                Err(_) => 500,
            };
            let method = KeyValue::new("http.request.method", request.method);
            let status_attribute = KeyValue::new("http.response.status_code", i64::from(status));
            let elapsed = request.start.elapsed().as_secs_f64();
            match request.route {
                Some(route) => request
                    .instruments
                    .duration
                    .record(elapsed, &[method, route, status_attribute]),
                None => request
                    .instruments
                    .duration
                    .record(elapsed, &[method, status_attribute]),
            }
            if !request.span.is_none() {
                request
                    .span
                    .record("http.response.status_code", i64::from(status));
                if status >= 500 {
                    request.span.record("otel.status_code", "ERROR");
                }
            }
        }
        Poll::Ready(result)
    }
}
