//! The inline protections through the whole pipeline: decoys, pattern enforcement, flow control,
//! their order, monitor mode and the allow list.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::json;

use super::*;
use crate::identity::IdType;
use crate::lists::{MemStore, Source};
use crate::request::RequestView;

const NOW_MS: u64 = 1_700_000_000_000; // 20 s into a minute
const ATTACKER: &str = "198.51.100.7";
const FRIEND: &str = "192.0.2.10";

fn runtime() -> Runtime {
    let cfg = json!({
        "ase": {"detected_attack_ttl_s": 600},
        "apis": [
            {"name": "shop", "api_metadata": {"url": "/shop", "hostname": "*", "cookie": "session",
                "oauth2_access_token": true, "enable_blocking": true,
                "decoy_config": {"decoy_enabled": true, "response_code": 200, "response_def": "OK",
                                 "response_message": "{\"users\": []}", "decoy_subpaths": ["/shop/admin"]},
                "api_pattern_enforcement": {"methods_allowed": ["GET", "POST"],
                                            "content_type_allowed": "application/json",
                                            "protocol_allowed": "http, https"},
                "flow_control": {"client_spike_threshold": "3/minute"}}},
            {"name": "trap", "api_metadata": {"url": "/trap", "hostname": "*", "enable_blocking": true,
                "decoy_config": {"decoy_enabled": true, "response_code": "404", "decoy_subpaths": []}}},
            {"name": "secure", "api_metadata": {"url": "/secure", "hostname": "*", "enable_blocking": true,
                "api_pattern_enforcement": {"protocol_allowed": ["https"], "http_redirect":
                    {"response_code": 301, "response_def": "Moved Permanently", "https_url": "https://secure.example"}}}},
            {"name": "watch", "api_metadata": {"url": "/watch", "hostname": "*", "enable_blocking": false,
                "decoy_config": {"decoy_enabled": true, "decoy_subpaths": ["/admin"]},
                "api_pattern_enforcement": {"methods_allowed": "GET"},
                "flow_control": {"client_spike_threshold": "1/minute"}}}
        ],
        "deny_list": {"ip": ["203.0.113.66"]},
        "allow_list": {"ip": [FRIEND]}
    });
    Runtime::load(cfg.to_string().as_bytes()).unwrap()
}

fn req(method: &str, path: &str, ip: &str, headers: &[(&str, &str)]) -> Request {
    let mut all = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "shop.example".to_string()),
        (":scheme".to_string(), "http".to_string()),
    ];
    all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Request::parse(RequestView::from_headers(all, Some(format!("{ip}:4000"))))
}

/// The pipeline as the adapter drives it (effects carried out), at `now_ms`.
fn run_at(rt: &Runtime, r: &Request, eos: bool, store: &MemStore, now_ms: u64) -> (Outcome, Step) {
    let (o, step) = on_request_headers(rt, r, eos, store, now_ms);
    for e in o.effects() {
        carry_out(rt, e, store, now_ms).unwrap();
    }
    (o, step)
}

fn run(rt: &Runtime, r: &Request, store: &MemStore) -> (Outcome, Step) {
    run_at(rt, r, true, store, NOW_MS)
}

fn status(step: &Step) -> u32 {
    match step {
        Step::Reply { status, .. } => *status,
        _ => 0,
    }
}

fn decision(o: &Outcome) -> &Decision {
    o.decision.as_ref().unwrap()
}

fn deny_entries(store: &MemStore, t: IdType) -> Vec<lists::Entry> {
    lists::dyn_entries(store, ListKind::Deny, t, NOW_MS / 1000)
}

#[test]
fn an_in_context_decoy_answers_and_deny_lists_the_attacker_everywhere() {
    let rt = runtime();
    let store = MemStore::default();
    let (o, step) = run(&rt, &req("GET", "/shop/admin/users", ATTACKER, &[]), &store);
    assert_eq!(
        step,
        Step::Reply {
            status: 200,
            headers: vec![],
            body: "{\"users\": []}".into()
        }
    );
    let d = decision(&o);
    assert!(d.decoy);
    assert_eq!((d.verdict, d.reason()), (Verdict::Block, Some("decoy")));
    assert_eq!(o.decoy_response_def.as_deref(), Some("OK"));
    let e = deny_entries(&store, IdType::Ip);
    assert_eq!(
        (e.len(), e[0].value.as_str(), e[0].source),
        (1, ATTACKER, Source::Decoy)
    );
    assert_eq!(e[0].expires_at, NOW_MS / 1000 + 600);
    // Its next real request, to any API that enforces, is blocked with the decoy source.
    let (o, step) = run(&rt, &req("GET", "/shop/items", ATTACKER, &[]), &store);
    assert_eq!(status(&step), 403);
    assert_eq!(decision(&o).reason(), Some("deny_list:ip"));
    assert_eq!(decision(&o).source, Some(Source::Decoy));
    // Decoy requests keep getting the decoy response; the rest of the API is served.
    assert_eq!(
        status(&run(&rt, &req("GET", "/shop/admin", ATTACKER, &[]), &store).1),
        200
    );
    let (_, step) = run(
        &rt,
        &req("GET", "/shop/administrator", "198.51.100.8", &[]),
        &store,
    );
    assert_eq!(step, Step::Continue);
    // Evasion spellings are decoys too.
    for p in [
        "//shop//admin",
        "/shop/x/../admin",
        "/shop/%61dmin",
        "/shop/admin;x=1",
    ] {
        let (o, _) = run(&rt, &req("GET", p, "198.51.100.9", &[]), &store);
        assert!(decision(&o).decoy, "{p}");
    }
}

