//! Building the attack-list feed in the VM page by page, compactly, and writing it into the
//! inactive feed slot of shared data. No host calls.
//!
//! A page's items are appended to one arena per type as they are parsed (no `String` per value,
//! no re-sorting of what earlier pages gave): about the value's length plus one byte each, in
//! fixed chunks that never move. When the last page is in, each type is written bucket by
//! bucket: count the entries per bucket, index them, then sort and de-duplicate one bucket at a
//! time in a small scratch buffer. The VM's peak is the arenas plus one index per type, about
//! what the values weigh, instead of several copies of every value as `String`s.

use super::*;

/// Bytes per arena chunk (a power of two: a position is `chunk << CHUNK_BITS | offset`).
const CHUNK_BITS: u32 = 18;
const CHUNK: usize = 1 << CHUNK_BITS;

/// Entries per feed bucket aimed at (a lookup copies one bucket).
pub const FEED_BUCKET_ENTRIES: usize = 64;
/// Value bytes per feed bucket aimed at, for feeds of long values.
pub const FEED_BUCKET_BYTES: usize = 1024;

/// Feed buckets for `n` entries of `bytes` value bytes: a power of two near
/// [`FEED_BUCKET_ENTRIES`] entries or [`FEED_BUCKET_BYTES`] bytes each, at most
/// [`MAX_FEED_BUCKETS`].
pub(super) fn feed_bucket_count(n: usize, bytes: usize) -> u32 {
    let want = (n / FEED_BUCKET_ENTRIES)
        .max(bytes / FEED_BUCKET_BYTES)
        .max(1)
        .next_power_of_two();
    want.min(MAX_FEED_BUCKETS as usize) as u32
}

/// One type's entries as they arrived, duplicates included, as [`encode_tail`] writes them.
#[derive(Debug, Default)]
struct Arena {
    chunks: Vec<Vec<u8>>,
    count: usize,
    bytes: usize,
}

impl Arena {
    fn push(&mut self, value: &[u8], expires_at: u64) {
        // A value is at most MAX_VALUE_LEN bytes, so an entry always fits in a fresh chunk.
        let need = value.len() + 9;
        if self
            .chunks
            .last()
            .map_or(true, |c| c.capacity() - c.len() < need)
        {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(c) = self.chunks.last_mut() {
            encode_tail(c, value, expires_at);
            self.count += 1;
            self.bytes += value.len();
        }
    }

    /// (position, expires, value) of every entry, in arrival order.
    fn iter(&self) -> impl Iterator<Item = (u32, u32, &[u8])> {
        self.chunks.iter().enumerate().flat_map(|(ci, c)| {
            let mut rest = &c[..];
            std::iter::from_fn(move || {
                let pos = (ci << CHUNK_BITS | (c.len() - rest.len())) as u32;
                let (exp, value, tail) = read_tail(rest)?;
                rest = tail;
                Some((pos, exp, value))
            })
        })
    }

    /// The entry at `pos` (from [`Arena::iter`]).
    fn at(&self, pos: u32) -> Option<(u32, &[u8])> {
        let pos = pos as usize;
        let chunk = self.chunks.get(pos >> CHUNK_BITS)?;
        let (exp, value, _) = read_tail(chunk.get(pos & (CHUNK - 1)..)?)?;
        Some((exp, value))
    }
}

/// A feed being read page by page: every page's entries, checked, not yet de-duplicated.
#[derive(Debug, Default)]
pub struct FeedBuilder {
    arenas: [Arena; 5],
    /// Items skipped so far (unusable values).
    pub skipped: usize,
}

impl FeedBuilder {
    /// Add one page of the attack list (either shape, see [`Feed::parse_page_at`]); returns its
    /// `next`. After an error the builder holds part of the page: drop it.
    pub fn add_page(&mut self, body: &[u8], now_ms: u64) -> Result<Option<String>, String> {
        let arenas = &mut self.arenas;
        let mut bad = 0usize;
        let raw = feed::parse_items(body, now_ms, &mut |t, v, e| match checked(t, v) {
            Ok(v) => {
                if let Some(a) = arenas.get_mut(type_idx(t)) {
                    a.push(v.as_bytes(), e);
                }
            }
            Err(_) => bad += 1,
        })?;
        self.skipped += raw.skipped + bad;
        Ok(raw.next)
    }

    /// Add one entry (already checked).
    pub(super) fn push(&mut self, t: IdType, value: &str, expires_at: u64) {
        if let Some(a) = self.arenas.get_mut(type_idx(t)) {
            a.push(value.as_bytes(), expires_at);
        }
    }

