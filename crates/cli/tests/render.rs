//! `api-warden envoy DIR` and `api-warden istio DIR`: golden files, and every generated Envoy
//! bootstrap checked by the real Envoy (`$ENVOY --mode validate`, with a stub proxy-wasm module
//! standing in for the filter); without `ENVOY` the validation is skipped, loudly.
#![allow(clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;
use common::{dir, golden, run, transcript};

#[allow(dead_code)]
#[path = "../../core/src/config/tests/seeds.rs"]
mod seeds;

use std::path::{Path, PathBuf};

/// The smallest module Envoy's proxy-wasm host accepts (88 bytes): the ABI version, memory and `malloc`.
const STUB_WASM: [u8; 88] = [
    0, 97, 115, 109, 1, 0, 0, 0, 1, 9, 2, 96, 0, 0, 96, 1, 127, 1, 127, 3, 3, 2, 0, 1, 5, 3, 1, 0,
    1, 7, 45, 3, 23, 112, 114, 111, 120, 121, 95, 97, 98, 105, 95, 118, 101, 114, 115, 105, 111,
    110, 95, 48, 95, 50, 95, 49, 0, 0, 6, 109, 101, 109, 111, 114, 121, 2, 0, 6, 109, 97, 108, 108,
    111, 99, 0, 1, 10, 10, 2, 2, 0, 11, 5, 0, 65, 128, 8, 11,
];

/// The backends of every mapping: TLS, health checks with headers, a rewrite, connection quotas,
/// cookie persistence, a WebSocket API, a host-specific API, and an API without servers.
const RICH: &[(&str, &str)] = &[
    (
        "shop.json",
        r#"{"api_metadata": {"protocol": "https", "url": "/shop", "hostname": "shop.example.com",
        "server_ssl": true, "health_check": true, "health_url": "/health", "health_check_interval": 10,
        "health_retry_count": 3, "health_check_headers": {"x-probe": "api-warden"},
        "cookie": "JSESSIONID", "cookie_persistence_enabled": true,
        "api_mapping": {"internal_url": "/internal/shop"},
        "servers": [{"host": "backend.example.com", "port": 443, "server_connection_quota": 100},
                    {"host": "10.0.0.7", "port": 8443, "server_connection_quota": 50}]}}"#,
    ),
    (
        "chat.json",
        r#"{"api_metadata": {"protocol": "ws", "url": "/chat", "hostname": "*",
        "servers": [{"host": "127.0.0.1", "port": 9000}]}}"#,
    ),
    (
        "root.json",
        r#"{"api_metadata": {"protocol": "http", "url": "/", "hostname": "*", "servers": []}}"#,
    ),
];

fn envoy_bin() -> Option<String> {
    match std::env::var("ENVOY") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            eprintln!("\n!!! ENVOY is not set: the generated Envoy bootstraps are NOT validated by Envoy.\n!!! Run with ENVOY=/path/to/envoy (e.g. ENVOY=/work/wt/.venv/bin/envoy) to check them.\n");
            None
        }
    }
}

