//! Operational behaviour: health follows Postgres (readiness and `dependency.postgres`; liveness
//! stays SERVING), reflection serves both protocol versions,
//! SIGTERM drains and exits cleanly.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;
use tributary_proto::registry::v1 as pb;
use tributary_tests::{CuttableProxy, RegistryProcess, TestDatabase, TestRegistry};

async fn status_of(addr: std::net::SocketAddr, service: &str) -> ServingStatus {
    let channel = tributary_tests::security::admin_channel(addr).await;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(response.status).unwrap()
}

async fn wait_for_status(addr: std::net::SocketAddr, wanted: ServingStatus, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let status = status_of(addr, "tributary.registry.v1.RegistryService").await;
        if status == wanted {
            assert_eq!(
                status_of(addr, "").await,
                wanted,
                "the overall status agrees"
            );
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {status:?} after {within:?}, wanted {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn health_is_not_serving_while_postgres_is_unreachable() {
    let database = TestDatabase::create().await;
    TestRegistry::start_on(database.clone())
        .await
        .stop()
        .await
        .unwrap();

    let postgres: std::net::SocketAddr = {
        let url = &database.url;
        let host_port = url.split('@').nth(1).unwrap().split('/').next().unwrap();
        tokio::net::lookup_host(host_port)
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    let proxy = CuttableProxy::start(postgres).await;
    let proxied_url = database
        .url
        .replace(&postgres.to_string(), &proxy.addr.to_string())
        .replace("localhost", "127.0.0.1");
    let registry = TestRegistry::start_on(tributary_tests::TestDatabase {
        url: proxied_url,
        name: database.name.clone(),
    })
    .await;
    wait_for_status(
        registry.addr,
        ServingStatus::Serving,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        status_of(registry.addr, "dependency.postgres").await,
        ServingStatus::Serving
    );
    assert_eq!(
        status_of(registry.addr, "liveness").await,
        ServingStatus::Serving
    );

    // The outage is noticed within a second.
    proxy.cut();
    wait_for_status(
        registry.addr,
        ServingStatus::NotServing,
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(
        status_of(registry.addr, "dependency.postgres").await,
        ServingStatus::NotServing
    );
    assert_eq!(
        status_of(registry.addr, "liveness").await,
        ServingStatus::Serving,
        "liveness does not follow a dependency"
    );
    let metrics = tributary_tests::scrape(registry.metrics_addr).await;
    assert_eq!(
        tributary_tests::sample(&metrics, "tributary_ready", &[]),
        Some(0.0)
    );
    assert_eq!(
        tributary_tests::sample(
            &metrics,
            "tributary_dependency_up",
            &[("dependency", "postgres")]
        ),
        Some(0.0)
    );
    // While Postgres is away, a call that needs it fails with UNAVAILABLE, not INTERNAL, and
    // at once, rather than after waiting for a pooled connection (2 s here).
    let mut client = registry.client().await;
    let asked = std::time::Instant::now();
    let status = client
        .register_schema(pb::RegisterSchemaRequest {
            subject: "s".into(),
            schema: r#""string""#.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let answered_in = asked.elapsed();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        answered_in < Duration::from_millis(500),
        "UNAVAILABLE after {answered_in:?}"
    );
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.metadata["error_code"], "50003", "{status:?}");
    assert_eq!(
        status.get_details_retry_info().and_then(|r| r.retry_delay),
        Some(Duration::from_secs(1)),
        "{status:?}"
    );
    // Over HTTP: Confluent's retriable 50003 with a 503 and Retry-After, as its clients retry.
    let response = tributary_tests::security::admin_http_client()
        .get(format!("{}/subjects", registry.http_url()))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").cloned();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry_after.as_ref().map(|v| v.as_bytes()), Some(&b"1"[..]));
    assert_eq!(body["error_code"], 50003, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("the database is unavailable"),
        "{message}"
    );

    proxy.restore();
    wait_for_status(
        registry.addr,
        ServingStatus::Serving,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        status_of(registry.addr, "dependency.postgres").await,
        ServingStatus::Serving
    );
    assert_eq!(
        status_of(registry.addr, "liveness").await,
        ServingStatus::Serving
    );
    client
        .register_schema(pb::RegisterSchemaRequest {
            subject: "s".into(),
            schema: r#""string""#.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn reflection_serves_v1_and_v1alpha() {
    use tokio_stream::StreamExt;
    let registry = TestRegistry::start().await;
    let channel = tributary_tests::security::admin_channel(registry.addr).await;

    let mut v1 = tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
        channel.clone(),
    );
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut responses = v1
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(
        tonic_reflection::pb::v1::server_reflection_response::MessageResponse::ListServicesResponse(
            list,
        ),
    ) = response.message_response
    else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"tributary.registry.v1.RegistryService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    // Only what this process serves: the descriptor set also holds the messaging API.
    assert!(
        !names.iter().any(|name| name.contains("MessagingService")),
        "{names:?}"
    );

    let mut v1alpha =
        tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient::new(
            channel,
        );
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut responses = v1alpha
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    assert!(
        responses.next().await.unwrap().is_ok(),
        "grpcurl 1.8 speaks v1alpha"
    );
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly_even_with_open_watch_streams() {
    let database = TestDatabase::create().await;
    let process = RegistryProcess::spawn(&database.url).await;
    let mut client = tributary_tests::connect(process.addr).await;
    let mut stream = client
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let started = std::time::Instant::now();
    let status = process.terminate().await;
    assert!(status.success(), "exit status {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "drain took {:?}",
        started.elapsed()
    );
    // The watch stream ended with a status rather than hanging.
    use tokio_stream::StreamExt;
    let mut ended = false;
    while let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(2), stream.next()).await {
        if item.is_err() {
            ended = true;
            break;
        }
    }
    assert!(ended, "the watch stream was ended with a status");
}

#[tokio::test]
async fn the_registry_reaches_postgres_over_tls_when_the_url_asks_for_it() {
    let mut database = TestDatabase::create().await;
    database.url = format!("{}?sslmode=require", database.url);

    // sqlx really negotiates TLS for such a URL (the stack's cluster has a self-signed cert)...
    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(encrypted, "sslmode=require gave an unencrypted connection");
    pool.close().await;

    // ...and the registry serves on it: migrations, a registration, a read back.
    let registry = TestRegistry::start_on(database).await;
    let mut client = registry.client().await;
    let registered = client
        .register_schema(pb::RegisterSchemaRequest {
            subject: "tls-value".to_owned(),
            schema: r#""string""#.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let fetched = client
        .get_schema(pb::GetSchemaRequest {
            id: registered.id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.schema, r#""string""#);
    registry.stop().await.unwrap();
}
