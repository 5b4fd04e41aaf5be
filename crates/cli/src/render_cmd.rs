//! `api-warden envoy DIR …` and `api-warden istio DIR …`: the folder's plugin configuration
//! (as `api-warden config` prints it) plus its backend fields, written as an Envoy bootstrap or
//! as Istio manifests, in YAML.

use std::process::ExitCode;

use api_warden_core::render::{backend, envoy, istio, yaml};
use serde_json::Value;

use crate::args::Args;
use crate::{config_cmd, input};

pub const ENVOY_USAGE: &str = "usage: api-warden envoy DIR [--listen ADDR:PORT] [--admin ADDR:PORT] [--wasm PATH] [--access-log PATH] [--sideband HOST:PORT]... [--pingauthorize HOST:PORT... --pingauthorize-secret-file FILE [--pingauthorize-plaintext]] [--ase FILE] [--deny FILE] [--allow FILE]";

pub const ENVOY_HELP: &str = "\
usage: api-warden envoy DIR [--listen ADDR:PORT] [--admin ADDR:PORT] [--wasm PATH]
                            [--access-log PATH] [--sideband HOST:PORT]...
                            [--pingauthorize HOST:PORT... --pingauthorize-secret-file FILE
                             [--pingauthorize-plaintext]]
                            [--ase FILE] [--deny FILE] [--allow FILE]

Print a complete Envoy bootstrap (YAML) for the ASE folder DIR: api-warden with the folder's
plugin configuration (as `api-warden config` prints it), and the API JSON fields the filter
leaves to Envoy:
  servers[] (host, port)        a cluster per API (STATIC for IPs, STRICT_DNS for names)
  url                           a route (path_separated_prefix; longest url first)
  hostname                      the virtual host's domains (`*`: every host)
  server_ssl                    an upstream TLS transport socket (SNI = the server name)
  health_check, health_url,     an active HTTP health check (interval, unhealthy threshold,
  health_check_interval,        request headers)
  health_retry_count, health_check_headers
  api_mapping.internal_url      the route's prefix_rewrite
  server_connection_quota       the cluster's circuit_breakers max_connections (the sum)
  cookie_persistence_enabled    ring hash on the `cookie` cookie
  protocol: ws                  WebSocket upgrades on the route
An API without servers is answered 503 by Envoy.

options:
  --listen ADDR:PORT    the listener (default 0.0.0.0:10000)
  --admin ADDR:PORT     Envoy's admin interface (default none; keep it internal, e.g. 127.0.0.1:9901)
  --wasm PATH           the api-warden .wasm (default /etc/envoy/api_warden.wasm)
  --access-log PATH     the JSON access log with the record (default /dev/stdout)
  --sideband HOST:PORT  ASE's sideband API; repeat for a secondary (lower priority)
  --pingauthorize HOST:PORT
                        PingAuthorize's Sideband API instead (over TLS, SNI = the host); repeat
                        for a secondary. The plugin configuration gets a `sideband` section
                        (service pingauthorize, its cluster, authority = the first host, the
                        secret) unless it has one
  --pingauthorize-secret-file FILE
                        the shared secret PingAuthorize expects (the file's first line; required
                        with --pingauthorize, kept out of the command line)
  --pingauthorize-plaintext
                        plain HTTP to PingAuthorize (tests, or TLS ended by a local proxy)
  --ase, --deny, --allow  as for `api-warden config`

exit status: 0 printed, 1 errors in the folder or the files, 2 usage error";

pub const ISTIO_USAGE: &str = "usage: api-warden istio DIR --namespace NS --selector KEY=VALUE [--image oci://...|--url https://...] [--ase FILE] [--deny FILE] [--allow FILE]";

pub const ISTIO_HELP: &str = "\
usage: api-warden istio DIR --namespace NS --selector KEY=VALUE [--image oci://...|--url https://...]
                            [--ase FILE] [--deny FILE] [--allow FILE]

