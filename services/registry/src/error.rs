//! The registry's one error type, and its one mapping to a gRPC status.
//!
//! Every variant knows its Confluent error code (`error_code`), so the HTTP API can answer
//! exactly as Confluent Schema Registry does; gRPC callers find the same code in the status's
//! `google.rpc.ErrorInfo` detail (`metadata["error_code"]`), with the reason as a stable string.

use std::collections::HashMap;

use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// How long a client is asked to wait before retrying while the database is unreachable: the
/// health check notices its return within a second.
const STORE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Confluent's message for an invalid compatibility level (its `RestInvalidCompatibilityException`).
pub const INVALID_COMPATIBILITY_MESSAGE: &str = "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive";

/// Confluent's message for an invalid mode (its `RestInvalidModeException`).
pub const INVALID_MODE_MESSAGE: &str =
    "Invalid mode. Valid values are READWRITE, READONLY, and IMPORT.";

/// What can go wrong in the registry.
///
/// Where Confluent Schema Registry answers an error code with a fixed text (its `Errors` class
/// and `RestXxxException`s), the message starts with exactly that text, typos included, so that
/// clients and tools matching Confluent's messages keep working; this registry's own detail
/// (reasons, locations) may follow it.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("Subject '{subject}' not found.")]
    SubjectNotFound { subject: String },
    #[error("Version {version} not found.")]
    VersionNotFound { subject: String, version: i32 },
    #[error("Schema {id} not found")]
    SchemaNotFound { id: i32 },
    #[error("Schema not found under subject '{subject}'")]
    SchemaNotRegistered { subject: String },
    #[error("Subject '{subject}' was soft deleted.Set permanent=true to delete permanently")]
    SubjectSoftDeleted { subject: String },
    #[error("Subject '{subject}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted { subject: String },
    #[error(
        "Subject '{subject}' Version {version} was soft deleted.Set permanent=true to delete permanently"
    )]
    VersionSoftDeleted { subject: String, version: i32 },
    #[error(
        "Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
    )]
    VersionNotSoftDeleted { subject: String, version: i32 },
    #[error("Subject '{subject}' does not have subject-level compatibility configured")]
    SubjectCompatibilityNotConfigured { subject: String },
    #[error("Subject '{subject}' does not have subject-level mode configured")]
    SubjectModeNotConfigured { subject: String },
    /// `reasons` are the first ones found (their descriptions), `total` counts them all.
    #[error("{}", incompatible_message(subject, reasons, *total, usize::MAX))]
    Incompatible {
        subject: String,
        reasons: Vec<String>,
        total: u64,
    },
    #[error("{}", invalid_schema_message(reason))]
    InvalidSchema { reason: String },
    /// No schema text (absent, empty or blank).
    #[error("Empty schema")]
    EmptySchema,
    /// The schema text does not parse; the parse error names the JSON path.
    #[error("{}", invalid_schema_message(&.0.to_string()))]
    UnparsableSchema(tributary_avro::SchemaError),
    /// Over a budget of `tributary_avro::Limits`: a schema (at `path`) or a compatibility
    /// check asked for more than the flag named in the message allows.
    #[error("{}", limit_message(source, path.as_deref()))]
    OverLimit {
        source: tributary_avro::LimitExceeded,
        path: Option<String>,
    },
    #[error(
        "The specified version '{value}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion { value: String },
    #[error("{INVALID_COMPATIBILITY_MESSAGE} (not '{value}')")]
    InvalidCompatibilityLevel { value: String },
    #[error("{INVALID_MODE_MESSAGE} (not '{value}')")]
    InvalidMode { value: String },
    /// `reason` is the whole message: Confluent's text for the case first (e.g. "Subject 's' is
    /// in read-only mode", "Cannot import since found existing subjects").
    #[error("{reason}")]
    OperationNotPermitted { reason: String },
    #[error(
        "One or more references exist to the schema {{magic=1,keytype=SCHEMA,subject={subject},version={version}}}. Schemas {referenced_by:?} reference it: it cannot be deleted"
    )]
    ReferenceExists {
        subject: String,
        version: i32,
        referenced_by: Vec<i32>,
    },
    /// An IMPORT asks for id `id`: the schema is `registered` under another id, or (`None`) the
    /// id belongs to another schema.
    #[error("{}", id_conflict_message(*id, *registered))]
    IdConflict { id: i32, registered: Option<i32> },
    #[error(
        "schema id {id} is out of range: IMPORT takes ids from 1 to {max} (the ids above are kept for the ones the registry assigns, so that registrations never run out of ids)"
    )]
    IdOutOfRange { id: i32, max: i32 },
    #[error(
        "version {version} is out of range: IMPORT takes versions from 1 to {max} (the numbers above are kept for the later versions of the subject)"
    )]
    VersionOutOfRange { version: i32, max: i32 },
    #[error(
        "subject '{subject}' has used every version number up to {max}: no later version can be registered"
    )]
    VersionsExhausted { subject: String, max: i32 },
    #[error("The specified subject '{subject}' is not a valid. ({reason})")]
    InvalidSubject { subject: String, reason: String },
    #[error(
        "schema is {size} bytes, over the limit of {limit} bytes; raise it with --max-schema-bytes (REGISTRY_MAX_SCHEMA_BYTES)"
    )]
    SchemaTooLarge { size: usize, limit: usize },
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// A field of a schema request (register, lookup, compatibility) that asks for Confluent's
    /// data contracts, which this registry does not implement: refused rather than dropped.
    #[error(
        "{field} is not supported: this registry does not implement Confluent data contracts (schema metadata and rule sets); send the request without {field}, or with {field}: null"
    )]
    UnsupportedSchemaField { field: &'static str },
    /// A field of a config update other than `compatibility`, which this registry does not
    /// implement: refused rather than dropped.
    #[error(
        "{field} is not supported: this registry's config holds the compatibility level only; send the update without {field}, or with {field}: null"
    )]
    UnsupportedConfigField { field: &'static str },
    /// The policy does not allow it.
    #[error("{0}")]
    Forbidden(tributary_security::authz::Denied),
    /// Postgres cannot be reached (or is going away). The message never holds the database's
    /// own text; [`RegistryError::public`] logs it under a correlation id.
    #[error("the database is unavailable")]
    StoreUnavailable(#[source] sqlx::Error),
    /// A query failed for another reason (a bug, or a constraint the registry did not expect).
    #[error("internal error: the database could not complete the request")]
    Store(#[source] sqlx::Error),
}

/// Confluent's 409 message: `Schema being registered is incompatible with an earlier schema for
/// subject "s", details: ` and then the first `shown` reasons.
fn incompatible_message(subject: &str, reasons: &[String], total: u64, shown: usize) -> String {
    format!(
        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: {}",
        reasons_text(reasons, total, shown)
    )
}

/// An invalid schema's message, starting as Confluent's do ("Invalid schema ...", "Empty
/// schema"): a reason that already does is kept, one starting "invalid schema" is capitalized,
/// any other follows "Invalid schema, details: ".
fn invalid_schema_message(reason: &str) -> String {
    const LOWER: &str = "invalid schema";
    if reason.starts_with("Invalid schema") || reason.starts_with("Empty schema") {
        reason.to_owned()
    } else if let Some(rest) = reason.strip_prefix(LOWER) {
        format!("Invalid schema{rest}")
    } else {
        format!("Invalid schema, details: {reason}")
    }
}

/// Confluent's messages for an IMPORT's id: its `IdDoesNotMatchException` when the schema has
/// another id, its "Overwrite new schema with id N is not permitted." when the id is another
/// schema's.
fn id_conflict_message(id: i32, registered: Option<i32>) -> String {
    match registered {
        Some(registered) => {
            format!("Schema already registered with id {registered} instead of input id {id}")
        }
        None => format!(
            "Overwrite new schema with id {id} is not permitted. (the id belongs to another schema)"
        ),
    }
}

/// What a client is told about an error: the message, and the correlation id of an internal
/// error (also in the message, and in the status's `ErrorInfo` as `correlation_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicError {
    pub message: String,
    pub correlation_id: Option<String>,
}

impl RegistryError {
    /// Confluent Schema Registry's numeric error code for this error.
    pub fn error_code(&self) -> u32 {
        use RegistryError::*;
        match self {
            SubjectNotFound { .. } => 40401,
            VersionNotFound { .. } => 40402,
            SchemaNotFound { .. } | SchemaNotRegistered { .. } => 40403,
            SubjectSoftDeleted { .. } => 40404,
            SubjectNotSoftDeleted { .. } => 40405,
            VersionSoftDeleted { .. } => 40406,
            VersionNotSoftDeleted { .. } => 40407,
            SubjectCompatibilityNotConfigured { .. } => 40408,
            SubjectModeNotConfigured { .. } => 40409,
            Incompatible { .. } => 409,
            InvalidSchema { .. }
            | EmptySchema
            | UnparsableSchema(_)
            | UnsupportedSchemaField { .. } => 42201,
            InvalidVersion { .. } | VersionOutOfRange { .. } => 42202,
            InvalidCompatibilityLevel { .. } => 42203,
            InvalidMode { .. } => 42204,
            OperationNotPermitted { .. } | IdOutOfRange { .. } | VersionsExhausted { .. } => 42205,
            ReferenceExists { .. } => 42206,
            IdConflict { .. } => 42207,
            InvalidSubject { .. } => 42208,
            SchemaTooLarge { .. } | OverLimit { .. } => 42209,
            InvalidArgument { .. } | UnsupportedConfigField { .. } => 422,
            Forbidden(_) => 40301,
            // Retriable, as Confluent's 50003 says: the client should try again shortly.
            StoreUnavailable(_) => 50003,
            Store(_) => 50001,
        }
    }

    /// When a retry may succeed, how long to wait first (HTTP `Retry-After`, gRPC `RetryInfo`):
    /// only while the database is unreachable.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        matches!(self, RegistryError::StoreUnavailable(_)).then_some(STORE_RETRY_AFTER)
    }

    /// The HTTP status Confluent answers this error with.
    pub fn http_status(&self) -> u16 {
        match self.error_code() {
            // Retriable (Confluent's clients retry 50003): Service Unavailable, with Retry-After.
            50003 => 503,
            // Three-digit codes (409, 422) are the status itself; five-digit ones start with it.
            code if code < 1000 => code as u16,
            code => (code / 100) as u16,
        }
    }

    /// A stable, machine-readable reason (the `ErrorInfo.reason` of the gRPC status).
    pub fn reason(&self) -> &'static str {
        use RegistryError::*;
        match self {
            SubjectNotFound { .. } => "SUBJECT_NOT_FOUND",
            VersionNotFound { .. } => "VERSION_NOT_FOUND",
            SchemaNotFound { .. } | SchemaNotRegistered { .. } => "SCHEMA_NOT_FOUND",
            SubjectSoftDeleted { .. } => "SUBJECT_SOFT_DELETED",
            SubjectNotSoftDeleted { .. } => "SUBJECT_NOT_SOFT_DELETED",
            VersionSoftDeleted { .. } => "VERSION_SOFT_DELETED",
            VersionNotSoftDeleted { .. } => "VERSION_NOT_SOFT_DELETED",
            SubjectCompatibilityNotConfigured { .. } => "SUBJECT_COMPATIBILITY_NOT_CONFIGURED",
            SubjectModeNotConfigured { .. } => "SUBJECT_MODE_NOT_CONFIGURED",
            Incompatible { .. } => "INCOMPATIBLE_SCHEMA",
            InvalidSchema { .. } | EmptySchema | UnparsableSchema(_) => "INVALID_SCHEMA",
            InvalidVersion { .. } => "INVALID_VERSION",
            InvalidCompatibilityLevel { .. } => "INVALID_COMPATIBILITY_LEVEL",
            InvalidMode { .. } => "INVALID_MODE",
            OperationNotPermitted { .. } => "OPERATION_NOT_PERMITTED",
            ReferenceExists { .. } => "REFERENCE_EXISTS",
            IdConflict { .. } => "ID_CONFLICT",
            IdOutOfRange { .. } => "ID_OUT_OF_RANGE",
            VersionOutOfRange { .. } => "VERSION_OUT_OF_RANGE",
            VersionsExhausted { .. } => "VERSIONS_EXHAUSTED",
            InvalidSubject { .. } => "INVALID_SUBJECT",
            SchemaTooLarge { .. } => "SCHEMA_TOO_LARGE",
            OverLimit { .. } => "LIMIT_EXCEEDED",
            InvalidArgument { .. } => "INVALID_ARGUMENT",
            UnsupportedSchemaField { .. } | UnsupportedConfigField { .. } => "UNSUPPORTED_FIELD",
            Forbidden(_) => "FORBIDDEN",
            StoreUnavailable(_) => "STORE_UNAVAILABLE",
            Store(_) => "STORE_ERROR",
        }
    }

    fn grpc_code(&self) -> Code {
        use RegistryError::*;
        match self {
            SubjectNotFound { .. }
            | VersionNotFound { .. }
            | SchemaNotFound { .. }
            | SchemaNotRegistered { .. }
            | SubjectCompatibilityNotConfigured { .. }
            | SubjectModeNotConfigured { .. } => Code::NotFound,
            SubjectSoftDeleted { .. }
            | SubjectNotSoftDeleted { .. }
            | VersionSoftDeleted { .. }
            | VersionNotSoftDeleted { .. }
            | Incompatible { .. }
            | OperationNotPermitted { .. }
            | ReferenceExists { .. }
            | VersionsExhausted { .. } => Code::FailedPrecondition,
            IdConflict { .. } => Code::AlreadyExists,
            InvalidSchema { .. }
            | EmptySchema
            | UnparsableSchema(_)
            | UnsupportedSchemaField { .. }
            | UnsupportedConfigField { .. }
            | InvalidVersion { .. }
            | InvalidCompatibilityLevel { .. }
            | InvalidMode { .. }
            | InvalidSubject { .. }
            | SchemaTooLarge { .. }
            | IdOutOfRange { .. }
            | VersionOutOfRange { .. }
            | InvalidArgument { .. } => Code::InvalidArgument,
            Forbidden(_) => Code::PermissionDenied,
            // A check that would take more work than allowed: the request is not wrong, it
            // is too expensive.
            OverLimit { source, .. } if source.limit == tributary_avro::Limit::Work => {
                Code::ResourceExhausted
            }
            OverLimit { .. } => Code::InvalidArgument,
            StoreUnavailable(_) => Code::Unavailable,
            Store(_) => Code::Internal,
        }
    }
}

