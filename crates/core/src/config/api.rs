//! Compiles the `apis` entries (ASE API JSON `api_metadata`) into [`Api`] values with ASE's
//! validation rules. Pure functions over `serde_json::Value`; no host calls.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{Api, ApiKeyLocation, JwtConfig, JwtLocation, Notice};
use crate::error::{Error, Result};
use crate::router::{authority_host, normalize_path};

/// Every `api_metadata` field ASE documents that this filter reads or type-checks.
const USED: [&str; 17] = [
    "protocol",
    "url",
    "hostname",
    "cookie",
    "cookie_idle_timeout",
    "logout_api_enabled",
    "oauth2_access_token",
    "is_token_mandatory",
    "apikey_qs",
    "apikey_header",
    "login_url",
    "enable_blocking",
    "api_pattern_enforcement",
    "flow_control",
    "decoy_config",
    "username_header",
    "jwt",
];

/// Documented fields whose job Envoy's routes and clusters do: accepted, reported once, ignored.
const IGNORED: [&str; 10] = [
    "servers",
    "health_check",
    "health_check_interval",
    "health_retry_count",
    "health_url",
    "health_check_headers",
    "server_ssl",
    "api_mapping",
    "cookie_persistence_enabled",
    "api_memory_size",
];

/// Booleans ASE documents; a non-boolean value is an error.
const BOOLEANS: [&str; 5] = [
    "enable_blocking",
    "oauth2_access_token",
    "is_token_mandatory",
    "logout_api_enabled",
    "cookie_persistence_enabled",
];

/// Units `cookie_idle_timeout` accepts (`200m`, `1yr`, …).
const IDLE_UNITS: [&str; 7] = ["s", "m", "h", "d", "w", "mnt", "yr"];

/// Notices gathered across all APIs, emitted once per configuration.
#[derive(Default)]
struct Gathered {
    /// `api "x": a, b` per API with unknown keys.
    unknown: Vec<String>,
    /// `api "x": a, b` per API with ignored fields.
    ignored: Vec<String>,
    /// Individual warnings.
    warns: Vec<String>,
}

/// Compile every `apis` entry, check that names and (hostname, url) pairs are unique, and push
/// the configuration's notices: at most one Info for ignored fields and one Warn for unknown keys.
pub(super) fn compile_apis(entries: Vec<Value>, notices: &mut Vec<Notice>) -> Result<Vec<Api>> {
    let mut gathered = Gathered::default();
    let mut apis: Vec<Api> = Vec::with_capacity(entries.len());
    let mut by_name: HashMap<String, usize> = HashMap::with_capacity(entries.len());
    let mut by_route: HashMap<(String, String), usize> = HashMap::with_capacity(entries.len());

    for (i, entry) in entries.iter().enumerate() {
        let api = compile_entry(i, entry, &mut gathered)?;
        if let Some(&first) = by_name.get(&api.name) {
            return Err(Error::Config(format!(
                "apis[{first}] and apis[{i}] are both named {:?}; API names must be unique (set \"name\" to tell them apart)",
                api.name
            )));
        }
        let route = (api.hostname.clone(), api.url.clone());
        if let Some(&first) = by_route.get(&route) {
            let first_name = apis.get(first).map(|a| a.name.as_str()).unwrap_or("");
            return Err(Error::Config(format!(
                "api {:?} and api {:?} both have hostname {:?} and url {:?}",
                first_name, api.name, api.hostname, api.url
            )));
        }
        by_name.insert(api.name.clone(), i);
        by_route.insert(route, i);
        apis.push(api);
    }

    if !gathered.ignored.is_empty() {
        notices.push(Notice::Info(format!(
            "API JSON fields ignored because Envoy's routes and clusters do their job (backends, health checks, upstream TLS, URL mapping, sticky sessions, memory sizing): {}",
            gathered.ignored.join("; ")
        )));
    }
    if !gathered.unknown.is_empty() {
        notices.push(Notice::Warn(format!(
            "unknown API JSON keys ignored (from another ASE version, or a typo?): {}",
            gathered.unknown.join("; ")
        )));
    }
    notices.extend(gathered.warns.into_iter().map(Notice::Warn));
    Ok(apis)
}

