//! The Avro schema model, its parser and its printers.
//!
//! A [`Schema`] is an arena of [`SchemaNode`]s addressed by [`NodeId`]. Every occurrence of a
//! type in the schema text gets its own node, except references to an already defined named type
//! (by name), which resolve to the node of its definition — exactly mirroring Java Avro's object
//! graph, where each parsed primitive is a fresh `Schema` object and each named type is one shared
//! object. That identity matters: the compatibility checker memoises on node pairs as Java does on
//! object identity, and recursive types are simply cycles in the arena.
//!
//! Named types coming from references (see [`Schema::parse`]) live in the same arena, so a datum
//! encoder or decoder can walk the whole graph from [`Schema::root`] without any lookups.

mod normalize;
mod parse;
mod pcf;
mod print;

use std::collections::HashMap;
use std::fmt;

use crate::json::{Json, Object};
use crate::limits::{LimitExceeded, Limits};

pub use parse::ParseOptions;
pub use pcf::rabin_fingerprint;

/// Index of a node in a [`Schema`]'s arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) usize);

impl NodeId {
    /// The position of the node in [`Schema::nodes`].
    pub fn index(self) -> usize {
        self.0
    }
}

/// The type of a schema node, as Java's `Schema.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// `record` (and `error`)
    Record,
    /// `enum`
    Enum,
    /// `array`
    Array,
    /// `map`
    Map,
    /// a union
    Union,
    /// `fixed`
    Fixed,
    /// `string`
    String,
    /// `bytes`
    Bytes,
    /// `int`
    Int,
    /// `long`
    Long,
    /// `float`
    Float,
    /// `double`
    Double,
    /// `boolean`
    Boolean,
    /// `null`
    Null,
}

impl Type {
    /// Java's `Type.toString()`: `"RECORD"`, `"INT"`, ... (used in compatibility messages).
    pub fn java_name(self) -> &'static str {
        match self {
            Type::Record => "RECORD",
            Type::Enum => "ENUM",
            Type::Array => "ARRAY",
            Type::Map => "MAP",
            Type::Union => "UNION",
            Type::Fixed => "FIXED",
            Type::String => "STRING",
            Type::Bytes => "BYTES",
            Type::Int => "INT",
            Type::Long => "LONG",
            Type::Float => "FLOAT",
            Type::Double => "DOUBLE",
            Type::Boolean => "BOOLEAN",
            Type::Null => "NULL",
        }
    }

    /// Java's `Type.getName()`: `"record"`, `"int"`, ...
    pub fn name(self) -> &'static str {
        match self {
            Type::Record => "record",
            Type::Enum => "enum",
            Type::Array => "array",
            Type::Map => "map",
            Type::Union => "union",
            Type::Fixed => "fixed",
            Type::String => "string",
            Type::Bytes => "bytes",
            Type::Int => "int",
            Type::Long => "long",
            Type::Float => "float",
            Type::Double => "double",
            Type::Boolean => "boolean",
            Type::Null => "null",
        }
    }

    /// The primitive type with this Avro name.
    pub fn primitive(name: &str) -> Option<Type> {
        Some(match name {
            "null" => Type::Null,
            "boolean" => Type::Boolean,
            "int" => Type::Int,
            "long" => Type::Long,
            "float" => Type::Float,
            "double" => Type::Double,
            "bytes" => Type::Bytes,
            "string" => Type::String,
            _ => return None,
        })
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name of a named type: simple name plus optional namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    name: String,
    namespace: Option<String>,
}

impl Name {
    /// The simple (unqualified) name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace, `None` for the null namespace.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The full name, `namespace.name` or `name`.
    pub fn full_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}.{}", self.name),
            None => self.name.clone(),
        }
    }

    /// Java's `Name.getQualified(defaultSpace)`: the simple name when the namespace is null or
    /// equal to `default_space`, the full name otherwise.
    pub(crate) fn qualified(&self, default_space: Option<&str>) -> String {
        match &self.namespace {
            None => self.name.clone(),
            Some(ns) if Some(ns.as_str()) == default_space => self.name.clone(),
            Some(_) => self.full_name(),
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full_name())
    }
}

/// A field's sort order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Order {
    /// `ascending` (the default; not printed)
    #[default]
    Ascending,
    /// `descending`
    Descending,
    /// `ignore`
    Ignore,
}

