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

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use crate::limits::{Limit, LimitExceeded, Limits, Work};
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
    /// The reader sub-schema (Java's `getReaderFragment()`), a node of the reader schema.
    pub reader_node: NodeId,
    /// The writer sub-schema (Java's `getWriterFragment()`), a node of the writer schema.
    pub writer_node: NodeId,
}

impl Incompatibility {
    /// Compact JSON of the reader sub-schema (`reader` is the schema that was reading).
    pub fn reader_fragment(&self, reader: &Schema) -> String {
        reader.fragment_string(self.reader_node)
    }

    /// Compact JSON of the writer sub-schema (`writer` is the schema that was read).
    pub fn writer_fragment(&self, writer: &Schema) -> String {
        writer.fragment_string(self.writer_node)
    }
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.kind, self.location, self.message)
    }
}

/// What [`Checker::can_read`] found: the first incompatibilities (at most
/// [`Limits::incompatibilities`]), in Java's order, and how many there are in all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// The first incompatibilities, in the order Java reports them.
    pub incompatibilities: Vec<Incompatibility>,
    /// How many incompatibilities there are (listed or not).
    pub total: u64,
}

impl Report {
    /// Whether the reader reads everything the writer writes.
    pub fn is_compatible(&self) -> bool {
        self.total == 0
    }

    /// How many incompatibilities are counted but not listed, when some are.
    pub fn unlisted(&self) -> Option<u64> {
        let listed = u64::try_from(self.incompatibilities.len()).unwrap_or(u64::MAX);
        (self.total > listed).then(|| self.total - listed)
    }
}

/// Compatibility checks within a budget: every check made with one `Checker` spends from the
/// same [`Limits::work`] (a registry checks a candidate against several versions, both ways,
/// with one), and lists at most [`Limits::incompatibilities`] reasons per check.
///
/// Time and memory are linear in the steps taken: each pair of types is compared once
/// (memoised, as Java does), a list of reasons found for a pair is shared by every place that
/// includes it rather than copied, and the reasons' messages, locations and fragments are only
/// written out for those listed.
#[derive(Debug, Clone)]
pub struct Checker {
    limits: Limits,
    work: Work,
}

impl Checker {
    /// A checker with the budgets of `limits`.
    pub fn new(limits: &Limits) -> Self {
        Checker {
            limits: *limits,
            work: Work::new(limits.work),
        }
    }

    /// Steps taken so far, by every check of this checker.
    pub fn work_spent(&self) -> u64 {
        self.work.spent()
    }

    /// The incompatibilities found when `reader` reads data written by `writer`, or the budget
    /// the check went over.
    pub fn can_read(&mut self, reader: &Schema, writer: &Schema) -> Result<Report, LimitExceeded> {
        let mut walk = Walk {
            reader,
            writer,
            memo: HashMap::default(),
            arena: Arena::default(),
            depth: 0,
            location: Vec::new(),
            work: &mut self.work,
            limits: &self.limits,
        };
        match walk.fresh(reader.root(), writer.root()) {
            Ok(found) => Ok(walk.report(found)),
            Err(Abort::Java(i)) => Ok(Report {
                incompatibilities: vec![*i],
                total: 1,
            }),
            Err(Abort::Budget(e)) => Err(e),
        }
    }
}

/// The incompatibilities found when `reader` reads data written by `writer` (empty =
/// compatible), within [`Limits::default`]: at most [`Limits::incompatibilities`] of them, or
/// one [`IncompatibilityKind::UnexpectedError`] naming the budget the check went over.
pub fn can_read(reader: &Schema, writer: &Schema) -> Vec<Incompatibility> {
    match Checker::new(&Limits::default()).can_read(reader, writer) {
        Ok(report) => report.incompatibilities,
        Err(e) => vec![Incompatibility {
            kind: IncompatibilityKind::UnexpectedError,
            location: "/".to_owned(),
            message: e.to_string(),
            reader_node: reader.root(),
            writer_node: writer.root(),
        }],
    }
}

