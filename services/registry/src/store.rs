//! Postgres access: every query the registry runs, one function each.
//!
//! Functions that take a `&mut PgConnection` run inside the caller's transaction; the registry
//! composes them so every multi-step write is one transaction. Nothing here caches.

#![warn(clippy::arithmetic_side_effects)]

use sqlx::{PgConnection, PgPool, Row};

use crate::model::{ConfigRow, Reference, SchemaRow, VersionRow};

/// A `schemas` row to insert, with its references.
#[derive(Debug, Clone, Copy)]
pub struct NewSchema<'a> {
    pub fingerprint: &'a [u8],
    pub schema_type: &'a str,
    pub text: &'a str,
    pub references: &'a [Reference],
}

/// The NOTIFY channel on which every committed change is announced to all replicas.
pub const EVENTS_CHANNEL: &str = "tributary_registry_events";

#[tracing::instrument(level = "debug", skip(pool), err(Display), fields(otel.kind = "client", otel.name = "SELECT schemas", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "schemas", code.function.name = "schema_by_id"))]
pub async fn schema_by_id(pool: &PgPool, id: i32) -> Result<Option<SchemaRow>, sqlx::Error> {
    let row = sqlx::query(SCHEMA_BY_ID)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let references = references_of(pool, id).await?;
    Ok(Some(schema_row(&row, references)))
}

/// [`schema_by_id`] inside the caller's transaction (on its connection, so that a transaction
/// holding a row lock never waits for a second pooled connection).
#[tracing::instrument(level = "debug", skip(conn), err(Display), fields(otel.kind = "client", otel.name = "SELECT schemas", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "schemas", code.function.name = "schema_by_id_in"))]
pub async fn schema_by_id_in(
    conn: &mut PgConnection,
    id: i32,
) -> Result<Option<SchemaRow>, sqlx::Error> {
    let row = sqlx::query(SCHEMA_BY_ID)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let references = references_of(&mut *conn, id).await?;
    Ok(Some(schema_row(&row, references)))
}

const SCHEMA_BY_ID: &str =
    "SELECT id, fingerprint, schema_type, schema_text FROM schemas WHERE id = $1";

fn schema_row(row: &sqlx::postgres::PgRow, references: Vec<Reference>) -> SchemaRow {
    SchemaRow {
        id: row.get("id"),
        fingerprint: row.get("fingerprint"),
        schema_type: row.get("schema_type"),
        text: row.get("schema_text"),
        references,
    }
}

async fn references_of<'e, E>(executor: E, schema_id: i32) -> Result<Vec<Reference>, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    let rows = sqlx::query(
        "SELECT name, ref_subject, ref_version FROM schema_references \
         WHERE schema_id = $1 ORDER BY position",
    )
    .bind(schema_id)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .iter()
        .map(|row| Reference {
            name: row.get("name"),
            subject: row.get("ref_subject"),
            version: row.get("ref_version"),
        })
        .collect())
}

/// Every version row of a subject, deleted or not, ascending.
#[tracing::instrument(level = "debug", skip(executor), err(Display), fields(otel.kind = "client", otel.name = "SELECT subject_versions", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "subject_versions", code.function.name = "versions_of"))]
pub async fn versions_of<'e, E>(executor: E, subject: &str) -> Result<Vec<VersionRow>, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    let rows = sqlx::query(
        "SELECT version, schema_id, deleted FROM subject_versions WHERE subject = $1 ORDER BY version",
    )
    .bind(subject)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .iter()
        .map(|row| VersionRow {
            version: row.get("version"),
            schema_id: row.get("schema_id"),
            deleted: row.get("deleted"),
        })
        .collect())
}

