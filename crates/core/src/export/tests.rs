//! Tests of the export buffer and of the driver against the mock host.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;

fn settings(batch: usize, max: usize) -> AnalyticsSettings {
    AnalyticsSettings {
        batch_size: batch,
        max_buffered: max,
        flush_interval_ms: 1000,
        ..AnalyticsSettings::default()
    }
}

#[test]
fn batches_when_full_or_on_interval() {
    let mut e = Exporter::new(&settings(2, 100));
    e.push("{\"a\":1}".into());
    assert_eq!(
        e.due(0).as_deref(),
        Some(&b"[{\"a\":1}]"[..]),
        "first flush is due at once"
    );
    assert!(e.finish(true, 0).sent == 1);
    e.push("1".into());
    assert_eq!(e.due(10), None, "interval not passed, batch not full");
    e.push("2".into());
    e.push("3".into());
    assert_eq!(e.due(10).as_deref(), Some(&b"[1,2]"[..]));
    assert_eq!(e.due(20), None, "one batch in flight at a time");
    assert_eq!(
        e.finish(true, 20),
        BatchResult {
            sent: 2,
            retried: false
        }
    );
    assert_eq!(e.due(1500).as_deref(), Some(&b"[3]"[..]));
}

#[test]
fn failures_retry_with_backoff_in_order() {
    let mut e = Exporter::new(&settings(10, 100));
    for i in 0..3 {
        e.push(i.to_string());
    }
    assert!(e.due(0).is_some());
    assert!(e.finish(false, 0).retried);
    assert_eq!(e.due(50), None, "backing off");
    assert_eq!(e.due(100).as_deref(), Some(&b"[0,1,2]"[..]));
    assert!(e.finish(false, 100).retried);
    assert_eq!(e.due(250), None, "backoff doubled");
    assert!(e.due(300).is_some());
    assert_eq!(e.finish(true, 300).sent, 3);
}

#[test]
fn bounded_buffer_drops_oldest_and_counts() {
    let mut e = Exporter::new(&settings(2, 3));
    for i in 0..5 {
        e.push(i.to_string());
    }
    assert_eq!(e.buffered(), 3);
    assert_eq!(e.take_dropped(), 2);
    assert_eq!(e.due(0).as_deref(), Some(&b"[2,3]"[..]));
    e.push("5".into());
    e.push("6".into());
    assert_eq!(
        e.take_dropped(),
        2,
        "in-flight records count against the bound"
    );
    e.finish(false, 0);
    assert_eq!(e.buffered(), 3);
}

#[test]
fn reconfigure_adopts_new_settings_and_keeps_records() {
    let mut e = Exporter::new(&settings(100, 100));
    for i in 0..3 {
        e.push(i.to_string());
    }
    assert_eq!(e.due(0).as_deref(), Some(&b"[0,1,2]"[..]));
    e.finish(true, 0);
    for i in 3..7 {
        e.push(i.to_string());
    }
    let mut s = settings(2, 3);
    s.flush_interval_ms = 100;
    e.reconfigure(&s);
    assert_eq!(e.take_dropped(), 1, "a smaller bound drops the oldest");
    assert_eq!(e.buffered(), 3);
    assert_eq!(
        e.due(10).as_deref(),
        Some(&b"[4,5]"[..]),
        "the new batch size"
    );
    e.finish(true, 10);
    assert_eq!(e.due(50), None);
    assert_eq!(
        e.due(110).as_deref(),
        Some(&b"[6]"[..]),
        "the new flush interval"
    );
}

mod driver {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use std::collections::BTreeMap;

    use super::super::*;
    use crate::host::mock::{answer, MockHost};

    const T0: u64 = 1_700_000_000_000;

    fn settings(batch: usize, max: usize) -> AnalyticsSettings {
        AnalyticsSettings {
            cluster: Some("collector".into()),
            path: "/ingest".into(),
            headers: BTreeMap::from([("Authorization".to_string(), "Bearer x".to_string())]),
            timeout_ms: 700,
            ..super::settings(batch, max)
        }
    }

