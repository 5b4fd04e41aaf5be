//! PingAuthorize's Sideband API as a strict contract double ([`PazDouble`]), written from Ping's
//! published adapter types and the fixed decisions of issue #15, and an upstream that echoes what
//! it received ([`Echo`]). Both are small threaded HTTP/1.1 servers on 127.0.0.1 ([`serve`]).
//! The double records every call and every contract violation; what it answers is chosen per
//! request by the `x-test-case` header of the proxied request (see [`Case`]).

mod echo;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};

pub use echo::{account, gzip, serve, Call, Echo, Reply, Server};

/// The shared secret and its header (the decisions' example configuration).
pub const SECRET: &str = "s3cret";
pub const SECRET_HEADER: &str = "client-token";
/// The `:authority` the calls must carry.
pub const AUTHORITY: &str = "paz.internal";

/// A change applied to a JSON object (the request to allow, the response to send).
pub type Edit = Arc<dyn Fn(&mut Value) + Send + Sync>;

/// What the double answers to the request call.
#[derive(Clone)]
pub enum OnRequest {
    /// The request unchanged.
    Allow,
    /// The request after `Edit`.
    Rewrite(Edit),
    /// `{"response": response}` with this HTTP status.
    Deny { http_status: u16, response: Value },
    /// This status with a body that has no `response` object.
    Fail(u16),
    /// 429 with this `Retry-After` (none when `None`).
    Throttle(Option<String>),
    /// 200 with a body that is not JSON.
    Malformed,
    /// The request unchanged, after this delay.
    Slow(Duration),
    /// Close the connection without an answer.
    Cut,
}

/// What the double answers to the response call.
#[derive(Clone)]
pub enum OnResponse {
    /// The response as received (what PingAuthorize does without a response policy).
    Unchanged,
    /// The response after `Edit` (on `{response_code, response_status, headers, body}`).
    Rewrite(Edit),
    Fail(u16),
    Throttle(Option<String>),
    Malformed,
    Slow(Duration),
    Cut,
}

/// The behaviour of one test case: both answers and the `state` returned with an allow.
#[derive(Clone)]
pub struct Case {
    pub request: OnRequest,
    /// Returned with the allow answer (made unique per call: `<state>#<n>`).
    pub state: Option<String>,
    pub response: OnResponse,
}

impl Default for Case {
    fn default() -> Self {
        Case {
            request: OnRequest::Allow,
            state: None,
            response: OnResponse::Unchanged,
        }
    }
}

/// Which call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Request,
    Response,
}

/// One call the double received: its phase, its `x-test-case`, its HTTP request and parsed body.
#[derive(Debug, Clone)]
pub struct PazCall {
    pub phase: Phase,
    pub case: String,
    pub http: Call,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    prefix: String,
    secret_header: String,
    authority: String,
    cases: Mutex<HashMap<String, Case>>,
    /// Overrides every case while set.
    all: Mutex<Option<Case>>,
    calls: Mutex<Vec<PazCall>>,
    violations: Mutex<Vec<String>>,
    /// Request-call bodies answered with an allow, with the state returned (if any).
    allowed: Mutex<Vec<(Value, Option<String>)>>,
    seq: AtomicUsize,
}

/// PingAuthorize's Sideband API: validates every call, records it, answers per [`Case`].
pub struct PazDouble {
    pub server: Server,
    inner: Arc<Inner>,
}

impl PazDouble {
    /// Serve `{prefix}/sideband/request` and `{prefix}/sideband/response`.
    pub fn start(prefix: &str) -> PazDouble {
        PazDouble::start_with(prefix, SECRET_HEADER, AUTHORITY)
    }

    /// [`PazDouble::start`] expecting the secret in header `secret_header` (lowercase) and
    /// calls for `authority`.
    pub fn start_with(prefix: &str, secret_header: &str, authority: &str) -> PazDouble {
        let inner = Arc::new(Inner {
            prefix: prefix.to_string(),
            secret_header: secret_header.to_string(),
            authority: authority.to_string(),
            ..Inner::default()
        });
        let i = inner.clone();
        let server = serve(move |c| answer(&i, c));
        PazDouble { server, inner }
    }

