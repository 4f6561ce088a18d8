//! REST consumer instances: a Kafka consumer of a group, created by one request and used by
//! the next ones, as the REST Proxy's v2 API has them.
//!
//! **An instance is state of the replica that created it.** Its id is the name the client
//! gave, or `rest-consumer-<replica>-<random>` (the replica's name: `--replica-id`, by default
//! the host name, a pod's name on Kubernetes), and its `base_uri` is this replica's advertised
//! URL (`--rest-advertised-url`), so a client that follows `base_uri`, or a load balancer with
//! a sticky route on the instance path, reaches it. Elsewhere (another replica, after a
//! restart, after it expired or was deleted) a request gets 40403 with a message saying which
//! of these it is, as far as this replica knows.
//!
//! - **Expiry**: an instance without a request for `--consumer-instance-timeout-ms` (the REST
//!   Proxy's `consumer.instance.timeout.ms`, 300 s by default) is closed; one serving a
//!   request never is. Closing leaves the group, so its partitions go to other members.
//! - **Owner**: only the principal that created an instance can use it; to any other caller it
//!   does not exist (40403).
//! - **Offsets**: a record's offset is committed only once it has been handed out in a
//!   `records` response, and then only when the client commits (`POST .../offsets`) or, with
//!   `auto.commit.enable` (the default, as the REST Proxy's), by librdkafka's periodic
//!   auto-commit and when the instance closes. A record taken from librdkafka but not handed out
//!   (over `max_bytes`) is kept for the next fetch. So nothing is committed that the client
//!   was not given; what it was given and did not commit comes again after a rebalance.
//! - **Bounded**: instances take places from the same budget as gRPC Consume streams (each
//!   holds a Kafka consumer: threads and descriptors), 50301 when none is left; a fetch waits at
//!   most `consumer.request.timeout.ms` (at most 30 s) and returns at most `max_bytes` (at most
//!   16 MiB) of keys and values.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::consumer::{CommitMode, Consumer, DefaultConsumerContext, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tributary_security::authz::Caller;

use crate::consume::CONSUMER_DEFAULTS;
use crate::error::MessagingError;
use crate::kafka::Kafka;
use crate::rest::error::RestError;
use crate::rest::media::EmbeddedFormat;

/// The REST Proxy's default `consumer.request.timeout.ms`: how long a fetch waits for records.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
/// The longest a fetch may be asked to wait.
pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The most key and value bytes of one fetch, unless `max_bytes` asks for fewer.
pub const MAX_FETCH_BYTES: usize = 16 * 1024 * 1024;
/// The default `max_bytes` of a fetch.
pub const DEFAULT_FETCH_BYTES: usize = 4 * 1024 * 1024;
/// The most records of one fetch.
pub const MAX_FETCH_RECORDS: usize = 10_000;
/// After the first record of a fetch, it returns once no record has come for this long (or
/// at its timeout, or full).
const FETCH_IDLE_GAP: Duration = Duration::from_millis(100);
/// A fetch of a consumer still joining its group (no partition assigned yet) waits for its
/// partitions this long past its timeout, so the first fetch after subscribing has records.
const JOIN_WAIT: Duration = Duration::from_secs(10);
/// How many closed instances are remembered, to say why a request finds none.
const REMEMBERED_GONE: usize = 4096;
/// The longest group or instance name.
const MAX_NAME_BYTES: usize = 249;

/// How a consumer instance is configured (the create request's fields, checked).
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    pub name: Option<String>,
    pub format: EmbeddedFormat,
    pub auto_offset_reset: String,
    pub auto_commit: bool,
    pub fetch_min_bytes: Option<u32>,
    pub request_timeout: Duration,
}

/// Why an instance is no longer here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    Expired,
    Deleted,
    ShutDown,
}

type Key = (String, String);

/// The consumer instances of this replica.
#[derive(Debug)]
pub struct Instances {
    kafka: Kafka,
    places: Arc<Semaphore>,
    max_places: usize,
    replica: String,
    timeout: Duration,
    live: Mutex<HashMap<Key, Arc<Instance>>>,
    gone: Mutex<(HashMap<Key, Gone>, VecDeque<Key>)>,
}