/// `text` cut to at most `max` bytes (at a character boundary), with `...` and the number of
/// bytes left out when it was cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... ({} more bytes)", &text[..cut], text.len() - cut)
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

/// Why a walk stopped before its end.
enum Abort {
    /// Java threw: the whole check ends with this one reason.
    Java(Box<Incompatibility>),
    /// Over [`Limits::work`].
    Budget(LimitExceeded),
}

/// One step of a location, as Java's `LocationInfo` tokens.
#[derive(Debug, Clone, Copy)]
enum Token {
    /// The start of a location (not written).
    Root,
    Items,
    Values,
    Fields,
    Type,
    Name,
    Size,
    Symbols,
    /// A field position or a union branch index.
    Index(u32),
}

/// A location step in [`Arena::locs`]: its token and the step before it. Locations are made
/// only where a reason is found, and share their common prefixes.
#[derive(Debug, Clone, Copy)]
struct Loc {
    parent: u32,
    token: Token,
}

/// No location step (the parent of a first step).
const NO_LOC: u32 = u32::MAX;

/// One level of the location stack: its token, and its [`Loc`] once a reason below needed it.
struct Level {
    token: Token,
    loc: u32,
}

/// What a reason's message is made of, besides the pair of types (messages are written only
/// for the reasons listed).
#[derive(Debug, Clone, Copy)]
enum Detail {
    None,
    /// The writer type a reader union lacks.
    Branch(Type),
    /// The reader field (position in its record) that has no default.
    Field(u32),
}

/// A reason, before it is written out.
#[derive(Debug, Clone, Copy)]
struct Raw {
    kind: IncompatibilityKind,
    r: NodeId,
    w: NodeId,
    loc: u32,
    detail: Detail,
}

/// An entry of a reason list: a reason of its own, or the whole list found for another pair
/// (shared, not copied).
#[derive(Debug, Clone, Copy)]
enum Part {
    Own(u32),
    Child(u32),
}

/// The reasons found for a pair of types, in Java's order: `parts[start..start + len]` of
/// [`Arena::parts`], `total` reasons in all.
#[derive(Debug, Clone, Copy)]
struct Found {
    start: u32,
    len: u32,
    total: u64,
}

/// The outcome of a pair: `None` when compatible, else an index into [`Arena::found`].
type Outcome = Option<u32>;
type CheckResult = Result<Outcome, Abort>;

/// Everything a walk makes, in flat vectors: no allocation per pair of types.
#[derive(Default)]
struct Arena {
    locs: Vec<Loc>,
    raws: Vec<Raw>,
    parts: Vec<Part>,
    found: Vec<Found>,
    /// Parts of the lists being built, innermost last (see [`Acc`]).
    scratch: Vec<Part>,
}

fn index_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A list of reasons being built: its parts sit at the end of [`Arena::scratch`] from `mark`.
struct Acc {
    mark: usize,
    total: u64,
}

impl Arena {
    fn begin(&self) -> Acc {
        Acc {
            mark: self.scratch.len(),
            total: 0,
        }
    }

    fn own(&mut self, acc: &mut Acc, raw: Raw) {
        self.scratch.push(Part::Own(index_u32(self.raws.len())));
        self.raws.push(raw);
        acc.total = acc.total.saturating_add(1);
    }

    fn child(&mut self, acc: &mut Acc, outcome: Outcome) {
        if let Some(found) = outcome {
            let total = self.found.get(found as usize).map_or(0, |f| f.total);
            acc.total = acc.total.saturating_add(total);
            self.scratch.push(Part::Child(found));
        }
    }

    fn done(&mut self, acc: Acc) -> Outcome {
        let mark = acc.mark.min(self.scratch.len());
        let outcome = match &self.scratch[mark..] {
            [] => None,
            // A single shared list needs no wrapper of its own.
            [Part::Child(found)] => Some(*found),
            parts => {
                let start = index_u32(self.parts.len());
                let len = index_u32(parts.len());
                self.parts.extend_from_slice(parts);
                self.found.push(Found {
                    start,
                    len,
                    total: acc.total,
                });
                Some(index_u32(self.found.len() - 1))
            }
        };
        self.scratch.truncate(mark);
        outcome
    }
}

