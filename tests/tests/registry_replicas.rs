//! Several registry processes on one database, hammered by many concurrent clients: no
//! duplicate ids, no version gaps, one id per schema, and "latest" stays right across replicas.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use sqlx::Row;
use tributary_proto::registry::v1 as pb;
use tributary_tests::{RegistryProcess, TestDatabase, TestRegistry, connect};

const REPLICAS: usize = 3;
const CLIENTS: usize = 24;
const REGISTRATIONS_PER_CLIENT: usize = 20;
const SUBJECTS: usize = 6;

/// Schemas that every client registers in its own order, so the same schema races across
/// replicas and subjects.
fn schema(n: usize) -> String {
    format!(
        r#"{{"type":"record","name":"R","fields":[{{"name":"f{n}","type":"int","default":{n}}}]}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_never_duplicate_ids_or_versions_under_concurrent_load() {
    let database = TestDatabase::create().await;
    // Migrate once up front so the processes race on serving, not on migrating.
    TestRegistry::start_on(database.clone())
        .await
        .stop()
        .await
        .unwrap();
    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        replicas.push(RegistryProcess::spawn(&database.url).await);
    }
    let addrs: Vec<_> = replicas.iter().map(|r| r.addr).collect();

    // NONE, so every registration is accepted and the test is about allocation, not judgement.
    let mut admin = connect(addrs[0]).await;
    admin
        .set_compatibility_level(pb::SetCompatibilityLevelRequest {
            subject: String::new(),
            level: pb::CompatibilityLevel::None as i32,
        })
        .await
        .unwrap();
    // Config changes propagate through NOTIFY; give the other replicas a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        let addr = addrs[client_index % REPLICAS];
        tasks.push(tokio::spawn(async move {
            let mut client = connect(addr).await;
            let mut results = Vec::new();
            for step in 0..REGISTRATIONS_PER_CLIENT {
                let schema_index = (client_index * 7 + step * 3) % 40;
                let subject = format!("subject-{}", (client_index + step) % SUBJECTS);
                let response = client
                    .register_schema(pb::RegisterSchemaRequest {
                        subject: subject.clone(),
                        schema: schema(schema_index),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|status| panic!("registration failed: {status:?}"))
                    .into_inner();
                results.push((subject, schema_index, response.id, response.version));
            }
            results
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await.unwrap());
    }

    // 1. One id per schema, as answered to every client on every replica.
    let mut id_of_schema: HashMap<usize, i32> = HashMap::new();
    for (_, schema_index, id, _) in &answers {
        let known = *id_of_schema.entry(*schema_index).or_insert(*id);
        assert_eq!(known, *id, "schema {schema_index} was given two ids");
    }
    let distinct_ids: HashSet<i32> = id_of_schema.values().copied().collect();
    assert_eq!(
        distinct_ids.len(),
        id_of_schema.len(),
        "two schemas share an id"
    );

    // 2. Each (subject, schema) pair got exactly one version, the same for everyone.
    let mut version_of: HashMap<(String, usize), i32> = HashMap::new();
    for (subject, schema_index, _, version) in &answers {
        let known = *version_of
            .entry((subject.clone(), *schema_index))
            .or_insert(*version);
        assert_eq!(known, *version, "{subject}/{schema_index} registered twice");
    }

    // 3. In the database: versions 1..=n without gaps per subject, matching the answers.
    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    let rows = sqlx::query(
        "SELECT subject, version, schema_id FROM subject_versions ORDER BY subject, version",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut per_subject: BTreeMap<String, Vec<(i32, i32)>> = BTreeMap::new();
    for row in rows {
        per_subject
            .entry(row.get("subject"))
            .or_default()
            .push((row.get("version"), row.get("schema_id")));
    }
    assert_eq!(per_subject.len(), SUBJECTS);
    for (subject, versions) in &per_subject {
        let numbers: Vec<i32> = versions.iter().map(|(v, _)| *v).collect();
        let expected: Vec<i32> = (1..=numbers.len() as i32).collect();
        assert_eq!(numbers, expected, "versions of {subject} have gaps");
        let ids: HashSet<i32> = versions.iter().map(|(_, id)| *id).collect();
        assert_eq!(
            ids.len(),
            versions.len(),
            "{subject} holds one schema twice"
        );
    }
    let stored = version_of.len();
    let in_db: usize = per_subject.values().map(Vec::len).sum();
    assert_eq!(
        stored, in_db,
        "every answered (subject, schema) is one row, and nothing else was written"
    );
    let schema_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM schemas")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(schema_rows as usize, id_of_schema.len());

    // 4. "Latest" read on one replica follows a write on another.
    let mut writer = connect(addrs[0]).await;
    let mut reader = connect(addrs[1]).await;
    // Warm the reader's cache first.
    let before = reader
        .get_subject_version(pb::GetSubjectVersionRequest {
            subject: "subject-0".into(),
            version: -1,
            include_deleted: false,
        })
        .await
        .unwrap()
        .into_inner()
        .subject_version
        .unwrap();
    let written = writer
        .register_schema(pb::RegisterSchemaRequest {
            subject: "subject-0".into(),
            schema: schema(999),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(written.version, before.version + 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let latest = reader
            .get_subject_version(pb::GetSubjectVersionRequest {
                subject: "subject-0".into(),
                version: -1,
                include_deleted: false,
            })
            .await
            .unwrap()
            .into_inner()
            .subject_version
            .unwrap();
        if latest.version == written.version {
            assert_eq!(latest.id, written.id);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replica 2 still serves version {} 2 s after the write",
            latest.version
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    for replica in replicas {
        assert!(
            replica.terminate().await.success(),
            "replica exits cleanly on SIGTERM"
        );
    }
}
