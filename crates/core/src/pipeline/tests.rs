//! Table-driven tests of the whole pure pipeline over an in-memory store: configuration load →
//! request → (Outcome, Step), detected attacks, the admin API, and hostile input.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use super::*;
use crate::identity::IdType;
use crate::lists::{MemStore, Source};
use crate::record::{self, Exchange};
use crate::request::RequestView;
use crate::services::Redact;

const NOW_MS: u64 = 1_700_000_000_000;
const KEY: &str = "0123456789abcdef-admin";

fn config(ase: Value) -> String {
    json!({
        "ase": ase,
        "apis": [
            { "name": "shop", "api_metadata": {
                "protocol": "http", "url": "/shop", "hostname": "*", "cookie": "session",
                "oauth2_access_token": true, "is_token_mandatory": false,
                "apikey_header": "x-api-key", "enable_blocking": true,
                "jwt": { "location": "h:x-jwt", "username": "username", "clientid": "client_id" } } },
            { "name": "bank", "api_metadata": {
                "url": "/bank", "hostname": "*", "oauth2_access_token": true,
                "is_token_mandatory": true, "enable_blocking": true } },
            { "name": "watch", "api_metadata": {
                "url": "/watch", "hostname": "*", "oauth2_access_token": true,
                "is_token_mandatory": true, "apikey_qs": "key", "enable_blocking": false,
                "username_header": "x-user" } }
        ],
        "deny_list": { "ip": ["192.0.2.66"], "token": ["bad-token"], "api_key": ["stolen-key"],
                       "cookie": ["bad-cookie"], "username": ["eve"] },
        "allow_list": { "ip": ["192.0.2.10"] },
        "admin": { "path": "/_api_warden", "key": KEY }
    })
    .to_string()
}

fn runtime() -> Runtime {
    runtime_with(json!({}))
}

fn runtime_with(ase: Value) -> Runtime {
    Runtime::load(config(ase).as_bytes()).unwrap()
}

fn jwt(claims: Value) -> String {
    format!(
        "eyJhbGciOiJub25lIn0.{}.sig",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn req(method: &str, path: &str, peer: &str, headers: &[(&str, &str)]) -> Request {
    Request::parse(view(method, path, peer, headers))
}

fn view(method: &str, path: &str, peer: &str, headers: &[(&str, &str)]) -> RequestView {
    let mut all = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "shop.example.com".to_string()),
        (":scheme".to_string(), "http".to_string()),
    ];
    all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    RequestView::from_headers(all, Some(format!("{peer}:40000")))
}

fn get(path: &str, peer: &str, headers: &[(&str, &str)]) -> Request {
    req("GET", path, peer, headers)
}

/// The pipeline as the adapter drives it: the step, then the decision's effects carried out.
fn run(rt: &Runtime, r: &Request, store: &MemStore) -> (Outcome, Step) {
    run_at(rt, r, store, NOW_MS)
}

fn run_at(rt: &Runtime, r: &Request, store: &MemStore, now_ms: u64) -> (Outcome, Step) {
    let (o, step) = on_request_headers(rt, r, true, store, now_ms);
    for e in o.effects() {
        carry_out(rt, e, store, now_ms).unwrap();
    }
    (o, step)
}

fn blocked() -> Step {
    Step::Reply {
        status: 403,
        headers: Vec::new(),
        body: "Unauthorized".into(),
    }
}

fn reason(o: &Outcome) -> Option<&str> {
    o.decision.as_ref().and_then(Decision::reason)
}

fn would_block(o: &Outcome) -> Option<&str> {
    o.decision.as_ref().and_then(Decision::would_block)
}

fn verdict(o: &Outcome) -> Option<Verdict> {
    o.decision.as_ref().map(|d| d.verdict)
}

fn detected(store: &MemStore, now_ms: u64) -> Vec<Entry> {
    lists::dyn_entries(store, ListKind::Deny, IdType::Ip, now_ms / 1000)
}

/// The record the adapter would write for this outcome (must always be valid JSON).
fn record_of(r: &Request, o: &Outcome) -> Value {
    let x = Exchange {
        request: r.clone(),
        start_ms: NOW_MS,
        end_ms: NOW_MS + 1,
        outcome: o.clone(),
        ..Exchange::default()
    };
    serde_json::from_str(&record::build(&x, Redact::Hash)).unwrap()
}

struct Row {
    name: &'static str,
    req: Request,
    api: Option<&'static str>,
    step: Step,
    verdict: Verdict,
    reason: Option<&'static str>,
    would_block: Option<&'static str>,
    source: Option<Source>,
}

