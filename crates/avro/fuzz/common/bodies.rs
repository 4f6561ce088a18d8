//! Bodies of the fuzz targets, shared with the stable property test
//! (`crates/avro/tests/codec_fuzz.rs` includes this file).
//!
//! Both bodies must never panic except on a broken invariant.

use std::sync::OnceLock;

use tributary_avro::codec::{self, UnionStyle};
use tributary_avro::wire;
use tributary_avro::{Limits, Schema};

/// (schema text, whether decoded values re-encode to identical bytes, a valid datum)
///
/// Not exact: `decimal` on `bytes`/`fixed` (a byte string that happens to look like
/// `"12.34"` is taken as a number on input) and `uuid` (the decoder passes any string, the
/// encoder insists on a UUID).
pub const SCHEMAS: &[(&str, bool, &str)] = &[
    (r#""long""#, true, "1"),
    (r#""string""#, true, r#""foo""#),
    (r#""bytes""#, true, r#""\u0000\u00ff""#),
    (
        r#"["null","string","long","double","boolean"]"#,
        true,
        r#"{"string":"x"}"#,
    ),
    (
        r#"{"type":"record","name":"Rec","namespace":"f","fields":[
            {"name":"i","type":"int"},
            {"name":"f","type":"float","default":1.5},
            {"name":"d","type":"double"},
            {"name":"s","type":["null","string"],"default":null},
            {"name":"b","type":"bytes"},
            {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"],"default":"A"}},
            {"name":"x","type":{"type":"fixed","name":"X","size":3}},
            {"name":"a","type":{"type":"array","items":["null","int","string"]}},
            {"name":"m","type":{"type":"map","values":{"type":"array","items":"long"}}},
            {"name":"n","type":"null"},
            {"name":"t","type":"boolean"}]}"#,
        true,
        r#"{"i":-3,"d":2.25,"s":{"string":"hi"},"b":"ab","e":"C","x":"xyz","a":[null,{"int":4},{"string":"z"}],"m":{"k":[1,2,3]},"n":null,"t":true}"#,
    ),
    (
        r#"{"type":"record","name":"Node","fields":[
            {"name":"v","type":"long"},
            {"name":"kids","type":{"type":"array","items":"Node"}},
            {"name":"next","type":["null","Node"]}]}"#,
        true,
        r#"{"v":1,"kids":[{"v":2,"kids":[],"next":null}],"next":{"Node":{"v":3,"kids":[],"next":null}}}"#,
    ),
    (
        r#"{"type":"record","name":"Logical","fields":[
            {"name":"date","type":{"type":"int","logicalType":"date"}},
            {"name":"tm","type":{"type":"int","logicalType":"time-millis"}},
            {"name":"tu","type":{"type":"long","logicalType":"time-micros"}},
            {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
            {"name":"tsu","type":{"type":"long","logicalType":"timestamp-micros"}},
            {"name":"tsn","type":{"type":"long","logicalType":"timestamp-nanos"}},
            {"name":"lts","type":{"type":"long","logicalType":"local-timestamp-millis"}},
            {"name":"dur","type":{"type":"fixed","name":"Dur","size":12,"logicalType":"duration"}}]}"#,
        true,
        r#"{"date":"2024-02-29","tm":"23:59:59.999","tu":"00:00:00.000001","ts":"2024-01-01T00:00:00Z","tsu":1,"tsn":"1970-01-01T00:00:00.000000001Z","lts":"2024-01-01T00:00:00.5","dur":{"months":1,"days":2,"millis":3}}"#,
    ),
    (
        r#"{"type":"record","name":"Dec","fields":[
            {"name":"b","type":{"type":"bytes","logicalType":"decimal","precision":20,"scale":4}},
            {"name":"f","type":{"type":"fixed","name":"DF","size":6,"logicalType":"decimal","precision":12,"scale":2}},
            {"name":"u","type":{"type":"string","logicalType":"uuid"}}]}"#,
        false,
        r#"{"b":"-1234.5678","f":99.5,"u":"123e4567-e89b-12d3-a456-426614174000"}"#,
    ),
    (
        r#"{"type":"map","values":["null",{"type":"array","items":"null"}]}"#,
        true,
        r#"{"a":{"array":[null,null]},"b":null}"#,
    ),
];

/// The parsed [`SCHEMAS`].
pub fn schemas() -> &'static [(Schema, bool)] {
    static PARSED: OnceLock<Vec<(Schema, bool)>> = OnceLock::new();
    PARSED.get_or_init(|| {
        SCHEMAS
            .iter()
            .map(|(text, exact, _)| {
                let s = Schema::parse(text, &[]).expect("fuzz schema parses");
                (s, *exact)
            })
            .collect()
    })
}

fn pick(selector: u32) -> &'static (Schema, bool) {
    let all = schemas();
    let n = u32::try_from(all.len()).expect("few schemas");
    &all[(selector % n) as usize]
}

/// A Confluent frame whose schema id picks one of [`SCHEMAS`]: decoding must not panic, and a
/// value that decodes must re-encode to data that decodes to the same value. Returns whether
/// the payload decoded.
pub fn frame_decode(data: &[u8]) -> bool {
    let (id, payload) = match wire::decode(data) {
        Ok(x) => x,
        Err(e) => {
            assert!(
                data.len() < 5 || data[0] != wire::MAGIC_BYTE,
                "{e} for {data:02x?}"
            );
            return false;
        }
    };
    assert_eq!(wire::encode(id, payload), data, "frame round trip");
    let (schema, exact) = pick(id);
    let mut decoded = false;
    for style in [UnionStyle::Tagged, UnionStyle::Plain] {
        let Ok(v) = codec::avro_to_value(schema, None, payload, style) else {
            continue;
        };
        decoded = true;
        let text = codec::avro_to_json(schema, None, payload, style).expect("same as value");
        assert_eq!(text, v.to_string());
        if style == UnionStyle::Tagged && *exact {
            let again = codec::value_to_avro(schema, &v)
                .unwrap_or_else(|e| panic!("decoded value {v} does not re-encode: {e}"));
            let v2 = codec::avro_to_value(schema, None, &again, style)
                .unwrap_or_else(|e| panic!("re-encoded {again:02x?} does not decode: {e}"));
            assert_eq!(v, v2, "value changed through re-encoding");
        }
    }
    decoded
}

