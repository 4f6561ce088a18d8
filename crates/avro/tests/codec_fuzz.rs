//! The fuzz targets' bodies (crates/avro/fuzz) over random and mutated inputs, on stable:
//! the codec's (`common/bodies.rs`) and the schema parser's and compatibility's
//! (`common/schema_bodies.rs`). Every committed seed (`fuzz/seeds/<target>`, which holds the
//! inputs of the crashes fuzzing found, docs/fuzzing.md) is replayed first.
//!
//! Each test runs for a bounded time (`CODEC_FUZZ_SECS`, default 2 seconds) with a fixed seed
//! per iteration so failures are reproducible from the printed input.

#[path = "../fuzz/common/bodies.rs"]
mod bodies;
#[path = "../fuzz/common/schema_bodies.rs"]
mod schema_bodies;

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

fn budget() -> Duration {
    let secs = std::env::var("CODEC_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

const INTERESTING: &[u8] = &[0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, 0xfe, 0x81, 0x3f, 0x40];
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "null",
    "true",
    "0",
    "-1",
    "1e400",
    "1.5",
    "\"NaN\"",
    "9223372036854775808",
    "{\"string\":",
    "{\"int\":",
    "\"\\u00ff\"",
    "\"\\ud800\"",
    "\"A\"",
    "\"2024-01-01\"",
    "\"12:00:00\"",
    "[[[[[[[[",
    "{\"a\":{\"a\":{\"a\":",
    "\"k\":",
    " ",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, json: bool) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                if json {
                    let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                    input.splice(i..i, t.iter().copied());
                } else {
                    input.insert(i, (rng.next() & 0xff) as u8);
                }
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(8)).min(len);
                input.drain(i..j);
            }
            4 => input.truncate(rng.below(len + 1)),
            5 if len > 0 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(16)).min(len);
                let chunk: Vec<u8> = input[i..j].to_vec();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, chunk);
            }
            _ => {
                let i = rng.below(len + 1);
                input.insert(i, INTERESTING[rng.below(INTERESTING.len())]);
            }
        }
    }
}

fn seeds_frames() -> Vec<Vec<u8>> {
    let schemas = bodies::schemas();
    bodies::SCHEMAS
        .iter()
        .zip(schemas)
        .enumerate()
        .map(|(i, ((_, _, sample), (schema, _)))| {
            let avro = tributary_avro::codec::json_to_avro(schema, sample)
                .unwrap_or_else(|e| panic!("sample {sample}: {e}"));
            tributary_avro::wire::encode(u32::try_from(i).unwrap_or(0), &avro)
        })
        .collect()
}

fn seeds_json() -> Vec<Vec<u8>> {
    bodies::SCHEMAS
        .iter()
        .enumerate()
        .map(|(i, (_, _, sample))| {
            let mut v = vec![u8::try_from(i).unwrap_or(0)];
            v.extend_from_slice(sample.as_bytes());
            v
        })
        .collect()
}

/// The committed seed corpus of a target (accepted or not: a crash's input stays there).
fn committed_seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    paths.sort();
    paths
        .iter()
        .map(|path| std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// Runs `body` over the committed seeds of `name`, then over `seeds` (each must be accepted)
/// and their mutations for the time budget.
fn run(name: &str, seeds: &[Vec<u8>], json: bool, body: fn(&[u8]) -> bool) {
    for s in committed_seeds(name) {
        body(&s);
    }
    for s in seeds {
        assert!(body(s), "seed {:?} is rejected", String::from_utf8_lossy(s));
    }
    let mut accepted = 0u64;
    let start = Instant::now();
    let mut iterations = 0u64;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    while start.elapsed() < budget() || iterations < 1000 {
        let seed = rng.next() | 1;
        let mut r = Rng(seed);
        let mut input = if r.below(8) == 0 {
            (0..r.below(64)).map(|_| (r.next() & 0xff) as u8).collect()
        } else {
            seeds[r.below(seeds.len())].clone()
        };
        mutate(&mut r, &mut input, json);
        match std::panic::catch_unwind(|| body(&input)) {
            Ok(ok) => accepted += u64::from(ok),
            Err(_) => panic!(
                "{name}: body panicked for input {input:02x?} ({:?})",
                String::from_utf8_lossy(&input)
            ),
        }
        iterations += 1;
    }
    eprintln!(
        "{name}: {iterations} inputs in {:?}, {accepted} accepted",
        start.elapsed()
    );
    // the mutations must reach past the first checks often enough (1 in 100: both texts of a
    // compat input must parse) to exercise the code behind them
    assert!(
        accepted * 100 > iterations,
        "{name}: only {accepted} of {iterations} accepted"
    );
}

#[test]
fn seeds_are_valid() {
    assert_eq!(seeds_frames().len(), bodies::SCHEMAS.len());
    for f in seeds_frames() {
        assert!(bodies::frame_decode(&f));
    }
}

#[test]
fn fuzz_frame_decode() {
    run("frame_decode", &seeds_frames(), false, bodies::frame_decode);
}

#[test]
fn fuzz_json_to_avro() {
    run("json_to_avro", &seeds_json(), true, bodies::json_to_avro);
}

/// Avro data of the frame seeds, each with its own writer as reader, then read as each reader.
fn seeds_avro() -> Vec<Vec<u8>> {
    let readers = u8::try_from(bodies::readers().len()).unwrap_or(u8::MAX);
    seeds_frames()
        .iter()
        .enumerate()
        .flat_map(|(i, frame)| {
            let writer = u8::try_from(i).unwrap_or(0);
            (0..readers).map(move |reader| {
                let mut v = vec![writer, reader];
                v.extend_from_slice(&frame[5..]);
                v
            })
        })
        .filter(|input| bodies::avro_to_json(input))
        .collect()
}

#[test]
fn fuzz_avro_to_json() {
    let seeds = seeds_avro();
    assert!(seeds.len() > bodies::SCHEMAS.len(), "{} seeds", seeds.len());
    run("avro_to_json", &seeds, false, bodies::avro_to_json);
}

/// Schema texts (after the flags byte), each alone and then with the next as its pair.
fn seeds_schemas(pairs: bool) -> Vec<Vec<u8>> {
    let texts: Vec<&str> = bodies::SCHEMAS
        .iter()
        .map(|(text, _, _)| *text)
        .chain(bodies::READERS.iter().copied())
        .collect();
    texts
        .iter()
        .zip(texts.iter().cycle().skip(1))
        .map(|(a, b)| {
            let mut v = vec![0x12];
            v.extend_from_slice(a.as_bytes());
            if pairs {
                v.push(0);
                v.extend_from_slice(b.as_bytes());
            }
            v
        })
        .collect()
}

#[test]
fn fuzz_schema_parse() {
    run(
        "schema_parse",
        &seeds_schemas(false),
        true,
        schema_bodies::schema_parse,
    );
}

#[test]
fn fuzz_compat() {
    run("compat", &seeds_schemas(true), true, schema_bodies::compat);
}
