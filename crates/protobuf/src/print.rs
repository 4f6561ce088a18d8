//! Printing a compiled file back as `.proto` text.
//!
//! Guarantee (round trip): for every file `protox` compiles from `.proto` text, compiling
//! `print(file, Style::Canonical)` again gives the same `FileDescriptorProto` (source info
//! aside), options included: standard and custom (extension) options, at every level, extension
//! ranges included. The one exception: an explicit `json_name` equal to the one the compiler
//! derives is not printed, so the recompiled field has none (the same JSON name). Printing is
//! idempotent: printing the recompiled file gives the same text, in every style.
//!
//! The printer reads only the descriptor: comments and whitespace are not kept. Type names are
//! printed fully qualified with a leading dot (`.pkg.Msg`), which resolves the same from any
//! scope; custom option names are printed as `(pkg.opt)`, or as `(.pkg.opt)` when a symbol of
//! an enclosing scope is named like the option's first component. Map fields print as
//! `map<K, V>` (their entry types are not printed), proto3 `optional` fields as `optional`
//! (their synthetic oneofs are not printed), proto2 groups in group syntax. Indentation is two
//! spaces, one declaration a line; top-level declarations are separated by a blank line.
//!
//! What does not round-trip (none of it comes out of `protox` from text; it can come in as an
//! encoded descriptor from another compiler): unknown fields in options; a float option whose
//! value is NaN (printed `nan`, which `protox` does not read; infinities print as `1e999`); a
//! map entry or group type that is not the sibling the compiler would have generated, and
//! editions (which `protox` 0.10 does not parse): these print as well as the syntax allows.
//!
//! # Styles
//!
//! - [`Style::Canonical`]: the declarations in the order the descriptor holds them (fields,
//!   oneofs, nested types, map entries and groups interleaved so that recompiling reproduces
//!   every list of the descriptor in order); options of one element in field-number order,
//!   standard options before custom ones (the field pseudo-options `default` and `json_name`
//!   first).
//! - [`Style::Normalized`]: Confluent Schema Registry's Protobuf normalisation
//!   (`normalize=true`), as `ProtobufSchemaUtils.toNormalizedString` /
//!   `toFormattedString(FormatContext(ignoreExtensions=false, normalize=true), ...)` does it in
//!   confluentinc/schema-registry (`protobuf-provider/src/main/java/io/confluent/kafka/
//!   schemaregistry/protobuf/ProtobufSchemaUtils.java`):
//!   - `syntax` is printed only for proto3 (proto2 is the default);
//!   - imports are sorted and deduplicated: plain imports, then `public` ones (then `weak` ones);
//!   - options everywhere (file, message, field, oneof, enum, enum value, service, method) are
//!     sorted by name, a custom option by its full name without parentheses; the field
//!     pseudo-options `default` and `json_name` are sorted in with them; fields of aggregate
//!     option values are sorted by name too (repeated values keep their order);
//!   - in a message: `reserved` first, one value a statement, sorted by number (names after
//!     numbers, by name); then options; then the fields that are in no oneof (proto3 `optional`
//!     and map fields included) sorted by number; then the oneofs (empty ones dropped) sorted by
//!     their lowest field number, each with its fields sorted by number; then groups sorted by
//!     number; then `extensions` ranges, one a statement, sorted by start; then `extend` blocks,
//!     merged per extendee (in order of first appearance) with their fields sorted by number;
//!     then nested messages, then nested enums, both in declared order, map entry types not
//!     printed (the `map<K, V>` field stands for them);
//!   - in an enum: `reserved` as in messages, options, values sorted by number then name,
//!     except that the first value stays first (a deliberate difference: Confluent sorts it
//!     too, which changes the default of proto2 fields and, with a negative value, gives a
//!     proto3 enum that does not compile);
//!   - at the top level: messages, then enums, then `extend` blocks (merged as in messages),
//!     then services; messages, enums, services and methods keep their declared order
//!     (Confluent's message indexes count messages in declared order);
//!   - an option set in parts (`(m).a = 1` and `(m).b = 2`) prints as one value, as Confluent
//!     merges them (`(m) = { a: 1 b: 2 }`).
//!
//!   Two schemas that differ only in whitespace, comments, the order of options or imports, the
//!   order of fields, oneofs, enum values, reserved or extension ranges, or how types are named
//!   (relative or qualified), or in `syntax = "proto2";` being spelled out, print the same text.
//!   The text compiles to a descriptor equal to the original one up to that reordering.
//! - [`Style::IgnoreExtensions`]: Confluent's `format=ignore_extensions`
//!   (`FormatContext(ignoreExtensions=true, normalize=false)`): the canonical text without
//!   custom options other than Confluent's own (`confluent.*`, e.g. `confluent.field_meta`),
//!   without `extend` blocks and without `extensions` ranges.
//!
//! Printing recurses once per level of nested messages (and of nested aggregate option values,
//! capped at 100 levels); a compiled schema's nesting is bounded by the parser's
//! budgets and by prost's decoding limit of 100.

use std::collections::HashMap;

use prost_reflect::{
    Cardinality, DescriptorPool, DynamicMessage, EnumDescriptor, ExtensionDescriptor,
    FieldDescriptor, FileDescriptor, Kind, MapKey, MessageDescriptor, MethodDescriptor,
    OneofDescriptor, ServiceDescriptor, Value,
};

/// How a file is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// What the registry stores: declared order, every option.
    Canonical,
    /// `normalize=true`: Confluent's normalisation (see the module documentation).
    Normalized,
    /// `format=ignore_extensions`: canonical, without custom options other than `confluent.*`,
    /// `extend` blocks and extension ranges.
    IgnoreExtensions,
}

/// Prints `file` as `.proto` text in `style`.
pub fn print(file: &FileDescriptor, style: Style) -> String {
    let mut printer = Printer {
        file,
        style,
        syntax: Syntax::of(file),
        out: String::new(),
        file_message: None,
    };
    printer.file();
    printer.out
}

/// Aggregate option values nested deeper than this are printed empty (prost's decoder refuses
/// more than 100 levels, so a compiled file never has them).
const MAX_VALUE_DEPTH: usize = 100;

const INDENT: &str = "  ";
/// `uninterpreted_option`, in every `*Options` message.
const UNINTERPRETED_OPTION: u32 = 999;
/// Field numbers in `FileDescriptorProto` and `DescriptorProto` (descriptor.proto).
const DESCRIPTOR_EXTENSION_RANGE: u32 = 5;
const EXTENSION_RANGE_OPTIONS: u32 = 3;
/// The highest field number.
const MAX_FIELD_NUMBER: i32 = 536_870_911;
/// The prefix of the custom options `format=ignore_extensions` keeps.
const CONFLUENT_PREFIX: &str = "confluent.";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Syntax {
    Proto2,
    Proto3,
    Other(String),
}

