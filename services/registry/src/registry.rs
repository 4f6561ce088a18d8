//! The registry's behaviour, shared by every API it serves.
//!
//! Guarantees, across any number of replicas on one database:
//! - a schema (its stored text plus references) has exactly one global id, forever: the
//!   `schemas.fingerprint` unique constraint decides races;
//! - versions of a subject are allocated under the subject's row lock, so they are gap-free
//!   and never handed out twice; a soft-deleted version's number is never reused;
//! - every write is one transaction, and its change event is a NOTIFY inside it; concurrent
//!   registrations of one subject share one transaction (see [`batch`]), each answered only
//!   after it commits.
//!
//! Caches: schemas by id are immutable and cached forever. Subject versions and configs are
//! cached until a change event for them arrives from any replica (this replica invalidates its
//! own writes at once); while the event listener is disconnected those caches are bypassed.

#![warn(clippy::arithmetic_side_effects)]

mod batch;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::sync::broadcast;
use tributary_avro::Limits;
use tributary_avro::compat::CompatibilityLevel;

use crate::compatibility::Checkers;
pub use crate::compatibility::{CompatibilityIssue, CompatibilityReport, Issues};
use crate::error::{RegistryError, is_sqlstate};
use crate::events::Event;
use crate::group_commit::GroupCommit;
pub use crate::model::StoredSchema;
use crate::model::{
    ConfigRow, Mode, Reference, SchemaRow, SubjectVersion, VersionRow, VersionSelector,
};
use crate::schema_type::{NamedText, Origin, ParsedSchema, SchemaType};
use crate::store::{self, ConfigField, SubjectFilter};

type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// The largest schema id an IMPORT may give. Ids are a Postgres `integer` sequence (at most
/// 2,147,483,647); the 147,483,647 ids above this one are kept for the ids the registry assigns
/// itself, so no import can move the sequence so near its end that later registrations fail.
/// (Confluent takes any int: its next id is the largest plus one, which overflows past
/// 2,147,483,647.)
pub const MAX_IMPORT_ID: i32 = 2_000_000_000;

/// The largest version an IMPORT may give; the numbers above it are kept for the versions the
/// subject gets later. (Confluent takes any positive int: its next version is the latest plus
/// one, which overflows past 2,147,483,647.)
pub const MAX_IMPORT_VERSION: i32 = 2_000_000_000;
/// The most subjects one listing page returns.
pub const MAX_PAGE_SIZE: i32 = 10_000;

/// How many parsed schemas stay in memory. Parsed models are several times larger than their
/// text and are needed only for compatibility checks, so they are bounded; a 1,000-version
/// subject under FULL_TRANSITIVE still fits.
const PARSED_SCHEMA_CACHE_ENTRIES: usize = 2048;
/// And how much memory they may hold, as [`ParsedSchema::memory_estimate`] counts it (an Avro
/// model by its text; a Protobuf descriptor pool, about 80 KiB however small): 2,048 schemas of
/// a mebibyte, or of Protobuf pools, would otherwise hold gigabytes or 160 MiB.
const PARSED_SCHEMA_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// How many submitted schema texts [`Registry`] remembers the fingerprint of (about 120 bytes
/// each); when full, it starts over.
const SUBMITTED_TEXT_ENTRIES: usize = 4096;

/// A bounded map from schema id to parsed schema (with the length of its text), evicting the
/// oldest insertion first, within [`PARSED_SCHEMA_CACHE_ENTRIES`] and
/// [`PARSED_SCHEMA_CACHE_BYTES`].
#[derive(Debug, Default)]
struct ParsedCache {
    by_id: HashMap<i32, (Arc<ParsedSchema>, usize)>,
    order: VecDeque<i32>,
    bytes: usize,
}

impl ParsedCache {
    fn get(&self, id: i32) -> Option<Arc<ParsedSchema>> {
        self.by_id.get(&id).map(|(schema, _)| Arc::clone(schema))
    }

