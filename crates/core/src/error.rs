//! The crate's error types: a [`ConfigError`] names the API and the field of an invalid plugin
//! configuration; host errors carry the host status. No host calls here.

use std::fmt;

/// Every error api-warden reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The plugin configuration is invalid.
    Config(ConfigError),
    /// A host call returned an unexpected status.
    Host(String),
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => write!(f, "invalid configuration: {e}"),
            Error::Host(m) => write!(f, "host call failed: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

/// Why a plugin configuration was refused: which API (if the error is about one), which field,
/// and what is wrong with it.
///
/// `Display` gives the sentence the filter logs, e.g. `api "shop": jwt.location "h:cookie"
/// needs a cookie name`; [`ConfigError::diagnostic`] gives the `api "shop":
/// api_metadata.jwt.location: "h:cookie" needs a cookie name` form the command-line linter prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The API the error is about (its final or derived name), `None` for the rest of the
    /// configuration.
    pub api: Option<String>,
    /// Path of the offending field: inside an API relative to its `apis[i]` entry
    /// (`api_metadata.jwt.location`), otherwise from the top (`analytics.batch_size`,
    /// `deny_list.ip[2]`, `apis[1].name`); `""` for the configuration as a whole.
    pub field: String,
    /// What is wrong. For [`Layout::Field`] and [`Layout::Colon`] errors the text that follows
    /// the field; for [`Layout::Sentence`] errors a sentence naming its subjects itself.
    pub message: String,
    /// How `Display` joins the field and the message.
    pub layout: Layout,
}

/// How a [`ConfigError`] reads as one sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `<field> <message>`: `hostname is missing or empty`.
    Field,
    /// `<field>: <message>`: `attack_list: unknown field ...`.
    Colon,
    /// `<message>` alone (it names the fields itself): `apis[0] and apis[1] are both named ...`.
    Sentence,
}

impl ConfigError {
    /// An error that reads `<field> <message>`.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::with(Layout::Field, field, message)
    }

    /// An error that reads `<field>: <message>`.
    pub fn colon(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::with(Layout::Colon, field, message)
    }

    /// An error whose message names its fields itself; `field` is the one to fix.
    pub fn sentence(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::with(Layout::Sentence, field, message)
    }

    fn with(layout: Layout, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            api: None,
            field: field.into(),
            message: message.into(),
            layout,
        }
    }

    /// The same error, about API `name`; `field` is then relative to the API's `apis[i]` entry.
    pub fn in_api(mut self, name: &str) -> ConfigError {
        self.api = Some(name.to_string());
        self
    }

    /// `[api "NAME": ]FIELD: message`, or the sentence when the message names its own fields.
    pub fn diagnostic(&self) -> String {
        let api = match &self.api {
            Some(name) => format!("api {name:?}: "),
            None => String::new(),
        };
        if self.layout == Layout::Sentence || self.field.is_empty() {
            return format!("{api}{}", self.message);
        }
        format!("{api}{}: {}", self.field, self.message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Inside an API the sentence names fields from `api_metadata`, as ASE's documentation does.
        let field = match &self.api {
            Some(name) => {
                write!(f, "api {name:?}: ")?;
                self.field
                    .strip_prefix("api_metadata.")
                    .unwrap_or(&self.field)
            }
            None => self.field.as_str(),
        };
        match self.layout {
            Layout::Field => write!(f, "{field} {}", self.message),
            Layout::Colon => write!(f, "{field}: {}", self.message),
            Layout::Sentence => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn sentences_and_diagnostics() {
        let rows = [
            (
                ConfigError::field("api_metadata.jwt.location", r#""qs:" needs a key"#)
                    .in_api("shop"),
                r#"api "shop": jwt.location "qs:" needs a key"#,
                r#"api "shop": api_metadata.jwt.location: "qs:" needs a key"#,
            ),
            (
                ConfigError::colon("attack_list", "unknown field `x`"),
                "attack_list: unknown field `x`",
                "attack_list: unknown field `x`",
            ),
            (
                ConfigError::field("analytics.batch_size", "must be positive"),
                "analytics.batch_size must be positive",
                "analytics.batch_size: must be positive",
            ),
            (
                ConfigError::sentence("apis[1].name", "apis[0] and apis[1] are both named"),
                "apis[0] and apis[1] are both named",
                "apis[0] and apis[1] are both named",
            ),
            (
                ConfigError::sentence("api_metadata.jwt.username", "a and b").in_api("x"),
                r#"api "x": a and b"#,
                r#"api "x": a and b"#,
            ),
        ];
        for (e, display, diagnostic) in rows {
            assert_eq!(e.to_string(), display);
            assert_eq!(e.diagnostic(), diagnostic);
        }
        let e = Error::from(ConfigError::sentence(
            "",
            "plugin configuration is not JSON",
        ));
        assert_eq!(
            e.to_string(),
            "invalid configuration: plugin configuration is not JSON"
        );
    }
}
