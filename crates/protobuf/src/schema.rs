//! Compiling a Protobuf schema: `.proto` text or a base64 `FileDescriptorProto`, its imports
//! resolved from its references and from the files every Confluent registry knows.
//!
//! Guarantee: parsing is bounded. Before `protox` sees a text, its bracket nesting is checked
//! against [`Budgets::depth`] (the parser recurses once per level); encoded descriptors are
//! decoded by prost, whose recursion limit is 100; after compiling, the file's types, fields per
//! message, enum values and names are counted against the other budgets.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use miette::Diagnostic;
use prost::Message as _;
use prost_reflect::{DescriptorPool, FileDescriptor, MessageDescriptor};
use protox::Compiler;
use protox::file::{File, FileResolver, GoogleFileResolver};

/// The name the schema itself gets among its imports (Confluent's clients call it "default").
pub const ROOT_FILE_NAME: &str = "default";

/// Files resolved without being registered, as in Confluent's registry and clients: the
/// well-known types (google/protobuf, from prost-reflect's own pool), google/type, and
/// Confluent's own option and decimal types.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "confluent/meta.proto",
        include_str!("../proto/confluent/meta.proto"),
    ),
    (
        "confluent/type/decimal.proto",
        include_str!("../proto/confluent/type/decimal.proto"),
    ),
    (
        "google/type/calendar_period.proto",
        include_str!("../proto/google/type/calendar_period.proto"),
    ),
    (
        "google/type/color.proto",
        include_str!("../proto/google/type/color.proto"),
    ),
    (
        "google/type/date.proto",
        include_str!("../proto/google/type/date.proto"),
    ),
    (
        "google/type/datetime.proto",
        include_str!("../proto/google/type/datetime.proto"),
    ),
    (
        "google/type/dayofweek.proto",
        include_str!("../proto/google/type/dayofweek.proto"),
    ),
    (
        "google/type/decimal.proto",
        include_str!("../proto/google/type/decimal.proto"),
    ),
    (
        "google/type/expr.proto",
        include_str!("../proto/google/type/expr.proto"),
    ),
    (
        "google/type/fraction.proto",
        include_str!("../proto/google/type/fraction.proto"),
    ),
    (
        "google/type/interval.proto",
        include_str!("../proto/google/type/interval.proto"),
    ),
    (
        "google/type/latlng.proto",
        include_str!("../proto/google/type/latlng.proto"),
    ),
    (
        "google/type/localized_text.proto",
        include_str!("../proto/google/type/localized_text.proto"),
    ),
    (
        "google/type/money.proto",
        include_str!("../proto/google/type/money.proto"),
    ),
    (
        "google/type/month.proto",
        include_str!("../proto/google/type/month.proto"),
    ),
    (
        "google/type/phone_number.proto",
        include_str!("../proto/google/type/phone_number.proto"),
    ),
    (
        "google/type/postal_address.proto",
        include_str!("../proto/google/type/postal_address.proto"),
    ),
    (
        "google/type/quaternion.proto",
        include_str!("../proto/google/type/quaternion.proto"),
    ),
    (
        "google/type/timeofday.proto",
        include_str!("../proto/google/type/timeofday.proto"),
    ),
];

/// Whether an import is one of the files resolved without registration (a reference with
/// such a name is ignored, as Confluent's clients do).
pub fn is_builtin(name: &str) -> bool {
    name.starts_with("google/protobuf/")
        || name.starts_with("google/type/")
        || name.starts_with("confluent/")
}

/// What one schema may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// Bytes of one schema text (each dependency is checked on its own).
    pub schema_bytes: usize,
    /// Levels of bracket nesting (`{`, `[`, `<`, `(`) in a text: nested messages, aggregate
    /// option values. At most [`Budgets::MAX_DEPTH`].
    pub depth: usize,
    /// Fields of one message.
    pub fields: usize,
    /// Values of one enum.
    pub enum_values: usize,
    /// Messages, enums and services of one file (nested ones included).
    pub types: usize,
    /// Bytes of one name.
    pub name_bytes: usize,
}

impl Budgets {
    /// The deepest nesting the compiler takes on a 2 MiB stack, with room to spare.
    pub const MAX_DEPTH: usize = 64;

