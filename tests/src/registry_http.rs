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

/// A compatibility case of the schema crates' data files (crates/*/tests/data/compat): can
/// `reader` (the new schema) read what `writer` (the old one) wrote?
#[derive(Debug)]
pub struct CompatCase {
    pub name: String,
    pub writer: String,
    pub reader: String,
    pub compatible: bool,
}

/// The cases of every `*.json` file in `dir` (each an array of cases, or one), except those
/// with dependencies (their files would have to be registered as references first; the crates'
/// own tests run them).
pub fn compat_cases(dir: &str) -> Vec<CompatCase> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let list = match value {
            Value::Array(list) => list,
            one => vec![one],
        };
        for case in list {
            let has = |key: &str| case[key].as_array().is_some_and(|list| !list.is_empty());
            if has("writer_dependencies") || has("reader_dependencies") {
                continue;
            }
            let text_of = |key: &str| match &case[key] {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            cases.push(CompatCase {
                name: case["name"].as_str().unwrap_or("?").to_owned(),
                writer: text_of("writer"),
                reader: text_of("reader"),
                compatible: case["compatible"].as_bool().unwrap(),
            });
        }
    }
    cases
}

/// Checks every case at every level over the HTTP API, with schemas of `schema_type`:
/// BACKWARD and BACKWARD_TRANSITIVE test the reader against the registered writer; FORWARD and
/// FORWARD_TRANSITIVE, with the reader registered, test the writer against it (the same
/// question); FULL and FULL_TRANSITIVE include those tests (so an incompatible case is
/// incompatible there too); NONE accepts anything.
pub async fn check_at_every_level(api: &Api, schema_type: &str, cases: &[CompatCase]) {
    let body = |schema: &str| json!({ "schemaType": schema_type, "schema": schema });
    for (index, case) in cases.iter().enumerate() {
        let checks: [(&str, &str, &str); 2] = [
            ("old", &case.writer, &case.reader),
            ("new", &case.reader, &case.writer),
        ];
        for (side, registered, candidate) in checks {
            let subject = format!("case-{index}-{side}");
            let (status, answer) = api
                .put(
                    &format!("/config/{subject}"),
                    json!({"compatibility": "NONE"}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            let (status, answer) = api
                .post(&format!("/subjects/{subject}/versions"), body(registered))
                .await;
            assert_eq!(status, StatusCode::OK, "{}: {answer}", case.name);
            let levels: &[(&str, Option<bool>)] = if side == "old" {
                &[
                    ("BACKWARD", Some(case.compatible)),
                    ("BACKWARD_TRANSITIVE", Some(case.compatible)),
                    ("FULL", (!case.compatible).then_some(false)),
                    ("NONE", Some(true)),
                ]
            } else {
                &[
                    ("FORWARD", Some(case.compatible)),
                    ("FORWARD_TRANSITIVE", Some(case.compatible)),
                    ("FULL_TRANSITIVE", (!case.compatible).then_some(false)),
                ]
            };
            for (level, expected) in levels {
                let Some(expected) = expected else { continue };
                let (status, _) = api
                    .put(
                        &format!("/config/{subject}"),
                        json!({"compatibility": level}),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK);
                let (status, answer) = api
                    .post(
                        &format!("/compatibility/subjects/{subject}/versions?verbose=true"),
                        body(candidate),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{}: {answer}", case.name);
                assert_eq!(
                    answer["is_compatible"],
                    json!(expected),
                    "case '{}' at {level}: {answer}",
                    case.name
                );
            }
        }
    }
}
