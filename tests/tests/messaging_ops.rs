//! The messaging service's operational behaviour and less common paths: health while Kafka or
//! the registry is unreachable (readiness, `dependency.kafka`, `dependency.registry`; liveness
//! stays SERVING), and back when the registry returns, graceful shutdown of consume streams, explicit partition
//! assignment with start positions and seeks, and Avro schema selection by id and by
//! RecordNameStrategy.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tributary_proto::messaging::v1 as pb;
use tributary_tests::{
    CuttableProxy, TestMessaging, TestRegistry, free_port, sample, scrape, unique_name,
};

use tributary_tests::records::{avro, error, metadata, produce, record, text};

const WAIT: Duration = Duration::from_secs(30);

fn value_text(record: &pb::ConsumedRecord) -> String {
    match record.value.as_ref().and_then(|v| v.data.as_ref()) {
        Some(pb::consumed_payload::Data::Raw(bytes)) => String::from_utf8(bytes.to_vec()).unwrap(),
        other => panic!("expected raw bytes, got {other:?}"),
    }
}

fn partition_subscription(topic: &str, start: pb::StartPosition) -> pb::Subscription {
    pb::Subscription {
        group_id: unique_name("g"),
        partitions: vec![pb::TopicPartition {
            topic: topic.to_owned(),
            partition: 0,
        }],
        start: start as i32,
        value_format: pb::PayloadFormat::Raw as i32,
        key_format: pb::PayloadFormat::Raw as i32,
        ..Default::default()
    }
}

async fn health(messaging: &TestMessaging) -> i32 {
    status_of(messaging, "tributary.messaging.v1.MessagingService").await
}

