//! Observability end to end, against the real stack:
//!
//! - both services run as processes exporting over OTLP/gRPC to a receiver in this test: a
//!   produce → consume round trip is ONE trace, across Kafka, with the registry's spans in it
//!   as children and the semantic-convention attributes set; their metrics arrive over OTLP too;
//! - after traffic, `/metrics` of both services has the RED series, the cache counters and the
//!   consumer lag of a live stream with the values the traffic implies, and passes
//!   `promtool check metrics`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tokio_stream::wrappers::TcpListenerStream;
use tributary_proto::messaging::v1 as pb;
use tributary_proto::registry::v1 as registry_pb;
use tributary_tests::records::{avro, metadata, produce, record};
use tributary_tests::{
    MessagingProcess, RegistryProcess, TestConsumer, TestDatabase, TestMessaging, promtool_check,
    sample, scrape, unique_name,
};

const WAIT: Duration = Duration::from_secs(30);
const USER_SCHEMA: &str =
    r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}"#;

// ----- an OTLP trace receiver ----------------------------------------------------------------

/// A received span with the service that sent it.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    service: String,
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
}

#[derive(Debug, Default, Clone)]
struct Receiver {
    spans: Arc<parking_lot::Mutex<Vec<ReceivedSpan>>>,
    /// (service.name, metric name) of every metric received.
    metrics: Arc<parking_lot::Mutex<Vec<(String, String)>>>,
}

