//! Flow control: threshold parsing, window arithmetic, process-wide counting, bounded memory.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::json;

use super::*;
use crate::lists::MemStore;

fn th(limit: u32, window_s: u32) -> Threshold {
    Threshold { limit, window_s }
}

#[test]
fn thresholds() {
    let p = |v: Value| parse_threshold(Some(&v));
    assert_eq!(p(json!("100/second")), Ok(Some(th(100, 1))));
    assert_eq!(p(json!(" 5 / Minute ")), Ok(Some(th(5, 60))));
    assert_eq!(p(json!("7/hour")), Ok(Some(th(7, 3600))));
    assert_eq!(p(json!("0/second")), Ok(None));
    assert_eq!(p(json!("")), Ok(None));
    assert_eq!(parse_threshold(None), Ok(None));
    for bad in [
        json!("5"),
        json!("x/second"),
        json!("5/day"),
        json!("-1/second"),
        json!(5),
        json!("5/"),
    ] {
        let e = p(bad.clone()).unwrap_err();
        assert_eq!(e.field, "flow_control.client_spike_threshold", "{bad}");
    }
}

#[test]
fn counts_up_to_the_limit_then_retry_after_the_window() {
    let s = MemStore::default();
    let t = th(3, 60);
    let now = 1_000_020; // 20 s into a minute window ending at 1_000_020 - 0 + ...
    let end = now - now % 60 + 60;
    for _ in 0..3 {
        assert_eq!(hit(&s, "shop", "192.0.2.1", t, now), Flow::Allowed);
    }
    let over = hit(&s, "shop", "192.0.2.1", t, now + 5);
    assert_eq!(
        over,
        Flow::Over {
            retry_after_s: (end - now - 5) as u32
        }
    );
    // Another client and another API have their own budgets.
    assert_eq!(hit(&s, "shop", "192.0.2.2", t, now), Flow::Allowed);
    assert_eq!(hit(&s, "bank", "192.0.2.1", t, now), Flow::Allowed);
    // The next window starts again.
    assert_eq!(hit(&s, "shop", "192.0.2.1", t, end), Flow::Allowed);
}

#[test]
fn retry_after_is_at_least_one_second() {
    let s = MemStore::default();
    let t = th(1, 1);
    assert_eq!(hit(&s, "a", "ip", t, 50), Flow::Allowed);
    assert_eq!(hit(&s, "a", "ip", t, 50), Flow::Over { retry_after_s: 1 });
    assert_eq!(hit(&s, "a", "ip", t, 51), Flow::Allowed);
}

#[test]
fn a_changed_threshold_applies_at_once() {
    let s = MemStore::default();
    for _ in 0..2 {
        assert_eq!(hit(&s, "a", "ip", th(2, 60), 120), Flow::Allowed);
    }
    assert!(matches!(
        hit(&s, "a", "ip", th(2, 60), 121),
        Flow::Over { .. }
    ));
    // Raised in the same window: the count carries on.
    assert_eq!(hit(&s, "a", "ip", th(3, 60), 122), Flow::Allowed);
    // A new window length starts a new count.
    assert_eq!(hit(&s, "a", "ip", th(1, 3600), 122), Flow::Allowed);
    assert!(matches!(
        hit(&s, "a", "ip", th(1, 3600), 123),
        Flow::Over { .. }
    ));
}

/// Two "workers" sharing one store, interleaving reads and writes: no lost counts.
struct Racing<'a> {
    inner: &'a MemStore,
    /// Writes by the other worker slipped in before each of our sets.
    other: std::cell::Cell<u32>,
}

impl Store for Racing<'_> {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        if self.other.get() > 0 {
            self.other.set(self.other.get() - 1);
            // The other worker counts its own request first, making our CAS stale.
            assert_eq!(hit(self.inner, "a", "ip", th(100, 60), 600), Flow::Allowed);
        }
        self.inner.set(key, value, cas)
    }
}

#[test]
fn concurrent_updates_lose_no_count() {
    let s = MemStore::default();
    // Create the key first so later writes are real CAS writes.
    assert_eq!(hit(&s, "a", "ip", th(100, 60), 600), Flow::Allowed);
    let r = Racing {
        inner: &s,
        other: std::cell::Cell::new(5),
    };
    for _ in 0..5 {
        assert_eq!(hit(&r, "a", "ip", th(100, 60), 600), Flow::Allowed);
    }
    // 1 + 5 ours + 5 theirs = 11: exactly 89 more fit.
    for _ in 0..89 {
        assert_eq!(hit(&s, "a", "ip", th(100, 60), 601), Flow::Allowed);
    }
    assert!(matches!(
        hit(&s, "a", "ip", th(100, 60), 601),
        Flow::Over { .. }
    ));
}

#[test]
fn memory_is_bounded_and_old_windows_go() {
    let s = MemStore::default();
    let t = th(10, 1);
    for i in 0..20_000u32 {
        let ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        assert_eq!(hit(&s, "a", &ip, t, 1000 + u64::from(i % 3)), Flow::Allowed);
    }
    let mut total = 0;
    for slot in 0..SLOTS {
        let (v, _) = s.get(&format!("aw:fc:{slot}"));
        let n = decode(v.as_deref().unwrap_or_default()).len();
        assert!(n <= PER_SLOT, "slot {slot} holds {n}");
        total += n;
    }
    // Only the windows still open at the last write survive.
    assert!(total <= (SLOTS as usize) * PER_SLOT);
    let (v, _) = s.get(&slot_key("a", "10.0.78.31").0);
    assert!(decode(v.as_deref().unwrap_or_default())
        .iter()
        .all(|e| e.window_end > 1000));
}

#[test]
fn truncated_slots_decode_without_panicking() {
    let e = Entry {
        api: 1,
        window_end: 2,
        count: 3,
        ip: b"1.2.3.4".to_vec(),
    };
    let b = encode(&[e.clone(), e.clone()]);
    for n in 0..b.len() {
        let d = decode(&b[..n]);
        assert!(d.len() <= 2);
    }
    assert_eq!(decode(&b), vec![e.clone(), e]);
}
