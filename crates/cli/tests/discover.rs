//! `api-warden discover` run for real: every input form (access-log lines with the record as a
//! string or an object, tab-separated lines, export batches, bare records), gzip, a partial root
//! `jwt`, an empty input, an unreadable file, `--known`, `--subpath-depth 2`, `--any-host`,
//! determinism, the files passing `lint` and loading with `config::load`, and (ignored) the speed
//! over 1,000,000 records.
#![allow(clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{dir, golden, run, transcript, Run};
use serde_json::{json, Value};

use api_warden_core::config;

const ROOT: &str = r#"{"api_metadata": {"url": "/", "hostname": "*", "protocol": "http"}}"#;

/// A record of the filter: `api` matched (the root's base path `/` when it is `root`).
fn rec(api: &str, host: &str, uri: &str, status: u16, ip: &str) -> Value {
    let base = if api == "root" { "/" } else { "/other" };
    json!({
        "action": "outbound-GET",
        "service": api,
        "attributes": {
            "HttpRequest.IPAddress": ip,
            "HttpRequest.RequestURI": uri,
            "HttpRequest.QueryParameters": {"page": ["1"]},
            "HttpRequest.RequestHeaders": {"host": [host], "user-agent": ["t"]},
            "HttpRequest.ResponseStatus": status,
            "Gateway": {"_BasePath": base}
        },
        "ase": {"api": api, "decision": "allow", "client": {"ip": ip}}
    })
}

/// Records in every form, with a bad line, other APIs' traffic and non-2xx answers.
fn forms() -> String {
    let mut with_key = rec(
        "root",
        "ignored.example",
        "/shop/cart?api_key=k",
        200,
        "10.0.0.1",
    );
    with_key["attributes"]["HttpRequest.QueryParameters"] = json!({"api_key": ["k"]});
    with_key["attributes"]["HttpRequest.RequestHeaders"]["authorization"] = json!(["Bearer t"]);
    with_key["attributes"]["HttpRequest.RequestHeaders"]["cookie"] = json!(["sid=1; theme=dark"]);
    let access = json!({"record": with_key.to_string(), "authority": "shop.example.com:8443",
        "scheme": "https", "response_code": "200", "start_time": "2026-01-01T00:00:00Z"});
    let mut keyed = rec("root", "api.example.com", "/v1/orders/7", 201, "10.0.0.2");
    keyed["attributes"]["HttpRequest.RequestHeaders"]["x-api-key"] = json!(["secret"]);
    let object_form = json!({"record": keyed, "authority": "-", "scheme": "-"});
    let tabbed = format!(
        "{}\tGET\t200",
        rec("root", "shop.example.com", "/shop/items/3", 204, "10.0.0.3")
    );
    let batch = json!([
        rec("root", "api.example.com", "/v1/users", 200, "10.0.0.2"),
        rec("root", "api.example.com", "/v2/users", 404, "10.0.0.2"),
        rec("other", "api.example.com", "/other/x", 200, "10.0.0.2"),
    ]);
    let bare = rec("root", "shop.example.com", "/all/x", 200, "10.0.0.1");
    let at_root = rec("root", "shop.example.com", "/", 200, "10.0.0.1");
    format!("{access}\n{object_form}\n{tabbed}\n{batch}\n\nnot json\n{bare}\n{at_root}\n")
}

/// A folder with the root API and the records.
fn setup(test: &str, root: &str) -> PathBuf {
    dir(test, &[("root.json", root), ("records.log", &forms())])
}

fn p(d: &Path, name: &str) -> String {
    d.join(name).display().to_string()
}

fn discover(d: &Path, extra: &[&str]) -> Run {
    let root = p(d, "root.json");
    let mut args = vec!["discover", "--root", root.as_str()];
    args.extend_from_slice(extra);
    run(&args, None)
}

#[test]
fn every_input_form() {
    let d = setup("forms", ROOT);
    let r = discover(&d, &[&p(&d, "records.log")]);
    golden("discover-forms.txt", &transcript(&r, &d));
    assert_eq!(r.code, 0);
}

