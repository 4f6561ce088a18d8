//! `messaging-bench`: starts a registry (release build, fresh Postgres database) and a messaging
//! service pointed at it and at the stack's Kafka, then, against that one broker, compares:
//!
//! - producing through the messaging service's bidirectional `ProduceStream` with raw rdkafka
//!   (a `FutureProducer` with the service's settings: idempotent, `acks=all`) sending the same
//!   Confluent-framed Avro bytes, both with the same number of records in flight;
//! - consuming through `Consume` (one ack per record) with a raw rdkafka `StreamConsumer`
//!   reading the same topic;
//! - the codec alone (JSON -> Avro, Avro -> JSON), on one core, in process;
//!
//! for records of about 100 B and 1 KiB of one 10-field schema, and prints a markdown table with
//! the gRPC/raw ratio of each gRPC path against the target (>= 0.8 of raw rdkafka).
//!
//! Protobuf beside Avro, in the same run and table: the same 10 fields as a Protobuf message
//! (a PROTOBUF schema of the registry), records of ~100 B and ~1 KiB encoded, produced through
//! `ProduceStream` as JSON (`ProtobufPayload { json, schema_id, message_name }`, encoded by the
//! service), consumed through `Consume` in the default format (Protobuf's canonical JSON; a
//! sample of the records parsed back), and the Protobuf codec alone (`encode_json`,
//! `decode_to_json`). `--skip-protobuf` leaves those rows out.
//!
//! Both services run as they do by default: TLS and basic authentication, with a CA,
//! certificate and user the bench makes at start (`tributary_bench::security`); the messaging
//! service calls the registry over TLS as that user, and the bench's gRPC client calls the
//! messaging service over TLS with its credentials. `--plaintext` starts both with `--tls off
//! --auth none` instead, as the bench ran before. Kafka is the stack's PLAINTEXT listener
//! either way, for the raw clients and the service alike.
//!
//! Run it through `scripts/bench messaging` (which starts the stack and builds in release mode).

/// The load generator's allocator. With glibc's malloc, decoding batches of consumed records
/// (a string and a buffer per record, freed a batch at a time) spent half of the client's CPU
/// in `_int_malloc`, CPU taken from the service under test on the same two cores.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tributary_avro::Schema;
use tributary_avro::codec::{UnionStyle, avro_to_json, json_to_avro};
use tributary_bench::records::{SCHEMA, record_json};
use tributary_bench::security::{AuthChannel, Mode, Pki};
use tributary_bench::services::{Database, ServiceOptions, Services, StackArgs, create_topics};
use tributary_bench::{cpu_seconds, rss_mib};
use tributary_proto::messaging::v1 as mpb;
use tributary_proto::messaging::v1::messaging_service_client::MessagingServiceClient;
use tributary_proto::registry::v1 as rpb;
use tributary_proto::registry::v1::registry_service_client::RegistryServiceClient;

#[path = "messaging_bench/rest.rs"]
mod rest;

#[derive(Debug, Clone, Parser)]
struct Args {
    /// The binaries to start, Postgres and Kafka.
    #[command(flatten)]
    stack: StackArgs,
    /// Records of ~100 B per scenario.
    #[arg(long, default_value_t = 200_000)]
    small_records: usize,
    /// Records of ~1 KiB per scenario.
    #[arg(long, default_value_t = 50_000)]
    large_records: usize,
    /// Partitions of each topic.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Records in flight (sent, not yet acknowledged) when producing, for both paths; also the
    /// service's MESSAGING_PRODUCE_MAX_IN_FLIGHT and the Consume stream's max_unacked.
    #[arg(long, default_value_t = 1000)]
    in_flight: usize,
    /// Rounds of the produce and consume measurements; each row is the median round.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds each codec measurement runs.
    #[arg(long, default_value_t = 2)]
    codec_seconds: u64,
    /// The consume rows read this many times the records of a size: before the first round
    /// the raw topic is topped up with copies of them (produced by the raw producer, not
    /// measured), so that a consume measurement lasts long enough for opening a consumer or a
    /// stream to be a small part of it (at 1 KiB, the raw consumer reads 50,000 records in
    /// about 35 ms).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    consume_multiple: u32,
    /// Most records per response of the batched Consume rows (the subscription's
    /// max_batch_records); the client acknowledges each batch with one cumulative ack per
    /// partition.
    #[arg(long, default_value_t = 500)]
    batch_records: i32,
    /// The batched Consume rows' max_unacked (0: the same as --in-flight). A client taking
    /// batches wants several batches under way while it acknowledges, so that flow control does
    /// not stall the stream for an acknowledgement's round trip.
    #[arg(long, default_value_t = 5000)]
    batch_max_unacked: usize,
    /// The largest HTTP/2 frame the gRPC client accepts (its SETTINGS_MAX_FRAME_SIZE; HTTP/2's
    /// default is 16384). Larger frames cut the per-frame work of a batch of records on both
    /// sides of the connection.
    #[arg(long, default_value_t = 1 << 20)]
    http2_max_frame_size: u32,
    /// What to measure: `all`, or only `produce` or `consume` (the raw producer still writes
    /// the records the consumers read; the codec rows come with `all`), or only `rest` (the
    /// REST Proxy API's rows and their gRPC counterparts, which `all` includes).
    #[arg(long, value_enum, default_value_t = Only::All)]
    only: Only,
    /// Skip the gRPC Consume rows that take one record per response (e.g. to profile the
    /// batched rows alone).
    #[arg(long)]
    skip_per_record: bool,
    /// Which payload formats the gRPC Consume rows take: `all`, or only `raw` bytes, Avro
    /// decoded to `json`, or `protobuf` decoded to JSON (e.g. to profile one path alone).
    #[arg(long, value_enum, default_value_t = ConsumeFormats::All)]
    consume_formats: ConsumeFormats,
    /// Leave out the Protobuf rows (produce, consume and codec of Protobuf records, beside the
    /// Avro ones), as the bench ran before they came.
    #[arg(long)]
    skip_protobuf: bool,
    /// A librdkafka property `k=v` for every Kafka client of the run, on both sides: the raw
    /// producer and consumer, and the messaging service (as KAFKA_PROPERTIES). Repeatable.
    #[arg(long = "kafka-property", value_parser = parse_property)]
    kafka_properties: Vec<(String, String)>,
    /// Start both services with `--tls off --auth none` (and call them so) instead of the
    /// default TLS + basic authentication.
    #[arg(long)]
    plaintext: bool,
    /// Records per request of the REST produce rows (and of their gRPC `Produce` counterpart).
    #[arg(long, default_value_t = 100)]
    rest_batch: usize,
    /// Requests in flight of the REST produce rows (and of their gRPC counterpart).
    #[arg(long, default_value_t = 10)]
    rest_in_flight: usize,
}

