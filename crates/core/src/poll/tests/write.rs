//! Tests of the feed written in slices on later ticks: the same data as in one go, no poll
//! meanwhile, the lease kept, failures and overtaking writers, VMs that serve no request.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;

/// A mock VM whose work takes time: its clock moves `per_read` ms each time it is read.
struct Slow<'a> {
    h: &'a MockHost,
    per_read: u64,
    /// Feed-bucket writes refused after this many (`usize::MAX`: none refused).
    feed_writes_left: std::cell::Cell<usize>,
}

impl Slow<'_> {
    fn new(h: &MockHost, per_read: u64) -> Slow<'_> {
        Slow {
            h,
            per_read,
            feed_writes_left: std::cell::Cell::new(usize::MAX),
        }
    }
}

impl Store for Slow<'_> {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.h.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        if key.starts_with("aw:f") {
            let left = self.feed_writes_left.get();
            if left == 0 {
                return false;
            }
            self.feed_writes_left.set(left.saturating_sub(1));
        }
        self.h.set(key, value, cas)
    }
}

impl Clock for Slow<'_> {
    fn now_ms(&self) -> u64 {
        let t = self.h.now_ms();
        self.h.advance(self.per_read);
        t
    }
}

impl HttpCalls for Slow<'_> {
    fn dispatch(&self, call: &CallRequest) -> crate::error::Result<u32> {
        self.h.dispatch(call)
    }
}

impl Metrics for Slow<'_> {
    fn increment(&self, counter: Counter, n: u64) {
        self.h.increment(counter, n);
    }
}

/// A one-page feed of `n` usernames (`{prefix}-{i}`) and as many IPs.
fn big_feed(n: usize, prefix: &str) -> String {
    let users: Vec<String> = (0..n).map(|i| format!("\"{prefix}-{i}\"")).collect();
    let ips: Vec<String> = (0..n)
        .map(|i| format!("\"10.{}.{}.{}\"", (i >> 16) & 255, (i >> 8) & 255, i & 255))
        .collect();
    format!(
        r#"{{"username": [{}], "ip": [{}]}}"#,
        users.join(","),
        ips.join(",")
    )
}

fn user_blocked(h: &MockHost, user: &str) -> bool {
    let c = crate::lists::ConfigLists::default();
    crate::lists::Lookup::new(h, &c, 0, true).find(
        crate::lists::ListKind::Deny,
        IdType::Username,
        user,
    ) == Some(crate::lists::Source::AttackList)
}

/// Tick `p` on `h` every `gap_ms` (of the mock clock) until its write ends; returns the ticks.
fn tick_until_written(p: &mut Poller, h: &Slow, s: &AttackListSettings, gap_ms: u64) -> usize {
    for ticks in 1..100_000 {
        h.h.advance(gap_ms);
        p.tick(h, Some(s), h.h.now_ms());
        if !p.writing() {
            return ticks;
        }
    }
    panic!("the write never ended");
}

