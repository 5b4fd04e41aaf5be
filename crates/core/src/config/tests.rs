//! Tests for configuration parsing: a table of `{name, config, expect_err}` rows plus checks of
//! the compiled values (native and wasm).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::api::derive_name;
use super::jwt::parse_jwt_location;
use super::{load as parse, ApiKeyLocation, Compiled, JwtLocation, Notice};

mod policy;
mod rows;
mod seeds;
use rows::{api_metadata_of, ase, jwt, rows, two};
use seeds::{ASE_IMAGE_ROOT, SEED_000_APIKEY, SEED_001_REST, TOOLING_FILE};

#[test]
fn parse_table() {
    let rows = rows();
    assert!(rows.len() > 150, "{} rows", rows.len());
    let mut failures = Vec::new();
    for r in &rows {
        let got = parse(r.config.as_bytes());
        match (&got, r.expect_err) {
            (Ok(_), "") => {}
            (Err(e), want) if !want.is_empty() && e.to_string().contains(want) => {}
            (got, want) => failures.push(format!(
                "{}: want {}, got {:?}\n  config: {}",
                r.name,
                if want.is_empty() {
                    "Ok".to_string()
                } else {
                    format!("error containing {want:?}")
                },
                got.as_ref().map(|_| "Ok"),
                r.config
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

fn ok(config: &str) -> Compiled {
    match parse(config.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("{e}\nconfig: {config}"),
    }
}

fn warns(c: &Compiled) -> Vec<&str> {
    c.notices
        .iter()
        .filter_map(|n| {
            if let Notice::Warn(m) = n {
                Some(m.as_str())
            } else {
                None
            }
        })
        .collect()
}

fn infos(c: &Compiled) -> Vec<&str> {
    c.notices
        .iter()
        .filter_map(|n| {
            if let Notice::Info(m) = n {
                Some(m.as_str())
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn empty_config_is_all_defaults() {
    for text in ["", "   \n", "{}"] {
        let c = ok(text);
        assert!(c.apis.is_empty());
        assert!(c.notices.is_empty());
        assert!(c.extra.is_empty());
        assert!(c.ase.enable_firewall && c.ase.enable_ase_detected_attack && !c.ase.enable_xff);
        assert_eq!(
            (c.ase.xff_num_trusted_hops, c.ase.detected_attack_ttl_s),
            (0, 0)
        );
        assert_eq!(c.ase.block_response.status, 403);
        assert_eq!(c.ase.block_response.body, "Unauthorized");
        assert!(c.ase.block_response.headers.is_empty());
        assert_eq!(c.deny_list, Default::default());
    }
}

#[test]
fn ase_values() {
    let c = ok(&ase(
        r#""enable_firewall":false,"enable_ase_detected_attack":false,"enable_xff":true,"xff_num_trusted_hops":2,"detected_attack_ttl_s":3600,"block_response":{"status":429,"body":"slow down","headers":{"Retry-After":"60","Content-Type":"text/plain"}}"#,
    ));
    assert!(!c.ase.enable_firewall && !c.ase.enable_ase_detected_attack && c.ase.enable_xff);
    assert_eq!(c.ase.xff_num_trusted_hops, 2);
    assert_eq!(c.ase.detected_attack_ttl_s, 3600);
    assert_eq!(c.ase.block_response.status, 429);
    assert_eq!(c.ase.block_response.body, "slow down");
    assert_eq!(
        c.ase.block_response.headers,
        vec![
            ("content-type".to_string(), "text/plain".to_string()),
            ("retry-after".to_string(), "60".to_string())
        ]
    );
    let c = ok(&ase(
        r#""enable_abs":true,"block_response":{"status":403,"color":"red"}"#,
    ));
    assert_eq!(
        warns(&c),
        vec!["unknown ase keys ignored: ase.block_response.color, ase.enable_abs"]
    );
}

#[test]
fn lists_are_compiled() {
    let c = ok(
        r#"{"deny_list":{"ip":[" 10.0.0.1 ","2001:DB8:0:0::1","::ffff:1.2.3.4"],"token":["t1","t2"],"api_key":["k"],"cookie":["JSESSIONID=abc"],"username":["Bob"]},"allow_list":{"ip":["192.168.0.1"]}}"#,
    );
    assert_eq!(
        c.deny_list.ip,
        // IPv4-mapped addresses are stored in the IPv4 form the identified peer has.
        vec!["10.0.0.1", "2001:db8::1", "1.2.3.4"]
    );
    assert_eq!(c.deny_list.token, vec!["t1", "t2"]);
    assert_eq!(c.deny_list.api_key, vec!["k"]);
    assert_eq!(c.deny_list.cookie, vec!["JSESSIONID=abc"]);
    assert_eq!(c.deny_list.username, vec!["Bob"]);
    assert_eq!(c.allow_list.ip, vec!["192.168.0.1"]);
    assert!(c.allow_list.token.is_empty());
    assert_eq!(
        c.deny_list
            .get(crate::identity::IdType::Username)
            .as_slice(),
        ["Bob".to_string()]
    );
}

#[test]
fn extra_and_unknown_top_level_keys() {
    let c = ok(
        r#"{"attack_list":{"cluster":"abs","path":"/v4"},"admin":null,"analytics":{"batch_size":5},"foo":1,"bar":null}"#,
    );
    assert_eq!(c.extra.len(), 3);
    assert_eq!(
        c.extra["attack_list"],
        serde_json::json!({"cluster": "abs", "path": "/v4"})
    );
    assert_eq!(c.extra["analytics"], serde_json::json!({"batch_size": 5}));
    assert_eq!(c.services.analytics.batch_size, 5);
    assert_eq!(
        c.services.attack_list.as_ref().map(|a| a.interval_s),
        Some(600)
    );
    assert_eq!(c.services.admin, None);
    let w = warns(&c);
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("unknown top-level keys ignored: bar, foo"),
        "{}",
        w[0]
    );
}

#[test]
fn api_values_are_normalized() {
    let c = ok(
        r#"{"apis":[{"api_metadata":{"url":"/Rest//v1/","hostname":"Shop.Example.COM.:8443","cookie":" SessionID ","apikey_header":"X-API-Key","username_header":"X-User","oauth2_access_token":true,"is_token_mandatory":true,"enable_blocking":true}}]}"#,
    );
    let api = &c.apis[0];
    assert_eq!(api.name, "Rest_v1");
    assert_eq!(api.url, "/Rest/v1");
    assert_eq!(api.hostname, "shop.example.com");
    assert_eq!(api.cookie.as_deref(), Some("SessionID"));
    assert_eq!(
        api.apikey,
        Some(ApiKeyLocation::Header("x-api-key".to_string()))
    );
    assert_eq!(api.username_header.as_deref(), Some("x-user"));
    assert!(api.oauth2_access_token && api.is_token_mandatory && api.enable_blocking);
    assert_eq!(api.jwt, None);

    let c = ok(
        r#"{"apis":[{"name":"x","api_metadata":{"url":"/","hostname":"*","cookie":"","apikey_qs":"","apikey_header":"","username_header":""}}]}"#,
    );
    let api = &c.apis[0];
    assert_eq!((api.url.as_str(), api.hostname.as_str()), ("/", "*"));
    assert_eq!(
        (
            api.cookie.clone(),
            api.apikey.clone(),
            api.username_header.clone()
        ),
        (None, None, None)
    );
    assert!(!api.oauth2_access_token && !api.is_token_mandatory && !api.enable_blocking);
}

#[test]
fn seed_files_compile() {
    let c = ok(SEED_000_APIKEY);
    let api = &c.apis[0];
    assert_eq!(
        (api.name.as_str(), api.url.as_str(), api.hostname.as_str()),
        ("root", "/", "*")
    );
    assert_eq!(
        api.apikey,
        Some(ApiKeyLocation::Query("key_1.4".to_string()))
    );
    assert!(api.oauth2_access_token && api.enable_blocking && !api.is_token_mandatory);
    assert_eq!(infos(&c).len(), 1);
    assert!(warns(&c).is_empty());

    let c = ok(SEED_001_REST);
    let api = &c.apis[0];
    assert_eq!((api.name.as_str(), api.url.as_str()), ("rest", "/rest"));
    let jwt = api.jwt.as_ref().unwrap();
    assert_eq!(jwt.location, JwtLocation::Bearer);
    assert_eq!(jwt.username.as_deref(), Some("username"));
    assert_eq!(jwt.clientid.as_deref(), Some("client_id"));
    assert_eq!(jwt.location.canonical(), "h:authorization:bearer");

    let c = ok(TOOLING_FILE);
    let api = &c.apis[0];
    assert_eq!(
        api.apikey,
        Some(ApiKeyLocation::Header("x-api-key".to_string()))
    );
    assert_eq!(api.cookie.as_deref(), Some("JSESSIONID"));
    assert_eq!(api.jwt, None);
    assert!(warns(&c).is_empty(), "{:?}", c.notices);

    let c = ok(ASE_IMAGE_ROOT);
    assert!(!c.apis[0].enable_blocking && c.apis[0].oauth2_access_token && c.apis[0].jwt.is_none());
}

#[test]
fn ignored_fields_give_one_info() {
    let c = ok(&format!(
        r#"{{"apis":[{{"name":"a","api_metadata":{}}},{{"name":"b","api_metadata":{}}},{{"name":"c","api_metadata":{{"url":"/c","hostname":"*"}}}}]}}"#,
        api_metadata_of(TOOLING_FILE),
        api_metadata_of(SEED_001_REST)
    ));
    let i = infos(&c);
    assert_eq!(i.len(), 1, "{i:?}");
    assert!(i[0].contains("Envoy's routes and clusters"), "{}", i[0]);
    assert!(i[0].contains(r#"api "a": api_mapping, api_memory_size, cookie_persistence_enabled, health_check, health_check_headers, health_check_interval, health_retry_count, health_url, server_ssl, servers"#), "{}", i[0]);
    assert!(
        i[0].contains(r#"api "b": api_mapping, cookie_persistence_enabled"#),
        "{}",
        i[0]
    );
    assert!(!i[0].contains(r#"api "c""#));
    assert!(warns(&c).is_empty());
}

#[test]
fn unknown_api_keys_give_one_warn() {
    let c = ok(r#"{"apis":[
        {"name":"a","note":"x","api_metadata":{"url":"/a","hostname":"*","future":1,"jwt":{"location":"","username":"","clientid":"","iss":""}}},
        {"name":"b","api_metadata":{"url":"/b","hostname":"*","other":true}}]}"#);
    let w = warns(&c);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains(r#"api "a": apis[0].note, future, jwt.iss; api "b": other"#),
        "{}",
        w[0]
    );
}

#[test]
fn jwt_location_without_claims_is_kept_with_a_warning() {
    let c = ok(&jwt("h:Authorization:MAC", "", ""));
    let j = c.apis[0].jwt.as_ref().unwrap();
    assert_eq!(
        (j.location.clone(), j.username.clone(), j.clientid.clone()),
        (JwtLocation::Mac, None, None)
    );
    let w = warns(&c);
    assert_eq!(w.len(), 1);
    assert!(w[0].contains(
        r#"api "shop": jwt.location is set but jwt.username and jwt.clientid are empty"#
    ));

    assert_eq!(ok(&jwt("", "", "")).apis[0].jwt, None);
    assert!(ok(&jwt("", "", "")).notices.is_empty());
}

#[test]
fn jwt_location_forms() {
    let rows: &[(&str, JwtLocation)] = &[
        ("qs:access_token", JwtLocation::Query("access_token".into())),
        (
            "QS: Access_Token ",
            JwtLocation::Query("Access_Token".into()),
        ),
        ("h:X-jwt-header", JwtLocation::Header("x-jwt-header".into())),
        (" H : X-JWT ", JwtLocation::Header("x-jwt".into())),
        ("h:Authorization:Bearer", JwtLocation::Bearer),
        ("h:authorization:bearer", JwtLocation::Bearer),
        ("h: AUTHORIZATION : BEARER", JwtLocation::Bearer),
        ("h:Authorization:MAC", JwtLocation::Mac),
        ("h:authorization:mac", JwtLocation::Mac),
        (
            "h:cookie: access_token",
            JwtLocation::Cookie("access_token".into()),
        ),
        (
            "H:Cookie:Access_Token",
            JwtLocation::Cookie("Access_Token".into()),
        ),
    ];
    for (text, want) in rows {
        assert_eq!(parse_jwt_location(text).as_ref(), Ok(want), "{text}");
        let c = ok(&jwt(text, "sub", "cid"));
        assert_eq!(
            c.apis[0].jwt.as_ref().map(|j| &j.location),
            Some(want),
            "{text}"
        );
    }
}

#[test]
fn api_names() {
    for (url, want) in [
        ("/rest", "rest"),
        ("/", "root"),
        ("/a/b", "a_b"),
        ("/v1.2/x-y_z", "v1.2_x-y_z"),
        ("/a b", "a_b"),
        ("/é", "_"),
        ("/a%2Fb", "a_2Fb"),
    ] {
        assert_eq!(
            derive_name(&crate::router::normalize_path(url)),
            want,
            "{url}"
        );
    }
    let c = ok(
        r#"{"apis":[{"api_metadata":{"url":"/a/b/","hostname":"*"}},{"name":"given-1.0","api_metadata":{"url":"/","hostname":"*"}}]}"#,
    );
    assert_eq!(c.apis[0].name, "a_b");
    assert_eq!(c.apis[1].name, "given-1.0");
    let c = ok(r#"{"name":"single","api_metadata":{"url":"/x","hostname":"*"}}"#);
    assert_eq!(c.apis[0].name, "single");
}

#[test]
fn router_is_built() {
    let c = ok(&two(("a", "*", "/x"), ("b", "shop.com", "/x")));
    assert_eq!(c.router.len(), 2);
    assert_eq!(c.match_api("shop.com", "/x/1").map(|m| m.index), Some(1));
    assert_eq!(c.match_api("other", "/x/1").map(|m| m.index), Some(0));
}

#[test]
fn errors_name_the_api_and_the_field() {
    let rows: &[(&str, Option<&str>, &str, &str)] = &[
        (&jwt("h:cookie:", "sub", ""), Some("shop"), "api_metadata.jwt.location", r#""h:cookie:" needs a cookie name (h:cookie:<cookie name>)"#),
        (&rows::shop(r#""enable_blocking":1"#), Some("shop"), "api_metadata.enable_blocking", "must be a boolean (true or false), got number 1"),
        (&two(("a", "*", "/x"), ("b", "*", "/x")), None, "apis[1].api_metadata.url", r#"api "a" and api "b" both have hostname "*" and url "/x""#),
        (r#"{"deny_list":{"ip":["x"]}}"#, None, "deny_list.ip[0]", r#""x" is not an IPv4 or IPv6 address"#),
        (r#"{"analytics":{"batch_size":0}}"#, None, "analytics.batch_size", "analytics.batch_size, max_buffered and flush_interval_ms must be positive"),
        (r#"{"attack_list":{"cluster":"abs","path":"/x","max_body_bytes":33554433}}"#, None, "attack_list.max_body_bytes", "(33554433) is above 33554432 (32 MiB): Envoy drops larger HTTP-call responses, so such a feed could never load"),
        (r#"{"admin":{"path":"/a","key":"short"}}"#, None, "admin.key", "must be at least 16 characters"),
        ("[]", None, "", "plugin configuration must be a JSON object, got an array"),
    ];
    for (config, api, field, message) in rows {
        let e = parse(config.as_bytes()).unwrap_err();
        assert_eq!(
            (e.api.as_deref(), e.field.as_str(), e.message.as_str()),
            (*api, *field, *message),
            "{config}"
        );
    }
}
