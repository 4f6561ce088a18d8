//! Hostile inputs: errors, never panics, unbounded allocation or stack overflow.

use serde_json::{Value, json};
use tributary_avro::Schema;
use tributary_avro::codec::{MAX_DEPTH, UnionStyle, value_to_avro};

#[path = "support/equiv.rs"]
mod equiv;
// Every conversion in these tests also checks the text paths against the value paths.
use equiv::{avro_to_value, json_to_avro};

fn schema(text: &str) -> Schema {
    Schema::parse(text, &[]).unwrap_or_else(|e| panic!("schema {text}: {e}"))
}

fn fails(s: &Schema, avro: &[u8]) -> String {
    match avro_to_value(s, None, avro, UnionStyle::Tagged) {
        Ok(v) => panic!("{avro:02x?} should not decode, got {v}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn truncated_data() {
    let s = schema(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"double"},{"name":"c","type":{"type":"fixed","name":"F","size":4}}]}"#,
    );
    let full = json_to_avro(&s, r#"{"a":"hello","b":1.5,"c":"abcd"}"#).unwrap_or_default();
    assert_eq!(full.len(), 6 + 8 + 4);
    for n in 0..full.len() {
        let e = fails(&s, &full[..n]);
        assert!(
            e.contains("end of data") || e.contains("exceeds"),
            "{n}: {e}"
        );
    }
    assert!(avro_to_value(&s, None, &full, UnionStyle::Tagged).is_ok());
}

