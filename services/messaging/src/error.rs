//! The messaging service's one error type, and its one mapping to a gRPC status (and to the
//! per-record errors of Produce and Consume) and to the Kafka REST Proxy's HTTP statuses and
//! error codes ([`MessagingError::rest_status`]).

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
    /// A registry call failed: the registry's answer (`answered`: its own message, which says
    /// what is wrong and never holds internal text), or a failure of the call itself (the
    /// connection, TLS: library text, answered with a correlation id).
    #[error("registry: {message}")]
    Registry {
        code: Code,
        message: String,
        answered: bool,
    },
    /// The policy does not allow it.
    #[error("{0}")]
    Forbidden(tributary_security::authz::Denied),
    /// Kafka cannot be reached, or timed out. The message names librdkafka's error code, never
    /// its text.
    #[error("Kafka is unavailable ({})", kafka_code(.0))]
    KafkaUnavailable(#[source] KafkaError),
    /// Any other Kafka failure: answered with a correlation id, its text logged.
    #[error("internal Kafka error ({})", kafka_code(.0))]
    Kafka(#[source] KafkaError),
    /// Kafka had not acknowledged the record when it had to be answered (the delivery timeout,
    /// or the call's deadline): it may or may not be written, and may still be. A client that
    /// retries it may write it twice.
    #[error(
        "outcome unknown: {why}; the record to topic '{topic}' may or may not be written (a retry may duplicate it)"
    )]
    OutcomeUnknown { topic: String, why: &'static str },
    /// The call's deadline came before the record could be handed to Kafka (no metadata for
    /// its topic, the producer's queue full): it was not written, and a retry is safe.
    #[error(
        "the record to topic '{topic}' could not be handed to Kafka before the call's deadline; it was not written (a retry is safe)"
    )]
    NotSent { topic: String },
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error(
        "this messaging instance serves {limit} Consume streams and REST consumer instances already (--max-consume-streams, MESSAGING_MAX_CONSUME_STREAMS): retry later or on another instance"
    )]
    TooManyConsumeStreams { limit: usize },
    /// The client's request stream failed: a message that does not decode, or a reset.
    #[error("the request stream failed: {message}")]
    RequestStream { message: String },
    /// A bug: something the service itself produced turned out wrong. Answered with a
    /// correlation id, the detail logged.
    #[error("internal error")]
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

/// The most bytes of a status message (longer ones are cut, saying how much was left out).
pub const MAX_STATUS_MESSAGE_BYTES: usize = 4096;

/// The most bytes of a per-record error message (Produce results, consumed payloads).
pub const MAX_RECORD_ERROR_MESSAGE_BYTES: usize = 1024;

/// librdkafka's name for the code of an error (`MessageTimedOut`, `AllBrokersDown`, ...): stable,
/// and free of the addresses and details of its message text.
fn kafka_code(error: &KafkaError) -> String {
    match error {
        KafkaError::AdminOp(code) => format!("{code:?}"),
        other => other
            .rdkafka_error_code()
            .map_or_else(|| "no code".to_owned(), |code| format!("{code:?}")),
    }
}

/// `message`, cut at a character boundary to at most `max` bytes (plus a note of what was cut).
pub fn truncate_message(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_owned();
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    format!(
        "{}... ({} more bytes)",
        &message[..end],
        message.len().saturating_sub(end)
    )
}

