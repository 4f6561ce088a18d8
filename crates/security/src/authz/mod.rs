//! Authorization: what an authenticated principal may do, decided by a policy file
//! ([`policy`]) that is reloaded when it changes, and audited.
//!
//! - [`Authorizer::require`] decides one action on one resource, and writes one audit line and
//!   counts a denial when it says no. [`Authorizer::allows`] decides without a trace, for
//!   filtering lists (a list never fails as a whole: it holds what the caller may see).
//!   [`Authorizer::audit`] records the outcome of a change that was allowed.
//! - Decisions are deny by default, an explicit deny wins, and a principal's grants are compiled
//!   once per policy version into one glob set per kind of resource and action: a decision costs
//!   two glob-set lookups whatever the number of rules.
//! - A broken policy file keeps the last good policy, logs why and counts the failure; a policy
//!   that does not load at startup stops the service: it never starts open.
//! - Audit lines are JSON on the `audit` log target (see `tributary_telemetry`): time, service,
//!   principal, authentication method, action, resource, outcome, peer address and, when traces
//!   are on, the trace id. They never hold a credential.

pub mod policy;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use policy::{Action, Grants, Kind, Limits, Policy, Resource};

use crate::conn::ConnectionInfo;
use crate::principal::{AuthMethod, Principal};
use crate::reload::Reloading;

/// Who is calling, and from where.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub peer: Option<SocketAddr>,
}

impl Caller {
    /// The caller of a request, from what the perimeter put in its extensions. A request that
    /// did not pass the authentication layer (which always sets a principal) is anonymous and
    /// is granted nothing.
    pub fn from_extensions(extensions: &http::Extensions) -> Self {
        Self {
            principal: extensions
                .get::<Principal>()
                .cloned()
                .unwrap_or_else(Principal::unauthenticated),
            peer: extensions
                .get::<ConnectionInfo>()
                .and_then(|info| info.remote_addr),
        }
    }

    /// A caller with `principal` and no address (tests, internal calls).
    pub fn of(principal: Principal) -> Self {
        Self {
            principal,
            peer: None,
        }
    }
}

/// An action refused on a resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("principal '{principal}' may not {} {resource}", .action.as_str())]
pub struct Denied {
    pub principal: String,
    pub action: Action,
    pub resource: String,
}

/// The outcome of an allowed change, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Done.
    Succeeded,
    /// Allowed, then failed with this error code (e.g. 40401, 409).
    Failed(&'a str),
}

/// How authorization is set up.
#[derive(Debug, Clone)]
pub enum PolicySource {
    /// A policy file, reloaded when it changes.
    File(PathBuf),
    /// Every authenticated principal may do everything (`--authz none`).
    AllowAuthenticated,
}

/// Grants a principal carries (see [`Principal`]), and whose they are.
#[derive(Debug)]
pub struct Remembered {
    /// The authorizer that granted them (its address).
    authorizer: usize,
    /// The policy version they were granted under.
    generation: u64,
    grants: Arc<Grants>,
}

/// Decides and audits.
pub struct Authorizer {
    service: &'static str,
    policy: Option<Arc<Reloading<Policy>>>,
    defaults: Limits,
    everything: Arc<Grants>,
    grants: moka::sync::Cache<String, (u64, Arc<Grants>)>,
    denials: [AtomicU64; ACTIONS],
}

const ACTIONS: usize = 13;

fn action_index(action: Action) -> usize {
    action as usize
}

