//! Consuming, with an **at-least-once** guarantee.
//!
//! A `Consume` stream owns one Kafka consumer of the client's group, created when the stream
//! opens and closed when it ends (closing leaves the group at once, so there is no server-side
//! consumer instance that lingers or expires). Auto-commit is off: the group's offset for a
//! partition is committed only past records the client has acknowledged. Precisely, per
//! partition the committed offset is the lowest delivered offset not yet acknowledged, or one
//! past the highest delivered offset when every delivered record is acknowledged. So:
//!
//! - a record that was delivered and not acknowledged is delivered again after the stream is
//!   reopened, or (possibly to another member) after a rebalance takes its partition away;
//! - records may be delivered more than once (after such a redelivery), never skipped;
//! - with `auto_ack`, records count as acknowledged as they are sent (at-most-once past the
//!   server).
//!
//! Records go one per response, or, when the subscription sets `max_batch_records`, in batches
//! of the records librdkafka has already fetched (plus what arrives within `batch_linger_ms`),
//! bounded in records and bytes. Acknowledgements come one record per request, or many per
//! request (`Acks`), individually or cumulatively ("every record of this partition delivered up
//! to offset N"); the commit rule above is the same for all of them.
//!
//! A stream's task takes records from librdkafka with their payloads raw and notes them as
//! delivered at once (so nothing taken is committed past before it is acknowledged); batches of
//! Avro are decoded on tasks of their own while the stream takes the next records, and
//! responses go out in the order the records were taken, at most `MAX_OUTGOING` ahead.
//!
//! Flow control: at most `max_unacked` records are delivered and not acknowledged; the stream
//! pauses until acknowledgements come (a pause longer than `max.poll.interval.ms` makes the
//! consumer leave its group, and its unacknowledged records go to other members).
//!
//! Observability: each delivered record gets a CONSUMER span (`receive <topic>`) whose parent
//! is the trace context in the record's `traceparent` header, so a trace crosses Kafka; the
//! registry calls decoding it are its children. The stream's lag per partition (high watermark
//! from librdkafka's statistics, every [`STATISTICS_INTERVAL_MS`], minus where the stream would
//! resume) is the `messaging_consumer_lag_messages` gauge while the stream lives. librdkafka
//! reports statistics only while the stream polls it, so while flow control holds the stream
//! (a stuck client: exactly when lag matters) the watermarks are fetched from the brokers
//! instead, every [`PAUSED_LAG_REFRESH`].
//!
//! A record whose key or value cannot be decoded (not Confluent-framed, unknown schema id,
//! corrupt Avro) is delivered with a per-payload error and its raw bytes, and the stream goes
//! on. Only an unreachable registry ends the stream (UNAVAILABLE), since a reconnect then gets
//! the record decoded.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use prost::Message as _;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, MessageStream, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status, Streaming};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tributary_avro::Schema;
use tributary_proto::messaging::v1 as pb;

use crate::avro;
use crate::error::MessagingError;
use crate::kafka::Kafka;
use crate::metrics::{MessagingMetrics, StreamLagHandle};
use crate::schemas::Schemas;

/// Default most unacknowledged records per stream.
const DEFAULT_MAX_UNACKED: usize = 1000;

/// How often librdkafka reports partition watermarks to a stream (for its lag), unless the
/// `statistics.interval.ms` property says otherwise.
pub const STATISTICS_INTERVAL_MS: &str = "5000";

/// How long librdkafka waits before fetching a partition again once the consumer's queue holds
/// `queued.min.messages` records, unless `fetch.queue.backoff.ms` says otherwise. librdkafka's
/// default, 1000 ms, starves any consumer that drains the queue in less than a second: the
/// queue runs dry and the stream idles for the rest of that second (measured: 130k records/s
/// against 670k with this value, on 100 B records). 20 ms still lets the queue bound memory.
pub const FETCH_QUEUE_BACKOFF_MS: &str = "20";

