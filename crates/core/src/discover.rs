//! API discovery from root-API traffic, as ASE's analytics engine does it: records of requests
//! that matched the root API (`url: "/"`) and were answered 2xx are grouped by hostname and the
//! first N path segments; each group not already defined becomes an API JSON file, its `jwt`
//! object per the seeds' table. Memory grows with the number of groups, not of records. Pure:
//! records in, API JSON values out; no I/O.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::{json, Map, Value};

use crate::ase_files::{check_name, RESERVED_WORDS};

/// The deepest base path ASE allows (sub-path levels of a url).
pub const MAX_DEPTH: usize = 6;

/// The `jwt` object discovered APIs get from the root API's, per ASE's table: the root's copied
/// when it has all three keys set; all three empty when it has none or all are empty; and no
/// discovery at all (`Err`, saying why) when the object has no keys or only some of them.
pub fn discovered_jwt(root_meta: &Map<String, Value>) -> Result<Value, String> {
    const KEYS: [&str; 3] = ["location", "username", "clientid"];
    let empty = json!({"location": "", "username": "", "clientid": ""});
    let obj = match root_meta.get("jwt") {
        None | Some(Value::Null) => return Ok(empty),
        Some(Value::Object(obj)) => obj,
        Some(_) => return Err("the root API's jwt must be an object".to_string()),
    };
    let missing: Vec<&str> = KEYS
        .into_iter()
        .filter(|k| obj.get(*k).filter(|v| !v.is_null()).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the root API's jwt object lacks {}: ASE does not load such an API, so nothing is discovered (give all of location, username and clientid, all may be \"\", or remove jwt)",
            missing.join(" and ")
        ));
    }
    let text = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").trim();
    if KEYS.iter().all(|k| text(k).is_empty()) {
        return Ok(empty);
    }
    Ok(
        json!({"location": text("location"), "username": text("username"), "clientid": text("clientid")}),
    )
}

/// One group of requests: a would-be API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub requests: u64,
    /// Distinct client IPs (bounded: counting stops at [`MAX_CLIENTS`]).
    pub clients: HashSet<String>,
    /// Schemes seen, with counts.
    pub schemes: BTreeMap<String, u64>,
    /// Identifier hints (`bearer token`, `query api_key`, `header x-api-key`, `cookie sid`).
    pub hints: BTreeMap<String, u64>,
}

/// Distinct clients counted per group at most (memory stays bounded by groups).
pub const MAX_CLIENTS: usize = 100_000;

/// What one record says, once read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub host: Option<String>,
    pub scheme: Option<String>,
    pub path: String,
    pub status: u16,
    pub client: Option<String>,
    pub hints: Vec<String>,
}

/// The first `depth` segments of `path` (query dropped) as a base path: `/shop/cart/1`, 1 →
/// `/shop`; `None` for `/`.
pub fn base_path(path: &str, depth: usize) -> Option<String> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let segs: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .take(depth)
        .collect();
    if segs.is_empty() {
        return None;
    }
    Some(format!("/{}", segs.join("/")))
}

/// A file name stem for base path `base`, following ASE's naming rules, unique among `taken`:
/// `/shop` → `shop`, `/v1/orders` → `v1_orders`, reserved words and bad characters replaced.
pub fn api_name(base: &str, taken: &BTreeSet<String>) -> String {
    let mut name: String = base
        .trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // A reserved word gets an `x` (`/all` → `allx`), keeping its separator.
    if name
        .split(['_', '-'])
        .any(|w| RESERVED_WORDS.iter().any(|r| w.eq_ignore_ascii_case(r)))
    {
        let mut out = String::new();
        let mut word = String::new();
        for c in name.chars().chain(std::iter::once('\0')) {
            if c == '_' || c == '-' || c == '\0' {
                let reserved = RESERVED_WORDS.iter().any(|r| word.eq_ignore_ascii_case(r));
                out.push_str(&word);
                if reserved {
                    out.push('x');
                }
                if c != '\0' {
                    out.push(c);
                }
                word.clear();
            } else {
                word.push(c);
            }
        }
        name = out;
    }
    if !name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        name = format!("api{name}");
    }
    name.truncate(150);
    let mut unique = name.clone();
    let mut n = 2;
    while taken.contains(&unique) || check_name(&unique).is_err() {
        unique = format!("{name}_{n}");
        n += 1;
        if n > 10_000 {
            break;
        }
    }
    unique
}

