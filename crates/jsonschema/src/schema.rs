//! Parsing a JSON Schema: its text within [`Budgets`], its draft, its meta-schema, its
//! references (by name, from the schema's dependencies only) and its compiled validator.
//!
//! Guarantees:
//! - Bounded parsing. The size is checked first; then the bracket nesting of the text, outside
//!   strings, against [`Budgets::depth`] (at most [`Budgets::MAX_DEPTH`]) before serde_json
//!   (whose own recursion limit is 128) builds anything; then, walking the parsed value without
//!   recursion, its values against [`Budgets::nodes`], the properties of each schema against
//!   [`Budgets::properties`], `enum` values against [`Budgets::enum_values`] and property and
//!   definition names against [`Budgets::name_bytes`]. A dependency (a schema accepted before) is
//!   held to the nesting ceiling only, as the Protobuf crate holds its imports.
//! - No I/O. A `$ref` resolves against the schema itself or its dependencies, by the name each
//!   was registered under (resolved against the schema's `$id`, as Confluent's loader does);
//!   anything else (`http:`, `https:`, `file:`, a name no dependency has) is refused, naming the
//!   reference and where it is. The validator (the `jsonschema` crate, built without its HTTP
//!   and file retrievers) is given exactly those resources.
//! - Termination. Recursive schemas (`{"$ref": "#"}`, a tree, a cycle between two
//!   dependencies) are legal: the compatibility model shares one node per schema location and
//!   follows references from a work list, and the validator's work is bounded by the data.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::model::{self, Document, Model};
use crate::uri;

/// The base URI of a schema without `$id` (the one the `jsonschema` crate uses): a reference
/// name `other.json` resolves to `json-schema:///other.json`.
pub const DEFAULT_BASE_URI: &str = "json-schema:///";

/// How many issues [`JsonSchema::validate`] lists at most.
pub const MAX_ISSUES: usize = 100;

/// The most text of one error or issue message (a message may quote the value it is about).
const MAX_MESSAGE_BYTES: usize = 512;

/// What one schema may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// Bytes of one schema text (each dependency is checked on its own).
    pub schema_bytes: usize,
    /// Levels of JSON nesting (`{` and `[`) in a text. At most [`Budgets::MAX_DEPTH`].
    pub depth: usize,
    /// Entries of one schema's `properties`.
    pub properties: usize,
    /// Values of one `enum`.
    pub enum_values: usize,
    /// JSON values of one schema text (objects, arrays, strings, numbers, ...).
    pub nodes: usize,
    /// Bytes of one property, pattern-property, dependency or definition name.
    pub name_bytes: usize,
}

impl Budgets {
    /// The deepest nesting accepted: well within serde_json's recursion limit (128), and what
    /// the recursive parts of the compatibility model take on a 2 MiB stack.
    pub const MAX_DEPTH: usize = 64;

    /// The services' schema budgets (the `--max-*` flags they share with Avro): properties per
    /// schema are fields per record, `enum` values enum symbols, JSON values ten per named type,
    /// names name bytes; the nesting is the Avro schema depth, within [`Budgets::MAX_DEPTH`].
    pub fn from_limits(limits: &tributary_avro::Limits) -> Budgets {
        Budgets {
            schema_bytes: limits.schema_bytes,
            depth: limits.schema_depth.min(Self::MAX_DEPTH),
            properties: limits.record_fields,
            enum_values: limits.enum_symbols,
            nodes: limits.named_types.saturating_mul(10),
            name_bytes: limits.name_bytes,
        }
    }

    /// These budgets for a schema that was accepted before: only the nesting ceiling stays.
    pub fn for_stored(self) -> Budgets {
        Budgets {
            schema_bytes: usize::MAX,
            depth: Self::MAX_DEPTH,
            properties: usize::MAX,
            enum_values: usize::MAX,
            nodes: usize::MAX,
            name_bytes: usize::MAX,
        }
    }
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            schema_bytes: 1024 * 1024,
            depth: 32,
            properties: 10_000,
            enum_values: 10_000,
            nodes: 100_000,
            name_bytes: 1_024,
        }
    }
}

/// The budget of [`Budgets`] a schema exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    SchemaBytes,
    Depth,
    Properties,
    EnumValues,
    Nodes,
    NameBytes,
}

