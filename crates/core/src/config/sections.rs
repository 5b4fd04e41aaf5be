//! Compiles the `ase` section (ASE's `ase.conf` switches and the block response) and the
//! `deny_list` / `allow_list` sections. Pure functions over `serde_json::Value`; no host calls.

use serde_json::Value;

use super::api::{describe, is_token};
use super::{Ase, BlockResponse, ConfigError, IdLists, Notice, Result};
use crate::identity::IdType;

/// Compile the `ase` section (missing → defaults). Unknown keys warn, as in every ASE format.
pub(super) fn compile_ase(value: Option<Value>, notices: &mut Vec<Notice>) -> Result<Ase> {
    let mut ase = Ase::default();
    let obj = match value {
        None | Some(Value::Null) => return Ok(ase),
        Some(Value::Object(obj)) => obj,
        Some(other) => return Err(not_an_object("ase", &other)),
    };
    let mut unknown = Vec::new();
    for (key, v) in &obj {
        let field = format!("ase.{key}");
        match key.as_str() {
            "enable_firewall" => set_bool(&mut ase.enable_firewall, &field, v)?,
            "enable_ase_detected_attack" => {
                set_bool(&mut ase.enable_ase_detected_attack, &field, v)?
            }
            "enable_xff" => set_bool(&mut ase.enable_xff, &field, v)?,
            "xff_num_trusted_hops" => {
                if let Some(n) = get_uint(&field, v, u64::from(u32::MAX))? {
                    ase.xff_num_trusted_hops = u32::try_from(n).unwrap_or(u32::MAX);
                }
            }
            "detected_attack_ttl_s" => {
                if let Some(n) = get_uint(&field, v, u64::MAX)? {
                    ase.detected_attack_ttl_s = n;
                }
            }
            "block_response" => ase.block_response = compile_block_response(v, &mut unknown)?,
            _ => unknown.push(field),
        }
    }
    if !unknown.is_empty() {
        notices.push(Notice::Warn(format!(
            "unknown ase keys ignored: {}",
            unknown.join(", ")
        )));
    }
    Ok(ase)
}

fn not_an_object(field: &str, v: &Value) -> ConfigError {
    ConfigError::field(field, format!("must be an object, got {}", describe(v)))
}

fn set_bool(slot: &mut bool, field: &str, v: &Value) -> Result<()> {
    match v {
        Value::Null => Ok(()),
        Value::Bool(b) => {
            *slot = *b;
            Ok(())
        }
        other => Err(ConfigError::field(
            field,
            format!("must be a boolean (true or false), got {}", describe(other)),
        )),
    }
}

/// A non-negative integer no larger than `max` (`null` → `None`).
pub(crate) fn get_uint(field: &str, v: &Value, max: u64) -> Result<Option<u64>> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_u64() {
            Some(n) if n <= max => Ok(Some(n)),
            _ => Err(ConfigError::field(
                field,
                format!("must be an integer from 0 to {max}, got {n}"),
            )),
        },
        other => Err(ConfigError::field(
            field,
            format!("must be an integer, got {}", describe(other)),
        )),
    }
}

fn compile_block_response(v: &Value, unknown: &mut Vec<String>) -> Result<BlockResponse> {
    let mut out = BlockResponse::default();
    let obj = match v {
        Value::Null => return Ok(out),
        Value::Object(obj) => obj,
        other => return Err(not_an_object("ase.block_response", other)),
    };
    for (key, v) in obj {
        match key.as_str() {
            "status" => {
                const FIELD: &str = "ase.block_response.status";
                if let Some(n) = get_uint(FIELD, v, u64::MAX)? {
                    out.status = match u32::try_from(n) {
                        Ok(s) if (200..=599).contains(&s) => s,
                        _ => {
                            return Err(ConfigError::field(
                                FIELD,
                                format!("must be from 200 to 599, got {n}"),
                            ))
                        }
                    };
                }
            }
            "body" => match v {
                Value::Null => {}
                Value::String(s) => out.body = s.clone(),
                other => {
                    return Err(ConfigError::field(
                        "ase.block_response.body",
                        format!("must be a string, got {}", describe(other)),
                    ))
                }
            },
            "headers" => out.headers = compile_headers(v)?,
            _ => unknown.push(format!("ase.block_response.{key}")),
        }
    }
    Ok(out)
}

