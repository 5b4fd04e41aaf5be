//! End-to-end tests of the analytics record through real Envoy: the access-log line carries every
//! contract field for allowed, blocked, unmatched and admin (local-reply) requests; records are
//! exported in JSON-array batches exactly once, survive a failing collector, are dropped (and
//! counted) when the collector is gone, and never affect client requests; redaction; stats.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::harness::{self, eventually, Envoy, Jwt, LogLine, Opts, TestServer};

const ADMIN_KEY: &str = "records-admin-key-0123456789";

/// The plugin configuration: one API `shop`, an API-key deny list, the admin API, and the
/// `analytics` object given.
fn plugin(analytics: Value) -> String {
    json!({
        "apis": [{ "name": "shop", "api_metadata": {
            "protocol": "http", "url": "/shop", "hostname": "*", "cookie": "session",
            "oauth2_access_token": true, "is_token_mandatory": false,
            "apikey_header": "x-api-key", "enable_blocking": true,
            "jwt": { "location": "h:authorization:bearer", "username": "username",
                     "clientid": "client_id" } } }],
        "deny_list": { "api_key": ["stolen-key"] },
        "admin": { "path": "/_api_warden", "key": ADMIN_KEY },
        "analytics": analytics
    })
    .to_string()
}

/// An HS256 JWT made by a real JWT library.
fn jwt(claims: Value) -> String {
    Jwt::hs256(&claims, b"records-secret")
}

fn sha(v: &str) -> String {
    let hex: String = Sha256::digest(v.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Parse `YYYY-MM-DDTHH:MM:SS.mmmZ` (exactly that shape) into Unix milliseconds.
fn parse_timestamp(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss, ms) = (n(11..13)?, n(14..16)?, n(17..19)?, n(20..23)?);
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs * 1000 + ms).ok()
}

/// Every key of the contract is present (values may be null) and the shapes are right.
fn assert_contract_shape(l: &LogLine) {
    let r = &l.record;
    for k in [
        "action",
        "service",
        "domain",
        "identityProvider",
        "attributes",
        "ase",
        "timestamp",
        "duration_ms",
        "bytes_in",
        "bytes_out",
    ] {
        assert!(r.get(k).is_some(), "record lacks {k}: {}", l.raw);
    }
    assert_eq!(r["domain"], Value::Null);
    let a = r["attributes"].as_object().expect("attributes object");
    for k in [
        "HttpRequest.IPAddress",
        "HttpRequest.RequestURI",
        "HttpRequest.ResourcePath",
        "HttpRequest.QueryParameters",
        "HttpRequest.RequestHeaders",
        "HttpRequest.CorrelationId",
        "HttpRequest.ResponseStatus",
        "HttpRequest.ResponseHeaders",
        "Gateway",
    ] {
        assert!(a.contains_key(k), "attributes lack {k}: {}", l.raw);
    }
    assert!(
        !a.contains_key("HttpRequest.ClientCertificate"),
        "no mTLS here: {}",
        l.raw
    );
    for k in ["HttpRequest.RequestHeaders", "HttpRequest.ResponseHeaders"] {
        for (name, values) in a[k].as_object().expect("header map") {
            assert_eq!(name, &name.to_ascii_lowercase(), "{k}");
            assert!(!name.starts_with(':'), "{k}: pseudo-header {name}");
            let values = values.as_array().expect("array of values");
            assert!(values.iter().all(Value::is_string), "{k}.{name}");
        }
    }
    for (_, values) in a["HttpRequest.QueryParameters"]
        .as_object()
        .expect("query map")
    {
        assert!(values
            .as_array()
            .is_some_and(|v| v.iter().all(Value::is_string)));
    }
    assert!(a["Gateway"].is_object());
    let ase = r["ase"].as_object().expect("ase object");
    for k in ["api", "decision", "reason", "client", "jwt"] {
        assert!(ase.contains_key(k), "ase lacks {k}: {}", l.raw);
    }
    assert!(ase["client"].is_object());
    assert!(matches!(ase["decision"].as_str(), Some("allow" | "block")));
    let ts = r["timestamp"].as_str().expect("timestamp text");
    let t =
        parse_timestamp(ts).unwrap_or_else(|| panic!("timestamp {ts:?} is not RFC 3339 with ms"));
    let now = now_ms();
    assert!(t <= now && now - t < 60_000, "timestamp {ts} far from now");
    for k in ["duration_ms", "bytes_in", "bytes_out"] {
        assert!(r[k].is_u64(), "{k}: {}", r[k]);
    }
    assert!(r["duration_ms"].as_u64().unwrap() < 10_000);
    assert_eq!(
        r["attributes"]["HttpRequest.ResponseStatus"],
        json!(l.status),
        "ResponseStatus is the status Envoy logged"
    );
}

