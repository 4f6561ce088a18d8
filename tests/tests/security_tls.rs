//! TLS, against real services and real dependencies: certificates rotated under load without a
//! failed request, handshakes that stop halfway, TLS 1.2 as the floor, the messaging service
//! reaching Kafka over SASL_SSL and the registry reaching Postgres with `sslmode=verify-full`.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tributary_proto::messaging::v1 as pb;
use tributary_proto::registry::v1 as registry_pb;
use tributary_tests::security::{self, pki};
use tributary_tests::{TestDatabase, TestMessaging, TestRegistry, unique_name};

/// One HTTPS request on a new connection (a full handshake); the server certificate it saw.
async fn one_request_on_a_new_connection(addr: SocketAddr) -> Result<Vec<u8>, String> {
    let mut stream = security::tls_connect(addr, b"http/1.1")
        .await
        .map_err(|error| format!("connect: {error}"))?;
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| leaf.to_vec())
        .ok_or("no server certificate")?;
    let request = format!(
        "GET /schemas/types HTTP/1.1\r\nHost: registry\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        security::admin_authorization()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|error| format!("write: {error}"))?;
    let mut response = Vec::new();
    // The server closes after answering (Connection: close); a missing close_notify is fine.
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    if !text.starts_with("HTTP/1.1 200") {
        return Err(format!("answer: {text:?}"));
    }
    Ok(certificate)
}

