//! Printing compiled files back as `.proto` text: every file under `tests/data/print` prints in
//! each style to text that compiles back to the same descriptor (canonical: exactly; normalized:
//! up to the order normalisation changes), printing is idempotent, and files that differ only in
//! order, whitespace or comments normalise to the same text.

use std::collections::BTreeMap;
use std::path::PathBuf;

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor,
    ReflectMessage as _,
};
use tributary_protobuf::print::{Style, print};
use tributary_protobuf::{Budgets, ProtoSchema};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/print")
}

/// Every `.proto` under `tests/data/print`, by name.
fn data_files() -> Vec<(String, String)> {
    let dir = data_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
    let mut files: Vec<(String, String)> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .map(|path| {
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
            (name, text)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 12,
        "expected at least 12 data files, found {}",
        files.len()
    );
    files
}

fn data_file(name: &str) -> String {
    let path = data_dir().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

fn parse_with(text: &str, budgets: &Budgets) -> ProtoSchema {
    match ProtoSchema::parse(text, &[], budgets) {
        Ok(schema) => schema,
        Err(error) => panic!("does not compile: {error}\n--- text ---\n{text}"),
    }
}

fn parse(text: &str) -> ProtoSchema {
    parse_with(text, &Budgets::default())
}

fn printed(text: &str, style: Style) -> String {
    print(parse(text).file(), style)
}

/// The whole file, options and extensions included, as a message of `pool`'s descriptor.proto.
fn as_message(file: &FileDescriptor, pool: &DescriptorPool) -> DynamicMessage {
    const NAME: &str = "google.protobuf.FileDescriptorProto";
    let descriptor = pool
        .get_message_by_name(NAME)
        .or_else(|| DescriptorPool::global().get_message_by_name(NAME))
        .unwrap_or_else(|| panic!("no {NAME}"));
    let mut message = DynamicMessage::decode(descriptor, file.encode_to_vec().as_slice())
        .unwrap_or_else(|error| panic!("cannot decode the file: {error}"));
    // source_code_info
    message.clear_field_by_number(9);
    message
}

/// The two files are the same descriptor, every option included.
fn assert_same_descriptor(name: &str, original: &FileDescriptor, printed: &FileDescriptor) {
    let mut a = original.file_descriptor_proto().clone();
    let mut b = printed.file_descriptor_proto().clone();
    a.source_code_info = None;
    b.source_code_info = None;
    assert_eq!(a, b, "{name}: the descriptors differ");
    let pool = original.parent_pool();
    assert_eq!(
        as_message(original, pool),
        as_message(printed, pool),
        "{name}: the options differ"
    );
}

/// What a file declares, keyed by element, without the order normalisation may change: a
/// fact text and the element's options.
type Facts = BTreeMap<String, (String, Option<DynamicMessage>)>;

fn facts(file: &FileDescriptor) -> Facts {
    let mut facts = Facts::new();
    let raw = file.file_descriptor_proto();
    facts.insert(
        "file".to_owned(),
        (
            format!(
                "syntax {} package {}",
                raw.syntax.as_deref().unwrap_or("proto2"),
                file.package_name()
            ),
            Some(file.options()),
        ),
    );
    let mut imports: Vec<String> = raw
        .dependency
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let index = i32::try_from(index).unwrap_or(i32::MAX);
            format!(
                "{name} public={} weak={}",
                raw.public_dependency.contains(&index),
                raw.weak_dependency.contains(&index)
            )
        })
        .collect();
    imports.sort();
    facts.insert("imports".to_owned(), (imports.join("; "), None));
    let group_types: Vec<String> = all_messages(file)
        .iter()
        .flat_map(|message| message.fields().collect::<Vec<_>>())
        .filter(|field| field.is_group())
        .filter_map(|field| field.kind().as_message().map(|m| m.full_name().to_owned()))
        .chain(
            all_extensions(file)
                .iter()
                .filter(|extension| extension.is_group())
                .filter_map(|extension| {
                    extension
                        .kind()
                        .as_message()
                        .map(|m| m.full_name().to_owned())
                }),
        )
        .collect();
    let declared = |messages: Vec<MessageDescriptor>| -> Vec<String> {
        messages
            .into_iter()
            .filter(|message| {
                !message.is_map_entry() && !group_types.contains(&message.full_name().to_owned())
            })
            .map(|message| message.name().to_owned())
            .collect()
    };
    facts.insert(
        "messages".to_owned(),
        (format!("{:?}", declared(file.messages().collect())), None),
    );
    let mut enums: Vec<_> = file.enums().collect();
    for message in all_messages(file) {
        let raw = message.descriptor_proto();
        let mut reserved: Vec<(i32, i32)> = raw
            .reserved_range
            .iter()
            .map(|range| (range.start(), range.end()))
            .collect();
        reserved.sort();
        let mut reserved_names = raw.reserved_name.clone();
        reserved_names.sort();
        let mut ranges: Vec<(i32, i32)> = raw
            .extension_range
            .iter()
            .map(|range| (range.start(), range.end()))
            .collect();
        ranges.sort();
        let mut oneofs: Vec<String> = message
            .oneofs()
            .filter(|oneof| !oneof.is_synthetic())
            .map(|oneof| oneof.name().to_owned())
            .collect();
        oneofs.sort();
        let nested_enums: Vec<String> = message
            .child_enums()
            .map(|enumeration| enumeration.name().to_owned())
            .collect();
        facts.insert(
            format!("message {}", message.full_name()),
            (
                format!(
                    "reserved {reserved:?} {reserved_names:?} extensions {ranges:?} oneofs {oneofs:?} nested {:?} enums {nested_enums:?}",
                    declared(message.child_messages().collect())
                ),
                Some(message.options()),
            ),
        );
        for oneof in message.oneofs() {
            facts.insert(
                format!("oneof {}", oneof.full_name()),
                (String::new(), Some(oneof.options())),
            );
        }
        for field in message.fields() {
            facts.insert(
                format!("field {}", field.full_name()),
                (field_fact(&field), Some(field.options())),
            );
        }
        enums.extend(message.child_enums());
    }
    for enumeration in enums {
        let raw = enumeration.enum_descriptor_proto();
        let mut reserved: Vec<(i32, i32)> = raw
            .reserved_range
            .iter()
            .map(|range| (range.start(), range.end()))
            .collect();
        reserved.sort();
        let mut reserved_names = raw.reserved_name.clone();
        reserved_names.sort();
        facts.insert(
            format!("enum {}", enumeration.full_name()),
            (
                format!("reserved {reserved:?} {reserved_names:?}"),
                Some(enumeration.options()),
            ),
        );
        for value in enumeration.values() {
            facts.insert(
                format!("value {}", value.full_name()),
                (value.number().to_string(), Some(value.options())),
            );
        }
    }
    for extension in all_extensions(file) {
        let raw = extension.field_descriptor_proto();
        facts.insert(
            format!("extension {}", extension.full_name()),
            (
                format!(
                    "{} {} of {} {:?} {:?} default {:?} optional {:?}",
                    extension.number(),
                    extension.name(),
                    extension.containing_message().full_name(),
                    extension.cardinality(),
                    kind_name(&extension.kind()),
                    raw.default_value,
                    raw.proto3_optional
                ),
                Some(extension.options()),
            ),
        );
    }
    let services: Vec<String> = file
        .services()
        .map(|service| service.name().to_owned())
        .collect();
    facts.insert("services".to_owned(), (format!("{services:?}"), None));
    for service in file.services() {
        let methods: Vec<String> = service
            .methods()
            .map(|method| method.name().to_owned())
            .collect();
        facts.insert(
            format!("service {}", service.full_name()),
            (format!("{methods:?}"), Some(service.options())),
        );
        for method in service.methods() {
            facts.insert(
                format!("method {}", method.full_name()),
                (
                    format!(
                        "{} {} -> {} {}",
                        method.is_client_streaming(),
                        method.input().full_name(),
                        method.is_server_streaming(),
                        method.output().full_name()
                    ),
                    Some(method.options()),
                ),
            );
        }
    }
    facts
}

