//! `api-warden discover --root ROOT.json [--known DIR|CONFIG] [--out DIR] [--subpath-depth N]
//! [--any-host] [RECORDS…|-]`: ASE's API discovery over the filter's records. The records are
//! read a line at a time ([`records::read_line`], gzip files too) into
//! [`api_warden_core::discover::Discovery`], whose memory grows with the APIs found, not with
//! the records; the APIs found are checked as `lint` checks a folder, then written one file each
//! (or printed as one JSON object). The summary — counts and identifier hints — goes to stderr.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::ExitCode;

use api_warden_core::ase_files::{self, Severity};
use api_warden_core::config;
use api_warden_core::discover::{self, Discovery, Group, MAX_DEPTH};
use serde_json::{Map, Value};

use crate::args::Args;
use crate::{input, records};

pub const USAGE: &str = "usage: api-warden discover --root ROOT.json [--known DIR|CONFIG] [--out DIR] [--subpath-depth N] [--any-host] [RECORDS...|-]";

pub const HELP: &str = "\
usage: api-warden discover --root ROOT.json [--known DIR|CONFIG] [--out DIR] [--subpath-depth N]
                           [--any-host] [RECORDS...|-]

Discover APIs from the traffic of the root API, as ASE's analytics engine does: every request
that matched the root API ROOT.json (url \"/\"; its records carry its name, the file name without
.json) and was answered 2xx counts; requests are grouped by hostname and the first N path
segments, and each group becomes one API JSON file, named after its base path (/shop ->
shop.json, unique, following ASE's naming rules), with ASE's defaults and the jwt object the
seeds' table gives: the root's copied when it sets location, username and clientid; all three
empty when it has no jwt or all three are empty. A root jwt with only some of the keys (which ASE
does not load) discovers nothing.

RECORDS are files of the filter's records, one per line: the access-log lines of the
`api-warden envoy` bootstrap ({\"record\": ..., \"authority\": ..., \"scheme\": ...}), lines whose
first tab-separated field is a record, export batches (a JSON array of records per line), or bare
records. Gzip files are read as such. `-` (or no RECORDS) reads standard input.

options:
  --root ROOT.json     the root API's JSON file (required)
  --known DIR|CONFIG   APIs already defined (an ASE folder or a plugin configuration): requests
                       under their hostname and url are not discovered again
  --out DIR            write one NAME.json per API into DIR (created if missing); without it the
                       APIs are printed as one JSON object {NAME: API JSON}
  --subpath-depth N    path segments in a base path, 1 to 6 (default 1)
  --any-host           hostname \"*\" in every API instead of the host seen

The summary on standard error gives, per API, its requests, distinct clients and the identifiers
seen (Bearer tokens, API-key-looking query parameters and headers, cookies): hints for the
operator, never written into the files.

exit status: 0 done (also when nothing is discovered), 1 an unreadable or bad ROOT, --known or
RECORDS file, or a root jwt with only some keys, 2 usage error";

/// The options, checked.
struct Opts<'a> {
    root: &'a str,
    known: Option<&'a str>,
    out: Option<&'a str>,
    depth: usize,
    any_host: bool,
    inputs: Vec<&'a str>,
}

/// Run `discover`.
pub fn run(args: &[String]) -> ExitCode {
    let valued = ["--root", "--known", "--out", "--subpath-depth"];
    let a = match Args::parse(args, &["--any-host"], &valued) {
        Ok(a) => a,
        Err(why) => return crate::usage_error(&format!("discover: {why}"), USAGE),
    };
    if a.help {
        return crate::print_help(HELP);
    }
    let o = match opts(&a) {
        Ok(o) => o,
        Err(why) => return crate::usage_error(&format!("discover: {why}"), USAGE),
    };
    match discover_all(&o) {
        Ok((text, notes)) => {
            for n in notes {
                eprintln!("api-warden: discover: {n}");
            }
            match text {
                Some(t) => crate::print_result(&t),
                None => ExitCode::SUCCESS,
            }
        }
        Err(lines) => crate::input_errors(&lines),
    }
}

/// The options of `a`, or the usage error.
fn opts(a: &Args) -> Result<Opts<'_>, String> {
    let root = a.value("--root").ok_or("--root ROOT.json is required")?;
    let depth = match a.value("--subpath-depth") {
        None => 1,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|d| (1..=MAX_DEPTH).contains(d))
            .ok_or(format!("--subpath-depth {v:?}: expected 1 to {MAX_DEPTH}"))?,
    };
    let mut inputs: Vec<&str> = a.positional.iter().map(String::as_str).collect();
    if inputs.is_empty() {
        inputs.push("-");
    }
    if inputs.iter().filter(|p| **p == "-").count() > 1 {
        return Err("- (standard input) given twice".to_string());
    }
    Ok(Opts {
        root,
        known: a.value("--known"),
        out: a.value("--out"),
        depth,
        any_host: a.flag("--any-host"),
        inputs,
    })
}

