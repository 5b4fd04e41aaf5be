//! The JWT builder of the tests: compact JWS strings with any header, payload (claims or raw
//! bytes) and signature, unpadded or padded; api-warden decodes tokens, it never verifies them.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::Value;

/// A token under construction; [`Jwt::build`] encodes it.
#[derive(Clone)]
pub struct Jwt {
    header: Vec<u8>,
    payload: Vec<u8>,
    signature: String,
    padded: bool,
}

/// An unsigned-looking JWT (`{"alg":"none","typ":"JWT"}`, signature `c2ln`) with these claims.
pub fn jwt(claims: &Value) -> String {
    Jwt::claims(claims).build()
}

impl Jwt {
    /// A token whose payload is these claims.
    pub fn claims(claims: &Value) -> Jwt {
        Jwt::raw(claims.to_string())
    }

    /// A token whose payload is exactly these bytes (duplicate keys, escapes, not JSON at all).
    pub fn raw(payload: impl AsRef<[u8]>) -> Jwt {
        Jwt {
            header: br#"{"alg":"none","typ":"JWT"}"#.to_vec(),
            payload: payload.as_ref().to_vec(),
            signature: "c2ln".into(),
            padded: false,
        }
    }

    /// Another header (raw JSON text).
    pub fn header(mut self, header: &str) -> Jwt {
        self.header = header.as_bytes().to_vec();
        self
    }

    /// Another signature (already base64url).
    pub fn signature(mut self, signature: &str) -> Jwt {
        self.signature = signature.into();
        self
    }

    /// Base64url with `=` padding.
    pub fn padded(mut self) -> Jwt {
        self.padded = true;
        self
    }

    /// `header.payload.signature`.
    pub fn build(&self) -> String {
        let b64 = |b: &[u8]| {
            if self.padded {
                URL_SAFE.encode(b)
            } else {
                URL_SAFE_NO_PAD.encode(b)
            }
        };
        format!(
            "{}.{}.{}",
            b64(&self.header),
            b64(&self.payload),
            self.signature
        )
    }

    /// An HS256 token over these claims signed by a real JWT library with `secret`.
    pub fn hs256(claims: &Value, secret: &[u8]) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .expect("encode JWT")
    }
}
