//! Media types of the REST API, as the Kafka REST Proxy negotiates them.
//!
//! A produce request's `Content-Type` names its embedded format:
//! `application/vnd.kafka.{json,binary,avro,jsonschema,protobuf}.v2+json`, and the REST Proxy
//! v1 types `application/vnd.kafka.{json,binary,avro}.v1+json` (v1 produce bodies have v2's
//! shape); the generic `application/vnd.kafka.v2+json`, `application/vnd.kafka+json`,
//! `application/json` and `application/octet-stream` mean binary, as they did there. Other
//! routes read JSON under any of those types. Responses are `application/vnd.kafka.v2+json`
//! (records: the consumer's format's type), unless the request's `Accept` allows none of the
//! API's types (406).

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};

use crate::rest::error::RestError;

/// The REST Proxy v2 media type of every response but records.
pub const V2_JSON: &str = "application/vnd.kafka.v2+json";
/// The REST Proxy v3 API's media type.
pub const JSON: &str = "application/json";

/// An embedded format: how keys and values of records are written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddedFormat {
    /// Base64 of the bytes.
    Binary,
    /// JSON, written as its text.
    Json,
    /// Avro, in Avro's JSON encoding, with Confluent's framing.
    Avro,
    /// JSON validated against a JSON Schema, with Confluent's framing.
    JsonSchema,
    /// Protobuf in its canonical JSON mapping, with Confluent's framing.
    Protobuf,
}

impl EmbeddedFormat {
    /// The name in media types and in a consumer instance's `format`.
    pub fn name(self) -> &'static str {
        match self {
            EmbeddedFormat::Binary => "binary",
            EmbeddedFormat::Json => "json",
            EmbeddedFormat::Avro => "avro",
            EmbeddedFormat::JsonSchema => "jsonschema",
            EmbeddedFormat::Protobuf => "protobuf",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "binary" => EmbeddedFormat::Binary,
            "json" => EmbeddedFormat::Json,
            "avro" => EmbeddedFormat::Avro,
            "jsonschema" => EmbeddedFormat::JsonSchema,
            "protobuf" => EmbeddedFormat::Protobuf,
            _ => return None,
        })
    }

    /// Whether records of this format name a schema.
    pub fn has_schema(self) -> bool {
        matches!(
            self,
            EmbeddedFormat::Avro | EmbeddedFormat::JsonSchema | EmbeddedFormat::Protobuf
        )
    }

    /// The v2 media type of records in this format.
    pub fn media_type(self) -> &'static str {
        match self {
            EmbeddedFormat::Binary => "application/vnd.kafka.binary.v2+json",
            EmbeddedFormat::Json => "application/vnd.kafka.json.v2+json",
            EmbeddedFormat::Avro => "application/vnd.kafka.avro.v2+json",
            EmbeddedFormat::JsonSchema => "application/vnd.kafka.jsonschema.v2+json",
            EmbeddedFormat::Protobuf => "application/vnd.kafka.protobuf.v2+json",
        }
    }
}

/// A media type without its parameters, lower case.
fn essence(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// `application/vnd.kafka.<format>.<version>+json` split into format and version.
fn kafka_type(essence: &str) -> Option<(&str, &str)> {
    let rest = essence
        .strip_prefix("application/vnd.kafka.")?
        .strip_suffix("+json")?;
    rest.rsplit_once('.')
}

/// Whether a request type is one of the generic JSON types every route reads.
fn is_generic(essence: &str) -> bool {
    matches!(
        essence,
        V2_JSON | "application/vnd.kafka.v1+json" | "application/vnd.kafka+json" | JSON
    )
}

/// The embedded format a produce request's `Content-Type` names, and whether it is a v1 type.
pub fn produce_format(headers: &HeaderMap) -> Result<(EmbeddedFormat, bool), RestError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(unsupported("none"));
    };
    let Ok(value) = value.to_str() else {
        return Err(unsupported("not text"));
    };
    let essence = essence(value);
    if is_generic(&essence) || essence == "application/octet-stream" {
        return Ok((EmbeddedFormat::Binary, essence.contains(".v1+")));
    }
    match kafka_type(&essence) {
        Some((format, "v2")) => EmbeddedFormat::parse(format)
            .map(|format| (format, false))
            .ok_or_else(|| unsupported(&essence)),
        Some((format @ ("binary" | "json" | "avro"), "v1")) => Ok((
            EmbeddedFormat::parse(format).unwrap_or(EmbeddedFormat::Binary),
            true,
        )),
        _ => Err(unsupported(&essence)),
    }
}

