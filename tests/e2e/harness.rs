//! The end-to-end harness: starts a real Envoy with the freshly built api_warden.wasm on free
//! loopback ports, waits for admin `/ready`, speaks raw HTTP/1.1, reads the access log, and always
//! stops Envoy (printing its log when a test fails).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Envoy binary: `$ENVOY`, else the one `make envoy` installs.
pub fn envoy_bin() -> PathBuf {
    std::env::var_os("ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/envoy"))
}

/// The built filter.
pub fn wasm_path() -> PathBuf {
    built("target/wasm32-wasip1/release/api_warden.wasm", "make build")
}

/// `rel` under the repository, which `make_target` builds.
fn built(rel: &str, make_target: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(
        p.exists(),
        "{} missing: run `{make_target}` first",
        p.display()
    );
    p
}

/// Start Envoy on the bootstrap `cfg` with `args`, logging (wasm at debug) to `log`.
pub fn spawn_envoy(cfg: &Path, log: &Path, args: &[&str]) -> Child {
    Command::new(envoy_bin())
        .arg("-c")
        .arg(cfg)
        .args(args)
        .arg("--disable-hot-restart")
        .args(["--log-level", "info", "--component-log-level", "wasm:debug"])
        .arg("--log-path")
        .arg(log)
        .args(["--file-flush-interval-msec", "50"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn envoy (run `make envoy` or set ENVOY)")
}

/// The test-only build with the `fault-injection` feature (`make build-fault`): a request carrying
/// `x-api-warden-fault: trap` makes its VM trap.
pub fn fault_wasm_path() -> PathBuf {
    built(
        "target/fault/wasm32-wasip1/release/api_warden.wasm",
        "make build-fault",
    )
}

static NEXT_PORT: AtomicUsize = AtomicUsize::new(0);

/// A free loopback port. Ports come from 20000–32767, below the kernel's ephemeral range (so no
/// outgoing connection can take one between this check and Envoy's bind), starting at an offset
/// derived from the process id so that test processes running at once use different ports.
pub fn free_port() -> u16 {
    const LOW: usize = 20_000;
    const SPAN: usize = 12_768;
    let _ = NEXT_PORT.compare_exchange(
        0,
        (std::process::id() as usize * 97) % SPAN + 1,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let n = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
        let port = (LOW + n % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!(
        "api-warden-e2e-{}-{}-{}",
        std::process::id(),
        n,
        name
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

/// Options for one Envoy.
#[derive(Clone)]
pub struct Opts {
    pub concurrency: u32,
    /// Extra clusters (YAML list items, indented for `clusters:`).
    pub extra_clusters: String,
    /// Listen on [::1] too, for IPv6 tests.
    pub ipv6: bool,
    /// Accept HTTP/2 cleartext (h2c) on the main listener.
    pub h2c: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            concurrency: 1,
            extra_clusters: String::new(),
            ipv6: false,
            h2c: false,
        }
    }
}

/// A running Envoy; dropping it stops it (and prints its log if the test is failing).
pub struct Envoy {
    child: Child,
    pub dir: PathBuf,
    pub port: u16,
    pub admin: u16,
    pub upstream: u16,
    pub access_log: PathBuf,
    pub upstream_log: PathBuf,
    pub envoy_log: PathBuf,
}

/// Render the test bootstrap: main listener (api-warden → upstream cluster), an upstream listener
/// (direct_response echoing nothing but 200) with its own access log, admin.
pub fn bootstrap(
    plugin_config: &str,
    port: u16,
    admin: u16,
    upstream: u16,
    dir: &Path,
    opts: &Opts,
) -> String {
    let config_literal = serde_json::to_string(plugin_config).expect("json string");
    let access_log = dir.join("access.log");
    let upstream_log = dir.join("upstream.log");
    let wasm = wasm_path();
    let codec = if opts.h2c { "AUTO" } else { "HTTP1" };
    let ipv6_addr = if opts.ipv6 {
        format!(
            "    additional_addresses: [{{ address: {{ socket_address: {{ address: \"::1\", port_value: {port} }} }} }}]\n"
        )
    } else {
        String::new()
    };
    format!(
        r#"admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin} }} }}
static_resources:
  listeners:
  - name: main
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
{ipv6_addr}    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: main
          codec_type: {codec}
          use_remote_address: true
          preserve_external_request_id: true
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {access_log}
              log_format:
                text_format_source:
                  inline_string: "%FILTER_STATE(wasm.api_warden.record:PLAIN)%\t%RESPONSE_CODE%\t%FILTER_STATE(wasm.api_warden.username:PLAIN)%\t%FILTER_STATE(wasm.api_warden.client_ip:PLAIN)%\n"
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                route: {{ cluster: upstream }}
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: api_warden
                root_id: api_warden
                allow_on_headers_stop_iteration: true
                vm_config:
                  vm_id: api_warden
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: {wasm} }} }}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {config_literal}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  - name: upstream
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {upstream} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: upstream
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {upstream_log}
              log_format:
                text_format_source:
                  inline_string: "%REQ(:PATH)%\n"
          route_config:
            virtual_hosts:
            - name: upstream
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                direct_response: {{ status: 200, body: {{ inline_string: "upstream ok" }} }}
                response_headers_to_add:
                - header: {{ key: content-type, value: text/plain }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {upstream} }} }} }}
{extra_clusters}"#,
        access_log = access_log.display(),
        upstream_log = upstream_log.display(),
        wasm = wasm.display(),
        extra_clusters = opts.extra_clusters,
    )
}

