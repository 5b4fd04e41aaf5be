//! The `api-warden` command: checks plugin configurations and API JSON files with the same
//! entry point the filter uses ([`api_warden_core::config::load`]), so the command and the filter
//! never disagree. Argument parsing is hand-rolled: three commands need no parser crate.

use std::process::ExitCode;

mod lint;

const USAGE: &str = "usage: api-warden lint FILE... | api-warden --help | api-warden --version";

const HELP: &str = "\
api-warden: API security for Envoy, configured with PingIntelligence ASE API JSON

usage:
  api-warden lint FILE...   check plugin configurations and API JSON files
  api-warden --help         show this help
  api-warden --version      show the version

lint checks each FILE with the filter's own rules. A FILE is either a whole plugin configuration
({\"apis\": [...], ...}) or one ASE API JSON file ({\"api_metadata\": {...}}), whose API is named
after the file, without .json, as ASE does. `-` reads standard input.

Each problem is printed as `FILE: api \"NAME\": FIELD: message` (without the api part when the
problem is not about one API); warnings and notes are marked `warning:` and `note:`.

exit status: 0 all files load (warnings allowed), 1 a file is invalid or unreadable,
2 usage error";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((cmd, rest)) if cmd == "lint" => lint::run(rest),
        Some((flag, [])) if flag == "--version" || flag == "-V" => {
            println!("api-warden {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some((flag, [])) if flag == "--help" || flag == "-h" || flag == "help" => {
            println!("{HELP}");
            ExitCode::SUCCESS
        }
        Some((other, _)) => usage_error(&format!("unknown command or option {other:?}")),
        None => usage_error("no command given"),
    }
}

/// Print `why` and the usage line to stderr; exit status 2.
fn usage_error(why: &str) -> ExitCode {
    eprintln!("api-warden: {why}\n{USAGE}\n(api-warden --help for more)");
    ExitCode::from(2)
}
