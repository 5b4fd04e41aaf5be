//! The request pipeline: configuration loaded into a [`Runtime`], then per request admin check →
//! match → identify → decide → (an external decision service) → the [`Step`] the adapter takes,
//! with the decision's [`Effect`]s for the adapter to carry out. Data in, decision out; shared
//! data only through [`Store`]. No host calls.

use crate::admin::{self, AdminRequest, Reply};
use crate::call::{CallAnswer, CallRequest};
use crate::config::Api;
use crate::config::{self, BlockResponse, Compiled};
use crate::decision::{self, Cause, Decision, Effect, Local, Mode, Verdict, Violation};
use crate::error::Result;
use crate::identity::{self, Identity};
use crate::lists::{self, ConfigLists, Entry, ListKind, Lookup, Store};
use crate::protect::flow::{self, Flow};
use crate::record::MatchInfo;
use crate::request::Request;
use crate::services::Services;

/// Everything loaded from one plugin configuration; immutable and shared by every HTTP context.
#[derive(Debug)]
pub struct Runtime {
    pub config: Compiled,
    pub services: Services,
    pub config_lists: ConfigLists,
    /// Feed buckets this VM has read (see [`lists::FeedCache`]).
    pub feed_cache: lists::FeedCache,
    /// The decision service asked after the local checks, if any.
    pub external: Option<Box<dyn External>>,
}

impl Runtime {
    /// Parse, validate and compile a plugin configuration ([`config::load`]).
    pub fn load(bytes: &[u8]) -> Result<Runtime> {
        let config = config::load(bytes)?;
        let services = config.services.clone();
        let config_lists = ConfigLists::new(&config.deny_list, &config.allow_list);
        let external = services
            .sideband
            .as_ref()
            .map(|s| crate::sideband::external(s, &config.ase.block_response));
        Ok(Runtime {
            config,
            services,
            config_lists,
            feed_cache: lists::FeedCache::default(),
            external,
        })
    }
}

/// A decision service the pipeline asks once its own checks let a request through (the sideband
/// modes implement it). The pipeline pauses with [`Step::Call`]; the adapter dispatches the call
/// and hands the answer to [`resume`], which asks [`External::answer`] what comes next. A service
/// that reads bodies pauses first with [`Step::AwaitBody`] ([`request_body`]); one that rewrites
/// responses holds them through [`ResponseStep`] ([`on_response_headers`], [`response_body`],
/// [`resume_response`]).
pub trait External: std::fmt::Debug {
    /// What to do with a request the local checks let through at `now_ms`: usually
    /// `Some(Step::Call(…))` (or [`Step::AwaitBody`] when a body follows, `end_of_stream`
    /// false); `None` to go on without a call (or a reply, when the service is known to be down
    /// and fails closed).
    fn request(
        &self,
        req: &Request,
        outcome: &mut Outcome,
        end_of_stream: bool,
        now_ms: u64,
    ) -> Option<Step>;
    /// The body a [`Step::AwaitBody`] waited for: complete, or `None` when it grew past the
    /// limit (the request is then held until the call's answer, its body unread).
    fn request_body(
        &self,
        _req: &Request,
        _outcome: &mut Outcome,
        _body: Option<&[u8]>,
        _now_ms: u64,
    ) -> Step {
        Step::Continue
    }
    /// What the answer (a timeout or a failure is an answer with no status) means.
    fn answer(&self, answer: &CallAnswer, outcome: &mut Outcome, now_ms: u64) -> Step;
    /// The fire-and-forget report of the upstream's response (`status`, `headers`), if any.
    fn response_call(
        &self,
        _req: &Request,
        _outcome: &Outcome,
        _status: u16,
        _headers: &[(String, String)],
    ) -> Option<CallRequest> {
        None
    }
    /// What to do with the upstream's response headers (`status`, `headers` without
    /// `:status`) before they go to the client.
    fn response(
        &self,
        _outcome: &mut Outcome,
        _status: u16,
        _headers: &[(String, String)],
        _end_of_stream: bool,
        _now_ms: u64,
    ) -> ResponseStep {
        ResponseStep::Continue
    }
    /// The response body a [`ResponseStep::AwaitBody`] waited for (`None`: past the limit).
    fn response_body(
        &self,
        _outcome: &mut Outcome,
        _body: Option<&[u8]>,
        _now_ms: u64,
    ) -> ResponseStep {
        ResponseStep::Continue
    }
    /// What the answer of a response-phase [`ResponseStep::Call`] means.
    fn response_answer(
        &self,
        _answer: &CallAnswer,
        _outcome: &mut Outcome,
        _now_ms: u64,
    ) -> ResponseStep {
        ResponseStep::Continue
    }
    /// What a request (or response) held for a body that never came must get: go on (fail open)
    /// or a reply.
    fn body_never_came(&self) -> Step {
        Step::Continue
    }
}

