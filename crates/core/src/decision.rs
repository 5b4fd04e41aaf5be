//! The enforcement decision for one identified request: deny list, allow list, mandatory token,
//! blocking switches and monitor mode. Data in, decision out; list reads go through
//! [`ListCheck`]. No host calls.

use std::fmt;

use crate::config::{Api, Ase};
use crate::identity::{Client, IdType};
use crate::lists::{ListKind, Source};
pub use crate::protect::pattern::Violation;

/// Answers "is this value on that list, and from which source?".
pub trait ListCheck {
    /// Where `value` of type `t` is on `list`, if anywhere.
    fn find(&self, list: ListKind, t: IdType, value: &str) -> Option<Source>;
}

impl<S: crate::lists::Store> ListCheck for crate::lists::Lookup<'_, S> {
    fn find(&self, list: ListKind, t: IdType, value: &str) -> Option<Source> {
        crate::lists::Lookup::find(self, list, t, value)
    }
}

/// Allow or block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Block,
    /// Answered with pattern enforcement's https redirect (not forwarded, not a block).
    Redirect,
}

impl Verdict {
    /// `"allow"`, `"block"` or `"redirect"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Block => "block",
            Verdict::Redirect => "redirect",
        }
    }
}

/// Why a request is (or, in monitor mode, would be) blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// An identifier of this type is on the deny list.
    DenyList(IdType),
    /// The API requires an OAuth2 token and none was sent.
    TokenMissing,
    /// The request touched a decoy API or sub-path.
    Decoy,
    /// The request violated the API's pattern enforcement.
    Pattern(Violation),
    /// The client is over the API's `client_spike_threshold`.
    FlowControl,
    /// The sideband service blocked the request (or failed, with `fail_open: false`).
    Sideband,
}

impl Cause {
    /// The reason as records, filter states and logs spell it: `deny_list:<type>`, `token_missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::DenyList(IdType::Ip) => "deny_list:ip",
            Cause::DenyList(IdType::Token) => "deny_list:token",
            Cause::DenyList(IdType::ApiKey) => "deny_list:api_key",
            Cause::DenyList(IdType::Cookie) => "deny_list:cookie",
            Cause::DenyList(IdType::Username) => "deny_list:username",
            Cause::TokenMissing => "token_missing",
            Cause::Decoy => "decoy",
            Cause::Pattern(Violation::Method) => "pattern:method",
            Cause::Pattern(Violation::ContentType) => "pattern:content_type",
            Cause::Pattern(Violation::Protocol) => "pattern:protocol",
            Cause::FlowControl => "flow_control",
            Cause::Sideband => "sideband",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a cause was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Blocking is on: the cause blocks.
    Enforced,
    /// Blocking is off (`enable_firewall` or the API's `enable_blocking`): the request passes and
    /// the record says what would have blocked it.
    Monitored,
    /// An identifier of this type is on the allow list: the cause is cancelled.
    AllowListed(IdType),
}

/// `allow_list:<type>`, the reason recorded when the allow list cancelled a cause.
fn allow_list_reason(t: IdType) -> &'static str {
    match t {
        IdType::Ip => "allow_list:ip",
        IdType::Token => "allow_list:token",
        IdType::ApiKey => "allow_list:api_key",
        IdType::Cookie => "allow_list:cookie",
        IdType::Username => "allow_list:username",
    }
}

/// Something the adapter must do because of a decision (the pure pipeline never writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Add `value` of type `id_type` to the deny list as api-warden's own detection (`source`
    /// `detected`, `decoy` or `pattern`), expiring after the configured `detected_attack_ttl_s`.
    AddDetected {
        id_type: IdType,
        value: String,
        source: Source,
    },
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The first matching cause, if any (also when monitored or allow-listed).
    pub cause: Option<Cause>,
    /// How the cause was applied (`Enforced` when there is none).
    pub mode: Mode,
    /// The list source of a deny match (`config`, `attack_list`, `admin`, `detected`); `None` when
    /// the allow list cancelled it.
    pub source: Option<Source>,
    /// What the adapter must carry out (detected entries to add).
    pub effects: Vec<Effect>,
    /// The request touched a decoy: it is answered with the decoy response in every mode.
    pub decoy: bool,
    /// Flow control's `Retry-After` (seconds) when the client is over its threshold.
    pub retry_after_s: Option<u32>,
    /// Flow control could not count this request (shared-data contention): let through.
    pub flow_uncounted: bool,
}

impl Decision {
    /// Allow with no cause.
    pub fn allow() -> Decision {
        Decision {
            verdict: Verdict::Allow,
            cause: None,
            mode: Mode::Enforced,
            source: None,
            effects: Vec::new(),
            decoy: false,
            retry_after_s: None,
            flow_uncounted: false,
        }
    }