/// Ensures the subject row exists and locks it for the rest of the transaction. This lock is
/// what serialises registrations and deletions within one subject across every replica.
#[tracing::instrument(level = "debug", skip(conn), err(Display), fields(otel.kind = "client", otel.name = "SELECT subjects", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "subjects", code.function.name = "lock_subject"))]
pub async fn lock_subject(
    conn: &mut PgConnection,
    subject: &str,
    create: bool,
) -> Result<bool, sqlx::Error> {
    if create {
        sqlx::query("INSERT INTO subjects (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
            .bind(subject)
            .execute(&mut *conn)
            .await?;
    }
    let locked: Option<String> =
        sqlx::query_scalar("SELECT name FROM subjects WHERE name = $1 FOR UPDATE")
            .bind(subject)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(locked.is_some())
}

/// Inserts a schema unless one with the same fingerprint exists, and returns the id either way.
/// Concurrent inserts of the same schema on several replicas all get the one id: the unique
/// fingerprint makes the later ones wait for the first and then find its row.
#[tracing::instrument(level = "debug", skip(conn, schema), err(Display), fields(otel.kind = "client", otel.name = "INSERT schemas", db.system.name = "postgresql", db.operation.name = "INSERT", db.collection.name = "schemas", code.function.name = "insert_schema"))]
pub async fn insert_schema(
    conn: &mut PgConnection,
    schema: &NewSchema<'_>,
) -> Result<(i32, bool), sqlx::Error> {
    let NewSchema {
        fingerprint,
        schema_type,
        text,
        references,
    } = *schema;
    let inserted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO schemas (id, fingerprint, schema_type, schema_text) \
         VALUES (nextval('schema_ids'), $1, $2, $3) \
         ON CONFLICT (fingerprint) DO NOTHING RETURNING id",
    )
    .bind(fingerprint)
    .bind(schema_type)
    .bind(text)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = inserted {
        insert_references(conn, id, references).await?;
        return Ok((id, true));
    }
    let id = sqlx::query_scalar("SELECT id FROM schemas WHERE fingerprint = $1")
        .bind(fingerprint)
        .fetch_one(&mut *conn)
        .await?;
    Ok((id, false))
}

