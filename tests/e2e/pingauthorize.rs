//! End-to-end tests of sideband mode with PingAuthorize (issue #15): real Envoy (2 workers) with
//! the built filter between a client and the [`Echo`] upstream, calling the strict contract double
//! of the Sideband API ([`PazDouble`]); each request picks its test case with `x-test-case`. This
//! file: the rig, allow, deny, the call fields. `rewrites`: request rewrites, state, response
//! rewrites. `failures`: fail closed and open, the 429 circuit, never hanging. `bodies`: body
//! limits, chunked bodies, HTTP/2, gzip, concurrency, stats and records. `double`: the
//! double's own self-test.

mod bodies;
mod double;
mod failures;
mod rewrites;

pub(crate) use rewrites::remove_ssn;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::paz::{
    self, listed, listed_all, Case, Echo, OnRequest, PazDouble, Phase, AUTHORITY, SECRET,
};
use crate::harness::{self, eventually, yaml, Envoy, Launch, LogLine, Opts, Response};

/// The sideband timeout of the rigs (generous: a loaded 2-core CI machine must not turn calls
/// into timeouts; the timeout cases sleep past it).
pub(crate) const TIMEOUT_MS: u64 = 1000;
/// `max_body_bytes` of the rigs (above every echo answer, which is about 500 bytes).
pub(crate) const MAX_BODY: usize = 4096;
/// Every request must be answered within this (Envoy never hangs a client).
pub(crate) const BOUND: Duration = Duration::from_millis(2 * TIMEOUT_MS + 2500);

/// Request headers as the tests write them.
pub(crate) type Headers<'a> = &'a [(&'a str, &'a str)];

/// Envoy with the filter in front of the echo upstream, and the double it calls.
pub(crate) struct Rig {
    pub envoy: Envoy,
    pub paz: PazDouble,
    pub echo: Echo,
}

/// The plugin configuration: the decisions' sideband section with the rig's timeout and body
/// limit, `overrides` merged in.
pub(crate) fn plugin(overrides: Value) -> String {
    let mut sb = json!({"service": "pingauthorize", "cluster": "paz", "authority": AUTHORITY,
                        "secret": SECRET, "timeout_ms": TIMEOUT_MS, "max_body_bytes": MAX_BODY});
    if let (Some(a), Some(b)) = (sb.as_object_mut(), overrides.as_object()) {
        a.extend(b.clone());
    }
    json!({ "sideband": sb }).to_string()
}

/// Two workers, bodies delivered while the headers are paused.
pub(crate) fn opts() -> Opts {
    Opts {
        concurrency: 2,
        allow_on_headers_stop_iteration: true,
        ..Opts::default()
    }
}

/// Envoy: the main listener (the filter, the record access log) routing to the upstream on
/// `upstream`, and the `paz` cluster `paz_cluster`.
pub(crate) fn launch(plugin: &str, paz_cluster: &str, upstream: u16, opts: &Opts) -> Envoy {
    let cluster = yaml::cluster("upstream", upstream);
    launch_on(plugin, paz_cluster, &cluster, upstream, opts)
}

/// [`launch`] with the `upstream` cluster as given (YAML list item for port `upstream`).
pub(crate) fn launch_on(
    plugin: &str,
    paz_cluster: &str,
    upstream_cluster: &str,
    upstream: u16,
    opts: &Opts,
) -> Envoy {
    let launched = Envoy::launch(|| {
        let dir = harness::scratch("paz");
        let (port, admin) = (harness::free_port(), harness::free_port());
        let main = yaml::Listener {
            name: "main",
            port,
            additional_addresses: "",
            codec: if opts.h2c { "AUTO" } else { "HTTP1" },
            access_log: &yaml::access_log(&dir.join("access.log"), yaml::record_format()),
            route: "route: { cluster: upstream }",
            http_filters: &yaml::wasm_filter_with(
                &yaml::local_code(&harness::wasm_path()),
                "UNSPECIFIED",
                plugin,
                opts.allow_on_headers_stop_iteration,
            ),
        };
        Launch {
            yaml: yaml::bootstrap(
                admin,
                "",
                &main.render(),
                &(upstream_cluster.to_string() + paz_cluster),
            ),
            dir,
            admin,
            port,
            upstream,
            args: vec!["--concurrency".into(), opts.concurrency.to_string()],
        }
    });
    launched.unwrap_or_else(|(msg, log)| panic!("envoy did not start: {msg}\n{log}"))
}

impl Rig {
    pub(crate) fn start(overrides: Value) -> Rig {
        Rig::start_with(overrides, opts())
    }

    pub(crate) fn start_with(overrides: Value, opts: Opts) -> Rig {
        let (paz, echo) = (PazDouble::start(""), Echo::start());
        let envoy = launch(
            &plugin(overrides),
            &paz.server.cluster("paz"),
            echo.server.port,
            &opts,
        );
        Rig { envoy, paz, echo }
    }

