//! Budgets ([`Limits`]) and the costs they bound: every hostile input of issue 15 is refused
//! with an error naming its budget, or done within a bounded amount of work.
//!
//! No test here is timed. Where a cost was quadratic or exponential, the test runs the input
//! that used to take seconds to hours (figures in docs/avro-limits.md) and asserts the work
//! counter or the outcome; a regression shows as a test that no longer finishes.

use tributary_avro::codec::{self, UnionStyle};
use tributary_avro::compat::{self, Checker, IncompatibilityKind};
use tributary_avro::schema::ParseOptions;
use tributary_avro::{Limit, Limits, Schema, SchemaError};

/// Limits with every structural budget lifted, to reach the costs behind them.
fn lifted() -> Limits {
    Limits {
        schema_bytes: 64 << 20,
        record_fields: usize::MAX,
        enum_symbols: usize::MAX,
        union_branches: usize::MAX,
        named_types: usize::MAX,
        name_bytes: usize::MAX,
        references: usize::MAX,
        decimal_precision: u32::MAX,
        work: u64::MAX,
        ..Limits::default()
    }
}

fn parse_with(text: &str, limits: &Limits) -> Result<Schema, SchemaError> {
    Schema::parse_with_limits(text, &[], ParseOptions::default(), limits)
}

fn parse(text: &str) -> Schema {
    parse_with(text, &lifted()).unwrap_or_else(|e| panic!("{e}"))
}

/// The budget a schema is refused for, under the default limits.
fn refused_for(text: &str) -> (Limit, String) {
    match parse_with(text, &Limits::default()) {
        Ok(_) => panic!("accepted: {}", &text[..text.len().min(200)]),
        Err(e) => match e.limit() {
            Some(l) => (l.limit, e.to_string()),
            None => panic!("refused, but not for a budget: {e}"),
        },
    }
}

fn enum_text(symbols: usize) -> String {
    let symbols: Vec<String> = (0..symbols).map(|i| format!("\"S{i}\"")).collect();
    format!(
        r#"{{"type":"enum","name":"E","symbols":[{}]}}"#,
        symbols.join(",")
    )
}

fn record_text(name: &str, fields: impl Iterator<Item = String>) -> String {
    let fields: Vec<String> = fields.collect();
    format!(
        r#"{{"type":"record","name":"{name}","fields":[{}]}}"#,
        fields.join(",")
    )
}

#[test]
fn every_budget_has_a_distinct_flag_name() {
    let mut names: Vec<&str> = Limit::ALL.iter().map(|l| l.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Limit::ALL.len());
    assert!(Limits::default().check().is_ok());
    let too_deep = Limits {
        schema_depth: Limits::MAX_SCHEMA_DEPTH + 1,
        ..Limits::default()
    };
    assert!(too_deep.check().is_err());
}

#[test]
fn a_mebibyte_enum_parses_prints_and_normalizes() {
    // 1 MiB of symbols (~116,000): 14 s to parse before (a linear duplicate search per
    // symbol), as long again to normalize and to check against itself.
    let text = enum_text(115_000);
    assert!(text.len() > 1_000_000);
    let s = parse(&text);
    assert_eq!(
        parse(&s.canonical_string()).canonical_string(),
        s.canonical_string()
    );
    assert!(s.normalized_string().len() >= s.canonical_string().len() - 100);
    let mut checker = Checker::new(&lifted());
    let report = checker.can_read(&s, &s).expect("within the budget");
    assert!(report.is_compatible());
    // Linear: one step per pair plus the symbols of both sides.
    assert!(
        checker.work_spent() <= 2 * 115_000 + 10,
        "{}",
        checker.work_spent()
    );

    let (limit, message) = refused_for(&text);
    assert_eq!(limit, Limit::EnumSymbols);
    assert!(message.contains("max-enum-symbols"), "{message}");
    // Duplicates are still found, wherever they are.
    let dup = text.replace("\"S114999\"", "\"S3\"");
    let e = parse_with(&dup, &lifted()).expect_err("duplicate symbol");
    assert!(e.to_string().contains("duplicate enum symbol 'S3'"), "{e}");
}

