//! PingAuthorize driven through the pipeline as the adapter drives it: the request call, the
//! rewrite, the response call (with `state` or the request), bodies, denials, failures and the
//! 429 circuit, client certificates.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::{json, Value};

use super::*;
use crate::lists::MemStore;
use crate::pipeline::{self, on_request_headers, resume, Runtime};
use crate::request::RequestView;
use crate::sideband::Verdict;
use crate::stats::{sideband_counters, Counter};

fn edit(name: &str, values: &[&str]) -> HeaderEdit {
    HeaderEdit {
        name: name.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

fn runtime(sideband: Value) -> Runtime {
    let mut sb = json!({"service": "pingauthorize", "cluster": "paz", "authority": "paz.internal",
                        "secret": "s3cret", "max_body_bytes": 16});
    if let (Some(a), Some(b)) = (sb.as_object_mut(), sideband.as_object()) {
        a.extend(b.clone());
    }
    let cfg = json!({"apis": [{"name": "shop", "api_metadata": {"url": "/shop", "hostname": "*",
        "username_header": "x-user", "enable_blocking": true}}],
        "deny_list": {"username": ["eve"]}, "sideband": sb});
    Runtime::load(cfg.to_string().as_bytes()).unwrap()
}

fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
    let mut all = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "shop.example:8080".to_string()),
        (":scheme".to_string(), "http".to_string()),
    ];
    all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut v = RequestView::from_headers(all, Some("192.0.2.9:41000".into()));
    v.protocol = Some("HTTP/1.1".into());
    Request::parse(v)
}

fn answer(status: u16, body: Value) -> CallAnswer {
    CallAnswer {
        status: Some(status),
        body: body.to_string().into_bytes(),
        ..CallAnswer::default()
    }
}

fn call_body(step: &Step) -> Value {
    let Step::Call(c) = step else {
        panic!("{step:?}")
    };
    serde_json::from_slice(c.body.as_deref().unwrap()).unwrap()
}

