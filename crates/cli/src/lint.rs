//! `api-warden lint PATH...`: check plugin configurations, API JSON files and ASE folders of API
//! JSON files with the filter's own rules ([`config::load`]) plus ASE's naming and cross-file
//! rules ([`ase_files`]); print one line per finding, or a JSON array with `--format json`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use api_warden_core::ase_files::{self, Finding, Severity};
use api_warden_core::config;
use serde::Serialize;
use serde_json::Value;

use crate::args::Args;
use crate::input;

pub const HELP: &str = "\
usage: api-warden lint [--strict] [--format text|json] PATH...

Check each PATH with the filter's own rules. A PATH is
  - a folder of ASE API JSON files (ASE's config/api layout): each NAME.json holds API NAME, which
    must follow ASE's naming rules (at most 160 characters; letters, digits, '-', '_'; first
    character a letter or digit; not the words model, threshold, all, decoyall; api-warden adds:
    no spaces), and no two files may have the same hostname and url;
  - one API JSON file ({\"api_metadata\": {...}}), whose API is named after the file;
  - a whole plugin configuration ({\"apis\": [...], ...});
  - `-`: standard input (a plugin configuration or an API JSON file).

Each finding is one line, `PATH: api \"NAME\": FIELD: message` (without the api or field part
when the finding is not about one), warnings and notes marked `warning:` and `note:`; each PATH
that loads ends with `PATH: ok, N APIs`.

options:
  --format json   print a JSON array of {path, api, field, severity, message} instead
  --strict        warnings fail too

exit status: 0 every PATH is valid (warnings allowed unless --strict), 1 an error (or, with
--strict, a warning) or an unreadable PATH, 2 usage error";

pub const USAGE: &str = "usage: api-warden lint [--strict] [--format text|json] PATH...";

/// One PATH's findings (each with the path to show) and, when it loads, its `ok` line.
struct Report {
    findings: Vec<(String, Finding)>,
    ok: Option<String>,
}

/// Lint every PATH in `args`; the exit status says whether all of them are valid.
pub fn run(args: &[String]) -> ExitCode {
    let a = match Args::parse(args, &["--strict"], &["--format"]) {
        Ok(a) => a,
        Err(why) => return crate::usage_error(&format!("lint: {why}"), USAGE),
    };
    if a.help {
        return crate::print_help(HELP);
    }
    let json_format = match a.value("--format") {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            return crate::usage_error(
                &format!("lint: --format {other:?}: expected text or json"),
                USAGE,
            )
        }
    };
    if a.positional.is_empty() {
        return crate::usage_error(
            "lint needs at least one PATH (or - for standard input)",
            USAGE,
        );
    }
    let reports: Vec<Report> = a.positional.iter().map(|p| lint_path(p)).collect();
    let strict = a.flag("--strict");
    let failed = reports
        .iter()
        .flat_map(|r| &r.findings)
        .any(|(_, f)| f.severity == Severity::Error || (strict && f.severity == Severity::Warning));
    let text = if json_format {
        as_json(&reports)
    } else {
        as_lines(&reports)
    };
    // A closed stdout (`| head`) must not turn into a panic.
    if std::io::stdout().lock().write_all(text.as_bytes()).is_err() || failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn as_lines(reports: &[Report]) -> String {
    let mut out = String::new();
    for r in reports {
        for (path, f) in &r.findings {
            out.push_str(&format!("{path}: {}\n", f.text));
        }
        if let Some(ok) = &r.ok {
            out.push_str(ok);
            out.push('\n');
        }
    }
    out
}

/// One finding of `--format json`, members in this order.
#[derive(Serialize)]
struct JsonFinding<'a> {
    path: &'a str,
    api: Option<&'a str>,
    field: &'a str,
    severity: &'a str,
    message: &'a str,
}

fn as_json(reports: &[Report]) -> String {
    let items: Vec<JsonFinding<'_>> = reports
        .iter()
        .flat_map(|r| &r.findings)
        .map(|(path, f)| JsonFinding {
            path,
            api: f.api.as_deref(),
            field: &f.field,
            severity: f.severity.as_str(),
            message: &f.message,
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&items).unwrap_or_default();
    text.push('\n');
    text
}

/// The report for one PATH: a folder, a file, or standard input.
fn lint_path(path: &str) -> Report {
    if path != "-" && Path::new(path).is_dir() {
        return lint_folder(path);
    }
    let shown = if path == "-" { "<stdin>" } else { path };
    match input::read(path) {
        Ok(bytes) => lint_bytes(shown, api_name(path).as_deref(), &bytes),
        Err(e) => Report {
            findings: vec![(
                shown.to_string(),
                Finding::error("", None, "", format!("cannot read: {e}")),
            )],
            ok: None,
        },
    }
}

fn lint_folder(dir: &str) -> Report {
    let folder = match input::folder(Path::new(dir)) {
        Ok(f) => f,
        Err(e) => {
            let f = Finding::error("", None, "", format!("cannot read: {e}"));
            return Report {
                findings: vec![(dir.to_string(), f)],
                ok: None,
            };
        }
    };
    let n = folder.apis.len();
    let ok = (!folder.has_errors()).then(|| format!("{dir}: ok, {n} API{}", plural(n)));
    let findings = folder
        .findings
        .into_iter()
        .map(|f| (input::shown(dir, &f.file), f))
        .collect();
    Report { findings, ok }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// ASE's layout names an API after its file: `orders.json` holds API `orders` (none for stdin).
fn api_name(path: &str) -> Option<String> {
    if path == "-" {
        return None;
    }
    let name = Path::new(path).file_name()?.to_str()?;
    Some(name.strip_suffix(".json").unwrap_or(name).to_string())
}

/// Lint `bytes`, shown as `shown`; a single API JSON file without a `name` gets `name`, which
/// must then follow ASE's naming rules.
fn lint_bytes(shown: &str, name: Option<&str>, bytes: &[u8]) -> Report {
    let mut findings = Vec::new();
    let mut named = None;
    let mut load_name = String::new();
    let mut bytes = bytes.to_vec();
    if let Some(name) = name {
        let check = ase_files::check_name(name);
        // A name breaking the rules still gets the content checked, under a name load accepts.
        load_name = match &check {
            Ok(()) => name.to_string(),
            Err(_) => ase_files::sanitized(name),
        };
        if let Some(named_bytes) = with_api_name(&bytes, &load_name) {
            bytes = named_bytes;
            named = Some(name.to_string());
            if let Err(m) = check {
                findings.push((shown.to_string(), Finding::error("", Some(name), "name", m)));
            }
        }
    }
    let ok = match config::load(&bytes) {
        Ok(c) => {
            let api = named.as_deref();
            findings.extend(
                c.notices
                    .iter()
                    .map(|n| Finding::from_notice("", api, n))
                    .map(|f| match api {
                        Some(name) => f.renamed(&load_name, name),
                        None => f,
                    })
                    .map(|f| (shown.to_string(), f)),
            );
            let n = c.apis.len();
            Some(format!("{shown}: ok, {n} API{}", plural(n)))
        }
        Err(mut e) => {
            if let (Some(_), Some(name)) = (&e.api, &named) {
                e.api = Some(name.clone());
            }
            findings.push((shown.to_string(), Finding::from_error("", &e)));
            None
        }
    };
    let ok = ok.filter(|_| findings.iter().all(|(_, f)| f.severity != Severity::Error));
    Report { findings, ok }
}

/// `{"api_metadata": …}` without a `name` → the same object with `"name": name`; `None` for
/// anything else (left for [`config::load`] to report as it is).
fn with_api_name(bytes: &[u8], name: &str) -> Option<Vec<u8>> {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let Ok(Value::Object(mut top)) = serde_json::from_slice::<Value>(text) else {
        return None;
    };
    let single = top.contains_key("api_metadata") && !top.contains_key("apis");
    if !single || top.get("name").is_some_and(|n| !n.is_null()) {
        return None;
    }
    top.insert("name".to_string(), Value::String(name.to_string()));
    Some(Value::Object(top).to_string().into_bytes())
}
