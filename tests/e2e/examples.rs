//! The Envoy configurations under `envoy/` that users copy: each one starts (its plugin
//! configurations load) and the demo answers as the README says.

use serde_json::json;

use crate::harness::{free_port, request, root, scratch, wasm_path, Envoy, Jwt, Launch};

/// The example `name` with every port moved to a free one (the map old → new in `ports`), the
/// filter path made absolute, and listeners on loopback.
fn rewrite(name: &str, ports: &mut Vec<(u16, u16)>) -> String {
    let text = std::fs::read_to_string(root().join("envoy").join(name)).unwrap();
    ports.clear();
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
    out
}

fn port(ports: &[(u16, u16)], old: u16) -> u16 {
    ports.iter().find(|(o, _)| *o == old).unwrap().1
}

/// Start an example and wait until it is ready; returns it and its port map.
fn start_ready(name: &str) -> (Envoy, Vec<(u16, u16)>) {
    let mut ports = Vec::new();
    let envoy = Envoy::launch(|| {
        let yaml = rewrite(name, &mut ports);
        Launch {
            dir: scratch(name),
            yaml,
            admin: port(&ports, 9901),
            port: port(&ports, 10000),
            upstream: 0,
            args: vec!["--concurrency".into(), "1".into()],
        }
    });
    match envoy {
        Ok(e) => (e, ports),
        Err((msg, log)) => panic!("{name}: {msg}\n{log}"),
    }
}

/// The status of a request from `eve`, whom every sideband example blocks locally.
fn eve_status(envoy: &Envoy) -> u16 {
    let eve = Jwt::claims(&json!({"username": "eve"})).build();
    let auth = format!("Bearer {eve}");
    envoy.get("/shop/items", &[("authorization", &auth)]).status
}

/// Counter `name` reaches `want` within 5 s.
fn assert_stat_reaches(envoy: &Envoy, name: &str, want: u64) {
    let counted = crate::harness::eventually(5, || envoy.try_stat(name) == Some(want));
    assert!(counted, "{name}: {:?}, want {want}", envoy.try_stat(name));
}

#[test]
fn demo_passes_and_blocks_as_the_readme_says() {
    let (envoy, _) = start_ready("envoy.yaml");
    let ok = envoy.get("/shop/items", &[]);
    let blocked = envoy.get("/shop/items", &[("x-api-key", "stolen-key")]);
    assert_eq!(ok.status, 200);
    assert!(ok.body_text().contains("hello from the demo upstream"));
    assert_eq!(blocked.status, 403);
    assert_eq!(blocked.body_text(), "Unauthorized");
}

#[test]
fn apis_example_loads_the_seed_api_json_verbatim() {
    let (envoy, _) = start_ready("apis-example.yaml");
    let jwt = |user: &str| {
        let claims = json!({"username": user, "client_id": "app"});
        let token = Jwt::claims(&claims).header(r#"{"alg":"HS256"}"#).build();
        format!("Bearer {token}")
    };
    let eve = envoy.get("/rest/orders", &[("authorization", &jwt("eve"))]);
    let alice = envoy.get("/rest/orders", &[("authorization", &jwt("alice"))]);
    let root_api = envoy.get("/anything?key_1.4=k", &[]);
    assert_eq!(
        eve.status, 403,
        "the /rest API (seed 001) decodes the JWT and eve is denied"
    );
    assert_eq!(alice.status, 200);
    assert_eq!(root_api.status, 200);
}

#[test]
fn production_example_starts_with_the_admin_listener() {
    let (_envoy, ports) = start_ready("production.yaml");
    let admin = request(
        port(&ports, 9902),
        "GET",
        "/_api_warden/deny_list",
        &[],
        None,
    )
    .unwrap();
    assert_eq!(admin.status, 401, "{}", admin.body_text());
}

#[test]
fn sideband_ase_example_starts_and_fails_open_while_no_ase_listens() {
    let (envoy, _) = start_ready("sideband-ase.yaml");
    let r = envoy.get("/shop/items", &[]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(eve_status(&envoy), 403);
    // The example logs records to stdout; its counters tell what happened: one call failed
    // (nothing listens on ASE's ports), the locally blocked request was never sent.
    assert_stat_reaches(&envoy, "wasmcustom.api_warden.sideband.errors", 1);
    assert_eq!(envoy.stat("wasmcustom.api_warden.sideband.requests"), 1);
}

#[test]
fn ecds_example_serves_the_configuration_from_its_resource_file() {
    let (envoy, _) = start_ready("ecds.yaml");
    let ok = crate::harness::eventually(10, || {
        envoy.get("/shop/a", &[("x-user", "bob")]).status == 200
    });
    assert!(ok, "the ECDS configuration never applied");
    assert_eq!(envoy.get("/shop/a", &[("x-user", "eve")]).status, 403);
}

#[test]
fn sideband_pingauthorize_example_starts_and_fails_closed_while_no_pingauthorize_listens() {
    let (envoy, _) = start_ready("sideband-pingauthorize.yaml");
    // Nothing listens on PingAuthorize's port: an authorization decision fails closed.
    let r = envoy.get("/shop/items", &[]);
    assert_eq!(r.status, 502, "{}", r.body_text());
    // A POST with a body is held for its body (allow_on_headers_stop_iteration), then fails the
    // same way, promptly.
    let started = std::time::Instant::now();
    let post = request(
        envoy.port,
        "POST",
        "/shop/orders",
        &[("content-type", "application/json")],
        Some(br#"{"order":1}"#),
    )
    .unwrap();
    assert_eq!(post.status, 502);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // A client api-warden blocks itself is never sent.
    assert_eq!(eve_status(&envoy), 403);
    assert_stat_reaches(
        &envoy,
        "wasmcustom.api_warden.sideband.pingauthorize.errors",
        2,
    );
    assert_eq!(
        envoy.stat("wasmcustom.api_warden.sideband.pingauthorize.requests"),
        2
    );
    assert_eq!(envoy.stat("wasmcustom.api_warden.sideband.ase.requests"), 0);
}
