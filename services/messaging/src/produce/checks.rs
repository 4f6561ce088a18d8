//! The checks of a record that need neither Kafka nor the registry: pure pieces of
//! [`Producer::prepare`](super::Producer::prepare), which services/fuzz runs over arbitrary
//! records.

use bytes::Bytes;
use tributary_avro::Schema;
use tributary_proto::messaging::v1 as pb;

use crate::error::MessagingError;

/// The latest record timestamp accepted, 9999-12-31T23:59:59.999Z: the end of the range of
/// `google.protobuf.Timestamp`.
pub const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

/// A timestamp as Kafka's milliseconds since the epoch, checked: Kafka takes no negative
/// timestamps (its Java clients refuse them; -1 means "none"), and nothing past
/// [`MAX_TIMESTAMP_MS`] is a valid protobuf Timestamp. (librdkafka reads 0 as "no timestamp"
/// and stamps the record with its own clock, as Kafka's Java producer does with null.)
pub fn kafka_timestamp_ms(
    field: &str,
    timestamp: &prost_types::Timestamp,
) -> Result<i64, MessagingError> {
    if !(0..1_000_000_000).contains(&timestamp.nanos) {
        return Err(MessagingError::invalid(
            field,
            format!("nanos {} is not between 0 and 999999999", timestamp.nanos),
        ));
    }
    let millis = timestamp
        .seconds
        .checked_mul(1000)
        .and_then(|millis| millis.checked_add(i64::from(timestamp.nanos / 1_000_000)))
        .filter(|millis| (0..=MAX_TIMESTAMP_MS).contains(millis));
    millis.ok_or_else(|| {
        MessagingError::invalid(
            field,
            format!(
                "{} s is outside the range Kafka accepts: 1970-01-01T00:00:00Z (0 s) to 9999-12-31T23:59:59.999Z ({} s)",
                timestamp.seconds,
                MAX_TIMESTAMP_MS / 1000
            ),
        )
    })
}

/// The record name of an Avro schema for the subject name strategies: its full name, when it
/// is a record.
pub fn avro_record_name(schema: &Schema) -> Option<String> {
    schema
        .full_name()
        .filter(|_| schema.type_name() == "record")
}

/// The subject a naming strategy gives; `record_name` is the Avro record's or the Protobuf
/// message's full name.
pub fn subject_name(
    strategy: i32,
    topic: &str,
    is_key: bool,
    record_name: Option<&str>,
) -> Result<String, MessagingError> {
    let suffix = if is_key { "key" } else { "value" };
    let record_name = || {
        record_name.ok_or_else(|| {
            MessagingError::invalid(
                "strategy",
                "RecordNameStrategy and TopicRecordNameStrategy need a record schema",
            )
        })
    };
    match pb::SubjectNameStrategy::try_from(strategy) {
        Ok(pb::SubjectNameStrategy::Unspecified | pb::SubjectNameStrategy::TopicName) => {
            Ok(format!("{topic}-{suffix}"))
        }
        Ok(pb::SubjectNameStrategy::RecordName) => record_name().map(str::to_owned),
        Ok(pb::SubjectNameStrategy::TopicRecordName) => Ok(format!("{topic}-{}", record_name()?)),
        Err(_) => Err(MessagingError::invalid(
            "strategy",
            format!("unknown subject name strategy {strategy}"),
        )),
    }
}

// ----- the checks of a record that need neither Kafka nor the registry ---------------------
//
// Pure pieces of `Producer::prepare`; services/fuzz runs them over arbitrary records.

/// A record's partition, when it names one, checked against its topic's partition count.
pub fn check_partition(
    topic: &str,
    partition: Option<i32>,
    partitions: i32,
) -> Result<(), MessagingError> {
    match partition {
        Some(partition) if !(0..partitions).contains(&partition) => {
            Err(MessagingError::PartitionNotFound {
                topic: topic.to_owned(),
                partition,
            })
        }
        _ => Ok(()),
    }
}

