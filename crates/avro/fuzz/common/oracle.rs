//! apache-avro (the Rust ecosystem's Avro crate, 0.22) as a differential oracle for
//! tributary-avro: schemas and data generated from bytes (`arbitrary::Unstructured`), so the
//! same generator serves a seeded test (crates/avro/tests/avro_oracle.rs) and a fuzz target.
//!
//! For a generated schema: both parse it; both give the same Parsing Canonical Form and Rabin
//! fingerprint, up to the documented difference on logical types (docs/avro-oracle.md). For a
//! generated datum: both encode it to the same bytes, each decodes both encodings to the datum.
//! For a generated writer and a reader evolved from it: both give the same verdict (only
//! apache-avro's `Ok(Full)` counts as compatible), except for the evolutions whose difference is
//! documented; and where both say compatible, both resolve the writer's data to the same reader
//! value.
//!
//! Every check returns `Err(description)` on a disagreement, so a caller can print the case.

use std::collections::HashMap;
use std::fmt::Write as _;

use apache_avro::Schema as ASchema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::types::Value as AValue;
use apache_avro::writer::datum::GenericDatumWriter;
use arbitrary::{Result as AResult, Unstructured};
use tributary_avro::codec::{self, UnionStyle};
use tributary_avro::{Schema, compat};

// ----- schemas -----------------------------------------------------------------------------

/// A generated schema.
#[derive(Debug, Clone, PartialEq)]
pub enum S {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    /// `int` with `logicalType: date`.
    Date,
    /// `long` with `logicalType: timestamp-millis`.
    TimestampMillis,
    /// `bytes` with `logicalType: decimal`.
    Decimal {
        precision: u32,
        scale: u32,
    },
    Array(Box<S>),
    Map(Box<S>),
    /// Branches of different kinds (and names), none a union.
    Union(Vec<S>),
    Record {
        name: String,
        namespace: Option<String>,
        aliases: Vec<String>,
        fields: Vec<F>,
    },
    Enum {
        name: String,
        symbols: Vec<String>,
        default: Option<String>,
    },
    Fixed {
        name: String,
        size: usize,
    },
}

/// A record field.
#[derive(Debug, Clone, PartialEq)]
pub struct F {
    pub name: String,
    pub schema: S,
    /// The JSON text of its default, when it has one.
    pub default: Option<String>,
    pub aliases: Vec<String>,
}

