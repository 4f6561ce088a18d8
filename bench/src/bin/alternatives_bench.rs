//! `alternatives-bench`: the messaging service against what a team would run without it, in one
//! run, on one broker, with the same records (issue #21).
//!
//! It starts a registry and a messaging service (`tributary_bench::services`, TLS + basic
//! authentication by default), then for records of ~100 B and ~1 KiB (keyed by `user`, one
//! 10-field Avro schema, topics of `--partitions` partitions) measures, each row bounded by
//! `--records` records or `--seconds` seconds, whichever comes first:
//!
//! - Rust, produce: the gateway's `ProduceStream` (a `serde_json::Value` per record, sent as
//!   Avro-as-JSON, encoded by the service) against an in-process pipeline (rdkafka
//!   `FutureProducer` + apache-avro: `serde_json::Value` -> Avro value -> resolved against the
//!   schema registered over the registry's HTTP API -> Confluent-framed bytes);
//! - Rust, consume: the gateway's `Consume` (batches, cumulative acks, Avro decoded to JSON by
//!   the service, parsed to `serde_json::Value`) against the pipeline (rdkafka `StreamConsumer`,
//!   at-least-once offset storing, apache-avro decoding to `serde_json::Value`);
//! - raw rdkafka producing and consuming the framed bytes, labelled as the physical limit: the
//!   raw producer writes the topic every consumer reads;
//! - Python (`bench/python/alternatives.py`, run by `--python`): the generated gRPC client
//!   against confluent-kafka's `SerializingProducer`/`DeserializingConsumer` with
//!   `AvroSerializer`/`AvroDeserializer` against the same registry, records as dicts.
//!
//! Every row reports records/s, and the CPU seconds per million records of the client process
//! and of the messaging service apart. Then the ratios against the goals: Python through the
//! gateway >= 1.0x native confluent-kafka (produce and consume), Rust through the gateway >=
//! 0.8x the in-process pipeline, and every gateway row against the raw rows.
//!
//! It fails (non-zero, the reason printed) when a consumer delivers fewer records than the
//! topic holds or skips an offset, when a record decodes differently from what was produced
//! (every record is compared with the generator's, by a digest; `score`, an Avro float, at
//! float precision), or when a produced topic lacks an acknowledged record (each produced topic
//! is read back and decoded with apache-avro after its row). The checks' time is measured and
//! taken out of the rows' wall and client CPU time.
//!
//! Run it through `scripts/bench alternatives`.

/// The load generator's allocator, as in `messaging-bench`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use clap::Parser;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tributary_bench::cpu_seconds;
use tributary_bench::records::{Records, SCHEMA, user};
use tributary_bench::security::{AuthChannel, Mode, Pki, USER};
use tributary_bench::services::{Database, ServiceOptions, Services, StackArgs, create_topics};
use tributary_proto::messaging::v1 as mpb;
use tributary_proto::messaging::v1::messaging_service_client::MessagingServiceClient;

#[derive(Debug, Parser)]
struct Args {
    /// The binaries to start, Postgres and Kafka.
    #[command(flatten)]
    stack: StackArgs,
    /// Most records of a row (and in the topic the consumers read).
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Most seconds of a row: a producer stops sending then (and waits for what is in flight),
    /// a consumer stops reading.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Partitions of each topic.
    #[arg(long, default_value_t = 10)]
    partitions: i32,
    /// Framed record sizes (bytes) to run, e.g. `--size 100 --size 1024` (the default).
    #[arg(long = "size")]
    sizes: Vec<usize>,
    /// Records in flight (sent, not yet acknowledged) of the raw and pipeline producers, and the
    /// service's MESSAGING_PRODUCE_MAX_IN_FLIGHT (the ProduceStream row's window): the same as
    /// the batched Produce rows keep outstanding (16 calls of 1,000).
    #[arg(long, default_value_t = 16_000)]
    in_flight: usize,
    /// Most records per Consume response of the gateway consumers (max_batch_records; the
    /// service's 1 MiB max_batch_bytes cuts ~1 KiB records' batches at ~850).
    #[arg(long, default_value_t = 2000)]
    batch_records: i32,
    /// Records per unary `Produce` call of the batched gateway producers (Rust and Python).
    #[arg(long, default_value_t = 1000)]
    produce_batch: usize,
    /// Unary `Produce` calls in flight of the batched gateway producers (a call is answered
    /// when its slowest record is written: many calls hide that wait).
    #[arg(long, default_value_t = 16)]
    produce_calls: usize,
    /// Records per `ProduceStream` message of the stream-batched gateway producer (`records`).
    #[arg(long, default_value_t = 500)]
    stream_batch: usize,
    /// The gateway consumers' max_unacked.
    #[arg(long, default_value_t = 20_000)]
    max_unacked: i32,
    /// The largest HTTP/2 frame the Rust gRPC client accepts.
    #[arg(long, default_value_t = 1 << 20)]
    http2_max_frame_size: u32,
    /// The Python interpreter with grpcio and confluent-kafka (the project's venv).
    #[arg(long, default_value = ".stack/venv/bin/python")]
    python: PathBuf,
    /// The Python half of the bench.
    #[arg(long, default_value = "bench/python/alternatives.py")]
    python_script: PathBuf,
    /// The generated Python client (scripts/gen-clients python).
    #[arg(long, default_value = "examples/python/gen")]
    python_gen: PathBuf,
    /// An argument for the Python half (e.g. `--python-arg=--produce-batch=1000`). Repeatable.
    #[arg(long = "python-arg", allow_hyphen_values = true)]
    python_args: Vec<String>,
    /// Leave out the Python rows.
    #[arg(long)]
    skip_python: bool,
    /// Leave out the Rust rows but the raw producer (which writes the consumers' topic).
    #[arg(long)]
    skip_rust: bool,
    /// An environment variable `NAME=VALUE` of the messaging service, e.g.
    /// `LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2` to try another allocator.
    /// Repeatable.
    #[arg(long = "service-env", value_parser = parse_env)]
    service_env: Vec<(String, String)>,
    /// Record the messaging service with `perf record` (call graphs from DWARF) during each
    /// Rust gateway row and during the Python half, into `DIR/<size>-<row>.perf.data`.
    #[arg(long, value_name = "DIR")]
    perf_dir: Option<PathBuf>,
    /// Start both services with `--tls off --auth none`.
    #[arg(long)]
    plaintext: bool,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("expected NAME=VALUE, got '{text}'"))
}

impl Args {
    fn mode(&self) -> Mode {
        if self.plaintext {
            Mode::Plaintext
        } else {
            Mode::Basic
        }
    }

    fn limit(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }
}

/// The producers' settings: the messaging service's (services/messaging/src/kafka.rs), for the
/// raw producer, the pipeline and (in Python) confluent-kafka alike.
const PRODUCER_SETTINGS: [(&str, &str); 3] = [
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("partitioner", "murmur2_random"),
];

/// The consumers' fetch settings: the messaging service's defaults (CONSUMER_DEFAULTS) but the
/// statistics, which only the service uses; for the raw consumer, the pipeline and Python.
fn consumer_settings() -> Vec<(&'static str, &'static str)> {
    tributary_messaging::consume::CONSUMER_DEFAULTS
        .into_iter()
        .filter(|(property, _)| *property != "statistics.interval.ms")
        .collect()
}

