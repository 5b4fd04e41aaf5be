//! PingIntelligence ASE's sideband contract: the `/ase/request` and `/ase/response` bodies, and
//! what each answer means (200 forward, 403 block, anything else an ASE-side error). Pure: the
//! pipeline asks for the call, the adapter dispatches it. No host calls.

use serde::Serialize;

use super::{Breaker, Report, SidebandSettings, Verdict as CallVerdict};
use crate::call::{CallAnswer, CallRequest};
use crate::config::BlockResponse;
use crate::decision::{Cause, Mode, Verdict};
use crate::pipeline::{block_step, External, Outcome, Step};
use crate::request::Request;

/// One header as ASE wants it: a one-key object.
struct Header<'a>(&'a str, &'a str);

impl Serialize for Header<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.0, self.1)?;
        m.end()
    }
}

#[derive(Serialize)]
struct UserInfo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
}

#[derive(Serialize)]
struct RequestBody<'a> {
    source_ip: &'a str,
    source_port: u16,
    method: &'a str,
    url: &'a str,
    http_version: &'a str,
    headers: Vec<Header<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    user_info: Vec<UserInfo<'a>>,
}

#[derive(Serialize)]
struct ResponseBody<'a> {
    response_code: String,
    response_status: &'a str,
    http_version: &'a str,
    headers: Vec<Header<'a>>,
}

/// The request's headers as ASE's list: `:authority` as `host` first, other pseudo-headers left
/// out, names lowercase, repeated headers as repeated objects.
fn header_list<'a>(authority: &'a str, headers: &'a [(String, String)]) -> Vec<Header<'a>> {
    let mut out = Vec::with_capacity(headers.len());
    if !authority.is_empty() {
        out.push(Header("host", authority));
    }
    out.extend(
        headers
            .iter()
            .filter(|(k, _)| !k.starts_with(':') && (k != "host" || authority.is_empty()))
            .map(|(k, v)| Header(k.as_str(), v.as_str())),
    );
    out
}

/// `1.0`, `1.1`, `2`, `3` from Envoy's `request.protocol` (`HTTP/1.1`, …); `1.1` when unknown.
pub fn http_version(protocol: Option<&str>) -> &str {
    protocol
        .and_then(|p| p.strip_prefix("HTTP/"))
        .filter(|v| !v.is_empty())
        .unwrap_or("1.1")
}

/// The peer's port (`1.2.3.4:5678`, `[::1]:5678`); 0 when unknown.
pub fn source_port(peer: Option<&str>) -> u16 {
    peer.and_then(|p| p.rsplit_once(':'))
        .filter(|(host, _)| !host.is_empty() && (host.ends_with(']') || !host.contains(':')))
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(0)
}

