//! `api-warden config DIR [--ase FILE] [--deny FILE] [--allow FILE]`: the plugin configuration
//! (JSON) for an ASE folder, built by [`ase_files::plugin_config`] from exactly the APIs `lint`
//! accepts, then loaded with [`config::load`] as the filter will.

use std::process::ExitCode;

use api_warden_core::ase_files::{self, Severity};
use api_warden_core::config;
use serde_json::{Map, Value};

use crate::args::Args;
use crate::input;

pub const USAGE: &str = "usage: api-warden config DIR [--ase FILE] [--deny FILE] [--allow FILE]";

pub const HELP: &str = "\
usage: api-warden config DIR [--ase FILE] [--deny FILE] [--allow FILE]

Print the filter's plugin configuration (JSON) for the ASE folder DIR: one `apis` entry per API
JSON file, named after the file, in file-name order, its api_metadata unchanged.

options:
  --ase FILE     the `ase` switches: ASE's ase.conf (key=value lines; enable_firewall,
                 enable_ase_detected_attack, enable_xff, xff_num_trusted_hops and
                 detected_attack_ttl_s are kept) or a JSON object
  --deny FILE    the `deny_list`: a JSON object, identifier type -> array of values
                 ({\"ip\": [...], \"token\": [...], \"api_key\": [...], \"cookie\": [...], \"username\": [...]})
  --allow FILE   the `allow_list`, the same shape

A folder with errors (see `api-warden lint DIR`) prints nothing: the errors go to standard error.

exit status: 0 printed, 1 errors in the folder or the files, 2 usage error";

/// Run `config`.
pub fn run(args: &[String]) -> ExitCode {
    let a = match Args::parse(args, &[], &["--ase", "--deny", "--allow"]) {
        Ok(a) => a,
        Err(why) => return crate::usage_error(&format!("config: {why}"), USAGE),
    };
    if a.help {
        return crate::print_help(HELP);
    }
    let [dir] = a.positional.as_slice() else {
        return crate::usage_error("config needs exactly one DIR", USAGE);
    };
    match build(dir, &a) {
        Ok((cfg, notes)) => {
            for n in notes {
                eprintln!("api-warden: {n}");
            }
            let text = serde_json::to_string_pretty(&cfg).unwrap_or_default();
            crate::print_result(&format!("{text}\n"))
        }
        Err(lines) => crate::input_errors(&lines),
    }
}

/// The configuration for `dir` with the sections the options name, and notes for stderr;
/// `Err` with the lines to print when the folder or a file has errors.
pub fn build(dir: &str, a: &Args) -> Result<(Value, Vec<String>), Vec<String>> {
    let folder = input::checked_folder(dir)?;
    let mut sections = Map::new();
    let mut notes = Vec::new();
    if let Some(path) = a.value("--ase") {
        let bytes = input::read(path).map_err(|e| vec![format!("{path}: cannot read: {e}")])?;
        let (ase, skipped) =
            ase_files::ase_section(&bytes).map_err(|m| vec![format!("{path}: {m}")])?;
        if !skipped.is_empty() {
            notes.push(format!(
                "{path}: ase.conf keys the filter does not use, left out: {}",
                skipped.join(", ")
            ));
        }
        sections.insert("ase".to_string(), Value::Object(ase));
    }
    for (opt, key) in [("--deny", "deny_list"), ("--allow", "allow_list")] {
        if let Some(path) = a.value(opt) {
            let bytes = input::read(path).map_err(|e| vec![format!("{path}: cannot read: {e}")])?;
            let list: Value = serde_json::from_slice(&bytes)
                .map_err(|e| vec![format!("{path}: not JSON: {e}")])?;
            sections.insert(key.to_string(), list);
        }
    }
    let cfg = ase_files::plugin_config(&folder.apis, &sections);
    // What the filter will do with it: any error here (a bad list, a bad switch) is refused now.
    match config::load(cfg.to_string().as_bytes()) {
        Ok(c) => {
            notes.extend(
                c.notices
                    .iter()
                    .map(|n| ase_files::Finding::from_notice("", None, n))
                    .filter(|f| f.severity == Severity::Warning)
                    .map(|f| f.text),
            );
            Ok((cfg, notes))
        }
        Err(e) => Err(vec![format!("{dir}: {}", e.diagnostic())]),
    }
}
