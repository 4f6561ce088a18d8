//! Kafka clients: the shared idempotent producer, the admin client, metadata and group queries,
//! and the configuration every client starts from.
//!
//! Producing never creates a topic: every client runs with `allow.auto.create.topics=false`,
//! and a record's topic is checked against the cluster metadata (cached for a few seconds)
//! before it is produced, so a missing topic is NOT_FOUND whatever the broker's
//! `auto.create.topics.enable` says.

#![warn(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tributary_proto::messaging::v1 as pb;

use crate::config::{Settings, property};
use crate::error::MessagingError;

/// librdkafka's default `message.max.bytes`.
const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// The Kafka side of the service.
#[derive(Clone)]
pub struct Kafka {
    base: ClientConfig,
    producer: FutureProducer,
    admin: Arc<AdminClient<DefaultClientContext>>,
    timeout: Duration,
    max_message_bytes: usize,
    /// Topic -> partition count, for a few seconds (only topics that exist).
    topics: Cache<String, i32>,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka")
            .field("bootstrap.servers", &self.base.get("bootstrap.servers"))
            .field("max_message_bytes", &self.max_message_bytes)
            .finish_non_exhaustive()
    }
}

/// Whether `name` can name a Kafka topic: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`
/// (Kafka's rule). librdkafka is never asked about another name: it cannot represent some
/// (`rd_kafka_topic_new` returns nothing for them, and rdkafka then panics).
pub fn is_valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A cluster: its id and its brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub id: String,
    pub brokers: Vec<BrokerInfo>,
}

/// A topic: partitions, replication factor, whether it is internal (`__` names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDetail {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub is_internal: bool,
}

/// A broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
}

/// A blocking librdkafka call whose task panicked or was cancelled (at shutdown).
fn blocking_error(error: tokio::task::JoinError) -> MessagingError {
    tracing::error!(%error, "blocking Kafka call failed");
    MessagingError::Kafka(KafkaError::Canceled)
}

impl Kafka {
    /// Creates the producer and admin clients (they connect in the background).
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let properties = settings.kafka_properties()?;
        // Every client: the bootstrap servers, no topic auto-creation, the user's properties.
        // (Applied from `properties`, never copied out of another ClientConfig: rdkafka's
        // `config_map` hides secret values behind a placeholder, which would then be sent as the
        // SASL password.)
        let common = |config: &mut ClientConfig| {
            config
                .set("bootstrap.servers", &settings.kafka_bootstrap_servers)
                .set("allow.auto.create.topics", "false")
                .set("client.id", "tributary-messaging");
            for property in &properties {
                config.set(&property.key, &property.value);
            }
        };
        let mut base = ClientConfig::new();
        common(&mut base);
        let mut producer_config = ClientConfig::new();
        // `murmur2_random` is the Java client's partitioner: a keyed record lands in the
        // partition a Java producer (Confluent's REST Proxy, Kafka Streams, Connect) would choose
        // for the same key, so topics written through both stay co-partitioned. librdkafka's own
        // default (`consistent_random`, CRC32) would scatter the same keys differently.
        producer_config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set(
                "message.timeout.ms",
                settings.delivery_timeout_ms.to_string(),
            );
        common(&mut producer_config);
        let producer: FutureProducer = producer_config.create()?;
        let admin: AdminClient<DefaultClientContext> = base.create()?;
        let max_message_bytes = property(&properties, "message.max.bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES);
        Ok(Self {
            base,
            producer,
            admin: Arc::new(admin),
            timeout: settings.kafka_timeout(),
            max_message_bytes,
            topics: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
        })
    }

    /// The configuration every client starts from (bootstrap servers and the user's properties).
    pub fn base_config(&self) -> ClientConfig {
        self.base.clone()
    }

    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether a broker answers a metadata request within `timeout`. Asked through the admin
    /// client: the producer's own metadata requests wait behind its recovery when a broker it
    /// produces to dies (measured: several seconds without an answer while two of three
    /// brokers served), and readiness must say whether the cluster answers.
    pub async fn ping(&self, timeout: Duration) -> bool {
        let admin = Arc::clone(&self.admin);
        tokio::task::spawn_blocking(move || {
            admin
                .inner()
                .fetch_metadata(None, timeout)
                .is_ok_and(|m| !m.brokers().is_empty())
        })
        .await
        .unwrap_or(false)
    }