fn field_fact(field: &FieldDescriptor) -> String {
    let raw = field.field_descriptor_proto();
    format!(
        "{} {} {:?} {} group={} default {:?} json {:?} oneof {:?} optional {:?}",
        field.number(),
        field.name(),
        field.cardinality(),
        kind_name(&field.kind()),
        field.is_group(),
        raw.default_value,
        raw.json_name,
        field
            .containing_oneof()
            .map(|oneof| oneof.name().to_owned()),
        raw.proto3_optional
    )
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(message) => message.full_name().to_owned(),
        Kind::Enum(enumeration) => enumeration.full_name().to_owned(),
        other => format!("{other:?}"),
    }
}

fn all_messages(file: &FileDescriptor) -> Vec<MessageDescriptor> {
    let mut all = Vec::new();
    let mut stack: Vec<MessageDescriptor> = file.messages().collect();
    while let Some(message) = stack.pop() {
        stack.extend(message.child_messages());
        all.push(message);
    }
    all
}

fn all_extensions(file: &FileDescriptor) -> Vec<prost_reflect::ExtensionDescriptor> {
    let mut all: Vec<_> = file.extensions().collect();
    for message in all_messages(file) {
        all.extend(message.child_extensions());
    }
    all
}

/// The two files declare the same things, up to declaration order.
fn assert_same_semantics(name: &str, original: &FileDescriptor, printed: &FileDescriptor) {
    let a = facts(original);
    let b = facts(printed);
    let keys_a: Vec<&String> = a.keys().collect();
    let keys_b: Vec<&String> = b.keys().collect();
    assert_eq!(keys_a, keys_b, "{name}: the elements differ");
    for (key, (fact_a, options_a)) in &a {
        let Some((fact_b, options_b)) = b.get(key) else {
            panic!("{name}: {key} is missing");
        };
        assert_eq!(fact_a, fact_b, "{name}: {key} differs");
        if let (Some(options_a), Some(options_b)) = (options_a, options_b) {
            // Decoded with the original's descriptors, so that the pools do not differ.
            let options_b = DynamicMessage::decode(
                options_a.descriptor(),
                options_b.encode_to_vec().as_slice(),
            )
            .unwrap_or_else(|error| panic!("{name}: {key}: {error}"));
            assert_eq!(*options_a, options_b, "{name}: the options of {key} differ");
        }
    }
}

