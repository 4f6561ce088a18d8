//! The schema graph compatibility checks walk: each schema read as Confluent's registry reads
//! it with the everit loader (`org.everit.json.schema.loader.SchemaLoader` 1.14, its schema
//! extractors in `SchemaExtractor.java`), so that Confluent's diff rules apply unchanged.
//!
//! How a schema object becomes a node (everit's `loadSchemaObject`):
//! - drafts 4 to 7: a `$ref` replaces its siblings: the node is a reference to its target;
//! - otherwise the extractors run in order, each on the keywords the ones before left: `enum`;
//!   `allOf`, `anyOf`, `oneOf` (one combined schema each); `not`; `const` (not in draft 4);
//!   `type` (one schema for the type, with the keywords of that type; a list of types is an
//!   `anyOf` of one schema per type); then the keywords left are sniffed: array keywords make an
//!   array schema, object keywords an object schema, number keywords a number schema, string
//!   keywords a string schema, `if`/`then`/`else` a conditional schema (draft 7 on). From
//!   2019-09 on, `$ref` (and `$dynamicRef`, `$recursiveRef`) is one more extractor, first;
//! - no schema extracted is the empty schema, one is that schema, several are a synthetic
//!   `allOf` of them; `true` and `false` are the true and false schemas.
//!
//! 2019-09 and 2020-12 keywords map to everit's model as Confluent's translator does for the
//! common cases: `prefixItems` are the tuple item schemas and `items` beside them the schema of
//! additional items, `items` alone the schema of all items (a boolean `items` permits or forbids
//! additional items), `$defs` define, `dependentRequired` and `dependentSchemas` are property and
//! schema dependencies. `$dynamicRef` resolves statically, like `$ref`.
//!
//! References resolve against the documents given (the schema and its dependencies, each under
//! its URI), by `$id` (`id` in draft 4), anchors (`$anchor`, `$dynamicAnchor`, and `$id: "#name"`
//! before 2019-09) and JSON pointers. Nodes are shared per schema location and reference targets
//! are loaded from a work list, so recursive schemas make a finite graph and the loader recurses
//! no deeper than the JSON nesting (at most [`crate::Budgets::MAX_DEPTH`]).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::schema::{Draft, SchemaError};
use crate::uri;

/// One parsed document: the schema (first) or one of its dependencies.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    /// `schema`, or the dependency's reference name.
    pub name: String,
    /// Its absolute URI (before its own `$id`, if any, applies).
    pub base: String,
    pub draft: Draft,
    pub value: Value,
}

pub(crate) type NodeId = usize;

/// The graph of one schema and the parts of its dependencies it uses.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    nodes: Vec<Node>,
}

impl Model {
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The root schema's node.
    pub(crate) fn root(&self) -> NodeId {
        0
    }

    pub(crate) fn node(&self, id: NodeId) -> &Node {
        // Every id the model hands out is one of its nodes; an unknown one reads as `{}`.
        self.nodes.get(id).unwrap_or(&EMPTY)
    }

    /// The node a reference (or chain of references) ends at.
    pub(crate) fn deref(&self, mut id: NodeId) -> NodeId {
        for _ in 0..self.nodes.len().saturating_add(1) {
            match self.node(id).kind {
                Kind::Reference(target) if target != id => id = target,
                _ => return id,
            }
        }
        id
    }
}

static EMPTY: Node = Node {
    common: Common {
        id: None,
        title: None,
        description: None,
        default: None,
        fingerprint: None,
    },
    kind: Kind::Empty,
};

/// One schema.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub common: Common,
    pub kind: Kind,
}

/// What every everit schema has (and Confluent's diff compares).
#[derive(Debug, Clone, Default)]
pub(crate) struct Common {
    pub id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub default: Option<Value>,
    /// For the members of `allOf`/`anyOf`/`oneOf`: their JSON with sorted keys, by which
    /// Confluent collapses duplicate members.
    pub fingerprint: Option<String>,
}

