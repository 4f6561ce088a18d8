//! Compatibility levels and modes, of a subject or of the whole registry ('' is global).

use tributary_avro::compat::CompatibilityLevel;

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
        if !subject.is_empty() {
            validate_subject(subject)?;
        }
        let mut tx = self.db()?.begin().await?;
        store::lock_config(&mut tx, subject).await?;
        store::set_config(
            &mut tx,
            ConfigField::Compatibility,
            subject,
            Some(level.as_str()),
        )
        .await?;
        let event = Event::CompatibilityChanged {
            subject: subject.to_owned(),
            level: Some(level.as_str().to_owned()),
        };
        store::notify(&mut tx, &event.to_payload()).await?;
        tx.commit().await?;
        self.invalidate_configs();
        Ok(level)
    }

    /// Removes a subject's own level (or resets the global one); returns the level removed.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn delete_compatibility_level(&self, subject: &str) -> Result<CompatibilityLevel> {
        if !subject.is_empty() {
            validate_subject(subject)?;
        }
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
        store::set_config(&mut tx, ConfigField::Compatibility, subject, None).await?;
        let event = Event::CompatibilityChanged {
            subject: subject.to_owned(),
            level: None,
        };
        store::notify(&mut tx, &event.to_payload()).await?;
        tx.commit().await?;
        self.invalidate_configs();
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
        if !subject.is_empty() {
            validate_subject(subject)?;
        }
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
        store::set_config(&mut tx, ConfigField::Mode, subject, Some(mode.as_str())).await?;
        let event = Event::ModeChanged {
            subject: subject.to_owned(),
            mode: Some(mode.as_str().to_owned()),
        };
        store::notify(&mut tx, &event.to_payload()).await?;
        tx.commit().await?;
        self.invalidate_configs();
        Ok(mode)
    }

    /// Removes a subject's own mode (or resets the global one); returns the mode removed.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn delete_mode(&self, subject: &str) -> Result<Mode> {
        if !subject.is_empty() {
            validate_subject(subject)?;
        }
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
        store::set_config(&mut tx, ConfigField::Mode, subject, None).await?;
        let event = Event::ModeChanged {
            subject: subject.to_owned(),
            mode: None,
        };
        store::notify(&mut tx, &event.to_payload()).await?;
        tx.commit().await?;
        self.invalidate_configs();
        Ok(previous)
    }
}
