//! The benches' records: one 10-field Avro schema and a deterministic generator of its records,
//! the `note` padded to reach a size. `bench/python/alternatives.py` generates the same records
//! (keep the two in step).

/// The Avro schema of every bench record.
pub const SCHEMA: &str = r#"{"type":"record","name":"Event","namespace":"dev.tributary.bench","fields":[
{"name":"id","type":"long"},
{"name":"ts","type":"long"},
{"name":"user","type":"string"},
{"name":"amount","type":"double"},
{"name":"count","type":"int"},
{"name":"active","type":"boolean"},
{"name":"country","type":"string"},
{"name":"device","type":["null","string"],"default":null},
{"name":"score","type":"float"},
{"name":"note","type":"string"}]}"#;

/// The characters `note` cycles through, starting at record `i`'s `i % 36`.
const NOTE_ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

/// Record `i` as a JSON value, its `note` `note_len` characters long.
pub fn record_value(i: usize, note_len: usize) -> serde_json::Value {
    Records::new(note_len).value(i)
}

/// The generator of records whose `note` is `note_len` characters long: cheap enough per record
/// (a slice of a precomputed cycle of the alphabet for the note) that a bench can build each
/// record while it sends, as an application builds its own.
#[derive(Debug, Clone)]
pub struct Records {
    note_len: usize,
    /// The alphabet repeated to `note_len + 36` characters.
    cycle: String,
}

impl Records {
    /// Records with a note of `note_len` characters.
    pub fn new(note_len: usize) -> Self {
        let cycle = NOTE_ALPHABET
            .chars()
            .cycle()
            .take(note_len + NOTE_ALPHABET.len())
            .collect();
        Self { note_len, cycle }
    }

    /// Record `i`.
    pub fn value(&self, i: usize) -> serde_json::Value {
        let start = i % NOTE_ALPHABET.len();
        let note = &self.cycle[start..start + self.note_len];
        serde_json::json!({
            "id": i as i64,
            "ts": 1_764_000_000_000_i64 + i as i64,
            "user": user(i),
            "amount": (i % 10_000) as f64 / 100.0,
            "count": (i % 1000) as i32,
            "active": i.is_multiple_of(2),
            "country": "NL",
            "device": if i.is_multiple_of(3) { serde_json::Value::Null } else { serde_json::json!("android") },
            "score": (i % 100) as f64 / 10.0,
            "note": note,
        })
    }
}

/// Record `i`'s `user`, also its key where records are keyed.
pub fn user(i: usize) -> String {
    format!("user-{:06}", i % 100_000)
}

/// Record `i` as JSON text.
pub fn record_json(i: usize, note_len: usize) -> String {
    record_value(i, note_len).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_cycles_the_alphabet_from_the_records_position() {
        let record = record_value(37, 5);
        assert_eq!(record["note"], "bcdef");
        assert_eq!(record["user"], "user-000037");
        assert_eq!(record["device"], "android");
        assert_eq!(record_value(3, 0)["device"], serde_json::Value::Null);
        assert_eq!(
            Records::new(40).value(35)["note"].as_str().map(str::len),
            Some(40)
        );
    }
}
