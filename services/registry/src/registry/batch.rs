//! Registrations of one subject that arrive together are written in one transaction.
//!
//! Guarantee: a group is one Postgres transaction under the subject's row lock (the lock that
//! serialises version allocation across replicas), so its registrations are committed together
//! or not at all, and each is answered only after that commit. Within the group they are taken
//! in arrival order, each checked against the subject's versions as they stand after the ones
//! before it (its committed versions plus those the group gave so far), so the outcome is the
//! one they would have had one transaction each: versions stay contiguous, a schema already
//! live under the subject (or given earlier in the group) gets that version back, and one
//! schema gets one id. A registration refused on its own merits (incompatible, a budget
//! exceeded) is refused alone: the others of its group go on. A failure of the transaction
//! itself (the database unreachable, a conflict still there after the retries) fails every
//! registration of the group, with that error, and writes nothing.

use std::collections::HashMap;
use std::sync::Arc;

use tracing::Instrument;
use tributary_avro::compat::CompatibilityLevel;

use super::{
    MAX_REGISTRATION_ATTEMPTS, Registered, Registry, RegistryError, Result, StoredSchema,
    is_retryable,
};
use crate::compatibility::{Checkers, Issues};
use crate::events::Event;
use crate::model::Reference;
use crate::schema_type::{ParsedSchema, SchemaType};
use crate::store;

/// Most registrations in one group (one transaction).
pub(super) const MAX_GROUP: usize = 256;

/// A registration waiting for its subject's group: validated and parsed, nothing written yet.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(super) schema_type: SchemaType,
    /// The text stored (canonical or normalized), which `fingerprint` is the digest of.
    pub(super) text: String,
    pub(super) fingerprint: Vec<u8>,
    pub(super) references: Vec<Reference>,
    /// The submitted schema, the candidate of the compatibility check.
    pub(super) parsed: Arc<ParsedSchema>,
    /// The span of the request: the group's span is a child of its first registration's and
    /// follows from the others', so each request's trace leads to the transaction.
    pub(super) span: tracing::Span,
}

/// A live version a candidate may be checked against: stored (its schema id), or given by
/// this group to registration `usize` (not committed yet, so not in any cache).
#[derive(Debug, Clone, Copy)]
enum Source {
    Stored(i32),
    Group(usize),
}

#[derive(Debug, Clone, Copy)]
struct Live {
    version: i32,
    source: Source,
}

/// What the group decided for one registration, before anything is written.
#[derive(Debug)]
enum Decision {
    /// Answered without writing (already live, or refused).
    Done(Result<Registered>),
    /// A new version.
    New { version: i32 },
    /// The same schema as registration `usize` of this group: its answer, not created.
    SameAs(usize),
}

impl Registry {
    /// Registers `pending` under `subject` with the registrations of the subject that arrive
    /// at the same time (see the module documentation for the guarantees).
    pub(super) async fn register_grouped(
        self: &Arc<Self>,
        subject: &str,
        pending: Pending,
    ) -> Result<Registered> {
        let registry = Arc::clone(self);
        let key = subject.to_owned();
        self.groups
            .submit(subject, pending, move || {
                move |group: Vec<Pending>| {
                    let registry = Arc::clone(&registry);
                    let subject = key.clone();
                    async move { registry.register_group(&subject, group).await }
                }
            })
            .await
            .unwrap_or_else(|abandoned| {
                Err(RegistryError::Store(sqlx::Error::Protocol(
                    abandoned.to_string(),
                )))
            })
    }

    /// One answer per registration of `group`, in order.
    async fn register_group(&self, subject: &str, group: Vec<Pending>) -> Vec<Result<Registered>> {
        let span = match group.first() {
            Some(first) => tracing::debug_span!(
                parent: &first.span,
                "register_group",
                subject,
                registrations = group.len()
            ),
            None => tracing::Span::none(),
        };
        for pending in group.iter().skip(1) {
            span.follows_from(&pending.span);
        }
        self.register_group_in_span(subject, group)
            .instrument(span)
            .await
    }