#[tokio::test]
async fn rotating_the_certificate_under_load_fails_no_request_and_serves_the_new_one_within_10_s() {
    let pki = pki();
    let dir = pki.dir.join(unique_name("rotation"));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    pki.issue_server_certificate(&["localhost", "127.0.0.1"], &cert, &key);
    let registry = TestRegistry::start_with(TestDatabase::create().await, |settings| {
        settings.security.tls_cert_file = Some(cert.clone());
        settings.security.tls_key_file = Some(key.clone());
        settings.security.files_reload_interval_ms = 200;
    })
    .await;
    let old = one_request_on_a_new_connection(registry.http_addr)
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let failures = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    // New connections (each a full handshake) on the HTTP API...
    for _ in 0..3 {
        let (stop, done, failed, failures) = (
            Arc::clone(&stop),
            Arc::clone(&done),
            Arc::clone(&failed),
            Arc::clone(&failures),
        );
        let addr = registry.http_addr;
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match one_request_on_a_new_connection(addr).await {
                    Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                    Err(error) => {
                        failures.lock().push(error);
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    // ...and calls on a kept-alive gRPC connection, established before the rotation.
    for _ in 0..2 {
        let (stop, done, failed, failures) = (
            Arc::clone(&stop),
            Arc::clone(&done),
            Arc::clone(&failed),
            Arc::clone(&failures),
        );
        let mut client = registry.client().await;
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client
                    .list_subjects(registry_pb::ListSubjectsRequest::default())
                    .await
                {
                    Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                    Err(status) => {
                        failures.lock().push(format!("{status:?}"));
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Rotate as a careless tool would: the certificate first, the key a moment later (the
    // pair does not match in between: that reload fails and the old pair stays in use).
    let (new_cert, new_key) = (dir.join("new.pem"), dir.join("new.key"));
    pki.issue_server_certificate(&["localhost", "127.0.0.1"], &new_cert, &new_key);
    let expected = rustls_pki_types::pem::PemObject::from_pem_file(&new_cert)
        .map(|der: rustls_pki_types::CertificateDer<'static>| der.to_vec())
        .unwrap();
    let rotated_at = Instant::now();
    std::fs::rename(&new_cert, &cert).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    std::fs::rename(&new_key, &key).unwrap();

    let mut served_after = None;
    while rotated_at.elapsed() < Duration::from_secs(15) {
        let seen = one_request_on_a_new_connection(registry.http_addr)
            .await
            .unwrap();
        if seen == expected {
            served_after = Some(rotated_at.elapsed());
            break;
        }
        assert_eq!(seen, old, "neither the old nor the new certificate");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let served_after = served_after.expect("the new certificate is served");
    assert!(
        served_after < Duration::from_secs(10),
        "served {served_after:?} after the rotation"
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed requests: {:?}",
        failures.lock()
    );
    assert!(
        done.load(Ordering::Relaxed) > 20,
        "{} requests",
        done.load(Ordering::Relaxed)
    );
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn handshakes_that_stop_halfway_are_dropped_and_hurt_no_one_else() {
    let registry = TestRegistry::start_with(TestDatabase::create().await, |settings| {
        settings.security.tls_handshake_timeout_ms = 500;
    })
    .await;
    // A ClientHello's first bytes, then silence; silence from the start; plaintext HTTP on the
    // TLS port; and random bytes.
    let partial_hello: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03];
    let mut stalled = Vec::new();
    for index in 0..200 {
        let addr = if index % 2 == 0 {
            registry.addr
        } else {
            registry.http_addr
        };
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        match index % 4 {
            0 => stream.write_all(partial_hello).await.unwrap(),
            1 => {}
            2 => stream
                .write_all(b"GET /subjects HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap(),
            _ => stream.write_all(&[0xAB; 300]).await.unwrap(),
        }
        stalled.push(stream);
    }
    // Meanwhile, real clients are served at once.
    let started = Instant::now();
    let mut client = registry.client().await;
    client
        .list_subjects(registry_pb::ListSubjectsRequest::default())
        .await
        .unwrap();
    security::admin_http_client()
        .get(format!("{}/subjects", registry.http_url()))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // And every stalled connection is closed by the server within the handshake timeout.
    tokio::time::sleep(Duration::from_millis(700)).await;
    for (index, stream) in stalled.iter_mut().enumerate() {
        let mut buffer = [0u8; 512];
        let closed = loop {
            match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                // An alert (garbage, plaintext HTTP): read on to the close.
                Ok(Ok(_)) => continue,
                Err(_) => break false,
            }
        };
        assert!(closed, "stalled connection {index} is still open");
    }
    assert_eq!(
        registry
            .client()
            .await
            .list_subjects(registry_pb::ListSubjectsRequest::default())
            .await
            .map(|_| ())
            .ok(),
        Some(())
    );
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn tls_1_2_is_the_floor_and_1_3_the_default() {
    let registry = TestRegistry::start().await;
    let pki = pki();
    let roots = tributary_security::tls::load_roots(&pki.ca).unwrap();
    let tls12_only =
        rustls::ClientConfig::builder_with_provider(tributary_security::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let stream = security::tls_connect_with(registry.http_addr, tls12_only)
        .await
        .unwrap();
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let stream = security::tls_connect(registry.addr, b"h2").await.unwrap();
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // A TLS 1.0 ClientHello gets a fatal alert (handshake_failure or protocol_version), never a
    // session.
    let mut old = tokio::net::TcpStream::connect(registry.http_addr)
        .await
        .unwrap();
    let tls10_hello = tls10_client_hello();
    old.write_all(&tls10_hello).await.unwrap();
    let mut answer = [0u8; 7];
    old.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer[0], 0x15, "an alert record: {answer:?}");
    assert_eq!(answer[5], 2, "a fatal alert: {answer:?}");
    assert!(
        matches!(answer[6], 40 | 70),
        "handshake_failure or protocol_version: {answer:?}"
    );
    registry.stop().await.unwrap();
}

/// A minimal TLS 1.0 ClientHello (version 3.1, one cipher suite, no extensions).
fn tls10_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x01];
    body.extend([0x42; 32]); // random
    body.push(0); // session id
    body.extend([0x00, 0x02, 0x00, 0x2f]); // TLS_RSA_WITH_AES_128_CBC_SHA
    body.extend([0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00];
    handshake.extend((body.len() as u16).to_be_bytes());
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

fn stack_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with scripts/test, or eval \"$(scripts/stack env)\" first \
             (the stack's SASL_SSL Kafka listener and its CA)"
        )
    })
}

/// Produces one Avro record through `messaging` and consumes it back.
async fn round_trip(messaging: &TestMessaging) {
    let topic = unique_name("sasl");
    messaging.create_topic(&topic, 1).await;
    let mut client = messaging.client().await;
    let produced = client
        .produce(pb::ProduceRequest {
            records: vec![pb::ProducerRecord {
                topic: topic.clone(),
                value: Some(pb::Payload {
                    kind: Some(pb::payload::Kind::Text("over SASL_SSL".to_owned())),
                }),
                ..Default::default()
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(
            produced.results[0].result,
            Some(pb::produce_result::Result::Metadata(_))
        ),
        "{:?}",
        produced.results
    );
    let mut consumer = messaging
        .consume(pb::Subscription {
            group_id: unique_name("sasl-group"),
            topics: vec![topic],
            start: pb::StartPosition::Earliest as i32,
            value_format: pb::PayloadFormat::Raw as i32,
            key_format: pb::PayloadFormat::Raw as i32,
            ..Default::default()
        })
        .await;
    let record = consumer.next_record(Duration::from_secs(20)).await;
    match record.value.and_then(|v| v.data) {
        Some(pb::consumed_payload::Data::Raw(bytes)) => assert_eq!(&bytes[..], b"over SASL_SSL"),
        other => panic!("expected the raw bytes back, got {other:?}"),
    }
}

#[tokio::test]
async fn messaging_produces_and_consumes_over_kafka_sasl_ssl_with_scram_and_plain() {
    let bootstrap = stack_env("KAFKA_SASL_SSL_BOOTSTRAP_SERVERS");
    let ca = stack_env("TRIBUTARY_CA_FILE");
    let password_file = stack_env("KAFKA_SASL_PASSWORD_FILE");
    let user = stack_env("KAFKA_SASL_USERNAME");
    for mechanism in ["SCRAM-SHA-512", "PLAIN"] {
        let messaging = TestMessaging::start_with(
            |settings| {
                settings.kafka_bootstrap_servers = bootstrap.clone();
                settings.kafka_properties_list = Some(tributary_messaging::config::RawProperties(
                    format!(
                        "security.protocol=SASL_SSL,sasl.mechanisms={mechanism},sasl.username={user},ssl.ca.location={ca}"
                    ),
                ));
                settings.kafka_sasl_password_file = Some(password_file.clone().into());
            },
            true,
        )
        .await;
        round_trip(&messaging).await;
        messaging.stop().await.unwrap();
    }
}

#[tokio::test]
async fn the_registry_verifies_postgres_with_sslmode_verify_full() {
    let ca = stack_env("TRIBUTARY_CA_FILE");
    let database = TestDatabase::create().await;
    let verified = format!("{}?sslmode=verify-full&sslrootcert={ca}", database.url);
    let registry = TestRegistry::start_with(database.clone(), |settings| {
        settings.database_url = Some(tributary_registry::config::DatabaseUrl(verified.clone()));
    })
    .await;
    registry
        .client()
        .await
        .list_subjects(registry_pb::ListSubjectsRequest::default())
        .await
        .unwrap();
    registry.stop().await.unwrap();

    // A CA that did not sign Postgres's certificate: refused, and said so.
    let wrong_ca = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        database.url,
        pki().ca.display()
    );
    let mut settings = tributary_tests::registry_settings(&wrong_ca);
    settings.db_acquire_timeout_ms = 1000;
    let error = tributary_registry::Application::build(&settings)
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(error.contains("cannot connect to Postgres"), "{error}");
    assert!(
        error.to_lowercase().contains("certificate") || error.contains("UnknownIssuer"),
        "{error}"
    );
}

#[tokio::test]
async fn with_client_certificates_required_a_connection_without_one_is_refused_in_the_handshake() {
    let registry = TestRegistry::start_with(TestDatabase::create().await, |settings| {
        settings.security.tls_client_auth = Some(tributary_security::tls::ClientAuth::Required);
    })
    .await;
    // No certificate, even with a good password: the handshake fails (the alert arrives on
    // the first read under TLS 1.3).
    let outcome = match security::tls_connect(registry.http_addr, b"http/1.1").await {
        Err(error) => Err(error),
        Ok(mut stream) => {
            let request = format!(
                "GET /subjects HTTP/1.1\r\nHost: registry\r\nAuthorization: {}\r\n\r\n",
                security::admin_authorization()
            );
            let _ = stream.write_all(request.as_bytes()).await;
            let mut buffer = [0u8; 64];
            stream.read(&mut buffer).await.map(|_| ())
        }
    };
    let error = outcome.expect_err("no certificate, no connection");
    assert!(error.to_string().contains("CertificateRequired"), "{error}");
    // With the client certificate: served, over both APIs.
    let pki = pki();
    let channel = security::channel_with(
        registry.addr,
        security::client_tls_with(&pki.client_cert, &pki.client_key),
        tributary_security::client::CallCredentials::None,
    )
    .await
    .unwrap();
    tributary_proto::registry::v1::registry_service_client::RegistryServiceClient::new(channel)
        .list_subjects(registry_pb::ListSubjectsRequest::default())
        .await
        .unwrap();
    let mut pem = std::fs::read(&pki.client_cert).unwrap();
    pem.extend(std::fs::read(&pki.client_key).unwrap());
    let client = security::http_client_builder()
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/subjects", registry.http_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    registry.stop().await.unwrap();
}
