//! Compatibility checks of a candidate against a subject's versions, whatever their schema
//! type, and the bounded list of reasons they report.
//!
//! One [`Checkers`] serves a whole check (every version a level names): its work budget
//! (`--max-schema-work`) covers all of it, for Avro and Protobuf alike. Schemas of different types are
//! never compatible (as in Confluent). At most `--max-incompatibilities` reasons, and
//! [`MAX_REASONS_BYTES`] of their text, are listed; the total is always counted.

#![warn(clippy::arithmetic_side_effects)]

use tributary_avro::compat::{self, CompatibilityLevel};
use tributary_avro::{Limit, LimitExceeded, Limits};

use crate::error::RegistryError;
use crate::schema_type::ParsedSchema;

type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// The checkers of each schema type, sharing one work budget per type.
#[derive(Debug)]
pub struct Checkers {
    avro: compat::Checker,
    protobuf: tributary_protobuf::compat::Checker,
    json: tributary_json_schema::compat::Checker,
    limits: Limits,
}

impl Checkers {
    pub fn new(limits: &Limits) -> Self {
        Checkers {
            avro: compat::Checker::new(limits),
            protobuf: tributary_protobuf::compat::Checker::new(
                limits.work,
                limits.incompatibilities,
            ),
            json: tributary_json_schema::compat::Checker::new(
                limits.work,
                limits.incompatibilities,
            ),
            limits: *limits,
        }
    }

    /// Whether data written with `writer` can be read with `reader`: the reasons it cannot.
    fn can_read(&mut self, reader: &ParsedSchema, writer: &ParsedSchema) -> Result<Found> {
        match (reader, writer) {
            (ParsedSchema::Avro(reader), ParsedSchema::Avro(writer)) => {
                let report = self.avro.can_read(reader, writer)?;
                Ok(Found {
                    total: report.total,
                    listed: report
                        .incompatibilities
                        .into_iter()
                        .map(|found| (found.kind.as_str(), found.location, found.message))
                        .collect(),
                })
            }
            (ParsedSchema::Protobuf(reader), ParsedSchema::Protobuf(writer)) => {
                let report = self
                    .protobuf
                    .can_read(reader, writer)
                    .map_err(|over| work_exceeded(over.max))?;
                Ok(Found {
                    total: report.total,
                    listed: report
                        .incompatibilities
                        .into_iter()
                        .map(|found| (found.kind.as_str(), found.location, found.message))
                        .collect(),
                })
            }
            (ParsedSchema::Json(reader), ParsedSchema::Json(writer)) => {
                let report = self
                    .json
                    .can_read(reader, writer)
                    .map_err(|over| work_exceeded(over.max))?;
                Ok(Found {
                    total: report.total,
                    listed: report
                        .incompatibilities
                        .into_iter()
                        .map(|found| (found.kind.as_str(), found.location, found.message))
                        .collect(),
                })
            }
            (reader, writer) => Ok(Found {
                total: 1,
                listed: vec![(
                    "SCHEMA_TYPE_CHANGED",
                    "/".to_owned(),
                    format!(
                        "a {} schema cannot read data written with a {} schema",
                        reader.schema_type(),
                        writer.schema_type()
                    ),
                )],
            }),
        }
    }
}

/// A check over the work budget (`--max-schema-work`).
fn work_exceeded(max: u64) -> RegistryError {
    RegistryError::OverLimit {
        source: LimitExceeded {
            limit: Limit::Work,
            max,
            what: "the compatibility check".to_owned(),
        },
        path: None,
    }
}

/// What one directional check found.
struct Found {
    total: u64,
    listed: Vec<(&'static str, String, String)>,
}

/// The most text the reasons of one compatibility answer may hold, so that an HTTP answer and
/// a gRPC error stay under 64 KiB: the trailer of a gRPC error carries the reasons twice, in
/// its message (percent-encoded: up to 3 bytes per byte of non-ASCII text) and in its error
/// details (base64: 4 bytes per 3).
const MAX_REASONS_BYTES: usize = 12 * 1024;
/// The most text of one reason (a missing-symbols list can name thousands of symbols).
const MAX_REASON_BYTES: usize = 1024;

/// One reason a candidate is incompatible with an existing version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatibilityIssue {
    pub version: i32,
    pub direction: &'static str,
    pub kind: String,
    pub location: String,
    pub message: String,
}

impl CompatibilityIssue {
    pub fn description(&self) -> String {
        format!(
            "version {} ({}): {} at {}: {}",
            self.version, self.direction, self.kind, self.location, self.message
        )
    }
}

/// The outcome of a compatibility test.
#[derive(Debug, Clone)]
pub struct CompatibilityReport {
    pub level: CompatibilityLevel,
    /// The first reasons (see [`Issues`]).
    pub issues: Vec<CompatibilityIssue>,
    /// How many reasons there are in all, listed or not.
    pub total: u64,
}

impl CompatibilityReport {
    pub fn is_compatible(&self) -> bool {
        self.total == 0
    }

    /// The listed reasons' descriptions, then a note of how many more there are, if any.
    pub fn descriptions(&self) -> Vec<String> {
        describe(&self.issues, self.total)
    }
}

/// The reasons found by a check: the first ones, within `--max-incompatibilities` and
/// [`MAX_REASONS_BYTES`] of text, each message within [`MAX_REASON_BYTES`], and how many there
/// are in all.
#[derive(Debug, Default)]
pub struct Issues {
    listed: Vec<CompatibilityIssue>,
    bytes: usize,
    total: u64,
}

