//! The `api-warden` binary, run for real over temporary files: version and help, usage errors,
//! `lint` over good and bad plugin configurations and API JSON files, and standard input.
#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;

/// The seeds' API JSON files, shared with the configuration unit tests.
#[allow(dead_code)]
#[path = "../../core/src/config/tests/seeds.rs"]
mod seeds;

mod common;
use common::Run;

/// Run `api-warden args…` with `stdin` (the shared kit's runner).
fn run(args: &[&str], stdin: Option<&str>) -> Run {
    common::run(args, stdin.map(str::as_bytes))
}

/// A fresh directory for one test, with `files` written into it.
fn dir(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = std::env::temp_dir().join(format!("api-warden-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    for (name, text) in files {
        std::fs::write(d.join(name), text).expect("temp file");
    }
    d
}

/// `api-warden lint` over `files` (written to a temp dir), in order; paths shown as given.
fn lint(test: &str, files: &[(&str, &str)]) -> Run {
    let d = dir(test, files);
    let paths: Vec<String> = files
        .iter()
        .map(|(n, _)| d.join(n).display().to_string())
        .collect();
    let mut args = vec!["lint"];
    args.extend(paths.iter().map(String::as_str));
    let r = run(&args, None);
    // Show paths relative to the temp dir so tests can compare whole lines.
    let prefix = format!("{}/", d.display());
    Run {
        out: r.out.replace(&prefix, ""),
        ..r
    }
}

const GOOD: &str = r#"{
  "ase": {"enable_xff": true},
  "apis": [{"name": "shop", "api_metadata": {"url": "/shop", "hostname": "*", "enable_blocking": true}}],
  "deny_list": {"ip": ["192.0.2.1"]},
  "admin": {"path": "/_api_warden", "key": "0123456789abcdef"},
  "attack_list": {"cluster": "abs", "path": "/v4/attacks"},
  "analytics": {"cluster": "collector", "redact": "hash"}
}"#;

#[test]
fn version_and_help() {
    let r = run(&["--version"], None);
    assert_eq!(
        (r.code, r.out.trim()),
        (0, concat!("api-warden ", env!("CARGO_PKG_VERSION")))
    );
    let r = run(&["--help"], None);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("api-warden lint PATH..."), "{}", r.out);
    assert!(r.out.contains("exit status"), "{}", r.out);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["frobnicate"][..],
        &["--verbose"][..],
        &["lint"][..],
        &["lint", "--format", "xml", "x.json"][..],
        &["lint", "--bogus", "x.json"][..],
        &["config"][..],
        &["config", "a", "b"][..],
        &["config", "--ase"][..],
        &["--version", "extra"][..],
    ] {
        let r = run(args, None);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.out, r.err);
        assert!(r.err.contains("usage: api-warden "), "{args:?}: {}", r.err);
        assert!(r.out.is_empty(), "{args:?}: {}", r.out);
    }
}

#[test]
fn a_good_configuration_passes() {
    let r = lint("good", &[("plugin.json", GOOD)]);
    assert_eq!(
        (r.code, r.out.as_str()),
        (0, "plugin.json: ok, 1 API\n"),
        "{}",
        r.err
    );
}

