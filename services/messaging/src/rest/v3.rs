//! The REST Proxy v3 routes that map onto what the service does: the cluster, its topics and
//! consumer groups (listing and describing), and produce, `POST
//! /v3/clusters/{cluster}/topics/{topic}/records`.
//!
//! Produce reads the body as a stream of JSON records, one after the other, as the REST Proxy
//! does. A body of one record gets one answer, with the record's HTTP status. A body of more
//! (or one still open after its first record: a client streaming records) gets `200` and one
//! JSON result per record, in order, newline-separated, each sent as soon as Kafka
//! acknowledged it and every record before it; a record that fails gets its error result
//! (`error_code` the HTTP status, `message`) and the stream goes on. At most
//! `--produce-max-in-flight` records wait for Kafka at once; one record's JSON is at most
//! [`MAX_RECORD_JSON_BYTES`].

use std::convert::Infallible;
use std::str::FromStr;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tributary_proto::messaging::v1 as pb;
use tributary_security::authz::{Action, Caller, Resource};

use crate::error::MessagingError;
use crate::produce::{InFlight, Recent};
use crate::rest::error::RestError;
use crate::rest::media::{JSON, check_accept, check_json_body};
use crate::rest::produce::base64_data;
use crate::rest::{CallerOf, RestState, json_response};
use crate::schemas::WriterSchema;

/// The most bytes of one record's JSON in a produce body.
pub const MAX_RECORD_JSON_BYTES: usize = 16 * 1024 * 1024;

fn v3_json<T: Serialize>(value: &T) -> Response {
    json_response(value, JSON)
}

/// The cluster this service produces to, or 404 when the path names another.
async fn cluster_id(state: &RestState, named: Option<&str>) -> Result<String, RestError> {
    let cluster = state.kafka.cluster().await?;
    match named {
        Some(named) if named != cluster.id => Err(RestError::new(
            404,
            404,
            format!(
                "Cluster '{}' not found: this service serves cluster '{}'",
                named.chars().take(128).collect::<String>(),
                cluster.id
            ),
        )),
        _ => Ok(cluster.id),
    }
}

fn related(url: String) -> serde_json::Value {
    json!({ "related": url })
}

fn cluster_json(base: &str, id: &str) -> serde_json::Value {
    let me = format!("{base}/v3/clusters/{id}");
    json!({
        "kind": "KafkaCluster",
        "metadata": { "self": me, "resource_name": format!("crn:///kafka={id}") },
        "cluster_id": id,
        "controller": null,
        "acls": related(format!("{me}/acls")),
        "brokers": related(format!("{me}/brokers")),
        "broker_configs": related(format!("{me}/broker-configs")),
        "consumer_groups": related(format!("{me}/consumer-groups")),
        "topics": related(format!("{me}/topics")),
        "partition_reassignments": related(format!("{me}/topics/-/partitions/-/reassignment")),
    })
}

fn list_json(kind: &str, me: String, data: Vec<serde_json::Value>) -> serde_json::Value {
    json!({ "kind": kind, "metadata": { "self": me, "next": null }, "data": data })
}

