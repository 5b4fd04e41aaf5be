//! OTLP export through real Envoy: with `analytics.format: "otlp"` the batches are POSTed to
//! `/v1/logs` and parsed by the official OTLP protobuf definitions (PyPI `opentelemetry-proto`
//! with `google.protobuf.json_format`, in a virtualenv under `target/` made by this test; when
//! it cannot be installed the test says so and checks the structure strictly in Rust instead).

use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::harness::{eventually, root, scratch, Envoy, Opts, TestServer};

fn plugin(collector: u16) -> (String, Opts) {
    let config = json!({
        "apis": [{"name": "shop", "api_metadata": {
            "url": "/shop", "hostname": "*", "username_header": "x-user",
            "enable_blocking": true}}],
        "deny_list": {"username": ["mallory"]},
        "analytics": {"cluster": "otel", "format": "otlp", "flush_interval_ms": 200},
    });
    let opts = Opts {
        extra_clusters: crate::harness::yaml::cluster("otel", collector),
        ..Opts::default()
    };
    (config.to_string(), opts)
}

/// A Python with `opentelemetry-proto` and `protobuf`, or why there is none.
fn python_with_otlp() -> Result<PathBuf, String> {
    let venv = root().join("target/e2e-otlp-venv");
    let python = venv.join("bin/python");
    let has = |p: &PathBuf| {
        Command::new(p)
            .args([
                "-c",
                "import opentelemetry.proto.collector.logs.v1.logs_service_pb2",
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    if has(&python) {
        return Ok(python);
    }
    let run = |cmd: &mut Command| match cmd.output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
        Err(e) => Err(e.to_string()),
    };
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "-q",
        "opentelemetry-proto",
        "protobuf",
    ]))?;
    has(&python)
        .then_some(python)
        .ok_or_else(|| "opentelemetry-proto does not import".into())
}

/// Log records as the official parser sees them (one JSON object each).
fn parse_with_protobuf(python: &PathBuf, bodies: &[Vec<u8>]) -> Vec<Value> {
    let dir = scratch("otlp");
    let files: Vec<PathBuf> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let f = dir.join(format!("batch-{i}.json"));
            std::fs::write(&f, b).unwrap();
            f
        })
        .collect();
    let out = Command::new(python)
        .arg(root().join("tests/e2e/otlp/parse_logs.py"))
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the protobuf parser refused a batch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The same view by a strict structural check in Rust (the fallback).
fn parse_in_rust(bodies: &[Vec<u8>]) -> Vec<Value> {
    let mut out = Vec::new();
    for b in bodies {
        let v: Value = serde_json::from_slice(b).unwrap();
        let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        assert_eq!(keys(&v), ["resourceLogs"]);
        for rl in v["resourceLogs"].as_array().unwrap() {
            assert_eq!(keys(rl), ["resource", "scopeLogs"]);
            for sl in rl["scopeLogs"].as_array().unwrap() {
                for lr in sl["logRecords"].as_array().unwrap() {
                    let attrs: serde_json::Map<String, Value> = lr["attributes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| {
                            let v = &a["value"];
                            let v = v.get("stringValue").cloned().unwrap_or_else(|| {
                                json!(v["intValue"].as_str().unwrap().parse::<i64>().unwrap())
                            });
                            (a["key"].as_str().unwrap().to_string(), v)
                        })
                        .collect();
                    let nanos = |k: &str| json!(lr[k].as_str().unwrap().parse::<u64>().unwrap());
                    out.push(json!({
                        "resource": {"service.name": rl["resource"]["attributes"][0]["value"]["stringValue"]},
                        "scope": sl["scope"]["name"],
                        "time_unix_nano": nanos("timeUnixNano"),
                        "observed_time_unix_nano": nanos("observedTimeUnixNano"),
                        "severity_number": lr["severityNumber"],
                        "severity_text": lr["severityText"],
                        "body": lr["body"]["stringValue"],
                        "attributes": attrs,
                    }));
                }
            }
        }
    }
    out
}

#[test]
fn otlp_batches_parse_with_the_official_protobuf_definitions() {
    let collector = TestServer::start(|_| (200, b"{}".to_vec()));
    let (config, opts) = plugin(collector.port);
    let envoy = Envoy::start_with(&config, opts);
    let ok = envoy.get("/shop/cart?item=1", &[("x-user", "alice")]);
    assert_eq!(ok.status, 200, "{}", ok.body_text());
    let blocked = envoy.get("/shop/admin", &[("x-user", "mallory")]);
    assert_eq!(blocked.status, 403);
    let count = |bodies: &[Vec<u8>]| -> usize {
        bodies
            .iter()
            .filter_map(|b| serde_json::from_slice::<Value>(b).ok())
            .map(|v| {
                v.pointer("/resourceLogs/0/scopeLogs/0/logRecords")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            })
            .sum()
    };
    let got = eventually(10, || {
        let bodies: Vec<Vec<u8>> = collector.requests().into_iter().map(|r| r.body).collect();
        (count(&bodies) >= 2).then_some(bodies)
    });
    let bodies = got.expect("two log records within 10 s");
    for r in collector.requests() {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/logs"));
        let ct = r.headers.iter().find(|(k, _)| k == "content-type");
        assert_eq!(ct.map(|(_, v)| v.as_str()), Some("application/json"));
    }
    let records = match python_with_otlp() {
        Ok(python) => {
            let parsed = parse_with_protobuf(&python, &bodies);
            // The fallback check agrees with the real parser.
            assert_eq!(parse_in_rust(&bodies), parsed);
            parsed
        }
        Err(why) => {
            eprintln!(
                "opentelemetry-proto not installable ({why}); checking the structure in Rust"
            );
            parse_in_rust(&bodies)
        }
    };
    assert_eq!(records.len(), 2, "{records:?}");
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let find = |path: &str| {
        records
            .iter()
            .find(|r| r["attributes"]["url.path"] == path)
            .unwrap_or_else(|| panic!("no log record for {path}: {records:?}"))
    };
    let a = find("/shop/cart");
    let b = find("/shop/admin");
    for (r, status, user, decision, severity) in [
        (a, 200, "alice", "allow", "INFO"),
        (b, 403, "mallory", "block", "WARN"),
    ] {
        let attrs = &r["attributes"];
        assert_eq!(attrs["http.request.method"], "GET");
        assert_eq!(attrs["http.response.status_code"], status);
        assert_eq!(attrs["client.address"], "127.0.0.1");
        assert_eq!(attrs["user.name"], user);
        assert_eq!(attrs["api_warden.api"], "shop");
        assert_eq!(attrs["api_warden.decision"], decision);
        assert_eq!(r["severity_text"], severity);
        assert_eq!(r["resource"]["service.name"], "api-warden");
        assert_eq!(r["scope"], "api-warden");
        let t = r["time_unix_nano"].as_u64().unwrap();
        assert!(
            t <= now_ns && now_ns - t < 60_000_000_000,
            "time {t} vs now {now_ns}"
        );
        assert!(r["observed_time_unix_nano"].as_u64().unwrap() >= t);
        // The body is the record itself.
        let rec: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(rec["ase"]["decision"], decision);
        assert_eq!(rec["attributes"]["HttpRequest.ResponseStatus"], status);
    }
    assert_eq!(a["attributes"]["url.query"], "item=1");
    assert_eq!(b["attributes"]["api_warden.reason"], "deny_list:username");
    assert_eq!(b["attributes"]["api_warden.list_source"], "config");
}
