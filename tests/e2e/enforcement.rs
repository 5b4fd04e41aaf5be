//! End-to-end tests of enforcement through real Envoy: deny and allow lists for every identifier
//! type, the block response, monitor mode, unmatched requests, the mandatory token and detected
//! attacks. Also holds the small helpers the admin and attack-list tests share.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{eventually, jwt, Envoy, LogLine, Opts, Response};

/// Two workers, as the issue asks for every enforcement test.
pub(crate) fn two_workers() -> Opts {
    Opts {
        concurrency: 2,
        ..Opts::default()
    }
}

/// The access-log record of the request whose URI was `uri` (waits up to 10 s for it).
pub(crate) fn record_for(envoy: &Envoy, uri: &str) -> LogLine {
    let found = eventually(10, || {
        envoy
            .records(0)
            .into_iter()
            .find(|l| l.at("/attributes/HttpRequest.RequestURI") == uri)
    });
    found.unwrap_or_else(|| {
        panic!(
            "no access-log record for {uri}:\n{}",
            std::fs::read_to_string(&envoy.access_log).unwrap_or_default()
        )
    })
}

/// Downstream connections each worker of the main listener accepted so far, by worker.
pub(crate) fn worker_connections(envoy: &Envoy) -> Vec<u64> {
    let prefix = format!("listener.127.0.0.1_{}.worker_", envoy.port);
    let mut out: Vec<(u32, u64)> = envoy
        .stats()
        .into_iter()
        .filter_map(|(k, n)| {
            let worker = k
                .strip_prefix(&prefix)?
                .strip_suffix(".downstream_cx_total")?;
            Some((worker.parse().ok()?, n))
        })
        .collect();
    out.sort_unstable();
    out.into_iter().map(|(_, n)| n).collect()
}

/// Call `f(0)`, `f(1)`, … (each sends requests on fresh connections) until both workers of a
/// two-worker Envoy have accepted a connection since the first call, and at least `min` calls were
/// made. The kernel spreads connections over the workers, so a few calls are normally enough.
pub(crate) fn on_both_workers(envoy: &Envoy, min: usize, mut f: impl FnMut(usize)) {
    let before = worker_connections(envoy);
    assert_eq!(before.len(), 2, "expected two workers: {before:?}");
    for i in 0..60 {
        f(i);
        let now = worker_connections(envoy);
        if i + 1 >= min && now.iter().zip(&before).all(|(n, b)| n > b) {
            return;
        }
    }
    panic!(
        "60 connections did not reach both workers: {before:?} -> {:?}",
        worker_connections(envoy)
    );
}

/// Assert the default block response (ASE's 403 `Unauthorized`).
pub(crate) fn assert_blocked(r: &Response, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.body_text());
    assert_eq!(r.body_text(), "Unauthorized", "{what}");
}

/// A plugin configuration with one API `shop` at `/shop` (token, api key, cookie and JWT
/// username capture) and one API `hdr` at `/hdr` (username from `x-user`), both blocking.
fn shop(deny: Value, allow: Value, ase: Value) -> String {
    json!({
        "ase": ase,
        "apis": [
            {"name": "shop", "api_metadata": {
                "protocol": "http", "url": "/shop", "hostname": "*",
                "cookie": "SESSION", "oauth2_access_token": true, "is_token_mandatory": false,
                "apikey_header": "x-api-key", "enable_blocking": true,
                "jwt": {"location": "h:x-jwt", "username": "sub", "clientid": "client_id"}}},
            {"name": "hdr", "api_metadata": {
                "url": "/hdr", "hostname": "*", "username_header": "x-user",
                "enable_blocking": true}}
        ],
        "deny_list": deny,
        "allow_list": allow,
    })
    .to_string()
}

