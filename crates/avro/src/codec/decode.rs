//! Avro binary -> JSON value, resolving the writer's schema against the reader's.

use serde_json::{Map, Value};

use super::binary::Reader;
use super::encode::Encoder;
use super::{
    CodecError, MAX_DEPTH, Path, Seg, UnionStyle, branch_name, f32_value, f64_value, json_to_value,
    type_label,
};
use crate::schema::{Name, NodeId, NodeKind, Schema, SchemaNode};

/// Items that occupy no bytes (nulls, empty records) are not bounded by the input length;
/// this many of them may be decoded per datum.
const ZERO_SIZE_BUDGET: u64 = 100_000;

pub(crate) struct Decoder<'a> {
    w: &'a Schema,
    r: &'a Schema,
    style: UnionStyle,
    zero_budget: u64,
}

/// Java's `SchemaResolver` name matching: same unqualified name, or a reader alias naming the
/// writer type (by full or unqualified name).
fn names_match(reader: &SchemaNode, writer: &SchemaNode) -> bool {
    match (reader.name(), writer.name()) {
        (Some(r), Some(w)) => {
            r.name() == w.name()
                || reader
                    .aliases()
                    .iter()
                    .any(|a: &Name| a.full_name() == w.full_name() || a.name() == w.name())
        }
        _ => true,
    }
}

fn same_type(r: &SchemaNode, w: &SchemaNode) -> bool {
    r.type_() == w.type_()
}

