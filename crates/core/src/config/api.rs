//! Compiles the `apis` entries (ASE API JSON `api_metadata`) into [`Api`] values with ASE's
//! validation rules. Pure functions over `serde_json::Value`; no host calls.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{jwt, Api, ApiKeyLocation, ConfigError, Notice, Result};
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
    /// `api "x": field → Envoy setting` per API with `flow_control` fields Envoy enforces.
    envoy_flow: Vec<String>,
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
            return Err(ConfigError::sentence(
                format!("apis[{i}].name"),
                format!(
                    "apis[{first}] and apis[{i}] are both named {:?}; API names must be unique (set \"name\" to tell them apart)",
                    api.name
                ),
            ));
        }
        let route = (api.hostname.clone(), api.url.clone());
        if let Some(&first) = by_route.get(&route) {
            let first_name = apis.get(first).map(|a| a.name.as_str()).unwrap_or("");
            return Err(ConfigError::sentence(
                format!("apis[{i}].api_metadata.url"),
                format!(
                    "api {:?} and api {:?} both have hostname {:?} and url {:?}",
                    first_name, api.name, api.hostname, api.url
                ),
            ));
        }
        by_name.insert(api.name.clone(), i);
        by_route.insert(route, i);
        apis.push(api);
    }
    gathered.into_notices(notices);
    Ok(apis)
}

impl Gathered {
    fn into_notices(self, notices: &mut Vec<Notice>) {
        if !self.ignored.is_empty() {
            notices.push(Notice::Info(format!(
                "API JSON fields ignored because Envoy's routes and clusters do their job (backends, health checks, upstream TLS, URL mapping, sticky sessions, memory sizing): {}",
                self.ignored.join("; ")
            )));
        }
        if !self.unknown.is_empty() {
            notices.push(Notice::Warn(format!(
                "unknown API JSON keys ignored (from another ASE version, or a typo?): {}",
                self.unknown.join("; ")
            )));
        }
        if !self.envoy_flow.is_empty() {
            notices.push(Notice::Info(format!(
                "flow_control fields that Envoy enforces, not api-warden (set the Envoy setting named instead): {}",
                self.envoy_flow.join("; ")
            )));
        }
        notices.extend(self.warns.into_iter().map(Notice::Warn));
    }
}

/// One `apis[i]` entry: `{"name"?, "api_metadata"}`.
fn compile_entry(i: usize, entry: &Value, gathered: &mut Gathered) -> Result<Api> {
    let Value::Object(entry) = entry else {
        return Err(ConfigError::field(
            format!("apis[{i}]"),
            format!(
                "must be an object with \"api_metadata\", got {}",
                describe(entry)
            ),
        ));
    };
    let given_name = entry_name(i, entry)?;
    let meta = match entry.get("api_metadata") {
        Some(Value::Object(meta)) => meta,
        None | Some(Value::Null) => {
            return Err(ConfigError::sentence(
                format!("apis[{i}].api_metadata"),
                format!("apis[{i}]: \"api_metadata\" is missing"),
            ));
        }
        Some(other) => {
            return Err(ConfigError::sentence(
                format!("apis[{i}].api_metadata"),
                format!(
                    "apis[{i}]: api_metadata must be an object, got {}",
                    describe(other)
                ),
            ))
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

/// The entry's `name`, `None` when missing or empty (then derived from the url).
fn entry_name(i: usize, entry: &Map<String, Value>) -> Result<Option<String>> {
    let field = || format!("apis[{i}].name");
    match entry.get("name") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.bytes().all(is_name_byte) => Ok(Some(s.clone())),
        Some(Value::String(s)) => Err(ConfigError::sentence(
            field(),
            format!("apis[{i}]: name {s:?} may only contain letters, digits, '_', '.' and '-'"),
        )),
        Some(other) => Err(ConfigError::sentence(
            field(),
            format!("apis[{i}]: name must be a string, got {}", describe(other)),
        )),
    }
}

/// Compile one `api_metadata` object. `name` is final unless the url is missing (then it is
/// `apis[i]` and an error follows). Every error names the API.
fn compile_api(
    name: String,
    meta: &Map<String, Value>,
    unknown: &mut Vec<String>,
    gathered: &mut Gathered,
) -> Result<Api> {
    let in_api = |e: ConfigError| e.in_api(&name);
    sort_keys(&name, meta, unknown, gathered);
    let meta = Meta(meta);
    let [enable_blocking, oauth2_access_token, is_token_mandatory, _logout, _persistence] =
        meta.flags().map_err(in_api)?;
    check_unused(&meta).map_err(in_api)?;
    let url = compile_url(&meta.text("url").map_err(in_api)?).map_err(in_api)?;
    let hostname = meta.text("hostname").and_then(|h| compile_hostname(&h));
    let hostname = hostname.map_err(in_api)?;
    let cookie = meta.token("cookie", false).map_err(in_api)?;
    let apikey = compile_apikey(&meta).map_err(in_api)?;
    let username_header = meta.token("username_header", true).map_err(in_api)?;
    let jwt =
        jwt::compile_jwt(meta.0.get("jwt"), username_header.as_deref(), unknown).map_err(in_api)?;
    if jwt
        .as_ref()
        .is_some_and(|j| j.username.is_none() && j.clientid.is_none())
    {
        gathered.warns.push(format!(
            "api {name:?}: jwt.location is set but jwt.username and jwt.clientid are empty: the token is located but no claim is extracted"
        ));
    }
    let (protect, envoy_flow) = crate::protect::compile(&url, meta.0)
        .map_err(|e| ConfigError::field(format!("api_metadata.{}", e.field), e.message))
        .map_err(in_api)?;
    if !envoy_flow.is_empty() {
        let named: Vec<String> = envoy_flow
            .iter()
            .filter_map(|f| {
                crate::protect::ENVOY_FLOW_FIELDS
                    .iter()
                    .find(|(k, _)| k == f)
            })
            .map(|(k, envoy)| format!("{k} → {envoy}"))
            .collect();
        gathered
            .envoy_flow
            .push(format!("api {name:?}: {}", named.join(", ")));
    }
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
        protect,
    })
}

