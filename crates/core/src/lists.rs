//! Deny and allow lists held in proxy-wasm shared data: the key layout, the bucket encoding, lookups,
//! CAS-safe updates and the atomic replacement of the attack-list feed. Talks to shared data only
//! through the [`Store`] trait, so it is pure and tested natively against an in-memory store.
//!
//! Layout (one process-wide map per `vm_id`; there is no delete, an empty value means absent):
//! - `aw:meta` — a small binary header: the feed generation, bucket counts and entry counts per
//!   (list, family, type). Read once per request so empty families are never looked up.
//! - `aw:{d|a}:<type>:<bucket>` — *dynamic* deny / allow entries (admin API and detected attacks),
//!   [`DYN_BUCKETS`] buckets per type, updated one bucket at a time with CAS.
//! - `aw:f<slot>:<type>:<bucket>` — the attack-list feed (deny only). A poll writes the whole new
//!   set into the inactive slot, then flips the generation in `aw:meta` with CAS: requests see the
//!   old set or the new one, never a mix. The old slot is then cleared.
//!
//! A bucket is a concatenation of entries `[fp u32][expires u32][source u8][len u16][value]`
//! (little-endian; `expires` in Unix seconds, 0 = never). Lookups copy one bucket (a few hundred
//! bytes at 1,000,000 entries per type) and compare values exactly, so a hash collision can never
//! block the wrong client. Configuration entries are not stored here: every VM holds them in a
//! `HashSet` compiled from the configuration.
//!
//! Feed buckets never change while their generation is live (a replacement writes the other slot,
//! then flips the generation), so each VM keeps the feed buckets it read in a small
//! [`FeedCache`] keyed by generation: a repeat client costs one `aw:meta` read, not one read per
//! identifier. Dynamic buckets change in place and are always read fresh.

use std::collections::{HashMap, HashSet};

use crate::config::IdLists;
pub use crate::ids::{IdType, ListKind, Source};

/// Buckets per type for dynamic (admin / detected) entries.
pub const DYN_BUCKETS: u32 = 4096;
/// Upper bound of buckets per type for the feed.
pub const MAX_FEED_BUCKETS: u32 = 65536;
/// Longest value stored (longer values are refused).
pub const MAX_VALUE_LEN: usize = 8192;
const META_KEY: &str = "aw:meta";
const META_VERSION: u32 = 1;
const CAS_RETRIES: usize = 64;

/// Shared-data access: implemented by the host adapter over proxy-wasm shared data, and by
/// [`MemStore`] for tests.
pub trait Store {
    /// The value and its CAS token (`None` when the key was never written).
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Write; `cas: None` writes unconditionally. Returns false on CAS mismatch or failure.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}

fn type_idx(t: IdType) -> usize {
    t.index()
}

fn list_idx(l: ListKind) -> usize {
    match l {
        ListKind::Deny => 0,
        ListKind::Allow => 1,
    }
}

fn list_prefix(l: ListKind) -> &'static str {
    match l {
        ListKind::Deny => "d",
        ListKind::Allow => "a",
    }
}

/// FNV-1a, 64-bit: stable across VMs and processes (bucket choice and fingerprint).
fn fnv1a(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(bytes);
    h.finish()
}

fn bucket_of(hash: u64, buckets: u32) -> u32 {
    ((hash >> 32) as u32) % buckets.max(1)
}

fn fingerprint(hash: u64) -> u32 {
    hash as u32
}

/// The decoded `aw:meta` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// Feed generation; the active slot is `generation % 2`. 0 = no feed loaded yet.
    pub generation: u32,
    /// Feed bucket count per type for the active generation.
    pub feed_buckets: [u32; 5],
    /// Feed entry count per type.
    pub feed_count: [u32; 5],
    /// Dynamic entry count per (list, type) (entries ever added minus removed; expired entries
    /// still count until an update of their bucket drops them).
    pub dyn_count: [[u32; 5]; 2],
}

