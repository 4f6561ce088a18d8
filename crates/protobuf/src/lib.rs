//! Protobuf schemas as Confluent Schema Registry and its serializers use them.
//!
//! - [`ProtoSchema::parse`] compiles a schema, given as `.proto` text or as a base64-encoded
//!   `FileDescriptorProto` (what Confluent's serializers register), with `protox`, resolving its
//!   imports from the schema's references and from the files every Confluent registry knows
//!   without registration (google/protobuf, google/type, confluent/meta.proto,
//!   confluent/type/decimal.proto). Every input is held to [`Budgets`] before and after it is
//!   compiled, so no schema costs unbounded time, memory or stack.
//! - [`print`](mod@print) writes a compiled file back as `.proto` text: the canonical form stored and
//!   fingerprinted, and the normalised form (`normalize=true`) that makes equal schemas equal text.
//! - [`compat`] checks one schema against another by Confluent's Protobuf rules.
//! - [`wire`] reads and writes the message-index array of Confluent's framing.
//! - [`json`] converts records between Protobuf's binary encoding and its canonical JSON mapping.

pub mod compat;
pub mod json;
pub mod print;
mod schema;
pub mod wire;

pub use prost_reflect::{DescriptorPool, FileDescriptor, MessageDescriptor};
pub use schema::{
    Budget, Budgets, Dependency, ProtoError, ProtoSchema, ROOT_FILE_NAME, is_builtin,
};
