//! Sideband mode: Envoy as the gateway of an external decision service that api-warden calls per
//! request through the pipeline's call-and-resume steps. This module owns the `sideband`
//! configuration section, the per-VM circuit breaker that stops calling a service that is down,
//! and the report each request's record carries; [`ase`] holds PingIntelligence ASE's contract,
//! [`paz`] PingAuthorize's. No host calls.

pub mod ase;
pub mod paz;

use std::cell::RefCell;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{ConfigError, Result};
use crate::pipeline::External;
use crate::services::Section;

/// Which service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// PingIntelligence ASE's sideband API (`/ase/request`, `/ase/response`).
    Ase,
    /// PingAuthorize's Sideband API (`/sideband/request`, `/sideband/response`).
    PingAuthorize,
}

impl Service {
    /// The name in configuration and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Ase => "ase",
            Service::PingAuthorize => "pingauthorize",
        }
    }
}

/// Longest sideband token accepted (ASE's own tokens are 32 lowercase letters and digits).
pub const MAX_TOKEN_LEN: usize = 128;
/// Bounds of `timeout_ms`.
pub const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 1..=60_000;

/// The `sideband` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidebandSettings {
    pub service: Service,
    /// The Envoy cluster of the service (primary / secondary failover is the cluster's job).
    pub cluster: String,
    /// `:authority` of the calls (default: the cluster name).
    pub authority: String,
    /// Prefix of the service's paths (`""` or `/x`, no trailing slash).
    pub path_prefix: String,
    /// ASE: `ASE-Token` sent on both calls, when set. PingAuthorize: the shared secret (required).
    pub token: Option<String>,
    pub timeout_ms: u64,
    /// On an error answer, a timeout or no answer: forward (true) or answer 503 (ASE) / 502
    /// (PingAuthorize) (false).
    pub fail_open: bool,
    /// ASE: report each upstream response (`/ase/response`), fire and forget. PingAuthorize:
    /// send each upstream response to `/sideband/response` and send the client its answer.
    pub response_call: bool,
    /// Call only for requests that matched a configured API (ASE).
    pub only_configured_apis: bool,
    /// PingAuthorize: the header carrying the secret (lowercase; default `client-token`).
    pub secret_header: String,
    /// PingAuthorize: the largest request or response body sent to the service.
    pub max_body_bytes: usize,
}

/// Keys of the `sideband` section for ASE (an unknown one is an error, as in api-warden's own
/// sections); [`paz::KEYS`] for PingAuthorize.
pub const KEYS: &[&str] = &[
    "service",
    "cluster",
    "authority",
    "path_prefix",
    "token",
    "timeout_ms",
    "fail_open",
    "response_call",
    "only_configured_apis",
];

/// Parse the `sideband` section (`None` when absent: sideband mode off).
pub fn parse(extra: &Map<String, Value>) -> Result<Option<SidebandSettings>> {
    let service = match extra.get("sideband").and_then(|v| v.get("service")) {
        None => Service::Ase,
        Some(v) => match v.as_str() {
            Some("ase") => Service::Ase,
            Some("pingauthorize") => Service::PingAuthorize,
            _ => {
                return Err(ConfigError::field(
                    "sideband.service",
                    format!(
                        "{v} is not a supported service (supported: \"ase\", \"pingauthorize\")"
                    ),
                ))
            }
        },
    };
    let keys = match service {
        Service::Ase => KEYS,
        Service::PingAuthorize => paz::KEYS,
    };
    let Some(s) = Section::open(extra, "sideband", keys)? else {
        return Ok(None);
    };
    let cluster = s.required("cluster")?;
    if cluster.is_empty() {
        return Err(ConfigError::field("sideband.cluster", "is empty"));
    }
    let path_prefix = s.string("path_prefix")?.unwrap_or_default();
    if !(path_prefix.is_empty() || path_prefix.starts_with('/')) || path_prefix.ends_with('/') {
        return Err(ConfigError::field(
            "sideband.path_prefix",
            format!("{path_prefix:?} must be empty or start with / and not end with /"),
        ));
    }
    let (token, secret_header, max_body_bytes) = match service {
        Service::Ase => (ase_token(&s)?, String::new(), 0),
        Service::PingAuthorize => {
            let (secret, header, max) = paz::parse_settings(&s)?;
            (Some(secret), header, max)
        }
    };
    let default_timeout = match service {
        Service::Ase => 1000,
        Service::PingAuthorize => paz::DEFAULT_TIMEOUT_MS,
    };
    let timeout_ms = s.uint("timeout_ms")?.unwrap_or(default_timeout);
    if !TIMEOUT_MS.contains(&timeout_ms) {
        return Err(ConfigError::field(
            "sideband.timeout_ms",
            format!(
                "({timeout_ms}) must be between {} and {} ms",
                TIMEOUT_MS.start(),
                TIMEOUT_MS.end()
            ),
        ));
    }
    Ok(Some(SidebandSettings {
        service,
        authority: s.string("authority")?.unwrap_or_default(),
        cluster,
        path_prefix,
        token,
        timeout_ms,
        // An authorization decision fails closed; ASE's analytics fail open.
        fail_open: s.flag("fail_open")?.unwrap_or(service == Service::Ase),
        response_call: s.flag("response_call")?.unwrap_or(true),
        only_configured_apis: s.flag("only_configured_apis")?.unwrap_or(false),
        secret_header,
        max_body_bytes,
    }))
}

