//! Producing: turning wire records into Kafka records (Avro payloads checked against and encoded
//! with registry schemas, plain payloads as they are), and producing them with the shared
//! idempotent producer (`acks=all` unless overridden).
//!
//! Records are handed to librdkafka in request order, so records of one request (or stream)
//! keep their order per partition. A record that cannot be prepared or produced fails alone.
//!
//! A `ProduceStream` is a pipeline, so that one stream uses more than one core: records are
//! prepared (checked, JSON encoded to Avro) in chunks on tasks of their own while the stream's
//! task reads the next requests, hands prepared records to librdkafka in request order and
//! answers acknowledgements in request order (unless the oldest record stalls: see
//! [`Deliveries`]). Records being prepared and records awaiting
//! Kafka's acknowledgement count together against the stream's in-flight bound.
//!
//! Observability: each record gets a PRODUCER span (`publish <topic>`, from preparation to
//! Kafka's acknowledgement; registry calls made to encode it are its children), and its W3C
//! trace context is written into the record's `traceparent`/`tracestate` headers — unless the
//! client gave a `traceparent` header itself, which is kept as it is (the client then owns the
//! trace across Kafka). Acknowledged records count in `messaging_client_sent_*`.

#![warn(clippy::arithmetic_side_effects)]

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};
use tracing::Instrument;
use tracing::field::Empty;
use tributary_avro::Schema;
use tributary_proto::messaging::v1 as pb;
use tributary_security::authz::{Action, Caller, Grants, Resource};

use crate::access::Access;
use crate::avro;
use crate::error::MessagingError;
use crate::kafka::Kafka;
use crate::metrics::MessagingMetrics;
use crate::schemas::{LastSchema, Schemas, WriterSchema};

/// Most records of a stream prepared by one task: the requests that have arrived together, up
/// to this many, go to one task.
const PREPARE_CHUNK: usize = 64;

/// The latest record timestamp accepted, 9999-12-31T23:59:59.999Z: the end of the range of
/// `google.protobuf.Timestamp`.
pub const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

/// A timestamp as Kafka's milliseconds since the epoch, checked: Kafka takes no negative
/// timestamps (its Java clients refuse them; -1 means "none"), and nothing past
/// [`MAX_TIMESTAMP_MS`] is a valid protobuf Timestamp. (librdkafka reads 0 as "no timestamp"
/// and stamps the record with its own clock, as Kafka's Java producer does with null.)
pub fn kafka_timestamp_ms(
    field: &str,
    timestamp: &prost_types::Timestamp,
) -> Result<i64, MessagingError> {
    if !(0..1_000_000_000).contains(&timestamp.nanos) {
        return Err(MessagingError::invalid(
            field,
            format!("nanos {} is not between 0 and 999999999", timestamp.nanos),
        ));
    }
    let millis = timestamp
        .seconds
        .checked_mul(1000)
        .and_then(|millis| millis.checked_add(i64::from(timestamp.nanos / 1_000_000)))
        .filter(|millis| (0..=MAX_TIMESTAMP_MS).contains(millis));
    millis.ok_or_else(|| {
        MessagingError::invalid(
            field,
            format!(
                "{} s is outside the range Kafka accepts: 1970-01-01T00:00:00Z (0 s) to 9999-12-31T23:59:59.999Z ({} s)",
                timestamp.seconds,
                MAX_TIMESTAMP_MS / 1000
            ),
        )
    })
}

/// A record ready for Kafka.
#[derive(Debug)]
pub struct Prepared {
    topic: String,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<(String, Bytes)>,
    partition: Option<i32>,
    timestamp_ms: Option<i64>,
    key_schema_id: Option<u32>,
    value_schema_id: Option<u32>,
}

impl Prepared {
    /// The ids of the schemas its key and value were encoded with, if any.
    pub fn schema_ids(&self) -> (Option<u32>, Option<u32>) {
        (self.key_schema_id, self.value_schema_id)
    }

    /// The sizes of its key and value, as written to Kafka.
    pub fn sizes(&self) -> (Option<usize>, Option<usize>) {
        (
            self.key.as_ref().map(Bytes::len),
            self.value.as_ref().map(Bytes::len),
        )
    }
}