/// everit's schema classes.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// `true`.
    True,
    /// `{}` (or only annotations).
    Empty,
    /// `false`.
    False,
    Boolean,
    Null,
    String(StringKind),
    Number(NumberKind),
    Enum(Vec<Value>),
    Const(Value),
    Combined {
        criterion: Criterion,
        subschemas: Vec<NodeId>,
    },
    Not(NodeId),
    Object(Box<ObjectKind>),
    Array(Box<ArrayKind>),
    Reference(NodeId),
    Conditional,
}

impl Kind {
    /// everit's class, by which Confluent's diff decides a type changed.
    pub(crate) fn class(&self) -> &'static str {
        match self {
            Kind::True => "TrueSchema",
            Kind::Empty => "EmptySchema",
            Kind::False => "FalseSchema",
            Kind::Boolean => "BooleanSchema",
            Kind::Null => "NullSchema",
            Kind::String(_) => "StringSchema",
            Kind::Number(_) => "NumberSchema",
            Kind::Enum(_) => "EnumSchema",
            Kind::Const(_) => "ConstSchema",
            Kind::Combined { .. } => "CombinedSchema",
            Kind::Not(_) => "NotSchema",
            Kind::Object(_) => "ObjectSchema",
            Kind::Array(_) => "ArraySchema",
            Kind::Reference(_) => "ReferenceSchema",
            Kind::Conditional => "ConditionalSchema",
        }
    }
}

/// A combined schema's criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Criterion {
    All,
    Any,
    One,
}

impl Criterion {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Criterion::All => "allOf",
            Criterion::Any => "anyOf",
            Criterion::One => "oneOf",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct StringKind {
    pub min_length: Option<f64>,
    pub max_length: Option<f64>,
    pub pattern: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct NumberKind {
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub exclusive_minimum: Option<f64>,
    pub exclusive_maximum: Option<f64>,
    pub multiple_of: Option<serde_json::Number>,
    pub requires_integer: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ObjectKind {
    pub properties: Vec<(String, NodeId)>,
    pub required: Vec<String>,
    pub permits_additional: bool,
    pub additional: Option<NodeId>,
    pub pattern_properties: Vec<(String, NodeId)>,
    pub property_dependencies: Vec<(String, Vec<String>)>,
    pub schema_dependencies: Vec<(String, NodeId)>,
    pub min_properties: Option<f64>,
    pub max_properties: Option<f64>,
}

impl ObjectKind {
    pub(crate) fn property(&self, name: &str) -> Option<NodeId> {
        self.properties
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, id)| *id)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ArrayKind {
    pub all_items: Option<NodeId>,
    pub item_schemas: Vec<NodeId>,
    pub permits_additional: bool,
    pub additional: Option<NodeId>,
    pub unevaluated: Option<NodeId>,
    pub min_items: Option<f64>,
    pub max_items: Option<f64>,
    pub unique_items: bool,
    pub min_contains: Option<f64>,
    pub max_contains: Option<f64>,
}

/// Keywords that make an array schema when sniffed (everit's `V6_ARRAY_KEYWORDS`, and the
/// 2019-09/2020-12 ones).
fn array_keywords(draft: Draft) -> &'static [&'static str] {
    match draft {
        Draft::Draft4 => &[
            "items",
            "additionalItems",
            "minItems",
            "maxItems",
            "uniqueItems",
        ],
        Draft::Draft6 | Draft::Draft7 => &[
            "items",
            "additionalItems",
            "minItems",
            "maxItems",
            "uniqueItems",
            "contains",
        ],
        Draft::Draft201909 | Draft::Draft202012 => &[
            "items",
            "prefixItems",
            "additionalItems",
            "minItems",
            "maxItems",
            "uniqueItems",
            "contains",
            "minContains",
            "maxContains",
            "unevaluatedItems",
        ],
    }
}

/// Keywords that make an object schema when sniffed.
fn object_keywords(draft: Draft) -> &'static [&'static str] {
    match draft {
        Draft::Draft4 => &[
            "properties",
            "required",
            "minProperties",
            "maxProperties",
            "dependencies",
            "patternProperties",
            "additionalProperties",
        ],
        Draft::Draft6 | Draft::Draft7 => &[
            "properties",
            "required",
            "minProperties",
            "maxProperties",
            "dependencies",
            "patternProperties",
            "additionalProperties",
            "propertyNames",
        ],
        Draft::Draft201909 | Draft::Draft202012 => &[
            "properties",
            "required",
            "minProperties",
            "maxProperties",
            "dependentRequired",
            "dependentSchemas",
            "dependencies",
            "patternProperties",
            "additionalProperties",
            "propertyNames",
            "unevaluatedProperties",
        ],
    }
}

const NUMBER_KEYWORDS: &[&str] = &[
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
];
const STRING_KEYWORDS: &[&str] = &["minLength", "maxLength", "pattern", "format"];
const CONDITIONAL_KEYWORDS: &[&str] = &["if", "then", "else"];

/// How a keyword holds subschemas.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holds {
    One,
    List,
    Named,
    /// `items`: one schema, or a list (a tuple).
    OneOrList,
}

