//! Tests of the sliced feed writer: the same data as a write in one go, the old generation until
//! the flip, a superseding writer respected, failures that keep the old feed, and the clock
//! deciding the slices.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::cell::Cell;
use std::collections::BTreeMap;

use super::*;

/// A clock that moves `per_read` ms each time it is read (work "takes time").
struct Ticking {
    now: Cell<u64>,
    per_read: u64,
    reads: Cell<u64>,
}

impl Ticking {
    fn new(per_read: u64) -> Ticking {
        Ticking {
            now: Cell::new(1_000),
            per_read,
            reads: Cell::new(0),
        }
    }
}

impl Clock for Ticking {
    fn now_ms(&self) -> u64 {
        self.reads.set(self.reads.get() + 1);
        let t = self.now.get();
        self.now.set(t + self.per_read);
        t
    }
}

/// A feed of `n` entries per type (with duplicates, some expiring), starting at value `from`.
fn feed(n: usize, from: usize) -> FeedBuilder {
    let mut f = FeedBuilder::default();
    for i in from..from + n {
        for t in IdType::ALL {
            let v = match t {
                IdType::Ip => format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
                _ => format!("{}-{i}", t.as_str()),
            };
            f.push(t, &v, if i % 4 == 0 { 0 } else { 2_000 + i as u64 });
            if i % 7 == 0 {
                f.push(t, &v, 0);
            }
        }
    }
    f
}

/// Every key and value of a store.
fn dump(s: &MemStore) -> BTreeMap<String, Vec<u8>> {
    s.map
        .borrow()
        .iter()
        .map(|(k, (v, _))| (k.clone(), v.clone()))
        .collect()
}

fn deny(s: &impl Store, t: IdType, v: &str) -> bool {
    let c = ConfigLists::default();
    Lookup::new(s, &c, 0, true).find(ListKind::Deny, t, v) == Some(Source::AttackList)
}

/// Step `w` with `clock` and `budget_ms` until done; returns the outcome and the slices taken.
fn finish<F: Borrow<FeedBuilder>>(
    w: &mut FeedWriter<F>,
    s: &impl Store,
    clock: &impl Clock,
    budget_ms: u64,
) -> (Result<(u32, usize), UpdateError>, usize) {
    for slices in 1..1_000_000 {
        match w.step(s, clock, budget_ms) {
            Ok(Progress::More) => {}
            Ok(Progress::Done {
                generation,
                entries,
            }) => return (Ok((generation, entries)), slices),
            Err(e) => return (Err(e), slices),
        }
    }
    panic!("never done");
}

#[test]
fn a_write_in_many_slices_stores_exactly_what_a_write_in_one_go_does() {
    // Twice: a first feed into an empty store, then a second that replaces it (clean-up).
    let (one, sliced) = (MemStore::default(), MemStore::default());
    for (round, f) in [feed(20_000, 0), feed(15_000, 7_000)].iter().enumerate() {
        let want = store_feed(&one, f).unwrap();
        let clock = Ticking::new(1);
        let mut w = FeedWriter::new(&sliced, f);
        let (got, slices) = finish(&mut w, &sliced, &clock, 3);
        assert_eq!(got, Ok(want), "round {round}");
        assert!(slices > 30, "{slices} slices in round {round}");
        assert_eq!(dump(&one), dump(&sliced), "round {round}");
    }
    let m = Meta::load(&sliced).0;
    assert_eq!(m.generation, 2);
    // The clean-up emptied every bucket of generation 1's slot.
    for t in IdType::ALL {
        for b in 0..feed_bucket_count(20_000, 20_000 * 8) {
            assert_eq!(
                sliced.get(&feed_key(1, t, b)).0,
                Some(Vec::new()),
                "{t:?} {b}"
            );
        }
    }
}

#[test]
fn readers_see_the_old_generation_until_the_flip_then_the_whole_new_one() {
    let s = MemStore::default();
    store_feed(&s, &feed(10_000, 0)).unwrap();
    let next = feed(10_000, 100_000);
    let clock = Ticking::new(1);
    let mut w = FeedWriter::new(&s, next);
    let mut flipped_at = None;
    for slice in 0.. {
        let p = w.step(&s, &clock, 2).unwrap();
        let live = Meta::load(&s).0.generation;
        for t in IdType::ALL {
            let (old, new) = (
                format!("{}-5", t.as_str()),
                format!("{}-100005", t.as_str()),
            );
            if t == IdType::Ip {
                continue;
            }
            if live == 1 {
                assert!(deny(&s, t, &old) && !deny(&s, t, &new), "slice {slice}");
            } else {
                assert!(!deny(&s, t, &old) && deny(&s, t, &new), "slice {slice}");
            }
        }
        if live == 2 && flipped_at.is_none() {
            flipped_at = Some(slice);
        }
        if p != Progress::More {
            assert_eq!(
                p,
                Progress::Done {
                    generation: 2,
                    entries: 50_000
                }
            );
            break;
        }
    }
    let flipped_at = flipped_at.unwrap();
    assert!(flipped_at > 10, "flipped at slice {flipped_at}");
    // Done is done: another step changes nothing.
    let before = dump(&s);
    assert!(matches!(
        w.step(&s, &clock, 2),
        Ok(Progress::Done { generation: 2, .. })
    ));
    assert_eq!(dump(&s), before);
}

