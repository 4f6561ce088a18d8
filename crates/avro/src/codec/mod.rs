//! JSON ↔ Avro binary, guided by a schema, with schema resolution on decode.
//!
//! # JSON forms
//!
//! Input ([`json_to_avro`], [`value_to_avro`]) accepts Avro's JSON encoding as Java's
//! `JsonDecoder` and Confluent's REST Proxy use it, plus friendlier forms:
//!
//! - **Unions**: tagged (`{"string": "x"}`, `{"com.acme.Address": {...}}`; the key is the type
//!   name, or the full name of a named type; a named type's simple name is accepted when no
//!   other branch shares it) or plain when the branch is unambiguous (`null` → the null branch;
//!   otherwise the one branch the value fits; an integer fitting several numeric branches takes
//!   `int`, then `long`, `double`, `float`; a fraction takes `double` before `float`).
//! - **bytes / fixed**: a string whose characters are the bytes (ISO-8859-1 code points
//!   U+0000..U+00FF), as Java's `JsonEncoder` writes them.
//! - **float / double**: numbers, or the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
//! - **Logical types**: the underlying Avro form always; in addition `date` as `"YYYY-MM-DD"`,
//!   `time-millis`/`time-micros` as `"HH:MM:SS[.fraction]"`, `timestamp-*` as RFC 3339 with an
//!   offset, `local-timestamp-*` as the same without offset, `uuid` validated as a canonical
//!   UUID, `decimal` as a JSON number or a numeric string with a decimal point (`"12.50"`,
//!   at most `scale` fraction digits; any other string is Avro's byte string), and `duration`
//!   as `{"months": m, "days": d, "millis": ms}`.
//! - **Records**: missing fields take their default; a missing field without default and an
//!   unknown field are errors.
//!
//! Output ([`avro_to_json`], [`avro_to_value`]) is Avro's JSON encoding (what Confluent's
//! deserializer and REST Proxy emit: logical types as their underlying type, bytes as
//! ISO-8859-1 strings), with unions tagged or plain per [`UnionStyle`]. Non-finite floats are
//! emitted as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
//!
//! # Text without value trees
//!
//! The text functions don't go through `serde_json::Value`: [`json_to_avro`] parses into a tree
//! that borrows its strings from the text, and [`avro_to_json`] writes JSON text as it decodes.
//! One encoder serves both input representations (any `node::JsonNode`) and one decoder both
//! outputs (any `sink::Sink`); the text paths give exactly what the value paths give
//! (`tests/codec_equivalence.rs`).
//!
//! # Limits
//!
//! Decoding treats its input as hostile: every read is bounds-checked, collection lengths are
//! checked against the bytes left (items that take no bytes share a fixed budget), and nesting
//! deeper than [`Limits::json_depth`] (at most [`MAX_DEPTH`]) is an error, both ways. The
//! functions without `_with` apply [`Limits::default`]; the reader-schema check of
//! [`check_readable_with`] spends at most [`Limits::work`] steps.

mod binary;
mod decode;
mod encode;
mod escape;
mod logical;
mod node;
mod sink;

use std::fmt;

use serde_json::Value;

use crate::compat;
use crate::json::{Json, Number};
use crate::limits::{Limit, Limits};
use crate::schema::{NodeId, NodeKind, Schema, SchemaNode};
use node::{Borrowed, JsonNode, View};
use sink::{Sink, TextSink, ValueSink};

/// The deepest nesting of values the codec follows (in either direction).
pub const MAX_DEPTH: usize = 128;

/// How unions are written in JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnionStyle {
    /// Avro's JSON encoding: a non-null union value is wrapped as `{"<branch>": value}`.
    #[default]
    Tagged,
    /// The bare value.
    Plain,
}