impl Meta {
    const LEN: usize = 4 * (2 + 5 + 5 + 10);

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::LEN);
        v.extend_from_slice(&META_VERSION.to_le_bytes());
        v.extend_from_slice(&self.generation.to_le_bytes());
        for x in self
            .feed_buckets
            .iter()
            .chain(self.feed_count.iter())
            .chain(self.dyn_count.iter().flatten())
        {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v
    }

    fn decode(b: &[u8]) -> Meta {
        let mut words = b
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap_or([0; 4])));
        if b.len() != Self::LEN || words.next() != Some(META_VERSION) {
            return Meta::default();
        }
        let mut m = Meta {
            generation: words.next().unwrap_or(0),
            ..Meta::default()
        };
        for x in m
            .feed_buckets
            .iter_mut()
            .chain(m.feed_count.iter_mut())
            .chain(m.dyn_count.iter_mut().flatten())
        {
            *x = words.next().unwrap_or(0);
        }
        m
    }

    /// Read the header (a missing or foreign header reads as empty).
    pub fn load(store: &impl Store) -> (Meta, Option<u32>) {
        let (v, cas) = store.get(META_KEY);
        (v.map(|b| Meta::decode(&b)).unwrap_or_default(), cas)
    }

    /// Apply `f` to the header with CAS, retrying on concurrent writers.
    fn update(store: &impl Store, mut f: impl FnMut(&mut Meta)) -> bool {
        for _ in 0..CAS_RETRIES {
            let (mut m, cas) = Meta::load(store);
            f(&mut m);
            let bytes = m.encode();
            if store.set(META_KEY, &bytes, Some(cas.unwrap_or(0))) {
                // A first write cannot be CAS-protected (the host has no "create if absent"):
                // verify it survived, else redo the update on top of whoever won.
                if cas.is_none() && store.get(META_KEY).0.as_deref() != Some(&bytes[..]) {
                    continue;
                }
                return true;
            }
        }
        false
    }
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: String,
    pub source: Source,
    /// Unix seconds; 0 = never expires.
    pub expires_at: u64,
}

fn encode_entry(out: &mut Vec<u8>, e: &Entry) {
    encode_raw(
        out,
        fnv1a(e.value.as_bytes()),
        &e.value,
        e.source,
        e.expires_at,
    );
}

/// Append one entry whose value hashes to `hash` (see the bucket layout above).
fn encode_raw(out: &mut Vec<u8>, hash: u64, value: &str, source: Source, expires_at: u64) {
    out.extend_from_slice(&fingerprint(hash).to_le_bytes());
    out.extend_from_slice(&(expires_at.min(u64::from(u32::MAX)) as u32).to_le_bytes());
    out.push(source.code());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value.as_bytes());
}

/// Walk a bucket's raw entries: (fingerprint, expires, source, value bytes). Stops at a truncated
/// entry instead of panicking.
fn walk(bucket: &[u8]) -> impl Iterator<Item = (u32, u32, u8, &[u8])> {
    let mut rest = bucket;
    std::iter::from_fn(move || {
        let (head, tail) = rest.split_first_chunk::<11>()?;
        let fp = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let exp = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let src = head[8];
        let len = usize::from(u16::from_le_bytes([head[9], head[10]]));
        let value = tail.get(..len)?;
        rest = tail.get(len..)?;
        Some((fp, exp, src, value))
    })
}

fn decode_bucket(bucket: &[u8]) -> Vec<Entry> {
    walk(bucket)
        .map(|(_, exp, src, v)| Entry {
            value: crate::parse::lossy(v.to_vec()),
            source: Source::from_code(src),
            expires_at: u64::from(exp),
        })
        .collect()
}

fn live(exp: u32, now: u64) -> bool {
    exp == 0 || u64::from(exp) > now
}