impl Order {
    /// The lower-case JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Order::Ascending => "ascending",
            Order::Descending => "descending",
            Order::Ignore => "ignore",
        }
    }

    /// Java's `Order.toString()`: `"ASCENDING"`, ...
    pub fn java_name(self) -> &'static str {
        match self {
            Order::Ascending => "ASCENDING",
            Order::Descending => "DESCENDING",
            Order::Ignore => "IGNORE",
        }
    }
}

/// A record field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Field name.
    pub name: String,
    /// Field type.
    pub schema: NodeId,
    /// `doc`, when given as a string.
    pub doc: Option<String>,
    /// `default`, as parsed (textual defaults of `float`/`double` fields already converted to
    /// numbers, as Java does).
    pub default: Option<Json>,
    /// Sort order.
    pub order: Order,
    /// Field aliases, as written, without duplicates.
    pub aliases: Vec<String>,
    /// Custom properties, in order.
    pub props: Object,
}

/// A `record` (or `error`) type.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordSchema {
    /// Name.
    pub name: Name,
    /// `doc`, when given as a string.
    pub doc: Option<String>,
    /// Aliases, resolved against the record's namespace.
    pub aliases: Vec<Name>,
    /// Fields, in order.
    pub fields: Vec<Field>,
    /// Declared with `"type": "error"`.
    pub is_error: bool,
    /// Field positions by name, for records with many fields.
    pub(crate) index: FieldIndex,
}

impl RecordSchema {
    /// The field with this name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.field_position(name).and_then(|i| self.fields.get(i))
    }

    /// The position of the field with this name.
    pub fn field_position(&self, name: &str) -> Option<usize> {
        match &self.index.0 {
            Some(index) => index.by_name.get(name).copied(),
            None => self.fields.iter().position(|f| f.name == name),
        }
    }

    /// The position of the first field whose name or one of whose aliases is `name` (how a
    /// reader record finds the field a writer field goes to).
    pub fn field_position_or_alias(&self, name: &str) -> Option<usize> {
        match &self.index.0 {
            Some(index) => {
                let by_name = index.by_name.get(name).copied();
                let by_alias = index.by_alias.get(name).copied();
                match (by_name, by_alias) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            None => self
                .fields
                .iter()
                .position(|f| f.name == name || f.aliases.iter().any(|a| a == name)),
        }
    }
}

/// Where a record's fields are by name (and by alias), kept for records with more than
/// [`FieldIndex::SCAN_LIMIT`] fields so that finding a field stays constant-time; smaller
/// records are scanned. Not part of a record's identity (equal records may differ in it).
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldIndex(Option<Box<FieldMaps>>);

#[derive(Debug, Clone, Default)]
pub(crate) struct FieldMaps {
    by_name: HashMap<String, usize>,
    /// Alias -> the first field that has it.
    by_alias: HashMap<String, usize>,
}

impl FieldIndex {
    /// Records with up to this many fields are scanned.
    pub(crate) const SCAN_LIMIT: usize = 16;

    /// The index of `fields` (none for small records). Field names are unique.
    pub(crate) fn of(fields: &[Field]) -> FieldIndex {
        if fields.len() <= Self::SCAN_LIMIT {
            return FieldIndex(None);
        }
        let mut maps = FieldMaps::default();
        for (i, f) in fields.iter().enumerate() {
            maps.by_name.entry(f.name.clone()).or_insert(i);
            for a in &f.aliases {
                maps.by_alias.entry(a.clone()).or_insert(i);
            }
        }
        FieldIndex(Some(Box::new(maps)))
    }
}

impl PartialEq for FieldIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// An `enum` type.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumSchema {
    /// Name.
    pub name: Name,
    /// `doc`, when given as a string.
    pub doc: Option<String>,
    /// Aliases, resolved against the enum's namespace.
    pub aliases: Vec<Name>,
    /// Symbols, in order.
    pub symbols: Vec<String>,
    /// The enum default symbol.
    pub default: Option<String>,
}

/// A `fixed` type.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedSchema {
    /// Name.
    pub name: Name,
    /// `doc`, when given as a string.
    pub doc: Option<String>,
    /// Aliases, resolved against the type's namespace.
    pub aliases: Vec<Name>,
    /// Size in bytes.
    pub size: usize,
}