#[test]
fn decisions_table() {
    let eve = jwt(json!({"username": "eve", "client_id": "app-1"}));
    let alice = jwt(json!({"username": "alice", "client_id": "app-1"}));
    let allow = |name, req, api| Row {
        name,
        req,
        api,
        step: Step::Continue,
        verdict: Verdict::Allow,
        reason: None,
        would_block: None,
        source: None,
    };
    let block = |name, req, reason, source| Row {
        name,
        req,
        api: Some("shop"),
        step: blocked(),
        verdict: Verdict::Block,
        reason: Some(reason),
        would_block: None,
        source,
    };
    let rows = vec![
        allow(
            "plain request",
            get("/shop/items?id=1", "198.51.100.1", &[]),
            Some("shop"),
        ),
        allow(
            "good credentials",
            get(
                "/shop/items",
                "198.51.100.1",
                &[
                    ("authorization", "Bearer good-token"),
                    ("x-api-key", "good-key"),
                    ("cookie", "session=good"),
                    ("x-jwt", &alice),
                ],
            ),
            Some("shop"),
        ),
        block(
            "deny ip",
            get("/shop/items", "192.0.2.66", &[]),
            "deny_list:ip",
            Some(Source::Config),
        ),
        block(
            "deny token",
            get(
                "/shop/items",
                "198.51.100.1",
                &[("authorization", "Bearer bad-token")],
            ),
            "deny_list:token",
            Some(Source::Config),
        ),
        block(
            "deny token in the query",
            get("/shop/items?access_token=bad-token", "198.51.100.1", &[]),
            "deny_list:token",
            Some(Source::Config),
        ),
        block(
            "deny api key",
            get(
                "/shop/items",
                "198.51.100.1",
                &[("x-api-key", "stolen-key")],
            ),
            "deny_list:api_key",
            Some(Source::Config),
        ),
        block(
            "deny cookie",
            get(
                "/shop/items",
                "198.51.100.1",
                &[("cookie", "theme=dark; session=bad-cookie")],
            ),
            "deny_list:cookie",
            Some(Source::Config),
        ),
        block(
            "deny username from the jwt",
            get("/shop/items", "198.51.100.1", &[("x-jwt", &eve)]),
            "deny_list:username",
            Some(Source::Config),
        ),
        block(
            "first cause in identifier order",
            get(
                "/shop/items",
                "192.0.2.66",
                &[("authorization", "Bearer bad-token"), ("x-jwt", &eve)],
            ),
            "deny_list:ip",
            Some(Source::Config),
        ),
        Row {
            api: Some("bank"),
            ..block(
                "token missing",
                get("/bank/accounts", "198.51.100.2", &[]),
                "token_missing",
                None,
            )
        },
        allow(
            "token present on a mandatory-token api",
            get(
                "/bank/accounts",
                "198.51.100.2",
                &[("authorization", "Bearer ok")],
            ),
            Some("bank"),
        ),
        Row {
            reason: Some("allow_list:ip"),
            ..allow(
                "the allow list wins",
                get(
                    "/shop/items",
                    "192.0.2.10",
                    &[("authorization", "Bearer bad-token")],
                ),
                Some("shop"),
            )
        },
        Row {
            would_block: Some("deny_list:token"),
            source: Some(Source::Config),
            ..allow(
                "monitor mode: deny-listed token passes",
                get(
                    "/watch/x",
                    "198.51.100.3",
                    &[("authorization", "Bearer bad-token")],
                ),
                Some("watch"),
            )
        },
        Row {
            would_block: Some("deny_list:api_key"),
            source: Some(Source::Config),
            ..allow(
                "monitor mode: api key from the query",
                get(
                    "/watch/x?key=stolen-key&access_token=t",
                    "198.51.100.3",
                    &[],
                ),
                Some("watch"),
            )
        },
        Row {
            would_block: Some("deny_list:username"),
            source: Some(Source::Config),
            ..allow(
                "monitor mode: username header",
                get(
                    "/watch/x",
                    "198.51.100.3",
                    &[("x-user", "eve"), ("authorization", "Bearer t")],
                ),
                Some("watch"),
            )
        },
        Row {
            would_block: Some("token_missing"),
            ..allow(
                "monitor mode: token missing",
                get("/watch/x", "198.51.100.3", &[]),
                Some("watch"),
            )
        },
        allow(
            "unmatched: never blocked, even a deny-listed ip",
            get(
                "/elsewhere",
                "192.0.2.66",
                &[("authorization", "Bearer bad-token")],
            ),
            None,
        ),
        allow(
            "a prefix that is not a segment does not match",
            get("/shopping", "192.0.2.66", &[]),
            None,
        ),
        block(
            "dot segments are resolved before matching",
            get("/other/../shop/./items", "192.0.2.66", &[]),
            "deny_list:ip",
            Some(Source::Config),
        ),
    ];
    let rt = runtime();
    for row in rows {
        let store = MemStore::default();
        let (o, step) = run(&rt, &row.req, &store);
        let n = row.name;
        assert_eq!(step, row.step, "{n}");
        assert_eq!(o.api.as_ref().map(|m| m.name.as_str()), row.api, "{n}");
        assert_eq!(verdict(&o), Some(row.verdict), "{n}");
        assert_eq!(reason(&o), row.reason, "{n}");
        assert_eq!(would_block(&o), row.would_block, "{n}");
        assert_eq!(
            o.decision.as_ref().and_then(|d| d.source),
            row.source,
            "{n}"
        );
        assert!(!o.admin, "{n}");
        let ip = row.req.view.peer.as_deref().and_then(crate::parse::ip_text);
        assert_eq!(o.identity.client.ip, ip, "{n}");
        // Only a blocking token_missing deny-lists the client.
        let wrote = !detected(&store, NOW_MS).is_empty();
        assert_eq!(
            wrote,
            row.reason == Some("token_missing"),
            "{n}: detected entry"
        );
        // The record of every row is valid JSON and agrees with the outcome.
        let v = record_of(&row.req, &o);
        assert_eq!(v["service"], json!(row.api), "{n}");
        assert_eq!(v["ase"]["decision"], row.verdict.as_str(), "{n}");
        assert_eq!(v["ase"]["reason"], json!(row.reason), "{n}");
    }
}

