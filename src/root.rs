//! The root context: loads the configuration once per worker, runs the attack-list poll
//! ([`Poller`]) and the export ([`ExportDriver`]) of the core on its tick, publishes stats, and
//! creates the HTTP contexts. It decides nothing: it reads call answers from the host and hands
//! them over. Host calls go through [`crate::host`] only.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use std::time::Duration;

use api_warden_core::config::Notice;
use api_warden_core::export::{Answered, ExportDriver, Exporter};
use api_warden_core::pipeline::Runtime;
use api_warden_core::pipeline::Step;
use api_warden_core::poll::Poller;
use api_warden_core::record::Exchange;
use api_warden_core::sideband::{ResponseCalls, Service};
use api_warden_core::stats::Counter;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::host::{self, WasmHost};
use crate::http::{BodyWait, Http};
use crate::metrics::Stats;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(Root::new(context_id))
    });
}}

/// The tick while an admin API is configured (a held admin request is answered at most this late
/// after its deadline).
const ADMIN_TICK_MS: u64 = 250;

/// The tick while this VM writes an attack-list feed: its slices ([`WRITE_SLICE_MS`] each)
/// follow each other as soon as the requests that queued up meanwhile are served.
///
/// [`WRITE_SLICE_MS`]: api_warden_core::poll::WRITE_SLICE_MS
const WRITE_TICK_MS: u64 = 1;

/// How often queued sideband response calls leave (their delay at most; ASE matches them to the
/// request by correlation id).
const RESPONSE_CALL_TICK_MS: u64 = 100;

struct Root {
    context_id: u32,
    runtime: Option<Rc<Runtime>>,
    stats: Rc<Stats>,
    /// Shared with the HTTP contexts, which queue records.
    exporter: Option<Rc<RefCell<Exporter>>>,
    poller: Poller,
    export: ExportDriver,
    /// Sideband response calls queued by the HTTP contexts.
    response_calls: Rc<RefCell<ResponseCalls>>,
    /// Admin requests waiting for a body: answered 400 on the tick after their deadline.
    admin_waits: Rc<RefCell<Vec<(u32, u64)>>>,
    /// Requests and responses held for a body: released on the tick after their deadline.
    body_waits: Rc<RefCell<Vec<BodyWait>>>,
    next_gauges_ms: u64,
    /// The tick period the configuration asks for.
    tick_ms: u64,
    /// Whether the tick is [`WRITE_TICK_MS`] (a feed is being written).
    write_tick: bool,
    /// While the tick is short, the other periodic jobs run at `tick_ms` still: next at this time.
    next_jobs_ms: u64,
    /// Whether this VM has created an HTTP context (the main thread's VM never does): a VM that
    /// serves no request writes a feed in long slices.
    serving: Cell<bool>,
}

impl Root {
    fn new(context_id: u32) -> Root {
        Root {
            context_id,
            runtime: None,
            stats: Rc::new(Stats::default()),
            exporter: None,
            // A random per-VM identity for the poll election.
            poller: Poller::new(RandomState::new().build_hasher().finish()),
            export: ExportDriver::default(),
            response_calls: Rc::new(RefCell::new(ResponseCalls::default())),
            admin_waits: Rc::new(RefCell::new(Vec::new())),
            body_waits: Rc::new(RefCell::new(Vec::new())),
            next_gauges_ms: 0,
            tick_ms: 1000,
            write_tick: false,
            next_jobs_ms: 0,
            serving: Cell::new(false),
        }
    }

    /// A short tick while the poller writes a feed, the configured one otherwise.
    fn follow_feed_write(&mut self) {
        let writing = self.poller.writing();
        if writing != self.write_tick {
            self.write_tick = writing;
            let ms = if writing { WRITE_TICK_MS } else { self.tick_ms };
            host::set_tick_period(Duration::from_millis(ms));
        }
    }

    /// Keep buffered records across a reload, with the new settings.
    fn configure_exporter(&mut self, rt: &Runtime) {
        let s = &rt.services.analytics;
        if s.cluster.is_none() {
            self.exporter = None;
        } else if let Some(ex) = &self.exporter {
            ex.borrow_mut().reconfigure(s);
        } else {
            self.exporter = Some(Rc::new(RefCell::new(Exporter::new(s))));
        }
    }
}

