//! Metrics of one service instance: an OpenTelemetry meter provider whose instruments are
//! exposed in the Prometheus text format on `GET /metrics` ([`router`], [`serve`]) and, when the `OTEL_*`
//! variables configure a metrics endpoint, also pushed over OTLP/gRPC every
//! `OTEL_METRIC_EXPORT_INTERVAL` (60 s by default).
//!
//! Each [`Metrics`] has its own provider and Prometheus registry (nothing global), so several
//! service instances in one process (tests) each expose their own series. Names as scraped:
//! dots become underscores, a unit `s` adds `_seconds`, `By` adds `_bytes`, counters end in
//! `_total`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use prometheus::{Encoder, TextEncoder};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tributary_net::{ConnectionLimit, WithActivity, activity_of};
use tributary_security::conn::{Acceptor, tcp_incoming};

use crate::health::Health;
use crate::setup::{EXPORT_TIMEOUT, OtlpConfig, resource};

/// Histogram buckets for durations, in seconds: from 100 µs (a cached registry read) to 10 s.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The meter provider of one service instance and its Prometheus registry.
pub struct Metrics {
    provider: SdkMeterProvider,
    registry: prometheus::Registry,
    meter: Meter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A provider with the Prometheus exporter, plus an OTLP periodic reader when configured
    /// (must run inside the Tokio runtime then). Also registers `process.resident_memory`.
    pub fn new(service_name: &'static str) -> anyhow::Result<Self> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .scope_info_enabled(false)
            .build()?;
        let mut builder = SdkMeterProvider::builder()
            .with_resource(resource(service_name))
            .with_reader(exporter);
        if OtlpConfig::from_env().metrics {
            let otlp = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_timeout(EXPORT_TIMEOUT)
                .build()?;
            builder = builder.with_reader(PeriodicReader::builder(otlp).build());
        }
        let provider = builder.build();
        let meter = provider.meter("tributary");
        meter
            .u64_observable_gauge("process.resident_memory")
            .with_unit("By")
            .with_description("Resident set size of the process")
            .with_callback(|observer| {
                if let Some(bytes) = resident_memory_bytes() {
                    observer.observe(bytes, &[]);
                }
            })
            .build();
        Ok(Self {
            provider,
            registry,
            meter,
        })
    }

    /// The meter instruments are created from.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The current values in the Prometheus text format (0.0.4).
    pub fn encode(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(%error, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }

    /// Exports what is pending (OTLP) and stops the provider, waiting at most `timeout`.
    pub async fn shutdown(&self, timeout: Duration) {
        let provider = self.provider.clone();
        let stopped = tokio::task::spawn_blocking(move || provider.shutdown());
        if tokio::time::timeout(timeout, stopped).await.is_err() {
            tracing::warn!("metrics export did not finish within {timeout:?}");
        }
    }
}

/// The resident set size, from `/proc/self/status` (Linux only).
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Binds the metrics address (port 0 picks one).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the metrics address {addr}"))
}

async fn scrape(State((metrics, _)): State<(Arc<Metrics>, Arc<Health>)>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics.encode(),
    )
}

/// 200 until shutdown begins (Kubernetes' liveness probe).
async fn livez(State((_, health)): State<(Arc<Metrics>, Arc<Health>)>) -> StatusCode {
    if health.is_live() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// 200 while readiness is SERVING, else 503 (Kubernetes' readiness probe: kubelet's gRPC probes
/// cannot speak TLS, so the probes use these plaintext routes).
async fn readyz(State((_, health)): State<(Arc<Metrics>, Arc<Health>)>) -> StatusCode {
    if health.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// The metrics listener's routes: `GET /metrics`, `GET /livez` and `GET /readyz`.
pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .with_state((metrics, health))
}

/// Most connections the metrics listener holds at once: Prometheus, the kubelet's probes and
/// a few people with curl need a handful. They come out of the descriptors every service keeps
/// aside for what is not an API connection ([`tributary_net::fds::RESERVED`]), so the API
/// listeners' caps stay fitted below the open-file limit.
pub const MAX_CONNECTIONS: usize = 64;

/// The metrics listener's connection cap ([`MAX_CONNECTIONS`]) and timeouts, the service's
/// own: a connection whose first request's headers have not arrived `header_read_timeout`
/// after its accept (TLS handshake included) is closed, and so is one with no request in
/// flight for `idle_timeout`. Its open, cap and refused figures are metrics like the API
/// listeners' (`listener="metrics"`).
pub fn connection_limit(
    header_read_timeout: Duration,
    idle_timeout: Option<Duration>,
) -> ConnectionLimit {
    ConnectionLimit::new(
        "metrics",
        MAX_CONNECTIONS,
        Some(header_read_timeout),
        idle_timeout,
    )
}

/// Serves `router` on the connections `listener` accepts, at most `limit`'s cap of them (the
/// others are closed as they are accepted), through `acceptor` (TLS when the metrics listener
/// speaks it), with `header_read_timeout` on every HTTP/1.1 request's headers, until `stop` is
/// cancelled; then ends every connection gracefully.
pub async fn serve(
    listener: TcpListener,
    acceptor: Acceptor,
    limit: ConnectionLimit,
    header_read_timeout: Duration,
    router: Router,
    stop: CancellationToken,
) {
    let admitted = tcp_incoming(listener).filter_map(move |accepted| match accepted {
        // Over the cap: dropped here, which closes it.
        Ok((stream, peer)) => limit.admit(stream).map(|admitted| Ok((admitted, peer))),
        Err(error) => Some(Err(error)),
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut incoming = std::pin::pin!(acceptor.accept_all(admitted));
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => break,
            next = incoming.next() => next,
        };
        let stream = match next {
            Some(Ok(stream)) => stream,
            Some(Err(error)) => {
                tracing::debug!(%error, "cannot serve a metrics connection");
                continue;
            }
            None => break,
        };
        let (builder, watcher) = (Arc::clone(&builder), graceful.watcher());
        // Requests in flight keep the connection from being closed as idle.
        let service =
            TowerToHyperService::new(WithActivity::new(router.clone(), activity_of(&stream)));
        tokio::spawn(async move {
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, "metrics connection ended with an error");
            }
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}
