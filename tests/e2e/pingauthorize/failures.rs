//! PingAuthorize failures through real Envoy: fail closed (502 in both phases) and fail open
//! (unchanged) on 4xx/5xx answers, malformed answers, timeouts, cut connections and no listener;
//! the 429 circuit; and without `allow_on_headers_stop_iteration` bodies fail per fail_open.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{echoed, launch, opts, plugin, Rig, TIMEOUT_MS};
use crate::enforcement::on_both_workers;
use crate::harness::paz::{set_listed, Case, Echo, OnRequest, OnResponse, Phase};
use crate::harness::{self, eventually, Opts};

fn slow() -> Duration {
    Duration::from_millis(TIMEOUT_MS + 700)
}

/// Every way a call can fail, by name: (request-phase answer, response-phase answer).
fn failures() -> Vec<(&'static str, OnRequest, OnResponse)> {
    vec![
        ("500", OnRequest::Fail(500), OnResponse::Fail(500)),
        ("503", OnRequest::Fail(503), OnResponse::Fail(503)),
        ("400", OnRequest::Fail(400), OnResponse::Fail(400)),
        ("401", OnRequest::Fail(401), OnResponse::Fail(401)),
        ("malformed", OnRequest::Malformed, OnResponse::Malformed),
        ("timeout", OnRequest::Slow(slow()), OnResponse::Slow(slow())),
        ("cut", OnRequest::Cut, OnResponse::Cut),
    ]
}

/// Both phases of every failure against a rig with `fail_open`. One worker, and a good request
/// after each failure, so that the part-1 breaker (consecutive failures per VM) never opens and
/// every failure is a call.
fn run_failures(fail_open: bool) {
    let one_worker = Opts {
        concurrency: 1,
        ..opts()
    };
    let rig = Rig::start_with(json!({"fail_open": fail_open}), one_worker);
    let good = |n: &str| assert_eq!(rig.get("good", &format!("/f/good-{n}")).status, 200);
    for (name, on_request, on_response) in failures() {
        let case = format!("req-{name}");
        rig.paz.set(
            &case,
            Case {
                request: on_request,
                ..Case::default()
            },
        );
        let r = rig.send(
            &case,
            "POST",
            &format!("/f/{case}"),
            &[],
            Some(b"{\"a\":1}"),
        );
        if fail_open {
            assert_eq!(r.status, 200, "{case}: {}", r.body_text());
            let up = rig.forwarded(&case);
            assert_eq!(
                (up.path.as_str(), &up.body[..]),
                (format!("/f/{case}").as_str(), &b"{\"a\":1}"[..]),
                "{case}: unchanged"
            );
        } else {
            assert_eq!(r.status, 502, "{case}: {}", r.body_text());
            std::thread::sleep(Duration::from_millis(200));
            assert!(
                rig.upstream(&case).is_empty(),
                "{case}: forwarded although it failed closed"
            );
        }
        let rec = rig.record(&case);
        assert_eq!(rec.at("/ase/sideband/outcome"), json!("error"), "{case}");
        good(&case);

        let case = format!("resp-{name}");
        rig.paz.set(
            &case,
            Case {
                response: on_response,
                ..Case::default()
            },
        );
        let r = rig.get(&case, &format!("/f/{case}"));
        assert_eq!(
            rig.upstream(&case).len(),
            1,
            "{case}: the request phase allowed it"
        );
        if fail_open {
            assert_eq!(r.status, 200, "{case}: {}", r.body_text());
            assert_eq!(
                echoed(&r)["account"],
                harness::paz::account(),
                "{case}: unchanged"
            );
            assert_eq!(r.header("x-upstream"), Some("echo"));
        } else {
            assert_eq!(r.status, 502, "{case}: {}", r.body_text());
            assert!(
                !r.body_text().contains("078-05-1120"),
                "{case}: the upstream body leaked"
            );
        }
        let rec = rig.record(&case);
        assert_eq!(
            rec.at("/ase/sideband/response_phase/outcome"),
            json!("error"),
            "{case}"
        );
        good(&case);
    }
    rig.counter_reaches("api_warden.sideband.pingauthorize.errors", 7);
    rig.counter_reaches("api_warden.sideband.pingauthorize.timeouts", 1);
    rig.counter_reaches("api_warden.sideband.pingauthorize.response_calls_failed", 7);
    rig.paz.assert_no_violations();
}

#[test]
fn failing_calls_answer_502_in_both_phases_when_failing_closed() {
    run_failures(false);
}

#[test]
fn failing_calls_pass_unchanged_when_failing_open() {
    run_failures(true);
}

#[test]
fn a_sideband_nobody_listens_on_follows_fail_open() {
    let echo = Echo::start();
    for (fail_open, want) in [(false, 502), (true, 200)] {
        let cluster = harness::yaml::cluster("paz", harness::free_port());
        let envoy = launch(
            &plugin(json!({"fail_open": fail_open})),
            &cluster,
            echo.server.port,
            &opts(),
        );
        for i in 0..4 {
            let started = Instant::now();
            let path = format!("/down/{fail_open}/{i}");
            let r = harness::request(envoy.port, "GET", &path, &[], None).unwrap();
            assert_eq!(r.status, want, "fail_open={fail_open}: {}", r.body_text());
            assert!(started.elapsed() < Duration::from_millis(TIMEOUT_MS + 1500));
        }
        let forwarded = echo
            .calls()
            .iter()
            .filter(|c| c.path.starts_with(&format!("/down/{fail_open}/")))
            .count();
        assert_eq!(
            forwarded,
            if fail_open { 4 } else { 0 },
            "fail_open={fail_open}"
        );
    }
}

fn retry_after(r: &harness::Response) -> u64 {
    r.header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("429 without a numeric retry-after: {:?}", r.headers))
}

