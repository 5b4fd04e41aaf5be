//! PingAuthorize bodies and protocols through real Envoy: request and response bodies at and over
//! `max_body_bytes`, chunked request bodies, HTTP/2 (h2c), a gzip-capable upstream, concurrent
//! requests each with their own rewrite, and the stats and record of every outcome.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::{echoed, opts, remove_ssn, values, Headers, Rig, BOUND, MAX_BODY};
use crate::harness::paz::{listed, set_listed, Case, OnRequest, OnResponse, Phase};
use crate::harness::{self, Opts};

fn body_edit(new: &'static str) -> OnRequest {
    OnRequest::Rewrite(Arc::new(move |req: &mut Value| req["body"] = json!(new)))
}

#[test]
fn request_and_response_bodies_at_and_over_max_body_bytes() {
    let rig = Rig::start(json!({}));
    rig.paz.set(
        "at",
        Case {
            request: body_edit("small"),
            ..Case::default()
        },
    );
    rig.paz.set(
        "over",
        Case {
            request: body_edit("ignored"),
            ..Case::default()
        },
    );
    let at = vec![b'a'; MAX_BODY];
    assert_eq!(rig.send("at", "POST", "/b/at", &[], Some(&at)).status, 200);
    let call = rig.paz.one(Phase::Request, "at");
    assert_eq!(
        call["body"].as_str().map(str::len),
        Some(MAX_BODY),
        "a body of max_body_bytes is sent"
    );
    assert_eq!(rig.forwarded("at").body, b"small");
    let over = vec![b'b'; MAX_BODY + 1];
    assert_eq!(
        rig.send("over", "POST", "/b/over", &[], Some(&over)).status,
        200
    );
    let call = rig.paz.one(Phase::Request, "over");
    assert!(
        call.get("body").is_none(),
        "a bigger body is not sent: {call:.200}"
    );
    let up = rig.forwarded("over");
    assert_eq!(
        up.body, over,
        "forwarded unchanged; the answer's body is ignored"
    );
    assert_eq!(values(&up, "content-length"), [over.len().to_string()]);
    rig.counter_reaches("api_warden.sideband.pingauthorize.request_too_large", 1);
    // Responses: at the limit the response call is made; bigger passes unchanged, uncalled.
    let size = MAX_BODY.to_string();
    let r = rig.send(
        "resp-at",
        "GET",
        "/b/resp-at",
        &[("x-echo-size", &size)],
        None,
    );
    assert_eq!(r.body.len(), MAX_BODY);
    let resp = rig.paz.one(Phase::Response, "resp-at");
    assert_eq!(resp["body"].as_str().map(str::len), Some(MAX_BODY));
    rig.paz.set(
        "resp-over",
        Case {
            response: remove_ssn(),
            ..Case::default()
        },
    );
    let size = (MAX_BODY + 1).to_string();
    let r = rig.send(
        "resp-over",
        "GET",
        "/b/resp-over",
        &[("x-echo-size", &size)],
        None,
    );
    assert_eq!(
        (r.status, r.body.len()),
        (200, MAX_BODY + 1),
        "passes unchanged"
    );
    assert_eq!(r.header("x-upstream"), Some("echo"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        rig.paz.calls_for(Phase::Response, "resp-over").is_empty(),
        "no response call"
    );
    rig.counter_reaches("api_warden.sideband.pingauthorize.response_too_large", 1);
    rig.paz.assert_no_violations();
}

/// A chunked HTTP/1.1 request of `chunks` to Envoy; asserts it was answered within the bound.
fn chunked(rig: &Rig, case: &str, path: &str, chunks: &[&[u8]]) -> harness::Response {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\nx-test-case: {case}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    .into_bytes();
    for c in chunks {
        raw.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        raw.extend_from_slice(c);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let started = Instant::now();
    let r = harness::raw_request(&format!("127.0.0.1:{}", rig.envoy.port), &raw).expect("answer");
    assert!(started.elapsed() < BOUND, "{case}: {:?}", started.elapsed());
    r
}

#[test]
fn chunked_request_bodies_are_collected_whole() {
    let rig = Rig::start(json!({}));
    let parts: [&[u8]; 3] = [b"{\"part\":", b" 1, \"more\"", b": true}"];
    let whole = parts.concat();
    assert_eq!(chunked(&rig, "chunked", "/c/1", &parts).status, 200);
    let call = rig.paz.one(Phase::Request, "chunked");
    assert_eq!(call["body"].as_str().map(str::as_bytes), Some(&whole[..]));
    assert_eq!(rig.forwarded("chunked").body, whole);
    rig.paz.set(
        "chunked-rewrite",
        Case {
            request: body_edit("{\"new\":true}"),
            ..Case::default()
        },
    );
    assert_eq!(chunked(&rig, "chunked-rewrite", "/c/2", &parts).status, 200);
    let up = rig.forwarded("chunked-rewrite");
    assert_eq!(up.body, b"{\"new\":true}");
    let lengths = values(&up, "content-length");
    assert!(
        !up.chunked || lengths.is_empty(),
        "chunked and content-length: {up:?}"
    );
    assert!(
        lengths.iter().all(|l| *l == "12"),
        "content-length {lengths:?}"
    );
    let big: Vec<u8> = vec![b'z'; MAX_BODY];
    assert_eq!(
        chunked(&rig, "chunked-over", "/c/3", &[&big, b"zz"]).status,
        200
    );
    assert!(rig
        .paz
        .one(Phase::Request, "chunked-over")
        .get("body")
        .is_none());
    assert_eq!(rig.forwarded("chunked-over").body.len(), MAX_BODY + 2);
    rig.paz.assert_no_violations();
}

/// `curl --http2-prior-knowledge` to Envoy: (status, headers, body).
fn h2(
    port: u16,
    case: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let mut cmd = Command::new("/usr/bin/curl");
    cmd.args(["--http2-prior-knowledge", "-s", "-i", "--max-time", "10"])
        .args(["-H", &format!("x-test-case: {case}")]);
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "--data-binary", b]);
    }
    cmd.arg(format!("http://127.0.0.1:{port}{path}"));
    let out = cmd.output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or("");
    assert!(status_line.starts_with("HTTP/2 "), "not HTTP/2: {text}");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