impl Args {
    /// How the services are secured.
    fn mode(&self) -> Mode {
        if self.plaintext {
            Mode::Plaintext
        } else {
            Mode::Basic
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Only {
    All,
    Produce,
    Consume,
    /// The REST Proxy API's rows only (and their gRPC counterparts).
    Rest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ConsumeFormats {
    All,
    Raw,
    Json,
    Protobuf,
}

impl ConsumeFormats {
    /// Whether the rows of `format` run (the Protobuf rows take the default format,
    /// `PAYLOAD_FORMAT_UNSPECIFIED`).
    fn includes(self, format: mpb::PayloadFormat) -> bool {
        match self {
            ConsumeFormats::All => true,
            ConsumeFormats::Raw => format == mpb::PayloadFormat::Raw,
            ConsumeFormats::Json => format == mpb::PayloadFormat::AvroPlain,
            ConsumeFormats::Protobuf => format == mpb::PayloadFormat::Unspecified,
        }
    }
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| format!("expected key=value, got '{text}'"))
}

impl Args {
    /// Applies the `--kafka-property` settings to a raw client's configuration.
    fn apply_kafka_properties(&self, config: &mut ClientConfig) {
        for (key, value) in &self.kafka_properties {
            config.set(key, value);
        }
    }
}

/// The Avro record's 10 fields as a Protobuf message (`device` optional, as the Avro union with
/// null), so that the same JSON records go through both codecs.
const PROTO_SCHEMA: &str = r#"syntax = "proto3";

package dev.tributary.bench;

message Event {
  int64 id = 1;
  int64 ts = 2;
  string user = 3;
  double amount = 4;
  int32 count = 5;
  bool active = 6;
  string country = 7;
  optional string device = 8;
  float score = 9;
  string note = 10;
}
"#;

/// The message the Protobuf records are produced as.
const PROTO_MESSAGE: &str = "dev.tributary.bench.Event";

/// A data set: JSON texts and their Confluent-framed Avro encodings.
struct Dataset {
    label: &'static str,
    json: Vec<String>,
    framed: Vec<Vec<u8>>,
    bytes: usize,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("label", &self.label)
            .field("records", &self.json.len())
            .finish_non_exhaustive()
    }
}

fn dataset(
    label: &'static str,
    schema: &Schema,
    id: u32,
    count: usize,
    target: usize,
) -> anyhow::Result<Dataset> {
    // Find the note length that gives `target` framed bytes for record 0.
    let base = tributary_avro::wire::encode(id, &json_to_avro(schema, &record_json(0, 0))?).len();
    let note_len = target.saturating_sub(base + 2);
    let mut json = Vec::with_capacity(count);
    let mut framed = Vec::with_capacity(count);
    let mut bytes = 0;
    for i in 0..count {
        let text = record_json(i, note_len);
        let frame = tributary_avro::wire::encode(id, &json_to_avro(schema, &text)?);
        bytes += frame.len();
        json.push(text);
        framed.push(frame);
    }
    Ok(Dataset {
        label,
        json,
        framed,
        bytes,
    })
}

/// The Protobuf schema of the bench, compiled as the services compile it, and its message.
struct ProtoEvent {
    message: tributary_protobuf::MessageDescriptor,
    /// The message-index array of Confluent's framing for the message.
    indexes: Vec<u8>,
}

impl std::fmt::Debug for ProtoEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtoEvent")
            .field("message", &self.message.full_name())
            .finish_non_exhaustive()
    }
}

impl ProtoEvent {
    fn compile() -> anyhow::Result<Self> {
        let schema = tributary_protobuf::ProtoSchema::parse(
            PROTO_SCHEMA,
            &[],
            &tributary_protobuf::Budgets::default(),
        )?;
        let message = schema
            .message(PROTO_MESSAGE)
            .with_context(|| format!("{PROTO_MESSAGE} is not in the bench's schema"))?;
        let path = schema
            .indexes_of(&message)
            .context("the message's indexes")?;
        let mut indexes = Vec::new();
        tributary_protobuf::wire::write_indexes(&path, &mut indexes);
        Ok(Self { message, indexes })
    }

    /// A JSON record, encoded and framed as the service frames it for schema `id`.
    fn frame(&self, id: u32, json: &str) -> anyhow::Result<Vec<u8>> {
        let mut body = self.indexes.clone();
        body.extend(tributary_protobuf::json::encode_json(&self.message, json)?);
        Ok(tributary_avro::wire::encode(id, &body))
    }
}

/// The Protobuf data set: the same JSON records as the Avro one, their `note` padded so that the
/// framed Protobuf is about `target` bytes.
fn protobuf_dataset(
    label: &'static str,
    event: &ProtoEvent,
    id: u32,
    count: usize,
    target: usize,
) -> anyhow::Result<Dataset> {
    // The note length that gives `target` framed bytes on average. Proto3 leaves fields at
    // their defaults out (most of record 0's numbers are zeros), and the note's length
    // prefix grows at 128 bytes: measure the average over the first records, then correct.
    let sample = count.clamp(1, 1000);
    let average = |note_len: usize| -> anyhow::Result<usize> {
        let mut total = 0;
        for i in 0..sample {
            total += event.frame(id, &record_json(i, note_len))?.len();
        }
        Ok(total / sample)
    };
    let mut note_len = target.saturating_sub(average(0)? + 2);
    for _ in 0..3 {
        let size = average(note_len)?;
        if size == target {
            break;
        }
        note_len = (note_len + target).saturating_sub(size);
    }
    let mut json = Vec::with_capacity(count);
    let mut framed = Vec::with_capacity(count);
    let mut bytes = 0;
    for i in 0..count {
        let text = record_json(i, note_len);
        let frame = event.frame(id, &text)?;
        bytes += frame.len();
        json.push(text);
        framed.push(frame);
    }
    Ok(Dataset {
        label,
        json,
        framed,
        bytes,
    })
}

