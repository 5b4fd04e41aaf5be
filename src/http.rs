//! The HTTP context: carries one request through the core's pipeline and acts on its decision
//! (continue, reply, record). Host calls go through [`crate::host`] only.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use api_warden_core::call::{CallAnswer, CallRequest};
use api_warden_core::export::Exporter;
use api_warden_core::pipeline::{self, ResponseStep, Runtime, Step};
use api_warden_core::record::{self, ClientCert, Exchange};
use api_warden_core::request::{Request, RequestView};
use api_warden_core::services::FilterState;
use api_warden_core::sideband::ResponseCalls;
use api_warden_core::stats::{self, Counter};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::host::{self, HostStore, WasmHost};
use crate::host_calls::{span, Stage};
use crate::metrics::Stats;

thread_local! {
    /// The record's buffer, reused by every request of this VM (cleared, never shrunk).
    static RECORD: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

pub(crate) struct Http {
    pub(crate) context_id: u32,
    pub(crate) runtime: Rc<Runtime>,
    pub(crate) stats: Rc<Stats>,
    pub(crate) exporter: Option<Rc<RefCell<Exporter>>>,
    /// The request, the pipeline's outcome and what the record needs, kept as one value.
    pub(crate) exchange: Exchange,
    pub(crate) admin_pending: bool,
    /// The token of the call the request waits on ([`Step::Call`]).
    pub(crate) call_token: Option<u32>,
    /// The VM's queue of sideband response calls (sent by the root context).
    pub(crate) response_calls: Rc<RefCell<ResponseCalls>>,
    /// Admin requests waiting for their body: (context id, deadline); the root context answers
    /// those whose body never comes.
    pub(crate) admin_waits: Rc<RefCell<Vec<(u32, u64)>>>,
    /// The body the sideband service waits for ([`Step::AwaitBody`], [`ResponseStep::AwaitBody`]).
    pub(crate) hold: Hold,
    /// Requests and responses held for a body whose first piece has not come; the root context
    /// releases them after their deadline ([`pipeline::body_never_came`]).
    pub(crate) body_waits: Rc<RefCell<Vec<BodyWait>>>,
}

/// A request or response held for its body, in [`Http::body_waits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyWait {
    pub(crate) context_id: u32,
    pub(crate) deadline_ms: u64,
    /// The response (else the request) is held.
    pub(crate) response: bool,
}

/// What a held HTTP context collects and waits on.
#[derive(Debug, Default)]
pub(crate) struct Hold {
    /// Collecting the request body up to this many bytes.
    request_body: Option<usize>,
    /// Collecting the response body up to this many bytes.
    response_body: Option<usize>,
    /// The first piece of the held body came (the wait is over).
    body_came: bool,
    /// The call in flight belongs to the response.
    response_call: bool,
    /// The request body's size when it was last seen (to replace it).
    request_body_len: usize,
    /// The response body's size when it was last seen.
    response_body_len: usize,
}

impl Http {
    /// Whether this request's record is used (a filter state or export): otherwise what only
    /// the record needs (response headers, timing, certificate) is not collected.
    fn needs_record(&self) -> bool {
        self.runtime.services.analytics.records()
    }

    fn reply(&self, status: u32, headers: &[(String, String)], body: &str) -> Action {
        if let Err(e) = host::send_local_reply(status, headers, body.as_bytes()) {
            log::error!("#{} api-warden: {e}", self.context_id);
            return Action::Continue;
        }
        Action::Pause
    }

    fn admin_reply(&self, r: api_warden_core::admin::Reply) -> Action {
        self.take(pipeline::admin_step(r))
    }

    /// Carry out a step of the pipeline.
    fn take(&self, step: Step) -> Action {
        match step {
            Step::Continue => Action::Continue,
            Step::Forward(edit) => {
                host::edit_request(&edit, self.hold.request_body_len);
                Action::Continue
            }
            Step::Reply {
                status,
                headers,
                body,
            } => {
                if self.exchange.outcome.admin {
                    self.stats.inc(Counter::AdminRequests, 1);
                    if status == 401 {
                        self.stats.inc(Counter::AdminUnauthorized, 1);
                    }
                }
                self.reply(status, &headers, &body)
            }
            Step::AwaitAdminBody | Step::AwaitBody { .. } | Step::Call(_) => Action::Pause,
        }
    }

