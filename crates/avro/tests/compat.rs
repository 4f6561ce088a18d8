//! Compatibility details beyond the shared corpus: exact kinds, locations and messages (as Java
//! reports them), Confluent's message format and level semantics, recursion.

use tributary_avro::compat::{
    self, CompatibilityLevel, Direction, IncompatibilityKind, can_read, check,
};
use tributary_avro::schema::Schema;

fn schema(text: &str) -> Schema {
    match Schema::parse(text, &[]) {
        Ok(s) => s,
        Err(e) => panic!("{text}: {e}"),
    }
}

fn summary(reader: &Schema, writer: &Schema) -> Vec<(String, String, String)> {
    can_read(reader, writer)
        .into_iter()
        .map(|i| (i.kind.as_str().to_owned(), i.location, i.message))
        .collect()
}

fn triples(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    items
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect()
}

/// Java's TestSchemaCompatibilityMultiple, under Avro 1.11 (names compare unqualified, so the
/// `nsA.recordA` / `not_nsA.recordA` pair no longer mismatches: 9 incompatibilities).
#[test]
fn multiple_incompatibilities_are_all_reported_with_java_locations() {
    let reader = schema(
        r#"{"type":"record","name":"base","fields":[
        {"name":"check_enum_symbols_field","type":{"type":"enum","name":"check_enum_symbols_type","symbols":["A","C"]}},
        {"name":"check_enum_name_field","type":{"type":"enum","name":"check_enum_name_type","symbols":["A","B","C","D"]}},
        {"name":"type_mismatch_field","type":"string"},
        {"name":"sub_record","type":{"type":"record","name":"sub_record_type","fields":[
            {"name":"identical_1_field","type":"long","default":42},
            {"name":"extra_no_default_field","type":"long"},
            {"name":"fixed_length_mismatch_field","type":{"type":"fixed","name":"fixed_length_mismatch_type","size":4}},
            {"name":"union_missing_branches_field","type":["boolean"]},
            {"name":"reader_union_does_not_support_type_field","type":["boolean"]},
            {"name":"record_fqn_mismatch_field","type":{"type":"record","name":"recordA","namespace":"not_nsA","fields":[
                {"name":"A_field_0","type":"boolean","default":true},
                {"name":"array_type_mismatch_field","type":{"type":"array","items":"string"}}]}}]}}]}"#,
    );
    let writer = schema(
        r#"{"type":"record","name":"base","fields":[
        {"name":"check_enum_symbols_field","type":{"type":"enum","name":"check_enum_symbols_type","symbols":["A","B","C","D"]}},
        {"name":"check_enum_name_field","type":{"type":"enum","name":"check_enum_name_type_ERR","symbols":["A","B","C","D"]}},
        {"name":"type_mismatch_field","type":"long"},
        {"name":"sub_record","type":{"type":"record","name":"sub_record_type","fields":[
            {"name":"identical_1_field","type":"long","default":42},
            {"name":"fixed_length_mismatch_field","type":{"type":"fixed","name":"fixed_length_mismatch_type","size":8}},
            {"name":"union_missing_branches_field","type":["boolean","double","string"]},
            {"name":"reader_union_does_not_support_type_field","type":"long"},
            {"name":"record_fqn_mismatch_field","type":{"type":"record","name":"recordA","namespace":"nsA","fields":[
                {"name":"A_field_0","type":"boolean","default":true},
                {"name":"array_type_mismatch_field","type":{"type":"array","items":"boolean"}}]}}]}}]}"#,
    );
    assert_eq!(
        summary(&reader, &writer),
        triples(&[
            ("MISSING_ENUM_SYMBOLS", "/fields/0/type/symbols", "[B, D]"),
            (
                "NAME_MISMATCH",
                "/fields/1/type/name",
                "expected: check_enum_name_type_ERR"
            ),
            (
                "TYPE_MISMATCH",
                "/fields/2/type",
                "reader type: STRING not compatible with writer type: LONG"
            ),
            (
                "READER_FIELD_MISSING_DEFAULT_VALUE",
                "/fields/3/type/fields/1",
                "extra_no_default_field"
            ),
            (
                "FIXED_SIZE_MISMATCH",
                "/fields/3/type/fields/2/type/size",
                "expected: 8, found: 4"
            ),
            (
                "MISSING_UNION_BRANCH",
                "/fields/3/type/fields/3/type/1",
                "reader union lacking writer type: DOUBLE"
            ),
            (
                "MISSING_UNION_BRANCH",
                "/fields/3/type/fields/3/type/2",
                "reader union lacking writer type: STRING"
            ),
            (
                "MISSING_UNION_BRANCH",
                "/fields/3/type/fields/4/type",
                "reader union lacking writer type: LONG"
            ),
            (
                "TYPE_MISMATCH",
                "/fields/3/type/fields/5/type/fields/1/type/items",
                "reader type: STRING not compatible with writer type: BOOLEAN"
            ),
        ])
    );
    let all = can_read(&reader, &writer);
    assert_eq!(all[7].reader_fragment(&reader), r#"["boolean"]"#);
    assert_eq!(all[7].writer_fragment(&writer), r#""long""#);
    assert_eq!(
        all[2].to_string(),
        "TYPE_MISMATCH at /fields/2/type: reader type: STRING not compatible with writer type: LONG"
    );
}

#[test]
fn writer_union_branches_get_their_index_in_the_location() {
    let reader =
        schema(r#"{"type":"record","name":"Account","fields":[{"name":"age","type":"int"}]}"#);
    let writer = schema(
        r#"{"type":"record","name":"Account","fields":[{"name":"age","type":["null","int"],"default":null}]}"#,
    );
    assert_eq!(
        summary(&reader, &writer),
        triples(&[(
            "TYPE_MISMATCH",
            "/fields/0/type/0",
            "reader type: INT not compatible with writer type: NULL"
        )])
    );
}

#[test]
fn names_aliases_promotions_and_logical_types() {
    // Unqualified names match; reader aliases match the writer's full name.
    assert!(
        can_read(
            &schema(r#"{"type":"fixed","name":"a.F","size":2}"#),
            &schema(r#"{"type":"fixed","name":"b.F","size":2}"#)
        )
        .is_empty()
    );
    assert!(
        can_read(
            &schema(r#"{"type":"enum","name":"New","aliases":["old.Old"],"symbols":["A"]}"#),
            &schema(r#"{"type":"enum","name":"old.Old","symbols":["A"]}"#)
        )
        .is_empty()
    );
    let mismatch = summary(
        &schema(r#"{"type":"enum","name":"New","aliases":["Old"],"symbols":["A"]}"#),
        &schema(r#"{"type":"enum","name":"x.Old","symbols":["A"]}"#),
    );
    assert_eq!(
        mismatch,
        triples(&[("NAME_MISMATCH", "/name", "expected: x.Old")])
    );
    // Promotions.
    for (reader, writer, ok) in [
        ("long", "int", true),
        ("float", "long", true),
        ("double", "float", true),
        ("string", "bytes", true),
        ("bytes", "string", true),
        ("int", "long", false),
        ("float", "double", false),
        ("null", "int", false),
    ] {
        let r = schema(&format!("\"{reader}\""));
        let w = schema(&format!("\"{writer}\""));
        assert_eq!(can_read(&r, &w).is_empty(), ok, "{reader} reading {writer}");
    }
    // Logical types are ignored: resolution is on the underlying type.
    assert!(
        can_read(
            &schema(r#"{"type":"long","logicalType":"timestamp-millis"}"#),
            &schema(r#"{"type":"int","logicalType":"date"}"#)
        )
        .is_empty()
    );
    // Enum defaults cover missing symbols.
    assert!(
        can_read(
            &schema(r#"{"type":"enum","name":"E","symbols":["A","U"],"default":"U"}"#),
            &schema(r#"{"type":"enum","name":"E","symbols":["A","B"]}"#)
        )
        .is_empty()
    );
}

#[test]
fn recursive_schemas_terminate() {
    let list = schema(
        r#"{"type":"record","name":"L","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","L"]}]}"#,
    );
    let list_long = schema(
        r#"{"type":"record","name":"L","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","L"]}]}"#,
    );
    assert!(can_read(&list, &list).is_empty());
    assert!(can_read(&list_long, &list).is_empty());
    assert_eq!(
        summary(&list, &list_long),
        triples(&[(
            "TYPE_MISMATCH",
            "/fields/0/type",
            "reader type: INT not compatible with writer type: LONG"
        )])
    );
}

fn chain(prefix: &str, i: usize, n: usize) -> String {
    let next = if i + 1 == n {
        format!("\"{prefix}0\"")
    } else {
        chain(prefix, i + 1, n)
    };
    format!(
        r#"{{"type":"record","name":"{prefix}{i}","fields":[{{"name":"v","type":"int"}},{{"name":"next","type":["null",{next}]}}]}}"#
    )
}

#[test]
fn pathological_recursion_is_bounded() {
    // Two recursive chains with coprime periods: the pairwise walk would go 50*51 pairs deep.
    let reader = schema(&chain("A", 0, 50));
    let writer = schema(&chain("A", 0, 51));
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || can_read(&reader, &writer))
        .expect("thread starts");
    let found = handle.join().expect("no stack overflow or panic");
    assert!(!found.is_empty());
    assert!(
        found
            .iter()
            .any(|i| i.kind == IncompatibilityKind::UnexpectedError)
    );
}

#[test]
fn levels_apply_like_confluent() {
    let v1 = schema(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#);
    let v2 = schema(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0}]}"#,
    );
    let v3 =
        schema(r#"{"type":"record","name":"R","fields":[{"name":"b","type":"int","default":0}]}"#);
    // v3 drops `a` (no default): old readers can't read it.
    assert!(check(CompatibilityLevel::Backward, &v3, &[&v1, &v2]).is_empty());
    let fwd = check(CompatibilityLevel::Forward, &v3, &[&v1, &v2]);
    assert_eq!(fwd.len(), 1);
    assert_eq!(fwd[0].existing_index, 1);
    assert_eq!(fwd[0].direction, Direction::OldReadsNew);
    assert_eq!(
        fwd[0].confluent_error(),
        "{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'a' at path '/fields/0' in the old schema has no default value and is missing in the new schema', additionalInfo:'a'}"
    );
    // A new required field: BACKWARD fails with the new schema as reader.
    let v4 = schema(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"x","type":"string"}]}"#,
    );
    let back = check(CompatibilityLevel::Backward, &v4, &[&v1]);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].direction, Direction::NewReadsOld);
    assert_eq!(
        back[0].confluent_error(),
        "{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'x' at path '/fields/1' in the new schema has no default value and is missing in the old schema', additionalInfo:'x'}"
    );
    assert_eq!(
        compat::confluent_messages(CompatibilityLevel::Backward, &back, &[&v1], &[1]),
        vec![
            back[0].confluent_error(),
            "{oldSchemaVersion: 1}".to_owned(),
            format!("{{oldSchema: '{}'}}", v1.canonical_string()),
        ]
    );
    // Transitive levels check older versions too, newest first, stopping at the first failure.
    let v5 = schema(
        r#"{"type":"record","name":"R","fields":[{"name":"b","type":"int","default":0},{"name":"a","type":"long","default":0}]}"#,
    );
    let old_a_string =
        schema(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#);
    assert!(check(CompatibilityLevel::Backward, &v5, &[&old_a_string, &v1]).is_empty());
    let t = check(
        CompatibilityLevel::BackwardTransitive,
        &v5,
        &[&old_a_string, &v1],
    );
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].existing_index, 0);
    assert_eq!(t[0].incompatibility.kind, IncompatibilityKind::TypeMismatch);
    // FULL reports the forward half first.
    let v6 = schema(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"y","type":"string"}]}"#,
    );
    let full = check(CompatibilityLevel::Full, &v4, &[&v6]);
    let got: Vec<(Direction, String)> = full
        .iter()
        .map(|m| (m.direction, m.incompatibility.message.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Direction::OldReadsNew, "y".to_owned()),
            (Direction::NewReadsOld, "x".to_owned())
        ]
    );
    // Confluent appends the old schema only after the backward half.
    let forward_only = check(CompatibilityLevel::Full, &v3, &[&v1]);
    assert!(
        forward_only
            .iter()
            .all(|m| m.direction == Direction::OldReadsNew)
    );
    assert_eq!(
        compat::confluent_messages(CompatibilityLevel::Full, &forward_only, &[&v1], &[1]).len(),
        forward_only.len()
    );
    // NONE and an empty subject accept anything.
    assert!(check(CompatibilityLevel::None, &v4, &[&old_a_string]).is_empty());
    assert!(check(CompatibilityLevel::FullTransitive, &v4, &[]).is_empty());
}
