//! Tests of the shared-data list layout against the in-memory store.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;

fn entry(v: &str, source: Source, expires_at: u64) -> Entry {
    Entry {
        value: v.to_string(),
        source,
        expires_at,
    }
}

#[test]
fn empty_store_finds_nothing() {
    let s = MemStore::default();
    let c = ConfigLists::default();
    let l = Lookup::new(&s, &c, 100, true);
    for t in IdType::ALL {
        assert_eq!(l.find(ListKind::Deny, t, "x"), None);
    }
}

#[test]
fn config_entries_are_found_with_their_source() {
    let deny = IdLists {
        username: vec!["eve".into()],
        ..IdLists::default()
    };
    let allow = IdLists {
        ip: vec!["10.0.0.1".into()],
        ..IdLists::default()
    };
    let c = ConfigLists::new(&deny, &allow);
    let s = MemStore::default();
    let l = Lookup::new(&s, &c, 0, true);
    assert_eq!(
        l.find(ListKind::Deny, IdType::Username, "eve"),
        Some(Source::Config)
    );
    assert_eq!(l.find(ListKind::Deny, IdType::Username, "Eve"), None);
    assert_eq!(
        l.find(ListKind::Allow, IdType::Ip, "10.0.0.1"),
        Some(Source::Config)
    );
    assert_eq!(l.find(ListKind::Deny, IdType::Ip, "10.0.0.1"), None);
    assert_eq!(c.len(ListKind::Deny, IdType::Username), 1);
}

#[test]
fn add_find_remove_dynamic_entries() {
    let s = MemStore::default();
    let c = ConfigLists::default();
    assert_eq!(
        add(
            &s,
            ListKind::Deny,
            IdType::Username,
            entry("eve", Source::Admin, 0),
            10
        ),
        Ok(true)
    );
    assert_eq!(
        add(
            &s,
            ListKind::Deny,
            IdType::Username,
            entry("eve", Source::Admin, 0),
            10
        ),
        Ok(false)
    );
    let l = Lookup::new(&s, &c, 10, true);
    assert_eq!(
        l.find(ListKind::Deny, IdType::Username, "eve"),
        Some(Source::Admin)
    );
    assert_eq!(l.find(ListKind::Allow, IdType::Username, "eve"), None);
    assert_eq!(l.find(ListKind::Deny, IdType::Token, "eve"), None);
    assert_eq!(
        dyn_entries(&s, ListKind::Deny, IdType::Username, 10).len(),
        1
    );
    assert_eq!(remove(&s, ListKind::Deny, IdType::Username, "eve"), Ok(()));
    assert_eq!(
        remove(&s, ListKind::Deny, IdType::Username, "eve"),
        Err(UpdateError::NotFound)
    );
    let l = Lookup::new(&s, &c, 10, true);
    assert_eq!(l.find(ListKind::Deny, IdType::Username, "eve"), None);
    assert_eq!(Meta::load(&s).0.dyn_count[0][4], 0);
}

#[test]
fn many_entries_share_buckets_and_all_are_found() {
    let s = MemStore::default();
    let c = ConfigLists::default();
    for i in 0..20_000 {
        add(
            &s,
            ListKind::Deny,
            IdType::ApiKey,
            entry(&format!("key-{i}"), Source::Admin, 0),
            0,
        )
        .unwrap();
    }
    let l = Lookup::new(&s, &c, 0, true);
    for i in (0..20_000).step_by(997) {
        assert_eq!(
            l.find(ListKind::Deny, IdType::ApiKey, &format!("key-{i}")),
            Some(Source::Admin)
        );
    }
    assert_eq!(l.find(ListKind::Deny, IdType::ApiKey, "key-20000"), None);
    assert_eq!(Meta::load(&s).0.dyn_count[0][2], 20_000);
}

