//! Byte-safe parsers for the request pieces identification reads: query strings, cookies,
//! `Authorization` credentials, `X-Forwarded-For` and peer addresses. Pure functions that never
//! panic on any input and allocate only what they return. No host calls.
//!
//! Repeated query parameters, cookies and headers follow one rule everywhere: the FIRST
//! occurrence wins.

use std::net::IpAddr;

use crate::request::RequestView;

/// Percent-decode `s` the `application/x-www-form-urlencoded` way (`percent-encoding`): `%XX`
/// becomes the byte `XX`, `+` becomes a space when `plus_as_space`, and an escape that is not `%`
/// followed by two hex digits is kept literally. Decoded bytes that are not UTF-8 are replaced
/// with U+FFFD.
pub fn percent_decode(s: &str, plus_as_space: bool) -> String {
    let spaced;
    let s = if plus_as_space && s.contains('+') {
        spaced = s.replace('+', " ");
        spaced.as_str()
    } else {
        s
    };
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Bytes as text, invalid UTF-8 replaced with U+FFFD (without a copy when they are valid).
pub fn lossy(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// The value of one hex digit.
pub(crate) fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The raw query string of a `:path`: the text after the first `?`, with any fragment (`#…`)
/// removed. `None` when there is no `?` before the fragment.
pub fn raw_query(path: &str) -> Option<&str> {
    let without_fragment = path.split('#').next().unwrap_or_default();
    without_fragment.split_once('?').map(|(_, q)| q)
}

/// The raw (still encoded) `name=value` pairs of a query string, in order: split on `&` only
/// (`;` is part of a value, as in the WHATWG URL standard), empty segments skipped, a segment
/// without `=` yields an empty value.
fn raw_pairs(path: &str) -> impl Iterator<Item = (&str, &str)> {
    raw_query(path)
        .unwrap_or_default()
        .split('&')
        .filter(|seg| !seg.is_empty())
        .map(|seg| seg.split_once('=').unwrap_or((seg, "")))
}

/// Every query parameter of a `:path`, in order, names and values percent-decoded (`+` is a
/// space in both). Splits on `&` only; the fragment is ignored; repeats are all kept.
pub fn query_params(path: &str) -> Vec<(String, String)> {
    raw_pairs(path)
        .map(|(n, v)| (percent_decode(n, true), percent_decode(v, true)))
        .collect()
}

/// The decoded value of the query parameter whose decoded name is exactly `name`
/// (case-sensitive). The FIRST occurrence wins when the parameter repeats.
pub fn query_param(path: &str, name: &str) -> Option<String> {
    raw_pairs(path)
        .find(|(n, _)| percent_decode(n, true) == name)
        .map(|(_, v)| percent_decode(v, true))
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The value of the cookie `name` across ALL `cookie` headers, in arrival order.
///
/// Pairs are split on `;` and trimmed of spaces and tabs; names match exactly (case-sensitive, RFC
/// 6265); one pair of surrounding double quotes is removed from the value; values are not
/// percent-decoded. Pairs without `=` are skipped. The FIRST matching pair wins.
pub fn cookie_value(req: &RequestView, name: &str) -> Option<String> {
    req.header_all("cookie")
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| n.trim_matches(is_ows) == name)
        .map(|(_, v)| unquote(v.trim_matches(is_ows)).to_string())
}

/// `s` without one pair of surrounding double quotes, if it has them.
fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(s)
}

/// Split an `Authorization` value into its scheme and the rest, both trimmed of whitespace.
/// `None` when the value is empty.
fn auth_scheme(value: &str) -> Option<(&str, &str)> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    match split_at_ascii_ws(v) {
        Some((scheme, rest)) => Some((scheme, rest.trim())),
        None => Some((v, "")),
    }
}

/// Split at the first ASCII whitespace byte (scanning bytes: such a byte is always a character
/// boundary); the second part starts with it.
fn split_at_ascii_ws(s: &str) -> Option<(&str, &str)> {
    first_ascii_ws(s.as_bytes()).and_then(|i| s.split_at_checked(i))
}