impl Root {
    /// Answer 400 to the admin requests whose body did not come by their deadline (Envoy without
    /// `allow_on_headers_stop_iteration`): a held request never hangs.
    fn answer_admin_waits(&self, rt: &Runtime, now: u64) {
        let Some(settings) = &rt.services.admin else {
            return;
        };
        let due: Vec<u32> = {
            let mut waits = self.admin_waits.borrow_mut();
            let due = waits
                .iter()
                .filter(|(_, d)| *d <= now)
                .map(|(c, _)| *c)
                .collect();
            waits.retain(|(_, d)| *d > now);
            due
        };
        for id in due {
            let r = api_warden_core::admin::body_never_came(settings);
            let headers = [("content-type".to_string(), "application/json".to_string())];
            let sent = host::set_effective_context(id)
                .and_then(|()| host::send_local_reply(r.status, &headers, r.body.as_bytes()));
            match sent {
                Ok(()) => {
                    self.stats.inc(Counter::AdminRequests, 1);
                    log::warn!("#{id} api-warden: admin request body never arrived; answered 400 (set allow_on_headers_stop_iteration, or use the query-string form)");
                }
                Err(e) => log::debug!("#{id} api-warden: {e}"),
            }
        }
    }
}

impl Root {
    /// Release the requests and responses whose body did not start by their deadline (Envoy
    /// without `allow_on_headers_stop_iteration` delivers none while the headers are held), as
    /// the sideband service says ([`pipeline::body_never_came`]): never a hang.
    fn release_body_waits(&self, rt: &Runtime, now: u64) {
        let due: Vec<BodyWait> = {
            let mut waits = self.body_waits.borrow_mut();
            let due = waits
                .iter()
                .filter(|w| w.deadline_ms <= now)
                .copied()
                .collect();
            waits.retain(|w| w.deadline_ms > now);
            due
        };
        for w in due {
            let id = w.context_id;
            if let Err(e) = host::set_effective_context(id) {
                log::debug!("#{id} api-warden: {e}");
                continue;
            }
            let what = if w.response { "response" } else { "request" };
            match api_warden_core::pipeline::body_never_came(rt) {
                Step::Reply {
                    status,
                    headers,
                    body,
                } => {
                    if let Err(e) = host::send_local_reply(status, &headers, body.as_bytes()) {
                        log::debug!("#{id} api-warden: {e}");
                    }
                    log::warn!("#{id} api-warden: the {what} body never reached the filter; answered {status} (set allow_on_headers_stop_iteration: true on the filter)");
                }
                _ => {
                    if w.response {
                        host::resume_response();
                    } else {
                        host::resume_request();
                    }
                    log::warn!("#{id} api-warden: the {what} body never reached the filter; passed without the sideband call (set allow_on_headers_stop_iteration: true on the filter)");
                }
            }
        }
    }
}