#[test]
fn canonical_text_compiles_to_the_same_descriptor() {
    for (name, text) in data_files() {
        let original = parse(&text);
        let canonical = print(original.file(), Style::Canonical);
        let reparsed = parse(&canonical);
        assert_same_descriptor(&name, original.file(), reparsed.file());
        assert_eq!(
            print(reparsed.file(), Style::Canonical),
            canonical,
            "{name}: canonical printing is not idempotent"
        );
        assert!(
            canonical.starts_with("syntax = \""),
            "{name}: the canonical text does not start with its syntax"
        );
    }
}

#[test]
fn normalized_text_compiles_to_the_same_schema() {
    for (name, text) in data_files() {
        let original = parse(&text);
        let normalized = print(original.file(), Style::Normalized);
        let reparsed = parse(&normalized);
        assert_same_semantics(&name, original.file(), reparsed.file());
        assert_eq!(
            print(reparsed.file(), Style::Normalized),
            normalized,
            "{name}: normalized printing is not idempotent"
        );
        // The canonical text of the normalized schema normalises to the same text too.
        assert_eq!(
            printed(&print(reparsed.file(), Style::Canonical), Style::Normalized),
            normalized,
            "{name}"
        );
    }
}

#[test]
fn text_without_extensions_compiles_and_is_idempotent() {
    for (name, text) in data_files() {
        let original = parse(&text);
        let stripped = print(original.file(), Style::IgnoreExtensions);
        let reparsed = parse(&stripped);
        assert_eq!(
            print(reparsed.file(), Style::IgnoreExtensions),
            stripped,
            "{name}: printing without extensions is not idempotent"
        );
        assert!(!stripped.contains("extend "), "{name}: {stripped}");
        assert!(!stripped.contains("extensions "), "{name}: {stripped}");
        for line in stripped.lines() {
            if line.contains("(") && !line.trim_start().starts_with("rpc ") {
                assert!(
                    line.contains("(confluent."),
                    "{name}: a custom option is left: {line}"
                );
            }
        }
    }
}