/// The librdkafka settings a Consume stream's consumer gets unless `KAFKA_PROPERTIES` sets them
/// (the bench gives its raw consumer the same ones).
pub const CONSUMER_DEFAULTS: [(&str, &str); 2] = [
    ("statistics.interval.ms", STATISTICS_INTERVAL_MS),
    ("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS),
];

/// How often the lag of a stream held by flow control is refreshed from the brokers' watermarks.
const PAUSED_LAG_REFRESH: Duration = Duration::from_secs(5);

/// Most client requests (acks, seeks) handled in one turn of a stream's loop, before records
/// and rebalances get their turn.
const MAX_REQUESTS_PER_TURN: usize = 1024;

/// Bounds of the batching options of a subscription.
const MAX_BATCH_RECORDS: i32 = 10_000;
const DEFAULT_MAX_BATCH_BYTES: usize = 1 << 20;
const MAX_BATCH_LINGER_MS: i32 = 1000;

/// Per partition: what was delivered and not acknowledged, and where commits stand.
#[derive(Debug, Default)]
struct PartitionAcks {
    pending: BTreeSet<i64>,
    /// One past the highest delivered offset.
    next: i64,
    /// The first offset delivered: where the partition's position stood.
    baseline: i64,
    /// The last offset committed (or to be committed) by this stream, once an ack moved it.
    committed: Option<i64>,
}

impl PartitionAcks {
    /// The commit position after acknowledgements, when it moved: the lowest pending offset, or
    /// one past the highest delivered offset when nothing is pending.
    fn advance(&mut self) -> Option<i64> {
        let position = self.pending.first().copied().unwrap_or(self.next);
        (position > self.committed.unwrap_or(self.baseline)).then(|| {
            self.committed = Some(position);
            position
        })
    }
}

/// Acknowledgement bookkeeping of one stream.
#[derive(Debug, Default)]
pub struct AckTracker {
    /// Topic -> partition -> its acknowledgements (keyed by topic first so that lookups borrow
    /// the topic name instead of copying it per record).
    partitions: HashMap<String, HashMap<i32, PartitionAcks>>,
    /// Records delivered and not acknowledged, over all partitions.
    unacked: usize,
    /// Moves each time a partition is forgotten.
    generation: u64,
}

impl AckTracker {
    fn partition_mut(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionAcks> {
        self.partitions.get_mut(topic)?.get_mut(&partition)
    }

    /// Notes a delivered record.
    pub fn delivered(&mut self, topic: &str, partition: i32, offset: i64) {
        let partitions = match self.partitions.get_mut(topic) {
            Some(partitions) => partitions,
            None => self.partitions.entry(topic.to_owned()).or_default(),
        };
        let acks = partitions
            .entry(partition)
            .or_insert_with(|| PartitionAcks {
                pending: BTreeSet::new(),
                next: offset,
                baseline: offset,
                committed: None,
            });
        if acks.pending.insert(offset) {
            self.unacked += 1;
        }
        acks.next = acks.next.max(offset + 1);
    }

    /// Notes an acknowledgement; returns the offset to commit when the commit position moved.
    /// Acknowledging a record that is not pending (unknown, revoked, or acknowledged already)
    /// does nothing.
    pub fn ack(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let acks = self.partition_mut(topic, partition)?;
        if !acks.pending.remove(&offset) {
            return None;
        }
        let position = acks.advance();
        self.unacked -= 1;
        position
    }

    /// Notes a cumulative acknowledgement of every pending record of a partition at or below
    /// `offset`; returns the offset to commit when the commit position moved.
    pub fn ack_up_to(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let acks = self.partition_mut(topic, partition)?;
        let above = acks.pending.split_off(&offset.saturating_add(1));
        let acknowledged = std::mem::replace(&mut acks.pending, above).len();
        if acknowledged == 0 {
            return None;
        }
        let position = acks.advance();
        self.unacked -= acknowledged;
        position
    }

    /// Records delivered and not acknowledged, over all partitions.
    pub fn unacked(&self) -> usize {
        self.unacked
    }

    /// Whether a delivered record is still waiting for its acknowledgement.
    pub fn is_pending(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.partitions
            .get(topic)
            .and_then(|partitions| partitions.get(&partition))
            .is_some_and(|acks| acks.pending.contains(&offset))
    }

    /// A number that moves each time a partition is forgotten.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Forgets a partition (revoked, or sought).
    pub fn forget(&mut self, topic: &str, partition: i32) {
        self.generation += 1;
        let Some(partitions) = self.partitions.get_mut(topic) else {
            return;
        };
        if let Some(acks) = partitions.remove(&partition) {
            self.unacked -= acks.pending.len();
        }
        if partitions.is_empty() {
            self.partitions.remove(topic);
        }
    }

    /// Where the stream would resume a partition after a reconnect: its lowest unacknowledged
    /// delivered offset, else one past the last delivered one.
    pub fn resume_position(&self, topic: &str, partition: i32) -> Option<i64> {
        let acks = self.partitions.get(topic)?.get(&partition)?;
        Some(acks.pending.first().copied().unwrap_or(acks.next))
    }

    /// The topics this stream delivered records of.
    pub fn topics(&self) -> Vec<String> {
        self.partitions.keys().cloned().collect()
    }

    /// The commit positions this stream has reached.
    pub fn positions(&self) -> Vec<(String, i32, i64)> {
        self.partitions
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions.iter().filter_map(|(partition, acks)| {
                    acks.committed
                        .map(|offset| (topic.clone(), *partition, offset))
                })
            })
            .collect()
    }
}

/// Rebalance notifications and statistics from librdkafka's thread to the stream's task.
#[derive(Debug)]
enum RebalanceEvent {
    Assigned(Vec<(String, i32)>),
    Revoked(Vec<(String, i32)>),
    Watermarks(Vec<PartitionWatermark>),
}

/// One assigned partition in librdkafka's statistics.
#[derive(Debug)]
struct PartitionWatermark {
    topic: String,
    partition: i32,
    high: i64,
    committed: i64,
}

struct StreamContext {
    events: mpsc::UnboundedSender<RebalanceEvent>,
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl ClientContext for StreamContext {
    fn stats(&self, statistics: Statistics) {
        let watermarks = statistics
            .topics
            .into_iter()
            .flat_map(|(topic, stats)| {
                stats
                    .partitions
                    .into_values()
                    .filter(|p| p.partition >= 0 && p.hi_offset >= 0 && p.fetch_state != "none")
                    .map(move |p| PartitionWatermark {
                        topic: topic.clone(),
                        partition: p.partition,
                        high: p.hi_offset,
                        committed: p.committed_offset,
                    })
            })
            .collect();
        let _ = self.events.send(RebalanceEvent::Watermarks(watermarks));
    }
}

/// The high watermarks of `topics`' partitions, asked of the brokers (a topic that cannot be
/// asked is left out: its lag keeps its last value).
async fn broker_watermarks(kafka: &Kafka, topics: Vec<String>) -> Vec<PartitionWatermark> {
    let mut watermarks = Vec::new();
    for topic in topics {
        match kafka.watermarks(&topic).await {
            Ok(partitions) => {
                watermarks.extend(partitions.into_iter().map(|p| PartitionWatermark {
                    topic: topic.clone(),
                    partition: p.partition,
                    high: p.high,
                    committed: -1,
                }))
            }
            Err(error) => tracing::debug!(%error, %topic, "cannot refresh a paused stream's lag"),
        }
    }
    watermarks
}

/// The lag of each partition in `watermarks`: its high watermark minus where the stream would
/// resume it (or, before the stream delivered from it, the group's committed offset).
fn lags(
    tracker: &AckTracker,
    watermarks: Vec<PartitionWatermark>,
) -> impl Iterator<Item = (String, i32, i64)> + '_ {
    watermarks.into_iter().filter_map(|w| {
        let position = tracker
            .resume_position(&w.topic, w.partition)
            .or((w.committed >= 0).then_some(w.committed))?;
        Some((w.topic, w.partition, w.high - position))
    })
}

