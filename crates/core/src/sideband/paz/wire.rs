//! PingAuthorize's Sideband API on the wire: the request object api-warden sends (and keeps, to
//! diff the answer against and to send again with the response), the response-call body, and
//! the typed reading of both answers. Shapes from Ping's own adapter types; headers are lists of
//! one-key objects. No host calls.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::parse::lossy;

/// Headers as the Sideband API lists them: `[{"name": "value"}, …]`, in order, repeats repeated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderList(pub Vec<(String, String)>);

impl Serialize for HeaderList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            seq.serialize_element(&OneKey(k, v))?;
        }
        seq.end()
    }
}

struct OneKey<'a>(&'a str, &'a str);

impl Serialize for OneKey<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.0, self.1)?;
        m.end()
    }
}

impl HeaderList {
    /// A request's or response's headers, pseudo-headers left out, names lowercase.
    pub fn from_headers(headers: &[(String, String)]) -> HeaderList {
        HeaderList(
            headers
                .iter()
                .filter(|(k, _)| !k.starts_with(':'))
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
        )
    }

    /// Read a list from an answer: one-key objects (an object with several keys counts as
    /// several headers), string values (numbers and booleans are taken as text).
    pub fn parse(v: &Value) -> Result<HeaderList, String> {
        let list = v.as_array().ok_or("headers is not a list")?;
        let mut out = Vec::with_capacity(list.len());
        for h in list {
            let o = h
                .as_object()
                .ok_or_else(|| format!("header {h} is not an object"))?;
            for (k, v) in o {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => return Err(format!("header {k:?} has the value {other}")),
                };
                if k.is_empty() || k.starts_with(':') {
                    return Err(format!("header name {k:?}"));
                }
                out.push((k.to_ascii_lowercase(), value));
            }
        }
        Ok(HeaderList(out))
    }

    /// Every value of `name`, in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `client_certificate`: the certificate chain, base64 DER.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientCertificate {
    pub x5c: Vec<String>,
}

/// The request object of `POST /sideband/request`, kept as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SentRequest {
    pub source_ip: String,
    pub source_port: u16,
    pub method: String,
    /// Absolute: `scheme://authority/path?query`.
    pub url: String,
    pub http_version: String,
    pub headers: HeaderList,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<ClientCertificate>,
}

impl SentRequest {
    /// The JSON body of the request call.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The absolute URL of a request: `scheme://authority` (the port only when the authority has
/// one) then `:path` as received; `http` when the scheme is unknown.
pub fn absolute_url(scheme: &str, authority: &str, path: &str) -> String {
    let scheme = if scheme.is_empty() { "http" } else { scheme };
    let path = if path.starts_with('/') || path == "*" {
        path.to_string()
    } else {
        format!("/{path}")
    };
    format!("{scheme}://{authority}{path}")
}

/// The body of `POST /sideband/response`.
#[derive(Debug, Serialize)]
pub struct ResponseCall<'a> {
    pub method: &'a str,
    pub url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub response_code: String,
    pub response_status: &'a str,
    pub http_version: &'a str,
    pub headers: HeaderList,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<&'a SentRequest>,
}

/// A response the service wants sent (a denial's `response`, or the response call's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returned {
    pub status: u16,
    /// `None` when the answer has no `headers` key.
    pub headers: Option<HeaderList>,
    /// `None` when the answer has no `body` (or a `null` one).
    pub body: Option<String>,
}

/// The request the service allows, as it returned it (absent fields: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    pub method: Option<String>,
    pub url: Option<String>,
    pub headers: Option<HeaderList>,
    pub body: Option<String>,
    pub state: Option<String>,
    /// Fields the service changed that api-warden does not apply (logged).
    pub ignored: Vec<&'static str>,
}

/// What the answer to the request call says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestAnswer {
    /// Send this response to the client; do not forward.
    Deny(Returned),
    /// Forward, possibly changed.
    Allow(Allowed),
}

fn object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(other) => Err(format!(
            "the answer is not a JSON object but {}",
            crate::config::describe(&other)
        )),
        Err(e) => Err(format!("the answer is not JSON: {e}")),
    }
}

fn opt_string(o: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{key} is {other}, not a string")),
    }
}

/// A body as the answer gives it: a string, or JSON (sent as its text).
fn opt_body(o: &Map<String, Value>) -> Option<String> {
    match o.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// `response_code` as a string ("403") or, leniently, a number; 100–599.
fn status_code(o: &Map<String, Value>) -> Result<u16, String> {
    let code = match o.get("response_code") {
        Some(Value::String(s)) => s.trim().parse::<u16>().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        None => return Err("no response_code".into()),
        Some(_) => None,
    };
    code.filter(|c| (100..=599).contains(c))
        .ok_or_else(|| format!("response_code {} is not an HTTP status", o["response_code"]))
}

/// Read a response object (`{response_code, response_status, headers, body}`).
pub fn returned(o: &Map<String, Value>) -> Result<Returned, String> {
    Ok(Returned {
        status: status_code(o)?,
        headers: o.get("headers").map(HeaderList::parse).transpose()?,
        body: opt_body(o),
    })
}

/// Read the answer to the request call, given what was sent.
pub fn request_answer(body: &[u8], sent: &SentRequest) -> Result<RequestAnswer, String> {
    let o = object(body)?;
    if let Some(r) = o.get("response").filter(|r| !r.is_null()) {
        let r = r.as_object().ok_or("response is not an object")?;
        return returned(r).map(RequestAnswer::Deny);
    }
    let mut ignored = Vec::new();
    if let Some(ip) = opt_string(&o, "source_ip")? {
        if ip != sent.source_ip {
            ignored.push("source_ip");
        }
    }
    if let Some(p) = o.get("source_port").filter(|p| !p.is_null()) {
        let same = p.as_u64() == Some(u64::from(sent.source_port))
            || p.as_str() == Some(sent.source_port.to_string().as_str());
        if !same {
            ignored.push("source_port");
        }
    }
    if let Some(c) = o.get("client_certificate").filter(|c| !c.is_null()) {
        let sent_cert = serde_json::to_value(&sent.client_certificate).unwrap_or(Value::Null);
        if *c != sent_cert {
            ignored.push("client_certificate");
        }
    }
    if let Some(v) = opt_string(&o, "http_version")? {
        if v != sent.http_version {
            ignored.push("http_version");
        }
    }
    let state = match o.get("state") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        // Kept as the service sent it: JSON text.
        Some(other) => Some(other.to_string()),
    };
    Ok(RequestAnswer::Allow(Allowed {
        method: opt_string(&o, "method")?,
        url: opt_string(&o, "url")?,
        headers: o
            .get("headers")
            .filter(|h| !h.is_null())
            .map(HeaderList::parse)
            .transpose()?,
        body: opt_body(&o),
        state,
        ignored,
    }))
}

/// Read the answer to the response call (the response to send; a `response` wrapper is
/// accepted too).
pub fn response_answer(body: &[u8]) -> Result<Returned, String> {
    let o = object(body)?;
    match o.get("response").and_then(Value::as_object) {
        Some(r) if !o.contains_key("response_code") => returned(r),
        _ => returned(&o),
    }
}

/// A body as the service reads it: text (bytes that are not UTF-8 replaced).
pub fn body_text(body: &[u8]) -> String {
    lossy(body.to_vec())
}