/// A budget's error, naming the flag (and the environment variable) that raises it.
fn limit_message(e: &tributary_avro::LimitExceeded, path: Option<&str>) -> String {
    let at = match path {
        Some(path) if path != "/" => format!(" (at {path})"),
        _ => String::new(),
    };
    let name = e.limit.name();
    format!(
        "{}{at} exceeds the limit of {} {}; raise it with --max-{name} (REGISTRY_MAX_{})",
        e.what,
        e.max,
        e.limit.counts(),
        name.to_ascii_uppercase().replace('-', "_")
    )
}

impl From<tributary_avro::SchemaError> for RegistryError {
    /// A schema over a budget is [`RegistryError::OverLimit`] (42209), any other parse error
    /// [`RegistryError::UnparsableSchema`] (42201).
    fn from(error: tributary_avro::SchemaError) -> Self {
        match error.limit() {
            Some(limit) => RegistryError::OverLimit {
                source: limit.clone(),
                path: error.path().map(str::to_owned),
            },
            None => RegistryError::UnparsableSchema(error),
        }
    }
}

impl RegistryError {
    /// What the client is told. An internal error (the database's) is logged here with its
    /// details and a new correlation id, and answered with a stable message naming that id:
    /// the database's own text never reaches the client.
    pub fn public(&self) -> PublicError {
        let source = match self {
            RegistryError::Store(source) | RegistryError::StoreUnavailable(source) => source,
            _ => {
                return PublicError {
                    message: self.to_string(),
                    correlation_id: None,
                };
            }
        };
        let correlation_id = tributary_telemetry::correlation::new_id();
        if matches!(self, RegistryError::Store(_)) {
            tracing::error!(correlation_id, error = %source, "database error");
        } else {
            tracing::warn!(correlation_id, error = %source, "database unavailable");
        }
        PublicError {
            message: format!(
                "{self} (correlation id {correlation_id}: the registry's log has the details)"
            ),
            correlation_id: Some(correlation_id),
        }
    }
}

