//! Tests of the record's optional parts (`analytics.record_*`) and of [`write`] into a reused
//! buffer: a part left out is absent and nothing else changes; the buffer gives the same text as
//! [`build`].

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::Value;

use super::tests::exchange;
use super::*;

fn parsed(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap()
}

#[test]
fn every_part_by_default_and_write_matches_build() {
    let x = exchange();
    let mut out = Vec::new();
    write(&mut out, &x, Redact::None, RecordParts::default());
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        build(&x, Redact::None)
    );
    let attrs = &parsed(&out)["attributes"];
    for key in [
        "HttpRequest.RequestHeaders",
        "HttpRequest.ResponseHeaders",
        "HttpRequest.QueryParameters",
    ] {
        assert!(attrs.get(key).is_some(), "{key} missing: {attrs}");
    }
}

#[test]
fn each_part_left_out_alone_and_the_rest_unchanged() {
    let x = exchange();
    let full = build_value(&x, Redact::Hash);
    let cases = [
        (
            "HttpRequest.RequestHeaders",
            RecordParts {
                request_headers: false,
                ..RecordParts::default()
            },
        ),
        (
            "HttpRequest.ResponseHeaders",
            RecordParts {
                response_headers: false,
                ..RecordParts::default()
            },
        ),
        (
            "HttpRequest.QueryParameters",
            RecordParts {
                query_parameters: false,
                ..RecordParts::default()
            },
        ),
    ];
    for (key, parts) in cases {
        let mut out = Vec::new();
        write(&mut out, &x, Redact::Hash, parts);
        let got = parsed(&out);
        assert!(got["attributes"].get(key).is_none(), "{key}: {got}");
        let mut want = full.clone();
        want["attributes"].as_object_mut().unwrap().remove(key);
        assert_eq!(got, want, "{key}");
    }
}

#[test]
fn a_reused_buffer_holds_only_the_last_record() {
    let x = exchange();
    let mut small = exchange();
    small.request.view.headers.clear();
    small.response_headers.clear();
    let mut out = Vec::new();
    write(&mut out, &x, Redact::None, RecordParts::default());
    let capacity = out.capacity();
    write(&mut out, &small, Redact::None, RecordParts::default());
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        build(&small, Redact::None)
    );
    assert!(out.capacity() >= capacity, "the buffer is kept, not shrunk");
    write(&mut out, &x, Redact::None, RecordParts::default());
    assert_eq!(String::from_utf8(out).unwrap(), build(&x, Redact::None));
}