#[test]
fn serialized_descriptor_prints_like_its_text() {
    for (name, text) in data_files() {
        let original = parse(&text);
        let decoded = parse_with(&original.serialized(), &Budgets::default());
        assert_same_descriptor(&name, original.file(), decoded.file());
        for style in [Style::Canonical, Style::Normalized, Style::IgnoreExtensions] {
            assert_eq!(
                print(decoded.file(), style),
                print(original.file(), style),
                "{name}: {style:?} text of the serialized form differs"
            );
        }
    }
}

#[test]
fn files_differing_in_order_normalise_to_the_same_text() {
    for (a, b) in [
        ("pair_order_a.proto", "pair_order_b.proto"),
        ("pair_proto2_a.proto", "pair_proto2_b.proto"),
    ] {
        let (text_a, text_b) = (data_file(a), data_file(b));
        assert_ne!(
            printed(&text_a, Style::Canonical),
            printed(&text_b, Style::Canonical),
            "{a} and {b}: the canonical texts should differ"
        );
        assert_eq!(
            printed(&text_a, Style::Normalized),
            printed(&text_b, Style::Normalized),
            "{a} and {b}: the normalized texts differ"
        );
    }
}

#[test]
fn canonical_text_is_pinned() {
    let text = r#"
        syntax = "proto3";
        package demo;
        import "google/protobuf/timestamp.proto";
        option java_package = "com.demo";
        message Event {
          // comment
          optional string id = 1;
          map<string, int64> counts = 2;
          oneof body { string text = 3; Nested nested = 4; }
          google.protobuf.Timestamp at = 5 [deprecated = true, json_name = "when"];
          message Nested { repeated Kind kinds = 1 [packed = false]; }
          enum Kind { KIND_UNSPECIFIED = 0; KIND_A = 1; }
          reserved 8, 10 to 12;
          reserved "old";
        }
        service Events { rpc Stream (Event) returns (stream Event); }
    "#;
    let expected = r#"syntax = "proto3";
package demo;

import "google/protobuf/timestamp.proto";

option java_package = "com.demo";

message Event {
  reserved 8, 10 to 12;
  reserved "old";
  optional string id = 1;
  map<string, int64> counts = 2;
  oneof body {
    string text = 3;
    .demo.Event.Nested nested = 4;
  }
  .google.protobuf.Timestamp at = 5 [json_name = "when", deprecated = true];
  message Nested {
    repeated .demo.Event.Kind kinds = 1 [packed = false];
  }
  enum Kind {
    KIND_UNSPECIFIED = 0;
    KIND_A = 1;
  }
}

service Events {
  rpc Stream (.demo.Event) returns (stream .demo.Event);
}
"#;
    assert_eq!(printed(text, Style::Canonical), expected);
}

#[test]
fn normalized_text_is_pinned() {
    let text = r#"
        syntax = "proto2";
        package demo;
        import "google/protobuf/empty.proto";
        import "google/protobuf/descriptor.proto";
        extend google.protobuf.FieldOptions { optional string doc = 50000; }
        message M {
          option deprecated = true;
          extensions 200 to 300, 100;
          optional string b = 2 [json_name = "bee", (doc) = "x", default = "d"];
          oneof o { int32 z = 9; int32 y = 8; }
          required int32 a = 1;
          reserved "q", "p";
          reserved 20, 10 to 12;
        }
        enum E { E_C = 3; E_B = 2; E_A = 1; }
    "#;
    let expected = r#"package demo;

import "google/protobuf/descriptor.proto";
import "google/protobuf/empty.proto";

message M {
  reserved 10 to 12;
  reserved 20;
  reserved "p";
  reserved "q";
  option deprecated = true;
  required int32 a = 1;
  optional string b = 2 [default = "d", (demo.doc) = "x", json_name = "bee"];
  oneof o {
    int32 y = 8;
    int32 z = 9;
  }
  extensions 100;
  extensions 200 to 300;
}

enum E {
  E_C = 3;
  E_A = 1;
  E_B = 2;
}

extend .google.protobuf.FieldOptions {
  optional string doc = 50000;
}
"#;
    assert_eq!(printed(text, Style::Normalized), expected);
}

