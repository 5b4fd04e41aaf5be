//! api-warden: an API security enforcer for Envoy and Istio, built as a proxy-wasm HTTP filter.
//!
//! Everything except [`filter`] and [`host`] is pure Rust with no proxy-wasm import: configuration,
//! API matching, identification, JWT decoding, decisions and record building take plain data and
//! return plain data, so `cargo test` runs them natively and `wasm-bindgen-test` runs them in a VM.

pub mod admin;
pub mod config;
pub mod decision;
pub mod error;
pub mod export;
pub mod identity;
pub mod jwt;
pub mod lists;
pub mod parse;
pub mod pipeline;
pub mod record;
pub mod request;
pub mod router;
pub mod services;
pub mod stats;

#[cfg(target_os = "wasi")]
mod filter;
#[cfg(target_os = "wasi")]
mod host;
