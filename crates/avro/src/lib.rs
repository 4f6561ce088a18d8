//! Avro schemas exactly as Java Avro 1.11 and Confluent Schema Registry see them.
//!
//! This crate is pure (no I/O). Its guarantee is behavioural fidelity to the Java stack that
//! Confluent Schema Registry is built on:
//!
//! - **Parsing** ([`schema::Schema::parse`]) accepts and rejects what Java Avro 1.11's
//!   `Schema.Parser` accepts and rejects — name rules, namespace inheritance, definition before
//!   use, no redefinition, union restrictions, default validation, Jackson's JSON dialect
//!   (comments allowed, trailing content ignored) — and resolves named types from referenced
//!   schemas the way Confluent does.
//! - **Printing** ([`schema::Schema::canonical_string`]) produces byte for byte what Java's
//!   `Schema.toString()` produces (Confluent's `canonicalString()`, which is what it stores and
//!   how it decides two schemas are "the same"), and [`schema::Schema::normalized_string`]
//!   reproduces Confluent's `normalize=true` form.
//! - **Compatibility** ([`compat::can_read`], [`compat::check`]) judges the way Java's
//!   `org.apache.avro.SchemaCompatibility` does, returning every incompatibility with its
//!   location, and applies compatibility levels the way Confluent does.
//!
//! The schema model ([`schema::SchemaNode`] in an arena, named types shared by [`schema::NodeId`])
//! is also walked by the datum codec:
//!
//! - **Wire format** ([`wire`]): Confluent's framing (magic byte, big-endian schema id).
//! - **Codec** ([`codec`]): JSON ↔ Avro binary guided by a schema, accepting Avro's JSON encoding
//!   (tagged unions, ISO-8859-1 bytes) and friendlier forms, and projecting data onto a reader
//!   schema with Avro's resolution rules.
//!
//! Inputs are never trusted: no input makes these functions panic, and JSON nesting is bounded
//! ([`json::MAX_DEPTH`]) so hostile input can't exhaust the stack. Parsing, printing,
//! normalization and the codec take time linear (or n log n) in their input; everything a
//! request can ask of them (sizes, counts, nesting, the work of default validation and of
//! compatibility checks) is bounded by a budget of [`limits::Limits`].

pub mod codec;
pub mod compat;
pub mod json;
pub mod limits;
pub mod schema;
pub mod wire;

pub use codec::{CodecError, UnionStyle};
pub use compat::{CompatibilityLevel, Incompatibility, IncompatibilityKind};
pub use limits::{Limit, LimitExceeded, Limits};
pub use schema::{Schema, SchemaError};
pub use wire::FrameError;
