//! The text paths of the codec (`json_to_avro`, `avro_to_json`) give exactly what the value
//! paths give (`serde_json` parsing + `value_to_avro`, `avro_to_value` + `to_string`) — bytes,
//! text and error values — over a generated corpus: random schemas of every type (logical
//! types, unions, nested records, arrays and maps), datums in tagged and plain forms with
//! escapes, non-ASCII, NaN/Infinity and extreme numbers, reader schemas they evolve into, and
//! broken JSON and Avro. (The hand-written codec tests check the same on all their cases.)

#[path = "support/corpus.rs"]
mod corpus;
#[path = "support/equiv.rs"]
mod equiv;

use corpus::{DatumGen, Rng, SchemaGen};
use serde_json::Value;
use tributary_avro::Schema;
use tributary_avro::codec::UnionStyle;

/// Decoding without a reader schema (the writer's data as itself, which takes a fast path)
/// gives what resolving against a reader schema equal to the writer's gives: text and errors.
fn own_matches_resolved(w: &Schema, twin: &Schema, avro: &[u8]) {
    for style in [UnionStyle::Tagged, UnionStyle::Plain] {
        let own = tributary_avro::codec::avro_to_json(w, None, avro, style);
        let resolved = tributary_avro::codec::avro_to_json(w, Some(twin), avro, style);
        assert_eq!(
            own.as_ref().map_err(ToString::to_string),
            resolved.as_ref().map_err(ToString::to_string),
            "{style:?}"
        );
    }
}

/// Checking a reader once and decoding with it unchecked gives what `avro_to_json` gives with
/// that reader (which checks every time): the same text, or the check's error.
fn checked_once_matches(w: &Schema, r: &Schema, avro: &[u8]) {
    for style in [UnionStyle::Tagged, UnionStyle::Plain] {
        let each_time = tributary_avro::codec::avro_to_json(w, Some(r), avro, style);
        let once = tributary_avro::codec::check_readable(w, r).and_then(|()| {
            let mut out = b"kept ".to_vec();
            tributary_avro::codec::avro_to_json_into_checked(w, r, avro, style, &mut out)
                .map(|()| String::from_utf8(out[5..].to_vec()).expect("UTF-8"))
        });
        assert_eq!(once, each_time, "{style:?}");
    }
}

/// Decode in both styles (each call checks text against value).
fn decode_both(w: &Schema, r: Option<&Schema>, avro: &[u8]) -> bool {
    let mut ok = false;
    for style in [UnionStyle::Tagged, UnionStyle::Plain] {
        ok |= equiv::avro_to_value(w, r, avro, style).is_ok();
    }
    ok
}

#[derive(Debug, Default)]
struct Counts {
    schemas: usize,
    encoded: usize,
    rejected: usize,
    decoded_with_reader: usize,
    broken_decoded: usize,
}

fn run_corpus(seed: u64, schemas: usize) -> Counts {
    let mut rng = Rng::new(seed);
    let mut counts = Counts::default();
    for _ in 0..schemas {
        let mut sg = SchemaGen::default();
        let schema_json = if rng.chance(4) {
            sg.any(&mut rng, 0)
        } else {
            sg.record(&mut rng, 0)
        };
        let text = schema_json.to_string();
        let Ok(schema) = Schema::parse(&text, &[]) else {
            continue;
        };
        counts.schemas += 1;
        // The same schema, parsed again: a reader that is not the writer's own instance.
        let twin = Schema::parse(&text, &[]).expect("parsed once already");
        let reader_json = corpus::evolve(&mut rng, &schema_json);
        let reader = Schema::parse(&reader_json.to_string(), &[]).ok();
        for _ in 0..6 {
            let mut g = DatumGen {
                tagged: rng.chance(2),
                friendly: rng.chance(2),
                default_mode: false,
            };
            let datum: Value = g.datum(&mut rng, &schema_json);
            let json = datum.to_string();
            match equiv::json_to_avro(&schema, &json) {
                Ok(avro) => {
                    counts.encoded += 1;
                    assert!(decode_both(&schema, None, &avro), "{json} as {text}");
                    own_matches_resolved(&schema, &twin, &avro);
                    if let Some(r) = &reader {
                        checked_once_matches(&schema, r, &avro);
                        if decode_both(&schema, Some(r), &avro) {
                            counts.decoded_with_reader += 1;
                        }
                    }
                    for broken in corpus::broken_avro(&mut rng, &avro) {
                        own_matches_resolved(&schema, &twin, &broken);
                        if decode_both(&schema, None, &broken) {
                            counts.broken_decoded += 1;
                        }
                        if let Some(r) = &reader {
                            checked_once_matches(&schema, r, &broken);
                            decode_both(&schema, Some(r), &broken);
                        }
                    }
                }
                Err(_) => counts.rejected += 1,
            }
            for broken in corpus::broken_json(&mut rng, &datum) {
                let _ = equiv::json_to_avro(&schema, &broken);
            }
        }
    }
    counts
}