impl ConsumerContext for StreamContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let event = match rebalance {
            Rebalance::Assign(tpl) => RebalanceEvent::Assigned(partitions_of(tpl)),
            Rebalance::Revoke(tpl) => RebalanceEvent::Revoked(partitions_of(tpl)),
            Rebalance::Error(error) => {
                tracing::warn!(%error, "rebalance error");
                return;
            }
        };
        let _ = self.events.send(event);
    }
}

type KafkaConsumer = StreamConsumer<StreamContext>;

/// How records are grouped into responses, when the subscription asks for batches.
#[derive(Debug, Clone, Copy)]
struct Batching {
    max_records: usize,
    max_bytes: usize,
    linger: Duration,
}

impl Batching {
    /// The batching options of a subscription, checked; `None` for one record per response.
    fn of(subscription: &pb::Subscription) -> Result<Option<Self>, MessagingError> {
        let records = subscription.max_batch_records;
        if !(0..=MAX_BATCH_RECORDS).contains(&records) {
            return Err(MessagingError::invalid(
                "max_batch_records",
                format!("{records} is not between 0 and {MAX_BATCH_RECORDS}"),
            ));
        }
        let bytes = subscription.max_batch_bytes;
        if bytes < 0 {
            return Err(MessagingError::invalid(
                "max_batch_bytes",
                format!("{bytes} is negative"),
            ));
        }
        let linger = subscription.batch_linger_ms;
        if !(0..=MAX_BATCH_LINGER_MS).contains(&linger) {
            return Err(MessagingError::invalid(
                "batch_linger_ms",
                format!("{linger} is not between 0 and {MAX_BATCH_LINGER_MS}"),
            ));
        }
        Ok((records > 0).then(|| Batching {
            max_records: records as usize,
            max_bytes: if bytes == 0 {
                DEFAULT_MAX_BATCH_BYTES
            } else {
                bytes as usize
            },
            linger: Duration::from_millis(linger as u64),
        }))
    }
}

/// How keys and values are decoded.
struct PayloadDecoding {
    value_format: pb::PayloadFormat,
    key_format: pb::PayloadFormat,
    reader: Option<Arc<Schema>>,
}

impl PayloadDecoding {
    /// Whether payloads go out as they are (no decoding work).
    fn is_raw(&self) -> bool {
        self.value_format == pb::PayloadFormat::Raw && self.key_format == pb::PayloadFormat::Raw
    }
}

/// What a subscription asks for, checked.
struct Plan {
    max_unacked: usize,
    auto_ack: bool,
    decoding: Arc<PayloadDecoding>,
    batching: Option<Batching>,
}

impl Plan {
    /// Whether another record may be delivered now (flow control).
    fn may_deliver(&self, tracker: &AckTracker) -> bool {
        tracker.unacked() < self.max_unacked
    }
}

fn format_of(value: i32, field: &str) -> Result<pb::PayloadFormat, MessagingError> {
    match pb::PayloadFormat::try_from(value) {
        Ok(pb::PayloadFormat::Unspecified) => Ok(pb::PayloadFormat::AvroTagged),
        Ok(format) => Ok(format),
        Err(_) => Err(MessagingError::invalid(
            field,
            format!("unknown format {value}"),
        )),
    }
}

