//! The request as the pure pipeline sees it: plain data copied once from the host. No host calls.

/// One request's headers and connection facts, as handed over by the host adapter.
///
/// Header names are lowercase (Envoy lowercases them; the adapter lowercases anything else) and
/// values are UTF-8 (bytes that are not UTF-8 are replaced with U+FFFD by the adapter).
#[derive(Debug, Clone, Default)]
pub struct RequestView {
    /// `:method`
    pub method: String,
    /// `:path`, including the query string, exactly as received.
    pub path: String,
    /// `:authority` (may carry a port).
    pub authority: String,
    /// `:scheme`
    pub scheme: String,
    /// All headers in arrival order, pseudo-headers included, names lowercase.
    pub headers: Vec<(String, String)>,
    /// Downstream peer address as Envoy reports it (`source.address`): `1.2.3.4:5678` or `[::1]:5678`.
    pub peer: Option<String>,
}

impl RequestView {
    /// The first value of a header (names compared case-insensitively). First wins for repeats.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in arrival order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl RequestView {
    /// Build a view from the host's header map (pseudo-headers `:method`, `:path`, `:authority`,
    /// `:scheme` fill the named fields) and the peer address.
    pub fn from_headers(headers: Vec<(String, String)>, peer: Option<String>) -> RequestView {
        let mut v = RequestView {
            peer,
            ..RequestView::default()
        };
        for (k, val) in &headers {
            match k.as_str() {
                ":method" => v.method.clone_from(val),
                ":path" => v.path.clone_from(val),
                ":authority" => v.authority.clone_from(val),
                ":scheme" => v.scheme.clone_from(val),
                _ => {}
            }
        }
        v.headers = headers;
        v
    }
}
