//! Fuzz path normalization and API matching.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

use api_warden_core::config::{parse, Compiled};

fn config() -> &'static Compiled {
    static C: OnceLock<Compiled> = OnceLock::new();
    C.get_or_init(|| {
        let cfg = br#"{"apis": [
            {"name": "root", "api_metadata": {"url": "/", "hostname": "*"}},
            {"name": "rest", "api_metadata": {"url": "/rest", "hostname": "*"}},
            {"name": "deep", "api_metadata": {"url": "/a/b/c", "hostname": "*"}},
            {"name": "host", "api_metadata": {"url": "/rest", "hostname": "api.example.com"}}]}"#;
        match parse(cfg) {
            Ok(c) => c,
            Err(e) => panic!("fuzz config: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let n = api_warden_core::router::normalize_path(&s);
    assert!(n.starts_with('/'), "{n:?}");
    let (host, path) = s.split_once('\n').unwrap_or(("api.example.com", &s));
    if let Some(m) = config().match_api(host, path) {
        assert!(m.normalized_path.starts_with(m.base_path) || m.base_path == "/");
    }
});
