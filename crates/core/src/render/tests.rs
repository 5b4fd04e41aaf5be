//! Tests of the backend fields and of the Envoy and Istio values built from them.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::{json, Value};

use super::backend::{backends, Backend};
use super::{envoy, istio};
use crate::ase_files::check_folder;

fn folder(files: &[(&str, Value)]) -> Vec<Backend> {
    let f = check_folder(
        files
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string().into_bytes()))
            .collect(),
    );
    assert!(!f.has_errors(), "{:?}", f.findings);
    backends(&f.apis).unwrap()
}

fn shop() -> Value {
    json!({"api_metadata": {
        "url": "/shop", "hostname": "shop.example.com", "protocol": "ws",
        "server_ssl": true, "health_check": true, "health_url": "/health",
        "health_check_interval": "10", "health_retry_count": 2,
        "health_check_headers": {"x-probe": "1"},
        "cookie": "JSESSIONID", "cookie_persistence_enabled": true,
        "api_mapping": {"internal_url": "/internal"},
        "servers": [
            {"host": "backend.example.com", "port": 443, "server_connection_quota": 10},
            {"host": "10.0.0.2", "port": "8443", "server_connection_quota": 5}
        ]
    }})
}

#[test]
fn backend_fields_are_read() {
    let b = &folder(&[("shop.json", shop())])[0];
    assert!(b.tls && b.websocket);
    assert_eq!(b.servers.len(), 2);
    assert_eq!(b.max_connections(), Some(15));
    let h = b.health.as_ref().unwrap();
    assert_eq!(
        (h.interval_s, h.retries, h.path.as_str()),
        (10, 2, "/health")
    );
    assert_eq!(b.rewrite.as_deref(), Some("/internal"));
    assert_eq!(b.sticky_cookie.as_deref(), Some("JSESSIONID"));
}

#[test]
fn bad_backend_fields_name_the_field() {
    for (meta, field) in [
        (
            json!({"servers": [{"host": "a", "port": 0}]}),
            "api_metadata.servers[0].port",
        ),
        (
            json!({"servers": [{"port": 80}]}),
            "api_metadata.servers[0].host",
        ),
        (json!({"servers": {}}), "api_metadata.servers"),
        (
            json!({"health_check": true, "health_retry_count": "x"}),
            "api_metadata.health_retry_count",
        ),
    ] {
        let mut m = meta.as_object().unwrap().clone();
        m.insert("url".into(), json!("/a"));
        m.insert("hostname".into(), json!("*"));
        let f = check_folder(vec![(
            "a.json".into(),
            json!({"api_metadata": m}).to_string().into_bytes(),
        )]);
        let errs = backends(&f.apis).unwrap_err();
        assert_eq!(errs[0].field, field, "{errs:?}");
    }
}

#[test]
fn routes_longest_first_and_star_apis_behind_each_host() {
    let b = folder(&[
        (
            "root.json",
            json!({"api_metadata": {"url": "/", "hostname": "*"}}),
        ),
        ("shop.json", shop()),
        (
            "api.json",
            json!({"api_metadata": {"url": "/api/v1", "hostname": "*", "servers": [{"host": "127.0.0.1", "port": 1}]}}),
        ),
    ]);
    let opts = envoy::EnvoyOptions {
        listen: ("0.0.0.0".into(), 10000),
        admin: None,
        wasm: "x.wasm".into(),
        access_log: "/dev/stdout".into(),
        sideband: vec![],
        pingauthorize: None,
    };
    let v = envoy::bootstrap(&b, &json!({}), &opts);
    let hcm =
        &v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let vhs = hcm["route_config"]["virtual_hosts"].as_array().unwrap();
    let names = |vh: &Value| -> Vec<String> {
        vh["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        vhs[0]["domains"],
        json!(["shop.example.com", "shop.example.com:*"])
    );
    assert_eq!(names(&vhs[0]), ["shop", "api", "root"]);
    assert_eq!(vhs[1]["domains"], json!(["*"]));
    assert_eq!(names(&vhs[1]), ["api", "root"]);
    assert_eq!(vhs[1]["routes"][1]["direct_response"]["status"], 503);
    assert!(v.get("admin").is_none());
    let clusters = v["static_resources"]["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 2);
}

#[test]
fn destination_rules_per_host_and_port() {
    let b = folder(&[("shop.json", shop())]);
    let (rules, notes) = istio::destination_rules(&b, "shop");
    assert!(notes.is_empty());
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0]["spec"]["host"], "backend.example.com");
    let port = &rules[0]["spec"]["trafficPolicy"]["portLevelSettings"][0];
    assert_eq!(port["port"]["number"], 443);
    assert_eq!(port["tls"]["mode"], "SIMPLE");
    assert_eq!(port["connectionPool"]["tcp"]["maxConnections"], 10);
    assert_eq!(
        port["loadBalancer"]["consistentHash"]["httpCookie"]["name"],
        "JSESSIONID"
    );
    assert_eq!(port["outlierDetection"]["consecutive5xxErrors"], 2);
}
