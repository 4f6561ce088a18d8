//! The messaging service's own instruments: records and bytes sent and consumed per topic, the
//! producer's queue, and the lag of every live consume stream per partition.
//!
//! The per-record path only bumps relaxed atomics of its topic (found under a read lock); the
//! OpenTelemetry counters read them when metrics are collected (a scrape or an OTLP export).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::metrics::Meter;
use opentelemetry::{KeyValue, StringValue};
use parking_lot::{Mutex, RwLock};
use rdkafka::producer::Producer as _;

use crate::kafka::Kafka;

/// Most topics counted; past it the counts start over (a counter reset to Prometheus).
const MAX_TOPICS: usize = 10_000;

/// Lag of one partition of one stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LagKey {
    topic: String,
    partition: i32,
}

#[derive(Debug, Default)]
struct StreamLag {
    group: String,
    partitions: HashMap<LagKey, i64>,
}

/// Which count of a topic a counter reads.
type CountOf = fn(&TopicCounts) -> &AtomicU64;

/// Counts of one topic.
#[derive(Debug)]
struct TopicCounts {
    label: [KeyValue; 1],
    sent_messages: AtomicU64,
    sent_bytes: AtomicU64,
    consumed_messages: AtomicU64,
    consumed_bytes: AtomicU64,
}

#[derive(Debug)]
struct Instruments {
    topics: RwLock<HashMap<String, TopicCounts>>,
    /// Stream id -> its group and lag per partition.
    lag: Mutex<HashMap<u64, StreamLag>>,
    next_stream: AtomicU64,
}

/// Handle on the instruments, cheap to clone.
#[derive(Debug, Clone)]
pub struct MessagingMetrics {
    instruments: Arc<Instruments>,
}

impl MessagingMetrics {
    /// Counts lookups of a subject's latest version answered from a stale cache entry while
    /// the registry was unreachable (`served` is the schema cache's counter).
    pub fn count_stale_latest(&self, meter: &Meter, served: Arc<AtomicU64>) {
        meter
            .u64_observable_counter("messaging.schema.stale_latest_lookups")
            .with_description(
                "Lookups of a subject's latest version answered from the last known one because the registry was unreachable",
            )
            .with_callback(move |observer| observer.observe(served.load(Ordering::Relaxed), &[]))
            .build();
    }

    /// The `messaging.rest.consumer_instances` gauge: REST consumer instances open.
    pub fn count_rest_instances(
        &self,
        meter: &Meter,
        instances: Arc<crate::rest::instances::Instances>,
    ) {
        meter
            .u64_observable_gauge("messaging.rest.consumer_instances")
            .with_description("REST consumer instances open on this replica")
            .with_callback(move |observer| observer.observe(instances.len() as u64, &[]))
            .build();
    }

    /// Creates the instruments on `meter`; the queue gauge reads `kafka`'s producer.
    pub fn new(meter: &Meter, kafka: &Kafka) -> Self {
        let instruments = Arc::new(Instruments {
            topics: RwLock::default(),
            lag: Mutex::default(),
            next_stream: AtomicU64::new(0),
        });
        let per_topic: [(&str, &str, CountOf); 4] = [
            (
                "messaging.client.sent.messages",
                "Records acknowledged by Kafka, per topic",
                |c| &c.sent_messages,
            ),
            (
                "messaging.client.sent.bytes",
                "Key and value bytes of records acknowledged by Kafka",
                |c| &c.sent_bytes,
            ),
            (
                "messaging.client.consumed.messages",
                "Records delivered to consume streams, per topic",
                |c| &c.consumed_messages,
            ),
            (
                "messaging.client.consumed.bytes",
                "Key and value bytes of records delivered to consume streams",
                |c| &c.consumed_bytes,
            ),
        ];
        for (name, description, count) in per_topic {
            let counted = Arc::clone(&instruments);
            meter
                .u64_observable_counter(name)
                .with_description(description)
                .with_callback(move |observer| {
                    for counts in counted.topics.read().values() {
                        observer.observe(count(counts).load(Ordering::Relaxed), &counts.label);
                    }
                })
                .build();
        }
        let producer = kafka.producer().clone();
        meter
            .i64_observable_gauge("messaging.producer.queue.messages")
            .with_description("Records in librdkafka's producer queue or in flight to Kafka")
            .with_callback(move |observer| {
                observer.observe(i64::from(producer.in_flight_count()), &[]);
            })
            .build();
        let lag = Arc::clone(&instruments);
        meter
            .i64_observable_gauge("messaging.consumer.lag.messages")
            .with_description(
                "Per partition of a live consume stream: high watermark minus the offset the \
                 stream would resume from (its lowest unacknowledged delivered offset)",
            )
            .with_callback(move |observer| {
                for stream in lag.lag.lock().values() {
                    for (key, lag) in &stream.partitions {
                        observer.observe(
                            *lag,
                            &[
                                KeyValue::new(
                                    "messaging.consumer.group.name",
                                    stream.group.clone(),
                                ),
                                KeyValue::new("messaging.destination.name", key.topic.clone()),
                                KeyValue::new(
                                    "messaging.destination.partition.id",
                                    key.partition.to_string(),
                                ),
                            ],
                        );
                    }
                }
            })
            .build();
        Self { instruments }
    }

