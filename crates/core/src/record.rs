//! The per-exchange analytics record: a PingAuthorize-shaped policy request (`action`, `service`,
//! `attributes.HttpRequest.*`, `Gateway`) plus the enforcer's own `ase` section, built from plain
//! data at log time. No host calls.

use std::borrow::Cow;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::decision::Decision;
use crate::jwt::AccessToken;
use crate::pipeline::Outcome;
use crate::request::Request;
use crate::services::{RecordParts, Redact};

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
    /// The request, parsed once.
    pub request: Request,
    /// Request start, Unix milliseconds; 0 when the filter never saw the request headers (Envoy
    /// answered the request itself, e.g. a 400 for a malformed request or a 431 for oversized
    /// headers): the record then takes `end_ms` as its timestamp and a duration of 0.
    pub start_ms: u64,
    /// Time the record is written, Unix milliseconds.
    pub end_ms: u64,
    /// What the pipeline learned (API, identity, decision, admin).
    pub outcome: Outcome,
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
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for b in d {
                for nibble in [b >> 4, b & 15] {
                    s.push(char::from(
                        HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
                    ));
                }
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
/// `proxy-authorization`, `cookie` and `set-cookie` values follow the redaction mode and the admin
/// key is always hashed: the record's own header serializer, as a JSON value.
pub fn header_map(headers: &[(String, String)], mode: Redact) -> Value {
    serde_json::to_value(Headers {
        headers,
        mode,
        secrets: &[],
    })
    .unwrap_or(Value::Null)
}

/// The credentials identification captured (token, API key, cookie, access token): wherever
/// one of them appears as a header or query value, that value follows the redaction mode.
fn secrets(x: &Exchange, mode: Redact) -> Vec<&str> {
    if mode == Redact::None {
        return Vec::new();
    }
    let c = &x.outcome.identity.client;
    let mut out: Vec<&str> = [&c.token, &c.api_key, &c.cookie]
        .into_iter()
        .filter_map(|v| v.as_deref())
        .collect();
    if let Some(at) = &x.outcome.identity.access_token {
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

/// Build the record as a JSON value (for tests and callers that want to inspect it).
pub fn build_value(x: &Exchange, mode: Redact) -> Value {
    let secrets = secrets(x, mode);
    let parts = RecordParts::default();
    serde_json::to_value(Record::new(x, mode, parts, &secrets)).unwrap_or(Value::Null)
}

/// The record (every part) as JSON text, serialized straight from borrowed data (no
/// intermediate JSON tree: this runs for every request).
pub fn build(x: &Exchange, mode: Redact) -> String {
    let mut out = Vec::new();
    write(&mut out, x, mode, RecordParts::default());
    String::from_utf8(out).unwrap_or_default()
}

/// Serialize the record with the optional `parts` into `out`, cleared first and grown only when
/// too small, so one buffer serves every request of a VM. Empty when serialization fails.
pub fn write(out: &mut Vec<u8>, x: &Exchange, mode: Redact, parts: RecordParts) {
    out.clear();
    let secrets = secrets(x, mode);
    // Sized from the headers (they appear once or twice: raw, then as identifiers and the
    // access token), so the buffer rarely grows.
    let header_bytes: usize = x
        .request
        .view
        .headers
        .iter()
        .chain(&x.response_headers)
        .map(|(k, v)| k.len() + v.len() + 8)
        .sum();
    out.reserve(1024 + 3 * header_bytes);
    if json::write(out, &Record::new(x, mode, parts, &secrets)).is_err() {
        out.clear();
    }
}

/// The record's shape; field order is the output order.
#[derive(Serialize)]
struct Record<'a> {
    action: Action<'a>,
    service: Option<&'a str>,
    domain: Option<&'a str>,
    #[serde(rename = "identityProvider")]
    identity_provider: Option<&'a str>,
    attributes: Attributes<'a>,
    ase: AseSection<'a>,
    timestamp: String,
    duration_ms: u64,
    bytes_in: u64,
    bytes_out: u64,
}

impl<'a> Record<'a> {
    fn new(
        x: &'a Exchange,
        mode: Redact,
        parts: RecordParts,
        secrets: &'a [&'a str],
    ) -> Record<'a> {
        let o = &x.outcome;
        let start_ms = if x.start_ms == 0 {
            x.end_ms
        } else {
            x.start_ms
        };
        Record {
            action: Action(&x.request.view.method),
            service: o.api.as_ref().map(|m| m.name.as_str()),
            domain: None,
            identity_provider: o.identity.identity_provider.as_deref(),
            attributes: Attributes::new(x, mode, parts, secrets),
            ase: AseSection::new(o, mode),
            timestamp: timestamp(start_ms),
            duration_ms: x.end_ms.saturating_sub(start_ms),
            bytes_in: x.bytes_in,
            bytes_out: x.bytes_out,
        }
    }
}

