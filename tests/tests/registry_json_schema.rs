//! JSON Schema in the registry against a real Postgres, over Confluent's HTTP API and gRPC:
//! registration and dedup, lookup, `$ref`s to other subjects, normalisation, the compatibility
//! rules at every level (the cases of crates/jsonschema/tests/data/compat), and bad input:
//! invalid schemas, remote `$ref`s (never fetched), cycles, a mebibyte: clear 42201/42209
//! answers in time, never a 500.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tributary_proto::registry::v1 as pb;
use tributary_tests::registry_http::{Api, assert_error, check_at_every_level, compat_cases};
use tributary_tests::{TestDatabase, TestRegistry};

fn order() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Order",
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "amount": {"type": "number", "minimum": 0},
            "lines": {"type": "array", "items": {"$ref": "#/definitions/line"}}
        },
        "required": ["id"],
        "definitions": {"line": {"type": "object", "properties": {"sku": {"type": "string"}}}}
    })
}

fn schema_body(schema: &str) -> Value {
    json!({ "schemaType": "JSON", "schema": schema })
}

async fn register(api: &Api, subject: &str, body: Value) -> (StatusCode, Value) {
    api.post(&format!("/subjects/{subject}/versions"), body)
        .await
}

async fn register_id(api: &Api, subject: &str, body: Value) -> i64 {
    let (status, answer) = register(api, subject, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["id"].as_i64().unwrap()
}

#[tokio::test]
async fn json_schemas_register_dedup_and_resolve_references() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);

    let (status, types) = api.get("/schemas/types").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        types.as_array().unwrap().contains(&json!("JSON")),
        "{types}"
    );

    let id = register_id(&api, "orders-value", schema_body(&order().to_string())).await;
    // The same schema pretty-printed: one schema.
    let pretty = serde_json::to_string_pretty(&order()).unwrap();
    assert_eq!(
        register_id(&api, "orders-value", schema_body(&pretty)).await,
        id
    );
    let (status, by_id) = api.get(&format!("/schemas/ids/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id["schemaType"], "JSON");
    let stored: Value = serde_json::from_str(by_id["schema"].as_str().unwrap()).unwrap();
    assert_eq!(stored, order());
    let (status, found) = api
        .post("/subjects/orders-value", schema_body(&pretty))
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(
        (found["version"].as_i64(), found["schemaType"].as_str()),
        (Some(1), Some("JSON"))
    );
    // The same text as another type is another schema: JSON and AVRO do not share ids.
    let (status, _) = api
        .post("/subjects/orders-value", json!({"schema": pretty}))
        .await;
    assert_ne!(status, StatusCode::OK);

    // A $ref to another subject's schema, by the reference's name.
    let address =
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    register_id(&api, "address", schema_body(&address.to_string())).await;
    let customer = json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "home": {"$ref": "address.json"}}
    });
    let without = register(&api, "customers-value", schema_body(&customer.to_string())).await;
    assert_error(&without, 422, 42201);
    assert!(
        without.1["message"]
            .as_str()
            .unwrap()
            .contains("address.json"),
        "{}",
        without.1
    );
    let with_reference = json!({
        "schemaType": "JSON",
        "schema": customer.to_string(),
        "references": [{"name": "address.json", "subject": "address", "version": 1}],
    });
    let customer_id = register_id(&api, "customers-value", with_reference).await;
    assert_eq!(
        api.get("/subjects/address/versions/1/referencedby").await,
        (StatusCode::OK, json!([customer_id]))
    );

    // gRPC sees the same.
    let mut client = registry.client().await;
    let schema = client
        .get_schema(pb::GetSchemaRequest {
            id: i32::try_from(id).unwrap(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(schema.schema_type, "JSON");
    let registered = client
        .register_schema(pb::RegisterSchemaRequest {
            subject: "orders-grpc-value".to_owned(),
            schema: pretty,
            schema_type: "JSON".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(i64::from(registered.id), id);

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn normalize_makes_equivalent_json_schemas_one() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);
    let a = r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["a","b"]}"#;
    let b = r#"{"required":["a","b"],"properties":{"b":{"type":"integer"},"a":{"type":"string"}},"type":"object"}"#;
    let first = api
        .post("/subjects/n-value/versions?normalize=true", schema_body(a))
        .await;
    let second = api
        .post("/subjects/n-value/versions?normalize=true", schema_body(b))
        .await;
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    assert_eq!(first.1["id"], second.1["id"], "{} {}", first.1, second.1);
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn compatibility_of_json_schemas_at_every_level() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);

    // Closing the content model and removing a property: refused under BACKWARD.
    let open = r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}"#;
    let narrowed =
        r#"{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}}}"#;
    register_id(&api, "c-value", schema_body(open)).await;
    let refused = register(&api, "c-value", schema_body(narrowed)).await;
    assert_error(&refused, 409, 409);
    let (status, verbose) = api
        .post(
            "/compatibility/subjects/c-value/versions/latest?verbose=true",
            schema_body(narrowed),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verbose["is_compatible"], false);
    assert!(
        verbose["messages"].to_string().contains("TYPE"),
        "{verbose}"
    );

    let cases = compat_cases(&format!(
        "{}/../crates/jsonschema/tests/data/compat",
        env!("CARGO_MANIFEST_DIR")
    ));
    assert!(cases.len() >= 60, "{} cases", cases.len());
    check_at_every_level(&api, "JSON", &cases).await;

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn bad_json_schemas_get_clear_answers_within_the_budgets() {
    let registry = TestRegistry::start_with(TestDatabase::create().await, |settings| {
        settings.max_schema_bytes = 1024 * 1024;
    })
    .await;
    let api = Api::new(&registry);

    let cases: Vec<(&str, String, u64, &str)> = vec![
        ("not JSON", "{".to_owned(), 42201, "JSON"),
        ("not a schema", "[1, 2]".to_owned(), 42201, "schema"),
        (
            "invalid under its draft",
            r#"{"type": "object", "properties": {"a": {"type": "strin"}}}"#.to_owned(),
            42201,
            "/properties/a",
        ),
        (
            "a remote $ref (never fetched)",
            r#"{"$ref": "https://example.com/schemas/order.json"}"#.to_owned(),
            42201,
            "https://example.com/schemas/order.json",
        ),
        (
            "a file $ref",
            r#"{"$ref": "file:///etc/passwd"}"#.to_owned(),
            42201,
            "file:///etc/passwd",
        ),
        (
            "10,000 levels of nesting",
            format!("{}{}", r#"{"items":"#.repeat(10_000), "}".repeat(10_000)),
            42209,
            "",
        ),
        (
            "over a mebibyte",
            format!(r#"{{"description": "{}"}}"#, "x".repeat(1024 * 1024)),
            42209,
            "bytes",
        ),
    ];
    for (name, schema, code, names) in cases {
        let started = Instant::now();
        let answer = register(&api, "bad-value", schema_body(&schema)).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name}: {:?}",
            started.elapsed()
        );
        assert_error(&answer, 422, code);
        let message = answer.1["message"].as_str().unwrap();
        assert!(message.contains(names), "{name}: {message}");
    }
    // Recursive schemas are JSON Schema (a tree); a schema that is only a reference to itself
    // terminates too, accepted or refused, within the time.
    let tree =
        r##"{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#"}}}}"##;
    register_id(&api, "tree-value", schema_body(tree)).await;
    let started = Instant::now();
    let answer = register(&api, "self-value", schema_body(r##"{"$ref": "#"}"##)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        answer.0 == StatusCode::OK || answer.0.as_u16() == 422,
        "{answer:?}"
    );
    assert_error(&api.get("/subjects/bad-value/versions").await, 404, 40401);

    registry.stop().await.unwrap();
}
