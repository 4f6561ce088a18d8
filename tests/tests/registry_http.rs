//! The registry's Confluent-compatible HTTP API against a real Postgres: every route, status
//! codes and Confluent's error bodies, content types, malformed requests, and the same client
//! conversation over HTTP and over gRPC giving the same ids and versions; stopping drains
//! requests in flight and closes keep-alive connections.

#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tributary_proto::registry::v1 as pb;
use tributary_tests::TestRegistry;
use tributary_tests::registry_http::{Api, V1, assert_error};

fn user_v1() -> &'static str {
    r#"{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"}]}"#
}

fn user_v2() -> &'static str {
    r#"{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":0}]}"#
}

/// A field without a default: BACKWARD-incompatible with `user_v1`.
fn user_breaking() -> &'static str {
    r#"{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"long"},{"name":"email","type":"string"}]}"#
}

#[tokio::test]
async fn server_routes_and_the_openapi_document() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);

    let response = api.client.get(api.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], V1);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));

    assert_eq!(
        api.get("/schemas/types").await,
        (StatusCode::OK, json!(["AVRO", "PROTOBUF", "JSON"]))
    );
    let (status, metadata) = api.get("/v1/metadata/id").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(metadata["scope"]["path"], json!([]));
    assert!(metadata["scope"]["clusters"]["schema-registry-cluster"].is_string());

    // The OpenAPI document: every documented operation is routed (a request to it never gets
    // the unknown-route 404 or the wrong-method 405).
    let response = api
        .client
        .get(api.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 22);
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{subject}", "some-subject")
            .replace("{version}", "1")
            .replace("{id}", "1");
        for method in item.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = api
                .client
                .request(method.clone(), api.url(&concrete))
                .header(CONTENT_TYPE, V1)
                .body(
                    json!({"schema": "\"string\"", "compatibility": "NONE", "mode": "READWRITE"})
                        .to_string(),
                )
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert!(
                body["error_code"] != json!(404) && body["error_code"] != json!(405),
                "{method} {concrete} is not routed: {status} {body}"
            );
            operations += 1;
        }
    }
    assert_eq!(operations, 33);

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn register_lookup_and_read_subjects_versions_and_schemas() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);

    let first = api.register("users-value", user_v1()).await;
    // The same schema reformatted: the same id, no new version.
    let reformatted = r#"{ "namespace": "com.example", "name": "User", "type": "record", "fields": [ { "type": "string", "name": "name" } ] }"#;
    assert_eq!(api.register("users-value", reformatted).await, first);
    let second = api.register("users-value", user_v2()).await;
    assert_ne!(second, first);
    assert_eq!(
        api.register("audit-value", user_v1()).await,
        first,
        "ids are global"
    );

    assert_eq!(
        api.get("/subjects").await,
        (StatusCode::OK, json!(["audit-value", "users-value"]))
    );
    assert_eq!(
        api.get("/subjects?subjectPrefix=users").await.1,
        json!(["users-value"])
    );
    assert_eq!(
        api.get("/subjects?subjectPrefix=:*:").await.1,
        json!(["audit-value", "users-value"])
    );
    assert_eq!(
        api.get("/subjects?offset=1&limit=1").await.1,
        json!(["users-value"])
    );
    assert_eq!(
        api.get("/subjects?offset=0&limit=-1").await.1,
        json!(["audit-value", "users-value"])
    );
    assert_eq!(
        api.get("/subjects/users-value/versions").await,
        (StatusCode::OK, json!([1, 2]))
    );

    // A version: Confluent's shape, no schemaType for AVRO, no empty references.
    let (status, v1) = api.get("/subjects/users-value/versions/1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v1,
        json!({"subject": "users-value", "version": 1, "id": first, "schema": user_v1()})
    );
    for latest in ["latest", "-1", "LATEST"] {
        let (_, body) = api
            .get(&format!("/subjects/users-value/versions/{latest}"))
            .await;
        assert_eq!(
            (body["version"].as_i64(), body["id"].as_i64()),
            (Some(2), Some(i64::from(second))),
            "{latest}"
        );
    }
    // The /schema routes answer the schema itself.
    assert_eq!(
        api.get("/subjects/users-value/versions/1/schema").await.1,
        serde_json::from_str::<Value>(user_v1()).unwrap()
    );
    assert_eq!(
        api.get(&format!("/schemas/ids/{second}/schema")).await.1,
        serde_json::from_str::<Value>(user_v2()).unwrap()
    );

    // By id.
    assert_eq!(
        api.get(&format!("/schemas/ids/{first}")).await,
        (StatusCode::OK, json!({"schema": user_v1()}))
    );
    let (_, with_max) = api
        .get(&format!(
            "/schemas/ids/{first}?fetchMaxId=true&subject=users-value"
        ))
        .await;
    assert_eq!(with_max["maxId"].as_i64(), Some(i64::from(second)));
    assert_eq!(
        api.get(&format!("/schemas/ids/{first}/subjects")).await.1,
        json!(["audit-value", "users-value"])
    );
    assert_eq!(
        api.get(&format!("/schemas/ids/{first}/versions")).await.1,
        json!([{"subject": "audit-value", "version": 1}, {"subject": "users-value", "version": 1}])
    );
    assert_error(&api.get("/schemas/ids/999").await, 404, 40403);
    assert_error(&api.get("/schemas/ids/999/schema").await, 404, 40403);
    assert_error(&api.get("/schemas/ids/0/subjects").await, 404, 40403);

    // GET /schemas: every version, or the latest of each, with prefix and paging.
    let (status, all) = api.get("/schemas").await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<(String, i64, i64)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["subject"].as_str().unwrap().to_owned(),
                v["version"].as_i64().unwrap(),
                v["id"].as_i64().unwrap(),
            )
        })
        .collect();
    let (first, second) = (i64::from(first), i64::from(second));
    assert_eq!(
        listed,
        vec![
            ("audit-value".into(), 1, first),
            ("users-value".into(), 1, first),
            ("users-value".into(), 2, second)
        ]
    );
    let latest: Vec<i64> = api
        .get("/schemas?latestOnly=true")
        .await
        .1
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .collect();
    assert_eq!(latest, vec![first, second]);
    assert_eq!(
        api.get("/schemas?subjectPrefix=users&offset=1&limit=5")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Lookup: the matching version, or 40403; an unknown subject is 40401.
    let (status, found) = api
        .post("/subjects/users-value", json!({ "schema": reformatted }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        found,
        json!({"subject": "users-value", "version": 1, "id": first, "schema": user_v1()})
    );
    assert_error(
        &api.post("/subjects/users-value", json!({"schema": "\"string\""}))
            .await,
        404,
        40403,
    );
    assert_error(
        &api.post("/subjects/nobody", json!({"schema": user_v1()}))
            .await,
        404,
        40401,
    );
    assert_error(&api.get("/subjects/nobody/versions").await, 404, 40401);
    assert_error(
        &api.get("/subjects/users-value/versions/9").await,
        404,
        40402,
    );

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn normalize_dedups_equivalent_schemas() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);
    let plain = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#;
    let namespaced = r#"{"type":"record","name":"R","namespace":"","fields":[{"name":"a","type":{"type":"int"}}]}"#;
    let (_, first) = api
        .post(
            "/subjects/n/versions?normalize=true",
            json!({ "schema": plain }),
        )
        .await;
    let (_, again) = api
        .post(
            "/subjects/n/versions?normalize=true",
            json!({ "schema": namespaced }),
        )
        .await;
    assert_eq!(first["id"], again["id"]);
    assert_eq!(api.get("/subjects/n/versions").await.1, json!([1]));
    let (status, found) = api
        .post(
            "/subjects/n?normalize=true",
            json!({ "schema": namespaced }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["id"], first["id"]);
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn deletes_are_soft_then_permanent() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);
    assert_eq!(
        api.put("/config/s", json!({"compatibility": "NONE"}))
            .await
            .0,
        StatusCode::OK
    );
    for schema in [r#""string""#, r#""int""#, r#""long""#] {
        api.register("s", schema).await;
    }
    api.register("other", r#""string""#).await;

    assert_error(
        &api.delete("/subjects/s/versions/2?permanent=true").await,
        404,
        40407,
    );
    assert_eq!(
        api.delete("/subjects/s/versions/2").await,
        (StatusCode::OK, json!(2))
    );
    assert_error(&api.delete("/subjects/s/versions/2").await, 404, 40406);
    assert_eq!(api.get("/subjects/s/versions").await.1, json!([1, 3]));
    assert_eq!(
        api.get("/subjects/s/versions?deleted=true").await.1,
        json!([1, 2, 3])
    );
    assert_error(&api.get("/subjects/s/versions/2").await, 404, 40402);
    assert_eq!(
        api.get("/subjects/s/versions/2?deleted=true").await.1["version"],
        json!(2)
    );
    assert_eq!(
        api.delete("/subjects/s/versions/2?permanent=true").await,
        (StatusCode::OK, json!(2))
    );
    assert_eq!(
        api.delete("/subjects/s/versions/latest").await,
        (StatusCode::OK, json!(3))
    );

    assert_error(&api.delete("/subjects/s?permanent=true").await, 404, 40405);
    assert_eq!(
        api.delete("/subjects/s").await,
        (StatusCode::OK, json!([1]))
    );
    assert_error(&api.delete("/subjects/s").await, 404, 40404);
    assert_eq!(api.get("/subjects").await.1, json!(["other"]));
    assert_eq!(
        api.get("/subjects?deleted=true").await.1,
        json!(["other", "s"])
    );
    assert_eq!(api.get("/subjects?deletedOnly=true").await.1, json!(["s"]));
    assert_eq!(api.get("/subjects?deleted_only=true").await.1, json!(["s"]));
    assert_eq!(
        api.get("/schemas?deleted=true&subjectPrefix=s")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        api.delete("/subjects/s?permanent=true").await,
        (StatusCode::OK, json!([1, 3]))
    );
    assert_error(
        &api.get("/subjects/s/versions?deleted=true").await,
        404,
        40401,
    );
    assert_error(&api.delete("/subjects/s").await, 404, 40401);

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn compatibility_checks_and_incompatible_registrations() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);
    api.register("c", user_v1()).await;

    let compatible = json!({ "schema": user_v2() });
    let breaking = json!({ "schema": user_breaking() });
    assert_eq!(
        api.post(
            "/compatibility/subjects/c/versions/latest",
            compatible.clone()
        )
        .await,
        (StatusCode::OK, json!({"is_compatible": true}))
    );
    assert_eq!(
        api.post("/compatibility/subjects/c/versions/1", compatible.clone())
            .await
            .1,
        json!({"is_compatible": true})
    );
    assert_eq!(
        api.post("/compatibility/subjects/c/versions", compatible.clone())
            .await
            .1,
        json!({"is_compatible": true})
    );
    assert_eq!(
        api.post(
            "/compatibility/subjects/c/versions?verbose=true",
            compatible.clone()
        )
        .await
        .1,
        json!({"is_compatible": true, "messages": []})
    );
    assert_eq!(
        api.post(
            "/compatibility/subjects/c/versions/latest",
            breaking.clone()
        )
        .await
        .1,
        json!({"is_compatible": false})
    );
    let (status, verbose) = api
        .post(
            "/compatibility/subjects/c/versions/latest?verbose=true",
            breaking.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verbose["is_compatible"], json!(false));
    let messages: Vec<&str> = verbose["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages.iter().any(|m| m.contains("TYPE_MISMATCH")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("READER_FIELD_MISSING_DEFAULT_VALUE")),
        "{messages:?}"
    );

    // Registering it: 409 with every reason in the message.
    let conflict = api.post("/subjects/c/versions", breaking.clone()).await;
    assert_error(&conflict, 409, 409);
    let message = conflict.1["message"].as_str().unwrap();
    for reason in &messages {
        assert!(message.contains(reason), "{message} lacks {reason}");
    }

    assert_error(
        &api.post("/compatibility/subjects/c/versions/7", compatible.clone())
            .await,
        404,
        40402,
    );
    assert_error(
        &api.post("/compatibility/subjects/c/versions/abc", compatible.clone())
            .await,
        422,
        42202,
    );
    assert_error(
        &api.post("/compatibility/subjects/c/versions/0", compatible.clone())
            .await,
        422,
        42202,
    );
    assert_error(
        &api.post(
            "/compatibility/subjects/c/versions/latest",
            json!({"schema": "{"}),
        )
        .await,
        422,
        42201,
    );
    // Nothing registered yet: compatible with "latest" and with the level, as in Confluent.
    assert_eq!(
        api.post(
            "/compatibility/subjects/new/versions/latest",
            breaking.clone()
        )
        .await
        .1,
        json!({"is_compatible": true})
    );
    assert_eq!(
        api.post("/compatibility/subjects/new/versions", breaking)
            .await
            .1,
        json!({"is_compatible": true})
    );
    // A version that is not there is 40402, even of a subject that is not (as Confluent).
    assert_error(
        &api.post("/compatibility/subjects/new/versions/1", compatible)
            .await,
        404,
        40402,
    );

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn config_and_mode_routes() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);

    assert_eq!(
        api.get("/config").await,
        (StatusCode::OK, json!({"compatibilityLevel": "BACKWARD"}))
    );
    assert_eq!(
        api.put("/config", json!({"compatibility": "FULL"})).await,
        (StatusCode::OK, json!({"compatibility": "FULL"}))
    );
    assert_eq!(
        api.get("/config").await.1,
        json!({"compatibilityLevel": "FULL"})
    );
    assert_error(&api.get("/config/s").await, 404, 40408);
    assert_eq!(
        api.get("/config/s?defaultToGlobal=true").await.1,
        json!({"compatibilityLevel": "FULL"})
    );
    assert_eq!(
        api.put("/config/s", json!({"compatibility": "forward_transitive"}))
            .await
            .1,
        json!({"compatibility": "FORWARD_TRANSITIVE"})
    );
    assert_eq!(
        api.get("/config/s").await.1,
        json!({"compatibilityLevel": "FORWARD_TRANSITIVE"})
    );
    assert_eq!(
        api.delete("/config/s").await,
        (
            StatusCode::OK,
            json!({"compatibilityLevel": "FORWARD_TRANSITIVE"})
        )
    );
    assert_error(&api.delete("/config/s").await, 404, 40408);
    assert_eq!(
        api.delete("/config").await.1,
        json!({"compatibilityLevel": "FULL"})
    );
    assert_eq!(
        api.get("/config").await.1,
        json!({"compatibilityLevel": "BACKWARD"})
    );
    assert_error(
        &api.put("/config", json!({"compatibility": "SIDEWAYS"}))
            .await,
        422,
        42203,
    );
    assert_error(&api.put("/config", json!({})).await, 422, 42203);

    assert_eq!(
        api.get("/mode").await,
        (StatusCode::OK, json!({"mode": "READWRITE"}))
    );
    assert_error(&api.get("/mode/s").await, 404, 40409);
    assert_eq!(
        api.get("/mode/s?defaultToGlobal=true").await.1,
        json!({"mode": "READWRITE"})
    );
    assert_eq!(
        api.put("/mode/s", json!({"mode": "READONLY"})).await,
        (StatusCode::OK, json!({"mode": "READONLY"}))
    );
    assert_eq!(api.get("/mode/s").await.1, json!({"mode": "READONLY"}));
    assert_error(
        &api.post("/subjects/s/versions", json!({"schema": "\"string\""}))
            .await,
        422,
        42205,
    );
    assert_eq!(api.delete("/mode/s").await.1, json!({"mode": "READONLY"}));
    api.register("s", r#""string""#).await;
    // IMPORT over existing schemas needs force.
    assert_error(
        &api.put("/mode", json!({"mode": "IMPORT"})).await,
        422,
        42205,
    );
    assert_eq!(
        api.put("/mode?force=true", json!({"mode": "IMPORT"}))
            .await
            .1,
        json!({"mode": "IMPORT"})
    );
    assert_eq!(api.delete("/mode").await.1, json!({"mode": "IMPORT"}));
    assert_eq!(api.get("/mode").await.1, json!({"mode": "READWRITE"}));
    assert_error(
        &api.put("/mode", json!({"mode": "SOMETIMES"})).await,
        422,
        42204,
    );

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn import_mode_keeps_the_given_ids_and_versions() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);
    assert_eq!(
        api.put("/mode", json!({"mode": "IMPORT"})).await.1,
        json!({"mode": "IMPORT"})
    );

    let (status, body) = api
        .post(
            "/subjects/imported/versions",
            json!({"schema": user_v1(), "id": 100, "version": 3}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"id": 100})));
    let (_, body) = api
        .post(
            "/subjects/imported/versions",
            json!({"schema": user_v2(), "id": 205, "version": 7}),
        )
        .await;
    assert_eq!(body, json!({"id": 205}));
    assert_eq!(
        api.get("/subjects/imported/versions").await.1,
        json!([3, 7])
    );
    assert_eq!(
        api.get("/subjects/imported/versions/3").await.1["id"],
        json!(100)
    );
    // Without an id: refused; an id taken by another schema: 42207.
    assert_error(
        &api.post("/subjects/imported/versions", json!({"schema": "\"int\""}))
            .await,
        422,
        42205,
    );
    assert_error(
        &api.post(
            "/subjects/other/versions",
            json!({"schema": "\"int\"", "id": 100}),
        )
        .await,
        422,
        42207,
    );

    assert_eq!(
        api.put("/mode", json!({"mode": "READWRITE"})).await.1,
        json!({"mode": "READWRITE"})
    );
    // Ids and versions given outside IMPORT mode are refused; new ids continue after the largest.
    assert_error(
        &api.post(
            "/subjects/x/versions",
            json!({"schema": "\"int\"", "id": 300}),
        )
        .await,
        422,
        42205,
    );
    let next = api.register("x", r#""int""#).await;
    assert!(next > 205, "{next}");
    assert_eq!(
        api.get("/schemas/ids/100?fetchMaxId=true").await.1["maxId"],
        json!(next)
    );

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn references_referencedby_and_resolved_format() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);
    let address = r#"{"type":"record","name":"Address","namespace":"com.example","fields":[{"name":"city","type":"string"}]}"#;
    let person = r#"{"type":"record","name":"Person","namespace":"com.example","fields":[{"name":"home","type":"com.example.Address"}]}"#;
    let address_id = api.register("address", address).await;
    let reference = json!([{"name": "com.example.Address", "subject": "address", "version": 1}]);
    let (status, body) = api
        .post(
            "/subjects/person/versions",
            json!({"schema": person, "references": reference}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let person_id = body["id"].as_i64().unwrap();

    let (_, version) = api.get("/subjects/person/versions/1").await;
    assert_eq!(version["references"], reference);
    // Stored in Java's compact form: the type in the record's namespace is written short.
    let stored = person.replace("com.example.Address", "Address");
    assert_eq!(version["schema"], json!(stored));
    let (_, by_id) = api.get(&format!("/schemas/ids/{person_id}")).await;
    assert_eq!(by_id, json!({"references": reference, "schema": stored}));
    assert_eq!(
        api.get("/subjects/address/versions/1/referencedby").await.1,
        json!([person_id])
    );
    assert_eq!(
        api.get("/subjects/address/versions/latest/referencedby")
            .await
            .1,
        json!([person_id])
    );

    // format=resolved inlines the referenced type.
    let (_, resolved) = api
        .get(&format!("/schemas/ids/{person_id}?format=resolved"))
        .await;
    let resolved: Value = serde_json::from_str(resolved["schema"].as_str().unwrap()).unwrap();
    // (Inlined in the record's own namespace, Java writes it without one.)
    assert_eq!(
        resolved["fields"][0]["type"],
        json!({"type": "record", "name": "Address", "fields": [{"name": "city", "type": "string"}]})
    );
    let (_, resolved_text) = api
        .get("/subjects/person/versions/1/schema?format=resolved")
        .await;
    assert_eq!(resolved_text, resolved);
    assert_error(
        &api.get(&format!("/schemas/ids/{person_id}?format=sideways"))
            .await,
        422,
        422,
    );
    assert_eq!(
        api.get(&format!("/schemas/ids/{address_id}?format=resolved"))
            .await
            .1,
        json!({"schema": address})
    );

    // A referenced version cannot be deleted.
    assert_error(
        &api.delete("/subjects/address/versions/1").await,
        422,
        42206,
    );
    // A reference to nothing is an invalid schema.
    let dangling = json!({"schema": person, "references": [{"name": "com.example.Address", "subject": "nowhere", "version": 1}]});
    assert_error(
        &api.post("/subjects/p2/versions", dangling).await,
        422,
        42201,
    );

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn errors_are_confluent_shaped_on_any_input() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);
    api.register("s", r#""string""#).await;

    // Unknown routes and wrong methods.
    for path in [
        "/nope",
        "/subjects/s/versions/1/nope",
        "/schemas/ids",
        "/subjects/",
        "/%ff%fe",
        "/subjects/s/versions/1/schema/x",
    ] {
        let response = api.get(path).await;
        assert_eq!(
            response,
            (
                StatusCode::NOT_FOUND,
                json!({"error_code": 404, "message": "HTTP 404 Not Found"})
            ),
            "{path}"
        );
    }
    let response = api.send(api.client.patch(api.url("/subjects"))).await;
    assert_eq!(
        response,
        (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error_code": 405, "message": "HTTP 405 Method Not Allowed"})
        )
    );
    assert_error(&api.put("/subjects/s/versions", json!({})).await, 405, 405);

    // Malformed bodies: 400 with error_code 400, as Confluent's rest-utils answers them.
    for body in [
        &b"{not json"[..],
        b"",
        b"[1, 2",
        b"{\"schema\": 5}",
        b"{\"schema\": \"\xff\xfe\"}",
        b"\xc3\x28",
        b"null",
    ] {
        let response = api
            .send(
                api.client
                    .post(api.url("/subjects/s/versions"))
                    .header(CONTENT_TYPE, V1)
                    .body(body.to_vec()),
            )
            .await;
        assert_error(&response, 400, 400);
    }
    // A JSON body without a schema, or with garbage in it: an invalid schema.
    assert_error(
        &api.post("/subjects/s/versions", json!({})).await,
        422,
        42201,
    );
    assert_error(
        &api.post(
            "/subjects/s/versions",
            json!({"schema": "{\"type\": \"nope\"}"}),
        )
        .await,
        422,
        42201,
    );
    assert_error(
        &api.post(
            "/subjects/s/versions",
            json!({"schema": "\"string\"", "schemaType": "PROTOBUF"}),
        )
        .await,
        422,
        42201,
    );
    // Too large for the registry's limit (64 KiB in tests): 42209; too large for the body: 413.
    let big = format!(
        r#"{{"type":"enum","name":"E","symbols":["{}"]}}"#,
        "A".repeat(70 * 1024)
    );
    assert_error(
        &api.post("/subjects/s/versions", json!({ "schema": big }))
            .await,
        422,
        42209,
    );
    let huge = vec![b' '; 4 * 1024 * 1024];
    let response = api
        .send(
            api.client
                .post(api.url("/subjects/s/versions"))
                .header(CONTENT_TYPE, V1)
                .body(huge),
        )
        .await;
    assert_error(&response, 413, 413);
    // The body was not read: the answer says the connection closes, so a pooling client
    // opens a new one for its next request (the next ones here go through the same client).
    let unread = api
        .client
        .post(api.url("/subjects/s/versions"))
        .header(CONTENT_TYPE, V1)
        .body(vec![b' '; 4 * 1024 * 1024])
        .send()
        .await
        .expect("an answer");
    assert_eq!(unread.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        unread
            .headers()
            .get(reqwest::header::CONNECTION)
            .map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );

    // Path and query parameters.
    assert_error(&api.get("/schemas/ids/abc").await, 404, 404);
    assert_error(&api.get("/schemas/ids/99999999999").await, 404, 404);
    assert_error(&api.get("/subjects/s/versions/abc").await, 422, 42202);
    assert_error(&api.get("/subjects/s/versions/-5").await, 422, 42202);
    assert_error(&api.get("/subjects?offset=abc").await, 404, 404);
    assert_error(&api.get("/schemas?limit=1e9").await, 404, 404);
    assert_error(
        &api.get(&format!("/subjects/{}/versions", "x".repeat(300)))
            .await,
        422,
        42208,
    );
    assert_error(&api.get("/subjects/a%0Ab/versions").await, 422, 42208);
    assert_error(&api.get("/subjects/%ff%fe/versions").await, 422, 42208);
    let (status, body) = api
        .get(&format!(
            "/subjects?subjectPrefix={}&deleted=maybe&limit=",
            "%41".repeat(4000)
        ))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    assert_eq!(
        api.get("/subjects?subjectPrefix=%00").await,
        (StatusCode::OK, json!([]))
    );
    assert_eq!(
        api.get("/schemas?subjectPrefix=a%00").await,
        (StatusCode::OK, json!([]))
    );
    let (status, _) = api.get("/subjects?&&=&%zz&deleted").await;
    assert_eq!(status, StatusCode::OK);

    // Content types: unsupported request types 415, unacceptable Accept 406.
    let response = api
        .send(
            api.client
                .post(api.url("/subjects/s/versions"))
                .header(CONTENT_TYPE, "text/plain")
                .body("{}"),
        )
        .await;
    assert_error(&response, 415, 415);
    let response = api
        .send(
            api.client
                .get(api.url("/subjects"))
                .header(ACCEPT, "text/html"),
        )
        .await;
    assert_error(&response, 406, 406);

    // The registry is still fine.
    assert_eq!(api.get("/subjects").await, (StatusCode::OK, json!(["s"])));
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn every_confluent_content_type_is_read_and_negotiated() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);
    for (index, content_type) in [
        "application/vnd.schemaregistry.v1+json",
        "application/vnd.schemaregistry+json",
        "application/json",
        "application/octet-stream",
        "application/json; charset=utf-8",
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({ "schema": format!(r#"{{"type":"fixed","name":"F{index}","size":4}}"#) })
            .to_string();
        let response = api
            .client
            .post(api.url(&format!("/subjects/t{index}/versions")))
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{content_type}");
    }
    // No Content-Type at all is read as JSON too.
    let body = json!({ "schema": "\"bytes\"" }).to_string();
    let response = api
        .client
        .post(api.url("/subjects/plain/versions"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    for (accept, expected) in [
        (None, V1),
        (Some("*/*"), V1),
        (
            Some(
                "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json",
            ),
            V1,
        ),
        (
            Some("application/vnd.schemaregistry+json"),
            "application/vnd.schemaregistry+json",
        ),
        (Some("application/json"), "application/json"),
        (
            Some("text/html, application/json;q=0.9"),
            "application/json",
        ),
    ] {
        for path in ["/subjects", "/schemas/ids/1", "/nope"] {
            let mut request = api.client.get(api.url(path));
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.headers()[CONTENT_TYPE],
                expected,
                "{accept:?} {path}"
            );
        }
    }
    registry.stop().await.unwrap();
}

/// The same client conversation, once over HTTP and once over gRPC, each against a fresh
/// registry, must hand out the same ids and versions and end in the same state.
#[tokio::test]
async fn the_same_conversation_over_grpc_gives_the_same_ids_and_versions() {
    let over_http = TestRegistry::start().await;
    let over_grpc = TestRegistry::start().await;
    let api = Api::new(&over_http);
    let mut grpc = over_grpc.client().await;

    #[derive(Debug, Clone, Copy)]
    enum Step<'a> {
        Register(&'a str, &'a str),
        RegisterNormalized(&'a str, &'a str),
        Import(&'a str, &'a str, i32, i32),
        Lookup(&'a str, &'a str),
        Latest(&'a str),
        DeleteVersion(&'a str, i32, bool),
        DeleteSubject(&'a str, bool),
        Level(&'a str, &'a str),
        Mode(bool),
    }
    use Step::*;
    let address =
        r#"{"type":"record","name":"Address","fields":[{"name":"city","type":"string"}]}"#;
    let steps = [
        Register("users-value", user_v1()),
        Register("users-value", user_v2()),
        Register("audit-value", user_v1()),
        Register("users-value", user_breaking()),
        Level("users-value", "NONE"),
        Register("users-value", user_breaking()),
        Lookup("users-value", user_v2()),
        Lookup("users-value", r#""string""#),
        RegisterNormalized(
            "n",
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"int"}}]}"#,
        ),
        RegisterNormalized(
            "n",
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#,
        ),
        Register("address", address),
        DeleteVersion("users-value", 2, false),
        Register("users-value", user_v2()),
        Latest("users-value"),
        DeleteVersion("users-value", 2, true),
        DeleteSubject("audit-value", false),
        Register("audit-value", user_v1()),
        DeleteSubject("audit-value", false),
        DeleteSubject("audit-value", true),
        Register("audit-value", r#""long""#),
        Latest("audit-value"),
        Mode(true),
        Import("imported", r#""double""#, 500, 4),
        Import("imported", r#""float""#, 90, 2),
        Mode(false),
        Register("imported", r#""bytes""#),
        Latest("imported"),
    ];

    // Each step's outcome: Ok((id, version)) or Err(Confluent error code).
    type Outcome = Result<Vec<i64>, u64>;
    let mut over_http_outcomes: Vec<Outcome> = Vec::new();
    let mut over_grpc_outcomes: Vec<Outcome> = Vec::new();
    for step in steps {
        let http: Outcome = {
            let (status, body) = match step {
                Register(subject, schema) => {
                    api.post(
                        &format!("/subjects/{subject}/versions"),
                        json!({ "schema": schema }),
                    )
                    .await
                }
                RegisterNormalized(subject, schema) => {
                    api.post(
                        &format!("/subjects/{subject}/versions?normalize=true"),
                        json!({ "schema": schema }),
                    )
                    .await
                }
                Import(subject, schema, id, version) => {
                    api.post(
                        &format!("/subjects/{subject}/versions"),
                        json!({ "schema": schema, "id": id, "version": version }),
                    )
                    .await
                }
                Lookup(subject, schema) => {
                    api.post(&format!("/subjects/{subject}"), json!({ "schema": schema }))
                        .await
                }
                Latest(subject) => {
                    api.get(&format!("/subjects/{subject}/versions/latest"))
                        .await
                }
                DeleteVersion(subject, version, permanent) => {
                    api.delete(&format!(
                        "/subjects/{subject}/versions/{version}?permanent={permanent}"
                    ))
                    .await
                }
                DeleteSubject(subject, permanent) => {
                    api.delete(&format!("/subjects/{subject}?permanent={permanent}"))
                        .await
                }
                Level(subject, level) => {
                    api.put(
                        &format!("/config/{subject}"),
                        json!({ "compatibility": level }),
                    )
                    .await
                }
                Mode(import) => {
                    api.put(
                        "/mode?force=true",
                        json!({ "mode": if import { "IMPORT" } else { "READWRITE" } }),
                    )
                    .await
                }
            };
            if status == StatusCode::OK {
                Ok(match body {
                    Value::Number(n) => vec![n.as_i64().unwrap()],
                    Value::Array(items) => items.iter().map(|v| v.as_i64().unwrap()).collect(),
                    Value::Object(map) => ["id", "version"]
                        .iter()
                        .filter_map(|k| map.get(*k).and_then(Value::as_i64))
                        .collect(),
                    other => panic!("unexpected {other}"),
                })
            } else {
                Err(body["error_code"].as_u64().unwrap())
            }
        };
        let code =
            |status: tonic::Status| tributary_tests::error_code(&status).map_or(0, u64::from);
        let grpc_outcome: Outcome = match step {
            Register(subject, schema)
            | RegisterNormalized(subject, schema)
            | Import(subject, schema, _, _) => {
                let (normalize, id, version) = match step {
                    RegisterNormalized(..) => (true, 0, 0),
                    Import(_, _, id, version) => (false, id, version),
                    _ => (false, 0, 0),
                };
                grpc.register_schema(pb::RegisterSchemaRequest {
                    subject: subject.into(),
                    schema: schema.into(),
                    normalize,
                    id,
                    version,
                    ..Default::default()
                })
                .await
                .map(|r| vec![i64::from(r.into_inner().id)])
                .map_err(code)
            }
            Lookup(subject, schema) => grpc
                .lookup_schema(pb::LookupSchemaRequest {
                    subject: subject.into(),
                    schema: schema.into(),
                    ..Default::default()
                })
                .await
                .map(|r| {
                    r.into_inner()
                        .subject_version
                        .map(|v| vec![i64::from(v.id), i64::from(v.version)])
                        .unwrap_or_default()
                })
                .map_err(code),
            Latest(subject) => grpc
                .get_subject_version(pb::GetSubjectVersionRequest {
                    subject: subject.into(),
                    version: -1,
                    include_deleted: false,
                })
                .await
                .map(|r| {
                    r.into_inner()
                        .subject_version
                        .map(|v| vec![i64::from(v.id), i64::from(v.version)])
                        .unwrap_or_default()
                })
                .map_err(code),
            DeleteVersion(subject, version, permanent) => grpc
                .delete_subject_version(pb::DeleteSubjectVersionRequest {
                    subject: subject.into(),
                    version,
                    permanent,
                })
                .await
                .map(|r| vec![i64::from(r.into_inner().version)])
                .map_err(code),
            DeleteSubject(subject, permanent) => grpc
                .delete_subject(pb::DeleteSubjectRequest {
                    subject: subject.into(),
                    permanent,
                })
                .await
                .map(|r| r.into_inner().versions.into_iter().map(i64::from).collect())
                .map_err(code),
            Level(subject, level) => {
                let level =
                    pb::CompatibilityLevel::from_str_name(&format!("COMPATIBILITY_LEVEL_{level}"))
                        .unwrap() as i32;
                grpc.set_compatibility_level(pb::SetCompatibilityLevelRequest {
                    subject: subject.into(),
                    level,
                })
                .await
                .map(|_| vec![])
                .map_err(code)
            }
            Mode(import) => {
                let mode = if import {
                    pb::Mode::Import
                } else {
                    pb::Mode::Readwrite
                } as i32;
                grpc.set_mode(pb::SetModeRequest {
                    subject: String::new(),
                    mode,
                    force: true,
                })
                .await
                .map(|_| vec![])
                .map_err(code)
            }
        };
        over_http_outcomes.push(http);
        over_grpc_outcomes.push(grpc_outcome);
    }
    for ((step, http), grpc) in steps
        .iter()
        .zip(&over_http_outcomes)
        .zip(&over_grpc_outcomes)
    {
        assert_eq!(http, grpc, "{step:?}");
    }
    // A few outcomes pinned, so the comparison is not vacuous.
    assert_eq!(over_http_outcomes[0], Ok(vec![1]));
    assert_eq!(over_http_outcomes[3], Err(409));
    assert_eq!(over_http_outcomes[7], Err(40403));
    assert_eq!(over_http_outcomes[22], Ok(vec![500]));

    // And the registries end in the same state.
    let http_schemas = api.get("/schemas?deleted=true").await.1;
    let mut grpc_state = Vec::new();
    let subjects = grpc
        .list_subjects(pb::ListSubjectsRequest {
            include_deleted: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subjects;
    for subject in subjects {
        let versions = grpc
            .list_versions(pb::ListVersionsRequest {
                subject: subject.clone(),
                include_deleted: true,
            })
            .await
            .unwrap()
            .into_inner()
            .versions;
        for version in versions {
            let found = grpc
                .get_subject_version(pb::GetSubjectVersionRequest {
                    subject: subject.clone(),
                    version,
                    include_deleted: true,
                })
                .await
                .unwrap()
                .into_inner()
                .subject_version
                .unwrap();
            grpc_state.push(json!({"subject": found.subject, "version": found.version, "id": found.id, "schema": found.schema}));
        }
    }
    assert_eq!(http_schemas, Value::Array(grpc_state));

    over_http.stop().await.unwrap();
    over_grpc.stop().await.unwrap();
}

#[tokio::test]
async fn stopping_the_registry_closes_the_http_port() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);
    assert_eq!(api.get("/").await.0, StatusCode::OK);
    let addr = registry.http_addr;
    registry.stop().await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens on {addr} after stop"
    );
}

/// A connection written to by hand: TLS, as the registry serves by default.
type Connection = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect_http1(addr: std::net::SocketAddr) -> Connection {
    tributary_tests::security::tls_connect(addr, b"http/1.1")
        .await
        .unwrap()
}

/// Reads one HTTP/1.1 response (its head, and a body of its Content-Length) from `stream`.
async fn read_response(stream: &mut Connection) -> (String, String) {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&received[end + 4..end + 4 + length]);
                return (head, body.into_owned());
            }
        }
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("a response within 5 s")
            .unwrap();
        assert!(
            read > 0,
            "connection closed mid-response: {:?}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&chunk[..read]);
    }
}

/// Whether the server closes `stream` (end of stream, with or without TLS's close_notify)
/// within 5 s.
async fn closed_by_server(stream: &mut Connection) -> bool {
    let mut chunk = [0u8; 64];
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut chunk)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn stopping_answers_requests_in_flight_and_closes_idle_keep_alive_connections() {
    let registry = TestRegistry::start().await;
    let addr = registry.http_addr;
    let authorization = tributary_tests::security::admin_authorization();
    let get_types = format!(
        "GET /schemas/types HTTP/1.1\r\nHost: registry\r\nAuthorization: {authorization}\r\n\r\n"
    );
    let get_types = get_types.as_bytes();

    // A keep-alive connection that has been answered once and is now idle.
    let mut idle = connect_http1(addr).await;
    idle.write_all(get_types).await.unwrap();
    let (head, _) = read_response(&mut idle).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // A registration in flight: its head and half its body sent (after one answered request,
    // so the connection is being served), the rest to follow once the registry is stopping.
    let mut in_flight = connect_http1(addr).await;
    in_flight.write_all(get_types).await.unwrap();
    let (head, _) = read_response(&mut in_flight).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let body = json!({ "schema": user_v1() }).to_string();
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let request_head = format!(
        "POST /subjects/drain-value/versions HTTP/1.1\r\nHost: registry\r\n\
         Authorization: {authorization}\r\nContent-Type: {V1}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    in_flight
        .write_all(format!("{request_head}{first_half}").as_bytes())
        .await
        .unwrap();
    // Time for the server to read the head and wait in the handler for the rest of the body.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let stopping = tokio::spawn(registry.stop());
    // The port closes, the idle connection is closed at once...
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "nothing listens on {addr} once stopping"
    );
    assert!(
        closed_by_server(&mut idle).await,
        "the idle keep-alive connection is closed"
    );
    // ...while the drain waits for the request in flight, which is answered in full and then
    // its connection closed.
    assert!(
        !stopping.is_finished(),
        "the drain waits for the request in flight"
    );
    in_flight.write_all(second_half.as_bytes()).await.unwrap();
    let (head, body) = read_response(&mut in_flight).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "the answer says the connection closes: {head}"
    );
    let registered: Value = serde_json::from_str(&body).unwrap();
    assert!(registered["id"].as_i64().unwrap() > 0, "{body}");
    assert!(
        closed_by_server(&mut in_flight).await,
        "the connection is closed after its last answer"
    );
    tokio::time::timeout(std::time::Duration::from_secs(5), stopping)
        .await
        .expect("the drain ends once the request is answered")
        .unwrap()
        .unwrap();
}

/// Version `n` of the hot subject's schemas: a field of its own, optional, so that every one
/// is BACKWARD-compatible with every other (a reader ignores the writer's extra field and
/// defaults its own).
fn hot_schema(n: usize) -> String {
    format!(
        r#"{{"type":"record","name":"Hot","namespace":"com.example","fields":[{{"name":"name","type":"string"}},{{"name":"f{n}","type":["null","string"],"default":null}}]}}"#
    )
}

/// `name` changed from string to long: BACKWARD-incompatible with every `hot_schema`.
fn hot_breaking(n: usize) -> String {
    format!(
        r#"{{"type":"record","name":"Hot","namespace":"com.example","fields":[{{"name":"name","type":"long"}},{{"name":"g{n}","type":["null","string"],"default":null}}]}}"#
    )
}

/// Registers each of `schemas` under `subject` from its own task, all at once; the (status,
/// body) of each, in the order of `schemas`.
async fn register_all_at_once(
    api: &std::sync::Arc<Api>,
    subject: &str,
    schemas: &[String],
) -> Vec<(StatusCode, Value)> {
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(schemas.len()));
    let tasks: Vec<_> = schemas
        .iter()
        .map(|schema| {
            let api = std::sync::Arc::clone(api);
            let start = std::sync::Arc::clone(&start);
            let path = format!("/subjects/{subject}/versions");
            let body = json!({ "schema": schema });
            tokio::spawn(async move {
                start.wait().await;
                api.post(&path, body).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// The (version, schema id) rows of `subject` in Postgres, ascending.
async fn committed_versions(registry: &TestRegistry, subject: &str) -> Vec<(i32, i32)> {
    let pool = sqlx::PgPool::connect(&registry.database.url).await.unwrap();
    let rows = sqlx::query_as(
        "SELECT version, schema_id FROM subject_versions WHERE subject = $1 ORDER BY version",
    )
    .bind(subject)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_into_one_subject_are_each_committed_once() {
    let registry = TestRegistry::start().await;
    let api = std::sync::Arc::new(Api::new(&registry));
    assert_eq!(
        api.put("/config/hot", json!({"compatibility": "NONE"}))
            .await
            .0,
        StatusCode::OK
    );

    // 64 distinct schemas at once: every one acknowledged, with an id of its own.
    let schemas: Vec<String> = (0..64).map(hot_schema).collect();
    let answers = register_all_at_once(&api, "hot", &schemas).await;
    let mut ids = Vec::new();
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        ids.push(body["id"].as_i64().unwrap() as i32);
    }
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 64, "64 schemas, 64 ids: {ids:?}");

    // Versions 1..=64, each acknowledged id under exactly one of them, in Postgres itself.
    let committed = committed_versions(&registry, "hot").await;
    assert_eq!(
        committed
            .iter()
            .map(|(version, _)| *version)
            .collect::<Vec<_>>(),
        (1..=64).collect::<Vec<_>>(),
        "contiguous versions"
    );
    let mut committed_ids: Vec<i32> = committed.iter().map(|(_, id)| *id).collect();
    committed_ids.sort_unstable();
    assert_eq!(
        committed_ids, distinct,
        "the acknowledged ids are the committed ones"
    );
    assert_eq!(
        api.get("/subjects/hot/versions").await.1,
        json!((1..=64).collect::<Vec<_>>())
    );
    // Each id reads back the schema it was given for, and its version names it.
    for (n, id) in ids.iter().enumerate() {
        let (status, body) = api.get(&format!("/schemas/ids/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let text = body["schema"].as_str().unwrap();
        assert!(
            text.contains(&format!("\"f{n}\"")),
            "id {id} is schema {n}: {text}"
        );
        let version = committed.iter().find(|(_, c)| c == id).unwrap().0;
        let (_, found) = api.get(&format!("/subjects/hot/versions/{version}")).await;
        assert_eq!(found["id"], json!(id));
    }

    // The same 64 again, at once: nothing new, each gets its id back.
    let again = register_all_at_once(&api, "hot", &schemas).await;
    for ((status, body), id) in again.iter().zip(&ids) {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["id"], json!(id));
    }
    assert_eq!(committed_versions(&registry, "hot").await.len(), 64);

    // One new schema sent 32 times at once (in one group or several): one id, one version.
    let same = vec![hot_schema(1000); 32];
    let answers = register_all_at_once(&api, "hot", &same).await;
    let first = &answers[0].1["id"];
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(&body["id"], first);
    }
    let committed = committed_versions(&registry, "hot").await;
    assert_eq!(committed.len(), 65);
    assert_eq!(
        committed.last().map(|(_, id)| json!(id)),
        Some(first.clone())
    );

    // A subject created by the group itself, and an id shared with another subject: the
    // schemas of "hot" registered under "warm" get their ids back, under versions 1..=8.
    let answers = register_all_at_once(&api, "warm", &schemas[..8]).await;
    for ((status, body), id) in answers.iter().zip(&ids) {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["id"], json!(id));
    }
    let warm = committed_versions(&registry, "warm").await;
    assert_eq!(
        warm.iter().map(|(version, _)| *version).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_incompatible_registration_fails_alone_among_concurrent_ones() {
    let registry = TestRegistry::start().await;
    let api = std::sync::Arc::new(Api::new(&registry));
    assert_eq!(
        api.put("/config/mixed", json!({"compatibility": "BACKWARD"}))
            .await
            .0,
        StatusCode::OK
    );
    let base = api.register("mixed", &hot_schema(0)).await;

    // 48 compatible and 16 incompatible registrations, interleaved, all at once.
    let schemas: Vec<String> = (1..=64)
        .map(|n| {
            if n % 4 == 0 {
                hot_breaking(n)
            } else {
                hot_schema(n)
            }
        })
        .collect();
    let answers = register_all_at_once(&api, "mixed", &schemas).await;
    let mut ids = vec![base];
    for (n, answer) in (1..=64).zip(&answers) {
        if n % 4 == 0 {
            assert_error(answer, 409, 409);
        } else {
            assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
            ids.push(answer.1["id"].as_i64().unwrap() as i32);
        }
    }
    let committed = committed_versions(&registry, "mixed").await;
    assert_eq!(
        committed
            .iter()
            .map(|(version, _)| *version)
            .collect::<Vec<_>>(),
        (1..=49).collect::<Vec<_>>(),
        "the refused ones took no version"
    );
    let mut committed_ids: Vec<i32> = committed.iter().map(|(_, id)| *id).collect();
    committed_ids.sort_unstable();
    ids.sort_unstable();
    assert_eq!(committed_ids, ids);
    // No refused schema was stored under any id.
    let pool = sqlx::PgPool::connect(&registry.database.url).await.unwrap();
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM schemas WHERE schema_text LIKE '%\"long\"%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, 0);
    pool.close().await;

    // Two schemas each compatible with the latest version but not with each other
    // (`clash` a string, then a long): whichever is decided first becomes the latest version,
    // and the other is checked against it, in the same group or not: one passes, one fails.
    let clash = |kind: &str| {
        format!(
            r#"{{"type":"record","name":"Hot","namespace":"com.example","fields":[{{"name":"name","type":"string"}},{{"name":"clash","type":["null","{kind}"],"default":null}}]}}"#
        )
    };
    let answers = register_all_at_once(&api, "mixed", &[clash("string"), clash("long")]).await;
    let passed = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert_eq!(passed, 1, "{answers:?}");
    let failed = answers
        .iter()
        .find(|(status, _)| *status != StatusCode::OK)
        .unwrap();
    assert_error(failed, 409, 409);
    assert_eq!(committed_versions(&registry, "mixed").await.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hot_subject_under_backward_is_served_by_a_pool_of_two_connections() {
    // The subject's latest version is written by one replica, then checked against by a fresh
    // one (empty caches) whose pool has two connections, the event listener holding one: the
    // group that holds the subject's lock reads that version on its own connection, so the
    // registrations never wait for a second one (which would time out with 503).
    let database = tributary_tests::TestDatabase::create().await;
    let first = TestRegistry::start_on(database.clone()).await;
    let api = Api::new(&first);
    assert_eq!(
        api.put("/config/tight", json!({"compatibility": "BACKWARD"}))
            .await
            .0,
        StatusCode::OK
    );
    api.register("tight", &hot_schema(0)).await;
    first.stop().await.unwrap();

    let registry = TestRegistry::start_with(database, |settings| {
        settings.db_max_connections = 2;
    })
    .await;
    let api = std::sync::Arc::new(Api::new(&registry));
    let schemas: Vec<String> = (1..=32).map(hot_schema).collect();
    let answers = register_all_at_once(&api, "tight", &schemas).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    let committed = committed_versions(&registry, "tight").await;
    assert_eq!(
        committed
            .iter()
            .map(|(version, _)| *version)
            .collect::<Vec<_>>(),
        (1..=33).collect::<Vec<_>>()
    );
}
