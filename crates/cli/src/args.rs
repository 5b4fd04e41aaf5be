//! Hand-rolled argument parsing shared by the subcommands: positional arguments, `--flag`,
//! `--option VALUE` / `--option=VALUE` (repeatable), `--` ending options, `-` as a positional
//! (standard input), and `--help` / `-h`.

/// What a subcommand's arguments are.
#[derive(Debug, Default)]
pub struct Args {
    /// Positional arguments, in order.
    pub positional: Vec<String>,
    /// `(option, value)` pairs in order; flags have no value.
    pub options: Vec<(String, Option<String>)>,
    /// `--help` or `-h` was given.
    pub help: bool,
}

impl Args {
    /// Parse `args`: `flags` take no value, `valued` take one. Anything else starting with `-`
    /// (except `-` itself) is a usage error.
    pub fn parse(args: &[String], flags: &[&str], valued: &[&str]) -> Result<Args, String> {
        let mut out = Args::default();
        let mut it = args.iter();
        let mut only_positional = false;
        while let Some(arg) = it.next() {
            if only_positional || arg == "-" || !arg.starts_with('-') {
                out.positional.push(arg.clone());
                continue;
            }
            if arg == "--" {
                only_positional = true;
                continue;
            }
            if arg == "--help" || arg == "-h" {
                out.help = true;
                continue;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (arg.as_str(), None),
            };
            if flags.contains(&name) {
                if inline.is_some() {
                    return Err(format!("{name} takes no value"));
                }
                out.options.push((name.to_string(), None));
            } else if valued.contains(&name) {
                let value = match inline {
                    Some(v) => v,
                    None => it.next().cloned().ok_or(format!("{name} needs a value"))?,
                };
                out.options.push((name.to_string(), Some(value)));
            } else {
                return Err(format!("unknown option {arg:?}"));
            }
        }
        Ok(out)
    }

    /// Was flag `name` given?
    pub fn flag(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| n == name)
    }

    /// The last value of option `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Every value of option `name`, in order.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.options
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options_flags_and_positionals() {
        let a = Args::parse(
            &s(&[
                "a", "--strict", "--format", "json", "-", "--out=d", "--", "--x",
            ]),
            &["--strict"],
            &["--format", "--out"],
        )
        .unwrap();
        assert_eq!(a.positional, ["a", "-", "--x"]);
        assert!(a.flag("--strict"));
        assert_eq!(a.value("--format"), Some("json"));
        assert_eq!(a.value("--out"), Some("d"));
        assert!(!a.help);
        assert!(Args::parse(&s(&["--nope"]), &[], &[]).is_err());
        assert!(Args::parse(&s(&["--format"]), &[], &["--format"]).is_err());
        assert!(Args::parse(&s(&["--strict=1"]), &["--strict"], &[]).is_err());
        assert!(Args::parse(&s(&["-h"]), &[], &[]).unwrap().help);
    }
}
