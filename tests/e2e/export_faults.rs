//! End-to-end export faults: a collector slower than `analytics.timeout_ms` delays no request and
//! is retried; export keeps up with more than one batch per flush interval. Also the collector the
//! reload tests in `faults.rs` export to. Collector 500s and a collector that is gone are in
//! `records.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{eventually, Envoy, Opts, TestServer};

/// A collector that accepts JSON-array batches (or, while `slow`, sleeps past the exporter's
/// timeout without accepting) and remembers the correlation ids it accepted.
pub(crate) struct Collector {
    pub(crate) server: TestServer,
    ids: Arc<Mutex<Vec<String>>>,
    slow: Arc<AtomicBool>,
}

impl Collector {
    pub(crate) fn start() -> Collector {
        let ids: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
        let slow = Arc::new(AtomicBool::new(false));
        let (i, s) = (ids.clone(), slow.clone());
        let server = TestServer::start(move |r| {
            if s.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1200));
                return (200, b"{}".to_vec());
            }
            match serde_json::from_slice::<Value>(&r.body) {
                Ok(Value::Array(items)) => {
                    let mut ids = i.lock().unwrap();
                    for item in items {
                        let id = &item["attributes"]["HttpRequest.CorrelationId"];
                        ids.push(id.as_str().unwrap_or_default().to_string());
                    }
                    (200, b"{}".to_vec())
                }
                _ => (400, b"{\"error\":\"not a JSON array\"}".to_vec()),
            }
        });
        Collector { server, ids, slow }
    }

    pub(crate) fn missing(&self, ids: &[String]) -> Vec<String> {
        let got = self.ids.lock().unwrap();
        ids.iter().filter(|id| !got.contains(id)).cloned().collect()
    }

    pub(crate) fn has_all(&self, ids: &[String]) -> bool {
        self.missing(ids).is_empty()
    }
}

#[test]
fn slow_collector_past_the_timeout_delays_no_request_and_is_retried() {
    let collector = Collector::start();
    collector.slow.store(true, Ordering::SeqCst);
    let config = json!({
        "apis": [{"name": "shop", "api_metadata": {"url": "/shop", "hostname": "*"}}],
        "analytics": {"cluster": "collector", "path": "/records", "batch_size": 5,
                      "flush_interval_ms": 200, "timeout_ms": 300},
    })
    .to_string();
    let envoy = Envoy::start_with(
        &config,
        Opts {
            extra_clusters: collector.server.cluster("collector"),
            ..Opts::default()
        },
    );
    let mut ids = Vec::new();
    for i in 0..12 {
        let id = format!("slow-{i}");
        let started = Instant::now();
        let r = envoy.get("/shop/items", &[("x-request-id", &id)]);
        assert_eq!(r.status, 200, "{id}");
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "{id} took {:?} while the collector was slow",
            started.elapsed()
        );
        ids.push(id);
        std::thread::sleep(Duration::from_millis(50));
    }
    let retried = || envoy.stat("wasmcustom.api_warden.export.batches_retried");
    assert!(
        eventually(8, || retried() >= 2),
        "batches_retried = {}",
        retried()
    );
    assert!(
        !collector.server.requests().is_empty(),
        "the collector was never called"
    );
    assert_eq!(collector.missing(&ids), ids, "accepted while slow");

    // The collector recovers: every record arrives (at least once: a batch that timed out may
    // have been received, so a slow collector can see a record twice), none was dropped.
    collector.slow.store(false, Ordering::SeqCst);
    assert!(
        eventually(10, || collector.has_all(&ids)),
        "missing after recovery: {:?}",
        collector.missing(&ids)
    );
    assert_eq!(
        envoy.stat("wasmcustom.api_warden.export.records_dropped"),
        0
    );
    assert_eq!(envoy.get("/shop/after", &[]).status, 200);
}

#[test]
fn export_keeps_up_with_more_than_one_batch_per_flush_interval() {
    // 40 records at once, batches of 5, a flush interval of 1 s, a healthy collector: one batch
    // per tick would need 8 s; chaining full batches needs about one tick.
    let collector = Collector::start();
    let config = json!({
        "apis": [{"name": "shop", "api_metadata": {"url": "/shop", "hostname": "*"}}],
        "analytics": {"cluster": "collector", "path": "/records", "batch_size": 5,
                      "flush_interval_ms": 1000},
    })
    .to_string();
    let envoy = Envoy::start_with(
        &config,
        Opts {
            extra_clusters: collector.server.cluster("collector"),
            ..Opts::default()
        },
    );
    let ids: Vec<String> = (0..40)
        .map(|i| {
            let id = format!("burst-{i}");
            assert_eq!(
                envoy.get("/shop/items", &[("x-request-id", &id)]).status,
                200
            );
            id
        })
        .collect();
    let sent_at = Instant::now();
    assert!(
        eventually(10, || collector.has_all(&ids)),
        "missing: {:?}",
        collector.missing(&ids)
    );
    assert!(
        sent_at.elapsed() < Duration::from_millis(3000),
        "40 records in batches of 5 took {:?} to export with a healthy collector",
        sent_at.elapsed()
    );
}