impl Issues {
    /// Checks `candidate` against one existing version at `level` (both ways for FULL; nothing
    /// at NONE), spending from `checker`'s budget, and adds what it finds. No store: the
    /// existing version is already parsed.
    pub fn check(
        &mut self,
        checkers: &mut Checkers,
        level: CompatibilityLevel,
        candidate: &ParsedSchema,
        version: i32,
        existing: &ParsedSchema,
    ) -> Result<()> {
        let (backward, forward) = match level {
            CompatibilityLevel::None => return Ok(()),
            CompatibilityLevel::Backward | CompatibilityLevel::BackwardTransitive => (true, false),
            CompatibilityLevel::Forward | CompatibilityLevel::ForwardTransitive => (false, true),
            CompatibilityLevel::Full | CompatibilityLevel::FullTransitive => (true, true),
        };
        let max = checkers.limits.incompatibilities;
        if backward {
            let found = checkers.can_read(candidate, existing)?;
            self.add(max, version, "BACKWARD", found);
        }
        if forward {
            let found = checkers.can_read(existing, candidate)?;
            self.add(max, version, "FORWARD", found);
        }
        Ok(())
    }

    /// How many reasons there are in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The outcome of a compatibility test at `level`.
    pub fn into_report(self, level: CompatibilityLevel) -> CompatibilityReport {
        CompatibilityReport {
            level,
            issues: self.listed,
            total: self.total,
        }
    }

    /// The error refusing a registration under `subject` for these reasons.
    pub fn incompatible(&self, subject: &str) -> RegistryError {
        RegistryError::Incompatible {
            subject: subject.to_owned(),
            reasons: self
                .listed
                .iter()
                .map(CompatibilityIssue::description)
                .collect(),
            total: self.total,
        }
    }

    fn add(&mut self, max: usize, version: i32, direction: &'static str, found: Found) {
        self.total = self.total.saturating_add(found.total);
        for (kind, location, message) in found.listed {
            if self.listed.len() >= max || self.bytes >= MAX_REASONS_BYTES {
                break;
            }
            let issue = CompatibilityIssue {
                version,
                direction,
                kind: kind.to_owned(),
                location: compat::shorten(&location, MAX_REASON_BYTES),
                message: compat::shorten(&message, MAX_REASON_BYTES),
            };
            self.bytes = self.bytes.saturating_add(issue.description().len());
            self.listed.push(issue);
        }
    }
}

/// Descriptions of the listed reasons, and a last line counting the others.
fn describe(issues: &[CompatibilityIssue], total: u64) -> Vec<String> {
    let mut out: Vec<String> = issues.iter().map(CompatibilityIssue::description).collect();
    let listed = u64::try_from(issues.len()).unwrap_or(u64::MAX);
    if total > listed {
        out.push(format!(
            "... and {} more incompatibilities, not listed (at most --max-incompatibilities, and 12 KiB of text, are)",
            total.saturating_sub(listed)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema_type::{Origin, SchemaType};

    #[test]
    fn reasons_are_listed_within_the_count_and_text_budgets() {
        let reason =
            |i: usize, message: String| ("TYPE_MISMATCH", format!("/fields/{i}/type"), message);
        // 20,000 reasons found, 100 written out by the checker: 100 listed, 20,000 counted.
        let mut issues = Issues::default();
        let report = Found {
            listed: (0..100).map(|i| reason(i, "short".into())).collect(),
            total: 20_000,
        };
        issues.add(100, 1, "BACKWARD", report);
        assert_eq!(issues.listed.len(), 100);
        assert_eq!(issues.total, 20_000);
        let lines = describe(&issues.listed, issues.total);
        assert_eq!(lines.len(), 101);
        assert!(
            lines.last().is_some_and(|l| l.contains("19900 more")),
            "{lines:?}"
        );
        // Long messages (a list of thousands of missing symbols) are cut, and the list stops
        // at the text budget.
        let mut issues = Issues::default();
        let report = Found {
            listed: (0..100).map(|i| reason(i, "S, ".repeat(10_000))).collect(),
            total: 100,
        };
        issues.add(100, 1, "FORWARD", report);
        let text: usize = describe(&issues.listed, issues.total)
            .iter()
            .map(String::len)
            .sum();
        assert!(issues.listed.len() < 20, "{}", issues.listed.len());
        assert!(text < MAX_REASONS_BYTES + 2 * MAX_REASON_BYTES, "{text}");
        assert!(issues.listed.iter().all(|i| i.message.len() < 1100));
    }

    #[test]
    fn schemas_of_different_types_are_never_compatible() {
        let limits = Limits::default();
        let avro = ParsedSchema::parse(
            SchemaType::Avro,
            "\"string\"",
            &[],
            &limits,
            Origin::Submitted,
        )
        .expect("parses");
        let proto = ParsedSchema::parse(
            SchemaType::Protobuf,
            "syntax = \"proto3\";\nmessage M {}\n",
            &[],
            &limits,
            Origin::Submitted,
        )
        .expect("parses");
        let mut checkers = Checkers::new(&limits);
        let mut issues = Issues::default();
        issues
            .check(&mut checkers, CompatibilityLevel::Full, &proto, 1, &avro)
            .expect("checked");
        assert_eq!(issues.total(), 2);
        assert!(
            issues
                .listed
                .iter()
                .all(|issue| issue.kind == "SCHEMA_TYPE_CHANGED")
        );
        // Two Protobuf versions are checked by the Protobuf rules.
        let changed = ParsedSchema::parse(
            SchemaType::Protobuf,
            "syntax = \"proto3\";\nmessage M { string a = 1; }\n",
            &[],
            &limits,
            Origin::Submitted,
        )
        .expect("parses");
        let mut issues = Issues::default();
        issues
            .check(
                &mut checkers,
                CompatibilityLevel::Backward,
                &changed,
                1,
                &proto,
            )
            .expect("checked");
        assert_eq!(issues.total(), 0, "{:?}", issues.listed);
    }
}
