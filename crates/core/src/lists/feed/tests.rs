//! Table-driven tests of the attack-list document in both shapes (api-warden's and ABS's), their
//! TTLs, and bad input.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;

const NOW_MS: u64 = 1_700_000_000_500;
const NOW_S: u64 = 1_700_000_001; // rounded up

/// (type, value, expiry) of every entry, in type order.
fn entries(f: &Feed) -> Vec<(IdType, String, u64)> {
    IdType::ALL
        .into_iter()
        .flat_map(|t| {
            f.values[type_idx(t)]
                .iter()
                .map(move |v| (t, v.clone(), f.expiry_of(t, v)))
        })
        .collect()
}

/// One row: name, document, the entries it gives, the items skipped.
type Row = (
    &'static str,
    &'static str,
    Vec<(IdType, String, u64)>,
    usize,
);

fn e(t: IdType, v: &str, exp: u64) -> (IdType, String, u64) {
    (t, v.to_string(), exp)
}

#[test]
fn both_shapes_parse_into_the_same_feed() {
    use IdType::*;
    let rows: Vec<Row> = vec![
        (
            "ours",
            r#"{"ip": ["10.0.0.1"], "token": ["t"], "api_key": ["k"], "cookie": ["c"],
                "username": ["u", {"value": "v", "ttl_s": 60}], "other": 1}"#,
            vec![
                e(Ip, "10.0.0.1", 0),
                e(Token, "t", 0),
                e(ApiKey, "k", 0),
                e(Cookie, "c", 0),
                e(Username, "u", 0),
                e(Username, "v", NOW_S + 60),
            ],
            0,
        ),
        (
            "abs, the keys of its delete request",
            r#"{"ips": ["192.168.4.10"], "cookies": {"JSESSIONID": ["Cookie3"], "SID": ["c2"]},
                "oauth_tokens": ["Token1"], "api_keys": ["api_key_1"], "usernames": ["username1"]}"#,
            vec![
                e(Ip, "192.168.4.10", 0),
                e(Token, "Token1", 0),
                e(ApiKey, "api_key_1", 0),
                e(Cookie, "Cookie3", 0),
                e(Cookie, "c2", 0),
                e(Username, "username1", 0),
            ],
            0,
        ),
        (
            "abs objects with ttl in minutes, expires_at, ttl 0, unknown members",
            r#"{"ips": [{"value": "10.0.0.9", "ttl": 2, "status": "active"}],
                "usernames": [{"value": "a", "expires_at": 1800000000}, {"value": "b", "ttl": 0},
                              {"value": "c", "ttl_s": 5}],
                "cookies": {"JSESSIONID": [{"value": "x", "ttl": 1}]}, "count": 3}"#,
            vec![
                e(Ip, "10.0.0.9", NOW_S + 120),
                e(Cookie, "x", NOW_S + 60),
                e(Username, "a", 1_800_000_000),
                e(Username, "b", 0),
                e(Username, "c", NOW_S + 5),
            ],
            0,
        ),
        (
            "ours: ttl is not a unit of ours and is ignored",
            r#"{"username": [{"value": "u", "ttl": 5}]}"#,
            vec![e(Username, "u", 0)],
            0,
        ),
        (
            "duplicates keep the longest lifetime, forever first",
            r#"{"usernames": [{"value": "u", "ttl_s": 5}, {"value": "u", "ttl_s": 50}, "w",
                              {"value": "w", "ttl_s": 9}]}"#,
            vec![e(Username, "u", NOW_S + 50), e(Username, "w", 0)],
            0,
        ),
        (
            "bad items are skipped and counted",
            r#"{"ips": ["not an ip", 7, null, {"value": 3}, "10.0.0.1"],
                "usernames": ["", {"value": "t", "ttl": -1}, {"value": "t2", "ttl": "1"}, ["x"]],
                "cookies": {"A": [true], "B": null}}"#,
            vec![e(Ip, "10.0.0.1", 0)],
            9,
        ),
        (
            "nulls are empty",
            r#"{"ips": null, "cookies": null}"#,
            vec![],
            0,
        ),
        ("empty", "{}", vec![], 0),
    ];
    for (name, body, want, want_skipped) in rows {
        let (f, skipped, next) =
            Feed::parse_page_at(body.as_bytes(), NOW_MS).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(entries(&f), want, "{name}");
        assert_eq!(skipped, want_skipped, "{name}");
        assert_eq!(next, None, "{name}");
    }
}

#[test]
fn bad_documents_are_errors() {
    let rows = [
        ("not json", "nope", "not valid"),
        ("an array", "[1]", "not valid"),
        ("trailing bytes", "{} x", "not valid"),
        (
            "a type that is not an array",
            r#"{"usernames": "u"}"#,
            "array",
        ),
        ("ours, not an array", r#"{"ip": "1.2.3.4"}"#, "array"),
        (
            "abs cookies as an array",
            r#"{"cookies": ["c"]}"#,
            "cookie name",
        ),
        (
            "abs cookies of strings",
            r#"{"cookies": {"A": "c"}}"#,
            "array",
        ),
        (
            "mixed shapes",
            r#"{"ip": ["10.0.0.1"], "usernames": ["u"]}"#,
            "mixes",
        ),
    ];
    for (name, body, want) in rows {
        let e = Feed::parse_page_at(body.as_bytes(), NOW_MS).unwrap_err();
        assert!(e.contains(want), "{name}: {e}");
    }
}

#[test]
fn next_and_merge_keep_lifetimes() {
    let (mut a, _, next) = Feed::parse_page_at(
        br#"{"usernames": [{"value": "u", "ttl_s": 5}], "next": "/p2"}"#,
        NOW_MS,
    )
    .unwrap();
    assert_eq!(next.as_deref(), Some("/p2"));
    let (b, _, next) = Feed::parse_page_at(
        br#"{"usernames": [{"value": "u", "ttl_s": 50}, {"value": "v", "ttl_s": 7}], "next": ""}"#,
        NOW_MS,
    )
    .unwrap();
    assert_eq!(next, None);
    a.merge(b);
    assert_eq!(
        entries(&a),
        vec![
            e(IdType::Username, "u", NOW_S + 50),
            e(IdType::Username, "v", NOW_S + 7)
        ]
    );
}

#[test]
fn stored_entries_expire_when_their_ttl_is_over() {
    let s = MemStore::default();
    let (f, _) =
        Feed::parse(br#"{"usernames": [{"value": "short", "expires_at": 1000}, "forever"]}"#)
            .unwrap();
    replace_feed(&s, &f).unwrap();
    let got: Vec<(String, u64)> = feed_entries(&s, IdType::Username, 10)
        .into_iter()
        .map(|e| (e.value, e.expires_at))
        .collect();
    assert!(got.contains(&("short".to_string(), 1000)), "{got:?}");
    assert!(got.contains(&("forever".to_string(), 0)), "{got:?}");
    let config = ConfigLists::default();
    let at = |now: u64| {
        Lookup::new(&s, &config, now, false)
            .find(ListKind::Deny, IdType::Username, "short")
            .is_some()
    };
    assert!(at(999));
    assert!(!at(1000));
}
