//! Schema compatibility, ported from Java Avro 1.11's `SchemaCompatibility`
//! (`ReaderWriterCompatibilityChecker`) and Confluent Schema Registry's compatibility levels.
//!
//! [`can_read`] reports every reason data written with one schema can't be read with another,
//! each with Java's `SchemaIncompatibilityType`, JSON-pointer location and message:
//! - named types match on their *unqualified* names, or when a reader alias equals the writer's
//!   full name (so `a.User` and `b.User` match);
//! - promotions: `int` → `long`/`float`/`double`, `long` → `float`/`double`, `float` → `double`,
//!   `string` ↔ `bytes`; logical types play no part (resolution is on the underlying types);
//! - a writer union needs every branch readable; a reader union needs one branch that reads the
//!   writer type;
//! - a reader enum lacking writer symbols is fine only when it has an enum default;
//! - reader fields are matched to writer fields by name or by reader field alias; one missing
//!   from the writer needs a default (a reader enum with an enum default is instead checked
//!   against the writer record, which is what Java does);
//! - results are memoised per (reader node, writer node) pair, which both ends recursion and
//!   reproduces Java's reported locations exactly.
//!
//! [`check`] applies a [`CompatibilityLevel`] to a candidate and a subject's existing versions
//! the way Confluent's `CompatibilityChecker` does.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::schema::{NodeId, NodeKind, RecordSchema, Schema, Type};

/// A subject's compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompatibilityLevel {
    /// No checks.
    None,
    /// The candidate can read data written with the latest version.
    Backward,
    /// The candidate can read data written with every version.
    BackwardTransitive,
    /// The latest version can read data written with the candidate.
    Forward,
    /// Every version can read data written with the candidate.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every version.
    FullTransitive,
}

impl CompatibilityLevel {
    /// All levels.
    pub const ALL: [CompatibilityLevel; 7] = [
        CompatibilityLevel::None,
        CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive,
    ];

    /// Confluent's spelling: `"BACKWARD_TRANSITIVE"`, ...
    pub fn as_str(&self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Parses a level, ignoring ASCII case.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether the level checks every existing version rather than the latest.
    pub fn is_transitive(&self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Backward
                | CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Forward
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a compatibility level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compatibility level '{0}'")]
pub struct ParseLevelError(pub String);

impl FromStr for CompatibilityLevel {
    type Err = ParseLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| ParseLevelError(s.to_owned()))
    }
}

/// Java's `SchemaIncompatibilityType`, plus one kind for a check Java aborts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IncompatibilityKind {
    /// Named types with different names (and no matching reader alias).
    NameMismatch,
    /// Fixed types of different sizes.
    FixedSizeMismatch,
    /// Writer enum symbols the reader lacks (and the reader has no enum default).
    MissingEnumSymbols,
    /// A reader field absent from the writer and without a default.
    ReaderFieldMissingDefaultValue,
    /// Types that can't be resolved.
    TypeMismatch,
    /// A writer type no reader union branch can read.
    MissingUnionBranch,
    /// Not one of Java's kinds: Java's checker throws here (a reader field whose name and
    /// aliases match more than one writer field, or — for this implementation only — schemas too
    /// deeply recursive to check). Confluent then rejects the schema with "Unexpected exception
    /// during compatibility check: ...".
    UnexpectedError,
}

impl IncompatibilityKind {
    /// Java's spelling: `"TYPE_MISMATCH"`, ...
    pub fn as_str(&self) -> &'static str {
        match self {
            IncompatibilityKind::NameMismatch => "NAME_MISMATCH",
            IncompatibilityKind::FixedSizeMismatch => "FIXED_SIZE_MISMATCH",
            IncompatibilityKind::MissingEnumSymbols => "MISSING_ENUM_SYMBOLS",
            IncompatibilityKind::ReaderFieldMissingDefaultValue => {
                "READER_FIELD_MISSING_DEFAULT_VALUE"
            }
            IncompatibilityKind::TypeMismatch => "TYPE_MISMATCH",
            IncompatibilityKind::MissingUnionBranch => "MISSING_UNION_BRANCH",
            IncompatibilityKind::UnexpectedError => "UNEXPECTED_ERROR",
        }
    }
}