impl<'a> Attributes<'a> {
    fn new(
        x: &'a Exchange,
        mode: Redact,
        parts: RecordParts,
        secrets: &'a [&'a str],
    ) -> Attributes<'a> {
        let req = &x.request.view;
        let o = &x.outcome;
        Attributes {
            ip: o.identity.client.ip.as_deref(),
            uri: if secrets.is_empty() {
                Cow::Borrowed(req.path.as_str())
            } else {
                Cow::Owned(redact_uri(&req.path, mode, secrets))
            },
            resource_path: o.api.as_ref().map(|m| m.trailing_path.as_str()),
            query: parts.query_parameters.then_some(Query {
                params: &x.request.query,
                mode,
                secrets,
            }),
            request_headers: parts.request_headers.then_some(Headers {
                headers: &req.headers,
                mode,
                secrets,
            }),
            correlation_id: req.header("x-request-id"),
            access_token: o
                .identity
                .access_token
                .as_ref()
                .map(|at| token_out(at, mode)),
            client_certificate: x.client_cert.as_ref().map(|c| Cert {
                subject: c.subject.as_deref(),
                issuer: c.issuer.as_deref(),
                not_before: c.not_before.as_deref(),
                not_after: c.not_after.as_deref(),
                valid: c.valid,
            }),
            response_status: x.response_status,
            response_headers: parts.response_headers.then_some(Headers {
                headers: &x.response_headers,
                mode,
                secrets,
            }),
            gateway: Gateway {
                base_path: o.api.as_ref().map(|m| m.base_path.as_str()),
                trailing_path: o.api.as_ref().map(|m| m.trailing_path.as_str()),
            },
        }
    }
}

/// The access token as written: borrowed as is, or with its `access_token` redacted.
fn token_out(at: &AccessToken, mode: Redact) -> TokenOut<'_> {
    if mode == Redact::None {
        return TokenOut::Borrowed(at);
    }
    let mut v = serde_json::to_value(at).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        match redact(mode, &at.access_token) {
            Some(r) => o.insert("access_token".into(), Value::String(r)),
            None => o.remove("access_token"),
        };
    }
    TokenOut::Owned(v)
}

impl<'a> AseSection<'a> {
    fn new(o: &'a Outcome, mode: Redact) -> AseSection<'a> {
        let c = &o.identity.client;
        let sensitive = |v: &'a Option<String>| -> Option<Cow<'a, str>> {
            let v = v.as_deref()?;
            match mode {
                Redact::None => Some(Cow::Borrowed(v)),
                _ => redact(mode, v).map(Cow::Owned),
            }
        };
        let d = o.decision.as_ref();
        AseSection {
            api: o.api.as_ref().map(|m| m.name.as_str()),
            decision: d.map_or("allow", |d| d.verdict.as_str()),
            reason: d.and_then(Decision::reason),
            would_block: d.and_then(Decision::would_block),
            list_source: d.and_then(|d| d.source).map(|s| s.as_str()),
            admin: o.admin,
            decoy: d.is_some_and(|d| d.decoy),
            decoy_response_def: o.decoy_response_def.as_deref(),
            sideband: o.sideband.as_ref(),
            client: ClientOut {
                ip: c.ip.as_deref(),
                token: sensitive(&c.token),
                api_key: sensitive(&c.api_key),
                cookie: sensitive(&c.cookie),
                username: c.username.as_deref(),
                client_id: c.client_id.as_deref(),
            },
            jwt: o.identity.jwt.as_ref(),
        }
    }
}

/// `outbound-<METHOD>`.
struct Action<'a>(&'a str);

impl Serialize for Action<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("outbound-{}", self.0))
    }
}

#[derive(Serialize)]
struct Attributes<'a> {
    #[serde(rename = "HttpRequest.IPAddress")]
    ip: Option<&'a str>,
    #[serde(rename = "HttpRequest.RequestURI")]
    uri: Cow<'a, str>,
    #[serde(rename = "HttpRequest.ResourcePath")]
    resource_path: Option<&'a str>,
    #[serde(
        rename = "HttpRequest.QueryParameters",
        skip_serializing_if = "Option::is_none"
    )]
    query: Option<Query<'a>>,
    #[serde(
        rename = "HttpRequest.RequestHeaders",
        skip_serializing_if = "Option::is_none"
    )]
    request_headers: Option<Headers<'a>>,
    #[serde(rename = "HttpRequest.CorrelationId")]
    correlation_id: Option<&'a str>,
    #[serde(
        rename = "HttpRequest.AccessToken",
        skip_serializing_if = "Option::is_none"
    )]
    access_token: Option<TokenOut<'a>>,
    #[serde(
        rename = "HttpRequest.ClientCertificate",
        skip_serializing_if = "Option::is_none"
    )]
    client_certificate: Option<Cert<'a>>,
    #[serde(rename = "HttpRequest.ResponseStatus")]
    response_status: Option<u16>,
    #[serde(
        rename = "HttpRequest.ResponseHeaders",
        skip_serializing_if = "Option::is_none"
    )]
    response_headers: Option<Headers<'a>>,
    #[serde(rename = "Gateway")]
    gateway: Gateway<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum TokenOut<'a> {
    Borrowed(&'a crate::jwt::AccessToken),
    Owned(Value),
}

