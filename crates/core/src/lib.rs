//! api-warden-core: everything api-warden decides, with no host underneath. Configuration, API
//! matching, request parsing, JWT decoding, identification, the lists' shared-data layout,
//! decisions, the admin API, the record, export batching and stats vocabulary take plain data and
//! return plain data; the attack-list poll and the export driver reach shared data, the clock,
//! HTTP calls and counters only through the traits of [`host`]. This crate does not depend on
//! `proxy-wasm`: the filter (`src/`) and the `api-warden` command both build on it.

pub mod admin;
pub mod ase_files;
pub mod call;
pub mod config;
pub mod decision;
pub mod discover;
pub mod error;
pub mod export;
pub mod host;
pub mod identity;
pub mod ids;
pub mod jwt;
pub mod lists;
pub mod parse;
pub mod pipeline;
pub mod poll;
pub mod protect;
pub mod record;
pub mod render;
pub mod request;
pub mod router;
pub mod services;
pub mod sideband;
pub mod stats;