/// ASE's optional `token`.
fn ase_token(s: &Section<'_>) -> Result<Option<String>> {
    let token = s.string("token")?.filter(|t| !t.is_empty());
    if let Some(t) = &token {
        if t.len() > MAX_TOKEN_LEN || !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::field(
                "sideband.token",
                format!("must be at most {MAX_TOKEN_LEN} visible ASCII characters (ASE's tokens are 32 lowercase letters and digits)"),
            ));
        }
    }
    Ok(token)
}

/// The decision service for these settings, as the pipeline's [`External`].
pub fn external(
    settings: &SidebandSettings,
    block_response: &crate::config::BlockResponse,
) -> Box<dyn External> {
    match settings.service {
        Service::Ase => Box::new(ase::AseSideband::new(
            settings.clone(),
            block_response.clone(),
        )),
        Service::PingAuthorize => Box::new(paz::PazSideband::new(settings.clone())),
    }
}

/// What the call did for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The service let the request through.
    Allow,
    /// The service blocked it.
    Block,
    /// The service answered with an error, timed out, or could not be reached.
    Error,
    /// Not called: the service failed repeatedly and the breaker is open.
    Skipped,
}

/// The record's `ase.sideband`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub service: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub outcome: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the call left (Unix ms); not serialized.
    #[serde(skip)]
    pub sent_ms: u64,
    /// The answer came after the timeout (no status): counted as a timeout.
    #[serde(skip)]
    pub timed_out: bool,
    /// PingAuthorize: the response call, when one was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_phase: Option<Phase>,
    /// PingAuthorize: whether the service's answer changed the forwarded request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewritten_request: Option<bool>,
    /// PingAuthorize: whether the service's answer changed the response sent to the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewritten_response: Option<bool>,
    /// What else the counters need; not serialized.
    #[serde(skip)]
    pub notes: Notes,
}

impl Report {
    /// A call of `service` leaving at `now_ms` (outcome `error` until answered).
    pub fn new(service: Service, now_ms: u64) -> Report {
        let paz = service == Service::PingAuthorize;
        Report {
            service: service.as_str(),
            status: None,
            latency_ms: 0,
            outcome: Verdict::Error,
            error: None,
            sent_ms: now_ms,
            timed_out: false,
            response_phase: None,
            rewritten_request: paz.then_some(false),
            rewritten_response: paz.then_some(false),
            notes: Notes::default(),
        }
    }
}

impl Report {
    /// The request (or response, `response`) was held for a body that never came (Envoy without
    /// `allow_on_headers_stop_iteration`): no call was made.
    pub fn body_never_came(&mut self, response: bool) {
        let error = format!(
            "the {} body never reached the filter (set allow_on_headers_stop_iteration: true); not called",
            if response { "response" } else { "request" }
        );
        if response {
            self.response_phase = Some(Phase {
                error: Some(error),
                called: false,
                ..Phase::new(self.sent_ms)
            });
        } else {
            self.outcome = Verdict::Error;
            self.error = Some(error);
        }
    }
}

/// One more call of a request (PingAuthorize's response call), as `ase.sideband.response_phase`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phase {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub outcome: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub sent_ms: u64,
    #[serde(skip)]
    pub timed_out: bool,
    /// The call left (false: the response was released without one); not serialized.
    #[serde(skip)]
    pub called: bool,
}

impl Phase {
    /// A call leaving at `now_ms` (outcome `error` until answered).
    pub fn new(now_ms: u64) -> Phase {
        Phase {
            status: None,
            latency_ms: 0,
            outcome: Verdict::Error,
            error: None,
            sent_ms: now_ms,
            timed_out: false,
            called: true,
        }
    }
}

/// Facts only the counters read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notes {
    /// The request body was bigger than `max_body_bytes` (sent without it).
    pub request_too_large: bool,
    /// The response body was bigger than `max_body_bytes` (passed unchanged, no response call).
    pub response_too_large: bool,
    /// The service answered 429, or its 429 circuit was open.
    pub rate_limited: bool,
}

/// Consecutive failures (no answer or a 5xx) that open the breaker.
pub const FAILURES_TO_OPEN: u32 = 3;
/// First and longest open period.
pub const OPEN_MIN_MS: u64 = 1_000;
pub const OPEN_MAX_MS: u64 = 30_000;
/// At most one warning per this interval per VM (the rest are counted).
const LOG_EVERY_MS: u64 = 10_000;

/// A per-VM circuit breaker: after [`FAILURES_TO_OPEN`] consecutive failures the service is not
/// called for [`OPEN_MIN_MS`], doubling on every failed probe up to [`OPEN_MAX_MS`]; when the
/// period ends one request probes, and a success closes the breaker.
#[derive(Debug, Default)]
pub struct Breaker {
    state: RefCell<BreakerState>,
}

