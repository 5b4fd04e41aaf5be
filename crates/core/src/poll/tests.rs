//! Tests of the attack-list poll against the mock host: the election, pagination, failures and
//! validators (the feed written in slices: [`write`]).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::collections::BTreeMap;

use super::*;
use crate::host::mock::{answer, MockHost};
use crate::host::{Clock, HttpCalls, Metrics};
use crate::identity::IdType;
use crate::lists::{self, Meta};

const T0: u64 = 1_700_000_000_000;

fn settings() -> AttackListSettings {
    AttackListSettings {
        cluster: "abs".into(),
        path: "/v4/attacks".into(),
        authority: String::new(),
        interval_s: 10,
        timeout_ms: 1000,
        headers: BTreeMap::from([("X-Key".to_string(), "k".to_string())]),
        max_body_bytes: 1 << 20,
    }
}

fn generation(h: &MockHost) -> u32 {
    Meta::load(h).0.generation
}

fn ips(h: &MockHost) -> Vec<String> {
    let mut v: Vec<String> = lists::feed_entries(h, IdType::Ip, 100)
        .into_iter()
        .map(|e| e.value)
        .collect();
    v.sort();
    v
}

/// Answer the oldest call of `h` with `status` and `body`.
fn reply(p: &mut Poller, h: &MockHost, status: Option<u16>, body: &str) {
    let (t, _) = h.take_call().unwrap();
    assert!(p.on_answer(h, Some(&settings()), t, &answer(status, body.as_bytes())));
}

/// Run a whole successful one-page poll on `h`.
fn load(p: &mut Poller, h: &MockHost, body: &str) {
    p.tick(h, Some(&settings()), h.now_ms());
    reply(p, h, Some(200), body);
}