/// Everything: the text for stdout (`None` with `--out`) and the summary, or the error lines.
fn discover_all(o: &Opts) -> Result<(Option<String>, Vec<String>), Vec<String>> {
    let (root_name, meta) = load_root(o.root).map_err(|m| vec![format!("{}: {m}", o.root)])?;
    let jwt = discover::discovered_jwt(&meta).map_err(|m| vec![format!("{}: {m}", o.root)])?;
    let mut d = Discovery {
        depth: o.depth,
        any_host: o.any_host,
        ..Discovery::default()
    };
    d.taken.insert(root_name.clone());
    if let Some(k) = o.known {
        let (known, names) = load_known(k)?;
        d.known = known;
        d.taken.extend(names);
    }
    let mut stats = Stats::default();
    for path in &o.inputs {
        read_records(path, &root_name, &mut d, &mut stats).map_err(|m| vec![m])?;
    }
    let apis = d.apis(&jwt);
    check_apis(&apis)?;
    let mut notes = stats.lines(&root_name, &d);
    notes.extend(apis.iter().map(|(name, api, g)| summary(name, api, g)));
    let text = match o.out {
        Some(dir) => {
            write_files(dir, &apis).map_err(|m| vec![m])?;
            notes.push(format!("{} API files written into {dir}", apis.len()));
            None
        }
        None => {
            let all: Map<String, Value> = apis
                .iter()
                .map(|(n, api, _)| (n.clone(), api.clone()))
                .collect();
            let text = serde_json::to_string_pretty(&Value::Object(all)).unwrap_or_default();
            Some(format!("{text}\n"))
        }
    };
    Ok((text, notes))
}