    /// Take a step that may hold the request for its body or a call.
    fn take_held(&mut self, step: Step) -> Action {
        match step {
            Step::AwaitBody { max_bytes, wait_ms } => {
                self.hold.request_body = Some(max_bytes);
                self.wait_for_body(wait_ms, false);
                Action::Pause
            }
            Step::Call(call) => self.call(&call, false),
            step => self.take(step),
        }
    }

    fn wait_for_body(&mut self, wait_ms: u64, response: bool) {
        self.hold.body_came = false;
        self.body_waits.borrow_mut().push(BodyWait {
            context_id: self.context_id,
            deadline_ms: host::now_ms().saturating_add(wait_ms),
            response,
        });
    }

    /// The first piece of a held body came: stop the wait. False when the root context already
    /// released the request or response (the wait was over before the body came).
    fn body_came(&mut self) -> bool {
        if self.hold.body_came {
            return true;
        }
        let id = self.context_id;
        let mut waits = self.body_waits.borrow_mut();
        let before = waits.len();
        waits.retain(|w| w.context_id != id);
        let mine = waits.len() != before;
        drop(waits);
        self.hold.body_came = mine;
        mine
    }

    /// A piece of the held request body came (`body_size`: all of it so far): hold on, or hand
    /// it over once complete (or as soon as it is bigger than `max`).
    fn collect_request_body(&mut self, max: usize, body_size: usize, complete: bool) -> Action {
        self.hold.request_body_len = body_size;
        let body = if body_size > max {
            None
        } else if complete {
            Some(host::request_body(body_size))
        } else {
            return Action::Pause;
        };
        self.hold.request_body = None;
        self.exchange.bytes_in = body_size as u64;
        let step = pipeline::request_body(
            &self.runtime,
            &self.exchange.request,
            &mut self.exchange.outcome,
            body.as_deref(),
            host::now_ms(),
        );
        self.take_held(step)
    }

    /// As [`Http::collect_request_body`], for the held response.
    fn collect_response_body(&mut self, max: usize, body_size: usize, complete: bool) -> Action {
        self.hold.response_body_len = body_size;
        let body = if body_size > max {
            None
        } else if complete {
            Some(host::response_body(body_size))
        } else {
            return Action::Pause;
        };
        self.hold.response_body = None;
        self.exchange.bytes_out = body_size as u64;
        let step = pipeline::response_body(
            &self.runtime,
            &mut self.exchange.outcome,
            body.as_deref(),
            host::now_ms(),
        );
        self.take_response(step)
    }

    /// The root context released the request (or response) held for a body that never came.
    fn body_released(&mut self, response: bool) {
        if let Some(r) = self.exchange.outcome.sideband.as_mut() {
            r.body_never_came(response);
        }
    }

    /// Carry out a response step.
    fn take_response(&mut self, step: ResponseStep) -> Action {
        match step {
            ResponseStep::Continue => Action::Continue,
            ResponseStep::AwaitBody { max_bytes, wait_ms } => {
                self.hold.response_body = Some(max_bytes);
                self.wait_for_body(wait_ms, true);
                Action::Pause
            }
            ResponseStep::Call(call) => self.call(&call, true),
            ResponseStep::Replace {
                status,
                headers,
                body,
            } => {
                self.exchange.response_status = u16::try_from(status).ok();
                if let Err(e) = host::send_local_reply(status, &headers, &body) {
                    log::error!("#{} api-warden: {e}", self.context_id);
                    return Action::Continue;
                }
                Action::Pause
            }
        }
    }

    /// Dispatch the call of a [`Step::Call`] (or a response's); a call that cannot leave is
    /// answered at once as a failure (no status), so nothing waits on nothing.
    fn call(&mut self, call: &CallRequest, response: bool) -> Action {
        match host::dispatch(
            &call.cluster,
            &call.headers,
            call.body.as_deref(),
            Duration::from_millis(call.timeout_ms),
        ) {
            Ok(token) => {
                self.call_token = Some(token);
                self.hold.response_call = response;
                Action::Pause
            }
            Err(e) => {
                log::warn!("#{} api-warden: call not sent: {e}", self.context_id);
                let (now, answer) = (host::now_ms(), CallAnswer::default());
                let o = &mut self.exchange.outcome;
                if response {
                    let step = pipeline::resume_response(&self.runtime, &answer, o, now);
                    self.take_response(step)
                } else {
                    let step = pipeline::resume(&self.runtime, &answer, o, now);
                    self.take(step)
                }
            }
        }
    }

