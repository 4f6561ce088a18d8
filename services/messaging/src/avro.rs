//! The Avro side of payloads: JSON <-> Avro binary with a schema (`tributary_avro::codec`), and
//! Confluent's wire framing (magic byte 0, big-endian schema id, Avro binary;
//! `tributary_avro::wire`).

#![warn(clippy::arithmetic_side_effects)]

use tributary_avro::Schema;
use tributary_avro::codec::{self, CodecError, UnionStyle};
use tributary_avro::wire;

use crate::error::MessagingError;

fn mismatch(field: &str, error: CodecError) -> MessagingError {
    MessagingError::SchemaMismatch {
        field: field.to_owned(),
        path: error.path,
        expected: error.expected,
        message: error.message,
    }
}

/// Encodes JSON text with a writer schema and frames it with the schema id. `field` ("key" or
/// "value") names the payload in errors.
pub fn encode(
    field: &str,
    schema: &Schema,
    schema_id: u32,
    json: &str,
) -> Result<Vec<u8>, MessagingError> {
    let avro = codec::json_to_avro(schema, json).map_err(|error| mismatch(field, error))?;
    Ok(wire::encode(schema_id, &avro))
}

/// The schema id and Avro body of a Confluent-framed payload.
pub fn unframe(frame: &[u8]) -> Result<(u32, &[u8]), MessagingError> {
    wire::decode(frame).map_err(|error| MessagingError::Undecodable {
        reason: format!("not a Confluent-framed Avro payload: {error}"),
    })
}

/// Decodes an Avro body written with `writer` (resolved to `reader` when given: a reader that
/// [`check_readable`] accepted for this writer, not checked again) to JSON text, appended to
/// `out` (left as it was on an error).
pub fn decode_into(
    writer: &Schema,
    reader: Option<&Schema>,
    avro: &[u8],
    tagged_unions: bool,
    out: &mut Vec<u8>,
) -> Result<(), MessagingError> {
    let style = if tagged_unions {
        UnionStyle::Tagged
    } else {
        UnionStyle::Plain
    };
    codec::avro_to_json_into_checked(writer, reader.unwrap_or(writer), avro, style, out)
        .map_err(undecodable)
}

/// Whether data written with `writer` can be read as `reader` (see [`decode_into`]).
pub fn check_readable(writer: &Schema, reader: &Schema) -> Result<(), MessagingError> {
    codec::check_readable(writer, reader).map_err(undecodable)
}

fn undecodable(error: CodecError) -> MessagingError {
    MessagingError::Undecodable {
        reason: format!(
            "corrupt Avro at {}: expected {}: {}",
            error.path, error.expected, error.message
        ),
    }
}
