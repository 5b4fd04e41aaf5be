//! Admin API tests against the in-memory store.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;
use crate::config::IdLists;
use crate::lists::{Lookup, MemStore};

fn settings() -> AdminSettings {
    AdminSettings {
        path: "/_api_warden".into(),
        key: "0123456789abcdef".into(),
    }
}

fn call(
    store: &MemStore,
    config: &ConfigLists,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> Reply {
    let norm = crate::router::normalize_path(path);
    let req = AdminRequest {
        method,
        path: &norm,
        raw_path: path,
        key,
        body: body.as_bytes(),
    };
    handle(&settings(), &req, store, config, 1000)
}

const KEY: Option<&str> = Some("0123456789abcdef");

#[test]
fn paths() {
    let s = settings();
    assert!(is_admin_path(&s, "/_api_warden"));
    assert!(is_admin_path(&s, "/_api_warden/deny_list"));
    assert!(!is_admin_path(&s, "/_api_wardenx"));
    assert!(!is_admin_path(&s, "/shop"));
}

#[test]
fn auth() {
    let st = MemStore::default();
    let c = ConfigLists::default();
    assert_eq!(
        call(&st, &c, "GET", "/_api_warden/deny_list", None, "").status,
        401
    );
    assert_eq!(
        call(&st, &c, "GET", "/_api_warden/deny_list", Some("wrong"), "").status,
        401
    );
    assert_eq!(
        call(
            &st,
            &c,
            "GET",
            "/_api_warden/deny_list",
            Some("0123456789abcdeF"),
            ""
        )
        .status,
        401
    );
    assert_eq!(
        call(&st, &c, "GET", "/_api_warden/deny_list", KEY, "").status,
        200
    );
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"abcd"));
}

#[test]
fn add_list_delete() {
    let st = MemStore::default();
    let c = ConfigLists::new(
        &IdLists {
            ip: vec!["192.0.2.9".into()],
            ..IdLists::default()
        },
        &IdLists::default(),
    );
    let r = call(
        &st,
        &c,
        "POST",
        "/_api_warden/deny_list",
        KEY,
        r#"{"type": "username", "value": "eve", "ttl_s": 60}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(Lookup::new(&st, &c, 1000, true)
        .find(ListKind::Deny, IdType::Username, "eve")
        .is_some());
    let r = call(&st, &c, "GET", "/_api_warden/deny_list", KEY, "");
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v["username"][0],
        json!({"value": "eve", "source": "admin", "expires_at": 1060})
    );
    assert_eq!(
        v["ip"][0],
        json!({"value": "192.0.2.9", "source": "config", "expires_at": null})
    );
    let r = call(&st, &c, "GET", "/_api_warden/deny_list?type=ip", KEY, "");
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert!(v.get("username").is_none());
    let r = call(
        &st,
        &c,
        "DELETE",
        "/_api_warden/deny_list",
        KEY,
        r#"{"type": "username", "value": "eve"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(Lookup::new(&st, &c, 1000, true)
        .find(ListKind::Deny, IdType::Username, "eve")
        .is_none());
    let r = call(
        &st,
        &c,
        "DELETE",
        "/_api_warden/deny_list",
        KEY,
        r#"{"type": "username", "value": "eve"}"#,
    );
    assert_eq!(r.status, 404);
    let r = call(
        &st,
        &c,
        "DELETE",
        "/_api_warden/deny_list",
        KEY,
        r#"{"type": "ip", "value": "192.0.2.9"}"#,
    );
    assert_eq!(r.status, 409);
    let r = call(
        &st,
        &c,
        "POST",
        "/_api_warden/allow_list",
        KEY,
        r#"{"type": "ip", "value": "::1"}"#,
    );
    assert_eq!(r.status, 200);
    assert!(Lookup::new(&st, &c, 1000, true)
        .find(ListKind::Allow, IdType::Ip, "::1")
        .is_some());
}

#[test]
fn bad_requests_get_400_with_a_message() {
    let st = MemStore::default();
    let c = ConfigLists::default();
    let rows = [
        ("not json", "not JSON"),
        (r#"{"value": "x"}"#, "is required: one of"),
        (r#"{"type": "email", "value": "x"}"#, "unknown type"),
        (r#"{"type": "username"}"#, "must be a string"),
        (r#"{"type": "username", "value": 5}"#, "must be a string"),
        (r#"{"type": "username", "value": ""}"#, "empty"),
        (r#"{"type": "ip", "value": "1.2.3"}"#, "not an IP"),
        (
            r#"{"type": "username", "value": "x", "ttl_s": -1}"#,
            "ttl_s",
        ),
    ];
    for (body, want) in rows {
        let r = call(&st, &c, "POST", "/_api_warden/deny_list", KEY, body);
        assert_eq!(r.status, 400, "{body}");
        assert!(r.body.contains(want), "{body}: {}", r.body);
    }
    assert_eq!(
        call(&st, &c, "GET", "/_api_warden/nope", KEY, "").status,
        404
    );
    assert_eq!(
        call(&st, &c, "PATCH", "/_api_warden/deny_list", KEY, "").status,
        405
    );
    assert_eq!(
        call(&st, &c, "GET", "/_api_warden/deny_list?type=bogus", KEY, "").status,
        400
    );
}