/// A record handed to librdkafka, waiting for its acknowledgement.
pub struct InFlight {
    topic: String,
    delivery: DeliveryFuture,
    key_schema_id: Option<u32>,
    value_schema_id: Option<u32>,
    max_message_bytes: usize,
    /// Key and value bytes, for the sent-bytes counter.
    bytes: usize,
    metrics: MessagingMetrics,
    /// The record's PRODUCER span, ended at the acknowledgement.
    span: tracing::Span,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// How a payload names its writer schema, besides giving it inline.
enum NamedSchema {
    Id(i32),
    SubjectVersion(pb::SubjectVersionSelector),
    Inline(pb::InlineSchema),
}

/// Each payload's `schema` oneof, as the one [`NamedSchema`] they all are.
macro_rules! named_schema_from {
    ($($oneof:path),+) => {$(
        impl From<$oneof> for NamedSchema {
            fn from(schema: $oneof) -> Self {
                use $oneof as Oneof;
                match schema {
                    Oneof::SchemaId(id) => NamedSchema::Id(id),
                    Oneof::SubjectVersion(selector) => NamedSchema::SubjectVersion(selector),
                    Oneof::Inline(inline) => NamedSchema::Inline(inline),
                }
            }
        }
    )+};
}
named_schema_from!(
    pb::avro_payload::Schema,
    pb::protobuf_payload::Schema,
    pb::json_schema_payload::Schema
);

/// Prepares and produces records.
#[derive(Debug, Clone)]
pub struct Producer {
    kafka: Kafka,
    schemas: Arc<Schemas>,
    access: Access,
    metrics: MessagingMetrics,
}

/// The record name of an Avro schema for the subject name strategies: its full name, when it
/// is a record.
pub fn avro_record_name(schema: &Schema) -> Option<String> {
    schema
        .full_name()
        .filter(|_| schema.type_name() == "record")
}

/// The subject a naming strategy gives; `record_name` is the Avro record's or the Protobuf
/// message's full name.
pub fn subject_name(
    strategy: i32,
    topic: &str,
    is_key: bool,
    record_name: Option<&str>,
) -> Result<String, MessagingError> {
    let suffix = if is_key { "key" } else { "value" };
    let record_name = || {
        record_name.ok_or_else(|| {
            MessagingError::invalid(
                "strategy",
                "RecordNameStrategy and TopicRecordNameStrategy need a record schema",
            )
        })
    };
    match pb::SubjectNameStrategy::try_from(strategy) {
        Ok(pb::SubjectNameStrategy::Unspecified | pb::SubjectNameStrategy::TopicName) => {
            Ok(format!("{topic}-{suffix}"))
        }
        Ok(pb::SubjectNameStrategy::RecordName) => record_name().map(str::to_owned),
        Ok(pb::SubjectNameStrategy::TopicRecordName) => Ok(format!("{topic}-{}", record_name()?)),
        Err(_) => Err(MessagingError::invalid(
            "strategy",
            format!("unknown subject name strategy {strategy}"),
        )),
    }
}

// ----- the checks of a record that need neither Kafka nor the registry ---------------------
//
// Pure pieces of `Producer::prepare`; services/fuzz runs them over arbitrary records.

/// A record's partition, when it names one, checked against its topic's partition count.
pub fn check_partition(
    topic: &str,
    partition: Option<i32>,
    partitions: i32,
) -> Result<(), MessagingError> {
    match partition {
        Some(partition) if !(0..partitions).contains(&partition) => {
            Err(MessagingError::PartitionNotFound {
                topic: topic.to_owned(),
                partition,
            })
        }
        _ => Ok(()),
    }
}

/// A key or value as a request gives it, before encoding.
#[derive(Debug)]
pub enum Unencoded {
    /// Raw bytes, text, or JSON text (checked to be JSON): produced as they are.
    Bytes(Bytes),
    /// Avro data as JSON, to be encoded with the schema it names.
    Avro(pb::AvroPayload),
    /// A Protobuf message as JSON or binary, to be encoded with the schema it names.
    Protobuf(pb::ProtobufPayload),
    /// JSON to be validated against the JSON schema it names.
    JsonSchema(pb::JsonSchemaPayload),
}

/// A record's key or value (`field`), `None` when absent; JSON text must be valid JSON.
pub fn unencoded(
    field: &str,
    payload: Option<pb::Payload>,
) -> Result<Option<Unencoded>, MessagingError> {
    let Some(kind) = payload.and_then(|p| p.kind) else {
        return Ok(None);
    };
    Ok(Some(match kind {
        pb::payload::Kind::Raw(bytes) => Unencoded::Bytes(bytes),
        pb::payload::Kind::Text(text) => Unencoded::Bytes(text.into()),
        pb::payload::Kind::Json(json) => {
            serde_json::from_str::<serde_json::Value>(&json).map_err(|error| {
                MessagingError::invalid(field, format!("not valid JSON: {error}"))
            })?;
            Unencoded::Bytes(json.into())
        }
        pb::payload::Kind::Avro(avro_payload) => Unencoded::Avro(avro_payload),
        pb::payload::Kind::Protobuf(proto_payload) => Unencoded::Protobuf(proto_payload),
        pb::payload::Kind::JsonSchema(json_payload) => Unencoded::JsonSchema(json_payload),
    }))
}

/// An Avro payload's `schema_id`, checked (> 0).
pub fn schema_id_from_wire(id: i32) -> Result<u32, MessagingError> {
    u32::try_from(id)
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| MessagingError::invalid("schema_id", format!("{id} is not > 0")))
}

/// The subject an Avro payload's `subject_version` names: its subject, or without one the
/// topic's (`<topic>-key` / `<topic>-value`, TopicNameStrategy only).
pub fn selected_subject(
    topic: &str,
    field: &str,
    selector: &pb::SubjectVersionSelector,
) -> Result<String, MessagingError> {
    if !selector.subject.is_empty() {
        return Ok(selector.subject.clone());
    }
    if selector.strategy != 0 && selector.strategy != pb::SubjectNameStrategy::TopicName as i32 {
        return Err(MessagingError::invalid(
            "subject_version",
            "without a subject, only TopicNameStrategy can name it",
        ));
    }
    Ok(format!("{topic}-{field}"))
}

/// A record's size as Kafka counts it against `message.max.bytes` (`limit`): key, value and
/// headers' keys and values.
pub fn check_record_size(
    key: Option<&Bytes>,
    value: Option<&Bytes>,
    headers: &[(String, Bytes)],
    limit: usize,
) -> Result<(), MessagingError> {
    let size = headers.iter().fold(
        key.map_or(0, Bytes::len)
            .saturating_add(value.map_or(0, Bytes::len)),
        |size, (k, v)| size.saturating_add(k.len()).saturating_add(v.len()),
    );
    if size > limit {
        return Err(MessagingError::RecordTooLarge { size, limit });
    }
    Ok(())
}

/// What the records of one request (or one chunk of a stream) looked up last. A run of
/// records mostly goes to one topic with one schema, so the shared caches (which hash, lock and
/// keep statistics) are asked once per run rather than once per record. A schema id's schema
/// never changes; a topic's partition count is at most as old as the run. It also holds the
/// caller and what it is granted, asked once per run.
#[derive(Debug)]
pub struct Recent {
    caller: Caller,
    grants: Arc<Grants>,
    partitions: Option<(String, i32)>,
    /// The topic the caller was last allowed to produce to.
    allowed_topic: Option<String>,
    schema: LastSchema,
}