#[test]
fn special_forms_are_printed_as_declared() {
    let optional = printed(&data_file("proto3_optional.proto"), Style::Canonical);
    assert!(
        optional.contains("  optional string nickname = 1;\n"),
        "{optional}"
    );
    assert!(
        optional.contains("  optional string _hidden = 6;\n"),
        "{optional}"
    );
    assert!(!optional.contains("oneof _"), "{optional}");
    assert!(
        optional.contains("  oneof contact {\n    option (.presence.oneof_doc)")
            || optional.contains("  oneof contact {\n    option (presence.oneof_doc)"),
        "{optional}"
    );

    let basic = printed(&data_file("proto3_basic.proto"), Style::Canonical);
    assert!(
        basic.contains("  map<string, string> labels = 6;\n"),
        "{basic}"
    );
    assert!(
        basic.contains("  map<int32, .shop.orders.v1.Order.Line> lines_by_number = 7;\n"),
        "{basic}"
    );
    assert!(!basic.contains("Entry"), "{basic}");
    assert!(basic.contains("  REGION_US = -1;\n"), "{basic}");

    let groups = printed(&data_file("proto2_groups.proto"), Style::Canonical);
    assert!(
        groups.contains("  optional group Result = 1 {\n"),
        "{groups}"
    );
    assert!(
        groups.contains("    repeated group Snippet = 4 {\n"),
        "{groups}"
    );
    assert!(
        groups.contains("  repeated group Page = 6 [deprecated = true] {\n"),
        "{groups}"
    );
    assert!(groups.contains("    group Fancy = 8 {\n"), "{groups}");

    let defaults = printed(&data_file("proto2_defaults.proto"), Style::Canonical);
    for expected in [
        "[default = inf]",
        "[default = -inf]",
        "[default = nan]",
        "[default = -42]",
        "[default = LOW]",
        "[default = 1e300]",
        "[default = \"\\000\\001\\377abc\\\"\\\\\\177\"]",
        "[default = \"hello \\\"world\\\"\\n\\ttab \\\\ back \\'single\\' café \\001\"]",
        "[default = \"日本語 ✓\"]",
        "[json_name = \"withJSON\"]",
        "required int32 must = 15;",
    ] {
        assert!(defaults.contains(expected), "{expected} not in {defaults}");
    }

    let names = printed(&data_file("json_names.proto"), Style::Canonical);
    assert!(names.contains("  string snake_case_name = 1;\n"), "{names}");
    assert!(
        names.contains("  string custom = 2 [json_name = \"renamed\"];\n"),
        "{names}"
    );
    assert!(
        names.contains("  string camelCase = 6 [json_name = \"CamelCase\"];\n"),
        "{names}"
    );

    let ext = printed(&data_file("proto2_extensions.proto"), Style::Canonical);
    assert!(
        ext.contains(
            "extend .ext.Base {\n  optional string label = 100;\n  optional group Extra = 150 {\n"
        ),
        "{ext}"
    );
    assert!(ext.contains("  extend .ext.Other {\n"), "{ext}");
    assert!(ext.contains("  extensions 2000 to max;\n"), "{ext}");
}

#[test]
fn custom_options_are_printed_and_kept() {
    let text = printed(&data_file("custom_options.proto"), Style::Canonical);
    for expected in [
        "option (my.owner) = \"team-a\";",
        "option (my.teams) = \"x\";\noption (my.teams) = \"y\";",
        "option (my.rules) = { a: 1 };\n  option (my.rules) = { a: 2 };",
        "[deprecated = true, (my.doc) = \"the name\", (my.min) = -5, (my.max) = 18446744073709551615]",
        "(my.raw) = \"\\000\\377bytes\"",
        "(my.kind) = KIND_A",
        "(my.ratio) = -1e999",
        "weights { key: \"a\" value: 1 } weights { key: \"w\" value: 3 }",
        "[my.rule_note]: \"ext in aggregate\"",
        "option (my.method_doc) = \"one\";",
        "RED = 0 [(my.value_doc) = \"warm\"];",
        "  extensions 100 to 200 [(my.range_doc) = \"notes\", (my.range_rule) = { a: 7 }];\n  extensions 300;\n",
    ] {
        assert!(text.contains(expected), "{expected} not in {text}");
    }

    let normalized = printed(&data_file("custom_options.proto"), Style::Normalized);
    assert!(
        normalized.contains(
            "  extensions 100 to 200 [(my.range_doc) = \"notes\", (my.range_rule) = { a: 7 }];\n"
        ),
        "{normalized}"
    );

    let stripped = printed(&data_file("custom_options.proto"), Style::IgnoreExtensions);
    assert!(!stripped.contains("(my."), "{stripped}");
    assert!(
        stripped.contains("option java_package = \"com.example.my\";"),
        "{stripped}"
    );
    assert!(
        stripped.contains("  option deprecated = true;\n"),
        "{stripped}"
    );

    // Confluent keeps its own options when it drops extensions.
    let meta = printed(&data_file("confluent_meta.proto"), Style::IgnoreExtensions);
    assert!(
        meta.contains("(confluent.field_meta) = { doc: \"x\" }"),
        "{meta}"
    );
    assert!(
        meta.contains("option (confluent.file_meta) = { doc: \"file doc\" };"),
        "{meta}"
    );
}

