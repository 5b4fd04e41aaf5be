//! The request as the pure pipeline sees it: the plain data copied once from the host
//! ([`RequestView`]) and its parsed form ([`Request`]). No host calls.

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
    /// Envoy's `request.protocol` (`HTTP/1.1`, `HTTP/2`), read only when a sideband service needs
    /// it.
    pub protocol: Option<String>,
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

/// The request parsed once: the raw [`RequestView`] plus what every stage reads from it — the
/// host, the normalized path and its lax upstream reading, the decoded query pairs. Built by
/// [`Request::parse`] before the pipeline runs and kept for the record; the admin check, the
/// router, identification and the record all read it instead of parsing again.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The request as received.
    pub view: RequestView,
    /// The `:authority`'s host ([`crate::router::authority_host`]).
    pub host: String,
    /// The path as [`crate::router::normalize_path`] reads it (no query, no fragment).
    pub path: String,
    /// The path as lax upstreams read it ([`crate::router::upstream_reading`]), when different.
    pub upstream_path: Option<String>,
    /// Every query parameter, in order, names and values percent-decoded
    /// ([`crate::parse::query_params`]).
    pub query: Vec<(String, String)>,
}

impl Request {
    /// Parse `view` once.
    pub fn parse(view: RequestView) -> Request {
        let mut r = Request {
            view,
            ..Request::default()
        };
        r.reparse();
        r
    }

    /// Recompute the parsed parts after `view` changed.
    pub fn reparse(&mut self) {
        self.host = crate::router::authority_host(&self.view.authority);
        self.path = crate::router::normalize_path(&self.view.path);
        self.upstream_path = crate::router::upstream_reading(&self.path);
        self.query = crate::parse::query_params(&self.view.path);
    }

    /// The first header value (see [`RequestView::header`]).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.view.header(name)
    }

    /// The decoded value of the first query parameter named exactly `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of cookie `name` ([`crate::parse::cookie_value`]).
    pub fn cookie(&self, name: &str) -> Option<String> {
        crate::parse::cookie_value(&self.view, name)
    }
}
