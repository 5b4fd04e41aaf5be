//! Table tests of the naming rules, the per-file and cross-file checks, and `ase.conf` reading.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;

fn file(name: &str, text: &str) -> (String, Vec<u8>) {
    (name.to_string(), text.as_bytes().to_vec())
}

const SHOP: &str = r#"{"api_metadata": {"url": "/shop", "hostname": "*"}}"#;

#[test]
fn naming_rules() {
    let long = "a".repeat(161);
    assert!(check_name(&"a".repeat(160)).is_ok());
    let rows: &[(&str, Option<&str>)] = &[
        ("shop", None),
        ("Shop_API-2", None),
        ("", Some("the API name is empty")),
        (
            long.as_str(),
            Some("is 161 characters long; ASE allows at most 160"),
        ),
        ("_shop", Some("must start with a letter or a digit")),
        ("-shop", Some("must start with a letter or a digit")),
        ("shop.v2", Some("contains '.'; ASE allows letters")),
        ("shöp", Some("contains 'ö'")),
        ("all", Some("contains the word \"all\", which ASE reserves")),
        ("my_Model", Some("contains the word \"Model\"")),
        ("threshold-x", Some("\"threshold\"")),
        ("decoyall", Some("\"decoyall\"")),
        ("wallet", None),
        (
            "my shop",
            Some("contains a space: ASE allows it, api-warden does not"),
        ),
    ];
    for (name, want) in rows {
        match (check_name(name), want) {
            (Ok(()), None) => {}
            (Err(e), Some(w)) => assert!(e.contains(w), "{name:?}: {e}"),
            (got, want) => panic!("{name:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn a_good_folder_gives_its_apis_in_file_order() {
    let f = check_folder(vec![
        file(
            "zeta.json",
            r#"{"api_metadata": {"url": "/z", "hostname": "*"}}"#,
        ),
        file("shop.json", SHOP),
    ]);
    assert!(!f.has_errors(), "{:?}", f.findings);
    let names: Vec<&str> = f.apis.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["shop", "zeta"]);
    let cfg = plugin_config(&f.apis, &Map::new());
    let loaded = config::load(cfg.to_string().as_bytes()).unwrap();
    let loaded: Vec<&str> = loaded.apis.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(loaded, names);
}

#[test]
fn each_file_error_is_found_and_the_file_left_out() {
    let f = check_folder(vec![
        file("ok.json", SHOP),
        file("notjson.json", "{"),
        file("array.json", "[]"),
        file("plugin.json", r#"{"apis": []}"#),
        file("nometa.json", r#"{"name": "x"}"#),
        file(
            "bad.json",
            r#"{"api_metadata": {"url": "x", "hostname": "*"}}"#,
        ),
        file(
            "all.json",
            r#"{"api_metadata": {"url": "/all", "hostname": "*"}}"#,
        ),
        file(
            "same.json",
            r#"{"api_metadata": {"url": "/shop/", "hostname": "*"}}"#,
        ),
    ]);
    let lines: Vec<String> = f
        .findings
        .iter()
        .map(|x| format!("{}: {}", x.file, x.text))
        .collect();
    let want = [
        "all.json: api \"all\": name: \"all\" contains the word \"all\", which ASE reserves (model, threshold, all, decoyall)",
        "array.json: an API JSON file must be a JSON object {\"api_metadata\": {…}}, got an array",
        "bad.json: api \"bad\": api_metadata.url: \"x\" must start with \"/\"",
        "nometa.json: warning: top-level keys ignored in a folder of API JSON files (only api_metadata is read, the file names the API): name",
        "nometa.json: api \"nometa\": api_metadata: is missing; an API JSON file is {\"api_metadata\": {…}}",
        "plugin.json: apis: is a whole plugin configuration; a folder holds one API JSON file per API ({\"api_metadata\": {…}})",
        "same.json: api \"same\": api_metadata.url: ok.json already defines an API with hostname \"*\" and url \"/shop\"; ASE keeps one API per hostname and url",
    ];
    assert_eq!(lines.len(), want.len() + 1, "{lines:#?}");
    for w in want {
        assert!(lines.iter().any(|l| l == w), "missing {w}\n{lines:#?}");
    }
    assert!(lines
        .iter()
        .any(|l| l.starts_with("notjson.json: not JSON: ")));
    let names: Vec<&str> = f.apis.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["ok"]);
}

#[test]
fn an_empty_folder_is_an_error() {
    let f = check_folder(Vec::new());
    assert!(f.has_errors());
    assert_eq!(
        f.findings[0].text,
        "no API JSON files (*.json) in the folder"
    );
}

#[test]
fn a_bad_name_still_gets_its_content_checked() {
    let (findings, api) = check_file(
        "my shop.json",
        r#"{"api_metadata": {"url": "/s", "hostname": "a b"}}"#.as_bytes(),
    );
    assert!(api.is_none());
    assert_eq!(findings.len(), 2, "{findings:?}");
    assert_eq!(findings[1].api.as_deref(), Some("my shop"));
    assert_eq!(findings[1].field, "api_metadata.hostname");
}

#[test]
fn ase_conf_text_and_json() {
    let (s, skipped) = ase_section(
        b"# ASE\nmode=inline\nenable_firewall=false\nenable_xff = true\nxff_num_trusted_hops=2\nhttp_ws_port=80\n",
    )
    .unwrap();
    assert_eq!(
        Value::Object(s),
        serde_json::json!({"enable_firewall": false, "enable_xff": true, "xff_num_trusted_hops": 2})
    );
    assert_eq!(skipped, ["mode", "http_ws_port"]);
    let (s, _) = ase_section(br#"{"ase": {"enable_xff": true}}"#).unwrap();
    assert_eq!(Value::Object(s), serde_json::json!({"enable_xff": true}));
    let (s, _) = ase_section(br#"{"enable_xff": true}"#).unwrap();
    assert_eq!(Value::Object(s), serde_json::json!({"enable_xff": true}));
    assert!(ase_section(b"garbage line").unwrap_err().contains("line 1"));
    assert!(ase_section(b"{").unwrap_err().starts_with("not JSON"));
}
