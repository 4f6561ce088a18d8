//! The codec's text paths checked against its value paths on every call: `json_to_avro` must
//! give exactly what parsing into a `serde_json::Value` and `value_to_avro` give, and
//! `avro_to_json` exactly `avro_to_value(..).to_string()` — the same bytes, the same text, the
//! same error values. Test files import these in place of the codec's functions.

#![allow(dead_code)]

use serde_json::Value;
use tributary_avro::Schema;
use tributary_avro::codec::{self, CodecError, UnionStyle};

/// [`codec::json_to_avro`], asserting it agrees with `serde_json::from_str` + `value_to_avro`.
pub fn json_to_avro(schema: &Schema, json: &str) -> Result<Vec<u8>, CodecError> {
    let text_path = codec::json_to_avro(schema, json);
    match serde_json::from_str::<Value>(json) {
        Ok(v) => {
            let value_path = codec::value_to_avro(schema, &v);
            assert_eq!(
                text_path, value_path,
                "json_to_avro vs value_to_avro for {json}"
            );
        }
        Err(e) => {
            let err = text_path.as_ref().err();
            assert_eq!(
                err.map(|e| (e.path.as_str(), e.message.clone())),
                Some(("$", format!("invalid JSON: {e}"))),
                "json_to_avro of invalid JSON {json:?}"
            );
            let other = codec::json_to_avro(schema, "[");
            assert_eq!(
                err.map(|e| &e.expected),
                other.as_ref().err().map(|e| &e.expected),
                "expected type of an invalid JSON error"
            );
        }
    }
    text_path
}

/// [`codec::avro_to_value`], asserting [`codec::avro_to_json`] gives its text (or its error).
pub fn avro_to_value(
    writer: &Schema,
    reader: Option<&Schema>,
    avro: &[u8],
    style: UnionStyle,
) -> Result<Value, CodecError> {
    let value_path = codec::avro_to_value(writer, reader, avro, style);
    let text_path = codec::avro_to_json(writer, reader, avro, style);
    assert_eq!(
        text_path,
        value_path
            .as_ref()
            .map(Value::to_string)
            .map_err(Clone::clone),
        "avro_to_json vs avro_to_value for {avro:02x?} ({style})"
    );
    value_path
}

/// [`codec::avro_to_json`], checked the same way.
pub fn avro_to_json(
    writer: &Schema,
    reader: Option<&Schema>,
    avro: &[u8],
    style: UnionStyle,
) -> Result<String, CodecError> {
    avro_to_value(writer, reader, avro, style).map(|v| v.to_string())
}
