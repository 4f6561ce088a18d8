//! Authentication as a hostile or careless client meets it: malformed and oversized headers,
//! garbage and forged tokens, a JWKS fetched from an https URL (and fetched again when the
//! identity provider rolls its keys), the messaging service's own identity towards the registry
//! (client certificate, bearer token file), startup refusals of unsafe settings, and logs that
//! never carry a secret.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tributary_proto::messaging::v1 as pb;
use tributary_proto::registry::v1 as registry_pb;
use tributary_security::client::CallCredentials;
use tributary_testkit::SigningKey;
use tributary_tests::security::{self, AUDIENCE, ISSUER, claims, client_tls, pki};
use tributary_tests::{
    RegistryProcess, TestDatabase, TestMessaging, TestRegistry, free_port, unique_name,
};

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT with any header, claims and signature bytes.
fn forged(header: serde_json::Value, claims: &serde_json::Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes()),
        b64url(signature)
    )
}

/// Authorization values a hostile client might send, and the refusal each must get.
fn hostile_authorizations() -> Vec<(String, &'static str)> {
    let pki = pki();
    let good = claims("ann", ISSUER, AUDIENCE, 3600);
    let genuine = pki.jwt("ann");
    let (head, rest) = genuine.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let mut tampered_claims = good.clone();
    tampered_claims["sub"] = "admin".into();
    vec![
        ("Basic".to_owned(), "malformed Authorization header"),
        (
            "Basic !!!!".to_owned(),
            "the basic credentials are not valid base64",
        ),
        (
            format!("Basic {}", b64url(b"no-colon")),
            "the basic credentials are not valid base64",
        ),
        (
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("no-colon")
            ),
            "the basic credentials are not `user:password`",
        ),
        (
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(":password")
            ),
            "the basic credentials have no user name",
        ),
        (
            "Digest username=\"admin\"".to_owned(),
            "unsupported authorization scheme (Basic or Bearer)",
        ),
        ("Bearer".to_owned(), "malformed Authorization header"),
        (
            "Bearer garbage".to_owned(),
            "the bearer token is not a well-formed JWT",
        ),
        (
            "Bearer a.b.c".to_owned(),
            "the bearer token is not a well-formed JWT",
        ),
        (
            format!(
                "Bearer {}",
                forged(serde_json::json!({"alg": "none", "typ": "JWT"}), &good, b"")
            ),
            "the bearer token is not a well-formed JWT",
        ),
        (
            format!(
                "Bearer {}",
                forged(
                    serde_json::json!({"alg": "HS256", "kid": security::KEY_ID}),
                    &good,
                    b"mac"
                )
            ),
            "the bearer token's algorithm is not accepted (RS*, PS*, ES256, ES384 or EdDSA)",
        ),
        (
            // Claims changed after signing.
            format!(
                "Bearer {head}.{}.{signature}",
                b64url(tampered_claims.to_string().as_bytes())
            ),
            "the bearer token's signature does not verify",
        ),
        (
            format!(
                "Bearer {}",
                forged(
                    serde_json::json!({"alg": "ES256", "kid": "who-knows"}),
                    &good,
                    &[7; 64]
                )
            ),
            "no key of the JWKS matches the bearer token's key id and algorithm",
        ),
        (
            format!(
                "Bearer {}",
                pki.sign(
                    &serde_json::json!({"iss": ISSUER, "aud": AUDIENCE, "exp": 4_000_000_000u64})
                )
            ),
            "the bearer token has no valid 'sub' claim",
        ),
        (
            format!("Basic {}", "A".repeat(64 * 1024)),
            "the Authorization header is longer than 8192 bytes",
        ),
    ]
}

