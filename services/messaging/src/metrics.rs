//! The messaging service's own instruments: records and bytes sent and consumed per topic, the
//! producer's queue, and the lag of every live consume stream per partition.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Meter};
use parking_lot::{Mutex, RwLock};
use rdkafka::producer::Producer as _;

use crate::kafka::Kafka;

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

#[derive(Debug)]
struct Instruments {
    sent_messages: Counter<u64>,
    sent_bytes: Counter<u64>,
    consumed_messages: Counter<u64>,
    consumed_bytes: Counter<u64>,
    /// Topic -> its `messaging.destination.name` label (built once per topic).
    topics: RwLock<HashMap<String, [KeyValue; 1]>>,
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
    /// Creates the instruments on `meter`; the queue gauge reads `kafka`'s producer.
    pub fn new(meter: &Meter, kafka: &Kafka) -> Self {
        let instruments = Arc::new(Instruments {
            sent_messages: meter
                .u64_counter("messaging.client.sent.messages")
                .with_description("Records acknowledged by Kafka, per topic")
                .build(),
            sent_bytes: meter
                .u64_counter("messaging.client.sent.bytes")
                .with_description("Key and value bytes of records acknowledged by Kafka")
                .build(),
            consumed_messages: meter
                .u64_counter("messaging.client.consumed.messages")
                .with_description("Records delivered to consume streams, per topic")
                .build(),
            consumed_bytes: meter
                .u64_counter("messaging.client.consumed.bytes")
                .with_description("Key and value bytes of records delivered to consume streams")
                .build(),
            topics: RwLock::default(),
            lag: Mutex::default(),
            next_stream: AtomicU64::new(0),
        });
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

    fn with_topic(&self, topic: &str, record: impl FnOnce(&[KeyValue])) {
        if let Some(labels) = self.instruments.topics.read().get(topic) {
            return record(labels);
        }
        let labels = [KeyValue::new(
            "messaging.destination.name",
            topic.to_owned(),
        )];
        record(&labels);
        let mut topics = self.instruments.topics.write();
        // Bounded: topics deleted and recreated under new names must not grow this forever.
        if topics.len() >= 10_000 {
            topics.clear();
        }
        topics.insert(topic.to_owned(), labels);
    }

    /// A record of `bytes` key and value bytes was acknowledged by Kafka.
    pub fn sent(&self, topic: &str, bytes: usize) {
        self.with_topic(topic, |labels| {
            self.instruments.sent_messages.add(1, labels);
            self.instruments.sent_bytes.add(bytes as u64, labels);
        });
    }

    /// A record of `bytes` key and value bytes was delivered to a consume stream.
    pub fn consumed(&self, topic: &str, bytes: usize) {
        self.with_topic(topic, |labels| {
            self.instruments.consumed_messages.add(1, labels);
            self.instruments.consumed_bytes.add(bytes as u64, labels);
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
