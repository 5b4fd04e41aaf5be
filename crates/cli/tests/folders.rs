//! `api-warden lint DIR` and `api-warden config DIR` over ASE folders, with golden files: the
//! seeds' API JSON files, names breaking ASE's rules, bad JSON, a partial `jwt`, two files with
//! the same hostname and url, an unreadable file, an empty folder; `--format json`, `--strict`.
#![allow(clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::{dir, golden, run, transcript};

/// The seeds' API JSON files, shared with the configuration unit tests.
#[allow(dead_code)]
#[path = "../../core/src/config/tests/seeds.rs"]
mod seeds;

use api_warden_core::config;

/// A folder of the seeds' own API JSON examples: all load.
fn seed_folder(test: &str) -> std::path::PathBuf {
    dir(
        test,
        &[
            ("root.json", seeds::SEED_000_APIKEY),
            ("rest.json", seeds::SEED_001_REST),
            ("shopapi.json", seeds::TOOLING_FILE),
            ("README.txt", "not an API JSON file: skipped"),
        ],
    )
}

const PARTIAL_JWT: &str =
    r#"{"api_metadata": {"url": "/p", "hostname": "*", "jwt": {"username": "", "location": ""}}}"#;

fn bad_folder(test: &str) -> std::path::PathBuf {
    let d = dir(
        test,
        &[
            (
                "good.json",
                r#"{"api_metadata": {"url": "/good", "hostname": "*"}}"#,
            ),
            ("notjson.json", "{\"api_metadata\": "),
            ("partial.json", PARTIAL_JWT),
            (
                "same.json",
                r#"{"api_metadata": {"url": "/good/", "hostname": "*"}}"#,
            ),
            (
                "all.json",
                r#"{"api_metadata": {"url": "/all", "hostname": "*"}}"#,
            ),
            (
                "my shop.json",
                r#"{"api_metadata": {"url": "/my", "hostname": "*"}}"#,
            ),
            (
                "_x.json",
                r#"{"api_metadata": {"url": "/x", "hostname": "*"}}"#,
            ),
            (
                "v1.2.json",
                r#"{"api_metadata": {"url": "/v", "hostname": "*"}}"#,
            ),
            (
                "warn.json",
                r#"{"api_metadata": {"url": "/w", "hostname": "*", "colour": 1}}"#,
            ),
        ],
    );
    std::os::unix::fs::symlink(d.join("missing"), d.join("gone.json")).expect("symlink");
    d
}

#[test]
fn lint_a_folder_of_seed_files() {
    let d = seed_folder("lint-seeds");
    let r = run(&["lint", &d.display().to_string()], None);
    golden("lint-seeds.txt", &transcript(&r, &d));
    assert_eq!(r.code, 0);
}

#[test]
fn lint_a_folder_with_every_kind_of_error() {
    let d = bad_folder("lint-bad");
    let r = run(&["lint", &d.display().to_string()], None);
    golden("lint-bad.txt", &transcript(&r, &d));
    assert_eq!(r.code, 1);
    let r = run(
        &["lint", "--format", "json", &d.display().to_string()],
        None,
    );
    golden("lint-bad.json", &transcript(&r, &d));
    assert_eq!(r.code, 1);
    let items: serde_json::Value = serde_json::from_str(&r.out).expect("JSON");
    for item in items.as_array().expect("array") {
        for key in ["path", "api", "field", "severity", "message"] {
            assert!(item.get(key).is_some(), "{item}");
        }
    }
}

#[test]
fn strict_makes_warnings_fail() {
    let d = dir(
        "strict",
        &[(
            "w.json",
            r#"{"api_metadata": {"url": "/w", "hostname": "*", "colour": 1}}"#,
        )],
    );
    let path = d.display().to_string();
    assert_eq!(run(&["lint", &path], None).code, 0);
    let r = run(&["lint", "--strict", &path], None);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(
        r.out.contains("warning: unknown API JSON keys ignored"),
        "{}",
        r.out
    );
}

#[test]
fn an_empty_folder_and_a_missing_one_fail() {
    let d = dir("empty", &[("notes.txt", "x")]);
    let r = run(&["lint", &d.display().to_string()], None);
    assert_eq!(
        (r.code, common::relative(&r.out, &d).as_str()),
        (1, "DIR: no API JSON files (*.json) in the folder\n")
    );
    let r = run(&["config", &d.display().to_string()], None);
    assert_eq!((r.code, r.out.as_str()), (1, ""));
    assert_eq!(
        common::relative(&r.err, &d),
        "DIR: no API JSON files (*.json) in the folder\n"
    );
    let missing = d.join("nope").display().to_string();
    let r = run(&["config", &missing], None);
    assert_eq!(r.code, 1);
    assert!(
        r.err.starts_with(&format!("{missing}: cannot read: ")),
        "{}",
        r.err
    );
}

