//! The REST Proxy v2 consumer routes: `POST /consumers/{group}` creates an instance (see
//! [`crate::rest::instances`] for what an instance is and guarantees), the routes under
//! `/consumers/{group}/instances/{instance}` use it.
//!
//! `records` hands out what the instance's consumer fetched, decoded in the instance's format.
//! A key or value that cannot be decoded does not fail the fetch (the REST Proxy's "Error
//! deserializing Avro message for id -1" poisoned every fetch after it): the record comes with
//! `error_code` and `error` saying why, its undecodable key or value as null and its bytes in
//! base64 as `raw_key` / `raw_value`, and the rest of the batch is delivered (a documented
//! extension of the REST Proxy's record).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tributary_proto::messaging::v1 as pb;
use tributary_security::authz::{Action, Caller, Resource};

use crate::error::MessagingError;
use crate::rest::error::RestError;
use crate::rest::instances::{
    DEFAULT_FETCH_BYTES, DEFAULT_REQUEST_TIMEOUT, InstanceConfig, InstanceState, MAX_FETCH_BYTES,
    MAX_REQUEST_TIMEOUT, Taken,
};
use crate::rest::media::{EmbeddedFormat, V2_JSON, check_accept, check_records_accept};
use crate::rest::{CallerOf, RestState, json_body, read_body, v2_json};

/// The longest topic pattern.
const MAX_PATTERN_BYTES: usize = 1024;
/// The most topics or partitions one request names.
const MAX_NAMED: usize = 10_000;

/// `POST /consumers/{group}`'s body. The REST Proxy's settings are strings or numbers.
#[derive(Debug, Deserialize)]
pub struct CreateRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default, rename = "auto.offset.reset")]
    pub auto_offset_reset: Option<String>,
    #[serde(default, rename = "auto.commit.enable")]
    pub auto_commit_enable: Option<serde_json::Value>,
    #[serde(default, rename = "fetch.min.bytes")]
    pub fetch_min_bytes: Option<serde_json::Value>,
    #[serde(default, rename = "consumer.request.timeout.ms")]
    pub request_timeout_ms: Option<serde_json::Value>,
}

fn invalid_config(message: String) -> RestError {
    RestError::new(
        422,
        42204,
        format!("Invalid consumer configuration: {message}"),
    )
}

/// A setting given as a string or a number.
fn setting_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.trim().to_owned()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        serde_json::Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

impl CreateRequest {
    /// The instance's configuration, checked (42204 naming the setting).
    pub fn config(self) -> Result<InstanceConfig, RestError> {
        let format = match self.format.as_deref() {
            None => EmbeddedFormat::Binary,
            Some(name) => EmbeddedFormat::parse(name).ok_or_else(|| {
                invalid_config(format!(
                    "format must be binary, json, avro, jsonschema or protobuf (got '{}')",
                    name.chars().take(64).collect::<String>()
                ))
            })?,
        };
        let auto_offset_reset = match self.auto_offset_reset.as_deref() {
            None | Some("latest") => "latest",
            Some("earliest" | "smallest") => "earliest",
            Some("none") => "error",
            Some(other) => {
                return Err(invalid_config(format!(
                    "auto.offset.reset must be earliest, latest or none (got '{}')",
                    other.chars().take(64).collect::<String>()
                )));
            }
        };
        let auto_commit = match self.auto_commit_enable.as_ref().map(setting_text) {
            None => true,
            Some(Some(text)) if text.eq_ignore_ascii_case("true") => true,
            Some(Some(text)) if text.eq_ignore_ascii_case("false") => false,
            Some(_) => {
                return Err(invalid_config(
                    "auto.commit.enable must be true or false".to_owned(),
                ));
            }
        };
        let number = |name: &str, value: Option<&serde_json::Value>, max: u64| {
            value
                .map(|value| {
                    setting_text(value)
                        .and_then(|text| text.parse::<u64>().ok())
                        .filter(|n| *n <= max)
                        .ok_or_else(|| {
                            invalid_config(format!("{name} must be a number from 0 to {max}"))
                        })
                })
                .transpose()
        };
        let fetch_min_bytes =
            number("fetch.min.bytes", self.fetch_min_bytes.as_ref(), 1 << 20)?.map(|n| n as u32);
        let request_timeout = number(
            "consumer.request.timeout.ms",
            self.request_timeout_ms.as_ref(),
            MAX_REQUEST_TIMEOUT.as_millis() as u64,
        )?
        .map_or(DEFAULT_REQUEST_TIMEOUT, Duration::from_millis);
        Ok(InstanceConfig {
            name: self.name,
            format,
            auto_offset_reset: auto_offset_reset.to_owned(),
            auto_commit,
            fetch_min_bytes,
            request_timeout,
        })
    }
}

