//! Per-principal limits: a request rate and a number of open streams per principal, from its
//! roles in the policy or the service's defaults, so that one tenant cannot starve the others.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tributary_proto::registry::v1 as rpb;
use tributary_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tributary_security::client::CallCredentials;
use tributary_tests::security::{self, client_tls, pki};
use tributary_tests::{TestDatabase, TestRegistry, unique_name};

/// A policy: `admin` unlimited, `limited` (a JWT subject) at 5 requests per second and 2
/// streams.
fn policy() -> std::path::PathBuf {
    let path = pki().dir.join(format!("{}.yaml", unique_name("limits")));
    std::fs::write(
        &path,
        r#"
roles:
  admin:
    rules: [{allow: ["*"], on: ["*"]}]
  limited:
    rules: [{allow: ["*"], on: ["*"]}]
    limits: {requests_per_second: 5, burst: 5, concurrent_streams: 2}
bindings:
  - {role: admin, to: ["user:admin"]}
  - {role: limited, to: ["user:limited"]}
"#,
    )
    .unwrap();
    path
}

async fn client_as_limited(
    registry: &TestRegistry,
) -> RegistryServiceClient<tributary_tests::AuthChannel> {
    let mut value =
        tonic::metadata::MetadataValue::try_from(format!("Bearer {}", pki().jwt("limited")))
            .unwrap();
    value.set_sensitive(true);
    RegistryServiceClient::new(
        security::channel_with(registry.addr, client_tls(), CallCredentials::Basic(value))
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn a_principal_over_its_rate_is_told_to_retry_and_others_are_not_slowed() {
    let policy = policy();
    let registry = TestRegistry::start_with(TestDatabase::create().await, |settings| {
        settings.security.authz_policy_file = Some(policy.clone());
    })
    .await;
    let mut limited = client_as_limited(&registry).await;
    let mut refused = Vec::new();
    for _ in 0..20 {
        if let Err(status) = limited
            .list_subjects(rpb::ListSubjectsRequest::default())
            .await
        {
            refused.push(status);
        }
    }
    assert!(
        refused.len() >= 10,
        "{} of 20 refused: a burst of 5 at 5/s",
        refused.len()
    );
    let status = &refused[0];
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("over its rate of 5 requests per second"),
        "{status:?}"
    );
    use tonic_types::StatusExt;
    assert!(status.get_details_retry_info().is_some(), "{status:?}");
    assert_eq!(
        status
            .get_details_error_info()
            .and_then(|info| info.metadata.get("error_code").cloned())
            .as_deref(),
        Some("42901")
    );

    // Another principal is not limited by it.
    let mut admin = registry.client().await;
    for _ in 0..30 {
        admin
            .list_subjects(rpb::ListSubjectsRequest::default())
            .await
            .unwrap();
    }

    // Over HTTP: 429 with Retry-After and Confluent's shape.
    let http = security::http_client();
    let mut too_many = None;
    for _ in 0..20 {
        let response = http
            .get(format!("{}/subjects", registry.http_url()))
            .bearer_auth(pki().jwt("limited"))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            too_many = Some(response);
            break;
        }
    }
    let response = too_many.expect("429 within 20 requests");
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], 42901, "{body}");

    // And once the bucket refills, the principal is served again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    limited
        .list_subjects(rpb::ListSubjectsRequest::default())
        .await
        .unwrap();
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn a_principal_at_its_stream_limit_opens_no_more_until_one_ends() {
    use tokio_stream::StreamExt;
    let policy = policy();
    let registry = TestRegistry::start_with(TestDatabase::create().await, |settings| {
        settings.security.authz_policy_file = Some(policy.clone());
    })
    .await;
    let mut limited = client_as_limited(&registry).await;
    let first = limited
        .watch(rpb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let second = limited
        .watch(rpb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let third = limited
        .watch(rpb::WatchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(third.code(), tonic::Code::ResourceExhausted, "{third:?}");
    assert!(third.message().contains("has 2 streams open"), "{third:?}");
    // Unary calls are not streams: still served (within the rate).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    limited
        .list_subjects(rpb::ListSubjectsRequest::default())
        .await
        .unwrap();
    // A stream that ends gives its slot back.
    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Ok(stream) = limited.watch(rpb::WatchRequest::default()).await {
            reopened = Some(stream.into_inner());
            break;
        }
    }
    let mut reopened = reopened.expect("a slot is given back when a stream ends");
    // The streams still work: a change reaches them.
    registry
        .client()
        .await
        .set_compatibility_level(rpb::SetCompatibilityLevelRequest {
            subject: "s".to_owned(),
            level: rpb::CompatibilityLevel::Full as i32,
        })
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), reopened.next())
        .await
        .unwrap();
    assert!(matches!(event, Some(Ok(_))), "{event:?}");
    drop(second);
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn default_limits_apply_to_principals_whose_roles_set_none() {
    let registry = TestRegistry::start_with(TestDatabase::create().await, |settings| {
        settings.security.limit_requests_per_second = 3;
        settings.security.limit_burst = 3;
    })
    .await;
    // The test policy grants everyone everything and sets no limits: the defaults apply.
    let mut admin = registry.client().await;
    let mut refused = 0;
    for _ in 0..15 {
        if admin
            .list_subjects(rpb::ListSubjectsRequest::default())
            .await
            .is_err()
        {
            refused += 1;
        }
    }
    assert!(
        refused >= 8,
        "{refused} of 15 refused at 3/s with a burst of 3"
    );
    registry.stop().await.unwrap();
}
