//! Tests of the analytics record: every field of the public contract, header and query maps,
//! the redaction modes and the shapes of unmatched, blocked, monitored and admin exchanges.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::{json, Value};

use super::*;
use crate::decision::{Cause, Decision, Mode, Verdict};
use crate::identity::{Client, Identity, JwtOutcome, JwtStatus};
use crate::ids::IdType;
use crate::jwt::AccessToken;
use crate::lists::Source;
use crate::pipeline::Outcome;
use crate::request::{Request, RequestView};

const TOKEN: &str = "tok-123.abc";
const API_KEY: &str = "key-456";
const COOKIE: &str = "sess-789";
/// 2023-11-14T22:13:20.123Z
const START: u64 = 1_700_000_000_123;

fn hv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The `sha256:<hex>` a hash-mode record writes for `v`.
fn sha(v: &str) -> String {
    let d = Sha256::digest(v.as_bytes());
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn shop() -> MatchInfo {
    MatchInfo {
        name: "shop".into(),
        base_path: "/shop".into(),
        trailing_path: "/items".into(),
    }
}

fn access_token() -> AccessToken {
    AccessToken {
        access_token: TOKEN.into(),
        active: Some(true),
        audience: Some(vec!["api".into()]),
        client_id: Some("app-1".into()),
        subject: Some("alice".into()),
        token_type: "bearer".into(),
        user_token: Some(true),
        username: Some("alice".into()),
        ..AccessToken::default()
    }
}

/// A matched, allowed exchange with every identifier captured.
pub(super) fn exchange() -> Exchange {
    Exchange {
        request: Request::parse(RequestView {
            method: "GET".into(),
            path: "/shop/items?id=1&tag=a&tag=b".into(),
            authority: "shop.example.com".into(),
            scheme: "http".into(),
            headers: hv(&[
                (":method", "GET"),
                (":path", "/shop/items?id=1&tag=a&tag=b"),
                (":authority", "shop.example.com"),
                ("user-agent", "curl/8.5.0"),
                ("authorization", &format!("Bearer {TOKEN}")),
                ("cookie", &format!("session={COOKIE}; theme=dark")),
                ("x-api-key", API_KEY),
                ("x-request-id", "req-1"),
            ]),
            peer: Some("203.0.113.7:5555".into()),
            protocol: None,
        }),
        start_ms: START,
        end_ms: START + 3,
        outcome: Outcome {
            api: Some(shop()),
            identity: Identity {
                client: Client {
                    ip: Some("203.0.113.7".into()),
                    token: Some(TOKEN.into()),
                    api_key: Some(API_KEY.into()),
                    cookie: Some(COOKIE.into()),
                    username: Some("alice".into()),
                    client_id: Some("app-1".into()),
                    cookie_decoded: None,
                },
                jwt: Some(JwtOutcome {
                    status: JwtStatus::Ok,
                    error: None,
                }),
                access_token: Some(access_token()),
                identity_provider: Some("jwt:h:authorization:bearer".into()),
            },
            decision: Some(Decision::allow()),
            admin: false,
            decoy_response_def: None,
            sideband: None,
            paz: None,
        },
        response_status: Some(200),
        response_headers: hv(&[
            (":status", "200"),
            ("content-type", "application/json"),
            ("set-cookie", &format!("session={COOKIE}; HttpOnly")),
        ]),
        bytes_in: 0,
        bytes_out: 512,
        client_cert: None,
    }
}

/// The record as the filter writes it (its own JSON writer), checked byte for byte against
/// serde_json's text of the same record.
fn rec(x: &Exchange, mode: Redact) -> Value {
    let text = build(x, mode);
    let secrets = secrets(x, mode);
    let record = Record::new(x, mode, RecordParts::default(), &secrets);
    assert_eq!(text, serde_json::to_string(&record).unwrap());
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v, build_value(x, mode));
    v
}

fn at(v: &Value, pointer: &str) -> Value {
    v.pointer(pointer).cloned().unwrap_or(Value::Null)
}

fn attr(v: &Value, name: &str) -> Value {
    v.get("attributes")
        .and_then(|a| a.get(name))
        .cloned()
        .unwrap_or(Value::Null)
}

