//! Tests of the services' settings.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;

fn parse(j: &str) -> Result<Services> {
    let v: serde_json::Value = serde_json::from_str(j).unwrap();
    Services::parse(v.as_object().unwrap())
}

#[test]
fn defaults_and_rules() {
    let s = parse("{}").unwrap();
    assert_eq!(s, Services::default());
    let s = parse(r#"{"admin": {"path": "/_api_warden/", "key": "0123456789abcdef"}}"#).unwrap();
    assert_eq!(s.admin.unwrap().path, "/_api_warden");
    let rows = [
        (
            r#"{"admin": {"path": "x", "key": "0123456789abcdef"}}"#,
            "admin.path",
        ),
        (
            r#"{"admin": {"path": "/", "key": "0123456789abcdef"}}"#,
            "must not be /",
        ),
        (r#"{"admin": {"path": "/a", "key": "short"}}"#, "admin.key"),
        (r#"{"admin": {"path": "/a"}}"#, "missing field `key`"),
        (
            r#"{"attack_list": {"cluster": "", "path": "/x"}}"#,
            "cluster is empty",
        ),
        (
            r#"{"attack_list": {"cluster": "abs", "path": "/x", "interval_s": 0}}"#,
            "positive",
        ),
        (
            r#"{"attack_list": {"cluster": "abs", "path": "/x", "bogus": 1}}"#,
            "unknown field",
        ),
        (
            r#"{"attack_list": {"cluster": "abs", "path": "/x", "interval_s": 1}}"#,
            "timeout_ms (5000) must be shorter than attack_list.interval_s (1 s)",
        ),
        (
            r#"{"attack_list": {"cluster": "abs", "path": "/x", "interval_s": 2, "timeout_ms": 2000}}"#,
            "must be shorter",
        ),
        (
            r#"{"attack_list": {"cluster": "abs", "path": "/x", "max_body_bytes": 33554433}}"#,
            "max_body_bytes (33554433) is above",
        ),
        (r#"{"analytics": {"redact": "scramble"}}"#, "analytics"),
        (r#"{"analytics": {"batch_size": 0}}"#, "positive"),
    ];
    for (j, want) in rows {
        let e = parse(j).unwrap_err().to_string();
        assert!(e.contains(want), "{j}: {e}");
    }
    let s = parse(r#"{"attack_list": {"cluster": "abs", "path": "/v4/attacks"}, "analytics": {"redact": "hash"}}"#).unwrap();
    assert_eq!(s.attack_list.unwrap().interval_s, 600);
    assert_eq!(s.analytics.redact, Redact::Hash);
    let s = parse(
        r#"{"attack_list": {"cluster": "abs", "path": "/x", "interval_s": 1, "timeout_ms": 999}}"#,
    )
    .unwrap();
    assert_eq!(s.attack_list.unwrap().timeout_ms, 999);
    let s = parse(r#"{"attack_list": {"cluster": "abs", "path": "/x"}}"#).unwrap();
    assert_eq!(s.attack_list.unwrap().max_body_bytes, 32 << 20);
}

#[test]
fn filter_state_choices() {
    assert_eq!(
        parse("{}").unwrap().analytics.filter_state,
        FilterState::All
    );
    for (v, want) in [
        ("all", FilterState::All),
        ("record", FilterState::Record),
        ("none", FilterState::None),
    ] {
        let s = parse(&format!(r#"{{"analytics": {{"filter_state": "{v}"}}}}"#)).unwrap();
        assert_eq!(s.analytics.filter_state, want);
    }
    let e = parse(r#"{"analytics": {"filter_state": "some"}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown variant `some`"), "{e}");
}

#[test]
fn record_parts_default_on_and_switch_off_one_by_one() {
    assert_eq!(parse("{}").unwrap().analytics.parts, RecordParts::default());
    let a = parse(r#"{"analytics": {"record_response_headers": false}}"#)
        .unwrap()
        .analytics;
    assert_eq!(
        (
            a.parts.request_headers,
            a.parts.response_headers,
            a.parts.query_parameters
        ),
        (true, false, true)
    );
    let e = parse(r#"{"analytics": {"record_request_headers": "no"}}"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("analytics.record_request_headers must be true or false"),
        "{e}"
    );
}

#[test]
fn export_format_and_its_default_path() {
    let a = parse("{}").unwrap().analytics;
    assert_eq!((a.format, a.path.as_str()), (ExportFormat::Json, "/"));
    let a = parse(r#"{"analytics": {"format": "otlp"}}"#)
        .unwrap()
        .analytics;
    assert_eq!(
        (a.format, a.path.as_str()),
        (ExportFormat::Otlp, "/v1/logs")
    );
    let a = parse(r#"{"analytics": {"format": "otlp", "path": "/otlp/v1/logs"}}"#)
        .unwrap()
        .analytics;
    assert_eq!(a.path, "/otlp/v1/logs");
    let e = parse(r#"{"analytics": {"format": "xml"}}"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("analytics.format: unknown variant `xml`, expected one of `json`, `otlp`"),
        "{e}"
    );
}