#[test]
fn the_request_call_then_a_rewrite_then_the_response_call_with_state() {
    let rt = runtime(json!({}));
    let store = MemStore::default();
    let r = req("GET", "/shop/a?b=1", &[("x-user", "alice"), ("x-a", "1")]);
    let (mut o, step) = on_request_headers(&rt, &r, true, &store, 1_000);
    let Step::Call(c) = &step else {
        panic!("{step:?}")
    };
    let h = |n: &str| {
        c.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(h(":path"), Some("/sideband/request"));
    assert_eq!(h(":authority"), Some("paz.internal"));
    assert_eq!(h("client-token"), Some("s3cret"));
    assert_eq!(h("content-type"), Some("application/json"));
    assert_eq!(c.timeout_ms, 2000);
    let sent = call_body(&step);
    assert_eq!(
        sent,
        json!({"source_ip": "192.0.2.9", "source_port": 41000, "method": "GET",
               "url": "http://shop.example:8080/shop/a?b=1", "http_version": "1.1",
               "headers": [{"x-user": "alice"}, {"x-a": "1"}]})
    );
    let mut returned = sent.clone();
    returned["headers"] = json!([{"x-user": "alice"}, {"x-b": "2"}]);
    returned["url"] = json!("http://shop.example:8080/shop/z");
    returned["state"] = json!("st-9");
    let step = resume(&rt, &answer(200, returned), &mut o, 1_010);
    let Step::Forward(e) = step else {
        panic!("{step:?}")
    };
    assert_eq!(e.path.as_deref(), Some("/shop/z"));
    assert_eq!(
        e.headers,
        [
            edit("x-b", &["2"]),
            edit("x-a", &[]),
            edit("accept-encoding", &["identity"])
        ]
    );
    let rep = o.sideband.as_ref().unwrap();
    assert_eq!(
        (
            rep.outcome,
            rep.status,
            rep.latency_ms,
            rep.rewritten_request
        ),
        (Verdict::Allow, Some(200), 10, Some(true))
    );
    // The response: held for its body, then the response call with the state.
    let up_headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("x-private".to_string(), "1".to_string()),
    ];
    let step = pipeline::on_response_headers(&rt, &mut o, 200, &up_headers, false, 1_020);
    assert!(
        matches!(step, ResponseStep::AwaitBody { max_bytes: 16, .. }),
        "{step:?}"
    );
    let step = pipeline::response_body(&rt, &mut o, Some(br#"{"ssn":"1"}"#), 1_030);
    let ResponseStep::Call(c) = &step else {
        panic!("{step:?}")
    };
    assert!(c
        .headers
        .contains(&(":path".into(), "/sideband/response".into())));
    let body: Value = serde_json::from_slice(c.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"method": "GET", "url": "http://shop.example:8080/shop/a?b=1",
               "body": "{\"ssn\":\"1\"}", "response_code": "200", "response_status": "OK",
               "http_version": "1.1",
               "headers": [{"content-type": "application/json"}, {"x-private": "1"}],
               "state": "st-9"})
    );
    let paz_answer = json!({"response_code": "203", "response_status": "Non-Authoritative",
                            "headers": [{"content-type": "application/json"}], "body": "{}"});
    let step = pipeline::resume_response(&rt, &answer(200, paz_answer), &mut o, 1_040);
    assert_eq!(
        step,
        ResponseStep::Replace {
            status: 203,
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{}".to_vec()
        }
    );
    let rep = o.sideband.as_ref().unwrap();
    assert_eq!(rep.rewritten_response, Some(true));
    let phase = rep.response_phase.as_ref().unwrap();
    assert_eq!(
        (phase.status, phase.latency_ms, phase.outcome),
        (Some(200), 10, Verdict::Allow)
    );
    let c = sideband_counters(rep);
    for want in [
        Counter::SidebandRequests,
        Counter::SidebandPazRequests,
        Counter::SidebandAllowed,
        Counter::SidebandPazAllowed,
        Counter::SidebandResponseCalls,
        Counter::SidebandPazResponseCalls,
        Counter::SidebandPazRewrittenRequests,
        Counter::SidebandPazRewrittenResponses,
    ] {
        assert!(c.contains(&want), "{want:?} in {c:?}");
    }
    assert!(!c.contains(&Counter::SidebandAseRequests));
    let rec = serde_json::to_value(rep).unwrap();
    assert_eq!(rec["service"], json!("pingauthorize"));
    assert_eq!(rec["response_phase"]["status"], json!(200));
}

#[test]
fn without_state_the_response_call_sends_the_request_and_bodies_are_collected() {
    let rt = runtime(json!({}));
    let store = MemStore::default();
    let r = req("POST", "/shop/o", &[("content-type", "text/plain")]);
    let (mut o, step) = on_request_headers(&rt, &r, false, &store, 0);
    assert!(
        matches!(step, Step::AwaitBody { max_bytes: 16, .. }),
        "{step:?}"
    );
    let step = pipeline::request_body(&rt, &r, &mut o, Some(b"hello"), 5);
    let sent = call_body(&step);
    assert_eq!(sent["body"], json!("hello"));
    let mut back = sent.clone();
    back["body"] = json!("HELLO!");
    let Step::Forward(e) = resume(&rt, &answer(200, back), &mut o, 6) else {
        panic!()
    };
    assert_eq!(e.body.as_deref(), Some(&b"HELLO!"[..]));
    assert!(e.headers.contains(&edit("content-length", &["6"])));
    // A body-less response is called at once; the answer changes nothing: pass unchanged.
    let step = pipeline::on_response_headers(&rt, &mut o, 204, &[], true, 7);
    let ResponseStep::Call(c) = &step else {
        panic!("{step:?}")
    };
    let body: Value = serde_json::from_slice(c.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["request"], sent, "the request object exactly as sent");
    assert!(body.get("state").is_none() && body.get("body").is_none());
    let same = json!({"response_code": "204", "response_status": "No Content", "headers": []});
    assert_eq!(
        pipeline::resume_response(&rt, &answer(200, same), &mut o, 8),
        ResponseStep::Continue
    );
    assert_eq!(o.sideband.as_ref().unwrap().rewritten_response, Some(false));
    // A body over max_body_bytes: sent without it, counted.
    let (mut o, _) = on_request_headers(&rt, &r, false, &store, 0);
    let step = pipeline::request_body(&rt, &r, &mut o, None, 5);
    assert!(call_body(&step).get("body").is_none());
    let rep = o.sideband.as_ref().unwrap();
    assert!(sideband_counters(rep).contains(&Counter::SidebandPazRequestTooLarge));
    // A response over it: passes, counted, no call.
    resume(&rt, &answer(200, json!({})), &mut o, 6);
    pipeline::on_response_headers(&rt, &mut o, 200, &[], false, 7);
    assert_eq!(
        pipeline::response_body(&rt, &mut o, None, 8),
        ResponseStep::Continue
    );
    let rep = o.sideband.as_ref().unwrap();
    assert!(rep.response_phase.is_none());
    assert!(sideband_counters(rep).contains(&Counter::SidebandPazResponseTooLarge));
}