/// Why a datum could not be converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} at {path}")]
pub struct CodecError {
    /// Where in the datum, as a JSON path (`$`, `$.address.zip`, `$.items[2]`, `$.tags["a b"]`).
    pub path: String,
    /// The Avro type expected there (`long`, `record com.acme.Address`, `int (date)`, ...).
    pub expected: String,
    /// What went wrong.
    pub message: String,
    /// The budget the datum went over, when that is what went wrong.
    pub limit: Option<Limit>,
}

/// JSON text -> Avro binary for `schema`.
///
/// The text is parsed by serde_json into a tree that borrows its strings (no `Value`), with the
/// same errors and the same handling of repeated keys (the last value wins).
pub fn json_to_avro(schema: &Schema, json: &str) -> Result<Vec<u8>, CodecError> {
    json_to_avro_with(schema, json, &Limits::default())
}

/// [`json_to_avro`] within `limits` (the datum's nesting: [`Limits::json_depth`]).
pub fn json_to_avro_with(
    schema: &Schema,
    json: &str,
    limits: &Limits,
) -> Result<Vec<u8>, CodecError> {
    let capacity = json.len().saturating_add(16);
    if let NodeKind::Record(record) = &schema.node(schema.root()).kind {
        let mut out = Vec::with_capacity(capacity);
        if node::encode_record_in_schema_order(schema, record, json, limits.json_depth, &mut out) {
            return Ok(out);
        }
    }
    let value: Borrowed<'_> = serde_json::from_str(json).map_err(|e| CodecError {
        path: "$".to_owned(),
        expected: type_label(schema, schema.root()),
        message: format!("invalid JSON: {e}"),
        limit: None,
    })?;
    encode_node(schema, &value, capacity, limits)
}

/// serde_json value -> Avro binary (the messaging service holds serde_json values).
pub fn value_to_avro(schema: &Schema, value: &Value) -> Result<Vec<u8>, CodecError> {
    encode_node(schema, value, 0, &Limits::default())
}

/// Encode any JSON tree (see [`value_to_avro`]).
fn encode_node<N: JsonNode>(
    schema: &Schema,
    value: &N,
    capacity: usize,
    limits: &Limits,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(capacity);
    encode::Encoder::new(schema, limits.json_depth).encode(
        schema.root(),
        value,
        &Path::ROOT,
        0,
        false,
        &mut out,
    )?;
    Ok(out)
}

/// Avro binary written with `writer` -> JSON text; projected onto `reader` when given.
///
/// The text is written directly as the data is decoded (no value tree), and is byte for byte
/// what `avro_to_value(..).to_string()` gives.
pub fn avro_to_json(
    writer: &Schema,
    reader: Option<&Schema>,
    avro: &[u8],
    style: UnionStyle,
) -> Result<String, CodecError> {
    if let Some(reader) = reader {
        check_readable(writer, reader)?;
    }
    let mut text = Vec::with_capacity(avro.len().saturating_mul(2).saturating_add(16));
    write_json(
        &mut text,
        writer,
        reader.unwrap_or(writer),
        avro,
        style,
        &Limits::default(),
    )?;
    String::from_utf8(text).map_err(|e| not_utf8(writer, e.utf8_error()))
}

/// [`avro_to_json`], appending the text to `out` (`out` is left as it was on an error). A
/// caller decoding many datums reuses one buffer: no allocation per datum.
///
/// The text is UTF-8 by construction, without a pass to check it: Avro strings are checked as
/// they are read, the writer takes text only as `&str`, and everything else it writes (numbers,
/// punctuation, escapes, Latin-1 bytes re-encoded) is ASCII or encoded by Rust.
pub fn avro_to_json_into(
    writer: &Schema,
    reader: Option<&Schema>,
    avro: &[u8],
    style: UnionStyle,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    if let Some(reader) = reader {
        check_readable(writer, reader)?;
    }
    avro_to_json_into_checked(writer, reader.unwrap_or(writer), avro, style, out)
}

