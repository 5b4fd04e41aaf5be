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
        let mut items: [Vec<(String, u64)>; 5] = Default::default();
        let mut bad = 0usize;
        let raw = de::parse(body, now_ms, &mut |t, v, e| match checked(t, v) {
            Ok(v) => {
                if let Some(slot) = items.get_mut(type_idx(t)) {
                    slot.push((v.into_owned(), e));
                }
            }
            Err(_) => bad += 1,
        })?;
        let mut feed = Feed::default();
        for (t, out) in IdType::ALL.into_iter().zip(items) {
            feed.set(t, out);
        }
        Ok((feed, raw.skipped + bad, raw.next))
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

pub(super) mod de;

#[cfg(test)]
mod tests;

/// Parse one page, handing its items to `sink` (see [`de::parse`]).
pub(super) fn parse_items(
    body: &[u8],
    now_ms: u64,
    sink: &mut dyn FnMut(IdType, &str, u64),
) -> Result<de::Raw, String> {
    de::parse(body, now_ms, sink)
}

/// Replace the feed atomically with `feed` (see [`store_feed`]). Returns the new generation.
pub fn replace_feed(store: &impl Store, feed: &Feed) -> Result<u32, UpdateError> {
    let mut b = FeedBuilder::default();
    for t in IdType::ALL {
        for v in feed.values.get(type_idx(t)).into_iter().flatten() {
            b.push(t, v, feed.expiry_of(t, v));
        }
    }
    store_feed(store, &b).map(|(g, _)| g)
}
