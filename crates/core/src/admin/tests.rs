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
        query: &crate::parse::query_params(path),
        key,
        body: body.as_bytes(),
    };
    handle(&settings(), &req, store, config, 1_000_000)
}

const KEY: Option<&str> = Some("0123456789abcdef");

#[test]
fn paths() {
    let s = settings();
    assert!(is_admin_path(&s, "/_api_warden"));
    assert!(is_admin_path(&s, "/_api_warden/deny_list"));
    assert!(!is_admin_path(&s, "/_api_wardenx"));
    assert!(!is_admin_path(&s, "/_api_warden%2"));
    assert!(!is_admin_path(&s, "/_api_warden%41"));
    // Encoded separators: upstreams may decode them, so they stay on the admin side.
    for p in [
        "/_api_warden%2Fdeny_list",
        "/_api_warden%2fdeny_list",
        "/_api_warden%5Cdeny_list",
        "/_api_warden\\deny_list",
        "/_api_warden;x=1/deny_list",
        "/x%2F..%2F_api_warden/deny_list",
        "/..;/_api_warden",
    ] {
        assert!(is_admin_path(&s, &crate::router::normalize_path(p)), "{p}");
    }
    assert!(!is_admin_path(&s, "/shop"));
    assert!(!is_admin_path(&s, "/shop;_api_warden"));
    assert!(!is_admin_path(&s, "/_api_warden%252F"));
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

#[test]
fn ttl_counts_from_the_millisecond_and_rounds_up() {
    let st = MemStore::default();
    let c = ConfigLists::default();
    let req = AdminRequest {
        method: "POST",
        path: "/_api_warden/deny_list",
        query: &crate::parse::query_params("/_api_warden/deny_list"),
        key: KEY,
        body: br#"{"type": "token", "value": "t", "ttl_s": 1}"#,
    };
    // At 1000.999 s, one second to live: still there during second 1001.
    let r = handle(&settings(), &req, &st, &c, 1_000_999);
    assert_eq!(r.status, 200, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["expires_at"], 1002);
    assert!(Lookup::new(&st, &c, 1001, true)
        .find(ListKind::Deny, IdType::Token, "t")
        .is_some());
    assert!(Lookup::new(&st, &c, 1002, true)
        .find(ListKind::Deny, IdType::Token, "t")
        .is_none());
}

#[test]
fn attack_list_entries_cannot_be_deleted_by_hand() {
    let st = MemStore::default();
    let c = ConfigLists::default();
    let (feed, _) = lists::Feed::parse(br#"{"username": ["fed"]}"#).unwrap();
    lists::replace_feed(&st, &feed).unwrap();
    let r = call(
        &st,
        &c,
        "DELETE",
        "/_api_warden/deny_list",
        KEY,
        r#"{"type": "username", "value": "fed"}"#,
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("attack list"), "{}", r.body);
    let r = call(
        &st,
        &c,
        "GET",
        "/_api_warden/deny_list?type=username",
        KEY,
        "",
    );
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v["username"],
        json!([{"value": "fed", "source": "attack_list", "expires_at": null}])
    );
    // Absent everywhere: 404.
    let r = call(
        &st,
        &c,
        "DELETE",
        "/_api_warden/deny_list",
        KEY,
        r#"{"type": "username", "value": "nobody"}"#,
    );
    assert_eq!(r.status, 404);
}

#[test]
fn changes_take_their_parameters_from_the_query_string() {
    let st = MemStore::default();
    let c = ConfigLists::default();
    let r = call(
        &st,
        &c,
        "POST",
        "/_api_warden/deny_list?type=token&value=a%2Bb%2Fc%3D&ttl_s=60",
        KEY,
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["value"], "a+b/c=");
    assert_eq!(v["expires_at"], 1060);
    assert!(Lookup::new(&st, &c, 1000, true)
        .find(ListKind::Deny, IdType::Token, "a+b/c=")
        .is_some());
    // The query wins over a body.
    let r = call(
        &st,
        &c,
        "POST",
        "/_api_warden/allow_list?type=username&value=bob",
        KEY,
        r#"{"type": "username", "value": "other"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(Lookup::new(&st, &c, 1000, true)
        .find(ListKind::Allow, IdType::Username, "bob")
        .is_some());
    let r = call(
        &st,
        &c,
        "DELETE",
        "/_api_warden/deny_list?type=token&value=a%2Bb%2Fc%3D",
        KEY,
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = [
        ("?type=email&value=x", "unknown type"),
        ("?value=x", "is required: one of"),
        ("?type=username", "is required and must be a string"),
        ("?type=username&value=", "empty"),
        ("?type=ip&value=1.2.3", "not an IP"),
        ("?type=username&value=x&ttl_s=-1", "ttl_s"),
        ("?type=username&value=x&ttl_s=soon", "ttl_s"),
        ("", "query parameters"),
    ];
    for (q, want) in rows {
        let r = call(
            &st,
            &c,
            "POST",
            &format!("/_api_warden/deny_list{q}"),
            KEY,
            "",
        );
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        assert!(r.body.contains(want), "{q}: {}", r.body);
    }
}

#[test]
fn an_empty_change_is_a_400_that_says_what_to_do() {
    let st = MemStore::default();
    let c = ConfigLists::default();
    let req = AdminRequest {
        method: "POST",
        path: "/_api_warden/deny_list",
        query: &crate::parse::query_params("/_api_warden/deny_list"),
        key: KEY,
        body: b"",
    };
    let r = handle(&settings(), &req, &st, &c, 1_000_000);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("query parameters"), "{}", r.body);
    assert!(r.body.contains("JSON body"), "{}", r.body);
    // Authentication still comes first.
    let req = AdminRequest { key: None, ..req };
    assert_eq!(handle(&settings(), &req, &st, &c, 1_000_000).status, 401);
    // GET needs no parameters.
    let req = AdminRequest {
        method: "GET",
        key: KEY,
        ..req
    };
    assert_eq!(handle(&settings(), &req, &st, &c, 1_000_000).status, 200);
}
