//! Client identification: the five ASE identifiers plus username / client id, taken from request
//! headers for the matched API. No host calls.

use serde::Serialize;

pub use crate::ids::IdType;

use crate::config::{Api, ApiKeyLocation, Ase, JwtConfig, JwtLocation};
use crate::jwt::{self, AccessToken, ClaimRule, Claims, JwtError, ACCESS_TOKEN_CLAIMS};
use crate::parse;
use crate::request::Request;

/// The identifiers found in one request. `None` means absent (serialized as a missing field).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Client {
    /// Client IP, canonical text without port (peer, or X-Forwarded-For when enabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// OAuth2 access token (`Authorization: Bearer`, else the `access_token` query parameter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// API key from the configured query parameter or header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Value of the API's session cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// Username from the JWT or the username header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Client id from the JWT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The session cookie percent-decoded, when that differs from [`Client::cookie`]. Checked
    /// against the deny list too (never the allow list, never recorded): PHP and Express decode
    /// cookie values, so to them `evil%2Dsession` is the session `evil-session`.
    #[serde(skip)]
    pub cookie_decoded: Option<String>,
}

impl Client {
    /// Every value of one type the deny list is checked against: [`Client::get`], then for the
    /// cookie its percent-decoded form when that differs.
    pub fn deny_candidates(&self, t: IdType) -> impl Iterator<Item = &str> {
        let decoded = match t {
            IdType::Cookie => self.cookie_decoded.as_deref(),
            _ => None,
        };
        self.get(t).into_iter().chain(decoded)
    }

    /// The identifier of one list type, for deny / allow list lookups.
    pub fn get(&self, t: IdType) -> Option<&str> {
        match t {
            IdType::Ip => self.ip.as_deref(),
            IdType::Token => self.token.as_deref(),
            IdType::ApiKey => self.api_key.as_deref(),
            IdType::Cookie => self.cookie.as_deref(),
            IdType::Username => self.username.as_deref(),
        }
    }
}

/// What happened to the JWT at the API's configured location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JwtStatus {
    /// The payload decoded (claim problems, if any, are in [`JwtOutcome::error`]).
    Ok,
    /// No token at the location.
    Absent,
    /// The token could not be decoded.
    Invalid,
    /// The token is longer than [`jwt::MAX_TOKEN_BYTES`] and was not decoded.
    TooLarge,
}

/// The JWT status and, when something went wrong, why.
///
/// `status` describes the token; `error` is set for `invalid` / `too_large` and also, with status
/// `ok`, when a configured claim could not be read (messages joined with `"; "`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JwtOutcome {
    /// What happened to the token.
    pub status: JwtStatus,
    /// Why decoding failed, or which configured claims could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything identification learned about one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Identity {
    /// The identifiers, for lists and records.
    pub client: Client,
    /// `None` when the API has no `jwt` configuration (or no API matched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtOutcome>,
    /// The parsed access token (PingAuthorize shape), when a token was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<AccessToken>,
    /// Where the username / client id came from: `jwt:<canonical location>` when the JWT gave
    /// either, replaced by `header:<name>` when the username came from `username_header` (used
    /// only when the JWT gave no username).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_provider: Option<String>,
}

/// Identify the client of `req` for the matched `api` (ASE's five identifiers plus client id).
///
/// The IP is found even when no API matched; everything else needs the API's configuration.
/// Repeated headers, query parameters and cookies: the FIRST occurrence wins (for
/// `Authorization`, the first credential with the wanted scheme, also when Envoy joined repeated
/// headers into one comma-separated value). Empty values count as absent.
/// `now_unix_s` decides [`AccessToken::active`]. Never fails and never blocks: problems are
/// reported in [`Identity::jwt`].
pub fn identify(req: &Request, api: Option<&Api>, ase: &Ase, now_unix_s: i64) -> Identity {
    identify_with(req, api, ase, now_unix_s, true)
}

