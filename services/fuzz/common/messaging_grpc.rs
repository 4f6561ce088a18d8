//! The body of the fuzz target `messaging_grpc_requests` (shared with the stable replay test of
//! the service crate, which includes this file): arbitrary bytes decoded (prost) as the messaging
//! service's request messages — Produce, ProduceStream, Consume (subscription, acks, seek) and
//! the admin requests — then what the handlers do with them before rdkafka: the record checks
//! (topic, partition, header and record size, timestamp), the payloads (raw, text, JSON checked,
//! Avro encoded from JSON with a schema id, a subject's version or an inline schema; a few fixed
//! schemas stand in for the registry), the subscription checks and reader schema, the
//! acknowledgement bookkeeping, and every error as the gRPC status the client would get.
//!
//! Input: byte 0 picks the message, the rest is the message.

use std::sync::OnceLock;

use bytes::Bytes;
use prost::Message;
use tributary_avro::{Limits, Schema};
use tributary_messaging::MessagingError;
use tributary_messaging::avro;
use tributary_messaging::consume::acks::AckTracker;
use tributary_messaging::consume::{check_seek, check_subscription, subscription_options};
use tributary_messaging::grpc::{check_create_topic, required};
use tributary_messaging::produce::{
    MAX_TIMESTAMP_MS, Unencoded, avro_record_name, check_partition, check_record_size,
    kafka_timestamp_ms, results_to_wire, schema_id_from_wire, selected_subject, subject_name,
    unencoded,
};
use tributary_messaging::schemas::{
    parse_client_json_schema, parse_client_proto, parse_client_schema,
};
use tributary_messaging::{json_schema, protobuf};
use tributary_proto::messaging::v1 as pb;

/// The partitions of every topic (the stand-in for Kafka's metadata).
const PARTITIONS: i32 = 3;
/// Kafka's default `message.max.bytes`.
const MAX_MESSAGE_BYTES: usize = 1_048_588;

/// Schemas standing in for the registry: schema id n (and version n of any subject) is
/// `SCHEMAS[n - 1]`.
const SCHEMAS: [&str; 4] = [
    r#""string""#,
    r#"{"type":"record","name":"Order","namespace":"fuzz","fields":[{"name":"id","type":"long"},{"name":"note","type":["null","string"],"default":null},{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]},"default":"A"}]}"#,
    r#"{"type":"record","name":"Reading","fields":[{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},{"name":"values","type":{"type":"array","items":"double"}},{"name":"tags","type":{"type":"map","values":"string"}},{"name":"raw","type":{"type":"fixed","name":"Raw","size":4}},{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}}]}"#,
    r#"["null","int","float","boolean",{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}]"#,
];

/// The stand-ins' schemas and the service's budgets.
#[derive(Debug)]
struct Fixture {
    limits: Limits,
    schemas: Vec<Schema>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let limits = Limits::default();
        let schemas = SCHEMAS
            .iter()
            .map(|text| parse_client_schema(text, &limits).expect("a fixture schema parses"))
            .collect();
        Fixture { limits, schemas }
    })
}

/// The registry's schema `id` (or a subject's `version`), from the stand-in.
fn registry_schema(id: u32) -> Result<&'static Schema, MessagingError> {
    usize::try_from(id)
        .ok()
        .and_then(|id| id.checked_sub(1))
        .and_then(|index| fixture().schemas.get(index))
        .ok_or_else(|| MessagingError::Registry {
            code: tonic::Code::NotFound,
            message: format!("schema {id} not found"),
            answered: true,
        })
}