impl Recent {
    /// A run of records produced by `caller`.
    pub fn new(access: &Access, caller: Caller) -> Self {
        Self {
            grants: access.grants(&caller),
            caller,
            partitions: None,
            allowed_topic: None,
            schema: LastSchema::default(),
        }
    }
}

impl Producer {
    pub fn new(
        kafka: Kafka,
        schemas: Arc<Schemas>,
        access: Access,
        metrics: MessagingMetrics,
    ) -> Self {
        Self {
            kafka,
            schemas,
            access,
            metrics,
        }
    }

    /// The authorization of producers.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// Checks a record and encodes its key and value.
    pub async fn prepare(
        &self,
        record: pb::ProducerRecord,
        recent: &mut Recent,
    ) -> Result<Prepared, MessagingError> {
        if record.topic.is_empty() {
            return Err(MessagingError::invalid("topic", "required"));
        }
        if recent.allowed_topic.as_deref() != Some(record.topic.as_str()) {
            self.access.require_granted(
                &recent.grants,
                &recent.caller,
                Action::Produce,
                Resource::topic(&record.topic),
            )?;
            recent.allowed_topic = Some(record.topic.clone());
        }
        let partitions = match &recent.partitions {
            Some((topic, count)) if *topic == record.topic => *count,
            _ => {
                let count = self.kafka.partition_count(&record.topic).await?;
                recent.partitions = Some((record.topic.clone(), count));
                count
            }
        };
        check_partition(&record.topic, record.partition, partitions)?;
        let (key, key_schema_id) = self.encode(&record.topic, true, record.key, recent).await?;
        let (value, value_schema_id) = self
            .encode(&record.topic, false, record.value, recent)
            .await?;
        let headers: Vec<(String, Bytes)> = record
            .headers
            .into_iter()
            .map(|h| (h.key, h.value))
            .collect();
        check_record_size(
            key.as_ref(),
            value.as_ref(),
            &headers,
            self.kafka.max_message_bytes(),
        )?;
        let timestamp_ms = record
            .timestamp
            .map(|t| kafka_timestamp_ms("timestamp", &t))
            .transpose()?;
        Ok(Prepared {
            topic: record.topic,
            key,
            value,
            headers,
            partition: record.partition,
            timestamp_ms,
            key_schema_id,
            value_schema_id,
        })
    }

    async fn encode(
        &self,
        topic: &str,
        is_key: bool,
        payload: Option<pb::Payload>,
        recent: &mut Recent,
    ) -> Result<(Option<Bytes>, Option<u32>), MessagingError> {
        let field = if is_key { "key" } else { "value" };
        match unencoded(field, payload)? {
            None => Ok((None, None)),
            Some(Unencoded::Bytes(bytes)) => Ok((Some(bytes), None)),
            Some(Unencoded::Avro(avro_payload)) => {
                self.encode_avro(topic, is_key, avro_payload, recent).await
            }
            Some(Unencoded::Protobuf(proto_payload)) => {
                self.encode_protobuf(topic, is_key, proto_payload, recent)
                    .await
            }
            Some(Unencoded::JsonSchema(json_payload)) => {
                self.encode_json_schema(topic, is_key, json_payload, recent)
                    .await
            }
        }
    }

    /// Validates a JSON Schema payload against the schema it names (registering an inline one)
    /// and frames it.
    async fn encode_json_schema(
        &self,
        topic: &str,
        is_key: bool,
        payload: pb::JsonSchemaPayload,
        recent: &mut Recent,
    ) -> Result<(Option<Bytes>, Option<u32>), MessagingError> {
        let field = if is_key { "key" } else { "value" };
        let (id, schema) = self
            .writer_schema(
                topic,
                is_key,
                payload.schema.map(Into::into),
                "JSON",
                recent,
                |text| {
                    Ok(crate::json_schema::record_name(
                        &*self.schemas.json_reader(text)?,
                    ))
                },
            )
            .await?;
        let schema = schema.json(id)?;
        let framed = crate::json_schema::encode(field, &schema, id, &payload.json)?;
        Ok((Some(framed.into()), Some(id)))
    }

    /// The writer schema a payload names, authorized for the caller: by id, by subject version,
    /// or given inline (`schema_type`), checked by `inline_record_name` (which parses it and
    /// gives the record name the subject strategies use) and registered.
    async fn writer_schema(
        &self,
        topic: &str,
        is_key: bool,
        by: Option<NamedSchema>,
        schema_type: &'static str,
        recent: &mut Recent,
        inline_record_name: impl FnOnce(&str) -> Result<Option<String>, MessagingError>,
    ) -> Result<(u32, WriterSchema), MessagingError> {
        let field = if is_key { "key" } else { "value" };
        match by {
            None => {
                let payload = match schema_type {
                    "AVRO" => "an Avro payload",
                    "PROTOBUF" => "a Protobuf payload",
                    _ => "a JSON Schema payload",
                };
                Err(MessagingError::invalid(
                    field,
                    format!("{payload} needs a schema (schema_id, subject_version or inline)"),
                ))
            }
            Some(NamedSchema::Id(id)) => {
                let id = schema_id_from_wire(id)?;
                self.access
                    .require_schema(&recent.grants, &recent.caller, id)
                    .await?;
                Ok((
                    id,
                    self.schemas
                        .by_id_remembered(id, &mut recent.schema)
                        .await?,
                ))
            }
            Some(NamedSchema::SubjectVersion(selector)) => {
                let subject = selected_subject(topic, field, &selector)?;
                self.access.require_granted(
                    &recent.grants,
                    &recent.caller,
                    Action::Read,
                    Resource::subject(&subject),
                )?;
                self.schemas
                    .by_subject_version(&subject, selector.version)
                    .await
            }
            Some(NamedSchema::Inline(inline)) => {
                let record_name = inline_record_name(&inline.schema)?;
                let subject = subject_name(inline.strategy, topic, is_key, record_name.as_deref())?;
                self.register_inline(&subject, schema_type, &inline.schema, recent)
                    .await
            }
        }
    }

