//! The decision table: firewall × enable_blocking × deny (each source) × allow, plus the
//! mandatory token.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::collections::HashMap;

use super::*;
use crate::config::BlockResponse;

#[derive(Default)]
struct Lists(HashMap<(ListKind, IdType, String), Source>);

impl ListCheck for Lists {
    fn find(&self, list: ListKind, t: IdType, value: &str) -> Option<Source> {
        self.0.get(&(list, t, value.to_string())).copied()
    }
}

fn ase(firewall: bool) -> Ase {
    Ase {
        enable_firewall: firewall,
        enable_ase_detected_attack: true,
        enable_xff: false,
        xff_num_trusted_hops: 0,
        detected_attack_ttl_s: 0,
        block_response: BlockResponse {
            status: 403,
            body: "Unauthorized".into(),
            headers: vec![],
        },
    }
}

fn api(blocking: bool) -> Api {
    Api {
        name: "shop".into(),
        url: "/shop".into(),
        hostname: "*".into(),
        cookie: None,
        oauth2_access_token: true,
        is_token_mandatory: false,
        apikey: None,
        enable_blocking: blocking,
        username_header: None,
        jwt: None,
        protect: Default::default(),
    }
}

fn client() -> Client {
    Client {
        ip: Some("192.0.2.1".into()),
        token: Some("tok".into()),
        api_key: Some("key".into()),
        cookie: Some("c00kie".into()),
        username: Some("alice".into()),
        client_id: Some("app".into()),
        cookie_decoded: None,
    }
}