impl Syntax {
    fn of(file: &FileDescriptor) -> Syntax {
        match file.file_descriptor_proto().syntax.as_deref() {
            None | Some("") | Some("proto2") => Syntax::Proto2,
            Some("proto3") => Syntax::Proto3,
            Some(other) => Syntax::Other(other.to_owned()),
        }
    }
}

/// A field or an extension, with what printing it needs.
struct FieldView {
    name: String,
    full_name: String,
    number: u32,
    kind: Kind,
    cardinality: Cardinality,
    proto3_optional: bool,
    default: Option<String>,
    json_name: Option<String>,
    is_extension: bool,
    options: DynamicMessage,
    /// The real (non-synthetic) oneof the field is in.
    oneof: Option<OneofDescriptor>,
    /// A map field: the kinds of its key and value.
    map: Option<(Kind, Kind)>,
    /// A field printed in group syntax: the group's message.
    group: Option<MessageDescriptor>,
    /// The nested type of the scope this field declares (its map entry or group), by index.
    tie: Option<usize>,
}

impl FieldView {
    fn of_field(field: &FieldDescriptor, nested: &Positions, syntax: &Syntax) -> Self {
        let raw = field.field_descriptor_proto();
        let kind = field.kind();
        let mut map = None;
        let mut tie = None;
        if field.is_map()
            && let Some(entry) = kind.as_message()
        {
            map = Some((
                entry.map_entry_key_field().kind(),
                entry.map_entry_value_field().kind(),
            ));
            tie = position(nested, entry);
        }
        let (group, group_tie) = group_of(field.is_group(), field.name(), &kind, nested, syntax);
        FieldView {
            name: field.name().to_owned(),
            full_name: field.full_name().to_owned(),
            number: field.number(),
            cardinality: field.cardinality(),
            proto3_optional: raw.proto3_optional.unwrap_or(false),
            default: raw.default_value.clone(),
            json_name: raw.json_name.clone(),
            is_extension: false,
            options: field.options(),
            oneof: field
                .containing_oneof()
                .filter(|oneof| !oneof.is_synthetic()),
            map,
            group,
            tie: tie.or(group_tie),
            kind,
        }
    }

    fn of_extension(extension: &ExtensionDescriptor, nested: &Positions, syntax: &Syntax) -> Self {
        let raw = extension.field_descriptor_proto();
        let kind = extension.kind();
        let (group, tie) = group_of(
            extension.is_group(),
            extension.name(),
            &kind,
            nested,
            syntax,
        );
        FieldView {
            name: extension.name().to_owned(),
            full_name: extension.full_name().to_owned(),
            number: extension.number(),
            cardinality: extension.cardinality(),
            proto3_optional: raw.proto3_optional.unwrap_or(false),
            default: raw.default_value.clone(),
            json_name: raw.json_name.clone(),
            is_extension: true,
            options: extension.options(),
            oneof: None,
            map: None,
            group,
            tie,
            kind,
        }
    }
}

/// The group message of a group-encoded field, and its index among `nested`, when group
/// syntax reproduces the field: its type is a sibling named like the field (capitalised).
fn group_of(
    is_group: bool,
    name: &str,
    kind: &Kind,
    nested: &Positions,
    syntax: &Syntax,
) -> (Option<MessageDescriptor>, Option<usize>) {
    if !is_group || *syntax != Syntax::Proto2 {
        return (None, None);
    }
    match kind.as_message() {
        Some(message) if message.name().to_ascii_lowercase() == name => {
            match position(nested, message) {
                Some(index) => (Some(message.clone()), Some(index)),
                None => (None, None),
            }
        }
        _ => (None, None),
    }
}

/// The nested messages of a scope by full name, to their index.
type Positions = HashMap<String, usize>;

fn positions(nested: &[MessageDescriptor]) -> Positions {
    nested
        .iter()
        .enumerate()
        .map(|(index, message)| (message.full_name().to_owned(), index))
        .collect()
}

fn position(nested: &Positions, message: &MessageDescriptor) -> Option<usize> {
    nested.get(message.full_name()).copied()
}

/// Fields printed together: one field, a oneof with its fields, or an `extend` block.
struct Unit {
    oneof: Option<OneofDescriptor>,
    extendee: Option<String>,
    fields: Vec<FieldView>,
}

impl Unit {
    fn ties(&self) -> Vec<usize> {
        self.fields.iter().filter_map(|field| field.tie).collect()
    }
}

/// A message's fields as units, in declared order: a oneof's fields gathered at its first.
fn field_units(fields: Vec<FieldView>) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::with_capacity(fields.len());
    let mut oneof_units: HashMap<String, usize> = HashMap::new();
    for field in fields {
        if let Some(oneof) = field.oneof.clone() {
            if let Some(unit) = oneof_units
                .get(oneof.name())
                .and_then(|&index| units.get_mut(index))
            {
                unit.fields.push(field);
                continue;
            }
            oneof_units.insert(oneof.name().to_owned(), units.len());
            units.push(Unit {
                oneof: Some(oneof),
                extendee: None,
                fields: vec![field],
            });
        } else {
            units.push(Unit {
                oneof: None,
                extendee: None,
                fields: vec![field],
            });
        }
    }
    units
}

/// Extensions as `extend` blocks: consecutive extensions of one message share a block.
fn extend_units(
    extensions: impl Iterator<Item = ExtensionDescriptor>,
    nested: &Positions,
    syntax: &Syntax,
) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    for extension in extensions {
        let extendee = extension.containing_message().full_name().to_owned();
        let field = FieldView::of_extension(&extension, nested, syntax);
        match units.last_mut() {
            Some(unit) if unit.extendee.as_deref() == Some(extendee.as_str()) => {
                unit.fields.push(field)
            }
            _ => units.push(Unit {
                oneof: None,
                extendee: Some(extendee),
                fields: vec![field],
            }),
        }
    }
    units
}

/// One step of a scope's canonical body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A field unit, by index.
    Unit(usize),
    /// An `extend` block, by index.
    Extend(usize),
    /// A nested message not declared by a field, by index.
    Nested(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Free,
    Unit(usize),
    Extend(usize),
}

