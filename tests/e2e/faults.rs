//! End-to-end fault tests: an xDS-style reload (file-based LDS) to a bad configuration and back
//! while requests flow; records buffered when a reload removes a plugin; what clients see when the
//! VM cannot start, per `failure_policy`; a running VM that traps (test-only `fault-injection`
//! build), per `failure_policy`. A slow collector and export throughput are in `export_faults.rs`,
//! attack-list faults in `attack_list.rs`, collector 500s and a collector that is gone in
//! `records.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::export_faults::Collector;
use crate::harness::{self, eventually, yaml, Envoy, Launch, TestServer};

const KEY: &str = "fault-test-admin-key-0123456789";

/// The api-warden filter running `code` under `policy` (Envoy's default when `None`).
fn wasm_filter(code: &str, policy: Option<&str>, plugin: &str) -> String {
    yaml::wasm_filter(code, policy.unwrap_or("UNSPECIFIED"), plugin)
}

/// A listener (YAML list item) on `port` whose only route is a `direct_response` 200 "ok", behind
/// `filters`.
fn listener(port: u16, filters: &str) -> String {
    yaml::Listener {
        name: "main",
        port,
        additional_addresses: "",
        codec: "AUTO",
        access_log: "",
        route: &yaml::direct_response("ok"),
        http_filters: filters,
    }
    .render()
}

/// Launch `bootstrap` (admin on `admin`) from `dir`; panics with Envoy's log when it does not start.
fn spawn(dir: &Path, bootstrap: &str, admin: u16, args: &[&str]) -> Envoy {
    let launched = Envoy::launch(|| Launch {
        dir: dir.to_path_buf(),
        yaml: bootstrap.to_string(),
        admin,
        port: 0,
        upstream: 0,
        args: args.iter().map(|a| a.to_string()).collect(),
    });
    launched.unwrap_or_else(|(msg, log)| panic!("envoy did not start: {msg}\n{log}"))
}

fn local_code() -> String {
    yaml::local_code(&harness::wasm_path())
}

/// One API (`/shop`, username from `x-user`, blocking on), a username deny list, the admin API.
fn plugin(deny_user: &str) -> Value {
    json!({
        "apis": [{"name": "shop", "api_metadata": {
            "url": "/shop", "hostname": "*", "username_header": "x-user", "enable_blocking": true}}],
        "deny_list": {"username": [deny_user]},
        "admin": {"path": "/_api_warden", "key": KEY},
    })
}

/// Adds export to the `collector` cluster, a batch every second.
fn with_export(mut plugin: Value) -> Value {
    plugin["analytics"] = json!({"cluster": "collector", "path": "/records",
                                 "batch_size": 1000, "flush_interval_ms": 1000});
    plugin
}

/// Deny-list `user` through the admin API.
fn deny_username(port: u16, user: &str) -> harness::Response {
    harness::request(
        port,
        "POST",
        &format!("/_api_warden/deny_list?type=username&value={user}"),
        &[("x-api-warden-admin-key", KEY)],
        None,
    )
    .expect("admin POST")
}

fn user_status(port: u16, user: &str) -> std::io::Result<u16> {
    harness::request(port, "GET", "/shop/items", &[("x-user", user)], None).map(|r| r.status)
}

/// Statuses of `n` requests per user, as `user → [status…]`.
fn statuses(port: u16, users: &[&str], n: usize) -> HashMap<String, Vec<u16>> {
    users
        .iter()
        .map(|u| {
            let s = (0..n).map(|_| user_status(port, u).unwrap_or(0)).collect();
            (u.to_string(), s)
        })
        .collect()
}

/// Assert every one of 6 requests per user gets the expected status.
fn assert_users(port: u16, expect: &[(&str, u16)], when: &str) {
    let users: Vec<&str> = expect.iter().map(|(u, _)| *u).collect();
    let got = statuses(port, &users, 6);
    for (u, want) in expect {
        assert!(
            got[*u].iter().all(|s| s == want),
            "{when}: user {u} expected {want} every time, got {:?}",
            got[*u]
        );
    }
}

/// The dynamic listener file: written to a temporary file, then renamed over `lds.yaml` (Envoy
/// watches the directory for moves, so it never reads a half-written file).
pub(crate) struct Lds {
    dir: PathBuf,
    port: u16,
    version: usize,
}

