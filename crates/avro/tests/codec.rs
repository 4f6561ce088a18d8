//! JSON <-> Avro codec: byte-exact vectors, round trips, unions, logical types, errors.

use serde_json::{Value, json};
use tributary_avro::Schema;
use tributary_avro::codec::{CodecError, UnionStyle, value_to_avro};

#[path = "support/equiv.rs"]
mod equiv;
// Every conversion in these tests also checks the text paths against the value paths.
use equiv::{avro_to_json, avro_to_value, json_to_avro};

fn schema(text: &str) -> Schema {
    match Schema::parse(text, &[]) {
        Ok(s) => s,
        Err(e) => panic!("schema {text}: {e}"),
    }
}

fn enc(s: &Schema, json: &str) -> Vec<u8> {
    match json_to_avro(s, json) {
        Ok(b) => b,
        Err(e) => panic!("encode {json}: {e}"),
    }
}

fn dec(s: &Schema, avro: &[u8], style: UnionStyle) -> Value {
    match avro_to_value(s, None, avro, style) {
        Ok(v) => v,
        Err(e) => panic!("decode {avro:02x?}: {e}"),
    }
}

fn enc_err(s: &Schema, json: &str) -> CodecError {
    match json_to_avro(s, json) {
        Ok(b) => panic!("encoding {json} should fail, got {b:02x?}"),
        Err(e) => e,
    }
}

fn parse(json: &str) -> Value {
    match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => panic!("{json}: {e}"),
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect()
}

/// JSON -> Avro -> JSON gives back the same JSON (tagged style).
fn round_trip(schema_text: &str, json: &str) {
    let s = schema(schema_text);
    let bytes = enc(&s, json);
    let back = dec(&s, &bytes, UnionStyle::Tagged);
    assert_eq!(
        back,
        parse(json),
        "round trip of {json} through {schema_text}"
    );
    // and the re-encoded output is byte-identical
    assert_eq!(enc(&s, &back.to_string()), bytes, "re-encode of {back}");
}