/// A key or value as a request gives it, before encoding.
#[derive(Debug)]
pub enum Unencoded {
    /// Raw bytes, text, or JSON text (checked to be JSON): produced as they are.
    Bytes(Bytes),
    /// Avro data as JSON, to be encoded with the schema it names.
    Avro(pb::AvroPayload),
    /// A Protobuf message as JSON or binary, to be encoded with the schema it names.
    Protobuf(pb::ProtobufPayload),
    /// JSON to be validated against the JSON schema it names.
    JsonSchema(pb::JsonSchemaPayload),
}

/// A record's key or value (`field`), `None` when absent; JSON text must be valid JSON.
pub fn unencoded(
    field: &str,
    payload: Option<pb::Payload>,
) -> Result<Option<Unencoded>, MessagingError> {
    let Some(kind) = payload.and_then(|p| p.kind) else {
        return Ok(None);
    };
    Ok(Some(match kind {
        pb::payload::Kind::Raw(bytes) => Unencoded::Bytes(bytes),
        pb::payload::Kind::Text(text) => Unencoded::Bytes(text.into()),
        pb::payload::Kind::Json(json) => {
            serde_json::from_str::<serde_json::Value>(&json).map_err(|error| {
                MessagingError::invalid(field, format!("not valid JSON: {error}"))
            })?;
            Unencoded::Bytes(json.into())
        }
        pb::payload::Kind::Avro(avro_payload) => Unencoded::Avro(avro_payload),
        pb::payload::Kind::Protobuf(proto_payload) => Unencoded::Protobuf(proto_payload),
        pb::payload::Kind::JsonSchema(json_payload) => Unencoded::JsonSchema(json_payload),
    }))
}

/// An Avro payload's `schema_id`, checked (> 0).
pub fn schema_id_from_wire(id: i32) -> Result<u32, MessagingError> {
    u32::try_from(id)
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| MessagingError::invalid("schema_id", format!("{id} is not > 0")))
}

/// The subject an Avro payload's `subject_version` names: its subject, or without one the
/// topic's (`<topic>-key` / `<topic>-value`, TopicNameStrategy only).
pub fn selected_subject(
    topic: &str,
    field: &str,
    selector: &pb::SubjectVersionSelector,
) -> Result<String, MessagingError> {
    if !selector.subject.is_empty() {
        return Ok(selector.subject.clone());
    }
    if selector.strategy != 0 && selector.strategy != pb::SubjectNameStrategy::TopicName as i32 {
        return Err(MessagingError::invalid(
            "subject_version",
            "without a subject, only TopicNameStrategy can name it",
        ));
    }
    Ok(format!("{topic}-{field}"))
}

/// A record's size as Kafka counts it against `message.max.bytes` (`limit`): key, value and
/// headers' keys and values.
pub fn check_record_size(
    key: Option<&Bytes>,
    value: Option<&Bytes>,
    headers: &[(String, Bytes)],
    limit: usize,
) -> Result<(), MessagingError> {
    let size = headers.iter().fold(
        key.map_or(0, Bytes::len)
            .saturating_add(value.map_or(0, Bytes::len)),
        |size, (k, v)| size.saturating_add(k.len()).saturating_add(v.len()),
    );
    if size > limit {
        return Err(MessagingError::RecordTooLarge { size, limit });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timestamp(seconds: i64, nanos: i32) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos }
    }

    #[test]
    fn timestamps_outside_what_kafka_takes_are_refused() {
        assert_eq!(
            kafka_timestamp_ms("timestamp", &timestamp(1_700_000_000, 5_000_000)).ok(),
            Some(1_700_000_000_005)
        );
        assert_eq!(
            kafka_timestamp_ms("timestamp", &timestamp(0, 0)).ok(),
            Some(0)
        );
        assert_eq!(
            kafka_timestamp_ms("timestamp", &timestamp(253_402_300_799, 999_999_999)).ok(),
            Some(MAX_TIMESTAMP_MS)
        );
        for (seconds, nanos) in [
            (i64::MIN, 0),
            (i64::MAX, 0),
            (-1, 0),
            (253_402_300_800, 0),
            (0, -1),
            (0, 1_000_000_000),
        ] {
            let error = kafka_timestamp_ms("timestamp", &timestamp(seconds, nanos))
                .expect_err("out of range");
            assert_eq!(error.grpc_code(), tonic::Code::InvalidArgument, "{error}");
            assert!(error.to_string().contains("timestamp"), "{error}");
        }
    }
}
