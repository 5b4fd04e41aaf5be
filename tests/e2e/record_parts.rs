//! The record's optional parts (`analytics.record_request_headers`, `.record_response_headers`,
//! `.record_query_parameters`) against real Envoy: a part switched off is absent from the
//! record, everything else (URI, status, correlation id, identity, enforcement) stays.

use serde_json::{json, Value};

use crate::harness::Envoy;

/// One API `shop` with an API-key deny list and the `analytics` object given.
fn plugin(analytics: Value) -> String {
    json!({
        "apis": [{ "name": "shop", "api_metadata": {
            "url": "/shop", "hostname": "*", "apikey_header": "x-api-key", "enable_blocking": true } }],
        "deny_list": { "api_key": ["stolen-key"] },
        "analytics": analytics
    })
    .to_string()
}

const PARTS: [&str; 3] = [
    "HttpRequest.RequestHeaders",
    "HttpRequest.ResponseHeaders",
    "HttpRequest.QueryParameters",
];

#[test]
fn every_part_switched_off_leaves_the_rest_of_the_record() {
    let envoy = Envoy::start(&plugin(json!({
        "record_request_headers": false,
        "record_response_headers": false,
        "record_query_parameters": false
    })));
    let r = envoy.get(
        "/shop/items?id=7",
        &[("x-request-id", "parts-1"), ("x-api-key", "key-1")],
    );
    assert_eq!(r.status, 200);
    let l = envoy.record(1);
    let attrs = l.at("/attributes");
    for key in PARTS {
        assert!(attrs.get(key).is_none(), "{key} present: {}", l.raw);
    }
    assert_eq!(
        l.at("/attributes/HttpRequest.ResponseStatus"),
        200,
        "{}",
        l.raw
    );
    assert_eq!(
        l.at("/attributes/HttpRequest.RequestURI"),
        "/shop/items?id=7"
    );
    assert_eq!(l.at("/attributes/HttpRequest.CorrelationId"), "parts-1");
    assert_eq!(l.at("/ase/client/api_key"), "key-1");
    // Enforcement does not depend on the record.
    let blocked = envoy.get("/shop/items", &[("x-api-key", "stolen-key")]);
    assert_eq!(blocked.status, 403);
    let l = &envoy.records(2)[1];
    assert_eq!(
        l.at("/attributes/HttpRequest.ResponseStatus"),
        403,
        "{}",
        l.raw
    );
    assert_eq!(l.at("/ase/reason"), "deny_list:api_key");
}

#[test]
fn response_headers_alone_switched_off() {
    let envoy = Envoy::start(&plugin(json!({ "record_response_headers": false })));
    let r = envoy.get("/shop/items?id=7", &[("user-agent", "parts-test")]);
    assert_eq!(r.status, 200);
    let l = envoy.record(1);
    assert!(
        l.at("/attributes/HttpRequest.ResponseHeaders").is_null(),
        "{}",
        l.raw
    );
    assert_eq!(l.at("/attributes/HttpRequest.ResponseStatus"), 200);
    assert_eq!(
        l.at("/attributes/HttpRequest.RequestHeaders/user-agent"),
        json!(["parts-test"])
    );
    assert_eq!(
        l.at("/attributes/HttpRequest.QueryParameters"),
        json!({"id": ["7"]})
    );
}

#[test]
fn by_default_every_part_is_in_the_record() {
    let envoy = Envoy::start(&plugin(json!({})));
    assert_eq!(envoy.get("/shop/items?id=7", &[]).status, 200);
    let l = envoy.record(1);
    for key in PARTS {
        assert!(
            l.at(&format!("/attributes/{key}")).is_object(),
            "{key}: {}",
            l.raw
        );
    }
}
