//! End-to-end tests of ASE's inline protections through real Envoy with 2 workers: decoy APIs
//! (never forwarded, the attacker deny-listed), pattern enforcement (every violation, the https
//! redirect), flow control (counted across workers, 429 with Retry-After, reset, a reload that
//! changes the threshold).

use std::time::Duration;

use serde_json::{json, Value};

use crate::enforcement::{assert_blocked, on_both_workers, record_for, two_workers};
use crate::harness::{eventually, Envoy};

const KEY: &str = "0123456789abcdef-admin";

/// Clients are told apart by `x-forwarded-for` (`enable_xff`, leftmost entry as ASE does).
fn from(ip: &str) -> (&'static str, String) {
    ("x-forwarded-for", ip.to_string())
}

fn get(envoy: &Envoy, path: &str, ip: &str, extra: &[(&str, &str)]) -> crate::harness::Response {
    let (k, v) = from(ip);
    let mut h: Vec<(&str, &str)> = vec![(k, v.as_str())];
    h.extend_from_slice(extra);
    envoy.get(path, &h)
}

fn plugin(ase: Value) -> String {
    let mut ase_all = json!({"enable_xff": true, "detected_attack_ttl_s": 3});
    if let (Some(a), Some(extra)) = (ase_all.as_object_mut(), ase.as_object()) {
        a.extend(extra.clone());
    }
    json!({
        "ase": ase_all,
        "apis": [
            {"name": "shop", "api_metadata": {"url": "/shop", "hostname": "*", "cookie": "session",
                "oauth2_access_token": true, "enable_blocking": true,
                "decoy_config": {"decoy_enabled": true, "response_code": 200, "response_def": "OK",
                    "response_message": "{\"users\": []}", "decoy_subpaths": ["/shop/admin"]},
                "api_pattern_enforcement": {"methods_allowed": ["GET", "POST"],
                    "content_type_allowed": "application/json", "protocol_allowed": "",
                    "error_code": "", "error_message_body": ""}}},
            {"name": "trap", "api_metadata": {"url": "/trap", "hostname": "*", "enable_blocking": true,
                "decoy_config": {"decoy_enabled": true, "response_code": "404",
                    "response_message": "not here", "decoy_subpaths": []}}},
            {"name": "secure", "api_metadata": {"url": "/secure", "hostname": "*", "enable_blocking": true,
                "api_pattern_enforcement": {"protocol_allowed": "https", "http_redirect":
                    {"response_code": 301, "response_def": "Moved Permanently",
                     "https_url": "https://secure.example"}}}},
            {"name": "ws", "api_metadata": {"url": "/ws", "hostname": "*", "enable_blocking": true,
                "api_pattern_enforcement": {"protocol_allowed": "wss", "error_code": 403,
                    "error_message_body": "TLS required"}}},
            {"name": "limited", "api_metadata": {"url": "/limited", "hostname": "*", "enable_blocking": true,
                "flow_control": {"client_spike_threshold": "4/minute", "server_spike_threshold": "100/second"}}},
            {"name": "other", "api_metadata": {"url": "/other", "hostname": "*", "enable_blocking": true,
                "flow_control": {"client_spike_threshold": "4/minute"}}},
            {"name": "watch", "api_metadata": {"url": "/watch", "hostname": "*", "enable_blocking": false,
                "decoy_config": {"decoy_enabled": true, "decoy_subpaths": ["/admin"]},
                "flow_control": {"client_spike_threshold": "1/minute"}}}
        ],
        "allow_list": {"ip": ["192.0.2.10"]},
        "admin": {"path": "/_api_warden", "key": KEY}
    })
    .to_string()
}

fn start() -> Envoy {
    Envoy::start_with(&plugin(json!({})), two_workers())
}

