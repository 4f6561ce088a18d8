//! The registry under hostile or broken input (issue 15, the operational side): IMPORT ids and
//! versions past what the registry keeps room for are refused with a clear error and later
//! registrations keep working; internal errors reach clients as a stable message with a
//! correlation id, never as database text; connections are capped per listener (below the
//! open-file limit), idle and half-sent ones are closed. After each, the registry answers a
//! normal request.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_types::StatusExt;
use tributary_proto::registry::v1 as pb;
use tributary_registry::registry::{MAX_IMPORT_ID, MAX_IMPORT_VERSION};
use tributary_tests::{RegistryProcess, TestDatabase, TestRegistry, error_code, flood, security};

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
        .get_schema(pb::GetSchemaRequest {
            id: id as i32,
            ..Default::default()
        })
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

#[tokio::test]
async fn internal_errors_carry_a_correlation_id_and_never_the_database_text() {
    let database = TestDatabase::create().await;
    let dir = security::pki()
        .dir
        .join(tributary_tests::unique_name("correlation"));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("registry.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let registry = RegistryProcess::spawn_logging_to(&database.url, &[], Some(log)).await;
    let base = format!("https://{}", registry.http_addr);
    let (status, _) = post(
        &base,
        "/subjects/s/versions",
        json!({"schema": record("Before")}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // A table the registry needs goes away behind its back: every query on it fails with
    // Postgres' "relation ... does not exist".
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&database.url)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE subject_versions RENAME TO subject_versions_away")
        .execute(&mut admin)
        .await
        .unwrap();

    let (status, body) = get(&base, "/subjects").await;
    assert_eq!(status.as_u16(), 500, "{body}");
    assert_eq!(body["error_code"], json!(50001), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        !message.contains("subject_versions") && !message.contains("does not exist"),
        "database text reached the client: {message}"
    );
    let http_id = correlation_id_in(message);

    let status = tributary_tests::connect(registry.addr)
        .await
        .list_subjects(pb::ListSubjectsRequest::default())
        .await
        .expect_err("the table is gone");
    assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
    assert!(
        !status.message().contains("subject_versions"),
        "database text reached the client: {status:?}"
    );
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.metadata["error_code"], "50001");
    let grpc_id = info.metadata["correlation_id"].clone();
    assert!(status.message().contains(&grpc_id), "{status:?}");
    assert_ne!(http_id, grpc_id);

    sqlx::query("ALTER TABLE subject_versions_away RENAME TO subject_versions")
        .execute(&mut admin)
        .await
        .unwrap();
    // The details are in the log, under the ids the clients were given.
    let logged = std::fs::read_to_string(&log_path).unwrap();
    for id in [&http_id, &grpc_id] {
        let line = logged
            .lines()
            .find(|line| line.contains(id.as_str()))
            .unwrap_or_else(|| panic!("no log line with {id}:\n{logged}"));
        assert!(line.contains("subject_versions"), "{line}");
    }

    // And the registry answers normally again.
    let (status, body) = get(&base, "/subjects").await;
    assert_eq!((status, body), (StatusCode::OK, json!(["s"])));
    registry.terminate().await;
}

/// The correlation id a message names ("... (correlation id 0123456789abcdef: ...").
fn correlation_id_in(message: &str) -> String {
    let id: String = message
        .split("correlation id ")
        .nth(1)
        .unwrap_or_else(|| panic!("no correlation id in {message}"))
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(id.len(), 16, "{message}");
    id
}

/// How long a test waits for the server to close what it should close (the timeouts are 10 s
/// at most).
const CLOSED_WITHIN: Duration = Duration::from_secs(60);

#[tokio::test]
async fn connections_past_the_cap_are_refused_and_idle_or_half_sent_ones_closed() {
    let registry = TestRegistry::start_with(TestDatabase::create().await, |settings| {
        settings.max_connections = 20;
        // Long enough that nothing is closed while the test opens its connections.
        settings.header_read_timeout_ms = 10_000;
        settings.idle_timeout_ms = 10_000;
    })
    .await;

    // HTTP: 30 connections at once, half of them sending half a request, the others nothing.
    let half_request = b"GET /subjects HTTP/1.1\r\nHost: localhost\r\n";
    let mut held = flood::open_tls(registry.http_addr, b"http/1.1", 15, half_request).await;
    held.extend(flood::open_tls(registry.http_addr, b"http/1.1", 15, b"").await);
    assert_eq!(
        held.len(),
        20,
        "the cap admits 20 connections, closes the rest"
    );
    // A normal request meanwhile is refused at once (its connection closed), not left waiting.
    let refused = tokio::time::timeout(
        Duration::from_secs(10),
        security::admin_http_client()
            .get(format!("{}/subjects", registry.http_url()))
            .send(),
    )
    .await
    .expect("refused without waiting");
    assert!(refused.is_err(), "{refused:?}");
    // The refusals are counted per listener, next to the cap and the connections open.
    let metrics = tributary_tests::scrape(registry.metrics_addr).await;
    let value = |name: &str| {
        metrics
            .lines()
            .find(|line| line.starts_with(name) && line.contains(r#"listener="http""#))
            .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} for the http listener in:\n{metrics}"))
    };
    assert_eq!(value("tributary_connections_limit"), 20.0);
    assert_eq!(value("tributary_connections_open"), 20.0);
    assert!(value("tributary_connections_refused_total") >= 10.0);
    // The gRPC listener has its own cap: it answers.
    registry
        .client()
        .await
        .list_subjects(pb::ListSubjectsRequest::default())
        .await
        .unwrap();

    // gRPC: 25 connections that complete TLS and send nothing.
    let mut held_grpc = flood::open_tls(registry.addr, b"h2", 25, b"").await;
    // (The test's own clients hold a connection or two.)
    assert!(
        (15..=20).contains(&held_grpc.len()),
        "{} gRPC connections admitted",
        held_grpc.len()
    );

    // Every one is closed by the server: the half-sent requests after the header-read timeout,
    // the silent ones after the idle timeout.
    assert_eq!(flood::count_closed(&mut held, CLOSED_WITHIN).await, 20);
    assert_eq!(
        flood::count_closed(&mut held_grpc, CLOSED_WITHIN).await,
        held_grpc.len()
    );

    answers_normally(&registry, "after-flood").await;
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn the_metrics_listener_caps_its_connections_and_closes_silent_ones() {
    let registry = TestRegistry::start_with(TestDatabase::create().await, |settings| {
        settings.header_read_timeout_ms = 3_000;
    })
    .await;
    let cap = tributary_telemetry::metrics::MAX_CONNECTIONS;

    // Connections that send nothing: the cap admits `cap`, the rest are closed at once.
    let mut held = flood::open_tcp(registry.metrics_addr, cap + 40).await;
    assert_eq!(held.len(), cap + 40);
    let closed_at_once = flood::count_closed(&mut held, Duration::from_millis(1_000)).await;
    assert_eq!(closed_at_once, 40, "closed at accept past the cap of {cap}");
    // The API listeners have their own caps: the registry answers meanwhile.
    answers_normally(&registry, "during-metrics-flood").await;
    // The admitted ones are closed by the header-read timeout.
    assert_eq!(
        flood::count_closed(&mut held, CLOSED_WITHIN).await,
        cap + 40
    );

    let metrics = tributary_tests::scrape(registry.metrics_addr).await;
    let value = |name: &str| {
        metrics
            .lines()
            .find(|line| line.starts_with(name) && line.contains(r#"listener="metrics""#))
            .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} for the metrics listener in:\n{metrics}"))
    };
    assert_eq!(value("tributary_connections_limit"), cap as f64);
    assert_eq!(value("tributary_connections_refused_total"), 40.0);
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn a_connection_flood_leaves_the_registry_descriptors_under_a_low_open_file_limit() {
    // The test holds hundreds of sockets itself.
    tributary_net::fds::raise_open_file_limit();
    let database = TestDatabase::create().await;
    // 400 descriptors: the caps (4,096 per listener asked) are fitted to (400 - 256 - 10) / 2.
    let registry = RegistryProcess::spawn_limited(
        &database.url,
        &[
            ("REGISTRY_HEADER_READ_TIMEOUT_MS", "5000"),
            ("TLS_HANDSHAKE_TIMEOUT_MS", "5000"),
        ],
        None,
        Some(400),
    )
    .await;

    let mut flood = flood::open_tcp(registry.http_addr, 600).await;
    let (_, descriptors) = tributary_tests::threads_and_descriptors(registry.pid());
    assert!(descriptors < 400, "{descriptors} descriptors open");
    // The registry still has descriptors for everything else: a gRPC call that reads Postgres.
    tributary_tests::connect(registry.addr)
        .await
        .list_subjects(pb::ListSubjectsRequest::default())
        .await
        .unwrap();
    // The admitted ones are closed once idle; the others were closed at once.
    assert_eq!(
        flood::count_closed(&mut flood, CLOSED_WITHIN).await,
        flood.len()
    );

    let base = format!("https://{}", registry.http_addr);
    let (status, body) = post(
        &base,
        "/subjects/after-flood/versions",
        json!({"schema": record("AfterFlood")}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    registry.terminate().await;
}

#[tokio::test]
async fn a_request_whose_body_trickles_is_answered_when_the_request_timeout_passes() {
    let registry = TestRegistry::start_with(TestDatabase::create().await, |settings| {
        settings.request_timeout_ms = 1000;
    })
    .await;
    let mut stream = security::tls_connect(registry.http_addr, b"http/1.1")
        .await
        .unwrap();
    // Headers promising 100 bytes of body, then 10 of them, then nothing.
    let request = format!(
        "POST /subjects/slow/versions HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\nContent-Type: {V1}\r\nContent-Length: 100\r\n\r\n{{\"schema\":",
        security::admin_authorization()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(CLOSED_WITHIN, stream.read_to_end(&mut answer))
        .await
        .expect("answered and closed")
        .ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
    assert!(answer.contains("\"error_code\":50002"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    answers_normally(&registry, "after-slow").await;
    registry.stop().await.unwrap();
}