    /// The recorded reason: the cause that blocked, or `allow_list:<type>` when the allow list
    /// cancelled one; `None` when nothing matched or in monitor mode.
    pub fn reason(&self) -> Option<&'static str> {
        match (self.mode, self.cause) {
            (Mode::AllowListed(t), Some(_)) => Some(allow_list_reason(t)),
            (Mode::Enforced, Some(c)) => Some(c.as_str()),
            _ => None,
        }
    }

    /// The cause that would have blocked with blocking on (monitor mode).
    pub fn would_block(&self) -> Option<&'static str> {
        match (self.mode, self.cause) {
            (Mode::Monitored, Some(c)) => Some(c.as_str()),
            _ => None,
        }
    }

    /// The client IP this decision asks to add as a detected entry, if any.
    pub fn detected_ip(&self) -> Option<&str> {
        self.effects.iter().find_map(|e| match e {
            Effect::AddDetected {
                id_type: IdType::Ip,
                value,
                ..
            } => Some(value.as_str()),
            Effect::AddDetected { .. } => None,
        })
    }
}

/// What the pure protections found before the lists are consulted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Local {
    /// The request is on a decoy API or sub-path.
    pub decoy: bool,
    /// The request violates the API's pattern enforcement.
    pub violation: Option<Violation>,
    /// The violation is a protocol one answered with the API's https redirect.
    pub redirect: bool,
}

/// Decide for a request that matched `api` (or none) with the identifiers in `client` and what
/// the local protections found.
///
/// Rules (ASE's, seeds 000–002 and ASE's inline protections): a request that matched no API is
/// never blocked. Otherwise the cause is, in this order: a decoy; a pattern violation; the first
/// deny-list hit among ip, token, api_key, cookie, username; `token_missing` when the API has
/// `oauth2_access_token` and `is_token_mandatory` and no token was captured. Any captured
/// identifier on the allow list cancels the cause (the allow list wins). A cause blocks only when
/// `enable_firewall` and the API's `enable_blocking` are both on; otherwise the request passes
/// with `would_block` set (monitor mode). A decoy is answered as a decoy in every mode.
///
/// Detections (with `enable_ase_detected_attack`, and only when the cause blocks: in monitor
/// mode a detected entry would block the client for real on every other API that enforces): a
/// decoy deny-lists the client IP (source `decoy`); a pattern violation its token, else its
/// cookie, else its IP (source `pattern`), except when answered with the https redirect; a
/// `token_missing` the client IP (source `detected`). Flow control is decided after this, by the
/// pipeline.
pub fn decide(
    api: Option<&Api>,
    ase: &Ase,
    client: &Client,
    lists: &impl ListCheck,
    local: Local,
) -> Decision {
    let Some(api) = api else {
        return Decision::allow();
    };
    let found = if local.decoy {
        Some((Cause::Decoy, None))
    } else if let Some(v) = local.violation {
        Some((Cause::Pattern(v), None))
    } else {
        first_cause(api, client, lists)
    };
    let Some((cause, source)) = found else {
        return Decision::allow();
    };
    let mut d = Decision {
        cause: Some(cause),
        decoy: local.decoy,
        ..Decision::allow()
    };
    if let Some(t) = allow_listed(client, lists) {
        d.mode = Mode::AllowListed(t);
        return d;
    }
    if !(ase.enable_firewall && api.enable_blocking) {
        d.mode = Mode::Monitored;
        d.source = source;
        return d;
    }
    d.source = source;
    d.verdict = if local.redirect && matches!(cause, Cause::Pattern(Violation::Protocol)) {
        Verdict::Redirect
    } else {
        Verdict::Block
    };
    if ase.enable_ase_detected_attack && d.verdict == Verdict::Block {
        d.effects.extend(detection(cause, client));
    }
    d
}

/// The deny-list entry a blocking cause asks for, if any.
fn detection(cause: Cause, client: &Client) -> Option<Effect> {
    let (id_type, value, source) = match cause {
        Cause::Decoy => (IdType::Ip, client.ip.as_ref()?, Source::Decoy),
        Cause::TokenMissing => (IdType::Ip, client.ip.as_ref()?, Source::Detected),
        Cause::Pattern(_) => [IdType::Token, IdType::Cookie, IdType::Ip]
            .into_iter()
            .find_map(|t| {
                let v = match t {
                    IdType::Token => client.token.as_ref(),
                    IdType::Cookie => client.cookie.as_ref(),
                    _ => client.ip.as_ref(),
                };
                v.map(|v| (t, v, Source::Pattern))
            })?,
        Cause::DenyList(_) | Cause::FlowControl | Cause::Sideband => return None,
    };
    Some(Effect::AddDetected {
        id_type,
        value: value.clone(),
        source,
    })
}

/// The first deny-list hit among ip, token, api_key, cookie, username, else `token_missing`.
fn first_cause(
    api: &Api,
    client: &Client,
    lists: &impl ListCheck,
) -> Option<(Cause, Option<Source>)> {
    for t in IdType::ALL {
        for v in client.deny_candidates(t) {
            if let Some(src) = lists.find(ListKind::Deny, t, v) {
                return Some((Cause::DenyList(t), Some(src)));
            }
        }
    }
    (api.oauth2_access_token && api.is_token_mandatory && client.token.is_none())
        .then_some((Cause::TokenMissing, None))
}

/// The first identifier type whose captured value is on the allow list.
pub fn allow_listed(client: &Client, lists: &impl ListCheck) -> Option<IdType> {
    IdType::ALL.into_iter().find(|&t| {
        client
            .get(t)
            .is_some_and(|v| lists.find(ListKind::Allow, t, v).is_some())
    })
}

#[cfg(test)]
mod tests;
