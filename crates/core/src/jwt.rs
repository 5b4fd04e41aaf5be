//! JWT payload decoding and claim extraction, as ASE does it: decode, never validate (no
//! signature, issuer or audience check). Also builds the PingAuthorize-shaped [`AccessToken`].
//! Pure: the current time is a parameter. No host calls.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};

/// Tokens longer than this many bytes are reported [`JwtError::TooLarge`] without decoding.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A decoded JWT payload: the claims object.
pub type Claims = Map<String, Value>;

/// Why a token could not be used. The variants match the record's JWT statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// The token or a claim is malformed; the text says why.
    Invalid(String),
    /// The token is longer than [`MAX_TOKEN_BYTES`].
    TooLarge,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::Invalid(reason) => f.write_str(reason),
            JwtError::TooLarge => write!(f, "token is longer than {MAX_TOKEN_BYTES} bytes"),
        }
    }
}

impl std::error::Error for JwtError {}

/// base64url, padding optional, trailing bits tolerated (decode-only, never validate).
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decode the payload (claims) of a compact JWS without validating anything.
///
/// The token must have exactly 3 dot-separated parts (a 5-part JWE is rejected); only the payload
/// is decoded: base64url with or without `=` padding — the standard alphabet's `+` and `/` are
/// accepted too, for tokens built by hand — holding a JSON object. JSON nested deeper than
/// serde_json's limit (128) is rejected, not recursed into. Tokens over [`MAX_TOKEN_BYTES`] are
/// [`JwtError::TooLarge`] before any other work.
pub fn decode_payload(token: &str) -> Result<Claims, JwtError> {
    decode_claims(token, |_| true)
}

/// The claims [`AccessToken::from_claims`] reads.
pub const ACCESS_TOKEN_CLAIMS: [&str; 13] = [
    "aud",
    "azp",
    "cid",
    "client_id",
    "exp",
    "iat",
    "iss",
    "nbf",
    "preferred_username",
    "scope",
    "scp",
    "sub",
    "username",
];

/// As [`decode_payload`], keeping only the claims `keep` accepts: the others are checked as
/// JSON (a malformed payload is rejected exactly as by [`decode_payload`]) but never built,
/// which spares the allocations of a big token's unused claims.
pub fn decode_claims(token: &str, keep: impl Fn(&str) -> bool) -> Result<Claims, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        let n = token.split('.').count();
        return Err(invalid(format!("expected 3 parts, found {n}")));
    };
    if payload.is_empty() {
        return Err(invalid("payload is empty".into()));
    }
    // base64url first; the standard alphabet only when that fails (a token built by hand).
    let bytes = B64URL
        .decode(payload.as_bytes())
        .or_else(|e| match payload.contains(['+', '/']) {
            true => B64URL.decode(payload.replace('+', "-").replace('/', "_")),
            false => Err(e),
        })
        .map_err(|_| invalid("payload is not valid base64url".into()))?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let read = serde::Deserializer::deserialize_any(&mut de, PayloadVisitor { keep: &keep })
        .and_then(|p| de.end().map(|()| p));
    match read {
        Ok(Some(claims)) => Ok(claims),
        Ok(None) => Err(invalid("payload is not a JSON object".into())),
        Err(e) => Err(invalid(format!("payload is not valid JSON: {e}"))),
    }
}

/// Reads a JSON payload: `Some(claims)` for an object (only the kept claims built), `None` for
/// any other JSON value (read to its end, so a syntax error still shows).
struct PayloadVisitor<'k, K> {
    keep: &'k K,
}

/// A JSON value read and dropped, through the same `deserialize_any` that builds a [`Value`], so
/// it is checked exactly alike (strings, numbers, serde_json's nesting limit) but never built.
/// (serde's `IgnoredAny` skips without the nesting limit, which would accept a token that
/// [`decode_payload`] refuses.)
#[derive(Clone, Copy)]
struct Skip;

impl<'de> serde::de::DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Skip {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A claim name, kept (owned) or skipped.
struct KeySeed<'k, K> {
    keep: &'k K,
}

impl<'de, K: Fn(&str) -> bool> serde::de::DeserializeSeed<'de> for KeySeed<'_, K> {
    type Value = Option<String>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, K: Fn(&str) -> bool> serde::de::Visitor<'de> for KeySeed<'_, K> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a claim name")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<String>, E> {
        Ok((self.keep)(v).then(|| v.to_string()))
    }
}

impl<'de, K: Fn(&str) -> bool> serde::de::Visitor<'de> for PayloadVisitor<'_, K> {
    type Value = Option<Claims>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut claims = Claims::new();
        while let Some(key) = map.next_key_seed(KeySeed { keep: self.keep })? {
            match key {
                Some(k) => {
                    claims.insert(k, map.next_value::<Value>()?);
                }
                None => map.next_value_seed(Skip)?,
            }
        }
        Ok(Some(claims))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

fn invalid(reason: String) -> JwtError {
    JwtError::Invalid(reason)
}

/// Which rule a claim is read with: arrays are accepted only for the username claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRule {
    /// The username claim: an array yields its first element (string or number).
    Username,
    /// Any other claim (client id): a string or number only.
    Scalar,
}