/// The Avro `float` field: compared at float precision (a JSON decoder may print it shortest
/// as a float, `0.1`, or widened to a double, `0.10000000149011612`).
const FLOAT_FIELD: &str = "score";

/// The fields of the schema, in order.
const FIELDS: [&str; 10] = [
    "id", "ts", "user", "amount", "count", "active", "country", "device", "score", "note",
];

/// A digest of a keyed record as an application receives it: its key and its value's ten fields
/// (`None` when the value is not shaped as the schema).
fn digest(key: &str, value: &Value) -> Option<(usize, u64)> {
    let object = value.as_object()?;
    if object.len() != FIELDS.len() {
        return None;
    }
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    for field in FIELDS {
        match object.get(field)? {
            Value::Null => 0u8.hash(&mut hasher),
            Value::Bool(b) => (1u8, *b).hash(&mut hasher),
            Value::Number(n) if field == FLOAT_FIELD => {
                (2u8, (n.as_f64()? as f32).to_bits()).hash(&mut hasher);
            }
            Value::Number(n) => match n.as_i64() {
                Some(i) => (3u8, i).hash(&mut hasher),
                None => (4u8, n.as_f64()?.to_bits()).hash(&mut hasher),
            },
            Value::String(s) => (5u8, s.as_str()).hash(&mut hasher),
            _ => return None,
        }
    }
    let id = usize::try_from(object.get("id")?.as_i64()?).ok()?;
    Some((id, hasher.finish()))
}

/// The expected digests of records `0..count`.
fn expected_digests(records: &Records, count: usize) -> Vec<u64> {
    (0..count)
        .map(|i| digest(&user(i), &records.value(i)).map_or(0, |(_, d)| d))
        .collect()
}

/// What a consumer delivered, checked record by record: offsets without gaps per partition,
/// every record equal to the generator's, and at the end every record of the topic.
#[derive(Debug)]
struct Delivery<'a> {
    what: String,
    expected: &'a [u64],
    next_offset: HashMap<i32, i64>,
    seen: Vec<bool>,
    distinct: usize,
    delivered: usize,
    /// Records at offsets not delivered before.
    fresh: usize,
    duplicates: usize,
    /// Time spent checking (taken out of the row's wall and client CPU time).
    checking: Duration,
}

impl<'a> Delivery<'a> {
    fn new(what: String, expected: &'a [u64]) -> Self {
        Self {
            what,
            expected,
            next_offset: HashMap::new(),
            seen: vec![false; expected.len()],
            distinct: 0,
            delivered: 0,
            fresh: 0,
            duplicates: 0,
            checking: Duration::ZERO,
        }
    }

    /// A record's position: its partition's offsets must follow each other from 0 (a fresh
    /// topic). Returns whether it is new.
    fn offset(&mut self, partition: i32, offset: i64) -> anyhow::Result<bool> {
        self.delivered += 1;
        let next = self.next_offset.entry(partition).or_insert(0);
        if offset > *next {
            bail!(
                "{}: partition {partition} skipped offsets {}..{offset}: records lost",
                self.what,
                *next
            );
        }
        if offset < *next {
            self.duplicates += 1;
            return Ok(false);
        }
        *next = offset + 1;
        self.fresh += 1;
        Ok(true)
    }

    /// A decoded record at `partition`/`offset`.
    fn record(
        &mut self,
        partition: i32,
        offset: i64,
        key: &str,
        value: &Value,
    ) -> anyhow::Result<()> {
        let new = self.offset(partition, offset)?;
        let Some((id, digest)) = digest(key, value) else {
            bail!(
                "{}: record at {partition}/{offset} is not shaped as the schema: key {key:?}, value {value}",
                self.what
            );
        };
        if self.expected.get(id) != Some(&digest) {
            bail!(
                "{}: record {id} at {partition}/{offset} decoded differently from what was produced: key {key:?}, value {value}",
                self.what
            );
        }
        if new && !self.seen[id] {
            self.seen[id] = true;
            self.distinct += 1;
        }
        Ok(())
    }

    /// At the end of a row: unless it stopped at its time limit, every record was delivered.
    fn finish(&self, timed_out: bool) -> anyhow::Result<()> {
        if !timed_out && self.fresh < self.expected.len() {
            bail!(
                "{}: delivered {} of the topic's {} records",
                self.what,
                self.delivered,
                self.expected.len()
            );
        }
        Ok(())
    }
}

/// The registry's Confluent-compatible HTTP API, as a team's pipeline calls it.
#[derive(Debug, Clone)]
struct RegistryHttp {
    client: reqwest::Client,
    base: String,
    authorization: Option<String>,
}

impl RegistryHttp {
    fn new(mode: Mode, pki: &Pki, addr: &str) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
        if mode.is_tls() {
            builder = builder.use_preconfigured_tls(tributary_security::client::client_config(
                Some(&pki.ca),
                None,
                &[b"http/1.1"],
            )?);
        }
        Ok(Self {
            client: builder.build()?,
            base: mode.url(addr),
            authorization: mode.is_tls().then(|| pki.basic_authorization()),
        })
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let request = match &self.authorization {
            Some(authorization) => request.header("authorization", authorization),
            None => request,
        };
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        ensure!(status.is_success(), "registry HTTP API: {status}: {body}");
        Ok(body)
    }

    /// Registers `schema` under `subject`; its id.
    async fn register(&self, subject: &str, schema: &str) -> anyhow::Result<u32> {
        let body = self
            .call(
                self.client
                    .post(format!("{}/subjects/{subject}/versions", self.base))
                    .header("content-type", "application/vnd.schemaregistry.v1+json")
                    .json(&serde_json::json!({ "schema": schema })),
            )
            .await?;
        body.get("id")
            .and_then(Value::as_u64)
            .and_then(|id| u32::try_from(id).ok())
            .with_context(|| format!("no id in {body}"))
    }

    /// The schema of `id`.
    async fn schema(&self, id: u32) -> anyhow::Result<apache_avro::Schema> {
        let body = self
            .call(self.client.get(format!("{}/schemas/ids/{id}", self.base)))
            .await?;
        let text = body
            .get("schema")
            .and_then(Value::as_str)
            .with_context(|| format!("no schema in {body}"))?;
        Ok(apache_avro::Schema::parse_str(text)?)
    }
}

/// The pipeline's decoder: writer schemas by id, fetched from the registry on first sight.
struct Decoder {
    registry: RegistryHttp,
    readers: HashMap<u32, GenericDatumReader<'static>>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("schemas", &self.readers.len())
            .finish_non_exhaustive()
    }
}

impl Decoder {
    fn new(registry: RegistryHttp) -> Self {
        Self {
            registry,
            readers: HashMap::new(),
        }
    }

    /// A Confluent-framed Avro payload decoded to a JSON value.
    async fn decode(&mut self, payload: &[u8]) -> anyhow::Result<Value> {
        let (header, mut datum) = payload
            .split_at_checked(5)
            .filter(|(header, _)| header[0] == 0)
            .context("not Confluent-framed")?;
        let id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        if !self.readers.contains_key(&id) {
            // A few schemas per run: leaked so that their readers can borrow them.
            let schema: &'static apache_avro::Schema =
                Box::leak(Box::new(self.registry.schema(id).await?));
            self.readers
                .insert(id, GenericDatumReader::builder(schema).build()?);
        }
        let reader = self.readers.get(&id).context("reader")?;
        Ok(Value::try_from(reader.read_value(&mut datum)?)?)
    }
}

