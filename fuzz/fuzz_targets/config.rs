//! Fuzz the plugin-configuration parser and validator, and the service settings.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = api_warden_core::pipeline::Runtime::load(data);
});