impl Envoy {
    /// Start Envoy with this plugin configuration; panics (with Envoy's log) if it does not become ready.
    pub fn start(plugin_config: &str) -> Envoy {
        Envoy::start_with(plugin_config, Opts::default())
    }

    /// Start with options; panics with Envoy's log if it does not become ready.
    pub fn start_with(plugin_config: &str, opts: Opts) -> Envoy {
        match Envoy::try_start(plugin_config, opts) {
            Ok(e) => e,
            Err((msg, log)) => panic!("envoy did not start: {msg}\n--- envoy log ---\n{log}"),
        }
    }

    /// Start; on failure return (reason, Envoy's log) after making sure the process is gone.
    /// A port taken between [`free_port`] and Envoy's bind (other tests run in parallel) is
    /// retried with new ports.
    pub fn try_start(plugin_config: &str, opts: Opts) -> Result<Envoy, (String, String)> {
        let mut last = None;
        for _ in 0..4 {
            match Envoy::try_start_once(plugin_config, opts.clone()) {
                Err((_, log)) if log.contains("Address already in use") => {
                    last = Some(("ports taken".to_string(), log));
                }
                other => return other,
            }
        }
        Err(last.unwrap_or_default())
    }

    fn try_start_once(plugin_config: &str, opts: Opts) -> Result<Envoy, (String, String)> {
        let dir = scratch("envoy");
        let (port, admin, upstream) = (free_port(), free_port(), free_port());
        let yaml = bootstrap(plugin_config, port, admin, upstream, &dir, &opts);
        let cfg = dir.join("envoy.yaml");
        std::fs::write(&cfg, yaml).expect("write bootstrap");
        let envoy_log = dir.join("envoy.log");
        let child = spawn_envoy(
            &cfg,
            &envoy_log,
            &["--concurrency", &opts.concurrency.to_string()],
        );
        let mut e = Envoy {
            child,
            dir: dir.clone(),
            port,
            admin,
            upstream,
            access_log: dir.join("access.log"),
            upstream_log: dir.join("upstream.log"),
            envoy_log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = e.child.try_wait() {
                let log = e.log();
                return Err((format!("envoy exited with {status}"), log));
            }
            if let Ok(r) = get(admin, "/ready") {
                if r.status == 200 {
                    return Ok(e);
                }
            }
            if Instant::now() > deadline {
                let log = e.log();
                e.stop();
                return Err(("not ready after 30 s".into(), log));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Envoy's own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.envoy_log).unwrap_or_default()
    }

    /// Stop the process (idempotent).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Wait for the process to exit by itself (for configurations Envoy must refuse).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Send one request to the main listener.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        request(self.port, method, path, headers, None).expect("request")
    }

    /// GET on the main listener.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers)
    }