/// One measured row.
#[derive(Debug, Clone)]
struct Row {
    lang: &'static str,
    direction: Direction,
    path: Path,
    label: String,
    size: String,
    records: usize,
    seconds: f64,
    /// CPU seconds of the client process over the row.
    client_cpu: f64,
    /// CPU seconds of the messaging service over the row (gateway rows).
    service_cpu: Option<f64>,
    timed_out: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Produce,
    Consume,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Raw rdkafka with framed bytes: the physical limit.
    Raw,
    /// What a team writes without the gateway.
    Native,
    /// Through the messaging service.
    Gateway,
    /// Through the messaging service, records in batches (unary `Produce`).
    GatewayBatched,
    /// Through the messaging service, records in batches in one stream (`ProduceStream` with
    /// `records`).
    GatewayStreamBatched,
}

impl Row {
    fn rate(&self) -> f64 {
        self.records as f64 / self.seconds
    }
    /// CPU seconds per million records.
    fn per_million(&self, cpu: f64) -> f64 {
        cpu * 1e6 / self.records.max(1) as f64
    }
    fn total_cpu(&self) -> f64 {
        self.client_cpu + self.service_cpu.unwrap_or(0.0)
    }
}

/// The clock of a row: wall time, this process's CPU time and the service's.
#[derive(Debug, Clone, Copy)]
struct Clock {
    started: Instant,
    client: f64,
    service: Option<f64>,
    service_pid: Option<u32>,
}

impl Clock {
    fn start(service_pid: Option<u32>) -> Self {
        Self {
            started: Instant::now(),
            client: cpu_seconds(std::process::id()).unwrap_or(f64::NAN),
            service: service_pid.and_then(cpu_seconds),
            service_pid,
        }
    }

    /// The row, its checks' time taken out of its wall and client CPU time.
    #[allow(clippy::too_many_arguments)]
    fn row(
        &self,
        direction: Direction,
        path: Path,
        label: &str,
        size: &str,
        records: usize,
        checking: Duration,
        timed_out: bool,
        gateway: bool,
    ) -> Row {
        let checking = checking.as_secs_f64();
        Row {
            lang: "Rust",
            direction,
            path,
            label: label.to_owned(),
            size: size.to_owned(),
            records,
            seconds: self.started.elapsed().as_secs_f64() - checking,
            client_cpu: cpu_seconds(std::process::id()).unwrap_or(f64::NAN)
                - self.client
                - checking,
            service_cpu: if gateway {
                self.service
                    .zip(self.service_pid.and_then(cpu_seconds))
                    .map(|(before, now)| now - before)
            } else {
                None
            },
            timed_out,
        }
    }
}

fn producer(args: &Args) -> anyhow::Result<FutureProducer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.stack.bootstrap_servers)
        .set("allow.auto.create.topics", "false");
    for (property, value) in PRODUCER_SETTINGS {
        config.set(property, value);
    }
    Ok(config.create()?)
}

fn consumer<C: rdkafka::config::FromClientConfig>(
    args: &Args,
    group: &str,
    store_offsets_manually: bool,
) -> anyhow::Result<C> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.stack.bootstrap_servers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("allow.auto.create.topics", "false");
    if store_offsets_manually {
        // At-least-once: an offset is stored (and auto-committed) once its record is handled.
        config.set("enable.auto.offset.store", "false");
    }
    for (property, value) in consumer_settings() {
        config.set(property, value);
    }
    Ok(config.create()?)
}

/// Every partition of `topic` from the beginning.
fn from_beginning(topic: &str, partitions: i32) -> anyhow::Result<TopicPartitionList> {
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    Ok(assignment)
}

/// Record sizes: a label and the note length that makes record 0's framed Avro about `target`
/// bytes.
fn note_len(schema: &apache_avro::Schema, target: usize) -> anyhow::Result<usize> {
    let writer = GenericDatumWriter::builder(schema).build()?;
    let base = encode_frame(&writer, schema, 0, Records::new(0).value(0))?.len();
    Ok(target.saturating_sub(base + 2))
}

/// Records a producer sends to the warm-up topic before its clock starts: its connections,
/// producer id and metadata are then ready, as they are in a long-running application (and in
/// the messaging service, warmed the same way through `Produce`).
const WARMUP: usize = 1000;

/// Sends `WARMUP` copies of `payload` through `producer` to the warm-up topic (never read) and
/// waits for them.
async fn warm_up(producer: &FutureProducer, warmup: &str, payload: &[u8]) -> anyhow::Result<()> {
    let mut deliveries = FuturesUnordered::new();
    for _ in 0..WARMUP {
        let record = FutureRecord::<str, [u8]>::to(warmup).payload(payload);
        deliveries.push(producer.send_result(record).map_err(|(error, _)| error)?);
    }
    while let Some(delivered) = deliveries.next().await {
        ensure!(
            matches!(delivered, Ok(Ok(_))),
            "warm-up record not delivered"
        );
    }
    Ok(())
}

/// The pipeline's encoding of one record: a `serde_json::Value` to an Avro value, resolved
/// against the schema (which validates it), written behind the Confluent header of schema `id`.
fn encode_frame(
    writer: &GenericDatumWriter<'_>,
    schema: &apache_avro::Schema,
    id: u32,
    value: Value,
) -> anyhow::Result<Vec<u8>> {
    let mut frame = Vec::with_capacity(64);
    frame.push(0);
    frame.extend_from_slice(&id.to_be_bytes());
    let avro = apache_avro::types::Value::try_from(value)?.resolve(schema)?;
    writer.write_value_ref(&mut frame, &avro)?;
    Ok(frame)
}

