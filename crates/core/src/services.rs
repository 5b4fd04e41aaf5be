//! Settings of the enforcer's services, parsed from the plugin configuration's `admin`,
//! `attack_list` and `analytics` objects and validated at load time (by [`crate::config::load`]).
//! These are api-warden's own sections: unknown keys are errors. No host calls.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::config::{describe, get_uint, ConfigError, Result};

/// `admin`: the list-management API, off unless configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// Path prefix, e.g. `/_api_warden` (normalized, no trailing slash).
    pub path: String,
    /// Shared secret expected in `x-api-warden-admin-key`.
    pub key: String,
}

/// `attack_list`: the analytics engine's attack list, polled by one worker per interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttackListSettings {
    /// Envoy cluster serving the list.
    pub cluster: String,
    pub path: String,
    /// `:authority` of the poll (default: the cluster name).
    pub authority: String,
    pub interval_s: u64,
    pub timeout_ms: u64,
    pub headers: BTreeMap<String, String>,
    /// Largest body accepted (bytes, default and maximum [`MAX_CALL_BODY`]); larger responses
    /// are a failed poll.
    pub max_body_bytes: usize,
}

/// How sensitive values (token, api key, cookie, `authorization` / `cookie` headers) appear in
/// records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

/// The record's optional parts (`analytics.record_request_headers`, `.record_response_headers`,
/// `.record_query_parameters`): all on by default, today's record. A part left out is left out
/// of the record; without the response headers the filter does not read them at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordParts {
    /// `HttpRequest.RequestHeaders`.
    pub request_headers: bool,
    /// `HttpRequest.ResponseHeaders` (the status is kept).
    pub response_headers: bool,
    /// `HttpRequest.QueryParameters` (the URI keeps the query string).
    pub query_parameters: bool,
}

impl Default for RecordParts {
    fn default() -> Self {
        RecordParts {
            request_headers: true,
            response_headers: true,
            query_parameters: true,
        }
    }
}

/// How exported batches are encoded (`analytics.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    /// A JSON array of records (POSTed to `analytics.path`, default `/`).
    #[default]
    Json,
    /// OTLP/HTTP logs in the JSON encoding (an `ExportLogsServiceRequest`, one log record per
    /// request; `analytics.path` defaults to `/v1/logs`).
    Otlp,
}

/// `analytics`: record redaction, the filter states for access logs, and the batch exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsSettings {
    pub redact: Redact,
    /// Filter states set for access loggers (each costs a host call, about 1 µs).
    pub filter_state: FilterState,
    /// The record's optional parts.
    pub parts: RecordParts,
    /// Encoding of the exported batches.
    pub format: ExportFormat,
    /// Envoy cluster of the collector; no export when absent.
    pub cluster: Option<String>,
    pub path: String,
    pub authority: String,
    pub batch_size: usize,
    pub flush_interval_ms: u64,
    pub max_buffered: usize,
    pub timeout_ms: u64,
    pub headers: BTreeMap<String, String>,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        AnalyticsSettings {
            redact: Redact::None,
            filter_state: FilterState::All,
            parts: RecordParts::default(),
            format: ExportFormat::Json,
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
    /// Sideband mode (`None`: off).
    pub sideband: Option<crate::sideband::SidebandSettings>,
}

impl Services {
    /// Parse and validate from the configuration's top-level `admin`, `attack_list`, `analytics`
    /// (as kept in [`crate::config::Compiled::extra`]). These are api-warden's own sections: an
    /// unknown key is an error; a `null` member means the default.
    pub fn parse(extra: &Map<String, Value>) -> Result<Services> {
        Ok(Services {
            admin: Section::open(extra, "admin", &["path", "key"])?
                .map(parse_admin)
                .transpose()?,
            attack_list: Section::open(extra, "attack_list", ATTACK_LIST_KEYS)?
                .map(parse_attack_list)
                .transpose()?,
            analytics: match Section::open(extra, "analytics", ANALYTICS_KEYS)? {
                Some(s) => parse_analytics(s)?,
                None => AnalyticsSettings::default(),
            },
            sideband: crate::sideband::parse(extra)?,
        })
    }
}

const ATTACK_LIST_KEYS: &[&str] = &[
    "cluster",
    "path",
    "authority",
    "interval_s",
    "timeout_ms",
    "headers",
    "max_body_bytes",
];

const ANALYTICS_KEYS: &[&str] = &[
    "redact",
    "record_request_headers",
    "record_response_headers",
    "record_query_parameters",
    "filter_state",
    "format",
    "cluster",
    "path",
    "authority",
    "batch_size",
    "flush_interval_ms",
    "max_buffered",
    "timeout_ms",
    "headers",
];

