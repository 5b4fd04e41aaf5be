//! The counter names, the request-to-counter table, the list gauges.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;
use crate::config::IdLists;
use crate::lists::{self, Entry, Feed, MemStore, Source};

fn decision(verdict: Verdict, cause: Option<Cause>, mode: Mode) -> Decision {
    Decision {
        verdict,
        cause,
        mode,
        source: None,
        ..Decision::allow()
    }
}

fn jwt(status: JwtStatus) -> Identity {
    Identity {
        jwt: Some(crate::identity::JwtOutcome {
            status,
            error: None,
        }),
        ..Identity::default()
    }
}

#[test]
fn names_are_unique_and_prefixed() {
    let mut names: Vec<&str> = Counter::ALL.iter().map(|c| c.name()).collect();
    let gauges = list_gauge_names();
    names.extend(gauges.iter().map(String::as_str));
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n, "duplicate metric names");
    assert!(names.iter().all(|n| n.starts_with("api_warden.")));
    assert_eq!(gauges.len(), 25);
    assert!(gauges.contains(&"api_warden.lists.deny_list.api_key.attack_list".to_string()));
    assert!(!gauges.contains(&"api_warden.lists.allow_list.ip.attack_list".to_string()));
}

#[test]
fn request_counters_table() {
    use Counter::*;
    let id = Identity::default();
    let block = |c: Cause| decision(Verdict::Block, Some(c), Mode::Enforced);
    let rows: Vec<(bool, Identity, Option<Decision>, Vec<Counter>)> = vec![
        (true, id.clone(), None, vec![RequestsTotal, RequestsAllowed]),
        (
            false,
            id.clone(),
            Some(Decision::allow()),
            vec![RequestsTotal, RequestsUnmatched, RequestsAllowed],
        ),
        (
            true,
            id.clone(),
            Some(block(Cause::DenyList(IdType::Ip))),
            vec![RequestsTotal, RequestsBlocked, BlockedDenyIp],
        ),
        (
            true,
            id.clone(),
            Some(block(Cause::DenyList(IdType::Token))),
            vec![RequestsTotal, RequestsBlocked, BlockedDenyToken],
        ),
        (
            true,
            id.clone(),
            Some(block(Cause::DenyList(IdType::ApiKey))),
            vec![RequestsTotal, RequestsBlocked, BlockedDenyApiKey],
        ),
        (
            true,
            id.clone(),
            Some(block(Cause::DenyList(IdType::Cookie))),
            vec![RequestsTotal, RequestsBlocked, BlockedDenyCookie],
        ),
        (
            true,
            id.clone(),
            Some(block(Cause::DenyList(IdType::Username))),
            vec![RequestsTotal, RequestsBlocked, BlockedDenyUsername],
        ),
        (
            true,
            id.clone(),
            Some(Decision {
                effects: vec![crate::decision::Effect::AddDetected {
                    id_type: IdType::Ip,
                    value: "1.2.3.4".into(),
                    source: Source::Detected,
                }],
                ..block(Cause::TokenMissing)
            }),
            vec![
                RequestsTotal,
                DetectedAttacks,
                RequestsBlocked,
                BlockedTokenMissing,
            ],
        ),
        (
            true,
            id.clone(),
            Some(decision(
                Verdict::Allow,
                Some(Cause::DenyList(IdType::Ip)),
                Mode::Monitored,
            )),
            vec![RequestsTotal, RequestsMonitored, RequestsAllowed],
        ),
        (
            true,
            id.clone(),
            Some(decision(
                Verdict::Allow,
                Some(Cause::DenyList(IdType::Ip)),
                Mode::AllowListed(IdType::Ip),
            )),
            vec![RequestsTotal, RequestsAllowed],
        ),
        (
            true,
            jwt(JwtStatus::Invalid),
            Some(Decision::allow()),
            vec![RequestsTotal, JwtInvalid, RequestsAllowed],
        ),
        (
            true,
            jwt(JwtStatus::TooLarge),
            Some(Decision::allow()),
            vec![RequestsTotal, JwtTooLarge, RequestsAllowed],
        ),
        (
            true,
            jwt(JwtStatus::Absent),
            Some(Decision::allow()),
            vec![RequestsTotal, RequestsAllowed],
        ),
    ];
    for (matched, identity, d, want) in rows {
        assert_eq!(
            request_counters(matched, &identity, d.as_ref()),
            want,
            "{matched} {:?} {d:?}",
            identity.jwt
        );
    }
}

#[test]
fn list_gauges_follow_config_dynamic_and_feed() {
    let deny = IdLists {
        ip: vec!["192.0.2.1".into(), "192.0.2.2".into()],
        username: vec!["eve".into()],
        ..IdLists::default()
    };
    let allow = IdLists {
        cookie: vec!["c".into()],
        ..IdLists::default()
    };
    let config = ConfigLists::new(&deny, &allow);
    let store = MemStore::default();
    let g = |store: &MemStore| -> std::collections::HashMap<String, u64> {
        list_gauges(&Meta::load(store).0, &config)
            .into_iter()
            .collect()
    };
    let before = g(&store);
    assert_eq!(before.len(), 25);
    assert_eq!(before["api_warden.lists.deny_list.ip.config"], 2);
    assert_eq!(before["api_warden.lists.deny_list.username.config"], 1);
    assert_eq!(before["api_warden.lists.allow_list.cookie.config"], 1);
    assert_eq!(before.values().sum::<u64>(), 4);

    let add = |list, t, v: &str| {
        let e = Entry {
            value: v.into(),
            source: Source::Admin,
            expires_at: 0,
        };
        lists::add(&store, list, t, e, 0).unwrap();
    };
    add(ListKind::Deny, IdType::Token, "t1");
    add(ListKind::Deny, IdType::Token, "t2");
    add(ListKind::Allow, IdType::Ip, "198.51.100.1");
    let mut feed = Feed::default();
    feed.values[2] = vec!["k1".into(), "k2".into(), "k3".into()];
    feed.values[4] = vec!["mallory".into()];
    lists::replace_feed(&store, &feed).unwrap();
    let after = g(&store);
    assert_eq!(after["api_warden.lists.deny_list.token.dynamic"], 2);
    assert_eq!(after["api_warden.lists.allow_list.ip.dynamic"], 1);
    assert_eq!(after["api_warden.lists.deny_list.api_key.attack_list"], 3);
    assert_eq!(after["api_warden.lists.deny_list.username.attack_list"], 1);
    assert_eq!(after["api_warden.lists.deny_list.ip.config"], 2);
    assert_eq!(after.values().sum::<u64>(), 4 + 3 + 4);
}