/// The order of a scope's field units, `extend` blocks and nested messages that reproduces the
/// order of all three lists, given which nested types units declare (map entries, groups).
/// Field units come in order, each preceded by the nested types declared before it; then
/// `extend` blocks (in a file, only those declaring a group: the others come last); then the
/// remaining nested types.
struct Merge<'a> {
    extends: &'a [Vec<usize>],
    owner: Vec<Owner>,
    emitted: Vec<bool>,
    /// Nested types below this index were flushed (or left to the unit declaring them).
    flushed: usize,
    next_extend: usize,
    steps: Vec<Step>,
}

impl Merge<'_> {
    fn run(
        units: &[Vec<usize>],
        extends: &[Vec<usize>],
        nested: usize,
        file_scope: bool,
        drop_extends: bool,
    ) -> Vec<Step> {
        let mut owner = vec![Owner::Free; nested];
        for (index, ties) in units.iter().enumerate() {
            for &tie in ties {
                if let Some(slot) = owner.get_mut(tie) {
                    *slot = Owner::Unit(index);
                }
            }
        }
        for (index, ties) in extends.iter().enumerate() {
            for &tie in ties {
                if let Some(slot) = owner.get_mut(tie) {
                    *slot = Owner::Extend(index);
                }
            }
        }
        let mut merge = Merge {
            extends,
            owner,
            emitted: vec![false; nested],
            flushed: 0,
            next_extend: 0,
            steps: Vec::new(),
        };
        if drop_extends {
            for ties in extends {
                merge.mark(ties);
            }
            merge.next_extend = extends.len();
        }
        for (index, ties) in units.iter().enumerate() {
            if let Some(&first) = ties.iter().min() {
                merge.flush_before(first);
            }
            merge.mark(ties);
            merge.steps.push(Step::Unit(index));
        }
        let last_early = if file_scope {
            extends.iter().rposition(|ties| !ties.is_empty())
        } else {
            extends.len().checked_sub(1)
        };
        if let Some(last) = last_early {
            for index in 0..=last {
                merge.emit_extend(index);
            }
        }
        for index in 0..nested {
            let free = merge.owner.get(index) == Some(&Owner::Free);
            if free && merge.emitted.get(index) == Some(&false) {
                merge.mark(&[index]);
                merge.steps.push(Step::Nested(index));
            }
        }
        for index in merge.next_extend..extends.len() {
            merge.emit_extend(index);
        }
        merge.steps
    }

    fn mark(&mut self, ties: &[usize]) {
        for &tie in ties {
            if let Some(slot) = self.emitted.get_mut(tie) {
                *slot = true;
            }
        }
    }

    /// Emits the nested types before `end` not yet emitted: free ones directly, those an
    /// `extend` block declares with the blocks up to it.
    fn flush_before(&mut self, end: usize) {
        let start = self.flushed;
        let end = end.min(self.emitted.len());
        self.flushed = self.flushed.max(end);
        for index in start..end {
            if self.emitted.get(index) != Some(&false) {
                continue;
            }
            match self.owner.get(index).copied().unwrap_or(Owner::Free) {
                Owner::Free => {
                    self.mark(&[index]);
                    self.steps.push(Step::Nested(index));
                }
                Owner::Extend(unit) => {
                    while self.next_extend <= unit {
                        self.push_extend();
                    }
                }
                Owner::Unit(_) => {}
            }
        }
    }

    fn emit_extend(&mut self, index: usize) {
        if index < self.next_extend {
            return;
        }
        if let Some(&first) = self.extends.get(index).and_then(|ties| ties.iter().min()) {
            self.flush_before(first);
        }
        while self.next_extend <= index {
            self.push_extend();
        }
    }

    fn push_extend(&mut self) {
        let index = self.next_extend;
        let extends = self.extends;
        if let Some(ties) = extends.get(index) {
            self.mark(ties);
        }
        self.steps.push(Step::Extend(index));
        self.next_extend = index.saturating_add(1);
    }
}

/// One option of an element, printed.
struct OptionEntry {
    /// As printed: `deprecated`, `(my.opt)`.
    name: String,
    /// What normalisation sorts by: the name without parentheses.
    key: String,
    /// 0 for `default` and `json_name`, 1 for standard options, 2 for custom ones.
    rank: u8,
    number: u32,
    value: String,
}

struct Printer<'a> {
    file: &'a FileDescriptor,
    style: Style,
    syntax: Syntax,
    out: String,
    /// The whole file as a dynamic message, decoded on first need (extension range options).
    file_message: Option<Option<DynamicMessage>>,
}

