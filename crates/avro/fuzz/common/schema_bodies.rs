//! Bodies of the schema fuzz targets (`schema_parse`, `compat`), shared with the stable property
//! test (`crates/avro/tests/codec_fuzz.rs` includes this file).
//!
//! Inputs are schema texts as a client sends them, parsed within [`Limits::default`] (the
//! services' budgets), with references: NUL bytes separate texts, the last one is the schema and
//! those before it its references (dependencies first). Every printed form must parse again and
//! print the same, and nothing may panic except a broken invariant.

use tributary_avro::compat::{self, CompatibilityLevel};
use tributary_avro::schema::{ParseOptions, rabin_fingerprint};
use tributary_avro::{Limits, Schema, SchemaError};

/// The options of a parse, from a flags byte: bit 0 turns default validation off (as the
/// registry reads what it stores).
fn options(flags: u8) -> ParseOptions {
    ParseOptions {
        validate_defaults: flags & 1 == 0,
    }
}

/// The texts of an input: (references, schema).
fn texts(text: &str) -> (Vec<&str>, &str) {
    let mut parts: Vec<&str> = text.split('\0').collect();
    let schema = parts.pop().unwrap_or_default();
    (parts, schema)
}

/// A printed form parses again (as a stored schema: default validation off, the structural
/// budgets lifted), except where it may legitimately be deeper than the ceiling: the forms that
/// inline references nest them inside the schema.
fn reparse(what: &str, text: &str, references: &[&str], inlined: bool) -> Option<Schema> {
    match parse_stored(text, references) {
        Ok(schema) => Some(schema),
        Err(SchemaError::Limit { .. }) if inlined => None,
        Err(e) => panic!("the {what} {text} does not parse again: {e}"),
    }
}

/// A text parsed as the registry reads what it stored.
fn parse_stored(text: &str, references: &[&str]) -> Result<Schema, SchemaError> {
    let keep = ParseOptions {
        validate_defaults: false,
    };
    Schema::parse_with_limits(text, references, keep, &Limits::default().for_stored())
}

/// Parse, print (canonical, resolved, normalized, Parsing Canonical Form) and fingerprint a
/// schema; each printed form must parse again and print itself. Returns whether the schema
/// parsed.
pub fn schema_parse(data: &[u8]) -> bool {
    let Some((&flags, rest)) = data.split_first() else {
        return false;
    };
    let text = String::from_utf8_lossy(rest);
    let (references, text) = texts(&text);
    let Ok(schema) =
        Schema::parse_with_limits(text, &references, options(flags), &Limits::default())
    else {
        return false;
    };

    let canonical = schema.canonical_string();
    let again = reparse("canonical string", &canonical, &references, false)
        .expect("not inlined: within the ceilings");
    assert_eq!(again.canonical_string(), canonical, "canonical string");
    let pcf = schema.parsing_canonical_form();
    assert_eq!(again.parsing_canonical_form(), pcf, "form of the canonical");
    assert_eq!(
        schema.parsing_fingerprint64(),
        rabin_fingerprint(pcf.as_bytes())
    );
    assert_eq!(again.defined_names(), schema.defined_names());
    assert_eq!(again.type_name(), schema.type_name());
    assert_eq!(again.full_name(), schema.full_name());

    // The Parsing Canonical Form and Confluent's normalized text write full names without
    // namespaces, so they cannot say that a type inside a namespaced one is in the null
    // namespace (`"name":".E"`): its `"E"` reads back in the enclosing namespace, in Java as
    // here. For such a schema neither form keeps the names, and the Parsing Canonical Form may
    // not even parse again: `".E"` and a sibling `a.b.E` both read back as `a.b.E`, "can't
    // redefine" in Java as here (docs/fuzzing.md, "Findings" 1 and 2). Confluent's normalized
    // text is re-parsed when it is made, so it always parses.
    let names = schema.defined_names();
    let null_namespace_inside =
        names.iter().any(|n| !n.contains('.')) && names.iter().any(|n| n.contains('.'));
    if null_namespace_inside {
        let _ = parse_stored(&pcf, &[]);
    } else if let Some(form) = reparse("Parsing Canonical Form", &pcf, &[], true) {
        assert_eq!(form.parsing_canonical_form(), pcf, "Parsing Canonical Form");
    }
    let resolved = schema.resolved_string();
    if let Some(inlined) = reparse("resolved string", &resolved, &[], true) {
        assert_eq!(
            inlined.parsing_canonical_form(),
            pcf,
            "form of the resolved"
        );
        assert_eq!(inlined.resolved_string(), resolved, "resolved string");
    }
    let normalized = schema.normalized_string();
    if let Some(twice) = reparse("normalized string", &normalized, &references, false) {
        assert_eq!(twice.normalized_string(), normalized, "normalized string");
        if !null_namespace_inside {
            assert_eq!(
                twice.parsing_canonical_form(),
                pcf,
                "form of the normalized"
            );
        }
    }
    for name in schema.defined_names() {
        let id = schema.lookup(&name).expect("a defined name is known");
        let _ = schema.fragment_string(id);
    }
    true
}

/// The compatibility levels, by index.
const LEVELS: [CompatibilityLevel; 7] = [
    CompatibilityLevel::None,
    CompatibilityLevel::Backward,
    CompatibilityLevel::BackwardTransitive,
    CompatibilityLevel::Forward,
    CompatibilityLevel::ForwardTransitive,
    CompatibilityLevel::Full,
    CompatibilityLevel::FullTransitive,
];

/// Two schemas (NUL-separated, after a flags byte) through [`compat::Checker`] both ways, with
/// one checker as the registry does, and through [`compat::check`] at a level the flags pick:
/// within the work budget, the reports listing at most the budgeted incompatibilities and
/// counting the rest, every reason printable. Returns whether both schemas parsed.
pub fn compat(data: &[u8]) -> bool {
    let Some((&flags, rest)) = data.split_first() else {
        return false;
    };
    let text = String::from_utf8_lossy(rest);
    let Some((first, second)) = text.split_once('\0') else {
        return false;
    };
    let limits = Limits {
        // Small enough that the fuzzer meets it, as a service meets its budget.
        incompatibilities: 1 + usize::from(flags >> 4),
        ..Limits::default()
    };
    let parse = |text: &str| Schema::parse_with_limits(text, &[], options(flags), &limits);
    let (Ok(a), Ok(b)) = (parse(first), parse(second)) else {
        return false;
    };
    let mut checker = compat::Checker::new(&limits);
    for (reader, writer) in [(&a, &b), (&b, &a), (&a, &a)] {
        let before = checker.work_spent();
        let Ok(report) = checker.can_read(reader, writer) else {
            assert!(checker.work_spent() >= before);
            continue;
        };
        let listed = report.incompatibilities.len();
        assert!(listed <= limits.incompatibilities, "{listed} listed");
        assert!(report.total >= listed as u64, "total {}", report.total);
        assert_eq!(report.is_compatible(), listed == 0);
        for incompatibility in &report.incompatibilities {
            let _ = incompatibility.to_string();
            let _ = incompatibility.reader_fragment(reader);
            let _ = incompatibility.writer_fragment(writer);
        }
    }
    assert!(checker.work_spent() <= limits.work.saturating_add(1));

    let level = LEVELS[usize::from(flags >> 1) % LEVELS.len()];
    let existing = [&a];
    let messages = compat::check(level, &b, &existing);
    let _ = compat::confluent_messages(level, &messages, &existing, &[1]);
    true
}
