//! The message-index array of Confluent's Protobuf framing: after the magic byte and the 4-byte
//! schema id, the path of the record's message in its file (see
//! [`crate::ProtoSchema::message_at`]) as zig-zag varints, count first; the path `[0]` (the
//! file's first message) is written as the single byte 0.

/// The longest path read: deeper than any file the compiler accepts.
pub const MAX_INDEXES: usize = 128;

/// Why a message-index array cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("the message-index array is truncated")]
    Truncated,
    #[error("the message-index array has a varint longer than 5 bytes")]
    Overlong,
    #[error("the message-index array's count {0} is negative or over {MAX_INDEXES}")]
    BadCount(i64),
    #[error("the message-index array has a negative index {0}")]
    Negative(i32),
}

/// Appends the array for `indexes` to `out`.
pub fn write_indexes(indexes: &[i32], out: &mut Vec<u8>) {
    if indexes == [0] || indexes.is_empty() {
        out.push(0);
        return;
    }
    write_zigzag(i32::try_from(indexes.len()).unwrap_or(i32::MAX), out);
    for index in indexes {
        write_zigzag(*index, out);
    }
}

/// Reads the array at the start of `bytes`: the path (`[0]` for the single-0 shortcut) and how
/// many bytes it took.
pub fn read_indexes(bytes: &[u8]) -> Result<(Vec<i32>, usize), IndexError> {
    let (count, mut used) = read_zigzag(bytes)?;
    if count == 0 {
        return Ok((vec![0], used));
    }
    let count_wide = i64::from(count);
    let count = usize::try_from(count)
        .ok()
        .filter(|count| *count <= MAX_INDEXES)
        .ok_or(IndexError::BadCount(count_wide))?;
    let mut indexes = Vec::with_capacity(count);
    for _ in 0..count {
        let rest = bytes.get(used..).ok_or(IndexError::Truncated)?;
        let (index, length) = read_zigzag(rest)?;
        if index < 0 {
            return Err(IndexError::Negative(index));
        }
        indexes.push(index);
        used = used.saturating_add(length);
    }
    Ok((indexes, used))
}

fn write_zigzag(value: i32, out: &mut Vec<u8>) {
    // Zig-zag: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ...
    let mut encoded = (value.cast_unsigned() << 1) ^ (value >> 31).cast_unsigned();
    loop {
        let low = u8::try_from(encoded & 0x7f).unwrap_or(0);
        encoded >>= 7;
        if encoded == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn read_zigzag(bytes: &[u8]) -> Result<(i32, usize), IndexError> {
    let mut value: u32 = 0;
    for (position, byte) in bytes.iter().enumerate().take(5) {
        let shift = u32::try_from(position).unwrap_or(0).saturating_mul(7);
        value |= u32::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
        if byte & 0x80 == 0 {
            let decoded = (value >> 1).cast_signed() ^ -((value & 1).cast_signed());
            return Ok((decoded, position.saturating_add(1)));
        }
    }
    if bytes.len() >= 5 {
        Err(IndexError::Overlong)
    } else {
        Err(IndexError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_first_message_is_a_single_zero() {
        let mut out = Vec::new();
        write_indexes(&[0], &mut out);
        assert_eq!(out, [0]);
        assert_eq!(read_indexes(&[0, 0xff]).unwrap(), (vec![0], 1));
    }

    #[test]
    fn paths_round_trip_as_zigzag_varints() {
        for path in [vec![1], vec![0, 2], vec![3, 0, 70], vec![1_000_000]] {
            let mut out = Vec::new();
            write_indexes(&path, &mut out);
            assert_eq!(read_indexes(&out).unwrap(), (path.clone(), out.len()));
        }
        // Java's and Python's clients write [1] as count 1 (zig-zag 2) then 1 (zig-zag 2).
        let mut out = Vec::new();
        write_indexes(&[1], &mut out);
        assert_eq!(out, [2, 2]);
    }

    #[test]
    fn bad_arrays_are_errors() {
        assert_eq!(read_indexes(&[]), Err(IndexError::Truncated));
        assert_eq!(read_indexes(&[4, 2]), Err(IndexError::Truncated));
        assert_eq!(read_indexes(&[1]), Err(IndexError::BadCount(-1)));
        assert_eq!(read_indexes(&[0xff; 6]), Err(IndexError::Overlong));
        assert_eq!(read_indexes(&[2, 1]), Err(IndexError::Negative(-1)));
        assert!(matches!(
            read_indexes(&[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            Err(IndexError::BadCount(_))
        ));
    }
}