/// What the adapter must do next with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Forward the request.
    Continue,
    /// Forward the request with these changes.
    Forward(Box<RequestEdit>),
    /// Answer locally (blocked client, or an admin reply).
    Reply {
        status: u32,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// An admin request with a body and no query parameters: call [`admin_body`] once the body
    /// is complete. Envoy delivers the body of a request whose headers a wasm filter holds back
    /// only with `allow_on_headers_stop_iteration: true` on the filter (the README says so);
    /// without it, pass the parameters in the query string.
    AwaitAdminBody,
    /// Hold the request and collect its body, up to `max_bytes`, then call [`request_body`]
    /// (with `None` as soon as it is bigger). When no body arrives within `wait_ms` (Envoy
    /// without `allow_on_headers_stop_iteration`), take [`body_never_came`].
    AwaitBody { max_bytes: usize, wait_ms: u64 },
    /// Hold the request, dispatch this call, and hand its answer to [`resume`].
    Call(CallRequest),
}

/// Changes to the request before it is forwarded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestEdit {
    /// The new `:method`.
    pub method: Option<String>,
    /// The new `:path` (path and query).
    pub path: Option<String>,
    /// Headers to set, in order: every value of `name` is replaced by `values` (none: removed).
    pub headers: Vec<HeaderEdit>,
    /// The new body (the edit's headers fix `content-length`).
    pub body: Option<Vec<u8>>,
}

/// One header's new values (lowercase name; no values: the header is removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderEdit {
    pub name: String,
    pub values: Vec<String>,
}

/// What the adapter must do next with a response from upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseStep {
    /// Send it on unchanged.
    Continue,
    /// Hold it and collect its body up to `max_bytes`, then call [`response_body`] (with `None`
    /// as soon as it is bigger); [`body_never_came`] after `wait_ms` without any body.
    AwaitBody { max_bytes: usize, wait_ms: u64 },
    /// Keep holding it, dispatch this call, and hand its answer to [`resume_response`].
    Call(CallRequest),
    /// Send this response instead of the upstream's.
    Replace {
        status: u32,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
}

/// What the pipeline learned about a request (kept by the HTTP context for the record).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub api: Option<MatchInfo>,
    pub identity: Identity,
    pub decision: Option<Decision>,
    pub admin: bool,
    /// The decoy's `response_def`, on a decoy request.
    pub decoy_response_def: Option<String>,
    /// What the sideband call did, when one was made (or skipped).
    pub sideband: Option<crate::sideband::Report>,
    /// PingAuthorize's exchange: what was sent, to diff its answers against and for the response
    /// call.
    pub paz: Option<Box<crate::sideband::paz::Exchange>>,
}

impl Outcome {
    /// What the decision asks the adapter to carry out.
    pub fn effects(&self) -> &[Effect] {
        self.decision.as_ref().map_or(&[], |d| d.effects.as_slice())
    }
}

/// Handle the request headers at `now_ms` (Unix milliseconds).
pub fn on_request_headers(
    rt: &Runtime,
    req: &Request,
    end_of_stream: bool,
    store: &impl Store,
    now_ms: u64,
) -> (Outcome, Step) {
    let now_s = now_ms / 1000;
    let cfg = &rt.config;
    if let Some(a) = &rt.services.admin {
        if admin::is_admin_request(a, req) {
            let out = Outcome {
                identity: identity::identify(req, None, &cfg.ase, now_s as i64),
                admin: true,
                ..Outcome::default()
            };
            // A wrong or missing key is answered from the headers, body or not. Otherwise answer
            // from the headers whenever possible: without allow_on_headers_stop_iteration Envoy
            // never delivers the body of a request whose headers a filter holds back, so the
            // parameters of a change may travel in the query string (any body is then ignored).
            if let Some(r) = admin::unauthorized(a, req.header(admin::KEY_HEADER)) {
                return (out, admin_step(r));
            }
            if end_of_stream || admin::has_query_params(&req.query) {
                let reply = admin_body(rt, req, b"", store, now_ms);
                return (out, admin_step(reply));
            }
            return (out, Step::AwaitAdminBody);
        }
    }
    let m = cfg.match_request(req);
    let api = m.as_ref().map(|m| m.api);
    let records = rt.services.analytics.records();
    let identity = identity::identify_with(req, api, &cfg.ase, now_s as i64, records);
    let lookup = Lookup::new(
        store,
        &rt.config_lists,
        now_s,
        cfg.ase.enable_ase_detected_attack,
    )
    .with_cache(&rt.feed_cache);
    let local = m.as_ref().map_or_else(Local::default, |m| {
        local_checks(m.api, &m.trailing_path, req, !end_of_stream)
    });
    let mut decision = decision::decide(api, &cfg.ase, &identity.client, &lookup, local);
    if let Some(api) = api {
        flow_control(
            api,
            &identity.client,
            &lookup,
            &cfg.ase,
            &mut decision,
            now_s,
        );
    }
    let step = api.and_then(|api| local_reply(api, &cfg.ase, &decision, req));
    let decoy_response_def = api
        .and_then(|a| a.protect.decoy.as_ref())
        .filter(|_| decision.decoy)
        .map(|d| d.status_text.clone())
        .filter(|t| !t.is_empty());
    let out = Outcome {
        api: m.map(|m| MatchInfo {
            name: m.api.name.clone(),
            base_path: m.base_path.to_string(),
            trailing_path: m.trailing_path,
        }),
        identity,
        decision: Some(decision),
        admin: false,
        decoy_response_def,
        sideband: None,
        paz: None,
    };
    if let Some(step) = step {
        return (out, step);
    }
    let mut out = out;
    match rt
        .external
        .as_ref()
        .and_then(|e| e.request(req, &mut out, end_of_stream, now_ms))
    {
        Some(step) => (out, step),
        None => (out, Step::Continue),
    }
}

