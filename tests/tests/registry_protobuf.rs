//! Protobuf schemas in the registry against a real Postgres, over Confluent's HTTP API and
//! gRPC: registration and dedup (text and base64 descriptors are one schema), lookup, the
//! `serialized` and `ignore_extensions` formats, imports as references across subjects,
//! normalisation, the compatibility rules at every level (the cases of
//! crates/protobuf/tests/data/compat), and bad input: clear 42201/42209 answers, never a 500.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tributary_proto::registry::v1 as pb;
use tributary_tests::registry_http::{Api, assert_error, check_at_every_level, compat_cases};
use tributary_tests::{TestDatabase, TestRegistry};

const ORDER_V1: &str = r#"syntax = "proto3";
package shop.v1;

import "google/protobuf/timestamp.proto";
import "google/protobuf/descriptor.proto";
import "confluent/meta.proto";

extend google.protobuf.FieldOptions {
  string sensitivity = 50001;
}

// An order.
message Order {
  string id = 1 [(confluent.field_meta).doc = "the order id", (sensitivity) = "internal"];
  repeated Line lines = 2;
  map<string, string> tags = 3;
  Status status = 4;
  oneof payment {
    string card = 5;
    string iban = 6;
  }
  google.protobuf.Timestamp placed_at = 7;

  message Line {
    string sku = 1;
    uint32 count = 2;
  }
}

enum Status {
  STATUS_UNSPECIFIED = 0;
  STATUS_PLACED = 1;
}
"#;

async fn register(api: &Api, subject: &str, body: Value) -> (StatusCode, Value) {
    api.post(&format!("/subjects/{subject}/versions"), body)
        .await
}

