//! Fuzz target: JSON text -> Avro -> JSON -> Avro, for a set of schemas.
#![cfg_attr(fuzzing, no_main)]

#[path = "../common/bodies.rs"]
#[allow(dead_code)]
mod bodies;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bodies::json_to_avro(data);
});

/// Without libFuzzer: run the body over the files named on the command line.
#[cfg(not(fuzzing))]
fn main() {
    for path in std::env::args().skip(1) {
        match std::fs::read(&path) {
            Ok(data) => {
                let ok = bodies::json_to_avro(&data);
                println!("{path}: {}", if ok { "accepted" } else { "rejected" });
            }
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