/// The `expires_at` (Unix seconds, 0 = never) of an entry created at `now_ms` (Unix milliseconds)
/// that must live `ttl_s` seconds (0 = forever).
///
/// Entries are live while the current whole second is below `expires_at`, so the time is rounded
/// up: the entry lives at least `ttl_s` seconds and less than one second more. Rounding down
/// would let a 1-second entry created at `x.999` die a millisecond later.
pub fn expiry(now_ms: u64, ttl_s: u64) -> u64 {
    if ttl_s == 0 {
        return 0;
    }
    now_ms
        .saturating_add(ttl_s.saturating_mul(1000))
        .div_ceil(1000)
}

/// Find a live entry for `value` in a bucket; returns its source.
fn find(bucket: &[u8], value: &str, now: u64) -> Option<Source> {
    let fp = fingerprint(fnv1a(value.as_bytes()));
    walk(bucket)
        .find(|(f, exp, _, v)| *f == fp && *v == value.as_bytes() && live(*exp, now))
        .map(|(_, _, s, _)| Source::from_code(s))
}

/// Append `n` in decimal (keys are built on the request path: no `format!` machinery).
fn push_u32(out: &mut String, n: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for b in buf.get(i..).unwrap_or_default() {
        out.push(char::from(*b));
    }
}

fn dyn_key(list: ListKind, t: IdType, bucket: u32) -> String {
    let mut k = String::with_capacity(24);
    k.push_str("aw:");
    k.push_str(list_prefix(list));
    k.push(':');
    k.push_str(t.as_str());
    k.push(':');
    push_u32(&mut k, bucket);
    k
}

fn feed_key(slot: u32, t: IdType, bucket: u32) -> String {
    let mut k = String::with_capacity(24);
    k.push_str("aw:f");
    push_u32(&mut k, slot);
    k.push(':');
    k.push_str(t.as_str());
    k.push(':');
    push_u32(&mut k, bucket);
    k
}

/// Configuration entries, compiled once per VM into hash sets.
#[derive(Debug, Clone, Default)]
pub struct ConfigLists {
    sets: [[FnvSet; 5]; 2],
}

/// Configuration values never come from requests, so a fast non-keyed hash is safe here.
type FnvSet = fnv::FnvHashSet<String>;

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
/// Buckets larger than this are not cached, which bounds a cache to 8 MiB (a bucket holds about
/// 8 to 16 entries, a few hundred bytes for tokens, keys and addresses).
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
struct CachedBucket {
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
    fn find(
        &self,
        key: (u32, usize, u32),
        value: &str,
        now: u64,
        read: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Option<Source> {
        let (generation, type_idx, bucket) = key;
        let i = Self::slot(type_idx, bucket);
        let Ok(mut slots) = self.slots.try_borrow_mut() else {
            return read().and_then(|b| find(&b, value, now));
        };
        if slots.is_empty() {
            slots.resize_with(FEED_CACHE_SLOTS, || None);
        }
        if let Some(Some(c)) = slots.get(i) {
            if c.generation == generation && c.type_idx == type_idx && c.bucket == bucket {
                return find(&c.bytes, value, now);
            }
        }
        let bytes = read()?;
        let found = find(&bytes, value, now);
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
    store: &'a S,
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
        let h = fnv1a(value.as_bytes());
        let meta = self.meta();
        let dyn_count = meta
            .dyn_count
            .get(list_idx(list))
            .and_then(|l| l.get(ti))
            .copied()
            .unwrap_or(0);
        if dyn_count > 0 {
            let key = dyn_key(list, t, bucket_of(h, DYN_BUCKETS));
            if let (Some(b), _) = self.store.get(&key) {
                if let Some(src) = find(&b, value, self.now) {
                    if src != Source::Detected || self.detected_enabled {
                        return Some(src);
                    }
                }
            }
        }
        if list == ListKind::Deny && meta.generation > 0 {
            let count = meta.feed_count.get(ti).copied().unwrap_or(0);
            let nb = meta.feed_buckets.get(ti).copied().unwrap_or(0);
            if count > 0 && nb > 0 {
                let bucket = bucket_of(h, nb);
                let read = || self.store.get(&feed_key(meta.generation % 2, t, bucket)).0;
                return match self.cache {
                    Some(c) => c.find((meta.generation, ti, bucket), value, self.now, read),
                    None => read().and_then(|b| find(&b, value, self.now)),
                };
            }
        }
        None
    }
}

/// Why a list update was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateError {
    /// Empty, too long, or otherwise unusable value.
    BadValue(String),
    /// Concurrent writers kept winning; try again.
    Contention,
    /// Not present (delete).
    NotFound,
    /// Another feed replacement finished while this one was writing; this one was dropped.
    Superseded,
    /// The host refused a write.
    Store(String),
}