async fn register_id(api: &Api, subject: &str, body: Value) -> i64 {
    let (status, answer) = register(api, subject, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["id"].as_i64().unwrap()
}

fn proto(schema: &str) -> Value {
    json!({ "schemaType": "PROTOBUF", "schema": schema })
}

#[tokio::test]
async fn protobuf_schemas_register_dedup_and_are_served_in_every_format() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);

    assert_eq!(
        api.get("/schemas/types").await,
        (StatusCode::OK, json!(["AVRO", "PROTOBUF", "JSON"]))
    );

    let id = register_id(&api, "orders-value", proto(ORDER_V1)).await;
    // Comments and whitespace do not make another schema.
    let reformatted = ORDER_V1.replace("// An order.\n", "").replace("  ", "    ");
    assert_eq!(
        register_id(&api, "orders-value", proto(&reformatted)).await,
        id
    );

    let (status, by_id) = api.get(&format!("/schemas/ids/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id["schemaType"], "PROTOBUF");
    let stored = by_id["schema"].as_str().unwrap().to_owned();
    assert!(stored.contains("message Order"), "{stored}");

    // The serialized descriptor is the same schema: registering it (as Confluent's serializers
    // do) finds the same id, and a lookup by it finds the version.
    let (status, serialized) = api
        .get(&format!("/schemas/ids/{id}?format=serialized"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let encoded = serialized["schema"].as_str().unwrap().to_owned();
    let descriptor = base64::engine::general_purpose::STANDARD
        .decode(&encoded)
        .unwrap();
    let file: prost_types::FileDescriptorProto = prost::Message::decode(&descriptor[..]).unwrap();
    assert_eq!(file.package(), "shop.v1");
    assert_eq!(file.message_type[0].name(), "Order");
    assert_eq!(
        register_id(&api, "orders-copy-value", proto(&encoded)).await,
        id
    );
    let (status, found) = api.post("/subjects/orders-value", proto(&encoded)).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(
        (found["version"].as_i64(), found["id"].as_i64()),
        (Some(1), Some(id))
    );
    assert_eq!(found["schemaType"], "PROTOBUF");

    // Without custom options.
    let response = api
        .client
        .get(api.url(&format!(
            "/schemas/ids/{id}/schema?format=ignore_extensions"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains("message Order"), "{text}");
    // Custom options and extensions go; Confluent's own meta options stay (as in Confluent).
    assert!(stored.contains("sensitivity"), "{stored}");
    assert!(!text.contains("sensitivity"), "{text}");
    assert!(text.contains("field_meta"), "{text}");
    // An Avro format is not a Protobuf one.
    assert_error(
        &api.get(&format!("/schemas/ids/{id}?format=resolved")).await,
        422,
        422,
    );

    let (status, version) = api.get("/subjects/orders-value/versions/latest").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(version["schemaType"], "PROTOBUF");
    assert_eq!(version["schema"], json!(stored));

    // gRPC sees the same schema, in the same formats.
    let mut client = registry.client().await;
    let schema = client
        .get_schema(pb::GetSchemaRequest {
            id: i32::try_from(id).unwrap(),
            format: "serialized".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (schema.schema_type.as_str(), schema.schema),
        ("PROTOBUF", encoded)
    );
    let registered = client
        .register_schema(pb::RegisterSchemaRequest {
            subject: "orders-grpc-value".to_owned(),
            schema: ORDER_V1.to_owned(),
            schema_type: "PROTOBUF".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(i64::from(registered.id), id);

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn imports_are_references_across_subjects() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);

    let common = "syntax = \"proto3\";\npackage shop.common;\nmessage Money { string currency = 1; int64 units = 2; }\n";
    let common_id = register_id(&api, "shop-common", proto(common)).await;
    let order = "syntax = \"proto3\";\npackage shop.v1;\nimport \"shop/common.proto\";\nmessage Order { shop.common.Money total = 1; }\n";

    // Without the reference the import is named.
    let missing = register(&api, "orders-value", proto(order)).await;
    assert_error(&missing, 422, 42201);
    assert!(
        missing.1["message"]
            .as_str()
            .unwrap()
            .contains("'shop/common.proto'"),
        "{}",
        missing.1
    );

    let with_reference = json!({
        "schemaType": "PROTOBUF",
        "schema": order,
        "references": [{"name": "shop/common.proto", "subject": "shop-common", "version": 1}],
    });
    let id = register_id(&api, "orders-value", with_reference.clone()).await;
    assert_eq!(
        api.get("/subjects/shop-common/versions/1/referencedby")
            .await,
        (StatusCode::OK, json!([id]))
    );
    let (_, version) = api.get("/subjects/orders-value/versions/1").await;
    assert_eq!(
        version["references"],
        json!([{"name": "shop/common.proto", "subject": "shop-common", "version": 1}])
    );
    // The serialized form names the import; a reference to a version that does not exist is
    // refused.
    let (_, serialized) = api
        .get(&format!("/schemas/ids/{id}?format=serialized"))
        .await;
    let descriptor = base64::engine::general_purpose::STANDARD
        .decode(serialized["schema"].as_str().unwrap())
        .unwrap();
    let file: prost_types::FileDescriptorProto = prost::Message::decode(&descriptor[..]).unwrap();
    assert_eq!(file.dependency, ["shop/common.proto"]);
    let mut wrong = with_reference;
    wrong["references"][0]["version"] = json!(7);
    assert_error(&register(&api, "other-value", wrong).await, 422, 42201);
    assert!(common_id > 0);

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn normalize_makes_equivalent_schemas_one() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);

    let a = "syntax = \"proto3\";\npackage n;\nimport \"google/protobuf/timestamp.proto\";\nimport \"google/protobuf/duration.proto\";\noption java_package = \"n.j\";\noption go_package = \"n/g\";\nmessage M { string a = 1; google.protobuf.Timestamp t = 2; google.protobuf.Duration d = 3; }\n";
    let b = "syntax = \"proto3\";\npackage n;\nimport \"google/protobuf/duration.proto\";\nimport \"google/protobuf/timestamp.proto\";\noption go_package = \"n/g\";\noption java_package = \"n.j\";\nmessage M { google.protobuf.Timestamp t = 2; string a = 1; google.protobuf.Duration d = 3; }\n";
    let normalized = |schema: &str| json!({"schemaType": "PROTOBUF", "schema": schema});
    let first = api
        .post("/subjects/n-value/versions?normalize=true", normalized(a))
        .await;
    let second = api
        .post("/subjects/n-value/versions?normalize=true", normalized(b))
        .await;
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    assert_eq!(first.1["id"], second.1["id"], "{} {}", first.1, second.1);
    // Without normalize they are two schemas.
    let plain_a = register_id(&api, "p-value", proto(a)).await;
    let (status, _) = api
        .put("/config/p-value", json!({"compatibility": "NONE"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let plain_b = register_id(&api, "p-value", proto(b)).await;
    assert_ne!(plain_a, plain_b);
    // A lookup with normalize finds the normalized version.
    let (status, found) = api
        .post("/subjects/n-value?normalize=true", normalized(b))
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["version"], 1);

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn compatibility_of_protobuf_schemas_at_every_level() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);

    let v1 = "syntax = \"proto3\";\npackage c;\nmessage M { string a = 1; int32 b = 2; }\n";
    let v2 = "syntax = \"proto3\";\npackage c;\nmessage M { string a = 1; int32 b = 2; string c = 3; }\n";
    // Field 1 changes kind: incompatible both ways.
    let kind_changed =
        "syntax = \"proto3\";\npackage c;\nmessage M { int64 a = 1; int32 b = 2; string c = 3; }\n";

    register_id(&api, "c-value", proto(v1)).await;
    register_id(&api, "c-value", proto(v2)).await;
    let refused = register(&api, "c-value", proto(kind_changed)).await;
    assert_error(&refused, 409, 409);
    let (status, verbose) = api
        .post(
            "/compatibility/subjects/c-value/versions/latest?verbose=true",
            proto(kind_changed),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verbose["is_compatible"], false);
    let messages = verbose["messages"].to_string();
    assert!(messages.contains("FIELD"), "{messages}");

    // A different schema type is never compatible.
    let (status, avro) = api
        .post(
            "/compatibility/subjects/c-value/versions/latest",
            json!({"schema": "\"string\""}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(avro["is_compatible"], false);

    // Every level over the data-file cases.
    let cases = compat_cases(&format!(
        "{}/../crates/protobuf/tests/data/compat",
        env!("CARGO_MANIFEST_DIR")
    ));
    assert!(cases.len() >= 40, "{} cases", cases.len());
    check_at_every_level(&api, "PROTOBUF", &cases).await;

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn bad_protobuf_schemas_get_clear_answers_within_the_budgets() {
    // The production default of --max-schema-bytes (the harness's is 64 KiB).
    let registry = TestRegistry::start_with(TestDatabase::create().await, |settings| {
        settings.max_schema_bytes = 1024 * 1024;
    })
    .await;
    let api = Api::new(&registry);

    let within = |started: Instant| {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    };
    let cases: Vec<(&str, String, u64, &str)> = vec![
        (
            "broken syntax",
            "syntax = \"proto3\";\nmessage M {\n  string a = ;\n}\n".to_owned(),
            42201,
            "schema:3:",
        ),
        (
            "an import of itself (a cycle)",
            "syntax = \"proto3\";\nimport \"default\";\nmessage M {}\n".to_owned(),
            42201,
            "cycle",
        ),
        (
            "an unknown import",
            "syntax = \"proto3\";\nimport \"nope/x.proto\";\nmessage M {}\n".to_owned(),
            42201,
            "'nope/x.proto'",
        ),
        (
            "an unknown type",
            "syntax = \"proto3\";\nmessage M { Missing m = 1; }\n".to_owned(),
            42201,
            "Missing",
        ),
        (
            "a duplicate field number",
            "syntax = \"proto3\";\nmessage M { string a = 1; string b = 1; }\n".to_owned(),
            42201,
            "1",
        ),
        (
            "not base64 either",
            "bm90IGEgZGVzY3JpcHRvcg==".to_owned(),
            42201,
            "schema",
        ),
        (
            "10,001 fields",
            format!(
                "syntax = \"proto3\";\nmessage W {{\n{}}}\n",
                (1..=10_001)
                    .map(|n| format!("  int32 f{n} = {n};\n"))
                    .collect::<String>()
            ),
            42209,
            "--max-record-fields",
        ),
        (
            "10,000 levels of nesting",
            format!(
                "syntax = \"proto3\";\n{}{}",
                "message M {".repeat(10_000),
                "}".repeat(10_000)
            ),
            42209,
            "nesting",
        ),
        (
            "over a mebibyte",
            format!(
                "syntax = \"proto3\";\n// {}\nmessage M {{}}\n",
                "x".repeat(1024 * 1024)
            ),
            42209,
            "bytes",
        ),
    ];
    for (name, schema, code, names) in cases {
        let started = Instant::now();
        let answer = register(&api, "bad-value", proto(&schema)).await;
        within(started);
        assert_error(&answer, 422, code);
        let message = answer.1["message"].as_str().unwrap();
        assert!(message.contains(names), "{name}: {message}");
    }
    // A big schema within the budgets is accepted in time: 5,000 fields.
    let wide = format!(
        "syntax = \"proto3\";\nmessage Wide {{\n{}}}\n",
        (1..=5_000)
            .map(|n| format!("  string field_{n} = {n};\n"))
            .collect::<String>()
    );
    let started = Instant::now();
    register_id(&api, "wide-value", proto(&wide)).await;
    within(started);
    // An unknown schema type names the ones served.
    let answer = register(
        &api,
        "bad-value",
        json!({"schemaType": "XML", "schema": "<a/>"}),
    )
    .await;
    assert_error(&answer, 422, 42201);
    assert!(answer.1["message"].as_str().unwrap().contains("PROTOBUF"));
    // Nothing was half-written.
    assert_error(&api.get("/subjects/bad-value/versions").await, 404, 40401);

    registry.stop().await.unwrap();
}
