//! Fuzz the configuration entry point: APIs, `ase`, lists and the service sections.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = api_warden_core::config::load(data);
});
