//! The enforcement decision for one identified request: deny list, allow list, mandatory token,
//! blocking switches and monitor mode. Data in, decision out; list reads go through
//! [`ListCheck`]. No host calls.

use crate::config::{Api, Ase};
use crate::identity::{Client, IdType};
use crate::lists::{ListKind, Source};

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
}

impl Verdict {
    /// `"allow"` or `"block"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Block => "block",
        }
    }
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The first matching cause: `deny_list:<type>`, `token_missing`, or `allow_list:<type>` when
    /// the allow list overrode a cause. `None` when nothing matched.
    pub reason: Option<String>,
    /// The cause that would have blocked with blocking on (monitor mode).
    pub would_block: Option<String>,
    /// The list source of a deny match (`config`, `attack_list`, `admin`, `detected`).
    pub source: Option<Source>,
    /// A detected attack to record: add this client IP to the deny list as `detected`.
    pub detect_ip: Option<String>,
}

impl Decision {
    /// Allow with no cause.
    pub fn allow() -> Decision {
        Decision {
            verdict: Verdict::Allow,
            reason: None,
            would_block: None,
            source: None,
            detect_ip: None,
        }
    }
}

/// Decide for a request that matched `api` (or none) with the identifiers in `client`.
///
/// Rules (ASE's, seeds 000–002): a request that matched no API is never blocked. Otherwise a cause
/// is the first deny-list hit among ip, token, api_key, cookie, username (in that order), else
/// `token_missing` when the API has `oauth2_access_token` and `is_token_mandatory` and no token
/// was captured. Any captured identifier on the allow list cancels the cause (the allow list
/// wins). A cause blocks only when `enable_firewall` and the API's `enable_blocking` are both on;
/// otherwise the request passes with `would_block` set (monitor mode). A `token_missing` that
/// blocks also asks for the client IP to be added as a detected entry when
/// `enable_ase_detected_attack` is on; in monitor mode nothing is added, since a detected entry
/// would block the client for real on every other API that enforces.
pub fn decide(api: Option<&Api>, ase: &Ase, client: &Client, lists: &impl ListCheck) -> Decision {
    let Some(api) = api else {
        return Decision::allow();
    };
    let mut cause: Option<(String, Option<Source>)> = None;
    'types: for t in IdType::ALL {
        for v in client.deny_candidates(t) {
            if let Some(src) = lists.find(ListKind::Deny, t, v) {
                cause = Some((format!("deny_list:{}", t.as_str()), Some(src)));
                break 'types;
            }
        }
    }
    let mut detect_ip = None;
    if cause.is_none()
        && api.oauth2_access_token
        && api.is_token_mandatory
        && client.token.is_none()
    {
        cause = Some(("token_missing".to_string(), None));
        if ase.enable_ase_detected_attack {
            detect_ip.clone_from(&client.ip);
        }
    }
    let Some((reason, source)) = cause else {
        return Decision::allow();
    };
    for t in IdType::ALL {
        if let Some(v) = client.get(t) {
            if lists.find(ListKind::Allow, t, v).is_some() {
                return Decision {
                    verdict: Verdict::Allow,
                    reason: Some(format!("allow_list:{}", t.as_str())),
                    would_block: None,
                    source: None,
                    detect_ip: None,
                };
            }
        }
    }
    let blocking = ase.enable_firewall && api.enable_blocking;
    Decision {
        verdict: if blocking {
            Verdict::Block
        } else {
            Verdict::Allow
        },
        reason: blocking.then(|| reason.clone()),
        would_block: (!blocking).then_some(reason),
        source,
        detect_ip: detect_ip.filter(|_| blocking),
    }
}

#[cfg(test)]
mod tests;