#[test]
fn table() {
    let sources = [
        Source::Config,
        Source::AttackList,
        Source::Admin,
        Source::Detected,
    ];
    for firewall in [false, true] {
        for blocking in [false, true] {
            for t in IdType::ALL {
                for src in sources {
                    for allowed in [None, Some(IdType::Ip), Some(IdType::Username)] {
                        let c = client();
                        let mut l = Lists::default();
                        l.0.insert((ListKind::Deny, t, c.get(t).unwrap().to_string()), src);
                        if let Some(a) = allowed {
                            l.0.insert(
                                (ListKind::Allow, a, c.get(a).unwrap().to_string()),
                                Source::Config,
                            );
                        }
                        let d = decide(
                            Some(&api(blocking)),
                            &ase(firewall),
                            &c,
                            &l,
                            Local::default(),
                        );
                        let cause = format!("deny_list:{}", t.as_str());
                        let case =
                            format!("fw={firewall} blk={blocking} {t:?}/{src:?} allow={allowed:?}");
                        if let Some(a) = allowed {
                            assert_eq!(d.verdict, Verdict::Allow, "{case}");
                            assert_eq!(
                                d.reason().map(str::to_string),
                                Some(format!("allow_list:{}", a.as_str())),
                                "{case}"
                            );
                            assert_eq!(d.would_block(), None, "{case}");
                        } else if firewall && blocking {
                            assert_eq!(d.verdict, Verdict::Block, "{case}");
                            assert_eq!(d.reason(), Some(cause.as_str()), "{case}");
                            assert_eq!(d.source, Some(src), "{case}");
                        } else {
                            assert_eq!(d.verdict, Verdict::Allow, "{case}");
                            assert_eq!(d.reason(), None, "{case}");
                            assert_eq!(d.would_block(), Some(cause.as_str()), "{case}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn first_cause_in_identifier_order_wins() {
    let c = client();
    let mut l = Lists::default();
    l.0.insert(
        (ListKind::Deny, IdType::Username, "alice".into()),
        Source::Admin,
    );
    l.0.insert(
        (ListKind::Deny, IdType::Token, "tok".into()),
        Source::Config,
    );
    let d = decide(Some(&api(true)), &ase(true), &c, &l, Local::default());
    assert_eq!(d.reason(), Some("deny_list:token"));
}

#[test]
fn a_decoded_cookie_is_checked_against_the_deny_list_only() {
    let c = Client {
        cookie: Some("evil%2Dsession".into()),
        cookie_decoded: Some("evil-session".into()),
        ..Client::default()
    };
    let mut l = Lists::default();
    l.0.insert(
        (ListKind::Deny, IdType::Cookie, "evil-session".into()),
        Source::AttackList,
    );
    let d = decide(Some(&api(true)), &ase(true), &c, &l, Local::default());
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(d.reason(), Some("deny_list:cookie"));
    assert_eq!(d.source, Some(Source::AttackList));
    // The raw value is checked too (the feed lists cookies as ASE saw them).
    let mut l = Lists::default();
    l.0.insert(
        (ListKind::Deny, IdType::Cookie, "evil%2Dsession".into()),
        Source::Config,
    );
    assert_eq!(
        decide(Some(&api(true)), &ase(true), &c, &l, Local::default()).verdict,
        Verdict::Block
    );
    // The decoded form never allows: an allowed session cannot be claimed by encoding it.
    let c = Client {
        ip: Some("192.0.2.1".into()),
        cookie: Some("vip%2Dsession".into()),
        cookie_decoded: Some("vip-session".into()),
        ..Client::default()
    };
    let mut l = Lists::default();
    l.0.insert(
        (ListKind::Deny, IdType::Ip, "192.0.2.1".into()),
        Source::Config,
    );
    l.0.insert(
        (ListKind::Allow, IdType::Cookie, "vip-session".into()),
        Source::Config,
    );
    let d = decide(Some(&api(true)), &ase(true), &c, &l, Local::default());
    assert_eq!(d.reason(), Some("deny_list:ip"));
}

#[test]
fn unmatched_requests_are_never_blocked() {
    let c = client();
    let mut l = Lists::default();
    l.0.insert(
        (ListKind::Deny, IdType::Ip, "192.0.2.1".into()),
        Source::Config,
    );
    assert_eq!(
        decide(None, &ase(true), &c, &l, Local::default()),
        Decision::allow()
    );
}

#[test]
fn nothing_on_any_list_allows_without_reason() {
    let d = decide(
        Some(&api(true)),
        &ase(true),
        &client(),
        &Lists::default(),
        Local::default(),
    );
    assert_eq!(d, Decision::allow());
}

#[test]
fn mandatory_token() {
    let mut a = api(true);
    a.is_token_mandatory = true;
    let mut c = client();
    c.token = None;
    let d = decide(
        Some(&a),
        &ase(true),
        &c,
        &Lists::default(),
        Local::default(),
    );
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(d.reason(), Some("token_missing"));
    assert_eq!(d.detected_ip(), Some("192.0.2.1"));
    // Detection off: still blocked, nothing recorded.
    let mut s = ase(true);
    s.enable_ase_detected_attack = false;
    let d = decide(Some(&a), &s, &c, &Lists::default(), Local::default());
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(d.detected_ip(), None);
    // Without oauth2_access_token the flag means nothing.
    a.oauth2_access_token = false;
    assert_eq!(
        decide(
            Some(&a),
            &ase(true),
            &c,
            &Lists::default(),
            Local::default()
        ),
        Decision::allow()
    );
    // A token present: allowed.
    a.oauth2_access_token = true;
    assert_eq!(
        decide(
            Some(&a),
            &ase(true),
            &client(),
            &Lists::default(),
            Local::default()
        ),
        Decision::allow()
    );
    // Monitor mode.
    let d = decide(
        Some(&a),
        &ase(false),
        &c,
        &Lists::default(),
        Local::default(),
    );
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.would_block(), Some("token_missing"));
    // Allow list beats a missing token.
    let mut l = Lists::default();
    l.0.insert(
        (ListKind::Allow, IdType::Ip, "192.0.2.1".into()),
        Source::Admin,
    );
    let d = decide(Some(&a), &ase(true), &c, &l, Local::default());
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.detected_ip(), None);
}

#[test]
fn monitor_mode_never_records_a_detected_attack() {
    let mut a = api(true);
    a.is_token_mandatory = true;
    let mut c = client();
    c.token = None;
    for (firewall, blocking) in [(false, true), (true, false), (false, false)] {
        a.enable_blocking = blocking;
        let d = decide(
            Some(&a),
            &ase(firewall),
            &c,
            &Lists::default(),
            Local::default(),
        );
        assert_eq!(d.verdict, Verdict::Allow, "fw={firewall} blk={blocking}");
        assert_eq!(d.would_block(), Some("token_missing"));
        assert_eq!(d.detected_ip(), None, "fw={firewall} blk={blocking}");
    }
    a.enable_blocking = true;
    let d = decide(
        Some(&a),
        &ase(true),
        &c,
        &Lists::default(),
        Local::default(),
    );
    assert_eq!(d.detected_ip(), Some("192.0.2.1"));
}