impl fmt::Display for IncompatibilityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason two schemas are incompatible, mirroring Java's `SchemaCompatibility.Incompatibility`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    /// What kind of problem.
    pub kind: IncompatibilityKind,
    /// JSON-pointer-like path in the reader schema as Java reports it, e.g.
    /// `/fields/1/type/symbols`.
    pub location: String,
    /// Java's message, e.g. `reader type: STRING not compatible with writer type: INT`,
    /// `[B, C]` for missing symbols, the field name for a missing default.
    pub message: String,
    /// Compact JSON of the reader sub-schema.
    pub reader_fragment: String,
    /// Compact JSON of the writer sub-schema.
    pub writer_fragment: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.kind, self.location, self.message)
    }
}

/// Every incompatibility found when `reader` reads data written by `writer` (empty = compatible).
pub fn can_read(reader: &Schema, writer: &Schema) -> Vec<Incompatibility> {
    let mut c = Checker {
        reader,
        writer,
        memo: HashMap::new(),
        depth: 0,
    };
    match c.fresh(reader.root(), writer.root()) {
        Ok(v) => v,
        Err(Abort(i)) => vec![*i],
    }
}

/// Which way data flows in a check against one existing version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The candidate (new schema) reads data written with the existing one (BACKWARD).
    NewReadsOld,
    /// The existing (old) schema reads data written with the candidate (FORWARD).
    OldReadsNew,
}

impl Direction {
    /// (reader, writer) as Confluent names them in messages: `("new", "old")` or
    /// `("old", "new")`.
    pub fn reader_writer(self) -> (&'static str, &'static str) {
        match self {
            Direction::NewReadsOld => ("new", "old"),
            Direction::OldReadsNew => ("old", "new"),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::NewReadsOld => "new schema reading data written with the old one",
            Direction::OldReadsNew => "old schema reading data written with the new one",
        })
    }
}

/// One reason a candidate can't join a subject: the existing version concerned, the direction
/// of the failed read and the incompatibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatibilityMessage {
    /// Index into the `existing` slice given to [`check`].
    pub existing_index: usize,
    /// Which schema was reading.
    pub direction: Direction,
    /// What is wrong.
    pub incompatibility: Incompatibility,
}

impl CompatibilityMessage {
    /// Confluent's rendering of the incompatibility (`Difference.toString()` with the
    /// new/old prefixes filled in), e.g.
    /// `{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'x' at path
    /// '/fields/1' in the new schema has no default value and is missing in the old schema',
    /// additionalInfo:'x'}`.
    pub fn confluent_error(&self) -> String {
        let i = &self.incompatibility;
        let (r, w) = self.direction.reader_writer();
        let path = &i.location;
        let msg = &i.message;
        let description = match i.kind {
            IncompatibilityKind::FixedSizeMismatch => format!(
                "The size of FIXED type field at path '{path}' in the {r} schema does not match with the {w} schema"
            ),
            IncompatibilityKind::TypeMismatch => format!(
                "The type (path '{path}') of a field in the {r} schema does not match with the {w} schema"
            ),
            IncompatibilityKind::NameMismatch => {
                format!("The name of the schema has changed (path '{path}')")
            }
            IncompatibilityKind::MissingEnumSymbols => format!(
                "The {r} schema is missing enum symbols '{msg}' at path '{path}' in the {w} schema"
            ),
            IncompatibilityKind::MissingUnionBranch => format!(
                "The {r} schema is missing a type inside a union field at path '{path}' in the {w} schema"
            ),
            IncompatibilityKind::ReaderFieldMissingDefaultValue => format!(
                "The field '{msg}' at path '{path}' in the {r} schema has no default value and is missing in the {w} schema"
            ),
            IncompatibilityKind::UnexpectedError => {
                return format!("Unexpected exception during compatibility check: {msg}");
            }
        };
        format!(
            "{{errorType:'{}', description:'{description}', additionalInfo:'{msg}'}}",
            i.kind
        )
    }
}

impl fmt::Display for CompatibilityMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "existing schema #{} ({}): {}",
            self.existing_index, self.direction, self.incompatibility
        )
    }
}

