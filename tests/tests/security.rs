//! The perimeter, against real services over TLS: every HTTP route and every gRPC method of both
//! services refuses anonymous callers, wrong passwords, expired tokens, tokens for another
//! audience or issuer, and client certificates of an unknown CA, each with its exact refusal,
//! and admits a valid principal of each kind (basic, bearer JWT, client certificate).
//!
//! The table of what is called is built from what the services serve: the registry's HTTP
//! routes come from its router's table, the gRPC methods from the services each process lists
//! over reflection, resolved in the descriptor sets. A new route, method or service is tested
//! without a new line here, and a service with no descriptor to build its rows from fails.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut};
use prost::Message;
use reqwest::StatusCode;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tributary_security::client::CallCredentials;
use tributary_tests::security::{
    self, AUDIENCE, ISSUER, admin_channel, channel_with, claims, client_tls, client_tls_with, pki,
};
use tributary_tests::{TestMessaging, TestRegistry};

// ---------------------------------------------------------------------------------------------
// Who calls

/// One kind of caller and what the services must answer it.
#[derive(Debug, Clone)]
struct Caller {
    name: &'static str,
    credentials: Credentials,
    expected: Expected,
}

#[derive(Debug, Clone)]
enum Credentials {
    None,
    Authorization(String),
    /// A client certificate (and key) from the test directory.
    Certificate {
        cert: std::path::PathBuf,
        key: std::path::PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Expected {
    /// Admitted: whatever the answer, it is not a refusal of the credentials.
    Admitted,
    /// HTTP 401 / gRPC UNAUTHENTICATED with exactly this message.
    Refused(&'static str),
    /// The TLS handshake fails: no request is ever answered.
    HandshakeFails,
}

const ANONYMOUS_REFUSAL: &str = "authentication required: send basic credentials or a bearer token, or present a client certificate";

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn callers() -> Vec<Caller> {
    let pki = pki();
    vec![
        Caller {
            name: "anonymous",
            credentials: Credentials::None,
            expected: Expected::Refused(ANONYMOUS_REFUSAL),
        },
        Caller {
            name: "wrong password",
            credentials: Credentials::Authorization(basic("admin", "not-the-password")),
            expected: Expected::Refused("invalid user name or password"),
        },
        Caller {
            name: "unknown user",
            credentials: Credentials::Authorization(basic("mallory", &pki.admin_password)),
            expected: Expected::Refused("invalid user name or password"),
        },
        Caller {
            name: "expired JWT",
            credentials: Credentials::Authorization(format!(
                "Bearer {}",
                pki.sign(&claims("ann", ISSUER, AUDIENCE, -3600))
            )),
            expected: Expected::Refused("the bearer token has expired"),
        },
        Caller {
            name: "JWT for another audience",
            credentials: Credentials::Authorization(format!(
                "Bearer {}",
                pki.sign(&claims("ann", ISSUER, "another-service", 3600))
            )),
            expected: Expected::Refused("the bearer token's audience is not accepted"),
        },
        Caller {
            name: "JWT of another issuer",
            credentials: Credentials::Authorization(format!(
                "Bearer {}",
                pki.sign(&claims("ann", "https://evil.example", AUDIENCE, 3600))
            )),
            expected: Expected::Refused("the bearer token's issuer is not accepted"),
        },
        Caller {
            name: "client certificate of an unknown CA",
            credentials: Credentials::Certificate {
                cert: pki.foreign_client_cert.clone(),
                key: pki.foreign_client_key.clone(),
            },
            expected: Expected::HandshakeFails,
        },
        Caller {
            name: "basic admin",
            credentials: Credentials::Authorization(security::admin_authorization()),
            expected: Expected::Admitted,
        },
        Caller {
            name: "bearer JWT",
            credentials: Credentials::Authorization(format!("Bearer {}", pki.jwt("ann"))),
            expected: Expected::Admitted,
        },
        Caller {
            name: "client certificate",
            credentials: Credentials::Certificate {
                cert: pki.client_cert.clone(),
                key: pki.client_key.clone(),
            },
            expected: Expected::Admitted,
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// A path of the route with every parameter filled in.
fn concrete(path: &str) -> String {
    path.replace("{subject}", "perimeter-value")
        .replace("{version}", "1")
        .replace("{id}", "1")
}

fn http_client(credentials: &Credentials) -> reqwest::Client {
    let builder = security::http_client_builder();
    match credentials {
        Credentials::Certificate { cert, key } => {
            let mut pem = std::fs::read(cert).unwrap();
            pem.extend(std::fs::read(key).unwrap());
            builder
                .identity(reqwest::Identity::from_pem(&pem).unwrap())
                .build()
                .unwrap()
        }
        _ => builder.build().unwrap(),
    }
}

/// Sends `method path` as `caller` and checks the answer against what is expected.
async fn check_http(
    client: &reqwest::Client,
    base: &str,
    method: &http::Method,
    path: &str,
    caller: &Caller,
) -> Result<(), String> {
    let url = format!("{base}{path}");
    let mut request = client.request(method.clone(), &url);
    if matches!(*method, http::Method::POST | http::Method::PUT) {
        request = request
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .body("{}");
    }
    if let Credentials::Authorization(value) = &caller.credentials {
        request = request.header("authorization", value);
    }
    let outcome = tokio::time::timeout(Duration::from_secs(10), request.send())
        .await
        .map_err(|_| format!("{method} {path} as {}: no answer in 10 s", caller.name))?;
    let response = match (outcome, &caller.expected) {
        (Err(error), Expected::HandshakeFails) if error.is_connect() || error.is_request() => {
            return Ok(());
        }
        (Err(error), _) => return Err(format!("{method} {path} as {}: {error:?}", caller.name)),
        (Ok(response), Expected::HandshakeFails) => {
            return Err(format!(
                "{method} {path} as {}: answered {} where the handshake must fail",
                caller.name,
                response.status()
            ));
        }
        (Ok(response), _) => response,
    };
    let status = response.status();
    let challenges: Vec<String> = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .collect();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    match &caller.expected {
        Expected::Admitted if status == StatusCode::UNAUTHORIZED => Err(format!(
            "{method} {path} as {}: refused with {body}",
            caller.name
        )),
        Expected::Admitted => Ok(()),
        Expected::Refused(message) => {
            let expected = serde_json::json!({"error_code": 40101, "message": message});
            if status != StatusCode::UNAUTHORIZED || body != expected {
                return Err(format!(
                    "{method} {path} as {}: {status} {body}, expected 401 {expected}",
                    caller.name
                ));
            }
            if challenges
                != [
                    "Basic realm=\"tributary\", charset=\"UTF-8\"",
                    "Bearer realm=\"tributary\"",
                ]
            {
                return Err(format!("{method} {path}: WWW-Authenticate {challenges:?}"));
            }
            if content_type.as_deref() != Some("application/vnd.schemaregistry.v1+json") {
                return Err(format!("{method} {path}: Content-Type {content_type:?}"));
            }
            Ok(())
        }
        Expected::HandshakeFails => unreachable!("answered above"),
    }
}

#[tokio::test]
async fn every_http_route_refuses_bad_credentials_and_admits_each_kind_of_principal() {
    let registry = TestRegistry::start().await;
    let base = registry.http_url();
    let mut routes: Vec<(http::Method, String)> = tributary_registry::http::routes()
        .into_iter()
        .map(|(method, path, _)| (method, concrete(path)))
        .collect();
    // The fallbacks are behind the same layer: an unknown path, a known path's wrong method.
    routes.push((http::Method::GET, "/no/such/route".to_owned()));
    routes.push((http::Method::PATCH, "/subjects".to_owned()));
    assert!(routes.len() > 30, "the router's table: {routes:?}");

    let mut failures = Vec::new();
    for caller in callers() {
        let client = http_client(&caller.credentials);
        for (method, path) in &routes {
            if let Err(failure) = check_http(&client, &base, method, path, &caller).await {
                failures.push(failure);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    registry.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// gRPC

/// A codec of raw message bytes: any method can be called with any (here: empty) message.
#[derive(Debug, Clone, Default)]
struct RawCodec;

#[derive(Debug)]
struct RawEncoder;
#[derive(Debug)]
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// One gRPC method: `/package.Service/Method` and whether each side streams.
#[derive(Debug, Clone)]
struct Method {
    path: String,
    client_streaming: bool,
    server_streaming: bool,
}

/// Every method of every service in the descriptor sets the processes are built with.
fn described_methods() -> Vec<(String, Method)> {
    let mut methods = Vec::new();
    for encoded in [
        tributary_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ] {
        let set = prost_types::FileDescriptorSet::decode(encoded).unwrap();
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                let service_name = format!("{package}.{}", service.name.unwrap_or_default());
                for method in service.method {
                    methods.push((
                        service_name.clone(),
                        Method {
                            path: format!("/{service_name}/{}", method.name.unwrap_or_default()),
                            client_streaming: method.client_streaming.unwrap_or(false),
                            server_streaming: method.server_streaming.unwrap_or(false),
                        },
                    ));
                }
            }
        }
    }
    methods
}

/// The services a process serves, as its reflection lists them (asked as admin).
async fn served_services(addr: SocketAddr) -> BTreeSet<String> {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut client = ServerReflectionClient::new(admin_channel(addr).await);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    match responses.next().await.unwrap().unwrap().message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

/// The methods `addr` serves: every method of every service its reflection lists (reflection
/// lists only v1's name; v1alpha is served beside it).
async fn table(addr: SocketAddr) -> Vec<Method> {
    let served = served_services(addr).await;
    let described = described_methods();
    let mut methods = Vec::new();
    for service in &served {
        let of_service: Vec<Method> = described
            .iter()
            .filter(|(name, _)| name == service)
            .map(|(_, method)| method.clone())
            .collect();
        assert!(
            !of_service.is_empty(),
            "{service} is served but no descriptor describes its methods: add its descriptor set here"
        );
        methods.extend(of_service);
        if service == "grpc.reflection.v1.ServerReflection" {
            methods.extend(
                described
                    .iter()
                    .filter(|(name, _)| name == "grpc.reflection.v1alpha.ServerReflection")
                    .map(|(_, method)| method.clone()),
            );
        }
    }
    methods
}

/// Calls `method` with an empty message as `caller`; the status of the call's start (`Ok` when
/// the call was admitted and answered or is streaming).
async fn call(addr: SocketAddr, method: &Method, caller: &Caller) -> Result<(), tonic::Status> {
    let (tls, credentials) = match &caller.credentials {
        Credentials::None => (client_tls(), CallCredentials::None),
        Credentials::Authorization(value) => {
            let mut value = tonic::metadata::MetadataValue::try_from(value.as_str()).unwrap();
            value.set_sensitive(true);
            (client_tls(), CallCredentials::Basic(value))
        }
        Credentials::Certificate { cert, key } => {
            (client_tls_with(cert, key), CallCredentials::None)
        }
    };
    let channel = channel_with(addr, tls, credentials)
        .await
        .map_err(|error| tonic::Status::unavailable(format!("connect: {error:?}")))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| tonic::Status::unavailable(format!("ready: {error:?}")))?;
    let path: http::uri::PathAndQuery = method.path.parse().unwrap();
    let message = || Vec::<u8>::new();
    match (method.client_streaming, method.server_streaming) {
        (false, false) => grpc
            .unary(tonic::Request::new(message()), path, RawCodec)
            .await
            .map(drop),
        (false, true) => grpc
            .server_streaming(tonic::Request::new(message()), path, RawCodec)
            .await
            .map(drop),
        (true, false) => grpc
            .client_streaming(
                tonic::Request::new(tokio_stream::iter(vec![message()])),
                path,
                RawCodec,
            )
            .await
            .map(drop),
        (true, true) => grpc
            .streaming(
                tonic::Request::new(tokio_stream::iter(vec![message()])),
                path,
                RawCodec,
            )
            .await
            .map(drop),
    }
}

fn error_code(status: &tonic::Status) -> Option<String> {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .and_then(|info| info.metadata.get("error_code").cloned())
}

/// Checks every method `addr` serves against every caller; `open` services admit anyone.
async fn check_grpc(addr: SocketAddr, open: &[&str]) -> Vec<String> {
    let methods = table(addr).await;
    let mut failures = Vec::new();
    for caller in callers() {
        for method in &methods {
            let is_open = open.iter().any(|service| method.path.starts_with(service));
            let expected = if is_open && caller.expected != Expected::HandshakeFails {
                Expected::Admitted
            } else {
                caller.expected.clone()
            };
            let outcome =
                tokio::time::timeout(Duration::from_secs(10), call(addr, method, &caller))
                    .await
                    .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no answer in 10 s")));
            let failure = match (&expected, &outcome) {
                (Expected::Admitted, Err(status))
                    if status.code() == tonic::Code::Unauthenticated =>
                {
                    Some(format!("refused: {status:?}"))
                }
                (Expected::Admitted, Err(status))
                    if matches!(
                        status.code(),
                        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
                    ) && status.message().starts_with("connect") =>
                {
                    Some(format!("could not connect: {status:?}"))
                }
                (Expected::Admitted, _) => None,
                (Expected::Refused(message), Err(status))
                    if status.code() == tonic::Code::Unauthenticated
                        && status.message() == *message
                        && error_code(status).as_deref() == Some("40101") =>
                {
                    None
                }
                (Expected::Refused(message), outcome) => Some(format!(
                    "expected UNAUTHENTICATED {message:?} with 40101, got {outcome:?}"
                )),
                // The server refuses the certificate in the handshake; depending on when the
                // client notices (TLS 1.3 sends the alert after the client's Finished), the call
                // fails connecting or its connection closes under it: never admitted, never
                // answered by the service (the alert itself: the next test).
                (Expected::HandshakeFails, Err(status))
                    if matches!(
                        status.code(),
                        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
                    ) && std::error::Error::source(status).is_some() =>
                {
                    None
                }
                (Expected::HandshakeFails, outcome) => {
                    Some(format!("expected a failed handshake, got {outcome:?}"))
                }
            };
            if let Some(failure) = failure {
                failures.push(format!("{} as {}: {failure}", method.path, caller.name));
            }
        }
    }
    failures
}

#[tokio::test]
async fn every_grpc_method_of_both_services_refuses_bad_credentials_and_admits_each_kind_of_principal()
 {
    let messaging = TestMessaging::start().await;
    let open = ["/grpc.health.v1.Health/"];

    let registry_methods = table(messaging.registry.addr).await;
    assert!(
        registry_methods
            .iter()
            .any(|m| m.path == "/tributary.registry.v1.RegistryService/RegisterSchema"),
        "{registry_methods:?}"
    );
    let messaging_methods = table(messaging.addr).await;
    assert!(
        messaging_methods
            .iter()
            .any(|m| m.path == "/tributary.messaging.v1.MessagingService/Consume"),
        "{messaging_methods:?}"
    );

    let mut failures = check_grpc(messaging.registry.addr, &open).await;
    failures.extend(check_grpc(messaging.addr, &open).await);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn an_unknown_client_certificate_is_refused_in_the_handshake_with_an_alert() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let registry = TestRegistry::start().await;
    let pki = pki();
    for addr in [registry.addr, registry.http_addr] {
        let config = tributary_security::client::client_config(
            Some(&pki.ca),
            Some((&pki.foreign_client_cert, &pki.foreign_client_key)),
            &[b"h2"],
        )
        .unwrap();
        // TLS 1.3: the client's side of the handshake completes before the server has judged
        // its certificate; the server's alert arrives on the first read.
        let outcome = match security::tls_connect_with(addr, config).await {
            Err(error) => Err(error),
            Ok(mut stream) => {
                let _ = stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
                let mut buffer = [0u8; 64];
                stream.read(&mut buffer).await.map(|_| ())
            }
        };
        let error = outcome.expect_err("the server must not accept the certificate");
        assert!(
            error.to_string().contains("UnknownCA") || error.to_string().contains("BadCertificate"),
            "{addr}: {error}"
        );
    }
    // And the service is none the worse for it.
    let mut client = registry.client().await;
    client
        .list_subjects(tributary_proto::registry::v1::ListSubjectsRequest::default())
        .await
        .unwrap();
    registry.stop().await.unwrap();
}
