//! Reading the lists: configuration sets compiled per VM, the per-VM feed cache, and the
//! per-request [`Lookup`] over every list. No host calls.

use std::collections::HashSet;

use super::*;

/// Configuration entries, compiled once per VM into hash sets.
#[derive(Debug, Clone, Default)]
pub struct ConfigLists {
    sets: [[FnvSet; 5]; 2],
}

/// Configuration values never come from requests, so a fast non-keyed hash is safe here.
pub(super) type FnvSet = fnv::FnvHashSet<String>;

impl ConfigLists {
    /// Compile the configuration's `deny_list` and `allow_list`.
    pub fn new(deny: &IdLists, allow: &IdLists) -> ConfigLists {
        let mut c = ConfigLists::default();
        for (list, src) in [(ListKind::Deny, deny), (ListKind::Allow, allow)] {
            for t in IdType::ALL {
                if let Some(set) = c
                    .sets
                    .get_mut(list_idx(list))
                    .and_then(|l| l.get_mut(type_idx(t)))
                {
                    set.extend(src.get(t).iter().cloned());
                }
            }
        }
        c
    }

    fn set(&self, list: ListKind, t: IdType) -> Option<&FnvSet> {
        self.sets
            .get(list_idx(list))
            .and_then(|l| l.get(type_idx(t)))
    }

    /// Is `value` in the configured list?
    pub fn contains(&self, list: ListKind, t: IdType, value: &str) -> bool {
        self.set(list, t).is_some_and(|s| s.contains(value))
    }

    /// The configured values of one type (unordered).
    pub fn values(&self, list: ListKind, t: IdType) -> impl Iterator<Item = &String> {
        self.set(list, t).into_iter().flatten()
    }

    /// Number of configured entries of one type.
    pub fn len(&self, list: ListKind, t: IdType) -> usize {
        self.set(list, t).map_or(0, HashSet::len)
    }

    /// True when no entry is configured at all.
    pub fn is_empty(&self) -> bool {
        self.sets.iter().flatten().all(HashSet::is_empty)
    }
}

/// Slots of a [`FeedCache`] (direct-mapped).
pub const FEED_CACHE_SLOTS: usize = 2048;
/// Buckets larger than this are not cached, which bounds a cache to 8 MiB (a feed bucket holds
/// about 64 entries, about 1 KiB for tokens, keys and addresses).
pub const FEED_CACHE_MAX_BUCKET: usize = 4096;

/// A per-VM cache of attack-list (feed) buckets, direct-mapped on (type, bucket). An entry read
/// under generation `g` is served only while `aw:meta` still says `g`: the live slot of a
/// generation is written completely before the flip and is not written again until the
/// generation has moved on, so a cached bucket can never be staler than the meta read of the
/// request that uses it.
#[derive(Debug, Default)]
pub struct FeedCache {
    slots: std::cell::RefCell<Vec<Option<CachedBucket>>>,
}

#[derive(Debug)]
pub(super) struct CachedBucket {
    generation: u32,
    type_idx: usize,
    bucket: u32,
    bytes: Vec<u8>,
}

impl FeedCache {
    fn slot(type_idx: usize, bucket: u32) -> usize {
        (bucket as usize).wrapping_mul(5).wrapping_add(type_idx) % FEED_CACHE_SLOTS
    }

    /// Look `value` up in feed bucket (`generation`, `type_idx`, `bucket`), reading it with
    /// `read` on a miss.
    pub(super) fn find(
        &self,
        key: (u32, usize, u32),
        value: &str,
        hash: u64,
        now: u64,
        read: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Option<Source> {
        let (generation, type_idx, bucket) = key;
        let i = Self::slot(type_idx, bucket);
        let find = |b: &[u8]| find_feed(b, value, hash, now);
        let Ok(mut slots) = self.slots.try_borrow_mut() else {
            return read().and_then(|b| find(&b));
        };
        if slots.is_empty() {
            slots.resize_with(FEED_CACHE_SLOTS, || None);
        }
        if let Some(Some(c)) = slots.get(i) {
            if c.generation == generation && c.type_idx == type_idx && c.bucket == bucket {
                return find(&c.bytes);
            }
        }
        let bytes = read()?;
        let found = find(&bytes);
        if bytes.len() <= FEED_CACHE_MAX_BUCKET {
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(CachedBucket {
                    generation,
                    type_idx,
                    bucket,
                    bytes,
                });
            }
        }
        found
    }
}

/// A per-request view over every list: configuration sets plus one read of `aw:meta`.
pub struct Lookup<'a, S: Store> {
    /// The shared data the lookups read.
    pub store: &'a S,
    config: &'a ConfigLists,
    /// Feed buckets this VM read earlier (none: read every bucket).
    cache: Option<&'a FeedCache>,
    /// `aw:meta`, read on the first lookup that needs shared data (never for requests whose
    /// identifiers are all absent or in the configuration).
    meta: std::cell::OnceCell<Meta>,
    now: u64,
    /// Whether detected entries count (`enable_ase_detected_attack`).
    pub detected_enabled: bool,
}

impl<'a, S: Store> Lookup<'a, S> {
    /// Start a lookup for one request at time `now` (Unix seconds).
    pub fn new(store: &'a S, config: &'a ConfigLists, now: u64, detected_enabled: bool) -> Self {
        Lookup {
            store,
            config,
            cache: None,
            meta: std::cell::OnceCell::new(),
            now,
            detected_enabled,
        }
    }

    /// Serve feed buckets from (and keep them in) `cache`.
    pub fn with_cache(mut self, cache: &'a FeedCache) -> Self {
        self.cache = Some(cache);
        self
    }

    fn meta(&self) -> &Meta {
        self.meta.get_or_init(|| Meta::load(self.store).0)
    }

    /// Where `value` is on `list` (first source found: config, dynamic, feed), if anywhere.
    pub fn find(&self, list: ListKind, t: IdType, value: &str) -> Option<Source> {
        if value.is_empty() {
            return None;
        }
        if self.config.contains(list, t, value) {
            return Some(Source::Config);
        }
        let ti = type_idx(t);
        // Hashed at most once, and only when shared data holds entries of this type: a value
        // may be a kilobyte-long token.
        let fnv = std::cell::OnceCell::new();
        let h = || *fnv.get_or_init(|| fnv1a(value.as_bytes()));
        let meta = self.meta();
        let dyn_count = meta
            .dyn_count
            .get(list_idx(list))
            .and_then(|l| l.get(ti))
            .copied()
            .unwrap_or(0);
        if dyn_count > 0 {
            let key = dyn_key(list, t, bucket_of(h(), DYN_BUCKETS));
            if let (Some(b), _) = self.store.get(&key) {
                if let Some(src) = find(&b, value, self.now) {
                    if !src.is_detection() || self.detected_enabled {
                        return Some(src);
                    }
                }
            }
        }
        if list == ListKind::Deny && meta.generation > 0 {
            let count = meta.feed_count.get(ti).copied().unwrap_or(0);
            let nb = meta.feed_buckets.get(ti).copied().unwrap_or(0);
            if count > 0 && nb > 0 {
                let h = feed_hash_of(h());
                let bucket = feed_bucket_of(h, nb);
                let read = || self.store.get(&feed_key(meta.generation % 2, t, bucket)).0;
                return match self.cache {
                    Some(c) => c.find((meta.generation, ti, bucket), value, h, self.now, read),
                    None => read().and_then(|b| find_feed(&b, value, h, self.now)),
                };
            }
        }
        None
    }
}
