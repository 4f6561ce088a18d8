//! Confluent's schema normalization (`AvroSchema.normalize()`, Schema Registry 7.x).
//!
//! Confluent builds a normalized text with `AvroSchemaUtils.toNormalizedString` (adapted from
//! Avro's `SchemaNormalization`):
//! - named types are written as `{"name": "<full name>", "type": ...}` the first time and as
//!   `"<full name>"` afterwards (types from references are always written by name);
//! - `error` types become `record`s;
//! - record fields carry `order` (upper case), `doc`, sorted `aliases` and the `default`
//!   re-serialized from its Avro value (`Field.defaultVal()`), e.g. an int default of a `float`
//!   field becomes `1.0`;
//! - named types carry a non-empty `doc`, sorted full-name `aliases` and the enum `default`;
//! - valid logical types are written first (`logicalType`, `precision`, non-zero `scale`), then
//!   every custom property sorted by key, with objects inside property values and defaults
//!   sorted by key as well.
//!
//! It then parses that text again and stores its canonical string, so
//! [`super::Schema::normalized_string`] is the canonical string of the re-parsed normalized text.

use std::collections::HashSet;

use super::parse::{ParseOptions, parse_on_references};
use super::{LogicalType, NodeId, NodeKind, Schema, Type};
use crate::json::{Json, Number, Object, write_string};

/// Java threw: Confluent's normalization would fail.
struct JavaException;

pub(crate) fn normalized_string(schema: &Schema) -> String {
    let mut env: HashSet<String> = schema.referenced_names().into_iter().collect();
    let mut out = String::new();
    if build(schema, schema.root(), &mut env, &mut out).is_err() {
        return schema.canonical_string();
    }
    match parse_on_references(
        schema,
        &out,
        ParseOptions {
            validate_defaults: false,
        },
    ) {
        Ok(normalized) => normalized.canonical_string(),
        Err(_) => schema.canonical_string(),
    }
}

fn logical_props(lt: LogicalType, out: &mut String) {
    out.push_str(",\"logicalType\":");
    write_string(lt.name(), out);
    if let LogicalType::Decimal { precision, scale } = lt {
        out.push_str(",\"precision\":");
        out.push_str(&precision.to_string());
        if scale != 0 {
            out.push_str(",\"scale\":");
            out.push_str(&scale.to_string());
        }
    }
}

fn simple_props(props: &Object, out: &mut String) -> Result<(), JavaException> {
    let mut entries: Vec<(&str, &Json)> = props.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in entries {
        out.push(',');
        write_string(k, out);
        out.push(':');
        sorted_value(v)?.write_jackson(out);
    }
    Ok(())
}

/// A property value through `JacksonUtils.toObject` and back through a key-sorting node factory.
fn sorted_value(v: &Json) -> Result<Json, JavaException> {
    Ok(match v {
        Json::Array(items) => {
            Json::Array(items.iter().map(sorted_value).collect::<Result<_, _>>()?)
        }
        Json::Object(o) => Json::Object(sorted_object(
            o.iter()
                .map(|(k, v)| Ok((k.to_owned(), sorted_value(v)?)))
                .collect::<Result<Vec<_>, _>>()?,
        )),
        // `toObject` yields null for big integers and Java then fails on it.
        Json::Number(Number::BigInt(_)) => return Err(JavaException),
        other => other.clone(),
    })
}

fn sorted_object(mut entries: Vec<(String, Json)>) -> Object {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}

/// `JacksonUtils.toObject(defaultValue, schema)` followed by `toJsonNode`: `Ok(None)` where Java
/// returns null (the default is then not written), `Err` where Java throws.
fn default_value(
    schema: &Schema,
    value: &Json,
    ty: Option<NodeId>,
) -> Result<Option<Json>, JavaException> {
    let mut ty = ty;
    if let Some(id) = ty
        && let NodeKind::Union { branches } = &schema.node(id).kind
    {
        ty = Some(*branches.first().ok_or(JavaException)?);
    }
    let t = ty.map(|id| schema.node(id).type_());
    Ok(match value {
        Json::Null => Some(Json::Null),
        Json::Bool(b) => Some(Json::Bool(*b)),
        Json::Number(Number::Int(v)) =>
        {
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
            match t {
                None | Some(Type::Int | Type::Long) => Some(Json::Number(Number::Int(*v))),
                Some(Type::Float) => Some(Json::Number(Number::Float(*v as f32))),
                Some(Type::Double) => Some(Json::Number(Number::Double(*v as f64))),
                _ => None,
            }
        }
        Json::Number(Number::BigInt(_)) => None,
        Json::Number(Number::Double(v)) =>
        {
            #[allow(clippy::cast_possible_truncation)]
            match t {
                None | Some(Type::Double) => Some(Json::Number(Number::Double(*v))),
                Some(Type::Float) => Some(Json::Number(Number::Float(*v as f32))),
                _ => None,
            }
        }
        Json::Number(Number::Float(v)) => match t {
            None | Some(Type::Double) => Some(Json::Number(Number::Double(f64::from(*v)))),
            Some(Type::Float) => Some(Json::Number(Number::Float(*v))),
            _ => None,
        },
        Json::String(s) => match t {
            None | Some(Type::String | Type::Enum) => Some(Json::String(s.clone())),
            // bytes go through ISO-8859-1 both ways: anything beyond U+00FF becomes '?'.
            Some(Type::Bytes | Type::Fixed) => Some(Json::String(
                s.chars()
                    .map(|c| if (c as u32) <= 0xFF { c } else { '?' })
                    .collect(),
            )),
            _ => None,
        },
        Json::Array(items) => {
            let elem = match ty.map(|id| &schema.node(id).kind) {
                None => None,
                Some(NodeKind::Array { items }) => Some(*items),
                Some(_) => return Err(JavaException),
            };
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(default_value(schema, item, elem)?.ok_or(JavaException)?);
            }
            Some(Json::Array(out))
        }
        Json::Object(o) => {
            let mut entries = Vec::with_capacity(o.len());
            for (k, v) in o.iter() {
                let vt = match ty.map(|id| &schema.node(id).kind) {
                    Some(NodeKind::Map { values }) => Some(*values),
                    Some(NodeKind::Record(r)) => Some(r.field(k).ok_or(JavaException)?.schema),
                    _ => None,
                };
                let converted = default_value(schema, v, vt)?.ok_or(JavaException)?;
                entries.push((k.to_owned(), converted));
            }
            Some(Json::Object(sorted_object(entries)))
        }
    })
}

