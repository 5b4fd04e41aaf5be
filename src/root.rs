//! The root context: loads the configuration once per worker, polls the attack list (one worker
//! per interval, elected through shared data), exports records, publishes stats, and creates the
//! HTTP contexts. Host calls go through [`crate::host`] only.

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use std::time::Duration;

use api_warden_core::config::Notice;
use api_warden_core::export::Exporter;
use api_warden_core::lists::{self, Feed, Store};
use api_warden_core::pipeline::Runtime;
use api_warden_core::record::Exchange;
use api_warden_core::stats::Counter;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::host::{self, HostStore};
use crate::http::Http;
use crate::metrics::Stats;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(Root::new(context_id))
    });
}}

/// Shared-data key electing the worker that polls the attack list: `[due_ms u64][owner u64]`.
const POLL_KEY: &str = "aw:poll";

struct Root {
    context_id: u32,
    /// Random per-VM identity for the poll election.
    vm_token: u64,
    runtime: Option<Rc<Runtime>>,
    stats: Rc<Stats>,
    exporter: Option<Rc<RefCell<Exporter>>>,
    poll_token: Option<u32>,
    /// Pages of a paginated attack list read so far: (entries, skipped, pages).
    pending_feed: Option<(Feed, usize, u32)>,
    export_token: Option<u32>,
    next_gauges_ms: u64,
    /// `on_done` was called: send what is buffered, then tell the host we are done.
    shutting_down: bool,
}

/// Most pages one attack-list poll follows.
const MAX_FEED_PAGES: u32 = 1000;

impl Root {
    fn new(context_id: u32) -> Root {
        Root {
            context_id,
            vm_token: RandomState::new().build_hasher().finish(),
            runtime: None,
            stats: Rc::new(Stats::default()),
            exporter: None,
            poll_token: None,
            pending_feed: None,
            export_token: None,
            shutting_down: false,
            next_gauges_ms: 0,
        }
    }

