//! JSON string literals, written as `serde_json` writes them (the same bytes), but skipping
//! over the common case, text with nothing to escape, 32 bytes at a time (then eight): for long
//! strings, serde_json's byte-by-byte escaper was half of the Avro → JSON decoder's time.
//!
//! `serde_json` escapes `"` and `\` with a backslash, the control characters `\b`, `\t`, `\n`,
//! `\f`, `\r` with their short forms, the other bytes below 0x20 as `\u00XX` (lowercase hex),
//! and writes everything else (DEL and all non-ASCII text included) as it is.

/// The escape of a byte, if it needs one (serde_json's table).
fn escape_of(byte: u8) -> Option<&'static [u8]> {
    Some(match byte {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        0x08 => b"\\b",
        0x09 => b"\\t",
        0x0a => b"\\n",
        0x0c => b"\\f",
        0x0d => b"\\r",
        0x00..=0x1f => return Some(&CONTROL[usize::from(byte)]),
        _ => return None,
    })
}

/// `\u00XX` for every byte below 0x20.
const CONTROL: [[u8; 6]; 32] = {
    let hex = b"0123456789abcdef";
    let mut table = [[0u8; 6]; 32];
    let mut byte = 0;
    while byte < 32 {
        table[byte] = [b'\\', b'u', b'0', b'0', hex[byte >> 4], hex[byte & 0xf]];
        byte += 1;
    }
    table
};

/// Whether any of `bytes` needs escaping: is below 0x20, `"` or `\`. The check has no early
/// exit, so the compiler turns it into vector compares.
fn any_needs_escape(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |dirty, &b| {
        dirty | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// Bytes looked at together: whole blocks with nothing to escape (the common case) are passed
/// over at once.
const BLOCK: usize = 32;

/// Appends `s` to `out` as a JSON string literal, quotes included.
pub(crate) fn write_json_string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Bytes before `start` are written; `at` is the next byte to look at.
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        let block_end = (at + BLOCK).min(bytes.len());
        if !any_needs_escape(&bytes[at..block_end]) {
            at = block_end;
            continue;
        }
        // Something in this block: eight bytes at a time, then byte by byte.
        while at < block_end {
            let word_end = (at + 8).min(block_end);
            if !any_needs_escape(&bytes[at..word_end]) {
                at = word_end;
                continue;
            }
            while at < word_end {
                if let Some(escape) = escape_of(bytes[at]) {
                    out.extend_from_slice(&bytes[start..at]);
                    out.extend_from_slice(escape);
                    start = at + 1;
                }
                at += 1;
            }
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(s: &str) -> String {
        let mut out = b"prefix ".to_vec();
        write_json_string(&mut out, s);
        String::from_utf8(out).expect("UTF-8")
    }

    fn serde_json(s: &str) -> String {
        format!(
            "prefix {}",
            serde_json::to_string(s).expect("a string serializes")
        )
    }

    #[test]
    fn writes_what_serde_json_writes_for_every_byte_at_every_position() {
        // Every ASCII character, at each offset across two blocks (and so at every position
        // in a word), among text that needs no escape, and around multi-byte characters;
        // followed by tails that end inside or past a word and a block.
        for c in (0u8..=0x7f)
            .map(char::from)
            .chain(['é', '€', '😀', '\u{2028}'])
        {
            for offset in 0..(2 * BLOCK + 2) {
                for tail in [0, 1, 2, 7, 8, 9, 31, 32, 33, 40] {
                    let s: String = std::iter::repeat_n('a', offset)
                        .chain([c])
                        .chain(std::iter::repeat_n('z', tail))
                        .collect();
                    assert_eq!(ours(&s), serde_json(&s), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn strings_full_of_escapes_or_empty() {
        let every_control: String = (0u8..0x20).map(char::from).collect();
        for s in [
            "",
            "\"",
            "\\\\\"\"",
            every_control.as_str(),
            "long text with \"quotes\", back\\slashes, tabs\tand\nnew lines, ü and 日本",
            &"x".repeat(1000),
            &format!("{}\u{1f}", "y".repeat(999)),
            // Escapes in several blocks, and blocks with nothing to escape between them.
            &format!("{0}\"{0}\n{0}{0}\\{0}", "z".repeat(37)),
            &"ab\t".repeat(100),
        ] {
            assert_eq!(ours(s), serde_json(s), "{s:?}");
        }
    }
}
