//! Reading one of api-warden's own configuration sections: every key known, `null` as missing,
//! typed getters that name the section and field in their errors.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::config::{describe, get_uint, ConfigError, Result};

/// One service section: an object whose keys are all known; `null` members count as missing.
pub(crate) struct Section<'a> {
    name: &'static str,
    obj: &'a Map<String, Value>,
}

impl<'a> Section<'a> {
    /// `extra[name]` (`None` when missing or `null`); an unknown key is an error.
    pub(crate) fn open(
        extra: &'a Map<String, Value>,
        name: &'static str,
        known: &[&str],
    ) -> Result<Option<Section<'a>>> {
        let obj = match extra.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(obj)) => obj,
            Some(other) => {
                return Err(ConfigError::field(
                    name,
                    format!("must be an object, got {}", describe(other)),
                ))
            }
        };
        if let Some(key) = obj.keys().find(|k| !known.contains(&k.as_str())) {
            let known: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            return Err(ConfigError::colon(
                name,
                format!(
                    "unknown field `{key}`, expected one of {}",
                    known.join(", ")
                ),
            ));
        }
        Ok(Some(Section { name, obj }))
    }

    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.name)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(ConfigError::field(
                self.field(key),
                format!("must be a string, got {}", describe(other)),
            )),
        }
    }

    pub(crate) fn required(&self, key: &str) -> Result<String> {
        self.string(key)?.ok_or_else(|| {
            ConfigError::sentence(
                self.field(key),
                format!("{}: missing field `{key}`", self.name),
            )
        })
    }

    pub(crate) fn uint(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => get_uint(&self.field(key), v, u64::MAX),
        }
    }

    /// A boolean member.
    pub(crate) fn flag(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(ConfigError::field(
                self.field(key),
                format!("must be true or false, got {other}"),
            )),
        }
    }

    pub(crate) fn size(&self, key: &str) -> Result<Option<usize>> {
        let max = u64::try_from(usize::MAX).unwrap_or(u64::MAX);
        match self.get(key) {
            None => Ok(None),
            Some(v) => Ok(get_uint(&self.field(key), v, max)?
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))),
        }
    }

    /// Name → value strings; a `null` value leaves the header out.
    pub(crate) fn headers(&self, key: &str) -> Result<BTreeMap<String, String>> {
        let field = self.field(key);
        let obj = match self.get(key) {
            None => return Ok(BTreeMap::new()),
            Some(Value::Object(obj)) => obj,
            Some(other) => {
                return Err(ConfigError::field(
                    field,
                    format!(
                        "must be an object of name: value strings, got {}",
                        describe(other)
                    ),
                ))
            }
        };
        let mut out = BTreeMap::new();
        for (name, value) in obj {
            match value {
                Value::Null => {}
                Value::String(v) => {
                    out.insert(name.clone(), v.clone());
                }
                other => {
                    return Err(ConfigError::field(
                        format!("{field}.{name}"),
                        format!("must be a string, got {}", describe(other)),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// One of `choices`, by name.
    pub(crate) fn choice<T: Copy>(&self, key: &str, choices: &[(&str, T)]) -> Result<Option<T>> {
        let Some(name) = self.string(key)? else {
            return Ok(None);
        };
        match choices.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => Ok(Some(*v)),
            None => {
                let names: Vec<String> = choices.iter().map(|(n, _)| format!("`{n}`")).collect();
                Err(ConfigError::colon(
                    self.field(key),
                    format!(
                        "unknown variant `{name}`, expected one of {}",
                        names.join(", ")
                    ),
                ))
            }
        }
    }
}