    fn insert(
        &mut self,
        id: i32,
        schema: Arc<ParsedSchema>,
        text_bytes: usize,
    ) -> Arc<ParsedSchema> {
        if let Some((existing, _)) = self.by_id.get(&id) {
            return Arc::clone(existing);
        }
        while self.order.len() >= PARSED_SCHEMA_CACHE_ENTRIES
            || (!self.order.is_empty()
                && self.bytes.saturating_add(text_bytes) > PARSED_SCHEMA_CACHE_BYTES)
        {
            if let Some(oldest) = self.order.pop_front()
                && let Some((_, size)) = self.by_id.remove(&oldest)
            {
                self.bytes = self.bytes.saturating_sub(size);
            }
        }
        self.order.push_back(id);
        self.bytes = self.bytes.saturating_add(text_bytes);
        self.by_id.insert(id, (Arc::clone(&schema), text_bytes));
        schema
    }
}

/// Hits and misses of one cache.
#[derive(Debug, Default)]
pub struct CacheCounters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

impl CacheCounters {
    fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }
}

/// Hits and misses of the registry's caches (a bypassed cache counts as a miss), read by the
/// `registry_cache_requests_total` counter.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub schema_by_id: CacheCounters,
    pub subject_version: CacheCounters,
    pub lookup: CacheCounters,
    pub config: CacheCounters,
    pub parsed_schema: CacheCounters,
}

impl CacheStats {
    /// Every cache with its metric label.
    pub fn all(&self) -> [(&'static str, &CacheCounters); 5] {
        [
            ("schema_by_id", &self.schema_by_id),
            ("subject_version", &self.subject_version),
            ("lookup", &self.lookup),
            ("config", &self.config),
            ("parsed_schema", &self.parsed_schema),
        ]
    }
}

/// Settings of the registry core.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// Schemas longer than this many bytes are refused (42209).
    pub max_schema_bytes: usize,
    /// The budgets of schema work (its `schema_bytes` is `max_schema_bytes`).
    pub limits: Limits,
}

/// A registration request, whichever API it came from.
#[derive(Debug, Clone, Default)]
pub struct RegisterRequest {
    pub subject: String,
    pub schema: String,
    pub schema_type: String,
    pub references: Vec<Reference>,
    pub normalize: bool,
    /// IMPORT mode: the id to use.
    pub id: Option<i32>,
    /// IMPORT mode: the version to use.
    pub version: Option<i32>,
}

/// The outcome of a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub id: i32,
    pub version: i32,
    pub schema: String,
    /// Whether this registration wrote a new version; `false` when the schema was already
    /// registered under the subject (the answer is the existing version, nothing changed).
    pub created: bool,
}

/// The registry: its database, its caches and its change feed.
#[derive(Debug)]
pub struct Registry {
    pool: PgPool,
    settings: RegistrySettings,
    schemas: RwLock<HashMap<i32, Arc<StoredSchema>>>,
    parsed: parking_lot::Mutex<ParsedCache>,
    ids_by_fingerprint: RwLock<HashMap<Vec<u8>, i32>>,
    /// The fingerprint of reference-free schema texts submitted before, by a digest of the text
    /// and the form asked for (canonical or normalized): re-registrations and lookups of a text
    /// seen before (every producer re-registers its schema at start-up) skip parsing it.
    /// Canonical forms are a function of the text alone, so entries never go stale.
    submitted: RwLock<HashMap<[u8; 32], Vec<u8>>>,
    subjects: RwLock<HashMap<String, Arc<Vec<VersionRow>>>>,
    /// The subjects with a version of a schema id (soft-deleted ones included), for deciding
    /// who may read the id.
    usages: RwLock<HashMap<i32, Arc<[String]>>>,
    configs: RwLock<Option<Arc<HashMap<String, ConfigRow>>>>,
    /// Bumped by every invalidation, so a load that raced with one is not cached.
    generation: AtomicU64,
    caches_trusted: AtomicBool,
    events: broadcast::Sender<Event>,
    cache_stats: CacheStats,
    /// Schema ids and live subjects, as last counted in Postgres.
    counts: parking_lot::Mutex<Option<(u64, u64)>>,
    /// Whether the health check last reached Postgres. While it does not, requests that need
    /// the database fail at once with 503/UNAVAILABLE instead of each waiting for a pooled
    /// connection (`--db-acquire-timeout-ms`) that cannot come.
    store_reachable: AtomicBool,
    /// The registrations of each subject waiting for their group's transaction.
    groups: GroupCommit<batch::Pending, Result<Registered>>,
}

