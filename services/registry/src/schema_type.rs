//! The schema types the registry stores (AVRO, PROTOBUF, JSON) and everything that differs
//! between them: parsing a text with the texts of its references, the text stored and fingerprinted
//! (canonical, or normalised with `normalize=true`), the formats a schema is served in, and the
//! budgets a submitted schema is held to. Each type's rules live in its own crate
//! (`tributary-avro`, `tributary-protobuf`, `tributary-json-schema`); this module is the one
//! place that chooses between them, so a new type is a new arm here, not a change to every
//! handler.

#![warn(clippy::arithmetic_side_effects)]

use std::fmt;

use tributary_avro::schema::ParseOptions;
use tributary_avro::{LimitExceeded, Limits, Schema};
use tributary_json_schema::JsonSchema;
use tributary_protobuf::{Budgets, Dependency, ProtoError, ProtoSchema};

use crate::error::RegistryError;

/// A type of schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaType {
    Avro,
    Protobuf,
    Json,
}

impl SchemaType {
    /// Every type served, as `GET /schemas/types` lists them.
    pub const SERVED: [SchemaType; 3] = [SchemaType::Avro, SchemaType::Protobuf, SchemaType::Json];

    /// The name on the wire (`schemaType`) and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Protobuf => "PROTOBUF",
            SchemaType::Json => "JSON",
        }
    }

    /// A request's `schemaType`: empty means AVRO, case does not matter (as in Confluent).
    pub fn from_request(value: &str) -> Result<SchemaType, RegistryError> {
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("AVRO") {
            Ok(SchemaType::Avro)
        } else if value.eq_ignore_ascii_case("PROTOBUF") {
            Ok(SchemaType::Protobuf)
        } else if value.eq_ignore_ascii_case("JSON") {
            Ok(SchemaType::Json)
        } else {
            let shown: String = value.chars().take(64).collect();
            Err(RegistryError::InvalidSchema {
                reason: format!(
                    "unsupported schema type '{}': this registry stores AVRO, PROTOBUF and JSON schemas",
                    shown.escape_debug()
                ),
            })
        }
    }

    /// A stored row's type (rows only ever hold names [`SchemaType::as_str`] gave).
    pub fn from_stored(value: &str) -> SchemaType {
        SchemaType::from_request(value).unwrap_or(SchemaType::Avro)
    }

    /// The `format` values a schema of this type is served in, besides `default`.
    pub fn formats(self) -> &'static str {
        match self {
            SchemaType::Avro => "'default' or 'resolved'",
            SchemaType::Protobuf => "'default', 'serialized' or 'ignore_extensions'",
            SchemaType::Json => "'default'",
        }
    }
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text of one of a schema's references (transitively), under its reference name: an Avro
/// schema ignores the name, a Protobuf schema imports it by that name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedText {
    pub name: String,
    pub text: String,
}

/// A parsed schema of any type.
#[derive(Debug)]
pub enum ParsedSchema {
    Avro(Schema),
    Protobuf(ProtoSchema),
    Json(JsonSchema),
}

/// Whether a text is a new submission (every budget and check applies) or was accepted before
/// (read as stored: structural budgets lifted, Avro defaults not validated again, as in
/// Confluent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Submitted,
    Stored,
}

impl ParsedSchema {
    /// Parses `text` as a `schema_type` schema with its references' texts (dependencies first).
    pub fn parse(
        schema_type: SchemaType,
        text: &str,
        references: &[NamedText],
        limits: &Limits,
        origin: Origin,
    ) -> Result<ParsedSchema, RegistryError> {
        match schema_type {
            SchemaType::Avro => {
                let texts: Vec<&str> = references.iter().map(|r| r.text.as_str()).collect();
                let options = ParseOptions {
                    validate_defaults: origin == Origin::Submitted,
                };
                let limits = match origin {
                    Origin::Submitted => *limits,
                    Origin::Stored => limits.for_stored(),
                };
                Schema::parse_with_limits(text, &texts, options, &limits)
                    .map(ParsedSchema::Avro)
                    .map_err(RegistryError::from)
            }
            SchemaType::Protobuf => {
                let dependencies: Vec<Dependency<'_>> = references
                    .iter()
                    .map(|r| Dependency {
                        name: &r.name,
                        schema: &r.text,
                    })
                    .collect();
                let budgets = match origin {
                    Origin::Submitted => Budgets::from_limits(limits),
                    Origin::Stored => Budgets::from_limits(limits).for_stored(),
                };
                ProtoSchema::parse(text, &dependencies, &budgets)
                    .map(ParsedSchema::Protobuf)
                    .map_err(protobuf_error)
            }
            SchemaType::Json => {
                let dependencies: Vec<tributary_json_schema::Dependency<'_>> = references
                    .iter()
                    .map(|r| tributary_json_schema::Dependency {
                        name: &r.name,
                        schema: &r.text,
                    })
                    .collect();
                let budgets = match origin {
                    Origin::Submitted => tributary_json_schema::Budgets::from_limits(limits),
                    Origin::Stored => {
                        tributary_json_schema::Budgets::from_limits(limits).for_stored()
                    }
                };
                JsonSchema::parse(text, &dependencies, &budgets)
                    .map(ParsedSchema::Json)
                    .map_err(json_schema_error)
            }
        }
    }

