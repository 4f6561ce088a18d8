//! Reads through the replica's caches: schemas by id (immutable, kept), subject versions,
//! schema usages and configs (kept while the change listener is connected and no change event
//! for them arrived; a load that raced with an invalidation is not kept), parsed schemas, and
//! the texts of a schema's references.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tributary_avro::Limits;

use super::{Registry, Result};
use crate::error::RegistryError;
use crate::model::{ConfigRow, Reference, SchemaRow, StoredSchema, VersionRow, VersionSelector};
use crate::schema_type::{NamedText, Origin, ParsedSchema, SchemaType};
use crate::store;

impl Registry {
    /// The schema with a global id.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn schema_by_id(&self, id: i32) -> Result<Arc<StoredSchema>> {
        if let Some(schema) = self.schemas.read().get(&id) {
            self.cache_stats.schema_by_id.hit();
            return Ok(Arc::clone(schema));
        }
        self.cache_stats.schema_by_id.miss();
        if id <= 0 {
            return Err(RegistryError::SchemaNotFound { id });
        }
        let row = store::schema_by_id(self.db()?, id)
            .await?
            .ok_or(RegistryError::SchemaNotFound { id })?;
        Ok(self.remember_schema(row))
    }

    /// Caches a stored schema row (rows are immutable) and returns it.
    pub(super) fn remember_schema(&self, row: SchemaRow) -> Arc<StoredSchema> {
        let id = row.id;
        let schema = Arc::new(StoredSchema {
            id: row.id,
            schema_type: SchemaType::from_stored(&row.schema_type),
            text: row.text,
            references: row.references,
        });
        self.ids_by_fingerprint.write().insert(row.fingerprint, id);
        Arc::clone(self.schemas.write().entry(id).or_insert(schema))
    }

    pub(super) async fn id_for_fingerprint(&self, fingerprint: &[u8]) -> Result<Option<i32>> {
        if let Some(id) = self.ids_by_fingerprint.read().get(fingerprint) {
            self.cache_stats.lookup.hit();
            return Ok(Some(*id));
        }
        self.cache_stats.lookup.miss();
        let id = store::schema_id_by_fingerprint(self.db()?, fingerprint).await?;
        if let Some(id) = id {
            self.ids_by_fingerprint
                .write()
                .insert(fingerprint.to_vec(), id);
        }
        Ok(id)
    }

    /// Every version row of a subject (deleted ones included), ascending; empty if none.
    pub(super) async fn versions_of(&self, subject: &str) -> Result<Arc<Vec<VersionRow>>> {
        if self.trusted()
            && let Some(versions) = self.subjects.read().get(subject)
        {
            self.cache_stats.subject_version.hit();
            return Ok(Arc::clone(versions));
        }
        self.cache_stats.subject_version.miss();
        let generation = self.generation.load(Ordering::SeqCst);
        let versions = Arc::new(store::versions_of(self.db()?, subject).await?);
        let mut subjects = self.subjects.write();
        if self.trusted() && self.generation.load(Ordering::SeqCst) == generation {
            subjects.insert(subject.to_owned(), Arc::clone(&versions));
        }
        Ok(versions)
    }

    /// The subjects with a version of schema `id`, soft-deleted versions included, each once
    /// (40403 for an unknown id). Cached like the subjects' versions: a registration of the id
    /// under a subject, a permanent delete or missed events drop it, on every replica.
    pub async fn subjects_using(&self, id: i32) -> Result<Arc<[String]>> {
        if self.trusted()
            && let Some(subjects) = self.usages.read().get(&id)
        {
            return Ok(Arc::clone(subjects));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let mut subjects: Vec<String> = self
            .schema_usages(id, true)
            .await?
            .into_iter()
            .map(|(subject, _)| subject)
            .collect();
        subjects.sort_unstable();
        subjects.dedup();
        let subjects: Arc<[String]> = subjects.into();
        let mut cached = self.usages.write();
        if self.trusted() && self.generation.load(Ordering::SeqCst) == generation {
            cached.insert(id, Arc::clone(&subjects));
        }
        Ok(subjects)
    }

    pub(super) async fn config_snapshot(&self) -> Result<Arc<HashMap<String, ConfigRow>>> {
        if self.trusted()
            && let Some(configs) = self.configs.read().as_ref()
        {
            self.cache_stats.config.hit();
            return Ok(Arc::clone(configs));
        }
        self.cache_stats.config.miss();
        let generation = self.generation.load(Ordering::SeqCst);
        let configs: Arc<HashMap<_, _>> =
            Arc::new(store::configs(self.db()?).await?.into_iter().collect());
        let mut cached = self.configs.write();
        if self.trusted() && self.generation.load(Ordering::SeqCst) == generation {
            *cached = Some(Arc::clone(&configs));
        }
        Ok(configs)
    }

    /// The parsed form of a stored schema, with its references resolved.
    pub(super) async fn parsed(&self, stored: &StoredSchema) -> Result<Arc<ParsedSchema>> {
        if let Some(parsed) = self.parsed.lock().get(stored.id) {
            self.cache_stats.parsed_schema.hit();
            return Ok(parsed);
        }
        self.cache_stats.parsed_schema.miss();
        let (parsed, weight) = self
            .parse_stored(
                stored.schema_type,
                &stored.text,
                &stored.references,
                &format!("stored schema {}", stored.id),
            )
            .await?;
        Ok(self
            .parsed
            .lock()
            .insert(stored.id, Arc::new(parsed), weight))
    }

    /// Parses a schema as stored (`what` names it in the error), with the memory estimate the
    /// parsed cache weighs it by; caches nothing.
    pub(super) async fn parse_stored(
        &self,
        schema_type: SchemaType,
        text: &str,
        references: &[Reference],
        what: &str,
    ) -> Result<(ParsedSchema, usize)> {
        // A stored schema is never refused again, as in Confluent: defaults were validated when
        // it was registered (or it was imported as is), and the structural budgets are those
        // it was accepted under, whatever they are now.
        let limits = self.settings.limits.for_stored();
        let texts = self.reference_texts(references, &limits).await?;
        let parsed = ParsedSchema::parse(
            schema_type,
            text,
            &texts,
            &self.settings.limits,
            Origin::Stored,
        )
        .map_err(|error| RegistryError::InvalidSchema {
            reason: format!("{what} no longer parses: {error}"),
        })?;
        let text_bytes = texts.iter().fold(text.len(), |sum, named| {
            sum.saturating_add(named.text.len())
        });
        let weight = parsed.memory_estimate(text_bytes);
        Ok((parsed, weight))
    }

    /// The texts of everything `references` needs, transitively, dependencies first, each
    /// once: a depth-first walk of the reference graph that expands a schema the first time it
    /// is met (a diamond costs its edges, not its paths). At most `limits.references` schemas,
    /// nested at most `limits.reference_depth` deep.
    pub(super) async fn reference_texts(
        &self,
        references: &[Reference],
        limits: &Limits,
    ) -> Result<Vec<NamedText>> {
        let mut texts = Vec::new();
        // Schemas already written to `texts`, and those met (expanded or about to be).
        let mut done: HashSet<i32> = HashSet::new();
        let mut met: HashSet<i32> = HashSet::new();
        // An explicit stack instead of recursion: (reference, depth, children already pushed).
        let mut stack: Vec<(Reference, usize, bool)> = references
            .iter()
            .rev()
            .map(|r| (r.clone(), 1, false))
            .collect();
        while let Some((reference, depth, expanded)) = stack.pop() {
            if depth > limits.reference_depth {
                return Err(RegistryError::OverLimit {
                    source: tributary_avro::LimitExceeded {
                        limit: tributary_avro::Limit::ReferenceDepth,
                        max: u64::try_from(limits.reference_depth).unwrap_or(u64::MAX),
                        what: format!(
                            "reference '{}' (subject '{}' version {})",
                            reference.name, reference.subject, reference.version
                        ),
                    },
                    path: None,
                });
            }
            let version = self
                .find_version(
                    &reference.subject,
                    VersionSelector::Number(reference.version),
                    true,
                )
                .await
                .map_err(|_| RegistryError::InvalidSchema {
                    reason: format!(
                        "reference '{}' names version {} of subject '{}', which does not exist",
                        reference.name, reference.version, reference.subject
                    ),
                })?;
            if done.contains(&version.id) {
                continue;
            }
            if expanded {
                done.insert(version.id);
                texts.push(NamedText {
                    name: reference.name.clone(),
                    text: version.schema.text.clone(),
                });
            } else {
                // Met before but not done: a cycle (only IMPORT mode can make one) walks on
                // until the depth budget stops it.
                if met.insert(version.id) && met.len() > limits.references {
                    return Err(RegistryError::OverLimit {
                        source: tributary_avro::LimitExceeded {
                            limit: tributary_avro::Limit::References,
                            max: u64::try_from(limits.references).unwrap_or(u64::MAX),
                            what: format!(
                                "the references (at subject '{}' version {})",
                                reference.subject, reference.version
                            ),
                        },
                        path: None,
                    });
                }
                stack.push((reference, depth, true));
                for child in version.schema.references.iter().rev() {
                    stack.push((child.clone(), depth.saturating_add(1), false));
                }
            }
        }
        Ok(texts)
    }
}