/// IMPORT mode: inserts a schema under a caller-chosen id, and moves the id sequence past it so
/// later registry-assigned ids never collide with it.
#[tracing::instrument(level = "debug", skip(conn, schema), err(Display), fields(otel.kind = "client", otel.name = "INSERT schemas", db.system.name = "postgresql", db.operation.name = "INSERT", db.collection.name = "schemas", code.function.name = "insert_schema_with_id"))]
pub async fn insert_schema_with_id(
    conn: &mut PgConnection,
    id: i32,
    schema: &NewSchema<'_>,
) -> Result<(), sqlx::Error> {
    let NewSchema {
        fingerprint,
        schema_type,
        text,
        references,
    } = *schema;
    sqlx::query(
        "INSERT INTO schemas (id, fingerprint, schema_type, schema_text) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(fingerprint)
    .bind(schema_type)
    .bind(text)
    .execute(&mut *conn)
    .await?;
    insert_references(conn, id, references).await?;
    sqlx::query(
        "SELECT setval('schema_ids', $1) WHERE $1 > (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM schema_ids)",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_references(
    conn: &mut PgConnection,
    schema_id: i32,
    references: &[Reference],
) -> Result<(), sqlx::Error> {
    for (position, reference) in references.iter().enumerate() {
        sqlx::query(
            "INSERT INTO schema_references (schema_id, position, name, ref_subject, ref_version) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(schema_id)
        .bind(i32::try_from(position).unwrap_or(i32::MAX))
        .bind(&reference.name)
        .bind(&reference.subject)
        .bind(reference.version)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The ids of those of `fingerprints` that are stored, by fingerprint.
#[tracing::instrument(level = "debug", skip_all, err(Display), fields(otel.kind = "client", otel.name = "SELECT schemas", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "schemas", code.function.name = "schema_ids_by_fingerprints"))]
pub async fn schema_ids_by_fingerprints(
    conn: &mut PgConnection,
    fingerprints: &[Vec<u8>],
) -> Result<Vec<(Vec<u8>, i32)>, sqlx::Error> {
    if fingerprints.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as("SELECT fingerprint, id FROM schemas WHERE fingerprint = ANY($1)")
        .bind(fingerprints)
        .fetch_all(&mut *conn)
        .await
}

/// The version rows of `subject` a group of registrations needs, ascending: its newest row
/// (deleted or not: the next version follows it), its newest live row (what a non-transitive
/// level checks against), its live rows of the schemas `schema_ids` (already registered?), and
/// with `all`, every row (what a transitive level checks against). Unlike [`versions_of`], its
/// cost does not grow with the subject's versions unless `all`.
#[tracing::instrument(level = "debug", skip(conn, schema_ids), err(Display), fields(otel.kind = "client", otel.name = "SELECT subject_versions", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "subject_versions", code.function.name = "versions_for_registration"))]
pub async fn versions_for_registration(
    conn: &mut PgConnection,
    subject: &str,
    schema_ids: &[i32],
    all: bool,
) -> Result<Vec<VersionRow>, sqlx::Error> {
    let rows = sqlx::query(
        "(SELECT version, schema_id, deleted FROM subject_versions WHERE subject = $1 \
           ORDER BY version DESC LIMIT 1) \
         UNION \
         (SELECT version, schema_id, deleted FROM subject_versions WHERE subject = $1 AND NOT deleted \
           ORDER BY version DESC LIMIT 1) \
         UNION \
         SELECT version, schema_id, deleted FROM subject_versions \
           WHERE subject = $1 AND NOT deleted AND schema_id = ANY($2) \
         UNION \
         SELECT version, schema_id, deleted FROM subject_versions WHERE subject = $1 AND $3 \
         ORDER BY version",
    )
    .bind(subject)
    .bind(schema_ids)
    .bind(all)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| VersionRow {
            version: row.get("version"),
            schema_id: row.get("schema_id"),
            deleted: row.get("deleted"),
        })
        .collect())
}

/// Inserts those of `schemas` whose fingerprint is not stored yet, under new ids, with their
/// references, and returns the id of each of `schemas` (inserted now, or by a concurrent
/// transaction that won the fingerprint), by fingerprint. The fingerprints must be distinct.
/// Rows go in by fingerprint order, so two transactions inserting some of the same schemas
/// wait for each other in one order and never deadlock.
#[tracing::instrument(level = "debug", skip_all, err(Display), fields(otel.kind = "client", otel.name = "INSERT schemas", db.system.name = "postgresql", db.operation.name = "INSERT", db.collection.name = "schemas", code.function.name = "insert_schemas", count = schemas.len()))]
pub async fn insert_schemas(
    conn: &mut PgConnection,
    schemas: &[NewSchema<'_>],
) -> Result<Vec<(Vec<u8>, i32)>, sqlx::Error> {
    if schemas.is_empty() {
        return Ok(Vec::new());
    }
    let fingerprints: Vec<&[u8]> = schemas.iter().map(|s| s.fingerprint).collect();
    let types: Vec<&str> = schemas.iter().map(|s| s.schema_type).collect();
    let texts: Vec<&str> = schemas.iter().map(|s| s.text).collect();
    let mut ids: Vec<(Vec<u8>, i32)> = sqlx::query_as(
        "INSERT INTO schemas (id, fingerprint, schema_type, schema_text) \
         SELECT nextval('schema_ids'), f, t, x \
           FROM unnest($1::bytea[], $2::text[], $3::text[]) AS n(f, t, x) \
           ORDER BY f \
         ON CONFLICT (fingerprint) DO NOTHING RETURNING fingerprint, id",
    )
    .bind(&fingerprints)
    .bind(&types)
    .bind(&texts)
    .fetch_all(&mut *conn)
    .await?;
    for schema in schemas.iter().filter(|s| !s.references.is_empty()) {
        if let Some((_, id)) = ids.iter().find(|(f, _)| f.as_slice() == schema.fingerprint) {
            insert_references(conn, *id, schema.references).await?;
        }
    }
    if ids.len() < schemas.len() {
        let missing: Vec<Vec<u8>> = schemas
            .iter()
            .filter(|s| !ids.iter().any(|(f, _)| f.as_slice() == s.fingerprint))
            .map(|s| s.fingerprint.to_vec())
            .collect();
        ids.extend(schema_ids_by_fingerprints(conn, &missing).await?);
    }
    Ok(ids)
}

/// Inserts versions `(version, schema_id)` of `subject`.
#[tracing::instrument(level = "debug", skip(conn, versions), err(Display), fields(otel.kind = "client", otel.name = "INSERT subject_versions", db.system.name = "postgresql", db.operation.name = "INSERT", db.collection.name = "subject_versions", code.function.name = "insert_versions", count = versions.len()))]
pub async fn insert_versions(
    conn: &mut PgConnection,
    subject: &str,
    versions: &[(i32, i32)],
) -> Result<(), sqlx::Error> {
    if versions.is_empty() {
        return Ok(());
    }
    let numbers: Vec<i32> = versions.iter().map(|(version, _)| *version).collect();
    let ids: Vec<i32> = versions.iter().map(|(_, id)| *id).collect();
    sqlx::query(
        "INSERT INTO subject_versions (subject, version, schema_id) \
         SELECT $1, v, s FROM unnest($2::integer[], $3::integer[]) AS n(v, s)",
    )
    .bind(subject)
    .bind(&numbers)
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip(conn), err(Display), fields(otel.kind = "client", otel.name = "SELECT schemas", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "schemas", code.function.name = "schema_row_for_id"))]
pub async fn schema_row_for_id(
    conn: &mut PgConnection,
    id: i32,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT fingerprint FROM schemas WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
}

#[tracing::instrument(level = "debug", skip(conn), err(Display), fields(otel.kind = "client", otel.name = "INSERT subject_versions", db.system.name = "postgresql", db.operation.name = "INSERT", db.collection.name = "subject_versions", code.function.name = "insert_version"))]
pub async fn insert_version(
    conn: &mut PgConnection,
    subject: &str,
    version: i32,
    schema_id: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO subject_versions (subject, version, schema_id) VALUES ($1, $2, $3)")
        .bind(subject)
        .bind(version)
        .bind(schema_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip(conn), err(Display), fields(otel.kind = "client", otel.name = "UPDATE subject_versions", db.system.name = "postgresql", db.operation.name = "UPDATE", db.collection.name = "subject_versions", code.function.name = "soft_delete_versions"))]
pub async fn soft_delete_versions(
    conn: &mut PgConnection,
    subject: &str,
    versions: &[i32],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE subject_versions SET deleted = true WHERE subject = $1 AND version = ANY($2)",
    )
    .bind(subject)
    .bind(versions)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip(conn), err(Display), fields(otel.kind = "client", otel.name = "DELETE subject_versions", db.system.name = "postgresql", db.operation.name = "DELETE", db.collection.name = "subject_versions", code.function.name = "hard_delete_versions"))]
pub async fn hard_delete_versions(
    conn: &mut PgConnection,
    subject: &str,
    versions: &[i32],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM subject_versions WHERE subject = $1 AND version = ANY($2)")
        .bind(subject)
        .bind(versions)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Ids of the schemas that reference `subject` `version`: only those used by a live subject
/// version when `live_only`, else by any version row (soft-deleted ones included).
#[tracing::instrument(level = "debug", skip(executor), err(Display), fields(otel.kind = "client", otel.name = "SELECT schema_references", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "schema_references", code.function.name = "referenced_by"))]
pub async fn referenced_by<'e, E>(
    executor: E,
    subject: &str,
    version: i32,
    live_only: bool,
) -> Result<Vec<i32>, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    sqlx::query_scalar(
        "SELECT DISTINCT r.schema_id FROM schema_references r \
         JOIN subject_versions v ON v.schema_id = r.schema_id \
         WHERE r.ref_subject = $1 AND r.ref_version = $2 AND (NOT $3 OR NOT v.deleted) \
         ORDER BY r.schema_id",
    )
    .bind(subject)
    .bind(version)
    .bind(live_only)
    .fetch_all(executor)
    .await
}

#[tracing::instrument(level = "debug", skip(pool), err(Display), fields(otel.kind = "client", otel.name = "SELECT subject_versions", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "subject_versions", code.function.name = "usages_of"))]
pub async fn usages_of(
    pool: &PgPool,
    schema_id: i32,
    include_deleted: bool,
) -> Result<Vec<(String, i32)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT subject, version FROM subject_versions WHERE schema_id = $1 AND ($2 OR NOT deleted) \
         ORDER BY subject, version",
    )
    .bind(schema_id)
    .bind(include_deleted)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get("subject"), row.get("version")))
        .collect())
}

