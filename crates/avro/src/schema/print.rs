//! Printing a schema the way Java Avro 1.11's `Schema.toJson` does.
//!
//! Key order: records `type, name, namespace, doc, fields, <props>, aliases`; fields
//! `name, type, doc, default, order, aliases, <props>`; enums
//! `type, name, namespace, doc, symbols, default, <props>, aliases`; fixed
//! `type, name, namespace, doc, size, <props>, aliases`; arrays `type, items, <props>`; maps
//! `type, values, <props>`; primitives with properties `type, <props>`, without: `"int"`.
//!
//! A named type is written in full the first time it is met and by name afterwards; the name is
//! written relative to the namespace of the enclosing record (Java's `Name.getQualified`). A
//! `namespace` key is written only when it differs from the enclosing record's namespace, and as
//! `""` when a type in the null namespace sits inside a namespaced record.

use std::collections::HashSet;

use super::{Name, NodeId, NodeKind, Order, Schema};
use crate::json::{Object, write_string};

struct Printer<'a> {
    schema: &'a Schema,
    known: HashSet<String>,
    space: Option<String>,
    out: String,
}

/// Java's `toString(referencedSchemas, false)` with every type from a reference known.
pub(crate) fn canonical(schema: &Schema) -> String {
    let known = schema
        .named
        .iter()
        .filter(|e| e.from_reference)
        .map(|e| e.full_name.clone())
        .collect();
    print(schema, schema.root, known)
}

/// Java's `toString()` of the sub-schema at `id`.
pub(crate) fn fragment(schema: &Schema, id: NodeId) -> String {
    print(schema, id, HashSet::new())
}

fn print(schema: &Schema, id: NodeId, known: HashSet<String>) -> String {
    let mut p = Printer {
        schema,
        known,
        space: None,
        out: String::new(),
    };
    p.write(id);
    p.out
}

impl Printer<'_> {
    fn key(&mut self, first: &mut bool, k: &str) {
        if !*first {
            self.out.push(',');
        }
        *first = false;
        write_string(k, &mut self.out);
        self.out.push(':');
    }

    fn str_field(&mut self, first: &mut bool, k: &str, v: &str) {
        self.key(first, k);
        write_string(v, &mut self.out);
    }

    fn props(&mut self, first: &mut bool, props: &Object) {
        for (k, v) in props.iter() {
            self.key(first, k);
            v.write_jackson(&mut self.out);
        }
    }

    /// Java's `Name.writeName`.
    fn name(&mut self, first: &mut bool, name: &Name) {
        self.str_field(first, "name", &name.name);
        match (&name.namespace, &self.space) {
            (Some(ns), current) if Some(ns) != current.as_ref() => {
                let ns = ns.clone();
                self.str_field(first, "namespace", &ns);
            }
            (None, Some(_)) => self.str_field(first, "namespace", ""),
            _ => {}
        }
    }

    fn aliases(&mut self, first: &mut bool, name: &Name, aliases: &[Name]) {
        if aliases.is_empty() {
            return;
        }
        self.key(first, "aliases");
        self.out.push('[');
        for (i, a) in aliases.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            write_string(&a.qualified(name.namespace()), &mut self.out);
        }
        self.out.push(']');
    }

    /// Java's `writeNameRef`: true when the type was written by name.
    fn name_ref(&mut self, name: &Name) -> bool {
        let full = name.full_name();
        if self.known.contains(&full) {
            let q = name.qualified(self.space.as_deref());
            write_string(&q, &mut self.out);
            true
        } else {
            self.known.insert(full);
            false
        }
    }

    fn write(&mut self, id: NodeId) {
        let schema = self.schema;
        let node = schema.node(id);
        let mut first = true;
        match &node.kind {
            NodeKind::Record(r) => {
                if self.name_ref(&r.name) {
                    return;
                }
                let saved = self.space.clone();
                self.out.push('{');
                self.str_field(
                    &mut first,
                    "type",
                    if r.is_error { "error" } else { "record" },
                );
                self.name(&mut first, &r.name);
                self.space = r.name.namespace.clone();
                if let Some(doc) = &r.doc {
                    self.str_field(&mut first, "doc", doc);
                }
                self.key(&mut first, "fields");
                self.out.push('[');
                for (i, f) in r.fields.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    let mut ff = true;
                    self.out.push('{');
                    self.str_field(&mut ff, "name", &f.name);
                    self.key(&mut ff, "type");
                    self.write(f.schema);
                    if let Some(doc) = &f.doc {
                        self.str_field(&mut ff, "doc", doc);
                    }
                    if let Some(d) = &f.default {
                        self.key(&mut ff, "default");
                        d.write_jackson(&mut self.out);
                    }
                    if f.order != Order::Ascending {
                        self.str_field(&mut ff, "order", f.order.as_str());
                    }
                    if !f.aliases.is_empty() {
                        self.key(&mut ff, "aliases");
                        self.out.push('[');
                        for (j, a) in f.aliases.iter().enumerate() {
                            if j > 0 {
                                self.out.push(',');
                            }
                            write_string(a, &mut self.out);
                        }
                        self.out.push(']');
                    }
                    self.props(&mut ff, &f.props);
                    self.out.push('}');
                }
                self.out.push(']');
                self.props(&mut first, &node.props);
                self.aliases(&mut first, &r.name, &r.aliases);
                self.out.push('}');
                self.space = saved;
            }
            NodeKind::Enum(e) => {
                if self.name_ref(&e.name) {
                    return;
                }
                self.out.push('{');
                self.str_field(&mut first, "type", "enum");
                self.name(&mut first, &e.name);
                if let Some(doc) = &e.doc {
                    self.str_field(&mut first, "doc", doc);
                }
                self.key(&mut first, "symbols");
                self.out.push('[');
                for (i, s) in e.symbols.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    write_string(s, &mut self.out);
                }
                self.out.push(']');
                if let Some(d) = &e.default {
                    self.str_field(&mut first, "default", d);
                }
                self.props(&mut first, &node.props);
                self.aliases(&mut first, &e.name, &e.aliases);
                self.out.push('}');
            }
            NodeKind::Fixed(f) => {
                if self.name_ref(&f.name) {
                    return;
                }
                self.out.push('{');
                self.str_field(&mut first, "type", "fixed");
                self.name(&mut first, &f.name);
                if let Some(doc) = &f.doc {
                    self.str_field(&mut first, "doc", doc);
                }
                self.key(&mut first, "size");
                self.out.push_str(&f.size.to_string());
                self.props(&mut first, &node.props);
                self.aliases(&mut first, &f.name, &f.aliases);
                self.out.push('}');
            }
            NodeKind::Array { items } => {
                self.out.push('{');
                self.str_field(&mut first, "type", "array");
                self.key(&mut first, "items");
                self.write(*items);
                self.props(&mut first, &node.props);
                self.out.push('}');
            }
            NodeKind::Map { values } => {
                self.out.push('{');
                self.str_field(&mut first, "type", "map");
                self.key(&mut first, "values");
                self.write(*values);
                self.props(&mut first, &node.props);
                self.out.push('}');
            }
            NodeKind::Union { branches } => {
                self.out.push('[');
                for (i, b) in branches.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.write(*b);
                }
                self.out.push(']');
            }
            _ => {
                let name = node.type_().name();
                if node.props.is_empty() {
                    write_string(name, &mut self.out);
                } else {
                    self.out.push('{');
                    self.str_field(&mut first, "type", name);
                    self.props(&mut first, &node.props);
                    self.out.push('}');
                }
            }
        }
    }
}