impl Printer<'_> {
    fn normalized(&self) -> bool {
        self.style == Style::Normalized
    }

    fn drop_extensions(&self) -> bool {
        self.style == Style::IgnoreExtensions
    }

    fn line(&mut self, depth: usize, text: &str) {
        for _ in 0..depth {
            self.out.push_str(INDENT);
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    /// A blank line, unless at the start or after one.
    fn blank(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn file(&mut self) {
        let file = self.file;
        let raw = file.file_descriptor_proto();
        match self.syntax.clone() {
            Syntax::Proto2 => {
                if !self.normalized() {
                    self.line(0, "syntax = \"proto2\";");
                }
            }
            Syntax::Proto3 => self.line(0, "syntax = \"proto3\";"),
            Syntax::Other(other) => self.line(0, &format!("syntax = {};", quote_str(&other))),
        }
        if !file.package_name().is_empty() {
            self.line(0, &format!("package {};", file.package_name()));
        }
        self.imports(raw);
        let options = self.option_entries(file.package_name(), &file.options(), Vec::new());
        if !options.is_empty() {
            self.blank();
            self.option_statements(0, &options);
        }

        let messages: Vec<MessageDescriptor> = file.messages().collect();
        let extends = extend_units(file.extensions(), &positions(&messages), &self.syntax);
        if self.normalized() {
            let owned = owned_by(&[], &extends, messages.len());
            for (message, owned) in messages.iter().zip(&owned) {
                if !owned {
                    self.blank();
                    self.message(message, 0);
                }
            }
            for enumeration in file.enums() {
                self.blank();
                self.enumeration(&enumeration, 0);
            }
            for (extendee, fields) in merged_extends(&extends) {
                self.blank();
                self.extend_block(0, &extendee, &fields);
            }
        } else {
            let ties: Vec<Vec<usize>> = extends.iter().map(Unit::ties).collect();
            let steps = Merge::run(&[], &ties, messages.len(), true, self.drop_extensions());
            let split = steps
                .iter()
                .rposition(|step| matches!(step, Step::Nested(_)))
                .map_or(0, |index| index.saturating_add(1));
            let (before, after) = steps.split_at(split.min(steps.len()));
            for step in before {
                self.blank();
                self.step(*step, &[], &extends, &messages, 0);
            }
            for enumeration in file.enums() {
                self.blank();
                self.enumeration(&enumeration, 0);
            }
            for step in after {
                self.blank();
                self.step(*step, &[], &extends, &messages, 0);
            }
        }
        for service in file.services() {
            self.blank();
            self.service(&service, 0);
        }
    }

    fn imports(&mut self, raw: &prost_types::FileDescriptorProto) {
        if raw.dependency.is_empty() {
            return;
        }
        self.blank();
        let modifier = |index: usize| -> &'static str {
            let index = i32::try_from(index).ok();
            if index.is_some_and(|index| raw.public_dependency.contains(&index)) {
                "public "
            } else if index.is_some_and(|index| raw.weak_dependency.contains(&index)) {
                "weak "
            } else {
                ""
            }
        };
        let mut imports: Vec<(&'static str, &str)> = raw
            .dependency
            .iter()
            .enumerate()
            .map(|(index, name)| (modifier(index), name.as_str()))
            .collect();
        if self.normalized() {
            let rank = |modifier: &str| match modifier {
                "" => 0,
                "public " => 1,
                _ => 2,
            };
            imports.sort_by(|a, b| rank(a.0).cmp(&rank(b.0)).then_with(|| a.1.cmp(b.1)));
            imports.dedup();
        }
        for (modifier, name) in imports {
            self.line(0, &format!("import {modifier}{};", quote_str(name)));
        }
    }

    fn step(
        &mut self,
        step: Step,
        units: &[Unit],
        extends: &[Unit],
        nested: &[MessageDescriptor],
        depth: usize,
    ) {
        match step {
            Step::Unit(index) => {
                if let Some(unit) = units.get(index) {
                    self.field_unit(unit, depth);
                }
            }
            Step::Extend(index) => {
                if let Some(unit) = extends.get(index) {
                    let fields: Vec<&FieldView> = unit.fields.iter().collect();
                    let extendee = unit.extendee.clone().unwrap_or_default();
                    self.extend_block(depth, &extendee, &fields);
                }
            }
            Step::Nested(index) => {
                if let Some(message) = nested.get(index) {
                    self.message(message, depth);
                }
            }
        }
    }

    fn message(&mut self, message: &MessageDescriptor, depth: usize) {
        self.line(depth, &format!("message {} {{", message.name()));
        self.message_body(message, depth.saturating_add(1));
        self.line(depth, "}");
    }

    fn message_body(&mut self, message: &MessageDescriptor, depth: usize) {
        let nested: Vec<MessageDescriptor> = message.child_messages().collect();
        let positions = positions(&nested);
        let raw = message.descriptor_proto();
        let fields: Vec<FieldView> = raw
            .field
            .iter()
            .filter_map(|field| message.get_field_by_name(field.name()))
            .map(|field| FieldView::of_field(&field, &positions, &self.syntax))
            .collect();
        let units = field_units(fields);
        let extends = extend_units(message.child_extensions(), &positions, &self.syntax);
        let options = self.option_entries(message.full_name(), &message.options(), Vec::new());

        if self.normalized() {
            self.reserved_normalized(
                depth,
                &message_reserved(raw),
                &raw.reserved_name,
                message_max(raw),
            );
            self.option_statements(depth, &options);
            let mut plain: Vec<&FieldView> = Vec::new();
            let mut groups: Vec<&FieldView> = Vec::new();
            let mut oneofs: Vec<(&Unit, Vec<&FieldView>)> = Vec::new();
            for unit in &units {
                if unit.oneof.is_some() {
                    let mut fields: Vec<&FieldView> = unit.fields.iter().collect();
                    fields.sort_by_key(|field| (field.group.is_some(), field.number));
                    oneofs.push((unit, fields));
                } else {
                    for field in &unit.fields {
                        if field.group.is_some() {
                            groups.push(field);
                        } else {
                            plain.push(field);
                        }
                    }
                }
            }
            plain.sort_by_key(|field| field.number);
            groups.sort_by_key(|field| field.number);
            oneofs.sort_by_key(|(_, fields)| fields.iter().map(|field| field.number).min());
            for field in plain {
                self.field(field, depth, false);
            }
            for (unit, fields) in oneofs {
                if let Some(oneof) = &unit.oneof {
                    self.oneof(oneof, &fields, depth);
                }
            }
            for field in groups {
                self.field(field, depth, false);
            }
            let mut ranges: Vec<(usize, &prost_types::descriptor_proto::ExtensionRange)> =
                raw.extension_range.iter().enumerate().collect();
            ranges.sort_by_key(|(_, range)| (range.start(), range.end()));
            for (index, range) in ranges {
                let text = range_text(
                    range.start(),
                    range.end().saturating_sub(1),
                    message_max(raw),
                );
                let options = self.extension_range_options(message, index, range);
                self.line(depth, &format!("extensions {text}{options};"));
            }
            for (extendee, fields) in merged_extends(&extends) {
                self.extend_block(depth, &extendee, &fields);
            }
            let owned = owned_by(&units, &extends, nested.len());
            for (child, owned) in nested.iter().zip(&owned) {
                if !owned {
                    self.message(child, depth);
                }
            }
        } else {
            self.option_statements(depth, &options);
            self.reserved_canonical(
                depth,
                &message_reserved(raw),
                &raw.reserved_name,
                message_max(raw),
            );
            if !self.drop_extensions() {
                for (index, range) in raw.extension_range.iter().enumerate() {
                    let text = range_text(
                        range.start(),
                        range.end().saturating_sub(1),
                        message_max(raw),
                    );
                    let options = self.extension_range_options(message, index, range);
                    self.line(depth, &format!("extensions {text}{options};"));
                }
            }
            let unit_ties: Vec<Vec<usize>> = units.iter().map(Unit::ties).collect();
            let extend_ties: Vec<Vec<usize>> = extends.iter().map(Unit::ties).collect();
            let steps = Merge::run(
                &unit_ties,
                &extend_ties,
                nested.len(),
                false,
                self.drop_extensions(),
            );
            for step in steps {
                self.step(step, &units, &extends, &nested, depth);
            }
        }
        for enumeration in message.child_enums() {
            self.enumeration(&enumeration, depth);
        }
    }

    fn field_unit(&mut self, unit: &Unit, depth: usize) {
        match &unit.oneof {
            Some(oneof) => {
                let fields: Vec<&FieldView> = unit.fields.iter().collect();
                self.oneof(oneof, &fields, depth);
            }
            None => {
                for field in &unit.fields {
                    self.field(field, depth, false);
                }
            }
        }
    }

    fn oneof(&mut self, oneof: &OneofDescriptor, fields: &[&FieldView], depth: usize) {
        self.line(depth, &format!("oneof {} {{", oneof.name()));
        let inner = depth.saturating_add(1);
        let options = self.option_entries(oneof.full_name(), &oneof.options(), Vec::new());
        self.option_statements(inner, &options);
        for field in fields {
            self.field(field, inner, true);
        }
        self.line(depth, "}");
    }

    fn extend_block(&mut self, depth: usize, extendee: &str, fields: &[&FieldView]) {
        self.line(depth, &format!("extend .{extendee} {{"));
        let inner = depth.saturating_add(1);
        for field in fields {
            self.field(field, inner, false);
        }
        self.line(depth, "}");
    }

    fn field(&mut self, field: &FieldView, depth: usize, in_oneof: bool) {
        let label = self.label(field, in_oneof);
        let options = self.field_options(field);
        if let Some(group) = &field.group {
            self.line(
                depth,
                &format!(
                    "{label}group {} = {}{options} {{",
                    group.name(),
                    field.number
                ),
            );
            self.message_body(group, depth.saturating_add(1));
            self.line(depth, "}");
            return;
        }
        let ty = match &field.map {
            Some((key, value)) => format!("map<{}, {}>", type_text(key), type_text(value)),
            None => type_text(&field.kind),
        };
        self.line(
            depth,
            &format!("{label}{ty} {} = {}{options};", field.name, field.number),
        );
    }

    fn label(&self, field: &FieldView, in_oneof: bool) -> &'static str {
        if in_oneof || field.map.is_some() {
            return "";
        }
        match (field.cardinality, &self.syntax) {
            (Cardinality::Repeated, _) => "repeated ",
            (Cardinality::Required, Syntax::Other(_)) => "",
            (Cardinality::Required, _) => "required ",
            (Cardinality::Optional, Syntax::Proto2) => "optional ",
            (Cardinality::Optional, _) if field.proto3_optional => "optional ",
            (Cardinality::Optional, _) => "",
        }
    }

    /// ` [a = 1, b = 2]`, or nothing.
    fn field_options(&self, field: &FieldView) -> String {
        let mut extra = Vec::new();
        if let Some(default) = &field.default {
            extra.push(OptionEntry {
                name: "default".to_owned(),
                key: "default".to_owned(),
                rank: 0,
                number: 0,
                value: default_text(default, &field.kind),
            });
        }
        if let Some(json_name) = &field.json_name
            && !field.is_extension
            && *json_name != default_json_name(&field.name)
        {
            extra.push(OptionEntry {
                name: "json_name".to_owned(),
                key: "json_name".to_owned(),
                rank: 0,
                number: 1,
                value: quote_str(json_name),
            });
        }
        let entries = self.option_entries(&field.full_name, &field.options, extra);
        bracketed(&entries)
    }

    fn enumeration(&mut self, enumeration: &EnumDescriptor, depth: usize) {
        self.line(depth, &format!("enum {} {{", enumeration.name()));
        let inner = depth.saturating_add(1);
        let raw = enumeration.enum_descriptor_proto();
        let reserved: Vec<(i32, i32)> = raw
            .reserved_range
            .iter()
            .map(|range| (range.start(), range.end()))
            .collect();
        let options =
            self.option_entries(enumeration.full_name(), &enumeration.options(), Vec::new());
        if self.normalized() {
            self.reserved_normalized(inner, &reserved, &raw.reserved_name, i32::MAX);
            self.option_statements(inner, &options);
        } else {
            self.option_statements(inner, &options);
            self.reserved_canonical(inner, &reserved, &raw.reserved_name, i32::MAX);
        }
        let mut values: Vec<_> = raw
            .value
            .iter()
            .filter_map(|value| enumeration.get_value_by_name(value.name()))
            .collect();
        if self.normalized()
            && let Some(rest) = values.get_mut(1..)
        {
            // The first value stays first: it is the default of proto2 fields, and proto3
            // requires it to be 0.
            rest.sort_by(|a, b| {
                a.number()
                    .cmp(&b.number())
                    .then_with(|| a.name().cmp(b.name()))
            });
        }
        for value in values {
            let options =
                bracketed(&self.option_entries(value.full_name(), &value.options(), Vec::new()));
            self.line(
                inner,
                &format!("{} = {}{options};", value.name(), value.number()),
            );
        }
        self.line(depth, "}");
    }

    fn service(&mut self, service: &ServiceDescriptor, depth: usize) {
        self.line(depth, &format!("service {} {{", service.name()));
        let inner = depth.saturating_add(1);
        let options = self.option_entries(service.full_name(), &service.options(), Vec::new());
        self.option_statements(inner, &options);
        for method in service.methods() {
            self.method(&method, inner);
        }
        self.line(depth, "}");
    }

    fn method(&mut self, method: &MethodDescriptor, depth: usize) {
        let stream = |streaming: bool| if streaming { "stream " } else { "" };
        let head = format!(
            "rpc {} ({}.{}) returns ({}.{})",
            method.name(),
            stream(method.is_client_streaming()),
            method.input().full_name(),
            stream(method.is_server_streaming()),
            method.output().full_name(),
        );
        let options = self.option_entries(method.full_name(), &method.options(), Vec::new());
        if options.is_empty() {
            self.line(depth, &format!("{head};"));
        } else {
            self.line(depth, &format!("{head} {{"));
            self.option_statements(depth.saturating_add(1), &options);
            self.line(depth, "}");
        }
    }

    /// `reserved 1, 5 to 9;` and `reserved "a", "b";`, in declared order.
    fn reserved_canonical(
        &mut self,
        depth: usize,
        ranges: &[(i32, i32)],
        names: &[String],
        max: i32,
    ) {
        if !ranges.is_empty() {
            let ranges: Vec<String> = ranges
                .iter()
                .map(|&(start, end)| range_text(start, end, max))
                .collect();
            self.line(depth, &format!("reserved {};", ranges.join(", ")));
        }
        if !names.is_empty() {
            let names: Vec<String> = names.iter().map(|name| quote_str(name)).collect();
            self.line(depth, &format!("reserved {};", names.join(", ")));
        }
    }

    /// One `reserved` statement a value: numbers by start, then names by name.
    fn reserved_normalized(
        &mut self,
        depth: usize,
        ranges: &[(i32, i32)],
        names: &[String],
        max: i32,
    ) {
        let mut sorted: Vec<(i32, i32)> = ranges.to_vec();
        sorted.sort();
        sorted.dedup();
        for (start, end) in sorted {
            self.line(depth, &format!("reserved {};", range_text(start, end, max)));
        }
        let mut names: Vec<&String> = names.iter().collect();
        names.sort();
        names.dedup();
        for name in names {
            self.line(depth, &format!("reserved {};", quote_str(name)));
        }
    }

    fn option_statements(&mut self, depth: usize, entries: &[OptionEntry]) {
        for entry in entries {
            self.line(depth, &format!("option {} = {};", entry.name, entry.value));
        }
    }

    /// The options set in `options` of the element named `scope` (plus `extra`), one entry a
    /// value, sorted for the style.
    fn option_entries(
        &self,
        scope: &str,
        options: &DynamicMessage,
        mut entries: Vec<OptionEntry>,
    ) -> Vec<OptionEntry> {
        for (field, value) in options.fields() {
            if field.number() == UNINTERPRETED_OPTION {
                continue;
            }
            let head = OptionEntry {
                name: field.name().to_owned(),
                key: field.name().to_owned(),
                rank: 1,
                number: field.number(),
                value: String::new(),
            };
            self.push_option(&mut entries, &head, &field.kind(), value);
        }
        for (extension, value) in options.extensions() {
            let full_name = extension.full_name();
            if self.drop_extensions() && !full_name.starts_with(CONFLUENT_PREFIX) {
                continue;
            }
            let name = if shadowed(self.file.parent_pool(), scope, full_name) {
                format!("(.{full_name})")
            } else {
                format!("({full_name})")
            };
            let head = OptionEntry {
                name,
                key: full_name.to_owned(),
                rank: 2,
                number: extension.number(),
                value: String::new(),
            };
            self.push_option(&mut entries, &head, &extension.kind(), value);
        }
        if self.normalized() {
            entries.sort_by(|a, b| a.key.cmp(&b.key));
        } else {
            entries.sort_by_key(|entry| (entry.rank, entry.number));
        }
        entries
    }

    /// Adds the entries of one option (`head` with each of its values).
    fn push_option(
        &self,
        entries: &mut Vec<OptionEntry>,
        head: &OptionEntry,
        kind: &Kind,
        value: &Value,
    ) {
        let mut push = |value: String| {
            entries.push(OptionEntry {
                name: head.name.clone(),
                key: head.key.clone(),
                rank: head.rank,
                number: head.number,
                value,
            })
        };
        match value {
            // A repeated option is set once a value.
            Value::List(items) => {
                for item in items {
                    push(self.value_text(item, kind, 0));
                }
            }
            Value::Map(map) => {
                for (key, value) in sorted_map(map) {
                    push(self.map_entry_text(key, value, kind, 0));
                }
            }
            other => push(self.value_text(other, kind, 0)),
        }
    }

    /// A value as the text format writes it; messages as `{ ... }` on one line.
    fn value_text(&self, value: &Value, kind: &Kind, depth: usize) -> String {
        match value {
            Value::Bool(value) => value.to_string(),
            Value::I32(value) => value.to_string(),
            Value::I64(value) => value.to_string(),
            Value::U32(value) => value.to_string(),
            Value::U64(value) => value.to_string(),
            // An option's own value cannot be `inf` or `nan` (protox reads identifiers there as
            // enum values): infinities are written as overflowing literals. Text-format values
            // (in aggregates) take the identifiers.
            Value::F32(value) if depth == 0 && value.is_infinite() => {
                infinity_literal(*value > 0.0)
            }
            Value::F64(value) if depth == 0 && value.is_infinite() => {
                infinity_literal(*value > 0.0)
            }
            Value::F32(value) => f32_text(*value),
            Value::F64(value) => f64_text(*value),
            Value::String(value) => quote_str(value),
            Value::Bytes(value) => quote_bytes(value),
            Value::EnumNumber(number) => kind
                .as_enum()
                .and_then(|enumeration| enumeration.get_value(*number))
                .map_or_else(|| number.to_string(), |value| value.name().to_owned()),
            Value::Message(message) => self.aggregate(message, depth.saturating_add(1)),
            Value::List(items) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|item| self.value_text(item, kind, depth))
                    .collect();
                format!("[{}]", items.join(", "))
            }
            Value::Map(map) => {
                let items: Vec<String> = sorted_map(map)
                    .into_iter()
                    .map(|(key, value)| self.map_entry_text(key, value, kind, depth))
                    .collect();
                format!("[{}]", items.join(", "))
            }
        }
    }

    /// `{ key: K value: V }` for an entry of a map field of kind `kind`.
    fn map_entry_text(&self, key: &MapKey, value: &Value, kind: &Kind, depth: usize) -> String {
        let value_kind = kind
            .as_message()
            .map_or(Kind::Bool, |entry| entry.map_entry_value_field().kind());
        let value = self.text_entry("value", &value_kind, value, depth.saturating_add(1));
        format!("{{ key: {} {value} }}", map_key_text(key))
    }

    /// A message value in the text format: `{ a: 1 b { c: "x" } }`.
    fn aggregate(&self, message: &DynamicMessage, depth: usize) -> String {
        if depth > MAX_VALUE_DEPTH {
            return "{}".to_owned();
        }
        let mut parts: Vec<(String, String)> = Vec::new();
        for (field, value) in message.fields() {
            let kind = field.kind();
            let name = match (field.is_group(), kind.as_message()) {
                (true, Some(group)) => group.name().to_owned(),
                _ => field.name().to_owned(),
            };
            self.text_field(&mut parts, &name, &kind, value, depth);
        }
        for (extension, value) in message.extensions() {
            let name = format!("[{}]", extension.full_name());
            self.text_field(&mut parts, &name, &extension.kind(), value, depth);
        }
        if self.normalized() {
            parts.sort_by(|a, b| a.0.cmp(&b.0));
        }
        if parts.is_empty() {
            return "{}".to_owned();
        }
        let parts: Vec<String> = parts.into_iter().map(|(_, text)| text).collect();
        format!("{{ {} }}", parts.join(" "))
    }

    fn text_field(
        &self,
        parts: &mut Vec<(String, String)>,
        name: &str,
        kind: &Kind,
        value: &Value,
        depth: usize,
    ) {
        match value {
            Value::List(items) => {
                for item in items {
                    parts.push((name.to_owned(), self.text_entry(name, kind, item, depth)));
                }
            }
            Value::Map(map) => {
                for (key, value) in sorted_map(map) {
                    let entry = self.map_entry_text(key, value, kind, depth);
                    parts.push((name.to_owned(), format!("{name} {entry}")));
                }
            }
            other => parts.push((name.to_owned(), self.text_entry(name, kind, other, depth))),
        }
    }

    fn text_entry(&self, name: &str, kind: &Kind, value: &Value, depth: usize) -> String {
        match value {
            Value::Message(message) => {
                format!(
                    "{name} {}",
                    self.aggregate(message, depth.saturating_add(1))
                )
            }
            other => format!("{name}: {}", self.value_text(other, kind, depth)),
        }
    }

    /// ` [opts]` of the extension range at `index` of `message`: read from the whole encoded
    /// file, since prost-reflect offers no descriptor for extension ranges.
    fn extension_range_options(
        &mut self,
        message: &MessageDescriptor,
        index: usize,
        range: &prost_types::descriptor_proto::ExtensionRange,
    ) -> String {
        if range.options.is_none() {
            return String::new();
        }
        if self.file_message.is_none() {
            self.file_message = Some(decode_file(self.file));
        }
        let options = self
            .file_message
            .as_ref()
            .and_then(Option::as_ref)
            .and_then(|file| at_path(file, message.path()))
            .and_then(|message| list_item(&message, DESCRIPTOR_EXTENSION_RANGE, index))
            .and_then(|range| {
                range
                    .get_field_by_number(EXTENSION_RANGE_OPTIONS)
                    .and_then(|value| value.as_message().cloned())
            });
        match options {
            Some(options) => {
                bracketed(&self.option_entries(message.full_name(), &options, Vec::new()))
            }
            None => String::new(),
        }
    }
}

