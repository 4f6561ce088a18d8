//! Runs the JSON Schema compatibility cases of `tests/data/compat/*.json` (see the README there),
//! and the checks that are not data: budgets, recursive schemas, references.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};
use tributary_json_schema::compat::{Checker, DifferenceKind, OverBudget, Report};
use tributary_json_schema::{Budgets, Dependency, JsonSchema};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    note: Option<String>,
    writer: Value,
    reader: Value,
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
    schema: Value,
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
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

fn parse(schema: &Value, dependencies: &[DependencyText], what: &str) -> JsonSchema {
    let texts: Vec<(String, String)> = dependencies
        .iter()
        .map(|d| (d.name.clone(), text(&d.schema)))
        .collect();
    let dependencies: Vec<Dependency<'_>> = texts
        .iter()
        .map(|(name, schema)| Dependency { name, schema })
        .collect();
    JsonSchema::parse(&text(schema), &dependencies, &Budgets::default())
        .unwrap_or_else(|e| panic!("{what} does not parse: {e}"))
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
            case.compatible,
            changes_of(&report)
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
    assert!(cases.len() >= 60, "only {} cases", cases.len());
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

fn schema(value: Value) -> JsonSchema {
    JsonSchema::parse(&value.to_string(), &[], &Budgets::default()).unwrap()
}

fn wide(properties: usize, kind: &str) -> JsonSchema {
    let properties: serde_json::Map<String, Value> = (0..properties)
        .map(|n| (format!("p{n}"), json!({"type": kind})))
        .collect();
    schema(json!({"type": "object", "properties": properties}))
}

#[test]
fn two_big_schemas_go_over_a_small_budget() {
    let writer = wide(10_000, "integer");
    let reader = wide(10_000, "string");
    let mut small = Checker::new(5_000, 10);
    assert_eq!(
        small.can_read(&reader, &writer),
        Err(OverBudget { max: 5_000 })
    );
    // Once over, every later check of the checker is too.
    assert_eq!(
        small.can_read(&writer, &writer),
        Err(OverBudget { max: 5_000 })
    );

    // With enough budget: linear work, the list capped, the total complete.
    let mut large = Checker::new(1_000_000, 10);
    let report = large.can_read(&reader, &writer).unwrap();
    assert_eq!(report.total, 10_000);
    assert_eq!(report.incompatibilities.len(), 10);
    assert_eq!(report.unlisted(), Some(9_990));
    assert!(large.work_spent() < 200_000, "{}", large.work_spent());
}

/// Confluent's `testRecursiveOneOfUnionTerminates`: twelve definitions, each with two `oneOf`
/// unions of all twelve.
fn trade(id_type: &str) -> Value {
    let types = [
        "Asset",
        "Basket",
        "Swap",
        "Bond",
        "Option",
        "Future",
        "Forward",
        "Loan",
        "Repo",
        "Equity",
        "Index",
        "CommodityLeg",
    ];
    let union = json!({"oneOf": types.iter().map(|t| json!({"$ref": format!("#/definitions/{t}")})).collect::<Vec<_>>()});
    let mut definitions = serde_json::Map::new();
    for (n, name) in types.iter().enumerate() {
        let id = if n == 0 { id_type } else { "string" };
        definitions.insert(
            (*name).to_owned(),
            json!({"type": "object", "properties": {"id": {"type": id}, "underlying": union, "referenceProduct": union}}),
        );
    }
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Trade",
        "type": "object",
        "additionalProperties": true,
        "definitions": definitions,
        "properties": {"tradeId": {"type": "string"}, "product": union}
    })
}

#[test]
fn recursive_unions_terminate_and_still_find_changes() {
    let original = schema(trade("string"));
    let mut checker = Checker::new(5_000_000, 10);
    let report = checker.differences(&original, &original).unwrap();
    assert_eq!(report, Report::default());

    let changed = schema(trade("number"));
    let report = checker.can_read(&changed, &original).unwrap();
    assert!(!report.is_compatible());
}

/// Confluent's `testRecursiveOneOfMemoizationDoesNotMaskIncompatibility`: the changes sit
/// behind a recursive `oneOf` cycle (T0 -> T2 -> T0).
fn masking(t0: &str, t1: &str) -> Value {
    let object = |id: &str, target: &str| {
        json!({"type": "object", "additionalProperties": true, "properties": {
            "id": {"type": id},
            "ref": {"oneOf": [{"$ref": format!("#/definitions/{target}")}]}
        }})
    };
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": true,
        "definitions": {"T0": object(t0, "T2"), "T1": object(t1, "T2"), "T2": object("integer", "T0")},
        "properties": {"root": {"oneOf": [{"$ref": "#/definitions/T0"}, {"$ref": "#/definitions/T1"}]}}
    })
}

