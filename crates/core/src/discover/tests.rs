//! The seeds' jwt table, grouping, naming, and the files passing the filter's checks.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;
use crate::ase_files::check_folder;

fn meta(jwt: Option<Value>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("url".into(), json!("/"));
    if let Some(j) = jwt {
        m.insert("jwt".into(), j);
    }
    m
}

#[test]
fn the_seeds_jwt_table() {
    let empty = json!({"location": "", "username": "", "clientid": ""});
    assert_eq!(discovered_jwt(&meta(None)), Ok(empty.clone()));
    assert_eq!(
        discovered_jwt(&meta(Some(
            json!({"username": "", "clientid": "", "location": ""})
        ))),
        Ok(empty)
    );
    let full = json!({"location": "h:Authorization:Bearer", "username": "sub", "clientid": "azp"});
    assert_eq!(discovered_jwt(&meta(Some(full.clone()))), Ok(full));
    assert!(discovered_jwt(&meta(Some(json!({}))))
        .unwrap_err()
        .contains("lacks location and username and clientid"));
    assert!(
        discovered_jwt(&meta(Some(json!({"username": "", "location": ""}))))
            .unwrap_err()
            .contains("lacks clientid")
    );
}

fn seen(host: &str, path: &str, status: u16) -> Seen {
    Seen {
        host: Some(host.into()),
        scheme: Some("https".into()),
        path: path.into(),
        status,
        client: Some("192.0.2.1".into()),
        hints: vec!["bearer token".into()],
    }
}

#[test]
fn groups_by_host_and_segments_2xx_only_known_skipped() {
    let mut d = Discovery {
        depth: 1,
        ..Discovery::default()
    };
    d.known.insert(("*".into(), "/known".into()));
    for s in [
        seen("Shop.example.com:8443", "/shop/cart?x=1", 200),
        seen("shop.example.com", "/shop", 204),
        seen("shop.example.com", "/fail", 500),
        seen("api.example.com", "/all/x", 200),
        seen("api.example.com", "/known/x", 200),
        seen("api.example.com", "/", 200),
    ] {
        d.observe(&s);
    }
    let jwt = json!({"location": "", "username": "", "clientid": ""});
    let apis = d.apis(&jwt);
    let got: Vec<(String, String, String, u64)> = apis
        .iter()
        .map(|(n, v, g)| {
            (
                n.clone(),
                v["api_metadata"]["hostname"].as_str().unwrap().into(),
                v["api_metadata"]["url"].as_str().unwrap().into(),
                g.requests,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "allx".to_string(),
                "api.example.com".to_string(),
                "/all".to_string(),
                1
            ),
            (
                "shop".to_string(),
                "shop.example.com".to_string(),
                "/shop".to_string(),
                2
            ),
        ]
    );
    assert_eq!(d.skipped, 3);
    // The files pass lint and load in the filter.
    let files = apis
        .iter()
        .map(|(n, v, _)| (format!("{n}.json"), v.to_string().into_bytes()))
        .collect();
    let f = check_folder(files);
    assert!(!f.has_errors(), "{:?}", f.findings);
    assert_eq!(apis[1].1["api_metadata"]["protocol"], "https");
}

#[test]
fn names_follow_the_rules_and_are_unique() {
    let mut taken = BTreeSet::new();
    for (base, want) in [
        ("/shop", "shop"),
        ("/shop", "shop_2"),
        ("/v1/orders", "v1_orders"),
        ("/_x", "api_x"),
        ("/a.b", "a_b"),
        ("/model", "modelx"),
    ] {
        let n = api_name(base, &taken);
        assert_eq!(n, want);
        assert!(check_name(&n).is_ok());
        taken.insert(n);
    }
    assert_eq!(base_path("/a/b/c/d", 2).as_deref(), Some("/a/b"));
    assert_eq!(base_path("/?q", 1), None);
}