#[test]
fn shadowed_option_names_get_a_leading_dot() {
    let text = printed(&data_file("shadowing.proto"), Style::Canonical);
    assert!(
        text.contains("  option (.corp.opts.mtag) = \"m\";\n"),
        "{text}"
    );
    assert!(
        text.contains("  optional int32 value = 1 [(.corp.opts.tag) = \"v\"];\n"),
        "{text}"
    );
    assert!(
        text.contains("  optional .corp.opts.corp c = 3;\n"),
        "{text}"
    );
    // Without anything to shadow them, option names print as Confluent prints them.
    let meta = printed(&data_file("confluent_meta.proto"), Style::Canonical);
    assert!(
        meta.contains("[(confluent.field_meta) = { doc: \"x\" }]"),
        "{meta}"
    );
}

#[test]
fn normalisation_follows_confluent() {
    let two = printed(&data_file("pair_proto2_a.proto"), Style::Normalized);
    assert!(!two.contains("syntax"), "proto2 prints no syntax: {two}");
    let three = printed(&data_file("pair_order_a.proto"), Style::Normalized);
    assert!(three.starts_with("syntax = \"proto3\";\npackage pairs.order;\n\nimport \"confluent/meta.proto\";\nimport \"google/protobuf/descriptor.proto\";\nimport \"google/protobuf/timestamp.proto\";\n"), "{three}");
    // Options sorted by name; aggregate fields by name.
    assert!(three.contains("option (confluent.file_meta) = { doc: \"file\" };\noption go_package = \"example.com/pairs\";\noption java_package = \"com.example.pairs\";\n"), "{three}");
    assert!(three.contains("  string name = 1 [deprecated = true, (pairs.order.hint) = { level: 2 text: \"n\" }];\n"), "{three}");
    // Fields by number, then oneofs by their first field.
    let name = three.find("string name = 1").unwrap_or(usize::MAX);
    let id = three.find("int64 id = 2").unwrap_or(usize::MAX);
    let role = three.find("Role role = 8").unwrap_or(usize::MAX);
    let contact = three.find("oneof contact").unwrap_or(usize::MAX);
    let avatar = three.find("oneof avatar").unwrap_or(usize::MAX);
    assert!(
        name < id && id < role && role < contact && contact < avatar,
        "{three}"
    );
    // Top-level and nested types keep their declared order (message indexes depend on it).
    let hint = three.find("message Hint").unwrap_or(usize::MAX);
    let user = three.find("message User").unwrap_or(usize::MAX);
    assert!(hint < user, "{three}");
}

#[test]
fn deep_nesting_prints_within_the_budgets() {
    // protox refuses messages nested deeper than 32 levels.
    let depth = 31;
    let mut text = String::from("syntax = \"proto3\";\npackage deep;\n");
    for level in 0..depth {
        text.push_str(&format!("message M{level} {{ int32 f{level} = 1;\n"));
    }
    for _ in 0..depth {
        text.push_str("}\n");
    }
    let budgets = Budgets::default().for_stored();
    let original = parse_with(&text, &budgets);
    for style in [Style::Canonical, Style::Normalized] {
        let printed = print(original.file(), style);
        let reparsed = parse_with(&printed, &budgets);
        assert_same_descriptor("deep", original.file(), reparsed.file());
    }
}

