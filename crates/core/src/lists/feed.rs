//! The attack-list feed: parsing the analytics engine's document (api-warden's shape or ABS's)
//! and replacing the feed atomically in shared data. No host calls.

use super::*;

/// A parsed attack-list feed: values per type (already checked and de-duplicated), and the
/// expiry of the entries that have one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feed {
    pub values: [Vec<String>; 5],
    /// Value → expiry (Unix seconds) per type, for entries that expire (the others never do).
    pub expires: [HashMap<String, u64>; 5],
}

impl Feed {
    /// [`Feed::parse_page_at`] of a one-page feed at time 0 (for feeds without relative TTLs).
    pub fn parse(body: &[u8]) -> Result<(Feed, usize), String> {
        Feed::parse_page_at(body, 0).map(|(feed, skipped, _)| (feed, skipped))
    }

    /// [`Feed::parse_page_at`] at time 0 (for feeds without relative TTLs).
    pub fn parse_page(body: &[u8]) -> Result<(Feed, usize, Option<String>), String> {
        Feed::parse_page_at(body, 0)
    }

    /// Parse one page of the attack list, in either of two shapes, told apart by their keys (a
    /// document that mixes them is an error):
    /// - api-warden's: `{"ip": [...], "token": [...], "api_key": [...], "cookie": [...],
    ///   "username": [...]}`;
    /// - ABS's (`GET /v4/abs/attacklist`): `{"ips": [...], "oauth_tokens": [...], "api_keys":
    ///   [...], "usernames": [...], "cookies": {"<cookie name>": [...]}}`; the cookie names are
    ///   not kept (a cookie value is matched against the cookie its API names).
    ///
    /// Unknown keys are ignored and a type given as `null` is empty; a type that is not an array
    /// (ABS's `cookies`: not an object of arrays) is an error. An item is a string or an object
    /// `{"value": "...", ...}` that may carry its lifetime: `expires_at` (Unix seconds), `ttl_s`
    /// (seconds from `now_ms`) or, in ABS's shape, `ttl` (minutes, ABS's unit); 0 never expires.
    /// Any other item, or an unusable value (bad IP, empty, a TTL that is not a whole number), is
    /// skipped and counted in `skipped`. Duplicates are dropped (the longest lifetime is kept).
    /// Also returns the document's `next` member (the path of the following page; absent, `null`
    /// or `""` on the last page).
    ///
    /// The body is read straight into per-type vectors (no JSON tree of the whole document), and
    /// duplicates are dropped by sorting, so a feed of millions of entries costs little more than
    /// the values themselves.
    pub fn parse_page_at(
        body: &[u8],
        now_ms: u64,
    ) -> Result<(Feed, usize, Option<String>), String> {
        let raw = de::parse(body, now_ms)?;
        let mut feed = Feed::default();
        let mut skipped = raw.skipped;
        for (t, items) in IdType::ALL.into_iter().zip(raw.values) {
            let mut out: Vec<(String, u64)> = Vec::with_capacity(items.len());
            for (item, expires) in items {
                match check_value(t, &item) {
                    Ok(v) => out.push((v, expires)),
                    Err(_) => skipped += 1,
                }
            }
            feed.set(t, out);
        }
        Ok((feed, skipped, raw.next))
    }

    /// Store one type's entries, sorted and de-duplicated.
    fn set(&mut self, t: IdType, mut entries: Vec<(String, u64)>) {
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(longest(a.1, b.1)));
        entries.dedup_by(|later, first| later.0 == first.0);
        let ti = type_idx(t);
        if let Some(map) = self.expires.get_mut(ti) {
            map.clear();
            map.extend(entries.iter().filter(|e| e.1 != 0).cloned());
        }
        if let Some(slot) = self.values.get_mut(ti) {
            *slot = entries.into_iter().map(|e| e.0).collect();
        }
    }

    /// One type's entries with their expiry (0 = never).
    fn entries(&mut self, t: IdType) -> Vec<(String, u64)> {
        let ti = type_idx(t);
        let values = self
            .values
            .get_mut(ti)
            .map(std::mem::take)
            .unwrap_or_default();
        let expires = self
            .expires
            .get_mut(ti)
            .map(std::mem::take)
            .unwrap_or_default();
        values
            .into_iter()
            .map(|v| {
                let e = expires.get(&v).copied().unwrap_or(0);
                (v, e)
            })
            .collect()
    }

    /// The expiry of one stored value (Unix seconds, 0 = never).
    pub fn expiry_of(&self, t: IdType, value: &str) -> u64 {
        self.expires
            .get(type_idx(t))
            .and_then(|m| m.get(value))
            .copied()
            .unwrap_or(0)
    }

    /// Add another page's entries (kept sorted and free of duplicates).
    pub fn merge(&mut self, mut other: Feed) {
        for t in IdType::ALL {
            let theirs = other.entries(t);
            if theirs.is_empty() {
                continue;
            }
            let mut mine = self.entries(t);
            mine.extend(theirs);
            self.set(t, mine);
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

/// Order two expiries of one value so that the longest lifetime comes first (0 = never).
fn longest(a: u64, b: u64) -> std::cmp::Ordering {
    let key = |e: u64| if e == 0 { u64::MAX } else { e };
    key(b).cmp(&key(a))
}

mod de;

#[cfg(test)]
mod tests;

pub(super) fn feed_bucket_count(n: usize) -> u32 {
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
        let expires = feed.expires.get(ti);
        for v in values {
            let h = fnv1a(v.as_bytes());
            let e = expires.and_then(|m| m.get(v)).copied().unwrap_or(0);
            if let Some(out) = buckets.get_mut(bucket_of(h, nb) as usize) {
                encode_raw(out, h, v, Source::AttackList, e);
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