    struct Vm {
        host: MockHost,
        ex: Exporter,
        d: ExportDriver,
        s: AnalyticsSettings,
    }

    impl Vm {
        fn new(batch: usize, max: usize) -> Vm {
            let s = settings(batch, max);
            Vm {
                host: MockHost::new(T0),
                ex: Exporter::new(&s),
                d: ExportDriver::default(),
                s,
            }
        }
        fn push(&mut self, r: impl IntoIterator<Item = u32>) {
            for i in r {
                self.ex.push(i.to_string());
            }
        }
        fn tick(&mut self) {
            let now = crate::host::Clock::now_ms(&self.host);
            self.d.flush(&self.host, Some(&mut self.ex), &self.s, now);
        }
        /// Answer the call in flight; returns its body.
        fn reply(&mut self, status: Option<u16>) -> (String, Answered) {
            let (t, call) = self.host.take_call().unwrap();
            let a = self.d.on_answer(
                &self.host,
                Some(&mut self.ex),
                &self.s,
                t,
                &answer(status, b""),
            );
            (String::from_utf8(call.body.unwrap()).unwrap(), a)
        }
        fn count(&self, c: Counter) -> u64 {
            self.host.count(c)
        }
    }

    #[test]
    fn batch_request_carries_the_settings() {
        let s = settings(1, 1);
        let c = batch_request(&s, b"[1]".to_vec()).unwrap();
        let want = CallRequest::new("POST", "collector", "", "/ingest", 700)
            .header("content-type", "application/json")
            .header("authorization", "Bearer x")
            .body(b"[1]".to_vec());
        assert_eq!(c, want);
        assert_eq!(
            batch_request(&AnalyticsSettings::default(), Vec::new()),
            None
        );
    }

    #[test]
    fn one_batch_in_flight_and_the_next_leaves_when_one_is_answered() {
        let mut vm = Vm::new(2, 100);
        vm.push(0..5);
        vm.tick();
        vm.tick();
        assert_eq!(vm.host.pending(), 1, "one batch in flight");
        assert_eq!(vm.reply(Some(200)), ("[0,1]".into(), Answered::Handled));
        assert_eq!(vm.host.pending(), 1, "the next full batch left at once");
        assert_eq!(vm.reply(Some(204)).0, "[2,3]");
        assert_eq!(
            vm.host.pending(),
            0,
            "a partial batch waits for the interval"
        );
        assert_eq!(vm.count(Counter::ExportRecordsSent), 4);
        vm.host.advance(999);
        vm.tick();
        assert_eq!(vm.host.pending(), 0);
        vm.host.advance(1);
        vm.tick();
        assert_eq!(vm.reply(Some(200)).0, "[4]");
        assert_eq!(vm.count(Counter::ExportRecordsSent), 5);
        assert!(!vm.d.in_flight());
    }

    #[test]
    fn failed_batches_are_retried_with_backoff() {
        let mut vm = Vm::new(10, 100);
        vm.push(0..3);
        vm.tick();
        assert_eq!(vm.reply(Some(503)).0, "[0,1,2]");
        assert_eq!(vm.count(Counter::ExportBatchesRetried), 1);
        vm.host.advance(99);
        vm.tick();
        assert_eq!(vm.host.pending(), 0, "backing off");
        vm.host.advance(1);
        vm.tick();
        assert_eq!(vm.reply(None).0, "[0,1,2]", "a timeout is a failure too");
        vm.host.advance(199);
        vm.tick();
        assert_eq!(vm.host.pending(), 0, "the backoff doubled");
        vm.host.advance(1);
        vm.tick();
        assert_eq!(vm.reply(Some(200)).0, "[0,1,2]");
        assert_eq!(vm.count(Counter::ExportBatchesRetried), 2);
        assert_eq!(vm.count(Counter::ExportRecordsSent), 3);
    }