/// One consumer instance.
#[derive(Debug)]
pub struct Instance {
    pub group: String,
    pub id: String,
    pub format: EmbeddedFormat,
    pub request_timeout: Duration,
    owner: String,
    last_used: Mutex<Instant>,
    /// The consumer and what was handed out, one request at a time.
    pub state: tokio::sync::Mutex<InstanceState>,
    _place: OwnedSemaphorePermit,
}

/// What a request to an instance works with.
pub struct InstanceState {
    pub consumer: Arc<StreamConsumer>,
    pub auto_commit: bool,
    /// Per partition, the offset after the last record handed out.
    pub handed_out: HashMap<(String, i32), i64>,
    /// Records taken from librdkafka and not handed out yet (they did not fit the last
    /// fetch, or it failed), handed out first by the next one.
    pub carried: VecDeque<OwnedMessage>,
    /// Whether the instance subscribed by a pattern (records of topics the caller may not
    /// consume are then left out of fetches).
    pub pattern: bool,
    pub decoder: crate::consume::JsonDecoder,
}

impl std::fmt::Debug for InstanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceState")
            .field("auto_commit", &self.auto_commit)
            .field("handed_out", &self.handed_out.len())
            .finish_non_exhaustive()
    }
}

/// A name in a path: not empty, at most [`MAX_NAME_BYTES`], letters, digits, `.`, `_`, `-`.
pub fn check_name(what: &str, name: &str) -> Result<(), RestError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(RestError::new(
            422,
            42204,
            format!(
                "Invalid consumer configuration: the {what} must be 1 to {MAX_NAME_BYTES} letters, digits, '.', '_' or '-' (got '{}')",
                name.chars().take(64).collect::<String>()
            ),
        ))
    }
}