#[test]
fn allowed_request_record_has_every_contract_field() {
    let envoy = Envoy::start(&plugin(json!({})));
    let token = jwt(
        json!({"username": "alice", "client_id": "app-1", "sub": "u-1",
                           "iss": "https://idp.example", "aud": "shop", "scope": "read write",
                           "exp": 4_102_444_800u64}),
    );
    let bearer = format!("Bearer {token}");
    let r = envoy.get(
        "/shop/items?id=1&tag=a&tag=b",
        &[
            ("host", "shop.example.com"),
            ("user-agent", "records-e2e/1"),
            ("x-request-id", "rec-allowed-1"),
            ("authorization", &bearer),
            ("cookie", "session=s-1; theme=dark"),
            ("x-api-key", "key-1"),
            ("X-Repeat", "one"),
            ("x-repeat", "two"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    let l = envoy.record(1);
    assert_contract_shape(&l);
    let at = |p: &str| l.at(p);
    assert_eq!(at("/action"), "outbound-GET");
    assert_eq!(at("/service"), "shop");
    assert_eq!(at("/identityProvider"), "jwt:h:authorization:bearer");
    assert_eq!(at("/attributes/HttpRequest.IPAddress"), "127.0.0.1");
    assert_eq!(
        at("/attributes/HttpRequest.RequestURI"),
        "/shop/items?id=1&tag=a&tag=b"
    );
    assert_eq!(at("/attributes/HttpRequest.ResourcePath"), "/items");
    assert_eq!(
        at("/attributes/HttpRequest.QueryParameters"),
        json!({"id": ["1"], "tag": ["a", "b"]})
    );
    let h = |name: &str| at(&format!("/attributes/HttpRequest.RequestHeaders/{name}"));
    assert_eq!(h("user-agent"), json!(["records-e2e/1"]));
    assert_eq!(h("x-request-id"), json!(["rec-allowed-1"]));
    assert_eq!(h("authorization"), json!([bearer]));
    assert_eq!(h("cookie"), json!(["session=s-1; theme=dark"]));
    assert_eq!(h("x-api-key"), json!(["key-1"]));
    assert_eq!(h("x-repeat"), json!(["one", "two"]));
    assert_eq!(h("host"), Value::Null, ":authority is a pseudo-header");
    assert_eq!(at("/attributes/HttpRequest.CorrelationId"), "rec-allowed-1");
    assert_eq!(
        at("/attributes/HttpRequest.AccessToken"),
        json!({"access_token": token, "active": true, "audience": ["shop"], "client_id": "app-1",
               "expiration": "2100-01-01T00:00:00Z", "issuer": "https://idp.example",
               "scope": ["read", "write"], "subject": "u-1", "token_type": "bearer",
               "user_token": true, "username": "alice"})
    );
    assert_eq!(at("/attributes/HttpRequest.ResponseStatus"), 200);
    assert_eq!(
        at("/attributes/HttpRequest.ResponseHeaders/content-type"),
        json!(["text/plain"])
    );
    assert_eq!(
        at("/attributes/Gateway"),
        json!({"_BasePath": "/shop", "_TrailingPath": "/items"})
    );
    assert_eq!(
        at("/ase"),
        json!({"api": "shop", "decision": "allow", "reason": null,
               "client": {"ip": "127.0.0.1", "token": token, "api_key": "key-1",
                          "cookie": "s-1", "username": "alice", "client_id": "app-1"},
               "jwt": {"status": "ok"}})
    );
    assert!(
        at("/bytes_out").as_u64().unwrap() >= "upstream ok".len() as u64,
        "{}",
        l.raw
    );
    assert_eq!(l.username, "alice");
    assert_eq!(l.client_ip, "127.0.0.1");
}

#[test]
fn request_body_size_is_counted() {
    let envoy = Envoy::start(&plugin(json!({})));
    let body = vec![b'x'; 1000];
    let r = harness::request(
        envoy.port,
        "POST",
        "/shop/orders",
        &[("x-request-id", "rec-post")],
        Some(&body),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let l = envoy.record(1);
    assert_contract_shape(&l);
    assert_eq!(l.at("/action"), "outbound-POST");
    assert!(l.at("/bytes_in").as_u64().unwrap() >= 1000, "{}", l.raw);
}

#[test]
fn blocked_request_record() {
    let envoy = Envoy::start(&plugin(json!({})));
    let r = envoy.get(
        "/shop/items",
        &[
            ("x-api-key", "stolen-key"),
            ("x-request-id", "rec-blocked-1"),
        ],
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.body_text(), "Unauthorized");
    let l = envoy.record(1);
    assert_eq!(l.status, 403);
    assert_contract_shape(&l);
    assert_eq!(l.at("/service"), "shop");
    assert_eq!(l.at("/identityProvider"), Value::Null, "no JWT was sent");
    assert_eq!(l.at("/ase/decision"), "block");
    assert_eq!(l.at("/ase/reason"), "deny_list:api_key");
    assert_eq!(l.at("/ase/list_source"), "config");
    assert_eq!(l.at("/ase/client/api_key"), "stolen-key");
    assert_eq!(l.at("/ase/jwt"), json!({"status": "absent"}));
    assert_eq!(l.at("/attributes/HttpRequest.ResponseStatus"), 403);
    assert_eq!(
        l.at("/attributes/HttpRequest.CorrelationId"),
        "rec-blocked-1"
    );
    assert_eq!(
        l.at("/attributes/Gateway"),
        json!({"_BasePath": "/shop", "_TrailingPath": "/items"})
    );
    assert!(
        envoy.upstream_paths().is_empty(),
        "blocked before the upstream"
    );
}

#[test]
fn unmatched_request_record() {
    let envoy = Envoy::start(&plugin(json!({})));
    let r = envoy.get(
        "/elsewhere/x?q=1",
        &[
            ("x-api-key", "stolen-key"),
            ("x-request-id", "rec-unmatched"),
        ],
    );
    assert_eq!(r.status, 200, "unmatched requests are never blocked");
    let l = envoy.record(1);
    assert_contract_shape(&l);
    assert_eq!(l.at("/service"), Value::Null);
    assert_eq!(l.at("/identityProvider"), Value::Null);
    assert_eq!(l.at("/attributes/Gateway"), json!({}));
    assert_eq!(l.at("/attributes/HttpRequest.ResourcePath"), Value::Null);
    assert_eq!(
        l.at("/attributes/HttpRequest.QueryParameters"),
        json!({"q": ["1"]})
    );
    assert_eq!(l.at("/ase/api"), Value::Null);
    assert_eq!(l.at("/ase/decision"), "allow");
    assert_eq!(l.at("/ase/reason"), Value::Null);
    assert_eq!(l.at("/ase/client"), json!({"ip": "127.0.0.1"}));
    assert_eq!(l.at("/ase/jwt"), Value::Null);
    assert_eq!(
        l.at("/attributes/HttpRequest.CorrelationId"),
        "rec-unmatched"
    );
}

#[test]
fn admin_local_reply_records() {
    let envoy = Envoy::start(&plugin(json!({})));
    let ok = envoy.get(
        "/_api_warden/deny_list?type=api_key",
        &[
            ("x-api-warden-admin-key", ADMIN_KEY),
            ("x-request-id", "rec-admin-ok"),
        ],
    );
    assert_eq!(ok.status, 200, "{}", ok.body_text());
    let listed: Value = serde_json::from_slice(&ok.body).unwrap();
    assert_eq!(listed["api_key"][0]["value"], "stolen-key");
    let denied = envoy.get(
        "/_api_warden/deny_list",
        &[("x-request-id", "rec-admin-401")],
    );
    assert_eq!(denied.status, 401);
    let lines = envoy.records(2);
    let by_id: HashMap<String, &LogLine> = lines
        .iter()
        .map(|l| {
            let id = l.at("/attributes/HttpRequest.CorrelationId");
            (id.as_str().unwrap_or_default().to_string(), l)
        })
        .collect();
    for (id, status) in [("rec-admin-ok", 200), ("rec-admin-401", 401)] {
        let l = by_id
            .get(id)
            .unwrap_or_else(|| panic!("no record for {id}"));
        assert_eq!(l.status, status);
        assert_contract_shape(l);
        assert_eq!(l.at("/ase/admin"), true);
        assert_eq!(l.at("/service"), Value::Null);
        assert_eq!(l.at("/action"), "outbound-GET");
        assert_eq!(
            l.at("/attributes/HttpRequest.RequestURI"),
            if status == 200 {
                "/_api_warden/deny_list?type=api_key"
            } else {
                "/_api_warden/deny_list"
            }
        );
    }
    let ok_line = by_id["rec-admin-ok"];
    assert!(
        !ok_line.raw.contains(ADMIN_KEY),
        "the admin key must not reach the access log: {}",
        ok_line.raw
    );
    assert_eq!(
        ok_line.at("/attributes/HttpRequest.RequestHeaders/x-api-warden-admin-key"),
        json!([sha(ADMIN_KEY)])
    );
    assert!(envoy.upstream_paths().is_empty());
}

#[test]
fn hash_redaction_is_visible_in_the_access_log() {
    let envoy = Envoy::start(&plugin(json!({"redact": "hash"})));
    let token = jwt(json!({"username": "alice", "client_id": "app-1"}));
    let bearer = format!("Bearer {token}");
    let r = envoy.get(
        "/shop/items?id=7",
        &[
            ("authorization", &bearer),
            ("cookie", "session=s-secret; theme=dark"),
            ("x-api-key", "key-secret"),
            ("user-agent", "records-e2e"),
        ],
    );
    assert_eq!(r.status, 200);
    let l = envoy.record(1);
    assert_contract_shape(&l);
    for secret in [token.as_str(), "s-secret", "key-secret"] {
        assert!(!l.raw.contains(secret), "{secret} is in the log: {}", l.raw);
    }
    assert_eq!(l.at("/ase/client/token"), sha(&token));
    assert_eq!(l.at("/ase/client/api_key"), sha("key-secret"));
    assert_eq!(l.at("/ase/client/cookie"), sha("s-secret"));
    assert_eq!(
        l.at("/ase/client/username"),
        "alice",
        "usernames are not redacted"
    );
    let h = |name: &str| l.at(&format!("/attributes/HttpRequest.RequestHeaders/{name}"));
    assert_eq!(h("authorization"), json!([sha(&bearer)]));
    assert_eq!(h("cookie"), json!([sha("session=s-secret; theme=dark")]));
    assert_eq!(h("x-api-key"), json!([sha("key-secret")]));
    assert_eq!(h("user-agent"), json!(["records-e2e"]));
    assert_eq!(
        l.at("/attributes/HttpRequest.AccessToken/access_token"),
        sha(&token)
    );
    assert_eq!(
        l.at("/attributes/HttpRequest.AccessToken/username"),
        "alice"
    );
}

#[test]
fn stats_are_in_admin_stats() {
    let envoy = Envoy::start(&plugin(json!({})));
    assert_eq!(envoy.get("/shop/a", &[]).status, 200);
    assert_eq!(
        envoy.get("/shop/a", &[("x-api-key", "stolen-key")]).status,
        403
    );
    assert_eq!(envoy.get("/elsewhere", &[]).status, 200);
    assert_eq!(
        envoy
            .get(
                "/_api_warden/deny_list",
                &[("x-api-warden-admin-key", "wrong-key")]
            )
            .status,
        401
    );
    envoy.records(4);
    let want = [
        ("wasmcustom.api_warden.requests.total", 3),
        ("wasmcustom.api_warden.requests.allowed", 2),
        ("wasmcustom.api_warden.requests.blocked", 1),
        ("wasmcustom.api_warden.requests.unmatched", 1),
        ("wasmcustom.api_warden.requests.monitored", 0),
        ("wasmcustom.api_warden.blocked.deny_list.api_key", 1),
        ("wasmcustom.api_warden.blocked.deny_list.ip", 0),
        ("wasmcustom.api_warden.admin.requests", 1),
        ("wasmcustom.api_warden.admin.unauthorized", 1),
    ];
    let ok = eventually(5, || {
        want.iter().all(|(k, v)| envoy.try_stat(k) == Some(*v))
    });
    let text = envoy.admin_get("/stats?filter=wasmcustom");
    assert!(ok, "stats differ from {want:?}:\n{text}");
    assert!(
        envoy
            .try_stat("wasmcustom.api_warden.config.loads")
            .is_some_and(|n| n >= 1),
        "{text}"
    );
    for name in [
        "wasmcustom.api_warden.jwt.invalid",
        "wasmcustom.api_warden.export.records_sent",
        "wasmcustom.api_warden.export.records_dropped",
        "wasmcustom.api_warden.attack_list.polls_ok",
    ] {
        assert!(envoy.try_stat(name).is_some(), "{name} missing:\n{text}");
    }
}

/// A collector that accepts batches while `healthy` and answers 500 otherwise; accepted bodies
/// are kept.
struct Collector {
    server: TestServer,
    accepted: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Collector {
    fn start() -> Collector {
        let server = TestServer::start(|_| (500, b"{}".to_vec()));
        let c = Collector {
            server,
            accepted: Arc::new(Mutex::new(Vec::new())),
        };
        c.healthy(true);
        c
    }

    fn healthy(&self, ok: bool) {
        let accepted = self.accepted.clone();
        self.server.set(move |r| {
            if ok && r.method == "POST" {
                accepted.lock().unwrap().push(r.body.clone());
                (200, b"{}".to_vec())
            } else {
                (500, b"{\"error\":\"down\"}".to_vec())
            }
        });
    }

    /// Every record the collector accepted, batch by batch (each batch must be a JSON array).
    fn batches(&self) -> Vec<Vec<Value>> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .map(|b| {
                let v: Value = serde_json::from_slice(b).unwrap_or_else(|e| {
                    panic!("batch is not JSON ({e}): {}", String::from_utf8_lossy(b))
                });
                match v {
                    Value::Array(items) => items,
                    other => panic!("batch is not a JSON array: {other}"),
                }
            })
            .collect()
    }

    /// Accepted records by correlation id, with how many times each arrived.
    fn by_id(&self) -> HashMap<String, (usize, Value)> {
        let mut out: HashMap<String, (usize, Value)> = HashMap::new();
        for r in self.batches().into_iter().flatten() {
            let id = r["attributes"]["HttpRequest.CorrelationId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            out.entry(id).or_insert((0, r.clone())).0 += 1;
        }
        out
    }

    fn has_all(&self, ids: &[String]) -> bool {
        let got = self.by_id();
        ids.iter().all(|id| got.contains_key(id))
    }
}

fn export_opts(cluster: String) -> Opts {
    Opts {
        extra_clusters: cluster,
        ..Opts::default()
    }
}

fn export_config(extra: Value) -> String {
    let mut a = json!({"cluster": "collector", "path": "/records", "batch_size": 5,
                       "flush_interval_ms": 200});
    if let (Some(a), Some(extra)) = (a.as_object_mut(), extra.as_object()) {
        a.extend(extra.clone());
    }
    plugin(a)
}

/// Send `n` requests with ids `<prefix>-<i>`, all of which must pass; returns the ids.
fn send(envoy: &Envoy, prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let path = if i % 3 == 2 {
                "/elsewhere"
            } else {
                "/shop/items"
            };
            let started = Instant::now();
            let r = envoy.get(path, &[("x-request-id", &id)]);
            assert_eq!(r.status, 200, "{id}: {}", r.body_text());
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{id} took {:?}",
                started.elapsed()
            );
            id
        })
        .collect()
}

#[test]
fn export_delivers_every_record_exactly_once_in_json_array_batches() {
    let collector = Collector::start();
    let envoy = Envoy::start_with(
        &export_config(json!({})),
        export_opts(collector.server.cluster("collector")),
    );
    let ids = send(&envoy, "exp", 12);
    // A blocked request is exported too.
    assert_eq!(
        envoy
            .get(
                "/shop/x",
                &[("x-request-id", "exp-blocked"), ("x-api-key", "stolen-key")]
            )
            .status,
        403
    );
    let mut all = ids.clone();
    all.push("exp-blocked".into());
    assert!(
        eventually(8, || collector.has_all(&all)),
        "collector got {:?}",
        collector.by_id().keys().collect::<Vec<_>>()
    );
    // Let a few more flush intervals pass: nothing may arrive twice.
    std::thread::sleep(Duration::from_millis(600));
    let got = collector.by_id();
    assert_eq!(got.len(), all.len(), "only our records: {:?}", got.keys());
    for id in &all {
        assert_eq!(got[id].0, 1, "{id} arrived {} times", got[id].0);
    }
    for b in collector.batches() {
        assert!(!b.is_empty() && b.len() <= 5, "batch of {}", b.len());
    }
    for r in collector.server.requests() {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/records");
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| k == "content-type" && v == "application/json"),
            "{:?}",
            r.headers
        );
    }
    // The exported record is the access-log record.
    let lines = envoy.records(all.len());
    for l in &lines {
        let id = l.at("/attributes/HttpRequest.CorrelationId");
        let id = id.as_str().unwrap();
        assert_eq!(got[id].1, l.record, "{id}");
    }
    assert_eq!(got["exp-blocked"].1["ase"]["reason"], "deny_list:api_key");
    assert!(eventually(3, || envoy
        .try_stat("wasmcustom.api_warden.export.records_sent")
        == Some(all.len() as u64)));
    assert_eq!(
        envoy.try_stat("wasmcustom.api_warden.export.records_dropped"),
        Some(0)
    );
}