/// Sends records `0..--records` through `producer` (`record(i)` makes record `i`'s key and
/// framed value; `None`: no more), at most `--in-flight` unacknowledged, until `--seconds` after
/// the clock started; how many were acknowledged (all that were sent, or it fails), and whether
/// the time limit stopped it.
async fn send_windowed<'a>(
    args: &Args,
    producer: &FutureProducer,
    topic: &str,
    clock: &Clock,
    mut record: impl FnMut(usize) -> anyhow::Result<Option<(Cow<'a, str>, Cow<'a, [u8]>)>>,
) -> anyhow::Result<(usize, bool)> {
    let settle = |delivered: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, _>| {
        ensure!(
            matches!(delivered, Ok(Ok(_))),
            "{topic}: a record was not delivered"
        );
        Ok(1)
    };
    let mut in_flight = FuturesUnordered::new();
    let mut acked = 0;
    for i in 0..args.records {
        if clock.started.elapsed() >= args.limit() {
            while let Some(delivered) = in_flight.next().await {
                acked += settle(delivered)?;
            }
            return Ok((acked, true));
        }
        if in_flight.len() >= args.in_flight
            && let Some(delivered) = in_flight.next().await
        {
            acked += settle(delivered)?;
        }
        let Some((key, frame)) = record(i)? else {
            break;
        };
        let delivery = loop {
            match producer.send_result(
                FutureRecord::to(topic)
                    .key(key.as_ref())
                    .payload(frame.as_ref()),
            ) {
                Ok(delivery) => break delivery,
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        };
        in_flight.push(delivery);
    }
    while let Some(delivered) = in_flight.next().await {
        acked += settle(delivered)?;
    }
    Ok((acked, false))
}

/// Raw rdkafka: the framed bytes of records `0..` (encoded before the clock starts), keyed,
/// into the topic every consumer reads. Returns the row and how many records the topic holds.
async fn raw_produce(
    args: &Args,
    topic: &str,
    warmup: &str,
    records: &Records,
    schema: &apache_avro::Schema,
    id: u32,
    size: &str,
) -> anyhow::Result<(Row, usize)> {
    let writer = GenericDatumWriter::builder(schema).build()?;
    let mut frames = Vec::with_capacity(args.records);
    for i in 0..args.records {
        frames.push((
            user(i),
            encode_frame(&writer, schema, id, records.value(i))?,
        ));
    }
    let producer = producer(args)?;
    if let Some((_, frame)) = frames.first() {
        warm_up(&producer, warmup, frame).await?;
    }
    let clock = Clock::start(None);
    let (acked, timed_out) = send_windowed(args, &producer, topic, &clock, |i| {
        Ok(frames
            .get(i)
            .map(|(key, frame)| (Cow::Borrowed(key.as_str()), Cow::Borrowed(frame.as_slice()))))
    })
    .await?;
    let row = clock.row(
        Direction::Produce,
        Path::Raw,
        "raw rdkafka FutureProducer (framed Avro bytes, encoded beforehand): physical limit",
        size,
        acked,
        Duration::ZERO,
        timed_out,
        false,
    );
    Ok((row, acked))
}

/// The in-process pipeline: per record, a `serde_json::Value` to an Avro value (resolved
/// against the schema, which validates it), encoded and framed, produced with rdkafka.
async fn pipeline_produce(
    args: &Args,
    topic: &str,
    warmup: &str,
    records: &Records,
    registry: &RegistryHttp,
    size: &str,
) -> anyhow::Result<(Row, usize)> {
    // The pipeline's start: its schema registered (TopicNameStrategy), its producer.
    let id = registry.register(&format!("{topic}-value"), SCHEMA).await?;
    let schema = apache_avro::Schema::parse_str(SCHEMA)?;
    let writer = GenericDatumWriter::builder(&schema).build()?;
    let producer = producer(args)?;
    warm_up(
        &producer,
        warmup,
        &encode_frame(&writer, &schema, id, records.value(0))?,
    )
    .await?;
    let clock = Clock::start(None);
    let (acked, timed_out) = send_windowed(args, &producer, topic, &clock, |i| {
        let value = records.value(i);
        let key = value["user"].as_str().unwrap_or_default().to_owned();
        let frame = encode_frame(&writer, &schema, id, value)?;
        Ok(Some((Cow::Owned(key), Cow::Owned(frame))))
    })
    .await?;
    let row = clock.row(
        Direction::Produce,
        Path::Native,
        "in-process rdkafka + apache-avro from serde_json::Value",
        size,
        acked,
        Duration::ZERO,
        timed_out,
        false,
    );
    Ok((row, acked))
}

fn client(channel: &AuthChannel) -> MessagingServiceClient<AuthChannel> {
    MessagingServiceClient::new(channel.clone())
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

/// The gateway: per record, a `serde_json::Value` written as JSON text into an `AvroPayload`
/// (by schema id), keyed by text, through one ProduceStream with `--in-flight` records
/// unacknowledged at most, `per_message` records per request (one: `record`; more: `records`,
/// their results batched too).
#[allow(clippy::too_many_arguments)]
async fn gateway_produce(
    args: &Args,
    channel: &AuthChannel,
    service_pid: Option<u32>,
    topic: &str,
    records: &Records,
    schema_id: i32,
    size: &str,
    per_message: usize,
) -> anyhow::Result<(Row, usize)> {
    ensure!(
        (1..=args.in_flight).contains(&per_message),
        "--stream-batch must be 1 to --in-flight ({})",
        args.in_flight
    );
    let mut client = client(channel);
    let window = Arc::new(Semaphore::new(args.in_flight));
    let sent = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<mpb::ProduceStreamRequest>(256);
    let clock = Clock::start(service_pid);
    let sender = {
        let (window, sent, records, topic) = (
            Arc::clone(&window),
            Arc::clone(&sent),
            records.clone(),
            topic.to_owned(),
        );
        let (count, limit) = (args.records, args.limit());
        tokio::spawn(async move {
            let mut i = 0;
            while i < count {
                if clock.started.elapsed() >= limit {
                    return true;
                }
                let end = count.min(i + per_message);
                let Ok(permits) = window
                    .acquire_many(u32::try_from(end - i).unwrap_or(1))
                    .await
                else {
                    return false;
                };
                permits.forget();
                let mut batch: Vec<_> = (i..end)
                    .map(|i| gateway_record(&records, i, &topic, schema_id))
                    .collect();
                sent.fetch_add(batch.len(), Ordering::Relaxed);
                let request = if per_message == 1 {
                    mpb::ProduceStreamRequest {
                        record: batch.pop(),
                        ..Default::default()
                    }
                } else {
                    mpb::ProduceStreamRequest {
                        records: batch,
                        ..Default::default()
                    }
                };
                if tx.send(request).await.is_err() {
                    return false;
                }
                i = end;
            }
            false
        })
    };
    let mut responses = client
        .produce_stream(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let mut acked = 0;
    let mut acked_ids = vec![false; args.records];
    while let Some(response) = responses.next().await {
        let response = response?;
        let results = if per_message == 1 {
            vec![(response.sequence, response.result)]
        } else {
            ensure!(
                response.result.is_none(),
                "gateway producer: an unbatched result on a batched stream"
            );
            response
                .results
                .into_iter()
                .map(|r| (r.sequence, r.result))
                .collect()
        };
        window.add_permits(results.len());
        for (sequence, result) in results {
            match result.and_then(|r| r.result) {
                Some(mpb::produce_result::Result::Metadata(_)) => {
                    acked += 1;
                    if let Some(slot) = acked_ids.get_mut(sequence as usize) {
                        *slot = true;
                    }
                }
                other => bail!("gateway producer: record {sequence} not written: {other:?}"),
            }
        }
    }
    let timed_out = sender.await?;
    let sent = sent.load(Ordering::Relaxed);
    ensure!(
        acked == sent && acked_ids[..sent].iter().all(|a| *a),
        "gateway producer: {acked} of {sent} records acknowledged"
    );
    let (path, how) = if per_message == 1 {
        (Path::Gateway, "one record per message".to_owned())
    } else {
        (
            Path::GatewayStreamBatched,
            format!("{per_message} records per message"),
        )
    };
    let row = clock.row(
        Direction::Produce,
        path,
        &format!(
            "gateway ProduceStream, {how}, Avro as JSON from serde_json::Value, {} in flight",
            args.in_flight
        ),
        size,
        acked,
        Duration::ZERO,
        timed_out,
        true,
    );
    Ok((row, acked))
}

/// Record `i` as the gateway takes it: its `serde_json::Value` written as JSON text into an
/// `AvroPayload` by schema id, keyed by `user` as text.
fn gateway_record(records: &Records, i: usize, topic: &str, schema_id: i32) -> mpb::ProducerRecord {
    let value = records.value(i);
    mpb::ProducerRecord {
        topic: topic.to_owned(),
        key: Some(mpb::Payload {
            kind: Some(mpb::payload::Kind::Text(
                value["user"].as_str().unwrap_or_default().to_owned(),
            )),
        }),
        value: Some(mpb::Payload {
            kind: Some(mpb::payload::Kind::Avro(mpb::AvroPayload {
                json: value.to_string(),
                schema: Some(mpb::avro_payload::Schema::SchemaId(schema_id)),
            })),
        }),
        ..Default::default()
    }
}

/// The gateway, records in batches: unary `Produce` calls of `--produce-batch` records,
/// `--produce-calls` calls in flight; each record succeeds or fails on its own in the response.
#[allow(clippy::too_many_arguments)]
async fn gateway_produce_batched(
    args: &Args,
    channel: &AuthChannel,
    service_pid: Option<u32>,
    topic: &str,
    records: &Records,
    schema_id: i32,
    size: &str,
) -> anyhow::Result<(Row, usize)> {
    let client = client(channel);
    let mut calls = futures::stream::FuturesOrdered::new();
    let mut acked = 0;
    let settle = |response: Result<tonic::Response<mpb::ProduceResponse>, tonic::Status>,
                  count: usize|
     -> anyhow::Result<usize> {
        let results = response?.into_inner().results;
        ensure!(
            results.len() == count,
            "gateway producer: {} results for {count} records",
            results.len()
        );
        for result in results {
            match result.result {
                Some(mpb::produce_result::Result::Metadata(_)) => {}
                other => bail!("gateway producer: a record not written: {other:?}"),
            }
        }
        Ok(count)
    };
    let clock = Clock::start(service_pid);
    let mut timed_out = false;
    let mut i = 0;
    while i < args.records {
        if clock.started.elapsed() >= args.limit() {
            timed_out = true;
            break;
        }
        let end = args.records.min(i + args.produce_batch);
        let request = mpb::ProduceRequest {
            records: (i..end)
                .map(|n| gateway_record(records, n, topic, schema_id))
                .collect(),
        };
        let count = end - i;
        i = end;
        let mut client = client.clone();
        calls.push_back(async move { (client.produce(request).await, count) });
        while calls.len() >= args.produce_calls {
            if let Some((response, count)) = calls.next().await {
                acked += settle(response, count)?;
            }
        }
    }
    while let Some((response, count)) = calls.next().await {
        acked += settle(response, count)?;
    }
    ensure!(
        acked == i,
        "gateway producer: {acked} of {i} records acknowledged"
    );
    let row = clock.row(
        Direction::Produce,
        Path::GatewayBatched,
        &format!(
            "gateway Produce, {} records per call, {} calls in flight, Avro as JSON from serde_json::Value",
            args.produce_batch, args.produce_calls
        ),
        size,
        acked,
        Duration::ZERO,
        timed_out,
        true,
    );
    Ok((row, acked))
}

/// Raw rdkafka: the framed bytes as they are (offsets checked, nothing decoded).
async fn raw_consume(
    args: &Args,
    topic: &str,
    expected: &[u64],
    group: &str,
    size: &str,
) -> anyhow::Result<Row> {
    let consumer: StreamConsumer = consumer(args, group, false)?;
    consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut delivery = Delivery::new(format!("raw consumer of {topic}"), expected);
    let clock = Clock::start(None);
    consumer.assign(&from_beginning(topic, args.partitions)?)?;
    let mut timed_out = false;
    while delivery.delivered < expected.len() {
        if clock.started.elapsed() >= args.limit() {
            timed_out = true;
            break;
        }
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .context("raw consumer: no record for 30 s")??;
        ensure!(message.payload().is_some(), "raw consumer: a null value");
        delivery.offset(message.partition(), message.offset())?;
    }
    delivery.finish(timed_out)?;
    Ok(clock.row(
        Direction::Consume,
        Path::Raw,
        "raw rdkafka StreamConsumer (bytes, not decoded): physical limit",
        size,
        delivery.delivered,
        delivery.checking,
        timed_out,
        false,
    ))
}

/// Records decoded but not yet checked, checked a block at a time (the checks' time is taken out
/// of the row).
const CHECK_BLOCK: usize = 512;

/// The in-process pipeline: rdkafka, apache-avro to `serde_json::Value`, the offset stored once
/// the record is handled (at-least-once, auto-committed).
async fn pipeline_consume(
    args: &Args,
    topic: &str,
    expected: &[u64],
    registry: &RegistryHttp,
    group: &str,
    size: &str,
) -> anyhow::Result<Row> {
    let consumer: StreamConsumer = consumer(args, group, true)?;
    consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut decoder = Decoder::new(registry.clone());
    let mut delivery = Delivery::new(format!("pipeline consumer of {topic}"), expected);
    let mut handled: Vec<(i32, i64, String, Value)> = Vec::with_capacity(CHECK_BLOCK);
    let clock = Clock::start(None);
    consumer.assign(&from_beginning(topic, args.partitions)?)?;
    let mut timed_out = false;
    let mut received = 0;
    while received < expected.len() {
        if clock.started.elapsed() >= args.limit() {
            timed_out = true;
            break;
        }
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .context("pipeline consumer: no record for 30 s")??;
        let key = String::from_utf8(message.key().unwrap_or_default().to_vec())?;
        let value = decoder
            .decode(message.payload().unwrap_or_default())
            .await?;
        consumer.store_offset_from_message(&message)?;
        received += 1;
        handled.push((message.partition(), message.offset(), key, value));
        if handled.len() == CHECK_BLOCK {
            check_block(&mut delivery, &mut handled)?;
        }
    }
    check_block(&mut delivery, &mut handled)?;
    delivery.finish(timed_out)?;
    Ok(clock.row(
        Direction::Consume,
        Path::Native,
        "in-process rdkafka + apache-avro to serde_json::Value, offsets stored per record",
        size,
        received,
        delivery.checking,
        timed_out,
        false,
    ))
}

fn check_block(
    delivery: &mut Delivery<'_>,
    handled: &mut Vec<(i32, i64, String, Value)>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    for (partition, offset, key, value) in handled.drain(..) {
        delivery.record(partition, offset, &key, &value)?;
    }
    delivery.checking += started.elapsed();
    Ok(())
}

/// The gateway: one Consume stream, batches of `--batch-records`, Avro decoded by the service to
/// JSON (plain unions) and parsed to `serde_json::Value`, one cumulative ack per partition of
/// each batch.
#[allow(clippy::too_many_arguments)]
async fn gateway_consume(
    args: &Args,
    channel: &AuthChannel,
    service_pid: Option<u32>,
    topic: &str,
    expected: &[u64],
    group: &str,
    size: &str,
) -> anyhow::Result<Row> {
    let mut client = client(channel);
    let (tx, rx) = mpsc::channel::<mpb::ConsumeRequest>(1024);
    let mut delivery = Delivery::new(format!("gateway consumer of {topic}"), expected);
    let mut handled: Vec<(i32, i64, String, Value)> = Vec::with_capacity(CHECK_BLOCK);
    let clock = Clock::start(service_pid);
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
                value_format: mpb::PayloadFormat::AvroPlain as i32,
                key_format: mpb::PayloadFormat::Raw as i32,
                max_unacked: args.max_unacked,
                max_batch_records: args.batch_records,
                ..Default::default()
            },
        )),
    })
    .await?;
    let mut responses = client.consume(ReceiverStream::new(rx)).await?.into_inner();
    let mut timed_out = false;
    let mut received = 0;
    while received < expected.len() {
        if clock.started.elapsed() >= args.limit() {
            timed_out = true;
            break;
        }
        let response = tokio::time::timeout(Duration::from_secs(30), responses.next())
            .await
            .context("gateway consumer: no record for 30 s")?
            .with_context(|| {
                format!(
                    "gateway consumer: the stream ended after {received} of {} records",
                    expected.len()
                )
            })??;
        let records = match response.kind {
            Some(mpb::consume_response::Kind::Batch(batch)) => batch.records,
            Some(mpb::consume_response::Kind::Record(record)) => vec![record],
            _ => continue,
        };
        let mut up_to: Vec<mpb::AckUpTo> = Vec::new();
        for record in records {
            let key = match record.key.and_then(|key| key.data) {
                Some(mpb::consumed_payload::Data::Raw(raw)) => String::from_utf8(raw.to_vec())?,
                other => bail!("gateway consumer: key {other:?}"),
            };
            let value: Value = match record.value {
                Some(mpb::ConsumedPayload {
                    data: Some(mpb::consumed_payload::Data::Json(json)),
                    error: None,
                    ..
                }) => serde_json::from_str(&json)?,
                other => bail!("gateway consumer: value not decoded: {other:?}"),
            };
            match up_to
                .iter_mut()
                .find(|ack| ack.partition == record.partition)
            {
                Some(ack) => ack.offset = ack.offset.max(record.offset),
                None => up_to.push(mpb::AckUpTo {
                    topic: record.topic,
                    partition: record.partition,
                    offset: record.offset,
                }),
            }
            received += 1;
            handled.push((record.partition, record.offset, key, value));
        }
        tx.send(mpb::ConsumeRequest {
            kind: Some(mpb::consume_request::Kind::Acks(mpb::Acks {
                records: Vec::new(),
                up_to,
            })),
        })
        .await?;
        if handled.len() >= CHECK_BLOCK {
            check_block(&mut delivery, &mut handled)?;
        }
    }
    check_block(&mut delivery, &mut handled)?;
    delivery.finish(timed_out)?;
    let row = clock.row(
        Direction::Consume,
        Path::Gateway,
        &format!(
            "gateway Consume, batches of <= {}, max_unacked {}, to serde_json::Value",
            args.batch_records, args.max_unacked
        ),
        size,
        received,
        delivery.checking,
        timed_out,
        true,
    );
    drop(tx);
    drop(responses);
    Ok(row)
}