/// Gather the API's ignored fields (reported at info) and unknown keys (warned).
fn sort_keys(
    name: &str,
    meta: &Map<String, Value>,
    unknown: &mut Vec<String>,
    gathered: &mut Gathered,
) {
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
}

/// An `api_metadata` object; errors name fields as `api_metadata.<key>`.
struct Meta<'a>(&'a Map<String, Value>);

impl Meta<'_> {
    /// [`BOOLEANS`], in order (missing → false).
    fn flags(&self) -> Result<[bool; BOOLEANS.len()]> {
        let mut flags = [false; BOOLEANS.len()];
        for (slot, key) in flags.iter_mut().zip(BOOLEANS) {
            match self.0.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::Bool(b)) => *slot = *b,
                Some(other) => {
                    return Err(ConfigError::field(
                        format!("api_metadata.{key}"),
                        format!("must be a boolean (true or false), got {}", describe(other)),
                    ))
                }
            }
        }
        Ok(flags)
    }

    /// A string field, trimmed (missing → `""`).
    fn text(&self, key: &str) -> Result<String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.trim().to_string()),
            Some(other) => Err(ConfigError::field(
                format!("api_metadata.{key}"),
                format!("must be a string, got {}", describe(other)),
            )),
        }
    }

    /// A header or cookie name (`""` → `None`), lowercased if asked.
    fn token(&self, key: &str, lowercase: bool) -> Result<Option<String>> {
        let value = self.text(key)?;
        if value.is_empty() {
            return Ok(None);
        }
        if !is_token(&value) {
            return Err(ConfigError::field(
                format!("api_metadata.{key}"),
                format!("{value:?} is not a valid HTTP header or cookie name"),
            ));
        }
        Ok(Some(if lowercase {
            value.to_ascii_lowercase()
        } else {
            value
        }))
    }
}

/// Type-check the fields this filter does not use beyond that: the loose objects, `login_url`,
/// `protocol` and `cookie_idle_timeout`.
fn check_unused(meta: &Meta<'_>) -> Result<()> {
    for key in ["api_pattern_enforcement", "flow_control", "decoy_config"] {
        match meta.0.get(key) {
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(other) => {
                return Err(ConfigError::field(
                    format!("api_metadata.{key}"),
                    format!("must be an object, got {}", describe(other)),
                ))
            }
        }
    }
    meta.text("login_url")?;
    let protocol = meta.text("protocol")?;
    if !protocol.is_empty()
        && !["http", "https", "ws"]
            .iter()
            .any(|p| protocol.eq_ignore_ascii_case(p))
    {
        return Err(ConfigError::field(
            "api_metadata.protocol",
            format!("{protocol:?} must be http, https or ws"),
        ));
    }
    let idle = meta.text("cookie_idle_timeout")?;
    if !idle.is_empty() && !idle_timeout_ok(&idle) {
        return Err(ConfigError::field(
            "api_metadata.cookie_idle_timeout",
            format!(
                "{idle:?} must be a number followed by one of {} (e.g. \"200m\")",
                IDLE_UNITS.join(", ")
            ),
        ));
    }
    Ok(())
}

/// `url`: required, absolute, no query or fragment; returned normalized.
fn compile_url(url: &str) -> Result<String> {
    let err = |msg: String| ConfigError::field("api_metadata.url", msg);
    if url.is_empty() {
        return Err(err(
            "is missing or empty (use \"/\" for the root API)".to_string()
        ));
    }
    if !url.starts_with('/') {
        return Err(err(format!("{url:?} must start with \"/\"")));
    }
    if url.contains(['?', '#']) {
        return Err(err(format!("{url:?} must not contain a query or fragment")));
    }
    Ok(normalize_path(url))
}

/// `*`, or a host name / IP address (port and trailing dot dropped, lowercased).
fn compile_hostname(raw: &str) -> Result<String> {
    let err = |msg: String| ConfigError::field("api_metadata.hostname", msg);
    if raw.is_empty() {
        return Err(err(
            "is missing or empty (use \"*\" for any host)".to_string()
        ));
    }
    if raw == "*" {
        return Ok("*".to_string());
    }
    if raw.contains('*') {
        return Err(err(format!(
            "{raw:?}: only \"*\" alone is supported as a wildcard"
        )));
    }
    let host = authority_host(raw);
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    if !valid {
        return Err(err(format!("{raw:?} is not a host name or IP address")));
    }
    Ok(host)
}

/// `apikey_qs` or `apikey_header`, not both.
fn compile_apikey(meta: &Meta<'_>) -> Result<Option<ApiKeyLocation>> {
    let qs = meta.text("apikey_qs")?;
    let header = meta.text("apikey_header")?;
    match (qs.is_empty(), header.is_empty()) {
        (true, true) => Ok(None),
        (false, true) => Ok(Some(ApiKeyLocation::Query(qs))),
        (true, false) => Ok(meta.token("apikey_header", true)?.map(ApiKeyLocation::Header)),
        (false, false) => Err(ConfigError::field(
            "api_metadata.apikey_qs",
            format!(
                "{qs:?} and apikey_header {header:?} are both set; ASE reads the API key from one or the other"
            ),
        )),
    }
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
    crate::parse::is_token(s)
}

/// Short description of a JSON value for error messages: `string "yes"`, `number 3`, `an array`.
pub(crate) fn describe(v: &Value) -> String {
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
