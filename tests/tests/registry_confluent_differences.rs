//! The Confluent API differences of issue #19 (point 3), found by running a peer registry's
//! public test suite, each answered as Confluent Schema Registry answers it: the status, the
//! `error_code` and the start of the message (Confluent's fixed text; this registry's detail
//! may follow it).
//!
//! 1. Missing versions are 40402 on every version route, 40401 only for an unknown subject
//!    (and never on the compatibility route, which answers 40402 whatever the subject).
//! 2. `Accept` wildcards in either part, and request bodies in UTF-16 and UTF-32.
//! 3. Error messages that start with Confluent's text, over HTTP and gRPC.
//! 4. Data contracts (`metadata`, `ruleSet`, config fields other than `compatibility`) refused,
//!    not dropped; null and empty values are absent.
//! 5. Schema contexts: `GET /contexts` is `["."]`, a `:.ctx:` subject is an invalid subject.

#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use tributary_proto::registry::v1 as pb;
use tributary_tests::registry_http::{Api, V1, assert_error};
use tributary_tests::{TestRegistry, error_code};

fn user_v1() -> &'static str {
    r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}"#
}

/// BACKWARD-incompatible with `user_v1`.
fn user_breaking() -> &'static str {
    r#"{"type":"record","name":"User","fields":[{"name":"name","type":"long"}]}"#
}

/// A Confluent error whose message starts with `prefix`.
fn assert_confluent(response: &(StatusCode, Value), status: u16, code: u64, prefix: &str) {
    assert_error(response, status, code);
    let message = response.1["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(prefix),
        "message {message:?} does not start with {prefix:?}"
    );
}

#[tokio::test]
async fn missing_versions_are_40402_and_unknown_subjects_40401_on_every_version_route() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);
    api.register("s", user_v1()).await;
    let body = json!({ "schema": user_v1() });

    // The compatibility route: 40402 for a version that is not there, whether or not the
    // subject is (Confluent's `testCompatibilityBySubjectName` never answers 40401).
    for path in [
        "/compatibility/subjects/s/versions/2",
        "/compatibility/subjects/nobody/versions/2",
    ] {
        assert_confluent(
            &api.post(path, body.clone()).await,
            404,
            40402,
            "Version 2 not found.",
        );
    }
    // The other version routes: 40402 in a known subject, 40401 for an unknown one.
    for (method, suffix) in [
        ("GET", ""),
        ("GET", "/schema"),
        ("GET", "/referencedby"),
        ("DELETE", ""),
    ] {
        for (subject, code, prefix) in [
            ("s", 40402, "Version 2 not found."),
            ("nobody", 40401, "Subject 'nobody' not found."),
        ] {
            let path = format!("/subjects/{subject}/versions/2{suffix}");
            let response = if method == "GET" {
                api.get(&path).await
            } else {
                api.delete(&path).await
            };
            assert_confluent(&response, 404, code, prefix);
        }
    }

    // Every version soft-deleted: reads without `deleted` do not see the subject (40401), a
    // delete does (its versions are there, deleted): 40402 for a number it never had, 40406
    // for the deleted one; referencedby reads deleted versions too, as Confluent's does.
    assert_eq!(api.delete("/subjects/s/versions/1").await.1, json!(1));
    assert_confluent(
        &api.get("/subjects/s/versions/1").await,
        404,
        40401,
        "Subject 's' not found.",
    );
    assert_eq!(api.get("/subjects/s/versions/1?deleted=true").await.0, 200);
    assert_eq!(
        api.get("/subjects/s/versions/1/referencedby").await,
        (StatusCode::OK, json!([]))
    );
    assert_confluent(
        &api.delete("/subjects/s/versions/5").await,
        404,
        40402,
        "Version 5 not found.",
    );
    assert_confluent(
        &api.delete("/subjects/s/versions/1").await,
        404,
        40406,
        "Subject 's' Version 1 was soft deleted.Set permanent=true to delete permanently",
    );
    // A soft-deleted version is not tested against.
    assert_confluent(
        &api.post("/compatibility/subjects/s/versions/1", body.clone())
            .await,
        404,
        40402,
        "Version 1 not found.",
    );
    // "latest" of a subject with nothing live is nothing to break, as before.
    assert_eq!(
        api.post("/compatibility/subjects/s/versions/latest", body)
            .await
            .1,
        json!({"is_compatible": true})
    );

    registry.stop().await.unwrap();
}