/// Which subjects a listing returns, by the state of their versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectFilter {
    /// Subjects with at least one live version.
    Live,
    /// Subjects with any version row.
    All,
    /// Subjects whose versions are all soft-deleted.
    DeletedOnly,
}

#[tracing::instrument(level = "debug", skip(pool), err(Display), fields(otel.kind = "client", otel.name = "SELECT subject_versions", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "subject_versions", code.function.name = "list_subjects"))]
pub async fn list_subjects(
    pool: &PgPool,
    prefix: &str,
    filter: SubjectFilter,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let filter = match filter {
        SubjectFilter::Live => "live",
        SubjectFilter::All => "all",
        SubjectFilter::DeletedOnly => "deleted",
    };
    sqlx::query_scalar(
        "SELECT subject FROM subject_versions WHERE starts_with(subject, $1) AND subject > $2 \
         GROUP BY subject \
         HAVING CASE $4 WHEN 'live' THEN bool_or(NOT deleted) WHEN 'deleted' THEN bool_and(deleted) ELSE true END \
         ORDER BY subject LIMIT $3",
    )
        .bind(prefix)
        .bind(after)
        .bind(limit)
        .bind(filter)
        .fetch_all(pool)
        .await
}

/// Subjects in lexicographic order, skipping `offset` of them and returning at most `limit`
/// (every one when `None`): the offset paging of Confluent's `GET /subjects`.
#[tracing::instrument(level = "debug", skip(pool), err(Display), fields(otel.kind = "client", otel.name = "SELECT subject_versions", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "subject_versions", code.function.name = "list_subjects_at"))]
pub async fn list_subjects_at(
    pool: &PgPool,
    prefix: &str,
    filter: SubjectFilter,
    offset: i64,
    limit: Option<i64>,
) -> Result<Vec<String>, sqlx::Error> {
    let filter = match filter {
        SubjectFilter::Live => "live",
        SubjectFilter::All => "all",
        SubjectFilter::DeletedOnly => "deleted",
    };
    sqlx::query_scalar(
        "SELECT subject FROM subject_versions WHERE starts_with(subject, $1) \
         GROUP BY subject \
         HAVING CASE $4 WHEN 'live' THEN bool_or(NOT deleted) WHEN 'deleted' THEN bool_and(deleted) ELSE true END \
         ORDER BY subject OFFSET $2 LIMIT $3",
    )
    .bind(prefix)
    .bind(offset)
    .bind(limit)
    .bind(filter)
    .fetch_all(pool)
    .await
}