    async fn register_group_in_span(
        &self,
        subject: &str,
        group: Vec<Pending>,
    ) -> Vec<Result<Registered>> {
        let level = match self.effective_level(subject).await {
            Ok(level) => level,
            Err(error) => return fail_all(error, group.len()),
        };
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let outcome = self.write_group(subject, level, &group).await;
            // Whatever happened, this replica's view of the subject may be stale now.
            self.invalidate_subject(subject);
            match outcome {
                Err(RegistryError::Store(error))
                    if attempt < MAX_REGISTRATION_ATTEMPTS && is_retryable(&error) =>
                {
                    tracing::debug!(attempt, error = %error, "retrying a group of registrations after a conflict");
                }
                Err(error) => return fail_all(error, group.len()),
                Ok(answers) => return answers,
            }
        }
    }

    /// The group's transaction: decides each registration in order, then writes the new
    /// schemas, versions and events in one statement each, and commits. `Err` only when the
    /// transaction failed as a whole (nothing was written).
    async fn write_group(
        &self,
        subject: &str,
        level: CompatibilityLevel,
        group: &[Pending],
    ) -> Result<Vec<Result<Registered>>> {
        let mut tx = self.db()?.begin().await?;
        store::lock_subject(&mut tx, subject, true).await?;
        let mut fingerprints: Vec<Vec<u8>> = group.iter().map(|p| p.fingerprint.clone()).collect();
        fingerprints.sort_unstable();
        fingerprints.dedup();
        let known: HashMap<Vec<u8>, i32> =
            store::schema_ids_by_fingerprints(&mut tx, &fingerprints)
                .await?
                .into_iter()
                .collect();
        let known_ids: Vec<i32> = known.values().copied().collect();
        let rows =
            store::versions_for_registration(&mut tx, subject, &known_ids, level.is_transitive())
                .await?;

        // The next version follows the newest row, deleted or not: numbers are never reused.
        let mut next_version = match rows.last() {
            None => Some(1),
            Some(last) => last.version.checked_add(1),
        };
        let mut live: Vec<Live> = rows
            .iter()
            .filter(|row| !row.deleted)
            .map(|row| Live {
                version: row.version,
                source: Source::Stored(row.schema_id),
            })
            .collect();
        // Ascending rows: the newest live version of each schema wins, as for one registration.
        let live_by_id: HashMap<i32, i32> = rows
            .iter()
            .filter(|row| !row.deleted)
            .map(|row| (row.schema_id, row.version))
            .collect();
        let mut given: HashMap<&[u8], usize> = HashMap::new();
        let mut parsed_in_group: HashMap<usize, Arc<ParsedSchema>> = HashMap::new();
        let mut decisions = Vec::with_capacity(group.len());
        for (index, pending) in group.iter().enumerate() {
            let existing_id = known.get(&pending.fingerprint).copied();
            if let Some(id) = existing_id
                && let Some(version) = live_by_id.get(&id)
            {
                decisions.push(Decision::Done(Ok(Registered {
                    id,
                    version: *version,
                    schema: pending.text.clone(),
                    created: false,
                })));
                continue;
            }
            if let Some(first) = given.get(pending.fingerprint.as_slice()) {
                decisions.push(Decision::SameAs(*first));
                continue;
            }
            match self
                .issues_in_group(&mut tx, level, pending, &live, group, &mut parsed_in_group)
                .await
            {
                Err(error @ (RegistryError::Store(_) | RegistryError::StoreUnavailable(_))) => {
                    return Err(error);
                }
                Err(error) => {
                    decisions.push(Decision::Done(Err(error)));
                    continue;
                }
                Ok(issues) if issues.total() > 0 => {
                    decisions.push(Decision::Done(Err(issues.incompatible(subject))));
                    continue;
                }
                Ok(_) => {}
            }
            let Some(version) = next_version else {
                decisions.push(Decision::Done(Err(RegistryError::VersionsExhausted {
                    subject: subject.to_owned(),
                    max: i32::MAX,
                })));
                continue;
            };
            next_version = version.checked_add(1);
            given.insert(&pending.fingerprint, index);
            live.push(Live {
                version,
                source: existing_id.map_or(Source::Group(index), Source::Stored),
            });
            decisions.push(Decision::New { version });
        }

        let new: Vec<usize> = decisions
            .iter()
            .enumerate()
            .filter(|(_, decision)| matches!(decision, Decision::New { .. }))
            .map(|(index, _)| index)
            .collect();
        if new.is_empty() {
            tx.rollback().await?;
        } else {
            let schemas: Vec<store::NewSchema<'_>> = new
                .iter()
                .map(|index| &group[*index])
                .filter(|pending| !known.contains_key(&pending.fingerprint))
                .map(|pending| store::NewSchema {
                    fingerprint: &pending.fingerprint,
                    schema_type: pending.schema_type.as_str(),
                    text: &pending.text,
                    references: &pending.references,
                })
                .collect();
            let inserted: HashMap<Vec<u8>, i32> = store::insert_schemas(&mut tx, &schemas)
                .await?
                .into_iter()
                .collect();
            let mut versions = Vec::with_capacity(new.len());
            for index in &new {
                let fingerprint = &group[*index].fingerprint;
                let Some(id) = known.get(fingerprint).or_else(|| inserted.get(fingerprint)) else {
                    return Err(RegistryError::Store(sqlx::Error::Protocol(
                        "a schema inserted by a group of registrations has no id".to_owned(),
                    )));
                };
                if let Decision::New { version } = decisions[*index] {
                    versions.push((version, *id));
                }
            }
            store::insert_versions(&mut tx, subject, &versions).await?;
            let events: Vec<String> = versions
                .iter()
                .map(|(version, id)| {
                    Event::SchemaRegistered {
                        subject: subject.to_owned(),
                        version: *version,
                        id: *id,
                    }
                    .to_payload()
                })
                .collect();
            store::notify_all(&mut tx, &events).await?;
            tx.commit().await?;
            for ((version, id), index) in versions.iter().zip(&new) {
                tracing::info!(subject, version, id, "schema registered");
                let pending = &group[*index];
                self.remember_committed(*id, pending);
                decisions[*index] = Decision::Done(Ok(Registered {
                    id: *id,
                    version: *version,
                    schema: pending.text.clone(),
                    created: true,
                }));
            }
        }

        let mut answers: Vec<Result<Registered>> = Vec::with_capacity(decisions.len());
        for decision in decisions {
            let answer = match decision {
                Decision::Done(answer) => answer,
                Decision::SameAs(first) => match answers.get(first) {
                    Some(Ok(registered)) => Ok(Registered {
                        created: false,
                        ..registered.clone()
                    }),
                    // Not reachable: the first of a schema in the group is decided before the
                    // ones that repeat it, and given a version (so answered Ok) once committed.
                    _ => Err(RegistryError::Store(sqlx::Error::Protocol(
                        "a repeated registration of a group has no answer".to_owned(),
                    ))),
                },
                Decision::New { .. } => Err(RegistryError::Store(sqlx::Error::Protocol(
                    "a registration of a group was not written".to_owned(),
                ))),
            };
            answers.push(answer);
        }
        Ok(answers)
    }

    /// The reasons `pending` is incompatible with the live versions `live` (the last of which
    /// may be this group's) at `level`. A group's schema is parsed as stored, as the versions a
    /// later registration is checked against are, once per group. Stored schemas missing from
    /// the cache are read in `tx`; only the references of a stored schema (rare) are resolved
    /// through the pool.
    async fn issues_in_group(
        &self,
        tx: &mut sqlx::PgConnection,
        level: CompatibilityLevel,
        pending: &Pending,
        live: &[Live],
        group: &[Pending],
        parsed_in_group: &mut HashMap<usize, Arc<ParsedSchema>>,
    ) -> Result<Issues> {
        if level == CompatibilityLevel::None {
            return Ok(Issues::default());
        }
        let against: &[Live] = if level.is_transitive() {
            live
        } else {
            live.last().map(std::slice::from_ref).unwrap_or_default()
        };
        let mut checkers = Checkers::new(&self.settings.limits);
        let mut issues = Issues::default();
        for row in against {
            let existing = match row.source {
                Source::Stored(id) => {
                    let cached = self.schemas.read().get(&id).cloned();
                    let stored = match cached {
                        Some(stored) => stored,
                        // Read on the transaction's own connection: a group holding the
                        // subject's lock never waits for a second pooled connection.
                        None => self.remember_schema(
                            store::schema_by_id_in(tx, id)
                                .await?
                                .ok_or(RegistryError::SchemaNotFound { id })?,
                        ),
                    };
                    self.parsed(&stored).await?
                }
                Source::Group(index) => match parsed_in_group.get(&index) {
                    Some(parsed) => Arc::clone(parsed),
                    None => {
                        let earlier = &group[index];
                        let (parsed, _) = self
                            .parse_stored(
                                earlier.schema_type,
                                &earlier.text,
                                &earlier.references,
                                "a schema registered in the same group",
                            )
                            .await?;
                        let parsed = Arc::new(parsed);
                        parsed_in_group.insert(index, Arc::clone(&parsed));
                        parsed
                    }
                },
            };
            issues.check(
                &mut checkers,
                level,
                &pending.parsed,
                row.version,
                &existing,
            )?;
        }
        Ok(issues)
    }

    /// Caches what a committed registration made known: its schema by id and its id by
    /// fingerprint (both immutable).
    fn remember_committed(&self, id: i32, pending: &Pending) {
        self.ids_by_fingerprint
            .write()
            .insert(pending.fingerprint.clone(), id);
        self.schemas.write().entry(id).or_insert_with(|| {
            Arc::new(StoredSchema {
                id,
                schema_type: pending.schema_type,
                text: pending.text.clone(),
                references: pending.references.clone(),
            })
        });
    }
}

/// `error` for every registration of a group of `count`: the first gets it, the others an
/// equivalent one (see [`RegistryError::for_another_request`]).
fn fail_all(error: RegistryError, count: usize) -> Vec<Result<Registered>> {
    let mut answers: Vec<Result<Registered>> = (1..count)
        .map(|_| Err(error.for_another_request()))
        .collect();
    answers.insert(0, Err(error));
    answers
}
