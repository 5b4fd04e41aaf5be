//! Path normalization and request → API matching over the compiled API table. No host calls.
//!
//! The [`Router`] is built once per configuration and never changes; a lookup does
//! O(path segments) hash lookups and allocates only the normalized path and the host key,
//! never per configured API.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::config::{Api, Compiled};
use crate::request::Request;

/// Index from (hostname, url) to API, built once at configuration time.
///
/// Hostnames are the compiled ones (lowercase, no port, or `*`); urls are normalized with
/// [`normalize_path`]. The first API registered for a (hostname, url) pair wins (the
/// configuration rejects duplicates before building the router).
#[derive(Debug, Clone, Default)]
pub struct Router {
    /// hostname → (url → index into `Compiled::apis`).
    hosts: FnvMap<FnvMap<usize>>,
}

/// A string-keyed map with FNV-1a hashing (`fnv`): keys come from the trusted configuration and
/// lookups never insert, so hash flooding is not a concern, and FNV is several times faster than
/// SipHash on the short keys matched per request.
type FnvMap<V> = fnv::FnvHashMap<String, V>;

/// The API a request belongs to, and where its path sits under the API's base path.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiMatch<'a> {
    /// The matched API.
    pub api: &'a Api,
    /// Its index in `Compiled::apis`.
    pub index: usize,
    /// The request path after [`normalize_path`] (no query, no fragment), or after
    /// [`upstream_reading`] when that reading matched a longer url.
    pub normalized_path: String,
    /// The API's url (its base path).
    pub base_path: &'a str,
    /// The normalized path after `base_path`: `""` when the path equals the base path,
    /// otherwise it starts with `/` (`/rest` + `/rest/x` → `/x`; root API `/` + `/items` →
    /// `/items`; root API `/` + `/` → `""`).
    pub trailing_path: String,
}

impl Router {
    /// Index the given APIs by (hostname, url).
    pub fn new(apis: &[Api]) -> Router {
        let mut hosts: FnvMap<FnvMap<usize>> = FnvMap::default();
        for (index, api) in apis.iter().enumerate() {
            hosts
                .entry(api.hostname.clone())
                .or_default()
                .entry(api.url.clone())
                .or_insert(index);
        }
        Router { hosts }
    }

    /// The index of the API serving `normalized_path` (already normalized) on `host` (already
    /// reduced with [`authority_host`]). APIs of the exact host are tried first; `*` APIs only
    /// when none of them matches. Within a host the longest url on a segment boundary wins.
    pub fn lookup(&self, host: &str, normalized_path: &str) -> Option<usize> {
        if host != "*" {
            if let Some(found) = self
                .hosts
                .get(host)
                .and_then(|urls| longest_prefix(urls, normalized_path))
            {
                return Some(found);
            }
        }
        self.hosts
            .get("*")
            .and_then(|urls| longest_prefix(urls, normalized_path))
    }

    /// Number of (hostname, url) pairs indexed.
    pub fn len(&self) -> usize {
        self.hosts.values().map(HashMap::len).sum()
    }

    /// True when no API is indexed.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

/// Try `path` and each of its segment-boundary prefixes, longest first, then `/`.
fn longest_prefix(urls: &FnvMap<usize>, path: &str) -> Option<usize> {
    let mut candidate = path;
    loop {
        if candidate.is_empty() {
            return urls.get("/").copied();
        }
        if let Some(found) = urls.get(candidate) {
            return Some(*found);
        }
        match candidate.rfind('/') {
            Some(cut) => candidate = candidate.get(..cut).unwrap_or(""),
            None => return urls.get("/").copied(),
        }
    }
}

impl Compiled {
    /// The API serving a request with this `:authority` and `:path`, or `None` when no API
    /// matches (the request is then passed on: Envoy's routes decide what exists).
    ///
    /// The path is matched as [`normalize_path`] reads it and, when it holds an encoded slash or
    /// backslash, a raw backslash or a `;` path parameter, also as [`upstream_reading`] reads it
    /// (many upstreams decode `%2F`, treat `\` as `/` or drop `;…`); the reading that matches
    /// the longer url wins (the plain reading on a tie), so such spellings never take a request
    /// out of the API an upstream will serve it from.
    pub fn match_api(&self, authority: &str, path: &str) -> Option<ApiMatch<'_>> {
        let path = normalize_path(path);
        let upstream = upstream_reading(&path);
        self.match_parts(&authority_host(authority), &path, upstream.as_deref())
    }

    /// [`Compiled::match_api`] for a request parsed once.
    pub fn match_request(&self, req: &Request) -> Option<ApiMatch<'_>> {
        self.match_parts(&req.host, &req.path, req.upstream_path.as_deref())
    }

    fn match_parts(&self, host: &str, path: &str, upstream: Option<&str>) -> Option<ApiMatch<'_>> {
        let mut normalized_path = path;
        let mut index = self.router.lookup(host, path);
        if let Some(alt) = upstream {
            if let Some(alt_index) = self.router.lookup(host, alt) {
                let url_len =
                    |i: Option<usize>| i.and_then(|i| self.apis.get(i)).map(|a| a.url.len());
                if url_len(Some(alt_index)) > url_len(index) {
                    index = Some(alt_index);
                    normalized_path = alt;
                }
            }
        }
        let index = index?;
        let api = self.apis.get(index)?;
        let base_path = api.url.as_str();
        let trailing_path = if base_path == "/" {
            if normalized_path == "/" {
                String::new()
            } else {
                normalized_path.to_string()
            }
        } else {
            normalized_path
                .get(base_path.len()..)
                .unwrap_or("")
                .to_string()
        };
        Some(ApiMatch {
            api,
            index,
            normalized_path: normalized_path.to_string(),
            base_path,
            trailing_path,
        })
    }
}

