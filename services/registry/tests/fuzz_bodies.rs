//! The registry's fuzz targets (services/fuzz: `registry_http_bodies`, `registry_grpc_requests`)
//! on stable: their bodies over the committed seeds and mutations of them (see
//! `services/fuzz/common/replay.rs`), and the regression tests of what fuzzing found
//! (docs/fuzzing.md, "Findings").

#[path = "../../fuzz/common/registry.rs"]
#[allow(dead_code)]
mod registry;
#[path = "../../fuzz/common/registry_grpc.rs"]
mod registry_grpc;
#[path = "../../fuzz/common/registry_http.rs"]
mod registry_http;
#[path = "../../fuzz/common/replay.rs"]
mod replay;

#[test]
fn registry_http_bodies_seeds_and_mutations() {
    replay::replay("registry_http_bodies", registry_http::body);
}

#[test]
fn registry_grpc_requests_seeds_and_mutations() {
    replay::replay("registry_grpc_requests", registry_grpc::body);
}
