//! End-to-end tests of attack-list polling through real Envoy: a small HTTP server stands in for
//! the analytics engine; entries block after a poll, a new feed replaces the old one, failed
//! polls (status, garbage, timeout, oversized, server gone) keep the last good set, and one worker
//! polls per interval. Polls are conditional: a static file server with ETags (ours) and
//! Python's stock `http.server` (Last-Modified only) serve the feed, and `304`s leave it alone.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::enforcement::{assert_blocked, record_for, two_workers};
use crate::harness::{eventually, Envoy, Opts, TestServer};

mod static_feed;

const OK: &str = "wasmcustom.api_warden.attack_list.polls_ok";
const NOT_MODIFIED: &str = "wasmcustom.api_warden.attack_list.not_modified";
const FAILED: &str = "wasmcustom.api_warden.attack_list.polls_failed";

/// `/shop` identifies every type (client IP from X-Forwarded-For), polls `abs` every second.
fn config(attack_list: Value) -> String {
    json!({
        "ase": {"enable_xff": true},
        "apis": [{"name": "shop", "api_metadata": {
            "url": "/shop", "hostname": "*", "cookie": "SESSION",
            "oauth2_access_token": true, "apikey_header": "x-api-key",
            "username_header": "x-user", "enable_blocking": true}}],
        "attack_list": attack_list,
    })
    .to_string()
}

fn poll_every_second() -> Value {
    json!({"cluster": "abs", "path": "/v1/attack_list", "interval_s": 1, "timeout_ms": 400})
}

fn start(server: &TestServer, attack_list: Value, concurrency: u32) -> Envoy {
    Envoy::start_with(
        &config(attack_list),
        Opts {
            concurrency,
            extra_clusters: server.cluster("abs"),
            ..two_workers()
        },
    )
}

/// A feed that always answers with `body`.
fn feed(body: &str) -> TestServer {
    let body = body.as_bytes().to_vec();
    TestServer::start(move |_| (200, body.clone()))
}

fn user_status(envoy: &Envoy, user: &str) -> u16 {
    envoy.get("/shop/u", &[("x-user", user)]).status
}

/// Wait (up to 6 s) until requests by `user` get `status`.
fn wait_user(envoy: &Envoy, user: &str, status: u16) {
    eventually(6, || (user_status(envoy, user) == status).then_some(()))
        .unwrap_or_else(|| panic!("timed out after 6 s: {user} to get {status}"));
}