impl std::fmt::Display for UpdateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpdateError::BadValue(m) => write!(f, "{m}"),
            UpdateError::Contention => write!(f, "too many concurrent updates; retry"),
            UpdateError::NotFound => write!(f, "no such entry"),
            UpdateError::Superseded => {
                write!(
                    f,
                    "another attack-list update finished first; this one was dropped"
                )
            }
            UpdateError::Store(m) => write!(f, "shared data: {m}"),
        }
    }
}

/// Check a value before it is stored (and canonicalize IPs as the identified peer is:
/// `2001:DB8::1` → `2001:db8::1`, `::ffff:192.0.2.1` → `192.0.2.1`).
pub fn check_value(t: IdType, value: &str) -> Result<String, UpdateError> {
    if value.is_empty() {
        return Err(UpdateError::BadValue("value is empty".into()));
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(UpdateError::BadValue(format!(
            "value is longer than {MAX_VALUE_LEN} bytes"
        )));
    }
    if t == IdType::Ip {
        return crate::parse::canonical_ip(value)
            .ok_or_else(|| UpdateError::BadValue(format!("{value:?} is not an IP address")));
    }
    Ok(value.to_string())
}

/// Add (or refresh) a dynamic entry. Returns true when it was new.
pub fn add(
    store: &impl Store,
    list: ListKind,
    t: IdType,
    entry: Entry,
    now: u64,
) -> Result<bool, UpdateError> {
    let value = check_value(t, &entry.value)?;
    let entry = Entry { value, ..entry };
    let key = dyn_key(
        list,
        t,
        bucket_of(fnv1a(entry.value.as_bytes()), DYN_BUCKETS),
    );
    let mut counted = false;
    for _ in 0..CAS_RETRIES {
        let (cur, cas) = store.get(&key);
        let mut entries = cur.as_deref().map(decode_bucket).unwrap_or_default();
        let before = entries.len();
        entries.retain(|e| e.expires_at == 0 || e.expires_at > now);
        let dropped = before - entries.len();
        let existed = entries.iter().any(|e| e.value == entry.value);
        entries.retain(|e| e.value != entry.value);
        entries.push(entry.clone());
        let mut out = Vec::new();
        for e in &entries {
            encode_entry(&mut out, e);
        }
        if store.set(&key, &out, Some(cas.unwrap_or(0))) {
            let new = !existed && !counted;
            if cas.is_none() && store.get(&key).0.as_deref() != Some(&out[..]) {
                // Lost a first-write race: count ourselves once (over-counting only costs a
                // lookup; under-counting would skip lookups) and redo on top of the winner.
                if new {
                    adjust_dyn_count(store, list, t, 1);
                    counted = true;
                }
                continue;
            }
            adjust_dyn_count(store, list, t, i64::from(new) - dropped as i64);
            return Ok(!existed || counted);
        }
    }
    Err(UpdateError::Contention)
}

