//! Every Avro type and logical type through Produce -> the stack's real Kafka -> Consume: the
//! JSON a producer writes (in every input form the codec accepts: tagged and plain unions,
//! friendly logical-type text and the underlying Avro forms) comes back as the canonical JSON
//! (Avro's JSON encoding: logical types as their underlying type, bytes and fixed as ISO-8859-1
//! strings), with unions tagged or plain as the consumer asks. Values a type cannot hold fail
//! their own record only.
//!
//! Protobuf records too: every scalar kind, nested messages, maps, oneofs and well-known types
//! come back as Protobuf's canonical JSON; records that do not match their message fail alone,
//! naming the field path. And JSON Schema records: validated on produce (each invalid one fails
//! alone, naming the keyword and path), consumed byte for byte as written; a framed record that
//! is not JSON is delivered with an error and the stream goes on.
//!
//! Produce errors and undecodable records in the middle of a batch in general are covered by
//! `messaging_api.rs` (`one_bad_record_fails_only_itself`,
//! `an_undecodable_record_is_delivered_with_an_error_and_the_stream_goes_on`).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::Value;
use tonic::Code;
use tributary_proto::messaging::v1 as pb;
use tributary_proto::registry::v1 as registry_pb;
use tributary_tests::{TestMessaging, unique_name};

const WAIT: Duration = Duration::from_secs(30);