/// `ase.block_response.headers`: name → value; a `null` value leaves the header out.
fn compile_headers(v: &Value) -> Result<Vec<(String, String)>> {
    const FIELD: &str = "ase.block_response.headers";
    let obj = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Object(obj) => obj,
        other => {
            return Err(ConfigError::field(
                FIELD,
                format!(
                    "must be an object of name: value strings, got {}",
                    describe(other)
                ),
            ))
        }
    };
    let mut headers = Vec::with_capacity(obj.len());
    for (name, value) in obj {
        if !is_token(name) {
            return Err(ConfigError::colon(
                FIELD,
                format!("{name:?} is not a valid HTTP header name"),
            ));
        }
        let field = format!("{FIELD}.{name}");
        let value = match value {
            Value::Null => continue,
            Value::String(value) => value,
            other => {
                return Err(ConfigError::field(
                    field,
                    format!("must be a string, got {}", describe(other)),
                ))
            }
        };
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(ConfigError::field(field, "must not contain CR, LF or NUL"));
        }
        headers.push((name.to_ascii_lowercase(), value.clone()));
    }
    Ok(headers)
}

/// Compile `deny_list` / `allow_list` (missing → empty). An unknown identifier type is an error.
pub(super) fn compile_list(list: &str, value: Option<Value>) -> Result<IdLists> {
    let mut out = IdLists::default();
    let obj = match value {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Object(obj)) => obj,
        Some(other) => {
            return Err(ConfigError::field(
                list,
                format!(
                    "must be an object of identifier type → array of strings, got {}",
                    describe(&other)
                ),
            ))
        }
    };
    for (key, v) in &obj {
        let Some(id_type) = IdType::parse(key) else {
            return Err(ConfigError::colon(
                list,
                format!("unknown identifier type {key:?} (expected one of ip, token, api_key, cookie, username)"),
            ));
        };
        let field = format!("{list}.{key}");
        let items = match v {
            Value::Null => continue,
            Value::Array(items) => items,
            other => {
                return Err(ConfigError::field(
                    field,
                    format!("must be an array of strings, got {}", describe(other)),
                ))
            }
        };
        let values = items
            .iter()
            .enumerate()
            .map(|(i, item)| list_value(&format!("{field}[{i}]"), id_type, item))
            .collect::<Result<Vec<String>>>()?;
        let slot = match id_type {
            IdType::Ip => &mut out.ip,
            IdType::Token => &mut out.token,
            IdType::ApiKey => &mut out.api_key,
            IdType::Cookie => &mut out.cookie,
            IdType::Username => &mut out.username,
        };
        *slot = values;
    }
    Ok(out)
}

/// One list item `field` (`deny_list.ip[3]`): a non-empty string; an IP address for `ip`.
fn list_value(field: &str, id_type: IdType, item: &Value) -> Result<String> {
    let s = match item {
        Value::String(s) if !s.trim().is_empty() => s,
        other => {
            return Err(ConfigError::field(
                field,
                format!("must be a non-empty string, got {}", describe(other)),
            ))
        }
    };
    if id_type != IdType::Ip {
        return Ok(s.clone());
    }
    // Canonical like the identified peer (`parse::parse_ip`): an IPv4-mapped IPv6 entry
    // (`::ffff:192.0.2.1`) must match the IPv4 client it names.
    crate::parse::canonical_ip(s)
        .ok_or_else(|| ConfigError::field(field, format!("{s:?} is not an IPv4 or IPv6 address")))
}