#[test]
fn one_vm_polls_per_interval_and_a_later_interval_elects_again() {
    let a = MockHost::new(T0);
    let b = a.sharing();
    let (mut pa, mut pb) = (Poller::new(1), Poller::new(2));
    let s = settings();
    pa.tick(&a, Some(&s), T0);
    pb.tick(&b, Some(&s), T0);
    assert_eq!(
        (a.pending(), b.pending()),
        (1, 0),
        "only the first VM polls"
    );
    let (t, req) = a.take_call().unwrap();
    assert_eq!(req, page_request(&s, "/v4/attacks"));
    assert_eq!(req.headers[3], ("accept".into(), "application/json".into()));
    assert_eq!(req.headers[4], ("x-key".into(), "k".into()));
    assert!(pa.on_answer(
        &a,
        Some(&s),
        t,
        &answer(Some(200), br#"{"ip": ["10.0.0.1"]}"#)
    ));
    for now in [T0 + 1, T0 + 9_999] {
        pa.tick(&a, Some(&s), now);
        pb.tick(&b, Some(&s), now);
    }
    assert_eq!(
        (a.pending(), b.pending()),
        (0, 0),
        "nobody polls within the interval"
    );
    pb.tick(&b, Some(&s), T0 + 10_000);
    pa.tick(&a, Some(&s), T0 + 10_000);
    assert_eq!(
        (a.pending(), b.pending()),
        (0, 1),
        "the next interval elects again"
    );
    assert!(!claim_poll(&a, 1, T0 + 10_001, 10_000));
    assert!(claim_poll(&a, 1, T0 + 20_000, 10_000));
}

#[test]
fn no_poll_without_settings_or_while_one_is_in_flight() {
    let h = MockHost::new(T0);
    let mut p = Poller::new(1);
    p.tick(&h, None, T0);
    assert_eq!(h.pending(), 0);
    p.tick(&h, Some(&settings()), T0);
    p.tick(&h, Some(&settings()), T0 + 60_000);
    assert_eq!(h.pending(), 1, "one poll in flight at a time");
    assert!(p.in_flight());
    assert!(!p.on_answer(&h, Some(&settings()), 999, &answer(Some(200), b"{}")));
    assert!(p.in_flight(), "a foreign token is not ours");
}

#[test]
fn two_pages_are_merged_and_stored_once() {
    let h = MockHost::new(T0);
    let mut p = Poller::new(1);
    p.tick(&h, Some(&settings()), T0);
    reply(
        &mut p,
        &h,
        Some(200),
        r#"{"ip": ["10.0.0.1", "bad ip"], "next": "/v4/attacks?page=2"}"#,
    );
    assert_eq!(generation(&h), 0, "nothing replaced before the last page");
    let (t, req) = h.take_call().unwrap();
    assert_eq!(
        req.headers[1],
        (":path".into(), "/v4/attacks?page=2".into())
    );
    let last = answer(
        Some(200),
        br#"{"ip": ["10.0.0.2", "10.0.0.1"], "username": ["bob"], "next": null}"#,
    );
    assert!(p.on_answer(&h, Some(&settings()), t, &last));
    assert_eq!(generation(&h), 1);
    assert_eq!(ips(&h), ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(lists::feed_entries(&h, IdType::Username, 10).len(), 1);
    assert_eq!(h.count(Counter::AttackListPollsOk), 1);
    assert_eq!(h.count(Counter::AttackListPollsFailed), 0);
}

#[test]
fn failures_keep_the_last_good_list() {
    let big = format!(r#"{{"ip": ["{}"]}}"#, "1".repeat(10));
    let rows: [(&str, Option<u16>, String); 5] = [
        ("status", Some(503), r#"{"ip": ["10.9.9.9"]}"#.into()),
        ("no answer", None, String::new()),
        ("not json", Some(200), "nope".into()),
        (
            "bad next",
            Some(200),
            r#"{"ip": ["10.9.9.9"], "next": "http://x/p2"}"#.into(),
        ),
        ("too big", Some(200), big),
    ];
    for (name, status, body) in rows {
        let h = MockHost::new(T0);
        let mut p = Poller::new(1);
        load(&mut p, &h, r#"{"ip": ["10.0.0.1"]}"#);
        h.set_now(T0 + 10_000);
        let mut s = settings();
        if name == "too big" {
            s.max_body_bytes = 10;
        }
        p.tick(&h, Some(&s), h.now_ms());
        let (t, _) = h.take_call().unwrap();
        assert!(
            p.on_answer(&h, Some(&s), t, &answer(status, body.as_bytes())),
            "{name}"
        );
        assert_eq!(h.count(Counter::AttackListPollsFailed), 1, "{name}");
        assert_eq!(
            (generation(&h), ips(&h)),
            (1, vec!["10.0.0.1".to_string()]),
            "{name}"
        );
        assert_eq!(h.pending(), 0, "{name}");
    }
}

#[test]
fn a_failing_later_page_keeps_the_last_good_list() {
    let h = MockHost::new(T0);
    let mut p = Poller::new(1);
    load(&mut p, &h, r#"{"ip": ["10.0.0.1"]}"#);
    h.advance(10_000);
    p.tick(&h, Some(&settings()), h.now_ms());
    reply(
        &mut p,
        &h,
        Some(200),
        r#"{"ip": ["10.0.0.2"], "next": "/p2"}"#,
    );
    reply(&mut p, &h, Some(500), "");
    assert_eq!((generation(&h), ips(&h)), (1, vec!["10.0.0.1".to_string()]));
    assert_eq!(h.count(Counter::AttackListPollsFailed), 1);
    h.advance(10_000);
    load(&mut p, &h, r#"{"ip": ["10.0.0.3"]}"#);
    assert_eq!(
        ips(&h),
        ["10.0.0.3"],
        "a page left over from the failed poll is not merged"
    );
}

#[test]
fn too_many_pages_fail() {
    let h = MockHost::new(T0);
    let mut p = Poller::new(1);
    p.tick(&h, Some(&settings()), T0);
    for _ in 0..MAX_FEED_PAGES {
        reply(
            &mut p,
            &h,
            Some(200),
            r#"{"ip": ["10.0.0.1"], "next": "/more"}"#,
        );
    }
    assert_eq!(h.pending(), 0);
    assert_eq!(h.sent.borrow().len(), MAX_FEED_PAGES as usize);
    assert_eq!(h.count(Counter::AttackListPollsFailed), 1);
    assert_eq!(generation(&h), 0);
}

#[test]
fn dispatch_failures_count_as_failed_polls() {
    let h = MockHost::new(T0);
    let mut p = Poller::new(1);
    *h.fail_dispatch.borrow_mut() = Some("no cluster".into());
    p.tick(&h, Some(&settings()), T0);
    assert_eq!(h.count(Counter::AttackListPollsFailed), 1);
    assert!(!p.in_flight());
    *h.fail_dispatch.borrow_mut() = None;
    h.advance(10_000);
    p.tick(&h, Some(&settings()), h.now_ms());
    let (t, _) = h.take_call().unwrap();
    *h.fail_dispatch.borrow_mut() = Some("no cluster".into());
    let first = answer(Some(200), br#"{"ip": ["10.0.0.1"], "next": "/p2"}"#);
    assert!(p.on_answer(&h, Some(&settings()), t, &first));
    assert_eq!(
        h.count(Counter::AttackListPollsFailed),
        2,
        "the next page could not be sent"
    );
    assert!(!p.in_flight());
    assert_eq!(generation(&h), 0);
}

/// A 200 answer with `body` and these response headers.
fn answer_with(body: &str, headers: &[(&str, &str)]) -> CallAnswer {
    CallAnswer {
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..answer(Some(200), body.as_bytes())
    }
}

fn header<'a>(req: &'a CallRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

const LM: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

#[test]
fn validators_of_a_complete_poll_make_the_next_poll_conditional() {
    let a = MockHost::new(T0);
    let b = a.sharing();
    let (mut pa, mut pb) = (Poller::new(1), Poller::new(2));
    let s = settings();
    pa.tick(&a, Some(&s), T0);
    let (t, req) = a.take_call().unwrap();
    assert_eq!(header(&req, "if-none-match"), None, "nothing known yet");
    let first = answer_with(
        r#"{"ip": ["10.0.0.1"]}"#,
        &[("ETag", "\"v1\""), ("Last-Modified", LM)],
    );
    assert!(pa.on_answer(&a, Some(&s), t, &first));
    assert_eq!(generation(&a), 1);
    // Another VM of the same process wins the next interval: the validators are shared.
    b.set_now(T0 + 10_000);
    pb.tick(&b, Some(&s), T0 + 10_000);
    let (t, req) = b.take_call().unwrap();
    assert_eq!(header(&req, "if-none-match"), Some("\"v1\""));
    assert_eq!(header(&req, "if-modified-since"), Some(LM));
    assert!(pb.on_answer(&b, Some(&s), t, &answer(Some(304), b"")));
    assert_eq!(generation(&a), 1, "304: the feed is not rewritten");
    assert_eq!(ips(&a), ["10.0.0.1"]);
    assert_eq!(b.count(Counter::AttackListNotModified), 1);
    assert_eq!(b.count(Counter::AttackListPollsOk), 1);
    assert_eq!(b.count(Counter::AttackListPollsFailed), 0);
    // A changed feed (200 with a new ETag) replaces it and its validators.
    a.set_now(T0 + 20_000);
    pa.tick(&a, Some(&s), T0 + 20_000);
    let (t, _) = a.take_call().unwrap();
    let changed = answer_with(r#"{"ip": ["10.0.0.2"]}"#, &[("etag", "W/\"v2\"")]);
    assert!(pa.on_answer(&a, Some(&s), t, &changed));
    assert_eq!((generation(&a), ips(&a)), (2, vec!["10.0.0.2".to_string()]));
    let v = Validators::load(&a).unwrap();
    assert_eq!(
        (v.etag.as_deref(), v.last_modified),
        (Some("W/\"v2\""), None)
    );
}

#[test]
fn no_validators_without_them_or_for_another_generation_or_a_paginated_feed() {
    let h = MockHost::new(T0);
    let mut p = Poller::new(1);
    let s = settings();
    // A server without validators: the next poll is unconditional.
    load(&mut p, &h, r#"{"ip": ["10.0.0.1"]}"#);
    assert_eq!(Validators::load(&h), None);
    // Validators of another generation are not used.
    let v = Validators {
        etag: Some("\"old\"".into()),
        last_modified: None,
    };
    assert!(v.save(&h, 7));
    assert_eq!(Validators::load(&h), None);
    assert!(v.save(&h, 1));
    assert_eq!(Validators::load(&h), Some(v));
    // A paginated feed clears them: its first page alone cannot say "unchanged".
    h.advance(10_000);
    p.tick(&h, Some(&s), h.now_ms());
    let (t, req) = h.take_call().unwrap();
    assert_eq!(header(&req, "if-none-match"), Some("\"old\""));
    let page1 = answer_with(
        r#"{"ip": ["10.0.0.3"], "next": "/p2"}"#,
        &[("etag", "\"p1\"")],
    );
    assert!(p.on_answer(&h, Some(&s), t, &page1));
    let (t, req) = h.take_call().unwrap();
    assert_eq!(header(&req, "if-none-match"), None, "later pages are plain");
    let page2 = answer_with(r#"{"ip": ["10.0.0.4"]}"#, &[("etag", "\"p2\"")]);
    assert!(p.on_answer(&h, Some(&s), t, &page2));
    assert_eq!(generation(&h), 2);
    assert_eq!(Validators::load(&h), None);
}

#[test]
fn a_304_to_an_unconditional_request_fails_and_bad_validators_are_ignored() {
    let h = MockHost::new(T0);
    let mut p = Poller::new(1);
    load(&mut p, &h, r#"{"ip": ["10.0.0.1"]}"#);
    h.advance(10_000);
    p.tick(&h, Some(&settings()), h.now_ms());
    reply(&mut p, &h, Some(304), "");
    assert_eq!(h.count(Counter::AttackListPollsFailed), 1);
    assert_eq!(h.count(Counter::AttackListNotModified), 0);
    assert_eq!(ips(&h), ["10.0.0.1"]);
    let long = "x".repeat(MAX_VALIDATOR_LEN + 1);
    let v = Validators::of(&answer_with(
        "{}",
        &[("etag", &long), ("last-modified", " ")],
    ));
    assert!(v.is_empty());
    // Truncated or garbage stored bytes read as none.
    for bytes in [
        &b"\x01\x00\x00\x00\x05\x00ab"[..],
        b"\x01",
        b"\x01\x00\x00\x00",
    ] {
        h.set(VALIDATORS_KEY, bytes, None);
        assert_eq!(Validators::load(&h), None, "{bytes:?}");
    }
}

mod write;
