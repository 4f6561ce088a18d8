//! Where the decoder puts what it reads: a `serde_json` value tree ([`ValueSink`]) or JSON text
//! written as it goes ([`TextSink`]).
//!
//! The decoder ([`super::decode`]) is generic over [`Sink`], so both outputs share one copy of
//! the decoding and resolution logic. [`TextSink`] writes exactly what `Value::to_string()` of
//! the tree would: it formats numbers and escapes strings with serde_json's own serializer, and
//! it gives maps with a repeated key the tree's semantics (first position, last value).

use std::collections::HashMap;
use std::ops::Range;

use serde_json::ser::{CompactFormatter, Formatter};
use serde_json::{Map, Value};

use super::{f32_as_f64, non_finite_name};

/// An output for decoded values. Values are built bottom-up: scalars return an [`Sink::Item`];
/// containers are opened, get their parts in order, and are closed into an item. A text sink
/// writes as it goes, so a container's separators are written before each part is decoded.
pub(crate) trait Sink {
    /// A finished value (the tree for [`ValueSink`]; nothing for [`TextSink`], whose values are
    /// already written).
    type Item;
    /// A finished value set aside to be placed later ([`Sink::capture`], [`Sink::emit`]).
    type Frag;
    /// Where a capture started.
    type Mark;
    /// An open array.
    type Array;
    /// An open object (a record, a map or a tagged union value).
    type Object;

    fn null(&mut self) -> Self::Item;
    fn boolean(&mut self, v: bool) -> Self::Item;
    fn long(&mut self, v: i64) -> Self::Item;
    /// A double; non-finite values as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
    fn double(&mut self, v: f64) -> Self::Item;
    /// A float, printed with its own shortest representation (see [`f32_as_f64`]).
    fn float(&mut self, v: f32) -> Self::Item {
        self.double(f32_as_f64(v))
    }
    fn string(&mut self, s: &str) -> Self::Item;
    /// Bytes as the string of characters U+0000..U+00FF (Avro's JSON encoding of bytes).
    fn latin1(&mut self, b: &[u8]) -> Self::Item;

    fn array_begin(&mut self) -> Self::Array;
    /// Called before each item is decoded.
    fn array_next(&mut self, array: &mut Self::Array);
    fn array_push(&mut self, array: &mut Self::Array, item: Self::Item);
    fn array_end(&mut self, array: Self::Array) -> Self::Item;

    /// `keys_may_repeat`: an Avro map, whose data may hold a key more than once (the last
    /// value wins, at the first key's position).
    fn object_begin(&mut self, keys_may_repeat: bool) -> Self::Object;
    /// Called before the key's value is decoded.
    fn object_key(&mut self, object: &mut Self::Object, key: &str);
    /// [`Sink::object_key`] for a record's field: its name is a valid Avro name (checked when
    /// the schema was parsed: letters, digits and `_`), so it has nothing to escape.
    fn object_field(&mut self, object: &mut Self::Object, name: &str) {
        self.object_key(object, name);
    }
    /// [`Sink::string`] for an enum's symbol, a valid Avro name (nothing to escape).
    fn symbol(&mut self, name: &str) -> Self::Item {
        self.string(name)
    }
    fn object_value(&mut self, object: &mut Self::Object, item: Self::Item);
    fn object_end(&mut self, object: Self::Object) -> Self::Item;

    /// Start setting aside what is decoded next.
    fn capture_begin(&mut self) -> Self::Mark;
    /// The value decoded since `mark`, set aside.
    fn capture(&mut self, mark: Self::Mark, item: Self::Item) -> Self::Frag;
    /// Put a value set aside here.
    fn emit(&mut self, frag: Self::Frag) -> Self::Item;
}

fn latin1_string(b: &[u8]) -> String {
    b.iter().map(|c| char::from(*c)).collect()
}

/// Decodes into a `serde_json` value.
#[derive(Debug, Default)]
pub(crate) struct ValueSink;

impl Sink for ValueSink {
    type Item = Value;
    type Frag = Value;
    type Mark = ();
    type Array = Vec<Value>;
    /// The object and the key whose value comes next.
    type Object = (Map<String, Value>, String);

    fn null(&mut self) -> Value {
        Value::Null
    }
    fn boolean(&mut self, v: bool) -> Value {
        Value::Bool(v)
    }
    fn long(&mut self, v: i64) -> Value {
        Value::from(v)
    }
    fn double(&mut self, v: f64) -> Value {
        super::f64_value(v)
    }
    fn string(&mut self, s: &str) -> Value {
        Value::String(s.to_owned())
    }
    fn latin1(&mut self, b: &[u8]) -> Value {
        Value::String(latin1_string(b))
    }
    fn array_begin(&mut self) -> Vec<Value> {
        Vec::new()
    }
    fn array_next(&mut self, _: &mut Vec<Value>) {}
    fn array_push(&mut self, array: &mut Vec<Value>, item: Value) {
        array.push(item);
    }
    fn array_end(&mut self, array: Vec<Value>) -> Value {
        Value::Array(array)
    }
    fn object_begin(&mut self, _: bool) -> Self::Object {
        (Map::new(), String::new())
    }
    fn object_key(&mut self, object: &mut Self::Object, key: &str) {
        key.clone_into(&mut object.1);
    }
    fn object_value(&mut self, object: &mut Self::Object, item: Value) {
        object.0.insert(std::mem::take(&mut object.1), item);
    }
    fn object_end(&mut self, object: Self::Object) -> Value {
        Value::Object(object.0)
    }
    fn capture_begin(&mut self) {}
    fn capture(&mut self, (): (), item: Value) -> Value {
        item
    }
    fn emit(&mut self, frag: Value) -> Value {
        frag
    }
}

