//! What the encoder reads: any JSON tree behind [`JsonNode`] — a `serde_json::Value` (callers
//! that hold values) or a [`Borrowed`] tree parsed from text without copying unescaped strings.
//!
//! [`Borrowed`] is parsed by serde_json's own parser, so it accepts and rejects exactly what
//! parsing into a `Value` does (same errors, same recursion limit), and it gives objects the
//! `Value` semantics for a repeated key: the first key's position, the last value.
//!
//! A record whose keys come exactly in the schema's order (the usual case) is not even built as
//! a tree: [`encode_record_in_schema_order`] parses and encodes it field by field, and leaves
//! every other shape to the general path.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::encode::Encoder;
use super::{Path, Seg};
use crate::schema::{Field, RecordSchema, Schema};

/// One JSON value, seen through whatever representation holds it.
#[derive(Debug)]
pub(crate) enum View<'n, N: JsonNode> {
    Null,
    Bool(bool),
    Number(&'n Number),
    String(&'n str),
    Array(&'n [N]),
    Object(&'n N::Object),
}

/// A JSON tree the encoder can walk.
pub(crate) trait JsonNode: Sized {
    /// An object of this representation.
    type Object: JsonObject<Self> + ?Sized;

    fn view(&self) -> View<'_, Self>;

    fn is_null(&self) -> bool {
        matches!(self.view(), View::Null)
    }
}

/// A JSON object: keys are unique, in their order of first appearance.
pub(crate) trait JsonObject<N> {
    fn len(&self) -> usize;
    fn get(&self, key: &str) -> Option<&N>;
    /// The `i`th entry, when the representation can tell cheaply.
    fn entry_at(&self, i: usize) -> Option<(&str, &N)>;
    fn entries<'o>(&'o self) -> impl Iterator<Item = (&'o str, &'o N)>
    where
        N: 'o;
}

impl JsonNode for Value {
    type Object = Map<String, Value>;

    fn view(&self) -> View<'_, Self> {
        match self {
            Value::Null => View::Null,
            Value::Bool(b) => View::Bool(*b),
            Value::Number(n) => View::Number(n),
            Value::String(s) => View::String(s),
            Value::Array(a) => View::Array(a),
            Value::Object(o) => View::Object(o),
        }
    }
}

impl JsonObject<Value> for Map<String, Value> {
    fn len(&self) -> usize {
        Map::len(self)
    }
    fn get(&self, key: &str) -> Option<&Value> {
        Map::get(self, key)
    }
    fn entry_at(&self, _: usize) -> Option<(&str, &Value)> {
        None
    }
    fn entries<'o>(&'o self) -> impl Iterator<Item = (&'o str, &'o Value)>
    where
        Value: 'o,
    {
        self.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// A JSON value parsed from text, borrowing the strings that need no unescaping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Borrowed<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Borrowed<'a>>),
    Object(BorrowedObject<'a>),
}

/// The entries of a [`Borrowed`] object, each key once.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct BorrowedObject<'a> {
    entries: Vec<(Cow<'a, str>, Borrowed<'a>)>,
    /// Key -> entry, for objects of more than [`SCAN_LIMIT`] entries (kept from parsing, so a
    /// large object's keys are found in constant time). Boxed: every JSON value of a datum is
    /// a `Borrowed`, which stays as small as it was (a pointer rather than a map's 48 bytes).
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<Cow<'a, str>, usize>>>,
}

/// What [`BorrowedObject::insert`] keeps to find a repeated key quickly while parsing.
#[derive(Debug, Default)]
struct KeysSeen<'a> {
    /// A bit per [`key_bit`] of the keys: a key whose bit is not set is new.
    bits: u64,
    /// Key -> entry, once the object has more than [`SCAN_LIMIT`] entries.
    index: Option<HashMap<Cow<'a, str>, usize>>,
}

/// A bit chosen by a cheap hash of a key (its length, first and last bytes).
fn key_bit(key: &str) -> u64 {
    let b = key.as_bytes();
    let (first, last) = (b.first().copied(), b.last().copied());
    let h = key.len() * 31 + usize::from(first.unwrap_or(0)) * 7 + usize::from(last.unwrap_or(0));
    1 << (h % 64)
}

impl<'a> JsonNode for Borrowed<'a> {
    type Object = BorrowedObject<'a>;

    fn view(&self) -> View<'_, Self> {
        match self {
            Borrowed::Null => View::Null,
            Borrowed::Bool(b) => View::Bool(*b),
            Borrowed::Number(n) => View::Number(n),
            Borrowed::String(s) => View::String(s),
            Borrowed::Array(a) => View::Array(a),
            Borrowed::Object(o) => View::Object(o),
        }
    }
}