    /// One HTTP/1.1 request (test case `case`); asserts it was answered within [`BOUND`].
    pub(crate) fn send(
        &self,
        case: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        let mut all = vec![("x-test-case", case)];
        all.extend_from_slice(headers);
        let started = Instant::now();
        let r = harness::request(self.envoy.port, method, path, &all, body);
        let took = started.elapsed();
        let r =
            r.unwrap_or_else(|e| panic!("{case}: {method} {path}: no answer after {took:?}: {e}"));
        assert!(took < BOUND, "{case}: answered after {took:?}");
        r
    }

    pub(crate) fn get(&self, case: &str, path: &str) -> Response {
        self.send(case, "GET", path, &[], None)
    }

    /// The requests the upstream received for test case `case`.
    pub(crate) fn upstream(&self, case: &str) -> Vec<paz::Call> {
        self.echo
            .calls()
            .into_iter()
            .filter(|c| c.header("x-test-case") == Some(case))
            .collect()
    }

    /// The one request the upstream received for `case`.
    pub(crate) fn forwarded(&self, case: &str) -> paz::Call {
        let calls = self.upstream(case);
        assert_eq!(calls.len(), 1, "{case}: upstream saw {calls:#?}");
        calls[0].clone()
    }

    /// The record of the request of test case `case` (its `x-test-case` request header, in the
    /// record's request headers; waits up to 10 s).
    pub(crate) fn record(&self, case: &str) -> LogLine {
        let marker = format!("\"x-test-case\":[\"{case}\"]");
        let found = eventually(10, || {
            let text = std::fs::read_to_string(&self.envoy.access_log).unwrap_or_default();
            text.lines()
                .filter(|l| l.contains(&marker))
                .find_map(LogLine::try_parse)
        });
        found.unwrap_or_else(|| panic!("no record of test case {case}"))
    }

    /// Wait until counter `name` (without the `wasmcustom.` prefix) reaches `min`.
    pub(crate) fn counter_reaches(&self, name: &str, min: u64) {
        let full = format!("wasmcustom.{name}");
        let ok = eventually(5, || self.envoy.stat(&full) >= min);
        assert!(ok, "{full} = {}, want >= {min}", self.envoy.stat(&full));
    }
}

/// The body of `r`, de-chunked when it came chunked (the harness client reads it raw).
pub(crate) fn body_of(r: &Response) -> Vec<u8> {
    if r.header("transfer-encoding") != Some("chunked") {
        return r.body.clone();
    }
    let (mut out, mut rest) = (Vec::new(), &r.body[..]);
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..eol]).unwrap_or("0");
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("0").trim(), 16);
        let size = size.unwrap_or_else(|_| panic!("bad chunk size in {:?}", r.body_text()));
        if size == 0 {
            break;
        }
        out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
        rest = &rest[eol + 2 + size + 2..];
    }
    out
}

/// The parsed JSON of an echo answer.
pub(crate) fn echoed(r: &Response) -> Value {
    serde_json::from_slice(&body_of(r))
        .unwrap_or_else(|e| panic!("not an echo answer ({e}): {r:?}"))
}

