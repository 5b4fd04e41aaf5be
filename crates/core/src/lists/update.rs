//! Changing the dynamic lists (admin API and detections) with CAS retries, and listing entries.
//! No host calls.

use super::*;

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
    checked(t, value).map(std::borrow::Cow::into_owned)
}

/// [`check_value`] without a copy when the value is stored as it is.
pub(super) fn checked(t: IdType, value: &str) -> Result<std::borrow::Cow<'_, str>, UpdateError> {
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
            .map(std::borrow::Cow::Owned)
            .ok_or_else(|| UpdateError::BadValue(format!("{value:?} is not an IP address")));
    }
    Ok(std::borrow::Cow::Borrowed(value))
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

pub(super) fn adjust_dyn_count(store: &impl Store, list: ListKind, t: IdType, delta: i64) {
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
            out.extend(decode_feed_bucket(&v));
        }
    }
    out.truncate(limit);
    out
}
