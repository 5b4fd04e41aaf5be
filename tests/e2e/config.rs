//! End-to-end tests of the plugin configuration (issue 3) through real Envoy: bad configurations
//! make Envoy refuse to start with api-warden's precise reason in its log; the seeds' API JSON
//! files load verbatim; requests are matched to APIs (longest url on segment boundaries, specific
//! host before `*`, normalized paths) and the match reaches the access-log record.

use serde_json::{json, Value};

use crate::harness::{eventually, Envoy, LogLine};

/// The seeds' API JSON files, shared with the configuration unit tests.
#[allow(dead_code)]
#[path = "../../crates/core/src/config/tests/seeds.rs"]
pub(crate) mod seeds;

/// Envoy refuses `cfg`, and its log holds api-warden's rejection line with every `want` in it.
fn assert_refused(cfg: &str, wants: &[&str]) {
    let log = Envoy::refused(cfg);
    let line = log
        .lines()
        .find(|l| l.contains("api-warden: invalid configuration:"))
        .unwrap_or_else(|| panic!("no api-warden rejection line for\n{cfg}\n--- log ---\n{log}"));
    assert!(
        line.contains("configuration rejected"),
        "rejection line does not say the configuration was rejected: {line}"
    );
    for want in wants {
        assert!(
            line.contains(want),
            "rejection of\n{cfg}\ndoes not contain {want:?}:\n{line}"
        );
    }
}

/// A plugin configuration with one API whose `api_metadata` is `meta` (and `name`, if given).
fn one_api(name: Option<&str>, meta: Value) -> String {
    let mut entry = json!({ "api_metadata": meta });
    if let Some(n) = name {
        entry["name"] = json!(n);
    }
    json!({ "apis": [entry] }).to_string()
}

/// A minimal valid `/rest` API with `extra` fields merged in.
fn rest_with(extra: Value) -> Value {
    let mut meta = json!({ "protocol": "http", "url": "/rest", "hostname": "*" });
    if let (Some(m), Value::Object(x)) = (meta.as_object_mut(), extra) {
        m.extend(x);
    }
    meta
}

/// [`assert_refused`] for every `(configuration, wants)` row, the Envoys started side by side.
fn assert_all_refused(rows: &[(String, &[&str])]) {
    std::thread::scope(|scope| {
        let runs: Vec<_> = rows
            .iter()
            .map(|(cfg, wants)| scope.spawn(move || assert_refused(cfg, wants)))
            .collect();
        for run in runs {
            if let Err(e) = run.join() {
                std::panic::resume_unwind(e);
            }
        }
    });
}