/// A logical type that Java Avro 1.11 recognises and considers valid on its underlying type.
/// Invalid or unknown `logicalType` properties are kept as plain properties only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogicalType {
    /// `decimal` on `bytes` or `fixed`.
    Decimal {
        /// Total digits.
        precision: u32,
        /// Digits after the point.
        scale: u32,
    },
    /// `uuid` on `string`.
    Uuid,
    /// `date` on `int`.
    Date,
    /// `time-millis` on `int`.
    TimeMillis,
    /// `time-micros` on `long`.
    TimeMicros,
    /// `timestamp-millis` on `long`.
    TimestampMillis,
    /// `timestamp-micros` on `long`.
    TimestampMicros,
    /// `local-timestamp-millis` on `long`.
    LocalTimestampMillis,
    /// `local-timestamp-micros` on `long`.
    LocalTimestampMicros,
}

impl LogicalType {
    /// The `logicalType` spelling.
    pub fn name(self) -> &'static str {
        match self {
            LogicalType::Decimal { .. } => "decimal",
            LogicalType::Uuid => "uuid",
            LogicalType::Date => "date",
            LogicalType::TimeMillis => "time-millis",
            LogicalType::TimeMicros => "time-micros",
            LogicalType::TimestampMillis => "timestamp-millis",
            LogicalType::TimestampMicros => "timestamp-micros",
            LogicalType::LocalTimestampMillis => "local-timestamp-millis",
            LogicalType::LocalTimestampMicros => "local-timestamp-micros",
        }
    }
}

/// What a node is.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `null`
    Null,
    /// `boolean`
    Boolean,
    /// `int`
    Int,
    /// `long`
    Long,
    /// `float`
    Float,
    /// `double`
    Double,
    /// `bytes`
    Bytes,
    /// `string`
    String,
    /// `array` of `items`.
    Array {
        /// Element type.
        items: NodeId,
    },
    /// `map` of `values`.
    Map {
        /// Value type.
        values: NodeId,
    },
    /// A union of `branches`.
    Union {
        /// Branch types, in order.
        branches: Vec<NodeId>,
    },
    /// A record.
    Record(RecordSchema),
    /// An enum.
    Enum(EnumSchema),
    /// A fixed.
    Fixed(FixedSchema),
}

/// One node of the schema graph.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaNode {
    /// What the node is.
    pub kind: NodeKind,
    /// Custom properties (including `logicalType` and its parameters), in order.
    pub props: Object,
    /// The logical type, when valid.
    pub logical_type: Option<LogicalType>,
}

impl SchemaNode {
    /// The node's type.
    pub fn type_(&self) -> Type {
        match &self.kind {
            NodeKind::Null => Type::Null,
            NodeKind::Boolean => Type::Boolean,
            NodeKind::Int => Type::Int,
            NodeKind::Long => Type::Long,
            NodeKind::Float => Type::Float,
            NodeKind::Double => Type::Double,
            NodeKind::Bytes => Type::Bytes,
            NodeKind::String => Type::String,
            NodeKind::Array { .. } => Type::Array,
            NodeKind::Map { .. } => Type::Map,
            NodeKind::Union { .. } => Type::Union,
            NodeKind::Record(_) => Type::Record,
            NodeKind::Enum(_) => Type::Enum,
            NodeKind::Fixed(_) => Type::Fixed,
        }
    }

    /// The name of a named type.
    pub fn name(&self) -> Option<&Name> {
        match &self.kind {
            NodeKind::Record(r) => Some(&r.name),
            NodeKind::Enum(e) => Some(&e.name),
            NodeKind::Fixed(f) => Some(&f.name),
            _ => None,
        }
    }

    /// The aliases of a named type (empty for others).
    pub fn aliases(&self) -> &[Name] {
        match &self.kind {
            NodeKind::Record(r) => &r.aliases,
            NodeKind::Enum(e) => &e.aliases,
            NodeKind::Fixed(f) => &f.aliases,
            _ => &[],
        }
    }

    /// The `doc` of a named type.
    pub fn doc(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Record(r) => r.doc.as_deref(),
            NodeKind::Enum(e) => e.doc.as_deref(),
            NodeKind::Fixed(f) => f.doc.as_deref(),
            _ => None,
        }
    }

    /// Java's `getFullName()`: the full name of a named type, the type name otherwise.
    pub fn java_full_name(&self) -> String {
        self.name()
            .map_or_else(|| self.type_().name().to_owned(), Name::full_name)
    }
}

