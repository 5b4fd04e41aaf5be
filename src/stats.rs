//! The names of api-warden's counters and gauges (Envoy shows them in admin `/stats` as
//! `wasmcustom.api_warden.*`) and how a request outcome maps onto them. No host calls.

use crate::decision::{Decision, Verdict};
use crate::identity::{Identity, JwtStatus};

/// Every counter api-warden increments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    RequestsTotal,
    RequestsAllowed,
    RequestsBlocked,
    RequestsMonitored,
    RequestsUnmatched,
    BlockedDenyIp,
    BlockedDenyToken,
    BlockedDenyApiKey,
    BlockedDenyCookie,
    BlockedDenyUsername,
    BlockedTokenMissing,
    JwtInvalid,
    JwtTooLarge,
    DetectedAttacks,
    AttackListPollsOk,
    AttackListPollsFailed,
    ExportRecordsSent,
    ExportRecordsDropped,
    ExportBatchesRetried,
    AdminRequests,
    AdminUnauthorized,
    ConfigLoads,
}

impl Counter {
    /// All counters.
    pub const ALL: [Counter; 22] = [
        Counter::RequestsTotal,
        Counter::RequestsAllowed,
        Counter::RequestsBlocked,
        Counter::RequestsMonitored,
        Counter::RequestsUnmatched,
        Counter::BlockedDenyIp,
        Counter::BlockedDenyToken,
        Counter::BlockedDenyApiKey,
        Counter::BlockedDenyCookie,
        Counter::BlockedDenyUsername,
        Counter::BlockedTokenMissing,
        Counter::JwtInvalid,
        Counter::JwtTooLarge,
        Counter::DetectedAttacks,
        Counter::AttackListPollsOk,
        Counter::AttackListPollsFailed,
        Counter::ExportRecordsSent,
        Counter::ExportRecordsDropped,
        Counter::ExportBatchesRetried,
        Counter::AdminRequests,
        Counter::AdminUnauthorized,
        Counter::ConfigLoads,
    ];

    /// The metric name.
    pub fn name(self) -> &'static str {
        match self {
            Counter::RequestsTotal => "api_warden.requests.total",
            Counter::RequestsAllowed => "api_warden.requests.allowed",
            Counter::RequestsBlocked => "api_warden.requests.blocked",
            Counter::RequestsMonitored => "api_warden.requests.monitored",
            Counter::RequestsUnmatched => "api_warden.requests.unmatched",
            Counter::BlockedDenyIp => "api_warden.blocked.deny_list.ip",
            Counter::BlockedDenyToken => "api_warden.blocked.deny_list.token",
            Counter::BlockedDenyApiKey => "api_warden.blocked.deny_list.api_key",
            Counter::BlockedDenyCookie => "api_warden.blocked.deny_list.cookie",
            Counter::BlockedDenyUsername => "api_warden.blocked.deny_list.username",
            Counter::BlockedTokenMissing => "api_warden.blocked.token_missing",
            Counter::JwtInvalid => "api_warden.jwt.invalid",
            Counter::JwtTooLarge => "api_warden.jwt.too_large",
            Counter::DetectedAttacks => "api_warden.detected_attacks",
            Counter::AttackListPollsOk => "api_warden.attack_list.polls_ok",
            Counter::AttackListPollsFailed => "api_warden.attack_list.polls_failed",
            Counter::ExportRecordsSent => "api_warden.export.records_sent",
            Counter::ExportRecordsDropped => "api_warden.export.records_dropped",
            Counter::ExportBatchesRetried => "api_warden.export.batches_retried",
            Counter::AdminRequests => "api_warden.admin.requests",
            Counter::AdminUnauthorized => "api_warden.admin.unauthorized",
            Counter::ConfigLoads => "api_warden.config.loads",
        }
    }
}

/// The counters one finished request increments.
pub fn request_counters(
    matched: bool,
    identity: &Identity,
    decision: Option<&Decision>,
) -> Vec<Counter> {
    let mut out = vec![Counter::RequestsTotal];
    if !matched {
        out.push(Counter::RequestsUnmatched);
    }
    match identity.jwt.as_ref().map(|j| &j.status) {
        Some(JwtStatus::Invalid) => out.push(Counter::JwtInvalid),
        Some(JwtStatus::TooLarge) => out.push(Counter::JwtTooLarge),
        _ => {}
    }
    let Some(d) = decision else {
        out.push(Counter::RequestsAllowed);
        return out;
    };
    if d.detect_ip.is_some() {
        out.push(Counter::DetectedAttacks);
    }
    if d.would_block.is_some() {
        out.push(Counter::RequestsMonitored);
    }
    match d.verdict {
        Verdict::Allow => out.push(Counter::RequestsAllowed),
        Verdict::Block => {
            out.push(Counter::RequestsBlocked);
            out.push(match d.reason.as_deref() {
                Some("deny_list:ip") => Counter::BlockedDenyIp,
                Some("deny_list:token") => Counter::BlockedDenyToken,
                Some("deny_list:api_key") => Counter::BlockedDenyApiKey,
                Some("deny_list:cookie") => Counter::BlockedDenyCookie,
                Some("deny_list:username") => Counter::BlockedDenyUsername,
                _ => Counter::BlockedTokenMissing,
            });
        }
    }
    out
}