impl RegistryError {
    /// The same failure, for another request that failed with this one: the registrations of
    /// a group share one transaction, and when it fails, each is answered with its error. The
    /// kind (unavailable: 503 and UNAVAILABLE; else 500 and INTERNAL) and the logged text are
    /// kept; the source error itself cannot be cloned.
    pub fn for_another_request(&self) -> RegistryError {
        match self {
            RegistryError::StoreUnavailable(source) => RegistryError::StoreUnavailable(
                sqlx::Error::Io(std::io::Error::other(source.to_string())),
            ),
            RegistryError::Store(source) => {
                RegistryError::Store(sqlx::Error::Protocol(source.to_string()))
            }
            other => RegistryError::Store(sqlx::Error::Protocol(other.to_string())),
        }
    }
}

impl From<tributary_avro::LimitExceeded> for RegistryError {
    fn from(source: tributary_avro::LimitExceeded) -> Self {
        RegistryError::OverLimit { source, path: None }
    }
}

/// The SQLSTATE classes that mean "the database cannot be reached or is going away", as opposed
/// to a bug in a query: connection exceptions (08), insufficient resources (53), operator
/// intervention (57, e.g. admin shutdown) and system errors (58). A protocol error means the
/// other end did not speak Postgres (a connection dropped in the middle of the TLS negotiation
/// gives "unexpected response from SSLRequest"): a connection problem too.
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            ["08", "53", "57", "58"]
                .iter()
                .any(|class| code.starts_with(class))
        }),
        _ => false,
    }
}

