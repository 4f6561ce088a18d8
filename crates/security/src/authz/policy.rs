//! The policy file: who may do what, on which resources.
//!
//! ```yaml
//! groups:                      # groups defined here, besides the JWT's groups claim
//!   team-a: ["user:alice", "user:orders-*"]
//! roles:
//!   team-a-owner:
//!     rules:
//!       - allow: [read, write, delete, config]
//!         on: ["subject:team-a-*"]
//!       - allow: ["*"]
//!         on: ["topic:team-a-*", "group:team-a-*"]
//!       - deny: [delete-permanent]
//!         on: ["subject:*"]
//!     limits: {requests_per_second: 200, burst: 400, concurrent_streams: 20}
//! bindings:
//!   - role: team-a-owner
//!     to: ["group:team-a"]
//! ```
//!
//! - **Resources**: `subject:<name>`, `topic:<name>`, `group:<consumer group>`, `registry` (the
//!   registry's global configuration and mode, and reading every subject), `cluster` (Kafka
//!   administration); `*` is every resource. Names are glob patterns: exact (`orders-value`),
//!   prefix (`team-a-*`) or any glob (`*-value`, `team-?-*`).
//! - **Actions**, per kind of resource: subject `read`, `write`, `delete`, `delete-permanent`,
//!   `import` (registrations with ids, in IMPORT mode), `config` (its compatibility level and
//!   mode); registry `read`, `config`; topic `produce`, `consume`, `describe`, `create`,
//!   `delete`, `alter`; group `read`, `commit`; cluster `describe`, `admin`; `*` is every action.
//! - **Principals** in bindings and groups: `user:<name>` (the basic user, the JWT's principal
//!   claim or the certificate's mapped name), `group:<name>`, `*` (anyone authenticated).
//! - **Decisions**: deny by default; an explicit `deny` wins over any `allow`.
//!
//! A file that does not parse, names an unknown role, or gives a rule an action that applies to
//! none of its resources is refused with the reason (a typo must not silently grant or deny).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Context;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::principal::Principal;

/// A kind of resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Subject,
    Registry,
    Topic,
    Group,
    Cluster,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Subject => "subject",
            Kind::Registry => "registry",
            Kind::Topic => "topic",
            Kind::Group => "group",
            Kind::Cluster => "cluster",
        }
    }

    const ALL: [Kind; 5] = [
        Kind::Subject,
        Kind::Registry,
        Kind::Topic,
        Kind::Group,
        Kind::Cluster,
    ];

    /// The actions that apply to this kind.
    pub fn actions(self) -> &'static [Action] {
        use Action::*;
        match self {
            Kind::Subject => &[Read, Write, Delete, DeletePermanent, Import, Config],
            Kind::Registry => &[Read, Config],
            Kind::Topic => &[Produce, Consume, Describe, Create, Delete, Alter],
            Kind::Group => &[Read, Commit],
            Kind::Cluster => &[Describe, Admin],
        }
    }
}

/// Something a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Read,
    Write,
    Delete,
    DeletePermanent,
    Import,
    Config,
    Produce,
    Consume,
    Describe,
    Create,
    Alter,
    Commit,
    Admin,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Delete => "delete",
            Action::DeletePermanent => "delete-permanent",
            Action::Import => "import",
            Action::Config => "config",
            Action::Produce => "produce",
            Action::Consume => "consume",
            Action::Describe => "describe",
            Action::Create => "create",
            Action::Alter => "alter",
            Action::Commit => "commit",
            Action::Admin => "admin",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        use Action::*;
        [
            Read,
            Write,
            Delete,
            DeletePermanent,
            Import,
            Config,
            Produce,
            Consume,
            Describe,
            Create,
            Alter,
            Commit,
            Admin,
        ]
        .into_iter()
        .find(|action| action.as_str() == name)
    }
}

/// What a request acts on: a kind and, except for `registry` and `cluster`, a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Resource<'a> {
    pub kind: Kind,
    pub name: &'a str,
}