fn admin_deny_list(envoy: &Envoy) -> Value {
    let r = envoy.get("/_api_warden/deny_list", &[("x-api-warden-admin-key", KEY)]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    serde_json::from_slice(&r.body).expect("admin JSON")
}

fn source_of(list: &Value, t: &str, value: &str) -> Option<String> {
    list[t]
        .as_array()?
        .iter()
        .find(|e| e["value"] == value)
        .map(|e| e["source"].as_str().unwrap_or_default().to_string())
}

#[test]
fn decoys_are_never_forwarded_and_deny_list_the_attacker_on_every_worker() {
    let envoy = start();
    let attacker = "198.51.100.7";
    let r = get(&envoy, "/shop/admin/users", attacker, &[]);
    assert_eq!((r.status, r.body_text().as_str()), (200, "{\"users\": []}"));
    let rec = record_for(&envoy, "/shop/admin/users");
    assert_eq!(rec.at("/ase/decoy"), json!(true));
    assert_eq!(rec.at("/ase/reason"), json!("decoy"));
    assert_eq!(rec.at("/ase/decoy_response_def"), json!("OK"));
    // The next real request, on either worker and to any API that enforces, is blocked.
    on_both_workers(&envoy, 4, |i| {
        let path = if i % 2 == 0 {
            "/shop/items"
        } else {
            "/other/x"
        };
        assert_blocked(&get(&envoy, path, attacker, &[]), path);
    });
    let rec = record_for(&envoy, "/shop/items");
    assert_eq!(rec.at("/ase/reason"), json!("deny_list:ip"));
    assert_eq!(rec.at("/ase/list_source"), json!("decoy"));
    // Its decoy requests keep getting the decoy response.
    let r = get(&envoy, "/shop/admin", attacker, &[]);
    assert_eq!(r.status, 200);
    // Out-of-context decoy: the whole API, with its own status and body.
    let r = get(&envoy, "/trap/anything?x=1", "198.51.100.8", &[]);
    assert_eq!((r.status, r.body_text().as_str()), (404, "not here"));
    // Nothing reached the upstream but nothing: no decoy request, no blocked request.
    assert!(
        envoy.upstream_paths().is_empty(),
        "{:?}",
        envoy.upstream_paths()
    );
    // The admin API shows the source and can delete the entry.
    let list = admin_deny_list(&envoy);
    assert_eq!(source_of(&list, "ip", attacker).as_deref(), Some("decoy"));
    let r = envoy.request(
        "DELETE",
        &format!("/_api_warden/deny_list?type=ip&value={attacker}"),
        &[("x-api-warden-admin-key", KEY)],
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(get(&envoy, "/shop/items", attacker, &[]).status, 200);
    assert!(
        eventually(5, || envoy.stat("wasmcustom.api_warden.decoy.hits") >= 3),
        "wasmcustom.api_warden.decoy.hits"
    );
}

#[test]
fn decoy_entries_expire_and_spare_allow_listed_and_monitored_clients() {
    let envoy = start();
    // Allow-listed: decoy response, never deny-listed.
    assert_eq!(get(&envoy, "/shop/admin", "192.0.2.10", &[]).status, 200);
    assert_eq!(get(&envoy, "/shop/items", "192.0.2.10", &[]).status, 200);
    // Monitor mode (watch has enable_blocking false): decoy response, would_block, no entry.
    assert_eq!(
        get(&envoy, "/watch/admin", "198.51.100.20", &[]).status,
        200
    );
    assert_eq!(
        record_for(&envoy, "/watch/admin").at("/ase/would_block"),
        json!("decoy")
    );
    assert_eq!(get(&envoy, "/shop/items", "198.51.100.20", &[]).status, 200);
    // Enforced, then the entry expires after detected_attack_ttl_s (3 s).
    assert_eq!(get(&envoy, "/trap/x", "198.51.100.21", &[]).status, 404);
    assert_blocked(
        &get(&envoy, "/shop/items", "198.51.100.21", &[]),
        "decoy-listed",
    );
    let freed = eventually(8, || {
        get(&envoy, "/shop/items", "198.51.100.21", &[]).status == 200
    });
    assert!(freed, "the decoy entry never expired");
}

#[test]
fn every_pattern_violation_and_the_redirect() {
    let envoy = start();
    // Method: ASE's sample error reply; the token (sent) goes on the deny list.
    let r = get(&envoy, "/shop/items", "198.51.100.30", &[]);
    assert_eq!(r.status, 200);
    let r = envoy.request(
        "DELETE",
        "/shop/items/1",
        &[
            ("x-forwarded-for", "198.51.100.30"),
            ("authorization", "Bearer tok-bad"),
        ],
    );
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (401, "401 Unauthorized")
    );
    assert_eq!(
        record_for(&envoy, "/shop/items/1").at("/ase/reason"),
        json!("pattern:method")
    );
    let r = get(
        &envoy,
        "/shop/other",
        "198.51.100.99",
        &[("authorization", "Bearer tok-bad")],
    );
    assert_blocked(&r, "the violating token, from another client");
    assert_eq!(
        source_of(&admin_deny_list(&envoy), "token", "tok-bad").as_deref(),
        Some("pattern")
    );
    // Content type: a body of the wrong media type; the cookie goes on the list.
    let r = crate::harness::request(
        envoy.port,
        "POST",
        "/shop/orders",
        &[
            ("x-forwarded-for", "198.51.100.31"),
            ("content-type", "text/xml"),
            ("cookie", "session=c-bad"),
        ],
        Some(b"<order/>"),
    )
    .expect("POST");
    assert_eq!(r.status, 401, "{}", r.body_text());
    assert_eq!(
        record_for(&envoy, "/shop/orders").at("/ase/reason"),
        json!("pattern:content_type")
    );
    let ok = crate::harness::request(
        envoy.port,
        "POST",
        "/shop/orders?ok",
        &[
            ("x-forwarded-for", "198.51.100.32"),
            ("content-type", "application/json; charset=utf-8"),
        ],
        Some(b"{}"),
    )
    .expect("POST");
    assert_eq!(ok.status, 200, "{}", ok.body_text());
    assert_eq!(
        source_of(&admin_deny_list(&envoy), "cookie", "c-bad").as_deref(),
        Some("pattern")
    );
    // Protocol: wss required, plain HTTP → the configured error; the IP goes on the list.
    let r = get(&envoy, "/ws/chat", "198.51.100.33", &[]);
    assert_eq!((r.status, r.body_text().as_str()), (403, "TLS required"));
    assert_eq!(
        record_for(&envoy, "/ws/chat").at("/ase/reason"),
        json!("pattern:protocol")
    );
    assert_blocked(
        &get(&envoy, "/other/x", "198.51.100.33", &[]),
        "violating IP",
    );
    // https required with a redirect: 301 to https_url plus path and query, nobody deny-listed.
    let r = get(&envoy, "/secure/a?x=1", "198.51.100.34", &[]);
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some("https://secure.example/secure/a?x=1")
    );
    let rec = record_for(&envoy, "/secure/a?x=1");
    assert_eq!(rec.at("/ase/decision"), json!("redirect"));
    assert_eq!(get(&envoy, "/other/x", "198.51.100.34", &[]).status, 200);
    assert!(
        eventually(5, || envoy.stat("wasmcustom.api_warden.redirects") >= 1),
        "wasmcustom.api_warden.redirects"
    );
    assert!(
        eventually(5, || envoy
            .stat("wasmcustom.api_warden.blocked.pattern.method")
            >= 1),
        "wasmcustom.api_warden.blocked.pattern.method"
    );
    let paths = envoy.upstream_paths();
    assert!(
        paths.iter().all(|p| !p.starts_with("/shop/items/1")
            && !p.starts_with("/ws")
            && !p.starts_with("/secure")),
        "{paths:?}"
    );
}