    /// Registers a producer's inline schema under the subject its strategy gives, authorized
    /// for the caller.
    async fn register_inline(
        &self,
        subject: &str,
        schema_type: &'static str,
        text: &str,
        recent: &Recent,
    ) -> Result<(u32, WriterSchema), MessagingError> {
        self.access.require_granted(
            &recent.grants,
            &recent.caller,
            Action::Write,
            Resource::subject(subject),
        )?;
        self.schemas.register(subject, schema_type, text).await
    }

    /// Encodes a Protobuf payload with the schema and message it names (registering an inline
    /// schema).
    async fn encode_protobuf(
        &self,
        topic: &str,
        is_key: bool,
        payload: pb::ProtobufPayload,
        recent: &mut Recent,
    ) -> Result<(Option<Bytes>, Option<u32>), MessagingError> {
        let field = if is_key { "key" } else { "value" };
        let message_name = &payload.message_name;
        let (id, schema) = self
            .writer_schema(
                topic,
                is_key,
                payload.schema.map(Into::into),
                "PROTOBUF",
                recent,
                |text| {
                    let parsed = self.schemas.proto_reader(text)?;
                    let message =
                        crate::protobuf::message(&parsed, 0, message_name).map_err(|_| {
                            MessagingError::invalid(
                                "message_name",
                                format!(
                                    "'{}' is not a message of the inline schema",
                                    message_name.chars().take(256).collect::<String>()
                                ),
                            )
                        })?;
                    Ok(Some(message.full_name().to_owned()))
                },
            )
            .await?;
        let schema = schema.protobuf(id)?;
        let message = crate::protobuf::message(&schema, id, &payload.message_name)?;
        let record = match &payload.data {
            Some(pb::protobuf_payload::Data::Json(json)) => crate::protobuf::Record::Json(json),
            Some(pb::protobuf_payload::Data::Binary(bytes)) => {
                crate::protobuf::Record::Binary(bytes)
            }
            None => {
                return Err(MessagingError::invalid(
                    field,
                    "a Protobuf payload needs its record (json or binary)",
                ));
            }
        };
        let framed = crate::protobuf::encode(field, &schema, id, &message, record)?;
        Ok((Some(framed.into()), Some(id)))
    }

    /// Encodes an Avro payload with the schema it names (registering an inline one).
    async fn encode_avro(
        &self,
        topic: &str,
        is_key: bool,
        avro_payload: pb::AvroPayload,
        recent: &mut Recent,
    ) -> Result<(Option<Bytes>, Option<u32>), MessagingError> {
        let field = if is_key { "key" } else { "value" };
        let (id, schema) = self
            .writer_schema(
                topic,
                is_key,
                avro_payload.schema.map(Into::into),
                "AVRO",
                recent,
                |text| Ok(avro_record_name(&*self.schemas.reader(text)?)),
            )
            .await?;
        let schema = schema.avro(id)?;
        let framed = avro::encode(
            field,
            &schema,
            id,
            &avro_payload.json,
            self.schemas.limits(),
        )?;
        Ok((Some(framed.into()), Some(id)))
    }

    /// Hands a prepared record to librdkafka (waiting while its queue is full).
    pub async fn send(&self, prepared: Prepared) -> Result<InFlight, MessagingError> {
        // No header list at all for the common record without headers (librdkafka allocates one
        // per record otherwise).
        let headers = (!prepared.headers.is_empty()).then(|| {
            prepared.headers.iter().fold(
                OwnedHeaders::new_with_capacity(prepared.headers.len()),
                |headers, (key, value)| {
                    headers.insert(Header {
                        key,
                        value: Some(&value[..]),
                    })
                },
            )
        });
        let max_message_bytes = self.kafka.max_message_bytes();
        loop {
            let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&prepared.topic);
            if let Some(headers) = &headers {
                record = record.headers(headers.clone());
            }
            if let Some(key) = &prepared.key {
                record = record.key(&key[..]);
            }
            if let Some(value) = &prepared.value {
                record = record.payload(&value[..]);
            }
            if let Some(partition) = prepared.partition {
                record = record.partition(partition);
            }
            if let Some(timestamp) = prepared.timestamp_ms {
                record = record.timestamp(timestamp);
            }
            match self.kafka.producer().send_result(record) {
                Ok(delivery) => {
                    return Ok(InFlight {
                        bytes: prepared
                            .key
                            .as_ref()
                            .map_or(0, Bytes::len)
                            .saturating_add(prepared.value.as_ref().map_or(0, Bytes::len)),
                        topic: prepared.topic,
                        delivery,
                        key_schema_id: prepared.key_schema_id,
                        value_schema_id: prepared.value_schema_id,
                        max_message_bytes,
                        metrics: self.metrics.clone(),
                        span: tracing::Span::none(),
                    });
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((error, _)) => {
                    return Err(MessagingError::from_kafka(
                        error,
                        &prepared.topic,
                        max_message_bytes,
                    ));
                }
            }
        }
    }

    /// Prepares and hands over one record, in its PRODUCER span.
    pub async fn start(
        &self,
        record: pb::ProducerRecord,
        recent: &mut Recent,
    ) -> Result<InFlight, MessagingError> {
        let traced = self.prepare_traced(record, recent).await;
        self.send_traced(traced).await
    }