#[test]
fn export_from_two_workers_is_still_exactly_once() {
    let collector = Collector::start();
    let opts = Opts {
        concurrency: 2,
        ..export_opts(collector.server.cluster("collector"))
    };
    let envoy = Envoy::start_with(&export_config(json!({})), opts);
    let ids = send(&envoy, "two", 16);
    assert!(
        eventually(8, || collector.has_all(&ids)),
        "collector got {:?}",
        collector.by_id().keys().collect::<Vec<_>>()
    );
    std::thread::sleep(Duration::from_millis(600));
    let got = collector.by_id();
    assert_eq!(got.len(), ids.len(), "{:?}", got.keys());
    for id in &ids {
        assert_eq!(got[id].0, 1, "{id} arrived {} times", got[id].0);
    }
}

#[test]
fn failing_collector_delays_nothing_and_records_arrive_after_it_recovers() {
    let collector = Collector::start();
    collector.healthy(false);
    let envoy = Envoy::start_with(
        &export_config(json!({})),
        export_opts(collector.server.cluster("collector")),
    );
    let ids = send(&envoy, "fail", 8);
    // The exporter keeps trying while the collector fails.
    assert!(
        eventually(5, || collector.server.requests().len() >= 3),
        "retries: {}",
        collector.server.requests().len()
    );
    assert!(collector.batches().is_empty());
    let more = send(&envoy, "fail-more", 3);
    collector.healthy(true);
    let mut all = ids;
    all.extend(more);
    assert!(
        eventually(8, || collector.has_all(&all)),
        "after recovery the collector got {:?}",
        collector.by_id().keys().collect::<Vec<_>>()
    );
    std::thread::sleep(Duration::from_millis(600));
    let got = collector.by_id();
    for id in &all {
        assert_eq!(got[id].0, 1, "{id} accepted {} times", got[id].0);
    }
    assert_eq!(got.len(), all.len());
    let retried = envoy
        .try_stat("wasmcustom.api_warden.export.batches_retried")
        .unwrap_or(0);
    assert!(retried >= 2, "batches_retried {retried}");
    assert_eq!(
        envoy.try_stat("wasmcustom.api_warden.export.records_dropped"),
        Some(0)
    );
}

