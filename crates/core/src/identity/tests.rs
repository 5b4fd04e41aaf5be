//! Table-driven tests of client identification over every identifier and JWT location.
#![allow(clippy::type_complexity)] // row tuples are the tables

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use super::*;
use crate::request::{Request, RequestView};

const NOW: i64 = 1_700_000_000;

fn api() -> Api {
    Api {
        name: "rest".into(),
        url: "/rest".into(),
        hostname: "*".into(),
        cookie: None,
        oauth2_access_token: false,
        is_token_mandatory: false,
        apikey: None,
        enable_blocking: true,
        username_header: None,
        jwt: None,
        protect: Default::default(),
    }
}

fn jwt_api(location: JwtLocation) -> Api {
    Api {
        jwt: Some(JwtConfig {
            location,
            username: Some("username".into()),
            clientid: Some("client_id".into()),
        }),
        ..api()
    }
}

fn req(path: &str, headers: &[(&str, &str)]) -> Request {
    Request::parse(RequestView {
        method: "GET".into(),
        path: path.into(),
        authority: "shop.example.com".into(),
        scheme: "https".into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        peer: Some("10.0.0.1:5678".into()),
        protocol: None,
    })
}

fn xff(hops: u32) -> Ase {
    Ase {
        enable_xff: true,
        xff_num_trusted_hops: hops,
        ..Ase::default()
    }
}

