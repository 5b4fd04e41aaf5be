//! Sideband: the configuration rules, the breaker, ASE's call bodies and what each answer means,
//! driven through the pipeline as the adapter drives it.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::{json, Value};

use super::*;
use crate::call::CallAnswer;
use crate::lists::MemStore;
use crate::pipeline::{on_request_headers, resume, Runtime, Step};
use crate::request::{Request, RequestView};

fn settings(v: Value) -> Result<Option<SidebandSettings>> {
    parse(json!({ "sideband": v }).as_object().unwrap())
}

#[test]
fn configuration_rules() {
    let s = settings(json!({"cluster": "ase"})).unwrap().unwrap();
    assert_eq!(
        (
            s.service,
            s.timeout_ms,
            s.fail_open,
            s.response_call,
            s.only_configured_apis
        ),
        (Service::Ase, 1000, true, true, false)
    );
    assert_eq!(parse(&serde_json::Map::new()).unwrap(), None);
    let rows = [
        (json!({}), "sideband: missing field `cluster`"),
        (json!({"cluster": ""}), "sideband.cluster is empty"),
        (
            json!({"cluster": "a", "service": "kong"}),
            "sideband.service \"kong\" is not a supported service (supported: \"ase\", \"pingauthorize\")",
        ),
        (
            json!({"cluster": "a", "timeout_ms": 0}),
            "sideband.timeout_ms (0) must be between 1 and 60000 ms",
        ),
        (
            json!({"cluster": "a", "timeout_ms": 60001}),
            "must be between 1 and 60000 ms",
        ),
        (
            json!({"cluster": "a", "token": "has space"}),
            "sideband.token must be at most 128 visible ASCII",
        ),
        (
            json!({"cluster": "a", "token": "x".repeat(129)}),
            "sideband.token must be at most 128",
        ),
        (
            json!({"cluster": "a", "path_prefix": "ase/"}),
            "sideband.path_prefix",
        ),
        (
            json!({"cluster": "a", "fail_open": "yes"}),
            "sideband.fail_open must be true or false",
        ),
        (json!({"cluster": "a", "tokn": "x"}), "tokn"),
    ];
    for (v, want) in rows {
        let e = settings(v.clone()).unwrap_err().to_string();
        assert!(e.contains(want), "{v}: {e}");
    }
}

#[test]
fn breaker_opens_after_failures_grows_and_closes_on_success() {
    let b = Breaker::default();
    for _ in 0..FAILURES_TO_OPEN {
        assert!(b.allow(0));
        b.failure(0);
    }
    assert!(!b.allow(500), "open for the first second");
    assert!(b.allow(1_000), "one probe after it");
    assert!(!b.allow(1_001), "only one probe at a time");
    b.failure(1_010);
    assert!(!b.allow(2_500), "the period doubled");
    assert!(b.allow(3_010));
    b.success();
    assert!(b.allow(3_020) && b.allow(3_030), "closed again");
    // The open period never exceeds the maximum.
    for i in 0..20 {
        b.failure(10_000 * i);
    }
    assert!(b.allow(190_000 + OPEN_MAX_MS));
    // A probe whose answer never came does not block probes forever.
    let b = Breaker::default();
    for _ in 0..FAILURES_TO_OPEN {
        b.failure(0);
    }
    assert!(b.allow(1_000));
    assert!(!b.allow(2_000));
    assert!(b.allow(1_000 + TIMEOUT_MS.end() + 1));
}

#[test]
fn warnings_are_rate_limited() {
    let b = Breaker::default();
    assert_eq!(b.may_log(1_000), Some(0));
    assert_eq!(b.may_log(2_000), None);
    assert_eq!(b.may_log(3_000), None);
    assert_eq!(b.may_log(11_000), Some(2));
}

fn runtime(sideband: Value) -> Runtime {
    let cfg = json!({
        "ase": {"enable_xff": true},
        "apis": [{"name": "shop", "api_metadata": {"url": "/shop", "hostname": "*",
            "username_header": "x-user", "enable_blocking": true}}],
        "deny_list": {"username": ["eve"]},
        "sideband": sideband
    });
    Runtime::load(cfg.to_string().as_bytes()).unwrap()
}

fn req(path: &str, headers: &[(&str, &str)]) -> Request {
    let mut all = vec![
        (":method".to_string(), "GET".to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "shop.example".to_string()),
        (":scheme".to_string(), "http".to_string()),
    ];
    all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut v = RequestView::from_headers(all, Some("[2001:db8::5]:41000".into()));
    v.protocol = Some("HTTP/2".into());
    Request::parse(v)
}

fn status(s: Option<u16>) -> CallAnswer {
    CallAnswer {
        status: s,
        ..CallAnswer::default()
    }
}

