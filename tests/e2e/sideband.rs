//! End-to-end tests of sideband mode with PingIntelligence ASE: a contract double of ASE's
//! sideband API, written from the documented shapes, checks every field of both calls and
//! answers what each request asks for (in its `x-ase-answer` header): 200, 403, 401, 503, `slow`
//! (past the timeout), `close` (a cut answer). Real Envoy, 2 workers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::enforcement::{assert_blocked, record_for, two_workers};
use crate::harness::{self, eventually, jwt, Envoy, Opts, Received, TestServer};

const TOKEN: &str = "0123456789abcdefghijklmnopqrstuv";
const TIMEOUT_MS: u64 = 400;

/// ASE's sideband API, as a double that validates what it receives.
struct AseDouble {
    server: TestServer,
    /// Contract violations seen (each answered 400).
    violations: Arc<Mutex<Vec<String>>>,
}

/// The value of header `name` in ASE's header list (one-key objects).
fn listed<'a>(headers: &'a Value, name: &str) -> Option<&'a str> {
    headers
        .as_array()?
        .iter()
        .find_map(|h| h.get(name).and_then(Value::as_str))
}

fn check_headers(v: &Value) -> Result<(), String> {
    let list = v.as_array().ok_or("headers is not a list")?;
    for h in list {
        let o = h
            .as_object()
            .ok_or(format!("header {h} is not an object"))?;
        if o.len() != 1 {
            return Err(format!("header {h} is not a one-key object"));
        }
        for (k, v) in o {
            if k.is_empty() || k.starts_with(':') || *k != k.to_ascii_lowercase() || !v.is_string()
            {
                return Err(format!(
                    "header {h}: lowercase names, string values, no pseudo-headers"
                ));
            }
        }
    }
    Ok(())
}

fn check_keys(o: &serde_json::Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("unexpected key {k:?}")),
        None => Ok(()),
    }
}

/// Validate one call against the documented contract.
fn validate(r: &Received) -> Result<Value, String> {
    if r.method != "POST" {
        return Err(format!("method {}", r.method));
    }
    let h = |n: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    if h("content-type") != Some("application/json") {
        return Err(format!("content-type {:?}", h("content-type")));
    }
    if h("ase-token") != Some(TOKEN) {
        return Err(format!("ASE-Token {:?}", h("ase-token")));
    }
    if h("x-correlationid").map_or(true, str::is_empty) {
        return Err("no X-CorrelationID".into());
    }
    let v: Value = serde_json::from_slice(&r.body).map_err(|e| format!("body is not JSON: {e}"))?;
    let o = v.as_object().ok_or("body is not an object")?;
    let version_ok = |v: &Value| matches!(v.as_str(), Some("1.0" | "1.1" | "2" | "3"));
    match r.path.as_str() {
        "/ase/request" => {
            check_keys(
                o,
                &[
                    "source_ip",
                    "source_port",
                    "method",
                    "url",
                    "http_version",
                    "headers",
                    "user_info",
                ],
            )?;
            let ip = o
                .get("source_ip")
                .and_then(Value::as_str)
                .ok_or("source_ip not a string")?;
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| format!("source_ip {ip:?}"))?;
            let port = o
                .get("source_port")
                .and_then(Value::as_u64)
                .ok_or("source_port not a number")?;
            if port == 0 || port > 65535 {
                return Err(format!("source_port {port}"));
            }
            o.get("method")
                .and_then(Value::as_str)
                .ok_or("method not a string")?;
            let url = o
                .get("url")
                .and_then(Value::as_str)
                .ok_or("url not a string")?;
            if !url.starts_with('/') {
                return Err(format!("url {url:?} is not path and query"));
            }
            if !o.get("http_version").is_some_and(version_ok) {
                return Err(format!("http_version {:?}", o.get("http_version")));
            }
            check_headers(o.get("headers").ok_or("no headers")?)?;
            if let Some(u) = o.get("user_info") {
                let u = u.as_array().ok_or("user_info not a list")?;
                for e in u {
                    let e = e.as_object().ok_or("user_info entry not an object")?;
                    check_keys(e, &["username", "client_id"])?;
                    if !e.values().all(Value::is_string) {
                        return Err("user_info values must be strings".into());
                    }
                }
            }
        }
        "/ase/response" => {
            check_keys(
                o,
                &[
                    "response_code",
                    "response_status",
                    "http_version",
                    "headers",
                ],
            )?;
            let code = o
                .get("response_code")
                .and_then(Value::as_str)
                .ok_or("response_code not a string")?;
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("response_code {code:?}"));
            }
            o.get("response_status")
                .and_then(Value::as_str)
                .ok_or("response_status not a string")?;
            if !o.get("http_version").is_some_and(version_ok) {
                return Err("http_version".into());
            }
            check_headers(o.get("headers").ok_or("no headers")?)?;
        }
        other => return Err(format!("path {other}")),
    }
    Ok(v)
}