/// Creates the consumer of a subscription and subscribes or assigns it.
async fn open(
    kafka: &Kafka,
    schemas: &Schemas,
    subscription: &pb::Subscription,
) -> Result<(KafkaConsumer, Plan, mpsc::UnboundedReceiver<RebalanceEvent>), MessagingError> {
    if subscription.group_id.is_empty() {
        return Err(MessagingError::invalid("group_id", "required"));
    }
    if subscription.topics.is_empty() == subscription.partitions.is_empty() {
        return Err(MessagingError::invalid(
            "subscription",
            "exactly one of topics and partitions is required",
        ));
    }
    let start = pb::StartPosition::try_from(subscription.start)
        .map_err(|_| MessagingError::invalid("start", "unknown start position"))?;
    if !subscription.topics.is_empty()
        && matches!(
            start,
            pb::StartPosition::Offset | pb::StartPosition::Timestamp
        )
    {
        return Err(MessagingError::invalid(
            "start",
            "START_POSITION_OFFSET and START_POSITION_TIMESTAMP need explicit partitions",
        ));
    }
    let reader = if subscription.reader_schema.is_empty() {
        None
    } else {
        Some(schemas.reader(&subscription.reader_schema)?)
    };
    let plan = Plan {
        max_unacked: usize::try_from(subscription.max_unacked)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_UNACKED),
        auto_ack: subscription.auto_ack,
        decoding: Arc::new(PayloadDecoding {
            value_format: format_of(subscription.value_format, "value_format")?,
            key_format: format_of(subscription.key_format, "key_format")?,
            reader,
        }),
        batching: Batching::of(subscription)?,
    };
    for topic in &subscription.topics {
        kafka.partition_count(topic).await?;
    }
    for tp in &subscription.partitions {
        if !(0..kafka.partition_count(&tp.topic).await?).contains(&tp.partition) {
            return Err(MessagingError::PartitionNotFound {
                topic: tp.topic.clone(),
                partition: tp.partition,
            });
        }
    }

    let mut config = kafka.base_config();
    config
        .set("group.id", &subscription.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.offset.reset",
            if start == pb::StartPosition::Latest {
                "latest"
            } else {
                "earliest"
            },
        )
        .set("enable.partition.eof", "false");
    for (property, default) in CONSUMER_DEFAULTS {
        if kafka.base_config().get(property).is_none() {
            config.set(property, default);
        }
    }
    let (events_tx, events) = mpsc::unbounded_channel();
    let consumer: KafkaConsumer = config
        .create_with_context(StreamContext { events: events_tx })
        .map_err(MessagingError::Kafka)?;

    if subscription.topics.is_empty() {
        let mut tpl = TopicPartitionList::new();
        for tp in &subscription.partitions {
            let offset = match start {
                pb::StartPosition::Unspecified | pb::StartPosition::Committed => Offset::Stored,
                pb::StartPosition::Earliest => Offset::Beginning,
                pb::StartPosition::Latest => Offset::End,
                pb::StartPosition::Offset => Offset::Offset(subscription.start_offset),
                pb::StartPosition::Timestamp => Offset::Offset(
                    subscription
                        .start_time
                        .map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000),
                ),
            };
            tpl.add_partition_offset(&tp.topic, tp.partition, offset)
                .map_err(MessagingError::Kafka)?;
        }
        // The consumer learns its partitions' leaders before the assignment: assigned without
        // them, librdkafka retries the start-offset lookup only after 500 ms, so every stream
        // would wait half a second for its first record. Timestamps are resolved here too.
        let timeout = kafka.timeout();
        let topics: BTreeSet<String> = subscription
            .partitions
            .iter()
            .map(|tp| tp.topic.clone())
            .collect();
        let by_timestamp = start == pb::StartPosition::Timestamp;
        let (consumer, resolved) = tokio::task::spawn_blocking(move || {
            for topic in &topics {
                if let Err(error) = consumer.fetch_metadata(Some(topic), timeout) {
                    return (consumer, Err(MessagingError::from_kafka(error, topic, 0)));
                }
            }
            let resolved = if by_timestamp {
                consumer
                    .offsets_for_times(tpl, timeout)
                    .map_err(|e| MessagingError::from_kafka(e, "", 0))
            } else {
                Ok(tpl)
            };
            (consumer, resolved)
        })
        .await
        .map_err(|_| MessagingError::ShuttingDown)?;
        consumer.assign(&resolved?).map_err(MessagingError::Kafka)?;
        Ok((consumer, plan, events))
    } else {
        let topics: Vec<&str> = subscription.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(MessagingError::Kafka)?;
        Ok((consumer, plan, events))
    }
}

fn commit(consumer: &KafkaConsumer, positions: &[(String, i32, i64)], mode: CommitMode) {
    if positions.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in positions {
        if tpl
            .add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .is_err()
        {
            return;
        }
    }
    if let Err(error) = consumer.commit(&tpl, mode) {
        tracing::warn!(%error, "offset commit failed; the records will be delivered again");
    }
}

/// Commits, asynchronously, the positions acknowledgements have moved since the last commit.
fn commit_pending(consumer: &KafkaConsumer, to_commit: &mut HashMap<(String, i32), i64>) {
    if to_commit.is_empty() {
        return;
    }
    let positions: Vec<(String, i32, i64)> = to_commit
        .drain()
        .map(|((topic, partition), offset)| (topic, partition, offset))
        .collect();
    commit(consumer, &positions, CommitMode::Async);
}

/// What the stream does after a request of the client.
enum Flow {
    Continue,
    HalfClosed,
    End(Option<Status>),
}

/// Handles one request after the subscription. An ack (single, several, or cumulative) that
/// moves a partition's commit position goes into `to_commit` (the caller commits once for a burst of acks); a seek commits what is
/// pending first, so acknowledgements before it are committed as they were sent.
fn on_request(
    request: Option<Result<pb::ConsumeRequest, Status>>,
    consumer: &KafkaConsumer,
    tracker: &mut AckTracker,
    to_commit: &mut HashMap<(String, i32), i64>,
) -> Flow {
    match request {
        Some(Ok(pb::ConsumeRequest {
            kind: Some(pb::consume_request::Kind::Ack(ack)),
        })) => {
            if let Some(offset) = tracker.ack(&ack.topic, ack.partition, ack.offset) {
                to_commit.insert((ack.topic, ack.partition), offset);
            }
            Flow::Continue
        }
        Some(Ok(pb::ConsumeRequest {
            kind: Some(pb::consume_request::Kind::Acks(acks)),
        })) => {
            for ack in acks.records {
                if let Some(offset) = tracker.ack(&ack.topic, ack.partition, ack.offset) {
                    to_commit.insert((ack.topic, ack.partition), offset);
                }
            }
            for ack in acks.up_to {
                if let Some(offset) = tracker.ack_up_to(&ack.topic, ack.partition, ack.offset) {
                    to_commit.insert((ack.topic, ack.partition), offset);
                }
            }
            Flow::Continue
        }
        Some(Ok(pb::ConsumeRequest {
            kind: Some(pb::consume_request::Kind::Seek(seek)),
        })) => {
            commit_pending(consumer, to_commit);
            tracker.forget(&seek.topic, seek.partition);
            match consumer.seek(
                &seek.topic,
                seek.partition,
                Offset::Offset(seek.offset),
                Duration::from_secs(5),
            ) {
                Ok(()) => Flow::Continue,
                Err(error) => Flow::End(Some(
                    MessagingError::from_kafka(error, &seek.topic, 0).into(),
                )),
            }
        }
        Some(Ok(_)) => Flow::End(Some(
            MessagingError::invalid(
                "request",
                "after the subscription, only acks and seeks are accepted",
            )
            .into(),
        )),
        None => Flow::HalfClosed,
        Some(Err(_)) => Flow::End(None),
    }
}