#[test]
fn the_request_call_has_ases_shape() {
    let rt = runtime(
        json!({"cluster": "ase", "authority": "ase.internal", "path_prefix": "/v1",
                            "token": "0123456789abcdefghijklmnopqrstuv"}),
    );
    let store = MemStore::default();
    let r = req(
        "/shop/a?b=1",
        &[
            ("x-user", "alice"),
            ("x-request-id", "rid-1"),
            ("x-forwarded-for", "203.0.113.5"),
            ("accept", "a"),
            ("accept", "b"),
        ],
    );
    let (_, step) = on_request_headers(&rt, &r, true, &store, 1_000);
    let Step::Call(call) = step else {
        panic!("{step:?}")
    };
    assert_eq!(call.cluster, "ase");
    let h: Vec<(&str, &str)> = call
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        h,
        [
            (":method", "POST"),
            (":path", "/v1/ase/request"),
            (":authority", "ase.internal"),
            ("content-type", "application/json"),
            ("ase-token", "0123456789abcdefghijklmnopqrstuv"),
            ("x-correlationid", "rid-1")
        ]
    );
    assert_eq!(call.timeout_ms, 1000);
    let body: Value = serde_json::from_slice(call.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"source_ip": "203.0.113.5", "source_port": 41000, "method": "GET", "url": "/shop/a?b=1",
               "http_version": "2",
               "headers": [{"host": "shop.example"}, {"x-user": "alice"}, {"x-request-id": "rid-1"},
                           {"x-forwarded-for": "203.0.113.5"}, {"accept": "a"}, {"accept": "b"}],
               "user_info": [{"username": "alice"}]})
    );
}

#[test]
fn answers_allow_block_and_fail_per_fail_open() {
    let store = MemStore::default();
    for fail_open in [true, false] {
        let rt = runtime(json!({"cluster": "ase", "fail_open": fail_open}));
        let r = req("/shop/a", &[]);
        let run = |answer: CallAnswer, now: u64| {
            let (mut o, step) = on_request_headers(&rt, &r, true, &store, now);
            assert!(matches!(step, Step::Call(_)), "{step:?}");
            let step = resume(&rt, &answer, &mut o, now + 7);
            (o, step)
        };
        let (o, step) = run(status(Some(200)), 0);
        assert_eq!(step, Step::Continue);
        let rep = o.sideband.as_ref().unwrap();
        assert_eq!(
            (rep.outcome, rep.status, rep.latency_ms),
            (Verdict::Allow, Some(200), 7)
        );
        let (o, step) = run(status(Some(403)), 0);
        assert!(matches!(step, Step::Reply { status: 403, .. }));
        assert_eq!(o.decision.as_ref().unwrap().reason(), Some("sideband"));
        for (s, msg) in [
            (Some(401), "ASE-Token"),
            (Some(400), "JSON"),
            (Some(503), "does not know"),
            (Some(418), "418"),
        ] {
            let (o, step) = run(status(s), 0);
            let rep = o.sideband.as_ref().unwrap();
            assert_eq!(rep.outcome, Verdict::Error);
            assert!(
                rep.error.as_deref().unwrap().contains(msg),
                "{:?}",
                rep.error
            );
            if fail_open {
                assert_eq!(step, Step::Continue);
            } else {
                assert_eq!(
                    step,
                    Step::Reply {
                        status: 503,
                        headers: vec![],
                        body: String::new()
                    }
                );
            }
        }
    }
}

#[test]
fn timeouts_open_the_breaker_and_skipped_requests_do_not_wait() {
    let rt = runtime(json!({"cluster": "ase", "timeout_ms": 100}));
    let store = MemStore::default();
    let r = req("/shop/a", &[]);
    for i in 0..FAILURES_TO_OPEN {
        let now = u64::from(i) * 200;
        let (mut o, _) = on_request_headers(&rt, &r, true, &store, now);
        resume(&rt, &status(None), &mut o, now + 100);
        assert!(o.sideband.as_ref().unwrap().timed_out);
    }
    let (o, step) = on_request_headers(&rt, &r, true, &store, 700);
    assert_eq!(step, Step::Continue, "skipped, fail open");
    // Envoy's own 504 for a call past its timeout is a timeout too; a quick 504 is not.
    let other = runtime(json!({"cluster": "ase", "timeout_ms": 100}));
    let (mut slow, _) = on_request_headers(&other, &r, true, &store, 0);
    resume(&other, &status(Some(504)), &mut slow, 100);
    assert!(slow.sideband.as_ref().unwrap().timed_out);
    let (mut quick, _) = on_request_headers(&other, &r, true, &store, 0);
    resume(&other, &status(Some(504)), &mut quick, 5);
    assert!(!quick.sideband.as_ref().unwrap().timed_out);
    assert_eq!(o.sideband.as_ref().unwrap().outcome, Verdict::Skipped);
    let c = crate::stats::sideband_counters(o.sideband.as_ref().unwrap());
    use crate::stats::Counter;
    assert_eq!(c, [Counter::SidebandSkipped, Counter::SidebandAseSkipped]);
    // After the open period a probe is sent again.
    let (_, step) = on_request_headers(&rt, &r, true, &store, 400 + OPEN_MIN_MS + 100);
    assert!(matches!(step, Step::Call(_)), "{step:?}");
}