/// Version rows of every subject starting with `prefix`, ordered by subject then version (live
/// ones only unless `include_deleted`; only each subject's newest one when `latest_only`),
/// skipping `offset` rows and returning at most `limit` (all when `None`).
#[tracing::instrument(level = "debug", skip(pool), err(Display), fields(otel.kind = "client", otel.name = "SELECT subject_versions", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "subject_versions", code.function.name = "list_subject_versions"))]
pub async fn list_subject_versions(
    pool: &PgPool,
    prefix: &str,
    include_deleted: bool,
    latest_only: bool,
    offset: i64,
    limit: Option<i64>,
) -> Result<Vec<(String, VersionRow)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT subject, version, schema_id, deleted FROM ( \
           SELECT subject, version, schema_id, deleted, \
                  row_number() OVER (PARTITION BY subject ORDER BY version DESC) AS newest \
           FROM subject_versions WHERE starts_with(subject, $1) AND ($2 OR NOT deleted) \
         ) visible WHERE NOT $3 OR newest = 1 \
         ORDER BY subject, version OFFSET $4 LIMIT $5",
    )
    .bind(prefix)
    .bind(include_deleted)
    .bind(latest_only)
    .bind(offset)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                row.get("subject"),
                VersionRow {
                    version: row.get("version"),
                    schema_id: row.get("schema_id"),
                    deleted: row.get("deleted"),
                },
            )
        })
        .collect())
}

/// The largest schema id in use; 0 when there is none.
#[tracing::instrument(level = "debug", skip(pool), err(Display), fields(otel.kind = "client", otel.name = "SELECT schemas", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "schemas", code.function.name = "max_schema_id"))]
pub async fn max_schema_id(pool: &PgPool) -> Result<i32, sqlx::Error> {
    let id: Option<i32> = sqlx::query_scalar("SELECT max(id) FROM schemas")
        .fetch_one(pool)
        .await?;
    Ok(id.unwrap_or(0))
}

#[tracing::instrument(level = "debug", skip(pool), err(Display), fields(otel.kind = "client", otel.name = "SELECT configs", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "configs", code.function.name = "configs"))]
pub async fn configs(pool: &PgPool) -> Result<Vec<(String, ConfigRow)>, sqlx::Error> {
    let rows = sqlx::query("SELECT subject, compatibility, mode FROM configs")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                row.get("subject"),
                ConfigRow {
                    compatibility: row.get("compatibility"),
                    mode: row.get("mode"),
                },
            )
        })
        .collect())
}

/// A per-subject setting in the `configs` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigField {
    Compatibility,
    Mode,
}