#[test]
fn collector_gone_drops_the_oldest_records_and_counts_them() {
    let closed = harness::yaml::cluster("collector", harness::free_port());
    let config = export_config(
        json!({"batch_size": 2, "max_buffered": 3, "flush_interval_ms": 100,
                                      "timeout_ms": 500}),
    );
    let envoy = Envoy::start_with(&config, export_opts(closed));
    let started = Instant::now();
    send(&envoy, "gone", 10);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "requests slowed down: {:?}",
        started.elapsed()
    );
    assert_eq!(envoy.records(10).len(), 10, "every request is still logged");
    let dropped = || {
        envoy
            .try_stat("wasmcustom.api_warden.export.records_dropped")
            .unwrap_or(0)
    };
    assert!(
        eventually(5, || dropped() >= 7),
        "records_dropped = {} (10 records, at most 3 buffered)\n{}",
        dropped(),
        envoy.admin_get("/stats?filter=wasmcustom")
    );
    assert_eq!(
        envoy.try_stat("wasmcustom.api_warden.export.records_sent"),
        Some(0)
    );
    assert!(
        envoy
            .try_stat("wasmcustom.api_warden.export.batches_retried")
            .unwrap_or(0)
            >= 1
    );
    // Still serving.
    assert_eq!(envoy.get("/shop/after", &[]).status, 200);
}