/// Remove a dynamic entry (any source).
pub fn remove(
    store: &impl Store,
    list: ListKind,
    t: IdType,
    value: &str,
) -> Result<(), UpdateError> {
    let value = check_value(t, value)?;
    let key = dyn_key(list, t, bucket_of(fnv1a(value.as_bytes()), DYN_BUCKETS));
    for _ in 0..CAS_RETRIES {
        let (cur, cas) = store.get(&key);
        let mut entries = cur.as_deref().map(decode_bucket).unwrap_or_default();
        let before = entries.len();
        entries.retain(|e| e.value != value);
        if entries.len() == before {
            return Err(UpdateError::NotFound);
        }
        let mut out = Vec::new();
        for e in &entries {
            encode_entry(&mut out, e);
        }
        if store.set(&key, &out, Some(cas.unwrap_or(0))) {
            adjust_dyn_count(store, list, t, -((before - entries.len()) as i64));
            return Ok(());
        }
    }
    Err(UpdateError::Contention)
}

fn adjust_dyn_count(store: &impl Store, list: ListKind, t: IdType, delta: i64) {
    if delta == 0 {
        return;
    }
    Meta::update(store, |m| {
        if let Some(c) = m
            .dyn_count
            .get_mut(list_idx(list))
            .and_then(|l| l.get_mut(type_idx(t)))
        {
            *c = (i64::from(*c) + delta).clamp(0, i64::from(u32::MAX)) as u32;
        }
    });
}

/// Every dynamic entry of one list and type (live ones only).
pub fn dyn_entries(store: &impl Store, list: ListKind, t: IdType, now: u64) -> Vec<Entry> {
    let (meta, _) = Meta::load(store);
    if meta
        .dyn_count
        .get(list_idx(list))
        .and_then(|l| l.get(type_idx(t)))
        .copied()
        .unwrap_or(0)
        == 0
    {
        return Vec::new();
    }
    let mut out = Vec::new();
    for b in 0..DYN_BUCKETS {
        if let (Some(v), _) = store.get(&dyn_key(list, t, b)) {
            out.extend(
                decode_bucket(&v)
                    .into_iter()
                    .filter(|e| e.expires_at == 0 || e.expires_at > now),
            );
        }
    }
    out
}

/// Up to `limit` feed entries of one type.
pub fn feed_entries(store: &impl Store, t: IdType, limit: usize) -> Vec<Entry> {
    let (meta, _) = Meta::load(store);
    let ti = type_idx(t);
    let nb = meta.feed_buckets.get(ti).copied().unwrap_or(0);
    if meta.generation == 0 || meta.feed_count.get(ti).copied().unwrap_or(0) == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for b in 0..nb {
        if out.len() >= limit {
            break;
        }
        if let (Some(v), _) = store.get(&feed_key(meta.generation % 2, t, b)) {
            out.extend(decode_bucket(&v));
        }
    }
    out.truncate(limit);
    out
}

/// A parsed attack-list feed: values per type (already checked and de-duplicated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feed {
    pub values: [Vec<String>; 5],
}

impl Feed {
    /// Parse the analytics engine's attack list: `{"ip": [...], "token": [...], "api_key": [...],
    /// "cookie": [...], "username": [...]}`. Unknown keys are ignored and a type given as `null`
    /// is empty; a type that is not an array is an error. An item is a string or an object
    /// `{"value": "...", ...}` (as some engines send); any other item, or an unusable value (bad
    /// IP, empty), is skipped and counted in `skipped`. Duplicates are dropped.
    ///
    /// The body is read straight into per-type vectors (no JSON tree of the whole document), and
    /// duplicates are dropped by sorting, so a feed of millions of entries costs little more than
    /// the values themselves.
    pub fn parse(body: &[u8]) -> Result<(Feed, usize), String> {
        Feed::parse_page(body).map(|(feed, skipped, _)| (feed, skipped))
    }

