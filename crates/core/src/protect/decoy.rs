//! Decoy APIs (`decoy_config`): which paths of an API are decoys and the response they get.
//! No host calls.

use serde_json::Value;

use super::{list, status, text, FieldError};
use crate::router::normalize_path;

/// Most `decoy_subpaths` ASE accepts.
pub const MAX_SUBPATHS: usize = 32;

/// A compiled decoy: the whole API (out-of-context) or some of its sub-paths (in-context).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoy {
    /// Sub-paths relative to the API's url, normalized (`/admin`); empty = the whole API.
    pub subpaths: Vec<String>,
    /// `response_code` (default 200).
    pub status: u32,
    /// `response_def`, recorded (Envoy cannot send a custom reason phrase).
    pub status_text: String,
    /// `response_message`, the body (default empty).
    pub body: String,
}

impl Decoy {
    /// Is a request whose path under the API is `trailing_path` (`""` for the API's url itself,
    /// else starting with `/`, as [`crate::router::ApiMatch::trailing_path`]) a decoy request?
    /// A sub-path covers itself and its sub-tree on segment boundaries.
    pub fn covers(&self, trailing_path: &str) -> bool {
        self.subpaths.is_empty()
            || self.subpaths.iter().any(|s| {
                trailing_path
                    .strip_prefix(s.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
    }
}

/// Compile the `decoy_config` object of the API whose (normalized) url is `url`. `None` when
/// decoys are off (`decoy_enabled` absent or false).
pub fn compile(url: &str, v: &serde_json::Map<String, Value>) -> Result<Option<Decoy>, FieldError> {
    match v.get("decoy_enabled") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => return Ok(None),
        Some(Value::Bool(true)) => {}
        Some(other) => {
            return Err(FieldError::new(
                "decoy_config.decoy_enabled",
                format!("must be true or false, got {other}"),
            ))
        }
    }
    let raw = list("decoy_config.decoy_subpaths", v.get("decoy_subpaths"))?;
    if raw.len() > MAX_SUBPATHS {
        return Err(FieldError::new(
            "decoy_config.decoy_subpaths",
            format!(
                "has {} entries; ASE allows at most {MAX_SUBPATHS}",
                raw.len()
            ),
        ));
    }
    let mut subpaths = Vec::with_capacity(raw.len());
    for (i, p) in raw.iter().enumerate() {
        subpaths.push(relative(url, p).ok_or_else(|| {
            FieldError::new(
                format!("decoy_config.decoy_subpaths[{i}]"),
                format!("{p:?} must be a path starting with \"/\" below the API's url"),
            )
        })?);
    }
    Ok(Some(Decoy {
        subpaths,
        status: status("decoy_config.response_code", v.get("response_code"))?.unwrap_or(200),
        status_text: text("decoy_config.response_def", v.get("response_def"))?
            .unwrap_or_default()
            .to_string(),
        body: text("decoy_config.response_message", v.get("response_message"))?
            .unwrap_or_default()
            .to_string(),
    }))
}

/// A sub-path relative to the API's url: `/shop/admin` (full, as ASE's example writes it) and
/// `/admin` both give `/admin` for url `/shop`. A path equal to the url, or under it on a segment
/// boundary, is read as full; anything else as relative. `None` for a path that does not start
/// with `/` or that names the API's url itself (that is `decoy_subpaths: []`).
fn relative(url: &str, p: &str) -> Option<String> {
    if !p.starts_with('/') {
        return None;
    }
    let n = normalize_path(p);
    let rel = if url == "/" {
        n
    } else {
        match n.strip_prefix(url) {
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            Some("") => return None,
            _ => n,
        }
    };
    (rel != "/").then_some(rel)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use serde_json::json;

    use super::*;

    fn decoy(url: &str, v: Value) -> Result<Option<Decoy>, FieldError> {
        compile(url, v.as_object().unwrap())
    }

    #[test]
    fn off_unless_enabled() {
        assert_eq!(decoy("/shop", json!({})), Ok(None));
        assert_eq!(decoy("/shop", json!({"decoy_enabled": false})), Ok(None));
        assert!(decoy("/shop", json!({"decoy_enabled": "yes"})).is_err());
    }

    #[test]
    fn sub_paths_full_or_relative_cover_their_sub_tree() {
        let d = decoy(
            "/shop",
            json!({"decoy_enabled": true, "response_code": "403", "response_def": "Forbidden",
                   "response_message": "nope", "decoy_subpaths": ["/shop/admin", "/root", "/x//y/"]}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(d.subpaths, ["/admin", "/root", "/x/y"]);
        assert_eq!(
            (d.status, d.status_text.as_str(), d.body.as_str()),
            (403, "Forbidden", "nope")
        );
        let rows = [
            ("/admin", true),
            ("/admin/users", true),
            ("/administrator", false),
            ("/root", true),
            ("/x/y/z", true),
            ("/x", false),
            ("", false),
            ("/items", false),
        ];
        for (path, want) in rows {
            assert_eq!(d.covers(path), want, "{path}");
        }
    }

    #[test]
    fn no_sub_paths_is_the_whole_api_with_defaults() {
        let d = decoy(
            "/trap",
            json!({"decoy_enabled": true, "decoy_subpaths": []}),
        )
        .unwrap()
        .unwrap();
        assert_eq!((d.status, d.body.as_str()), (200, ""));
        assert!(d.covers("") && d.covers("/anything/below"));
    }

    #[test]
    fn root_api_sub_paths_and_errors() {
        let d = decoy(
            "/",
            json!({"decoy_enabled": true, "decoy_subpaths": "/admin, /debug"}),
        )
        .unwrap()
        .unwrap();
        assert!(d.covers("/admin/x") && d.covers("/debug") && !d.covers("/shop"));
        let many: Vec<String> = (0..33).map(|i| format!("/p{i}")).collect();
        let e = decoy(
            "/shop",
            json!({"decoy_enabled": true, "decoy_subpaths": many}),
        )
        .unwrap_err();
        assert_eq!(e.field, "decoy_config.decoy_subpaths");
        assert!(e.message.contains("at most 32"), "{}", e.message);
        for bad in [json!(["admin"]), json!(["/shop"]), json!(["/"])] {
            let e = decoy(
                "/shop",
                json!({"decoy_enabled": true, "decoy_subpaths": bad}),
            );
            assert_eq!(e.unwrap_err().field, "decoy_config.decoy_subpaths[0]");
        }
        let e = decoy(
            "/shop",
            json!({"decoy_enabled": true, "response_code": "OK"}),
        );
        assert_eq!(e.unwrap_err().field, "decoy_config.response_code");
    }
}