impl Lds {
    pub(crate) fn push(&mut self, plugin: &Value) {
        self.version += 1;
        let filters = wasm_filter(&local_code(), Some("FAIL_CLOSED"), &plugin.to_string());
        let listener = listener(self.port, &filters);
        let text = format!(
            "version_info: \"{}\"\nresources:\n- \"@type\": type.googleapis.com/envoy.config.listener.v3.Listener\n  {}",
            self.version,
            listener.strip_prefix("- ").expect("a list item")
        );
        let tmp = self.dir.join(format!(".lds-{}.tmp", self.version));
        std::fs::write(&tmp, text).expect("write lds");
        std::fs::rename(&tmp, self.dir.join("lds.yaml")).expect("rename lds");
    }
}

/// Background traffic during reloads: a user on no list must get 200 every time, with no
/// connection error; returns the request ids it sent and the failures.
struct Traffic {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<(Vec<String>, Vec<String>)>>,
}

impl Traffic {
    fn start(port: u16) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let (mut sent, mut bad) = (Vec::new(), Vec::new());
            while !s.load(Ordering::SeqCst) {
                let id = format!("bg-{}", sent.len());
                let r = harness::request(
                    port,
                    "GET",
                    "/shop/items",
                    &[("x-user", "zoe"), ("x-request-id", &id)],
                    None,
                );
                sent.push(id);
                match r.map(|r| r.status) {
                    Ok(200) => {}
                    Ok(other) => bad.push(format!("status {other}")),
                    Err(e) => bad.push(format!("error {e}")),
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (sent, bad)
        });
        Traffic {
            stop,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> (Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .expect("running")
            .join()
            .expect("traffic thread")
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// An Envoy whose only listener comes from `lds.yaml` (first `plugin`), exporting to `collector`.
pub(crate) fn start_dynamic(
    collector: &Collector,
    plugin: &Value,
    drain_time_s: u32,
    concurrency: u32,
) -> (Envoy, Lds, u16) {
    let dir = harness::scratch("faults-lds");
    let (port, admin) = (harness::free_port(), harness::free_port());
    let mut lds = Lds {
        dir: dir.clone(),
        port,
        version: 0,
    };
    lds.push(plugin);
    let dynamic = format!(
        "node: {{ id: faults, cluster: faults }}\ndynamic_resources:\n  lds_config:\n    resource_api_version: V3\n    path_config_source:\n      path: {}\n      watched_directory: {{ path: {} }}",
        dir.join("lds.yaml").display(),
        dir.display()
    );
    let bootstrap = yaml::bootstrap(admin, &dynamic, "", &collector.server.cluster("collector"));
    let (drain, workers) = (drain_time_s.to_string(), concurrency.to_string());
    let envoy = spawn(
        &dir,
        &bootstrap,
        admin,
        &["--concurrency", &workers, "--drain-time-s", &drain],
    );
    assert!(
        eventually(10, || user_status(port, "bob").is_ok_and(|s| s == 200)),
        "listener from lds.yaml never served"
    );
    (envoy, lds, port)
}

#[test]
fn lds_reload_to_a_bad_config_keeps_the_last_good_state_and_the_next_good_one_applies() {
    let collector = Collector::start();
    let (mut envoy, mut lds, port) = start_dynamic(&collector, &with_export(plugin("amy")), 600, 2);

    // Configuration A: amy is denied.
    assert_users(
        port,
        &[("amy", 403), ("bob", 200), ("cat", 200)],
        "config A",
    );
    // An admin deny entry, added before any reload.
    let added = deny_username(port, "cat");
    assert!(
        added.status == 200 || added.status == 201,
        "admin POST: {} {}",
        added.status,
        added.body_text()
    );
    assert_users(port, &[("amy", 403), ("cat", 403)], "config A + admin");
    let loads_a = envoy.stat("wasmcustom.api_warden.config.loads");
    assert!(loads_a >= 2, "config.loads after A: {loads_a}");
    assert_eq!(envoy.stat("listener_manager.lds.update_rejected"), 0);

    let traffic = Traffic::start(port);

    // A bad configuration: Envoy refuses the update; A keeps working, the admin entry too.
    let mut bad = with_export(plugin("bob"));
    bad["apis"][0]["api_metadata"]["jwt"] = json!({});
    lds.push(&bad);
    assert!(
        eventually(10, || envoy.stat("listener_manager.lds.update_rejected")
            >= 1),
        "bad update not rejected; stats:\n{:?}",
        envoy
            .stats()
            .into_iter()
            .filter(|(k, _)| k.contains("lds"))
            .collect::<Vec<_>>()
    );
    assert!(
        eventually(5, || {
            let log = envoy.log();
            log.contains("api-warden: invalid configuration: api \"shop\": jwt")
                && log.contains("configuration rejected")
                && log.contains("listener 'main' config rejected")
        }),
        "no api-warden error line or no Envoy rejection line for the bad configuration"
    );
    assert!(envoy.alive(), "envoy exited on a bad xDS update");
    assert_users(
        port,
        &[("amy", 403), ("bob", 200), ("cat", 403)],
        "after the rejected update",
    );
    // The rejected configuration loaded nowhere (the counter is flushed every second).
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        envoy.stat("wasmcustom.api_warden.config.loads"),
        loads_a,
        "a rejected configuration counted as loaded"
    );

    // Configuration B: bob is denied, amy no longer; the admin entry survives.
    lds.push(&with_export(plugin("bob")));
    assert!(
        eventually(10, || envoy.stat("listener_manager.lds.update_success")
            >= 2),
        "good update not accepted"
    );
    // Both workers serve B once amy passes a few times in a row.
    let mut in_a_row = 0;
    assert!(
        eventually(10, || {
            in_a_row = if user_status(port, "amy").is_ok_and(|s| s == 200) {
                in_a_row + 1
            } else {
                0
            };
            in_a_row >= 6
        }),
        "config B never applied"
    );
    assert_users(
        port,
        &[("amy", 200), ("bob", 403), ("cat", 403), ("dan", 200)],
        "config B",
    );
    assert!(
        eventually(5, || envoy.stat("wasmcustom.api_warden.config.loads")
            > loads_a),
        "config.loads did not move on the good reload"
    );
    assert_eq!(envoy.stat("listener_manager.lds.update_rejected"), 1);

    let (sent, bad_responses) = traffic.finish();
    assert!(
        sent.len() >= 20,
        "background traffic sent only {} requests",
        sent.len()
    );
    assert!(
        bad_responses.is_empty(),
        "{} of {} background requests failed during the reloads: {:?}",
        bad_responses.len(),
        sent.len(),
        &bad_responses[..bad_responses.len().min(10)]
    );
    // Every request's record was exported, also those buffered by the plugin a reload replaced
    // (it lives on while its listener drains).
    assert!(
        eventually(10, || collector.has_all(&sent)),
        "records never exported: {:?}",
        collector.missing(&sent)
    );
    assert_eq!(
        envoy.stat("wasmcustom.api_warden.export.records_dropped"),
        0
    );
    assert!(envoy.alive());
}

/// A static listener whose api-warden code comes from `code_server` (`code.remote`, as Istio
/// fetches it), with `policy` and the plugin configuration `plugin`.
fn remote_code_envoy(
    code_server: &TestServer,
    policy: Option<&str>,
    plugin: &Value,
) -> (Envoy, u16) {
    let bytes = std::fs::read(harness::wasm_path()).expect("read wasm");
    let sha = sha256_hex(&bytes);
    let dir = harness::scratch("faults-remote");
    let (port, admin) = (harness::free_port(), harness::free_port());
    let code = format!(
        "{{ remote: {{ http_uri: {{ uri: \"http://127.0.0.1:{}/api_warden.wasm\", cluster: code, timeout: 5s }}, sha256: {sha}, retry_policy: {{ num_retries: 0 }} }} }}",
        code_server.port
    );
    let filters = wasm_filter(&code, policy, &plugin.to_string());
    let bootstrap = yaml::bootstrap(
        admin,
        "",
        &listener(port, &filters),
        &code_server.cluster("code"),
    );
    let envoy = spawn(&dir, &bootstrap, admin, &["--concurrency", "1"]);
    assert!(
        eventually(10, || user_status(port, "bob").is_ok()),
        "listener never served"
    );
    (envoy, port)
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serves the built api_warden.wasm, or answers 500 when `serve` is false (code that cannot load).
fn code_server(serve: bool) -> TestServer {
    let bytes = std::fs::read(harness::wasm_path()).expect("read wasm");
    TestServer::start(move |_| {
        if serve {
            (200, bytes.clone())
        } else {
            (500, b"{\"error\":\"down\"}".to_vec())
        }
    })
}

/// The configuration of [`plugin`] made invalid (`jwt: {}`), still listing amy.
fn bad_plugin() -> Value {
    let mut p = plugin("amy");
    p["apis"][0]["api_metadata"]["jwt"] = json!({});
    p
}

#[test]
fn vm_that_cannot_start_fails_closed_with_503_unless_fail_open() {
    // Control: the same setup with the code served enforces.
    let served = code_server(true);
    let (_ok, port) = remote_code_envoy(&served, Some("FAIL_CLOSED"), &plugin("amy"));
    assert_users(port, &[("amy", 403), ("bob", 200)], "code served");

    // The code cannot be fetched: FAIL_CLOSED (and Envoy 1.40's default) answers 503 to everyone.
    let down = code_server(false);
    for policy in [Some("FAIL_CLOSED"), None] {
        let (mut envoy, port) = remote_code_envoy(&down, policy, &plugin("amy"));
        let r = harness::request(port, "GET", "/shop/items", &[("x-user", "bob")], None)
            .expect("request");
        assert_eq!(
            r.status,
            503,
            "{policy:?}: {} {:?}",
            r.body_text(),
            r.headers
        );
        assert!(r.body.is_empty(), "503 body: {}", r.body_text());
        assert_users(
            port,
            &[("amy", 503), ("bob", 503)],
            &format!("{policy:?}, no code"),
        );
        assert!(envoy.stat("wasm.remote_load_fetch_failures") >= 1);
        assert!(envoy.alive());
    }

    // FAIL_OPEN: the filter is skipped, so the denied user passes and nothing is recorded.
    let (mut envoy, port) = remote_code_envoy(&down, Some("FAIL_OPEN"), &plugin("amy"));
    assert_users(port, &[("amy", 200), ("bob", 200)], "FAIL_OPEN, no code");
    assert_eq!(envoy.stat("wasmcustom.api_warden.requests.total"), 0);
    assert!(envoy.alive());
}

#[test]
fn bad_config_arriving_after_start_fails_closed_with_503_unless_fail_open() {
    // With remote code the plugin is configured after Envoy started, so a bad configuration does
    // not stop Envoy: the VM is marked failed and `failure_policy` decides (FAIL_RELOAD cannot
    // reload a configuration that never loaded: it fails closed too).
    let served = code_server(true);
    for policy in ["FAIL_CLOSED", "FAIL_RELOAD"] {
        let (mut closed, port) = remote_code_envoy(&served, Some(policy), &bad_plugin());
        assert!(
            eventually(5, || closed
                .log()
                .contains("api-warden: invalid configuration: api \"shop\": jwt")),
            "{policy}: no api-warden error line"
        );
        assert_users(
            port,
            &[("amy", 503), ("bob", 503)],
            &format!("{policy}, bad config"),
        );
        assert!(closed.alive());
    }

    let (mut open, port) = remote_code_envoy(&served, Some("FAIL_OPEN"), &bad_plugin());
    assert!(eventually(5, || open
        .log()
        .contains("api-warden: invalid configuration")));
    assert_users(port, &[("amy", 200), ("bob", 200)], "FAIL_OPEN, bad config");
    assert!(open.alive());
}

#[test]
fn records_buffered_by_a_plugin_that_a_reload_removes_are_exported() {
    // The replaced listener drains for 1 s, shorter than the 5 s flush interval: its plugin's
    // root context goes away with records still buffered.
    let collector = Collector::start();
    let mut slow_flush = with_export(plugin("amy"));
    slow_flush["analytics"]["flush_interval_ms"] = json!(5000);
    let (mut envoy, mut lds, port) = start_dynamic(&collector, &slow_flush, 1, 1);
    let send = |id: &str| {
        let r = harness::request(
            port,
            "GET",
            "/shop/items",
            &[("x-user", "bob"), ("x-request-id", id)],
            None,
        )
        .expect("request");
        assert_eq!(r.status, 200);
        id.to_string()
    };
    // The first batch leaves at once; the next one only 5 s after it.
    let first = vec![send("warm-up")];
    assert!(eventually(5, || collector.has_all(&first)), "first batch");
    let ids: Vec<String> = (0..10)
        .map(|i| send(&format!("before-reload-{i}")))
        .collect();
    lds.push(&with_export(plugin("bob")));
    assert!(
        eventually(10, || user_status(port, "bob").is_ok_and(|s| s == 403)),
        "reload never applied"
    );
    assert!(
        eventually(10, || collector.has_all(&ids)),
        "records lost with the replaced plugin: {:?}",
        collector.missing(&ids)
    );
    assert!(envoy.alive());
}

/// A static listener running the test-only `fault-injection` build under `policy`.
fn fault_envoy(policy: &str, plugin: &Value) -> (Envoy, u16) {
    let dir = harness::scratch("faults-trap");
    let (port, admin) = (harness::free_port(), harness::free_port());
    let code = yaml::local_code(&harness::fault_wasm_path());
    let filters = wasm_filter(&code, Some(policy), &plugin.to_string());
    let bootstrap = yaml::bootstrap(admin, "", &listener(port, &filters), "");
    let envoy = spawn(&dir, &bootstrap, admin, &["--concurrency", "1"]);
    assert!(
        eventually(10, || user_status(port, "bob").is_ok()),
        "listener never served"
    );
    (envoy, port)
}

fn trap(port: u16) -> std::io::Result<harness::Response> {
    harness::request(
        port,
        "GET",
        "/shop/items",
        &[("x-user", "bob"), ("x-api-warden-fault", "trap")],
        None,
    )
}

#[test]
fn running_vm_that_traps_fails_per_failure_policy_and_fail_reload_restores_enforcement() {
    // The test-only build traps on `x-api-warden-fault: trap` (the release build has no such hook
    // and no panics: this shows what Envoy does if the VM ever dies while serving).
    for policy in ["FAIL_CLOSED", "FAIL_OPEN", "FAIL_RELOAD"] {
        let (mut envoy, port) = fault_envoy(policy, &plugin("amy"));
        // A deny entry added through the admin API lives in shared data, outside the VM.
        let added = deny_username(port, "cat");
        assert_eq!(added.status, 200, "{policy}: {}", added.body_text());
        let before = [("amy", 403), ("bob", 200), ("cat", 403)];
        assert_users(port, &before, &format!("{policy}, before the trap"));

        // The request that kills the VM gets Envoy's empty 503, whatever the policy.
        let r = trap(port).expect("trap request");
        assert_eq!(r.status, 503, "{policy}: {}", r.body_text());
        assert!(r.body.is_empty(), "{policy}: {}", r.body_text());
        assert!(eventually(5, || envoy.log().contains(
            "proxy_on_request_headers failed: Uncaught RuntimeError: unreachable"
        )));

        match policy {
            // Nobody passes until the plugin is reconfigured or Envoy restarts.
            "FAIL_CLOSED" => assert_users(
                port,
                &[("amy", 503), ("bob", 503), ("cat", 503)],
                "FAIL_CLOSED, after the trap",
            ),
            // Everybody passes, denied clients too: enforcement is off.
            "FAIL_OPEN" => assert_users(
                port,
                &[("amy", 200), ("bob", 200), ("cat", 200)],
                "FAIL_OPEN, after the trap",
            ),
            // A fresh VM is started after a backoff (503s meanwhile); it enforces the
            // configuration and the admin-added entry, which survived in shared data.
            _ => {
                assert!(
                    eventually(15, || user_status(port, "bob").ok() == Some(200)),
                    "FAIL_RELOAD: no VM came back"
                );
                assert_users(port, &before, "FAIL_RELOAD, after the reload");
                assert!(envoy.stat("wasm.api_warden.vm_reload_success") >= 1);
            }
        }
        assert!(envoy.alive(), "{policy}: Envoy died");
    }
}