    /// Add the decision's detected entries to the shared lists.
    fn carry_out_effects(&self, now_ms: u64) {
        for e in self.exchange.outcome.effects() {
            if let Err(err) = pipeline::carry_out(&self.runtime, e, &HostStore, now_ms) {
                log::warn!("#{} api-warden: {err}", self.context_id);
            }
        }
    }
}

impl Context for Http {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _t: usize) {
        if self.call_token != Some(token) {
            return;
        }
        self.call_token = None;
        let answer = host::call_answer(body_size, api_warden_core::services::MAX_CALL_BODY);
        let (now, o) = (host::now_ms(), &mut self.exchange.outcome);
        if self.hold.response_call {
            let step = pipeline::resume_response(&self.runtime, &answer, o, now);
            if self.take_response(step) == Action::Continue {
                host::resume_response();
            }
            return;
        }
        let step = pipeline::resume(&self.runtime, &answer, o, now);
        if self.take(step) == Action::Continue {
            host::resume_request();
        }
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        let now = host::now_ms();
        let headers = host::request_headers();
        let peer = host::property_string(&["source", "address"]);
        let protocol = match self.runtime.external.is_some() {
            true => host::property_string(&["request", "protocol"]),
            false => None,
        };
        let request = span(Stage::Parse, || {
            let mut view = RequestView::from_headers(headers, peer);
            view.protocol = protocol;
            Request::parse(view)
        });
        #[cfg(feature = "fault-injection")]
        if request.header("x-api-warden-fault") == Some("trap") {
            core::arch::wasm32::unreachable();
        }
        let (outcome, step) = span(Stage::Pipeline, || {
            pipeline::on_request_headers(&self.runtime, &request, end_of_stream, &HostStore, now)
        });
        if log::log_enabled!(log::Level::Trace) {
            log::trace!(
                "#{} api={:?} decision={:?}",
                self.context_id,
                outcome.api.as_ref().map(|m| &m.name),
                outcome.decision
            );
        }
        self.exchange.start_ms = now;
        self.exchange.request = request;
        self.exchange.outcome = outcome;
        self.carry_out_effects(now);
        match step {
            Step::AwaitAdminBody => {
                self.admin_pending = true;
                self.admin_waits.borrow_mut().push((
                    self.context_id,
                    now.saturating_add(api_warden_core::admin::BODY_WAIT_MS),
                ));
                Action::Pause
            }
            step => self.take_held(step),
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some(max) = self.hold.request_body {
            if !self.body_came() {
                // Released by the root context before any body came.
                self.hold.request_body = None;
                self.body_released(false);
                self.exchange.bytes_in += body_size as u64;
                return Action::Continue;
            }
            return self.collect_request_body(max, body_size, end_of_stream);
        }
        if self.call_token.is_some() && !self.hold.response_call {
            // The request waits on a call: keep its body until the answer.
            self.hold.request_body_len = body_size;
            self.exchange.bytes_in = body_size as u64;
            return Action::Pause;
        }
        if !self.admin_pending {
            // `body_size` is the data received in this callback.
            self.exchange.bytes_in += body_size as u64;
            return Action::Continue;
        }
        let id = self.context_id;
        self.admin_waits.borrow_mut().retain(|(c, _)| *c != id);
        if body_size > api_warden_core::admin::MAX_BODY {
            self.admin_pending = false;
            return self.admin_reply(api_warden_core::admin::Reply {
                status: 413,
                body: r#"{"error":"body too large"}"#.into(),
            });
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.admin_pending = false;
        let body = host::request_body(body_size);
        let r = pipeline::admin_body(
            &self.runtime,
            &self.exchange.request,
            &body,
            &HostStore,
            host::now_ms(),
        );
        self.admin_reply(r)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some(max) = self.hold.response_body {
            if !self.body_came() {
                self.hold.response_body = None;
                self.body_released(true);
                self.exchange.bytes_out += body_size as u64;
                return Action::Continue;
            }
            return self.collect_response_body(max, body_size, end_of_stream);
        }
        if self.call_token.is_some() && self.hold.response_call {
            return Action::Pause;
        }
        self.exchange.bytes_out += body_size as u64;
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _n: usize) -> Action {
        // Trailers end a held body (HTTP/2, gRPC): it is complete.
        if let Some(max) = self.hold.request_body {
            self.body_came();
            let len = self.hold.request_body_len;
            return self.collect_request_body(max, len, true);
        }
        if self.call_token.is_some() && !self.hold.response_call {
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _n: usize) -> Action {
        if let Some(max) = self.hold.response_body {
            self.body_came();
            let len = self.hold.response_body_len;
            return self.collect_response_body(max, len, true);
        }
        if self.call_token.is_some() && self.hold.response_call {
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        let sideband = self.runtime.external.is_some();
        // Without the record's response headers, on_log reads the status as a property.
        let for_record =
            self.needs_record() && self.runtime.services.analytics.parts.response_headers;
        if !for_record && !sideband {
            return Action::Continue;
        }
        let headers = host::response_headers();
        self.exchange.response_status = headers
            .iter()
            .find(|(k, _)| k == ":status")
            .and_then(|(_, v)| v.parse().ok());
        if sideband {
            let x = &self.exchange;
            let status = x.response_status.unwrap_or(0);
            if let Some(call) =
                pipeline::response_call(&self.runtime, &x.request, &x.outcome, status, &headers)
            {
                let host = WasmHost { stats: &self.stats };
                self.response_calls.borrow_mut().push(call, &host);
            }
        }
        let status = self.exchange.response_status.unwrap_or(0);
        let step = if sideband {
            let o = &mut self.exchange.outcome;
            let now = host::now_ms();
            pipeline::on_response_headers(&self.runtime, o, status, &headers, end_of_stream, now)
        } else {
            ResponseStep::Continue
        };
        self.exchange.response_headers = headers;
        self.take_response(step)
    }

    fn on_log(&mut self) {
        let id = self.context_id;
        self.admin_waits.borrow_mut().retain(|(c, _)| *c != id);
        if self.hold.request_body.is_some() || self.hold.response_body.is_some() {
            let response = self.hold.response_body.is_some();
            self.body_waits.borrow_mut().retain(|w| w.context_id != id);
            // Still held for a body that never came when the stream ended (the client went
            // away): no call was made.
            if !self.hold.body_came {
                self.body_released(response);
            }
        }
        let needs_record = self.needs_record();
        let x = &mut self.exchange;
        let o = &x.outcome;
        if !o.admin {
            for c in stats::request_counters(o.api.is_some(), &o.identity, o.decision.as_ref()) {
                self.stats.count(c);
            }
        }
        if let Some(r) = &o.sideband {
            for c in stats::sideband_counters(r) {
                self.stats.count(c);
            }
        }
        if !needs_record {
            return;
        }
        if x.response_status.is_none() {
            x.response_status =
                host::property_u64(&["response", "code"]).and_then(|c| u16::try_from(c).ok());
        }
        x.end_ms = host::now_ms();
        // Only a TLS connection can be mTLS: Envoy sets x-forwarded-proto from the downstream
        // connection (use_remote_address), so plaintext requests skip the property lookup.
        let tls = x.request.header("x-forwarded-proto") == Some("https")
            || x.request.view.scheme == "https";
        if tls && host::property(&["connection", "mtls"]).is_some_and(|b| b.first() == Some(&1)) {
            x.client_cert = Some(ClientCert {
                subject: host::property_string(&["connection", "subject_peer_certificate"]),
                issuer: None,
                not_before: None,
                not_after: None,
                valid: true,
            });
        }
        let analytics = &self.runtime.services.analytics;
        let fs = analytics.filter_state;
        RECORD.with_borrow_mut(|rec| {
            span(Stage::Record, || {
                record::write(rec, x, analytics.redact, analytics.parts);
            });
            if fs != FilterState::None {
                host::set_filter_state("api_warden.record", rec);
            }
            if let Some(ex) = &self.exporter {
                // The exporter keeps the record: it takes the buffer (the next request's is
                // allocated anew, as without reuse).
                let text = String::from_utf8(std::mem::take(rec)).unwrap_or_default();
                ex.borrow_mut().push(text);
            }
        });
        if fs == FilterState::All {
            let c = &x.outcome.identity.client;
            for (k, v) in [
                ("api_warden.client_ip", c.ip.as_deref()),
                ("api_warden.username", c.username.as_deref()),
                ("api_warden.client_id", c.client_id.as_deref()),
                (
                    "api_warden.api",
                    x.outcome.api.as_ref().map(|m| m.name.as_str()),
                ),
            ] {
                if let Some(v) = v {
                    host::set_filter_state(k, v.as_bytes());
                }
            }
            if let Some(d) = &x.outcome.decision {
                host::set_filter_state("api_warden.decision", d.verdict.as_str().as_bytes());
                if let Some(r) = d.reason().or(d.would_block()) {
                    host::set_filter_state("api_warden.reason", r.as_bytes());
                }
            }
        }
    }
}
