//! The plugin configuration: [`load`] parses ASE-style API JSON and api-warden's own sections,
//! validates them with ASE's rules and compiles them into an immutable [`Compiled`] form shared by
//! every HTTP context. The filter, the fuzz target and the `api-warden lint` command all use
//! [`load`], so they never disagree. No host calls.
//!
//! # `null` and unknown keys
//!
//! In every JSON object of the configuration a member whose value is `null` means the same as a
//! missing member: the default applies, or, for a member that must be there, the "missing" error.
//! Array items are values, not members: `null` in an array is an error like any other wrong type.
//! A key api-warden does not know is reported whatever its value, by one rule per section:
//!
//! - ASE's formats warn and go on: the top level (which may be a single ASE API JSON file), each
//!   `apis[i]` entry, `api_metadata` and its `jwt` object, and `ase` (named after ASE's
//!   `ase.conf`, including `ase.block_response`). These files come from ASE's tooling, and other
//!   ASE versions add keys; one warning per configuration lists them all.
//! - api-warden's own sections reject them as typos: `admin`, `attack_list`, `analytics`, and the
//!   identifier types of `deny_list` / `allow_list`. A misspelt key there would silently turn a
//!   setting off.
//! - Fields ASE documents whose job Envoy's routes and clusters do (`servers`, `health_check`,
//!   `server_ssl`, `api_mapping`, …) are accepted with any value and reported once at info.

use serde_json::{Map, Value};

pub use crate::error::{ConfigError, Layout};
use crate::router::Router;
use crate::services::Services;

mod api;
mod jwt;
mod sections;

pub(crate) use api::describe;
pub(crate) use sections::get_uint;

#[cfg(test)]
mod tests;

/// Result of loading a configuration.
pub type Result<T> = std::result::Result<T, ConfigError>;

/// Global switches, named as in ASE's `ase.conf`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ase {
    /// `enable_firewall` (default true): false turns all blocking off.
    pub enable_firewall: bool,
    /// `enable_ase_detected_attack` (default true).
    pub enable_ase_detected_attack: bool,
    /// `enable_xff` (default false): take the client IP from X-Forwarded-For.
    pub enable_xff: bool,
    /// `xff_num_trusted_hops` (default 0): with `enable_xff`, 0 takes the first (leftmost) address
    /// as ASE does; N > 0 takes the Nth address from the right, Envoy's convention.
    pub xff_num_trusted_hops: u32,
    /// `detected_attack_ttl_s` (default 0 = detected entries never expire).
    pub detected_attack_ttl_s: u64,
    /// `block_response`: what a blocked client receives.
    pub block_response: BlockResponse,
}

/// The local reply sent to a blocked client (ASE's default: 403 `Unauthorized`).
#[derive(Debug, Clone, PartialEq)]
pub struct BlockResponse {
    /// HTTP status, 200..=599 (default 403).
    pub status: u32,
    /// Response body (default `Unauthorized`).
    pub body: String,
    /// Extra response headers, names lowercase, in name order (default none).
    pub headers: Vec<(String, String)>,
}

/// Where an API's JWT is found (`jwt.location`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtLocation {
    /// `qs:<key>`: a query parameter.
    Query(String),
    /// `h:<name>`: a custom header (name stored lowercase).
    Header(String),
    /// `h:Authorization:Bearer`
    Bearer,
    /// `h:Authorization:MAC`: the `id="…"` parameter.
    Mac,
    /// `h:cookie:<name>`
    Cookie(String),
}

impl JwtLocation {
    /// Canonical lowercase text, used as the record's `identityProvider` (`jwt:<this>`).
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        self.push_canonical(&mut out);
        out
    }

    /// Append [`JwtLocation::canonical`] to `out` (the request path builds `jwt:<location>`).
    pub fn push_canonical(&self, out: &mut String) {
        let (prefix, name) = match self {
            JwtLocation::Query(k) => ("qs:", k.as_str()),
            JwtLocation::Header(h) => ("h:", h.as_str()),
            JwtLocation::Bearer => ("h:authorization:bearer", ""),
            JwtLocation::Mac => ("h:authorization:mac", ""),
            JwtLocation::Cookie(c) => ("h:cookie:", c.as_str()),
        };
        out.push_str(prefix);
        out.push_str(name);
    }
}

