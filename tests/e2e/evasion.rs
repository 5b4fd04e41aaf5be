//! End-to-end evasion tests (issue 8) through real Envoy: for every identifier type on a deny
//! list (ip, token, api_key, cookie, username from a JWT and from a header), a client that spells
//! its identifier differently — header-name and scheme case, spaces and tabs, repeated headers,
//! cookies and query parameters, percent-encoding, `+` for a space, path tricks, HTTP/2, IPv6,
//! a spoofed X-Forwarded-For — is still blocked, and a client whose identifier truly differs is
//! not. Each request carries a unique `n` query parameter so that its record and its arrival at
//! the upstream can be told apart.

use std::cell::{Cell, RefCell};
use std::process::Command;

use serde_json::{json, Value};

use crate::harness::{self, eventually, jwt, Envoy, Jwt, LogLine, Opts, Response};

/// Five blocking APIs, one per way of carrying identifiers:
/// - `shop` (`/shop`): OAuth2 token (Bearer), API key in `x-api-key`, session cookie `SESSION`;
/// - `qs` (`/qs`): token in `access_token` and API key in `key_1.4`, both in the query string;
/// - `jwt` (`/jwt`): username = claim `sub` of the JWT in `Authorization: Bearer`;
/// - `hdr` (`/hdr`): username from the `X-User` header (configured with capitals);
/// - `api` (`/api`): username from `x-user`, for the path tricks.
pub(crate) fn config(deny: Value) -> String {
    let api = |name: &str, meta: Value| {
        let mut m = json!({"url": format!("/{name}"), "hostname": "*", "enable_blocking": true});
        if let (Some(m), Value::Object(extra)) = (m.as_object_mut(), meta) {
            m.extend(extra);
        }
        json!({"name": name, "api_metadata": m})
    };
    json!({
        "apis": [
            api("shop", json!({"oauth2_access_token": true, "apikey_header": "x-api-key",
                               "cookie": "SESSION"})),
            api("qs", json!({"oauth2_access_token": true, "apikey_qs": "key_1.4"})),
            api("jwt", json!({"jwt": {"location": "h:Authorization:Bearer", "username": "sub",
                                      "clientid": "client_id"}})),
            api("hdr", json!({"username_header": "X-User"})),
            api("api", json!({"username_header": "x-user"})),
        ],
        "deny_list": deny,
    })
    .to_string()
}

/// The deny list of most tests: one value per identifier type (two usernames, and an API key
/// with a space in it for the `+` / `%20` cases).
pub(crate) fn deny() -> Value {
    json!({
        "token": ["bad-token"],
        "api_key": ["stolen-key", "stolen key"],
        "cookie": ["evil-session"],
        "username": ["mallory", "eve"],
    })
}

/// `path` with the marker `n=<n>` added to its query string.
pub(crate) fn marked(path: &str, n: usize) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}n={n}")
}

/// Every complete access-log line, parsed. A line Envoy is still flushing (records of requests
/// with 50 KiB headers are written in several pieces) is left for the next read, where
/// `Envoy::records` would fail on it.
pub(crate) fn complete_records(envoy: &Envoy) -> Vec<LogLine> {
    let bytes = std::fs::read(&envoy.access_log).unwrap_or_default();
    let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&bytes[..end]);
    text.lines().filter_map(LogLine::try_parse).collect()
}

/// The access-log record of the request marked `n` (its `n` query parameter), waiting up to
/// 5 s for it.
pub(crate) fn record_marked(envoy: &Envoy, n: usize) -> Option<LogLine> {
    eventually(5, || {
        complete_records(envoy).into_iter().find(|l| {
            let marker = l.at("/attributes/HttpRequest.QueryParameters/n/0");
            marker.as_str().and_then(|m| m.parse().ok()) == Some(n)
        })
    })
}

/// What a request must come to.
#[derive(Clone, Copy)]
enum Want<'a> {
    /// 403 `Unauthorized`, reason `deny_list:<type>`.
    Blocked(&'a str),
    /// 200 from the upstream, decision `allow`, and `ase.client.<field>` equal to the value
    /// (`None`: the field is absent).
    Passes(&'a str, Option<&'a str>),
    /// 200 from the upstream, and no API matched (the record's `service` is null).
    Unmatched,
}

/// Sends requests to one Envoy, checks each outcome against its record, and collects every
/// failure so that one run reports all evasions at once.
struct Probe<'a> {
    envoy: &'a Envoy,
    next: Cell<usize>,
    failures: RefCell<Vec<String>>,
    /// Markers of the requests that must never reach the upstream.
    blocked: RefCell<Vec<usize>>,
}

