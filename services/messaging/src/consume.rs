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
//! Flow control: at most `max_unacked` records are delivered and not acknowledged; the stream
//! pauses until acknowledgements come (a pause longer than `max.poll.interval.ms` makes the
//! consumer leave its group, and its unacknowledged records go to other members).
//!
//! Observability: each delivered record gets a CONSUMER span (`receive <topic>`) whose parent
//! is the trace context in the record's `traceparent` header, so a trace crosses Kafka; the
//! registry calls decoding it are its children. The stream's lag per partition (high watermark
//! from librdkafka's statistics, every [`STATISTICS_INTERVAL_MS`], minus where the stream would
//! resume) is the `messaging_consumer_lag_messages` gauge while the stream lives.
//!
//! A record whose key or value cannot be decoded (not Confluent-framed, unknown schema id,
//! corrupt Avro) is delivered with a per-payload error and its raw bytes, and the stream goes
//! on. Only an unreachable registry ends the stream (UNAVAILABLE), since a reconnect then gets
//! the record decoded.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
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

/// Most client requests (acks, seeks) handled in one turn of a stream's loop, before records
/// and rebalances get their turn.
const MAX_REQUESTS_PER_TURN: usize = 1024;

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

/// Acknowledgement bookkeeping of one stream.
#[derive(Debug, Default)]
pub struct AckTracker {
    partitions: HashMap<(String, i32), PartitionAcks>,
}

impl AckTracker {
    /// Notes a delivered record.
    pub fn delivered(&mut self, topic: &str, partition: i32, offset: i64) {
        let acks = self
            .partitions
            .entry((topic.to_owned(), partition))
            .or_insert_with(|| PartitionAcks {
                pending: BTreeSet::new(),
                next: offset,
                baseline: offset,
                committed: None,
            });
        acks.pending.insert(offset);
        acks.next = acks.next.max(offset + 1);
    }

    /// Notes an acknowledgement; returns the offset to commit when the commit position moved.
    /// Acknowledging a record that is not pending (unknown, revoked, or acknowledged already)
    /// does nothing.
    pub fn ack(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let acks = self.partitions.get_mut(&(topic.to_owned(), partition))?;
        if !acks.pending.remove(&offset) {
            return None;
        }
        let position = acks.pending.first().copied().unwrap_or(acks.next);
        (position > acks.committed.unwrap_or(acks.baseline)).then(|| {
            acks.committed = Some(position);
            position
        })
    }

    /// Records delivered and not acknowledged, over all partitions.
    pub fn unacked(&self) -> usize {
        self.partitions.values().map(|a| a.pending.len()).sum()
    }

