//! Fuzz target: apache-avro as a differential oracle. The input drives the generator of
//! `common/oracle.rs` (a writer record, data, readers evolved from it, as the seeded test
//! `crates/avro/tests/avro_oracle.rs` does); any disagreement outside the documented ones
//! (docs/avro-oracle.md) is a crash.
#![cfg_attr(fuzzing, no_main)]

#[path = "../common/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use arbitrary::Unstructured;

/// One case; `Err` with the first disagreement. Returns whether a schema was generated.
fn case(data: &[u8]) -> Result<bool, String> {
    let mut tally = oracle::Tally::default();
    oracle::run_case(&mut Unstructured::new(data), &mut tally);
    match tally.failures.into_iter().next() {
        Some(failure) => Err(failure),
        None => Ok(tally.schemas > 0),
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(failure) = case(data) {
        panic!("tributary-avro and apache-avro disagree: {failure}");
    }
});

/// Without libFuzzer: run the case over the files named on the command line.
#[cfg(not(fuzzing))]
fn main() {
    for path in std::env::args().skip(1) {
        match std::fs::read(&path).map(|data| case(&data)) {
            Ok(Ok(generated)) => println!("{path}: agree (schema generated: {generated})"),
            Ok(Err(failure)) => println!("{path}: DISAGREE: {failure}"),
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
