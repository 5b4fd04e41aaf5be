//! The plugin configuration: parses ASE-style API JSON, validates it with ASE's rules and compiles
//! it into an immutable [`Compiled`] form shared by every HTTP context. No host calls.

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::identity::IdType;
use crate::router::Router;

mod api;

#[cfg(test)]
mod tests;

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
        match self {
            JwtLocation::Query(k) => format!("qs:{k}"),
            JwtLocation::Header(h) => format!("h:{h}"),
            JwtLocation::Bearer => "h:authorization:bearer".to_string(),
            JwtLocation::Mac => "h:authorization:mac".to_string(),
            JwtLocation::Cookie(c) => format!("h:cookie:{c}"),
        }
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
}

/// Deny-list or allow-list values given in configuration, one vector per identifier type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdLists {
    /// IP addresses, canonical text (`IpAddr::to_canonical().to_string()`: IPv4-mapped IPv6
    /// addresses in their IPv4 form).
    pub ip: Vec<String>,
    /// OAuth2 tokens.
    pub token: Vec<String>,
    /// API keys.
    pub api_key: Vec<String>,
    /// Cookies.
    pub cookie: Vec<String>,
    /// Usernames.
    pub username: Vec<String>,
}

impl IdLists {
    /// The values configured for one identifier type.
    pub fn get(&self, t: IdType) -> &[String] {
        match t {
            IdType::Ip => &self.ip,
            IdType::Token => &self.token,
            IdType::ApiKey => &self.api_key,
            IdType::Cookie => &self.cookie,
            IdType::Username => &self.username,
        }
    }
}

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
    /// The top-level keys later stages own (`attack_list`, `admin`, `analytics`), kept raw and
    /// unvalidated.
    pub extra: serde_json::Map<String, serde_json::Value>,
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
            router: Router::default(),
        }
    }
}

/// Top-level keys that later stages own: kept raw in [`Compiled::extra`], not validated here.
pub const EXTRA_KEYS: [&str; 3] = ["attack_list", "admin", "analytics"];

/// Parse, validate and compile a plugin configuration.
///
/// Accepts an empty configuration (0 bytes or whitespace: no APIs, all defaults), the full form
/// `{"ase", "apis", "deny_list", "allow_list", …}`, or a single ASE API JSON file
/// (`{"api_metadata": {…}}`, optionally with a `name` and the other top-level keys), which is one
/// API. A leading UTF-8 byte-order mark is ignored. In every object a `null` value means the same
/// as a missing key. Any error names the API (or section) and the field.
pub fn parse(bytes: &[u8]) -> Result<Compiled> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Compiled::default());
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::Config(format!("plugin configuration is not JSON: {e}")))?;
    let Value::Object(mut top) = value else {
        return Err(Error::Config(format!(
            "plugin configuration must be a JSON object, got {}",
            api::describe(&value)
        )));
    };

    let mut notices = Vec::new();

    let entries = match (top.remove("api_metadata"), top.remove("apis")) {
        (Some(_), Some(_)) => return Err(Error::Config(
            "plugin configuration has both \"apis\" and a top-level \"api_metadata\"; use one form"
                .to_string(),
        )),
        (Some(meta), None) => {
            let mut entry = Map::new();
            entry.insert("api_metadata".to_string(), meta);
            if let Some(name) = top.remove("name") {
                entry.insert("name".to_string(), name);
            }
            vec![Value::Object(entry)]
        }
        (None, None | Some(Value::Null)) => Vec::new(),
        (None, Some(Value::Array(list))) => list,
        (None, Some(other)) => {
            return Err(Error::Config(format!(
                "apis must be an array of APIs, got {}",
                api::describe(&other)
            )))
        }
    };

    let ase = compile_ase(top.remove("ase"), &mut notices)?;
    let deny_list = compile_list("deny_list", top.remove("deny_list"))?;
    let allow_list = compile_list("allow_list", top.remove("allow_list"))?;

    let mut extra = Map::new();
    for key in EXTRA_KEYS {
        if let Some(v) = top.remove(key) {
            extra.insert(key.to_string(), v);
        }
    }
    if !top.is_empty() {
        let keys: Vec<&str> = top.keys().map(String::as_str).collect();
        notices.push(Notice::Warn(format!(
            "unknown top-level keys ignored: {} (known: ase, apis, api_metadata, deny_list, allow_list, {})",
            keys.join(", "),
            EXTRA_KEYS.join(", ")
        )));
    }

    let apis = api::compile_apis(entries, &mut notices)?;
    let router = Router::new(&apis);
    Ok(Compiled {
        ase,
        apis,
        deny_list,
        allow_list,
        notices,
        extra,
        router,
    })
}

/// Compile the `ase` section (missing or `null` → defaults).
fn compile_ase(value: Option<Value>, notices: &mut Vec<Notice>) -> Result<Ase> {
    let mut ase = Ase::default();
    let obj = match value {
        None | Some(Value::Null) => return Ok(ase),
        Some(Value::Object(obj)) => obj,
        Some(other) => {
            return Err(Error::Config(format!(
                "ase must be an object, got {}",
                api::describe(&other)
            )))
        }
    };
    let mut unknown = Vec::new();
    for (key, v) in &obj {
        let field = format!("ase.{key}");
        match key.as_str() {
            "enable_firewall" => set_bool(&mut ase.enable_firewall, &field, v)?,
            "enable_ase_detected_attack" => {
                set_bool(&mut ase.enable_ase_detected_attack, &field, v)?
            }
            "enable_xff" => set_bool(&mut ase.enable_xff, &field, v)?,
            "xff_num_trusted_hops" => {
                if let Some(n) = get_uint(&field, v, u64::from(u32::MAX))? {
                    ase.xff_num_trusted_hops = u32::try_from(n).unwrap_or(u32::MAX);
                }
            }
            "detected_attack_ttl_s" => {
                if let Some(n) = get_uint(&field, v, u64::MAX)? {
                    ase.detected_attack_ttl_s = n;
                }
            }
            "block_response" => ase.block_response = compile_block_response(v, &mut unknown)?,
            _ => unknown.push(field),
        }
    }
    if !unknown.is_empty() {
        notices.push(Notice::Warn(format!(
            "unknown ase keys ignored: {}",
            unknown.join(", ")
        )));
    }
    Ok(ase)
}