/// Checks that a request with a body says it is JSON (any of the API's types; a missing
/// `Content-Type` is read as JSON, as curl without `-H` sends form types, which are refused).
pub fn check_json_body(headers: &HeaderMap) -> Result<(), RestError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = essence(value.to_str().unwrap_or_default());
    if is_generic(&essence) || kafka_type(&essence).is_some() {
        Ok(())
    } else {
        Err(unsupported(&essence))
    }
}

fn unsupported(what: &str) -> RestError {
    RestError::new(
        415,
        415,
        format!(
            "unsupported Content-Type ({}): produce requests take application/vnd.kafka.{{binary,json,avro,jsonschema,protobuf}}.v2+json (or the v1 binary, json and avro types), other requests application/vnd.kafka.v2+json or application/json",
            what.chars().take(128).collect::<String>()
        ),
    )
}

/// What the request's `Accept` header allows of `offered` (a response's type): `Ok` when it
/// is absent or allows it (exactly, by a wildcard, or by a generic JSON type), 406 otherwise.
pub fn check_accept(headers: &HeaderMap, offered: &str) -> Result<(), RestError> {
    let Some(value) = headers.get(ACCEPT) else {
        return Ok(());
    };
    let value = value.to_str().unwrap_or_default();
    let accepted = value.split(',').map(essence).any(|range| {
        range.is_empty()
            || range == "*/*"
            || range == "application/*"
            || range == offered
            || is_generic(&range)
    });
    if accepted {
        Ok(())
    } else {
        Err(RestError::new(
            406,
            406,
            format!(
                "none of the types the Accept header allows ({}) is {offered}",
                value.chars().take(256).collect::<String>()
            ),
        ))
    }
}

/// The records route's check: the `Accept` header must allow the consumer's format's type
/// (the REST Proxy's 40601 when it names another embedded format).
pub fn check_records_accept(headers: &HeaderMap, format: EmbeddedFormat) -> Result<(), RestError> {
    let Some(value) = headers.get(ACCEPT) else {
        return Ok(());
    };
    let value = value.to_str().unwrap_or_default();
    let mut named_other = false;
    for range in value.split(',').map(essence) {
        match kafka_type(&range) {
            Some((name, _)) if EmbeddedFormat::parse(name) == Some(format) => return Ok(()),
            Some((name, _)) if EmbeddedFormat::parse(name).is_some() => named_other = true,
            _ if range.is_empty()
                || range == "*/*"
                || range == "application/*"
                || is_generic(&range) =>
            {
                return Ok(());
            }
            _ => {}
        }
    }
    if named_other {
        Err(RestError::new(
            406,
            40601,
            format!(
                "The requested embedded data format does not match the deserializer for this consumer instance: it reads {} ({})",
                format.name(),
                format.media_type()
            ),
        ))
    } else {
        check_accept(headers, format.media_type())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(name: axum::http::HeaderName, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn produce_types_name_their_formats() {
        let format = |value| produce_format(&headers(CONTENT_TYPE, value));
        assert_eq!(
            format("application/vnd.kafka.json.v2+json"),
            Ok((EmbeddedFormat::Json, false))
        );
        assert_eq!(
            format("application/vnd.kafka.avro.v1+json; charset=utf-8"),
            Ok((EmbeddedFormat::Avro, true))
        );
        assert_eq!(
            format("application/json"),
            Ok((EmbeddedFormat::Binary, false))
        );
        assert_eq!(
            format("application/vnd.kafka.protobuf.v2+json"),
            Ok((EmbeddedFormat::Protobuf, false))
        );
        assert_eq!(format("text/plain").map_err(|e| e.status), Err(415));
        assert_eq!(
            format("application/vnd.kafka.protobuf.v1+json").map_err(|e| e.status),
            Err(415)
        );
        assert_eq!(
            produce_format(&HeaderMap::new()).map_err(|e| e.status),
            Err(415)
        );
    }

    #[test]
    fn records_accept_must_match_the_consumer_format() {
        let check = |value| {
            check_records_accept(&headers(ACCEPT, value), EmbeddedFormat::Avro)
                .map_err(|e| e.error_code)
        };
        assert_eq!(check("application/vnd.kafka.avro.v2+json"), Ok(()));
        assert_eq!(check("*/*"), Ok(()));
        assert_eq!(check("application/vnd.kafka.json.v2+json"), Err(40601));
        assert_eq!(check("text/html"), Err(406));
    }
}
