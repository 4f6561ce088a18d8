//! The messaging service's one error type, and its one mapping to a gRPC status (and to the
//! per-record errors of Produce and Consume).

use std::collections::HashMap;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};
use tributary_proto::messaging::v1 as pb;

/// What can go wrong in the messaging service.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{field} does not match its schema at {path}: expected {expected}: {message}")]
    SchemaMismatch {
        field: String,
        path: String,
        expected: String,
        message: String,
    },
    #[error("invalid schema: {reason}")]
    InvalidSchema { reason: String },
    /// Over a budget of `tributary_avro::Limits`: `context` (a schema, a key or value) asked
    /// for more than the flag named in the message allows.
    #[error("{}", limit_message(source, context))]
    OverLimit {
        source: tributary_avro::LimitExceeded,
        context: String,
    },
    #[error("topic '{topic}' not found")]
    TopicNotFound { topic: String },
    #[error("topic '{topic}' already exists")]
    TopicExists { topic: String },
    #[error("partition {partition} of topic '{topic}' not found")]
    PartitionNotFound { topic: String, partition: i32 },
    #[error("consumer group '{group}' not found")]
    GroupNotFound { group: String },
    #[error("record is {size} bytes, over the limit of {limit} bytes (message.max.bytes)")]
    RecordTooLarge { size: usize, limit: usize },
    #[error("the record is over the size limit (message.max.bytes = {limit} bytes)")]
    RecordTooLargeForBroker { limit: usize },
    #[error("payload cannot be decoded: {reason}")]
    Undecodable { reason: String },
    #[error("registry: {message}")]
    Registry { code: Code, message: String },
    /// The policy does not allow it.
    #[error("{0}")]
    Forbidden(tributary_security::authz::Denied),
    #[error("Kafka is unavailable: {0}")]
    KafkaUnavailable(#[source] KafkaError),
    #[error("Kafka error: {0}")]
    Kafka(#[source] KafkaError),
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A bug: something the service itself produced turned out wrong.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A budget's error, naming the flag (and the environment variable) that raises it.
fn limit_message(e: &tributary_avro::LimitExceeded, context: &str) -> String {
    let name = e.limit.name();
    format!(
        "{context}: {} exceeds the limit of {} {}; raise it with --max-{name} (MESSAGING_MAX_{})",
        e.what,
        e.max,
        e.limit.counts(),
        name.to_ascii_uppercase().replace('-', "_")
    )
}

impl MessagingError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        MessagingError::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A stable, machine-readable reason (the `ErrorInfo.reason` of the gRPC status).
    pub fn reason(&self) -> &'static str {
        use MessagingError::*;
        match self {
            InvalidArgument { .. } => "INVALID_ARGUMENT",
            SchemaMismatch { .. } => "SCHEMA_MISMATCH",
            InvalidSchema { .. } => "INVALID_SCHEMA",
            OverLimit { .. } => "LIMIT_EXCEEDED",
            TopicNotFound { .. } => "TOPIC_NOT_FOUND",
            TopicExists { .. } => "TOPIC_EXISTS",
            PartitionNotFound { .. } => "PARTITION_NOT_FOUND",
            GroupNotFound { .. } => "GROUP_NOT_FOUND",
            RecordTooLarge { .. } | RecordTooLargeForBroker { .. } => "RECORD_TOO_LARGE",
            Undecodable { .. } => "UNDECODABLE",
            Registry { .. } => "REGISTRY_ERROR",
            Forbidden(_) => "FORBIDDEN",
            KafkaUnavailable(_) => "KAFKA_UNAVAILABLE",
            Kafka(_) => "KAFKA_ERROR",
            ShuttingDown => "SHUTTING_DOWN",
            Internal(_) => "INTERNAL",
        }
    }

    pub fn grpc_code(&self) -> Code {
        use MessagingError::*;
        match self {
            InvalidArgument { .. }
            | SchemaMismatch { .. }
            | InvalidSchema { .. }
            | RecordTooLarge { .. }
            | RecordTooLargeForBroker { .. } => Code::InvalidArgument,
            TopicNotFound { .. } | PartitionNotFound { .. } | GroupNotFound { .. } => {
                Code::NotFound
            }
            TopicExists { .. } => Code::AlreadyExists,
            // Checking a reader schema would take more work than allowed: not a wrong
            // request, a too expensive one.
            OverLimit { source, .. } if source.limit == tributary_avro::Limit::Work => {
                Code::ResourceExhausted
            }
            OverLimit { .. } => Code::InvalidArgument,
            Undecodable { .. } => Code::DataLoss,
            Registry { code, .. } => *code,
            Forbidden(_) => Code::PermissionDenied,
            KafkaUnavailable(_) | ShuttingDown => Code::Unavailable,
            Kafka(_) | Internal(_) => Code::Internal,
        }
    }

    /// The per-record form, for Produce results and consumed payloads.
    pub fn to_record_error(&self) -> pb::RecordError {
        pb::RecordError {
            code: self.grpc_code() as i32,
            reason: self.reason().to_owned(),
            message: self.to_string(),
        }
    }

    /// Classifies a Kafka error: broker-side answers with a meaning of their own get their own
    /// variant; transport failures and timeouts are UNAVAILABLE.
    pub fn from_kafka(error: KafkaError, topic: &str, max_message_bytes: usize) -> Self {
        let code = match &error {
            KafkaError::AdminOp(code) => Some(*code),
            other => other.rdkafka_error_code(),
        };
        match code {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                MessagingError::TopicNotFound {
                    topic: topic.to_owned(),
                }
            }
            Some(RDKafkaErrorCode::TopicAlreadyExists) => MessagingError::TopicExists {
                topic: topic.to_owned(),
            },
            Some(RDKafkaErrorCode::MessageSizeTooLarge) => {
                MessagingError::RecordTooLargeForBroker {
                    limit: max_message_bytes,
                }
            }
            Some(
                code @ (RDKafkaErrorCode::InvalidPartitions
                | RDKafkaErrorCode::InvalidReplicationFactor
                | RDKafkaErrorCode::InvalidConfig
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::InvalidRequest
                | RDKafkaErrorCode::PolicyViolation
                | RDKafkaErrorCode::InvalidReplicaAssignment),
            ) => MessagingError::invalid("topic", code.to_string()),
            Some(
                RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::MessageTimedOut
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::QueueFull,
            ) => MessagingError::KafkaUnavailable(error),
            _ => MessagingError::Kafka(error),
        }
    }
}