/// Whether a consumed Protobuf record's JSON parses back to an `Event` object (its `user` is
/// never empty, so always present in the canonical JSON).
fn protobuf_json_decodes(json: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(json).is_ok_and(|value| {
        value
            .get("user")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|user| user.starts_with("user-"))
    })
}

/// A row of the codec section: records and bytes over the time taken, on one core.
fn codec_row(path: String, size: &'static str, records: usize, seconds: f64, bytes: usize) -> Row {
    Row {
        path,
        size,
        records,
        seconds,
        bytes,
        p50_ms: None,
        p99_ms: None,
        errors: 0,
        versus: None,
        cpu: CpuPerRecord::default(),
    }
}

/// One measured row.
#[derive(Debug, Clone)]
struct Row {
    path: String,
    size: &'static str,
    records: usize,
    seconds: f64,
    bytes: usize,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    errors: usize,
    /// The raw rdkafka row this one is compared with.
    versus: Option<f64>,
    /// CPU time per record: of the messaging service (gRPC rows), and of this process (the
    /// raw rdkafka client, or the gRPC client), in microseconds.
    cpu: CpuPerRecord,
}

/// The messaging service this run started (for its CPU time and memory).
static SERVICE_PID: OnceLock<u32> = OnceLock::new();

/// CPU time per record of a measurement, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
struct CpuPerRecord {
    service_us: Option<f64>,
    client_us: Option<f64>,
    /// The service's resident memory at the end of the measurement, in MiB.
    service_rss_mib: Option<f64>,
}

/// CPU time of the service and of this process since a measurement started.
#[derive(Debug, Clone, Copy)]
struct CpuClock {
    service: Option<f64>,
    client: Option<f64>,
}

impl CpuClock {
    fn start() -> Self {
        Self {
            service: SERVICE_PID.get().copied().and_then(cpu_seconds),
            client: cpu_seconds(std::process::id()),
        }
    }

    /// Per record since the start; the service's share only when `service` (gRPC rows).
    fn per_record(&self, records: usize, service: bool) -> CpuPerRecord {
        let per_record = |before: Option<f64>, now: Option<f64>| {
            before
                .zip(now)
                .filter(|_| records > 0)
                .map(|(before, now)| (now - before) * 1e6 / records as f64)
        };
        let pid = SERVICE_PID.get().copied();
        CpuPerRecord {
            service_us: per_record(self.service, pid.and_then(cpu_seconds)).filter(|_| service),
            client_us: per_record(self.client, cpu_seconds(std::process::id())),
            service_rss_mib: pid.map(rss_mib).filter(|_| service),
        }
    }
}

impl Row {
    fn rate(&self) -> f64 {
        self.records as f64 / self.seconds
    }
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1_000_000.0
    }
}

fn latency_ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

fn producer_config(args: &Args) -> ClientConfig {
    // The messaging service's producer settings (services/messaging/src/kafka.rs).
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.stack.bootstrap_servers)
        .set("allow.auto.create.topics", "false")
        .set("client.id", "messaging-bench")
        .set("enable.idempotence", "true")
        .set("acks", "all");
    args.apply_kafka_properties(&mut config);
    config
}

/// Records sent to the warm-up topic before each produce measurement (connections, producer id,
/// metadata and schema caches are then warm on both paths).
const WARMUP: usize = 2000;