/// `$ENVOY --mode validate -c FILE`, when ENVOY is set.
fn validate(file: &Path) {
    let Some(envoy) = envoy_bin() else { return };
    let out = std::process::Command::new(&envoy)
        .args(["--mode", "validate", "--log-level", "error", "-c"])
        .arg(file)
        .output()
        .expect("envoy runs");
    assert!(
        out.status.success(),
        "envoy --mode validate {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Render `folder` with `args`, write the bootstrap next to a stub .wasm, and validate it.
fn render_and_validate(test: &str, files: &[(&str, &str)], args: &[&str]) -> (PathBuf, String) {
    let d = dir(test, files);
    let wasm = dir(&format!("{test}-wasm"), &[]).join("api_warden.wasm");
    std::fs::write(&wasm, STUB_WASM).expect("stub wasm");
    let wasm = wasm.display().to_string();
    let folder = d.display().to_string();
    let mut all = vec!["envoy", folder.as_str(), "--wasm", wasm.as_str()];
    all.extend(args);
    let r = run(&all, None);
    assert_eq!(r.code, 0, "{}", r.err);
    let file = d.with_extension("yaml");
    std::fs::write(&file, &r.out).expect("bootstrap written");
    validate(&file);
    let shown = r.out.replace(&wasm, "WASM").replace(&folder, "DIR");
    (d, shown)
}

#[test]
fn envoy_for_the_seed_files_is_valid() {
    let (_, out) = render_and_validate(
        "envoy-seeds",
        &[
            ("root.json", seeds::SEED_000_APIKEY),
            ("rest.json", seeds::SEED_001_REST),
            ("shopapi.json", seeds::TOOLING_FILE),
        ],
        &[],
    );
    golden("envoy-seeds.yaml", &out);
    for line in [
        "      - name: envoy.filters.http.wasm",
        "              allow_on_headers_stop_iteration: true",
        "              failure_policy: FAIL_RELOAD",
        "          use_remote_address: true",
        "                  record: \"%FILTER_STATE(wasm.api_warden.record:PLAIN)%\"",
    ] {
        assert!(
            out.lines().any(|l| l.trim() == line.trim()),
            "missing {line:?}\n{out}"
        );
    }
}

#[test]
fn envoy_maps_every_backend_field_and_is_valid() {
    let (_, out) = render_and_validate(
        "envoy-rich",
        RICH,
        &[
            "--listen",
            "127.0.0.1:18080",
            "--admin",
            "127.0.0.1:19901",
            "--sideband",
            "127.0.0.1:8000",
            "--sideband",
            "127.0.0.1:8001",
        ],
    );
    golden("envoy-rich.yaml", &out);
    for needle in [
        "path_separated_prefix: /shop",
        "prefix_rewrite: /internal/shop",
        "sni: backend.example.com",
        "lb_policy: RING_HASH",
        "name: JSESSIONID",
        "max_connections: 150",
        "unhealthy_threshold: 3",
        "interval: \"10s\"",
        "key: x-probe",
        "upgrade_type: websocket",
        "status: 503",
        "name: ase_sideband",
        "priority: 1",
        "port_value: 19901",
        "\\\"sideband\\\":{\\\"cluster\\\":\\\"ase_sideband\\\"}",
    ] {
        assert!(out.contains(needle), "missing {needle:?}\n{out}");
    }
}

#[test]
fn envoy_refuses_bad_folders_and_bad_options() {
    let d = dir(
        "envoy-bad",
        &[(
            "a.json",
            r#"{"api_metadata": {"url": "/a", "hostname": "*", "servers": [{"host": "x", "port": 70000}]}}"#,
        )],
    );
    let r = run(&["envoy", &d.display().to_string()], None);
    golden("envoy-bad-port.txt", &transcript(&r, &d));
    assert_eq!(r.code, 1);
    let d = dir("envoy-empty", &[]);
    let r = run(&["envoy", &d.display().to_string()], None);
    assert_eq!(r.code, 1);
    for args in [
        &["envoy"][..],
        &["envoy", "a", "--listen", "nope"][..],
        &["envoy", "a", "--admin", "1.2.3.4:0"][..],
        &["istio", "a"][..],
        &["istio", "a", "--namespace", "n"][..],
        &["istio", "a", "--namespace", "n", "--selector", "novalue"][..],
        &[
            "istio",
            "a",
            "--namespace",
            "n",
            "--selector",
            "a=b",
            "--image",
            "docker://x",
        ][..],
        &[
            "istio",
            "a",
            "--namespace",
            "n",
            "--selector",
            "a=b",
            "--image",
            "oci://x",
            "--url",
            "https://y",
        ][..],
    ] {
        let r = run(args, None);
        assert_eq!(r.code, 2, "{args:?}: {}", r.err);
        assert!(r.err.contains("usage: api-warden "), "{args:?}: {}", r.err);
    }
}

#[test]
fn istio_manifests() {
    let d = dir("istio-rich", RICH);
    let r = run(
        &[
            "istio",
            &d.display().to_string(),
            "--namespace",
            "shop",
            "--selector",
            "app=shop",
            "--image",
            "oci://registry.example.com/api-warden:1",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.err);
    golden("istio-rich.yaml", &common::relative(&r.out, &d));
    let docs: Vec<&str> = r.out.split("\n---\n").collect();
    assert_eq!(docs.len(), 3, "{}", r.out);
    let plugin = docs[0];
    for line in [
        "apiVersion: extensions.istio.io/v1alpha1",
        "kind: WasmPlugin",
        "  namespace: shop",
        "  phase: AUTHN",
        "  failStrategy: FAIL_CLOSE",
        "  url: \"oci://registry.example.com/api-warden:1\"",
        "      app: shop",
        "  pluginConfig:",
    ] {
        assert!(
            plugin.lines().any(|l| l == line),
            "missing {line:?}\n{plugin}"
        );
    }
    assert!(
        docs[1].contains("kind: DestinationRule") && docs[1].contains("host: backend.example.com")
    );
    assert!(docs[1].contains("name: api-warden-shop-backend-example-com"));
    assert!(docs[2].contains("name: api-warden-shop-10-0-0-7"));
    assert!(docs[1].contains("mode: SIMPLE") && docs[1].contains("maxConnections: 100"));
    assert!(docs[1].contains("httpCookie:") && docs[1].contains("consecutive5xxErrors: 3"));
    assert!(docs[2].contains("host: \"10.0.0.7\"") && docs[2].contains("number: 8443"));
    // With PyYAML at hand, the whole stream parses as three documents.
    let parsed = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, yaml; print(len(list(yaml.safe_load_all(sys.stdin))))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(r.out.as_bytes())?;
            c.wait_with_output()
        });
    match parsed {
        Ok(o) if o.status.success() => assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "3"),
        _ => eprintln!("python3 with PyYAML not available: YAML parse check skipped"),
    }
}

