//! Budgets for everything a schema or a datum can make this crate do.
//!
//! Every input is hostile until proven otherwise: a schema text, the texts it references, a
//! reader schema, a JSON value. Parsing, printing, normalization and the codec are linear (or
//! n log n) in their input; what remains to bound is how large an input may be and how much
//! walking a request may ask for. [`Limits`] holds every such budget in one place, is passed
//! to [`crate::schema::Schema::parse_with_limits`], [`crate::compat::Checker`] and the codec's
//! `*_with` functions, and is what the services turn into flags (`--max-<name>`, with the
//! [`Limit::name`] of each budget).
//!
//! Past a budget the operation fails with a [`LimitExceeded`] naming the [`Limit`], its value
//! and what exceeded it; nothing is truncated silently, except the list of incompatibilities a
//! check reports (the first [`Limits::incompatibilities`], plus how many there were).

use std::fmt;

/// One budget of [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Bytes of one schema text.
    SchemaBytes,
    /// Nesting of JSON arrays and objects in a schema text.
    SchemaDepth,
    /// Fields of one record.
    RecordFields,
    /// Symbols of one enum.
    EnumSymbols,
    /// Branches of one union.
    UnionBranches,
    /// Named types (records, enums, fixed) of a schema, its references' included.
    NamedTypes,
    /// Bytes of one name: a full name, a field name, an enum symbol or an alias.
    NameBytes,
    /// Schemas a schema references, transitively, each counted once.
    References,
    /// How deep references nest (a reference of a reference is depth 2).
    ReferenceDepth,
    /// Precision (so also scale) of a `decimal` logical type.
    DecimalPrecision,
    /// Steps of one walk over schemas: field default validation, and a compatibility check
    /// (pairs of types compared, fields and symbols matched, over every version checked).
    Work,
    /// Nesting of a datum, in JSON (JSON -> Avro) and in Avro binary (Avro -> JSON).
    JsonDepth,
    /// Incompatibilities a compatibility check lists (the rest are counted, not listed).
    Incompatibilities,
}

impl Limit {
    /// Every budget.
    pub const ALL: [Limit; 13] = [
        Limit::SchemaBytes,
        Limit::SchemaDepth,
        Limit::RecordFields,
        Limit::EnumSymbols,
        Limit::UnionBranches,
        Limit::NamedTypes,
        Limit::NameBytes,
        Limit::References,
        Limit::ReferenceDepth,
        Limit::DecimalPrecision,
        Limit::Work,
        Limit::JsonDepth,
        Limit::Incompatibilities,
    ];

    /// The budget's name, as the services spell its flag: `--max-<name>` and
    /// `<SERVICE>_MAX_<NAME>` (`schema-bytes`, `record-fields`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Limit::SchemaBytes => "schema-bytes",
            Limit::SchemaDepth => "schema-depth",
            Limit::RecordFields => "record-fields",
            Limit::EnumSymbols => "enum-symbols",
            Limit::UnionBranches => "union-branches",
            Limit::NamedTypes => "named-types",
            Limit::NameBytes => "name-bytes",
            Limit::References => "references",
            Limit::ReferenceDepth => "reference-depth",
            Limit::DecimalPrecision => "decimal-precision",
            Limit::Work => "schema-work",
            Limit::JsonDepth => "json-depth",
            Limit::Incompatibilities => "incompatibilities",
        }
    }

    /// What the budget counts, in a phrase: "fields in one record", ...
    pub fn counts(self) -> &'static str {
        match self {
            Limit::SchemaBytes => "bytes in one schema text",
            Limit::SchemaDepth => "levels of JSON nesting in a schema text",
            Limit::RecordFields => "fields in one record",
            Limit::EnumSymbols => "symbols in one enum",
            Limit::UnionBranches => "branches in one union",
            Limit::NamedTypes => "named types in a schema and its references",
            Limit::NameBytes => "bytes in one name",
            Limit::References => "referenced schemas",
            Limit::ReferenceDepth => "levels of nested references",
            Limit::DecimalPrecision => "digits of decimal precision",
            Limit::Work => "steps of schema checking",
            Limit::JsonDepth => "levels of nesting in a datum",
            Limit::Incompatibilities => "incompatibilities listed",
        }
    }

    /// The value of this budget in `limits`.
    pub fn of(self, limits: &Limits) -> u64 {
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        match self {
            Limit::SchemaBytes => n(limits.schema_bytes),
            Limit::SchemaDepth => n(limits.schema_depth),
            Limit::RecordFields => n(limits.record_fields),
            Limit::EnumSymbols => n(limits.enum_symbols),
            Limit::UnionBranches => n(limits.union_branches),
            Limit::NamedTypes => n(limits.named_types),
            Limit::NameBytes => n(limits.name_bytes),
            Limit::References => n(limits.references),
            Limit::ReferenceDepth => n(limits.reference_depth),
            Limit::DecimalPrecision => u64::from(limits.decimal_precision),
            Limit::Work => limits.work,
            Limit::JsonDepth => n(limits.json_depth),
            Limit::Incompatibilities => n(limits.incompatibilities),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An input over a budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} exceeds the limit of {max} {} (max-{limit})", limit.counts())]
pub struct LimitExceeded {
    /// Which budget.
    pub limit: Limit,
    /// Its value.
    pub max: u64,
    /// What went over it, e.g. "record 'com.acme.Order' (12000 fields)".
    pub what: String,
}

impl LimitExceeded {
    pub(crate) fn new(limit: Limit, limits: &Limits, what: impl Into<String>) -> Self {
        LimitExceeded {
            limit,
            max: limit.of(limits),
            what: what.into(),
        }
    }
}

/// The budgets. [`Limits::default`] is generous for real schemas (the largest schemas seen in
/// the wild have a few thousand fields) and keeps every request of a service in the tens of
/// milliseconds to about a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one schema text (each reference text is checked on its own).
    pub schema_bytes: usize,
    /// Levels of JSON nesting in a schema text (a record inside a record's field adds three:
    /// the field list, the field, the type). At most [`Limits::MAX_SCHEMA_DEPTH`].
    pub schema_depth: usize,
    /// Fields of one record.
    pub record_fields: usize,
    /// Symbols of one enum.
    pub enum_symbols: usize,
    /// Branches of one union.
    pub union_branches: usize,
    /// Named types of one schema, those of its references included.
    pub named_types: usize,
    /// Bytes of one name (a named type's full name, a field name, an enum symbol, an alias).
    pub name_bytes: usize,
    /// Schemas one schema references, transitively, each counted once.
    pub references: usize,
    /// How deep references may nest.
    pub reference_depth: usize,
    /// Precision of a `decimal` (its scale is at most its precision).
    pub decimal_precision: u32,
    /// Steps one walk over schemas may take: validating the field defaults of one schema, or
    /// one compatibility check over every version it compares with.
    pub work: u64,
    /// Levels of nesting in a datum, both ways. At most [`Limits::MAX_JSON_DEPTH`].
    pub json_depth: usize,
    /// Incompatibilities a compatibility check lists in full.
    pub incompatibilities: usize,
}