/// One `apis[i]` entry: `{"name"?, "api_metadata"}`.
fn compile_entry(i: usize, entry: &Value, gathered: &mut Gathered) -> Result<Api> {
    let Value::Object(entry) = entry else {
        return Err(Error::Config(format!(
            "apis[{i}] must be an object with \"api_metadata\", got {}",
            describe(entry)
        )));
    };
    let given_name = match entry.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => {
            if !s.bytes().all(is_name_byte) {
                return Err(Error::Config(format!(
                    "apis[{i}]: name {s:?} may only contain letters, digits, '_', '.' and '-'"
                )));
            }
            Some(s.clone())
        }
        Some(other) => {
            return Err(Error::Config(format!(
                "apis[{i}]: name must be a string, got {}",
                describe(other)
            )))
        }
    };
    let meta = match entry.get("api_metadata") {
        Some(Value::Object(meta)) => meta,
        None | Some(Value::Null) => {
            return Err(Error::Config(format!(
                "apis[{i}]: \"api_metadata\" is missing"
            )));
        }
        Some(other) => {
            return Err(Error::Config(format!(
                "apis[{i}]: api_metadata must be an object, got {}",
                describe(other)
            )))
        }
    };
    let name = match (given_name, meta.get("url")) {
        (Some(n), _) => n,
        (None, Some(Value::String(url))) => derive_name(&normalize_path(url)),
        (None, _) => format!("apis[{i}]"),
    };
    let mut unknown: Vec<String> = entry
        .keys()
        .filter(|k| *k != "name" && *k != "api_metadata")
        .map(|k| format!("apis[{i}].{k}"))
        .collect();
    let api = compile_api(name, meta, &mut unknown, gathered)?;
    if !unknown.is_empty() {
        gathered
            .unknown
            .push(format!("api {:?}: {}", api.name, unknown.join(", ")));
    }
    Ok(api)
}

/// Compile one `api_metadata` object. `name` is final unless the url is missing (then it is
/// `apis[i]` and an error follows).
fn compile_api(
    name: String,
    meta: &Map<String, Value>,
    unknown: &mut Vec<String>,
    gathered: &mut Gathered,
) -> Result<Api> {
    let err = |msg: String| Error::Config(format!("api {name:?}: {msg}"));

    let mut ignored = Vec::new();
    for key in meta.keys() {
        if IGNORED.contains(&key.as_str()) {
            ignored.push(key.as_str());
        } else if !USED.contains(&key.as_str()) {
            unknown.push(key.clone());
        }
    }
    if !ignored.is_empty() {
        gathered
            .ignored
            .push(format!("api {name:?}: {}", ignored.join(", ")));
    }

    let mut flags = [false; BOOLEANS.len()];
    for (slot, key) in flags.iter_mut().zip(BOOLEANS) {
        match meta.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => *slot = *b,
            Some(other) => {
                return Err(err(format!(
                    "{key} must be a boolean (true or false), got {}",
                    describe(other)
                )))
            }
        }
    }
    let [enable_blocking, oauth2_access_token, is_token_mandatory, _logout, _persistence] = flags;

    let text = |key: &str| -> Result<String> {
        match meta.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.trim().to_string()),
            Some(other) => Err(err(format!(
                "{key} must be a string, got {}",
                describe(other)
            ))),
        }
    };

    for key in ["api_pattern_enforcement", "flow_control", "decoy_config"] {
        match meta.get(key) {
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(other) => {
                return Err(err(format!(
                    "{key} must be an object, got {}",
                    describe(other)
                )))
            }
        }
    }
    text("login_url")?;

    let protocol = text("protocol")?;
    if !protocol.is_empty()
        && !["http", "https", "ws"]
            .iter()
            .any(|p| protocol.eq_ignore_ascii_case(p))
    {
        return Err(err(format!(
            "protocol {protocol:?} must be http, https or ws"
        )));
    }

    let idle = text("cookie_idle_timeout")?;
    if !idle.is_empty() && !idle_timeout_ok(&idle) {
        return Err(err(format!(
            "cookie_idle_timeout {idle:?} must be a number followed by one of {} (e.g. \"200m\")",
            IDLE_UNITS.join(", ")
        )));
    }

    let url = text("url")?;
    if url.is_empty() {
        return Err(err(
            "url is missing or empty (use \"/\" for the root API)".to_string()
        ));
    }
    if !url.starts_with('/') {
        return Err(err(format!("url {url:?} must start with \"/\"")));
    }
    if url.contains(['?', '#']) {
        return Err(err(format!(
            "url {url:?} must not contain a query or fragment"
        )));
    }
    let url = normalize_path(&url);

    let hostname = compile_hostname(&text("hostname")?).map_err(err)?;

    let cookie = optional_token(&text("cookie")?, "cookie", false).map_err(err)?;

    let apikey_qs = text("apikey_qs")?;
    let apikey_header = text("apikey_header")?;
    let apikey = match (apikey_qs.is_empty(), apikey_header.is_empty()) {
        (true, true) => None,
        (false, true) => Some(ApiKeyLocation::Query(apikey_qs)),
        (true, false) => optional_token(&apikey_header, "apikey_header", true).map_err(err)?.map(ApiKeyLocation::Header),
        (false, false) => {
            return Err(err(format!(
                "apikey_qs {apikey_qs:?} and apikey_header {apikey_header:?} are both set; ASE reads the API key from one or the other"
            )))
        }
    };

    let username_header =
        optional_token(&text("username_header")?, "username_header", true).map_err(err)?;
    let jwt = compile_jwt(
        &name,
        meta.get("jwt"),
        username_header.as_deref(),
        unknown,
        gathered,
    )?;

    Ok(Api {
        name,
        url,
        hostname,
        cookie,
        oauth2_access_token,
        is_token_mandatory,
        apikey,
        enable_blocking,
        username_header,
        jwt,
    })
}

