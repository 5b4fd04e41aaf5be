//! Settings of the enforcer's services, parsed from the plugin configuration's `admin`,
//! `attack_list` and `analytics` objects and validated at load time (by [`crate::config::load`]).
//! These are api-warden's own sections: unknown keys are errors. No host calls.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::config::{ConfigError, Result};

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

impl AnalyticsSettings {
    /// Whether requests are recorded at all (a filter state or export): otherwise nothing only
    /// the record needs is built or read.
    pub fn records(&self) -> bool {
        self.filter_state != FilterState::None || self.cluster.is_some()
    }
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

mod section;
pub(crate) use section::Section;

#[cfg(test)]
mod tests;