#[test]
fn ttl_expires_entries_and_expired_ones_are_dropped_on_update() {
    let s = MemStore::default();
    let c = ConfigLists::default();
    add(
        &s,
        ListKind::Deny,
        IdType::Ip,
        entry("192.0.2.1", Source::Detected, 50),
        10,
    )
    .unwrap();
    assert_eq!(
        Lookup::new(&s, &c, 49, true).find(ListKind::Deny, IdType::Ip, "192.0.2.1"),
        Some(Source::Detected)
    );
    assert_eq!(
        Lookup::new(&s, &c, 50, true).find(ListKind::Deny, IdType::Ip, "192.0.2.1"),
        None
    );
    assert!(dyn_entries(&s, ListKind::Deny, IdType::Ip, 60).is_empty());
}

#[test]
fn detected_entries_stop_counting_when_detection_is_off() {
    let s = MemStore::default();
    let c = ConfigLists::default();
    add(
        &s,
        ListKind::Deny,
        IdType::Ip,
        entry("192.0.2.1", Source::Detected, 0),
        0,
    )
    .unwrap();
    assert_eq!(
        Lookup::new(&s, &c, 0, false).find(ListKind::Deny, IdType::Ip, "192.0.2.1"),
        None
    );
    assert!(Lookup::new(&s, &c, 0, true)
        .find(ListKind::Deny, IdType::Ip, "192.0.2.1")
        .is_some());
}

#[test]
fn values_are_checked_and_ips_canonicalized() {
    let s = MemStore::default();
    assert!(matches!(
        add(
            &s,
            ListKind::Deny,
            IdType::Ip,
            entry("not-an-ip", Source::Admin, 0),
            0
        ),
        Err(UpdateError::BadValue(_))
    ));
    assert!(matches!(
        add(
            &s,
            ListKind::Deny,
            IdType::Username,
            entry("", Source::Admin, 0),
            0
        ),
        Err(UpdateError::BadValue(_))
    ));
    add(
        &s,
        ListKind::Deny,
        IdType::Ip,
        entry("2001:DB8:0:0::1", Source::Admin, 0),
        0,
    )
    .unwrap();
    let c = ConfigLists::default();
    assert!(Lookup::new(&s, &c, 0, true)
        .find(ListKind::Deny, IdType::Ip, "2001:db8::1")
        .is_some());
    // An IPv4-mapped IPv6 address is stored as the IPv4 address the peer is identified as.
    add(
        &s,
        ListKind::Deny,
        IdType::Ip,
        entry("::FFFF:192.0.2.7", Source::Admin, 0),
        0,
    )
    .unwrap();
    let found = |v: &str| {
        Lookup::new(&s, &c, 0, true)
            .find(ListKind::Deny, IdType::Ip, v)
            .is_some()
    };
    assert!(found("192.0.2.7"));
    assert!(!found("::ffff:192.0.2.7"));
    assert_eq!(
        check_value(IdType::Ip, " ::ffff:10.0.0.1 ").unwrap(),
        "10.0.0.1"
    );
    assert_eq!(check_value(IdType::Ip, "::1").unwrap(), "::1");
}