impl AseDouble {
    fn start() -> AseDouble {
        let violations = Arc::new(Mutex::new(Vec::new()));
        let v = violations.clone();
        let server = TestServer::start(move |r| match validate(r) {
            Err(e) => {
                v.lock()
                    .unwrap()
                    .push(format!("{} {}: {e}", r.method, r.path));
                (400, b"{}".to_vec())
            }
            Ok(body) if r.path == "/ase/request" => {
                match listed(&body["headers"], "x-ase-answer").unwrap_or("200") {
                    "403" => (403, b"{}".to_vec()),
                    "401" => (401, b"{}".to_vec()),
                    "503" => (503, b"{}".to_vec()),
                    "close" => (0, Vec::new()),
                    "slow" => {
                        std::thread::sleep(Duration::from_millis(TIMEOUT_MS + 600));
                        (200, b"{}".to_vec())
                    }
                    _ => (200, b"{}".to_vec()),
                }
            }
            Ok(_) => (200, b"{}".to_vec()),
        });
        AseDouble { server, violations }
    }

    /// Calls received on `path`, as (correlation id, parsed body).
    fn calls(&self, path: &str) -> Vec<(String, Value)> {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path == path)
            .map(|r| {
                let id = r.headers.iter().find(|(k, _)| k == "x-correlationid");
                (
                    id.map(|(_, v)| v.clone()).unwrap_or_default(),
                    serde_json::from_slice(&r.body).unwrap_or(Value::Null),
                )
            })
            .collect()
    }

    fn assert_no_violations(&self) {
        let v = self.violations.lock().unwrap();
        assert!(v.is_empty(), "contract violations: {v:?}");
    }
}

fn plugin(sideband: Value) -> String {
    let mut sb = json!({"service": "ase", "cluster": "ase", "authority": "ase.internal",
                        "token": TOKEN, "timeout_ms": TIMEOUT_MS});
    if let (Some(a), Some(b)) = (sb.as_object_mut(), sideband.as_object()) {
        a.extend(b.clone());
    }
    json!({
        "ase": {"enable_xff": true},
        "apis": [{"name": "shop", "api_metadata": {"url": "/shop", "hostname": "*",
            "oauth2_access_token": true, "enable_blocking": true,
            "jwt": {"location": "h:x-jwt", "username": "sub", "clientid": "client_id"}}}],
        "deny_list": {"username": ["eve"]},
        "sideband": sb
    })
    .to_string()
}

fn start(ase_cluster: String, sideband: Value) -> Envoy {
    Envoy::start_with(
        &plugin(sideband),
        Opts {
            extra_clusters: ase_cluster,
            ..two_workers()
        },
    )
}

fn answer(envoy: &Envoy, path: &str, what: &str) -> harness::Response {
    envoy.get(
        path,
        &[("x-ase-answer", what), ("x-forwarded-for", "198.51.100.4")],
    )
}

