//! The test kit of the CLI tests: run the real binary, make temporary folders, compare with
//! golden files (`UPDATE_GOLDEN=1 cargo test -p api-warden-cli` rewrites them).
#![allow(dead_code, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a run gave: exit status, stdout, stderr.
pub struct Run {
    pub code: i32,
    pub out: String,
    pub err: String,
}

/// Run `api-warden args…` with `stdin`.
pub fn run(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_api-warden"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("api-warden starts");
    let input = stdin.unwrap_or(b"").to_vec();
    let mut pipe = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let output = child.wait_with_output().expect("api-warden runs");
    feeder.join().expect("stdin written");
    Run {
        code: output.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&output.stdout).into_owned(),
        err: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A fresh directory for one test, with `files` written into it.
pub fn dir(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = std::env::temp_dir().join(format!("api-warden-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    for (name, text) in files {
        std::fs::write(d.join(name), text).expect("temp file");
    }
    d
}

/// `text` with the temporary directory `d` shown as `DIR`.
pub fn relative(text: &str, d: &Path) -> String {
    text.replace(&d.display().to_string(), "DIR")
}

/// Compare `got` with `tests/golden/NAME` (or write it with `UPDATE_GOLDEN=1`).
pub fn golden(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).expect("golden written");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if want != got {
        panic!(
            "{} differs (UPDATE_GOLDEN=1 rewrites it)\n--- want\n{want}\n--- got\n{got}",
            path.display()
        );
    }
}

/// A run as one text for a golden file: status, stdout, stderr.
pub fn transcript(r: &Run, d: &Path) -> String {
    format!(
        "exit {}\n--- stdout\n{}--- stderr\n{}",
        r.code,
        relative(&r.out, d),
        relative(&r.err, d)
    )
}