    /// Prepares one record in its PRODUCER span (which it returns, to go on with the record)
    /// and writes the span's trace context into the record's headers.
    pub async fn prepare_traced(&self, record: pb::ProducerRecord, recent: &mut Recent) -> Traced {
        let span = publish_span(&record.topic);
        let prepared = async {
            let mut prepared = self.prepare(record, recent).await?;
            inject_trace_context(&span, &mut prepared.headers);
            Ok(prepared)
        }
        .instrument(span.clone())
        .await;
        Traced { prepared, span }
    }

    /// Hands over a record from `prepare_traced`, its span ending at Kafka's acknowledgement.
    pub async fn send_traced(&self, traced: Traced) -> Result<InFlight, MessagingError> {
        let Traced { prepared, span } = traced;
        let started = match prepared {
            Ok(prepared) => self.send(prepared).instrument(span.clone()).await,
            Err(error) => Err(error),
        };
        match started {
            Ok(mut in_flight) => {
                in_flight.span = span;
                Ok(in_flight)
            }
            Err(error) => {
                span.record("otel.status_code", "ERROR");
                Err(error)
            }
        }
    }
}

/// A record prepared (or failed) in its PRODUCER span.
#[derive(Debug)]
pub struct Traced {
    prepared: Result<Prepared, MessagingError>,
    span: tracing::Span,
}

/// The PRODUCER span of one record (nothing while tracing is off).
fn publish_span(topic: &str) -> tracing::Span {
    if !tributary_telemetry::tracing_enabled() {
        return tracing::Span::none();
    }
    tracing::debug_span!(
        "publish",
        otel.name = %format!("publish {topic}"),
        otel.kind = "producer",
        otel.status_code = Empty,
        messaging.system = "kafka",
        messaging.operation.type = "publish",
        messaging.operation.name = "publish",
        messaging.destination.name = topic,
        messaging.destination.partition.id = Empty,
        messaging.kafka.offset = Empty,
    )
}

/// Adds `span`'s W3C trace context to a record's headers, unless the client set `traceparent`.
fn inject_trace_context(span: &tracing::Span, headers: &mut Vec<(String, Bytes)>) {
    if span.is_none()
        || headers
            .iter()
            .any(|(key, _)| key.eq_ignore_ascii_case(tributary_telemetry::propagation::TRACEPARENT))
    {
        return;
    }
    headers.extend(
        tributary_telemetry::propagation::context_pairs(span)
            .into_iter()
            .map(|(key, value)| (key, value.into())),
    );
}

impl InFlight {
    /// Waits for Kafka's acknowledgement.
    pub async fn delivered(mut self) -> Result<pb::RecordMetadata, MessagingError> {
        let outcome = (&mut self.delivery).await;
        self.settle(outcome)
    }

