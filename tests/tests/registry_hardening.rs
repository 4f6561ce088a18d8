//! The registry under hostile or broken input (issue 15, the operational side): IMPORT ids and
//! versions past what the registry keeps room for are refused with a clear error and later
//! registrations keep working. After each, the registry answers a normal request.

#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tonic_types::StatusExt;
use tributary_proto::registry::v1 as pb;
use tributary_registry::registry::{MAX_IMPORT_ID, MAX_IMPORT_VERSION};
use tributary_tests::{TestRegistry, error_code, security};

const V1: &str = "application/vnd.schemaregistry.v1+json";

async fn post(registry_http: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let response = security::admin_http_client()
        .post(format!("{registry_http}{path}"))
        .header(CONTENT_TYPE, V1)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn put(registry_http: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let response = security::admin_http_client()
        .put(format!("{registry_http}{path}"))
        .header(CONTENT_TYPE, V1)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn get(registry_http: &str, path: &str) -> (StatusCode, Value) {
    let response = security::admin_http_client()
        .get(format!("{registry_http}{path}"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn record(name: &str) -> String {
    json!({"type": "record", "name": name, "fields": [{"name": "a", "type": "int"}]}).to_string()
}

/// A normal registration and read, over both APIs: the registry is healthy.
async fn answers_normally(registry: &TestRegistry, subject: &str) {
    let base = registry.http_url();
    let (status, body) = post(
        &base,
        &format!("/subjects/{subject}/versions"),
        json!({"schema": record("Healthy")}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["id"].as_i64().unwrap();
    let (status, body) = get(&base, &format!("/schemas/ids/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let found = registry
        .client()
        .await
        .get_schema(pb::GetSchemaRequest { id: id as i32 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.id as i64, id);
}

#[tokio::test]
async fn import_ids_and_versions_beyond_the_maxima_are_refused_and_later_registrations_work() {
    let registry = TestRegistry::start().await;
    let base = registry.http_url();
    assert_eq!(
        put(&base, "/mode", json!({"mode": "IMPORT"})).await.0,
        StatusCode::OK
    );

    // The id Postgres' sequence ends at: refused, naming the limit.
    let (status, body) = post(
        &base,
        "/subjects/imported/versions",
        json!({"schema": record("A"), "id": i32::MAX, "version": 1}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error_code"].as_u64()),
        (422, Some(42205)),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&MAX_IMPORT_ID.to_string()) && message.contains("2147483647"),
        "{message}"
    );
    // And over gRPC, negative ids too.
    let mut client = registry.client().await;
    for id in [i32::MAX, MAX_IMPORT_ID + 1, -5] {
        let status = client
            .register_schema(pb::RegisterSchemaRequest {
                subject: "imported".to_owned(),
                schema: record("A"),
                id,
                ..Default::default()
            })
            .await
            .expect_err("out of range");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert_eq!(error_code(&status), Some(42205), "{status:?}");
        assert_eq!(
            status.get_details_error_info().unwrap().reason,
            "ID_OUT_OF_RANGE"
        );
    }
    // The version the column ends at: refused, naming the limit.
    let (status, body) = post(
        &base,
        "/subjects/imported/versions",
        json!({"schema": record("A"), "id": 7, "version": i32::MAX}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error_code"].as_u64()),
        (422, Some(42202)),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&MAX_IMPORT_VERSION.to_string()),
        "{body}"
    );

    // The largest id and version an import may give are taken...
    let (status, body) = post(
        &base,
        "/subjects/imported/versions",
        json!({"schema": record("A"), "id": MAX_IMPORT_ID, "version": MAX_IMPORT_VERSION}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], json!(MAX_IMPORT_ID));

    // ... and registrations after the import still get new ids and versions.
    assert_eq!(
        put(&base, "/mode", json!({"mode": "READWRITE"})).await.0,
        StatusCode::OK
    );
    let (status, body) = post(
        &base,
        "/subjects/imported/versions",
        json!({"schema": json!({"type": "record", "name": "A", "fields": [
            {"name": "a", "type": "int"}, {"name": "b", "type": "int", "default": 0}]}).to_string()}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], json!(i64::from(MAX_IMPORT_ID) + 1));
    let (_, latest) = get(&base, "/subjects/imported/versions/latest").await;
    assert_eq!(latest["version"], json!(i64::from(MAX_IMPORT_VERSION) + 1));
    for index in 0..3 {
        let (status, body) = post(
            &base,
            &format!("/subjects/after-import-{index}/versions"),
            json!({"schema": record(&format!("After{index}"))}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    answers_normally(&registry, "healthy").await;
    registry.stop().await.unwrap();
}
