//! Writes: registrations (grouped per subject, see [`super::batch`]; IMPORT-mode ones one by
//! one) and deletes, each one transaction whose change event is a NOTIFY inside it.

use std::sync::Arc;

use sqlx::PgConnection;

use super::batch;
use super::{
    MAX_REGISTRATION_ATTEMPTS, RegisterRequest, Registered, Registry, Result, explicit_ids,
    is_retryable, stored_text, validate_subject,
};
use crate::error::RegistryError;
use crate::events::Event;
use crate::model::{Mode, Reference, VersionRow, VersionSelector};
use crate::schema_type::SchemaType;
use crate::store::{self, ConfigField};

impl Registry {
    /// Registers a schema under a subject (see the module doc for the guarantees). The
    /// registrations of a subject that arrive together are written together, in one
    /// transaction (see [`batch`]); IMPORT-mode ones, which name their id, one by one.
    #[tracing::instrument(level = "debug", skip(self, request), fields(subject = %request.subject, normalize = request.normalize))]
    pub async fn register(self: &Arc<Self>, request: RegisterRequest) -> Result<Registered> {
        validate_subject(&request.subject)?;
        let mode = self.effective_mode(&request.subject).await?;
        let (explicit_id, explicit_version) = explicit_ids(&request, mode)?;

        // Already a live version of the subject: answer without writing anything.
        let (fingerprint, parsed) = self
            .submitted_fingerprint(
                &request.schema,
                &request.schema_type,
                &request.references,
                request.normalize,
            )
            .await?;
        if let Some(registered) = self
            .live_registration(
                &request.subject,
                &fingerprint,
                explicit_id,
                explicit_version,
            )
            .await?
        {
            return Ok(registered);
        }

        let candidate = match parsed {
            Some(candidate) => candidate,
            None => {
                self.prepare(&request.schema, &request.schema_type, &request.references)
                    .await?
            }
        };
        let text = stored_text(&candidate.parsed, request.normalize);

        if mode != Mode::Import {
            let pending = batch::Pending {
                schema_type: candidate.parsed.schema_type(),
                text,
                fingerprint,
                references: candidate.references,
                parsed: candidate.parsed,
                span: tracing::Span::current(),
            };
            return self.register_grouped(&request.subject, pending).await;
        }

        let write = NewVersion {
            subject: &request.subject,
            schema_type: candidate.parsed.schema_type(),
            text: &text,
            fingerprint: &fingerprint,
            references: &candidate.references,
            explicit_id,
            explicit_version,
        };
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let last_attempt = attempt >= MAX_REGISTRATION_ATTEMPTS;
            let outcome = self.import_in_transaction(&write).await;
            self.invalidate_subject(&request.subject);
            match outcome {
                Err(RegistryError::Store(error)) if !last_attempt && is_retryable(&error) => {
                    tracing::debug!(attempt, error = %error, "retrying registration after a conflict");
                }
                outcome => return outcome,
            }
        }
    }

    /// Writes an IMPORT-mode registration (no compatibility check: IMPORT mode has none),
    /// under its subject's row lock.
    async fn import_in_transaction(&self, write: &NewVersion<'_>) -> Result<Registered> {
        let subject = write.subject;
        let mut tx = self.db()?.begin().await?;
        store::lock_subject(&mut tx, subject, true).await?;
        let versions = store::versions_of(&mut *tx, subject).await?;
        let existing_id = store::schema_id_by_fingerprint(&mut *tx, write.fingerprint).await?;
        if let Some(id) = existing_id
            && let Some(row) = versions
                .iter()
                .rev()
                .find(|row| !row.deleted && row.schema_id == id)
        {
            if write.explicit_id.is_some_and(|wanted| wanted != id) {
                return Err(RegistryError::IdConflict {
                    id: write.explicit_id.unwrap_or(id),
                    registered: Some(id),
                });
            }
            tx.rollback().await?;
            return Ok(Registered {
                id,
                version: row.version,
                schema: write.text.to_owned(),
                created: false,
            });
        }

        let id = match (write.explicit_id, existing_id) {
            (Some(wanted), Some(existing)) if wanted != existing => {
                return Err(RegistryError::IdConflict {
                    id: wanted,
                    registered: Some(existing),
                });
            }
            (Some(wanted), None) => {
                if let Some(other) = store::schema_row_for_id(&mut tx, wanted).await? {
                    debug_assert_ne!(other, write.fingerprint);
                    return Err(RegistryError::IdConflict {
                        id: wanted,
                        registered: None,
                    });
                }
                store::insert_schema_with_id(&mut tx, wanted, &write.new_schema()).await?;
                wanted
            }
            (_, Some(existing)) => existing,
            (None, None) => store::insert_schema(&mut tx, &write.new_schema()).await?.0,
        };

        let version = match write.explicit_version {
            Some(wanted) => {
                if versions.iter().any(|row| row.version == wanted) {
                    return Err(RegistryError::OperationNotPermitted {
                        reason: format!(
                            "version {wanted} of subject '{subject}' already exists with another schema"
                        ),
                    });
                }
                wanted
            }
            None => {
                match versions.last() {
                    None => 1,
                    Some(last) => last.version.checked_add(1).ok_or_else(|| {
                        RegistryError::VersionsExhausted {
                            subject: subject.to_owned(),
                            max: last.version,
                        }
                    })?,
                }
            }
        };
        store::insert_version(&mut tx, subject, version, id).await?;
        let event = Event::SchemaRegistered {
            subject: subject.to_owned(),
            version,
            id,
        };
        store::notify(&mut tx, &event.to_payload()).await?;
        tx.commit().await?;
        tracing::info!(subject, version, id, "schema registered");
        Ok(Registered {
            id,
            version,
            schema: write.text.to_owned(),
            created: true,
        })
    }

    /// Soft or permanent delete of one version; returns its number.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn delete_version(
        &self,
        subject: &str,
        selector: VersionSelector,
        permanent: bool,
    ) -> Result<i32> {
        validate_subject(subject)?;
        self.ensure_writable(subject).await?;
        let mut tx = self.db()?.begin().await?;
        let versions = locked_versions(&mut tx, subject).await?;
        let row = match selector {
            VersionSelector::Latest => versions.iter().rev().find(|row| !row.deleted),
            VersionSelector::Number(number) => versions.iter().find(|row| row.version == number),
        };
        let Some(row) = row.copied() else {
            // As Confluent: 40401 only for a subject without versions (soft-deleted ones count).
            if versions.is_empty() {
                return Err(RegistryError::SubjectNotFound {
                    subject: subject.to_owned(),
                });
            }
            let version = if let VersionSelector::Number(number) = selector {
                number
            } else {
                -1
            };
            return Err(RegistryError::VersionNotFound {
                subject: subject.to_owned(),
                version,
            });
        };
        let version = row.version;
        if permanent {
            if !row.deleted {
                return Err(RegistryError::VersionNotSoftDeleted {
                    subject: subject.to_owned(),
                    version,
                });
            }
        } else if row.deleted {
            return Err(RegistryError::VersionSoftDeleted {
                subject: subject.to_owned(),
                version,
            });
        }
        let referenced_by = store::referenced_by(&mut *tx, subject, version, !permanent).await?;
        if !referenced_by.is_empty() {
            return Err(RegistryError::ReferenceExists {
                subject: subject.to_owned(),
                version,
                referenced_by,
            });
        }
        if permanent {
            store::hard_delete_versions(&mut tx, subject, &[version]).await?;
        } else {
            store::soft_delete_versions(&mut tx, subject, &[version]).await?;
        }
        let event = Event::VersionDeleted {
            subject: subject.to_owned(),
            version,
            permanent,
        };
        store::notify(&mut tx, &event.to_payload()).await?;
        tx.commit().await?;
        self.invalidate_subject(subject);
        Ok(version)
    }

    /// Soft or permanent delete of a whole subject; returns the versions deleted.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Vec<i32>> {
        validate_subject(subject)?;
        self.ensure_writable(subject).await?;
        let mut tx = self.db()?.begin().await?;
        let versions = locked_versions(&mut tx, subject).await?;
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound {
                subject: subject.to_owned(),
            });
        }
        let live: Vec<i32> = versions
            .iter()
            .filter(|row| !row.deleted)
            .map(|row| row.version)
            .collect();
        let targets: Vec<i32> = if permanent {
            if !live.is_empty() {
                return Err(RegistryError::SubjectNotSoftDeleted {
                    subject: subject.to_owned(),
                });
            }
            versions.iter().map(|row| row.version).collect()
        } else {
            if live.is_empty() {
                return Err(RegistryError::SubjectSoftDeleted {
                    subject: subject.to_owned(),
                });
            }
            live
        };
        for version in &targets {
            let referenced_by =
                store::referenced_by(&mut *tx, subject, *version, !permanent).await?;
            if !referenced_by.is_empty() {
                return Err(RegistryError::ReferenceExists {
                    subject: subject.to_owned(),
                    version: *version,
                    referenced_by,
                });
            }
        }
        if permanent {
            store::hard_delete_versions(&mut tx, subject, &targets).await?;
            store::set_config(&mut tx, ConfigField::Compatibility, subject, None).await?;
            store::set_config(&mut tx, ConfigField::Mode, subject, None).await?;
        } else {
            store::soft_delete_versions(&mut tx, subject, &targets).await?;
        }
        for version in &targets {
            let event = Event::VersionDeleted {
                subject: subject.to_owned(),
                version: *version,
                permanent,
            };
            store::notify(&mut tx, &event.to_payload()).await?;
        }
        tx.commit().await?;
        self.invalidate_subject(subject);
        if permanent {
            self.invalidate_configs();
        }
        Ok(targets)
    }

    async fn ensure_writable(&self, subject: &str) -> Result<()> {
        if self.effective_mode(subject).await? == Mode::ReadOnly {
            return Err(RegistryError::OperationNotPermitted {
                reason: format!("Subject {subject} is in read-only mode"),
            });
        }
        Ok(())
    }

    /// The version of `subject` a registration with this fingerprint already is, if any: live,
    /// and matching the id and version an IMPORT asks for.
    async fn live_registration(
        &self,
        subject: &str,
        fingerprint: &[u8],
        explicit_id: Option<i32>,
        explicit_version: Option<i32>,
    ) -> Result<Option<Registered>> {
        let Some(id) = self.id_for_fingerprint(fingerprint).await? else {
            return Ok(None);
        };
        let versions = self.versions_of(subject).await?;
        let Some(row) = versions
            .iter()
            .rev()
            .find(|row| !row.deleted && row.schema_id == id)
            .filter(|row| {
                explicit_id.is_none_or(|wanted| wanted == id)
                    && explicit_version.is_none_or(|wanted| wanted == row.version)
            })
        else {
            return Ok(None);
        };
        // The stored text is the submitted one's canonical (or normalized) form: the
        // fingerprint is a digest of exactly that text.
        let stored = self.schema_by_id(id).await?;
        Ok(Some(Registered {
            id,
            version: row.version,
            schema: stored.text.clone(),
            created: false,
        }))
    }
}

/// An IMPORT-mode registration, validated and parsed, about to be written.
struct NewVersion<'a> {
    subject: &'a str,
    schema_type: SchemaType,
    text: &'a str,
    fingerprint: &'a [u8],
    references: &'a [Reference],
    explicit_id: Option<i32>,
    explicit_version: Option<i32>,
}

impl NewVersion<'_> {
    fn new_schema(&self) -> store::NewSchema<'_> {
        store::NewSchema {
            fingerprint: self.fingerprint,
            schema_type: self.schema_type.as_str(),
            text: self.text,
            references: self.references,
        }
    }
}

/// Locks an existing subject's row in `tx` (40401 when the subject has none) and reads its
/// version rows, soft-deleted ones included.
async fn locked_versions(tx: &mut PgConnection, subject: &str) -> Result<Vec<VersionRow>> {
    if !store::lock_subject(tx, subject, false).await? {
        return Err(RegistryError::SubjectNotFound {
            subject: subject.to_owned(),
        });
    }
    Ok(store::versions_of(&mut *tx, subject).await?)
}