#[test]
fn empty_and_incomplete_jwt_objects_are_refused_as_the_seed_table_says() {
    let jwt = |jwt: Value| one_api(None, rest_with(json!({ "jwt": jwt })));
    assert_all_refused(&[
        (
            jwt(json!({})),
            &[
                r#"api "rest": jwt is {} (no keys)"#,
                "give location, username and clientid",
            ],
        ),
        // The seed's own incomplete example: username and location, no clientid.
        (
            jwt(json!({ "username": "", "location": "" })),
            &[r#"api "rest": jwt is missing clientid"#],
        ),
        (
            jwt(json!({ "location": "", "clientid": "" })),
            &[r#"api "rest": jwt is missing username"#],
        ),
    ]);
}

#[test]
fn jwt_claim_rules_are_enforced() {
    let jwt = |jwt: Value| one_api(None, rest_with(json!({ "jwt": jwt })));
    assert_all_refused(&[
        (
            one_api(
                Some("shop"),
                rest_with(
                    json!({ "jwt": { "location": "h:authorization:bearer", "username": "sub", "clientid": "sub" } }),
                ),
            ),
            &[
                r#"api "shop": jwt.username and jwt.clientid are both "sub"; they must be different claims"#,
            ],
        ),
        (
            one_api(
                None,
                rest_with(json!({ "username_header": "X-User",
                    "jwt": { "location": "h:authorization:bearer", "username": "username", "clientid": "" } })),
            ),
            &[r#"api "rest": username_header "x-user" and jwt.username "username" are both set"#],
        ),
        (
            jwt(json!({ "location": "", "username": "username", "clientid": "" })),
            &[r#"api "rest": jwt.username or jwt.clientid is set but jwt.location is empty"#],
        ),
    ]);
}

/// Envoy refuses each `(jwt.location, message)` with the message for API "rest".
fn assert_locations_refused(rows: &[(&str, &str)]) {
    let rows: Vec<(String, [&str; 2])> = rows
        .iter()
        .map(|(location, want)| {
            let jwt =
                json!({ "location": location, "username": "username", "clientid": "client_id" });
            (
                one_api(None, rest_with(json!({ "jwt": jwt }))),
                [r#"api "rest": "#, *want],
            )
        })
        .collect();
    let rows: Vec<(String, &[&str])> = rows.iter().map(|(c, w)| (c.clone(), &w[..])).collect();
    assert_all_refused(&rows);
}

#[test]
fn jwt_locations_with_a_bad_prefix_are_refused() {
    assert_locations_refused(&[
        ("x-jwt", r#"jwt.location "x-jwt" has no prefix"#),
        (
            "q:token",
            r#"jwt.location "q:token" has unknown prefix "q""#,
        ),
        ("qs:", r#"jwt.location "qs:" needs a query parameter name"#),
    ]);
}

#[test]
fn jwt_locations_with_a_bad_header_scheme_or_cookie_are_refused() {
    assert_locations_refused(&[
        (
            "h:Authorization:Basic",
            r#"jwt.location "h:Authorization:Basic" uses scheme "Basic""#,
        ),
        (
            "h:cookie:",
            r#"jwt.location "h:cookie:" needs a cookie name"#,
        ),
        (
            "h:x-jwt:extra",
            r#"jwt.location "h:x-jwt:extra" has an invalid header name"#,
        ),
    ]);
}

#[test]
fn api_key_and_hostname_rules_are_enforced() {
    assert_all_refused(&[
        (
            one_api(
                None,
                rest_with(json!({ "apikey_qs": "key_1.4", "apikey_header": "X-API-Key" })),
            ),
            &[r#"api "rest": apikey_qs "key_1.4" and apikey_header "X-API-Key" are both set"#],
        ),
        (
            one_api(None, json!({ "url": "/rest", "hostname": "" })),
            &[r#"api "rest": hostname is missing or empty (use "*" for any host)"#],
        ),
        (
            one_api(None, json!({ "url": "/rest" })),
            &[r#"api "rest": hostname is missing or empty"#],
        ),
    ]);
}

#[test]
fn url_rules_are_enforced() {
    assert_all_refused(&[
        (
            one_api(None, json!({ "url": "", "hostname": "*" })),
            &[r#"url is missing or empty (use "/" for the root API)"#],
        ),
        (
            one_api(Some("q"), json!({ "url": "/rest?x=1", "hostname": "*" })),
            &[r#"api "q": url "/rest?x=1" must not contain a query or fragment"#],
        ),
        (
            one_api(Some("shop"), json!({ "url": "rest", "hostname": "*" })),
            &[r#"api "shop": url "rest" must start with "/""#],
        ),
    ]);
}

#[test]
fn duplicate_routes_and_names_are_refused() {
    assert_all_refused(&[
        // Same hostname (case and port aside) and the same url once normalized.
        (
            json!({ "apis": [
                { "name": "a", "api_metadata": { "url": "/rest", "hostname": "Shop.example.com" } },
                { "name": "b", "api_metadata": { "url": "/rest/", "hostname": "shop.example.com:443" } }
            ]})
            .to_string(),
            &[r#"api "a" and api "b" both have hostname "shop.example.com" and url "/rest""#],
        ),
        (
            json!({ "apis": [
                { "name": "shop", "api_metadata": { "url": "/a", "hostname": "*" } },
                { "name": "shop", "api_metadata": { "url": "/b", "hostname": "*" } }
            ]})
            .to_string(),
            &[r#"apis[0] and apis[1] are both named "shop"; API names must be unique"#],
        ),
        // Names derived from the same url on two hosts collide too.
        (
            json!({ "apis": [
                { "api_metadata": { "url": "/rest", "hostname": "a.example.com" } },
                { "api_metadata": { "url": "/rest", "hostname": "b.example.com" } }
            ]})
            .to_string(),
            &[r#"apis[0] and apis[1] are both named "rest""#],
        ),
    ]);
}

#[test]
fn wrong_types_and_units_in_api_metadata_are_refused() {
    assert_all_refused(&[
        (
            one_api(None, rest_with(json!({ "enable_blocking": "yes" }))),
            &[r#"api "rest": enable_blocking must be a boolean (true or false), got string "yes""#],
        ),
        (
            one_api(None, rest_with(json!({ "cookie_idle_timeout": "200x" }))),
            &[
                r#"api "rest": cookie_idle_timeout "200x" must be a number followed by one of s, m, h, d, w, mnt, yr"#,
            ],
        ),
        (
            one_api(None, rest_with(json!({ "oauth2_access_token": 1 }))),
            &[r#"api "rest": oauth2_access_token must be a boolean (true or false), got number 1"#],
        ),
    ]);
}

#[test]
fn wrong_types_at_the_top_level_are_refused() {
    assert_all_refused(&[
        (
            json!({ "ase": { "enable_xff": "true" } }).to_string(),
            &[r#"ase.enable_xff must be a boolean (true or false), got string "true""#],
        ),
        (
            json!({ "apis": { "rest": {} } }).to_string(),
            &["apis must be an array of APIs, got an object"],
        ),
    ]);
}

#[test]
fn bad_admin_settings_are_refused() {
    assert_all_refused(&[
        (
            json!({ "admin": { "path": "_api_warden", "key": "0123456789abcdef" } }).to_string(),
            &[r#"admin.path "_api_warden" must start with /"#],
        ),
        (
            json!({ "admin": { "path": "/_api_warden", "key": "short" } }).to_string(),
            &["admin.key must be at least 16 characters"],
        ),
    ]);
}

#[test]
fn bad_attack_list_settings_are_refused() {
    assert_all_refused(&[
        (
            json!({ "attack_list": { "cluster": "", "path": "/v4/attacks" } }).to_string(),
            &["attack_list.cluster is empty"],
        ),
        (
            json!({ "attack_list": { "cluster": "abs", "path": "/v4/attacks", "interval_s": 0 } })
                .to_string(),
            &["attack_list.interval_s and attack_list.timeout_ms must be positive"],
        ),
        (
            json!({ "attack_list": { "cluster": "abs", "path": "/v4/attacks", "intervall_s": 60 } })
                .to_string(),
            &["attack_list: unknown field `intervall_s`"],
        ),
    ]);
}

/// Envoy's log once it holds `want` (Envoy flushes its log file a little after `/ready`).
fn log_with(envoy: &Envoy, want: &str) -> String {
    let mut log = String::new();
    eventually(10, || {
        log = envoy.log();
        log.contains(want)
    });
    log
}

/// Envoy started with `cfg`; its log says api-warden loaded `n` APIs (returned with the log).
fn accepted(cfg: &str, n: usize) -> (Envoy, String) {
    let envoy = Envoy::start(cfg);
    let log = log_with(&envoy, "starting main dispatch loop");
    assert!(
        log.contains("api-warden: configuration loaded on root #")
            && log.contains(&format!(": {n} APIs,")),
        "api-warden did not report {n} APIs loaded:\n{log}"
    );
    assert!(!log.contains("configuration rejected"), "{log}");
    (envoy, log)
}

#[test]
fn the_seeds_api_json_files_load_verbatim() {
    for (file, want_name) in [
        (seeds::SEED_000_OAUTH, "root"),
        (seeds::SEED_000_APIKEY, "root"),
        (seeds::SEED_001_REST, "rest"),
    ] {
        let (envoy, log) = accepted(file, 1);
        // api_mapping and cookie_persistence_enabled are Envoy's job: reported at info, in one
        // line per configuration load (Envoy loads the configuration in several VMs), just
        // before the load's summary.
        let lines: Vec<&str> = log.lines().collect();
        let ignored_line = |l: &str| {
            l.contains("API JSON fields ignored because Envoy's routes and clusters do their job")
        };
        let mut loads = 0;
        for (i, l) in lines.iter().enumerate() {
            if !l.contains("api-warden: configuration loaded") {
                continue;
            }
            loads += 1;
            let before = &lines[..i];
            let info = before.last().copied().unwrap_or_default();
            assert!(
                ignored_line(info),
                "no ignored-fields line before {l}:\n{log}"
            );
            assert!(
                !before.iter().rev().nth(1).is_some_and(|l| ignored_line(l)),
                "two ignored-fields lines for one load:\n{log}"
            );
            for want in [
                &format!("api {want_name:?}: "),
                "api_mapping",
                "cookie_persistence_enabled",
                "[info]",
            ] {
                assert!(info.contains(want), "{want:?} not in {info}");
            }
        }
        assert!(loads > 0, "{log}");
        let path = if want_name == "rest" {
            "/rest/items"
        } else {
            "/items"
        };
        assert_eq!(envoy.get(path, &[]).status, 200);
        let line = envoy.record(1);
        assert_eq!(line.at("/service"), want_name, "{}", line.raw);
        assert_eq!(line.at("/ase/api"), want_name, "{}", line.raw);
    }
}

#[test]
fn tooling_files_with_empty_strings_and_the_ase_image_root_load() {
    let cfg = json!({ "apis": [
        { "name": "shop", "api_metadata": serde_json::from_str::<Value>(seeds::TOOLING_FILE).unwrap()["api_metadata"] },
        serde_json::from_str::<Value>(seeds::ASE_IMAGE_ROOT).unwrap()
    ]});
    let (envoy, _) = accepted(&cfg.to_string(), 2);
    let r = envoy.get(
        "/shopapi/cart",
        &[("host", "shop.example.com"), ("x-api-key", "k-123")],
    );
    assert_eq!(r.status, 200);
    let line = envoy.record(1);
    assert_eq!(line.at("/service"), "shop", "{}", line.raw);
    assert_eq!(line.at("/ase/client/api_key"), "k-123", "{}", line.raw);
    // The image's root API (blocking off) serves every other host and path.
    assert_eq!(
        envoy
            .get("/shopapi/cart", &[("host", "other.example.com")])
            .status,
        200
    );
    let line = envoy.record(2);
    assert_eq!(line.at("/service"), "root", "{}", line.raw);
}

#[test]
fn a_single_api_json_object_is_one_api_and_unknown_keys_only_warn() {
    let file = r#"{
      "name": "orders",
      "api_metadata": {
        "protocol": "http", "url": "/orders", "hostname": "*",
        "oauth2_access_token": true, "enable_blocking": true,
        "some_future_field": { "x": 1 }
      }
    }"#;
    let (envoy, log) = accepted(file, 1);
    let warn = log
        .lines()
        .find(|l| l.contains("unknown API JSON keys ignored"))
        .unwrap_or_else(|| panic!("no warning about unknown keys:\n{log}"));
    assert!(warn.contains("[warning]"), "{warn}");
    assert!(
        warn.contains(r#"api "orders": some_future_field"#),
        "{warn}"
    );
    envoy.get("/orders/7", &[]);
    let line = envoy.record(1);
    assert_eq!(line.at("/service"), "orders", "{}", line.raw);
    assert_eq!(line.at("/attributes/Gateway/_BasePath"), "/orders");
    assert_eq!(line.at("/attributes/Gateway/_TrailingPath"), "/7");
}

/// APIs for the matching tests: the seeds' root API (`key_1.4`), the seed's `/rest` API, a longer
/// `/rest/v2`, and `/rest` on one specific host.
fn matching_config() -> String {
    let meta = |file: &str| serde_json::from_str::<Value>(file).unwrap()["api_metadata"].clone();
    let mut shop = meta(seeds::SEED_001_REST);
    shop["hostname"] = json!("shop.example.com");
    json!({ "apis": [
        { "api_metadata": meta(seeds::SEED_000_APIKEY) },
        { "api_metadata": meta(seeds::SEED_001_REST) },
        { "api_metadata": { "url": "/rest/v2", "hostname": "*" } },
        { "name": "shop_rest", "api_metadata": shop }
    ]})
    .to_string()
}

/// Send each `(host, path)` in turn and return the records, in order.
fn records_for(envoy: &Envoy, requests: &[(&str, &str)]) -> Vec<LogLine> {
    for (i, (host, path)) in requests.iter().enumerate() {
        let r = envoy.get(path, &[("host", host)]);
        assert_eq!(r.status, 200, "{host} {path}: {}", r.body_text());
        // One at a time, so the records come back in request order.
        envoy.records(i + 1);
    }
    envoy.records(requests.len())
}

#[test]
fn requests_match_the_longest_url_on_segment_boundaries_and_the_specific_host() {
    let (envoy, _) = accepted(&matching_config(), 4);
    // (host, path, service, base path, trailing path)
    let rows = [
        ("localhost", "/rest/items?x=1", "rest", "/rest", "/items"),
        ("localhost", "/rest", "rest", "/rest", ""),
        ("localhost", "/rest/", "rest", "/rest", ""),
        (
            "localhost",
            "/rest/v2/items",
            "rest_v2",
            "/rest/v2",
            "/items",
        ),
        ("localhost", "/rest/v2x", "rest", "/rest", "/v2x"),
        ("localhost", "/restx", "root", "/", "/restx"),
        ("localhost", "/", "root", "/", ""),
        (
            "Shop.Example.COM:8080",
            "/rest/items",
            "shop_rest",
            "/rest",
            "/items",
        ),
        // The specific host's APIs are tried first: its /rest beats the `*` /rest/v2 …
        (
            "shop.example.com",
            "/rest/v2/a",
            "shop_rest",
            "/rest",
            "/v2/a",
        ),
        // … and the `*` APIs serve what none of them matches.
        ("shop.example.com", "/other", "root", "/", "/other"),
    ];
    let requests: Vec<(&str, &str)> = rows.iter().map(|r| (r.0, r.1)).collect();
    let lines = records_for(&envoy, &requests);
    for ((host, path, service, base, trailing), line) in rows.iter().zip(&lines) {
        let what = format!("{host} {path}: {}", line.raw);
        assert_eq!(line.at("/service"), *service, "{what}");
        assert_eq!(line.at("/ase/api"), *service, "{what}");
        assert_eq!(line.at("/attributes/Gateway/_BasePath"), *base, "{what}");
        assert_eq!(
            line.at("/attributes/Gateway/_TrailingPath"),
            *trailing,
            "{what}"
        );
        assert_eq!(
            line.at("/attributes/HttpRequest.ResourcePath"),
            *trailing,
            "{what}"
        );
        assert_eq!(
            line.at("/attributes/HttpRequest.RequestURI"),
            *path,
            "{what}"
        );
    }
}

#[test]
fn path_tricks_still_match_the_api_they_spell() {
    let (envoy, _) = accepted(&matching_config(), 4);
    let tricks = [
        "//rest/x",
        "/rest//x",
        "/a/../rest/x",
        "/./rest/./x",
        "/%72est/x",
        "/%2e%2e/rest/x",
        "/rest/v2/../x",
    ];
    let requests: Vec<(&str, &str)> = tricks.iter().map(|p| ("localhost", *p)).collect();
    let lines = records_for(&envoy, &requests);
    for (path, line) in tricks.iter().zip(&lines) {
        assert_eq!(line.at("/service"), "rest", "{path}: {}", line.raw);
        assert_eq!(line.at("/attributes/Gateway/_BasePath"), "/rest", "{path}");
        assert_eq!(line.at("/attributes/Gateway/_TrailingPath"), "/x", "{path}");
    }
    // Envoy's own path normalization is off here: the filter normalized by itself, and the
    // upstream still saw the paths as sent.
    let seen = upstream_paths(&envoy, tricks.len());
    for path in tricks {
        assert!(seen.iter().any(|p| p == path), "{path} not in {seen:?}");
    }
}

#[test]
fn an_unmatched_request_passes_and_is_recorded_without_an_api() {
    let cfg = one_api(
        None,
        serde_json::from_str::<Value>(seeds::SEED_001_REST).unwrap()["api_metadata"].clone(),
    );
    let (envoy, _) = accepted(&cfg, 1);
    let lines = records_for(
        &envoy,
        &[("localhost", "/restx/a"), ("localhost", "/other?q=1")],
    );
    for line in &lines {
        assert_eq!(line.status, 200, "{}", line.raw);
        assert_eq!(line.at("/service"), Value::Null, "{}", line.raw);
        assert_eq!(line.at("/ase/api"), Value::Null, "{}", line.raw);
        assert_eq!(line.at("/ase/decision"), "allow", "{}", line.raw);
        assert_eq!(line.at("/attributes/Gateway"), json!({}), "{}", line.raw);
        assert_eq!(
            line.at("/attributes/HttpRequest.ResourcePath"),
            Value::Null,
            "{}",
            line.raw
        );
        // Identification still finds the client's IP.
        assert_eq!(line.at("/ase/client/ip"), "127.0.0.1", "{}", line.raw);
    }
    assert_eq!(upstream_paths(&envoy, 2), vec!["/restx/a", "/other?q=1"]);
}

/// The paths the upstream saw, once its access log holds at least `n` lines (10 s deadline).
fn upstream_paths(envoy: &Envoy, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    eventually(10, || {
        let text = std::fs::read_to_string(&envoy.upstream_log).unwrap_or_default();
        lines = text.lines().map(str::to_string).collect();
        lines.len() >= n
    });
    lines
}