#[test]
fn match_info_and_identity_reach_the_outcome() {
    let rt = runtime();
    let store = MemStore::default();
    let alice = jwt(json!({"username": "alice", "client_id": "app-1", "sub": "u1"}));
    let r = get(
        "/shop//items/?id=1",
        "198.51.100.1",
        &[
            ("x-jwt", &alice),
            ("authorization", "Bearer tok"),
            ("x-api-key", "k1"),
            ("cookie", "session=s1"),
        ],
    );
    let (o, step) = run(&rt, &r, &store);
    assert_eq!(step, Step::Continue);
    assert_eq!(
        o.api,
        Some(MatchInfo {
            name: "shop".into(),
            base_path: "/shop".into(),
            trailing_path: "/items".into(),
        })
    );
    let c = &o.identity.client;
    assert_eq!(c.ip.as_deref(), Some("198.51.100.1"));
    assert_eq!(c.token.as_deref(), Some("tok"));
    assert_eq!(c.api_key.as_deref(), Some("k1"));
    assert_eq!(c.cookie.as_deref(), Some("s1"));
    assert_eq!(c.username.as_deref(), Some("alice"));
    assert_eq!(c.client_id.as_deref(), Some("app-1"));
    assert_eq!(o.identity.identity_provider.as_deref(), Some("jwt:h:x-jwt"));
    let v = record_of(&r, &o);
    assert_eq!(
        v["attributes"]["Gateway"],
        json!({"_BasePath": "/shop", "_TrailingPath": "/items"})
    );
    assert_eq!(v["attributes"]["HttpRequest.ResourcePath"], "/items");
}

#[test]
fn firewall_off_turns_every_block_into_monitoring() {
    let rt = runtime_with(json!({"enable_firewall": false}));
    let store = MemStore::default();
    for (r, cause) in [
        (get("/shop/items", "192.0.2.66", &[]), "deny_list:ip"),
        (get("/bank/x", "198.51.100.5", &[]), "token_missing"),
    ] {
        let (o, step) = run(&rt, &r, &store);
        assert_eq!(step, Step::Continue, "{cause}");
        assert_eq!(verdict(&o), Some(Verdict::Allow));
        assert_eq!(would_block(&o), Some(cause));
        assert_eq!(reason(&o), None);
    }
    assert!(detected(&store, NOW_MS).is_empty());
}

#[test]
fn custom_block_response() {
    let rt = runtime_with(json!({"block_response": {
        "status": 451, "body": "{\"blocked\":true}",
        "headers": {"Content-Type": "application/json", "x-why": "deny"}
    }}));
    let (_, step) = run(
        &rt,
        &get("/shop/a", "192.0.2.66", &[]),
        &MemStore::default(),
    );
    assert_eq!(
        step,
        Step::Reply {
            status: 451,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-why".into(), "deny".into())
            ],
            body: "{\"blocked\":true}".into(),
        }
    );
}

