//! Who may do what through the messaging service: the one place where every operation is mapped
//! to the action and resource it needs, decided by the policy
//! ([`tributary_security::authz`]), and audited.
//!
//! - Topics: `produce` (every record produced to it), `consume` (subscribing to it, or to its
//!   partitions), `describe` (describing it, its watermarks, seeing it in ListTopics),
//!   `create`, `delete`.
//! - Consumer groups: `read` (describing it, seeing it in ListConsumerGroups, and consuming as
//!   it) and `commit` (consuming as it: acknowledgements commit its offsets).
//! - Schemas, checked here for the caller even though the service calls the registry with its
//!   own identity (which is no way around the caller's permissions): a record whose schema is
//!   given inline needs `write` on its subject (the schema is registered), one that names a
//!   subject version needs `read` on the subject, one that names a schema id needs `read` on a
//!   subject that uses the id (or on the registry). Decoding consumed records needs nothing
//!   beyond `consume`: whoever may read the records may read their schemas.
//! - Lists hold only what the caller may see. Topic creation and deletion are audited with their
//!   outcome, denials always; records produced are not audited one by one.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tributary_proto::messaging::v1 as pb;
use tributary_security::authz::{Action, Authorizer, Caller, Grants, Outcome, Resource};

use crate::error::MessagingError;
use crate::schemas::Schemas;

/// How long the subjects of an id are remembered for authorization.
const USAGES_TTL: Duration = Duration::from_secs(5);

/// The messaging service's authorization.
#[derive(Debug, Clone)]
pub struct Access {
    authorizer: Arc<Authorizer>,
    schemas: Arc<Schemas>,
    /// id -> the subjects using it (live or soft deleted), as the registry lists them.
    usages: moka::sync::Cache<u32, Arc<[String]>>,
}

impl Access {
    pub fn new(authorizer: Arc<Authorizer>, schemas: Arc<Schemas>) -> Self {
        Self {
            authorizer,
            schemas,
            usages: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(USAGES_TTL)
                .build(),
        }
    }

    /// What `caller` is granted (for a run of checks of one request).
    pub fn grants(&self, caller: &Caller) -> Arc<Grants> {
        self.authorizer.grants(&caller.principal)
    }

    /// Whether `caller` may `action` `resource` (no audit line: for filtering lists).
    pub fn allows(&self, caller: &Caller, action: Action, resource: Resource<'_>) -> bool {
        self.authorizer.allows(caller, action, resource)
    }

    /// `Ok` when `caller` may `action` `resource`; otherwise PERMISSION_DENIED, audited.
    pub fn require(
        &self,
        caller: &Caller,
        action: Action,
        resource: Resource<'_>,
    ) -> Result<(), MessagingError> {
        self.authorizer
            .require(caller, action, resource)
            .map_err(MessagingError::Forbidden)
    }

    /// [`Self::require`] with grants the caller took already.
    pub fn require_granted(
        &self,
        grants: &Grants,
        caller: &Caller,
        action: Action,
        resource: Resource<'_>,
    ) -> Result<(), MessagingError> {
        if grants.allows(action, resource) {
            return Ok(());
        }
        Err(MessagingError::Forbidden(self.authorizer.refuse(
            caller,
            action,
            &resource.to_string(),
        )))
    }

    /// `Ok` when `caller` may read schema `id`: `read` on the registry, or on a subject that uses
    /// it.
    pub async fn require_schema(
        &self,
        grants: &Grants,
        caller: &Caller,
        id: u32,
    ) -> Result<(), MessagingError> {
        if grants.allows(Action::Read, Resource::registry()) {
            return Ok(());
        }
        let subjects = match self.usages.get(&id) {
            Some(subjects) => subjects,
            None => {
                let subjects: Arc<[String]> = self.schemas.subjects_of(id).await?.into();
                self.usages.insert(id, Arc::clone(&subjects));
                subjects
            }
        };
        if subjects
            .iter()
            .any(|subject| grants.allows(Action::Read, Resource::subject(subject)))
        {
            return Ok(());
        }
        Err(MessagingError::Forbidden(self.authorizer.refuse(
            caller,
            Action::Read,
            &format!("schema:{id} (through no subject it may read)"),
        )))
    }

    /// `Ok` when `caller` may consume what `subscription` names, as its group.
    pub fn require_subscription(
        &self,
        caller: &Caller,
        subscription: &pb::Subscription,
    ) -> Result<(), MessagingError> {
        let grants = self.grants(caller);
        let topics = subscription
            .topics
            .iter()
            .chain(subscription.partitions.iter().map(|tp| &tp.topic));
        for topic in topics {
            self.require_granted(&grants, caller, Action::Consume, Resource::topic(topic))?;
        }
        if !subscription.group_id.is_empty() {
            let group = Resource::group(&subscription.group_id);
            self.require_granted(&grants, caller, Action::Read, group)?;
            self.require_granted(&grants, caller, Action::Commit, group)?;
        }
        Ok(())
    }

    /// Runs a change `caller` must be allowed to `action` on `resource`: refused (and audited)
    /// when it may not, else run and its outcome audited.
    pub async fn change<T, F>(
        &self,
        caller: &Caller,
        action: Action,
        resource: Resource<'_>,
        change: F,
    ) -> Result<T, MessagingError>
    where
        F: Future<Output = Result<T, MessagingError>>,
    {
        self.require(caller, action, resource)?;
        let outcome = change.await;
        match &outcome {
            Ok(_) => self
                .authorizer
                .audit(caller, action, resource, Outcome::Succeeded),
            Err(error) => {
                self.authorizer
                    .audit(caller, action, resource, Outcome::Failed(error.reason()))
            }
        }
        outcome
    }
}
