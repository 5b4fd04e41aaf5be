//! End-to-end tests of client identification (issue 4) through real Envoy: every identifier and
//! every JWT location, asserted in the access-log record (`ase.client`, `ase.jwt`,
//! `identityProvider`, `HttpRequest.AccessToken`) and in the scalar filter-state columns.

use serde_json::{json, Value};

use crate::harness::{self, Envoy, Jwt, LogLine, Opts};

use crate::config::seeds;

/// A compact JWS with this payload; header and signature are fixed (api-warden decodes, never
/// validates).
fn jwt(payload: &Value) -> String {
    Jwt::claims(payload)
        .header(r#"{"alg":"HS256","typ":"JWT"}"#)
        .signature("c2lnbmF0dXJlLW5vdC1jaGVja2Vk")
        .build()
}

/// The claims most tests use (2023-11-14 22:13:20 UTC issue time, expiring in 2100).
fn claims() -> Value {
    json!({
        "sub": "user-7",
        "iss": "https://idp.example.com",
        "aud": "shop",
        "scope": "read write",
        "iat": 1_700_000_000,
        "exp": 4_102_444_800_i64,
        "username": "alice",
        "client_id": "app-1"
    })
}

/// One API per identifier source and JWT location. The `/rest` API is seed 001's, verbatim.
fn config(ase: Value) -> String {
    let jwt_api = |name: &str, location: &str| {
        json!({ "name": name, "api_metadata": {
            "protocol": "http", "url": format!("/{name}"), "hostname": "*",
            "jwt": { "location": location, "username": "username", "clientid": "client_id" }
        }})
    };
    let seed_001: Value = serde_json::from_str(seeds::SEED_001_REST).unwrap();
    json!({
        "ase": ase,
        "apis": [
            { "name": "ids", "api_metadata": {
                "protocol": "http", "url": "/ids", "hostname": "*", "cookie": "JSESSIONID",
                "oauth2_access_token": true, "apikey_qs": "key_1.4", "apikey_header": ""
            }},
            { "name": "hdr", "api_metadata": {
                "protocol": "http", "url": "/hdr", "hostname": "*",
                "apikey_header": "X-API-Key", "username_header": "X-User"
            }},
            seed_001,
            jwt_api("jq", "qs:jwt"),
            jwt_api("jh", "h:X-JWT-Header"),
            jwt_api("jm", "h:Authorization:MAC"),
            jwt_api("jc", "h:cookie: access_token"),
        ]
    })
    .to_string()
}

/// Send one request, expect 200 from the upstream, and return its record (the `n`th line).
fn record_of(envoy: &Envoy, n: usize, path: &str, headers: &[(&str, &str)]) -> LogLine {
    let r = envoy.get(path, headers);
    assert_eq!(r.status, 200, "{path}: {}", r.body_text());
    envoy.record(n)
}

/// Assert every `(pointer, value)` of `want` on `line`.
fn assert_at(line: &LogLine, want: &[(&str, Value)]) {
    for (pointer, value) in want {
        assert_eq!(
            &line.at(pointer),
            value,
            "{pointer} in the record:\n{}",
            line.raw
        );
    }
}

/// The harness Envoy (its bootstrap sets `use_remote_address: true`, so Envoy reports the real
/// peer as `source.address` and appends it to X-Forwarded-For; with Envoy's default `false`,
/// `source.address` would be the LAST X-Forwarded-For entry, which the client controls).
struct RemoteAddressEnvoy(Envoy);

impl RemoteAddressEnvoy {
    fn start(plugin_config: &str) -> RemoteAddressEnvoy {
        RemoteAddressEnvoy(Envoy::start(plugin_config))
    }

    /// Send one request to `/ids`, expect 200, and return the `n`th access-log record.
    fn record_of(&self, n: usize, headers: &[(&str, &str)]) -> LogLine {
        record_of(&self.0, n, "/ids", headers)
    }
}

#[test]
fn client_ip_is_the_peer_and_a_client_sent_xff_is_ignored_without_enable_xff() {
    let envoy = RemoteAddressEnvoy::start(&config(json!({})));
    let rows: [&[(&str, &str)]; 3] = [
        &[],
        &[("x-forwarded-for", "203.0.113.7")],
        &[("x-forwarded-for", "203.0.113.7, 10.0.0.1")],
    ];
    for (i, headers) in rows.iter().enumerate() {
        let line = envoy.record_of(i + 1, headers);
        assert_at(
            &line,
            &[
                ("/ase/client/ip", json!("127.0.0.1")),
                ("/attributes/HttpRequest.IPAddress", json!("127.0.0.1")),
            ],
        );
        assert_eq!(line.client_ip, "127.0.0.1", "{headers:?}");
    }
}

#[test]
fn client_sent_xff_is_ignored_with_the_default_harness_bootstrap() {
    let envoy = Envoy::start(&config(json!({})));
    let line = record_of(
        &envoy,
        1,
        "/ids",
        &[("x-forwarded-for", "203.0.113.7, 10.0.0.1")],
    );
    assert_eq!(line.at("/ase/client/ip"), "127.0.0.1", "{}", line.raw);
    assert_eq!(line.client_ip, "127.0.0.1");
    // No API matched: the IP is still identified.
    let line = record_of(&envoy, 2, "/nowhere", &[("x-forwarded-for", "203.0.113.7")]);
    assert_eq!(line.at("/service"), Value::Null, "{}", line.raw);
    assert_eq!(line.at("/ase/client/ip"), "127.0.0.1", "{}", line.raw);
}

#[test]
fn enable_xff_takes_the_first_address() {
    let envoy = RemoteAddressEnvoy::start(&config(json!({ "enable_xff": true })));
    let rows: [(&[(&str, &str)], &str); 3] = [
        (
            &[("x-forwarded-for", "203.0.113.7, 198.51.100.2, 10.0.0.1")],
            "203.0.113.7",
        ),
        // Repeated headers are one list, in arrival order; ports are dropped.
        (
            &[
                ("x-forwarded-for", "[2001:db8::7]:4711"),
                ("x-forwarded-for", "10.0.0.1"),
            ],
            "2001:db8::7",
        ),
        // An entry that is not an address falls back to the peer. (Without a client XFF, Envoy
        // with use_remote_address appends its own node address for a loopback peer, so the
        // first entry then depends on the machine: not tested.)
        (&[("x-forwarded-for", "unknown, 10.0.0.1")], "127.0.0.1"),
    ];
    for (i, (headers, want)) in rows.iter().enumerate() {
        let line = envoy.record_of(i + 1, headers);
        assert_eq!(
            line.at("/ase/client/ip"),
            *want,
            "{headers:?}: {}",
            line.raw
        );
        assert_eq!(line.client_ip, *want, "{headers:?}");
    }
}

#[test]
fn xff_num_trusted_hops_takes_the_nth_address_from_the_right() {
    // The harness sets use_remote_address: true, so Envoy appends one entry (the peer, or its
    // own node address for a loopback peer) before the filter sees X-Forwarded-For: N counts it.
    let envoy = Envoy::start(&config(
        json!({ "enable_xff": true, "xff_num_trusted_hops": 3 }),
    ));
    let rows: [(&str, &str); 3] = [
        ("198.51.100.1, 203.0.113.7, 10.0.0.1", "203.0.113.7"),
        ("203.0.113.7,10.0.0.1", "203.0.113.7"),
        (
            "192.0.2.1, 198.51.100.1, 203.0.113.7, 10.0.0.1",
            "203.0.113.7",
        ),
    ];
    for (i, (xff, want)) in rows.iter().enumerate() {
        let line = record_of(&envoy, i + 1, "/ids", &[("x-forwarded-for", xff)]);
        assert_eq!(line.at("/ase/client/ip"), *want, "{xff}: {}", line.raw);
        assert_eq!(line.client_ip, *want, "{xff}");
    }
    // Too few entries for the trusted hops: the peer.
    let envoy = RemoteAddressEnvoy::start(&config(
        json!({ "enable_xff": true, "xff_num_trusted_hops": 4 }),
    ));
    let line = envoy.record_of(1, &[("x-forwarded-for", "203.0.113.7")]);
    assert_eq!(line.at("/ase/client/ip"), "127.0.0.1", "{}", line.raw);
}

#[test]
fn an_ipv6_peer_is_recorded_without_brackets_or_port() {
    let opts = Opts {
        ipv6: true,
        ..Opts::default()
    };
    let envoy = Envoy::start_with(&config(json!({})), opts);
    let raw = b"GET /ids HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
    let r = harness::raw_request(&format!("[::1]:{}", envoy.port), raw).unwrap();
    assert_eq!(r.status, 200, "{}", r.body_text());
    let line = envoy.record(1);
    assert_eq!(line.at("/ase/client/ip"), "::1", "{}", line.raw);
    assert_eq!(line.client_ip, "::1");
}

#[test]
fn oauth2_tokens_come_from_bearer_or_the_access_token_query_parameter() {
    let envoy = Envoy::start(&config(json!({})));
    // An opaque Bearer token, scheme in any case, whitespace around it ignored.
    let line = record_of(
        &envoy,
        1,
        "/ids",
        &[("authorization", "bEaReR   opaque-token-123  ")],
    );
    assert_at(
        &line,
        &[
            ("/ase/client/token", json!("opaque-token-123")),
            (
                "/attributes/HttpRequest.AccessToken",
                json!({ "access_token": "opaque-token-123", "token_type": "bearer" }),
            ),
        ],
    );
    // RFC 6750 query parameter, percent-decoded.
    let line = record_of(&envoy, 2, "/ids/x?a=1&access_token=q%2Btoken%3D", &[]);
    assert_eq!(line.at("/ase/client/token"), "q+token=", "{}", line.raw);
    // Bearer wins over the query parameter.
    let line = record_of(
        &envoy,
        3,
        "/ids?access_token=from-query",
        &[("authorization", "Bearer from-header")],
    );
    assert_eq!(line.at("/ase/client/token"), "from-header", "{}", line.raw);
    // A JWT as the token also fills HttpRequest.AccessToken from its claims.
    let token = jwt(&claims());
    let line = record_of(
        &envoy,
        4,
        "/ids",
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_at(
        &line,
        &[
            ("/ase/client/token", json!(token)),
            (
                "/attributes/HttpRequest.AccessToken/subject",
                json!("user-7"),
            ),
            ("/attributes/HttpRequest.AccessToken/active", json!(true)),
        ],
    );
    // Envoy joins repeated Authorization headers with ','; the first Bearer credential is the
    // token (a second header cannot disguise a deny-listed token).
    let line = record_of(
        &envoy,
        5,
        "/ids",
        &[
            ("authorization", "Basic dTpw"),
            ("authorization", "Bearer first"),
            ("authorization", "Bearer second"),
        ],
    );
    assert_eq!(line.at("/ase/client/token"), "first", "{}", line.raw);
    assert_eq!(
        line.at("/attributes/HttpRequest.RequestHeaders/authorization"),
        json!(["Basic dTpw,Bearer first,Bearer second"]),
        "{}",
        line.raw
    );
    // oauth2_access_token is off for /hdr: no token captured.
    let line = record_of(&envoy, 6, "/hdr", &[("authorization", "Bearer t")]);
    assert_eq!(line.at("/ase/client/token"), Value::Null, "{}", line.raw);
    assert_eq!(
        line.at("/attributes/HttpRequest.AccessToken"),
        Value::Null,
        "{}",
        line.raw
    );
}

#[test]
fn api_keys_come_from_the_seed_query_parameter_or_a_header() {
    let envoy = Envoy::start(&config(json!({})));
    let rows = [
        ("/ids?key_1.4=abc%2Fdef%20x", "abc/def x"),
        ("/ids?x=1&key_1%2E4=encoded-name", "encoded-name"),
        ("/ids?key_1.4=first&key_1.4=second", "first"),
        ("/ids/a/b?key_1.4=k+1", "k 1"),
    ];
    for (i, (path, want)) in rows.iter().enumerate() {
        let line = record_of(&envoy, i + 1, path, &[]);
        assert_eq!(
            line.at("/ase/client/api_key"),
            *want,
            "{path}: {}",
            line.raw
        );
    }
    // The name is exact: key_1x4 is another parameter; an empty value is no key.
    let line = record_of(&envoy, 5, "/ids?key_1x4=no&key_1.4=", &[]);
    assert_eq!(line.at("/ase/client/api_key"), Value::Null, "{}", line.raw);
    // apikey_header, header name case-insensitive; the query is not read for this API.
    let line = record_of(
        &envoy,
        6,
        "/hdr?key_1.4=ignored",
        &[("X-api-KEY", " k-123 ")],
    );
    assert_eq!(line.at("/ase/client/api_key"), "k-123", "{}", line.raw);
}

#[test]
fn the_session_cookie_is_found_among_several_cookie_headers() {
    let envoy = Envoy::start(&config(json!({})));
    let line = record_of(
        &envoy,
        1,
        "/ids",
        &[
            ("cookie", "theme=dark; lang=en"),
            ("cookie", "a=1;JSESSIONID=s-42; b=2"),
        ],
    );
    assert_eq!(line.at("/ase/client/cookie"), "s-42", "{}", line.raw);
    // First wins; names are case-sensitive; quotes are removed.
    let line = record_of(
        &envoy,
        2,
        "/ids",
        &[
            ("cookie", "jsessionid=lower; JSESSIONID=\"s-1\""),
            ("cookie", "JSESSIONID=s-2"),
        ],
    );
    assert_eq!(line.at("/ase/client/cookie"), "s-1", "{}", line.raw);
    let line = record_of(&envoy, 3, "/ids", &[("cookie", "other=1")]);
    assert_eq!(line.at("/ase/client/cookie"), Value::Null, "{}", line.raw);
}

/// What every location must yield for the standard claims.
fn assert_decoded(line: &LogLine, token: &str, provider: &str) {
    assert_at(
        line,
        &[
            ("/ase/client/username", json!("alice")),
            ("/ase/client/client_id", json!("app-1")),
            ("/ase/jwt", json!({ "status": "ok" })),
            ("/identityProvider", json!(provider)),
            (
                "/attributes/HttpRequest.AccessToken",
                json!({
                    "access_token": token,
                    "active": true,
                    "audience": ["shop"],
                    "client_id": "app-1",
                    "expiration": "2100-01-01T00:00:00Z",
                    "issued_at": "2023-11-14T22:13:20Z",
                    "issuer": "https://idp.example.com",
                    "scope": ["read", "write"],
                    "subject": "user-7",
                    "token_type": "bearer",
                    "user_token": true,
                    "username": "alice"
                }),
            ),
        ],
    );
    assert_eq!(line.username, "alice", "username column: {}", line.raw);
}

#[test]
fn jwts_are_decoded_at_every_location() {
    let envoy = Envoy::start(&config(json!({})));
    let token = jwt(&claims());
    let bearer = format!("Bearer {token}");
    let mac = format!(
        r#"MAC id="{token}", nonce="272095:dp63hm5s", mac="PNPQW4mg43cjQfEpUs3QWub4o6xE=""#
    );
    let cookie = format!("access_token={token}; theme=dark");
    let qs = format!("/jq/items?jwt={token}&x=1");
    // (path, headers, identityProvider)
    type Row<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let rows: Vec<Row> = vec![
        (qs.as_str(), vec![], "jwt:qs:jwt"),
        (
            "/jh",
            vec![("x-jwt-header", token.as_str())],
            "jwt:h:x-jwt-header",
        ),
        // Some clients send the custom header with a Bearer prefix.
        (
            "/jh",
            vec![("X-JWT-Header", bearer.as_str())],
            "jwt:h:x-jwt-header",
        ),
        // Seed 001's API: Authorization Bearer.
        (
            "/rest/users",
            vec![("authorization", bearer.as_str())],
            "jwt:h:authorization:bearer",
        ),
        // MAC, after another Authorization value that is not MAC.
        (
            "/jm",
            vec![
                ("authorization", "Basic dTpw"),
                ("authorization", mac.as_str()),
            ],
            "jwt:h:authorization:mac",
        ),
        // The seed writes "h:cookie: access_token" (with a space); the token is in the second
        // Cookie header.
        (
            "/jc",
            vec![("cookie", "a=1"), ("cookie", cookie.as_str())],
            "jwt:h:cookie:access_token",
        ),
    ];
    for (i, (path, headers, provider)) in rows.iter().enumerate() {
        let line = record_of(&envoy, i + 1, path, headers);
        assert_decoded(&line, &token, provider);
    }
    // Seed 001 also captures the Bearer JWT as the OAuth2 token.
    let line = &envoy.records(rows.len())[3];
    assert_eq!(line.at("/ase/client/token"), json!(token), "{}", line.raw);
}

#[test]
fn an_absent_jwt_is_recorded_as_absent() {
    let envoy = Envoy::start(&config(json!({})));
    let rows: [(&str, &[(&str, &str)]); 4] = [
        ("/jq?other=1", &[]),
        ("/jh", &[("x-other", "v")]),
        ("/jm", &[("authorization", "Bearer not-mac")]),
        ("/jc", &[("cookie", "access_tokens=x")]),
    ];
    for (i, (path, headers)) in rows.iter().enumerate() {
        let line = record_of(&envoy, i + 1, path, headers);
        assert_at(
            &line,
            &[
                ("/ase/jwt", json!({ "status": "absent" })),
                ("/ase/client/username", Value::Null),
                ("/identityProvider", Value::Null),
            ],
        );
        assert_eq!(line.username, "-", "{}", line.raw);
    }
}

#[test]
fn claim_shapes_arrays_and_numbers() {
    let envoy = Envoy::start(&config(json!({})));
    let send = |n: usize, payload: Value| {
        let token = jwt(&payload);
        record_of(
            &envoy,
            n,
            "/rest",
            &[("authorization", &format!("Bearer {token}"))],
        )
    };
    // Username array: its first element.
    let line = send(
        1,
        json!({ "username": ["alice", "bob"], "client_id": "app-1" }),
    );
    assert_at(
        &line,
        &[
            ("/ase/client/username", json!("alice")),
            ("/ase/client/client_id", json!("app-1")),
            ("/ase/jwt", json!({ "status": "ok" })),
            (
                "/attributes/HttpRequest.AccessToken/username",
                json!("alice"),
            ),
        ],
    );
    assert_eq!(line.username, "alice");
    // Numbers become their decimal text, a numeric first array element too.
    let line = send(2, json!({ "username": [12345, "x"], "client_id": 42 }));
    assert_at(
        &line,
        &[
            ("/ase/client/username", json!("12345")),
            ("/ase/client/client_id", json!("42")),
            ("/ase/jwt", json!({ "status": "ok" })),
        ],
    );
    assert_eq!(line.username, "12345");
    let line = send(3, json!({ "username": 7, "client_id": "c" }));
    assert_eq!(line.at("/ase/client/username"), "7", "{}", line.raw);
    // A client-id array is not supported: nothing, and the record says why.
    let line = send(
        4,
        json!({ "username": "alice", "client_id": ["app-1", "app-2"] }),
    );
    assert_at(
        &line,
        &[
            ("/ase/client/username", json!("alice")),
            ("/ase/client/client_id", Value::Null),
            ("/ase/jwt/status", json!("ok")),
            (
                "/ase/jwt/error",
                json!("claim \"client_id\" is an array; arrays are supported only for the username claim"),
            ),
        ],
    );
    // A missing claim: the other one is still read.
    let line = send(5, json!({ "client_id": "app-1" }));
    assert_at(
        &line,
        &[
            ("/ase/client/username", Value::Null),
            ("/ase/client/client_id", json!("app-1")),
            ("/ase/jwt/status", json!("ok")),
            ("/ase/jwt/error", json!("claim \"username\" missing")),
            ("/identityProvider", json!("jwt:h:authorization:bearer")),
        ],
    );
    assert_eq!(line.username, "-");
    // An object username is not text.
    let line = send(6, json!({ "username": { "a": 1 }, "client_id": "c" }));
    assert_at(
        &line,
        &[
            ("/ase/client/username", Value::Null),
            (
                "/ase/jwt/error",
                json!("claim \"username\" is an object; expected a string or number"),
            ),
        ],
    );
}

#[test]
fn undecodable_jwts_never_block_and_say_why() {
    let envoy = Envoy::start(&config(json!({})));
    let raw = |payload: &str| Jwt::raw(payload).header("{}").signature("sig").build();
    let (not_object, not_json) = (raw("[1,2]"), raw("{\"username\":"));
    let rows = [
        ("not-a-jwt", "expected 3 parts, found 1"),
        ("a.b.c.d.e", "expected 3 parts, found 5"),
        ("e30.!!!.sig", "payload is not valid base64url"),
        ("e30..sig", "payload is empty"),
        (not_object.as_str(), "payload is not a JSON object"),
        (not_json.as_str(), "payload is not valid JSON"),
    ];
    for (i, (token, why)) in rows.iter().enumerate() {
        let line = record_of(&envoy, i + 1, "/jh", &[("x-jwt-header", token)]);
        assert_eq!(line.status, 200);
        assert_eq!(
            line.at("/ase/jwt/status"),
            "invalid",
            "{token}: {}",
            line.raw
        );
        let error = line.at("/ase/jwt/error");
        assert!(
            error.as_str().is_some_and(|e| e.starts_with(why)),
            "{token}: error {error} does not start with {why:?}"
        );
        assert_eq!(line.at("/ase/client/username"), Value::Null, "{}", line.raw);
        assert_eq!(line.at("/ase/decision"), "allow", "{}", line.raw);
        assert_eq!(line.at("/identityProvider"), Value::Null, "{}", line.raw);
    }
}

#[test]
fn a_jwt_over_16_kib_is_too_large_and_not_decoded() {
    let envoy = Envoy::start(&config(json!({})));
    // A valid token of ~20 KiB: below Envoy's 60 KiB header limit, above api-warden's 16 KiB.
    let mut big = claims();
    big["padding"] = json!("x".repeat(15 * 1024));
    let token = jwt(&big);
    assert!(token.len() > 16 * 1024 && token.len() < 40 * 1024);
    let line = record_of(
        &envoy,
        1,
        "/rest",
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_at(
        &line,
        &[
            ("/ase/jwt/status", json!("too_large")),
            ("/ase/jwt/error", json!("token is longer than 16384 bytes")),
            ("/ase/client/username", Value::Null),
            ("/ase/client/client_id", Value::Null),
            ("/ase/decision", json!("allow")),
        ],
    );
    // Exactly at the limit is still decoded.
    let mut fits = claims();
    let mut n = 16 * 1024 - jwt(&fits).len();
    let token = loop {
        fits["p"] = json!("y".repeat(n));
        let t = jwt(&fits);
        if t.len() <= 16 * 1024 {
            break t;
        }
        n -= 1;
    };
    assert!(token.len() <= 16 * 1024, "{}", token.len());
    assert!(token.len() > 16 * 1024 - 16, "{}", token.len());
    let line = record_of(
        &envoy,
        2,
        "/rest",
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(line.at("/ase/jwt/status"), "ok", "{}", line.raw);
    assert_eq!(line.at("/ase/client/username"), "alice");
}

#[test]
fn the_username_comes_from_username_header() {
    let envoy = Envoy::start(&config(json!({})));
    let line = record_of(&envoy, 1, "/hdr/x", &[("x-user", "  carol ")]);
    assert_at(
        &line,
        &[
            ("/ase/client/username", json!("carol")),
            ("/identityProvider", json!("header:x-user")),
            ("/ase/jwt", Value::Null),
        ],
    );
    assert_eq!(line.username, "carol");
    // First of repeated headers wins.
    let line = record_of(&envoy, 2, "/hdr", &[("X-User", "dave"), ("x-user", "erin")]);
    assert_eq!(line.at("/ase/client/username"), "dave", "{}", line.raw);
    // Only for the API that names it.
    let line = record_of(&envoy, 3, "/ids", &[("x-user", "carol")]);
    assert_eq!(line.at("/ase/client/username"), Value::Null, "{}", line.raw);
    assert_eq!(line.username, "-");
}

#[test]
fn non_utf8_header_bytes_pass_and_are_recorded_lossily() {
    let envoy = Envoy::start(&config(json!({})));
    let mut raw = b"GET /hdr HTTP/1.1\r\nhost: localhost\r\nx-user: \xffcarol\xfe\r\n".to_vec();
    raw.extend_from_slice(b"x-api-key: k\xe9y\r\nconnection: close\r\n\r\n");
    let r = harness::raw_request(&format!("127.0.0.1:{}", envoy.port), &raw).unwrap();
    assert_eq!(r.status, 200, "{}", r.body_text());
    let line = envoy.record(1);
    assert_eq!(
        line.at("/ase/client/username"),
        "\u{fffd}carol\u{fffd}",
        "{}",
        line.raw
    );
    assert_eq!(line.at("/ase/client/api_key"), "k\u{fffd}y", "{}", line.raw);
}