/// The compiled `jwt` object: present whenever `jwt.location` is set.
///
/// A location with both claims empty is kept (with a warning at load) so the token can still be
/// located for `identityProvider` / `HttpRequest.AccessToken`; no claim is then extracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// Where the token is found.
    pub location: JwtLocation,
    /// Claim holding the username (`None` when `jwt.username` is empty).
    pub username: Option<String>,
    /// Claim holding the client id (`None` when `jwt.clientid` is empty).
    pub clientid: Option<String>,
}

/// Where an API key is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeyLocation {
    /// `apikey_qs`: query parameter name, exact (case-sensitive).
    Query(String),
    /// `apikey_header`: header name, stored lowercase.
    Header(String),
}

/// One API, compiled from its `api_metadata`.
#[derive(Debug, Clone, PartialEq)]
pub struct Api {
    /// Unique name (given, or derived from the url: `/rest` → `rest`, `/` → `root`).
    pub name: String,
    /// Base path, normalized, starting with `/`, no trailing slash except for the root `/`.
    pub url: String,
    /// Lowercase hostname without port, or `*`.
    pub hostname: String,
    /// Session cookie name (`None` when empty).
    pub cookie: Option<String>,
    /// `oauth2_access_token`: capture OAuth2 tokens (default false).
    pub oauth2_access_token: bool,
    /// `is_token_mandatory`: a request without a token is blocked and its IP deny-listed.
    pub is_token_mandatory: bool,
    /// `apikey_qs` or `apikey_header` (`None` when both are empty).
    pub apikey: Option<ApiKeyLocation>,
    /// `enable_blocking`: check this API's clients against the deny and allow lists.
    pub enable_blocking: bool,
    /// `username_header`, lowercase (`None` when empty).
    pub username_header: Option<String>,
    /// `jwt` (`None` when absent or when `jwt.location` is empty).
    pub jwt: Option<JwtConfig>,
    /// ASE's inline protections: `decoy_config`, `api_pattern_enforcement`, `flow_control`.
    pub protect: crate::protect::Protections,
}

/// Deny-list or allow-list values given in configuration, one vector per identifier type (IPs
/// in canonical text: `IpAddr::to_canonical().to_string()`, IPv4-mapped IPv6 addresses in their
/// IPv4 form).
pub type IdLists = crate::ids::PerType<Vec<String>>;

/// Log lines the configuration produced (ignored fields, unknown keys) for the adapter to emit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Worth knowing, nothing wrong (log at info).
    Info(String),
    /// Probably a mistake in the configuration, which still loaded (log at warn).
    Warn(String),
}

/// The validated, immutable configuration every HTTP context shares.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Global switches.
    pub ase: Ase,
    /// The APIs, in configuration order; [`Compiled::match_api`] picks one per request.
    pub apis: Vec<Api>,
    /// Deny-list entries given in configuration.
    pub deny_list: IdLists,
    /// Allow-list entries given in configuration (the allow list wins over the deny list).
    pub allow_list: IdLists,
    /// Messages to log once after loading.
    pub notices: Vec<Notice>,
    /// The top-level keys of the service sections (`attack_list`, `admin`, `analytics`), kept
    /// raw; [`Compiled::services`] is what they compile to.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// The validated `admin`, `attack_list` and `analytics` settings.
    pub services: Services,
    /// (hostname, url) index over `apis`.
    pub router: Router,
}

impl Default for BlockResponse {
    fn default() -> Self {
        BlockResponse {
            status: 403,
            body: "Unauthorized".to_string(),
            headers: Vec::new(),
        }
    }
}

impl Default for Ase {
    fn default() -> Self {
        Ase {
            enable_firewall: true,
            enable_ase_detected_attack: true,
            enable_xff: false,
            xff_num_trusted_hops: 0,
            detected_attack_ttl_s: 0,
            block_response: BlockResponse::default(),
        }
    }
}

impl Default for Compiled {
    /// What an empty plugin configuration compiles to: no APIs, default switches, empty lists.
    fn default() -> Self {
        Compiled {
            ase: Ase::default(),
            apis: Vec::new(),
            deny_list: IdLists::default(),
            allow_list: IdLists::default(),
            notices: Vec::new(),
            extra: Map::new(),
            services: Services::default(),
            router: Router::default(),
        }
    }
}

