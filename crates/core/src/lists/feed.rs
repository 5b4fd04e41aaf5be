//! The attack-list feed: parsing the analytics engine's document and replacing the feed
//! atomically in shared data. No host calls.

use super::*;

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
pub(super) mod feed_de {
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
