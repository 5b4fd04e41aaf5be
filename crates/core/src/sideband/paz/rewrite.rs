//! What PingAuthorize's answers change: the diff between the request sent and the request
//! returned (headers added, changed, removed — repeated headers compared as the list of their
//! values —, method, path and query, body), and the response to send from the response call's
//! answer (headers it leaves out are removed except the framing ones, `content-length` fixed by
//! the host to the new body). No host calls.

use super::wire::{Allowed, HeaderList, Returned, SentRequest};
use crate::pipeline::{HeaderEdit, RequestEdit};

/// Response headers kept when the answer leaves them out (hop-by-hop and framing headers).
pub const KEPT_RESPONSE_HEADERS: [&str; 5] = [
    "content-length",
    "date",
    "connection",
    "vary",
    "transfer-encoding",
];

/// Headers the client's response never takes from an answer: framing is the host's job.
const FRAMING: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// The names of `list`, first occurrence order.
fn names(list: &HeaderList) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for (k, _) in &list.0 {
        if !out.contains(&k.as_str()) {
            out.push(k);
        }
    }
    out
}

/// The header edits that turn `sent` into `returned`: for every name whose list of values
/// differs (added, changed, removed, a repeat added or dropped, reordered), the new values
/// (none: removed). Names keep the order of the returned list, removals last.
pub fn header_edits(sent: &HeaderList, returned: &HeaderList) -> Vec<HeaderEdit> {
    let mut out = Vec::new();
    for name in names(returned) {
        let new: Vec<&str> = returned.values(name).collect();
        if sent.values(name).ne(new.iter().copied()) {
            out.push(HeaderEdit {
                name: name.to_string(),
                values: new.into_iter().map(str::to_string).collect(),
            });
        }
    }
    for name in names(sent) {
        if returned.values(name).next().is_none() {
            out.push(HeaderEdit {
                name: name.to_string(),
                values: Vec::new(),
            });
        }
    }
    out
}

/// An absolute URL's origin (`scheme://authority`) and its path and query; a URL that is only
/// a path (`/a?b`) has no origin. `None` for anything else.
pub fn split_url(url: &str) -> Option<(Option<&str>, &str)> {
    if url.starts_with('/') {
        return Some((None, url));
    }
    let (scheme, rest) = url.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+')
    {
        return None;
    }
    let path_at = rest.find(['/', '?']).unwrap_or(rest.len());
    let origin = url.get(..scheme.len() + 3 + path_at)?;
    let path = rest.get(path_at..)?;
    Some((Some(origin), if path.is_empty() { "/" } else { path }))
}

/// What applying an allow answer means for the forwarded request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub edit: RequestEdit,
    /// Whether anything the service changed was applied.
    pub changed: bool,
    /// What the service changed that is not applied (logged).
    pub ignored: Vec<String>,
}

/// Apply an allow answer to the request as sent. `body_sent` tells whether the request's body
/// went with the call (a body change is applied only then). Errors when the returned `url`
/// cannot be read.
pub fn apply_request(
    sent: &SentRequest,
    allowed: &Allowed,
    body_sent: bool,
) -> Result<Applied, String> {
    let mut a = Applied {
        ignored: allowed.ignored.iter().map(|f| (*f).to_string()).collect(),
        ..Applied::default()
    };
    if let Some(m) = allowed.method.as_deref() {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
            return Err(format!("method {m:?} is not an HTTP method"));
        }
        if m != sent.method {
            a.edit.method = Some(m.to_string());
        }
    }
    if let Some(url) = allowed.url.as_deref() {
        let (origin, path) =
            split_url(url).ok_or_else(|| format!("url {url:?} is not an absolute URL"))?;
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(format!("url {url:?} has spaces or control characters"));
        }
        let (sent_origin, sent_path) = split_url(&sent.url).unwrap_or((None, &sent.url));
        if origin.is_some() && origin != sent_origin {
            a.ignored.push("url (scheme, host or port)".into());
        }
        if path != sent_path {
            a.edit.path = Some(path.to_string());
        }
    }
    if let Some(h) = &allowed.headers {
        a.edit.headers = header_edits(&sent.headers, h);
        // The body's framing is the host's: never taken from the answer.
        let before = a.edit.headers.len();
        a.edit
            .headers
            .retain(|e| e.name != "content-length" && e.name != "transfer-encoding");
        if a.edit.headers.len() != before {
            a.ignored
                .push("content-length / transfer-encoding (the body's framing)".into());
        }
    }
    match (&allowed.body, &sent.body) {
        (Some(new), Some(old)) if body_sent && new != old => {
            a.edit.body = Some(new.clone().into_bytes());
        }
        (Some(new), None) if !new.is_empty() => a.ignored.push(if body_sent {
            "body (the request had none)".into()
        } else {
            "body (the request body was not sent: too large)".into()
        }),
        _ => {}
    }
    a.changed = a.edit != RequestEdit::default();
    if let Some(b) = &a.edit.body {
        // The framing of the new body: its length, never a chunked encoding with it.
        a.edit
            .headers
            .retain(|h| h.name != "content-length" && h.name != "transfer-encoding");
        a.edit.headers.push(HeaderEdit {
            name: "content-length".into(),
            values: vec![b.len().to_string()],
        });
        if sent.headers.values("transfer-encoding").next().is_some() {
            a.edit.headers.push(HeaderEdit {
                name: "transfer-encoding".into(),
                values: Vec::new(),
            });
        }
    }
    Ok(a)
}

/// A response to send in place of the upstream's (headers without framing ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The response to send for the response call's answer, or `None` when it is the upstream's
/// own (same status, headers and body). `headers` and `body` are the upstream's.
pub fn apply_response(
    status: u16,
    headers: &HeaderList,
    body: &[u8],
    answer: &Returned,
) -> Option<NewResponse> {
    let new_body = answer
        .body
        .as_ref()
        .map_or_else(|| body.to_vec(), |b| b.clone().into_bytes());
    let new_headers: Vec<(String, String)> = match &answer.headers {
        None => headers.0.clone(),
        Some(h) => {
            let mut out: Vec<(String, String)> = h.0.clone();
            for (k, v) in &headers.0 {
                if KEPT_RESPONSE_HEADERS.contains(&k.as_str()) && h.values(k).next().is_none() {
                    out.push((k.clone(), v.clone()));
                }
            }
            out
        }
    };
    let same_headers = {
        let strip = |l: &[(String, String)]| -> Vec<(String, String)> {
            l.iter()
                .filter(|(k, _)| !FRAMING.contains(&k.as_str()))
                .cloned()
                .collect()
        };
        let (mut a, mut b) = (strip(&new_headers), strip(&headers.0));
        a.sort();
        b.sort();
        a == b
    };
    if answer.status == status && same_headers && new_body == body {
        return None;
    }
    let out = new_headers
        .into_iter()
        .filter(|(k, _)| !FRAMING.contains(&k.as_str()))
        .collect();
    Some(NewResponse {
        status: answer.status,
        headers: out,
        body: new_body,
    })
}
