//! Runs the Protobuf compatibility cases of `tests/data/compat/*.json` (see the README there),
//! and the checks that are not data: budgets, deep chains of referenced types, descriptors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tributary_protobuf::compat::{Checker, DifferenceKind, OverBudget, Report};
use tributary_protobuf::{Budgets, Dependency, ProtoSchema};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    note: Option<String>,
    writer: String,
    reader: String,
    #[serde(default)]
    writer_dependencies: Vec<DependencyText>,
    #[serde(default)]
    reader_dependencies: Vec<DependencyText>,
    compatible: bool,
    kinds: Vec<String>,
    #[serde(default)]
    changes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DependencyText {
    name: String,
    schema: String,
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/compat")
}

fn load_cases() -> Vec<(String, Case)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .expect("tests/data/compat")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let parsed: Vec<Case> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        cases.extend(parsed.into_iter().map(|case| (stem.clone(), case)));
    }
    cases
}

fn parse(text: &str, dependencies: &[DependencyText], what: &str) -> ProtoSchema {
    let dependencies: Vec<Dependency<'_>> = dependencies
        .iter()
        .map(|d| Dependency {
            name: &d.name,
            schema: &d.schema,
        })
        .collect();
    ProtoSchema::parse(text, &dependencies, &Budgets::default())
        .unwrap_or_else(|e| panic!("{what} does not compile: {e}"))
}

fn sorted(mut list: Vec<String>) -> Vec<String> {
    list.sort();
    list
}

fn changes_of(report: &Report) -> Vec<String> {
    sorted(
        report
            .incompatibilities
            .iter()
            .map(|d| format!("{} {}", d.kind, d.location))
            .collect(),
    )
}

/// Checks one case; the reasons it fails.
fn run(file: &str, case: &Case) -> Vec<String> {
    let label = format!("{file}: {}", case.name);
    let _ = (&case.source, &case.note);
    let writer = parse(
        &case.writer,
        &case.writer_dependencies,
        &format!("{label}: writer"),
    );
    let reader = parse(
        &case.reader,
        &case.reader_dependencies,
        &format!("{label}: reader"),
    );
    let mut failures = Vec::new();
    let mut checker = Checker::new(1_000_000, 1_000);

    let report = checker.can_read(&reader, &writer).unwrap();
    if report.is_compatible() != case.compatible {
        failures.push(format!(
            "{label}: expected compatible = {}, found {:?}",
            case.compatible, report.incompatibilities
        ));
    }
    let kinds = sorted(
        report
            .incompatibilities
            .iter()
            .map(|d| d.kind.as_str().to_owned())
            .collect(),
    );
    if kinds != sorted(case.kinds.clone()) {
        failures.push(format!(
            "{label}: expected kinds {:?}, found {kinds:?}",
            case.kinds
        ));
    }
    for kind in &case.kinds {
        match DifferenceKind::parse(kind) {
            Some(parsed) if !parsed.is_compatible() => {}
            _ => failures.push(format!("{label}: '{kind}' is not an incompatible kind")),
        }
    }
    if report.total != u64::try_from(report.incompatibilities.len()).unwrap() {
        failures.push(format!(
            "{label}: total {} but {} listed",
            report.total,
            report.incompatibilities.len()
        ));
    }
    for found in &report.incompatibilities {
        if !found.location.starts_with("#/") || found.message.is_empty() {
            failures.push(format!("{label}: malformed {found:?}"));
        }
        if found
            .confluent_error("new", "old")
            .contains("description:\"\"")
        {
            failures.push(format!("{label}: no Confluent description for {found:?}"));
        }
    }

    // Every difference (compatible ones too): Confluent's `changes`, as a multiset.
    let all = checker.differences(&writer, &reader).unwrap();
    if let Some(changes) = &case.changes {
        let found = changes_of(&all);
        if found != sorted(changes.clone()) {
            failures.push(format!(
                "{label}: expected changes {:?}, found {found:?}",
                sorted(changes.clone())
            ));
        }
    }
    // can_read is the incompatible part of the differences.
    let incompatible_part: Vec<String> = sorted(
        all.incompatibilities
            .iter()
            .filter(|d| !d.kind.is_compatible())
            .map(|d| format!("{} {}", d.kind, d.location))
            .collect(),
    );
    if incompatible_part != changes_of(&report) {
        failures.push(format!(
            "{label}: can_read {:?} is not the incompatible part of the differences {incompatible_part:?}",
            changes_of(&report)
        ));
    }
    failures
}

