//! Errors of the HTTP API, answered as Confluent Schema Registry answers them: a JSON body
//! `{"error_code": N, "message": "..."}` with the HTTP status that goes with `N`.
//!
//! Registry errors keep their Confluent code (`RegistryError::error_code`) and status
//! (`RegistryError::http_status`); [`registry_error_response`] is the one place that turns a
//! [`RegistryError`] into an HTTP response. The other variants are the HTTP layer's own
//! failures, with the codes Confluent's Jersey/rest-utils stack gives them (unknown route 404,
//! wrong method 405, unreadable JSON 400, unsupported media types 415/406).

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use crate::error::RegistryError;
use crate::http::extract::V1_JSON;

/// Why an HTTP request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// What the registry core refused.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// No route has this path (or a path parameter is not what the route needs, as JAX-RS
    /// answers an unparsable integer parameter).
    #[error("HTTP 404 Not Found{}", .0.as_deref().map(|detail| format!(": {detail}")).unwrap_or_default())]
    NotFound(Option<String>),
    /// The path exists, but not with this method.
    #[error("HTTP 405 Method Not Allowed")]
    MethodNotAllowed,
    /// The request body is not JSON of the expected shape.
    #[error("{0}")]
    MalformedBody(String),
    /// The request body is larger than the API accepts.
    #[error("the request body is larger than this registry accepts")]
    BodyTooLarge,
    /// The request's Content-Type is not one the API reads.
    #[error("HTTP 415 Unsupported Media Type")]
    UnsupportedMediaType,
    /// None of the types the request's Accept header allows is one the API writes.
    #[error("HTTP 406 Not Acceptable")]
    NotAcceptable,
    /// A response could not be serialized (a bug; never expected).
    #[error("internal error: {0}")]
    Internal(String),
}

/// The Confluent-shaped error response: `status` with `{"error_code": code, "message": ...}`.
pub fn error_response(status: u16, code: u32, message: &str) -> Response {
    tributary_http_server::error_response(status, code, V1_JSON, message)
}

/// The one mapping from a [`RegistryError`] to an HTTP response: Confluent's error code and
/// HTTP status, and the error's public message (database failures are logged with a
/// correlation id the message names, as over gRPC).
pub fn registry_error_response(error: &RegistryError) -> Response {
    let mut response = error_response(
        error.http_status(),
        error.error_code(),
        &error.public().message,
    );
    if let Some(after) = error.retry_after() {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from(after.as_secs().max(1)),
        );
    }
    response
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            HttpError::Registry(error) => return registry_error_response(error),
            HttpError::NotFound(_) => (404, 404),
            HttpError::MethodNotAllowed => (405, 405),
            HttpError::MalformedBody(_) => (400, 400),
            HttpError::BodyTooLarge => (413, 413),
            HttpError::UnsupportedMediaType => (415, 415),
            HttpError::NotAcceptable => (406, 406),
            HttpError::Internal(detail) => {
                let correlation_id = tributary_telemetry::correlation::new_id();
                tracing::error!(correlation_id, error = %detail, "internal error");
                return error_response(
                    500,
                    500,
                    &format!(
                        "internal error (correlation id {correlation_id}: the registry's log has the details)"
                    ),
                );
            }
        };
        error_response(status, code, &self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::http::header::CONTENT_TYPE;

    use super::*;

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    #[tokio::test]
    async fn registry_errors_keep_confluent_codes_and_statuses() {
        let response = HttpError::from(RegistryError::SubjectNotFound {
            subject: "s".into(),
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response
                .headers()
                .get(CONTENT_TYPE)
                .map(HeaderValue::as_bytes),
            Some(V1_JSON.as_bytes())
        );
        let body = body_of(response).await;
        assert_eq!(body["error_code"], 40401);
        assert_eq!(body["message"], "Subject 's' not found.");

        let incompatible = RegistryError::Incompatible {
            subject: "s".into(),
            reasons: vec!["a".into(), "b".into()],
            total: 2,
        };
        let response = HttpError::from(incompatible).into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let body = body_of(response).await;
        assert_eq!(body["error_code"], 409);
        assert_eq!(
            body["message"],
            "Schema being registered is incompatible with an earlier schema for subject \"s\", details: a; b"
        );
    }

    #[tokio::test]
    async fn http_layer_errors_are_confluent_shaped() {
        let response = HttpError::NotFound(None).into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            body_of(response).await,
            serde_json::json!({"error_code": 404, "message": "HTTP 404 Not Found"})
        );
        let response =
            HttpError::MalformedBody("expected value at line 1 column 1".into()).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_of(response).await["error_code"], 400);
    }
}