fn service_name(resource: Option<&opentelemetry_proto::tonic::resource::v1::Resource>) -> String {
    resource
        .iter()
        .flat_map(|r| &r.attributes)
        .find(|kv| kv.key == "service.name")
        .map(|kv| text_of(kv.value.as_ref()))
        .unwrap_or_default()
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let mut received = self.metrics.lock();
        for resource_metrics in request.into_inner().resource_metrics {
            let service = service_name(resource_metrics.resource.as_ref());
            for metric in resource_metrics
                .scope_metrics
                .into_iter()
                .flat_map(|scope| scope.metrics)
            {
                received.push((service.clone(), metric.name));
            }
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn text_of(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = self.spans.lock();
        for resource_spans in request.into_inner().resource_spans {
            let service = service_name(resource_spans.resource.as_ref());
            for span in resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
            {
                received.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    kind: span.kind,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), text_of(kv.value.as_ref())))
                        .collect(),
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts the receiver; returns it and its endpoint URL.
async fn start_receiver() -> (Receiver, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::default();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .add_service(MetricsServiceServer::new(receiver.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (receiver, format!("http://{addr}"))
}

fn find<'a>(
    spans: &'a [ReceivedSpan],
    what: &str,
    matches: impl Fn(&ReceivedSpan) -> bool,
) -> &'a ReceivedSpan {
    spans.iter().find(|s| matches(s)).unwrap_or_else(|| {
        panic!(
            "no span {what} among:\n{}",
            spans
                .iter()
                .map(|s| format!(
                    "  {} {} kind={} trace={} parent={} {:?}",
                    s.service, s.name, s.kind, s.trace_id, s.parent_span_id, s.attributes
                ))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

fn attribute<'a>(span: &'a ReceivedSpan, key: &str) -> &'a str {
    span.attributes
        .get(key)
        .unwrap_or_else(|| panic!("span {} has no attribute {key}: {:?}", span.name, span))
}

#[tokio::test]
async fn a_produce_consume_round_trip_is_one_trace_across_kafka_with_registry_children() {
    let (receiver, endpoint) = start_receiver().await;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let database = TestDatabase::create().await;
    let registry = RegistryProcess::spawn_with(&database.url, &env).await;
    let messaging = MessagingProcess::spawn_with(&format!("https://{}", registry.addr), &env).await;
    let mut client = messaging.client().await;
    let topic = unique_name("traced");
    messaging.create_topic(&topic, 1).await;

    // The client's own trace, continued by the service from the call's metadata.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let trace_id = format!("{:032x}", nanos ^ (u128::from(std::process::id()) << 64));
    let client_span_id = "00f067aa0ba902b7";
    let mut request = tonic::Request::new(pb::ProduceRequest {
        records: vec![record(
            &topic,
            avro(
                r#"{"name":"ann"}"#,
                pb::avro_payload::Schema::Inline(pb::InlineSchema {
                    schema: USER_SCHEMA.to_owned(),
                    strategy: 0,
                }),
            ),
        )],
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{client_span_id}-01")
            .parse()
            .unwrap(),
    );
    let results = client.produce(request).await.unwrap().into_inner().results;
    assert_eq!(metadata(&results[0]).offset, 0);

    let mut consumer = TestConsumer::open(
        messaging.client().await,
        pb::Subscription {
            group_id: unique_name("traced-group"),
            topics: vec![topic.clone()],
            value_format: pb::PayloadFormat::AvroPlain as i32,
            ..Default::default()
        },
    )
    .await;
    let consumed = consumer.next_record(WAIT).await;
    consumer.ack(&consumed).await;
    let traceparent = consumed
        .headers
        .iter()
        .find(|h| h.key == "traceparent")
        .map(|h| String::from_utf8(h.value.to_vec()).unwrap())
        .expect("the record carries a traceparent header");
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent} continues the client's trace {trace_id}"
    );
    drop(consumer);

    // SIGTERM flushes the batches.
    assert!(messaging.terminate().await.success());
    assert!(registry.terminate().await.success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let spans = loop {
        let spans: Vec<ReceivedSpan> = receiver
            .spans
            .lock()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        let has = |kind: SpanKind| spans.iter().any(|s| s.kind == kind as i32);
        if (has(SpanKind::Consumer) && has(SpanKind::Producer) && has(SpanKind::Client))
            || tokio::time::Instant::now() > deadline
        {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // messaging: the Produce call's SERVER span, a child of the client's span.
    let produce_call = find(&spans, "Produce (server)", |s| {
        s.name == "tributary.messaging.v1.MessagingService/Produce"
    });
    assert_eq!(produce_call.service, "tributary-messaging");
    assert_eq!(produce_call.kind, SpanKind::Server as i32);
    assert_eq!(produce_call.parent_span_id, client_span_id);
    assert_eq!(attribute(produce_call, "rpc.system"), "grpc");
    assert_eq!(
        attribute(produce_call, "rpc.service"),
        "tributary.messaging.v1.MessagingService"
    );
    assert_eq!(attribute(produce_call, "rpc.method"), "Produce");
    assert_eq!(attribute(produce_call, "rpc.grpc.status_code"), "0");

    // messaging: the record's PRODUCER span, whose context went into the record's headers.
    let publish = find(&spans, "publish (producer)", |s| {
        s.kind == SpanKind::Producer as i32
    });
    assert_eq!(publish.name, format!("publish {topic}"));
    assert_eq!(attribute(publish, "messaging.system"), "kafka");
    assert_eq!(attribute(publish, "messaging.destination.name"), topic);
    assert_eq!(attribute(publish, "messaging.operation.type"), "publish");
    assert_eq!(attribute(publish, "messaging.kafka.offset"), "0");
    assert!(
        traceparent.contains(&publish.span_id),
        "the header {traceparent} names the publish span {}",
        publish.span_id
    );
    let mut ancestor = publish.parent_span_id.clone();
    while ancestor != produce_call.span_id {
        ancestor = find(&spans, "between publish and Produce", |s| {
            s.span_id == ancestor
        })
        .parent_span_id
        .clone();
    }

    // registry: RegisterSchema, called by messaging to encode the record, a child of publish.
    let register = find(&spans, "RegisterSchema (registry server)", |s| {
        s.name == "tributary.registry.v1.RegistryService/RegisterSchema"
    });
    assert_eq!(register.service, "tributary-registry");
    assert_eq!(register.kind, SpanKind::Server as i32);
    assert_eq!(register.parent_span_id, publish.span_id);
    // ... with its Postgres queries as CLIENT spans below it.
    let query = find(&spans, "Postgres (client)", |s| {
        s.kind == SpanKind::Client as i32 && s.service == "tributary-registry"
    });
    assert_eq!(attribute(query, "db.system.name"), "postgresql");
    assert!(!attribute(query, "db.operation.name").is_empty());

    // messaging: the CONSUMER span of the delivered record, continuing the trace across Kafka.
    let receive = find(&spans, "receive (consumer)", |s| {
        s.kind == SpanKind::Consumer as i32
    });
    assert_eq!(receive.service, "tributary-messaging");
    assert_eq!(receive.name, format!("receive {topic}"));
    assert_eq!(receive.parent_span_id, publish.span_id);
    assert_eq!(attribute(receive, "messaging.system"), "kafka");
    assert_eq!(attribute(receive, "messaging.operation.type"), "receive");
    assert_eq!(attribute(receive, "messaging.destination.name"), topic);

    // Metrics went over OTLP too (exported at shutdown at the latest).
    let metrics = receiver.metrics.lock().clone();
    for (service, metric) in [
        ("tributary-messaging", "rpc.server.call.duration"),
        ("tributary-messaging", "messaging.client.sent.messages"),
        ("tributary-registry", "rpc.server.call.duration"),
        ("tributary-registry", "registry.cache.requests"),
    ] {
        assert!(
            metrics.iter().any(|(s, m)| s == service && m == metric),
            "no {metric} from {service} over OTLP among {metrics:?}"
        );
    }
}

// ----- metrics -------------------------------------------------------------------------------

/// Scrapes until `ready` holds for the exposition (the lag comes with librdkafka's statistics,
/// every few seconds), failing after `within`.
async fn scrape_until(
    addr: std::net::SocketAddr,
    within: Duration,
    what: &str,
    ready: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let exposition = scrape(addr).await;
        if ready(&exposition) {
            return exposition;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} not seen within {within:?}:\n{exposition}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn rpc_count(exposition: &str, service: &str, method: &str, code: &str) -> f64 {
    sample(
        exposition,
        "rpc_server_call_duration_seconds_count",
        &[
            ("rpc_system", "grpc"),
            ("rpc_service", service),
            ("rpc_method", method),
            ("rpc_grpc_status_code", code),
        ],
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_after_traffic_show_red_series_cache_use_and_consumer_lag() {
    const MESSAGING: &str = "tributary.messaging.v1.MessagingService";
    const REGISTRY: &str = "tributary.registry.v1.RegistryService";
    let messaging = TestMessaging::start().await;
    let topic = unique_name("metered");
    messaging.create_topic(&topic, 1).await;

    // Ten Avro records in one call (the schema is registered once, then read from caches).
    let records: Vec<pb::ProducerRecord> = (0..10)
        .map(|i| {
            record(
                &topic,
                avro(
                    &format!(r#"{{"name":"user{i}"}}"#),
                    pb::avro_payload::Schema::Inline(pb::InlineSchema {
                        schema: USER_SCHEMA.to_owned(),
                        strategy: 0,
                    }),
                ),
            )
        })
        .collect();
    let results = produce(&messaging, records).await;
    let schema_id = metadata(&results[0]).value_schema_id.unwrap();
    // An error call: NOT_FOUND (5).
    let status = messaging
        .client()
        .await
        .describe_topic(pb::DescribeTopicRequest {
            topic: unique_name("missing"),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    // Registry reads: twice the same schema (the second from the cache), one unknown id,
    // and one over the HTTP API.
    let mut registry = messaging.registry.client().await;
    for _ in 0..2 {
        registry
            .get_schema(registry_pb::GetSchemaRequest {
                id: schema_id,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    registry
        .get_schema(registry_pb::GetSchemaRequest {
            id: 999_999,
            ..Default::default()
        })
        .await
        .unwrap_err();
    let http = tributary_tests::security::admin_http_client()
        .get(format!(
            "{}/schemas/ids/{schema_id}",
            messaging.registry.http_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(http.status(), 200);

    // A live stream: all ten delivered, the first four acknowledged -> lag 10 - 4 = 6.
    let group = unique_name("metered-group");
    let mut consumer = messaging
        .consume(pb::Subscription {
            group_id: group.clone(),
            topics: vec![topic.clone()],
            value_format: pb::PayloadFormat::AvroPlain as i32,
            ..Default::default()
        })
        .await;
    let consumed = consumer.records(10, WAIT).await;
    for record in &consumed[..4] {
        consumer.ack(record).await;
    }
    let lag_labels = [
        ("messaging_consumer_group_name", group.as_str()),
        ("messaging_destination_name", topic.as_str()),
        ("messaging_destination_partition_id", "0"),
    ];
    let exposition = scrape_until(messaging.metrics_addr, WAIT, "consumer lag 6", |text| {
        sample(text, "messaging_consumer_lag_messages", &lag_labels) == Some(6.0)
    })
    .await;

    // messaging RED, per method and status.
    assert!(rpc_count(&exposition, MESSAGING, "Produce", "0") >= 1.0);
    assert!(rpc_count(&exposition, MESSAGING, "CreateTopic", "0") >= 1.0);
    assert!(rpc_count(&exposition, MESSAGING, "DescribeTopic", "5") >= 1.0);
    assert_eq!(rpc_count(&exposition, MESSAGING, "DescribeTopic", "0"), 0.0);
    let produce_sum = sample(
        &exposition,
        "rpc_server_call_duration_seconds_sum",
        &[("rpc_method", "Produce"), ("rpc_grpc_status_code", "0")],
    )
    .unwrap();
    assert!(produce_sum > 0.0 && produce_sum < 60.0, "{produce_sum}");
    // Records and bytes per topic.
    let topic_label = [("messaging_destination_name", topic.as_str())];
    assert_eq!(
        sample(
            &exposition,
            "messaging_client_sent_messages_total",
            &topic_label
        ),
        Some(10.0)
    );
    assert_eq!(
        sample(
            &exposition,
            "messaging_client_consumed_messages_total",
            &topic_label
        ),
        Some(10.0)
    );
    // Each value: 5 bytes of Confluent framing + the Avro body (at least 6 bytes).
    let sent_bytes = sample(
        &exposition,
        "messaging_client_sent_bytes_total",
        &topic_label,
    );
    assert!(sent_bytes.is_some_and(|b| b >= 110.0), "{sent_bytes:?}");
    assert_eq!(
        sample(
            &exposition,
            "messaging_client_consumed_bytes_total",
            &topic_label
        ),
        sent_bytes
    );
    assert!(sample(&exposition, "messaging_producer_queue_messages", &[]).is_some());
    assert_eq!(sample(&exposition, "tributary_ready", &[]), Some(1.0));
    for dependency in ["kafka", "registry"] {
        assert_eq!(
            sample(
                &exposition,
                "tributary_dependency_up",
                &[("dependency", dependency)]
            ),
            Some(1.0)
        );
    }
    assert!(sample(&exposition, "process_resident_memory_bytes", &[]).is_some_and(|b| b > 0.0));
    promtool_check(&exposition);
    let messaging_exposition = exposition;

    // registry: RED, cache, pool, HTTP.
    let exposition = scrape(messaging.registry.metrics_addr).await;
    assert!(rpc_count(&exposition, REGISTRY, "RegisterSchema", "0") >= 1.0);
    assert!(rpc_count(&exposition, REGISTRY, "GetSchema", "0") >= 2.0);
    assert!(rpc_count(&exposition, REGISTRY, "GetSchema", "5") >= 1.0);
    assert!(
        rpc_count(&exposition, "grpc.health.v1.Health", "Check", "0") >= 1.0,
        "health checks are calls too"
    );
    let schema_by_id = |result: &str| {
        sample(
            &exposition,
            "registry_cache_requests_total",
            &[("cache", "schema_by_id"), ("result", result)],
        )
        .unwrap_or(0.0)
    };
    assert!(schema_by_id("hit") >= 1.0, "{exposition}");
    assert!(schema_by_id("miss") >= 1.0, "{exposition}");
    assert_eq!(
        sample(
            &exposition,
            "http_server_request_duration_seconds_count",
            &[
                ("http_request_method", "GET"),
                ("http_route", "/schemas/ids/{id}"),
                ("http_response_status_code", "200"),
            ],
        ),
        Some(1.0)
    );
    for state in ["idle", "used"] {
        assert!(
            sample(
                &exposition,
                "db_client_connections_usage",
                &[("state", state)]
            )
            .is_some()
        );
    }
    assert_eq!(
        sample(&exposition, "db_client_connection_max", &[]),
        Some(8.0)
    );
    assert!(sample(&exposition, "registry_schemas", &[]).is_some());
    assert!(sample(&exposition, "registry_subjects", &[]).is_some());
    assert_eq!(sample(&exposition, "tributary_ready", &[]), Some(1.0));
    assert_eq!(
        sample(
            &exposition,
            "tributary_dependency_up",
            &[("dependency", "postgres")]
        ),
        Some(1.0)
    );
    promtool_check(&exposition);

    // Every metric the dashboard and the alerts may use (deploy/check/metrics.txt) is exposed.
    let listed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/check/metrics.txt"
    ))
    .unwrap();
    for name in listed
        .lines()
        .filter_map(|line| line.split('#').next()?.split_whitespace().next())
        .filter(|name| *name != "up")
    {
        let family = format!("# TYPE {name} ");
        assert!(
            exposition.contains(&family) || messaging_exposition.contains(&family),
            "{name} (deploy/check/metrics.txt) is exposed by neither service"
        );
    }

    // The stream's lag series goes when the stream does; its RED sample counts it as CANCELLED.
    drop(consumer);
    let exposition = scrape_until(messaging.metrics_addr, WAIT, "lag series removed", |text| {
        sample(text, "messaging_consumer_lag_messages", &lag_labels).is_none()
    })
    .await;
    assert!(rpc_count(&exposition, MESSAGING, "Consume", "1") >= 1.0);
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn a_stream_held_by_max_unacked_still_reports_its_growing_lag() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("stuck");
    messaging.create_topic(&topic, 1).await;
    let texts = |range: std::ops::Range<i32>| -> Vec<pb::ProducerRecord> {
        range
            .map(|i| record(&topic, tributary_tests::records::text(&format!("r{i}"))))
            .collect()
    };
    produce(&messaging, texts(0..5)).await;

    // A client that takes three records and never acknowledges: flow control holds the stream,
    // which then no longer polls librdkafka (and so gets no statistics from it).
    let group = unique_name("stuck-group");
    let mut consumer = messaging
        .consume(pb::Subscription {
            group_id: group.clone(),
            topics: vec![topic.clone()],
            value_format: pb::PayloadFormat::Raw as i32,
            max_unacked: 3,
            ..Default::default()
        })
        .await;
    consumer.records(3, WAIT).await;
    let lag_labels = [
        ("messaging_consumer_group_name", group.as_str()),
        ("messaging_destination_name", topic.as_str()),
        ("messaging_destination_partition_id", "0"),
    ];
    // Nothing acknowledged: the stream would resume at 0, so the lag is the high watermark.
    scrape_until(messaging.metrics_addr, WAIT, "consumer lag 5", |text| {
        sample(text, "messaging_consumer_lag_messages", &lag_labels) == Some(5.0)
    })
    .await;
    // More records arrive while the client is stuck: the lag follows.
    produce(&messaging, texts(5..12)).await;
    scrape_until(messaging.metrics_addr, WAIT, "consumer lag 12", |text| {
        sample(text, "messaging_consumer_lag_messages", &lag_labels) == Some(12.0)
    })
    .await;
    drop(consumer);
    messaging.stop().await.unwrap();
}
