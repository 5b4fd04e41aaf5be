//! Live reconfiguration the way istiod does it: the wasm filter's configuration comes through
//! Envoy's extension config discovery (ECDS) from a file-based config source. With traffic flowing
//! on 2 workers, pushes of a new API, a bad configuration, a new deny entry and a new `.wasm`:
//! no request fails or is served unchecked, and the lists from the admin API survive every push.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{self, eventually, yaml, Envoy, Launch};

const KEY: &str = "ecds-test-admin-key-0123456789";
const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// The ECDS resource file, written to a temporary file and renamed over `ecds.yaml` (Envoy
/// watches the directory for moves, so it never reads a half-written file).
struct Ecds {
    dir: PathBuf,
    version: usize,
}

impl Ecds {
    /// Push the api-warden filter running `wasm` with plugin configuration `plugin`.
    fn push(&mut self, wasm: &Path, plugin: &str) {
        self.version += 1;
        // A TypedExtensionConfig has the shape of an HTTP filter entry: name + typed_config.
        let filter = yaml::wasm_filter(&yaml::local_code(wasm), "FAIL_CLOSED", plugin);
        let entry = filter.replacen(
            "- name: envoy.filters.http.wasm",
            "- \"@type\": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig\n  name: api_warden",
            1,
        );
        let text = format!("version_info: \"{}\"\nresources:\n{entry}", self.version);
        let tmp = self.dir.join(format!(".ecds-{}.tmp", self.version));
        std::fs::write(&tmp, text).expect("write ecds");
        std::fs::rename(&tmp, self.dir.join("ecds.yaml")).expect("rename ecds");
    }
}

fn plugin(apis: &[&str], denied: &[&str]) -> String {
    let apis: Vec<Value> = apis
        .iter()
        .map(|a| {
            json!({"name": a, "api_metadata": {"url": format!("/{a}"), "hostname": "*",
                   "username_header": "x-user", "enable_blocking": true}})
        })
        .collect();
    json!({"apis": apis, "deny_list": {"username": denied},
           "admin": {"path": "/_api_warden", "key": KEY}})
    .to_string()
}

fn status(port: u16, path: &str, user: &str) -> u16 {
    harness::request(port, "GET", path, &[("x-user", user)], None)
        .map(|r| r.status)
        .unwrap_or(0)
}

/// Background traffic: what must hold through every push.
fn traffic(
    port: u16,
    stop: Arc<AtomicBool>,
    bad: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            for (path, user, want) in [
                ("/shop/a", "bob", 200),
                ("/shop/a", "eve", 403),
                ("/shop/a", "mallory", 403),
            ] {
                let got = status(port, path, user);
                n += 1;
                if got != want {
                    bad.lock()
                        .unwrap()
                        .push(format!("{user} {path}: {got}, want {want}"));
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        n
    })
}

#[test]
fn ecds_pushes_apply_live_and_a_bad_one_is_rejected() {
    let dir = harness::scratch("ecds");
    let (port, admin) = (harness::free_port(), harness::free_port());
    let mut ecds = Ecds {
        dir: dir.clone(),
        version: 0,
    };
    let wasm = harness::wasm_path();
    ecds.push(&wasm, &plugin(&["shop"], &["eve"]));
    let discovered = format!(
        "- name: api_warden\n  config_discovery:\n    config_source:\n      resource_api_version: V3\n      path_config_source:\n        path: {}\n        watched_directory: {{ path: {} }}\n    type_urls: [\"{WASM_TYPE}\"]",
        dir.join("ecds.yaml").display(),
        dir.display()
    );
    let main = yaml::Listener {
        name: "main",
        port,
        additional_addresses: "",
        codec: "AUTO",
        access_log: "",
        route: &yaml::direct_response("ok"),
        http_filters: &discovered,
    };
    let bootstrap = yaml::bootstrap(
        admin,
        "node: { id: ecds, cluster: ecds }",
        &main.render(),
        "",
    );
    let envoy = Envoy::launch(|| Launch {
        dir: dir.clone(),
        yaml: bootstrap.clone(),
        admin,
        port: 0,
        upstream: 0,
        args: vec!["--concurrency".into(), "2".into()],
    })
    .unwrap_or_else(|(msg, log)| panic!("envoy did not start: {msg}\n{log}"));
    assert!(
        eventually(10, || status(port, "/shop/a", "eve") == 403),
        "first config"
    );
    // An admin entry, which every push must keep.
    let r = harness::request(
        port,
        "POST",
        "/_api_warden/deny_list?type=username&value=mallory",
        &[("x-api-warden-admin-key", KEY)],
        None,
    )
    .expect("admin POST");
    assert_eq!(r.status, 200, "{}", r.body_text());
    let (stop, bad) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let load = traffic(port, stop.clone(), bad.clone());

    // 1. A new API applies within about a second.
    assert_eq!(
        status(port, "/bank/x", "eve"),
        200,
        "/bank is not an API yet"
    );
    ecds.push(&wasm, &plugin(&["shop", "bank"], &["eve"]));
    assert!(
        eventually(3, || status(port, "/bank/x", "eve") == 403),
        "the new API never applied"
    );

    // 2. A bad configuration is rejected; the previous one keeps serving; the rejection counted.
    let fails = || {
        envoy
            .stats()
            .iter()
            .filter(|(k, _)| k.contains("extension_config_discovery") && k.ends_with("config_fail"))
            .map(|(_, v)| *v)
            .sum::<u64>()
    };
    let before = fails();
    ecds.push(
        &wasm,
        r#"{"apis": [{"name": "x", "api_metadata": {"url": "no-slash"}}]}"#,
    );
    assert!(
        eventually(5, || fails() > before),
        "the bad configuration was not rejected"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        status(port, "/bank/x", "eve"),
        403,
        "the previous configuration stopped serving"
    );

    // 3. A new deny entry in the configuration.
    ecds.push(&wasm, &plugin(&["shop", "bank"], &["eve", "trudy"]));
    assert!(
        eventually(3, || status(port, "/shop/a", "trudy") == 403),
        "the new entry never applied"
    );

    // 4. A new .wasm (the test build with the fault hook, a different module).
    let loads = || envoy.stat("wasmcustom.api_warden.config.loads");
    let loaded = loads();
    ecds.push(
        &harness::fault_wasm_path(),
        &plugin(&["shop", "bank"], &["eve", "trudy"]),
    );
    assert!(
        eventually(10, || loads() > loaded),
        "the new module never loaded"
    );
    assert_eq!(status(port, "/shop/a", "trudy"), 403);
    assert_eq!(
        status(port, "/shop/a", "mallory"),
        403,
        "the admin entry did not survive"
    );

    stop.store(true, Ordering::SeqCst);
    let sent = load.join().unwrap();
    let bad = bad.lock().unwrap();
    assert!(sent > 30, "only {sent} background requests");
    assert!(
        bad.is_empty(),
        "{} of {sent} background requests went wrong: {:?}",
        bad.len(),
        &bad[..bad.len().min(10)]
    );
    drop(envoy);
}
