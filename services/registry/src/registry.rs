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
//!
//! This module holds the [`Registry`] with its caches' maintenance; its operations are in the
//! submodules: [`cached`] (reads through the caches), [`reads`], [`config`] (levels and
//! modes), [`writes`] (registrations, [`batch`] for grouped ones, and deletes) and
//! [`submission`] (a submitted schema's checks, parse and fingerprint).

#![warn(clippy::arithmetic_side_effects)]

mod batch;
mod cache;
mod cached;
mod config;
mod reads;
mod submission;
mod writes;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;
use sqlx::PgPool;
use tokio::sync::broadcast;
use tributary_avro::Limits;

use self::cache::ParsedCache;
pub use self::cache::{CacheCounters, CacheStats};
pub use self::submission::{
    explicit_ids, fingerprint, parse_candidate, reference_selector, stored_text, validate_subject,
    validate_submission,
};
pub use crate::compatibility::{CompatibilityIssue, CompatibilityReport, Issues};
use crate::error::{RegistryError, is_sqlstate};
use crate::events::Event;
use crate::group_commit::GroupCommit;
pub use crate::model::StoredSchema;
use crate::model::{ConfigRow, Reference, VersionRow};

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

    fn invalidate_subject(&self, subject: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.subjects.write().remove(subject);
    }

    fn invalidate_configs(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self.configs.write() = None;
    }
}

/// How many times a registration (or a group of them) is tried: after a conflict with a
/// concurrent one (a unique violation, a serialization failure, a deadlock).
const MAX_REGISTRATION_ATTEMPTS: u32 = 4;

/// Conflicts a registration is retried after: unique violations from a racing replica,
/// serialization failures and deadlocks.
fn is_retryable(error: &sqlx::Error) -> bool {
    ["23505", "40001", "40P01"]
        .iter()
        .any(|state| is_sqlstate(error, state))
}
