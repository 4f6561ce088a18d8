//! A consumed record's protobuf encoding, written by hand from librdkafka's buffers: field for
//! field what prost writes for a `ConsumedRecord` inside a `RecordBatch` (the parent module's
//! tests compare the bytes), without building the message.

use prost::encoding::{self, WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use tributary_proto::messaging::v1 as pb;
use tributary_proto::record_batch::RECORDS_FIELD;

pub(super) fn timestamp_to_wire(millis: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// A key or value ready to be encoded (`ConsumedPayload`).
#[derive(Debug)]
pub(super) enum Payload<'a> {
    /// Decoded Avro: JSON text.
    Json { json: &'a [u8], schema_id: u32 },
    /// The bytes as they are, with why they could not be decoded, when they could not.
    Raw {
        bytes: &'a [u8],
        schema_id: Option<u32>,
        error: Option<pb::RecordError>,
    },
}

impl<'a> Payload<'a> {
    pub(super) fn raw(bytes: &'a [u8]) -> Self {
        Payload::Raw {
            bytes,
            schema_id: None,
            error: None,
        }
    }

    pub(super) fn schema_id(&self) -> Option<u32> {
        match self {
            Payload::Json { schema_id, .. } => Some(*schema_id),
            Payload::Raw { schema_id, .. } => *schema_id,
        }
    }

    /// The length of its `ConsumedPayload` body.
    pub(super) fn len(&self) -> usize {
        let (data, error) = match self {
            Payload::Json { json, .. } => (len_delimited_len(1, json.len()), None),
            Payload::Raw { bytes, error, .. } => {
                (len_delimited_len(2, bytes.len()), error.as_ref())
            }
        };
        data + self
            .schema_id()
            .map_or(0, |id| key_len(3) + encoded_len_varint(int32(id as i32)))
            + error.map_or(0, |error| encoding::message::encoded_len(4, error))
    }

    /// Writes its `ConsumedPayload` body.
    pub(super) fn encode(&self, buf: &mut Vec<u8>) {
        let error = match self {
            Payload::Json { json, .. } => {
                put_len_delimited(buf, 1, json);
                None
            }
            Payload::Raw { bytes, error, .. } => {
                put_len_delimited(buf, 2, bytes);
                error.as_ref()
            }
        };
        if let Some(id) = self.schema_id() {
            encode_key(3, WireType::Varint, buf);
            encode_varint(int32(id as i32), buf);
        }
        if let Some(error) = error {
            encoding::message::encode(4, error, buf);
        }
    }
}

/// An `int32` as protobuf puts it in a varint (negative values sign-extended to 64 bits).
fn int32(value: i32) -> u64 {
    i64::from(value) as u64
}

fn len_delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn put_len_delimited(buf: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.extend_from_slice(bytes);
}

/// A proto3 scalar is left out when it is zero.
fn varint_len(tag: u32, value: u64) -> usize {
    if value == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(value)
    }
}

fn put_varint(buf: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(value, buf);
    }
}

/// The length of a `Header` body (a proto3 string or bytes field is left out when empty).
fn header_len(key: &[u8], value: &[u8]) -> usize {
    let field = |tag, bytes: &[u8]| {
        if bytes.is_empty() {
            0
        } else {
            len_delimited_len(tag, bytes.len())
        }
    };
    field(1, key) + field(2, value)
}

/// A record as it is encoded (`ConsumedRecord`), but for its headers.
#[derive(Debug)]
pub(super) struct RecordView<'a> {
    pub(super) topic: &'a str,
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) timestamp: Option<prost_types::Timestamp>,
    pub(super) key: Option<Payload<'a>>,
    pub(super) value: Option<Payload<'a>>,
}

impl RecordView<'_> {
    /// The length of the `ConsumedRecord` body with these headers.
    pub(super) fn len<'h, I>(&self, headers: impl Fn() -> I) -> usize
    where
        I: Iterator<Item = (&'h [u8], &'h [u8])>,
    {
        let topic = if self.topic.is_empty() {
            0
        } else {
            len_delimited_len(1, self.topic.len())
        };
        topic
            + varint_len(2, int32(self.partition))
            + varint_len(3, self.offset as u64)
            + self
                .timestamp
                .as_ref()
                .map_or(0, |timestamp| encoding::message::encoded_len(4, timestamp))
            + self
                .key
                .as_ref()
                .map_or(0, |key| len_delimited_len(5, key.len()))
            + self
                .value
                .as_ref()
                .map_or(0, |value| len_delimited_len(6, value.len()))
            + headers()
                .map(|(key, value)| len_delimited_len(7, header_len(key, value)))
                .sum::<usize>()
    }

    /// Writes the record as a whole `RecordBatch.records` field, with these headers.
    ///
    /// `headers` is called once, after the payloads are written: librdkafka parses a record's
    /// headers from the bytes right after its value, which copying the value has just brought
    /// into the cache (asked first, they cost a cache miss per record).
    pub(super) fn encode<'h, I>(&self, buf: &mut Vec<u8>, headers: impl FnOnce() -> I)
    where
        I: Iterator<Item = (&'h [u8], &'h [u8])>,
    {
        encode_key(RECORDS_FIELD, WireType::LengthDelimited, buf);
        // Room for the body's length as it is without headers; headers rarely need more.
        let length_at = buf.len();
        let reserved = encoded_len_varint(self.len(std::iter::empty) as u64);
        buf.resize(length_at + reserved, 0);
        let body_start = buf.len();
        if !self.topic.is_empty() {
            put_len_delimited(buf, 1, self.topic.as_bytes());
        }
        put_varint(buf, 2, int32(self.partition));
        put_varint(buf, 3, self.offset as u64);
        if let Some(timestamp) = &self.timestamp {
            encoding::message::encode(4, timestamp, buf);
        }
        for (tag, payload) in [(5, &self.key), (6, &self.value)] {
            if let Some(payload) = payload {
                encode_key(tag, WireType::LengthDelimited, buf);
                encode_varint(payload.len() as u64, buf);
                payload.encode(buf);
            }
        }
        for (key, value) in headers() {
            encode_key(7, WireType::LengthDelimited, buf);
            encode_varint(header_len(key, value) as u64, buf);
            for (tag, bytes) in [(1, key), (2, value)] {
                if !bytes.is_empty() {
                    put_len_delimited(buf, tag, bytes);
                }
            }
        }
        let body_len = (buf.len() - body_start) as u64;
        let needed = encoded_len_varint(body_len);
        if needed > reserved {
            buf.splice(
                body_start..body_start,
                std::iter::repeat_n(0, needed - reserved),
            );
        }
        let mut length = &mut buf[length_at..length_at + needed];
        encode_varint(body_len, &mut length);
    }
}

/// The length of a whole `RecordBatch.records` field holding a record body of `len` bytes.
pub(super) fn field_len(len: usize) -> usize {
    len_delimited_len(RECORDS_FIELD, len)
}
