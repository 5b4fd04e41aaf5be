//! End-to-end tests: the real Envoy with the built api_warden.wasm (run `make test-e2e`).
#![cfg(not(target_arch = "wasm32"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod admin;
mod attack_list;
mod bad_input;
mod cli_envoy;
mod cli_loop;
mod config;
mod ecds;
mod enforcement;
mod evasion;
mod examples;
mod export_faults;
mod faults;
mod fleet;
mod harness;
mod identity;
mod otlp;
mod pingauthorize;
mod protections;
mod record_parts;
mod records;
mod sideband;
mod skeleton;
