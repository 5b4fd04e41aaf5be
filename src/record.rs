//! The per-exchange analytics record: a PingAuthorize-shaped policy request plus the enforcer's own
//! `ase` section, built from plain data. No host calls.

use serde_json::{json, Value};

use crate::request::RequestView;

/// Everything known about one request/response exchange when the record is written.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    pub request: RequestView,
    pub start_ms: u64,
    pub response_status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
}

/// The record as JSON text.
pub fn build(x: &Exchange) -> String {
    let v: Value = json!({
        "action": format!("outbound-{}", x.request.method),
        "attributes": {
            "HttpRequest.RequestURI": x.request.path,
            "HttpRequest.ResponseStatus": x.response_status,
        },
        "method": x.request.method,
        "path": x.request.path,
        "authority": x.request.authority,
    });
    v.to_string()
}
