//! PingAuthorize: the configuration rules, the diff of sent and returned requests, the response
//! rewrite, answer reading (deny, allow, malformed), the 429 circuit, and both phases driven
//! through the pipeline as the adapter drives them.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::{json, Value};

use super::rewrite::{apply_request, apply_response, header_edits, split_url};
use super::wire::{self, Allowed, HeaderList, RequestAnswer, Returned, SentRequest};
use super::*;
use crate::lists::MemStore;
use crate::pipeline::{self, on_request_headers, resume, Runtime};
use crate::request::RequestView;
use crate::sideband::{parse, Service, Verdict};
use crate::stats::{sideband_counters, Counter};

fn hl(pairs: &[(&str, &str)]) -> HeaderList {
    HeaderList(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn edit(name: &str, values: &[&str]) -> HeaderEdit {
    HeaderEdit {
        name: name.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

#[test]
fn configuration_defaults_and_rules() {
    let s = parse(
        json!({"sideband": {"service": "pingauthorize", "cluster": "paz", "secret": "s3cret"}})
            .as_object()
            .unwrap(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(s.service, Service::PingAuthorize);
    assert_eq!(
        (
            s.timeout_ms,
            s.fail_open,
            s.response_call,
            s.max_body_bytes,
            s.secret_header.as_str(),
            s.path_prefix.as_str(),
            s.token.as_deref()
        ),
        (
            2000,
            false,
            true,
            1 << 20,
            "client-token",
            "",
            Some("s3cret")
        )
    );
    let rows = [
        (
            json!({"cluster": "paz"}),
            "sideband: missing field `secret`",
        ),
        (json!({"secret": "x"}), "missing field `cluster`"),
        (
            json!({"cluster": "paz", "secret": ""}),
            "sideband.secret must be a non-empty string",
        ),
        (
            json!({"cluster": "paz", "secret": "x", "token": "t"}),
            "unknown field `token`",
        ),
        (
            json!({"cluster": "paz", "secret": "x", "only_configured_apis": true}),
            "unknown field `only_configured_apis`",
        ),
        (
            json!({"cluster": "paz", "secret": "x", "secret_header": "bad header"}),
            "sideband.secret_header",
        ),
        (
            json!({"cluster": "paz", "secret": "x", "max_body_bytes": 1u64 << 30}),
            "sideband.max_body_bytes",
        ),
        (
            json!({"cluster": "paz", "secret": "x", "max_body_bytes": -1}),
            "max_body_bytes",
        ),
        (
            json!({"cluster": "paz", "secret": "x", "timeout_ms": 0}),
            "sideband.timeout_ms (0)",
        ),
    ];
    for (mut v, want) in rows {
        v["service"] = json!("pingauthorize");
        let e = parse(json!({ "sideband": v }).as_object().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{v}: {e}");
    }
    // ASE rejects PingAuthorize's keys.
    let e = parse(
        json!({"sideband": {"cluster": "a", "secret": "x"}})
            .as_object()
            .unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown field `secret`"), "{e}");
}

#[test]
fn header_diff_additions_changes_removals_and_repeats() {
    let sent = hl(&[
        ("a", "1"),
        ("keep", "k"),
        ("multi", "x"),
        ("multi", "y"),
        ("gone", "g"),
        ("rep", "1"),
    ]);
    let returned = hl(&[
        ("keep", "k"),
        ("a", "2"),
        ("multi", "x"),
        ("multi", "y"),
        ("new", "n"),
        ("rep", "1"),
        ("rep", "2"),
    ]);
    assert_eq!(
        header_edits(&sent, &returned),
        [
            edit("a", &["2"]),
            edit("new", &["n"]),
            edit("rep", &["1", "2"]),
            edit("gone", &[]),
        ]
    );
    // Nothing changed (order across names does not matter): no edits.
    let shuffled = hl(&[
        ("gone", "g"),
        ("multi", "x"),
        ("a", "1"),
        ("multi", "y"),
        ("keep", "k"),
        ("rep", "1"),
    ]);
    assert!(header_edits(&sent, &shuffled).is_empty());
    // A repeat dropped, or the values of one name reordered, replaces that name's values.
    let fewer = hl(&[
        ("a", "1"),
        ("keep", "k"),
        ("multi", "y"),
        ("gone", "g"),
        ("rep", "1"),
    ]);
    assert_eq!(header_edits(&sent, &fewer), [edit("multi", &["y"])]);
    let reordered = hl(&[
        ("a", "1"),
        ("keep", "k"),
        ("multi", "y"),
        ("multi", "x"),
        ("gone", "g"),
        ("rep", "1"),
    ]);
    assert_eq!(
        header_edits(&sent, &reordered),
        [edit("multi", &["y", "x"])]
    );
    // Everything removed.
    assert_eq!(header_edits(&hl(&[("a", "1")]), &hl(&[])), [edit("a", &[])]);
}

#[test]
fn header_lists_read_strictly_and_leniently() {
    let h = HeaderList::parse(&json!([{"A": "1"}, {"b": 2, "c": true}])).unwrap();
    assert_eq!(h, hl(&[("a", "1"), ("b", "2"), ("c", "true")]));
    for bad in [
        json!({"a": "1"}),
        json!(["a"]),
        json!([{"a": ["1"]}]),
        json!([{":path": "/"}]),
        json!([{"": "x"}]),
    ] {
        assert!(HeaderList::parse(&bad).is_err(), "{bad}");
    }
    // Serialized as one-key objects, in order, pseudo-headers left out.
    let from = HeaderList::from_headers(&[
        (":path".into(), "/".into()),
        ("X-A".into(), "1".into()),
        ("x-a".into(), "2".into()),
    ]);
    assert_eq!(
        serde_json::to_value(&from).unwrap(),
        json!([{"x-a": "1"}, {"x-a": "2"}])
    );
}

#[test]
fn urls_split_into_origin_and_path() {
    let rows = [
        ("http://h/a?b=1", Some((Some("http://h"), "/a?b=1"))),
        ("https://h:8443/a", Some((Some("https://h:8443"), "/a"))),
        ("http://h", Some((Some("http://h"), "/"))),
        ("http://h?q", Some((Some("http://h"), "?q"))),
        ("/only/path?x", Some((None, "/only/path?x"))),
        ("h/a", None),
        ("://h/a", None),
        ("ht tp://h/a", None),
    ];
    for (url, want) in rows {
        assert_eq!(split_url(url), want, "{url}");
    }
    assert_eq!(
        wire::absolute_url("https", "shop.example:8443", "/a?b"),
        "https://shop.example:8443/a?b"
    );
    assert_eq!(wire::absolute_url("", "h", "/"), "http://h/");
}

fn sent() -> SentRequest {
    SentRequest {
        source_ip: "192.0.2.1".into(),
        source_port: 40000,
        method: "GET".into(),
        url: "http://shop.example/a?b=1".into(),
        http_version: "1.1".into(),
        headers: hl(&[("accept", "*/*"), ("x-a", "1")]),
        body: None,
        client_certificate: None,
    }
}

#[test]
fn applying_an_allow_answer() {
    let s = sent();
    // Unchanged: nothing to do.
    let same = Allowed {
        method: Some("GET".into()),
        url: Some(s.url.clone()),
        headers: Some(s.headers.clone()),
        ..Allowed::default()
    };
    let a = apply_request(&s, &same, false).unwrap();
    assert!(!a.changed && a.edit == RequestEdit::default() && a.ignored.is_empty());
    // Method, path and query, headers.
    let changed = Allowed {
        method: Some("POST".into()),
        url: Some("http://shop.example/b?c=2".into()),
        headers: Some(hl(&[("accept", "*/*"), ("x-b", "2")])),
        ..Allowed::default()
    };
    let a = apply_request(&s, &changed, false).unwrap();
    assert!(a.changed);
    assert_eq!(a.edit.method.as_deref(), Some("POST"));
    assert_eq!(a.edit.path.as_deref(), Some("/b?c=2"));
    assert_eq!(a.edit.headers, [edit("x-b", &["2"]), edit("x-a", &[])]);
    // A path-only url; another host is only logged.
    let other_host = Allowed {
        url: Some("https://elsewhere/a?b=1".into()),
        ..Allowed::default()
    };
    let a = apply_request(&s, &other_host, false).unwrap();
    assert!(!a.changed);
    assert_eq!(a.ignored, ["url (scheme, host or port)"]);
    let path_only = Allowed {
        url: Some("/z".into()),
        ..Allowed::default()
    };
    let a = apply_request(&s, &path_only, false).unwrap();
    assert_eq!(a.edit.path.as_deref(), Some("/z"));
    // Unreadable url or method: an error (the answer is malformed).
    for bad in [
        Allowed {
            url: Some("nope".into()),
            ..Allowed::default()
        },
        Allowed {
            url: Some("/a b".into()),
            ..Allowed::default()
        },
        Allowed {
            method: Some("GE T".into()),
            ..Allowed::default()
        },
    ] {
        assert!(apply_request(&s, &bad, false).is_err(), "{bad:?}");
    }
}

#[test]
fn a_body_change_is_applied_only_when_the_body_was_sent() {
    let mut s = sent();
    s.method = "POST".into();
    s.body = Some(r#"{"a":1}"#.into());
    s.headers = hl(&[("content-length", "7"), ("transfer-encoding", "chunked")]);
    let new_body = Allowed {
        body: Some(r#"{"a":22}"#.into()),
        ..Allowed::default()
    };
    let a = apply_request(&s, &new_body, true).unwrap();
    assert!(a.changed);
    assert_eq!(a.edit.body.as_deref(), Some(&br#"{"a":22}"#[..]));
    assert_eq!(
        a.edit.headers,
        [
            edit("content-length", &["8"]),
            edit("transfer-encoding", &[])
        ]
    );
    // The same body: no change.
    let same = Allowed {
        body: s.body.clone(),
        ..Allowed::default()
    };
    assert!(!apply_request(&s, &same, true).unwrap().changed);
    // Too large, not sent: a body in the answer is ignored and logged.
    let mut big = sent();
    big.method = "POST".into();
    let a = apply_request(&big, &new_body, false).unwrap();
    assert!(!a.changed && a.edit.body.is_none());
    assert_eq!(
        a.ignored,
        ["body (the request body was not sent: too large)"]
    );
    // A request without a body gets none.
    let a = apply_request(&sent(), &new_body, true).unwrap();
    assert!(a.edit.body.is_none());
    assert_eq!(a.ignored, ["body (the request had none)"]);
}

#[test]
fn request_answers_deny_allow_ignored_and_malformed() {
    let s = sent();
    let deny = json!({"response": {"response_code": "403", "response_status": "FORBIDDEN",
        "headers": [{"content-type": "application/json"}], "body": "{\"errorMessage\":\"Access Denied\"}"}});
    assert_eq!(
        wire::request_answer(deny.to_string().as_bytes(), &s).unwrap(),
        RequestAnswer::Deny(Returned {
            status: 403,
            headers: Some(hl(&[("content-type", "application/json")])),
            body: Some("{\"errorMessage\":\"Access Denied\"}".into()),
        })
    );
    // A number status and a JSON body are accepted.
    let deny2 = json!({"response": {"response_code": 401, "body": {"e": 1}}});
    let RequestAnswer::Deny(r) = wire::request_answer(deny2.to_string().as_bytes(), &s).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (r.status, r.body.as_deref(), r.headers),
        (401, Some(r#"{"e":1}"#), None)
    );
    let allow = json!({"source_ip": "10.0.0.1", "source_port": 1, "method": "GET",
        "url": s.url, "http_version": "2", "headers": [{"x": "1"}], "state": "st-1",
        "client_certificate": {"x5c": ["AAA"]}});
    let RequestAnswer::Allow(a) = wire::request_answer(allow.to_string().as_bytes(), &s).unwrap()
    else {
        panic!()
    };
    assert_eq!(a.state.as_deref(), Some("st-1"));
    assert_eq!(
        a.ignored,
        [
            "source_ip",
            "source_port",
            "client_certificate",
            "http_version"
        ]
    );
    // The sent values, echoed (a port as a string too), are not "ignored changes".
    let echoed = json!({"source_ip": s.source_ip, "source_port": "40000", "http_version": "1.1"});
    let RequestAnswer::Allow(a) = wire::request_answer(echoed.to_string().as_bytes(), &s).unwrap()
    else {
        panic!()
    };
    assert!(a.ignored.is_empty(), "{:?}", a.ignored);
    for bad in [
        &b"not json"[..],
        b"[1]",
        b"\"x\"",
        br#"{"response": "no"}"#,
        br#"{"response": {"response_status": "x"}}"#,
        br#"{"response": {"response_code": "99"}}"#,
        br#"{"response": {"response_code": "abc"}}"#,
        br#"{"headers": {"a": "1"}}"#,
        br#"{"method": 5}"#,
        br#"{"url": ["x"]}"#,
    ] {
        assert!(
            wire::request_answer(bad, &s).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn the_response_rewrite_keeps_framing_headers_and_drops_the_rest() {
    let upstream = hl(&[
        ("content-type", "application/json"),
        ("content-length", "30"),
        ("date", "D"),
        ("vary", "accept-encoding"),
        ("x-private", "p"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
    ]);
    let body = br#"{"name":"alice","ssn":"1"}"#;
    let answer = Returned {
        status: 200,
        headers: Some(hl(&[
            ("content-type", "application/json"),
            ("content-length", "999"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ])),
        body: Some(r#"{"name":"alice"}"#.into()),
    };
    let (status, headers, new_body) = apply_response(200, &upstream, body, &answer).unwrap();
    assert_eq!(status, 200);
    assert_eq!(new_body, br#"{"name":"alice"}"#);
    // content-length is the host's (fixed to the new body); x-private is removed; date and vary
    // are kept although the answer left them out.
    assert_eq!(
        headers,
        hl(&[
            ("content-type", "application/json"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("date", "D"),
            ("vary", "accept-encoding"),
        ])
        .0
    );
    // The same response back (headers in another order, framing differing): no rewrite.
    let same = Returned {
        status: 200,
        headers: Some(hl(&[
            ("vary", "accept-encoding"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("content-type", "application/json"),
            ("date", "D"),
            ("x-private", "p"),
        ])),
        body: Some(String::from_utf8(body.to_vec()).unwrap()),
    };
    assert!(apply_response(200, &upstream, body, &same).is_none());
    // No headers key, no body key: the upstream's kept; only the status changes.
    let status_only = Returned {
        status: 203,
        headers: None,
        body: None,
    };
    let (s, h, b) = apply_response(200, &upstream, body, &status_only).unwrap();
    assert_eq!((s, b.as_slice()), (203, &body[..]));
    assert!(h.iter().all(|(k, _)| k != "content-length"));
    assert!(h.contains(&("x-private".into(), "p".into())));
    // The response call's answer may come wrapped in `response`; malformed ones are errors.
    let wrapped = wire::response_answer(br#"{"response": {"response_code": "200"}}"#).unwrap();
    assert_eq!(wrapped.status, 200);
    for bad in [&b"{}"[..], b"[]", br#"{"response_code": "2000"}"#, b"x"] {
        assert!(wire::response_answer(bad).is_err());
    }
}

#[test]
fn retry_after_parsing() {
    assert_eq!(retry_after_s(Some("7")), 7);
    assert_eq!(retry_after_s(Some(" 3 ")), 3);
    assert_eq!(retry_after_s(Some("0")), 1);
    assert_eq!(retry_after_s(Some("Wed, 21 Oct 2015 07:28:00 GMT")), 1);
    assert_eq!(retry_after_s(Some("-5")), 1);
    assert_eq!(retry_after_s(None), 1);
    assert_eq!(retry_after_s(Some("999999")), MAX_RETRY_AFTER_S);
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
