//! The messaging service's fuzz target (services/fuzz: `messaging_grpc_requests`) on stable: its
//! body over the committed seeds and mutations of them (see `services/fuzz/common/replay.rs`),
//! and the regression tests of what fuzzing found (docs/fuzzing.md, "Findings").

#[path = "../../fuzz/common/messaging_grpc.rs"]
mod messaging_grpc;
#[path = "../../fuzz/common/replay.rs"]
mod replay;

#[test]
fn messaging_grpc_requests_seeds_and_mutations() {
    replay::replay("messaging_grpc_requests", messaging_grpc::body);
}
