//! Avro binary primitives: zigzag varints, length-prefixed bytes, little-endian floats.

/// Append a zigzag varint `long`.
pub(crate) fn write_long(out: &mut Vec<u8>, v: i64) {
    // Zigzag: the sign bit moves to bit 0; the casts reinterpret bits on purpose.
    #[allow(clippy::cast_sign_loss)]
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Append length-prefixed bytes.
pub(crate) fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_long(out, i64::try_from(b.len()).unwrap_or(i64::MAX));
    out.extend_from_slice(b);
}

/// A cursor over untrusted Avro binary. Every read checks bounds; errors are messages.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Current offset.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "unexpected end of data: need {n} bytes at offset {}, {} left",
                    self.pos,
                    self.remaining()
                )
            })?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or("unexpected end of data")?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn read_long(&mut self) -> Result<i64, String> {
        let start = self.pos;
        let mut acc: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| format!("unexpected end of data in varint at offset {start}"))?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(format!("varint at offset {start} overflows a long"));
            }
            acc |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(format!("varint at offset {start} is longer than 10 bytes"));
            }
        }
        #[allow(clippy::cast_possible_wrap)]
        let v = ((acc >> 1) as i64) ^ -((acc & 1) as i64);
        Ok(v)
    }

    pub(crate) fn read_int(&mut self) -> Result<i32, String> {
        let start = self.pos;
        let v = self.read_long()?;
        i32::try_from(v).map_err(|_| format!("int at offset {start} out of range: {v}"))
    }

    /// A non-negative length no larger than the bytes left.
    pub(crate) fn read_len(&mut self) -> Result<usize, String> {
        let start = self.pos;
        let v = self.read_long()?;
        let n = usize::try_from(v).map_err(|_| format!("negative length {v} at offset {start}"))?;
        if n > self.remaining() {
            return Err(format!(
                "length {n} at offset {start} exceeds the {} bytes left",
                self.remaining()
            ));
        }
        Ok(n)
    }

    pub(crate) fn read_bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.read_len()?;
        self.take(n)
    }

    pub(crate) fn read_string(&mut self) -> Result<&'a str, String> {
        let start = self.pos;
        let b = self.read_bytes()?;
        // The SIMD check first (every string of every record goes through here); std's only to
        // say where a bad one goes wrong.
        simdutf8::basic::from_utf8(b).or_else(|_| {
            std::str::from_utf8(b)
                .map_err(|e| format!("string at offset {start} is not UTF-8: {e}"))
        })
    }

    pub(crate) fn read_bool(&mut self) -> Result<bool, String> {
        let start = self.pos;
        match self.take(1)? {
            [0] => Ok(false),
            [1] => Ok(true),
            other => Err(format!("invalid boolean byte {other:?} at offset {start}")),
        }
    }

    pub(crate) fn read_float(&mut self) -> Result<f32, String> {
        let b = self.take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(f32::from_le_bytes(a))
    }

    pub(crate) fn read_double(&mut self) -> Result<f64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    /// The item count of the next array/map block (0 = end). Negative counts are followed by
    /// the block's byte size, which is read and checked.
    pub(crate) fn read_block_count(&mut self) -> Result<u64, String> {
        let start = self.pos;
        let c = self.read_long()?;
        if c < 0 {
            let size = self.read_long()?;
            if size < 0 || usize::try_from(size).map_or(true, |s| s > self.remaining()) {
                return Err(format!("invalid block byte size {size} at offset {start}"));
            }
            Ok(c.unsigned_abs())
        } else {
            Ok(c.unsigned_abs())
        }
    }
}
