//! `tributary.messaging.v1.RecordBatch`, written by hand rather than generated, so that a server
//! can send records it has already encoded.
//!
//! The wire form is exactly the `.proto`'s (`repeated ConsumedRecord records = 1`). Besides the
//! generated-style `records`, the Rust type carries `encoded_records`: more records, each
//! already a complete `records` field (key, length, `ConsumedRecord` body). Encoding writes
//! `records`, then `encoded_records` as they are; decoding puts every record into `records` and
//! leaves `encoded_records` empty. So a client sees the same message either way, and the
//! messaging service encodes a batch straight from Kafka's bytes, without building a
//! `ConsumedRecord` (and its strings and vectors) per record first.

use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

use crate::messaging::v1::ConsumedRecord;

/// The field number of `RecordBatch.records`.
pub const RECORDS_FIELD: u32 = 1;

/// Records delivered in one response, in the order they were read: per partition by increasing
/// offset. Each record carries its own decoding error, if any, as `record` does.
#[derive(Clone, PartialEq, Default, Debug)]
pub struct RecordBatch {
    /// The records; never empty (together with `encoded_records`).
    pub records: Vec<ConsumedRecord>,
    /// Records after `records`, already encoded: each one a whole `records` field (its key, the
    /// varint length, the `ConsumedRecord` body), concatenated. Never set by decoding.
    pub encoded_records: Bytes,
}

impl Message for RecordBatch {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        for record in &self.records {
            encoding::message::encode(RECORDS_FIELD, record, buf);
        }
        buf.put_slice(&self.encoded_records);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        if tag == RECORDS_FIELD {
            encoding::message::merge_repeated(wire_type, &mut self.records, buf, ctx).map_err(
                |mut error| {
                    error.push("RecordBatch", "records");
                    error
                },
            )
        } else {
            encoding::skip_field(wire_type, tag, buf, ctx)
        }
    }

    fn encoded_len(&self) -> usize {
        encoding::message::encoded_len_repeated(RECORDS_FIELD, &self.records)
            + self.encoded_records.len()
    }

    fn clear(&mut self) {
        self.records.clear();
        self.encoded_records.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::v1::{ConsumedPayload, consumed_payload};

    fn record(offset: i64, value: &[u8]) -> ConsumedRecord {
        ConsumedRecord {
            topic: "t".to_owned(),
            partition: 2,
            offset,
            value: Some(ConsumedPayload {
                data: Some(consumed_payload::Data::Raw(Bytes::copy_from_slice(value))),
                schema_id: None,
                error: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn encoded_records_go_on_the_wire_after_records_and_decode_into_records() {
        let mut encoded = Vec::new();
        for offset in [8, 9] {
            encoding::message::encode(RECORDS_FIELD, &record(offset, b"later"), &mut encoded);
        }
        let batch = RecordBatch {
            records: vec![record(7, b"first")],
            encoded_records: Bytes::from(encoded),
        };
        let wire = batch.encode_to_vec();
        assert_eq!(wire.len(), batch.encoded_len());
        let decoded = RecordBatch::decode(wire.as_slice()).expect("a batch decodes");
        assert_eq!(
            decoded,
            RecordBatch {
                records: vec![
                    record(7, b"first"),
                    record(8, b"later"),
                    record(9, b"later")
                ],
                encoded_records: Bytes::new(),
            }
        );
    }

    #[test]
    fn unknown_fields_are_skipped_and_bad_records_are_errors() {
        let mut wire = Vec::new();
        encoding::string::encode(5, &"from a newer server".to_owned(), &mut wire);
        encoding::message::encode(RECORDS_FIELD, &record(1, b"x"), &mut wire);
        let decoded = RecordBatch::decode(wire.as_slice()).expect("a batch decodes");
        assert_eq!(decoded.records, vec![record(1, b"x")]);

        // A `records` field whose length runs past the end of the message.
        let truncated = [0x0a, 0x10, 0x0a];
        let error = RecordBatch::decode(truncated.as_slice()).expect_err("truncated");
        assert!(error.to_string().contains("RecordBatch.records"), "{error}");
    }
}
