//! Fuzz target: schema text (with references) -> parse within the budgets -> canonical,
//! resolved and normalized strings, Parsing Canonical Form and fingerprint, each parsed again.
#![cfg_attr(fuzzing, no_main)]

#[path = "../common/schema_bodies.rs"]
#[allow(dead_code)]
mod schema_bodies;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    schema_bodies::schema_parse(data);
});

/// Without libFuzzer: run the body over the files named on the command line.
#[cfg(not(fuzzing))]
fn main() {
    for path in std::env::args().skip(1) {
        match std::fs::read(&path) {
            Ok(data) => {
                let ok = schema_bodies::schema_parse(&data);
                println!("{path}: {}", if ok { "accepted" } else { "rejected" });
            }
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