#[derive(Serialize)]
struct Cert<'a> {
    subject: Option<&'a str>,
    issuer: Option<&'a str>,
    #[serde(rename = "notBefore")]
    not_before: Option<&'a str>,
    #[serde(rename = "notAfter")]
    not_after: Option<&'a str>,
    valid: bool,
}

#[derive(Serialize)]
struct Gateway<'a> {
    #[serde(rename = "_BasePath", skip_serializing_if = "Option::is_none")]
    base_path: Option<&'a str>,
    #[serde(rename = "_TrailingPath", skip_serializing_if = "Option::is_none")]
    trailing_path: Option<&'a str>,
}

#[derive(Serialize)]
struct AseSection<'a> {
    api: Option<&'a str>,
    decision: &'a str,
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    would_block: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    list_source: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    admin: bool,
    /// A decoy request (answered with the decoy response, never forwarded).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    decoy: bool,
    /// The decoy's `response_def` (Envoy sends no custom reason phrase).
    #[serde(skip_serializing_if = "Option::is_none")]
    decoy_response_def: Option<&'a str>,
    /// What the sideband call did.
    #[serde(skip_serializing_if = "Option::is_none")]
    sideband: Option<&'a crate::sideband::Report>,
    client: ClientOut<'a>,
    jwt: Option<&'a crate::identity::JwtOutcome>,
}

#[derive(Serialize)]
struct ClientOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookie: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
}

/// A header value as written: credentials follow the redaction mode; the admin key is always
/// hashed (or omitted).
fn header_value<'v>(
    name: &str,
    v: &'v str,
    mode: Redact,
    secrets: &[&str],
) -> Option<Cow<'v, str>> {
    if name.eq_ignore_ascii_case(crate::admin::KEY_HEADER) {
        let m = if mode == Redact::None {
            Redact::Hash
        } else {
            mode
        };
        return redact(m, v).map(Cow::Owned);
    }
    let credential = CREDENTIAL_HEADERS
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h));
    if (credential || is_secret(v, secrets)) && mode != Redact::None {
        return redact(mode, v).map(Cow::Owned);
    }
    Some(Cow::Borrowed(v))
}

/// Headers as lowercase name → array of values, grouped without building a map (pseudo-headers
/// left out). Envoy caps the header count (100 by default), so the quadratic grouping is bounded.
struct Headers<'a> {
    headers: &'a [(String, String)],
    mode: Redact,
    secrets: &'a [&'a str],
}

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (i, (name, value)) in self.headers.iter().enumerate() {
            if name.starts_with(':') {
                continue;
            }
            let seen = self
                .headers
                .iter()
                .take(i)
                .any(|(k, _)| k.eq_ignore_ascii_case(name));
            if seen {
                continue;
            }
            let key = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(name.to_ascii_lowercase())
            } else {
                Cow::Borrowed(name.as_str())
            };
            // Most headers come once: their one-value array needs no vector.
            let repeated = self
                .headers
                .iter()
                .skip(i + 1)
                .any(|(k, _)| k.eq_ignore_ascii_case(name));
            if !repeated {
                if let Some(v) = header_value(name, value, self.mode, self.secrets) {
                    map.serialize_entry(&key, &[v])?;
                }
                continue;
            }
            let values: Vec<Cow<'_, str>> = self
                .headers
                .iter()
                .skip(i)
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .filter_map(|(_, v)| header_value(name, v, self.mode, self.secrets))
                .collect();
            if !values.is_empty() {
                map.serialize_entry(&key, &values)?;
            }
        }
        map.end()
    }
}

/// Query parameters as name → array of values (credentials redacted).
struct Query<'a> {
    params: &'a [(String, String)],
    mode: Redact,
    secrets: &'a [&'a str],
}

impl Serialize for Query<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (i, (name, _)) in self.params.iter().enumerate() {
            if self.params.iter().take(i).any(|(k, _)| k == name) {
                continue;
            }
            let values: Vec<Cow<'_, str>> = self
                .params
                .iter()
                .skip(i)
                .filter(|(k, _)| k == name)
                .filter_map(|(_, v)| {
                    if is_secret(v, self.secrets) {
                        redact(self.mode, v).map(Cow::Owned)
                    } else {
                        Some(Cow::Borrowed(v.as_str()))
                    }
                })
                .collect();
            if !values.is_empty() {
                map.serialize_entry(name, &values)?;
            }
        }
        map.end()
    }
}

mod json;

#[cfg(test)]
mod parts_tests;
#[cfg(test)]
mod tests;