Print Istio manifests (YAML) for the ASE folder DIR:
  - a WasmPlugin (extensions.istio.io/v1alpha1, phase AUTHN, failStrategy FAIL_CLOSE) whose
    pluginConfig is the folder's plugin configuration, selecting the workloads labelled KEY=VALUE;
  - a DestinationRule (networking.istio.io/v1) per backend host, with per-port settings:
      server_ssl                   tls.mode SIMPLE
      server_connection_quota      connectionPool.tcp.maxConnections
      cookie_persistence_enabled   loadBalancer.consistentHash.httpCookie (the `cookie` cookie)
      health_check                 outlierDetection (consecutive5xxErrors = health_retry_count,
                                   interval = health_check_interval); Istio has no active checks

options:
  --namespace NS       the namespace of every manifest (required)
  --selector KEY=VALUE the workload label (required)
  --image oci://...    the plugin image, or
  --url https://...    the plugin .wasm over HTTPS (default oci://ghcr.io/api-warden/api-warden:VERSION)
  --ase, --deny, --allow  as for `api-warden config`

exit status: 0 printed, 1 errors in the folder or the files, 2 usage error";

const SECTION_OPTIONS: [&str; 3] = ["--ase", "--deny", "--allow"];

/// `ADDR:PORT` (`[v6]:PORT` for IPv6).
fn addr_port(opt: &str, v: &str) -> Result<(String, u16), String> {
    let bad = || format!("{opt} {v:?}: expected ADDR:PORT");
    let (addr, port) = v.rsplit_once(':').ok_or_else(bad)?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| bad())?;
    if addr.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((addr.to_string(), port))
}

/// `--pingauthorize` and its secret file, when given.
fn pingauthorize(a: &Args) -> Result<Option<envoy::PingAuthorize>, String> {
    let servers = a
        .values("--pingauthorize")
        .iter()
        .map(|v| addr_port("--pingauthorize", v))
        .collect::<Result<Vec<_>, _>>()?;
    let file = a.value("--pingauthorize-secret-file");
    if servers.is_empty() {
        if file.is_some() || a.flag("--pingauthorize-plaintext") {
            return Err(
                "--pingauthorize-secret-file and --pingauthorize-plaintext need --pingauthorize"
                    .into(),
            );
        }
        return Ok(None);
    }
    if !a.values("--sideband").is_empty() {
        return Err(
            "--sideband (ASE) and --pingauthorize are one sideband service or the other".into(),
        );
    }
    let file = file.ok_or("--pingauthorize needs --pingauthorize-secret-file")?;
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("--pingauthorize-secret-file {file}: {e}"))?;
    let secret = text.lines().next().unwrap_or("").trim().to_string();
    if secret.is_empty() {
        return Err(format!(
            "--pingauthorize-secret-file {file}: the first line is empty"
        ));
    }
    Ok(Some(envoy::PingAuthorize {
        servers,
        secret,
        plaintext: a.flag("--pingauthorize-plaintext"),
    }))
}

/// The folder's plugin configuration and backends, or the exit code of a failure.
fn prepare(dir: &str, a: &Args) -> Result<(Value, Vec<backend::Backend>), ExitCode> {
    let (cfg, notes) = config_cmd::build(dir, a).map_err(|l| crate::input_errors(&l))?;
    for n in notes {
        eprintln!("api-warden: {n}");
    }
    let folder = input::checked_folder(dir).map_err(|l| crate::input_errors(&l))?;
    let backends = backend::backends(&folder.apis).map_err(|errs| {
        let lines: Vec<String> = errs
            .iter()
            .map(|f| format!("{}: {}", input::shown(dir, &f.file), f.text))
            .collect();
        crate::input_errors(&lines)
    })?;
    Ok((cfg, backends))
}