/// The position of the first ASCII whitespace byte. A token may be kilobytes long, so words of 8
/// bytes are skipped while none of their bytes is below `0x21` (whitespace is `0x09`-`0x0d` and
/// `0x20`; `(x - 0x21…) & !x & 0x80…` is non-zero exactly when some byte of `x` is below `0x21`),
/// then the bytes from there are looked at one by one.
fn first_ascii_ws(b: &[u8]) -> Option<usize> {
    const LOW: u64 = 0x2121_2121_2121_2121;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut start = 0;
    for word in b.chunks_exact(8) {
        let x = <[u8; 8]>::try_from(word).map_or(0, u64::from_le_bytes);
        if x.wrapping_sub(LOW) & !x & HIGH != 0 {
            break;
        }
        start += 8;
    }
    let rest = b.get(start..)?;
    rest.iter()
        .position(|b| b.is_ascii_whitespace())
        .map(|i| i + start)
}

/// The individual credentials of an `Authorization` value, in order, trimmed, empty ones skipped.
///
/// Envoy joins repeated `Authorization` headers into one value with `,` (it is an inline header),
/// so `Basic dTpw,MAC id="…", nonce="…"` holds two credentials. A top-level comma (outside a
/// quoted string) starts a new credential unless what follows it is an auth-param (`name=…`,
/// as in MAC's `, nonce="…"`). A single credential comes back unchanged.
pub fn credentials(value: &str) -> impl Iterator<Item = &str> {
    Credentials { s: value, pos: 0 }
        .map(|c| c.trim_matches(is_ows))
        .filter(|c| !c.is_empty())
}

struct Credentials<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Iterator for Credentials<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let rest = self.s.get(start..)?;
        if !rest.contains(',') {
            // The common case, one credential: nothing to split.
            self.pos = self.s.len() + 1;
            return Some(rest);
        }
        let (mut quoted, mut escaped) = (false, false);
        for (i, b) in rest.bytes().enumerate() {
            if quoted {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    quoted = false;
                }
                continue;
            }
            match b {
                b'"' => quoted = true,
                b',' => {
                    let after = rest.get(i + 1..).unwrap_or_default();
                    if !starts_auth_param(after) {
                        // ',' is ASCII, so both slices fall on UTF-8 boundaries.
                        self.pos = start + i + 1;
                        return rest.get(..i);
                    }
                }
                _ => {}
            }
        }
        self.pos = self.s.len() + 1;
        Some(rest)
    }
}

/// True when `s` starts (after spaces and tabs) with `token BWS "="`: an auth-param, not a new
/// credential.
fn starts_auth_param(s: &str) -> bool {
    let s = s.trim_start_matches(is_ows);
    let name_len = s.bytes().take_while(|b| is_tchar(*b)).count();
    name_len > 0
        && s.get(name_len..)
            .is_some_and(|r| r.trim_start_matches(is_ows).starts_with('='))
}

/// An RFC 9110 `token` (a header name, an auth scheme): one or more `tchar`s.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// An RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The credential of an `Authorization: Bearer <credential>` value: scheme case-insensitive,
/// surrounding whitespace ignored. `None` for another scheme or an empty credential.
///
/// A bearer token (RFC 6750 `b64token`) holds no whitespace, so the credential ends at the first
/// space or tab: `Bearer T junk` is the token `T`, as upstreams that split the header on spaces
/// read it.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = auth_scheme(value)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = split_at_ascii_ws(rest).map_or(rest, |(t, _)| t);
    (!token.is_empty()).then_some(token)
}

/// `value` trimmed, without a leading `Bearer` scheme (case-insensitive) if it has one: for JWTs
/// in custom headers, which some clients send as `Bearer <jwt>`. `"Bearer "` alone gives `""`.
pub fn strip_bearer(value: &str) -> &str {
    match auth_scheme(value) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest,
        _ => value.trim(),
    }
}

/// The `id` parameter of an `Authorization: MAC id="…", nonce="…", mac="…"` value.
///
/// The scheme and parameter names are case-insensitive, parameters may come in any order,
/// whitespace (newlines included) around names, `=` and commas is ignored and quotes are optional
/// (`\` escapes inside quotes are honoured). `None` when there is no non-empty `id`.
pub fn mac_id(value: &str) -> Option<String> {
    let (scheme, rest) = auth_scheme(value)?;
    if !scheme.eq_ignore_ascii_case("mac") {
        return None;
    }
    auth_params(rest)
        .find(|(n, _)| n.eq_ignore_ascii_case("id"))
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Iterator over `name=value` pairs of an auth-param list (RFC 9110 §11.2, tolerant).
fn auth_params(s: &str) -> AuthParams<'_> {
    AuthParams { s, pos: 0 }
}