    /// The services' schema budgets (the `--max-*` flags they share with Avro): fields per
    /// message are fields per record, enum values enum symbols, messages + enums + services
    /// named types; the nesting ceiling is the default one.
    pub fn from_limits(limits: &tributary_avro::Limits) -> Budgets {
        Budgets {
            schema_bytes: limits.schema_bytes,
            depth: Budgets::default().depth,
            fields: limits.record_fields,
            enum_values: limits.enum_symbols,
            types: limits.named_types,
            name_bytes: limits.name_bytes,
        }
    }

    /// These budgets for a schema that was accepted before: only the nesting ceiling stays.
    pub fn for_stored(self) -> Budgets {
        Budgets {
            schema_bytes: usize::MAX,
            depth: Self::MAX_DEPTH,
            fields: usize::MAX,
            enum_values: usize::MAX,
            types: usize::MAX,
            name_bytes: usize::MAX,
        }
    }
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            schema_bytes: 1024 * 1024,
            depth: 32,
            fields: 10_000,
            enum_values: 10_000,
            types: 10_000,
            name_bytes: 1_024,
        }
    }
}

/// Why a schema does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The text is not valid `.proto` (nor a base64 descriptor), or it does not resolve.
    #[error("{0}")]
    Invalid(String),
    /// An import that is neither a reference of the schema nor a built-in file.
    #[error(
        "import '{name}' is not resolvable: give it as a reference (name '{name}', with the subject and version that hold it)"
    )]
    MissingImport { name: String },
    /// A budget was exceeded.
    #[error("{what} exceeds the limit of {max}")]
    OverBudget {
        budget: Budget,
        what: String,
        max: u64,
    },
}

/// The budget of [`Budgets`] a schema exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    SchemaBytes,
    Depth,
    Fields,
    EnumValues,
    Types,
    NameBytes,
}

impl Budget {
    /// The services' budget (`--max-*` flag) this one is set from by [`Budgets::from_limits`].
    pub fn limit(self) -> tributary_avro::Limit {
        use tributary_avro::Limit;
        match self {
            Budget::SchemaBytes => Limit::SchemaBytes,
            Budget::Depth => Limit::SchemaDepth,
            Budget::Fields => Limit::RecordFields,
            Budget::EnumValues => Limit::EnumSymbols,
            Budget::Types => Limit::NamedTypes,
            Budget::NameBytes => Limit::NameBytes,
        }
    }
}

/// A schema's dependency: an import name and the schema text registered for it.
#[derive(Debug, Clone, Copy)]
pub struct Dependency<'a> {
    pub name: &'a str,
    pub schema: &'a str,
}

/// A compiled Protobuf schema: its file (named [`ROOT_FILE_NAME`]) in a pool with everything
/// it imports.
#[derive(Clone)]
pub struct ProtoSchema {
    file: FileDescriptor,
}

impl fmt::Debug for ProtoSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtoSchema")
            .field("package", &self.file.package_name())
            .field("messages", &self.file.messages().len())
            .finish()
    }
}