    /// Answer requests with `x-test-case: name` per `case`.
    pub fn set(&self, name: &str, case: Case) {
        self.inner
            .cases
            .lock()
            .unwrap()
            .insert(name.to_string(), case);
    }

    /// Answer every call per `case` (whatever its test case) until `None`.
    pub fn set_all(&self, case: Option<Case>) {
        *self.inner.all.lock().unwrap() = case;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<PazCall> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// Calls of this phase for test case `case`.
    pub fn calls_for(&self, phase: Phase, case: &str) -> Vec<PazCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.phase == phase && c.case == case)
            .collect()
    }

    /// The one call of this phase for `case` (waits up to 5 s; panics unless exactly one).
    pub fn one(&self, phase: Phase, case: &str) -> Value {
        super::eventually(5, || !self.calls_for(phase, case).is_empty());
        let calls = self.calls_for(phase, case);
        assert_eq!(
            calls.len(),
            1,
            "{phase:?} calls for {case}: {calls:#?}\nviolations: {:#?}",
            self.violations()
        );
        calls[0].body.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.inner.violations.lock().unwrap().clone()
    }

    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(v.is_empty(), "sideband contract violations: {v:#?}");
    }
}

/// The value of header `name` in a sideband header list (one-key objects).
pub fn listed<'a>(headers: &'a Value, name: &str) -> Option<&'a str> {
    headers
        .as_array()?
        .iter()
        .find_map(|h| h.get(name).and_then(Value::as_str))
}