#[test]
fn denials_failures_and_the_429_circuit() {
    let store = MemStore::default();
    let r = req("GET", "/shop/a", &[]);
    let rt = runtime(json!({}));
    let run = |rt: &Runtime, a: CallAnswer, now: u64| {
        let (mut o, step) = on_request_headers(rt, &r, true, &store, now);
        assert!(matches!(step, Step::Call(_)), "{step:?}");
        let step = resume(rt, &a, &mut o, now + 1);
        (o, step)
    };
    // A deny with a 200 answer: exactly its response; reason sideband.
    let deny = json!({"response": {"response_code": "403", "response_status": "FORBIDDEN",
                      "headers": [{"x-why": "policy"}], "body": "no"}});
    let (o, step) = run(&rt, answer(200, deny), 0);
    assert_eq!(
        step,
        Step::Reply {
            status: 403,
            headers: vec![("x-why".into(), "policy".into())],
            body: "no".into()
        }
    );
    assert_eq!(o.decision.as_ref().unwrap().reason(), Some("sideband"));
    assert_eq!(o.sideband.as_ref().unwrap().outcome, Verdict::Block);
    // No response call after a denial.
    let mut o = o;
    assert_eq!(
        pipeline::on_response_headers(&rt, &mut o, 403, &[], true, 2),
        ResponseStep::Continue
    );
    // Failures: 502 failing closed, pass failing open.
    let open = runtime(json!({"fail_open": true}));
    for a in [
        answer(500, json!({})),
        answer(400, json!({"headers": []})),
        answer(200, json!([1])),
        answer(200, json!({"url": "nope"})),
        CallAnswer::default(),
    ] {
        let (o, step) = run(&rt, a.clone(), 0);
        assert_eq!(
            step,
            Step::Reply {
                status: 502,
                headers: vec![],
                body: String::new()
            },
            "{a:?}"
        );
        let rep = o.sideband.as_ref().unwrap();
        assert_eq!(rep.outcome, Verdict::Error);
        assert!(rep.error.is_some());
        assert_eq!(run(&open, a, 0).1, Step::Continue);
    }
    // A timeout is counted as one.
    let (o, _) = {
        let (mut o, _) = on_request_headers(&rt, &r, true, &store, 0);
        let s = resume(&rt, &CallAnswer::default(), &mut o, 2_000);
        (o, s)
    };
    assert!(sideband_counters(o.sideband.as_ref().unwrap()).contains(&Counter::SidebandPazTimeouts));
    // A 429 with Retry-After: 429 to the client, and no calls for that long.
    let mut limited = answer(429, json!({}));
    limited.headers = vec![("retry-after".into(), "3".into())];
    let (o, step) = run(&rt, limited, 10_000);
    assert_eq!(
        step,
        Step::Reply {
            status: 429,
            headers: vec![("retry-after".into(), "3".into())],
            body: String::new()
        }
    );
    assert!(
        sideband_counters(o.sideband.as_ref().unwrap()).contains(&Counter::SidebandPazRateLimited)
    );
    let (o, step) = on_request_headers(&rt, &r, true, &store, 11_500);
    assert_eq!(
        step,
        Step::Reply {
            status: 429,
            headers: vec![("retry-after".into(), "2".into())],
            body: String::new()
        }
    );
    let rep = o.sideband.as_ref().unwrap();
    assert_eq!(rep.outcome, Verdict::Skipped);
    assert_eq!(
        sideband_counters(rep),
        [
            Counter::SidebandSkipped,
            Counter::SidebandPazSkipped,
            Counter::SidebandPazRateLimited
        ]
    );
    // After it, calls again.
    let (_, step) = on_request_headers(&rt, &r, true, &store, 13_001);
    assert!(matches!(step, Step::Call(_)), "{step:?}");
    // A failed response call: 502 in place of the response, or the response unchanged.
    for (rt, want) in [(&rt, Some(502)), (&open, None)] {
        let (mut o, _) = run(rt, answer(200, json!({})), 20_000);
        pipeline::on_response_headers(rt, &mut o, 200, &[], true, 20_002);
        let step = pipeline::resume_response(rt, &answer(500, json!({})), &mut o, 20_003);
        match want {
            Some(s) => assert!(
                matches!(step, ResponseStep::Replace { status, .. } if status == s),
                "{step:?}"
            ),
            None => assert_eq!(step, ResponseStep::Continue),
        }
        let rep = o.sideband.as_ref().unwrap();
        assert_eq!(rep.response_phase.as_ref().unwrap().outcome, Verdict::Error);
        assert!(sideband_counters(rep).contains(&Counter::SidebandPazResponseCallsFailed));
    }
    // A body that never came: per fail_open.
    assert!(matches!(
        pipeline::body_never_came(&rt),
        Step::Reply { status: 502, .. }
    ));
    assert_eq!(pipeline::body_never_came(&open), Step::Continue);
}

