//! The context of a stream's Kafka consumer: librdkafka's rebalance notifications and
//! statistics sent to the stream's task (from librdkafka's thread), and the lag per partition
//! computed from them.

use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use tokio::sync::mpsc;

use super::acks::AckTracker;
use crate::kafka::Kafka;

/// Rebalance notifications and statistics from librdkafka's thread to the stream's task.
#[derive(Debug)]
pub(super) enum RebalanceEvent {
    Assigned(Vec<(String, i32)>),
    Revoked(Vec<(String, i32)>),
    Watermarks(Vec<PartitionWatermark>),
}

/// One assigned partition in librdkafka's statistics.
#[derive(Debug)]
pub(super) struct PartitionWatermark {
    topic: String,
    partition: i32,
    high: i64,
    committed: i64,
}

pub(super) struct StreamContext {
    pub(super) events: mpsc::UnboundedSender<RebalanceEvent>,
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
pub(super) async fn broker_watermarks(
    kafka: &Kafka,
    topics: Vec<String>,
) -> Vec<PartitionWatermark> {
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
pub(super) fn lags(
    tracker: &AckTracker,
    watermarks: Vec<PartitionWatermark>,
) -> impl Iterator<Item = (String, i32, i64)> + '_ {
    watermarks.into_iter().filter_map(|w| {
        let position = tracker
            .resume_position(&w.topic, w.partition)
            .or((w.committed >= 0).then_some(w.committed))?;
        Some((w.topic, w.partition, w.high.saturating_sub(position)))
    })
}

impl ConsumerContext for StreamContext {
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(error) = result {
            tracing::warn!(
                %error,
                partitions = offsets.count(),
                "offset commit failed; the acknowledged records past the group's committed offset will be delivered again"
            );
        }
    }

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

pub(super) type KafkaConsumer = StreamConsumer<StreamContext>;

#[cfg(test)]
mod tests {
    use super::*;

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
}
