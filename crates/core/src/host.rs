//! The host capabilities the core needs, as small traits: shared data ([`Store`]), the clock
//! ([`Clock`]), outgoing HTTP calls ([`HttpCalls`]) and counters ([`Metrics`]). The proxy-wasm
//! adapter implements them once over the raw host calls (turning unexpected host statuses into
//! [`Error::Host`](crate::error::Error::Host)); tests use the mock host. No host calls here.

use crate::call::CallRequest;
use crate::error::Result;
use crate::stats::Counter;

pub use crate::lists::Store;

/// The host clock.
pub trait Clock {
    /// Wall-clock time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// Outgoing HTTP calls through an Envoy cluster; the answer arrives later, by token.
pub trait HttpCalls {
    /// Dispatch `call`; returns the token its answer will carry.
    fn dispatch(&self, call: &CallRequest) -> Result<u32>;
}

/// The VM's counters.
pub trait Metrics {
    /// Add `n` to `counter` (nothing happens for `n == 0`).
    fn increment(&self, counter: Counter, n: u64);
}

/// Everything the root context's periodic jobs (attack-list poll, export) need from the host.
pub trait Host: Store + Clock + HttpCalls + Metrics {}

impl<T: Store + Clock + HttpCalls + Metrics + ?Sized> Host for T {}

#[cfg(test)]
pub(crate) mod mock;
