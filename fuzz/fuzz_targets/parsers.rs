//! Fuzz the query-string, cookie, Authorization and X-Forwarded-For parsers, and the inline
//! protections' parsers (flow-control thresholds, media types, decoy and pattern objects).
#![no_main]
use libfuzzer_sys::fuzz_target;

use api_warden_core::parse;
use api_warden_core::protect::{decoy, flow, pattern};
use api_warden_core::request::RequestView;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let _ = parse::query_params(&s);
    let _ = parse::query_param(&s, "key_1.4");
    let _ = parse::bearer(&s);
    let _ = parse::mac_id(&s);
    let _ = parse::ip_text(&s);
    let entries = parse::xff_entries([s.as_ref()]);
    let _ = parse::xff_client(&entries, 1);
    let req = RequestView::from_headers(vec![("cookie".into(), s.to_string())], None);
    let _ = parse::cookie_value(&req, "session");
    let _ = pattern::media_type(&s);
    let _ = flow::parse_threshold(Some(&serde_json::Value::String(s.to_string())));
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = decoy::compile("/shop", &o);
        let _ = pattern::compile(&o);
    }
});