/// Run `envoy`.
pub fn run_envoy(args: &[String]) -> ExitCode {
    let mut valued = vec![
        "--listen",
        "--admin",
        "--wasm",
        "--access-log",
        "--sideband",
        "--pingauthorize",
        "--pingauthorize-secret-file",
    ];
    valued.extend(SECTION_OPTIONS);
    let a = match Args::parse(args, &["--pingauthorize-plaintext"], &valued) {
        Ok(a) => a,
        Err(why) => return crate::usage_error(&format!("envoy: {why}"), ENVOY_USAGE),
    };
    if a.help {
        return crate::print_help(ENVOY_HELP);
    }
    let [dir] = a.positional.as_slice() else {
        return crate::usage_error("envoy needs exactly one DIR", ENVOY_USAGE);
    };
    let options = (|| -> Result<envoy::EnvoyOptions, String> {
        Ok(envoy::EnvoyOptions {
            listen: addr_port("--listen", a.value("--listen").unwrap_or("0.0.0.0:10000"))?,
            admin: a
                .value("--admin")
                .map(|v| addr_port("--admin", v))
                .transpose()?,
            wasm: a
                .value("--wasm")
                .unwrap_or("/etc/envoy/api_warden.wasm")
                .to_string(),
            access_log: a.value("--access-log").unwrap_or("/dev/stdout").to_string(),
            sideband: a
                .values("--sideband")
                .iter()
                .map(|v| addr_port("--sideband", v))
                .collect::<Result<_, _>>()?,
            pingauthorize: pingauthorize(&a)?,
        })
    })();
    let options = match options {
        Ok(o) => o,
        Err(why) => return crate::usage_error(&format!("envoy: {why}"), ENVOY_USAGE),
    };
    let (cfg, backends) = match prepare(dir, &a) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // The sideband section added for the options goes through the filter's own checks too.
    let plugin = envoy::plugin_config(&cfg, &options);
    if let Err(e) = api_warden_core::config::load(plugin.to_string().as_bytes()) {
        return crate::input_errors(&[format!("the plugin configuration: {e}")]);
    }
    let bootstrap = envoy::bootstrap(&backends, &cfg, &options);
    let header = format!(
        "# Envoy bootstrap written by api-warden {} from {dir}\n",
        env!("CARGO_PKG_VERSION")
    );
    crate::print_result(&format!("{header}{}", yaml::to_yaml(&bootstrap)))
}

/// Run `istio`.
pub fn run_istio(args: &[String]) -> ExitCode {
    let mut valued = vec!["--namespace", "--selector", "--image", "--url"];
    valued.extend(SECTION_OPTIONS);
    let a = match Args::parse(args, &[], &valued) {
        Ok(a) => a,
        Err(why) => return crate::usage_error(&format!("istio: {why}"), ISTIO_USAGE),
    };
    if a.help {
        return crate::print_help(ISTIO_HELP);
    }
    let options = match istio_options(&a) {
        Ok(o) => o,
        Err(why) => return crate::usage_error(&format!("istio: {why}"), ISTIO_USAGE),
    };
    let [dir] = a.positional.as_slice() else {
        return crate::usage_error("istio needs exactly one DIR", ISTIO_USAGE);
    };
    let (cfg, backends) = match prepare(dir, &a) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let (rules, notes) = istio::destination_rules(&backends, &options.namespace);
    for n in notes {
        eprintln!("api-warden: {n}");
    }
    let mut text = format!(
        "# Istio manifests written by api-warden {} from {dir}\n",
        env!("CARGO_PKG_VERSION")
    );
    text.push_str(&yaml::to_yaml(&istio::wasm_plugin(&cfg, &options)));
    for rule in rules {
        text.push_str("---\n");
        text.push_str(&yaml::to_yaml(&rule));
    }
    crate::print_result(&text)
}

fn istio_options(a: &Args) -> Result<istio::IstioOptions, String> {
    let namespace = a
        .value("--namespace")
        .filter(|n| !n.is_empty())
        .ok_or("--namespace NS is required")?;
    let selector = a
        .value("--selector")
        .ok_or("--selector KEY=VALUE is required")?;
    let selector = selector
        .split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .ok_or(format!("--selector {selector:?}: expected KEY=VALUE"))?;
    let url = match (a.value("--image"), a.value("--url")) {
        (Some(_), Some(_)) => return Err("give --image or --url, not both".to_string()),
        (Some(i), None) if i.starts_with("oci://") => i.to_string(),
        (Some(i), None) => return Err(format!("--image {i:?}: expected oci://...")),
        (None, Some(u)) if u.starts_with("https://") => u.to_string(),
        (None, Some(u)) => return Err(format!("--url {u:?}: expected https://...")),
        (None, None) => format!(
            "oci://ghcr.io/api-warden/api-warden:{}",
            env!("CARGO_PKG_VERSION")
        ),
    };
    Ok(istio::IstioOptions {
        namespace: namespace.to_string(),
        selector: (selector.0.to_string(), selector.1.to_string()),
        url,
    })
}