/// A memo entry: in progress (Java's RECURSION_IN_PROGRESS), or done.
#[derive(Clone, Copy)]
enum Memo {
    InProgress,
    Done(Outcome),
}

/// A hasher for the memo's pair keys (two node indexes in a `u64`): one multiplication, where
/// SipHash would take most of a step's time.
#[derive(Default)]
struct PairHasher(u64);

impl std::hash::Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        self.0 ^= self.0 >> 32;
    }
}

type PairMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<PairHasher>>;

fn pair_key(r: NodeId, w: NodeId) -> u64 {
    let r = u64::try_from(r.index()).unwrap_or(u64::MAX);
    let w = u64::try_from(w.index()).unwrap_or(u64::MAX);
    (r << 32) ^ w
}

fn as_steps(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// One `can_read` walk over a reader and a writer schema.
struct Walk<'a> {
    reader: &'a Schema,
    writer: &'a Schema,
    memo: PairMap<Memo>,
    arena: Arena,
    depth: usize,
    location: Vec<Level>,
    work: &'a mut Work,
    limits: &'a Limits,
}

// The recursive path is get -> calculate -> (check_fields | calculate_other) -> get; everything
// else is kept out of line so those frames stay small.
impl Walk<'_> {
    fn rtype(&self, id: NodeId) -> Type {
        self.reader.node(id).type_()
    }

    fn wtype(&self, id: NodeId) -> Type {
        self.writer.node(id).type_()
    }

    /// Takes `n` steps of the budget.
    #[inline]
    fn step(&mut self, n: u64) -> Result<(), Abort> {
        if self.work.take(n) {
            Ok(())
        } else {
            Err(self.over_budget())
        }
    }

    #[cold]
    #[inline(never)]
    fn over_budget(&self) -> Abort {
        Abort::Budget(LimitExceeded::new(
            Limit::Work,
            self.limits,
            format!(
                "the compatibility check of {} against {}",
                self.reader.root_node().java_full_name(),
                self.writer.root_node().java_full_name()
            ),
        ))
    }

    fn push(&mut self, token: Token) {
        self.location.push(Level { token, loc: NO_LOC });
    }

    fn pop(&mut self) {
        self.location.pop();
    }

    /// The current location as a step of [`Arena::locs`], made once per level.
    #[inline(never)]
    fn here(&mut self) -> Result<u32, Abort> {
        let start = self
            .location
            .iter()
            .rposition(|level| level.loc != NO_LOC)
            .map_or(0, |i| i + 1);
        self.step(as_steps(self.location.len() - start))?;
        let mut parent = start
            .checked_sub(1)
            .and_then(|i| self.location.get(i))
            .map_or(NO_LOC, |level| level.loc);
        let locs = &mut self.arena.locs;
        for level in self.location.iter_mut().skip(start) {
            locs.push(Loc {
                parent,
                token: level.token,
            });
            parent = index_u32(locs.len() - 1);
            level.loc = parent;
        }
        Ok(parent)
    }

    fn location_string(&self, leaf: u32) -> String {
        location_string(&self.arena.locs, leaf)
    }

    /// A reason found at the current location.
    #[inline(never)]
    fn raw(
        &mut self,
        kind: IncompatibilityKind,
        r: NodeId,
        w: NodeId,
        detail: Detail,
    ) -> Result<Raw, Abort> {
        self.step(1)?;
        Ok(Raw {
            kind,
            r,
            w,
            loc: self.here()?,
            detail,
        })
    }

    /// Java's public `getCompatibility(reader, writer)`: a fresh location stack, shared memo.
    fn fresh(&mut self, r: NodeId, w: NodeId) -> CheckResult {
        let saved = std::mem::take(&mut self.location);
        let result = self.get(Token::Root, r, w);
        self.location = saved;
        result
    }

    #[inline(never)]
    fn too_deep(&mut self, r: NodeId, w: NodeId) -> Abort {
        let loc = self.here().unwrap_or(NO_LOC);
        Abort::Java(Box::new(Incompatibility {
            kind: IncompatibilityKind::UnexpectedError,
            location: self.location_string(loc),
            message: format!("schemas nest more than {MAX_CHECK_DEPTH} levels deep; not checked"),
            reader_node: r,
            writer_node: w,
        }))
    }

    fn get(&mut self, token: Token, r: NodeId, w: NodeId) -> CheckResult {
        self.push(token);
        let result = self.get_here(r, w);
        self.pop();
        result
    }

    fn get_here(&mut self, r: NodeId, w: NodeId) -> CheckResult {
        if self.depth >= MAX_CHECK_DEPTH {
            return Err(self.too_deep(r, w));
        }
        self.step(1)?;
        let key = pair_key(r, w);
        match self.memo.get(&key) {
            Some(Memo::InProgress) => return Ok(None),
            Some(Memo::Done(done)) => return Ok(*done),
            None => {}
        }
        self.memo.insert(key, Memo::InProgress);
        self.depth += 1;
        let result = self.calculate(r, w);
        self.depth -= 1;
        if let Ok(done) = result {
            self.memo.insert(key, Memo::Done(done));
        }
        result
    }

    fn calculate(&mut self, r: NodeId, w: NodeId) -> CheckResult {
        let reader = self.reader;
        let writer = self.writer;
        let (rn, wn) = (reader.node(r), writer.node(w));
        if rn.type_() != wn.type_() {
            return self.calculate_other(r, w);
        }
        match (&rn.kind, &wn.kind) {
            (NodeKind::Array { items: ri }, NodeKind::Array { items: wi }) => {
                self.get(Token::Items, *ri, *wi)
            }
            (NodeKind::Map { values: rv }, NodeKind::Map { values: wv }) => {
                self.get(Token::Values, *rv, *wv)
            }
            (NodeKind::Fixed(_), NodeKind::Fixed(_)) | (NodeKind::Enum(_), NodeKind::Enum(_)) => {
                self.check_named_leaf(r, w)
            }
            (NodeKind::Record(rr), NodeKind::Record(wr)) => {
                let mut acc = self.arena.begin();
                let found = self
                    .check_names(r, w, &mut acc)
                    .and_then(|()| self.check_fields(r, w, rr, wr, &mut acc));
                self.finish(acc, found)
            }
            (NodeKind::Union { .. }, NodeKind::Union { branches }) => {
                // Every writer branch must be readable by the reader union.
                let mut acc = self.arena.begin();
                for (i, wb) in branches.iter().enumerate() {
                    self.push(Token::Index(index_u32(i)));
                    let missing = self.fresh(r, *wb).map(|found| found.is_some());
                    let raw = match missing {
                        Ok(true) => {
                            let branch = Detail::Branch(self.wtype(*wb));
                            self.raw(IncompatibilityKind::MissingUnionBranch, r, w, branch)
                                .map(Some)
                        }
                        Ok(false) => Ok(None),
                        Err(e) => Err(e),
                    };
                    self.pop();
                    match raw {
                        Ok(Some(raw)) => self.arena.own(&mut acc, raw),
                        Ok(None) => {}
                        Err(e) => return self.finish(acc, Err(e)),
                    }
                }
                Ok(self.arena.done(acc))
            }
            // Primitives of the same type.
            _ => Ok(None),
        }
    }

    /// Reader and writer of different types.
    fn calculate_other(&mut self, r: NodeId, w: NodeId) -> CheckResult {
        let reader = self.reader;
        let writer = self.writer;
        let wt = self.wtype(w);
        // A writer union: every branch must be readable.
        if let NodeKind::Union { branches } = &writer.node(w).kind {
            let mut acc = self.arena.begin();
            for (i, wb) in branches.iter().enumerate() {
                match self.get(Token::Index(index_u32(i)), r, *wb) {
                    Ok(outcome) => self.arena.child(&mut acc, outcome),
                    Err(e) => return self.finish(acc, Err(e)),
                }
            }
            return Ok(self.arena.done(acc));
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
                    if self.fresh(*rb, w)?.is_none() {
                        return Ok(None);
                    }
                }
                let raw = self.raw(
                    IncompatibilityKind::MissingUnionBranch,
                    r,
                    w,
                    Detail::Branch(wt),
                )?;
                return Ok(self.single(raw));
            }
            _ => false,
        };
        if ok {
            return Ok(None);
        }
        let raw = self.raw(IncompatibilityKind::TypeMismatch, r, w, Detail::None)?;
        Ok(self.single(raw))
    }

    /// A list of one reason.
    fn single(&mut self, raw: Raw) -> Outcome {
        let mut acc = self.arena.begin();
        self.arena.own(&mut acc, raw);
        self.arena.done(acc)
    }

    /// Ends the list `acc` builds: the list when `result` is fine, nothing (and the error)
    /// otherwise.
    fn finish(&mut self, acc: Acc, result: Result<(), Abort>) -> CheckResult {
        match result {
            Ok(()) => Ok(self.arena.done(acc)),
            Err(e) => {
                self.arena.scratch.truncate(acc.mark);
                Err(e)
            }
        }
    }

    /// Names, then fixed sizes or enum symbols.
    #[inline(never)]
    fn check_named_leaf(&mut self, r: NodeId, w: NodeId) -> CheckResult {
        let mut acc = self.arena.begin();
        let result = self.check_leaf_here(r, w, &mut acc);
        self.finish(acc, result)
    }

    fn check_leaf_here(&mut self, r: NodeId, w: NodeId, acc: &mut Acc) -> Result<(), Abort> {
        self.check_names(r, w, acc)?;
        let (reader, writer) = (self.reader, self.writer);
        match (&reader.node(r).kind, &writer.node(w).kind) {
            (NodeKind::Fixed(rf), NodeKind::Fixed(wf)) if rf.size != wf.size => {
                self.push(Token::Size);
                let raw = self.raw(IncompatibilityKind::FixedSizeMismatch, r, w, Detail::None);
                self.pop();
                self.arena.own(acc, raw?);
            }
            (NodeKind::Enum(re), NodeKind::Enum(we)) => {
                self.step(as_steps(re.symbols.len().saturating_add(we.symbols.len())))?;
                let has_default = re.default.as_ref().is_some_and(|d| re.symbols.contains(d));
                if !has_default && !missing_symbols(&re.symbols, &we.symbols).is_empty() {
                    self.push(Token::Symbols);
                    let raw = self.raw(IncompatibilityKind::MissingEnumSymbols, r, w, Detail::None);
                    self.pop();
                    self.arena.own(acc, raw?);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Java's `schemaNameEquals`: equal unqualified names, or a reader alias equal to the
    /// writer's full name.
    #[inline(never)]
    fn check_names(&mut self, r: NodeId, w: NodeId, acc: &mut Acc) -> Result<(), Abort> {
        let (Some(rn), Some(wn)) = (self.reader.node(r).name(), self.writer.node(w).name()) else {
            return Ok(());
        };
        let matches = rn.name() == wn.name() || {
            let writer_full = wn.full_name();
            self.reader
                .node(r)
                .aliases()
                .iter()
                .any(|a| a.full_name() == writer_full)
        };
        if matches {
            return Ok(());
        }
        self.push(Token::Name);
        let raw = self.raw(IncompatibilityKind::NameMismatch, r, w, Detail::None);
        self.pop();
        self.arena.own(acc, raw?);
        Ok(())
    }

    /// Java's `lookupWriterField` throwing: the reader field's name and aliases match several
    /// writer fields.
    #[inline(never)]
    fn ambiguous_field(&mut self, r: NodeId, w: NodeId, pos: usize, rr: &RecordSchema) -> Abort {
        let (name, ty) = rr
            .fields
            .get(pos)
            .map(|f| (f.name.as_str(), self.rtype(f.schema).java_name()))
            .unwrap_or_default();
        let message = format!(
            "Reader record field {name} type:{ty} pos:{pos} matches multiple fields in writer record schema {}",
            self.writer.fragment_string(w)
        );
        let loc = self.here().unwrap_or(NO_LOC);
        Abort::Java(Box::new(Incompatibility {
            kind: IncompatibilityKind::UnexpectedError,
            location: self.location_string(loc),
            message,
            reader_node: r,
            writer_node: w,
        }))
    }

    /// The fields of a record pair, their reasons added to the record's `acc`.
    fn check_fields(
        &mut self,
        r: NodeId,
        w: NodeId,
        rr: &RecordSchema,
        wr: &RecordSchema,
        acc: &mut Acc,
    ) -> Result<(), Abort> {
        self.push(Token::Fields);
        let result = self.check_fields_here(r, w, rr, wr, acc);
        self.pop();
        result
    }

    fn check_fields_here(
        &mut self,
        r: NodeId,
        w: NodeId,
        rr: &RecordSchema,
        wr: &RecordSchema,
        acc: &mut Acc,
    ) -> Result<(), Abort> {
        for (pos, rf) in rr.fields.iter().enumerate() {
            self.step(as_steps(1 + rf.aliases.len()))?;
            self.push(Token::Index(index_u32(pos)));
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
                return Err(self.ambiguous_field(r, w, pos, rr));
            }
            let outcome = match found {
                Some(wfs) => self.get(Token::Type, rf.schema, wfs),
                None if rf.default.is_none() => {
                    let enum_default = matches!(
                        &self.reader.node(rf.schema).kind,
                        NodeKind::Enum(e) if e.default.is_some()
                    );
                    if enum_default {
                        // What Java does: the reader enum against the writer *record*.
                        self.get(Token::Type, rf.schema, w)
                    } else {
                        match self.raw(
                            IncompatibilityKind::ReaderFieldMissingDefaultValue,
                            r,
                            w,
                            Detail::Field(index_u32(pos)),
                        ) {
                            Ok(raw) => {
                                self.arena.own(acc, raw);
                                Ok(None)
                            }
                            Err(e) => Err(e),
                        }
                    }
                }
                None => Ok(None),
            };
            self.pop();
            self.arena.child(acc, outcome?);
        }
        Ok(())
    }

    /// The first reasons of `found`, written out, and how many there are.
    fn report(&self, outcome: Outcome) -> Report {
        let arena = &self.arena;
        let Some(found) = outcome.and_then(|i| arena.found.get(i as usize)) else {
            return Report::default();
        };
        let parts_of = |f: &Found| {
            let start = f.start as usize;
            arena
                .parts
                .get(start..start.saturating_add(f.len as usize))
                .unwrap_or_default()
                .iter()
        };
        let max = self.limits.incompatibilities;
        let mut incompatibilities = Vec::new();
        // Depth-first over the shared lists, leaving off once enough are written.
        let mut stack = vec![parts_of(found)];
        while incompatibilities.len() < max {
            let Some(top) = stack.last_mut() else {
                break;
            };
            match top.next() {
                None => {
                    stack.pop();
                }
                Some(Part::Child(child)) => {
                    if let Some(child) = arena.found.get(*child as usize) {
                        stack.push(parts_of(child));
                    }
                }
                Some(Part::Own(raw)) => {
                    if let Some(raw) = arena.raws.get(*raw as usize) {
                        incompatibilities.push(self.write_out(raw));
                    }
                }
            }
        }
        Report {
            incompatibilities,
            total: found.total,
        }
    }

    /// A reason with Java's message and location.
    fn write_out(&self, raw: &Raw) -> Incompatibility {
        let (r, w) = (raw.r, raw.w);
        let message = match (raw.kind, raw.detail) {
            (IncompatibilityKind::TypeMismatch, _) => format!(
                "reader type: {} not compatible with writer type: {}",
                self.rtype(r).java_name(),
                self.wtype(w).java_name()
            ),
            (IncompatibilityKind::MissingUnionBranch, Detail::Branch(t)) => {
                format!("reader union lacking writer type: {}", t.java_name())
            }
            (IncompatibilityKind::NameMismatch, _) => format!(
                "expected: {}",
                self.writer
                    .node(w)
                    .name()
                    .map(super::schema::Name::full_name)
                    .unwrap_or_default()
            ),
            (IncompatibilityKind::FixedSizeMismatch, _) => {
                match (&self.reader.node(r).kind, &self.writer.node(w).kind) {
                    (NodeKind::Fixed(rf), NodeKind::Fixed(wf)) => {
                        format!("expected: {}, found: {}", wf.size, rf.size)
                    }
                    _ => String::new(),
                }
            }
            (IncompatibilityKind::MissingEnumSymbols, _) => {
                match (&self.reader.node(r).kind, &self.writer.node(w).kind) {
                    (NodeKind::Enum(re), NodeKind::Enum(we)) => {
                        format!("[{}]", missing_symbols(&re.symbols, &we.symbols).join(", "))
                    }
                    _ => String::new(),
                }
            }
            (IncompatibilityKind::ReaderFieldMissingDefaultValue, Detail::Field(pos)) => {
                match &self.reader.node(r).kind {
                    NodeKind::Record(rr) => rr
                        .fields
                        .get(pos as usize)
                        .map(|f| f.name.clone())
                        .unwrap_or_default(),
                    _ => String::new(),
                }
            }
            _ => String::new(),
        };
        Incompatibility {
            kind: raw.kind,
            location: self.location_string(raw.loc),
            message,
            reader_node: r,
            writer_node: w,
        }
    }
}

/// Java: a TreeSet of the writer's symbols minus the reader's (sorted, each once).
fn missing_symbols<'s>(reader: &[String], writer: &'s [String]) -> Vec<&'s str> {
    let mut missing: Vec<&str> = if reader.len() <= 16 {
        writer
            .iter()
            .filter(|s| !reader.contains(s))
            .map(String::as_str)
            .collect()
    } else {
        let known: HashSet<&str> = reader.iter().map(String::as_str).collect();
        writer
            .iter()
            .map(String::as_str)
            .filter(|s| !known.contains(s))
            .collect()
    };
    missing.sort_unstable();
    missing.dedup();
    missing
}