#[test]
fn records_with_many_fields_parse_and_check_in_linear_time() {
    // 60,000 fields (1.8 MB): 11 s to parse before, 11 s to check against itself.
    let text = record_text(
        "R",
        (0..60_000).map(|i| format!(r#"{{"name":"f{i}","type":"int"}}"#)),
    );
    let s = parse(&text);
    let mut checker = Checker::new(&lifted());
    assert!(checker.can_read(&s, &s).expect("budget").is_compatible());
    assert!(
        checker.work_spent() <= 3 * 60_000,
        "{}",
        checker.work_spent()
    );
    let dup = text.replace(r#"{"name":"f59999""#, r#"{"name":"f7""#);
    let e = parse_with(&dup, &lifted()).expect_err("duplicate field");
    assert!(e.to_string().contains("duplicate field 'f7'"), "{e}");
    let (limit, message) = refused_for(&text);
    assert!(
        limit == Limit::RecordFields || limit == Limit::SchemaBytes,
        "{message}"
    );
    // A record just under the default field budget is fine with the default limits.
    let ok = record_text(
        "R",
        (0..10_000).map(|i| format!(r#"{{"name":"f{i}","type":"int"}}"#)),
    );
    assert!(parse_with(&ok, &Limits::default()).is_ok());
}

#[test]
fn objects_with_many_keys_parse_in_linear_time() {
    // A type with 100,000 custom properties: each key was searched for linearly.
    let props: Vec<String> = (0..100_000).map(|i| format!(r#""p{i}":{i}"#)).collect();
    let text = format!(r#"{{"type":"string",{}}}"#, props.join(","));
    let s = parse(&text);
    let canonical = s.canonical_string();
    assert!(canonical.contains(r#""p99999":99999"#));
    assert!(s.normalized_string().contains(r#""p99999":99999"#));
}

#[test]
fn aliases_are_deduplicated_in_linear_time() {
    let aliases: Vec<String> = (0..50_000)
        .map(|i| format!("\"a{}\"", i % 40_000))
        .collect();
    let text = format!(
        r#"{{"type":"record","name":"R","aliases":[{}],"fields":[{{"name":"x","type":"int","aliases":[{}]}}]}}"#,
        aliases.join(","),
        aliases.join(",")
    );
    let s = parse(&text);
    let tributary_avro::schema::NodeKind::Record(r) = &s.root_node().kind else {
        panic!("a record");
    };
    assert_eq!(r.aliases.len(), 40_000);
    assert_eq!(r.fields.first().map(|f| f.aliases.len()), Some(40_000));
}

#[test]
fn adding_thousands_of_record_fields_is_checked_in_linear_work() {
    // BACKWARD check of a record that adds 12,000 record-typed fields without defaults (a
    // 1.1 MB request): the registry ran out of memory on it, and 4,000 fields took 2-3 GB and
    // 6-15 s. Each reason carried a copy of the whole record printed as JSON.
    let old = parse(r#"{"type":"record","name":"R","fields":[{"name":"id","type":"long"}]}"#);
    let new_text = record_text(
        "R",
        std::iter::once(r#"{"name":"id","type":"long"}"#.to_owned()).chain((0..12_000).map(|i| {
            format!(
                r#"{{"name":"f{i}","type":{{"type":"record","name":"N{i}","fields":[{{"name":"x","type":"int"}}]}}}}"#
            )
        })),
    );
    let new = parse(&new_text);
    let mut checker = Checker::new(&Limits::default());
    let report = checker
        .can_read(&new, &old)
        .expect("within the default budget");
    assert_eq!(report.total, 12_000);
    assert_eq!(
        report.incompatibilities.len(),
        Limits::default().incompatibilities
    );
    assert_eq!(report.unlisted(), Some(12_000 - 100));
    assert!(
        checker.work_spent() <= 5 * 12_000,
        "{}",
        checker.work_spent()
    );
    let first = &report.incompatibilities[0];
    assert_eq!(
        first.kind,
        IncompatibilityKind::ReaderFieldMissingDefaultValue
    );
    assert_eq!(first.location, "/fields/1");
    assert_eq!(first.message, "f0");
    // Fragments are written only when asked for.
    assert!(first.reader_fragment(&new).len() > 1_000_000);
}

#[test]
fn shared_reasons_are_counted_not_copied() {
    // R_k has two fields of type R_{k-1}; the reasons of R_0 are reached 2^k times. Each
    // pair of types is compared once, and the reasons of a pair are shared by every list
    // that includes them: the work stays linear while the count is exponential.
    let chain = |prefix: &str, ty: &str| {
        let mut t = format!(
            r#"{{"type":"record","name":"{prefix}0","fields":[{{"name":"x","type":"{ty}"}}]}}"#
        );
        for k in 1..40 {
            t = format!(
                r#"{{"type":"record","name":"{prefix}{k}","fields":[{{"name":"a","type":{t}}},{{"name":"b","type":"{prefix}{}"}}]}}"#,
                k - 1
            );
        }
        t
    };
    let reader = parse(&chain("R", "int"));
    let writer = parse(&chain("R", "string"));
    let mut checker = Checker::new(&Limits::default());
    let report = checker.can_read(&reader, &writer).expect("within budget");
    assert_eq!(report.total, 1 << 39);
    assert_eq!(report.incompatibilities.len(), 100);
    assert!(checker.work_spent() < 1_000, "{}", checker.work_spent());
}

#[test]
fn compatibility_work_is_bounded_across_checks() {
    // A union of 1,000 records against another of 1,000 differently named ones: a million
    // pairs of types (8.8 s before; about 1 s and 150 MB with an unbounded budget now).
    let union = |prefix: &str| {
        let branches: Vec<String> = (0..1_000)
            .map(|i| format!(r#"{{"type":"record","name":"{prefix}{i}","fields":[{{"name":"a","type":"int"}}]}}"#))
            .collect();
        format!("[{}]", branches.join(","))
    };
    let reader = parse(&union("R"));
    let writer = parse(&union("W"));
    let limits = Limits::default();
    let mut checker = Checker::new(&limits);
    let e = checker
        .can_read(&reader, &writer)
        .expect_err("over the work budget");
    assert_eq!(e.limit, Limit::Work);
    assert!(e.to_string().contains("max-schema-work"), "{e}");
    assert!(checker.work_spent() <= limits.work + 1_000);
    // The plain API reports the budget as the one reason.
    let found = compat::can_read(&reader, &writer);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, IncompatibilityKind::UnexpectedError);
    // The budget is shared by every check of one checker (a registry's versions).
    let small = parse(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#);
    let mut checker = Checker::new(&Limits {
        work: 10,
        ..Limits::default()
    });
    assert!(checker.can_read(&small, &small).is_ok());
    assert!(checker.can_read(&small, &small).is_ok());
    assert!(checker.can_read(&small, &small).is_ok());
    assert!(checker.can_read(&small, &small).is_err());
}

#[test]
fn defaults_are_validated_in_linear_work() {
    // R_k has two fields of type R_{k-1}, each with default {}: Java validates 2^k defaults
    // (depth 25 took 1.6 s before, depth 60 would take centuries). A field default left out
    // of a record default was validated with its own field: it is not walked again.
    let mut t = String::from(
        r#"{"type":"record","name":"R0","fields":[{"name":"x","type":"int","default":1}]}"#,
    );
    for k in 1..60 {
        t = format!(
            r#"{{"type":"record","name":"R{k}","fields":[{{"name":"a","type":{t},"default":{{}}}},{{"name":"b","type":"R{}","default":{{}}}}]}}"#,
            k - 1
        );
    }
    assert!(parse_with(&t, &Limits::default()).is_ok());
    // An invalid default is still found where it is given.
    let bad = t.replacen(r#""default":1"#, r#""default":"one""#, 1);
    let e = parse_with(&bad, &Limits::default()).expect_err("invalid default");
    assert!(matches!(e, SchemaError::InvalidDefault { .. }), "{e}");

    // 100,000 empty defaults of a 10,000-field record: a billion steps, refused after five
    // million with the budget named.
    let fields: Vec<String> = (0..10_000)
        .map(|i| format!(r#"{{"name":"f{i}","type":"int","default":0}}"#))
        .collect();
    let items: Vec<&str> = std::iter::repeat_n("{}", 100_000).collect();
    let t = format!(
        r#"{{"type":"record","name":"Top","fields":[{{"name":"xs","type":{{"type":"array","items":{{"type":"record","name":"Wide","fields":[{}]}}}},"default":[{}]}}]}}"#,
        fields.join(","),
        items.join(",")
    );
    let e = parse_with(&t, &Limits::default()).expect_err("over the work budget");
    assert_eq!(e.limit().map(|l| l.limit), Some(Limit::Work), "{e}");
    assert_eq!(e.path(), Some("/fields/0"));
}

#[test]
fn each_structural_budget_is_named() {
    let cases: Vec<(String, Limit)> =
        vec![
        (enum_text(10_001), Limit::EnumSymbols),
        (
            record_text(
                "R",
                (0..10_001).map(|i| format!(r#"{{"name":"f{i}","type":"int"}}"#)),
            ),
            Limit::RecordFields,
        ),
        (
            format!(
                "[{}]",
                (0..1_001)
                    .map(|i| format!(r#"{{"type":"fixed","name":"F{i}","size":1}}"#))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Limit::UnionBranches,
        ),
        (
            format!(r#"{{"type":"fixed","name":"{}","size":1}}"#, "N".repeat(1_025)),
            Limit::NameBytes,
        ),
        (
            format!(
                r#"{{"type":"fixed","name":"F","namespace":"{}","size":1}}"#,
                "a.".repeat(600)
            ),
            Limit::NameBytes,
        ),
        (
            format!(r#"{{"type":"enum","name":"E","symbols":["{}"]}}"#, "S".repeat(1_025)),
            Limit::NameBytes,
        ),
        (
            r#"{"type":"bytes","logicalType":"decimal","precision":2147483647,"scale":2147483647}"#
                .to_owned(),
            Limit::DecimalPrecision,
        ),
        (
            r#"{"type":"array","items":"#.repeat(300) + "\"int\"" + &"}".repeat(300),
            Limit::SchemaDepth,
        ),
        (" ".repeat(1024 * 1024 + 1) + "\"int\"", Limit::SchemaBytes),
    ];
    for (text, want) in cases {
        let (limit, message) = refused_for(&text);
        assert_eq!(limit, want, "{message}");
        assert!(
            message.contains(&format!("max-{}", want.name())),
            "{message}"
        );
    }
    // Named types: counted over the references too.
    let fixed = |i: usize| format!(r#"{{"type":"fixed","name":"F{i}","size":1}}"#);
    let references: Vec<String> = (0..3).map(fixed).collect();
    let refs: Vec<&str> = references.iter().map(String::as_str).collect();
    let limits = Limits {
        named_types: 3,
        ..Limits::default()
    };
    let e = Schema::parse_with_limits(&fixed(3), &refs, ParseOptions::default(), &limits)
        .expect_err("a fourth named type");
    assert_eq!(e.limit().map(|l| l.limit), Some(Limit::NamedTypes), "{e}");
    let limits = Limits {
        references: 2,
        ..Limits::default()
    };
    let e = Schema::parse_with_limits("\"int\"", &refs, ParseOptions::default(), &limits)
        .expect_err("three references");
    assert_eq!(e.limit().map(|l| l.limit), Some(Limit::References), "{e}");
    // Referenced schemas were accepted before: the budgets of one text are not theirs.
    let limits = Limits {
        name_bytes: 1,
        ..Limits::default()
    };
    assert!(Schema::parse_with_limits("\"int\"", &refs, ParseOptions::default(), &limits).is_ok());
    let e = Schema::parse_with_limits(&fixed(3), &refs, ParseOptions::default(), &limits)
        .expect_err("a long name in the schema itself");
    assert_eq!(e.limit().map(|l| l.limit), Some(Limit::NameBytes), "{e}");
}

#[test]
fn stored_schemas_are_read_whatever_the_structural_budgets() {
    let text = enum_text(20_000);
    assert!(parse_with(&text, &Limits::default()).is_err());
    assert!(parse_with(&text, &Limits::default().for_stored()).is_ok());
    let decimal =
        r#"{"type":"bytes","logicalType":"decimal","precision":2147483647,"scale":2147483647}"#;
    assert!(parse_with(decimal, &Limits::default().for_stored()).is_ok());
}

#[test]
fn a_huge_decimal_scale_costs_nothing_per_record() {
    // scale 2^31-1: every value was scaled up one digit at a time, 5.4 s per record.
    let s = parse_with(
        r#"{"type":"bytes","logicalType":"decimal","precision":2147483647,"scale":2147483647}"#,
        &Limits::default().for_stored(),
    )
    .expect("a stored schema");
    assert_eq!(codec::json_to_avro(&s, "0").ok(), Some(vec![0x02, 0x00]));
    let e = codec::json_to_avro(&s, "1").expect_err("too many digits");
    assert!(e.message.contains("too many digits"), "{e}");
    let e = codec::json_to_avro(&s, "\"12.5\"").expect_err("too many digits");
    assert!(e.message.contains("too many digits"), "{e}");
    // A usual decimal is unaffected.
    let s = parse(r#"{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}"#);
    assert_eq!(
        codec::json_to_avro(&s, "\"12.5\"").ok(),
        Some(vec![0x04, 0x04, 0xE2])
    );
}

#[test]
fn datum_nesting_follows_the_json_depth_budget() {
    let s = parse(
        r#"{"type":"array","items":{"type":"array","items":{"type":"array","items":"int"}}}"#,
    );
    let shallow = Limits {
        json_depth: 2,
        ..Limits::default()
    };
    let e = codec::json_to_avro_with(&s, "[[[1]]]", &shallow).expect_err("too deep");
    assert!(e.message.contains("max-json-depth"), "{e}");
    let avro = codec::json_to_avro(&s, "[[[1]]]").expect("default depth");
    let mut out = Vec::new();
    let e =
        codec::avro_to_json_into_checked_with(&s, &s, &avro, UnionStyle::Plain, &mut out, &shallow)
            .expect_err("too deep");
    assert!(e.message.contains("max-json-depth"), "{e}");
    assert!(out.is_empty());
    codec::avro_to_json_into_checked_with(
        &s,
        &s,
        &avro,
        UnionStyle::Plain,
        &mut out,
        &Limits::default(),
    )
    .expect("default depth");
    assert_eq!(out, b"[[[1]]]");
}

#[test]
fn large_records_resolve_and_encode_in_linear_time() {
    // Reader fields in reverse order, with an alias each: each writer field found by a
    // search through the reader's fields, per datum.
    let n = 20_000;
    let writer = parse(&record_text(
        "R",
        (0..n).map(|i| format!(r#"{{"name":"f{i}","type":"int"}}"#)),
    ));
    let reader = parse(&record_text(
        "R",
        (0..n)
            .rev()
            .map(|i| format!(r#"{{"name":"g{i}","type":"long","aliases":["f{i}"]}}"#)),
    ));
    let fields: Vec<String> = (0..n).rev().map(|i| format!(r#""f{i}":{i}"#)).collect();
    let json = format!("{{{}}}", fields.join(","));
    let avro = codec::json_to_avro(&writer, &json).expect("keys in any order");
    let text =
        codec::avro_to_json(&writer, Some(&reader), &avro, UnionStyle::Plain).expect("resolves");
    assert!(
        text.starts_with(&format!(r#"{{"g{}":{}"#, n - 1, n - 1)),
        "{}",
        &text[..40]
    );
    // An unknown key among many is named.
    let bad = json.replacen(r#""f0":0"#, r#""zz":0"#, 1);
    let e = codec::json_to_avro(&writer, &bad).expect_err("unknown field");
    assert!(e.message.contains("unknown field 'zz'"), "{e}");
}

#[test]
fn codec_errors_stay_short_whatever_the_schema() {
    // A union of 1,000 branches with long names: an error names the first ten.
    let branches: Vec<String> = (0..1_000)
        .map(|i| {
            format!(
                r#"{{"type":"fixed","name":"{}{i}","size":1}}"#,
                "F".repeat(500)
            )
        })
        .collect();
    let s = parse(&format!("[{}]", branches.join(",")));
    let e = codec::json_to_avro(&s, "true").expect_err("no boolean branch");
    assert!(e.to_string().len() < 8 * 1024, "{}", e.to_string().len());
    assert!(e.expected.contains("990 more"), "{}", &e.expected[..200]);
    // A reader that can't read a writer: the first ten reasons, and how many there are.
    let writer = parse(&record_text(
        "R",
        (0..5_000).map(|i| format!(r#"{{"name":"f{i}","type":"int"}}"#)),
    ));
    let reader = parse(&record_text(
        "R",
        (0..5_000).map(|i| format!(r#"{{"name":"f{i}","type":"string"}}"#)),
    ));
    let e = codec::check_readable(&writer, &reader).expect_err("incompatible");
    assert!(e.message.len() < 4 * 1024, "{}", e.message.len());
    assert!(e.message.ends_with("4990 more"), "{}", e.message);
}
