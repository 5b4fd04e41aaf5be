//! Reading records for `discover`: one line at a time, whatever form the line has — an access-log
//! line holding the record (a JSON object with a `record` member, as a string or an object, next
//! to the `authority` and `scheme` the `api-warden envoy` bootstrap writes), a line whose first
//! tab-separated field is the record, an export batch (a JSON array of records) or a bare record.
//! Only the fields discovery needs are kept ([`Fields`]); the rest is skipped unparsed into values.

use std::borrow::Cow;
use std::fmt;

use api_warden_core::discover::Seen;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// What a line gave: the root-API exchanges it holds, how many records were elsewhere.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LineRecords {
    /// Records of requests that matched the root API.
    pub root: Vec<Seen>,
    /// Records of requests that matched another API (or none).
    pub other: u64,
}

/// The record's fields discovery reads; any other key is skipped.
#[derive(Debug, Default, Deserialize)]
struct Fields {
    service: Option<String>,
    #[serde(default)]
    attributes: Attributes,
    #[serde(default)]
    ase: AseSection,
    /// Access-log line members (absent from a bare record).
    record: Option<Value>,
    authority: Option<String>,
    scheme: Option<String>,
    response_code: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Attributes {
    #[serde(rename = "HttpRequest.IPAddress")]
    ip: Option<String>,
    #[serde(rename = "HttpRequest.RequestURI")]
    uri: Option<String>,
    #[serde(rename = "HttpRequest.QueryParameters", default)]
    query: KeyNames,
    #[serde(rename = "HttpRequest.RequestHeaders", default)]
    headers: HeaderFacts,
    #[serde(rename = "HttpRequest.ResponseStatus")]
    status: Option<u16>,
    #[serde(rename = "Gateway", default)]
    gateway: Gateway,
}

#[derive(Debug, Default, Deserialize)]
struct Gateway {
    #[serde(rename = "_BasePath")]
    base_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AseSection {
    api: Option<String>,
    #[serde(default)]
    client: Client,
}

#[derive(Debug, Default, Deserialize)]
struct Client {
    ip: Option<String>,
    token: Option<IgnoredAny>,
}

/// Query parameters: only the names that look like API keys are kept.
#[derive(Debug, Default)]
struct KeyNames(Vec<String>);

/// Request headers: the host and scheme, and hints (`bearer token`, `header x-api-key`, `cookie
/// sid`) — names only, never values.
#[derive(Debug, Default)]
struct HeaderFacts {
    host: Option<String>,
    scheme: Option<String>,
    hints: Vec<String>,
}

/// Does parameter or header `name` look like an API key?
pub fn key_like(name: &str) -> bool {
    let n: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    n == "key"
        || n.ends_with("apikey")
        || n.ends_with("apitoken")
        || n.ends_with("accesskey")
        || n.ends_with("subscriptionkey")
        || n == "accesstoken"
        || n == "token"
}

/// A map key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// The first string of a header or parameter value (an array of strings, or a string).
fn first(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s),
        Value::Array(a) => a.into_iter().find_map(|x| match x {
            Value::String(s) => Some(s),
            _ => None,
        }),
        _ => None,
    }
}

