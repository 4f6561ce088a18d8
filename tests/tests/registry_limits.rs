//! The registry's budgets against hostile requests (issue 15): each is refused with 42209
//! naming the flag that raises its budget, or answered within it (bounded work, capped
//! lists), over gRPC and HTTP; and the registry answers a normal request right after.
//!
//! Nothing here is timed: the inputs are those that took seconds to hours, or gigabytes, before
//! (figures in docs/avro-limits.md); a regression shows as a test that no longer finishes.

#![allow(clippy::unwrap_used)]

use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::Code;
use tributary_proto::registry::v1 as pb;
use tributary_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tributary_tests::{AuthChannel, TestDatabase, TestRegistry, error_code};

const V1: &str = "application/vnd.schemaregistry.v1+json";
/// What no answer may reach.
const MAX_ANSWER: usize = 64 * 1024;
/// What no gRPC error trailer may reach: hyper's (tonic's) clients refuse larger ones (16 KiB),
/// grpc-java's larger than 8 KiB.
const MAX_TRAILER: usize = 8 * 1024;

fn register(subject: &str, schema: &str) -> pb::RegisterSchemaRequest {
    pb::RegisterSchemaRequest {
        subject: subject.to_owned(),
        schema: schema.to_owned(),
        ..Default::default()
    }
}

/// A registry that takes 2 MiB schemas, with `adjust` applied to its budgets.
async fn registry(adjust: impl FnOnce(&mut tributary_registry::config::LimitArgs)) -> TestRegistry {
    TestRegistry::start_with(TestDatabase::create().await, |settings| {
        settings.max_schema_bytes = 2 * 1024 * 1024;
        adjust(&mut settings.limits);
    })
    .await
}

/// A normal request, right after a hostile one: registering a small schema and reading it.
async fn still_answers(registry: &TestRegistry, round: usize) {
    let mut client = registry.client().await;
    let subject = format!("normal-{round}");
    let schema = format!(
        r#"{{"type":"record","name":"Normal{round}","fields":[{{"name":"a","type":"int"}}]}}"#
    );
    let id = client
        .register_schema(register(&subject, &schema))
        .await
        .unwrap_or_else(|status| panic!("round {round}: {status:?}"))
        .into_inner()
        .id;
    let got = client
        .get_schema(pb::GetSchemaRequest {
            id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.schema, schema);
}

/// How many bytes a gRPC error takes in its trailer: the message percent-encoded (at most 3
/// bytes per byte), the details base64-encoded.
fn trailer_bytes(status: &tonic::Status) -> usize {
    let message: usize = status
        .message()
        .bytes()
        .map(|b| {
            if (0x20..0x7f).contains(&b) && b != b'%' {
                1
            } else {
                3
            }
        })
        .sum();
    message + status.details().len().div_ceil(3) * 4
}

/// The `reasons_total` of an incompatible registration's error details.
fn reasons_total(status: &tonic::Status) -> Option<u64> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get("reasons_total"))
        .and_then(|total| total.parse().ok())
}

fn enum_text(symbols: usize) -> String {
    let symbols: Vec<String> = (0..symbols).map(|i| format!("\"S{i}\"")).collect();
    format!(
        r#"{{"type":"enum","name":"E","symbols":[{}]}}"#,
        symbols.join(",")
    )
}

fn record_text(name: &str, fields: impl Iterator<Item = String>) -> String {
    let fields: Vec<String> = fields.collect();
    format!(
        r#"{{"type":"record","name":"{name}","fields":[{}]}}"#,
        fields.join(",")
    )
}