fn unsigned(claims: &Value) -> String {
    format!(
        "eyJhbGciOiJub25lIn0.{}.",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// Identify with default ASE settings at [`NOW`]; also checks that identifying without the
/// access token (nothing records the request) finds exactly the same, access token aside.
fn run(r: &Request, a: &Api) -> Identity {
    let id = identify(r, Some(a), &Ase::default(), NOW);
    let lean = identify_with(r, Some(a), &Ase::default(), NOW, false);
    assert_eq!(lean.access_token, None);
    assert_eq!(
        Identity {
            access_token: None,
            ..id.clone()
        },
        lean
    );
    id
}

fn ok(error: Option<&str>) -> Option<JwtOutcome> {
    Some(JwtOutcome {
        status: JwtStatus::Ok,
        error: error.map(str::to_string),
    })
}

#[test]
fn client_ip() {
    // (peer, x-forwarded-for headers, ase, ip)
    let off = Ase::default();
    #[rustfmt::skip]
    let rows: &[(Option<&str>, &[&str], Ase, Option<&str>)] = &[
        (Some("1.2.3.4:5678"), &[], off.clone(), Some("1.2.3.4")),
        (Some("[2001:DB8::1]:443"), &[], off.clone(), Some("2001:db8::1")),
        (Some("[::ffff:1.2.3.4]:80"), &[], off.clone(), Some("1.2.3.4")),
        (Some("garbage"), &[], off.clone(), None),
        (None, &[], off.clone(), None),
        (Some("1.2.3.4:1"), &["9.9.9.9"], off.clone(), Some("1.2.3.4")),
        (Some("1.2.3.4:1"), &["9.9.9.9, 8.8.8.8"], xff(0), Some("9.9.9.9")),
        (Some("1.2.3.4:1"), &["9.9.9.9", "8.8.8.8"], xff(0), Some("9.9.9.9")),
        (Some("1.2.3.4:1"), &["unknown, 8.8.8.8"], xff(0), Some("1.2.3.4")),
        (Some("1.2.3.4:1"), &[""], xff(0), Some("1.2.3.4")),
        (Some("1.2.3.4:1"), &[], xff(0), Some("1.2.3.4")),
        (Some("1.2.3.4:1"), &["7.7.7.7, 8.8.8.8", "9.9.9.9"], xff(1), Some("9.9.9.9")),
        (Some("1.2.3.4:1"), &["7.7.7.7, 8.8.8.8", "9.9.9.9"], xff(2), Some("8.8.8.8")),
        (Some("1.2.3.4:1"), &["7.7.7.7, 8.8.8.8", "9.9.9.9"], xff(3), Some("7.7.7.7")),
        (Some("1.2.3.4:1"), &["7.7.7.7, 8.8.8.8", "9.9.9.9"], xff(4), Some("1.2.3.4")),
        (None, &["2001:db8::7"], xff(0), Some("2001:db8::7")),
        (None, &["bogus"], xff(0), None),
    ];
    for (peer, xffs, ase, want) in rows {
        let headers: Vec<(&str, &str)> = xffs.iter().map(|v| ("x-forwarded-for", *v)).collect();
        let mut r = req("/", &headers);
        r.view.peer = peer.map(str::to_string);
        for a in [None, Some(&api())] {
            let id = identify(&r, a, ase, NOW);
            assert_eq!(id.client.ip.as_deref(), *want, "{peer:?} {xffs:?} {ase:?}");
        }
    }
}

#[test]
fn no_api_means_ip_only() {
    let r = req(
        "/?access_token=t&key=k",
        &[
            ("authorization", "Bearer t"),
            ("cookie", "sid=s"),
            ("x-user", "u"),
        ],
    );
    let id = identify(&r, None, &Ase::default(), NOW);
    assert_eq!(
        id,
        Identity {
            client: Client {
                ip: Some("10.0.0.1".into()),
                ..Client::default()
            },
            ..Identity::default()
        }
    );
}

#[test]
fn oauth2_token() {
    let on = Api {
        oauth2_access_token: true,
        ..api()
    };
    // (api, path, headers, token)
    #[rustfmt::skip]
    let rows: &[(&Api, &str, &[(&str, &str)], Option<&str>)] = &[
        (&on, "/", &[("authorization", "Bearer abc")], Some("abc")),
        (&on, "/", &[("authorization", "bearer   abc ")], Some("abc")),
        (&on, "/", &[("authorization", "Basic dTpw"), ("authorization", "Bearer b")], Some("b")),
        (&on, "/", &[("authorization", "Bearer 1"), ("authorization", "Bearer 2")], Some("1")),
        // Envoy joins repeated Authorization headers with ','.
        (&on, "/", &[("authorization", "Basic dTpw==,Bearer b")], Some("b")),
        (&on, "/", &[("authorization", "Bearer 1,Bearer 2")], Some("1")),
        (&on, "/", &[("authorization", "MAC id=\"x\", nonce=\"a,b\", mac=\"m\",Bearer t")], Some("t")),
        (&on, "/?access_token=mF_9.B5f-4.1JqM&p=q", &[], Some("mF_9.B5f-4.1JqM")),
        (&on, "/?access_token=a%2Bb", &[], Some("a+b")),
        (&on, "/?access_token=q", &[("authorization", "Bearer h")], Some("h")),
        (&on, "/?access_token=q", &[("authorization", "Bearer ")], Some("q")),
        (&on, "/?access_token=q1&access_token=q2", &[], Some("q1")),
        (&on, "/?access_token=", &[], None),
        (&on, "/", &[("authorization", "Basic dTpw")], None),
        (&on, "/", &[], None),
        (&api(), "/?access_token=q", &[("authorization", "Bearer h")], None),
    ];
    for (a, path, headers, want) in rows {
        let id = run(&req(path, headers), a);
        assert_eq!(id.client.token.as_deref(), *want, "{path} {headers:?}");
        let want_at = want.map(AccessToken::opaque);
        assert_eq!(id.access_token, want_at, "{path} {headers:?}");
    }
}

#[test]
fn api_key_and_cookie() {
    let qs = Api {
        apikey: Some(ApiKeyLocation::Query("key_1.4".into())),
        cookie: Some("JSESSIONID".into()),
        ..api()
    };
    let hdr = Api {
        apikey: Some(ApiKeyLocation::Header("x-api-key".into())),
        ..api()
    };
    // (api, path, headers, api key, cookie)
    type Row<'a> = (
        &'a Api,
        &'a str,
        &'a [(&'a str, &'a str)],
        Option<&'a str>,
        Option<&'a str>,
    );
    #[rustfmt::skip]
    let rows: &[Row] = &[
        (&qs, "/?key_1.4=abc123", &[], Some("abc123"), None),
        (&qs, "/?key_1.4=a%20b+c&key_1.4=2", &[], Some("a b c"), None),
        (&qs, "/?key_1.4=", &[], None, None),
        (&qs, "/", &[("x-api-key", "k")], None, None),
        (&qs, "/", &[("cookie", "a=1; JSESSIONID=\"s1\"")], None, Some("s1")),
        (&qs, "/", &[("cookie", "jsessionid=s1")], None, None),
        (&qs, "/", &[("cookie", "JSESSIONID=")], None, None),
        (&hdr, "/", &[("x-api-key", "  k1 \t")], Some("k1"), None),
        (&hdr, "/", &[("x-api-key", "k1"), ("x-api-key", "k2")], Some("k1"), None),
        (&hdr, "/", &[("x-api-key", "   ")], None, None),
        (&hdr, "/?x-api-key=q", &[], None, None),
    ];
    for (a, path, headers, key, cookie) in rows {
        let id = run(&req(path, headers), a);
        assert_eq!(id.client.api_key.as_deref(), *key, "{path} {headers:?}");
        assert_eq!(id.client.cookie.as_deref(), *cookie, "{path} {headers:?}");
        assert_eq!(id.client.cookie_decoded, None, "{path} {headers:?}");
    }
}

#[test]
fn a_percent_encoded_cookie_also_offers_its_decoded_form_to_the_deny_list() {
    let a = Api {
        cookie: Some("SESSION".into()),
        ..api()
    };
    // (cookie header, recorded cookie, decoded form)
    let rows: &[(&str, Option<&str>, Option<&str>)] = &[
        ("SESSION=evil-session", Some("evil-session"), None),
        (
            "SESSION=evil%2Dsession",
            Some("evil%2Dsession"),
            Some("evil-session"),
        ),
        (
            "SESSION=%65vil%2dsession",
            Some("%65vil%2dsession"),
            Some("evil-session"),
        ),
        ("SESSION=a%2Bb%3D", Some("a%2Bb%3D"), Some("a+b=")),
        // `+` stays a plus (cookies are not form-encoded); bad escapes are kept.
        ("SESSION=a+b%zz", Some("a+b%zz"), None),
        ("SESSION=%", Some("%"), None),
        ("SESSION=%00", Some("%00"), Some("\0")),
        ("SESSION=%FF", Some("%FF"), Some("\u{fffd}")),
    ];
    for (header, cookie, decoded) in rows {
        let id = run(&req("/", &[("cookie", header)]), &a);
        assert_eq!(id.client.cookie.as_deref(), *cookie, "{header}");
        assert_eq!(id.client.cookie_decoded.as_deref(), *decoded, "{header}");
        let candidates: Vec<&str> = id.client.deny_candidates(IdType::Cookie).collect();
        let want: Vec<&str> = cookie.iter().chain(decoded.iter()).copied().collect();
        assert_eq!(candidates, want, "{header}");
        // Never serialized: the record shows the cookie as sent.
        let v = serde_json::to_value(&id.client).unwrap();
        assert!(v.get("cookie_decoded").is_none(), "{v}");
    }
    // Other types offer their value only.
    let id = run(
        &req("/", &[("cookie", "SESSION=x%41"), ("x-user", "a%41")]),
        &Api {
            username_header: Some("x-user".into()),
            ..a
        },
    );
    for t in [IdType::Ip, IdType::Username] {
        let got: Vec<&str> = id.client.deny_candidates(t).collect();
        assert_eq!(got, id.client.get(t).into_iter().collect::<Vec<_>>());
        assert_eq!(got.len(), 1, "{t:?}");
    }
}

/// Every JWT location form, with tokens made by `make` (unsigned here, signed natively).
fn check_locations(make: &dyn Fn(&Value) -> String) {
    let claims =
        json!({"username": "alice", "client_id": "shop-app", "sub": "u-1", "exp": NOW + 60});
    let t = make(&claims);
    let mac = format!(
        "MAC id=\"{t}\",\n               nonce=\"272095:dp63hm5s\",\n\t\t     mac=\"PNPQW4mg43cjQfEpUs3QWub4o6xE=\""
    );
    // (location, path, headers, provider)
    #[rustfmt::skip]
    let rows: Vec<(JwtLocation, String, Vec<(&str, String)>, &str)> = vec![
        (JwtLocation::Query("access_token".into()), format!("/r?p=q&access_token={t}"), vec![], "jwt:qs:access_token"),
        (JwtLocation::Query("jwt".into()), format!("/r?jwt={t}&jwt=other"), vec![], "jwt:qs:jwt"),
        (JwtLocation::Header("x-jwt-header".into()), "/r".into(), vec![("x-jwt-header", format!(" {t} "))], "jwt:h:x-jwt-header"),
        (JwtLocation::Header("x-jwt-header".into()), "/r".into(), vec![("x-jwt-header", format!("Bearer {t}"))], "jwt:h:x-jwt-header"),
        (JwtLocation::Bearer, "/r".into(), vec![("authorization", format!("Bearer {t}"))], "jwt:h:authorization:bearer"),
        (JwtLocation::Bearer, "/r".into(), vec![("authorization", mac.clone()), ("authorization", format!("bearer {t}"))], "jwt:h:authorization:bearer"),
        (JwtLocation::Mac, "/r".into(), vec![("authorization", mac.clone())], "jwt:h:authorization:mac"),
        (JwtLocation::Mac, "/r".into(), vec![("authorization", "Bearer x.y.z".to_string()), ("authorization", mac.clone())], "jwt:h:authorization:mac"),
        // The same two headers as Envoy hands them over: joined with ','.
        (JwtLocation::Mac, "/r".into(), vec![("authorization", format!("Basic dTpw,{mac}"))], "jwt:h:authorization:mac"),
        (JwtLocation::Bearer, "/r".into(), vec![("authorization", format!("{mac},Bearer {t}"))], "jwt:h:authorization:bearer"),
        (JwtLocation::Header("authorization".into()), "/r".into(), vec![("authorization", format!("Bearer {t},Bearer x.y.z"))], "jwt:h:authorization"),
        (JwtLocation::Cookie("access_token".into()), "/r".into(), vec![("cookie", format!("a=1; access_token={t}"))], "jwt:h:cookie:access_token"),
        (JwtLocation::Cookie("access_token".into()), "/r".into(), vec![("cookie", "a=1".into()), ("cookie", format!("access_token=\"{t}\""))], "jwt:h:cookie:access_token"),
    ];
    for (location, path, headers, provider) in rows {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let id = run(&req(&path, &headers), &jwt_api(location.clone()));
        let ctx = format!("{location:?}");
        assert_eq!(id.jwt, ok(None), "{ctx}");
        assert_eq!(id.client.username.as_deref(), Some("alice"), "{ctx}");
        assert_eq!(id.client.client_id.as_deref(), Some("shop-app"), "{ctx}");
        assert_eq!(id.identity_provider.as_deref(), Some(provider), "{ctx}");
        let at = id.access_token.unwrap();
        assert_eq!(at.access_token, t, "{ctx}");
        assert_eq!(at.active, Some(true), "{ctx}");
        assert_eq!(at.subject.as_deref(), Some("u-1"), "{ctx}");
        assert_eq!(at.username.as_deref(), Some("alice"), "{ctx}");
        assert_eq!(at.client_id.as_deref(), Some("shop-app"), "{ctx}");
        assert_eq!(id.client.token, None, "oauth2 is off: {ctx}");
    }
}

/// Every claim shape the configured username / clientid claims can take.
fn check_claim_shapes(make: &dyn Fn(&Value) -> String) {
    let e_arr = "claim \"client_id\" is an array; arrays are supported only for the username claim";
    // (claims, username, client id, outcome error)
    #[rustfmt::skip]
    let rows: &[(Value, Option<&str>, Option<&str>, Option<&str>)] = &[
        (json!({"username": "bob", "client_id": "c"}), Some("bob"), Some("c"), None),
        (json!({"username": ["first", "second"], "client_id": 17}), Some("first"), Some("17"), None),
        (json!({"username": [42, "x"], "client_id": 1.5}), Some("42"), Some("1.5"), None),
        (json!({"username": "bob", "client_id": ["c1", "c2"]}), Some("bob"), None, Some(e_arr)),
        (json!({"client_id": "c"}), None, Some("c"), Some("claim \"username\" missing")),
        (json!({"username": {"a": 1}, "client_id": true}), None, None, Some("claim \"username\" is an object; expected a string or number; claim \"client_id\" is a boolean; expected a string or number")),
        (json!({"username": null, "client_id": "c"}), None, Some("c"), Some("claim \"username\" is null; expected a string or number")),
        (json!({"username": [], "client_id": "c"}), None, Some("c"), Some("claim \"username\" is an empty array")),
        (json!({"username": "ünï💩\u{fffd}", "client_id": "c"}), Some("ünï💩\u{fffd}"), Some("c"), None),
    ];
    for (claims, user, client, error) in rows {
        let r = req(
            "/",
            &[("authorization", &format!("Bearer {}", make(claims)))],
        );
        let id = run(&r, &jwt_api(JwtLocation::Bearer));
        assert_eq!(id.client.username.as_deref(), *user, "{claims}");
        assert_eq!(id.client.client_id.as_deref(), *client, "{claims}");
        assert_eq!(id.jwt, ok(*error), "{claims}");
        let provider = (user.is_some() || client.is_some()).then_some("jwt:h:authorization:bearer");
        assert_eq!(id.identity_provider.as_deref(), provider, "{claims}");
        assert!(id.access_token.is_some(), "{claims}");
    }
}

#[test]
fn jwt_locations_unsigned() {
    check_locations(&unsigned);
}

#[test]
fn jwt_claim_shapes_unsigned() {
    check_claim_shapes(&unsigned);
}

#[test]
fn configured_claim_names() {
    let a = Api {
        jwt: Some(JwtConfig {
            location: JwtLocation::Bearer,
            username: Some("email".into()),
            clientid: None,
        }),
        ..api()
    };
    let t = unsigned(&json!({"email": "a@example.com", "username": "other", "client_id": "c"}));
    let id = run(&req("/", &[("authorization", &format!("Bearer {t}"))]), &a);
    assert_eq!(id.client.username.as_deref(), Some("a@example.com"));
    assert_eq!(id.client.client_id, None);
    assert_eq!(id.jwt, ok(None));
    let at = id.access_token.unwrap();
    assert_eq!(at.username.as_deref(), Some("a@example.com"));
    assert_eq!(at.client_id.as_deref(), Some("c"));

    // A configured client id claim fills HttpRequest.AccessToken.client_id too.
    let a = Api {
        jwt: Some(JwtConfig {
            location: JwtLocation::Bearer,
            username: None,
            clientid: Some("appid".into()),
        }),
        ..api()
    };
    let t = unsigned(&json!({"appid": "app-9", "client_id": "c"}));
    let id = run(&req("/", &[("authorization", &format!("Bearer {t}"))]), &a);
    assert_eq!(id.client.client_id.as_deref(), Some("app-9"));
    let at = id.access_token.unwrap();
    assert_eq!(at.client_id.as_deref(), Some("app-9"));
    // Without the configured claim, the standard names still fill it.
    let t = unsigned(&json!({"client_id": "c"}));
    let id = run(&req("/", &[("authorization", &format!("Bearer {t}"))]), &a);
    assert_eq!(id.client.client_id, None);
    assert_eq!(id.access_token.unwrap().client_id.as_deref(), Some("c"));
}

#[test]
fn jwt_failures() {
    let a = jwt_api(JwtLocation::Header("x-jwt".into()));
    let big = format!("h.{}.s", "A".repeat(10 * 1024 * 1024));
    let outcome = |status, e: Option<&str>| {
        Some(JwtOutcome {
            status,
            error: e.map(str::to_string),
        })
    };
    // (header value, outcome)
    #[rustfmt::skip]
    let rows: &[(Option<&str>, Option<JwtOutcome>)] = &[
        (None, outcome(JwtStatus::Absent, None)),
        (Some(""), outcome(JwtStatus::Absent, None)),
        (Some("  "), outcome(JwtStatus::Absent, None)),
        (Some("Bearer "), outcome(JwtStatus::Absent, None)),
        (Some("opaque"), outcome(JwtStatus::Invalid, Some("expected 3 parts, found 1"))),
        (Some("a.b.c.d.e"), outcome(JwtStatus::Invalid, Some("expected 3 parts, found 5"))),
        (Some("a.%%%.c"), outcome(JwtStatus::Invalid, Some("payload is not valid base64url"))),
        (Some("a.WzFd.c"), outcome(JwtStatus::Invalid, Some("payload is not a JSON object"))),
        (Some(&big), outcome(JwtStatus::TooLarge, Some("token is longer than 16384 bytes"))),
    ];
    for (value, want) in rows {
        let headers: Vec<(&str, &str)> = value.iter().map(|v| ("x-jwt", *v)).collect();
        let id = run(&req("/", &headers), &a);
        assert_eq!(&id.jwt, want, "{:?}", value.map(|v| v.get(..40)));
        assert_eq!((id.client.username, id.client.client_id), (None, None));
        assert_eq!((id.access_token, id.identity_provider), (None, None));
    }
    // An API without jwt config has no outcome at all.
    let id = run(&req("/", &[("x-jwt", "a.b.c")]), &api());
    assert_eq!(id.jwt, None);
}

#[test]
fn too_large_bearer_with_oauth2() {
    let a = Api {
        oauth2_access_token: true,
        ..jwt_api(JwtLocation::Bearer)
    };
    let big = format!("Bearer h.{}.s", "A".repeat(10 * 1024 * 1024));
    let id = run(&req("/", &[("authorization", &big)]), &a);
    assert_eq!(id.jwt.map(|j| j.status), Some(JwtStatus::TooLarge));
    assert_eq!(
        id.client.token.as_ref().map(String::len),
        Some(big.len() - 7)
    );
    assert_eq!(
        id.access_token.map(|t| t.token_type),
        Some("bearer".to_string())
    );
}

#[test]
fn username_header() {
    let a = Api {
        username_header: Some("x-user".into()),
        ..api()
    };
    // (headers, username, provider)
    #[rustfmt::skip]
    let rows: &[(&[(&str, &str)], Option<&str>, Option<&str>)] = &[
        (&[("x-user", " alice ")], Some("alice"), Some("header:x-user")),
        (&[("x-user", "a"), ("x-user", "b")], Some("a"), Some("header:x-user")),
        (&[("x-user", "\t")], None, None),
        (&[("x-user", "")], None, None),
        (&[("x-other", "alice")], None, None),
        (&[("x-user", "💩\u{fffd}")], Some("💩\u{fffd}"), Some("header:x-user")),
    ];
    for (headers, user, provider) in rows {
        let id = run(&req("/", headers), &a);
        assert_eq!(id.client.username.as_deref(), *user, "{headers:?}");
        assert_eq!(id.identity_provider.as_deref(), *provider, "{headers:?}");
        assert_eq!(id.jwt, None);
    }
}

#[test]
fn jwt_username_wins_over_header() {
    let a = Api {
        username_header: Some("x-user".into()),
        ..jwt_api(JwtLocation::Bearer)
    };
    let t = unsigned(&json!({"username": "from-jwt"}));
    let auth = format!("Bearer {t}");
    let id = run(
        &req("/", &[("authorization", &auth), ("x-user", "hdr")]),
        &a,
    );
    assert_eq!(id.client.username.as_deref(), Some("from-jwt"));
    assert_eq!(
        id.identity_provider.as_deref(),
        Some("jwt:h:authorization:bearer")
    );
    // Without a usable username in the JWT, the header is used.
    let t = unsigned(&json!({"client_id": "c"}));
    let auth = format!("Bearer {t}");
    let id = run(
        &req("/", &[("authorization", &auth), ("x-user", "hdr")]),
        &a,
    );
    assert_eq!(id.client.username.as_deref(), Some("hdr"));
    assert_eq!(id.client.client_id.as_deref(), Some("c"));
    assert_eq!(id.identity_provider.as_deref(), Some("header:x-user"));
}

#[test]
fn access_token_sources() {
    let oauth = Api {
        oauth2_access_token: true,
        ..api()
    };
    let jwt =
        unsigned(&json!({"sub": "s", "preferred_username": "p", "scope": "a b", "exp": NOW - 1}));
    // Bearer JWT without jwt config: decoded, but identifies no username.
    let id = run(
        &req("/", &[("authorization", &format!("Bearer {jwt}"))]),
        &oauth,
    );
    assert_eq!(id.client.token.as_deref(), Some(jwt.as_str()));
    assert_eq!(id.client.username, None);
    assert_eq!(id.identity_provider, None);
    let at = id.access_token.unwrap();
    assert_eq!(at.username.as_deref(), Some("p"));
    assert_eq!(at.active, Some(false));
    assert_eq!(at.scope, Some(vec!["a".to_string(), "b".to_string()]));
    // Query-string token that is a JWT.
    let id = run(&req(&format!("/?access_token={jwt}"), &[]), &oauth);
    assert_eq!(
        id.access_token.and_then(|t| t.subject),
        Some("s".to_string())
    );
    // JWT in a cookie and an opaque bearer token: the decoded JWT is the access token.
    let both = Api {
        oauth2_access_token: true,
        ..jwt_api(JwtLocation::Cookie("access_token".into()))
    };
    let r = req(
        "/",
        &[
            ("authorization", "Bearer opaque"),
            ("cookie", &format!("access_token={jwt}")),
        ],
    );
    let id = run(&r, &both);
    assert_eq!(id.client.token.as_deref(), Some("opaque"));
    assert_eq!(id.access_token.map(|t| t.access_token), Some(jwt.clone()));
    // The JWT location is invalid: the opaque bearer token is still recorded.
    let r = req(
        "/",
        &[
            ("authorization", "Bearer opaque"),
            ("cookie", "access_token=bad"),
        ],
    );
    let id = run(&r, &both);
    assert_eq!(id.access_token, Some(AccessToken::opaque("opaque")));
    assert_eq!(id.jwt.map(|j| j.status), Some(JwtStatus::Invalid));
}

#[test]
fn client_get_by_type() {
    let c = Client {
        ip: Some("1.2.3.4".into()),
        token: Some("t".into()),
        api_key: Some("k".into()),
        cookie: Some("c".into()),
        username: Some("u".into()),
        client_id: Some("id".into()),
        cookie_decoded: Some("c2".into()),
    };
    let got: Vec<Option<&str>> = IdType::ALL.iter().map(|t| c.get(*t)).collect();
    assert_eq!(
        got,
        [Some("1.2.3.4"), Some("t"), Some("k"), Some("c"), Some("u")]
    );
    assert_eq!(Client::default().get(IdType::Username), None);
}

#[test]
fn serialization() {
    let id = Identity {
        client: Client {
            ip: Some("1.2.3.4".into()),
            username: Some("u".into()),
            ..Client::default()
        },
        jwt: Some(JwtOutcome {
            status: JwtStatus::TooLarge,
            error: Some("token is longer than 16384 bytes".into()),
        }),
        access_token: None,
        identity_provider: None,
    };
    assert_eq!(
        serde_json::to_value(&id).ok(),
        Some(json!({
            "client": {"ip": "1.2.3.4", "username": "u"},
            "jwt": {"status": "too_large", "error": "token is longer than 16384 bytes"},
        }))
    );
    let statuses = [
        JwtStatus::Ok,
        JwtStatus::Absent,
        JwtStatus::Invalid,
        JwtStatus::TooLarge,
    ];
    let names: Vec<Value> = statuses.iter().map(|s| json!(s)).collect();
    assert_eq!(
        names,
        [
            json!("ok"),
            json!("absent"),
            json!("invalid"),
            json!("too_large")
        ]
    );
}

#[test]
fn weird_input_never_panics() {
    let weird = [
        "",
        " ",
        "\t",
        "=",
        ";",
        ",",
        "\"",
        "\"\"",
        "%",
        "%%",
        "%zz",
        "+",
        "?",
        "#",
        "[",
        "]",
        "[::1",
        "Bearer",
        "MAC",
        "MAC id",
        "MAC id=\"",
        "é",
        "💩",
        "\u{fffd}\u{fffd}",
        "\u{202e}rtl",
        "\u{0}",
        "a.b.c",
        "..",
        "...",
        "a=b=c;;=;",
        "Bearer \u{fffd}.\u{fffd}.\u{fffd}",
    ];
    let full = Api {
        cookie: Some("sid".into()),
        oauth2_access_token: true,
        apikey: Some(ApiKeyLocation::Query("k".into())),
        username_header: Some("x-user".into()),
        ..jwt_api(JwtLocation::Mac)
    };
    let locations = [
        JwtLocation::Query("k".into()),
        JwtLocation::Header("x-user".into()),
        JwtLocation::Bearer,
        JwtLocation::Mac,
        JwtLocation::Cookie("sid".into()),
    ];
    for w in weird {
        let path = format!("/{w}?k={w}&{w}={w}&access_token={w}#{w}");
        let headers = [
            ("authorization", w),
            ("authorization", &format!("MAC id={w}")),
            ("cookie", &format!("sid={w}; {w}")),
            ("x-user", w),
            ("x-forwarded-for", w),
        ];
        let mut r = req(&path, &headers);
        r.view.peer = Some(w.to_string());
        for loc in &locations {
            let mut a = full.clone();
            if let Some(j) = a.jwt.as_mut() {
                j.location = loc.clone();
            }
            let _ = identify(&r, Some(&a), &xff(0), NOW);
            let _ = identify(&r, Some(&a), &xff(u32::MAX), i64::MIN);
        }
    }
}

/// The same tables with tokens signed by the real `jsonwebtoken` crate (native only).
#[cfg(not(target_arch = "wasm32"))]
mod signed {
    use super::*;
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

    /// jsonwebtoken's own 2048-bit test key (tests/rsa/private_rsa_key_pkcs1.pem).
    const RSA_PEM: &str = include_str!("../jwt/test_rsa_key.pem");

    fn hs256(claims: &Value) -> String {
        let key = EncodingKey::from_secret(b"secret");
        encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
    }

    fn rs256(claims: &Value) -> String {
        let key = EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap();
        encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
    }

    #[test]
    fn jwt_locations_hs256() {
        check_locations(&hs256);
    }

    #[test]
    fn jwt_locations_rs256() {
        check_locations(&rs256);
    }

    #[test]
    fn jwt_claim_shapes_hs256() {
        check_claim_shapes(&hs256);
    }

    #[test]
    fn jwt_claim_shapes_rs256() {
        check_claim_shapes(&rs256);
    }

    #[test]
    fn full_access_token_from_rs256() {
        let claims = json!({
            "iss": "https://as.example.com", "sub": "u-1", "aud": ["shop", "admin"],
            "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 3600,
            "scp": ["read", "write"], "azp": "spa", "username": ["alice", "al"],
        });
        let t = rs256(&claims);
        let a = Api {
            oauth2_access_token: true,
            ..jwt_api(JwtLocation::Bearer)
        };
        let id = run(&req("/", &[("authorization", &format!("Bearer {t}"))]), &a);
        assert_eq!(id.client.token.as_deref(), Some(t.as_str()));
        assert_eq!(id.client.username.as_deref(), Some("alice"));
        assert_eq!(id.jwt, ok(Some("claim \"client_id\" missing")));
        assert_eq!(
            serde_json::to_value(id.access_token).ok(),
            Some(json!({
                "access_token": t, "active": true, "audience": ["shop", "admin"],
                "client_id": "spa", "expiration": "2023-11-14T23:13:20Z",
                "issued_at": "2023-11-14T22:13:10Z", "issuer": "https://as.example.com",
                "not_before": "2023-11-14T22:13:10Z", "scope": ["read", "write"],
                "subject": "u-1", "token_type": "bearer", "user_token": true, "username": "alice",
            }))
        );
    }
}