#[test]
fn filter_state_setting_chooses_what_access_logs_see_and_enforcement_is_unchanged() {
    // The harness's access log: record, status, username, client_ip (tab-separated).
    for (setting, record, scalars) in [("record", true, false), ("none", false, false)] {
        let envoy = Envoy::start(&plugin(json!({ "filter_state": setting })));
        let token = jwt(json!({"username": "ann", "client_id": "app"}));
        let bearer = format!("Bearer {token}");
        let ok = envoy.get("/shop/items", &[("authorization", &bearer)]);
        assert_eq!(ok.status, 200, "{setting}");
        let blocked = envoy.get("/shop/items", &[("x-api-key", "stolen-key")]);
        assert_eq!(blocked.status, 403, "{setting}: still enforced");
        let lines = envoy.log_lines(2);
        for line in &lines {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 4, "{setting}: {line}");
            assert_eq!(fields[0].starts_with('{'), record, "{setting}: {line}");
            assert_eq!(fields[0] == "-", !record, "{setting}: {line}");
            assert_eq!(fields[2] != "-", scalars, "{setting}: {line}");
            assert_eq!(fields[3] != "-", scalars, "{setting}: {line}");
        }
        if record {
            let first: Value = serde_json::from_str(lines[0].split('\t').next().unwrap()).unwrap();
            assert_eq!(first["ase"]["client"]["username"], "ann");
        }
        // Stats count every request whatever is set.
        assert!(
            eventually(5, || {
                envoy.try_stat("wasmcustom.api_warden.requests.total") == Some(2)
                    && envoy.try_stat("wasmcustom.api_warden.requests.blocked") == Some(1)
            }),
            "{setting}: {:?}",
            envoy.try_stat("wasmcustom.api_warden.requests.total")
        );
    }
}

#[test]
fn filter_state_none_still_exports_every_record() {
    let collector = Collector::start();
    let envoy = Envoy::start_with(
        &export_config(json!({"filter_state": "none"})),
        export_opts(collector.server.cluster("collector")),
    );
    let ids = send(&envoy, "fsn", 6);
    assert!(
        eventually(8, || collector.has_all(&ids)),
        "collector got {:?}",
        collector.by_id().keys().collect::<Vec<_>>()
    );
    // The access log sees no filter state at all.
    for line in envoy.log_lines(6) {
        assert!(line.starts_with("-\t200\t-\t-"), "{line}");
    }
}