    /// [`Feed::parse`] for one page of a paginated feed: also returns the document's `next`
    /// member (the path of the following page; absent, `null` or `""` on the last page).
    pub fn parse_page(body: &[u8]) -> Result<(Feed, usize, Option<String>), String> {
        let raw: feed_de::Raw =
            serde_json::from_slice(body).map_err(|e| format!("attack list is not valid: {e}"))?;
        let next = raw.next.clone();
        let mut feed = Feed::default();
        let mut skipped = raw.skipped;
        for t in IdType::ALL {
            let Some(items) = raw.values.get(type_idx(t)) else {
                continue;
            };
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match check_value(t, item) {
                    Ok(v) => out.push(v),
                    Err(_) => skipped += 1,
                }
            }
            out.sort_unstable();
            out.dedup();
            if let Some(slot) = feed.values.get_mut(type_idx(t)) {
                *slot = out;
            }
        }
        Ok((feed, skipped, next))
    }

    /// Add another page's entries (kept sorted and free of duplicates).
    pub fn merge(&mut self, other: Feed) {
        for (mine, theirs) in self.values.iter_mut().zip(other.values) {
            if theirs.is_empty() {
                continue;
            }
            if mine.is_empty() {
                *mine = theirs;
                continue;
            }
            mine.extend(theirs);
            mine.sort_unstable();
            mine.dedup();
        }
    }

    /// Total entries.
    pub fn len(&self) -> usize {
        self.values.iter().map(Vec::len).sum()
    }

    /// True when the feed holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Streaming deserialization of the attack-list document (see [`Feed::parse`]).
mod feed_de {
    use std::fmt;

    use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde::Deserialize;

    use crate::identity::IdType;

    /// The values per type, as strings, plus the count of items that were not strings.
    #[derive(Default)]
    pub(super) struct Raw {
        pub(super) values: [Vec<String>; 5],
        pub(super) skipped: usize,
        /// `next`: the path of the following page, when the feed is paginated.
        pub(super) next: Option<String>,
    }