    /// Waits for queued records to be delivered, up to `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        let producer = self.producer.clone();
        let flushed = tokio::task::spawn_blocking(move || producer.flush(timeout)).await;
        if !matches!(flushed, Ok(Ok(()))) {
            tracing::warn!("the producer did not flush every record within the shutdown timeout");
        }
    }

    /// The partition count of a topic (NOT_FOUND when it does not exist).
    pub async fn partition_count(&self, topic: &str) -> Result<i32, MessagingError> {
        if let Some(count) = self.topics.get(topic) {
            return Ok(count);
        }
        let partitions = self.describe_partitions(topic).await?;
        let count = partitions.len() as i32;
        self.topics.insert(topic.to_owned(), count);
        Ok(count)
    }

    /// The partitions of a topic, from fresh metadata.
    pub async fn describe_partitions(
        &self,
        topic: &str,
    ) -> Result<Vec<pb::PartitionInfo>, MessagingError> {
        if !is_valid_topic_name(topic) {
            return Err(MessagingError::TopicNotFound {
                topic: topic.chars().take(256).collect(),
            });
        }
        // Through the admin client, as for `ping`.
        let admin = Arc::clone(&self.admin);
        let timeout = self.timeout;
        let name = topic.to_owned();
        let metadata =
            tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(Some(&name), timeout))
                .await
                .map_err(blocking_error)?
                .map_err(MessagingError::KafkaUnavailable)?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Err(MessagingError::TopicNotFound {
                topic: topic.to_owned(),
            });
        };
        if found.error().is_some() || found.partitions().is_empty() {
            return Err(MessagingError::TopicNotFound {
                topic: topic.to_owned(),
            });
        }
        let mut partitions: Vec<pb::PartitionInfo> = found
            .partitions()
            .iter()
            .map(|p| pb::PartitionInfo {
                partition: p.id(),
                leader: p.leader(),
                replicas: p.replicas().to_vec(),
                in_sync_replicas: p.isr().to_vec(),
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        Ok(partitions)
    }

    /// The cluster's id and its brokers, from fresh metadata.
    pub async fn cluster(&self) -> Result<ClusterInfo, MessagingError> {
        let admin = Arc::clone(&self.admin);
        let timeout = self.timeout;
        tokio::task::spawn_blocking(move || {
            let client = admin.inner();
            let metadata = client
                .fetch_metadata(None, timeout)
                .map_err(MessagingError::KafkaUnavailable)?;
            let mut brokers: Vec<BrokerInfo> = metadata
                .brokers()
                .iter()
                .map(|b| BrokerInfo {
                    id: b.id(),
                    host: b.host().to_owned(),
                    port: b.port(),
                })
                .collect();
            brokers.sort_by_key(|b| b.id);
            let id = client.fetch_cluster_id(timeout).unwrap_or_default();
            Ok(ClusterInfo { id, brokers })
        })
        .await
        .map_err(blocking_error)?
    }

    /// Topics with their partition count and replication factor: every topic (internal ones
    /// included), or the one named.
    pub async fn topic_details(
        &self,
        topic: Option<&str>,
    ) -> Result<Vec<TopicDetail>, MessagingError> {
        if let Some(topic) = topic
            && !is_valid_topic_name(topic)
        {
            return Err(MessagingError::TopicNotFound {
                topic: topic.chars().take(256).collect(),
            });
        }
        let admin = Arc::clone(&self.admin);
        let timeout = self.timeout;
        let name = topic.map(str::to_owned);
        let metadata = tokio::task::spawn_blocking(move || {
            admin.inner().fetch_metadata(name.as_deref(), timeout)
        })
        .await
        .map_err(blocking_error)?
        .map_err(MessagingError::KafkaUnavailable)?;
        let mut topics: Vec<TopicDetail> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| TopicDetail {
                name: t.name().to_owned(),
                partitions: t.partitions().len() as i32,
                replication_factor: t
                    .partitions()
                    .first()
                    .map_or(0, |p| p.replicas().len() as i32),
                is_internal: t.name().starts_with("__"),
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(topic) = topic
            && topics.is_empty()
        {
            return Err(MessagingError::TopicNotFound {
                topic: topic.to_owned(),
            });
        }
        Ok(topics)
    }

    /// Every topic and its partition count.
    pub async fn list_topics(
        &self,
        include_internal: bool,
    ) -> Result<Vec<pb::TopicSummary>, MessagingError> {
        let producer = self.producer.clone();
        let timeout = self.timeout;
        let metadata =
            tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout))
                .await
                .map_err(blocking_error)?
                .map_err(MessagingError::KafkaUnavailable)?;
        let mut topics: Vec<pb::TopicSummary> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .filter(|t| include_internal || !t.name().starts_with("__"))
            .map(|t| pb::TopicSummary {
                name: t.name().to_owned(),
                partition_count: t.partitions().len() as i32,
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Partitions and configuration of a topic.
    pub async fn describe_topic(
        &self,
        topic: &str,
    ) -> Result<pb::DescribeTopicResponse, MessagingError> {
        let partitions = self.describe_partitions(topic).await?;
        let options = AdminOptions::new().request_timeout(Some(self.timeout));
        let results = self
            .admin
            .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
            .await
            .map_err(|e| MessagingError::from_kafka(e, topic, self.max_message_bytes))?;
        let mut configs = BTreeMap::new();
        for result in results {
            let resource = result.map_err(|code| {
                MessagingError::from_kafka(KafkaError::AdminOp(code), topic, self.max_message_bytes)
            })?;
            for entry in resource.entries {
                configs.insert(
                    entry.name.clone(),
                    pb::ConfigEntry {
                        name: entry.name,
                        value: if entry.is_sensitive {
                            None
                        } else {
                            entry.value
                        },
                        is_default: entry.is_default,
                    },
                );
            }
        }
        Ok(pb::DescribeTopicResponse {
            topic: topic.to_owned(),
            partitions,
            configs: configs.into_values().collect(),
        })
    }

    /// Creates a topic and waits until its metadata shows every partition with a leader.
    pub async fn create_topic(
        &self,
        request: &pb::CreateTopicRequest,
    ) -> Result<pb::DescribeTopicResponse, MessagingError> {
        let topic = request.topic.as_str();
        if !is_valid_topic_name(topic) {
            return Err(MessagingError::invalid(
                "topic",
                "a topic name is 1 to 249 letters, digits, '.', '_' or '-', and not '.' or '..'",
            ));
        }
        let partitions = if request.partitions == 0 {
            -1
        } else {
            request.partitions
        };
        let replication = if request.replication_factor == 0 {
            -1
        } else {
            request.replication_factor
        };
        let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
        for (key, value) in &request.configs {
            new_topic = new_topic.set(key, value);
        }
        let options = AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout));
        let results = self
            .admin
            .create_topics([&new_topic], &options)
            .await
            .map_err(|e| MessagingError::from_kafka(e, topic, self.max_message_bytes))?;
        for result in results {
            if let Err((_, code)) = result {
                return Err(admin_error(code, topic, self.max_message_bytes));
            }
        }
        let deadline = tokio::time::Instant::now()
            .checked_add(self.timeout)
            .unwrap_or_else(tokio::time::Instant::now);
        loop {
            match self.describe_partitions(topic).await {
                Ok(found) if found.iter().all(|p| p.leader >= 0) => break,
                Ok(_) | Err(MessagingError::TopicNotFound { .. })
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(_) => break,
                Err(error) => return Err(error),
            }
        }
        // Each metadata request may go to another broker, and one just restarted may not know
        // the topic yet though another did: the topic exists, so ask again until the deadline
        // rather than answer NOT_FOUND for a topic just created (seen in the fault suite, after
        // a broker was killed and restarted).
        loop {
            match self.describe_topic(topic).await {
                Err(MessagingError::TopicNotFound { .. })
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                described => return described,
            }
        }
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), MessagingError> {
        if !is_valid_topic_name(topic) {
            return Err(MessagingError::TopicNotFound {
                topic: topic.chars().take(256).collect(),
            });
        }
        let options = AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout));
        let results = self
            .admin
            .delete_topics(&[topic], &options)
            .await
            .map_err(|e| MessagingError::from_kafka(e, topic, self.max_message_bytes))?;
        self.topics.invalidate(topic);
        for result in results {
            if let Err((_, code)) = result {
                return Err(admin_error(code, topic, self.max_message_bytes));
            }
        }
        Ok(())
    }

    /// The low and high watermark of every partition of a topic.
    pub async fn watermarks(
        &self,
        topic: &str,
    ) -> Result<Vec<pb::PartitionWatermarks>, MessagingError> {
        let partitions = self.describe_partitions(topic).await?;
        let producer = self.producer.clone();
        let timeout = self.timeout;
        let name = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            partitions
                .iter()
                .map(|p| {
                    producer
                        .client()
                        .fetch_watermarks(&name, p.partition, timeout)
                        .map(|(low, high)| pb::PartitionWatermarks {
                            partition: p.partition,
                            low,
                            high,
                        })
                        .map_err(|e| MessagingError::from_kafka(e, &name, 0))
                })
                .collect()
        })
        .await
        .map_err(blocking_error)?
    }

    /// The consumer groups of the cluster.
    pub async fn list_groups(&self) -> Result<Vec<pb::ConsumerGroupSummary>, MessagingError> {
        let producer = self.producer.clone();
        let timeout = self.timeout;
        let mut groups = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_group_list(None, timeout)
                .map(|list| {
                    list.groups()
                        .iter()
                        .map(|g| pb::ConsumerGroupSummary {
                            group_id: g.name().to_owned(),
                            state: g.state().to_owned(),
                        })
                        .collect::<Vec<_>>()
                })
        })
        .await
        .map_err(blocking_error)?
        .map_err(MessagingError::KafkaUnavailable)?;
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(groups)
    }

    /// State, members, committed offsets and lag of a consumer group.
    pub async fn describe_group(
        &self,
        group: &str,
    ) -> Result<pb::DescribeConsumerGroupResponse, MessagingError> {
        let topics = self.list_topics(false).await?;
        let mut config = self.base_config();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false");
        let timeout = self.timeout;
        let group_id = group.to_owned();
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            let list = producer
                .client()
                .fetch_group_list(Some(&group_id), timeout)
                .map_err(MessagingError::KafkaUnavailable)?;
            let (state, members) = match list.groups().first() {
                Some(info) => (
                    info.state().to_owned(),
                    info.members()
                        .iter()
                        .map(|m| pb::GroupMember {
                            member_id: m.id().to_owned(),
                            client_id: m.client_id().to_owned(),
                            client_host: m.client_host().to_owned(),
                        })
                        .collect(),
                ),
                None => ("Dead".to_owned(), Vec::new()),
            };
            let mut tpl = TopicPartitionList::new();
            for topic in &topics {
                for partition in 0..topic.partition_count {
                    tpl.add_partition(&topic.name, partition);
                }
            }
            let consumer: BaseConsumer = config.create().map_err(MessagingError::Kafka)?;
            let committed = if tpl.count() == 0 {
                TopicPartitionList::new()
            } else {
                consumer
                    .committed_offsets(tpl, timeout)
                    .map_err(|e| MessagingError::from_kafka(e, "", 0))?
            };
            let mut offsets = Vec::new();
            for element in committed.elements() {
                let Offset::Offset(offset) = element.offset() else {
                    continue;
                };
                let (_, high) = producer
                    .client()
                    .fetch_watermarks(element.topic(), element.partition(), timeout)
                    .map_err(|e| MessagingError::from_kafka(e, element.topic(), 0))?;
                offsets.push(pb::CommittedOffset {
                    topic: element.topic().to_owned(),
                    partition: element.partition(),
                    offset,
                    high_watermark: high,
                    lag: high.saturating_sub(offset).max(0),
                });
            }
            offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            if state == "Dead" && offsets.is_empty() {
                return Err(MessagingError::GroupNotFound { group: group_id });
            }
            Ok(pb::DescribeConsumerGroupResponse {
                group_id,
                state,
                members,
                offsets,
            })
        })
        .await
        .map_err(blocking_error)?
    }
}

fn admin_error(code: RDKafkaErrorCode, topic: &str, max_message_bytes: usize) -> MessagingError {
    MessagingError::from_kafka(KafkaError::AdminOp(code), topic, max_message_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafkas_rule() {
        assert!(is_valid_topic_name("orders.v1_EU-2"));
        assert!(is_valid_topic_name(&"a".repeat(249)));
        for bad in ["", ".", "..", "a/b", "a b", "ü", "a\0b", &"a".repeat(250)] {
            assert!(!is_valid_topic_name(bad), "{bad:?}");
        }
    }
}
