//! Parse acceptance and rejection (following Java Avro 1.11), error paths, and robustness on
//! malformed input.

use tributary_avro::schema::{NodeKind, ParseOptions, Schema, SchemaError};

fn err(text: &str) -> SchemaError {
    match Schema::parse(text, &[]) {
        Ok(s) => panic!(
            "{text} should be rejected, parsed as {}",
            s.canonical_string()
        ),
        Err(e) => e,
    }
}

fn ok(text: &str) -> Schema {
    match Schema::parse(text, &[]) {
        Ok(s) => s,
        Err(e) => panic!("{text} should parse: {e}"),
    }
}

#[test]
fn errors_name_the_json_path() {
    let e = err(
        r#"{"type":"record","name":"P","namespace":"com.ex","fields":[
            {"name":"a","type":"int"},{"name":"b","type":"string"},{"name":"c","type":"com.ex.Adress"}]}"#,
    );
    assert_eq!(
        e,
        SchemaError::UnknownType {
            name: "com.ex.Adress".to_owned(),
            path: "/fields/2/type".to_owned()
        }
    );
    assert_eq!(
        e.to_string(),
        "invalid schema at /fields/2/type: unknown type 'com.ex.Adress'"
    );

    let e = err(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"array","items":["int","int"]}}]}"#,
    );
    assert_eq!(e.path(), Some("/fields/0/type/items/1"));
    assert!(
        e.to_string().contains("duplicate type 'int' in union"),
        "{e}"
    );

    let e =
        err(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":"x"}]}"#);
    assert!(
        matches!(e, SchemaError::InvalidDefault { ref field, ref path, .. } if field == "a" && path == "/fields/0"),
        "{e}"
    );

    let e = err(r#"{"type":"enum","name":"E","symbols":["A","1B"]}"#);
    assert_eq!(e.path(), Some("/symbols/1"));

    let e = err("{\"type\": \"record\",\n \"name\": \"R\" \"fields\": []}");
    assert!(
        matches!(e, SchemaError::InvalidJson { line: 2, .. }),
        "{e:?}"
    );

    let e = Schema::parse(
        r#""com.ex.Address""#,
        &[r#"{"type":"record","name":"A","fields":[{"name":"x","type":"Nope"}]}"#],
    )
    .err();
    assert!(
        matches!(e, Some(SchemaError::Reference { index: 0, .. })),
        "{e:?}"
    );
}

#[test]
fn rejects_what_java_rejects() {
    let cases = [
        // Records need a name and fields.
        r#"{"type":"record","fields":[]}"#,
        r#"{"type":"record","name":"R"}"#,
        r#"{"type":"record","name":"","fields":[]}"#,
        r#"{"type":"record","name":"R","fields":{}}"#,
        // Names must be valid identifiers.
        r#"{"type":"record","name":"my-record","fields":[]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"1st","type":"int"}]}"#,
        r#"{"type":"fixed","name":"a.b.","size":1}"#,
        r#"{"type":"record","name":"R","aliases":["bad name"],"fields":[]}"#,
        // Named after a primitive.
        r#"{"type":"fixed","name":"int","size":1}"#,
        // Forward references and redefinitions.
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"Later"},{"name":"b","type":{"type":"fixed","name":"Later","size":1}}]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"fixed","name":"R","size":1}}]}"#,
        // Duplicate fields, symbols.
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"a","type":"long"}]}"#,
        r#"{"type":"enum","name":"E","symbols":["A","A"]}"#,
        r#"{"type":"enum","name":"E","symbols":["A"],"default":"B"}"#,
        r#"{"type":"enum","name":"E"}"#,
        // Unions.
        r#"["int",["null","string"]]"#,
        r#"["null","null"]"#,
        r#"[{"type":"array","items":"int"},{"type":"array","items":"long"}]"#,
        r#"[{"type":"fixed","name":"F","size":1},"F"]"#,
        // Fixed sizes.
        r#"{"type":"fixed","name":"F","size":-1}"#,
        r#"{"type":"fixed","name":"F","size":"4"}"#,
        r#"{"type":"fixed","name":"F","size":4.0}"#,
        r#"{"type":"fixed","name":"F"}"#,
        // Containers need their type.
        r#"{"type":"array"}"#,
        r#"{"type":"map"}"#,
        // Unknown types and non-schema JSON.
        r#""strnig""#,
        r#"{"type":"strnig"}"#,
        r#"{"type":{"type":"int"}}"#,
        r#"{"name":"x"}"#,
        "42",
        "null",
        "",
        "   ",
        // Invalid orders and aliases.
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","order":"sideways"}]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","aliases":"b"}]}"#,
        // Invalid defaults.
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":1.5}]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":2147483648}]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":["null","int"],"default":1}]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"double","default":"abc"}]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"boolean","default":"true"}]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"array","items":"int"},"default":[1,"2"]}]}"#,
        // A default that needs the fields of the record being defined (Java: fields not set yet).
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":["R","null"],"default":{}}]}"#,
        // Fields that are not objects.
        r#"{"type":"record","name":"R","fields":["int"]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"a"}]}"#,
    ];
    for text in cases {
        let _ = err(text);
    }
}