impl Limits {
    /// The deepest schema text the parser can take on a 2 MiB stack: the ceiling of
    /// [`Limits::schema_depth`] ([`crate::json::MAX_DEPTH`]).
    pub const MAX_SCHEMA_DEPTH: usize = crate::json::MAX_DEPTH;
    /// The deepest datum the codec can take on a 2 MiB stack: the ceiling of
    /// [`Limits::json_depth`] ([`crate::codec::MAX_DEPTH`]).
    pub const MAX_JSON_DEPTH: usize = crate::codec::MAX_DEPTH;

    /// These limits for a schema that was accepted before (a stored schema, or one a registry
    /// serves): the structural budgets are lifted, so lowering a limit never makes a stored
    /// schema unreadable. The nesting ceilings, the work budget and the codec's depth stay.
    pub fn for_stored(self) -> Limits {
        Limits {
            schema_bytes: usize::MAX,
            schema_depth: Self::MAX_SCHEMA_DEPTH,
            record_fields: usize::MAX,
            enum_symbols: usize::MAX,
            union_branches: usize::MAX,
            named_types: usize::MAX,
            name_bytes: usize::MAX,
            references: usize::MAX,
            reference_depth: self.reference_depth.max(Limits::default().reference_depth),
            decimal_precision: u32::MAX,
            ..self
        }
    }

    /// The limit that is set above its ceiling, if any (the services refuse to start then).
    pub fn check(&self) -> Result<(), String> {
        if self.schema_depth > Self::MAX_SCHEMA_DEPTH {
            return Err(format!(
                "max-schema-depth {} is above the ceiling of {} (the parser's stack)",
                self.schema_depth,
                Self::MAX_SCHEMA_DEPTH
            ));
        }
        if self.json_depth > Self::MAX_JSON_DEPTH {
            return Err(format!(
                "max-json-depth {} is above the ceiling of {} (the codec's stack)",
                self.json_depth,
                Self::MAX_JSON_DEPTH
            ));
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            schema_bytes: 1024 * 1024,
            schema_depth: Self::MAX_SCHEMA_DEPTH,
            record_fields: 10_000,
            enum_symbols: 10_000,
            union_branches: 1_000,
            named_types: 10_000,
            name_bytes: 1_024,
            references: 100,
            reference_depth: 32,
            decimal_precision: 1_000,
            work: 5_000_000,
            json_depth: Self::MAX_JSON_DEPTH,
            incompatibilities: 100,
        }
    }
}

/// A step counter against [`Limits::work`].
#[derive(Debug, Clone, Copy)]
pub struct Work {
    spent: u64,
    max: u64,
}

impl Work {
    /// A counter of `max` steps.
    pub fn new(max: u64) -> Self {
        Work { spent: 0, max }
    }

    /// Steps taken so far.
    pub fn spent(&self) -> u64 {
        self.spent
    }

    /// Takes `n` steps; `false` once the budget is spent.
    #[inline]
    pub(crate) fn take(&mut self, n: u64) -> bool {
        self.spent = self.spent.saturating_add(n);
        self.spent <= self.max
    }
}
