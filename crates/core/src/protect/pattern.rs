//! API pattern enforcement (`api_pattern_enforcement`): allowed methods, content types and
//! protocols, the error reply, and the https redirect. No host calls.

use serde_json::{Map, Value};

use super::{list, status, text, FieldError};
use crate::request::Request;

/// The protocol a client used to reach Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Https,
    Ws,
    Wss,
}

impl Protocol {
    fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Protocol::Http),
            "https" => Some(Protocol::Https),
            "ws" => Some(Protocol::Ws),
            "wss" => Some(Protocol::Wss),
            _ => None,
        }
    }

    /// The request's protocol: TLS or not on the downstream connection (`x-forwarded-proto`,
    /// which Envoy sets from the connection with `use_remote_address: true`, else `:scheme`),
    /// WebSocket when the request asks to upgrade to it.
    pub fn of(req: &Request) -> Protocol {
        let proto = req.header("x-forwarded-proto").unwrap_or(&req.view.scheme);
        let tls = proto.trim().eq_ignore_ascii_case("https");
        let ws = req
            .header("upgrade")
            .is_some_and(|u| u.trim().eq_ignore_ascii_case("websocket"));
        match (ws, tls) {
            (true, true) => Protocol::Wss,
            (true, false) => Protocol::Ws,
            (false, true) => Protocol::Https,
            (false, false) => Protocol::Http,
        }
    }
}

/// What a request violated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Violation {
    Method,
    ContentType,
    Protocol,
}

/// The https redirect answered instead of an error when https is required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub status: u32,
    pub status_text: String,
    pub https_url: String,
}

impl Redirect {
    /// The `Location`: `https_url`, plus the request's path and query when `https_url` has no
    /// path of its own (`https://shop.example` or `https://shop.example/`).
    pub fn location(&self, req: &Request) -> String {
        let base = self.https_url.trim();
        let after_scheme = base.split_once("://").map_or(base, |(_, r)| r);
        let has_path = after_scheme
            .find('/')
            .is_some_and(|i| i + 1 < after_scheme.len());
        if has_path {
            return base.to_string();
        }
        let path = if req.view.path.starts_with('/') {
            req.view.path.as_str()
        } else {
            "/"
        };
        format!("{}{path}", base.trim_end_matches('/'))
    }
}

/// A compiled `api_pattern_enforcement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// Allowed methods, uppercase; empty = any.
    pub methods: Vec<String>,
    /// Allowed media types, lowercase; empty = any.
    pub content_types: Vec<String>,
    /// Allowed protocols; empty = any.
    pub protocols: Vec<Protocol>,
    pub redirect: Option<Redirect>,
    /// `error_code` (default 401) and `error_message_body` (default `401 Unauthorized`).
    pub error_status: u32,
    pub error_text: String,
    pub error_body: String,
}

/// ASE's sample error reply, used when `error_code` / `error_message_body` are empty.
pub const DEFAULT_ERROR_STATUS: u32 = 401;
pub const DEFAULT_ERROR_BODY: &str = "401 Unauthorized";

impl Pattern {
    /// The first violation of this request (`has_body`: a body follows the headers), checked
    /// in the order method, content type, protocol.
    pub fn check(&self, req: &Request, has_body: bool) -> Option<Violation> {
        let m = req.view.method.as_str();
        if !self.methods.is_empty() && !self.methods.iter().any(|a| a.eq_ignore_ascii_case(m)) {
            return Some(Violation::Method);
        }
        if has_body && !self.content_types.is_empty() {
            let mt = req.header("content-type").and_then(media_type);
            if !mt.is_some_and(|mt| self.content_types.contains(&mt)) {
                return Some(Violation::ContentType);
            }
        }
        if !self.protocols.is_empty() && !self.protocols.contains(&Protocol::of(req)) {
            return Some(Violation::Protocol);
        }
        None
    }

