//! Records on their way from Kafka to a client: taken from librdkafka, decoded as the
//! subscription asks, and encoded as `ConsumedRecord`s.
//!
//! A response's records are taken into one [`Taken`], the topic name shared, so taking a record
//! allocates nothing of its own. A record with nothing to decode (a raw value, and a key that is
//! raw or absent) is encoded as it is taken, straight from librdkafka's buffers into the
//! protobuf bytes of the response ([`Encoded`]); from the first record to decode on, keys,
//! values and headers are copied into a single buffer and encoded once decoded. A batch goes
//! out as those bytes (`RecordBatch.encoded_records`) without a `ConsumedRecord` message (and
//! its strings and vectors) being built per record; a response of one record decodes its bytes
//! into the message. The encoding is prost's, field for field ([`wire`]; the tests compare the
//! bytes).
//!
//! A key or value that cannot be decoded (not Confluent-framed, unknown schema id, corrupt
//! Avro) is encoded raw with its error; only an unreachable registry is an error, since a
//! reconnect then gets the record decoded.

// Sizes of buffers in memory and of records fetched from Kafka (bounded by the consumer's fetch
// sizes), on the hot path: nothing a client sends is computed with here, so the arithmetic lint
// of the parent module is off.
#![allow(clippy::arithmetic_side_effects)]

use std::ops::Range;
use std::sync::Arc;

use prost::Message as _;
use prost::encoding;
use rdkafka::message::{Headers, Message};
use tonic::Code;
use tracing::Instrument;
use tributary_avro::Schema;
use tributary_proto::messaging::v1 as pb;

use crate::avro;
use crate::error::MessagingError;
use crate::schemas::{LastSchema, Schemas, WriterSchema};
use crate::{json_schema, protobuf};

mod wire;

use self::wire::{Payload, RecordView, field_len, timestamp_to_wire};

/// How keys and values are decoded.
#[derive(Debug)]
pub(super) struct PayloadDecoding {
    pub(super) value_format: pb::PayloadFormat,
    pub(super) key_format: pb::PayloadFormat,
    pub(super) reader: Option<Arc<Schema>>,
}

/// The keys, values and header bytes of records taken to be decoded, in one buffer.
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

    /// The (key, value) pairs of a record's headers.
    fn header_pairs(&self, headers: &Range<usize>) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers[headers.clone()]
            .iter()
            .map(|header| (self.get(&header.key), self.get(&header.value)))
    }
}

/// A header of a taken record: its key (UTF-8) and value in `TakenBytes::data`; a null value
/// is empty, as in the message.
#[derive(Debug)]
struct TakenHeader {
    key: Range<usize>,
    value: Range<usize>,
}

/// A record taken from librdkafka to be decoded.
#[derive(Debug)]
struct TakenRecord {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    timestamp: Option<prost_types::Timestamp>,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    /// Its headers, in `TakenBytes::headers`.
    headers: Range<usize>,
    /// Its CONSUMER span.
    span: tracing::Span,
}

/// How many records, and bytes of them (raw-encoded), a response will likely take: its buffers
/// start that large.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct SizeHint {
    pub(super) bytes: usize,
    pub(super) records: usize,
}

impl SizeHint {
    /// The hint for the response after one that took `taken`: what it took plus an eighth
    /// (records vary in size, and a buffer that outgrows its capacity copies itself), or, when
    /// it took less, most of this hint (one short batch, taken while librdkafka's queue ran
    /// low, does not shrink the next ones' buffers).
    pub(super) fn next(self, taken: &Taken) -> SizeHint {
        let next = |previous: usize, taken: usize| (taken + taken / 8).max(previous - previous / 8);
        SizeHint {
            bytes: next(self.bytes, taken.encoded_len()),
            records: next(self.records, taken.len()),
        }
    }
}

/// The records of one response, as taken from librdkafka.
#[derive(Debug)]
pub(super) enum Taken {
    /// Every record so far goes out as it is (raw payloads, or none): each was encoded as it was
    /// taken, from librdkafka's buffers.
    Encoded(Encoded),
    /// A record needs decoding: those before it are encoded, it and those after it have their
    /// bytes copied, to be decoded.
    ToDecode(ToDecode),
}

