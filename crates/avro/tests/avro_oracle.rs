//! apache-avro 0.22 as a differential oracle (crates/avro/fuzz/common/oracle.rs): for
//! schemas and data generated from a seeded byte stream, both parse, print the same Parsing
//! Canonical Form and Rabin fingerprint, encode to the same bytes, decode each other's bytes,
//! and judge reader/writer pairs alike wherever the Avro specification is unambiguous. The
//! differences that remain are documented in docs/avro-oracle.md, with Java as the reference,
//! and pinned by the tests at the end.
//!
//! `AVRO_ORACLE_CASES` sets how many schemas (default 300); a failure prints its seed, and
//! `AVRO_ORACLE_SEED` replays one.

#[path = "../fuzz/common/oracle.rs"]
mod oracle;

use arbitrary::Unstructured;
use oracle::Tally;

/// splitmix64: the seeded byte stream the generator reads.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

#[test]
fn tributary_avro_and_apache_avro_agree_on_generated_schemas_and_data() {
    let cases: u64 = std::env::var("AVRO_ORACLE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seeds: Vec<u64> = match std::env::var("AVRO_ORACLE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(seed) => vec![seed],
        None => (0..cases).map(|i| 0x5EED_0000 + i).collect(),
    };
    let mut tally = Tally::default();
    for seed in seeds {
        let failed = tally.failures.len();
        let data = bytes(seed, 8192);
        oracle::run_case(&mut Unstructured::new(&data), &mut tally);
        for failure in &mut tally.failures[failed..] {
            *failure = format!("seed {seed}: {failure}");
        }
    }
    println!(
        "{} schemas, {} data, {} reader/writer pairs ({} compatible, {} resolutions), {} documented differences",
        tally.schemas, tally.data, tally.pairs, tally.compatible, tally.resolved, tally.documented
    );
    for (kind, count) in &tally.kinds {
        println!("  {count:>7}  {kind}");
    }
    assert!(
        tally.failures.is_empty(),
        "{} disagreements, the first ones:\n{}",
        tally.failures.len(),
        tally
            .failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The generator reaches every part of the comparison.
    assert!(tally.schemas > 0 && tally.data > 0 && tally.compatible > 0);
    assert!(tally.pairs > tally.compatible);
}

// ----- the documented differences, pinned (docs/avro-oracle.md) ---------------------------

fn both(text: &str) -> (tributary_avro::Schema, apache_avro::Schema) {
    oracle::parse_both(text).unwrap_or_else(|e| panic!("{e}"))
}

fn apache_compatible(reader: &apache_avro::Schema, writer: &apache_avro::Schema) -> bool {
    matches!(
        apache_avro::schema_compatibility::SchemaCompatibility::can_read(writer, reader),
        Ok(apache_avro::schema_compatibility::Compatibility::Full)
    )
}

fn apache_resolve(
    writer: &apache_avro::Schema,
    reader: &apache_avro::Schema,
    bytes: &[u8],
) -> Result<apache_avro::types::Value, String> {
    apache_avro::reader::datum::GenericDatumReader::builder(writer)
        .reader_schema(reader)
        .build()
        .and_then(|r| r.read_value(&mut &bytes[..]))
        .map_err(|e| e.to_string())
}

#[test]
fn fingerprints_agree_and_logical_types_are_where_the_forms_differ() {
    let (ours, theirs) = both(r#""int""#);
    assert_eq!(ours.parsing_canonical_form(), r#""int""#);
    let their_fp = theirs.fingerprint::<apache_avro::rabin::Rabin>().bytes;
    assert_eq!(
        ours.parsing_fingerprint64().to_le_bytes().to_vec(),
        their_fp
    );
    // The Avro specification's example value for "int" (as Java prints the long).
    assert_eq!(ours.parsing_fingerprint64(), 0x7275_d51a_3f39_5c8f);
    let text = r#"{"type":"record","name":"R","namespace":"a","fields":[{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}},{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}}]}"#;
    let (ours, theirs) = both(text);
    // Java: logical types are not part of the form.
    assert_eq!(
        ours.parsing_canonical_form(),
        r#"{"name":"a.R","type":"record","fields":[{"name":"t","type":"long"},{"name":"d","type":"bytes"}]}"#
    );
    assert_ne!(theirs.canonical_form(), ours.parsing_canonical_form());
    assert!(theirs.canonical_form().contains(r#"{"type":"long"}"#));
}

#[test]
fn a_renamed_type_with_its_old_name_as_alias_is_readable_for_java_only() {
    let (w, tw) = both(r#"{"type":"record","name":"a.Old","fields":[{"name":"x","type":"int"}]}"#);
    let (r, tr) = both(
        r#"{"type":"record","name":"a.New","aliases":["a.Old"],"fields":[{"name":"x","type":"int"}]}"#,
    );
    assert!(tributary_avro::compat::can_read(&r, &w).is_empty());
    assert!(!apache_compatible(&tr, &tw));
}

#[test]
fn a_decimal_scale_change_is_compatible_for_java_only() {
    let (w, tw) = both(r#"{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}"#);
    let (r, tr) = both(r#"{"type":"bytes","logicalType":"decimal","precision":9,"scale":3}"#);
    assert!(tributary_avro::compat::can_read(&r, &w).is_empty());
    assert!(!apache_compatible(&tr, &tw));
}

#[test]
fn apache_avro_resolution_ignores_reader_field_aliases() {
    let (w, tw) = both(r#"{"type":"record","name":"R","fields":[{"name":"old","type":"int"}]}"#);
    let (r, tr) = both(
        r#"{"type":"record","name":"R","fields":[{"name":"new","type":"int","aliases":["old"]}]}"#,
    );
    assert!(tributary_avro::compat::can_read(&r, &w).is_empty());
    assert!(apache_compatible(&tr, &tw));
    let bytes = tributary_avro::codec::json_to_avro(&w, r#"{"old":5}"#).expect("encodes");
    let ours = tributary_avro::codec::avro_to_json(
        &w,
        Some(&r),
        &bytes,
        tributary_avro::UnionStyle::Plain,
    );
    assert_eq!(ours.ok().as_deref(), Some(r#"{"new":5}"#));
    let theirs = apache_resolve(&tw, &tr, &bytes);
    assert!(theirs.is_err_and(|e| e.contains("Missing field")));
}

#[test]
fn apache_avro_resolves_union_values_by_shape_not_by_type() {
    // A string written, read as [fixed(3), bytes]: the specification (and Java) promotes it
    // to the bytes branch; apache-avro puts it in the fixed branch, whatever its size.
    let (w, tw) = both(r#""string""#);
    let (r, tr) = both(r#"[{"type":"fixed","name":"F","size":3},"bytes"]"#);
    assert!(tributary_avro::compat::can_read(&r, &w).is_empty());
    assert!(apache_compatible(&tr, &tw));
    let bytes = tributary_avro::codec::json_to_avro(&w, r#""ab""#).expect("encodes");
    let ours = tributary_avro::codec::avro_to_json(
        &w,
        Some(&r),
        &bytes,
        tributary_avro::UnionStyle::Tagged,
    );
    assert_eq!(ours.ok().as_deref(), Some(r#"{"bytes":"ab"}"#));
    let theirs = apache_resolve(&tw, &tr, &bytes).expect("apache-avro resolves it");
    assert!(
        matches!(theirs, apache_avro::types::Value::Union(0, _)),
        "{theirs:?}"
    );
}

#[test]
fn bytes_that_are_not_utf8_are_refused_as_a_string() {
    let (w, _) = both(r#""bytes""#);
    let (r, _) = both(r#""string""#);
    let bytes = tributary_avro::codec::json_to_avro(&w, r#""\u00ff""#).expect("encodes");
    let ours = tributary_avro::codec::avro_to_json(
        &w,
        Some(&r),
        &bytes,
        tributary_avro::UnionStyle::Plain,
    );
    assert!(ours.is_err_and(|e| e.message.contains("not UTF-8")));
}

#[test]
fn apache_avro_checks_a_decimal_values_size_the_wrong_way_round() {
    // 12.34 takes 2 bytes; apache-avro wants values of at least as many bytes as precision 7
    // could need (4) when it resolves.
    let schema = r#"{"type":"bytes","logicalType":"decimal","precision":7,"scale":2}"#;
    let (w, tw) = both(schema);
    let (_, tr) = both(schema);
    let bytes = tributary_avro::codec::json_to_avro(&w, r#""12.34""#).expect("encodes");
    assert_eq!(bytes, vec![0x04, 0x04, 0xd2]);
    let theirs = apache_resolve(&tw, &tr, &bytes);
    assert!(theirs.is_err_and(|e| e.contains("too small to hold decimal values")),);
    let plain = apache_avro::reader::datum::GenericDatumReader::builder(&tw)
        .build()
        .and_then(|r| r.read_value(&mut &bytes[..]));
    assert!(plain.is_ok());
}