#[test]
fn files_pass_lint_and_load() {
    let d = setup("files", ROOT);
    let out = p(&d, "out");
    let r = discover(&d, &["--out", &out, &p(&d, "records.log")]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.is_empty());
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["allx.json", "shop.json", "v1.json"]);
    for n in &names {
        let bytes = std::fs::read(d.join("out").join(n)).expect("file");
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("secret") && !text.contains("sid"), "{text}");
        let cfg = config::load(&bytes).expect("loads");
        assert_eq!(cfg.apis.len(), 1);
    }
    let lint = run(&["lint", "--strict", &out], None);
    assert_eq!(lint.code, 0, "{}{}", lint.out, lint.err);
    let cfg = run(&["config", &out], None);
    assert_eq!(cfg.code, 0, "{}", cfg.err);
    let loaded = config::load(cfg.out.as_bytes()).expect("config loads");
    let mut urls: Vec<(String, String)> = loaded
        .apis
        .iter()
        .map(|a| (a.hostname.clone(), a.url.clone()))
        .collect();
    urls.sort();
    assert_eq!(
        urls,
        [
            ("api.example.com".to_string(), "/v1".to_string()),
            ("shop.example.com".to_string(), "/all".to_string()),
            ("shop.example.com".to_string(), "/shop".to_string())
        ]
    );
}

#[test]
fn gzip_and_stdin_read_the_same() {
    let d = setup("gzip", ROOT);
    let gz = d.join("records.log.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).expect("gz"),
        flate2::Compression::fast(),
    );
    enc.write_all(forms().as_bytes()).expect("gz written");
    enc.finish().expect("gz finished");
    let plain = discover(&d, &[&p(&d, "records.log")]);
    let zipped = discover(&d, &[&gz.display().to_string()]);
    let root = p(&d, "root.json");
    let stdin = run(
        &["discover", "--root", &root, "-"],
        Some(forms().as_bytes()),
    );
    assert_eq!(plain.code, 0);
    assert_eq!(plain.out, zipped.out);
    assert_eq!(plain.out, stdin.out);
    assert_eq!(
        plain.err.replace("records.log", "X"),
        zipped.err.replace("records.log.gz", "X")
    );
}

#[test]
fn a_partial_root_jwt_discovers_nothing() {
    let partial = r#"{"api_metadata": {"url": "/", "hostname": "*", "jwt": {"location": "h:authorization:bearer", "username": "sub"}}}"#;
    let d = setup("partial", partial);
    let r = discover(&d, &[&p(&d, "records.log")]);
    golden("discover-partial-jwt.txt", &transcript(&r, &d));
    assert_eq!(r.code, 1);
}

#[test]
fn a_full_root_jwt_is_copied() {
    let full = r#"{"api_metadata": {"url": "/", "hostname": "*", "jwt": {"location": "h:authorization:bearer", "username": "sub", "clientid": "azp"}}}"#;
    let d = setup("fulljwt", full);
    let r = discover(&d, &[&p(&d, "records.log")]);
    assert_eq!(r.code, 0, "{}", r.err);
    let all: Value = serde_json::from_str(&r.out).expect("json");
    for (_, api) in all.as_object().expect("object") {
        assert_eq!(
            api["api_metadata"]["jwt"],
            json!({"location": "h:authorization:bearer", "username": "sub", "clientid": "azp"})
        );
    }
}

