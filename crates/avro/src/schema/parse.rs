//! Schema parsing, following Java Avro 1.11's `Schema.parse(JsonNode, Names)` rule for rule.
//!
//! Notable Java behaviours reproduced here:
//! - a named type must be defined before it is used, and can't be defined twice;
//! - names are resolved first in the current namespace, then in the null namespace;
//! - only the simple part of a name is validated (letters, digits, `_`; not starting with a
//!   digit); namespaces are not validated by Java 1.11 and are not here either;
//! - a `{"type": "Name"}` object referring to a named type returns that type (its other keys are
//!   ignored); it is resolved in the current namespace only;
//! - unions may not contain unions, nor two branches with the same (full) name;
//! - textual defaults of `float`/`double` fields are converted to numbers;
//! - defaults are validated like `Schema.isValidDefault` (unions against their first branch;
//!   a default that needs the fields of a record still being defined is an error, as Java's
//!   "Schema fields not set yet");
//! - non-string `doc`, `namespace` and enum `default` values are ignored;
//! - unknown or invalid logical types are ignored (the property is kept);
//! - anything after the first JSON value of the text is ignored (Jackson's `readTree`).

use std::cell::Cell;
use std::collections::{HashMap, HashSet};

use super::{
    EnumSchema, Field, FieldIndex, FixedSchema, LogicalType, Name, NamedEntry, NodeId, NodeKind,
    Order, RecordSchema, Schema, SchemaError, SchemaNode, Type,
};
use crate::json::{self, Json, Number, Object};
use crate::limits::{Limit, LimitExceeded, Limits, Work};

/// Options for [`Schema::parse_with_options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Validate field defaults against their types (Java's `Schema.Parser.setValidateDefaults`).
    /// On by default. Confluent validates defaults only for schemas being registered, not for
    /// schemas it already stores.
    pub validate_defaults: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            validate_defaults: true,
        }
    }
}

const SCHEMA_RESERVED: &[&str] = &[
    "doc",
    "fields",
    "items",
    "name",
    "namespace",
    "size",
    "symbols",
    "values",
    "type",
    "aliases",
];
const FIELD_RESERVED: &[&str] = &["default", "doc", "name", "order", "type", "aliases"];

/// A deep enough bound for default-value validation (which may follow field defaults of nested
/// records); far beyond any real schema.
const MAX_DEFAULT_DEPTH: usize = 1024;

pub(crate) fn parse_schema(
    text: &str,
    references: &[&str],
    options: ParseOptions,
    limits: &Limits,
) -> Result<Schema, SchemaError> {
    if references.len() > limits.references {
        return Err(limit_error(
            "/".to_owned(),
            Limit::References,
            limits,
            format!("{} referenced schemas", references.len()),
        ));
    }
    let mut p = Parser::new(options, limits);
    // Referenced schemas were accepted before (a registry stores them): they are held to the
    // budgets of the whole (named types, the work of validating defaults), not to those of
    // one text, which may have been raised since.
    p.limits = Limits {
        named_types: limits.named_types,
        work: limits.work,
        ..limits.for_stored()
    };
    for (index, reference) in references.iter().enumerate() {
        p.parse_text(reference)
            .map_err(|e| SchemaError::Reference {
                index,
                source: Box::new(e),
            })?;
    }
    p.limits = *limits;
    let reference_nodes = p.nodes.len();
    for e in &mut p.named {
        e.from_reference = true;
    }
    let root = p.parse_text(text)?;
    Ok(p.finish(root, reference_nodes))
}

/// Parses `text` as a main schema on top of the reference types of `base`.
pub(crate) fn parse_on_references(
    base: &Schema,
    text: &str,
    options: ParseOptions,
) -> Result<Schema, SchemaError> {
    let mut p = Parser::new(options, &Limits::default().for_stored());
    p.nodes = base.nodes[..base.reference_nodes].to_vec();
    for e in base.named.iter().filter(|e| e.from_reference) {
        p.index.insert(e.full_name.clone(), e.node);
        p.named.push(e.clone());
    }
    let root = p.parse_text(text)?;
    Ok(p.finish(root, base.reference_nodes))
}

pub(crate) struct Parser {
    nodes: Vec<SchemaNode>,
    named: Vec<NamedEntry>,
    index: HashMap<String, NodeId>,
    /// Records whose fields are still being parsed.
    pending: HashSet<NodeId>,
    /// The current default namespace.
    space: Option<String>,
    options: ParseOptions,
    limits: Limits,
    /// Steps of default validation so far.
    work: Cell<Work>,
    path: Vec<String>,
}

