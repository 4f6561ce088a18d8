//! Encoding a record's key or value as its payload asks: Avro from JSON, Protobuf from JSON
//! or binary, JSON checked against a JSON schema, each framed with the id of the schema it
//! names (registering an inline schema first).

use bytes::Bytes;
use tributary_proto::messaging::v1 as pb;
use tributary_security::authz::{Action, Resource};

use super::{
    Producer, Recent, Unencoded, avro_record_name, schema_id_from_wire, selected_subject,
    subject_name, unencoded,
};
use crate::avro;
use crate::error::MessagingError;
use crate::schemas::WriterSchema;

/// How a payload names its writer schema, besides giving it inline.
enum NamedSchema {
    Id(i32),
    SubjectVersion(pb::SubjectVersionSelector),
    Inline(pb::InlineSchema),
}

/// Each payload's `schema` oneof, as the one [`NamedSchema`] they all are.
macro_rules! named_schema_from {
    ($($oneof:path),+) => {$(
        impl From<$oneof> for NamedSchema {
            fn from(schema: $oneof) -> Self {
                use $oneof as Oneof;
                match schema {
                    Oneof::SchemaId(id) => NamedSchema::Id(id),
                    Oneof::SubjectVersion(selector) => NamedSchema::SubjectVersion(selector),
                    Oneof::Inline(inline) => NamedSchema::Inline(inline),
                }
            }
        }
    )+};
}
named_schema_from!(
    pb::avro_payload::Schema,
    pb::protobuf_payload::Schema,
    pb::json_schema_payload::Schema
);

impl Producer {
    pub(super) async fn encode(
        &self,
        topic: &str,
        is_key: bool,
        payload: Option<pb::Payload>,
        recent: &mut Recent,
    ) -> Result<(Option<Bytes>, Option<u32>), MessagingError> {
        let field = if is_key { "key" } else { "value" };
        match unencoded(field, payload)? {
            None => Ok((None, None)),
            Some(Unencoded::Bytes(bytes)) => Ok((Some(bytes), None)),
            Some(Unencoded::Avro(avro_payload)) => {
                self.encode_avro(topic, is_key, avro_payload, recent).await
            }
            Some(Unencoded::Protobuf(proto_payload)) => {
                self.encode_protobuf(topic, is_key, proto_payload, recent)
                    .await
            }
            Some(Unencoded::JsonSchema(json_payload)) => {
                self.encode_json_schema(topic, is_key, json_payload, recent)
                    .await
            }
        }
    }

    /// Validates a JSON Schema payload against the schema it names (registering an inline one)
    /// and frames it.
    async fn encode_json_schema(
        &self,
        topic: &str,
        is_key: bool,
        payload: pb::JsonSchemaPayload,
        recent: &mut Recent,
    ) -> Result<(Option<Bytes>, Option<u32>), MessagingError> {
        let field = if is_key { "key" } else { "value" };
        let (id, schema) = self
            .writer_schema(
                topic,
                is_key,
                payload.schema.map(Into::into),
                "JSON",
                recent,
                |text| {
                    Ok(crate::json_schema::record_name(
                        &*self.schemas.json_reader(text)?,
                    ))
                },
            )
            .await?;
        let schema = schema.json(id)?;
        let framed = crate::json_schema::encode(field, &schema, id, &payload.json)?;
        Ok((Some(framed.into()), Some(id)))
    }