fn timestamp_to_wire(millis: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Decodes one key or value; errors that a reconnect can cure (registry unreachable) are
/// returned, every other error goes into the payload, with the bytes as they are.
async fn decode_payload(
    schemas: &Schemas,
    bytes: Vec<u8>,
    format: pb::PayloadFormat,
    reader: Option<&Schema>,
) -> Result<pb::ConsumedPayload, MessagingError> {
    let raw_with =
        |bytes, error: Option<MessagingError>, schema_id: Option<u32>| pb::ConsumedPayload {
            data: Some(pb::consumed_payload::Data::Raw(bytes)),
            schema_id: schema_id.map(|id| id as i32),
            error: error.map(|e| e.to_record_error()),
        };
    let tagged = match format {
        pb::PayloadFormat::Raw => return Ok(raw_with(bytes, None, None)),
        pb::PayloadFormat::AvroPlain => false,
        pb::PayloadFormat::AvroTagged | pb::PayloadFormat::Unspecified => true,
    };
    let (id, body) = match avro::unframe(&bytes) {
        Ok(framed) => framed,
        Err(error) => return Ok(raw_with(bytes, Some(error), None)),
    };
    let writer = match schemas.by_id(id).await {
        Ok(writer) => writer,
        Err(
            error @ MessagingError::Registry {
                code: Code::Unavailable,
                ..
            },
        ) => {
            return Err(error);
        }
        Err(error) => return Ok(raw_with(bytes, Some(error), Some(id))),
    };
    Ok(match avro::decode(&writer, reader, body, tagged) {
        Ok(json) => pb::ConsumedPayload {
            data: Some(pb::consumed_payload::Data::Json(json)),
            schema_id: Some(id as i32),
            error: None,
        },
        Err(error) => raw_with(bytes, Some(error), Some(id)),
    })
}

/// Decodes the key and value of a record taken by `to_wire` (which holds them raw).
async fn decode_record(
    schemas: &Schemas,
    decoding: &PayloadDecoding,
    record: &mut pb::ConsumedRecord,
) -> Result<(), MessagingError> {
    let raw_bytes = |payload: &mut Option<pb::ConsumedPayload>| match payload.take() {
        Some(pb::ConsumedPayload {
            data: Some(pb::consumed_payload::Data::Raw(bytes)),
            ..
        }) => Some(bytes),
        _ => None,
    };
    if let Some(bytes) = raw_bytes(&mut record.key) {
        record.key = Some(decode_payload(schemas, bytes, decoding.key_format, None).await?);
    }
    if let Some(bytes) = raw_bytes(&mut record.value) {
        record.value = Some(
            decode_payload(
                schemas,
                bytes,
                decoding.value_format,
                decoding.reader.as_deref(),
            )
            .await?,
        );
    }
    Ok(())
}

/// A record on its way to the client, with its CONSUMER span and its size in Kafka (key and
/// value bytes).
struct Outbound {
    record: pb::ConsumedRecord,
    span: tracing::Span,
    bytes: usize,
}

/// Decodes the records of one response, in order, each in its span.
async fn decode_records(
    schemas: Arc<Schemas>,
    decoding: Arc<PayloadDecoding>,
    mut records: Vec<Outbound>,
) -> Result<Vec<Outbound>, MessagingError> {
    for outbound in &mut records {
        let decoded = decode_record(&schemas, &decoding, &mut outbound.record)
            .instrument(outbound.span.clone())
            .await;
        if let Err(error) = decoded {
            outbound.span.record("otel.status_code", "ERROR");
            return Err(error);
        }
    }
    Ok(records)
}

/// A record as Kafka has it, its key and value raw (decoded later, by `decode_record`).
fn to_wire(message: &BorrowedMessage<'_>) -> pb::ConsumedRecord {
    let raw = |bytes: &[u8]| pb::ConsumedPayload {
        data: Some(pb::consumed_payload::Data::Raw(bytes.to_vec())),
        schema_id: None,
        error: None,
    };
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| pb::Header {
                    key: h.key.to_owned(),
                    value: h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    pb::ConsumedRecord {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp: message.timestamp().to_millis().map(timestamp_to_wire),
        key: message.key().map(raw),
        value: message.payload().map(raw),
        headers,
    }
}

/// Takes one response's worth of records from the consumer: `received` and, when the
/// subscription asks for batches, the records that follow it, as long as they have been fetched
/// already (or arrive within the linger) and the batch's bounds and `max_unacked` allow. Each
/// record is noted as delivered (it is not committed past before it is acknowledged, whatever
/// happens to it on its way to the client). Also returns the error that ends the stream, when
/// one came (a topic that vanished); a passing consumer error only ends the batch.
async fn take<'c>(
    received: KafkaResult<BorrowedMessage<'c>>,
    messages: &mut MessageStream<'c, StreamContext>,
    plan: &Plan,
    group: &str,
    tracker: &mut AckTracker,
) -> (Vec<Outbound>, Option<MessagingError>) {
    let deadline = plan
        .batching
        .map(|batching| tokio::time::Instant::now() + batching.linger);
    let mut records = Vec::new();
    let mut bytes = 0;
    let mut received = received;
    loop {
        match received {
            Ok(message) => {
                let record = to_wire(&message);
                let span = receive_span(&message, group);
                let size =
                    message.key().map_or(0, <[u8]>::len) + message.payload().map_or(0, <[u8]>::len);
                drop(message);
                tracker.delivered(&record.topic, record.partition, record.offset);
                if plan.batching.is_some() {
                    bytes += record.encoded_len();
                }
                records.push(Outbound {
                    record,
                    span,
                    bytes: size,
                });
            }
            Err(error) => {
                tracing::warn!(%error, "consumer error");
                let error = MessagingError::from_kafka(error, "", 0);
                if error.grpc_code() == Code::NotFound {
                    return (records, Some(error));
                }
                break;
            }
        }
        let (Some(batching), Some(deadline)) = (plan.batching, deadline) else {
            break;
        };
        if records.len() >= batching.max_records
            || bytes >= batching.max_bytes
            || !plan.may_deliver(tracker)
        {
            break;
        }
        // (A message stream never ends: `Some(None)` does not happen.)
        received = match messages.next().now_or_never() {
            Some(Some(next)) => next,
            Some(None) => break,
            None if batching.linger.is_zero() => break,
            None => match tokio::time::timeout_at(deadline, messages.next()).await {
                Ok(Some(next)) => next,
                Ok(None) | Err(_) => break,
            },
        };
    }
    (records, None)
}

/// Records on their way to the client: decoded, in order, and tagged with the tracker's
/// generation when they were taken.
type Outgoing = BoxFuture<'static, (u64, Result<Vec<Outbound>, MessagingError>)>;

/// Most responses taken from Kafka and not yet sent (being decoded, or waiting their turn).
const MAX_OUTGOING: usize = 4;

/// Starts decoding records taken from Kafka. Batches of Avro are decoded on a task of their
/// own, so that one stream uses more than one core; a single record is decoded by the
/// stream's task; raw payloads need no work.
fn start_decoding(
    schemas: &Arc<Schemas>,
    plan: &Plan,
    generation: u64,
    records: Vec<Outbound>,
) -> Outgoing {
    if plan.decoding.is_raw() {
        return futures::future::ready((generation, Ok(records))).boxed();
    }
    let decoded = decode_records(Arc::clone(schemas), Arc::clone(&plan.decoding), records);
    if plan.batching.is_none() {
        return decoded.map(move |decoded| (generation, decoded)).boxed();
    }
    tokio::spawn(decoded)
        .map(move |joined| {
            let decoded = match joined {
                Ok(decoded) => decoded,
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(_) => Err(MessagingError::ShuttingDown),
            };
            (generation, decoded)
        })
        .boxed()
}

/// Sends decoded records: one response per record, or one batch. Records of a partition that
/// was revoked or sought since they were taken are dropped (they are not pending any more and
/// will be read again). With `auto_ack`, what was sent is acknowledged. Breaks when the client
/// is gone.
async fn send_records(
    mut records: Vec<Outbound>,
    taken_at_generation: u64,
    plan: &Plan,
    metrics: &MessagingMetrics,
    tracker: &mut AckTracker,
    to_commit: &mut HashMap<(String, i32), i64>,
    out: &mpsc::Sender<Result<pb::ConsumeResponse, Status>>,
) -> ControlFlow<()> {
    if taken_at_generation != tracker.generation() {
        records
            .retain(|o| tracker.is_pending(&o.record.topic, o.record.partition, o.record.offset));
    }
    // Per partition, the highest offset of this response (for auto_ack); per topic, records
    // and bytes (for the consumed counters). A response rarely holds more than a few
    // partitions, so short lists.
    let mut sent_up_to: Vec<(String, i32, i64)> = Vec::new();
    let mut consumed: Vec<(String, usize, usize)> = Vec::new();
    let mut single_span = tracing::Span::none();
    let mut wire = Vec::with_capacity(records.len());
    for Outbound {
        record,
        span,
        bytes,
    } in records
    {
        if plan.auto_ack {
            match sent_up_to.iter_mut().find(|(topic, partition, _)| {
                *partition == record.partition && *topic == record.topic
            }) {
                Some(last) => last.2 = last.2.max(record.offset),
                None => sent_up_to.push((record.topic.clone(), record.partition, record.offset)),
            }
        }
        match consumed
            .iter_mut()
            .find(|(topic, ..)| *topic == record.topic)
        {
            Some((_, count, total)) => {
                *count += 1;
                *total += bytes;
            }
            None => consumed.push((record.topic.clone(), 1, bytes)),
        }
        single_span = span;
        wire.push(record);
    }
    let kind = if plan.batching.is_some() {
        (!wire.is_empty()).then_some(pb::consume_response::Kind::Batch(pb::RecordBatch {
            records: wire,
        }))
    } else {
        wire.pop().map(pb::consume_response::Kind::Record)
    };
    if let Some(kind) = kind {
        // A single record's send is part of its span, as before batches.
        let sent = out
            .send(Ok(pb::ConsumeResponse { kind: Some(kind) }))
            .instrument(if plan.batching.is_some() {
                tracing::Span::none()
            } else {
                single_span
            })
            .await;
        if sent.is_err() {
            return ControlFlow::Break(());
        }
    }
    for (topic, records, bytes) in consumed {
        metrics.consumed(&topic, records, bytes);
    }
    for (topic, partition, offset) in sent_up_to {
        if let Some(position) = tracker.ack_up_to(&topic, partition, offset) {
            to_commit.insert((topic, partition), position);
        }
    }
    ControlFlow::Continue(())
}

fn to_wire_partitions(partitions: Vec<(String, i32)>) -> Vec<pb::TopicPartition> {
    partitions
        .into_iter()
        .map(|(topic, partition)| pb::TopicPartition { topic, partition })
        .collect()
}

/// The CONSUMER span of a delivered record: a child of the trace context in its headers.
fn receive_span(message: &BorrowedMessage<'_>, group: &str) -> tracing::Span {
    if !tributary_telemetry::tracing_enabled() {
        return tracing::Span::none();
    }
    let topic = message.topic();
    let span = tracing::debug_span!(
        "receive",
        otel.name = %format!("receive {topic}"),
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        messaging.system = "kafka",
        messaging.operation.type = "receive",
        messaging.operation.name = "receive",
        messaging.destination.name = topic,
        messaging.destination.partition.id = %message.partition(),
        messaging.kafka.offset = message.offset(),
        messaging.consumer.group.name = group,
        messaging.message.body.size = message.payload().map_or(0, <[u8]>::len),
    );
    if let Some(headers) = message.headers() {
        let parent = tributary_telemetry::propagation::extract_from_pairs(
            headers.iter().filter_map(|h| Some((h.key, h.value?))),
        );
        let _ = span.set_parent(parent);
    }
    span
}

/// Runs one Consume stream: reads the subscription, then delivers records and takes
/// acknowledgements and seeks until the client leaves, an error ends it, or `stop` fires.
pub async fn run(
    kafka: Kafka,
    schemas: Arc<Schemas>,
    metrics: MessagingMetrics,
    mut inbound: Streaming<pb::ConsumeRequest>,
    out: mpsc::Sender<Result<pb::ConsumeResponse, Status>>,
    stop: CancellationToken,
) {
    let first = tokio::select! {
        () = stop.cancelled() => {
            let _ = out.send(Err(MessagingError::ShuttingDown.into())).await;
            return;
        }
        first = inbound.next() => first,
    };
    let subscription = match first {
        Some(Ok(pb::ConsumeRequest {
            kind: Some(pb::consume_request::Kind::Subscription(subscription)),
        })) => subscription,
        Some(Ok(_)) => {
            let _ = out
                .send(Err(MessagingError::invalid(
                    "subscription",
                    "the first request of a Consume stream must be a subscription",
                )
                .into()))
                .await;
            return;
        }
        Some(Err(_)) | None => return,
    };
    let (consumer, plan, mut events) = match open(&kafka, &schemas, &subscription).await {
        Ok(opened) => opened,
        Err(error) => {
            let _ = out.send(Err(error.into())).await;
            return;
        }
    };
    tracing::info!(group_id = %subscription.group_id, "consume stream opened");
    let lag: StreamLagHandle = metrics.consume_stream(&subscription.group_id);
    let mut tracker = AckTracker::default();
    let mut to_commit = HashMap::new();
    let mut outgoing: FuturesOrdered<Outgoing> = FuturesOrdered::new();
    let mut end: Option<Status> = None;
    let mut inbound_open = true;
    let mut paused_lag_refresh = tokio::time::interval(PAUSED_LAG_REFRESH);
    paused_lag_refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One message stream for the stream's life (a `recv()` per record would register and
    // unregister a waker with the consumer each time).
    let mut messages = consumer.stream();
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                end = Some(MessagingError::ShuttingDown.into());
                break;
            }
            () = out.closed() => break,
            request = inbound.next(), if inbound_open => {
                // Take the requests that have already arrived too (up to a bound), so that a
                // burst of acks costs one offset commit rather than one per record.
                let mut flow = on_request(request, &consumer, &mut tracker, &mut to_commit);
                let mut taken = 1;
                while matches!(flow, Flow::Continue) && taken < MAX_REQUESTS_PER_TURN {
                    let Some(request) = inbound.next().now_or_never() else {
                        break;
                    };
                    flow = on_request(request, &consumer, &mut tracker, &mut to_commit);
                    taken += 1;
                }
                commit_pending(&consumer, &mut to_commit);
                match flow {
                    Flow::Continue => {}
                    // The client half-closed: keep delivering until it cancels.
                    Flow::HalfClosed => inbound_open = false,
                    Flow::End(status) => {
                        end = status;
                        break;
                    }
                }
            }
            Some(event) = events.recv() => {
                let rebalance = match event {
                    RebalanceEvent::Watermarks(watermarks) => {
                        lag.set(lags(&tracker, watermarks));
                        continue;
                    }
                    RebalanceEvent::Assigned(partitions) => pb::Rebalance {
                        assigned: to_wire_partitions(partitions),
                        revoked: Vec::new(),
                    },
                    RebalanceEvent::Revoked(partitions) => {
                        for (topic, partition) in &partitions {
                            tracker.forget(topic, *partition);
                        }
                        pb::Rebalance { assigned: Vec::new(), revoked: to_wire_partitions(partitions) }
                    }
                };
                let response = pb::ConsumeResponse {
                    kind: Some(pb::consume_response::Kind::Rebalance(rebalance)),
                };
                if out.send(Ok(response)).await.is_err() {
                    break;
                }
            }
            Some((generation, decoded)) = outgoing.next(), if !outgoing.is_empty() => {
                let records = match decoded {
                    Ok(records) => records,
                    Err(error) => {
                        end = Some(error.into());
                        break;
                    }
                };
                let sent = send_records(
                    records,
                    generation,
                    &plan,
                    &metrics,
                    &mut tracker,
                    &mut to_commit,
                    &out,
                )
                .await;
                if sent.is_break() {
                    break;
                }
                commit_pending(&consumer, &mut to_commit);
            }
            _ = paused_lag_refresh.tick(), if !plan.may_deliver(&tracker) => {
                // Not polling librdkafka means no statistics: ask the brokers for the watermarks
                // (off this task; the answer comes back as an event like librdkafka's).
                let kafka = kafka.clone();
                let topics = tracker.topics();
                let events = consumer.context().events.clone();
                tokio::spawn(async move {
                    let _ = events.send(RebalanceEvent::Watermarks(
                        broker_watermarks(&kafka, topics).await,
                    ));
                });
            }
            Some(received) = messages.next(),
                if plan.may_deliver(&tracker) && outgoing.len() < MAX_OUTGOING =>
            {
                let (records, error) =
                    take(received, &mut messages, &plan, &subscription.group_id, &mut tracker)
                        .await;
                if !records.is_empty() {
                    let generation = tracker.generation();
                    outgoing.push_back(start_decoding(&schemas, &plan, generation, records));
                }
                if let Some(error) = error {
                    // Ends the stream once what was taken before it is sent.
                    outgoing.push_back(futures::future::ready((0, Err(error))).boxed());
                }
            }
        }
    }
    drop(messages);
    // Commit what was acknowledged, synchronously, then leave the group (closing the consumer
    // blocks while it leaves, so it runs off the async threads).
    let positions = tracker.positions();
    let closed = tokio::task::spawn_blocking(move || {
        commit(&consumer, &positions, CommitMode::Sync);
        consumer.unsubscribe();
        drop(consumer);
    })
    .await;
    if closed.is_err() {
        tracing::warn!("closing a consumer failed");
    }
    if let Some(status) = end {
        let _ = out.send(Err(status)).await;
    }
    tracing::info!(group_id = %subscription.group_id, "consume stream closed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_past_contiguous_acknowledgements() {
        let mut tracker = AckTracker::default();
        for offset in [10, 11, 12] {
            tracker.delivered("t", 0, offset);
        }
        assert_eq!(tracker.unacked(), 3);
        // 11 acknowledged first: 10 is still pending, nothing to commit.
        assert_eq!(tracker.ack("t", 0, 11), None);
        // 10 acknowledged: 10 and 11 are done, commit at 12 (the next one to read).
        assert_eq!(tracker.ack("t", 0, 10), Some(12));
        assert_eq!(tracker.ack("t", 0, 12), Some(13));
        assert_eq!(tracker.unacked(), 0);
        // Unknown or repeated acks do nothing.
        assert_eq!(tracker.ack("t", 0, 12), None);
        assert_eq!(tracker.ack("t", 1, 0), None);
        assert_eq!(tracker.positions(), vec![("t".to_owned(), 0, 13)]);
    }

    #[test]
    fn gaps_in_offsets_do_not_block_commits() {
        let mut tracker = AckTracker::default();
        // Compaction or transaction markers leave gaps.
        tracker.delivered("t", 0, 5);
        tracker.delivered("t", 0, 9);
        assert_eq!(tracker.ack("t", 0, 9), None);
        assert_eq!(tracker.ack("t", 0, 5), Some(10));
    }

    #[test]
    fn cumulative_acks_take_every_pending_record_up_to_the_offset() {
        let mut tracker = AckTracker::default();
        for offset in 0..6 {
            tracker.delivered("t", 0, offset);
        }
        tracker.delivered("t", 1, 0);
        assert_eq!(tracker.ack("t", 0, 4), None);
        // 0..=2 acknowledged at once; 3 is still pending.
        assert_eq!(tracker.ack_up_to("t", 0, 2), Some(3));
        assert_eq!(tracker.unacked(), 3 + 1 - 1);
        // Nothing pending at or below 2 any more.
        assert_eq!(tracker.ack_up_to("t", 0, 2), None);
        // Past the last delivered offset: what was delivered, no more.
        assert_eq!(tracker.ack_up_to("t", 0, 100), Some(6));
        assert_eq!(tracker.unacked(), 1);
        assert_eq!(tracker.ack_up_to("t", 2, 100), None);
        assert_eq!(tracker.ack_up_to("u", 0, 100), None);
        // A record delivered later is not covered by an earlier cumulative ack.
        tracker.delivered("t", 0, 6);
        assert_eq!(tracker.unacked(), 2);
        assert_eq!(tracker.ack_up_to("t", 1, 0), Some(1));
        assert_eq!(tracker.ack_up_to("t", 0, 6), Some(7));
        assert_eq!(tracker.unacked(), 0);
        let mut positions = tracker.positions();
        positions.sort();
        assert_eq!(
            positions,
            vec![("t".to_owned(), 0, 7), ("t".to_owned(), 1, 1)]
        );
    }

    #[test]
    fn lag_counts_from_where_the_stream_would_resume() {
        let mut tracker = AckTracker::default();
        for offset in 0..10 {
            tracker.delivered("t", 0, offset);
        }
        for offset in [0, 1, 2, 3, 7] {
            tracker.ack("t", 0, offset);
        }
        let watermark = |partition, high, committed| PartitionWatermark {
            topic: "t".to_owned(),
            partition,
            high,
            committed,
        };
        let lags: Vec<_> = lags(
            &tracker,
            vec![
                // Delivered 0..=9, acknowledged 0..=3 and 7: resumes at 4.
                watermark(0, 10, 2),
                // Nothing delivered yet: from the group's committed offset.
                watermark(1, 8, 5),
                // Nothing delivered and nothing committed: unknown, left out.
                watermark(2, 8, -1001),
            ],
        )
        .collect();
        assert_eq!(lags, vec![("t".to_owned(), 0, 6), ("t".to_owned(), 1, 3)]);
    }

    #[test]
    fn forgetting_a_partition_drops_its_pending_records() {
        let mut tracker = AckTracker::default();
        tracker.delivered("t", 0, 0);
        tracker.delivered("t", 1, 0);
        let generation = tracker.generation();
        assert!(tracker.is_pending("t", 0, 0));
        tracker.forget("t", 0);
        // Records taken before the forget and not sent yet are recognised as stale.
        assert_ne!(tracker.generation(), generation);
        assert!(!tracker.is_pending("t", 0, 0));
        assert!(tracker.is_pending("t", 1, 0));
        assert_eq!(tracker.unacked(), 1);
        assert_eq!(tracker.ack("t", 0, 0), None);
        assert_eq!(tracker.ack("t", 1, 0), Some(1));
    }
}
