//! The `null` and unknown-key policy (see the `config` module documentation), one row per section:
//! ASE's formats warn about unknown keys, api-warden's own sections reject them, and a `null`
//! member means the same as a missing one everywhere.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::super::{load, Notice};

/// What loading a row must give.
enum Want {
    /// Loads without any warning.
    Clean,
    /// Loads, with a warning containing this.
    Warns(&'static str),
    /// Refused with an error containing this.
    Fails(&'static str),
}
use Want::{Clean, Fails, Warns};

const ADMIN: &str = r#""path":"/_api_warden","key":"0123456789abcdef""#;
const FEED: &str = r#""cluster":"abs","path":"/v4/attacks""#;

fn api(meta: &str) -> String {
    format!(
        r#"{{"apis":[{{"name":"shop","api_metadata":{{"url":"/shop","hostname":"*"{meta}}}}}]}}"#
    )
}

#[rustfmt::skip]
fn rows() -> Vec<(&'static str, String, Want)> {
    vec![
        // --- top level (ASE's single-file form shares it): warn ---
        ("top unknown", r#"{"apiz":[]}"#.into(), Warns("unknown top-level keys ignored: apiz")),
        ("top unknown null", r#"{"apiz":null}"#.into(), Warns("unknown top-level keys ignored: apiz")),
        ("top null members", r#"{"apis":null,"ase":null,"deny_list":null,"allow_list":null,"admin":null,"attack_list":null,"analytics":null}"#.into(), Clean),
        ("top api_metadata null", r#"{"api_metadata":null}"#.into(), Clean),
        ("top api_metadata null beside apis", r#"{"api_metadata":null,"apis":[]}"#.into(), Clean),
        // --- apis[i] entry: warn ---
        ("entry unknown", r#"{"apis":[{"comment":"x","api_metadata":{"url":"/","hostname":"*"}}]}"#.into(), Warns(r#"api "root": apis[0].comment"#)),
        ("entry name null", r#"{"apis":[{"name":null,"api_metadata":{"url":"/","hostname":"*"}}]}"#.into(), Clean),
        ("entry api_metadata null", r#"{"apis":[{"api_metadata":null}]}"#.into(), Fails(r#"apis[0]: "api_metadata" is missing"#)),
        // --- api_metadata: warn ---
        ("api_metadata unknown", api(r#","future":1"#), Warns(r#"api "shop": future"#)),
        ("api_metadata unknown null", api(r#","future":null"#), Warns(r#"api "shop": future"#)),
        ("api_metadata null members", api(r#","cookie":null,"enable_blocking":null,"apikey_qs":null,"protocol":null,"flow_control":null,"jwt":null"#), Clean),
        ("api_metadata required null", r#"{"apis":[{"name":"shop","api_metadata":{"url":"/shop","hostname":null}}]}"#.into(), Fails(r#"api "shop": hostname is missing or empty"#)),
        // --- jwt: warn; a null key is a missing key ---
        ("jwt unknown", api(r#","jwt":{"location":"","username":"","clientid":"","iss":"x"}"#), Warns(r#"api "shop": jwt.iss"#)),
        ("jwt location null", api(r#","jwt":{"location":null,"username":"","clientid":""}"#), Fails(r#"api "shop": jwt is missing location"#)),
        // --- ase (named after ase.conf): warn ---
        ("ase unknown", r#"{"ase":{"enable_abs":true}}"#.into(), Warns("unknown ase keys ignored: ase.enable_abs")),
        ("ase unknown null", r#"{"ase":{"enable_abs":null}}"#.into(), Warns("unknown ase keys ignored: ase.enable_abs")),
        ("ase null members", r#"{"ase":{"enable_firewall":null,"xff_num_trusted_hops":null,"block_response":null}}"#.into(), Clean),
        ("block_response unknown", r#"{"ase":{"block_response":{"colour":"red"}}}"#.into(), Warns("ase.block_response.colour")),
        ("block_response null members", r#"{"ase":{"block_response":{"status":null,"body":null,"headers":{"x-a":null}}}}"#.into(), Clean),
        // --- deny_list / allow_list: unknown identifier types fail ---
        ("list unknown type", r#"{"deny_list":{"email":["a"]}}"#.into(), Fails(r#"deny_list: unknown identifier type "email""#)),
        ("list unknown type null", r#"{"allow_list":{"email":null}}"#.into(), Fails(r#"allow_list: unknown identifier type "email""#)),
        ("list type null", r#"{"deny_list":{"ip":null}}"#.into(), Clean),
        ("list item null", r#"{"deny_list":{"ip":[null]}}"#.into(), Fails("deny_list.ip[0] must be a non-empty string, got null")),
        // --- admin: fail ---
        ("admin unknown", format!(r#"{{"admin":{{{ADMIN},"port":1}}}}"#), Fails("admin: unknown field `port`, expected one of `path`, `key`")),
        ("admin unknown null", format!(r#"{{"admin":{{{ADMIN},"port":null}}}}"#), Fails("admin: unknown field `port`")),
        ("admin required null", r#"{"admin":{"path":"/a","key":null}}"#.into(), Fails("admin: missing field `key`")),
        ("admin not object", r#"{"admin":[1]}"#.into(), Fails("admin must be an object, got an array")),
        // --- attack_list: fail ---
        ("attack_list unknown", format!(r#"{{"attack_list":{{{FEED},"intervall_s":60}}}}"#), Fails("attack_list: unknown field `intervall_s`")),
        ("attack_list null members", format!(r#"{{"attack_list":{{{FEED},"authority":null,"interval_s":null,"timeout_ms":null,"headers":{{"x-a":null}},"max_body_bytes":null}}}}"#), Clean),
        ("attack_list required null", r#"{"attack_list":{"cluster":null,"path":"/x"}}"#.into(), Fails("attack_list: missing field `cluster`")),
        ("attack_list wrong type", format!(r#"{{"attack_list":{{{FEED},"interval_s":"60"}}}}"#), Fails("attack_list.interval_s must be an integer, got string \"60\"")),
        // --- analytics: fail ---
        ("analytics unknown", r#"{"analytics":{"batchsize":5}}"#.into(), Fails("analytics: unknown field `batchsize`")),
        ("analytics null members", r#"{"analytics":{"redact":null,"filter_state":null,"cluster":null,"path":null,"batch_size":null,"headers":null}}"#.into(), Clean),
        ("analytics header number", r#"{"analytics":{"headers":{"x-a":1}}}"#.into(), Fails("analytics.headers.x-a must be a string, got number 1")),
        ("analytics variant", r#"{"analytics":{"redact":"scramble"}}"#.into(), Fails("analytics.redact: unknown variant `scramble`, expected one of `none`, `hash`, `omit`")),
    ]
}

#[test]
fn null_and_unknown_keys() {
    let mut failures = Vec::new();
    for (name, config, want) in rows() {
        let got = load(config.as_bytes());
        let warnings: Vec<String> = match &got {
            Ok(c) => c
                .notices
                .iter()
                .filter_map(|n| match n {
                    Notice::Warn(m) => Some(m.clone()),
                    Notice::Info(_) => None,
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let pass = match (&got, &want) {
            (Ok(_), Clean) => warnings.is_empty(),
            (Ok(_), Warns(w)) => warnings.iter().any(|m| m.contains(w)),
            (Err(e), Fails(w)) => e.to_string().contains(w),
            _ => false,
        };
        if !pass {
            failures.push(format!(
                "{name}: got {:?} warnings {warnings:?}\n  config: {config}",
                got.map(|_| "Ok")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn null_members_take_the_defaults() {
    let c = load(format!(r#"{{"attack_list":{{{FEED},"interval_s":null,"headers":{{"x-a":null,"x-b":"1"}}}},"analytics":{{"batch_size":null}},"ase":{{"block_response":{{"headers":{{"x-a":null}}}}}}}}"#).as_bytes()).unwrap();
    let feed = c.services.attack_list.unwrap();
    assert_eq!(feed.interval_s, 600);
    assert_eq!(feed.headers.keys().collect::<Vec<_>>(), ["x-b"]);
    assert_eq!(c.services.analytics.batch_size, 100);
    assert!(c.ase.block_response.headers.is_empty());
}