#[test]
fn a_writer_that_flips_first_wins_and_its_slot_is_never_touched() {
    let s = MemStore::default();
    store_feed(&s, &feed(1_000, 0)).unwrap();
    let clock = Ticking::new(1);
    let mut ours = FeedWriter::new(&s, feed(3_000, 50_000));
    assert_eq!(ours.step(&s, &clock, 2), Ok(Progress::More));
    assert_eq!(ours.step(&s, &clock, 2), Ok(Progress::More));
    // Another VM's write starts and ends between our slices (same generation, same slot).
    let theirs = store_feed(&s, &feed(8_000, 90_000)).unwrap();
    let live = dump(&s);
    assert_eq!(
        ours.step(&s, &clock, 2),
        Err(UpdateError::Superseded),
        "our next slice stops"
    );
    assert_eq!(ours.step(&s, &clock, 1_000), Err(UpdateError::Superseded));
    assert_eq!(dump(&s), live, "nothing written after theirs");
    assert_eq!(Meta::load(&s).0.generation, theirs.0);
    assert!(deny(&s, IdType::Token, "token-90001"));
    assert!(!deny(&s, IdType::Token, "token-50001"));

    // One that flips while we clear stops our clean-up (our previous slot is now its slot).
    let mut ours = FeedWriter::new(&s, feed(1_000, 0));
    let (mut clearing, mut slices) = (false, 0);
    while !clearing {
        assert_eq!(ours.step(&s, &clock, 2), Ok(Progress::More));
        clearing = matches!(ours.phase, Phase::Clear { .. });
        slices += 1;
        assert!(slices < 10_000);
    }
    let after = store_feed(&s, &feed(500, 70_000)).unwrap();
    let live = dump(&s);
    assert!(matches!(
        ours.step(&s, &clock, 2),
        Ok(Progress::Done { .. })
    ));
    assert_eq!(dump(&s), live, "no bucket of the newer feed cleared");
    assert_eq!(Meta::load(&s).0.generation, after.0);
}

#[test]
fn a_refused_write_mid_way_keeps_the_old_feed() {
    struct Refusing {
        inner: MemStore,
        allowed: Cell<usize>,
    }
    impl Store for Refusing {
        fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
            if key.starts_with("aw:f") {
                if self.allowed.get() == 0 {
                    return false;
                }
                self.allowed.set(self.allowed.get() - 1);
            }
            self.inner.set(key, value, cas)
        }
    }
    let s = Refusing {
        inner: MemStore::default(),
        allowed: Cell::new(usize::MAX),
    };
    store_feed(&s, &feed(2_000, 0)).unwrap();
    s.allowed.set(100);
    let clock = Ticking::new(1);
    let mut w = FeedWriter::new(&s, feed(2_000, 10_000));
    let (got, slices) = finish(&mut w, &s, &clock, 2);
    assert!(matches!(got, Err(UpdateError::Store(_))), "{got:?}");
    assert!(slices > 1);
    assert_eq!(Meta::load(&s).0.generation, 1);
    assert!(deny(&s, IdType::Username, "username-1"));
    assert!(!deny(&s, IdType::Username, "username-10001"));
    // Failed is final.
    s.allowed.set(usize::MAX);
    assert!(matches!(
        w.step(&s, &clock, 1_000),
        Err(UpdateError::Store(_))
    ));
    assert_eq!(Meta::load(&s).0.generation, 1);
}

#[test]
fn the_clock_decides_the_slices() {
    let f = feed(5_000, 0);
    // A clock that stands still: one step does everything, whatever the budget.
    let s = MemStore::default();
    let mut w = FeedWriter::new(&s, &f);
    let frozen = Ticking::new(0);
    assert_eq!(
        w.step(&s, &frozen, 0),
        Ok(Progress::More),
        "budget 0: one part"
    );
    let s = MemStore::default();
    let mut w = FeedWriter::new(&s, &f);
    assert!(matches!(
        w.step(&s, &frozen, 10),
        Ok(Progress::Done { generation: 1, .. })
    ));
    // A moving clock: a bigger budget, fewer slices; the clock is read about once per
    // ENTRIES_PER_LOOK entries or BUCKETS_PER_LOOK buckets, not per entry.
    let mut slices = Vec::new();
    for budget in [1, 4, 16, 64] {
        let s = MemStore::default();
        let clock = Ticking::new(1);
        let (got, n) = finish(&mut FeedWriter::new(&s, &f), &s, &clock, budget);
        assert!(got.is_ok());
        slices.push(n);
        let entries = 5 * 5_000 + 5 * 715;
        assert!(
            clock.reads.get() < (entries / 1_000) as u64 + 2 * n as u64 + 1_000,
            "{} reads",
            clock.reads.get()
        );
    }
    assert!(
        slices.windows(2).all(|w| w[0] > w[1]),
        "slices per budget {slices:?}"
    );
    // A budget of 0 still makes progress, a bounded amount per step.
    let s = MemStore::default();
    let clock = Ticking::new(1);
    let (got, n) = finish(&mut FeedWriter::new(&s, &f), &s, &clock, 0);
    assert!(got.is_ok());
    assert!(n >= slices[0], "{n} slices with budget 0");
}