/// Whether the custom option `full_name`, written without a leading dot, could resolve to
/// something else from the element named `scope`: whether a scope enclosing the element (or
/// the element itself) declares a symbol named like the option's first component. Names are
/// resolved from the innermost scope out, the first component first; this errs on the side of
/// the leading dot.
fn shadowed(pool: &DescriptorPool, scope: &str, full_name: &str) -> bool {
    let first = full_name.split('.').next().unwrap_or(full_name);
    let mut prefix = scope;
    while !prefix.is_empty() {
        if symbol_exists(pool, &format!("{prefix}.{first}")) {
            return true;
        }
        prefix = prefix.rsplit_once('.').map_or("", |(parent, _)| parent);
    }
    false
}

/// Whether `name` is a symbol of `pool`: a package (or a package's prefix), message, enum,
/// enum value, field, oneof, extension, service or method.
fn symbol_exists(pool: &DescriptorPool, name: &str) -> bool {
    if pool.get_message_by_name(name).is_some()
        || pool.get_enum_by_name(name).is_some()
        || pool.get_extension_by_name(name).is_some()
        || pool.get_service_by_name(name).is_some()
    {
        return true;
    }
    let is_package = |package: &str| {
        package == name
            || package
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('.'))
    };
    if pool.files().any(|file| is_package(file.package_name())) {
        return true;
    }
    let Some((parent, last)) = name.rsplit_once('.') else {
        return false;
    };
    if let Some(message) = pool.get_message_by_name(parent)
        && (message.get_field_by_name(last).is_some()
            || message.oneofs().any(|oneof| oneof.name() == last)
            || message
                .child_enums()
                .any(|enumeration| enumeration.get_value_by_name(last).is_some()))
    {
        return true;
    }
    if let Some(service) = pool.get_service_by_name(parent)
        && service.methods().any(|method| method.name() == last)
    {
        return true;
    }
    pool.files()
        .filter(|file| file.package_name() == parent)
        .any(|file| {
            file.enums()
                .any(|enumeration| enumeration.get_value_by_name(last).is_some())
        })
}