#[test]
fn a_single_api_json_file_must_be_named_by_the_rules() {
    let d = dir("single-name", &[("my model.json", seeds::SEED_001_REST)]);
    let r = run(
        &["lint", &d.join("my model.json").display().to_string()],
        None,
    );
    assert_eq!(r.code, 1, "{}", r.out);
    let out = common::relative(&r.out, &d);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "DIR/my model.json: api \"my model\": name: \"my model\" contains the word \"model\", which ASE reserves (model, threshold, all, decoyall)"
    );
    // The content is still checked, and reported under the file's name.
    assert!(
        lines[1].starts_with("DIR/my model.json: note: API JSON fields ignored"),
        "{out}"
    );
    assert!(lines[1].contains("api \"my model\": api_mapping"), "{out}");
    assert_eq!(lines.len(), 2, "{out}");
}

#[test]
fn config_prints_exactly_the_apis_lint_accepts() {
    let d = seed_folder("config-seeds");
    let path = d.display().to_string();
    let r = run(&["config", &path], None);
    assert_eq!(r.code, 0, "{}", r.err);
    golden("config-seeds.json", &r.out);
    let c = config::load(r.out.as_bytes()).expect("the filter loads it");
    let names: Vec<&str> = c.apis.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["rest", "root", "shopapi"]);
    // lint says the same: one ok line, three APIs, no error.
    let lint = run(&["lint", "--format", "json", &path], None);
    assert_eq!(lint.code, 0);
    assert!(!lint.out.contains("\"error\""), "{}", lint.out);
    assert!(run(&["lint", &path], None)
        .out
        .ends_with(&format!("{path}: ok, 3 APIs\n")));
}

#[test]
fn config_refuses_a_folder_with_errors_and_takes_the_sections() {
    let d = bad_folder("config-bad");
    let r = run(&["config", &d.display().to_string()], None);
    assert_eq!((r.code, r.out.as_str()), (1, ""));
    golden("config-bad.txt", &transcript(&r, &d));

    let api_dir = seed_folder("config-sections");
    let d = dir("config-sections-files", &[]);
    std::fs::write(
        d.join("ase.conf"),
        "mode=inline\nenable_xff=true\nenable_firewall=false\n",
    )
    .expect("w");
    std::fs::write(d.join("deny.json"), r#"{"ip": ["192.0.2.1"]}"#).expect("w");
    std::fs::write(d.join("allow.json"), r#"{"username": ["ops"]}"#).expect("w");
    let s = |f: &str| d.join(f).display().to_string();
    let r = run(
        &[
            "config",
            &api_dir.display().to_string(),
            "--ase",
            &s("ase.conf"),
            "--deny",
            &s("deny.json"),
            "--allow",
            &s("allow.json"),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.err
            .contains("ase.conf keys the filter does not use, left out: mode"),
        "{}",
        r.err
    );
    let c = config::load(r.out.as_bytes()).expect("loads");
    assert!(c.ase.enable_xff && !c.ase.enable_firewall);
    assert_eq!(c.deny_list.ip, ["192.0.2.1"]);
    assert_eq!(c.allow_list.username, ["ops"]);
    // A bad list is refused at once, as the filter would.
    std::fs::write(d.join("deny.json"), r#"{"ip": ["1.2.3"]}"#).expect("w");
    let r = run(
        &[
            "config",
            &api_dir.display().to_string(),
            "--deny",
            &s("deny.json"),
        ],
        None,
    );
    assert_eq!(r.code, 1);
    assert!(
        r.err
            .contains("deny_list.ip[0]: \"1.2.3\" is not an IPv4 or IPv6 address"),
        "{}",
        r.err
    );
}

#[test]
fn every_subcommand_has_help() {
    for cmd in ["lint", "config"] {
        let r = run(&[cmd, "--help"], None);
        assert_eq!(r.code, 0, "{cmd}");
        assert!(
            r.out.starts_with(&format!("usage: api-warden {cmd}")),
            "{cmd}: {}",
            r.out
        );
        assert!(r.out.contains("exit status"), "{cmd}");
    }
}
