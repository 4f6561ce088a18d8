//! Fuzz target `registry_grpc_requests`: see `common/registry_grpc.rs` (the body) and docs/fuzzing.md.
#![cfg_attr(fuzzing, no_main)]

#[path = "../common/registry.rs"]
#[allow(dead_code)]
mod registry;

#[path = "../common/registry_grpc.rs"]
mod registry_grpc;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    registry_grpc::body(data);
});

/// Without libFuzzer: run the body over the files named on the command line.
#[cfg(not(fuzzing))]
fn main() {
    for path in std::env::args().skip(1) {
        match std::fs::read(&path) {
            Ok(data) => {
                let ok = registry_grpc::body(&data);
                println!("{path}: {}", if ok { "accepted" } else { "rejected" });
            }
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
