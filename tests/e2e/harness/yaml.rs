//! The Envoy bootstrap of the tests, rendered from the templates under `envoy/templates/` (the
//! ones `bench/run.py` and `bench/soak.py` render too): the renderer, one function per template,
//! and the test bootstrap (api-warden in front of a direct-response upstream listener).

use std::path::Path;

const BOOTSTRAP: &str = include_str!("../../../envoy/templates/bootstrap.yaml");
const LISTENER: &str = include_str!("../../../envoy/templates/listener.yaml");
const WASM_FILTER: &str = include_str!("../../../envoy/templates/wasm-filter.yaml");
const ACCESS_LOG: &str = include_str!("../../../envoy/templates/access-log.yaml");
const RECORD_FORMAT: &str = include_str!("../../../envoy/templates/record-format.txt");
const CLUSTER: &str = include_str!("../../../envoy/templates/cluster.yaml");

/// Fill `template`'s `{{name}}` placeholders (the rule of `envoy/templates/README.md`): a
/// placeholder alone on its line takes the value's lines indented like it (an empty value drops
/// the line); any other is replaced in place. Panics on a placeholder without a value or a value
/// without a placeholder.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let value = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("template placeholder {{{{{name}}}}} has no value"))
    };
    let mut out = String::new();
    for line in template.lines() {
        let trimmed = line.trim_start();
        let whole = trimmed
            .strip_prefix("{{")
            .and_then(|r| r.strip_suffix("}}"))
            .filter(|n| !n.contains(['{', '}', ' ']));
        if let Some(name) = whole {
            let pad = &line[..line.len() - trimmed.len()];
            for l in value(name).lines() {
                out.push_str(pad);
                out.push_str(l);
                out.push('\n');
            }
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("{{") {
            let end = rest[i..].find("}}").expect("unclosed placeholder") + i;
            let v = value(&rest[i + 2..end]);
            assert!(
                !v.contains('\n'),
                "in-line placeholder {line:?} got a multi-line value"
            );
            out.push_str(&rest[..i]);
            out.push_str(v);
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out.push('\n');
    }
    for (k, _) in vars {
        assert!(
            template.contains(&format!("{{{{{k}}}}}")),
            "value {k} has no placeholder"
        );
    }
    out
}

/// A bootstrap: admin on `admin`, `dynamic` resources (YAML at top level, or empty), the static
/// `listeners` and `clusters` (YAML lists, or empty).
pub fn bootstrap(admin: u16, dynamic: &str, listeners: &str, clusters: &str) -> String {
    render(
        BOOTSTRAP,
        &[
            ("admin_port", &admin.to_string()),
            ("dynamic_resources", dynamic),
            ("listeners", listeners),
            ("clusters", clusters),
        ],
    )
}

/// One listener on 127.0.0.1:`port` (and `additional_addresses`, a YAML line or empty) whose only
/// route does `route` (`route: …` or `direct_response: …`), behind `http_filters` (a YAML list or
/// empty; the router is added), with `access_log` (from [`access_log`], or empty).
pub struct Listener<'a> {
    pub name: &'a str,
    pub port: u16,
    pub additional_addresses: &'a str,
    pub codec: &'a str,
    pub access_log: &'a str,
    pub route: &'a str,
    pub http_filters: &'a str,
}

impl Listener<'_> {
    pub fn render(&self) -> String {
        render(
            LISTENER,
            &[
                ("name", self.name),
                ("port", &self.port.to_string()),
                ("additional_addresses", self.additional_addresses),
                ("codec", self.codec),
                ("access_log", self.access_log),
                ("route", self.route),
                ("http_filters", self.http_filters),
            ],
        )
    }
}

/// The route of a listener that answers 200 with `body` itself.
pub fn direct_response(body: &str) -> String {
    format!("direct_response: {{ status: 200, body: {{ inline_string: \"{body}\" }} }}")
}

/// The api-warden HTTP filter (a YAML list item) running `code` (`{ local: … }` or
/// `{ remote: … }`) under `failure_policy` (`UNSPECIFIED`: Envoy's default) with this plugin
/// configuration.
pub fn wasm_filter(code: &str, failure_policy: &str, plugin_config: &str) -> String {
    wasm_filter_with(code, failure_policy, plugin_config, true)
}

/// [`wasm_filter`] with `allow_on_headers_stop_iteration` set as given (Istio's `WasmPlugin`
/// cannot set it: without it Envoy never hands a held request's body to the filter).
pub fn wasm_filter_with(
    code: &str,
    failure_policy: &str,
    plugin_config: &str,
    allow_on_headers_stop_iteration: bool,
) -> String {
    let literal = serde_json::to_string(plugin_config).expect("json string");
    render(
        WASM_FILTER,
        &[
            ("name", "api_warden"),
            ("root_id", "api_warden"),
            ("vm_id", "api_warden"),
            ("failure_policy", failure_policy),
            (
                "allow_on_headers_stop_iteration",
                if allow_on_headers_stop_iteration {
                    "true"
                } else {
                    "false"
                },
            ),
            ("code", code),
            ("plugin_config", &literal),
        ],
    )
}

/// `code` for a local file.
pub fn local_code(wasm: &Path) -> String {
    format!("{{ local: {{ filename: {} }} }}", wasm.display())
}

/// A file access log at `path` in the text `format` (as written inside a YAML double-quoted
/// string).
pub fn access_log(path: &Path, format: &str) -> String {
    render(
        ACCESS_LOG,
        &[("path", &path.display().to_string()), ("format", format)],
    )
}

/// The access-log format of the record and the scalar filter states ([`super::LogLine`]).
pub fn record_format() -> &'static str {
    RECORD_FORMAT.trim_end()
}

/// A STATIC cluster (YAML list item) named `name` for `127.0.0.1:port`.
pub fn cluster(name: &str, port: u16) -> String {
    render(CLUSTER, &[("name", name), ("port", &port.to_string())])
}
