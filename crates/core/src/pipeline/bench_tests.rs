//! Native timings of the request path with the benchmark's configuration (bench/configs.py):
//! parse, pipeline and record per request, today's and the browser-like request. Ignored: run
//! with `cargo test --release -p api-warden-core bench_request_path -- --ignored --nocapture`.

use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use super::*;
use crate::lists::MemStore;
use crate::record::{self, Exchange};
use crate::request::RequestView;

fn bench_config(analytics: Value) -> String {
    let apis: Vec<Value> = (0..10)
        .map(|i| {
            json!({"name": format!("api{i}"), "api_metadata": {
                "protocol": "http", "url": format!("/api{i}"), "hostname": "*", "cookie": "session",
                "cookie_idle_timeout": "200m", "logout_api_enabled": false,
                "cookie_persistence_enabled": false, "oauth2_access_token": true,
                "is_token_mandatory": false, "apikey_qs": "", "apikey_header": "x-api-key",
                "login_url": "", "enable_blocking": true, "api_mapping": {"internal_url": ""},
                "username_header": "",
                "jwt": {"location": "h:authorization:bearer", "username": "username",
                        "clientid": "client_id"}}})
        })
        .collect();
    json!({
        "ase": {"enable_firewall": true, "enable_ase_detected_attack": true},
        "apis": apis,
        "deny_list": {"username": ["mallory"]},
        "allow_list": {"ip": ["192.0.2.10"]},
        "analytics": analytics,
    })
    .to_string()
}

fn token(claims: &Value, pad: usize) -> String {
    let mut c = claims.clone();
    let perms: Vec<String> = (0..pad).map(|i| format!("orders:read:{i}")).collect();
    c["permissions"] = json!(perms);
    format!(
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjIwMjYtMTEta2V5LTEifQ.{}.{}",
        URL_SAFE_NO_PAD.encode(c.to_string()),
        "S".repeat(342)
    )
}

fn headers(browser: bool) -> Vec<(String, String)> {
    let claims = json!({"sub": "alice", "username": "alice", "client_id": "app-1",
        "iss": "https://idp.example", "aud": "shop", "scope": "read write",
        "iat": 1_700_000_000u64, "exp": 4_100_000_000u64});
    let mut h: Vec<(&str, String)> = vec![
        (":authority", "127.0.0.1:10000".into()),
        (":path", "/api3/items?id=1".into()),
        (":method", "GET".into()),
        (":scheme", "http".into()),
        ("x-api-key", "key-live-123".into()),
    ];
    if browser {
        let mut cookie = String::from("session=sess-abc; theme=dark; lang=en-GB; _ga=GA1.2.1");
        while cookie.len() < 1024 {
            cookie.push_str("; pref=");
            cookie.push_str(&"x".repeat(40));
        }
        h.push(("authorization", format!("Bearer {}", token(&claims, 30))));
        h.push(("cookie", cookie));
        for (k, v) in [
            (
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131",
            ),
            ("accept", "application/json, text/plain, */*"),
            ("accept-language", "en-GB,en;q=0.9,de;q=0.8"),
            ("accept-encoding", "gzip, deflate, br, zstd"),
            ("referer", "https://shop.example/account/orders"),
            ("origin", "https://shop.example"),
            (
                "sec-ch-ua",
                "\"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"",
            ),
            ("sec-ch-ua-mobile", "?0"),
            ("sec-ch-ua-platform", "\"Linux\""),
            ("sec-fetch-site", "same-site"),
            ("sec-fetch-mode", "cors"),
            ("sec-fetch-dest", "empty"),
        ] {
            h.push((k, v.into()));
        }
    } else {
        h.push((
            "authorization",
            format!(
                "Bearer eyJhbGciOiJub25lIn0.{}.",
                URL_SAFE_NO_PAD.encode(claims.to_string())
            ),
        ));
        h.push(("cookie", "session=sess-abc; theme=dark".into()));
        h.push(("user-agent", "wrk".into()));
    }
    h.push(("x-forwarded-proto", "http".into()));
    h.push((
        "x-request-id",
        "8f14e45f-ceea-467f-a8f0-2b5c9c3b1d7e".into(),
    ));
    h.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
#[ignore = "speed: run in release mode"]
fn bench_request_path() {
    // C records every request (the default filter states), E nothing (enforcement only).
    for (kind, analytics) in [("C", json!({})), ("E", json!({"filter_state": "none"}))] {
        bench_kind(kind, analytics);
    }
}

fn bench_kind(kind: &str, analytics: Value) {
    let rt = Runtime::load(bench_config(analytics).as_bytes()).unwrap();
    let records = rt.services.analytics.records();
    let store = MemStore::default();
    let now = 1_700_000_000_000u64;
    // 10,000 feed entries per type, as the attack list loads them (none is this request's).
    let list = |f: &dyn Fn(u32) -> String| {
        let v: Vec<String> = (0..10_000).map(|i| format!("{:?}", f(i))).collect();
        v.join(",")
    };
    let page = format!(
        r#"{{"ip": [{}], "token": [{}], "api_key": [{}], "cookie": [{}], "username": [{}]}}"#,
        list(&|i| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)),
        list(&|i| format!("tok-{i}")),
        list(&|i| format!("key-{i}")),
        list(&|i| format!("sess-{i}")),
        list(&|i| format!("user-{i}")),
    );
    let mut feed = crate::lists::FeedBuilder::default();
    assert_eq!(feed.add_page(page.as_bytes(), now), Ok(None));
    crate::lists::store_feed(&store, &feed).unwrap();
    let mut buf = Vec::new();
    for browser in [false, true] {
        let h = headers(browser);
        let n = 100_000u32;
        let (mut t_parse, mut t_pipe, mut t_rec) = (0u128, 0u128, 0u128);
        let mut bytes = 0usize;
        for _ in 0..n {
            let hs = h.clone();
            let t0 = Instant::now();
            let req = Request::parse(RequestView::from_headers(
                hs,
                Some("127.0.0.1:40000".into()),
            ));
            let t1 = Instant::now();
            let (outcome, step) = on_request_headers(&rt, &req, true, &store, now);
            let t2 = Instant::now();
            assert!(matches!(step, Step::Continue), "{step:?}");
            let x = Exchange {
                request: req,
                start_ms: now,
                end_ms: now + 1,
                outcome,
                response_status: Some(200),
                response_headers: vec![(":status".into(), "200".into())],
                ..Exchange::default()
            };
            let t3 = Instant::now();
            if records {
                let a = &rt.services.analytics;
                record::write(&mut buf, &x, a.redact, a.parts);
            }
            let t4 = Instant::now();
            bytes += buf.len();
            t_parse += (t1 - t0).as_nanos();
            t_pipe += (t2 - t1).as_nanos();
            t_rec += (t4 - t3).as_nanos();
        }
        let per = |t: u128| t as f64 / f64::from(n);
        println!(
            "{kind} {}: parse {:.0} ns, pipeline {:.0} ns, record {:.0} ns ({} B)",
            if browser { "browser" } else { "simple" },
            per(t_parse),
            per(t_pipe),
            per(t_rec),
            bytes / n as usize
        );
    }
}
