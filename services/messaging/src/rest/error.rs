//! The REST API's errors: the Kafka REST Proxy's `{"error_code": ..., "message": ...}` bodies,
//! with its HTTP statuses and codes. A [`MessagingError`] becomes one through
//! [`MessagingError::rest_status`], the service's one mapping; the REST front end adds only what
//! is its own (media types, consumer instances, request bodies).

use axum::response::{IntoResponse, Response};

use crate::error::{MAX_STATUS_MESSAGE_BYTES, MessagingError};
use crate::rest::media::V2_JSON;

/// An error answer of the REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestError {
    pub status: u16,
    pub error_code: u32,
    pub message: String,
}

impl RestError {
    pub fn new(status: u16, error_code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            error_code,
            message: message.into(),
        }
    }

    /// 400: the request body is not the JSON the route reads.
    pub fn bad_body(message: impl std::fmt::Display) -> Self {
        Self::new(400, 400, format!("invalid request body: {message}"))
    }

    /// 422: a value of the request is not valid (the REST Proxy's constraint violation).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, 422, message)
    }

    /// The REST Proxy's 40403, saying why an instance may be missing.
    pub fn instance_not_found(message: impl Into<String>) -> Self {
        Self::new(404, 40403, message)
    }

    /// A [`MessagingError`] about `context` (a record of the request, a field), or about the
    /// request as a whole when `context` is empty.
    pub fn from_messaging(error: &MessagingError, context: &str) -> Self {
        let (status, error_code) = error.rest_status();
        let message = error.public(MAX_STATUS_MESSAGE_BYTES).message;
        let message = if context.is_empty() {
            message
        } else {
            format!("{context}: {message}")
        };
        Self::new(status, error_code, message)
    }
}

impl From<MessagingError> for RestError {
    fn from(error: MessagingError) -> Self {
        Self::from_messaging(&error, "")
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        tributary_http_server::error_response(self.status, self.error_code, V2_JSON, &self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messaging_errors_keep_the_rest_proxy_codes() {
        let missing = RestError::from(MessagingError::TopicNotFound {
            topic: "orders".to_owned(),
        });
        assert_eq!((missing.status, missing.error_code), (404, 40401));
        assert!(missing.message.contains("orders"), "{missing:?}");
        let schema = RestError::from_messaging(
            &MessagingError::InvalidSchema {
                reason: "unknown type 'strin'".to_owned(),
            },
            "value_schema",
        );
        assert_eq!((schema.status, schema.error_code), (422, 42205));
        assert!(schema.message.starts_with("value_schema: "), "{schema:?}");
    }
}
