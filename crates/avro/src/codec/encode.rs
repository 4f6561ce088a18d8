//! JSON (any [`JsonNode`]: a `serde_json` value or a tree borrowed from text) -> Avro binary.

use serde_json::Value;

use super::binary::{write_bytes, write_long};
use super::node::{JsonNode, JsonObject, View};
use super::{
    CodecError, MAX_DEPTH, Path, Seg, branch_name, describe, json_to_value, logical, logical_name,
    type_label,
};
use crate::limits::Limit;
use crate::schema::{LogicalType, NodeId, NodeKind, Schema, SchemaNode};

/// Upper bound on node visits spent trying union branches speculatively (when a plain value
/// fits several branches, each is tried; nested, that multiplies).
const SPECULATION_BUDGET: usize = 1_000_000;

pub(crate) struct Encoder<'s> {
    schema: &'s Schema,
    budget: usize,
    speculating: usize,
    /// Deepest nesting accepted (at most [`MAX_DEPTH`]).
    max_depth: usize,
}

fn integer<N: JsonNode>(v: &N) -> Option<i64> {
    let View::Number(n) = v.view() else {
        return None;
    };
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)
            .map(|f| f as i64)
    })
}

fn float_of<N: JsonNode>(v: &N) -> Option<f64> {
    match v.view() {
        View::Number(n) => n.as_f64(),
        View::String(s) => match s {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// Characters U+0000..U+00FF as bytes.
fn latin1(s: &str) -> Result<Vec<u8>, String> {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            u8::try_from(u32::from(c)).map_err(|_| {
                format!(
                    "character {c:?} (U+{:04X}) at index {i} is not a byte; Avro's JSON encoding writes bytes as characters U+0000..U+00FF",
                    u32::from(c)
                )
            })
        })
        .collect()
}

fn is_numeric_kind(node: &SchemaNode) -> Option<u8> {
    match node.kind {
        NodeKind::Int => Some(0),
        NodeKind::Long => Some(1),
        NodeKind::Double => Some(2),
        NodeKind::Float => Some(3),
        _ => None,
    }
}

/// Whether a JSON value could plausibly be a value of `node` (a cheap filter before trying).
fn plausible<N: JsonNode>(node: &SchemaNode, v: &N) -> bool {
    let lname = logical_name(node);
    match (&node.kind, v.view()) {
        (NodeKind::Null, View::Null) | (NodeKind::Boolean, View::Bool(_)) => true,
        (NodeKind::Int | NodeKind::Long | NodeKind::Float | NodeKind::Double, View::Number(_)) => {
            true
        }
        (NodeKind::Int | NodeKind::Long, View::String(_)) => lname.is_some(),
        (NodeKind::Float | NodeKind::Double, View::String(_)) => float_of(v).is_some(),
        (
            NodeKind::Bytes | NodeKind::String | NodeKind::Enum(_) | NodeKind::Fixed(_),
            View::String(_),
        ) => true,
        (NodeKind::Bytes | NodeKind::Fixed(_), View::Number(_)) => lname == Some("decimal"),
        (NodeKind::Fixed(_), View::Object(_)) => lname == Some("duration"),
        (NodeKind::Array { .. }, View::Array(_)) => true,
        (NodeKind::Map { .. } | NodeKind::Record(_), View::Object(_)) => true,
        _ => false,
    }
}

impl<'s> Encoder<'s> {
    pub(crate) fn new(schema: &'s Schema, max_depth: usize) -> Self {
        Encoder {
            schema,
            budget: SPECULATION_BUDGET,
            speculating: 0,
            max_depth: max_depth.min(MAX_DEPTH),
        }
    }

    #[cold]
    #[inline(never)]
    fn too_deep(&self, id: NodeId, path: &Path<'_>) -> CodecError {
        let mut e = path.err(
            type_label(self.schema, id),
            format!(
                "value nested deeper than {} levels (max-json-depth)",
                self.max_depth
            ),
        );
        e.limit = Some(Limit::JsonDepth);
        e
    }

    fn mismatch<N: JsonNode>(&self, id: NodeId, v: &N, path: &Path<'_>) -> CodecError {
        let label = type_label(self.schema, id);
        path.err(
            label.clone(),
            format!("expected {label}, found {}", describe(v)),
        )
    }

    /// Encode `v` as a value of `id`. `default_mode`: `v` is a schema default, whose union
    /// values are for the first branch (Avro's rule for defaults).
    pub(crate) fn encode<N: JsonNode>(
        &mut self,
        id: NodeId,
        v: &N,
        path: &Path<'_>,
        depth: usize,
        default_mode: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let schema = self.schema;
        if depth > self.max_depth {
            return Err(self.too_deep(id, path));
        }
        if self.speculating > 0 {
            self.budget = self.budget.checked_sub(1).ok_or_else(|| {
                path.err(
                    type_label(schema, id),
                    "value too complex to match against the schema's unions",
                )
            })?;
        }
        let node = schema.node(id);
        match &node.kind {
            NodeKind::Null => match v.view() {
                View::Null => Ok(()),
                _ => Err(self.mismatch(id, v, path)),
            },
            NodeKind::Boolean => match v.view() {
                View::Bool(b) => {
                    out.push(u8::from(b));
                    Ok(())
                }
                _ => Err(self.mismatch(id, v, path)),
            },
            NodeKind::Int => {
                let n = match (v.view(), node.logical_type) {
                    (View::String(s), Some(LogicalType::Date)) => {
                        logical::parse_date(s).map_err(|m| path.err(type_label(schema, id), m))?
                    }
                    (View::String(s), Some(LogicalType::TimeMillis)) => {
                        let nanos = logical::parse_time(s)
                            .map_err(|m| path.err(type_label(schema, id), m))?;
                        if nanos % 1_000_000 != 0 {
                            return Err(path.err(
                                type_label(schema, id),
                                format!("'{s}' is more precise than milliseconds"),
                            ));
                        }
                        nanos / 1_000_000
                    }
                    _ => integer(v).ok_or_else(|| self.mismatch(id, v, path))?,
                };
                let n = i32::try_from(n).map_err(|_| {
                    path.err(
                        type_label(schema, id),
                        format!("{n} is out of range for an int"),
                    )
                })?;
                write_long(out, i64::from(n));
                Ok(())
            }
            NodeKind::Long => {
                let text = match v.view() {
                    View::String(s) => logical_name(node).map(|l| (l, s)),
                    _ => None,
                };
                let n = match text {
                    Some((l, s)) => self.long_from_text(id, l, s, path)?,
                    _ => integer(v).ok_or_else(|| {
                        let mut e = self.mismatch(id, v, path);
                        if let View::Number(n) = v.view() {
                            e.message = format!(
                                "expected {}, found number {n} (not an integer in range)",
                                e.expected
                            );
                        }
                        e
                    })?,
                };
                write_long(out, n);
                Ok(())
            }
            NodeKind::Float => {
                let f = float_of(v).ok_or_else(|| self.mismatch(id, v, path))?;
                #[allow(clippy::cast_possible_truncation)]
                let g = f as f32;
                if f.is_finite() && !g.is_finite() {
                    return Err(path.err("float", format!("{f} is out of range for a float")));
                }
                out.extend_from_slice(&g.to_le_bytes());
                Ok(())
            }
            NodeKind::Double => {
                let f = float_of(v).ok_or_else(|| self.mismatch(id, v, path))?;
                out.extend_from_slice(&f.to_le_bytes());
                Ok(())
            }
            NodeKind::Bytes => {
                let b = match node.logical_type {
                    Some(LogicalType::Decimal { precision, scale }) => {
                        self.decimal(id, v, precision, scale, None, path)?
                    }
                    _ => self.bytes_of(id, v, path)?,
                };
                write_bytes(out, &b);
                Ok(())
            }
            NodeKind::String => {
                let View::String(s) = v.view() else {
                    return Err(self.mismatch(id, v, path));
                };
                if node.logical_type == Some(LogicalType::Uuid) && !logical::is_uuid(s) {
                    return Err(path.err(
                        type_label(schema, id),
                        format!("{} is not a UUID (8-4-4-4-12 hex digits)", describe(v)),
                    ));
                }
                write_bytes(out, s.as_bytes());
                Ok(())
            }
            NodeKind::Fixed(f) => {
                let b = match (node.logical_type, logical_name(node), v.view()) {
                    (Some(LogicalType::Decimal { precision, scale }), _, _) => {
                        self.decimal(id, v, precision, scale, Some(f.size), path)?
                    }
                    (_, Some("duration"), View::Object(o)) => {
                        let mut b = Vec::with_capacity(12);
                        for (key, _) in o.entries() {
                            if !matches!(key, "months" | "days" | "millis") {
                                return Err(path.child(Seg::Key(key)).err(
                                    type_label(schema, id),
                                    format!("unknown duration component '{key}' (expected months, days, millis)"),
                                ));
                            }
                        }
                        for key in ["months", "days", "millis"] {
                            let p = path.child(Seg::Field(key));
                            let n = o
                                .get(key)
                                .map_or(Some(0), integer)
                                .and_then(|n| u32::try_from(n).ok())
                                .ok_or_else(|| {
                                    p.err(
                                        "unsigned 32-bit integer",
                                        format!("duration {key} must be an integer 0..4294967295"),
                                    )
                                })?;
                            b.extend_from_slice(&n.to_le_bytes());
                        }
                        b
                    }
                    _ => self.bytes_of(id, v, path)?,
                };
                if b.len() != f.size {
                    return Err(path.err(
                        type_label(schema, id),
                        format!(
                            "fixed {} needs exactly {} bytes, found {}",
                            f.name,
                            f.size,
                            b.len()
                        ),
                    ));
                }
                out.extend_from_slice(&b);
                Ok(())
            }
            NodeKind::Enum(e) => {
                let View::String(s) = v.view() else {
                    return Err(self.mismatch(id, v, path));
                };
                let idx = e.symbols.iter().position(|x| x == s).ok_or_else(|| {
                    path.err(
                        type_label(schema, id),
                        format!(
                            "'{s}' is not a symbol of enum {} (symbols: {})",
                            e.name,
                            e.symbols.join(", ")
                        ),
                    )
                })?;
                write_long(out, i64::try_from(idx).unwrap_or(0));
                Ok(())
            }
            NodeKind::Array { items } => {
                let View::Array(a) = v.view() else {
                    return Err(self.mismatch(id, v, path));
                };
                if !a.is_empty() {
                    write_long(out, i64::try_from(a.len()).unwrap_or(i64::MAX));
                    for (i, item) in a.iter().enumerate() {
                        self.encode(
                            *items,
                            item,
                            &path.child(Seg::Index(i)),
                            depth + 1,
                            default_mode,
                            out,
                        )?;
                    }
                }
                write_long(out, 0);
                Ok(())
            }
            NodeKind::Map { values } => {
                let View::Object(m) = v.view() else {
                    return Err(self.mismatch(id, v, path));
                };
                if m.len() > 0 {
                    write_long(out, i64::try_from(m.len()).unwrap_or(i64::MAX));
                    for (k, item) in m.entries() {
                        write_bytes(out, k.as_bytes());
                        self.encode(
                            *values,
                            item,
                            &path.child(Seg::Key(k)),
                            depth + 1,
                            default_mode,
                            out,
                        )?;
                    }
                }
                write_long(out, 0);
                Ok(())
            }
            NodeKind::Record(r) => {
                let View::Object(m) = v.view() else {
                    return Err(self.mismatch(id, v, path));
                };
                // Keys are unique: if every field's key is found and there are no more keys,
                // none is unknown. Keys usually come in the schema's order, so look there first.
                let lookup = |i: usize, name: &str| match m.entry_at(i) {
                    Some((k, v)) if k == name => Some(v),
                    _ => m.get(name),
                };
                let found = r
                    .fields
                    .iter()
                    .enumerate()
                    .filter(|(i, f)| lookup(*i, &f.name).is_some())
                    .count();
                if found != m.len()
                    && let Some((unknown, _)) = m.entries().find(|(k, _)| r.field(k).is_none())
                {
                    // The first fields, so that the message stays short for a wide record.
                    const SHOWN: usize = 20;
                    let names: Vec<&str> = r
                        .fields
                        .iter()
                        .take(SHOWN)
                        .map(|f| f.name.as_str())
                        .collect();
                    let more = r.fields.len().saturating_sub(SHOWN);
                    let more = if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    };
                    return Err(path.child(Seg::Key(unknown)).err(
                        type_label(schema, id),
                        format!(
                            "unknown field '{unknown}' for record {} (fields: {}{more})",
                            r.name,
                            names.join(", ")
                        ),
                    ));
                }
                for (i, f) in r.fields.iter().enumerate() {
                    let p = path.child(Seg::Field(&f.name));
                    match (lookup(i, &f.name), &f.default) {
                        (Some(fv), _) => {
                            self.encode(f.schema, fv, &p, depth + 1, default_mode, out)?
                        }
                        (None, Some(d)) => {
                            let d: Value = json_to_value(d);
                            self.encode(f.schema, &d, &p, depth + 1, true, out)?;
                        }
                        (None, None) => {
                            return Err(p.err(
                                type_label(schema, f.schema),
                                format!(
                                    "missing field '{}' of record {} (it has no default)",
                                    f.name, r.name
                                ),
                            ));
                        }
                    }
                }
                Ok(())
            }
            NodeKind::Union { branches } => {
                self.union(id, branches, v, path, depth, default_mode, out)
            }
        }
    }

    fn long_from_text(
        &self,
        id: NodeId,
        lname: &str,
        s: &str,
        path: &Path<'_>,
    ) -> Result<i64, CodecError> {
        let label = || type_label(self.schema, id);
        let (nanos, div): (i128, i128) = match lname {
            "time-micros" => (
                i128::from(logical::parse_time(s).map_err(|m| path.err(label(), m))?),
                1_000,
            ),
            "timestamp-millis"
            | "timestamp-micros"
            | "timestamp-nanos"
            | "local-timestamp-millis"
            | "local-timestamp-micros"
            | "local-timestamp-nanos" => {
                let local = lname.starts_with("local-");
                let n = logical::parse_timestamp(s, local).map_err(|m| path.err(label(), m))?;
                let div = if lname.ends_with("millis") {
                    1_000_000
                } else if lname.ends_with("micros") {
                    1_000
                } else {
                    1
                };
                (n, div)
            }
            _ => {
                return Err(path.err(label(), format!("expected {}, found a string", label())));
            }
        };
        if nanos % div != 0 {
            return Err(path.err(
                label(),
                format!("'{s}' is more precise than {lname} can hold"),
            ));
        }
        i64::try_from(nanos / div)
            .map_err(|_| path.err(label(), format!("'{s}' is out of range for {lname}")))
    }

    fn bytes_of<N: JsonNode>(
        &self,
        id: NodeId,
        v: &N,
        path: &Path<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        let View::String(s) = v.view() else {
            return Err(self.mismatch(id, v, path));
        };
        latin1(s).map_err(|m| path.err(type_label(self.schema, id), m))
    }

    fn decimal<N: JsonNode>(
        &self,
        id: NodeId,
        v: &N,
        precision: u32,
        scale: u32,
        fixed: Option<usize>,
        path: &Path<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        let label = || type_label(self.schema, id);
        let text = match v.view() {
            View::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => i.to_string(),
                (_, Some(u), _) => u.to_string(),
                (_, _, Some(f)) => f.to_string(),
                _ => return Err(self.mismatch(id, v, path)),
            },
            View::String(s) => {
                let numeric = match fixed {
                    Some(size) => s.chars().count() != size || logical::looks_numeric(s, scale),
                    None => logical::looks_numeric(s, scale),
                };
                if !numeric {
                    return latin1(s).map_err(|m| path.err(label(), m));
                }
                s.to_owned()
            }
            _ => return Err(self.mismatch(id, v, path)),
        };
        let unscaled = logical::parse_decimal(&text, scale).map_err(|m| path.err(label(), m))?;
        if logical::digit_count(unscaled) > precision {
            return Err(path.err(
                label(),
                format!(
                    "{text} has more digits than the schema's precision {precision} (scale {scale})"
                ),
            ));
        }
        let mut b = logical::twos_complement(unscaled);
        if let Some(size) = fixed {
            if b.len() > size {
                return Err(path.err(label(), format!("{text} does not fit in {size} bytes")));
            }
            let fill = if unscaled < 0 { 0xff } else { 0 };
            let mut padded = vec![fill; size - b.len()];
            padded.append(&mut b);
            b = padded;
        }
        Ok(b)
    }

    #[allow(clippy::too_many_arguments)]
    fn union<N: JsonNode>(
        &mut self,
        id: NodeId,
        branches: &[NodeId],
        v: &N,
        path: &Path<'_>,
        depth: usize,
        default_mode: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let schema = self.schema;
        let label = || type_label(schema, id);
        let write = |out: &mut Vec<u8>, i: usize| write_long(out, i64::try_from(i).unwrap_or(0));
        if default_mode && let Some(&first) = branches.first() {
            let mut buf = Vec::new();
            if self
                .encode(first, v, path, depth + 1, true, &mut buf)
                .is_ok()
            {
                write(out, 0);
                out.extend_from_slice(&buf);
                return Ok(());
            }
        }
        if v.is_null() {
            return match branches
                .iter()
                .position(|b| matches!(schema.node(*b).kind, NodeKind::Null))
            {
                Some(i) => {
                    write(out, i);
                    Ok(())
                }
                None => Err(path.err(
                    label(),
                    format!("null is not allowed: expected {}", label()),
                )),
            };
        }
        // Tagged form: {"<branch name>": value}.
        if let View::Object(o) = v.view()
            && o.len() == 1
            && let Some((k, inner)) = o.entries().next()
        {
            let exact = branches.iter().position(|b| branch_name(schema, *b) == *k);
            let by_simple = || {
                let hits: Vec<usize> = branches
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| schema.node(**b).name().is_some_and(|n| n.name() == k))
                    .map(|(i, _)| i)
                    .collect();
                (hits.len() == 1).then(|| hits.first().copied()).flatten()
            };
            if let Some(i) = exact.or_else(by_simple)
                && let Some(&b) = branches.get(i)
            {
                write(out, i);
                return self.encode(b, inner, path, depth + 1, default_mode, out);
            }
        }
        // Plain form: the one branch the value fits.
        let plausible_branches = || {
            branches.iter().copied().enumerate().filter(|(_, b)| {
                let node = schema.node(*b);
                !matches!(node.kind, NodeKind::Null) && plausible(node, v)
            })
        };
        let mut first_two = plausible_branches();
        if let (Some((i, b)), None) = (first_two.next(), first_two.next()) {
            write(out, i);
            return self.encode(b, v, path, depth + 1, default_mode, out);
        }
        let candidates: Vec<(usize, NodeId)> = plausible_branches().collect();
        let mut fits: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut errors: Vec<CodecError> = Vec::new();
        for (i, b) in candidates {
            let mut buf = Vec::new();
            self.speculating += 1;
            let r = self.encode(b, v, path, depth + 1, default_mode, &mut buf);
            self.speculating -= 1;
            match r {
                Ok(()) => fits.push((i, buf)),
                Err(e) => {
                    // Fatal whichever branch is taken: too much work, too deep, or a nested
                    // value that is itself ambiguous (it needs tagging in any case).
                    if e.message.contains("too complex")
                        || e.message.contains("nested deeper")
                        || e.message.contains("is ambiguous for")
                    {
                        return Err(e);
                    }
                    errors.push(e);
                }
            }
        }
        if fits.len() > 1 && matches!(v.view(), View::Number(_)) {
            let ranks: Option<Vec<u8>> = fits
                .iter()
                .map(|(i, _)| {
                    branches
                        .get(*i)
                        .and_then(|b| is_numeric_kind(schema.node(*b)))
                })
                .collect();
            if let Some(ranks) = ranks {
                let best = ranks
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, r)| **r)
                    .map_or(0, |(j, _)| j);
                let (i, buf) = fits.swap_remove(best);
                write(out, i);
                out.extend_from_slice(&buf);
                return Ok(());
            }
        }
        match fits.len() {
            1 => {
                if let Some((i, buf)) = fits.pop() {
                    write(out, i);
                    out.extend_from_slice(&buf);
                }
                Ok(())
            }
            0 => Err(path.err(
                label(),
                format!("{} matches no branch of {}", describe(v), label()),
            )),
            _ => {
                let names: Vec<String> = fits
                    .iter()
                    .filter_map(|(i, _)| branches.get(*i).map(|b| branch_name(schema, *b)))
                    .collect();
                Err(path.err(
                    label(),
                    format!(
                        "{} is ambiguous for {}: it fits branches {}; use the tagged form, e.g. {{\"{}\": ...}}",
                        describe(v),
                        label(),
                        names.join(", "),
                        names.first().map_or("", String::as_str)
                    ),
                ))
            }
        }
    }
}
