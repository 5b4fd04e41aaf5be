//! Fuzz JWT payload decoding and claim extraction.
#![no_main]
use libfuzzer_sys::fuzz_target;

use api_warden_core::jwt::{claim_text, decode_payload, AccessToken, ClaimRule};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(claims) = decode_payload(&s) {
        let _ = claim_text(&claims, "username", ClaimRule::Username);
        let _ = claim_text(&claims, "client_id", ClaimRule::Scalar);
        let _ = AccessToken::from_claims(&s, &claims, None, 1_800_000_000);
    }
});