#[test]
fn token_missing_deny_lists_the_ip_for_the_next_request() {
    let rt = runtime();
    let store = MemStore::default();
    let ip = "198.51.100.9";
    // Before: the client passes on an API without a mandatory token.
    let (o, _) = run(&rt, &get("/shop/a", ip, &[]), &store);
    assert_eq!(verdict(&o), Some(Verdict::Allow));

    let (o, step) = run(&rt, &get("/bank/a", ip, &[]), &store);
    assert_eq!(step, blocked());
    assert_eq!(reason(&o), Some("token_missing"));
    assert_eq!(
        o.decision.as_ref().and_then(Decision::detected_ip),
        Some(ip)
    );
    let entries = detected(&store, NOW_MS);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].value, ip);
    assert_eq!(entries[0].source, Source::Detected);
    assert_eq!(entries[0].expires_at, 0, "ttl 0: never expires");

    // The next request from that IP is blocked everywhere blocking is on, even with a token.
    let r = get("/shop/a", ip, &[("authorization", "Bearer fine")]);
    let (o, step) = run(&rt, &r, &store);
    assert_eq!(step, blocked());
    assert_eq!(reason(&o), Some("deny_list:ip"));
    assert_eq!(
        o.decision.as_ref().and_then(|d| d.source),
        Some(Source::Detected)
    );
    assert_eq!(record_of(&r, &o)["ase"]["list_source"], "detected");
    // Monitor-mode APIs still only monitor it.
    let (o, step) = run(&rt, &get("/watch/a?access_token=t", ip, &[]), &store);
    assert_eq!(step, Step::Continue);
    assert_eq!(would_block(&o), Some("deny_list:ip"));
    // Other clients are not affected.
    let (o, step) = run(&rt, &get("/shop/a", "198.51.100.10", &[]), &store);
    assert_eq!((step, verdict(&o)), (Step::Continue, Some(Verdict::Allow)));
    // A second miss does not add a duplicate.
    run(&rt, &get("/bank/a", ip, &[]), &store);
    assert_eq!(detected(&store, NOW_MS).len(), 1);
}

#[test]
fn detected_entries_expire_after_the_ttl() {
    let rt = runtime_with(json!({"detected_attack_ttl_s": 60}));
    let store = MemStore::default();
    let ip = "198.51.100.11";
    run(&rt, &get("/bank/a", ip, &[]), &store);
    let entries = detected(&store, NOW_MS);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].expires_at, NOW_MS / 1000 + 60);
    let at = |ms| on_request_headers(&rt, &get("/shop/a", ip, &[]), true, &store, ms).1;
    assert_eq!(at(NOW_MS + 59_000), blocked());
    assert_eq!(at(NOW_MS + 61_000), Step::Continue);
}

#[test]
fn detection_off_writes_nothing() {
    let rt = runtime_with(json!({"enable_ase_detected_attack": false}));
    let store = MemStore::default();
    let ip = "198.51.100.12";
    let (o, step) = run(&rt, &get("/bank/a", ip, &[]), &store);
    assert_eq!(step, blocked(), "the missing token itself is still blocked");
    assert_eq!(reason(&o), Some("token_missing"));
    assert!(detected(&store, NOW_MS).is_empty());
    let (_, step) = run(&rt, &get("/shop/a", ip, &[]), &store);
    assert_eq!(step, Step::Continue);
}

#[test]
fn no_client_ip_means_nothing_to_deny_list() {
    let rt = runtime();
    let store = MemStore::default();
    let mut r = get("/bank/a", "198.51.100.13", &[]);
    r.view.peer = None;
    let (o, step) = run(&rt, &r, &store);
    assert_eq!(step, blocked());
    assert_eq!(o.identity.client.ip, None);
    assert!(detected(&store, NOW_MS).is_empty());
}

fn admin_req(method: &str, path: &str, key: Option<&str>) -> Request {
    let h: Vec<(&str, &str)> = key.map(|k| (admin::KEY_HEADER, k)).into_iter().collect();
    req(method, path, "127.0.0.1", &h)
}

fn reply_json(step: &Step) -> (u32, Value) {
    match step {
        Step::Reply {
            status,
            headers,
            body,
        } => {
            assert_eq!(
                headers,
                &vec![("content-type".to_string(), "application/json".to_string())]
            );
            (*status, serde_json::from_str(body).unwrap())
        }
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[test]
fn admin_get_with_end_of_stream_replies_at_once() {
    let rt = runtime();
    let store = MemStore::default();
    let r = admin_req("GET", "/_api_warden/deny_list?type=ip", Some(KEY));
    let (o, step) = run(&rt, &r, &store);
    assert!(o.admin);
    assert_eq!(o.api, None);
    assert_eq!(o.decision, None);
    assert_eq!(o.identity.client.ip.as_deref(), Some("127.0.0.1"));
    let (status, body) = reply_json(&step);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"ip": [{"value": "192.0.2.66", "source": "config", "expires_at": null}]})
    );
    let v = record_of(&r, &o);
    assert_eq!(v["ase"]["admin"], true);
    assert_eq!(v["service"], Value::Null);

    let rows = [
        (admin_req("GET", "/_api_warden/deny_list", None), 401),
        (
            admin_req("GET", "/_api_warden/deny_list", Some("wrong-key-wrong-key")),
            401,
        ),
        (admin_req("GET", "/_api_warden/nope", Some(KEY)), 404),
        (admin_req("GET", "/_api_warden", Some(KEY)), 404),
        (admin_req("PATCH", "/_api_warden/deny_list", Some(KEY)), 405),
        (admin_req("POST", "/_api_warden/deny_list", Some(KEY)), 400),
        (
            admin_req("GET", "/_api_warden//allow_list/", Some(KEY)),
            200,
        ),
        (
            admin_req("GET", "/x/../_api_warden/allow_list", Some(KEY)),
            200,
        ),
    ];
    for (r, want) in rows {
        let (o, step) = run(&rt, &r, &store);
        assert!(o.admin, "{}", r.path);
        assert_eq!(reply_json(&step).0, want, "{} {}", r.view.method, r.path);
    }
}

