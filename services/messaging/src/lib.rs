//! The tributary messaging service: produce to and consume from Kafka over gRPC.
//!
//! Avro keys and values travel as JSON text; they are checked against and encoded with schemas
//! of the tributary registry ([`schemas`]) and framed as Confluent's serializers frame them
//! ([`avro`]), so Java and other Confluent clients read them unchanged. Consumers get them back
//! as JSON, with at-least-once delivery ([`consume`]). Topics and consumer groups are
//! administered through [`kafka`]. The same internals also serve a Kafka REST Proxy
//! compatible HTTP API ([`rest`]).

pub mod access;
pub mod avro;
pub mod config;
pub mod consume;
pub mod error;
pub mod grpc;
pub mod json_schema;
pub mod kafka;
pub mod metrics;
pub mod produce;
pub mod protobuf;
pub mod rest;
pub mod schemas;
pub mod startup;

pub use config::Settings;
pub use error::MessagingError;
pub use startup::Application;
pub use tributary_telemetry::shutdown_signal;
