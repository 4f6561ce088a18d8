//! The registry's gRPC API against a real Postgres: Confluent's semantics for ids, versions,
//! deletes, compatibility, configs, modes, references and errors.

#![allow(clippy::unwrap_used)]

use tonic::Code;
use tributary_proto::registry::v1 as pb;
use tributary_tests::{TestRegistry, error_code};

fn user_v1() -> String {
    r#"{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"}]}"#.to_owned()
}

fn user_v2_with_default() -> String {
    r#"{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":0}]}"#.to_owned()
}

fn register_request(subject: &str, schema: &str) -> pb::RegisterSchemaRequest {
    pb::RegisterSchemaRequest {
        subject: subject.to_owned(),
        schema: schema.to_owned(),
        ..Default::default()
    }
}

async fn versions(
    client: &mut pb::registry_service_client::RegistryServiceClient<tributary_tests::AuthChannel>,
    subject: &str,
    include_deleted: bool,
) -> Vec<i32> {
    client
        .list_versions(pb::ListVersionsRequest {
            subject: subject.to_owned(),
            include_deleted,
        })
        .await
        .unwrap()
        .into_inner()
        .versions
}

#[tokio::test]
async fn register_dedups_on_the_canonical_form_and_shares_ids_across_subjects() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;

    let first = client
        .register_schema(register_request("users-value", &user_v1()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.version, 1);
    assert!(first.id > 0);
    assert_eq!(
        first.schema,
        user_v1(),
        "the stored form is Java's compact toString()"
    );

    // Same schema, different whitespace and key order: the same id and version, nothing written.
    let reformatted = r#"{ "namespace": "com.example", "name": "User", "type": "record",
        "fields": [ { "type": "string", "name": "name" } ] }"#;
    let again = client
        .register_schema(register_request("users-value", reformatted))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.id, again.version), (first.id, 1));
    assert_eq!(versions(&mut client, "users-value", true).await, vec![1]);

    // The same schema under another subject gets the same global id, version 1 there.
    let other = client
        .register_schema(register_request("audit-value", &user_v1()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((other.id, other.version), (first.id, 1));

    // A different schema: a new id and the next version.
    let second = client
        .register_schema(register_request("users-value", &user_v2_with_default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.version, 2);
    assert_ne!(second.id, first.id);

    // A doc change is a different schema for Confluent (not a looser rule).
    let with_doc = r#"{"type":"record","name":"User","namespace":"com.example","doc":"a user","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":0}]}"#;
    let third = client
        .register_schema(register_request("users-value", with_doc))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(third.version, 3);
    assert_ne!(third.id, second.id);

    let by_id = client
        .get_schema(pb::GetSchemaRequest {
            id: first.id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_id.schema, user_v1());
    assert_eq!(by_id.schema_type, "AVRO");

    let usages = client
        .list_schema_usages(pb::ListSchemaUsagesRequest {
            id: first.id,
            include_deleted: false,
        })
        .await
        .unwrap()
        .into_inner();
    let usages: Vec<(String, i32)> = usages
        .usages
        .into_iter()
        .map(|u| (u.subject, u.version))
        .collect();
    assert_eq!(
        usages,
        vec![("audit-value".to_owned(), 1), ("users-value".to_owned(), 1)]
    );

    let latest = client
        .get_subject_version(pb::GetSubjectVersionRequest {
            subject: "users-value".into(),
            version: -1,
            include_deleted: false,
        })
        .await
        .unwrap()
        .into_inner()
        .subject_version
        .unwrap();
    assert_eq!((latest.version, latest.id), (3, third.id));

    let looked_up = client
        .lookup_schema(pb::LookupSchemaRequest {
            subject: "users-value".into(),
            schema: reformatted.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subject_version
        .unwrap();
    assert_eq!((looked_up.id, looked_up.version), (first.id, 1));

    let missing = client
        .lookup_schema(pb::LookupSchemaRequest {
            subject: "users-value".into(),
            schema: r#""string""#.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code(), error_code(&missing)),
        (Code::NotFound, Some(40403))
    );

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn deletes_follow_confluent_rules_and_never_reuse_soft_deleted_versions() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    client
        .set_compatibility_level(pb::SetCompatibilityLevelRequest {
            subject: "s".into(),
            level: pb::CompatibilityLevel::None as i32,
        })
        .await
        .unwrap();
    for schema in [r#""string""#, r#""int""#, r#""long""#] {
        client
            .register_schema(register_request("s", schema))
            .await
            .unwrap();
    }

    // Permanent delete before soft delete is refused.
    let status = client
        .delete_subject_version(pb::DeleteSubjectVersionRequest {
            subject: "s".into(),
            version: 2,
            permanent: true,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), error_code(&status)),
        (Code::FailedPrecondition, Some(40407))
    );

    let deleted = client
        .delete_subject_version(pb::DeleteSubjectVersionRequest {
            subject: "s".into(),
            version: 3,
            permanent: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.version, 3);
    assert_eq!(versions(&mut client, "s", false).await, vec![1, 2]);
    assert_eq!(versions(&mut client, "s", true).await, vec![1, 2, 3]);

    // Soft-deleting it again: 40406.
    let status = client
        .delete_subject_version(pb::DeleteSubjectVersionRequest {
            subject: "s".into(),
            version: 3,
            permanent: false,
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&status), Some(40406));

    // While v3 is soft-deleted, a new registration gets 4, not 3.
    let next = client
        .register_schema(register_request("s", r#""double""#))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.version, 4);

    // Re-registering a soft-deleted schema creates a new version with the same id.
    let long_again = client
        .register_schema(register_request("s", r#""long""#))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(long_again.version, 5);

    // Soft-deleted versions are readable only when asked for.
    let status = client
        .get_subject_version(pb::GetSubjectVersionRequest {
            subject: "s".into(),
            version: 3,
            include_deleted: false,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), error_code(&status)),
        (Code::NotFound, Some(40402))
    );
    let v3 = client
        .get_subject_version(pb::GetSubjectVersionRequest {
            subject: "s".into(),
            version: 3,
            include_deleted: true,
        })
        .await
        .unwrap()
        .into_inner()
        .subject_version
        .unwrap();
    assert!(v3.deleted);

    // Subject: permanent before soft refused (40405); soft; soft again (40404); then permanent.
    let status = client
        .delete_subject(pb::DeleteSubjectRequest {
            subject: "s".into(),
            permanent: true,
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&status), Some(40405));
    let soft = client
        .delete_subject(pb::DeleteSubjectRequest {
            subject: "s".into(),
            permanent: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(soft.versions, vec![1, 2, 4, 5]);
    let status = client
        .delete_subject(pb::DeleteSubjectRequest {
            subject: "s".into(),
            permanent: false,
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&status), Some(40404));
    let status = client
        .list_versions(pb::ListVersionsRequest {
            subject: "s".into(),
            include_deleted: false,
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&status), Some(40401));
    let hard = client
        .delete_subject(pb::DeleteSubjectRequest {
            subject: "s".into(),
            permanent: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hard.versions, vec![1, 2, 3, 4, 5]);

    // After a permanent delete the subject starts again at version 1; ids stay the same.
    let fresh = client
        .register_schema(register_request("s", r#""string""#))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fresh.version, 1);
    // ...and its subject-level config went with it.
    let status = client
        .get_compatibility_level(pb::GetCompatibilityLevelRequest {
            subject: "s".into(),
            default_to_global: false,
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&status), Some(40408));

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn subjects_list_with_prefix_deleted_filters_and_paging() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    for subject in ["a-1", "a-2", "a-3", "b-1"] {
        client
            .register_schema(register_request(subject, r#""string""#))
            .await
            .unwrap();
    }
    client
        .delete_subject(pb::DeleteSubjectRequest {
            subject: "a-2".into(),
            permanent: false,
        })
        .await
        .unwrap();

    let list = |prefix: &str,
                include_deleted: bool,
                deleted_only: bool,
                page_size: i32,
                page_token: String| pb::ListSubjectsRequest {
        subject_prefix: prefix.into(),
        include_deleted,
        deleted_only,
        page_size,
        page_token,
    };
    let all = client
        .list_subjects(list("", false, false, 0, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.subjects, vec!["a-1", "a-3", "b-1"]);
    let with_deleted = client
        .list_subjects(list("a-", true, false, 0, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(with_deleted.subjects, vec!["a-1", "a-2", "a-3"]);
    let only_deleted = client
        .list_subjects(list("", false, true, 0, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(only_deleted.subjects, vec!["a-2"]);

    let page1 = client
        .list_subjects(list("", true, false, 2, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page1.subjects, vec!["a-1", "a-2"]);
    assert!(!page1.next_page_token.is_empty());
    let page2 = client
        .list_subjects(list("", true, false, 2, page1.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.subjects, vec!["a-3", "b-1"]);
    let page3 = client
        .list_subjects(list("", true, false, 2, page2.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert!(page3.subjects.is_empty());
    assert!(page3.next_page_token.is_empty());

    let status = client
        .list_subjects(list("", false, false, 2, "not-hex".into()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("page_token"),
        "{}",
        status.message()
    );

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn incompatible_registrations_are_refused_with_every_reason() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    let v1 = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED"]}}]}"#;
    client
        .register_schema(register_request("orders-value", v1))
        .await
        .unwrap();

    // Two problems at once under BACKWARD: a new field without default, and id long -> int.
    let bad = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"int"},{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED"]}},{"name":"total","type":"double"}]}"#;
    let report = client
        .check_compatibility(pb::CheckCompatibilityRequest {
            subject: "orders-value".into(),
            schema: bad.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!report.is_compatible);
    assert_eq!(report.level, pb::CompatibilityLevel::Backward as i32);
    let kinds: Vec<&str> = report
        .incompatibilities
        .iter()
        .map(|i| i.kind.as_str())
        .collect();
    assert!(kinds.contains(&"TYPE_MISMATCH"), "{kinds:?}");
    assert!(
        kinds.contains(&"READER_FIELD_MISSING_DEFAULT_VALUE"),
        "{kinds:?}"
    );
    let type_mismatch = report
        .incompatibilities
        .iter()
        .find(|i| i.kind == "TYPE_MISMATCH")
        .unwrap();
    assert_eq!(type_mismatch.location, "/fields/0/type");
    assert_eq!(type_mismatch.version, 1);
    assert_eq!(type_mismatch.direction, "BACKWARD");

    let status = client
        .register_schema(register_request("orders-value", bad))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), error_code(&status)),
        (Code::FailedPrecondition, Some(409))
    );
    assert!(
        status.message().contains("total"),
        "the message names the field: {}",
        status.message()
    );
    assert_eq!(
        versions(&mut client, "orders-value", true).await,
        vec![1],
        "nothing was written"
    );

    // FORWARD: removing a symbol the old reader knows is fine, adding one it doesn't is not.
    client
        .set_compatibility_level(pb::SetCompatibilityLevelRequest {
            subject: "orders-value".into(),
            level: pb::CompatibilityLevel::Forward as i32,
        })
        .await
        .unwrap();
    let new_symbol = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED","LOST"]}}]}"#;
    let report = client
        .check_compatibility(pb::CheckCompatibilityRequest {
            subject: "orders-value".into(),
            schema: new_symbol.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!report.is_compatible);
    assert_eq!(report.incompatibilities[0].kind, "MISSING_ENUM_SYMBOLS");
    assert!(report.incompatibilities[0].message.contains("LOST"));
    assert_eq!(report.incompatibilities[0].direction, "FORWARD");

    // A compatible change passes and registers.
    let good = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED"]}},{"name":"note","type":["null","string"],"default":null}]}"#;
    let ok = client
        .register_schema(register_request("orders-value", good))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.version, 2);

    // Against a specific version, and against a missing one.
    let report = client
        .check_compatibility(pb::CheckCompatibilityRequest {
            subject: "orders-value".into(),
            schema: good.into(),
            version: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(report.is_compatible);
    let status = client
        .check_compatibility(pb::CheckCompatibilityRequest {
            subject: "orders-value".into(),
            schema: good.into(),
            version: 9,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&status), Some(40402));

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn transitive_levels_test_every_live_version() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    client
        .set_compatibility_level(pb::SetCompatibilityLevelRequest {
            subject: "t".into(),
            level: pb::CompatibilityLevel::None as i32,
        })
        .await
        .unwrap();
    let with_a = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#;
    let with_a_b = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":1}]}"#;
    let with_b = r#"{"type":"record","name":"R","fields":[{"name":"b","type":"int","default":1}]}"#;
    client
        .register_schema(register_request("t", with_a))
        .await
        .unwrap();
    client
        .register_schema(register_request("t", with_a_b))
        .await
        .unwrap();

    // FORWARD (latest only): v2 can read data without 'a'? No: v2 needs 'a' (no default) -> incompatible.
    // BACKWARD against the latest is fine (with_b reads v2 data), but BACKWARD_TRANSITIVE is too.
    // FULL_TRANSITIVE fails because v1 cannot read data written with with_b (missing 'a').
    client
        .set_compatibility_level(pb::SetCompatibilityLevelRequest {
            subject: "t".into(),
            level: pb::CompatibilityLevel::FullTransitive as i32,
        })
        .await
        .unwrap();
    let report = client
        .check_compatibility(pb::CheckCompatibilityRequest {
            subject: "t".into(),
            schema: with_b.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!report.is_compatible);
    let against: std::collections::BTreeSet<i32> =
        report.incompatibilities.iter().map(|i| i.version).collect();
    assert_eq!(
        against,
        [1, 2].into_iter().collect(),
        "{:?}",
        report.incompatibilities
    );

    client
        .set_compatibility_level(pb::SetCompatibilityLevelRequest {
            subject: "t".into(),
            level: pb::CompatibilityLevel::BackwardTransitive as i32,
        })
        .await
        .unwrap();
    let report = client
        .check_compatibility(pb::CheckCompatibilityRequest {
            subject: "t".into(),
            schema: with_b.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(report.is_compatible, "{:?}", report.incompatibilities);

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn compatibility_levels_and_modes_are_configured_globally_and_per_subject() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    let global = client
        .get_compatibility_level(pb::GetCompatibilityLevelRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        global.level,
        pb::CompatibilityLevel::Backward as i32,
        "BACKWARD is the default"
    );

    let status = client
        .get_compatibility_level(pb::GetCompatibilityLevelRequest {
            subject: "x".into(),
            default_to_global: false,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), error_code(&status)),
        (Code::NotFound, Some(40408))
    );
    let fallback = client
        .get_compatibility_level(pb::GetCompatibilityLevelRequest {
            subject: "x".into(),
            default_to_global: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fallback.level, pb::CompatibilityLevel::Backward as i32);

    for (level, wire) in [
        (pb::CompatibilityLevel::FullTransitive, 7),
        (pb::CompatibilityLevel::Forward, 4),
    ] {
        client
            .set_compatibility_level(pb::SetCompatibilityLevelRequest {
                subject: "x".into(),
                level: level as i32,
            })
            .await
            .unwrap();
        let got = client
            .get_compatibility_level(pb::GetCompatibilityLevelRequest {
                subject: "x".into(),
                default_to_global: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.level, wire);
    }
    let removed = client
        .delete_compatibility_level(pb::DeleteCompatibilityLevelRequest {
            subject: "x".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.level, pb::CompatibilityLevel::Forward as i32);

    for bad in [0, 8, -3] {
        let status = client
            .set_compatibility_level(pb::SetCompatibilityLevelRequest {
                subject: "x".into(),
                level: bad,
            })
            .await
            .unwrap_err();
        assert_eq!(
            (status.code(), error_code(&status)),
            (Code::InvalidArgument, Some(42203)),
            "level {bad}"
        );
    }
    let status = client
        .set_mode(pb::SetModeRequest {
            subject: String::new(),
            mode: 42,
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), error_code(&status)),
        (Code::InvalidArgument, Some(42204))
    );

    // READONLY refuses registrations and deletes, with 42205, and writes nothing.
    client
        .register_schema(register_request("ro", r#""string""#))
        .await
        .unwrap();
    client
        .set_mode(pb::SetModeRequest {
            subject: "ro".into(),
            mode: pb::Mode::Readonly as i32,
            force: false,
        })
        .await
        .unwrap();
    let status = client
        .register_schema(register_request("ro", r#""int""#))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), error_code(&status)),
        (Code::FailedPrecondition, Some(42205))
    );
    let status = client
        .delete_subject(pb::DeleteSubjectRequest {
            subject: "ro".into(),
            permanent: false,
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&status), Some(42205));
    assert_eq!(versions(&mut client, "ro", true).await, vec![1]);
    let mode = client
        .get_mode(pb::GetModeRequest {
            subject: "ro".into(),
            default_to_global: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mode.mode, pb::Mode::Readonly as i32);
    client
        .delete_mode(pb::DeleteModeRequest {
            subject: "ro".into(),
        })
        .await
        .unwrap();
    client
        .register_schema(register_request("ro", r#""int""#))
        .await
        .unwrap_err(); // BACKWARD: int cannot read string
    let status = client
        .get_mode(pb::GetModeRequest {
            subject: "ro".into(),
            default_to_global: false,
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&status), Some(40409));

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn import_mode_preserves_caller_chosen_ids_and_versions() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    client
        .register_schema(register_request("existing", r#""string""#))
        .await
        .unwrap();

    // IMPORT on a non-empty registry needs force.
    let status = client
        .set_mode(pb::SetModeRequest {
            subject: String::new(),
            mode: pb::Mode::Import as i32,
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&status), Some(42205));
    client
        .set_mode(pb::SetModeRequest {
            subject: String::new(),
            mode: pb::Mode::Import as i32,
            force: true,
        })
        .await
        .unwrap();

    // Without an id: refused.
    let status = client
        .register_schema(register_request("migrated", &user_v1()))
        .await
        .unwrap_err();
    assert_eq!(error_code(&status), Some(42205));

    let imported = client
        .register_schema(pb::RegisterSchemaRequest {
            id: 1000,
            version: 7,
            ..register_request("migrated", &user_v1())
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((imported.id, imported.version), (1000, 7));
    // Compatibility is not checked in IMPORT mode: an incompatible schema imports fine.
    let imported2 = client
        .register_schema(pb::RegisterSchemaRequest {
            id: 1001,
            version: 8,
            ..register_request("migrated", r#""int""#)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((imported2.id, imported2.version), (1001, 8));
    // An id already used by another schema: 42207.
    let status = client
        .register_schema(pb::RegisterSchemaRequest {
            id: 1000,
            ..register_request("other", r#""long""#)
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), error_code(&status)),
        (Code::AlreadyExists, Some(42207))
    );

    // Back to READWRITE: new ids come after the imported ones.
    client
        .set_mode(pb::SetModeRequest {
            subject: String::new(),
            mode: pb::Mode::Readwrite as i32,
            force: false,
        })
        .await
        .unwrap();
    let status = client
        .register_schema(pb::RegisterSchemaRequest {
            id: 5000,
            ..register_request("other", r#""long""#)
        })
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&status),
        Some(42205),
        "ids can only be chosen in IMPORT mode"
    );
    let fresh = client
        .register_schema(register_request("other", r#""long""#))
        .await
        .unwrap()
        .into_inner();
    assert!(
        fresh.id > 1001,
        "new id {} must not collide with imported ids",
        fresh.id
    );
    let by_id = client
        .get_schema(pb::GetSchemaRequest {
            id: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_id.schema, user_v1());

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn references_resolve_named_types_from_other_subjects_and_block_deletes() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    let address = r#"{"type":"record","name":"Address","namespace":"com.example","fields":[{"name":"city","type":"string"}]}"#;
    let address_id = client
        .register_schema(register_request("address", address))
        .await
        .unwrap()
        .into_inner()
        .id;

    let customer = r#"{"type":"record","name":"Customer","namespace":"com.example","fields":[{"name":"name","type":"string"},{"name":"home","type":"com.example.Address"}]}"#;
    // Without the reference the type is unknown: 42201 naming it.
    let status = client
        .register_schema(register_request("customer", customer))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), error_code(&status)),
        (Code::InvalidArgument, Some(42201))
    );
    assert!(status.message().contains("Address"), "{}", status.message());

    let reference = pb::SchemaReference {
        name: "com.example.Address".into(),
        subject: "address".into(),
        version: 1,
    };
    let registered = client
        .register_schema(pb::RegisterSchemaRequest {
            references: vec![reference.clone()],
            ..register_request("customer", customer)
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(registered.id, address_id);
    assert!(
        !registered.schema.contains("city"),
        "the referenced type is written by name: {}",
        registered.schema
    );

    let by_id = client
        .get_schema(pb::GetSchemaRequest {
            id: registered.id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_id.references, vec![reference.clone()]);

    let referenced_by = client
        .list_referenced_by(pb::ListReferencedByRequest {
            subject: "address".into(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(referenced_by.ids, vec![registered.id]);

    let status = client
        .delete_subject_version(pb::DeleteSubjectVersionRequest {
            subject: "address".into(),
            version: 1,
            permanent: false,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), error_code(&status)),
        (Code::FailedPrecondition, Some(42206))
    );

    // A reference to a version that does not exist is an invalid schema, named.
    let status = client
        .register_schema(pb::RegisterSchemaRequest {
            references: vec![pb::SchemaReference {
                version: 9,
                ..reference
            }],
            ..register_request("customer2", customer)
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&status), Some(42201));
    assert!(status.message().contains("address"), "{}", status.message());

    // Evolving the referencing schema is checked with the referenced types resolved.
    let customer_v2 = r#"{"type":"record","name":"Customer","namespace":"com.example","fields":[{"name":"name","type":"string"},{"name":"home","type":"com.example.Address"},{"name":"work","type":["null","com.example.Address"],"default":null}]}"#;
    let v2 = client
        .register_schema(pb::RegisterSchemaRequest {
            references: vec![pb::SchemaReference {
                name: "com.example.Address".into(),
                subject: "address".into(),
                version: 1,
            }],
            ..register_request("customer", customer_v2)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v2.version, 2);

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_the_right_code_and_a_message_naming_what_is_wrong() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;

    let cases: Vec<(pb::RegisterSchemaRequest, Code, u32, &str)> = vec![
        (
            register_request(
                "s",
                r#"{"type":"record","name":"R","fields":[{"name":"a","type":"strin"}]}"#,
            ),
            Code::InvalidArgument,
            42201,
            "strin",
        ),
        (
            register_request("s", r#"{"type": "record", "name": "User" "fields": []}"#),
            Code::InvalidArgument,
            42201,
            "schema",
        ),
        (
            register_request("s", ""),
            Code::InvalidArgument,
            42201,
            "Empty schema",
        ),
        (
            register_request("", r#""string""#),
            Code::InvalidArgument,
            42208,
            "empty",
        ),
        (
            register_request("bad\u{7}subject", r#""string""#),
            Code::InvalidArgument,
            42208,
            "control",
        ),
        (
            register_request(
                "s",
                &format!(
                    r#"{{"type":"enum","name":"E","symbols":["{}"]}}"#,
                    "A".repeat(70_000)
                ),
            ),
            Code::InvalidArgument,
            42209,
            "limit",
        ),
        (
            pb::RegisterSchemaRequest {
                schema_type: "XML".into(),
                ..register_request("s", r#""string""#)
            },
            Code::InvalidArgument,
            42201,
            "'XML'",
        ),
        (
            // Avro text as a Protobuf schema: the compiler's error, located.
            pb::RegisterSchemaRequest {
                schema_type: "PROTOBUF".into(),
                ..register_request("s", r#""string""#)
            },
            Code::InvalidArgument,
            42201,
            "schema:1:1",
        ),
    ];
    for (request, code, confluent, needle) in cases {
        let status = client.register_schema(request.clone()).await.unwrap_err();
        assert_eq!(
            (status.code(), error_code(&status)),
            (code, Some(confluent)),
            "{request:?}: {}",
            status.message()
        );
        assert!(
            status.message().contains(needle),
            "{:?} should mention {needle:?}: {}",
            request.subject,
            status.message()
        );
    }

    let status = client
        .get_schema(pb::GetSchemaRequest {
            id: 424_242,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), error_code(&status)),
        (Code::NotFound, Some(40403))
    );
    assert!(status.message().contains("424242"));
    let status = client
        .get_subject_version(pb::GetSubjectVersionRequest {
            subject: "nope".into(),
            version: 1,
            include_deleted: false,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), error_code(&status)),
        (Code::NotFound, Some(40401))
    );
    assert!(status.message().contains("nope"));
    client
        .register_schema(register_request("s", r#""string""#))
        .await
        .unwrap();
    let status = client
        .get_subject_version(pb::GetSubjectVersionRequest {
            subject: "s".into(),
            version: 5,
            include_deleted: false,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), error_code(&status)),
        (Code::NotFound, Some(40402))
    );
    let status = client
        .get_subject_version(pb::GetSubjectVersionRequest {
            subject: "s".into(),
            version: -7,
            include_deleted: false,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), error_code(&status)),
        (Code::InvalidArgument, Some(42202))
    );

    // Nothing of the failed attempts was written.
    assert_eq!(versions(&mut client, "s", true).await, vec![1]);

    registry.stop().await.unwrap();
}

#[tokio::test]
async fn watch_streams_committed_changes() {
    use tokio_stream::StreamExt;
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    let mut stream = client
        .watch(pb::WatchRequest {
            subject_prefix: "orders".into(),
        })
        .await
        .unwrap()
        .into_inner();

    // The listener announces itself with a resync when it (re)connects; skip that if present.
    client
        .register_schema(register_request("other-value", r#""string""#))
        .await
        .unwrap();
    let registered = client
        .register_schema(register_request("orders-value", r#""string""#))
        .await
        .unwrap()
        .into_inner();
    client
        .set_compatibility_level(pb::SetCompatibilityLevelRequest {
            subject: String::new(),
            level: pb::CompatibilityLevel::Full as i32,
        })
        .await
        .unwrap();

    let mut seen = Vec::new();
    while seen.len() < 2 {
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
            .await
            .expect("an event within 5 s");
        let event = next.unwrap().unwrap().event.unwrap();
        if !matches!(event, pb::watch_response::Event::Resync(_)) {
            seen.push(event);
        }
    }
    assert_eq!(
        seen[0],
        pb::watch_response::Event::SchemaRegistered(pb::SchemaRegistered {
            subject: "orders-value".into(),
            version: 1,
            id: registered.id
        }),
        "events of other subjects are filtered out"
    );
    assert_eq!(
        seen[1],
        pb::watch_response::Event::CompatibilityLevelChanged(pb::CompatibilityLevelChanged {
            subject: String::new(),
            level: pb::CompatibilityLevel::Full as i32
        })
    );
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn normalize_dedups_schemas_that_differ_only_in_property_order() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    client
        .set_compatibility_level(pb::SetCompatibilityLevelRequest {
            subject: "n".into(),
            level: pb::CompatibilityLevel::None as i32,
        })
        .await
        .unwrap();
    // The same schema with its custom properties in two orders: distinct canonical strings
    // (Java keeps property order), one normalized form (Confluent sorts properties).
    let first = r#"{"type":"record","name":"N","owner":"team-a","tier":"gold","fields":[{"name":"a","type":"int"}]}"#;
    let second = r#"{"type":"record","name":"N","tier":"gold","owner":"team-a","fields":[{"name":"a","type":"int"}]}"#;

    let plain_first = client
        .register_schema(register_request("n", first))
        .await
        .unwrap()
        .into_inner();
    let plain_second = client
        .register_schema(register_request("n", second))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(
        plain_first.id, plain_second.id,
        "without normalize, property order matters"
    );
    assert_eq!(plain_second.version, 2);

    let normalized = |schema: &str| pb::RegisterSchemaRequest {
        normalize: true,
        ..register_request("m", schema)
    };
    let norm_first = client
        .register_schema(normalized(first))
        .await
        .unwrap()
        .into_inner();
    let norm_second = client
        .register_schema(normalized(second))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (norm_second.id, norm_second.version),
        (norm_first.id, 1),
        "one normalized schema, one version"
    );

    // Lookup with normalize finds it from either spelling.
    let found = client
        .lookup_schema(pb::LookupSchemaRequest {
            subject: "m".into(),
            schema: second.into(),
            normalize: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subject_version
        .unwrap();
    assert_eq!(found.id, norm_first.id);
    registry.stop().await.unwrap();
}
