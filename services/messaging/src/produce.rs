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
//! [`delivery::Deliveries`]). Records being prepared and records awaiting Kafka's
//! acknowledgement count together against the stream's in-flight bound.
//!
//! Observability: each record gets a PRODUCER span (`publish <topic>`, from preparation to
//! Kafka's acknowledgement; registry calls made to encode it are its children), and its W3C
//! trace context is written into the record's `traceparent`/`tracestate` headers — unless the
//! client gave a `traceparent` header itself, which is kept as it is (the client then owns the
//! trace across Kafka). Acknowledged records count in `messaging_client_sent_*`.
//!
//! Here: the [`Producer`], preparing one record and handing it to librdkafka in its span. In the
//! submodules: [`checks`] (what needs neither Kafka nor the registry), [`encode`] (payloads to
//! bytes), [`delivery`] (waiting for acknowledgements), [`stream`] (the `ProduceStream`
//! pipeline) and [`answers`] (a unary Produce's deadline and results).

#![warn(clippy::arithmetic_side_effects)]

mod answers;
mod checks;
mod delivery;
mod encode;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use tracing::Instrument;
use tracing::field::Empty;
use tributary_proto::messaging::v1 as pb;
use tributary_security::authz::{Action, Caller, Grants, Resource};

use crate::access::Access;
use crate::error::MessagingError;
use crate::kafka::Kafka;
use crate::metrics::MessagingMetrics;
use crate::schemas::{LastSchema, Schemas};

pub use self::answers::{
    MAX_ERROR_MESSAGES_PER_RESPONSE, answer_deadline, grpc_timeout, result_to_wire, results_to_wire,
};
pub use self::checks::{
    MAX_TIMESTAMP_MS, Unencoded, avro_record_name, check_partition, check_record_size,
    kafka_timestamp_ms, schema_id_from_wire, selected_subject, subject_name, unencoded,
};
pub use self::delivery::InFlight;
pub use self::stream::{request_stream_failed, run_stream};

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

/// Prepares and produces records.
#[derive(Debug, Clone)]
pub struct Producer {
    kafka: Kafka,
    schemas: Arc<Schemas>,
    access: Access,
    metrics: MessagingMetrics,
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
