//! The Confluent wire format: one magic byte (`0`), the schema id as a 4-byte big-endian
//! integer, then the Avro binary datum.
//!
//! Decoding checks the length and the magic byte and never panics.

/// The first byte of every Confluent-framed message.
pub const MAGIC_BYTE: u8 = 0;

/// Length of the frame header (magic byte + schema id).
pub const HEADER_LEN: usize = 5;

/// Why a byte string is not a Confluent frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer than 5 bytes: no room for the magic byte and the schema id.
    #[error("message too short for the Confluent wire format: {len} bytes, need at least 5")]
    TooShort {
        /// The message length.
        len: usize,
    },
    /// The first byte is not [`MAGIC_BYTE`].
    #[error("unknown magic byte {found:#04x} (expected 0x00)")]
    BadMagic {
        /// The first byte.
        found: u8,
    },
}

/// Frame an Avro datum: magic byte, big-endian schema id, payload.
pub fn encode(schema_id: u32, avro: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + avro.len());
    encode_into(schema_id, avro, &mut out);
    out
}

/// Append a framed datum to `out`.
pub fn encode_into(schema_id: u32, avro: &[u8], out: &mut Vec<u8>) {
    out.reserve(HEADER_LEN + avro.len());
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(avro);
}

/// Split a frame into (schema id, Avro payload).
pub fn decode(frame: &[u8]) -> Result<(u32, &[u8]), FrameError> {
    match frame {
        [magic, a, b, c, d, rest @ ..] => {
            if *magic != MAGIC_BYTE {
                return Err(FrameError::BadMagic { found: *magic });
            }
            Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest))
        }
        [magic, ..] if *magic != MAGIC_BYTE => Err(FrameError::BadMagic { found: *magic }),
        _ => Err(FrameError::TooShort { len: frame.len() }),
    }
}
