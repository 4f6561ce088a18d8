//! Reads: versions, subjects and schemas listed and looked up, and compatibility checks of a
//! candidate (which write nothing).

use std::sync::Arc;

use tributary_avro::compat::CompatibilityLevel;

use super::{MAX_PAGE_SIZE, Registry, Result, validate_subject};
use crate::compatibility::{Checkers, CompatibilityReport, Issues};
use crate::error::RegistryError;
use crate::model::{Reference, StoredSchema, SubjectVersion, VersionRow, VersionSelector};
use crate::schema_type::{Origin, ParsedSchema, SchemaType};
use crate::store::{self, SubjectFilter};

impl Registry {
    /// One version of a subject. A subject with no version rows, or only soft-deleted ones when
    /// `include_deleted` is false, is "not found" (40401).
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn find_version(
        &self,
        subject: &str,
        selector: VersionSelector,
        include_deleted: bool,
    ) -> Result<SubjectVersion> {
        validate_subject(subject)?;
        let versions = self.versions_of(subject).await?;
        let visible = |row: &&VersionRow| include_deleted || !row.deleted;
        if !versions.iter().any(|row| visible(&row)) {
            return Err(RegistryError::SubjectNotFound {
                subject: subject.to_owned(),
            });
        }
        let row = match selector {
            VersionSelector::Latest => versions
                .iter()
                .rev()
                .find(|row| !row.deleted)
                .or(versions.last()),
            VersionSelector::Number(number) => versions.iter().find(|row| row.version == number),
        }
        .filter(|row| visible(row))
        .copied();
        let Some(row) = row else {
            let version = match selector {
                VersionSelector::Number(number) => number,
                VersionSelector::Latest => -1,
            };
            return Err(RegistryError::VersionNotFound {
                subject: subject.to_owned(),
                version,
            });
        };
        let schema = self.schema_by_id(row.schema_id).await?;
        Ok(SubjectVersion {
            subject: subject.to_owned(),
            version: row.version,
            id: row.schema_id,
            schema,
            deleted: row.deleted,
        })
    }

