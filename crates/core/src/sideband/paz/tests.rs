//! PingAuthorize: the configuration rules, the diff of sent and returned requests, the response
//! rewrite, answer reading (deny, allow, malformed), `Retry-After`. The pipeline flow is in
//! `flow_tests`.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::json;

use super::rewrite::{apply_request, apply_response, header_edits, split_url};
use super::wire::{self, Allowed, HeaderList, RequestAnswer, Returned, SentRequest};
use super::*;
use crate::sideband::{parse, Service};

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
    // Framing headers from the answer are never applied.
    let framing = Allowed {
        headers: Some(hl(&[("content-length", "1")])),
        ..Allowed::default()
    };
    let a = apply_request(&s, &framing, true).unwrap();
    assert!(!a.changed && a.edit.headers.is_empty());
    assert_eq!(
        a.ignored,
        ["content-length / transfer-encoding (the body's framing)"]
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
    let new = apply_response(200, &upstream, body, &answer).unwrap();
    let (status, headers, new_body) = (new.status, new.headers, new.body);
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
    let new = apply_response(200, &upstream, body, &status_only).unwrap();
    let (s, h, b) = (new.status, new.headers, new.body);
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
