//! End-to-end bad-input tests (issue 8) through real Envoy: oversized headers and credentials,
//! 1,000 query parameters, 500 cookies, bytes that are not UTF-8, JWT payloads nested 5,000
//! levels deep or as large as Envoy accepts, and configurations with wrong types, 200,000 deny
//! entries or duplicate keys. Each gets a defined outcome — never a panic, never a 5xx caused by
//! the filter — and the filter keeps enforcing afterwards.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::evasion::{complete_records, config, deny, marked, record_marked};
use crate::harness::{self, eventually, jwt, Envoy, Jwt, Response};

/// Lines that would mean the VM failed: a Rust panic, a wasm trap, a failed callback.
const VM_FAILURES: [&str; 5] = [
    "panicked",
    "wasm trap",
    "Function: proxy_on_",
    "Uncaught",
    "RuntimeError",
];

/// Envoy's log holds no VM failure.
fn assert_clean_log(envoy: &Envoy) {
    let log = envoy.log();
    for bad in VM_FAILURES {
        if let Some(line) = log.lines().find(|l| l.contains(bad)) {
            panic!("Envoy's log shows a VM failure ({bad:?}):\n{line}");
        }
    }
}

/// The filter still identifies, allows and blocks: a normal request gets the upstream's 200, a
/// denied API key the block response; and the log shows no VM failure.
fn assert_still_enforcing(envoy: &Envoy) {
    let (r, rec) = get_marked(envoy, 900_001, "/shop/after", &[("x-api-key", "my-key")]);
    assert_eq!(
        r.status,
        200,
        "normal request after bad input: {}",
        r.body_text()
    );
    assert_eq!(r.body_text(), "upstream ok");
    assert_eq!(rec.at("/ase/decision"), "allow");
    let (r, rec) = get_marked(
        envoy,
        900_002,
        "/shop/after",
        &[("x-api-key", "stolen-key")],
    );
    assert_eq!(
        r.status,
        403,
        "denied request after bad input: {}",
        r.body_text()
    );
    assert_eq!(r.body_text(), "Unauthorized");
    assert_eq!(rec.at("/ase/reason"), "deny_list:api_key");
    assert_clean_log(envoy);
}

/// GET `path` (plus the marker `n`) and return the response with its record.
fn get_marked(
    envoy: &Envoy,
    n: usize,
    path: &str,
    headers: &[(&str, &str)],
) -> (Response, harness::LogLine) {
    let r = envoy.get(&marked(path, n), headers);
    let rec = record_marked(envoy, n).unwrap_or_else(|| panic!("no record for {path} (n={n})"));
    assert_eq!(rec.status, r.status, "{path}");
    (r, rec)
}

/// Send a request whose header `name` holds `prefix` followed by `len` bytes of `A`, writing
/// from another thread while reading the answer here (Envoy answers before the request ends).
/// Returns the status Envoy answered with, or `None` when it closed the connection without one.
fn huge_header(port: u16, path: &str, name: &str, prefix: &str, len: usize) -> Option<u16> {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n{name}: {prefix}");
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'A'; 64 * 1024];
        if w.write_all(head.as_bytes()).is_err() {
            return;
        }
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            if w.write_all(&chunk[..n]).is_err() {
                return;
            }
            left -= n;
        }
        let _ = w.write_all(b"\r\nconnection: close\r\n\r\n");
    });
    let mut line = String::new();
    let status = BufReader::new(&s)
        .read_line(&mut line)
        .ok()
        .and_then(|_| line.split_whitespace().nth(1)?.parse().ok());
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    status
}

/// The deny list of [`deny`] plus one API key of 50 KiB.
fn deny_with_big_key(big_key: &str) -> Value {
    let mut d = deny();
    d["api_key"].as_array_mut().unwrap().push(json!(big_key));
    d
}