fn parse_admin(s: Section<'_>) -> Result<AdminSettings> {
    let path = s.required("path")?;
    check_path("admin.path", &path)?;
    let path = crate::router::normalize_path(&path);
    if path == "/" {
        return Err(ConfigError::field(
            "admin.path",
            "must not be / (it would hide every API)",
        ));
    }
    let key = s.required("key")?;
    if key.len() < 16 {
        return Err(ConfigError::field(
            "admin.key",
            "must be at least 16 characters",
        ));
    }
    Ok(AdminSettings { path, key })
}

fn parse_attack_list(s: Section<'_>) -> Result<AttackListSettings> {
    let a = AttackListSettings {
        cluster: s.required("cluster")?,
        path: s.required("path")?,
        authority: s.string("authority")?.unwrap_or_default(),
        interval_s: s.uint("interval_s")?.unwrap_or_else(default_interval),
        timeout_ms: s.uint("timeout_ms")?.unwrap_or_else(default_timeout),
        headers: s.headers("headers")?,
        max_body_bytes: s.size("max_body_bytes")?.unwrap_or_else(default_max_body),
    };
    check_path("attack_list.path", &a.path)?;
    if a.cluster.is_empty() {
        return Err(ConfigError::field("attack_list.cluster", "is empty"));
    }
    if a.interval_s == 0 || a.timeout_ms == 0 {
        return Err(ConfigError::sentence(
            if a.interval_s == 0 {
                "attack_list.interval_s"
            } else {
                "attack_list.timeout_ms"
            },
            "attack_list.interval_s and attack_list.timeout_ms must be positive",
        ));
    }
    if a.max_body_bytes > MAX_CALL_BODY {
        return Err(ConfigError::field(
            "attack_list.max_body_bytes",
            format!(
                "({}) is above {MAX_CALL_BODY} (32 MiB): Envoy drops larger HTTP-call responses, \
                 so such a feed could never load",
                a.max_body_bytes
            ),
        ));
    }
    // One poll per interval only holds if a poll is over (answered or timed out) before the next
    // is sent; overlapping polls would race to replace the feed.
    if a.timeout_ms >= a.interval_s.saturating_mul(1000) {
        return Err(ConfigError::field(
            "attack_list.timeout_ms",
            format!(
                "({}) must be shorter than attack_list.interval_s ({} s)",
                a.timeout_ms, a.interval_s
            ),
        ));
    }
    Ok(a)
}

fn parse_analytics(s: Section<'_>) -> Result<AnalyticsSettings> {
    let redact = [
        ("none", Redact::None),
        ("hash", Redact::Hash),
        ("omit", Redact::Omit),
    ];
    let filter_state = [
        ("all", FilterState::All),
        ("record", FilterState::Record),
        ("none", FilterState::None),
    ];
    let format = [("json", ExportFormat::Json), ("otlp", ExportFormat::Otlp)];
    let format = s.choice("format", &format)?.unwrap_or_default();
    let a = AnalyticsSettings {
        redact: s.choice("redact", &redact)?.unwrap_or_default(),
        filter_state: s.choice("filter_state", &filter_state)?.unwrap_or_default(),
        parts: RecordParts {
            request_headers: s.flag("record_request_headers")?.unwrap_or(true),
            response_headers: s.flag("record_response_headers")?.unwrap_or(true),
            query_parameters: s.flag("record_query_parameters")?.unwrap_or(true),
        },
        format,
        cluster: s.string("cluster")?,
        path: s.string("path")?.unwrap_or_else(|| match format {
            ExportFormat::Json => default_analytics_path(),
            ExportFormat::Otlp => "/v1/logs".into(),
        }),
        authority: s.string("authority")?.unwrap_or_default(),
        batch_size: s.size("batch_size")?.unwrap_or_else(default_batch),
        flush_interval_ms: s.uint("flush_interval_ms")?.unwrap_or_else(default_flush),
        max_buffered: s.size("max_buffered")?.unwrap_or_else(default_max_buffered),
        timeout_ms: s.uint("timeout_ms")?.unwrap_or_else(default_timeout),
        headers: s.headers("headers")?,
    };
    check_path("analytics.path", &a.path)?;
    if a.cluster.as_deref() == Some("") {
        return Err(ConfigError::field("analytics.cluster", "is empty"));
    }
    let zero = [
        ("batch_size", a.batch_size == 0),
        ("max_buffered", a.max_buffered == 0),
        ("flush_interval_ms", a.flush_interval_ms == 0),
    ];
    if let Some((key, _)) = zero.iter().find(|(_, is_zero)| *is_zero) {
        return Err(ConfigError::sentence(
            format!("analytics.{key}"),
            "analytics.batch_size, max_buffered and flush_interval_ms must be positive",
        ));
    }
    Ok(a)
}

fn check_path(field: &str, p: &str) -> Result<()> {
    if !p.starts_with('/') {
        return Err(ConfigError::field(
            field,
            format!("{p:?} must start with /"),
        ));
    }
    Ok(())
}

