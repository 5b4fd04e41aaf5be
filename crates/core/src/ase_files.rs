//! ASE's folder layout (`config/api/NAME.json`, one API JSON file per API, named by its file):
//! the naming rules, the per-file and cross-file checks, and the plugin configuration a checked
//! folder becomes. Takes file names and bytes, returns findings and values; no I/O, no host calls.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::config::{self, ConfigError, Notice};

/// Words ASE reserves: an API name must not contain them (as a word, any case).
pub const RESERVED_WORDS: [&str; 4] = ["model", "threshold", "all", "decoyall"];

/// The longest API name ASE accepts.
pub const MAX_NAME_CHARS: usize = 160;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The API (or file) is refused.
    Error,
    /// Loads, but probably a mistake (unknown keys, …); `lint --strict` fails on it.
    Warning,
    /// Worth knowing (fields Envoy handles instead of the filter).
    Note,
}

impl Severity {
    /// `error`, `warning` or `note`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// One problem found in a file or a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file inside the folder (`shop.json`); `""` for the folder (or file) as a whole.
    pub file: String,
    /// The API the finding is about, if one.
    pub api: Option<String>,
    /// The offending field (`api_metadata.jwt.location`, `name`), `""` when none.
    pub field: String,
    pub severity: Severity,
    /// What is wrong, without the API and field.
    pub message: String,
    /// The line printed after `PATH: ` (`api "NAME": FIELD: message`, `warning: …`).
    pub text: String,
}

impl Finding {
    /// A finding from a refused configuration.
    pub fn from_error(file: &str, e: &ConfigError) -> Finding {
        Finding {
            file: file.to_string(),
            api: e.api.clone(),
            field: e.field.clone(),
            severity: Severity::Error,
            message: e.message.clone(),
            text: e.diagnostic(),
        }
    }

    /// A finding from a loaded configuration's notice, about `api` when known.
    pub fn from_notice(file: &str, api: Option<&str>, n: &Notice) -> Finding {
        let (severity, m) = match n {
            Notice::Warn(m) => (Severity::Warning, m),
            Notice::Info(m) => (Severity::Note, m),
        };
        Finding {
            file: file.to_string(),
            api: api.map(str::to_string),
            field: String::new(),
            severity,
            message: m.clone(),
            text: format!("{}: {m}", severity.as_str()),
        }
    }

    /// The same finding with `api "FROM"` in its text read as `api "TO"` (a notice about an API
    /// loaded under a stand-in name).
    pub fn renamed(mut self, from: &str, to: &str) -> Finding {
        if from != to {
            let (from, to) = (format!("api {from:?}"), format!("api {to:?}"));
            self.message = self.message.replace(&from, &to);
            self.text = self.text.replace(&from, &to);
        }
        self
    }

    /// An error about `api`'s `field`.
    pub fn error(file: &str, api: Option<&str>, field: &str, message: String) -> Finding {
        let e = ConfigError {
            api: api.map(str::to_string),
            field: field.to_string(),
            message,
            layout: config::Layout::Colon,
        };
        Finding::from_error(file, &e)
    }

    /// A warning about `api`.
    pub fn warning(file: &str, api: Option<&str>, message: String) -> Finding {
        Finding::from_notice(file, api, &Notice::Warn(message))
    }
}

/// An API JSON file that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderApi {
    /// The API name (the file name without `.json`).
    pub name: String,
    /// The file name.
    pub file: String,
    /// Its `api_metadata` object, as written.
    pub meta: Map<String, Value>,
    /// Compiled hostname (lowercase, or `*`).
    pub hostname: String,
    /// Compiled, normalized url.
    pub url: String,
}

/// A checked folder: the APIs accepted (in file-name order) and every finding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Folder {
    pub apis: Vec<FolderApi>,
    pub findings: Vec<Finding>,
}