const ALL_ACTIONS: [Action; ACTIONS] = [
    Action::Read,
    Action::Write,
    Action::Delete,
    Action::DeletePermanent,
    Action::Import,
    Action::Config,
    Action::Produce,
    Action::Consume,
    Action::Describe,
    Action::Create,
    Action::Alter,
    Action::Commit,
    Action::Admin,
];

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("service", &self.service)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Authorizer {
    /// An authorizer for `service` ("registry", "messaging"); the policy file must load now
    /// (inside a Tokio runtime: it is watched every `reload_interval`). `defaults` are the
    /// limits of a role that sets none.
    pub fn new(
        service: &'static str,
        source: PolicySource,
        defaults: Limits,
        reload_interval: Duration,
    ) -> anyhow::Result<Self> {
        let policy = match source {
            PolicySource::AllowAuthenticated => None,
            PolicySource::File(path) => {
                let read = path.clone();
                let policy = Reloading::watch(
                    "the authorization policy",
                    vec![path],
                    reload_interval,
                    move || {
                        let text = std::fs::read_to_string(&read).map_err(|error| {
                            anyhow::anyhow!(
                                "cannot read the policy file {}: {error}",
                                read.display()
                            )
                        })?;
                        Policy::parse(&text).map_err(|error| {
                            anyhow::anyhow!("in the policy file {}: {error:#}", read.display())
                        })
                    },
                )?;
                tracing::info!(
                    rules = policy.current().rule_count(),
                    "authorization policy loaded"
                );
                Some(policy)
            }
        };
        Ok(Self {
            service,
            policy,
            defaults,
            everything: Grants::everything(),
            grants: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            denials: Default::default(),
        })
    }

    /// Every authenticated principal may do everything.
    pub fn allow_authenticated(service: &'static str) -> Self {
        Self {
            service,
            policy: None,
            defaults: Limits::default(),
            everything: Grants::everything(),
            grants: moka::sync::Cache::new(1),
            denials: Default::default(),
        }
    }

    /// Whether a policy decides (else every authenticated principal may do everything).
    pub fn has_policy(&self) -> bool {
        self.policy.is_some()
    }

    /// What `principal` is granted under the current policy.
    pub fn grants(&self, principal: &Principal) -> Arc<Grants> {
        if principal.method == AuthMethod::None {
            return Grants::nothing();
        }
        let Some(policy) = &self.policy else {
            return Arc::clone(&self.everything);
        };
        let generation = policy.generation();
        let this = std::ptr::from_ref(self) as usize;
        if let Some(remembered) = principal.grants.load().as_ref()
            && remembered.authorizer == this
            && remembered.generation == generation
        {
            return Arc::clone(&remembered.grants);
        }
        let grants = self.grants_for(principal, policy, generation);
        principal.grants.store(Some(Arc::new(Remembered {
            authorizer: this,
            generation,
            grants: Arc::clone(&grants),
        })));
        grants
    }

    /// A principal's grants from the shared cache (principals made per request, e.g. from a
    /// client certificate, have nothing remembered).
    fn grants_for(
        &self,
        principal: &Principal,
        policy: &Reloading<Policy>,
        generation: u64,
    ) -> Arc<Grants> {
        let key = principal.key();
        if let Some((cached, grants)) = self.grants.get(&key)
            && cached == generation
        {
            return grants;
        }
        let grants = Arc::new(policy.current().grants(principal, self.defaults));
        self.grants.insert(key, (generation, Arc::clone(&grants)));
        grants
    }

    /// Whether `caller` may `action` `resource`. No audit line: for filtering what a list shows.
    pub fn allows(&self, caller: &Caller, action: Action, resource: Resource<'_>) -> bool {
        self.grants(&caller.principal).allows(action, resource)
    }

    /// `Ok` when `caller` may `action` `resource`; otherwise the denial, audited and counted.
    pub fn require(
        &self,
        caller: &Caller,
        action: Action,
        resource: Resource<'_>,
    ) -> Result<(), Denied> {
        if self.allows(caller, action, resource) {
            return Ok(());
        }
        Err(self.refuse(caller, action, &resource.to_string()))
    }

    /// The denial of `action` on `resource` (a description, for resources a rule decided on
    /// indirectly, e.g. a schema id through its subjects), audited and counted.
    pub fn refuse(&self, caller: &Caller, action: Action, resource: &str) -> Denied {
        self.denials[action_index(action)].fetch_add(1, Ordering::Relaxed);
        self.write_audit(caller, action, resource, "denied");
        Denied {
            principal: caller.principal.name.to_string(),
            action,
            resource: resource.to_owned(),
        }
    }

    /// Records the outcome of an allowed change (a write, a delete, a configuration or mode
    /// change).
    pub fn audit(
        &self,
        caller: &Caller,
        action: Action,
        resource: Resource<'_>,
        outcome: Outcome<'_>,
    ) {
        let resource = resource.to_string();
        match outcome {
            Outcome::Succeeded => self.write_audit(caller, action, &resource, "succeeded"),
            Outcome::Failed(code) => {
                self.write_audit(caller, action, &resource, &format!("failed:{code}"));
            }
        }
    }

    /// The limits of `principal`'s roles.
    pub fn limits(&self, principal: &Principal) -> Limits {
        match &self.policy {
            Some(_) => self.grants(principal).limits(),
            None => self.defaults,
        }
    }

    /// Denials so far, per action (for the metrics).
    pub fn denials(&self) -> Vec<(Action, u64)> {
        ALL_ACTIONS
            .iter()
            .map(|action| {
                (
                    *action,
                    self.denials[action_index(*action)].load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// How many times the policy failed to reload, its current rule count, and whether the file
    /// as it is now failed to load (the policy in force is older).
    pub fn policy_state(&self) -> Option<(u64, usize, bool)> {
        self.policy.as_ref().map(|policy| {
            (
                policy.failures(),
                policy.current().rule_count(),
                policy.is_stale(),
            )
        })
    }

    /// Registers `tributary.authz.denials` (by action and service),
    /// `tributary.authz.policy.reload.failures` and `tributary.authz.policy.rules` on `meter`.
    pub fn register_metrics(self: &Arc<Self>, meter: &opentelemetry::metrics::Meter) {
        use opentelemetry::KeyValue;
        let labels: Vec<[KeyValue; 2]> = ALL_ACTIONS
            .iter()
            .map(|action| {
                [
                    KeyValue::new("action", action.as_str()),
                    KeyValue::new("service", self.service),
                ]
            })
            .collect();
        let authorizer = Arc::clone(self);
        meter
            .u64_observable_counter("tributary.authz.denials")
            .with_description("Requests refused by the authorization policy, by action")
            .with_callback(move |observer| {
                for ((_, count), labels) in authorizer.denials().into_iter().zip(&labels) {
                    observer.observe(count, labels);
                }
            })
            .build();
        let service = [KeyValue::new("service", self.service)];
        let authorizer = Arc::clone(self);
        let labels = service.clone();
        meter
            .u64_observable_counter("tributary.authz.policy.reload.failures")
            .with_description("Policy file changes that did not load (the previous policy stays)")
            .with_callback(move |observer| {
                if let Some((failures, ..)) = authorizer.policy_state() {
                    observer.observe(failures, &labels);
                }
            })
            .build();
        let authorizer = Arc::clone(self);
        let labels = service.clone();
        meter
            .u64_observable_gauge("tributary.authz.policy.rules")
            .with_description("Rules of the policy in force")
            .with_callback(move |observer| {
                if let Some((_, rules, _)) = authorizer.policy_state() {
                    observer.observe(rules as u64, &labels);
                }
            })
            .build();
        let authorizer = Arc::clone(self);
        meter
            .u64_observable_gauge("tributary.authz.policy.stale")
            .with_description(
                "1 while the policy file as it is now does not load (the previous policy is in force)",
            )
            .with_callback(move |observer| {
                if let Some((_, _, stale)) = authorizer.policy_state() {
                    observer.observe(u64::from(stale), &service);
                }
            })
            .build();
    }

    /// The service this authorizer decides for.
    pub fn service(&self) -> &'static str {
        self.service
    }

    fn write_audit(&self, caller: &Caller, action: Action, resource: &str, outcome: &str) {
        tracing::info!(
            target: "audit",
            service = self.service,
            principal = %caller.principal.name,
            auth_method = caller.principal.method.as_str(),
            action = action.as_str(),
            resource,
            outcome,
            peer = caller.peer.map(|peer| peer.to_string()).unwrap_or_default(),
            "authorization"
        );
    }
}