/// Writes compact JSON text, byte for byte what `Value::to_string()` of the tree would be.
#[derive(Debug, Default)]
pub(crate) struct TextSink {
    out: Vec<u8>,
}

/// An open object in [`TextSink`]'s output.
#[derive(Debug)]
pub(crate) struct TextObject {
    /// Where the `{` is.
    start: usize,
    /// Whether no key was written yet.
    empty: bool,
    /// For maps: each entry's key (quoted) and value, as ranges of the output.
    entries: Option<Vec<(Range<usize>, Range<usize>)>>,
}

impl TextSink {
    /// A sink that writes after what `out` holds already.
    pub(crate) fn appending_to(out: Vec<u8>) -> Self {
        TextSink { out }
    }

    /// What `out` held, then the text written.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    fn quoted(&mut self, s: &str) {
        super::escape::write_json_string(&mut self.out, s);
    }

    /// Rewrite the map starting at `start` with each repeated key once: at its first position,
    /// with its last value (what inserting into a `serde_json` map does).
    fn merge_repeated_keys(&mut self, start: usize, entries: &[(Range<usize>, Range<usize>)]) {
        let out = &self.out;
        let mut position: HashMap<&[u8], usize> = HashMap::with_capacity(entries.len());
        let mut merged: Vec<(&[u8], &[u8])> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let (Some(key), Some(value)) = (out.get(k.clone()), out.get(v.clone())) else {
                continue;
            };
            match position.get(key).and_then(|&i| merged.get_mut(i)) {
                Some(slot) => slot.1 = value,
                None => {
                    position.insert(key, merged.len());
                    merged.push((key, value));
                }
            }
        }
        if merged.len() == entries.len() {
            return;
        }
        let mut text = Vec::with_capacity(out.len().saturating_sub(start));
        text.push(b'{');
        for (i, (k, v)) in merged.iter().enumerate() {
            if i > 0 {
                text.push(b',');
            }
            text.extend_from_slice(k);
            text.push(b':');
            text.extend_from_slice(v);
        }
        text.push(b'}');
        self.out.truncate(start);
        self.out.extend_from_slice(&text);
    }
}

impl Sink for TextSink {
    type Item = ();
    type Frag = Vec<u8>;
    type Mark = usize;
    /// Whether no item was written yet.
    type Array = bool;
    type Object = TextObject;

    fn null(&mut self) {
        self.out.extend_from_slice(b"null");
    }
    fn boolean(&mut self, v: bool) {
        self.out
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
    }
    fn long(&mut self, v: i64) {
        let _ = CompactFormatter.write_i64(&mut self.out, v);
    }
    fn double(&mut self, v: f64) {
        if v.is_finite() {
            let _ = CompactFormatter.write_f64(&mut self.out, v);
        } else {
            self.quoted(non_finite_name(v));
        }
    }
    fn string(&mut self, s: &str) {
        self.quoted(s);
    }
    fn latin1(&mut self, b: &[u8]) {
        match std::str::from_utf8(b) {
            Ok(s) if b.is_ascii() => self.quoted(s),
            _ => self.quoted(&latin1_string(b)),
        }
    }
    fn array_begin(&mut self) -> bool {
        self.out.push(b'[');
        true
    }
    fn array_next(&mut self, empty: &mut bool) {
        if !std::mem::take(empty) {
            self.out.push(b',');
        }
    }
    fn array_push(&mut self, _: &mut bool, (): ()) {}
    fn array_end(&mut self, _: bool) {
        self.out.push(b']');
    }
    fn object_begin(&mut self, keys_may_repeat: bool) -> TextObject {
        let start = self.out.len();
        self.out.push(b'{');
        TextObject {
            start,
            empty: true,
            entries: keys_may_repeat.then(Vec::new),
        }
    }
    fn object_key(&mut self, object: &mut TextObject, key: &str) {
        if !std::mem::take(&mut object.empty) {
            self.out.push(b',');
        }
        let key_start = self.out.len();
        self.quoted(key);
        let key_end = self.out.len();
        self.out.push(b':');
        if let Some(entries) = &mut object.entries {
            entries.push((key_start..key_end, key_end + 1..key_end + 1));
        }
    }
    fn object_field(&mut self, object: &mut TextObject, name: &str) {
        if object.entries.is_some() {
            return self.object_key(object, name);
        }
        if !std::mem::take(&mut object.empty) {
            self.out.push(b',');
        }
        debug_assert!(!name.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'));
        self.out.reserve(name.len() + 3);
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }
    fn symbol(&mut self, name: &str) {
        debug_assert!(!name.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'));
        self.out.reserve(name.len() + 2);
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'"');
    }
    fn object_value(&mut self, object: &mut TextObject, (): ()) {
        let end = self.out.len();
        if let Some((_, value)) = object.entries.as_mut().and_then(|e| e.last_mut()) {
            value.end = end;
        }
    }
    fn object_end(&mut self, object: TextObject) {
        self.out.push(b'}');
        if let Some(entries) = object.entries
            && entries.len() > 1
        {
            self.merge_repeated_keys(object.start, &entries);
        }
    }
    fn capture_begin(&mut self) -> usize {
        self.out.len()
    }
    fn capture(&mut self, mark: usize, (): ()) -> Vec<u8> {
        self.out.split_off(mark.min(self.out.len()))
    }
    fn emit(&mut self, frag: Vec<u8>) {
        self.out.extend_from_slice(&frag);
    }
}
