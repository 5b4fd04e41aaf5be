//! Tests of pipeline.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[allow(unused_imports)]
use super::*;