#[test]
fn admin_post_waits_for_the_body_then_changes_the_lists() {
    let rt = runtime();
    let store = MemStore::default();
    let ip = "198.51.100.77";
    let post = admin_req("POST", "/_api_warden/deny_list", Some(KEY));
    let (o, step) = on_request_headers(&rt, &post, false, &store, NOW_MS);
    assert_eq!(step, Step::AwaitAdminBody);
    assert!(o.admin);
    let body = json!({"type": "ip", "value": ip, "ttl_s": 30}).to_string();
    let reply = admin_body(&rt, &post, body.as_bytes(), &store, NOW_MS);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(v["added"], true);
    assert_eq!(v["expires_at"], NOW_MS / 1000 + 30);

    let (o, step) = run(&rt, &get("/shop/a", ip, &[]), &store);
    assert_eq!(step, blocked());
    assert_eq!(
        o.decision.as_ref().and_then(|d| d.source),
        Some(Source::Admin)
    );
    // Expired after the ttl.
    let (_, step) =
        on_request_headers(&rt, &get("/shop/a", ip, &[]), true, &store, NOW_MS + 31_000);
    assert_eq!(step, Step::Continue);

    // DELETE removes it.
    let del = admin_req("DELETE", "/_api_warden/deny_list", Some(KEY));
    let (_, step) = on_request_headers(&rt, &del, false, &store, NOW_MS);
    assert_eq!(step, Step::AwaitAdminBody);
    let body = json!({"type": "ip", "value": ip}).to_string();
    assert_eq!(
        admin_body(&rt, &del, body.as_bytes(), &store, NOW_MS).status,
        200
    );
    assert_eq!(run(&rt, &get("/shop/a", ip, &[]), &store).1, Step::Continue);

    // Bad bodies and the size limit.
    for (b, want) in [
        (&b"not json"[..], 400),
        (&br#"{"type":"nope","value":"x"}"#[..], 400),
        (&br#"{"type":"ip","value":"not-an-ip"}"#[..], 400),
    ] {
        assert_eq!(admin_body(&rt, &post, b, &store, NOW_MS).status, want);
    }
    let big = vec![b' '; admin::MAX_BODY + 1];
    let r = admin_body(&rt, &post, &big, &store, NOW_MS);
    assert_eq!(r.status, 413);
    // The key is checked before the body is used.
    let anon = admin_req("POST", "/_api_warden/deny_list", None);
    let body = json!({"type": "ip", "value": "198.51.100.78"}).to_string();
    assert_eq!(
        admin_body(&rt, &anon, body.as_bytes(), &store, NOW_MS).status,
        401
    );
    assert_eq!(
        run(&rt, &get("/shop/a", "198.51.100.78", &[]), &store).1,
        Step::Continue
    );
}

#[test]
fn admin_step_shape() {
    assert_eq!(
        admin_step(admin::Reply {
            status: 201,
            body: "{}".into()
        }),
        Step::Reply {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into())],
            body: "{}".into()
        }
    );
}

#[test]
fn without_admin_settings_the_admin_path_is_an_ordinary_request() {
    let rt = Runtime::load(
        br#"{"apis": [{"api_metadata": {"url": "/", "hostname": "*", "enable_blocking": true}}],
             "deny_list": {"ip": ["192.0.2.66"]}}"#,
    )
    .unwrap();
    let store = MemStore::default();
    let r = admin_req("GET", "/_api_warden/deny_list", Some(KEY));
    let (o, step) = run(&rt, &r, &store);
    assert!(!o.admin);
    assert_eq!(step, Step::Continue);
    assert_eq!(o.api.map(|m| m.name), Some("root".to_string()));
    let (_, step) = run(
        &rt,
        &get("/_api_warden/deny_list", "192.0.2.66", &[]),
        &store,
    );
    assert_eq!(step, blocked());
    assert_eq!(admin_body(&rt, &r, b"{}", &store, NOW_MS).status, 404);
}

