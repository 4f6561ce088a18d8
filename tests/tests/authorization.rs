//! Authorization, against real services as processes: every HTTP route and every gRPC method of
//! both services, called by five principals (admin, read-only, the owners of `team-a-*` and of
//! `team-b-*`, and a consumer of group `g1`) on resources in and out of their scope, must be
//! allowed or denied exactly as the policy says, lists must hold exactly what the principal may
//! see, and every change or denial must leave exactly one audit line with the right fields.
//!
//! The table is built from what the services serve: the registry router's routes and the
//! methods of the services' descriptors. A route or method that [`requirement`] does not name
//! fails the test: a new one needs a policy decision here before it can ship.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use prost::Message;
use serde_json::{Value, json};
use tributary_proto::messaging::v1 as mpb;
use tributary_proto::messaging::v1::messaging_service_client::MessagingServiceClient;
use tributary_proto::registry::v1 as rpb;
use tributary_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tributary_security::client::CallCredentials;
use tributary_tests::security::{self, client_tls, pki};
use tributary_tests::{MessagingProcess, RegistryProcess, TestDatabase, unique_name};

const POLICY: &str = r#"
groups:
  team-a: ["user:alice"]
  team-b: ["user:bob"]
roles:
  admin:
    rules:
      - allow: ["*"]
        on: ["*"]
  read-only:
    rules:
      - allow: [read]
        on: ["subject:*", "registry", "group:*"]
      - allow: [describe]
        on: ["topic:*", "cluster"]
  team-a-owner:
    rules:
      - allow: ["*"]
        on: ["subject:team-a-*", "topic:team-a-*", "group:g1"]
  team-b-owner:
    rules:
      - allow: ["*"]
        on: ["subject:team-b-*", "topic:team-b-*", "group:g2"]
  g1-consumer:
    rules:
      - allow: [consume, describe]
        on: ["topic:team-a-*"]
      - allow: [read, commit]
        on: ["group:g1"]
  messaging-service:
    rules:
      - allow: [read, write]
        on: ["subject:*"]
      - allow: [read]
        on: ["registry"]
bindings:
  - {role: admin, to: ["user:admin"]}
  - {role: read-only, to: ["user:viewer"]}
  - {role: team-a-owner, to: ["group:team-a"]}
  - {role: team-b-owner, to: ["group:team-b"]}
  - {role: g1-consumer, to: ["user:carol"]}
  - {role: messaging-service, to: ["user:messaging"]}
"#;

/// The principals, in the order they run (admin last: its changes must not take away what the
/// others are tested on).
const PRINCIPALS: [&str; 5] = ["viewer", "alice", "bob", "carol", "admin"];

/// The resources of a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    A,
    B,
}

impl Scope {
    fn subject(self) -> &'static str {
        match self {
            Scope::A => "team-a-value",
            Scope::B => "team-b-value",
        }
    }
    /// Topics outlive a test run on the shared Kafka: each run has its own.
    fn topic(self) -> &'static str {
        static TOPICS: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
        let (a, b) = TOPICS.get_or_init(|| {
            let run = unique_name("events");
            (format!("team-a-{run}"), format!("team-b-{run}"))
        });
        match self {
            Scope::A => a,
            Scope::B => b,
        }
    }
    fn group(self) -> &'static str {
        match self {
            Scope::A => "g1",
            Scope::B => "g2",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Scope::A => "team-a",
            Scope::B => "team-b",
        }
    }
}

