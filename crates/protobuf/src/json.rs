//! Records between Protobuf's binary encoding and its canonical JSON mapping (proto3 JSON:
//! lowerCamelCase names accepted with the proto names, 64-bit integers as strings, enums by
//! name, well-known types in their special forms), through `prost-reflect`'s dynamic messages.
//!
//! Bounded: serde_json refuses JSON nested deeper than 128 levels, prost refuses binary nested
//! deeper than 100.

use prost::Message as _;
use prost_reflect::{DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions};

/// Why a record does not match its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// JSON that is not a `message`: the path of the offending field (`$` for the top), and why.
    #[error("at {path}: {reason}")]
    Json { path: String, reason: String },
    /// Bytes that do not decode as `message`.
    #[error("not a valid '{message}' record: {reason}")]
    Binary { message: String, reason: String },
}

/// Encodes a JSON record as `message`, refusing unknown fields.
pub fn encode_json(message: &MessageDescriptor, json: &str) -> Result<Vec<u8>, RecordError> {
    let mut out = Vec::with_capacity(json.len());
    encode_json_into(message, json, &mut out)?;
    Ok(out)
}

/// [`encode_json`], the encoded message appended to `out` (left as it was on an error). The
/// happy path parses once without tracking the field path; a record that fails is parsed again
/// with the path tracked, to name where.
pub fn encode_json_into(
    message: &MessageDescriptor,
    json: &str,
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let parsed =
        DynamicMessage::deserialize_with_options(message.clone(), &mut deserializer, &options)
            .and_then(|record| deserializer.end().map(|()| record));
    match parsed {
        Ok(record) => record.encode(out).map_err(|error| RecordError::Json {
            path: "$".to_owned(),
            reason: error.to_string(),
        }),
        Err(_) => Err(located_json_error(message, json, &options)),
    }
}

/// The error of a JSON record that does not parse as `message`, with the path of the field at
/// fault (`$.lines[1].count`).
fn located_json_error(
    message: &MessageDescriptor,
    json: &str,
    options: &DeserializeOptions,
) -> RecordError {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let mut track = serde_path_to_error::Track::new();
    let parsed = DynamicMessage::deserialize_with_options(
        message.clone(),
        serde_path_to_error::Deserializer::new(&mut deserializer, &mut track),
        options,
    )
    .and_then(|record| deserializer.end().map(|()| record));
    let reason = match parsed {
        Err(error) => error.to_string(),
        // Not reached: the same input failed a moment ago.
        Ok(_) => "the record does not match its message".to_owned(),
    };
    let path = track.path().to_string();
    RecordError::Json {
        path: if path == "." || path.is_empty() {
            "$".to_owned()
        } else {
            format!("$.{path}")
        },
        reason,
    }
}

/// Checks that `bytes` decode as `message` (the binary pass-through of producers).
pub fn check_binary(message: &MessageDescriptor, bytes: &[u8]) -> Result<(), RecordError> {
    DynamicMessage::decode(message.clone(), bytes)
        .map(|_| ())
        .map_err(|error| RecordError::Binary {
            message: message.full_name().to_owned(),
            reason: error.to_string(),
        })
}

/// Decodes a binary record of `message` to its canonical JSON (fields with default values
/// omitted, as proto3 JSON printers do).
pub fn decode_to_json(message: &MessageDescriptor, bytes: &[u8]) -> Result<String, RecordError> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(2));
    decode_to_json_into(message, bytes, &mut out)?;
    String::from_utf8(out).map_err(|e| RecordError::Binary {
        message: message.full_name().to_owned(),
        reason: e.to_string(),
    })
}

/// [`decode_to_json`], the JSON (UTF-8: serde_json writes nothing else) appended to `out`
/// (left as it was on an error).
pub fn decode_to_json_into(
    message: &MessageDescriptor,
    bytes: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    let binary_error = |reason: String| RecordError::Binary {
        message: message.full_name().to_owned(),
        reason,
    };
    let record =
        DynamicMessage::decode(message.clone(), bytes).map_err(|e| binary_error(e.to_string()))?;
    let start = out.len();
    let mut serializer = serde_json::Serializer::new(&mut *out);
    record
        .serialize_with_options(&mut serializer, &SerializeOptions::new())
        .map_err(|e| {
            out.truncate(start);
            binary_error(e.to_string())
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Budgets, ProtoSchema};

    fn schema() -> ProtoSchema {
        ProtoSchema::parse(
            "syntax = \"proto3\";\npackage t;\nimport \"google/protobuf/timestamp.proto\";\nenum Kind { KIND_UNSPECIFIED = 0; KIND_BIG = 1; }\nmessage Item { string sku = 1; int64 count = 2; }\nmessage Order {\n  string id = 1;\n  repeated Item items = 2;\n  map<string, int32> tags = 3;\n  Kind kind = 4;\n  oneof pay { string card = 5; string iban = 6; }\n  google.protobuf.Timestamp at = 7;\n}\n",
            &[],
            &Budgets::default(),
        )
        .unwrap()
    }

    #[test]
    fn json_round_trips_through_binary() {
        let schema = schema();
        let order = schema.message("t.Order").unwrap();
        let json = r#"{"id":"o-1","items":[{"sku":"a","count":"3"}],"tags":{"x":1},"kind":"KIND_BIG","iban":"DE00","at":"2026-12-04T10:00:00Z"}"#;
        let bytes = encode_json(&order, json).unwrap();
        check_binary(&order, &bytes).unwrap();
        let back: serde_json::Value =
            serde_json::from_str(&decode_to_json(&order, &bytes).unwrap()).unwrap();
        let expected: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(back, expected);
    }

    #[test]
    fn a_mismatch_names_the_field_path() {
        let schema = schema();
        let order = schema.message("t.Order").unwrap();
        let error = encode_json(&order, r#"{"items":[{"sku":"a"},{"count":"x"}]}"#).unwrap_err();
        let RecordError::Json { path, .. } = &error else {
            panic!("{error}")
        };
        assert_eq!(path, "$.items[1].count", "{error}");
        let error = encode_json(&order, r#"{"nope":1}"#).unwrap_err();
        assert!(error.to_string().contains("nope"), "{error}");
        assert!(encode_json(&order, r#"{"id":"a"} trailing"#).is_err());
        assert!(check_binary(&order, &[0x0a, 0x05, b'a']).is_err());
    }
}