impl Budget {
    /// The services' budget (`--max-*` flag) this one is set from by [`Budgets::from_limits`].
    pub fn limit(self) -> tributary_avro::Limit {
        use tributary_avro::Limit;
        match self {
            Budget::SchemaBytes => Limit::SchemaBytes,
            Budget::Depth => Limit::SchemaDepth,
            Budget::Properties => Limit::RecordFields,
            Budget::EnumValues => Limit::EnumSymbols,
            Budget::Nodes => Limit::NamedTypes,
            Budget::NameBytes => Limit::NameBytes,
        }
    }
}

/// Why a schema is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The text is not JSON, not an object or a boolean, or not a schema the validator can
    /// compile.
    #[error("{0}")]
    Invalid(String),
    /// The schema does not validate against its draft's meta-schema.
    #[error(
        "the schema is not a valid {draft} schema: at '{pointer}', keyword '{keyword}': {message}"
    )]
    MetaSchema {
        draft: Draft,
        /// The meta-schema keyword that failed (`type`, `minimum`, `anyOf`, ...).
        keyword: String,
        /// Where in the schema, as a JSON pointer (`#/properties/a/minLength`).
        pointer: String,
        message: String,
    },
    /// A `$ref` that is neither local nor one of the schema's references.
    #[error("the $ref '{reference}' at '{location}' is not resolvable: {reason}")]
    UnresolvedReference {
        reference: String,
        /// Where the `$ref` is: `#/properties/a` in the schema, `other.json#/...` in a
        /// dependency.
        location: String,
        reason: String,
    },
    /// A budget was exceeded.
    #[error("{what} exceeds the limit of {max}")]
    OverBudget {
        budget: Budget,
        what: String,
        max: u64,
    },
}

impl SchemaError {
    fn over(budget: Budget, what: String, max: usize) -> SchemaError {
        SchemaError::OverBudget {
            budget,
            what,
            max: u64::try_from(max).unwrap_or(u64::MAX),
        }
    }
}

/// A schema's dependency: a reference name and the schema text registered for it.
#[derive(Debug, Clone, Copy)]
pub struct Dependency<'a> {
    pub name: &'a str,
    pub schema: &'a str,
}

/// The JSON Schema drafts served, chosen by `$schema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Draft {
    Draft4,
    Draft6,
    /// Confluent's default when there is no `$schema`.
    Draft7,
    Draft201909,
    Draft202012,
}

impl Draft {
    /// The draft a `$schema` value names: the meta-schema URIs of drafts 4, 6 and 7
    /// (`http://json-schema.org/draft-07/schema#`, with or without `#`, `http` or `https`) and
    /// of 2019-09 and 2020-12 (`https://json-schema.org/draft/2020-12/schema`).
    pub fn from_meta_schema(uri: &str) -> Option<Draft> {
        let trimmed = uri.trim().trim_end_matches('#');
        let rest = trimmed
            .strip_prefix("http://")
            .or_else(|| trimmed.strip_prefix("https://"))?;
        match rest {
            "json-schema.org/draft-04/schema" | "json-schema.org/schema" => Some(Draft::Draft4),
            "json-schema.org/draft-06/schema" => Some(Draft::Draft6),
            "json-schema.org/draft-07/schema" => Some(Draft::Draft7),
            "json-schema.org/draft/2019-09/schema" => Some(Draft::Draft201909),
            "json-schema.org/draft/2020-12/schema" => Some(Draft::Draft202012),
            _ => None,
        }
    }

    /// The draft's name: `draft-07`, `2020-12`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Draft::Draft4 => "draft-04",
            Draft::Draft6 => "draft-06",
            Draft::Draft7 => "draft-07",
            Draft::Draft201909 => "2019-09",
            Draft::Draft202012 => "2020-12",
        }
    }

    /// The keyword that sets a schema's URI: `id` in draft 4, `$id` after.
    pub(crate) fn id_keyword(self) -> &'static str {
        match self {
            Draft::Draft4 => "id",
            _ => "$id",
        }
    }

    /// Whether `$ref` is one keyword among others (2019-09 on) rather than replacing them.
    pub(crate) fn ref_is_applicator(self) -> bool {
        matches!(self, Draft::Draft201909 | Draft::Draft202012)
    }

    fn validator_draft(self) -> jsonschema::Draft {
        match self {
            Draft::Draft4 => jsonschema::Draft::Draft4,
            Draft::Draft6 => jsonschema::Draft::Draft6,
            Draft::Draft7 => jsonschema::Draft::Draft7,
            Draft::Draft201909 => jsonschema::Draft::Draft201909,
            Draft::Draft202012 => jsonschema::Draft::Draft202012,
        }
    }

    fn check_meta_schema(self, value: &Value) -> Result<(), SchemaError> {
        let result = match self {
            Draft::Draft4 => jsonschema::draft4::meta::validate(value),
            Draft::Draft6 => jsonschema::draft6::meta::validate(value),
            Draft::Draft7 => jsonschema::draft7::meta::validate(value),
            Draft::Draft201909 => jsonschema::draft201909::meta::validate(value),
            Draft::Draft202012 => jsonschema::draft202012::meta::validate(value),
        };
        result.map_err(|error| SchemaError::MetaSchema {
            draft: self,
            keyword: error.kind().keyword().to_owned(),
            pointer: format!("#{}", error.instance_path().as_str()),
            message: shorten(&error.to_string()),
        })
    }
}