async fn raw_produce(
    args: &Args,
    topic: &str,
    warmup_topic: &str,
    data: &Dataset,
) -> anyhow::Result<Row> {
    let producer: FutureProducer = producer_config(args).create()?;
    let mut warmup = FuturesOrdered::new();
    for frame in data.framed.iter().take(WARMUP) {
        let record = FutureRecord::<(), [u8]>::to(warmup_topic).payload(frame.as_slice());
        warmup.push_back(producer.send_result(record).map_err(|(error, _)| error)?);
    }
    while let Some(delivered) = warmup.next().await {
        anyhow::ensure!(
            matches!(delivered, Ok(Ok(_))),
            "warm-up record not delivered"
        );
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut in_flight = FuturesOrdered::new();
    let mut errors = 0;
    let started = Instant::now();
    let cpu = CpuClock::start();
    let mut settle = |(sent, delivered): (Instant, bool), histogram: &mut Histogram<u64>| {
        if delivered {
            let _ = histogram.record(sent.elapsed().as_micros().max(1) as u64);
        } else {
            errors += 1;
        }
    };
    for frame in &data.framed {
        if in_flight.len() >= args.in_flight
            && let Some(result) = in_flight.next().await
        {
            settle(result, &mut histogram);
        }
        let sent = Instant::now();
        let delivery = loop {
            match producer
                .send_result(FutureRecord::<(), [u8]>::to(topic).payload(frame.as_slice()))
            {
                Ok(delivery) => break delivery,
                Err((_, _)) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        };
        in_flight.push_back(async move { (sent, matches!(delivery.await, Ok(Ok(_)))) });
    }
    while let Some(result) = in_flight.next().await {
        settle(result, &mut histogram);
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu.per_record(data.framed.len(), false);
    Ok(Row {
        path: "produce: raw rdkafka FutureProducer (framed Avro bytes)".to_owned(),
        size: data.label,
        records: data.framed.len(),
        seconds,
        bytes: data.bytes,
        p50_ms: Some(latency_ms(&histogram, 0.5)),
        p99_ms: Some(latency_ms(&histogram, 0.99)),
        errors,
        versus: None,
        cpu,
    })
}

/// What a ProduceStream row sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// The framed Avro bytes, as a `raw` payload.
    Raw,
    /// The datum as JSON with the Avro schema's id (`AvroPayload`), encoded by the service.
    AvroJson,
    /// The record as JSON with the Protobuf schema's id and the message's name
    /// (`ProtobufPayload`), encoded by the service.
    ProtobufJson,
}

/// Produces every record of `data` through one ProduceStream, at most `in_flight` unacknowledged.
async fn grpc_produce(
    args: &Args,
    channel: &AuthChannel,
    topic: &str,
    warmup_topic: &str,
    data: &Dataset,
    schema_id: i32,
    sent: Sent,
) -> anyhow::Result<Row> {
    let warmup = produce_stream(
        args,
        channel,
        warmup_topic,
        data,
        schema_id,
        sent,
        WARMUP.min(data.framed.len()),
    )
    .await?;
    anyhow::ensure!(warmup.errors == 0, "warm-up records not produced");
    let mut row = produce_stream(
        args,
        channel,
        topic,
        data,
        schema_id,
        sent,
        data.framed.len(),
    )
    .await?;
    row.path = match sent {
        Sent::Raw => "produce: gRPC ProduceStream (framed Avro bytes, raw payload)",
        Sent::AvroJson => "produce: gRPC ProduceStream (Avro as JSON, encoded by the service)",
        Sent::ProtobufJson => {
            "produce: gRPC ProduceStream (Protobuf as JSON, encoded by the service)"
        }
    }
    .to_owned();
    Ok(row)
}

/// The first `count` records of `data` through one ProduceStream.
async fn produce_stream(
    args: &Args,
    channel: &AuthChannel,
    topic: &str,
    data: &Dataset,
    schema_id: i32,
    sent: Sent,
    count: usize,
) -> anyhow::Result<Row> {
    let mut client = MessagingServiceClient::new(channel.clone())
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let window = Arc::new(Semaphore::new(args.in_flight));
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
    let (tx, rx) = mpsc::channel::<mpb::ProduceStreamRequest>(256);
    let epoch = Instant::now();
    let requests: Vec<mpb::ProduceStreamRequest> = (0..count)
        .map(|i| {
            let kind = match sent {
                Sent::AvroJson => mpb::payload::Kind::Avro(mpb::AvroPayload {
                    json: data.json[i].clone(),
                    schema: Some(mpb::avro_payload::Schema::SchemaId(schema_id)),
                }),
                Sent::ProtobufJson => mpb::payload::Kind::Protobuf(mpb::ProtobufPayload {
                    data: Some(mpb::protobuf_payload::Data::Json(data.json[i].clone())),
                    schema: Some(mpb::protobuf_payload::Schema::SchemaId(schema_id)),
                    message_name: PROTO_MESSAGE.to_owned(),
                }),
                Sent::Raw => mpb::payload::Kind::Raw(data.framed[i].clone().into()),
            };
            mpb::ProduceStreamRequest {
                record: Some(mpb::ProducerRecord {
                    topic: topic.to_owned(),
                    value: Some(mpb::Payload { kind: Some(kind) }),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    let started = Instant::now();
    let cpu = CpuClock::start();
    let sender = {
        let window = Arc::clone(&window);
        let sent_at = Arc::clone(&sent_at);
        tokio::spawn(async move {
            for (i, request) in requests.into_iter().enumerate() {
                let Ok(permit) = window.acquire().await else {
                    return;
                };
                permit.forget();
                sent_at[i].store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
                if tx.send(request).await.is_err() {
                    return;
                }
            }
        })
    };
    let mut responses = client
        .produce_stream(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut received = 0;
    let mut errors = 0;
    while let Some(response) = responses.next().await {
        let response = response?;
        let now = epoch.elapsed().as_nanos() as u64;
        window.add_permits(1);
        let i = response.sequence as usize;
        match response.result.and_then(|r| r.result) {
            Some(mpb::produce_result::Result::Metadata(_)) => {
                let sent = sent_at.get(i).map_or(now, |t| t.load(Ordering::Relaxed));
                let _ = histogram.record((now.saturating_sub(sent) / 1000).max(1));
            }
            other => {
                if errors == 0 {
                    eprintln!("first produce error: {other:?}");
                }
                errors += 1;
            }
        }
        received += 1;
        if received == count {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu.per_record(received, true);
    sender.await?;
    Ok(Row {
        path: String::new(),
        size: data.label,
        records: received,
        seconds,
        bytes: data.framed[..count].iter().map(Vec::len).sum(),
        p50_ms: Some(latency_ms(&histogram, 0.5)),
        p99_ms: Some(latency_ms(&histogram, 0.99)),
        errors,
        versus: None,
        cpu,
    })
}

/// Times a consumer from the assignment (or the opening of the stream) to its last record.
///
/// Timing from the first record instead is not a fair measure: by then librdkafka has fetched
/// most of a topic this size into memory, and the raw consumer hands it out at 1-1.7M records/s
/// (measured on 2026-11-25), a rate of memory copies, not of consuming from Kafka.
#[derive(Debug)]
struct OpenToLast {
    started: Instant,
    cpu: CpuClock,
    records: usize,
    bytes: usize,
}

impl OpenToLast {
    fn start() -> Self {
        Self {
            started: Instant::now(),
            cpu: CpuClock::start(),
            records: 0,
            bytes: 0,
        }
    }

    fn delivered(&mut self, records: usize, bytes: usize) {
        self.records += records;
        self.bytes += bytes;
    }

    fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// CPU time per record so far; the service's share only when `service` (gRPC rows).
    fn cpu(&self, service: bool) -> CpuPerRecord {
        self.cpu.per_record(self.records, service)
    }
}

/// Reads every record of `topic`, its partitions assigned from the beginning (no group join);
/// timed from the assignment to the last record.
async fn raw_consume(args: &Args, topic: &str, data: &Dataset, group: &str) -> anyhow::Result<Row> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.stack.bootstrap_servers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("allow.auto.create.topics", "false");
    // The messaging service's consumer defaults, so that both paths fetch alike;
    // `--kafka-property` overrides both.
    for (property, value) in tributary_messaging::consume::CONSUMER_DEFAULTS {
        config.set(property, value);
    }
    args.apply_kafka_properties(&mut config);
    let consumer: StreamConsumer = config.create()?;
    // Like the service, learn the partitions' leaders before assigning (otherwise librdkafka
    // looks up the start offsets only after a 500 ms retry); this happens before the clock
    // starts, which favours this path.
    consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..args.partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    let count = data.framed.len() * args.consume_multiple as usize;
    let mut received = 0;
    let mut clock = OpenToLast::start();
    consumer.assign(&assignment)?;
    while received < count {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .context("raw consumer: no record for 60 s")??;
        clock.delivered(1, message.payload().map_or(0, <[u8]>::len));
        received += 1;
    }
    Ok(Row {
        path: "consume: raw rdkafka StreamConsumer (bytes, assigned, auto-commit)".to_owned(),
        size: data.label,
        records: clock.records,
        seconds: clock.seconds(),
        bytes: clock.bytes,
        p50_ms: None,
        p99_ms: None,
        errors: 0,
        versus: None,
        cpu: clock.cpu(false),
    })
}

/// How the bench's Consume client takes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConsumeMode {
    /// One record per response, one `Ack` per record (the API before batches).
    PerRecord,
    /// Batches of up to `--batch-records`, one `Acks` request per batch with one cumulative ack
    /// per partition.
    Batched,
}

/// The value size the bench counts for a consumed record (or an error).
fn consumed_value_bytes(record: &mpb::ConsumedRecord) -> Option<usize> {
    match record.value.as_ref() {
        Some(value) if value.error.is_none() => Some(match &value.data {
            Some(mpb::consumed_payload::Data::Json(json)) => json.len(),
            Some(mpb::consumed_payload::Data::Raw(raw)) => raw.len(),
            None => 0,
        }),
        _ => None,
    }
}

/// Reads every record of `topic` through one Consume stream (its partitions assigned explicitly,
/// from the earliest offset), acknowledging each record (or each batch); timed from opening the
/// stream to the last record.
async fn grpc_consume(
    args: &Args,
    channel: &AuthChannel,
    topic: &str,
    data: &Dataset,
    group: &str,
    format: mpb::PayloadFormat,
    mode: ConsumeMode,
) -> anyhow::Result<Row> {
    let mut client = MessagingServiceClient::new(channel.clone())
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let (tx, rx) = mpsc::channel::<mpb::ConsumeRequest>(4096);
    let mut clock = OpenToLast::start();
    tx.send(mpb::ConsumeRequest {
        kind: Some(mpb::consume_request::Kind::Subscription(
            mpb::Subscription {
                group_id: group.to_owned(),
                partitions: (0..args.partitions)
                    .map(|partition| mpb::TopicPartition {
                        topic: topic.to_owned(),
                        partition,
                    })
                    .collect(),
                start: mpb::StartPosition::Earliest as i32,
                value_format: format as i32,
                max_unacked: i32::try_from(match mode {
                    ConsumeMode::Batched if args.batch_max_unacked > 0 => args.batch_max_unacked,
                    _ => args.in_flight,
                })
                .unwrap_or(i32::MAX),
                max_batch_records: if mode == ConsumeMode::Batched {
                    args.batch_records
                } else {
                    0
                },
                ..Default::default()
            },
        )),
    })
    .await?;
    let mut responses = client.consume(ReceiverStream::new(rx)).await?.into_inner();
    let count = data.framed.len() * args.consume_multiple as usize;
    let mut received = 0;
    let mut errors = 0;
    // Protobuf rows (the default format): every 1,000th record's JSON is parsed back.
    let protobuf = format == mpb::PayloadFormat::Unspecified;
    while received < count {
        let response = tokio::time::timeout(Duration::from_secs(60), responses.next())
            .await
            .context("Consume: no record for 60 s")?
            .context("Consume stream ended")??;
        let records = match response.kind {
            Some(mpb::consume_response::Kind::Record(record)) => vec![record],
            Some(mpb::consume_response::Kind::Batch(batch)) => batch.records,
            _ => continue,
        };
        let mut bytes = 0;
        for (index, record) in records.iter().enumerate() {
            match consumed_value_bytes(record) {
                Some(size) => bytes += size,
                None => errors += 1,
            }
            if protobuf && (received + index).is_multiple_of(1000) {
                let json = match record.value.as_ref().and_then(|value| value.data.as_ref()) {
                    Some(mpb::consumed_payload::Data::Json(json)) => Some(json.as_str()),
                    _ => None,
                };
                if !json.is_some_and(protobuf_json_decodes) {
                    if errors == 0 {
                        eprintln!("first Protobuf record not decoded to JSON: {record:?}");
                    }
                    errors += 1;
                }
            }
        }
        clock.delivered(records.len(), bytes);
        received += records.len();
        let ack = match mode {
            ConsumeMode::PerRecord => records
                .into_iter()
                .map(|record| {
                    mpb::consume_request::Kind::Ack(mpb::Ack {
                        topic: record.topic,
                        partition: record.partition,
                        offset: record.offset,
                    })
                })
                .collect::<Vec<_>>(),
            ConsumeMode::Batched => {
                // Per partition, the last offset of the batch.
                let mut up_to: Vec<mpb::AckUpTo> = Vec::new();
                for record in records {
                    match up_to
                        .iter_mut()
                        .find(|a| a.partition == record.partition && a.topic == record.topic)
                    {
                        Some(ack) => ack.offset = ack.offset.max(record.offset),
                        None => up_to.push(mpb::AckUpTo {
                            topic: record.topic,
                            partition: record.partition,
                            offset: record.offset,
                        }),
                    }
                }
                vec![mpb::consume_request::Kind::Acks(mpb::Acks {
                    records: Vec::new(),
                    up_to,
                })]
            }
        };
        for kind in ack {
            tx.send(mpb::ConsumeRequest { kind: Some(kind) }).await?;
        }
    }
    drop(tx);
    drop(responses);
    let json = format != mpb::PayloadFormat::Raw;
    Ok(Row {
        path: format!(
            "consume: gRPC Consume ({}, assigned, {})",
            match format {
                mpb::PayloadFormat::Raw => "raw bytes",
                mpb::PayloadFormat::Unspecified => "Protobuf to JSON, default format",
                _ => "Avro to JSON",
            },
            match mode {
                ConsumeMode::PerRecord => "a record per response, ack each".to_owned(),
                ConsumeMode::Batched => format!(
                    "batches of <= {}, max_unacked {}, a cumulative ack per batch",
                    args.batch_records,
                    if args.batch_max_unacked > 0 {
                        args.batch_max_unacked
                    } else {
                        args.in_flight
                    }
                ),
            }
        ),
        size: data.label,
        records: clock.records,
        seconds: clock.seconds(),
        // MB/s counts the Kafka bytes read, like the raw row (not the larger JSON).
        bytes: if json {
            data.bytes / data.framed.len().max(1) * clock.records
        } else {
            clock.bytes
        },
        p50_ms: None,
        p99_ms: None,
        errors,
        versus: None,
        cpu: clock.cpu(true),
    })
}

/// JSON -> Avro and Avro -> JSON on this thread, for `seconds` each.
fn codec_rows(schema: &Schema, data: &Dataset, seconds: u64) -> anyhow::Result<Vec<Row>> {
    let run_for = Duration::from_secs(seconds);
    let mut rows = Vec::new();
    let json_bytes: usize = data.json.iter().map(String::len).sum();
    let avg_json = json_bytes as f64 / data.json.len() as f64;
    let avg_avro = data.bytes as f64 / data.framed.len() as f64;

    let started = Instant::now();
    let mut done = 0usize;
    while started.elapsed() < run_for {
        for k in 0..1000 {
            let text = &data.json[(done + k) % data.json.len()];
            std::hint::black_box(json_to_avro(schema, text)?);
        }
        done += 1000;
    }
    let seconds_taken = started.elapsed().as_secs_f64();
    rows.push(codec_row(
        "codec: JSON -> Avro (json_to_avro, 1 core)".to_owned(),
        data.label,
        done,
        seconds_taken,
        (done as f64 * avg_json) as usize,
    ));

    let bodies: Vec<&[u8]> = data
        .framed
        .iter()
        .map(|f| tributary_avro::wire::decode(f).map(|(_, body)| body))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let mut done = 0usize;
    while started.elapsed() < run_for {
        for k in 0..1000 {
            let body = bodies[(done + k) % bodies.len()];
            std::hint::black_box(avro_to_json(schema, None, body, UnionStyle::Plain)?);
        }
        done += 1000;
    }
    let seconds_taken = started.elapsed().as_secs_f64();
    rows.push(codec_row(
        "codec: Avro -> JSON (avro_to_json, 1 core)".to_owned(),
        data.label,
        done,
        seconds_taken,
        (done as f64 * avg_avro) as usize,
    ));
    Ok(rows)
}

/// JSON -> Protobuf and Protobuf -> JSON (the message alone, without the framing) on this
/// thread, for `seconds` each: what the service's codec does per record.
fn protobuf_codec_rows(
    event: &ProtoEvent,
    data: &Dataset,
    seconds: u64,
) -> anyhow::Result<Vec<Row>> {
    let run_for = Duration::from_secs(seconds);
    let mut rows = Vec::new();
    let json_bytes: usize = data.json.iter().map(String::len).sum();
    let avg_json = json_bytes as f64 / data.json.len() as f64;
    let avg_framed = data.bytes as f64 / data.framed.len() as f64;

    let started = Instant::now();
    let mut done = 0usize;
    while started.elapsed() < run_for {
        for k in 0..1000 {
            let text = &data.json[(done + k) % data.json.len()];
            std::hint::black_box(tributary_protobuf::json::encode_json(&event.message, text)?);
        }
        done += 1000;
    }
    let seconds_taken = started.elapsed().as_secs_f64();
    rows.push(codec_row(
        "codec: JSON -> Protobuf (encode_json, 1 core)".to_owned(),
        data.label,
        done,
        seconds_taken,
        (done as f64 * avg_json) as usize,
    ));

    // The messages: after the framing's magic byte, schema id and message indexes.
    let skip = 5 + event.indexes.len();
    let messages: Vec<&[u8]> = data
        .framed
        .iter()
        .map(|frame| frame.get(skip..).unwrap_or_default())
        .collect();
    let started = Instant::now();
    let mut done = 0usize;
    while started.elapsed() < run_for {
        for k in 0..1000 {
            let message = messages[(done + k) % messages.len()];
            std::hint::black_box(tributary_protobuf::json::decode_to_json(
                &event.message,
                message,
            )?);
        }
        done += 1000;
    }
    let seconds_taken = started.elapsed().as_secs_f64();
    rows.push(codec_row(
        "codec: Protobuf -> JSON (decode_to_json, 1 core)".to_owned(),
        data.label,
        done,
        seconds_taken,
        (done as f64 * avg_framed) as usize,
    ));
    Ok(rows)
}

/// The row with the median records/s.
fn median(mut rows: Vec<Row>) -> Row {
    rows.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    let middle = rows.len() / 2;
    rows.swap_remove(middle)
}

fn print_table(rows: &[Row]) {
    println!(
        "| path | record | records | records/s | MB/s | p50 ack (ms) | p99 ack (ms) | errors | CPU µs/record: service | CPU µs/record: client | service RSS (MiB) | ratio: gRPC/raw (target >= 0.8), REST/gRPC (goal >= 0.5) |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    for row in rows {
        let ms = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.1}"));
        let us = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2}"));
        let ratio = row.versus.map_or("–".to_owned(), |raw| {
            let ratio = row.rate() / raw;
            // REST rows compare with their gRPC row, against the goal of 0.5.
            let verdict = if row.path.contains(": REST ") {
                if ratio >= 0.5 {
                    "REST/gRPC, meets 0.5"
                } else {
                    "REST/gRPC, BELOW 0.5"
                }
            } else if ratio >= 0.8 {
                "meets 0.8"
            } else if ratio >= 0.5 {
                "below 0.8, above 0.5"
            } else {
                "BELOW 0.5"
            };
            format!("{ratio:.2} ({verdict})")
        });
        println!(
            "| {} | {} | {} | {:.0} | {:.1} | {} | {} | {} | {} | {} | {} | {} |",
            row.path,
            row.size,
            row.records,
            row.rate(),
            row.mb_per_s(),
            ms(row.p50_ms),
            ms(row.p99_ms),
            row.errors,
            us(row.cpu.service_us),
            us(row.cpu.client_us),
            ms(row.cpu.service_rss_mib),
            ratio
        );
    }
}

#[allow(clippy::too_many_lines)]
async fn run(
    args: &Args,
    database_url: &str,
    suffix: &str,
    admin: &AdminClient<DefaultClientContext>,
    topics: &mut Vec<String>,
    pki: &Pki,
) -> anyhow::Result<Vec<Row>> {
    let services = Services::start(
        &ServiceOptions {
            registry_bin: args.stack.registry_bin.clone(),
            messaging_bin: args.stack.messaging_bin.clone(),
            database_url: database_url.to_owned(),
            bootstrap_servers: args.stack.bootstrap_servers.clone(),
            kafka_properties: args.kafka_properties.clone(),
            produce_max_in_flight: args.in_flight,
            http2_max_frame_size: args.http2_max_frame_size,
            mode: args.mode(),
            messaging_env: Vec::new(),
        },
        pki,
    )
    .await?;
    if let Some(pid) = services.messaging_pid {
        let _ = SERVICE_PID.set(pid);
    }
    let registry_channel = services.registry.clone();
    let channel = services.messaging.clone();
    let mode = args.mode();

    let schema = Schema::parse(SCHEMA, &[])?;
    let mut registry = RegistryServiceClient::new(registry_channel);
    let schema_id = registry
        .register_schema(rpb::RegisterSchemaRequest {
            subject: format!("bench-{suffix}-value"),
            schema: SCHEMA.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .id;
    let id = u32::try_from(schema_id)?;

    let sets = [
        dataset("~100 B", &schema, id, args.small_records, 100)?,
        dataset("~1 KiB", &schema, id, args.large_records, 1024)?,
    ];

    // Protobuf beside Avro: the same records as a message of a PROTOBUF schema.
    let (event, protobuf_schema_id, protobuf_sets) = if args.skip_protobuf {
        (None, 0, Vec::new())
    } else {
        let event = ProtoEvent::compile()?;
        let protobuf_schema_id = registry
            .register_schema(rpb::RegisterSchemaRequest {
                subject: format!("bench-{suffix}-protobuf-value"),
                schema: PROTO_SCHEMA.to_owned(),
                schema_type: "PROTOBUF".to_owned(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .id;
        let id = u32::try_from(protobuf_schema_id)?;
        let sets = vec![
            protobuf_dataset("~100 B", &event, id, args.small_records, 100)?,
            protobuf_dataset("~1 KiB", &event, id, args.large_records, 1024)?,
        ];
        (Some(event), protobuf_schema_id, sets)
    };
    let describe = |sets: &[Dataset]| {
        sets.iter()
            .map(|s| {
                format!(
                    "{} x {} ({} framed bytes avg)",
                    s.json.len(),
                    s.label,
                    s.bytes / s.json.len().max(1)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    eprintln!(
        "messaging-bench: services {}, {} partitions, {} in flight, median of {} rounds, consume rows read {} times the records; records: {}{}",
        services_mode(mode),
        args.partitions,
        args.in_flight,
        args.rounds,
        args.consume_multiple,
        describe(&sets),
        if protobuf_sets.is_empty() {
            String::new()
        } else {
            format!("; Protobuf: {}", describe(&protobuf_sets))
        }
    );

    let rest_client = rest::RestClient::new(&services.messaging_rest_addr, mode, pki)?;
    let mut rows = Vec::new();
    for (n, data) in sets.iter().enumerate() {
        if matches!(args.only, Only::All | Only::Rest) {
            rows.extend(
                rest::rest_rows(
                    args,
                    &channel,
                    &rest_client,
                    admin,
                    topics,
                    data,
                    schema_id,
                    &format!("bench-{suffix}-{n}-rest"),
                )
                .await?,
            );
            if args.only == Only::Rest {
                continue;
            }
        }
        let protobuf = protobuf_sets.get(n);
        let names: Vec<String> = [
            "raw",
            "grpc-bytes",
            "grpc-json",
            "warmup",
            "grpc-protobuf",
            "raw-protobuf",
        ]
        .iter()
        .map(|kind| format!("bench-{suffix}-{n}-{kind}"))
        .collect();
        create_topics(admin, &names, args.partitions).await?;
        topics.extend(names.iter().cloned());
        // Let the new topics' leaders settle before producing.
        tokio::time::sleep(Duration::from_millis(500)).await;

        // Rounds alternate the paths, so drifting load on the shared cores hits them alike;
        // each row is the round with the median records/s. Later rounds append to the same
        // topics; the consumers read the first records of the raw topic.
        let mut produced: [Vec<Row>; 4] = Default::default();
        let mut consumed: [Vec<Row>; 7] = Default::default();
        for round in 0..args.rounds.max(1) {
            eprintln!("  {}: round {}: producing", data.label, round + 1);
            // The raw producer also writes the records the consumers read.
            let raw_produced = raw_produce(args, &names[0], &names[3], data).await?;
            if args.only != Only::Consume {
                produced[0].push(raw_produced);
            }
            for (slot, sent) in [(1, Sent::Raw), (2, Sent::AvroJson)]
                .into_iter()
                .filter(|_| args.only != Only::Consume)
            {
                produced[slot].push(
                    grpc_produce(
                        args,
                        &channel,
                        &names[slot],
                        &names[3],
                        data,
                        schema_id,
                        sent,
                    )
                    .await?,
                );
            }
            if let Some(protobuf) = protobuf.filter(|_| args.only != Only::Consume) {
                produced[3].push(
                    grpc_produce(
                        args,
                        &channel,
                        &names[4],
                        &names[3],
                        protobuf,
                        protobuf_schema_id,
                        Sent::ProtobufJson,
                    )
                    .await?,
                );
            }
            if args.only == Only::Produce {
                continue;
            }
            if round == 0 && args.consume_multiple > 1 {
                eprintln!(
                    "  {}: topping up the consumed topic to {} times its records",
                    data.label, args.consume_multiple
                );
                for _ in 1..args.consume_multiple {
                    raw_produce(args, &names[0], &names[3], data).await?;
                }
            }
            // The Protobuf rows read framed Protobuf records of their own topic, written as
            // many times by the raw producer (not measured).
            let protobuf_consumed = protobuf.filter(|_| {
                args.consume_formats
                    .includes(mpb::PayloadFormat::Unspecified)
            });
            if round == 0
                && let Some(protobuf) = protobuf_consumed
            {
                eprintln!(
                    "  {}: writing the Protobuf records, {} times",
                    data.label, args.consume_multiple
                );
                for _ in 0..args.consume_multiple {
                    raw_produce(args, &names[5], &names[3], protobuf).await?;
                }
            }
            eprintln!("  {}: round {}: consuming", data.label, round + 1);
            consumed[0].push(
                raw_consume(
                    args,
                    &names[0],
                    data,
                    &format!("bench-{suffix}-{n}-{round}-raw"),
                )
                .await?,
            );
            for (slot, kind, format, mode) in [
                (1, "bytes", mpb::PayloadFormat::Raw, ConsumeMode::PerRecord),
                (
                    2,
                    "json",
                    mpb::PayloadFormat::AvroPlain,
                    ConsumeMode::PerRecord,
                ),
                (
                    3,
                    "bytes-batched",
                    mpb::PayloadFormat::Raw,
                    ConsumeMode::Batched,
                ),
                (
                    4,
                    "json-batched",
                    mpb::PayloadFormat::AvroPlain,
                    ConsumeMode::Batched,
                ),
            ]
            .into_iter()
            .filter(|(_, _, _, mode)| !(args.skip_per_record && *mode == ConsumeMode::PerRecord))
            .filter(|(_, _, format, _)| args.consume_formats.includes(*format))
            {
                consumed[slot].push(
                    grpc_consume(
                        args,
                        &channel,
                        &names[0],
                        data,
                        &format!("bench-{suffix}-{n}-{round}-grpc-{kind}"),
                        format,
                        mode,
                    )
                    .await?,
                );
            }
            if let Some(protobuf) = protobuf_consumed {
                for (slot, kind, mode) in [
                    (5, "protobuf", ConsumeMode::PerRecord),
                    (6, "protobuf-batched", ConsumeMode::Batched),
                ]
                .into_iter()
                .filter(|(_, _, mode)| !(args.skip_per_record && *mode == ConsumeMode::PerRecord))
                {
                    consumed[slot].push(
                        grpc_consume(
                            args,
                            &channel,
                            &names[5],
                            protobuf,
                            &format!("bench-{suffix}-{n}-{round}-grpc-{kind}"),
                            mpb::PayloadFormat::Unspecified,
                            mode,
                        )
                        .await?,
                    );
                }
            }
        }
        for group in [produced.to_vec(), consumed.to_vec()] {
            let mut group = group
                .into_iter()
                .filter(|rounds| !rounds.is_empty())
                .map(median);
            let Some(raw) = group.next() else {
                continue;
            };
            let raw_rate = raw.rate();
            rows.push(raw);
            for mut row in group {
                row.versus = Some(raw_rate);
                rows.push(row);
            }
        }

        if args.only == Only::All {
            eprintln!("  {}: codec", data.label);
            rows.extend(codec_rows(&schema, data, args.codec_seconds)?);
            if let (Some(event), Some(protobuf)) = (&event, protobuf) {
                rows.extend(protobuf_codec_rows(event, protobuf, args.codec_seconds)?);
            }
        }
    }
    Ok(rows)
}

/// How the services were secured, for the output.
fn services_mode(mode: Mode) -> &'static str {
    match mode {
        Mode::Plaintext => "in plaintext (--tls off --auth none; --plaintext given)",
        _ => {
            "in the secure default mode (TLS + basic authentication on both; messaging -> registry over TLS as a user)"
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The run's CA, certificate and user (removed at the end).
    let pki =
        Pki::create(std::env::temp_dir().join(format!("messaging-bench-{}", std::process::id())))?;
    let suffix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        .to_string();
    let database =
        Database::create(&args.stack.admin_url, &format!("bench_messaging_{suffix}")).await?;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &args.stack.bootstrap_servers)
        .create()?;

    let mut topics = Vec::new();
    let started = Instant::now();
    let outcome = run(&args, &database.url, &suffix, &admin, &mut topics, &pki).await;

    // Clean up whatever happened.
    if !topics.is_empty() {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        if let Err(error) = admin.delete_topics(&names, &AdminOptions::new()).await {
            eprintln!("cannot delete the bench topics: {error}");
        }
    }
    database.drop().await?;

    let rows = outcome?;
    println!();
    println!(
        "messaging-bench: services {}; Kafka over the stack's PLAINTEXT listener",
        services_mode(args.mode())
    );
    println!();
    print_table(&rows);
    println!();
    println!(
        "(whole run {:.0} s; MB/s counts the framed Avro bytes in Kafka (framed Protobuf on the Protobuf rows); gRPC/raw compares records/s with the raw rdkafka row of the same record size; CPU µs/record is the CPU time, all threads, of the messaging service and of this process (the raw client, or the gRPC client) over the measurement, divided by its records; RSS is the service's at the end of the measurement)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