/// The protections decided from the request alone: decoy, then pattern enforcement.
fn local_checks(api: &Api, trailing_path: &str, req: &Request, has_body: bool) -> Local {
    let p = &api.protect;
    // As lax upstreams read the path too (`;` parameters, `%2F`, `\`), like the admin check.
    let upstream = req
        .upstream_path
        .as_deref()
        .and_then(|u| crate::router::trailing_path(&api.url, u));
    let covers = |d: &crate::protect::decoy::Decoy| {
        d.covers(trailing_path) || upstream.is_some_and(|u| d.covers(u))
    };
    if p.decoy.as_ref().is_some_and(covers) {
        return Local {
            decoy: true,
            ..Local::default()
        };
    }
    let Some(pattern) = &p.pattern else {
        return Local::default();
    };
    let violation = pattern.check(req, has_body);
    Local {
        decoy: false,
        violation,
        redirect: violation == Some(Violation::Protocol) && pattern.redirect_for(req).is_some(),
    }
}

/// Flow control, last (a client that is denied or allow-listed does not spend its budget): count
/// the request against the API's threshold and block (or, in monitor mode, mark) it when over.
fn flow_control<S: Store>(
    api: &Api,
    client: &crate::identity::Client,
    lookup: &Lookup<'_, S>,
    ase: &crate::config::Ase,
    d: &mut Decision,
    now_s: u64,
) {
    let (Some(t), Some(ip)) = (api.protect.flow, client.ip.as_deref()) else {
        return;
    };
    if d.verdict != Verdict::Allow || d.cause.is_some() {
        return;
    }
    match flow::hit(lookup.store, &api.name, ip, t, now_s) {
        Flow::Allowed => {}
        Flow::Uncounted => d.flow_uncounted = true,
        Flow::Over { retry_after_s } => {
            d.cause = Some(Cause::FlowControl);
            if let Some(t) = decision::allow_listed(client, lookup) {
                d.mode = Mode::AllowListed(t);
            } else if ase.enable_firewall && api.enable_blocking {
                d.verdict = Verdict::Block;
                d.retry_after_s = Some(retry_after_s);
            } else {
                d.mode = Mode::Monitored;
            }
        }
    }
}

/// The local answer a decision calls for: the decoy response, the https redirect, the pattern
/// error, flow control's 429, or the block response. `None` to go on.
fn local_reply(api: &Api, ase: &crate::config::Ase, d: &Decision, req: &Request) -> Option<Step> {
    let p = &api.protect;
    if d.decoy {
        let decoy = p.decoy.as_ref()?;
        return Some(Step::Reply {
            status: decoy.status,
            headers: Vec::new(),
            body: decoy.body.clone(),
        });
    }
    match (d.verdict, d.cause) {
        (Verdict::Allow, _) => None,
        (Verdict::Redirect, _) => {
            let r = p.pattern.as_ref()?.redirect_for(req)?;
            Some(Step::Reply {
                status: r.status,
                headers: vec![("location".into(), r.location(req))],
                body: String::new(),
            })
        }
        (Verdict::Block, Some(Cause::Pattern(_))) => {
            let pattern = p.pattern.as_ref()?;
            Some(Step::Reply {
                status: pattern.error_status,
                headers: vec![("content-type".into(), "text/plain".into())],
                body: pattern.error_body.clone(),
            })
        }
        (Verdict::Block, Some(Cause::FlowControl)) => Some(Step::Reply {
            status: 429,
            headers: vec![(
                "retry-after".into(),
                d.retry_after_s.unwrap_or(1).to_string(),
            )],
            body: String::new(),
        }),
        (Verdict::Block, _) => Some(block_step(&ase.block_response)),
    }
}

