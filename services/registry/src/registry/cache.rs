//! The registry's bounded cache of parsed schemas, and the hit and miss counters of its caches.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::schema_type::ParsedSchema;

/// How many parsed schemas stay in memory. Parsed models are several times larger than their
/// text and are needed only for compatibility checks, so they are bounded; a 1,000-version
/// subject under FULL_TRANSITIVE still fits.
const PARSED_SCHEMA_CACHE_ENTRIES: usize = 2048;
/// And how much memory they may hold, as [`ParsedSchema::memory_estimate`] counts it (an Avro
/// model by its text; a Protobuf descriptor pool, about 80 KiB however small): 2,048 schemas of
/// a mebibyte, or of Protobuf pools, would otherwise hold gigabytes or 160 MiB.
const PARSED_SCHEMA_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// A bounded map from schema id to parsed schema (with the length of its text), evicting the
/// oldest insertion first, within [`PARSED_SCHEMA_CACHE_ENTRIES`] and
/// [`PARSED_SCHEMA_CACHE_BYTES`].
#[derive(Debug, Default)]
pub(super) struct ParsedCache {
    by_id: HashMap<i32, (Arc<ParsedSchema>, usize)>,
    order: VecDeque<i32>,
    bytes: usize,
}

impl ParsedCache {
    pub(super) fn get(&self, id: i32) -> Option<Arc<ParsedSchema>> {
        self.by_id.get(&id).map(|(schema, _)| Arc::clone(schema))
    }

    pub(super) fn insert(
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
    pub(super) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn miss(&self) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