impl Instances {
    pub fn new(
        kafka: Kafka,
        places: Arc<Semaphore>,
        max_places: usize,
        replica: String,
        timeout: Duration,
    ) -> Self {
        Self {
            kafka,
            places,
            max_places,
            replica,
            timeout,
            live: Mutex::new(HashMap::new()),
            gone: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    /// This replica's name.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// How many instances are open.
    pub fn len(&self) -> usize {
        self.live.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.lock().is_empty()
    }

    /// Creates an instance of `group` for `caller`.
    pub fn create(
        &self,
        caller: &Caller,
        group: &str,
        config: InstanceConfig,
    ) -> Result<Arc<Instance>, RestError> {
        check_name("consumer group", group)?;
        let id = match &config.name {
            Some(name) => {
                check_name("instance name", name)?;
                name.clone()
            }
            None => format!(
                "rest-consumer-{}-{}",
                self.replica,
                tributary_telemetry::correlation::new_id()
            ),
        };
        let key = (group.to_owned(), id.clone());
        if self.live.lock().contains_key(&key) {
            return Err(RestError::new(
                409,
                40902,
                format!(
                    "Consumer with specified consumer ID already exists in the specified consumer group: '{id}' in '{group}'"
                ),
            ));
        }
        let place = Arc::clone(&self.places).try_acquire_owned().map_err(|_| {
            RestError::from(MessagingError::TooManyConsumeStreams {
                limit: self.max_places,
            })
        })?;
        let mut kafka_config = self.kafka.base_config();
        kafka_config
            .set("group.id", group)
            .set("client.id", format!("tributary-rest-{id}"))
            .set("enable.auto.commit", config.auto_commit.to_string())
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", &config.auto_offset_reset)
            .set("enable.partition.eof", "false");
        if let Some(bytes) = config.fetch_min_bytes {
            kafka_config.set("fetch.min.bytes", bytes.to_string());
        }
        // The Consume streams' defaults (prefetching up to 16 MiB, as a fetch may return),
        // without statistics (nothing reads them here).
        for (property, default) in CONSUMER_DEFAULTS {
            if property != "statistics.interval.ms" && kafka_config.get(property).is_none() {
                kafka_config.set(property, default);
            }
        }
        let consumer: StreamConsumer<DefaultConsumerContext> = kafka_config
            .create()
            .map_err(|error| RestError::from(MessagingError::Kafka(error)))?;
        let instance = Arc::new(Instance {
            group: group.to_owned(),
            id,
            format: config.format,
            request_timeout: config.request_timeout,
            owner: caller.principal.key(),
            last_used: Mutex::new(Instant::now()),
            state: tokio::sync::Mutex::new(InstanceState {
                consumer: Arc::new(consumer),
                auto_commit: config.auto_commit,
                handed_out: HashMap::new(),
                carried: VecDeque::new(),
                pattern: false,
                decoder: Default::default(),
            }),
            _place: place,
        });
        let mut live = self.live.lock();
        if live.contains_key(&key) {
            return Err(RestError::new(
                409,
                40902,
                "Consumer with specified consumer ID already exists in the specified consumer group",
            ));
        }
        live.insert(key.clone(), Arc::clone(&instance));
        drop(live);
        self.gone.lock().0.remove(&key);
        Ok(instance)
    }

    /// The instance `group`/`id` of `caller`, its use noted; 40403 saying why when there is
    /// none here.
    pub fn find(&self, caller: &Caller, group: &str, id: &str) -> Result<Arc<Instance>, RestError> {
        let key = (group.to_owned(), id.to_owned());
        let found = self.live.lock().get(&key).cloned();
        match found {
            Some(instance) if instance.owner == caller.principal.key() => {
                *instance.last_used.lock() = Instant::now();
                Ok(instance)
            }
            _ => Err(self.not_found(&key)),
        }
    }

    fn not_found(&self, key: &Key) -> RestError {
        let (group, id) = key;
        let gone = self.gone.lock().0.get(key).copied();
        let why = match gone {
            Some(Gone::Expired) => format!(
                "it expired after {} ms without a request (consumer.instance.timeout.ms: --consumer-instance-timeout-ms, MESSAGING_CONSUMER_INSTANCE_TIMEOUT_MS); create a new one",
                self.timeout.as_millis()
            ),
            Some(Gone::Deleted) => "it was deleted".to_owned(),
            Some(Gone::ShutDown) => "the replica is shutting down".to_owned(),
            None => format!(
                "this replica ({}) has no such instance: an instance lives on the replica that created it until it expires or is deleted; send its requests to the base_uri it was created with, or create a new one",
                self.replica
            ),
        };
        let cut = |name: &str| name.chars().take(256).collect::<String>();
        RestError::instance_not_found(format!(
            "Consumer instance not found: '{}' of group '{}': {why}",
            cut(id),
            cut(group)
        ))
    }

    /// Deletes an instance of `caller` (closing its consumer: with auto-commit, what was
    /// handed out is committed, and it leaves its group).
    pub async fn delete(&self, caller: &Caller, group: &str, id: &str) -> Result<(), RestError> {
        let instance = self.find(caller, group, id)?;
        let key = (group.to_owned(), id.to_owned());
        let removed = self.live.lock().remove(&key);
        if removed.is_some() {
            self.remember(key, Gone::Deleted);
        }
        close(instance).await;
        Ok(())
    }

    fn remember(&self, key: Key, why: Gone) {
        let mut gone = self.gone.lock();
        let (map, order) = &mut *gone;
        if map.insert(key.clone(), why).is_none() {
            order.push_back(key);
        }
        while order.len() > REMEMBERED_GONE {
            if let Some(oldest) = order.pop_front() {
                map.remove(&oldest);
            }
        }
    }

    /// Closes instances unused for the timeout, every second (or a quarter of the timeout)
    /// until `stop`; then closes them all.
    pub async fn run_expiry(self: Arc<Self>, stop: CancellationToken) {
        let period = (self.timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(period) => {}
            }
            let now = Instant::now();
            let expired: Vec<(Key, Arc<Instance>)> = {
                let mut live = self.live.lock();
                let keys: Vec<Key> = live
                    .iter()
                    .filter(|(_, instance)| {
                        now.duration_since(*instance.last_used.lock()) >= self.timeout
                            && instance.state.try_lock().is_ok()
                    })
                    .map(|(key, _)| key.clone())
                    .collect();
                keys.into_iter()
                    .filter_map(|key| live.remove(&key).map(|instance| (key, instance)))
                    .collect()
            };
            for (key, instance) in expired {
                tracing::info!(group = %key.0, instance = %key.1, "REST consumer instance expired");
                self.remember(key, Gone::Expired);
                close(instance).await;
            }
        }
        let all: Vec<(Key, Arc<Instance>)> = self.live.lock().drain().collect();
        for (key, instance) in all {
            self.remember(key, Gone::ShutDown);
            close(instance).await;
        }
    }
}

/// Closes an instance's consumer once no request uses it (librdkafka's close blocks: it
/// commits with auto-commit and leaves the group), on a blocking thread.
async fn close(instance: Arc<Instance>) {
    let state = instance.state.lock().await;
    let consumer = Arc::clone(&state.consumer);
    drop(state);
    drop(instance);
    // Unsubscribing leaves the group (committing first, with auto-commit); the last
    // reference's drop closes the consumer.
    let _ = tokio::task::spawn_blocking(move || {
        consumer.unsubscribe();
        drop(consumer);
    })
    .await;
}

/// A record taken for a fetch.
pub type Taken = OwnedMessage;

impl InstanceState {
    /// Takes records for a fetch: waits up to `timeout` for the first (longer while the
    /// consumer is still joining its group), then takes what comes until no record has come
    /// for a moment, `max_bytes` of keys and values are taken, or the timeout.
    pub async fn take(&mut self, timeout: Duration, max_bytes: usize) -> Vec<Taken> {
        let started = Instant::now();
        let mut deadline = started + timeout;
        let mut taken: Vec<Taken> = Vec::new();
        let mut bytes = 0usize;
        while let Some(record) = self.carried.pop_front() {
            let size = record_size(&record);
            if !taken.is_empty()
                && (bytes.saturating_add(size) > max_bytes || taken.len() >= MAX_FETCH_RECORDS)
            {
                self.carried.push_front(record);
                return taken;
            }
            bytes = bytes.saturating_add(size);
            taken.push(record);
        }
        let consumer = Arc::clone(&self.consumer);
        let mut extended = false;
        while bytes < max_bytes && taken.len() < MAX_FETCH_RECORDS {
            let now = Instant::now();
            let wait_until = if taken.is_empty() {
                deadline
            } else {
                deadline.min(now + FETCH_IDLE_GAP)
            };
            if now >= wait_until {
                if taken.is_empty()
                    && !extended
                    && consumer.assignment().is_ok_and(|a| a.count() == 0)
                    && consumer.subscription().is_ok_and(|s| s.count() > 0)
                {
                    // Still joining: wait for the partitions, then the fetch's own timeout.
                    extended = true;
                    deadline = now + JOIN_WAIT;
                    continue;
                }
                break;
            }
            let step = wait_until.min(now + Duration::from_millis(100));
            match tokio::time::timeout_at(step, consumer.recv()).await {
                Err(_) => {
                    if extended
                        && taken.is_empty()
                        && consumer.assignment().is_ok_and(|a| a.count() > 0)
                    {
                        // Joined: from now on the fetch's own timeout.
                        extended = false;
                        deadline = deadline.min(Instant::now() + timeout);
                    }
                    continue;
                }
                Ok(Err(error)) => {
                    // Transport errors and the like: librdkafka recovers on its own.
                    tracing::debug!(%error, "REST consumer instance: Kafka error while fetching");
                    continue;
                }
                Ok(Ok(message)) => {
                    let record = message.detach();
                    let size = record_size(&record);
                    if !taken.is_empty() && bytes.saturating_add(size) > max_bytes {
                        self.carried.push_back(record);
                        break;
                    }
                    bytes = bytes.saturating_add(size);
                    taken.push(record);
                }
            }
        }
        taken
    }