/// After a produce row: the topic read back (raw rdkafka, decoded with apache-avro) holds
/// every one of the `acked` records, each as produced.
async fn verify_produced(
    args: &Args,
    topic: &str,
    acked: usize,
    expected: &[u64],
    registry: &RegistryHttp,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = consumer(args, &format!("{topic}-verify"), false)?;
    let mut total = 0;
    for partition in 0..args.partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
        total += usize::try_from(high - low)?;
    }
    consumer.assign(&from_beginning(topic, args.partitions)?)?;
    let mut decoder = Decoder::new(registry.clone());
    let mut delivery = Delivery::new(format!("{topic} read back"), &expected[..acked]);
    let mut read = 0;
    let mut quiet = Instant::now();
    while read < total {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            ensure!(
                quiet.elapsed() < Duration::from_secs(30),
                "{topic}: read back {read} of {total} records, then nothing for 30 s"
            );
            continue;
        };
        quiet = Instant::now();
        let message = message?;
        let key = String::from_utf8(message.key().unwrap_or_default().to_vec())?;
        let value = decoder
            .decode(message.payload().unwrap_or_default())
            .await?;
        delivery.record(message.partition(), message.offset(), &key, &value)?;
        read += 1;
    }
    if delivery.distinct < acked {
        let missing = delivery.seen.iter().position(|seen| !seen).unwrap_or(0);
        bail!(
            "{topic}: {} of {acked} acknowledged records are not in the topic (first: record {missing}); lost acknowledged records",
            acked - delivery.distinct
        );
    }
    ensure!(
        total == acked,
        "{topic}: {total} records in the topic, {acked} acknowledged"
    );
    Ok(())
}