impl fmt::Display for Draft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One way a record does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationIssue {
    /// The schema keyword that failed: `type`, `required`, `maximum`, ...
    pub keyword: String,
    /// Where in the record, as a JSON pointer (`/lines/1/count`; empty for the whole record).
    pub instance_path: String,
    /// Where in the schema the keyword is, as a JSON pointer (`/properties/lines/items/type`).
    pub schema_path: String,
    pub message: String,
}

impl fmt::Display for ValidationIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.instance_path.is_empty() {
            "/"
        } else {
            &self.instance_path
        };
        write!(f, "{at}: {} ({})", self.message, self.keyword)
    }
}

/// A parsed JSON Schema: its JSON, its draft, the model compatibility checks walk, and the
/// compiled validator of records.
#[derive(Clone)]
pub struct JsonSchema {
    value: Arc<Value>,
    draft: Draft,
    canonical: Arc<str>,
    model: Arc<Model>,
    validator: Arc<jsonschema::Validator>,
}

impl fmt::Debug for JsonSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonSchema")
            .field("draft", &self.draft)
            .field("bytes", &self.canonical.len())
            .field("nodes", &self.model.len())
            .finish()
    }
}

impl JsonSchema {
    /// Parses `text` with its `dependencies` (every schema it references, transitively, by
    /// reference name), within `budgets`.
    pub fn parse(
        text: &str,
        dependencies: &[Dependency<'_>],
        budgets: &Budgets,
    ) -> Result<JsonSchema, SchemaError> {
        let value = read_json("schema", text, budgets)?;
        let draft = draft_of(&value)?.unwrap_or(Draft::Draft7);
        draft.check_meta_schema(&value)?;
        let root_base = root_base(&value, draft);

        let stored = budgets.for_stored();
        let mut documents = vec![Document {
            name: "schema".to_owned(),
            base: root_base.clone(),
            draft,
            value: value.clone(),
        }];
        let mut seen: HashSet<&str> = HashSet::new();
        for dependency in dependencies {
            if !seen.insert(dependency.name) {
                continue;
            }
            let value = read_json(dependency.name, dependency.schema, &stored)?;
            let dependency_draft = draft_of(&value)
                .map_err(|error| in_dependency(dependency.name, error))?
                .unwrap_or(draft);
            documents.push(Document {
                name: dependency.name.to_owned(),
                base: uri::resolve(&root_base, dependency.name),
                draft: dependency_draft,
                value,
            });
        }

        let model = model::build(&documents)?;
        let validator = compile(&documents, draft)?;
        let canonical: Arc<str> = Arc::from(canonical_json(&value));
        Ok(JsonSchema {
            value: Arc::new(value),
            draft,
            canonical,
            model: Arc::new(model),
            validator: Arc::new(validator),
        })
    }

    /// The schema's JSON.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Its draft (`$schema`, draft-07 without one).
    pub fn draft(&self) -> Draft {
        self.draft
    }

    /// The canonical text: compact JSON with the keys in their order, what Confluent stores and
    /// fingerprints (`JsonSchema.canonicalString()`).
    pub fn canonical_string(&self) -> String {
        self.canonical.to_string()
    }

    /// The normalised text (`normalize=true`); see [`crate::normalize`].
    pub fn normalized_string(&self) -> String {
        crate::normalize::normalized_string(&self.value)
    }

    /// Validates a record: `Ok` when it matches, else its first issues (at most
    /// [`MAX_ISSUES`]).
    pub fn validate(&self, instance: &Value) -> Result<(), Vec<ValidationIssue>> {
        self.validate_listing(instance, MAX_ISSUES)
    }

    /// Validates a record, listing at most `max` issues (and at least one when it does not
    /// match).
    pub fn validate_listing(
        &self,
        instance: &Value,
        max: usize,
    ) -> Result<(), Vec<ValidationIssue>> {
        if self.validator.is_valid(instance) {
            return Ok(());
        }
        let issues: Vec<ValidationIssue> = self
            .validator
            .iter_errors(instance)
            .take(max.max(1))
            .map(|error| ValidationIssue {
                keyword: error.kind().keyword().to_owned(),
                instance_path: error.instance_path().as_str().to_owned(),
                schema_path: error.schema_path().as_str().to_owned(),
                message: shorten(&error.to_string()),
            })
            .collect();
        if issues.is_empty() {
            // The validator found no error when listing them: report the failure itself.
            return Err(vec![ValidationIssue {
                keyword: String::new(),
                instance_path: String::new(),
                schema_path: String::new(),
                message: "the record does not match the schema".to_owned(),
            }]);
        }
        Err(issues)
    }

    pub(crate) fn model(&self) -> &Model {
        &self.model
    }
}

/// Compact JSON, keys in their order.
fn canonical_json(value: &Value) -> String {
    // Serialising a `Value` to a string cannot fail (its keys are strings).
    serde_json::to_string(value).unwrap_or_default()
}

/// The root's base URI: its `$id` (`id` in draft 4) resolved against [`DEFAULT_BASE_URI`].
fn root_base(value: &Value, draft: Draft) -> String {
    match value.get(draft.id_keyword()).and_then(Value::as_str) {
        Some(id) if !id.starts_with('#') => {
            let resolved = uri::resolve(DEFAULT_BASE_URI, id);
            uri::split_fragment(&resolved).0.to_owned()
        }
        _ => DEFAULT_BASE_URI.to_owned(),
    }
}

/// The draft a schema's `$schema` names, if it has one.
fn draft_of(value: &Value) -> Result<Option<Draft>, SchemaError> {
    let Some(keyword) = value.get("$schema") else {
        return Ok(None);
    };
    let Some(text) = keyword.as_str() else {
        return Err(SchemaError::Invalid(
            "'$schema' must be a string naming a meta-schema".to_owned(),
        ));
    };
    Draft::from_meta_schema(text).map(Some).ok_or_else(|| {
        SchemaError::Invalid(format!(
            "unsupported $schema '{}': the registry serves drafts 4, 6 and 7 (http://json-schema.org/draft-07/schema#), 2019-09 and 2020-12 (https://json-schema.org/draft/2020-12/schema)",
            shorten(text).escape_debug()
        ))
    })
}

fn in_dependency(name: &str, error: SchemaError) -> SchemaError {
    match error {
        SchemaError::Invalid(message) => SchemaError::Invalid(format!("{name}: {message}")),
        other => other,
    }
}

/// Reads a schema text as JSON within `budgets`: size, then nesting (before serde_json sees
/// it), then values, properties, enum values and names.
fn read_json(name: &str, text: &str, budgets: &Budgets) -> Result<Value, SchemaError> {
    let label = if name == "schema" {
        "the schema".to_owned()
    } else {
        format!("the schema '{name}'")
    };
    if text.len() > budgets.schema_bytes {
        return Err(SchemaError::over(
            Budget::SchemaBytes,
            format!("{label} ({} bytes)", text.len()),
            budgets.schema_bytes,
        ));
    }
    let depth = budgets.depth.min(Budgets::MAX_DEPTH);
    check_nesting(text, depth)
        .map_err(|()| SchemaError::over(Budget::Depth, format!("the nesting of {label}"), depth))?;
    let value: Value = serde_json::from_str(text)
        .map_err(|error| SchemaError::Invalid(format!("{label} is not JSON: {error}")))?;
    match value {
        Value::Object(_) | Value::Bool(_) => {}
        _ => {
            return Err(SchemaError::Invalid(format!(
                "{label} is not a JSON Schema: a schema is a JSON object or a boolean"
            )));
        }
    }
    check_budgets(&label, &value, budgets)?;
    Ok(value)
}

/// Refuses text whose brackets nest deeper than `max` (outside strings).
fn check_nesting(text: &str, max: usize) -> Result<(), ()> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth = depth.saturating_add(1);
                if depth > max {
                    return Err(());
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Keywords whose value maps names to schemas (or, for `dependencies`, to name lists).
const NAMED_KEYWORDS: &[&str] = &[
    "properties",
    "patternProperties",
    "definitions",
    "$defs",
    "dependencies",
    "dependentSchemas",
    "dependentRequired",
];

/// Counts a parsed schema's values, and each schema object's properties, enum values and
/// names, without recursion.
fn check_budgets(label: &str, value: &Value, budgets: &Budgets) -> Result<(), SchemaError> {
    let mut nodes = 0usize;
    let mut stack: Vec<&Value> = vec![value];
    while let Some(current) = stack.pop() {
        nodes = nodes.saturating_add(1);
        if nodes > budgets.nodes {
            return Err(SchemaError::over(
                Budget::Nodes,
                format!("the JSON values of {label}"),
                budgets.nodes,
            ));
        }
        match current {
            Value::Object(map) => {
                if let Some(Value::Object(properties)) = map.get("properties")
                    && properties.len() > budgets.properties
                {
                    return Err(SchemaError::over(
                        Budget::Properties,
                        format!("the properties of one schema of {label}"),
                        budgets.properties,
                    ));
                }
                if let Some(Value::Array(values)) = map.get("enum")
                    && values.len() > budgets.enum_values
                {
                    return Err(SchemaError::over(
                        Budget::EnumValues,
                        format!("the enum values of one schema of {label}"),
                        budgets.enum_values,
                    ));
                }
                for keyword in NAMED_KEYWORDS {
                    if let Some(Value::Object(named)) = map.get(*keyword)
                        && let Some(long) = named.keys().find(|key| key.len() > budgets.name_bytes)
                    {
                        return Err(SchemaError::over(
                            Budget::NameBytes,
                            format!(
                                "the name '{}...' in '{keyword}' of {label}",
                                prefix(long, 64)
                            ),
                            budgets.name_bytes,
                        ));
                    }
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    Ok(())
}

/// Compiles the validator of records: the root with every dependency as a resource under its
/// URI, no retriever (the `jsonschema` crate is built without its HTTP and file retrievers).
fn compile(documents: &[Document], draft: Draft) -> Result<jsonschema::Validator, SchemaError> {
    let Some((root, dependencies)) = documents.split_first() else {
        return Err(SchemaError::Invalid("no schema to compile".to_owned()));
    };
    let resources = dependencies.iter().map(|document| {
        (
            document.base.clone(),
            document
                .draft
                .validator_draft()
                .create_resource(document.value.clone()),
        )
    });
    let registry = jsonschema::Registry::new()
        .extend(resources)
        .and_then(jsonschema::RegistryBuilder::prepare)
        .map_err(|error| SchemaError::Invalid(shorten(&error.to_string())))?;
    let mut options = jsonschema::options()
        .with_draft(draft.validator_draft())
        .with_registry(&registry);
    if root.base != DEFAULT_BASE_URI {
        options = options.with_base_uri(root.base.clone());
    }
    options.build(&root.value).map_err(|error| {
        SchemaError::Invalid(format!(
            "the schema does not compile: {}",
            shorten(&error.to_string())
        ))
    })
}

/// The first `max` bytes of `text`, on a character boundary.
pub(crate) fn prefix(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    text.get(..end).unwrap_or_default()
}

/// `text` within [`MAX_MESSAGE_BYTES`], marked when cut.
fn shorten(text: &str) -> String {
    if text.len() <= MAX_MESSAGE_BYTES {
        text.to_owned()
    } else {
        format!("{}...", prefix(text, MAX_MESSAGE_BYTES))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;

    fn parse(text: &str) -> Result<JsonSchema, SchemaError> {
        JsonSchema::parse(text, &[], &Budgets::default())
    }

    #[test]
    fn each_draft_is_chosen_by_its_meta_schema() {
        for (uri, draft) in [
            ("http://json-schema.org/draft-04/schema#", Draft::Draft4),
            ("http://json-schema.org/draft-06/schema#", Draft::Draft6),
            ("http://json-schema.org/draft-07/schema#", Draft::Draft7),
            ("https://json-schema.org/draft-07/schema", Draft::Draft7),
            (
                "https://json-schema.org/draft/2019-09/schema",
                Draft::Draft201909,
            ),
            (
                "https://json-schema.org/draft/2020-12/schema",
                Draft::Draft202012,
            ),
        ] {
            let text =
                json!({"$schema": uri, "type": "object", "properties": {"a": {"type": "integer"}}})
                    .to_string();
            let schema = parse(&text).unwrap();
            assert_eq!(schema.draft(), draft, "{uri}");
            assert!(schema.validate(&json!({"a": 1})).is_ok());
            assert!(schema.validate(&json!({"a": "x"})).is_err());
        }
        assert_eq!(parse("{}").unwrap().draft(), Draft::Draft7);
        assert_eq!(parse("true").unwrap().draft(), Draft::Draft7);
        let error = parse(r#"{"$schema": "http://example.com/mine"}"#).unwrap_err();
        assert!(error.to_string().contains("unsupported $schema"), "{error}");
        // Keywords of a later draft mean nothing to an earlier one, as in Confluent.
        let draft4 =
            parse(r#"{"$schema": "http://json-schema.org/draft-04/schema#", "const": 1}"#).unwrap();
        assert!(draft4.validate(&json!(2)).is_ok());
        let draft6 =
            parse(r#"{"$schema": "http://json-schema.org/draft-06/schema#", "const": 1}"#).unwrap();
        assert!(draft6.validate(&json!(2)).is_err());
    }

    #[test]
    fn a_meta_schema_error_names_the_keyword_and_pointer() {
        match parse(r#"{"type": "object", "properties": {"a": {"minLength": -1}}}"#).unwrap_err() {
            SchemaError::MetaSchema {
                draft,
                keyword,
                pointer,
                ..
            } => {
                assert_eq!(draft, Draft::Draft7);
                assert_eq!(keyword, "minimum");
                assert_eq!(pointer, "#/properties/a/minLength");
            }
            other => panic!("{other:?}"),
        }
        let error = parse(r#"{"type": "strin"}"#).unwrap_err();
        assert!(error.to_string().contains("at '#/type'"), "{error}");
        assert!(matches!(parse("[1]"), Err(SchemaError::Invalid(_))));
        assert!(matches!(parse("{\"type\": "), Err(SchemaError::Invalid(_))));
        assert!(matches!(parse("42"), Err(SchemaError::Invalid(_))));
    }

    #[test]
    fn remote_references_are_refused_naming_them() {
        for reference in [
            "http://example.com/a.json",
            "https://example.com/a.json#/definitions/x",
            "file:///etc/passwd",
        ] {
            let text = json!({"properties": {"a": {"$ref": reference}}}).to_string();
            match parse(&text).unwrap_err() {
                SchemaError::UnresolvedReference {
                    reference: named,
                    location,
                    reason,
                } => {
                    assert_eq!(named, reference);
                    assert_eq!(location, "#/properties/a");
                    assert!(reason.contains("never fetches"), "{reason}");
                }
                other => panic!("{reference}: {other:?}"),
            }
        }
        let error = parse(r#"{"$ref": "other.json"}"#).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("give it as a reference (name 'other.json'"),
            "{error}"
        );
        // Even where the root does not use it.
        let error =
            parse(r##"{"definitions": {"x": {"$ref": "https://x.test/y"}}, "type": "string"}"##)
                .unwrap_err();
        assert!(
            matches!(error, SchemaError::UnresolvedReference { .. }),
            "{error}"
        );
        // Local references to nothing are errors too.
        let error = parse(r##"{"$ref": "#/definitions/missing"}"##).unwrap_err();
        assert!(error.to_string().contains("there is nothing at"), "{error}");
    }

    #[test]
    fn references_resolve_by_name_from_the_dependencies() {
        let money = r#"{"type": "object", "properties": {"units": {"type": "integer"}}, "required": ["units"]}"#;
        let common = r##"{"definitions": {"currency": {"type": "string", "minLength": 3}}}"##;
        let order = r##"{"type": "object", "properties": {
            "total": {"$ref": "money.json"},
            "currency": {"$ref": "shared/common.json#/definitions/currency"}
        }}"##;
        let dependencies = [
            Dependency {
                name: "money.json",
                schema: money,
            },
            Dependency {
                name: "shared/common.json",
                schema: common,
            },
        ];
        let schema = JsonSchema::parse(order, &dependencies, &Budgets::default()).unwrap();
        assert!(
            schema
                .validate(&json!({"total": {"units": 5}, "currency": "EUR"}))
                .is_ok()
        );
        let issues = schema
            .validate(&json!({"total": {"units": "5"}, "currency": "E"}))
            .unwrap_err();
        let found: Vec<(String, String)> = issues
            .iter()
            .map(|i| (i.keyword.clone(), i.instance_path.clone()))
            .collect();
        assert!(
            found.contains(&("type".to_owned(), "/total/units".to_owned())),
            "{found:?}"
        );
        assert!(
            found.contains(&("minLength".to_owned(), "/currency".to_owned())),
            "{found:?}"
        );

        // Against the root's $id, as Confluent resolves them.
        let with_id = r#"{"$id": "https://example.com/schemas/order.json", "properties": {"total": {"$ref": "money.json"}}}"#;
        let schema = JsonSchema::parse(with_id, &dependencies[..1], &Budgets::default()).unwrap();
        assert!(schema.validate(&json!({"total": {}})).is_err());
        // A dependency named by an absolute URI.
        let absolute = [Dependency {
            name: "https://example.com/money.json",
            schema: money,
        }];
        let schema = JsonSchema::parse(
            r#"{"$ref": "https://example.com/money.json"}"#,
            &absolute,
            &Budgets::default(),
        )
        .unwrap();
        assert!(schema.validate(&json!({"units": 1})).is_ok());
    }

    #[test]
    fn recursive_schemas_terminate() {
        let start = Instant::now();
        let selfish = parse(r##"{"$ref": "#"}"##).unwrap();
        assert!(selfish.validate(&json!({"a": [1, 2, {"b": null}]})).is_ok());

        let tree = parse(
            r##"{"type": "object", "properties": {"value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#"}}}}"##,
        )
        .unwrap();
        let mut deep = json!({"value": 1});
        for _ in 0..50 {
            deep = json!({"value": 1, "children": [deep]});
        }
        assert!(tree.validate(&deep).is_ok());
        let issues = tree
            .validate(&json!({"children": [{"children": [{"value": "x"}]}]}))
            .unwrap_err();
        assert_eq!(issues[0].instance_path, "/children/0/children/0/value");
        assert_eq!(issues[0].keyword, "type");

        // A cycle between two dependencies: in place (never descending into the data) and
        // through properties.
        let in_place = [
            Dependency {
                name: "a.json",
                schema: r#"{"$ref": "b.json"}"#,
            },
            Dependency {
                name: "b.json",
                schema: r#"{"allOf": [{"$ref": "a.json"}], "type": "object"}"#,
            },
        ];
        let schema =
            JsonSchema::parse(r#"{"$ref": "a.json"}"#, &in_place, &Budgets::default()).unwrap();
        assert!(schema.validate(&json!({})).is_ok());
        assert!(schema.validate(&json!(1)).is_err());
        let mutual = [
            Dependency {
                name: "a.json",
                schema: r#"{"type": "object", "properties": {"b": {"$ref": "b.json"}}}"#,
            },
            Dependency {
                name: "b.json",
                schema: r#"{"type": "object", "properties": {"a": {"$ref": "a.json"}, "n": {"type": "integer"}}}"#,
            },
        ];
        let schema =
            JsonSchema::parse(r#"{"$ref": "a.json"}"#, &mutual, &Budgets::default()).unwrap();
        assert!(
            schema
                .validate(&json!({"b": {"a": {"b": {"n": 1}}}}))
                .is_ok()
        );
        let issues = schema
            .validate(&json!({"b": {"a": {"b": {"n": "x"}}}}))
            .unwrap_err();
        assert_eq!(issues[0].instance_path, "/b/a/b/n");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn huge_and_deep_schemas_are_refused_by_budget_quickly() {
        let start = Instant::now();
        let huge = format!(r#"{{"description": "{}"}}"#, "x".repeat(1024 * 1024));
        match parse(&huge).unwrap_err() {
            SchemaError::OverBudget { budget, .. } => assert_eq!(budget, Budget::SchemaBytes),
            other => panic!("{other:?}"),
        }
        let deep = format!("{}{}", r#"{"not":"#.repeat(10_000), "}".repeat(10_000));
        let deep = deep.replacen(r#"{"not":}"#, "{}", 1);
        match parse(&deep).unwrap_err() {
            SchemaError::OverBudget { budget, max, .. } => {
                assert_eq!(budget, Budget::Depth);
                assert_eq!(max, 32);
            }
            other => panic!("{other:?}"),
        }
        // Nesting inside strings does not count.
        let quoted = json!({"description": "[".repeat(10_000)}).to_string();
        parse(&quoted).unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );

        // The stored ceiling still applies.
        let deep_array = format!("{{\"enum\": [{}1{}]}}", "[".repeat(100), "]".repeat(100));
        let error =
            JsonSchema::parse(&deep_array, &[], &Budgets::default().for_stored()).unwrap_err();
        assert!(matches!(
            error,
            SchemaError::OverBudget {
                budget: Budget::Depth,
                max: 64,
                ..
            }
        ));
    }

    #[test]
    fn structural_budgets_apply() {
        let budgets = Budgets {
            properties: 2,
            enum_values: 2,
            name_bytes: 4,
            nodes: 20,
            ..Budgets::default()
        };
        let check = |text: &str| JsonSchema::parse(text, &[], &budgets);
        let over = |text: &str| match check(text) {
            Err(SchemaError::OverBudget { budget, .. }) => budget,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            over(r#"{"properties": {"a": {}, "b": {}, "c": {}}}"#),
            Budget::Properties
        );
        assert_eq!(over(r#"{"enum": [1, 2, 3]}"#), Budget::EnumValues);
        assert_eq!(over(r#"{"properties": {"abcde": {}}}"#), Budget::NameBytes);
        assert_eq!(
            over(r#"{"enum": [[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]]}"#),
            Budget::Nodes
        );
        check(r#"{"properties": {"a": {}, "b": {}}, "enum": [{"a": 1}, 2]}"#).unwrap();
        // Stored schemas are read whatever the budgets are now.
        JsonSchema::parse(
            r#"{"properties": {"a": {}, "b": {}, "c": {}}}"#,
            &[],
            &budgets.for_stored(),
        )
        .unwrap();

        let limits = tributary_avro::Limits {
            record_fields: 3,
            enum_symbols: 4,
            named_types: 5,
            ..tributary_avro::Limits::default()
        };
        let mapped = Budgets::from_limits(&limits);
        assert_eq!(mapped.properties, 3);
        assert_eq!(mapped.enum_values, 4);
        assert_eq!(mapped.nodes, 50);
        assert!(mapped.depth <= Budgets::MAX_DEPTH);
    }

    #[test]
    fn validation_issues_name_keyword_and_paths_and_are_capped() {
        let schema = parse(
            r#"{"type": "object", "required": ["id"], "properties": {"lines": {"type": "array", "items": {"type": "object", "properties": {"count": {"type": "integer", "minimum": 1}}}}}}"#,
        )
        .unwrap();
        let issues = schema
            .validate(&json!({"lines": [{"count": 2}, {"count": 0}]}))
            .unwrap_err();
        let minimum = issues.iter().find(|i| i.keyword == "minimum").unwrap();
        assert_eq!(minimum.instance_path, "/lines/1/count");
        assert_eq!(
            minimum.schema_path,
            "/properties/lines/items/properties/count/minimum"
        );
        assert!(issues.iter().any(|i| i.keyword == "required"));
        assert!(
            minimum.to_string().starts_with("/lines/1/count: "),
            "{minimum}"
        );

        let many: Vec<Value> = (0..500).map(|_| json!({"count": 0})).collect();
        let issues = schema
            .validate(&json!({"id": 1, "lines": many}))
            .unwrap_err();
        assert_eq!(issues.len(), MAX_ISSUES);
        assert_eq!(schema.validate_listing(&json!({}), 0).unwrap_err().len(), 1);
    }

    #[test]
    fn canonical_keeps_order_and_normalized_sorts() {
        let schema = parse(
            r#"{ "type": "object",
                 "properties": { "b": {"type": "string"}, "a": {"type": "integer"} },
                 "required": ["b", "a"] }"#,
        )
        .unwrap();
        assert_eq!(
            schema.canonical_string(),
            r#"{"type":"object","properties":{"b":{"type":"string"},"a":{"type":"integer"}},"required":["b","a"]}"#
        );
        assert_eq!(
            schema.normalized_string(),
            r#"{"properties":{"a":{"type":"integer"},"b":{"type":"string"}},"required":["b","a"],"type":"object"}"#
        );
        let reordered = parse(
            r#"{"required": ["b", "a"], "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "type": "object"}"#,
        )
        .unwrap();
        assert_eq!(schema.normalized_string(), reordered.normalized_string());
        assert_ne!(schema.canonical_string(), reordered.canonical_string());
    }
}