/// Records taken to be decoded.
#[derive(Debug, Default)]
pub(super) struct ToDecode {
    /// The records taken before the first that needs decoding, encoded already.
    encoded: Encoded,
    records: Vec<TakenRecord>,
    bytes: TakenBytes,
    /// What the records take encoded with raw payloads.
    raw_len: usize,
}

impl ToDecode {
    /// Ready to take records to decode after `encoded`, with room for what `hint` says.
    fn after(encoded: Encoded, hint: SizeHint) -> Self {
        ToDecode {
            encoded,
            records: Vec::with_capacity(hint.records),
            bytes: TakenBytes {
                data: Vec::with_capacity(hint.bytes),
                headers: Vec::new(),
            },
            raw_len: 0,
        }
    }

    /// Adds a record whose bytes are in `self.bytes` already.
    fn add(&mut self, record: TakenRecord) {
        let bytes = &self.bytes;
        let view = RecordView {
            topic: &record.topic,
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp,
            key: record.key.as_ref().map(|key| Payload::raw(bytes.get(key))),
            value: record
                .value
                .as_ref()
                .map(|value| Payload::raw(bytes.get(value))),
        };
        self.raw_len += field_len(view.len(|| bytes.header_pairs(&record.headers)));
        self.records.push(record);
    }
}

impl Taken {
    /// Ready to take about as many records as `hint` says, so that the buffers do not grow,
    /// copying themselves, record by record.
    ///
    /// With raw values, records are encoded as they are taken until one has a key to decode;
    /// records without keys (most, in many topics) never are.
    pub(super) fn new(decoding: &PayloadDecoding, hint: SizeHint) -> Self {
        if decoding.value_format == pb::PayloadFormat::Raw {
            Taken::Encoded(Encoded {
                bytes: Vec::with_capacity(hint.bytes),
                records: Vec::with_capacity(hint.records),
            })
        } else {
            Taken::ToDecode(ToDecode::after(Encoded::default(), hint))
        }
    }