impl Folder {
    /// True when some finding is an error.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// The API name a file name gives: `shop.json` → `shop`; `None` for other files.
pub fn name_from_file(file_name: &str) -> Option<&str> {
    file_name.strip_suffix(".json").filter(|s| !s.is_empty())
}

/// Check `name` against ASE's naming rules and the filter's own (no spaces: records and stats
/// carry the name). The error text names the rule broken.
pub fn check_name(name: &str) -> Result<(), String> {
    let count = name.chars().count();
    if count == 0 {
        return Err("the API name is empty".to_string());
    }
    if count > MAX_NAME_CHARS {
        return Err(format!(
            "{name:?} is {count} characters long; ASE allows at most {MAX_NAME_CHARS}"
        ));
    }
    if !name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return Err(format!("{name:?} must start with a letter or a digit"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' ')))
    {
        return Err(format!(
            "{name:?} contains {c:?}; ASE allows letters, digits, '-', '_' and spaces only"
        ));
    }
    if let Some(word) = name
        .split(['-', '_', ' '])
        .find(|w| RESERVED_WORDS.iter().any(|r| w.eq_ignore_ascii_case(r)))
    {
        return Err(format!(
            "{name:?} contains the word {word:?}, which ASE reserves ({})",
            RESERVED_WORDS.join(", ")
        ));
    }
    if name.contains(' ') {
        let suggestion = name.replace(' ', "_");
        return Err(format!(
            "{name:?} contains a space: ASE allows it, api-warden does not (records and stats carry the name); rename the file to \"{suggestion}.json\""
        ));
    }
    Ok(())
}

/// Check one API JSON file of a folder: its name (from `file`), its shape, and everything
/// [`config::load`] checks. Returns its findings and, when there is no error, the API.
pub fn check_file(file: &str, bytes: &[u8]) -> (Vec<Finding>, Option<FolderApi>) {
    let mut findings = Vec::new();
    let name = name_from_file(file).unwrap_or(file).to_string();
    let name_ok = match check_name(&name) {
        Ok(()) => true,
        Err(m) => {
            findings.push(Finding::error(file, Some(&name), "name", m));
            false
        }
    };
    let meta = match api_metadata(file, &name, bytes, &mut findings) {
        Some(meta) => meta,
        None => return (findings, None),
    };
    // A name breaking the rules still gets its content checked, under a name load accepts.
    let load_name = if name_ok {
        name.clone()
    } else {
        sanitized(&name)
    };
    let single = one_api_config(&load_name, &meta);
    match config::load(single.to_string().as_bytes()) {
        Err(mut e) => {
            if e.api.is_some() {
                e.api = Some(name.clone());
            }
            findings.push(Finding::from_error(file, &e));
            (findings, None)
        }
        Ok(c) => {
            for n in &c.notices {
                let f = Finding::from_notice(file, Some(&name), n);
                findings.push(f.renamed(&load_name, &name));
            }
            let api = c.apis.first().filter(|_| name_ok).map(|a| FolderApi {
                name: name.clone(),
                file: file.to_string(),
                meta,
                hostname: a.hostname.clone(),
                url: a.url.clone(),
            });
            (findings, api)
        }
    }
}

/// The `api_metadata` object of an API JSON file, or the findings saying why there is none.
fn api_metadata(
    file: &str,
    name: &str,
    bytes: &[u8],
    findings: &mut Vec<Finding>,
) -> Option<Map<String, Value>> {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let top = match serde_json::from_slice::<Value>(text) {
        Ok(Value::Object(top)) => top,
        Ok(other) => {
            let m = format!(
                "an API JSON file must be a JSON object {{\"api_metadata\": {{…}}}}, got {}",
                config::describe(&other)
            );
            findings.push(Finding::error(file, None, "", m));
            return None;
        }
        Err(e) => {
            findings.push(Finding::error(file, None, "", format!("not JSON: {e}")));
            return None;
        }
    };
    if top.contains_key("apis") {
        let m = "is a whole plugin configuration; a folder holds one API JSON file per API ({\"api_metadata\": {…}})".to_string();
        findings.push(Finding::error(file, None, "apis", m));
        return None;
    }
    let others: Vec<&str> = top
        .keys()
        .filter(|k| *k != "api_metadata")
        .map(String::as_str)
        .collect();
    if !others.is_empty() {
        let m = format!(
            "top-level keys ignored in a folder of API JSON files (only api_metadata is read, the file names the API): {}",
            others.join(", ")
        );
        findings.push(Finding::warning(file, Some(name), m));
    }
    match top.get("api_metadata") {
        Some(Value::Object(meta)) => Some(meta.clone()),
        None | Some(Value::Null) => {
            let m = "is missing; an API JSON file is {\"api_metadata\": {…}}".to_string();
            findings.push(Finding::error(file, Some(name), "api_metadata", m));
            None
        }
        Some(other) => {
            let m = format!("must be an object, got {}", config::describe(other));
            findings.push(Finding::error(file, Some(name), "api_metadata", m));
            None
        }
    }
}

