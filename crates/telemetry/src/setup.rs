//! The process-wide setup: log subscriber, OTLP configuration from the environment, tracer
//! provider, and their bounded shutdown.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Event, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, filter};

/// The log target of audit lines (authorization decisions and changes): written as JSON lines
/// whatever `--log-format` says, and never filtered out by `RUST_LOG`.
pub const AUDIT_TARGET: &str = "audit";
const AUDIT_OFF: &str = "audit=off";

/// How long an OTLP export may take before it is abandoned (also bounds shutdown).
pub(crate) const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether the OpenTelemetry tracing layer is installed (set once by [`init`]).
static TRACING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported. Hot paths check this before doing any tracing work
/// (extracting or injecting trace context).
#[inline]
pub fn tracing_enabled() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What the standard `OTEL_*` environment variables ask to export over OTLP/gRPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OtlpConfig {
    pub traces: bool,
    pub metrics: bool,
}

impl OtlpConfig {
    /// Reads `OTEL_SDK_DISABLED`, `OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT` and `OTEL_{TRACES,METRICS}_EXPORTER`
    /// (`none` turns a signal off).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| get(name).is_some_and(|v| !v.trim().is_empty());
        let is = |name: &str, value: &str| {
            get(name).is_some_and(|v| v.trim().eq_ignore_ascii_case(value))
        };
        if is("OTEL_SDK_DISABLED", "true") {
            return Self::default();
        }
        let any = set("OTEL_EXPORTER_OTLP_ENDPOINT");
        Self {
            traces: (any || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
                && !is("OTEL_TRACES_EXPORTER", "none"),
            metrics: (any || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
                && !is("OTEL_METRICS_EXPORTER", "none"),
        }
    }
}

/// The resource describing this process: `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` when
/// given, else `service.name = default_service_name`.
pub(crate) fn resource(default_service_name: &'static str) -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let builder = Resource::builder();
    if named {
        builder.build()
    } else {
        builder.with_service_name(default_service_name).build()
    }
}

/// The process's telemetry, to be shut down (flushed) before exit.
#[derive(Debug)]
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
}

/// Installs the global subscriber: logs (`RUST_LOG`, else `default_filter`) as text or JSON,
/// and, when `OTEL_*` configures a traces endpoint, the OpenTelemetry layer exporting spans in
/// batches over OTLP/gRPC with the W3C TraceContext propagator. Must run inside the Tokio
/// runtime (the OTLP channel lives on it). Later calls install nothing.
pub fn init(service_name: &'static str, format: LogFormat, default_filter: &str) -> Telemetry {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Audit lines have a layer of their own (below): always on, always JSON.
    let filter = match AUDIT_OFF.parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let fmt_layer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_target(true)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(JsonWithTraceIds)
            .with_filter(filter)
            .boxed(),
    };

    let config = OtlpConfig::from_env();
    let mut tracer_provider = None;
    let mut setup_error = None;
    if config.traces {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_timeout(EXPORT_TIMEOUT)
            .build()
        {
            Ok(exporter) => {
                tracer_provider = Some(
                    SdkTracerProvider::builder()
                        .with_resource(resource(service_name))
                        .with_batch_exporter(exporter)
                        .build(),
                );
            }
            Err(error) => setup_error = Some(error.to_string()),
        }
    }
    let otel_layer = tracer_provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("tributary"))
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_filter(
                filter::filter_fn(exported).with_max_level_hint(filter::LevelFilter::DEBUG),
            )
    });
    let audit_layer = tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(JsonWithTraceIds)
        .with_filter(filter::Targets::new().with_target(AUDIT_TARGET, tracing::Level::INFO));
    let installed = tracing_subscriber::registry()
        .with(fmt_layer)
        .with(audit_layer)
        .with(otel_layer)
        .try_init()
        .is_ok();
    if installed && tracer_provider.is_some() {
        TRACING.store(true, Ordering::Relaxed);
        tracing::info!(service_name, "exporting traces over OTLP");
    }
    if let Some(error) = setup_error {
        tracing::error!(%error, "cannot create the OTLP span exporter; traces are not exported");
    }
    if !installed {
        tracer_provider = None;
    }
    Telemetry { tracer_provider }
}

/// What the OpenTelemetry layer sees: spans that declare `otel.kind` (DEBUG and above), other
/// spans at INFO and above (so parents across tasks stay connected), and WARN/ERROR events
/// (as span events).
fn exported(metadata: &tracing::Metadata<'_>) -> bool {
    if metadata.is_span() {
        metadata.fields().field("otel.kind").is_some() || *metadata.level() <= tracing::Level::INFO
    } else {
        *metadata.level() <= tracing::Level::WARN
    }
}

impl Telemetry {
    /// Flushes and stops the tracer provider, waiting at most `timeout`.
    pub async fn shutdown(self, timeout: Duration) {
        let Some(provider) = self.tracer_provider else {
            return;
        };
        TRACING.store(false, Ordering::Relaxed);
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown());
        match tokio::time::timeout(timeout, flushed).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "span export at shutdown failed"),
            Ok(Err(_)) | Err(_) => {
                tracing::warn!("span export did not finish within {timeout:?}; spans dropped")
            }
        }
    }
}

/// The trace and span id of the innermost exported span around the current one, if any.
pub(crate) fn current_trace_ids() -> Option<(String, String)> {
    if !tracing_enabled() {
        return None;
    }
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        (
            span_context.trace_id().to_string(),
            span_context.span_id().to_string(),
        )
    })
}

/// JSON lines: `timestamp`, `level`, `target`, the event's fields, the current span (`span`:
/// its name and fields) and, inside a traced request, `trace_id` and `span_id`.
struct JsonWithTraceIds;

impl<S, N> FormatEvent<S, N> for JsonWithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = serde_json::Map::new();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.insert("timestamp".into(), timestamp.into());
        let metadata = event.metadata();
        line.insert("level".into(), metadata.level().as_str().into());
        line.insert("target".into(), metadata.target().into());
        event.record(&mut JsonVisitor(&mut line));
        if let Some(span) = ctx.lookup_current() {
            let mut current = serde_json::Map::new();
            current.insert("name".into(), span.name().into());
            if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                && let Ok(serde_json::Value::Object(fields)) =
                    serde_json::from_str::<serde_json::Value>(fields)
            {
                current.extend(fields);
            }
            line.insert("span".into(), current.into());
        }
        if let Some((trace_id, span_id)) = current_trace_ids() {
            line.insert("trace_id".into(), trace_id.into());
            line.insert("span_id".into(), span_id.into());
        }
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// Collects an event's fields into a JSON object.
struct JsonVisitor<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> OtlpConfig {
        OtlpConfig::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn otlp_is_off_unless_an_endpoint_is_configured() {
        assert_eq!(config(&[]), OtlpConfig::default());
        assert_eq!(
            config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")]),
            OtlpConfig {
                traces: true,
                metrics: true
            }
        );
        assert_eq!(
            config(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317")]),
            OtlpConfig {
                traces: true,
                metrics: false
            }
        );
        assert_eq!(
            config(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_METRICS_EXPORTER", "none")
            ]),
            OtlpConfig {
                traces: true,
                metrics: false
            }
        );
        assert_eq!(
            config(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_SDK_DISABLED", "TRUE")
            ]),
            OtlpConfig::default()
        );
        assert_eq!(
            config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]),
            OtlpConfig::default()
        );
    }
}