/// Writes the JSON text of a datum at the end of `out` (not checked to be UTF-8), with a pair
/// of schemas already found readable.
fn write_json(
    out: &mut Vec<u8>,
    writer: &Schema,
    reader: &Schema,
    avro: &[u8],
    style: UnionStyle,
    limits: &Limits,
) -> Result<(), CodecError> {
    let mut text = TextSink::appending_to(std::mem::take(out));
    let decoded = decode_checked(&mut text, writer, reader, avro, style, limits);
    *out = text.into_bytes();
    decoded
}

fn not_utf8(writer: &Schema, error: std::str::Utf8Error) -> CodecError {
    CodecError {
        path: "$".to_owned(),
        expected: type_label(writer, writer.root()),
        message: format!("internal error: the JSON written is not UTF-8: {error}"),
        limit: None,
    }
}

/// Avro binary written with `writer` -> serde_json value; projected onto `reader` when given.
///
/// With a reader schema, the pair is first checked with [`compat::can_read`]; an incompatible
/// pair is refused before any data is read.
pub fn avro_to_value(
    writer: &Schema,
    reader: Option<&Schema>,
    avro: &[u8],
    style: UnionStyle,
) -> Result<Value, CodecError> {
    decode_into(&mut ValueSink, writer, reader, avro, style)
}

/// Whether data written with `writer` can be read as `reader`: the check [`avro_to_json`] makes
/// before it decodes anything when given a reader schema. A caller decoding many datums of one
/// pair checks once, then decodes with [`avro_to_json_into_checked`].
pub fn check_readable(writer: &Schema, reader: &Schema) -> Result<(), CodecError> {
    check_readable_with(writer, reader, &Limits::default())
}

/// [`check_readable`] within `limits`: at most [`Limits::work`] steps, and the first 10
/// reasons listed (each cut at 200 bytes), then how many more there are.
pub fn check_readable_with(
    writer: &Schema,
    reader: &Schema,
    limits: &Limits,
) -> Result<(), CodecError> {
    let refused = |message: String, limit: Option<Limit>| CodecError {
        path: "$".to_owned(),
        expected: type_label(reader, reader.root()),
        message,
        limit,
    };
    let report = compat::Checker::new(limits)
        .can_read(reader, writer)
        .map_err(|e| {
            refused(
                format!("the reader schema can't be checked: {e}"),
                Some(e.limit),
            )
        })?;
    if report.is_compatible() {
        return Ok(());
    }
    const LISTED: usize = 10;
    let mut list: Vec<String> = report
        .incompatibilities
        .iter()
        .take(LISTED)
        .map(|i| compat::shorten(&i.to_string(), 200))
        .collect();
    let listed = u64::try_from(list.len()).unwrap_or(u64::MAX);
    if report.total > listed {
        list.push(format!("{} more", report.total - listed));
    }
    Err(refused(
        format!(
            "the reader schema can't read data written with the writer schema: {}",
            list.join("; ")
        ),
        None,
    ))
}

/// [`avro_to_json_into`] projected onto a `reader` schema that [`check_readable`] accepted for
/// this writer (not checked again: the check walks both schemas and costs several times a
/// datum's decoding). With a pair that was not checked, data the reader can't take fails at
/// its path rather than up front.
pub fn avro_to_json_into_checked(
    writer: &Schema,
    reader: &Schema,
    avro: &[u8],
    style: UnionStyle,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    avro_to_json_into_checked_with(writer, reader, avro, style, out, &Limits::default())
}

/// [`avro_to_json_into_checked`] within `limits` (the datum's nesting:
/// [`Limits::json_depth`]).
pub fn avro_to_json_into_checked_with(
    writer: &Schema,
    reader: &Schema,
    avro: &[u8],
    style: UnionStyle,
    out: &mut Vec<u8>,
    limits: &Limits,
) -> Result<(), CodecError> {
    let start = out.len();
    let written = write_json(out, writer, reader, avro, style, limits);
    if written.is_err() {
        out.truncate(start);
    }
    debug_assert!(std::str::from_utf8(&out[start..]).is_ok());
    written
}

