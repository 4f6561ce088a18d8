//! Compatibility levels and modes, of a subject or of the whole registry ('' is global).

use tributary_avro::compat::CompatibilityLevel;

use sqlx::{Postgres, Transaction};

use super::{Registry, Result, validate_subject};
use crate::error::RegistryError;
use crate::events::Event;
use crate::model::Mode;
use crate::store::{self, ConfigField};

impl Registry {
    /// The compatibility level in force for a subject ('' = global).
    pub async fn effective_level(&self, subject: &str) -> Result<CompatibilityLevel> {
        let configs = self.config_snapshot().await?;
        let level = [subject, ""]
            .iter()
            .find_map(|scope| configs.get(*scope).and_then(|c| c.compatibility.as_deref()))
            .and_then(CompatibilityLevel::parse)
            .unwrap_or(CompatibilityLevel::Backward);
        Ok(level)
    }

    /// The mode in force for a subject ('' = global).
    pub async fn effective_mode(&self, subject: &str) -> Result<Mode> {
        let configs = self.config_snapshot().await?;
        let mode = [subject, ""]
            .iter()
            .find_map(|scope| configs.get(*scope).and_then(|c| c.mode.as_deref()))
            .and_then(Mode::parse)
            .unwrap_or(Mode::ReadWrite);
        Ok(mode)
    }

    /// The level of a subject (or, for '', the global one). A subject without its own level is
    /// NOT_FOUND (40408) unless `default_to_global`.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn compatibility_level(
        &self,
        subject: &str,
        default_to_global: bool,
    ) -> Result<CompatibilityLevel> {
        if !subject.is_empty() {
            validate_subject(subject)?;
            let configs = self.config_snapshot().await?;
            let own = configs
                .get(subject)
                .and_then(|c| c.compatibility.as_deref());
            if own.is_none() && !default_to_global {
                return Err(RegistryError::SubjectCompatibilityNotConfigured {
                    subject: subject.to_owned(),
                });
            }
        }
        self.effective_level(subject).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn set_compatibility_level(
        &self,
        subject: &str,
        level: CompatibilityLevel,
    ) -> Result<CompatibilityLevel> {
        validate_scope(subject)?;
        let mut tx = self.db()?.begin().await?;
        store::lock_config(&mut tx, subject).await?;
        self.commit_config(
            tx,
            ConfigField::Compatibility,
            subject,
            Some(level.as_str()),
        )
        .await?;
        Ok(level)
    }

    /// Removes a subject's own level (or resets the global one); returns the level removed.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn delete_compatibility_level(&self, subject: &str) -> Result<CompatibilityLevel> {
        validate_scope(subject)?;
        let mut tx = self.db()?.begin().await?;
        let row = store::lock_config(&mut tx, subject).await?;
        let previous = match row
            .compatibility
            .as_deref()
            .and_then(CompatibilityLevel::parse)
        {
            Some(level) => level,
            None if subject.is_empty() => CompatibilityLevel::Backward,
            None => {
                return Err(RegistryError::SubjectCompatibilityNotConfigured {
                    subject: subject.to_owned(),
                });
            }
        };
        self.commit_config(tx, ConfigField::Compatibility, subject, None)
            .await?;
        Ok(previous)
    }

    /// The mode of a subject (or, for '', the global one); see `compatibility_level`.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn mode(&self, subject: &str, default_to_global: bool) -> Result<Mode> {
        if !subject.is_empty() {
            validate_subject(subject)?;
            let configs = self.config_snapshot().await?;
            let own = configs.get(subject).and_then(|c| c.mode.as_deref());
            if own.is_none() && !default_to_global {
                return Err(RegistryError::SubjectModeNotConfigured {
                    subject: subject.to_owned(),
                });
            }
        }
        self.effective_mode(subject).await
    }

    /// Sets a mode. Entering IMPORT while schemas exist needs `force`, as in Confluent.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn set_mode(&self, subject: &str, mode: Mode, force: bool) -> Result<Mode> {
        validate_scope(subject)?;
        let mut tx = self.db()?.begin().await?;
        store::lock_config(&mut tx, subject).await?;
        if mode == Mode::Import && !force {
            let scope = (!subject.is_empty()).then_some(subject);
            if store::has_versions(&mut tx, scope).await? {
                return Err(RegistryError::OperationNotPermitted {
                    reason: format!(
                        "Cannot import since found existing subjects: {} holds schemas; set force=true to switch to IMPORT mode anyway",
                        if subject.is_empty() {
                            "the registry".to_owned()
                        } else {
                            format!("subject '{subject}'")
                        }
                    ),
                });
            }
        }
        self.commit_config(tx, ConfigField::Mode, subject, Some(mode.as_str()))
            .await?;
        Ok(mode)
    }

    /// Removes a subject's own mode (or resets the global one); returns the mode removed.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn delete_mode(&self, subject: &str) -> Result<Mode> {
        validate_scope(subject)?;
        let mut tx = self.db()?.begin().await?;
        let row = store::lock_config(&mut tx, subject).await?;
        let previous = match row.mode.as_deref().and_then(Mode::parse) {
            Some(mode) => mode,
            None if subject.is_empty() => Mode::ReadWrite,
            None => {
                return Err(RegistryError::SubjectModeNotConfigured {
                    subject: subject.to_owned(),
                });
            }
        };
        self.commit_config(tx, ConfigField::Mode, subject, None)
            .await?;
        Ok(previous)
    }

    /// Sets (or with `None`, clears) one setting of `subject` ('' = global) in `tx`, which holds
    /// the config row's lock, announces the change inside it, commits, and drops this replica's
    /// cached configs.
    async fn commit_config(
        &self,
        mut tx: Transaction<'_, Postgres>,
        field: ConfigField,
        subject: &str,
        value: Option<&str>,
    ) -> Result<()> {
        store::set_config(&mut tx, field, subject, value).await?;
        let subject = subject.to_owned();
        let value = value.map(str::to_owned);
        let event = match field {
            ConfigField::Compatibility => Event::CompatibilityChanged {
                subject,
                level: value,
            },
            ConfigField::Mode => Event::ModeChanged {
                subject,
                mode: value,
            },
        };
        store::notify(&mut tx, &event.to_payload()).await?;
        tx.commit().await?;
        self.invalidate_configs();
        Ok(())
    }
}

/// A config's scope: '' (the registry) or a valid subject.
fn validate_scope(subject: &str) -> Result<()> {
    if subject.is_empty() {
        Ok(())
    } else {
        validate_subject(subject)
    }
}