    fn with_topic(&self, topic: &str, count: impl FnOnce(&TopicCounts)) {
        if let Some(counts) = self.instruments.topics.read().get(topic) {
            return count(counts);
        }
        let mut topics = self.instruments.topics.write();
        // Bounded: topics deleted and recreated under new names must not grow this forever.
        if topics.len() >= MAX_TOPICS && !topics.contains_key(topic) {
            topics.clear();
        }
        let counts = topics
            .entry(topic.to_owned())
            .or_insert_with(|| TopicCounts {
                label: [KeyValue::new(
                    "messaging.destination.name",
                    StringValue::from(Arc::<str>::from(topic)),
                )],
                sent_messages: AtomicU64::new(0),
                sent_bytes: AtomicU64::new(0),
                consumed_messages: AtomicU64::new(0),
                consumed_bytes: AtomicU64::new(0),
            });
        count(counts);
    }

    /// A record of `bytes` key and value bytes was acknowledged by Kafka.
    pub fn sent(&self, topic: &str, bytes: usize) {
        self.with_topic(topic, |counts| {
            counts.sent_messages.fetch_add(1, Ordering::Relaxed);
            counts.sent_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        });
    }

    /// Records acknowledged by Kafka plus records consumed from it, over every topic counted:
    /// when it grows, the brokers are serving.
    pub fn records_through_kafka(&self) -> u64 {
        self.instruments
            .topics
            .read()
            .values()
            .map(|c| {
                c.sent_messages
                    .load(Ordering::Relaxed)
                    .wrapping_add(c.consumed_messages.load(Ordering::Relaxed))
            })
            .fold(0u64, u64::wrapping_add)
    }

    /// `records` records of `bytes` key and value bytes in all were delivered to a consume
    /// stream.
    pub fn consumed(&self, topic: &str, records: usize, bytes: usize) {
        self.with_topic(topic, |counts| {
            counts
                .consumed_messages
                .fetch_add(records as u64, Ordering::Relaxed);
            counts
                .consumed_bytes
                .fetch_add(bytes as u64, Ordering::Relaxed);
        });
    }

    /// Registers a live consume stream of `group`; its lag series go away when the returned
    /// handle is dropped.
    pub fn consume_stream(&self, group: &str) -> StreamLagHandle {
        let id = self.instruments.next_stream.fetch_add(1, Ordering::Relaxed);
        self.instruments.lag.lock().insert(
            id,
            StreamLag {
                group: group.to_owned(),
                partitions: HashMap::new(),
            },
        );
        StreamLagHandle {
            id,
            instruments: Arc::clone(&self.instruments),
        }
    }
}

/// The lag series of one consume stream.
#[derive(Debug)]
pub struct StreamLagHandle {
    id: u64,
    instruments: Arc<Instruments>,
}

impl StreamLagHandle {
    /// Replaces the stream's lag per (topic, partition).
    pub fn set(&self, lags: impl IntoIterator<Item = (String, i32, i64)>) {
        let partitions = lags
            .into_iter()
            .map(|(topic, partition, lag)| (LagKey { topic, partition }, lag.max(0)))
            .collect();
        if let Some(stream) = self.instruments.lag.lock().get_mut(&self.id) {
            stream.partitions = partitions;
        }
    }
}

impl Drop for StreamLagHandle {
    fn drop(&mut self) {
        self.instruments.lag.lock().remove(&self.id);
    }
}