/// `text` in an encoding, with its byte order mark or without.
fn encode(text: &str, encoding: &str, bom: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    let units: Vec<u32> = text.chars().map(u32::from).collect();
    let push16 = |bytes: &mut Vec<u8>, unit: u16, big: bool| {
        bytes.extend(if big {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        })
    };
    match encoding {
        "UTF-16BE" | "UTF-16LE" => {
            let big = encoding == "UTF-16BE";
            if bom {
                push16(&mut bytes, 0xFEFF, big);
            }
            for unit in text.encode_utf16() {
                push16(&mut bytes, unit, big);
            }
        }
        "UTF-32BE" | "UTF-32LE" => {
            let big = encoding == "UTF-32BE";
            for unit in bom.then_some(0xFEFF).into_iter().chain(units) {
                bytes.extend(if big {
                    unit.to_be_bytes()
                } else {
                    unit.to_le_bytes()
                });
            }
        }
        _ => {
            if bom {
                bytes.extend([0xEF, 0xBB, 0xBF]);
            }
            bytes.extend(text.as_bytes());
        }
    }
    bytes
}

#[tokio::test]
async fn wildcard_accept_ranges_and_utf_16_and_utf_32_bodies_are_read_as_jax_rs_and_jackson_do() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);
    api.register("s", user_v1()).await;

    // Accept: a wildcard in either part matches, as JAX-RS's `MediaType.isCompatible`.
    for (accept, answered) in [
        ("*/*", V1),
        ("*/anything", V1),
        ("*/json", V1),
        ("application/*", V1),
        ("text/html, */json;q=0.5", V1),
        ("application/json, */*;q=0.1", "application/json"),
    ] {
        let response = api
            .client
            .get(api.url("/subjects"))
            .header(ACCEPT, accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "Accept: {accept}");
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            answered,
            "Accept: {accept}"
        );
    }
    let refused = api
        .send(
            api.client
                .get(api.url("/subjects"))
                .header(ACCEPT, "text/*"),
        )
        .await;
    assert_error(&refused, 406, 406);

    // Bodies in UTF-16 and UTF-32, with or without a byte order mark and a charset: the same
    // registration (text outside ASCII and the BMP included).
    let schema = r#"{"type":"record","name":"Cafe","doc":"naïve 𝄞","fields":[{"name":"n","type":"string"}]}"#;
    let text = json!({ "schema": schema }).to_string();
    let mut ids = Vec::new();
    for encoding in ["UTF-8", "UTF-16BE", "UTF-16LE", "UTF-32BE", "UTF-32LE"] {
        let family = encoding.get(..6).unwrap_or(encoding);
        for bom in [false, true] {
            for content_type in [
                V1.to_owned(),
                format!("{V1}; charset={encoding}"),
                format!("application/json; charset=\"{family}\""),
            ] {
                let response = api
                    .send(
                        api.client
                            .post(api.url("/subjects/encoded/versions"))
                            .header(CONTENT_TYPE, &content_type)
                            .body(encode(&text, encoding, bom)),
                    )
                    .await;
                assert_eq!(
                    response.0,
                    StatusCode::OK,
                    "{encoding} bom={bom} {content_type}: {}",
                    response.1
                );
                ids.push(response.1["id"].as_i64().unwrap());
            }
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one schema: {ids:?}");
    assert_eq!(
        api.get("/subjects/encoded/versions").await.1,
        json!([1]),
        "registered once"
    );
    let stored = api.get("/subjects/encoded/versions/1").await.1;
    assert!(
        stored["schema"].as_str().unwrap().contains("naïve 𝄞"),
        "{stored}"
    );

    // Undecodable bodies: Confluent's unreadable-JSON 400.
    let utf16 = encode(&text, "UTF-16LE", false);
    let mut lone_surrogate = encode(r#"{"schema": "x"}"#, "UTF-16LE", false);
    lone_surrogate[12..14].copy_from_slice(&0xD800u16.to_le_bytes());
    for (bytes, content_type) in [
        (utf16[..utf16.len() - 1].to_vec(), V1.to_owned()),
        (lone_surrogate, V1.to_owned()),
        (
            encode(&text, "UTF-32LE", false)[..9].to_vec(),
            format!("{V1}; charset=UTF-32LE"),
        ),
        (
            "{\"schema\": \"é\"}".as_bytes().to_vec(),
            format!("{V1}; charset=us-ascii"),
        ),
    ] {
        let response = api
            .send(
                api.client
                    .post(api.url("/subjects/encoded/versions"))
                    .header(CONTENT_TYPE, content_type)
                    .body(bytes),
            )
            .await;
        assert_error(&response, 400, 400);
    }

    // The body limit counts the bytes received (256 KiB in tests): the same request fits in
    // UTF-8 and not in UTF-32.
    let padded = format!(
        "{{\"schema\": \"\\\"string\\\"\"{}}}",
        " ".repeat(70 * 1024)
    );
    let post = |bytes: Vec<u8>| {
        api.send(
            api.client
                .post(api.url("/subjects/padded/versions"))
                .header(CONTENT_TYPE, V1)
                .body(bytes),
        )
    };
    assert_eq!(
        post(encode(&padded, "UTF-8", false)).await.0,
        StatusCode::OK
    );
    assert_error(&post(encode(&padded, "UTF-32LE", true)).await, 413, 413);

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn error_messages_start_with_confluents_text() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);
    let id = api.register("s", user_v1()).await;

    assert_confluent(
        &api.get("/subjects/nobody/versions").await,
        404,
        40401,
        "Subject 'nobody' not found.",
    );
    assert_confluent(
        &api.get("/subjects/s/versions/2").await,
        404,
        40402,
        "Version 2 not found.",
    );
    assert_confluent(
        &api.get("/schemas/ids/999999").await,
        404,
        40403,
        "Schema 999999 not found",
    );
    assert_confluent(
        &api.post("/subjects/s", json!({ "schema": user_breaking() }))
            .await,
        404,
        40403,
        "Schema not found",
    );
    assert_confluent(
        &api.post("/subjects/s/versions", json!({ "schema": " " }))
            .await,
        422,
        42201,
        "Empty schema",
    );
    assert_confluent(
        &api.post(
            "/subjects/s/versions",
            json!({ "schema": "{\"type\":\"strin\"}" }),
        )
        .await,
        422,
        42201,
        "Invalid schema",
    );
    assert_confluent(
        &api.post(
            "/subjects/s/versions",
            json!({ "schema": "{", "schemaType": "JSON" }),
        )
        .await,
        422,
        42201,
        "Invalid schema",
    );
    let conflict = api
        .post("/subjects/s/versions", json!({ "schema": user_breaking() }))
        .await;
    assert_confluent(
        &conflict,
        409,
        409,
        "Schema being registered is incompatible with an earlier schema for subject \"s\", details: ",
    );
    assert!(
        conflict.1["message"]
            .as_str()
            .unwrap()
            .contains("TYPE_MISMATCH"),
        "the reasons follow: {}",
        conflict.1
    );
    assert_confluent(
        &api.get("/subjects/s/versions/abc").await,
        422,
        42202,
        "The specified version 'abc' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"",
    );
    assert_confluent(
        &api.put("/config", json!({"compatibility": "SIDEWAYS"}))
            .await,
        422,
        42203,
        "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive",
    );
    assert_confluent(
        &api.put("/mode", json!({"mode": "SOMETIMES"})).await,
        422,
        42204,
        "Invalid mode. Valid values are READWRITE, READONLY, and IMPORT.",
    );
    assert_confluent(
        &api.get("/config/s").await,
        404,
        40408,
        "Subject 's' does not have subject-level compatibility configured",
    );
    assert_confluent(
        &api.get("/mode/s").await,
        404,
        40409,
        "Subject 's' does not have subject-level mode configured",
    );
    assert_confluent(
        &api.put("/mode", json!({"mode": "IMPORT"})).await,
        422,
        42205,
        "Cannot import since found existing subjects",
    );
    assert_confluent(
        &api.delete("/subjects/s?permanent=true").await,
        404,
        40405,
        "Subject 's' was not deleted first before being permanently deleted",
    );
    assert_confluent(
        &api.delete("/subjects/s/versions/1?permanent=true").await,
        404,
        40407,
        "Subject 's' Version 1 was not deleted first before being permanently deleted",
    );
    // A reference keeps its target.
    let referencing = json!({
        "schema": r#"{"type":"record","name":"Holder","fields":[{"name":"user","type":"User"}]}"#,
        "references": [{"name": "User", "subject": "s", "version": 1}],
    });
    let holder = api.post("/subjects/holder/versions", referencing).await;
    assert_eq!(holder.0, StatusCode::OK, "{}", holder.1);
    assert_confluent(
        &api.delete("/subjects/s/versions/1").await,
        422,
        42206,
        "One or more references exist to the schema {magic=1,keytype=SCHEMA,subject=s,version=1}.",
    );
    assert_confluent(
        &api.post(
            "/subjects/s/versions",
            json!({ "schema": user_v1(), "id": id + 1 }),
        )
        .await,
        422,
        42205,
        "Subject s is not in import mode",
    );
    assert_eq!(
        api.put("/mode/ro", json!({"mode": "READONLY"})).await.0,
        StatusCode::OK
    );
    assert_confluent(
        &api.post("/subjects/ro/versions", json!({ "schema": user_v1() }))
            .await,
        422,
        42205,
        "Subject ro is in read-only mode",
    );
    assert_eq!(
        api.put("/mode/imp", json!({"mode": "IMPORT"})).await.0,
        StatusCode::OK
    );
    assert_confluent(
        &api.post("/subjects/imp/versions", json!({ "schema": user_v1() }))
            .await,
        422,
        42205,
        "Subject imp is not in read-write mode",
    );
    assert_eq!(api.delete("/subjects/holder").await.0, StatusCode::OK);
    assert_confluent(
        &api.delete("/subjects/holder").await,
        404,
        40404,
        "Subject 'holder' was soft deleted.Set permanent=true to delete permanently",
    );

    // gRPC callers read the same text.
    let mut client = registry.client().await;
    let status = client
        .get_subject_version(pb::GetSubjectVersionRequest {
            subject: "nobody".into(),
            version: 1,
            include_deleted: false,
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&status), Some(40401));
    assert!(
        status.message().starts_with("Subject 'nobody' not found."),
        "{status:?}"
    );

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn data_contract_fields_are_refused_not_dropped() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);

    // What clients send when they use no data contract is absent: null and empty values.
    for (index, extra) in [
        json!({}),
        json!({"metadata": null, "ruleSet": null}),
        json!({"metadata": {}, "ruleSet": {}}),
        json!({"metadata": {"tags": {}, "properties": {}, "sensitive": []}}),
        json!({"ruleSet": {"migrationRules": [], "domainRules": []}}),
        // confluent-kafka (Python) sends the references list even when empty.
        json!({"schemaType": "AVRO", "references": []}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = json!({ "schema": user_v1() });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let response = api
            .post(&format!("/subjects/plain-{index}/versions"), body)
            .await;
        assert_eq!(response.0, StatusCode::OK, "{}", response.1);
    }

    // A metadata or a rule set: refused with 42201 naming the field, on every schema route;
    // nothing is registered.
    let metadata = json!({"properties": {"owner": "team-a"}});
    let rule_set =
        json!({"domainRules": [{"name": "r", "kind": "CONDITION", "type": "CEL", "expr": "true"}]});
    for (field, value) in [("metadata", metadata), ("ruleSet", rule_set)] {
        let body = json!({ "schema": user_v1(), field: value });
        for path in [
            "/subjects/contract/versions",
            "/subjects/plain-0",
            "/compatibility/subjects/plain-0/versions/latest",
            "/compatibility/subjects/plain-0/versions",
        ] {
            let response = api.post(path, body.clone()).await;
            assert_confluent(&response, 422, 42201, field);
            assert!(
                response.1["message"]
                    .as_str()
                    .unwrap()
                    .contains("data contracts"),
                "{path}: {}",
                response.1
            );
        }
    }
    assert_error(&api.get("/subjects/contract/versions").await, 404, 40401);

    // Config fields other than `compatibility`: refused with 422 naming the field, globally and
    // per subject; nothing is changed.
    for (field, value) in [
        ("normalize", json!(true)),
        ("alias", json!("other")),
        ("validateFields", json!(true)),
        ("compatibilityGroup", json!("app_version")),
        ("defaultMetadata", json!({"properties": {"a": "b"}})),
        ("overrideMetadata", json!({"properties": {"a": "b"}})),
        ("defaultRuleSet", json!({"domainRules": [{"name": "r"}]})),
        (
            "overrideRuleSet",
            json!({"migrationRules": [{"name": "r"}]}),
        ),
    ] {
        for path in ["/config", "/config/plain-0"] {
            let response = api
                .put(path, json!({"compatibility": "NONE", field: value}))
                .await;
            assert_confluent(&response, 422, 422, field);
        }
    }
    assert_eq!(
        api.get("/config").await.1,
        json!({"compatibilityLevel": "BACKWARD"})
    );
    assert_error(&api.get("/config/plain-0").await, 404, 40408);
    // Absent values are fine.
    let update = json!({
        "compatibility": "FULL",
        "normalize": false,
        "alias": "",
        "validateFields": null,
        "compatibilityGroup": null,
        "defaultMetadata": {},
        "overrideMetadata": null,
        "defaultRuleSet": {"domainRules": []},
        "overrideRuleSet": null,
    });
    assert_eq!(
        api.put("/config/plain-0", update).await,
        (StatusCode::OK, json!({"compatibility": "FULL"}))
    );

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn schema_contexts_are_refused_never_stored_as_plain_subjects() {
    let registry = TestRegistry::start().await;
    let api = Api::new(&registry);

    assert_eq!(api.get("/contexts").await, (StatusCode::OK, json!(["."])));

    let body = json!({ "schema": user_v1() });
    for subject in [":.ctx:orders", ":.:orders", ":.other:x"] {
        let register = api
            .post(&format!("/subjects/{subject}/versions"), body.clone())
            .await;
        assert_confluent(
            &register,
            422,
            42208,
            &format!("The specified subject '{subject}' is not a valid."),
        );
        assert!(
            register.1["message"]
                .as_str()
                .unwrap()
                .contains("contexts are not supported"),
            "{}",
            register.1
        );
        for response in [
            api.get(&format!("/subjects/{subject}/versions")).await,
            api.get(&format!("/subjects/{subject}/versions/latest"))
                .await,
            api.post(&format!("/subjects/{subject}"), body.clone())
                .await,
            api.post(
                &format!("/compatibility/subjects/{subject}/versions/latest"),
                body.clone(),
            )
            .await,
            api.put(
                &format!("/config/{subject}"),
                json!({"compatibility": "NONE"}),
            )
            .await,
            api.put(&format!("/mode/{subject}"), json!({"mode": "READONLY"}))
                .await,
            api.delete(&format!("/subjects/{subject}")).await,
        ] {
            assert_error(&response, 422, 42208);
        }
    }
    // A reference to a qualified subject finds nothing.
    let referencing = json!({
        "schema": r#"{"type":"record","name":"Holder","fields":[{"name":"user","type":"User"}]}"#,
        "references": [{"name": "User", "subject": ":.ctx:orders", "version": 1}],
    });
    assert_error(
        &api.post("/subjects/holder/versions", referencing).await,
        422,
        42201,
    );
    // Nothing was stored, under any name.
    assert_eq!(api.get("/subjects?deleted=true").await.1, json!([]));
    // gRPC refuses them too.
    let status = registry
        .client()
        .await
        .register_schema(pb::RegisterSchemaRequest {
            subject: ":.ctx:orders".into(),
            schema: user_v1().into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&status), Some(42208));

    registry.stop().await.unwrap();
}
