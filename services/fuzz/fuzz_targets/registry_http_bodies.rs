//! Fuzz target `registry_http_bodies`: see `common/registry_http.rs` (the body) and docs/fuzzing.md.
#![cfg_attr(fuzzing, no_main)]

#[path = "../common/registry.rs"]
#[allow(dead_code)]
mod registry;

#[path = "../common/registry_http.rs"]
mod registry_http;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    registry_http::body(data);
});

/// Without libFuzzer: run the body over the files named on the command line.
#[cfg(not(fuzzing))]
fn main() {
    for path in std::env::args().skip(1) {
        match std::fs::read(&path) {
            Ok(data) => {
                let ok = registry_http::body(&data);
                println!("{path}: {}", if ok { "accepted" } else { "rejected" });
            }
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
