//! ASE's inline protections, compiled from API JSON and checked per request: decoy APIs
//! ([`decoy`]), API pattern enforcement ([`pattern`]) and flow control ([`flow`]). Pure: values
//! in, verdicts out; flow control's process-wide counters go through [`crate::lists::Store`].
//! No host calls.

pub mod decoy;
pub mod flow;
pub mod pattern;

use serde_json::{Map, Value};

/// An API's compiled protections (all off by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protections {
    pub decoy: Option<decoy::Decoy>,
    pub pattern: Option<pattern::Pattern>,
    pub flow: Option<flow::Threshold>,
}

/// `flow_control` fields whose job Envoy does, with the Envoy setting to use instead.
pub const ENVOY_FLOW_FIELDS: [(&str, &str); 5] = [
    (
        "server_spike_threshold",
        "the cluster's circuit_breakers max_requests",
    ),
    (
        "server_connection_quota",
        "the cluster's circuit_breakers max_connections",
    ),
    (
        "server_connection_queueing",
        "the cluster's circuit_breakers max_pending_requests",
    ),
    (
        "bytes_in_threshold",
        "the route's or listener's per_connection_buffer_limit_bytes",
    ),
    (
        "bytes_out_threshold",
        "the cluster's per_connection_buffer_limit_bytes",
    ),
];

/// Compile the three protection objects of one API (whose normalized url is `url`). Each may be
/// absent, `null`, an empty string or an object. Returns the protections and the `flow_control`
/// fields set that Envoy enforces instead (see [`ENVOY_FLOW_FIELDS`]).
pub fn compile(
    url: &str,
    meta: &Map<String, Value>,
) -> Result<(Protections, Vec<&'static str>), FieldError> {
    let empty = Map::new();
    let obj = |k: &str| match meta.get(k) {
        Some(Value::Object(o)) => o,
        _ => &empty,
    };
    let flow_obj = obj("flow_control");
    let envoy_fields = ENVOY_FLOW_FIELDS
        .iter()
        .filter(|(k, _)| match flow_obj.get(*k) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.trim().is_empty() && !s.trim().starts_with('0'),
            Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
            Some(Value::Bool(b)) => *b,
            Some(_) => true,
        })
        .map(|(k, _)| *k)
        .collect();
    Ok((
        Protections {
            decoy: decoy::compile(url, obj("decoy_config"))?,
            pattern: pattern::compile(obj("api_pattern_enforcement"))?,
            flow: flow::parse_threshold(flow_obj.get("client_spike_threshold"))?,
        },
        envoy_fields,
    ))
}

/// A configuration problem in one protection: the field (below `api_metadata`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An HTTP status written as a JSON number or a numeric string (ASE's files use both); `None`
/// for absent, `null` or an empty string. A status outside 100..=599 is an error.
pub(crate) fn status(field: &str, v: Option<&Value>) -> Result<Option<u32>, FieldError> {
    let n = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<u32>().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Some(_) => None,
    };
    match n {
        Some(n) if (100..=599).contains(&n) => Ok(Some(n)),
        _ => Err(FieldError::new(
            field,
            format!(
                "must be an HTTP status (100-599) as a number or a numeric string, got {}",
                short(v)
            ),
        )),
    }
}

/// A string field; `None` for absent or `null`, an error for another type.
pub(crate) fn text<'a>(field: &str, v: Option<&'a Value>) -> Result<Option<&'a str>, FieldError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(FieldError::new(
            field,
            format!("must be a string, got {}", short(Some(other))),
        )),
    }
}

/// A list of strings, written as a JSON array or one comma-separated string; empty entries are
/// dropped (ASE's tooling writes `""` and `[]` for "not enforced").
pub(crate) fn list(field: &str, v: Option<&Value>) -> Result<Vec<String>, FieldError> {
    let items: Vec<String> = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(|x| x.trim().to_string()).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, x)| match x {
                Value::String(s) => Ok(s.trim().to_string()),
                other => Err(FieldError::new(
                    format!("{field}[{i}]"),
                    format!("must be a string, got {}", short(Some(other))),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(FieldError::new(
                field,
                format!("must be a list of strings, got {}", short(Some(other))),
            ))
        }
    };
    Ok(items.into_iter().filter(|s| !s.is_empty()).collect())
}

/// A value as it appears in a message, cut short.
fn short(v: Option<&Value>) -> String {
    let s = v.map_or_else(|| "nothing".to_string(), Value::to_string);
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use serde_json::json;

    use super::*;

    #[test]
    fn statuses_lists_and_texts() {
        let v = |j: Value| status("f", Some(&j));
        assert_eq!(v(json!(200)), Ok(Some(200)));
        assert_eq!(v(json!("301")), Ok(Some(301)));
        assert_eq!(v(json!("")), Ok(None));
        assert_eq!(status("f", None), Ok(None));
        for bad in [json!(99), json!("abc"), json!(600), json!(true), json!(-1)] {
            assert!(v(bad.clone()).is_err(), "{bad}");
        }
        assert_eq!(
            list("l", Some(&json!("GET, post,,"))),
            Ok(vec!["GET".to_string(), "post".to_string()])
        );
        assert_eq!(
            list("l", Some(&json!(["a", ""]))),
            Ok(vec!["a".to_string()])
        );
        assert_eq!(list("l", Some(&json!([1]))).unwrap_err().field, "l[0]");
        assert!(list("l", Some(&json!(5))).is_err());
        assert_eq!(text("t", Some(&json!("x"))), Ok(Some("x")));
        assert!(text("t", Some(&json!(1))).is_err());
    }
}
