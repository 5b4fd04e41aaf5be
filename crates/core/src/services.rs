//! Settings of the enforcer's services, parsed from the plugin configuration's `admin`,
//! `attack_list` and `analytics` objects and validated at load time. No host calls.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, Result};

/// `admin`: the list-management API, off unless configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Path prefix, e.g. `/_api_warden` (normalized, no trailing slash).
    pub path: String,
    /// Shared secret expected in `x-api-warden-admin-key`.
    pub key: String,
}

/// `attack_list`: the analytics engine's attack list, polled by one worker per interval.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackListSettings {
    /// Envoy cluster serving the list.
    pub cluster: String,
    pub path: String,
    /// `:authority` of the poll (default: the cluster name).
    #[serde(default)]
    pub authority: String,
    #[serde(default = "default_interval")]
    pub interval_s: u64,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Largest body accepted (bytes, default and maximum [`MAX_CALL_BODY`]); larger responses
    /// are a failed poll.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

/// How sensitive values (token, api key, cookie, `authorization` / `cookie` headers) appear in
/// records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Redact {
    /// As received (ASE's behaviour: the analytics engine correlates raw identifiers).
    #[default]
    None,
    /// `sha256:<hex>`.
    Hash,
    /// Left out.
    Omit,
}

/// Which Envoy filter states api-warden sets in `on_log` (`analytics.filter_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterState {
    /// `wasm.api_warden.record` and the scalar keys (`client_ip`, `username`, `client_id`,
    /// `api`, `decision`, `reason`).
    #[default]
    All,
    /// The record only.
    Record,
    /// None: for deployments that only export. Without export either, no record is built.
    None,
}

/// `analytics`: record redaction, the filter states for access logs, and the batch exporter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsSettings {
    #[serde(default)]
    pub redact: Redact,
    /// Filter states set for access loggers (each costs a host call, about 1 µs).
    #[serde(default)]
    pub filter_state: FilterState,
    /// Envoy cluster of the collector; no export when absent.
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default = "default_analytics_path")]
    pub path: String,
    #[serde(default)]
    pub authority: String,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_flush")]
    pub flush_interval_ms: u64,
    #[serde(default = "default_max_buffered")]
    pub max_buffered: usize,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        AnalyticsSettings {
            redact: Redact::None,
            filter_state: FilterState::All,
            cluster: None,
            path: default_analytics_path(),
            authority: String::new(),
            batch_size: default_batch(),
            flush_interval_ms: default_flush(),
            max_buffered: default_max_buffered(),
            timeout_ms: default_timeout(),
            headers: BTreeMap::new(),
        }
    }
}

fn default_interval() -> u64 {
    600
}
fn default_timeout() -> u64 {
    5000
}
/// The largest HTTP-call response Envoy hands to a proxy-wasm filter: its async client drops
/// bigger bodies ("the buffer size limit for async client response body has been exceeded") and
/// the call fails as if the server had not answered. Measured on Envoy 1.40: 32 MiB passes,
/// 32 MiB + 1 KB does not.
pub const MAX_CALL_BODY: usize = 32 << 20;

fn default_max_body() -> usize {
    MAX_CALL_BODY
}
fn default_analytics_path() -> String {
    "/".into()
}
fn default_batch() -> usize {
    100
}
fn default_flush() -> u64 {
    1000
}
fn default_max_buffered() -> usize {
    10_000
}

/// The three service settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Services {
    pub admin: Option<AdminSettings>,
    pub attack_list: Option<AttackListSettings>,
    pub analytics: AnalyticsSettings,
}

fn field<T: for<'de> Deserialize<'de>>(
    extra: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<T>> {
    match extra.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| Error::Config(format!("{name}: {e}"))),
    }
}

fn check_path(what: &str, p: &str) -> Result<()> {
    if !p.starts_with('/') {
        return Err(Error::Config(format!("{what} {p:?} must start with /")));
    }
    Ok(())
}