/// Sets (or with `None`, clears) one setting of `subject` ('' = global).
#[tracing::instrument(level = "debug", skip(conn), err(Display), fields(otel.kind = "client", otel.name = "INSERT configs", db.system.name = "postgresql", db.operation.name = "INSERT", db.collection.name = "configs", code.function.name = "set_config"))]
pub async fn set_config(
    conn: &mut PgConnection,
    field: ConfigField,
    subject: &str,
    value: Option<&str>,
) -> Result<(), sqlx::Error> {
    let sql = match field {
        ConfigField::Compatibility => {
            "INSERT INTO configs (subject, compatibility) VALUES ($1, $2) \
             ON CONFLICT (subject) DO UPDATE SET compatibility = EXCLUDED.compatibility"
        }
        ConfigField::Mode => {
            "INSERT INTO configs (subject, mode) VALUES ($1, $2) \
             ON CONFLICT (subject) DO UPDATE SET mode = EXCLUDED.mode"
        }
    };
    sqlx::query(sql)
        .bind(subject)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Locks one config row (creating it empty if needed), so read-modify-write of a config is atomic.
#[tracing::instrument(level = "debug", skip(conn), err(Display), fields(otel.kind = "client", otel.name = "SELECT configs", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "configs", code.function.name = "lock_config"))]
pub async fn lock_config(conn: &mut PgConnection, subject: &str) -> Result<ConfigRow, sqlx::Error> {
    sqlx::query("INSERT INTO configs (subject) VALUES ($1) ON CONFLICT (subject) DO NOTHING")
        .bind(subject)
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query("SELECT compatibility, mode FROM configs WHERE subject = $1 FOR UPDATE")
        .bind(subject)
        .fetch_one(&mut *conn)
        .await?;
    Ok(ConfigRow {
        compatibility: row.get("compatibility"),
        mode: row.get("mode"),
    })
}

/// Whether any subject (or, with `Some`, that subject) holds a version row.
#[tracing::instrument(level = "debug", skip(conn), err(Display), fields(otel.kind = "client", otel.name = "SELECT subject_versions", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "subject_versions", code.function.name = "has_versions"))]
pub async fn has_versions(
    conn: &mut PgConnection,
    subject: Option<&str>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM subject_versions WHERE $1::text IS NULL OR subject = $1)",
    )
    .bind(subject)
    .fetch_one(&mut *conn)
    .await
}

/// Announces a change to every replica; delivered when (and only if) the transaction commits.
#[tracing::instrument(level = "debug", skip(conn, payload), err(Display), fields(otel.kind = "client", otel.name = "NOTIFY", db.system.name = "postgresql", db.operation.name = "NOTIFY", code.function.name = "notify"))]
pub async fn notify(conn: &mut PgConnection, payload: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(EVENTS_CHANNEL)
        .bind(payload)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Announces several changes, in order, in one statement (see [`notify`]).
#[tracing::instrument(level = "debug", skip_all, err(Display), fields(otel.kind = "client", otel.name = "NOTIFY", db.system.name = "postgresql", db.operation.name = "NOTIFY", code.function.name = "notify_all", count = payloads.len()))]
pub async fn notify_all(conn: &mut PgConnection, payloads: &[String]) -> Result<(), sqlx::Error> {
    if payloads.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS n(p, i) ORDER BY i",
    )
    .bind(EVENTS_CHANNEL)
    .bind(payloads)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The number of schema ids and of subjects with a live version, for the registry's gauges.
#[tracing::instrument(level = "debug", skip(pool), err(Display), fields(otel.kind = "client", otel.name = "SELECT schemas", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "schemas", code.function.name = "counts"))]
pub async fn counts(pool: &PgPool) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM schemas), \
                (SELECT count(DISTINCT subject) FROM subject_versions WHERE NOT deleted)",
    )
    .fetch_one(pool)
    .await
}

/// A cheap round trip, for health checks.
pub async fn ping<'e, E>(executor: E) -> Result<(), sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    sqlx::query("SELECT 1").execute(executor).await?;
    Ok(())
}

/// The id of the schema with a fingerprint, if any.
#[tracing::instrument(level = "debug", skip(executor, fingerprint), err(Display), fields(otel.kind = "client", otel.name = "SELECT schemas", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "schemas", code.function.name = "schema_id_by_fingerprint"))]
pub async fn schema_id_by_fingerprint<'e, E>(
    executor: E,
    fingerprint: &[u8],
) -> Result<Option<i32>, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    sqlx::query_scalar("SELECT id FROM schemas WHERE fingerprint = $1")
        .bind(fingerprint)
        .fetch_optional(executor)
        .await
}