/// Every value of header `name` in a sideband header list, in order.
pub fn listed_all(headers: &Value, name: &str) -> Vec<String> {
    let list = headers.as_array().map(Vec::as_slice).unwrap_or_default();
    list.iter()
        .filter_map(|h| h.get(name).and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// A sideband header list with `name` set to `value` (the first entry replaced, or appended), or
/// removed when `value` is `None`.
pub fn set_listed(headers: &mut Value, name: &str, value: Option<&str>) {
    let Some(list) = headers.as_array_mut() else {
        return;
    };
    match value {
        None => list.retain(|h| h.get(name).is_none()),
        Some(v) => match list.iter_mut().find(|h| h.get(name).is_some()) {
            Some(h) => *h = json!({ name: v }),
            None => list.push(json!({ name: v })),
        },
    }
}

fn answer(inner: &Inner, c: &Call) -> Reply {
    let phase = if c.path == format!("{}/sideband/request", inner.prefix) {
        Phase::Request
    } else if c.path == format!("{}/sideband/response", inner.prefix) {
        Phase::Response
    } else {
        return violation(inner, c, format!("unknown path {}", c.path), 404);
    };
    let body: Value = match serde_json::from_slice(&c.body) {
        Ok(v) => v,
        Err(e) => return violation(inner, c, format!("body is not JSON: {e}"), 400),
    };
    let linked = match phase {
        Phase::Request => check_http(inner, c)
            .and_then(|_| check_request(&body))
            .map(|_| None),
        Phase::Response => {
            check_http(inner, c).and_then(|_| check_response(inner, &body).map(Some))
        }
    };
    let original = match linked {
        Ok(o) => o,
        Err(e) => return violation(inner, c, e, 400),
    };
    let request = original.as_ref().unwrap_or(&body);
    let case_name = listed(&request["headers"], "x-test-case")
        .unwrap_or("")
        .to_string();
    inner.calls.lock().unwrap().push(PazCall {
        phase,
        case: case_name.clone(),
        http: c.clone(),
        body: body.clone(),
    });
    let case = inner.all.lock().unwrap().clone().unwrap_or_else(|| {
        let cases = inner.cases.lock().unwrap();
        cases.get(&case_name).cloned().unwrap_or_default()
    });
    match phase {
        Phase::Request => on_request(inner, &case, body),
        Phase::Response => on_response(&case.response, body),
    }
}

fn violation(inner: &Inner, c: &Call, what: String, status: u16) -> Reply {
    let text = String::from_utf8_lossy(&c.body);
    inner.violations.lock().unwrap().push(format!(
        "{} {}: {what} (body: {:.400})",
        c.method, c.path, text
    ));
    Reply::json(status, &json!({"error": what}))
}

fn on_request(inner: &Inner, case: &Case, mut body: Value) -> Reply {
    let sent = body.clone();
    let allow = |body: Value, delay: Duration| {
        let state = case.state.as_ref().map(|s| {
            let n = inner.seq.fetch_add(1, Ordering::SeqCst);
            format!("{s}#{n}")
        });
        inner
            .allowed
            .lock()
            .unwrap()
            .push((sent.clone(), state.clone()));
        let mut out = body;
        if let (Some(s), Some(o)) = (&state, out.as_object_mut()) {
            o.insert("state".into(), json!(s));
        }
        Reply {
            delay,
            ..Reply::json(200, &out)
        }
    };
    match &case.request {
        OnRequest::Allow => allow(body, Duration::ZERO),
        OnRequest::Rewrite(edit) => {
            edit(&mut body);
            allow(body, Duration::ZERO)
        }
        OnRequest::Slow(d) => allow(body, *d),
        OnRequest::Deny {
            http_status,
            response,
        } => Reply::json(*http_status, &json!({ "response": response })),
        other => failure(&match other {
            OnRequest::Fail(s) => OnResponse::Fail(*s),
            OnRequest::Throttle(r) => OnResponse::Throttle(r.clone()),
            OnRequest::Malformed => OnResponse::Malformed,
            _ => OnResponse::Cut,
        }),
    }
}

fn on_response(what: &OnResponse, body: Value) -> Reply {
    let mut out = json!({});
    for k in ["response_code", "response_status", "headers", "body"] {
        if let Some(v) = body.get(k) {
            out[k] = v.clone();
        }
    }
    match what {
        OnResponse::Unchanged => Reply::json(200, &out),
        OnResponse::Rewrite(edit) => {
            edit(&mut out);
            Reply::json(200, &out)
        }
        OnResponse::Slow(d) => Reply {
            delay: *d,
            ..Reply::json(200, &out)
        },
        other => failure(other),
    }
}

fn failure(what: &OnResponse) -> Reply {
    match what {
        OnResponse::Fail(status) => Reply::json(*status, &json!({"error": "policy error"})),
        OnResponse::Throttle(after) => {
            let mut r = Reply::json(429, &json!({"error": "too many requests"}));
            if let Some(a) = after {
                r.headers.push(("retry-after".into(), a.clone()));
            }
            r
        }
        OnResponse::Malformed => Reply {
            status: 200,
            body: b"<html>not json</html>".to_vec(),
            ..Reply::default()
        },
        _ => Reply {
            cut: true,
            ..Reply::default()
        },
    }
}

/// The HTTP side of both calls: POST, exact content-type, the secret, the authority.
fn check_http(inner: &Inner, c: &Call) -> Result<(), String> {
    if c.method != "POST" {
        return Err(format!("method {}", c.method));
    }
    let want = [
        ("content-type", "application/json"),
        (inner.secret_header.as_str(), SECRET),
        ("host", inner.authority.as_str()),
    ];
    for (name, value) in want {
        if c.header(name) != Some(value) {
            return Err(format!(
                "header {name}: {:?}, want {value:?}",
                c.header(name)
            ));
        }
    }
    Ok(())
}

fn object(v: &Value, allowed: &[&str]) -> Result<Map<String, Value>, String> {
    let o = v.as_object().ok_or("body is not an object")?;
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("unexpected key {k:?}")),
        None => Ok(o.clone()),
    }
}

fn string<'a>(o: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    o.get(key)
        .and_then(Value::as_str)
        .ok_or(format!("{key} is missing or not a string"))
}

