//! PingAuthorize rewrites through real Envoy: request headers (added, changed, removed,
//! repeated), path and query, method, body; `state` or `request` on the response call; the
//! response's status, headers (left out = removed, except the keep-list) and JSON body.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{echoed, headers_edit, values, Rig};
use crate::harness::paz::{set_listed, Case, OnRequest, OnResponse, Phase};

#[test]
fn header_path_query_and_method_rewrites_reach_the_upstream() {
    let rig = Rig::start(json!({}));
    rig.paz.set(
        "headers",
        Case {
            request: headers_edit(|h| {
                set_listed(h, "x-change", Some("new"));
                set_listed(h, "x-added", Some("yes"));
                set_listed(h, "x-remove", None);
                // The second of the repeated x-multi changes; the first stays.
                if let Some(e) = h
                    .as_array_mut()
                    .and_then(|l| l.iter_mut().filter(|e| e.get("x-multi").is_some()).nth(1))
                {
                    *e = json!({"x-multi": "c"});
                }
            }),
            ..Case::default()
        },
    );
    let r = rig.send(
        "headers",
        "GET",
        "/h",
        &[
            ("x-change", "old"),
            ("x-remove", "1"),
            ("x-multi", "a"),
            ("x-multi", "b"),
        ],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    let up = rig.forwarded("headers");
    assert_eq!(values(&up, "x-change"), ["new"]);
    assert_eq!(values(&up, "x-added"), ["yes"]);
    assert!(values(&up, "x-remove").is_empty(), "removed: {up:?}");
    assert_eq!(values(&up, "x-multi"), ["a", "c"]);
    rig.paz.set(
        "url",
        Case {
            request: OnRequest::Rewrite(Arc::new(|req: &mut Value| {
                req["url"] = json!("http://localhost/v2/items?q=2&added=1");
                req["method"] = json!("DELETE");
            })),
            ..Case::default()
        },
    );
    assert_eq!(rig.get("url", "/v1/items?q=1").status, 200);
    let up = rig.forwarded("url");
    assert_eq!(
        (up.method.as_str(), up.path.as_str()),
        ("DELETE", "/v2/items?q=2&added=1")
    );
    // A changed host and port are only logged; the path still applies.
    rig.paz.set(
        "host",
        Case {
            request: OnRequest::Rewrite(Arc::new(|req: &mut Value| {
                req["url"] = json!("https://evil.example:9999/v3/x");
                req["source_ip"] = json!("10.9.9.9");
                req["source_port"] = json!(1);
            })),
            ..Case::default()
        },
    );
    assert_eq!(rig.get("host", "/v1/x").status, 200);
    let up = rig.forwarded("host");
    assert_eq!(up.path, "/v3/x");
    assert_eq!(up.header("host"), Some("localhost"));
    // The response call carries the url as sent in the request call.
    let resp = rig.paz.one(Phase::Response, "url");
    assert_eq!(resp["url"], json!("http://localhost/v1/items?q=1"));
    assert_eq!(resp["method"], json!("GET"));
    let rec = rig.record("url");
    assert_eq!(rec.at("/ase/sideband/rewritten_request"), json!(true));
    rig.counter_reaches("api_warden.sideband.pingauthorize.rewritten_requests", 3);
    rig.paz.assert_no_violations();
}

#[test]
fn a_body_rewrite_replaces_the_body_and_its_content_length() {
    let rig = Rig::start(json!({}));
    let new_body = r#"{"amount":500,"note":"rewritten by policy"}"#;
    rig.paz.set(
        "body",
        Case {
            request: OnRequest::Rewrite(Arc::new(move |req: &mut Value| {
                req["body"] = json!(new_body)
            })),
            ..Case::default()
        },
    );
    let r = rig.send(
        "body",
        "POST",
        "/pay",
        &[("content-type", "application/json")],
        Some(br#"{"amount":5}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    let up = rig.forwarded("body");
    assert_eq!(String::from_utf8_lossy(&up.body), new_body);
    assert_eq!(values(&up, "content-length"), [new_body.len().to_string()]);
    assert!(!up.chunked);
    assert_eq!(echoed(&r)["body"], json!(new_body));
    rig.paz.assert_no_violations();
}

#[test]
fn the_response_call_echoes_state_or_sends_the_request() {
    let rig = Rig::start(json!({}));
    let state = "opaque \"state\" ü/é {json: [1]}";
    rig.paz.set(
        "state",
        Case {
            state: Some(state.into()),
            ..Case::default()
        },
    );
    assert_eq!(rig.get("state", "/s?a=1").status, 200);
    let resp = rig.paz.one(Phase::Response, "state");
    let got = resp["state"].as_str().expect("state sent");
    assert!(got.starts_with(state), "state echoed exactly: {got:?}");
    assert!(
        resp.get("request").is_none(),
        "no request when state was returned: {resp}"
    );
    assert_eq!(rig.get("nostate", "/s?a=2").status, 200);
    let call = rig.paz.one(Phase::Request, "nostate");
    let resp = rig.paz.one(Phase::Response, "nostate");
    assert_eq!(resp["request"], call);
    assert!(resp.get("state").is_none());
    rig.paz.assert_no_violations();
}

/// The decisions' worked example: a policy that removes `account.ssn` from the JSON response,
/// sets a status, adds a header and leaves the others out.
pub(crate) fn remove_ssn() -> OnResponse {
    OnResponse::Rewrite(Arc::new(|resp: &mut Value| {
        let mut body: Value =
            serde_json::from_str(resp["body"].as_str().unwrap_or("")).unwrap_or(Value::Null);
        if let Some(a) = body.get_mut("account").and_then(Value::as_object_mut) {
            a.remove("ssn");
        }
        resp["body"] = json!(body.to_string());
        resp["response_code"] = json!("203");
        resp["response_status"] = json!("Non-Authoritative Information");
        resp["headers"] = json!([{"content-type": "application/json"}, {"x-policy": "applied"}]);
    }))
}

#[test]
fn response_rewrites_set_status_headers_and_body() {
    let rig = Rig::start(json!({}));
    rig.paz.set(
        "resp",
        Case {
            response: remove_ssn(),
            ..Case::default()
        },
    );
    let r = rig.get("resp", "/account/1");
    assert_eq!(r.status, 203, "{}", r.body_text());
    let body = echoed(&r);
    assert_eq!(
        body["account"],
        json!({"owner": "alice", "plan": "gold"}),
        "ssn removed"
    );
    assert_eq!(body["path"], json!("/account/1"));
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_eq!(r.header("x-policy"), Some("applied"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    for gone in ["x-upstream", "x-private"] {
        assert_eq!(
            r.header(gone),
            None,
            "{gone} left out by the policy is removed"
        );
    }
    for kept in ["vary", "date"] {
        assert!(r.header(kept).is_some(), "{kept} is kept: {:?}", r.headers);
    }
    let rec = rig.record("resp");
    assert_eq!(rec.at("/ase/sideband/rewritten_response"), json!(true));
    assert_eq!(
        rec.at("/ase/sideband/response_phase/outcome"),
        json!("allow")
    );
    assert_eq!(rec.status, 203);
    rig.counter_reaches("api_warden.sideband.pingauthorize.rewritten_responses", 1);
    // An upstream error status goes to the response call as a string too.
    assert_eq!(
        rig.send(
            "status",
            "GET",
            "/missing",
            &[("x-echo-status", "404")],
            None
        )
        .status,
        404
    );
    assert_eq!(
        rig.paz.one(Phase::Response, "status")["response_code"],
        json!("404")
    );
    rig.paz.assert_no_violations();
}