impl From<MessagingError> for tonic::Status {
    fn from(error: MessagingError) -> Self {
        let code = error.grpc_code();
        if matches!(error, MessagingError::Kafka(_)) {
            tracing::error!(error = %error, "Kafka error");
        }
        let mut metadata = HashMap::new();
        match &error {
            MessagingError::SchemaMismatch { path, field, .. } => {
                metadata.insert("path".to_owned(), path.clone());
                metadata.insert("field".to_owned(), field.clone());
            }
            MessagingError::RecordTooLarge { limit, .. }
            | MessagingError::RecordTooLargeForBroker { limit } => {
                metadata.insert("message.max.bytes".to_owned(), limit.to_string());
            }
            MessagingError::Forbidden(_) => {
                metadata.insert("error_code".to_owned(), "40301".to_owned());
            }
            _ => {}
        }
        let details =
            ErrorDetails::with_error_info(error.reason(), "messaging.tributary.dev", metadata);
        tonic::Status::with_error_details(code, error.to_string(), details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_errors_map_to_their_meaning() {
        let missing = MessagingError::from_kafka(
            KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition),
            "t",
            100,
        );
        assert_eq!(missing.grpc_code(), Code::NotFound);
        let too_large = MessagingError::from_kafka(
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
            "t",
            100,
        );
        assert_eq!(too_large.grpc_code(), Code::InvalidArgument);
        assert!(too_large.to_string().contains("message.max.bytes"));
        let down = MessagingError::from_kafka(
            KafkaError::MessageProduction(RDKafkaErrorCode::AllBrokersDown),
            "t",
            100,
        );
        assert_eq!(down.grpc_code(), Code::Unavailable);
        let exists = MessagingError::from_kafka(
            KafkaError::AdminOp(RDKafkaErrorCode::TopicAlreadyExists),
            "t",
            100,
        );
        assert_eq!(exists.grpc_code(), Code::AlreadyExists);
    }

    #[test]
    fn schema_mismatch_status_names_the_path() {
        let status = tonic::Status::from(MessagingError::SchemaMismatch {
            field: "value".to_owned(),
            path: "$.age".to_owned(),
            expected: "int".to_owned(),
            message: "got a string".to_owned(),
        });
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("$.age"));
    }
}