impl Services {
    /// Parse and validate from the configuration's top-level `admin`, `attack_list`, `analytics`.
    pub fn parse(extra: &serde_json::Map<String, serde_json::Value>) -> Result<Services> {
        let mut admin: Option<AdminSettings> = field(extra, "admin")?;
        if let Some(a) = admin.as_mut() {
            check_path("admin.path", &a.path)?;
            a.path = crate::router::normalize_path(&a.path);
            if a.path == "/" {
                return Err(Error::Config(
                    "admin.path must not be / (it would hide every API)".into(),
                ));
            }
            if a.key.len() < 16 {
                return Err(Error::Config(
                    "admin.key must be at least 16 characters".into(),
                ));
            }
        }
        let attack_list: Option<AttackListSettings> = field(extra, "attack_list")?;
        if let Some(a) = &attack_list {
            check_path("attack_list.path", &a.path)?;
            if a.cluster.is_empty() {
                return Err(Error::Config("attack_list.cluster is empty".into()));
            }
            if a.interval_s == 0 || a.timeout_ms == 0 {
                return Err(Error::Config(
                    "attack_list.interval_s and attack_list.timeout_ms must be positive".into(),
                ));
            }
            if a.max_body_bytes > MAX_CALL_BODY {
                return Err(Error::Config(format!(
                    "attack_list.max_body_bytes ({}) is above {MAX_CALL_BODY} (32 MiB): Envoy drops \
                     larger HTTP-call responses, so such a feed could never load",
                    a.max_body_bytes
                )));
            }
            // One poll per interval only holds if a poll is over (answered or timed out) before
            // the next is sent; overlapping polls would race to replace the feed.
            if a.timeout_ms >= a.interval_s.saturating_mul(1000) {
                return Err(Error::Config(format!(
                    "attack_list.timeout_ms ({}) must be shorter than attack_list.interval_s ({} s)",
                    a.timeout_ms, a.interval_s
                )));
            }
        }
        let analytics: AnalyticsSettings = field(extra, "analytics")?.unwrap_or_default();
        check_path("analytics.path", &analytics.path)?;
        if analytics.cluster.as_deref() == Some("") {
            return Err(Error::Config("analytics.cluster is empty".into()));
        }
        if analytics.batch_size == 0
            || analytics.max_buffered == 0
            || analytics.flush_interval_ms == 0
        {
            return Err(Error::Config(
                "analytics.batch_size, max_buffered and flush_interval_ms must be positive".into(),
            ));
        }
        Ok(Services {
            admin,
            attack_list,
            analytics,
        })
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn parse(j: &str) -> Result<Services> {
        let v: serde_json::Value = serde_json::from_str(j).unwrap();
        Services::parse(v.as_object().unwrap())
    }

    #[test]
    fn defaults_and_rules() {
        let s = parse("{}").unwrap();
        assert_eq!(s, Services::default());
        let s =
            parse(r#"{"admin": {"path": "/_api_warden/", "key": "0123456789abcdef"}}"#).unwrap();
        assert_eq!(s.admin.unwrap().path, "/_api_warden");
        let rows = [
            (
                r#"{"admin": {"path": "x", "key": "0123456789abcdef"}}"#,
                "admin.path",
            ),
            (
                r#"{"admin": {"path": "/", "key": "0123456789abcdef"}}"#,
                "must not be /",
            ),
            (r#"{"admin": {"path": "/a", "key": "short"}}"#, "admin.key"),
            (r#"{"admin": {"path": "/a"}}"#, "missing field `key`"),
            (
                r#"{"attack_list": {"cluster": "", "path": "/x"}}"#,
                "cluster is empty",
            ),
            (
                r#"{"attack_list": {"cluster": "abs", "path": "/x", "interval_s": 0}}"#,
                "positive",
            ),
            (
                r#"{"attack_list": {"cluster": "abs", "path": "/x", "bogus": 1}}"#,
                "unknown field",
            ),
            (
                r#"{"attack_list": {"cluster": "abs", "path": "/x", "interval_s": 1}}"#,
                "timeout_ms (5000) must be shorter than attack_list.interval_s (1 s)",
            ),
            (
                r#"{"attack_list": {"cluster": "abs", "path": "/x", "interval_s": 2, "timeout_ms": 2000}}"#,
                "must be shorter",
            ),
            (
                r#"{"attack_list": {"cluster": "abs", "path": "/x", "max_body_bytes": 33554433}}"#,
                "max_body_bytes (33554433) is above",
            ),
            (r#"{"analytics": {"redact": "scramble"}}"#, "analytics"),
            (r#"{"analytics": {"batch_size": 0}}"#, "positive"),
        ];
        for (j, want) in rows {
            let e = parse(j).unwrap_err().to_string();
            assert!(e.contains(want), "{j}: {e}");
        }
        let s = parse(r#"{"attack_list": {"cluster": "abs", "path": "/v4/attacks"}, "analytics": {"redact": "hash"}}"#).unwrap();
        assert_eq!(s.attack_list.unwrap().interval_s, 600);
        assert_eq!(s.analytics.redact, Redact::Hash);
        let s = parse(
            r#"{"attack_list": {"cluster": "abs", "path": "/x", "interval_s": 1, "timeout_ms": 999}}"#,
        )
        .unwrap();
        assert_eq!(s.attack_list.unwrap().timeout_ms, 999);
        let s = parse(r#"{"attack_list": {"cluster": "abs", "path": "/x"}}"#).unwrap();
        assert_eq!(s.attack_list.unwrap().max_body_bytes, 32 << 20);
    }

    #[test]
    fn filter_state_choices() {
        assert_eq!(
            parse("{}").unwrap().analytics.filter_state,
            FilterState::All
        );
        for (v, want) in [
            ("all", FilterState::All),
            ("record", FilterState::Record),
            ("none", FilterState::None),
        ] {
            let s = parse(&format!(r#"{{"analytics": {{"filter_state": "{v}"}}}}"#)).unwrap();
            assert_eq!(s.analytics.filter_state, want);
        }
        let e = parse(r#"{"analytics": {"filter_state": "some"}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `some`"), "{e}");
    }
}