fn has_attr(v: &Value, name: &str) -> bool {
    v.get("attributes").and_then(|a| a.get(name)).is_some()
}

#[test]
fn allowed_exchange_is_exactly_the_contract() {
    let want = json!({
        "action": "outbound-GET",
        "service": "shop",
        "domain": null,
        "identityProvider": "jwt:h:authorization:bearer",
        "attributes": {
            "HttpRequest.IPAddress": "203.0.113.7",
            "HttpRequest.RequestURI": "/shop/items?id=1&tag=a&tag=b",
            "HttpRequest.ResourcePath": "/items",
            "HttpRequest.QueryParameters": { "id": ["1"], "tag": ["a", "b"] },
            "HttpRequest.RequestHeaders": {
                "user-agent": ["curl/8.5.0"],
                "authorization": [format!("Bearer {TOKEN}")],
                "cookie": [format!("session={COOKIE}; theme=dark")],
                "x-api-key": [API_KEY],
                "x-request-id": ["req-1"]
            },
            "HttpRequest.CorrelationId": "req-1",
            "HttpRequest.AccessToken": {
                "access_token": TOKEN, "active": true, "audience": ["api"], "client_id": "app-1",
                "subject": "alice", "token_type": "bearer", "user_token": true, "username": "alice"
            },
            "HttpRequest.ResponseStatus": 200,
            "HttpRequest.ResponseHeaders": {
                "content-type": ["application/json"],
                "set-cookie": [format!("session={COOKIE}; HttpOnly")]
            },
            "Gateway": { "_BasePath": "/shop", "_TrailingPath": "/items" }
        },
        "ase": {
            "api": "shop",
            "decision": "allow",
            "reason": null,
            "client": {
                "ip": "203.0.113.7", "token": TOKEN, "api_key": API_KEY, "cookie": COOKIE,
                "username": "alice", "client_id": "app-1"
            },
            "jwt": { "status": "ok" }
        },
        "timestamp": "2023-11-14T22:13:20.123Z",
        "duration_ms": 3,
        "bytes_in": 0,
        "bytes_out": 512
    });
    let got = rec(&exchange(), Redact::None);
    assert_eq!(got, want, "{got:#}");
}

#[test]
fn build_is_the_text_of_build_value() {
    let x = exchange();
    let text = build(&x, Redact::Hash);
    let parsed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed, build_value(&x, Redact::Hash));
    assert!(!text.contains('\n'), "one access-log line");
}

#[test]
fn action_is_outbound_and_the_method() {
    for m in [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PROPFIND",
    ] {
        let mut x = exchange();
        x.request.view.method = m.into();
        assert_eq!(rec(&x, Redact::None)["action"], format!("outbound-{m}"));
    }
}

