//! The admin API for deny and allow lists (`GET`/`POST`/`DELETE <admin.path>/{deny_list,allow_list}`):
//! authentication, request parsing and the JSON replies. Pure: list storage goes through
//! [`Store`]; the adapter only carries the request in and the reply out.

use serde_json::{json, Value};

use crate::identity::IdType;
use crate::lists::{self, ConfigLists, Entry, ListKind, Lookup, Source, Store, UpdateError};
use crate::services::AdminSettings;

/// Header carrying the admin key.
pub const KEY_HEADER: &str = "x-api-warden-admin-key";
/// Largest admin request body accepted.
pub const MAX_BODY: usize = 1 << 20;
/// Default number of entries listed per type and source in a GET.
pub const DEFAULT_LIMIT: usize = 10_000;

/// The reply to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u32,
    pub body: String,
}

fn reply(status: u32, v: Value) -> Reply {
    Reply {
        status,
        body: v.to_string(),
    }
}

fn error(status: u32, msg: impl Into<String>) -> Reply {
    reply(status, json!({ "error": msg.into() }))
}

/// Does this normalized path belong to the admin API?
///
/// Besides `<path>` and `<path>/…`, a path that continues with an encoded slash or backslash
/// (`<path>%2F…`, `<path>%5C…`) counts too: [`crate::router::normalize_path`] keeps those
/// escapes, but many upstreams decode them, so such a request must never be forwarded either.
///
/// A path that reaches the admin API only in [`crate::router::upstream_reading`] (`;` path
/// parameters, `\`, `/x%2F..%2F<path>`) counts too, for the same reason.
pub fn is_admin_path(settings: &AdminSettings, normalized_path: &str) -> bool {
    under_admin(settings, normalized_path)
        || crate::router::upstream_reading(normalized_path)
            .is_some_and(|alt| under_admin(settings, &alt))
}

/// [`is_admin_path`] for a request parsed once.
pub fn is_admin_request(settings: &AdminSettings, req: &crate::request::Request) -> bool {
    under_admin(settings, &req.path)
        || req
            .upstream_path
            .as_deref()
            .is_some_and(|alt| under_admin(settings, alt))
}

fn under_admin(settings: &AdminSettings, normalized_path: &str) -> bool {
    normalized_path
        .strip_prefix(settings.path.as_str())
        .is_some_and(|rest| {
            let esc = rest.get(..3);
            rest.is_empty()
                || rest.starts_with('/')
                || esc
                    .is_some_and(|e| e.eq_ignore_ascii_case("%2f") || e.eq_ignore_ascii_case("%5c"))
        })
}

/// Compare two byte strings in time that depends only on their lengths (`subtle`).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.ct_eq(b))
}

/// The 401 reply for a request without the right admin key; `None` when the key is right.
/// Decided from the headers alone, so a wrong key is answered at once, body or not.
pub fn unauthorized(settings: &AdminSettings, key: Option<&str>) -> Option<Reply> {
    match key {
        Some(k) if constant_time_eq(k.as_bytes(), settings.key.as_bytes()) => None,
        Some(_) => Some(error(401, format!("wrong {KEY_HEADER}"))),
        None => Some(error(401, format!("missing {KEY_HEADER}"))),
    }
}

/// One admin request.
pub struct AdminRequest<'a> {
    pub method: &'a str,
    /// Normalized path (no query).
    pub path: &'a str,
    /// The decoded query parameters.
    pub query: &'a [(String, String)],
    /// Value of `x-api-warden-admin-key`, if sent.
    pub key: Option<&'a str>,
    /// The request body (empty when none was sent).
    pub body: &'a [u8],
}

/// How long a held admin request waits for its body before it is answered 400: Envoy hands the body
/// of a request whose headers a wasm filter holds back only with `allow_on_headers_stop_iteration:
/// true`, which Istio's `WasmPlugin` cannot set, so without it the body never comes.
pub const BODY_WAIT_MS: u64 = 750;

/// The answer to an admin request whose body did not arrive within [`BODY_WAIT_MS`].
pub fn body_never_came(settings: &AdminSettings) -> Reply {
    error(
        400,
        format!(
            "the request body did not reach api-warden: Envoy delivers it to a wasm filter only with \
             allow_on_headers_stop_iteration: true on the filter (Istio's WasmPlugin cannot set it); \
             pass the parameters in the query string instead, e.g. POST {}/deny_list?type=username&value=eve&ttl_s=600",
            settings.path
        ),
    )
}

/// How to pass the parameters of a change, for error messages.
const PARAMS_HELP: &str = "send a JSON body {\"type\": …, \"value\": …, \"ttl_s\": …}, or \
    the same as query parameters, e.g. POST <admin path>/deny_list?type=username&value=eve&ttl_s=600";

/// Does the `:path` carry the parameters of a change (`type`, `value` or `ttl_s`) in its query
/// string?
/// Such a request is answered from the headers alone; any body is ignored.
pub fn has_query_params(query: &[(String, String)]) -> bool {
    query
        .iter()
        .any(|(k, _)| k == "type" || k == "value" || k == "ttl_s")
}