#[cold]
#[inline(never)]
fn limit_error(path: String, limit: Limit, limits: &Limits, what: String) -> SchemaError {
    SchemaError::Limit {
        path,
        source: LimitExceeded::new(limit, limits, what),
    }
}

fn invalid(path: String, message: impl Into<String>) -> SchemaError {
    SchemaError::Invalid {
        path,
        message: message.into(),
    }
}

/// Java's `Schema.validateName`: a letter or `_`, then letters, digits or `_`. Java tests
/// UTF-16 code units with `Character.isLetter`/`isLetterOrDigit`, so characters outside the BMP
/// are never accepted.
pub(crate) fn validate_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err("empty name".to_owned());
    };
    let bmp = |c: char| (c as u32) <= 0xFFFF;
    if !(first == '_' || (first.is_alphabetic() && bmp(first))) {
        return Err(format!("illegal initial character in name '{name}'"));
    }
    if chars.any(|c| !(c == '_' || (c.is_alphanumeric() && bmp(c)))) {
        return Err(format!("illegal character in name '{name}'"));
    }
    Ok(())
}

/// Java's `new Name(name, space)`: a dotted name carries its own namespace; an empty namespace
/// is the null namespace; the simple name is validated.
pub(crate) fn make_name(name: &str, space: Option<&str>) -> Result<Name, String> {
    let (space, simple) = match name.rfind('.') {
        Some(i) => (Some(&name[..i]), &name[i + 1..]),
        None => (space, name),
    };
    validate_name(simple)?;
    Ok(Name {
        name: simple.to_owned(),
        namespace: space.filter(|s| !s.is_empty()).map(str::to_owned),
    })
}

fn node(kind: NodeKind) -> SchemaNode {
    SchemaNode {
        kind,
        props: Object::new(),
        logical_type: None,
    }
}

fn primitive_kind(t: Type) -> NodeKind {
    match t {
        Type::Null => NodeKind::Null,
        Type::Boolean => NodeKind::Boolean,
        Type::Int => NodeKind::Int,
        Type::Long => NodeKind::Long,
        Type::Float => NodeKind::Float,
        Type::Double => NodeKind::Double,
        Type::Bytes => NodeKind::Bytes,
        _ => NodeKind::String,
    }
}

/// Java's `LogicalTypes.fromSchemaIgnoreInvalid` for the logical types Java Avro 1.11 knows.
fn logical_type(kind: &NodeKind, props: &Object) -> Option<LogicalType> {
    let int_prop = |key: &str| {
        props
            .get(key)
            .and_then(Json::as_number)
            .and_then(Number::as_i32)
    };
    let lt = match props.get("logicalType")?.as_str()? {
        "decimal" => {
            let precision = int_prop("precision")?;
            let scale = if props.contains_key("scale") {
                int_prop("scale")?
            } else {
                0
            };
            if precision <= 0 || scale < 0 || scale > precision {
                return None;
            }
            match kind {
                NodeKind::Bytes => {}
                NodeKind::Fixed(f) => {
                    if i64::from(precision) > max_decimal_precision(f.size) {
                        return None;
                    }
                }
                _ => return None,
            }
            LogicalType::Decimal {
                precision: u32::try_from(precision).ok()?,
                scale: u32::try_from(scale).ok()?,
            }
        }
        "uuid" => LogicalType::Uuid,
        "date" => LogicalType::Date,
        "time-millis" => LogicalType::TimeMillis,
        "time-micros" => LogicalType::TimeMicros,
        "timestamp-millis" => LogicalType::TimestampMillis,
        "timestamp-micros" => LogicalType::TimestampMicros,
        "local-timestamp-millis" => LogicalType::LocalTimestampMillis,
        "local-timestamp-micros" => LogicalType::LocalTimestampMicros,
        _ => return None,
    };
    let ok = match lt {
        LogicalType::Decimal { .. } => true,
        LogicalType::Uuid => matches!(kind, NodeKind::String),
        LogicalType::Date | LogicalType::TimeMillis => matches!(kind, NodeKind::Int),
        _ => matches!(kind, NodeKind::Long),
    };
    ok.then_some(lt)
}

/// The first symbols of an enum, for a message that names them (all of them when few).
fn symbols_preview(symbols: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut out = symbols
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if symbols.len() > SHOWN {
        out.push_str(&format!(", ... ({} symbols)", symbols.len()));
    }
    out
}