struct AuthParams<'a> {
    s: &'a str,
    pos: usize,
}

impl AuthParams<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.pos..).and_then(|r| r.chars().next())
    }

    fn skip_while(&mut self, f: impl Fn(char) -> bool) {
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    /// Take characters up to (not including) the first one for which `stop` holds.
    fn take_until(&mut self, stop: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        self.skip_while(|c| !stop(c));
        self.s.get(start..self.pos).unwrap_or_default().to_string()
    }

    fn quoted(&mut self) -> String {
        let mut out = String::new();
        let mut escaped = false;
        while let Some(c) = self.peek() {
            self.pos += c.len_utf8();
            if escaped {
                out.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                break;
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl Iterator for AuthParams<'_> {
    type Item = (String, String);

    fn next(&mut self) -> Option<(String, String)> {
        loop {
            self.skip_while(|c| c.is_whitespace() || c == ',');
            self.peek()?;
            let name = self.take_until(|c| c == '=' || c == ',' || c.is_whitespace());
            self.skip_while(char::is_whitespace);
            if self.peek() != Some('=') {
                // A bare token (no `=`): not a parameter; skip it.
                if name.is_empty() {
                    self.pos += self.peek().map_or(1, char::len_utf8);
                }
                continue;
            }
            self.pos += 1;
            self.skip_while(char::is_whitespace);
            let value = if self.peek() == Some('"') {
                self.pos += 1;
                self.quoted()
            } else {
                self.take_until(|c| c == ',' || c.is_whitespace())
            };
            return Some((name, value));
        }
    }
}

/// Parse one address as Envoy or a proxy writes it: a bare IPv4 or IPv6 address, `1.2.3.4:5678`,
/// `[::1]:5678` or `[::1]`, surrounding whitespace ignored. IPv4-mapped IPv6 addresses
/// (`::ffff:1.2.3.4`) become IPv4 so one client has one text form. Zone ids are not accepted.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let ip = if let Some(rest) = s.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        if !(after.is_empty() || is_port(after.strip_prefix(':')?)) {
            return None;
        }
        IpAddr::V6(inner.parse().ok()?)
    } else if let Ok(ip) = s.parse::<IpAddr>() {
        ip
    } else {
        let (host, port) = s.rsplit_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(host.parse().ok()?)
    };
    Some(ip.to_canonical())
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A bare IPv4 or IPv6 address (no port, surrounding whitespace ignored) as canonical text: the
/// form list entries and identified clients share (an IPv4-mapped IPv6 address is IPv4).
pub fn canonical_ip(s: &str) -> Option<String> {
    s.trim()
        .parse::<IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical().to_string())
}

/// [`parse_ip`] as canonical text (`1.2.3.4`, `2001:db8::1`), without the port.
pub fn ip_text(s: &str) -> Option<String> {
    match parse_ip(s)? {
        // Every request has one: written by hand, as `Display` would, without `fmt`.
        std::net::IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
            Some(out)
        }
        ip => Some(ip.to_string()),
    }
}

/// The entries of every `X-Forwarded-For` value joined with `,` in arrival order, each trimmed.
/// Empty entries are kept so positions stay true (they never parse as an address).
pub fn xff_entries<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect()
}

/// The client address chosen from `X-Forwarded-For` entries: with `trusted_hops == 0` the first
/// (leftmost) entry, as ASE does; with N > 0 the Nth entry from the right, Envoy's convention.
/// `None` when there are too few entries or the chosen entry is not an address (the caller then
/// uses the peer). Entries may carry a port like peers do.
pub fn xff_client(entries: &[&str], trusted_hops: u32) -> Option<String> {
    let entry = if trusted_hops == 0 {
        entries.first()
    } else {
        let n = usize::try_from(trusted_hops).ok()?;
        entries.len().checked_sub(n).and_then(|i| entries.get(i))
    };
    entry.and_then(|e| ip_text(e))
}

#[cfg(test)]
mod tests;