/// As [`identify`]; without `access_token` (nothing records the request) the
/// [`Identity::access_token`] is not built and of the JWT only the configured username and
/// client id claims are.
pub fn identify_with(
    req: &Request,
    api: Option<&Api>,
    ase: &Ase,
    now_unix_s: i64,
    access_token: bool,
) -> Identity {
    let mut id = Identity {
        client: Client {
            ip: client_ip(req, ase),
            ..Client::default()
        },
        ..Identity::default()
    };
    let Some(api) = api else {
        return id;
    };
    // The OAuth2 token and a JWT at `h:authorization:bearer` are the same credential: found once.
    let bearer = std::cell::OnceCell::new();
    let bearer = || *bearer.get_or_init(|| bearer_token(req));
    capture_credentials(req, api, &mut id.client, bearer);

    if let Some(cfg) = &api.jwt {
        let (outcome, decoded) = read_jwt(req, cfg, access_token, bearer);
        id.jwt = Some(outcome);
        if let Some(d) = decoded {
            if d.username.is_some() || d.client_id.is_some() {
                let mut provider = String::with_capacity(32);
                provider.push_str("jwt:");
                cfg.location.push_canonical(&mut provider);
                id.identity_provider = Some(provider);
            }
            if access_token {
                let username = d.username.clone();
                let mut at = AccessToken::from_claims(&d.token, &d.claims, username, now_unix_s);
                // Like the username, the configured client id claim wins over the standard names.
                if d.client_id.is_some() {
                    at.client_id.clone_from(&d.client_id);
                }
                id.access_token = Some(at);
            }
            id.client.username = d.username;
            id.client.client_id = d.client_id;
        }
    }
    if id.client.username.is_none() {
        if let Some(name) = &api.username_header {
            let value = req.header(name).map(str::trim).filter(|v| !v.is_empty());
            if let Some(v) = value {
                id.client.username = Some(v.to_string());
                id.identity_provider = Some(format!("header:{name}"));
            }
        }
    }
    if access_token && id.access_token.is_none() {
        id.access_token = id.client.token.as_deref().map(|t| {
            match jwt::decode_claims(t, |c| ACCESS_TOKEN_CLAIMS.contains(&c)) {
                Ok(claims) => AccessToken::from_claims(t, &claims, None, now_unix_s),
                Err(_) => AccessToken::opaque(t),
            }
        });
    }
    id
}

/// The API's credentials: OAuth2 token, API key, session cookie (and its decoded form).
fn capture_credentials<'r>(
    req: &'r Request,
    api: &Api,
    c: &mut Client,
    bearer: impl Fn() -> Option<&'r str>,
) {
    if api.oauth2_access_token {
        c.token = bearer()
            .map(str::to_string)
            .or_else(|| req.query_param("access_token").map(str::to_string))
            .filter(|t| !t.is_empty());
    }
    c.api_key = match &api.apikey {
        Some(ApiKeyLocation::Query(name)) => req.query_param(name).map(str::to_string),
        Some(ApiKeyLocation::Header(name)) => req.header(name).map(|v| v.trim().to_string()),
        None => None,
    }
    .filter(|v| !v.is_empty());
    c.cookie = api
        .cookie
        .as_deref()
        .and_then(|name| req.cookie(name))
        .filter(|v| !v.is_empty());
    c.cookie_decoded = c
        .cookie
        .as_deref()
        .filter(|v| v.contains('%'))
        .map(|v| parse::percent_decode(v, false))
        .filter(|d| !d.is_empty() && Some(d.as_str()) != c.cookie.as_deref());
}