impl ProtoSchema {
    /// Compiles `schema` (`.proto` text, or a base64 `FileDescriptorProto`) with its
    /// `dependencies` (every file it imports, transitively, by import name), within `budgets`.
    pub fn parse(
        schema: &str,
        dependencies: &[Dependency<'_>],
        budgets: &Budgets,
    ) -> Result<ProtoSchema, ProtoError> {
        let root = load(ROOT_FILE_NAME, schema, budgets)?;
        let mut files = HashMap::with_capacity(dependencies.len());
        for dependency in dependencies {
            if is_builtin(dependency.name)
                || dependency.name == ROOT_FILE_NAME
                || files.contains_key(dependency.name)
            {
                continue;
            }
            let file = load(dependency.name, dependency.schema, &budgets.for_stored())?;
            files.insert(dependency.name.to_owned(), file);
        }
        let resolver = Resolver {
            root,
            files,
            google: GoogleFileResolver::new(),
        };
        let mut compiler = Compiler::with_file_resolver(resolver);
        compiler.include_imports(true).include_source_info(false);
        compiler
            .open_file(ROOT_FILE_NAME)
            .map_err(|error| compile_error(&error, schema, dependencies))?;
        let pool = compiler.descriptor_pool();
        let file = pool
            .get_file_by_name(ROOT_FILE_NAME)
            .ok_or_else(|| ProtoError::Invalid("the schema compiled to no file".to_owned()))?;
        check_budgets(&file, budgets)?;
        Ok(ProtoSchema { file })
    }

    /// The schema's file.
    pub fn file(&self) -> &FileDescriptor {
        &self.file
    }

    /// The pool of the file and everything it imports.
    pub fn pool(&self) -> &DescriptorPool {
        self.file.parent_pool()
    }

    /// About how much memory this schema holds, for caches that bound what they keep. A
    /// descriptor pool costs about 78 KiB however small its files (measured: 2,048 pools of a
    /// 15-field file importing timestamp.proto, 2.6 KB encoded, took 78 KiB of RSS each), so
    /// counting the text alone would let a cache sized in text hold thirty times its budget.
    pub fn memory_estimate(&self) -> usize {
        const POOL_BYTES: usize = 80 * 1024;
        POOL_BYTES.saturating_add(self.pool().encode_to_vec().len().saturating_mul(8))
    }

    /// The canonical `.proto` text: what the registry stores and fingerprints.
    pub fn canonical_string(&self) -> String {
        crate::print::print(&self.file, crate::print::Style::Canonical)
    }

    /// The normalised `.proto` text (`normalize=true`).
    pub fn normalized_string(&self) -> String {
        crate::print::print(&self.file, crate::print::Style::Normalized)
    }

    /// The text without custom options (`format=ignore_extensions`).
    pub fn without_extensions_string(&self) -> String {
        crate::print::print(&self.file, crate::print::Style::IgnoreExtensions)
    }

    /// The base64 of the encoded `FileDescriptorProto` (`format=serialized`), options included.
    pub fn serialized(&self) -> String {
        STANDARD.encode(self.file.encode_to_vec())
    }

    /// The message with this fully-qualified name (a leading '.' is allowed), declared in this
    /// file at any depth.
    pub fn message(&self, full_name: &str) -> Option<MessageDescriptor> {
        let name = full_name.strip_prefix('.').unwrap_or(full_name);
        self.pool()
            .get_message_by_name(name)
            .filter(|message| message.parent_file() == self.file)
    }

    /// The first message of the file (index path `[0]`), the default of Confluent's clients.
    pub fn first_message(&self) -> Option<MessageDescriptor> {
        self.file.messages().next()
    }

    /// The message at an index path of Confluent's framing: `[i]` is the file's i-th message,
    /// `[i, j]` its j-th nested message, and so on. An empty path means `[0]`.
    pub fn message_at(&self, indexes: &[i32]) -> Option<MessageDescriptor> {
        let (first, rest) = match indexes.split_first() {
            None => return self.first_message(),
            Some(split) => split,
        };
        let mut message = self.file.messages().nth(usize::try_from(*first).ok()?)?;
        for index in rest {
            let child = message
                .child_messages()
                .nth(usize::try_from(*index).ok()?)?;
            message = child;
        }
        Some(message)
    }

    /// The index path of a message of this file (see [`ProtoSchema::message_at`]).
    pub fn indexes_of(&self, message: &MessageDescriptor) -> Option<Vec<i32>> {
        if message.parent_file() != self.file {
            return None;
        }
        let mut path = Vec::new();
        let mut current = message.clone();
        loop {
            match current.parent_message() {
                Some(parent) => {
                    let index = parent.child_messages().position(|child| child == current)?;
                    path.push(i32::try_from(index).ok()?);
                    current = parent;
                }
                None => {
                    let index = self.file.messages().position(|top| top == current)?;
                    path.push(i32::try_from(index).ok()?);
                    break;
                }
            }
        }
        path.reverse();
        Some(path)
    }
}

/// Serves the root file, the dependencies and the built-in files to the compiler.
struct Resolver {
    root: File,
    files: HashMap<String, File>,
    google: GoogleFileResolver,
}

impl FileResolver for Resolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if name == ROOT_FILE_NAME {
            return Ok(self.root.clone());
        }
        if let Some((_, text)) = EMBEDDED.iter().find(|(embedded, _)| *embedded == name) {
            return File::from_source(name, text);
        }
        if name.starts_with("google/protobuf/") {
            return self.google.open_file(name);
        }
        self.files
            .get(name)
            .cloned()
            .ok_or_else(|| protox::Error::file_not_found(name))
    }
}