#[test]
fn allowed_and_blocked_requests_follow_the_exact_contract() {
    let ase = AseDouble::start();
    let envoy = start(ase.server.cluster("ase"), json!({}));
    let alice = jwt(&json!({"sub": "alice", "client_id": "shop-app"}));
    let r = envoy.get(
        "/shop/items?q=1&x=2",
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-jwt", &alice),
            ("x-request-id", "rid-allow-1"),
        ],
    );
    assert_eq!((r.status, r.body_text().as_str()), (200, "upstream ok"));
    let rec = record_for(&envoy, "/shop/items?q=1&x=2");
    assert_eq!(rec.at("/ase/sideband/outcome"), json!("allow"));
    assert_eq!(rec.at("/ase/sideband/status"), json!(200));
    assert_eq!(rec.at("/ase/sideband/service"), json!("ase"));
    let calls = ase.calls("/ase/request");
    let (id, body) = calls
        .iter()
        .find(|(id, _)| id == "rid-allow-1")
        .expect("request call");
    assert_eq!(
        body["source_ip"],
        json!("203.0.113.9"),
        "the XFF client, with enable_xff"
    );
    assert_eq!(body["method"], json!("GET"));
    assert_eq!(body["url"], json!("/shop/items?q=1&x=2"));
    assert_eq!(body["http_version"], json!("1.1"));
    assert!(body["source_port"].as_u64().is_some_and(|p| p > 0));
    assert!(
        listed(&body["headers"], "host").is_some_and(|h| !h.is_empty()),
        "{body}"
    );
    assert_eq!(
        body["user_info"],
        json!([{"username": "alice", "client_id": "shop-app"}])
    );
    // The response call, with the same correlation id and the code as a string.
    let resp = eventually(5, || {
        ase.calls("/ase/response")
            .into_iter()
            .find(|(rid, _)| rid == id)
    })
    .expect("response call");
    assert_eq!(resp.1["response_code"], json!("200"));
    assert_eq!(resp.1["response_status"], json!("OK"));
    assert_eq!(
        listed(&resp.1["headers"], "content-type"),
        Some("text/plain")
    );
    // ASE answers 403: api-warden's block response, reason sideband, no response call.
    let r = envoy.get(
        "/shop/items",
        &[("x-ase-answer", "403"), ("x-request-id", "rid-block-1")],
    );
    assert_blocked(&r, "ASE 403");
    let rec = record_for(&envoy, "/shop/items");
    assert_eq!(rec.at("/ase/reason"), json!("sideband"));
    assert_eq!(rec.at("/ase/sideband/outcome"), json!("block"));
    // A client api-warden blocks itself is never sent to ASE.
    let eve = jwt(&json!({"sub": "eve"}));
    assert_blocked(
        &envoy.get("/shop/x", &[("x-jwt", &eve), ("x-request-id", "rid-local")]),
        "eve",
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(ase
        .calls("/ase/request")
        .iter()
        .all(|(id, _)| id != "rid-local"));
    assert!(ase
        .calls("/ase/response")
        .iter()
        .all(|(id, _)| id != "rid-block-1" && id != "rid-local"));
    ase.assert_no_violations();
    assert!(
        eventually(5, || envoy.stat("wasmcustom.api_warden.sideband.blocked")
            >= 1),
        "wasmcustom.api_warden.sideband.blocked"
    );
    let calls = eventually(5, || {
        envoy.stat("wasmcustom.api_warden.sideband.response_calls") >= 1
    });
    assert!(calls);
}

#[test]
fn ase_errors_follow_fail_open() {
    let ase = AseDouble::start();
    for (fail_open, want) in [(true, 200), (false, 503)] {
        let envoy = start(ase.server.cluster("ase"), json!({"fail_open": fail_open}));
        for what in ["401", "503", "close", "slow"] {
            let started = Instant::now();
            let r = answer(&envoy, &format!("/shop/{what}"), what);
            assert_eq!(
                r.status,
                want,
                "{what} fail_open={fail_open}: {}",
                r.body_text()
            );
            if want == 503 {
                assert_eq!(r.body_text(), "", "{what}");
            }
            assert!(
                started.elapsed() < Duration::from_millis(TIMEOUT_MS + 1500),
                "{what} took {:?}",
                started.elapsed()
            );
            let rec = record_for(&envoy, &format!("/shop/{what}"));
            assert_eq!(rec.at("/ase/sideband/outcome"), json!("error"), "{what}");
        }
        assert!(
            envoy.log().contains("ASE refused the ASE-Token"),
            "the 401 is logged"
        );
        assert!(
            eventually(5, || envoy.stat("wasmcustom.api_warden.sideband.errors")
                >= 4),
            "wasmcustom.api_warden.sideband.errors"
        );
        assert!(
            eventually(5, || envoy.stat("wasmcustom.api_warden.sideband.timeouts")
                >= 1),
            "wasmcustom.api_warden.sideband.timeouts"
        );
    }
    ase.assert_no_violations();
}

