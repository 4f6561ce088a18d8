//! A client of the registry's Confluent-compatible HTTP API for tests: requests as the `admin`
//! user over TLS, answers as (status, JSON body), and Confluent's error bodies asserted.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::TestRegistry;

/// Confluent's media type.
pub const V1: &str = "application/vnd.schemaregistry.v1+json";

/// A small client for the HTTP API, answering (status, JSON body).
#[derive(Debug)]
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(registry: &TestRegistry) -> Self {
        Self {
            client: crate::security::admin_http_client(),
            base: registry.http_url(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.client.delete(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.client
                .post(self.url(path))
                .header(CONTENT_TYPE, V1)
                .body(body.to_string()),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.client
                .put(self.url(path))
                .header(CONTENT_TYPE, V1)
                .body(body.to_string()),
        )
        .await
    }

    pub async fn register(&self, subject: &str, schema: &str) -> i32 {
        let (status, body) = self
            .post(
                &format!("/subjects/{subject}/versions"),
                json!({ "schema": schema }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["id"].as_i64().unwrap() as i32
    }
}

/// Asserts a Confluent error: the HTTP status and `{"error_code": code, "message": ...}`.
pub fn assert_error(response: &(StatusCode, Value), status: u16, code: u64) {
    assert_eq!(response.0.as_u16(), status, "status of {}", response.1);
    assert_eq!(
        response.1["error_code"].as_u64(),
        Some(code),
        "error_code of {}",
        response.1
    );
    assert!(
        response.1["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "a message in {}",
        response.1
    );
}
