//! Avro's Parsing Canonical Form and its 64-bit Rabin fingerprint, as Java Avro 1.11's
//! `SchemaNormalization.toParsingForm` and `parsingFingerprint64` compute them.
//!
//! The form keeps what matters to reading data: `type`, `name` (full, without `namespace`),
//! `fields`, `symbols`, `items`, `values`, `size`, in that order. Everything else goes, logical
//! types included: a `timestamp-millis` is `"long"`, a `decimal` its `bytes` or its fixed.
//! (The Rust `apache-avro` crate writes a logical type as `{"type":"long"}` and keeps a
//! decimal's `precision` and `scale`, so its form and fingerprint differ for schemas with
//! logical types; Java is the reference here, see docs/avro-oracle.md.)

use std::collections::HashSet;

use super::{NodeId, NodeKind, Schema};
use crate::json::write_string;

/// Java's `toParsingForm` of the sub-schema at `id`: named types in full the first time, by
/// full name after.
pub(crate) fn parsing_form(schema: &Schema, id: NodeId) -> String {
    let mut out = String::new();
    let mut seen = HashSet::new();
    build(schema, id, &mut seen, &mut out);
    out
}

fn build(schema: &Schema, id: NodeId, seen: &mut HashSet<NodeId>, out: &mut String) {
    let node = schema.node(id);
    match &node.kind {
        NodeKind::Union { branches } => {
            out.push('[');
            for (i, b) in branches.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                build(schema, *b, seen, out);
            }
            out.push(']');
        }
        NodeKind::Array { items } => {
            out.push_str("{\"type\":\"array\",\"items\":");
            build(schema, *items, seen, out);
            out.push('}');
        }
        NodeKind::Map { values } => {
            out.push_str("{\"type\":\"map\",\"values\":");
            build(schema, *values, seen, out);
            out.push('}');
        }
        NodeKind::Record(_) | NodeKind::Enum(_) | NodeKind::Fixed(_) => {
            let full = node.java_full_name();
            if !seen.insert(id) {
                write_string(&full, out);
                return;
            }
            out.push_str("{\"name\":");
            write_string(&full, out);
            out.push_str(",\"type\":");
            write_string(node.type_().name(), out);
            match &node.kind {
                NodeKind::Enum(e) => {
                    out.push_str(",\"symbols\":[");
                    for (i, s) in e.symbols.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        write_string(s, out);
                    }
                    out.push(']');
                }
                NodeKind::Fixed(f) => {
                    out.push_str(",\"size\":");
                    out.push_str(&f.size.to_string());
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
                        build(schema, f.schema, seen, out);
                        out.push('}');
                    }
                    out.push(']');
                }
                _ => {}
            }
            out.push('}');
        }
        _ => write_string(node.type_().name(), out),
    }
}

/// The empty fingerprint of Avro's CRC-64 (`SchemaNormalization.EMPTY64`).
const EMPTY64: u64 = 0xc15d_213a_a4d7_a795;

const fn fp_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut fp = i as u64;
        let mut j = 0;
        while j < 8 {
            fp = (fp >> 1) ^ (EMPTY64 & (0u64.wrapping_sub(fp & 1)));
            j += 1;
        }
        table[i] = fp;
        i += 1;
    }
    table
}

static FP_TABLE: [u64; 256] = fp_table();

/// Avro's 64-bit Rabin fingerprint (CRC-64-AVRO) of `data` (Java's
/// `SchemaNormalization.fingerprint64`).
pub fn rabin_fingerprint(data: &[u8]) -> u64 {
    let mut fp = EMPTY64;
    for b in data {
        let index = ((fp ^ u64::from(*b)) & 0xff) as u8;
        fp = (fp >> 8) ^ FP_TABLE[usize::from(index)];
    }
    fp
}