#[test]
fn empty_input_and_unreadable_files() {
    let d = setup("empty", ROOT);
    let root = p(&d, "root.json");
    let empty = run(&["discover", "--root", &root], Some(b""));
    golden("discover-empty.txt", &transcript(&empty, &d));
    assert_eq!(empty.code, 0);
    let missing = discover(&d, &[&p(&d, "records.log"), &p(&d, "missing.log")]);
    let no_root = run(&["discover", "--root", &p(&d, "nope.json"), "-"], Some(b""));
    let not_root = dir(
        "empty-notroot",
        &[("r.json", r#"{"api_metadata": {"url": "/x"}}"#)],
    );
    let wrong = run(
        &["discover", "--root", &p(&not_root, "r.json"), "-"],
        Some(b""),
    );
    let text = format!(
        "{}{}{}",
        transcript(&missing, &d),
        transcript(&no_root, &d),
        transcript(&wrong, &not_root)
    );
    golden("discover-unreadable.txt", &text);
    assert_eq!((missing.code, no_root.code, wrong.code), (1, 1, 1));
}

#[test]
fn known_apis_are_skipped() {
    let d = setup("known", ROOT);
    let known = d.join("known");
    std::fs::create_dir_all(&known).expect("known dir");
    let shop = r#"{"api_metadata": {"url": "/shop", "hostname": "shop.example.com"}}"#;
    std::fs::write(known.join("shop.json"), shop).expect("shop");
    std::fs::write(
        known.join("v1.json"),
        r#"{"api_metadata": {"url": "/v9", "hostname": "*"}}"#,
    )
    .expect("v1");
    let r = discover(&d, &["--known", &p(&d, "known"), &p(&d, "records.log")]);
    golden("discover-known.txt", &transcript(&r, &d));
    assert_eq!(r.code, 0);
    // A configuration works as well; `*` hostnames cover every host.
    let cfg = r#"{"apis": [{"name": "shop", "api_metadata": {"url": "/shop", "hostname": "*"}}]}"#;
    std::fs::write(d.join("known.conf"), cfg).expect("conf");
    let r = discover(
        &d,
        &["--known", &p(&d, "known.conf"), &p(&d, "records.log")],
    );
    let all: Value = serde_json::from_str(&r.out).expect("json");
    let names: Vec<&String> = all.as_object().expect("object").keys().collect();
    assert_eq!(names, ["allx", "v1"]);
    let bad = discover(&d, &["--known", &p(&d, "records.log"), "-"]);
    assert_eq!(bad.code, 1, "{}", bad.err);
}

#[test]
fn subpath_depth_and_any_host() {
    let d = setup("depth", ROOT);
    let two = discover(&d, &["--subpath-depth", "2", &p(&d, "records.log")]);
    golden("discover-depth2.txt", &transcript(&two, &d));
    let any = discover(&d, &["--any-host", &p(&d, "records.log")]);
    golden("discover-any-host.txt", &transcript(&any, &d));
    assert_eq!((two.code, any.code), (0, 0));
    for bad in ["0", "7", "x"] {
        let r = discover(&d, &["--subpath-depth", bad, "-"]);
        assert_eq!(r.code, 2, "{bad}: {}", r.err);
    }
    assert_eq!(run(&["discover", "-"], Some(b"")).code, 2);
    let help = run(&["discover", "--help"], None);
    assert_eq!(help.code, 0);
    assert!(help.out.contains("--subpath-depth N"));
}

#[test]
fn output_is_deterministic() {
    let d = setup("determinism", ROOT);
    let (a, b) = (p(&d, "a"), p(&d, "b"));
    let first = discover(&d, &["--out", &a, &p(&d, "records.log")]);
    let second = discover(&d, &["--out", &b, &p(&d, "records.log")]);
    assert_eq!((first.code, second.code), (0, 0));
    for n in ["allx.json", "shop.json", "v1.json"] {
        let x = std::fs::read(d.join("a").join(n)).expect("a");
        let y = std::fs::read(d.join("b").join(n)).expect("b");
        assert_eq!(x, y, "{n}");
    }
    let s1 = discover(&d, &[&p(&d, "records.log")]);
    let s2 = discover(&d, &[&p(&d, "records.log")]);
    assert_eq!((s1.out, s1.err), (s2.out, s2.err));
}

/// `cargo test --release -p api-warden-cli --test discover -- --ignored`
#[test]
#[ignore = "speed: run in release mode"]
fn a_million_records_in_under_ten_seconds() {
    let d = dir("speed", &[("root.json", ROOT)]);
    let path = d.join("million.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("file"));
    for i in 0..1_000_000u32 {
        let r = rec(
            "root",
            &format!("h{}.example.com", i % 7),
            &format!("/api{}/items/{i}?page=2", i % 50),
            if i % 10 == 0 { 404 } else { 200 },
            &format!("10.0.{}.{}", (i / 256) % 256, i % 256),
        );
        let line = json!({"record": r.to_string(), "authority": format!("h{}.example.com", i % 7), "scheme": "https"});
        writeln!(f, "{line}").expect("line");
    }
    f.flush().expect("flushed");
    drop(f);
    let start = std::time::Instant::now();
    let r = discover(&d, &["--out", &p(&d, "out"), &path.display().to_string()]);
    let took = start.elapsed();
    eprintln!("discover: 1,000,000 records in {took:?}");
    let _ = std::fs::remove_dir_all(&d);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.err.contains("1000000 records"), "{}", r.err);
    assert!(took.as_secs_f64() < 10.0, "took {took:?}");
}