impl<'a> Probe<'a> {
    fn new(envoy: &'a Envoy) -> Probe<'a> {
        Probe {
            envoy,
            next: Cell::new(1),
            failures: RefCell::new(Vec::new()),
            blocked: RefCell::new(Vec::new()),
        }
    }

    fn marker(&self) -> usize {
        let n = self.next.get();
        self.next.set(n + 1);
        n
    }

    /// HTTP/1.1 GET of `path` (plus the marker) with these headers, sent as given (name case,
    /// spaces and tabs included).
    fn check(&self, what: &str, path: &str, headers: &[(&str, &str)], want: Want) {
        let n = self.marker();
        let r = self.envoy.get(&marked(path, n), headers);
        self.judge(what, n, r.status, &r.body_text(), want);
    }

    /// Like [`Probe::check`] with a raw HTTP/1.1 request line target (no marker added: the
    /// target must carry `n=<marker>` itself, given by `target(n)`).
    fn check_raw(&self, what: &str, target: impl Fn(usize) -> String, headers: &str, want: Want) {
        let n = self.marker();
        let raw = format!(
            "GET {} HTTP/1.1\r\nhost: localhost\r\n{headers}connection: close\r\n\r\n",
            target(n)
        );
        let addr = format!("127.0.0.1:{}", self.envoy.port);
        match harness::raw_request(&addr, raw.as_bytes()) {
            Ok(r) => self.judge(what, n, r.status, &r.body_text(), want),
            Err(e) => self.fail(format!("{what}: request failed: {e}")),
        }
    }

    /// Record a failure.
    fn fail(&self, msg: String) {
        self.failures.borrow_mut().push(msg);
    }

    /// Check a response (status, body) and the record of request `n` against `want`.
    fn judge(&self, what: &str, n: usize, status: u16, body: &str, want: Want) {
        let Some(rec) = record_marked(self.envoy, n) else {
            return self.fail(format!("{what}: no record (status {status})"));
        };
        let ctx = format!("{what} [n={n}]");
        match want {
            Want::Blocked(t) => {
                self.blocked.borrow_mut().push(n);
                if status != 403 || body != "Unauthorized" {
                    let client = rec.at("/ase/client");
                    return self.fail(format!(
                        "{ctx}: expected 403 (deny_list:{t}), got {status} {body:?}; {client}"
                    ));
                }
                let reason = rec.at("/ase/reason");
                if reason != format!("deny_list:{t}") {
                    self.fail(format!(
                        "{ctx}: blocked for {reason}, expected deny_list:{t}"
                    ));
                }
            }
            Want::Passes(field, value) => {
                if status != 200 || body != "upstream ok" {
                    return self.fail(format!(
                        "{ctx}: expected 200 from the upstream, got {status} {body:?} ({})",
                        rec.at("/ase/reason")
                    ));
                }
                if rec.at("/ase/decision") != "allow" || rec.at("/ase/reason") != Value::Null {
                    self.fail(format!("{ctx}: record says {}", rec.at("/ase")));
                }
                if rec.at("/ase/api") == Value::Null {
                    self.fail(format!("{ctx}: no API matched"));
                }
                let got = rec.at(&format!("/ase/client/{field}"));
                let expected = value.map_or(Value::Null, |v| json!(v));
                if got != expected {
                    self.fail(format!(
                        "{ctx}: client {field} is {got}, expected {expected}"
                    ));
                }
            }
            Want::Unmatched => {
                if status != 200 || body != "upstream ok" {
                    self.fail(format!(
                        "{ctx}: expected 200 (no API), got {status} {body:?}"
                    ));
                } else if rec.at("/service") != Value::Null || rec.at("/ase/api") != Value::Null {
                    self.fail(format!("{ctx}: matched API {}", rec.at("/service")));
                }
            }
        }
    }

    /// Fail the test with every failure seen; also check that no blocked request reached the
    /// upstream.
    fn finish(self) {
        let seen = self.envoy.upstream_paths();
        for n in self.blocked.borrow().iter() {
            let tails = [format!("?n={n}"), format!("&n={n}")];
            if let Some(p) = seen.iter().find(|p| tails.iter().any(|t| p.ends_with(t))) {
                self.fail(format!("blocked request {n} reached the upstream as {p}"));
            }
        }
        let failures = self.failures.borrow();
        assert!(
            failures.is_empty(),
            "{} evasion check(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

use Want::{Blocked, Passes, Unmatched};

#[test]
fn a_denied_token_is_blocked_however_it_is_spelled() {
    let envoy = Envoy::start(&config(deny()));
    let p = Probe::new(&envoy);
    let bad = Blocked("token");
    // Header-name case, scheme case, spaces and tabs around the scheme and the credential.
    for (name, value) in [
        ("Authorization", "Bearer bad-token"),
        ("AUTHORIZATION", "Bearer bad-token"),
        ("authorization", "bearer bad-token"),
        ("authorization", "BEARER bad-token"),
        ("Authorization", "bEaReR bad-token"),
        ("authorization", "Bearer    bad-token"),
        ("authorization", "Bearer\tbad-token"),
        ("authorization", " \t Bearer \t bad-token \t "),
        // Another credential first in the same header: the first Bearer credential counts.
        ("authorization", "Basic dXNlcjpwYXNz, Bearer bad-token"),
        // A bearer token holds no whitespace: what follows it is not part of it (upstreams that
        // split the header on spaces read `bad-token`).
        ("authorization", "Bearer bad-token extra"),
        ("authorization", "Bearer bad-token\tbad-token"),
    ] {
        p.check(
            &format!("{name}: {value:?}"),
            "/shop/t",
            &[(name, value)],
            bad,
        );
    }
    // Repeated headers: Envoy joins them with `,`; the first Bearer credential wins.
    p.check(
        "bad token first of two headers",
        "/shop/t",
        &[
            ("authorization", "Bearer bad-token"),
            ("Authorization", "Bearer good-token"),
        ],
        bad,
    );
    p.check(
        "Basic header, then the bad token",
        "/shop/t",
        &[
            ("authorization", "Basic dXNlcjpwYXNz"),
            ("authorization", "Bearer bad-token"),
        ],
        bad,
    );
    // The query string: percent-encoded name and value, repeats (first wins).
    for path in [
        "/qs/t?access_token=bad-token",
        "/qs/t?access_%74oken=bad%2Dtoken",
        "/qs/t?%61ccess_token=%62ad-token",
        "/qs/t?a=1&access_token=bad-token&b=2",
        "/qs/t?access_token=bad-token&access_token=good-token",
        "/qs/t?&&access_token=bad-token&",
    ] {
        p.check(path, path, &[], bad);
    }
    // Truly different tokens pass, and the token really was read.
    let tok = |v| Passes("token", Some(v));
    p.check(
        "other token",
        "/shop/t",
        &[("authorization", "Bearer good-token")],
        tok("good-token"),
    );
    p.check(
        "token case",
        "/shop/t",
        &[("authorization", "Bearer BAD-TOKEN")],
        tok("BAD-TOKEN"),
    );
    p.check(
        "longer token",
        "/shop/t",
        &[("authorization", "Bearer bad-token2")],
        tok("bad-token2"),
    );
    p.check(
        "good token first of two headers (first wins)",
        "/shop/t",
        &[
            ("authorization", "Bearer good-token"),
            ("authorization", "Bearer bad-token"),
        ],
        tok("good-token"),
    );
    p.check(
        "the first word after the scheme is the token",
        "/shop/t",
        &[("authorization", "Bearer good-token bad-token")],
        tok("good-token"),
    );
    p.check(
        "another scheme is not a token",
        "/shop/t",
        &[("authorization", "Token bad-token")],
        Passes("token", None),
    );
    p.check(
        "repeated query parameter (first wins)",
        "/qs/t?access_token=good-token&access_token=bad-token",
        &[],
        tok("good-token"),
    );
    p.check(
        "query parameter names are case-sensitive",
        "/qs/t?ACCESS_TOKEN=bad-token",
        &[],
        Passes("token", None),
    );
    // The Authorization header wins over the query parameter (README: "else the access_token
    // query parameter").
    p.check(
        "header token before the query token",
        "/qs/t?access_token=bad-token",
        &[("authorization", "Bearer good-token")],
        tok("good-token"),
    );
    p.finish();
}

#[test]
fn a_denied_api_key_is_blocked_however_it_is_spelled() {
    let envoy = Envoy::start(&config(deny()));
    let p = Probe::new(&envoy);
    for (name, value) in [
        ("x-api-key", "stolen-key"),
        ("X-Api-Key", "stolen-key"),
        ("X-API-KEY", "stolen-key"),
        ("x-api-key", "   stolen-key"),
        ("x-api-key", "stolen-key \t "),
        ("x-api-key", "\t stolen-key\t"),
    ] {
        p.check(
            &format!("{name}: {value:?}"),
            "/shop/k",
            &[(name, value)],
            Blocked("api_key"),
        );
    }
    p.check(
        "denied key first of two headers",
        "/shop/k",
        &[("x-api-key", "stolen-key"), ("X-Api-Key", "my-key")],
        Blocked("api_key"),
    );
    for path in [
        "/qs/k?key_1.4=stolen-key",
        "/qs/k?key_1%2E4=stolen-key",
        "/qs/k?key_1%2e4=%73tolen%2Dkey",
        "/qs/k?key%5F1.4=stolen-key",
        "/qs/k?%6b%65%79%5f%31%2e%34=%73%74%6f%6c%65%6e%2d%6b%65%79",
        "/qs/k?key_1.4=stolen+key",
        "/qs/k?key_1.4=stolen%20key",
        "/qs/k?a=1&key_1.4=stolen-key&b=2",
        "/qs/k?key_1.4=stolen-key&key_1.4=my-key",
        "/qs/k?&key_1.4=stolen-key&&",
    ] {
        p.check(path, path, &[], Blocked("api_key"));
    }
    let key = |v| Passes("api_key", Some(v));
    p.check(
        "other key",
        "/shop/k",
        &[("x-api-key", "my-key")],
        key("my-key"),
    );
    p.check(
        "key case",
        "/shop/k",
        &[("x-api-key", "Stolen-Key")],
        key("Stolen-Key"),
    );
    p.check(
        "longer key",
        "/shop/k",
        &[("x-api-key", "stolen-key2")],
        key("stolen-key2"),
    );
    p.check(
        "other key first of two headers (first wins)",
        "/shop/k",
        &[("x-api-key", "my-key"), ("x-api-key", "stolen-key")],
        key("my-key"),
    );
    // `x_api_key` is another header name for Envoy and api-warden (CGI-style upstreams that
    // fold `_` into `-` need Envoy's `headers_with_underscores_action: REJECT_REQUEST`).
    p.check(
        "underscores are not dashes",
        "/shop/k",
        &[("x_api_key", "stolen-key")],
        Passes("api_key", None),
    );
    p.check(
        "repeated query parameter (first wins)",
        "/qs/k?key_1.4=my-key&key_1.4=stolen-key",
        &[],
        key("my-key"),
    );
    p.check(
        "%2B is a plus, not a space",
        "/qs/k?key_1.4=stolen%2Bkey",
        &[],
        key("stolen+key"),
    );
    p.check(
        "name case",
        "/qs/k?Key_1.4=stolen-key",
        &[],
        Passes("api_key", None),
    );
    p.check(
        "another name",
        "/qs/k?key_1_4=stolen-key",
        &[],
        Passes("api_key", None),
    );
    p.check(
        "the header is not the query API's key",
        "/qs/k",
        &[("x-api-key", "stolen-key")],
        Passes("api_key", None),
    );
    p.finish();
}

#[test]
fn a_denied_session_cookie_is_blocked_however_it_is_spelled() {
    let envoy = Envoy::start(&config(deny()));
    let p = Probe::new(&envoy);
    let headers: &[&[(&str, &str)]] = &[
        &[("cookie", "SESSION=evil-session")],
        &[("Cookie", "theme=dark; SESSION=evil-session")],
        &[("COOKIE", "SESSION=evil-session; theme=dark")],
        &[("cookie", "theme=dark;SESSION=evil-session;lang=en")],
        &[("cookie", "  SESSION = evil-session ; theme=dark")],
        &[("cookie", "theme=dark;\tSESSION=\tevil-session\t")],
        &[("cookie", "SESSION=\"evil-session\"")],
        // Several Cookie headers, in either order.
        &[("cookie", "theme=dark"), ("cookie", "SESSION=evil-session")],
        &[("cookie", "SESSION=evil-session"), ("Cookie", "theme=dark")],
        &[
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("cookie", "c=3; SESSION=evil-session"),
        ],
        // Percent-encoded: PHP and Express decode cookie values, so the decoded form is
        // checked against the deny list too (the record keeps the value as sent).
        &[("cookie", "SESSION=evil%2Dsession")],
        &[("cookie", "SESSION=%65%76%69%6c-session")],
        // Repeated cookie: the first wins, within a header and across headers.
        &[("cookie", "SESSION=evil-session; SESSION=fine-session")],
        &[
            ("cookie", "SESSION=evil-session"),
            ("cookie", "SESSION=fine-session"),
        ],
    ];
    for h in headers {
        p.check(&format!("{h:?}"), "/shop/c", h, Blocked("cookie"));
    }
    let cookie = |v| Passes("cookie", Some(v));
    for (h, want) in [
        (
            &[("cookie", "SESSION=fine-session")][..],
            cookie("fine-session"),
        ),
        (
            &[("cookie", "SESSION=evil-session2")],
            cookie("evil-session2"),
        ),
        (
            &[("cookie", "SESSION=fine-session; SESSION=evil-session")],
            cookie("fine-session"),
        ),
        (
            &[
                ("cookie", "SESSION=fine-session"),
                ("cookie", "SESSION=evil-session"),
            ],
            cookie("fine-session"),
        ),
        // Cookie names are case-sensitive (RFC 6265); `+` is not a space in a cookie.
        (
            &[("cookie", "session=evil-session")],
            Passes("cookie", None),
        ),
        (
            &[("cookie", "XSESSION=evil-session")],
            Passes("cookie", None),
        ),
        (
            &[("cookie", "SESSION=evil+session")],
            cookie("evil+session"),
        ),
        (
            &[("cookie", "SESSION=evil%2Bsession")],
            cookie("evil%2Bsession"),
        ),
        // A cookie is not a query parameter.
        (&[("x-session", "evil-session")], Passes("cookie", None)),
    ] {
        p.check(&format!("{h:?}"), "/shop/c", h, want);
    }
    p.check(
        "cookie in the query",
        "/shop/c?SESSION=evil-session",
        &[],
        Passes("cookie", None),
    );
    p.finish();
}

#[test]
fn a_denied_username_in_a_jwt_is_blocked_however_it_is_spelled() {
    let envoy = Envoy::start(&config(deny()));
    let p = Probe::new(&envoy);
    let mallory = jwt(&json!({"sub": "mallory", "client_id": "app"}));
    let alice = jwt(&json!({"sub": "alice", "client_id": "app"}));
    // The same claims with `=` padding, another signature, JSON escapes and whitespace, an array
    // (first element), and a duplicate claim (serde_json keeps the LAST, like most JSON parsers).
    let payload = json!({"sub": "mallory", "client_id": "app"}).to_string();
    let padded = Jwt::raw(&payload).padded().build();
    assert!(padded.contains('='), "{padded}");
    let resigned = format!("{}.b3RoZXI", mallory.rsplit_once('.').unwrap().0);
    let variants = [
        ("padded", padded),
        ("resigned", resigned),
        (
            "escaped",
            Jwt::raw(r#"{ "sub" : "\u006dall\u006fry" , "client_id":"app" }"#).build(),
        ),
        ("array", Jwt::raw(r#"{"sub":["mallory","alice"]}"#).build()),
        (
            "duplicate claim",
            Jwt::raw(r#"{"sub":"alice","sub":"mallory"}"#).build(),
        ),
    ];
    for (what, token) in &variants {
        let v = format!("Bearer {token}");
        p.check(
            what,
            "/jwt/u",
            &[("authorization", &v)],
            Blocked("username"),
        );
    }
    for (name, scheme, pad) in [
        ("Authorization", "Bearer", " "),
        ("AUTHORIZATION", "bearer", " "),
        ("authorization", "BEARER", "\t"),
        ("authorization", "Bearer", "  \t "),
    ] {
        let v = format!("{pad}{scheme}{pad}{mallory}{pad}");
        p.check(
            &format!("{name}: {v:?}"),
            "/jwt/u",
            &[(name, &v)],
            Blocked("username"),
        );
    }
    let bm = format!("Bearer {mallory}");
    let ba = format!("Bearer {alice}");
    p.check(
        "denied JWT first of two headers",
        "/jwt/u",
        &[("authorization", &bm), ("authorization", &ba)],
        Blocked("username"),
    );
    p.check(
        "Basic header, then the denied JWT",
        "/jwt/u",
        &[
            ("authorization", "Basic dXNlcjpwYXNz"),
            ("authorization", &bm),
        ],
        Blocked("username"),
    );
    let user = |v| Passes("username", Some(v));
    p.check(
        "other user",
        "/jwt/u",
        &[("authorization", &ba)],
        user("alice"),
    );
    p.check(
        "allowed JWT first of two headers (first wins)",
        "/jwt/u",
        &[("authorization", &ba), ("authorization", &bm)],
        user("alice"),
    );
    for (what, payload, want) in [
        ("username case", r#"{"sub":"Mallory"}"#, "Mallory"),
        ("longer username", r#"{"sub":"mallory2"}"#, "mallory2"),
        (
            "duplicate claim, allowed last",
            r#"{"sub":"mallory","sub":"alice"}"#,
            "alice",
        ),
        (
            "array, allowed first",
            r#"{"sub":["alice","mallory"]}"#,
            "alice",
        ),
    ] {
        let v = format!("Bearer {}", Jwt::raw(payload).build());
        p.check(what, "/jwt/u", &[("authorization", &v)], user(want));
    }
    // The configured claim only: another claim holding the denied name is not the username.
    let v = format!(
        "Bearer {}",
        Jwt::raw(r#"{"sub":"alice","username":"mallory"}"#).build()
    );
    p.check(
        "other claim",
        "/jwt/u",
        &[("authorization", &v)],
        user("alice"),
    );
    p.finish();
}

#[test]
fn a_denied_username_in_a_header_is_blocked_however_it_is_spelled() {
    let envoy = Envoy::start(&config(deny()));
    let p = Probe::new(&envoy);
    for (name, value) in [
        ("x-user", "eve"),
        ("X-User", "eve"),
        ("X-USER", "eve"),
        ("x-user", "  eve"),
        ("x-user", "eve\t "),
        ("x-user", " \t eve \t "),
    ] {
        p.check(
            &format!("{name}: {value:?}"),
            "/hdr/u",
            &[(name, value)],
            Blocked("username"),
        );
    }
    p.check(
        "denied user first of two headers",
        "/hdr/u",
        &[("x-user", "eve"), ("X-User", "bob")],
        Blocked("username"),
    );
    let user = |v| Passes("username", Some(v));
    p.check("other user", "/hdr/u", &[("x-user", "bob")], user("bob"));
    p.check("username case", "/hdr/u", &[("x-user", "Eve")], user("Eve"));
    p.check(
        "longer username",
        "/hdr/u",
        &[("x-user", "eve2")],
        user("eve2"),
    );
    p.check(
        "other user first of two headers (first wins)",
        "/hdr/u",
        &[("x-user", "bob"), ("x-user", "eve")],
        user("bob"),
    );
    p.check(
        "underscores are not dashes",
        "/hdr/u",
        &[("x_user", "eve")],
        Passes("username", None),
    );
    p.finish();
}

#[test]
fn path_tricks_do_not_take_a_request_out_of_its_blocking_api() {
    let envoy = Envoy::start(&config(deny()));
    let p = Probe::new(&envoy);
    let eve = [("x-user", "eve")];
    // Every spelling of /api that the README's normalization resolves: still the `api` API.
    for path in [
        "/api",
        "/api/",
        "/api/x",
        "//api/x",
        "///api",
        "/api//x",
        "/x/../api/x",
        "/x/y/../../api",
        "/../api/x",
        "/../../api",
        "/api/./x",
        "/api/.",
        "/./api",
        "/api/x/..",
        "/%2e%2e/api/x",
        "/%2E%2E/api",
        "/x/%2e%2e/api",
        "/x/.%2e/api",
        "/%2e/api",
        "/%61pi/x",
        "/%61%70%69",
        "/a%70i/%2e",
        // Encoded and raw slashes and backslashes, and `;` path parameters: upstreams that
        // decode `%2F`, read `\` as `/` or drop `;…` (Tomcat, Spring) serve these from /api.
        "/api%2Fx",
        "/api%2fx",
        "/x%2F..%2Fapi/y",
        "/api%5Cx",
        "/api%5cx",
        "/api\\x",
        "/api;v=1",
        "/api;v=1/x",
    ] {
        p.check(path, path, &eve, Blocked("username"));
    }
    // The absolute form of the request target: Envoy hands the filter the path.
    p.check_raw(
        "absolute-form target",
        |n| format!("http://localhost/api/x?n={n}"),
        "x-user: eve\r\n",
        Blocked("username"),
    );
    // Paths are case-sensitive, and a url matches on segment boundaries only: no API here.
    for path in [
        "/API/x",
        "/Api",
        "/%41PI",
        "/apix",
        "/api-v2/x",
        "/ap",
        "/x/api",
        "/x%2Fapi",
    ] {
        p.check(path, path, &eve, Unmatched);
    }
    // The same client is not blocked on another API that does not identify it.
    p.check("other API", "/jwt/x", &eve, Passes("username", None));
    // And another user on /api passes.
    p.check(
        "other user",
        "//api/x",
        &[("x-user", "bob")],
        Passes("username", Some("bob")),
    );
    p.finish();
}

/// `curl --http2-prior-knowledge` GET of `http://127.0.0.1:<port><path>` (path sent as is) with
/// these headers: (HTTP version, status, body).
fn h2(port: u16, path: &str, headers: &[(&str, &str)]) -> (String, u16, String) {
    let mut cmd = Command::new("/usr/bin/curl");
    cmd.args(["--http2-prior-knowledge", "--path-as-is", "-s"])
        .args(["--max-time", "10", "-w", "\n%{http_version} %{http_code}"]);
    for (k, v) in headers {
        cmd.arg("-H").arg(format!("{k}: {v}"));
    }
    cmd.arg(format!("http://127.0.0.1:{port}{path}"));
    let out = cmd.output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let (version, code) = tail.split_once(' ').unwrap_or(("", ""));
    (
        version.to_string(),
        code.parse().unwrap_or(0),
        body.to_string(),
    )
}

#[test]
fn http2_requests_are_identified_and_blocked_like_http1() {
    let envoy = Envoy::start_with(
        &config(deny()),
        Opts {
            h2c: true,
            ..Opts::default()
        },
    );
    let p = Probe::new(&envoy);
    let mallory = format!("BEARER {}", jwt(&json!({"sub": "mallory"})));
    let alice = format!("Bearer {}", jwt(&json!({"sub": "alice"})));
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Want<'a>);
    let cases: Vec<Case> = vec![
        (
            "token",
            "/shop/h2",
            vec![("Authorization", "bearer  bad-token")],
            Blocked("token"),
        ),
        (
            "api key",
            "/shop/h2",
            vec![("X-Api-Key", " stolen-key")],
            Blocked("api_key"),
        ),
        (
            "cookie crumbs",
            "/shop/h2",
            vec![("cookie", "theme=dark"), ("cookie", "SESSION=evil-session")],
            Blocked("cookie"),
        ),
        (
            "query key",
            "/qs/h2?key_1%2E4=stolen+key",
            vec![],
            Blocked("api_key"),
        ),
        (
            "jwt",
            "/jwt/h2",
            vec![("Authorization", &mallory)],
            Blocked("username"),
        ),
        (
            "header user",
            "/hdr/h2",
            vec![("X-User", "eve")],
            Blocked("username"),
        ),
        (
            "path trick",
            "/x/../api/h2",
            vec![("x-user", "eve")],
            Blocked("username"),
        ),
        (
            "encoded slash",
            "/api%2Fh2",
            vec![("x-user", "eve")],
            Blocked("username"),
        ),
        (
            "encoded cookie",
            "/shop/h2",
            vec![("cookie", "SESSION=evil%2dsession")],
            Blocked("cookie"),
        ),
        (
            "allowed token",
            "/shop/h2",
            vec![("authorization", "Bearer good-token")],
            Passes("token", Some("good-token")),
        ),
        (
            "allowed cookie crumbs",
            "/shop/h2",
            vec![
                ("cookie", "SESSION=fine-session"),
                ("cookie", "SESSION=evil-session"),
            ],
            Passes("cookie", Some("fine-session")),
        ),
        (
            "allowed jwt",
            "/jwt/h2",
            vec![("authorization", &alice)],
            Passes("username", Some("alice")),
        ),
    ];
    for (what, path, headers, want) in cases {
        let n = p.marker();
        let (version, status, body) = h2(envoy.port, &marked(path, n), &headers);
        if version != "2" {
            p.fail(format!("{what}: curl spoke HTTP/{version:?}, not HTTP/2"));
        }
        p.judge(&format!("h2 {what}"), n, status, &body, want);
    }
    // HTTP/1.1 on the same listener gets the same answer.
    p.check(
        "h1 token",
        "/shop/h1",
        &[("authorization", "Bearer bad-token")],
        Blocked("token"),
    );
    p.finish();
}

/// Send a GET through `addr` (an `ip:port` of the Envoy) and return the response.
fn get_via(addr: &str, path: &str, headers: &str) -> Response {
    let raw =
        format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n{headers}connection: close\r\n\r\n");
    harness::raw_request(addr, raw.as_bytes()).expect("request")
}

#[test]
fn ipv6_peers_are_blocked_by_any_spelling_of_their_address_and_xff_cannot_change_them() {
    // `::1` written the long way in the configuration; stored in canonical form.
    let deny = json!({"ip": ["0:0:0:0:0:0:0:1"], "username": ["eve"]});
    let envoy = Envoy::start_with(
        &config(deny),
        Opts {
            ipv6: true,
            ..Opts::default()
        },
    );
    let p = Probe::new(&envoy);
    let v6 = format!("[::1]:{}", envoy.port);
    let v4 = format!("127.0.0.1:{}", envoy.port);
    // (address, path, extra headers, want)
    let cases: [(&str, &str, &str, Want); 7] = [
        (&v6, "/hdr/6", "", Blocked("ip")),
        // A spoofed X-Forwarded-For (and friends) does not move the IPv6 client elsewhere.
        (
            &v6,
            "/hdr/6",
            "x-forwarded-for: 127.0.0.1\r\n",
            Blocked("ip"),
        ),
        (
            &v6,
            "/hdr/6",
            "x-real-ip: 127.0.0.1\r\nforwarded: for=127.0.0.1\r\n",
            Blocked("ip"),
        ),
        (&v6, "/api//6", "x-user: bob\r\n", Blocked("ip")),
        // The IPv4 client passes, even when it claims to be ::1 in X-Forwarded-For.
        (&v4, "/hdr/4", "", Passes("ip", Some("127.0.0.1"))),
        (
            &v4,
            "/hdr/4",
            "x-forwarded-for: ::1\r\n",
            Passes("ip", Some("127.0.0.1")),
        ),
        (
            &v4,
            "/hdr/4",
            "x-forwarded-for: [::1]:443, ::1\r\n",
            Passes("ip", Some("127.0.0.1")),
        ),
    ];
    for (addr, path, headers, want) in cases {
        let n = p.marker();
        let r = get_via(addr, &marked(path, n), headers);
        p.judge(
            &format!("{addr} {path} {headers:?}"),
            n,
            r.status,
            &r.body_text(),
            want,
        );
    }
    let rec = record_marked(&envoy, 1).expect("first record");
    assert_eq!(rec.at("/ase/client/ip"), "::1", "{}", rec.raw);
    assert_eq!(rec.client_ip, "::1");
    p.finish();
}

#[test]
fn x_forwarded_for_cannot_choose_the_identified_ip_without_enable_xff() {
    let spoofs = [
        "x-forwarded-for: 203.0.113.9",
        "x-forwarded-for: 203.0.113.9, 127.0.0.1",
        "x-forwarded-for: 127.0.0.1, 203.0.113.9",
        "X-Forwarded-For: 203.0.113.9\r\nx-forwarded-for: 203.0.113.9",
        "x-real-ip: 203.0.113.9",
        "forwarded: for=203.0.113.9",
        "x-envoy-external-address: 203.0.113.9",
        "true-client-ip: 203.0.113.9",
    ];
    // A denied address in the headers of a client on 127.0.0.1 does not block it...
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            let envoy = Envoy::start(&config(json!({"ip": ["203.0.113.9"]})));
            let p = Probe::new(&envoy);
            for h in spoofs {
                p.check_raw(
                    &format!("denied {h:?}"),
                    |n| format!("/hdr/x?n={n}"),
                    &format!("{h}\r\n"),
                    Passes("ip", Some("127.0.0.1")),
                );
            }
            p.finish();
        });
        // ...and a denied client on 127.0.0.1 cannot escape by naming another address.
        let envoy = Envoy::start(&config(json!({"ip": ["127.0.0.1"]})));
        let p = Probe::new(&envoy);
        for h in spoofs {
            p.check_raw(
                &format!("escape with {h:?}"),
                |n| format!("/hdr/x?n={n}"),
                &format!("{}\r\n", h.replace("203.0.113.9", "198.51.100.7")),
                Blocked("ip"),
            );
        }
        p.finish();
        if let Err(e) = other.join() {
            std::panic::resume_unwind(e);
        }
    });
}

#[test]
fn an_ipv4_mapped_deny_entry_blocks_the_ipv4_client() {
    // Dual-stack logs write IPv4 clients as `::ffff:a.b.c.d`; api-warden identifies the peer in
    // its IPv4 form, so the entry must be stored that way too.
    let envoy = Envoy::start(&config(json!({"ip": ["::ffff:127.0.0.1"]})));
    let p = Probe::new(&envoy);
    p.check("v4-mapped entry", "/hdr/m", &[], Blocked("ip"));
    p.finish();
}

#[test]
fn admin_paths_are_never_forwarded_however_they_are_spelled() {
    const KEY: &str = "evasion-admin-key-0123456789";
    let mut cfg: Value = serde_json::from_str(&config(deny())).unwrap();
    cfg["admin"] = json!({"path": "/_api_warden", "key": KEY});
    let envoy = Envoy::start(&cfg.to_string());
    let addr = format!("127.0.0.1:{}", envoy.port);
    // The README's spellings, plus `;` path parameters, a raw backslash and an encoded `..`
    // walk: every one is answered by api-warden (admin record), none reaches the upstream.
    let paths = [
        "/_api_warden/deny_list",
        "//_api_warden/deny_list",
        "/x/../_api_warden/deny_list",
        "/_api_warden%2Fdeny_list",
        "/_api_warden%5Cdeny_list",
        "/_api_warden;v=1/deny_list",
        "/_api_warden\\deny_list",
        "/x%2F..%2F_api_warden/deny_list",
        "/..;/_api_warden/deny_list",
    ];
    for (i, path) in paths.iter().enumerate() {
        let target = marked(path, i + 1);
        let raw = format!(
            "GET {target} HTTP/1.1\r\nhost: localhost\r\n\
             x-api-warden-admin-key: {KEY}\r\nconnection: close\r\n\r\n"
        );
        let r = harness::raw_request(&addr, raw.as_bytes()).expect("request");
        assert_ne!(r.body_text(), "upstream ok", "{path} was forwarded");
        let rec = record_marked(&envoy, i + 1).unwrap_or_else(|| panic!("no record for {path}"));
        assert_eq!(rec.at("/ase/admin"), true, "{path}: {}", rec.raw);
        assert_eq!(rec.status, r.status, "{path}");
    }
    // The plain spelling is served (the key is right).
    assert_eq!(record_marked(&envoy, 1).unwrap().status, 200);
    assert!(
        envoy.upstream_paths().is_empty(),
        "{:?}",
        envoy.upstream_paths()
    );
}
