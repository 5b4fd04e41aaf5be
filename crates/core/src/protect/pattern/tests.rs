//! Pattern enforcement: compilation, media types, protocol detection, the checks and the redirect.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::json;

use super::*;
use crate::request::RequestView;

fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
    let mut all = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "shop.example".to_string()),
        (":scheme".to_string(), "http".to_string()),
    ];
    all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Request::parse(RequestView::from_headers(all, None))
}

fn pattern(v: serde_json::Value) -> Option<Pattern> {
    compile(v.as_object().unwrap()).unwrap()
}

#[test]
fn empty_strings_and_lists_enforce_nothing() {
    let v = json!({"protocol_allowed": "", "http_redirect": {"response_code": "", "response_def": "",
        "https_url": ""}, "methods_allowed": [], "content_type_allowed": "", "error_code": "",
        "error_def": "", "error_message_body": ""});
    assert_eq!(pattern(v), None);
    assert_eq!(pattern(json!({})), None);
}

#[test]
fn media_types() {
    let rows = [
        ("application/json", Some("application/json")),
        ("Application/JSON; charset=utf-8", Some("application/json")),
        ("  text/plain ;x=y", Some("text/plain")),
        ("", None),
        (";charset=utf-8", None),
    ];
    for (ct, want) in rows {
        assert_eq!(media_type(ct).as_deref(), want, "{ct:?}");
    }
}

#[test]
fn protocol_detection() {
    let rows: [(&[(&str, &str)], Protocol); 6] = [
        (&[], Protocol::Http),
        (&[("x-forwarded-proto", "https")], Protocol::Https),
        (&[("x-forwarded-proto", "HTTP")], Protocol::Http),
        (&[("upgrade", "websocket")], Protocol::Ws),
        (
            &[("upgrade", "WebSocket"), ("x-forwarded-proto", "https")],
            Protocol::Wss,
        ),
        (&[("upgrade", "h2c")], Protocol::Http),
    ];
    for (h, want) in rows {
        assert_eq!(Protocol::of(&req("GET", "/", h)), want, "{h:?}");
    }
    let mut r = req("GET", "/", &[]);
    r.view.scheme = "https".into();
    assert_eq!(Protocol::of(&r), Protocol::Https);
}

#[test]
fn checks_in_order() {
    let p = pattern(json!({"methods_allowed": ["GET", "post"], "content_type_allowed": "application/json, text/csv",
        "protocol_allowed": "https"}))
    .unwrap();
    assert_eq!(
        (p.error_status, p.error_body.as_str()),
        (401, "401 Unauthorized")
    );
    let tls = [("x-forwarded-proto", "https")];
    let json_tls = [
        ("x-forwarded-proto", "https"),
        ("content-type", "application/json; charset=utf-8"),
    ];
    let rows: Vec<(Request, bool, Option<Violation>)> = vec![
        (req("GET", "/", &tls), false, None),
        (req("get", "/", &tls), false, None),
        (req("DELETE", "/", &tls), false, Some(Violation::Method)),
        (req("POST", "/", &json_tls), true, None),
        (
            req(
                "POST",
                "/",
                &[("x-forwarded-proto", "https"), ("content-type", "text/CSV")],
            ),
            true,
            None,
        ),
        (
            req(
                "POST",
                "/",
                &[("x-forwarded-proto", "https"), ("content-type", "text/xml")],
            ),
            true,
            Some(Violation::ContentType),
        ),
        (req("POST", "/", &tls), true, Some(Violation::ContentType)),
        // No body: the content type is not checked.
        (
            req(
                "POST",
                "/",
                &[("x-forwarded-proto", "https"), ("content-type", "text/xml")],
            ),
            false,
            None,
        ),
        (req("GET", "/", &[]), false, Some(Violation::Protocol)),
        (req("DELETE", "/", &[]), false, Some(Violation::Method)),
    ];
    for (i, (r, body, want)) in rows.iter().enumerate() {
        assert_eq!(p.check(r, *body), *want, "row {i}");
    }
}

#[test]
fn redirect_rules() {
    let p = pattern(
        json!({"protocol_allowed": ["https"], "http_redirect": {"response_code": 301,
        "response_def": "Moved Permanently", "https_url": "https://shop.example"},
        "error_code": "403", "error_message_body": "no"}),
    )
    .unwrap();
    assert_eq!((p.error_status, p.error_body.as_str()), (403, "no"));
    let plain = req("GET", "/shop/a?x=1", &[]);
    let r = p.redirect_for(&plain).unwrap();
    assert_eq!(r.status, 301);
    assert_eq!(r.location(&plain), "https://shop.example/shop/a?x=1");
    assert_eq!(
        p.redirect_for(&req("GET", "/", &[("x-forwarded-proto", "https")])),
        None
    );
    let with_path = Redirect {
        https_url: "https://secure.example/login".into(),
        ..r.clone()
    };
    assert_eq!(with_path.location(&plain), "https://secure.example/login");
    let slash = Redirect {
        https_url: "https://secure.example/".into(),
        ..r.clone()
    };
    assert_eq!(slash.location(&plain), "https://secure.example/shop/a?x=1");
    // Only http allowed: no redirect, the violation is an error.
    let p = pattern(
        json!({"protocol_allowed": "http", "http_redirect": {"response_code": 301,
        "https_url": "https://x"}}),
    )
    .unwrap();
    assert_eq!(p.redirect_for(&plain), None);
}

#[test]
fn compile_errors_name_the_field() {
    let rows = [
        (
            json!({"methods_allowed": 5}),
            "api_pattern_enforcement.methods_allowed",
        ),
        (
            json!({"protocol_allowed": "ftp"}),
            "api_pattern_enforcement.protocol_allowed",
        ),
        (
            json!({"content_type_allowed": [";x"]}),
            "api_pattern_enforcement.content_type_allowed",
        ),
        (
            json!({"methods_allowed": ["GET"], "error_code": "nope"}),
            "api_pattern_enforcement.error_code",
        ),
        (
            json!({"http_redirect": {"response_code": 200, "https_url": "https://x"}}),
            "api_pattern_enforcement.http_redirect.response_code",
        ),
        (
            json!({"http_redirect": {"response_code": 301, "https_url": "http://x"}}),
            "api_pattern_enforcement.http_redirect.https_url",
        ),
        (
            json!({"http_redirect": 3}),
            "api_pattern_enforcement.http_redirect",
        ),
    ];
    for (v, field) in rows {
        assert_eq!(
            compile(v.as_object().unwrap()).unwrap_err().field,
            field,
            "{v}"
        );
    }
}