#[test]
fn flow_control_counts_across_workers_per_client_and_api() {
    let envoy = start();
    let client = "198.51.100.40";
    // Wait for the start of a fresh minute window if it is about to end.
    let sec = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if sec > 50 {
        std::thread::sleep(Duration::from_secs(61 - sec));
    }
    // 4 per minute in all, whichever worker serves them.
    let mut statuses = Vec::new();
    on_both_workers(&envoy, 6, |_| {
        statuses.push(get(&envoy, "/limited/x", client, &[]).status);
    });
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 4, "{statuses:?}");
    let r = get(&envoy, "/limited/x", client, &[]);
    assert_eq!(r.status, 429);
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        record_for(&envoy, "/limited/x").at("/attributes/HttpRequest.RequestURI"),
        json!("/limited/x")
    );
    // Another client and another API are unaffected; an allow-listed client is never limited.
    assert_eq!(get(&envoy, "/limited/x", "198.51.100.41", &[]).status, 200);
    assert_eq!(get(&envoy, "/other/x", client, &[]).status, 200);
    for _ in 0..6 {
        assert_eq!(get(&envoy, "/limited/x", "192.0.2.10", &[]).status, 200);
    }
    // Monitor mode passes with would_block.
    assert_eq!(get(&envoy, "/watch/a", client, &[]).status, 200);
    assert_eq!(get(&envoy, "/watch/b", client, &[]).status, 200);
    assert_eq!(
        record_for(&envoy, "/watch/b").at("/ase/would_block"),
        json!("flow_control")
    );
    // Not deny-listed, and the next window lets the client through again.
    let reset = eventually(retry + 5, || {
        get(&envoy, "/limited/y", client, &[]).status == 200
    });
    assert!(reset, "the next window never started");
    assert!(
        eventually(5, || envoy
            .stat("wasmcustom.api_warden.blocked.flow_control")
            >= 1),
        "wasmcustom.api_warden.blocked.flow_control"
    );
    assert!(envoy
        .log()
        .contains("server_spike_threshold → the cluster's circuit_breakers max_requests"));
}

#[test]
fn a_reload_that_changes_the_threshold_applies_to_the_next_request() {
    let collector = crate::export_faults::Collector::start();
    let shop = |threshold: &str| {
        json!({"apis": [{"name": "shop", "api_metadata": {"url": "/shop", "hostname": "*",
            "username_header": "x-user", "enable_blocking": true,
            "flow_control": {"client_spike_threshold": threshold}}}]})
    };
    // An hour window, so the test never straddles two windows.
    let (envoy, mut lds, port) = crate::faults::start_dynamic(&collector, &shop("3/hour"), 1, 2);
    let status = |user: &str| {
        crate::harness::request(port, "GET", "/shop/items", &[("x-user", user)], None)
            .map(|r| r.status)
            .unwrap_or(0)
    };
    // start_dynamic's readiness check spent some of the budget: use it up.
    let limited = eventually(10, || status("carol") == 429);
    assert!(limited, "never limited at 3/hour");
    lds.push(&shop("1000/hour"));
    let raised = eventually(10, || status("carol") == 200);
    assert!(raised, "the raised threshold never applied");
    lds.push(&shop("2/hour"));
    let lowered = eventually(10, || status("carol") == 429);
    assert!(lowered, "the lowered threshold never applied");
    drop(envoy);
}