fn set_bool(slot: &mut bool, field: &str, v: &Value) -> Result<()> {
    match v {
        Value::Null => Ok(()),
        Value::Bool(b) => {
            *slot = *b;
            Ok(())
        }
        other => Err(Error::Config(format!(
            "{field} must be a boolean (true or false), got {}",
            api::describe(other)
        ))),
    }
}

/// A non-negative integer no larger than `max` (`null` → `None`).
fn get_uint(field: &str, v: &Value, max: u64) -> Result<Option<u64>> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_u64() {
            Some(n) if n <= max => Ok(Some(n)),
            _ => Err(Error::Config(format!(
                "{field} must be an integer from 0 to {max}, got {n}"
            ))),
        },
        other => Err(Error::Config(format!(
            "{field} must be an integer, got {}",
            api::describe(other)
        ))),
    }
}

fn compile_block_response(v: &Value, unknown: &mut Vec<String>) -> Result<BlockResponse> {
    let mut out = BlockResponse::default();
    let obj = match v {
        Value::Null => return Ok(out),
        Value::Object(obj) => obj,
        other => {
            return Err(Error::Config(format!(
                "ase.block_response must be an object, got {}",
                api::describe(other)
            )))
        }
    };
    for (key, v) in obj {
        match key.as_str() {
            "status" => {
                if let Some(n) = get_uint("ase.block_response.status", v, u64::MAX)? {
                    out.status = match u32::try_from(n) {
                        Ok(s) if (200..=599).contains(&s) => s,
                        _ => {
                            return Err(Error::Config(format!(
                                "ase.block_response.status must be from 200 to 599, got {n}"
                            )))
                        }
                    };
                }
            }
            "body" => match v {
                Value::Null => {}
                Value::String(s) => out.body = s.clone(),
                other => {
                    return Err(Error::Config(format!(
                        "ase.block_response.body must be a string, got {}",
                        api::describe(other)
                    )))
                }
            },
            "headers" => out.headers = compile_headers(v)?,
            _ => unknown.push(format!("ase.block_response.{key}")),
        }
    }
    Ok(out)
}

fn compile_headers(v: &Value) -> Result<Vec<(String, String)>> {
    let obj = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Object(obj) => obj,
        other => {
            return Err(Error::Config(format!(
                "ase.block_response.headers must be an object of name: value strings, got {}",
                api::describe(other)
            )))
        }
    };
    let mut headers = Vec::with_capacity(obj.len());
    for (name, value) in obj {
        if !api::is_token(name) {
            return Err(Error::Config(format!(
                "ase.block_response.headers: {name:?} is not a valid HTTP header name"
            )));
        }
        let Value::String(value) = value else {
            return Err(Error::Config(format!(
                "ase.block_response.headers.{name} must be a string, got {}",
                api::describe(value)
            )));
        };
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(Error::Config(format!(
                "ase.block_response.headers.{name} must not contain CR, LF or NUL"
            )));
        }
        headers.push((name.to_ascii_lowercase(), value.clone()));
    }
    Ok(headers)
}

/// Compile `deny_list` / `allow_list` (missing or `null` → empty).
fn compile_list(list: &str, value: Option<Value>) -> Result<IdLists> {
    let mut out = IdLists::default();
    let obj = match value {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Object(obj)) => obj,
        Some(other) => {
            return Err(Error::Config(format!(
                "{list} must be an object of identifier type → array of strings, got {}",
                api::describe(&other)
            )))
        }
    };
    for (key, v) in &obj {
        let Some(id_type) = IdType::parse(key) else {
            return Err(Error::Config(format!(
                "{list}: unknown identifier type {key:?} (expected one of ip, token, api_key, cookie, username)"
            )));
        };
        let items = match v {
            Value::Null => continue,
            Value::Array(items) => items,
            other => {
                return Err(Error::Config(format!(
                    "{list}.{key} must be an array of strings, got {}",
                    api::describe(other)
                )))
            }
        };
        let mut values = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let s = match item {
                Value::String(s) if !s.trim().is_empty() => s,
                other => {
                    return Err(Error::Config(format!(
                        "{list}.{key}[{i}] must be a non-empty string, got {}",
                        api::describe(other)
                    )))
                }
            };
            if id_type == IdType::Ip {
                let ip: IpAddr = s.trim().parse().map_err(|_| {
                    Error::Config(format!(
                        "{list}.ip[{i}] {s:?} is not an IPv4 or IPv6 address"
                    ))
                })?;
                // Canonical like the identified peer (`parse::parse_ip`): an IPv4-mapped
                // IPv6 entry (`::ffff:192.0.2.1`) must match the IPv4 client it names.
                values.push(ip.to_canonical().to_string());
            } else {
                values.push(s.clone());
            }
        }
        let slot = match id_type {
            IdType::Ip => &mut out.ip,
            IdType::Token => &mut out.token,
            IdType::ApiKey => &mut out.api_key,
            IdType::Cookie => &mut out.cookie,
            IdType::Username => &mut out.username,
        };
        *slot = values;
    }
    Ok(out)
}
