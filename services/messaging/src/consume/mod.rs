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
//! A stream's task takes records from librdkafka and notes them as delivered at once (so
//! nothing taken is committed past before it is acknowledged). Records with nothing to decode
//! (raw values, and keys that are raw or absent) are encoded into the response as they are
//! taken; batches to decode are decoded and encoded on tasks of their own while the stream
//! takes the next records (`records`). Responses go out in the order the
//! records were taken, at most `MAX_OUTGOING` ahead. The acknowledgement bookkeeping is in
//! `acks`.
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

#![warn(clippy::arithmetic_side_effects)]

pub mod acks;
mod context;
mod records;
mod subscription;

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use rdkafka::consumer::{CommitMode, Consumer, MessageStream};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status, Streaming};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tributary_proto::messaging::v1 as pb;
use tributary_security::authz::Caller;

pub use self::records::{JsonDecoder, decode_framed_json};

use self::acks::AckTracker;
use self::context::{KafkaConsumer, RebalanceEvent, StreamContext, broker_watermarks, lags};
use self::records::{Encoded, PayloadDecoding, SizeHint, Taken};
use self::subscription::Plan;
pub use self::subscription::{Batching, check_seek, check_subscription, subscription_options};
use crate::access::Access;
use crate::error::MessagingError;
use crate::kafka::Kafka;
use crate::metrics::{MessagingMetrics, StreamLagHandle};
use crate::produce::{kafka_timestamp_ms, request_stream_failed};
use crate::schemas::Schemas;

/// The file descriptors a Consume stream's consumer is budgeted at, for fitting
/// `--max-consume-streams` below the open-file limit: librdkafka's wake-up pipes and eventfds
/// and a socket per broker connection (measured: 9 against a one-broker cluster, see the
/// README), with room for a few brokers more.
pub const DESCRIPTORS_PER_STREAM: usize = 16;

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

/// How many kilobytes of fetched records a stream's consumer holds ahead of the stream, unless
/// `queued.max.messages.kbytes` says otherwise. librdkafka's default, 64 MiB, is a lot for a
/// gateway serving many streams at once; a quarter of it changed no throughput the benchmark
/// measures (2026-11-26: 1.13M/1.16M records/s on 100 B records, 519k/515k on 1 KiB).
pub const QUEUED_MAX_MESSAGES_KBYTES: &str = "16384";

/// How long the group coordinator waits for a heartbeat before it gives a member's partitions
/// to the others, unless `session.timeout.ms` says otherwise. librdkafka's default, 45 s, is
/// how long a group stood still after a messaging pod was killed (measured 42-45 s before
/// redelivery); 6 s is the brokers' lowest allowed (`group.min.session.timeout.ms`), and with
/// heartbeats every 1.5 s a live member misses four before it is dropped. Heartbeats come from
/// librdkafka's own thread, so a busy stream does not miss them.
pub const SESSION_TIMEOUT_MS: &str = "6000";
/// See [`SESSION_TIMEOUT_MS`].
pub const HEARTBEAT_INTERVAL_MS: &str = "1500";