    /// Its type.
    pub fn schema_type(&self) -> SchemaType {
        match self {
            ParsedSchema::Avro(_) => SchemaType::Avro,
            ParsedSchema::Protobuf(_) => SchemaType::Protobuf,
            ParsedSchema::Json(_) => SchemaType::Json,
        }
    }

    /// The text a registration stores and fingerprints: the canonical form, or the normalised
    /// one with `normalize`.
    pub fn stored_text(&self, normalize: bool) -> String {
        match (self, normalize) {
            (ParsedSchema::Avro(schema), false) => schema.canonical_string(),
            (ParsedSchema::Avro(schema), true) => schema.normalized_string(),
            (ParsedSchema::Protobuf(schema), false) => schema.canonical_string(),
            (ParsedSchema::Protobuf(schema), true) => schema.normalized_string(),
            (ParsedSchema::Json(schema), false) => schema.canonical_string(),
            (ParsedSchema::Json(schema), true) => schema.normalized_string(),
        }
    }

    /// About how much memory the parsed schema holds (for the bounded parsed-schema cache),
    /// given the length of its text and its references' texts: an Avro model is counted as
    /// its text (as the cache always did), a Protobuf schema by its descriptor pool (about
    /// 80 KiB each, see `ProtoSchema::memory_estimate`), a JSON Schema (its JSON, model and
    /// compiled validator) as eight times its text.
    pub fn memory_estimate(&self, text_bytes: usize) -> usize {
        match self {
            ParsedSchema::Avro(_) => text_bytes,
            ParsedSchema::Protobuf(schema) => schema.memory_estimate().max(text_bytes),
            ParsedSchema::Json(_) => text_bytes.saturating_mul(8),
        }
    }

    /// The schema in a `format` other than `default`, or `None` when the type has no such
    /// format (see [`SchemaType::formats`]).
    pub fn formatted(&self, format: &str) -> Option<String> {
        match self {
            ParsedSchema::Avro(schema) if format.eq_ignore_ascii_case("resolved") => {
                Some(schema.resolved_string())
            }
            ParsedSchema::Protobuf(schema) if format.eq_ignore_ascii_case("serialized") => {
                Some(schema.serialized())
            }
            ParsedSchema::Protobuf(schema) if format.eq_ignore_ascii_case("ignore_extensions") => {
                Some(schema.without_extensions_string())
            }
            _ => None,
        }
    }
}

/// A JSON Schema error as the registry's: a budget is [`RegistryError::OverLimit`] naming its
/// flag (42209); anything else is an invalid schema (42201).
fn json_schema_error(error: tributary_json_schema::SchemaError) -> RegistryError {
    match error {
        tributary_json_schema::SchemaError::OverBudget { budget, what, max } => {
            RegistryError::OverLimit {
                source: LimitExceeded {
                    limit: budget.limit(),
                    max,
                    what,
                },
                path: None,
            }
        }
        other => RegistryError::InvalidSchema {
            reason: other.to_string(),
        },
    }
}

/// A Protobuf compile error as the registry's: a budget is [`RegistryError::OverLimit`] naming
/// its flag (42209); anything else is an invalid schema (42201).
fn protobuf_error(error: ProtoError) -> RegistryError {
    match error {
        ProtoError::OverBudget { budget, what, max } => RegistryError::OverLimit {
            source: LimitExceeded {
                limit: budget.limit(),
                max,
                what,
            },
            path: None,
        },
        other => RegistryError::InvalidSchema {
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn types_are_read_as_confluent_does() {
        assert_eq!(SchemaType::from_request("").unwrap(), SchemaType::Avro);
        assert_eq!(SchemaType::from_request("avro").unwrap(), SchemaType::Avro);
        assert_eq!(
            SchemaType::from_request("Protobuf").unwrap(),
            SchemaType::Protobuf
        );
        let error = SchemaType::from_request("XML").unwrap_err();
        assert_eq!(error.error_code(), 42201);
        assert!(error.to_string().contains("'XML'"), "{error}");
    }

    #[test]
    fn protobuf_budgets_are_the_registry_flags() {
        let limits = Limits {
            record_fields: 3,
            ..Limits::default()
        };
        let text = "syntax = \"proto3\";\nmessage M { int32 a = 1; int32 b = 2; int32 c = 3; int32 d = 4; }\n";
        let error =
            ParsedSchema::parse(SchemaType::Protobuf, text, &[], &limits, Origin::Submitted)
                .unwrap_err();
        assert_eq!(error.error_code(), 42209);
        assert!(error.to_string().contains("--max-record-fields"), "{error}");
        // Stored schemas are read whatever the budgets are now.
        ParsedSchema::parse(SchemaType::Protobuf, text, &[], &limits, Origin::Stored).unwrap();
    }

    #[test]
    fn formats_are_per_type() {
        let text = "syntax = \"proto3\";\nmessage M { int32 a = 1; }\n";
        let parsed = ParsedSchema::parse(
            SchemaType::Protobuf,
            text,
            &[],
            &Limits::default(),
            Origin::Submitted,
        )
        .unwrap();
        assert!(parsed.formatted("serialized").is_some());
        assert!(parsed.formatted("resolved").is_none());
        let avro = ParsedSchema::parse(
            SchemaType::Avro,
            "\"string\"",
            &[],
            &Limits::default(),
            Origin::Submitted,
        )
        .unwrap();
        assert!(avro.formatted("resolved").is_some());
        assert!(avro.formatted("serialized").is_none());
    }
}
