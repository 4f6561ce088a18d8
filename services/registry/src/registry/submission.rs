//! What a submitted schema is before anything is written: its checks that need no store (pure
//! functions the handlers' paths run first; the fuzz targets of services/fuzz run them over
//! arbitrary requests), its parse with its references resolved, and its fingerprint.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tributary_avro::Limits;

use super::{MAX_IMPORT_ID, MAX_IMPORT_VERSION, RegisterRequest, Registry, Result};
use crate::error::RegistryError;
use crate::model::{Mode, Reference, VersionSelector};
use crate::schema_type::{NamedText, Origin, ParsedSchema, SchemaType};

/// How many submitted schema texts [`Registry`] remembers the fingerprint of (about 120 bytes
/// each); when full, it starts over.
const SUBMITTED_TEXT_ENTRIES: usize = 4096;

impl Registry {
    /// The fingerprint of a submitted schema in its canonical form (or normalized), remembered
    /// per text for reference-free schemas; with the parsed schema when it had to be parsed.
    pub(super) async fn submitted_fingerprint(
        &self,
        schema: &str,
        schema_type: &str,
        references: &[Reference],
        normalized: bool,
    ) -> Result<(Vec<u8>, Option<Candidate>)> {
        let schema_type = validate_submission(schema, schema_type, self.settings.max_schema_bytes)?;
        let key = references.is_empty().then(|| {
            let mut hasher = Sha256::new();
            hasher.update(schema_type.as_str().as_bytes());
            hasher.update(if normalized { b"\0N\0" } else { b"\0C\0" });
            hasher.update(schema.as_bytes());
            <[u8; 32]>::from(hasher.finalize())
        });
        if let Some(known) = key.and_then(|key| self.submitted.read().get(&key).cloned()) {
            return Ok((known, None));
        }
        let candidate = self
            .prepare(schema, schema_type.as_str(), references)
            .await?;
        let text = stored_text(&candidate.parsed, normalized);
        let found = fingerprint(schema_type, &text, &candidate.references);
        if let Some(key) = key {
            let mut submitted = self.submitted.write();
            if submitted.len() >= SUBMITTED_TEXT_ENTRIES {
                submitted.clear();
            }
            submitted.insert(key, found.clone());
        }
        Ok((found, Some(candidate)))
    }

    /// Validates and parses a candidate schema with its references.
    pub(super) async fn prepare(
        &self,
        schema: &str,
        schema_type: &str,
        references: &[Reference],
    ) -> Result<Candidate> {
        let schema_type = validate_submission(schema, schema_type, self.settings.max_schema_bytes)?;
        let mut resolved = Vec::with_capacity(references.len());
        for (index, reference) in references.iter().enumerate() {
            let selector = reference_selector(index, reference)?;
            let found = self.find_version(&reference.subject, selector, true).await.map_err(|_| RegistryError::InvalidSchema {
                reason: format!(
                    "references[{index}] ('{}') names version {} of subject '{}', which does not exist",
                    reference.name, reference.version, reference.subject
                ),
            })?;
            resolved.push(Reference {
                name: reference.name.clone(),
                subject: reference.subject.clone(),
                version: found.version,
            });
        }
        let limits = &self.settings.limits;
        let texts = self.reference_texts(&resolved, limits).await?;
        let parsed = parse_candidate(schema_type, schema, &texts, limits)?;
        Ok(Candidate {
            parsed: Arc::new(parsed),
            references: resolved,
        })
    }
}

// ----- the checks of a request that need no store -------------------------------------------
//
// Pure functions the handlers' paths run before (or without) the database; the fuzz targets of
// services/fuzz run them over arbitrary requests.

/// The id and version a registration gives (IMPORT mode), checked against the subject's `mode`:
/// refused in READONLY mode, required (the id) in IMPORT mode, refused in READWRITE mode, and
/// within [`MAX_IMPORT_ID`] and [`MAX_IMPORT_VERSION`]. 0 (and -1 for the version) mean none.
pub fn explicit_ids(request: &RegisterRequest, mode: Mode) -> Result<(Option<i32>, Option<i32>)> {
    let explicit_id = request.id.filter(|id| *id != 0);
    let explicit_version = request.version.filter(|v| *v != 0 && *v != -1);
    match mode {
        Mode::ReadOnly => {
            return Err(RegistryError::OperationNotPermitted {
                reason: format!("Subject {} is in read-only mode", request.subject),
            });
        }
        Mode::Import if explicit_id.is_none() => {
            return Err(RegistryError::OperationNotPermitted {
                reason: format!(
                    "Subject {} is not in read-write mode: in IMPORT mode a registration must give the schema id",
                    request.subject
                ),
            });
        }
        Mode::ReadWrite if explicit_id.is_some() || explicit_version.is_some() => {
            return Err(RegistryError::OperationNotPermitted {
                reason: format!(
                    "Subject {} is not in import mode: a schema id or version can only be given in IMPORT mode",
                    request.subject
                ),
            });
        }
        _ => {}
    }
    if let Some(id) = explicit_id.filter(|id| !(1..=MAX_IMPORT_ID).contains(id)) {
        return Err(RegistryError::IdOutOfRange {
            id,
            max: MAX_IMPORT_ID,
        });
    }
    if let Some(version) =
        explicit_version.filter(|version| !(1..=MAX_IMPORT_VERSION).contains(version))
    {
        return Err(RegistryError::VersionOutOfRange {
            version,
            max: MAX_IMPORT_VERSION,
        });
    }
    Ok((explicit_id, explicit_version))
}