/// The part of a normalized `path` under the API url `url` (`""` for the url itself, else
/// starting with `/`), or `None` when the path is not under it.
pub fn trailing_path<'p>(url: &str, path: &'p str) -> Option<&'p str> {
    if url == "/" {
        return Some(if path == "/" { "" } else { path });
    }
    let rest = path.strip_prefix(url)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The host part of an `:authority` (or of a configured hostname): lowercase, port removed,
/// IPv6 brackets removed (`[::1]:8080` → `::1`), one trailing dot removed (`a.com.` → `a.com`),
/// surrounding whitespace and any `user@` prefix ignored. A bare IPv6 address (more than one
/// `:` and no brackets) is kept whole.
pub fn authority_host(authority: &str) -> String {
    let mut a = authority.trim();
    if let Some(at) = a.rfind('@') {
        a = a.get(at + 1..).unwrap_or("");
    }
    let host = if let Some(rest) = a.strip_prefix('[') {
        match rest.find(']') {
            Some(end) => rest.get(..end).unwrap_or(""),
            None => rest,
        }
    } else if a.matches(':').count() == 1 {
        a.split(':').next().unwrap_or("")
    } else {
        a
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase()
}

/// Normalize a request path for matching.
///
/// - the query (`?…`) and fragment (`#…`) are removed;
/// - percent-encoded *unreserved* characters (ALPHA DIGIT `-` `.` `_` `~`) are decoded, so
///   `%41` → `A` and `%2e%2e` → `..` (which is then resolved); every other valid escape is kept
///   encoded with uppercase hex (`%2f` → `%2F`, which is not a separator); bad escapes (`%`,
///   `%4`, `%zz`) are kept literally;
/// - `.` segments are dropped, `..` segments remove the previous segment (never above root);
/// - repeated slashes are merged;
/// - the result always starts with `/` and never ends with `/` except for `/` itself
///   (`/rest/` → `/rest`).
///
/// Works on bytes and never panics.
pub fn normalize_path(path: &str) -> String {
    let raw = path.as_bytes();
    let end = raw
        .iter()
        .position(|b| *b == b'?' || *b == b'#')
        .unwrap_or(raw.len());
    let raw = raw.get(..end).unwrap_or(raw);

    let decoded: Cow<'_, [u8]> = if raw.contains(&b'%') {
        Cow::Owned(decode_unreserved(raw))
    } else {
        Cow::Borrowed(raw)
    };

    let mut out: Vec<u8> = Vec::with_capacity(decoded.len() + 1);
    for segment in decoded.split(|b| *b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                // Segments never contain '/', so the last '/' starts the previous segment.
                let cut = out.iter().rposition(|b| *b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            s => {
                out.push(b'/');
                out.extend_from_slice(s);
            }
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    crate::parse::lossy(out)
}

/// The path as an upstream that is laxer than RFC 3986 may read a [`normalize_path`] result:
/// encoded slashes and backslashes (`%2F`, `%5C`) and raw backslashes become `/`, and `;` path
/// parameters are dropped up to the end of their segment (`/api;v=1/x` → `/api/x`, as Tomcat
/// and Spring do); the result is normalized again (`/x%2F..%2Fapi` → `/api`). `None` when the
/// path holds none of these, i.e. when every upstream reads it the same way.
pub fn upstream_reading(normalized_path: &str) -> Option<String> {
    let b = normalized_path.as_bytes();
    // normalize_path writes every kept escape in uppercase hex.
    let lax = b.iter().any(|c| matches!(c, b'\\' | b';'))
        || normalized_path.contains("%2F")
        || normalized_path.contains("%5C");
    if !lax {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    let mut in_params = false;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let separator_len = match c {
            b'/' | b'\\' => 1,
            b'%' if matches!(b.get(i + 1..i + 3), Some(b"2F" | b"5C")) => 3,
            _ => 0,
        };
        if separator_len > 0 {
            out.push(b'/');
            in_params = false;
            i += separator_len;
            continue;
        }
        in_params |= c == b';';
        if !in_params {
            out.push(c);
        }
        i += 1;
    }
    // Only ASCII bytes were replaced or removed, so `out` is still UTF-8.
    Some(normalize_path(&crate::parse::lossy(out)))
}

/// Decode `%XX` escapes of unreserved characters; uppercase the hex of the others; keep bad
/// escapes as they are.
fn decode_unreserved(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'%' {
            let hi = raw.get(i + 1).copied().and_then(crate::parse::hex_value);
            let lo = raw.get(i + 2).copied().and_then(crate::parse::hex_value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                let c = hi * 16 + lo;
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    out.push(c);
                } else {
                    out.push(b'%');
                    out.push(hex_digit(hi));
                    out.push(hex_digit(lo));
                }
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn hex_digit(v: u8) -> u8 {
    match v {
        0..=9 => b'0' + v,
        _ => b'A' + (v - 10),
    }
}

#[cfg(test)]
mod tests;
