//! The one module that calls the proxy-wasm host: thin wrappers over `proxy_wasm::hostcalls` that
//! turn every unexpected host status into [`Error::Host`], returned or logged, and never unwrap;
//! and [`WasmHost`], the one implementation of the core's host traits. Everything else asks
//! through these.

use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, Status};

use api_warden_core::call::{CallAnswer, CallRequest};
use api_warden_core::error::{Error, Result};
use api_warden_core::host::{Clock, HttpCalls, Metrics, Store};
use api_warden_core::stats::Counter;

use crate::host_calls::{self, note, span, Kind, Stage};
use crate::metrics::Stats;

fn host_err(what: &str, s: Status) -> Error {
    Error::Host(format!("{what}: {s:?}"))
}

use api_warden_core::parse::lossy;

/// Make the `log` facade's level follow the host's level for this plugin (Envoy's `wasm` component
/// log level), so that disabled debug/trace lines cost nothing on the request path.
pub fn follow_host_log_level() {
    note(Kind::Other, || 0);
    match hostcalls::get_log_level() {
        Ok(level) => proxy_wasm::set_log_level(level),
        Err(s) => log::warn!("{}", host_err("get_log_level", s)),
    }
}

/// Every request header (pseudo-headers included), names lowercased, values lossily UTF-8.
pub fn request_headers() -> Vec<(String, String)> {
    span(Stage::HeaderMap, || header_map(MapType::HttpRequestHeaders))
}

/// Every response header, as [`request_headers`].
pub fn response_headers() -> Vec<(String, String)> {
    header_map(MapType::HttpResponseHeaders)
}

fn header_map(map: MapType) -> Vec<(String, String)> {
    let got = hostcalls::get_map_bytes(map);
    note(map_kind(map), || host_calls::pairs_len(&got));
    match got {
        Ok(pairs) => pairs
            .into_iter()
            .map(|(mut k, v)| {
                // Envoy already lowercases names (HTTP/2 requires it); no copy in that case.
                k.make_ascii_lowercase();
                (k, lossy(v))
            })
            .collect(),
        Err(s) => {
            log::warn!("{}", host_err("reading header map", s));
            Vec::new()
        }
    }
}

/// One host property (`source.address`, `request.time`, …) as raw bytes, `None` when absent.
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    let got = span(Stage::Property, || hostcalls::get_property(path.to_vec()));
    note(Kind::Property, || host_calls::value_len(got.as_ref().ok()));
    match got {
        Ok(v) => v,
        Err(s) => {
            log::warn!(
                "{}",
                host_err(&format!("reading property {}", path.join(".")), s)
            );
            None
        }
    }
}

/// One host property as lossy text.
pub fn property_string(path: &[&str]) -> Option<String> {
    property(path).map(lossy)
}

/// One integer host property (Envoy encodes them as 8 little-endian bytes).
pub fn property_u64(path: &[&str]) -> Option<u64> {
    let b = property(path)?;
    let arr: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(arr))
}

/// Set filter state `wasm.<key>` (readable as `%FILTER_STATE(wasm.<key>:PLAIN)%`).
pub fn set_filter_state(key: &str, value: &[u8]) {
    note(Kind::SetFilterState, || key.len() + value.len());
    if let Err(s) = hostcalls::set_property(vec![key], Some(value)) {
        log::warn!("{}", host_err(&format!("setting filter state {key}"), s));
    }
}

/// The plugin configuration bytes (empty when none is set).
pub fn plugin_configuration() -> Result<Vec<u8>> {
    note(Kind::Buffer, || 0);
    hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .map(Option::unwrap_or_default)
        .map_err(|s| host_err("reading plugin configuration", s))
}

/// Body of the response to a dispatched call (empty when the host has none).
pub fn http_call_response_body(size: usize) -> Result<Vec<u8>> {
    note(Kind::Buffer, || size);
    hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size)
        .map(Option::unwrap_or_default)
        .map_err(|s| host_err("reading the HTTP-call response body", s))
}