/// What a client is told about an error: the message (internal errors: a stable text naming a
/// correlation id, their detail logged under it), and the correlation id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicError {
    pub message: String,
    pub correlation_id: Option<String>,
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
            OutcomeUnknown { .. } => "OUTCOME_UNKNOWN",
            NotSent { .. } => "NOT_SENT",
            Kafka(_) => "KAFKA_ERROR",
            ShuttingDown => "SHUTTING_DOWN",
            TooManyConsumeStreams { .. } => "TOO_MANY_CONSUME_STREAMS",
            RequestStream { .. } => "REQUEST_STREAM_FAILED",
            Internal(_) => "INTERNAL",
        }
    }

    /// Whether this is the registry being unreachable or unavailable (down, its database
    /// down, a connection that failed), rather than an answer about the request.
    pub fn is_registry_unreachable(&self) -> bool {
        matches!(
            self,
            MessagingError::Registry {
                code: Code::Unavailable,
                ..
            }
        )
    }

    pub fn grpc_code(&self) -> Code {
        use MessagingError::*;
        match self {
            InvalidArgument { .. }
            | SchemaMismatch { .. }
            | InvalidSchema { .. }
            | RecordTooLarge { .. }
            | RecordTooLargeForBroker { .. }
            | RequestStream { .. } => Code::InvalidArgument,
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
            KafkaUnavailable(_) | ShuttingDown | NotSent { .. } => Code::Unavailable,
            // gRPC's code for "the deadline passed, the operation may have completed".
            OutcomeUnknown { .. } => Code::DeadlineExceeded,
            TooManyConsumeStreams { .. } => Code::ResourceExhausted,
            Kafka(_) | Internal(_) => Code::Internal,
        }
    }

    /// The HTTP status and the Kafka REST Proxy error code of this error on the REST API (the
    /// REST Proxy's own codes where it has one: 40401 topic, 40402 partition, 42203 a record
    /// that does not convert, 42205 an invalid schema, 50002 Kafka, 50003 retriable, 50301 no
    /// consumer available).
    pub fn rest_status(&self) -> (u16, u32) {
        use MessagingError::*;
        match self {
            InvalidArgument { .. } => (422, 422),
            SchemaMismatch { .. } => (422, 42203),
            InvalidSchema { .. } => (422, 42205),
            OverLimit { source, .. } if source.limit == tributary_avro::Limit::Work => (429, 42901),
            OverLimit { .. } => (422, 42206),
            RecordTooLarge { .. } | RecordTooLargeForBroker { .. } => (413, 41301),
            TopicNotFound { .. } => (404, 40401),
            PartitionNotFound { .. } => (404, 40402),
            GroupNotFound { .. } => (404, 40406),
            TopicExists { .. } => (409, 40904),
            // What the REST Proxy answered for a whole fetch ("Error deserializing Avro
            // message"), here per record.
            Undecodable { .. } => (500, 50002),
            Registry { code, .. } => match code {
                Code::InvalidArgument => (422, 42205),
                Code::NotFound => (404, 40405),
                Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => (409, 40905),
                Code::PermissionDenied => (403, 40301),
                Code::Unauthenticated => (401, 40101),
                Code::ResourceExhausted => (429, 42901),
                Code::Unavailable | Code::DeadlineExceeded => (503, 50003),
                _ => (500, 50002),
            },
            Forbidden(_) => (403, 40301),
            KafkaUnavailable(_) | NotSent { .. } | ShuttingDown => (503, 50003),
            OutcomeUnknown { .. } => (504, 50004),
            TooManyConsumeStreams { .. } => (503, 50301),
            RequestStream { .. } => (400, 400),
            Kafka(_) => (500, 50002),
            Internal(_) => (500, 500),
        }
    }

    /// What the client is told, at most `max` bytes of message. Internal errors (Kafka's, the
    /// service's own, and failures of the registry client that carry no answer of the
    /// registry) are logged here with their detail and a new correlation id, and answered with
    /// a stable message naming it.
    pub fn public(&self, max: usize) -> PublicError {
        let detail = match self {
            MessagingError::Kafka(error) => Some(error.to_string()),
            MessagingError::Internal(detail) => Some(detail.clone()),
            MessagingError::Registry {
                message,
                answered: false,
                ..
            } => Some(message.clone()),
            _ => None,
        };
        let Some(detail) = detail else {
            return PublicError {
                message: truncate_message(&self.to_string(), max),
                correlation_id: None,
            };
        };
        let correlation_id = tributary_telemetry::correlation::new_id();
        let message = match self {
            MessagingError::Registry { .. } => {
                tracing::warn!(correlation_id, error = %detail, "registry call failed");
                format!(
                    "the registry cannot be reached (correlation id {correlation_id}: the messaging service's log has the details)"
                )
            }
            _ => {
                tracing::error!(correlation_id, error = %detail, "internal error");
                format!(
                    "{self} (correlation id {correlation_id}: the messaging service's log has the details)"
                )
            }
        };
        PublicError {
            message: truncate_message(&message, max),
            correlation_id: Some(correlation_id),
        }
    }

    /// The per-record form, for Produce results and consumed payloads (its message at most
    /// [`MAX_RECORD_ERROR_MESSAGE_BYTES`]).
    pub fn to_record_error(&self) -> pb::RecordError {
        pb::RecordError {
            code: self.grpc_code() as i32,
            reason: self.reason().to_owned(),
            message: self.public(MAX_RECORD_ERROR_MESSAGE_BYTES).message,
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
            Some(RDKafkaErrorCode::InvalidTimestamp) => MessagingError::invalid(
                "timestamp",
                "the broker refused the record's timestamp (see the topic's message.timestamp.before.max.ms and message.timestamp.after.max.ms)",
            ),
            // A record's delivery timeout (message.timeout.ms): it may have reached a broker
            // that did not answer in time.
            Some(RDKafkaErrorCode::MessageTimedOut) => MessagingError::OutcomeUnknown {
                topic: topic.to_owned(),
                why: "Kafka did not acknowledge it within the delivery timeout (MESSAGING_DELIVERY_TIMEOUT_MS)",
            },
            Some(
                RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
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
        let public = error.public(MAX_STATUS_MESSAGE_BYTES);
        let mut metadata = HashMap::new();
        if let Some(correlation_id) = public.correlation_id {
            metadata.insert("correlation_id".to_owned(), correlation_id);
        }
        match &error {
            MessagingError::SchemaMismatch { path, field, .. } => {
                metadata.insert(
                    "path".to_owned(),
                    truncate_message(path, MAX_RECORD_ERROR_MESSAGE_BYTES),
                );
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
        tonic::Status::with_error_details(code, public.message, details)
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
        // A delivery timeout: the record may have been written, and the client is told so.
        let timed_out = MessagingError::from_kafka(
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
            "t",
            100,
        );
        assert_eq!(timed_out.grpc_code(), Code::DeadlineExceeded);
        assert_eq!(timed_out.reason(), "OUTCOME_UNKNOWN");
        assert!(
            timed_out.to_string().contains("may or may not be written"),
            "{timed_out}"
        );
    }

    #[test]
    fn internal_errors_reach_clients_as_a_stable_message_with_a_correlation_id() {
        let error = MessagingError::Kafka(KafkaError::MessageProduction(
            RDKafkaErrorCode::InvalidRecord,
        ));
        let status = tonic::Status::from(error);
        assert_eq!(status.code(), Code::Internal);
        assert!(
            status
                .message()
                .starts_with("internal Kafka error (InvalidRecord) (correlation id "),
            "{status:?}"
        );
        assert!(
            !status.message().contains("Message production error"),
            "{status:?}"
        );
        let internal = MessagingError::Internal("encoded record: buffer too small".to_owned());
        let record = internal.to_record_error();
        assert!(!record.message.contains("buffer"), "{record:?}");
        assert!(record.message.contains("correlation id"), "{record:?}");
        let transport = MessagingError::Registry {
            code: Code::Unavailable,
            message: "error trying to connect: tcp connect error: Connection refused".to_owned(),
            answered: false,
        };
        let public = transport.public(MAX_STATUS_MESSAGE_BYTES);
        assert!(!public.message.contains("tcp connect"), "{public:?}");
        assert!(public.correlation_id.is_some());
        let answered = MessagingError::Registry {
            code: Code::InvalidArgument,
            message: "invalid schema: unknown type 'strin'".to_owned(),
            answered: true,
        };
        assert_eq!(
            answered.public(MAX_STATUS_MESSAGE_BYTES).message,
            "registry: invalid schema: unknown type 'strin'"
        );
        let unavailable = MessagingError::KafkaUnavailable(KafkaError::MessageProduction(
            RDKafkaErrorCode::AllBrokersDown,
        ));
        assert_eq!(
            unavailable.public(MAX_STATUS_MESSAGE_BYTES).message,
            "Kafka is unavailable (AllBrokersDown)"
        );
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let long = "é".repeat(3000);
        let cut = truncate_message(&long, MAX_RECORD_ERROR_MESSAGE_BYTES);
        assert!(
            cut.len() < MAX_RECORD_ERROR_MESSAGE_BYTES + 32,
            "{}",
            cut.len()
        );
        assert!(cut.ends_with("... (4976 more bytes)"), "{cut}");
        let status = tonic::Status::from(MessagingError::Registry {
            code: Code::FailedPrecondition,
            message: "x".repeat(1 << 20),
            answered: true,
        });
        assert!(status.message().len() < MAX_STATUS_MESSAGE_BYTES + 32);
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