/// A named type known to a [`Schema`].
#[derive(Debug, Clone)]
pub(crate) struct NamedEntry {
    pub(crate) full_name: String,
    pub(crate) node: NodeId,
    pub(crate) from_reference: bool,
}

/// A parsed, fully resolved Avro schema (named types resolved, including those from references).
#[derive(Debug, Clone)]
pub struct Schema {
    nodes: Vec<SchemaNode>,
    root: NodeId,
    named: Vec<NamedEntry>,
    index: HashMap<String, NodeId>,
    /// `nodes[..reference_nodes]` were parsed from reference texts.
    reference_nodes: usize,
}

/// Why a schema text was rejected.
///
/// Paths are JSON pointers into the schema text (`/` is the root), e.g. `/fields/2/type`.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum SchemaError {
    /// The text is not JSON.
    #[error("invalid schema: not valid JSON: {message} at line {line}, column {column}")]
    InvalidJson {
        /// What is wrong.
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The JSON is not a valid Avro schema.
    #[error("invalid schema at {path}: {message}")]
    Invalid {
        /// Where.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A type name that is neither a primitive nor a defined named type (Java requires a named
    /// type to be defined before it is used).
    #[error("invalid schema at {path}: unknown type '{name}'")]
    UnknownType {
        /// The name as written.
        name: String,
        /// Where.
        path: String,
    },
    /// A named type defined twice.
    #[error("invalid schema at {path}: can't redefine '{name}'")]
    Redefinition {
        /// The full name.
        name: String,
        /// Where.
        path: String,
    },
    /// A field default that does not match the field's type (Java's "Invalid default for field").
    #[error("invalid schema at {path}: invalid default for field '{field}': {message}")]
    InvalidDefault {
        /// The field name.
        field: String,
        /// Where (the field).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The schema is over one of the budgets of its [`Limits`].
    #[error("schema over a limit at {path}: {source}")]
    Limit {
        /// Where (the root `/` for limits on the whole text).
        path: String,
        /// Which budget, and what exceeded it.
        source: LimitExceeded,
    },
    /// A referenced schema is itself invalid.
    #[error("invalid referenced schema #{index}: {source}")]
    Reference {
        /// Index into the `references` slice.
        index: usize,
        /// Why it was rejected.
        source: Box<SchemaError>,
    },
}

impl SchemaError {
    /// The JSON pointer of the problem in the schema text, when there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            SchemaError::InvalidJson { .. } => None,
            SchemaError::Invalid { path, .. }
            | SchemaError::UnknownType { path, .. }
            | SchemaError::Redefinition { path, .. }
            | SchemaError::InvalidDefault { path, .. }
            | SchemaError::Limit { path, .. } => Some(path),
            SchemaError::Reference { source, .. } => source.path(),
        }
    }

    /// The budget the schema (or a schema it references) is over, when that is why it was
    /// rejected.
    pub fn limit(&self) -> Option<&LimitExceeded> {
        match self {
            SchemaError::Limit { source, .. } => Some(source),
            SchemaError::Reference { source, .. } => source.limit(),
            _ => None,
        }
    }
}

impl Schema {
    /// Parse a schema text. `references` are the schema texts of referenced schemas (already
    /// ordered so dependencies come first, transitively flattened); their named types become
    /// known to the parser, as Confluent does with resolved references.
    ///
    /// Field defaults are validated, as Java's `Schema.Parser` does by default (and as Confluent
    /// does for newly registered schemas); see [`Schema::parse_with_options`] to skip that.
    pub fn parse(text: &str, references: &[&str]) -> Result<Schema, SchemaError> {
        Self::parse_with_options(text, references, ParseOptions::default())
    }

    /// [`Schema::parse`] with explicit options.
    pub fn parse_with_options(
        text: &str,
        references: &[&str],
        options: ParseOptions,
    ) -> Result<Schema, SchemaError> {
        parse::parse_schema(text, references, options, &Limits::default())
    }

