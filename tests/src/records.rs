//! Building produce requests and reading their results, shared by the messaging tests.

#![allow(clippy::missing_panics_doc)]

use tributary_proto::messaging::v1 as pb;

use crate::TestMessaging;

pub fn raw(bytes: &[u8]) -> Option<pb::Payload> {
    Some(pb::Payload {
        kind: Some(pb::payload::Kind::Raw(bytes.to_vec().into())),
    })
}

pub fn text(text: &str) -> Option<pb::Payload> {
    Some(pb::Payload {
        kind: Some(pb::payload::Kind::Text(text.to_owned())),
    })
}

pub fn json(json: &str) -> Option<pb::Payload> {
    Some(pb::Payload {
        kind: Some(pb::payload::Kind::Json(json.to_owned())),
    })
}

pub fn avro(json: &str, schema: pb::avro_payload::Schema) -> Option<pb::Payload> {
    Some(pb::Payload {
        kind: Some(pb::payload::Kind::Avro(pb::AvroPayload {
            json: json.to_owned(),
            schema: Some(schema),
        })),
    })
}

pub fn avro_inline(schema: &str, json: &str) -> Option<pb::Payload> {
    Some(pb::Payload {
        kind: Some(pb::payload::Kind::Avro(pb::AvroPayload {
            json: json.to_owned(),
            schema: Some(pb::avro_payload::Schema::Inline(pb::InlineSchema {
                schema: schema.to_owned(),
                strategy: 0,
            })),
        })),
    })
}

pub fn record(topic: &str, value: Option<pb::Payload>) -> pb::ProducerRecord {
    pb::ProducerRecord {
        topic: topic.to_owned(),
        value,
        ..Default::default()
    }
}

pub async fn produce(
    messaging: &TestMessaging,
    records: Vec<pb::ProducerRecord>,
) -> Vec<pb::ProduceResult> {
    messaging
        .client()
        .await
        .produce(pb::ProduceRequest { records })
        .await
        .unwrap()
        .into_inner()
        .results
}

pub fn metadata(result: &pb::ProduceResult) -> &pb::RecordMetadata {
    match &result.result {
        Some(pb::produce_result::Result::Metadata(metadata)) => metadata,
        other => panic!("record not produced: {other:?}"),
    }
}

pub fn error(result: &pb::ProduceResult) -> &pb::RecordError {
    match &result.result {
        Some(pb::produce_result::Result::Error(error)) => error,
        other => panic!("record produced, expected an error: {other:?}"),
    }
}
