//! Records on their way from Kafka to a client: taken from librdkafka, decoded as the
//! subscription asks, and encoded as `ConsumedRecord`s.
//!
//! A response's records are taken into one [`Taken`]: their keys, values and headers copied
//! into a single buffer, the topic name shared, so taking a record allocates nothing of its
//! own. They are then encoded straight into the protobuf bytes of the response
//! ([`Encoded`]): a batch goes out as those bytes (`RecordBatch.encoded_records`) without a
//! `ConsumedRecord` message (and its strings and vectors) being built per record; a response of
//! one record decodes its bytes into the message. The encoding is prost's, field for field
//! (the tests compare the bytes).
//!
//! A key or value that cannot be decoded (not Confluent-framed, unknown schema id, corrupt
//! Avro) is encoded raw with its error; only an unreachable registry is an error, since a
//! reconnect then gets the record decoded.

use std::ops::Range;
use std::sync::Arc;

use prost::Message as _;
use prost::encoding::{self, WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use tonic::Code;
use tracing::Instrument;
use tributary_avro::Schema;
use tributary_proto::messaging::v1 as pb;
use tributary_proto::record_batch::RECORDS_FIELD;

use crate::avro;
use crate::error::MessagingError;
use crate::schemas::Schemas;

/// How keys and values are decoded.
#[derive(Debug)]
pub(super) struct PayloadDecoding {
    pub(super) value_format: pb::PayloadFormat,
    pub(super) key_format: pb::PayloadFormat,
    pub(super) reader: Option<Arc<Schema>>,
}

impl PayloadDecoding {
    /// Whether payloads go out as they are (no decoding work).
    pub(super) fn is_raw(&self) -> bool {
        self.value_format == pb::PayloadFormat::Raw && self.key_format == pb::PayloadFormat::Raw
    }
}

/// The keys, values and header bytes of taken records, in one buffer.
#[derive(Debug, Default)]
struct TakenBytes {
    data: Vec<u8>,
    headers: Vec<TakenHeader>,
}

impl TakenBytes {
    fn push(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        start..self.data.len()
    }

    fn get(&self, range: &Range<usize>) -> &[u8] {
        &self.data[range.clone()]
    }
}

/// A header of a taken record: its key (UTF-8) and value in `TakenBytes::data`; a null value
/// is empty, as in the message.
#[derive(Debug)]
struct TakenHeader {
    key: Range<usize>,
    value: Range<usize>,
}

/// A record taken from librdkafka.
#[derive(Debug)]
pub(super) struct TakenRecord {
    pub(super) topic: Arc<str>,
    pub(super) partition: i32,
    pub(super) offset: i64,
    timestamp: Option<prost_types::Timestamp>,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    /// Its headers, in `TakenBytes::headers`.
    headers: Range<usize>,
    /// Its CONSUMER span.
    pub(super) span: tracing::Span,
}

/// The records of one response, as taken from librdkafka (payloads raw).
#[derive(Debug, Default)]
pub(super) struct Taken {
    records: Vec<TakenRecord>,
    bytes: TakenBytes,
    /// What the records take encoded with raw payloads.
    encoded_len: usize,
}

impl Taken {
    /// Takes a record (copying its key, value and headers).
    pub(super) fn push(&mut self, message: &BorrowedMessage<'_>, span: tracing::Span) {
        let topic = match self.records.last() {
            Some(last) if *last.topic == *message.topic() => Arc::clone(&last.topic),
            _ => Arc::from(message.topic()),
        };
        let headers_start = self.bytes.headers.len();
        if let Some(headers) = message.headers() {
            for header in headers.iter() {
                let key = self.bytes.push(header.key.as_bytes());
                let value = self.bytes.push(header.value.unwrap_or_default());
                self.bytes.headers.push(TakenHeader { key, value });
            }
        }
        let record = TakenRecord {
            topic,
            partition: message.partition(),
            offset: message.offset(),
            timestamp: message.timestamp().to_millis().map(timestamp_to_wire),
            key: message.key().map(|key| self.bytes.push(key)),
            value: message.payload().map(|value| self.bytes.push(value)),
            headers: headers_start..self.bytes.headers.len(),
            span,
        };
        self.add(record);
    }

    /// Adds a record whose bytes are in `self.bytes` already.
    fn add(&mut self, record: TakenRecord) {
        let raw = |range: &Option<Range<usize>>| {
            range
                .as_ref()
                .map(|range| Payload::raw(self.bytes.get(range)))
        };
        self.encoded_len += field_len(record_len(
            &self.bytes,
            &record,
            raw(&record.key).as_ref(),
            raw(&record.value).as_ref(),
        ));
        self.records.push(record);
    }

    pub(super) fn records(&self) -> &[TakenRecord] {
        &self.records
    }

    pub(super) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// What the records take encoded with raw payloads (a batch's size bound).
    pub(super) fn encoded_len(&self) -> usize {
        self.encoded_len
    }
}

fn timestamp_to_wire(millis: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// A key or value ready to be encoded (`ConsumedPayload`).
#[derive(Debug)]
enum Payload<'a> {
    /// Decoded Avro.
    Json { json: String, schema_id: u32 },
    /// The bytes as they are, with why they could not be decoded, when they could not.
    Raw {
        bytes: &'a [u8],
        schema_id: Option<u32>,
        error: Option<pb::RecordError>,
    },
}

impl<'a> Payload<'a> {
    fn raw(bytes: &'a [u8]) -> Self {
        Payload::Raw {
            bytes,
            schema_id: None,
            error: None,
        }
    }

    fn undecodable(bytes: &'a [u8], error: &MessagingError, schema_id: Option<u32>) -> Self {
        Payload::Raw {
            bytes,
            schema_id,
            error: Some(error.to_record_error()),
        }
    }

    fn schema_id(&self) -> Option<u32> {
        match self {
            Payload::Json { schema_id, .. } => Some(*schema_id),
            Payload::Raw { schema_id, .. } => *schema_id,
        }
    }

    /// The length of its `ConsumedPayload` body.
    fn encoded_len(&self) -> usize {
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
    fn encode(&self, buf: &mut Vec<u8>) {
        let error = match self {
            Payload::Json { json, .. } => {
                put_len_delimited(buf, 1, json.as_bytes());
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
fn header_len(header: &TakenHeader) -> usize {
    let field = |tag, range: &Range<usize>| {
        if range.is_empty() {
            0
        } else {
            len_delimited_len(tag, range.len())
        }
    };
    field(1, &header.key) + field(2, &header.value)
}

/// The length of a `ConsumedRecord` body.
fn record_len(
    bytes: &TakenBytes,
    record: &TakenRecord,
    key: Option<&Payload<'_>>,
    value: Option<&Payload<'_>>,
) -> usize {
    let topic = if record.topic.is_empty() {
        0
    } else {
        len_delimited_len(1, record.topic.len())
    };
    let headers: usize = bytes.headers[record.headers.clone()]
        .iter()
        .map(|header| len_delimited_len(7, header_len(header)))
        .sum();
    topic
        + varint_len(2, int32(record.partition))
        + varint_len(3, record.offset as u64)
        + record
            .timestamp
            .as_ref()
            .map_or(0, |timestamp| encoding::message::encoded_len(4, timestamp))
        + key.map_or(0, |key| len_delimited_len(5, key.encoded_len()))
        + value.map_or(0, |value| len_delimited_len(6, value.encoded_len()))
        + headers
}

/// The length of a whole `RecordBatch.records` field holding a record body of `len` bytes.
fn field_len(len: usize) -> usize {
    len_delimited_len(RECORDS_FIELD, len)
}

/// Writes a record as a whole `RecordBatch.records` field.
fn encode_record(
    buf: &mut Vec<u8>,
    bytes: &TakenBytes,
    record: &TakenRecord,
    key: Option<&Payload<'_>>,
    value: Option<&Payload<'_>>,
) {
    encode_key(RECORDS_FIELD, WireType::LengthDelimited, buf);
    encode_varint(record_len(bytes, record, key, value) as u64, buf);
    if !record.topic.is_empty() {
        put_len_delimited(buf, 1, record.topic.as_bytes());
    }
    put_varint(buf, 2, int32(record.partition));
    put_varint(buf, 3, record.offset as u64);
    if let Some(timestamp) = &record.timestamp {
        encoding::message::encode(4, timestamp, buf);
    }
    for (tag, payload) in [(5, key), (6, value)] {
        if let Some(payload) = payload {
            encode_key(tag, WireType::LengthDelimited, buf);
            encode_varint(payload.encoded_len() as u64, buf);
            payload.encode(buf);
        }
    }
    for header in &bytes.headers[record.headers.clone()] {
        encode_key(7, WireType::LengthDelimited, buf);
        encode_varint(header_len(header) as u64, buf);
        for (tag, range) in [(1, &header.key), (2, &header.value)] {
            if !range.is_empty() {
                put_len_delimited(buf, tag, bytes.get(range));
            }
        }
    }
}

/// A record encoded for a response.
#[derive(Debug)]
pub(super) struct EncodedRecord {
    pub(super) topic: Arc<str>,
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) span: tracing::Span,
    /// Its key and value bytes as Kafka has them.
    pub(super) kafka_bytes: usize,
    /// Where it is in `Encoded::bytes`: the whole `RecordBatch.records` field.
    field: Range<usize>,
}

/// The records of one response, encoded.
#[derive(Debug, Default)]
pub(super) struct Encoded {
    /// Every record as a whole `RecordBatch.records` field, one after the other.
    bytes: Vec<u8>,
    pub(super) records: Vec<EncodedRecord>,
}

impl Encoded {
    fn for_taken(taken: &Taken) -> Self {
        Encoded {
            bytes: Vec::with_capacity(taken.encoded_len),
            records: Vec::with_capacity(taken.records.len()),
        }
    }

    fn push(
        &mut self,
        bytes: &TakenBytes,
        record: TakenRecord,
        key: Option<Payload<'_>>,
        value: Option<Payload<'_>>,
    ) {
        let start = self.bytes.len();
        encode_record(
            &mut self.bytes,
            bytes,
            &record,
            key.as_ref(),
            value.as_ref(),
        );
        let size = |range: &Option<Range<usize>>| range.as_ref().map_or(0, Range::len);
        self.records.push(EncodedRecord {
            kafka_bytes: size(&record.key) + size(&record.value),
            topic: record.topic,
            partition: record.partition,
            offset: record.offset,
            span: record.span,
            field: start..self.bytes.len(),
        });
    }

    /// Keeps the records `keep` accepts (and their bytes).
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&EncodedRecord) -> bool) {
        let mut bytes = Vec::with_capacity(self.bytes.len());
        self.records.retain_mut(|record| {
            if !keep(record) {
                return false;
            }
            let start = bytes.len();
            bytes.extend_from_slice(&self.bytes[record.field.clone()]);
            record.field = start..bytes.len();
            true
        });
        self.bytes = bytes;
    }

    /// The records as a batch (sent as they are encoded).
    pub(super) fn into_batch(self) -> pb::RecordBatch {
        pb::RecordBatch {
            records: Vec::new(),
            encoded_records: self.bytes.into(),
        }
    }

    /// Each record as a message of its own.
    pub(super) fn into_messages(self) -> Result<Vec<pb::ConsumedRecord>, MessagingError> {
        self.records
            .iter()
            .map(|record| {
                let mut field = &self.bytes[record.field.clone()];
                encoding::decode_key(&mut field)
                    .and_then(|_| pb::ConsumedRecord::decode_length_delimited(field))
                    .map_err(|error| MessagingError::Internal(format!("encoded record: {error}")))
            })
            .collect()
    }
}

/// Encodes taken records with their payloads as they are.
pub(super) fn encode_raw(taken: Taken) -> Encoded {
    let mut encoded = Encoded::for_taken(&taken);
    let Taken { records, bytes, .. } = taken;
    for record in records {
        let key = record.key.as_ref().map(|key| Payload::raw(bytes.get(key)));
        let value = record
            .value
            .as_ref()
            .map(|value| Payload::raw(bytes.get(value)));
        encoded.push(&bytes, record, key, value);
    }
    encoded
}

/// Decodes the keys and values of taken records as `decoding` asks, each in its record's span,
/// and encodes the records.
pub(super) async fn encode_decoded(
    schemas: &Schemas,
    decoding: &PayloadDecoding,
    taken: Taken,
) -> Result<Encoded, MessagingError> {
    let mut encoded = Encoded::for_taken(&taken);
    let Taken { records, bytes, .. } = taken;
    for record in records {
        let decoded = async {
            let key = match &record.key {
                Some(key) => {
                    Some(decode_payload(schemas, bytes.get(key), decoding.key_format, None).await?)
                }
                None => None,
            };
            let value = match &record.value {
                Some(value) => Some(
                    decode_payload(
                        schemas,
                        bytes.get(value),
                        decoding.value_format,
                        decoding.reader.as_deref(),
                    )
                    .await?,
                ),
                None => None,
            };
            Ok::<_, MessagingError>((key, value))
        }
        .instrument(record.span.clone())
        .await;
        match decoded {
            Ok((key, value)) => encoded.push(&bytes, record, key, value),
            Err(error) => {
                record.span.record("otel.status_code", "ERROR");
                return Err(error);
            }
        }
    }
    Ok(encoded)
}

/// Decodes one key or value; errors that a reconnect can cure (registry unreachable) are
/// returned, every other error goes into the payload, with the bytes as they are.
async fn decode_payload<'a>(
    schemas: &Schemas,
    bytes: &'a [u8],
    format: pb::PayloadFormat,
    reader: Option<&Schema>,
) -> Result<Payload<'a>, MessagingError> {
    let tagged = match format {
        pb::PayloadFormat::Raw => return Ok(Payload::raw(bytes)),
        pb::PayloadFormat::AvroPlain => false,
        pb::PayloadFormat::AvroTagged | pb::PayloadFormat::Unspecified => true,
    };
    let (id, body) = match avro::unframe(bytes) {
        Ok(framed) => framed,
        Err(error) => return Ok(Payload::undecodable(bytes, &error, None)),
    };
    let writer = match schemas.by_id(id).await {
        Ok(writer) => writer,
        Err(
            error @ MessagingError::Registry {
                code: Code::Unavailable,
                ..
            },
        ) => return Err(error),
        Err(error) => return Ok(Payload::undecodable(bytes, &error, Some(id))),
    };
    Ok(match avro::decode(&writer, reader, body, tagged) {
        Ok(json) => Payload::Json {
            json,
            schema_id: id,
        },
        Err(error) => Payload::undecodable(bytes, &error, Some(id)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record to take: topic, partition, offset, timestamp, key, value, headers.
    type Record<'a> = (
        &'a str,
        i32,
        i64,
        Option<i64>,
        Option<&'a [u8]>,
        Option<&'a [u8]>,
        &'a [(&'a str, Option<&'a [u8]>)],
    );

    /// Takes records by hand (as `Taken::push` does from a message).
    fn taken(records: &[Record<'_>]) -> Taken {
        let mut taken = Taken::default();
        for &(topic, partition, offset, timestamp, key, value, headers) in records {
            let headers_start = taken.bytes.headers.len();
            for &(name, header_value) in headers {
                let key = taken.bytes.push(name.as_bytes());
                let value = taken.bytes.push(header_value.unwrap_or_default());
                taken.bytes.headers.push(TakenHeader { key, value });
            }
            let key = key.map(|key| taken.bytes.push(key));
            let value = value.map(|value| taken.bytes.push(value));
            taken.add(TakenRecord {
                topic: Arc::from(topic),
                partition,
                offset,
                timestamp: timestamp.map(timestamp_to_wire),
                key,
                value,
                headers: headers_start..taken.bytes.headers.len(),
                span: tracing::Span::none(),
            });
        }
        taken
    }

    fn raw(bytes: &[u8]) -> pb::ConsumedPayload {
        pb::ConsumedPayload {
            data: Some(pb::consumed_payload::Data::Raw(bytes.to_vec())),
            schema_id: None,
            error: None,
        }
    }

    #[test]
    fn records_encode_as_prost_encodes_the_same_messages() {
        let records: &[Record<'_>] = &[
            (
                "orders",
                2,
                1_234_567,
                Some(1_700_000_000_123),
                Some(b"k"),
                Some(b"value bytes"),
                &[
                    ("traceparent", Some(b"00-abc")),
                    ("empty", Some(b"")),
                    ("null", None),
                ],
            ),
            // Zero partition and offset (left out), no key, an empty value, a negative timestamp.
            ("orders", 0, 0, Some(-1), None, Some(b""), &[]),
            // No value (a tombstone), no timestamp.
            (
                "other",
                -1,
                i64::MAX,
                None,
                Some(&[0, 0, 0, 0, 7]),
                None,
                &[],
            ),
        ];
        let expected: Vec<pb::ConsumedRecord> = records
            .iter()
            .map(
                |&(topic, partition, offset, timestamp, key, value, headers)| pb::ConsumedRecord {
                    topic: topic.to_owned(),
                    partition,
                    offset,
                    timestamp: timestamp.map(timestamp_to_wire),
                    key: key.map(raw),
                    value: value.map(raw),
                    headers: headers
                        .iter()
                        .map(|&(name, value)| pb::Header {
                            key: name.to_owned(),
                            value: value.unwrap_or_default().to_vec(),
                        })
                        .collect(),
                },
            )
            .collect();
        let taken = taken(records);
        let raw_len = taken.encoded_len;
        let encoded = encode_raw(taken);
        let expected_batch = pb::RecordBatch {
            records: expected.clone(),
            encoded_records: Default::default(),
        };
        assert_eq!(encoded.bytes, expected_batch.encode_to_vec());
        assert_eq!(raw_len, encoded.bytes.len());
        assert_eq!(encoded.records[0].kafka_bytes, 1 + 11);
        assert_eq!(encoded.into_messages().expect("records decode"), expected);
    }

    #[test]
    fn decoded_and_undecodable_payloads_encode_as_prost_encodes_them() {
        let bytes = TakenBytes {
            data: b"\x01not framed".to_vec(),
            headers: Vec::new(),
        };
        let record = TakenRecord {
            topic: Arc::from("t"),
            partition: 1,
            offset: 9,
            timestamp: None,
            key: Some(0..11),
            value: Some(0..11),
            headers: 0..0,
            span: tracing::Span::none(),
        };
        let error = MessagingError::Undecodable {
            reason: "not a Confluent-framed Avro payload".to_owned(),
        };
        let key = Payload::undecodable(bytes.get(&(0..11)), &error, Some(0));
        let value = Payload::Json {
            json: r#"{"name": "é"}"#.to_owned(),
            schema_id: 3_000_000_000,
        };
        let mut encoded = Encoded::default();
        encoded.push(&bytes, record, Some(key), Some(value));
        let expected = pb::ConsumedRecord {
            topic: "t".to_owned(),
            partition: 1,
            offset: 9,
            key: Some(pb::ConsumedPayload {
                data: Some(pb::consumed_payload::Data::Raw(b"\x01not framed".to_vec())),
                schema_id: Some(0),
                error: Some(error.to_record_error()),
            }),
            value: Some(pb::ConsumedPayload {
                data: Some(pb::consumed_payload::Data::Json(
                    r#"{"name": "é"}"#.to_owned(),
                )),
                // An id past i32::MAX goes out as the int32 it wraps to, as before.
                schema_id: Some(3_000_000_000_u32 as i32),
                error: None,
            }),
            ..Default::default()
        };
        let mut prost_field = Vec::new();
        encoding::message::encode(RECORDS_FIELD, &expected, &mut prost_field);
        assert_eq!(encoded.bytes, prost_field);
        assert_eq!(
            encoded.into_messages().expect("records decode"),
            vec![expected]
        );
    }

    #[test]
    fn retain_keeps_the_bytes_of_the_records_it_keeps() {
        let records: Vec<_> = (0..5)
            .map(|offset| {
                (
                    "t",
                    (offset % 2) as i32,
                    offset,
                    None,
                    None,
                    Some(b"v".as_slice()),
                    &[][..],
                )
            })
            .collect();
        let mut encoded = encode_raw(taken(&records));
        encoded.retain(|record| record.partition == 0);
        assert_eq!(
            encoded
                .records
                .iter()
                .map(|record| record.offset)
                .collect::<Vec<_>>(),
            vec![0, 2, 4]
        );
        let decoded = pb::RecordBatch::decode(encoded.into_batch().encode_to_vec().as_slice())
            .expect("a batch decodes");
        assert_eq!(
            decoded
                .records
                .iter()
                .map(|r| (r.partition, r.offset))
                .collect::<Vec<_>>(),
            vec![(0, 0), (0, 2), (0, 4)]
        );
    }
}
