//! The tributary schema registry: Avro schemas under subjects, with Confluent Schema Registry's
//! semantics (global immutable ids, per-subject versions, seven compatibility levels, modes,
//! references, soft and permanent deletes), served over gRPC and over Confluent's HTTP API (so
//! Kafka clients' schema registry clients work unchanged; see [`http`]), and stored in Postgres.
//!
//! The process is stateless: any number of replicas may share one database. See [`registry`]
//! for what holds across replicas, and [`events`] and [`listener`] for how their caches stay
//! fresh.

pub mod access;
pub mod coalesce;
pub mod compatibility;
pub mod config;
pub mod error;
pub mod events;
pub mod group_commit;
pub mod grpc;
pub mod http;
pub mod listener;
pub mod model;
pub mod per_core;
pub mod registry;
pub mod schema_type;
pub mod startup;
pub mod store;

pub use config::Settings;
pub use error::RegistryError;
pub use startup::Application;
pub use tributary_telemetry::shutdown_signal;