    /// Wait until the access log holds at least `n` complete lines and return them all.
    pub fn log_lines(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&self.access_log).unwrap_or_default();
            // Only complete lines: Envoy may be half-way through writing the last one.
            let complete = text.rfind('\n').map_or("", |i| &text[..i]);
            let lines: Vec<&str> = complete.lines().collect();
            if lines.len() >= n || Instant::now() > deadline {
                assert!(
                    lines.len() >= n,
                    "expected {n} access-log lines, found {}:\n{text}",
                    lines.len()
                );
                return lines.iter().map(|l| l.to_string()).collect();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the access log holds at least `n` lines and return them all parsed.
    pub fn records(&self, n: usize) -> Vec<LogLine> {
        self.log_lines(n)
            .iter()
            .map(|l| LogLine::parse(l))
            .collect()
    }

    /// The last access-log record once `n` lines exist.
    pub fn record(&self, n: usize) -> LogLine {
        self.records(n).pop().expect("one line")
    }

    /// Paths the upstream has seen so far (after a short settle).
    pub fn upstream_paths(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(300));
        std::fs::read_to_string(&self.upstream_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Admin GET, body as text.
    pub fn admin_get(&self, path: &str) -> String {
        get(self.admin, path).expect("admin").body_text()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- envoy log ({}) ---\n{}",
                self.envoy_log.display(),
                self.log()
            );
            eprintln!(
                "--- access log ---\n{}",
                std::fs::read_to_string(&self.access_log).unwrap_or_default()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One access-log line of the test format: the record, the status, two scalar filter-state keys.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub raw: String,
    pub record: Value,
    pub status: u16,
    pub username: String,
    pub client_ip: String,
}

impl LogLine {
    fn parse(line: &str) -> LogLine {
        let parts: Vec<&str> = line.split('\t').collect();
        let record = serde_json::from_str(parts[0])
            .unwrap_or_else(|e| panic!("record is not JSON ({e}): {line}"));
        LogLine {
            raw: line.to_string(),
            record,
            status: parts.get(1).and_then(|s| s.parse().ok()).unwrap_or(0),
            username: parts.get(2).unwrap_or(&"-").to_string(),
            client_ip: parts.get(3).unwrap_or(&"-").to_string(),
        }
    }

    /// A value by JSON pointer (`/ase/client/ip`), `Null` when absent.
    pub fn at(&self, pointer: &str) -> Value {
        self.record.pointer(pointer).cloned().unwrap_or(Value::Null)
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// GET on 127.0.0.1:port.
pub fn get(port: u16, path: &str) -> std::io::Result<Response> {
    request(port, "GET", path, &[], None)
}

/// One HTTP/1.1 request with `Connection: close` on a fresh connection.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    let mut raw = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        raw.extend_from_slice(b"host: localhost\r\n");
    }
    for (k, v) in headers {
        raw.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if let Some(b) = body {
        raw.extend_from_slice(format!("content-length: {}\r\n", b.len()).as_bytes());
    }
    raw.extend_from_slice(b"connection: close\r\n\r\n");
    if let Some(b) = body {
        raw.extend_from_slice(b);
    }
    raw_request(&format!("127.0.0.1:{port}"), &raw)
}

/// Send raw bytes (anything, including invalid HTTP) and parse the response.
pub fn raw_request(addr: &str, raw: &[u8]) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(raw)?;
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut body = Vec::new();
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    match len {
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body)?;
        }
        None => {
            let _ = r.read_to_end(&mut body);
        }
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// A request a [`TestServer`] received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

type Handler = dyn Fn(&Received) -> (u16, Vec<u8>) + Send + Sync;

/// A small HTTP/1.1 server on a free loopback port standing in for the analytics engine (attack
/// list, collector). The handler can be swapped while it runs; every request is recorded.
pub struct TestServer {
    pub port: u16,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    handler: std::sync::Arc<std::sync::Mutex<Box<Handler>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TestServer {
    /// Start serving with `handler`.
    pub fn start(
        handler: impl Fn(&Received) -> (u16, Vec<u8>) + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let handler: std::sync::Arc<std::sync::Mutex<Box<Handler>>> =
            std::sync::Arc::new(std::sync::Mutex::new(Box::new(handler)));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r, h, s) = (received.clone(), handler.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (r, h) = (r.clone(), h.clone());
                        std::thread::spawn(move || serve(stream, r, h));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TestServer {
            port,
            received,
            handler,
            stop,
        }
    }

    /// Replace the handler.
    pub fn set(&self, handler: impl Fn(&Received) -> (u16, Vec<u8>) + Send + Sync + 'static) {
        *self.handler.lock().unwrap() = Box::new(handler);
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// A STATIC cluster named `name` pointing at this server (for [`Opts::extra_clusters`]).
    pub fn cluster(&self, name: &str) -> String {
        cluster_yaml(name, self.port)
    }
}

/// A STATIC cluster YAML item for `127.0.0.1:port`.
pub fn cluster_yaml(name: &str, port: u16) -> String {
    format!(
        "  - name: {name}\n    type: STATIC\n    connect_timeout: 1s\n    load_assignment:\n      cluster_name: {name}\n      endpoints:\n      - lb_endpoints:\n        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }}\n"
    )
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    stream: TcpStream,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    handler: std::sync::Arc<std::sync::Mutex<Box<Handler>>>,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut w = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let req = Received {
            method,
            path,
            headers,
            body,
        };
        received.lock().unwrap().push(req.clone());
        let (status, out) = (handler.lock().unwrap())(&req);
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            out.len()
        );
        if w.write_all(head.as_bytes())
            .and_then(|_| w.write_all(&out))
            .is_err()
        {
            return;
        }
    }
}