/// Java's rendering of a location: its tokens after the first, `/`-separated (tokens are
/// fixed words and indexes, so nothing needs escaping).
fn location_string(locs: &[Loc], leaf: u32) -> String {
    let mut tokens = Vec::new();
    let mut cur = locs.get(leaf as usize);
    while let Some(loc) = cur {
        tokens.push(loc.token);
        cur = locs.get(loc.parent as usize);
    }
    let mut out = String::new();
    // The first token (the root of the walk) is not written.
    for token in tokens.iter().rev().skip(1) {
        out.push('/');
        match token {
            Token::Root => {}
            Token::Items => out.push_str("items"),
            Token::Values => out.push_str("values"),
            Token::Fields => out.push_str("fields"),
            Token::Type => out.push_str("type"),
            Token::Name => out.push_str("name"),
            Token::Size => out.push_str("size"),
            Token::Symbols => out.push_str("symbols"),
            Token::Index(i) => out.push_str(&i.to_string()),
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
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
        let chain = |tokens: &[Token]| {
            let mut locs = Vec::new();
            let mut leaf = NO_LOC;
            for token in tokens {
                locs.push(Loc {
                    parent: leaf,
                    token: *token,
                });
                leaf = index_u32(locs.len() - 1);
            }
            location_string(&locs, leaf)
        };
        assert_eq!(chain(&[Token::Root]), "/");
        assert_eq!(chain(&[]), "/");
        assert_eq!(
            chain(&[Token::Root, Token::Fields, Token::Index(0), Token::Type]),
            "/fields/0/type"
        );
    }
}