/// JSON text (after a schema-selector byte): whatever encodes must decode, and for exact
/// schemas decode-then-encode must reproduce the same bytes. Returns whether the JSON encoded.
pub fn json_to_avro(data: &[u8]) -> bool {
    let Some((&sel, rest)) = data.split_first() else {
        return false;
    };
    let (schema, exact) = pick(u32::from(sel));
    let text = String::from_utf8_lossy(rest);
    let Ok(bytes) = codec::json_to_avro(schema, &text) else {
        return false;
    };
    let v = codec::avro_to_value(schema, None, &bytes, UnionStyle::Tagged)
        .unwrap_or_else(|e| panic!("encoder output {bytes:02x?} for {text} does not decode: {e}"));
    codec::avro_to_value(schema, None, &bytes, UnionStyle::Plain).expect("plain decodes too");
    if *exact {
        let again = codec::value_to_avro(schema, &v)
            .unwrap_or_else(|e| panic!("decoded value {v} does not re-encode: {e}"));
        assert_eq!(again, bytes, "{text} -> {v} re-encodes differently");
    }
    true
}

/// Reader schemas the writers of [`SCHEMAS`] evolve into: promotions, added fields with
/// defaults, dropped fields, more enum symbols, unions around a writer's type.
pub const READERS: &[&str] = &[
    r#""double""#,
    r#"["null","long"]"#,
    r#"["bytes","double","string"]"#,
    r#"{"type":"record","name":"Rec","namespace":"f","fields":[
        {"name":"i","type":"long"},
        {"name":"f","type":"double"},
        {"name":"s","type":["null","string","bytes"],"default":null},
        {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C","D"],"default":"A"}},
        {"name":"x","type":{"type":"fixed","name":"X","size":3}},
        {"name":"a","type":{"type":"array","items":["null","long","string","double"]}},
        {"name":"added","type":{"type":"map","values":"int"},"default":{"k":1}},
        {"name":"t","type":["boolean","null"]}]}"#,
    r#"{"type":"record","name":"Node","fields":[
        {"name":"v","type":"double"},
        {"name":"next","type":["null","Node"]},
        {"name":"label","type":"string","default":"none"}]}"#,
    r#"{"type":"map","values":["null",{"type":"array","items":["null","int"]}]}"#,
];

/// The parsed [`SCHEMAS`] followed by the parsed [`READERS`]: what a reader selector picks from.
pub fn readers() -> &'static [Schema] {
    static PARSED: OnceLock<Vec<Schema>> = OnceLock::new();
    PARSED.get_or_init(|| {
        let writers = schemas().iter().map(|(s, _)| s.clone());
        let readers = READERS
            .iter()
            .map(|text| Schema::parse(text, &[]).expect("fuzz reader schema parses"));
        writers.chain(readers).collect()
    })
}

/// Avro binary after two selector bytes (a writer among [`SCHEMAS`], a reader among
/// [`readers`]): decoding to JSON text within [`Limits::default`] must not panic; what decodes
/// is valid JSON, the same as the value decoder gives, and (for exact readers) encodes with
/// the reader; what fails leaves the output as it was. A reader the writer cannot be read as
/// is refused by the check, and the data is then read with the writer alone. Returns whether
/// the data decoded.
pub fn avro_to_json(data: &[u8]) -> bool {
    let [w, r, payload @ ..] = data else {
        return false;
    };
    let limits = Limits::default();
    let (writer, _) = pick(u32::from(*w));
    let all = readers();
    let index = usize::from(*r) % all.len();
    let mut reader = &all[index];
    // The readers past SCHEMAS have neither decimal nor uuid: exact.
    let mut exact = schemas().get(index).is_none_or(|(_, exact)| *exact);
    if codec::check_readable_with(writer, reader, &limits).is_err() {
        reader = writer;
        exact = pick(u32::from(*w)).1;
    }
    let resolving = !std::ptr::eq(reader, writer);
    let mut decoded = false;
    for style in [UnionStyle::Tagged, UnionStyle::Plain] {
        let mut out = b"[".to_vec();
        let result = codec::avro_to_json_into_checked_with(
            writer, reader, payload, style, &mut out, &limits,
        );
        let value = codec::avro_to_value(writer, resolving.then_some(reader), payload, style);
        match result {
            Err(e) => {
                assert_eq!(out, b"[", "output left behind by {e}");
                assert!(
                    value.is_err(),
                    "the value decoder accepts what the text one refuses"
                );
            }
            Ok(()) => {
                decoded = true;
                let text: serde_json::Value = serde_json::from_slice(&out[1..])
                    .unwrap_or_else(|e| panic!("output is not JSON ({e}): {out:02x?}"));
                let value = value.expect("the value decoder accepts what the text one does");
                assert_eq!(text, value, "text and value decoders differ");
                if style == UnionStyle::Tagged && exact {
                    codec::value_to_avro(reader, &value).unwrap_or_else(|e| {
                        panic!("decoded value {value} does not encode with the reader: {e}")
                    });
                }
            }
        }
    }
    decoded
}
