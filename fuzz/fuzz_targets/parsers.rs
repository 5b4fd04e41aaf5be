//! Fuzz the query-string, cookie, Authorization and X-Forwarded-For parsers.
#![no_main]
use libfuzzer_sys::fuzz_target;

use api_warden_core::parse;
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
});