#[test]
fn generated_corpus_text_paths_match_value_paths() {
    let counts = run_corpus(0x5eed_c0de_2026, 250);
    eprintln!("{counts:?}");
    // The corpus must reach the interesting paths, not only errors.
    assert!(counts.schemas > 200, "{counts:?}");
    assert!(counts.encoded > counts.schemas * 2, "{counts:?}");
    assert!(counts.rejected > 20, "{counts:?}");
    assert!(
        counts.decoded_with_reader > counts.encoded / 4,
        "{counts:?}"
    );
    assert!(counts.broken_decoded > 100, "{counts:?}");
}

#[test]
fn repeated_keys_keep_value_semantics() {
    let map =
        Schema::parse(r#"{"type":"map","values":"int"}"#, &[]).unwrap_or_else(|e| panic!("{e}"));
    // JSON text: the last value wins, at the first key's position
    let avro = equiv::json_to_avro(&map, r#"{"a":1,"b":2,"a":3}"#);
    assert_eq!(avro, equiv::json_to_avro(&map, r#"{"a":3,"b":2}"#));
    let rec = Schema::parse(
        r#"{"type":"record","name":"R","fields":[{"name":"x","type":"int"},{"name":"y","type":["null","int"]}]}"#,
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let avro = equiv::json_to_avro(&rec, r#"{"y":null,"x":1,"y":{"int":5},"x":2}"#);
    assert_eq!(avro.ok(), Some(vec![0x04, 0x02, 0x0a]));
    // many keys (past the scan limit), one repeated late
    let mut text = String::from("{");
    for i in 0..40 {
        text.push_str(&format!("\"k{i}\":{i},"));
    }
    text.push_str("\"k3\":-1}");
    let avro = equiv::json_to_avro(&map, &text).unwrap_or_else(|e| panic!("{e}"));
    // Avro data with a repeated map key: the JSON text has the key once, like the value tree
    // (2 entries "a" -> 1, "a" -> 2, then "b" -> 3)
    let data = [
        0x06, 0x02, b'a', 0x02, 0x02, b'a', 0x04, 0x02, b'b', 0x06, 0x00,
    ];
    let text = equiv::avro_to_json(&map, None, &data, UnionStyle::Tagged);
    assert_eq!(text.ok().as_deref(), Some(r#"{"a":2,"b":3}"#));
    assert!(!avro.is_empty());
}

#[test]
fn corpus_is_deterministic() {
    let a = format!("{:?}", run_corpus(7, 20));
    let b = format!("{:?}", run_corpus(7, 20));
    assert_eq!(a, b);
}

#[test]
fn records_in_schema_order_and_out_of_it_agree() {
    // json_to_avro encodes a record whose keys come in the schema's order field by field; every
    // other shape goes through the general path. Both must give the value path's answer.
    let s = Schema::parse(
        r#"{"type":"record","name":"R","fields":[
            {"name":"a","type":"int"},
            {"name":"b","type":["null","string"],"default":null},
            {"name":"c","type":{"type":"array","items":"long"}}]}"#,
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ok = |text: &str| equiv::json_to_avro(&s, text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let in_order = ok(r#"{"a":1,"b":"x","c":[2,3]}"#);
    assert_eq!(in_order, [0x02, 0x02, 0x02, b'x', 0x04, 0x04, 0x06, 0x00]);
    assert_eq!(ok(r#"{"c":[2,3],"a":1,"b":"x"}"#), in_order);
    assert_eq!(ok(r#"{"a":1,"b":"y","c":[2,3],"b":"x"}"#), in_order);
    assert_eq!(ok(r#" {"a":1,"b":{"string":"x"},"c":[2,3]} "#), in_order);
    assert_eq!(ok(r#"{"a":1,"c":[]}"#), [0x02, 0x00, 0x00]);
    let err = |text: &str| match equiv::json_to_avro(&s, text) {
        Ok(b) => panic!("{text} should fail, got {b:02x?}"),
        Err(e) => e,
    };
    // a bad first field and an unknown key after it: the unknown key is reported, as before
    let e = err(r#"{"a":"bad","b":null,"c":[],"zz":1}"#);
    assert_eq!((e.path.as_str(), e.expected.as_str()), ("$.zz", "record R"));
    let e = err(r#"{"a":"bad","b":null,"c":[]}"#);
    assert_eq!(e.path, "$.a");
    let e = err(r#"{"a":1,"b":null,"c":[]} x"#);
    assert!(e.message.contains("invalid JSON"), "{e}");
    let e = err(r#"{"a":1,"b":null}"#);
    assert!(e.message.contains("missing field 'c'"), "{e}");
    let e = err(r#"{"a":1,"b":null,"c":[1.5]}"#);
    assert_eq!(e.path, "$.c[0]");
    err("[1]");
    err("null");
}
