//! Tests for path normalization and API matching (native and wasm).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::{authority_host, normalize_path, upstream_reading};
use crate::config::{parse, Compiled};

#[test]
fn normalize_table() {
    let rows: &[(&str, &str)] = &[
        ("", "/"),
        ("/", "/"),
        ("//", "/"),
        ("//api", "/api"),
        ("/api//v1///x", "/api/v1/x"),
        ("/x/../api", "/api"),
        ("/api/.", "/api"),
        ("/api/./", "/api"),
        ("/%2e%2e/api", "/api"),
        ("/%2E%2E/%2e/api", "/api"),
        ("/a/%2e%2e/b", "/b"),
        ("/api%2Fx", "/api%2Fx"),
        ("/api%2fx", "/api%2Fx"),
        ("/api%2f..%2fx", "/api%2F..%2Fx"),
        ("/a/./b/../c", "/a/c"),
        ("/..", "/"),
        ("/../../..", "/"),
        ("/../a/../../b", "/b"),
        ("/api?x=1", "/api"),
        ("/api?x=/../y", "/api"),
        ("/api#frag", "/api"),
        ("/api/#frag?x", "/api"),
        ("/api?#", "/api"),
        ("?only=query", "/"),
        ("/%41pi", "/Api"),
        ("/%7e%5F%2D%2e%30", "/~_-.0"),
        ("/rest/", "/rest"),
        ("/rest//", "/rest"),
        ("rest", "/rest"),
        ("/%", "/%"),
        ("/%4", "/%4"),
        ("/%zz", "/%zz"),
        ("/a%", "/a%"),
        ("/%%41", "/%A"),
        ("/%4%41", "/%4A"),
        ("/%c3%a9", "/%C3%A9"),
        ("/%ff%fe", "/%FF%FE"),
        ("/%20x", "/%20x"),
        ("/é/ü", "/é/ü"),
        ("/a/b/..", "/a"),
        ("/a/b/...", "/a/b/..."),
        ("/.hidden/x", "/.hidden/x"),
    ];
    for (input, want) in rows {
        assert_eq!(normalize_path(input), *want, "normalize_path({input:?})");
    }
}

#[test]
fn normalize_never_panics_on_odd_input() {
    let mut s = String::new();
    for b in 0u8..128 {
        s.push(char::from(b));
        s.push('%');
    }
    s.push_str("%\u{10FFFF}%e2%82");
    let out = normalize_path(&s);
    assert!(out.starts_with('/'));
    for i in 0..s.len() {
        if let Some(prefix) = s.get(..i) {
            assert!(normalize_path(prefix).starts_with('/'));
        }
    }
}

#[test]
fn authority_host_table() {
    let rows: &[(&str, &str)] = &[
        ("example.com", "example.com"),
        ("Example.COM:8080", "example.com"),
        ("example.com.", "example.com"),
        ("example.com.:443", "example.com"),
        ("[::1]:8080", "::1"),
        ("[2001:DB8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("10.0.0.1:80", "10.0.0.1"),
        ("user@host:1", "host"),
        (" host ", "host"),
        ("", ""),
        ("[", ""),
    ];
    for (input, want) in rows {
        assert_eq!(authority_host(input), *want, "authority_host({input:?})");
    }
}

fn config(apis: &[(&str, &str, &str)]) -> Compiled {
    let list: Vec<serde_json::Value> = apis
        .iter()
        .map(|(name, host, url)| {
            serde_json::json!({"name": name, "api_metadata": {"hostname": host, "url": url}})
        })
        .collect();
    let text = serde_json::json!({ "apis": list }).to_string();
    parse(text.as_bytes()).unwrap()
}

/// (authority, path) → expected (api name, base_path, trailing_path), or None.
type Row<'a> = (&'a str, &'a str, Option<(&'a str, &'a str, &'a str)>);