/// The whole file as a `google.protobuf.FileDescriptorProto` message of its own pool (so that
/// custom options decode as extensions), or of the global pool.
fn decode_file(file: &FileDescriptor) -> Option<DynamicMessage> {
    const NAME: &str = "google.protobuf.FileDescriptorProto";
    let descriptor = file
        .parent_pool()
        .get_message_by_name(NAME)
        .or_else(|| DescriptorPool::global().get_message_by_name(NAME))?;
    DynamicMessage::decode(descriptor, file.encode_to_vec().as_slice()).ok()
}

/// The message at a descriptor path (pairs of field number and index) below `root`.
fn at_path(root: &DynamicMessage, path: &[i32]) -> Option<DynamicMessage> {
    let mut current = root.clone();
    for pair in path.chunks(2) {
        let (&field, &index) = (pair.first()?, pair.get(1)?);
        current = list_item(
            &current,
            u32::try_from(field).ok()?,
            usize::try_from(index).ok()?,
        )?;
    }
    Some(current)
}

fn list_item(message: &DynamicMessage, field: u32, index: usize) -> Option<DynamicMessage> {
    let value = message.get_field_by_number(field)?;
    value.as_list()?.get(index)?.as_message().cloned()
}

/// Which nested types of a scope its fields and extensions declare (printed with them).
fn owned_by(units: &[Unit], extends: &[Unit], nested: usize) -> Vec<bool> {
    let mut owned = vec![false; nested];
    for unit in units.iter().chain(extends) {
        for tie in unit.ties() {
            if let Some(slot) = owned.get_mut(tie) {
                *slot = true;
            }
        }
    }
    owned
}

