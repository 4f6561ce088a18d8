//! What the encoder reads: any JSON tree behind [`JsonNode`] — a `serde_json::Value` (callers
//! that hold values) or a [`Borrowed`] tree parsed from text without copying unescaped strings.
//!
//! [`Borrowed`] is parsed by serde_json's own parser, so it accepts and rejects exactly what
//! parsing into a `Value` does (same errors, same recursion limit), and it gives objects the
//! `Value` semantics for a repeated key: the first key's position, the last value.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

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
pub(crate) struct BorrowedObject<'a>(Vec<(Cow<'a, str>, Borrowed<'a>)>);

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
        self.0.len()
    }
    fn get(&self, key: &str) -> Option<&Borrowed<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    fn entries<'o>(&'o self) -> impl Iterator<Item = (&'o str, &'o Borrowed<'a>)>
    where
        Borrowed<'a>: 'o,
    {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }
}

/// Objects up to this size look for a repeated key by scanning; larger ones keep an index.
const SCAN_LIMIT: usize = 16;

impl<'a> BorrowedObject<'a> {
    /// Add an entry the way inserting into a `serde_json` map does: a repeated key keeps its
    /// first position and takes the new value.
    fn insert(
        &mut self,
        index: &mut HashMap<Cow<'a, str>, usize>,
        key: Cow<'a, str>,
        value: Borrowed<'a>,
    ) {
        let entries = &mut self.0;
        let at = if entries.len() < SCAN_LIMIT {
            entries.iter().position(|(k, _)| *k == key)
        } else {
            if index.is_empty() {
                index.extend(entries.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)));
            }
            match index.get(&key) {
                Some(&i) => Some(i),
                None => {
                    index.insert(key.clone(), entries.len());
                    None
                }
            }
        };
        match at.and_then(|i| entries.get_mut(i)) {
            Some(slot) => slot.1 = value,
            None => entries.push((key, value)),
        }
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
        let mut object = BorrowedObject::default();
        let mut index = HashMap::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value()?;
            object.insert(&mut index, key, value);
        }
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
