//! The backend half of an API JSON file, the fields the filter ignores because Envoy does their
//! job: `servers[]`, `server_ssl`, the health checks, `api_mapping.internal_url`,
//! `server_connection_quota`, cookie persistence and the WebSocket protocol. Read and
//! type-checked here, rendered by the Envoy and Istio writers. No I/O.

use serde_json::{Map, Value};

use crate::ase_files::{Finding, FolderApi};

/// One `servers[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
    /// `server_connection_quota` (0 = no limit).
    pub quota: u64,
}

/// Active health checking (`health_check: true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `health_url` (default `/`).
    pub path: String,
    /// `health_check_interval`, seconds (default 60).
    pub interval_s: u64,
    /// `health_retry_count` (default 4): failures before a server is out.
    pub retries: u64,
    /// `health_check_headers`, name → value.
    pub headers: Vec<(String, String)>,
}

/// What Envoy (or Istio) needs to route an API to its servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub api: String,
    pub hostname: String,
    pub url: String,
    pub servers: Vec<Server>,
    /// `server_ssl`: TLS to the servers.
    pub tls: bool,
    pub health: Option<Health>,
    /// `api_mapping.internal_url` (`None` when empty).
    pub rewrite: Option<String>,
    /// `cookie` when `cookie_persistence_enabled`: sticky sessions on it.
    pub sticky_cookie: Option<String>,
    /// `protocol: ws`.
    pub websocket: bool,
}

impl Backend {
    /// The sum of the servers' connection quotas, `None` when one of them has none.
    pub fn max_connections(&self) -> Option<u64> {
        if self.servers.is_empty() || self.servers.iter().any(|s| s.quota == 0) {
            return None;
        }
        Some(self.servers.iter().map(|s| s.quota).sum())
    }
}

/// The backends of every API, or the findings (errors) saying which field is wrong.
pub fn backends(apis: &[FolderApi]) -> Result<Vec<Backend>, Vec<Finding>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for api in apis {
        match backend(api) {
            Ok(b) => out.push(b),
            Err((field, message)) => errors.push(Finding::error(
                &api.file,
                Some(&api.name),
                &format!("api_metadata.{field}"),
                message,
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

type FieldError = (String, String);

fn backend(api: &FolderApi) -> Result<Backend, FieldError> {
    let m = &api.meta;
    let servers = match m.get("servers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, s)| server(i, s))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(("servers".into(), "must be an array".into())),
    };
    let health = if flag(m, "health_check")? {
        Some(Health {
            path: text(m, "health_url")?.unwrap_or_else(|| "/".to_string()),
            interval_s: number(m, "health_check_interval", 60)?.max(1),
            retries: number(m, "health_retry_count", 4)?.max(1),
            headers: headers(m)?,
        })
    } else {
        None
    };
    let rewrite = match m.get("api_mapping") {
        Some(Value::Object(map)) => text(map, "internal_url")
            .map_err(|(f, e)| (format!("api_mapping.{f}"), e))?
            .filter(|u| u.starts_with('/')),
        _ => None,
    };
    let sticky_cookie = if flag(m, "cookie_persistence_enabled")? {
        text(m, "cookie")?
    } else {
        None
    };
    let websocket = text(m, "protocol")?.is_some_and(|p| p.eq_ignore_ascii_case("ws"));
    Ok(Backend {
        api: api.name.clone(),
        hostname: api.hostname.clone(),
        url: api.url.clone(),
        servers,
        tls: flag(m, "server_ssl")?,
        health,
        rewrite,
        sticky_cookie,
        websocket,
    })
}

fn server(i: usize, v: &Value) -> Result<Server, FieldError> {
    let field = |k: &str| format!("servers[{i}].{k}");
    let Value::Object(s) = v else {
        return Err((
            format!("servers[{i}]"),
            "must be an object with host and port".into(),
        ));
    };
    let host = match s.get("host") {
        Some(Value::String(h)) if !h.trim().is_empty() => h.trim().to_string(),
        _ => return Err((field("host"), "must be a non-empty string".into())),
    };
    let port = match s.get("port") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(p)) => p.trim().parse::<u64>().ok(),
        _ => None,
    };
    let port = port
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .ok_or((
            field("port"),
            "must be a port number from 1 to 65535".to_string(),
        ))?;
    let quota = number(s, "server_connection_quota", 0)
        .map_err(|(f, e)| (format!("servers[{i}].{f}"), e))?;
    Ok(Server { host, port, quota })
}

fn flag(m: &Map<String, Value>, key: &str) -> Result<bool, FieldError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err((key.into(), "must be a boolean (true or false)".into())),
    }
}

/// A non-empty trimmed string (`""` and missing → `None`).
fn text(m: &Map<String, Value>, key: &str) -> Result<Option<String>, FieldError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err((key.into(), "must be a string".into())),
    }
}

/// A non-negative integer (a JSON number, or a string of digits as some tooling writes).
fn number(m: &Map<String, Value>, key: &str, default: u64) -> Result<u64, FieldError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(default),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or(default)),
        Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => {
            Ok(s.trim().parse().unwrap_or(default))
        }
        Some(_) => Err((key.into(), "must be a non-negative integer".into())),
    }
}

fn headers(m: &Map<String, Value>) -> Result<Vec<(String, String)>, FieldError> {
    match m.get("health_check_headers") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(h)) => h
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) if crate::parse::is_token(k) => Ok((k.clone(), s.clone())),
                _ => Err((
                    format!("health_check_headers.{k}"),
                    "must be a header name with a string value".to_string(),
                )),
            })
            .collect(),
        Some(_) => Err((
            "health_check_headers".into(),
            "must be an object of header name: value".into(),
        )),
    }
}
