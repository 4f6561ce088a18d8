//! `POST /topics/{topic}` and `POST /topics/{topic}/partitions/{partition}`: the REST Proxy's
//! v2 (and v1) produce.
//!
//! A request is all or nothing up to Kafka: every record is checked and encoded first, and
//! one that cannot be (a key or value that does not match its schema, a schema with a typo,
//! base64 that is not) fails the request with 422 naming the record and what is wrong, before
//! any record is sent. Then all are sent, and each gets its own result in `offsets` (Kafka's
//! answer per record, as the REST Proxy gives it). For the `json` format the schema fields
//! are ignored, as the REST Proxy ignored them.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tributary_proto::messaging::v1 as pb;

use crate::error::MessagingError;
use crate::produce::{Prepared, Recent, answer_deadline};
use crate::rest::error::RestError;
use crate::rest::media::{self, EmbeddedFormat};
use crate::rest::{CallerOf, RestState, json_response};

/// A v2 produce request.
#[derive(Debug, Deserialize)]
pub struct ProduceRequest {
    #[serde(default)]
    pub key_schema: Option<String>,
    #[serde(default)]
    pub key_schema_id: Option<i32>,
    #[serde(default)]
    pub value_schema: Option<String>,
    #[serde(default)]
    pub value_schema_id: Option<i32>,
    pub records: Vec<ProduceRecord>,
}

/// One record of a v2 produce request (`partition` only on the topic route).
#[derive(Debug, Deserialize)]
pub struct ProduceRecord {
    #[serde(default)]
    pub key: Option<Box<RawValue>>,
    #[serde(default)]
    pub value: Option<Box<RawValue>>,
    #[serde(default)]
    pub partition: Option<i32>,
}

/// The per-record result of a v2 produce.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Offset {
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    pub error_code: Option<u32>,
    pub error: Option<String>,
}

/// A v2 produce response.
#[derive(Debug, Serialize)]
pub struct ProduceResponse {
    pub offsets: Vec<Offset>,
    pub key_schema_id: Option<u32>,
    pub value_schema_id: Option<u32>,
}

/// `POST /topics/{topic}`.
pub async fn to_topic(
    State(state): State<RestState>,
    Path(topic): Path<String>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    produce(&state, caller, &topic, None, &headers, body).await
}