#[test]
fn an_out_of_context_decoy_covers_the_whole_api() {
    let rt = runtime();
    let store = MemStore::default();
    for p in ["/trap", "/trap/", "/trap/a/b?c=d"] {
        let (o, step) = run(&rt, &req("GET", p, ATTACKER, &[]), &store);
        assert_eq!(status(&step), 404, "{p}");
        assert!(decision(&o).decoy, "{p}");
    }
    assert_eq!(deny_entries(&store, IdType::Ip).len(), 1);
}

#[test]
fn allow_listed_and_monitored_decoy_clients_are_answered_but_never_deny_listed() {
    let rt = runtime();
    let store = MemStore::default();
    let (o, step) = run(&rt, &req("GET", "/shop/admin", FRIEND, &[]), &store);
    assert_eq!(status(&step), 200);
    assert_eq!(decision(&o).reason(), Some("allow_list:ip"));
    assert!(decision(&o).decoy);
    let (o, step) = run(&rt, &req("GET", "/watch/admin", ATTACKER, &[]), &store);
    assert_eq!(status(&step), 200);
    assert_eq!(decision(&o).would_block(), Some("decoy"));
    assert_eq!(decision(&o).verdict, Verdict::Allow);
    assert!(deny_entries(&store, IdType::Ip).is_empty());
    // Without enable_ase_detected_attack a decoy answers but adds nothing.
    let mut quiet = runtime();
    quiet.config.ase.enable_ase_detected_attack = false;
    run(&quiet, &req("GET", "/trap/x", ATTACKER, &[]), &store);
    assert!(deny_entries(&store, IdType::Ip).is_empty());
}

#[test]
fn pattern_violations_answer_the_error_and_deny_list_token_else_cookie_else_ip() {
    let rt = runtime();
    let store = MemStore::default();
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let rows: [(Headers, IdType, &str); 3] = [
        (
            &[("authorization", "Bearer tok-1"), ("cookie", "session=c1")],
            IdType::Token,
            "tok-1",
        ),
        (&[("cookie", "session=c2")], IdType::Cookie, "c2"),
        (&[], IdType::Ip, "198.51.100.20"),
    ];
    for (headers, t, value) in rows {
        let (o, step) = run(
            &rt,
            &req("DELETE", "/shop/items/1", "198.51.100.20", headers),
            &store,
        );
        assert_eq!(
            step,
            Step::Reply {
                status: 401,
                headers: vec![("content-type".into(), "text/plain".into())],
                body: "401 Unauthorized".into()
            }
        );
        assert_eq!(decision(&o).reason(), Some("pattern:method"));
        let e = deny_entries(&store, t);
        assert!(
            e.iter()
                .any(|e| e.value == value && e.source == Source::Pattern),
            "{t:?}: {e:?}"
        );
    }
}

#[test]
fn content_type_is_checked_only_when_a_body_follows() {
    let rt = runtime();
    let store = MemStore::default();
    let xml = [("content-type", "text/xml")];
    let json_ct = [("content-type", "Application/JSON; charset=utf-8")];
    let (o, step) = run_at(
        &rt,
        &req("POST", "/shop/o", "198.51.100.30", &xml),
        false,
        &store,
        NOW_MS,
    );
    assert_eq!(status(&step), 401);
    assert_eq!(decision(&o).reason(), Some("pattern:content_type"));
    let ok = run_at(
        &rt,
        &req("POST", "/shop/o", "198.51.100.31", &json_ct),
        false,
        &store,
        NOW_MS,
    );
    assert_eq!(ok.1, Step::Continue);
    let no_body = run_at(
        &rt,
        &req("POST", "/shop/o", "198.51.100.32", &xml),
        true,
        &store,
        NOW_MS,
    );
    assert_eq!(no_body.1, Step::Continue);
}

#[test]
fn https_required_redirects_plain_http_without_deny_listing() {
    let rt = runtime();
    let store = MemStore::default();
    let (o, step) = run(&rt, &req("GET", "/secure/a?x=1", ATTACKER, &[]), &store);
    assert_eq!(
        step,
        Step::Reply {
            status: 301,
            headers: vec![(
                "location".into(),
                "https://secure.example/secure/a?x=1".into()
            )],
            body: String::new()
        }
    );
    assert_eq!(decision(&o).verdict, Verdict::Redirect);
    assert_eq!(decision(&o).reason(), Some("pattern:protocol"));
    assert!(deny_entries(&store, IdType::Ip).is_empty());
    let tls = [("x-forwarded-proto", "https")];
    assert_eq!(
        run(&rt, &req("GET", "/secure/a", ATTACKER, &tls), &store).1,
        Step::Continue
    );
}