#[test]
fn locally_blocked_requests_are_never_sent_and_client_certificates_come_from_xfcc() {
    let rt = runtime(json!({}));
    let store = MemStore::default();
    let (o, step) = on_request_headers(
        &rt,
        &req("GET", "/shop/a", &[("x-user", "eve")]),
        true,
        &store,
        0,
    );
    assert!(matches!(step, Step::Reply { status: 403, .. }));
    assert!(o.sideband.is_none() && o.paz.is_none());
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\nAAAA\n-----END CERTIFICATE-----\n";
    let encoded: String = pem
        .bytes()
        .map(|b| match b {
            b'\n' => "%0A".to_string(),
            b' ' => "%20".to_string(),
            _ => char::from(b).to_string(),
        })
        .collect();
    let xfcc = format!("By=spiffe://x;Hash=abc;Cert=\"{encoded}\"");
    let mut r = req("GET", "/shop/a", &[("x-forwarded-client-cert", &xfcc)]);
    r.view.scheme = "https".into();
    let (_, step) = on_request_headers(&rt, &r, true, &store, 0);
    assert_eq!(
        call_body(&step)["client_certificate"],
        json!({"x5c": ["MIIBAAAA"]})
    );
    // Plain HTTP: a client-sent header is not trusted.
    let r = req("GET", "/shop/a", &[("x-forwarded-client-cert", &xfcc)]);
    let (_, step) = on_request_headers(&rt, &r, true, &store, 0);
    assert!(call_body(&step).get("client_certificate").is_none());
}

#[test]
fn upgrades_are_called_without_waiting_for_a_body_and_101_is_not_held() {
    let rt = runtime(json!({}));
    let store = MemStore::default();
    let r = req(
        "GET",
        "/shop/ws",
        &[("connection", "upgrade"), ("upgrade", "websocket")],
    );
    let (mut o, step) = on_request_headers(&rt, &r, false, &store, 0);
    assert!(call_body(&step).get("body").is_none());
    resume(&rt, &answer(200, json!({})), &mut o, 1);
    assert_eq!(
        pipeline::on_response_headers(&rt, &mut o, 101, &[], false, 2),
        ResponseStep::Continue
    );
}