impl From<sqlx::Error> for RegistryError {
    fn from(error: sqlx::Error) -> Self {
        if is_unavailable(&error) {
            RegistryError::StoreUnavailable(error)
        } else {
            RegistryError::Store(error)
        }
    }
}

impl From<RegistryError> for tonic::Status {
    fn from(error: RegistryError) -> Self {
        let code = error.grpc_code();
        let public = error.public();
        let mut metadata =
            HashMap::from([("error_code".to_owned(), error.error_code().to_string())]);
        if let Some(correlation_id) = public.correlation_id {
            metadata.insert("correlation_id".to_owned(), correlation_id);
        }
        let mut message = public.message;
        if let RegistryError::Incompatible {
            subject,
            reasons,
            total,
        } = &error
        {
            // The trailer carries the reasons twice (message and details): only the first
            // ones, within GRPC_REASONS_BYTES; CheckCompatibility lists more.
            let shown = reasons_within(reasons, GRPC_REASONS_BYTES);
            for (index, reason) in reasons.iter().take(shown).enumerate() {
                metadata.insert(format!("reason_{index}"), reason.clone());
            }
            metadata.insert("reasons_total".to_owned(), total.to_string());
            message = incompatible_message(subject, reasons, *total, shown);
        }
        let mut details =
            ErrorDetails::with_error_info(error.reason(), "registry.tributary.dev", metadata);
        if let Some(after) = error.retry_after() {
            details.set_retry_info(Some(after));
        }
        tonic::Status::with_error_details(code, message, details)
    }
}