#[test]
fn configuration_load_table() {
    let full = config(json!({}));
    let rows: [(&str, Option<&str>); 9] = [
        ("", None),
        ("{}", None),
        (&full, None),
        ("not json", Some("not JSON")),
        ("[]", Some("must be a JSON object")),
        (
            r#"{"admin": {"path": "/a", "key": "short"}}"#,
            Some("admin.key"),
        ),
        (
            r#"{"analytics": {"redact": "scramble"}}"#,
            Some("analytics"),
        ),
        (
            r#"{"analytics": {"cluster": ""}}"#,
            Some("cluster is empty"),
        ),
        (
            r#"{"apis": [{"api_metadata": {"url": "x", "hostname": "*"}}]}"#,
            Some("must start with"),
        ),
    ];
    for (cfg, err) in rows {
        match (Runtime::load(cfg.as_bytes()), err) {
            (Ok(_), None) => {}
            (Err(e), Some(want)) => assert!(e.to_string().contains(want), "{cfg}: {e}"),
            (Ok(_), Some(want)) => panic!("{cfg}: loaded, expected an error with {want:?}"),
            (Err(e), None) => panic!("{cfg}: {e}"),
        }
    }
    let rt = Runtime::load(
        br#"{"analytics": {"redact": "omit", "cluster": "c", "batch_size": 5},
             "deny_list": {"ip": ["::1"]}}"#,
    )
    .unwrap();
    assert_eq!(rt.services.analytics.redact, Redact::Omit);
    assert_eq!(rt.services.analytics.batch_size, 5);
    assert!(rt.config_lists.contains(ListKind::Deny, IdType::Ip, "::1"));
    // An empty configuration passes everything and matches nothing.
    let rt = Runtime::load(b"").unwrap();
    let (o, step) = run(&rt, &get("/x", "192.0.2.66", &[]), &MemStore::default());
    assert_eq!((o.api, step), (None, Step::Continue));
}

/// A small deterministic generator (xorshift) for hostile inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn text(&mut self, max: usize) -> String {
        const PIECES: [&str; 24] = [
            "a", "/", "?", "&", "=", "%", "%2", "%zz", "%2e%2e", "..", ";", " ", "\t", "\"", ",",
            "\u{FFFD}", "é", "\u{0}", "Bearer ", "MAC id=", "eyJ", ".", "session=", "+",
        ];
        let n = (self.next() % max as u64) as usize;
        (0..n).map(|_| self.pick(&PIECES)).collect()
    }
}

fn hostile_requests() -> Vec<RequestView> {
    let huge = "x".repeat(1 << 20);
    let huge_jwt = jwt(json!({"username": "u".repeat(40_000)}));
    let mut out = vec![
        RequestView::default(),
        RequestView::from_headers(Vec::new(), None),
        view("", "", "", &[]),
        view("GET", "no-slash", "not-an-ip", &[]),
        view("GET", "/shop/%", "[::1", &[]),
        view(
            "GET",
            "/shop/%ff%fe?%ff=%fe&\u{FFFD}=\u{FFFD}",
            "[::1]",
            &[],
        ),
        view("GET", "//../../shop/../../..", "::ffff:1.2.3.4", &[]),
        view(
            "GET",
            &format!("/shop/{huge}?k={huge}"),
            "198.51.100.1",
            &[],
        ),
        view(
            "GET",
            "/shop/a",
            "198.51.100.1",
            &[
                ("authorization", &huge),
                ("cookie", &huge),
                ("x-jwt", &huge),
                ("x-api-key", &huge),
            ],
        ),
        view("GET", "/shop/a", "198.51.100.1", &[("x-jwt", &huge_jwt)]),
        view(
            "GET",
            "/shop/a",
            "198.51.100.1",
            &[
                ("authorization", "Bearer"),
                ("authorization", "bearer \u{FFFD}\u{FFFD}"),
                ("authorization", "MAC id=\"\\"),
                ("x-jwt", "a.b.c.d.e"),
                ("x-jwt", "..."),
                ("cookie", ";;;=;session"),
                ("cookie", "session=\""),
            ],
        ),
        view(
            "GET",
            "/watch/a?key=&key=%&access_token=",
            "198.51.100.1",
            &[("x-user", "\u{FFFD}"), ("x-forwarded-for", ",,,")],
        ),
        view(
            "\u{FFFD}",
            "/_api_warden/deny_list?limit=-1&type=\u{FFFD}",
            "1.1.1.1",
            &[(admin::KEY_HEADER, KEY)],
        ),
    ];
    let mut many: Vec<(String, String)> = (0..10_000)
        .map(|i| (format!("x-h{i}"), "v".to_string()))
        .collect();
    many.push((":path".into(), "/shop/a".into()));
    out.push(RequestView::from_headers(many, Some("1.2.3.4:1".into())));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let hosts = [
        "",
        "shop.example.com",
        "[::1]:80",
        "a:b:c",
        "@",
        "x.",
        "\u{FFFD}",
    ];
    let names = [
        "authorization",
        "cookie",
        "x-jwt",
        "x-api-key",
        "x-user",
        "x-forwarded-for",
        ":path",
    ];
    for _ in 0..1000 {
        let base = rng.pick(&["/shop", "/bank", "/watch", "/_api_warden", "/", ""]);
        let path = format!("{base}{}", rng.text(12));
        let mut h = vec![(":authority".to_string(), rng.pick(&hosts).to_string())];
        for _ in 0..(rng.next() % 6) {
            h.push((rng.pick(&names).to_string(), rng.text(10)));
        }
        let mut r = RequestView::from_headers(h, Some(rng.text(6)));
        r.method = rng
            .pick(&["GET", "POST", "", "DELETE", "\u{FFFD}"])
            .to_string();
        r.path = path;
        out.push(r);
    }
    out
}