/// The version a submitted schema's reference number `index` names, checked (a name, and a
/// version that is a number or "latest") before it is looked up.
pub fn reference_selector(index: usize, reference: &Reference) -> Result<VersionSelector> {
    if reference.name.is_empty() {
        return Err(RegistryError::InvalidSchema {
            reason: format!("references[{index}].name is empty"),
        });
    }
    VersionSelector::from_wire(reference.version)
}

/// A submitted schema parsed within the budgets, with the texts of its references (resolved
/// from the store, dependencies first).
pub fn parse_candidate(
    schema_type: SchemaType,
    schema: &str,
    references: &[NamedText],
    limits: &Limits,
) -> Result<ParsedSchema> {
    ParsedSchema::parse(schema_type, schema, references, limits, Origin::Submitted)
}

/// The text a registration stores (and fingerprints): the canonical string, or the normalized
/// one with `normalize`.
pub fn stored_text(parsed: &ParsedSchema, normalize: bool) -> String {
    parsed.stored_text(normalize)
}

/// What every submitted schema must be before it is parsed: of a type served, within the size
/// limit, not empty. Its type.
pub fn validate_submission(
    schema: &str,
    schema_type: &str,
    max_schema_bytes: usize,
) -> Result<SchemaType> {
    let schema_type = SchemaType::from_request(schema_type)?;
    if schema.len() > max_schema_bytes {
        return Err(RegistryError::SchemaTooLarge {
            size: schema.len(),
            limit: max_schema_bytes,
        });
    }
    if schema.trim().is_empty() {
        return Err(RegistryError::EmptySchema);
    }
    Ok(schema_type)
}
/// A submitted schema, parsed, with its references resolved to version numbers.
pub(super) struct Candidate {
    pub(super) parsed: Arc<ParsedSchema>,
    pub(super) references: Vec<Reference>,
}
/// What makes two schemas "the same": type, stored text and references.
pub fn fingerprint(schema_type: SchemaType, text: &str, references: &[Reference]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(schema_type.as_str().as_bytes());
    hasher.update(b"\0");
    hasher.update(text.as_bytes());
    for reference in references {
        hasher.update(b"\0");
        hasher.update(reference.name.as_bytes());
        hasher.update(b"\0");
        hasher.update(reference.subject.as_bytes());
        hasher.update(b"\0");
        hasher.update(reference.version.to_be_bytes());
    }
    hasher.finalize().to_vec()
}
/// Confluent's subject rules: non-empty, no control characters; here also at most 255 bytes, and
/// not a context-qualified name (`:.context:subject`): this registry has no schema contexts, so
/// such a name is refused rather than stored as a plain subject.
pub fn validate_subject(subject: &str) -> Result<()> {
    let reason = if subject.is_empty() {
        "it is empty"
    } else if subject.starts_with(":.") {
        "schema contexts are not supported: this registry has the default context only, so a subject cannot start with ':.'"
    } else if subject.len() > 255 {
        "it is longer than 255 bytes"
    } else if subject.chars().any(char::is_control) {
        "it contains control characters"
    } else {
        return Ok(());
    };
    Err(RegistryError::InvalidSubject {
        subject: subject.escape_debug().to_string(),
        reason: reason.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_by_references() {
        let reference = Reference {
            name: "a.B".into(),
            subject: "b".into(),
            version: 1,
        };
        let avro = SchemaType::Avro;
        assert_ne!(
            fingerprint(avro, "\"int\"", &[]),
            fingerprint(avro, "\"int\"", std::slice::from_ref(&reference))
        );
        assert_eq!(
            fingerprint(avro, "\"int\"", std::slice::from_ref(&reference)),
            fingerprint(avro, "\"int\"", &[reference])
        );
        // And by type: the same text of another type is another schema.
        assert_ne!(
            fingerprint(avro, "x", &[]),
            fingerprint(SchemaType::Protobuf, "x", &[])
        );
    }

    #[test]
    fn parse_errors_say_invalid_schema_once() {
        let error = tributary_avro::Schema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"strin"}]}"#,
            &[],
        )
        .expect_err("unknown type");
        let message = RegistryError::from(error).to_string();
        assert!(message.starts_with("Invalid schema "), "{message}");
        assert_eq!(
            message.to_lowercase().matches("invalid schema").count(),
            1,
            "{message}"
        );
        assert!(
            message.contains("/fields/0/type") && message.contains("strin"),
            "{message}"
        );
    }

    #[test]
    fn subjects_are_validated() {
        assert!(validate_subject("orders-value").is_ok());
        assert!(matches!(
            validate_subject(""),
            Err(RegistryError::InvalidSubject { .. })
        ));
        assert!(matches!(
            validate_subject("a\nb"),
            Err(RegistryError::InvalidSubject { .. })
        ));
        assert!(matches!(
            validate_subject(&"x".repeat(256)),
            Err(RegistryError::InvalidSubject { .. })
        ));
        for qualified in [":.ctx:orders", ":.:orders", ":."] {
            assert!(matches!(
                validate_subject(qualified),
                Err(RegistryError::InvalidSubject { .. })
            ));
        }
        assert!(validate_subject("a:.b").is_ok());
    }
}