#[test]
fn only_configured_apis_and_local_blocks_are_not_sent() {
    let store = MemStore::default();
    let rt = runtime(json!({"cluster": "ase", "only_configured_apis": true}));
    assert_eq!(
        on_request_headers(&rt, &req("/other", &[]), true, &store, 0).1,
        Step::Continue
    );
    let rt = runtime(json!({"cluster": "ase"}));
    assert!(matches!(
        on_request_headers(&rt, &req("/other", &[]), true, &store, 0).1,
        Step::Call(_)
    ));
    let (o, step) = on_request_headers(&rt, &req("/shop/a", &[("x-user", "eve")]), true, &store, 0);
    assert!(matches!(step, Step::Reply { status: 403, .. }));
    assert!(o.sideband.is_none());
}

#[test]
fn the_response_call_follows_an_allowed_request_only() {
    let rt = runtime(json!({"cluster": "ase", "token": "t0k"}));
    let store = MemStore::default();
    let r = req("/shop/a", &[("x-request-id", "rid-9")]);
    let (mut o, _) = on_request_headers(&rt, &r, true, &store, 0);
    resume(&rt, &status(Some(200)), &mut o, 1);
    let headers = vec![
        (":status".to_string(), "404".to_string()),
        ("x-a".to_string(), "1".to_string()),
    ];
    let call = crate::pipeline::response_call(&rt, &r, &o, 404, &headers).unwrap();
    assert!(call
        .headers
        .contains(&(":path".into(), "/ase/response".into())));
    assert!(call
        .headers
        .contains(&("x-correlationid".into(), "rid-9".into())));
    assert!(call.headers.contains(&("ase-token".into(), "t0k".into())));
    let body: Value = serde_json::from_slice(call.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"response_code": "404", "response_status": "Not Found", "http_version": "2",
               "headers": [{"x-a": "1"}]})
    );
    let (mut blocked, _) = on_request_headers(&rt, &r, true, &store, 0);
    resume(&rt, &status(Some(403)), &mut blocked, 1);
    assert!(crate::pipeline::response_call(&rt, &r, &blocked, 403, &headers).is_none());
    let off = runtime(json!({"cluster": "ase", "response_call": false}));
    let (mut o, _) = on_request_headers(&off, &r, true, &store, 0);
    resume(&off, &status(Some(200)), &mut o, 1);
    assert!(crate::pipeline::response_call(&off, &r, &o, 200, &headers).is_none());
}

#[test]
fn helpers() {
    assert_eq!(ase::source_port(Some("1.2.3.4:5678")), 5678);
    assert_eq!(ase::source_port(Some("[::1]:443")), 443);
    assert_eq!(ase::source_port(Some("::1")), 0);
    assert_eq!(ase::source_port(None), 0);
    assert_eq!(ase::http_version(Some("HTTP/1.0")), "1.0");
    assert_eq!(ase::http_version(None), "1.1");
    assert_eq!(ase::reason_phrase(503), "Service Unavailable");
}

#[test]
fn response_calls_queue_is_bounded_and_counts_answers() {
    use crate::host::mock::MockHost;
    let host = MockHost::new(0);
    let mut q = ResponseCalls::default();
    let call = crate::call::CallRequest::new("POST", "ase", "", "/ase/response", 100);
    for _ in 0..3 {
        q.push(call.clone(), &host);
    }
    assert_eq!(q.queued(), 3);
    q.flush(&host);
    assert_eq!(q.queued(), 0);
    assert_eq!(host.count(crate::stats::Counter::SidebandResponseCalls), 3);
    let tokens: Vec<u32> = std::iter::from_fn(|| host.take_call().map(|(t, _)| t)).collect();
    assert_eq!(tokens.len(), 3);
    q.on_answer(&host, tokens[0], &status(Some(200)));
    q.on_answer(&host, tokens[1], &status(None));
    q.on_answer(&host, 9_999, &status(None));
    assert_eq!(
        host.count(crate::stats::Counter::SidebandResponseCallsFailed),
        1
    );
    assert!(!q.owns(tokens[0]) && q.owns(tokens[2]));
}