#[test]
fn each_identifier_type_blocks_its_denied_client_and_lets_the_others_through() {
    let deny = json!({
        "token": ["bad-token"], "api_key": ["stolen-key"], "cookie": ["evil-session"],
        "username": ["mallory", "eve"],
    });
    let envoy = Envoy::start_with(&shop(deny, json!({}), json!({})), two_workers());
    let bad_jwt = jwt(&json!({"sub": "mallory", "client_id": "app"}));
    let good_jwt = jwt(&json!({"sub": "alice", "client_id": "app"}));
    // (identifier type, path, header of the denied client, header of an allowed one)
    type Case<'a> = (&'a str, &'a str, (&'a str, &'a str), (&'a str, &'a str));
    let cases: [Case; 5] = [
        (
            "token",
            "/shop/token",
            ("authorization", "Bearer bad-token"),
            ("authorization", "Bearer good-token"),
        ),
        (
            "api_key",
            "/shop/key",
            ("x-api-key", "stolen-key"),
            ("x-api-key", "own-key"),
        ),
        (
            "cookie",
            "/shop/cookie",
            ("cookie", "theme=dark; SESSION=evil-session"),
            ("cookie", "SESSION=fine-session"),
        ),
        (
            "username",
            "/shop/jwt",
            ("x-jwt", &bad_jwt),
            ("x-jwt", &good_jwt),
        ),
        (
            "username",
            "/hdr/user",
            ("x-user", "eve"),
            ("x-user", "bob"),
        ),
    ];
    let mut allowed_paths = Vec::new();
    for (t, path, bad, good) in cases {
        let blocked_uri = format!("{path}?c=blocked");
        let r = envoy.get(&blocked_uri, &[bad]);
        assert_blocked(&r, &format!("{t} {bad:?}"));
        let rec = record_for(&envoy, &blocked_uri);
        assert_eq!(rec.status, 403);
        assert_eq!(rec.at("/ase/decision"), "block", "{t}");
        assert_eq!(rec.at("/ase/reason"), format!("deny_list:{t}"), "{t}");
        assert_eq!(rec.at("/ase/list_source"), "config", "{t}");
        assert_eq!(rec.at("/ase/would_block"), Value::Null, "{t}");

        let allowed_uri = format!("{path}?c=allowed");
        let r = envoy.get(&allowed_uri, &[good]);
        assert_eq!(r.status, 200, "{t} {good:?}: {}", r.body_text());
        assert_eq!(r.body_text(), "upstream ok");
        let rec = record_for(&envoy, &allowed_uri);
        assert_eq!(rec.at("/ase/decision"), "allow", "{t}");
        assert_eq!(rec.at("/ase/reason"), Value::Null, "{t}");
        assert_eq!(rec.at("/ase/list_source"), Value::Null, "{t}");
        allowed_paths.push(allowed_uri);
    }
    // The username really came from where the API says.
    assert_eq!(
        record_for(&envoy, "/shop/jwt?c=blocked").at("/ase/client/username"),
        "mallory"
    );
    assert_eq!(
        record_for(&envoy, "/hdr/user?c=blocked").at("/ase/client/username"),
        "eve"
    );
    // The upstream saw the allowed requests, and none of the blocked ones.
    let mut seen = envoy.upstream_paths();
    seen.sort();
    allowed_paths.sort();
    assert_eq!(seen, allowed_paths);
}

