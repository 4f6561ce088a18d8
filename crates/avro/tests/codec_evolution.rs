//! Decoding with a reader schema: Avro schema resolution.

use serde_json::{Value, json};
use tributary_avro::Schema;
use tributary_avro::codec::UnionStyle;

#[path = "support/equiv.rs"]
mod equiv;
// Every conversion in these tests also checks the text paths against the value paths.
use equiv::{avro_to_value, json_to_avro};

fn schema(text: &str) -> Schema {
    Schema::parse(text, &[]).unwrap_or_else(|e| panic!("schema {text}: {e}"))
}

fn write(s: &Schema, json: &str) -> Vec<u8> {
    json_to_avro(s, json).unwrap_or_else(|e| panic!("encode {json}: {e}"))
}

fn read(w: &Schema, r: &Schema, avro: &[u8], style: UnionStyle) -> Value {
    avro_to_value(w, Some(r), avro, style).unwrap_or_else(|e| panic!("resolve: {e}"))
}

const V1: &str = r#"{"type":"record","name":"User","namespace":"com.acme","fields":[
    {"name":"id","type":"int"},
    {"name":"name","type":"string"},
    {"name":"legacy","type":{"type":"array","items":{"type":"map","values":"string"}}},
    {"name":"status","type":{"type":"enum","name":"Status","symbols":["ACTIVE","BANNED","NEW_STATE"]}},
    {"name":"score","type":"float"}]}"#;

const V2: &str = r#"{"type":"record","name":"User","namespace":"com.acme","fields":[
    {"name":"id","type":"long"},
    {"name":"full_name","type":"string","aliases":["name"]},
    {"name":"status","type":{"type":"enum","name":"Status","symbols":["ACTIVE","BANNED","UNKNOWN"],"default":"UNKNOWN"}},
    {"name":"score","type":"double"},
    {"name":"email","type":["null","string"],"default":null},
    {"name":"level","type":["int","null"],"default":3},
    {"name":"prefs","type":{"type":"record","name":"Prefs","fields":[{"name":"dark","type":"boolean","default":true}]},"default":{}}]}"#;

#[test]
fn v1_data_read_as_v2() {
    let (v1, v2) = (schema(V1), schema(V2));
    let bytes = write(
        &v1,
        r#"{"id":7,"name":"Ann","legacy":[{"k":"v"},{}],"status":"NEW_STATE","score":0.5}"#,
    );
    assert_eq!(
        read(&v1, &v2, &bytes, UnionStyle::Tagged),
        json!({"id":7,"full_name":"Ann","status":"UNKNOWN","score":0.5,"email":null,"level":{"int":3},"prefs":{"dark":true}})
    );
    assert_eq!(
        read(&v1, &v2, &bytes, UnionStyle::Plain),
        json!({"id":7,"full_name":"Ann","status":"UNKNOWN","score":0.5,"email":null,"level":3,"prefs":{"dark":true}})
    );
    // symbols known to the reader pass through
    let bytes = write(
        &v1,
        r#"{"id":-1,"name":"B","legacy":[],"status":"BANNED","score":1}"#,
    );
    assert_eq!(
        read(&v1, &v2, &bytes, UnionStyle::Plain)["status"],
        json!("BANNED")
    );
}

