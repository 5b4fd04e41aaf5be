//! The contract double's self-test, without Envoy: a plain HTTP client drives it with good and
//! bad call bodies, and every bad one must be flagged as a violation; the echo upstream decodes
//! chunked bodies and frames gzip correctly.

use serde_json::{json, Value};

use super::{echoed, Headers};
use crate::harness;
use crate::harness::paz::{self, set_listed, Case, Echo, PazDouble, AUTHORITY, SECRET};

#[test]
fn the_double_flags_every_contract_violation() {
    let paz = PazDouble::start("");
    let port = paz.server.port;
    let good = json!({"source_ip": "127.0.0.1", "source_port": 40000, "method": "GET",
        "url": "http://shop.example:8080/items?q=1", "http_version": "1.1",
        "headers": [{"x-test-case": "self"}, {"accept": "*/*"}]});
    let post = |path: &str, headers: &[(&str, &str)], body: &Value| {
        let mut h = vec![("host", AUTHORITY)];
        h.extend_from_slice(headers);
        let b = body.to_string();
        harness::request(port, "POST", path, &h, Some(b.as_bytes())).expect("double answers")
    };
    let ok = [
        ("content-type", "application/json"),
        ("client-token", SECRET),
    ];
    let r = post("/sideband/request", &ok, &good);
    assert_eq!(r.status, 200, "{}", r.body_text());
    let answer: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(answer, good, "allow unchanged answers the request");
    let back = json!({"method": "GET", "url": good["url"], "response_code": "200",
        "response_status": "OK", "http_version": "1.1", "headers": [], "request": good});
    assert_eq!(post("/sideband/response", &ok, &back).status, 200);
    paz.assert_no_violations();
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let bad: Vec<(&str, Headers, Value)> = vec![
        ("/sideband/request", &ok, with("url", json!("/items?q=1"))),
        (
            "/sideband/request",
            &ok,
            with("source_port", json!("40000")),
        ),
        (
            "/sideband/request",
            &ok,
            with("source_ip", json!("localhost")),
        ),
        (
            "/sideband/request",
            &ok,
            with("headers", json!([{"Accept": "x"}])),
        ),
        (
            "/sideband/request",
            &ok,
            with("headers", json!([{":path": "/"}])),
        ),
        (
            "/sideband/request",
            &ok,
            with("headers", json!([{"a": "1", "b": "2"}])),
        ),
        ("/sideband/request", &ok, with("headers", json!({"a": "1"}))),
        ("/sideband/request", &ok, with("body", json!(""))),
        ("/sideband/request", &ok, with("body", json!({"a": 1}))),
        (
            "/sideband/request",
            &ok,
            with("http_version", json!("HTTP/1.1")),
        ),
        ("/sideband/request", &ok, with("extra", json!(1))),
        (
            "/sideband/request",
            &[("content-type", "application/json")],
            good.clone(),
        ),
        (
            "/sideband/request",
            &[("content-type", "text/plain"), ("client-token", SECRET)],
            good.clone(),
        ),
        (
            "/sideband/request",
            &[
                ("content-type", "application/json"),
                ("client-token", "nope"),
            ],
            good.clone(),
        ),
        ("/sideband/other", &ok, good.clone()),
        ("/sideband/response", &ok, {
            let mut b = back.clone();
            b["response_code"] = json!(200);
            b
        }),
        ("/sideband/response", &ok, {
            let mut b = back.clone();
            b["request"]["source_port"] = json!(40001);
            b
        }),
        ("/sideband/response", &ok, {
            let mut b = back.clone();
            b["state"] = json!("never-issued");
            b
        }),
        ("/sideband/response", &ok, {
            let mut b = back.clone();
            b.as_object_mut().unwrap().remove("request");
            b
        }),
        ("/sideband/response", &ok, {
            let mut b = back.clone();
            b["url"] = json!("http://other/");
            b
        }),
    ];
    for (i, (path, headers, body)) in bad.iter().enumerate() {
        let r = post(path, headers, body);
        assert_ne!(r.status, 200, "case {i} accepted: {body}");
        assert_eq!(
            paz.violations().len(),
            i + 1,
            "case {i} not flagged: {body}"
        );
    }
    // State: issued with the allow, echoed exactly on the response call, no `request` then.
    paz.set(
        "stateful",
        Case {
            state: Some("st \"q\" ü/é".into()),
            ..Case::default()
        },
    );
    let mut req = good.clone();
    set_listed(&mut req["headers"], "x-test-case", Some("stateful"));
    let answer: Value = serde_json::from_slice(&post("/sideband/request", &ok, &req).body).unwrap();
    let state = answer["state"]
        .as_str()
        .expect("state returned")
        .to_string();
    let n = paz.violations().len();
    let mut back2 = back.clone();
    back2["request"] = req.clone();
    assert_ne!(
        post("/sideband/response", &ok, &back2).status,
        200,
        "request sent despite state"
    );
    let mut b = back.clone();
    b.as_object_mut().unwrap().remove("request");
    b["state"] = json!(state);
    assert_eq!(post("/sideband/response", &ok, &b).status, 200);
    assert_eq!(paz.violations().len(), n + 1);
    // The echo: chunked bodies decoded, valid gzip framing.
    let echo = Echo::start();
    let raw = b"POST /c?x=1 HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n";
    let r = harness::raw_request(&format!("127.0.0.1:{}", echo.server.port), raw).unwrap();
    let e = echoed(&r);
    assert_eq!(
        (e["body"].clone(), e["chunked"].clone(), e["path"].clone()),
        (json!("abcde"), json!(true), json!("/c?x=1"))
    );
    let gz = paz::gzip(b"123456789");
    assert_eq!(
        &gz[gz.len() - 8..gz.len() - 4],
        &0xCBF4_3926u32.to_le_bytes(),
        "crc32 check value"
    );
}
