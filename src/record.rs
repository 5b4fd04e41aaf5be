//! The per-exchange analytics record: a PingAuthorize-shaped policy request (`action`, `service`,
//! `attributes.HttpRequest.*`, `Gateway`) plus the enforcer's own `ase` section, built from plain
//! data at log time. No host calls.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::decision::Decision;
use crate::identity::Identity;
use crate::request::RequestView;
use crate::services::Redact;

/// Where the request sits under its API (owned, so it outlives the borrowed configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    pub name: String,
    pub base_path: String,
    pub trailing_path: String,
}

/// Client certificate facts from an mTLS connection (PingAuthorize field names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCert {
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    pub valid: bool,
}

/// Everything known about one request/response exchange when the record is written.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    pub request: RequestView,
    /// Request start, Unix milliseconds.
    pub start_ms: u64,
    /// Time the record is written, Unix milliseconds.
    pub end_ms: u64,
    pub api: Option<MatchInfo>,
    pub identity: Identity,
    pub decision: Option<Decision>,
    /// True for admin API requests (answered locally, never forwarded).
    pub admin: bool,
    pub response_status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub client_cert: Option<ClientCert>,
}

/// Hash or drop a sensitive value according to the redaction mode.
pub fn redact(mode: Redact, v: &str) -> Option<String> {
    match mode {
        Redact::None => Some(v.to_string()),
        Redact::Omit => None,
        Redact::Hash => {
            let d = Sha256::digest(v.as_bytes());
            let mut s = String::with_capacity(7 + 64);
            s.push_str("sha256:");
            for b in d {
                s.push_str(&format!("{b:02x}"));
            }
            Some(s)
        }
    }
}

/// Header names whose values are credentials whatever was captured from them.
const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Lowercase header name → array of values, pseudo-headers left out; `authorization`,
/// `proxy-authorization`, `cookie` and `set-cookie` values follow the redaction mode.
pub fn header_map(headers: &[(String, String)], mode: Redact) -> Map<String, Value> {
    header_map_with(headers, mode, &[])
}

/// [`header_map`], also redacting any value that carries one of the captured credentials
/// `secrets` (an API key header, a JWT in a custom header). The admin key is never written as
/// is: it is hashed even with [`Redact::None`].
fn header_map_with(
    headers: &[(String, String)],
    mode: Redact,
    secrets: &[&str],
) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in headers {
        if k.starts_with(':') {
            continue;
        }
        let name = k.to_ascii_lowercase();
        let value = if name == crate::admin::KEY_HEADER {
            redact(
                if mode == Redact::None {
                    Redact::Hash
                } else {
                    mode
                },
                v,
            )
        } else if CREDENTIAL_HEADERS.contains(&name.as_str()) || is_secret(v, secrets) {
            redact(mode, v)
        } else {
            Some(v.clone())
        };
        let Some(value) = value else { continue };
        if let Value::Array(a) = m.entry(name).or_insert_with(|| Value::Array(Vec::new())) {
            a.push(Value::String(value));
        }
    }
    m
}

