//! Canonical (Java `Schema.toString()`) and normalized (Confluent `normalize=true`) forms.

use tributary_avro::schema::Schema;

fn canonical(text: &str) -> String {
    match Schema::parse(text, &[]) {
        Ok(s) => s.canonical_string(),
        Err(e) => panic!("{text} failed to parse: {e}"),
    }
}

fn canonical_with(text: &str, refs: &[&str]) -> String {
    match Schema::parse(text, refs) {
        Ok(s) => s.canonical_string(),
        Err(e) => panic!("{text} failed to parse: {e}"),
    }
}

fn normalized(text: &str) -> String {
    match Schema::parse(text, &[]) {
        Ok(s) => s.normalized_string(),
        Err(e) => panic!("{text} failed to parse: {e}"),
    }
}

#[test]
fn primitives_collapse_to_their_name() {
    assert_eq!(canonical(r#""int""#), r#""int""#);
    assert_eq!(canonical(r#"{"type": "int"}"#), r#""int""#);
    assert_eq!(canonical(r#" { "type" : "string" } "#), r#""string""#);
    // Properties keep the object form, in insertion order.
    assert_eq!(
        canonical(r#"{"type":"string","avro.java.string":"String","x":{"b":1,"a":[true,null]}}"#),
        r#"{"type":"string","avro.java.string":"String","x":{"b":1,"a":[true,null]}}"#
    );
    // Keys Java reserves are dropped from primitives.
    assert_eq!(
        canonical(r#"{"type":"long","name":"ignored","doc":"d"}"#),
        r#""long""#
    );
}

#[test]
fn whitespace_and_key_order_collapse() {
    let a = r#"{"type":"record","name":"User","namespace":"com.ex","fields":[{"name":"id","type":"long"},{"name":"email","type":["null","string"],"default":null}]}"#;
    let b = r#"
        // Jackson (as configured by Avro) allows comments.
        {
          "fields": [
            { "type": "long", "name": "id" },
            { "default": null, "type": [ "null", "string" ], "name": "email" }
          ],
          "namespace": "com.ex", /* key order differs */
          "name": "User",
          "type": "record"
        }"#;
    assert_eq!(canonical(a), a);
    assert_eq!(canonical(b), a);
}

#[test]
fn key_order_follows_java() {
    let text = r#"{"aliases":["Old"],"x-prop":1,"fields":[{"aliases":["f0"],"order":"descending","default":"d","doc":"fd","type":"string","name":"f","fp":true}],"doc":"rd","namespace":"n","name":"R","type":"record"}"#;
    assert_eq!(
        canonical(text),
        r#"{"type":"record","name":"R","namespace":"n","doc":"rd","fields":[{"name":"f","type":"string","doc":"fd","default":"d","order":"descending","aliases":["f0"],"fp":true}],"x-prop":1,"aliases":["Old"]}"#
    );
    let en = r#"{"default":"B","symbols":["A","B"],"aliases":["n.E0","m.E1"],"p":"v","doc":"ed","name":"E","namespace":"n","type":"enum"}"#;
    assert_eq!(
        canonical(en),
        r#"{"type":"enum","name":"E","namespace":"n","doc":"ed","symbols":["A","B"],"default":"B","p":"v","aliases":["E0","m.E1"]}"#
    );
    let fx = r#"{"size":16,"logicalType":"decimal","precision":4,"scale":2,"name":"D","type":"fixed","aliases":["D0"]}"#;
    assert_eq!(
        canonical(fx),
        r#"{"type":"fixed","name":"D","size":16,"logicalType":"decimal","precision":4,"scale":2,"aliases":["D0"]}"#
    );
    assert_eq!(
        canonical(r#"{"items":"int","type":"array","p":1}"#),
        r#"{"type":"array","items":"int","p":1}"#
    );
    assert_eq!(
        canonical(r#"{"values":{"type":"map","values":"bytes"},"type":"map"}"#),
        r#"{"type":"map","values":{"type":"map","values":"bytes"}}"#
    );
    // Ascending order is not printed.
    assert_eq!(
        canonical(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","order":"ASCENDING"}]}"#
        ),
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#
    );
}

#[test]
fn nested_namespaces_are_written_relative_to_the_enclosing_record() {
    let text = r#"{"type":"record","name":"A","namespace":"x","fields":[
        {"name":"b","type":{"type":"record","name":"B","fields":[]}},
        {"name":"c","type":{"type":"enum","name":"y.C","symbols":["S"]}},
        {"name":"d","type":"B"},
        {"name":"e","type":"y.C"},
        {"name":"f","type":{"type":"fixed","name":"F","namespace":"","size":2}},
        {"name":"g","type":{"type":"record","name":"G","namespace":"y","fields":[
            {"name":"h","type":"x.B"},{"name":"i","type":"C"},{"name":"j","type":"F"}]}}
    ]}"#;
    assert_eq!(
        canonical(text),
        concat!(
            r#"{"type":"record","name":"A","namespace":"x","fields":["#,
            r#"{"name":"b","type":{"type":"record","name":"B","fields":[]}},"#,
            r#"{"name":"c","type":{"type":"enum","name":"C","namespace":"y","symbols":["S"]}},"#,
            r#"{"name":"d","type":"B"},"#,
            r#"{"name":"e","type":"y.C"},"#,
            r#"{"name":"f","type":{"type":"fixed","name":"F","namespace":"","size":2}},"#,
            r#"{"name":"g","type":{"type":"record","name":"G","namespace":"y","fields":["#,
            r#"{"name":"h","type":"x.B"},{"name":"i","type":"C"},{"name":"j","type":"F"}]}}]}"#
        )
    );
}

#[test]
fn a_named_type_used_twice_is_printed_by_name_the_second_time() {
    let text = r#"{"type":"record","name":"Pair","fields":[
        {"name":"left","type":{"type":"record","name":"Point","fields":[{"name":"x","type":"int"}]}},
        {"name":"right","type":"Point"},
        {"name":"all","type":{"type":"array","items":"Point"}}]}"#;
    assert_eq!(
        canonical(text),
        r#"{"type":"record","name":"Pair","fields":[{"name":"left","type":{"type":"record","name":"Point","fields":[{"name":"x","type":"int"}]}},{"name":"right","type":"Point"},{"name":"all","type":{"type":"array","items":"Point"}}]}"#
    );
    // Recursive types refer to themselves by name.
    let list = r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"],"default":null}]}"#;
    assert_eq!(canonical(list), list);
}

#[test]
fn references_are_printed_by_name() {
    let address = r#"{"type":"record","name":"Address","namespace":"com.ex","fields":[{"name":"street","type":"string"}]}"#;
    let user = r#"{"type":"record","name":"User","namespace":"com.ex","fields":[{"name":"home","type":"Address"},{"name":"work","type":"com.ex.Address"}]}"#;
    let s = Schema::parse(user, &[address]).expect("parses with its reference");
    assert_eq!(
        s.canonical_string(),
        r#"{"type":"record","name":"User","namespace":"com.ex","fields":[{"name":"home","type":"Address"},{"name":"work","type":"Address"}]}"#
    );
    assert_eq!(
        s.resolved_string(),
        r#"{"type":"record","name":"User","namespace":"com.ex","fields":[{"name":"home","type":{"type":"record","name":"Address","fields":[{"name":"street","type":"string"}]}},{"name":"work","type":"Address"}]}"#
    );
    assert_eq!(s.defined_names(), vec!["com.ex.User".to_owned()]);
    assert_eq!(s.referenced_names(), vec!["com.ex.Address".to_owned()]);
    assert_eq!(s.full_name().as_deref(), Some("com.ex.User"));
    assert_eq!(s.type_name(), "record");
    // A reference used from another namespace is written in full.
    let other = r#"{"type":"record","name":"Order","namespace":"com.shop","fields":[{"name":"to","type":"com.ex.Address"}]}"#;
    assert_eq!(
        canonical_with(other, &[address]),
        r#"{"type":"record","name":"Order","namespace":"com.shop","fields":[{"name":"to","type":"com.ex.Address"}]}"#
    );
    // A top-level union of references (Confluent's "all types in one topic" pattern).
    let union = r#"["com.ex.Address", "com.ex.User"]"#;
    assert_eq!(
        canonical_with(union, &[address, user]),
        r#"["com.ex.Address","com.ex.User"]"#
    );
    // Without the reference the type is unknown.
    assert!(Schema::parse(user, &[]).is_err());
}

#[test]
fn defaults_are_reserialized_like_jackson() {
    let text = r#"{"type":"record","name":"R","fields":[
        {"name":"d","type":"double","default":"1"},
        {"name":"f","type":"float","default":1.50},
        {"name":"e","type":"double","default":1e2},
        {"name":"big","type":"double","default":1e21},
        {"name":"l","type":"long","default":-0},
        {"name":"nan","type":"double","default":"NaN"},
        {"name":"s","type":"string","default":"tab\there \u00e9 \u0001"},
        {"name":"m","type":{"type":"map","values":"int"},"default":{"b":1,"a":2}}]}"#;
    assert_eq!(
        canonical(text),
        concat!(
            r#"{"type":"record","name":"R","fields":["#,
            r#"{"name":"d","type":"double","default":1.0},"#,
            r#"{"name":"f","type":"float","default":1.5},"#,
            r#"{"name":"e","type":"double","default":100.0},"#,
            r#"{"name":"big","type":"double","default":1.0E21},"#,
            r#"{"name":"l","type":"long","default":0},"#,
            r#"{"name":"nan","type":"double","default":"NaN"},"#,
            "{\"name\":\"s\",\"type\":\"string\",\"default\":\"tab\\there \u{e9} \\u0001\"},",
            r#"{"name":"m","type":{"type":"map","values":"int"},"default":{"b":1,"a":2}}]}"#
        )
    );
}

#[test]
fn trailing_content_is_ignored_like_jackson() {
    assert_eq!(canonical(r#"{"type":"int"} trailing garbage"#), r#""int""#);
}

#[test]
fn error_types_and_invalid_logical_types_are_kept() {
    assert_eq!(
        canonical(r#"{"type":"error","name":"Oops","fields":[]}"#),
        r#"{"type":"error","name":"Oops","fields":[]}"#
    );
    // An invalid logical type is ignored but its properties stay.
    let s = Schema::parse(
        r#"{"type":"int","logicalType":"decimal","precision":4}"#,
        &[],
    )
    .expect("parses");
    assert_eq!(s.root_node().logical_type, None);
    assert_eq!(
        s.canonical_string(),
        r#"{"type":"int","logicalType":"decimal","precision":4}"#
    );
}

#[test]
fn normalization_sorts_properties_and_qualifies_names() {
    let text = r#"{"type":"record","name":"R","namespace":"n","doc":"","aliases":["Z","A"],"zz":1,"aa":{"y":1,"x":2},
        "fields":[{"name":"f","type":{"type":"enum","name":"E","symbols":["A","B"],"default":"A"},"doc":"fd","aliases":["q","p"]},
                  {"name":"g","type":"E"},
                  {"name":"h","type":"float","default":1},
                  {"name":"b","type":{"type":"bytes","scale":2,"precision":4,"logicalType":"decimal","a":0}}]}"#;
    assert_eq!(
        normalized(text),
        concat!(
            r#"{"type":"record","name":"R","namespace":"n","fields":["#,
            r#"{"name":"f","type":{"type":"enum","name":"E","symbols":["A","B"],"default":"A"},"doc":"fd","aliases":["p","q"]},"#,
            r#"{"name":"g","type":"E"},"#,
            r#"{"name":"h","type":"float","default":1.0},"#,
            r#"{"name":"b","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2,"a":0}}],"#,
            r#""aa":{"x":2,"y":1},"zz":1,"aliases":["A","Z"]}"#
        )
    );
    // Already-normal schemas are unchanged, and normalization is idempotent.
    let simple = r#"{"type":"record","name":"S","fields":[{"name":"a","type":"int"}]}"#;
    assert_eq!(normalized(simple), simple);
    let once = normalized(text);
    assert_eq!(normalized(&once), once);
    // Property order differences disappear.
    assert_eq!(
        normalized(r#"{"type":"string","b":1,"a":2}"#),
        normalized(r#"{"type":"string","a":2,"b":1}"#)
    );
}

#[test]
fn normalization_keeps_references_by_name() {
    let address = r#"{"type":"record","name":"Address","namespace":"com.ex","fields":[{"name":"street","type":"string"}]}"#;
    let user = r#"{"type":"record","name":"User","namespace":"com.ex","fields":[{"name":"home","type":"Address"}]}"#;
    let s = Schema::parse(user, &[address]).expect("parses");
    assert_eq!(
        s.normalized_string(),
        r#"{"type":"record","name":"User","namespace":"com.ex","fields":[{"name":"home","type":"Address"}]}"#
    );
}

#[test]
fn canonical_strings_reparse_to_themselves() {
    let samples = [
        r#"{"type":"record","name":"A","namespace":"x","fields":[{"name":"f","type":{"type":"fixed","name":"F","namespace":"","size":2}},{"name":"g","type":"F"}]}"#,
        r#"["null",{"type":"map","values":{"type":"array","items":{"type":"enum","name":"E","symbols":["X"]}}},"E"]"#,
        r#"{"type":"record","name":"L","fields":[{"name":"v","type":"long","default":12345678901234567890},{"name":"n","type":["L","null"]}]}"#,
    ];
    for text in samples {
        let once = match Schema::parse_with_options(
            text,
            &[],
            tributary_avro::schema::ParseOptions {
                validate_defaults: false,
            },
        ) {
            Ok(s) => s.canonical_string(),
            Err(e) => panic!("{text}: {e}"),
        };
        let twice = Schema::parse_with_options(
            &once,
            &[],
            tributary_avro::schema::ParseOptions {
                validate_defaults: false,
            },
        )
        .map(|s| s.canonical_string());
        assert_eq!(twice.as_deref(), Ok(once.as_str()), "{text}");
    }
}

/// Found by fuzzing (`schema_parse`, docs/fuzzing.md "Findings"): the Parsing Canonical Form
/// names a null-namespace type nested in a namespaced one by its bare name, as Java's
/// `SchemaNormalization` does (the spec's [FULLNAMES]: its full name is the bare name). That form
/// drops namespaces, so read back the bare name lands in the enclosing namespace: for such a
/// schema the form is not a fixed point. Confluent's normalized text
/// (`AvroSchemaUtils.toNormalizedString`, adapted from `SchemaNormalization`) writes names the
/// same way and is then parsed again, so `normalize=true` moves the type into the enclosing
/// namespace, as Confluent's does; kept for the same stored texts. The canonical string keeps
/// the null namespace.
#[test]
fn parsing_canonical_form_of_a_null_namespace_type_inside_a_namespaced_one() {
    let text = r#"{"type":"record","name":"a.b.R","fields":[{"name":"f","type":{"type":"enum","name":".E","symbols":["X","Y"]}}]}"#;
    let schema = Schema::parse(text, &[]).expect("the schema parses");
    assert_eq!(schema.defined_names(), ["a.b.R", "E"]);
    let pcf = schema.parsing_canonical_form();
    assert_eq!(
        pcf,
        r#"{"name":"a.b.R","type":"record","fields":[{"name":"f","type":{"name":"E","type":"enum","symbols":["X","Y"]}}]}"#
    );
    let again = Schema::parse(&pcf, &[]).expect("the form parses");
    assert_eq!(again.defined_names(), ["a.b.R", "a.b.E"]);
    assert_ne!(again.parsing_canonical_form(), pcf);

    let normalized = Schema::parse(&schema.normalized_string(), &[]).expect("it parses");
    assert_eq!(normalized.defined_names(), ["a.b.R", "a.b.E"]);

    let canonical = schema.canonical_string();
    let reread = Schema::parse(&canonical, &[]).expect("the canonical string parses");
    assert_eq!(reread.defined_names(), schema.defined_names());
    assert_eq!(reread.parsing_canonical_form(), pcf);
    assert_eq!(reread.canonical_string(), canonical);
}

/// Found by fuzzing (`schema_parse`, docs/fuzzing.md "Findings" 2), the same root as the test
/// above: a null-namespace enum `".E"` beside a fixed `E` of the enclosing namespace `a.b`. The
/// Parsing Canonical Form names them `"E"` and `"a.b.E"`; read back both are `a.b.E`, so the form
/// does not parse at all. Java 1.11.4 prints the same form, the same fingerprint
/// (6315812841830510066) and fails the same way ("Can't redefine: a.b.E"). The form is only
/// fingerprinted, never parsed, by the services. Confluent's normalized text is built the same way
/// and fails to parse again; the normalized string then falls back to the canonical string, which
/// keeps both names.
#[test]
fn parsing_canonical_form_that_redefines_a_name_when_read_back() {
    let text = r#"{"type":"record","name":"a.b.Ru","fields":[{"name":"f","type":{"type":"enum","name":".E","symbols":["X","Y"]}},{"name":"u","type":["null",{"type":"fixed","name":"E","size":1}]}]}"#;
    let schema = Schema::parse(text, &[]).expect("the schema parses");
    assert_eq!(schema.defined_names(), ["a.b.Ru", "E", "a.b.E"]);
    let pcf = schema.parsing_canonical_form();
    assert_eq!(
        pcf,
        r#"{"name":"a.b.Ru","type":"record","fields":[{"name":"f","type":{"name":"E","type":"enum","symbols":["X","Y"]}},{"name":"u","type":["null",{"name":"a.b.E","type":"fixed","size":1}]}]}"#
    );
    assert_eq!(schema.parsing_fingerprint64(), 6315812841830510066);
    let error = Schema::parse(&pcf, &[]).expect_err("the form redefines a.b.E");
    assert!(error.to_string().contains("redefine 'a.b.E'"), "{error}");

    let canonical = schema.canonical_string();
    assert_eq!(schema.normalized_string(), canonical);
    let reread = Schema::parse(&canonical, &[]).expect("the canonical string parses");
    assert_eq!(reread.defined_names(), schema.defined_names());
    assert_eq!(reread.parsing_canonical_form(), pcf);
}
