//! The request pipeline: configuration loaded into a [`Runtime`], then per request match → identify
//! → decide → (detected attack) → what the adapter must do. Data in, decision out; shared data
//! only through [`Store`]. No host calls.

use crate::admin::{self, AdminRequest, Reply};
use crate::config::{self, Compiled};
use crate::decision::{self, Decision, Verdict};
use crate::error::Result;
use crate::identity::{self, IdType, Identity};
use crate::lists::{self, ConfigLists, Entry, ListKind, Lookup, Source, Store};
use crate::record::MatchInfo;
use crate::request::RequestView;
use crate::services::Services;

/// Everything loaded from one plugin configuration; immutable and shared by every HTTP context.
#[derive(Debug)]
pub struct Runtime {
    pub config: Compiled,
    pub services: Services,
    pub config_lists: ConfigLists,
    /// Feed buckets this VM has read (see [`lists::FeedCache`]).
    pub feed_cache: lists::FeedCache,
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
        })
    }
}

/// What the adapter must do after the request headers.
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
}

/// What the pipeline learned about a request (kept by the HTTP context for the record).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub api: Option<MatchInfo>,
    pub identity: Identity,
    pub decision: Option<Decision>,
    pub admin: bool,
}

/// Handle the request headers at `now_ms` (Unix milliseconds).
pub fn on_request_headers(
    rt: &Runtime,
    req: &RequestView,
    end_of_stream: bool,
    store: &impl Store,
    now_ms: u64,
) -> (Outcome, Step) {
    let now_s = now_ms / 1000;
    let cfg = &rt.config;
    if let Some(a) = &rt.services.admin {
        let norm = crate::router::normalize_path(&req.path);
        if admin::is_admin_path(a, &norm) {
            let out = Outcome {
                identity: identity::identify(req, None, &cfg.ase, now_s as i64),
                admin: true,
                ..Outcome::default()
            };
            // Answer from the headers whenever possible: Envoy never delivers the body of a
            // request whose headers a proxy-wasm filter holds back, so the parameters of a
            // change travel in the query string (any body is then ignored).
            if end_of_stream || admin::has_query_params(&req.path) {
                let reply = admin_body(rt, req, b"", store, now_ms);
                return (out, admin_step(reply));
            }
            return (out, Step::AwaitAdminBody);
        }
    }
    let m = cfg.match_api(&req.authority, &req.path);
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
    if let Some(ip) = &decision.detect_ip {
        let entry = Entry {
            value: ip.clone(),
            source: Source::Detected,
            expires_at: lists::expiry(now_ms, cfg.ase.detected_attack_ttl_s),
        };
        if let Err(e) = lists::add(store, ListKind::Deny, IdType::Ip, entry, now_s) {
            log::warn!("api-warden: recording detected attack from {ip} failed: {e}");
        }
    }
    let step = if decision.verdict == Verdict::Block {
        let b = &cfg.ase.block_response;
        Step::Reply {
            status: b.status,
            headers: b.headers.clone(),
            body: b.body.clone(),
        }
    } else {
        Step::Continue
    };
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
    (out, step)
}

/// Answer an admin request whose body is complete (empty when none was sent).
pub fn admin_body(
    rt: &Runtime,
    req: &RequestView,
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
    let norm = crate::router::normalize_path(&req.path);
    let ar = AdminRequest {
        method: &req.method,
        path: &norm,
        raw_path: &req.path,
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
