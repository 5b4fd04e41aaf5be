//! The `api-warden` command: checks plugin configurations, API JSON files and ASE folders with
//! the same entry point the filter uses ([`api_warden_core::config::load`]), turns an ASE folder
//! into the filter's configuration, an Envoy bootstrap or Istio manifests, and discovers APIs from
//! records. Argument parsing is hand-rolled ([`args`]): the subcommands need no parser crate.

use std::io::Write;
use std::process::ExitCode;

mod args;
mod config_cmd;
mod discover_cmd;
mod input;
mod lint;
mod records;
mod render_cmd;

const USAGE: &str = "\
usage: api-warden lint [--strict] [--format text|json] PATH...
       api-warden config DIR [--ase FILE] [--deny FILE] [--allow FILE]
       api-warden envoy DIR [--listen ADDR:PORT] [--admin ADDR:PORT] [--wasm PATH] [--sideband HOST:PORT]...
       api-warden istio DIR --namespace NS --selector KEY=VALUE [--image oci://...|--url https://...]
       api-warden discover --root ROOT.json [--known DIR|CONFIG] [--out DIR] [--subpath-depth N] [--any-host] [RECORDS...|-]
       api-warden --help | --version | COMMAND --help";

const HELP: &str = "\
api-warden: API security for Envoy, configured with PingIntelligence ASE API JSON

usage:
  api-warden lint PATH...     check ASE folders, API JSON files and plugin configurations
  api-warden config DIR       print the plugin configuration for an ASE folder of API JSON files
  api-warden envoy DIR        print a complete Envoy bootstrap for the folder
  api-warden istio DIR        print Istio manifests (WasmPlugin, DestinationRules) for the folder
  api-warden discover         discover APIs from the root API's records (--root ROOT.json)
  api-warden --help           show this help (COMMAND --help: the command's own)
  api-warden --version        show the version

An ASE folder holds one API JSON file ({\"api_metadata\": {...}}) per API, named NAME.json for
API NAME, as ASE's config/api folder does. `-` reads standard input.

exit status: 0 success, 1 findings or errors in the input, 2 usage error.
Results go to standard output, messages to standard error.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((cmd, rest)) if cmd == "lint" => lint::run(rest),
        Some((cmd, rest)) if cmd == "config" => config_cmd::run(rest),
        Some((cmd, rest)) if cmd == "envoy" => render_cmd::run_envoy(rest),
        Some((cmd, rest)) if cmd == "istio" => render_cmd::run_istio(rest),
        Some((cmd, rest)) if cmd == "discover" => discover_cmd::run(rest),
        Some((flag, [])) if flag == "--version" || flag == "-V" => {
            println!("api-warden {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some((flag, [])) if flag == "--help" || flag == "-h" || flag == "help" => print_help(HELP),
        Some((other, _)) => usage_error(&format!("unknown command or option {other:?}"), USAGE),
        None => usage_error("no command given", USAGE),
    }
}

/// Print `why` and `usage` to stderr; exit status 2.
fn usage_error(why: &str, usage: &str) -> ExitCode {
    eprintln!("api-warden: {why}\n{usage}\n(api-warden --help for more)");
    ExitCode::from(2)
}

/// Print `help` to stdout; exit status 0.
fn print_help(help: &str) -> ExitCode {
    println!("{help}");
    ExitCode::SUCCESS
}

/// Print `text` to stdout (a closed stdout is not a panic); exit 0, or 1 when it cannot be written.
fn print_result(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// Print `lines` to stderr; exit status 1 (errors in the input).
fn input_errors(lines: &[String]) -> ExitCode {
    let mut err = std::io::stderr().lock();
    for line in lines {
        let _ = writeln!(err, "{line}");
    }
    ExitCode::from(1)
}
