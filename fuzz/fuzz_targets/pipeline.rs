//! Fuzz the whole request pipeline and record building with arbitrary headers.
#![no_main]
use libfuzzer_sys::fuzz_target;

use api_warden_core::lists::MemStore;
use api_warden_core::pipeline::{on_request_headers, Runtime};
use api_warden_core::record::{build, Exchange};
use api_warden_core::request::{Request, RequestView};
use api_warden_core::services::Redact;

thread_local! {
    // A Runtime holds a per-VM cache (RefCell), so it is per thread, as in a VM.
    static RUNTIME: Runtime = runtime();
}

fn runtime() -> Runtime {
    {
        let cfg = br#"{"ase": {"enable_xff": true},
          "apis": [
            {"name": "q", "api_metadata": {"url": "/q", "hostname": "*", "oauth2_access_token": true, "apikey_qs": "key_1.4",
              "jwt": {"location": "qs:jwt", "username": "username", "clientid": "client_id"}}},
            {"name": "b", "api_metadata": {"url": "/", "hostname": "*", "oauth2_access_token": true, "is_token_mandatory": true,
              "enable_blocking": true, "cookie": "session", "apikey_header": "x-api-key",
              "jwt": {"location": "h:authorization:bearer", "username": "username", "clientid": "client_id"}}},
            {"name": "m", "api_metadata": {"url": "/m", "hostname": "*", "jwt": {"location": "h:authorization:mac", "username": "sub", "clientid": ""}}},
            {"name": "c", "api_metadata": {"url": "/c", "hostname": "*", "jwt": {"location": "h:cookie:access_token", "username": "sub", "clientid": "azp"}}}],
          "deny_list": {"username": ["eve"]},
          "admin": {"path": "/_aw", "key": "0123456789abcdef0123"}}"#;
        match Runtime::load(cfg) {
            Ok(r) => r,
            Err(e) => panic!("fuzz config: {e}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let mut parts = s.split('\n');
    let path = parts.next().unwrap_or("/").to_string();
    let mut headers = vec![
        (":method".to_string(), "POST".to_string()),
        (":path".to_string(), path),
    ];
    let names = [
        "authorization",
        "cookie",
        "x-forwarded-for",
        "x-api-key",
        ":authority",
        "x-api-warden-admin-key",
    ];
    for (i, v) in parts.enumerate() {
        headers.push((names[i % names.len()].to_string(), v.to_string()));
    }
    let req = Request::parse(RequestView::from_headers(
        headers,
        Some("[2001:db8::1]:443".into()),
    ));
    let store = MemStore::default();
    let (out, _) =
        RUNTIME.with(|rt| on_request_headers(rt, &req, false, &store, 1_800_000_000_000));
    let x = Exchange {
        request: req,
        outcome: out,
        ..Exchange::default()
    };
    let rec = build(&x, Redact::Hash);
    assert!(rec.starts_with('{'));
});