impl<'a> JsonObject<Borrowed<'a>> for BorrowedObject<'a> {
    fn len(&self) -> usize {
        self.entries.len()
    }
    fn get(&self, key: &str) -> Option<&Borrowed<'a>> {
        match &self.index {
            Some(index) => index
                .get(key)
                .and_then(|&i| self.entries.get(i))
                .map(|(_, v)| v),
            None => self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        }
    }
    fn entry_at(&self, i: usize) -> Option<(&str, &Borrowed<'a>)> {
        self.entries.get(i).map(|(k, v)| (k.as_ref(), v))
    }
    fn entries<'o>(&'o self) -> impl Iterator<Item = (&'o str, &'o Borrowed<'a>)>
    where
        Borrowed<'a>: 'o,
    {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v))
    }
}

/// Objects up to this size look for a repeated key by scanning; larger ones keep an index.
const SCAN_LIMIT: usize = 16;

impl<'a> BorrowedObject<'a> {
    /// Where `key` already is, if it is (a repeated key: like inserting into a `serde_json`
    /// map, it keeps its first position and takes the new value). Registers `key` as seen.
    #[allow(clippy::ptr_arg)] // the index keeps a clone of the Cow: a borrowed key stays borrowed
    fn position(&self, seen: &mut KeysSeen<'a>, key: &Cow<'a, str>) -> Option<usize> {
        let entries = &self.entries;
        let bit = key_bit(key);
        let maybe_seen = seen.bits & bit != 0;
        seen.bits |= bit;
        if entries.len() < SCAN_LIMIT {
            return if maybe_seen {
                entries.iter().position(|(k, _)| k == key)
            } else {
                None
            };
        }
        let index = seen.index.get_or_insert_with(|| {
            entries
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect()
        });
        let at = index.get(key).copied();
        if at.is_none() {
            index.insert(key.clone(), entries.len());
        }
        at
    }
}

impl<'de> Deserialize<'de> for Borrowed<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BorrowedVisitor)
    }
}

struct BorrowedVisitor;

impl<'de> Visitor<'de> for BorrowedVisitor {
    type Value = Borrowed<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Borrowed::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Borrowed::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Borrowed::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(v).map_or(Borrowed::Null, Borrowed::Number))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Borrowed::String(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Borrowed::String(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Borrowed::String(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Borrowed::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Borrowed::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Deserialize::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Borrowed::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = BorrowedObject {
            entries: Vec::with_capacity(16),
            index: None,
        };
        let mut seen = KeysSeen::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value()?;
            match object
                .position(&mut seen, &key)
                .and_then(|i| object.entries.get_mut(i))
            {
                Some(slot) => slot.1 = value,
                None => object.entries.push((key, value)),
            }
        }
        object.index = seen.index.map(Box::new);
        Ok(Borrowed::Object(object))
    }
}

/// An object key, borrowed when it needs no unescaping.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// The fast path of `json_to_avro` for a record: when the JSON object has exactly the record's
/// fields in the schema's order, each once, each field value is parsed and encoded in turn,
/// with no tree for the record. Anything else (another order, missing, unknown or repeated
/// keys, not an object, any error) returns `false`, and the caller takes the general path,
/// which gives the same bytes, or the error, in the same order of checks.
pub(crate) fn encode_record_in_schema_order(
    schema: &Schema,
    record: &RecordSchema,
    json: &str,
    max_depth: usize,
    out: &mut Vec<u8>,
) -> bool {
    let start = out.len();
    let mut de = serde_json::Deserializer::from_str(json);
    let visitor = InSchemaOrder {
        encoder: Encoder::new(schema, max_depth),
        fields: &record.fields,
        out: &mut *out,
    };
    let done = de.deserialize_map(visitor).is_ok() && de.end().is_ok();
    if !done {
        out.truncate(start);
    }
    done
}

struct InSchemaOrder<'s, 'o> {
    encoder: Encoder<'s>,
    fields: &'s [Field],
    out: &'o mut Vec<u8>,
}

impl<'de> Visitor<'de> for InSchemaOrder<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the record's fields in the schema's order")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let not_in_order = || de::Error::custom("not the record's fields in order");
        for f in self.fields {
            match map.next_key_seed(KeySeed)? {
                Some(key) if key == f.name.as_str() => {}
                _ => return Err(not_in_order()),
            }
            let value: Borrowed<'de> = map.next_value()?;
            let path = Path::ROOT.child(Seg::Field(&f.name));
            self.encoder
                .encode(f.schema, &value, &path, 1, false, self.out)
                .map_err(|_| not_in_order())?;
        }
        match map.next_key_seed(KeySeed)? {
            None => Ok(()),
            Some(_) => Err(not_in_order()),
        }
    }
}
