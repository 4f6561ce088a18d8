//! Fuzz target: Avro binary -> JSON text (and value) with a writer and a reader
//! schema, schema resolution included, within the budgets.
#![cfg_attr(fuzzing, no_main)]

#[path = "../common/bodies.rs"]
#[allow(dead_code)]
mod bodies;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bodies::avro_to_json(data);
});

/// Without libFuzzer: run the body over the files named on the command line.
#[cfg(not(fuzzing))]
fn main() {
    for path in std::env::args().skip(1) {
        match std::fs::read(&path) {
            Ok(data) => {
                let ok = bodies::avro_to_json(&data);
                println!("{path}: {}", if ok { "accepted" } else { "rejected" });
            }
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
