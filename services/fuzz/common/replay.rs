//! The services' fuzz bodies on stable, for the normal test suite (`services/*/tests/fuzz_bodies.rs`
//! include this file): every committed seed of a target (`services/fuzz/seeds/<target>`, which
//! also holds the inputs of the crashes fuzzing found, docs/fuzzing.md) is run, then random
//! mutations of the seeds for a bounded time (`FUZZ_BODIES_SECS`, default 1 second), each from a
//! printed seed so that a failure can be reproduced.

use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// The committed seeds of `target`, sorted by name.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path.display().to_string();
            (name, std::fs::read(&path).expect("a seed file"))
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// Runs `body` over the seeds of `target` (at least one must be accepted), then over mutations.
pub fn replay(target: &str, body: fn(&[u8]) -> bool) {
    let seeds = seeds(target);
    let accepted = seeds.iter().filter(|(_, data)| body(data)).count();
    assert!(accepted > 0, "{target}: no seed is accepted");
    let budget = std::env::var("FUZZ_BODIES_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs_f64);
    let start = Instant::now();
    let mut iteration: u64 = 0;
    while start.elapsed() < budget {
        iteration += 1;
        let seed = iteration.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut rng = Rng(seed);
        let (name, base) = &seeds[rng.below(seeds.len())];
        let mut data = base.clone();
        for _ in 0..=rng.below(8) {
            match rng.below(4) {
                0 if !data.is_empty() => {
                    let i = rng.below(data.len());
                    data[i] ^= 1 << rng.below(8);
                }
                1 => {
                    let i = rng.below(data.len() + 1);
                    data.insert(i, rng.next() as u8);
                }
                2 if !data.is_empty() => {
                    let i = rng.below(data.len());
                    data.remove(i);
                }
                _ if data.len() > 2 => {
                    let i = 2 + rng.below(data.len() - 2);
                    data[i] = [b'"', b'{', b'}', b'[', b']', b',', b'0', 0xff][rng.below(8)];
                }
                _ => {}
            }
        }
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(
            outcome.is_ok(),
            "{target}: a mutation (iteration seed {seed:#x}) of {name} panicked; input {data:?}"
        );
    }
}
