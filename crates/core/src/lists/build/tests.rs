//! Tests of the dense feed buckets and the page-by-page builder: fingerprint collisions, the
//! encoding's edges, and agreement with a plain reference set on large random feeds.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::collections::HashMap;

use super::*;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn deny(s: &MemStore, t: IdType, v: &str, now: u64) -> Option<Source> {
    let c = ConfigLists::default();
    Lookup::new(s, &c, now, true).find(ListKind::Deny, t, v)
}

/// Two values whose hashes share the fingerprint (found by search: 16 bits collide quickly).
fn colliding_pair() -> (String, String) {
    let mut seen: HashMap<u16, String> = HashMap::new();
    for i in 0.. {
        let v = format!("value-{i}");
        let fp = feed_fp(feed_hash(v.as_bytes()));
        if let Some(other) = seen.insert(fp, v.clone()) {
            return (other, v);
        }
    }
    unreachable!()
}

#[test]
fn a_fingerprint_collision_never_blocks_the_other_value() {
    let (a, b) = colliding_pair();
    assert_ne!(a, b);
    assert_eq!(
        feed_fp(feed_hash(a.as_bytes())),
        feed_fp(feed_hash(b.as_bytes()))
    );
    // A one-entry feed has one bucket: both values land in it.
    let s = MemStore::default();
    let mut f = FeedBuilder::default();
    f.push(IdType::Token, &a, 0);
    store_feed(&s, &f).unwrap();
    assert_eq!(Meta::load(&s).0.feed_buckets[1], 1);
    assert_eq!(deny(&s, IdType::Token, &a, 0), Some(Source::AttackList));
    assert_eq!(deny(&s, IdType::Token, &b, 0), None);
    // Both stored: both found, each once.
    f.push(IdType::Token, &b, 0);
    store_feed(&s, &f).unwrap();
    assert_eq!(deny(&s, IdType::Token, &a, 0), Some(Source::AttackList));
    assert_eq!(deny(&s, IdType::Token, &b, 0), Some(Source::AttackList));
    assert_eq!(feed_entries(&s, IdType::Token, 10).len(), 2);
    // A prefix or an extension of a stored value is not it.
    assert_eq!(deny(&s, IdType::Token, &a[..a.len() - 1], 0), None);
    assert_eq!(deny(&s, IdType::Token, &format!("{a}x"), 0), None);
}

#[test]
fn entries_round_trip_at_the_encoding_edges() {
    // Lengths around the one-byte varint limit (63 fits, 64 takes two bytes), the longest value,
    // expiries of 0, 1 and beyond u32 (clamped as before).
    let rows: Vec<(String, u64, u64)> = vec![
        ("a".into(), 0, 0),
        ("b".repeat(63), 1, 1),
        ("c".repeat(64), 1_700_000_000, 1_700_000_000),
        ("d".repeat(MAX_VALUE_LEN), 0, 0),
        ("e".into(), u64::MAX, u64::from(u32::MAX)),
    ];
    let mut bucket = Vec::new();
    for (v, exp, _) in &rows {
        encode_feed(&mut bucket, feed_hash(v.as_bytes()), v.as_bytes(), *exp);
    }
    let got: Vec<(String, u64)> = decode_feed_bucket(&bucket)
        .into_iter()
        .map(|e| (e.value, e.expires_at))
        .collect();
    let want: Vec<(String, u64)> = rows.iter().map(|(v, _, e)| (v.clone(), *e)).collect();
    assert_eq!(got, want);
    for (v, _, e) in &rows {
        let h = feed_hash(v.as_bytes());
        assert_eq!(find_feed(&bucket, v, h, 0), Some(Source::AttackList));
        let expired = *e != 0 && find_feed(&bucket, v, h, *e).is_none();
        assert!(*e == 0 || expired, "{e}");
    }
    // Truncated or garbled buckets end the walk, never panic.
    for cut in 0..bucket.len().min(200) {
        let _ = decode_feed_bucket(&bucket[..cut]);
    }
    assert!(decode_feed_bucket(&[1, 2, 0xff, 0xff, 0xff, 0xff, 0xff]).is_empty());
}

/// A random value of type `t`: short and long ones, some sharing prefixes.
fn random_value(r: &mut Rng, t: IdType) -> String {
    match t {
        IdType::Ip => format!("10.{}.{}.{}", r.below(4), r.below(256), r.below(256)),
        _ => {
            let len = match r.below(10) {
                0 => 60 + r.below(140) as usize,
                _ => 1 + r.below(14) as usize,
            };
            (0..len)
                .map(|_| char::from(b"abcdefghij-_0123456789"[r.below(22) as usize]))
                .collect()
        }
    }
}

