//! The OTLP/HTTP logs encoding of an export batch (`analytics.format: "otlp"`): one
//! `ExportLogsServiceRequest` in OTLP's JSON encoding (`resourceLogs` → `scopeLogs` →
//! `logRecords`), one log record per request. The body of each log record is the record itself
//! as a **string** (`stringValue`, the JSON text [`crate::record::build`] wrote): a kvlist would
//! turn every nested member into typed OTLP values for nothing, and a Collector parses the string
//! back with one `ParseJSON(body)` where it needs to. The key fields are copied into attributes
//! named after OpenTelemetry's semantic conventions (`http.request.method`, `url.path`,
//! `url.query`, `http.response.status_code`, `client.address`, `user.name`) plus `api_warden.*`
//! ones (`api`, `decision`, `reason`, `list_source`, `client_id`, `duration_ms`). No host calls.

use serde_json::{json, Value};

/// `service.name` of the resource.
pub const SERVICE_NAME: &str = "api-warden";

/// The batch of `records` (JSON texts) as an OTLP logs request body, observed at `now_ms`.
pub fn logs_body(records: &[String], now_ms: u64) -> Vec<u8> {
    let log_records: Vec<Value> = records.iter().map(|r| log_record(r, now_ms)).collect();
    let body = json!({"resourceLogs": [{
        "resource": {"attributes": [string_attr("service.name", SERVICE_NAME)]},
        "scopeLogs": [{
            "scope": {"name": SERVICE_NAME, "version": env!("CARGO_PKG_VERSION")},
            "logRecords": log_records,
        }],
    }]});
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Nanoseconds as OTLP's JSON encoding writes 64-bit integers: a decimal string.
fn nanos(ms: u64) -> String {
    u128::from(ms).saturating_mul(1_000_000).to_string()
}

fn string_attr(key: &str, v: &str) -> Value {
    json!({"key": key, "value": {"stringValue": v}})
}

fn int_attr(key: &str, v: i64) -> Value {
    json!({"key": key, "value": {"intValue": v.to_string()}})
}

/// One log record for one record text (a record that is not JSON still becomes a log record,
/// with its text as the body and no attributes).
fn log_record(text: &str, now_ms: u64) -> Value {
    let rec: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let time_ms = rec
        .pointer("/timestamp")
        .and_then(Value::as_str)
        .and_then(unix_ms)
        .unwrap_or(now_ms);
    let decision = pointer_str(&rec, "/ase/decision");
    let (severity, severity_text) = match decision {
        Some("allow") | None => (9, "INFO"),
        Some(_) => (13, "WARN"),
    };
    json!({
        "timeUnixNano": nanos(time_ms),
        "observedTimeUnixNano": nanos(now_ms),
        "severityNumber": severity,
        "severityText": severity_text,
        "body": {"stringValue": text},
        "attributes": attributes(&rec),
    })
}

fn pointer_str<'a>(rec: &'a Value, path: &str) -> Option<&'a str> {
    rec.pointer(path).and_then(Value::as_str)
}

/// The attributes of one record (members that are absent or `null` are left out).
fn attributes(rec: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let method = pointer_str(rec, "/action").map(|a| a.trim_start_matches("outbound-"));
    let uri = pointer_str(rec, "/attributes/HttpRequest.RequestURI");
    let (path, query) = match uri.map(|u| u.split_once('?').unwrap_or((u, ""))) {
        Some((p, q)) => (Some(p), Some(q).filter(|q| !q.is_empty())),
        None => (None, None),
    };
    let client = pointer_str(rec, "/ase/client/ip")
        .or_else(|| pointer_str(rec, "/attributes/HttpRequest.IPAddress"));
    let strings = [
        ("http.request.method", method),
        ("url.path", path),
        ("url.query", query),
        ("client.address", client),
        ("user.name", pointer_str(rec, "/ase/client/username")),
        ("api_warden.api", pointer_str(rec, "/ase/api")),
        ("api_warden.decision", pointer_str(rec, "/ase/decision")),
        ("api_warden.reason", pointer_str(rec, "/ase/reason")),
        (
            "api_warden.list_source",
            pointer_str(rec, "/ase/list_source"),
        ),
        (
            "api_warden.client_id",
            pointer_str(rec, "/ase/client/client_id"),
        ),
    ];
    for (k, v) in strings {
        if let Some(v) = v {
            out.push(string_attr(k, v));
        }
    }
    let status = rec
        .pointer("/attributes/HttpRequest.ResponseStatus")
        .and_then(Value::as_i64);
    if let Some(s) = status {
        out.push(int_attr("http.response.status_code", s));
    }
    if let Some(d) = rec.get("duration_ms").and_then(Value::as_i64) {
        out.push(int_attr("api_warden.duration_ms", d));
    }
    out
}

/// Unix milliseconds of the record's `timestamp` (`YYYY-MM-DDTHH:MM:SS.mmmZ`, as
/// [`crate::record::timestamp`] writes it); `None` for anything else.
pub fn unix_ms(ts: &str) -> Option<u64> {
    let b = ts.as_bytes();
    if b.len() != 24 || b.get(23) != Some(&b'Z') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let s = ts.get(from..to)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, s, ms) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    let seps = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ];
    if seps.iter().any(|(i, c)| b.get(*i) != Some(c)) || !(1..=12).contains(&mo) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s;
    u64::try_from(secs * 1000 + ms).ok()
}