/// Whether `candidate` may be added to a subject whose live versions are `existing` (oldest
/// first) at `level`, with every reason (empty = compatible).
///
/// BACKWARD: the candidate reads the latest; FORWARD: the latest reads the candidate; FULL: both
/// (forward reasons first, as Confluent lists them); `*_TRANSITIVE`: against every existing
/// version, newest first, stopping at the first version that fails (as Confluent does); NONE:
/// always compatible. No existing versions: always compatible.
pub fn check(
    level: CompatibilityLevel,
    candidate: &Schema,
    existing: &[&Schema],
) -> Vec<CompatibilityMessage> {
    if level == CompatibilityLevel::None {
        return Vec::new();
    }
    let indexes: Vec<usize> = if level.is_transitive() {
        (0..existing.len()).rev().collect()
    } else {
        existing.len().checked_sub(1).into_iter().collect()
    };
    for index in indexes {
        let Some(old) = existing.get(index) else {
            continue;
        };
        let mut messages = Vec::new();
        let mut push = |direction, list: Vec<Incompatibility>| {
            messages.extend(
                list.into_iter()
                    .map(|incompatibility| CompatibilityMessage {
                        existing_index: index,
                        direction,
                        incompatibility,
                    }),
            );
        };
        if level.forward() {
            push(Direction::OldReadsNew, can_read(old, candidate));
        }
        if level.backward() {
            push(Direction::NewReadsOld, can_read(candidate, old));
        }
        if !messages.is_empty() {
            return messages;
        }
    }
    Vec::new()
}

/// The messages Confluent Schema Registry returns for a failed check (before the registry's own
/// trailing `{compatibility: ...}` note): each reason's [`CompatibilityMessage::confluent_error`],
/// followed, for the existing version concerned, by `{oldSchemaVersion: N}` (when `versions`
/// has an entry for it) and `{oldSchema: '<canonical string>'}` — except when only the forward
/// half of a FULL check failed, where Confluent appends nothing.
pub fn confluent_messages(
    level: CompatibilityLevel,
    messages: &[CompatibilityMessage],
    existing: &[&Schema],
    versions: &[i32],
) -> Vec<String> {
    const MAX_SCHEMA_SIZE_FOR_LOGGING: usize = 10 * 1024;
    let mut out: Vec<String> = messages.iter().map(|m| m.confluent_error()).collect();
    let Some(first) = messages.first() else {
        return out;
    };
    let index = first.existing_index;
    let full = matches!(
        level,
        CompatibilityLevel::Full | CompatibilityLevel::FullTransitive
    );
    let append = !full
        || messages
            .iter()
            .any(|m| m.direction == Direction::NewReadsOld);
    if append {
        if let Some(v) = versions.get(index) {
            out.push(format!("{{oldSchemaVersion: {v}}}"));
        }
        if let Some(old) = existing.get(index) {
            let s = old.canonical_string();
            if s.len() <= MAX_SCHEMA_SIZE_FOR_LOGGING {
                out.push(format!("{{oldSchema: '{s}'}}"));
            } else {
                let mut cut = MAX_SCHEMA_SIZE_FOR_LOGGING;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.push(format!(
                    "{{oldSchema: <truncated to {MAX_SCHEMA_SIZE_FOR_LOGGING} characters> '{}'}}",
                    &s[..cut]
                ));
            }
        }
    }
    out
}

/// How deep the pairwise walk may go (counted in reader/writer pairs on the stack). Each
/// record-to-record hop through an optional (union) field uses three levels, so this allows some
/// 130 nested records; only pathological pairs of recursive types get near it. It also keeps the
/// walk inside a 2 MiB thread stack (tokio's default) with room to spare, even in debug builds.
const MAX_CHECK_DEPTH: usize = 400;

/// Java threw: the whole check ends with this one reason.
struct Abort(Box<Incompatibility>);

type CheckResult = Result<Vec<Incompatibility>, Abort>;

struct Checker<'a> {
    reader: &'a Schema,
    writer: &'a Schema,
    /// `None` while the pair is being computed (Java's RECURSION_IN_PROGRESS).
    memo: HashMap<(NodeId, NodeId), Option<Vec<Incompatibility>>>,
    depth: usize,
}

