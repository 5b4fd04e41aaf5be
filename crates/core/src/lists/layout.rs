//! The shared-data layout of the lists: key names, the `aw:meta` header, the bucket hash and the
//! bucket encoding (see the parent module for the picture). No host calls.

use super::*;

pub(super) fn type_idx(t: IdType) -> usize {
    t.index()
}

pub(super) fn list_idx(l: ListKind) -> usize {
    match l {
        ListKind::Deny => 0,
        ListKind::Allow => 1,
    }
}

pub(super) fn list_prefix(l: ListKind) -> &'static str {
    match l {
        ListKind::Deny => "d",
        ListKind::Allow => "a",
    }
}

/// FNV-1a, 64-bit: stable across VMs and processes (bucket choice and fingerprint).
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(bytes);
    h.finish()
}

/// The hash of a feed value: FNV-1a mixed with MurmurHash3's finalizer, so that every bit
/// depends on every byte (FNV-1a's bits 32 to 39 barely change with a value's last byte, which
/// fills some buckets several times over when there are few of them).
pub(super) fn feed_hash(bytes: &[u8]) -> u64 {
    feed_hash_of(fnv1a(bytes))
}

/// [`feed_hash`] from the value's [`fnv1a`] (computed once per value, not per list).
pub(super) fn feed_hash_of(fnv: u64) -> u64 {
    let mut k = fnv;
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

pub(super) fn bucket_of(hash: u64, buckets: u32) -> u32 {
    ((hash >> 32) as u32) % buckets.max(1)
}

pub(super) fn fingerprint(hash: u64) -> u32 {
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

    pub(super) fn encode(&self) -> Vec<u8> {
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

    pub(super) fn decode(b: &[u8]) -> Meta {
        let mut words = b
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap_or([0; 4])));
        let version = words.next();
        if b.len() != Self::LEN || !matches!(version, Some(META_VERSION | META_VERSION_1)) {
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
        if version == Some(META_VERSION_1) {
            // Written by a version whose feed buckets this one cannot read (an in-place upgrade):
            // keep the dynamic entries, forget the feed. Generation 0 also voids the stored
            // validators, so the next poll fetches the whole feed again.
            m.generation = 0;
            m.feed_buckets = [0; 5];
            m.feed_count = [0; 5];
        }
        m
    }

    /// Read the header (a missing or foreign header reads as empty).
    pub fn load(store: &impl Store) -> (Meta, Option<u32>) {
        let (v, cas) = store.get(META_KEY);
        (v.map(|b| Meta::decode(&b)).unwrap_or_default(), cas)
    }

    /// Apply `f` to the header with CAS, retrying on concurrent writers.
    pub(super) fn update(store: &impl Store, mut f: impl FnMut(&mut Meta)) -> bool {
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

pub(super) fn encode_entry(out: &mut Vec<u8>, e: &Entry) {
    encode_raw(
        out,
        fnv1a(e.value.as_bytes()),
        &e.value,
        e.source,
        e.expires_at,
    );
}

/// Append one entry whose value hashes to `hash` (see the bucket layout above).
pub(super) fn encode_raw(
    out: &mut Vec<u8>,
    hash: u64,
    value: &str,
    source: Source,
    expires_at: u64,
) {
    out.extend_from_slice(&fingerprint(hash).to_le_bytes());
    out.extend_from_slice(&(expires_at.min(u64::from(u32::MAX)) as u32).to_le_bytes());
    out.push(source.code());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value.as_bytes());
}

/// Walk a bucket's raw entries: (fingerprint, expires, source, value bytes). Stops at a truncated
/// entry instead of panicking.
pub(super) fn walk(bucket: &[u8]) -> impl Iterator<Item = (u32, u32, u8, &[u8])> {
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

pub(super) fn decode_bucket(bucket: &[u8]) -> Vec<Entry> {
    walk(bucket)
        .map(|(_, exp, src, v)| Entry {
            value: crate::parse::lossy(v.to_vec()),
            source: Source::from_code(src),
            expires_at: u64::from(exp),
        })
        .collect()
}

pub(super) fn live(exp: u32, now: u64) -> bool {
    exp == 0 || u64::from(exp) > now
}

/// Find a live entry for `value` in a bucket; returns its source.
pub(super) fn find(bucket: &[u8], value: &str, now: u64) -> Option<Source> {
    let fp = fingerprint(fnv1a(value.as_bytes()));
    walk(bucket)
        .find(|(f, exp, _, v)| *f == fp && *v == value.as_bytes() && live(*exp, now))
        .map(|(_, _, s, _)| Source::from_code(s))
}

/// Append one feed entry (see the bucket layout in the parent module):
/// `[fp u16][varint len << 1 | has_expiry][expires u32, if it has one][value]`.
pub(super) fn encode_feed(out: &mut Vec<u8>, hash: u64, value: &[u8], expires_at: u64) {
    out.extend_from_slice(&feed_fp(hash).to_le_bytes());
    encode_tail(out, value, expires_at);
}

/// The part of a feed entry after its fingerprint (also how the VM keeps a feed being built).
pub(super) fn encode_tail(out: &mut Vec<u8>, value: &[u8], expires_at: u64) {
    let expires = expires_at.min(u64::from(u32::MAX)) as u32;
    let mut tag = (value.len() as u32) << 1 | u32::from(expires != 0);
    loop {
        let b = (tag & 0x7f) as u8;
        tag >>= 7;
        if tag == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    if expires != 0 {
        out.extend_from_slice(&expires.to_le_bytes());
    }
    out.extend_from_slice(value);
}

/// Read one [`encode_tail`]: (expires, value, the rest). `None` when truncated.
pub(super) fn read_tail(b: &[u8]) -> Option<(u32, &[u8], &[u8])> {
    let mut tag = 0u32;
    let mut tail = b;
    for shift in [0u32, 7, 14, 21] {
        let (byte, t) = tail.split_first()?;
        tail = t;
        tag |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        if shift == 21 {
            return None;
        }
    }
    let mut expires = 0;
    if tag & 1 == 1 {
        let (e, t) = tail.split_first_chunk::<4>()?;
        expires = u32::from_le_bytes(*e);
        tail = t;
    }
    let len = (tag >> 1) as usize;
    Some((expires, tail.get(..len)?, tail.get(len..)?))
}

/// The fingerprint kept per feed entry: bits 32 to 47 of the hash, which the bucket choice does
/// not use (it takes at most the top 16, [`MAX_FEED_BUCKETS`]). It only skips other values
/// quickly; a match is confirmed by comparing the values, so a collision never blocks the wrong
/// client.
pub(super) fn feed_fp(hash: u64) -> u16 {
    (hash >> 32) as u16
}

/// The feed bucket of a hash: its top bits (`buckets` is a power of two; any other count still
/// gives a bucket below it).
pub(super) fn feed_bucket_of(hash: u64, buckets: u32) -> u32 {
    (((hash >> 32) * u64::from(buckets)) >> 32) as u32
}

/// Walk a feed bucket: (fingerprint, expires, value bytes). Stops at a truncated entry.
pub(super) fn walk_feed(bucket: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
    let mut rest = bucket;
    std::iter::from_fn(move || {
        let (fp, tail) = rest.split_first_chunk::<2>()?;
        let (expires, value, tail) = read_tail(tail)?;
        rest = tail;
        Some((u16::from_le_bytes(*fp), expires, value))
    })
}

/// Find a live entry for `value` (whose hash is `hash`) in a feed bucket.
///
/// The request path's hot loop: it walks the bucket by hand, reading a one-byte tag (a value
/// under 64 bytes) without [`read_tail`]'s loop and looking at a value only when its
/// fingerprint and length match; it agrees with [`walk_feed`] on every bucket.
pub(super) fn find_feed(bucket: &[u8], value: &str, hash: u64, now: u64) -> Option<Source> {
    let fp = feed_fp(hash).to_le_bytes();
    let want = value.as_bytes();
    let mut rest = bucket;
    loop {
        let (f, tail) = rest.split_first_chunk::<2>()?;
        let (expires, len, body) = match tail.split_first() {
            Some((&tag, body)) if tag & 0x80 == 0 => {
                let (expires, body) = match tag & 1 {
                    0 => (0, body),
                    _ => {
                        let (e, b) = body.split_first_chunk::<4>()?;
                        (u32::from_le_bytes(*e), b)
                    }
                };
                (expires, usize::from(tag >> 1), body)
            }
            _ => {
                let (expires, v, after) = read_tail(tail)?;
                let start = tail.len() - after.len() - v.len();
                (expires, v.len(), tail.get(start..)?)
            }
        };
        let (v, after) = body.split_at_checked(len)?;
        if *f == fp && v == want && live(expires, now) {
            return Some(Source::AttackList);
        }
        rest = after;
    }
}

/// Every entry of a feed bucket.
pub(super) fn decode_feed_bucket(bucket: &[u8]) -> Vec<Entry> {
    walk_feed(bucket)
        .map(|(_, exp, v)| Entry {
            value: crate::parse::lossy(v.to_vec()),
            source: Source::AttackList,
            expires_at: u64::from(exp),
        })
        .collect()
}

/// Append `n` in decimal (keys are built on the request path: no `format!` machinery).
pub(super) fn push_u32(out: &mut String, n: u32) {
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

pub(super) fn dyn_key(list: ListKind, t: IdType, bucket: u32) -> String {
    let mut k = String::with_capacity(24);
    k.push_str("aw:");
    k.push_str(list_prefix(list));
    k.push(':');
    k.push_str(t.as_str());
    k.push(':');
    push_u32(&mut k, bucket);
    k
}

pub(super) fn feed_key(slot: u32, t: IdType, bucket: u32) -> String {
    let mut k = String::with_capacity(24);
    push_feed_key(&mut k, slot, t, bucket);
    k
}

pub(super) fn push_feed_key(k: &mut String, slot: u32, t: IdType, bucket: u32) {
    k.push_str("aw:f");
    push_u32(k, slot);
    k.push(':');
    k.push_str(t.as_str());
    k.push(':');
    push_u32(k, bucket);
}