/// `Producer::encode` and `encode_avro`: a key or value, encoded.
fn encode(
    topic: &str,
    is_key: bool,
    payload: Option<pb::Payload>,
) -> Result<Option<Bytes>, MessagingError> {
    let field = if is_key { "key" } else { "value" };
    let avro_payload = match unencoded(field, payload)? {
        None => return Ok(None),
        Some(Unencoded::Bytes(bytes)) => return Ok(Some(bytes)),
        Some(Unencoded::Avro(avro_payload)) => avro_payload,
        Some(Unencoded::Protobuf(proto_payload)) => {
            return encode_protobuf(topic, is_key, proto_payload);
        }
        Some(Unencoded::JsonSchema(json_payload)) => {
            return encode_json_schema(topic, is_key, json_payload);
        }
    };
    let limits = &fixture().limits;
    let inline;
    let (id, schema) = match &avro_payload.schema {
        None => {
            return Err(MessagingError::invalid(
                field,
                "an Avro payload needs a schema (schema_id, subject_version or inline)",
            ));
        }
        Some(pb::avro_payload::Schema::SchemaId(id)) => {
            let id = schema_id_from_wire(*id)?;
            (id, registry_schema(id)?)
        }
        Some(pb::avro_payload::Schema::SubjectVersion(selector)) => {
            let subject = selected_subject(topic, field, selector)?;
            assert!(!subject.is_empty());
            let version = u32::try_from(selector.version).unwrap_or(0);
            let version = if version == 0 { 2 } else { version };
            (version, registry_schema(version)?)
        }
        Some(pb::avro_payload::Schema::Inline(given)) => {
            inline = parse_client_schema(&given.schema, limits)?;
            let subject = subject_name(
                given.strategy,
                topic,
                is_key,
                avro_record_name(&inline).as_deref(),
            )?;
            assert!(!subject.is_empty());
            (1000, &inline)
        }
    };
    let framed = avro::encode(field, schema, id, &avro_payload.json, limits)?;
    // What was produced reads back: the frame names the schema, the datum decodes with it.
    let (framed_id, datum) = avro::unframe(&framed).expect("our own frame decodes");
    assert_eq!(framed_id, id);
    let mut json = Vec::new();
    avro::decode_into(schema, None, datum, true, &mut json, limits)
        .unwrap_or_else(|e| panic!("an encoded datum does not decode: {e}"));
    Ok(Some(framed.into()))
}

/// The registry's PROTOBUF schema in the stand-in (every id and subject version names it).
const PROTOBUF_SCHEMA: &str = "syntax = \"proto3\";\npackage fuzz;\nimport \"google/protobuf/timestamp.proto\";\nmessage Order {\n  int64 id = 1;\n  string note = 2;\n  enum Kind { KIND_UNSPECIFIED = 0; KIND_A = 1; }\n  Kind kind = 3;\n  map<string, string> tags = 4;\n  message Line { string sku = 1; uint32 count = 2; }\n  repeated Line lines = 5;\n  oneof pay { string card = 6; bytes token = 7; }\n  google.protobuf.Timestamp at = 8;\n}\n";

/// `Producer::encode_protobuf`: a Protobuf key or value, encoded; what was produced reads back.
fn encode_protobuf(
    topic: &str,
    is_key: bool,
    payload: pb::ProtobufPayload,
) -> Result<Option<Bytes>, MessagingError> {
    let field = if is_key { "key" } else { "value" };
    let limits = &fixture().limits;
    let (id, schema) = match &payload.schema {
        None => {
            return Err(MessagingError::invalid(
                field,
                "a Protobuf payload needs a schema",
            ));
        }
        Some(pb::protobuf_payload::Schema::Inline(given)) => {
            let schema = parse_client_proto(&given.schema, limits)?;
            let message = protobuf::message(&schema, 1000, &payload.message_name)?;
            let subject = subject_name(given.strategy, topic, is_key, Some(message.full_name()))?;
            assert!(!subject.is_empty());
            (1000, schema)
        }
        Some(pb::protobuf_payload::Schema::SchemaId(id)) => {
            let id = schema_id_from_wire(*id)?;
            (
                id,
                parse_client_proto(PROTOBUF_SCHEMA, limits).expect("the fixture compiles"),
            )
        }
        Some(pb::protobuf_payload::Schema::SubjectVersion(selector)) => {
            let subject = selected_subject(topic, field, selector)?;
            assert!(!subject.is_empty());
            (
                3,
                parse_client_proto(PROTOBUF_SCHEMA, limits).expect("the fixture compiles"),
            )
        }
    };
    let message = protobuf::message(&schema, id, &payload.message_name)?;
    let record = match &payload.data {
        Some(pb::protobuf_payload::Data::Json(json)) => protobuf::Record::Json(json),
        Some(pb::protobuf_payload::Data::Binary(bytes)) => protobuf::Record::Binary(bytes),
        None => {
            return Err(MessagingError::invalid(
                field,
                "a Protobuf payload needs its record",
            ));
        }
    };
    let framed = protobuf::encode(field, &schema, id, &message, record)?;
    let (framed_id, body) = avro::unframe(&framed).expect("our own frame decodes");
    assert_eq!(framed_id, id);
    let mut json = Vec::new();
    protobuf::decode_into(&schema, id, body, &mut json)
        .unwrap_or_else(|e| panic!("an encoded message does not decode: {e}"));
    Ok(Some(framed.into()))
}