    #[test]
    fn a_batch_that_cannot_be_sent_is_kept_and_retried() {
        let mut vm = Vm::new(10, 100);
        vm.push(0..2);
        *vm.host.fail_dispatch.borrow_mut() = Some("unknown cluster".into());
        vm.tick();
        assert_eq!(vm.count(Counter::ExportBatchesRetried), 1);
        assert_eq!(vm.ex.buffered(), 2);
        *vm.host.fail_dispatch.borrow_mut() = None;
        vm.host.advance(100);
        vm.tick();
        assert_eq!(vm.reply(Some(200)).0, "[0,1]");
    }

    #[test]
    fn records_beyond_max_buffered_are_dropped_and_counted() {
        let mut vm = Vm::new(2, 3);
        vm.push(0..5);
        vm.tick();
        assert_eq!(vm.count(Counter::ExportRecordsDropped), 2);
        vm.push(5..7);
        vm.tick();
        assert_eq!(
            vm.count(Counter::ExportRecordsDropped),
            4,
            "counted while in flight too"
        );
        assert_eq!(vm.reply(Some(200)).0, "[2,3]");
    }

    #[test]
    fn no_collector_no_export() {
        let mut vm = Vm::new(1, 1);
        vm.s.cluster = None;
        vm.push(0..3);
        vm.tick();
        assert_eq!(vm.host.pending(), 0);
        assert!(!vm.d.shutdown(&vm.host, Some(&mut vm.ex), &vm.s));
        let mut d = ExportDriver::default();
        d.flush(&vm.host, None, &settings(1, 1), T0);
        assert_eq!(vm.host.pending(), 0);
        let a = answer(Some(200), b"");
        assert_eq!(d.on_answer(&vm.host, None, &vm.s, 1, &a), Answered::NotOurs);
    }

    #[test]
    fn shutdown_sends_what_is_buffered_and_reports_pending_until_answered() {
        let mut vm = Vm::new(2, 100);
        vm.push(0..1);
        vm.tick();
        assert_eq!(vm.reply(Some(200)).0, "[0]");
        vm.push(1..4);
        assert!(
            vm.d.shutdown(&vm.host, Some(&mut vm.ex), &vm.s),
            "pending: a batch is in flight"
        );
        assert_eq!(vm.reply(Some(200)), ("[1,2]".into(), Answered::Handled));
        assert_eq!(
            vm.reply(Some(200)),
            ("[3]".into(), Answered::Done),
            "the rest leaves whatever the interval"
        );
        assert_eq!(vm.count(Counter::ExportRecordsSent), 4);

        let mut vm = Vm::new(2, 100);
        assert!(
            !vm.d.shutdown(&vm.host, Some(&mut vm.ex), &vm.s),
            "nothing to send"
        );
        vm.push(0..3);
        assert!(vm.d.shutdown(&vm.host, Some(&mut vm.ex), &vm.s));
        assert_eq!(
            vm.reply(Some(500)),
            ("[0,1]".into(), Answered::Done),
            "no retry at shutdown"
        );

        let mut vm = Vm::new(10, 100);
        vm.push(0..2);
        vm.tick();
        assert_eq!(vm.reply(Some(503)).0, "[0,1]");
        assert!(
            vm.d.shutdown(&vm.host, Some(&mut vm.ex), &vm.s),
            "no backoff at shutdown"
        );
        assert_eq!(vm.reply(Some(200)), ("[0,1]".into(), Answered::Done));
    }
}

mod otlp_batches {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use serde_json::{json, Value};

    const NOW_MS: u64 = 1_700_000_001_234;

    fn record() -> String {
        json!({
            "action": "outbound-POST",
            "service": "shop",
            "attributes": {"HttpRequest.IPAddress": "10.0.0.1",
                "HttpRequest.RequestURI": "/shop/cart?item=1&n=2",
                "HttpRequest.ResponseStatus": 403},
            "ase": {"api": "shop", "decision": "block", "reason": "deny_list:username",
                "list_source": "attack_list",
                "client": {"ip": "192.0.2.1", "username": "mallory", "client_id": null}},
            "timestamp": "2023-11-14T22:13:20.500Z",
            "duration_ms": 3,
        })
        .to_string()
    }

