//! Observability shared by the tributary services, one way for both:
//!
//! - [`init`]: the process-wide `tracing` subscriber (text or JSON logs, JSON lines carrying
//!   `trace_id`/`span_id`; the `audit` target always as JSON lines), and, only when the
//!   standard `OTEL_*` variables ask for it, an
//!   OpenTelemetry tracer provider exporting over OTLP/gRPC. With no OTLP endpoint configured
//!   nothing is exported, no exporter thread exists and the spans below are never created.
//! - [`metrics::Metrics`]: a meter provider per service instance with a Prometheus exporter
//!   (served by [`metrics::serve`] on `--metrics-addr`) plus an OTLP periodic reader when
//!   configured.
//! - [`grpc::RpcLayer`] and [`http::HttpLayer`]: server instrumentation (RED histograms and
//!   server spans continuing the caller's W3C trace context).
//! - [`propagation`]: W3C `traceparent`/`tracestate` in and out of gRPC metadata and Kafka
//!   record headers.
//! - [`health::Health`]: `grpc.health.v1` readiness, liveness and one status per dependency.
//! - [`reflection::services`]: gRPC reflection listing just the services a process serves.
//! - [`shutdown_signal`]: SIGTERM or Ctrl-C.
//! - [`correlation`]: the ids that tie an internal error answered to a client to its log line.
//!
//! Span conventions: every exported span declares `otel.kind` (and `otel.name` when the
//! callsite name is not the semantic-convention name). Such spans are created at DEBUG level, so
//! the log output (filtered by `RUST_LOG`, `info` by default) never pays for them; the
//! OpenTelemetry layer accepts them at any level when tracing is on.

pub mod correlation;
pub mod grpc;
pub mod health;
pub mod http;
pub mod metrics;
pub mod propagation;
pub mod reflection;
mod setup;

pub use setup::{AUDIT_TARGET, LogFormat, OtlpConfig, Telemetry, init, tracing_enabled};

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
