//! Avro binary -> JSON (a value tree or text, see [`Sink`]), resolving the writer's schema
//! against the reader's.

use super::binary::Reader;
use super::encode::Encoder;
use super::sink::Sink;
use super::{CodecError, MAX_DEPTH, Path, Seg, UnionStyle, branch_name, json_to_value, type_label};
use crate::json::Json;
use crate::limits::Limit;
use crate::schema::{Name, NodeId, NodeKind, RecordSchema, Schema, SchemaNode};

/// Items that occupy no bytes (nulls, empty records) are not bounded by the input length;
/// this many of them may be decoded per datum.
const ZERO_SIZE_BUDGET: u64 = 100_000;

pub(crate) struct Decoder<'a> {
    w: &'a Schema,
    r: &'a Schema,
    style: UnionStyle,
    zero_budget: u64,
    /// Deepest nesting accepted (at most [`MAX_DEPTH`]).
    max_depth: usize,
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

/// The branch a union's data names: its index, read and checked against the branches.
fn read_branch(rd: &mut Reader<'_>, branches: &[NodeId]) -> Result<NodeId, String> {
    let at = rd.pos();
    let idx = rd.read_long()?;
    usize::try_from(idx)
        .ok()
        .and_then(|i| branches.get(i).copied())
        .ok_or_else(|| {
            format!(
                "union branch index {idx} at offset {at} is out of range (the union has {} branches)",
                branches.len()
            )
        })
}