/// Handle one admin request at time `now_ms` (Unix milliseconds).
pub fn handle(
    settings: &AdminSettings,
    req: &AdminRequest<'_>,
    store: &impl Store,
    config: &ConfigLists,
    now_ms: u64,
) -> Reply {
    let now = now_ms / 1000;
    if let Some(r) = unauthorized(settings, req.key) {
        return r;
    }
    let sub = req.path.get(settings.path.len()..).unwrap_or("");
    let list = match sub {
        "/deny_list" => ListKind::Deny,
        "/allow_list" => ListKind::Allow,
        _ => return error(404, "unknown admin resource; use /deny_list or /allow_list"),
    };
    match req.method {
        "GET" => list_entries(list, req.query, store, config, now),
        "POST" | "PUT" => match parse_params(req) {
            Ok((t, value, ttl)) => {
                let expires_at = lists::expiry(now_ms, ttl);
                let e = Entry {
                    value,
                    source: Source::Admin,
                    expires_at,
                };
                let value = e.value.clone();
                match lists::add(store, list, t, e, now) {
                    Ok(added) => reply(
                        200,
                        json!({"list": list.as_str(), "type": t.as_str(), "value": value,
                               "added": added, "expires_at": (expires_at > 0).then_some(expires_at)}),
                    ),
                    Err(e) => update_error(e),
                }
            }
            Err(m) => error(400, m),
        },
        "DELETE" => match parse_params(req) {
            Ok((t, value, _)) => match lists::remove(store, list, t, &value) {
                Ok(()) => reply(
                    200,
                    json!({"list": list.as_str(), "type": t.as_str(), "value": value, "removed": true}),
                ),
                Err(UpdateError::NotFound) if config.contains(list, t, &value) => error(
                    409,
                    "this entry comes from the plugin configuration; change the configuration to remove it",
                ),
                Err(UpdateError::NotFound)
                    if Lookup::new(store, config, now, true).find(list, t, &value)
                        == Some(Source::AttackList) =>
                {
                    error(
                        409,
                        "this entry comes from the attack list; it goes when the feed drops it",
                    )
                }
                Err(e) => update_error(e),
            },
            Err(m) => error(400, m),
        },
        _ => error(405, "use GET, POST or DELETE"),
    }
}

fn update_error(e: UpdateError) -> Reply {
    match e {
        UpdateError::BadValue(m) => error(400, m),
        UpdateError::NotFound => error(404, "no such entry"),
        UpdateError::Contention | UpdateError::Superseded | UpdateError::Store(_) => {
            error(503, e.to_string())
        }
    }
}

/// The `(type, value, ttl_s)` of a change: from the query string when it carries them, else from
/// a JSON body `{"type", "value", "ttl_s"}`.
fn parse_params(req: &AdminRequest<'_>) -> Result<(IdType, String, u64), String> {
    if has_query_params(req.query) {
        let q = req.query;
        let get = |n: &str| q.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let mut v = serde_json::Map::new();
        if let Some(t) = get("type") {
            v.insert("type".into(), Value::String(t.into()));
        }
        if let Some(x) = get("value") {
            v.insert("value".into(), Value::String(x.into()));
        }
        if let Some(ttl) = get("ttl_s") {
            let n = ttl
                .parse::<u64>()
                .map_err(|_| format!("\"ttl_s\" must be a non-negative integer, got {ttl:?}"))?;
            v.insert("ttl_s".into(), Value::from(n));
        }
        return parse_fields(&Value::Object(v));
    }
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(format!("no parameters: {PARAMS_HELP}"));
    }
    parse_body(req.body)
}

fn parse_body(body: &[u8]) -> Result<(IdType, String, u64), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    parse_fields(&v)
}

fn parse_fields(v: &Value) -> Result<(IdType, String, u64), String> {
    let t = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or("\"type\" is required: one of ip, token, api_key, cookie, username")?;
    let t = IdType::parse(t).ok_or_else(|| {
        format!("unknown type {t:?}: use one of ip, token, api_key, cookie, username")
    })?;
    let value = v
        .get("value")
        .and_then(Value::as_str)
        .ok_or("\"value\" is required and must be a string")?;
    let value = lists::check_value(t, value).map_err(|e| e.to_string())?;
    let ttl = match v.get("ttl_s") {
        None | Some(Value::Null) => 0,
        Some(x) => x
            .as_u64()
            .ok_or("\"ttl_s\" must be a non-negative integer")?,
    };
    Ok((t, value, ttl))
}

fn list_entries(
    list: ListKind,
    params: &[(String, String)],
    store: &impl Store,
    config: &ConfigLists,
    now: u64,
) -> Reply {
    let param = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let only = match param("type") {
        Some(t) => match IdType::parse(t) {
            Some(t) => Some(t),
            None => return error(400, format!("unknown type {t:?}")),
        },
        None => None,
    };
    let limit = param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(DEFAULT_LIMIT);
    let mut out = serde_json::Map::new();
    for t in IdType::ALL {
        if only.is_some_and(|o| o != t) {
            continue;
        }
        let mut items: Vec<Value> = config
            .values(list, t)
            .take(limit)
            .map(|v| json!({"value": v, "source": "config", "expires_at": null}))
            .collect();
        let dynamic = lists::dyn_entries(store, list, t, now);
        let feed = if list == ListKind::Deny {
            lists::feed_entries(store, t, limit)
        } else {
            Vec::new()
        };
        items.extend(dynamic.iter().chain(feed.iter()).take(limit).map(|e| {
            json!({"value": e.value, "source": e.source.as_str(),
                   "expires_at": (e.expires_at > 0).then_some(e.expires_at)})
        }));
        out.insert(t.as_str().to_string(), Value::Array(items));
    }
    reply(200, Value::Object(out))
}

#[cfg(test)]
mod tests;