#[test]
fn render_commands_have_help() {
    for cmd in ["envoy", "istio"] {
        let r = run(&[cmd, "--help"], None);
        assert_eq!(r.code, 0, "{cmd}");
        assert!(
            r.out.starts_with(&format!("usage: api-warden {cmd}")),
            "{cmd}: {}",
            r.out
        );
    }
}

#[test]
fn envoy_with_pingauthorize_is_valid_and_refuses_bad_options() {
    let secrets = dir(
        "envoy-paz-secret",
        &[("secret", "s3cr3t-value\nignored\n"), ("empty", "\n")],
    );
    let secret = secrets.join("secret").display().to_string();
    let (_, out) = render_and_validate(
        "envoy-paz",
        RICH,
        &[
            "--pingauthorize",
            "paz.example.com:1443",
            "--pingauthorize",
            "10.0.0.9:1443",
            "--pingauthorize-secret-file",
            &secret,
        ],
    );
    for needle in [
        "name: pingauthorize_sideband",
        "sni: paz.example.com",
        "type: STRICT_DNS",
        "port_value: 1443",
        "priority: 1",
        "\\\"sideband\\\":{\\\"authority\\\":\\\"paz.example.com\\\",\\\"cluster\\\":\\\"pingauthorize_sideband\\\",\\\"secret\\\":\\\"s3cr3t-value\\\",\\\"service\\\":\\\"pingauthorize\\\"}",
    ] {
        assert!(out.contains(needle), "missing {needle:?}\n{out}");
    }
    assert!(!out.contains("ase_sideband"), "{out}");
    // Plain HTTP: no transport socket on the sideband cluster.
    let (_, plain) = render_and_validate(
        "envoy-paz-plain",
        RICH,
        &[
            "--pingauthorize",
            "127.0.0.1:8443",
            "--pingauthorize-secret-file",
            &secret,
            "--pingauthorize-plaintext",
        ],
    );
    // (RICH's shop API has the other one.)
    assert_eq!(out.matches("transport_socket:").count(), 2, "{out}");
    assert_eq!(plain.matches("transport_socket:").count(), 1, "{plain}");
    assert!(plain.contains("name: pingauthorize_sideband"), "{plain}");
    let d = dir("envoy-paz-bad", RICH);
    let folder = d.display().to_string();
    let empty = secrets.join("empty").display().to_string();
    for (args, why) in [
        (
            &["--pingauthorize", "p:1"][..],
            "--pingauthorize needs --pingauthorize-secret-file",
        ),
        (
            &["--pingauthorize-secret-file", &secret][..],
            "need --pingauthorize",
        ),
        (&["--pingauthorize-plaintext"][..], "need --pingauthorize"),
        (
            &[
                "--pingauthorize",
                "p:1",
                "--pingauthorize-secret-file",
                &secret,
                "--sideband",
                "a:1",
            ][..],
            "one sideband service or the other",
        ),
        (
            &[
                "--pingauthorize",
                "p:1",
                "--pingauthorize-secret-file",
                &empty,
            ][..],
            "the first line is empty",
        ),
        (
            &[
                "--pingauthorize",
                "p:1",
                "--pingauthorize-secret-file",
                "/nonexistent/x",
            ][..],
            "--pingauthorize-secret-file /nonexistent/x",
        ),
        (&["--pingauthorize", "p"][..], "expected ADDR:PORT"),
    ] {
        let mut all = vec!["envoy", folder.as_str()];
        all.extend(args);
        let r = run(&all, None);
        assert_eq!(r.code, 2, "{args:?}: {}", r.err);
        assert!(r.err.contains(why), "{args:?}: {}", r.err);
    }
}