/// The answer to a dispatched call, in `on_http_call_response`: status and headers, and the body
/// only if it is at most `max_body` bytes (`body_size` always says how big it was). A body that
/// cannot be read is logged and left empty.
pub fn call_answer(body_size: usize, max_body: usize) -> CallAnswer {
    let mut headers = header_map(MapType::HttpCallResponseHeaders);
    let status = headers
        .iter()
        .position(|(k, _)| k == ":status")
        .map(|i| headers.remove(i).1)
        .and_then(|v| v.parse().ok());
    let body = if body_size > 0 && body_size <= max_body {
        http_call_response_body(body_size).unwrap_or_else(|e| {
            log::warn!("api-warden: {e}");
            Vec::new()
        })
    } else {
        Vec::new()
    };
    CallAnswer {
        status,
        headers,
        body,
        body_size,
    }
}

/// Send a local reply instead of forwarding the request upstream.
pub fn send_local_reply(status: u32, headers: &[(String, String)], body: &[u8]) -> Result<()> {
    note(Kind::LocalReply, || body.len());
    let hs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    hostcalls::send_http_response(status, hs, Some(body))
        .map_err(|s| host_err("send_http_response", s))
}

/// Current wall-clock time in milliseconds since the Unix epoch (host clock).
pub fn now_ms() -> u64 {
    note(Kind::Time, || 0);
    match hostcalls::get_current_time() {
        // A clock before the epoch reads as 0.
        Ok(t) => t
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        Err(s) => {
            log::warn!("{}", host_err("get_current_time", s));
            0
        }
    }
}

/// Read a shared-data value and its CAS token (absent when the host fails, logged).
pub fn shared_get(key: &str) -> (Option<Vec<u8>>, Option<u32>) {
    let got = hostcalls::get_shared_data(key);
    note(Kind::SharedGet, || {
        host_calls::value_len(got.as_ref().ok().map(|g| &g.0))
    });
    got.unwrap_or_else(|s| {
        log::warn!("{}", host_err(&format!("get_shared_data {key}"), s));
        (None, None)
    })
}

/// Outcome of a shared-data write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    Ok,
    CasMismatch,
    Failed,
}

/// Write a shared-data value; `cas` of `None` writes unconditionally.
pub fn shared_set(key: &str, value: &[u8], cas: Option<u32>) -> SetOutcome {
    note(Kind::SharedSet, || key.len() + value.len());
    match hostcalls::set_shared_data(key, Some(value), cas) {
        Ok(()) => SetOutcome::Ok,
        Err(Status::CasMismatch) => SetOutcome::CasMismatch,
        Err(s) => {
            log::warn!("{}", host_err(&format!("set_shared_data {key}"), s));
            SetOutcome::Failed
        }
    }
}

/// Dispatch an HTTP call to an Envoy cluster; returns the call token.
pub fn dispatch(
    cluster: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<u32> {
    note(Kind::Dispatch, || body.map_or(0, <[u8]>::len));
    let hs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    hostcalls::dispatch_http_call(cluster, hs, body, vec![], timeout)
        .map_err(|s| host_err(&format!("dispatch_http_call to cluster {cluster}"), s))
}

/// Ask for `on_tick` every `period` (zero stops ticking).
pub fn set_tick_period(period: Duration) {
    note(Kind::Other, || 0);
    if let Err(s) = hostcalls::set_tick_period(period) {
        log::warn!("{}", host_err("set_tick_period", s));
    }
}

/// Proxy-wasm shared data as a [`api_warden_core::lists::Store`].
pub struct HostStore;

impl Store for HostStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        span(Stage::SharedGet, || shared_get(key))
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        shared_set(key, value, cas) == SetOutcome::Ok
    }
}

/// The request body received so far (for admin requests).
pub fn request_body(size: usize) -> Vec<u8> {
    note(Kind::Buffer, || size);
    match hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size) {
        Ok(b) => b.unwrap_or_default(),
        Err(s) => {
            log::warn!("{}", host_err("reading the request body", s));
            Vec::new()
        }
    }
}

/// Define a counter (or gauge) metric; `None` if the host refuses (logged).
pub fn define_metric(kind: proxy_wasm::types::MetricType, name: &str) -> Option<u32> {
    note(Kind::Metric, || 0);
    hostcalls::define_metric(kind, name)
        .map_err(|s| log::warn!("{}", host_err(&format!("define_metric {name}"), s)))
        .ok()
}

/// Tell the host that a root context which returned false from `on_done` has finished.
pub fn done() {
    note(Kind::Other, || 0);
    if let Err(s) = hostcalls::done() {
        log::warn!("{}", host_err("done", s));
    }
}