    /// Version numbers of a subject, ascending.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn list_versions(&self, subject: &str, include_deleted: bool) -> Result<Vec<i32>> {
        validate_subject(subject)?;
        let versions: Vec<i32> = self
            .versions_of(subject)
            .await?
            .iter()
            .filter(|row| include_deleted || !row.deleted)
            .map(|row| row.version)
            .collect();
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound {
                subject: subject.to_owned(),
            });
        }
        Ok(versions)
    }

    /// Subjects in lexicographic order, after `after`, at most `limit`.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn list_subjects(
        &self,
        prefix: &str,
        filter: SubjectFilter,
        after: &str,
        limit: i32,
    ) -> Result<Vec<String>> {
        if prefix.contains('\0') {
            // No subject holds a NUL (and Postgres text cannot): nothing starts with it.
            return Ok(Vec::new());
        }
        let limit = if limit <= 0 {
            MAX_PAGE_SIZE
        } else {
            limit.min(MAX_PAGE_SIZE)
        };
        Ok(store::list_subjects(self.db()?, prefix, filter, after, i64::from(limit)).await?)
    }

    /// Subjects in lexicographic order, skipping `offset` and returning at most `limit` (all when
    /// `None`): offset paging, as Confluent's `GET /subjects` does it.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn list_subjects_at(
        &self,
        prefix: &str,
        filter: SubjectFilter,
        offset: i64,
        limit: Option<i64>,
    ) -> Result<Vec<String>> {
        if prefix.contains('\0') {
            // No subject holds a NUL (and Postgres text cannot): nothing starts with it.
            return Ok(Vec::new());
        }
        Ok(store::list_subjects_at(
            self.db()?,
            prefix,
            filter,
            offset.max(0),
            limit.filter(|limit| *limit >= 0),
        )
        .await?)
    }

    /// Subject versions with their schemas, ordered by subject then version: every live version
    /// (soft-deleted ones too with `include_deleted`), or only each subject's newest with
    /// `latest_only`; skipping `offset` and returning at most `limit` (all when `None`).
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn list_schemas(
        &self,
        prefix: &str,
        include_deleted: bool,
        latest_only: bool,
        offset: i64,
        limit: Option<i64>,
    ) -> Result<Vec<SubjectVersion>> {
        if prefix.contains('\0') {
            // No subject holds a NUL (and Postgres text cannot): nothing starts with it.
            return Ok(Vec::new());
        }
        let rows = store::list_subject_versions(
            self.db()?,
            prefix,
            include_deleted,
            latest_only,
            offset.max(0),
            limit.filter(|limit| *limit >= 0),
        )
        .await?;
        let mut found = Vec::with_capacity(rows.len());
        for (subject, row) in rows {
            let schema = self.schema_by_id(row.schema_id).await?;
            found.push(SubjectVersion {
                subject,
                version: row.version,
                id: row.schema_id,
                schema,
                deleted: row.deleted,
            });
        }
        Ok(found)
    }

    /// The largest schema id in use (0 when none), as Confluent's `fetchMaxId` reports it.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn max_schema_id(&self) -> Result<i32> {
        Ok(store::max_schema_id(self.db()?).await?)
    }

    /// A stored schema in a `format` other than `default` (see [`SchemaType::formats`]; for
    /// Avro, `resolved` inlines the types it takes from references, as Confluent's
    /// `format=resolved`, and is the stored text when it has none); `None` when its type has no
    /// such format.
    pub async fn formatted_text(
        &self,
        stored: &StoredSchema,
        format: &str,
    ) -> Result<Option<String>> {
        if stored.schema_type == SchemaType::Avro
            && format.eq_ignore_ascii_case("resolved")
            && stored.references.is_empty()
        {
            return Ok(Some(stored.text.clone()));
        }
        Ok(self.parsed(stored).await?.formatted(format))
    }

    /// The subject versions that use a schema.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn schema_usages(
        &self,
        id: i32,
        include_deleted: bool,
    ) -> Result<Vec<(String, i32)>> {
        self.schema_by_id(id).await?;
        Ok(store::usages_of(self.db()?, id, include_deleted).await?)
    }

    /// Ids of the schemas, in live versions, that reference a subject version.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn referenced_by(
        &self,
        subject: &str,
        selector: VersionSelector,
    ) -> Result<Vec<i32>> {
        // As Confluent, a soft-deleted version answers too (404 only for what never was).
        let version = self.find_version(subject, selector, true).await?;
        Ok(store::referenced_by(self.db()?, subject, version.version, true).await?)
    }

    /// Whether a schema is registered under a subject, and as which version (the latest match).
    #[tracing::instrument(level = "debug", skip(self, schema, references))]
    pub async fn lookup(
        &self,
        subject: &str,
        schema: &str,
        schema_type: &str,
        references: &[Reference],
        normalize: bool,
        include_deleted: bool,
    ) -> Result<SubjectVersion> {
        validate_subject(subject)?;
        let versions = self.versions_of(subject).await?;
        if !versions.iter().any(|row| include_deleted || !row.deleted) {
            return Err(RegistryError::SubjectNotFound {
                subject: subject.to_owned(),
            });
        }
        for normalized in [false, true]
            .into_iter()
            .take(if normalize { 2 } else { 1 })
        {
            let (fingerprint, _) = self
                .submitted_fingerprint(schema, schema_type, references, normalized)
                .await?;
            let Some(id) = self.id_for_fingerprint(&fingerprint).await? else {
                continue;
            };
            if let Some(row) = versions
                .iter()
                .rev()
                .find(|row| row.schema_id == id && (include_deleted || !row.deleted))
            {
                let schema = self.schema_by_id(id).await?;
                return Ok(SubjectVersion {
                    subject: subject.to_owned(),
                    version: row.version,
                    id,
                    schema,
                    deleted: row.deleted,
                });
            }
        }
        Err(RegistryError::SchemaNotRegistered {
            subject: subject.to_owned(),
        })
    }

    // ----- compatibility ------------------------------------------------------------------

    /// Tests a candidate against one version (`Some`) or against the versions the subject's level
    /// names (`None`), returning every reason it is incompatible.
    #[tracing::instrument(level = "debug", skip(self, schema, references))]
    pub async fn check_compatibility(
        &self,
        subject: &str,
        schema: &str,
        schema_type: &str,
        references: &[Reference],
        version: Option<VersionSelector>,
        normalize: bool,
    ) -> Result<CompatibilityReport> {
        validate_subject(subject)?;
        let candidate = self.prepare(schema, schema_type, references).await?;
        let level = self.effective_level(subject).await?;
        let against: Vec<VersionRow> = match version {
            // As Confluent: "latest" of a subject with no live version is nothing to break.
            Some(VersionSelector::Latest)
                if !self
                    .versions_of(subject)
                    .await?
                    .iter()
                    .any(|row| !row.deleted) =>
            {
                Vec::new()
            }
            Some(selector) => {
                // As Confluent: a missing version is 40402 even when the subject has none.
                let found = self
                    .find_version(subject, selector, false)
                    .await
                    .map_err(|error| match (error, selector) {
                        (
                            RegistryError::SubjectNotFound { subject },
                            VersionSelector::Number(version),
                        ) => RegistryError::VersionNotFound { subject, version },
                        (error, _) => error,
                    })?;
                vec![VersionRow {
                    version: found.version,
                    schema_id: found.id,
                    deleted: false,
                }]
            }
            None => versions_to_check(level, &self.versions_of(subject).await?),
        };
        let candidate_schema = if normalize {
            // The normalized form of a candidate already accepted: read as the registry reads
            // what it made itself.
            let limits = self.settings.limits.for_stored();
            let text = candidate.parsed.stored_text(true);
            let texts = self.reference_texts(&candidate.references, &limits).await?;
            Arc::new(ParsedSchema::parse(
                candidate.parsed.schema_type(),
                &text,
                &texts,
                &limits,
                Origin::Submitted,
            )?)
        } else {
            Arc::clone(&candidate.parsed)
        };
        let issues = self
            .compatibility_issues(level, &candidate_schema, &against)
            .await?;
        Ok(issues.into_report(level))
    }

    /// The reasons `candidate` is incompatible with the versions `against` at `level`: one
    /// [`compat::Checker`] for them all, so that the work budget covers the whole check.
    async fn compatibility_issues(
        &self,
        level: CompatibilityLevel,
        candidate: &ParsedSchema,
        against: &[VersionRow],
    ) -> Result<Issues> {
        if level == CompatibilityLevel::None {
            return Ok(Issues::default());
        }
        let mut checkers = Checkers::new(&self.settings.limits);
        let mut issues = Issues::default();
        for row in against {
            let existing = self
                .parsed(&*self.schema_by_id(row.schema_id).await?)
                .await?;
            issues.check(&mut checkers, level, candidate, row.version, &existing)?;
        }
        Ok(issues)
    }
}

/// The live versions a level tests a candidate against: the latest, or all for *_TRANSITIVE.
fn versions_to_check(level: CompatibilityLevel, versions: &[VersionRow]) -> Vec<VersionRow> {
    let live = versions.iter().filter(|row| !row.deleted).copied();
    if level.is_transitive() {
        live.collect()
    } else {
        live.last().into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: i32, deleted: bool) -> VersionRow {
        VersionRow {
            version,
            schema_id: version.saturating_mul(10),
            deleted,
        }
    }

    #[test]
    fn non_transitive_levels_test_only_the_latest_live_version() {
        let versions = [row(1, false), row(2, false), row(3, true)];
        let picked = versions_to_check(CompatibilityLevel::Backward, &versions);
        assert_eq!(picked, vec![row(2, false)]);
        let picked = versions_to_check(CompatibilityLevel::FullTransitive, &versions);
        assert_eq!(picked, vec![row(1, false), row(2, false)]);
    }
}