/// `perf record` of the messaging service over one row (with `--perf-dir`).
#[derive(Debug)]
struct Profile(Option<tokio::process::Child>);

impl Profile {
    fn start(args: &Args, pid: Option<u32>, name: &str) -> anyhow::Result<Self> {
        let (Some(dir), Some(pid)) = (&args.perf_dir, pid) else {
            return Ok(Self(None));
        };
        std::fs::create_dir_all(dir)?;
        let child = tokio::process::Command::new("perf")
            .args([
                "record",
                "-q",
                "-F",
                "499",
                "--call-graph",
                "dwarf,16384",
                "-p",
            ])
            .arg(pid.to_string())
            .arg("-o")
            .arg(dir.join(format!("{name}.perf.data")))
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start perf (apt-get install linux-perf)")?;
        Ok(Self(Some(child)))
    }

    async fn stop(self) -> anyhow::Result<()> {
        if let Some(mut child) = self.0 {
            if let Some(pid) = child.id() {
                // perf writes its file on SIGINT.
                tokio::process::Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .status()
                    .await?;
            }
            child.wait().await?;
        }
        Ok(())
    }
}

/// What the Python half needs to know.
#[derive(Debug)]
struct PythonRun<'a> {
    services: &'a Services,
    pki: &'a Pki,
    size: &'a str,
    note_len: usize,
    schema_id: u32,
    source: &'a str,
    source_records: usize,
    native_topic: &'a str,
    gateway_topic: &'a str,
    suffix: &'a str,
}

