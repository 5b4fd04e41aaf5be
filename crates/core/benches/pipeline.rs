//! Native micro-benchmark of the pure request pipeline (match + identification + list lookups +
//! decision, then record building), ns per request, with 1,000,000 feed entries per type in an
//! in-memory store that copies values like proxy-wasm shared data does. Run: `cargo bench --bench pipeline`.

use std::hint::black_box;
use std::time::Instant;

use api_warden_core::lists::{replace_feed, Feed, MemStore};
use api_warden_core::pipeline::{on_request_headers, Runtime};
use api_warden_core::record::{build, Exchange};
use api_warden_core::request::{Request, RequestView};
use api_warden_core::services::Redact;
use base64::Engine;

fn main() {
    let entries: usize = std::env::var("BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut apis = Vec::new();
    for i in 0..10 {
        apis.push(format!(
            r#"{{"name": "api{i}", "api_metadata": {{"url": "/api{i}", "hostname": "*", "cookie": "session",
               "oauth2_access_token": true, "apikey_header": "x-api-key", "enable_blocking": true,
               "jwt": {{"location": "h:authorization:bearer", "username": "username", "clientid": "client_id"}}}}}}"#
        ));
    }
    let cfg = format!(
        r#"{{"apis": [{}], "deny_list": {{"username": ["mallory"]}}}}"#,
        apis.join(",")
    );
    let rt = match Runtime::load(cfg.as_bytes()) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("config: {e}");
            std::process::exit(1);
        }
    };
    let store = MemStore::default();
    let mut feed = Feed::default();
    for (slot, (t, prefix)) in feed
        .values
        .iter_mut()
        .zip(["ip", "tok-", "key-", "sess-", "user-"].iter().enumerate())
    {
        *slot = (0..entries)
            .map(|i| {
                if t == 0 {
                    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
                } else {
                    format!("{prefix}{i}")
                }
            })
            .collect();
    }
    let t0 = Instant::now();
    if replace_feed(&store, &feed).is_err() {
        eprintln!("feed load failed");
        std::process::exit(1);
    }
    let load = t0.elapsed();
    drop(feed);

    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let jwt = format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(
            r#"{"sub":"alice","username":"alice","client_id":"app-1","iss":"https://idp.example","aud":"shop","scope":"read write","iat":1700000000,"exp":4100000000}"#
        )
    );
    let headers: Vec<(String, String)> = [
        (":method", "GET"),
        (":path", "/api3/items?id=1"),
        (":authority", "bench.example"),
        (":scheme", "http"),
        ("authorization", &format!("Bearer {jwt}")),
        ("x-api-key", "key-live-123"),
        ("cookie", "session=sess-abc; theme=dark"),
        ("user-agent", "wrk"),
        ("x-request-id", "5f1c8a52-0000-4000-8000-000000000000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let view = RequestView::from_headers(headers, Some("127.0.0.1:50000".into()));

    let n: u32 = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    // The fastest of 5 batches: the machine is shared, and interference only ever adds time.
    let mut outcome = None;
    let mut pipeline_ns = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n / 5 {
            // The adapter hands over a fresh view per request; parsing it is part of the cost.
            let req = Request::parse(black_box(view.clone()));
            outcome = Some(black_box(on_request_headers(
                &rt,
                &req,
                true,
                &store,
                1_800_000_000_000,
            )));
        }
        pipeline_ns = pipeline_ns.min(t.elapsed().as_nanos() as f64 / f64::from(n / 5));
    }
    let Some((out, _)) = outcome else { return };
    let x = Exchange {
        request: Request::parse(view),
        start_ms: 1_800_000_000_000,
        end_ms: 1_800_000_000_002,
        outcome: out,
        response_status: Some(200),
        response_headers: vec![("content-type".into(), "text/plain".into())],
        ..Exchange::default()
    };
    let mut len = 0;
    let mut record_ns = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        len = 0;
        for _ in 0..n / 5 {
            len += black_box(build(black_box(&x), Redact::None)).len();
        }
        record_ns = record_ns.min(t.elapsed().as_nanos() as f64 / f64::from(n / 5));
    }
    if std::env::var("BENCH_PRINT").is_ok() {
        println!("{}", build(&x, Redact::None));
    }
    println!(
        "feed load: {} entries x 5 types in {:.2} s",
        entries,
        load.as_secs_f64()
    );
    println!("pipeline (match + identify + lookups + decide): {pipeline_ns:.0} ns/request");
    println!(
        "record building ({} bytes): {record_ns:.0} ns/request",
        len / (n / 5) as usize
    );
    println!("total: {:.0} ns/request", pipeline_ns + record_ns);
}