/// What a route or method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Authentication only.
    Nothing,
    Subject(&'static str),
    RegistryConfig,
    /// Read on a subject that uses the schema id.
    Schema,
    /// A list filtered to what may be read.
    SubjectList,
    Topic(&'static str),
    Group(&'static str),
    /// Consume the topic as the group.
    Subscription,
    /// A list of topics filtered by describe.
    TopicList,
    /// A list of groups filtered by read.
    GroupList,
}

/// The truth, written out by hand from [`POLICY`]: may `principal` do what `need` says in
/// `scope`?
fn may(principal: &str, need: Need, scope: Scope) -> bool {
    let own = |owner: &str| principal == owner;
    let owner_of = |scope: Scope| match scope {
        Scope::A => "alice",
        Scope::B => "bob",
    };
    match (principal, need) {
        ("admin", _) => true,
        (_, Need::Nothing) => true,
        (_, Need::RegistryConfig) => false,
        ("viewer", Need::Subject(action)) => action == "read",
        ("viewer", Need::Schema) => true,
        ("viewer", Need::Topic(action)) => action == "describe",
        ("viewer", Need::Group(action)) => action == "read",
        ("viewer", Need::Subscription) => false,
        ("carol", Need::Subject(_) | Need::Schema) => false,
        ("carol", Need::Topic(action)) => {
            scope == Scope::A && (action == "consume" || action == "describe")
        }
        ("carol", Need::Group(action)) => {
            scope == Scope::A && (action == "read" || action == "commit")
        }
        ("carol", Need::Subscription) => scope == Scope::A,
        (_, Need::Subject(_) | Need::Schema | Need::Topic(_) | Need::Group(_))
        | (_, Need::Subscription) => own(owner_of(scope)),
        (_, Need::SubjectList | Need::TopicList | Need::GroupList) => true,
    }
}

/// What each list holds for `principal`, of the two scopes' resources.
fn visible(principal: &str, scope: Scope, list: Need) -> bool {
    match list {
        Need::SubjectList => may(principal, Need::Subject("read"), scope),
        Need::TopicList => may(principal, Need::Topic("describe"), scope),
        Need::GroupList => may(principal, Need::Group("read"), scope),
        other => panic!("{other:?} is not a list"),
    }
}

/// The policy decision of every route and method: what it needs. `None`: no decision here yet,
/// which fails the test.
fn requirement(method: &str, path: &str) -> Option<Need> {
    use Need::*;
    Some(match (method, path) {
        // Registry HTTP
        ("GET", "/" | "/v1/metadata/id" | "/openapi.json" | "/schemas/types" | "/contexts") => {
            Nothing
        }
        ("GET", "/config" | "/mode") => Nothing,
        ("PUT" | "DELETE", "/config" | "/mode") => RegistryConfig,
        ("GET", "/subjects" | "/schemas") => SubjectList,
        ("GET", "/schemas/ids/{id}/subjects" | "/schemas/ids/{id}/versions") => SubjectList,
        ("GET", "/schemas/ids/{id}" | "/schemas/ids/{id}/schema") => Schema,
        ("POST", "/subjects/{subject}/versions") => Subject("write"),
        ("POST", "/subjects/{subject}") => Subject("read"),
        (
            "GET",
            "/subjects/{subject}/versions"
            | "/subjects/{subject}/versions/{version}"
            | "/subjects/{subject}/versions/{version}/schema"
            | "/subjects/{subject}/versions/{version}/referencedby"
            | "/config/{subject}"
            | "/mode/{subject}",
        ) => Subject("read"),
        (
            "POST",
            "/compatibility/subjects/{subject}/versions/{version}"
            | "/compatibility/subjects/{subject}/versions",
        ) => Subject("read"),
        ("PUT" | "DELETE", "/config/{subject}" | "/mode/{subject}") => Subject("config"),
        ("DELETE", "/subjects/{subject}" | "/subjects/{subject}/versions/{version}") => {
            Subject("delete")
        }
        // Registry gRPC
        ("grpc", "RegisterSchema") => Subject("write"),
        (
            "grpc",
            "LookupSchema"
            | "GetSubjectVersion"
            | "ListVersions"
            | "ListReferencedBy"
            | "CheckCompatibility"
            | "GetCompatibilityLevel"
            | "GetMode",
        ) => Subject("read"),
        ("grpc", "GetSchema") => Schema,
        ("grpc", "ListSchemaUsages" | "ListSubjects" | "Watch") => SubjectList,
        ("grpc", "DeleteSubject" | "DeleteSubjectVersion") => Subject("delete"),
        (
            "grpc",
            "SetCompatibilityLevel" | "DeleteCompatibilityLevel" | "SetMode" | "DeleteMode",
        ) => Subject("config"),
        // Messaging gRPC
        ("grpc", "Produce" | "ProduceStream") => Topic("produce"),
        ("grpc", "Consume") => Subscription,
        ("grpc", "DescribeTopic" | "GetWatermarks") => Topic("describe"),
        ("grpc", "CreateTopic") => Topic("create"),
        ("grpc", "DeleteTopic") => Topic("delete"),
        ("grpc", "ListTopics") => TopicList,
        ("grpc", "ListConsumerGroups") => GroupList,
        ("grpc", "DescribeConsumerGroup") => Group("read"),
        // Open to any authenticated caller (and to anyone, by default, for health).
        ("grpc", "Check" | "Watch health" | "ServerReflectionInfo") => Nothing,
        _ => return None,
    })
}

/// The methods of a service in the descriptor sets.
fn methods_of(service: &str) -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(tributary_proto::FILE_DESCRIPTOR_SET).unwrap();
    set.file
        .into_iter()
        .flat_map(|file| {
            let package = file.package.unwrap_or_default();
            file.service.into_iter().filter_map(move |s| {
                (format!("{package}.{}", s.name.clone().unwrap_or_default()) == service)
                    .then_some(s.method)
            })
        })
        .flatten()
        .map(|method| method.name.unwrap_or_default())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The stack of this test: its users, its policy, and the two services as processes.

struct Fixture {
    registry: RegistryProcess,
    messaging: MessagingProcess,
    passwords: BTreeMap<&'static str, String>,
    registry_log: std::path::PathBuf,
    messaging_log: std::path::PathBuf,
    /// Schema ids of the two scopes' subjects.
    ids: BTreeMap<&'static str, i32>,
}

fn authorization(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

impl Fixture {
    async fn start() -> Self {
        let dir = pki().dir.join(unique_name("authz"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut passwords = BTreeMap::new();
        let mut users = String::new();
        for user in PRINCIPALS.into_iter().chain(["messaging"]) {
            let password = format!("{user}-{}", unique_name("pw"));
            users.push_str(&format!(
                "{user}:{}\n",
                tributary_security::users::hash_password(password.as_bytes()).unwrap()
            ));
            passwords.insert(user, password);
        }
        std::fs::write(dir.join("users"), users).unwrap();
        std::fs::write(dir.join("policy.yaml"), POLICY).unwrap();
        std::fs::write(dir.join("messaging.password"), &passwords["messaging"]).unwrap();
        let users = dir.join("users").display().to_string();
        let policy = dir.join("policy.yaml").display().to_string();
        let env = [
            ("AUTH_USERS_FILE", users.as_str()),
            ("AUTHZ_POLICY_FILE", policy.as_str()),
        ];
        let registry_log = dir.join("registry.log");
        let database = TestDatabase::create().await;
        let registry = RegistryProcess::spawn_logging_to(
            &database.url,
            &env,
            Some(std::fs::File::create(&registry_log).unwrap()),
        )
        .await;
        let password_file = dir.join("messaging.password").display().to_string();
        let messaging_log = dir.join("messaging.log");
        let messaging = MessagingProcess::spawn_logging_to(
            &format!("https://{}", registry.addr),
            &[
                env[0],
                env[1],
                ("REGISTRY_PASSWORD_FILE", password_file.as_str()),
            ],
            Some(std::fs::File::create(&messaging_log).unwrap()),
        )
        .await;
        let mut fixture = Self {
            registry,
            messaging,
            passwords,
            registry_log,
            messaging_log,
            ids: BTreeMap::new(),
        };
        // The scopes' resources, made by admin.
        for scope in [Scope::A, Scope::B] {
            let schema =
                json!({"type": "record", "name": format!("R{}", scope.name().replace('-', "")),
                "fields": [{"name": "f", "type": "string"}]})
                .to_string();
            let id = fixture
                .registry_client("admin")
                .await
                .register_schema(rpb::RegisterSchemaRequest {
                    subject: scope.subject().to_owned(),
                    schema,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .id;
            fixture.ids.insert(scope.subject(), id);
            fixture
                .messaging_client("admin")
                .await
                .create_topic(mpb::CreateTopicRequest {
                    topic: scope.topic().to_owned(),
                    partitions: 1,
                    replication_factor: 1,
                    configs: Default::default(),
                })
                .await
                .unwrap();
        }
        fixture
    }

    fn credentials(&self, principal: &str) -> CallCredentials {
        let mut value = tonic::metadata::MetadataValue::try_from(authorization(
            principal,
            &self.passwords[principal],
        ))
        .unwrap();
        value.set_sensitive(true);
        CallCredentials::Basic(value)
    }

    async fn registry_client(
        &self,
        principal: &str,
    ) -> RegistryServiceClient<tributary_tests::AuthChannel> {
        RegistryServiceClient::new(
            security::channel_with(
                self.registry.addr,
                client_tls(),
                self.credentials(principal),
            )
            .await
            .unwrap(),
        )
    }

    async fn messaging_client(
        &self,
        principal: &str,
    ) -> MessagingServiceClient<tributary_tests::AuthChannel> {
        MessagingServiceClient::new(
            security::channel_with(
                self.messaging.addr,
                client_tls(),
                self.credentials(principal),
            )
            .await
            .unwrap(),
        )
    }

    fn http(&self, principal: &str) -> (reqwest::Client, String) {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            authorization(principal, &self.passwords[principal])
                .parse()
                .unwrap(),
        );
        (
            security::http_client_builder()
                .default_headers(headers)
                .build()
                .unwrap(),
            format!("https://{}", self.registry.http_addr),
        )
    }
}

/// What a call came to.
#[derive(Debug, Clone, PartialEq)]
enum Came {
    Allowed,
    Denied,
    /// A list, with what it held of the scopes' resources.
    Listed(Vec<String>),
}

fn of_status(status: &tonic::Status) -> Came {
    if status.code() == tonic::Code::PermissionDenied {
        Came::Denied
    } else {
        Came::Allowed
    }
}

fn of_grpc<T>(outcome: Result<T, tonic::Status>) -> Came {
    match outcome {
        Ok(_) => Came::Allowed,
        Err(status) => of_status(&status),
    }
}

/// The audit lines expected: (principal, action, resource, outcome-is-denial).
type Expected = Vec<(String, String, String, bool)>;

// ---------------------------------------------------------------------------------------------
// The registry's HTTP routes

async fn http_call(
    fixture: &Fixture,
    principal: &str,
    method: &http::Method,
    path: &str,
    scope: Scope,
) -> Came {
    let (client, base) = fixture.http(principal);
    let id = fixture.ids[scope.subject()];
    let mut concrete = path
        .replace("{subject}", scope.subject())
        .replace("{version}", "1")
        .replace("{id}", &id.to_string());
    if matches!(path, "/subjects" | "/schemas") || path.starts_with("/schemas/ids/") {
        // Soft-deleted versions too: earlier rows delete.
        concrete.push_str("?deleted=true");
    }
    let body = match (method.as_str(), path) {
        ("POST", "/subjects/{subject}/versions" | "/subjects/{subject}")
        | ("POST", "/compatibility/subjects/{subject}/versions/{version}")
        | ("POST", "/compatibility/subjects/{subject}/versions") => {
            json!({"schema": "{\"type\":\"record\",\"name\":\"X\",\"fields\":[]}"})
        }
        ("PUT", "/config" | "/config/{subject}") => json!({"compatibility": "BACKWARD"}),
        ("PUT", "/mode" | "/mode/{subject}") => json!({"mode": "READWRITE"}),
        _ => Value::Null,
    };
    let mut request = client.request(method.clone(), format!("{base}{concrete}"));
    if !body.is_null() {
        request = request
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or_default();
    if status == 403 {
        assert_eq!(answer["error_code"], 40301, "{method} {concrete}: {answer}");
        return Came::Denied;
    }
    assert_ne!(status, 401, "{method} {concrete} as {principal}: {answer}");
    match requirement(method.as_str(), path) {
        Some(Need::SubjectList) => {
            let held: Vec<String> = match path {
                "/subjects" | "/schemas/ids/{id}/subjects" => answer
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect(),
                _ => answer
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["subject"].as_str().map(str::to_owned))
                    .collect(),
            };
            Came::Listed(held)
        }
        _ => Came::Allowed,
    }
}

// ---------------------------------------------------------------------------------------------
// gRPC

async fn registry_call(fixture: &Fixture, principal: &str, method: &str, scope: Scope) -> Came {
    let mut client = fixture.registry_client(principal).await;
    let subject = scope.subject().to_owned();
    let schema = "{\"type\":\"record\",\"name\":\"X\",\"fields\":[]}".to_owned();
    match method {
        "RegisterSchema" => of_grpc(
            client
                .register_schema(rpb::RegisterSchemaRequest {
                    subject,
                    schema,
                    ..Default::default()
                })
                .await,
        ),
        "LookupSchema" => of_grpc(
            client
                .lookup_schema(rpb::LookupSchemaRequest {
                    subject,
                    schema,
                    ..Default::default()
                })
                .await,
        ),
        "GetSchema" => of_grpc(
            client
                .get_schema(rpb::GetSchemaRequest {
                    id: fixture.ids[scope.subject()],
                    ..Default::default()
                })
                .await,
        ),
        "ListSchemaUsages" => match client
            .list_schema_usages(rpb::ListSchemaUsagesRequest {
                id: fixture.ids[scope.subject()],
                include_deleted: true,
            })
            .await
        {
            Ok(response) => Came::Listed(
                response
                    .into_inner()
                    .usages
                    .into_iter()
                    .map(|u| u.subject)
                    .collect(),
            ),
            Err(status) => of_status(&status),
        },
        "GetSubjectVersion" => of_grpc(
            client
                .get_subject_version(rpb::GetSubjectVersionRequest {
                    subject,
                    version: -1,
                    include_deleted: true,
                })
                .await,
        ),
        "ListSubjects" => match client
            .list_subjects(rpb::ListSubjectsRequest {
                include_deleted: true,
                ..Default::default()
            })
            .await
        {
            Ok(response) => Came::Listed(response.into_inner().subjects),
            Err(status) => of_status(&status),
        },
        "ListVersions" => of_grpc(
            client
                .list_versions(rpb::ListVersionsRequest {
                    subject,
                    include_deleted: true,
                })
                .await,
        ),
        "ListReferencedBy" => of_grpc(
            client
                .list_referenced_by(rpb::ListReferencedByRequest {
                    subject,
                    version: 1,
                })
                .await,
        ),
        "DeleteSubject" => of_grpc(
            client
                .delete_subject(rpb::DeleteSubjectRequest {
                    subject,
                    permanent: false,
                })
                .await,
        ),
        "DeleteSubjectVersion" => of_grpc(
            client
                .delete_subject_version(rpb::DeleteSubjectVersionRequest {
                    subject,
                    version: 99,
                    permanent: false,
                })
                .await,
        ),
        "CheckCompatibility" => of_grpc(
            client
                .check_compatibility(rpb::CheckCompatibilityRequest {
                    subject,
                    schema,
                    ..Default::default()
                })
                .await,
        ),
        "GetCompatibilityLevel" => of_grpc(
            client
                .get_compatibility_level(rpb::GetCompatibilityLevelRequest {
                    subject,
                    default_to_global: true,
                })
                .await,
        ),
        "SetCompatibilityLevel" => of_grpc(
            client
                .set_compatibility_level(rpb::SetCompatibilityLevelRequest {
                    subject,
                    level: rpb::CompatibilityLevel::Backward as i32,
                })
                .await,
        ),
        "DeleteCompatibilityLevel" => of_grpc(
            client
                .delete_compatibility_level(rpb::DeleteCompatibilityLevelRequest { subject })
                .await,
        ),
        "GetMode" => of_grpc(
            client
                .get_mode(rpb::GetModeRequest {
                    subject,
                    default_to_global: true,
                })
                .await,
        ),
        "SetMode" => of_grpc(
            client
                .set_mode(rpb::SetModeRequest {
                    subject,
                    mode: rpb::Mode::Readwrite as i32,
                    force: false,
                })
                .await,
        ),
        "DeleteMode" => of_grpc(client.delete_mode(rpb::DeleteModeRequest { subject }).await),
        "Watch" => {
            // A change in each scope, made by admin while the principal watches: what arrives.
            use tokio_stream::StreamExt;
            let mut events = client
                .watch(rpb::WatchRequest::default())
                .await
                .unwrap()
                .into_inner();
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut admin = fixture.registry_client("admin").await;
            for scope in [Scope::A, Scope::B] {
                admin
                    .set_compatibility_level(rpb::SetCompatibilityLevelRequest {
                        subject: scope.subject().to_owned(),
                        level: rpb::CompatibilityLevel::Full as i32,
                    })
                    .await
                    .unwrap();
            }
            let mut held = Vec::new();
            while let Ok(Some(Ok(event))) =
                tokio::time::timeout(Duration::from_millis(700), events.next()).await
            {
                if let Some(rpb::watch_response::Event::CompatibilityLevelChanged(changed)) =
                    event.event
                {
                    held.push(changed.subject);
                }
            }
            Came::Listed(held)
        }
        other => panic!("no call for {other}"),
    }
}

async fn messaging_call(fixture: &Fixture, principal: &str, method: &str, scope: Scope) -> Came {
    let mut client = fixture.messaging_client(principal).await;
    let topic = scope.topic().to_owned();
    let record = || mpb::ProducerRecord {
        topic: scope.topic().to_owned(),
        value: Some(mpb::Payload {
            kind: Some(mpb::payload::Kind::Text("x".to_owned())),
        }),
        ..Default::default()
    };
    let record_outcome = |result: Option<mpb::produce_result::Result>| match result {
        Some(mpb::produce_result::Result::Error(error))
            if error.code == tonic::Code::PermissionDenied as i32 =>
        {
            Came::Denied
        }
        _ => Came::Allowed,
    };
    match method {
        "Produce" => match client
            .produce(mpb::ProduceRequest {
                records: vec![record()],
            })
            .await
        {
            Ok(response) => record_outcome(response.into_inner().results.remove(0).result),
            Err(status) => of_status(&status),
        },
        "ProduceStream" => {
            use tokio_stream::StreamExt;
            let requests = tokio_stream::iter(vec![mpb::ProduceStreamRequest {
                record: Some(record()),
                ..Default::default()
            }]);
            match client.produce_stream(requests).await {
                Ok(response) => {
                    let mut stream = response.into_inner();
                    match stream.next().await {
                        Some(Ok(answer)) => {
                            record_outcome(answer.result.and_then(|result| result.result))
                        }
                        Some(Err(status)) => of_status(&status),
                        None => panic!("ProduceStream ended without a result"),
                    }
                }
                Err(status) => of_status(&status),
            }
        }
        "Consume" => {
            use tokio_stream::StreamExt;
            let requests = tokio_stream::iter(vec![mpb::ConsumeRequest {
                kind: Some(mpb::consume_request::Kind::Subscription(
                    mpb::Subscription {
                        group_id: scope.group().to_owned(),
                        topics: vec![topic],
                        value_format: mpb::PayloadFormat::Raw as i32,
                        key_format: mpb::PayloadFormat::Raw as i32,
                        ..Default::default()
                    },
                )),
            }])
            .chain(tokio_stream::pending());
            match client.consume(requests).await {
                Ok(response) => {
                    let mut stream = response.into_inner();
                    match tokio::time::timeout(Duration::from_secs(2), stream.next()).await {
                        // Subscribed: records or rebalances (or nothing yet) come.
                        Err(_) | Ok(Some(Ok(_))) => Came::Allowed,
                        Ok(Some(Err(status))) => of_status(&status),
                        Ok(None) => Came::Allowed,
                    }
                }
                Err(status) => of_status(&status),
            }
        }
        "ListTopics" => Came::Listed(
            client
                .list_topics(mpb::ListTopicsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .topics
                .into_iter()
                .map(|t| t.name)
                .collect(),
        ),
        "DescribeTopic" => of_grpc(
            client
                .describe_topic(mpb::DescribeTopicRequest { topic })
                .await,
        ),
        "GetWatermarks" => of_grpc(
            client
                .get_watermarks(mpb::GetWatermarksRequest { topic })
                .await,
        ),
        "CreateTopic" => of_grpc(
            client
                .create_topic(mpb::CreateTopicRequest {
                    topic: format!("{}-by-{principal}", scope.topic()),
                    partitions: 1,
                    replication_factor: 1,
                    configs: Default::default(),
                })
                .await,
        ),
        "DeleteTopic" => of_grpc(
            client
                .delete_topic(mpb::DeleteTopicRequest {
                    topic: format!("{}-by-{principal}", scope.topic()),
                })
                .await,
        ),
        "ListConsumerGroups" => Came::Listed(
            client
                .list_consumer_groups(mpb::ListConsumerGroupsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .groups
                .into_iter()
                .map(|g| g.group_id)
                .collect(),
        ),
        "DescribeConsumerGroup" => of_grpc(
            client
                .describe_consumer_group(mpb::DescribeConsumerGroupRequest {
                    group_id: scope.group().to_owned(),
                })
                .await,
        ),
        other => panic!("no call for {other}"),
    }
}

// ---------------------------------------------------------------------------------------------

/// Checks one call's outcome against the truth; records the audit lines it must have left.
#[allow(clippy::too_many_arguments)]
fn judge(
    failures: &mut Vec<String>,
    expected_audit: &mut Expected,
    what: &str,
    principal: &str,
    need: Need,
    scope: Scope,
    came: &Came,
    audited: Option<(&str, String)>,
) {
    match (need, came) {
        (Need::SubjectList | Need::TopicList | Need::GroupList, Came::Listed(held)) => {
            // A list of an id's users can only ever hold the subject using that id.
            let scopes: &[Scope] = if what.contains("{id}") || what.contains("ListSchemaUsages") {
                std::slice::from_ref(&scope)
            } else {
                &[Scope::A, Scope::B]
            };
            for scope in scopes.iter().copied() {
                let name = match need {
                    Need::SubjectList => scope.subject(),
                    Need::TopicList => scope.topic(),
                    _ => scope.group(),
                };
                let should = visible(principal, scope, need);
                // Groups exist only once someone consumed as them: absence is fine then.
                let holds = held.iter().any(|item| item == name);
                let absent_group = need == Need::GroupList && !holds;
                if holds != should && !absent_group {
                    failures.push(format!(
                        "{what} as {principal}: {name} {} (list: {held:?})",
                        if should { "missing" } else { "shown" }
                    ));
                }
            }
        }
        (_, Came::Listed(held)) => failures.push(format!("{what}: a list {held:?} for {need:?}")),
        (_, came) => {
            let should = may(principal, need, scope);
            let allowed = *came == Came::Allowed;
            if allowed != should {
                failures.push(format!(
                    "{what} as {principal} on {}: {} where the policy says {}",
                    scope.name(),
                    if allowed { "allowed" } else { "denied" },
                    if should { "allow" } else { "deny" }
                ));
            }
            if let Some((action, resource)) = audited {
                // Denials always leave a line; allowed changes leave one with their outcome.
                if !allowed || matches!(action, "write" | "delete" | "config" | "create") {
                    expected_audit.push((
                        principal.to_owned(),
                        action.to_owned(),
                        resource,
                        !allowed,
                    ));
                }
            }
        }
    }
}

/// The action and resource the audit line of a call names (for calls whose denial is audited).
fn audited(need: Need, scope: Scope, fixture: &Fixture) -> Option<(&'static str, String)> {
    match need {
        Need::Subject(action) => Some((action, format!("subject:{}", scope.subject()))),
        Need::RegistryConfig => Some(("config", "registry".to_owned())),
        Need::Schema => Some((
            "read",
            format!(
                "schema:{} (through no subject it may read)",
                fixture.ids[scope.subject()]
            ),
        )),
        Need::Topic(action) => Some((action, format!("topic:{}", scope.topic()))),
        Need::Group(action) => Some((action, format!("group:{}", scope.group()))),
        _ => None,
    }
}

/// The audit lines in a process log: (principal, action, resource, denied).
fn audit_lines(log: &std::path::Path) -> Vec<(String, String, String, bool, Value)> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == "audit")
        .map(|line| {
            (
                line["principal"].as_str().unwrap_or_default().to_owned(),
                line["action"].as_str().unwrap_or_default().to_owned(),
                line["resource"].as_str().unwrap_or_default().to_owned(),
                line["outcome"] == "denied",
                line,
            )
        })
        .collect()
}

#[tokio::test]
async fn every_route_and_method_allows_and_denies_exactly_as_the_policy_says_and_audits_it() {
    let fixture = Fixture::start().await;
    let mut failures = Vec::new();
    let mut expected_audit: Expected = Vec::new();

    // The table: every route of the router and every method of both services.
    let mut http_routes: Vec<(http::Method, &'static str)> = tributary_registry::http::routes()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    // Deletes last: they must not take away what the other rows are tested on.
    http_routes.sort_by_key(|(method, _)| *method == http::Method::DELETE);
    let registry_methods = methods_of("tributary.registry.v1.RegistryService");
    let messaging_methods = methods_of("tributary.messaging.v1.MessagingService");
    let mut undecided = Vec::new();
    for (method, path) in &http_routes {
        if requirement(method.as_str(), path).is_none() {
            undecided.push(format!("{method} {path}"));
        }
    }
    for method in registry_methods.iter().chain(&messaging_methods) {
        if requirement("grpc", method).is_none() {
            undecided.push(format!("gRPC {method}"));
        }
    }
    assert!(
        undecided.is_empty(),
        "routes and methods without a policy decision in this test: {undecided:?}"
    );

    for principal in PRINCIPALS {
        for scope in [Scope::A, Scope::B] {
            for (method, path) in &http_routes {
                let need = requirement(method.as_str(), path).unwrap();
                let came = http_call(&fixture, principal, method, path, scope).await;
                let audited = match (method.as_str(), need) {
                    (_, Need::Nothing | Need::SubjectList) => None,
                    (_, need) => audited(need, scope, &fixture),
                };
                judge(
                    &mut failures,
                    &mut expected_audit,
                    &format!("{method} {path}"),
                    principal,
                    need,
                    scope,
                    &came,
                    audited,
                );
            }
            for method in &registry_methods {
                let need = requirement("grpc", method).unwrap();
                let came = registry_call(&fixture, principal, method, scope).await;
                let audited = audited(need, scope, &fixture);
                judge(
                    &mut failures,
                    &mut expected_audit,
                    &format!("registry {method}"),
                    principal,
                    need,
                    scope,
                    &came,
                    audited,
                );
                if method == "Watch" {
                    // The changes Watch's row makes (as admin) are audited as admin's.
                    for scope in [Scope::A, Scope::B] {
                        expected_audit.push((
                            "admin".to_owned(),
                            "config".to_owned(),
                            format!("subject:{}", scope.subject()),
                            false,
                        ));
                    }
                }
            }
        }
    }
    // The registry's audit log: exactly the lines expected (as a multiset).
    let mut seen: Vec<(String, String, String, bool)> = audit_lines(&fixture.registry_log)
        .into_iter()
        .filter(|(principal, ..)| PRINCIPALS.contains(&principal.as_str()))
        .map(|(principal, action, resource, denied, line)| {
            for field in ["timestamp", "service", "auth_method", "outcome", "peer"] {
                assert!(
                    line.get(field).is_some(),
                    "audit line without {field}: {line}"
                );
            }
            assert_eq!(line["service"], "registry", "{line}");
            assert_eq!(line["auth_method"], "basic", "{line}");
            (principal, action, resource, denied)
        })
        .collect();
    // And the fixture's own registrations, as admin.
    let mut expected_registry: Vec<_> = expected_audit.clone();
    for scope in [Scope::A, Scope::B] {
        expected_registry.push((
            "admin".to_owned(),
            "write".to_owned(),
            format!("subject:{}", scope.subject()),
            false,
        ));
    }
    seen.sort();
    expected_registry.sort();
    if seen != expected_registry {
        let missing: Vec<_> = expected_registry
            .iter()
            .filter(|line| !seen.contains(line))
            .collect();
        let extra: Vec<_> = seen
            .iter()
            .filter(|line| !expected_registry.contains(line))
            .collect();
        failures.push(format!(
            "registry audit: {} lines, {} expected; missing {missing:?}; unexpected {extra:?}",
            seen.len(),
            expected_registry.len()
        ));
    }

    // The fixture's own topics, as admin.
    let mut expected_messaging: Expected = [Scope::A, Scope::B]
        .iter()
        .map(|scope| {
            (
                "admin".to_owned(),
                "create".to_owned(),
                format!("topic:{}", scope.topic()),
                false,
            )
        })
        .collect();
    for principal in PRINCIPALS {
        for scope in [Scope::A, Scope::B] {
            for method in &messaging_methods {
                let need = requirement("grpc", method).unwrap();
                let came = messaging_call(&fixture, principal, method, scope).await;
                let audited = match need {
                    Need::Topic(action @ ("create" | "delete")) => {
                        Some((action, format!("topic:{}-by-{principal}", scope.topic())))
                    }
                    // The first permission the subscription lacks is the one audited.
                    Need::Subscription => [
                        (
                            "consume",
                            Need::Topic("consume"),
                            format!("topic:{}", scope.topic()),
                        ),
                        (
                            "read",
                            Need::Group("read"),
                            format!("group:{}", scope.group()),
                        ),
                        (
                            "commit",
                            Need::Group("commit"),
                            format!("group:{}", scope.group()),
                        ),
                    ]
                    .into_iter()
                    .find(|(_, need, _)| !may(principal, *need, scope))
                    .map(|(action, _, resource)| (action, resource)),
                    need => audited(need, scope, &fixture),
                };
                judge(
                    &mut failures,
                    &mut expected_messaging,
                    &format!("messaging {method}"),
                    principal,
                    need,
                    scope,
                    &came,
                    audited,
                );
            }
        }
    }
    let mut seen: Vec<(String, String, String, bool)> = audit_lines(&fixture.messaging_log)
        .into_iter()
        .filter(|(principal, ..)| PRINCIPALS.contains(&principal.as_str()))
        .map(|(principal, action, resource, denied, _)| (principal, action, resource, denied))
        .collect();
    seen.sort();
    expected_messaging.sort();
    if seen != expected_messaging {
        failures.push(format!(
            "messaging audit: {seen:?}\nexpected {expected_messaging:?}"
        ));
    }
    let written = std::fs::read_to_string(&fixture.registry_log).unwrap()
        + &std::fs::read_to_string(&fixture.messaging_log).unwrap();
    for (principal, password) in &fixture.passwords {
        assert!(
            !written.contains(password.as_str()),
            "{principal}'s password in a log"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_changed_policy_applies_within_5_s_and_a_broken_one_keeps_the_last_good() {
    let dir = pki().dir.join(unique_name("reload"));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.yaml");
    let denying = "roles:\n  r:\n    rules:\n      - allow: [read]\n        on: ['subject:other-*']\nbindings:\n  - {role: r, to: ['user:admin']}\n";
    let allowing = "roles:\n  r:\n    rules:\n      - allow: [read, write]\n        on: ['subject:*']\nbindings:\n  - {role: r, to: ['user:admin']}\n";
    std::fs::write(&policy, denying).unwrap();
    let log = dir.join("registry.log");
    let database = TestDatabase::create().await;
    let policy_path = policy.display().to_string();
    let registry = RegistryProcess::spawn_logging_to(
        &database.url,
        &[
            ("AUTHZ_POLICY_FILE", policy_path.as_str()),
            ("FILES_RELOAD_INTERVAL_MS", "200"),
            ("RUST_LOG", "info"),
        ],
        Some(std::fs::File::create(&log).unwrap()),
    )
    .await;
    let client = || async { tributary_tests::connect(registry.addr).await };
    let list = |mut c: RegistryServiceClient<tributary_tests::AuthChannel>| async move {
        c.list_versions(rpb::ListVersionsRequest {
            subject: "s".to_owned(),
            include_deleted: false,
        })
        .await
    };
    let denied = list(client().await).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");

    // Clients loop while the policy changes: every answer is the old or the new decision,
    // never anything else.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loops = Vec::new();
    for _ in 0..3 {
        let (stop, addr) = (std::sync::Arc::clone(&stop), registry.addr);
        loops.push(tokio::spawn(async move {
            let mut other = 0;
            let mut c = tributary_tests::connect(addr).await;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match c
                    .list_versions(rpb::ListVersionsRequest {
                        subject: "s".to_owned(),
                        include_deleted: false,
                    })
                    .await
                {
                    Err(status)
                        if matches!(
                            status.code(),
                            tonic::Code::PermissionDenied | tonic::Code::NotFound
                        ) => {}
                    Ok(_) => {}
                    Err(_) => other += 1,
                }
            }
            other
        }));
    }
    std::fs::write(&policy, allowing).unwrap();
    let changed = std::time::Instant::now();
    loop {
        match list(client().await).await {
            Err(status) if status.code() == tonic::Code::NotFound => break,
            _ if changed.elapsed() > Duration::from_secs(5) => {
                panic!("the new policy did not apply within 5 s")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    // A broken file: the last good policy stays, the failure is logged and counted.
    std::fs::write(&policy, "roles: [this is: not a policy").unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let status = list(client().await).await.unwrap_err();
    assert_eq!(
        status.code(),
        tonic::Code::NotFound,
        "still the good policy: {status:?}"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in loops {
        assert_eq!(
            task.await.unwrap(),
            0,
            "answers other than the two decisions"
        );
    }
    let metrics = tributary_tests::scrape(registry.metrics_addr).await;
    assert_eq!(
        tributary_tests::sample(
            &metrics,
            "tributary_authz_policy_reload_failures_total",
            &[("service", "registry")]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        tributary_tests::sample(
            &metrics,
            "tributary_authz_policy_stale",
            &[("service", "registry")]
        ),
        Some(1.0),
        "the file as it is does not load: {metrics}"
    );
    assert!(
        tributary_tests::sample(
            &metrics,
            "tributary_authz_denials_total",
            &[("action", "read"), ("service", "registry")]
        )
        .is_some_and(|denials| denials >= 1.0),
        "{metrics}"
    );
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(
        written.contains("cannot reload after its files changed")
            && written.contains("the authorization policy"),
        "{written}"
    );
}

#[tokio::test]
async fn a_policy_that_does_not_load_stops_the_service_at_startup() {
    let dir = pki().dir.join(unique_name("broken"));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, "bindings: [{role: nobody, to: ['*']}]\n").unwrap();
    let database = TestDatabase::create().await;
    let mut env: Vec<(&str, String)> = security::server_env();
    env.retain(|(name, _)| *name != "AUTHZ_POLICY_FILE");
    let output = tokio::process::Command::new(tributary_tests::registry_binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("AUTHZ_POLICY_FILE", &policy)
        .env("DATABASE_URL", &database.url)
        .env("REGISTRY_GRPC_ADDR", "127.0.0.1:0")
        .env("REGISTRY_HTTP_ADDR", "127.0.0.1:0")
        .env("REGISTRY_METRICS_ADDR", "127.0.0.1:0")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("binding 1: no role is named 'nobody'"),
        "{stderr}"
    );
    // And without any policy, authentication on: refused, naming both ways out.
    let output = tokio::process::Command::new(tributary_tests::registry_binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("DATABASE_URL", &database.url)
        .env("REGISTRY_GRPC_ADDR", "127.0.0.1:0")
        .env("REGISTRY_HTTP_ADDR", "127.0.0.1:0")
        .env("REGISTRY_METRICS_ADDR", "127.0.0.1:0")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--authz-policy-file") && stderr.contains("--authz none"),
        "{stderr}"
    );
}

#[tokio::test]
async fn registering_a_schema_the_subject_already_has_is_not_audited_as_a_change() {
    let dir = pki().dir.join(unique_name("idempotent"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("registry.log");
    let database = TestDatabase::create().await;
    let registry = RegistryProcess::spawn_logging_to(
        &database.url,
        &[],
        Some(std::fs::File::create(&log).unwrap()),
    )
    .await;
    let mut client = tributary_tests::connect(registry.addr).await;
    let register = |fields: &str| rpb::RegisterSchemaRequest {
        subject: "audited-value".to_owned(),
        schema: format!(r#"{{"type":"record","name":"A","fields":[{fields}]}}"#),
        ..Default::default()
    };
    let first = client
        .register_schema(register(""))
        .await
        .unwrap()
        .into_inner();
    // The same schema again, twice: answered with the same id and version, nothing changed.
    for _ in 0..2 {
        let again = client
            .register_schema(register(""))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((again.id, again.version), (first.id, first.version));
    }
    // A new version is a change again.
    let second = client
        .register_schema(register(r#"{"name":"f","type":"string","default":""}"#))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.version, first.version + 1);
    registry.terminate().await;

    let writes: Vec<_> = audit_lines(&log)
        .into_iter()
        .filter(|(_, action, resource, ..)| {
            action == "write" && resource == "subject:audited-value"
        })
        .map(|(principal, _, _, denied, line)| (principal, denied, line["outcome"].clone()))
        .collect();
    assert_eq!(
        writes,
        vec![
            ("admin".to_owned(), false, json!("succeeded")),
            ("admin".to_owned(), false, json!("succeeded")),
        ],
        "one line per new version, none for the repeats"
    );
}

#[tokio::test]
async fn who_may_read_a_schema_id_follows_its_subjects_at_once() {
    let dir = pki().dir.join(unique_name("usages"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut users = String::new();
    let mut passwords = BTreeMap::new();
    for user in ["admin", "alice"] {
        let password = format!("{user}-{}", unique_name("pw"));
        users.push_str(&format!(
            "{user}:{}\n",
            tributary_security::users::hash_password(password.as_bytes()).unwrap()
        ));
        passwords.insert(user, password);
    }
    std::fs::write(dir.join("users"), users).unwrap();
    std::fs::write(
        dir.join("policy.yaml"),
        "roles:\n  admin:\n    rules:\n      - allow: ['*']\n        on: ['*']\n  team-a:\n    rules:\n      - allow: ['*']\n        on: ['subject:team-a-*']\nbindings:\n  - {role: admin, to: ['user:admin']}\n  - {role: team-a, to: ['user:alice']}\n",
    )
    .unwrap();
    let users = dir.join("users").display().to_string();
    let policy = dir.join("policy.yaml").display().to_string();
    let database = TestDatabase::create().await;
    let registry = RegistryProcess::spawn_with(
        &database.url,
        &[
            ("AUTH_USERS_FILE", users.as_str()),
            ("AUTHZ_POLICY_FILE", policy.as_str()),
        ],
    )
    .await;
    let client = |user: &'static str| {
        let mut value =
            tonic::metadata::MetadataValue::try_from(authorization(user, &passwords[user]))
                .unwrap();
        value.set_sensitive(true);
        let addr = registry.addr;
        async move {
            RegistryServiceClient::new(
                security::channel_with(addr, client_tls(), CallCredentials::Basic(value))
                    .await
                    .unwrap(),
            )
        }
    };
    let mut admin = client("admin").await;
    let mut alice = client("alice").await;
    let schema = r#"{"type":"record","name":"Shared","fields":[]}"#;
    let register = |subject: &str| rpb::RegisterSchemaRequest {
        subject: subject.to_owned(),
        schema: schema.to_owned(),
        ..Default::default()
    };
    let id = admin
        .register_schema(register("team-b-value"))
        .await
        .unwrap()
        .into_inner()
        .id;
    // Only team B's subject uses it: alice may not read it (and that answer is now cached).
    let get = rpb::GetSchemaRequest {
        id,
        ..Default::default()
    };
    let denied = alice.get_schema(get.clone()).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");

    // Waits (up to 1 s: a change event, not an expiry, makes the cached answer stale) until
    // alice's GetSchema answers `code`.
    let answers = |code: tonic::Code| {
        let mut alice = alice.clone();
        let get = get.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(1);
            loop {
                let came = match alice.get_schema(get.clone()).await {
                    Ok(_) => tonic::Code::Ok,
                    Err(status) => status.code(),
                };
                if came == code {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "alice's GetSchema still answers {came:?}, not {code:?}, after 1 s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // The same schema under team A's subject: alice may read the id.
    let again = admin
        .register_schema(register("team-a-value"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, id);
    answers(tonic::Code::Ok).await;
    // Team A's subject deleted for good: the id is team B's alone again.
    for permanent in [false, true] {
        admin
            .delete_subject(rpb::DeleteSubjectRequest {
                subject: "team-a-value".to_owned(),
                permanent,
            })
            .await
            .unwrap();
    }
    answers(tonic::Code::PermissionDenied).await;
    registry.terminate().await;
}