    /// Takes a record; returns its topic.
    pub(super) fn push(
        &mut self,
        message: &impl Message,
        span: tracing::Span,
        decoding: &PayloadDecoding,
    ) -> Arc<str> {
        if let Taken::Encoded(encoded) = self
            && message.key().is_some()
            && decoding.key_format != pb::PayloadFormat::Raw
        {
            let hint = SizeHint {
                bytes: encoded.bytes.capacity() - encoded.bytes.len(),
                records: encoded.records.capacity() - encoded.records.len(),
            };
            // An empty prefix gives its buffers back (the decoded output gets its own).
            let prefix = match std::mem::take(encoded) {
                prefix if prefix.records.is_empty() => Encoded::default(),
                prefix => prefix,
            };
            *self = Taken::ToDecode(ToDecode::after(prefix, hint));
        }
        let last_topic = match self {
            Taken::Encoded(encoded) => encoded.records.last().map(|last| &last.topic),
            Taken::ToDecode(to_decode) => to_decode
                .records
                .last()
                .map(|last| &last.topic)
                .or_else(|| to_decode.encoded.records.last().map(|last| &last.topic)),
        };
        let topic = match last_topic {
            Some(last) if **last == *message.topic() => Arc::clone(last),
            _ => Arc::from(message.topic()),
        };
        let timestamp = message.timestamp().to_millis().map(timestamp_to_wire);
        match self {
            Taken::Encoded(encoded) => {
                let view = RecordView {
                    topic: &topic,
                    partition: message.partition(),
                    offset: message.offset(),
                    timestamp,
                    key: message.key().map(Payload::raw),
                    value: message.payload().map(Payload::raw),
                };
                let headers = || {
                    message
                        .headers()
                        .into_iter()
                        .flat_map(|headers| headers.iter())
                        .map(|header| (header.key.as_bytes(), header.value.unwrap_or_default()))
                };
                let size = |payload: Option<&[u8]>| payload.map_or(0, <[u8]>::len);
                let kafka_bytes = size(message.key()) + size(message.payload());
                encoded.push(Arc::clone(&topic), &view, headers, span, kafka_bytes);
            }
            Taken::ToDecode(to_decode) => {
                let bytes = &mut to_decode.bytes;
                // The payload first, then the headers (see `RecordView::encode`).
                let key = message.key().map(|key| bytes.push(key));
                let value = message.payload().map(|value| bytes.push(value));
                let headers_start = bytes.headers.len();
                for header in message
                    .headers()
                    .into_iter()
                    .flat_map(|headers| headers.iter())
                {
                    let key = bytes.push(header.key.as_bytes());
                    let value = bytes.push(header.value.unwrap_or_default());
                    bytes.headers.push(TakenHeader { key, value });
                }
                let headers = headers_start..bytes.headers.len();
                to_decode.add(TakenRecord {
                    topic: Arc::clone(&topic),
                    partition: message.partition(),
                    offset: message.offset(),
                    timestamp,
                    key,
                    value,
                    headers,
                    span,
                });
            }
        }
        topic
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Taken::Encoded(encoded) => encoded.records.len(),
            Taken::ToDecode(to_decode) => to_decode.encoded.records.len() + to_decode.records.len(),
        }
    }

    /// Whether the records are encoded already (nothing is left to decode).
    pub(super) fn is_encoded(&self) -> bool {
        matches!(self, Taken::Encoded(_))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the records take encoded with raw payloads (a batch's size bound).
    pub(super) fn encoded_len(&self) -> usize {
        match self {
            Taken::Encoded(encoded) => encoded.bytes.len(),
            Taken::ToDecode(to_decode) => to_decode.encoded.bytes.len() + to_decode.raw_len,
        }
    }
}

/// What decoding a key or value gave (its text in the JSON buffer of the response being
/// encoded).
#[derive(Debug)]
enum Decoded {
    Json {
        text: Range<usize>,
        schema_id: u32,
    },
    Raw {
        schema_id: Option<u32>,
        error: Option<pb::RecordError>,
    },
}

impl Decoded {
    fn raw() -> Self {
        Decoded::Raw {
            schema_id: None,
            error: None,
        }
    }

    fn undecodable(error: &MessagingError, schema_id: Option<u32>) -> Self {
        Decoded::Raw {
            schema_id,
            error: Some(error.to_record_error()),
        }
    }

    fn payload<'a>(self, bytes: &'a [u8], json: &'a [u8]) -> Payload<'a> {
        match self {
            Decoded::Json { text, schema_id } => Payload::Json {
                json: &json[text],
                schema_id,
            },
            Decoded::Raw { schema_id, error } => Payload::Raw {
                bytes,
                schema_id,
                error,
            },
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
    fn push<'h, I>(
        &mut self,
        topic: Arc<str>,
        view: &RecordView<'_>,
        headers: impl FnOnce() -> I,
        span: tracing::Span,
        kafka_bytes: usize,
    ) where
        I: Iterator<Item = (&'h [u8], &'h [u8])>,
    {
        let start = self.bytes.len();
        view.encode(&mut self.bytes, headers);
        self.records.push(EncodedRecord {
            topic,
            partition: view.partition,
            offset: view.offset,
            span,
            kafka_bytes,
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

/// Encodes taken records: those to decode get their keys and values decoded as `decoding`
/// asks, each in its record's span (raw ones were encoded as they were taken).
pub(super) async fn encode(
    schemas: &Schemas,
    decoding: &PayloadDecoding,
    taken: Taken,
) -> Result<Encoded, MessagingError> {
    let ToDecode {
        mut encoded,
        records,
        bytes,
        raw_len,
    } = match taken {
        Taken::Encoded(encoded) => return Ok(encoded),
        Taken::ToDecode(to_decode) => to_decode,
    };
    let encoded_before = encoded.bytes.len();
    let count = records.len();
    if encoded_before == 0 {
        // Room for the first record, decoded (which takes more room than raw, typically less
        // than twice); the rest is reserved once it is known.
        encoded.bytes.reserve(raw_len / count.max(1) * 2);
    } else {
        encoded.bytes.reserve(raw_len);
    }
    encoded.records.reserve_exact(count);
    // The JSON text of the record being encoded (one buffer, reused).
    let mut json = Vec::new();
    let (mut recent_key_writer, mut recent_value_writer) =
        (RecentWriter::default(), RecentWriter::default());
    for (index, record) in records.into_iter().enumerate() {
        if index == 1 {
            // Decoded, records mostly take more room than raw: make room for the rest as large
            // as the first (and an eighth), rather than growing (and copying) a few times.
            let first = encoded.bytes.len() - encoded_before;
            encoded.bytes.reserve((first + first / 8) * (count - 1));
        }
        json.clear();
        let decoded = async {
            let key = match &record.key {
                Some(key) => Some(
                    decode_payload(
                        schemas,
                        bytes.get(key),
                        decoding.key_format,
                        None,
                        &mut recent_key_writer,
                        &mut json,
                    )
                    .await?,
                ),
                None => None,
            };
            let value = match &record.value {
                Some(value) => Some(
                    decode_payload(
                        schemas,
                        bytes.get(value),
                        decoding.value_format,
                        decoding.reader.as_deref(),
                        &mut recent_value_writer,
                        &mut json,
                    )
                    .await?,
                ),
                None => None,
            };
            Ok::<_, MessagingError>((key, value))
        }
        .instrument(record.span.clone())
        .await;
        let (key, value) = match decoded {
            Ok(decoded) => decoded,
            Err(error) => {
                record.span.record("otel.status_code", "ERROR");
                return Err(error);
            }
        };
        let payload = |decoded: Option<Decoded>, range: &Option<Range<usize>>| {
            decoded
                .zip(range.as_ref())
                .map(|(decoded, range)| decoded.payload(bytes.get(range), &json))
        };
        let view = RecordView {
            topic: &record.topic,
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp,
            key: payload(key, &record.key),
            value: payload(value, &record.value),
        };
        let size = |range: &Option<Range<usize>>| range.as_ref().map_or(0, Range::len);
        let kafka_bytes = size(&record.key) + size(&record.value);
        encoded.push(
            Arc::clone(&record.topic),
            &view,
            || bytes.header_pairs(&record.headers),
            record.span,
            kafka_bytes,
        );
    }
    Ok(encoded)
}

/// What the previous key (or value) of a response was decoded with: its writer schema, and the
/// writer id the subscription's reader schema was last found readable for. The records of a
/// response mostly share one writer, and a check costs several times a record's decoding.
#[derive(Debug, Default)]
struct RecentWriter {
    schema: LastSchema,
    readable: Option<u32>,
}

/// What decoding keys and values one at a time (a REST consumer instance's records)
/// remembers between them: the writer schemas of the previous key and value.
#[derive(Debug, Default)]
pub struct JsonDecoder {
    key: RecentWriter,
    value: RecentWriter,
}

/// Decodes a Confluent-framed key or value (Avro in its JSON encoding, unions tagged; JSON
/// Schema; Protobuf in its JSON mapping), its JSON text appended to `json`: the writer
/// schema's id, or why it cannot be decoded (with the id, when the framing named one). Only an
/// unreachable registry is an error.
pub async fn decode_framed_json(
    schemas: &Schemas,
    bytes: &[u8],
    is_key: bool,
    decoder: &mut JsonDecoder,
    json: &mut Vec<u8>,
) -> Result<Result<u32, (pb::RecordError, Option<u32>)>, MessagingError> {
    let recent = if is_key {
        &mut decoder.key
    } else {
        &mut decoder.value
    };
    let decoded = decode_payload(
        schemas,
        bytes,
        pb::PayloadFormat::AvroTagged,
        None,
        recent,
        json,
    )
    .await?;
    Ok(match decoded {
        Decoded::Json { schema_id, .. } => Ok(schema_id),
        Decoded::Raw { schema_id, error } => Err((error.unwrap_or_default(), schema_id)),
    })
}

/// Decodes one key or value, its JSON text appended to `json`; errors that a reconnect can cure
/// (registry unreachable) are returned, every other error goes into the payload, which keeps
/// its bytes as they are.
async fn decode_payload(
    schemas: &Schemas,
    bytes: &[u8],
    format: pb::PayloadFormat,
    reader: Option<&Schema>,
    recent: &mut RecentWriter,
    json: &mut Vec<u8>,
) -> Result<Decoded, MessagingError> {
    let tagged = match format {
        pb::PayloadFormat::Raw => return Ok(Decoded::raw()),
        pb::PayloadFormat::AvroPlain => false,
        pb::PayloadFormat::AvroTagged | pb::PayloadFormat::Unspecified => true,
    };
    let (id, body) = match avro::unframe(bytes) {
        Ok(framed) => framed,
        Err(error) => return Ok(Decoded::undecodable(&error, None)),
    };
    let writer = match schemas.by_id_remembered(id, &mut recent.schema).await {
        Ok(writer) => writer,
        Err(
            error @ MessagingError::Registry {
                code: Code::Unavailable,
                ..
            },
        ) => return Err(error),
        Err(error) => return Ok(Decoded::undecodable(&error, Some(id))),
    };
    let writer = match writer {
        WriterSchema::Avro(writer) => writer,
        WriterSchema::Json(_) => {
            // JSON Schema: the JSON text as it was written.
            let start = json.len();
            return Ok(match json_schema::decode_into(body, json) {
                Ok(()) => Decoded::Json {
                    text: start..json.len(),
                    schema_id: id,
                },
                Err(error) => Decoded::undecodable(&error, Some(id)),
            });
        }
        WriterSchema::Protobuf(writer) => {
            // Protobuf: decoded with the writer schema (an Avro reader schema does not apply).
            let start = json.len();
            return Ok(match protobuf::decode_into(&writer, id, body, json) {
                Ok(()) => Decoded::Json {
                    text: start..json.len(),
                    schema_id: id,
                },
                Err(error) => Decoded::undecodable(&error, Some(id)),
            });
        }
    };
    if let Some(reader) = reader
        && recent.readable != Some(id)
    {
        match avro::check_readable(&writer, reader, schemas.limits()) {
            Ok(()) => recent.readable = Some(id),
            Err(error) => return Ok(Decoded::undecodable(&error, Some(id))),
        }
    }
    let start = json.len();
    Ok(
        match avro::decode_into(&writer, reader, body, tagged, json, schemas.limits()) {
            Ok(()) => Decoded::Json {
                text: start..json.len(),
                schema_id: id,
            },
            Err(error) => Decoded::undecodable(&error, Some(id)),
        },
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use rdkafka::Timestamp;
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
    use tributary_proto::record_batch::RECORDS_FIELD;

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

    fn decoding(format: pb::PayloadFormat) -> PayloadDecoding {
        PayloadDecoding {
            value_format: format,
            key_format: format,
            reader: None,
        }
    }

    /// Takes records as the stream does, through `Taken::push`, for `encode` to finish as
    /// `decoding` says.
    fn taken(records: &[Record<'_>], decoding: &PayloadDecoding) -> Taken {
        let mut taken = Taken::new(decoding, SizeHint::default());
        for &(topic, partition, offset, timestamp, key, value, headers) in records {
            let headers = headers
                .iter()
                .fold(OwnedHeaders::new(), |all, &(key, value)| {
                    all.insert(Header { key, value })
                });
            let message = OwnedMessage::new(
                value.map(<[u8]>::to_vec),
                key.map(<[u8]>::to_vec),
                topic.to_owned(),
                timestamp.map_or(Timestamp::NotAvailable, Timestamp::CreateTime),
                partition,
                offset,
                Some(headers),
            );
            taken.push(&message, tracing::Span::none(), decoding);
        }
        taken
    }

    fn message(
        record: &Record<'_>,
        payload: impl Fn(&[u8]) -> pb::ConsumedPayload,
    ) -> pb::ConsumedRecord {
        let &(topic, partition, offset, timestamp, key, value, headers) = record;
        pb::ConsumedRecord {
            topic: topic.to_owned(),
            partition,
            offset,
            timestamp: timestamp.map(timestamp_to_wire),
            key: key.map(&payload),
            value: value.map(&payload),
            headers: headers
                .iter()
                .map(|&(name, value)| pb::Header {
                    key: name.to_owned(),
                    value: Bytes::copy_from_slice(value.unwrap_or_default()),
                })
                .collect(),
        }
    }

    fn raw(bytes: &[u8]) -> pb::ConsumedPayload {
        pb::ConsumedPayload {
            data: Some(pb::consumed_payload::Data::Raw(Bytes::copy_from_slice(
                bytes,
            ))),
            schema_id: None,
            error: None,
        }
    }

    const RECORDS: &[Record<'static>] = &[
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
        // Zero partition and offset (left out), no key, an empty value, a negative timestamp
        // (-1 is librdkafka's "none").
        ("orders", 0, 0, Some(-2), None, Some(b""), &[]),
        // No value (a tombstone), no timestamp, a negative partition.
        (
            "other",
            -1,
            i64::MAX,
            None,
            Some(&[0, 0, 0, 0, 7]),
            None,
            &[],
        ),
        // The headers take the body's length past 127 bytes: its varint needs a second byte.
        (
            "grows",
            3,
            5,
            None,
            None,
            Some(&[7; 100]),
            &[("h", Some(&[1; 40]))],
        ),
    ];

    fn offsets(encoded: &Encoded) -> Vec<i64> {
        encoded.records.iter().map(|record| record.offset).collect()
    }

    fn schemas() -> Schemas {
        // Never called: raw payloads and unframed bytes need no schema.
        let channel = tributary_security::client::channel("http://127.0.0.1:9", None, |e| e)
            .expect("a lazy channel");
        Schemas::new(channel, Default::default(), Duration::from_secs(1))
    }

    #[tokio::test]
    async fn raw_records_encode_as_prost_encodes_the_same_messages() {
        let raw_decoding = decoding(pb::PayloadFormat::Raw);
        let taken = taken(RECORDS, &raw_decoding);
        assert!(
            taken.is_encoded(),
            "raw records are encoded as they are taken"
        );
        let raw_len = taken.encoded_len();
        let encoded = encode(&schemas(), &raw_decoding, taken)
            .await
            .expect("raw payloads encode");
        let expected: Vec<_> = RECORDS.iter().map(|record| message(record, raw)).collect();
        let expected_batch = pb::RecordBatch {
            records: expected.clone(),
            encoded_records: Default::default(),
        };
        assert_eq!(encoded.bytes, expected_batch.encode_to_vec());
        assert_eq!(raw_len, encoded.bytes.len());
        assert_eq!(encoded.records[0].kafka_bytes, 1 + 11);
        assert_eq!(encoded.into_messages().expect("records decode"), expected);
    }

    #[tokio::test]
    async fn undecodable_payloads_go_out_raw_with_their_error() {
        let avro = decoding(pb::PayloadFormat::AvroTagged);
        // The first two records hold no Confluent-framed payload: no schema is looked up.
        let unframed = &RECORDS[..2];
        let encoded = encode(&schemas(), &avro, taken(unframed, &avro))
            .await
            .expect("no registry call for unframed payloads");
        let undecodable = |bytes: &[u8]| pb::ConsumedPayload {
            error: Some(
                avro::unframe(bytes)
                    .map(|_| ())
                    .expect_err("unframed")
                    .to_record_error(),
            ),
            ..raw(bytes)
        };
        let expected: Vec<_> = unframed
            .iter()
            .map(|record| message(record, undecodable))
            .collect();
        assert_eq!(
            expected[0]
                .value
                .as_ref()
                .and_then(|v| v.error.as_ref())
                .map(|e| e.reason.as_str()),
            Some("UNDECODABLE")
        );
        assert_eq!(encoded.into_messages().expect("records decode"), expected);

        // The third one's key is framed (schema id 7): with the registry unreachable, the
        // records are not sent with an error (a reconnect gets them decoded).
        let error = encode(&schemas(), &avro, taken(RECORDS, &avro))
            .await
            .expect_err("the registry is unreachable");
        assert_eq!(error.grpc_code(), Code::Unavailable, "{error}");
    }

    #[tokio::test]
    async fn raw_values_with_keys_to_decode_switch_to_decoding_at_the_first_key() {
        let keys_as_avro = PayloadDecoding {
            value_format: pb::PayloadFormat::Raw,
            key_format: pb::PayloadFormat::AvroTagged,
            reader: None,
        };
        // No key (encoded as taken), an unframed key (to decode), no key again.
        let records = [RECORDS[1], RECORDS[0], RECORDS[3]];
        let all_raw = pb::RecordBatch {
            records: records.iter().map(|record| message(record, raw)).collect(),
            encoded_records: Default::default(),
        };
        let first = taken(&records[..1], &keys_as_avro);
        assert!(
            first.is_encoded(),
            "a record without a key needs no decoding"
        );
        let taken = taken(&records, &keys_as_avro);
        assert!(
            !taken.is_encoded(),
            "the second record's key is to be decoded"
        );
        assert_eq!(taken.len(), 3);
        assert_eq!(taken.encoded_len(), all_raw.encoded_len());

        let encoded = encode(&schemas(), &keys_as_avro, taken)
            .await
            .expect("no registry call for an unframed key");
        let key_error = avro::unframe(b"k")
            .map(|_| ())
            .expect_err("unframed")
            .to_record_error();
        let mut expected = all_raw.records;
        expected[1].key = Some(pb::ConsumedPayload {
            error: Some(key_error),
            ..raw(b"k")
        });
        let expected_batch = pb::RecordBatch {
            records: expected.clone(),
            encoded_records: Default::default(),
        };
        assert_eq!(encoded.bytes, expected_batch.encode_to_vec());
        assert_eq!(offsets(&encoded), vec![0, 1_234_567, 5]);
        assert_eq!(encoded.into_messages().expect("records decode"), expected);
    }

    #[test]
    fn json_payloads_and_errors_encode_as_prost_encodes_them() {
        let error = MessagingError::Undecodable {
            reason: "corrupt Avro".to_owned(),
        };
        let json = r#"{"name": "é"}"#.as_bytes();
        let view = RecordView {
            topic: "t",
            partition: 1,
            offset: 9,
            timestamp: None,
            key: Some(Payload::Raw {
                bytes: b"\x00\x00\x00\x00\x01x",
                schema_id: Some(1),
                error: Some(error.to_record_error()),
            }),
            value: Some(Payload::Json {
                json,
                schema_id: 3_000_000_000,
            }),
        };
        let mut encoded = Encoded::default();
        encoded.push(
            Arc::from("t"),
            &view,
            std::iter::empty,
            tracing::Span::none(),
            12,
        );
        let expected = pb::ConsumedRecord {
            topic: "t".to_owned(),
            partition: 1,
            offset: 9,
            key: Some(pb::ConsumedPayload {
                data: Some(pb::consumed_payload::Data::Raw(Bytes::from_static(
                    b"\x00\x00\x00\x00\x01x",
                ))),
                schema_id: Some(1),
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

    #[tokio::test]
    async fn retain_keeps_the_bytes_of_the_records_it_keeps() {
        let records: Vec<Record<'_>> = (0..5)
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
        let raw_decoding = decoding(pb::PayloadFormat::Raw);
        let taken = taken(&records, &raw_decoding);
        let mut encoded = encode(&schemas(), &raw_decoding, taken)
            .await
            .expect("raw payloads encode");
        encoded.retain(|record| record.partition == 0);
        assert_eq!(offsets(&encoded), vec![0, 2, 4]);
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