    impl<'de> Deserialize<'de> for Raw {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
            d.deserialize_map(RawVisitor)
        }
    }

    struct RawVisitor;

    impl<'de> Visitor<'de> for RawVisitor {
        type Value = Raw;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object of identifier type -> array")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
            let mut raw = Raw::default();
            while let Some(key) = map.next_key::<String>()? {
                if key == "next" {
                    raw.next = map
                        .next_value::<Option<String>>()?
                        .filter(|n| !n.is_empty());
                    continue;
                }
                let Some(idx) = IdType::ALL.iter().position(|t| t.as_str() == key) else {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                };
                let Some(items) = map.next_value::<Option<Items>>()? else {
                    continue;
                };
                raw.skipped += items.skipped;
                if let Some(slot) = raw.values.get_mut(idx) {
                    slot.extend(items.values);
                }
            }
            Ok(raw)
        }
    }

    /// One type's array.
    struct Items {
        values: Vec<String>,
        skipped: usize,
    }

    impl<'de> Deserialize<'de> for Items {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Items, D::Error> {
            d.deserialize_seq(ItemsVisitor)
        }
    }

    struct ItemsVisitor;

    impl<'de> Visitor<'de> for ItemsVisitor {
        type Value = Items;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of strings")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
            let mut out = Items {
                values: Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20)),
                skipped: 0,
            };
            while let Some(item) = seq.next_element::<Item>()? {
                match item.0 {
                    Some(v) => out.values.push(v),
                    None => out.skipped += 1,
                }
            }
            Ok(out)
        }
    }

    /// A string, or the string `value` of an object; `None` for anything else.
    struct Item(Option<String>);

    impl<'de> Deserialize<'de> for Item {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Item, D::Error> {
            d.deserialize_any(ItemVisitor)
        }
    }

    struct ItemVisitor;

    impl<'de> Visitor<'de> for ItemVisitor {
        type Value = Item;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or an object with a string \"value\"")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
            Ok(Item(Some(v.to_string())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Item, E> {
            Ok(Item(Some(v)))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Item, E> {
            Ok(Item(None))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Item, E> {
            Ok(Item(None))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Item, E> {
            Ok(Item(None))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Item, E> {
            Ok(Item(None))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Item, E> {
            Ok(Item(None))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Item(None))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
            let mut value = None;
            while let Some(key) = map.next_key::<String>()? {
                if key == "value" && value.is_none() {
                    value = map.next_value::<Item>()?.0;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Item(value))
        }
    }
}

fn feed_bucket_count(n: usize) -> u32 {
    let want = (n / 8).max(1).next_power_of_two();
    (want.min(MAX_FEED_BUCKETS as usize) as u32).max(1)
}

/// Replace the feed atomically: write every bucket of the new generation into the inactive slot,
/// flip the generation in `aw:meta` with CAS, then clear the previous slot. Returns the new
/// generation.
pub fn replace_feed(store: &impl Store, feed: &Feed) -> Result<u32, UpdateError> {
    let (old, _) = Meta::load(store);
    let new_gen = old.generation.wrapping_add(1).max(1);
    let slot = new_gen % 2;
    let mut new_buckets = [0u32; 5];
    let mut new_counts = [0u32; 5];
    for t in IdType::ALL {
        let ti = type_idx(t);
        let values = feed.values.get(ti).map(Vec::as_slice).unwrap_or(&[]);
        if values.is_empty() {
            continue;
        }
        let nb = feed_bucket_count(values.len());
        let mut buckets: Vec<Vec<u8>> = vec![Vec::new(); nb as usize];
        for v in values {
            let h = fnv1a(v.as_bytes());
            if let Some(out) = buckets.get_mut(bucket_of(h, nb) as usize) {
                encode_raw(out, h, v, Source::AttackList, 0);
            }
        }
        // Write every bucket of the new generation, the empty ones too: the slot may still hold
        // data of an older generation whose clean-up did not finish, and it must not show.
        for (b, bytes) in (0..nb).zip(&buckets) {
            if !store.set(&feed_key(slot, t, b), bytes, None) {
                return Err(UpdateError::Store(format!(
                    "writing {} feed bucket {b} failed",
                    t.as_str()
                )));
            }
        }
        if let Some(x) = new_buckets.get_mut(ti) {
            *x = nb;
        }
        if let Some(x) = new_counts.get_mut(ti) {
            *x = values.len() as u32;
        }
    }
    let mut previous = Meta::default();
    let mut superseded = false;
    let ok = Meta::update(store, |m| {
        previous = m.clone();
        // Another writer flipped the feed while we wrote (overlapping polls): our slot may be
        // the one it just made live. Leave its generation alone and never clear its slot.
        superseded = m.generation != old.generation;
        if !superseded {
            m.generation = new_gen;
            m.feed_buckets = new_buckets;
            m.feed_count = new_counts;
        }
    });
    if !ok {
        return Err(UpdateError::Contention);
    }
    if superseded {
        return Err(UpdateError::Superseded);
    }
    // Clear the slot the previous generation used (it is no longer referenced).
    if previous.generation > 0 {
        let old_slot = previous.generation % 2;
        for t in IdType::ALL {
            let ti = type_idx(t);
            if previous.feed_count.get(ti).copied().unwrap_or(0) == 0 {
                continue;
            }
            for b in 0..previous.feed_buckets.get(ti).copied().unwrap_or(0) {
                let key = feed_key(old_slot, t, b);
                if let (Some(v), _) = store.get(&key) {
                    if !v.is_empty() {
                        store.set(&key, &[], None);
                    }
                }
            }
        }
    }
    Ok(new_gen)
}

/// An in-memory [`Store`] with the host's CAS semantics, for tests and native benchmarks.
#[derive(Debug, Default)]
pub struct MemStore {
    map: std::cell::RefCell<HashMap<String, (Vec<u8>, u32)>>,
}

impl Store for MemStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.map.borrow().get(key) {
            Some((v, c)) => (Some(v.clone()), Some(*c)),
            None => (None, None),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let mut m = self.map.borrow_mut();
        let cur = m.get(key).map(|(_, c)| *c);
        match (cas, cur) {
            (Some(c), Some(cur)) if c != 0 && c != cur => return false,
            _ => {}
        }
        let next = cur.unwrap_or(0).wrapping_add(1).max(1);
        m.insert(key.to_string(), (value.to_vec(), next));
        true
    }
}

#[cfg(test)]
mod tests;