/// Runs the Python half for one size; its rows (it prints one JSON object per row on stdout;
/// progress and failures on stderr).
async fn python_rows(args: &Args, run: &PythonRun<'_>) -> anyhow::Result<Vec<Row>> {
    let mode = args.mode();
    let mut command = tokio::process::Command::new(&args.python);
    command
        .arg(&args.python_script)
        .arg("--gen")
        .arg(&args.python_gen)
        .args(["--messaging", &run.services.messaging_addr])
        .args([
            "--registry-url",
            &mode.url(&run.services.registry_http_addr),
        ])
        .args(["--bootstrap-servers", &args.stack.bootstrap_servers])
        .args(["--schema", SCHEMA])
        .args(["--size", run.size])
        .args(["--note-len", &run.note_len.to_string()])
        .args(["--schema-id", &run.schema_id.to_string()])
        .args(["--source", run.source])
        .args(["--source-records", &run.source_records.to_string()])
        .args(["--native-topic", run.native_topic])
        .args(["--gateway-topic", run.gateway_topic])
        .args(["--group-prefix", &format!("bench-{}", run.suffix)])
        .args(["--records", &args.records.to_string()])
        .args(["--seconds", &args.seconds.to_string()])
        .args(["--partitions", &args.partitions.to_string()])
        .args(["--batch-records", &args.batch_records.to_string()])
        .args(["--max-unacked", &args.max_unacked.to_string()])
        .args(["--produce-batch", &args.produce_batch.to_string()])
        .args(["--produce-calls", &args.produce_calls.to_string()]);
    for (property, value) in PRODUCER_SETTINGS {
        command.args(["--producer-property", &format!("{property}={value}")]);
    }
    for (property, value) in consumer_settings() {
        command.args(["--consumer-property", &format!("{property}={value}")]);
    }
    if let Some(pid) = run.services.messaging_pid {
        command.args(["--service-pid", &pid.to_string()]);
    }
    if mode.is_tls() {
        command
            .arg("--ca")
            .arg(&run.pki.ca)
            .args(["--username", USER])
            .arg("--password-file")
            .arg(&run.pki.password_file);
    }
    command.args(&args.python_args);
    // Its progress and failures on our stderr (`output()` would capture them), its rows on a
    // pipe.
    let output = command
        .stderr(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {}", args.python.display()))?
        .wait_with_output()
        .await?;
    if !output.status.success() {
        bail!(
            "the Python bench failed ({}); its reason is printed above",
            output.status
        );
    }
    let mut rows = Vec::new();
    for line in String::from_utf8(output.stdout)?.lines() {
        let Ok(row) = serde_json::from_str::<Value>(line) else {
            eprintln!("python: {line}");
            continue;
        };
        let text = |name: &str| row.get(name).and_then(Value::as_str).unwrap_or_default();
        let number = |name: &str| row.get(name).and_then(Value::as_f64);
        rows.push(Row {
            lang: "Python",
            direction: if text("direction") == "produce" {
                Direction::Produce
            } else {
                Direction::Consume
            },
            path: if text("path") == "gateway" {
                Path::Gateway
            } else {
                Path::Native
            },
            label: text("label").to_owned(),
            size: run.size.to_owned(),
            records: number("records").unwrap_or(0.0) as usize,
            seconds: number("seconds").unwrap_or(f64::NAN),
            client_cpu: number("client_cpu").unwrap_or(f64::NAN),
            service_cpu: number("service_cpu"),
            timed_out: row.get("timed_out").and_then(Value::as_bool) == Some(true),
        });
    }
    ensure!(!rows.is_empty(), "the Python bench printed no rows");
    Ok(rows)
}

#[allow(clippy::too_many_lines)]
async fn run(
    args: &Args,
    database_url: &str,
    suffix: &str,
    admin: &AdminClient<DefaultClientContext>,
    topics: &mut Vec<String>,
    pki: &Pki,
) -> anyhow::Result<(Vec<Row>, Option<String>)> {
    let services = Services::start(
        &ServiceOptions {
            registry_bin: args.stack.registry_bin.clone(),
            messaging_bin: args.stack.messaging_bin.clone(),
            database_url: database_url.to_owned(),
            bootstrap_servers: args.stack.bootstrap_servers.clone(),
            kafka_properties: Vec::new(),
            produce_max_in_flight: args.in_flight,
            http2_max_frame_size: args.http2_max_frame_size,
            mode: args.mode(),
            messaging_env: args.service_env.clone(),
        },
        pki,
    )
    .await?;
    let pid = services.messaging_pid;
    let registry = RegistryHttp::new(args.mode(), pki, &services.registry_http_addr)?;
    let schema = apache_avro::Schema::parse_str(SCHEMA)?;
    let schema_id = registry
        .register(&format!("bench-{suffix}-value"), SCHEMA)
        .await?;
    let sizes = if args.sizes.is_empty() {
        vec![100, 1024]
    } else {
        args.sizes.clone()
    };
    let mut rows = Vec::new();
    for (n, target) in sizes.into_iter().enumerate() {
        let size = if target >= 1024 && target.is_multiple_of(1024) {
            format!("~{} KiB", target / 1024)
        } else {
            format!("~{target} B")
        };
        let note_len = note_len(&schema, target)?;
        let records = Records::new(note_len);
        let names: Vec<String> = [
            "source",
            "rust-native",
            "rust-gateway",
            "py-native",
            "py-gateway",
            "rust-gateway-batched",
            "warmup",
            "rust-gateway-stream-batched",
        ]
        .iter()
        .map(|kind| format!("bench-alt-{suffix}-{n}-{kind}"))
        .collect();
        create_topics(admin, &names, args.partitions).await?;
        topics.extend(names.iter().cloned());
        tokio::time::sleep(Duration::from_millis(500)).await;
        eprintln!("{size}: the records' digests (note of {note_len} characters)");
        let expected = expected_digests(&records, args.records);

        eprintln!("{size}: raw producer -> {}", names[0]);
        let (raw, source_records) = raw_produce(
            args, &names[0], &names[6], &records, &schema, schema_id, &size,
        )
        .await?;
        rows.push(raw);
        verify_produced(args, &names[0], source_records, &expected, &registry).await?;
        let source = &expected[..source_records];

        if !args.skip_rust {
            eprintln!("{size}: Rust pipeline producer");
            let (row, acked) =
                pipeline_produce(args, &names[1], &names[6], &records, &registry, &size).await?;
            rows.push(row);
            verify_produced(args, &names[1], acked, &expected, &registry).await?;
            // The service's producer (one for all streams) warmed as the pipeline's was.
            let mut warm = client(&services.messaging);
            for first in (0..WARMUP).step_by(500) {
                let response = warm
                    .produce(mpb::ProduceRequest {
                        records: (first..first + 500)
                            .map(|i| {
                                gateway_record(
                                    &records,
                                    i,
                                    &names[6],
                                    i32::try_from(schema_id).unwrap_or_default(),
                                )
                            })
                            .collect(),
                    })
                    .await?
                    .into_inner();
                ensure!(
                    response.results.iter().all(|r| matches!(
                        r.result,
                        Some(mpb::produce_result::Result::Metadata(_))
                    )),
                    "warm-up records not produced through the gateway"
                );
            }
            eprintln!("{size}: Rust gateway producer");
            let profile = Profile::start(args, pid, &format!("{target}-rust-gateway-produce"))?;
            let (row, acked) = gateway_produce(
                args,
                &services.messaging,
                pid,
                &names[2],
                &records,
                i32::try_from(schema_id)?,
                &size,
                1,
            )
            .await?;
            profile.stop().await?;
            rows.push(row);
            verify_produced(args, &names[2], acked, &expected, &registry).await?;
            eprintln!("{size}: Rust gateway producer, stream batches");
            let profile = Profile::start(
                args,
                pid,
                &format!("{target}-rust-gateway-produce-stream-batched"),
            )?;
            let (row, acked) = gateway_produce(
                args,
                &services.messaging,
                pid,
                &names[7],
                &records,
                i32::try_from(schema_id)?,
                &size,
                args.stream_batch,
            )
            .await?;
            profile.stop().await?;
            rows.push(row);
            verify_produced(args, &names[7], acked, &expected, &registry).await?;
            eprintln!("{size}: Rust gateway producer, batches");
            let profile =
                Profile::start(args, pid, &format!("{target}-rust-gateway-produce-batched"))?;
            let (row, acked) = gateway_produce_batched(
                args,
                &services.messaging,
                pid,
                &names[5],
                &records,
                i32::try_from(schema_id)?,
                &size,
            )
            .await?;
            profile.stop().await?;
            rows.push(row);
            verify_produced(args, &names[5], acked, &expected, &registry).await?;
        }
        eprintln!("{size}: raw consumer");
        rows.push(
            raw_consume(
                args,
                &names[0],
                source,
                &format!("bench-alt-{suffix}-{n}-raw"),
                &size,
            )
            .await?,
        );
        if !args.skip_rust {
            eprintln!("{size}: Rust pipeline consumer");
            rows.push(
                pipeline_consume(
                    args,
                    &names[0],
                    source,
                    &registry,
                    &format!("bench-alt-{suffix}-{n}-native"),
                    &size,
                )
                .await?,
            );
            eprintln!("{size}: Rust gateway consumer");
            let profile = Profile::start(args, pid, &format!("{target}-rust-gateway-consume"))?;
            rows.push(
                gateway_consume(
                    args,
                    &services.messaging,
                    pid,
                    &names[0],
                    source,
                    &format!("bench-alt-{suffix}-{n}-gateway"),
                    &size,
                )
                .await?,
            );
            profile.stop().await?;
        }
        if !args.skip_python {
            eprintln!("{size}: Python");
            let profile = Profile::start(args, pid, &format!("{target}-python"))?;
            let python = python_rows(
                args,
                &PythonRun {
                    services: &services,
                    pki,
                    size: &size,
                    note_len,
                    schema_id,
                    source: &names[0],
                    source_records,
                    native_topic: &names[3],
                    gateway_topic: &names[4],
                    suffix,
                },
            )
            .await?;
            profile.stop().await?;
            for row in &python {
                if row.direction == Direction::Produce {
                    let topic = if row.path == Path::Gateway {
                        &names[4]
                    } else {
                        &names[3]
                    };
                    verify_produced(args, topic, row.records, &expected, &registry).await?;
                }
            }
            rows.extend(python);
        }
    }
    Ok((rows, pid.and_then(memory_of)))
}

/// A process's resident memory now and at its peak (`/proc/<pid>/status`), in MiB.
fn memory_of(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kb| kb.trim().parse::<u64>().ok())
            .map(|kb| kb / 1024)
    };
    Some(format!(
        "messaging service memory at the end: resident {} MiB, peak {} MiB",
        field("VmRSS:")?,
        field("VmHWM:")?
    ))
}

