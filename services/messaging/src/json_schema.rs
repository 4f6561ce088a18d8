//! The JSON Schema side of payloads: JSON text validated against a registry JSON Schema and
//! framed as Confluent's JSON Schema serializers frame it (magic byte 0, big-endian schema id,
//! the JSON text as UTF-8). A record that does not validate fails alone, naming the keyword and
//! the path of each issue; nesting is bounded by serde_json's 128 levels.

#![warn(clippy::arithmetic_side_effects)]

use tributary_avro::wire;
use tributary_json_schema::JsonSchema;

use crate::error::MessagingError;

/// The most issues one refused record names.
const MAX_ISSUES_NAMED: usize = 5;

/// Validates a JSON record against `schema` and frames it with `schema_id`. `field` ("key" or
/// "value") names the payload in errors.
pub fn encode(
    field: &str,
    schema: &JsonSchema,
    schema_id: u32,
    json: &str,
) -> Result<Vec<u8>, MessagingError> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|error| MessagingError::invalid(field, format!("not valid JSON: {error}")))?;
    if let Err(issues) = schema.validate(&value) {
        let first = issues.first();
        let described: Vec<String> = issues
            .iter()
            .take(MAX_ISSUES_NAMED)
            .map(ToString::to_string)
            .collect();
        let more = issues.len().saturating_sub(MAX_ISSUES_NAMED);
        return Err(MessagingError::SchemaMismatch {
            field: field.to_owned(),
            path: first.map_or_else(
                || "$".to_owned(),
                |issue| format!("${}", issue.instance_path),
            ),
            expected: first.map_or_else(String::new, |issue| format!("'{}'", issue.keyword)),
            message: if more > 0 {
                format!("{}; and {more} more", described.join("; "))
            } else {
                described.join("; ")
            },
        });
    }
    Ok(wire::encode(schema_id, json.as_bytes()))
}

/// The JSON text of a framed JSON Schema record (after the schema id), appended to `out` (left
/// as it was on an error): it must be UTF-8 JSON.
pub fn decode_into(body: &[u8], out: &mut Vec<u8>) -> Result<(), MessagingError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|error| {
        MessagingError::Undecodable {
            reason: format!("not a JSON record: {error}"),
        }
    })?;
    out.extend_from_slice(body);
    Ok(())
}

/// The record name of a JSON schema for the subject name strategies: its `title`, as
/// Confluent's serializers take it.
pub fn record_name(schema: &JsonSchema) -> Option<String> {
    schema
        .value()
        .get("title")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn schema() -> JsonSchema {
        JsonSchema::parse(
            r#"{"title":"Order","type":"object","properties":{"n":{"type":"integer","minimum":1},"tags":{"type":"array","items":{"type":"string"}}},"required":["n"],"additionalProperties":false}"#,
            &[],
            &Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn valid_records_are_framed_as_they_are_and_read_back() {
        let schema = schema();
        let framed = encode("value", &schema, 7, r#"{"n": 2, "tags": ["a"]}"#).unwrap();
        assert_eq!(&framed[..5], &[0, 0, 0, 0, 7]);
        let mut out = Vec::new();
        decode_into(&framed[5..], &mut out).unwrap();
        assert_eq!(out, br#"{"n": 2, "tags": ["a"]}"#);
        assert_eq!(record_name(&schema).as_deref(), Some("Order"));
    }

    #[test]
    fn invalid_records_name_the_keyword_and_the_path() {
        let schema = schema();
        let error = encode("value", &schema, 7, r#"{"n": 0, "tags": [1]}"#).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("minimum") && text.contains("/n"), "{text}");
        assert!(text.contains("/tags/0"), "{text}");
        assert!(encode("value", &schema, 7, "{").is_err());
        let mut out = Vec::new();
        assert!(decode_into(b"\xff{", &mut out).is_err());
        assert!(out.is_empty());
    }
}
