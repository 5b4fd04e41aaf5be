//! The crate's error type: configuration errors name the API and the field; host errors carry the
//! host status. No host calls here.

use std::fmt;

/// Every error api-warden reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The plugin configuration is invalid; the message names the API and the field.
    Config(String),
    /// A host call returned an unexpected status.
    Host(String),
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "invalid configuration: {m}"),
            Error::Host(m) => write!(f, "host call failed: {m}"),
        }
    }
}

impl std::error::Error for Error {}
