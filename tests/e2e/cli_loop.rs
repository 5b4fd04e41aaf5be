//! The `api-warden` command end to end: an ASE folder with only the root API → `api-warden
//! config` → real Envoy → traffic → its access log → `api-warden discover` → the discovered API
//! JSON files → `api-warden config` → Envoy restarted with them → the same requests now match the
//! discovered APIs by name in the records.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::harness::{self, cli_path, eventually, Envoy};

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(cli_path())
        .args(args)
        .output()
        .expect("run api-warden");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config_of(dir: &Path) -> String {
    let (code, out, err) = cli(&["config", &dir.display().to_string()]);
    assert_eq!(code, 0, "api-warden config: {err}");
    out
}

const PATHS: [&str; 4] = [
    "/shop/items",
    "/shop/cart?x=1",
    "/bank/accounts",
    "/bank/accounts/7",
];

#[test]
fn discover_turns_root_api_traffic_into_apis_the_filter_then_matches() {
    let dir = harness::scratch("cli-loop");
    let apis = dir.join("apis");
    std::fs::create_dir_all(&apis).unwrap();
    let root = json!({"api_metadata": {"protocol": "http", "url": "/", "hostname": "*",
        "oauth2_access_token": false, "enable_blocking": false,
        "jwt": {"location": "", "username": "", "clientid": ""}}});
    std::fs::write(apis.join("root.json"), root.to_string()).unwrap();
    let (code, out, err) = cli(&["lint", &apis.display().to_string()]);
    assert_eq!(code, 0, "lint: {out}{err}");

    // 1. Only the root API: every request is recorded under it.
    let envoy = Envoy::start(&config_of(&apis));
    for p in PATHS {
        assert_eq!(envoy.get(p, &[]).status, 200, "{p}");
    }
    let lines = envoy.log_lines(PATHS.len());
    assert!(
        lines.iter().all(|l| l.contains("\"api\":\"root\"")),
        "{lines:?}"
    );
    // Keep the access log: stopping Envoy removes its directory.
    let log = dir.join("access.log");
    std::fs::copy(&envoy.access_log, &log).unwrap();
    drop(envoy);

    // 2. discover → one file per base path, which lint accepts.
    let out_dir = dir.join("discovered");
    let (code, _, err) = cli(&[
        "discover",
        "--root",
        &apis.join("root.json").display().to_string(),
        "--known",
        &apis.display().to_string(),
        "--out",
        &out_dir.display().to_string(),
        "--any-host",
        &log.display().to_string(),
    ]);
    assert_eq!(code, 0, "discover: {err}");
    let mut found: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(found, ["bank.json", "shop.json"], "{err}");
    let shop: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("shop.json")).unwrap()).unwrap();
    assert_eq!(shop["api_metadata"]["url"], json!("/shop"));
    for f in &found {
        std::fs::copy(out_dir.join(f), apis.join(f)).unwrap();
    }
    let (code, out, err) = cli(&["lint", "--strict", &apis.display().to_string()]);
    assert_eq!(code, 0, "lint after discover: {out}{err}");

    // 3. config → Envoy restarted → the same requests match the discovered APIs by name.
    let envoy = Envoy::start(&config_of(&apis));
    for p in PATHS {
        assert_eq!(envoy.get(p, &[]).status, 200, "{p}");
    }
    let matched = eventually(10, || {
        let recs = envoy.records(PATHS.len());
        let names: Vec<String> = recs
            .iter()
            .map(|r| r.at("/ase/api").as_str().unwrap_or_default().to_string())
            .collect();
        (names == ["shop", "shop", "bank", "bank"]).then_some(names)
    });
    assert!(
        matched.is_some(),
        "{:?}",
        envoy
            .records(PATHS.len())
            .iter()
            .map(|r| r.at("/ase/api"))
            .collect::<Vec<_>>()
    );
}