    /// The redirect to answer a protocol violation with: https is required and allowed, the
    /// request came without TLS, and `http_redirect.response_code` is set.
    pub fn redirect_for(&self, req: &Request) -> Option<&Redirect> {
        let wants_tls =
            self.protocols.contains(&Protocol::Https) || self.protocols.contains(&Protocol::Wss);
        let plain = matches!(Protocol::of(req), Protocol::Http | Protocol::Ws);
        self.redirect.as_ref().filter(|_| wants_tls && plain)
    }
}

/// The media type of a `content-type` value: lowercase, parameters (`; charset=…`) dropped.
pub fn media_type(content_type: &str) -> Option<String> {
    let mt = content_type.split(';').next()?.trim();
    (!mt.is_empty()).then(|| mt.to_ascii_lowercase())
}

/// Compile an `api_pattern_enforcement` object; `None` when it enforces nothing (ASE's tooling
/// writes empty strings and lists everywhere).
pub fn compile(v: &Map<String, Value>) -> Result<Option<Pattern>, FieldError> {
    const F: &str = "api_pattern_enforcement";
    let methods: Vec<String> = list(&format!("{F}.methods_allowed"), v.get("methods_allowed"))?
        .into_iter()
        .map(|m| m.to_ascii_uppercase())
        .collect();
    let field = format!("{F}.content_type_allowed");
    let mut content_types = Vec::new();
    for c in list(&field, v.get("content_type_allowed"))? {
        content_types.push(
            media_type(&c)
                .ok_or_else(|| FieldError::new(&field, format!("{c:?} is not a media type")))?,
        );
    }
    let field = format!("{F}.protocol_allowed");
    let mut protocols = Vec::new();
    for p in list(&field, v.get("protocol_allowed"))? {
        protocols.push(Protocol::parse(&p).ok_or_else(|| {
            FieldError::new(&field, format!("{p:?} is not one of http, https, ws, wss"))
        })?);
    }
    let redirect = compile_redirect(v.get("http_redirect"))?;
    if methods.is_empty() && content_types.is_empty() && protocols.is_empty() {
        return Ok(None);
    }
    let body = text(
        &format!("{F}.error_message_body"),
        v.get("error_message_body"),
    )?
    .filter(|b| !b.is_empty());
    Ok(Some(Pattern {
        methods,
        content_types,
        protocols,
        redirect,
        error_status: status(&format!("{F}.error_code"), v.get("error_code"))?
            .unwrap_or(DEFAULT_ERROR_STATUS),
        error_text: text(&format!("{F}.error_def"), v.get("error_def"))?
            .unwrap_or_default()
            .to_string(),
        error_body: body.unwrap_or(DEFAULT_ERROR_BODY).to_string(),
    }))
}

fn compile_redirect(v: Option<&Value>) -> Result<Option<Redirect>, FieldError> {
    const F: &str = "api_pattern_enforcement.http_redirect";
    let o = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(FieldError::new(
                F,
                format!("must be an object, got {other}"),
            ));
        }
    };
    let Some(status) = status(&format!("{F}.response_code"), o.get("response_code"))? else {
        return Ok(None);
    };
    if !(300..=399).contains(&status) {
        return Err(FieldError::new(
            format!("{F}.response_code"),
            format!("must be a redirect status (3xx), got {status}"),
        ));
    }
    let url = text(&format!("{F}.https_url"), o.get("https_url"))?.unwrap_or_default();
    if !url.to_ascii_lowercase().starts_with("https://") || url.len() <= "https://".len() {
        return Err(FieldError::new(
            format!("{F}.https_url"),
            format!("must be an https:// URL when response_code is set, got {url:?}"),
        ));
    }
    Ok(Some(Redirect {
        status,
        status_text: text(&format!("{F}.response_def"), o.get("response_def"))?
            .unwrap_or_default()
            .to_string(),
        https_url: url.to_string(),
    }))
}

#[cfg(test)]
mod tests;