#[tokio::test]
async fn hostile_schemas_get_their_budget_error_and_the_registry_answers_next() {
    let registry = registry(|limits| limits.max_enum_symbols = 200_000).await;
    let mut client = registry.client().await;

    // A 1 MiB enum (115,000 symbols) is accepted: it took 14 s to parse, and held a worker
    // (and the database connections of the requests behind it) all along.
    let big_enum = enum_text(115_000);
    assert!(big_enum.len() > 1_000_000);
    client
        .register_schema(register("big-enum", &big_enum))
        .await
        .unwrap();
    still_answers(&registry, 0).await;

    // Defaults that Java validates 2^60 times: accepted, each validated once.
    let mut defaults = String::from(
        r#"{"type":"record","name":"R0","fields":[{"name":"x","type":"int","default":1}]}"#,
    );
    for k in 1..60 {
        defaults = format!(
            r#"{{"type":"record","name":"R{k}","fields":[{{"name":"a","type":{defaults},"default":{{}}}},{{"name":"b","type":"R{}","default":{{}}}}]}}"#,
            k - 1
        );
    }
    client
        .register_schema(register("defaults", &defaults))
        .await
        .unwrap();
    still_answers(&registry, 1).await;

    // Over a budget: 42209 naming the flag and its variable.
    let wide_default = {
        let fields: Vec<String> = (0..10_000)
            .map(|i| format!(r#"{{"name":"f{i}","type":"int","default":0}}"#))
            .collect();
        let items: Vec<&str> = std::iter::repeat_n("{}", 100_000).collect();
        format!(
            r#"{{"type":"record","name":"Top","fields":[{{"name":"xs","type":{{"type":"array","items":{{"type":"record","name":"Wide","fields":[{}]}}}},"default":[{}]}}]}}"#,
            fields.join(","),
            items.join(",")
        )
    };
    let cases = [
        (
            r#"{"type":"bytes","logicalType":"decimal","precision":2147483647,"scale":2147483647}"#
                .to_owned(),
            "--max-decimal-precision (REGISTRY_MAX_DECIMAL_PRECISION)",
            Code::InvalidArgument,
        ),
        (
            record_text(
                "R",
                (0..10_001).map(|i| format!(r#"{{"name":"f{i}","type":"int"}}"#)),
            ),
            "--max-record-fields (REGISTRY_MAX_RECORD_FIELDS)",
            Code::InvalidArgument,
        ),
        (
            r#"{"type":"array","items":"#.repeat(300) + "\"int\"" + &"}".repeat(300),
            "--max-schema-depth (REGISTRY_MAX_SCHEMA_DEPTH)",
            Code::InvalidArgument,
        ),
        (
            format!(
                "[{}]",
                (0..1_001)
                    .map(|i| format!(r#"{{"type":"fixed","name":"F{i}","size":1}}"#))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            "--max-union-branches (REGISTRY_MAX_UNION_BRANCHES)",
            Code::InvalidArgument,
        ),
        (
            format!(
                r#"{{"type":"fixed","name":"{}","size":1}}"#,
                "N".repeat(2_000)
            ),
            "--max-name-bytes (REGISTRY_MAX_NAME_BYTES)",
            Code::InvalidArgument,
        ),
        // A billion steps of default validation: refused after the budget's five million.
        (
            wide_default,
            "--max-schema-work (REGISTRY_MAX_SCHEMA_WORK)",
            Code::ResourceExhausted,
        ),
        (
            " ".repeat(2 * 1024 * 1024 + 1) + "\"int\"",
            "--max-schema-bytes (REGISTRY_MAX_SCHEMA_BYTES)",
            Code::InvalidArgument,
        ),
    ];
    for (round, (schema, flag, code)) in cases.into_iter().enumerate() {
        let status = client
            .register_schema(register("hostile", &schema))
            .await
            .expect_err(flag);
        assert_eq!(status.code(), code, "{flag}: {status:?}");
        assert_eq!(error_code(&status), Some(42209), "{flag}");
        assert!(
            status.message().contains(flag),
            "{flag}: {}",
            status.message()
        );
        still_answers(&registry, 10 + round).await;
    }

    // The same over HTTP: 422, 42209, the flag named.
    let http = tributary_tests::security::admin_http_client();
    let response = http
        .post(format!("{}/subjects/hostile/versions", registry.http_url()))
        .header(reqwest::header::CONTENT_TYPE, V1)
        .json(&json!({"schema": r#"{"type":"bytes","logicalType":"decimal","precision":5000,"scale":2}"#}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], 42209);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("--max-decimal-precision"),
        "{body}"
    );
    still_answers(&registry, 100).await;
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn compatibility_of_thousands_of_incompatibilities_is_answered_within_64_kib() {
    let registry = registry(|limits| {
        limits.max_record_fields = 20_000;
        limits.max_named_types = 20_000;
    })
    .await;
    let mut client = registry.client().await;
    let http = tributary_tests::security::admin_http_client();
    let old = r#"{"type":"record","name":"R","fields":[{"name":"id","type":"long"}]}"#;
    client.register_schema(register("wide", old)).await.unwrap();

    // 12,000 added record fields without defaults (1.1 MB): out of memory before; 4,000 took
    // 2-3 GB and 6-15 s.
    let added = record_text(
        "R",
        std::iter::once(r#"{"name":"id","type":"long"}"#.to_owned()).chain((0..12_000).map(|i| {
            format!(
                r#"{{"name":"f{i}","type":{{"type":"record","name":"N{i}","fields":[{{"name":"x","type":"int"}}]}}}}"#
            )
        })),
    );
    let checked = client
        .check_compatibility(pb::CheckCompatibilityRequest {
            subject: "wide".into(),
            schema: added.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!checked.is_compatible);
    assert_eq!(checked.total_incompatibilities, 12_000);
    assert_eq!(checked.incompatibilities.len(), 100);
    assert_eq!(
        checked.incompatibilities[0].kind,
        "READER_FIELD_MISSING_DEFAULT_VALUE"
    );
    assert!(
        checked.encoded_len() < MAX_ANSWER,
        "{}",
        checked.encoded_len()
    );
    still_answers(&registry, 0).await;

    let status = client
        .register_schema(register("wide", &added))
        .await
        .expect_err("incompatible");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("more incompatibilities"),
        "{}",
        status.message()
    );
    assert_eq!(reasons_total(&status), Some(12_000));
    assert!(
        trailer_bytes(&status) < MAX_TRAILER,
        "{}",
        trailer_bytes(&status)
    );
    still_answers(&registry, 1).await;

    let response = http
        .post(format!(
            "{}/compatibility/subjects/wide/versions/latest?verbose=true",
            registry.http_url()
        ))
        .header(reqwest::header::CONTENT_TYPE, V1)
        .json(&json!({ "schema": added }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.bytes().await.unwrap();
    assert!(body.len() < MAX_ANSWER, "{}", body.len());
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["is_compatible"], false);
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 101);
    assert!(
        messages[100].as_str().unwrap().contains("11900 more"),
        "{}",
        messages[100]
    );
    let response = http
        .post(format!("{}/subjects/wide/versions", registry.http_url()))
        .header(reqwest::header::CONTENT_TYPE, V1)
        .json(&json!({ "schema": added }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.bytes().await.unwrap().len() < MAX_ANSWER);
    still_answers(&registry, 2).await;

    // 20,000 incompatibilities, both ways under FULL (a 5.8 MB trailer before).
    let ints = record_text(
        "Row",
        (0..10_000).map(|i| format!(r#"{{"name":"f{i}","type":"int"}}"#)),
    );
    let strings = record_text(
        "Row",
        (0..10_000).map(|i| format!(r#"{{"name":"f{i}","type":"string"}}"#)),
    );
    client
        .register_schema(register("full", &ints))
        .await
        .unwrap();
    client
        .set_compatibility_level(pb::SetCompatibilityLevelRequest {
            subject: "full".into(),
            level: pb::CompatibilityLevel::Full as i32,
        })
        .await
        .unwrap();
    let status = client
        .register_schema(register("full", &strings))
        .await
        .expect_err("incompatible both ways");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("more incompatibilities"),
        "{}",
        status.message()
    );
    assert_eq!(reasons_total(&status), Some(20_000));
    assert!(
        trailer_bytes(&status) < MAX_TRAILER,
        "{}",
        trailer_bytes(&status)
    );
    still_answers(&registry, 3).await;
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn an_expensive_compatibility_check_stops_at_the_work_budget() {
    let registry = registry(|_| {}).await;
    let mut client = registry.client().await;
    // A union of 1,000 records against 1,000 differently named ones: a million pairs of types
    // (8.8 s before).
    let union = |prefix: &str| {
        let branches: Vec<String> = (0..1_000)
            .map(|i| {
                format!(
                    r#"{{"type":"record","name":"{prefix}{i}","fields":[{{"name":"a","type":"int"}}]}}"#
                )
            })
            .collect();
        format!("[{}]", branches.join(","))
    };
    client
        .register_schema(register("unions", &union("R")))
        .await
        .unwrap();
    let status = client
        .check_compatibility(pb::CheckCompatibilityRequest {
            subject: "unions".into(),
            schema: union("W"),
            ..Default::default()
        })
        .await
        .expect_err("over the work budget");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(error_code(&status), Some(42209));
    assert!(
        status
            .message()
            .contains("--max-schema-work (REGISTRY_MAX_SCHEMA_WORK)"),
        "{}",
        status.message()
    );
    still_answers(&registry, 0).await;
    registry.stop().await.unwrap();
}

/// Registers a diamond of references `depth` levels deep under `prefix`: level i has two
/// records, each with optional fields of both records of level i + 1; returns the top's
/// references.
async fn register_diamond(
    client: &mut RegistryServiceClient<AuthChannel>,
    prefix: &str,
    depth: usize,
) -> Vec<pb::SchemaReference> {
    let reference = |level: usize, side: &str| pb::SchemaReference {
        name: format!("{prefix}{side}{level}"),
        subject: format!("{prefix}-{side}{level}"),
        version: 1,
    };
    for level in (1..=depth).rev() {
        for side in ["A", "B"] {
            let (schema, references) = if level == depth {
                (
                    format!(
                        r#"{{"type":"record","name":"{prefix}{side}{level}","fields":[{{"name":"x","type":"int"}}]}}"#
                    ),
                    Vec::new(),
                )
            } else {
                let next = level + 1;
                (
                    format!(
                        r#"{{"type":"record","name":"{prefix}{side}{level}","fields":[{{"name":"a","type":["null","{prefix}A{next}"],"default":null}},{{"name":"b","type":["null","{prefix}B{next}"],"default":null}}]}}"#
                    ),
                    vec![reference(next, "A"), reference(next, "B")],
                )
            };
            client
                .register_schema(pb::RegisterSchemaRequest {
                    references,
                    ..register(&format!("{prefix}-{side}{level}"), &schema)
                })
                .await
                .unwrap_or_else(|status| panic!("{prefix}{side}{level}: {status:?}"));
        }
    }
    vec![reference(1, "A"), reference(1, "B")]
}

/// A record with optional fields of the two records at the top of a diamond.
fn diamond_top(prefix: &str) -> String {
    format!(
        r#"{{"type":"record","name":"{prefix}Top","fields":[{{"name":"a","type":["null","{prefix}A1"],"default":null}},{{"name":"b","type":["null","{prefix}B1"],"default":null}}]}}"#
    )
}

#[tokio::test]
async fn references_are_resolved_once_each_within_their_budgets() {
    let registry = registry(|limits| {
        limits.max_references = 30;
        limits.max_reference_depth = 14;
    })
    .await;
    let mut client = registry.client().await;
    // A diamond 14 deep: 28 schemas, 2^15 paths.
    let top = register_diamond(&mut client, "d", 14).await;
    client
        .register_schema(pb::RegisterSchemaRequest {
            references: top.clone(),
            ..register("d-top", &diamond_top("d"))
        })
        .await
        .unwrap();
    still_answers(&registry, 0).await;

    // Deeper than --max-reference-depth.
    let top = register_diamond(&mut client, "e", 15).await;
    let status = client
        .register_schema(pb::RegisterSchemaRequest {
            references: top,
            ..register("e-top", &diamond_top("e"))
        })
        .await
        .expect_err("15 deep");
    assert_eq!(error_code(&status), Some(42209));
    assert!(
        status
            .message()
            .contains("--max-reference-depth (REGISTRY_MAX_REFERENCE_DEPTH)"),
        "{}",
        status.message()
    );
    still_answers(&registry, 1).await;

    // More schemas than --max-references: 31 leaves.
    let mut references = Vec::new();
    let mut fields = Vec::new();
    for i in 0..31 {
        let name = format!("Leaf{i}");
        client
            .register_schema(register(
                &format!("leaf-{i}"),
                &format!(r#"{{"type":"fixed","name":"{name}","size":1}}"#),
            ))
            .await
            .unwrap();
        references.push(pb::SchemaReference {
            name: name.clone(),
            subject: format!("leaf-{i}"),
            version: 1,
        });
        fields.push(format!(r#"{{"name":"f{i}","type":"{name}"}}"#));
    }
    let status = client
        .register_schema(pb::RegisterSchemaRequest {
            references,
            ..register("leaves", &record_text("Leaves", fields.into_iter()))
        })
        .await
        .expect_err("31 references");
    assert_eq!(error_code(&status), Some(42209));
    assert!(
        status
            .message()
            .contains("--max-references (REGISTRY_MAX_REFERENCES)"),
        "{}",
        status.message()
    );
    still_answers(&registry, 2).await;
    registry.stop().await.unwrap();
}