#[test]
fn a_429_stops_the_calls_for_retry_after_and_clients_get_429() {
    let rig = Rig::start(json!({}));
    let throttle = |after: Option<&str>| Case {
        request: OnRequest::Throttle(after.map(str::to_string)),
        ..Case::default()
    };
    rig.paz.set_all(Some(throttle(Some("3"))));
    let first = Instant::now();
    // Each worker has its own circuit: open both.
    on_both_workers(&rig.envoy, 6, |i| {
        let r = rig.get("throttle", &format!("/t/open{i}"));
        assert_eq!(r.status, 429, "{}", r.body_text());
        assert!((1..=3).contains(&retry_after(&r)));
    });
    let opened = rig.paz.calls().len();
    assert!(
        opened <= 2,
        "{opened} calls: one per worker opens its circuit"
    );
    rig.paz.set_all(None);
    for i in 0..10 {
        let r = rig.get("throttle", &format!("/t/during{i}"));
        assert_eq!(r.status, 429, "during the circuit: {}", r.body_text());
        assert!((1..=3).contains(&retry_after(&r)));
    }
    assert_eq!(
        rig.paz.calls().len(),
        opened,
        "no calls while the circuit is open"
    );
    assert!(
        rig.echo.calls().is_empty(),
        "nothing forwarded while throttled"
    );
    let mut i = 0;
    let resumed = eventually(8, || {
        i += 1;
        rig.get("throttle", &format!("/t/after{i}")).status == 200
    });
    assert!(resumed, "calls never resumed");
    assert!(
        first.elapsed() >= Duration::from_millis(2500),
        "resumed after {:?}, before Retry-After: 3",
        first.elapsed()
    );
    assert!(rig.paz.calls().len() > opened, "calls resumed");
    rig.counter_reaches("api_warden.sideband.pingauthorize.rate_limited", 1);
    // Without Retry-After the circuit opens for 1 s.
    let one = Rig::start_with(
        json!({}),
        Opts {
            concurrency: 1,
            ..opts()
        },
    );
    one.paz.set_all(Some(throttle(None)));
    let started = Instant::now();
    assert_eq!(one.get("t", "/t/none").status, 429);
    one.paz.set_all(None);
    assert_eq!(one.get("t", "/t/none-during").status, 429);
    let ok = eventually(5, || one.get("t", "/t/none-after").status == 200);
    assert!(
        ok && started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    // A 429 to the response call: that response fails closed (502), the circuit opens.
    one.paz.set(
        "t-resp",
        Case {
            response: OnResponse::Throttle(Some("2".into())),
            ..Case::default()
        },
    );
    assert_eq!(one.get("t-resp", "/t/resp").status, 502);
    let calls = one.paz.calls().len();
    let r = one.get("t", "/t/resp-during");
    assert_eq!(r.status, 429);
    assert!((1..=2).contains(&retry_after(&r)));
    assert_eq!(
        one.paz.calls().len(),
        calls,
        "no calls while the circuit is open"
    );
    rig.paz.assert_no_violations();
    one.paz.assert_no_violations();
}

#[test]
fn without_allow_on_headers_stop_iteration_bodies_follow_fail_open_promptly() {
    // Without the flag Envoy hands no body to a filter that holds the headers: the filter waits
    // briefly for it, then fails per fail_open (502, or passes without the call) and logs why.
    let no_flag = Opts {
        allow_on_headers_stop_iteration: false,
        ..opts()
    };
    for fail_open in [false, true] {
        let rig = Rig::start_with(json!({ "fail_open": fail_open }), no_flag.clone());
        for i in 0..4 {
            let case = format!("nostop-{i}");
            let r = rig.send(&case, "POST", &format!("/n/{i}"), &[], Some(br#"{"x":1}"#));
            if fail_open {
                assert_eq!(r.status, 200, "{case}: {}", r.body_text());
                assert_eq!(
                    rig.forwarded(&case).body,
                    br#"{"x":1}"#,
                    "{case}: unchanged"
                );
            } else {
                assert_eq!(r.status, 502, "{case}: {}", r.body_text());
                std::thread::sleep(Duration::from_millis(100));
                assert!(rig.upstream(&case).is_empty(), "{case} forwarded");
            }
        }
        // A GET needs no request body: its request call is made; its response body never
        // reaches the filter either, so the response follows fail_open too.
        rig.paz.set(
            "nostop-get",
            Case {
                response: super::remove_ssn(),
                ..Case::default()
            },
        );
        let r = rig.get("nostop-get", "/n/get");
        assert_eq!(rig.paz.calls_for(Phase::Request, "nostop-get").len(), 1);
        if fail_open {
            assert_eq!(r.status, 200, "{}", r.body_text());
            assert_eq!(echoed(&r)["account"], harness::paz::account(), "unchanged");
        } else {
            assert_eq!(r.status, 502, "{}", r.body_text());
            assert!(!r.body_text().contains("078-05-1120"));
        }
        let log = eventually(5, || {
            rig.envoy.log().contains("allow_on_headers_stop_iteration")
        });
        assert!(log, "the reason is logged");
        rig.paz.assert_no_violations();
    }
    // With the response call off, a GET goes through its request call and rewrite as usual.
    let rig = Rig::start_with(json!({"response_call": false}), no_flag);
    rig.paz.set(
        "nostop-rw",
        Case {
            request: super::headers_edit(|h| set_listed(h, "x-added", Some("1"))),
            ..Case::default()
        },
    );
    assert_eq!(rig.get("nostop-rw", "/n/rw").status, 200);
    assert_eq!(super::values(&rig.forwarded("nostop-rw"), "x-added"), ["1"]);
    rig.paz.assert_no_violations();
}
