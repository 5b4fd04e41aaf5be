//! Native micro-benchmark of the pure request path with the benchmark's configuration
//! (bench/configs.py): parsing the request, the pipeline (match, identification, list lookups,
//! decision) and the record, ns and allocations per request, for C (every request recorded) and
//! E (nothing recorded), today's request and the browser-like one, with `BENCH_ENTRIES` (default
//! 1,000,000) feed entries per type in an in-memory store that copies values like proxy-wasm
//! shared data does. Run: `cargo bench --bench pipeline`.

// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to the system
// allocator, and exists in this benchmark only.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use api_warden_core::lists::{store_feed, FeedBuilder, MemStore};
use api_warden_core::pipeline::{on_request_headers, Runtime};
use api_warden_core::record::{write, Exchange};
use api_warden_core::request::{Request, RequestView};
use base64::Engine;

/// The system allocator, counting allocations (a wasm VM pays more for each than native code).
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let entries: usize = env("BENCH_ENTRIES", 1_000_000);
    let n: u32 = env("BENCH_ITERS", 100_000);
    let store = MemStore::default();
    let t0 = Instant::now();
    if let Err(e) = load_feed(&store, entries) {
        eprintln!("feed load failed: {e}");
        std::process::exit(1);
    }
    println!(
        "feed load: {entries} entries x 5 types in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    for (kind, analytics) in [("C", "{}"), ("E", r#"{"filter_state": "none"}"#)] {
        let rt = match Runtime::load(config(analytics).as_bytes()) {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("config: {e}");
                std::process::exit(1);
            }
        };
        for (request, headers) in [("simple", simple()), ("browser", browser())] {
            let t = time(&rt, &store, &headers, n);
            println!(
                "{kind} {request:7}: parse {:5.0} ns, pipeline {:5.0} ns, record {:5.0} ns ({} bytes), \
                 total {:5.0} ns/request; allocations: parse {}, pipeline {}, record {}",
                t.parse,
                t.pipeline,
                t.record,
                t.record_bytes,
                t.parse + t.pipeline + t.record,
                t.allocs[0],
                t.allocs[1],
                t.allocs[2]
            );
        }
    }
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// bench/configs.py's plugin configuration: 10 APIs, JWT + API key + cookie, lists.
fn config(analytics: &str) -> String {
    let apis: Vec<String> = (0..10)
        .map(|i| {
            format!(
                r#"{{"name": "api{i}", "api_metadata": {{"protocol": "http", "url": "/api{i}",
                   "hostname": "*", "cookie": "session", "oauth2_access_token": true,
                   "is_token_mandatory": false, "apikey_header": "x-api-key", "enable_blocking": true,
                   "jwt": {{"location": "h:authorization:bearer", "username": "username",
                            "clientid": "client_id"}}}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"ase": {{"enable_firewall": true, "enable_ase_detected_attack": true}},
            "apis": [{}], "deny_list": {{"username": ["mallory"]}},
            "allow_list": {{"ip": ["192.0.2.10"]}}, "analytics": {analytics}}}"#,
        apis.join(",")
    )
}

/// `entries` values per type through the feed builder, as the attack-list poller loads them.
fn load_feed(store: &MemStore, entries: usize) -> Result<(), String> {
    let list = |f: &dyn Fn(usize) -> String| {
        let v: Vec<String> = (0..entries).map(|i| format!("\"{}\"", f(i))).collect();
        v.join(",")
    };
    let page = format!(
        r#"{{"ip": [{}], "token": [{}], "api_key": [{}], "cookie": [{}], "username": [{}]}}"#,
        list(&|i| format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)),
        list(&|i| format!("tok-{i}")),
        list(&|i| format!("key-{i}")),
        list(&|i| format!("sess-{i}")),
        list(&|i| format!("user-{i}")),
    );
    let mut feed = FeedBuilder::default();
    feed.add_page(page.as_bytes(), 1_800_000_000_000)?;
    store_feed(store, &feed).map_err(|e| e.to_string())?;
    Ok(())
}

fn jwt(claims: &str, header: &str, signature: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!("{}.{}.{signature}", b64(header), b64(claims))
}

fn pairs(h: &[(&str, &str)]) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Today's request (bench/configs.py SIMPLE, as Envoy hands it over).
fn simple() -> Vec<(String, String)> {
    let token = jwt(
        r#"{"sub":"alice","username":"alice","client_id":"app-1","iss":"https://idp.example","aud":"shop","scope":"read write","iat":1700000000,"exp":4100000000}"#,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        "c2ln",
    );
    pairs(&[
        (":authority", "bench.example"),
        (":path", "/api3/items?id=1"),
        (":method", "GET"),
        (":scheme", "http"),
        ("authorization", &format!("Bearer {token}")),
        ("x-api-key", "key-live-123"),
        ("cookie", "session=sess-abc; theme=dark"),
        ("user-agent", "wrk"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "5f1c8a52-0000-4000-8000-000000000000"),
    ])
}

