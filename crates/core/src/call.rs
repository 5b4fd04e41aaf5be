//! Outgoing HTTP calls as plain data: what to send to which Envoy cluster ([`CallRequest`]) and
//! what came back ([`CallAnswer`]; a timeout or a connection failure is an answer with no
//! status). The core builds requests and reads answers; the adapter dispatches. No host calls.

/// One HTTP call to dispatch through an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    /// The Envoy cluster to send it to.
    pub cluster: String,
    /// Headers, pseudo-headers (`:method`, `:path`, `:authority`) first, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
    /// How long the host waits for the answer.
    pub timeout_ms: u64,
}

impl CallRequest {
    /// A call with the pseudo-headers set; `authority` falls back to the cluster name when empty.
    pub fn new(method: &str, cluster: &str, authority: &str, path: &str, timeout_ms: u64) -> Self {
        let authority = if authority.is_empty() {
            cluster
        } else {
            authority
        };
        CallRequest {
            cluster: cluster.to_string(),
            headers: vec![
                (":method".to_string(), method.to_string()),
                (":path".to_string(), path.to_string()),
                (":authority".to_string(), authority.to_string()),
            ],
            body: None,
            timeout_ms,
        }
    }

    /// Add one header (the name is lowercased).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Add configured headers (names lowercased).
    pub fn headers<'a>(mut self, extra: impl IntoIterator<Item = &'a (String, String)>) -> Self {
        self.headers.extend(
            extra
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
        );
        self
    }

    /// Set the body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }
}

/// The answer to a [`CallRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallAnswer {
    /// The HTTP status; `None` for a timeout, a reset or a connection failure.
    pub status: Option<u16>,
    /// Response headers (names lowercase), without `:status`.
    pub headers: Vec<(String, String)>,
    /// The response body (possibly cut to what the caller asked for).
    pub body: Vec<u8>,
    /// The body's size as the host reported it (may exceed `body.len()` when not read).
    pub body_size: usize,
}

impl CallAnswer {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// The first value of a response header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn request_builder_sets_pseudo_headers_and_lowercases() {
        let c = CallRequest::new("POST", "ase", "", "/ase/request", 500)
            .header("Content-Type", "application/json")
            .body(b"{}".to_vec());
        assert_eq!(c.cluster, "ase");
        assert_eq!(c.headers[2], (":authority".into(), "ase".into()));
        assert_eq!(
            c.headers[3],
            ("content-type".into(), "application/json".into())
        );
        assert_eq!(c.body.as_deref(), Some(&b"{}"[..]));
    }

    #[test]
    fn answer_success_and_headers() {
        let a = CallAnswer {
            status: Some(204),
            headers: vec![("etag".into(), "\"x\"".into())],
            ..CallAnswer::default()
        };
        assert!(a.is_success());
        assert_eq!(a.header("ETag"), Some("\"x\""));
        assert!(!CallAnswer::default().is_success());
    }
}