#[test]
fn promotions() {
    let cases = [
        (r#""int""#, r#""long""#, "-5", json!(-5)),
        (r#""int""#, r#""float""#, "16777217", json!(16_777_216.0)),
        (r#""int""#, r#""double""#, "3", json!(3.0)),
        (r#""long""#, r#""float""#, "2", json!(2.0)),
        (
            r#""long""#,
            r#""double""#,
            "9007199254740993",
            json!(9_007_199_254_740_992.0),
        ),
        (r#""float""#, r#""double""#, "0.5", json!(0.5)),
        (r#""string""#, r#""bytes""#, r#""é""#, json!("\u{c3}\u{a9}")),
        (r#""bytes""#, r#""string""#, r#""\u00c3\u00a9""#, json!("é")),
        (r#""int""#, r#"["null","long"]"#, "1", json!({"long": 1})),
        (
            r#"["null","int"]"#,
            r#"["null","long"]"#,
            r#"{"int":1}"#,
            json!({"long": 1}),
        ),
        (
            r#"["null","int"]"#,
            r#"["null","long"]"#,
            "null",
            json!(null),
        ),
        (r#"["int","long"]"#, r#""long""#, r#"{"int":9}"#, json!(9)),
    ];
    for (w, r, datum, want) in cases {
        let (ws, rs) = (schema(w), schema(r));
        let b = write(&ws, datum);
        assert_eq!(
            read(&ws, &rs, &b, UnionStyle::Tagged),
            want,
            "{w} -> {r}: {datum}"
        );
    }
    // a writer union with a branch the reader can't take is refused (Java agrees)
    let (ws, rs) = (schema(r#"["null","int"]"#), schema(r#""long""#));
    let b = write(&ws, r#"{"int":9}"#);
    assert!(avro_to_value(&ws, Some(&rs), &b, UnionStyle::Tagged).is_err());
}

#[test]
fn named_types_match_by_unqualified_name_and_alias() {
    let w = schema(
        r#"{"type":"record","name":"a.R","fields":[{"name":"f","type":{"type":"fixed","name":"F","size":2}}]}"#,
    );
    let r = schema(
        r#"{"type":"record","name":"b.R","fields":[{"name":"f","type":{"type":"fixed","name":"G","aliases":["a.F"],"size":2}}]}"#,
    );
    let b = write(&w, r#"{"f":"ab"}"#);
    assert_eq!(read(&w, &r, &b, UnionStyle::Tagged), json!({"f":"ab"}));
}

#[test]
fn incompatible_pairs_are_refused_up_front() {
    let w = schema(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#);
    let r = schema(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#);
    let b = write(&w, r#"{"a":"x"}"#);
    let e = avro_to_value(&w, Some(&r), &b, UnionStyle::Tagged)
        .err()
        .unwrap_or_else(|| panic!("should refuse"));
    assert!(e.message.contains("can't read"), "{e}");
    assert!(e.message.contains("/fields/0/type"), "{e}");

    // new field without default
    let r2 = schema(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"int"}]}"#,
    );
    let e = avro_to_value(&w, Some(&r2), &b, UnionStyle::Tagged)
        .err()
        .unwrap_or_else(|| panic!("should refuse"));
    assert!(e.message.contains("b"), "{e}");

    // enum symbol unknown to a reader without default
    let we = schema(r#"{"type":"enum","name":"E","symbols":["A","B"]}"#);
    let re = schema(r#"{"type":"enum","name":"E","symbols":["A"]}"#);
    let b = write(&we, r#""A""#);
    assert!(avro_to_value(&we, Some(&re), &b, UnionStyle::Tagged).is_err());
}

#[test]
fn same_schema_as_reader_is_identity() {
    let v1 = schema(V1);
    let json = r#"{"id":1,"name":"x","legacy":[{"a":"b"}],"status":"ACTIVE","score":2.5}"#;
    let b = write(&v1, json);
    let direct = avro_to_value(&v1, None, &b, UnionStyle::Tagged).ok();
    assert_eq!(
        direct,
        avro_to_value(&v1, Some(&v1), &b, UnionStyle::Tagged).ok()
    );
    assert_eq!(direct, serde_json::from_str(json).ok());
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect()
}

/// Written and resolved by fastavro (tests/data/gen_codec_vectors.py).
#[test]
fn fastavro_resolution_vectors() {
    let doc: Value = serde_json::from_str(include_str!("data/codec_vectors.json"))
        .unwrap_or_else(|e| panic!("vectors: {e}"));
    let cases = doc["evolution"].as_array().map_or(&[][..], Vec::as_slice);
    assert!(cases.len() >= 9);
    for c in cases {
        let (w, r) = (
            schema(&c["writer"].to_string()),
            schema(&c["reader"].to_string()),
        );
        let datum = c["json"].as_str().unwrap_or_default();
        let bytes = hex(c["hex"].as_str().unwrap_or_default());
        assert_eq!(write(&w, datum), bytes, "writing {datum}");
        let got = read(&w, &r, &bytes, UnionStyle::Plain);
        assert_eq!(got, c["expected_plain"], "{datum} read as {}", c["reader"]);
    }
}
