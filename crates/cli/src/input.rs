//! Reading what the subcommands are given: a file or standard input (`-`), and an ASE folder of
//! API JSON files checked with [`ase_files::check_folder`]. The only file-system reads besides
//! `discover`'s record streams.

use std::io::Read;
use std::path::Path;

use api_warden_core::ase_files::{self, Finding, Folder};

/// The bytes of `path`, or of standard input for `-`.
pub fn read(path: &str) -> std::io::Result<Vec<u8>> {
    if path == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        return Ok(bytes);
    }
    std::fs::read(path)
}

/// The `*.json` files of folder `dir` (not its subfolders), checked as ASE's `config/api`
/// folder. A file that cannot be read is an error finding; a folder that cannot be listed is
/// `Err`.
pub fn folder(dir: &Path) -> std::io::Result<Folder> {
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if ase_files::name_from_file(&name).is_none() || name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            continue;
        }
        match std::fs::read(&path) {
            Ok(bytes) => files.push((name, bytes)),
            Err(e) => unreadable.push(Finding::error(&name, None, "", format!("cannot read: {e}"))),
        }
    }
    let empty_but_unreadable = files.is_empty() && !unreadable.is_empty();
    let mut folder = ase_files::check_folder(files);
    if empty_but_unreadable {
        folder.findings.clear();
    }
    folder.findings.extend(unreadable);
    folder.findings.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(folder)
}

/// The folder `dir`, or `Err` with the lines to print (its errors) when it cannot be used.
pub fn checked_folder(dir: &str) -> Result<Folder, Vec<String>> {
    let folder = folder(Path::new(dir)).map_err(|e| vec![format!("{dir}: cannot read: {e}")])?;
    if folder.has_errors() {
        return Err(folder
            .findings
            .iter()
            .filter(|f| f.severity == ase_files::Severity::Error)
            .map(|f| format!("{}: {}", shown(dir, &f.file), f.text))
            .collect());
    }
    Ok(folder)
}

/// `dir/file`, or `dir` for a finding about the folder itself.
pub fn shown(dir: &str, file: &str) -> String {
    if file.is_empty() {
        dir.to_string()
    } else {
        Path::new(dir).join(file).display().to_string()
    }
}
