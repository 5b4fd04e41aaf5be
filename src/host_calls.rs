//! Host calls counted by kind (the `host-calls` feature, a benchmark build only): every wrapper
//! in [`crate::host`] notes its call and the bytes it moved here, and the root context's flush
//! publishes the totals as counters `api_warden.host_calls.<kind>` and
//! `api_warden.host_bytes.<kind>`, so the benchmark can give each µs an owner. The same build times
//! api-warden's own work inside the VM ([`span`]: parsing the request, the pipeline, the record)
//! with the host clock, published as `api_warden.vm_ns.<stage>` (nanoseconds in total; `clock` is
//! the cost of the two clock reads themselves, timed around nothing). Without the feature [`note`]
//! and [`span`] are empty and compile away.

/// What a host call does, as the benchmark reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    RequestHeaders,
    ResponseHeaders,
    CallHeaders,
    Property,
    SetFilterState,
    SharedGet,
    SharedSet,
    Time,
    Buffer,
    LocalReply,
    Dispatch,
    Metric,
    Other,
}

/// A stage of api-warden's own work, timed by [`span`].
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "host-calls"), allow(dead_code))]
pub(crate) enum Stage {
    /// `RequestView::from_headers` and `Request::parse`.
    Parse,
    /// `pipeline::on_request_headers` and its effects.
    Pipeline,
    /// `record::write`.
    Record,
    /// The host call reading the request header map (and the SDK copying it into pairs).
    HeaderMap,
    /// The host calls reading a property.
    Property,
    /// The host calls reading shared data (inside [`Stage::Pipeline`]).
    SharedGet,
    /// Nothing: what the two clock reads of a span cost.
    Clock,
    /// Not a time: the number of spans (to take the clock's cost off each).
    Spans,
}

#[cfg(feature = "host-calls")]
const STAGES: [&str; 8] = [
    "parse",
    "pipeline",
    "record",
    "header_map",
    "property",
    "shared_get",
    "clock",
    "spans",
];

#[cfg(feature = "host-calls")]
const KINDS: [(Kind, &str); 13] = [
    (Kind::RequestHeaders, "request_headers"),
    (Kind::ResponseHeaders, "response_headers"),
    (Kind::CallHeaders, "call_headers"),
    (Kind::Property, "property"),
    (Kind::SetFilterState, "set_filter_state"),
    (Kind::SharedGet, "shared_get"),
    (Kind::SharedSet, "shared_set"),
    (Kind::Time, "time"),
    (Kind::Buffer, "buffer"),
    (Kind::LocalReply, "local_reply"),
    (Kind::Dispatch, "dispatch"),
    (Kind::Metric, "metric"),
    (Kind::Other, "other"),
];

#[cfg(feature = "host-calls")]
mod counts {
    use std::cell::RefCell;

    use proxy_wasm::hostcalls;
    use proxy_wasm::types::MetricType;

    use super::{Kind, KINDS};

    use super::{Stage, STAGES};

    #[derive(Default)]
    struct Counts {
        calls: [u64; KINDS.len()],
        bytes: [u64; KINDS.len()],
        /// Counter ids (calls, bytes) per kind, defined at the first publish.
        ids: Option<Vec<(Option<u32>, Option<u32>)>>,
        /// Nanoseconds per stage, and their counter ids.
        ns: [u64; STAGES.len()],
        ns_ids: Option<Vec<Option<u32>>>,
    }

    /// The host clock in nanoseconds (not counted as a host call).
    pub(crate) fn now_ns() -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    pub(crate) fn add_ns(stage: Stage, ns: u64) {
        COUNTS.with(|c| {
            if let Some(n) = c.borrow_mut().ns.get_mut(stage as usize) {
                *n += ns;
            }
        });
    }

    thread_local! {
        static COUNTS: RefCell<Counts> = RefCell::new(Counts::default());
    }

    pub(crate) fn note(kind: Kind, bytes: usize) {
        COUNTS.with(|c| {
            let mut c = c.borrow_mut();
            if let Some(n) = c.calls.get_mut(kind as usize) {
                *n += 1;
            }
            if let Some(n) = c.bytes.get_mut(kind as usize) {
                *n += bytes as u64;
            }
        });
    }

    /// Publish what was counted since the last publish (its own host calls are not counted).
    pub(crate) fn publish() {
        COUNTS.with(|c| {
            let mut c = c.borrow_mut();
            let ids = c
                .ids
                .get_or_insert_with(|| {
                    KINDS
                        .iter()
                        .map(|(_, name)| {
                            let def = |what: &str| {
                                let n = format!("api_warden.{what}.{name}");
                                hostcalls::define_metric(MetricType::Counter, &n).ok()
                            };
                            (def("host_calls"), def("host_bytes"))
                        })
                        .collect()
                })
                .clone();
            let ns_ids = c
                .ns_ids
                .get_or_insert_with(|| {
                    STAGES
                        .iter()
                        .map(|name| {
                            let n = format!("api_warden.vm_ns.{name}");
                            hostcalls::define_metric(MetricType::Counter, &n).ok()
                        })
                        .collect()
                })
                .clone();
            let ns = std::mem::take(&mut c.ns);
            for (id, v) in ns_ids.iter().zip(ns) {
                if let (Some(id), true) = (id, v > 0) {
                    let _ = hostcalls::increment_metric(*id, i64::try_from(v).unwrap_or(i64::MAX));
                }
            }
            let calls = std::mem::take(&mut c.calls);
            let bytes = std::mem::take(&mut c.bytes);
            for ((ids, n), b) in ids.iter().zip(calls).zip(bytes) {
                for (id, v) in [(ids.0, n), (ids.1, b)] {
                    if let (Some(id), true) = (id, v > 0) {
                        let _ =
                            hostcalls::increment_metric(id, i64::try_from(v).unwrap_or(i64::MAX));
                    }
                }
            }
        });
    }
}

/// Note one host call of `kind` that moved `bytes()` bytes (in or out; only evaluated with the
/// feature, so the release build computes nothing).
#[inline(always)]
pub(crate) fn note(_kind: Kind, _bytes: impl FnOnce() -> usize) {
    #[cfg(feature = "host-calls")]
    counts::note(_kind, _bytes());
}

/// Run `f`, timing it as `stage` with the host clock (with the feature; also an empty span, for
/// the clock's own cost).
#[inline(always)]
pub(crate) fn span<T>(_stage: Stage, f: impl FnOnce() -> T) -> T {
    #[cfg(feature = "host-calls")]
    {
        let t0 = counts::now_ns();
        let out = f();
        let t1 = counts::now_ns();
        let t2 = counts::now_ns();
        counts::add_ns(_stage, t1.saturating_sub(t0));
        counts::add_ns(Stage::Clock, t2.saturating_sub(t1));
        counts::add_ns(Stage::Spans, 1);
        out
    }
    #[cfg(not(feature = "host-calls"))]
    f()
}

/// Publish the counts (on the root context's flush).
#[inline(always)]
pub(crate) fn publish() {
    #[cfg(feature = "host-calls")]
    counts::publish();
}

/// Bytes of a header map a host call returned.
pub(crate) fn pairs_len<E>(got: &Result<Vec<(String, Vec<u8>)>, E>) -> usize {
    got.as_ref()
        .map_or(0, |p| p.iter().map(|(k, v)| k.len() + v.len()).sum())
}

/// Bytes of a value a host call returned.
pub(crate) fn value_len(got: Option<&Option<Vec<u8>>>) -> usize {
    got.and_then(Option::as_ref).map_or(0, Vec::len)
}