impl Context for Root {
    fn on_done(&mut self) -> bool {
        let Some(rt) = self.runtime.clone() else {
            return true;
        };
        let host = WasmHost { stats: &self.stats };
        let mut ex = self.exporter.as_ref().map(|e| e.borrow_mut());
        let pending = self
            .export
            .shutdown(&host, ex.as_deref_mut(), &rt.services.analytics);
        self.stats.flush();
        !pending
    }

    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(rt) = self.runtime.clone() else {
            return;
        };
        let host = WasmHost { stats: &self.stats };
        let attack_list = rt.services.attack_list.as_ref();
        if self.response_calls.borrow().owns(token) {
            let answer = host::call_answer(body_size, 0);
            let mut calls = self.response_calls.borrow_mut();
            calls.on_answer(&host, token, &answer);
            // The next queued call leaves now, not at the next tick.
            calls.flush(&host);
        } else if self.poller.owns(token) {
            let max_body = attack_list.map_or(0, |a| a.max_body_bytes);
            let answer = host::call_answer(body_size, max_body);
            self.poller.set_serving(self.serving.get());
            self.poller.on_answer(&host, attack_list, token, &answer);
            // A last page starts the feed write (its first slice ran already): slices follow on
            // a short tick.
            self.follow_feed_write();
        } else if self.export.owns(token) {
            let answer = host::call_answer(body_size, 0);
            let mut ex = self.exporter.as_ref().map(|e| e.borrow_mut());
            let s = &rt.services.analytics;
            if self
                .export
                .on_answer(&host, ex.as_deref_mut(), s, token, &answer)
                == Answered::Done
            {
                self.stats.flush();
                host::done();
            }
        }
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        host::follow_host_log_level();
        self.stats = Rc::new(Stats::new());
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match host::plugin_configuration() {
            Ok(b) => b,
            Err(e) => {
                log::error!("api-warden: {e}; configuration rejected");
                return false;
            }
        };
        let rt = match Runtime::load(&bytes) {
            Ok(rt) => rt,
            Err(e) => {
                log::error!("api-warden: {e}; configuration rejected");
                return false;
            }
        };
        for n in &rt.config.notices {
            match n {
                Notice::Info(m) => log::info!("api-warden: {m}"),
                Notice::Warn(m) => log::warn!("api-warden: {m}"),
            }
        }
        log::info!(
            "api-warden: configuration loaded on root #{}: {} APIs, admin {}, attack list {}, export {}",
            self.context_id,
            rt.config.apis.len(),
            if rt.services.admin.is_some() { "on" } else { "off" },
            if rt.services.attack_list.is_some() { "on" } else { "off" },
            if rt.services.analytics.cluster.is_some() { "on" } else { "off" },
        );
        self.stats.inc(Counter::ConfigLoads, 1);
        self.configure_exporter(&rt);
        // Every second at least: attack-list polls and list-size gauges.
        let mut tick_ms = 1000u64;
        if rt.services.analytics.cluster.is_some() {
            let f = rt.services.analytics.flush_interval_ms.clamp(50, 1000);
            tick_ms = tick_ms.min(f);
        }
        // A held admin request whose body never comes is answered within about a second.
        if rt.services.admin.is_some() {
            tick_ms = tick_ms.min(ADMIN_TICK_MS);
        }
        // Sideband response calls leave from the root context, on its tick; a request held
        // for a body that never comes is released within about a quarter second.
        match rt.services.sideband.as_ref() {
            Some(s) if s.service == Service::PingAuthorize => tick_ms = tick_ms.min(ADMIN_TICK_MS),
            Some(s) if s.response_call => tick_ms = tick_ms.min(RESPONSE_CALL_TICK_MS),
            _ => {}
        }
        self.tick_ms = tick_ms;
        let period = if self.write_tick {
            WRITE_TICK_MS
        } else {
            tick_ms
        };
        host::set_tick_period(Duration::from_millis(period));
        self.runtime = Some(Rc::new(rt));
        true
    }

    fn on_tick(&mut self) {
        let Some(rt) = self.runtime.clone() else {
            return;
        };
        let stats = self.stats.clone();
        let host = WasmHost { stats: &stats };
        let now = host::now_ms();
        self.poller.set_serving(self.serving.get());
        self.poller
            .tick(&host, rt.services.attack_list.as_ref(), now);
        let was_short = self.write_tick;
        self.follow_feed_write();
        // A short tick is for the feed write; the other jobs keep the configured period.
        if was_short && now < self.next_jobs_ms {
            return;
        }
        self.next_jobs_ms = now.saturating_add(self.tick_ms);
        let mut ex = self.exporter.as_ref().map(|e| e.borrow_mut());
        self.export
            .flush(&host, ex.as_deref_mut(), &rt.services.analytics, now);
        drop(ex);
        self.response_calls.borrow_mut().flush(&host);
        self.answer_admin_waits(&rt, now);
        self.release_body_waits(&rt, now);
        self.stats.flush();
        if now >= self.next_gauges_ms {
            self.next_gauges_ms = now.saturating_add(1000);
            self.stats.publish_list_sizes(&rt);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let runtime = self.runtime.clone()?;
        self.serving.set(true);
        Some(Box::new(Http {
            context_id,
            runtime,
            stats: self.stats.clone(),
            exporter: self.exporter.clone(),
            exchange: Exchange::default(),
            admin_pending: false,
            call_token: None,
            response_calls: self.response_calls.clone(),
            admin_waits: self.admin_waits.clone(),
            hold: Default::default(),
            body_waits: self.body_waits.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