impl Registry {
    pub fn new(pool: PgPool, settings: RegistrySettings) -> Self {
        let (events, _) = broadcast::channel(4096);
        Self {
            pool,
            settings,
            schemas: RwLock::default(),
            parsed: parking_lot::Mutex::default(),
            ids_by_fingerprint: RwLock::default(),
            submitted: RwLock::default(),
            subjects: RwLock::default(),
            usages: RwLock::default(),
            configs: RwLock::default(),
            generation: AtomicU64::new(0),
            caches_trusted: AtomicBool::new(false),
            events,
            cache_stats: CacheStats::default(),
            counts: parking_lot::Mutex::default(),
            store_reachable: AtomicBool::new(true),
            groups: GroupCommit::new(batch::MAX_GROUP),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Notes what the health check found (see [`Registry::db`]).
    pub fn set_store_reachable(&self, reachable: bool) {
        self.store_reachable.store(reachable, Ordering::Relaxed);
    }

    /// The pool, unless the health check found Postgres unreachable: then the request fails
    /// now with [`RegistryError::StoreUnavailable`] (503 with Retry-After, UNAVAILABLE).
    fn db(&self) -> Result<&PgPool, RegistryError> {
        if self.store_reachable.load(Ordering::Relaxed) {
            Ok(&self.pool)
        } else {
            Err(RegistryError::StoreUnavailable(sqlx::Error::Io(
                std::io::Error::other(
                    "Postgres is unreachable (the health check fails): not waiting for a connection",
                ),
            )))
        }
    }

    /// The number of schema ids and of live subjects, as last counted (see `set_counts`).
    pub fn counts(&self) -> Option<(u64, u64)> {
        *self.counts.lock()
    }

    /// Records the latest count of schema ids and live subjects.
    pub fn set_counts(&self, schemas: i64, subjects: i64) {
        *self.counts.lock() = Some((schemas.max(0) as u64, subjects.max(0) as u64));
    }

    /// Hits and misses of the caches so far.
    pub fn cache_stats(&self) -> &CacheStats {
        &self.cache_stats
    }

    /// The sender the event listener publishes on.
    pub fn event_sender(&self) -> broadcast::Sender<Event> {
        self.events.clone()
    }

    /// A feed of every change committed from now on, by any replica.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    // ----- cache maintenance -------------------------------------------------------------

    pub(crate) fn set_caches_trusted(&self, trusted: bool) {
        self.caches_trusted.store(trusted, Ordering::SeqCst);
    }

    pub(crate) fn clear_caches(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.subjects.write().clear();
        self.usages.write().clear();
        *self.configs.write() = None;
    }

    /// Drops what a change event makes stale.
    pub(crate) fn apply_event(&self, event: &Event) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        match event {
            Event::SchemaRegistered { subject, id, .. } => {
                self.subjects.write().remove(subject);
                self.usages.write().remove(id);
            }
            Event::VersionDeleted {
                subject, permanent, ..
            } => {
                self.subjects.write().remove(subject);
                // The event does not name the id; permanent deletes are rare.
                if *permanent {
                    self.usages.write().clear();
                }
            }
            Event::CompatibilityChanged { .. } | Event::ModeChanged { .. } => {
                *self.configs.write() = None
            }
            Event::Resync => self.clear_caches(),
        }
    }

    /// Whether the change listener is connected (so the caches are trusted).
    pub fn is_listening(&self) -> bool {
        self.trusted()
    }

    fn trusted(&self) -> bool {
        self.caches_trusted.load(Ordering::SeqCst)
    }

    // ----- cached reads -------------------------------------------------------------------

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
    fn remember_schema(&self, row: SchemaRow) -> Arc<StoredSchema> {
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

    async fn id_for_fingerprint(&self, fingerprint: &[u8]) -> Result<Option<i32>> {
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
    async fn versions_of(&self, subject: &str) -> Result<Arc<Vec<VersionRow>>> {
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

    async fn config_snapshot(&self) -> Result<Arc<HashMap<String, ConfigRow>>> {
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

    fn invalidate_subject(&self, subject: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.subjects.write().remove(subject);
    }

    fn invalidate_configs(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self.configs.write() = None;
    }

    /// The parsed form of a stored schema, with its references resolved.
    async fn parsed(&self, stored: &StoredSchema) -> Result<Arc<ParsedSchema>> {
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
    async fn parse_stored(
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
    async fn reference_texts(
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

    // ----- configuration ------------------------------------------------------------------

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

    // ----- reads --------------------------------------------------------------------------

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

    /// A stored schema with the types it takes from references inlined (Confluent's
    /// `format=resolved`); the stored text when it has no references.
    /// A stored schema in a `format` other than `default` (see [`SchemaType::formats`]); `None`
    /// when its type has no such format.
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

    // ----- writes -------------------------------------------------------------------------

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
        if !store::lock_subject(&mut tx, subject, false).await? {
            return Err(RegistryError::SubjectNotFound {
                subject: subject.to_owned(),
            });
        }
        let versions = store::versions_of(&mut *tx, subject).await?;
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
        if !store::lock_subject(&mut tx, subject, false).await? {
            return Err(RegistryError::SubjectNotFound {
                subject: subject.to_owned(),
            });
        }
        let versions = store::versions_of(&mut *tx, subject).await?;
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

    /// The fingerprint of a submitted schema in its canonical form (or normalized), remembered
    /// per text for reference-free schemas; with the parsed schema when it had to be parsed.
    async fn submitted_fingerprint(
        &self,
        schema: &str,
        schema_type: &str,
        references: &[Reference],
        normalized: bool,
    ) -> Result<(Vec<u8>, Option<Candidate>)> {
        let schema_type = validate_submission(schema, schema_type, self.settings.max_schema_bytes)?;
        let key = references.is_empty().then(|| {
            let mut hasher = Sha256::new();
            hasher.update(schema_type.as_str().as_bytes());
            hasher.update(if normalized { b"\0N\0" } else { b"\0C\0" });
            hasher.update(schema.as_bytes());
            <[u8; 32]>::from(hasher.finalize())
        });
        if let Some(known) = key.and_then(|key| self.submitted.read().get(&key).cloned()) {
            return Ok((known, None));
        }
        let candidate = self
            .prepare(schema, schema_type.as_str(), references)
            .await?;
        let text = stored_text(&candidate.parsed, normalized);
        let found = fingerprint(schema_type, &text, &candidate.references);
        if let Some(key) = key {
            let mut submitted = self.submitted.write();
            if submitted.len() >= SUBMITTED_TEXT_ENTRIES {
                submitted.clear();
            }
            submitted.insert(key, found.clone());
        }
        Ok((found, Some(candidate)))
    }

    /// Validates and parses a candidate schema with its references.
    async fn prepare(
        &self,
        schema: &str,
        schema_type: &str,
        references: &[Reference],
    ) -> Result<Candidate> {
        let schema_type = validate_submission(schema, schema_type, self.settings.max_schema_bytes)?;
        let mut resolved = Vec::with_capacity(references.len());
        for (index, reference) in references.iter().enumerate() {
            let selector = reference_selector(index, reference)?;
            let found = self.find_version(&reference.subject, selector, true).await.map_err(|_| RegistryError::InvalidSchema {
                reason: format!(
                    "references[{index}] ('{}') names version {} of subject '{}', which does not exist",
                    reference.name, reference.version, reference.subject
                ),
            })?;
            resolved.push(Reference {
                name: reference.name.clone(),
                subject: reference.subject.clone(),
                version: found.version,
            });
        }
        let limits = &self.settings.limits;
        let texts = self.reference_texts(&resolved, limits).await?;
        let parsed = parse_candidate(schema_type, schema, &texts, limits)?;
        Ok(Candidate {
            parsed: Arc::new(parsed),
            references: resolved,
        })
    }
}

// ----- the checks of a request that need no store -------------------------------------------
//
// Pure functions the handlers' paths run before (or without) the database; the fuzz targets of
// services/fuzz run them over arbitrary requests.

/// The id and version a registration gives (IMPORT mode), checked against the subject's `mode`:
/// refused in READONLY mode, required (the id) in IMPORT mode, refused in READWRITE mode, and
/// within [`MAX_IMPORT_ID`] and [`MAX_IMPORT_VERSION`]. 0 (and -1 for the version) mean none.
pub fn explicit_ids(request: &RegisterRequest, mode: Mode) -> Result<(Option<i32>, Option<i32>)> {
    let explicit_id = request.id.filter(|id| *id != 0);
    let explicit_version = request.version.filter(|v| *v != 0 && *v != -1);
    match mode {
        Mode::ReadOnly => {
            return Err(RegistryError::OperationNotPermitted {
                reason: format!("Subject {} is in read-only mode", request.subject),
            });
        }
        Mode::Import if explicit_id.is_none() => {
            return Err(RegistryError::OperationNotPermitted {
                reason: format!(
                    "Subject {} is not in read-write mode: in IMPORT mode a registration must give the schema id",
                    request.subject
                ),
            });
        }
        Mode::ReadWrite if explicit_id.is_some() || explicit_version.is_some() => {
            return Err(RegistryError::OperationNotPermitted {
                reason: format!(
                    "Subject {} is not in import mode: a schema id or version can only be given in IMPORT mode",
                    request.subject
                ),
            });
        }
        _ => {}
    }
    if let Some(id) = explicit_id.filter(|id| !(1..=MAX_IMPORT_ID).contains(id)) {
        return Err(RegistryError::IdOutOfRange {
            id,
            max: MAX_IMPORT_ID,
        });
    }
    if let Some(version) =
        explicit_version.filter(|version| !(1..=MAX_IMPORT_VERSION).contains(version))
    {
        return Err(RegistryError::VersionOutOfRange {
            version,
            max: MAX_IMPORT_VERSION,
        });
    }
    Ok((explicit_id, explicit_version))
}

/// The version a submitted schema's reference number `index` names, checked (a name, and a
/// version that is a number or "latest") before it is looked up.
pub fn reference_selector(index: usize, reference: &Reference) -> Result<VersionSelector> {
    if reference.name.is_empty() {
        return Err(RegistryError::InvalidSchema {
            reason: format!("references[{index}].name is empty"),
        });
    }
    VersionSelector::from_wire(reference.version)
}

/// A submitted schema parsed within the budgets, with the texts of its references (resolved
/// from the store, dependencies first).
pub fn parse_candidate(
    schema_type: SchemaType,
    schema: &str,
    references: &[NamedText],
    limits: &Limits,
) -> Result<ParsedSchema> {
    ParsedSchema::parse(schema_type, schema, references, limits, Origin::Submitted)
}

/// The text a registration stores (and fingerprints): the canonical string, or the normalized
/// one with `normalize`.
pub fn stored_text(parsed: &ParsedSchema, normalize: bool) -> String {
    parsed.stored_text(normalize)
}

/// What every submitted schema must be before it is parsed: of a type served, within the size
/// limit, not empty. Its type.
pub fn validate_submission(
    schema: &str,
    schema_type: &str,
    max_schema_bytes: usize,
) -> Result<SchemaType> {
    let schema_type = SchemaType::from_request(schema_type)?;
    if schema.len() > max_schema_bytes {
        return Err(RegistryError::SchemaTooLarge {
            size: schema.len(),
            limit: max_schema_bytes,
        });
    }
    if schema.trim().is_empty() {
        return Err(RegistryError::EmptySchema);
    }
    Ok(schema_type)
}

/// How many times a registration (or a group of them) is tried: after a conflict with a
/// concurrent one (a unique violation, a serialization failure, a deadlock).
const MAX_REGISTRATION_ATTEMPTS: u32 = 4;

struct Candidate {
    parsed: Arc<ParsedSchema>,
    references: Vec<Reference>,
}

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

/// The live versions a level tests a candidate against: the latest, or all for *_TRANSITIVE.
fn versions_to_check(level: CompatibilityLevel, versions: &[VersionRow]) -> Vec<VersionRow> {
    let live = versions.iter().filter(|row| !row.deleted).copied();
    if level.is_transitive() {
        live.collect()
    } else {
        live.last().into_iter().collect()
    }
}

/// What makes two schemas "the same": type, stored text and references.
pub fn fingerprint(schema_type: SchemaType, text: &str, references: &[Reference]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(schema_type.as_str().as_bytes());
    hasher.update(b"\0");
    hasher.update(text.as_bytes());
    for reference in references {
        hasher.update(b"\0");
        hasher.update(reference.name.as_bytes());
        hasher.update(b"\0");
        hasher.update(reference.subject.as_bytes());
        hasher.update(b"\0");
        hasher.update(reference.version.to_be_bytes());
    }
    hasher.finalize().to_vec()
}

/// Conflicts a registration is retried after: unique violations from a racing replica,
/// serialization failures and deadlocks.
fn is_retryable(error: &sqlx::Error) -> bool {
    ["23505", "40001", "40P01"]
        .iter()
        .any(|state| is_sqlstate(error, state))
}

/// Confluent's subject rules: non-empty, no control characters; here also at most 255 bytes, and
/// not a context-qualified name (`:.context:subject`): this registry has no schema contexts, so
/// such a name is refused rather than stored as a plain subject.
pub fn validate_subject(subject: &str) -> Result<()> {
    let reason = if subject.is_empty() {
        "it is empty"
    } else if subject.starts_with(":.") {
        "schema contexts are not supported: this registry has the default context only, so a subject cannot start with ':.'"
    } else if subject.len() > 255 {
        "it is longer than 255 bytes"
    } else if subject.chars().any(char::is_control) {
        "it contains control characters"
    } else {
        return Ok(());
    };
    Err(RegistryError::InvalidSubject {
        subject: subject.escape_debug().to_string(),
        reason: reason.to_owned(),
    })
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

    #[test]
    fn fingerprints_differ_by_references() {
        let reference = Reference {
            name: "a.B".into(),
            subject: "b".into(),
            version: 1,
        };
        let avro = SchemaType::Avro;
        assert_ne!(
            fingerprint(avro, "\"int\"", &[]),
            fingerprint(avro, "\"int\"", std::slice::from_ref(&reference))
        );
        assert_eq!(
            fingerprint(avro, "\"int\"", std::slice::from_ref(&reference)),
            fingerprint(avro, "\"int\"", &[reference])
        );
        // And by type: the same text of another type is another schema.
        assert_ne!(
            fingerprint(avro, "x", &[]),
            fingerprint(SchemaType::Protobuf, "x", &[])
        );
    }

    #[test]
    fn the_parsed_cache_is_bounded_and_evicts_the_oldest_first() {
        let schema = Arc::new(ParsedSchema::Avro(
            tributary_avro::Schema::parse(r#""int""#, &[]).expect("parses"),
        ));
        let mut cache = ParsedCache::default();
        for id in 0..=PARSED_SCHEMA_CACHE_ENTRIES as i32 {
            cache.insert(id, Arc::clone(&schema), 5);
        }
        assert_eq!(cache.by_id.len(), PARSED_SCHEMA_CACHE_ENTRIES);
        assert!(cache.get(0).is_none(), "the oldest entry was evicted");
        assert!(cache.get(1).is_some());
        assert!(cache.get(PARSED_SCHEMA_CACHE_ENTRIES as i32).is_some());
        // By size too: mebibyte schemas evict the oldest past the byte budget.
        let mut cache = ParsedCache::default();
        for id in 0..100 {
            cache.insert(id, Arc::clone(&schema), 1024 * 1024);
        }
        assert!(cache.bytes <= PARSED_SCHEMA_CACHE_BYTES);
        assert_eq!(cache.by_id.len(), PARSED_SCHEMA_CACHE_BYTES / (1024 * 1024));
        assert!(cache.get(99).is_some() && cache.get(0).is_none());
        // One schema larger than the budget is still kept (alone).
        cache.insert(1000, Arc::clone(&schema), PARSED_SCHEMA_CACHE_BYTES * 2);
        assert!(cache.get(1000).is_some());
        assert_eq!(cache.by_id.len(), 1);
    }

    #[test]
    fn parse_errors_say_invalid_schema_once() {
        let error = tributary_avro::Schema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"strin"}]}"#,
            &[],
        )
        .expect_err("unknown type");
        let message = RegistryError::from(error).to_string();
        assert!(message.starts_with("Invalid schema "), "{message}");
        assert_eq!(
            message.to_lowercase().matches("invalid schema").count(),
            1,
            "{message}"
        );
        assert!(
            message.contains("/fields/0/type") && message.contains("strin"),
            "{message}"
        );
    }

    #[test]
    fn subjects_are_validated() {
        assert!(validate_subject("orders-value").is_ok());
        assert!(matches!(
            validate_subject(""),
            Err(RegistryError::InvalidSubject { .. })
        ));
        assert!(matches!(
            validate_subject("a\nb"),
            Err(RegistryError::InvalidSubject { .. })
        ));
        assert!(matches!(
            validate_subject(&"x".repeat(256)),
            Err(RegistryError::InvalidSubject { .. })
        ));
        for qualified in [":.ctx:orders", ":.:orders", ":."] {
            assert!(matches!(
                validate_subject(qualified),
                Err(RegistryError::InvalidSubject { .. })
            ));
        }
        assert!(validate_subject("a:.b").is_ok());
    }
}