#[test]
fn recursion_does_not_mask_an_incompatibility() {
    let original = schema(masking("integer", "boolean"));
    let update = schema(masking("boolean", "number"));
    let report = Checker::new(1_000_000, 10)
        .can_read(&update, &original)
        .unwrap();
    assert!(!report.is_compatible(), "{report:?}");
}

#[test]
fn self_references_and_cycles_between_dependencies_compare() {
    let tree = |value: &str| {
        schema(json!({
            "type": "object",
            "properties": {"value": {"type": value}, "children": {"type": "array", "items": {"$ref": "#"}}}
        }))
    };
    let mut checker = Checker::new(100_000, 10);
    assert!(
        checker
            .can_read(&tree("integer"), &tree("integer"))
            .unwrap()
            .is_compatible()
    );
    let report = checker.can_read(&tree("string"), &tree("integer")).unwrap();
    let found: Vec<String> = report
        .incompatibilities
        .iter()
        .map(|d| format!("{} {}", d.kind, d.location))
        .collect();
    assert_eq!(found, ["TYPE_CHANGED #/properties/value"]);

    let pair = |b_type: &str| {
        let a = r#"{"type": "object", "properties": {"b": {"$ref": "b.json"}}}"#.to_owned();
        let b = format!(
            r#"{{"type": "object", "properties": {{"a": {{"$ref": "a.json"}}, "n": {{"type": "{b_type}"}}}}}}"#
        );
        (a, b)
    };
    let parse_pair = |b_type: &str| {
        let (a, b) = pair(b_type);
        JsonSchema::parse(
            r#"{"$ref": "a.json"}"#,
            &[
                Dependency {
                    name: "a.json",
                    schema: &a,
                },
                Dependency {
                    name: "b.json",
                    schema: &b,
                },
            ],
            &Budgets::default(),
        )
        .unwrap()
    };
    let (old, new) = (parse_pair("integer"), parse_pair("number"));
    assert!(checker.can_read(&new, &old).unwrap().is_compatible());
    let report = checker.can_read(&old, &new).unwrap();
    assert_eq!(
        report.incompatibilities[0].location,
        "#/properties/b/properties/n"
    );
    assert_eq!(
        report.incompatibilities[0].kind,
        DifferenceKind::TypeNarrowed
    );
}

#[test]
fn references_are_compared_by_their_targets() {
    let with = |dependency: &str| {
        JsonSchema::parse(
            r#"{"type": "object", "properties": {"money": {"$ref": "money.json"}}}"#,
            &[Dependency {
                name: "money.json",
                schema: dependency,
            }],
            &Budgets::default(),
        )
        .unwrap()
    };
    let old = with(
        r#"{"type": "object", "properties": {"units": {"type": "integer"}}, "additionalProperties": false}"#,
    );
    let new = with(
        r#"{"type": "object", "properties": {"units": {"type": "integer"}, "nanos": {"type": "integer"}}, "additionalProperties": false}"#,
    );
    let mut checker = Checker::new(10_000, 10);
    assert!(checker.can_read(&new, &old).unwrap().is_compatible());
    let report = checker.can_read(&old, &new).unwrap();
    assert_eq!(
        report.incompatibilities[0].to_string(),
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL at #/properties/money/properties/nanos: The reader schema has a closed content model and is missing a property or item present at path '#/properties/money/properties/nanos' in the writer schema"
    );
    assert_eq!(
        report.incompatibilities[0].confluent_error("new", "old"),
        "{errorType:\"PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL\", description:\"The new schema has a closed content model and is missing a property or item present at path '#/properties/money/properties/nanos' in the old schema\"}"
    );
}

#[test]
fn a_long_chain_of_references_is_over_budget_not_a_stack_overflow() {
    let mut definitions = serde_json::Map::new();
    for n in 0..3_000 {
        definitions.insert(
            format!("D{n}"),
            json!({"type": "object", "properties": {"next": {"$ref": format!("#/definitions/D{}", n + 1)}}}),
        );
    }
    definitions.insert("D3000".to_owned(), json!({"type": "string"}));
    let chain = schema(json!({"definitions": definitions, "$ref": "#/definitions/D0"}));
    let mut checker = Checker::new(1_000_000, 10);
    assert!(checker.can_read(&chain, &chain).is_err());
}
