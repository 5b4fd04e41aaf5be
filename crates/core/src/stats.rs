//! The names of api-warden's counters and gauges (Envoy shows them in admin `/stats` as
//! `wasmcustom.api_warden.*`), how a request outcome maps onto the counters, and the list-size
//! gauges read from the list metadata. No host calls.

use crate::decision::{Cause, Decision, Mode, Verdict, Violation};
use crate::identity::{IdType, Identity, JwtStatus};
use crate::lists::{ConfigLists, ListKind, Meta};

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
    BlockedDecoy,
    BlockedPatternMethod,
    BlockedPatternContentType,
    BlockedPatternProtocol,
    BlockedFlowControl,
    BlockedSideband,
    SidebandRequests,
    SidebandAllowed,
    SidebandBlocked,
    SidebandErrors,
    SidebandTimeouts,
    SidebandSkipped,
    SidebandResponseCalls,
    SidebandResponseCallsFailed,
    SidebandAseRequests,
    SidebandAseAllowed,
    SidebandAseBlocked,
    SidebandAseErrors,
    SidebandAseTimeouts,
    SidebandAseSkipped,
    SidebandAseResponseCalls,
    SidebandAseResponseCallsFailed,
    SidebandPazRequests,
    SidebandPazAllowed,
    SidebandPazBlocked,
    SidebandPazErrors,
    SidebandPazTimeouts,
    SidebandPazSkipped,
    SidebandPazResponseCalls,
    SidebandPazResponseCallsFailed,
    SidebandPazRewrittenRequests,
    SidebandPazRewrittenResponses,
    SidebandPazResponseTooLarge,
    SidebandPazRequestTooLarge,
    SidebandPazRateLimited,
    DecoyHits,
    Redirects,
    FlowControlUncounted,
    JwtInvalid,
    JwtTooLarge,
    DetectedAttacks,
    AttackListPollsOk,
    AttackListPollsFailed,
    AttackListNotModified,
    ExportRecordsSent,
    ExportRecordsDropped,
    ExportBatchesRetried,
    AdminRequests,
    AdminUnauthorized,
    ConfigLoads,
}

impl Counter {
    /// The counter of requests blocked by `cause` (every cause has one).
    pub fn blocked_by(cause: Cause) -> Counter {
        match cause {
            Cause::DenyList(IdType::Ip) => Counter::BlockedDenyIp,
            Cause::DenyList(IdType::Token) => Counter::BlockedDenyToken,
            Cause::DenyList(IdType::ApiKey) => Counter::BlockedDenyApiKey,
            Cause::DenyList(IdType::Cookie) => Counter::BlockedDenyCookie,
            Cause::DenyList(IdType::Username) => Counter::BlockedDenyUsername,
            Cause::TokenMissing => Counter::BlockedTokenMissing,
            Cause::Decoy => Counter::BlockedDecoy,
            Cause::Pattern(Violation::Method) => Counter::BlockedPatternMethod,
            Cause::Pattern(Violation::ContentType) => Counter::BlockedPatternContentType,
            Cause::Pattern(Violation::Protocol) => Counter::BlockedPatternProtocol,
            Cause::FlowControl => Counter::BlockedFlowControl,
            Cause::Sideband => Counter::BlockedSideband,
        }
    }

