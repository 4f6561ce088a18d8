//! The messaging service's budgets against hostile requests (issue 15), with the stack's real
//! Kafka and a registry of its own: client schemas (reader and inline) over a budget are
//! refused naming the flag, data nested past --max-json-depth fails its own record, a diamond
//! of references costs one registry call per schema, and the service answers a normal request
//! right after each.
//!
//! Nothing here is timed (figures in docs/avro-limits.md).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tonic::Code;
use tributary_proto::messaging::v1 as pb;
use tributary_proto::registry::v1 as registry_pb;
use tributary_tests::records::{avro, avro_inline, error, metadata, produce, record, text};
use tributary_tests::{TestMessaging, unique_name};

const WAIT: Duration = Duration::from_secs(30);

/// A normal request, right after a hostile one: a text record produced.
async fn still_answers(messaging: &TestMessaging, topic: &str) {
    let results = produce(messaging, vec![record(topic, text("normal"))]).await;
    metadata(&results[0]);
}

fn enum_text(symbols: usize) -> String {
    let symbols: Vec<String> = (0..symbols).map(|i| format!("\"S{i}\"")).collect();
    format!(
        r#"{{"type":"enum","name":"E","symbols":[{}]}}"#,
        symbols.join(",")
    )
}

#[tokio::test]
async fn client_schemas_and_data_over_a_budget_are_refused_naming_the_flag() {
    let messaging = TestMessaging::start_with(
        |settings| {
            settings.limits.max_enum_symbols = 200_000;
            settings.limits.max_json_depth = 8;
        },
        true,
    )
    .await;
    let topic = unique_name("limits");
    messaging.create_topic(&topic, 1).await;

    // A reader schema over --max-schema-bytes (the service had no limit): refused before it is
    // parsed.
    let huge = format!(r#"{{"type":"string","doc":"{}"}}"#, "x".repeat(1024 * 1024));
    let mut consumer = messaging
        .consume(pb::Subscription {
            group_id: unique_name("limits"),
            topics: vec![topic.clone()],
            reader_schema: huge,
            ..Default::default()
        })
        .await;
    let status = consumer.responses.message().await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("--max-schema-bytes (MESSAGING_MAX_SCHEMA_BYTES)"),
        "{}",
        status.message()
    );
    drop(consumer);
    still_answers(&messaging, &topic).await;

    // A 1 MiB reader enum within the raised symbol budget: taken (its parse took 15.3 s).
    let big_enum = enum_text(115_000);
    assert!(big_enum.len() > 1_000_000);
    let mut consumer = messaging
        .consume(pb::Subscription {
            group_id: unique_name("limits"),
            partitions: vec![pb::TopicPartition {
                topic: topic.clone(),
                partition: 0,
            }],
            start: pb::StartPosition::Latest as i32,
            reader_schema: big_enum,
            ..Default::default()
        })
        .await;
    let opened = tokio::time::timeout(Duration::from_secs(2), consumer.responses.message()).await;
    if let Ok(Err(status)) = opened {
        panic!("a 1 MiB reader enum was refused: {status:?}");
    }
    drop(consumer);
    still_answers(&messaging, &topic).await;

    // Inline schemas over a budget fail their own record, naming the flag.
    let decimal =
        r#"{"type":"bytes","logicalType":"decimal","precision":2147483647,"scale":2147483647}"#;
    let results = produce(
        &messaging,
        vec![
            record(&topic, avro_inline(decimal, "0")),
            record(&topic, avro_inline(&enum_text(200_001), r#""S0""#)),
            record(&topic, text("after")),
        ],
    )
    .await;
    for (result, flag) in [
        (
            &results[0],
            "--max-decimal-precision (MESSAGING_MAX_DECIMAL_PRECISION)",
        ),
        (&results[1], "MESSAGING_MAX_"),
    ] {
        let e = error(result);
        assert_eq!(e.code, Code::InvalidArgument as i32, "{e:?}");
        assert_eq!(e.reason, "LIMIT_EXCEEDED", "{e:?}");
        assert!(e.message.contains(flag), "{flag}: {}", e.message);
    }
    metadata(&results[2]);

    // A value nested deeper than --max-json-depth (8 here) fails its own record.
    let node = r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"],"default":null}]}"#;
    let mut deep = String::from("null");
    for _ in 0..20 {
        deep = format!(r#"{{"next":{{"Node":{deep}}}}}"#);
    }
    let results = produce(
        &messaging,
        vec![
            record(&topic, avro_inline(node, &deep)),
            record(
                &topic,
                avro_inline(node, r#"{"next":{"Node":{"next":null}}}"#),
            ),
        ],
    )
    .await;
    let e = error(&results[0]);
    assert_eq!(e.code, Code::InvalidArgument as i32, "{e:?}");
    assert!(
        e.message
            .contains("--max-json-depth (MESSAGING_MAX_JSON_DEPTH)"),
        "{}",
        e.message
    );
    assert!(metadata(&results[1]).value_schema_id.is_some());
    still_answers(&messaging, &topic).await;
    messaging.stop().await.unwrap();
}

/// The `rpc_server_call_duration_seconds_count` of GetSubjectVersion calls (status OK) in a
/// registry's metrics.
async fn get_subject_version_calls(addr: std::net::SocketAddr) -> f64 {
    let text = tributary_tests::security::http_client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| {
            line.starts_with("rpc_server_call_duration_seconds_count{")
                && line.contains(r#"rpc_method="GetSubjectVersion""#)
                && line.contains(r#"rpc_grpc_status_code="0""#)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_diamond_of_references_costs_one_registry_call_per_schema() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("diamond");
    messaging.create_topic(&topic, 1).await;
    let mut registry = messaging.registry.client().await;
    // Level i has records A_i and B_i, each with optional fields of A_{i+1} and B_{i+1}: a
    // schema over the top has 2^(D+1) paths to its references, and D * 2 of them.
    let depth = 12;
    let reference = |level: usize, side: &str| registry_pb::SchemaReference {
        name: format!("{side}{level}"),
        subject: format!("ref-{side}{level}"),
        version: 1,
    };
    for level in (1..=depth).rev() {
        for side in ["A", "B"] {
            let (schema, references) = if level == depth {
                (
                    format!(
                        r#"{{"type":"record","name":"{side}{level}","fields":[{{"name":"x","type":"int"}}]}}"#
                    ),
                    Vec::new(),
                )
            } else {
                let next = level + 1;
                (
                    format!(
                        r#"{{"type":"record","name":"{side}{level}","fields":[{{"name":"a","type":["null","A{next}"],"default":null}},{{"name":"b","type":["null","B{next}"],"default":null}}]}}"#
                    ),
                    vec![reference(next, "A"), reference(next, "B")],
                )
            };
            registry
                .register_schema(registry_pb::RegisterSchemaRequest {
                    subject: format!("ref-{side}{level}"),
                    schema,
                    references,
                    ..Default::default()
                })
                .await
                .unwrap();
        }
    }
    let top = registry
        .register_schema(registry_pb::RegisterSchemaRequest {
            subject: format!("{topic}-value"),
            schema: r#"{"type":"record","name":"Top","fields":[{"name":"a","type":["null","A1"],"default":null},{"name":"b","type":["null","B1"],"default":null}]}"#.to_owned(),
            references: vec![reference(1, "A"), reference(1, "B")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .id;

    let before = get_subject_version_calls(messaging.registry.metrics_addr).await;
    let results = produce(
        &messaging,
        vec![record(
            &topic,
            avro("{}", pb::avro_payload::Schema::SchemaId(top)),
        )],
    )
    .await;
    assert_eq!(metadata(&results[0]).value_schema_id, Some(top));
    // The metrics are recorded as the calls end; give the last one a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let calls = get_subject_version_calls(messaging.registry.metrics_addr).await - before;
    // One per referenced schema (2 * 12); 2^13 = 8192 before.
    assert!(
        calls <= (2 * depth) as f64,
        "{calls} GetSubjectVersion calls for {} referenced schemas",
        2 * depth
    );
    assert!(calls >= 1.0, "the references were not fetched: {calls}");

    // And the record reads back.
    let mut consumer = messaging
        .consume(pb::Subscription {
            group_id: unique_name("diamond"),
            partitions: vec![pb::TopicPartition {
                topic: topic.clone(),
                partition: 0,
            }],
            start: pb::StartPosition::Earliest as i32,
            value_format: pb::PayloadFormat::AvroPlain as i32,
            ..Default::default()
        })
        .await;
    let consumed = consumer.next_record(WAIT).await;
    let value = consumed.value.unwrap();
    assert!(value.error.is_none(), "{:?}", value.error);
    drop(consumer);
    still_answers(&messaging, &topic).await;
    messaging.stop().await.unwrap();
}