impl<'de> Deserialize<'de> for KeyNames {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyNames;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyNames, E> {
                Ok(KeyNames::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<KeyNames, A::Error> {
                let mut out = KeyNames::default();
                while let Some(Key(k)) = m.next_key::<Key>()? {
                    m.next_value::<IgnoredAny>()?;
                    if key_like(&k) {
                        out.0.push(format!("query {k}"));
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for HeaderFacts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HeaderFacts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_unit<E: de::Error>(self) -> Result<HeaderFacts, E> {
                Ok(HeaderFacts::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<HeaderFacts, A::Error> {
                let mut out = HeaderFacts::default();
                while let Some(Key(k)) = m.next_key::<Key>()? {
                    let k = k.to_ascii_lowercase();
                    match k.as_str() {
                        "host" => out.host = first(m.next_value()?),
                        "x-forwarded-proto" => out.scheme = first(m.next_value()?),
                        "authorization" => {
                            let v = first(m.next_value()?).unwrap_or_default();
                            let bearer = v
                                .get(..7)
                                .is_some_and(|p| p.eq_ignore_ascii_case("bearer "));
                            out.hints.push(if bearer {
                                "bearer token".into()
                            } else {
                                "header authorization".into()
                            });
                        }
                        "cookie" => {
                            let v = first(m.next_value()?).unwrap_or_default();
                            out.hints.extend(cookie_names(&v));
                        }
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                            if key_like(&k) {
                                out.hints.push(format!("header {k}"));
                            }
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

/// `cookie NAME` hints for a `Cookie` header (one `cookie header` hint when it is redacted).
fn cookie_names(v: &str) -> Vec<String> {
    let names: Vec<String> = v
        .split(';')
        .filter_map(|c| c.split_once('='))
        .map(|(n, _)| n.trim())
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic()))
        .map(|n| format!("cookie {n}"))
        .collect();
    if names.is_empty() {
        vec!["cookie header".to_string()]
    } else {
        names
    }
}

/// What the access-log line adds to the record it holds.
#[derive(Default)]
struct Outer {
    authority: Option<String>,
    scheme: Option<String>,
    status: Option<u16>,
}

/// A value Envoy writes for a missing field (`-`) or an empty one is no value.
fn present(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty() && s != "-")
}

/// The records in `line` (see the module doc), the root API being `root`; `Err` says why the
/// line is not one.
pub fn read_line(line: &str, root: &str) -> Result<LineRecords, String> {
    let line = line.trim();
    let mut out = LineRecords::default();
    if line.is_empty() {
        return Ok(out);
    }
    match parse_json(line) {
        Ok(recs) => recs
            .into_iter()
            .for_each(|(f, o)| add(&mut out, f, o, root)),
        Err(e) => {
            let first = line.split('\t').next().unwrap_or("").trim();
            if first.len() == line.len() {
                return Err(e);
            }
            parse_json(first)?
                .into_iter()
                .for_each(|(f, o)| add(&mut out, f, o, root));
        }
    }
    Ok(out)
}

/// A JSON line: an array of records, or an object (a record, or an access-log line with one).
fn parse_json(text: &str) -> Result<Vec<(Fields, Outer)>, String> {
    if text.starts_with('[') {
        let batch: Vec<Fields> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        return batch.into_iter().map(unwrap_line).collect();
    }
    if !text.starts_with('{') {
        return Err("not a JSON object or array".to_string());
    }
    let f: Fields = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(vec![unwrap_line(f)?])
}

/// The record of an access-log line (its `record` member) with the line's own facts, or `f`
/// itself when it is a bare record.
fn unwrap_line(mut f: Fields) -> Result<(Fields, Outer), String> {
    let status = match f.response_code.take() {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let outer = Outer {
        authority: present(f.authority.take()),
        scheme: present(f.scheme.take()),
        status,
    };
    let rec = match f.record.take() {
        None => f,
        Some(Value::String(s)) if s.is_empty() || s == "-" => {
            return Err("the access-log line has no record (the filter did not run)".to_string())
        }
        Some(Value::String(s)) => serde_json::from_str(&s).map_err(|e| format!("record: {e}"))?,
        Some(v @ Value::Object(_)) => {
            serde_json::from_value(v).map_err(|e| format!("record: {e}"))?
        }
        Some(_) => return Err("record: not a JSON object".to_string()),
    };
    Ok((rec, outer))
}

/// Count record `f` into `out`: kept when it matched the root API.
fn add(out: &mut LineRecords, f: Fields, o: Outer, root: &str) {
    let a = f.attributes;
    let matched = f.ase.api.as_deref() == Some(root)
        || f.service.as_deref() == Some(root)
        || a.gateway.base_path.as_deref() == Some("/");
    if !matched {
        out.other += 1;
        return;
    }
    let mut hints = a.query.0;
    hints.extend(a.headers.hints);
    if f.ase.client.token.is_some() {
        hints.push("bearer token".to_string());
    }
    hints.sort();
    hints.dedup();
    out.root.push(Seen {
        host: o.authority.or(present(a.headers.host)),
        scheme: o.scheme.or(present(a.headers.scheme)),
        path: a.uri.unwrap_or_default(),
        status: a.status.or(o.status).unwrap_or(0),
        client: present(a.ip).or(present(f.ase.client.ip)),
        hints,
    });
}
