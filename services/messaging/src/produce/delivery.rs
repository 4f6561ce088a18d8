//! Records handed to librdkafka, waiting for Kafka's acknowledgement: one record
//! ([`InFlight`]), and a stream's records in order ([`Deliveries`]).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rdkafka::producer::DeliveryFuture;
use tributary_proto::messaging::v1 as pb;

use crate::error::MessagingError;
use crate::metrics::MessagingMetrics;

/// A record handed to librdkafka, waiting for its acknowledgement.
pub struct InFlight {
    pub(super) topic: String,
    pub(super) delivery: DeliveryFuture,
    pub(super) key_schema_id: Option<u32>,
    pub(super) value_schema_id: Option<u32>,
    pub(super) max_message_bytes: usize,
    /// Key and value bytes, for the sent-bytes counter.
    pub(super) bytes: usize,
    pub(super) metrics: MessagingMetrics,
    /// The record's PRODUCER span, ended at the acknowledgement.
    pub(super) span: tracing::Span,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
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
pub(super) struct Deliveries {
    /// (sequence, when it was handed over, the record or why it failed before).
    queue: VecDeque<(u64, Instant, Result<InFlight, MessagingError>)>,
    /// Wakes the stream when the oldest record becomes stalled.
    stall_timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Deliveries {
    pub(super) fn push(&mut self, sequence: u64, started: Result<InFlight, MessagingError>) {
        self.queue.push_back((sequence, Instant::now(), started));
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The oldest record's result, once it has one; or, while it is stalled, any later
    /// record's.
    pub(super) fn poll_next(
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