/// One file as the compiler takes it: parsed text, or a decoded descriptor renamed to `name`.
/// A text that does not parse is tried as base64 (as Confluent does); the text's error is the
/// one reported when that fails too.
fn load(name: &str, text: &str, budgets: &Budgets) -> Result<File, ProtoError> {
    if text.len() > budgets.schema_bytes {
        return Err(ProtoError::OverBudget {
            budget: Budget::SchemaBytes,
            what: format!("the schema '{name}' ({} bytes)", text.len()),
            max: u64::try_from(budgets.schema_bytes).unwrap_or(u64::MAX),
        });
    }
    if text.trim().is_empty() {
        return Err(ProtoError::Invalid(format!("the schema '{name}' is empty")));
    }
    check_nesting(name, text, budgets.depth)?;
    match File::from_source(name, text) {
        Ok(file) => Ok(file),
        Err(error) => match decode_descriptor(name, text) {
            Some(file) => Ok(file),
            None if declares_edition(text) => Err(ProtoError::Invalid(format!(
                "{}: editions (`edition = ...`) are not supported yet: write the schema as proto2 or proto3",
                if name == ROOT_FILE_NAME {
                    "schema"
                } else {
                    name
                }
            ))),
            None => Err(ProtoError::Invalid(located(&error, name, text))),
        },
    }
}

/// Whether the first statement of a text (after blank lines and `//` comments) is `edition`.
fn declares_edition(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("//"))
        .is_some_and(|line| line.starts_with("edition"))
}

/// A base64 `FileDescriptorProto`, renamed to `name` (a name field appended last wins, and
/// keeps the encoded options that a decode and re-encode through prost-types would drop).
fn decode_descriptor(name: &str, text: &str) -> Option<File> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.bytes().any(|byte| byte.is_ascii_whitespace()) {
        return None;
    }
    let mut bytes = STANDARD.decode(trimmed).ok()?;
    prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok()?;
    prost::encoding::string::encode(1, &name.to_owned(), &mut bytes);
    File::decode_file_descriptor_proto(bytes.as_slice()).ok()
}

