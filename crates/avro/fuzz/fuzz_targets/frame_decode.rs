//! Fuzz target: Confluent frame -> Avro datum -> JSON, for a set of schemas.
#![cfg_attr(fuzzing, no_main)]

#[path = "../common/bodies.rs"]
#[allow(dead_code)]
mod bodies;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bodies::frame_decode(data);
});

/// Without libFuzzer: run the body over the files named on the command line.
#[cfg(not(fuzzing))]
fn main() {
    for path in std::env::args().skip(1) {
        match std::fs::read(&path) {
            Ok(data) => {
                let ok = bodies::frame_decode(&data);
                println!("{path}: {}", if ok { "accepted" } else { "rejected" });
            }
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