#[test]
fn timestamp_is_rfc3339_utc_with_milliseconds() {
    let rows: [(u64, &str); 6] = [
        (0, "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (999, "1970-01-01T00:00:00.999Z"),
        (START, "2023-11-14T22:13:20.123Z"),
        (951_782_400_007, "2000-02-29T00:00:00.007Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ];
    for (ms, want) in rows {
        assert_eq!(timestamp(ms), want, "{ms}");
        let mut x = exchange();
        x.start_ms = ms;
        x.end_ms = ms;
        assert_eq!(rec(&x, Redact::None)["timestamp"], want);
    }
    // Beyond year 9999 there is no RFC 3339 text; it must not panic.
    assert_eq!(timestamp(u64::MAX), "");
}

#[test]
fn duration_and_bytes() {
    let mut x = exchange();
    x.start_ms = 1_000;
    x.end_ms = 1_250;
    x.bytes_in = 17;
    x.bytes_out = 4096;
    let v = rec(&x, Redact::None);
    assert_eq!(v["duration_ms"], 250);
    assert_eq!(v["bytes_in"], 17);
    assert_eq!(v["bytes_out"], 4096);
    x.end_ms = 500;
    assert_eq!(
        rec(&x, Redact::None)["duration_ms"],
        0,
        "a clock going back saturates"
    );
}

#[test]
fn a_request_the_filter_never_saw_is_stamped_when_it_is_logged() {
    // Envoy answered the request itself (400, 431): no request headers, no start time.
    let x = Exchange {
        end_ms: START,
        response_status: Some(431),
        ..Exchange::default()
    };
    let v = rec(&x, Redact::None);
    assert_eq!(v["timestamp"], "2023-11-14T22:13:20.123Z");
    assert_eq!(v["duration_ms"], 0);
    assert_eq!(v["action"], "outbound-");
    assert_eq!(attr(&v, "HttpRequest.ResponseStatus"), 431);
}

#[test]
fn header_maps_group_repeats_by_lowercase_name_and_skip_pseudo_headers() {
    let mut x = exchange();
    x.request.view.headers = hv(&[
        (":method", "GET"),
        (":path", "/shop/items"),
        ("Accept", "text/html"),
        ("accept", "application/json"),
        ("X-Forwarded-For", "1.1.1.1"),
        ("x-forwarded-for", "2.2.2.2"),
        ("x-empty", ""),
        ("x-request-id", "r-7"),
    ]);
    x.response_headers = hv(&[(":status", "503"), ("Vary", "accept"), ("vary", "origin")]);
    let v = rec(&x, Redact::None);
    assert_eq!(
        attr(&v, "HttpRequest.RequestHeaders"),
        json!({
            "accept": ["text/html", "application/json"],
            "x-forwarded-for": ["1.1.1.1", "2.2.2.2"],
            "x-empty": [""],
            "x-request-id": ["r-7"]
        })
    );
    assert_eq!(
        attr(&v, "HttpRequest.ResponseHeaders"),
        json!({ "vary": ["accept", "origin"] })
    );
    assert_eq!(attr(&v, "HttpRequest.CorrelationId"), "r-7");
}

#[test]
fn header_map_function_shapes() {
    let h = hv(&[
        (":authority", "a"),
        ("Set-Cookie", "a=1"),
        ("set-cookie", "b=2"),
        ("X-One", "1"),
    ]);
    let none = header_map(&h, Redact::None);
    assert_eq!(none, json!({"set-cookie": ["a=1", "b=2"], "x-one": ["1"]}));
    let hash = header_map(&h, Redact::Hash);
    assert_eq!(
        hash,
        json!({"set-cookie": [sha("a=1"), sha("b=2")], "x-one": ["1"]})
    );
    let omit = header_map(&h, Redact::Omit);
    assert_eq!(omit, json!({"x-one": ["1"]}));
    assert_eq!(header_map(&[], Redact::None), json!({}));
}

#[test]
fn missing_request_id_and_no_headers() {
    let mut x = exchange();
    x.request.view.headers.clear();
    x.response_headers.clear();
    x.response_status = None;
    let v = rec(&x, Redact::None);
    assert_eq!(attr(&v, "HttpRequest.RequestHeaders"), json!({}));
    assert_eq!(attr(&v, "HttpRequest.ResponseHeaders"), json!({}));
    assert!(has_attr(&v, "HttpRequest.CorrelationId"));
    assert_eq!(attr(&v, "HttpRequest.CorrelationId"), Value::Null);
    assert!(has_attr(&v, "HttpRequest.ResponseStatus"));
    assert_eq!(attr(&v, "HttpRequest.ResponseStatus"), Value::Null);
}

#[test]
fn query_parameter_maps() {
    let rows: [(&str, Value); 8] = [
        ("/shop/items", json!({})),
        ("/shop/items?", json!({})),
        ("/shop/items?id=1", json!({"id": ["1"]})),
        (
            "/shop/items?a=1&a=2&b=3&a=4",
            json!({"a": ["1", "2", "4"], "b": ["3"]}),
        ),
        ("/shop/items?flag&x=", json!({"flag": [""], "x": [""]})),
        (
            "/shop/items?q=a%20b+c&n%61me=%E2%9C%93",
            json!({"q": ["a b c"], "name": ["✓"]}),
        ),
        ("/shop/items?a=1&&b=2", json!({"a": ["1"], "b": ["2"]})),
        (
            "/shop/items?bad=%zz%4&x=%ff",
            json!({"bad": ["%zz%4"], "x": ["\u{FFFD}"]}),
        ),
    ];
    for (path, want) in rows {
        let mut x = exchange();
        x.request.view.path = path.into();
        x.request.reparse();
        let v = rec(&x, Redact::None);
        assert_eq!(attr(&v, "HttpRequest.QueryParameters"), want, "{path}");
        assert_eq!(attr(&v, "HttpRequest.RequestURI"), path, "URI as received");
    }
}

#[test]
fn redact_function() {
    assert_eq!(redact(Redact::None, "abc").as_deref(), Some("abc"));
    assert_eq!(redact(Redact::Omit, "abc"), None);
    assert_eq!(
        redact(Redact::Hash, "abc").as_deref(),
        Some("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        redact(Redact::Hash, "").as_deref(),
        Some("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    let h = redact(Redact::Hash, "anything at all").unwrap();
    let hex = h.strip_prefix("sha256:").unwrap();
    assert_eq!(hex.len(), 64);
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
}

#[test]
fn redaction_modes_cover_every_sensitive_value() {
    let x = exchange();
    let bearer = format!("Bearer {TOKEN}");
    let cookie_h = format!("session={COOKIE}; theme=dark");
    let set_cookie = format!("session={COOKIE}; HttpOnly");
    let s = |v: &str| Value::String(v.to_string());
    // (mode, expected value or Null for "left out", per sensitive place)
    type Expect = fn(&str) -> Value;
    let rows: [(Redact, Expect); 3] = [
        (Redact::None, |v| Value::String(v.to_string())),
        (Redact::Hash, |v| Value::String(sha(v))),
        (Redact::Omit, |_| Value::Null),
    ];
    for (mode, expect) in rows {
        let v = rec(&x, mode);
        let m = format!("{mode:?}");
        assert_eq!(at(&v, "/ase/client/token"), expect(TOKEN), "{m}");
        assert_eq!(at(&v, "/ase/client/api_key"), expect(API_KEY), "{m}");
        assert_eq!(at(&v, "/ase/client/cookie"), expect(COOKIE), "{m}");
        let first = |name: &str, p: &str| at(&v, &format!("/attributes/{name}/{p}/0"));
        assert_eq!(
            first("HttpRequest.RequestHeaders", "authorization"),
            expect(&bearer),
            "{m}"
        );
        assert_eq!(
            first("HttpRequest.RequestHeaders", "cookie"),
            expect(&cookie_h),
            "{m}"
        );
        assert_eq!(
            first("HttpRequest.ResponseHeaders", "set-cookie"),
            expect(&set_cookie),
            "{m}"
        );
        assert_eq!(
            at(&v, "/attributes/HttpRequest.AccessToken/access_token"),
            expect(TOKEN),
            "{m}"
        );
        // Values that are not credentials never change.
        assert_eq!(at(&v, "/ase/client/ip"), s("203.0.113.7"), "{m}");
        assert_eq!(at(&v, "/ase/client/username"), s("alice"), "{m}");
        assert_eq!(at(&v, "/ase/client/client_id"), s("app-1"), "{m}");
        assert_eq!(
            first("HttpRequest.RequestHeaders", "user-agent"),
            s("curl/8.5.0"),
            "{m}"
        );
        assert_eq!(
            at(&v, "/attributes/HttpRequest.AccessToken/subject"),
            s("alice"),
            "{m}"
        );
        assert_eq!(
            at(&v, "/attributes/HttpRequest.AccessToken/token_type"),
            s("bearer"),
            "{m}"
        );
        if mode == Redact::Omit {
            let obj = |p: &str| v.pointer(p).and_then(Value::as_object).unwrap().clone();
            for k in ["token", "api_key", "cookie"] {
                assert!(!obj("/ase/client").contains_key(k), "omit leaves out {k}");
            }
            let req_h = obj("/attributes/HttpRequest.RequestHeaders");
            assert!(!req_h.contains_key("authorization") && !req_h.contains_key("cookie"));
            assert!(!obj("/attributes/HttpRequest.ResponseHeaders").contains_key("set-cookie"));
            assert!(!obj("/attributes/HttpRequest.AccessToken").contains_key("access_token"));
        }
        if mode != Redact::None {
            let text = v.to_string();
            for secret in [TOKEN, API_KEY, COOKIE] {
                assert!(
                    !text.contains(secret),
                    "{m}: {secret:?} still appears in {text}"
                );
            }
        }
    }
}

#[test]
fn credentials_in_the_query_or_custom_headers_are_redacted_everywhere() {
    // The API key in a query parameter, the token as `access_token`, a JWT in a custom header.
    let mut x = exchange();
    x.request.view.path = format!("/shop/items?id=1&key={API_KEY}&access_token={TOKEN}#frag");
    x.request.reparse();
    x.request.view.headers = hv(&[
        ("x-jwt", &format!("Bearer {TOKEN}")),
        ("x-other", "keep-me"),
        ("x-request-id", "r-1"),
    ]);
    let none = rec(&x, Redact::None);
    assert_eq!(
        attr(&none, "HttpRequest.RequestURI"),
        Value::String(x.request.view.path.clone()),
        "none writes the URI as received"
    );
    assert_eq!(
        at(&none, "/attributes/HttpRequest.QueryParameters/key/0"),
        API_KEY
    );

    let hash = rec(&x, Redact::Hash);
    assert_eq!(
        attr(&hash, "HttpRequest.RequestURI"),
        Value::String(format!(
            "/shop/items?id=1&key={}&access_token={}#frag",
            sha(API_KEY),
            sha(TOKEN)
        ))
    );
    assert_eq!(
        attr(&hash, "HttpRequest.QueryParameters"),
        json!({"id": ["1"], "key": [sha(API_KEY)], "access_token": [sha(TOKEN)]})
    );
    assert_eq!(
        attr(&hash, "HttpRequest.RequestHeaders"),
        json!({"x-jwt": [sha(&format!("Bearer {TOKEN}"))], "x-other": ["keep-me"], "x-request-id": ["r-1"]})
    );

    let omit = rec(&x, Redact::Omit);
    assert_eq!(
        attr(&omit, "HttpRequest.RequestURI"),
        "/shop/items?id=1#frag"
    );
    assert_eq!(
        attr(&omit, "HttpRequest.QueryParameters"),
        json!({"id": ["1"]})
    );
    assert_eq!(
        attr(&omit, "HttpRequest.RequestHeaders"),
        json!({"x-other": ["keep-me"], "x-request-id": ["r-1"]})
    );
    for v in [&hash, &omit] {
        let text = v.to_string();
        assert!(!text.contains(TOKEN) && !text.contains(API_KEY), "{text}");
    }
}

#[test]
fn percent_encoded_credentials_in_the_query_are_redacted() {
    let mut x = exchange();
    x.outcome.identity.client.api_key = Some("a b/c".into());
    x.request.view.path = "/shop/items?key=a%20b%2Fc".into();
    x.request.reparse();
    let v = rec(&x, Redact::Hash);
    assert_eq!(
        attr(&v, "HttpRequest.RequestURI"),
        Value::String(format!("/shop/items?key={}", sha("a b/c")))
    );
    assert_eq!(at(&v, "/ase/client/api_key"), Value::String(sha("a b/c")));
    let v = rec(&x, Redact::Omit);
    assert_eq!(attr(&v, "HttpRequest.RequestURI"), "/shop/items");
}

#[test]
fn the_admin_key_is_never_written_as_is() {
    let mut x = exchange();
    x.outcome.admin = true;
    x.request.view.headers = hv(&[(crate::admin::KEY_HEADER, "0123456789abcdef-secret")]);
    for (mode, want) in [
        (Redact::None, json!([sha("0123456789abcdef-secret")])),
        (Redact::Hash, json!([sha("0123456789abcdef-secret")])),
        (Redact::Omit, Value::Null),
    ] {
        let v = rec(&x, mode);
        assert_eq!(
            at(
                &v,
                &format!(
                    "/attributes/HttpRequest.RequestHeaders/{}",
                    crate::admin::KEY_HEADER
                )
            ),
            want,
            "{mode:?}"
        );
        assert!(!v.to_string().contains("0123456789abcdef-secret"));
        assert_eq!(at(&v, "/ase/admin"), true);
    }
}

#[test]
fn unmatched_request() {
    let mut x = exchange();
    x.outcome.api = None;
    x.outcome.identity = Identity {
        client: Client {
            ip: Some("198.51.100.2".into()),
            ..Client::default()
        },
        ..Identity::default()
    };
    x.outcome.decision = None;
    let v = rec(&x, Redact::None);
    assert_eq!(v["service"], Value::Null);
    assert_eq!(v["domain"], Value::Null);
    assert_eq!(v["identityProvider"], Value::Null);
    assert_eq!(attr(&v, "Gateway"), json!({}));
    assert!(has_attr(&v, "HttpRequest.ResourcePath"));
    assert_eq!(attr(&v, "HttpRequest.ResourcePath"), Value::Null);
    assert!(!has_attr(&v, "HttpRequest.AccessToken"));
    assert_eq!(
        v["ase"],
        json!({"api": null, "decision": "allow", "reason": null,
               "client": {"ip": "198.51.100.2"}, "jwt": null})
    );
    assert_eq!(attr(&v, "HttpRequest.IPAddress"), "198.51.100.2");
    for k in [
        "action",
        "attributes",
        "ase",
        "timestamp",
        "duration_ms",
        "bytes_in",
        "bytes_out",
    ] {
        assert!(v.get(k).is_some(), "{k}");
    }
}

#[test]
fn root_api_and_base_path_only() {
    let mut x = exchange();
    x.outcome.api = Some(MatchInfo {
        name: "root".into(),
        base_path: "/".into(),
        trailing_path: String::new(),
    });
    let v = rec(&x, Redact::None);
    assert_eq!(
        attr(&v, "Gateway"),
        json!({"_BasePath": "/", "_TrailingPath": ""})
    );
    assert_eq!(attr(&v, "HttpRequest.ResourcePath"), "");
    assert_eq!(v["service"], "root");
    assert_eq!(at(&v, "/ase/api"), "root");
}

#[test]
fn decisions_in_the_ase_section() {
    let block = |cause: Cause, source: Option<Source>| Decision {
        verdict: Verdict::Block,
        cause: Some(cause),
        mode: Mode::Enforced,
        source,
        ..Decision::allow()
    };
    let rows: [(Decision, Value); 5] = [
        (
            block(Cause::DenyList(IdType::ApiKey), Some(Source::Config)),
            json!({"decision": "block", "reason": "deny_list:api_key", "list_source": "config"}),
        ),
        (
            block(Cause::DenyList(IdType::Ip), Some(Source::Detected)),
            json!({"decision": "block", "reason": "deny_list:ip", "list_source": "detected"}),
        ),
        (
            block(Cause::TokenMissing, None),
            json!({"decision": "block", "reason": "token_missing"}),
        ),
        (
            Decision {
                verdict: Verdict::Allow,
                cause: Some(Cause::DenyList(IdType::Username)),
                mode: Mode::Monitored,
                source: Some(Source::Admin),
                ..Decision::allow()
            },
            json!({"decision": "allow", "reason": null, "would_block": "deny_list:username",
                   "list_source": "admin"}),
        ),
        (
            Decision {
                verdict: Verdict::Allow,
                cause: Some(Cause::DenyList(IdType::Ip)),
                mode: Mode::AllowListed(IdType::Ip),
                source: None,
                ..Decision::allow()
            },
            json!({"decision": "allow", "reason": "allow_list:ip"}),
        ),
    ];
    for (d, want) in rows {
        let mut x = exchange();
        x.outcome.decision = Some(d.clone());
        let v = rec(&x, Redact::None);
        let ase = v["ase"].as_object().unwrap();
        for (k, w) in want.as_object().unwrap() {
            assert_eq!(ase.get(k), Some(w), "{d:?}: {k}");
        }
        assert_eq!(ase.contains_key("would_block"), d.would_block().is_some());
        assert_eq!(ase.contains_key("list_source"), d.source.is_some());
        assert!(!ase.contains_key("admin"));
    }
}

#[test]
fn client_and_jwt_sections() {
    let mut x = exchange();
    x.outcome.identity.client = Client {
        ip: None,
        username: Some("bob".into()),
        ..Client::default()
    };
    x.outcome.identity.jwt = Some(JwtOutcome {
        status: JwtStatus::Invalid,
        error: Some("expected 3 parts, found 2".into()),
    });
    x.outcome.identity.access_token = None;
    x.outcome.identity.identity_provider = Some("header:x-user".into());
    let v = rec(&x, Redact::Hash);
    assert_eq!(at(&v, "/ase/client"), json!({"username": "bob"}));
    assert_eq!(
        at(&v, "/ase/jwt"),
        json!({"status": "invalid", "error": "expected 3 parts, found 2"})
    );
    assert_eq!(v["identityProvider"], "header:x-user");
    assert!(!has_attr(&v, "HttpRequest.AccessToken"));
    assert_eq!(attr(&v, "HttpRequest.IPAddress"), Value::Null);

    for (status, text) in [
        (JwtStatus::Absent, "absent"),
        (JwtStatus::TooLarge, "too_large"),
        (JwtStatus::Ok, "ok"),
    ] {
        x.outcome.identity.jwt = Some(JwtOutcome {
            status,
            error: None,
        });
        assert_eq!(at(&rec(&x, Redact::None), "/ase/jwt/status"), text);
    }
}

#[test]
fn opaque_access_token() {
    let mut x = exchange();
    x.outcome.identity.access_token = Some(AccessToken::opaque(TOKEN));
    let v = rec(&x, Redact::None);
    assert_eq!(
        attr(&v, "HttpRequest.AccessToken"),
        json!({"access_token": TOKEN, "token_type": "bearer"})
    );
    let v = rec(&x, Redact::Omit);
    assert_eq!(
        attr(&v, "HttpRequest.AccessToken"),
        json!({"token_type": "bearer"})
    );
}

#[test]
fn client_certificate_only_when_set() {
    let x = exchange();
    assert!(!has_attr(
        &rec(&x, Redact::None),
        "HttpRequest.ClientCertificate"
    ));
    let mut x = exchange();
    x.client_cert = Some(ClientCert {
        subject: Some("CN=client".into()),
        issuer: Some("CN=ca".into()),
        not_before: Some("2024-01-01T00:00:00Z".into()),
        not_after: Some("2025-01-01T00:00:00Z".into()),
        valid: true,
    });
    assert_eq!(
        attr(&rec(&x, Redact::None), "HttpRequest.ClientCertificate"),
        json!({"subject": "CN=client", "issuer": "CN=ca", "notBefore": "2024-01-01T00:00:00Z",
               "notAfter": "2025-01-01T00:00:00Z", "valid": true})
    );
    x.client_cert = Some(ClientCert::default());
    assert_eq!(
        attr(&rec(&x, Redact::Omit), "HttpRequest.ClientCertificate"),
        json!({"subject": null, "issuer": null, "notBefore": null, "notAfter": null,
               "valid": false})
    );
}

#[test]
fn admin_exchange_is_flagged() {
    let mut x = exchange();
    x.outcome.admin = true;
    x.outcome.api = None;
    x.outcome.decision = None;
    x.response_status = Some(401);
    let v = rec(&x, Redact::None);
    assert_eq!(at(&v, "/ase/admin"), true);
    assert_eq!(attr(&v, "HttpRequest.ResponseStatus"), 401);
    assert_eq!(at(&v, "/ase/decision"), "allow");
}

#[test]
fn odd_text_is_escaped_into_valid_json() {
    let mut x = exchange();
    x.request.view.path = "/shop/\"quoted\"\\?q=\u{FFFD}\u{0}\n".into();
    x.request.reparse();
    x.request.view.method = "G\"ET".into();
    x.request.view.headers = hv(&[
        ("x-weird", "tab\there \u{1F600} \u{7f}"),
        ("x-nl", "a\r\nb"),
    ]);
    let text = build(&x, Redact::Hash);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["action"], "outbound-G\"ET");
    assert_eq!(
        at(&v, "/attributes/HttpRequest.RequestHeaders/x-weird/0"),
        "tab\there \u{1F600} \u{7f}"
    );
    assert!(!text.contains('\n'));
    let big = "v".repeat(100_000);
    x.request.view.headers = hv(&[("x-big", &big)]);
    let v = rec(&x, Redact::None);
    assert_eq!(
        at(&v, "/attributes/HttpRequest.RequestHeaders/x-big/0")
            .as_str()
            .map(str::len),
        Some(100_000)
    );
}