/// Java's `Decimal.maxPrecision(size)`: `round(floor(log10(2^(8*size-1) - 1)))`.
fn max_decimal_precision(size: usize) -> i64 {
    let bits = i64::try_from(size)
        .unwrap_or(i64::MAX)
        .saturating_mul(8)
        .saturating_sub(1);
    let bits = i32::try_from(bits).unwrap_or(i32::MAX);
    let v = (2f64.powi(bits) - 1.0).log10().floor();
    if v.is_nan() {
        0
    } else if v == f64::INFINITY {
        i64::MAX
    } else if v == f64::NEG_INFINITY {
        i64::MIN
    } else {
        // In range: a finite floor of a log10 of a double.
        #[allow(clippy::cast_possible_truncation)]
        let r = v as i64;
        r
    }
}

impl Parser {
    fn new(options: ParseOptions, limits: &Limits) -> Self {
        Parser {
            nodes: Vec::new(),
            named: Vec::new(),
            index: HashMap::new(),
            pending: HashSet::new(),
            space: None,
            options,
            limits: *limits,
            work: Cell::new(Work::new(limits.work)),
            path: Vec::new(),
        }
    }

    /// Takes `n` steps of [`Limits::work`]; `false` once it is spent.
    fn step(&self, n: u64) -> bool {
        let mut work = self.work.get();
        let ok = work.take(n);
        self.work.set(work);
        ok
    }

    /// The error for `what` going over `limit`, at the current path.
    #[cold]
    #[inline(never)]
    fn over(&self, limit: Limit, what: String) -> SchemaError {
        limit_error(self.path(), limit, &self.limits, what)
    }

