//! Generated Rust code for the tributary gRPC APIs. The `.proto` files under the workspace's
//! `proto/` folder are the only source of truth; this crate compiles them. One message type,
//! `messaging::v1::RecordBatch`, is written by hand with the same wire form, so that the
//! messaging service can send records it has encoded itself (see [`record_batch`]).

pub mod record_batch;

/// `tributary.registry.v1`: the schema registry API.
pub mod registry {
    /// Version 1.
    pub mod v1 {
        #![allow(missing_docs, clippy::all, missing_debug_implementations)]
        tonic::include_proto!("tributary.registry.v1");
    }
}

/// `tributary.messaging.v1`: the Kafka produce, consume and admin API.
pub mod messaging {
    /// Version 1.
    pub mod v1 {
        #![allow(missing_docs, clippy::all, missing_debug_implementations)]
        tonic::include_proto!("tributary.messaging.v1");
        pub use crate::record_batch::RecordBatch;
    }
}

/// The encoded `FileDescriptorSet` of every tributary proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("tributary_descriptor");
