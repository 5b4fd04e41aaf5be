//! `api-warden envoy` end to end: the bootstrap it prints for an ASE folder starts in real Envoy
//! and serves two real upstreams — one over TLS with a self-signed certificate (`server_ssl`),
//! one behind an active health check (`health_check`, `health_url`) that fails and recovers.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::json;

use crate::harness::{self, cli_path, eventually, wasm_path, yaml, Envoy, Launch, TestServer};

/// An Envoy serving `secure ok` over TLS on `port` with a fresh self-signed certificate.
fn tls_upstream(dir: &std::path::Path, port: u16) -> Envoy {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let admin = harness::free_port();
    let listener = yaml::Listener {
        name: "tls",
        port,
        additional_addresses: "",
        codec: "AUTO",
        access_log: "",
        route: &yaml::direct_response("secure ok"),
        http_filters: "",
    }
    .render();
    let tls = format!(
        "    transport_socket:\n      name: envoy.transport_sockets.tls\n      typed_config:\n        \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\n        common_tls_context:\n          tls_certificates:\n          - certificate_chain: {{ filename: {} }}\n            private_key: {{ filename: {} }}\n",
        cert.display(),
        key.display()
    );
    // The transport socket belongs to the filter chain: after its filters list.
    let listener = listener.replacen(
        "  - filters:\n",
        &format!("  - {}\n    filters:\n", tls.trim_start().trim_end()),
        1,
    );
    let bootstrap = yaml::bootstrap(admin, "", &listener, "");
    Envoy::launch(|| Launch {
        dir: dir.to_path_buf(),
        yaml: bootstrap.clone(),
        admin,
        port: 0,
        upstream: 0,
        args: vec![],
    })
    .unwrap_or_else(|(msg, log)| panic!("TLS upstream: {msg}\n{log}"))
}

#[test]
fn the_generated_bootstrap_serves_a_tls_upstream_and_follows_a_health_check() {
    let dir = harness::scratch("cli-envoy");
    let apis = dir.join("apis");
    std::fs::create_dir_all(&apis).unwrap();
    let healthy = Arc::new(AtomicBool::new(true));
    let h = healthy.clone();
    let plain = TestServer::start(move |r| {
        if r.path == "/health" {
            return (
                if h.load(Ordering::SeqCst) { 200 } else { 503 },
                b"{}".to_vec(),
            );
        }
        (200, b"plain ok".to_vec())
    });
    let tls_port = harness::free_port();
    let _tls = tls_upstream(&dir.join("tls"), tls_port);
    let api = |url: &str, port: u16, extra: serde_json::Value| {
        let mut m = json!({"url": url, "hostname": "*", "enable_blocking": true,
                           "servers": [{"host": "127.0.0.1", "port": port}]});
        if let (Some(a), Some(b)) = (m.as_object_mut(), extra.as_object()) {
            a.extend(b.clone());
        }
        json!({ "api_metadata": m }).to_string()
    };
    std::fs::write(
        apis.join("plain.json"),
        api(
            "/plain",
            plain.port,
            json!({"health_check": true, "health_url": "/health",
                                          "health_check_interval": 1, "health_retry_count": 1}),
        ),
    )
    .unwrap();
    std::fs::write(
        apis.join("secure.json"),
        api("/secure", tls_port, json!({"server_ssl": true})),
    )
    .unwrap();
    let (port, admin) = (harness::free_port(), harness::free_port());
    let out = Command::new(cli_path())
        .args(["envoy", &apis.display().to_string()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .args(["--wasm", &wasm_path().display().to_string()])
        .output()
        .expect("api-warden envoy");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bootstrap = String::from_utf8(out.stdout).unwrap();
    let envoy = Envoy::launch(|| Launch {
        dir: {
            let d = dir.join("envoy");
            std::fs::create_dir_all(&d).unwrap();
            d
        },
        yaml: bootstrap.clone(),
        admin,
        port,
        upstream: 0,
        args: vec!["--concurrency".into(), "2".into()],
    })
    .unwrap_or_else(|(msg, log)| panic!("generated bootstrap: {msg}\n{log}\n{bootstrap}"));
    let body = |p: &str| {
        let r = envoy.get(p, &[]);
        (r.status, r.body_text())
    };
    assert!(
        eventually(10, || body("/plain/x") == (200, "plain ok".into())),
        "{:?}",
        body("/plain/x")
    );
    assert_eq!(
        body("/secure/x"),
        (200, "secure ok".into()),
        "the TLS upstream"
    );
    healthy.store(false, Ordering::SeqCst);
    let out = eventually(10, || body("/plain/x").0 == 503);
    let hc: Vec<(String, u64)> = envoy
        .stats()
        .into_iter()
        .filter(|(k, _)| {
            k.contains("api_plain") && (k.contains("health_check") || k.contains("membership"))
        })
        .collect();
    assert!(
        out,
        "the failing health check never took the server out: {hc:?}"
    );
    healthy.store(true, Ordering::SeqCst);
    assert!(
        eventually(10, || body("/plain/x").0 == 200),
        "the server never came back"
    );
    assert!(plain.requests().iter().any(|r| r.path == "/health"));
}