/// The librdkafka settings a Consume stream's consumer gets unless `KAFKA_PROPERTIES` sets them
/// (the bench gives its raw consumer the same ones).
pub const CONSUMER_DEFAULTS: [(&str, &str); 5] = [
    ("statistics.interval.ms", STATISTICS_INTERVAL_MS),
    ("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS),
    ("queued.max.messages.kbytes", QUEUED_MAX_MESSAGES_KBYTES),
    ("session.timeout.ms", SESSION_TIMEOUT_MS),
    ("heartbeat.interval.ms", HEARTBEAT_INTERVAL_MS),
];

/// How often the lag of a stream held by flow control is refreshed from the brokers' watermarks.
const PAUSED_LAG_REFRESH: Duration = Duration::from_secs(5);

/// Most client requests (acks, seeks) handled in one turn of a stream's loop, before records
/// and rebalances get their turn.
const MAX_REQUESTS_PER_TURN: usize = 1024;

/// Creates the consumer of a subscription and subscribes or assigns it.
async fn open(
    kafka: &Kafka,
    schemas: &Schemas,
    subscription: &pb::Subscription,
) -> Result<(KafkaConsumer, Plan, mpsc::UnboundedReceiver<RebalanceEvent>), MessagingError> {
    let start = check_subscription(subscription)?;
    let reader = if subscription.reader_schema.is_empty() {
        None
    } else {
        Some(schemas.reader(&subscription.reader_schema)?)
    };
    let (value_format, key_format, batching) = subscription_options(subscription)?;
    let plan = Plan {
        max_unacked: usize::try_from(subscription.max_unacked)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_UNACKED),
        auto_ack: subscription.auto_ack,
        decoding: Arc::new(PayloadDecoding {
            value_format,
            key_format,
            reader,
        }),
        batching,
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
                        .as_ref()
                        .map(|t| kafka_timestamp_ms("start_time", t))
                        .transpose()?
                        .unwrap_or(0),
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

/// How often a stream sends the commit positions its acknowledgements moved, at most. Each
/// commit is a request to the group coordinator, replicated before it answers: one per burst
/// of acks (every few milliseconds for a client acknowledging record by record) queued them
/// faster than the coordinator answered, so a crash lost seconds of acknowledgements (2.2 s
/// measured by the fault suite). At most one every 100 ms bounds that window.
const COMMIT_INTERVAL: Duration = Duration::from_millis(100);

/// When the next paced commit may go out.
fn next_commit(last: Option<tokio::time::Instant>) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    last.and_then(|at| at.checked_add(COMMIT_INTERVAL))
        .map_or(now, |at| at.max(now))
}

/// Commits what acknowledgements moved, unless a commit went out less than
/// [`COMMIT_INTERVAL`] ago (the stream's loop comes back for it then).
fn commit_paced(
    consumer: &KafkaConsumer,
    to_commit: &mut HashMap<(String, i32), i64>,
    last_commit: &mut Option<tokio::time::Instant>,
) {
    if to_commit.is_empty() || next_commit(*last_commit) > tokio::time::Instant::now() {
        return;
    }
    commit_pending(consumer, to_commit);
    *last_commit = Some(tokio::time::Instant::now());
}

/// Notes the commit position an acknowledgement moved a partition to, if it moved it.
fn note_moved(
    to_commit: &mut HashMap<(String, i32), i64>,
    topic: String,
    partition: i32,
    moved: Option<i64>,
) {
    if let Some(offset) = moved {
        to_commit.insert((topic, partition), offset);
    }
}

/// What the stream does after a request of the client.
enum Flow {
    Continue,
    HalfClosed,
    End(Option<Status>),
}

/// Handles one request after the subscription. An ack (single, several, or cumulative) that
/// moves a partition's commit position goes into `to_commit` (the caller commits once for a
/// burst of acks); a seek commits what is pending first, so acknowledgements before it are
/// committed as they were sent.
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
            let moved = tracker.ack(&ack.topic, ack.partition, ack.offset);
            note_moved(to_commit, ack.topic, ack.partition, moved);
            Flow::Continue
        }
        Some(Ok(pb::ConsumeRequest {
            kind: Some(pb::consume_request::Kind::Acks(acks)),
        })) => {
            for ack in acks.records {
                let moved = tracker.ack(&ack.topic, ack.partition, ack.offset);
                note_moved(to_commit, ack.topic, ack.partition, moved);
            }
            for ack in acks.up_to {
                let moved = tracker.ack_up_to(&ack.topic, ack.partition, ack.offset);
                note_moved(to_commit, ack.topic, ack.partition, moved);
            }
            Flow::Continue
        }
        Some(Ok(pb::ConsumeRequest {
            kind: Some(pb::consume_request::Kind::Seek(seek)),
        })) => {
            if let Err(error) = check_seek(&seek) {
                return Flow::End(Some(error.into()));
            }
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
        // The client's stream failed: end with an error, never with OK.
        Some(Err(status)) => Flow::End(Some(request_stream_failed(&status))),
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
    size_hint: SizeHint,
) -> (Taken, Option<MessagingError>) {
    let deadline = plan
        .batching
        .and_then(|batching| tokio::time::Instant::now().checked_add(batching.linger));
    let mut taken = Taken::new(&plan.decoding, size_hint);
    let mut received = received;
    loop {
        match received {
            Ok(message) => {
                let span = receive_span(&message, group);
                let topic = taken.push(&message, span, &plan.decoding);
                tracker.delivered(&topic, message.partition(), message.offset());
            }
            Err(error) => {
                tracing::warn!(%error, "consumer error");
                let error = MessagingError::from_kafka(error, "", 0);
                if error.grpc_code() == Code::NotFound {
                    return (taken, Some(error));
                }
                break;
            }
        }
        let (Some(batching), Some(deadline)) = (plan.batching, deadline) else {
            break;
        };
        if taken.len() >= batching.max_records
            || taken.encoded_len() >= batching.max_bytes
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
    (taken, None)
}

/// Records on their way to the client: decoded, encoded, in order, and tagged with the
/// tracker's generation when they were taken.
type Outgoing = BoxFuture<'static, (u64, Result<Encoded, MessagingError>)>;

/// Most responses taken from Kafka and not yet sent (being decoded, or waiting their turn).
const MAX_OUTGOING: usize = 4;

/// Starts encoding records taken from Kafka. Records with nothing to decode were encoded as
/// they were taken; batches to decode are decoded and encoded on a task of their own, so that
/// one stream uses more than one core; a single record to decode is decoded by the stream's
/// task.
fn start_encoding(schemas: &Arc<Schemas>, plan: &Plan, generation: u64, taken: Taken) -> Outgoing {
    let encoded_already = taken.is_encoded();
    let schemas = Arc::clone(schemas);
    let decoding = Arc::clone(&plan.decoding);
    let encoded = async move { records::encode(&schemas, &decoding, taken).await };
    if encoded_already || plan.batching.is_none() {
        return encoded.map(move |encoded| (generation, encoded)).boxed();
    }
    tokio::spawn(encoded)
        .map(move |joined| {
            let encoded = match joined {
                Ok(encoded) => encoded,
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(_) => Err(MessagingError::ShuttingDown),
            };
            (generation, encoded)
        })
        .boxed()
}

/// Sends encoded records: one response per record, or one batch. Records of a partition that
/// was revoked or sought since they were taken are dropped (they are not pending any more and
/// will be read again). With `auto_ack`, what was sent is acknowledged. Breaks when the client
/// is gone.
async fn send_records(
    mut encoded: Encoded,
    taken_at_generation: u64,
    plan: &Plan,
    metrics: &MessagingMetrics,
    tracker: &mut AckTracker,
    to_commit: &mut HashMap<(String, i32), i64>,
    out: &mpsc::Sender<Result<pb::ConsumeResponse, Status>>,
) -> ControlFlow<Option<Status>> {
    if taken_at_generation != tracker.generation() {
        encoded.retain(|record| tracker.is_pending(&record.topic, record.partition, record.offset));
    }
    // Per partition, the highest offset of this response (for auto_ack); per topic, records
    // and bytes (for the consumed counters). A response rarely holds more than a few
    // partitions, so short lists.
    let mut sent_up_to: Vec<(Arc<str>, i32, i64)> = Vec::new();
    let mut consumed: Vec<(Arc<str>, usize, usize)> = Vec::new();
    for record in &encoded.records {
        if plan.auto_ack {
            match sent_up_to.iter_mut().find(|(topic, partition, _)| {
                *partition == record.partition && *topic == record.topic
            }) {
                Some(last) => last.2 = last.2.max(record.offset),
                None => {
                    sent_up_to.push((Arc::clone(&record.topic), record.partition, record.offset))
                }
            }
        }
        match consumed
            .iter_mut()
            .find(|(topic, ..)| *topic == record.topic)
        {
            Some((_, count, total)) => {
                *count = count.saturating_add(1);
                *total = total.saturating_add(record.kafka_bytes);
            }
            None => consumed.push((Arc::clone(&record.topic), 1, record.kafka_bytes)),
        }
    }
    if encoded.records.is_empty() {
        return ControlFlow::Continue(());
    }
    let (kind, span) = if plan.batching.is_some() {
        (
            pb::consume_response::Kind::Batch(encoded.into_batch()),
            tracing::Span::none(),
        )
    } else {
        // A single record's send is part of its span, as before batches.
        let span = encoded
            .records
            .last()
            .map_or_else(tracing::Span::none, |record| record.span.clone());
        match encoded.into_messages() {
            Ok(mut records) => match records.pop() {
                Some(record) => (pb::consume_response::Kind::Record(record), span),
                None => return ControlFlow::Continue(()),
            },
            Err(error) => return ControlFlow::Break(Some(error.into())),
        }
    };
    let sent = out
        .send(Ok(pb::ConsumeResponse { kind: Some(kind) }))
        .instrument(span)
        .await;
    if sent.is_err() {
        return ControlFlow::Break(None);
    }
    for (topic, records, bytes) in consumed {
        metrics.consumed(&topic, records, bytes);
    }
    for (topic, partition, offset) in sent_up_to {
        if let Some(position) = tracker.ack_up_to(&topic, partition, offset) {
            to_commit.insert((topic.to_string(), partition), position);
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

/// What one Consume stream works with: its place among the capped streams (held until it
/// ends), the clients, and who is calling.
pub(crate) struct ConsumeContext {
    pub(crate) place: OwnedSemaphorePermit,
    pub(crate) kafka: Kafka,
    pub(crate) schemas: Arc<Schemas>,
    pub(crate) access: Access,
    pub(crate) caller: Caller,
    pub(crate) metrics: MessagingMetrics,
}

/// Runs one Consume stream: reads the subscription, then delivers records and takes
/// acknowledgements and seeks until the client leaves, an error ends it, or `stop` fires.
pub(crate) async fn run(
    context: ConsumeContext,
    mut inbound: Streaming<pb::ConsumeRequest>,
    out: mpsc::Sender<Result<pb::ConsumeResponse, Status>>,
    stop: CancellationToken,
) {
    let ConsumeContext {
        place: _place,
        kafka,
        schemas,
        access,
        caller,
        metrics,
    } = context;
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
        Some(Err(status)) => {
            let _ = out.send(Err(request_stream_failed(&status))).await;
            return;
        }
        None => return,
    };
    if let Err(error) = access.require_subscription(&caller, &subscription) {
        let _ = out.send(Err(error.into())).await;
        return;
    }
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
    let mut last_commit: Option<tokio::time::Instant> = None;
    let mut outgoing: FuturesOrdered<Outgoing> = FuturesOrdered::new();
    let mut end: Option<Status> = None;
    let mut inbound_open = true;
    let mut paused_lag_refresh = tokio::time::interval(PAUSED_LAG_REFRESH);
    paused_lag_refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One message stream for the stream's life (a `recv()` per record would register and
    // unregister a waker with the consumer each time).
    let mut messages = consumer.stream();
    // How large the next response's buffers start, rather than growing (and copying
    // themselves) from nothing.
    let mut size_hint = SizeHint::default();
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
                    taken = taken.saturating_add(1);
                }
                commit_paced(&consumer, &mut to_commit, &mut last_commit);
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
            () = tokio::time::sleep_until(next_commit(last_commit)), if !to_commit.is_empty() => {
                commit_paced(&consumer, &mut to_commit, &mut last_commit);
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
            Some((generation, encoded)) = outgoing.next(), if !outgoing.is_empty() => {
                let encoded = match encoded {
                    Ok(encoded) => encoded,
                    Err(error) => {
                        end = Some(error.into());
                        break;
                    }
                };
                let sent = send_records(
                    encoded,
                    generation,
                    &plan,
                    &metrics,
                    &mut tracker,
                    &mut to_commit,
                    &out,
                )
                .await;
                if let ControlFlow::Break(status) = sent {
                    end = status;
                    break;
                }
                commit_paced(&consumer, &mut to_commit, &mut last_commit);
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
                let (taken, error) = take(
                    received,
                    &mut messages,
                    &plan,
                    &subscription.group_id,
                    &mut tracker,
                    size_hint,
                )
                .await;
                size_hint = size_hint.next(&taken);
                if !taken.is_empty() {
                    let generation = tracker.generation();
                    outgoing.push_back(start_encoding(&schemas, &plan, generation, taken));
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