/// The reason phrase of a status, for `response_status`.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// The body of `POST /ase/request`.
pub fn request_body(req: &Request, outcome: &Outcome) -> Vec<u8> {
    let c = &outcome.identity.client;
    let v = &req.view;
    let user = (c.username.is_some() || c.client_id.is_some()).then_some(UserInfo {
        username: c.username.as_deref(),
        client_id: c.client_id.as_deref(),
    });
    let body = RequestBody {
        source_ip: c.ip.as_deref().unwrap_or(""),
        source_port: source_port(v.peer.as_deref()),
        method: &v.method,
        url: &v.path,
        http_version: http_version(v.protocol.as_deref()),
        headers: header_list(&v.authority, &v.headers),
        user_info: user.into_iter().collect(),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The body of `POST /ase/response`.
pub fn response_body(status: u16, http_version: &str, headers: &[(String, String)]) -> Vec<u8> {
    let body = ResponseBody {
        response_code: status.to_string(),
        response_status: reason_phrase(status),
        http_version,
        headers: header_list("", headers),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// ASE as the pipeline's decision service.
#[derive(Debug)]
pub struct AseSideband {
    settings: SidebandSettings,
    /// api-warden's block response, sent when ASE answers 403.
    block_response: BlockResponse,
    breaker: Breaker,
}

impl AseSideband {
    pub fn new(settings: SidebandSettings, block_response: BlockResponse) -> AseSideband {
        AseSideband {
            settings,
            block_response,
            breaker: Breaker::default(),
        }
    }

    fn call(&self, path: &str, correlation_id: Option<&str>, body: Vec<u8>) -> CallRequest {
        let s = &self.settings;
        let mut c = CallRequest::new(
            "POST",
            &s.cluster,
            &s.authority,
            &format!("{}{path}", s.path_prefix),
            s.timeout_ms,
        )
        .header("content-type", "application/json");
        if let Some(t) = &s.token {
            c = c.header("ase-token", t);
        }
        if let Some(id) = correlation_id {
            c = c.header("x-correlationid", id);
        }
        c.body(body)
    }

    /// The step for an ASE-side error (or a skipped call): forward, or 503 with an empty body.
    fn failed(&self, outcome: &mut Outcome) -> Step {
        if self.settings.fail_open {
            return Step::Continue;
        }
        sideband_block(outcome);
        Step::Reply {
            status: 503,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    fn warn(&self, now_ms: u64, what: &str) {
        if let Some(held) = self.breaker.may_log(now_ms) {
            log::warn!(
                "api-warden: ASE sideband call failed: {what}{}",
                if held > 0 {
                    format!(" ({held} more since the last warning)")
                } else {
                    String::new()
                }
            );
        }
    }
}

/// Mark the outcome as blocked by the sideband service.
pub(crate) fn sideband_block(outcome: &mut Outcome) {
    if let Some(d) = outcome.decision.as_mut() {
        d.verdict = Verdict::Block;
        d.cause = Some(Cause::Sideband);
        d.mode = Mode::Enforced;
        d.source = None;
    }
}

impl External for AseSideband {
    fn request(
        &self,
        req: &Request,
        outcome: &mut Outcome,
        _end_of_stream: bool,
        now_ms: u64,
    ) -> Option<Step> {
        if self.settings.only_configured_apis && outcome.api.is_none() {
            return None;
        }
        if !self.breaker.allow(now_ms) {
            outcome.sideband = Some(Report {
                outcome: CallVerdict::Skipped,
                error: Some("not called: ASE failed repeatedly (breaker open)".into()),
                ..Report::new(self.settings.service, now_ms)
            });
            return Some(self.failed(outcome));
        }
        outcome.sideband = Some(Report::new(self.settings.service, now_ms));
        let body = request_body(req, outcome);
        Some(Step::Call(self.call(
            "/ase/request",
            req.header("x-request-id"),
            body,
        )))
    }

    fn answer(&self, answer: &CallAnswer, outcome: &mut Outcome, now_ms: u64) -> Step {
        let timeout_ms = self.settings.timeout_ms;
        let Some(report) = outcome.sideband.as_mut() else {
            return Step::Continue;
        };
        report.status = answer.status;
        report.latency_ms = now_ms.saturating_sub(report.sent_ms);
        match answer.status {
            Some(200) => {
                self.breaker.success();
                report.outcome = CallVerdict::Allow;
                Step::Continue
            }
            Some(403) => {
                self.breaker.success();
                report.outcome = CallVerdict::Block;
                sideband_block(outcome);
                block_step(&self.block_response)
            }
            status => {
                let error = match status {
                    Some(401) => {
                        "401: ASE refused the ASE-Token (check sideband.token)".to_string()
                    }
                    Some(400) => "400: ASE could not read the request JSON".to_string(),
                    Some(503) => "503: ASE does not know this API".to_string(),
                    // Envoy answers its own 504 when the call times out.
                    None | Some(504) if report.latency_ms + 50 >= timeout_ms => {
                        report.timed_out = true;
                        format!("no answer within {timeout_ms} ms")
                    }
                    Some(s) => format!("unexpected status {s}"),
                    None => "no answer (connection failed or reset)".to_string(),
                };
                if status.map_or(true, |s| s >= 500) {
                    self.breaker.failure(now_ms);
                } else {
                    self.breaker.success();
                }
                self.warn(now_ms, &error);
                report.outcome = CallVerdict::Error;
                report.error = Some(error);
                self.failed(outcome)
            }
        }
    }

    fn response_call(
        &self,
        req: &Request,
        outcome: &Outcome,
        status: u16,
        headers: &[(String, String)],
    ) -> Option<CallRequest> {
        let sent = outcome
            .sideband
            .as_ref()
            .is_some_and(|r| r.outcome == CallVerdict::Allow);
        if !(self.settings.response_call && sent) {
            return None;
        }
        let body = response_body(status, http_version(req.view.protocol.as_deref()), headers);
        Some(self.call("/ase/response", req.header("x-request-id"), body))
    }
}