    /// A name (full name, field name, symbol, alias) within [`Limits::name_bytes`].
    #[inline]
    fn check_name_len(&self, name: &str, what: &str) -> Result<(), SchemaError> {
        if name.len() > self.limits.name_bytes {
            return Err(self.long_name(name, what));
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn long_name(&self, name: &str, what: &str) -> SchemaError {
        let mut cut = 40.min(name.len());
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        self.over(
            Limit::NameBytes,
            format!("{what} '{}...' ({} bytes)", &name[..cut], name.len()),
        )
    }

    fn finish(self, root: NodeId, reference_nodes: usize) -> Schema {
        Schema {
            nodes: self.nodes,
            root,
            named: self.named,
            index: self.index,
            reference_nodes,
        }
    }

    fn parse_text(&mut self, text: &str) -> Result<NodeId, SchemaError> {
        self.space = None;
        self.path.clear();
        if text.len() > self.limits.schema_bytes {
            return Err(self.over(
                Limit::SchemaBytes,
                format!("a schema of {} bytes", text.len()),
            ));
        }
        let json = Json::parse_first_value_with_depth(text, self.limits.schema_depth).map_err(
            |e| match e.depth_limit {
                Some(_) => limit_error(
                    "/".to_owned(),
                    Limit::SchemaDepth,
                    &self.limits,
                    format!(
                        "the schema text (nested deeper at line {}, column {})",
                        e.line, e.column
                    ),
                ),
                None => SchemaError::InvalidJson {
                    message: e.message,
                    line: e.line,
                    column: e.column,
                },
            },
        )?;
        self.parse(&json)
    }

    fn path(&self) -> String {
        if self.path.is_empty() {
            return "/".to_owned();
        }
        let mut s = String::new();
        for seg in &self.path {
            s.push('/');
            s.push_str(&seg.replace('~', "~0").replace('/', "~1"));
        }
        s
    }

    fn node_ref(&self, id: NodeId) -> Option<&SchemaNode> {
        self.nodes.get(id.0)
    }

    fn type_of(&self, id: NodeId) -> Option<Type> {
        self.node_ref(id).map(SchemaNode::type_)
    }

    fn push(&mut self, n: SchemaNode) -> NodeId {
        self.nodes.push(n);
        NodeId(self.nodes.len() - 1)
    }

    /// Java's `Names.get(String)`: the current namespace first, then the null namespace.
    fn lookup(&self, name: &str) -> Result<Option<NodeId>, String> {
        let n = make_name(name, self.space.as_deref())?;
        if let Some(id) = self.index.get(&n.full_name()) {
            return Ok(Some(*id));
        }
        let n = make_name(name, None)?;
        Ok(self.index.get(&n.full_name()).copied())
    }

    fn register(&mut self, name: &Name, id: NodeId) -> Result<(), SchemaError> {
        let full = name.full_name();
        self.check_name_len(&full, "the name")?;
        if self.named.len() >= self.limits.named_types {
            return Err(self.over(Limit::NamedTypes, format!("named type '{full}'")));
        }
        if self.index.contains_key(&full) {
            return Err(SchemaError::Redefinition {
                name: full,
                path: self.path(),
            });
        }
        self.index.insert(full.clone(), id);
        self.named.push(NamedEntry {
            full_name: full,
            node: id,
            from_reference: false,
        });
        Ok(())
    }

    // The recursive descent below (parse -> parse_object -> parse_object_kind -> parse_container
    // -> parse ...) keeps its frames small: anything bulky or cold lives in separate functions,
    // so the deepest JSON the reader accepts parses comfortably on a 2 MiB stack, even in debug
    // builds.

    fn parse(&mut self, json: &Json) -> Result<NodeId, SchemaError> {
        match json {
            Json::String(s) => self.parse_name_ref(s),
            Json::Object(obj) => self.parse_object(obj),
            Json::Array(items) => self.parse_union(items),
            other => Err(self.not_a_schema(other)),
        }
    }

    #[cold]
    #[inline(never)]
    fn not_a_schema(&self, json: &Json) -> SchemaError {
        invalid(
            self.path(),
            format!("a schema must be a type name, an object or an array (union), not {json}"),
        )
    }

    #[cold]
    #[inline(never)]
    fn missing(&self, message: &str) -> SchemaError {
        invalid(self.path(), message)
    }

    fn parse_name_ref(&mut self, s: &str) -> Result<NodeId, SchemaError> {
        if let Some(t) = Type::primitive(s) {
            return Ok(self.push(node(primitive_kind(t))));
        }
        match self.lookup(s) {
            Ok(Some(id)) => Ok(id),
            Ok(None) => Err(SchemaError::UnknownType {
                name: s.to_owned(),
                path: self.path(),
            }),
            Err(msg) => Err(invalid(self.path(), msg)),
        }
    }

    fn parse_union(&mut self, items: &[Json]) -> Result<NodeId, SchemaError> {
        if items.len() > self.limits.union_branches {
            return Err(self.over(
                Limit::UnionBranches,
                format!("a union of {} branches", items.len()),
            ));
        }
        let mut branches = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            self.path.push(i.to_string());
            let id = self.parse(item);
            self.path.pop();
            branches.push(id?);
        }
        self.check_union(&branches)?;
        Ok(self.push(node(NodeKind::Union { branches })))
    }

    /// Java's `UnionSchema` constructor: no nested unions, no two branches with the same name.
    #[inline(never)]
    fn check_union(&self, branches: &[NodeId]) -> Result<(), SchemaError> {
        let mut seen = HashSet::new();
        for (i, id) in branches.iter().enumerate() {
            let Some(branch) = self.node_ref(*id) else {
                return Err(invalid(self.path(), "internal error: dangling node"));
            };
            let path = || format!("{}/{i}", self.path().trim_end_matches('/'));
            if branch.type_() == Type::Union {
                return Err(invalid(
                    path(),
                    "unions may not immediately contain other unions",
                ));
            }
            let key = branch.java_full_name();
            if !seen.insert(key.clone()) {
                return Err(invalid(path(), format!("duplicate type '{key}' in union")));
            }
        }
        Ok(())
    }

    /// The name and doc of a record, error, enum or fixed (Java's `Name` construction).
    #[inline(never)]
    fn named_header(&self, obj: &Object, ty: &str) -> Result<(Name, Option<String>), SchemaError> {
        let space = obj
            .get("namespace")
            .and_then(Json::as_str)
            .map(str::to_owned)
            .or_else(|| self.space.clone());
        let doc = obj.get("doc").and_then(Json::as_str).map(str::to_owned);
        let Some(raw) = obj.get("name").and_then(Json::as_str) else {
            return Err(invalid(self.path(), format!("{ty} has no \"name\"")));
        };
        let n = make_name(raw, space.as_deref()).map_err(|m| invalid(self.path(), m))?;
        if Type::primitive(&n.full_name()).is_some() {
            return Err(invalid(
                self.path(),
                format!(
                    "schemas may not be named after primitives: {}",
                    n.full_name()
                ),
            ));
        }
        Ok((n, doc))
    }

    fn parse_object(&mut self, obj: &Object) -> Result<NodeId, SchemaError> {
        let Some(ty) = obj.get("type").and_then(Json::as_str) else {
            return Err(self.missing("missing \"type\" (it must be a string naming the type)"));
        };
        let named = matches!(ty, "record" | "error" | "enum" | "fixed");
        let header = if named {
            Some(self.named_header(obj, ty)?)
        } else {
            None
        };
        let saved_space = match &header {
            Some((n, _)) => Some(std::mem::replace(&mut self.space, n.namespace.clone())),
            None => None,
        };
        let result = self.parse_object_kind(obj, ty, header);
        if let Some(saved) = saved_space {
            self.space = saved;
        }
        match result? {
            ObjectResult::Existing(id) => Ok(id),
            ObjectResult::New(id) => {
                self.finish_object(obj, ty, id)?;
                Ok(id)
            }
        }
    }

    /// Properties, logical type and aliases of a newly parsed type.
    #[inline(never)]
    fn finish_object(&mut self, obj: &Object, ty: &str, id: NodeId) -> Result<(), SchemaError> {
        let is_enum = ty == "enum";
        let reserved = |k: &str| SCHEMA_RESERVED.contains(&k) || (is_enum && k == "default");
        let props: Object = obj
            .iter()
            .filter(|(k, _)| !reserved(k))
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect();
        let named = matches!(ty, "record" | "error" | "enum" | "fixed");
        let aliases = if named {
            self.parse_type_aliases(obj, id)?
        } else {
            Vec::new()
        };
        let Some(n) = self.nodes.get_mut(id.0) else {
            return Err(invalid(self.path(), "internal error: dangling node"));
        };
        let lt = logical_type(&n.kind, &props);
        if let Some(LogicalType::Decimal { precision, scale }) = lt
            && precision > self.limits.decimal_precision
        {
            return Err(self.over(
                Limit::DecimalPrecision,
                format!("a decimal of precision {precision} and scale {scale}"),
            ));
        }
        let Some(n) = self.nodes.get_mut(id.0) else {
            return Err(invalid(self.path(), "internal error: dangling node"));
        };
        n.logical_type = lt;
        n.props = props;
        match &mut n.kind {
            NodeKind::Record(r) => r.aliases = aliases,
            NodeKind::Enum(e) => e.aliases = aliases,
            NodeKind::Fixed(f) => f.aliases = aliases,
            _ => {}
        }
        Ok(())
    }

    fn parse_type_aliases(&self, obj: &Object, id: NodeId) -> Result<Vec<Name>, SchemaError> {
        let space = self
            .node_ref(id)
            .and_then(SchemaNode::name)
            .and_then(|n| n.namespace.clone());
        let mut out: Vec<Name> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for alias in self.parse_aliases(obj)? {
            let n = make_name(&alias, space.as_deref()).map_err(|m| {
                invalid(format!("{}/aliases", self.path().trim_end_matches('/')), m)
            })?;
            let full = n.full_name();
            self.check_name_len(&full, "the alias")?;
            if seen.insert(full) {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// Java's `parseAliases`: absent, or an array of strings.
    fn parse_aliases(&self, obj: &Object) -> Result<Vec<String>, SchemaError> {
        let Some(node) = obj.get("aliases") else {
            return Ok(Vec::new());
        };
        let path = || format!("{}/aliases", self.path().trim_end_matches('/'));
        let Some(items) = node.as_array() else {
            return Err(invalid(path(), "\"aliases\" must be an array of strings"));
        };
        let mut out: Vec<String> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for item in items {
            let Some(s) = item.as_str() else {
                return Err(invalid(path(), format!("alias {item} is not a string")));
            };
            self.check_name_len(s, "the alias")?;
            if seen.insert(s) {
                out.push(s.to_owned());
            }
        }
        Ok(out)
    }

    fn parse_object_kind(
        &mut self,
        obj: &Object,
        ty: &str,
        header: Option<(Name, Option<String>)>,
    ) -> Result<ObjectResult, SchemaError> {
        if let Some(t) = Type::primitive(ty) {
            return Ok(ObjectResult::New(self.push(node(primitive_kind(t)))));
        }
        match (ty, header) {
            ("record" | "error", Some((name, doc))) => {
                self.parse_record(obj, ty == "error", name, doc)
            }
            ("enum", Some((name, doc))) => self.parse_enum(obj, name, doc),
            ("fixed", Some((name, doc))) => self.parse_fixed(obj, name, doc),
            ("array", _) => self.parse_container(obj, "items"),
            ("map", _) => self.parse_container(obj, "values"),
            _ => self.parse_type_ref(ty),
        }
    }

    /// `array` (`key` = "items") or `map` (`key` = "values").
    fn parse_container(
        &mut self,
        obj: &Object,
        key: &'static str,
    ) -> Result<ObjectResult, SchemaError> {
        let Some(inner) = obj.get(key) else {
            return Err(self.missing(if key == "items" {
                "array has no \"items\" type"
            } else {
                "map has no \"values\" type"
            }));
        };
        self.path.push(key.to_owned());
        let inner = self.parse(inner);
        self.path.pop();
        let inner = inner?;
        let kind = if key == "items" {
            NodeKind::Array { items: inner }
        } else {
            NodeKind::Map { values: inner }
        };
        Ok(ObjectResult::New(self.push(node(kind))))
    }

    /// Java: `{"type": "Name"}` refers to a named type in the current namespace.
    #[inline(never)]
    fn parse_type_ref(&self, ty: &str) -> Result<ObjectResult, SchemaError> {
        let n = make_name(ty, self.space.as_deref()).map_err(|m| invalid(self.path(), m))?;
        match self.index.get(&n.full_name()) {
            Some(id) => Ok(ObjectResult::Existing(*id)),
            None => Err(SchemaError::UnknownType {
                name: ty.to_owned(),
                path: self.path(),
            }),
        }
    }

    #[inline(never)]
    fn parse_fixed(
        &mut self,
        obj: &Object,
        name: Name,
        doc: Option<String>,
    ) -> Result<ObjectResult, SchemaError> {
        let size = obj
            .get("size")
            .and_then(Json::as_number)
            .and_then(Number::as_i32)
            .ok_or_else(|| invalid(self.path(), "fixed \"size\" must be a non-negative int"))?;
        let size = usize::try_from(size)
            .map_err(|_| invalid(self.path(), format!("invalid fixed size: {size}")))?;
        let id = self.push(node(NodeKind::Fixed(FixedSchema {
            name: name.clone(),
            doc,
            aliases: Vec::new(),
            size,
        })));
        self.register(&name, id)?;
        Ok(ObjectResult::New(id))
    }

    fn parse_enum(
        &mut self,
        obj: &Object,
        name: Name,
        doc: Option<String>,
    ) -> Result<ObjectResult, SchemaError> {
        let Some(raw) = obj.get("symbols").and_then(Json::as_array) else {
            return Err(invalid(self.path(), "enum has no \"symbols\" array"));
        };
        if raw.len() > self.limits.enum_symbols {
            return Err(self.over(
                Limit::EnumSymbols,
                format!("enum '{}' ({} symbols)", name.full_name(), raw.len()),
            ));
        }
        let mut symbols: Vec<String> = Vec::with_capacity(raw.len());
        let mut seen: HashSet<&str> = HashSet::with_capacity(raw.len());
        for (i, s) in raw.iter().enumerate() {
            let path = || format!("{}/symbols/{i}", self.path().trim_end_matches('/'));
            let Some(s) = s.as_str() else {
                return Err(invalid(path(), format!("enum symbol {s} is not a string")));
            };
            self.check_name_len(s, "the enum symbol")?;
            validate_name(s).map_err(|m| invalid(path(), m))?;
            if !seen.insert(s) {
                return Err(invalid(path(), format!("duplicate enum symbol '{s}'")));
            }
            symbols.push(s.to_owned());
        }
        let default = obj.get("default").and_then(Json::as_str).map(str::to_owned);
        if let Some(d) = &default
            && !seen.contains(d.as_str())
        {
            return Err(invalid(
                format!("{}/default", self.path().trim_end_matches('/')),
                format!(
                    "the enum default '{d}' is not in the enum symbols [{}]",
                    symbols_preview(&symbols)
                ),
            ));
        }
        let id = self.push(node(NodeKind::Enum(EnumSchema {
            name: name.clone(),
            doc,
            aliases: Vec::new(),
            symbols,
            default,
        })));
        self.register(&name, id)?;
        Ok(ObjectResult::New(id))
    }

    fn parse_record(
        &mut self,
        obj: &Object,
        is_error: bool,
        name: Name,
        doc: Option<String>,
    ) -> Result<ObjectResult, SchemaError> {
        let id = self.push(node(NodeKind::Record(RecordSchema {
            name: name.clone(),
            doc,
            aliases: Vec::new(),
            fields: Vec::new(),
            is_error,
            index: FieldIndex::default(),
        })));
        self.register(&name, id)?;
        let Some(raw_fields) = obj.get("fields").and_then(Json::as_array) else {
            return Err(invalid(
                self.path(),
                format!("record '{}' has no \"fields\" array", name.full_name()),
            ));
        };
        if raw_fields.len() > self.limits.record_fields {
            return Err(self.over(
                Limit::RecordFields,
                format!(
                    "record '{}' ({} fields)",
                    name.full_name(),
                    raw_fields.len()
                ),
            ));
        }
        self.pending.insert(id);
        let mut fields: Vec<Field> = Vec::with_capacity(raw_fields.len());
        // Field names seen, for records too large to search by scanning.
        let mut names: Option<HashSet<String>> =
            (raw_fields.len() > FieldIndex::SCAN_LIMIT).then(HashSet::new);
        self.path.push("fields".to_owned());
        let mut result = Ok(());
        for (i, raw) in raw_fields.iter().enumerate() {
            self.path.push(i.to_string());
            result = self
                .parse_field(raw)
                .and_then(|f| self.add_field(&mut fields, &mut names, f, &name));
            self.path.pop();
            if result.is_err() {
                break;
            }
        }
        self.path.pop();
        self.pending.remove(&id);
        result?;
        if let Some(SchemaNode {
            kind: NodeKind::Record(r),
            ..
        }) = self.nodes.get_mut(id.0)
        {
            r.index = FieldIndex::of(&fields);
            r.fields = fields;
        }
        Ok(ObjectResult::New(id))
    }

    /// Java's `setFields`: field names are unique.
    #[inline(never)]
    fn add_field(
        &self,
        fields: &mut Vec<Field>,
        names: &mut Option<HashSet<String>>,
        field: Field,
        record: &Name,
    ) -> Result<(), SchemaError> {
        let duplicate = match names {
            Some(names) => !names.insert(field.name.clone()),
            None => fields.iter().any(|f| f.name == field.name),
        };
        if duplicate {
            return Err(invalid(
                self.path(),
                format!(
                    "duplicate field '{}' in record '{}'",
                    field.name,
                    record.full_name()
                ),
            ));
        }
        fields.push(field);
        Ok(())
    }

    fn parse_field(&mut self, raw: &Json) -> Result<Field, SchemaError> {
        let (obj, type_json) = self.field_header(raw)?;
        self.path.push("type".to_owned());
        let schema = self.parse(type_json);
        self.path.pop();
        self.finish_field(obj, schema?)
    }

    /// The field's object and type JSON, checked as Java does before parsing the type.
    #[inline(never)]
    fn field_header<'j>(&self, raw: &'j Json) -> Result<(&'j Object, &'j Json), SchemaError> {
        let Some(obj) = raw.as_object() else {
            return Err(invalid(
                self.path(),
                "field has no \"name\" (it is not an object)",
            ));
        };
        let Some(name) = obj.get("name").and_then(Json::as_str) else {
            return Err(invalid(self.path(), "field has no \"name\""));
        };
        let Some(type_json) = obj.get("type") else {
            return Err(invalid(
                self.path(),
                format!("field '{name}' has no \"type\""),
            ));
        };
        if let Json::String(t) = type_json
            && Type::primitive(t).is_none()
        {
            match self.lookup(t) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(SchemaError::UnknownType {
                        name: t.clone(),
                        path: format!("{}/type", self.path()),
                    });
                }
                Err(m) => return Err(invalid(format!("{}/type", self.path()), m)),
            }
        }
        Ok((obj, type_json))
    }

    /// Everything about a field but its type: order, default, name, properties, aliases.
    #[inline(never)]
    fn finish_field(&self, obj: &Object, schema: NodeId) -> Result<Field, SchemaError> {
        let name = obj.get("name").and_then(Json::as_str).unwrap_or_default();
        let doc = obj.get("doc").and_then(Json::as_str).map(str::to_owned);
        let order = match obj.get("order") {
            None => Order::Ascending,
            Some(o) => match o.as_str().map(str::to_uppercase).as_deref() {
                Some("ASCENDING") => Order::Ascending,
                Some("DESCENDING") => Order::Descending,
                Some("IGNORE") => Order::Ignore,
                _ => {
                    return Err(invalid(
                        format!("{}/order", self.path()),
                        format!(
                            "invalid order {o} for field '{name}' (expected \"ascending\", \"descending\" or \"ignore\")"
                        ),
                    ));
                }
            },
        };
        let mut default = obj.get("default").cloned();
        let field_type = self.type_of(schema);
        if let Some(Json::String(text)) = &default
            && matches!(field_type, Some(Type::Float | Type::Double))
        {
            match json::java_parse_double(text) {
                Some(v) => default = Some(Json::Number(Number::Double(v))),
                None => {
                    return Err(SchemaError::InvalidDefault {
                        field: name.to_owned(),
                        path: self.path(),
                        message: format!("{} is not a number", Json::String(text.clone())),
                    });
                }
            }
        }
        self.check_name_len(name, "the field name")?;
        validate_name(name).map_err(|m| invalid(format!("{}/name", self.path()), m))?;
        if self.options.validate_defaults
            && let Some(d) = &default
            && !self.is_valid_default(schema, d, 0)?
        {
            return Err(SchemaError::InvalidDefault {
                field: name.to_owned(),
                path: self.path(),
                message: format!("{d} is not a {}", self.fragment_preview(schema)),
            });
        }
        let props: Object = obj
            .iter()
            .filter(|(k, _)| !FIELD_RESERVED.contains(k))
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect();
        let aliases = self.parse_aliases(obj)?;
        Ok(Field {
            name: name.to_owned(),
            schema,
            doc,
            default,
            order,
            aliases,
            props,
        })
    }

    /// A short description of a type for error messages.
    fn fragment_preview(&self, id: NodeId) -> String {
        match self.node_ref(id) {
            Some(n) => match n.name() {
                Some(name) => format!("{} '{}'", n.type_().name(), name.full_name()),
                None => format!("{}", n.type_()),
            },
            None => "type".to_owned(),
        }
    }

    /// Java's `Schema.isValidDefault`.
    ///
    /// Where a record default leaves a field out, Java checks that field's own default again;
    /// that default was checked when its field was parsed (defaults are validated whenever this
    /// runs), against the same type, so it is valid: it is not walked again. Walking it would
    /// cost as much as the defaults of every record it nests, which doubles with each level of
    /// records holding two fields of the previous level's type. Every step counts against
    /// [`Limits::work`].
    fn is_valid_default(
        &self,
        id: NodeId,
        value: &Json,
        depth: usize,
    ) -> Result<bool, SchemaError> {
        if depth > MAX_DEFAULT_DEPTH {
            return Err(invalid(self.path(), "default value nested too deeply"));
        }
        if !self.step(1) {
            return Err(self.over(Limit::Work, "validating this field's default".to_owned()));
        }
        let Some(n) = self.node_ref(id) else {
            return Ok(false);
        };
        Ok(match &n.kind {
            NodeKind::String | NodeKind::Bytes | NodeKind::Enum(_) | NodeKind::Fixed(_) => {
                matches!(value, Json::String(_))
            }
            NodeKind::Int => value.as_number().and_then(Number::as_i32).is_some(),
            NodeKind::Long => value.as_number().and_then(Number::as_i64).is_some(),
            NodeKind::Float | NodeKind::Double => matches!(value, Json::Number(_)),
            NodeKind::Boolean => matches!(value, Json::Bool(_)),
            NodeKind::Null => matches!(value, Json::Null),
            NodeKind::Array { items } => match value {
                Json::Array(elems) => {
                    for e in elems {
                        if !self.is_valid_default(*items, e, depth + 1)? {
                            return Ok(false);
                        }
                    }
                    true
                }
                _ => false,
            },
            NodeKind::Map { values } => match value {
                Json::Object(o) => {
                    for (_, v) in o.iter() {
                        if !self.is_valid_default(*values, v, depth + 1)? {
                            return Ok(false);
                        }
                    }
                    true
                }
                _ => false,
            },
            NodeKind::Union { branches } => match branches.first() {
                Some(first) => self.is_valid_default(*first, value, depth + 1)?,
                None => false,
            },
            NodeKind::Record(r) => {
                if self.pending.contains(&id) {
                    return Err(invalid(
                        self.path(),
                        format!(
                            "a default value of type '{}' can't be checked while that record is still being defined (Java: \"Schema fields not set yet\")",
                            r.name.full_name()
                        ),
                    ));
                }
                let Json::Object(o) = value else {
                    return Ok(false);
                };
                // (field type, value given) for each field the default sets; a field it leaves
                // out needs a default of its own, valid already (see above).
                let mut given: Vec<(NodeId, &Json)> = Vec::new();
                for f in &r.fields {
                    match o.get(&f.name) {
                        Some(v) => given.push((f.schema, v)),
                        None if f.default.is_some() => {}
                        None => return Ok(false),
                    }
                }
                if !self.step(u64::try_from(r.fields.len()).unwrap_or(u64::MAX)) {
                    return Err(
                        self.over(Limit::Work, "validating this field's default".to_owned())
                    );
                }
                for (schema, v) in given {
                    if !self.is_valid_default(schema, v, depth + 1)? {
                        return Ok(false);
                    }
                }
                true
            }
        })
    }
}

enum ObjectResult {
    New(NodeId),
    Existing(NodeId),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_validate_like_java() {
        assert!(validate_name("_a1").is_ok());
        assert!(validate_name("été").is_ok());
        assert!(validate_name("1a").is_err());
        assert!(validate_name("a-b").is_err());
        assert!(validate_name("").is_err());
        assert_eq!(
            make_name("a.b.C", Some("x")).map(|n| n.full_name()),
            Ok("a.b.C".to_owned())
        );
        assert_eq!(
            make_name(".C", Some("x")).map(|n| n.full_name()),
            Ok("C".to_owned())
        );
        assert_eq!(
            make_name("C", Some("")).map(|n| n.full_name()),
            Ok("C".to_owned())
        );
        assert!(make_name("a.", None).is_err());
    }

    #[test]
    fn decimal_precision_limit() {
        assert_eq!(max_decimal_precision(1), 2);
        assert_eq!(max_decimal_precision(2), 4);
        assert_eq!(max_decimal_precision(16), 38);
        assert_eq!(max_decimal_precision(0), 0);
    }
}