#[test]
fn a_denied_ip_blocks_every_matched_request_but_never_an_unmatched_one() {
    let envoy = Envoy::start_with(
        &shop(json!({"ip": ["127.0.0.1"]}), json!({}), json!({})),
        two_workers(),
    );
    for i in 0..4 {
        let uri = format!("/shop/items/{i}");
        assert_blocked(&envoy.get(&uri, &[]), &uri);
        let rec = record_for(&envoy, &uri);
        assert_eq!(rec.at("/ase/reason"), "deny_list:ip");
        assert_eq!(rec.at("/ase/list_source"), "config");
        assert_eq!(rec.at("/ase/client/ip"), "127.0.0.1");
    }
    assert_blocked(&envoy.get("/hdr/x", &[("x-user", "bob")]), "/hdr/x");
    // No API matches /other: the request passes, whatever the lists say.
    let r = envoy.get("/other/page", &[]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    let rec = record_for(&envoy, "/other/page");
    assert_eq!(rec.at("/ase/api"), Value::Null);
    assert_eq!(rec.at("/ase/decision"), "allow");
    assert_eq!(rec.at("/ase/reason"), Value::Null);
    assert_eq!(rec.at("/ase/would_block"), Value::Null);
    assert_eq!(envoy.upstream_paths(), vec!["/other/page".to_string()]);
}

#[test]
fn the_allow_list_beats_the_deny_list() {
    let deny = json!({"ip": ["127.0.0.1"], "username": ["eve"]});
    let allow = json!({"token": ["vip-token"], "username": ["eve"]});
    let envoy = Envoy::start_with(&shop(deny, allow, json!({})), two_workers());
    // Denied by IP, allowed by token.
    let r = envoy.get("/shop/vip", &[("authorization", "Bearer vip-token")]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    let rec = record_for(&envoy, "/shop/vip");
    assert_eq!(rec.at("/ase/decision"), "allow");
    assert_eq!(rec.at("/ase/reason"), "allow_list:token");
    assert_eq!(rec.at("/ase/would_block"), Value::Null);
    // The same value on both lists: allowed.
    let r = envoy.get("/hdr/eve", &[("x-user", "eve")]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(record_for(&envoy, "/hdr/eve").at("/ase/decision"), "allow");
    // Without an allowed identifier the deny list still blocks.
    assert_blocked(
        &envoy.get("/shop/plain", &[("authorization", "Bearer other")]),
        "no allowed identifier",
    );
    assert_eq!(
        envoy.upstream_paths(),
        vec!["/shop/vip".to_string(), "/hdr/eve".to_string()]
    );
}

#[test]
fn a_custom_block_response_is_sent_instead_of_the_default() {
    let ase = json!({"block_response": {
        "status": 429, "body": "{\"error\":\"go away\"}",
        "headers": {"Content-Type": "application/json", "x-blocked-by": "api-warden"}}});
    let envoy = Envoy::start_with(
        &shop(json!({"api_key": ["stolen-key"]}), json!({}), ase),
        two_workers(),
    );
    let r = envoy.get("/shop/a", &[("x-api-key", "stolen-key")]);
    assert_eq!(r.status, 429);
    assert_eq!(r.body_text(), r#"{"error":"go away"}"#);
    assert_eq!(r.header("x-blocked-by"), Some("api-warden"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let rec = record_for(&envoy, "/shop/a");
    assert_eq!(rec.status, 429);
    assert_eq!(rec.at("/ase/decision"), "block");
    assert_eq!(rec.at("/ase/reason"), "deny_list:api_key");
    assert!(envoy.upstream_paths().is_empty());
}

/// Monitor mode: the request passes, the record says what would have blocked it.
fn assert_monitored(envoy: &Envoy, uri: &str, headers: &[(&str, &str)], why: &str) {
    let r = envoy.get(uri, headers);
    assert_eq!(r.status, 200, "{uri}: {}", r.body_text());
    assert_eq!(r.body_text(), "upstream ok");
    let rec = record_for(envoy, uri);
    assert_eq!(rec.at("/ase/decision"), "allow", "{uri}");
    assert_eq!(rec.at("/ase/reason"), Value::Null, "{uri}");
    assert_eq!(rec.at("/ase/would_block"), why, "{uri}");
}

#[test]
fn api_blocking_off_is_monitor_mode() {
    let cfg = json!({
        "apis": [
            {"name": "watch", "api_metadata": {"url": "/watch", "hostname": "*",
                "username_header": "x-user", "enable_blocking": false}},
            {"name": "guard", "api_metadata": {"url": "/guard", "hostname": "*",
                "username_header": "x-user", "enable_blocking": true}}
        ],
        "deny_list": {"username": ["eve"]},
    });
    let envoy = Envoy::start_with(&cfg.to_string(), two_workers());
    assert_monitored(
        &envoy,
        "/watch/1",
        &[("x-user", "eve")],
        "deny_list:username",
    );
    assert_eq!(
        record_for(&envoy, "/watch/1").at("/ase/list_source"),
        "config"
    );
    // Nothing on a list: no would_block either.
    let r = envoy.get("/watch/2", &[("x-user", "bob")]);
    assert_eq!(r.status, 200);
    assert_eq!(
        record_for(&envoy, "/watch/2").at("/ase/would_block"),
        Value::Null
    );
    // Blocking is per API: the same client is blocked where the API enforces.
    assert_blocked(&envoy.get("/guard/1", &[("x-user", "eve")]), "/guard/1");
    assert_eq!(
        envoy.upstream_paths(),
        vec!["/watch/1".to_string(), "/watch/2".to_string()]
    );
}

#[test]
fn firewall_off_is_monitor_mode_everywhere() {
    let deny = json!({"ip": ["127.0.0.1"], "token": ["bad-token"]});
    let envoy = Envoy::start_with(
        &shop(deny, json!({}), json!({"enable_firewall": false})),
        two_workers(),
    );
    assert_monitored(&envoy, "/shop/1", &[], "deny_list:ip");
    // The first cause in identifier order is the one reported.
    assert_monitored(
        &envoy,
        "/shop/2",
        &[("authorization", "Bearer bad-token")],
        "deny_list:ip",
    );
    assert_monitored(&envoy, "/hdr/1", &[("x-user", "bob")], "deny_list:ip");
    assert_eq!(envoy.upstream_paths().len(), 3);
}

/// One API `/api` that requires an OAuth2 token, plus `/open` (blocking, no token needed).
fn mandatory(ase: Value) -> String {
    json!({
        "ase": ase,
        "apis": [
            {"name": "api", "api_metadata": {"url": "/api", "hostname": "*",
                "oauth2_access_token": true, "is_token_mandatory": true, "enable_blocking": true}},
            {"name": "open", "api_metadata": {"url": "/open", "hostname": "*",
                "enable_blocking": true}}
        ]
    })
    .to_string()
}

#[test]
fn a_missing_mandatory_token_blocks_and_deny_lists_the_client_ip() {
    let envoy = Envoy::start_with(&mandatory(json!({})), two_workers());
    // Before any detection, a token is enough.
    let r = envoy.get("/api/before", &[("authorization", "Bearer t0")]);
    assert_eq!(r.status, 200, "{}", r.body_text());

    assert_blocked(&envoy.get("/api/no-token", &[]), "no token");
    let rec = record_for(&envoy, "/api/no-token");
    assert_eq!(rec.at("/ase/decision"), "block");
    assert_eq!(rec.at("/ase/reason"), "token_missing");

    // Every later request from that IP is blocked, on every worker and every blocking API.
    on_both_workers(&envoy, 4, |i| {
        let uri = format!("/api/later/{i}");
        assert_blocked(&envoy.get(&uri, &[("authorization", "Bearer t1")]), &uri);
        let rec = record_for(&envoy, &uri);
        assert_eq!(rec.at("/ase/reason"), "deny_list:ip", "{uri}");
        assert_eq!(rec.at("/ase/list_source"), "detected", "{uri}");
    });
    assert_blocked(&envoy.get("/open/x", &[]), "/open/x");
    assert_eq!(
        record_for(&envoy, "/open/x").at("/ase/list_source"),
        "detected"
    );
    assert_eq!(envoy.upstream_paths(), vec!["/api/before".to_string()]);
    // Request counters are published on the next tick (at most a second later).
    eventually(5, || {
        (envoy.stat("wasmcustom.api_warden.detected_attacks") >= 1).then_some(())
    })
    .unwrap_or_else(|| panic!("timed out after 5 s: detected_attacks counted"));
}

#[test]
fn with_detection_off_a_missing_token_is_blocked_but_the_ip_is_not_deny_listed() {
    let envoy = Envoy::start_with(
        &mandatory(json!({"enable_ase_detected_attack": false})),
        two_workers(),
    );
    for i in 0..3 {
        let uri = format!("/api/no-token/{i}");
        assert_blocked(&envoy.get(&uri, &[]), &uri);
        assert_eq!(record_for(&envoy, &uri).at("/ase/reason"), "token_missing");
    }
    for i in 0..4 {
        let uri = format!("/api/token/{i}");
        let r = envoy.get(&uri, &[("authorization", "Bearer t")]);
        assert_eq!(r.status, 200, "{uri}: {}", r.body_text());
        assert_eq!(record_for(&envoy, &uri).at("/ase/reason"), Value::Null);
    }
    assert_eq!(envoy.get("/open/x", &[]).status, 200);
    assert_eq!(envoy.upstream_paths().len(), 5);
}

#[test]
fn detected_entries_expire_after_detected_attack_ttl_s() {
    let envoy = Envoy::start_with(
        &mandatory(json!({"detected_attack_ttl_s": 1})),
        two_workers(),
    );
    assert_blocked(&envoy.get("/api/no-token", &[]), "no token");
    let started = Instant::now();
    // The entry lives at least one second: this request comes well inside it.
    assert_blocked(
        &envoy.get("/api/right-after", &[("authorization", "Bearer t")]),
        "right after detection",
    );
    assert_eq!(
        record_for(&envoy, "/api/right-after").at("/ase/list_source"),
        "detected"
    );
    let mut n = 0;
    let ok_uri = eventually(5, || {
        n += 1;
        let uri = format!("/api/retry/{n}");
        let r = envoy.get(&uri, &[("authorization", "Bearer t")]);
        (r.status == 200).then_some(uri)
    })
    .unwrap_or_else(|| panic!("timed out after 5 s: the detected entry to expire"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let rec = record_for(&envoy, &ok_uri);
    assert_eq!(rec.at("/ase/decision"), "allow");
    assert_eq!(rec.at("/ase/reason"), Value::Null);
}

#[test]
fn a_missing_token_in_monitor_mode_deny_lists_nobody() {
    // `/watch` only monitors; `/open` enforces. A client caught by `/watch` must not be blocked
    // on `/open` because of it.
    let cfg = json!({
        "apis": [
            {"name": "watch", "api_metadata": {"url": "/watch", "hostname": "*",
                "oauth2_access_token": true, "is_token_mandatory": true,
                "enable_blocking": false}},
            {"name": "open", "api_metadata": {"url": "/open", "hostname": "*",
                "enable_blocking": true}}
        ]
    });
    let envoy = Envoy::start_with(&cfg.to_string(), two_workers());
    assert_monitored(&envoy, "/watch/no-token", &[], "token_missing");
    for i in 0..4 {
        let uri = format!("/open/{i}");
        let r = envoy.get(&uri, &[]);
        assert_eq!(r.status, 200, "{uri}: {}", r.body_text());
        assert_eq!(record_for(&envoy, &uri).at("/ase/would_block"), Value::Null);
    }
    let r = envoy.get("/watch/token", &[("authorization", "Bearer t")]);
    assert_eq!(r.status, 200);
    assert_eq!(
        record_for(&envoy, "/watch/token").at("/ase/would_block"),
        Value::Null
    );
    assert_eq!(envoy.stat("wasmcustom.api_warden.detected_attacks"), 0);
}