impl<'a> Resource<'a> {
    pub fn subject(name: &'a str) -> Self {
        Self {
            kind: Kind::Subject,
            name,
        }
    }
    pub fn topic(name: &'a str) -> Self {
        Self {
            kind: Kind::Topic,
            name,
        }
    }
    pub fn group(name: &'a str) -> Self {
        Self {
            kind: Kind::Group,
            name,
        }
    }
    pub fn registry() -> Resource<'static> {
        Resource {
            kind: Kind::Registry,
            name: "",
        }
    }
    pub fn cluster() -> Resource<'static> {
        Resource {
            kind: Kind::Cluster,
            name: "",
        }
    }
}

impl std::fmt::Display for Resource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.name.is_empty() {
            f.write_str(self.kind.as_str())
        } else {
            write!(f, "{}:{}", self.kind.as_str(), self.name)
        }
    }
}

/// Per-principal limits a role grants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per second (a token bucket's rate); none: unlimited.
    pub requests_per_second: Option<u32>,
    /// The bucket's size: how many requests may come at once (default: one second's worth).
    pub burst: Option<u32>,
    /// Streams (Watch, Consume, ProduceStream) open at once; none: unlimited.
    pub concurrent_streams: Option<u32>,
}

impl Limits {
    /// These limits, with `defaults` where they say nothing.
    fn filled(self, defaults: Limits) -> Limits {
        Limits {
            requests_per_second: self.requests_per_second.or(defaults.requests_per_second),
            burst: self.burst.or(defaults.burst),
            concurrent_streams: self.concurrent_streams.or(defaults.concurrent_streams),
        }
    }