    /// All counters.
    pub const ALL: [Counter; 61] = [
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
        Counter::BlockedDecoy,
        Counter::BlockedPatternMethod,
        Counter::BlockedPatternContentType,
        Counter::BlockedPatternProtocol,
        Counter::BlockedFlowControl,
        Counter::BlockedSideband,
        Counter::SidebandRequests,
        Counter::SidebandAllowed,
        Counter::SidebandBlocked,
        Counter::SidebandErrors,
        Counter::SidebandTimeouts,
        Counter::SidebandSkipped,
        Counter::SidebandResponseCalls,
        Counter::SidebandResponseCallsFailed,
        Counter::SidebandAseRequests,
        Counter::SidebandAseAllowed,
        Counter::SidebandAseBlocked,
        Counter::SidebandAseErrors,
        Counter::SidebandAseTimeouts,
        Counter::SidebandAseSkipped,
        Counter::SidebandAseResponseCalls,
        Counter::SidebandAseResponseCallsFailed,
        Counter::SidebandPazRequests,
        Counter::SidebandPazAllowed,
        Counter::SidebandPazBlocked,
        Counter::SidebandPazErrors,
        Counter::SidebandPazTimeouts,
        Counter::SidebandPazSkipped,
        Counter::SidebandPazResponseCalls,
        Counter::SidebandPazResponseCallsFailed,
        Counter::SidebandPazRewrittenRequests,
        Counter::SidebandPazRewrittenResponses,
        Counter::SidebandPazResponseTooLarge,
        Counter::SidebandPazRequestTooLarge,
        Counter::SidebandPazRateLimited,
        Counter::DecoyHits,
        Counter::Redirects,
        Counter::FlowControlUncounted,
        Counter::JwtInvalid,
        Counter::JwtTooLarge,
        Counter::DetectedAttacks,
        Counter::AttackListPollsOk,
        Counter::AttackListPollsFailed,
        Counter::AttackListNotModified,
        Counter::ExportRecordsSent,
        Counter::ExportRecordsDropped,
        Counter::ExportBatchesRetried,
        Counter::AdminRequests,
        Counter::AdminUnauthorized,
        Counter::ConfigLoads,
    ];