/// `POST /topics/{topic}/partitions/{partition}`.
pub async fn to_partition(
    State(state): State<RestState>,
    Path((topic, partition)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    let partition = parse_partition(&partition)?;
    produce(&state, caller, &topic, Some(partition), &headers, body).await
}

/// A partition path segment: 404 (40402) when it is not a partition number.
pub fn parse_partition(segment: &str) -> Result<i32, RestError> {
    segment
        .parse::<i32>()
        .ok()
        .filter(|p| *p >= 0)
        .ok_or_else(|| {
            RestError::new(
                404,
                40402,
                format!(
                    "Partition not found: '{}' is not a partition number",
                    segment.chars().take(64).collect::<String>()
                ),
            )
        })
}

async fn produce(
    state: &RestState,
    caller: tributary_security::authz::Caller,
    topic: &str,
    partition: Option<i32>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    let started = tokio::time::Instant::now();
    let (format, v1) = media::produce_format(headers)?;
    let response_type = if v1 {
        "application/vnd.kafka.v1+json"
    } else {
        media::V2_JSON
    };
    media::check_accept(headers, response_type)?;
    // The body is read as JSON whatever its (embedded-format) media type says.
    let body = crate::rest::read_body(body)?;
    let request: ProduceRequest = serde_json::from_slice(&body).map_err(RestError::bad_body)?;
    drop(body);
    let count = state.kafka.partition_count(topic).await?;
    if let Some(partition) = partition
        && !(0..count).contains(&partition)
    {
        return Err(MessagingError::PartitionNotFound {
            topic: topic.to_owned(),
            partition,
        }
        .into());
    }
    let mut schemas = RequestSchemas::of(&request, format)?;
    let mut recent = Recent::new(&state.access, caller);
    let mut prepared = Vec::with_capacity(request.records.len());
    let (mut key_schema_id, mut value_schema_id) = (None, None);
    for (index, record) in request.records.into_iter().enumerate() {
        let context = format!("records[{index}]");
        let record = to_producer_record(topic, partition, record, format, &schemas)
            .map_err(|error| RestError::unprocessable(format!("{context}: {error}")))?;
        let ready = state
            .producer
            .prepare(record, &mut recent)
            .await
            .map_err(|error| RestError::from_messaging(&error, &context))?;
        let (key_id, value_id) = ready.schema_ids();
        // An inline schema is registered (or looked up) once: the records after the first go
        // by the id it got.
        schemas.learned(key_id, value_id);
        key_schema_id = key_schema_id.or(key_id);
        value_schema_id = value_schema_id.or(value_id);
        prepared.push(ready);
    }
    let offsets = send_all(state, prepared, started).await;
    let response = ProduceResponse {
        offsets,
        key_schema_id: if format.has_schema() {
            key_schema_id
        } else {
            None
        },
        value_schema_id: if format.has_schema() {
            value_schema_id
        } else {
            None
        },
    };
    Ok(json_response(&response, response_type))
}

/// Sends prepared records and waits for each one's result (records not acknowledged when the
/// request must be answered are of unknown outcome, said so per record).
async fn send_all(
    state: &RestState,
    prepared: Vec<Prepared>,
    started: tokio::time::Instant,
) -> Vec<Offset> {
    let answer_by = answer_deadline(started, None, state.request_timeout);
    let mut in_flight = Vec::with_capacity(prepared.len());
    for record in prepared {
        in_flight.push(state.producer.send(record).await);
    }
    let results = futures::future::join_all(in_flight.into_iter().map(|sent| async {
        match sent {
            Ok(in_flight) => in_flight.delivered_by(answer_by).await,
            Err(error) => Err(error),
        }
    }))
    .await;
    results
        .into_iter()
        .map(|result| match result {
            Ok(metadata) => Offset {
                partition: Some(metadata.partition),
                offset: Some(metadata.offset),
                error_code: None,
                error: None,
            },
            Err(error) => {
                let error = RestError::from(error);
                Offset {
                    partition: None,
                    offset: None,
                    error_code: Some(error.error_code),
                    error: Some(error.message),
                }
            }
        })
        .collect()
}

/// The schemas a request names for its keys and values (for the formats that have them).
#[derive(Debug, Default)]
struct RequestSchemas {
    key: Option<SchemaRef>,
    value: Option<SchemaRef>,
}

/// A schema a request names: by id, or inline (registered under the topic's subject).
#[derive(Debug, Clone)]
pub enum SchemaRef {
    Id(i32),
    Inline(String),
}

impl RequestSchemas {
    /// The request's schemas; 42201 (42202) when records have keys (values) in a format that
    /// needs a schema and the request names none.
    fn of(request: &ProduceRequest, format: EmbeddedFormat) -> Result<Self, RestError> {
        if !format.has_schema() {
            return Ok(Self::default());
        }
        let pick = |id: Option<i32>, text: &Option<String>| match (id, text) {
            (Some(id), _) => Some(SchemaRef::Id(id)),
            (None, Some(text)) => Some(SchemaRef::Inline(text.clone())),
            (None, None) => None,
        };
        let key = pick(request.key_schema_id, &request.key_schema);
        let value = pick(request.value_schema_id, &request.value_schema);
        let has = |field: fn(&ProduceRecord) -> bool| request.records.iter().any(field);
        if key.is_none() && has(|r| r.key.is_some()) {
            return Err(RestError::new(
                422,
                42201,
                "Request includes keys but does not include key schema (key_schema or key_schema_id)",
            ));
        }
        if value.is_none() && has(|r| r.value.is_some()) {
            return Err(RestError::new(
                422,
                42202,
                "Request includes values but does not include value schema (value_schema or value_schema_id)",
            ));
        }
        Ok(Self { key, value })
    }

    /// After a record was prepared: inline schemas are known by id from now on.
    fn learned(&mut self, key: Option<u32>, value: Option<u32>) {
        for (slot, id) in [(&mut self.key, key), (&mut self.value, value)] {
            if let (Some(SchemaRef::Inline(_)), Some(id)) = (&slot, id)
                && let Ok(id) = i32::try_from(id)
            {
                *slot = Some(SchemaRef::Id(id));
            }
        }
    }
}

/// A REST record as the gRPC API's record.
fn to_producer_record(
    topic: &str,
    partition: Option<i32>,
    record: ProduceRecord,
    format: EmbeddedFormat,
    schemas: &RequestSchemas,
) -> Result<pb::ProducerRecord, String> {
    let key = record
        .key
        .map(|key| payload(format, "key", &key, schemas.key.as_ref()))
        .transpose()?;
    let value = record
        .value
        .map(|value| payload(format, "value", &value, schemas.value.as_ref()))
        .transpose()?;
    Ok(pb::ProducerRecord {
        topic: topic.to_owned(),
        key,
        value,
        headers: Vec::new(),
        partition: partition.or(record.partition),
        timestamp: None,
    })
}

/// One key or value in an embedded format as a gRPC payload. (A JSON `null` key or value is
/// absent: serde gives `None` for it before this is called.)
pub fn payload(
    format: EmbeddedFormat,
    field: &str,
    data: &RawValue,
    schema: Option<&SchemaRef>,
) -> Result<pb::Payload, String> {
    use pb::payload::Kind;
    let kind = match format {
        EmbeddedFormat::Binary => Kind::Raw(base64_data(field, data)?.into()),
        EmbeddedFormat::Json => Kind::Json(data.get().to_owned()),
        EmbeddedFormat::Avro => Kind::Avro(pb::AvroPayload {
            json: data.get().to_owned(),
            schema: schema.map(|schema| match schema {
                SchemaRef::Id(id) => pb::avro_payload::Schema::SchemaId(*id),
                SchemaRef::Inline(text) => pb::avro_payload::Schema::Inline(inline(text)),
            }),
        }),
        EmbeddedFormat::JsonSchema => Kind::JsonSchema(pb::JsonSchemaPayload {
            json: data.get().to_owned(),
            schema: schema.map(|schema| match schema {
                SchemaRef::Id(id) => pb::json_schema_payload::Schema::SchemaId(*id),
                SchemaRef::Inline(text) => pb::json_schema_payload::Schema::Inline(inline(text)),
            }),
        }),
        EmbeddedFormat::Protobuf => Kind::Protobuf(pb::ProtobufPayload {
            data: Some(pb::protobuf_payload::Data::Json(data.get().to_owned())),
            schema: schema.map(|schema| match schema {
                SchemaRef::Id(id) => pb::protobuf_payload::Schema::SchemaId(*id),
                SchemaRef::Inline(text) => pb::protobuf_payload::Schema::Inline(inline(text)),
            }),
            message_name: String::new(),
        }),
    };
    Ok(pb::Payload { kind: Some(kind) })
}

fn inline(text: &str) -> pb::InlineSchema {
    pb::InlineSchema {
        schema: text.to_owned(),
        strategy: pb::SubjectNameStrategy::TopicName as i32,
    }
}

/// The bytes of a base64 JSON string.
pub fn base64_data(field: &str, data: &RawValue) -> Result<Vec<u8>, String> {
    let text: String = serde_json::from_str(data.get())
        .map_err(|_| format!("{field}: binary data must be a base64 string"))?;
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|error| format!("{field}: not base64: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn json_records_ignore_the_schema_fields() {
        let request: ProduceRequest = serde_json::from_str(
            r#"{"value_schema": "{\"type\": \"record\", \"name\":\"User\", \"fields\"{]}",
                "records":[{"value":{"name": "tester1"}}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let schemas =
            RequestSchemas::of(&request, EmbeddedFormat::Json).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(schemas.value.is_none());
    }

    #[test]
    fn schema_formats_need_a_schema_for_what_records_have() {
        let request: ProduceRequest =
            serde_json::from_str(r#"{"value_schema_id": 3, "records":[{"key": "k", "value": 1}]}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        let error = RequestSchemas::of(&request, EmbeddedFormat::Avro)
            .err()
            .map(|e| e.error_code);
        assert_eq!(error, Some(42201));
        let request: ProduceRequest =
            serde_json::from_str(r#"{"records":[{"value": 1}]}"#).unwrap_or_else(|e| panic!("{e}"));
        let error = RequestSchemas::of(&request, EmbeddedFormat::Avro)
            .err()
            .map(|e| e.error_code);
        assert_eq!(error, Some(42202));
    }

    #[test]
    fn binary_data_must_be_base64() {
        assert_eq!(base64_data("value", &raw("\"aGk=\"")), Ok(b"hi".to_vec()));
        assert!(base64_data("value", &raw("\"not base64!\"")).is_err());
        assert!(base64_data("value", &raw("12")).is_err());
    }
}