fn promotable(w: &SchemaNode, r: &SchemaNode) -> bool {
    matches!(
        (&w.kind, &r.kind),
        (
            NodeKind::Int,
            NodeKind::Long | NodeKind::Float | NodeKind::Double
        ) | (NodeKind::Long, NodeKind::Float | NodeKind::Double)
            | (NodeKind::Float, NodeKind::Double)
            | (NodeKind::String, NodeKind::Bytes)
            | (NodeKind::Bytes, NodeKind::String)
    )
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(w: &'a Schema, r: &'a Schema, style: UnionStyle) -> Self {
        Decoder {
            w,
            r,
            style,
            zero_budget: ZERO_SIZE_BUDGET,
        }
    }

    fn wlabel(&self, id: NodeId) -> String {
        type_label(self.w, id)
    }

    /// The reader union branch that best takes a writer type (Java's `bestBranch`): the same
    /// type (and name), then the same type with a matching alias, then a promotion.
    fn best_branch(&self, wid: NodeId, rbranches: &[NodeId]) -> Option<(usize, NodeId)> {
        let wn = self.w.node(wid);
        let find = |pred: &dyn Fn(&SchemaNode) -> bool| {
            rbranches
                .iter()
                .enumerate()
                .find(|(_, b)| pred(self.r.node(**b)))
                .map(|(i, b)| (i, *b))
        };
        find(&|rn| {
            same_type(rn, wn)
                && match (rn.name(), wn.name()) {
                    (Some(a), Some(b)) => a.full_name() == b.full_name(),
                    _ => true,
                }
        })
        .or_else(|| find(&|rn| same_type(rn, wn) && names_match(rn, wn)))
        .or_else(|| find(&|rn| promotable(wn, rn)))
    }

    fn wrap(&self, rid: NodeId, v: Value) -> Value {
        if self.style == UnionStyle::Plain || matches!(self.r.node(rid).kind, NodeKind::Null) {
            return v;
        }
        let mut m = Map::new();
        m.insert(branch_name(self.r, rid), v);
        Value::Object(m)
    }

    /// Check a block count against what the data could possibly hold: items take at least one
    /// byte each, except zero-size ones, which draw on `zero_budget` (see [`Self::charge`]).
    fn count(
        &self,
        raw: u64,
        rd: &Reader<'_>,
        path: &Path<'_>,
        wid: NodeId,
    ) -> Result<usize, CodecError> {
        let remaining = rd.remaining() as u64;
        if raw > remaining.saturating_add(self.zero_budget) {
            return Err(path.err(
                self.wlabel(wid),
                format!("block of {raw} items exceeds the {remaining} bytes left"),
            ));
        }
        usize::try_from(raw).map_err(|_| path.err(self.wlabel(wid), "block count too large"))
    }

    /// Charge an item that consumed no bytes against the zero-size budget.
    fn charge(
        &mut self,
        before: usize,
        rd: &Reader<'_>,
        path: &Path<'_>,
        wid: NodeId,
    ) -> Result<(), CodecError> {
        if rd.pos() == before {
            self.zero_budget = self.zero_budget.checked_sub(1).ok_or_else(|| {
                path.err(
                    self.wlabel(wid),
                    format!("more than {ZERO_SIZE_BUDGET} items that take no bytes"),
                )
            })?;
        }
        Ok(())
    }

    /// Read one datum of writer type `wid` as reader type `rid`.
    pub(crate) fn read(
        &mut self,
        rd: &mut Reader<'_>,
        wid: NodeId,
        rid: NodeId,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<Value, CodecError> {
        if depth > MAX_DEPTH {
            return Err(path.err(
                self.wlabel(wid),
                format!("data nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        let (w, r) = (self.w, self.r);
        let wn = w.node(wid);
        let rn = r.node(rid);
        let io = |e: String| path.err(type_label(w, wid), e);

        if let NodeKind::Union { branches } = &wn.kind {
            let at = rd.pos();
            let idx = rd.read_long().map_err(io)?;
            let wb = usize::try_from(idx)
                .ok()
                .and_then(|i| branches.get(i).copied())
                .ok_or_else(|| {
                    io(format!(
                        "union branch index {idx} at offset {at} is out of range (the union has {} branches)",
                        branches.len()
                    ))
                })?;
            return self.read(rd, wb, rid, path, depth + 1);
        }
        if let NodeKind::Union { branches } = &rn.kind {
            let (_, rb) = self.best_branch(wid, branches).ok_or_else(|| {
                path.err(
                    type_label(r, rid),
                    format!(
                        "the reader's {} has no branch for the writer's {}",
                        type_label(r, rid),
                        self.wlabel(wid)
                    ),
                )
            })?;
            let v = self.read(rd, wid, rb, path, depth + 1)?;
            return Ok(self.wrap(rb, v));
        }
        let mismatch = || {
            path.err(
                type_label(r, rid),
                format!(
                    "the writer's {} can't be read as the reader's {}",
                    type_label(w, wid),
                    type_label(r, rid)
                ),
            )
        };
        if !same_type(rn, wn) && !promotable(wn, rn) {
            return Err(mismatch());
        }
        if rn.name().is_some() && !names_match(rn, wn) {
            return Err(mismatch());
        }
        Ok(match (&wn.kind, &rn.kind) {
            (NodeKind::Null, _) => Value::Null,
            (NodeKind::Boolean, _) => Value::Bool(rd.read_bool().map_err(io)?),
            (NodeKind::Int, NodeKind::Int) => Value::from(rd.read_int().map_err(io)?),
            (NodeKind::Int, NodeKind::Long) => Value::from(i64::from(rd.read_int().map_err(io)?)),
            #[allow(clippy::cast_precision_loss)]
            (NodeKind::Int, NodeKind::Float) => f32_value(rd.read_int().map_err(io)? as f32),
            (NodeKind::Int, NodeKind::Double) => f64_value(f64::from(rd.read_int().map_err(io)?)),
            (NodeKind::Long, NodeKind::Long) => Value::from(rd.read_long().map_err(io)?),
            #[allow(clippy::cast_precision_loss)]
            (NodeKind::Long, NodeKind::Float) => f32_value(rd.read_long().map_err(io)? as f32),
            #[allow(clippy::cast_precision_loss)]
            (NodeKind::Long, NodeKind::Double) => f64_value(rd.read_long().map_err(io)? as f64),
            (NodeKind::Float, NodeKind::Float) => f32_value(rd.read_float().map_err(io)?),
            (NodeKind::Float, NodeKind::Double) => {
                f64_value(f64::from(rd.read_float().map_err(io)?))
            }
            (NodeKind::Double, _) => f64_value(rd.read_double().map_err(io)?),
            (NodeKind::String | NodeKind::Bytes, NodeKind::String) => {
                Value::String(rd.read_string().map_err(io)?.to_owned())
            }
            (NodeKind::String | NodeKind::Bytes, NodeKind::Bytes) => Value::String(
                rd.read_bytes()
                    .map_err(io)?
                    .iter()
                    .map(|b| char::from(*b))
                    .collect(),
            ),
            (NodeKind::Fixed(wf), NodeKind::Fixed(rf)) => {
                if wf.size != rf.size {
                    return Err(mismatch());
                }
                Value::String(
                    rd.take(wf.size)
                        .map_err(io)?
                        .iter()
                        .map(|b| char::from(*b))
                        .collect(),
                )
            }
            (NodeKind::Enum(we), NodeKind::Enum(re)) => {
                let at = rd.pos();
                let idx = rd.read_int().map_err(io)?;
                let sym = usize::try_from(idx)
                    .ok()
                    .and_then(|i| we.symbols.get(i))
                    .ok_or_else(|| {
                        io(format!(
                            "enum index {idx} at offset {at} is out of range ({} symbols)",
                            we.symbols.len()
                        ))
                    })?;
                if re.symbols.contains(sym) {
                    Value::String(sym.clone())
                } else if let Some(d) = re.default.as_ref().filter(|d| re.symbols.contains(d)) {
                    Value::String(d.clone())
                } else {
                    return Err(path.err(
                        type_label(r, rid),
                        format!(
                            "symbol '{sym}' is not in the reader's enum {} and it has no default",
                            re.name
                        ),
                    ));
                }
            }
            (NodeKind::Array { items: wi }, NodeKind::Array { items: ri }) => {
                let mut out = Vec::new();
                loop {
                    let raw = rd.read_block_count().map_err(io)?;
                    if raw == 0 {
                        break;
                    }
                    let n = self.count(raw, rd, path, wid)?;
                    out.reserve(n.min(rd.remaining()));
                    for _ in 0..n {
                        let i = out.len();
                        let before = rd.pos();
                        let v = self.read(rd, *wi, *ri, &path.child(Seg::Index(i)), depth + 1)?;
                        self.charge(before, rd, path, wid)?;
                        out.push(v);
                    }
                }
                Value::Array(out)
            }
            (NodeKind::Map { values: wv }, NodeKind::Map { values: rv }) => {
                let mut out = Map::new();
                loop {
                    let raw = rd.read_block_count().map_err(io)?;
                    if raw == 0 {
                        break;
                    }
                    let n = self.count(raw, rd, path, wid)?;
                    for _ in 0..n {
                        let k = rd.read_string().map_err(io)?.to_owned();
                        let v = self.read(rd, *wv, *rv, &path.child(Seg::Key(&k)), depth + 1)?;
                        out.insert(k, v);
                    }
                }
                Value::Object(out)
            }
            (NodeKind::Record(wr), NodeKind::Record(rr)) => {
                let mut slots: Vec<Option<Value>> = vec![None; rr.fields.len()];
                for wf in &wr.fields {
                    let target = rr
                        .fields
                        .iter()
                        .position(|f| f.name == wf.name || f.aliases.contains(&wf.name));
                    match target {
                        Some(i) => {
                            let rf_schema = rr.fields.get(i).map_or(wf.schema, |f| f.schema);
                            let name = rr
                                .fields
                                .get(i)
                                .map_or(wf.name.as_str(), |f| f.name.as_str());
                            let v = self.read(
                                rd,
                                wf.schema,
                                rf_schema,
                                &path.child(Seg::Field(name)),
                                depth + 1,
                            )?;
                            if let Some(s) = slots.get_mut(i) {
                                *s = Some(v);
                            }
                        }
                        None => {
                            // Skip: decode the writer's value as itself and drop it.
                            let mut skip = Decoder {
                                w,
                                r: w,
                                style: self.style,
                                zero_budget: self.zero_budget,
                            };
                            skip.read(
                                rd,
                                wf.schema,
                                wf.schema,
                                &path.child(Seg::Field(&wf.name)),
                                depth + 1,
                            )?;
                            self.zero_budget = skip.zero_budget;
                        }
                    }
                }
                let mut out = Map::new();
                for (f, slot) in rr.fields.iter().zip(slots) {
                    let v = match slot {
                        Some(v) => v,
                        None => {
                            let p = path.child(Seg::Field(&f.name));
                            let d = f.default.as_ref().ok_or_else(|| {
                                p.err(
                                    type_label(r, f.schema),
                                    format!(
                                        "the writer has no field '{}' and the reader's field has no default",
                                        f.name
                                    ),
                                )
                            })?;
                            self.default_value(f.schema, &json_to_value(d), &p, depth + 1)?
                        }
                    };
                    out.insert(f.name.clone(), v);
                }
                Value::Object(out)
            }
            _ => return Err(mismatch()),
        })
    }

    /// A reader field default in the output style: encode it with the reader schema (default
    /// rules), then decode it back.
    fn default_value(
        &mut self,
        rid: NodeId,
        d: &Value,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<Value, CodecError> {
        let mut buf = Vec::new();
        Encoder::new(self.r).encode(rid, d, path, depth, true, &mut buf)?;
        let mut rd = Reader::new(&buf);
        let mut dec = Decoder {
            w: self.r,
            r: self.r,
            style: self.style,
            zero_budget: self.zero_budget,
        };
        let v = dec.read(&mut rd, rid, rid, path, depth)?;
        self.zero_budget = dec.zero_budget;
        Ok(v)
    }
}