    /// [`Schema::parse_with_options`] within explicit budgets (see [`Limits`]): the size of
    /// the text, nesting, fields, symbols, union branches, names and decimal precision of
    /// `text`; the number of `references`, of named types (references' included) and the work
    /// of validating defaults of the whole. Reference texts were accepted before and are read
    /// as [`Limits::for_stored`] reads them. [`Schema::parse`] applies [`Limits::default`]; a
    /// schema accepted before is best parsed with [`Limits::for_stored`].
    pub fn parse_with_limits(
        text: &str,
        references: &[&str],
        options: ParseOptions,
        limits: &Limits,
    ) -> Result<Schema, SchemaError> {
        parse::parse_schema(text, references, options, limits)
    }

    /// Java's `Schema.toString(referencedSchemas, false)`: compact JSON in Java's key order; types
    /// that came from references are written by name, not inlined. This is Confluent's
    /// `canonicalString()` — what it stores and what "the same schema" means.
    pub fn canonical_string(&self) -> String {
        print::canonical(self)
    }

    /// Java's `Schema.toString()`: like [`Schema::canonical_string`] but with types from
    /// references inlined (Confluent's `format=resolved`).
    pub fn resolved_string(&self) -> String {
        print::fragment(self, self.root)
    }

    /// Confluent's `normalize=true` form: `AvroSchema.normalize()` builds a normalized text
    /// (`AvroSchemaUtils.toNormalizedString`: full names, properties and aliases sorted, defaults
    /// re-serialized through their Avro values) and then stores that schema's canonical string.
    /// Both steps are reproduced here. Should the normalized text fail to parse (Confluent would
    /// fail too), the canonical string is returned.
    pub fn normalized_string(&self) -> String {
        normalize::normalized_string(self)
    }

    /// Avro's Parsing Canonical Form, as Java's `SchemaNormalization.toParsingForm` writes it
    /// (types from references inlined; logical types, defaults, docs, aliases and properties
    /// dropped).
    pub fn parsing_canonical_form(&self) -> String {
        pcf::parsing_form(self, self.root)
    }

    /// The 64-bit Rabin fingerprint of the Parsing Canonical Form (Java's
    /// `SchemaNormalization.parsingFingerprint64`).
    pub fn parsing_fingerprint64(&self) -> u64 {
        rabin_fingerprint(self.parsing_canonical_form().as_bytes())
    }

    /// Full names of the named types this schema defines (not those from references), in
    /// definition order.
    pub fn defined_names(&self) -> Vec<String> {
        self.named
            .iter()
            .filter(|e| !e.from_reference)
            .map(|e| e.full_name.clone())
            .collect()
    }

    /// Full names of the named types that came from references, in definition order.
    pub fn referenced_names(&self) -> Vec<String> {
        self.named
            .iter()
            .filter(|e| e.from_reference)
            .map(|e| e.full_name.clone())
            .collect()
    }

    /// The full name of the top-level type when it is a named type (record, error, enum, fixed),
    /// `None` otherwise. (Confluent's `AvroSchema.name()`, used by `RecordNameStrategy`, is this
    /// for records only; check [`Schema::type_name`] for that.)
    pub fn full_name(&self) -> Option<String> {
        self.root_node().name().map(Name::full_name)
    }

    /// The top-level type: `"record"`, `"enum"`, `"fixed"`, `"array"`, `"map"`, `"union"`,
    /// `"int"`, ... (`error` types report `"record"`, as Java's `Type` does).
    pub fn type_name(&self) -> &'static str {
        self.root_node().type_().name()
    }

    /// The root node id.
    pub fn root(&self) -> NodeId {
        self.root
    }

    /// The root node.
    pub fn root_node(&self) -> &SchemaNode {
        self.node(self.root)
    }

    /// A node by id.
    ///
    /// # Panics
    /// Never for ids obtained from this schema (an id from another schema may be out of range).
    #[allow(clippy::indexing_slicing)]
    pub fn node(&self, id: NodeId) -> &SchemaNode {
        &self.nodes[id.0]
    }

    /// All nodes (the arena).
    pub fn nodes(&self) -> &[SchemaNode] {
        &self.nodes
    }

    /// The node of a named type, by full name (including types from references).
    pub fn lookup(&self, full_name: &str) -> Option<NodeId> {
        self.index.get(full_name).copied()
    }

    /// Compact JSON of the sub-schema at `id`, as Java's `toString()` of that sub-schema prints
    /// it (everything inlined on first use).
    pub fn fragment_string(&self, id: NodeId) -> String {
        print::fragment(self, id)
    }
}

impl fmt::Display for Schema {
    /// The canonical string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical_string())
    }
}
