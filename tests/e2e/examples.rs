//! The Envoy configurations under `envoy/` that users copy: each one starts (its plugin
//! configurations load) and the demo answers as the README says.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{free_port, get, request, root, scratch, wasm_path};

/// Start an example with its ports moved to free ones; returns (child, port map, log path).
fn start_example(name: &str) -> (std::process::Child, Vec<(u16, u16)>, std::path::PathBuf) {
    let text = std::fs::read_to_string(root().join("envoy").join(name)).unwrap();
    let mut ports = Vec::new();
    let mut out = String::new();
    for line in text.lines() {
        let mut l = line.to_string();
        if let Some(i) = l.find("port_value: ") {
            let digits: String = l[i + 12..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let old: u16 = digits.parse().unwrap();
            let new = match ports.iter().find(|(o, _)| *o == old) {
                Some((_, n)) => *n,
                None => {
                    let n = free_port();
                    ports.push((old, n));
                    n
                }
            };
            l = format!(
                "{}port_value: {}{}",
                &l[..i],
                new,
                &l[i + 12 + digits.len()..]
            );
        }
        l = l.replace(
            "target/wasm32-wasip1/release/api_warden.wasm",
            &wasm_path().display().to_string(),
        );
        l = l.replace("0.0.0.0", "127.0.0.1");
        out.push_str(&l);
        out.push('\n');
    }
    let dir = scratch(name);
    let cfg = dir.join("envoy.yaml");
    std::fs::write(&cfg, out).unwrap();
    let log = dir.join("envoy.log");
    let child = Command::new(crate::harness::envoy_bin())
        .arg("-c")
        .arg(&cfg)
        .args(["--concurrency", "1", "--disable-hot-restart", "--log-path"])
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, ports, log)
}

fn port(ports: &[(u16, u16)], old: u16) -> u16 {
    ports.iter().find(|(o, _)| *o == old).unwrap().1
}

fn wait_ready(child: &mut std::process::Child, admin: u16, log: &std::path::Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            // A port taken by a test running in parallel: the caller retries with new ports.
            assert!(
                text.contains("Address already in use"),
                "exited {s}: {text}"
            );
            return false;
        }
        if get(admin, "/ready")
            .map(|r| r.status == 200)
            .unwrap_or(false)
        {
            return true;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Start an example and wait until it is ready (retrying when a port was taken meanwhile).
fn start_ready(name: &str) -> (std::process::Child, Vec<(u16, u16)>) {
    for _ in 0..4 {
        let (mut child, ports, log) = start_example(name);
        if wait_ready(&mut child, port(&ports, 9901), &log) {
            return (child, ports);
        }
    }
    panic!("{name}: could not bind free ports");
}

#[test]
fn demo_passes_and_blocks_as_the_readme_says() {
    let (mut child, ports) = start_ready("envoy.yaml");
    let p = port(&ports, 10000);
    let ok = request(p, "GET", "/shop/items", &[], None).unwrap();
    let blocked = request(
        p,
        "GET",
        "/shop/items",
        &[("x-api-key", "stolen-key")],
        None,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ok.status, 200);
    assert!(ok.body_text().contains("hello from the demo upstream"));
    assert_eq!(blocked.status, 403);
    assert_eq!(blocked.body_text(), "Unauthorized");
}

#[test]
fn apis_example_loads_the_seed_api_json_verbatim() {
    let (mut child, ports) = start_ready("apis-example.yaml");
    let p = port(&ports, 10000);
    use base64::Engine;
    let jwt = |user: &str| {
        let b = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "Bearer {}.{}.c2ln",
            b(r#"{"alg":"HS256"}"#.into()),
            b(format!(r#"{{"username":"{user}","client_id":"app"}}"#))
        )
    };
    let eve = request(
        p,
        "GET",
        "/rest/orders",
        &[("authorization", &jwt("eve"))],
        None,
    )
    .unwrap();
    let alice = request(
        p,
        "GET",
        "/rest/orders",
        &[("authorization", &jwt("alice"))],
        None,
    )
    .unwrap();
    let root_api = request(p, "GET", "/anything?key_1.4=k", &[], None).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        eve.status, 403,
        "the /rest API (seed 001) decodes the JWT and eve is denied"
    );
    assert_eq!(alice.status, 200);
    assert_eq!(root_api.status, 200);
}

#[test]
fn production_example_starts_with_the_admin_listener() {
    let (mut child, ports) = start_ready("production.yaml");
    let admin = request(
        port(&ports, 9902),
        "GET",
        "/_api_warden/deny_list",
        &[],
        None,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(admin.status, 401, "{}", admin.body_text());
}