#[tokio::test]
async fn malformed_oversized_and_forged_credentials_get_clean_refusals_and_the_service_stays_healthy()
 {
    let registry = TestRegistry::start().await;
    let http = security::http_client();
    let mut failures = Vec::new();
    for (authorization, expected) in hostile_authorizations() {
        // HTTP
        let response = http
            .get(format!("{}/subjects", registry.http_url()))
            .header("authorization", &authorization)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if status != 401 || body != serde_json::json!({"error_code": 40101, "message": expected}) {
            failures.push(format!("HTTP {:.40}: {status} {body}", authorization));
        }
        // gRPC
        let mut value = tonic::metadata::MetadataValue::try_from(authorization.as_str()).unwrap();
        value.set_sensitive(true);
        let channel =
            security::channel_with(registry.addr, client_tls(), CallCredentials::Basic(value))
                .await
                .unwrap();
        let outcome =
            tributary_proto::registry::v1::registry_service_client::RegistryServiceClient::new(
                channel,
            )
            .list_subjects(registry_pb::ListSubjectsRequest::default())
            .await;
        match outcome {
            Err(status)
                if status.code() == tonic::Code::Unauthenticated
                    && status.message() == expected => {}
            // Over HTTP/2, a header list this large never reaches the service: the connection
            // is refused with GOAWAY ENHANCE_YOUR_CALM, which the client reports as
            // RESOURCE_EXHAUSTED.
            Err(status)
                if authorization.len() > 16 * 1024
                    && status.code() == tonic::Code::ResourceExhausted => {}
            other => failures.push(format!("gRPC {:.40}: {other:?}", authorization)),
        }
    }
    // Two Authorization headers, and bytes that are not text.
    let response = http
        .get(format!("{}/subjects", registry.http_url()))
        .header("authorization", security::admin_authorization())
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["message"],
        "more than one Authorization header"
    );
    let response = http
        .get(format!("{}/subjects", registry.http_url()))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Basic \xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // 64 KiB of another header: refused by the HTTP layer itself (431) or answered 401, never
    // a 500 and never a crash.
    let response = http
        .get(format!("{}/subjects", registry.http_url()))
        .header("x-junk", "j".repeat(64 * 1024))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(response.status().as_u16(), 401 | 431),
        "{}",
        response.status()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Healthy: a good caller is served at once over both APIs.
    registry
        .client()
        .await
        .list_subjects(registry_pb::ListSubjectsRequest::default())
        .await
        .unwrap();
    let answer = security::admin_http_client()
        .get(format!("{}/subjects", registry.http_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn a_refusal_of_a_request_with_an_unread_body_closes_the_http_1_1_connection() {
    let registry = TestRegistry::start().await;
    let mut stream = security::tls_connect(registry.http_addr, b"http/1.1")
        .await
        .unwrap();
    let body = "x".repeat(100_000);
    let request = format!(
        "POST /subjects/s/versions HTTP/1.1\r\nHost: registry\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let _ = stream.write_all(body.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).to_lowercase();
    assert!(text.starts_with("http/1.1 401"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    registry.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// A JWKS at an https URL

/// A tiny HTTPS server answering every request with the current JWKS (certificate from the
/// test CA), counting the requests.
struct JwksServer {
    addr: SocketAddr,
    document: Arc<parking_lot::Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(document: String) -> Self {
        let pki = pki();
        let mut config =
            rustls::ServerConfig::builder_with_provider(tributary_security::tls::provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    tributary_security::tls::load_certificates(&pki.server_cert).unwrap(),
                    tributary_security::tls::load_private_key(&pki.server_key).unwrap(),
                )
                .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let document = Arc::new(parking_lot::Mutex::new(document));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (Arc::clone(&document), Arc::clone(&fetches));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, served, counted) =
                    (acceptor.clone(), Arc::clone(&served), Arc::clone(&counted));
                tokio::spawn(async move {
                    let Ok(mut stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&chunk[..n]),
                        }
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let body = served.lock().clone();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self {
            addr,
            document,
            fetches,
        }
    }

    fn url(&self) -> String {
        format!(
            "https://localhost:{}/.well-known/jwks.json",
            self.addr.port()
        )
    }
}

/// A signing key, as an identity provider rolls one in.
fn rolled_key(kid: &str) -> SigningKey {
    SigningKey::new(kid).unwrap()
}

fn sign_with(key: &SigningKey, kid: &str, subject: &str) -> String {
    key.sign_naming(kid, &claims(subject, ISSUER, AUDIENCE, 3600))
        .unwrap()
}

async fn list_subjects_as(addr: SocketAddr, token: &str) -> Result<(), tonic::Status> {
    let mut value = tonic::metadata::MetadataValue::try_from(format!("Bearer {token}")).unwrap();
    value.set_sensitive(true);
    let channel = security::channel_with(addr, client_tls(), CallCredentials::Basic(value))
        .await
        .unwrap();
    tributary_proto::registry::v1::registry_service_client::RegistryServiceClient::new(channel)
        .list_subjects(registry_pb::ListSubjectsRequest::default())
        .await
        .map(drop)
}

#[tokio::test]
async fn a_jwks_url_is_fetched_over_https_and_fetched_again_when_a_token_names_a_new_key() {
    let first_key = rolled_key("first");
    let first = first_key.jwk().clone();
    let server = JwksServer::start(serde_json::json!({"keys": [first]}).to_string()).await;
    let registry = TestRegistry::start_with(TestDatabase::create().await, |settings| {
        settings.security.auth_jwks_file = None;
        settings.security.auth_jwks_url = Some(server.url());
        settings.security.auth_jwks_ca_file = Some(pki().ca.clone());
        // Refetches on unknown key ids at most every tenth of this: 0.5 s.
        settings.security.auth_jwks_refresh_ms = 5_000;
    })
    .await;
    let mut waited = 0;
    while list_subjects_as(registry.addr, &sign_with(&first_key, "first", "ann"))
        .await
        .is_err()
    {
        waited += 1;
        assert!(waited < 100, "the first JWKS fetch did not happen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fetched = server.fetches.load(Ordering::SeqCst);
    assert_eq!(fetched, 1, "one fetch at startup");

    // The provider rolls in a second key; a token signed with it is accepted at once, by a
    // fetch its unknown key id triggers (well before the 5 s refresh).
    let second_key = rolled_key("second");
    let second = second_key.jwk().clone();
    *server.document.lock() = serde_json::json!({"keys": [first, second]}).to_string();
    tokio::time::sleep(Duration::from_millis(600)).await;
    list_subjects_as(registry.addr, &sign_with(&second_key, "second", "bob"))
        .await
        .unwrap();
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);

    // Made-up key ids do not make it hammer the provider.
    for index in 0..20 {
        let status = list_subjects_as(
            registry.addr,
            &sign_with(&second_key, &format!("made-up-{index}"), "eve"),
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }
    assert!(
        server.fetches.load(Ordering::SeqCst) <= 3,
        "{} fetches",
        server.fetches.load(Ordering::SeqCst)
    );
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn bearer_tokens_are_answered_unavailable_while_the_jwks_url_cannot_be_fetched() {
    let unreachable = format!("https://127.0.0.1:{}/jwks.json", free_port());
    let registry = TestRegistry::start_with(TestDatabase::create().await, |settings| {
        settings.security.auth_jwks_file = None;
        settings.security.auth_jwks_url = Some(unreachable);
        settings.security.auth_jwks_ca_file = Some(pki().ca.clone());
    })
    .await;
    let status = list_subjects_as(registry.addr, &pki().jwt("ann"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(
        status.message(),
        "the identity provider's keys (JWKS) cannot be fetched"
    );
    let response = security::http_client()
        .get(format!("{}/subjects", registry.http_url()))
        .bearer_auth(pki().jwt("ann"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["error_code"],
        50003
    );
    // Other methods are unaffected.
    registry
        .client()
        .await
        .list_subjects(registry_pb::ListSubjectsRequest::default())
        .await
        .unwrap();
    registry.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// The messaging service's own identity towards the registry

async fn produce_inline_avro(messaging: &TestMessaging) -> pb::ProduceResult {
    let topic = unique_name("identity");
    messaging.create_topic(&topic, 1).await;
    let schema = format!(
        r#"{{"type":"record","name":"R{}","fields":[{{"name":"a","type":"string"}}]}}"#,
        std::process::id()
    );
    let mut results = messaging
        .client()
        .await
        .produce(pb::ProduceRequest {
            records: vec![pb::ProducerRecord {
                topic,
                value: Some(pb::Payload {
                    kind: Some(pb::payload::Kind::Avro(pb::AvroPayload {
                        json: r#"{"a":"x"}"#.to_owned(),
                        schema: Some(pb::avro_payload::Schema::Inline(pb::InlineSchema {
                            schema,
                            ..Default::default()
                        })),
                    })),
                }),
                ..Default::default()
            }],
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    results.remove(0)
}

#[tokio::test]
async fn messaging_calls_the_registry_with_a_client_certificate_or_a_bearer_token_file() {
    let pki = pki();
    let dir = pki.dir.join(unique_name("identity"));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("messaging.pem"), dir.join("messaging.key"));
    pki.issue_client_certificate("messaging", &cert, &key);

    let by_certificate = TestMessaging::start_with(
        |settings| {
            settings.registry_client.registry_username = None;
            settings.registry_client.registry_password_file = None;
            settings.registry_client.registry_client_cert_file = Some(cert.clone());
            settings.registry_client.registry_client_key_file = Some(key.clone());
        },
        true,
    )
    .await;
    let result = produce_inline_avro(&by_certificate).await;
    assert!(
        matches!(result.result, Some(pb::produce_result::Result::Metadata(_))),
        "{result:?}"
    );
    by_certificate.stop().await.unwrap();

    let token_file = dir.join("token");
    std::fs::write(&token_file, pki.jwt("messaging")).unwrap();
    let by_token = TestMessaging::start_with(
        |settings| {
            settings.registry_client.registry_username = None;
            settings.registry_client.registry_password_file = None;
            settings.registry_client.registry_bearer_token_file = Some(token_file.clone());
            settings.security.files_reload_interval_ms = 100;
        },
        true,
    )
    .await;
    let result = produce_inline_avro(&by_token).await;
    assert!(
        matches!(result.result, Some(pb::produce_result::Result::Metadata(_))),
        "{result:?}"
    );
    // The token file is rewritten with a token the registry refuses: the next registry call
    // fails, naming the service's credentials, not the caller's.
    std::fs::write(
        &token_file,
        pki.sign(&claims("messaging", ISSUER, AUDIENCE, -600)),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let result = produce_inline_avro(&by_token).await;
    match result.result {
        Some(pb::produce_result::Result::Error(error)) => {
            assert_eq!(error.code, tonic::Code::Unavailable as i32, "{error:?}");
            assert!(
                error.message.contains("refused this service's credentials"),
                "{error:?}"
            );
        }
        other => panic!("expected the registry's refusal, got {other:?}"),
    }
    by_token.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Startup refusals and logs, with the real binaries

/// Runs `binary` with `env` (plus a fresh environment) until it exits (within 20 s); its exit
/// status and standard error.
async fn run_to_exit(binary: std::path::PathBuf, env: &[(&str, String)]) -> (bool, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("exits within 20 s")
    .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn unsafe_settings_are_refused_at_startup_naming_the_problem_never_the_secret() {
    let database = TestDatabase::create().await;
    let secure: Vec<(&str, String)> = security::server_env()
        .into_iter()
        .chain([
            ("DATABASE_URL", database.url.clone()),
            ("REGISTRY_GRPC_ADDR", "127.0.0.1:0".to_owned()),
            ("REGISTRY_HTTP_ADDR", "127.0.0.1:0".to_owned()),
            ("REGISTRY_METRICS_ADDR", "127.0.0.1:0".to_owned()),
        ])
        .collect();
    let without = |names: &[&str]| -> Vec<(&str, String)> {
        secure
            .iter()
            .filter(|(name, _)| !names.contains(name))
            .cloned()
            .collect()
    };

    // Secure by default: no certificate, no authentication, no start.
    let (ok, log) = run_to_exit(
        tributary_tests::registry_binary(),
        &without(&["TLS", "TLS_CERT_FILE", "TLS_KEY_FILE"]),
    )
    .await;
    assert!(!ok && log.contains("TLS is on by default"), "{log}");
    let mut no_auth = without(&[
        "AUTH",
        "AUTH_USERS_FILE",
        "AUTH_JWKS_FILE",
        "TLS_CLIENT_CA_FILE",
        "TLS_CLIENT_AUTH",
    ]);
    no_auth.retain(|(name, _)| !name.starts_with("AUTH_JWT"));
    let (ok, log) = run_to_exit(tributary_tests::registry_binary(), &no_auth).await;
    assert!(!ok && log.contains("--auth none"), "{log}");

    // A users file with a password in the clear.
    let dir = pki().dir.join(unique_name("startup"));
    std::fs::create_dir_all(&dir).unwrap();
    let users = dir.join("users");
    std::fs::write(&users, "ann:Plain-Text-ZQ9\n").unwrap();
    let mut clear = without(&["AUTH_USERS_FILE"]);
    clear.push(("AUTH_USERS_FILE", users.display().to_string()));
    let (ok, log) = run_to_exit(tributary_tests::registry_binary(), &clear).await;
    assert!(!ok, "{log}");
    assert!(
        log.contains("line 1 (user 'ann')") && log.contains("not hashed"),
        "{log}"
    );
    assert!(!log.contains("Plain-Text-ZQ9"), "{log}");

    // A Postgres URL that cannot be parsed: refused without its password.
    let mut bad_url = without(&["DATABASE_URL"]);
    bad_url.push((
        "DATABASE_URL",
        "postgres://app:Db-Secret-ZQ9@db:notaport/x".to_owned(),
    ));
    let (ok, log) = run_to_exit(tributary_tests::registry_binary(), &bad_url).await;
    assert!(!ok && log.contains("is not valid"), "{log}");
    assert!(!log.contains("Db-Secret-ZQ9"), "{log}");

    // Kafka properties that weaken the producer's durability, with a secret beside them.
    let messaging_env: Vec<(&str, String)> = security::server_env()
        .into_iter()
        .chain([
            ("MESSAGING_GRPC_ADDR", "127.0.0.1:0".to_owned()),
            ("MESSAGING_METRICS_ADDR", "127.0.0.1:0".to_owned()),
            ("MESSAGING_REST_ADDR", "127.0.0.1:0".to_owned()),
            (
                "KAFKA_PROPERTIES",
                "sasl.password=Kafka\\,Secret ZQ9,acks=1".to_owned(),
            ),
        ])
        .collect();
    let (ok, log) = run_to_exit(tributary_tests::messaging_binary(), &messaging_env).await;
    assert!(!ok, "{log}");
    assert!(
        log.contains("acks=1") && log.contains("--kafka-allow-weaker-durability"),
        "{log}"
    );
    assert!(!log.contains("ZQ9"), "{log}");
    let mut broken = messaging_env.clone();
    broken.retain(|(name, _)| *name != "KAFKA_PROPERTIES");
    broken.push(("KAFKA_PROPERTIES", "acks=all,Kafka-Secret-ZQ9".to_owned()));
    let (ok, log) = run_to_exit(tributary_tests::messaging_binary(), &broken).await;
    assert!(!ok && log.contains("entry 2 is not key=value"), "{log}");
    assert!(!log.contains("ZQ9"), "{log}");
}

#[tokio::test]
async fn no_secret_reaches_the_logs_even_at_trace_level() {
    let database = TestDatabase::create().await;
    // Postgres trusts the test connections: a password in the URL is carried, never checked.
    let url_with_password = database
        .url
        .replacen("postgres@", "postgres:Db-Secret-ZQ9@", 1);
    let dir = pki().dir.join(unique_name("logs"));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("registry.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let registry =
        RegistryProcess::spawn_logging_to(&url_with_password, &[("RUST_LOG", "trace")], Some(log))
            .await;
    let wrong_password = "Wrong-Password-ZQ9";
    let token = pki().sign(&claims("ann", ISSUER, "other-audience-ZQ9", 3600));
    let http = security::http_client();
    for _ in 0..3 {
        let _ = http
            .get(format!("https://{}/subjects", registry.http_addr))
            .basic_auth("admin", Some(wrong_password))
            .send()
            .await
            .unwrap();
        let _ = http
            .get(format!("https://{}/subjects", registry.http_addr))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let _ = http
            .get(format!("https://{}/subjects", registry.http_addr))
            .basic_auth("admin", Some(&pki().admin_password))
            .send()
            .await
            .unwrap();
        let mut value =
            tonic::metadata::MetadataValue::try_from(format!("Bearer {token}")).unwrap();
        value.set_sensitive(true);
        let channel =
            security::channel_with(registry.addr, client_tls(), CallCredentials::Basic(value))
                .await
                .unwrap();
        let _ = tributary_proto::registry::v1::registry_service_client::RegistryServiceClient::new(
            channel,
        )
        .list_subjects(registry_pb::ListSubjectsRequest::default())
        .await;
        let _ = tributary_tests::connect(registry.addr)
            .await
            .list_subjects(registry_pb::ListSubjectsRequest::default())
            .await
            .unwrap();
    }
    assert!(registry.terminate().await.success());
    let written = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        written.len() > 10_000,
        "a trace-level log: {} bytes",
        written.len()
    );
    let admin_basic =
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", pki().admin_password));
    let wrong_basic =
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{wrong_password}"));
    for secret in [
        "Db-Secret-ZQ9",
        wrong_password,
        &pki().admin_password,
        &admin_basic,
        &wrong_basic,
        token.as_str(),
        token.rsplit('.').next().unwrap(),
    ] {
        assert!(
            !written.contains(secret),
            "the log holds a secret ({} characters): {}",
            secret.len(),
            written
                .lines()
                .find(|line| line.contains(secret))
                .unwrap_or_default()
                .replace(secret, "<SECRET>")
        );
    }
}

#[tokio::test]
async fn no_authentication_on_a_public_address_is_logged_as_a_warning() {
    let database = TestDatabase::create().await;
    let log_path = pki().dir.join(format!("{}.log", unique_name("open")));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = tokio::process::Command::new(tributary_tests::registry_binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &database.url)
        .env("REGISTRY_GRPC_ADDR", format!("0.0.0.0:{}", free_port()))
        .env("REGISTRY_HTTP_ADDR", format!("0.0.0.0:{}", free_port()))
        .env("REGISTRY_METRICS_ADDR", "127.0.0.1:0")
        .env("TLS", "off")
        .env("AUTH", "none")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut written = String::new();
    for _ in 0..200 {
        written = std::fs::read_to_string(&log_path).unwrap_or_default();
        if written.contains("registry serving") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill().await;
    for listener in ["listener=grpc", "listener=http"] {
        let warnings: Vec<&str> = written
            .lines()
            .filter(|line| line.contains("WARN") && line.contains(listener))
            .collect();
        assert!(
            warnings.iter().any(|line| line.contains("WITHOUT TLS"))
                && warnings
                    .iter()
                    .any(|line| line.contains("WITHOUT authentication")),
            "{listener}: {written}"
        );
    }
}