fn check_headers(v: Option<&Value>) -> Result<(), String> {
    let list = v.and_then(Value::as_array).ok_or("headers is not a list")?;
    for h in list {
        let o = h.as_object().filter(|o| o.len() == 1);
        let (k, v) = o
            .and_then(|o| o.iter().next())
            .ok_or(format!("header {h} is not a one-key object"))?;
        if k.is_empty() || k.starts_with(':') || *k != k.to_ascii_lowercase() || !v.is_string() {
            return Err(format!(
                "header {h}: lowercase names, string values, no pseudo-headers"
            ));
        }
    }
    Ok(())
}

fn check_body(o: &Map<String, Value>) -> Result<(), String> {
    match o.get("body") {
        None => Ok(()),
        Some(Value::String(s)) if !s.is_empty() => Ok(()),
        Some(b) => Err(format!("body {b:.60} must be a non-empty string or absent")),
    }
}

fn check_version(o: &Map<String, Value>) -> Result<(), String> {
    match string(o, "http_version")? {
        "1.0" | "1.1" | "2" => Ok(()),
        v => Err(format!("http_version {v:?}")),
    }
}

/// The request call's body (Ping's request type).
fn check_request(v: &Value) -> Result<(), String> {
    let o = object(
        v,
        &[
            "source_ip",
            "source_port",
            "method",
            "url",
            "http_version",
            "headers",
            "body",
            "client_certificate",
        ],
    )?;
    let ip = string(&o, "source_ip")?;
    ip.parse::<std::net::IpAddr>()
        .map_err(|_| format!("source_ip {ip:?}"))?;
    let port = o.get("source_port").and_then(Value::as_u64);
    if !port.is_some_and(|p| (1..=65535).contains(&p)) {
        return Err(format!(
            "source_port {:?} is not a port number",
            o.get("source_port")
        ));
    }
    let method = string(&o, "method")?;
    if method.is_empty() || method.bytes().any(|b| !b.is_ascii_uppercase()) {
        return Err(format!("method {method:?}"));
    }
    check_url(string(&o, "url")?)?;
    check_version(&o)?;
    check_headers(o.get("headers"))?;
    check_body(&o)?;
    if let Some(cert) = o.get("client_certificate") {
        let x5c = object(cert, &["x5c"])?;
        let list = x5c.get("x5c").and_then(Value::as_array);
        if !list.is_some_and(|l| !l.is_empty() && l.iter().all(Value::is_string)) {
            return Err(format!("client_certificate {cert}"));
        }
    }
    Ok(())
}

/// `scheme://host[:port]/path[?query]`.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or(format!("url {url:?} has no http(s) scheme"))?;
    let slash = rest.find('/').ok_or(format!("url {url:?} has no path"))?;
    let authority = &rest[..slash];
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    if host.is_empty() || port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(format!("url {url:?}: bad host or port"));
    }
    Ok(())
}

/// The response call's body; returns the request call body it belongs to.
fn check_response(inner: &Inner, v: &Value) -> Result<Value, String> {
    let o = object(
        v,
        &[
            "method",
            "url",
            "body",
            "response_code",
            "response_status",
            "http_version",
            "headers",
            "state",
            "request",
        ],
    )?;
    let code = string(&o, "response_code")?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("response_code {code:?}"));
    }
    string(&o, "response_status")?;
    check_version(&o)?;
    check_headers(o.get("headers"))?;
    check_body(&o)?;
    let allowed = inner.allowed.lock().unwrap();
    let original = match (o.get("state"), o.get("request")) {
        (Some(s), None) => allowed
            .iter()
            .find(|(_, st)| st.as_deref() == s.as_str())
            .map(|(r, _)| r.clone())
            .ok_or(format!("state {s} was never returned (echo it exactly)"))?,
        (None, Some(r)) => match allowed.iter().find(|(sent, _)| sent == r) {
            Some((_, Some(st))) => {
                return Err(format!("request sent, but state {st:?} was returned"))
            }
            Some((sent, None)) => sent.clone(),
            None => return Err("request is not the request call's body".into()),
        },
        _ => return Err("exactly one of state and request".into()),
    };
    for k in ["method", "url"] {
        if o.get(k) != original.get(k) {
            return Err(format!(
                "{k} {:?} is not the request call's {:?}",
                o.get(k),
                original.get(k)
            ));
        }
    }
    Ok(original)
}