    /// Waits for Kafka's acknowledgement until `deadline`; past it the record's outcome is
    /// unknown (librdkafka may still write it), and said so.
    pub async fn delivered_by(
        mut self,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<pb::RecordMetadata, MessagingError> {
        let Some(deadline) = deadline else {
            return self.delivered().await;
        };
        match tokio::time::timeout_at(deadline, &mut self.delivery).await {
            Ok(outcome) => self.settle(outcome),
            Err(_) => Err(MessagingError::OutcomeUnknown {
                topic: self.topic,
                why: "Kafka had not acknowledged it when the call had to be answered, before its deadline",
            }),
        }
    }

    /// The result of a record, from librdkafka's delivery report.
    fn settle(
        self,
        outcome: <DeliveryFuture as Future>::Output,
    ) -> Result<pb::RecordMetadata, MessagingError> {
        let result = match outcome {
            Ok(Ok(delivery)) => {
                self.metrics.sent(&self.topic, self.bytes);
                self.span
                    .record("messaging.destination.partition.id", delivery.partition)
                    .record("messaging.kafka.offset", delivery.offset);
                Ok(pb::RecordMetadata {
                    topic: self.topic,
                    partition: delivery.partition,
                    offset: delivery.offset,
                    key_schema_id: self.key_schema_id.map(|id| id as i32),
                    value_schema_id: self.value_schema_id.map(|id| id as i32),
                })
            }
            Ok(Err((error, _))) => Err(MessagingError::from_kafka(
                error,
                &self.topic,
                self.max_message_bytes,
            )),
            Err(_) => Err(MessagingError::ShuttingDown),
        };
        if result.is_err() {
            self.span.record("otel.status_code", "ERROR");
        }
        result
    }
}

/// How long the oldest record of a stream may wait for Kafka's answer before the known results
/// of later records are sent ahead of it.
const STALL_AFTER: Duration = Duration::from_millis(500);

/// The records of a stream handed to librdkafka (or failed before), by sequence number: their
/// results come out in that order while Kafka answers. Only the oldest record's delivery is
/// polled, so only it wakes the stream; those behind it are looked at once it is done (most are
/// done by then). A record costs a queue slot, not a task and a waker of its own.
///
/// When the oldest record has waited [`STALL_AFTER`] (its partition has no leader, a broker is
/// paused), the stream does not wait behind it: the results known for later records go out as
/// they come, out of order (clients match them by `sequence`), and the stalled one follows when
/// Kafka answers or its delivery timeout fails it.
#[derive(Debug, Default)]
struct Deliveries {
    /// (sequence, when it was handed over, the record or why it failed before).
    queue: VecDeque<(u64, Instant, Result<InFlight, MessagingError>)>,
    /// Wakes the stream when the oldest record becomes stalled.
    stall_timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Deliveries {
    fn push(&mut self, sequence: u64, started: Result<InFlight, MessagingError>) {
        self.queue.push_back((sequence, Instant::now(), started));
    }

    fn len(&self) -> usize {
        self.queue.len()
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The oldest record's result, once it has one; or, while it is stalled, any later
    /// record's.
    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(u64, Result<pb::RecordMetadata, MessagingError>)>> {
        let Some((sequence, since, started)) = self.queue.front_mut() else {
            return Poll::Ready(None);
        };
        let (sequence, since) = (*sequence, *since);
        if let Some(result) = poll_delivery(started, cx) {
            self.queue.pop_front();
            return Poll::Ready(Some((sequence, result)));
        }
        let stalled_at = since.checked_add(STALL_AFTER).unwrap_or(since);
        if Instant::now() < stalled_at {
            let timer = self
                .stall_timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(stalled_at.into())));
            if timer.deadline() != stalled_at.into() {
                timer.as_mut().reset(stalled_at.into());
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        // Stalled: the first later record with a result goes out now. Each delivery polled
        // keeps the stream's waker, so the next one to finish wakes it.
        let ready = self.queue.iter_mut().enumerate().skip(1).find_map(
            |(index, (sequence, _, started))| {
                poll_delivery(started, cx).map(|result| (index, *sequence, result))
            },
        );
        match ready {
            Some((index, sequence, result)) => {
                self.queue.remove(index);
                Poll::Ready(Some((sequence, result)))
            }
            None => Poll::Pending,
        }
    }
}

/// A record's result if it has one: a failure before it was handed over, or Kafka's answer.
/// (Its delivery is left in place, answered, when it has none yet.)
fn poll_delivery(
    started: &mut Result<InFlight, MessagingError>,
    cx: &mut Context<'_>,
) -> Option<Result<pb::RecordMetadata, MessagingError>> {
    let outcome = match started {
        Err(_) => None,
        Ok(in_flight) => match Pin::new(&mut in_flight.delivery).poll(cx) {
            Poll::Ready(outcome) => Some(outcome),
            Poll::Pending => return None,
        },
    };
    // Take the record out of its slot (the slot is removed by the caller right after).
    let taken = std::mem::replace(started, Err(MessagingError::ShuttingDown));
    Some(match (taken, outcome) {
        (Err(error), _) => Err(error),
        (Ok(in_flight), Some(outcome)) => in_flight.settle(outcome),
        (Ok(_), None) => Err(MessagingError::Internal(
            "a delivery without an outcome".to_owned(),
        )),
    })
}

/// The `grpc-timeout` a client sent (its deadline, relative to when the call was sent), if
/// it is well formed: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    if !(2..=9).contains(&value.len()) {
        return None;
    }
    let (digits, unit) = value.split_at(value.len().saturating_sub(1));
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// When a unary call started at `start` must be answered: a little before the earlier of the
/// client's deadline and the server's own limit (a tenth of it, at most a second, is left for
/// the answer to travel). `None` when neither is set.
pub fn answer_deadline(
    start: tokio::time::Instant,
    client: Option<Duration>,
    server: Option<Duration>,
) -> Option<tokio::time::Instant> {
    let limit = match (client, server) {
        (Some(client), Some(server)) => client.min(server),
        (client, server) => client.or(server)?,
    };
    let margin = limit
        .checked_div(10)
        .unwrap_or_default()
        .min(Duration::from_secs(1));
    start.checked_add(limit.saturating_sub(margin))
}

/// The most failed records of one Produce response whose errors carry a message; the later
/// ones carry their code and reason only (and are counted in the response's
/// `errors_without_message`), so the messages of a response stay under 32 x 1 KiB whatever the
/// number of records.
pub const MAX_ERROR_MESSAGES_PER_RESPONSE: usize = 32;

/// The results of a Produce, in order: the first [`MAX_ERROR_MESSAGES_PER_RESPONSE`] errors
/// with their messages, the rest without (counted).
pub fn results_to_wire(
    results: Vec<Result<pb::RecordMetadata, MessagingError>>,
) -> pb::ProduceResponse {
    let mut with_message = 0usize;
    let mut errors_without_message = 0u32;
    let results = results
        .into_iter()
        .map(|result| match result {
            Err(error) if with_message >= MAX_ERROR_MESSAGES_PER_RESPONSE => {
                tracing::debug!(%error, "record not produced");
                errors_without_message = errors_without_message.saturating_add(1);
                let mut wire = error.to_record_error();
                wire.message.clear();
                pb::ProduceResult {
                    result: Some(pb::produce_result::Result::Error(wire)),
                }
            }
            result => {
                if result.is_err() {
                    with_message = with_message.saturating_add(1);
                }
                result_to_wire(result)
            }
        })
        .collect();
    pb::ProduceResponse {
        results,
        errors_without_message,
    }
}

/// The wire form of one outcome (an error's message at most
/// [`crate::error::MAX_RECORD_ERROR_MESSAGE_BYTES`]).
pub fn result_to_wire(result: Result<pb::RecordMetadata, MessagingError>) -> pb::ProduceResult {
    pb::ProduceResult {
        result: Some(match result {
            Ok(metadata) => pb::produce_result::Result::Metadata(metadata),
            Err(error) => {
                tracing::debug!(%error, "record not produced");
                pb::produce_result::Result::Error(error.to_record_error())
            }
        }),
    }
}

/// Prepares a chunk of a stream's records, in order.
async fn prepare_chunk(
    producer: Producer,
    caller: Caller,
    records: Vec<Option<pb::ProducerRecord>>,
) -> Vec<Traced> {
    let mut prepared = Vec::with_capacity(records.len());
    let mut recent = Recent::new(producer.access(), caller);
    for record in records {
        prepared.push(match record {
            Some(record) => producer.prepare_traced(record, &mut recent).await,
            None => Traced {
                prepared: Err(MessagingError::invalid("record", "required")),
                span: tracing::Span::none(),
            },
        });
    }
    prepared
}

/// The status a stream ends with when the client's request stream failed (a request that does
/// not decode, a reset): INVALID_ARGUMENT naming what failed.
pub fn request_stream_failed(status: &Status) -> Status {
    MessagingError::RequestStream {
        message: status.message().to_owned(),
    }
    .into()
}

/// Most results in one batched `ProduceStreamResponse` (~60 KiB of results).
const MAX_RESULTS_PER_RESPONSE: usize = 1000;

/// Adds the records of one `ProduceStream` request to `records`: `record` (an absent one fails
/// as "required" at its sequence number) or `record` and `records`. The stream's first request
/// decides whether its results are `batched`: they are when it carries `records`. More than
/// `max_in_flight` records in one message end the stream.
fn take_records(
    request: pb::ProduceStreamRequest,
    max_in_flight: usize,
    records: &mut Vec<Option<pb::ProducerRecord>>,
    batched: &mut Option<bool>,
) -> Result<(), Status> {
    let pb::ProduceStreamRequest {
        record,
        records: more,
    } = request;
    batched.get_or_insert(!more.is_empty());
    if more.is_empty() {
        records.push(record);
        return Ok(());
    }
    let count = more.len().saturating_add(usize::from(record.is_some()));
    if count > max_in_flight {
        return Err(MessagingError::invalid(
            "records",
            format!(
                "{count} records in one message; at most {max_in_flight} (the server's in-flight limit)"
            ),
        )
        .into());
    }
    records.extend(record.map(Some));
    records.extend(more.into_iter().map(Some));
    Ok(())
}

/// A batched `ProduceStreamResponse`: the first [`MAX_ERROR_MESSAGES_PER_RESPONSE`] errors
/// with their messages, as [`results_to_wire`] does.
fn sequenced_results_to_wire(
    results: Vec<(u64, Result<pb::RecordMetadata, MessagingError>)>,
) -> pb::ProduceStreamResponse {
    let (sequences, results): (Vec<u64>, Vec<_>) = results.into_iter().unzip();
    let results = sequences
        .into_iter()
        .zip(results_to_wire(results).results)
        .map(|(sequence, result)| pb::SequencedProduceResult {
            sequence,
            result: Some(result),
        })
        .collect();
    pb::ProduceStreamResponse {
        sequence: 0,
        result: None,
        results,
    }
}

/// Runs one `ProduceStream`: reads records, prepares them in chunks on tasks of their own, hands
/// them to librdkafka in request order and sends one result per record, in request order (one per
/// response, or the results known together in one response when the first request carried
/// `records`), with at most `max_in_flight` records being prepared or awaiting Kafka's
/// acknowledgement (checked before each message is read). Ends when
/// the client half-closes and every result is sent, when the client goes away, or (after the
/// results of what was read) with UNAVAILABLE when `stop` fires.
pub async fn run_stream(
    producer: Producer,
    caller: Caller,
    mut inbound: Streaming<pb::ProduceStreamRequest>,
    out: mpsc::Sender<Result<pb::ProduceStreamResponse, Status>>,
    max_in_flight: usize,
    stop: CancellationToken,
) {
    // Chunks being prepared, in request order, how many records each holds, and how many they
    // hold in all.
    let mut preparing: FuturesOrdered<JoinHandle<Vec<Traced>>> = FuturesOrdered::new();
    let mut chunk_sizes = VecDeque::new();
    let mut preparing_records: usize = 0;
    // Records handed to librdkafka, in request order.
    let mut in_flight = Deliveries::default();
    // The sequence number of the next record handed over (or failed before that).
    let mut sequence: u64 = 0;
    // Whether the results go out batched: when the first request carried `records`.
    let mut batched: Option<bool> = None;
    let mut reading = true;
    let mut end: Option<Status> = None;
    loop {
        if !reading && preparing.is_empty() && in_flight.is_empty() {
            break;
        }
        let room = max_in_flight.saturating_sub(preparing_records.saturating_add(in_flight.len()));
        tokio::select! {
            biased;
            Some((sequence, result)) = std::future::poll_fn(|cx| in_flight.poll_next(cx)),
                if !in_flight.is_empty() =>
            {
                let response = if batched == Some(true) {
                    // With the results known by now (polled without waiting: the next turn of
                    // the loop polls the oldest again, with this task's waker).
                    let mut results = vec![(sequence, result)];
                    while results.len() < MAX_RESULTS_PER_RESPONSE {
                        match std::future::poll_fn(|cx| in_flight.poll_next(cx)).now_or_never() {
                            Some(Some(next)) => results.push(next),
                            _ => break,
                        }
                    }
                    sequenced_results_to_wire(results)
                } else {
                    pb::ProduceStreamResponse {
                        sequence,
                        result: Some(result_to_wire(result)),
                        results: Vec::new(),
                    }
                };
                if out.send(Ok(response)).await.is_err() {
                    return;
                }
            }
            Some(chunk) = preparing.next(), if !preparing.is_empty() => {
                let count = chunk_sizes.pop_front().unwrap_or_default();
                preparing_records = preparing_records.saturating_sub(count);
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                    Err(_) => (0..count)
                        .map(|_| Traced {
                            prepared: Err(MessagingError::ShuttingDown),
                            span: tracing::Span::none(),
                        })
                        .collect(),
                };
                for traced in chunk {
                    let started = producer.send_traced(traced).await;
                    in_flight.push(sequence, started);
                    sequence = sequence.wrapping_add(1);
                }
            }
            () = stop.cancelled(), if reading => {
                reading = false;
                end = Some(MessagingError::ShuttingDown.into());
            }
            request = inbound.next(), if reading && room > 0 => {
                let mut records = Vec::new();
                match request {
                    Some(Ok(request)) => {
                        if let Err(status) =
                            take_records(request, max_in_flight, &mut records, &mut batched)
                        {
                            reading = false;
                            end = Some(status);
                            continue;
                        }
                    }
                    Some(Err(status)) => {
                        // The client's stream failed: the results of what was read still go
                        // out, then the stream ends with an error, never with OK.
                        reading = false;
                        end = Some(request_stream_failed(&status));
                        continue;
                    }
                    None => {
                        reading = false;
                        continue;
                    }
                }
                // The requests that have arrived already join the chunk.
                while records.len() < PREPARE_CHUNK.min(room) {
                    match inbound.next().now_or_never() {
                        Some(Some(Ok(request))) => {
                            if let Err(status) =
                                take_records(request, max_in_flight, &mut records, &mut batched)
                            {
                                reading = false;
                                end = Some(status);
                                break;
                            }
                        }
                        Some(Some(Err(status))) => {
                            reading = false;
                            end = Some(request_stream_failed(&status));
                            break;
                        }
                        Some(None) => {
                            reading = false;
                            break;
                        }
                        None => break,
                    }
                }
                // Prepared PREPARE_CHUNK at a time (a message may hold many records), the
                // chunks on tasks of their own, their results taken in order.
                let mut records = records.into_iter().peekable();
                while records.peek().is_some() {
                    let chunk: Vec<_> = records.by_ref().take(PREPARE_CHUNK).collect();
                    preparing_records = preparing_records.saturating_add(chunk.len());
                    chunk_sizes.push_back(chunk.len());
                    let chunk =
                        prepare_chunk(producer.clone(), caller.clone(), chunk).in_current_span();
                    preparing.push_back(tokio::spawn(chunk));
                }
            }
        }
    }
    if let Some(status) = end {
        let _ = out.send(Err(status)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timestamp(seconds: i64, nanos: i32) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos }
    }