/// Extensions merged per extendee (in order of first appearance), sorted by number.
fn merged_extends(extends: &[Unit]) -> Vec<(String, Vec<&FieldView>)> {
    let mut merged: Vec<(String, Vec<&FieldView>)> = Vec::new();
    for unit in extends {
        let extendee = unit.extendee.clone().unwrap_or_default();
        let slot = match merged.iter().position(|(name, _)| *name == extendee) {
            Some(index) => merged.get_mut(index),
            None => {
                merged.push((extendee, Vec::new()));
                merged.last_mut()
            }
        };
        if let Some((_, fields)) = slot {
            fields.extend(unit.fields.iter());
        }
    }
    for (_, fields) in &mut merged {
        fields.sort_by_key(|field| field.number);
    }
    merged
}

/// A message's reserved ranges as inclusive pairs.
fn message_reserved(raw: &prost_types::DescriptorProto) -> Vec<(i32, i32)> {
    raw.reserved_range
        .iter()
        .map(|range| (range.start(), range.end().saturating_sub(1)))
        .collect()
}

/// `5`, `5 to 9` or `5 to max`, from an inclusive range; `max` is the number `max` stands for.
fn range_text(start: i32, end: i32, max: i32) -> String {
    if end <= start {
        start.to_string()
    } else if end == max {
        format!("{start} to max")
    } else {
        format!("{start} to {end}")
    }
}

/// What `max` stands for in a message's ranges: the highest field number, or in a message
/// set the highest extension number.
fn message_max(raw: &prost_types::DescriptorProto) -> i32 {
    let message_set = raw
        .options
        .as_ref()
        .and_then(|options| options.message_set_wire_format)
        .unwrap_or(false);
    if message_set {
        i32::MAX.saturating_sub(1)
    } else {
        MAX_FIELD_NUMBER
    }
}