#[test]
fn accepts_what_java_accepts() {
    // Namespaces: dotted names, inherited namespace, explicit null namespace, lookup fallback to
    // the null namespace.
    let s = ok(
        r#"{"type":"record","name":"Outer","namespace":"a.b","fields":[
        {"name":"x","type":{"type":"enum","name":"E","symbols":["S"]}},
        {"name":"y","type":{"type":"fixed","name":"c.F","size":3}},
        {"name":"z","type":{"type":"record","name":"N","namespace":"","fields":[]}},
        {"name":"w","type":"N"},
        {"name":"v","type":{"type":"E"}}]}"#,
    );
    assert_eq!(
        s.defined_names(),
        vec!["a.b.Outer", "a.b.E", "c.F", "N"]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    );
    // Crossed field aliases (Java accepts them; only its checker trips on them).
    ok(r#"{"type":"record","name":"Record","fields":[
        {"name":"field1","type":"string","aliases":["field2"]},
        {"name":"field2","type":"int","aliases":["field1"]}]}"#);
    // Unicode letters are letters to Java.
    ok(r#"{"type":"record","name":"Größe","fields":[{"name":"länge","type":"int"}]}"#);
    // Valid defaults of every kind, including the ones Java converts.
    ok(r#"{"type":"record","name":"R","fields":[
        {"name":"a","type":"float","default":"1.5"},
        {"name":"b","type":"double","default":1},
        {"name":"c","type":"long","default":9007199254740993},
        {"name":"d","type":"bytes","default":"\u00ff"},
        {"name":"e","type":{"type":"fixed","name":"F","size":2},"default":"ab"},
        {"name":"f","type":{"type":"enum","name":"E","symbols":["X"]},"default":"X"},
        {"name":"g","type":["null","string"],"default":null},
        {"name":"h","type":["string","null"],"default":"s"},
        {"name":"i","type":{"type":"map","values":"int"},"default":{"k":1}},
        {"name":"j","type":{"type":"record","name":"Inner","fields":[{"name":"p","type":"int","default":0},{"name":"q","type":"string"}]},"default":{"q":"x"}}]}"#);
    // Enum defaults that are not strings are ignored, as in Java.
    let s = ok(r#"{"type":"enum","name":"E","symbols":["A"],"default":1}"#);
    assert_eq!(
        s.canonical_string(),
        r#"{"type":"enum","name":"E","symbols":["A"]}"#
    );
    // Non-string docs are ignored, as in Java.
    let s = ok(r#"{"type":"record","name":"R","doc":7,"fields":[]}"#);
    assert_eq!(
        s.canonical_string(),
        r#"{"type":"record","name":"R","fields":[]}"#
    );
    // Empty unions and records with no fields are valid.
    ok("[]");
    ok(r#"{"type":"record","name":"R","fields":[]}"#);
    // A record named like a complex type keyword is fine.
    ok(r#"{"type":"record","name":"record","fields":[]}"#);
}

#[test]
fn default_validation_can_be_switched_off() {
    let text = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":"x"}]}"#;
    assert!(Schema::parse(text, &[]).is_err());
    let lax = Schema::parse_with_options(
        text,
        &[],
        ParseOptions {
            validate_defaults: false,
        },
    );
    assert_eq!(
        lax.map(|s| s.canonical_string()).ok().as_deref(),
        Some(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":"x"}]}"#)
    );
}

#[test]
fn the_model_can_be_walked() {
    let s = ok(r#"{"type":"record","name":"Node","fields":[
        {"name":"value","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
        {"name":"children","type":{"type":"array","items":"Node"}}]}"#);
    let NodeKind::Record(r) = &s.root_node().kind else {
        panic!("root is a record");
    };
    assert_eq!(r.fields.len(), 2);
    assert!(matches!(
        s.node(r.fields[0].schema).logical_type,
        Some(tributary_avro::schema::LogicalType::Decimal {
            precision: 9,
            scale: 2
        })
    ));
    let NodeKind::Array { items } = s.node(r.fields[1].schema).kind else {
        panic!("children is an array");
    };
    // The recursive reference is the root node itself.
    assert_eq!(items, s.root());
    assert_eq!(s.lookup("Node"), Some(s.root()));
}

/// A tiny deterministic generator, so the robustness test is reproducible without extra crates.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next()).unwrap_or(0) % n.max(1)
    }
}

#[test]
fn malformed_input_never_panics() {
    let seeds = [
        r#"{"type":"record","name":"R","namespace":"n","fields":[{"name":"a","type":["null",{"type":"map","values":{"type":"array","items":"R"}}],"default":null},{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}},{"name":"f","type":{"type":"fixed","name":"F","size":4,"logicalType":"decimal","precision":2}}]}"#,
        r#"["null","int",{"type":"record","name":"X","fields":[{"name":"d","type":"double","default":"1e3"}]}]"#,
    ];
    let alphabet: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\\",
        "null",
        "1",
        "-",
        ".",
        "e",
        "/*",
        "//",
        "\n",
        "\"type\"",
        "\"record\"",
        "\"name\"",
        "\"fields\"",
        "\"R\"",
        "\u{0}",
        "é",
        "\u{FFFF}",
    ];
    let mut rng = Lcg(42);
    let mut inputs: Vec<String> = Vec::new();
    for seed in seeds {
        for cut in 0..seed.len() {
            if seed.is_char_boundary(cut) {
                inputs.push(seed[..cut].to_owned());
            }
        }
        for _ in 0..2000 {
            let mut s = seed.to_owned();
            for _ in 0..=rng.below(4) {
                let mut at = rng.below(s.len() + 1);
                while !s.is_char_boundary(at) {
                    at -= 1;
                }
                match rng.below(3) {
                    0 => s.insert_str(at, alphabet[rng.below(alphabet.len())]),
                    1 => {
                        let mut end = (at + 1 + rng.below(6)).min(s.len());
                        while !s.is_char_boundary(end) {
                            end -= 1;
                        }
                        s.replace_range(at..end, "");
                    }
                    _ => {
                        let mut end = (at + 1).min(s.len());
                        while !s.is_char_boundary(end) {
                            end += 1;
                        }
                        s.replace_range(at..end, alphabet[rng.below(alphabet.len())]);
                    }
                }
            }
            inputs.push(s);
        }
    }
    let deep_array = "[".repeat(10_000) + &"]".repeat(10_000);
    let deep_object =
        r#"{"type":"array","items":"#.repeat(10_000) + "\"int\"" + &"}".repeat(10_000);
    let deep_union = "[".repeat(300) + "\"int\"" + &"]".repeat(300);
    inputs.push(deep_array);
    inputs.push(deep_object);
    inputs.push(deep_union);
    inputs.push("\"\\ud800\"".to_owned());
    inputs.push("{\"type\":\"record\",\"name\":\"R\",\"fields\":[],\"x\":1e99999}".to_owned());

    let mut parsed = 0usize;
    for input in &inputs {
        let outcome = std::panic::catch_unwind(|| {
            if let Ok(s) = Schema::parse(input, &[]) {
                let _ = s.canonical_string();
                let _ = s.normalized_string();
                let _ = tributary_avro::compat::can_read(&s, &s);
                true
            } else {
                false
            }
        });
        match outcome {
            Ok(true) => parsed += 1,
            Ok(false) => {}
            Err(_) => panic!("panicked on input: {input:?}"),
        }
    }
    assert!(parsed > 0, "some mutated inputs should still parse");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = r#"{"type":"array","items":"#.repeat(10_000) + "\"int\"" + &"}".repeat(10_000);
    let e = err(&deep);
    assert!(
        e.limit()
            .is_some_and(|l| l.limit == tributary_avro::Limit::SchemaDepth),
        "{e}"
    );
    assert!(e.to_string().contains("max-schema-depth"), "{e}");
}

#[test]
fn the_deepest_accepted_schemas_fit_in_a_small_stack() {
    use tributary_avro::json::MAX_DEPTH;
    // Arrays nest one JSON level each; records several. Both at the limit, on a 2 MiB stack
    // (tokio's default worker stack), through every entry point.
    let arrays =
        r#"{"type":"array","items":"#.repeat(MAX_DEPTH) + "\"int\"" + &"}".repeat(MAX_DEPTH);
    let maps = r#"{"type":"map","values":["null","#.repeat(MAX_DEPTH / 2)
        + "\"int\""
        + &"]}".repeat(MAX_DEPTH / 2);
    let mut records = String::from("\"int\"");
    for i in 0..(MAX_DEPTH / 4 - 1) {
        records = format!(
            r#"{{"type":"record","name":"R{i}","fields":[{{"name":"f","type":{records},"default":{{}}}}]}}"#
        );
    }
    let inputs = [arrays, maps, records];
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let mut parsed = 0;
            for text in &inputs {
                let lax = ParseOptions {
                    validate_defaults: false,
                };
                if let Ok(s) = Schema::parse_with_options(text, &[], lax) {
                    let again = Schema::parse_with_options(&s.canonical_string(), &[], lax);
                    assert!(again.is_ok());
                    let _ = s.normalized_string();
                    let _ = Schema::parse(text, &[]);
                    let _ = tributary_avro::compat::can_read(&s, &s);
                    parsed += 1;
                }
            }
            parsed
        })
        .expect("thread starts");
    assert_eq!(handle.join().expect("no stack overflow"), 3);
}