    /// The most generous of two grants (a principal with several roles gets the largest;
    /// `None` is unlimited).
    fn widest(self, other: Limits) -> Limits {
        let most = |a: Option<u32>, b: Option<u32>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        Limits {
            requests_per_second: most(self.requests_per_second, other.requests_per_second),
            burst: most(self.burst, other.burst),
            concurrent_streams: most(self.concurrent_streams, other.concurrent_streams),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    groups: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    roles: BTreeMap<String, RoleSpec>,
    #[serde(default)]
    bindings: Vec<BindingSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleSpec {
    #[serde(default)]
    rules: Vec<RuleSpec>,
    limits: Option<Limits>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    allow: Option<Vec<String>>,
    deny: Option<Vec<String>>,
    on: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingSpec {
    role: String,
    to: Vec<String>,
}

/// Principal patterns: users, groups, or anyone.
#[derive(Debug, Clone)]
struct Who {
    anyone: bool,
    users: GlobSet,
    groups: GlobSet,
}

impl Who {
    fn compile(patterns: &[String], context: &str) -> anyhow::Result<Self> {
        let (mut users, mut groups, mut anyone) =
            (GlobSetBuilder::new(), GlobSetBuilder::new(), false);
        for pattern in patterns {
            if pattern == "*" {
                anyone = true;
            } else if let Some(user) = pattern.strip_prefix("user:") {
                users.add(glob(user, context)?);
            } else if let Some(group) = pattern.strip_prefix("group:") {
                groups.add(glob(group, context)?);
            } else {
                anyhow::bail!("{context}: '{pattern}' is not user:<name>, group:<name> or *");
            }
        }
        Ok(Self {
            anyone,
            users: users.build()?,
            groups: groups.build()?,
        })
    }

    fn matches(&self, name: &str, groups: &[&str]) -> bool {
        self.anyone || self.users.is_match(name) || groups.iter().any(|g| self.groups.is_match(g))
    }
}

fn glob(pattern: &str, context: &str) -> anyhow::Result<Glob> {
    anyhow::ensure!(!pattern.is_empty(), "{context}: an empty name pattern");
    Glob::new(pattern).with_context(|| format!("{context}: '{pattern}' is not a valid pattern"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

/// A rule: an effect, actions, and resource patterns per kind.
#[derive(Debug, Clone)]
struct Rule {
    effect: Effect,
    /// `None`: every action.
    actions: Option<Vec<Action>>,
    /// Name patterns per kind (`None` as the pattern: every resource of that kind).
    on: Vec<(Kind, Option<String>)>,
}

#[derive(Debug)]
struct Role {
    rules: Vec<Rule>,
    limits: Option<Limits>,
}

/// A parsed, checked policy.
#[derive(Debug)]
pub struct Policy {
    groups: Vec<(String, Who)>,
    roles: Vec<Role>,
    bindings: Vec<(Who, usize)>,
    rules: usize,
}

impl Policy {
    /// The policy in a YAML document. Errors name the role, rule or binding at fault.
    pub fn parse(yaml: &str) -> anyhow::Result<Self> {
        // An empty file is what a reload sees in the middle of a non-atomic rewrite (truncate,
        // then write): taking it for a policy that allows nothing would deny every caller for
        // a moment. A policy that binds nobody says so: `bindings: []`.
        anyhow::ensure!(
            !yaml.trim().is_empty(),
            "the policy file is empty (a policy that allows nothing is written `bindings: []`)"
        );
        let file: PolicyFile =
            serde_yaml_ng::from_str(yaml).context("the policy is not valid policy YAML")?;
        let mut groups = Vec::new();
        for (name, members) in &file.groups {
            groups.push((
                name.clone(),
                Who::compile(members, &format!("group '{name}'"))?,
            ));
        }
        let mut roles = Vec::new();
        let mut index = HashMap::new();
        let mut rule_count = 0;
        for (name, spec) in &file.roles {
            let mut rules = Vec::new();
            for (number, rule) in spec.rules.iter().enumerate() {
                let context = format!("role '{name}', rule {}", number + 1);
                rules.push(compile_rule(rule, &context)?);
            }
            rule_count += rules.len();
            index.insert(name.clone(), roles.len());
            roles.push(Role {
                rules,
                limits: spec.limits,
            });
        }
        let mut bindings = Vec::new();
        for (number, binding) in file.bindings.iter().enumerate() {
            let context = format!("binding {}", number + 1);
            let role = *index
                .get(&binding.role)
                .with_context(|| format!("{context}: no role is named '{}'", binding.role))?;
            bindings.push((Who::compile(&binding.to, &context)?, role));
        }
        Ok(Self {
            groups,
            roles,
            bindings,
            rules: rule_count,
        })
    }

    /// How many rules it has (for logs and metrics).
    pub fn rule_count(&self) -> usize {
        self.rules
    }

    /// What `principal` is granted: its roles' rules, compiled for fast matching, and the most
    /// generous limits of its roles (each role's missing limits are `defaults`).
    pub fn grants(&self, principal: &Principal, defaults: Limits) -> Grants {
        let mut groups: Vec<&str> = principal.groups.iter().map(String::as_str).collect();
        let jwt_groups = groups.clone();
        for (name, members) in &self.groups {
            if members.matches(&principal.name, &jwt_groups) {
                groups.push(name);
            }
        }
        let mut limits: Option<Limits> = None;
        let mut compiled = GrantsBuilder::default();
        for (who, role) in &self.bindings {
            if !who.matches(&principal.name, &groups) {
                continue;
            }
            let role = &self.roles[*role];
            let granted = role.limits.unwrap_or_default().filled(defaults);
            limits = Some(match limits {
                None => granted,
                Some(held) => held.widest(granted),
            });
            for rule in &role.rules {
                compiled.add(rule);
            }
        }
        compiled.build(limits.unwrap_or(defaults))
    }
}

fn compile_rule(rule: &RuleSpec, context: &str) -> anyhow::Result<Rule> {
    let (effect, names) = match (&rule.allow, &rule.deny) {
        (Some(actions), None) => (Effect::Allow, actions),
        (None, Some(actions)) => (Effect::Deny, actions),
        _ => anyhow::bail!("{context}: give either allow or deny"),
    };
    anyhow::ensure!(!names.is_empty(), "{context}: no action");
    anyhow::ensure!(!rule.on.is_empty(), "{context}: no resource (on)");
    let actions = if names.iter().any(|n| n == "*") {
        None
    } else {
        let mut actions = Vec::new();
        for name in names {
            actions.push(Action::parse(name).with_context(|| {
                format!("{context}: '{name}' is not an action (read, write, delete, delete-permanent, import, config, produce, consume, describe, create, alter, commit, admin, *)")
            })?);
        }
        Some(actions)
    };
    let mut on = Vec::new();
    for pattern in &rule.on {
        if pattern == "*" {
            on.extend(Kind::ALL.map(|kind| (kind, None)));
            continue;
        }
        let (kind_name, name) = match pattern.split_once(':') {
            Some((kind, name)) => (kind, Some(name)),
            None => (pattern.as_str(), None),
        };
        let kind = Kind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == kind_name)
            .with_context(|| {
                format!("{context}: '{pattern}' is not subject:<name>, topic:<name>, group:<name>, registry, cluster or *")
            })?;
        let name = match (kind, name) {
            (Kind::Registry | Kind::Cluster, None) => None,
            (Kind::Registry | Kind::Cluster, Some(_)) => {
                anyhow::bail!("{context}: '{pattern}': {} has no name", kind.as_str())
            }
            (_, None) => anyhow::bail!(
                "{context}: '{pattern}' needs a name pattern ({}:<name>, {}:* for all)",
                kind.as_str(),
                kind.as_str()
            ),
            (_, Some("*")) => None,
            (_, Some(name)) => {
                glob(name, context)?;
                Some(name.to_owned())
            }
        };
        on.push((kind, name));
    }
    if let Some(actions) = &actions {
        for action in actions {
            anyhow::ensure!(
                on.iter().any(|(kind, _)| kind.actions().contains(action)),
                "{context}: '{}' applies to none of {:?}",
                action.as_str(),
                rule.on
            );
        }
    }
    Ok(Rule {
        effect,
        actions,
        on,
    })
}

/// Patterns for one (kind, action): everything, or a glob set.
#[derive(Debug, Default)]
struct Patterns {
    everything: bool,
    globs: Vec<String>,
}

#[derive(Debug, Default)]
struct GrantsBuilder {
    allow: BTreeMap<(Kind, Action), Patterns>,
    deny: BTreeMap<(Kind, Action), Patterns>,
}

impl GrantsBuilder {
    fn add(&mut self, rule: &Rule) {
        let table = match rule.effect {
            Effect::Allow => &mut self.allow,
            Effect::Deny => &mut self.deny,
        };
        for (kind, name) in &rule.on {
            for action in kind.actions() {
                if rule
                    .actions
                    .as_ref()
                    .is_some_and(|actions| !actions.contains(action))
                {
                    continue;
                }
                let patterns = table.entry((*kind, *action)).or_default();
                match name {
                    None => patterns.everything = true,
                    Some(glob) => patterns.globs.push(glob.clone()),
                }
            }
        }
    }

    fn build(self, limits: Limits) -> Grants {
        let compile = |table: BTreeMap<(Kind, Action), Patterns>| {
            table
                .into_iter()
                .map(|(key, patterns)| {
                    let set = if patterns.everything {
                        Matcher::Everything
                    } else {
                        let mut builder = GlobSetBuilder::new();
                        for pattern in &patterns.globs {
                            // Checked when the policy was parsed.
                            if let Ok(glob) = Glob::new(pattern) {
                                builder.add(glob);
                            }
                        }
                        Matcher::Globs(builder.build().unwrap_or_else(|_| GlobSet::empty()))
                    };
                    (key, set)
                })
                .collect()
        };
        Grants {
            allow: compile(self.allow),
            deny: compile(self.deny),
            limits,
        }
    }
}

#[derive(Debug)]
enum Matcher {
    Everything,
    Globs(GlobSet),
}

impl Matcher {
    fn matches(&self, name: &str) -> bool {
        match self {
            Matcher::Everything => true,
            Matcher::Globs(set) => set.is_match(name),
        }
    }
}

/// What one principal is granted, compiled: per kind and action, the resource patterns allowed
/// and denied (one glob set each, whatever the number of rules).
#[derive(Debug)]
pub struct Grants {
    allow: HashMap<(Kind, Action), Matcher>,
    deny: HashMap<(Kind, Action), Matcher>,
    limits: Limits,
}

impl Grants {
    /// Everything, for authorization turned off.
    pub fn everything() -> Arc<Self> {
        let mut allow = HashMap::new();
        for kind in Kind::ALL {
            for action in kind.actions() {
                allow.insert((kind, *action), Matcher::Everything);
            }
        }
        Arc::new(Self {
            allow,
            deny: HashMap::new(),
            limits: Limits::default(),
        })
    }

    /// Nothing at all.
    pub fn nothing() -> Arc<Self> {
        Arc::new(Self {
            allow: HashMap::new(),
            deny: HashMap::new(),
            limits: Limits::default(),
        })
    }

    /// Whether `action` on `resource` is allowed: an explicit deny wins, then an allow, else no.
    pub fn allows(&self, action: Action, resource: Resource<'_>) -> bool {
        let key = (resource.kind, action);
        if self
            .deny
            .get(&key)
            .is_some_and(|matcher| matcher.matches(resource.name))
        {
            return false;
        }
        self.allow
            .get(&key)
            .is_some_and(|matcher| matcher.matches(resource.name))
    }

    /// The limits its roles grant (the most generous of them).
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::AuthMethod;

    #[test]
    fn an_empty_file_is_not_a_policy_but_an_explicit_empty_one_is() {
        for empty in ["", "  \n\n", "\t"] {
            let error = Policy::parse(empty).expect_err("empty");
            assert!(error.to_string().contains("empty"), "{error:#}");
        }
        Policy::parse("bindings: []").expect("a policy that binds nobody");
    }

    const POLICY: &str = r#"
groups:
  team-a: ["user:alice", "user:orders-*"]
roles:
  admin:
    rules:
      - allow: ["*"]
        on: ["*"]
  reader:
    rules:
      - allow: [read, describe]
        on: ["subject:*", "topic:*", "registry", "cluster"]
    limits: {requests_per_second: 10, concurrent_streams: 2}
  team-a-owner:
    rules:
      - allow: [read, write, delete, config, delete-permanent]
        on: ["subject:team-a-*"]
      - allow: ["*"]
        on: ["topic:team-a-*", "group:team-a-*"]
      - deny: [delete-permanent]
        on: ["subject:team-a-protected-*"]
    limits: {requests_per_second: 100, burst: 200}
  g1-consumer:
    rules:
      - allow: [consume, describe]
        on: ["topic:*"]
      - allow: [read, commit]
        on: ["group:g1"]
bindings:
  - role: admin
    to: ["user:admin"]
  - role: reader
    to: ["user:dashboards", "group:team-a"]
  - role: team-a-owner
    to: ["group:team-a"]
  - role: g1-consumer
    to: ["group:consumers"]
"#;

    fn principal(name: &str, groups: &[&str]) -> Principal {
        Principal::with_groups(
            name,
            AuthMethod::Bearer,
            groups
                .iter()
                .map(|g| (*g).to_owned())
                .collect::<Vec<_>>()
                .into(),
        )
    }

    #[test]
    fn deny_by_default_explicit_deny_wins_and_patterns_match_as_written() {
        let policy = Policy::parse(POLICY).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(policy.rule_count(), 7);
        let admin = policy.grants(&principal("admin", &[]), Limits::default());
        assert!(admin.allows(Action::DeletePermanent, Resource::subject("anything")));
        assert!(admin.allows(Action::Config, Resource::registry()));
        assert!(admin.allows(Action::Admin, Resource::cluster()));

        // alice is in team-a by the policy's groups: owner of team-a-*, reader elsewhere.
        let alice = policy.grants(&principal("alice", &[]), Limits::default());
        assert!(alice.allows(Action::Write, Resource::subject("team-a-orders")));
        assert!(alice.allows(Action::DeletePermanent, Resource::subject("team-a-orders")));
        assert!(
            !alice.allows(
                Action::DeletePermanent,
                Resource::subject("team-a-protected-x")
            ),
            "the explicit deny wins over the allow"
        );
        assert!(alice.allows(Action::Read, Resource::subject("team-b-orders")));
        assert!(!alice.allows(Action::Write, Resource::subject("team-b-orders")));
        assert!(alice.allows(Action::Produce, Resource::topic("team-a-events")));
        assert!(!alice.allows(Action::Produce, Resource::topic("team-b-events")));
        assert!(alice.allows(Action::Commit, Resource::group("team-a-workers")));
        assert!(!alice.allows(Action::Config, Resource::registry()));
        // The most generous limits of its roles.
        assert_eq!(alice.limits().requests_per_second, Some(100));
        assert_eq!(alice.limits().concurrent_streams, None);

        // JWT groups count too.
        let consumer = policy.grants(&principal("svc-1", &["consumers"]), Limits::default());
        assert!(consumer.allows(Action::Consume, Resource::topic("anything")));
        assert!(consumer.allows(Action::Commit, Resource::group("g1")));
        assert!(!consumer.allows(Action::Commit, Resource::group("g10")));
        assert!(!consumer.allows(Action::Produce, Resource::topic("anything")));

        // Nobody bound: nothing.
        let stranger = policy.grants(&principal("mallory", &[]), Limits::default());
        assert!(!stranger.allows(Action::Read, Resource::subject("x")));
        assert!(!stranger.allows(Action::Describe, Resource::cluster()));
    }

    #[test]
    fn mistakes_are_refused_with_the_place_they_are_in() {
        let error = |yaml: &str| {
            Policy::parse(yaml)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
        };
        assert!(error("roles: [").contains("not valid policy YAML"));
        assert!(error("rolez: {}").contains("not valid policy YAML"));
        assert!(
            error("bindings: [{role: nope, to: ['*']}]")
                .contains("binding 1: no role is named 'nope'")
        );
        assert!(
            error("roles: {r: {rules: [{allow: [reed], on: ['subject:*']}]}}")
                .contains("role 'r', rule 1: 'reed' is not an action")
        );
        assert!(
            error("roles: {r: {rules: [{allow: [produce], on: ['subject:*']}]}}")
                .contains("'produce' applies to none of")
        );
        assert!(
            error("roles: {r: {rules: [{allow: [read], on: ['subjects:x']}]}}")
                .contains("is not subject:<name>")
        );
        assert!(
            error("roles: {r: {rules: [{allow: [read], deny: [read], on: ['subject:x']}]}}")
                .contains("either allow or deny")
        );
        assert!(
            error("roles: {r: {rules: [{allow: [read], on: ['subject']}]}}")
                .contains("needs a name pattern")
        );
        assert!(error("groups: {g: ['alice']}").contains("is not user:<name>, group:<name> or *"));
    }

    #[test]
    fn a_thousand_rules_compile_to_one_glob_set_per_kind_and_action() {
        let mut yaml = String::from("roles:\n  many:\n    rules:\n");
        for team in 0..1000 {
            yaml.push_str(&format!(
                "      - allow: [read, write]\n        on: [\"subject:team-{team}-*\"]\n"
            ));
        }
        yaml.push_str("bindings:\n  - role: many\n    to: ['*']\n");
        let policy = Policy::parse(&yaml).unwrap_or_else(|e| panic!("{e:#}"));
        let grants = policy.grants(&principal("x", &[]), Limits::default());
        assert_eq!(grants.allow.len(), 2);
        assert!(grants.allows(Action::Write, Resource::subject("team-999-orders")));
        assert!(!grants.allows(Action::Write, Resource::subject("team-1000-orders")));
    }
}