impl S {
    /// The union branch key of this type: its full name for named types, its type otherwise.
    fn branch_key(&self) -> String {
        match self {
            S::Record {
                name, namespace, ..
            } => namespace
                .as_ref()
                .map_or_else(|| name.clone(), |ns| format!("{ns}.{name}")),
            S::Enum { name, .. } | S::Fixed { name, .. } => name.clone(),
            other => other.type_name().to_owned(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            S::Null => "null",
            S::Boolean => "boolean",
            S::Int | S::Date => "int",
            S::Long | S::TimestampMillis => "long",
            S::Float => "float",
            S::Double => "double",
            S::Bytes | S::Decimal { .. } => "bytes",
            S::String => "string",
            S::Array(_) => "array",
            S::Map(_) => "map",
            S::Union(_) => "union",
            S::Record { .. } => "record",
            S::Enum { .. } => "enum",
            S::Fixed { .. } => "fixed",
        }
    }

    /// Whether this type or one inside it has a logical type.
    pub fn has_logical(&self) -> bool {
        match self {
            S::Date | S::TimestampMillis | S::Decimal { .. } => true,
            S::Array(i) | S::Map(i) => i.has_logical(),
            S::Union(b) => b.iter().any(S::has_logical),
            S::Record { fields, .. } => fields.iter().any(|f| f.schema.has_logical()),
            _ => false,
        }
    }

    /// The schema's JSON text.
    pub fn json(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            S::Date => out.push_str(r#"{"type":"int","logicalType":"date"}"#),
            S::TimestampMillis => {
                out.push_str(r#"{"type":"long","logicalType":"timestamp-millis"}"#);
            }
            S::Decimal { precision, scale } => {
                let _ = write!(
                    out,
                    r#"{{"type":"bytes","logicalType":"decimal","precision":{precision},"scale":{scale}}}"#
                );
            }
            S::Array(items) => {
                out.push_str(r#"{"type":"array","items":"#);
                items.write(out);
                out.push('}');
            }
            S::Map(values) => {
                out.push_str(r#"{"type":"map","values":"#);
                values.write(out);
                out.push('}');
            }
            S::Union(branches) => {
                out.push('[');
                for (i, b) in branches.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    b.write(out);
                }
                out.push(']');
            }
            S::Record {
                name,
                namespace,
                aliases,
                fields,
            } => {
                let _ = write!(out, r#"{{"type":"record","name":"{name}""#);
                if let Some(ns) = namespace {
                    let _ = write!(out, r#","namespace":"{ns}""#);
                }
                if !aliases.is_empty() {
                    let _ = write!(out, r#","aliases":{}"#, strings(aliases));
                }
                out.push_str(r#","fields":["#);
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, r#"{{"name":"{}","type":"#, f.name);
                    f.schema.write(out);
                    if let Some(d) = &f.default {
                        let _ = write!(out, r#","default":{d}"#);
                    }
                    if !f.aliases.is_empty() {
                        let _ = write!(out, r#","aliases":{}"#, strings(&f.aliases));
                    }
                    out.push('}');
                }
                out.push_str("]}");
            }
            S::Enum {
                name,
                symbols,
                default,
            } => {
                let _ = write!(
                    out,
                    r#"{{"type":"enum","name":"{name}","symbols":{}"#,
                    strings(symbols)
                );
                if let Some(d) = default {
                    let _ = write!(out, r#","default":"{d}""#);
                }
                out.push('}');
            }
            S::Fixed { name, size } => {
                let _ = write!(out, r#"{{"type":"fixed","name":"{name}","size":{size}}}"#);
            }
            other => {
                let _ = write!(out, "\"{}\"", other.type_name());
            }
        }
    }
}

fn strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(","))
}

/// Generates schemas with names unique across the whole schema.
pub struct SchemaGen {
    next_name: usize,
}

impl Default for SchemaGen {
    fn default() -> Self {
        Self::new()
    }
}

impl SchemaGen {
    pub fn new() -> Self {
        SchemaGen { next_name: 0 }
    }

    fn name(&mut self, prefix: &str) -> String {
        self.next_name += 1;
        format!("{prefix}{}", self.next_name)
    }

    /// A schema whose root is a record (as most topics' values are).
    pub fn record(&mut self, u: &mut Unstructured<'_>, depth: usize) -> AResult<S> {
        let count = u.int_in_range(0..=5)?;
        let mut fields = Vec::with_capacity(count);
        for i in 0..count {
            let schema = self.any(u, depth + 1)?;
            let default = if u.ratio(1, 4)? {
                simple_default(&schema)
            } else {
                None
            };
            fields.push(F {
                name: format!("f{i}"),
                schema,
                default,
                aliases: Vec::new(),
            });
        }
        let namespace = if u.ratio(1, 3)? {
            Some(format!("ns{}", u.int_in_range(0..=2)?))
        } else {
            None
        };
        Ok(S::Record {
            name: self.name("R"),
            namespace,
            aliases: Vec::new(),
            fields,
        })
    }

    /// Any schema, nesting at most a few levels.
    pub fn any(&mut self, u: &mut Unstructured<'_>, depth: usize) -> AResult<S> {
        let leaf = depth >= 4;
        let kinds = if leaf { 13 } else { 18 };
        Ok(match u.int_in_range(0..=kinds - 1)? {
            0 => S::Null,
            1 => S::Boolean,
            2 => S::Int,
            3 => S::Long,
            4 => S::Float,
            5 => S::Double,
            6 => S::Bytes,
            7 => S::String,
            8 => S::Date,
            9 => S::TimestampMillis,
            10 => {
                let precision = u.int_in_range(1..=18)?;
                S::Decimal {
                    precision,
                    scale: u.int_in_range(0..=precision.min(6))?,
                }
            }
            11 => {
                let count = u.int_in_range(1..=5)?;
                let symbols: Vec<String> = (0..count).map(|i| format!("S{i}")).collect();
                let default = if u.ratio(1, 3)? {
                    symbols.first().cloned()
                } else {
                    None
                };
                S::Enum {
                    name: self.name("E"),
                    symbols,
                    default,
                }
            }
            12 => S::Fixed {
                name: self.name("X"),
                size: u.int_in_range(0..=8)?,
            },
            13 => S::Array(Box::new(self.any(u, depth + 1)?)),
            14 => S::Map(Box::new(self.any(u, depth + 1)?)),
            15 | 16 => {
                let count = u.int_in_range(1..=4)?;
                let mut branches: Vec<S> = Vec::new();
                for _ in 0..count {
                    let b = self.any(u, depth + 1)?;
                    let key = b.branch_key();
                    if !matches!(b, S::Union(_)) && !branches.iter().any(|x| x.branch_key() == key)
                    {
                        branches.push(b);
                    }
                }
                if branches.is_empty() {
                    branches.push(S::Null);
                }
                S::Union(branches)
            }
            _ => self.record(u, depth + 1)?,
        })
    }
}

/// A default for a field of a simple type (none for the others).
fn simple_default(s: &S) -> Option<String> {
    Some(
        match s {
            S::Null => "null",
            S::Boolean => "true",
            S::Int | S::Long | S::Date | S::TimestampMillis => "7",
            S::Float | S::Double => "1.5",
            S::String => "\"d\"",
            S::Bytes => "\"\\u00ff\"",
            S::Union(b) if b.first() == Some(&S::Null) => "null",
            _ => return None,
        }
        .to_owned(),
    )
}

// ----- data --------------------------------------------------------------------------------

/// A generated datum.
#[derive(Debug, Clone, PartialEq)]
pub enum D {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
    Bytes(Vec<u8>),
    Str(String),
    Date(i32),
    Ts(i64),
    /// The unscaled value of a decimal, and its scale.
    Decimal(i64, u32),
    Array(Vec<D>),
    Map(Vec<(String, D)>),
    Record(Vec<(String, D)>),
    Enum(u32, String),
    Fixed(Vec<u8>),
    /// Branch index, branch key, value.
    Union(u32, String, Box<D>),
}

/// A datum of `s`, a schema at the root (no enclosing namespace).
pub fn datum(u: &mut Unstructured<'_>, s: &S) -> AResult<D> {
    datum_in(u, s, None)
}

/// The full name a union branch is tagged with: named types take the enclosing namespace
/// unless they have their own.
fn full_key(s: &S, ns: Option<&str>) -> String {
    match (s, ns) {
        (
            S::Record {
                namespace: None,
                name,
                ..
            },
            Some(ns),
        )
        | (S::Enum { name, .. }, Some(ns))
        | (S::Fixed { name, .. }, Some(ns)) => format!("{ns}.{name}"),
        _ => s.branch_key(),
    }
}

/// A datum of `s` inside namespace `ns`.
fn datum_in(u: &mut Unstructured<'_>, s: &S, ns: Option<&str>) -> AResult<D> {
    Ok(match s {
        S::Null => D::Null,
        S::Boolean => D::Bool(u.arbitrary()?),
        S::Int => D::Int(u.arbitrary()?),
        S::Long => D::Long(u.arbitrary()?),
        // Values whose shortest text reads back exactly.
        S::Float => D::Float(f32::from(u.arbitrary::<i16>()?) / 8.0),
        S::Double => D::Double(f64::from(u.arbitrary::<i32>()?) / 1024.0),
        S::Bytes => D::Bytes(u.arbitrary::<Vec<u8>>()?.into_iter().take(12).collect()),
        S::String => D::Str(
            u.arbitrary::<String>()?
                .chars()
                .filter(|c| !c.is_control())
                .take(12)
                .collect(),
        ),
        S::Date => D::Date(u.int_in_range(-100_000..=100_000)?),
        S::TimestampMillis => D::Ts(u.arbitrary()?),
        S::Decimal { precision, scale } => {
            let max = 10i64.pow((*precision).min(18)) - 1;
            D::Decimal(u.int_in_range(-max..=max)?, *scale)
        }
        S::Array(items) => {
            let n = u.int_in_range(0..=3)?;
            D::Array(
                (0..n)
                    .map(|_| datum_in(u, items, ns))
                    .collect::<AResult<_>>()?,
            )
        }
        S::Map(values) => {
            // At most one entry: apache-avro holds a map in a HashMap, so the order it writes
            // entries in is arbitrary (the specification leaves it open).
            let n = u.int_in_range(0..=1)?;
            D::Map(
                (0..n)
                    .map(|i| Ok((format!("k{i}"), datum_in(u, values, ns)?)))
                    .collect::<AResult<_>>()?,
            )
        }
        S::Union(branches) => {
            let i = u.choose_index(branches.len())?;
            let b = &branches[i];
            D::Union(
                u32::try_from(i).unwrap_or(0),
                full_key(b, ns),
                Box::new(datum_in(u, b, ns)?),
            )
        }
        S::Record {
            fields, namespace, ..
        } => {
            let inner = namespace.as_deref().or(ns);
            D::Record(
                fields
                    .iter()
                    .map(|f| Ok((f.name.clone(), datum_in(u, &f.schema, inner)?)))
                    .collect::<AResult<_>>()?,
            )
        }
        S::Enum { symbols, .. } => {
            let i = u.choose_index(symbols.len())?;
            D::Enum(u32::try_from(i).unwrap_or(0), symbols[i].clone())
        }
        S::Fixed { size, .. } => {
            let mut b = vec![0u8; *size];
            u.fill_buffer(&mut b)?;
            D::Fixed(b)
        }
    })
}

/// Minimal big-endian two's complement (Java's `BigInteger.toByteArray`).
fn twos(v: i64) -> Vec<u8> {
    let b = v.to_be_bytes();
    let mut start = 0;
    while start < b.len() - 1 {
        let (cur, next) = (b[start], b[start + 1]);
        if (cur == 0 && next & 0x80 == 0) || (cur == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    b[start..].to_vec()
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|b| char::from(*b)).collect()
}

/// The datum in Avro's JSON encoding (tagged unions), as tributary-avro takes and gives it;
/// `input`: as written by a producer (a decimal as its decimal text), else as decoded (a
/// decimal as its bytes).
pub fn to_json(d: &D, input: bool) -> serde_json::Value {
    use serde_json::Value as J;
    match d {
        D::Null => J::Null,
        D::Bool(b) => J::Bool(*b),
        D::Int(v) | D::Date(v) => J::from(*v),
        D::Long(v) | D::Ts(v) => J::from(*v),
        D::Float(v) => J::from(
            v.to_string()
                .parse::<f64>()
                .unwrap_or_else(|_| f64::from(*v)),
        ),
        D::Double(v) => J::from(*v),
        D::Bytes(b) | D::Fixed(b) => J::String(latin1(b)),
        D::Str(s) => J::String(s.clone()),
        D::Decimal(v, scale) => {
            if !input {
                return J::String(latin1(&twos(*v)));
            }
            if *scale == 0 {
                return J::from(*v);
            }
            let digits = v.unsigned_abs().to_string();
            let scale = *scale as usize;
            let padded = format!("{digits:0>width$}", width = scale + 1);
            let (int, frac) = padded.split_at(padded.len() - scale);
            J::String(format!("{}{int}.{frac}", if *v < 0 { "-" } else { "" }))
        }
        D::Array(items) => J::Array(items.iter().map(|i| to_json(i, input)).collect()),
        D::Map(entries) | D::Record(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v, input)))
                .collect(),
        ),
        D::Enum(_, s) => J::String(s.clone()),
        D::Union(_, key, v) => match **v {
            D::Null => J::Null,
            _ => {
                let mut o = serde_json::Map::new();
                o.insert(key.clone(), to_json(v, input));
                J::Object(o)
            }
        },
    }
}

/// The datum as an apache-avro value of schema `s`.
pub fn to_apache(d: &D) -> AValue {
    match d {
        D::Null => AValue::Null,
        D::Bool(b) => AValue::Boolean(*b),
        D::Int(v) => AValue::Int(*v),
        D::Long(v) => AValue::Long(*v),
        D::Float(v) => AValue::Float(*v),
        D::Double(v) => AValue::Double(*v),
        D::Bytes(b) => AValue::Bytes(b.clone()),
        D::Str(s) => AValue::String(s.clone()),
        D::Date(v) => AValue::Date(*v),
        D::Ts(v) => AValue::TimestampMillis(*v),
        D::Decimal(v, _) => AValue::Decimal(apache_avro::Decimal::from(twos(*v))),
        D::Array(items) => AValue::Array(items.iter().map(to_apache).collect()),
        D::Map(entries) => AValue::Map(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), to_apache(v)))
                .collect::<HashMap<_, _>>(),
        ),
        D::Record(entries) => AValue::Record(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), to_apache(v)))
                .collect(),
        ),
        D::Enum(i, s) => AValue::Enum(*i, s.clone()),
        D::Fixed(b) => AValue::Fixed(b.len(), b.clone()),
        D::Union(i, _, v) => AValue::Union(*i, Box::new(to_apache(v))),
    }
}