/// Decode one datum into `sink` (see [`avro_to_value`]).
fn decode_into<S: Sink>(
    sink: &mut S,
    writer: &Schema,
    reader: Option<&Schema>,
    avro: &[u8],
    style: UnionStyle,
) -> Result<S::Item, CodecError> {
    if let Some(r) = reader {
        check_readable(writer, r)?;
    }
    decode_checked(
        sink,
        writer,
        reader.unwrap_or(writer),
        avro,
        style,
        &Limits::default(),
    )
}

/// Decodes a datum with a pair of schemas already found readable.
fn decode_checked<S: Sink>(
    sink: &mut S,
    writer: &Schema,
    r: &Schema,
    avro: &[u8],
    style: UnionStyle,
    limits: &Limits,
) -> Result<S::Item, CodecError> {
    let mut rd = binary::Reader::new(avro);
    let mut dec = decode::Decoder::new(writer, r, style, limits.json_depth);
    let v = dec.read(sink, &mut rd, writer.root(), r.root(), &Path::ROOT, 0)?;
    if rd.remaining() > 0 {
        return Err(CodecError {
            path: "$".to_owned(),
            expected: type_label(writer, writer.root()),
            message: format!(
                "{} unexpected bytes after the datum (ends at offset {})",
                rd.remaining(),
                rd.pos()
            ),
            limit: None,
        });
    }
    Ok(v)
}

/// One step of a JSON path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seg<'a> {
    Root,
    Field(&'a str),
    Index(usize),
    Key(&'a str),
}

/// A JSON path as a linked list on the stack; rendered only for errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

impl<'a> Path<'a> {
    pub(crate) const ROOT: Path<'static> = Path {
        parent: None,
        seg: Seg::Root,
    };

    pub(crate) fn child(&'a self, seg: Seg<'a>) -> Path<'a> {
        Path {
            parent: Some(self),
            seg,
        }
    }

    pub(crate) fn render(&self) -> String {
        let mut segs = Vec::new();
        let mut cur = Some(self);
        while let Some(p) = cur {
            segs.push(p.seg);
            cur = p.parent;
        }
        let mut out = String::from("$");
        for s in segs.iter().rev() {
            match s {
                Seg::Root => {}
                Seg::Field(n) | Seg::Key(n) if is_identifier(n) => {
                    out.push('.');
                    out.push_str(n);
                }
                Seg::Field(n) | Seg::Key(n) => {
                    out.push('[');
                    out.push_str(&Value::String((*n).to_owned()).to_string());
                    out.push(']');
                }
                Seg::Index(i) => {
                    out.push_str(&format!("[{i}]"));
                }
            }
        }
        out
    }

    pub(crate) fn err(
        &self,
        expected: impl Into<String>,
        message: impl Into<String>,
    ) -> CodecError {
        CodecError {
            path: self.render(),
            expected: expected.into(),
            message: message.into(),
            limit: None,
        }
    }
}