/// Set a gauge.
pub fn record_metric(id: u32, value: u64) {
    note(Kind::Metric, || 0);
    if let Err(s) = hostcalls::record_metric(id, value) {
        log::warn!("{}", host_err(&format!("record_metric {id}"), s));
    }
}

/// Add to a counter.
pub fn increment_metric(id: u32, by: i64) {
    note(Kind::Metric, || 0);
    if let Err(s) = hostcalls::increment_metric(id, by) {
        log::warn!("{}", host_err(&format!("increment_metric {id}"), s));
    }
}

/// The core's host traits over the proxy-wasm host, for the root context's periodic jobs:
/// shared data, the clock, HTTP calls, and counters published at once through `stats`.
pub struct WasmHost<'a> {
    pub stats: &'a Stats,
}

impl Store for WasmHost<'_> {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        HostStore.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        HostStore.set(key, value, cas)
    }
}

impl Clock for WasmHost<'_> {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

impl HttpCalls for WasmHost<'_> {
    fn dispatch(&self, call: &CallRequest) -> Result<u32> {
        dispatch(
            &call.cluster,
            &call.headers,
            call.body.as_deref(),
            Duration::from_millis(call.timeout_ms),
        )
    }
}

impl Metrics for WasmHost<'_> {
    fn increment(&self, counter: Counter, n: u64) {
        self.stats.inc(counter, n);
    }
}

/// Resume the request this HTTP context paused (after a call's answer said continue).
pub fn resume_request() {
    note(Kind::Other, || 0);
    if let Err(s) = hostcalls::resume_http_request() {
        log::error!("api-warden: {}", host_err("resume_http_request", s));
    }
}

/// Make `context_id` the context later host calls act on (a root context answering a paused
/// HTTP context).
pub fn set_effective_context(context_id: u32) -> Result<()> {
    note(Kind::Other, || 0);
    hostcalls::set_effective_context(context_id).map_err(|s| host_err("set_effective_context", s))
}

// --- Rewriting held requests and responses (sideband services that change them) ---

/// Carry out a request edit of the core on the held request: pseudo-headers, headers (each
/// edited name removed, then its new values added), then the body (the whole buffered body
/// replaced: `body_len` is its size). Failures are logged; the rest still applies.
pub fn edit_request(edit: &api_warden_core::pipeline::RequestEdit, body_len: usize) {
    let map = MapType::HttpRequestHeaders;
    let set = |name: &str, value: Option<&str>| {
        note(Kind::Other, || value.map_or(0, str::len));
        if let Err(s) = hostcalls::set_map_value(map, name, value) {
            log::warn!("{}", host_err(&format!("setting request header {name}"), s));
        }
    };
    if let Some(m) = &edit.method {
        set(":method", Some(m));
    }
    if let Some(p) = &edit.path {
        set(":path", Some(p));
    }
    for h in &edit.headers {
        set(&h.name, None);
        for v in &h.values {
            note(Kind::Other, || v.len());
            if let Err(s) = hostcalls::add_map_value(map, &h.name, v) {
                log::warn!(
                    "{}",
                    host_err(&format!("adding request header {}", h.name), s)
                );
            }
        }
    }
    if let Some(b) = &edit.body {
        note(Kind::Buffer, || b.len());
        if let Err(s) = hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body_len, b) {
            log::warn!("{}", host_err("replacing the request body", s));
        }
    }
}

/// The response body received so far.
pub fn response_body(size: usize) -> Vec<u8> {
    note(Kind::Buffer, || size);
    match hostcalls::get_buffer(BufferType::HttpResponseBody, 0, size) {
        Ok(b) => b.unwrap_or_default(),
        Err(s) => {
            log::warn!("{}", host_err("reading the response body", s));
            Vec::new()
        }
    }
}

/// Resume the response this HTTP context held.
pub fn resume_response() {
    note(Kind::Other, || 0);
    if let Err(s) = hostcalls::resume_http_response() {
        log::error!("api-warden: {}", host_err("resume_http_response", s));
    }
}

fn map_kind(map: MapType) -> Kind {
    match map {
        MapType::HttpRequestHeaders => Kind::RequestHeaders,
        MapType::HttpResponseHeaders => Kind::ResponseHeaders,
        _ => Kind::CallHeaders,
    }
}
