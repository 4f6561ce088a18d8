//! What a subscription asks for, checked: the checks that need neither Kafka nor the registry
//! (services/fuzz runs them over arbitrary subscriptions), payload formats and batching.

use std::sync::Arc;
use std::time::Duration;

use tributary_proto::messaging::v1 as pb;

use super::acks::AckTracker;
use super::records::PayloadDecoding;
use crate::error::MessagingError;

/// Bounds of the batching options of a subscription.
const MAX_BATCH_RECORDS: i32 = 10_000;
const DEFAULT_MAX_BATCH_BYTES: usize = 1 << 20;
const MAX_BATCH_LINGER_MS: i32 = 1000;

/// How records are grouped into responses, when the subscription asks for batches.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    pub(super) max_records: usize,
    pub(super) max_bytes: usize,
    pub(super) linger: Duration,
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

/// What a subscription asks for, checked.
pub(super) struct Plan {
    pub(super) max_unacked: usize,
    pub(super) auto_ack: bool,
    pub(super) decoding: Arc<PayloadDecoding>,
    pub(super) batching: Option<Batching>,
}

impl Plan {
    /// Whether another record may be delivered now (flow control).
    pub(super) fn may_deliver(&self, tracker: &AckTracker) -> bool {
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

/// The checks of a subscription that come first and need neither Kafka nor the registry: a
/// group, topics or partitions (one of them), a known start position that fits them, and no
/// negative start offset. Returns the start position.
pub fn check_subscription(
    subscription: &pb::Subscription,
) -> Result<pb::StartPosition, MessagingError> {
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
    // librdkafka reads negative offsets as logical ones (-1 the end, -2 the beginning, below
    // -2000 "that many from the end"): a client's offset is a real one or nothing.
    if start == pb::StartPosition::Offset && subscription.start_offset < 0 {
        return Err(MessagingError::invalid(
            "start_offset",
            format!("{} is negative", subscription.start_offset),
        ));
    }
    Ok(start)
}

/// A subscription's payload formats and batching options, checked (after its reader schema):
/// `(value format, key format, batching)`; `None` for one record per response.
pub fn subscription_options(
    subscription: &pb::Subscription,
) -> Result<(pb::PayloadFormat, pb::PayloadFormat, Option<Batching>), MessagingError> {
    Ok((
        format_of(subscription.value_format, "value_format")?,
        format_of(subscription.key_format, "key_format")?,
        Batching::of(subscription)?,
    ))
}

/// A seek's offset, checked: a real offset, not one of librdkafka's logical (negative) ones.
pub fn check_seek(seek: &pb::Seek) -> Result<(), MessagingError> {
    if seek.offset < 0 {
        return Err(MessagingError::invalid(
            "seek.offset",
            format!("{} is negative", seek.offset),
        ));
    }
    Ok(())
}