/// The client IP: the peer, or with `enable_xff` the X-Forwarded-For address chosen by
/// [`parse::xff_client`] (falling back to the peer when XFF has no usable entry there).
fn client_ip(req: &Request, ase: &Ase) -> Option<String> {
    let peer = || req.view.peer.as_deref().and_then(parse::ip_text);
    if !ase.enable_xff || req.header("x-forwarded-for").is_none() {
        return peer();
    }
    let entries = parse::xff_entries(req.view.header_all("x-forwarded-for"));
    parse::xff_client(&entries, ase.xff_num_trusted_hops).or_else(peer)
}

/// Every credential of every `Authorization` header, in order (Envoy joins repeated
/// `Authorization` headers with `,`; [`parse::credentials`] splits them again).
fn authorization(req: &Request) -> impl Iterator<Item = &str> {
    req.view
        .header_all("authorization")
        .flat_map(parse::credentials)
}

/// The first `Authorization` credential that uses the Bearer scheme.
fn bearer_token(req: &Request) -> Option<&str> {
    authorization(req).find_map(parse::bearer)
}

/// The raw token at a JWT location; `None` when absent or empty.
///
/// A custom header (`h:<name>`) is trimmed and an optional `Bearer ` scheme prefix is removed,
/// so `h:authorization` and `h:x-jwt: Bearer eyJ…` both work; of a comma-joined value (a
/// repeated inline header) the first credential is used.
fn locate_jwt<'r>(
    req: &'r Request,
    location: &JwtLocation,
    bearer: impl Fn() -> Option<&'r str>,
) -> Option<String> {
    let token = match location {
        JwtLocation::Query(key) => req.query_param(key).map(str::to_string),
        JwtLocation::Header(name) => req
            .header(name)
            .and_then(|v| parse::credentials(v).next())
            .map(|v| parse::strip_bearer(v).to_string()),
        JwtLocation::Bearer => bearer().map(str::to_string),
        JwtLocation::Mac => authorization(req).find_map(parse::mac_id),
        JwtLocation::Cookie(name) => req.cookie(name),
    };
    token.filter(|t| !t.is_empty())
}

/// A decoded token with the values of the configured username and client id claims.
struct Decoded {
    token: String,
    claims: Claims,
    username: Option<String>,
    client_id: Option<String>,
}

/// Find, decode and read the configured claims of the API's JWT (and, with `access_token`, the
/// claims [`AccessToken::from_claims`] reads).
fn read_jwt<'r>(
    req: &'r Request,
    cfg: &JwtConfig,
    access_token: bool,
    bearer: impl Fn() -> Option<&'r str>,
) -> (JwtOutcome, Option<Decoded>) {
    let Some(token) = locate_jwt(req, &cfg.location, bearer) else {
        return (outcome(JwtStatus::Absent, None), None);
    };
    let keep = |c: &str| {
        cfg.username.as_deref() == Some(c)
            || cfg.clientid.as_deref() == Some(c)
            || (access_token && ACCESS_TOKEN_CLAIMS.contains(&c))
    };
    let claims = match jwt::decode_claims(&token, keep) {
        Ok(claims) => claims,
        Err(e) => {
            let status = match e {
                JwtError::TooLarge => JwtStatus::TooLarge,
                JwtError::Invalid(_) => JwtStatus::Invalid,
            };
            return (outcome(status, Some(e.to_string())), None);
        }
    };
    let mut errors = Vec::new();
    let mut read = |claim: Option<&String>, rule| {
        let r = jwt::claim_text(&claims, claim?, rule);
        r.map_err(|e| errors.push(e.to_string())).ok()
    };
    let username = read(cfg.username.as_ref(), ClaimRule::Username);
    let client_id = read(cfg.clientid.as_ref(), ClaimRule::Scalar);
    let error = (!errors.is_empty()).then(|| errors.join("; "));
    let decoded = Decoded {
        token,
        claims,
        username,
        client_id,
    };
    (outcome(JwtStatus::Ok, error), Some(decoded))
}

fn outcome(status: JwtStatus, error: Option<String>) -> JwtOutcome {
    JwtOutcome { status, error }
}

#[cfg(test)]
mod tests;