#[test]
fn hostile_input_never_panics_and_always_yields_a_record() {
    let rt = runtime();
    let store = MemStore::default();
    for r in hostile_requests().into_iter().map(Request::parse) {
        for eos in [true, false] {
            let (o, step) = on_request_headers(&rt, &r, eos, &store, NOW_MS);
            match &step {
                Step::Continue => assert!(!o.admin),
                Step::Reply { status, .. } => {
                    assert!(o.admin || *status == 403, "{status} for {:?}", r.path)
                }
                Step::AwaitAdminBody => assert!(o.admin && !eos),
                Step::Call(_) | Step::Forward(_) | Step::AwaitBody { .. } => {
                    panic!("no external service is configured")
                }
            }
            if o.admin {
                let reply = admin_body(&rt, &r, r.view.path.as_bytes(), &store, NOW_MS);
                assert!((200..600).contains(&reply.status));
            }
            let v = record_of(&r, &o);
            assert!(v["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("outbound-")));
        }
    }
    // Huge credentials are not decoded and never block by themselves.
    let store = MemStore::default();
    let huge_jwt = jwt(json!({"username": "eve", "pad": "p".repeat(20_000)}));
    let (o, step) = run(
        &rt,
        &get("/shop/a", "198.51.100.1", &[("x-jwt", &huge_jwt)]),
        &store,
    );
    assert_eq!(step, Step::Continue);
    assert_eq!(o.identity.client.username, None);
    assert_eq!(
        o.identity.jwt.as_ref().map(|j| j.status),
        Some(crate::identity::JwtStatus::TooLarge)
    );
}

// ---- Edge cases from the pipeline's owner: TTL rounding, monitor mode, disguised admin paths.

fn owner_runtime(ase: &str) -> Runtime {
    let cfg = format!(
        r#"{{"ase": {ase},
            "apis": [{{"name": "api", "api_metadata": {{"url": "/api", "hostname": "*",
                "oauth2_access_token": true, "is_token_mandatory": true, "enable_blocking": true}}}}],
            "admin": {{"path": "/_api_warden", "key": "0123456789abcdef"}}}}"#
    );
    Runtime::load(cfg.as_bytes()).unwrap()
}

fn owner_get(path: &str, headers: &[(&str, &str)]) -> Request {
    let mut h = vec![
        (":method".to_string(), "GET".to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "shop.example".to_string()),
    ];
    h.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Request::parse(RequestView::from_headers(h, Some("192.0.2.10:4000".into())))
}