    /// The writer schema a payload names, authorized for the caller: by id, by subject version,
    /// or given inline (`schema_type`), checked by `inline_record_name` (which parses it and
    /// gives the record name the subject strategies use) and registered.
    async fn writer_schema(
        &self,
        topic: &str,
        is_key: bool,
        by: Option<NamedSchema>,
        schema_type: &'static str,
        recent: &mut Recent,
        inline_record_name: impl FnOnce(&str) -> Result<Option<String>, MessagingError>,
    ) -> Result<(u32, WriterSchema), MessagingError> {
        let field = if is_key { "key" } else { "value" };
        match by {
            None => {
                let payload = match schema_type {
                    "AVRO" => "an Avro payload",
                    "PROTOBUF" => "a Protobuf payload",
                    _ => "a JSON Schema payload",
                };
                Err(MessagingError::invalid(
                    field,
                    format!("{payload} needs a schema (schema_id, subject_version or inline)"),
                ))
            }
            Some(NamedSchema::Id(id)) => {
                let id = schema_id_from_wire(id)?;
                self.access
                    .require_schema(&recent.grants, &recent.caller, id)
                    .await?;
                Ok((
                    id,
                    self.schemas
                        .by_id_remembered(id, &mut recent.schema)
                        .await?,
                ))
            }
            Some(NamedSchema::SubjectVersion(selector)) => {
                let subject = selected_subject(topic, field, &selector)?;
                self.access.require_granted(
                    &recent.grants,
                    &recent.caller,
                    Action::Read,
                    Resource::subject(&subject),
                )?;
                self.schemas
                    .by_subject_version(&subject, selector.version)
                    .await
            }
            Some(NamedSchema::Inline(inline)) => {
                let record_name = inline_record_name(&inline.schema)?;
                let subject = subject_name(inline.strategy, topic, is_key, record_name.as_deref())?;
                self.register_inline(&subject, schema_type, &inline.schema, recent)
                    .await
            }
        }
    }

    /// Registers a producer's inline schema under the subject its strategy gives, authorized
    /// for the caller.
    async fn register_inline(
        &self,
        subject: &str,
        schema_type: &'static str,
        text: &str,
        recent: &Recent,
    ) -> Result<(u32, WriterSchema), MessagingError> {
        self.access.require_granted(
            &recent.grants,
            &recent.caller,
            Action::Write,
            Resource::subject(subject),
        )?;
        self.schemas.register(subject, schema_type, text).await
    }

    /// Encodes a Protobuf payload with the schema and message it names (registering an inline
    /// schema).
    async fn encode_protobuf(
        &self,
        topic: &str,
        is_key: bool,
        payload: pb::ProtobufPayload,
        recent: &mut Recent,
    ) -> Result<(Option<Bytes>, Option<u32>), MessagingError> {
        let field = if is_key { "key" } else { "value" };
        let message_name = &payload.message_name;
        let (id, schema) = self
            .writer_schema(
                topic,
                is_key,
                payload.schema.map(Into::into),
                "PROTOBUF",
                recent,
                |text| {
                    let parsed = self.schemas.proto_reader(text)?;
                    let message =
                        crate::protobuf::message(&parsed, 0, message_name).map_err(|_| {
                            MessagingError::invalid(
                                "message_name",
                                format!(
                                    "'{}' is not a message of the inline schema",
                                    message_name.chars().take(256).collect::<String>()
                                ),
                            )
                        })?;
                    Ok(Some(message.full_name().to_owned()))
                },
            )
            .await?;
        let schema = schema.protobuf(id)?;
        let message = crate::protobuf::message(&schema, id, &payload.message_name)?;
        let record = match &payload.data {
            Some(pb::protobuf_payload::Data::Json(json)) => crate::protobuf::Record::Json(json),
            Some(pb::protobuf_payload::Data::Binary(bytes)) => {
                crate::protobuf::Record::Binary(bytes)
            }
            None => {
                return Err(MessagingError::invalid(
                    field,
                    "a Protobuf payload needs its record (json or binary)",
                ));
            }
        };
        let framed = crate::protobuf::encode(field, &schema, id, &message, record)?;
        Ok((Some(framed.into()), Some(id)))
    }

    /// Encodes an Avro payload with the schema it names (registering an inline one).
    async fn encode_avro(
        &self,
        topic: &str,
        is_key: bool,
        avro_payload: pb::AvroPayload,
        recent: &mut Recent,
    ) -> Result<(Option<Bytes>, Option<u32>), MessagingError> {
        let field = if is_key { "key" } else { "value" };
        let (id, schema) = self
            .writer_schema(
                topic,
                is_key,
                avro_payload.schema.map(Into::into),
                "AVRO",
                recent,
                |text| Ok(avro_record_name(&*self.schemas.reader(text)?)),
            )
            .await?;
        let schema = schema.avro(id)?;
        let framed = avro::encode(
            field,
            &schema,
            id,
            &avro_payload.json,
            self.schemas.limits(),
        )?;
        Ok((Some(framed.into()), Some(id)))
    }
}