/// The most text of reasons a gRPC error carries. Its trailer holds them twice (the message,
/// percent-encoded, and the error details, base64-encoded), and clients cap trailers: hyper
/// (tonic) at 16 KiB, grpc-java at 8 KiB.
const GRPC_REASONS_BYTES: usize = 1536;

/// How many of `reasons` fit in `budget` bytes (at least one).
fn reasons_within(reasons: &[String], budget: usize) -> usize {
    let mut bytes = 0usize;
    let mut count = 0usize;
    for reason in reasons {
        bytes = bytes.saturating_add(reason.len() + 2);
        if bytes > budget && count > 0 {
            break;
        }
        count += 1;
    }
    count
}

/// The first `shown` reasons (each cut to the gRPC budget when only one is shown), then a note
/// of how many of `total` are not.
fn reasons_text(reasons: &[String], total: u64, shown: usize) -> String {
    let shown = shown.min(reasons.len());
    let mut text = reasons
        .iter()
        .take(shown)
        .map(|r| {
            if shown == 1 && reasons.len() > 1 {
                tributary_avro::compat::shorten(r, GRPC_REASONS_BYTES)
            } else {
                r.clone()
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let listed = u64::try_from(shown).unwrap_or(u64::MAX);
    if total > listed {
        text.push_str(&format!(
            "; ... and {} more incompatibilities (a compatibility check lists the first --max-incompatibilities)",
            total - listed
        ));
    }
    text
}

/// Whether a database error is the given SQLSTATE (e.g. "23505" unique violation).
pub(crate) fn is_sqlstate(error: &sqlx::Error, sqlstate: &str) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some(sqlstate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_name_their_flag() {
        let limits = tributary_avro::Limits {
            record_fields: 2,
            ..Default::default()
        };
        let error = tributary_avro::Schema::parse_with_limits(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"},{"name":"c","type":"int"}]}"#,
            &[],
            tributary_avro::schema::ParseOptions::default(),
            &limits,
        )
        .expect_err("three fields");
        let error = RegistryError::from(error);
        assert_eq!(error.error_code(), 42209);
        assert_eq!(error.http_status(), 422);
        assert_eq!(error.grpc_code(), Code::InvalidArgument);
        let message = error.to_string();
        assert!(
            message.contains("--max-record-fields (REGISTRY_MAX_RECORD_FIELDS)")
                && message.contains("record 'R' (3 fields)"),
            "{message}"
        );
        let work = RegistryError::from(tributary_avro::LimitExceeded {
            limit: tributary_avro::Limit::Work,
            max: 10,
            what: "the compatibility check".into(),
        });
        assert_eq!(work.grpc_code(), Code::ResourceExhausted);
        assert!(
            work.to_string().contains("REGISTRY_MAX_SCHEMA_WORK"),
            "{work}"
        );
        let unparsable =
            RegistryError::from(tributary_avro::Schema::parse("{", &[]).expect_err("not JSON"));
        assert_eq!(unparsable.error_code(), 42201);
    }

    #[test]
    fn messages_start_with_confluents_text() {
        let subject = || "s".to_owned();
        let cases: Vec<(RegistryError, &str)> = vec![
            (
                RegistryError::SubjectNotFound { subject: subject() },
                "Subject 's' not found.",
            ),
            (
                RegistryError::VersionNotFound {
                    subject: subject(),
                    version: 2,
                },
                "Version 2 not found.",
            ),
            (
                RegistryError::SchemaNotFound { id: 7 },
                "Schema 7 not found",
            ),
            (
                RegistryError::SchemaNotRegistered { subject: subject() },
                "Schema not found",
            ),
            (
                RegistryError::SubjectSoftDeleted { subject: subject() },
                "Subject 's' was soft deleted.Set permanent=true to delete permanently",
            ),
            (
                RegistryError::SubjectNotSoftDeleted { subject: subject() },
                "Subject 's' was not deleted first before being permanently deleted",
            ),
            (
                RegistryError::VersionSoftDeleted {
                    subject: subject(),
                    version: 1,
                },
                "Subject 's' Version 1 was soft deleted.Set permanent=true to delete permanently",
            ),
            (
                RegistryError::VersionNotSoftDeleted {
                    subject: subject(),
                    version: 1,
                },
                "Subject 's' Version 1 was not deleted first before being permanently deleted",
            ),
            (
                RegistryError::SubjectCompatibilityNotConfigured { subject: subject() },
                "Subject 's' does not have subject-level compatibility configured",
            ),
            (
                RegistryError::SubjectModeNotConfigured { subject: subject() },
                "Subject 's' does not have subject-level mode configured",
            ),
            (
                RegistryError::Incompatible {
                    subject: subject(),
                    reasons: vec!["r".into()],
                    total: 1,
                },
                "Schema being registered is incompatible with an earlier schema for subject \"s\", details: r",
            ),
            (RegistryError::EmptySchema, "Empty schema"),
            (
                RegistryError::InvalidSchema {
                    reason: "unsupported schema type 'JSON'".into(),
                },
                "Invalid schema",
            ),
            (
                RegistryError::from(tributary_avro::Schema::parse("{", &[]).expect_err("not JSON")),
                "Invalid schema",
            ),
            (
                RegistryError::InvalidVersion { value: "x".into() },
                "The specified version 'x' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"",
            ),
            (
                RegistryError::InvalidCompatibilityLevel { value: "x".into() },
                INVALID_COMPATIBILITY_MESSAGE,
            ),
            (
                RegistryError::InvalidMode { value: "x".into() },
                INVALID_MODE_MESSAGE,
            ),
            (
                RegistryError::ReferenceExists {
                    subject: subject(),
                    version: 1,
                    referenced_by: vec![3],
                },
                "One or more references exist to the schema {magic=1,keytype=SCHEMA,subject=s,version=1}.",
            ),
            (
                RegistryError::IdConflict {
                    id: 5,
                    registered: Some(4),
                },
                "Schema already registered with id 4 instead of input id 5",
            ),
            (
                RegistryError::IdConflict {
                    id: 5,
                    registered: None,
                },
                "Overwrite new schema with id 5 is not permitted.",
            ),
            (
                RegistryError::InvalidSubject {
                    subject: ":.c:s".into(),
                    reason: "contexts".into(),
                },
                "The specified subject ':.c:s' is not a valid.",
            ),
        ];
        for (error, prefix) in cases {
            let message = error.to_string();
            assert!(message.starts_with(prefix), "{message:?} for {prefix:?}");
            // gRPC callers read the same text.
            let status = tonic::Status::from(error);
            assert!(status.message().starts_with(prefix), "{status:?}");
        }
    }

    #[test]
    fn a_connection_that_does_not_speak_postgres_is_unavailable_not_internal() {
        let error = RegistryError::from(sqlx::Error::Protocol(
            "unexpected response from SSLRequest: 0x00".into(),
        ));
        assert!(
            matches!(error, RegistryError::StoreUnavailable(_)),
            "{error:?}"
        );
        let error = RegistryError::from(sqlx::Error::RowNotFound);
        assert!(matches!(error, RegistryError::Store(_)), "{error:?}");
    }

    #[test]
    fn database_errors_reach_clients_as_a_stable_message_with_a_correlation_id() {
        let raw = "duplicate key value violates unique constraint \"schemas_pkey\"";
        for (error, code) in [
            (
                RegistryError::Store(sqlx::Error::Protocol(raw.into())),
                "50001",
            ),
            (
                RegistryError::StoreUnavailable(sqlx::Error::Protocol(raw.into())),
                "50003",
            ),
        ] {
            let public = error.public();
            let id = public.correlation_id.clone().unwrap_or_default();
            assert_eq!(id.len(), 16, "{public:?}");
            assert!(public.message.contains(&id), "{public:?}");
            assert!(!public.message.contains("schemas_pkey"), "{public:?}");
            let status = tonic::Status::from(error);
            assert!(!status.message().contains("schemas_pkey"), "{status:?}");
            let metadata = status
                .get_details_error_info()
                .map(|info| info.metadata)
                .unwrap_or_default();
            assert_eq!(metadata.get("error_code").map(String::as_str), Some(code));
            let logged = metadata.get("correlation_id").cloned().unwrap_or_default();
            assert_eq!(logged.len(), 16, "{metadata:?}");
            assert!(status.message().contains(&logged), "{status:?}");
        }
        let not_found = RegistryError::SchemaNotFound { id: 7 }.public();
        assert_eq!(not_found.correlation_id, None);
        assert_eq!(not_found.message, "Schema 7 not found");
    }
}