#[test]
fn flow_control_limits_per_client_and_api_and_resets_in_the_next_window() {
    let rt = runtime();
    let store = MemStore::default();
    let get = |ip: &str| req("GET", "/shop/items", ip, &[]);
    for _ in 0..3 {
        assert_eq!(run(&rt, &get("198.51.100.40"), &store).1, Step::Continue);
    }
    let (o, step) = run_at(&rt, &get("198.51.100.40"), true, &store, NOW_MS + 5_000);
    assert_eq!(
        step,
        Step::Reply {
            status: 429,
            headers: vec![("retry-after".into(), "35".into())],
            body: String::new()
        }
    );
    assert_eq!(decision(&o).reason(), Some("flow_control"));
    assert!(o.effects().is_empty(), "flow control never deny-lists");
    assert_eq!(run(&rt, &get("198.51.100.41"), &store).1, Step::Continue);
    let next = run_at(&rt, &get("198.51.100.40"), true, &store, NOW_MS + 40_000);
    assert_eq!(next.1, Step::Continue);
}

#[test]
fn flow_control_spares_allow_listed_denied_and_monitored_clients() {
    let rt = runtime();
    let store = MemStore::default();
    for _ in 0..5 {
        let (o, step) = run(&rt, &req("GET", "/shop/items", FRIEND, &[]), &store);
        assert_eq!(step, Step::Continue);
        assert!(decision(&o).reason().is_none() || decision(&o).reason() == Some("allow_list:ip"));
    }
    // A denied client is blocked by the list and spends no budget.
    for _ in 0..5 {
        assert_eq!(
            status(&run(&rt, &req("GET", "/shop/x", "203.0.113.66", &[]), &store).1),
            403
        );
    }
    // Monitor mode: over the threshold passes with would_block.
    assert_eq!(
        run(&rt, &req("GET", "/watch/a", ATTACKER, &[]), &store).1,
        Step::Continue
    );
    let (o, step) = run(&rt, &req("GET", "/watch/a", ATTACKER, &[]), &store);
    assert_eq!(step, Step::Continue);
    assert_eq!(decision(&o).would_block(), Some("flow_control"));
}

#[test]
fn order_of_checks() {
    let rt = runtime();
    let store = MemStore::default();
    // decoy before pattern: a DELETE to the decoy sub-path is a decoy request.
    let (o, _) = run(
        &rt,
        &req("DELETE", "/shop/admin", "198.51.100.50", &[]),
        &store,
    );
    assert_eq!(decision(&o).reason(), Some("decoy"));
    // pattern before the lists: a denied client's bad method is a pattern violation.
    let (o, _) = run(&rt, &req("PUT", "/shop/x", "203.0.113.66", &[]), &store);
    assert_eq!(decision(&o).reason(), Some("pattern:method"));
    // the allow list cancels a pattern violation (forwarded, nothing added).
    let (o, step) = run(&rt, &req("PUT", "/shop/x", FRIEND, &[]), &store);
    assert_eq!(
        (step, decision(&o).reason()),
        (Step::Continue, Some("allow_list:ip"))
    );
    // monitor mode: a pattern violation is forwarded and marked.
    let (o, step) = run(&rt, &req("POST", "/watch/x", "198.51.100.51", &[]), &store);
    assert_eq!(
        (step, decision(&o).would_block()),
        (Step::Continue, Some("pattern:method"))
    );
    // A request matching no API is never checked.
    assert_eq!(
        run(&rt, &req("DELETE", "/other", ATTACKER, &[]), &store).1,
        Step::Continue
    );
}

#[test]
fn protections_are_counted_and_recorded() {
    use crate::stats::{request_counters, Counter};
    let rt = runtime();
    let store = MemStore::default();
    let counters =
        |o: &Outcome| request_counters(o.api.is_some(), &o.identity, o.decision.as_ref());
    let (o, _) = run(&rt, &req("GET", "/trap/x", ATTACKER, &[]), &store);
    let c = counters(&o);
    assert!(
        c.contains(&Counter::DecoyHits) && c.contains(&Counter::BlockedDecoy),
        "{c:?}"
    );
    assert!(c.contains(&Counter::DetectedAttacks));
    let (o, _) = run(&rt, &req("GET", "/secure/x", "198.51.100.60", &[]), &store);
    assert!(counters(&o).contains(&Counter::Redirects));
    let (o, _) = run(&rt, &req("PATCH", "/shop/x", "198.51.100.61", &[]), &store);
    assert!(counters(&o).contains(&Counter::BlockedPatternMethod));
    let x = crate::record::Exchange {
        request: req("GET", "/trap/x", ATTACKER, &[]),
        outcome: run(&rt, &req("GET", "/trap/x", ATTACKER, &[]), &store).0,
        ..crate::record::Exchange::default()
    };
    let v = crate::record::build_value(&x, crate::services::Redact::Hash);
    assert_eq!(v["ase"]["decoy"], json!(true));
    assert_eq!(v["ase"]["reason"], json!("decoy"));
}