/// One service section: an object whose keys are all known; `null` members count as missing.
pub(crate) struct Section<'a> {
    name: &'static str,
    obj: &'a Map<String, Value>,
}

impl<'a> Section<'a> {
    /// `extra[name]` (`None` when missing or `null`); an unknown key is an error.
    pub(crate) fn open(
        extra: &'a Map<String, Value>,
        name: &'static str,
        known: &[&str],
    ) -> Result<Option<Section<'a>>> {
        let obj = match extra.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(obj)) => obj,
            Some(other) => {
                return Err(ConfigError::field(
                    name,
                    format!("must be an object, got {}", describe(other)),
                ))
            }
        };
        if let Some(key) = obj.keys().find(|k| !known.contains(&k.as_str())) {
            let known: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            return Err(ConfigError::colon(
                name,
                format!(
                    "unknown field `{key}`, expected one of {}",
                    known.join(", ")
                ),
            ));
        }
        Ok(Some(Section { name, obj }))
    }

    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.name)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(ConfigError::field(
                self.field(key),
                format!("must be a string, got {}", describe(other)),
            )),
        }
    }

    pub(crate) fn required(&self, key: &str) -> Result<String> {
        self.string(key)?.ok_or_else(|| {
            ConfigError::sentence(
                self.field(key),
                format!("{}: missing field `{key}`", self.name),
            )
        })
    }

    pub(crate) fn uint(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => get_uint(&self.field(key), v, u64::MAX),
        }
    }

    /// A boolean member.
    pub(crate) fn flag(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(ConfigError::field(
                self.field(key),
                format!("must be true or false, got {other}"),
            )),
        }
    }

    fn size(&self, key: &str) -> Result<Option<usize>> {
        let max = u64::try_from(usize::MAX).unwrap_or(u64::MAX);
        match self.get(key) {
            None => Ok(None),
            Some(v) => Ok(get_uint(&self.field(key), v, max)?
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))),
        }
    }

    /// Name → value strings; a `null` value leaves the header out.
    fn headers(&self, key: &str) -> Result<BTreeMap<String, String>> {
        let field = self.field(key);
        let obj = match self.get(key) {
            None => return Ok(BTreeMap::new()),
            Some(Value::Object(obj)) => obj,
            Some(other) => {
                return Err(ConfigError::field(
                    field,
                    format!(
                        "must be an object of name: value strings, got {}",
                        describe(other)
                    ),
                ))
            }
        };
        let mut out = BTreeMap::new();
        for (name, value) in obj {
            match value {
                Value::Null => {}
                Value::String(v) => {
                    out.insert(name.clone(), v.clone());
                }
                other => {
                    return Err(ConfigError::field(
                        format!("{field}.{name}"),
                        format!("must be a string, got {}", describe(other)),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// One of `choices`, by name.
    fn choice<T: Copy>(&self, key: &str, choices: &[(&str, T)]) -> Result<Option<T>> {
        let Some(name) = self.string(key)? else {
            return Ok(None);
        };
        match choices.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => Ok(Some(*v)),
            None => {
                let names: Vec<String> = choices.iter().map(|(n, _)| format!("`{n}`")).collect();
                Err(ConfigError::colon(
                    self.field(key),
                    format!(
                        "unknown variant `{name}`, expected one of {}",
                        names.join(", ")
                    ),
                ))
            }
        }
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

    #[test]
    fn record_parts_default_on_and_switch_off_one_by_one() {
        assert_eq!(parse("{}").unwrap().analytics.parts, RecordParts::default());
        let a = parse(r#"{"analytics": {"record_response_headers": false}}"#)
            .unwrap()
            .analytics;
        assert_eq!(
            (
                a.parts.request_headers,
                a.parts.response_headers,
                a.parts.query_parameters
            ),
            (true, false, true)
        );
        let e = parse(r#"{"analytics": {"record_request_headers": "no"}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("analytics.record_request_headers must be true or false"),
            "{e}"
        );
    }

    #[test]
    fn export_format_and_its_default_path() {
        let a = parse("{}").unwrap().analytics;
        assert_eq!((a.format, a.path.as_str()), (ExportFormat::Json, "/"));
        let a = parse(r#"{"analytics": {"format": "otlp"}}"#)
            .unwrap()
            .analytics;
        assert_eq!(
            (a.format, a.path.as_str()),
            (ExportFormat::Otlp, "/v1/logs")
        );
        let a = parse(r#"{"analytics": {"format": "otlp", "path": "/otlp/v1/logs"}}"#)
            .unwrap()
            .analytics;
        assert_eq!(a.path, "/otlp/v1/logs");
        let e = parse(r#"{"analytics": {"format": "xml"}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("analytics.format: unknown variant `xml`, expected one of `json`, `otlp`"),
            "{e}"
        );
    }
}