#[test]
fn json_name_is_printed_only_when_it_differs() {
    let text = r#"
        syntax = "proto3";
        message M {
          string foo_bar = 1 [json_name = "fooBar"];
          string baz_qux = 2 [json_name = "other"];
        }
    "#;
    let original = parse(text);
    let canonical = print(original.file(), Style::Canonical);
    assert!(canonical.contains("  string foo_bar = 1;\n"), "{canonical}");
    assert!(
        canonical.contains("  string baz_qux = 2 [json_name = \"other\"];\n"),
        "{canonical}"
    );
    let reparsed = parse(&canonical);
    let json_names = |schema: &ProtoSchema| -> Vec<String> {
        schema
            .message("M")
            .map(|message| message.fields().map(|f| f.json_name().to_owned()).collect())
            .unwrap_or_default()
    };
    assert_eq!(json_names(&original), json_names(&reparsed));
    assert_eq!(json_names(&original), ["fooBar", "other"]);
}

/// A descriptor as protoc writes it (explicit proto2 syntax, every `json_name` set, a map entry
/// and a group), given base64-encoded.
#[test]
fn descriptor_from_another_compiler_prints() {
    use base64::Engine as _;
    use prost_types::field_descriptor_proto::{Label, Type};
    use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto, MessageOptions};

    let field = |name: &str, number: i32, label: Label, ty: Type, type_name: Option<&str>| {
        FieldDescriptorProto {
            name: Some(name.to_owned()),
            number: Some(number),
            label: Some(label as i32),
            r#type: Some(ty as i32),
            type_name: type_name.map(str::to_owned),
            json_name: Some(name.to_owned()),
            ..Default::default()
        }
    };
    let file = FileDescriptorProto {
        name: Some("other.proto".to_owned()),
        package: Some("p".to_owned()),
        syntax: Some("proto2".to_owned()),
        message_type: vec![DescriptorProto {
            name: Some("M".to_owned()),
            field: vec![
                field("id", 1, Label::Required, Type::Int64, None),
                field(
                    "tags",
                    2,
                    Label::Repeated,
                    Type::Message,
                    Some(".p.M.TagsEntry"),
                ),
                field("item", 3, Label::Repeated, Type::Group, Some(".p.M.Item")),
            ],
            nested_type: vec![
                DescriptorProto {
                    name: Some("TagsEntry".to_owned()),
                    field: vec![
                        field("key", 1, Label::Optional, Type::String, None),
                        field("value", 2, Label::Optional, Type::String, None),
                    ],
                    options: Some(MessageOptions {
                        map_entry: Some(true),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                DescriptorProto {
                    name: Some("Item".to_owned()),
                    field: vec![field("sku", 1, Label::Optional, Type::String, None)],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(file.encode_to_vec());
    let decoded = parse(&encoded);
    let canonical = print(decoded.file(), Style::Canonical);
    let expected = r#"syntax = "proto2";
package p;

message M {
  required int64 id = 1;
  map<string, string> tags = 2;
  repeated group Item = 3 {
    optional string sku = 1;
  }
}
"#;
    assert_eq!(canonical, expected);
    let reparsed = parse(&canonical);
    assert_same_semantics_ignoring_json_names(decoded.file(), reparsed.file());
    assert_eq!(print(reparsed.file(), Style::Canonical), canonical);
    assert_eq!(
        print(reparsed.file(), Style::Normalized),
        print(decoded.file(), Style::Normalized)
    );
}

fn assert_same_semantics_ignoring_json_names(a: &FileDescriptor, b: &FileDescriptor) {
    let strip = |facts: Facts| -> Vec<(String, String)> {
        facts
            .into_iter()
            .map(|(key, (fact, _))| {
                let fact = match fact.find(" json ") {
                    Some(start) => {
                        let end = fact[start..]
                            .find(" oneof ")
                            .map_or(fact.len(), |e| start + e);
                        format!("{}{}", &fact[..start], &fact[end..])
                    }
                    None => fact,
                };
                (key, fact)
            })
            .collect()
    };
    assert_eq!(strip(facts(a)), strip(facts(b)));
}