fn location_string(location: &[String]) -> String {
    let parts: Vec<String> = location
        .iter()
        .skip(1)
        .map(|c| c.replace('~', "~0").replace('/', "~1"))
        .collect();
    format!("/{}", parts.join("/"))
}

// The recursive path is get -> calculate -> (check_fields | calculate_other) -> get; everything
// else is kept out of line so those frames stay small.
impl Checker<'_> {
    fn rtype(&self, id: NodeId) -> Type {
        self.reader.node(id).type_()
    }

    fn wtype(&self, id: NodeId) -> Type {
        self.writer.node(id).type_()
    }

    #[inline(never)]
    fn incompatible(
        &self,
        kind: IncompatibilityKind,
        r: NodeId,
        w: NodeId,
        message: String,
        location: &[String],
    ) -> Incompatibility {
        Incompatibility {
            kind,
            location: location_string(location),
            message,
            reader_fragment: self.reader.fragment_string(r),
            writer_fragment: self.writer.fragment_string(w),
        }
    }

    /// Java's public `getCompatibility(reader, writer)`: a fresh location stack, shared memo.
    fn fresh(&mut self, r: NodeId, w: NodeId) -> CheckResult {
        let mut location = Vec::new();
        self.get("", r, w, &mut location)
    }

    #[inline(never)]
    fn too_deep(&self, r: NodeId, w: NodeId, location: &[String]) -> Abort {
        Abort(Box::new(self.incompatible(
            IncompatibilityKind::UnexpectedError,
            r,
            w,
            format!("schemas nest more than {MAX_CHECK_DEPTH} levels deep; not checked"),
            location,
        )))
    }

    fn get(
        &mut self,
        token: &str,
        r: NodeId,
        w: NodeId,
        location: &mut Vec<String>,
    ) -> CheckResult {
        location.push(token.to_owned());
        if self.depth >= MAX_CHECK_DEPTH {
            return Err(self.too_deep(r, w, location));
        }
        self.depth += 1;
        let result = match self.memo.get(&(r, w)) {
            Some(None) => Ok(Vec::new()),
            Some(Some(done)) => Ok(done.clone()),
            None => {
                self.memo.insert((r, w), None);
                let result = self.calculate(r, w, location);
                if let Ok(done) = &result {
                    self.memo.insert((r, w), Some(done.clone()));
                }
                result
            }
        };
        self.depth -= 1;
        location.pop();
        result
    }

    #[inline(never)]
    fn type_mismatch(&self, r: NodeId, w: NodeId, location: &[String]) -> Vec<Incompatibility> {
        let message = format!(
            "reader type: {} not compatible with writer type: {}",
            self.rtype(r).java_name(),
            self.wtype(w).java_name()
        );
        vec![self.incompatible(IncompatibilityKind::TypeMismatch, r, w, message, location)]
    }

    #[inline(never)]
    fn missing_branch(
        &self,
        r: NodeId,
        w: NodeId,
        branch_type: Type,
        location: &[String],
    ) -> Incompatibility {
        let message = format!(
            "reader union lacking writer type: {}",
            branch_type.java_name()
        );
        self.incompatible(
            IncompatibilityKind::MissingUnionBranch,
            r,
            w,
            message,
            location,
        )
    }

    fn calculate(&mut self, r: NodeId, w: NodeId, location: &mut Vec<String>) -> CheckResult {
        let reader = self.reader;
        let writer = self.writer;
        let (rn, wn) = (reader.node(r), writer.node(w));
        if rn.type_() != wn.type_() {
            return self.calculate_other(r, w, location);
        }
        match (&rn.kind, &wn.kind) {
            (NodeKind::Array { items: ri }, NodeKind::Array { items: wi }) => {
                self.get("items", *ri, *wi, location)
            }
            (NodeKind::Map { values: rv }, NodeKind::Map { values: wv }) => {
                self.get("values", *rv, *wv, location)
            }
            (NodeKind::Fixed(_), NodeKind::Fixed(_)) | (NodeKind::Enum(_), NodeKind::Enum(_)) => {
                Ok(self.check_named_leaf(r, w, location))
            }
            (NodeKind::Record(rr), NodeKind::Record(wr)) => {
                let mut result = self.check_names(r, w, location);
                result.extend(self.check_fields(r, w, rr, wr, location)?);
                Ok(result)
            }
            (NodeKind::Union { .. }, NodeKind::Union { branches }) => {
                // Every writer branch must be readable by the reader union.
                let mut result = Vec::new();
                for (i, wb) in branches.iter().enumerate() {
                    location.push(i.to_string());
                    if !self.fresh(r, *wb)?.is_empty() {
                        result.push(self.missing_branch(r, w, self.wtype(*wb), location));
                    }
                    location.pop();
                }
                Ok(result)
            }
            // Primitives of the same type.
            _ => Ok(Vec::new()),
        }
    }

    /// Reader and writer of different types.
    fn calculate_other(&mut self, r: NodeId, w: NodeId, location: &mut Vec<String>) -> CheckResult {
        let reader = self.reader;
        let writer = self.writer;
        let wt = self.wtype(w);
        // A writer union: every branch must be readable.
        if let NodeKind::Union { branches } = &writer.node(w).kind {
            let mut result = Vec::new();
            for (i, wb) in branches.iter().enumerate() {
                result.extend(self.get(&i.to_string(), r, *wb, location)?);
            }
            return Ok(result);
        }
        let ok = match &reader.node(r).kind {
            NodeKind::Long => wt == Type::Int,
            NodeKind::Float => matches!(wt, Type::Int | Type::Long),
            NodeKind::Double => matches!(wt, Type::Int | Type::Long | Type::Float),
            NodeKind::Bytes => wt == Type::String,
            NodeKind::String => wt == Type::Bytes,
            NodeKind::Union { branches } => {
                // Some reader branch must read the writer type.
                for rb in branches {
                    if self.fresh(*rb, w)?.is_empty() {
                        return Ok(Vec::new());
                    }
                }
                return Ok(vec![self.missing_branch(r, w, wt, location)]);
            }
            _ => false,
        };
        Ok(if ok {
            Vec::new()
        } else {
            self.type_mismatch(r, w, location)
        })
    }

    /// Names, then fixed sizes or enum symbols.
    #[inline(never)]
    fn check_named_leaf(
        &self,
        r: NodeId,
        w: NodeId,
        location: &mut Vec<String>,
    ) -> Vec<Incompatibility> {
        let mut result = self.check_names(r, w, location);
        match (&self.reader.node(r).kind, &self.writer.node(w).kind) {
            (NodeKind::Fixed(rf), NodeKind::Fixed(wf)) if rf.size != wf.size => {
                location.push("size".to_owned());
                let message = format!("expected: {}, found: {}", wf.size, rf.size);
                result.push(self.incompatible(
                    IncompatibilityKind::FixedSizeMismatch,
                    r,
                    w,
                    message,
                    location,
                ));
                location.pop();
            }
            (NodeKind::Enum(re), NodeKind::Enum(we)) => {
                // Java: a TreeSet of the writer's symbols minus the reader's.
                let mut missing: Vec<&str> = we
                    .symbols
                    .iter()
                    .filter(|s| !re.symbols.contains(s))
                    .map(String::as_str)
                    .collect();
                missing.sort_unstable();
                missing.dedup();
                let has_default = re.default.as_ref().is_some_and(|d| re.symbols.contains(d));
                if !missing.is_empty() && !has_default {
                    location.push("symbols".to_owned());
                    let message = format!("[{}]", missing.join(", "));
                    result.push(self.incompatible(
                        IncompatibilityKind::MissingEnumSymbols,
                        r,
                        w,
                        message,
                        location,
                    ));
                    location.pop();
                }
            }
            _ => {}
        }
        result
    }

    /// Java's `schemaNameEquals`: equal unqualified names, or a reader alias equal to the
    /// writer's full name.
    #[inline(never)]
    fn check_names(
        &self,
        r: NodeId,
        w: NodeId,
        location: &mut Vec<String>,
    ) -> Vec<Incompatibility> {
        let (Some(rn), Some(wn)) = (self.reader.node(r).name(), self.writer.node(w).name()) else {
            return Vec::new();
        };
        let writer_full = wn.full_name();
        let matches = rn.name() == wn.name()
            || self
                .reader
                .node(r)
                .aliases()
                .iter()
                .any(|a| a.full_name() == writer_full);
        if matches {
            return Vec::new();
        }
        location.push("name".to_owned());
        let i = self.incompatible(
            IncompatibilityKind::NameMismatch,
            r,
            w,
            format!("expected: {writer_full}"),
            location,
        );
        location.pop();
        vec![i]
    }

    /// Java's `lookupWriterField` throwing: the reader field's name and aliases match several
    /// writer fields.
    #[inline(never)]
    fn ambiguous_field(
        &self,
        r: NodeId,
        w: NodeId,
        pos: usize,
        rr: &RecordSchema,
        location: &[String],
    ) -> Abort {
        let (name, ty) = rr
            .fields
            .get(pos)
            .map(|f| (f.name.as_str(), self.rtype(f.schema).java_name()))
            .unwrap_or_default();
        let message = format!(
            "Reader record field {name} type:{ty} pos:{pos} matches multiple fields in writer record schema {}",
            self.writer.fragment_string(w)
        );
        Abort(Box::new(self.incompatible(
            IncompatibilityKind::UnexpectedError,
            r,
            w,
            message,
            location,
        )))
    }

    #[inline(never)]
    fn missing_default(
        &self,
        r: NodeId,
        w: NodeId,
        name: &str,
        location: &[String],
    ) -> Incompatibility {
        self.incompatible(
            IncompatibilityKind::ReaderFieldMissingDefaultValue,
            r,
            w,
            name.to_owned(),
            location,
        )
    }

    fn check_fields(
        &mut self,
        r: NodeId,
        w: NodeId,
        rr: &RecordSchema,
        wr: &RecordSchema,
        location: &mut Vec<String>,
    ) -> CheckResult {
        let mut result = Vec::new();
        location.push("fields".to_owned());
        for (pos, rf) in rr.fields.iter().enumerate() {
            location.push(pos.to_string());
            // Java's lookupWriterField: the field's name and each of its aliases.
            let mut found = None;
            let mut count = 0usize;
            for n in std::iter::once(&rf.name).chain(rf.aliases.iter()) {
                if let Some(wf) = wr.field(n) {
                    found = Some(wf.schema);
                    count += 1;
                }
            }
            if count > 1 {
                return Err(self.ambiguous_field(r, w, pos, rr, location));
            }
            match found {
                Some(wfs) => result.extend(self.get("type", rf.schema, wfs, location)?),
                None if rf.default.is_none() => {
                    let enum_default = matches!(
                        &self.reader.node(rf.schema).kind,
                        NodeKind::Enum(e) if e.default.is_some()
                    );
                    if enum_default {
                        // What Java does: the reader enum against the writer *record*.
                        result.extend(self.get("type", rf.schema, w, location)?);
                    } else {
                        result.push(self.missing_default(r, w, &rf.name, location));
                    }
                }
                None => {}
            }
            location.pop();
        }
        location.pop();
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip() {
        for l in CompatibilityLevel::ALL {
            assert_eq!(CompatibilityLevel::parse(l.as_str()), Some(l));
            assert_eq!(l.to_string().parse::<CompatibilityLevel>(), Ok(l));
        }
        assert_eq!(
            CompatibilityLevel::parse("full_transitive"),
            Some(CompatibilityLevel::FullTransitive)
        );
        assert!(CompatibilityLevel::parse("sideways").is_none());
        assert!("x".parse::<CompatibilityLevel>().is_err());
        assert!(CompatibilityLevel::ForwardTransitive.is_transitive());
        assert!(!CompatibilityLevel::Full.is_transitive());
    }

    #[test]
    fn locations_render_like_java() {
        assert_eq!(location_string(&[String::new()]), "/");
        assert_eq!(
            location_string(&[String::new(), "fields".into(), "0".into(), "a/b~".into()]),
            "/fields/0/a~1b~0"
        );
    }
}