fn print_rows(rows: &[Row]) {
    println!(
        "| lang | direction | path | record | records | s | records/s | client CPU s/M rec | service CPU s/M rec | total CPU s/M rec |"
    );
    println!("|---|---|---|---|--:|--:|--:|--:|--:|--:|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {}{} | {:.1} | {:.0} | {:.2} | {} | {:.2} |",
            row.lang,
            match row.direction {
                Direction::Produce => "produce",
                Direction::Consume => "consume",
            },
            row.label,
            row.size,
            row.records,
            if row.timed_out { " (time limit)" } else { "" },
            row.seconds,
            row.rate(),
            row.per_million(row.client_cpu),
            row.service_cpu.map_or("–".to_owned(), |cpu| format!(
                "{:.2}",
                row.per_million(cpu)
            )),
            row.per_million(row.total_cpu()),
        );
    }
}

/// The ratios against the goals, and every gateway row against the raw row.
fn print_ratios(rows: &[Row]) -> usize {
    let find = |lang: &str, direction: Direction, path: Path, size: &str| {
        rows.iter().find(|row| {
            (row.lang == lang || path == Path::Raw)
                && row.direction == direction
                && row.path == path
                && row.size == size
        })
    };
    let mut sizes: Vec<&str> = rows.iter().map(|row| row.size.as_str()).collect();
    sizes.dedup();
    println!(
        "| comparison | record | gateway records/s | other records/s | ratio | goal | met | total CPU s/M rec: gateway / other |"
    );
    println!("|---|---|--:|--:|--:|--:|---|--:|");
    let mut missed = 0;
    for size in sizes {
        for direction in [Direction::Produce, Direction::Consume] {
            let what = match direction {
                Direction::Produce => "produce",
                Direction::Consume => "consume",
            };
            for (lang, other, goal, name) in [
                ("Python", Path::Native, Some(1.0), "confluent-kafka + Avro"),
                ("Rust", Path::Native, Some(0.8), "in-process pipeline"),
                ("Python", Path::Raw, None, "raw rdkafka (Rust)"),
                ("Rust", Path::Raw, None, "raw rdkafka"),
            ] {
                // A goal is met when one of the ways through the gateway meets it.
                let mut best: Option<bool> = None;
                for (path, how) in [
                    (Path::Gateway, "gateway"),
                    (Path::GatewayBatched, "gateway (Produce batches)"),
                    (
                        Path::GatewayStreamBatched,
                        "gateway (ProduceStream batches)",
                    ),
                ] {
                    let (Some(gateway), Some(other)) = (
                        find(lang, direction, path, size),
                        find(lang, direction, other, size),
                    ) else {
                        continue;
                    };
                    let ratio = gateway.rate() / other.rate();
                    let met = goal.map(|goal| ratio >= goal);
                    best = match (best, met) {
                        (Some(a), Some(b)) => Some(a || b),
                        (a, b) => a.or(b),
                    };
                    println!(
                        "| {lang} {what}: {how} vs {name} | {size} | {:.0} | {:.0} | {ratio:.2} | {} | {} | {:.2} / {:.2} |",
                        gateway.rate(),
                        other.rate(),
                        goal.map_or("–".to_owned(), |goal| format!(">= {goal:.1}")),
                        match met {
                            Some(true) => "yes",
                            Some(false) => "**no**",
                            None => "(reference)",
                        },
                        gateway.per_million(gateway.total_cpu()),
                        other.per_million(other.total_cpu()),
                    );
                }
                if best == Some(false) {
                    missed += 1;
                }
            }
        }
    }
    missed
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let pki = Pki::create(
        std::env::temp_dir().join(format!("alternatives-bench-{}", std::process::id())),
    )?;
    let suffix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        .to_string();
    let database = Database::create(
        &args.stack.admin_url,
        &format!("bench_alternatives_{suffix}"),
    )
    .await?;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &args.stack.bootstrap_servers)
        .create()?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut topics = Vec::new();
    let started = Instant::now();
    let outcome = run(&args, &database.url, &suffix, &admin, &mut topics, &pki).await;
    if !topics.is_empty() {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        if let Err(error) = admin.delete_topics(&names, &AdminOptions::new()).await {
            eprintln!("cannot delete the bench topics: {error}");
        }
    }
    database.drop().await?;
    let (rows, memory) = outcome?;
    println!();
    println!(
        "alternatives-bench: services {}{}; Kafka over the stack's PLAINTEXT listener; {} partitions; each row <= {} records or {} s; load average at start {}, at end {}",
        if args.plaintext {
            "in plaintext"
        } else {
            "with TLS + basic authentication"
        },
        args.service_env
            .iter()
            .map(|(name, value)| format!(", messaging service with {name}={value}"))
            .collect::<String>(),
        args.partitions,
        args.records,
        args.seconds,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    if let Some(memory) = memory {
        println!("{memory}");
    }
    println!();
    print_rows(&rows);
    println!();
    let missed = print_ratios(&rows);
    println!();
    println!(
        "(whole run {:.0} s; {missed} goal(s) not met; records/s over the row's wall time and CPU per million records, both without the harness's checks; client CPU is the client process's, all threads (this process for Rust rows, the Python interpreter for Python rows); service CPU is the messaging service's)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