/// Every value of header `name` a forwarded request carried.
pub(crate) fn values(c: &paz::Call, name: &str) -> Vec<String> {
    c.headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// An edit of the request object's headers.
pub(crate) fn headers_edit(f: impl Fn(&mut Value) + Send + Sync + 'static) -> OnRequest {
    OnRequest::Rewrite(Arc::new(move |req: &mut Value| f(&mut req["headers"])))
}

#[test]
fn allowed_requests_reach_the_upstream_unchanged() {
    let rig = Rig::start(json!({}));
    let r = rig.send(
        "allow",
        "GET",
        "/shop/items?q=1&x=%2F",
        &[
            ("X-Mixed-Case", "V a l"),
            ("x-multi", "a"),
            ("x-multi", "b"),
            ("accept-encoding", "gzip"),
        ],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    let call = rig.paz.one(Phase::Request, "allow");
    assert_eq!(call["url"], json!("http://localhost/shop/items?q=1&x=%2F"));
    assert_eq!(
        (call["method"].clone(), call["http_version"].clone()),
        (json!("GET"), json!("1.1"))
    );
    assert_eq!(call["source_ip"], json!("127.0.0.1"));
    assert!(call.get("body").is_none(), "a GET has no body: {call}");
    assert!(call.get("client_certificate").is_none(), "no mTLS: {call}");
    assert_eq!(listed(&call["headers"], "x-mixed-case"), Some("V a l"));
    assert_eq!(
        listed_all(&call["headers"], "x-multi"),
        ["a", "b"],
        "repeated, in order"
    );
    // The upstream saw the same request, asked for identity (response_call is on).
    let up = rig.forwarded("allow");
    assert_eq!(
        (up.method.as_str(), up.path.as_str()),
        ("GET", "/shop/items?q=1&x=%2F")
    );
    assert_eq!(values(&up, "x-multi"), ["a", "b"]);
    assert_eq!(values(&up, "x-mixed-case"), ["V a l"]);
    assert_eq!(values(&up, "accept-encoding"), ["identity"]);
    // The response call: the response, with the original request; the client gets it unchanged.
    let resp = rig.paz.one(Phase::Response, "allow");
    assert_eq!(
        (
            resp["response_code"].clone(),
            resp["response_status"].clone()
        ),
        (json!("200"), json!("OK"))
    );
    assert_eq!(resp["request"], call, "the original request object");
    assert_eq!(resp["body"].as_str(), Some(r.body_text().as_str()));
    assert_eq!(listed(&resp["headers"], "x-upstream"), Some("echo"));
    assert_eq!(r.header("x-upstream"), Some("echo"));
    assert_eq!(echoed(&r)["account"], paz::account());
    // A POST body goes to the request call and, unchanged, upstream.
    let body = br#"{"order": 7, "note": "caf\u00e9"}"#;
    let r = rig.send(
        "allow-post",
        "POST",
        "/shop/orders",
        &[("content-type", "application/json")],
        Some(body),
    );
    assert_eq!(r.status, 200);
    let call = rig.paz.one(Phase::Request, "allow-post");
    assert_eq!(call["body"].as_str().map(str::as_bytes), Some(&body[..]));
    let up = rig.forwarded("allow-post");
    assert_eq!(up.body, body);
    assert_eq!(values(&up, "content-length"), [body.len().to_string()]);
    let rec = rig.record("allow");
    assert_eq!(rec.at("/ase/sideband/service"), json!("pingauthorize"));
    assert_eq!(rec.at("/ase/sideband/outcome"), json!("allow"));
    assert_eq!(rec.at("/ase/sideband/status"), json!(200));
    assert_eq!(rec.at("/ase/sideband/response_phase/status"), json!(200));
    assert_eq!(rec.at("/ase/sideband/rewritten_request"), json!(false));
    assert_eq!(rec.at("/ase/sideband/rewritten_response"), json!(false));
    rig.paz.assert_no_violations();
}

/// A GET from a connection of our own: (its local port, the status line and the whole answer).
fn get_from_own_port(port: u16, case: &str, path: &str, extra: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(BOUND)).unwrap();
    let local = s.local_addr().unwrap().port();
    let raw = format!("GET {path} HTTP/1.1\r\nhost: shop.example:8443\r\nx-test-case: {case}\r\n{extra}connection: close\r\n\r\n");
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    (local, out)
}

#[test]
fn the_calls_carry_the_client_port_header_order_and_repeated_headers() {
    let rig = Rig::start(json!({}));
    let (local, answer) = get_from_own_port(
        rig.envoy.port,
        "port",
        "/p?x=1",
        "x-first: 1\r\nx-second: 2\r\nx-third: 3\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.300}");
    let call = rig.paz.one(Phase::Request, "port");
    assert_eq!(
        call["source_port"],
        json!(local),
        "the client's own port, as a number"
    );
    assert_eq!(
        call["url"],
        json!("http://shop.example:8443/p?x=1"),
        "the port of :authority"
    );
    let names: Vec<String> = call["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h.as_object()?.keys().next().cloned())
        .filter(|n| {
            n.starts_with("x-first") || n.starts_with("x-second") || n.starts_with("x-third")
        })
        .collect();
    assert_eq!(names, ["x-first", "x-second", "x-third"], "request order");
    // Repeated response headers are repeated entries, and reach the client both.
    let resp = rig.paz.one(Phase::Response, "port");
    assert_eq!(listed_all(&resp["headers"], "set-cookie"), ["a=1", "b=2"]);
    assert!(
        answer.contains("set-cookie: a=1\r\n") && answer.contains("set-cookie: b=2\r\n"),
        "{answer:.600}"
    );
    // An empty response body is omitted from the response call.
    let r = rig.send("empty", "GET", "/p/empty", &[("x-echo-size", "0")], None);
    assert_eq!((r.status, r.body.len()), (200, 0));
    let resp = rig.paz.one(Phase::Response, "empty");
    assert!(
        resp.get("body").is_none(),
        "no body key for an empty body: {resp}"
    );
    rig.paz.assert_no_violations();
}

/// PingAuthorize's deny answer.
fn deny(code: &str, status: &str, body: &str) -> Value {
    json!({"response_code": code, "response_status": status, "body": body,
           "headers": [{"content-type": "application/json"}, {"x-deny-reason": "policy"},
                       {"www-authenticate": "Bearer realm=\"shop\""}]})
}

#[test]
fn denials_send_exactly_the_response_and_are_never_forwarded() {
    let rig = Rig::start(json!({}));
    let cases = [
        (
            "deny-200",
            200,
            "403",
            "FORBIDDEN",
            r#"{"errorMessage":"Access Denied","status":403}"#,
        ),
        (
            "deny-403",
            403,
            "403",
            "FORBIDDEN",
            r#"{"errorMessage":"Access Denied","status":403}"#,
        ),
        ("deny-401", 200, "401", "UNAUTHORIZED", "log in first"),
    ];
    for (case, http_status, code, status, body) in cases {
        rig.paz.set(
            case,
            Case {
                request: OnRequest::Deny {
                    http_status,
                    response: deny(code, status, body),
                },
                ..Case::default()
            },
        );
        let r = rig.send(case, "POST", &format!("/shop/{case}"), &[], Some(b"{}"));
        assert_eq!(r.status.to_string(), code, "{case}");
        assert_eq!(r.body_text(), body, "{case}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{case}");
        assert_eq!(r.header("x-deny-reason"), Some("policy"), "{case}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"shop\""),
            "{case}"
        );
        assert_eq!(
            r.header("content-length"),
            Some(body.len().to_string().as_str())
        );
        let rec = rig.record(case);
        assert_eq!(rec.at("/ase/reason"), json!("sideband"), "{case}");
        assert_eq!(rec.at("/ase/sideband/outcome"), json!("block"), "{case}");
    }
    std::thread::sleep(Duration::from_millis(300));
    for (case, ..) in cases {
        assert!(rig.upstream(case).is_empty(), "{case} was forwarded");
        assert!(
            rig.paz.calls_for(Phase::Response, case).is_empty(),
            "{case}: response call"
        );
    }
    rig.counter_reaches("api_warden.sideband.pingauthorize.blocked", 3);
    rig.paz.assert_no_violations();
}

#[test]
fn path_prefix_and_secret_header_are_configurable() {
    let (paz, echo) = (
        PazDouble::start_with("/paz/v1", "x-paz-secret", AUTHORITY),
        Echo::start(),
    );
    let sb = json!({"path_prefix": "/paz/v1", "secret_header": "X-Paz-Secret"});
    let envoy = launch(
        &plugin(sb),
        &paz.server.cluster("paz"),
        echo.server.port,
        &opts(),
    );
    let r = harness::request(envoy.port, "GET", "/p", &[("x-test-case", "prefix")], None).unwrap();
    assert_eq!(r.status, 200, "{}", r.body_text());
    paz.one(Phase::Request, "prefix");
    paz.one(Phase::Response, "prefix");
    paz.assert_no_violations();
}

#[test]
fn the_defaults_are_the_decisions_and_bad_sections_are_refused() {
    // Only cluster and secret: authority = the cluster name, CLIENT-TOKEN, no prefix, fail
    // closed, response call on.
    let (paz, echo) = (
        PazDouble::start_with("", "client-token", "paz"),
        Echo::start(),
    );
    let sb = json!({"sideband": {"service": "pingauthorize", "cluster": "paz", "secret": SECRET}});
    let envoy = launch(
        &sb.to_string(),
        &paz.server.cluster("paz"),
        echo.server.port,
        &opts(),
    );
    let get = |case: &str| {
        harness::request(envoy.port, "GET", "/d", &[("x-test-case", case)], None).unwrap()
    };
    assert_eq!(get("defaults").status, 200);
    paz.one(Phase::Response, "defaults");
    paz.set(
        "defaults-500",
        Case {
            request: OnRequest::Fail(500),
            ..Case::default()
        },
    );
    assert_eq!(
        get("defaults-500").status,
        502,
        "fail_open defaults to false"
    );
    paz.assert_no_violations();
    let refused = |overrides: Value, want: &str| {
        let mut sb = json!({"service": "pingauthorize", "cluster": "paz", "secret": SECRET});
        if let (Some(a), Some(b)) = (sb.as_object_mut(), overrides.as_object()) {
            a.extend(b.clone());
            a.retain(|_, v| !v.is_null());
        }
        let log = Envoy::refused(&json!({ "sideband": sb }).to_string());
        let line = log
            .lines()
            .find(|l| l.contains("api-warden: invalid configuration:"));
        let line = line.unwrap_or_else(|| panic!("no rejection line for {sb}:\n{log}"));
        assert!(line.contains(want), "{sb}: {line}");
    };
    refused(json!({"secret": null}), "secret");
    refused(json!({"cluster": null}), "cluster");
    refused(json!({"bogus": 1}), "bogus");
    refused(json!({"max_body_bytes": -1}), "max_body_bytes");
    refused(json!({"timeout_ms": 0}), "timeout_ms");
    refused(json!({"fail_open": "no"}), "fail_open");
}