/// The registry's JSON schema in the stand-in (every id and subject version names it).
const JSON_SCHEMA: &str = r##"{"$schema":"http://json-schema.org/draft-07/schema#","title":"Order","type":"object","properties":{"id":{"type":"integer","minimum":1},"note":{"type":["string","null"],"maxLength":100},"lines":{"type":"array","items":{"$ref":"#/definitions/line"}}},"required":["id"],"additionalProperties":false,"definitions":{"line":{"type":"object","properties":{"sku":{"type":"string","pattern":"^[a-z]+$"},"count":{"type":"integer"}}}}}"##;

/// `Producer::encode_json_schema`: a JSON Schema key or value, validated and framed; what was
/// produced reads back.
fn encode_json_schema(
    topic: &str,
    is_key: bool,
    payload: pb::JsonSchemaPayload,
) -> Result<Option<Bytes>, MessagingError> {
    let field = if is_key { "key" } else { "value" };
    let limits = &fixture().limits;
    let (id, schema) = match &payload.schema {
        None => {
            return Err(MessagingError::invalid(
                field,
                "a JSON Schema payload needs a schema",
            ));
        }
        Some(pb::json_schema_payload::Schema::Inline(given)) => {
            let schema = parse_client_json_schema(&given.schema, limits)?;
            let name = json_schema::record_name(&schema);
            let subject = subject_name(given.strategy, topic, is_key, name.as_deref())?;
            assert!(!subject.is_empty());
            (1000, schema)
        }
        Some(pb::json_schema_payload::Schema::SchemaId(id)) => (
            schema_id_from_wire(*id)?,
            parse_client_json_schema(JSON_SCHEMA, limits).expect("the fixture parses"),
        ),
        Some(pb::json_schema_payload::Schema::SubjectVersion(selector)) => {
            let subject = selected_subject(topic, field, selector)?;
            assert!(!subject.is_empty());
            (
                5,
                parse_client_json_schema(JSON_SCHEMA, limits).expect("the fixture parses"),
            )
        }
    };
    let framed = json_schema::encode(field, &schema, id, &payload.json)?;
    let (framed_id, body) = avro::unframe(&framed).expect("our own frame decodes");
    assert_eq!(framed_id, id);
    let mut json = Vec::new();
    json_schema::decode_into(body, &mut json)
        .unwrap_or_else(|e| panic!("a validated record does not read back: {e}"));
    assert_eq!(json, payload.json.as_bytes());
    Ok(Some(framed.into()))
}

/// `Producer::prepare`, Kafka's partition count and the registry stood in for.
fn prepare(record: pb::ProducerRecord) -> Result<pb::RecordMetadata, MessagingError> {
    if record.topic.is_empty() {
        return Err(MessagingError::invalid("topic", "required"));
    }
    check_partition(&record.topic, record.partition, PARTITIONS)?;
    let key = encode(&record.topic, true, record.key)?;
    let value = encode(&record.topic, false, record.value)?;
    let headers: Vec<(String, Bytes)> = record
        .headers
        .into_iter()
        .map(|h| (h.key, h.value))
        .collect();
    check_record_size(key.as_ref(), value.as_ref(), &headers, MAX_MESSAGE_BYTES)?;
    let timestamp = record
        .timestamp
        .map(|t| kafka_timestamp_ms("timestamp", &t))
        .transpose()?;
    if let Some(millis) = timestamp {
        assert!((0..=MAX_TIMESTAMP_MS).contains(&millis));
    }
    Ok(pb::RecordMetadata {
        topic: record.topic,
        partition: record.partition.unwrap_or(0),
        ..Default::default()
    })
}

/// Every error a handler answers becomes a gRPC status within a client's header limits.
fn check_status(error: MessagingError) {
    let status = tonic::Status::from(error);
    assert_ne!(status.code(), tonic::Code::Internal, "{status:?}");
    let mut trailers = tonic::codegen::http::HeaderMap::new();
    status
        .add_header(&mut trailers)
        .expect("the status makes valid trailers");
    let size: usize = trailers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    assert!(size < 64 * 1024, "{size} bytes of trailers");
}

/// The stream's acknowledgement bookkeeping after records 0..10 of t/0 and t/1 went out.
fn tracker() -> AckTracker {
    let mut tracker = AckTracker::default();
    for offset in 0..10 {
        tracker.delivered("t", 0, offset);
        tracker.delivered("t", 1, offset + 100);
    }
    tracker
}

