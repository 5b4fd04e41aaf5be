//! The walking skeleton: Envoy loads the filter, requests pass, the record reaches the access log,
//! and a configuration that is not JSON makes Envoy refuse to start.

use crate::harness::Envoy;

#[test]
fn requests_pass_and_the_record_reaches_the_access_log() {
    let envoy = Envoy::start("{}");
    let r = envoy.get(
        "/hello?x=1",
        &[("host", "shop.example.com"), ("user-agent", "e2e")],
    );
    assert_eq!(r.status, 200, "body: {}", r.body_text());
    assert_eq!(r.body_text(), "upstream ok");
    let line = envoy.record(1);
    assert_eq!(line.status, 200);
    assert_eq!(line.at("/action"), "outbound-GET");
    assert_eq!(line.at("/attributes/HttpRequest.RequestURI"), "/hello?x=1");
    assert_eq!(line.at("/attributes/HttpRequest.ResponseStatus"), 200);
    assert_eq!(envoy.upstream_paths(), vec!["/hello?x=1".to_string()]);
}

#[test]
fn empty_plugin_configuration_is_accepted() {
    let envoy = Envoy::start("");
    assert_eq!(envoy.get("/", &[]).status, 200);
}

#[test]
fn configuration_that_is_not_json_is_refused_with_a_clear_log_line() {
    let log = Envoy::refused("this is { not json");
    assert!(
        log.contains("plugin configuration is not JSON"),
        "log does not name the problem:\n{log}"
    );
}
