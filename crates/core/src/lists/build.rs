//! Building the attack-list feed in the VM page by page, compactly, before [`FeedWriter`] writes
//! it into the inactive feed slot of shared data. No host calls.
//!
//! A page's items are appended to one arena per type as they are parsed (no `String` per value,
//! no re-sorting of what earlier pages gave): about the value's length plus one byte each, in
//! fixed chunks that never move. When the last page is in, [`FeedWriter`] writes each type
//! bucket by bucket (see there). The VM's peak is the arenas plus the writer's two indexes of
//! one type (16 bytes per entry), instead of several copies of every value as `String`s.

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
pub(super) struct Arena {
    chunks: Vec<Vec<u8>>,
    pub(super) count: usize,
    pub(super) bytes: usize,
}

/// A place in an [`Arena`], to read it in several goes ([`Arena::next`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Cursor {
    chunk: usize,
    offset: usize,
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

    /// (position, value) of the entry at `cur`, in arrival order, and move `cur` past it;
    /// `None` at the end.
    pub(super) fn next(&self, cur: &mut Cursor) -> Option<(u32, &[u8])> {
        loop {
            let c = self.chunks.get(cur.chunk)?;
            if let Some((_, value, tail)) = c.get(cur.offset..).and_then(read_tail) {
                let pos = (cur.chunk << CHUNK_BITS | cur.offset) as u32;
                cur.offset = c.len() - tail.len();
                return Some((pos, value));
            }
            // The chunk is read (or its tail is unreadable, which `push` never makes).
            *cur = Cursor {
                chunk: cur.chunk + 1,
                offset: 0,
            };
        }
    }

    /// The entry at `pos` (from [`Arena::next`]): (expires, value).
    pub(super) fn at(&self, pos: u32) -> Option<(u32, &[u8])> {
        let pos = pos as usize;
        let chunk = self.chunks.get(pos >> CHUNK_BITS)?;
        let (exp, value, _) = read_tail(chunk.get(pos & (CHUNK - 1)..)?)?;
        Some((exp, value))
    }
}

/// A feed being read page by page: every page's entries, checked, not yet de-duplicated.
#[derive(Debug, Default)]
pub struct FeedBuilder {
    pub(super) arenas: [Arena; 5],
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

#[cfg(test)]
mod tests;
