//! The Envoy bootstrap for an ASE folder: one listener with api-warden (the wasm filter, the
//! JSON access log carrying the record), one virtual host per hostname, one route per API, one
//! cluster per API with servers, and the sideband cluster (ASE's or PingAuthorize's) when asked.
//! Built as a JSON value.

use serde_json::{json, Map, Value};

use super::backend::Backend;

/// Where things listen and what the filter loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvoyOptions {
    /// The listener (default `0.0.0.0:10000`).
    pub listen: (String, u16),
    /// Envoy's admin interface, only when asked (keep it on an internal address).
    pub admin: Option<(String, u16)>,
    /// The api-warden `.wasm` file.
    pub wasm: String,
    /// The access log file (default `/dev/stdout`).
    pub access_log: String,
    /// ASE's sideband endpoints, primary first (empty = no sideband cluster).
    pub sideband: Vec<(String, u16)>,
    /// PingAuthorize's Sideband API instead, when asked.
    pub pingauthorize: Option<PingAuthorize>,
}

/// Where PingAuthorize's Sideband API is and the shared secret it expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingAuthorize {
    /// Its endpoints, primary first.
    pub servers: Vec<(String, u16)>,
    /// The shared secret (`sideband.secret`).
    pub secret: String,
    /// Plain HTTP instead of TLS (PingAuthorize serves the Sideband API over HTTPS).
    pub plaintext: bool,
}

/// The name of the cluster of API `api`.
pub fn cluster_name(api: &str) -> String {
    format!("api_{api}")
}

/// The cluster of ASE's sideband API.
pub const SIDEBAND_CLUSTER: &str = "ase_sideband";

/// The cluster of PingAuthorize's Sideband API.
pub const PINGAUTHORIZE_CLUSTER: &str = "pingauthorize_sideband";

/// The access-log line: the record and the request facts the record leaves out (the authority
/// and scheme `api-warden discover` groups by).
pub fn access_log_format() -> Value {
    json!({
        "record": "%FILTER_STATE(wasm.api_warden.record:PLAIN)%",
        "authority": "%REQ(:AUTHORITY)%",
        "scheme": "%REQ(X-FORWARDED-PROTO)%",
        "response_code": "%RESPONSE_CODE%",
        "start_time": "%START_TIME%"
    })
}

/// The filter's configuration as the bootstrap carries it: its `sideband` section is set to
/// [`SIDEBAND_CLUSTER`] when ASE's endpoints are given, or to PingAuthorize's service,
/// [`PINGAUTHORIZE_CLUSTER`], its authority and the secret, unless it has one.
pub fn plugin_config(plugin_config: &Value, o: &EnvoyOptions) -> Value {
    let mut cfg = plugin_config.clone();
    let section = match &o.pingauthorize {
        Some(p) => p.servers.first().map(|(host, _)| {
            json!({"service": "pingauthorize", "cluster": PINGAUTHORIZE_CLUSTER,
                   "authority": host, "secret": p.secret})
        }),
        None if !o.sideband.is_empty() => Some(json!({"cluster": SIDEBAND_CLUSTER})),
        None => None,
    };
    if let (Some(top), Some(section)) = (cfg.as_object_mut(), section) {
        top.entry("sideband").or_insert(section);
    }
    cfg
}

/// The whole bootstrap, with `plugin_config` as [`plugin_config`] completes it.
pub fn bootstrap(backends: &[Backend], plugin_config: &Value, o: &EnvoyOptions) -> Value {
    let cfg = self::plugin_config(plugin_config, o);
    let mut clusters: Vec<Value> = backends
        .iter()
        .filter(|b| !b.servers.is_empty())
        .map(cluster)
        .collect();
    if !o.sideband.is_empty() {
        clusters.push(sideband_cluster(SIDEBAND_CLUSTER, &o.sideband, false));
    }
    if let Some(p) = &o.pingauthorize {
        clusters.push(sideband_cluster(
            PINGAUTHORIZE_CLUSTER,
            &p.servers,
            !p.plaintext,
        ));
    }
    let mut top = Map::new();
    if let Some((addr, port)) = &o.admin {
        top.insert("admin".into(), json!({"address": socket(addr, *port)}));
    }
    top.insert(
        "static_resources".into(),
        json!({"listeners": [listener(backends, &cfg, o)], "clusters": clusters}),
    );
    Value::Object(top)
}