/// `*`, or a host name / IP address (port and trailing dot dropped, lowercased).
fn compile_hostname(raw: &str) -> std::result::Result<String, String> {
    if raw.is_empty() {
        return Err("hostname is missing or empty (use \"*\" for any host)".to_string());
    }
    if raw == "*" {
        return Ok("*".to_string());
    }
    if raw.contains('*') {
        return Err(format!(
            "hostname {raw:?}: only \"*\" alone is supported as a wildcard"
        ));
    }
    let host = authority_host(raw);
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    if !valid {
        return Err(format!("hostname {raw:?} is not a host name or IP address"));
    }
    Ok(host)
}

/// `""` → `None`; otherwise the value must be an HTTP token (header or cookie name).
fn optional_token(
    value: &str,
    field: &str,
    lowercase: bool,
) -> std::result::Result<Option<String>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    if !is_token(value) {
        return Err(format!(
            "{field} {value:?} is not a valid HTTP header or cookie name"
        ));
    }
    Ok(Some(if lowercase {
        value.to_ascii_lowercase()
    } else {
        value.to_string()
    }))
}

/// The `jwt` object, with ASE's table: absent → none; `{}` or a missing key → error; all keys
/// present and empty → none.
fn compile_jwt(
    name: &str,
    jwt: Option<&Value>,
    username_header: Option<&str>,
    unknown: &mut Vec<String>,
    gathered: &mut Gathered,
) -> Result<Option<JwtConfig>> {
    let err = |msg: String| Error::Config(format!("api {name:?}: {msg}"));
    let obj = match jwt {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(obj)) => obj,
        Some(other) => {
            return Err(err(format!(
                "jwt must be an object with location, username and clientid, got {}",
                describe(other)
            )))
        }
    };
    if obj.is_empty() {
        return Err(err(
            "jwt is {} (no keys); ASE rejects such an API: give location, username and clientid (all may be \"\"), or remove jwt"
                .to_string(),
        ));
    }
    let missing: Vec<&str> = ["location", "username", "clientid"]
        .into_iter()
        .filter(|k| !obj.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(err(format!(
            "jwt is missing {}; ASE requires all of location, username and clientid (all may be \"\")",
            missing.join(" and ")
        )));
    }
    unknown.extend(
        obj.keys()
            .filter(|k| !matches!(k.as_str(), "location" | "username" | "clientid"))
            .map(|k| format!("jwt.{k}")),
    );
    let text = |key: &str| -> Result<String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.trim().to_string()),
            Some(other) => Err(err(format!(
                "jwt.{key} must be a string, got {}",
                describe(other)
            ))),
        }
    };
    let location = text("location")?;
    let username = text("username")?;
    let clientid = text("clientid")?;

    if !username.is_empty() && username == clientid {
        return Err(err(format!(
            "jwt.username and jwt.clientid are both {username:?}; they must be different claims"
        )));
    }
    if let (Some(header), false) = (username_header, username.is_empty()) {
        return Err(err(format!(
            "username_header {header:?} and jwt.username {username:?} are both set; ASE takes the username from one or the other"
        )));
    }
    if location.is_empty() {
        if !username.is_empty() || !clientid.is_empty() {
            return Err(err(
                "jwt.username or jwt.clientid is set but jwt.location is empty".to_string(),
            ));
        }
        return Ok(None);
    }
    let parsed =
        parse_jwt_location(&location).map_err(|m| err(format!("jwt.location {location:?} {m}")))?;
    if username.is_empty() && clientid.is_empty() {
        gathered.warns.push(format!(
            "api {name:?}: jwt.location is set but jwt.username and jwt.clientid are empty: the token is located but no claim is extracted"
        ));
    }
    let some = |s: String| if s.is_empty() { None } else { Some(s) };
    Ok(Some(JwtConfig {
        location: parsed,
        username: some(username),
        clientid: some(clientid),
    }))
}

