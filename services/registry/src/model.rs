//! Plain data the registry passes between its store, its caches and its APIs.

#![warn(clippy::arithmetic_side_effects)]

use serde::{Deserialize, Serialize};

use crate::schema_type::SchemaType;

/// A named type a schema takes from a version of another subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// A schema as stored. Its parsed form lives in the registry's bounded parsed-schema cache.
#[derive(Debug)]
pub struct StoredSchema {
    pub id: i32,
    pub schema_type: SchemaType,
    pub text: String,
    pub references: Vec<Reference>,
}

/// A `schemas` row with its references.
#[derive(Debug, Clone)]
pub struct SchemaRow {
    pub id: i32,
    pub fingerprint: Vec<u8>,
    pub schema_type: String,
    pub text: String,
    pub references: Vec<Reference>,
}

/// A `subject_versions` row, without its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRow {
    pub version: i32,
    pub schema_id: i32,
    pub deleted: bool,
}

/// A `configs` row: what is set for one subject ('' = global); `None` means "not set here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigRow {
    pub compatibility: Option<String>,
    pub mode: Option<String>,
}

/// What writes a subject accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    ReadWrite,
    ReadOnly,
    Import,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadWrite => "READWRITE",
            Mode::ReadOnly => "READONLY",
            Mode::Import => "IMPORT",
        }
    }

    /// Parses Confluent's names (case-insensitive). READONLY_OVERRIDE is Confluent's alias of
    /// READONLY.
    pub fn parse(text: &str) -> Option<Mode> {
        match text.to_ascii_uppercase().as_str() {
            "READWRITE" => Some(Mode::ReadWrite),
            "READONLY" | "READONLY_OVERRIDE" => Some(Mode::ReadOnly),
            "IMPORT" => Some(Mode::Import),
            _ => None,
        }
    }
}

/// A subject version with its schema, as the read APIs return it.
#[derive(Debug, Clone)]
pub struct SubjectVersion {
    pub subject: String,
    pub version: i32,
    pub id: i32,
    pub schema: std::sync::Arc<StoredSchema>,
    pub deleted: bool,
}

/// Which versions a version selector picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSelector {
    Latest,
    Number(i32),
}

impl VersionSelector {
    /// Confluent's rule: a positive number, or -1 (and here also 0) for the latest.
    pub fn from_wire(version: i32) -> Result<Self, crate::error::RegistryError> {
        match version {
            0 | -1 => Ok(VersionSelector::Latest),
            n if n > 0 => Ok(VersionSelector::Number(n)),
            n => Err(crate::error::RegistryError::InvalidVersion {
                value: n.to_string(),
            }),
        }
    }
}