#[test]
fn feed_replacement_is_atomic_and_removes_entries_gone_from_the_feed() {
    let s = MemStore::default();
    let c = ConfigLists::default();
    let (f1, skipped) = Feed::parse(
        br#"{"ip": ["192.0.2.7", "bad"], "username": ["mallory", "trudy"], "extra": 1}"#,
    )
    .unwrap();
    assert_eq!(skipped, 1);
    assert_eq!(replace_feed(&s, &f1), Ok(1));
    let l = Lookup::new(&s, &c, 0, true);
    assert_eq!(
        l.find(ListKind::Deny, IdType::Ip, "192.0.2.7"),
        Some(Source::AttackList)
    );
    assert_eq!(
        l.find(ListKind::Deny, IdType::Username, "trudy"),
        Some(Source::AttackList)
    );
    let (f2, _) = Feed::parse(br#"{"username": ["trudy"]}"#).unwrap();
    assert_eq!(replace_feed(&s, &f2), Ok(2));
    let l = Lookup::new(&s, &c, 0, true);
    assert_eq!(l.find(ListKind::Deny, IdType::Ip, "192.0.2.7"), None);
    assert_eq!(l.find(ListKind::Deny, IdType::Username, "mallory"), None);
    assert_eq!(
        l.find(ListKind::Deny, IdType::Username, "trudy"),
        Some(Source::AttackList)
    );
    // The slot generation 1 used is cleared.
    let stale: usize = (0..16)
        .map(|b| {
            s.get(&feed_key(1, IdType::Username, b))
                .0
                .map_or(0, |v| v.len())
        })
        .sum();
    assert_eq!(stale, 0);
    assert_eq!(feed_entries(&s, IdType::Username, 10).len(), 1);
}

#[test]
fn bad_feeds_are_errors() {
    assert!(Feed::parse(b"garbage").is_err());
    assert!(Feed::parse(b"[1,2]").is_err());
    assert!(Feed::parse(br#"{"ip": "1.2.3.4"}"#).is_err());
    let (f, skipped) =
        Feed::parse(br#"{"token": [1, null, "t1", "t1", {"value": "t2"}]}"#).unwrap();
    assert_eq!(f.values[1], vec!["t1".to_string(), "t2".to_string()]);
    assert_eq!(skipped, 2);
}

#[test]
fn large_feed_lookups_touch_one_small_bucket() {
    let s = MemStore::default();
    let c = ConfigLists::default();
    let mut f = Feed::default();
    f.values[4] = (0..100_000).map(|i| format!("user-{i}")).collect();
    replace_feed(&s, &f).unwrap();
    let m = Meta::load(&s).0;
    assert_eq!(m.feed_count[4], 100_000);
    let nb = m.feed_buckets[4];
    // About FEED_BUCKET_ENTRIES entries per bucket.
    assert_eq!(nb, 2048);
    let l = Lookup::new(&s, &c, 0, true);
    assert!(l
        .find(ListKind::Deny, IdType::Username, "user-99999")
        .is_some());
    assert!(l
        .find(ListKind::Deny, IdType::Username, "user-100000")
        .is_none());
    let biggest = (0..nb)
        .map(|b| {
            s.get(&feed_key(1, IdType::Username, b))
                .0
                .map_or(0, |v| v.len())
        })
        .max()
        .unwrap();
    assert!(biggest < 4096, "largest bucket {biggest} bytes");
}

#[test]
fn corrupt_buckets_and_meta_never_panic() {
    let s = MemStore::default();
    s.set("aw:meta", b"\x01\x00", None);
    s.set(
        &dyn_key(ListKind::Deny, IdType::Username, 0),
        &[0xff; 13],
        None,
    );
    let c = ConfigLists::default();
    let l = Lookup::new(&s, &c, 0, true);
    assert_eq!(l.find(ListKind::Deny, IdType::Username, "x"), None);
    assert!(decode_bucket(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 200, 0, 1]).is_empty());
}

#[test]
fn first_write_race_is_repaired() {
    // A store that loses the first write to a missing key once (another worker wrote at the same
    // time without CAS): the update must still land.
    struct Racy {
        inner: MemStore,
        raced: std::cell::Cell<bool>,
    }
    impl Store for Racy {
        fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
            let ok = self.inner.set(key, value, cas);
            if key.starts_with("aw:d:") && !self.raced.get() {
                self.raced.set(true);
                let mut other = Vec::new();
                encode_entry(&mut other, &entry("other", Source::Admin, 0));
                self.inner.set(key, &other, None);
            }
            ok
        }
    }
    let s = Racy {
        inner: MemStore::default(),
        raced: std::cell::Cell::new(false),
    };
    let key = dyn_key(
        ListKind::Deny,
        IdType::Username,
        bucket_of(fnv1a(b"eve"), DYN_BUCKETS),
    );
    add(
        &s,
        ListKind::Deny,
        IdType::Username,
        entry("eve", Source::Admin, 0),
        0,
    )
    .unwrap();
    let stored = decode_bucket(&s.get(&key).0.unwrap());
    assert!(stored.iter().any(|e| e.value == "eve"), "{stored:?}");
}

#[test]
fn expiry_rounds_up_so_an_entry_lives_at_least_its_ttl() {
    assert_eq!(expiry(1_000_999, 0), 0);
    // Created at 1000.000 s with 1 s to live: live during second 1000, gone at 1001.
    assert_eq!(expiry(1_000_000, 1), 1001);
    // Created at 1000.999 s: rounding down would end it a millisecond later.
    assert_eq!(expiry(1_000_999, 1), 1002);
    assert_eq!(expiry(1_000_001, 60), 1061);
    assert_eq!(expiry(u64::MAX, 5), u64::MAX.div_ceil(1000));
    let s = MemStore::default();
    let c = ConfigLists::default();
    let exp = expiry(1_000_999, 1);
    add(
        &s,
        ListKind::Deny,
        IdType::Ip,
        entry("192.0.2.1", Source::Admin, exp),
        1000,
    )
    .unwrap();
    for (now, live) in [(1000, true), (1001, true), (1002, false)] {
        assert_eq!(
            Lookup::new(&s, &c, now, true)
                .find(ListKind::Deny, IdType::Ip, "192.0.2.1")
                .is_some(),
            live,
            "at {now}"
        );
    }
}

#[test]
fn stale_data_left_in_a_feed_slot_never_shows_in_a_new_generation() {
    let s = MemStore::default();
    let c = ConfigLists::default();
    let (f1, _) = Feed::parse(br#"{"username": ["a1"]}"#).unwrap();
    assert_eq!(replace_feed(&s, &f1), Ok(1));
    // Generation 2 will use slot 0. Leave junk there, as an interrupted clean-up would.
    for b in 0..feed_bucket_count(1, 2) {
        let mut junk = Vec::new();
        encode_feed(&mut junk, feed_hash(b"ghost"), b"ghost", 0);
        s.set(&feed_key(0, IdType::Username, b), &junk, None);
    }
    let (f2, _) = Feed::parse(br#"{"username": ["a2"]}"#).unwrap();
    assert_eq!(replace_feed(&s, &f2), Ok(2));
    let l = Lookup::new(&s, &c, 0, true);
    assert_eq!(l.find(ListKind::Deny, IdType::Username, "ghost"), None);
    assert_eq!(l.find(ListKind::Deny, IdType::Username, "a1"), None);
    assert_eq!(
        l.find(ListKind::Deny, IdType::Username, "a2"),
        Some(Source::AttackList)
    );
}

#[test]
fn a_replacement_overtaken_by_another_never_clears_the_live_feed() {
    // A store where another worker finishes its own replacement while ours writes buckets.
    struct Overlap {
        inner: MemStore,
        other: std::cell::RefCell<Option<Feed>>,
    }
    impl Store for Overlap {
        fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
            let ok = self.inner.set(key, value, cas);
            if key.starts_with("aw:f") {
                if let Some(f) = self.other.borrow_mut().take() {
                    replace_feed(&self.inner, &f).unwrap();
                }
            }
            ok
        }
    }
    let (theirs, _) = Feed::parse(br#"{"ip": ["192.0.2.5"]}"#).unwrap();
    let s = Overlap {
        inner: MemStore::default(),
        other: std::cell::RefCell::new(Some(theirs)),
    };
    let (ours, _) = Feed::parse(br#"{"token": ["t1"]}"#).unwrap();
    assert_eq!(replace_feed(&s, &ours), Err(UpdateError::Superseded));
    let c = ConfigLists::default();
    let l = Lookup::new(&s.inner, &c, 0, true);
    assert_eq!(Meta::load(&s.inner).0.generation, 1);
    assert_eq!(
        l.find(ListKind::Deny, IdType::Ip, "192.0.2.5"),
        Some(Source::AttackList)
    );
    // The next replacement works as usual.
    let (next, _) = Feed::parse(br#"{"token": ["t2"]}"#).unwrap();
    assert_eq!(replace_feed(&s.inner, &next), Ok(2));
    let l = Lookup::new(&s.inner, &c, 0, true);
    assert_eq!(l.find(ListKind::Deny, IdType::Ip, "192.0.2.5"), None);
    assert_eq!(
        l.find(ListKind::Deny, IdType::Token, "t2"),
        Some(Source::AttackList)
    );
}

#[test]
fn a_refused_bucket_write_fails_the_replacement_and_keeps_the_last_feed() {
    struct Full {
        inner: MemStore,
        refuse: std::cell::Cell<bool>,
    }
    impl Store for Full {
        fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
            !(self.refuse.get() && key.starts_with("aw:f")) && self.inner.set(key, value, cas)
        }
    }
    let s = Full {
        inner: MemStore::default(),
        refuse: std::cell::Cell::new(false),
    };
    let (f1, _) = Feed::parse(br#"{"username": ["kept"]}"#).unwrap();
    assert_eq!(replace_feed(&s, &f1), Ok(1));
    s.refuse.set(true);
    let (f2, _) = Feed::parse(br#"{"username": ["new"]}"#).unwrap();
    assert!(matches!(replace_feed(&s, &f2), Err(UpdateError::Store(_))));
    let c = ConfigLists::default();
    let l = Lookup::new(&s, &c, 0, true);
    assert_eq!(
        l.find(ListKind::Deny, IdType::Username, "kept"),
        Some(Source::AttackList)
    );
    assert_eq!(l.find(ListKind::Deny, IdType::Username, "new"), None);
}

#[test]
fn feed_parsing_table() {
    // (body, values per type as [ip, token, api_key, cookie, username], skipped).
    type Row<'a> = (&'a [u8], [&'a [&'a str]; 5], usize);
    let ok: [Row; 6] = [
        (b"{}", [&[], &[], &[], &[], &[]], 0),
        (
            br#"{"ip": null, "username": []}"#,
            [&[], &[], &[], &[], &[]],
            0,
        ),
        (
            br#"{"username": ["b", "a", "b", {"value": "c", "ttl": 5}, {"v": "x"}, [1], true]}"#,
            [&[], &[], &[], &[], &["a", "b", "c"]],
            3,
        ),
        (
            br#"{"ip": ["2001:DB8::1", " 192.0.2.1 ", "nope", ""], "other": {"ip": ["9.9.9.9"]}}"#,
            [&["192.0.2.1", "2001:db8::1"], &[], &[], &[], &[]],
            2,
        ),
        (
            br#"{"token": ["t"], "token": ["u"], "cookie": [{"value": {"value": "deep"}}]}"#,
            [&[], &["t", "u"], &[], &["deep"], &[]],
            0,
        ),
        (
            br#"{"api_key": ["k1"], "cookie": ["c1"], "username": [""]}"#,
            [&[], &[], &["k1"], &["c1"], &[]],
            1,
        ),
    ];
    for (body, want, want_skipped) in ok {
        let text = String::from_utf8_lossy(body);
        let (f, skipped) = Feed::parse(body).unwrap_or_else(|e| panic!("{text}: {e}"));
        for (got, want) in f.values.iter().zip(want) {
            assert_eq!(got, &want.to_vec(), "{text}");
        }
        assert_eq!(skipped, want_skipped, "{text}");
    }
    for bad in [
        &b""[..],
        b"garbage",
        b"[]",
        b"\"x\"",
        br#"{"ip": "1.2.3.4"}"#,
        br#"{"username": {"value": "x"}}"#,
        br#"{"username": ["a"]"#,
        br#"{"username": ["a"]} trailing"#,
    ] {
        assert!(
            Feed::parse(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn paginated_feeds_carry_next_and_merge_without_duplicates() {
    let (mut a, _, next) =
        Feed::parse_page(br#"{"username": ["b", "a"], "next": "/feed?page=2"}"#).unwrap();
    assert_eq!(next.as_deref(), Some("/feed?page=2"));
    let (b, _, last) =
        Feed::parse_page(br#"{"username": ["c", "a"], "ip": ["192.0.2.1"], "next": null}"#)
            .unwrap();
    assert_eq!(last, None);
    a.merge(b);
    assert_eq!(a.values[4], vec!["a", "b", "c"]);
    assert_eq!(a.values[0], vec!["192.0.2.1"]);
    let (_, _, empty) = Feed::parse_page(br#"{"next": ""}"#).unwrap();
    assert_eq!(empty, None);
}

#[test]
fn keys_are_spelled_as_documented() {
    assert_eq!(
        dyn_key(ListKind::Deny, IdType::Username, 0),
        "aw:d:username:0"
    );
    assert_eq!(dyn_key(ListKind::Allow, IdType::Ip, 4095), "aw:a:ip:4095");
    assert_eq!(feed_key(1, IdType::ApiKey, 65535), "aw:f1:api_key:65535");
    assert_eq!(
        feed_key(0, IdType::Cookie, 4_294_967_295),
        "aw:f0:cookie:4294967295"
    );
}

/// A store that counts reads of feed buckets.
#[derive(Default)]
struct CountingStore {
    inner: MemStore,
    feed_reads: std::cell::Cell<usize>,
}

impl Store for CountingStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        if key.starts_with("aw:f") {
            self.feed_reads.set(self.feed_reads.get() + 1);
        }
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        self.inner.set(key, value, cas)
    }
}

#[test]
fn feed_cache_serves_repeat_lookups_until_the_generation_changes() {
    let s = CountingStore::default();
    let c = ConfigLists::default();
    let cache = FeedCache::default();
    let (f1, _) = Feed::parse(br#"{"username": ["mallory"], "token": ["t-1"]}"#).unwrap();
    replace_feed(&s, &f1).unwrap();
    s.feed_reads.set(0);
    for _ in 0..10 {
        let l = Lookup::new(&s, &c, 0, true).with_cache(&cache);
        assert_eq!(
            l.find(ListKind::Deny, IdType::Username, "mallory"),
            Some(Source::AttackList)
        );
        assert_eq!(l.find(ListKind::Deny, IdType::Username, "bob"), None);
        assert_eq!(
            l.find(ListKind::Deny, IdType::Token, "t-1"),
            Some(Source::AttackList)
        );
    }
    // One read per distinct bucket (the feed is tiny: one bucket per type), not per request.
    assert_eq!(s.feed_reads.get(), 2);

    // A new feed: the cached buckets of generation 1 are never served again.
    let (f2, _) = Feed::parse(br#"{"username": ["bob"], "token": ["t-2"]}"#).unwrap();
    replace_feed(&s, &f2).unwrap();
    let l = Lookup::new(&s, &c, 0, true).with_cache(&cache);
    assert_eq!(l.find(ListKind::Deny, IdType::Username, "mallory"), None);
    assert_eq!(
        l.find(ListKind::Deny, IdType::Username, "bob"),
        Some(Source::AttackList)
    );
    assert_eq!(l.find(ListKind::Deny, IdType::Token, "t-1"), None);
    // An emptied feed too.
    replace_feed(&s, &Feed::default()).unwrap();
    let l = Lookup::new(&s, &c, 0, true).with_cache(&cache);
    assert_eq!(l.find(ListKind::Deny, IdType::Username, "bob"), None);
}

#[test]
fn feed_cache_agrees_with_uncached_lookups_on_a_large_feed() {
    let s = CountingStore::default();
    let c = ConfigLists::default();
    let cache = FeedCache::default();
    let mut f = Feed::default();
    // More buckets than cache slots, so slots are shared and overwritten.
    f.values[1] = (0..200_000).map(|i| format!("tok-{i}")).collect();
    replace_feed(&s, &f).unwrap();
    assert!(Meta::load(&s).0.feed_buckets[1] as usize > FEED_CACHE_SLOTS);
    for round in 0..2 {
        for i in (0..240_000).step_by(29) {
            let v = format!("tok-{i}");
            let plain = Lookup::new(&s, &c, 0, true).find(ListKind::Deny, IdType::Token, &v);
            let cached = Lookup::new(&s, &c, 0, true).with_cache(&cache).find(
                ListKind::Deny,
                IdType::Token,
                &v,
            );
            assert_eq!(plain, cached, "{v} round {round}");
            assert_eq!(plain.is_some(), i < 200_000, "{v}");
        }
    }
}

#[test]
fn feed_cache_skips_oversized_buckets() {
    let s = CountingStore::default();
    let c = ConfigLists::default();
    let cache = FeedCache::default();
    let mut f = Feed::default();
    // Values longer than a cacheable bucket.
    f.values[2] = (0..4).map(|i| format!("{i}{}", "k".repeat(5000))).collect();
    replace_feed(&s, &f).unwrap();
    s.feed_reads.set(0);
    let v = format!("1{}", "k".repeat(5000));
    for _ in 0..3 {
        let l = Lookup::new(&s, &c, 0, true).with_cache(&cache);
        assert_eq!(
            l.find(ListKind::Deny, IdType::ApiKey, &v),
            Some(Source::AttackList)
        );
    }
    assert_eq!(s.feed_reads.get(), 3);
}

#[test]
fn the_bucket_hash_is_fnv1a_64_as_stored_in_shared_data() {
    // Published FNV-1a 64-bit test vectors: the layout depends on them across VMs and versions.
    assert_eq!(super::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(super::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(super::fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn find_feed_agrees_with_walking_the_bucket() {
    // Values of every tag width (one-byte tags below 64 bytes, two- and three-byte ones above),
    // with and without an expiry, some sharing a fingerprint on purpose.
    let values: Vec<String> = (0..40)
        .map(|i| match i % 4 {
            0 => format!("v{i}"),
            1 => "x".repeat(63 + i),
            2 => "y".repeat(8200 + i),
            _ => format!("user-{i}@example.com"),
        })
        .collect();
    let mut bucket = Vec::new();
    let mut kept = Vec::new();
    for (i, v) in values.iter().enumerate().step_by(2) {
        let exp = if i % 3 == 0 { 1_000 + i as u64 } else { 0 };
        let h = if i % 5 == 0 {
            0x1234_0000_0000
        } else {
            feed_hash(v.as_bytes())
        };
        encode_feed(&mut bucket, h, v.as_bytes(), exp);
        kept.push((v.clone(), h, exp));
    }
    let reference = |b: &[u8], v: &str, h: u64, now: u64| {
        walk_feed(b)
            .any(|(f, e, x)| f == feed_fp(h) && x == v.as_bytes() && live(e, now))
            .then_some(Source::AttackList)
    };
    for cut in [bucket.len(), bucket.len() - 1, bucket.len() / 2, 3, 0] {
        let b = &bucket[..cut];
        for now in [0, 1_010, 5_000] {
            for (v, h, _) in &kept {
                assert_eq!(
                    find_feed(b, v, *h, now),
                    reference(b, v, *h, now),
                    "{cut} {now}"
                );
            }
            for v in values.iter().skip(1).step_by(2) {
                let h = feed_hash(v.as_bytes());
                assert_eq!(find_feed(b, v, h, now), None);
                assert_eq!(find_feed(b, v, 0x1234_0000_0000, now), None);
            }
        }
    }
    // Whole: every kept value is found while live.
    for (v, h, exp) in &kept {
        let want = (*exp == 0 || *exp > 1_010).then_some(Source::AttackList);
        assert_eq!(find_feed(&bucket, v, *h, 1_010), want, "{v:.10}");
    }
}