    /// Forgets a partition (revoked, or sought).
    pub fn forget(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_owned(), partition));
    }

    /// Where the stream would resume a partition after a reconnect: its lowest unacknowledged
    /// delivered offset, else one past the last delivered one.
    pub fn resume_position(&self, topic: &str, partition: i32) -> Option<i64> {
        let acks = self.partitions.get(&(topic.to_owned(), partition))?;
        Some(acks.pending.first().copied().unwrap_or(acks.next))
    }

    /// The commit positions this stream has reached.
    pub fn positions(&self) -> Vec<(String, i32, i64)> {
        self.partitions
            .iter()
            .filter_map(|((topic, partition), acks)| {
                acks.committed
                    .map(|offset| (topic.clone(), *partition, offset))
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

/// What a subscription asks for, checked.
struct Plan {
    max_unacked: usize,
    auto_ack: bool,
    value_format: pb::PayloadFormat,
    key_format: pb::PayloadFormat,
    reader: Option<Arc<Schema>>,
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
        value_format: format_of(subscription.value_format, "value_format")?,
        key_format: format_of(subscription.key_format, "key_format")?,
        reader,
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
    if kafka.base_config().get("statistics.interval.ms").is_none() {
        config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
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
        let consumer = if start == pb::StartPosition::Timestamp {
            let timeout = kafka.timeout();
            let (consumer, resolved) = tokio::task::spawn_blocking(move || {
                let resolved = consumer.offsets_for_times(tpl, timeout);
                (consumer, resolved)
            })
            .await
            .map_err(|_| MessagingError::ShuttingDown)?;
            let resolved = resolved.map_err(|e| MessagingError::from_kafka(e, "", 0))?;
            consumer.assign(&resolved).map_err(MessagingError::Kafka)?;
            consumer
        } else {
            consumer.assign(&tpl).map_err(MessagingError::Kafka)?;
            consumer
        };
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

/// Handles one request after the subscription. An ack that moves a partition's commit position
/// goes into `to_commit` (the caller commits once for a burst of acks); a seek commits what is
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
/// returned, every other error goes into the payload.
async fn decode_payload(
    schemas: &Schemas,
    bytes: &[u8],
    format: pb::PayloadFormat,
    reader: Option<&Schema>,
) -> Result<pb::ConsumedPayload, MessagingError> {
    let raw_with = |error: Option<MessagingError>, schema_id: Option<u32>| pb::ConsumedPayload {
        data: Some(pb::consumed_payload::Data::Raw(bytes.to_vec())),
        schema_id: schema_id.map(|id| id as i32),
        error: error.map(|e| e.to_record_error()),
    };
    let tagged = match format {
        pb::PayloadFormat::Raw => return Ok(raw_with(None, None)),
        pb::PayloadFormat::AvroPlain => false,
        pb::PayloadFormat::AvroTagged | pb::PayloadFormat::Unspecified => true,
    };
    let (id, body) = match avro::unframe(bytes) {
        Ok(framed) => framed,
        Err(error) => return Ok(raw_with(Some(error), None)),
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
        Err(error) => return Ok(raw_with(Some(error), Some(id))),
    };
    Ok(match avro::decode(&writer, reader, body, tagged) {
        Ok(json) => pb::ConsumedPayload {
            data: Some(pb::consumed_payload::Data::Json(json)),
            schema_id: Some(id as i32),
            error: None,
        },
        Err(error) => raw_with(Some(error), Some(id)),
    })
}

async fn record_to_wire(
    schemas: &Schemas,
    plan: &Plan,
    message: &BorrowedMessage<'_>,
) -> Result<pb::ConsumedRecord, MessagingError> {
    let key = match message.key() {
        Some(bytes) => Some(decode_payload(schemas, bytes, plan.key_format, None).await?),
        None => None,
    };
    let value = match message.payload() {
        Some(bytes) => {
            Some(decode_payload(schemas, bytes, plan.value_format, plan.reader.as_deref()).await?)
        }
        None => None,
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
    Ok(pb::ConsumedRecord {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp: message.timestamp().to_millis().map(timestamp_to_wire),
        key,
        value,
        headers,
    })
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
    let mut end: Option<Status> = None;
    let mut inbound_open = true;
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
            received = consumer.recv(), if tracker.unacked() < plan.max_unacked => {
                let message = match received {
                    Ok(message) => message,
                    Err(error) => {
                        tracing::warn!(%error, "consumer error");
                        let error = MessagingError::from_kafka(error, "", 0);
                        if error.grpc_code() == Code::NotFound {
                            end = Some(error.into());
                            break;
                        }
                        continue;
                    }
                };
                let span = receive_span(&message, &subscription.group_id);
                let record = match record_to_wire(&schemas, &plan, &message)
                    .instrument(span.clone())
                    .await
                {
                    Ok(record) => record,
                    Err(error) => {
                        span.record("otel.status_code", "ERROR");
                        end = Some(error.into());
                        break;
                    }
                };
                let bytes = message.key().map_or(0, <[u8]>::len)
                    + message.payload().map_or(0, <[u8]>::len);
                let (topic, partition, offset) =
                    (record.topic.clone(), record.partition, record.offset);
                drop(message);
                tracker.delivered(&topic, partition, offset);
                let response = pb::ConsumeResponse {
                    kind: Some(pb::consume_response::Kind::Record(record)),
                };
                if out.send(Ok(response)).instrument(span).await.is_err() {
                    break;
                }
                metrics.consumed(&topic, bytes);
                if plan.auto_ack
                    && let Some(offset) = tracker.ack(&topic, partition, offset)
                {
                    commit(&consumer, &[(topic, partition, offset)], CommitMode::Async);
                }
            }
        }
    }
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
        tracker.forget("t", 0);
        assert_eq!(tracker.unacked(), 1);
        assert_eq!(tracker.ack("t", 0, 0), None);
        assert_eq!(tracker.ack("t", 1, 0), Some(1));
    }
}