/// The root API's name (its file name without `.json`) and `api_metadata`; its url must be `/`.
fn load_root(path: &str) -> Result<(String, Map<String, Value>), String> {
    let bytes = input::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let top: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Some(Value::Object(meta)) = top.get("api_metadata") else {
        return Err("not an API JSON file ({\"api_metadata\": {...}})".to_string());
    };
    let url = meta.get("url").and_then(Value::as_str).unwrap_or("").trim();
    if url != "/" {
        return Err(format!(
            "the root API's url is {url:?}, not \"/\": discovery starts from the root API"
        ));
    }
    let file = Path::new(path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = ase_files::name_from_file(&file)
        .unwrap_or("root")
        .to_string();
    Ok((name, meta.clone()))
}

/// What `--known` defines: (hostname, url) pairs, and API names.
type Known = (HashSet<(String, String)>, BTreeSet<String>);

/// The (hostname, url) pairs and names `--known` defines: an ASE folder or a configuration.
fn load_known(path: &str) -> Result<Known, Vec<String>> {
    if Path::new(path).is_dir() {
        let folder = input::checked_folder(path)?;
        let pairs = folder
            .apis
            .iter()
            .map(|a| (a.hostname.clone(), a.url.clone()));
        let names = folder.apis.iter().map(|a| a.name.clone());
        return Ok((pairs.collect(), names.collect()));
    }
    let bytes = input::read(path).map_err(|e| vec![format!("{path}: cannot read: {e}")])?;
    let cfg = config::load(&bytes).map_err(|e| vec![format!("{path}: {}", e.diagnostic())])?;
    let pairs = cfg.apis.iter().map(|a| (a.hostname.clone(), a.url.clone()));
    let mut names: BTreeSet<String> = cfg.apis.iter().map(|a| a.name.clone()).collect();
    let file = Path::new(path).file_name().map(|f| f.to_string_lossy());
    if let Some(stem) = file.as_deref().and_then(ase_files::name_from_file) {
        names.insert(stem.to_string());
    }
    Ok((pairs.collect(), names))
}

/// What reading the records gave, for the summary.
#[derive(Default)]
struct Stats {
    lines: u64,
    records: u64,
    root: u64,
    bad: u64,
    first_bad: Vec<String>,
}

/// Bad lines named in the summary at most.
const BAD_SHOWN: usize = 5;

impl Stats {
    /// The summary's opening lines.
    fn lines(&self, root: &str, d: &Discovery) -> Vec<String> {
        let grouped: u64 = d.groups.values().map(|g| g.requests).sum();
        let mut out = vec![format!(
            "{} lines, {} records, {} of the root API {root:?}, {grouped} grouped into {} APIs \
             ({} not answered 2xx, at \"/\" or already known)",
            self.lines,
            self.records,
            self.root,
            d.groups.len(),
            self.root.saturating_sub(grouped)
        )];
        if self.bad > 0 {
            out.push(format!(
                "{} lines not records, left out: {}{}",
                self.bad,
                self.first_bad.join("; "),
                if self.bad > BAD_SHOWN as u64 {
                    "; ..."
                } else {
                    ""
                }
            ));
        }
        out
    }
}

/// Read the records of `path` (`-`: standard input; gzip when it starts with gzip's magic).
fn read_records(path: &str, root: &str, d: &mut Discovery, s: &mut Stats) -> Result<(), String> {
    let raw: Box<dyn Read> = if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| format!("{path}: cannot read: {e}"))?)
    };
    let mut r = BufReader::with_capacity(1 << 16, raw);
    let gzip = r
        .fill_buf()
        .map_err(|e| format!("{path}: cannot read: {e}"))?
        .starts_with(&[0x1f, 0x8b]);
    let mut r: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(r),
        ))
    } else {
        Box::new(r)
    };
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let n = r
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("{path}: cannot read line {}: {e}", s.lines + 1))?;
        if n == 0 {
            return Ok(());
        }
        s.lines += 1;
        let got = std::str::from_utf8(&buf)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(|line| records::read_line(line, root));
        match got {
            Ok(recs) => {
                s.records += recs.other + recs.root.len() as u64;
                s.root += recs.root.len() as u64;
                recs.root.iter().for_each(|seen| d.observe(seen));
            }
            Err(why) => {
                s.bad += 1;
                if s.first_bad.len() < BAD_SHOWN {
                    s.first_bad.push(format!("{path}:{}: {why}", s.lines));
                }
            }
        }
    }
}

/// The files as `lint` checks a folder (names, fields, duplicates): `Err` if one would fail.
fn check_apis(apis: &[(String, Value, &Group)]) -> Result<(), Vec<String>> {
    if apis.is_empty() {
        return Ok(());
    }
    let files = apis
        .iter()
        .map(|(n, api, _)| (format!("{n}.json"), api.to_string().into_bytes()))
        .collect();
    let folder = ase_files::check_folder(files);
    let errors: Vec<String> = folder
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| {
            format!(
                "discovered {}: {} (a bug: please report it)",
                f.file, f.text
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Write `NAME.json` per API into `dir`.
fn write_files(dir: &str, apis: &[(String, Value, &Group)]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{dir}: cannot create: {e}"))?;
    for (name, api, _) in apis {
        let path = Path::new(dir).join(format!("{name}.json"));
        let text = serde_json::to_string_pretty(api).unwrap_or_default();
        std::fs::write(&path, format!("{text}\n"))
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    }
    Ok(())
}

/// One API's summary line: where, requests, clients, identifier hints (names only).
fn summary(name: &str, api: &Value, g: &Group) -> String {
    let m = api.get("api_metadata");
    let s = |k: &str| {
        m.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let clients = if g.clients.len() >= discover::MAX_CLIENTS {
        format!("at least {}", g.clients.len())
    } else {
        g.clients.len().to_string()
    };
    let hints = if g.hints.is_empty() {
        "none".to_string()
    } else {
        let h: Vec<String> = g.hints.iter().map(|(h, n)| format!("{h} ({n})")).collect();
        h.join(", ")
    };
    format!(
        "{name}.json: {}://{}{}: {} requests, {clients} clients; identifiers seen: {hints}",
        s("protocol"),
        s("hostname"),
        s("url"),
        g.requests
    )
}
