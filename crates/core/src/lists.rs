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
//! A dynamic bucket is a concatenation of entries `[fp u32][expires u32][source u8][len u16][value]`
//! (little-endian; `expires` in Unix seconds, 0 = never). A feed bucket is denser (every entry
//! is an attack-list one): `[fp u16][varint len << 1 | has_expiry][expires u32, only if it has
//! one][value]`, chosen by the top bits of a mixed 64-bit hash, about [`FEED_BUCKET_ENTRIES`]
//! entries each. Lookups copy one bucket and compare values exactly (the fingerprint only skips
//! the others), so a hash collision can never block the wrong client. Configuration entries are
//! not stored here: every VM holds them in a `HashSet` compiled from the configuration.
//!
//! A feed is read page by page into a [`FeedBuilder`] (compact per-type arenas, no `String` per
//! value) and written when the last page is in by a [`FeedWriter`], a time budget at a time, so
//! the worker keeps serving requests meanwhile ([`store_feed`] writes in one go).
//!
//! Feed buckets never change while their generation is live (a replacement writes the other slot,
//! then flips the generation), so each VM keeps the feed buckets it read in a small
//! [`FeedCache`] keyed by generation: a repeat client costs one `aw:meta` read, not one read per
//! identifier. Dynamic buckets change in place and are always read fresh.

use std::collections::HashMap;

use crate::config::IdLists;
pub use crate::ids::{IdType, ListKind, Source};

/// Buckets per type for dynamic (admin / detected) entries.
pub const DYN_BUCKETS: u32 = 4096;
/// Upper bound of buckets per type for the feed.
pub const MAX_FEED_BUCKETS: u32 = 65536;
/// Longest value stored (longer values are refused).
pub const MAX_VALUE_LEN: usize = 8192;
pub(crate) const META_KEY: &str = "aw:meta";
/// The `aw:meta` version of this layout (2: dense feed buckets). Version 1 headers are read for
/// their dynamic counts only.
pub(crate) const META_VERSION: u32 = 2;
pub(crate) const META_VERSION_1: u32 = 1;
pub(crate) const CAS_RETRIES: usize = 64;

/// Shared-data access: implemented by the host adapter over proxy-wasm shared data, and by
/// [`MemStore`] for tests.
pub trait Store {
    /// The value and its CAS token (`None` when the key was never written).
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Write; `cas: None` writes unconditionally. Returns false on CAS mismatch or failure.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}

mod build;
mod feed;
mod layout;
mod lookup;
mod update;
mod write;

#[cfg(test)]
use build::feed_bucket_count;
pub use build::{FeedBuilder, FEED_BUCKET_BYTES, FEED_BUCKET_ENTRIES};
pub use feed::*;
pub use layout::Meta;
use layout::*;
pub use lookup::*;
pub use update::*;
pub use write::{store_feed, FeedWriter, Progress};

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: String,
    pub source: Source,
    /// Unix seconds; 0 = never expires.
    pub expires_at: u64,
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