/// Read claim `name` as text: a string as is, a number as decimal text (integers without `.0`,
/// floats as serde_json prints them). With [`ClaimRule::Username`] an array yields its first
/// element. Everything else (missing, empty string, object, bool, null, other arrays) is an
/// [`JwtError::Invalid`] whose text names the claim.
pub fn claim_text(claims: &Claims, name: &str, rule: ClaimRule) -> Result<String, JwtError> {
    let value = claims
        .get(name)
        .ok_or_else(|| invalid(format!("claim \"{name}\" missing")))?;
    let (value, what) = match (value, rule) {
        (Value::Array(items), ClaimRule::Username) => (
            items
                .first()
                .ok_or_else(|| invalid(format!("claim \"{name}\" is an empty array")))?,
            "is an array whose first element is",
        ),
        (Value::Array(_), ClaimRule::Scalar) => {
            return Err(invalid(format!(
                "claim \"{name}\" is an array; arrays are supported only for the username claim"
            )))
        }
        (v, _) => (v, "is"),
    };
    match scalar_text(value) {
        Some(s) if s.is_empty() => Err(invalid(format!("claim \"{name}\" is empty"))),
        Some(s) => Ok(s),
        None => Err(invalid(format!(
            "claim \"{name}\" {what} {}; expected a string or number",
            kind(value)
        ))),
    }
}

/// A string or number as text; `None` for every other JSON type.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The parsed access token, with PingAuthorize's `HttpRequest.AccessToken` field names (RFC 7662
/// introspection style). Unknown fields are omitted when serialized.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AccessToken {
    /// The token exactly as the client sent it.
    pub access_token: String,
    /// Whether `now` lies in [`nbf`, `exp`); `true` when neither claim is present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// `aud`, always an array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<Vec<String>>,
    /// `client_id`, else `cid`, else `azp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `exp` as RFC 3339 UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// `iat` as RFC 3339 UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    /// `iss`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `nbf` as RFC 3339 UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// `scope` (space-separated string or array), else `scp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<String>>,
    /// `sub`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Always `bearer`.
    pub token_type: String,
    /// `true` iff the token has a `sub` claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_token: Option<bool>,
    /// The configured username claim's value, else `username`, else `preferred_username`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl AccessToken {
    /// An opaque (non-JWT) token: only the token and its type are known.
    pub fn opaque(token: &str) -> AccessToken {
        AccessToken {
            access_token: token.to_string(),
            token_type: "bearer".to_string(),
            ..AccessToken::default()
        }
    }

    /// Build from decoded claims. `username` is the value already extracted from the configured
    /// username claim, if any; `now_unix_s` decides `active`.
    pub fn from_claims(
        token: &str,
        claims: &Claims,
        username: Option<String>,
        now_unix_s: i64,
    ) -> AccessToken {
        let text = |name: &str| claims.get(name).and_then(scalar_text);
        let exp = claims.get("exp").and_then(numeric_date);
        let nbf = claims.get("nbf").and_then(numeric_date);
        let iat = claims.get("iat").and_then(numeric_date);
        let active = exp.map_or(true, |e| now_unix_s < e) && nbf.map_or(true, |n| now_unix_s >= n);
        AccessToken {
            access_token: token.to_string(),
            active: Some(active),
            audience: claims.get("aud").and_then(string_list),
            client_id: text("client_id")
                .or_else(|| text("cid"))
                .or_else(|| text("azp")),
            expiration: exp.and_then(rfc3339),
            issued_at: iat.and_then(rfc3339),
            issuer: text("iss"),
            not_before: nbf.and_then(rfc3339),
            scope: scopes(claims),
            subject: text("sub"),
            token_type: "bearer".to_string(),
            user_token: Some(claims.get("sub").is_some_and(|v| !v.is_null())),
            username: username
                .or_else(|| text("username"))
                .or_else(|| text("preferred_username")),
        }
    }
}

/// A string as a one-element list, an array as its string/number elements; else `None`.
fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(items) => Some(items.iter().filter_map(scalar_text).collect()),
        v => scalar_text(v).map(|s| vec![s]),
    }
}

/// `scope` as a space-separated string or an array, else `scp` the same way.
fn scopes(claims: &Claims) -> Option<Vec<String>> {
    ["scope", "scp"].iter().find_map(|k| match claims.get(*k)? {
        Value::String(s) => Some(s.split_whitespace().map(str::to_string).collect()),
        v @ Value::Array(_) => string_list(v),
        _ => None,
    })
}

/// A JWT NumericDate (seconds since the epoch, possibly fractional) as whole seconds, saturating.
/// Non-numbers yield `None`.
pub fn numeric_date(v: &Value) -> Option<i64> {
    let n = v.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.as_u64().is_some() {
        return Some(i64::MAX);
    }
    // `as` saturates; JSON has no NaN or infinity.
    n.as_f64().map(|f| f.floor() as i64)
}

/// First and last second representable as `YYYY-MM-DDTHH:MM:SSZ` (years 0001..=9999).
const MIN_RFC3339_S: i64 = -62_135_596_800;
const MAX_RFC3339_S: i64 = 253_402_300_799;

/// Seconds since the Unix epoch as RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SSZ`; `None` outside years
/// 0001..=9999.
pub fn rfc3339(unix_s: i64) -> Option<String> {
    if !(MIN_RFC3339_S..=MAX_RFC3339_S).contains(&unix_s) {
        return None;
    }
    let days = unix_s.div_euclid(86_400);
    let secs = unix_s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // Hand-formatted: this runs up to three times per request with a JWT.
    let mut out = String::with_capacity(20);
    let parts: [(i64, u32, char); 6] = [
        (y, 4, '-'),
        (i64::from(m), 2, '-'),
        (i64::from(d), 2, 'T'),
        (secs / 3600, 2, ':'),
        (secs % 3600 / 60, 2, ':'),
        (secs % 60, 2, 'Z'),
    ];
    for (v, width, sep) in parts {
        for k in (0..width).rev() {
            let digit = (v / 10_i64.pow(k)).rem_euclid(10) as u8;
            out.push(char::from(b'0' + digit));
        }
        out.push(sep);
    }
    Some(out)
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day), proleptic
/// Gregorian. Callers keep `days` within ±4e6 so no step overflows.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests;