    /// The per-service twin of a sideband total (`api_warden.sideband.<service>.<name>`).
    pub fn for_service(self, service: crate::sideband::Service) -> Option<Counter> {
        use crate::sideband::Service::{Ase, PingAuthorize};
        Some(match (self, service) {
            (Counter::SidebandRequests, Ase) => Counter::SidebandAseRequests,
            (Counter::SidebandRequests, PingAuthorize) => Counter::SidebandPazRequests,
            (Counter::SidebandAllowed, Ase) => Counter::SidebandAseAllowed,
            (Counter::SidebandAllowed, PingAuthorize) => Counter::SidebandPazAllowed,
            (Counter::SidebandBlocked, Ase) => Counter::SidebandAseBlocked,
            (Counter::SidebandBlocked, PingAuthorize) => Counter::SidebandPazBlocked,
            (Counter::SidebandErrors, Ase) => Counter::SidebandAseErrors,
            (Counter::SidebandErrors, PingAuthorize) => Counter::SidebandPazErrors,
            (Counter::SidebandTimeouts, Ase) => Counter::SidebandAseTimeouts,
            (Counter::SidebandTimeouts, PingAuthorize) => Counter::SidebandPazTimeouts,
            (Counter::SidebandSkipped, Ase) => Counter::SidebandAseSkipped,
            (Counter::SidebandSkipped, PingAuthorize) => Counter::SidebandPazSkipped,
            (Counter::SidebandResponseCalls, Ase) => Counter::SidebandAseResponseCalls,
            (Counter::SidebandResponseCalls, PingAuthorize) => Counter::SidebandPazResponseCalls,
            (Counter::SidebandResponseCallsFailed, Ase) => Counter::SidebandAseResponseCallsFailed,
            (Counter::SidebandResponseCallsFailed, PingAuthorize) => {
                Counter::SidebandPazResponseCallsFailed
            }
            _ => return None,
        })
    }

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
            Counter::BlockedDecoy => "api_warden.blocked.decoy",
            Counter::BlockedPatternMethod => "api_warden.blocked.pattern.method",
            Counter::BlockedPatternContentType => "api_warden.blocked.pattern.content_type",
            Counter::BlockedPatternProtocol => "api_warden.blocked.pattern.protocol",
            Counter::BlockedFlowControl => "api_warden.blocked.flow_control",
            Counter::BlockedSideband => "api_warden.blocked.sideband",
            Counter::SidebandRequests => "api_warden.sideband.requests",
            Counter::SidebandAllowed => "api_warden.sideband.allowed",
            Counter::SidebandBlocked => "api_warden.sideband.blocked",
            Counter::SidebandErrors => "api_warden.sideband.errors",
            Counter::SidebandTimeouts => "api_warden.sideband.timeouts",
            Counter::SidebandSkipped => "api_warden.sideband.skipped",
            Counter::SidebandResponseCalls => "api_warden.sideband.response_calls",
            Counter::SidebandResponseCallsFailed => "api_warden.sideband.response_calls_failed",
            Counter::SidebandAseRequests => "api_warden.sideband.ase.requests",
            Counter::SidebandAseAllowed => "api_warden.sideband.ase.allowed",
            Counter::SidebandAseBlocked => "api_warden.sideband.ase.blocked",
            Counter::SidebandAseErrors => "api_warden.sideband.ase.errors",
            Counter::SidebandAseTimeouts => "api_warden.sideband.ase.timeouts",
            Counter::SidebandAseSkipped => "api_warden.sideband.ase.skipped",
            Counter::SidebandAseResponseCalls => "api_warden.sideband.ase.response_calls",
            Counter::SidebandAseResponseCallsFailed => {
                "api_warden.sideband.ase.response_calls_failed"
            }
            Counter::SidebandPazRequests => "api_warden.sideband.pingauthorize.requests",
            Counter::SidebandPazAllowed => "api_warden.sideband.pingauthorize.allowed",
            Counter::SidebandPazBlocked => "api_warden.sideband.pingauthorize.blocked",
            Counter::SidebandPazErrors => "api_warden.sideband.pingauthorize.errors",
            Counter::SidebandPazTimeouts => "api_warden.sideband.pingauthorize.timeouts",
            Counter::SidebandPazSkipped => "api_warden.sideband.pingauthorize.skipped",
            Counter::SidebandPazResponseCalls => "api_warden.sideband.pingauthorize.response_calls",
            Counter::SidebandPazResponseCallsFailed => {
                "api_warden.sideband.pingauthorize.response_calls_failed"
            }
            Counter::SidebandPazRewrittenRequests => {
                "api_warden.sideband.pingauthorize.rewritten_requests"
            }
            Counter::SidebandPazRewrittenResponses => {
                "api_warden.sideband.pingauthorize.rewritten_responses"
            }
            Counter::SidebandPazResponseTooLarge => {
                "api_warden.sideband.pingauthorize.response_too_large"
            }
            Counter::SidebandPazRequestTooLarge => {
                "api_warden.sideband.pingauthorize.request_too_large"
            }
            Counter::SidebandPazRateLimited => "api_warden.sideband.pingauthorize.rate_limited",
            Counter::DecoyHits => "api_warden.decoy.hits",
            Counter::Redirects => "api_warden.redirects",
            Counter::FlowControlUncounted => "api_warden.flow_control.uncounted",
            Counter::JwtInvalid => "api_warden.jwt.invalid",
            Counter::JwtTooLarge => "api_warden.jwt.too_large",
            Counter::DetectedAttacks => "api_warden.detected_attacks",
            Counter::AttackListPollsOk => "api_warden.attack_list.polls_ok",
            Counter::AttackListPollsFailed => "api_warden.attack_list.polls_failed",
            Counter::AttackListNotModified => "api_warden.attack_list.not_modified",
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
    if !d.effects.is_empty() {
        out.push(Counter::DetectedAttacks);
    }
    if d.decoy {
        out.push(Counter::DecoyHits);
    }
    if d.flow_uncounted {
        out.push(Counter::FlowControlUncounted);
    }
    if d.mode == Mode::Monitored && d.cause.is_some() {
        out.push(Counter::RequestsMonitored);
    }
    match (d.verdict, d.cause) {
        (Verdict::Block, Some(c)) => out.extend([Counter::RequestsBlocked, Counter::blocked_by(c)]),
        (Verdict::Block, None) => out.push(Counter::RequestsBlocked),
        (Verdict::Allow, _) => out.push(Counter::RequestsAllowed),
        (Verdict::Redirect, _) => out.push(Counter::Redirects),
    }
    out
}