/// The credentials identification captured (token, API key, cookie, access token): wherever
/// one of them appears as a header or query value, that value follows the redaction mode.
fn secrets(x: &Exchange, mode: Redact) -> Vec<&str> {
    if mode == Redact::None {
        return Vec::new();
    }
    let c = &x.identity.client;
    let mut out: Vec<&str> = [&c.token, &c.api_key, &c.cookie]
        .into_iter()
        .filter_map(|v| v.as_deref())
        .collect();
    if let Some(at) = &x.identity.access_token {
        out.push(at.access_token.as_str());
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Is `value` (trimmed, with or without a `Bearer` scheme) one of the captured credentials?
fn is_secret(value: &str, secrets: &[&str]) -> bool {
    if secrets.is_empty() {
        return false;
    }
    let v = value.trim();
    let bare = crate::parse::strip_bearer(v);
    !v.is_empty() && secrets.iter().any(|s| *s == v || *s == bare)
}

/// The request URI with every query value that is a captured credential redacted (hashed, or
/// the parameter left out with [`Redact::Omit`]); unchanged otherwise.
fn redact_uri(path: &str, mode: Redact, secrets: &[&str]) -> String {
    let (main, fragment) = match path.split_once('#') {
        Some((m, f)) => (m, Some(f)),
        None => (path, None),
    };
    let Some((before, query)) = main.split_once('?') else {
        return path.to_string();
    };
    let mut changed = false;
    let mut kept: Vec<String> = Vec::new();
    for seg in query.split('&') {
        let value = seg
            .split_once('=')
            .map(|(n, v)| (n, crate::parse::percent_decode(v, true)));
        match value {
            Some((n, v)) if is_secret(&v, secrets) => {
                changed = true;
                if let Some(r) = redact(mode, &v) {
                    kept.push(format!("{n}={r}"));
                }
            }
            _ => kept.push(seg.to_string()),
        }
    }
    if !changed {
        return path.to_string();
    }
    let mut out = before.to_string();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// RFC 3339 UTC with milliseconds.
pub fn timestamp(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(0);
    match crate::jwt::rfc3339(secs) {
        Some(s) => format!("{}.{:03}Z", s.trim_end_matches('Z'), ms % 1000),
        None => String::new(),
    }
}

/// Build the record as a JSON value.
pub fn build_value(x: &Exchange, mode: Redact) -> Value {
    let req = &x.request;
    let secrets = secrets(x, mode);
    let mut query = Map::new();
    for (k, v) in crate::parse::query_params(&req.path) {
        let v = if is_secret(&v, &secrets) {
            redact(mode, &v)
        } else {
            Some(v)
        };
        let Some(v) = v else { continue };
        if let Value::Array(a) = query.entry(k).or_insert_with(|| Value::Array(Vec::new())) {
            a.push(Value::String(v));
        }
    }
    let mut attrs = Map::new();
    attrs.insert("HttpRequest.IPAddress".into(), json!(x.identity.client.ip));
    attrs.insert(
        "HttpRequest.RequestURI".into(),
        json!(redact_uri(&req.path, mode, &secrets)),
    );
    attrs.insert(
        "HttpRequest.ResourcePath".into(),
        json!(x.api.as_ref().map(|m| m.trailing_path.as_str())),
    );
    attrs.insert("HttpRequest.QueryParameters".into(), Value::Object(query));
    attrs.insert(
        "HttpRequest.RequestHeaders".into(),
        Value::Object(header_map_with(&req.headers, mode, &secrets)),
    );
    attrs.insert(
        "HttpRequest.CorrelationId".into(),
        json!(req.header("x-request-id")),
    );
    if let Some(at) = &x.identity.access_token {
        let mut v = serde_json::to_value(at).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            if let Some(tok) = o
                .get("access_token")
                .and_then(Value::as_str)
                .map(str::to_string)
            {
                match redact(mode, &tok) {
                    Some(r) => o.insert("access_token".into(), Value::String(r)),
                    None => o.remove("access_token"),
                };
            }
        }
        attrs.insert("HttpRequest.AccessToken".into(), v);
    }
    if let Some(c) = &x.client_cert {
        attrs.insert(
            "HttpRequest.ClientCertificate".into(),
            json!({"subject": c.subject, "issuer": c.issuer, "notBefore": c.not_before,
                   "notAfter": c.not_after, "valid": c.valid}),
        );
    }
    attrs.insert(
        "HttpRequest.ResponseStatus".into(),
        json!(x.response_status),
    );
    attrs.insert(
        "HttpRequest.ResponseHeaders".into(),
        Value::Object(header_map_with(&x.response_headers, mode, &secrets)),
    );
    attrs.insert(
        "Gateway".into(),
        match &x.api {
            Some(m) => json!({"_BasePath": m.base_path, "_TrailingPath": m.trailing_path}),
            None => json!({}),
        },
    );

    let c = &x.identity.client;
    let mut client = Map::new();
    let sensitive = |v: &Option<String>| v.as_deref().and_then(|s| redact(mode, s));
    for (k, v) in [
        ("ip", c.ip.clone()),
        ("token", sensitive(&c.token)),
        ("api_key", sensitive(&c.api_key)),
        ("cookie", sensitive(&c.cookie)),
        ("username", c.username.clone()),
        ("client_id", c.client_id.clone()),
    ] {
        if let Some(v) = v {
            client.insert(k.into(), Value::String(v));
        }
    }
    let d = x.decision.clone().unwrap_or_else(Decision::allow);
    let mut ase = json!({
        "api": x.api.as_ref().map(|m| m.name.as_str()),
        "decision": d.verdict.as_str(),
        "reason": d.reason,
        "client": client,
        "jwt": x.identity.jwt,
    });
    if let Some(o) = ase.as_object_mut() {
        if let Some(w) = d.would_block {
            o.insert("would_block".into(), Value::String(w));
        }
        if let Some(s) = d.source {
            o.insert("list_source".into(), Value::String(s.as_str().into()));
        }
        if x.admin {
            o.insert("admin".into(), Value::Bool(true));
        }
    }
    json!({
        "action": format!("outbound-{}", req.method),
        "service": x.api.as_ref().map(|m| m.name.as_str()),
        "domain": null,
        "identityProvider": x.identity.identity_provider,
        "attributes": attrs,
        "ase": ase,
        "timestamp": timestamp(x.start_ms),
        "duration_ms": x.end_ms.saturating_sub(x.start_ms),
        "bytes_in": x.bytes_in,
        "bytes_out": x.bytes_out,
    })
}

/// The record as JSON text.
pub fn build(x: &Exchange, mode: Redact) -> String {
    build_value(x, mode).to_string()
}

#[cfg(test)]
mod tests;
