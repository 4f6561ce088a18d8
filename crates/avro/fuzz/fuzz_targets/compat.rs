//! Fuzz target: two schema texts -> compatibility both ways through one budgeted
//! `compat::Checker`, and `compat::check` at a level.
#![cfg_attr(fuzzing, no_main)]

#[path = "../common/schema_bodies.rs"]
#[allow(dead_code)]
mod schema_bodies;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    schema_bodies::compat(data);
});

/// Without libFuzzer: run the body over the files named on the command line.
#[cfg(not(fuzzing))]
fn main() {
    for path in std::env::args().skip(1) {
        match std::fs::read(&path) {
            Ok(data) => {
                let ok = schema_bodies::compat(&data);
                println!("{path}: {}", if ok { "accepted" } else { "rejected" });
            }
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