    fn attrs(lr: &Value) -> Vec<(String, Value)> {
        lr["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["key"].as_str().unwrap().to_string(), a["value"].clone()))
            .collect()
    }

    #[test]
    fn a_batch_is_one_logs_request_with_a_log_record_per_request() {
        let s = AnalyticsSettings {
            format: ExportFormat::Otlp,
            batch_size: 10,
            ..AnalyticsSettings::default()
        };
        let mut e = Exporter::new(&s);
        e.push(record());
        e.push("not json".into());
        let body: Value = serde_json::from_slice(&e.due(NOW_MS).unwrap()).unwrap();
        let rl = &body["resourceLogs"][0];
        assert_eq!(
            rl["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "api-warden"}})
        );
        let sl = &rl["scopeLogs"][0];
        assert_eq!(sl["scope"]["name"], "api-warden");
        let lrs = sl["logRecords"].as_array().unwrap();
        assert_eq!(lrs.len(), 2);
        let lr = &lrs[0];
        assert_eq!(lr["timeUnixNano"], "1700000000500000000");
        assert_eq!(lr["observedTimeUnixNano"], "1700000001234000000");
        assert_eq!(
            (lr["severityNumber"].clone(), lr["severityText"].clone()),
            (json!(13), json!("WARN"))
        );
        assert_eq!(lr["body"]["stringValue"], record());
        let s = |v: &str| json!({"stringValue": v});
        let i = |v: &str| json!({"intValue": v});
        assert_eq!(
            attrs(lr),
            vec![
                ("http.request.method".into(), s("POST")),
                ("url.path".into(), s("/shop/cart")),
                ("url.query".into(), s("item=1&n=2")),
                ("client.address".into(), s("192.0.2.1")),
                ("user.name".into(), s("mallory")),
                ("api_warden.api".into(), s("shop")),
                ("api_warden.decision".into(), s("block")),
                ("api_warden.reason".into(), s("deny_list:username")),
                ("api_warden.list_source".into(), s("attack_list")),
                ("http.response.status_code".into(), i("403")),
                ("api_warden.duration_ms".into(), i("3")),
            ]
        );
        // A record that is not JSON still travels, as text, at the time of the batch.
        let bad = &lrs[1];
        assert_eq!(bad["body"]["stringValue"], "not json");
        assert_eq!(bad["timeUnixNano"], "1700000001234000000");
        assert_eq!(bad["attributes"], json!([]));
        assert_eq!(bad["severityText"], "INFO");
        // The call: POST to /v1/logs as JSON.
        let call = batch_request(
            &AnalyticsSettings {
                cluster: Some("otel".into()),
                ..crate::services::Services::default().analytics
            },
            Vec::new(),
        )
        .unwrap();
        assert_eq!(
            call.headers[3],
            ("content-type".into(), "application/json".into())
        );
    }

    #[test]
    fn record_timestamps_convert_to_unix_milliseconds() {
        let rows = [
            ("1970-01-01T00:00:00.000Z", Some(0)),
            ("2023-11-14T22:13:20.500Z", Some(1_700_000_000_500)),
            ("2024-02-29T12:00:00.001Z", Some(1_709_208_000_001)),
            ("2000-03-01T00:00:00.000Z", Some(951_868_800_000)),
            ("2023-11-14T22:13:20Z", None),
            ("2023-13-14T22:13:20.500Z", None),
            ("2023-11-14 22:13:20.500Z", None),
            ("2023-11-14T22:13:2x.500Z", None),
            ("", None),
        ];
        for (ts, want) in rows {
            assert_eq!(otlp::unix_ms(ts), want, "{ts}");
        }
        for ms in [0u64, 951_868_800_000, 1_700_000_000_500, 4_102_444_800_999] {
            assert_eq!(otlp::unix_ms(&crate::record::timestamp(ms)), Some(ms));
        }
    }
}