fn holds(draft: Draft, keyword: &str) -> Option<Holds> {
    let modern = matches!(draft, Draft::Draft201909 | Draft::Draft202012);
    Some(match keyword {
        "additionalItems" | "additionalProperties" | "not" => Holds::One,
        "contains" | "propertyNames" if draft != Draft::Draft4 => Holds::One,
        "if" | "then" | "else" if !matches!(draft, Draft::Draft4 | Draft::Draft6) => Holds::One,
        "unevaluatedItems" | "unevaluatedProperties" | "contentSchema" if modern => Holds::One,
        "items" if draft == Draft::Draft202012 => Holds::One,
        "items" => Holds::OneOrList,
        "allOf" | "anyOf" | "oneOf" => Holds::List,
        "prefixItems" if draft == Draft::Draft202012 => Holds::List,
        "properties" | "patternProperties" | "definitions" | "$defs" | "dependencies" => {
            Holds::Named
        }
        "dependentSchemas" if modern => Holds::Named,
        _ => return None,
    })
}

/// The subschemas directly under a schema object, with their pointer suffixes.
fn children(draft: Draft, map: &Map<String, Value>) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (keyword, value) in map {
        let Some(kind) = holds(draft, keyword) else {
            continue;
        };
        let key = escape(keyword);
        match (kind, value) {
            (Holds::One | Holds::OneOrList, Value::Object(_) | Value::Bool(_)) => {
                out.push((format!("/{key}"), value));
            }
            (Holds::List | Holds::OneOrList, Value::Array(items)) => {
                for (index, item) in items.iter().enumerate() {
                    if item.is_object() || item.is_boolean() {
                        out.push((format!("/{key}/{index}"), item));
                    }
                }
            }
            (Holds::Named, Value::Object(named)) => {
                for (name, item) in named {
                    if item.is_object() || item.is_boolean() {
                        out.push((format!("/{key}/{}", escape(name)), item));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// A JSON pointer token.
pub(crate) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Follows a JSON pointer (`""` or `/a/0/b`) from `value`.
fn navigate<'v>(value: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() {
        return Some(value);
    }
    value.pointer(pointer)
}

/// Where a schema is.
type Location = (usize, String);

/// What the indexing of the documents found.
#[derive(Default)]
struct Index {
    /// Absolute URI (no fragment) -> the resource's root.
    resources: HashMap<String, Location>,
    /// (resource URI, anchor name) -> the anchored schema.
    anchors: HashMap<(String, String), Location>,
    /// Schema locations with an `$id`: the base URI from there down.
    bases: HashMap<Location, String>,
    /// Every `$ref`-like keyword: where, the base it resolves against, and the reference.
    references: Vec<(Location, String, String)>,
}

/// Builds the graph of `documents[0]` (with the other documents as resources).
pub(crate) fn build(documents: &[Document]) -> Result<Model, SchemaError> {
    let index = index(documents);
    let mut builder = Builder {
        documents,
        index,
        nodes: Vec::new(),
        at: HashMap::new(),
        filled: Vec::new(),
        pending: Vec::new(),
    };
    // Every reference in every document must resolve, whether the root uses it or not.
    let references = std::mem::take(&mut builder.index.references);
    for ((document, pointer), base, reference) in &references {
        builder.resolve(*document, pointer, base, reference)?;
    }
    let root_value = documents
        .first()
        .map(|document| &document.value)
        .ok_or_else(|| SchemaError::Invalid("no schema".to_owned()))?;
    builder.load(0, String::new(), root_value, None)?;
    while let Some((document, pointer)) = builder.pending.pop() {
        let value = builder
            .documents
            .get(document)
            .and_then(|d| navigate(&d.value, &pointer))
            .ok_or_else(|| SchemaError::Invalid(format!("no schema at '{pointer}'")))?;
        builder.load(document, pointer, value, None)?;
    }
    Ok(Model {
        nodes: builder.nodes,
    })
}

/// Registers every document's resources, anchors and references, walking schema positions
/// without recursion.
fn index(documents: &[Document]) -> Index {
    let mut index = Index::default();
    for (number, document) in documents.iter().enumerate() {
        index
            .resources
            .entry(document.base.clone())
            .or_insert((number, String::new()));
        let draft = document.draft;
        let mut stack: Vec<(String, &Value, String)> =
            vec![(String::new(), &document.value, document.base.clone())];
        while let Some((pointer, value, base)) = stack.pop() {
            let Value::Object(map) = value else {
                continue;
            };
            let mut base = base;
            if let Some(Value::String(id)) = map.get(draft.id_keyword()) {
                if let Some(anchor) = id.strip_prefix('#') {
                    if !anchor.is_empty() && !anchor.starts_with('/') {
                        index
                            .anchors
                            .entry((base.clone(), anchor.to_owned()))
                            .or_insert((number, pointer.clone()));
                    }
                } else {
                    let resolved = uri::resolve(&base, id);
                    let (resource, fragment) = uri::split_fragment(&resolved);
                    base = resource.to_owned();
                    index
                        .resources
                        .entry(base.clone())
                        .or_insert((number, pointer.clone()));
                    if !fragment.is_empty() && !fragment.starts_with('/') {
                        index
                            .anchors
                            .entry((base.clone(), fragment.to_owned()))
                            .or_insert((number, pointer.clone()));
                    }
                    index.bases.insert((number, pointer.clone()), base.clone());
                }
            }
            for keyword in ["$anchor", "$dynamicAnchor"] {
                if let Some(Value::String(anchor)) = map.get(keyword)
                    && matches!(draft, Draft::Draft201909 | Draft::Draft202012)
                {
                    index
                        .anchors
                        .entry((base.clone(), anchor.clone()))
                        .or_insert((number, pointer.clone()));
                }
            }
            for keyword in reference_keywords(draft) {
                if let Some(Value::String(reference)) = map.get(*keyword) {
                    index.references.push((
                        (number, pointer.clone()),
                        base.clone(),
                        reference.clone(),
                    ));
                }
            }
            for (suffix, child) in children(draft, map) {
                stack.push((format!("{pointer}{suffix}"), child, base.clone()));
            }
        }
    }
    index
}

fn reference_keywords(draft: Draft) -> &'static [&'static str] {
    match draft {
        Draft::Draft201909 => &["$ref", "$recursiveRef"],
        Draft::Draft202012 => &["$ref", "$dynamicRef"],
        _ => &["$ref"],
    }
}

struct Builder<'d> {
    documents: &'d [Document],
    index: Index,
    nodes: Vec<Node>,
    /// Schema location -> its node.
    at: HashMap<Location, NodeId>,
    filled: Vec<bool>,
    /// Reference targets reserved but not loaded yet.
    pending: Vec<Location>,
}

impl Builder<'_> {
    fn draft(&self, document: usize) -> Draft {
        self.documents
            .get(document)
            .map_or(Draft::Draft7, |d| d.draft)
    }

    fn location_text(&self, document: usize, pointer: &str) -> String {
        match self.documents.get(document) {
            Some(d) if document != 0 => format!("{}#{pointer}", d.name),
            _ => format!("#{pointer}"),
        }
    }

    /// The base URI at a schema location: the one set by the nearest `$id` above it.
    fn base_at(&self, document: usize, pointer: &str) -> String {
        let mut prefix = pointer;
        loop {
            if let Some(base) = self.index.bases.get(&(document, prefix.to_owned())) {
                return base.clone();
            }
            match prefix.rfind('/') {
                Some(slash) => prefix = prefix.get(..slash).unwrap_or_default(),
                None => break,
            }
        }
        self.documents
            .get(document)
            .map(|d| d.base.clone())
            .unwrap_or_default()
    }

    /// The location a reference names.
    fn resolve(
        &self,
        document: usize,
        pointer: &str,
        base: &str,
        reference: &str,
    ) -> Result<Location, SchemaError> {
        let failed = |reason: String| SchemaError::UnresolvedReference {
            reference: crate::schema::prefix(reference, 256).to_owned(),
            location: self.location_text(document, pointer),
            reason,
        };
        let absolute = uri::resolve(base, reference);
        let (resource, fragment) = uri::split_fragment(&absolute);
        let Some((target_document, root)) = self.index.resources.get(resource) else {
            let name = uri::split_fragment(reference).0;
            let remote = matches!(
                uri::scheme(reference).as_deref(),
                Some("http" | "https" | "file" | "ftp")
            );
            return Err(failed(if remote {
                "the registry resolves references only from the schema's references, by name, and never fetches URLs or files".to_owned()
            } else {
                format!(
                    "no reference is named '{name}': give it as a reference (name '{name}', with the subject and version that hold it)"
                )
            }));
        };
        let target = if fragment.is_empty() {
            (*target_document, root.clone())
        } else if fragment.starts_with('/') {
            (
                *target_document,
                format!("{root}{}", uri::percent_decode(fragment)),
            )
        } else {
            let anchor = uri::percent_decode(fragment);
            self.index
                .anchors
                .get(&(resource.to_owned(), anchor.clone()))
                .cloned()
                .ok_or_else(|| failed(format!("there is no anchor '{anchor}' in '{resource}'")))?
        };
        let found = self
            .documents
            .get(target.0)
            .and_then(|d| navigate(&d.value, &target.1));
        match found {
            Some(Value::Object(_) | Value::Bool(_)) => Ok(target),
            Some(_) => Err(failed(format!(
                "'{}' is not a schema",
                self.location_text(target.0, &target.1)
            ))),
            None => Err(failed(format!(
                "there is nothing at '{}'",
                self.location_text(target.0, &target.1)
            ))),
        }
    }

    /// The node of a schema location, reserved if new.
    fn reserve(&mut self, location: Location) -> (NodeId, bool) {
        if let Some(id) = self.at.get(&location) {
            return (*id, false);
        }
        let id = self.push(Node {
            common: Common::default(),
            kind: Kind::Empty,
        });
        self.at.insert(location, id);
        (id, true)
    }

    fn push(&mut self, node: Node) -> NodeId {
        let id = self.nodes.len();
        self.nodes.push(node);
        self.filled.push(true);
        id
    }

    /// The node of a reference target: reserved, and queued for loading if new.
    fn target(&mut self, location: Location) -> NodeId {
        let (id, fresh) = self.reserve(location.clone());
        if fresh {
            if let Some(filled) = self.filled.get_mut(id) {
                *filled = false;
            }
            self.pending.push(location);
        }
        id
    }

    /// Loads the schema at a location (recursing into its subschemas, not into references).
    fn load(
        &mut self,
        document: usize,
        pointer: String,
        value: &Value,
        fingerprint: Option<String>,
    ) -> Result<NodeId, SchemaError> {
        let location = (document, pointer.clone());
        let (id, fresh) = self.reserve(location);
        if !fresh && self.filled.get(id).copied().unwrap_or(true) {
            return Ok(id);
        }
        if let Some(filled) = self.filled.get_mut(id) {
            *filled = true;
        }
        let node = match value {
            Value::Bool(true) => Node {
                common: Common::default(),
                kind: Kind::True,
            },
            Value::Bool(false) => Node {
                common: Common::default(),
                kind: Kind::False,
            },
            Value::Object(map) => self.load_object(document, &pointer, map)?,
            _ => Node {
                common: Common::default(),
                kind: Kind::Empty,
            },
        };
        if let Some(slot) = self.nodes.get_mut(id) {
            *slot = node;
            slot.common.fingerprint = fingerprint;
        }
        Ok(id)
    }

    fn child(
        &mut self,
        document: usize,
        pointer: &str,
        suffix: &str,
        value: &Value,
    ) -> Result<NodeId, SchemaError> {
        self.load(document, format!("{pointer}{suffix}"), value, None)
    }

    fn load_object(
        &mut self,
        document: usize,
        pointer: &str,
        map: &Map<String, Value>,
    ) -> Result<Node, SchemaError> {
        let draft = self.draft(document);
        let mut common = Common::default();
        if let Some(Value::String(id)) = map.get(draft.id_keyword()) {
            common.id = Some(id.clone());
        }
        if let Some(Value::String(title)) = map.get("title") {
            common.title = Some(title.clone());
        }
        if let Some(Value::String(description)) = map.get("description") {
            common.description = Some(description.clone());
        }
        common.default = map.get("default").cloned();

        let mut extracted: Vec<Kind> = Vec::new();
        let mut consumed: HashSet<&str> = HashSet::new();
        for keyword in reference_keywords(draft) {
            if let Some(Value::String(reference)) = map.get(*keyword) {
                let base = self.base_at(document, pointer);
                let target = self.resolve(document, pointer, &base, reference)?;
                let target = self.target(target);
                if !draft.ref_is_applicator() {
                    return Ok(Node {
                        common,
                        kind: Kind::Reference(target),
                    });
                }
                extracted.push(Kind::Reference(target));
            }
        }
        if let Some(Value::Array(values)) = map.get("enum") {
            extracted.push(Kind::Enum(values.clone()));
        }
        for (keyword, criterion) in [
            ("allOf", Criterion::All),
            ("anyOf", Criterion::Any),
            ("oneOf", Criterion::One),
        ] {
            if let Some(Value::Array(items)) = map.get(keyword) {
                let mut subschemas = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    let fingerprint = crate::normalize::normalized_string(item);
                    subschemas.push(self.load(
                        document,
                        format!("{pointer}/{keyword}/{index}"),
                        item,
                        Some(fingerprint),
                    )?);
                }
                extracted.push(Kind::Combined {
                    criterion,
                    subschemas,
                });
            }
        }
        if let Some(not) = map.get("not") {
            let inner = self.child(document, pointer, "/not", not)?;
            extracted.push(Kind::Not(inner));
        }
        if draft != Draft::Draft4
            && let Some(value) = map.get("const")
        {
            extracted.push(Kind::Const(value.clone()));
        }
        match map.get("type") {
            Some(Value::String(name)) => {
                if let Some(kind) = self.typed(document, pointer, map, name, &mut consumed)? {
                    extracted.push(kind);
                }
            }
            Some(Value::Array(names)) => {
                let mut subschemas = Vec::with_capacity(names.len());
                for name in names.iter().filter_map(Value::as_str) {
                    if let Some(kind) = self.typed(document, pointer, map, name, &mut consumed)? {
                        subschemas.push(self.push(Node {
                            common: Common::default(),
                            kind,
                        }));
                    }
                }
                extracted.push(Kind::Combined {
                    criterion: Criterion::Any,
                    subschemas,
                });
            }
            _ => {}
        }
        let left = |keywords: &[&str], consumed: &HashSet<&str>| {
            keywords
                .iter()
                .any(|keyword| map.contains_key(*keyword) && !consumed.contains(keyword))
        };
        if left(array_keywords(draft), &consumed) {
            extracted.push(Kind::Array(Box::new(self.array(document, pointer, map)?)));
        }
        if left(object_keywords(draft), &consumed) {
            extracted.push(Kind::Object(Box::new(self.object(document, pointer, map)?)));
        }
        if left(NUMBER_KEYWORDS, &consumed) {
            extracted.push(Kind::Number(number(map, draft, false)));
        }
        if left(STRING_KEYWORDS, &consumed) {
            extracted.push(Kind::String(string(map)));
        }
        if !matches!(draft, Draft::Draft4 | Draft::Draft6) && left(CONDITIONAL_KEYWORDS, &consumed)
        {
            for keyword in CONDITIONAL_KEYWORDS {
                if let Some(value) = map.get(*keyword) {
                    self.child(document, pointer, &format!("/{keyword}"), value)?;
                }
            }
            extracted.push(Kind::Conditional);
        }
        let kind = match extracted.len() {
            0 => Kind::Empty,
            1 => extracted.pop().unwrap_or(Kind::Empty),
            _ => {
                let subschemas = extracted
                    .into_iter()
                    .map(|kind| {
                        self.push(Node {
                            common: Common::default(),
                            kind,
                        })
                    })
                    .collect();
                Kind::Combined {
                    criterion: Criterion::All,
                    subschemas,
                }
            }
        };
        Ok(Node { common, kind })
    }

    /// The schema of an explicit `type`, consuming that type's keywords.
    fn typed<'m>(
        &mut self,
        document: usize,
        pointer: &str,
        map: &'m Map<String, Value>,
        name: &str,
        consumed: &mut HashSet<&'m str>,
    ) -> Result<Option<Kind>, SchemaError> {
        let draft = self.draft(document);
        let mut consume = |keywords: &[&str]| {
            for keyword in keywords {
                if let Some((key, _)) = map.get_key_value(*keyword) {
                    consumed.insert(key.as_str());
                }
            }
        };
        Ok(Some(match name {
            "string" => {
                consume(STRING_KEYWORDS);
                Kind::String(string(map))
            }
            "integer" | "number" => {
                consume(NUMBER_KEYWORDS);
                Kind::Number(number(map, draft, name == "integer"))
            }
            "boolean" => Kind::Boolean,
            "null" => Kind::Null,
            "array" => {
                consume(array_keywords(draft));
                Kind::Array(Box::new(self.array(document, pointer, map)?))
            }
            "object" => {
                consume(object_keywords(draft));
                Kind::Object(Box::new(self.object(document, pointer, map)?))
            }
            _ => return Ok(None),
        }))
    }

    fn object(
        &mut self,
        document: usize,
        pointer: &str,
        map: &Map<String, Value>,
    ) -> Result<ObjectKind, SchemaError> {
        let mut object = ObjectKind {
            permits_additional: true,
            min_properties: map.get("minProperties").and_then(Value::as_f64),
            max_properties: map.get("maxProperties").and_then(Value::as_f64),
            ..ObjectKind::default()
        };
        if let Some(Value::Object(properties)) = map.get("properties") {
            for (name, value) in properties {
                let id = self.child(
                    document,
                    pointer,
                    &format!("/properties/{}", escape(name)),
                    value,
                )?;
                object.properties.push((name.clone(), id));
            }
        }
        match map.get("additionalProperties") {
            Some(Value::Bool(permits)) => object.permits_additional = *permits,
            Some(value @ Value::Object(_)) => {
                object.additional =
                    Some(self.child(document, pointer, "/additionalProperties", value)?);
            }
            _ => {}
        }
        if let Some(Value::Array(required)) = map.get("required") {
            object.required = required
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
        }
        if let Some(Value::Object(patterns)) = map.get("patternProperties") {
            for (pattern, value) in patterns {
                let id = self.child(
                    document,
                    pointer,
                    &format!("/patternProperties/{}", escape(pattern)),
                    value,
                )?;
                object.pattern_properties.push((pattern.clone(), id));
            }
        }
        for keyword in ["dependencies", "dependentRequired", "dependentSchemas"] {
            let Some(Value::Object(dependencies)) = map.get(keyword) else {
                continue;
            };
            for (name, value) in dependencies {
                match value {
                    Value::Array(names) => object.property_dependencies.push((
                        name.clone(),
                        names
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect(),
                    )),
                    Value::Object(_) | Value::Bool(_) => {
                        let id = self.child(
                            document,
                            pointer,
                            &format!("/{keyword}/{}", escape(name)),
                            value,
                        )?;
                        object.schema_dependencies.push((name.clone(), id));
                    }
                    _ => {}
                }
            }
        }
        Ok(object)
    }

    fn array(
        &mut self,
        document: usize,
        pointer: &str,
        map: &Map<String, Value>,
    ) -> Result<ArrayKind, SchemaError> {
        let draft = self.draft(document);
        let mut array = ArrayKind {
            permits_additional: true,
            min_items: map.get("minItems").and_then(Value::as_f64),
            max_items: map.get("maxItems").and_then(Value::as_f64),
            unique_items: map.get("uniqueItems") == Some(&Value::Bool(true)),
            min_contains: map.get("minContains").and_then(Value::as_f64),
            max_contains: map.get("maxContains").and_then(Value::as_f64),
            ..ArrayKind::default()
        };
        let (tuple_keyword, rest_keyword) = if draft == Draft::Draft202012 {
            ("prefixItems", "items")
        } else {
            ("items", "additionalItems")
        };
        let tuple = match map.get(tuple_keyword) {
            Some(Value::Array(items)) => Some(items),
            _ => None,
        };
        if let Some(items) = tuple {
            for (index, item) in items.iter().enumerate() {
                let id = self.child(
                    document,
                    pointer,
                    &format!("/{tuple_keyword}/{index}"),
                    item,
                )?;
                array.item_schemas.push(id);
            }
        } else if draft != Draft::Draft202012
            && let Some(value @ (Value::Object(_) | Value::Bool(_))) = map.get("items")
        {
            array.all_items = Some(self.child(document, pointer, "/items", value)?);
        }
        match map.get(rest_keyword) {
            Some(Value::Bool(permits)) => array.permits_additional = *permits,
            Some(value @ Value::Object(_)) => {
                if draft == Draft::Draft202012 && tuple.is_none() {
                    array.all_items = Some(self.child(document, pointer, "/items", value)?);
                } else {
                    array.additional =
                        Some(self.child(document, pointer, &format!("/{rest_keyword}"), value)?);
                }
            }
            _ => {}
        }
        if let Some(value) = map.get("unevaluatedItems")
            && matches!(draft, Draft::Draft201909 | Draft::Draft202012)
        {
            array.unevaluated = Some(self.child(document, pointer, "/unevaluatedItems", value)?);
        }
        if let Some(value @ (Value::Object(_) | Value::Bool(_))) = map.get("contains") {
            self.child(document, pointer, "/contains", value)?;
        }
        Ok(array)
    }
}

fn string(map: &Map<String, Value>) -> StringKind {
    StringKind {
        min_length: map.get("minLength").and_then(Value::as_f64),
        max_length: map.get("maxLength").and_then(Value::as_f64),
        pattern: map
            .get("pattern")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

fn number(map: &Map<String, Value>, draft: Draft, requires_integer: bool) -> NumberKind {
    let limit = |keyword: &str| map.get(keyword).and_then(Value::as_f64);
    // Draft 4: `exclusiveMinimum: true` makes `minimum` exclusive (everit keeps the limit in
    // `minimum` and a flag Confluent's diff does not compare); later drafts give the limit.
    let exclusive = |keyword: &str| {
        if draft == Draft::Draft4 {
            None
        } else {
            limit(keyword)
        }
    };
    NumberKind {
        minimum: limit("minimum"),
        maximum: limit("maximum"),
        exclusive_minimum: exclusive("exclusiveMinimum"),
        exclusive_maximum: exclusive("exclusiveMaximum"),
        multiple_of: match map.get("multipleOf") {
            Some(Value::Number(number)) => Some(number.clone()),
            _ => None,
        },
        requires_integer,
    }
}
