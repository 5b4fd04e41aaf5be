//! The record's JSON writer against serde_json: byte for byte the same on every shape and every
//! character.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::*;

fn same<T: Serialize + ?Sized>(v: &T) {
    let want = serde_json::to_vec(v).unwrap();
    let mut got = Vec::new();
    write(&mut got, v).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}

#[test]
fn every_character_is_escaped_as_serde_json_does() {
    let all: String = (0u32..0x800).filter_map(char::from_u32).collect();
    same(&all);
    for c in (0u8..0x80).map(char::from) {
        // Each character alone, and at every position of an 8-byte word and across words.
        for pad in 0..17 {
            let s = format!("{}{c}{}", "a".repeat(pad), "b".repeat(16 - pad));
            same(&s);
        }
    }
    for s in [
        "",
        "\"",
        "\\",
        "é日本\u{1F4A9}\"x",
        "\u{7f}\u{80}\u{ffff}",
        "\0\u{1f} \u{20}",
    ] {
        same(s);
        same(&s.repeat(9));
    }
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Unit,
    Newtype(u8),
    Tuple(i32, String),
    Struct { a: bool, b: Option<f64> },
}

#[derive(Serialize)]
struct Shape<'a> {
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<u8>,
    none: Option<&'a str>,
    ints: (i8, i16, i32, i64, u8, u16, u32, u64),
    extremes: [i64; 2],
    big: (u128, i128),
    floats: Vec<f64>,
    kinds: Vec<Kind>,
    map: BTreeMap<String, Vec<&'a str>>,
    int_keys: BTreeMap<u32, bool>,
    bytes: &'a [u8],
    unit: (),
    value: serde_json::Value,
    empty: Vec<u8>,
    empty_map: BTreeMap<String, u8>,
    ch: char,
}

#[test]
fn every_shape_is_written_as_serde_json_writes_it() {
    let shape = Shape {
        text: "GET /a?b=\"c\"\n",
        skipped: None,
        none: None,
        ints: (-8, -16, -32, -64, 8, 16, 32, 64),
        extremes: [i64::MIN, i64::MAX],
        big: (u128::MAX, i128::MIN),
        floats: vec![0.0, -0.0, 1.5, 1e300, f64::NAN, f64::INFINITY, 0.1 + 0.2],
        kinds: vec![
            Kind::Unit,
            Kind::Newtype(7),
            Kind::Tuple(-1, "t".into()),
            Kind::Struct {
                a: true,
                b: Some(2.5),
            },
        ],
        map: [
            ("x-h".to_string(), vec!["1", "2"]),
            ("\"k\"".to_string(), vec![]),
        ]
        .into_iter()
        .collect(),
        int_keys: [(1, true), (20, false)].into_iter().collect(),
        bytes: b"\x00\xff",
        unit: (),
        value: json!({"n": 1, "f": 1.25, "s": "v\t", "a": [null, true, {"z": -3}]}),
        empty: vec![],
        empty_map: BTreeMap::new(),
        ch: '"',
    };
    same(&shape);
}

#[test]
fn a_map_key_that_is_not_a_string_is_an_error() {
    let m: BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into_iter().collect();
    let mut out = Vec::new();
    assert!(write(&mut out, &m).is_err());
    assert!(serde_json::to_vec(&m).is_err());
}