const LOCATION_FORMS: &str =
    "expected qs:<key>, h:<header name>, h:Authorization:Bearer, h:Authorization:MAC or h:cookie:<cookie name>";

/// Parse `jwt.location` (prefixes and schemes case-insensitive, whitespace around parts ignored).
/// The error text completes `jwt.location "<value>" …`.
pub(super) fn parse_jwt_location(raw: &str) -> std::result::Result<JwtLocation, String> {
    let Some((prefix, rest)) = raw.split_once(':') else {
        return Err(format!("has no prefix; {LOCATION_FORMS}"));
    };
    let prefix = prefix.trim();
    if prefix.eq_ignore_ascii_case("qs") {
        let key = rest.trim();
        if key.is_empty() {
            return Err("needs a query parameter name (qs:<key>)".to_string());
        }
        return Ok(JwtLocation::Query(key.to_string()));
    }
    if !prefix.eq_ignore_ascii_case("h") {
        return Err(format!("has unknown prefix {prefix:?}; {LOCATION_FORMS}"));
    }
    let (header, param) = match rest.split_once(':') {
        Some((h, p)) => (h.trim(), Some(p.trim())),
        None => (rest.trim(), None),
    };
    if header.is_empty() {
        return Err("needs a header name (h:<header name>)".to_string());
    }
    if header.eq_ignore_ascii_case("cookie") {
        return match param {
            Some(c) if !c.is_empty() => {
                if is_token(c) {
                    Ok(JwtLocation::Cookie(c.to_string()))
                } else {
                    Err(format!("has an invalid cookie name {c:?}"))
                }
            }
            _ => Err("needs a cookie name (h:cookie:<cookie name>)".to_string()),
        };
    }
    if header.eq_ignore_ascii_case("authorization") {
        return match param {
            Some(s) if s.eq_ignore_ascii_case("bearer") => Ok(JwtLocation::Bearer),
            Some(s) if s.eq_ignore_ascii_case("mac") => Ok(JwtLocation::Mac),
            Some(s) if !s.is_empty() => Err(format!(
                "uses scheme {s:?}; the Authorization header supports Bearer and MAC only"
            )),
            _ => Err("needs a scheme: h:Authorization:Bearer or h:Authorization:MAC".to_string()),
        };
    }
    if param.is_some() || !is_token(header) {
        return Err(format!("has an invalid header name {:?}", rest.trim()));
    }
    Ok(JwtLocation::Header(header.to_ascii_lowercase()))
}

/// `cookie_idle_timeout`: `<digits><unit>`.
fn idle_timeout_ok(value: &str) -> bool {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let Some((digits, unit)) = value.split_at_checked(split) else {
        return false;
    };
    !digits.is_empty() && digits.parse::<u64>().is_ok() && IDLE_UNITS.contains(&unit)
}

/// Default API name from its normalized url: `/` → `root`, `/rest` → `rest`, `/a/b` → `a_b`;
/// bytes outside `[A-Za-z0-9_.-]` become `_`.
pub(super) fn derive_name(url: &str) -> String {
    let trimmed = url.trim_matches('/');
    if trimmed.is_empty() {
        return "root".to_string();
    }
    trimmed
        .chars()
        .map(|c| {
            if c.is_ascii() && is_name_byte(c as u8) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// True when `s` is a non-empty RFC 9110 token (valid header or cookie name).
pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Short description of a JSON value for error messages: `string "yes"`, `number 3`, `an array`.
pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => {
            let short: String = s.chars().take(40).collect();
            if short.len() < s.len() {
                format!("string {short:?}…")
            } else {
                format!("string {s:?}")
            }
        }
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}