    #[test]
    fn grpc_timeouts_are_read_as_the_protocol_writes_them() {
        let timeout = |value: &str| {
            let mut metadata = tonic::metadata::MetadataMap::new();
            metadata.insert("grpc-timeout", value.parse().expect("ascii"));
            grpc_timeout(&metadata)
        };
        assert_eq!(timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(
            timeout("99999999H"),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
        assert_eq!(timeout("7n"), Some(Duration::from_nanos(7)));
        for bad in ["", "S", "3", "3s", "+3S", "-3S", "123456789S", "3 S"] {
            assert_eq!(timeout(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&tonic::metadata::MetadataMap::new()), None);
    }

    #[test]
    fn a_unary_call_is_answered_a_little_before_the_earlier_deadline() {
        let start = tokio::time::Instant::now();
        let at = |client, server| answer_deadline(start, client, server).map(|at| at - start);
        assert_eq!(at(None, None), None);
        assert_eq!(
            at(Some(Duration::from_secs(3)), None),
            Some(Duration::from_millis(2700))
        );
        assert_eq!(
            at(Some(Duration::from_secs(60)), Some(Duration::from_secs(20))),
            Some(Duration::from_secs(19))
        );
        assert_eq!(
            at(None, Some(Duration::from_secs(330))),
            Some(Duration::from_secs(329))
        );
        assert_eq!(at(Some(Duration::ZERO), None), Some(Duration::ZERO));
        // A deadline past what an Instant holds: no answer deadline, and no panic.
        assert_eq!(at(Some(Duration::MAX), None), None);
    }

    #[test]
    fn timestamps_outside_what_kafka_takes_are_refused() {
        assert_eq!(
            kafka_timestamp_ms("timestamp", &timestamp(1_700_000_000, 5_000_000)).ok(),
            Some(1_700_000_000_005)
        );
        assert_eq!(
            kafka_timestamp_ms("timestamp", &timestamp(0, 0)).ok(),
            Some(0)
        );
        assert_eq!(
            kafka_timestamp_ms("timestamp", &timestamp(253_402_300_799, 999_999_999)).ok(),
            Some(MAX_TIMESTAMP_MS)
        );
        for (seconds, nanos) in [
            (i64::MIN, 0),
            (i64::MAX, 0),
            (-1, 0),
            (253_402_300_800, 0),
            (0, -1),
            (0, 1_000_000_000),
        ] {
            let error = kafka_timestamp_ms("timestamp", &timestamp(seconds, nanos))
                .expect_err("out of range");
            assert_eq!(error.grpc_code(), tonic::Code::InvalidArgument, "{error}");
            assert!(error.to_string().contains("timestamp"), "{error}");
        }
    }

    #[test]
    fn only_the_first_errors_of_a_response_carry_their_message() {
        let failed = || {
            Err(MessagingError::Registry {
                code: tonic::Code::FailedPrecondition,
                message: "incompatible: ".repeat(10_000),
                answered: true,
            })
        };
        let mut results: Vec<_> = (0..1000).map(|_| failed()).collect();
        results.insert(
            0,
            Ok(pb::RecordMetadata {
                topic: "t".to_owned(),
                ..Default::default()
            }),
        );
        let response = results_to_wire(results);
        assert_eq!(response.results.len(), 1001);
        assert_eq!(
            response.errors_without_message as usize,
            1000 - MAX_ERROR_MESSAGES_PER_RESPONSE
        );
        let bytes = prost::Message::encoded_len(&response);
        assert!(bytes < 64 * 1024, "{bytes} bytes");
        let with_message = response
            .results
            .iter()
            .filter(|result| {
                matches!(&result.result, Some(pb::produce_result::Result::Error(error)) if !error.message.is_empty())
            })
            .count();
        assert_eq!(with_message, MAX_ERROR_MESSAGES_PER_RESPONSE);
    }
}
