//! The Avro side of payloads: JSON <-> Avro binary with a schema (`tributary_avro::codec`), and
//! Confluent's wire framing (magic byte 0, big-endian schema id, Avro binary;
//! `tributary_avro::wire`). Every conversion stays within the service's `Limits` (the nesting
//! of data, the work of checking a reader schema).

#![warn(clippy::arithmetic_side_effects)]

use tributary_avro::codec::{self, CodecError, UnionStyle};
use tributary_avro::wire;
use tributary_avro::{LimitExceeded, Limits, Schema};

use crate::error::MessagingError;

fn mismatch(field: &str, error: CodecError, limits: &Limits) -> MessagingError {
    if let Some(limit) = error.limit {
        return over_limit(field, &error, limit, limits);
    }
    MessagingError::SchemaMismatch {
        field: field.to_owned(),
        path: error.path,
        expected: error.expected,
        message: error.message,
    }
}

/// A key or value over a budget (its nesting).
fn over_limit(
    field: &str,
    error: &CodecError,
    limit: tributary_avro::Limit,
    limits: &Limits,
) -> MessagingError {
    MessagingError::OverLimit {
        source: LimitExceeded {
            limit,
            max: limit.of(limits),
            what: format!("the data at {}", error.path),
        },
        context: field.to_owned(),
    }
}

/// Encodes JSON text with a writer schema and frames it with the schema id. `field` ("key" or
/// "value") names the payload in errors.
pub fn encode(
    field: &str,
    schema: &Schema,
    schema_id: u32,
    json: &str,
    limits: &Limits,
) -> Result<Vec<u8>, MessagingError> {
    let avro =
        codec::json_to_avro_with(schema, json, limits).map_err(|e| mismatch(field, e, limits))?;
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
    limits: &Limits,
) -> Result<(), MessagingError> {
    let style = if tagged_unions {
        UnionStyle::Tagged
    } else {
        UnionStyle::Plain
    };
    codec::avro_to_json_into_checked_with(
        writer,
        reader.unwrap_or(writer),
        avro,
        style,
        out,
        limits,
    )
    .map_err(|error| match error.limit {
        Some(limit) => over_limit("payload", &error, limit, limits),
        None => undecodable(error),
    })
}

/// Whether data written with `writer` can be read as `reader` (see [`decode_into`]), within
/// the work budget.
pub fn check_readable(
    writer: &Schema,
    reader: &Schema,
    limits: &Limits,
) -> Result<(), MessagingError> {
    codec::check_readable_with(writer, reader, limits).map_err(|error| match error.limit {
        Some(limit) => MessagingError::OverLimit {
            source: LimitExceeded {
                limit,
                max: limit.of(limits),
                what: "checking it against the writer schema".to_owned(),
            },
            context: "the reader schema".to_owned(),
        },
        None => undecodable(error),
    })
}

fn undecodable(error: CodecError) -> MessagingError {
    MessagingError::Undecodable {
        reason: format!(
            "corrupt Avro at {}: expected {}: {}",
            error.path, error.expected, error.message
        ),
    }
}