#[test]
fn huge_lengths_and_counts() {
    let string = schema(r#""string""#);
    // length i64::MAX / 2
    let e = fails(
        &string,
        &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    );
    assert!(e.contains("exceeds"), "{e}");
    assert!(fails(&string, &[0x01]).contains("negative length"));
    // array of ints claiming 2^62 items
    let arr = schema(r#"{"type":"array","items":"int"}"#);
    let e = fails(
        &arr,
        &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x02],
    );
    assert!(e.contains("exceeds"), "{e}");
    // items that take no bytes: bounded by a budget, not by memory
    let nulls = schema(r#"{"type":"array","items":"null"}"#);
    let e = fails(&nulls, &[0xfe, 0xff, 0xff, 0xff, 0x0f, 0x00]);
    assert!(e.contains("exceeds"), "{e}");
    // many blocks of many zero-size items: still bounded
    let mut blocks = Vec::new();
    for _ in 0..200 {
        blocks.extend_from_slice(&[0xce, 0x0f]); // 999 items
    }
    blocks.push(0x00);
    let e = fails(&nulls, &blocks);
    assert!(e.contains("take no bytes") || e.contains("exceeds"), "{e}");
    let empty_rec = schema(r#"{"type":"array","items":{"type":"record","name":"Z","fields":[]}}"#);
    let e = fails(&empty_rec, &blocks);
    assert!(e.contains("take no bytes") || e.contains("exceeds"), "{e}");
    // exactly at the budget: items one by one in small blocks
    let mut small = Vec::new();
    for _ in 0..(100_001 / 50 + 1) {
        small.extend_from_slice(&[0x64]); // 50 items
    }
    small.push(0x00);
    let e = fails(&nulls, &small);
    assert!(e.contains("take no bytes") || e.contains("exceeds"), "{e}");
    // a legitimate run of nulls decodes
    let v = avro_to_value(&nulls, None, &[0xce, 0x0f, 0x00], UnionStyle::Tagged).ok();
    assert_eq!(v.map(|v| v.as_array().map(Vec::len)), Some(Some(999)));
    let v = avro_to_value(&nulls, None, &[0x06, 0x00], UnionStyle::Tagged).ok();
    assert_eq!(v, Some(json!([null, null, null])));
    // map with a huge count
    let map = schema(r#"{"type":"map","values":"null"}"#);
    assert!(fails(&map, &[0xfe, 0xff, 0xff, 0xff, 0x0f, 0x00]).contains("exceeds"));
    // varints longer than 10 bytes / overflowing
    let long = schema(r#""long""#);
    assert!(fails(&long, &[0xff; 11]).contains("varint"));
    assert!(
        fails(
            &long,
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
        )
        .contains("overflows")
    );
    let int = schema(r#""int""#);
    assert!(fails(&int, &[0x80, 0x80, 0x80, 0x80, 0x10]).contains("out of range"));
}

#[test]
fn negative_block_counts_with_sizes() {
    let arr = schema(r#"{"type":"array","items":"long"}"#);
    // block of -2 items (zigzag 0x03), byte size 2, items 1 and 2, then a normal block of 1, end
    let v = avro_to_value(
        &arr,
        None,
        &[0x03, 0x04, 0x02, 0x04, 0x02, 0x06, 0x00],
        UnionStyle::Tagged,
    );
    assert_eq!(v.ok(), Some(json!([1, 2, 3])));
    // block size larger than the data
    assert!(fails(&arr, &[0x03, 0x7e, 0x02, 0x04, 0x00]).contains("block byte size"));
    let map = schema(r#"{"type":"map","values":"int"}"#);
    let v = avro_to_value(
        &map,
        None,
        &[0x01, 0x06, 0x02, b'k', 0x08, 0x00],
        UnionStyle::Tagged,
    );
    assert_eq!(v.ok(), Some(json!({"k": 4})));
}

#[test]
fn bad_tags_and_bytes() {
    let u = schema(r#"["null","int"]"#);
    assert!(fails(&u, &[0x04, 0x00]).contains("union branch index 2"));
    assert!(fails(&u, &[0x01]).contains("union branch index -1"));
    let e = schema(r#"{"type":"enum","name":"E","symbols":["A"]}"#);
    assert!(fails(&e, &[0x02]).contains("enum index 1"));
    let b = schema(r#""boolean""#);
    assert!(fails(&b, &[0x02]).contains("boolean"));
    let s = schema(r#""string""#);
    assert!(fails(&s, &[0x04, 0xc3, 0x28]).contains("UTF-8"));
    assert!(fails(&s, &[0x02, b'a', 0x00]).contains("unexpected bytes"));
}

const LIST: &str = r#"{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}"#;

#[test]
fn deep_nesting_in_binary_is_an_error() {
    let s = schema(LIST);
    // 100_000 levels of "branch 1" then null
    let mut data = vec![0x02; 100_000];
    data.push(0x00);
    let e = fails(&s, &data);
    assert!(e.contains("nested deeper"), "{e}");
    // nesting within the limit works
    let mut ok = vec![0x02; MAX_DEPTH / 4];
    ok.push(0x00);
    assert!(avro_to_value(&s, None, &ok, UnionStyle::Tagged).is_ok());
    // deep arrays of arrays
    let a = schema(
        r#"{"type":"array","items":{"type":"array","items":{"type":"array","items":"int"}}}"#,
    );
    assert!(
        avro_to_value(
            &a,
            None,
            &[0x02, 0x02, 0x02, 0x02, 0x00, 0x00, 0x00],
            UnionStyle::Tagged
        )
        .is_ok()
    );
}

#[test]
fn deep_nesting_in_json_is_an_error() {
    let s = schema(LIST);
    let mut text = String::new();
    for _ in 0..10_000 {
        text.push_str(r#"{"next":{"L":"#);
    }
    text.push_str("null");
    let e = json_to_avro(&s, &text)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("invalid JSON") || e.contains("nested"), "{e}");

    // a deep serde_json value built directly (bypassing the parser's limit)
    let mut v = json!({"next": null});
    for _ in 0..(MAX_DEPTH * 2) {
        v = json!({"next": {"L": v}});
    }
    let e = value_to_avro(&s, &v)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("nested deeper"), "{e}");
    drop_deep(v);
}

fn drop_deep(mut v: Value) {
    // unwind iteratively so dropping can't overflow either
    while let Value::Object(mut m) = v {
        v = m
            .remove("next")
            .and_then(|n| match n {
                Value::Object(mut o) => o.remove("L"),
                _ => None,
            })
            .unwrap_or(Value::Null);
    }
}

#[test]
fn union_explosion_is_bounded() {
    // two record branches that both fit every value: plain form tries both at every level
    let s = schema(
        r#"{"type":"record","name":"A","fields":[{"name":"x","type":["null","A",
        {"type":"record","name":"B","fields":[{"name":"x","type":["null","A","B"]}]}]}]}"#,
    );
    let mut v = json!({"x": null});
    for _ in 0..60 {
        v = json!({"x": v});
    }
    let e = value_to_avro(&s, &v)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("ambiguous") || e.contains("too complex"), "{e}");
}