#[test]
fn avro_spec_examples() {
    let long = schema(r#""long""#);
    assert_eq!(enc(&long, "0"), [0x00]);
    assert_eq!(enc(&long, "-1"), [0x01]);
    assert_eq!(enc(&long, "1"), [0x02]);
    assert_eq!(enc(&long, "-2"), [0x03]);
    assert_eq!(enc(&long, "2"), [0x04]);
    assert_eq!(enc(&long, "-64"), [0x7f]);
    assert_eq!(enc(&long, "64"), [0x80, 0x01]);
    let string = schema(r#""string""#);
    assert_eq!(enc(&string, r#""foo""#), [0x06, 0x66, 0x6f, 0x6f]);
    // spec: union ["null","string"]: null -> 00, "a" -> 02 02 61
    let u = schema(r#"["null","string"]"#);
    assert_eq!(enc(&u, "null"), [0x00]);
    assert_eq!(enc(&u, r#"{"string":"a"}"#), [0x02, 0x02, 0x61]);
    // spec: array of longs [3, 27] -> 04 06 36 00
    let arr = schema(r#"{"type":"array","items":"long"}"#);
    assert_eq!(enc(&arr, "[3, 27]"), [0x04, 0x06, 0x36, 0x00]);
    // spec: record test {a: long = 27, b: string = "foo"} -> 36 06 66 6f 6f
    let rec = schema(
        r#"{"type":"record","name":"test","fields":[{"name":"a","type":"long"},{"name":"b","type":"string"}]}"#,
    );
    assert_eq!(
        enc(&rec, r#"{"a":27,"b":"foo"}"#),
        [0x36, 0x06, 0x66, 0x6f, 0x6f]
    );
}

#[test]
fn fastavro_vectors() {
    let text = include_str!("data/codec_vectors.json");
    let doc = parse(text);
    let cases = doc["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("no cases"));
    assert!(cases.len() >= 30);
    for c in cases {
        let s = schema(&c["schema"].to_string());
        let json = c["json"].as_str().unwrap_or_else(|| panic!("json"));
        let want = hex(c["hex"].as_str().unwrap_or_else(|| panic!("hex")));
        assert_eq!(enc(&s, json), want, "encoding {json} as {}", c["schema"]);
        assert_eq!(
            dec(&s, &want, UnionStyle::Tagged),
            parse(json),
            "decoding {}",
            c["hex"]
        );
    }
}

#[test]
fn round_trip_every_type() {
    round_trip(r#""null""#, "null");
    round_trip(r#""boolean""#, "true");
    round_trip(r#""int""#, "-2147483648");
    round_trip(r#""long""#, "9223372036854775807");
    round_trip(r#""long""#, "-9223372036854775808");
    round_trip(r#""float""#, "0.1");
    round_trip(r#""float""#, "3.4028235e38");
    round_trip(r#""double""#, "0.1");
    round_trip(r#""double""#, "1.7976931348623157e308");
    round_trip(r#""double""#, r#""NaN""#);
    round_trip(r#""float""#, r#""-Infinity""#);
    round_trip(r#""string""#, r#""snow ☃ \"quoted\" \n""#);
    round_trip(r#""bytes""#, r#""\u0000\u0080\u00ff\u007f""#);
    round_trip(r#"{"type":"fixed","name":"F","size":3}"#, r#""a\u00ffb""#);
    round_trip(
        r#"{"type":"enum","name":"E","symbols":["A","B"]}"#,
        r#""B""#,
    );
    round_trip(
        r#"{"type":"array","items":{"type":"array","items":"int"}}"#,
        "[[1,2],[],[3]]",
    );
    round_trip(
        r#"{"type":"map","values":["null","long"]}"#,
        r#"{"x":{"long":1},"y":null}"#,
    );
    round_trip(
        r#"{"type":"record","name":"R","namespace":"n","fields":[
            {"name":"a","type":"int"},
            {"name":"b","type":{"type":"record","name":"Inner","fields":[{"name":"c","type":"string"}]}},
            {"name":"d","type":["null","Inner"]}]}"#,
        r#"{"a":1,"b":{"c":"x"},"d":{"n.Inner":{"c":"y"}}}"#,
    );
    // recursive type
    round_trip(
        r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]}"#,
        r#"{"v":1,"next":{"Node":{"v":2,"next":null}}}"#,
    );
}

#[test]
fn round_trip_logical_types_underlying_form() {
    round_trip(r#"{"type":"int","logicalType":"date"}"#, "19723");
    round_trip(r#"{"type":"int","logicalType":"time-millis"}"#, "45296789");
    round_trip(
        r#"{"type":"long","logicalType":"time-micros"}"#,
        "45296789012",
    );
    for lt in [
        "timestamp-millis",
        "timestamp-micros",
        "timestamp-nanos",
        "local-timestamp-millis",
        "local-timestamp-micros",
        "local-timestamp-nanos",
    ] {
        round_trip(
            &format!(r#"{{"type":"long","logicalType":"{lt}"}}"#),
            "1704067200123456789",
        );
    }
    round_trip(
        r#"{"type":"string","logicalType":"uuid"}"#,
        r#""123e4567-e89b-12d3-a456-426614174000""#,
    );
    round_trip(
        r#"{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}"#,
        r#""\u0004\u00d2""#,
    );
    round_trip(
        r#"{"type":"fixed","name":"D","size":4,"logicalType":"decimal","precision":9,"scale":2}"#,
        r#""\u00ff\u00ff\u00fb\u002e""#,
    );
    round_trip(
        r#"{"type":"fixed","name":"Dur","size":12,"logicalType":"duration"}"#,
        r#""\u0001\u0000\u0000\u0000\u0002\u0000\u0000\u0000\u0003\u0000\u0000\u0000""#,
    );
}

#[test]
fn logical_types_friendly_input() {
    let date = schema(r#"{"type":"int","logicalType":"date"}"#);
    assert_eq!(enc(&date, r#""2024-01-01""#), enc(&date, "19723"));
    assert_eq!(enc(&date, r#""1970-01-01""#), enc(&date, "0"));
    assert_eq!(enc(&date, r#""1969-12-31""#), enc(&date, "-1"));
    assert_eq!(enc(&date, r#""2000-02-29""#), enc(&date, "11016"));
    assert!(json_to_avro(&date, r#""2023-02-29""#).is_err());
    assert!(json_to_avro(&date, r#""2024-1-01""#).is_err());

    let tm = schema(r#"{"type":"int","logicalType":"time-millis"}"#);
    assert_eq!(enc(&tm, r#""12:34:56.789""#), enc(&tm, "45296789"));
    assert!(
        json_to_avro(&tm, r#""12:34:56.7891""#).is_err(),
        "sub-millisecond"
    );
    let tu = schema(r#"{"type":"long","logicalType":"time-micros"}"#);
    assert_eq!(enc(&tu, r#""12:34:56.789012""#), enc(&tu, "45296789012"));

    let ts = schema(r#"{"type":"long","logicalType":"timestamp-millis"}"#);
    assert_eq!(
        enc(&ts, r#""2024-01-01T00:00:00.123Z""#),
        enc(&ts, "1704067200123")
    );
    assert_eq!(
        enc(&ts, r#""2024-01-01T02:00:00.123+02:00""#),
        enc(&ts, "1704067200123")
    );
    assert_eq!(enc(&ts, r#""1969-12-31T23:59:59.999Z""#), enc(&ts, "-1"));
    let e = enc_err(&ts, r#""2024-01-01T00:00:00""#);
    assert!(e.message.contains("offset"), "{e}");
    let tus = schema(r#"{"type":"long","logicalType":"timestamp-micros"}"#);
    assert_eq!(
        enc(&tus, r#""2024-01-01T00:00:00.123456Z""#),
        enc(&tus, "1704067200123456")
    );
    let tns = schema(r#"{"type":"long","logicalType":"timestamp-nanos"}"#);
    assert_eq!(
        enc(&tns, r#""2024-01-01T00:00:00.123456789Z""#),
        enc(&tns, "1704067200123456789")
    );
    let lts = schema(r#"{"type":"long","logicalType":"local-timestamp-millis"}"#);
    assert_eq!(
        enc(&lts, r#""2024-01-01T00:00:00.123""#),
        enc(&lts, "1704067200123")
    );
    assert!(json_to_avro(&lts, r#""2024-01-01T00:00:00Z""#).is_err());
    let ltu = schema(r#"{"type":"long","logicalType":"local-timestamp-micros"}"#);
    assert_eq!(
        enc(&ltu, r#""2024-01-01T00:00:00.000001""#),
        enc(&ltu, "1704067200000001")
    );
    let ltn = schema(r#"{"type":"long","logicalType":"local-timestamp-nanos"}"#);
    assert_eq!(
        enc(&ltn, r#""1970-01-01T00:00:00.000000001""#),
        enc(&ltn, "1")
    );

    let uuid = schema(r#"{"type":"string","logicalType":"uuid"}"#);
    let e = enc_err(&uuid, r#""not-a-uuid""#);
    assert_eq!(e.expected, "string (uuid)");

    // decimal: JSON number or numeric string, scaled; the byte-string form still works
    let dec_b = schema(r#"{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}"#);
    assert_eq!(enc(&dec_b, "12.34"), [0x04, 0x04, 0xd2]);
    assert_eq!(enc(&dec_b, r#""12.34""#), [0x04, 0x04, 0xd2]);
    assert_eq!(enc(&dec_b, r#""12.3""#), enc(&dec_b, "12.30"));
    assert_eq!(enc(&dec_b, "12"), enc(&dec_b, "12.00"));
    assert_eq!(enc(&dec_b, "-0.01"), [0x02, 0xff]);
    assert_eq!(enc(&dec_b, r#""-12.34""#), [0x04, 0xfb, 0x2e]);
    assert_eq!(enc(&dec_b, r#""\u0004\u00d2""#), [0x04, 0x04, 0xd2]);
    assert_eq!(enc(&dec_b, "1.28"), [0x04, 0x00, 0x80]); // 128 needs a sign byte
    // a string without a decimal point (or with more than `scale` fraction digits) is Avro's
    // byte string, as Confluent emits it: "1" is the single byte 0x31 (0.49)
    assert_eq!(enc(&dec_b, r#""1""#), [0x02, 0x31]);
    assert_eq!(
        enc(&dec_b, r#""1.234""#),
        [0x0a, b'1', b'.', b'2', b'3', b'4']
    );
    let e = enc_err(&dec_b, "1.234");
    assert!(e.message.contains("scale"), "{e}");
    let e = enc_err(&dec_b, "12345678.9");
    assert!(e.message.contains("precision"), "{e}");
    let dec_f = schema(
        r#"{"type":"fixed","name":"D","size":4,"logicalType":"decimal","precision":9,"scale":2}"#,
    );
    assert_eq!(enc(&dec_f, "-12.34"), [0xff, 0xff, 0xfb, 0x2e]);
    assert_eq!(enc(&dec_f, "12.34"), [0x00, 0x00, 0x04, 0xd2]);
    assert_eq!(enc(&dec_f, r#""12.34""#), [0x00, 0x00, 0x04, 0xd2]);
    assert_eq!(
        dec(&dec_f, &[0x00, 0x00, 0x04, 0xd2], UnionStyle::Tagged),
        json!("\u{0}\u{0}\u{4}\u{d2}")
    );

    let dur = schema(r#"{"type":"fixed","name":"Dur","size":12,"logicalType":"duration"}"#);
    assert_eq!(
        enc(&dur, r#"{"months":1,"days":2,"millis":3}"#),
        [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]
    );
    assert!(json_to_avro(&dur, r#"{"months":-1}"#).is_err());
    assert!(json_to_avro(&dur, r#"{"weeks":1}"#).is_err());
}

#[test]
fn big_longs_are_exact() {
    let s = schema(r#""long""#);
    let b = enc(&s, "9007199254740993"); // 2^53 + 1, not representable as f64
    assert_eq!(
        avro_to_json(&s, None, &b, UnionStyle::Tagged)
            .ok()
            .as_deref(),
        Some("9007199254740993")
    );
    let v = value_to_avro(&s, &json!(i64::MIN)).unwrap_or_default();
    assert_eq!(dec(&s, &v, UnionStyle::Plain), json!(i64::MIN));
    assert!(json_to_avro(&s, "9223372036854775808").is_err());
    assert!(json_to_avro(&s, "1.5").is_err());
    let i = schema(r#""int""#);
    assert!(json_to_avro(&i, "2147483648").is_err());
}

#[test]
fn unions_tagged_and_plain_input() {
    let s = schema(
        r#"["null","string","long",{"type":"record","name":"R","namespace":"ns","fields":[{"name":"a","type":"int"}]}]"#,
    );
    assert_eq!(enc(&s, "null"), [0x00]);
    assert_eq!(enc(&s, r#"{"string":"x"}"#), [0x02, 0x02, b'x']);
    assert_eq!(enc(&s, r#""x""#), [0x02, 0x02, b'x']);
    assert_eq!(enc(&s, r#"{"long":5}"#), [0x04, 0x0a]);
    assert_eq!(enc(&s, "5"), [0x04, 0x0a]);
    assert_eq!(enc(&s, r#"{"ns.R":{"a":1}}"#), [0x06, 0x02]);
    assert_eq!(
        enc(&s, r#"{"R":{"a":1}}"#),
        [0x06, 0x02],
        "unqualified name"
    );
    assert_eq!(enc(&s, r#"{"a":1}"#), [0x06, 0x02], "plain record");

    // numbers prefer int, then long, double, float
    let n = schema(r#"["float","double","long","int"]"#);
    assert_eq!(enc(&n, "1")[0], 0x06);
    assert_eq!(enc(&n, "1.5")[0], 0x02);
    assert_eq!(enc(&n, "4294967296")[0], 0x04);

    // ambiguous strings need the tag
    let amb = schema(r#"["null","string","bytes"]"#);
    let e = enc_err(&amb, r#""x""#);
    assert!(e.message.contains("ambiguous"), "{e}");
    assert_eq!(enc(&amb, r#"{"bytes":"x"}"#), [0x04, 0x02, b'x']);

    // enum and string: a symbol is ambiguous, but a non-symbol string is a string
    let es = schema(r#"["string",{"type":"enum","name":"E","symbols":["A"]}]"#);
    assert_eq!(enc(&es, r#""zz""#), [0x00, 0x04, b'z', b'z']);
    assert!(json_to_avro(&es, r#""A""#).is_err());
    assert_eq!(enc(&es, r#"{"E":"A"}"#), [0x02, 0x00]);

    let e = enc_err(&s, "true");
    assert!(
        e.expected.starts_with("union [null, string, long, ns.R]"),
        "{e:?}"
    );
    let e = enc_err(&schema(r#"["string","int"]"#), "null");
    assert!(e.message.contains("null"), "{e}");
}

#[test]
fn unions_tagged_and_plain_output() {
    let s = schema(
        r#"{"type":"record","name":"R","fields":[
        {"name":"a","type":["null","string"]},
        {"name":"b","type":["null","int"]},
        {"name":"c","type":["null",{"type":"enum","name":"E","namespace":"x.y","symbols":["P"]}]},
        {"name":"d","type":["null",{"type":"int","logicalType":"date"}]}]}"#,
    );
    let bytes = enc(&s, r#"{"a":"s","b":null,"c":"P","d":"1970-01-02"}"#);
    assert_eq!(
        avro_to_json(&s, None, &bytes, UnionStyle::Tagged)
            .ok()
            .as_deref(),
        Some(r#"{"a":{"string":"s"},"b":null,"c":{"x.y.E":"P"},"d":{"int":1}}"#)
    );
    assert_eq!(
        avro_to_json(&s, None, &bytes, UnionStyle::Plain)
            .ok()
            .as_deref(),
        Some(r#"{"a":"s","b":null,"c":"P","d":1}"#)
    );
    assert_eq!(UnionStyle::default(), UnionStyle::Tagged);
}

#[test]
fn record_defaults_and_field_errors() {
    let s = schema(
        r#"{"type":"record","name":"Person","fields":[
        {"name":"name","type":"string"},
        {"name":"nick","type":["string","null"],"default":"none"},
        {"name":"n","type":"long","default":7},
        {"name":"b","type":"bytes","default":"\u00ff"},
        {"name":"address","type":{"type":"record","name":"Address","fields":[
            {"name":"zip","type":"int"},
            {"name":"tags","type":{"type":"array","items":"string"},"default":[]}]}}]}"#,
    );
    let b = enc(&s, r#"{"name":"a","address":{"zip":1}}"#);
    assert_eq!(
        dec(&s, &b, UnionStyle::Tagged),
        json!({"name":"a","nick":{"string":"none"},"n":7,"b":"\u{ff}","address":{"zip":1,"tags":[]}})
    );

    let e = enc_err(&s, r#"{"name":"a","address":{"zip":"x"}}"#);
    assert_eq!(e.path, "$.address.zip");
    assert_eq!(e.expected, "int");
    assert_eq!(
        e.to_string(),
        r#"expected int, found string "x" at $.address.zip"#
    );

    let e = enc_err(&s, r#"{"name":"a","address":{}}"#);
    assert_eq!(e.path, "$.address.zip");
    assert!(e.message.contains("missing field 'zip'"), "{e}");

    let e = enc_err(&s, r#"{"name":"a","address":{"zip":1,"zap":2}}"#);
    assert_eq!(e.path, "$.address.zap");
    assert!(e.message.contains("unknown field 'zap'"), "{e}");

    let e = enc_err(&s, r#"{"name":"a","address":{"zip":1,"tags":["ok",3]}}"#);
    assert_eq!(e.path, "$.address.tags[1]");
    assert_eq!(e.expected, "string");

    let m = schema(r#"{"type":"map","values":"int"}"#);
    let e = enc_err(&m, r#"{"a b":"x"}"#);
    assert_eq!(e.path, r#"$["a b"]"#);

    let e = enc_err(&s, "[1");
    assert!(e.message.contains("invalid JSON"), "{e}");

    let en = schema(r#"{"type":"enum","name":"E","symbols":["A","B"]}"#);
    let e = enc_err(&en, r#""C""#);
    assert!(e.message.contains("A, B"), "{e}");

    let f = schema(r#"{"type":"fixed","name":"F","size":2}"#);
    assert!(json_to_avro(&f, r#""abc""#).is_err());
    let by = schema(r#""bytes""#);
    let e = enc_err(&by, r#""☃""#);
    assert!(e.message.contains("U+2603"), "{e}");
}

#[test]
fn decode_errors_name_the_path() {
    let s = schema(
        r#"{"type":"record","name":"R","fields":[
        {"name":"a","type":"int"},
        {"name":"items","type":{"type":"array","items":"string"}}]}"#,
    );
    // a=1, items: count 2, "x", then truncated
    let e = avro_to_value(
        &s,
        None,
        &[0x02, 0x04, 0x02, b'x', 0x02],
        UnionStyle::Tagged,
    )
    .err()
    .unwrap_or_else(|| panic!("should fail"));
    assert_eq!(e.path, "$.items[1]");
    assert_eq!(e.expected, "string");
    let e = avro_to_value(&s, None, &[0x02, 0x00, 0x00], UnionStyle::Tagged)
        .err()
        .unwrap_or_else(|| panic!("trailing bytes"));
    assert!(e.message.contains("unexpected bytes"), "{e}");
}

#[test]
fn json_text_can_be_appended_to_a_buffer_that_is_left_as_it_was_on_an_error() {
    use tributary_avro::codec::avro_to_json_into;
    let s = schema(
        r#"{"type":"record","name":"R","fields":[
        {"name":"a","type":"string"},
        {"name":"m","type":{"type":"map","values":"int"}}]}"#,
    );
    let bytes = enc(&s, r#"{"a":"é","m":{"k":1}}"#);
    let mut out = b"[".to_vec();
    for _ in 0..2 {
        assert!(avro_to_json_into(&s, None, &bytes, UnionStyle::Tagged, &mut out).is_ok());
        out.push(b',');
    }
    assert_eq!(
        String::from_utf8(out.clone()).ok().as_deref(),
        Some(r#"[{"a":"é","m":{"k":1}},{"a":"é","m":{"k":1}},"#)
    );
    // Truncated data: an error, and the buffer keeps what it held.
    let before = out.clone();
    let error = avro_to_json_into(&s, None, &bytes[..3], UnionStyle::Tagged, &mut out);
    assert!(error.is_err());
    assert_eq!(out, before);
}

#[test]
fn doubles_in_json_are_read_exactly() {
    // serde_json's default parser read these one unit in the last place off (found by the
    // apache-avro oracle, tests/avro_oracle.rs); float_roundtrip reads them exactly.
    let s = tributary_avro::Schema::parse(r#""double""#, &[]).expect("parses");
    for v in [
        -1_044_718.629_882_812_5_f64,
        918_528.553_710_937_5,
        590_576.820_312_5,
        -910_204.694_335_937_5,
    ] {
        let text = format!("{v}");
        let avro = tributary_avro::codec::json_to_avro(&s, &text).expect("encodes");
        assert_eq!(avro, v.to_le_bytes().to_vec(), "{text}");
    }
}
