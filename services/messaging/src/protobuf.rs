//! The Protobuf side of payloads: JSON (Protobuf's canonical mapping) or binary <-> a message of
//! a registry schema, in Confluent's Protobuf framing (magic byte 0, big-endian schema id, the
//! message-index array, the message; `tributary_protobuf::wire`). A record that does not match
//! its message fails alone, naming the field path; nesting is bounded by serde_json (128 levels
//! of JSON) and prost (100 levels of binary).

#![warn(clippy::arithmetic_side_effects)]

use tributary_avro::wire;
use tributary_protobuf::json::{self, RecordError};
use tributary_protobuf::{MessageDescriptor, ProtoSchema};

use crate::error::MessagingError;

/// A producer's record: JSON text or binary.
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    Json(&'a str),
    Binary(&'a [u8]),
}

/// The message a producer names (`message_name`; empty: the schema's first message).
pub fn message(
    schema: &ProtoSchema,
    schema_id: u32,
    message_name: &str,
) -> Result<MessageDescriptor, MessagingError> {
    let found = if message_name.is_empty() {
        schema.first_message()
    } else {
        schema.message(message_name)
    };
    found.ok_or_else(|| {
        let shown: String = message_name.chars().take(256).collect();
        MessagingError::invalid(
            "message_name",
            if message_name.is_empty() {
                format!("schema {schema_id} declares no message")
            } else {
                format!(
                    "'{}' is not a message of schema {schema_id}",
                    shown.escape_debug()
                )
            },
        )
    })
}

/// Encodes a record as `message` of schema `schema_id` and frames it. `field` ("key" or
/// "value") names the payload in errors.
pub fn encode(
    field: &str,
    schema: &ProtoSchema,
    schema_id: u32,
    message: &MessageDescriptor,
    record: Record<'_>,
) -> Result<Vec<u8>, MessagingError> {
    let mismatch = |error: RecordError| match error {
        RecordError::Json { path, reason } => MessagingError::SchemaMismatch {
            field: field.to_owned(),
            path,
            expected: message.full_name().to_owned(),
            message: reason,
        },
        RecordError::Binary { reason, .. } => MessagingError::SchemaMismatch {
            field: field.to_owned(),
            path: "$".to_owned(),
            expected: message.full_name().to_owned(),
            message: reason,
        },
    };
    let indexes = schema.indexes_of(message).ok_or_else(|| {
        MessagingError::invalid(
            "message_name",
            format!(
                "'{}' is not a message of schema {schema_id}",
                message.full_name()
            ),
        )
    })?;
    // The frame built in place: magic byte, id, indexes, then the message.
    let mut framed = Vec::with_capacity(match record {
        Record::Json(text) => text.len(),
        Record::Binary(bytes) => bytes.len().saturating_add(16),
    });
    wire::encode_into(schema_id, &[], &mut framed);
    tributary_protobuf::wire::write_indexes(&indexes, &mut framed);
    match record {
        Record::Json(text) => {
            json::encode_json_into(message, text, &mut framed).map_err(mismatch)?
        }
        Record::Binary(bytes) => {
            json::check_binary(message, bytes).map_err(mismatch)?;
            framed.extend_from_slice(bytes);
        }
    }
    Ok(framed)
}

/// Decodes the body of a framed Protobuf payload (after the schema id) to JSON text, appended
/// to `out` (left as it was on an error).
pub fn decode_into(
    schema: &ProtoSchema,
    schema_id: u32,
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), MessagingError> {
    let (indexes, used) = tributary_protobuf::wire::read_indexes(body).map_err(|error| {
        MessagingError::Undecodable {
            reason: format!("not a Confluent-framed Protobuf payload: {error}"),
        }
    })?;
    let message = schema
        .message_at(&indexes)
        .ok_or_else(|| MessagingError::Undecodable {
            reason: format!("schema {schema_id} has no message at the indexes {indexes:?}"),
        })?;
    let payload = body.get(used..).unwrap_or_default();
    json::decode_to_json_into(&message, payload, out).map_err(|error| MessagingError::Undecodable {
        reason: format!("corrupt Protobuf: {error}"),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn schema() -> ProtoSchema {
        ProtoSchema::parse(
            "syntax = \"proto3\";\npackage t;\nmessage A { string s = 1; }\nmessage B { message C { int32 n = 1; } C c = 1; }\n",
            &[],
            &Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn records_round_trip_through_the_framing_with_their_message_indexes() {
        let schema = schema();
        let nested = message(&schema, 9, "t.B.C").unwrap();
        let framed = encode("value", &schema, 9, &nested, Record::Json(r#"{"n":5}"#)).unwrap();
        // Magic byte, id 9, indexes [1, 0] (count 2, then 1 and 0, zig-zag), the message.
        assert_eq!(&framed[..8], &[0, 0, 0, 0, 9, 4, 2, 0]);
        let (id, body) = wire::decode(&framed).unwrap();
        let mut out = Vec::new();
        decode_into(&schema, id, body, &mut out).unwrap();
        assert_eq!(out, br#"{"n":5}"#);

        let first = message(&schema, 9, "").unwrap();
        assert_eq!(first.full_name(), "t.A");
        let framed = encode(
            "value",
            &schema,
            9,
            &first,
            Record::Binary(&[0x0a, 0x01, b'x']),
        )
        .unwrap();
        assert_eq!(&framed[..6], &[0, 0, 0, 0, 9, 0]);
    }

    #[test]
    fn mismatches_and_corrupt_bodies_are_errors_naming_the_problem() {
        let schema = schema();
        let a = message(&schema, 9, "t.A").unwrap();
        let error = encode("value", &schema, 9, &a, Record::Json(r#"{"s":1}"#)).unwrap_err();
        assert!(error.to_string().contains("$.s"), "{error}");
        assert!(message(&schema, 9, "t.Nope").is_err());
        let mut out = Vec::new();
        assert!(decode_into(&schema, 9, &[4, 2, 6], &mut out).is_err());
        assert!(decode_into(&schema, 9, &[0, 0x0a, 0x05], &mut out).is_err());
        assert!(out.is_empty());
    }
}
