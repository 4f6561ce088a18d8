//! What the registry does with a submitted schema before (and without) its store, shared by the
//! HTTP and gRPC targets: the same functions `Registry::register`, `lookup` and
//! `check_compatibility` call, in the same order, with a fixed subject's versions standing in
//! for PostgreSQL.

use std::sync::OnceLock;

use tributary_avro::Limits;
use tributary_avro::compat::CompatibilityLevel;
use tributary_registry::RegistryError;
use tributary_registry::compatibility::Checkers;
use tributary_registry::model::{Mode, Reference, VersionSelector};
use tributary_registry::registry::{
    CompatibilityReport, Issues, RegisterRequest, explicit_ids, fingerprint, parse_candidate,
    reference_selector, stored_text, validate_subject, validate_submission,
};
use tributary_registry::schema_type::{NamedText, Origin, ParsedSchema, SchemaType};

/// The subject the stand-in store holds versions of.
pub const SUBJECT: &str = "fuzz-value";

/// The stand-in store's versions of [`SUBJECT`] (version n is `VERSIONS[n - 1]`).
const VERSIONS: [&str; 3] = [
    r#"{"type":"record","name":"Order","namespace":"fuzz","fields":[{"name":"id","type":"long"},{"name":"note","type":["null","string"],"default":null}]}"#,
    r#"{"type":"record","name":"Order","namespace":"fuzz","fields":[{"name":"id","type":"long"},{"name":"note","type":["null","string"],"default":null},{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]},"default":"A"}]}"#,
    r#"{"type":"record","name":"Order","namespace":"fuzz","fields":[{"name":"id","type":"long"},{"name":"note","type":["null","string"],"default":null},{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]},"default":"A"},{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2},"default":"\u0000"},{"name":"tags","type":{"type":"map","values":"string"},"default":{}}]}"#,
];

/// The registry's settings (its defaults) and the stand-in store.
#[derive(Debug)]
pub struct Store {
    pub limits: Limits,
    pub max_schema_bytes: usize,
    /// (canonical text, parsed, fingerprint) of each version.
    versions: Vec<(String, ParsedSchema, Vec<u8>)>,
}

/// The stand-in store, made once.
pub fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let limits = Limits::default();
        let versions = VERSIONS
            .iter()
            .map(|text| {
                let parsed = parse_candidate(SchemaType::Avro, text, &[], &limits)
                    .expect("a fixture schema parses");
                let canonical = stored_text(&parsed, false);
                let print = fingerprint(SchemaType::Avro, &canonical, &[]);
                (canonical, parsed, print)
            })
            .collect();
        Store {
            max_schema_bytes: limits.schema_bytes,
            limits,
            versions,
        }
    })
}

/// The subject's mode, picked by a fuzz byte.
pub fn mode_of(byte: u8) -> Mode {
    [Mode::ReadWrite, Mode::ReadOnly, Mode::Import][usize::from(byte % 3)]
}

/// The subject's compatibility level, picked by a fuzz byte.
pub fn level_of(byte: u8) -> CompatibilityLevel {
    [
        CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive,
        CompatibilityLevel::None,
    ][usize::from(byte % 7)]
}

impl Store {
    /// `find_version` on the stand-in store: versions of [`SUBJECT`] only.
    fn find(&self, subject: &str, selector: VersionSelector) -> Option<usize> {
        if subject != SUBJECT {
            return None;
        }
        match selector {
            VersionSelector::Latest => self.versions.len().checked_sub(1),
            VersionSelector::Number(n) => usize::try_from(n)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .filter(|i| *i < self.versions.len()),
        }
    }

    /// The versions a level tests against: the latest, or all for *_TRANSITIVE.
    fn against(&self, level: CompatibilityLevel) -> Vec<usize> {
        let all: Vec<usize> = (0..self.versions.len()).collect();
        if level.is_transitive() {
            all
        } else {
            all.last().copied().into_iter().collect()
        }
    }
}

/// A submitted schema checked, its references resolved against the stand-in store and parsed:
/// `Registry::prepare`.
fn prepare(
    store: &'static Store,
    schema: &str,
    schema_type: &str,
    references: &[Reference],
) -> Result<(ParsedSchema, Vec<NamedText>), RegistryError> {
    let schema_type = validate_submission(schema, schema_type, store.max_schema_bytes)?;
    let mut texts: Vec<NamedText> = Vec::new();
    for (index, reference) in references.iter().enumerate() {
        let selector = reference_selector(index, reference)?;
        let Some(found) = store.find(&reference.subject, selector) else {
            return Err(RegistryError::InvalidSchema {
                reason: format!("references[{index}] does not exist"),
            });
        };
        let text = store.versions[found].0.as_str();
        if !texts.iter().any(|named| named.text == text) {
            texts.push(NamedText {
                name: reference.name.clone(),
                text: text.to_owned(),
            });
        }
    }
    let parsed = parse_candidate(schema_type, schema, &texts, &store.limits)?;
    // What the registry stores it reads back with the stored-schema budgets: an accepted schema
    // must read back as itself, in both printed forms.
    let stored_limits = store.limits.for_stored();
    for normalize in [false, true] {
        let text = stored_text(&parsed, normalize);
        let again = ParsedSchema::parse(
            schema_type,
            &text,
            &texts,
            &stored_limits,
            Origin::Submitted,
        )
        .unwrap_or_else(|e| panic!("stored text (normalize {normalize}) does not parse: {e}"));
        assert_eq!(
            stored_text(&again, normalize),
            text,
            "stored text (normalize {normalize}) is not a fixed point"
        );
    }
    Ok((parsed, texts))
}