/// Top-level keys of the service sections: kept raw in [`Compiled::extra`], compiled into
/// [`Compiled::services`].
pub const EXTRA_KEYS: [&str; 4] = ["attack_list", "admin", "analytics", "sideband"];

/// Parse, validate and compile a whole plugin configuration: APIs, `ase`, the lists and the
/// service sections (`admin`, `attack_list`, `analytics`).
///
/// Accepts an empty configuration (0 bytes or whitespace: no APIs, all defaults), the full form
/// `{"ase", "apis", "deny_list", "allow_list", …}`, or a single ASE API JSON file
/// (`{"api_metadata": {…}}`, optionally with a `name` and the other top-level keys), which is one
/// API. A leading UTF-8 byte-order mark is ignored. The error names the API (or section) and the
/// field; notices (unknown keys, ignored fields) are in [`Compiled::notices`].
pub fn load(bytes: &[u8]) -> Result<Compiled> {
    let Some(mut top) = parse_top(bytes)? else {
        return Ok(Compiled::default());
    };
    let entries = take_entries(&mut top)?;
    let mut notices = Vec::new();
    let ase = sections::compile_ase(take(&mut top, "ase"), &mut notices)?;
    let deny_list = sections::compile_list("deny_list", take(&mut top, "deny_list"))?;
    let allow_list = sections::compile_list("allow_list", take(&mut top, "allow_list"))?;
    let mut extra = Map::new();
    for key in EXTRA_KEYS {
        if let Some(v) = top.remove(key) {
            extra.insert(key.to_string(), v);
        }
    }
    warn_unknown_top_level(&top, &mut notices);
    let apis = api::compile_apis(entries, &mut notices)?;
    let services = Services::parse(&extra)?;
    let router = Router::new(&apis);
    Ok(Compiled {
        ase,
        apis,
        deny_list,
        allow_list,
        notices,
        extra,
        services,
        router,
    })
}

/// [`load`] with the crate's [`Error`](crate::error::Error), for callers that mix configuration
/// and host errors. Same rules, same result.
pub fn parse(bytes: &[u8]) -> crate::error::Result<Compiled> {
    Ok(load(bytes)?)
}

/// The top-level object, `None` for an empty configuration.
fn parse_top(bytes: &[u8]) -> Result<Option<Map<String, Value>>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ConfigError::sentence("", format!("plugin configuration is not JSON: {e}")))?;
    match value {
        Value::Object(top) => Ok(Some(top)),
        other => Err(ConfigError::sentence(
            "",
            format!(
                "plugin configuration must be a JSON object, got {}",
                api::describe(&other)
            ),
        )),
    }
}

/// Remove member `key`; `null` counts as missing.
fn take(obj: &mut Map<String, Value>, key: &str) -> Option<Value> {
    obj.remove(key).filter(|v| !v.is_null())
}

/// The `apis` entries, or the one API of the single-file form (`{"api_metadata", "name"?}`).
fn take_entries(top: &mut Map<String, Value>) -> Result<Vec<Value>> {
    match (take(top, "api_metadata"), take(top, "apis")) {
        (Some(_), Some(_)) => Err(ConfigError::sentence(
            "api_metadata",
            "plugin configuration has both \"apis\" and a top-level \"api_metadata\"; use one form",
        )),
        (Some(meta), None) => {
            let mut entry = Map::new();
            entry.insert("api_metadata".to_string(), meta);
            if let Some(name) = top.remove("name") {
                entry.insert("name".to_string(), name);
            }
            Ok(vec![Value::Object(entry)])
        }
        (None, None) => Ok(Vec::new()),
        (None, Some(Value::Array(list))) => Ok(list),
        (None, Some(other)) => Err(ConfigError::field(
            "apis",
            format!("must be an array of APIs, got {}", api::describe(&other)),
        )),
    }
}

/// One warning listing the top-level keys nobody reads (whatever their value).
fn warn_unknown_top_level(top: &Map<String, Value>, notices: &mut Vec<Notice>) {
    if top.is_empty() {
        return;
    }
    let keys: Vec<&str> = top.keys().map(String::as_str).collect();
    notices.push(Notice::Warn(format!(
        "unknown top-level keys ignored: {} (known: ase, apis, api_metadata, deny_list, allow_list, {})",
        keys.join(", "),
        EXTRA_KEYS.join(", ")
    )));
}