#[test]
fn large_random_feeds_agree_with_a_plain_set() {
    let mut r = Rng(0x5eed_1234_abcd_0001);
    for round in 0..3 {
        let s = MemStore::default();
        let mut reference: [HashMap<String, u64>; 5] = Default::default();
        let mut f = FeedBuilder::default();
        let mut probes: Vec<(IdType, String)> = Vec::new();
        let n = [3_000, 40_000, 120_000][round];
        for _ in 0..n {
            let t = IdType::ALL[r.below(5) as usize];
            let v = random_value(&mut r, t);
            // A quarter expire at 1000..1100 (0 = never); duplicates keep the longest life.
            let exp = if r.below(4) == 0 {
                1000 + r.below(100)
            } else {
                0
            };
            f.push(t, &v, exp);
            let e = reference[type_idx(t)].entry(v.clone()).or_insert(exp);
            if longest(exp as u32, *e as u32).is_lt() {
                *e = exp;
            }
            if r.below(3) == 0 {
                probes.push((t, v));
            }
            probes.push((t, random_value(&mut r, t)));
        }
        let (_, distinct) = store_feed(&s, &f).unwrap();
        assert_eq!(distinct, reference.iter().map(HashMap::len).sum::<usize>());
        for now in [0, 1050, 2000] {
            for (t, v) in &probes {
                let want = reference[type_idx(*t)]
                    .get(v)
                    .is_some_and(|e| *e == 0 || *e > now)
                    .then_some(Source::AttackList);
                assert_eq!(
                    deny(&s, *t, v, now),
                    want,
                    "{t:?} {v} at {now}, round {round}"
                );
            }
        }
        for t in IdType::ALL {
            let mut got: Vec<(String, u64)> = feed_entries(&s, t, usize::MAX)
                .into_iter()
                .map(|e| (e.value, e.expires_at))
                .collect();
            got.sort();
            let mut want: Vec<(String, u64)> = reference[type_idx(t)]
                .iter()
                .map(|(v, e)| (v.clone(), *e))
                .collect();
            want.sort();
            assert_eq!(got, want, "{t:?} round {round}");
        }
    }
}

#[test]
fn pages_built_one_by_one_equal_the_merged_feed() {
    // The poller's way (each page into the builder) against the merged Feed written at once.
    let pages: Vec<String> = (0..4)
        .map(|p| {
            let users: Vec<String> = (0..500)
                .map(|i| {
                    format!(
                        r#"{{"value": "u{}", "ttl_s": {}}}"#,
                        (i * 7 + p * 3) % 900,
                        p
                    )
                })
                .collect();
            format!(
                r#"{{"usernames": [{}], "ips": ["192.0.2.{p}", "2001:DB8::{p}", "bad"]}}"#,
                users.join(",")
            )
        })
        .collect();
    let now_ms = 1_700_000_000_000;
    let mut b = FeedBuilder::default();
    let mut merged = Feed::default();
    let mut skipped = 0;
    for p in &pages {
        assert_eq!(b.add_page(p.as_bytes(), now_ms), Ok(None));
        let (f, sk, _) = Feed::parse_page_at(p.as_bytes(), now_ms).unwrap();
        merged.merge(f);
        skipped += sk;
    }
    assert_eq!(b.skipped, skipped);
    let (one, many) = (MemStore::default(), MemStore::default());
    let (_, n) = store_feed(&many, &b).unwrap();
    replace_feed(&one, &merged).unwrap();
    assert_eq!(n, merged.len());
    for t in IdType::ALL {
        let sorted = |s: &MemStore| {
            let mut v: Vec<(String, u64)> = feed_entries(s, t, usize::MAX)
                .into_iter()
                .map(|e| (e.value, e.expires_at))
                .collect();
            v.sort();
            v
        };
        assert_eq!(sorted(&one), sorted(&many), "{t:?}");
    }
    // IPs are canonicalized as before.
    assert_eq!(
        deny(&many, IdType::Ip, "2001:db8::3", 0),
        Some(Source::AttackList)
    );
}

#[test]
fn a_bad_page_is_an_error_and_buckets_stay_small() {
    let mut b = FeedBuilder::default();
    assert!(b.add_page(b"{\"ip\": [", 0).is_err());
    assert!(b.add_page(br#"{"ip": "1.2.3.4"}"#, 0).is_err());
    // Buckets of short values hold about FEED_BUCKET_ENTRIES entries (a lookup copies one).
    let mut f = FeedBuilder::default();
    for i in 0..200_000 {
        f.push(IdType::ApiKey, &format!("key-{i}"), 0);
    }
    let s = MemStore::default();
    store_feed(&s, &f).unwrap();
    let nb = Meta::load(&s).0.feed_buckets[2];
    assert_eq!(nb, 4096);
    let sizes: Vec<usize> = (0..nb)
        .map(|b| {
            s.get(&feed_key(1, IdType::ApiKey, b))
                .0
                .map_or(0, |v| v.len())
        })
        .collect();
    let max = sizes.iter().max().copied().unwrap_or(0);
    let mean = sizes.iter().sum::<usize>() / sizes.len();
    assert!(
        mean < 1024 && max < 2 * mean + 512,
        "mean {mean}, max {max}"
    );
}

#[test]
fn a_version_1_header_keeps_dynamic_counts_and_forgets_the_feed() {
    let m = Meta {
        generation: 7,
        feed_buckets: [1, 2, 3, 4, 5],
        feed_count: [9, 9, 9, 9, 9],
        dyn_count: [[1, 0, 0, 0, 2], [0, 3, 0, 0, 0]],
    };
    let mut v1 = m.encode();
    v1[..4].copy_from_slice(&META_VERSION_1.to_le_bytes());
    let got = Meta::decode(&v1);
    assert_eq!(got.dyn_count, m.dyn_count);
    assert_eq!(
        (got.generation, got.feed_buckets, got.feed_count),
        (0, [0; 5], [0; 5])
    );
    assert_eq!(Meta::decode(&m.encode()), m);
}