#[test]
fn api_json_files_are_named_after_the_file() {
    let r = lint(
        "api-json",
        &[
            ("orders.json", seeds::SEED_001_REST),
            ("tooling.json", seeds::TOOLING_FILE),
            ("root.json", seeds::SEED_000_APIKEY),
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let lines: Vec<&str> = r.out.lines().collect();
    assert!(lines.contains(&"orders.json: ok, 1 API"), "{}", r.out);
    assert!(lines.contains(&"tooling.json: ok, 1 API"), "{}", r.out);
    assert!(
        lines.iter().any(
            |l| l.starts_with("tooling.json: note: API JSON fields ignored")
                && l.contains(r#"api "tooling": "#)
        ),
        "{}",
        r.out
    );
    // The name comes from the file, so an error names it.
    let bad = seeds::SEED_001_REST.replace("h:authorization:bearer", "h:cookie:");
    let r = lint("api-json-bad", &[("orders.json", &bad)]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert_eq!(
        r.out,
        "orders.json: api \"orders\": api_metadata.jwt.location: \"h:cookie:\" needs a cookie name (h:cookie:<cookie name>)\n"
    );
}

#[test]
fn warnings_do_not_fail() {
    let file = r#"{"api_metadata": {"url": "/orders", "hostname": "*", "some_future_field": 1}}"#;
    let r = lint("warn", &[("orders.json", file)]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert_eq!(
        r.out,
        "orders.json: warning: unknown API JSON keys ignored (from another ASE version, or a typo?): api \"orders\": some_future_field\norders.json: ok, 1 API\n"
    );
}

#[test]
fn each_kind_of_error_is_reported_with_its_field() {
    let rows: &[(&str, &str, &str)] = &[
        ("notjson.json", "apis: []", "notjson.json: plugin configuration is not JSON: "),
        ("array.json", "[]", "array.json: plugin configuration must be a JSON object, got an array"),
        ("apis.json", r#"{"apis": {}}"#, "apis.json: apis: must be an array of APIs, got an object"),
        ("meta.json", r#"{"apis": [{"name": "shop", "api_metadata": {"url": "shop", "hostname": "*"}}]}"#, r#"meta.json: api "shop": api_metadata.url: "shop" must start with "/""#),
        ("dup.json", r#"{"apis": [{"name": "a", "api_metadata": {"url": "/x", "hostname": "*"}}, {"name": "b", "api_metadata": {"url": "/x", "hostname": "*"}}]}"#, r#"dup.json: api "a" and api "b" both have hostname "*" and url "/x""#),
        ("ase.json", r#"{"ase": {"enable_xff": "true"}}"#, r#"ase.json: ase.enable_xff: must be a boolean (true or false), got string "true""#),
        ("list.json", r#"{"deny_list": {"ip": ["1.2.3"]}}"#, r#"list.json: deny_list.ip[0]: "1.2.3" is not an IPv4 or IPv6 address"#),
        ("admin.json", r#"{"admin": {"path": "/a", "key": "short"}}"#, "admin.json: admin.key: must be at least 16 characters"),
        ("feed.json", r#"{"attack_list": {"cluster": "abs", "path": "/v4", "intervall_s": 60}}"#, "feed.json: attack_list: unknown field `intervall_s`, expected one of"),
        ("analytics.json", r#"{"analytics": {"batch_size": 0}}"#, "analytics.json: analytics.batch_size, max_buffered and flush_interval_ms must be positive"),
    ];
    for (name, text, want) in rows {
        let r = lint(&format!("bad-{name}"), &[(name, text)]);
        assert_eq!(r.code, 1, "{name}: {}", r.out);
        assert!(
            r.out.starts_with(want),
            "{name}: want {want:?}, got {:?}",
            r.out
        );
        assert_eq!(r.out.lines().count(), 1, "{name}: {}", r.out);
    }
}

#[test]
fn every_file_is_checked_and_unreadable_files_fail() {
    let d = dir("mixed", &[("good.json", GOOD), ("bad.json", "{")]);
    let missing = d.join("missing.json").display().to_string();
    let good = d.join("good.json").display().to_string();
    let bad = d.join("bad.json").display().to_string();
    let r = run(&["lint", &bad, &missing, &good], None);
    assert_eq!(r.code, 1, "{}", r.out);
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.out);
    assert!(lines[0].starts_with(&format!("{bad}: plugin configuration is not JSON")));
    assert!(
        lines[1].starts_with(&format!("{missing}: cannot read: ")),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], format!("{good}: ok, 1 API"));
}

#[test]
fn dash_reads_standard_input() {
    let r = run(&["lint", "-"], Some(GOOD));
    assert_eq!(
        (r.code, r.out.as_str()),
        (0, "<stdin>: ok, 1 API\n"),
        "{}",
        r.err
    );
    // An API JSON file on stdin has no file name: the API is named after its url.
    let bad = seeds::SEED_001_REST.replace(r#""hostname": "*""#, r#""hostname": "a b""#);
    let r = run(&["lint", "-"], Some(&bad));
    assert_eq!(r.code, 1, "{}", r.out);
    assert_eq!(
        r.out,
        "<stdin>: api \"rest\": api_metadata.hostname: \"a b\" is not a host name or IP address\n"
    );
    let r = run(&["lint", "-"], Some(""));
    assert_eq!((r.code, r.out.as_str()), (0, "<stdin>: ok, 0 APIs\n"));
}
