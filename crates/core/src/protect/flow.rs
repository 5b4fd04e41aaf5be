//! Flow control (`flow_control.client_spike_threshold`): at most N requests per client IP per API
//! per second, minute or hour, counted for the whole Envoy process in shared data. One read and
//! one CAS write per counted request; bounded memory. No host calls.
//!
//! Layout: [`SLOTS`] keys `aw:fc:<slot>`; (API, client IP) hashes to one slot. A slot holds at
//! most [`PER_SLOT`] entries `[api u32][window_end u32][count u32][len u8][ip]` (little-endian,
//! `window_end` in Unix seconds); entries whose window has ended are dropped on every write, and
//! when a slot is full of live entries the one whose window ends first is evicted. So at most
//! `SLOTS × PER_SLOT` = 65,536 (client, API) pairs are tracked at once (about 2 MiB with IPv4
//! clients, under 4 MiB with IPv6), whatever the traffic.

use serde_json::Value;

use super::FieldError;
use crate::lists::Store;

/// Shared-data keys used for counters.
pub const SLOTS: u32 = 4096;
/// Entries per key.
pub const PER_SLOT: usize = 16;
/// CAS attempts before a request is let through uncounted (counted as contention).
const CAS_RETRIES: usize = 32;

/// A compiled `client_spike_threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// Requests allowed per window (at least 1).
    pub limit: u32,
    /// The window: 1, 60 or 3600 seconds.
    pub window_s: u32,
}

/// Parse `"N/second"`, `"N/minute"` or `"N/hour"`; `None` for `"0/…"`, an empty string or
/// `null` (off).
pub fn parse_threshold(v: Option<&Value>) -> Result<Option<Threshold>, FieldError> {
    const F: &str = "flow_control.client_spike_threshold";
    let s = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim(),
        Some(other) => {
            return Err(FieldError::new(
                F,
                format!("must be a string like \"100/second\", got {other}"),
            ))
        }
    };
    let bad = || {
        FieldError::new(
            F,
            format!("{s:?} must be N/second, N/minute or N/hour (N a whole number)"),
        )
    };
    let (n, unit) = s.split_once('/').ok_or_else(bad)?;
    let limit: u32 = n.trim().parse().map_err(|_| bad())?;
    let window_s = match unit.trim().to_ascii_lowercase().as_str() {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        _ => return Err(bad()),
    };
    Ok((limit > 0).then_some(Threshold { limit, window_s }))
}

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Under the threshold (counted).
    Allowed,
    /// Over the threshold: retry after this many seconds (the end of the window, at least 1).
    Over { retry_after_s: u32 },
    /// The counter could not be updated (CAS contention or a host failure): let through.
    Uncounted,
}

/// One counter entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    api: u32,
    window_end: u32,
    count: u32,
    ip: Vec<u8>,
}

fn fnv(parts: &[&[u8]]) -> u64 {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    for p in parts {
        h.write(p);
        h.write_u8(0);
    }
    h.finish()
}

fn decode(b: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut rest = b;
    while let (Some(head), Some(&len)) = (rest.get(..12), rest.get(12)) {
        let Some(ip) = rest.get(13..13 + usize::from(len)) else {
            break;
        };
        let u = |i: usize| {
            head.get(i..i + 4)
                .and_then(|x| x.try_into().ok())
                .map_or(0, u32::from_le_bytes)
        };
        out.push(Entry {
            api: u(0),
            window_end: u(4),
            count: u(8),
            ip: ip.to_vec(),
        });
        rest = rest.get(13 + usize::from(len)..).unwrap_or_default();
    }
    out
}

fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 32);
    for e in entries {
        out.extend_from_slice(&e.api.to_le_bytes());
        out.extend_from_slice(&e.window_end.to_le_bytes());
        out.extend_from_slice(&e.count.to_le_bytes());
        out.push(e.ip.len() as u8);
        out.extend_from_slice(&e.ip);
    }
    out
}

/// The shared-data key of the slot counting `(api, ip)`, and the API's hash.
fn slot_key(api: &str, ip: &str) -> (String, u32) {
    let slot = ((fnv(&[api.as_bytes(), ip.as_bytes()]) >> 32) as u32) % SLOTS;
    (format!("aw:fc:{slot}"), fnv(&[api.as_bytes()]) as u32)
}

/// Count one request of client `ip` to API `api` at `now_s` (Unix seconds) against `t`.
pub fn hit(store: &impl Store, api: &str, ip: &str, t: Threshold, now_s: u64) -> Flow {
    let ip_bytes = ip.as_bytes().get(..64).unwrap_or(ip.as_bytes());
    let (key, api_hash) = slot_key(api, ip);
    let now = u32::try_from(now_s).unwrap_or(u32::MAX);
    let window = t.window_s.max(1);
    let window_end = (now - now % window).saturating_add(window);
    for _ in 0..CAS_RETRIES {
        let (value, cas) = store.get(&key);
        let mut entries = decode(value.as_deref().unwrap_or_default());
        entries.retain(|e| e.window_end > now);
        let pos = entries
            .iter()
            .position(|e| e.api == api_hash && e.ip == ip_bytes && e.window_end == window_end);
        let count = pos.and_then(|i| entries.get(i)).map_or(0, |e| e.count);
        if count >= t.limit {
            return Flow::Over {
                retry_after_s: window_end.saturating_sub(now).max(1),
            };
        }
        match pos.and_then(|i| entries.get_mut(i)) {
            Some(e) => e.count += 1,
            None => {
                // Another window of the same pair (a reloaded threshold) is replaced.
                entries.retain(|e| !(e.api == api_hash && e.ip == ip_bytes));
                if entries.len() >= PER_SLOT {
                    if let Some(i) = (0..entries.len())
                        .min_by_key(|&i| entries.get(i).map_or(u32::MAX, |e| e.window_end))
                    {
                        entries.remove(i);
                    }
                }
                entries.push(Entry {
                    api: api_hash,
                    window_end,
                    count: 1,
                    ip: ip_bytes.to_vec(),
                });
            }
        }
        let bytes = encode(&entries);
        if !store.set(&key, &bytes, Some(cas.unwrap_or(0))) {
            continue;
        }
        // A first write cannot be conditional (the host has no create-if-absent): check it.
        if cas.is_some() || store.get(&key).0.as_deref() == Some(&bytes[..]) {
            return Flow::Allowed;
        }
    }
    Flow::Uncounted
}

#[cfg(test)]
mod tests;
