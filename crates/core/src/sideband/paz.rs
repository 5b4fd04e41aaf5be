//! PingAuthorize's Sideband API as the pipeline's decision service: the request call (with the
//! body, once collected) and what its answer means — deny with the service's response, or
//! forward with its changes —, the response call and the response it returns, failing closed
//! (502) by default, and the 429 circuit (no calls while PingAuthorize asks for a pause; clients
//! get 429). The wire shapes are in [`wire`], the diffs in [`rewrite`]. No host calls.

pub mod rewrite;
pub mod wire;

use std::cell::Cell;

use super::{Phase, Report, SidebandSettings, Verdict as CallVerdict};
use crate::call::{CallAnswer, CallRequest};
use crate::config::{ConfigError, Result};
use crate::pipeline::{External, HeaderEdit, Outcome, RequestEdit, ResponseStep, Step};
use crate::request::Request;
use crate::services::Section;
use wire::{HeaderList, RequestAnswer, SentRequest};

/// Keys of the `sideband` section with `service: "pingauthorize"`.
pub const KEYS: &[&str] = &[
    "service",
    "cluster",
    "authority",
    "path_prefix",
    "secret",
    "secret_header",
    "timeout_ms",
    "fail_open",
    "response_call",
    "max_body_bytes",
];

/// Default `timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u64 = 2000;
/// Default and largest `max_body_bytes`.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;
pub const MAX_MAX_BODY: usize = 16 << 20;
/// Longest pause a 429's `Retry-After` may ask for.
pub const MAX_RETRY_AFTER_S: u64 = 3600;
/// How long a held request or response waits for the first piece of its body before
/// [`External::body_never_came`] (Envoy without `allow_on_headers_stop_iteration` never
/// delivers it).
pub const BODY_WAIT_MS: u64 = crate::admin::BODY_WAIT_MS;

/// The PingAuthorize part of the section: (secret, secret header, max body bytes).
pub(crate) fn parse_settings(s: &Section<'_>) -> Result<(String, String, usize)> {
    let secret = s.required("secret")?;
    if secret.is_empty() || secret.bytes().any(|b| b.is_ascii_control()) {
        return Err(ConfigError::field(
            "sideband.secret",
            "must be a non-empty string without control characters",
        ));
    }
    let header = s
        .string("secret_header")?
        .unwrap_or_else(|| "CLIENT-TOKEN".into());
    let token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if header.is_empty() || !header.bytes().all(token_char) {
        return Err(ConfigError::field(
            "sideband.secret_header",
            format!("{header:?} is not an HTTP header name"),
        ));
    }
    let max = s.uint("max_body_bytes")?.unwrap_or(DEFAULT_MAX_BODY as u64);
    if max > MAX_MAX_BODY as u64 {
        return Err(ConfigError::field(
            "sideband.max_body_bytes",
            format!("({max}) must be at most {MAX_MAX_BODY}"),
        ));
    }
    Ok((
        secret,
        header.to_ascii_lowercase(),
        usize::try_from(max).unwrap_or(DEFAULT_MAX_BODY),
    ))
}

/// One request's exchange with PingAuthorize (kept in the [`Outcome`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exchange {
    /// The request object as sent (the `request` of the response call, and the base of the diff).
    pub sent: SentRequest,
    /// Whether the request's body went with the call.
    pub body_sent: bool,
    /// The request call's answer allowed the request.
    pub allowed: bool,
    /// The `state` the request call's answer returned.
    pub state: Option<String>,
    /// The upstream's response, held for the response call: status, headers, body.
    pub upstream: Option<(u16, HeaderList, Vec<u8>)>,
    /// The response phase is over (a response api-warden sends in its place is not held again).
    pub responded: bool,
}

/// PingAuthorize as the pipeline's decision service.
#[derive(Debug)]
pub struct PazSideband {
    settings: SidebandSettings,
    /// The 429 circuit: no calls until then (Unix ms).
    paused_until_ms: Cell<u64>,
    /// Warnings: at most one per interval (the rest counted).
    log: super::Breaker,
}

/// Which call a failure belongs to (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Request,
    Response,
}

impl PazSideband {
    pub fn new(settings: SidebandSettings) -> PazSideband {
        PazSideband {
            settings,
            paused_until_ms: Cell::new(0),
            log: super::Breaker::default(),
        }
    }

    fn call(&self, path: &str, body: Vec<u8>) -> CallRequest {
        let s = &self.settings;
        CallRequest::new(
            "POST",
            &s.cluster,
            &s.authority,
            &format!("{}{path}", s.path_prefix),
            s.timeout_ms,
        )
        .header("content-type", "application/json")
        .header(&s.secret_header, s.token.as_deref().unwrap_or(""))
        .body(body)
    }

