//! Confluent wire format framing.

use tributary_avro::wire::{self, FrameError, MAGIC_BYTE};

#[test]
fn encode_layout() {
    assert_eq!(MAGIC_BYTE, 0);
    assert_eq!(wire::encode(1, &[0x06, b'f']), [0, 0, 0, 0, 1, 0x06, b'f']);
    assert_eq!(wire::encode(0x0102_0304, &[]), [0, 1, 2, 3, 4]);
    let mut out = vec![9];
    wire::encode_into(u32::MAX, &[7], &mut out);
    assert_eq!(out, [9, 0, 0xff, 0xff, 0xff, 0xff, 7]);
}

#[test]
fn decode_round_trip() {
    let f = wire::encode(123_456, b"payload");
    assert_eq!(wire::decode(&f), Ok((123_456, &b"payload"[..])));
    assert_eq!(wire::decode(&[0, 0, 0, 0, 42]), Ok((42, &[][..])));
}

#[test]
fn decode_errors() {
    assert_eq!(wire::decode(&[]), Err(FrameError::TooShort { len: 0 }));
    assert_eq!(
        wire::decode(&[0, 0, 0, 1]),
        Err(FrameError::TooShort { len: 4 })
    );
    assert_eq!(
        wire::decode(&[1, 0, 0, 0, 1, 2]),
        Err(FrameError::BadMagic { found: 1 })
    );
    assert_eq!(
        wire::decode(&[0xff]),
        Err(FrameError::BadMagic { found: 0xff })
    );
    let e = FrameError::TooShort { len: 3 }.to_string();
    assert!(e.contains('3') && e.contains('5'), "{e}");
    assert!(
        FrameError::BadMagic { found: 2 }
            .to_string()
            .contains("0x02")
    );
}