#[test]
fn entries_of_every_type_block_after_the_first_poll() {
    let server = feed(
        r#"{"ip": ["192.0.2.7"], "token": ["feed-token"], "api_key": ["feed-key"],
            "cookie": ["feed-cookie"], "username": ["feed-user", {"value": "obj-user"}],
            "unknown": [1]}"#,
    );
    let mut al = poll_every_second();
    al["authority"] = json!("abs.internal");
    al["headers"] = json!({"X-ABS-Token": "t0k"});
    let started = Instant::now();
    let envoy = start(&server, al, 2);
    wait_user(&envoy, "feed-user", 403);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "first poll took {:?}",
        started.elapsed()
    );
    let cases: [(&str, &str, (&str, &str)); 6] = [
        ("/shop/ip", "ip", ("x-forwarded-for", "192.0.2.7")),
        (
            "/shop/token",
            "token",
            ("authorization", "Bearer feed-token"),
        ),
        ("/shop/key", "api_key", ("x-api-key", "feed-key")),
        ("/shop/cookie", "cookie", ("cookie", "SESSION=feed-cookie")),
        ("/shop/user", "username", ("x-user", "feed-user")),
        ("/shop/obj", "username", ("x-user", "obj-user")),
    ];
    for (uri, t, h) in cases {
        assert_blocked(&envoy.get(uri, &[h]), uri);
        let rec = record_for(&envoy, uri);
        assert_eq!(rec.at("/ase/reason"), format!("deny_list:{t}"), "{uri}");
        assert_eq!(rec.at("/ase/list_source"), "attack_list", "{uri}");
    }
    // Clients not on the feed pass.
    let r = envoy.get(
        "/shop/fine",
        &[
            ("x-forwarded-for", "192.0.2.8"),
            ("x-user", "alice"),
            ("authorization", "Bearer other"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    // (The waiting requests of `wait_user` went through before the first poll.)
    let seen: Vec<String> = envoy
        .upstream_paths()
        .into_iter()
        .filter(|p| p != "/shop/u")
        .collect();
    assert_eq!(seen, vec!["/shop/fine".to_string()]);
    // The poll: a GET of the configured path, authority and headers.
    let first = &server.requests()[0];
    assert_eq!(first.method, "GET");
    assert_eq!(first.path, "/v1/attack_list");
    let header = |n: &str| {
        first
            .headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("host"), Some("abs.internal"));
    assert_eq!(header("x-abs-token"), Some("t0k"));
    assert!(envoy.stat(OK) >= 1);
    assert_eq!(envoy.stat(FAILED), 0);
}

#[test]
fn a_new_feed_replaces_the_old_one() {
    let server = feed(r#"{"username": ["first"], "token": ["t-first"]}"#);
    let envoy = start(&server, poll_every_second(), 2);
    wait_user(&envoy, "first", 403);
    assert_eq!(user_status(&envoy, "second"), 200);

    server.set(|_| (200, br#"{"username": ["second"]}"#.to_vec()));
    wait_user(&envoy, "first", 200);
    assert_eq!(user_status(&envoy, "second"), 403);
    // Entries of a type the new feed no longer has are gone too.
    let r = envoy.get("/shop/t", &[("authorization", "Bearer t-first")]);
    assert_eq!(r.status, 200, "{}", r.body_text());

    // An empty feed empties the list.
    server.set(|_| (200, b"{}".to_vec()));
    wait_user(&envoy, "second", 200);
    assert!(envoy.stat(OK) >= 3);
    assert_eq!(envoy.stat(FAILED), 0);
}

/// Load a good feed, break the server with `bad` (and stop it when `gone`), and check that failed
/// polls are counted while the last good set keeps blocking.
fn failed_polls_keep_the_last_good_set(
    envoy: &Envoy,
    server: TestServer,
    gone: bool,
    bad: impl FnOnce(&TestServer),
) {
    wait_user(envoy, "kept", 403);
    let ok_before = envoy.stat(OK);
    let failed_before = envoy.stat(FAILED);
    assert_eq!(failed_before, 0);
    bad(&server);
    let _alive = if gone {
        drop(server);
        None
    } else {
        Some(server)
    };
    // Two failures in a row, so the set was kept across a whole failed interval.
    eventually(8, || {
        (envoy.stat(FAILED) >= failed_before + 2).then_some(())
    })
    .unwrap_or_else(|| panic!("timed out after 8 s: two failed polls"));
    for i in 0..3 {
        let uri = format!("/shop/after-failure/{i}");
        assert_blocked(&envoy.get(&uri, &[("x-user", "kept")]), &uri);
        assert_eq!(
            record_for(envoy, &uri).at("/ase/list_source"),
            "attack_list"
        );
    }
    assert_eq!(user_status(envoy, "other"), 200);
    // At most the poll in flight at the switch could still succeed.
    assert!(envoy.stat(OK) <= ok_before + 1);
}

const GOOD: &[u8] = br#"{"username": ["kept"]}"#;

#[test]
fn a_server_error_keeps_the_last_good_set() {
    let server = TestServer::start(|_| (200, GOOD.to_vec()));
    let envoy = start(&server, poll_every_second(), 2);
    failed_polls_keep_the_last_good_set(&envoy, server, false, |s| {
        s.set(|_| (500, br#"{"username": []}"#.to_vec()));
    });
}

#[test]
fn a_garbage_response_keeps_the_last_good_set() {
    let server = TestServer::start(|_| (200, GOOD.to_vec()));
    let envoy = start(&server, poll_every_second(), 2);
    failed_polls_keep_the_last_good_set(&envoy, server, false, |s| {
        s.set(|_| (200, b"<html>oops</html>".to_vec()));
    });
}

#[test]
fn a_feed_of_the_wrong_shape_keeps_the_last_good_set() {
    let server = TestServer::start(|_| (200, GOOD.to_vec()));
    let envoy = start(&server, poll_every_second(), 2);
    failed_polls_keep_the_last_good_set(&envoy, server, false, |s| {
        s.set(|_| (200, br#"{"username": "not-a-list"}"#.to_vec()));
    });
}

#[test]
fn a_timeout_keeps_the_last_good_set() {
    let server = TestServer::start(|_| (200, GOOD.to_vec()));
    let envoy = start(&server, poll_every_second(), 2);
    failed_polls_keep_the_last_good_set(&envoy, server, false, |s| {
        // Longer than timeout_ms (400), shorter than the interval.
        s.set(|_| {
            std::thread::sleep(Duration::from_millis(700));
            (200, b"{}".to_vec())
        });
    });
}

#[test]
fn an_oversized_feed_keeps_the_last_good_set() {
    let server = TestServer::start(|_| (200, GOOD.to_vec()));
    let mut al = poll_every_second();
    al["max_body_bytes"] = json!(256);
    let envoy = start(&server, al, 2);
    failed_polls_keep_the_last_good_set(&envoy, server, false, |s| {
        let users: Vec<String> = (0..100).map(|i| format!("user-{i}")).collect();
        let big = json!({ "username": users }).to_string().into_bytes();
        s.set(move |_| (200, big.clone()));
    });
}

#[test]
fn a_server_that_is_gone_keeps_the_last_good_set() {
    let server = TestServer::start(|_| (200, GOOD.to_vec()));
    // One request per connection, so no pooled connection outlives the server.
    let cluster = format!(
        "- name: abs\n  type: STATIC\n  connect_timeout: 0.25s\n  typed_extension_protocol_options:\n    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n      \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n      common_http_protocol_options: {{ max_requests_per_connection: 1 }}\n      explicit_http_config: {{ http_protocol_options: {{}} }}\n  load_assignment:\n    cluster_name: abs\n    endpoints:\n    - lb_endpoints:\n      - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {} }} }} }}\n",
        server.port
    );
    let envoy = Envoy::start_with(
        &config(poll_every_second()),
        Opts {
            extra_clusters: cluster,
            ..two_workers()
        },
    );
    failed_polls_keep_the_last_good_set(&envoy, server, true, |_| {});
}

#[test]
fn one_poll_per_interval_per_process_with_two_workers() {
    let server = feed(r#"{"username": ["x"]}"#);
    let envoy = start(&server, poll_every_second(), 2);
    eventually(5, || (!server.requests().is_empty()).then_some(()))
        .unwrap_or_else(|| panic!("timed out after 5 s: the first poll"));
    let before = server.requests().len();
    let window = Duration::from_secs(4);
    std::thread::sleep(window);
    let polls = server.requests().len() - before;
    // One per second: about 4. Two workers polling each on their own would make about 8.
    assert!(
        (2..=5).contains(&polls),
        "{polls} polls in {window:?} with 2 workers"
    );
    let counted = envoy.stat(OK) + envoy.stat(FAILED);
    let total = server.requests().len() as u64;
    assert!(
        counted + 1 >= total && counted <= total,
        "stats count {counted} polls, the server saw {total}"
    );
}

#[test]
fn a_large_feed_loads_and_blocks() {
    // 400,000 entries, about 7.6 MB of JSON.
    let n = 200_000;
    let users: Vec<String> = (0..n).map(|i| format!("attacker-{i:07}")).collect();
    let body = json!({ "username": users, "token": users })
        .to_string()
        .into_bytes();
    let size = body.len();
    let server = TestServer::start(move |_| (200, body.clone()));
    let mut al = poll_every_second();
    al["interval_s"] = json!(5);
    al["timeout_ms"] = json!(4000);
    let envoy = start(&server, al, 2);
    wait_user(&envoy, "attacker-0000000", 403);
    assert!(size > 7_000_000, "{size}");
    assert_eq!(user_status(&envoy, &format!("attacker-{:07}", n - 1)), 403);
    assert_eq!(user_status(&envoy, &format!("attacker-{n:07}")), 200);
    assert_eq!(envoy.stat(FAILED), 0);
}

#[test]
fn a_paginated_feed_is_followed_and_replaced_only_once_complete() {
    // Page 1 points to page 2 with `next`; the set is swapped in only after the last page.
    let server = TestServer::start(|req| {
        let body = if req.path.ends_with("page=2") {
            r#"{"username": ["page2-user"], "ip": ["192.0.2.9"], "next": null}"#
        } else {
            r#"{"username": ["page1-user", "page2-user"], "next": "/v1/attack_list?page=2"}"#
        };
        (200, body.as_bytes().to_vec())
    });
    let mut al = poll_every_second();
    al["interval_s"] = json!(30);
    al["timeout_ms"] = json!(2000);
    let envoy = start(&server, al, 2);
    wait_user(&envoy, "page1-user", 403);
    assert_eq!(user_status(&envoy, "page2-user"), 403);
    let r = envoy.get("/shop/ip", &[("x-forwarded-for", "192.0.2.9")]);
    assert_blocked(&r, "/shop/ip");
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, vec!["/v1/attack_list", "/v1/attack_list?page=2"]);
    assert_eq!(envoy.stat(OK), 1, "one poll, two pages");
}

#[test]
fn a_failing_page_fails_the_whole_poll() {
    let server = TestServer::start(|req| {
        if req.path.ends_with("page=2") {
            (500, b"oops".to_vec())
        } else {
            (
                200,
                br#"{"username": ["half-user"], "next": "/v1/attack_list?page=2"}"#.to_vec(),
            )
        }
    });
    let envoy = start(&server, poll_every_second(), 1);
    eventually(6, || (envoy.stat(FAILED) >= 1).then_some(()))
        .unwrap_or_else(|| panic!("timed out after 6 s: a failed poll"));
    assert_eq!(
        user_status(&envoy, "half-user"),
        200,
        "a partial feed never loads"
    );
    assert_eq!(envoy.stat(OK), 0);
}

/// How many times this Envoy replaced its feed (its log line per replacement).
fn loads(envoy: &Envoy) -> usize {
    envoy.log().matches("attack list loaded").count()
}

/// Wait until `n` more polls were answered `304`.
fn wait_not_modified(envoy: &Envoy, n: u64) {
    let before = envoy.stat(NOT_MODIFIED);
    eventually(8, || (envoy.stat(NOT_MODIFIED) >= before + n).then_some(()))
        .unwrap_or_else(|| panic!("timed out after 8 s: {n} polls answered 304"));
}

#[test]
fn a_static_server_with_etags_is_polled_conditionally() {
    let dir = crate::harness::scratch("static-feed");
    let file = dir.join("feed.json");
    std::fs::write(&file, r#"{"username": ["first"]}"#).unwrap();
    let server = static_feed::StaticServer::start(dir.clone());
    let mut al = poll_every_second();
    al["path"] = json!("/feed.json");
    let envoy = Envoy::start_with(
        &config(al),
        Opts {
            extra_clusters: crate::harness::yaml::cluster("abs", server.port),
            ..two_workers()
        },
    );
    wait_user(&envoy, "first", 403);
    wait_not_modified(&envoy, 3);
    assert_eq!(loads(&envoy), 1, "a 304 does not rewrite the feed");
    assert_eq!(envoy.stat(OK) - envoy.stat(NOT_MODIFIED), 1);
    assert_eq!(envoy.stat(FAILED), 0);
    let hits = server.hits();
    let etag = hits[0].header("if-none-match");
    assert_eq!(etag, None, "the first poll is plain");
    for h in &hits[1..] {
        assert_eq!(h.path, "/feed.json");
        assert!(h.header("if-none-match").is_some(), "{h:?}");
        assert_eq!(h.status, 304, "{h:?}");
    }
    // A changed file (a new ETag) is picked up within about one interval.
    std::fs::write(&file, r#"{"username": ["second"]}"#).unwrap();
    wait_user(&envoy, "second", 403);
    assert_eq!(user_status(&envoy, "first"), 200);
    wait_not_modified(&envoy, 2);
    assert_eq!(loads(&envoy), 2);
    assert_eq!(envoy.stat(FAILED), 0);
}

/// Python's `http.server` on a free port serving `dir` (stock: `Last-Modified` and
/// `If-Modified-Since`, no ETag).
struct PythonServer(std::process::Child, u16);

impl PythonServer {
    fn start(dir: &std::path::Path) -> PythonServer {
        let port = crate::harness::free_port();
        let child = std::process::Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        eventually(10, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .then_some(())
        .expect("http.server up");
        PythonServer(child, port)
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pythons_stock_http_server_is_polled_with_if_modified_since() {
    let dir = crate::harness::scratch("python-feed");
    let file = dir.join("feed.json");
    std::fs::write(&file, r#"{"username": ["first"]}"#).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_modified(old))
        .unwrap();
    let server = PythonServer::start(&dir);
    let mut al = poll_every_second();
    al["path"] = json!("/feed.json");
    let envoy = Envoy::start_with(
        &config(al),
        Opts {
            extra_clusters: crate::harness::yaml::cluster("abs", server.1),
            ..two_workers()
        },
    );
    wait_user(&envoy, "first", 403);
    wait_not_modified(&envoy, 2);
    assert_eq!(loads(&envoy), 1);
    // Its Last-Modified has whole seconds: the new file is written with a later mtime.
    std::fs::write(&file, r#"{"username": ["second"]}"#).unwrap();
    wait_user(&envoy, "second", 403);
    wait_not_modified(&envoy, 1);
    assert_eq!(loads(&envoy), 2);
    assert_eq!(envoy.stat(FAILED), 0);
}

#[test]
fn abs_own_attack_list_reply_is_polled_with_its_access_keys() {
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 12;
    let body = json!({
        "ips": ["192.0.2.44"],
        "oauth_tokens": ["abs-token"],
        "api_keys": [{"value": "abs-key", "ttl": 0}],
        "usernames": ["abs-user", {"value": "brief-user", "expires_at": soon}],
        "cookies": {"SESSION": ["abs-cookie"], "JSESSIONID": ["other-cookie"]},
        "status": "active",
    })
    .to_string()
    .into_bytes();
    // ABS answers 401 without its access keys.
    let server = TestServer::start(move |req| {
        let h = |n: &str| {
            req.headers
                .iter()
                .any(|(k, v)| k == n && v == &n.to_uppercase())
        };
        if req.path == "/v4/abs/attacklist" && h("x-abs-ak") && h("x-abs-sk") {
            (200, body.clone())
        } else {
            (401, br#"{"message": "bad access key"}"#.to_vec())
        }
    });
    let mut al = poll_every_second();
    al["path"] = json!("/v4/abs/attacklist");
    al["headers"] = json!({"x-abs-ak": "X-ABS-AK", "x-abs-sk": "X-ABS-SK"});
    let envoy = start(&server, al, 2);
    wait_user(&envoy, "abs-user", 403);
    let cases: [(&str, &str, (&str, &str)); 5] = [
        ("/shop/ip", "ip", ("x-forwarded-for", "192.0.2.44")),
        (
            "/shop/token",
            "token",
            ("authorization", "Bearer abs-token"),
        ),
        ("/shop/key", "api_key", ("x-api-key", "abs-key")),
        ("/shop/cookie", "cookie", ("cookie", "SESSION=abs-cookie")),
        ("/shop/brief", "username", ("x-user", "brief-user")),
    ];
    for (uri, t, h) in cases {
        assert_blocked(&envoy.get(uri, &[h]), uri);
        assert_eq!(
            record_for(&envoy, uri).at("/ase/reason"),
            format!("deny_list:{t}")
        );
    }
    // The entry with expires_at stops blocking then, though the feed still lists it. (12 s away
    // so that a loaded machine still checks it before it expires.)
    let expired = eventually(20, || user_status(&envoy, "brief-user") == 200);
    assert!(expired, "brief-user never expired");
    assert_eq!(user_status(&envoy, "abs-user"), 403);
    assert!(envoy.stat(OK) >= 2);
    assert_eq!(envoy.stat(FAILED), 0, "every poll carried the access keys");
}