async fn status_of(messaging: &TestMessaging, service: &str) -> i32 {
    let channel = tributary_tests::security::admin_channel(messaging.addr).await;
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

/// Waits until every `(service, status)` holds.
async fn wait_for_statuses(messaging: &TestMessaging, wanted: &[(&str, ServingStatus)]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut seen = Vec::new();
        for (service, _) in wanted {
            seen.push(status_of(messaging, service).await);
        }
        if seen
            .iter()
            .zip(wanted)
            .all(|(seen, (_, want))| *seen == *want as i32)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "statuses {seen:?}, wanted {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_registry_outage_shows_as_its_dependency_and_keeps_the_service_ready() {
    use ServingStatus::{NotServing, Serving};
    // The registry behind a proxy this test can cut.
    let registry = TestRegistry::start().await;
    let proxy = CuttableProxy::start(registry.addr).await;
    let via_proxy = format!("https://{}", proxy.addr);
    let messaging = TestMessaging::start_with(|s| s.registry_url = via_proxy, true).await;
    let all_up = [
        ("", Serving),
        ("tributary.messaging.v1.MessagingService", Serving),
        ("dependency.kafka", Serving),
        ("dependency.registry", Serving),
        ("liveness", Serving),
    ];
    wait_for_statuses(&messaging, &all_up).await;

    // Records in other formats, and Avro records whose schemas are cached, still flow: the
    // pod stays in its Service.
    proxy.cut();
    wait_for_statuses(
        &messaging,
        &[
            ("", Serving),
            ("tributary.messaging.v1.MessagingService", Serving),
            ("dependency.kafka", Serving),
            ("dependency.registry", NotServing),
            ("liveness", Serving),
        ],
    )
    .await;
    let metrics = scrape(messaging.metrics_addr).await;
    assert_eq!(sample(&metrics, "tributary_ready", &[]), Some(1.0));
    assert_eq!(
        sample(
            &metrics,
            "tributary_dependency_up",
            &[("dependency", "registry")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "tributary_dependency_up",
            &[("dependency", "kafka")]
        ),
        Some(1.0)
    );

    proxy.restore();
    wait_for_statuses(&messaging, &all_up).await;
    messaging.stop().await.unwrap();
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn health_is_not_serving_while_kafka_is_unreachable_and_the_registry_is_its_dependency() {
    let dead_registry = format!("https://127.0.0.1:{}", free_port());
    let no_registry = TestMessaging::start_with(|s| s.registry_url = dead_registry, false).await;
    let dead_kafka = format!("127.0.0.1:{}", free_port());
    let no_kafka = TestMessaging::start_with(
        |s| {
            s.kafka_bootstrap_servers = dead_kafka;
            s.kafka_timeout_ms = 1000;
        },
        false,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(health(&no_registry).await, ServingStatus::Serving as i32);
    assert_eq!(
        status_of(&no_registry, "dependency.registry").await,
        ServingStatus::NotServing as i32
    );
    assert_eq!(health(&no_kafka).await, ServingStatus::NotServing as i32);
    assert_eq!(
        status_of(&no_kafka, "dependency.kafka").await,
        ServingStatus::NotServing as i32
    );
    assert_eq!(
        status_of(&no_kafka, "dependency.registry").await,
        ServingStatus::Serving as i32
    );
    for unhealthy in [&no_registry, &no_kafka] {
        assert_eq!(
            status_of(unhealthy, "liveness").await,
            ServingStatus::Serving as i32
        );
    }

    // Without the registry, plain records still go through and Avro ones are UNAVAILABLE.
    let topic = unique_name("noregistry");
    no_registry.create_topic(&topic, 1).await;
    let schema = r#"{"type":"record","name":"A","fields":[{"name":"a","type":"int"}]}"#;
    let results = produce(
        &no_registry,
        vec![
            record(&topic, text("plain")),
            record(
                &topic,
                avro(
                    r#"{"a":1}"#,
                    pb::avro_payload::Schema::Inline(pb::InlineSchema {
                        schema: schema.to_owned(),
                        strategy: 0,
                    }),
                ),
            ),
        ],
    )
    .await;
    assert_eq!(metadata(&results[0]).offset, 0);
    assert_eq!(error(&results[1]).code, Code::Unavailable as i32);

    // Without Kafka, admin calls are UNAVAILABLE.
    let status = no_kafka
        .client()
        .await
        .list_topics(pb::ListTopicsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    no_registry.stop().await.unwrap();
    no_kafka.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_consume_streams_with_unavailable_after_committing_acks() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("shutdown");
    let group = unique_name("group");
    messaging.create_topic(&topic, 1).await;
    produce(
        &messaging,
        (0..3)
            .map(|i| record(&topic, text(&format!("s{i}"))))
            .collect(),
    )
    .await;
    let mut consumer = messaging
        .consume(pb::Subscription {
            group_id: group.clone(),
            topics: vec![topic.clone()],
            value_format: pb::PayloadFormat::Raw as i32,
            ..Default::default()
        })
        .await;
    let records = consumer.records(3, WAIT).await;
    consumer.ack(&records[0]).await;
    consumer.ack(&records[1]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stopping = tokio::spawn(messaging.stop());
    let ended = loop {
        match tokio::time::timeout(WAIT, consumer.responses.message())
            .await
            .expect("the stream ends at shutdown")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::Unavailable);
    tokio::time::timeout(WAIT, stopping)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // A new instance sees the group committed past the acknowledged records only.
    let next = TestMessaging::start().await;
    let described = next
        .client()
        .await
        .describe_consumer_group(pb::DescribeConsumerGroupRequest {
            group_id: group.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.state, "Empty", "the consumer left the group");
    let offset = described.offsets.iter().find(|o| o.topic == topic).unwrap();
    assert_eq!((offset.offset, offset.lag), (2, 1));
    let unknown = next
        .client()
        .await
        .describe_consumer_group(pb::DescribeConsumerGroupRequest {
            group_id: unique_name("never"),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    next.stop().await.unwrap();
}

#[tokio::test]
async fn explicit_partitions_start_where_asked_and_seek_moves_the_position() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("positions");
    messaging.create_topic(&topic, 1).await;
    let records = (0..5)
        .map(|i| pb::ProducerRecord {
            timestamp: Some(prost_types::Timestamp {
                seconds: 1_700_000_000 + i64::from(i) * 10,
                nanos: 0,
            }),
            ..record(&topic, text(&format!("r{i}")))
        })
        .collect();
    produce(&messaging, records).await;

    let mut at_offset = messaging
        .consume(pb::Subscription {
            start_offset: 3,
            ..partition_subscription(&topic, pb::StartPosition::Offset)
        })
        .await;
    let first = at_offset.records(2, WAIT).await;
    assert_eq!((first[0].offset, first[1].offset), (3, 4));
    assert_eq!(value_text(&first[0]), "r3");
    at_offset
        .requests
        .send(pb::ConsumeRequest {
            kind: Some(pb::consume_request::Kind::Seek(pb::Seek {
                topic: topic.clone(),
                partition: 0,
                offset: 1,
            })),
        })
        .await
        .unwrap();
    assert_eq!(at_offset.next_record(WAIT).await.offset, 1);
    drop(at_offset);

    let mut by_time = messaging
        .consume(pb::Subscription {
            start_time: Some(prost_types::Timestamp {
                seconds: 1_700_000_015,
                nanos: 0,
            }),
            ..partition_subscription(&topic, pb::StartPosition::Timestamp)
        })
        .await;
    let found = by_time.next_record(WAIT).await;
    assert_eq!(found.offset, 2);
    assert_eq!(found.timestamp.unwrap().seconds, 1_700_000_020);
    drop(by_time);

    let mut latest = messaging
        .consume(partition_subscription(&topic, pb::StartPosition::Latest))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    produce(&messaging, vec![record(&topic, text("new"))]).await;
    let fresh = latest.next_record(WAIT).await;
    assert_eq!((fresh.offset, value_text(&fresh)), (5, "new".to_owned()));
    drop(latest);

    // OFFSET needs explicit partitions.
    let mut client = messaging.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(pb::ConsumeRequest {
        kind: Some(pb::consume_request::Kind::Subscription(pb::Subscription {
            group_id: unique_name("g"),
            topics: vec![topic.clone()],
            start: pb::StartPosition::Offset as i32,
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut rejected = client
        .consume(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let status = rejected.message().await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn avro_schemas_are_selected_by_id_and_by_record_name_strategy() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("strategies");
    messaging.create_topic(&topic, 1).await;
    let schema = r#"{"type":"record","name":"Order","namespace":"com.shop","fields":[{"name":"id","type":"long"}]}"#;
    let results = produce(
        &messaging,
        vec![
            record(
                &topic,
                avro(
                    r#"{"id":1}"#,
                    pb::avro_payload::Schema::Inline(pb::InlineSchema {
                        schema: schema.to_owned(),
                        strategy: pb::SubjectNameStrategy::RecordName as i32,
                    }),
                ),
            ),
            record(
                &topic,
                avro(
                    r#"{"id":2}"#,
                    pb::avro_payload::Schema::Inline(pb::InlineSchema {
                        schema: schema.to_owned(),
                        strategy: pb::SubjectNameStrategy::TopicRecordName as i32,
                    }),
                ),
            ),
        ],
    )
    .await;
    let id = metadata(&results[0]).value_schema_id.unwrap();
    assert_eq!(metadata(&results[1]).value_schema_id, Some(id));
    let mut registry = messaging.registry.client().await;
    let subjects = registry
        .list_subjects(tributary_proto::registry::v1::ListSubjectsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .subjects;
    assert!(
        subjects.contains(&"com.shop.Order".to_owned()),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&format!("{topic}-com.shop.Order")),
        "{subjects:?}"
    );

    let results = produce(
        &messaging,
        vec![
            record(
                &topic,
                avro(r#"{"id":3}"#, pb::avro_payload::Schema::SchemaId(id)),
            ),
            record(
                &topic,
                avro(r#"{"id":4}"#, pb::avro_payload::Schema::SchemaId(999_999)),
            ),
            record(
                &topic,
                avro(
                    r#"{"id":5}"#,
                    pb::avro_payload::Schema::SubjectVersion(pb::SubjectVersionSelector {
                        subject: "com.shop.Order".to_owned(),
                        version: 1,
                        strategy: 0,
                    }),
                ),
            ),
        ],
    )
    .await;
    assert_eq!(metadata(&results[0]).value_schema_id, Some(id));
    assert_eq!(error(&results[1]).code, Code::NotFound as i32);
    assert_eq!(metadata(&results[2]).value_schema_id, Some(id));
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn the_binary_serves_then_ends_streams_and_exits_cleanly_on_sigterm() {
    let registry = tributary_tests::TestRegistry::start().await;
    let process = tributary_tests::MessagingProcess::spawn(&registry.endpoint()).await;
    let mut client = process.client().await;
    let topic = unique_name("process");
    process.create_topic(&topic, 1).await;
    let results = client
        .produce(pb::ProduceRequest {
            records: vec![record(&topic, text("hello"))],
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(metadata(&results[0]).offset, 0);

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::ConsumeRequest {
        kind: Some(pb::consume_request::Kind::Subscription(
            partition_subscription(&topic, pb::StartPosition::Earliest),
        )),
    })
    .await
    .unwrap();
    let mut stream = client
        .consume(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(WAIT, stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(
        first.kind,
        Some(pb::consume_response::Kind::Record(_))
    ));

    let status = process.terminate().await;
    assert!(status.success(), "exit status {status}");
    let ended = tokio::time::timeout(WAIT, stream.message()).await.unwrap();
    assert!(
        matches!(&ended, Err(status) if status.code() == Code::Unavailable),
        "{ended:?}"
    );
    drop(tx);
}