/// Refuses text whose brackets nest deeper than `max` (outside strings and comments), before
/// the recursive parser sees it.
fn check_nesting(name: &str, text: &str, max: usize) -> Result<(), ProtoError> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut index = 0usize;
    while let Some(&byte) = bytes.get(index) {
        index = index.saturating_add(1);
        match byte {
            b'{' | b'[' | b'<' | b'(' => {
                depth = depth.saturating_add(1);
                if depth > max {
                    return Err(ProtoError::OverBudget {
                        budget: Budget::Depth,
                        what: format!("the nesting of the schema '{name}'"),
                        max: u64::try_from(max).unwrap_or(u64::MAX),
                    });
                }
            }
            b'}' | b']' | b'>' | b')' => depth = depth.saturating_sub(1),
            b'"' | b'\'' => {
                // A string: up to its unescaped closing quote or the end of the line.
                while let Some(&inner) = bytes.get(index) {
                    index = index.saturating_add(1);
                    if inner == b'\\' {
                        index = index.saturating_add(1);
                    } else if inner == byte || inner == b'\n' {
                        break;
                    }
                }
            }
            b'/' if bytes.get(index) == Some(&b'/') => {
                while let Some(&inner) = bytes.get(index) {
                    index = index.saturating_add(1);
                    if inner == b'\n' {
                        break;
                    }
                }
            }
            b'/' if bytes.get(index) == Some(&b'*') => {
                index = index.saturating_add(1);
                while let Some(&inner) = bytes.get(index) {
                    index = index.saturating_add(1);
                    if inner == b'*' && bytes.get(index) == Some(&b'/') {
                        index = index.saturating_add(1);
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Counts a compiled file's types, fields, enum values and names against the budgets, walking
/// its messages without recursion.
fn check_budgets(file: &FileDescriptor, budgets: &Budgets) -> Result<(), ProtoError> {
    let over = |budget: Budget, what: String, max: usize| ProtoError::OverBudget {
        budget,
        what,
        max: u64::try_from(max).unwrap_or(u64::MAX),
    };
    let mut types = 0usize;
    let mut count_type = |name: &str| -> Result<(), ProtoError> {
        types = types.saturating_add(1);
        if types > budgets.types {
            return Err(over(
                Budget::Types,
                "the messages, enums and services of the schema".to_owned(),
                budgets.types,
            ));
        }
        if name.len() > budgets.name_bytes {
            return Err(over(
                Budget::NameBytes,
                format!("the name '{}...'", prefix(name, 64)),
                budgets.name_bytes,
            ));
        }
        Ok(())
    };
    let check_enum = |enumeration: &prost_reflect::EnumDescriptor| -> Result<(), ProtoError> {
        if enumeration.values().len() > budgets.enum_values {
            return Err(over(
                Budget::EnumValues,
                format!("the values of enum '{}'", enumeration.full_name()),
                budgets.enum_values,
            ));
        }
        Ok(())
    };
    for service in file.services() {
        count_type(service.full_name())?;
    }
    for enumeration in file.enums() {
        count_type(enumeration.full_name())?;
        check_enum(&enumeration)?;
    }
    let mut stack: Vec<MessageDescriptor> = file.messages().collect();
    while let Some(message) = stack.pop() {
        count_type(message.full_name())?;
        if message.fields().len() > budgets.fields {
            return Err(over(
                Budget::Fields,
                format!("the fields of message '{}'", message.full_name()),
                budgets.fields,
            ));
        }
        for field in message.fields() {
            if field.name().len() > budgets.name_bytes {
                return Err(over(
                    Budget::NameBytes,
                    format!(
                        "the name of field {} of '{}'",
                        field.number(),
                        message.full_name()
                    ),
                    budgets.name_bytes,
                ));
            }
        }
        for enumeration in message.child_enums() {
            count_type(enumeration.full_name())?;
            check_enum(&enumeration)?;
        }
        stack.extend(message.child_messages());
    }
    Ok(())
}

/// The first `max` bytes of `text`, on a character boundary.
fn prefix(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    text.get(..end).unwrap_or_default()
}

/// A compiler error as one line: a missing import as [`ProtoError::MissingImport`], others
/// with the file, line and column they point at.
fn compile_error(error: &protox::Error, root: &str, dependencies: &[Dependency<'_>]) -> ProtoError {
    let message = error.to_string();
    if error.is_file_not_found()
        && let Some(name) = message
            .strip_prefix("import '")
            .and_then(|rest| rest.split_once('\''))
            .map(|(name, _)| name.to_owned())
    {
        return ProtoError::MissingImport { name };
    }
    let file = error.file().unwrap_or(ROOT_FILE_NAME);
    let text = if file == ROOT_FILE_NAME {
        Some(root)
    } else {
        dependencies
            .iter()
            .find(|dependency| dependency.name == file)
            .map(|dependency| dependency.schema)
    };
    match text {
        Some(text) => ProtoError::Invalid(located(error, file, text)),
        None => ProtoError::Invalid(format!("{file}: {message}")),
    }
}

/// `file:line:column: message` for a diagnostic whose first label points into `text`.
fn located(error: &dyn Diagnostic, file: &str, text: &str) -> String {
    let offset = error
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset());
    let file = if file == ROOT_FILE_NAME {
        "schema"
    } else {
        file
    };
    match offset {
        Some(offset) if offset <= text.len() => {
            let before = text.get(..offset).unwrap_or_default();
            let line = before.matches('\n').count().saturating_add(1);
            let column = before
                .rsplit('\n')
                .next()
                .map_or(0, |tail| tail.chars().count())
                .saturating_add(1);
            format!("{file}:{line}:{column}: {error}")
        }
        _ => format!("{file}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(text: &str) -> Result<ProtoSchema, ProtoError> {
        ProtoSchema::parse(text, &[], &Budgets::default())
    }

    #[test]
    fn compiles_text_and_finds_messages_by_name_and_index() {
        let schema = parse(
            "syntax = \"proto3\";\npackage shop.v1;\nmessage Order { message Line { string sku = 1; } repeated Line lines = 1; }\nmessage Refund { int64 amount = 1; }\n",
        )
        .unwrap();
        let line = schema.message("shop.v1.Order.Line").unwrap();
        assert_eq!(schema.indexes_of(&line), Some(vec![0, 0]));
        let refund = schema.message(".shop.v1.Refund").unwrap();
        assert_eq!(schema.indexes_of(&refund), Some(vec![1]));
        assert_eq!(
            schema.message_at(&[1]).unwrap().full_name(),
            "shop.v1.Refund"
        );
        assert_eq!(schema.message_at(&[]).unwrap().full_name(), "shop.v1.Order");
        assert!(schema.message_at(&[2]).is_none());
        assert!(schema.message_at(&[-1]).is_none());
        assert!(schema.message("shop.v1.Missing").is_none());
    }

    #[test]
    fn well_known_and_confluent_imports_resolve_without_references() {
        let schema = parse(
            "syntax = \"proto3\";\nimport \"google/protobuf/timestamp.proto\";\nimport \"google/type/money.proto\";\nimport \"confluent/meta.proto\";\nimport \"confluent/type/decimal.proto\";\nmessage Payment {\n  google.protobuf.Timestamp at = 1;\n  google.type.Money amount = 2 [(confluent.field_meta).doc = \"gross\"];\n  confluent.type.Decimal fee = 3;\n}\n",
        )
        .unwrap();
        assert!(schema.message("Payment").is_some());
    }

    #[test]
    fn references_resolve_imports_and_a_missing_one_is_named() {
        let common = "syntax = \"proto3\";\npackage common;\nmessage Money { int64 units = 1; }\n";
        let text = "syntax = \"proto3\";\nimport \"common.proto\";\nmessage Order { common.Money total = 1; }\n";
        let dependencies = [Dependency {
            name: "common.proto",
            schema: common,
        }];
        let schema = ProtoSchema::parse(text, &dependencies, &Budgets::default()).unwrap();
        assert!(schema.message("Order").is_some());
        assert_eq!(
            parse(text).unwrap_err(),
            ProtoError::MissingImport {
                name: "common.proto".to_owned()
            }
        );
    }

    #[test]
    fn an_import_cycle_is_refused() {
        let a = "syntax = \"proto3\";\nimport \"b.proto\";\nmessage A {}\n";
        let b = "syntax = \"proto3\";\nimport \"a.proto\";\nmessage B {}\n";
        let root = "syntax = \"proto3\";\nimport \"a.proto\";\nmessage Root {}\n";
        let error = ProtoSchema::parse(
            root,
            &[
                Dependency {
                    name: "a.proto",
                    schema: a,
                },
                Dependency {
                    name: "b.proto",
                    schema: b,
                },
            ],
            &Budgets::default(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("cycle"), "{error}");
    }

    #[test]
    fn a_syntax_error_names_its_line_and_column() {
        let error = parse("syntax = \"proto3\";\nmessage A {\n  string name = ;\n}\n").unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("schema:3:"), "{text}");
    }

    #[test]
    fn editions_are_refused_naming_them() {
        let error =
            parse("// a file\nedition = \"2023\";\nmessage M { string a = 1; }\n").unwrap_err();
        assert!(error.to_string().contains("editions"), "{error}");
    }

    #[test]
    fn base64_descriptors_compile_like_their_text() {
        let text = "syntax = \"proto3\";\npackage p;\nmessage A { string s = 1; map<string, int32> m = 2; }\n";
        let schema = parse(text).unwrap();
        let again = parse(&schema.serialized()).unwrap();
        assert_eq!(
            schema.file().file_descriptor_proto(),
            again.file().file_descriptor_proto()
        );
    }

    #[test]
    fn deep_nesting_and_too_many_fields_are_over_budget() {
        let deep = format!(
            "syntax = \"proto3\";\n{}{}",
            "message M {".repeat(10_000),
            "}".repeat(10_000)
        );
        assert!(matches!(parse(&deep), Err(ProtoError::OverBudget { .. })));
        let fields: String = (1..=10_001)
            .map(|n| format!("int32 f{n} = {n};\n"))
            .collect();
        let wide = format!("syntax = \"proto3\";\nmessage W {{\n{fields}}}\n");
        let error = parse(&wide).unwrap_err();
        assert!(
            error.to_string().contains("fields of message 'W'"),
            "{error}"
        );
    }
}