/// `name` with every character the filter's names refuse replaced by `_`.
pub fn sanitized(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "unnamed".to_string()
    } else {
        s
    }
}

fn one_api_config(name: &str, meta: &Map<String, Value>) -> Value {
    let mut entry = Map::new();
    entry.insert("name".to_string(), Value::String(name.to_string()));
    entry.insert("api_metadata".to_string(), Value::Object(meta.clone()));
    let mut top = Map::new();
    top.insert("apis".to_string(), Value::Array(vec![Value::Object(entry)]));
    Value::Object(top)
}

/// Check a whole folder, given as (file name, bytes) for each `*.json` file: every file, then the
/// cross-file rules (one API per hostname and url). An empty folder is an error.
pub fn check_folder(mut files: Vec<(String, Vec<u8>)>) -> Folder {
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut folder = Folder::default();
    if files.is_empty() {
        folder.findings.push(Finding::error(
            "",
            None,
            "",
            "no API JSON files (*.json) in the folder".to_string(),
        ));
        return folder;
    }
    let mut by_route: HashMap<(String, String), String> = HashMap::new();
    for (file, bytes) in &files {
        let (findings, api) = check_file(file, bytes);
        folder.findings.extend(findings);
        let Some(api) = api else { continue };
        let route = (api.hostname.clone(), api.url.clone());
        if let Some(first) = by_route.get(&route) {
            let m = format!(
                "{first} already defines an API with hostname {:?} and url {:?}; ASE keeps one API per hostname and url",
                api.hostname, api.url
            );
            folder
                .findings
                .push(Finding::error(file, Some(&api.name), "api_metadata.url", m));
            continue;
        }
        by_route.insert(route, file.clone());
        folder.apis.push(api);
    }
    // The filter loads the folder as one configuration: it must agree with the checks above.
    if let Err(e) = config::load(
        plugin_config(&folder.apis, &Map::new())
            .to_string()
            .as_bytes(),
    ) {
        folder.findings.push(Finding::from_error("", &e));
    }
    folder
}

/// The plugin configuration for `apis` (named by file, in order) with the other top-level
/// sections in `sections` (`ase`, `deny_list`, `allow_list`, …) first.
pub fn plugin_config(apis: &[FolderApi], sections: &Map<String, Value>) -> Value {
    let mut top = sections.clone();
    let list = apis
        .iter()
        .map(|a| {
            let mut entry = Map::new();
            entry.insert("name".to_string(), Value::String(a.name.clone()));
            entry.insert("api_metadata".to_string(), Value::Object(a.meta.clone()));
            Value::Object(entry)
        })
        .collect();
    top.insert("apis".to_string(), Value::Array(list));
    Value::Object(top)
}

/// The `ase` section from an `ase.conf`: a JSON object (the section itself, or `{"ase": {…}}`),
/// or ASE's `key=value` text, of which the switches the filter reads are kept (`true` / `false`
/// and integers typed). Returns the section and the `ase.conf` keys left out.
pub fn ase_section(bytes: &[u8]) -> Result<(Map<String, Value>, Vec<String>), String> {
    const KEPT: [&str; 5] = [
        "enable_firewall",
        "enable_ase_detected_attack",
        "enable_xff",
        "xff_num_trusted_hops",
        "detected_attack_ttl_s",
    ];
    let text = String::from_utf8_lossy(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes));
    if text.trim_start().starts_with('{') {
        return match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(mut obj)) => match obj.remove("ase") {
                Some(Value::Object(inner)) => Ok((inner, Vec::new())),
                Some(_) => Err("\"ase\" must be an object".to_string()),
                None => Ok((obj, Vec::new())),
            },
            Ok(_) => Err("must be a JSON object".to_string()),
            Err(e) => Err(format!("not JSON: {e}")),
        };
    }
    let mut section = Map::new();
    let mut skipped = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: expected key=value, got {line:?}", i + 1));
        };
        let (key, value) = (key.trim(), value.trim());
        if !KEPT.contains(&key) {
            skipped.push(key.to_string());
            continue;
        }
        let typed = match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            v => match v.parse::<u64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::String(v.to_string()),
            },
        };
        section.insert(key.to_string(), typed);
    }
    Ok((section, skipped))
}

#[cfg(test)]
mod tests;