/// `GET /v3/clusters`.
pub async fn list_clusters(
    State(state): State<RestState>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, RestError> {
    check_accept(&headers, JSON)?;
    state
        .access
        .require(&caller, Action::Describe, Resource::cluster())?;
    let id = cluster_id(&state, None).await?;
    let base = state.base_url(&headers, &uri);
    Ok(v3_json(&list_json(
        "KafkaClusterList",
        format!("{base}/v3/clusters"),
        vec![cluster_json(&base, &id)],
    )))
}

/// `GET /v3/clusters/{cluster}`.
pub async fn describe_cluster(
    State(state): State<RestState>,
    Path(cluster): Path<String>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, RestError> {
    check_accept(&headers, JSON)?;
    state
        .access
        .require(&caller, Action::Describe, Resource::cluster())?;
    let id = cluster_id(&state, Some(&cluster)).await?;
    Ok(v3_json(&cluster_json(&state.base_url(&headers, &uri), &id)))
}

fn topic_json(base: &str, cluster: &str, topic: &crate::kafka::TopicDetail) -> serde_json::Value {
    let me = format!("{base}/v3/clusters/{cluster}/topics/{}", topic.name);
    json!({
        "kind": "KafkaTopic",
        "metadata": {
            "self": me,
            "resource_name": format!("crn:///kafka={cluster}/topic={}", topic.name),
        },
        "cluster_id": cluster,
        "topic_name": topic.name,
        "is_internal": topic.is_internal,
        "replication_factor": topic.replication_factor,
        "partitions_count": topic.partitions,
        "partitions": related(format!("{me}/partitions")),
        "configs": related(format!("{me}/configs")),
        "partition_reassignments": related(format!("{me}/partitions/-/reassignment")),
        "authorized_operations": [],
    })
}

/// `GET /v3/clusters/{cluster}/topics`: the topics the caller may describe.
pub async fn list_topics(
    State(state): State<RestState>,
    Path(cluster): Path<String>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, RestError> {
    check_accept(&headers, JSON)?;
    let id = cluster_id(&state, Some(&cluster)).await?;
    let grants = state.access.grants(&caller);
    let base = state.base_url(&headers, &uri);
    let data = state
        .kafka
        .topic_details(None)
        .await?
        .iter()
        .filter(|topic| grants.allows(Action::Describe, Resource::topic(&topic.name)))
        .map(|topic| topic_json(&base, &id, topic))
        .collect();
    Ok(v3_json(&list_json(
        "KafkaTopicList",
        format!("{base}/v3/clusters/{id}/topics"),
        data,
    )))
}

/// `GET /v3/clusters/{cluster}/topics/{topic}`.
pub async fn describe_topic(
    State(state): State<RestState>,
    Path((cluster, topic)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, RestError> {
    check_accept(&headers, JSON)?;
    let id = cluster_id(&state, Some(&cluster)).await?;
    state
        .access
        .require(&caller, Action::Describe, Resource::topic(&topic))?;
    let found = state
        .kafka
        .topic_details(Some(&topic))
        .await?
        .into_iter()
        .find(|detail| detail.name == topic)
        .ok_or_else(|| MessagingError::TopicNotFound {
            topic: topic.clone(),
        })?;
    Ok(v3_json(&topic_json(
        &state.base_url(&headers, &uri),
        &id,
        &found,
    )))
}

/// Kafka's group state in the v3 API's spelling (`PreparingRebalance` -> `PREPARING_REBALANCE`).
fn group_state(state: &str) -> String {
    let mut out = String::with_capacity(state.len() + 4);
    for (index, c) in state.chars().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn group_json(base: &str, cluster: &str, group: &str, state: &str) -> serde_json::Value {
    let me = format!("{base}/v3/clusters/{cluster}/consumer-groups/{group}");
    json!({
        "kind": "KafkaConsumerGroup",
        "metadata": {
            "self": me,
            "resource_name": format!("crn:///kafka={cluster}/consumer-group={group}"),
        },
        "cluster_id": cluster,
        "consumer_group_id": group,
        "is_simple": false,
        "partition_assignor": "",
        "state": group_state(state),
        "coordinator": null,
        "consumers": related(format!("{me}/consumers")),
        "lag_summary": related(format!("{me}/lag-summary")),
    })
}

/// `GET /v3/clusters/{cluster}/consumer-groups`: the groups the caller may read.
pub async fn list_groups(
    State(state): State<RestState>,
    Path(cluster): Path<String>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, RestError> {
    check_accept(&headers, JSON)?;
    let id = cluster_id(&state, Some(&cluster)).await?;
    let grants = state.access.grants(&caller);
    let base = state.base_url(&headers, &uri);
    let data = state
        .kafka
        .list_groups()
        .await?
        .iter()
        .filter(|group| grants.allows(Action::Read, Resource::group(&group.group_id)))
        .map(|group| group_json(&base, &id, &group.group_id, &group.state))
        .collect();
    Ok(v3_json(&list_json(
        "KafkaConsumerGroupList",
        format!("{base}/v3/clusters/{id}/consumer-groups"),
        data,
    )))
}

/// `GET /v3/clusters/{cluster}/consumer-groups/{group}`.
pub async fn describe_group(
    State(state): State<RestState>,
    Path((cluster, group)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, RestError> {
    check_accept(&headers, JSON)?;
    let id = cluster_id(&state, Some(&cluster)).await?;
    state
        .access
        .require(&caller, Action::Read, Resource::group(&group))?;
    let described = state.kafka.describe_group(&group).await?;
    Ok(v3_json(&group_json(
        &state.base_url(&headers, &uri),
        &id,
        &described.group_id,
        &described.state,
    )))
}

/// A v3 produce record.
#[derive(Debug, Deserialize)]
pub struct V3Record {
    #[serde(default)]
    pub partition_id: Option<i32>,
    #[serde(default)]
    pub headers: Vec<V3Header>,
    #[serde(default)]
    pub key: Option<V3Data>,
    #[serde(default)]
    pub value: Option<V3Data>,
    #[serde(default)]
    pub timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct V3Header {
    pub name: String,
    #[serde(default)]
    pub value: Option<Box<RawValue>>,
}

/// A v3 key or value: its data, how it is serialized, and the schema it names.
#[derive(Debug, Deserialize)]
pub struct V3Data {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub data: Option<Box<RawValue>>,
    #[serde(default)]
    pub schema_id: Option<i32>,
    #[serde(default)]
    pub schema_version: Option<i32>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub subject_name_strategy: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
}

/// What the result of a record says about its key or value.
#[derive(Debug, Clone, Serialize)]
struct DataSummary {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_id: Option<u32>,
    size: usize,
}

fn strategy(name: Option<&str>) -> Result<i32, String> {
    Ok(match name {
        None | Some("TOPIC_NAME") => pb::SubjectNameStrategy::TopicName,
        Some("RECORD_NAME") => pb::SubjectNameStrategy::RecordName,
        Some("TOPIC_RECORD_NAME") => pb::SubjectNameStrategy::TopicRecordName,
        Some(other) => {
            return Err(format!(
                "subject_name_strategy must be TOPIC_NAME, RECORD_NAME or TOPIC_RECORD_NAME (got '{}')",
                other.chars().take(64).collect::<String>()
            ));
        }
    } as i32)
}

/// A v3 key or value as a gRPC payload, and the type it is reported as.
async fn payload(
    state: &RestState,
    field: &str,
    data: V3Data,
) -> Result<(pb::Payload, &'static str), RestError> {
    use pb::payload::Kind;
    let invalid = |message: String| RestError::unprocessable(format!("{field}: {message}"));
    let raw = data
        .data
        .ok_or_else(|| invalid("data is required".to_owned()))?;
    let strategy = strategy(data.subject_name_strategy.as_deref()).map_err(invalid)?;
    // The schema it names: an id, a subject version, inline, or the topic's latest.
    let kind = match data.kind.as_deref() {
        Some(kind) => kind.to_ascii_uppercase(),
        None => match (data.schema_id, data.schema_version, &data.schema) {
            (Some(id), _, _) => {
                let id = crate::produce::schema_id_from_wire(id)?;
                schema_kind(&state.schemas.by_id(id).await?).to_owned()
            }
            (None, Some(_), _) | (None, None, Some(_)) => "AVRO".to_owned(),
            (None, None, None) => "JSON".to_owned(),
        },
    };
    let selector = || pb::SubjectVersionSelector {
        subject: data.subject.clone().unwrap_or_default(),
        version: data.schema_version.unwrap_or(-1),
        strategy,
    };
    macro_rules! named {
        ($schema:path) => {{
            use $schema as Schema;
            match (data.schema_id, data.schema_version, &data.schema) {
                (Some(id), _, _) => Schema::SchemaId(id),
                (None, _, Some(text)) => Schema::Inline(pb::InlineSchema {
                    schema: text.clone(),
                    strategy,
                }),
                _ => Schema::SubjectVersion(selector()),
            }
        }};
    }
    let (kind, reported) = match kind.as_str() {
        "BINARY" => (
            Kind::Raw(
                base64_data(field, &raw)
                    .map_err(RestError::unprocessable)?
                    .into(),
            ),
            "BINARY",
        ),
        "JSON" => (Kind::Json(raw.get().to_owned()), "JSON"),
        "STRING" => {
            let text: String = serde_json::from_str(raw.get())
                .map_err(|_| invalid("STRING data must be a JSON string".to_owned()))?;
            (Kind::Text(text), "STRING")
        }
        "AVRO" => (
            Kind::Avro(pb::AvroPayload {
                json: raw.get().to_owned(),
                schema: Some(named!(pb::avro_payload::Schema)),
            }),
            "AVRO",
        ),
        "JSONSCHEMA" => (
            Kind::JsonSchema(pb::JsonSchemaPayload {
                json: raw.get().to_owned(),
                schema: Some(named!(pb::json_schema_payload::Schema)),
            }),
            "JSONSCHEMA",
        ),
        "PROTOBUF" => (
            Kind::Protobuf(pb::ProtobufPayload {
                data: Some(pb::protobuf_payload::Data::Json(raw.get().to_owned())),
                schema: Some(named!(pb::protobuf_payload::Schema)),
                message_name: String::new(),
            }),
            "PROTOBUF",
        ),
        other => {
            return Err(invalid(format!(
                "type must be BINARY, JSON, STRING, AVRO, JSONSCHEMA or PROTOBUF (got '{}')",
                other.chars().take(64).collect::<String>()
            )));
        }
    };
    Ok((pb::Payload { kind: Some(kind) }, reported))
}

fn schema_kind(schema: &WriterSchema) -> &'static str {
    match schema {
        WriterSchema::Avro(_) => "AVRO",
        WriterSchema::Protobuf(_) => "PROTOBUF",
        WriterSchema::Json(_) => "JSONSCHEMA",
    }
}

/// A record prepared and handed to Kafka, with what its result will say.
struct Sent {
    in_flight: InFlight,
    timestamp: prost_types::Timestamp,
    key: Option<DataSummary>,
    value: Option<DataSummary>,
}

/// Checks, encodes and sends one record.
async fn send_record(
    state: &RestState,
    recent: &mut Recent,
    topic: &str,
    record: V3Record,
) -> Result<Sent, RestError> {
    let mut headers = Vec::with_capacity(record.headers.len());
    for header in record.headers {
        let value = match header.value {
            Some(value) if value.get() != "null" => {
                base64_data("headers[].value", &value).map_err(RestError::unprocessable)?
            }
            _ => Vec::new(),
        };
        headers.push(pb::Header {
            key: header.name,
            value: value.into(),
        });
    }
    let timestamp = match &record.timestamp {
        Some(text) => prost_types::Timestamp::from_str(text).map_err(|error| {
            RestError::unprocessable(format!("timestamp: not an RFC 3339 time: {error}"))
        })?,
        None => prost_types::Timestamp::from(std::time::SystemTime::now()),
    };
    let (key, key_type) = match record.key {
        Some(key) => {
            let (payload, kind) = payload(state, "key", key).await?;
            (Some(payload), Some(kind))
        }
        None => (None, None),
    };
    let (value, value_type) = match record.value {
        Some(value) => {
            let (payload, kind) = payload(state, "value", value).await?;
            (Some(payload), Some(kind))
        }
        None => (None, None),
    };
    let prepared = state
        .producer
        .prepare(
            pb::ProducerRecord {
                topic: topic.to_owned(),
                key,
                value,
                headers,
                partition: record.partition_id,
                timestamp: Some(timestamp),
            },
            recent,
        )
        .await?;
    let (key_id, value_id) = prepared.schema_ids();
    let (key_size, value_size) = prepared.sizes();
    let summary = |kind: Option<&'static str>, schema_id, size: Option<usize>| {
        kind.map(|kind| DataSummary {
            kind,
            schema_id,
            size: size.unwrap_or(0),
        })
    };
    let key = summary(key_type, key_id, key_size);
    let value = summary(value_type, value_id, value_size);
    let in_flight = state.producer.send(prepared).await?;
    Ok(Sent {
        in_flight,
        timestamp,
        key,
        value,
    })
}

/// The result of a sent record, once Kafka answered.
async fn result_of(
    cluster: String,
    topic: String,
    sent: Result<Sent, RestError>,
) -> Result<serde_json::Value, RestError> {
    let sent = sent?;
    let metadata = sent.in_flight.delivered().await?;
    Ok(json!({
        "error_code": 200,
        "cluster_id": cluster,
        "topic_name": topic,
        "partition_id": metadata.partition,
        "offset": metadata.offset,
        "timestamp": sent.timestamp.to_string(),
        "key": sent.key,
        "value": sent.value,
    }))
}

fn error_json(error: &RestError) -> serde_json::Value {
    json!({ "error_code": error.status, "message": error.message })
}

/// A body's records as they arrive.
struct RecordReader {
    body: axum::body::BodyDataStream,
    buffer: Vec<u8>,
    ended: bool,
}

impl RecordReader {
    /// The next record; `None` at the end of the body.
    async fn next(&mut self) -> Option<Result<V3Record, RestError>> {
        loop {
            let start = self
                .buffer
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(self.buffer.len());
            if start > 0 {
                self.buffer.drain(..start);
            }
            if !self.buffer.is_empty() {
                let mut records =
                    serde_json::Deserializer::from_slice(&self.buffer).into_iter::<V3Record>();
                match records.next() {
                    Some(Ok(record)) => {
                        let used = records.byte_offset();
                        self.buffer.drain(..used);
                        return Some(Ok(record));
                    }
                    Some(Err(error)) if !error.is_eof() || self.ended => {
                        self.ended = true;
                        self.buffer.clear();
                        return Some(Err(RestError::bad_body(error)));
                    }
                    _ => {}
                }
                if self.buffer.len() > MAX_RECORD_JSON_BYTES {
                    self.ended = true;
                    self.buffer.clear();
                    return Some(Err(RestError::new(
                        413,
                        41301,
                        format!("a record's JSON is over {MAX_RECORD_JSON_BYTES} bytes"),
                    )));
                }
            }
            if self.ended {
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(error)) => {
                    self.ended = true;
                    return Some(Err(RestError::bad_body(error)));
                }
                None => self.ended = true,
            }
        }
    }

    /// Whether more than whitespace follows: waits for the body's next chunk, or its end.
    async fn has_more(&mut self) -> bool {
        loop {
            if self.buffer.iter().any(|b| !b.is_ascii_whitespace()) {
                return true;
            }
            if self.ended {
                return false;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(_)) | None => self.ended = true,
            }
        }
    }
}

/// `POST /v3/clusters/{cluster}/topics/{topic}/records`.
pub async fn produce(
    State(state): State<RestState>,
    Path((cluster, topic)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RestError> {
    check_json_body(&headers)?;
    check_accept(&headers, JSON)?;
    let cluster = cluster_id(&state, Some(&cluster)).await?;
    state.kafka.partition_count(&topic).await?;
    let mut reader = RecordReader {
        body: body.into_data_stream(),
        buffer: Vec::new(),
        ended: false,
    };
    let first = match reader.next().await {
        Some(first) => first?,
        None => return Err(RestError::bad_body("no record in the body")),
    };
    let mut recent = Recent::new(&state.access, caller.clone());
    if !reader.has_more().await {
        let sent = send_record(&state, &mut recent, &topic, first).await;
        // v3's errors carry the HTTP status as their code.
        let result = result_of(cluster, topic, sent).await.map_err(|error| {
            RestError::new(error.status, u32::from(error.status), error.message)
        })?;
        return Ok(v3_json(&result));
    }
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(stream_records(
        state, caller, cluster, topic, first, reader, tx,
    ));
    let body = Body::from_stream(ReceiverStream::new(rx).map(Ok::<Bytes, Infallible>));
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(JSON),
        )],
        body,
    )
        .into_response())
}

/// Produces the records of a streaming request, sending their results in order as they come.
async fn stream_records(
    state: RestState,
    caller: Caller,
    cluster: String,
    topic: String,
    first: V3Record,
    mut reader: RecordReader,
    tx: mpsc::Sender<Bytes>,
) {
    let mut recent = Recent::new(&state.access, caller);
    let mut pending = FuturesOrdered::new();
    let mut next = Some(first);
    let max_in_flight = state.produce_max_in_flight.max(1);
    loop {
        if next.is_none() && pending.len() < max_in_flight {
            // Read the next record while results come back.
            tokio::select! {
                biased;
                Some(result) = pending.next(), if !pending.is_empty() => {
                    if !emit(&tx, result).await {
                        return;
                    }
                    continue;
                }
                record = reader.next() => match record {
                    Some(Ok(record)) => next = Some(record),
                    Some(Err(error)) => {
                        while let Some(result) = pending.next().await {
                            if !emit(&tx, result).await {
                                return;
                            }
                        }
                        let _ = emit(&tx, Err(error)).await;
                        return;
                    }
                    None => break,
                },
            }
        }
        if let Some(record) = next.take() {
            let sent = send_record(&state, &mut recent, &topic, record).await;
            pending.push_back(result_of(cluster.clone(), topic.clone(), sent));
        } else if let Some(result) = pending.next().await
            && !emit(&tx, result).await
        {
            return;
        }
    }
    while let Some(result) = pending.next().await {
        if !emit(&tx, result).await {
            return;
        }
    }
}

/// Sends one result line; false when the client went away.
async fn emit(tx: &mpsc::Sender<Bytes>, result: Result<serde_json::Value, RestError>) -> bool {
    let value = match result {
        Ok(value) => value,
        Err(error) => error_json(&error),
    };
    let mut line = serde_json::to_vec(&value).unwrap_or_default();
    line.push(b'\n');
    tx.send(Bytes::from(line)).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_states_are_spelled_as_in_v3() {
        assert_eq!(group_state("PreparingRebalance"), "PREPARING_REBALANCE");
        assert_eq!(group_state("Stable"), "STABLE");
        assert_eq!(group_state("Empty"), "EMPTY");
    }
}
