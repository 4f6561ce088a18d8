//! Who may do what in the registry: the one place where every operation of both APIs (HTTP and
//! gRPC) is mapped to the action and resource it needs, decided by the policy
//! ([`tributary_security::authz`]), and audited.
//!
//! - Subjects: `read` (versions, lookups, compatibility checks, the subject's configuration and
//!   mode), `write` (registrations), `import` (registrations with an id, IMPORT mode), `delete`,
//!   `delete-permanent`, `config` (changing the subject's level or mode).
//! - The registry: `config` changes the global level and mode (admin); `read` reads every
//!   subject. Reading the global level and mode, the server's metadata and the schema types needs
//!   no permission beyond authentication: they are not about anyone's data.
//! - A schema by id is readable by whoever may read at least one subject that uses it (soft
//!   deleted versions included: a consumer decoding an old record needs its schema), or holds
//!   `read` on the registry. This is Confluent RBAC's rule too ("DeveloperRead on a subject
//!   grants its schemas").
//! - Lists (subjects, schemas, the subjects and versions of an id, Watch events) hold only what
//!   the caller may read; they never fail as a whole.
//! - Every change allowed (register, delete, config, mode) writes one audit line with its
//!   outcome; every denial writes one audit line. Reads allowed write none, and neither does a
//!   registration that finds the schema already registered under the subject (nothing changed).

use std::future::Future;
use std::sync::Arc;

use tributary_security::authz::{Action, Authorizer, Caller, Outcome, Resource};

use crate::error::RegistryError;
use crate::registry::Registry;

type Result<T> = std::result::Result<T, RegistryError>;

/// The registry's authorization.
#[derive(Debug, Clone)]
pub struct Access {
    authorizer: Arc<Authorizer>,
    registry: Arc<Registry>,
}

impl Access {
    pub fn new(authorizer: Arc<Authorizer>, registry: Arc<Registry>) -> Self {
        Self {
            authorizer,
            registry,
        }
    }

    pub fn authorizer(&self) -> &Arc<Authorizer> {
        &self.authorizer
    }

    /// `Ok` when `caller` may `action` the subject (the registry, for the empty subject);
    /// otherwise 403 / PERMISSION_DENIED, audited.
    pub fn require(&self, caller: &Caller, action: Action, subject: &str) -> Result<()> {
        self.authorizer
            .require(caller, action, scope(action, subject))
            .map_err(RegistryError::Forbidden)
    }

    /// Whether `caller` may read `subject` (for filtering lists; no audit line).
    pub fn can_read(&self, caller: &Caller, subject: &str) -> bool {
        self.authorizer
            .allows(caller, Action::Read, Resource::subject(subject))
    }

    /// Whether `caller` may read every subject (lists need no filtering then).
    pub fn reads_everything(&self, caller: &Caller) -> bool {
        self.authorizer
            .allows(caller, Action::Read, Resource::registry())
    }

    /// `Ok` when `caller` may read schema `id`: `read` on the registry, or on a subject that uses
    /// it; otherwise 403 (audited). An unknown id is 40403 as before.
    pub async fn require_schema(&self, caller: &Caller, id: i32) -> Result<()> {
        let grants = self.authorizer.grants(&caller.principal);
        if grants.allows(Action::Read, Resource::registry()) {
            return Ok(());
        }
        let subjects = self.registry.subjects_using(id).await?;
        if subjects
            .iter()
            .any(|subject| grants.allows(Action::Read, Resource::subject(subject)))
        {
            return Ok(());
        }
        if subjects.is_empty() {
            // An unknown id is answered as the registry answers it (40403).
            self.registry.schema_by_id(id).await?;
        }
        Err(RegistryError::Forbidden(self.authorizer.refuse(
            caller,
            Action::Read,
            &format!("schema:{id} (through no subject it may read)"),
        )))
    }

    /// Runs a change `caller` must be allowed to `action` on `subject` (the registry, for the
    /// empty subject): refused (and audited) when it may not, else run and its outcome audited.
    pub async fn change<T, F>(
        &self,
        caller: &Caller,
        action: Action,
        subject: &str,
        change: F,
    ) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        self.change_if(caller, action, subject, change, |_| true)
            .await
    }

    /// [`Self::change`] for a request that may turn out to change nothing (registering a
    /// schema the subject already has): a success is audited only when `changed` says it
    /// changed something, so the audit log holds changes, not idempotent repeats. Refusals and
    /// failures are audited as always.
    pub async fn change_if<T, F>(
        &self,
        caller: &Caller,
        action: Action,
        subject: &str,
        change: F,
        changed: impl FnOnce(&T) -> bool,
    ) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        self.require(caller, action, subject)?;
        let outcome = change.await;
        let resource = scope(action, subject);
        match &outcome {
            Ok(done) if changed(done) => {
                self.authorizer
                    .audit(caller, action, resource, Outcome::Succeeded)
            }
            Ok(_) => {}
            Err(error) => self.authorizer.audit(
                caller,
                action,
                resource,
                Outcome::Failed(&error.error_code().to_string()),
            ),
        }
        outcome
    }
}

/// The resource an action on `subject` concerns: the subject, or the registry for the empty
/// subject (the global level and mode).
fn scope(action: Action, subject: &str) -> Resource<'_> {
    if subject.is_empty() && matches!(action, Action::Config | Action::Read) {
        Resource::registry()
    } else {
        Resource::subject(subject)
    }
}