fn socket(addr: &str, port: u16) -> Value {
    json!({"socket_address": {"address": addr, "port_value": port}})
}

fn listener(backends: &[Backend], cfg: &Value, o: &EnvoyOptions) -> Value {
    let hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "api_warden",
        "use_remote_address": true,
        "access_log": [{
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": o.access_log,
                "log_format": {"json_format": access_log_format()}
            }
        }],
        "route_config": {"name": "apis", "virtual_hosts": virtual_hosts(backends)},
        "http_filters": [wasm_filter(cfg, &o.wasm), {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
        }]
    });
    json!({
        "name": "api_warden",
        "address": socket(&o.listen.0, o.listen.1),
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": hcm
        }]}]
    })
}

/// The api-warden filter, as `envoy/templates/wasm-filter.yaml` has it.
pub fn wasm_filter(cfg: &Value, wasm: &str) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "api_warden",
                "root_id": "api_warden",
                "allow_on_headers_stop_iteration": true,
                "failure_policy": "FAIL_RELOAD",
                "vm_config": {
                    "vm_id": "api_warden",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm}}
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": cfg.to_string()
                }
            }
        }
    })
}

/// One virtual host per hostname; a specific host also gets the `*` APIs' routes after its own
/// (the filter tries `*` APIs when none of the host's matches). Longest url first.
fn virtual_hosts(backends: &[Backend]) -> Vec<Value> {
    let mut hosts: Vec<&str> = backends.iter().map(|b| b.hostname.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    // `*` last, as the catch-all.
    hosts.sort_by_key(|h| *h == "*");
    let by_url = |host: &str| {
        let mut list: Vec<&Backend> = backends.iter().filter(|b| b.hostname == host).collect();
        list.sort_by(|a, b| b.url.len().cmp(&a.url.len()).then(a.url.cmp(&b.url)));
        list
    };
    hosts
        .iter()
        .map(|host| {
            let mut apis = by_url(host);
            if *host != "*" {
                apis.extend(by_url("*"));
            }
            let domains = if *host == "*" {
                json!(["*"])
            } else {
                json!([host, format!("{host}:*")])
            };
            let name = if *host == "*" { "any_host" } else { host };
            json!({
                "name": name,
                "domains": domains,
                "routes": apis.iter().map(|b| route(b)).collect::<Vec<_>>()
            })
        })
        .collect()
}

fn route(b: &Backend) -> Value {
    let matcher = if b.url == "/" {
        json!({"prefix": "/"})
    } else {
        json!({"path_separated_prefix": b.url})
    };
    if b.servers.is_empty() {
        return json!({
            "name": b.api,
            "match": matcher,
            "direct_response": {
                "status": 503,
                "body": {"inline_string": format!("api-warden: API {} has no servers\n", b.api)}
            }
        });
    }
    let mut action = Map::new();
    action.insert("cluster".into(), json!(cluster_name(&b.api)));
    if let Some(internal) = &b.rewrite {
        let rewrite = if b.url == "/" && !internal.ends_with('/') {
            format!("{internal}/")
        } else {
            internal.clone()
        };
        action.insert("prefix_rewrite".into(), json!(rewrite));
    }
    if let Some(cookie) = &b.sticky_cookie {
        action.insert("hash_policy".into(), json!([{"cookie": {"name": cookie}}]));
    }
    if b.websocket {
        action.insert(
            "upgrade_configs".into(),
            json!([{"upgrade_type": "websocket"}]),
        );
    }
    json!({"name": b.api, "match": matcher, "route": action})
}

fn is_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

fn endpoints(name: &str, servers: &[(String, u16, u32)]) -> Value {
    let mut by_priority: Vec<(u32, Vec<Value>)> = Vec::new();
    for (host, port, priority) in servers {
        let ep = json!({"endpoint": {"address": socket(host, *port)}});
        match by_priority.iter_mut().find(|(p, _)| p == priority) {
            Some((_, list)) => list.push(ep),
            None => by_priority.push((*priority, vec![ep])),
        }
    }
    let eps: Vec<Value> = by_priority
        .into_iter()
        .map(|(p, list)| {
            if p == 0 {
                json!({"lb_endpoints": list})
            } else {
                json!({"priority": p, "lb_endpoints": list})
            }
        })
        .collect();
    json!({"cluster_name": name, "endpoints": eps})
}

fn cluster(b: &Backend) -> Value {
    let name = cluster_name(&b.api);
    let all_ip = b.servers.iter().all(|s| is_ip(&s.host));
    let list: Vec<(String, u16, u32)> = b
        .servers
        .iter()
        .map(|s| (s.host.clone(), s.port, 0))
        .collect();
    let mut c = Map::new();
    c.insert("name".into(), json!(name));
    c.insert(
        "type".into(),
        json!(if all_ip { "STATIC" } else { "STRICT_DNS" }),
    );
    c.insert("connect_timeout".into(), json!("5s"));
    c.insert("load_assignment".into(), endpoints(&name, &list));
    if b.sticky_cookie.is_some() {
        c.insert("lb_policy".into(), json!("RING_HASH"));
    }
    if let Some(max) = b.max_connections() {
        c.insert(
            "circuit_breakers".into(),
            json!({"thresholds": [{"max_connections": max}]}),
        );
    }
    if let Some(h) = &b.health {
        let headers: Vec<Value> = h
            .headers
            .iter()
            .map(|(k, v)| json!({"header": {"key": k, "value": v}}))
            .collect();
        let mut http = Map::new();
        http.insert("path".into(), json!(h.path));
        if !headers.is_empty() {
            http.insert("request_headers_to_add".into(), json!(headers));
        }
        c.insert(
            "health_checks".into(),
            json!([{
                "timeout": format!("{}s", h.interval_s.min(5)),
                "interval": format!("{}s", h.interval_s),
                // ASE checks at its interval whatever the traffic (Envoy's default slows to 60 s
                // while a cluster is idle).
                "no_traffic_interval": format!("{}s", h.interval_s),
                "unhealthy_threshold": h.retries,
                "healthy_threshold": 1,
                "http_health_check": http
            }]),
        );
        // As ASE does, a server that fails its health check gets no traffic, even when it is the
        // last one (Envoy's default panic threshold would send traffic to it anyway).
        c.insert(
            "common_lb_config".into(),
            json!({"healthy_panic_threshold": {"value": 0.0}}),
        );
    }
    if b.tls {
        let hosts = b.servers.iter().map(|s| s.host.as_str());
        c.insert("transport_socket".into(), upstream_tls(hosts));
    }
    Value::Object(c)
}

/// A sideband service's cluster: its endpoints by priority, ejected after 3 consecutive 5xx,
/// over TLS when `tls` (SNI = the first server named by DNS).
fn sideband_cluster(name: &str, servers: &[(String, u16)], tls: bool) -> Value {
    let all_ip = servers.iter().all(|(h, _)| is_ip(h));
    let list: Vec<(String, u16, u32)> = servers
        .iter()
        .enumerate()
        .map(|(i, (h, p))| (h.clone(), *p, u32::from(i > 0)))
        .collect();
    let mut c = json!({
        "name": name,
        "type": if all_ip { "STATIC" } else { "STRICT_DNS" },
        "connect_timeout": "1s",
        "load_assignment": endpoints(name, &list),
        "outlier_detection": {"consecutive_5xx": 3, "base_ejection_time": "10s"}
    });
    if let (true, Some(obj)) = (tls, c.as_object_mut()) {
        obj.insert(
            "transport_socket".into(),
            upstream_tls(servers.iter().map(|(h, _)| h.as_str())),
        );
    }
    c
}

/// An upstream TLS transport socket, SNI = the first of `hosts` that is a DNS name.
fn upstream_tls<'a>(mut hosts: impl Iterator<Item = &'a str>) -> Value {
    let mut tls = Map::new();
    tls.insert(
        "@type".into(),
        json!("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"),
    );
    if let Some(h) = hosts.find(|h| !is_ip(h)) {
        tls.insert("sni".into(), json!(h));
    }
    json!({"name": "envoy.transport_sockets.tls", "typed_config": tls})
}