// ----- the checks --------------------------------------------------------------------------

/// Parses `text` with both.
pub fn parse_both(text: &str) -> Result<(Schema, ASchema), String> {
    let ours =
        Schema::parse(text, &[]).map_err(|e| format!("tributary-avro refused {text}: {e}"))?;
    let theirs =
        ASchema::parse_str(text).map_err(|e| format!("apache-avro refused {text}: {e}"))?;
    Ok((ours, theirs))
}

/// apache-avro's Parsing Canonical Form with its documented difference from Java's taken
/// out: a logical type written as `{"type":"<underlying>"}` (and a decimal's precision and
/// scale kept) where Java writes the underlying type alone.
fn apache_pcf_as_java(pcf: &str) -> String {
    let mut s = pcf.to_owned();
    // Decimals first (their object also holds precision and scale).
    while let Some(start) = s.find(r#"{"type":"bytes","precision":"#) {
        let Some(len) = s[start..].find('}') else {
            break;
        };
        s.replace_range(start..start + len + 1, r#""bytes""#);
    }
    for t in ["int", "long", "bytes", "string"] {
        s = s.replace(&format!(r#"{{"type":"{t}"}}"#), &format!(r#""{t}""#));
    }
    s
}

/// Parsing Canonical Form and Rabin fingerprint: equal without logical types; equal up to the
/// documented difference with them.
pub fn check_canonical_form(s: &S) -> Result<(), String> {
    let text = s.json();
    let (ours, theirs) = parse_both(&text)?;
    let our_pcf = ours.parsing_canonical_form();
    let their_pcf = theirs.canonical_form();
    let their_fp = theirs
        .fingerprint::<apache_avro::rabin::Rabin>()
        .bytes
        .try_into()
        .map(u64::from_le_bytes)
        .map_err(|_| "a Rabin fingerprint of other than 8 bytes".to_owned())?;
    if s.has_logical() {
        if apache_pcf_as_java(&their_pcf) != our_pcf {
            return Err(format!(
                "PCF of {text}: ours {our_pcf}, apache-avro {their_pcf} (beyond the logical types)"
            ));
        }
        return Ok(());
    }
    if our_pcf != their_pcf {
        return Err(format!(
            "PCF of {text}: ours {our_pcf}, apache-avro {their_pcf}"
        ));
    }
    if ours.parsing_fingerprint64() != their_fp {
        return Err(format!(
            "Rabin fingerprint of {text}: ours {:016x}, apache-avro {their_fp:016x}",
            ours.parsing_fingerprint64()
        ));
    }
    Ok(())
}

/// Both encode `d` to the same bytes, and each decodes both encodings to `d`.
pub fn check_datum(s: &S, d: &D) -> Result<(), String> {
    let text = s.json();
    let (ours, theirs) = parse_both(&text)?;
    let json = to_json(d, true).to_string();
    let our_bytes = codec::json_to_avro(&ours, &json)
        .map_err(|e| format!("tributary-avro can't encode {json} as {text}: {e}"))?;
    let writer = GenericDatumWriter::builder(&theirs)
        .build()
        .map_err(|e| format!("apache-avro writer for {text}: {e}"))?;
    let their_bytes = writer
        .write_value_to_vec(to_apache(d))
        .map_err(|e| format!("apache-avro can't encode {d:?} as {text}: {e}"))?;
    if our_bytes != their_bytes {
        return Err(format!(
            "{json} as {text}: ours {our_bytes:02x?}, apache-avro {their_bytes:02x?}"
        ));
    }
    let decoded = codec::avro_to_value(&ours, None, &their_bytes, UnionStyle::Tagged)
        .map_err(|e| format!("tributary-avro can't decode {their_bytes:02x?} as {text}: {e}"))?;
    let expected = to_json(d, false);
    if decoded != expected {
        return Err(format!(
            "tributary-avro decoded {their_bytes:02x?} as {text} to {decoded}, not {expected}"
        ));
    }
    let reader = GenericDatumReader::builder(&theirs)
        .build()
        .map_err(|e| format!("apache-avro reader for {text}: {e}"))?;
    let value = reader
        .read_value(&mut our_bytes.as_slice())
        .map_err(|e| format!("apache-avro can't decode {our_bytes:02x?} as {text}: {e}"))?;
    if value != to_apache(d) {
        return Err(format!(
            "apache-avro decoded {our_bytes:02x?} as {text} to {value:?}, not {:?}",
            to_apache(d)
        ));
    }
    Ok(())
}

// ----- evolution ---------------------------------------------------------------------------

/// A change from a writer schema to a reader schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    AddFieldWithDefault,
    AddFieldWithoutDefault,
    RemoveField,
    /// int -> long, float, double; long -> float, double; float -> double; string <-> bytes.
    Promote,
    /// The other way (long -> int, ...).
    Demote,
    /// A field's type to an unrelated one.
    Retype,
    /// A field's type wrapped in a union with null.
    WrapInUnion,
    /// A reader union without one of the writer's branches.
    DropBranch,
    /// A reader union with one branch more.
    AddBranch,
    AddSymbol,
    /// A reader enum without a writer symbol, no enum default.
    DropSymbol,
    /// The same with an enum default on the reader.
    DropSymbolWithDefault,
    ResizeFixed,
    /// A reader record renamed.
    Rename,
    /// A reader record renamed, with the writer's full name as an alias.
    RenameWithAlias,
    /// A reader record moved to another namespace.
    Renamespace,
    /// A reader field renamed, with the writer's name as an alias.
    RenameFieldWithAlias,
    /// A decimal's scale changed.
    Rescale,
}

impl Change {
    pub const ALL: [Change; 18] = [
        Change::AddFieldWithDefault,
        Change::AddFieldWithoutDefault,
        Change::RemoveField,
        Change::Promote,
        Change::Demote,
        Change::Retype,
        Change::WrapInUnion,
        Change::DropBranch,
        Change::AddBranch,
        Change::AddSymbol,
        Change::DropSymbol,
        Change::DropSymbolWithDefault,
        Change::ResizeFixed,
        Change::Rename,
        Change::RenameWithAlias,
        Change::Renamespace,
        Change::RenameFieldWithAlias,
        Change::Rescale,
    ];

    /// Where apache-avro's datum resolution is documented to differ from Java's (and
    /// tributary-avro's) although both checkers agree: it ignores reader field aliases.
    pub fn resolution_differs(self) -> bool {
        matches!(self, Change::RenameFieldWithAlias)
    }

    /// Where Java Avro (and tributary-avro) and apache-avro are documented to differ
    /// (docs/avro-oracle.md): a renamed named type with the old name as an alias (Java reads
    /// it, apache-avro ignores aliases of named types), and a decimal's scale (Java's checker
    /// ignores logical types, apache-avro refuses the change).
    pub fn documented_difference(self) -> bool {
        matches!(self, Change::RenameWithAlias | Change::Rescale)
    }
}

/// The reader: `writer` with `change` applied to its first place where it applies; `None`
/// when it applies nowhere.
pub fn evolve(writer: &S, change: Change, u: &mut Unstructured<'_>) -> AResult<Option<S>> {
    let mut reader = writer.clone();
    Ok(apply(&mut reader, change, u)?.then_some(reader))
}

fn promote(s: &S) -> Option<S> {
    Some(match s {
        S::Int => S::Long,
        S::Long => S::Double,
        S::Float => S::Double,
        S::String => S::Bytes,
        S::Bytes => S::String,
        _ => return None,
    })
}

fn demote(s: &S) -> Option<S> {
    Some(match s {
        S::Long => S::Int,
        S::Double => S::Float,
        S::Float => S::Long,
        _ => return None,
    })
}

/// Applies `change` in place at the first place it fits (depth first); whether it did.
fn apply(s: &mut S, change: Change, u: &mut Unstructured<'_>) -> AResult<bool> {
    match (change, &mut *s) {
        (Change::AddFieldWithDefault, S::Record { fields, .. }) => {
            fields.push(F {
                name: "added".into(),
                schema: S::Int,
                default: Some("0".into()),
                aliases: Vec::new(),
            });
            return Ok(true);
        }
        (Change::AddFieldWithoutDefault, S::Record { fields, .. }) => {
            fields.push(F {
                name: "added".into(),
                schema: S::String,
                default: None,
                aliases: Vec::new(),
            });
            return Ok(true);
        }
        (Change::RemoveField, S::Record { fields, .. }) if !fields.is_empty() => {
            let i = u.choose_index(fields.len())?;
            fields.remove(i);
            return Ok(true);
        }
        (Change::RenameFieldWithAlias, S::Record { fields, .. }) if !fields.is_empty() => {
            let i = u.choose_index(fields.len())?;
            let f = &mut fields[i];
            f.aliases.push(f.name.clone());
            f.name = format!("{}_renamed", f.name);
            return Ok(true);
        }
        (Change::Rename, S::Record { name, .. }) => {
            *name = format!("{name}Renamed");
            return Ok(true);
        }
        (
            Change::RenameWithAlias,
            S::Record {
                name,
                namespace,
                aliases,
                ..
            },
        ) => {
            let full = namespace
                .as_ref()
                .map_or_else(|| name.clone(), |ns| format!("{ns}.{name}"));
            aliases.push(full);
            *name = format!("{name}Renamed");
            return Ok(true);
        }
        (Change::Renamespace, S::Record { namespace, .. }) => {
            *namespace = Some(match namespace {
                Some(ns) => format!("{ns}x"),
                None => "moved".into(),
            });
            return Ok(true);
        }
        (Change::AddSymbol, S::Enum { symbols, .. }) => {
            symbols.push("ADDED".into());
            return Ok(true);
        }
        (
            Change::DropSymbol,
            S::Enum {
                symbols, default, ..
            },
        ) if symbols.len() > 1 && default.is_none() => {
            symbols.pop();
            return Ok(true);
        }
        (
            Change::DropSymbolWithDefault,
            S::Enum {
                symbols, default, ..
            },
        ) if symbols.len() > 1 => {
            symbols.pop();
            *default = symbols.first().cloned();
            return Ok(true);
        }
        (Change::ResizeFixed, S::Fixed { size, .. }) => {
            *size += 1;
            return Ok(true);
        }
        (Change::DropBranch, S::Union(branches)) if branches.len() > 1 => {
            let i = u.choose_index(branches.len())?;
            branches.remove(i);
            return Ok(true);
        }
        (Change::AddBranch, S::Union(branches)) => {
            for candidate in [S::Null, S::Boolean, S::String, S::Double] {
                if !branches
                    .iter()
                    .any(|b| b.branch_key() == candidate.branch_key())
                {
                    branches.push(candidate);
                    return Ok(true);
                }
            }
        }
        (Change::Rescale, S::Decimal { precision, scale }) => {
            if *scale < *precision {
                *scale += 1;
            } else {
                *precision += 1;
                *scale += 1;
            }
            return Ok(true);
        }
        _ => {}
    }
    // Field-level changes of a type in place.
    let replaced = match change {
        Change::Promote => promote(s),
        Change::Demote => demote(s),
        Change::Retype => match &*s {
            S::Int | S::Long | S::Float | S::Double => Some(S::Boolean),
            S::String | S::Bytes => Some(S::Int),
            S::Boolean => Some(S::String),
            _ => None,
        },
        Change::WrapInUnion => match &*s {
            S::Union(_) | S::Null => None,
            other => Some(S::Union(vec![S::Null, other.clone()])),
        },
        _ => None,
    };
    if let Some(r) = replaced {
        *s = r;
        return Ok(true);
    }
    match s {
        S::Array(inner) | S::Map(inner) => apply(inner, change, u),
        S::Union(branches) => {
            for i in 0..branches.len() {
                // Keep the union valid: a change must not make two branches of one kind.
                let before = branches[i].clone();
                if apply(&mut branches[i], change, u)? {
                    let mut keys: Vec<String> = branches.iter().map(S::branch_key).collect();
                    let count = keys.len();
                    keys.sort();
                    keys.dedup();
                    if keys.len() == count && !matches!(branches[i], S::Union(_)) {
                        return Ok(true);
                    }
                }
                branches[i] = before;
            }
            Ok(false)
        }
        S::Record { fields, .. } => {
            for f in fields {
                if apply(&mut f.schema, change, u)? {
                    // A default must still suit the changed type.
                    f.default = f.default.take().and_then(|_| simple_default(&f.schema));
                    return Ok(true);
                }
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// The verdicts on `reader` reading `writer`: (tributary-avro, apache-avro), compatible or not.
pub fn verdicts(reader: &S, writer: &S) -> Result<(bool, bool), String> {
    let (our_r, their_r) = parse_both(&reader.json())?;
    let (our_w, their_w) = parse_both(&writer.json())?;
    let ours = compat::can_read(&our_r, &our_w).is_empty();
    let theirs = matches!(
        SchemaCompatibility::can_read(&their_w, &their_r),
        Ok(Compatibility::Full)
    );
    Ok((ours, theirs))
}

/// Whether `s` holds a union with two branches a value of one type could be converted to
/// (two numeric types; two of string, bytes, fixed, enum, decimal; two of record and map).
/// apache-avro
/// resolves a value against a reader union by trying the branches in order until one takes
/// it, not by the writer type and name as the specification (and Java's `bestBranch`) does:
/// an `int` lands in a `long` listed before an `int`, a `string` in a `fixed` (whatever its
/// size), an enum in another enum through its default, a map in a record. Resolution through such unions is a
/// documented difference (docs/avro-oracle.md).
pub fn has_convertible_union(s: &S) -> bool {
    fn family(b: &S) -> u8 {
        match b {
            S::Int | S::Long | S::Float | S::Double | S::Date | S::TimestampMillis => 1,
            S::String | S::Bytes | S::Fixed { .. } | S::Enum { .. } | S::Decimal { .. } => 2,
            S::Record { .. } | S::Map(_) => 3,
            _ => 0,
        }
    }
    match s {
        S::Union(branches) => {
            let mut seen = [0u8; 4];
            for b in branches {
                let f = usize::from(family(b));
                seen[f] += 1;
                if f > 0 && seen[f] > 1 {
                    return true;
                }
            }
            branches.iter().any(has_convertible_union)
        }
        S::Array(inner) | S::Map(inner) => has_convertible_union(inner),
        S::Record { fields, .. } => fields.iter().any(|f| has_convertible_union(&f.schema)),
        _ => false,
    }
}

/// Both resolve data written with `writer` to the same reader value: each decodes the
/// writer's bytes as `reader`, and the two results encode to the same bytes as `reader`.
pub fn check_resolution(reader: &S, writer: &S, d: &D) -> Result<(), String> {
    let (our_r, their_r) = parse_both(&reader.json())?;
    let (our_w, their_w) = parse_both(&writer.json())?;
    let json = to_json(d, true).to_string();
    let bytes = codec::json_to_avro(&our_w, &json).map_err(|e| format!("encode {json}: {e}"))?;
    let ours =
        codec::avro_to_value(&our_w, Some(&our_r), &bytes, UnionStyle::Tagged).map_err(|e| {
            format!(
                "tributary-avro can't resolve {json} to {}: {e}",
                reader.json()
            )
        })?;
    let our_reencoded = codec::value_to_avro(&our_r, &ours)
        .map_err(|e| format!("tributary-avro can't re-encode {ours}: {e}"))?;
    let theirs = GenericDatumReader::builder(&their_w)
        .reader_schema(&their_r)
        .build()
        .and_then(|r| r.read_value(&mut bytes.as_slice()))
        .map_err(|e| format!("apache-avro can't resolve {json} to {}: {e}", reader.json()))?;
    let their_reencoded = GenericDatumWriter::builder(&their_r)
        .build()
        .and_then(|w| w.write_value_to_vec(theirs.clone()))
        .map_err(|e| {
            format!(
                "apache-avro can't re-encode {theirs:?} (written as {}, read as {}): {e}",
                writer.json(),
                reader.json()
            )
        })?;
    if our_reencoded != their_reencoded {
        return Err(format!(
            "{json} written as {} read as {}: ours {ours} ({our_reencoded:02x?}), apache-avro {theirs:?} ({their_reencoded:02x?})",
            writer.json(),
            reader.json()
        ));
    }
    Ok(())
}

// ----- a whole case ------------------------------------------------------------------------

/// What [`run_case`] met, over every case it ran.
#[derive(Debug, Default)]
pub struct Tally {
    pub schemas: usize,
    pub data: usize,
    pub pairs: usize,
    pub compatible: usize,
    pub resolved: usize,
    pub documented: usize,
    /// Documented differences met, by kind.
    pub kinds: std::collections::BTreeMap<&'static str, usize>,
    pub failures: Vec<String>,
}

impl Tally {
    fn documented(&mut self, kind: &'static str) {
        self.documented += 1;
        *self.kinds.entry(kind).or_default() += 1;
    }
}

/// One case: a writer record generated from `u`, checked against apache-avro (its canonical
/// form, up to three data, and a reader evolved by each [`Change`]: canonical form, verdicts,
/// resolution of the data). Disagreements go to `tally.failures`, the documented differences
/// (docs/avro-oracle.md) are counted by kind.
pub fn run_case(u: &mut Unstructured<'_>, tally: &mut Tally) {
    let Ok(writer) = SchemaGen::new().record(u, 0) else {
        return;
    };
    tally.schemas += 1;
    if let Err(e) = check_canonical_form(&writer) {
        tally.failures.push(e);
        return;
    }
    let mut datums = Vec::new();
    for _ in 0..3 {
        let Ok(d) = datum(u, &writer) else {
            break;
        };
        tally.data += 1;
        if let Err(e) = check_datum(&writer, &d) {
            tally.failures.push(e);
        }
        datums.push(d);
    }
    for change in Change::ALL {
        let Ok(Some(reader)) = evolve(&writer, change, u) else {
            continue;
        };
        if let Err(e) = check_canonical_form(&reader) {
            tally.failures.push(e);
            continue;
        }
        let (ours, theirs) = match verdicts(&reader, &writer) {
            Ok(v) => v,
            Err(e) => {
                tally.failures.push(e);
                continue;
            }
        };
        tally.pairs += 1;
        if ours != theirs {
            // The documented verdicts differ one way only: Java (and tributary-avro) reads.
            if change.documented_difference() && ours && !theirs {
                tally.documented(match change {
                    Change::RenameWithAlias => "verdict: renamed named type with an alias",
                    _ => "verdict: decimal scale changed",
                });
            } else {
                tally.failures.push(format!(
                    "{change:?}: tributary-avro says {}, apache-avro {}: reader {} writer {}",
                    verdict(ours),
                    verdict(theirs),
                    reader.json(),
                    writer.json()
                ));
            }
            continue;
        }
        if ours {
            tally.compatible += 1;
            if change.resolution_differs() {
                tally.documented("resolution: reader field alias (apache-avro)");
                continue;
            }
            if has_convertible_union(&reader) {
                tally.documented("resolution: union by value shape (apache-avro), not compared");
                continue;
            }
            for d in &datums {
                tally.resolved += 1;
                if let Err(e) = check_resolution(&reader, &writer, d) {
                    if let Some(kind) = documented_resolution_difference(&e) {
                        tally.documented(kind);
                    } else {
                        tally.failures.push(format!("{change:?}: {e}"));
                    }
                }
            }
        }
    }
}

/// The resolutions whose difference is documented (docs/avro-oracle.md): bytes that are not
/// UTF-8 read as a string (tributary-avro refuses the datum: its output is JSON text);
/// apache-avro refusing to resolve a decimal whose value takes fewer bytes than its precision
/// could need (its check is the wrong way round) or that is empty, and not promoting values of logical types
/// (a timestamp-millis to a double branch, say) as it promotes their underlying types.
fn documented_resolution_difference(error: &str) -> Option<&'static str> {
    let logical_value = ["Decimal(", "TimestampMillis(", "Date("]
        .iter()
        .any(|v| error.contains(v));
    if error.contains("is not UTF-8") {
        Some("resolution: bytes that are not UTF-8 read as a string (tributary-avro)")
    } else if error.contains("too small to hold decimal values")
        || error.contains("decimal sign extension")
    {
        Some("resolution: decimal size check (apache-avro)")
    } else if error.contains("Could not find matching type in UnionSchema") && logical_value {
        Some("resolution: logical-type value not promoted (apache-avro)")
    } else {
        None
    }
}

fn verdict(compatible: bool) -> &'static str {
    if compatible {
        "compatible"
    } else {
        "incompatible"
    }
}