    /// Notes records as handed out: their offsets become what a commit without offsets
    /// commits, and (with auto-commit) what librdkafka's auto-commit may commit.
    pub fn handed_out(&mut self, records: &[Taken]) {
        let mut stored = TopicPartitionList::new();
        for record in records {
            let next = record.offset().saturating_add(1);
            self.handed_out
                .insert((record.topic().to_owned(), record.partition()), next);
            if self.auto_commit {
                let _ = stored.add_partition_offset(
                    record.topic(),
                    record.partition(),
                    Offset::Offset(next),
                );
            }
        }
        if stored.count() > 0
            && let Err(error) = self.consumer.store_offsets(&stored)
        {
            // A partition revoked meanwhile: its records come again to its next owner.
            tracing::debug!(%error, "cannot store offsets of a REST consumer instance");
        }
    }

    /// Commits `offsets` (each the next offset to read), or everything handed out on the
    /// partitions still assigned when `None`; synchronously, on a blocking thread.
    pub async fn commit(
        &mut self,
        offsets: Option<Vec<(String, i32, i64)>>,
    ) -> Result<Vec<(String, i32, i64)>, MessagingError> {
        let offsets = match offsets {
            Some(offsets) => offsets,
            None => {
                let assigned = self.assignment()?;
                self.handed_out
                    .iter()
                    .filter(|((topic, partition), _)| {
                        assigned.iter().any(|(t, p)| t == topic && p == partition)
                    })
                    .map(|((topic, partition), offset)| (topic.clone(), *partition, *offset))
                    .collect()
            }
        };
        if offsets.is_empty() {
            return Ok(offsets);
        }
        let mut list = TopicPartitionList::new();
        for (topic, partition, offset) in &offsets {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(MessagingError::Kafka)?;
        }
        let consumer = Arc::clone(&self.consumer);
        tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync))
            .await
            .map_err(|error| MessagingError::Internal(format!("commit task: {error}")))?
            .map_err(|error| MessagingError::from_kafka(error, "", 0))?;
        Ok(offsets)
    }

    /// The partitions assigned to the consumer.
    pub fn assignment(&self) -> Result<Vec<(String, i32)>, MessagingError> {
        let list = self.consumer.assignment().map_err(MessagingError::Kafka)?;
        Ok(list
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect())
    }

    /// Moves the consumer's position on assigned partitions; records carried over from them
    /// are dropped (they come again from the new position).
    pub async fn seek(
        &mut self,
        positions: Vec<(String, i32, Offset)>,
        timeout: Duration,
    ) -> Result<(), RestError> {
        let assigned = self.assignment()?;
        for (topic, partition, _) in &positions {
            if !assigned.iter().any(|(t, p)| t == topic && p == partition) {
                return Err(RestError::new(
                    409,
                    40903,
                    format!(
                        "Illegal state: partition {partition} of topic '{topic}' is not assigned to this consumer instance (fetch records first after subscribing, or assign it)"
                    ),
                ));
            }
        }
        let mut list = TopicPartitionList::new();
        for (topic, partition, offset) in &positions {
            list.add_partition_offset(topic, *partition, *offset)
                .map_err(|error| RestError::from(MessagingError::Kafka(error)))?;
        }
        let consumer = Arc::clone(&self.consumer);
        let sought = tokio::task::spawn_blocking(move || consumer.seek_partitions(list, timeout))
            .await
            .map_err(|error| MessagingError::Internal(format!("seek task: {error}")))?
            .map_err(|error| {
                RestError::new(
                    409,
                    40903,
                    format!("Illegal state: the seek failed: {error}"),
                )
            })?;
        for element in sought.elements() {
            if let Err(error) = element.error() {
                return Err(RestError::new(
                    409,
                    40903,
                    format!(
                        "Illegal state: cannot seek partition {} of topic '{}': {error}",
                        element.partition(),
                        element.topic()
                    ),
                ));
            }
        }
        for (topic, partition, offset) in positions {
            self.carried
                .retain(|r| r.topic() != topic || r.partition() != partition);
            match offset {
                Offset::Offset(offset) => {
                    self.handed_out.insert((topic, partition), offset);
                }
                _ => {
                    self.handed_out.remove(&(topic, partition));
                }
            }
        }
        Ok(())
    }
}

fn record_size(record: &OwnedMessage) -> usize {
    record.key().map_or(0, <[u8]>::len) + record.payload().map_or(0, <[u8]>::len)
}