/// ` [a = 1, b = 2]`, or nothing.
fn bracketed(entries: &[OptionEntry]) -> String {
    if entries.is_empty() {
        return String::new();
    }
    let entries: Vec<String> = entries
        .iter()
        .map(|entry| format!("{} = {}", entry.name, entry.value))
        .collect();
    format!(" [{}]", entries.join(", "))
}

fn type_text(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double".to_owned(),
        Kind::Float => "float".to_owned(),
        Kind::Int32 => "int32".to_owned(),
        Kind::Int64 => "int64".to_owned(),
        Kind::Uint32 => "uint32".to_owned(),
        Kind::Uint64 => "uint64".to_owned(),
        Kind::Sint32 => "sint32".to_owned(),
        Kind::Sint64 => "sint64".to_owned(),
        Kind::Fixed32 => "fixed32".to_owned(),
        Kind::Fixed64 => "fixed64".to_owned(),
        Kind::Sfixed32 => "sfixed32".to_owned(),
        Kind::Sfixed64 => "sfixed64".to_owned(),
        Kind::Bool => "bool".to_owned(),
        Kind::String => "string".to_owned(),
        Kind::Bytes => "bytes".to_owned(),
        Kind::Message(message) => format!(".{}", message.full_name()),
        Kind::Enum(enumeration) => format!(".{}", enumeration.full_name()),
    }
}

/// The `json_name` the compiler derives from a field name (protoc's `ToJsonName`).
fn default_json_name(name: &str) -> String {
    let mut json = String::with_capacity(name.len());
    let mut upper = false;
    for ch in name.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            json.push(ch.to_ascii_uppercase());
            upper = false;
        } else {
            json.push(ch);
        }
    }
    json
}

/// A field's `default` as a literal, from the descriptor's text form of it.
fn default_text(raw: &str, kind: &Kind) -> String {
    match kind {
        Kind::String => quote_str(raw),
        // The descriptor holds bytes C-escaped.
        Kind::Bytes => match unescape(raw) {
            Some(bytes) => quote_bytes(&bytes),
            None => quote_str(raw),
        },
        Kind::Float | Kind::Double => match raw.parse::<f64>() {
            Ok(value) => f64_text(value),
            Err(_) => raw.to_owned(),
        },
        _ => raw.to_owned(),
    }
}

fn f64_text(value: f64) -> String {
    if value.is_nan() {
        "nan".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        // Debug is the shortest text that reads back as the same value, in exponent form when
        // very large or small.
        format!("{value:?}")
    }
}

/// An infinity as a literal that overflows to it.
fn infinity_literal(positive: bool) -> String {
    if positive { "1e999" } else { "-1e999" }.to_owned()
}

/// A float option, as short as reads back (through a double, as the compiler reads it) as the
/// same float.
fn f32_text(value: f32) -> String {
    if !value.is_finite() {
        return f64_text(f64::from(value));
    }
    let short = format!("{value:?}");
    let reads_back = short
        .parse::<f64>()
        .is_ok_and(|parsed| (parsed as f32).to_bits() == value.to_bits());
    if reads_back {
        short
    } else {
        f64_text(f64::from(value))
    }
}

fn map_key_text(key: &MapKey) -> String {
    match key {
        MapKey::Bool(value) => value.to_string(),
        MapKey::I32(value) => value.to_string(),
        MapKey::I64(value) => value.to_string(),
        MapKey::U32(value) => value.to_string(),
        MapKey::U64(value) => value.to_string(),
        MapKey::String(value) => quote_str(value),
    }
}

fn sorted_map(map: &HashMap<MapKey, Value>) -> Vec<(&MapKey, &Value)> {
    let mut entries: Vec<(&MapKey, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// A string literal: printable characters as they are, the rest escaped.
fn quote_str(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len().saturating_add(2));
    quoted.push('"');
    for ch in text.chars() {
        if ch.is_ascii() {
            push_escaped_byte(&mut quoted, u8::try_from(u32::from(ch)).unwrap_or(b'?'));
        } else if ch.is_control() {
            let mut buffer = [0u8; 4];
            for &byte in ch.encode_utf8(&mut buffer).as_bytes() {
                push_octal(&mut quoted, byte);
            }
        } else {
            quoted.push(ch);
        }
    }
    quoted.push('"');
    quoted
}

/// A bytes literal: printable ASCII as it is, every other byte escaped.
fn quote_bytes(bytes: &[u8]) -> String {
    let mut quoted = String::with_capacity(bytes.len().saturating_add(2));
    quoted.push('"');
    for &byte in bytes {
        push_escaped_byte(&mut quoted, byte);
    }
    quoted.push('"');
    quoted
}

fn push_escaped_byte(out: &mut String, byte: u8) {
    match byte {
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        b'\\' => out.push_str("\\\\"),
        b'"' => out.push_str("\\\""),
        b'\'' => out.push_str("\\'"),
        0x20..=0x7e => out.push(char::from(byte)),
        _ => push_octal(out, byte),
    }
}

fn push_octal(out: &mut String, byte: u8) {
    out.push('\\');
    for shift in [6u8, 3, 0] {
        out.push(char::from(b'0' + ((byte >> shift) & 7)));
    }
}

/// Reverses C-style escaping (`\n`, `\\`, `\"`, `\123`, `\x7f`, ...); `None` for an escape it
/// does not know.
fn unescape(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0usize;
    while let Some(&byte) = bytes.get(index) {
        index = index.saturating_add(1);
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let escape = *bytes.get(index)?;
        index = index.saturating_add(1);
        let value = match escape {
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'a' => 0x07,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'v' => 0x0b,
            b'\\' | b'\'' | b'"' | b'?' => escape,
            b'0'..=b'7' => {
                let mut value = u32::from(escape - b'0');
                for _ in 0..2 {
                    match bytes.get(index) {
                        Some(&digit @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(digit - b'0');
                            index = index.saturating_add(1);
                        }
                        _ => break,
                    }
                }
                u8::try_from(value).ok()?
            }
            b'x' | b'X' => {
                let mut value = 0u32;
                let mut digits = 0;
                while digits < 2 {
                    match bytes
                        .get(index)
                        .and_then(|&digit| char::from(digit).to_digit(16))
                    {
                        Some(digit) => {
                            value = value * 16 + digit;
                            index = index.saturating_add(1);
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    return None;
                }
                u8::try_from(value).ok()?
            }
            _ => return None,
        };
        out.push(value);
    }
    Some(out)
}