/// The browser-like request (bench/configs.py BROWSER): 16 headers, a 1 KB cookie, a 900-byte
/// JWT.
fn browser() -> Vec<(String, String)> {
    let perms: Vec<String> = (0..24).map(|i| format!("\"orders:read:{i}\"")).collect();
    let claims = format!(
        r#"{{"sub":"a1b2c3d4-e5f6-47a8-9b0c-1d2e3f4a5b6c","username":"alice","client_id":"app-1","iss":"https://idp.example/as","aud":["shop","https://api.example"],"scope":"openid profile email read write","iat":1700000000,"exp":4100000000,"jti":"8f14e45f-ceea-467f-a8f0-2b5c9c3b1d7e","email":"alice@example.com","roles":["customer"],"permissions":[{}]}}"#,
        perms.join(",")
    );
    let token = jwt(
        &claims,
        r#"{"alg":"RS256","typ":"JWT","kid":"2026-11-key-1"}"#,
        &"S".repeat(342),
    );
    let mut cookie = String::from("session=sess-abc; theme=dark; lang=en-GB; _ga=GA1.2.1");
    while cookie.len() < 1024 {
        cookie.push_str("; pref=");
        cookie.push_str(&"x".repeat(40));
    }
    pairs(&[
        (":authority", "bench.example"),
        (":path", "/api3/items?id=1"),
        (":method", "GET"),
        (":scheme", "http"),
        ("authorization", &format!("Bearer {token}")),
        ("x-api-key", "key-live-123"),
        ("cookie", &cookie),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        ),
        ("accept", "application/json, text/plain, */*"),
        ("accept-language", "en-GB,en;q=0.9,de;q=0.8"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("referer", "https://shop.example/account/orders"),
        ("origin", "https://shop.example"),
        ("sec-ch-ua", "\"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\""),
        ("sec-ch-ua-mobile", "?0"),
        ("sec-ch-ua-platform", "\"Linux\""),
        ("sec-fetch-site", "same-site"),
        ("sec-fetch-mode", "cors"),
        ("sec-fetch-dest", "empty"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "5f1c8a52-0000-4000-8000-000000000000"),
    ])
}

struct Timing {
    parse: f64,
    pipeline: f64,
    record: f64,
    record_bytes: usize,
    /// Allocations per request: parse, pipeline, record.
    allocs: [u64; 3],
}

/// ns per request of each stage: the fastest of 5 batches (the machine is shared, and
/// interference only ever adds time).
fn time(rt: &Runtime, store: &MemStore, headers: &[(String, String)], n: u32) -> Timing {
    let now = 1_800_000_000_000;
    let a = &rt.services.analytics;
    let mut best = Timing {
        parse: f64::MAX,
        pipeline: f64::MAX,
        record: f64::MAX,
        record_bytes: 0,
        allocs: [0; 3],
    };
    let mut buf = Vec::new();
    for _ in 0..5 {
        let (mut parse, mut pipeline, mut record) = (0u128, 0u128, 0u128);
        for _ in 0..n / 5 {
            // The adapter hands over a fresh header list per request: parsing it is part of the
            // cost.
            let h = headers.to_vec();
            let a0 = ALLOCS.load(Ordering::Relaxed);
            let t0 = Instant::now();
            let view = RequestView::from_headers(black_box(h), Some("127.0.0.1:50000".into()));
            let req = Request::parse(view);
            let t1 = Instant::now();
            let a1 = ALLOCS.load(Ordering::Relaxed);
            let (outcome, _) = black_box(on_request_headers(rt, &req, true, store, now));
            let t2 = Instant::now();
            let a2 = ALLOCS.load(Ordering::Relaxed);
            best.allocs[0] = a1 - a0;
            best.allocs[1] = a2 - a1;
            if a.records() {
                let x = Exchange {
                    request: req,
                    start_ms: now,
                    end_ms: now + 2,
                    outcome,
                    response_status: Some(200),
                    response_headers: vec![("content-type".into(), "text/plain".into())],
                    ..Exchange::default()
                };
                let t3 = Instant::now();
                let a3 = ALLOCS.load(Ordering::Relaxed);
                write(&mut buf, black_box(&x), a.redact, a.parts);
                record += t3.elapsed().as_nanos();
                best.allocs[2] = ALLOCS.load(Ordering::Relaxed) - a3;
                best.record_bytes = buf.len();
            }
            parse += (t1 - t0).as_nanos();
            pipeline += (t2 - t1).as_nanos();
        }
        let per = |t: u128| t as f64 / f64::from(n / 5);
        best.parse = best.parse.min(per(parse));
        best.pipeline = best.pipeline.min(per(pipeline));
        best.record = best.record.min(per(record));
    }
    best
}