#[test]
fn a_detected_entry_lives_at_least_detected_attack_ttl_s() {
    let rt = owner_runtime(r#"{"detected_attack_ttl_s": 1}"#);
    let store = MemStore::default();
    // Detected at 1000.999 s.
    let (out, step) = run_at(&rt, &owner_get("/api/x", &[]), &store, 1_000_999);
    assert!(matches!(step, Step::Reply { status: 403, .. }), "{step:?}");
    assert_eq!(out.decision.unwrap().reason(), Some("token_missing"));
    let with_token = owner_get("/api/y", &[("authorization", "Bearer t")]);
    let (out, _) = run_at(&rt, &with_token, &store, 1_001_500);
    let d = out.decision.unwrap();
    assert_eq!(d.reason(), Some("deny_list:ip"));
    assert_eq!(d.source, Some(Source::Detected));
    let (out, step) = run_at(&rt, &with_token, &store, 1_002_000);
    assert_eq!(step, Step::Continue);
    assert_eq!(out.decision.unwrap().verdict, Verdict::Allow);
}

#[test]
fn monitor_mode_adds_no_detected_entry() {
    let rt = owner_runtime(r#"{"enable_firewall": false}"#);
    let store = MemStore::default();
    let (out, step) = on_request_headers(&rt, &owner_get("/api/x", &[]), true, &store, 5_000);
    assert_eq!(step, Step::Continue);
    assert_eq!(out.decision.unwrap().would_block(), Some("token_missing"));
    let (out, _) = on_request_headers(
        &rt,
        &owner_get("/api/y", &[("authorization", "Bearer t")]),
        true,
        &store,
        6_000,
    );
    assert_eq!(out.decision.unwrap(), Decision::allow());
}

#[test]
fn admin_paths_are_answered_locally_even_when_disguised() {
    let rt = owner_runtime("{}");
    let store = MemStore::default();
    for path in [
        "/_api_warden/deny_list",
        "//_api_warden/deny_list",
        "/x/../_api_warden/deny_list",
        "/_api_warden%2Fdeny_list",
        "/%5Fapi_warden/deny_list?x=1",
    ] {
        let (out, step) = on_request_headers(&rt, &owner_get(path, &[]), true, &store, 0);
        assert!(out.admin, "{path}");
        assert!(
            matches!(step, Step::Reply { status: 401, .. }),
            "{path}: {step:?}"
        );
    }
    let (out, step) = on_request_headers(&rt, &owner_get("/_api_wardenx", &[]), true, &store, 0);
    assert!(!out.admin);
    assert_eq!(step, Step::Continue);
    // A POST with a body and a wrong or missing key is answered at once, from its headers.
    for key in [None, Some("wrong")] {
        let h: Vec<(&str, &str)> = key.map(|k| (admin::KEY_HEADER, k)).into_iter().collect();
        let mut post = owner_get("/_api_warden/deny_list", &h);
        post.view.method = "POST".into();
        let (_, step) = on_request_headers(&rt, &post, false, &store, 0);
        assert!(
            matches!(step, Step::Reply { status: 401, .. }),
            "{key:?}: {step:?}"
        );
    }
    // With the right key it waits for the body.
    let mut post = owner_get(
        "/_api_warden/deny_list",
        &[(admin::KEY_HEADER, "0123456789abcdef")],
    );
    post.view.method = "POST".into();
    let (_, step) = on_request_headers(&rt, &post, false, &store, 0);
    assert_eq!(step, Step::AwaitAdminBody);
}

/// A decision service for the call-and-resume tests: asked for every matched request, it blocks
/// on 403 and lets everything else (200, other statuses, no answer) through.
#[derive(Debug)]
struct Checker;

impl External for Checker {
    fn request(
        &self,
        req: &Request,
        outcome: &mut Outcome,
        _end_of_stream: bool,
        _now_ms: u64,
    ) -> Option<Step> {
        let api = outcome.api.as_ref()?;
        Some(Step::Call(
            CallRequest::new("POST", "checker", "", "/check", 500)
                .header("x-api", &api.name)
                .body(req.view.path.clone().into_bytes()),
        ))
    }

    fn answer(&self, answer: &CallAnswer, outcome: &mut Outcome, _now_ms: u64) -> Step {
        if answer.status == Some(403) {
            if let Some(d) = outcome.decision.as_mut() {
                d.verdict = Verdict::Block;
            }
            return blocked();
        }
        Step::Continue
    }
}

/// The mock host's side of a call: dispatch records the call; the test answers it.
#[derive(Default)]
struct MockCalls {
    sent: std::cell::RefCell<Vec<CallRequest>>,
}

impl MockCalls {
    /// Drive one request the way the adapter does: on `Step::Call`, "dispatch" and resume with
    /// `answer`.
    fn drive(&self, rt: &Runtime, r: &Request, store: &MemStore, answer: CallAnswer) -> Step {
        let (mut o, step) = run(rt, r, store);
        match step {
            Step::Call(call) => {
                self.sent.borrow_mut().push(call);
                resume(rt, &answer, &mut o, NOW_MS)
            }
            other => other,
        }
    }
}

#[test]
fn a_step_can_call_out_and_resume_with_the_answer() {
    let mut rt = runtime();
    rt.external = Some(Box::new(Checker));
    let store = MemStore::default();
    let calls = MockCalls::default();
    let status = |s: Option<u16>| CallAnswer {
        status: s,
        ..CallAnswer::default()
    };
    let r = get("/shop/items?q=1", "198.51.100.20", &[]);
    assert_eq!(
        calls.drive(&rt, &r, &store, status(Some(200))),
        Step::Continue
    );
    assert_eq!(calls.drive(&rt, &r, &store, status(Some(403))), blocked());
    // A timeout or a failed connection is an answer too.
    assert_eq!(calls.drive(&rt, &r, &store, status(None)), Step::Continue);
    {
        let sent = calls.sent.borrow();
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[0].cluster, "checker");
        assert!(sent[0].headers.contains(&("x-api".into(), "shop".into())));
        assert_eq!(sent[0].body.as_deref(), Some(&b"/shop/items?q=1"[..]));
    }
    // A client the local checks already block is never sent; nor is an unmatched request.
    let denied = get("/shop/a", "192.0.2.66", &[]);
    assert_eq!(
        calls.drive(&rt, &denied, &store, status(Some(200))),
        blocked()
    );
    let unmatched = get("/other", "198.51.100.20", &[]);
    assert_eq!(
        calls.drive(&rt, &unmatched, &store, status(Some(403))),
        Step::Continue
    );
    assert_eq!(calls.sent.borrow().len(), 3);
    // Without an external service, resume goes on.
    let (mut o, _) = run(&runtime(), &r, &store);
    assert_eq!(
        resume(&runtime(), &status(Some(403)), &mut o, NOW_MS),
        Step::Continue
    );
}