#[test]
fn oversized_headers_and_credentials_get_a_defined_outcome() {
    const KIB50: usize = 50 * 1024;
    let big_key = "K".repeat(KIB50);
    let envoy = Envoy::start(&config(deny_with_big_key(&big_key)));
    // 50 KiB credentials (below Envoy's 60 KiB header limit) are identified and pass.
    let token = "t".repeat(KIB50);
    let (r, rec) = get_marked(
        &envoy,
        1,
        "/shop/big",
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(
        rec.at("/ase/client/token").as_str().map(str::len),
        Some(KIB50)
    );
    let key = "k".repeat(KIB50);
    let (r, rec) = get_marked(&envoy, 2, "/shop/big", &[("x-api-key", &key)]);
    assert_eq!(r.status, 200);
    assert_eq!(
        rec.at("/ase/client/api_key").as_str().map(str::len),
        Some(KIB50)
    );
    let (r, rec) = get_marked(&envoy, 3, "/hdr/big", &[("x-user", &"u".repeat(KIB50))]);
    assert_eq!(r.status, 200);
    assert_eq!(
        rec.at("/ase/client/username").as_str().map(str::len),
        Some(KIB50)
    );
    let cookie = format!("SESSION={}", "c".repeat(KIB50));
    let (r, rec) = get_marked(&envoy, 4, "/shop/big", &[("cookie", &cookie)]);
    assert_eq!(r.status, 200);
    assert_eq!(
        rec.at("/ase/client/cookie").as_str().map(str::len),
        Some(KIB50)
    );
    // A 50 KiB JWT is not decoded (over 16 KiB): recorded as too large, never blocked for it.
    let big_jwt = jwt(&json!({"sub": "mallory", "pad": "p".repeat(37 * 1024)}));
    assert!(
        big_jwt.len() > 49 * 1024 && big_jwt.len() < 51 * 1024,
        "{}",
        big_jwt.len()
    );
    let (r, rec) = get_marked(
        &envoy,
        5,
        "/jwt/big",
        &[("authorization", &format!("Bearer {big_jwt}"))],
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(
        rec.at("/ase/jwt/status"),
        "too_large",
        "{}",
        rec.at("/ase/jwt")
    );
    assert_eq!(rec.at("/ase/client/username"), Value::Null);
    // A 50 KiB value on the deny list blocks like any other.
    let (r, rec) = get_marked(&envoy, 6, "/shop/big", &[("x-api-key", &big_key)]);
    assert_eq!(r.status, 403);
    assert_eq!(rec.at("/ase/reason"), "deny_list:api_key");

    // Past Envoy's limits Envoy answers by itself, before the filter sees the request: a
    // 61 KiB header or 101 headers get 431, and so does a 10 MiB header.
    let r = envoy.get("/shop/too-big", &[("x-api-key", &"k".repeat(61 * 1024))]);
    assert_eq!(r.status, 431, "{}", r.body_text());
    let many: Vec<(String, String)> = (0..101).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = envoy.get("/shop/too-many", &many);
    assert_eq!(r.status, 431, "{}", r.body_text());
    let status = huge_header(
        envoy.port,
        "/jwt/huge",
        "authorization",
        "Bearer ",
        10 << 20,
    );
    assert_eq!(status, Some(431), "10 MiB header");
    // Envoy still writes a record for what it refused; it is stamped with the time it was
    // logged (not 1970) and carries Envoy's status.
    let refused = eventually(5, || {
        let lines = complete_records(&envoy);
        let refused: Vec<_> = lines.into_iter().filter(|l| l.status == 431).collect();
        (refused.len() >= 2).then_some(refused)
    })
    .unwrap_or_else(|| panic!("timed out after 5 s: records of the refused requests"));
    for rec in &refused {
        assert!(
            rec.at("/timestamp").as_str().is_some_and(|t| t > "2020"),
            "{}",
            rec.raw
        );
        assert!(
            rec.at("/duration_ms").as_u64().is_some_and(|d| d < 60_000),
            "{}",
            rec.raw
        );
        assert_eq!(rec.at("/attributes/HttpRequest.ResponseStatus"), 431);
        assert_eq!(rec.at("/ase/decision"), "allow");
    }
    assert_still_enforcing(&envoy);
}

#[test]
fn a_thousand_query_parameters_and_five_hundred_cookies() {
    let envoy = Envoy::start(&config(deny()));
    let params: Vec<String> = (0..999).map(|i| format!("p{i}=v{i}")).collect();
    let params = params.join("&");
    // The API key after 999 other parameters is still found.
    let (r, rec) = get_marked(
        &envoy,
        1,
        &format!("/qs/many?{params}&key_1.4=stolen-key"),
        &[],
    );
    assert_eq!(r.status, 403, "{}", r.body_text());
    assert_eq!(rec.at("/ase/reason"), "deny_list:api_key");
    let (r, rec) = get_marked(&envoy, 2, &format!("/qs/many?{params}&key_1.4=my-key"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(rec.at("/ase/client/api_key"), "my-key");
    // 999 parameters + the key + the marker, all in the record.
    let q = rec.at("/attributes/HttpRequest.QueryParameters");
    assert_eq!(q.as_object().map(|o| o.len()), Some(1001));
    // 1,000 repeats of the key: the first wins, wherever the denied one is.
    let repeats = |first: &str| {
        let mut v = vec![format!("key_1.4={first}")];
        v.extend((1..1000).map(|i| format!("key_1.4=k{i}")));
        v.join("&")
    };
    let (r, _) = get_marked(
        &envoy,
        3,
        &format!("/qs/rep?{}", repeats("stolen-key")),
        &[],
    );
    assert_eq!(r.status, 403);
    let (r, rec) = get_marked(&envoy, 4, &format!("/qs/rep?{}", repeats("my-key")), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(rec.at("/ase/client/api_key"), "my-key");

    // 500 cookies in one header, the session last.
    let cookies: Vec<String> = (0..499).map(|i| format!("c{i}=v{i}")).collect();
    let cookies = cookies.join("; ");
    let h = format!("{cookies}; SESSION=evil-session");
    let (r, rec) = get_marked(&envoy, 5, "/shop/cookies", &[("cookie", &h)]);
    assert_eq!(r.status, 403, "{}", r.body_text());
    assert_eq!(rec.at("/ase/reason"), "deny_list:cookie");
    let h = format!("{cookies}; SESSION=fine-session");
    let (r, rec) = get_marked(&envoy, 6, "/shop/cookies", &[("cookie", &h)]);
    assert_eq!(r.status, 200);
    assert_eq!(rec.at("/ase/client/cookie"), "fine-session");
    // 500 cookies in 90 Cookie headers (Envoy allows 100 headers), the session in the last one.
    let mut headers: Vec<String> = (0..89)
        .map(|h| {
            (0..5)
                .map(|i| format!("h{h}c{i}=v"))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .collect();
    headers.push("a=1; b=2; c=3; d=4; SESSION=evil-session".into());
    let pairs: Vec<(&str, &str)> = headers.iter().map(|v| ("cookie", v.as_str())).collect();
    let (r, rec) = get_marked(&envoy, 7, "/shop/cookie-headers", &pairs);
    assert_eq!(r.status, 403, "{}", r.body_text());
    assert_eq!(rec.at("/ase/reason"), "deny_list:cookie");
    assert_still_enforcing(&envoy);
}

/// Send raw bytes to the main listener.
fn raw(envoy: &Envoy, bytes: &[u8]) -> Response {
    harness::raw_request(&format!("127.0.0.1:{}", envoy.port), bytes).expect("raw request")
}

/// A raw GET of `target` with one extra header line (raw bytes, no CRLF).
fn raw_get(envoy: &Envoy, target: &[u8], header: &[u8]) -> Response {
    let mut b = b"GET ".to_vec();
    b.extend_from_slice(target);
    b.extend_from_slice(b" HTTP/1.1\r\nhost: localhost\r\n");
    b.extend_from_slice(header);
    b.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
    raw(envoy, &b)
}

#[test]
fn bytes_that_are_not_utf8_never_break_identification() {
    // Bytes that are not UTF-8 reach the filter as U+FFFD, so a deny entry holding U+FFFD
    // matches them (the record shows the same text).
    let mut d = deny();
    d["username"]
        .as_array_mut()
        .unwrap()
        .push(json!("\u{fffd}eve"));
    let envoy = Envoy::start(&config(d));
    let fffd = |s: &str| s.replace('#', "\u{fffd}");
    let bad_json_jwt = jwt_bytes(b"{\"sub\":\"\xffmallory\"}");
    // (target, header line, status, record pointer, recorded value)
    type Row<'a> = (&'a [u8], Vec<u8>, u16, &'a str, String);
    let rows: Vec<Row> = vec![
        (
            b"/shop/u?n=1",
            b"x-api-key: stolen-key\xff".to_vec(),
            200,
            "/ase/client/api_key",
            fffd("stolen-key#"),
        ),
        (
            b"/shop/u?n=2",
            b"authorization: Bearer \xff\xfebad".to_vec(),
            200,
            "/ase/client/token",
            fffd("##bad"),
        ),
        (
            b"/shop/u?n=3",
            b"cookie: SESSION=\x80evil\xc3".to_vec(),
            200,
            "/ase/client/cookie",
            fffd("#evil#"),
        ),
        (
            b"/hdr/u?n=4",
            b"x-user: \xfeeve".to_vec(),
            403,
            "/ase/reason",
            "deny_list:username".into(),
        ),
        (
            b"/hdr/u?n=5",
            b"x-user: \xc3\xa9ve".to_vec(),
            200,
            "/ase/client/username",
            "\u{e9}ve".into(),
        ),
        // Percent-encoded bytes that are not UTF-8: the path still matches, the key is lossy.
        (
            b"/shop/%ff%fe?n=6",
            b"x-a: b".to_vec(),
            200,
            "/ase/api",
            "shop".into(),
        ),
        (
            b"/qs/u?key_1.4=%ffstolen-key&n=7",
            b"x-a: b".to_vec(),
            200,
            "/ase/client/api_key",
            fffd("#stolen-key"),
        ),
        // A JWT whose payload is not UTF-8 JSON is invalid, not fatal.
        (
            b"/jwt/u?n=8",
            format!("authorization: Bearer {bad_json_jwt}").into_bytes(),
            200,
            "/ase/jwt/status",
            "invalid".into(),
        ),
    ];
    for (i, (target, header, status, pointer, value)) in rows.iter().enumerate() {
        let r = raw_get(&envoy, target, header);
        let what = String::from_utf8_lossy(header).into_owned();
        assert_eq!(r.status, *status, "{what}: {}", r.body_text());
        let rec = record_marked(&envoy, i + 1).unwrap_or_else(|| panic!("no record: {what}"));
        assert_eq!(rec.at(pointer), json!(value), "{what}: {}", rec.raw);
    }
    // Raw bytes that are not UTF-8 in the path, and a NUL in a header, are Envoy's to refuse.
    assert_eq!(raw_get(&envoy, b"/shop/\xff\xfe", b"x-a: b").status, 400);
    assert_eq!(
        raw_get(&envoy, b"/shop/x", b"x-api-key: a\x00b").status,
        400
    );
    assert_still_enforcing(&envoy);
}

/// A JWT whose payload is these raw bytes (base64url), header `{"alg":"none"}`.
fn jwt_bytes(payload: &[u8]) -> String {
    Jwt::raw(payload).header(r#"{"alg":"none"}"#).build()
}

#[test]
fn deeply_nested_and_huge_jwt_payloads_are_invalid_not_fatal() {
    let envoy = Envoy::start(&config(deny()));
    let bearer = |t: &str| format!("Bearer {t}");
    // 5,000 nested arrays fit in 16 KiB of token: decoded, and refused at serde_json's depth
    // limit (128) instead of recursing. The denied `sub` beside them is never read.
    let arrays = format!(
        r#"{{"sub":"mallory","x":{}{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let t = Jwt::raw(&arrays).build();
    assert!(t.len() < 16 * 1024, "{}", t.len());
    let (r, rec) = get_marked(&envoy, 1, "/jwt/deep", &[("authorization", &bearer(&t))]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(rec.at("/ase/jwt/status"), "invalid");
    let err = rec.at("/ase/jwt/error");
    assert!(
        err.as_str().is_some_and(|e| e.contains("recursion limit")),
        "{err}"
    );
    assert_eq!(rec.at("/ase/client/username"), Value::Null);
    // 5,000 nested objects are over 16 KiB of token: not decoded at all.
    let objects = format!(
        r#"{{"sub":"mallory","x":{}1{}}}"#,
        r#"{"a":"#.repeat(5000),
        "}".repeat(5000)
    );
    let t = Jwt::raw(&objects).build();
    let (r, rec) = get_marked(&envoy, 2, "/jwt/deep", &[("authorization", &bearer(&t))]);
    assert_eq!(r.status, 200);
    assert_eq!(rec.at("/ase/jwt/status"), "too_large");
    // 127 levels are fine: the claim is read and the user blocked.
    let ok = format!(
        r#"{{"sub":"mallory","x":{}{}}}"#,
        "[".repeat(126),
        "]".repeat(126)
    );
    let (r, rec) = get_marked(
        &envoy,
        3,
        "/jwt/deep",
        &[("authorization", &bearer(&Jwt::raw(&ok).build()))],
    );
    assert_eq!(r.status, 403, "{}", rec.raw);
    assert_eq!(rec.at("/ase/reason"), "deny_list:username");
    // Numbers serde_json cannot hold, and garbage base64, are invalid too.
    for (n, payload) in [
        (4, r#"{"sub":1e999999}"#.to_string()),
        (5, format!(r#"{{"sub":{}}}"#, "9".repeat(5000))),
    ] {
        let (r, rec) = get_marked(
            &envoy,
            n,
            "/jwt/num",
            &[("authorization", &bearer(&Jwt::raw(&payload).build()))],
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            rec.at("/ase/jwt/status"),
            "invalid",
            "{}",
            rec.at("/ase/jwt")
        );
    }
    let (r, rec) = get_marked(
        &envoy,
        6,
        "/jwt/b64",
        &[("authorization", "Bearer a.!!!!.c")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(rec.at("/ase/jwt/status"), "invalid");
    // The largest base64 Envoy accepts in one header (just under 60 KiB): too large, passes.
    let t = format!("{}.{}.c2ln", "eyJhbGciOiJub25lIn0", "A".repeat(59 * 1024));
    let (r, rec) = get_marked(&envoy, 7, "/jwt/max", &[("authorization", &bearer(&t))]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(rec.at("/ase/jwt/status"), "too_large");
    // 10 MiB of base64: Envoy refuses it (431, or closes the connection) before the filter.
    let status = huge_header(
        envoy.port,
        "/jwt/10mib",
        "authorization",
        "Bearer eyJ9.",
        10 << 20,
    );
    assert_eq!(status, Some(431), "10 MiB of base64");
    assert_still_enforcing(&envoy);
    let r = envoy.get(
        "/jwt/after",
        &[("authorization", &bearer(&jwt(&json!({"sub": "mallory"}))))],
    );
    assert_eq!(r.status, 403);
}

/// Start Envoy with `cfg` and expect it to refuse; return api-warden's rejection line.
fn refusal(cfg: &str) -> String {
    let log = Envoy::refused(cfg);
    for bad in VM_FAILURES {
        assert!(
            !log.contains(bad),
            "VM failure ({bad}) for {cfg:.200}:\n{log}"
        );
    }
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("api-warden: invalid configuration:"))
        .collect();
    assert!(
        !lines.is_empty(),
        "no rejection line for {cfg:.300}:\n{log}"
    );
    let line = lines[0];
    assert!(line.contains("configuration rejected"), "{line}");
    line.to_string()
}

/// Every configuration of `rows` is refused with a rejection line holding its text (the Envoys
/// started side by side).
fn assert_all_refused(rows: &[(String, &str)]) {
    std::thread::scope(|s| {
        let runs: Vec<_> = rows
            .iter()
            .map(|(cfg, want)| {
                s.spawn(move || {
                    let line = refusal(cfg);
                    assert!(line.contains(want), "{cfg:.200}: want {want:?} in\n{line}");
                })
            })
            .collect();
        for run in runs {
            if let Err(e) = run.join() {
                std::panic::resume_unwind(e);
            }
        }
    });
}

#[test]
fn lists_with_wrong_types_are_refused_with_one_clear_line() {
    assert_all_refused(&[
        (
            json!({"deny_list": ["eve"]}).to_string(),
            "deny_list must be an object",
        ),
        (
            json!({"deny_list": {"username": "eve"}}).to_string(),
            "deny_list.username must be an array of strings, got string \"eve\"",
        ),
        (
            json!({"deny_list": {"username": ["eve", 7]}}).to_string(),
            "deny_list.username[1] must be a non-empty string, got number 7",
        ),
        (
            json!({"allow_list": {"ip": ["10.0.0.300"]}}).to_string(),
            "allow_list.ip[0] \"10.0.0.300\" is not an IPv4 or IPv6 address",
        ),
        (
            json!({"deny_list": {"email": ["a@example.com"]}}).to_string(),
            "deny_list: unknown identifier type \"email\"",
        ),
    ]);
}

#[test]
fn unparsable_and_ambiguous_configurations_are_refused_with_one_clear_line() {
    let deep = format!(r#"{{"ase":{}{}}}"#, "[".repeat(5000), "]".repeat(5000));
    assert_all_refused(&[
        // Nesting stops at serde_json's depth limit instead of exhausting the stack.
        (
            deep,
            "plugin configuration is not JSON: recursion limit exceeded",
        ),
        (
            r#"{"ase": {"detected_attack_ttl_s": 1e400}}"#.to_string(),
            "plugin configuration is not JSON: number out of range",
        ),
        (
            r#"{"ase": {}} {"ase": {}}"#.to_string(),
            "plugin configuration is not JSON: trailing characters",
        ),
        (
            json!("a string").to_string(),
            "plugin configuration must be a JSON object, got string",
        ),
        // Duplicate keys: the last one counts (serde_json), so a bad last value is refused.
        (
            r#"{"ase": {"enable_firewall": true, "enable_firewall": "no"}}"#.to_string(),
            "ase.enable_firewall must be a boolean",
        ),
    ]);
}

#[test]
fn a_deny_list_of_200000_configured_entries_loads_and_blocks() {
    const USERS: usize = 150_000;
    const IPS: usize = 50_000;
    let users: Vec<String> = (0..USERS).map(|i| format!("user-{i}")).collect();
    let ips: Vec<String> = (0..IPS)
        .map(|i| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255))
        .collect();
    let mut d = deny();
    d["username"] = json!(users);
    d["ip"] = json!(ips);
    d["api_key"] = json!(["stolen-key"]);
    let cfg = config(d);
    assert!(cfg.len() > 2_000_000, "{}", cfg.len());
    let started = Instant::now();
    let envoy = Envoy::start(&cfg);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "start took {took:?}");
    for (n, user) in [(1, "user-0"), (2, "user-74999"), (3, "user-149999")] {
        let (r, rec) = get_marked(&envoy, n, "/hdr/x", &[("x-user", user)]);
        assert_eq!(r.status, 403, "{user}");
        assert_eq!(rec.at("/ase/reason"), "deny_list:username");
        assert_eq!(rec.at("/ase/list_source"), "config");
    }
    for (n, user) in [(4, "user-150000"), (5, "user-1x"), (6, "User-1")] {
        let (r, _) = get_marked(&envoy, n, "/hdr/x", &[("x-user", user)]);
        assert_eq!(r.status, 200, "{user}");
    }
    // The gauges count every configured entry.
    eventually(5, || {
        let u = envoy.stat("wasmcustom.api_warden.lists.deny_list.username.config");
        let i = envoy.stat("wasmcustom.api_warden.lists.deny_list.ip.config");
        (u == USERS as u64 && i == IPS as u64).then_some(())
    })
    .unwrap_or_else(|| panic!("timed out after 5 s: list-size gauges"));
    assert_still_enforcing(&envoy);
}

#[test]
fn duplicate_json_keys_in_the_configuration_take_the_last_value() {
    // serde_json keeps the last of repeated keys, at every level.
    let cfg = r#"{
        "ase": {"enable_firewall": false, "enable_firewall": true},
        "apis": [{"api_metadata": {"url": "/shop", "hostname": "*",
                  "apikey_header": "x-first", "apikey_header": "x-api-key",
                  "enable_blocking": false, "enable_blocking": true}}],
        "deny_list": {"api_key": ["first-key"]},
        "deny_list": {"api_key": ["stolen-key"], "api_key": ["last-key"]}
    }"#;
    let envoy = Envoy::start(cfg);
    let (r, rec) = get_marked(&envoy, 1, "/shop/d", &[("x-api-key", "last-key")]);
    assert_eq!(r.status, 403, "{}", rec.raw);
    assert_eq!(rec.at("/ase/reason"), "deny_list:api_key");
    for (n, key) in [(2, "first-key"), (3, "stolen-key")] {
        let (r, rec) = get_marked(&envoy, n, "/shop/d", &[("x-api-key", key)]);
        assert_eq!(r.status, 200, "{key}");
        assert_eq!(rec.at("/ase/client/api_key"), key);
    }
    let (r, rec) = get_marked(&envoy, 4, "/shop/d", &[("x-first", "last-key")]);
    assert_eq!(r.status, 200);
    assert_eq!(rec.at("/ase/client/api_key"), Value::Null);
    assert_clean_log(&envoy);
}