/// `POST /consumers/{group}`.
pub async fn create_instance(
    State(state): State<RestState>,
    Path(group): Path<String>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    check_accept(&headers, V2_JSON)?;
    let request: CreateRequest = json_body(&headers, body)?;
    let config = request.config()?;
    state
        .access
        .require(&caller, Action::Read, Resource::group(&group))?;
    let instance = state.instances.create(&caller, &group, config)?;
    let base = state.base_url(&headers, &uri);
    Ok(v2_json(&serde_json::json!({
        "instance_id": instance.id,
        "base_uri": format!("{base}/consumers/{group}/instances/{}", instance.id),
    })))
}

/// `DELETE /consumers/{group}/instances/{instance}`.
pub async fn delete_instance(
    State(state): State<RestState>,
    Path((group, id)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
) -> Result<Response, RestError> {
    state.instances.delete(&caller, &group, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A topic and partition of a request or response.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

/// A topic, partition and offset of a request.
#[derive(Debug, Clone, Deserialize)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Deserialize)]
pub struct SubscribeRequest {
    #[serde(default)]
    pub topics: Option<Vec<String>>,
    #[serde(default)]
    pub topic_pattern: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PartitionsRequest {
    pub partitions: Vec<TopicPartition>,
}

#[derive(Debug, Deserialize)]
pub struct OffsetsRequest {
    pub offsets: Vec<PartitionOffset>,
}

/// Checks the partitions a request names: not too many, each exists (40401, 40402), and the
/// caller may consume each topic as the group.
async fn check_partitions(
    state: &RestState,
    caller: &Caller,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<(), RestError> {
    if partitions.len() > MAX_NAMED {
        return Err(RestError::unprocessable(format!(
            "at most {MAX_NAMED} partitions per request"
        )));
    }
    let topics: BTreeSet<&str> = partitions.iter().map(|tp| tp.topic.as_str()).collect();
    let subscription = pb::Subscription {
        group_id: group.to_owned(),
        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        ..Default::default()
    };
    state.access.require_subscription(caller, &subscription)?;
    let mut counts = BTreeMap::new();
    for topic in topics {
        counts.insert(topic, state.kafka.partition_count(topic).await?);
    }
    for tp in partitions {
        let count = counts.get(tp.topic.as_str()).copied().unwrap_or(0);
        if !(0..count).contains(&tp.partition) {
            return Err(MessagingError::PartitionNotFound {
                topic: tp.topic.clone(),
                partition: tp.partition,
            }
            .into());
        }
    }
    Ok(())
}

/// `POST .../subscription`: topics, or a `topic_pattern` (a regular expression topics must
/// match; records of matching topics the caller may not consume are left out of fetches).
pub async fn subscribe(
    State(state): State<RestState>,
    Path((group, id)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    let instance = state.instances.find(&caller, &group, &id)?;
    let request: SubscribeRequest = json_body(&headers, body)?;
    let (topics, pattern) = match (request.topics, request.topic_pattern) {
        (Some(topics), None) if !topics.is_empty() => (topics, false),
        (None, Some(pattern)) if !pattern.is_empty() => {
            if pattern.len() > MAX_PATTERN_BYTES || pattern.contains('\0') {
                return Err(RestError::unprocessable(format!(
                    "topic_pattern: at most {MAX_PATTERN_BYTES} bytes"
                )));
            }
            let pattern = if pattern.starts_with('^') {
                pattern
            } else {
                format!("^{pattern}")
            };
            (vec![pattern], true)
        }
        _ => {
            return Err(RestError::unprocessable(
                "a subscription names either topics (a non-empty list) or a topic_pattern",
            ));
        }
    };
    if pattern {
        let subscription = pb::Subscription {
            group_id: group.clone(),
            ..Default::default()
        };
        state.access.require_subscription(&caller, &subscription)?;
    } else {
        let partitions: Vec<TopicPartition> = topics
            .iter()
            .map(|topic| TopicPartition {
                topic: topic.clone(),
                partition: 0,
            })
            .collect();
        check_partitions(&state, &caller, &group, &partitions).await?;
    }
    let mut guard = instance.state.lock().await;
    let manual = guard.consumer.subscription().is_ok_and(|s| s.count() == 0)
        && guard.consumer.assignment().is_ok_and(|a| a.count() > 0);
    if manual {
        return Err(RestError::new(
            409,
            40903,
            "Illegal state: the instance has partitions assigned manually; subscription, assignment and pattern are mutually exclusive (DELETE the subscription first)",
        ));
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    guard.consumer.subscribe(&names).map_err(|error| {
        RestError::unprocessable(format!("the subscription was refused: {error}"))
    })?;
    reset(&mut guard, pattern);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// After the consumer's partitions changed: nothing handed out or carried over applies.
fn reset(state: &mut InstanceState, pattern: bool) {
    state.handed_out.clear();
    state.carried.clear();
    state.pattern = pattern;
}

/// `GET .../subscription`.
pub async fn subscription(
    State(state): State<RestState>,
    Path((group, id)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
) -> Result<Response, RestError> {
    let instance = state.instances.find(&caller, &group, &id)?;
    let guard = instance.state.lock().await;
    let topics: Vec<String> = guard
        .consumer
        .subscription()
        .map_err(MessagingError::Kafka)?
        .elements()
        .iter()
        .map(|e| e.topic().to_owned())
        .collect();
    Ok(v2_json(&serde_json::json!({ "topics": topics })))
}

/// `DELETE .../subscription`.
pub async fn unsubscribe(
    State(state): State<RestState>,
    Path((group, id)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
) -> Result<Response, RestError> {
    let instance = state.instances.find(&caller, &group, &id)?;
    let mut guard = instance.state.lock().await;
    guard.consumer.unsubscribe();
    reset(&mut guard, false);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST .../assignments`: partitions assigned manually (from the group's committed offsets).
pub async fn assign(
    State(state): State<RestState>,
    Path((group, id)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    let instance = state.instances.find(&caller, &group, &id)?;
    let request: PartitionsRequest = json_body(&headers, body)?;
    check_partitions(&state, &caller, &group, &request.partitions).await?;
    let mut guard = instance.state.lock().await;
    if guard.consumer.subscription().is_ok_and(|s| s.count() > 0) {
        return Err(RestError::new(
            409,
            40903,
            "Illegal state: the instance is subscribed; subscription, assignment and pattern are mutually exclusive (DELETE the subscription first)",
        ));
    }
    let mut list = rdkafka::TopicPartitionList::new();
    for tp in &request.partitions {
        list.add_partition_offset(&tp.topic, tp.partition, Offset::Stored)
            .map_err(MessagingError::Kafka)?;
    }
    guard
        .consumer
        .assign(&list)
        .map_err(MessagingError::Kafka)?;
    reset(&mut guard, false);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET .../assignments`.
pub async fn assignments(
    State(state): State<RestState>,
    Path((group, id)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
) -> Result<Response, RestError> {
    let instance = state.instances.find(&caller, &group, &id)?;
    let guard = instance.state.lock().await;
    let mut partitions: Vec<TopicPartition> = guard
        .assignment()?
        .into_iter()
        .map(|(topic, partition)| TopicPartition { topic, partition })
        .collect();
    partitions.sort();
    Ok(v2_json(&serde_json::json!({ "partitions": partitions })))
}

/// `POST .../positions`: the next fetch of each partition starts at its offset.
pub async fn seek(
    State(state): State<RestState>,
    Path((group, id)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    let instance = state.instances.find(&caller, &group, &id)?;
    let request: OffsetsRequest = json_body(&headers, body)?;
    if let Some(negative) = request.offsets.iter().find(|o| o.offset < 0) {
        return Err(RestError::unprocessable(format!(
            "offset {} of partition {} of topic '{}' is negative",
            negative.offset, negative.partition, negative.topic
        )));
    }
    let positions = request
        .offsets
        .into_iter()
        .map(|o| (o.topic, o.partition, Offset::Offset(o.offset)))
        .collect();
    seek_to(&instance, positions).await
}

/// `POST .../positions/beginning`.
pub async fn seek_to_beginning(
    State(state): State<RestState>,
    Path((group, id)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    seek_partitions(state, group, id, caller, headers, body, Offset::Beginning).await
}

/// `POST .../positions/end`.
pub async fn seek_to_end(
    State(state): State<RestState>,
    Path((group, id)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    seek_partitions(state, group, id, caller, headers, body, Offset::End).await
}

async fn seek_partitions(
    state: RestState,
    group: String,
    id: String,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    offset: Offset,
) -> Result<Response, RestError> {
    let instance = state.instances.find(&caller, &group, &id)?;
    let request: PartitionsRequest = json_body(&headers, body)?;
    let positions = request
        .partitions
        .into_iter()
        .map(|tp| (tp.topic, tp.partition, offset))
        .collect();
    seek_to(&instance, positions).await
}

async fn seek_to(
    instance: &crate::rest::instances::Instance,
    positions: Vec<(String, i32, Offset)>,
) -> Result<Response, RestError> {
    if positions.len() > MAX_NAMED {
        return Err(RestError::unprocessable(format!(
            "at most {MAX_NAMED} partitions per request"
        )));
    }
    let mut guard = instance.state.lock().await;
    guard
        .seek(
            positions,
            instance.request_timeout.max(Duration::from_secs(5)),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST .../offsets`: commits the given offsets (each record's offset: the group resumes
/// after it), or, with no body or no offsets, everything this instance handed out.
pub async fn commit(
    State(state): State<RestState>,
    Path((group, id)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    let instance = state.instances.find(&caller, &group, &id)?;
    let body = read_body(body)?;
    let offsets = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        crate::rest::media::check_json_body(&headers)?;
        let request: OffsetsRequest = serde_json::from_slice(&body).map_err(RestError::bad_body)?;
        let partitions: Vec<TopicPartition> = request
            .offsets
            .iter()
            .map(|o| TopicPartition {
                topic: o.topic.clone(),
                partition: o.partition,
            })
            .collect();
        check_partitions(&state, &caller, &group, &partitions).await?;
        if let Some(negative) = request.offsets.iter().find(|o| o.offset < 0) {
            return Err(RestError::unprocessable(format!(
                "offset {} of partition {} of topic '{}' is negative",
                negative.offset, negative.partition, negative.topic
            )));
        }
        Some(
            request
                .offsets
                .into_iter()
                .map(|o| (o.topic, o.partition, o.offset.saturating_add(1)))
                .collect::<Vec<_>>(),
        )
        .filter(|offsets| !offsets.is_empty())
    };
    let mut guard = instance.state.lock().await;
    guard.commit(offsets).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET .../offsets`: the group's committed offsets of the partitions the body names (of the
/// partitions assigned when it names none).
pub async fn committed(
    State(state): State<RestState>,
    Path((group, id)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    let instance = state.instances.find(&caller, &group, &id)?;
    let body = read_body(body)?;
    let guard = instance.state.lock().await;
    let partitions: Vec<TopicPartition> = if body.iter().all(u8::is_ascii_whitespace) {
        guard
            .assignment()?
            .into_iter()
            .map(|(topic, partition)| TopicPartition { topic, partition })
            .collect()
    } else {
        crate::rest::media::check_json_body(&headers)?;
        let request: PartitionsRequest =
            serde_json::from_slice(&body).map_err(RestError::bad_body)?;
        check_partitions(&state, &caller, &group, &request.partitions).await?;
        request.partitions
    };
    let mut list = rdkafka::TopicPartitionList::new();
    for tp in &partitions {
        list.add_partition(&tp.topic, tp.partition);
    }
    let consumer = std::sync::Arc::clone(&guard.consumer);
    drop(guard);
    let timeout = state.kafka.timeout();
    let committed = tokio::task::spawn_blocking(move || consumer.committed_offsets(list, timeout))
        .await
        .map_err(|error| MessagingError::Internal(format!("committed offsets task: {error}")))?
        .map_err(|error| MessagingError::from_kafka(error, "", 0))?;
    let offsets: Vec<serde_json::Value> = committed
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(offset) => offset,
                _ => -1,
            };
            serde_json::json!({
                "topic": e.topic(),
                "partition": e.partition(),
                "offset": offset,
                "metadata": e.metadata(),
            })
        })
        .collect();
    Ok(v2_json(&serde_json::json!({ "offsets": offsets })))
}

/// The query of `GET .../records`.
#[derive(Debug, Deserialize)]
pub struct RecordsQuery {
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub max_bytes: Option<String>,
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `GET .../records?timeout=&max_bytes=`.
pub async fn records(
    State(state): State<RestState>,
    Path((group, id)): Path<(String, String)>,
    Query(query): Query<RecordsQuery>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    let instance = state.instances.find(&caller, &group, &id)?;
    fetch(&state, &instance, &query, &caller, &headers).await
}

/// `GET .../topics/{topic}`: the REST Proxy v1 read, kept for v1 scripts: the instance
/// subscribes to the topic on its first read (40901 when it reads other topics).
pub async fn records_of_topic(
    State(state): State<RestState>,
    Path((group, id, topic)): Path<(String, String, String)>,
    Query(query): Query<RecordsQuery>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    let instance = state.instances.find(&caller, &group, &id)?;
    let subscribed: Vec<String> = {
        let guard = instance.state.lock().await;
        guard
            .consumer
            .subscription()
            .map_err(MessagingError::Kafka)?
            .elements()
            .iter()
            .map(|e| e.topic().to_owned())
            .collect()
    };
    if subscribed.is_empty() {
        let partitions = [TopicPartition {
            topic: topic.clone(),
            partition: 0,
        }];
        check_partitions(&state, &caller, &group, &partitions).await?;
        let mut guard = instance.state.lock().await;
        guard
            .consumer
            .subscribe(&[topic.as_str()])
            .map_err(|error| RestError::unprocessable(format!("cannot subscribe: {error}")))?;
        reset(&mut guard, false);
    } else if subscribed != [topic.clone()] {
        return Err(RestError::new(
            409,
            40901,
            "Consumer cannot subscribe the the specified target because it has already subscribed to other topics.",
        ));
    }
    fetch(&state, &instance, &query, &caller, &headers).await
}

/// Hands out the records an instance fetches.
async fn fetch(
    state: &RestState,
    instance: &crate::rest::instances::Instance,
    query: &RecordsQuery,
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<Response, RestError> {
    check_records_accept(headers, instance.format)?;
    let number = |name: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|text| {
                text.parse::<u64>().map_err(|_| {
                    RestError::unprocessable(format!("{name} must be a non-negative number"))
                })
            })
            .transpose()
    };
    let timeout = number("timeout", &query.timeout)?
        .map_or(instance.request_timeout, Duration::from_millis)
        .min(MAX_REQUEST_TIMEOUT);
    let max_bytes = number("max_bytes", &query.max_bytes)?
        .map_or(DEFAULT_FETCH_BYTES, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        })
        .clamp(1, MAX_FETCH_BYTES);
    let mut guard = instance.state.lock().await;
    let taken = guard.take(timeout, max_bytes).await;
    let grants = state.access.grants(caller);
    let mut refused = BTreeSet::new();
    let (allowed, forbidden): (Vec<Taken>, Vec<Taken>) = taken.into_iter().partition(|r| {
        !guard.pattern || grants.allows(Action::Consume, Resource::topic(r.topic()))
    });
    for record in &forbidden {
        if refused.insert(record.topic().to_owned()) {
            // Audited as a denial; the records are not handed out (nor committed).
            let _ = state
                .access
                .require(caller, Action::Consume, Resource::topic(record.topic()));
        }
    }
    let body = match encode_records(state, &mut guard, instance.format, &allowed).await {
        Ok(body) => body,
        Err(error) => {
            // The registry cannot be reached: nothing is handed out, the next fetch has them.
            for record in allowed.into_iter().rev() {
                guard.carried.push_front(record);
            }
            return Err(error.into());
        }
    };
    guard.handed_out(&allowed);
    Ok((
        [(
            header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(instance.format.media_type()),
        )],
        body,
    )
        .into_response())
}

/// What a key or value became, its text in the part's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Absent,
    /// JSON text (decoded, or the `json` format's bytes, checked).
    Json,
    /// A JSON string: the `binary` format's base64.
    Base64,
    /// It cannot be decoded; why is in the record's errors.
    Failed,
}

/// The JSON array of a `records` response, written as it goes: the decoded JSON texts are
/// copied in as they are (never parsed again), names and messages escaped by serde_json.
async fn encode_records(
    state: &RestState,
    guard: &mut InstanceState,
    format: EmbeddedFormat,
    records: &[Taken],
) -> Result<Vec<u8>, MessagingError> {
    let written =
        |error: serde_json::Error| MessagingError::Internal(format!("records response: {error}"));
    let mut out = Vec::with_capacity(records.len().saturating_mul(160));
    out.push(b'[');
    let (mut key_text, mut value_text) = (Vec::new(), Vec::new());
    let mut errors = Vec::new();
    for (index, record) in records.iter().enumerate() {
        errors.clear();
        let key = decode(
            state,
            guard,
            format,
            record.key(),
            true,
            &mut key_text,
            &mut errors,
        )
        .await?;
        let value = decode(
            state,
            guard,
            format,
            record.payload(),
            false,
            &mut value_text,
            &mut errors,
        )
        .await?;
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"topic\":");
        serde_json::to_writer(&mut out, record.topic()).map_err(written)?;
        out.extend_from_slice(b",\"key\":");
        put_part(&mut out, key, &key_text);
        out.extend_from_slice(b",\"value\":");
        put_part(&mut out, value, &value_text);
        out.extend_from_slice(
            format!(
                ",\"partition\":{},\"offset\":{}",
                record.partition(),
                record.offset()
            )
            .as_bytes(),
        );
        if !errors.is_empty() {
            out.extend_from_slice(b",\"error_code\":50002,\"error\":");
            serde_json::to_writer(&mut out, &errors.join("; ")).map_err(written)?;
            for (part, name, bytes) in [
                (key, "raw_key", record.key()),
                (value, "raw_value", record.payload()),
            ] {
                if let (Part::Failed, Some(bytes)) = (part, bytes) {
                    out.extend_from_slice(format!(",\"{name}\":\"{}\"", base64(bytes)).as_bytes());
                }
            }
        }
        out.push(b'}');
    }
    out.push(b']');
    Ok(out)
}

fn put_part(out: &mut Vec<u8>, part: Part, text: &[u8]) {
    match part {
        Part::Absent | Part::Failed => out.extend_from_slice(b"null"),
        Part::Json => out.extend_from_slice(text),
        Part::Base64 => {
            out.push(b'"');
            out.extend_from_slice(text);
            out.push(b'"');
        }
    }
}

/// A key or value in the instance's format, its text in `text`; why it cannot be decoded
/// appended to `errors`.
async fn decode(
    state: &RestState,
    guard: &mut InstanceState,
    format: EmbeddedFormat,
    bytes: Option<&[u8]>,
    is_key: bool,
    text: &mut Vec<u8>,
    errors: &mut Vec<String>,
) -> Result<Part, MessagingError> {
    text.clear();
    let Some(bytes) = bytes else {
        return Ok(Part::Absent);
    };
    let field = if is_key { "key" } else { "value" };
    match format {
        EmbeddedFormat::Binary => {
            text.extend_from_slice(base64(bytes).as_bytes());
            Ok(Part::Base64)
        }
        EmbeddedFormat::Json => match serde_json::from_slice::<&RawValue>(bytes) {
            Ok(raw) => {
                text.extend_from_slice(raw.get().as_bytes());
                Ok(Part::Json)
            }
            Err(error) => {
                errors.push(format!("{field} is not JSON: {error}"));
                Ok(Part::Failed)
            }
        },
        _ => match crate::consume::decode_framed_json(
            &state.schemas,
            bytes,
            is_key,
            &mut guard.decoder,
            text,
        )
        .await?
        {
            Ok(_) => Ok(Part::Json),
            Err((error, _)) => {
                errors.push(format!("{field} cannot be decoded: {}", error.message));
                Ok(Part::Failed)
            }
        },
    }
}