#[test]
fn data_cases() {
    let cases = load_cases();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for (file, case) in &cases {
        assert!(
            names.insert((file.clone(), case.name.clone())),
            "duplicate case {file}: {}",
            case.name
        );
        failures.extend(run(file, case));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_kind_is_exercised_by_the_data() {
    let cases = load_cases();
    let mut seen = std::collections::HashSet::new();
    for (_, case) in &cases {
        for change in case.changes.iter().flatten() {
            seen.insert(change.split(' ').next().unwrap().to_owned());
        }
    }
    let missing: Vec<&str> = DifferenceKind::ALL
        .iter()
        .map(DifferenceKind::as_str)
        .filter(|kind| !seen.contains(*kind))
        .collect();
    assert!(missing.is_empty(), "kinds no case shows: {missing:?}");
}

fn wide(fields: usize, kind: &str) -> String {
    let body: String = (1..=fields)
        .map(|n| format!("  {kind} f{n} = {n};\n"))
        .collect();
    format!("syntax = \"proto3\";\npackage big;\nmessage Wide {{\n{body}}}\n")
}

#[test]
fn two_big_schemas_go_over_a_small_budget() {
    let writer = ProtoSchema::parse(&wide(10_000, "int32"), &[], &Budgets::default()).unwrap();
    let reader = ProtoSchema::parse(&wide(10_000, "string"), &[], &Budgets::default()).unwrap();
    let mut small = Checker::new(5_000, 10);
    assert_eq!(
        small.can_read(&reader, &writer),
        Err(OverBudget { max: 5_000 })
    );
    assert!(small.work_spent() <= 5_001);
    // Once over, every later check of the checker is too.
    assert_eq!(
        small.can_read(&writer, &writer),
        Err(OverBudget { max: 5_000 })
    );
    let error = OverBudget { max: 5_000 };
    assert!(error.to_string().contains("5000"), "{error}");

    // With enough budget: linear work, the list capped, the total complete.
    let mut large = Checker::new(1_000_000, 10);
    let report = large.can_read(&reader, &writer).unwrap();
    assert_eq!(report.total, 10_000);
    assert_eq!(report.incompatibilities.len(), 10);
    assert_eq!(report.unlisted(), Some(9_990));
    assert!(large.work_spent() < 100_000, "{}", large.work_spent());
}

/// A dependency in which each message holds the next: comparing them must neither recurse as
/// deep as the chain nor repeat work, changed or not.
#[test]
fn a_long_chain_of_referenced_types_is_walked_without_deep_recursion() {
    let chain = |last: &str| {
        let mut text = String::from("syntax = \"proto3\";\npackage chain;\n");
        for n in 0..2_000 {
            text.push_str(&format!(
                "message M{n} {{ M{} next = 1; M{} again = 2; }}\n",
                n + 1,
                n + 1
            ));
        }
        text.push_str(&format!("message M2000 {{ {last} value = 1; }}\n"));
        text
    };
    let root =
        "syntax = \"proto3\";\nimport \"chain.proto\";\nmessage Root { chain.M0 head = 1; }\n";
    let (old_chain, new_chain) = (chain("int32"), chain("string"));
    let writer = ProtoSchema::parse(
        root,
        &[Dependency {
            name: "chain.proto",
            schema: &old_chain,
        }],
        &Budgets::default(),
    )
    .unwrap();
    let reader = ProtoSchema::parse(
        root,
        &[Dependency {
            name: "chain.proto",
            schema: &new_chain,
        }],
        &Budgets::default(),
    )
    .unwrap();
    let mut checker = Checker::new(1_000_000, 5);
    let report = checker.can_read(&reader, &writer).unwrap();
    // The scalar change at the end, and every field on the way to it.
    assert_eq!(report.total, 1 + 2 * 2_000 + 1);
    assert_eq!(
        report.incompatibilities[0].kind,
        DifferenceKind::FieldScalarKindChanged
    );
    assert_eq!(report.incompatibilities[0].location, "#/M2000/1");
    assert!(checker.work_spent() < 100_000, "{}", checker.work_spent());

    // Unchanged: the dependency is the same file, so it is not walked at all.
    let mut checker = Checker::new(1_000_000, 5);
    assert!(checker.can_read(&writer, &writer).unwrap().is_compatible());
    assert!(checker.work_spent() < 50, "{}", checker.work_spent());
}

#[test]
fn a_descriptor_schema_diffs_like_its_text() {
    let text = "syntax = \"proto3\";\npackage p;\nmessage A {\n  optional int32 maybe = 1;\n  map<string, B> by_name = 2;\n  oneof choice { string s = 3; int64 n = 4; }\n  message B { repeated string tags = 1; }\n}\n";
    let schema = ProtoSchema::parse(text, &[], &Budgets::default()).unwrap();
    let descriptor = ProtoSchema::parse(&schema.serialized(), &[], &Budgets::default()).unwrap();
    let mut checker = Checker::new(10_000, 10);
    assert_eq!(
        checker.differences(&schema, &descriptor).unwrap(),
        Report::default()
    );
    assert_eq!(
        checker.differences(&descriptor, &schema).unwrap(),
        Report::default()
    );
}

#[test]
fn messages_name_what_changed() {
    let writer = ProtoSchema::parse(
        "syntax = \"proto3\";\npackage shop;\nmessage Order { string sku = 3; map<string, int32> counts = 4; }\nmessage Gone {}\n",
        &[],
        &Budgets::default(),
    )
    .unwrap();
    let reader = ProtoSchema::parse(
        "syntax = \"proto3\";\npackage shop;\nmessage Order { Item sku = 3; map<int64, int32> counts = 4; }\nmessage Item {}\n",
        &[],
        &Budgets::default(),
    )
    .unwrap();
    let report = Checker::new(10_000, 10).can_read(&reader, &writer).unwrap();
    let lines: Vec<String> = report
        .incompatibilities
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "FIELD_KIND_CHANGED at #/Order/3: field 3 (sku) of message shop.Order changed kind from scalar string to message shop.Item",
            "FIELD_SCALAR_KIND_CHANGED at #/Order/4: the map key of field 4 (counts) of message shop.Order changed type from string to int64, which are not wire-compatible",
            "MESSAGE_REMOVED at #/Gone: message shop.Gone was removed",
        ]
    );
    assert_eq!(
        report.incompatibilities[2].confluent_error("new", "old"),
        "{errorType:\"MESSAGE_REMOVED\", description:\"The new schema is missing a MESSAGE type at path '#/Gone' in the old schema\"}"
    );
}
