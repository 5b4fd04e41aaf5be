//! A small YAML writer for JSON values (block style; strings plain when unambiguous, otherwise
//! JSON-quoted, which YAML reads as double-quoted). Enough for Envoy bootstraps and Kubernetes
//! manifests; no parser.

use serde_json::Value;

/// `v` as a YAML document (ends with a newline).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push(' ');
    }
}

fn write_map(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            pad(out, indent);
        }
        out.push_str(&key(k));
        out.push(':');
        write_value(out, v, indent, true);
    }
}

fn write_seq(out: &mut String, a: &[Value], indent: usize) {
    for (i, v) in a.iter().enumerate() {
        if i > 0 {
            pad(out, indent);
        }
        out.push('-');
        write_value(out, v, indent, false);
    }
}

/// After `key:` (in a map) or `-` (in a sequence) at `indent`.
fn write_value(out: &mut String, v: &Value, indent: usize, in_map: bool) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            if in_map {
                out.push('\n');
                pad(out, indent + 2);
            } else {
                out.push(' ');
            }
            write_map(out, m, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            // A sequence under a key sits at the key's indentation, as Kubernetes writes it.
            let inner = if in_map { indent } else { indent + 2 };
            out.push('\n');
            pad(out, inner);
            write_seq(out, a, inner);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn key(k: &str) -> String {
    let plain = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if plain {
        k.to_string()
    } else {
        quoted(k)
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if plain_string(s) => s.clone(),
        Value::String(s) => quoted(s),
        Value::Array(_) => "[]".to_string(),
        Value::Object(_) => "{}".to_string(),
    }
}

/// Plain (unquoted) only when YAML cannot read it as anything but this string.
fn plain_string(s: &str) -> bool {
    const WORDS: [&str; 11] = [
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~", "",
    ];
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '_');
    first_ok
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !WORDS.iter().any(|w| s.eq_ignore_ascii_case(w))
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn block_style_with_safe_quoting() {
        let v = serde_json::json!({
            "a": 1,
            "b": {"c": "plain", "@type": "type.googleapis.com/x.y", "d": "yes", "e": "10s", "f": "a b"},
            "list": [{"k": "v", "n": [1, 2]}, "x", []],
            "empty": {},
            "s": "{\"json\": true}"
        });
        let want = "\
a: 1
b:
  \"@type\": type.googleapis.com/x.y
  c: plain
  d: \"yes\"
  e: \"10s\"
  f: \"a b\"
empty: {}
list:
- k: v
  n:
  - 1
  - 2
- x
- []
s: \"{\\\"json\\\": true}\"
";
        assert_eq!(to_yaml(&v), want);
    }
}