/// Continue a request paused by [`Step::Call`] with the call's answer.
pub fn resume(rt: &Runtime, answer: &CallAnswer, outcome: &mut Outcome, now_ms: u64) -> Step {
    match &rt.external {
        Some(e) => e.answer(answer, outcome, now_ms),
        None => Step::Continue,
    }
}

/// The call reporting the upstream's response to the external service, if it wants one.
pub fn response_call(
    rt: &Runtime,
    req: &Request,
    outcome: &Outcome,
    status: u16,
    headers: &[(String, String)],
) -> Option<CallRequest> {
    rt.external
        .as_ref()
        .and_then(|e| e.response_call(req, outcome, status, headers))
}

/// Continue a request held by [`Step::AwaitBody`] with its body (`None`: bigger than the limit).
pub fn request_body(
    rt: &Runtime,
    req: &Request,
    outcome: &mut Outcome,
    body: Option<&[u8]>,
    now_ms: u64,
) -> Step {
    match &rt.external {
        Some(e) => e.request_body(req, outcome, body, now_ms),
        None => Step::Continue,
    }
}

/// What a request or response held for a body that never came gets (see [`Step::AwaitBody`]).
pub fn body_never_came(rt: &Runtime) -> Step {
    rt.external
        .as_ref()
        .map_or(Step::Continue, |e| e.body_never_came())
}

/// Handle the upstream's response headers (`status`, `headers` without `:status`).
pub fn on_response_headers(
    rt: &Runtime,
    outcome: &mut Outcome,
    status: u16,
    headers: &[(String, String)],
    end_of_stream: bool,
    now_ms: u64,
) -> ResponseStep {
    match &rt.external {
        Some(e) => e.response(outcome, status, headers, end_of_stream, now_ms),
        None => ResponseStep::Continue,
    }
}

/// Continue a response held by [`ResponseStep::AwaitBody`] with its body.
pub fn response_body(
    rt: &Runtime,
    outcome: &mut Outcome,
    body: Option<&[u8]>,
    now_ms: u64,
) -> ResponseStep {
    match &rt.external {
        Some(e) => e.response_body(outcome, body, now_ms),
        None => ResponseStep::Continue,
    }
}

/// Continue a response held by [`ResponseStep::Call`] with the call's answer.
pub fn resume_response(
    rt: &Runtime,
    answer: &CallAnswer,
    outcome: &mut Outcome,
    now_ms: u64,
) -> ResponseStep {
    match &rt.external {
        Some(e) => e.response_answer(answer, outcome, now_ms),
        None => ResponseStep::Continue,
    }
}

/// The configured block response as a step.
pub fn block_step(b: &BlockResponse) -> Step {
    Step::Reply {
        status: b.status,
        headers: b.headers.clone(),
        body: b.body.clone(),
    }
}

/// Carry out one effect of a decision on the shared lists at `now_ms`.
pub fn carry_out(rt: &Runtime, effect: &Effect, store: &impl Store, now_ms: u64) -> Result<()> {
    match effect {
        Effect::AddDetected {
            id_type,
            value,
            source,
        } => {
            let entry = Entry {
                value: value.clone(),
                source: *source,
                expires_at: lists::expiry(now_ms, rt.config.ase.detected_attack_ttl_s),
            };
            lists::add(store, ListKind::Deny, *id_type, entry, now_ms / 1000)
                .map(|_| ())
                .map_err(|e| crate::error::Error::Host(format!("adding a detected entry: {e}")))
        }
    }
}

/// Answer an admin request whose body is complete (empty when none was sent).
pub fn admin_body(
    rt: &Runtime,
    req: &Request,
    body: &[u8],
    store: &impl Store,
    now_ms: u64,
) -> Reply {
    let Some(a) = &rt.services.admin else {
        return Reply {
            status: 404,
            body: String::new(),
        };
    };
    if body.len() > admin::MAX_BODY {
        return Reply {
            status: 413,
            body: r#"{"error":"body too large"}"#.into(),
        };
    }
    let ar = AdminRequest {
        method: &req.view.method,
        path: &req.path,
        query: &req.query,
        key: req.header(admin::KEY_HEADER),
        body,
    };
    admin::handle(a, &ar, store, &rt.config_lists, now_ms)
}

/// An admin reply as a pipeline step.
pub fn admin_step(r: Reply) -> Step {
    Step::Reply {
        status: r.status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: r.body,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "pipeline/protections_tests.rs"]
mod protections_tests;