#[test]
fn ase_down_is_skipped_promptly_and_calls_resume_when_it_is_back() {
    let ase = AseDouble::start();
    ase.server.set(|_| (0, Vec::new()));
    let envoy = start(ase.server.cluster("ase"), json!({}));
    // A few failures open the breaker; then requests flow without waiting on ASE.
    // (Each worker has its own breaker: enough requests for both to open.)
    for i in 0..16 {
        assert_eq!(answer(&envoy, &format!("/shop/down{i}"), "200").status, 200);
    }
    let skipped = eventually(5, || {
        envoy.stat("wasmcustom.api_warden.sideband.skipped") >= 1
    });
    assert!(skipped, "no request was skipped");
    let started = Instant::now();
    for i in 0..20 {
        assert_eq!(answer(&envoy, &format!("/shop/fast{i}"), "200").status, 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "20 requests took {:?}",
        started.elapsed()
    );
    // ASE is back: after the open period a probe succeeds and calls resume.
    ase.server.set(|_| (200, b"{}".to_vec()));
    let mut i = 0;
    let resumed = eventually(10, || {
        i += 1;
        let path = format!("/shop/back{i}");
        answer(&envoy, &path, "200");
        record_for(&envoy, &path).at("/ase/sideband/outcome") == json!("allow")
    });
    assert!(resumed, "calls never resumed");
    // Connection refused (nothing listens on the cluster's port): fail open, promptly.
    let refused = start(
        harness::yaml::cluster("ase", harness::free_port()),
        json!({}),
    );
    let started = Instant::now();
    assert_eq!(answer(&refused, "/shop/refused", "200").status, 200);
    assert!(started.elapsed() < Duration::from_millis(TIMEOUT_MS + 1500));
}

#[test]
fn concurrent_requests_each_get_their_own_verdict() {
    let ase = AseDouble::start();
    let envoy = start(ase.server.cluster("ase"), json!({"response_call": false}));
    let port = envoy.port;
    let handles: Vec<_> = (0..200)
        .map(|i| {
            std::thread::spawn(move || {
                let what = if i % 3 == 0 { "403" } else { "200" };
                let path = format!("/shop/c{i}");
                let r = harness::request(port, "GET", &path, &[("x-ase-answer", what)], None);
                (i, what, r.map(|r| r.status).unwrap_or(0))
            })
        })
        .collect();
    let mut wrong = HashMap::new();
    for h in handles {
        let (i, what, status) = h.join().unwrap();
        let want = if what == "403" { 403 } else { 200 };
        if status != want {
            wrong.insert(i, status);
        }
    }
    assert!(
        wrong.is_empty(),
        "requests with another's verdict: {wrong:?}"
    );
    assert!(
        ase.calls("/ase/response").is_empty(),
        "response_call is off"
    );
    ase.assert_no_violations();
}

#[test]
fn a_reload_while_calls_are_in_flight_leaves_no_request_hanging() {
    // The LDS test rig of the fault tests; its "collector" server stands in for a slow ASE.
    let ase = crate::export_faults::Collector::start();
    ase.server.set(|r| {
        if r.path == "/ase/request" {
            std::thread::sleep(Duration::from_millis(300));
        }
        (200, b"{}".to_vec())
    });
    let plugin = |denied: &str| {
        json!({"apis": [{"name": "shop", "api_metadata": {"url": "/shop", "hostname": "*",
                 "username_header": "x-user", "enable_blocking": true}}],
               "deny_list": {"username": [denied]},
               "sideband": {"service": "ase", "cluster": "collector", "timeout_ms": 2000}})
    };
    let (envoy, mut lds, port) = crate::faults::start_dynamic(&ase, &plugin("nobody"), 1, 2);
    let in_flight: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                let started = Instant::now();
                let path = format!("/shop/r{i}");
                let r = harness::request(port, "GET", &path, &[("x-user", "bob")], None);
                (r.map(|r| r.status).unwrap_or(0), started.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    lds.push(&plugin("mallory"));
    for h in in_flight {
        let (status, took) = h.join().unwrap();
        assert_eq!(status, 200, "a request in flight during the reload");
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }
    let status = |user: &str| {
        harness::request(port, "GET", "/shop/x", &[("x-user", user)], None)
            .map(|r| r.status)
            .unwrap_or(0)
    };
    assert!(
        eventually(10, || status("mallory") == 403),
        "the new configuration never applied"
    );
    assert_eq!(status("bob"), 200);
    drop(envoy);
}