/// One type: its schema, and the records written with it as (input JSON, expected JSON with
/// tagged unions, expected JSON with plain unions).
struct Case {
    name: &'static str,
    schema: &'static str,
    records: Vec<(&'static str, &'static str, &'static str)>,
}

/// A record whose input and output are the same JSON in both union styles.
fn same(json: &'static str) -> (&'static str, &'static str, &'static str) {
    (json, json, json)
}

/// A record whose input differs from its output (the same in both union styles).
fn to(input: &'static str, output: &'static str) -> (&'static str, &'static str, &'static str) {
    (input, output, output)
}

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "null",
            schema: r#""null""#,
            records: vec![same("null")],
        },
        Case {
            name: "boolean",
            schema: r#""boolean""#,
            records: vec![same("true"), same("false")],
        },
        Case {
            name: "int",
            schema: r#""int""#,
            records: vec![same("0"), same("-2147483648"), same("2147483647")],
        },
        Case {
            name: "long",
            schema: r#""long""#,
            records: vec![
                same("9007199254740993"),
                same("-9223372036854775808"),
                same("9223372036854775807"),
            ],
        },
        Case {
            name: "float",
            schema: r#""float""#,
            records: vec![
                same("1.5"),
                same("0.1"),
                to("3", "3.0"),
                same(r#""NaN""#),
                same(r#""-Infinity""#),
            ],
        },
        Case {
            name: "double",
            schema: r#""double""#,
            records: vec![
                same("3.141592653589793"),
                same("1e300"),
                to("-7", "-7.0"),
                same(r#""Infinity""#),
            ],
        },
        Case {
            name: "bytes",
            schema: r#""bytes""#,
            records: vec![same(r#""\u0000\u00ff\u0080abc""#), same(r#""""#)],
        },
        Case {
            name: "string",
            schema: r#""string""#,
            records: vec![same(r#""héllo ✓ 😀 \"quoted\"\n""#), same(r#""""#)],
        },
        Case {
            name: "record",
            schema: r#"{"type":"record","name":"Outer","namespace":"com.example","fields":[
                {"name":"id","type":"long"},
                {"name":"inner","type":{"type":"record","name":"Inner","fields":[{"name":"label","type":"string"}]}},
                {"name":"note","type":"string","default":"none"}]}"#,
            records: vec![
                same(r#"{"id":1,"inner":{"label":"a"},"note":"n"}"#),
                // A missing field takes its default.
                to(
                    r#"{"id":2,"inner":{"label":"b"}}"#,
                    r#"{"id":2,"inner":{"label":"b"},"note":"none"}"#,
                ),
            ],
        },
        Case {
            name: "enum",
            schema: r#"{"type":"enum","name":"Suit","symbols":["HEARTS","SPADES","CLUBS"]}"#,
            records: vec![same(r#""HEARTS""#), same(r#""CLUBS""#)],
        },
        Case {
            name: "array",
            schema: r#"{"type":"array","items":"int"}"#,
            records: vec![same("[1,2,3]"), same("[]")],
        },
        Case {
            name: "map",
            schema: r#"{"type":"map","values":"long"}"#,
            records: vec![same(r#"{"a":1,"b":-2}"#), same("{}")],
        },
        Case {
            name: "union",
            schema: r#"["null","string","long",
                {"type":"record","name":"Point","namespace":"com.example","fields":[{"name":"x","type":"int"}]},
                {"type":"array","items":["null","int"]}]"#,
            records: vec![
                same("null"),
                // Tagged input.
                (r#"{"string":"x"}"#, r#"{"string":"x"}"#, r#""x""#),
                (r#"{"long":5}"#, r#"{"long":5}"#, "5"),
                (
                    r#"{"com.example.Point":{"x":1}}"#,
                    r#"{"com.example.Point":{"x":1}}"#,
                    r#"{"x":1}"#,
                ),
                // A named type's simple name is accepted as the tag.
                (
                    r#"{"Point":{"x":2}}"#,
                    r#"{"com.example.Point":{"x":2}}"#,
                    r#"{"x":2}"#,
                ),
                // Plain input.
                (r#""y""#, r#"{"string":"y"}"#, r#""y""#),
                (r#"7"#, r#"{"long":7}"#, "7"),
                (
                    r#"{"x":3}"#,
                    r#"{"com.example.Point":{"x":3}}"#,
                    r#"{"x":3}"#,
                ),
                // Nested unions, tagged and plain.
                (
                    r#"[null,{"int":1},2]"#,
                    r#"{"array":[null,{"int":1},{"int":2}]}"#,
                    "[null,1,2]",
                ),
            ],
        },
        Case {
            name: "fixed",
            schema: r#"{"type":"fixed","name":"Four","size":4}"#,
            records: vec![
                same(r#""\u0001\u0002\u0003\u0004""#),
                same(r#""\u00ff\u0000\u00fe\u0080""#),
            ],
        },
        Case {
            name: "decimal-bytes",
            schema: r#"{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}"#,
            records: vec![
                // 1250 = 0x04E2.
                to(r#""12.50""#, r#""\u0004\u00e2""#),
                to("12.5", r#""\u0004\u00e2""#),
                to(r#""-0.01""#, r#""\u00ff""#),
                to("0", r#""\u0000""#),
                // The underlying byte string.
                same(r#""\u0004\u00e2""#),
            ],
        },
        Case {
            name: "decimal-fixed",
            schema: r#"{"type":"fixed","name":"Amount","size":8,"logicalType":"decimal","precision":18,"scale":3}"#,
            records: vec![
                // -1000, sign-extended to 8 bytes.
                to(
                    r#""-1.000""#,
                    r#""\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00fc\u0018""#,
                ),
                to(
                    r#""1.5""#,
                    r#""\u0000\u0000\u0000\u0000\u0000\u0000\u0005\u00dc""#,
                ),
                same(r#""\u0000\u0000\u0000\u0000\u0000\u0000\u0005\u00dc""#),
            ],
        },
        Case {
            name: "uuid",
            schema: r#"{"type":"string","logicalType":"uuid"}"#,
            records: vec![same(r#""123e4567-e89b-12d3-a456-426614174000""#)],
        },
        Case {
            name: "date",
            schema: r#"{"type":"int","logicalType":"date"}"#,
            records: vec![to(r#""2024-02-29""#, "19782"), same("-1"), same("0")],
        },
        Case {
            name: "time-millis",
            schema: r#"{"type":"int","logicalType":"time-millis"}"#,
            records: vec![to(r#""12:34:56.789""#, "45296789"), same("0")],
        },
        Case {
            name: "time-micros",
            schema: r#"{"type":"long","logicalType":"time-micros"}"#,
            records: vec![to(r#""23:59:59.999999""#, "86399999999"), same("1")],
        },
        Case {
            name: "timestamp-millis",
            schema: r#"{"type":"long","logicalType":"timestamp-millis"}"#,
            records: vec![
                to(r#""2024-01-02T03:04:05.678Z""#, "1704164645678"),
                to(r#""2024-01-02T04:04:05.678+01:00""#, "1704164645678"),
                same("-1"),
            ],
        },
        Case {
            name: "timestamp-micros",
            schema: r#"{"type":"long","logicalType":"timestamp-micros"}"#,
            records: vec![
                to(r#""2024-01-02T03:04:05.678901Z""#, "1704164645678901"),
                to(r#""1970-01-01T00:00:00.000001Z""#, "1"),
            ],
        },
        Case {
            name: "local-timestamp-millis",
            schema: r#"{"type":"long","logicalType":"local-timestamp-millis"}"#,
            records: vec![
                to(r#""2024-01-02T03:04:05.678""#, "1704164645678"),
                same("0"),
            ],
        },
        Case {
            name: "local-timestamp-micros",
            schema: r#"{"type":"long","logicalType":"local-timestamp-micros"}"#,
            records: vec![
                to(r#""2024-01-02T03:04:05.678901""#, "1704164645678901"),
                same("42"),
            ],
        },
        Case {
            name: "duration",
            schema: r#"{"type":"fixed","name":"Span","size":12,"logicalType":"duration"}"#,
            records: vec![
                // months, days, millis: little-endian unsigned 32-bit each.
                to(
                    r#"{"months":1,"days":2,"millis":3}"#,
                    r#""\u0001\u0000\u0000\u0000\u0002\u0000\u0000\u0000\u0003\u0000\u0000\u0000""#,
                ),
                to(
                    r#"{"millis":256}"#,
                    r#""\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0001\u0000\u0000""#,
                ),
                same(
                    r#""\u0001\u0000\u0000\u0000\u0002\u0000\u0000\u0000\u0003\u0000\u0000\u0000""#,
                ),
            ],
        },
        Case {
            name: "all-in-one-record",
            schema: r#"{"type":"record","name":"Everything","namespace":"com.example","fields":[
                {"name":"flag","type":"boolean"},
                {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
                {"name":"day","type":{"type":"int","logicalType":"date"}},
                {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
                {"name":"id","type":{"type":"string","logicalType":"uuid"}},
                {"name":"nick","type":["null","string"],"default":null},
                {"name":"tags","type":{"type":"map","values":{"type":"array","items":"string"}}}]}"#,
            records: vec![
                (
                    r#"{"flag":true,"amount":"12.50","day":"2024-02-29","at":"2024-01-02T03:04:05.678Z","id":"123e4567-e89b-12d3-a456-426614174000","nick":"ann","tags":{"k":["v"]}}"#,
                    r#"{"flag":true,"amount":"\u0004\u00e2","day":19782,"at":1704164645678,"id":"123e4567-e89b-12d3-a456-426614174000","nick":{"string":"ann"},"tags":{"k":["v"]}}"#,
                    r#"{"flag":true,"amount":"\u0004\u00e2","day":19782,"at":1704164645678,"id":"123e4567-e89b-12d3-a456-426614174000","nick":"ann","tags":{"k":["v"]}}"#,
                ),
                to(
                    r#"{"flag":false,"amount":0,"day":0,"at":0,"id":"00000000-0000-0000-0000-000000000000","tags":{}}"#,
                    r#"{"flag":false,"amount":"\u0000","day":0,"at":0,"id":"00000000-0000-0000-0000-000000000000","nick":null,"tags":{}}"#,
                ),
            ],
        },
    ]
}

fn parse(json: &str, what: &str) -> Value {
    serde_json::from_str(json).unwrap_or_else(|error| panic!("{what} {json:?}: {error}"))
}

/// Registers `schema` under `subject` and returns its id.
async fn register(messaging: &TestMessaging, subject: &str, schema: &str) -> i32 {
    messaging
        .registry
        .client()
        .await
        .register_schema(registry_pb::RegisterSchemaRequest {
            subject: subject.to_owned(),
            schema: schema.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|status| panic!("cannot register {subject}: {status:?}"))
        .into_inner()
        .id
}

fn avro_by_id(schema_id: i32, json: &str) -> Option<pb::Payload> {
    Some(pb::Payload {
        kind: Some(pb::payload::Kind::Avro(pb::AvroPayload {
            json: json.to_owned(),
            schema: Some(pb::avro_payload::Schema::SchemaId(schema_id)),
        })),
    })
}

async fn produce(
    messaging: &TestMessaging,
    records: Vec<pb::ProducerRecord>,
) -> Vec<pb::ProduceResult> {
    messaging
        .client()
        .await
        .produce(pb::ProduceRequest { records })
        .await
        .unwrap()
        .into_inner()
        .results
}

fn partition_subscription(topic: &str, format: pb::PayloadFormat) -> pb::Subscription {
    pb::Subscription {
        group_id: unique_name("types"),
        partitions: vec![pb::TopicPartition {
            topic: topic.to_owned(),
            partition: 0,
        }],
        start: pb::StartPosition::Earliest as i32,
        value_format: format as i32,
        key_format: format as i32,
        ..Default::default()
    }
}

fn payload_json(payload: Option<&pb::ConsumedPayload>, what: &str) -> Value {
    let payload = payload.unwrap_or_else(|| panic!("{what}: no payload"));
    assert!(
        payload.error.is_none(),
        "{what}: decoding failed: {:?}",
        payload.error
    );
    match &payload.data {
        Some(pb::consumed_payload::Data::Json(text)) => parse(text, what),
        other => panic!("{what}: expected JSON, got {other:?}"),
    }
}

#[tokio::test]
async fn every_avro_type_and_logical_type_round_trips_as_canonical_json() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("types");
    messaging.create_topic(&topic, 1).await;
    let cases = cases();

    // One subject per type; every record goes to the one topic, written by schema id, with the
    // case name as an Avro string key.
    let key_id = register(&messaging, &format!("{topic}-key"), r#""string""#).await;
    // (case, schema id, input, tagged, plain)
    let mut expected = Vec::new();
    for case in &cases {
        let id = register(&messaging, &format!("{topic}-{}", case.name), case.schema).await;
        for (input, tagged, plain) in &case.records {
            expected.push((case.name, id, *input, *tagged, *plain));
        }
    }
    let records = expected
        .iter()
        .map(|(name, id, input, _, _)| pb::ProducerRecord {
            topic: topic.clone(),
            key: avro_by_id(key_id, &Value::String((*name).to_owned()).to_string()),
            value: avro_by_id(*id, input),
            ..Default::default()
        })
        .collect();
    let results = produce(&messaging, records).await;
    assert_eq!(results.len(), expected.len());
    for (result, (name, id, input, _, _)) in results.iter().zip(&expected) {
        match &result.result {
            Some(pb::produce_result::Result::Metadata(metadata)) => {
                assert_eq!(metadata.value_schema_id, Some(*id), "{name} {input}");
                assert_eq!(metadata.key_schema_id, Some(key_id), "{name} {input}");
            }
            other => panic!("{name}: {input} was not produced: {other:?}"),
        }
    }

    for format in [pb::PayloadFormat::AvroTagged, pb::PayloadFormat::AvroPlain] {
        let mut consumer = messaging
            .consume(partition_subscription(&topic, format))
            .await;
        let consumed = consumer.records(expected.len(), WAIT).await;
        for (record, (name, id, input, tagged, plain)) in consumed.iter().zip(&expected) {
            let what = format!("{name} {input} ({format:?})");
            assert_eq!(
                payload_json(record.key.as_ref(), &what),
                Value::String((*name).to_owned()),
                "{what}: key"
            );
            assert_eq!(
                record.value.as_ref().unwrap().schema_id,
                Some(*id),
                "{what}"
            );
            let want = if format == pb::PayloadFormat::AvroTagged {
                tagged
            } else {
                plain
            };
            assert_eq!(
                payload_json(record.value.as_ref(), &what),
                parse(want, "expected"),
                "{what}"
            );
        }
        drop(consumer);
    }
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn values_a_type_cannot_hold_fail_only_their_own_record() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("types-bad");
    messaging.create_topic(&topic, 1).await;
    let schema = r#"{"type":"record","name":"Row","fields":[
        {"name":"n","type":"int"},
        {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}},
        {"name":"id","type":{"type":"string","logicalType":"uuid"}},
        {"name":"day","type":{"type":"int","logicalType":"date"}},
        {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
        {"name":"span","type":{"type":"fixed","name":"Span","size":12,"logicalType":"duration"}},
        {"name":"pick","type":["null","long"]}]}"#;
    let id = register(&messaging, &format!("{topic}-value"), schema).await;
    let good = r#"{"n":1,"amount":"1.25","id":"123e4567-e89b-12d3-a456-426614174000","day":"2024-02-29","at":"2024-01-02T03:04:05.678Z","span":{"months":1},"pick":null}"#;
    let mut good_value: serde_json::Map<String, Value> = serde_json::from_str(good).unwrap();
    let with = |field: &str, value: Value| {
        let mut row = good_value.clone();
        row.insert(field.to_owned(), value);
        Value::Object(row).to_string()
    };
    // (input, the JSON path the error names)
    let bad = [
        (with("n", Value::from(2_147_483_648_i64)), "$.n"),
        (with("amount", Value::from("123.45")), "$.amount"),
        // (As a string, "1.255" would be Avro's byte string: only strings with at most `scale`
        // fraction digits are read as numbers.)
        (with("amount", serde_json::json!(1.255)), "$.amount"),
        (with("id", Value::from("not-a-uuid")), "$.id"),
        (with("day", Value::from("2024-02-30")), "$.day"),
        (with("at", Value::from("2024-01-02T03:04:05.6789Z")), "$.at"),
        (
            with("span", serde_json::json!({"months": -1})),
            "$.span.months",
        ),
        (with("pick", Value::from("text")), "$.pick"),
    ];
    let mut records = vec![good.to_owned()];
    for (input, _) in &bad {
        records.push(input.clone());
    }
    good_value.insert("n".to_owned(), Value::from(2));
    records.push(Value::Object(good_value).to_string());
    let results = produce(
        &messaging,
        records
            .iter()
            .map(|json| pb::ProducerRecord {
                topic: topic.clone(),
                value: avro_by_id(id, json),
                ..Default::default()
            })
            .collect(),
    )
    .await;
    assert_eq!(results.len(), bad.len() + 2);
    let offset = |result: &pb::ProduceResult| match &result.result {
        Some(pb::produce_result::Result::Metadata(metadata)) => metadata.offset,
        other => panic!("record not produced: {other:?}"),
    };
    assert_eq!(offset(&results[0]), 0);
    assert_eq!(offset(&results[bad.len() + 1]), 1);
    for (result, (input, path)) in results[1..=bad.len()].iter().zip(&bad) {
        match &result.result {
            Some(pb::produce_result::Result::Error(error)) => {
                assert_eq!(error.code, Code::InvalidArgument as i32, "{input}");
                assert_eq!(error.reason, "SCHEMA_MISMATCH", "{input}");
                assert!(
                    error.message.contains(path),
                    "{input}: {} does not name {path}",
                    error.message
                );
            }
            other => panic!("{input} was produced, expected SCHEMA_MISMATCH: {other:?}"),
        }
    }

    // Only the two good records are in the topic.
    let mut consumer = messaging
        .consume(partition_subscription(&topic, pb::PayloadFormat::AvroPlain))
        .await;
    let consumed = consumer.records(2, WAIT).await;
    assert_eq!(
        payload_json(consumed[0].value.as_ref(), "first")["n"],
        Value::from(1)
    );
    assert_eq!(
        payload_json(consumed[1].value.as_ref(), "last")["n"],
        Value::from(2)
    );
    drop(consumer);
    messaging.stop().await.unwrap();
}

/// A Protobuf schema of every scalar kind, nested messages, a enum, a map, a oneof and
/// well-known types; `Event` is not the file's first message.
const EVENTS_PROTO: &str = r#"syntax = "proto3";
package types.v1;
import "google/protobuf/timestamp.proto";
import "google/protobuf/struct.proto";
message Envelope { string source = 1; }
message Event {
  double d = 1; float f = 2; int32 i32 = 3; int64 i64 = 4; uint32 u32 = 5; uint64 u64 = 6;
  sint32 s32 = 7; sint64 s64 = 8; fixed32 x32 = 9; fixed64 x64 = 10; sfixed32 sx32 = 11;
  sfixed64 sx64 = 12; bool b = 13; string s = 14; bytes raw = 15;
  Kind kind = 16;
  map<string, Point> points = 17;
  repeated string tags = 18;
  oneof target { string user = 19; Point at = 20; }
  google.protobuf.Timestamp when = 21;
  google.protobuf.Struct extra = 22;
  optional int32 maybe = 23;
  message Point { int32 x = 1; int32 y = 2; }
  enum Kind { KIND_UNSPECIFIED = 0; KIND_CLICK = 1; }
}
"#;

fn protobuf_inline(message_name: &str, json: &str) -> Option<pb::Payload> {
    Some(pb::Payload {
        kind: Some(pb::payload::Kind::Protobuf(pb::ProtobufPayload {
            data: Some(pb::protobuf_payload::Data::Json(json.to_owned())),
            schema: Some(pb::protobuf_payload::Schema::Inline(pb::InlineSchema {
                schema: EVENTS_PROTO.to_owned(),
                strategy: pb::SubjectNameStrategy::RecordName as i32,
            })),
            message_name: message_name.to_owned(),
        })),
    })
}

#[tokio::test]
async fn protobuf_records_round_trip_as_canonical_json_and_bad_ones_fail_alone() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("types-proto");
    messaging.create_topic(&topic, 1).await;

    // (input, canonical JSON back): names in lowerCamelCase, 64-bit integers as strings, enums
    // by name, defaults left out, well-known types in their JSON forms.
    let records = [
        (
            r#"{"d":1.5,"f":-2,"i32":-7,"i64":"-9223372036854775808","u32":4294967295,"u64":18446744073709551615,"s32":-1,"s64":"5","x32":3,"x64":"4","sx32":-3,"sx64":"-4","b":true,"s":"héllo ✓","raw":"AP+A","kind":"KIND_CLICK","points":{"a":{"x":1,"y":-1}},"tags":["t1","t2"],"user":"ann","when":"2024-01-02T03:04:05.678Z","extra":{"k":[1,"two",null]},"maybe":0}"#,
            r#"{"d":1.5,"f":-2.0,"i32":-7,"i64":"-9223372036854775808","u32":4294967295,"u64":"18446744073709551615","s32":-1,"s64":"5","x32":3,"x64":"4","sx32":-3,"sx64":"-4","b":true,"s":"héllo ✓","raw":"AP+A","kind":"KIND_CLICK","points":{"a":{"x":1,"y":-1}},"tags":["t1","t2"],"user":"ann","when":"2024-01-02T03:04:05.678Z","extra":{"k":[1.0,"two",null]},"maybe":0}"#,
        ),
        // proto field names are accepted too; the oneof's other branch; defaults dropped.
        (
            r#"{"i32":0,"at":{"x":2},"kind":1,"s":""}"#,
            r#"{"kind":"KIND_CLICK","at":{"x":2}}"#,
        ),
        (r#"{}"#, r#"{}"#),
    ];
    let mut produced = Vec::new();
    for (input, _) in &records {
        produced.push(pb::ProducerRecord {
            topic: topic.clone(),
            value: protobuf_inline("types.v1.Event", input),
            ..Default::default()
        });
    }
    // Bad records fail alone, naming the field (and the message).
    let bad = [
        (r#"{"i32":2147483648}"#, "$.i32"),
        (r#"{"points":{"a":{"z":1}}}"#, "$.points.a"),
        (r#"{"kind":"KIND_NOPE"}"#, "$.kind"),
        (r#"{"unknown":1}"#, "unknown"),
        (r#"[1]"#, "$"),
    ];
    for (input, _) in &bad {
        produced.push(pb::ProducerRecord {
            topic: topic.clone(),
            value: protobuf_inline("types.v1.Event", input),
            ..Default::default()
        });
    }
    // A message the schema does not have.
    produced.push(pb::ProducerRecord {
        topic: topic.clone(),
        value: protobuf_inline("types.v1.Nope", "{}"),
        ..Default::default()
    });
    let results = produce(&messaging, produced).await;
    let mut id = None;
    for (result, (input, _)) in results.iter().zip(&records) {
        match &result.result {
            Some(pb::produce_result::Result::Metadata(metadata)) => {
                id = metadata.value_schema_id;
            }
            other => panic!("{input} was not produced: {other:?}"),
        }
    }
    for (result, (input, path)) in results[records.len()..].iter().zip(&bad) {
        match &result.result {
            Some(pb::produce_result::Result::Error(error)) => {
                assert_eq!(error.reason, "SCHEMA_MISMATCH", "{input}: {error:?}");
                assert!(error.message.contains(path), "{input}: {}", error.message);
                assert!(
                    error.message.contains("types.v1.Event"),
                    "{}",
                    error.message
                );
            }
            other => panic!("{input} was produced: {other:?}"),
        }
    }
    match &results.last().unwrap().result {
        Some(pb::produce_result::Result::Error(error)) => {
            assert!(error.message.contains("types.v1.Nope"), "{}", error.message);
        }
        other => panic!("an unknown message was produced: {other:?}"),
    }
    // RecordNameStrategy: the subject is the message's full name.
    let registry = messaging.registry.client().await;
    let mut registry = registry;
    let version = registry
        .get_subject_version(registry_pb::GetSubjectVersionRequest {
            subject: "types.v1.Event".to_owned(),
            version: -1,
            include_deleted: false,
        })
        .await
        .unwrap()
        .into_inner()
        .subject_version
        .unwrap();
    assert_eq!(Some(version.id), id);
    assert_eq!(version.schema_type, "PROTOBUF");

    // By id, as binary (checked, then written as it is); an Avro schema's id is refused.
    let avro_id = register(&messaging, &format!("{topic}-avro"), r#""string""#).await;
    let by_id = |schema_id: i32, data: pb::protobuf_payload::Data| pb::ProducerRecord {
        topic: topic.clone(),
        value: Some(pb::Payload {
            kind: Some(pb::payload::Kind::Protobuf(pb::ProtobufPayload {
                data: Some(data),
                schema: Some(pb::protobuf_payload::Schema::SchemaId(schema_id)),
                message_name: "types.v1.Event.Point".to_owned(),
            })),
        }),
        ..Default::default()
    };
    let results = produce(
        &messaging,
        vec![
            by_id(
                id.unwrap(),
                pb::protobuf_payload::Data::Binary(vec![0x08, 0x05].into()),
            ),
            by_id(
                id.unwrap(),
                pb::protobuf_payload::Data::Binary(vec![0x0a, 0x05].into()),
            ),
            by_id(avro_id, pb::protobuf_payload::Data::Json("{}".to_owned())),
        ],
    )
    .await;
    assert!(matches!(
        results[0].result,
        Some(pb::produce_result::Result::Metadata(_))
    ));
    for (result, names) in results[1..].iter().zip(["types.v1.Event.Point", "AVRO"]) {
        match &result.result {
            Some(pb::produce_result::Result::Error(error)) => {
                assert!(error.message.contains(names), "{}", error.message);
            }
            other => panic!("produced: {other:?}"),
        }
    }

    let mut consumer = messaging
        .consume(partition_subscription(
            &topic,
            pb::PayloadFormat::Unspecified,
        ))
        .await;
    let consumed = consumer.records(records.len() + 1, WAIT).await;
    for (record, (input, expected)) in consumed.iter().zip(&records) {
        let value = record.value.as_ref().unwrap();
        assert_eq!(value.schema_id, id, "{input}");
        assert_eq!(
            payload_json(Some(value), input),
            parse(expected, input),
            "{input}"
        );
    }
    assert_eq!(
        payload_json(consumed.last().unwrap().value.as_ref(), "binary"),
        serde_json::json!({"x": 5})
    );
    drop(consumer);
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn json_schema_records_are_validated_on_produce_and_come_back_as_written() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("types-json");
    messaging.create_topic(&topic, 1).await;
    let schema = r#"{"$schema":"http://json-schema.org/draft-07/schema#","title":"Reading","type":"object","properties":{"sensor":{"type":"string","minLength":1},"value":{"type":"number"},"tags":{"type":"array","items":{"type":"string"},"maxItems":3}},"required":["sensor","value"],"additionalProperties":false}"#;
    let id = messaging
        .registry
        .client()
        .await
        .register_schema(registry_pb::RegisterSchemaRequest {
            subject: format!("{topic}-value"),
            schema: schema.to_owned(),
            schema_type: "JSON".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    let json_record = |json: &str| pb::ProducerRecord {
        topic: topic.clone(),
        value: Some(pb::Payload {
            kind: Some(pb::payload::Kind::JsonSchema(pb::JsonSchemaPayload {
                json: json.to_owned(),
                schema: Some(pb::json_schema_payload::Schema::SchemaId(id)),
            })),
        }),
        ..Default::default()
    };
    let good = [
        r#"{"sensor":"t1","value":21.5,"tags":["a","b"]}"#,
        r#"{ "value": -1e3, "sensor": "é ✓" }"#,
    ];
    // (record, keyword, path)
    let bad = [
        (r#"{"sensor":"","value":1}"#, "minLength", "/sensor"),
        (r#"{"sensor":"x"}"#, "required", "value"),
        (
            r#"{"sensor":"x","value":1,"tags":["a","b","c","d"]}"#,
            "maxItems",
            "/tags",
        ),
        (r#"{"sensor":"x","value":"1"}"#, "type", "/value"),
        (
            r#"{"sensor":"x","value":1,"extra":0}"#,
            "additionalProperties",
            "extra",
        ),
    ];
    let mut records: Vec<pb::ProducerRecord> =
        bad.iter().map(|(json, _, _)| json_record(json)).collect();
    records.extend(good.iter().map(|json| json_record(json)));
    // Not JSON at all: refused before validation.
    records.push(json_record("{"));
    let results = produce(&messaging, records).await;
    for (result, (json, keyword, path)) in results.iter().zip(&bad) {
        match &result.result {
            Some(pb::produce_result::Result::Error(error)) => {
                assert_eq!(error.reason, "SCHEMA_MISMATCH", "{json}: {error:?}");
                assert!(
                    error.message.contains(keyword) && error.message.contains(path),
                    "{json}: {}",
                    error.message
                );
            }
            other => panic!("{json} was produced: {other:?}"),
        }
    }
    for result in &results[bad.len()..bad.len() + good.len()] {
        assert!(
            matches!(&result.result, Some(pb::produce_result::Result::Metadata(m)) if m.value_schema_id == Some(id)),
            "{result:?}"
        );
    }
    assert!(matches!(
        results.last().unwrap().result,
        Some(pb::produce_result::Result::Error(_))
    ));
    // A framed record that is not JSON (written raw, as a broken producer would): delivered with
    // an error and its bytes; the stream goes on to the next record.
    let mut broken = vec![0u8];
    broken.extend_from_slice(&id.to_be_bytes());
    broken.extend_from_slice(b"\xff not json");
    let results = produce(
        &messaging,
        vec![
            pb::ProducerRecord {
                topic: topic.clone(),
                value: Some(pb::Payload {
                    kind: Some(pb::payload::Kind::Raw(broken.clone().into())),
                }),
                ..Default::default()
            },
            json_record(good[0]),
        ],
    )
    .await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r.result, Some(pb::produce_result::Result::Metadata(_))))
    );

    let mut consumer = messaging
        .consume(partition_subscription(
            &topic,
            pb::PayloadFormat::Unspecified,
        ))
        .await;
    let consumed = consumer.records(good.len() + 2, WAIT).await;
    for (record, json) in consumed.iter().zip(good) {
        let value = record.value.as_ref().unwrap();
        assert_eq!(value.schema_id, Some(id));
        // As written, byte for byte.
        assert_eq!(
            value.data,
            Some(pb::consumed_payload::Data::Json(json.to_owned()))
        );
    }
    let broken_value = consumed[good.len()].value.as_ref().unwrap();
    assert!(broken_value.error.is_some(), "{broken_value:?}");
    assert_eq!(
        broken_value.data,
        Some(pb::consumed_payload::Data::Raw(broken.into()))
    );
    assert_eq!(
        payload_json(
            consumed[good.len() + 1].value.as_ref(),
            "after the broken one"
        ),
        parse(good[0], "good")
    );
    drop(consumer);
    messaging.stop().await.unwrap();
}