#[test]
fn http2_requests_follow_the_same_contract() {
    let rig = Rig::start_with(
        json!({}),
        Opts {
            h2c: true,
            ..opts()
        },
    );
    rig.paz.set(
        "h2",
        Case {
            request: super::headers_edit(|h| set_listed(h, "x-added", Some("h2"))),
            response: remove_ssn(),
            ..Case::default()
        },
    );
    let started = Instant::now();
    let (status, headers, body) = h2(rig.envoy.port, "h2", "/h2/x?y=1", Some(r#"{"h":2}"#));
    assert!(started.elapsed() < BOUND);
    assert_eq!(status, 203, "{body}");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "x-policy" && v == "applied"),
        "{headers:?}"
    );
    assert!(
        !headers.iter().any(|(k, _)| k == "x-upstream"),
        "{headers:?}"
    );
    let echoed: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(echoed["account"], json!({"owner": "alice", "plan": "gold"}));
    let call = rig.paz.one(Phase::Request, "h2");
    assert_eq!(call["http_version"], json!("2"));
    let url = format!("http://127.0.0.1:{}/h2/x?y=1", rig.envoy.port);
    assert_eq!(
        call["url"],
        json!(url),
        "the port of :authority is in the url"
    );
    assert_eq!(call["body"], json!(r#"{"h":2}"#));
    assert_eq!(call["method"], json!("POST"));
    let up = rig.forwarded("h2");
    assert_eq!(
        (up.path.as_str(), &up.body[..]),
        ("/h2/x?y=1", &br#"{"h":2}"#[..])
    );
    assert_eq!(values(&up, "x-added"), ["h2"]);
    let resp = rig.paz.one(Phase::Response, "h2");
    assert_eq!(resp["request"], call);
    rig.paz.assert_no_violations();
}

#[test]
fn a_gzip_capable_upstream_is_asked_for_identity() {
    let gz = [("accept-encoding", "gzip, deflate"), ("x-echo-gzip", "1")];
    let rig = Rig::start(json!({}));
    rig.paz.set(
        "gzip",
        Case {
            response: remove_ssn(),
            ..Case::default()
        },
    );
    let r = rig.send("gzip", "GET", "/g/1", &gz, None);
    assert_eq!(r.status, 203, "{}", r.body_text());
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(
        echoed(&r)["account"],
        json!({"owner": "alice", "plan": "gold"})
    );
    assert_eq!(
        values(&rig.forwarded("gzip"), "accept-encoding"),
        ["identity"]
    );
    let resp = rig.paz.one(Phase::Response, "gzip");
    let body: Value =
        serde_json::from_str(resp["body"].as_str().unwrap_or("")).expect("readable JSON");
    assert_eq!(body["account"], harness::paz::account());
    // Without the response call the client's accept-encoding stands and gzip flows through.
    let off = Rig::start(json!({"response_call": false}));
    let r = off.send("gzip-off", "GET", "/g/2", &gz, None);
    assert_eq!(r.status, 200);
    assert_eq!(
        values(&off.forwarded("gzip-off"), "accept-encoding"),
        ["gzip, deflate"]
    );
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(&r.body[..2], &[0x1f, 0x8b]);
    assert!(off.paz.calls_for(Phase::Response, "gzip-off").is_empty());
    rig.paz.assert_no_violations();
    off.paz.assert_no_violations();
}

#[test]
fn concurrent_requests_each_get_their_own_rewrite() {
    // A generous timeout: 120 requests at once on a loaded 2-core machine must not turn into
    // timeouts; what is tested is that no request gets another's rewrite.
    let timeout_ms = 2000;
    let bound = std::time::Duration::from_millis(2 * timeout_ms + 2500);
    let rig = Rig::start(json!({ "timeout_ms": timeout_ms }));
    rig.paz.set(
        "conc",
        Case {
            request: OnRequest::Rewrite(Arc::new(|req: &mut Value| {
                let n = listed(&req["headers"], "x-n").unwrap_or("?").to_string();
                set_listed(&mut req["headers"], "x-rewritten", Some(&n));
                req["url"] = json!(format!("http://localhost/c/{n}"));
            })),
            response: OnResponse::Rewrite(Arc::new(|resp: &mut Value| {
                let body: Value = serde_json::from_str(resp["body"].as_str().unwrap_or(""))
                    .unwrap_or(Value::Null);
                let path = body["path"].as_str().unwrap_or("").to_string();
                set_listed(&mut resp["headers"], "x-path-back", Some(&path));
            })),
            ..Case::default()
        },
    );
    let port = rig.envoy.port;
    let handles: Vec<_> = (0..120)
        .map(|i| {
            std::thread::spawn(move || {
                let n = i.to_string();
                let started = Instant::now();
                let h = [("x-test-case", "conc"), ("x-n", n.as_str())];
                let r = harness::request(port, "GET", &format!("/orig/{i}"), &h, None);
                (i, r, started.elapsed())
            })
        })
        .collect();
    let mut wrong = Vec::new();
    for h in handles {
        let (i, r, took) = h.join().unwrap();
        let want = format!("/c/{i}");
        let ok = r.as_ref().is_ok_and(|r| {
            let e: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            r.status == 200
                && e["path"] == json!(want)
                && e["headers"]
                    .as_array()
                    .is_some_and(|l| l.contains(&json!(["x-rewritten", i.to_string()])))
                && r.header("x-path-back") == Some(want.as_str())
        });
        if !ok || took >= bound {
            let what = r.map(|r| {
                format!(
                    "{} {:?} {:.300}",
                    r.status,
                    r.header("x-path-back"),
                    r.body_text()
                )
            });
            wrong.push((i, took, what.unwrap_or_else(|e| e.to_string())));
        }
    }
    let records: Vec<String> = wrong
        .iter()
        .take(3)
        .map(|(i, ..)| {
            let text = std::fs::read_to_string(&rig.envoy.access_log).unwrap_or_default();
            let marker = format!("\"x-n\":[\"{i}\"]");
            let line = text
                .lines()
                .find(|l| l.contains(&marker))
                .and_then(crate::harness::LogLine::try_parse);
            line.map(|l| l.at("/ase/sideband").to_string())
                .unwrap_or_default()
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} requests with another's rewrite or late, e.g. {:?}; their ase.sideband: {records:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
    rig.paz.assert_no_violations();
}

#[test]
fn stats_and_records_name_every_outcome() {
    let rig = Rig::start(json!({}));
    rig.paz.set(
        "s-deny",
        Case {
            request: OnRequest::Deny {
                http_status: 200,
                response: json!({"response_code": "403",
            "response_status": "FORBIDDEN", "headers": [], "body": "no"}),
            },
            ..Case::default()
        },
    );
    rig.paz.set(
        "s-rewrite",
        Case {
            request: super::headers_edit(|h| set_listed(h, "x-a", Some("1"))),
            ..Case::default()
        },
    );
    rig.paz.set(
        "s-resp",
        Case {
            response: remove_ssn(),
            ..Case::default()
        },
    );
    rig.paz.set(
        "s-error",
        Case {
            request: OnRequest::Fail(500),
            ..Case::default()
        },
    );
    rig.paz.set(
        "s-resp-error",
        Case {
            response: OnResponse::Fail(500),
            ..Case::default()
        },
    );
    let big = (MAX_BODY + 1).to_string();
    let cases: [(&str, Headers, u16); 7] = [
        ("s-allow", &[], 200),
        ("s-deny", &[], 403),
        ("s-rewrite", &[], 200),
        ("s-resp", &[], 203),
        ("s-error", &[], 502),
        ("s-resp-error", &[], 502),
        ("s-big", &[("x-echo-size", &big)], 200),
    ];
    for (case, headers, want) in cases {
        assert_eq!(
            rig.send(case, "GET", &format!("/st/{case}"), headers, None)
                .status,
            want,
            "{case}"
        );
    }
    let at = |case: &str, p: &str| rig.record(case).at(p);
    for (case, ..) in cases {
        assert_eq!(
            at(case, "/ase/sideband/service"),
            json!("pingauthorize"),
            "{case}"
        );
        assert!(at(case, "/ase/sideband/latency_ms").is_u64(), "{case}");
    }
    assert_eq!(at("s-deny", "/ase/sideband/status"), json!(200));
    assert_eq!(at("s-error", "/ase/sideband/status"), json!(500));
    assert!(at("s-error", "/ase/sideband/error").is_string());
    assert_eq!(at("s-deny", "/ase/reason"), json!("sideband"));
    assert_eq!(
        at("s-resp-error", "/ase/sideband/response_phase/status"),
        json!(500)
    );
    assert!(at("s-resp", "/ase/sideband/response_phase/latency_ms").is_u64());
    assert_eq!(
        at("s-rewrite", "/ase/sideband/rewritten_request"),
        json!(true)
    );
    assert_eq!(
        at("s-resp", "/ase/sideband/rewritten_response"),
        json!(true)
    );
    assert_eq!(
        at("s-deny", "/ase/sideband/response_phase"),
        Value::Null,
        "no response call"
    );
    let wants = [
        ("requests", 7),
        ("allowed", 5),
        ("blocked", 1),
        ("errors", 1),
        ("response_calls", 4),
        ("response_calls_failed", 1),
        ("rewritten_requests", 1),
        ("rewritten_responses", 1),
        ("response_too_large", 1),
    ];
    for (name, min) in wants {
        rig.counter_reaches(&format!("api_warden.sideband.pingauthorize.{name}"), min);
        let total = rig
            .envoy
            .stat(&format!("wasmcustom.api_warden.sideband.{name}"));
        let per = rig.envoy.stat(&format!(
            "wasmcustom.api_warden.sideband.pingauthorize.{name}"
        ));
        if ["requests", "allowed", "blocked", "errors"].contains(&name) {
            assert!(total >= per, "total {name} {total} < pingauthorize {per}");
        }
    }
    for name in ["timeouts", "skipped", "request_too_large", "rate_limited"] {
        let full = format!("wasmcustom.api_warden.sideband.pingauthorize.{name}");
        assert!(rig.envoy.try_stat(&full).is_some(), "{full} is not defined");
    }
    for name in ["requests", "errors"] {
        let full = format!("wasmcustom.api_warden.sideband.ase.{name}");
        assert_eq!(rig.envoy.stat(&full), 0, "{full}");
    }
    rig.paz.assert_no_violations();
}
