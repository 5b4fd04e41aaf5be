//! Istio manifests for an ASE folder: the `WasmPlugin` carrying the filter's configuration, and
//! one `DestinationRule` per backend host with the API JSON fields Istio handles (TLS,
//! connection limits, consistent hashing on the session cookie, outlier detection for health).

use serde_json::{json, Map, Value};

use super::backend::Backend;

/// Where the plugin comes from and what it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IstioOptions {
    pub namespace: String,
    /// `KEY=VALUE` label selecting the workloads.
    pub selector: (String, String),
    /// `oci://…` or `https://…` (default `oci://ghcr.io/api-warden/api-warden:VERSION`).
    pub url: String,
}

/// The `WasmPlugin` manifest.
pub fn wasm_plugin(plugin_config: &Value, o: &IstioOptions) -> Value {
    let mut labels = Map::new();
    labels.insert(o.selector.0.clone(), json!(o.selector.1));
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": "api-warden", "namespace": o.namespace},
        "spec": {
            "selector": {"matchLabels": labels},
            "url": o.url,
            "phase": "AUTHN",
            "failStrategy": "FAIL_CLOSE",
            "pluginName": "api_warden",
            "pluginConfig": plugin_config
        }
    })
}

/// One `DestinationRule` per backend host that has something to carry, named after the first
/// API using it and the host; an API sharing a host with an earlier one adds only its ports. Returns the
/// manifests and notes (settings two APIs disagree on: the first wins).
pub fn destination_rules(backends: &[Backend], namespace: &str) -> (Vec<Value>, Vec<String>) {
    let mut hosts: Vec<(String, String, Vec<Value>)> = Vec::new();
    let mut notes = Vec::new();
    for b in backends {
        let policy = traffic_policy(b);
        for s in &b.servers {
            let mut port_policy = policy.clone();
            port_policy.insert("port".into(), json!({"number": s.port}));
            if s.quota > 0 {
                port_policy.insert(
                    "connectionPool".into(),
                    json!({"tcp": {"maxConnections": s.quota}}),
                );
            }
            if port_policy.len() == 1 {
                continue;
            }
            match hosts.iter_mut().find(|(h, _, _)| *h == s.host) {
                Some((_, first, ports)) => {
                    let number = json!({"number": s.port});
                    if ports.iter().any(|p| p.get("port") == Some(&number)) {
                        notes.push(format!(
                            "api {:?}: {}:{} is also a server of api {first:?}, whose settings win",
                            b.api, s.host, s.port
                        ));
                    } else {
                        ports.push(Value::Object(port_policy));
                    }
                }
                None => hosts.push((
                    s.host.clone(),
                    b.api.clone(),
                    vec![Value::Object(port_policy)],
                )),
            }
        }
    }
    let rules = hosts
        .into_iter()
        .map(|(host, api, ports)| {
            json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {
                    "name": format!("api-warden-{}-{}", dns_label(&api), dns_label(&host)),
                    "namespace": namespace
                },
                "spec": {"host": host, "trafficPolicy": {"portLevelSettings": ports}}
            })
        })
        .collect();
    (rules, notes)
}

fn traffic_policy(b: &Backend) -> Map<String, Value> {
    let mut p = Map::new();
    if b.tls {
        p.insert("tls".into(), json!({"mode": "SIMPLE"}));
    }
    if let Some(cookie) = &b.sticky_cookie {
        p.insert(
            "loadBalancer".into(),
            json!({"consistentHash": {"httpCookie": {"name": cookie, "ttl": "0s"}}}),
        );
    }
    if let Some(h) = &b.health {
        p.insert(
            "outlierDetection".into(),
            json!({
                "consecutive5xxErrors": h.retries,
                "interval": format!("{}s", h.interval_s),
                "baseEjectionTime": format!("{}s", h.interval_s)
            }),
        );
    }
    p
}

/// A Kubernetes name part: lowercase, `_` and other characters → `-`.
fn dns_label(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.trim_matches('-').to_string()
}