/// An acknowledgement: what moves, moves forward.
fn ack(tracker: &mut AckTracker, topic: &str, partition: i32, offset: i64, up_to: bool) {
    let before = tracker.unacked();
    let moved = if up_to {
        tracker.ack_up_to(topic, partition, offset)
    } else {
        tracker.ack(topic, partition, offset)
    };
    assert!(tracker.unacked() <= before);
    if let Some(position) = moved {
        assert!(position > 0, "commit position {position}");
        assert_eq!(tracker.resume_position(topic, partition), Some(position));
    }
}

fn consume(request: pb::ConsumeRequest) -> Result<(), MessagingError> {
    match request.kind {
        None => Err(MessagingError::invalid("request", "empty")),
        Some(pb::consume_request::Kind::Subscription(subscription)) => {
            let start = check_subscription(&subscription)?;
            let reader = if subscription.reader_schema.is_empty() {
                None
            } else {
                Some(parse_client_schema(
                    &subscription.reader_schema,
                    &fixture().limits,
                )?)
            };
            subscription_options(&subscription)?;
            for tp in &subscription.partitions {
                check_partition(&tp.topic, Some(tp.partition), PARTITIONS)?;
            }
            if start == pb::StartPosition::Timestamp
                && let Some(time) = &subscription.start_time
            {
                kafka_timestamp_ms("start_time", time)?;
            }
            // Each record's writer schema is checked against the reader before decoding.
            if let Some(reader) = &reader {
                for writer in &fixture().schemas {
                    let _ = avro::check_readable(writer, reader, &fixture().limits)
                        .map_err(check_status);
                }
            }
            Ok(())
        }
        Some(pb::consume_request::Kind::Ack(a)) => {
            ack(&mut tracker(), &a.topic, a.partition, a.offset, false);
            Ok(())
        }
        Some(pb::consume_request::Kind::Acks(acks)) => {
            let mut tracker = tracker();
            for a in acks.records {
                ack(&mut tracker, &a.topic, a.partition, a.offset, false);
            }
            for a in acks.up_to {
                ack(&mut tracker, &a.topic, a.partition, a.offset, true);
            }
            Ok(())
        }
        Some(pb::consume_request::Kind::Seek(seek)) => {
            check_seek(&seek)?;
            let mut tracker = tracker();
            tracker.forget(&seek.topic, seek.partition);
            assert!(!tracker.is_pending(&seek.topic, seek.partition, seek.offset));
            Ok(())
        }
    }
}

fn handle(kind: u8, message: &[u8]) -> Result<bool, MessagingError> {
    macro_rules! decode {
        ($t:ty) => {
            match <$t>::decode(message) {
                Ok(request) => request,
                Err(_) => return Ok(false),
            }
        };
    }
    match kind {
        0 => {
            let request = decode!(pb::ProduceRequest);
            let count = request.records.len();
            let results: Vec<_> = request.records.into_iter().map(prepare).collect();
            let accepted = results.iter().all(Result::is_ok);
            // A record's error is answered in its result (not as a status), the messages of a
            // response capped.
            let response = results_to_wire(results);
            assert_eq!(response.results.len(), count);
            assert!(!response.encode_to_vec().is_empty() || count == 0);
            return Ok(accepted);
        }
        1 => {
            let request = decode!(pb::ProduceStreamRequest);
            let record = request
                .record
                .ok_or_else(|| MessagingError::invalid("record", "required"))?;
            prepare(record)?;
        }
        2 => consume(decode!(pb::ConsumeRequest))?,
        3 => {
            let request = decode!(pb::CreateTopicRequest);
            check_create_topic(&request)?;
        }
        4 => {
            required("topic", &decode!(pb::DescribeTopicRequest).topic)?;
        }
        5 => {
            required("topic", &decode!(pb::DeleteTopicRequest).topic)?;
        }
        6 => {
            required("topic", &decode!(pb::GetWatermarksRequest).topic)?;
        }
        7 => {
            required(
                "group_id",
                &decode!(pb::DescribeConsumerGroupRequest).group_id,
            )?;
        }
        _ => {
            let _ = decode!(pb::ListTopicsRequest).include_internal;
        }
    }
    Ok(true)
}

/// Runs one input; true when it was accepted. Panics on a broken invariant only.
pub fn body(data: &[u8]) -> bool {
    let [kind, message @ ..] = data else {
        return false;
    };
    match handle(kind % 9, message) {
        Ok(accepted) => accepted,
        Err(error) => {
            if print_refusals() {
                eprintln!("  {error}");
            }
            check_status(error);
            false
        }
    }
}

/// Whether to print why an input was refused (`FUZZ_VERBOSE` set: the stable programs).
fn print_refusals() -> bool {
    static VERBOSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("FUZZ_VERBOSE").is_some())
}
