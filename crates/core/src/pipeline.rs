//! The request pipeline: configuration loaded into a [`Runtime`], then per request admin check →
//! match → identify → decide → (an external decision service) → the [`Step`] the adapter takes,
//! with the decision's [`Effect`]s for the adapter to carry out. Data in, decision out; shared
//! data only through [`Store`]. No host calls.

use crate::admin::{self, AdminRequest, Reply};
use crate::call::{CallAnswer, CallRequest};
use crate::config::{self, BlockResponse, Compiled};
use crate::decision::{self, Decision, Effect, Verdict};
use crate::error::Result;
use crate::identity::{self, Identity};
use crate::lists::{self, ConfigLists, Entry, ListKind, Lookup, Source, Store};
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
        Ok(Runtime {
            config,
            services,
            config_lists,
            feed_cache: lists::FeedCache::default(),
            external: None,
        })
    }
}

/// A decision service the pipeline asks once its own checks let a request through (the sideband
/// modes implement it). The pipeline pauses with [`Step::Call`]; the adapter dispatches the call
/// and hands the answer to [`resume`], which asks [`External::answer`] what comes next.
pub trait External: std::fmt::Debug {
    /// The call to make for this request, or `None` to go on without one.
    fn request(&self, req: &Request, outcome: &Outcome) -> Option<CallRequest>;
    /// What the answer (a timeout or a failure is an answer with no status) means.
    fn answer(&self, answer: &CallAnswer, outcome: &mut Outcome) -> Step;
}

/// What the adapter must do next with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Forward the request.
    Continue,
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
    /// Hold the request, dispatch this call, and hand its answer to [`resume`].
    Call(CallRequest),
}

/// What the pipeline learned about a request (kept by the HTTP context for the record).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub api: Option<MatchInfo>,
    pub identity: Identity,
    pub decision: Option<Decision>,
    pub admin: bool,
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
    let identity = identity::identify(req, api, &cfg.ase, now_s as i64);
    let lookup = Lookup::new(
        store,
        &rt.config_lists,
        now_s,
        cfg.ase.enable_ase_detected_attack,
    )
    .with_cache(&rt.feed_cache);
    let decision = decision::decide(api, &cfg.ase, &identity.client, &lookup);
    let blocked = decision.verdict == Verdict::Block;
    let out = Outcome {
        api: m.map(|m| MatchInfo {
            name: m.api.name.clone(),
            base_path: m.base_path.to_string(),
            trailing_path: m.trailing_path,
        }),
        identity,
        decision: Some(decision),
        admin: false,
    };
    if blocked {
        return (out, block_step(&cfg.ase.block_response));
    }
    match rt.external.as_ref().and_then(|e| e.request(req, &out)) {
        Some(call) => (out, Step::Call(call)),
        None => (out, Step::Continue),
    }
}

/// Continue a request paused by [`Step::Call`] with the call's answer.
pub fn resume(rt: &Runtime, answer: &CallAnswer, outcome: &mut Outcome) -> Step {
    match &rt.external {
        Some(e) => e.answer(answer, outcome),
        None => Step::Continue,
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
        Effect::AddDetected { id_type, value } => {
            let entry = Entry {
                value: value.clone(),
                source: Source::Detected,
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
