//! api-warden, the proxy-wasm filter: the thin adapter between Envoy's proxy-wasm host and
//! [`api_warden_core`]. [`host`] is the only module that calls the host; [`root`] (configuration,
//! attack-list polls, export) and [`http`] (one request) carry out what the core decides.

#[cfg(target_os = "wasi")]
mod host;
#[cfg(target_os = "wasi")]
mod host_calls;
#[cfg(target_os = "wasi")]
mod http;
#[cfg(target_os = "wasi")]
mod metrics;
#[cfg(target_os = "wasi")]
mod root;