fn is_identifier(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The logical type name of a node, including those Java Avro 1.11 doesn't model
/// (`timestamp-nanos`, `local-timestamp-nanos` on `long`, `duration` on `fixed(12)`).
pub(crate) fn logical_name(node: &SchemaNode) -> Option<&str> {
    if let Some(lt) = node.logical_type {
        return Some(lt.name());
    }
    let name = node.props.get("logicalType")?.as_str()?;
    match (name, &node.kind) {
        ("timestamp-nanos" | "local-timestamp-nanos", NodeKind::Long) => Some(name),
        ("duration", NodeKind::Fixed(f)) if f.size == 12 => Some(name),
        _ => None,
    }
}

/// A human description of the type at `id`, for error messages.
pub(crate) fn type_label(schema: &Schema, id: NodeId) -> String {
    let node = schema.node(id);
    match &node.kind {
        NodeKind::Record(r) => format!("record {}", r.name.full_name()),
        NodeKind::Enum(e) => format!("enum {}", e.name.full_name()),
        NodeKind::Fixed(f) => match logical_name(node) {
            Some(l) => format!("fixed {} ({l})", f.name.full_name()),
            None => format!("fixed {} (size {})", f.name.full_name(), f.size),
        },
        NodeKind::Union { branches } => {
            // The first branches: an error message stays short whatever the union.
            const SHOWN: usize = 10;
            let mut names: Vec<String> = branches
                .iter()
                .take(SHOWN)
                .map(|b| branch_name(schema, *b))
                .collect();
            if branches.len() > SHOWN {
                names.push(format!("... {} more", branches.len() - SHOWN));
            }
            format!("union [{}]", names.join(", "))
        }
        NodeKind::Array { items } => format!("array of {}", type_label(schema, *items)),
        NodeKind::Map { values } => format!("map of {}", type_label(schema, *values)),
        _ => match logical_name(node) {
            Some(l) => format!("{} ({l})", node.type_().name()),
            None => node.type_().name().to_owned(),
        },
    }
}

/// The union branch name of a type: the full name of a named type, the type name otherwise.
pub(crate) fn branch_name(schema: &Schema, id: NodeId) -> String {
    schema.node(id).java_full_name()
}

/// A short description of a JSON value, for error messages.
pub(crate) fn describe<N: JsonNode>(v: &N) -> String {
    match v.view() {
        View::Null => "null".to_owned(),
        View::Bool(b) => format!("boolean {b}"),
        View::Number(n) => format!("number {n}"),
        View::String(s) => {
            let short: String = s.chars().take(40).collect();
            let ell = if short.len() < s.len() { "..." } else { "" };
            format!("string {}{ell}", Value::String(short))
        }
        View::Array(a) => format!("array of {} items", a.len()),
        View::Object(_) => "object".to_owned(),
    }
}

/// A schema default (the crate's Jackson-style JSON) as a serde_json value.
pub(crate) fn json_to_value(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n {
            Number::Int(i) => Value::from(*i),
            Number::BigInt(s) => s
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| f64_value(n.as_f64())),
            Number::Double(d) => f64_value(*d),
            Number::Float(f) => f32_value(*f),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(json_to_value).collect()),
        Json::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.to_owned(), json_to_value(v)))
                .collect(),
        ),
    }
}

/// Java's names of the non-finite doubles, which Avro's JSON encoding uses.
pub(crate) fn non_finite_name(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// A double as JSON (non-finite values as Java's strings).
pub(crate) fn f64_value(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or_else(
        || Value::String(non_finite_name(v).to_owned()),
        Value::Number,
    )
}

/// The double whose shortest representation is the float's own (`0.1`, not
/// `0.10000000149011612`), so a float is printed as written.
pub(crate) fn f32_as_f64(v: f32) -> f64 {
    if !v.is_finite() {
        return f64::from(v);
    }
    // Written into a stack buffer (no allocation): the longest shortest form of an f32, e.g.
    // `-0.000000000000000000000000000000000000000000001` (a subnormal), is under 64 bytes.
    use std::io::Write as _;
    let mut text = [0u8; 64];
    let mut unwritten = &mut text[..];
    if write!(unwritten, "{v}").is_err() {
        return f64::from(v);
    }
    let written = 64 - unwritten.len();
    std::str::from_utf8(&text[..written])
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .unwrap_or(f64::from(v))
}

/// A float as JSON, printed with the float's own shortest representation.
pub(crate) fn f32_value(v: f32) -> Value {
    f64_value(f32_as_f64(v))
}

impl fmt::Display for UnionStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnionStyle::Tagged => "tagged",
            UnionStyle::Plain => "plain",
        })
    }
}