/// The symbol an enum's data names: its index, read and checked against the symbols.
fn read_symbol<'s>(rd: &mut Reader<'_>, symbols: &'s [String]) -> Result<&'s String, String> {
    let at = rd.pos();
    let idx = rd.read_int()?;
    usize::try_from(idx)
        .ok()
        .and_then(|i| symbols.get(i))
        .ok_or_else(|| {
            format!(
                "enum index {idx} at offset {at} is out of range ({} symbols)",
                symbols.len()
            )
        })
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(w: &'a Schema, r: &'a Schema, style: UnionStyle, max_depth: usize) -> Self {
        Decoder {
            w,
            r,
            style,
            zero_budget: ZERO_SIZE_BUDGET,
            max_depth: max_depth.min(MAX_DEPTH),
        }
    }

    #[cold]
    #[inline(never)]
    fn too_deep(&self, wid: NodeId, path: &Path<'_>) -> CodecError {
        let mut e = path.err(
            self.wlabel(wid),
            format!(
                "data nested deeper than {} levels (max-json-depth)",
                self.max_depth
            ),
        );
        e.limit = Some(Limit::JsonDepth);
        e
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

    /// Read one datum of writer type `wid` as reader type `rid` into `sink`.
    ///
    /// A type read as itself takes [`Self::read_own`], anything else [`Self::read_resolved`];
    /// each recursion level costs one of their frames (this one is inlined).
    #[inline]
    pub(crate) fn read<S: Sink>(
        &mut self,
        sink: &mut S,
        rd: &mut Reader<'_>,
        wid: NodeId,
        rid: NodeId,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<S::Item, CodecError> {
        if depth > self.max_depth {
            return Err(self.too_deep(wid, path));
        }
        if std::ptr::eq(self.w, self.r) && wid == rid {
            self.read_own(sink, rd, wid, path, depth)
        } else {
            self.read_resolved(sink, rd, wid, rid, path, depth)
        }
    }

    /// [`Self::read`] of a writer type as a different reader type: resolution.
    #[inline(never)]
    fn read_resolved<S: Sink>(
        &mut self,
        sink: &mut S,
        rd: &mut Reader<'_>,
        wid: NodeId,
        rid: NodeId,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<S::Item, CodecError> {
        let (w, r) = (self.w, self.r);
        let wn = w.node(wid);
        let rn = r.node(rid);
        let io = |e: String| path.err(type_label(w, wid), e);

        if let NodeKind::Union { branches } = &wn.kind {
            let wb = read_branch(rd, branches).map_err(io)?;
            return self.read(sink, rd, wb, rid, path, depth + 1);
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
            if self.style == UnionStyle::Plain || matches!(r.node(rb).kind, NodeKind::Null) {
                return self.read(sink, rd, wid, rb, path, depth + 1);
            }
            // Tagged: {"<branch>": value}.
            let mut tagged = sink.object_begin(false);
            sink.object_key(&mut tagged, &branch_name(r, rb));
            let v = self.read(sink, rd, wid, rb, path, depth + 1)?;
            sink.object_value(&mut tagged, v);
            return Ok(sink.object_end(tagged));
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
            (NodeKind::Null, _) => sink.null(),
            (NodeKind::Boolean, _) => sink.boolean(rd.read_bool().map_err(io)?),
            (NodeKind::Int, NodeKind::Int | NodeKind::Long) => {
                sink.long(i64::from(rd.read_int().map_err(io)?))
            }
            #[allow(clippy::cast_precision_loss)]
            (NodeKind::Int, NodeKind::Float) => sink.float(rd.read_int().map_err(io)? as f32),
            (NodeKind::Int, NodeKind::Double) => sink.double(f64::from(rd.read_int().map_err(io)?)),
            (NodeKind::Long, NodeKind::Long) => sink.long(rd.read_long().map_err(io)?),
            #[allow(clippy::cast_precision_loss)]
            (NodeKind::Long, NodeKind::Float) => sink.float(rd.read_long().map_err(io)? as f32),
            #[allow(clippy::cast_precision_loss)]
            (NodeKind::Long, NodeKind::Double) => sink.double(rd.read_long().map_err(io)? as f64),
            (NodeKind::Float, NodeKind::Float) => sink.float(rd.read_float().map_err(io)?),
            (NodeKind::Float, NodeKind::Double) => {
                sink.double(f64::from(rd.read_float().map_err(io)?))
            }
            (NodeKind::Double, _) => sink.double(rd.read_double().map_err(io)?),
            (NodeKind::String | NodeKind::Bytes, NodeKind::String) => {
                sink.string(rd.read_string().map_err(io)?)
            }
            (NodeKind::String | NodeKind::Bytes, NodeKind::Bytes) => {
                sink.latin1(rd.read_bytes().map_err(io)?)
            }
            (NodeKind::Fixed(wf), NodeKind::Fixed(rf)) => {
                if wf.size != rf.size {
                    return Err(mismatch());
                }
                sink.latin1(rd.take(wf.size).map_err(io)?)
            }
            (NodeKind::Enum(we), NodeKind::Enum(re)) => {
                let sym = read_symbol(rd, &we.symbols).map_err(io)?;
                if re.symbols.contains(sym) {
                    sink.symbol(sym)
                } else if let Some(d) = re.default.as_ref().filter(|d| re.symbols.contains(d)) {
                    sink.symbol(d)
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
                self.read_array(sink, rd, wid, (*wi, *ri), path, depth)?
            }
            (NodeKind::Map { values: wv }, NodeKind::Map { values: rv }) => {
                self.read_map(sink, rd, wid, (*wv, *rv), path, depth)?
            }
            (NodeKind::Record(wr), NodeKind::Record(rr)) => {
                self.read_record(sink, rd, (wid, wr), (rid, rr), path, depth)?
            }
            _ => return Err(mismatch()),
        })
    }

    /// [`Self::read`] of a type read as itself (no reader schema, the common case): what the
    /// resolution would give, without its checks. A union's branch is its own best branch, as
    /// a union holds no two branches of one unnamed type or of one full name.
    #[inline(never)]
    fn read_own<S: Sink>(
        &mut self,
        sink: &mut S,
        rd: &mut Reader<'_>,
        id: NodeId,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<S::Item, CodecError> {
        let w = self.w;
        let node = w.node(id);
        let io = |e: String| path.err(type_label(w, id), e);
        Ok(match &node.kind {
            NodeKind::Union { branches } => {
                let branch = read_branch(rd, branches).map_err(io)?;
                if self.style == UnionStyle::Plain || matches!(w.node(branch).kind, NodeKind::Null)
                {
                    return self.read(sink, rd, branch, branch, path, depth + 1);
                }
                // Tagged: {"<branch>": value}.
                let mut tagged = sink.object_begin(false);
                sink.object_key(&mut tagged, &branch_name(w, branch));
                let v = self.read(sink, rd, branch, branch, path, depth + 1)?;
                sink.object_value(&mut tagged, v);
                sink.object_end(tagged)
            }
            NodeKind::Null => sink.null(),
            NodeKind::Boolean => sink.boolean(rd.read_bool().map_err(io)?),
            NodeKind::Int => sink.long(i64::from(rd.read_int().map_err(io)?)),
            NodeKind::Long => sink.long(rd.read_long().map_err(io)?),
            NodeKind::Float => sink.float(rd.read_float().map_err(io)?),
            NodeKind::Double => sink.double(rd.read_double().map_err(io)?),
            NodeKind::String => sink.string(rd.read_string().map_err(io)?),
            NodeKind::Bytes => sink.latin1(rd.read_bytes().map_err(io)?),
            NodeKind::Fixed(fixed) => sink.latin1(rd.take(fixed.size).map_err(io)?),
            NodeKind::Enum(enumeration) => {
                sink.symbol(read_symbol(rd, &enumeration.symbols).map_err(io)?)
            }
            NodeKind::Array { items } => {
                self.read_array(sink, rd, id, (*items, *items), path, depth)?
            }
            NodeKind::Map { values } => {
                self.read_map(sink, rd, id, (*values, *values), path, depth)?
            }
            NodeKind::Record(record) => {
                self.read_record(sink, rd, (id, record), (id, record), path, depth)?
            }
        })
    }

    // The containers are decoded out of line: `read` recurses through them, so its own frame
    // is kept small (nesting is bounded by MAX_DEPTH, not by the stack size).

    /// Read the blocks of an array or map, calling `item` for each item.
    fn read_blocks(
        &mut self,
        rd: &mut Reader<'_>,
        wid: NodeId,
        path: &Path<'_>,
        mut item: impl FnMut(&mut Self, &mut Reader<'_>) -> Result<(), CodecError>,
    ) -> Result<(), CodecError> {
        loop {
            let raw = rd
                .read_block_count()
                .map_err(|e| path.err(self.wlabel(wid), e))?;
            if raw == 0 {
                return Ok(());
            }
            for _ in 0..self.count(raw, rd, path, wid)? {
                item(self, rd)?;
            }
        }
    }

    #[inline(never)]
    fn read_array<S: Sink>(
        &mut self,
        sink: &mut S,
        rd: &mut Reader<'_>,
        wid: NodeId,
        (wi, ri): (NodeId, NodeId),
        path: &Path<'_>,
        depth: usize,
    ) -> Result<S::Item, CodecError> {
        let mut out = sink.array_begin();
        let mut i = 0;
        self.read_blocks(rd, wid, path, |dec, rd| {
            let before = rd.pos();
            sink.array_next(&mut out);
            let v = dec.read(sink, rd, wi, ri, &path.child(Seg::Index(i)), depth + 1)?;
            dec.charge(before, rd, path, wid)?;
            sink.array_push(&mut out, v);
            i += 1;
            Ok(())
        })?;
        Ok(sink.array_end(out))
    }

    #[inline(never)]
    fn read_map<S: Sink>(
        &mut self,
        sink: &mut S,
        rd: &mut Reader<'_>,
        wid: NodeId,
        (wv, rv): (NodeId, NodeId),
        path: &Path<'_>,
        depth: usize,
    ) -> Result<S::Item, CodecError> {
        let w = self.w;
        let mut out = sink.object_begin(true);
        self.read_blocks(rd, wid, path, |dec, rd| {
            let k = rd
                .read_string()
                .map_err(|e| path.err(type_label(w, wid), e))?;
            sink.object_key(&mut out, k);
            let v = dec.read(sink, rd, wv, rv, &path.child(Seg::Key(k)), depth + 1)?;
            sink.object_value(&mut out, v);
            Ok(())
        })?;
        Ok(sink.object_end(out))
    }

    #[inline(never)]
    fn read_record<S: Sink>(
        &mut self,
        sink: &mut S,
        rd: &mut Reader<'_>,
        (wid, wr): (NodeId, &RecordSchema),
        (rid, rr): (NodeId, &RecordSchema),
        path: &Path<'_>,
        depth: usize,
    ) -> Result<S::Item, CodecError> {
        let (w, r) = (self.w, self.r);
        // The same fields: the writer's own record, or a reader record with the same field
        // names in the same order and no aliases (each writer field then lands on the reader
        // field at its own position, without searching per datum).
        let same_fields = (std::ptr::eq(w, r) && wid == rid
            || wr.fields.len() == rr.fields.len()
                && wr
                    .fields
                    .iter()
                    .zip(&rr.fields)
                    .all(|(wf, rf)| wf.name == rf.name))
            && wr.fields.iter().all(|f| f.aliases.is_empty())
            && rr.fields.iter().all(|f| f.aliases.is_empty());
        // Where each writer field goes among the reader's fields.
        let targets: Vec<Option<usize>> = if same_fields {
            Vec::new()
        } else {
            wr.fields
                .iter()
                .map(|wf| rr.field_position_or_alias(&wf.name))
                .collect()
        };
        let in_order = same_fields
            || (targets.len() == rr.fields.len()
                && targets.iter().enumerate().all(|(i, t)| *t == Some(i)));
        if in_order {
            // Straight through: the writer's fields are the reader's, in its order.
            let mut out = sink.object_begin(false);
            for (wf, rf) in wr.fields.iter().zip(&rr.fields) {
                sink.object_field(&mut out, &rf.name);
                let v = self.read(
                    sink,
                    rd,
                    wf.schema,
                    rf.schema,
                    &path.child(Seg::Field(&rf.name)),
                    depth + 1,
                )?;
                sink.object_value(&mut out, v);
            }
            return Ok(sink.object_end(out));
        }
        let mut slots: Vec<Option<S::Frag>> = std::iter::repeat_with(|| None)
            .take(rr.fields.len())
            .collect();
        for (wf, target) in wr.fields.iter().zip(targets) {
            match target.and_then(|i| rr.fields.get(i).map(|rf| (i, rf))) {
                Some((i, rf)) => {
                    let mark = sink.capture_begin();
                    let v = self.read(
                        sink,
                        rd,
                        wf.schema,
                        rf.schema,
                        &path.child(Seg::Field(&rf.name)),
                        depth + 1,
                    )?;
                    let frag = sink.capture(mark, v);
                    if let Some(s) = slots.get_mut(i) {
                        *s = Some(frag);
                    }
                }
                None => {
                    // Skip: decode the writer's value as itself and drop it.
                    let mut skip = Decoder {
                        w,
                        r: w,
                        style: self.style,
                        zero_budget: self.zero_budget,
                        max_depth: self.max_depth,
                    };
                    let mark = sink.capture_begin();
                    let v = skip.read(
                        sink,
                        rd,
                        wf.schema,
                        wf.schema,
                        &path.child(Seg::Field(&wf.name)),
                        depth + 1,
                    )?;
                    drop(sink.capture(mark, v));
                    self.zero_budget = skip.zero_budget;
                }
            }
        }
        let mut out = sink.object_begin(false);
        for (f, slot) in rr.fields.iter().zip(slots) {
            sink.object_field(&mut out, &f.name);
            let v = match slot {
                Some(frag) => sink.emit(frag),
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
                    self.default_value(sink, f.schema, d, &p, depth + 1)?
                }
            };
            sink.object_value(&mut out, v);
        }
        Ok(sink.object_end(out))
    }

    /// A reader field default in the output style: encode it with the reader schema (default
    /// rules), then decode it back.
    fn default_value<S: Sink>(
        &mut self,
        sink: &mut S,
        rid: NodeId,
        d: &Json,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<S::Item, CodecError> {
        let mut buf = Vec::new();
        Encoder::new(self.r, self.max_depth).encode(
            rid,
            &json_to_value(d),
            path,
            depth,
            true,
            &mut buf,
        )?;
        let mut rd = Reader::new(&buf);
        let mut dec = Decoder {
            w: self.r,
            r: self.r,
            style: self.style,
            zero_budget: self.zero_budget,
            max_depth: self.max_depth,
        };
        let v = dec.read(sink, &mut rd, rid, rid, path, depth)?;
        self.zero_budget = dec.zero_budget;
        Ok(v)
    }
}