fn check(cfg: &Compiled, rows: &[Row<'_>]) {
    for (authority, path, want) in rows {
        let got = cfg.match_api(authority, path);
        match (got, want) {
            (None, None) => {}
            (Some(m), Some((name, base, trailing))) => {
                assert_eq!(m.api.name, *name, "{authority} {path}");
                assert_eq!(m.base_path, *base, "{authority} {path}");
                assert_eq!(m.trailing_path, *trailing, "{authority} {path}");
                assert_eq!(cfg.apis.get(m.index).map(|a| &a.name), Some(&m.api.name));
                let plain = normalize_path(path);
                assert!(
                    m.normalized_path == plain
                        || Some(&m.normalized_path) == upstream_reading(&plain).as_ref(),
                    "{authority} {path}: {}",
                    m.normalized_path
                );
            }
            (got, want) => panic!(
                "{authority} {path}: got {:?}, want {want:?}",
                got.map(|m| m.api.name.clone())
            ),
        }
    }
}

#[test]
fn match_prefix_segments_and_longest() {
    let cfg = config(&[
        ("rest", "*", "/rest"),
        ("rest_v1", "*", "/rest/v1"),
        ("deep", "*", "/a/b/c/d/e/f"),
    ]);
    check(
        &cfg,
        &[
            ("h", "/rest", Some(("rest", "/rest", ""))),
            ("h", "/rest/", Some(("rest", "/rest", ""))),
            ("h", "/rest/x", Some(("rest", "/rest", "/x"))),
            ("h", "/rest/x/y?q=1", Some(("rest", "/rest", "/x/y"))),
            ("h", "/restx", None),
            ("h", "/res", None),
            ("h", "/rest/v1", Some(("rest_v1", "/rest/v1", ""))),
            (
                "h",
                "/rest/v1/items/3",
                Some(("rest_v1", "/rest/v1", "/items/3")),
            ),
            ("h", "/rest/v10", Some(("rest", "/rest", "/v10"))),
            ("h", "//rest//v1//x", Some(("rest_v1", "/rest/v1", "/x"))),
            ("h", "/rest/v1/../v2", Some(("rest", "/rest", "/v2"))),
            ("h", "/x/../rest", Some(("rest", "/rest", ""))),
            ("h", "/%2e%2e/rest/v1", Some(("rest_v1", "/rest/v1", ""))),
            ("h", "/rest%2Fv1", Some(("rest_v1", "/rest/v1", ""))),
            ("h", "/%72est", Some(("rest", "/rest", ""))),
            ("h", "/REST", None),
            ("h", "/a/b/c/d/e/f/g", Some(("deep", "/a/b/c/d/e/f", "/g"))),
            ("h", "/a/b/c/d/e", None),
            ("h", "/", None),
            ("h", "", None),
        ],
    );
}

#[test]
fn match_root_api() {
    let cfg = config(&[("root", "*", "/"), ("rest", "*", "/rest")]);
    check(
        &cfg,
        &[
            ("h", "/", Some(("root", "/", ""))),
            ("h", "", Some(("root", "/", ""))),
            ("h", "/items", Some(("root", "/", "/items"))),
            ("h", "/items/1", Some(("root", "/", "/items/1"))),
            ("h", "/restx", Some(("root", "/", "/restx"))),
            ("h", "/rest/1", Some(("rest", "/rest", "/1"))),
            ("h", "/../rest", Some(("rest", "/rest", ""))),
        ],
    );
}

#[test]
fn match_hosts() {
    let cfg = config(&[
        ("shop", "shop.example.com", "/api"),
        ("shop_root", "shop.example.com", "/"),
        ("any_api", "*", "/api/v2"),
        ("other", "other.example.com:8443", "/api"),
        ("v6", "[2001:db8::1]", "/api"),
        ("any_x", "*", "/x"),
    ]);
    check(
        &cfg,
        &[
            ("shop.example.com", "/api/1", Some(("shop", "/api", "/1"))),
            ("SHOP.Example.com:8080", "/api", Some(("shop", "/api", ""))),
            ("shop.example.com.", "/api", Some(("shop", "/api", ""))),
            // A specific host beats `*` even when `*` has a longer url ...
            (
                "shop.example.com",
                "/api/v2/z",
                Some(("shop", "/api", "/v2/z")),
            ),
            // ... and the host's root API catches everything before `*` is tried.
            ("shop.example.com", "/x", Some(("shop_root", "/", "/x"))),
            ("other.example.com", "/api", Some(("other", "/api", ""))),
            (
                "other.example.com",
                "/api/v2",
                Some(("other", "/api", "/v2")),
            ),
            // Unmatched on the specific host → fall back to `*`.
            ("other.example.com", "/x/1", Some(("any_x", "/x", "/1"))),
            ("other.example.com", "/y", None),
            (
                "unknown.example.com",
                "/api/v2",
                Some(("any_api", "/api/v2", "")),
            ),
            ("unknown.example.com", "/api", None),
            ("", "/x", Some(("any_x", "/x", ""))),
            ("[2001:db8::1]:443", "/api", Some(("v6", "/api", ""))),
            ("[2001:DB8::1]", "/api/q", Some(("v6", "/api", "/q"))),
            ("2001:db8::1", "/api", Some(("v6", "/api", ""))),
        ],
    );
}

#[test]
fn match_without_apis() {
    let cfg = parse(b"").unwrap();
    assert!(cfg.match_api("h", "/").is_none());
    assert!(cfg.router.is_empty());
}

#[test]
fn thousand_apis() {
    let mut apis = Vec::new();
    for i in 0..1000 {
        let host = if i % 2 == 0 {
            "*".to_string()
        } else {
            format!("h{}.example.com", i % 10)
        };
        apis.push(serde_json::json!({
            "name": format!("api{i}"),
            "api_metadata": {"hostname": host, "url": format!("/svc{}/v{}", i / 10, i % 10)}
        }));
    }
    apis.push(serde_json::json!({"name": "root", "api_metadata": {"hostname": "*", "url": "/"}}));
    let cfg = parse(serde_json::json!({ "apis": apis }).to_string().as_bytes()).unwrap();
    assert_eq!(cfg.apis.len(), 1001);
    assert_eq!(cfg.router.len(), 1001);
    for i in 0..1000 {
        let path = format!("/svc{}/v{}/items/{i}?q=1", i / 10, i % 10);
        let authority = format!("h{}.example.com:443", i % 10);
        let m = cfg.match_api(&authority, &path).unwrap();
        assert_eq!(m.api.name, format!("api{i}"), "{authority}{path}");
        assert_eq!(m.index, i);
        assert_eq!(m.trailing_path, format!("/items/{i}"));
        // Odd APIs are host-specific: another host only reaches them through the root API.
        let m = cfg.match_api("elsewhere", &path).unwrap();
        let want = if i % 2 == 0 {
            format!("api{i}")
        } else {
            "root".to_string()
        };
        assert_eq!(m.api.name, want);
    }
    let m = cfg.match_api("h1.example.com", "/svc999/v1").unwrap();
    assert_eq!(m.api.name, "root");
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
#[ignore]
fn bench_match_1000_apis() {
    use std::time::Instant;
    let apis: Vec<serde_json::Value> = (0..1000)
        .map(|i| {
            serde_json::json!({
                "name": format!("api{i}"),
                "api_metadata": {"hostname": if i % 2 == 0 { "*" } else { "shop.example.com" },
                                  "url": format!("/svc{}/v{}", i / 10, i % 10)}
            })
        })
        .collect();
    let cfg = parse(serde_json::json!({ "apis": apis }).to_string().as_bytes()).unwrap();
    let paths: Vec<String> = (0..1000)
        .map(|i| format!("/svc{}/v{}/items/{i}/detail?x=1", i / 10, i % 10))
        .collect();
    let rounds = 200;
    let start = Instant::now();
    let mut hits = 0usize;
    for _ in 0..rounds {
        for p in &paths {
            if cfg.match_api("shop.example.com:443", p).is_some() {
                hits += 1;
            }
        }
    }
    let elapsed = start.elapsed();
    let n = rounds * paths.len();
    assert_eq!(hits, n);
    println!(
        "match_api with 1,000 APIs: {:.0} ns per match ({n} matches)",
        elapsed.as_nanos() as f64 / n as f64
    );
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
#[ignore]
fn bench_normalize_path() {
    use std::time::Instant;
    let paths: Vec<String> = (0..1000)
        .map(|i| format!("/svc{}/v{}/items/{i}/detail?x=1", i / 10, i % 10))
        .collect();
    let rounds = 200;
    let start = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..rounds {
        for p in &paths {
            bytes += normalize_path(p).len();
        }
    }
    let n = rounds * paths.len();
    assert!(bytes > 0);
    println!(
        "normalize_path: {:.0} ns per path",
        start.elapsed().as_nanos() as f64 / n as f64
    );
}

#[test]
fn upstream_reading_table() {
    let rows: &[(&str, Option<&str>)] = &[
        ("/api", None),
        ("/api/x", None),
        ("/api%2Fx", Some("/api/x")),
        ("/a%5Cb", Some("/a/b")),
        ("/a\\b", Some("/a/b")),
        ("/a;x=1/b", Some("/a/b")),
        ("/a;x%2Fb", Some("/a/b")),
        ("/a;b;c", Some("/a")),
        ("/x%2F..%2Fapi", Some("/api")),
        ("/api%2F..%2F..%2F..", Some("/")),
        ("/..;/api", Some("/api")),
        ("/;", Some("/")),
        ("/%252F", None),
        ("/%25%2F", Some("/%25")),
        ("/%C3%A9;x/%C3%A9", Some("/%C3%A9/%C3%A9")),
        ("/é;ü/ß", Some("/é/ß")),
    ];
    for (input, want) in rows {
        assert_eq!(
            upstream_reading(input).as_deref(),
            *want,
            "upstream_reading({input:?})"
        );
    }
}

#[test]
fn match_lax_readings_never_leave_the_api_an_upstream_serves() {
    let cfg = config(&[("rest", "*", "/rest"), ("rest_v1", "*", "/rest/v1")]);
    check(
        &cfg,
        &[
            ("h", "/rest%2Fx", Some(("rest", "/rest", "/x"))),
            (
                "h",
                "/rest%2fv1/items",
                Some(("rest_v1", "/rest/v1", "/items")),
            ),
            ("h", "/x%2F..%2Frest", Some(("rest", "/rest", ""))),
            ("h", "/rest%5Cx", Some(("rest", "/rest", "/x"))),
            ("h", "/rest\\x", Some(("rest", "/rest", "/x"))),
            ("h", "/rest;jsessionid=1/x", Some(("rest", "/rest", "/x"))),
            ("h", "/rest/v1;a=b/x", Some(("rest_v1", "/rest/v1", "/x"))),
            ("h", "/rest/..;/rest/v1", Some(("rest_v1", "/rest/v1", ""))),
            // Both readings match: the longer url wins, the plain reading on a tie.
            ("h", "/rest/v1%2F..", Some(("rest", "/rest", "/v1%2F.."))),
            ("h", "/rest/x%2F..%2Fv1", Some(("rest_v1", "/rest/v1", ""))),
            ("h", "/restx%2Fy", None),
            ("h", "/x%2Frest", None),
            ("h", "/rest%252Fv1", None),
        ],
    );
    // The root API matches everything plainly; a lax reading of a longer url still wins.
    let cfg = config(&[("root", "*", "/"), ("rest", "*", "/rest")]);
    check(
        &cfg,
        &[
            ("h", "/rest%2Fx", Some(("rest", "/rest", "/x"))),
            ("h", "/x%2Fy", Some(("root", "/", "/x%2Fy"))),
            ("h", "/rest;x", Some(("rest", "/rest", ""))),
        ],
    );
}