    /// Entries added, duplicates included.
    pub fn len(&self) -> usize {
        self.arenas.iter().map(|a| a.count).sum()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Order two expiries of one value so that the longest lifetime comes first (0 = never).
pub(super) fn longest(a: u32, b: u32) -> std::cmp::Ordering {
    let key = |e: u32| if e == 0 { u32::MAX } else { e };
    key(b).cmp(&key(a))
}

/// Write one type's entries into feed slot `slot`: returns (buckets, distinct entries).
///
/// Each entry becomes one sort key, `hash & !0xffff_ffff | position`: sorted, they come in
/// bucket order (a bucket is the top bits of the hash), duplicates next to each other (same
/// hash) and, among equal hashes, in arrival order. The arena is then read once, bucket by
/// bucket.
fn write_type(
    store: &impl Store,
    slot: u32,
    t: IdType,
    a: &Arena,
) -> Result<(u32, u32), UpdateError> {
    if a.count == 0 {
        return Ok((0, 0));
    }
    let nb = feed_bucket_count(a.count, a.bytes);
    let mut keys: Vec<u64> = a
        .iter()
        .map(|(pos, _, v)| feed_hash(v) & !0xffff_ffff | u64::from(pos))
        .collect();
    keys.sort_unstable();
    let mut group: Vec<(u64, u32, &[u8])> = Vec::new();
    let mut out = Vec::new();
    let mut key = String::new();
    let mut distinct = 0u32;
    let mut rest = &keys[..];
    for b in 0..nb {
        let n = rest
            .iter()
            .take_while(|k| feed_bucket_of(**k, nb) == b)
            .count();
        let (mine, tail) = rest.split_at(n);
        rest = tail;
        group.clear();
        for k in mine {
            let Some((exp, v)) = a.at(*k as u32) else {
                continue;
            };
            let hash = k & !0xffff_ffff;
            // A duplicate has the same hash, so it is among the entries just kept with it.
            let same = group
                .iter_mut()
                .rev()
                .take_while(|g| g.0 == hash)
                .find(|g| g.2 == v);
            match same {
                Some(g) => {
                    if longest(exp, g.1).is_lt() {
                        g.1 = exp;
                    }
                }
                None => group.push((hash, exp, v)),
            }
        }
        out.clear();
        for (h, exp, v) in &group {
            encode_feed(&mut out, *h, v, u64::from(*exp));
        }
        distinct += group.len() as u32;
        // Every bucket is written, the empty ones too: the slot may still hold data of an
        // older generation whose clean-up did not finish, and it must not show.
        key.clear();
        push_feed_key(&mut key, slot, t, b);
        if !store.set(&key, &out, None) {
            return Err(UpdateError::Store(format!(
                "writing {} feed bucket {b} failed",
                t.as_str()
            )));
        }
    }
    Ok((nb, distinct))
}

/// Replace the feed atomically with what `feed` holds: write every bucket of the new generation
/// into the inactive slot, flip the generation in `aw:meta` with CAS, then clear the previous
/// slot. Returns the new generation and the distinct entries stored.
pub fn store_feed(store: &impl Store, feed: &FeedBuilder) -> Result<(u32, usize), UpdateError> {
    let (old, _) = Meta::load(store);
    let new_gen = old.generation.wrapping_add(1).max(1);
    let slot = new_gen % 2;
    let mut new_buckets = [0u32; 5];
    let mut new_counts = [0u32; 5];
    for t in IdType::ALL {
        let ti = type_idx(t);
        let Some(a) = feed.arenas.get(ti) else {
            continue;
        };
        let (nb, n) = write_type(store, slot, t, a)?;
        if let (Some(b), Some(c)) = (new_buckets.get_mut(ti), new_counts.get_mut(ti)) {
            (*b, *c) = (nb, n);
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
    // Clear the slot the previous generation used (it is no longer referenced). Its buckets
    // were all written by that generation, so they exist: one write each, no read.
    if previous.generation > 0 {
        let old_slot = previous.generation % 2;
        for t in IdType::ALL {
            let ti = type_idx(t);
            if previous.feed_count.get(ti).copied().unwrap_or(0) == 0 {
                continue;
            }
            for b in 0..previous.feed_buckets.get(ti).copied().unwrap_or(0) {
                store.set(&feed_key(old_slot, t, b), &[], None);
            }
        }
    }
    Ok((new_gen, new_counts.iter().map(|c| *c as usize).sum()))
}

#[cfg(test)]
mod tests;
