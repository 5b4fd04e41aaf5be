//! The end-to-end kit: the one Envoy launcher ([`Envoy`], stopped on drop, its log printed when the
//! test fails), the bootstrap rendered from `envoy/templates/` ([`yaml`]), raw HTTP/1.1 and a small
//! test server ([`http`]), the one poll loop ([`eventually`]), the admin `/stats` reader and the JWT
//! builder ([`Jwt`]).

#![allow(dead_code)]

mod envoy;
mod http;
mod jwt;
pub mod paz;
pub mod yaml;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use envoy::{
    cli_path, fault_wasm_path, free_port, root, scratch, wasm_path, Envoy, Launch, Opts,
};
pub use http::{get, raw_request, request, Received, Response, TestServer};
pub use jwt::{jwt, Jwt};

/// What a polled closure returns: `true` or `Some` ends the wait.
pub trait Outcome {
    fn done(&self) -> bool;
}

impl Outcome for bool {
    fn done(&self) -> bool {
        *self
    }
}

impl<T> Outcome for Option<T> {
    fn done(&self) -> bool {
        self.is_some()
    }
}

/// Call `f` every 50 ms until it returns `true` / `Some`, or `secs` seconds pass; returns its
/// last answer (`false` / `None` on timeout).
pub fn eventually<R: Outcome>(secs: u64, mut f: impl FnMut() -> R) -> R {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = f();
        if r.done() || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every `name: value` line of admin `/stats` (`?filter=…` in `query`, or empty) with a numeric
/// value; empty when the admin does not answer.
pub fn stats(admin: u16, query: &str) -> HashMap<String, u64> {
    get(admin, &format!("/stats{query}"))
        .map(|r| r.body_text())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
        .collect()
}

/// One access-log line of the record format (`envoy/templates/record-format.txt`): the record, the
/// status, two scalar filter-state keys.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub raw: String,
    pub record: Value,
    pub status: u16,
    pub username: String,
    pub client_ip: String,
}

impl LogLine {
    /// Parse one line; panics when the record is not JSON.
    pub fn parse(line: &str) -> LogLine {
        LogLine::try_parse(line).unwrap_or_else(|| panic!("record is not JSON: {line}"))
    }

    /// Parse one line; `None` when the record is not JSON.
    pub fn try_parse(line: &str) -> Option<LogLine> {
        let mut parts = line.split('\t');
        let record = serde_json::from_str(parts.next()?).ok()?;
        let mut next = || parts.next().unwrap_or("-").to_string();
        Some(LogLine {
            raw: line.to_string(),
            record,
            status: next().parse().unwrap_or(0),
            username: next(),
            client_ip: next(),
        })
    }

    /// A value by JSON pointer (`/ase/client/ip`), `Null` when absent.
    pub fn at(&self, pointer: &str) -> Value {
        self.record.pointer(pointer).cloned().unwrap_or(Value::Null)
    }
}