#[derive(Debug, Default)]
struct BreakerState {
    failures: u32,
    open_until_ms: u64,
    period_ms: u64,
    probing: bool,
    /// A probe whose answer never came (its request went away) stops blocking new probes then.
    probe_deadline_ms: u64,
    last_log_ms: u64,
    suppressed: u64,
}

impl Breaker {
    /// May a call leave at `now_ms`?
    pub fn allow(&self, now_ms: u64) -> bool {
        let mut s = self.state.borrow_mut();
        if s.failures < FAILURES_TO_OPEN {
            return true;
        }
        if now_ms < s.open_until_ms || (s.probing && now_ms < s.probe_deadline_ms) {
            return false;
        }
        s.probing = true;
        s.probe_deadline_ms = now_ms.saturating_add(*TIMEOUT_MS.end());
        true
    }

    /// A call was answered normally.
    pub fn success(&self) {
        let mut s = self.state.borrow_mut();
        s.failures = 0;
        s.period_ms = 0;
        s.probing = false;
    }

    /// A call failed (no answer, or a 5xx) at `now_ms`.
    pub fn failure(&self, now_ms: u64) {
        let mut s = self.state.borrow_mut();
        s.failures = s.failures.saturating_add(1);
        s.probing = false;
        if s.failures >= FAILURES_TO_OPEN {
            s.period_ms = if s.period_ms == 0 {
                OPEN_MIN_MS
            } else {
                (s.period_ms * 2).min(OPEN_MAX_MS)
            };
            s.open_until_ms = now_ms.saturating_add(s.period_ms);
        }
    }

    /// Whether a warning may be logged now; the count of the ones held back since the last.
    pub fn may_log(&self, now_ms: u64) -> Option<u64> {
        let mut s = self.state.borrow_mut();
        if s.last_log_ms != 0 && now_ms < s.last_log_ms.saturating_add(LOG_EVERY_MS) {
            s.suppressed += 1;
            return None;
        }
        s.last_log_ms = now_ms.max(1);
        Some(std::mem::take(&mut s.suppressed))
    }
}

#[cfg(test)]
mod tests;

/// Most response calls waiting for the root context; beyond it the newest are dropped (counted
/// as failed).
pub const MAX_QUEUED_RESPONSE_CALLS: usize = 10_000;
/// Most response calls in flight per VM (each is one upstream connection to ASE with HTTP/1.1);
/// the next queued one leaves as soon as one is answered.
pub const MAX_IN_FLIGHT_RESPONSE_CALLS: usize = 64;

/// The fire-and-forget response calls of one VM. HTTP contexts queue them; the root context
/// dispatches them on its tick and counts their answers. They leave from the root context because
/// Envoy cancels a context's pending calls when its stream ends, which would cut a report short.
#[derive(Debug, Default)]
pub struct ResponseCalls {
    queue: std::collections::VecDeque<crate::call::CallRequest>,
    in_flight: std::collections::HashSet<u32>,
}

impl ResponseCalls {
    /// Queue one call; false (and counted as failed) when the queue is full.
    pub fn push(&mut self, call: crate::call::CallRequest, metrics: &impl crate::host::Metrics) {
        if self.queue.len() >= MAX_QUEUED_RESPONSE_CALLS {
            metrics.increment(crate::stats::Counter::SidebandResponseCallsFailed, 1);
            metrics.increment(crate::stats::Counter::SidebandAseResponseCallsFailed, 1);
            return;
        }
        self.queue.push_back(call);
    }

    /// Calls waiting.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Dispatch what is queued (up to the in-flight bound); a call that cannot leave is failed.
    pub fn flush(&mut self, host: &(impl crate::host::HttpCalls + crate::host::Metrics)) {
        use crate::stats::Counter;
        while self.in_flight.len() < MAX_IN_FLIGHT_RESPONSE_CALLS {
            let Some(call) = self.queue.pop_front() else {
                break;
            };
            match host.dispatch(&call) {
                Ok(token) => {
                    self.in_flight.insert(token);
                    host.increment(Counter::SidebandResponseCalls, 1);
                    host.increment(Counter::SidebandAseResponseCalls, 1);
                }
                Err(e) => {
                    log::debug!("api-warden: sideband response call not sent: {e}");
                    host.increment(Counter::SidebandResponseCallsFailed, 1);
                    host.increment(Counter::SidebandAseResponseCallsFailed, 1);
                }
            }
        }
    }

    /// Is `token` one of ours?
    pub fn owns(&self, token: u32) -> bool {
        self.in_flight.contains(&token)
    }

    /// Count the answer of one of ours: anything but a 2xx is a failure (never retried).
    pub fn on_answer(
        &mut self,
        metrics: &impl crate::host::Metrics,
        token: u32,
        answer: &crate::call::CallAnswer,
    ) {
        use crate::stats::Counter;
        if !self.in_flight.remove(&token) {
            return;
        }
        if !answer.is_success() {
            metrics.increment(Counter::SidebandResponseCallsFailed, 1);
            metrics.increment(Counter::SidebandAseResponseCallsFailed, 1);
        }
    }
}