    /// Claim this interval's poll: succeed only if the due time has passed and our CAS write of
    /// the next due time wins (first writes are verified, as the host cannot create-if-absent).
    fn claim_poll(&self, now_ms: u64, interval_ms: u64) -> bool {
        let (cur, cas) = HostStore.get(POLL_KEY);
        let due = cur
            .as_deref()
            .and_then(|b| b.get(..8))
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0);
        if now_ms < due {
            return false;
        }
        let mut v = now_ms.saturating_add(interval_ms).to_le_bytes().to_vec();
        v.extend_from_slice(&self.vm_token.to_le_bytes());
        if !HostStore.set(POLL_KEY, &v, Some(cas.unwrap_or(0))) {
            return false;
        }
        cas.is_some() || HostStore.get(POLL_KEY).0.as_deref() == Some(&v[..])
    }

    fn poll_attack_list(&mut self, rt: &Runtime, now_ms: u64) {
        let Some(a) = &rt.services.attack_list else {
            return;
        };
        if self.poll_token.is_some() || !self.claim_poll(now_ms, a.interval_s.saturating_mul(1000))
        {
            return;
        }
        self.pending_feed = None;
        if let Err(e) = self.request_feed_page(rt, &a.path) {
            log::warn!("api-warden: attack-list poll not sent: {e}");
            self.stats.inc(Counter::AttackListPollsFailed, 1);
        }
    }

    /// GET one page of the attack list (the configured path, or a page's `next`).
    fn request_feed_page(&mut self, rt: &Runtime, path: &str) -> Result<(), String> {
        let Some(a) = &rt.services.attack_list else {
            return Err("no attack_list configured".into());
        };
        let authority = if a.authority.is_empty() {
            a.cluster.clone()
        } else {
            a.authority.clone()
        };
        let mut headers = vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), path.to_string()),
            (":authority".to_string(), authority),
            ("accept".to_string(), "application/json".to_string()),
        ];
        headers.extend(
            a.headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
        );
        match host::dispatch(
            &a.cluster,
            &headers,
            None,
            Duration::from_millis(a.timeout_ms),
        ) {
            Ok(t) => {
                self.poll_token = Some(t);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn on_poll_response(&mut self, rt: &Runtime, body_size: usize) {
        let Some(a) = &rt.services.attack_list else {
            return;
        };
        let status = http_call_status();
        let result = if status != Some(200) {
            Err(match status {
                Some(s) => format!("status {s}"),
                None => "no response (timeout or connection failure)".to_string(),
            })
        } else if body_size > a.max_body_bytes {
            Err(format!(
                "body of {body_size} bytes exceeds max_body_bytes {}",
                a.max_body_bytes
            ))
        } else {
            let body = host::http_call_response_body(body_size).unwrap_or_default();
            match Feed::parse_page(&body) {
                Err(e) => Err(e),
                Ok((page, skipped, next)) => {
                    let (mut feed, mut total_skipped, pages) =
                        self.pending_feed.take().unwrap_or_default();
                    feed.merge(page);
                    total_skipped += skipped;
                    match next {
                        Some(n) if !n.starts_with('/') => Err(format!(
                            "page {} has a next that is not a path: {n:?}",
                            pages + 1
                        )),
                        Some(_) if pages + 1 >= MAX_FEED_PAGES => {
                            Err(format!("more than {MAX_FEED_PAGES} pages"))
                        }
                        Some(n) => {
                            // Keep what we have and fetch the next page; replace only at the end.
                            self.pending_feed = Some((feed, total_skipped, pages + 1));
                            match self.request_feed_page(rt, &n) {
                                Ok(()) => return,
                                Err(e) => Err(format!("requesting page {}: {e}", pages + 2)),
                            }
                        }
                        None => lists::replace_feed(&HostStore, &feed)
                            .map(|g| (g, feed.len(), total_skipped))
                            .map_err(|e| e.to_string()),
                    }
                }
            }
        };
        self.pending_feed = None;
        match result {
            Ok((generation, n, skipped)) => {
                log::info!(
                    "api-warden: attack list loaded: {n} entries (generation {generation}, {skipped} skipped)"
                );
                self.stats.inc(Counter::AttackListPollsOk, 1);
            }
            Err(e) => {
                log::warn!("api-warden: attack-list poll failed, keeping the last good list: {e}");
                self.stats.inc(Counter::AttackListPollsFailed, 1);
            }
        }
    }

    fn flush_export(&mut self, rt: &Runtime, now_ms: u64) {
        let (Some(ex), Some(cluster)) = (&self.exporter, &rt.services.analytics.cluster) else {
            return;
        };
        let s = &rt.services.analytics;
        let body = {
            let mut ex = ex.borrow_mut();
            self.stats
                .inc(Counter::ExportRecordsDropped, ex.take_dropped());
            if self.export_token.is_some() {
                return;
            }
            ex.due(now_ms)
        };
        let Some(body) = body else { return };
        let authority = if s.authority.is_empty() {
            cluster.clone()
        } else {
            s.authority.clone()
        };
        let mut headers = vec![
            (":method".to_string(), "POST".to_string()),
            (":path".to_string(), s.path.clone()),
            (":authority".to_string(), authority),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        headers.extend(
            s.headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
        );
        match host::dispatch(
            cluster,
            &headers,
            Some(&body),
            Duration::from_millis(s.timeout_ms),
        ) {
            Ok(t) => self.export_token = Some(t),
            Err(e) => {
                log::debug!("api-warden: export not sent: {e}");
                ex.borrow_mut().finish(false, now_ms);
                self.stats.inc(Counter::ExportBatchesRetried, 1);
            }
        }
    }
}

fn http_call_status() -> Option<u16> {
    host::http_call_response_headers()
        .into_iter()
        .find(|(k, _)| k == ":status")
        .and_then(|(_, v)| v.parse().ok())
}

impl Context for Root {
    fn on_done(&mut self) -> bool {
        self.shutting_down = true;
        let Some(rt) = self.runtime.clone() else {
            return true;
        };
        let pending = self.flush_final(&rt);
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
        if self.poll_token == Some(token) {
            self.poll_token = None;
            self.on_poll_response(&rt, body_size);
        } else if self.export_token == Some(token) {
            self.export_token = None;
            let ok = http_call_status().is_some_and(|s| (200..300).contains(&s));
            if let Some(ex) = &self.exporter {
                let r = ex.borrow_mut().finish(ok, host::now_ms());
                self.stats.inc(Counter::ExportRecordsSent, r.sent);
                self.stats
                    .inc(Counter::ExportBatchesRetried, u64::from(r.retried));
            }
            if self.shutting_down {
                if !ok || !self.flush_final(&rt) {
                    self.stats.flush();
                    host::done();
                }
            } else {
                // A full batch waiting leaves now, not at the next tick.
                self.flush_export(&rt, host::now_ms());
            }
        }
    }
}

impl Root {
    /// During shutdown: send the next batch whatever the interval; true when one is in flight.
    fn flush_final(&mut self, rt: &Runtime) -> bool {
        if self.export_token.is_none() {
            self.flush_export(rt, u64::MAX / 2);
        }
        self.export_token.is_some()
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
        // Keep buffered records across a reload; only create the exporter once.
        if rt.services.analytics.cluster.is_some() {
            if self.exporter.is_none() {
                self.exporter = Some(Rc::new(RefCell::new(Exporter::new(&rt.services.analytics))));
            }
        } else {
            self.exporter = None;
        }
        // Every second at least: attack-list polls and list-size gauges.
        let mut tick_ms = 1000u64;
        if rt.services.analytics.cluster.is_some() {
            let f = rt.services.analytics.flush_interval_ms.clamp(50, 1000);
            tick_ms = tick_ms.min(f);
        }
        host::set_tick_period(Duration::from_millis(tick_ms));
        self.runtime = Some(Rc::new(rt));
        true
    }

    fn on_tick(&mut self) {
        let Some(rt) = self.runtime.clone() else {
            return;
        };
        let now = host::now_ms();
        self.poll_attack_list(&rt, now);
        self.flush_export(&rt, now);
        self.stats.flush();
        if now >= self.next_gauges_ms {
            self.next_gauges_ms = now.saturating_add(1000);
            self.stats.publish_list_sizes(&rt);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let runtime = self.runtime.clone()?;
        Some(Box::new(Http {
            context_id,
            runtime,
            stats: self.stats.clone(),
            exporter: self.exporter.clone(),
            exchange: Exchange::default(),
            admin_pending: false,
            call_token: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
