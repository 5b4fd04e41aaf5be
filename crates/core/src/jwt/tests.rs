//! Tests of JWT payload decoding, claim extraction and the AccessToken shape.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::json;

use super::*;

/// An unsigned compact JWS with the given payload bytes (header `{"alg":"none"}`).
fn unsigned(payload: &[u8]) -> String {
    format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(payload)
    )
}

fn claims(v: Value) -> Claims {
    match v {
        Value::Object(m) => m,
        _ => Claims::new(),
    }
}

fn err(s: &str) -> Result<Claims, JwtError> {
    Err(JwtError::Invalid(s.to_string()))
}

#[test]
fn part_counts() {
    let rows: &[(&str, &str)] = &[
        ("", "expected 3 parts, found 1"),
        ("abc", "expected 3 parts, found 1"),
        ("a.b", "expected 3 parts, found 2"),
        ("a.b.c.d", "expected 3 parts, found 4"),
        ("h.ek.iv.ct.tag", "expected 3 parts, found 5"),
        ("..", "payload is empty"),
        ("a..c", "payload is empty"),
    ];
    for (token, want) in rows {
        assert_eq!(decode_payload(token), err(want), "{token:?}");
    }
}

#[test]
fn payload_encodings() {
    let payload = br#"{"sub":"~~~?>>","n":1}"#; // encodes with `-`/`_` and `+`/`/`
    let want = claims(json!({"sub": "~~~?>>", "n": 1}));
    for encoded in [
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE.encode(payload),
        STANDARD.encode(payload),
    ] {
        let token = format!("h.{encoded}.s");
        assert_eq!(decode_payload(&token), Ok(want.clone()), "{encoded}");
    }
    // Header and signature are never looked at.
    assert!(decode_payload(&format!("!!.{}.", URL_SAFE_NO_PAD.encode(payload))).is_ok());
}