/// The sideband counters of one request's call report: each total
/// (`api_warden.sideband.<name>`) with its per-service twin, and PingAuthorize's own.
pub fn sideband_counters(r: &crate::sideband::Report) -> Vec<Counter> {
    use crate::sideband::{Service, Verdict};
    let service = if r.service == Service::PingAuthorize.as_str() {
        Service::PingAuthorize
    } else {
        Service::Ase
    };
    let mut totals = Vec::with_capacity(6);
    if r.outcome != Verdict::Skipped {
        totals.push(Counter::SidebandRequests);
    }
    totals.push(match r.outcome {
        Verdict::Allow => Counter::SidebandAllowed,
        Verdict::Block => Counter::SidebandBlocked,
        Verdict::Error => Counter::SidebandErrors,
        Verdict::Skipped => Counter::SidebandSkipped,
    });
    if r.timed_out {
        totals.push(Counter::SidebandTimeouts);
    }
    if let Some(p) = &r.response_phase {
        if p.called {
            totals.push(Counter::SidebandResponseCalls);
        }
        if p.outcome == Verdict::Error {
            // A failed call, whichever phase: `errors` too.
            totals.extend([
                Counter::SidebandResponseCallsFailed,
                Counter::SidebandErrors,
            ]);
        }
        if p.timed_out {
            totals.push(Counter::SidebandTimeouts);
        }
    }
    let mut out = Vec::with_capacity(2 * totals.len() + 3);
    for c in totals {
        out.push(c);
        out.extend(c.for_service(service));
    }
    let n = r.notes;
    for (on, c) in [
        (
            r.rewritten_request == Some(true),
            Counter::SidebandPazRewrittenRequests,
        ),
        (
            r.rewritten_response == Some(true),
            Counter::SidebandPazRewrittenResponses,
        ),
        (n.request_too_large, Counter::SidebandPazRequestTooLarge),
        (n.response_too_large, Counter::SidebandPazResponseTooLarge),
        (n.rate_limited, Counter::SidebandPazRateLimited),
    ] {
        if on {
            out.push(c);
        }
    }
    out
}

/// Where list entries come from, as the last part of a list gauge's name: `config` (the plugin
/// configuration), `dynamic` (admin API and detected attacks; expired entries count until their
/// bucket is next updated) and `attack_list` (the analytics engine's feed, deny list only).
pub const LIST_SOURCES: [&str; 3] = ["config", "dynamic", "attack_list"];

/// Every list-size gauge, `api_warden.lists.<deny_list|allow_list>.<type>.<source>`, in a fixed
/// order (the allow list has no `attack_list` source): define these once, then set them from
/// [`list_gauges`].
pub fn list_gauge_names() -> Vec<String> {
    let mut out = Vec::with_capacity(25);
    for list in [ListKind::Deny, ListKind::Allow] {
        for t in IdType::ALL {
            for src in LIST_SOURCES {
                if list == ListKind::Allow && src == "attack_list" {
                    continue;
                }
                out.push(format!(
                    "api_warden.lists.{}.{}.{src}",
                    list.as_str(),
                    t.as_str()
                ));
            }
        }
    }
    out
}

/// The list sizes, in the order and with the names of [`list_gauge_names`].
pub fn list_gauges(meta: &Meta, config: &ConfigLists) -> Vec<(String, u64)> {
    let names = list_gauge_names();
    let mut values = Vec::with_capacity(names.len());
    for (li, list) in [ListKind::Deny, ListKind::Allow].into_iter().enumerate() {
        // `Meta`'s per-type arrays follow `IdType::ALL`.
        for (ti, t) in IdType::ALL.into_iter().enumerate() {
            values.push(config.len(list, t) as u64);
            let dynamic = meta
                .dyn_count
                .get(li)
                .and_then(|l| l.get(ti))
                .copied()
                .unwrap_or(0);
            values.push(u64::from(dynamic));
            if list == ListKind::Deny {
                let feed = if meta.generation == 0 {
                    0
                } else {
                    meta.feed_count.get(ti).copied().unwrap_or(0)
                };
                values.push(u64::from(feed));
            }
        }
    }
    names.into_iter().zip(values).collect()
}

#[cfg(test)]
mod tests;