    fn warn(&self, now_ms: u64, what: &str) {
        if let Some(held) = self.log.may_log(now_ms) {
            log::warn!(
                "api-warden: PingAuthorize sideband: {what}{}",
                if held > 0 {
                    format!(" ({held} more since the last warning)")
                } else {
                    String::new()
                }
            );
        }
    }

    /// The 502 (or pass, failing open) of a failed request call.
    fn failed(&self, outcome: &mut Outcome) -> Step {
        if self.settings.fail_open {
            return Step::Continue;
        }
        super::ase::sideband_block(outcome);
        Step::Reply {
            status: 502,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// The answer to clients while the 429 circuit is open.
    fn rate_limited(&self, now_ms: u64, outcome: &mut Outcome) -> Step {
        let left_ms = self.paused_until_ms.get().saturating_sub(now_ms);
        super::ase::sideband_block(outcome);
        Step::Reply {
            status: 429,
            headers: vec![(
                "retry-after".into(),
                left_ms.div_ceil(1000).max(1).to_string(),
            )],
            body: String::new(),
        }
    }

    /// Classify a failed answer (no status, an error status, a malformed body); opens the 429
    /// circuit on a 429. Returns (error text, timed out).
    fn failure(
        &self,
        call: Call,
        answer: &CallAnswer,
        latency_ms: u64,
        parse_error: Option<String>,
        now_ms: u64,
    ) -> (String, bool) {
        let timeout_ms = self.settings.timeout_ms;
        let which = match call {
            Call::Request => "request call",
            Call::Response => "response call",
        };
        let mut timed_out = false;
        let error = match (answer.status, parse_error) {
            (Some(s), Some(e)) if (200..300).contains(&s) => format!("{s}: {e}"),
            (Some(429), _) => {
                let pause = retry_after_s(answer.header("retry-after"));
                self.paused_until_ms
                    .set(now_ms.saturating_add(pause.saturating_mul(1000)));
                format!("429: PingAuthorize asks for a pause of {pause} s")
            }
            (Some(401 | 403), _) => format!(
                "{}: PingAuthorize refused the shared secret (check sideband.secret and secret_header)",
                answer.status.unwrap_or(0)
            ),
            (None | Some(504), _) if latency_ms + 50 >= timeout_ms => {
                timed_out = true;
                format!("no answer within {timeout_ms} ms")
            }
            (Some(s), _) => format!("unexpected status {s}"),
            (None, _) => "no answer (connection failed or reset)".to_string(),
        };
        let error = format!("{which}: {error}");
        self.warn(now_ms, &error);
        (error, timed_out)
    }

    /// Build and send the request call (body: the collected body, or `None`).
    fn request_call(
        &self,
        req: &Request,
        outcome: &mut Outcome,
        body: Option<&[u8]>,
        now_ms: u64,
    ) -> Step {
        let v = &req.view;
        let sent = SentRequest {
            source_ip: outcome.identity.client.ip.clone().unwrap_or_default(),
            source_port: super::ase::source_port(v.peer.as_deref()),
            method: v.method.clone(),
            url: wire::absolute_url(&v.scheme, &v.authority, &v.path),
            http_version: super::ase::http_version(v.protocol.as_deref()).to_string(),
            headers: HeaderList::from_headers(&v.headers),
            body: body.map(wire::body_text),
            client_certificate: client_certificate(req),
        };
        let json = sent.to_json();
        outcome.paz = Some(Box::new(Exchange {
            body_sent: body.is_some(),
            sent,
            ..Exchange::default()
        }));
        let report = outcome
            .sideband
            .get_or_insert_with(|| Report::new(self.settings.service, now_ms));
        report.sent_ms = now_ms;
        Step::Call(self.call("/sideband/request", json))
    }
}

/// The client certificate Envoy forwards in `x-forwarded-client-cert` (`Cert="<URL-encoded
/// PEM>"`, with `forward_client_cert_details: SANITIZE_SET` and `set_current_client_cert_details:
/// {cert: true}`), as base64 DER; only on a TLS request.
fn client_certificate(req: &Request) -> Option<wire::ClientCertificate> {
    let v = &req.view;
    if v.scheme != "https" {
        return None;
    }
    let xfcc = req.header("x-forwarded-client-cert")?;
    // The current (last) element; fields separated by `;`.
    let element = xfcc.rsplit(',').next()?;
    let cert = element.split(';').find_map(|f| {
        let (k, val) = f.trim().split_once('=')?;
        k.eq_ignore_ascii_case("cert").then_some(val)
    })?;
    let pem = crate::parse::percent_decode(cert.trim_matches('"'), false);
    let b64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    (!b64.is_empty()).then(|| wire::ClientCertificate { x5c: vec![b64] })
}

/// Seconds of a `Retry-After` (a number of seconds; missing, a date or unreadable: 1), at most
/// [`MAX_RETRY_AFTER_S`].
pub fn retry_after_s(v: Option<&str>) -> u64 {
    v.and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .clamp(1, MAX_RETRY_AFTER_S)
}

/// `accept-encoding: identity`: PingAuthorize cannot read compressed bodies.
fn identity_encoding(edit: &mut RequestEdit) {
    edit.headers.retain(|h| h.name != "accept-encoding");
    edit.headers.push(HeaderEdit {
        name: "accept-encoding".into(),
        values: vec!["identity".into()],
    });
}

impl External for PazSideband {
    fn request(
        &self,
        req: &Request,
        outcome: &mut Outcome,
        end_of_stream: bool,
        now_ms: u64,
    ) -> Option<Step> {
        if now_ms < self.paused_until_ms.get() {
            let mut r = Report::new(self.settings.service, now_ms);
            r.outcome = CallVerdict::Skipped;
            r.error = Some("not called: PingAuthorize answered 429 (circuit open)".into());
            r.notes.rate_limited = true;
            outcome.sideband = Some(r);
            return Some(self.rate_limited(now_ms, outcome));
        }
        outcome.sideband = Some(Report::new(self.settings.service, now_ms));
        // An upgrade (WebSocket) or CONNECT sends its data only after the answer: no body to wait for.
        let tunnel = req.view.method == "CONNECT" || req.header("upgrade").is_some();
        if !end_of_stream && !tunnel {
            return Some(Step::AwaitBody {
                max_bytes: self.settings.max_body_bytes,
                wait_ms: BODY_WAIT_MS,
            });
        }
        Some(self.request_call(req, outcome, None, now_ms))
    }

    fn request_body(
        &self,
        req: &Request,
        outcome: &mut Outcome,
        body: Option<&[u8]>,
        now_ms: u64,
    ) -> Step {
        if body.is_none() {
            if let Some(r) = outcome.sideband.as_mut() {
                r.notes.request_too_large = true;
            }
        }
        // An empty body (a POST with `content-length: 0` split from its headers) is no body.
        let body = body.filter(|b| !b.is_empty());
        self.request_call(req, outcome, body, now_ms)
    }

    fn answer(&self, answer: &CallAnswer, outcome: &mut Outcome, now_ms: u64) -> Step {
        let (Some(report), Some(x)) = (outcome.sideband.as_mut(), outcome.paz.as_mut()) else {
            return Step::Continue;
        };
        report.status = answer.status;
        report.latency_ms = now_ms.saturating_sub(report.sent_ms);
        let parsed = answer
            .status
            .filter(|s| (200..300).contains(s) || (400..600).contains(s))
            .map(|_| wire::request_answer(&answer.body, &x.sent));
        // A `response` object is a decision whatever the status; otherwise only a 2xx is.
        let decision = match parsed {
            Some(Ok(RequestAnswer::Deny(r))) => Ok(RequestAnswer::Deny(r)),
            Some(Ok(a)) if answer.is_success() => Ok(a),
            Some(Err(e)) if answer.is_success() => Err(Some(e)),
            _ => Err(None),
        };
        match decision {
            Ok(RequestAnswer::Deny(r)) => {
                report.outcome = CallVerdict::Block;
                super::ase::sideband_block(outcome);
                Step::Reply {
                    status: u32::from(r.status),
                    headers: r.headers.map(|h| h.0).unwrap_or_default(),
                    body: r.body.unwrap_or_default(),
                }
            }
            Ok(RequestAnswer::Allow(allowed)) => {
                match rewrite::apply_request(&x.sent, &allowed, x.body_sent) {
                    Ok(mut applied) => {
                        report.outcome = CallVerdict::Allow;
                        report.rewritten_request = Some(applied.changed);
                        if !applied.ignored.is_empty() {
                            self.warn(
                                now_ms,
                                &format!(
                                    "changes not applied (only logged): {}",
                                    applied.ignored.join(", ")
                                ),
                            );
                        }
                        x.allowed = true;
                        x.state = allowed.state;
                        if self.settings.response_call {
                            identity_encoding(&mut applied.edit);
                        }
                        if applied.edit == RequestEdit::default() {
                            Step::Continue
                        } else {
                            Step::Forward(Box::new(applied.edit))
                        }
                    }
                    Err(e) => self.request_failed(answer, Some(e), now_ms, outcome),
                }
            }
            Err(e) => self.request_failed(answer, e, now_ms, outcome),
        }
    }

    fn body_never_came(&self) -> Step {
        if self.settings.fail_open {
            Step::Continue
        } else {
            Step::Reply {
                status: 502,
                headers: Vec::new(),
                body: String::new(),
            }
        }
    }

    fn response(
        &self,
        outcome: &mut Outcome,
        status: u16,
        headers: &[(String, String)],
        end_of_stream: bool,
        now_ms: u64,
    ) -> ResponseStep {
        let Some(x) = outcome.paz.as_mut().filter(|x| x.allowed && !x.responded) else {
            return ResponseStep::Continue;
        };
        // 101 Switching Protocols starts a tunnel: nothing to rewrite.
        if !self.settings.response_call || status == 101 {
            return ResponseStep::Continue;
        }
        x.responded = true;
        x.upstream = Some((status, HeaderList::from_headers(headers), Vec::new()));
        if !end_of_stream {
            return ResponseStep::AwaitBody {
                max_bytes: self.settings.max_body_bytes,
                wait_ms: BODY_WAIT_MS,
            };
        }
        self.response_body(outcome, Some(&[]), now_ms)
    }

    fn response_body(
        &self,
        outcome: &mut Outcome,
        body: Option<&[u8]>,
        now_ms: u64,
    ) -> ResponseStep {
        let (Some(report), Some(x)) = (outcome.sideband.as_mut(), outcome.paz.as_mut()) else {
            return ResponseStep::Continue;
        };
        let Some(body) = body else {
            report.notes.response_too_large = true;
            x.upstream = None;
            return ResponseStep::Continue;
        };
        let Some((status, headers, held)) = x.upstream.as_mut() else {
            return ResponseStep::Continue;
        };
        held.clear();
        held.extend_from_slice(body);
        let call = wire::ResponseCall {
            method: &x.sent.method,
            url: &x.sent.url,
            body: (!body.is_empty()).then(|| wire::body_text(body)),
            response_code: status.to_string(),
            response_status: super::ase::reason_phrase(*status),
            http_version: &x.sent.http_version,
            headers: headers.clone(),
            state: x.state.as_deref(),
            request: if x.state.is_none() {
                Some(&x.sent)
            } else {
                None
            },
        };
        let json = serde_json::to_vec(&call).unwrap_or_default();
        report.response_phase = Some(Phase::new(now_ms));
        ResponseStep::Call(self.call("/sideband/response", json))
    }

    fn response_answer(
        &self,
        answer: &CallAnswer,
        outcome: &mut Outcome,
        now_ms: u64,
    ) -> ResponseStep {
        let (Some(report), Some(x)) = (outcome.sideband.as_mut(), outcome.paz.as_mut()) else {
            return ResponseStep::Continue;
        };
        let (Some(phase), Some((status, headers, body))) =
            (report.response_phase.as_mut(), x.upstream.take())
        else {
            return ResponseStep::Continue;
        };
        phase.status = answer.status;
        phase.latency_ms = now_ms.saturating_sub(phase.sent_ms);
        let parsed = answer
            .is_success()
            .then(|| wire::response_answer(&answer.body));
        match parsed {
            Some(Ok(r)) => {
                phase.outcome = CallVerdict::Allow;
                match rewrite::apply_response(status, &headers, &body, &r) {
                    None => ResponseStep::Continue,
                    Some(new) => {
                        report.rewritten_response = Some(true);
                        ResponseStep::Replace {
                            status: u32::from(new.status),
                            headers: new.headers,
                            body: new.body,
                        }
                    }
                }
            }
            other => {
                let parse_error = match other {
                    Some(Err(e)) => Some(e),
                    _ => None,
                };
                let latency = phase.latency_ms;
                let (error, timed_out) =
                    self.failure(Call::Response, answer, latency, parse_error, now_ms);
                if answer.status == Some(429) {
                    report.notes.rate_limited = true;
                }
                if let Some(phase) = report.response_phase.as_mut() {
                    phase.error = Some(error);
                    phase.timed_out = timed_out;
                }
                if self.settings.fail_open {
                    ResponseStep::Continue
                } else {
                    ResponseStep::Replace {
                        status: 502,
                        headers: Vec::new(),
                        body: Vec::new(),
                    }
                }
            }
        }
    }
}

impl PazSideband {
    /// A failed request call: 429 (the circuit opens; the client gets 429), else 502 or pass.
    fn request_failed(
        &self,
        answer: &CallAnswer,
        parse_error: Option<String>,
        now_ms: u64,
        outcome: &mut Outcome,
    ) -> Step {
        let latency = outcome.sideband.as_ref().map_or(0, |r| r.latency_ms);
        let (error, timed_out) = self.failure(Call::Request, answer, latency, parse_error, now_ms);
        let limited = answer.status == Some(429);
        if let Some(r) = outcome.sideband.as_mut() {
            r.outcome = CallVerdict::Error;
            r.error = Some(error);
            r.timed_out = timed_out;
            r.notes.rate_limited = limited;
        }
        if limited {
            return self.rate_limited(now_ms, outcome);
        }
        self.failed(outcome)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod flow_tests;
