//! Compiles an API's `jwt` object (ASE's table of absent, empty and incomplete objects, the claim
//! rules) and parses `jwt.location`. Pure functions over `serde_json::Value`; no host calls.

use serde_json::{Map, Value};

use super::api::{describe, is_token};
use super::{ConfigError, JwtConfig, JwtLocation, Result};

/// The three keys ASE requires in a `jwt` object.
const KEYS: [&str; 3] = ["location", "username", "clientid"];

/// The `jwt` object, with ASE's table: absent → none; `{}` or a missing key → error; all keys
/// present and empty → none. Unknown keys are added to `unknown` (`jwt.<key>`). Errors name
/// fields as `api_metadata.jwt…`, for the caller to put in the API.
pub(super) fn compile_jwt(
    jwt: Option<&Value>,
    username_header: Option<&str>,
    unknown: &mut Vec<String>,
) -> Result<Option<JwtConfig>> {
    let Some(obj) = jwt_object(jwt)? else {
        return Ok(None);
    };
    unknown.extend(
        obj.keys()
            .filter(|k| !KEYS.contains(&k.as_str()))
            .map(|k| format!("jwt.{k}")),
    );
    let [location, username, clientid] = KEYS.map(|key| claim_text(obj, key));
    let (location, username, clientid) = (location?, username?, clientid?);
    check_claims(&username, &clientid, username_header)?;
    if location.is_empty() {
        if !username.is_empty() || !clientid.is_empty() {
            return Err(ConfigError::sentence(
                "api_metadata.jwt.location",
                "jwt.username or jwt.clientid is set but jwt.location is empty",
            ));
        }
        return Ok(None);
    }
    let parsed = parse_jwt_location(&location).map_err(|m| {
        ConfigError::field("api_metadata.jwt.location", format!("{location:?} {m}"))
    })?;
    let some = |s: String| if s.is_empty() { None } else { Some(s) };
    Ok(Some(JwtConfig {
        location: parsed,
        username: some(username),
        clientid: some(clientid),
    }))
}

/// The `jwt` object when there is one (`null` → none) with all of [`KEYS`] (`null` → missing).
fn jwt_object(jwt: Option<&Value>) -> Result<Option<&Map<String, Value>>> {
    let field = "api_metadata.jwt";
    let obj = match jwt {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(obj)) => obj,
        Some(other) => {
            return Err(ConfigError::field(
                field,
                format!(
                    "must be an object with location, username and clientid, got {}",
                    describe(other)
                ),
            ))
        }
    };
    if obj.is_empty() {
        return Err(ConfigError::field(
            field,
            "is {} (no keys); ASE rejects such an API: give location, username and clientid (all may be \"\"), or remove jwt",
        ));
    }
    let missing: Vec<&str> = KEYS
        .into_iter()
        .filter(|k| obj.get(*k).filter(|v| !v.is_null()).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(ConfigError::field(
            field,
            format!(
                "is missing {}; ASE requires all of location, username and clientid (all may be \"\")",
                missing.join(" and ")
            ),
        ));
    }
    Ok(Some(obj))
}

/// `jwt.<key>`: a string, trimmed.
fn claim_text(obj: &Map<String, Value>, key: &str) -> Result<String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.trim().to_string()),
        Some(other) => Err(ConfigError::field(
            format!("api_metadata.jwt.{key}"),
            format!("must be a string, got {}", describe(other)),
        )),
    }
}

/// The username comes from one claim or header, and the two claims differ.
fn check_claims(username: &str, clientid: &str, username_header: Option<&str>) -> Result<()> {
    if !username.is_empty() && username == clientid {
        return Err(ConfigError::sentence(
            "api_metadata.jwt.clientid",
            format!(
                "jwt.username and jwt.clientid are both {username:?}; they must be different claims"
            ),
        ));
    }
    if let (Some(header), false) = (username_header, username.is_empty()) {
        return Err(ConfigError::sentence(
            "api_metadata.jwt.username",
            format!(
                "username_header {header:?} and jwt.username {username:?} are both set; ASE takes the username from one or the other"
            ),
        ));
    }
    Ok(())
}

const LOCATION_FORMS: &str =
    "expected qs:<key>, h:<header name>, h:Authorization:Bearer, h:Authorization:MAC or h:cookie:<cookie name>";

/// Parse `jwt.location` (prefixes and schemes case-insensitive, whitespace around parts ignored).
/// The error text completes `jwt.location "<value>" …`.
pub(super) fn parse_jwt_location(raw: &str) -> std::result::Result<JwtLocation, String> {
    let Some((prefix, rest)) = raw.split_once(':') else {
        return Err(format!("has no prefix; {LOCATION_FORMS}"));
    };
    let prefix = prefix.trim();
    if prefix.eq_ignore_ascii_case("qs") {
        let key = rest.trim();
        if key.is_empty() {
            return Err("needs a query parameter name (qs:<key>)".to_string());
        }
        return Ok(JwtLocation::Query(key.to_string()));
    }
    if !prefix.eq_ignore_ascii_case("h") {
        return Err(format!("has unknown prefix {prefix:?}; {LOCATION_FORMS}"));
    }
    let (header, param) = match rest.split_once(':') {
        Some((h, p)) => (h.trim(), Some(p.trim())),
        None => (rest.trim(), None),
    };
    if header.is_empty() {
        return Err("needs a header name (h:<header name>)".to_string());
    }
    if header.eq_ignore_ascii_case("cookie") {
        return match param {
            Some(c) if !c.is_empty() => {
                if is_token(c) {
                    Ok(JwtLocation::Cookie(c.to_string()))
                } else {
                    Err(format!("has an invalid cookie name {c:?}"))
                }
            }
            _ => Err("needs a cookie name (h:cookie:<cookie name>)".to_string()),
        };
    }
    if header.eq_ignore_ascii_case("authorization") {
        return match param {
            Some(s) if s.eq_ignore_ascii_case("bearer") => Ok(JwtLocation::Bearer),
            Some(s) if s.eq_ignore_ascii_case("mac") => Ok(JwtLocation::Mac),
            Some(s) if !s.is_empty() => Err(format!(
                "uses scheme {s:?}; the Authorization header supports Bearer and MAC only"
            )),
            _ => Err("needs a scheme: h:Authorization:Bearer or h:Authorization:MAC".to_string()),
        };
    }
    if param.is_some() || !is_token(header) {
        return Err(format!("has an invalid header name {:?}", rest.trim()));
    }
    Ok(JwtLocation::Header(header.to_ascii_lowercase()))
}
