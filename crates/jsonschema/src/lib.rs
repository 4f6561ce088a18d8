//! JSON Schema schemas as Confluent Schema Registry and its serializers use them.
//!
//! - [`JsonSchema::parse`] reads a schema (a JSON object or boolean) of draft 4, 6, 7, 2019-09
//!   or 2020-12 (by `$schema`; draft-07, Confluent's default, without one), checks it against its
//!   draft's meta-schema, resolves its `$ref`s from the schema itself and its references (by
//!   reference name, as Confluent's clients register them: `{"$ref": "other.json"}` with a
//!   reference named `other.json`), and compiles a validator of records. Every input is held to
//!   [`Budgets`] before it is parsed, and nothing is fetched: a `$ref` to a URL, a file or an
//!   unknown name is an error naming it.
//! - [`JsonSchema::canonical_string`] is the compact JSON Confluent stores and fingerprints;
//!   [`JsonSchema::normalized_string`] is Confluent's normalised form for `normalize=true`
//!   (see [`normalize`] for the rule and its source).
//! - [`JsonSchema::validate`] checks a record against the schema, naming the keyword and path of
//!   each issue.
//! - [`compat`] checks one schema against another by Confluent's JSON Schema rules, within a
//!   work budget.
//!
//! Guarantees: parsing, compiling, validating and comparing are bounded. Nesting is checked
//! before anything recursive sees a text; recursive schemas (self-references, cycles between
//! dependencies) make finite graphs that every walk follows from work lists or with cycle
//! guards; a compatibility check spends from a step budget and refuses to go deeper than a fixed
//! number of nested comparisons. This crate's own code has no panicking path (no `unwrap`, no indexing), and it does no I/O:
//! the validator is built without the `jsonschema` crate's HTTP and file retrievers.

pub mod compat;
mod model;
pub mod normalize;
mod schema;
mod uri;

pub use schema::{
    Budget, Budgets, DEFAULT_BASE_URI, Dependency, Draft, JsonSchema, MAX_ISSUES, SchemaError,
    ValidationIssue,
};