/// The discovery state: groups by (hostname, base path).
#[derive(Debug, Default)]
pub struct Discovery {
    pub depth: usize,
    pub any_host: bool,
    /// (hostname, url) pairs already defined (`*` hostnames match any host).
    pub known: HashSet<(String, String)>,
    pub groups: BTreeMap<(String, String), Group>,
    /// API names already in use (the root's, the known APIs'): discovered names avoid them.
    pub taken: BTreeSet<String>,
    /// Records read that were not root-API 2xx traffic.
    pub skipped: u64,
}

impl Discovery {
    /// Count one root-API exchange.
    pub fn observe(&mut self, s: &Seen) {
        if !(200..300).contains(&s.status) {
            self.skipped += 1;
            return;
        }
        let Some(base) = base_path(&s.path, self.depth.clamp(1, MAX_DEPTH)) else {
            self.skipped += 1;
            return;
        };
        let host = match (&s.host, self.any_host) {
            (Some(h), false) => crate::router::authority_host(h),
            _ => "*".to_string(),
        };
        let known = |h: &str| self.known.contains(&(h.to_string(), base.clone()));
        if known(&host) || known("*") {
            self.skipped += 1;
            return;
        }
        let g = self.groups.entry((host, base)).or_default();
        g.requests += 1;
        if let Some(c) = &s.client {
            if g.clients.len() < MAX_CLIENTS && !g.clients.contains(c) {
                g.clients.insert(c.clone());
            }
        }
        if let Some(sc) = &s.scheme {
            *g.schemes.entry(sc.to_ascii_lowercase()).or_default() += 1;
        }
        for h in &s.hints {
            *g.hints.entry(h.clone()).or_default() += 1;
        }
    }

    /// The discovered APIs, sorted by hostname and base path, named uniquely: (name, API JSON).
    pub fn apis(&self, jwt: &Value) -> Vec<(String, Value, &Group)> {
        let mut taken = self.taken.clone();
        let mut out = Vec::new();
        for ((host, base), g) in &self.groups {
            let name = api_name(base, &taken);
            taken.insert(name.clone());
            let scheme = g
                .schemes
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(s, _)| s.as_str())
                .filter(|s| *s == "https")
                .unwrap_or("http");
            out.push((name, api_json(base, host, scheme, jwt), g));
        }
        out
    }
}

/// An API JSON file with ASE's defaults, as ASE's tooling writes it.
pub fn api_json(url: &str, hostname: &str, protocol: &str, jwt: &Value) -> Value {
    json!({"api_metadata": {
        "protocol": protocol,
        "url": url,
        "hostname": hostname,
        "cookie": "",
        "cookie_idle_timeout": "200m",
        "logout_api_enabled": false,
        "cookie_persistence_enabled": false,
        "oauth2_access_token": false,
        "is_token_mandatory": false,
        "apikey_qs": "",
        "apikey_header": "",
        "login_url": "",
        "enable_blocking": false,
        "api_mapping": {"internal_url": ""},
        "api_memory_size": "128mb",
        "health_check": false,
        "health_check_interval": 60,
        "health_retry_count": 4,
        "health_url": "",
        "server_ssl": false,
        "servers": [],
        "decoy_config": {"decoy_enabled": false, "response_code": 200, "response_def": "", "response_message": "", "decoy_subpaths": []},
        "username_header": "",
        "jwt": jwt
    }})
}

#[cfg(test)]
mod tests;
