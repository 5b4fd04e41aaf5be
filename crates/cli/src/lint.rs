//! `api-warden lint FILE...`: load each file with [`config::load`] and print its errors, warnings
//! and notes, one line each, prefixed with the file's path.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use api_warden_core::config::{self, Notice};
use serde_json::Value;

/// Lint every file in `args` (`-` is stdin); the exit status says whether all of them load.
pub fn run(args: &[String]) -> ExitCode {
    if args.is_empty() {
        return crate::usage_error("lint needs at least one FILE (or - for standard input)");
    }
    if let Some(opt) = args
        .iter()
        .find(|a| a.starts_with('-') && a.as_str() != "-")
    {
        return crate::usage_error(&format!("lint: unknown option {opt:?}"));
    }
    let mut all_ok = true;
    let mut out = std::io::stdout().lock();
    for path in args {
        let (lines, ok) = lint_file(path);
        all_ok &= ok;
        for line in lines {
            // A closed stdout (`| head`) must not turn into a panic.
            if writeln!(out, "{line}").is_err() {
                return ExitCode::from(1);
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The report lines for one file and whether it loads.
fn lint_file(path: &str) -> (Vec<String>, bool) {
    let shown = if path == "-" { "<stdin>" } else { path };
    match read(path) {
        Ok(bytes) => lint_bytes(shown, api_name(path).as_deref(), &bytes),
        Err(e) => (vec![format!("{shown}: cannot read: {e}")], false),
    }
}

fn read(path: &str) -> std::io::Result<Vec<u8>> {
    if path == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        return Ok(bytes);
    }
    std::fs::read(path)
}

/// ASE's layout names an API after its file: `orders.json` holds API `orders` (none for stdin).
fn api_name(path: &str) -> Option<String> {
    if path == "-" {
        return None;
    }
    let name = Path::new(path).file_name()?.to_str()?;
    Some(name.strip_suffix(".json").unwrap_or(name).to_string())
}

/// Lint `bytes`, shown as `shown`; a single API JSON file without a `name` gets `name`.
pub(crate) fn lint_bytes(shown: &str, name: Option<&str>, bytes: &[u8]) -> (Vec<String>, bool) {
    let bytes = match name {
        Some(name) => with_api_name(bytes, name),
        None => bytes.to_vec(),
    };
    match config::load(&bytes) {
        Ok(c) => {
            let mut lines: Vec<String> = c
                .notices
                .iter()
                .map(|n| match n {
                    Notice::Warn(m) => format!("{shown}: warning: {m}"),
                    Notice::Info(m) => format!("{shown}: note: {m}"),
                })
                .collect();
            let n = c.apis.len();
            lines.push(format!(
                "{shown}: ok, {n} API{}",
                if n == 1 { "" } else { "s" }
            ));
            (lines, true)
        }
        Err(e) => (vec![format!("{shown}: {}", e.diagnostic())], false),
    }
}

/// `{"api_metadata": …}` without a `name` → the same object with `"name": name`; anything else
/// unchanged (so that [`config::load`] reports it as it is).
fn with_api_name(bytes: &[u8], name: &str) -> Vec<u8> {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let Ok(Value::Object(mut top)) = serde_json::from_slice::<Value>(text) else {
        return bytes.to_vec();
    };
    let single = top.contains_key("api_metadata") && !top.contains_key("apis");
    if !single || top.get("name").is_some_and(|n| !n.is_null()) {
        return bytes.to_vec();
    }
    top.insert("name".to_string(), Value::String(name.to_string()));
    Value::Object(top).to_string().into_bytes()
}