#[test]
fn the_last_page_is_written_in_slices_on_later_ticks_and_no_poll_starts_meanwhile() {
    let m = MockHost::new(T0);
    let h = Slow::new(&m, 10);
    let mut p = Poller::new(1);
    let mut s = settings();
    s.interval_s = 1;
    s.timeout_ms = 500;
    s.max_body_bytes = 8 << 20;
    load(&mut p, &m, r#"{"username": ["old-user"]}"#);
    m.advance(10_000);
    let start = m.now_ms();
    p.tick(&h, Some(&s), start);
    let (t, _) = m.take_call().unwrap();
    let body = big_feed(30_000, "u");
    let due_before = m.get(POLL_KEY).0.unwrap();
    assert!(p.on_answer(&h, Some(&s), t, &answer_with(&body, &[("etag", "\"big\"")])));
    assert!(p.writing() && p.in_flight(), "one slice ran, more to do");
    // The clock moves 10 ms a read: parsing the page and the looks around the slice read it too.
    assert!(
        m.now_ms() - start <= WRITE_SLICE_MS + 40,
        "the first slice kept to its budget"
    );
    assert_eq!(generation(&m), 1);
    assert!(user_blocked(&m, "old-user") && !user_blocked(&m, "u-7"));
    assert_eq!(
        m.count(Counter::AttackListPollsOk),
        1,
        "counted when written"
    );
    // Ticks far apart (a busy worker), so that the write outlasts the interval.
    let ticks = tick_until_written(&mut p, &h, &s, 100);
    assert!(ticks > 5, "{ticks} ticks");
    assert!(
        m.now_ms() > start + 1_500,
        "the write outlasted the interval"
    );
    assert_eq!(m.pending(), 0, "no poll started while writing");
    assert_ne!(m.get(POLL_KEY).0.unwrap(), due_before, "the lease was kept");
    assert_eq!(generation(&m), 2);
    assert!(!user_blocked(&m, "old-user") && user_blocked(&m, "u-7"));
    assert_eq!(
        lists::feed_entries(&m, IdType::Ip, usize::MAX).len(),
        30_000
    );
    assert_eq!(m.count(Counter::AttackListPollsOk), 2);
    assert_eq!(m.count(Counter::AttackListPollsFailed), 0);
    assert_eq!(
        Validators::load(&m).unwrap().etag.as_deref(),
        Some("\"big\"")
    );
    // Polls resume once the write is done (the next due time is an interval after it).
    m.advance(1_000);
    p.tick(&m, Some(&s), m.now_ms());
    assert_eq!(m.pending(), 1);
}

#[test]
fn a_write_is_exactly_what_one_tick_writes_with_a_clock_that_stands_still() {
    let (slow, still) = (MockHost::new(T0), MockHost::new(T0));
    let body = big_feed(5_000, "x");
    let mut p = Poller::new(1);
    load(&mut p, &still, &body);
    assert!(!p.writing(), "a clock that stands still: all in the answer");
    let h = Slow::new(&slow, 3);
    let mut q = Poller::new(1);
    q.tick(&h, Some(&settings()), slow.now_ms());
    let (t, _) = slow.take_call().unwrap();
    assert!(q.on_answer(
        &h,
        Some(&settings()),
        t,
        &answer(Some(200), body.as_bytes())
    ));
    assert!(q.writing());
    tick_until_written(&mut q, &h, &settings(), 2);
    for t in IdType::ALL {
        let all = |m: &MockHost| {
            let mut v: Vec<String> = lists::feed_entries(m, t, usize::MAX)
                .into_iter()
                .map(|e| e.value)
                .collect();
            v.sort();
            v
        };
        assert_eq!(all(&slow), all(&still), "{t:?}");
    }
    assert_eq!(Meta::load(&slow).0, Meta::load(&still).0);
}

#[test]
fn a_write_that_fails_mid_way_or_is_overtaken_keeps_the_live_list() {
    for overtaken in [false, true] {
        let m = MockHost::new(T0);
        let other = m.sharing();
        let h = Slow::new(&m, 1);
        let mut p = Poller::new(1);
        load(&mut p, &m, r#"{"username": ["old-user"]}"#);
        m.advance(10_000);
        p.tick(&h, Some(&settings()), m.now_ms());
        let (t, _) = m.take_call().unwrap();
        let body = big_feed(20_000, "u");
        if !overtaken {
            h.feed_writes_left.set(800);
        }
        assert!(p.on_answer(
            &h,
            Some(&settings()),
            t,
            &answer(Some(200), body.as_bytes())
        ));
        assert!(p.writing());
        if overtaken {
            // Another VM writes a feed of its own meanwhile (its lease expired long ago).
            lists::store_feed(&other, &{
                let mut f = FeedBuilder::default();
                f.add_page(br#"{"username": ["theirs"]}"#, T0).unwrap();
                f
            })
            .unwrap();
        }
        tick_until_written(&mut p, &h, &settings(), 2);
        assert_eq!(m.count(Counter::AttackListPollsFailed), 1, "{overtaken}");
        assert_eq!(m.count(Counter::AttackListPollsOk), 1, "{overtaken}");
        assert!(!user_blocked(&m, "u-1"), "{overtaken}");
        let live = if overtaken { "theirs" } else { "old-user" };
        assert!(user_blocked(&m, live), "{overtaken}");
        assert_eq!(generation(&m), 1 + u32::from(overtaken));
        // The next interval polls again.
        m.advance(10_000);
        p.tick(&m, Some(&settings()), m.now_ms());
        assert_eq!(m.pending(), 1, "{overtaken}");
    }
}

#[test]
fn the_lease_is_kept_only_by_its_holder_and_only_near_its_due_time() {
    let h = MockHost::new(T0);
    assert!(!keep_poll(&h, 1, T0, 1_000), "no lease yet");
    assert!(claim_poll(&h, 1, T0, 10_000));
    assert!(!keep_poll(&h, 1, T0 + 1_000, 10_000), "far from due");
    assert!(!keep_poll(&h, 2, T0 + 9_800, 10_000), "not ours");
    assert!(keep_poll(&h, 1, T0 + 9_800, 10_000));
    assert!(!claim_poll(&h, 2, T0 + 10_000, 10_000), "pushed on");
    assert!(claim_poll(&h, 2, T0 + 19_800, 10_000));
}

#[test]
fn a_vm_that_serves_no_request_writes_in_longer_slices() {
    let body = big_feed(20_000, "u");
    let mut ticks = Vec::new();
    for serving in [true, false] {
        let m = MockHost::new(T0);
        let h = Slow::new(&m, 10);
        let mut p = Poller::new(1);
        p.set_serving(serving);
        p.tick(&h, Some(&settings()), m.now_ms());
        let (t, _) = m.take_call().unwrap();
        assert!(p.on_answer(
            &h,
            Some(&settings()),
            t,
            &answer(Some(200), body.as_bytes())
        ));
        ticks.push(if p.writing() {
            tick_until_written(&mut p, &h, &settings(), 2)
        } else {
            0
        });
        assert_eq!(m.count(Counter::AttackListPollsOk), 1, "serving {serving}");
    }
    assert!(
        ticks[0] > 2 * ticks[1] && ticks[0] > 3,
        "ticks (serving, idle): {ticks:?}"
    );
}