fn string_array(items: &[String], out: &mut String) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(s, out);
    }
    out.push(']');
}

fn build(
    schema: &Schema,
    id: NodeId,
    env: &mut HashSet<String>,
    out: &mut String,
) -> Result<(), JavaException> {
    let node = schema.node(id);
    match &node.kind {
        NodeKind::Union { branches } => {
            out.push('[');
            for (i, b) in branches.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                build(schema, *b, env, out)?;
            }
            out.push(']');
        }
        NodeKind::Array { items } => {
            out.push_str("{\"type\":\"array\",\"items\":");
            build(schema, *items, env, out)?;
            simple_props(&node.props, out)?;
            out.push('}');
        }
        NodeKind::Map { values } => {
            out.push_str("{\"type\":\"map\",\"values\":");
            build(schema, *values, env, out)?;
            simple_props(&node.props, out)?;
            out.push('}');
        }
        NodeKind::Record(_) | NodeKind::Enum(_) | NodeKind::Fixed(_) => {
            let Some(name) = node.name() else {
                return Err(JavaException);
            };
            let full = name.full_name();
            if env.contains(&full) {
                write_string(&full, out);
                return Ok(());
            }
            env.insert(full.clone());
            out.push_str("{\"name\":");
            write_string(&full, out);
            out.push_str(",\"type\":");
            write_string(node.type_().name(), out);
            match &node.kind {
                NodeKind::Enum(e) => {
                    out.push_str(",\"symbols\":");
                    string_array(&e.symbols, out);
                }
                NodeKind::Fixed(f) => {
                    out.push_str(",\"size\":");
                    out.push_str(&f.size.to_string());
                    if let Some(lt) = node.logical_type {
                        logical_props(lt, out);
                    }
                }
                NodeKind::Record(r) => {
                    out.push_str(",\"fields\":[");
                    for (i, f) in r.fields.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str("{\"name\":");
                        write_string(&f.name, out);
                        out.push_str(",\"type\":");
                        build(schema, f.schema, env, out)?;
                        out.push_str(",\"order\":");
                        write_string(f.order.java_name(), out);
                        if let Some(doc) = &f.doc {
                            out.push_str(",\"doc\":");
                            write_string(doc, out);
                        }
                        if !f.aliases.is_empty() {
                            let mut aliases = f.aliases.clone();
                            aliases.sort();
                            out.push_str(",\"aliases\":");
                            string_array(&aliases, out);
                        }
                        if let Some(d) = &f.default
                            && let Some(v) = default_value(schema, d, Some(f.schema))?
                        {
                            out.push_str(",\"default\":");
                            v.write_jackson(out);
                        }
                        simple_props(&f.props, out)?;
                        out.push('}');
                    }
                    out.push(']');
                }
                _ => {}
            }
            if let Some(doc) = node.doc().filter(|d| !d.is_empty()) {
                out.push_str(",\"doc\":");
                write_string(doc, out);
            }
            if !node.aliases().is_empty() {
                let mut aliases: Vec<String> =
                    node.aliases().iter().map(super::Name::full_name).collect();
                aliases.sort();
                aliases.dedup();
                out.push_str(",\"aliases\":");
                string_array(&aliases, out);
            }
            if let NodeKind::Enum(e) = &node.kind
                && let Some(d) = &e.default
            {
                out.push_str(",\"default\":");
                write_string(d, out);
            }
            simple_props(&node.props, out)?;
            out.push('}');
        }
        _ => {
            let name = node.type_().name();
            if let Some(lt) = node.logical_type {
                out.push_str("{\"type\":");
                write_string(name, out);
                logical_props(lt, out);
                simple_props(&node.props, out)?;
                out.push('}');
            } else if !node.props.is_empty() {
                out.push_str("{\"type\":");
                write_string(name, out);
                simple_props(&node.props, out)?;
                out.push('}');
            } else {
                write_string(name, out);
            }
        }
    }
    Ok(())
}
