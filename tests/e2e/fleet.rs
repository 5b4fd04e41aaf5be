//! A fleet on one feed: three Envoy processes with two workers each poll one attack-list
//! endpoint. The endpoint sees one poll per process per interval (the election in shared data
//! is per process, whatever the worker count), and a feed change reaches every process within
//! one interval.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::enforcement::two_workers;
use crate::harness::{eventually, Envoy, Opts, TestServer};

const MEMBERS: usize = 3;
const INTERVAL_S: u64 = 2;

fn start(server: &TestServer, member: usize) -> Envoy {
    let config = json!({
        "apis": [{"name": "shop", "api_metadata": {
            "url": "/shop", "hostname": "*", "username_header": "x-user",
            "enable_blocking": true}}],
        "attack_list": {"cluster": "abs", "path": "/v4/abs/attacklist",
            "interval_s": INTERVAL_S, "timeout_ms": 1000,
            // Tells the endpoint which process polled.
            "headers": {"x-fleet-member": member.to_string()}},
    });
    Envoy::start_with(
        &config.to_string(),
        Opts {
            extra_clusters: server.cluster("abs"),
            ..two_workers()
        },
    )
}

/// Polls per member so far.
fn polls(server: &TestServer) -> [usize; MEMBERS] {
    let mut n = [0; MEMBERS];
    for r in server.requests() {
        let member = r
            .headers
            .iter()
            .find(|(k, _)| k == "x-fleet-member")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        if let Some(slot) = member.and_then(|m| n.get_mut(m)) {
            *slot += 1;
        }
    }
    n
}

fn status(envoy: &Envoy, user: &str) -> u16 {
    envoy.get("/shop/x", &[("x-user", user)]).status
}

#[test]
fn three_processes_poll_once_per_interval_each_and_all_pick_up_a_change() {
    let server = TestServer::start(|_| (200, br#"{"usernames": ["old"]}"#.to_vec()));
    let fleet: Vec<Envoy> = (0..MEMBERS).map(|m| start(&server, m)).collect();
    let all_polled = eventually(10, || polls(&server).iter().all(|n| *n > 0));
    assert!(all_polled, "not every member polled: {:?}", polls(&server));
    for e in &fleet {
        assert!(
            eventually(5, || status(e, "old") == 403),
            "the first feed is not enforced"
        );
    }
    // One poll per process per interval: 4 intervals make about 4 each, not 8 (2 workers).
    let before = polls(&server);
    let window = Duration::from_secs(4 * INTERVAL_S);
    std::thread::sleep(window);
    let after = polls(&server);
    for m in 0..MEMBERS {
        let n = after[m] - before[m];
        assert!((3..=5).contains(&n), "member {m}: {n} polls in {window:?}");
    }
    // A change reaches every process within one interval (plus the time of a poll).
    server.set(|_| (200, br#"{"usernames": ["new"]}"#.to_vec()));
    let changed = Instant::now();
    // Every member is watched at once, so each one's time is its own (checking them one after
    // the other would add the first members' waits to the last one's).
    let mut took: [Option<Duration>; MEMBERS] = [None; MEMBERS];
    let deadline = Duration::from_secs(INTERVAL_S + 3);
    while took.iter().any(Option::is_none) && changed.elapsed() < deadline {
        for (m, e) in fleet.iter().enumerate() {
            if took[m].is_none() && status(e, "new") == 403 {
                took[m] = Some(changed.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for (m, e) in fleet.iter().enumerate() {
        let Some(took) = took[m] else {
            panic!("member {m} does not block the new entry after {deadline:?}");
        };
        // One interval, plus the poll itself and the 50 ms of this loop, with room for a busy
        // machine.
        assert!(
            took <= Duration::from_millis(INTERVAL_S * 1000 + 1500),
            "member {m} took {took:?}"
        );
        assert_eq!(status(e, "old"), 200, "member {m}");
    }
    for e in &fleet {
        assert_eq!(e.stat("wasmcustom.api_warden.attack_list.polls_failed"), 0);
    }
}