/// What a request answers.
#[derive(Debug)]
pub enum Outcome {
    Registered { fingerprint: Vec<u8> },
    Found { version: usize },
    Tested(CompatibilityReport),
}

/// The checks of one version against the candidate at `level`, as `compatibility_issues`.
fn issues(
    store: &Store,
    level: CompatibilityLevel,
    candidate: &ParsedSchema,
    against: &[usize],
) -> Result<Issues, RegistryError> {
    let mut checkers = Checkers::new(&store.limits);
    let mut issues = Issues::default();
    if level == CompatibilityLevel::None {
        return Ok(issues);
    }
    for &index in against {
        let version = i32::try_from(index + 1).expect("few versions");
        issues.check(
            &mut checkers,
            level,
            candidate,
            version,
            &store.versions[index].1,
        )?;
    }
    Ok(issues)
}

/// `Registry::register` up to its transaction, with the subject in `mode` at `level`.
pub fn register(
    request: &RegisterRequest,
    mode: Mode,
    level: CompatibilityLevel,
) -> Result<Outcome, RegistryError> {
    let store = store();
    validate_subject(&request.subject)?;
    let (_id, _version) = explicit_ids(request, mode)?;
    let parsed = prepare(
        store,
        &request.schema,
        &request.schema_type,
        &request.references,
    )?;
    let text = stored_text(&parsed.0, request.normalize);
    let print = fingerprint(parsed.0.schema_type(), &text, &request.references);
    if request.references.is_empty()
        && request.subject == SUBJECT
        && store.versions.iter().any(|v| v.2 == print)
    {
        // Already registered: answered without a compatibility check.
        return Ok(Outcome::Registered { fingerprint: print });
    }
    if request.subject == SUBJECT {
        let found = issues(store, level, &parsed.0, &store.against(level))?;
        if found.total() > 0 {
            return Err(found.incompatible(&request.subject));
        }
    }
    Ok(Outcome::Registered { fingerprint: print })
}

/// `Registry::lookup`: the fingerprints of the submitted schema (canonical, then normalized
/// with `normalize`) against the stand-in store's versions.
pub fn lookup(
    subject: &str,
    schema: &str,
    schema_type: &str,
    references: &[Reference],
    normalize: bool,
) -> Result<Outcome, RegistryError> {
    let store = store();
    validate_subject(subject)?;
    if subject != SUBJECT {
        return Err(RegistryError::SubjectNotFound {
            subject: subject.to_owned(),
        });
    }
    for normalized in [false, true]
        .into_iter()
        .take(if normalize { 2 } else { 1 })
    {
        let parsed = prepare(store, schema, schema_type, references)?;
        let print = fingerprint(
            parsed.0.schema_type(),
            &stored_text(&parsed.0, normalized),
            references,
        );
        if let Some(version) = store.versions.iter().rposition(|v| v.2 == print) {
            return Ok(Outcome::Found {
                version: version + 1,
            });
        }
    }
    Err(RegistryError::SchemaNotRegistered {
        subject: subject.to_owned(),
    })
}

/// `Registry::check_compatibility`: against one version (`Some`) or the level's versions.
pub fn check_compatibility(
    subject: &str,
    schema: &str,
    schema_type: &str,
    references: &[Reference],
    version: Option<VersionSelector>,
    normalize: bool,
    level: CompatibilityLevel,
) -> Result<Outcome, RegistryError> {
    let store = store();
    validate_subject(subject)?;
    let (candidate, texts) = prepare(store, schema, schema_type, references)?;
    let against = match version {
        Some(VersionSelector::Latest) if subject != SUBJECT => Vec::new(),
        Some(selector) => match store.find(subject, selector) {
            Some(index) => vec![index],
            // As Confluent: a missing version is 40402, the subject known or not.
            None => {
                return Err(match selector {
                    VersionSelector::Number(version) => RegistryError::VersionNotFound {
                        subject: subject.to_owned(),
                        version,
                    },
                    VersionSelector::Latest => RegistryError::SubjectNotFound {
                        subject: subject.to_owned(),
                    },
                });
            }
        },
        None if subject == SUBJECT => store.against(level),
        None => Vec::new(),
    };
    let candidate = if normalize {
        let limits = store.limits.for_stored();
        ParsedSchema::parse(
            candidate.schema_type(),
            &candidate.stored_text(true),
            &texts,
            &limits,
            Origin::Submitted,
        )?
    } else {
        candidate
    };
    let report = issues(store, level, &candidate, &against)?.into_report(level);
    assert_eq!(report.is_compatible(), report.total == 0);
    assert!(report.total >= report.issues.len() as u64);
    Ok(Outcome::Tested(report))
}