#[test]
fn payload_errors() {
    let rows: &[(String, &str)] = &[
        ("h.!!!.s".into(), "payload is not valid base64url"),
        ("h.a.s".into(), "payload is not valid base64url"),
        ("h.e30===.s".into(), "payload is not valid base64url"),
        (unsigned(b"[1,2]"), "payload is not a JSON object"),
        (unsigned(b"\"sub\""), "payload is not a JSON object"),
        (unsigned(b"null"), "payload is not a JSON object"),
    ];
    for (token, want) in rows {
        assert_eq!(decode_payload(token), err(want), "{token:?}");
    }
    for bad in [&b"{"[..], b"{\"a\":\xff}", b"{\"a\":\"\xff\"}", b"{} x"] {
        match decode_payload(&unsigned(bad)) {
            Err(JwtError::Invalid(r)) => assert!(r.starts_with("payload is not valid JSON"), "{r}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[test]
fn deep_nesting_is_rejected_not_recursed() {
    let depth = 100_000;
    let payload = format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
    // Over the size limit: rejected before decoding.
    assert_eq!(
        decode_payload(&unsigned(payload.as_bytes())),
        Err(JwtError::TooLarge)
    );
    // Within the size limit but deeper than serde_json's recursion limit.
    let payload = format!("{{\"a\":{}{}}}", "[".repeat(5000), "]".repeat(5000));
    match decode_payload(&unsigned(payload.as_bytes())) {
        Err(JwtError::Invalid(r)) => assert!(r.contains("recursion limit"), "{r}"),
        other => panic!("{other:?}"),
    }
    // 64 levels are fine.
    let payload = format!("{{\"a\":{}{}}}", "[".repeat(64), "]".repeat(64));
    assert!(decode_payload(&unsigned(payload.as_bytes())).is_ok());
}

#[test]
fn size_limit() {
    let at_limit = "a".repeat(MAX_TOKEN_BYTES);
    assert_eq!(decode_payload(&at_limit), err("expected 3 parts, found 1"));
    let over = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(decode_payload(&over), Err(JwtError::TooLarge));
    let huge = format!("h.{}.s", "A".repeat(10 * 1024 * 1024));
    assert_eq!(decode_payload(&huge), Err(JwtError::TooLarge));
    assert_eq!(
        JwtError::TooLarge.to_string(),
        "token is longer than 16384 bytes"
    );
}

#[test]
fn claim_shapes() {
    use ClaimRule::{Scalar, Username};
    let c = claims(json!({
        "s": "alice", "empty": "", "uni": "ünï💩", "int": 42, "neg": -7, "float": 1.5,
        "whole_float": 1.0, "exp_float": 1e3, "big": 18446744073709551615u64,
        "arr_s": ["first", "second"], "arr_n": [42, "x"], "arr_e": [], "arr_o": [{"a": 1}],
        "arr_empty_s": [""], "obj": {"a": 1}, "t": true, "nul": null, "client_id": ["c1"],
    }));
    let rows: &[(&str, ClaimRule, Result<&str, &str>)] = &[
        ("s", Username, Ok("alice")),
        ("s", Scalar, Ok("alice")),
        ("uni", Scalar, Ok("ünï💩")),
        ("int", Scalar, Ok("42")),
        ("neg", Username, Ok("-7")),
        ("float", Scalar, Ok("1.5")),
        ("whole_float", Scalar, Ok("1.0")),
        ("exp_float", Scalar, Ok("1000.0")),
        ("big", Scalar, Ok("18446744073709551615")),
        ("arr_s", Username, Ok("first")),
        ("arr_n", Username, Ok("42")),
        ("missing", Username, Err("claim \"missing\" missing")),
        ("empty", Scalar, Err("claim \"empty\" is empty")),
        ("arr_empty_s", Username, Err("claim \"arr_empty_s\" is empty")),
        ("arr_e", Username, Err("claim \"arr_e\" is an empty array")),
        (
            "arr_o",
            Username,
            Err("claim \"arr_o\" is an array whose first element is an object; expected a string or number"),
        ),
        (
            "client_id",
            Scalar,
            Err("claim \"client_id\" is an array; arrays are supported only for the username claim"),
        ),
        ("obj", Username, Err("claim \"obj\" is an object; expected a string or number")),
        ("t", Scalar, Err("claim \"t\" is a boolean; expected a string or number")),
        ("nul", Username, Err("claim \"nul\" is null; expected a string or number")),
    ];
    for (name, rule, want) in rows {
        let got = claim_text(&c, name, *rule).map_err(|e| e.to_string());
        let want = want.map(str::to_string).map_err(str::to_string);
        assert_eq!(got, want, "{name} {rule:?}");
    }
}

#[test]
fn rfc3339_dates() {
    let rows: &[(i64, Option<&str>)] = &[
        (0, Some("1970-01-01T00:00:00Z")),
        (-1, Some("1969-12-31T23:59:59Z")),
        (951_782_400, Some("2000-02-29T00:00:00Z")),
        (1_700_000_000, Some("2023-11-14T22:13:20Z")),
        (4_102_444_800, Some("2100-01-01T00:00:00Z")),
        (4_107_542_399, Some("2100-02-28T23:59:59Z")),
        (4_107_542_400, Some("2100-03-01T00:00:00Z")),
        (MAX_RFC3339_S, Some("9999-12-31T23:59:59Z")),
        (MIN_RFC3339_S, Some("0001-01-01T00:00:00Z")),
        (MAX_RFC3339_S + 1, None),
        (MIN_RFC3339_S - 1, None),
        (i64::MAX, None),
        (i64::MIN, None),
    ];
    for (s, want) in rows {
        assert_eq!(rfc3339(*s).as_deref(), *want, "{s}");
    }
}

#[test]
fn civil_dates_match_a_naive_calendar() {
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let (mut y, mut m, mut d) = (1900i64, 1u32, 1u32);
    for days in -25_567..=47_482 {
        // 1900-01-01 ..= 2099-12-31
        assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
        let month_len = match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        d += 1;
        if d > month_len {
            d = 1;
            m += 1;
            if m > 12 {
                m = 1;
                y += 1;
            }
        }
    }
}

#[test]
fn numeric_dates() {
    let rows: &[(Value, Option<i64>)] = &[
        (json!(1_700_000_000), Some(1_700_000_000)),
        (json!(1_700_000_000.9), Some(1_700_000_000)),
        (json!(-0.5), Some(-1)),
        (json!(18446744073709551615u64), Some(i64::MAX)),
        (json!(1e300), Some(i64::MAX)),
        (json!(-1e300), Some(i64::MIN)),
        (json!("1700000000"), None),
        (json!(null), None),
    ];
    for (v, want) in rows {
        assert_eq!(numeric_date(v), *want, "{v}");
    }
}

#[test]
fn access_token_full() {
    let c = claims(json!({
        "iss": "https://as.example.com", "sub": "user-1", "aud": "api://shop",
        "exp": 1_700_003_600, "iat": 1_700_000_000, "nbf": 1_700_000_000,
        "scope": "read  write\tadmin", "client_id": "app", "cid": "no", "azp": "no",
        "username": "not-used", "preferred_username": "not-used",
    }));
    let at = AccessToken::from_claims("a.b.c", &c, Some("alice".into()), 1_700_000_100);
    let want = json!({
        "access_token": "a.b.c", "active": true, "audience": ["api://shop"], "client_id": "app",
        "expiration": "2023-11-14T23:13:20Z", "issued_at": "2023-11-14T22:13:20Z",
        "issuer": "https://as.example.com", "not_before": "2023-11-14T22:13:20Z",
        "scope": ["read", "write", "admin"], "subject": "user-1", "token_type": "bearer",
        "user_token": true, "username": "alice",
    });
    assert_eq!(serde_json::to_value(&at).ok(), Some(want));
}

#[test]
fn access_token_fallbacks() {
    let at = |v: Value| AccessToken::from_claims("t", &claims(v), None, 1000);
    let t = at(json!({"cid": "c", "azp": "z", "preferred_username": "p", "scp": ["a", 1, {}]}));
    assert_eq!(t.client_id.as_deref(), Some("c"));
    assert_eq!(t.username.as_deref(), Some("p"));
    assert_eq!(t.scope, Some(vec!["a".to_string(), "1".to_string()]));
    assert_eq!(t.user_token, Some(false));
    let t = at(json!({"azp": "z", "username": "u", "preferred_username": "p", "scp": "x y"}));
    assert_eq!(t.client_id.as_deref(), Some("z"));
    assert_eq!(t.username.as_deref(), Some("u"));
    assert_eq!(t.scope, Some(vec!["x".to_string(), "y".to_string()]));
    let t = at(json!({"aud": ["a", "b"], "scope": ["s1"], "scp": "ignored", "sub": 7}));
    assert_eq!(t.audience, Some(vec!["a".to_string(), "b".to_string()]));
    assert_eq!(t.scope, Some(vec!["s1".to_string()]));
    assert_eq!(t.subject.as_deref(), Some("7"));
    let t = at(json!({"aud": {"x": 1}, "scope": 5, "iss": true}));
    assert_eq!((t.audience, t.scope, t.issuer), (None, None, None));
    // Only the token, its type and the derived booleans remain.
    assert_eq!(
        serde_json::to_value(at(json!({}))).ok(),
        Some(
            json!({"access_token": "t", "active": true, "token_type": "bearer", "user_token": false})
        )
    );
}

#[test]
fn access_token_active() {
    // (claims, now, active)
    let rows: &[(Value, i64, bool)] = &[
        (json!({}), 0, true),
        (json!({"exp": 100}), 99, true),
        (json!({"exp": 100}), 100, false),
        (json!({"exp": 100.5}), 100, false),
        (json!({"nbf": 100}), 99, false),
        (json!({"nbf": 100}), 100, true),
        (json!({"nbf": 100, "exp": 200}), 150, true),
        (json!({"nbf": 100, "exp": 200}), 250, false),
        (json!({"exp": "100"}), 250, true),
        (json!({"exp": 1e300}), i64::MAX - 1, true),
    ];
    for (v, now, want) in rows {
        let t = AccessToken::from_claims("t", &claims(v.clone()), None, *now);
        assert_eq!(t.active, Some(*want), "{v} at {now}");
    }
    let t = AccessToken::from_claims("t", &claims(json!({"exp": "100"})), None, 0);
    assert_eq!(t.expiration, None);
}

#[test]
fn opaque_token() {
    assert_eq!(
        serde_json::to_value(AccessToken::opaque("mF_9.B5f-4.1JqM")).ok(),
        Some(json!({"access_token": "mF_9.B5f-4.1JqM", "token_type": "bearer"}))
    );
}

/// Tokens signed by the real `jsonwebtoken` crate (native only: it does not build for wasm).
#[cfg(not(target_arch = "wasm32"))]
mod signed {
    use super::*;
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

    /// jsonwebtoken's own 2048-bit test key (tests/rsa/private_rsa_key_pkcs1.pem).
    const RSA_PEM: &str = include_str!("test_rsa_key.pem");

    fn hs256(claims: &Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap()
    }

    fn rs256(claims: &Value) -> String {
        let key = EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap();
        encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
    }

    #[test]
    fn decodes_signed_tokens() {
        let rows = [
            json!({"sub": "alice", "exp": 2_000_000_000u64}),
            json!({"username": ["u1", "u2"], "client_id": 1234, "nested": {"a": [1, {"b": null}]}}),
            json!({"uni": "ünï💩 \u{fffd}", "scope": "a b"}),
            json!({}),
        ];
        for claims_json in rows {
            for token in [hs256(&claims_json), rs256(&claims_json)] {
                assert_eq!(token.split('.').count(), 3);
                assert_eq!(decode_payload(&token), Ok(claims(claims_json.clone())));
            }
        }
    }

    #[test]
    fn signature_is_not_checked() {
        let token = rs256(&json!({"sub": "mallory"}));
        let (head, _) = token.rsplit_once('.').unwrap();
        let forged = format!("{head}.bm90LWEtc2lnbmF0dXJl");
        assert_eq!(
            decode_payload(&forged),
            Ok(claims(json!({"sub": "mallory"})))
        );
    }
}

#[test]
fn decode_claims_builds_only_the_kept_claims_and_still_checks_the_rest() {
    let payload = json!({"sub": "s", "username": "u", "permissions": ["a", "b"],
                         "nested": {"deep": [1, {"x": null}]}, "n": 1.5});
    let token = unsigned(payload.to_string().as_bytes());
    let keep = |c: &str| c == "username" || c == "sub";
    assert_eq!(
        decode_claims(&token, keep),
        Ok(claims(json!({"sub": "s", "username": "u"})))
    );
    assert_eq!(decode_claims(&token, |_| true), decode_payload(&token));
    assert_eq!(decode_claims(&token, |_| false), Ok(Claims::new()));
    // A repeated claim: the last one wins, as with every claim kept.
    let twice = unsigned(br#"{"username":"a","username":"b"}"#);
    assert_eq!(
        decode_claims(&twice, keep),
        Ok(claims(json!({"username": "b"})))
    );
    assert_eq!(decode_claims(&twice, keep), decode_payload(&twice));
    // Malformed JSON in a claim that is not kept is still an error, with the same text.
    for bad in [
        &br#"{"username":"u","x":[1,}"#[..],
        br#"{"username":"u","x":"\q"}"#,
        br#"{"username":"u"} trailing"#,
        br#"{"username":"u","x":tru}"#,
        br#"{"username":"u""#,
    ] {
        let t = unsigned(bad);
        let got = decode_claims(&t, keep);
        assert!(
            matches!(&got, Err(JwtError::Invalid(r)) if r.starts_with("payload is not valid JSON")),
            "{got:?}"
        );
        assert_eq!(got, decode_payload(&t), "{}", String::from_utf8_lossy(bad));
    }
    // Nesting past serde_json's limit in a claim that is not kept is refused as when it is.
    let deep = format!(
        r#"{{"username":"u","x":{}{}}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    let t = unsigned(deep.as_bytes());
    let got = decode_claims(&t, keep);
    assert!(
        matches!(&got, Err(JwtError::Invalid(r)) if r.contains("recursion limit")),
        "{got:?}"
    );
    assert_eq!(got, decode_payload(&t));
    let deep = format!(r#"[{}{}]"#, "{\"a\":".repeat(300), "}".repeat(300));
    assert_eq!(
        decode_claims(&unsigned(deep.as_bytes()), keep),
        decode_payload(&unsigned(deep.as_bytes()))
    );
    // Invalid UTF-8 in a skipped string is refused as when it is built.
    let mut bad = br#"{"username":"u","x":""#.to_vec();
    bad.extend_from_slice(&[0xff, 0xfe]);
    bad.extend_from_slice(br#""}"#);
    let t = unsigned(&bad);
    assert!(decode_claims(&t, keep).is_err());
    assert_eq!(decode_claims(&t, keep), decode_payload(&t));
    for not_object in [&b"[1,{\"a\":2}]"[..], b"\"sub\"", b"null", b"12", b"true"] {
        assert_eq!(
            decode_claims(&unsigned(not_object), keep),
            err("payload is not a JSON object")
        );
    }
}
