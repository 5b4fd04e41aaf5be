//! The one Envoy launcher of the tests: writes a bootstrap, starts the real Envoy on free loopback
//! ports (new ones when a port was taken meanwhile), waits for admin `/ready`, and always stops it
//! on drop — printing its log when the test failed. Also the test bootstrap (api-warden in front of
//! a direct-response upstream) and the built artifacts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::http::{get, request, Response};
use super::{eventually, stats, yaml, LogLine};

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

/// The test-only build with the `fault-injection` feature (`make build-fault`): a request carrying
/// `x-api-warden-fault: trap` makes its VM trap.
pub fn fault_wasm_path() -> PathBuf {
    built(
        "target/fault/wasm32-wasip1/release/api_warden.wasm",
        "make build-fault",
    )
}

/// The `api-warden` command (`make cli`).
pub fn cli_path() -> PathBuf {
    built("target/release/api-warden", "make cli")
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
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

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

/// Options of the test bootstrap.
#[derive(Clone)]
pub struct Opts {
    pub concurrency: u32,
    /// Extra clusters (YAML list items, not indented).
    pub extra_clusters: String,
    /// Listen on [::1] too, for IPv6 tests.
    pub ipv6: bool,
    /// Accept HTTP/2 cleartext (h2c) on the main listener.
    pub h2c: bool,
    /// `allow_on_headers_stop_iteration` on the wasm filter (true, as the README asks).
    pub allow_on_headers_stop_iteration: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            concurrency: 1,
            extra_clusters: String::new(),
            ipv6: false,
            h2c: false,
            allow_on_headers_stop_iteration: true,
        }
    }
}

/// The test bootstrap: the main listener (api-warden → cluster `upstream`, the record access log
/// `access.log` in `dir`), the upstream listener (200 "upstream ok", its paths in `upstream.log`),
/// the `upstream` cluster and `opts.extra_clusters`, admin.
pub fn test_bootstrap(
    plugin_config: &str,
    port: u16,
    admin: u16,
    upstream: u16,
    dir: &Path,
    opts: &Opts,
) -> String {
    let ipv6 = if opts.ipv6 {
        format!("additional_addresses: [{{ address: {{ socket_address: {{ address: \"::1\", port_value: {port} }} }} }}]")
    } else {
        String::new()
    };
    let main = yaml::Listener {
        name: "main",
        port,
        additional_addresses: &ipv6,
        codec: if opts.h2c { "AUTO" } else { "HTTP1" },
        access_log: &yaml::access_log(&dir.join("access.log"), yaml::record_format()),
        route: "route: { cluster: upstream }",
        http_filters: &yaml::wasm_filter_with(
            &yaml::local_code(&wasm_path()),
            "UNSPECIFIED",
            plugin_config,
            opts.allow_on_headers_stop_iteration,
        ),
    };
    let upstream_route = format!(
        "{}\nresponse_headers_to_add:\n- header: {{ key: content-type, value: text/plain }}",
        yaml::direct_response("upstream ok")
    );
    let upstream_listener = yaml::Listener {
        name: "upstream",
        port: upstream,
        additional_addresses: "",
        codec: "AUTO",
        access_log: &yaml::access_log(&dir.join("upstream.log"), "%REQ(:PATH)%\\n"),
        route: &upstream_route,
        http_filters: "",
    };
    yaml::bootstrap(
        admin,
        "",
        &(main.render() + &upstream_listener.render()),
        &(yaml::cluster("upstream", upstream) + &opts.extra_clusters),
    )
}

/// What to launch: the bootstrap `yaml` (written to `dir`), its admin port, the main and upstream
/// listener ports (0 when none), extra Envoy arguments.
pub struct Launch {
    pub dir: PathBuf,
    pub yaml: String,
    pub admin: u16,
    pub port: u16,
    pub upstream: u16,
    pub args: Vec<String>,
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

impl Envoy {
    /// Start the test bootstrap with this plugin configuration; panics (with Envoy's log) if it
    /// does not become ready.
    pub fn start(plugin_config: &str) -> Envoy {
        Envoy::start_with(plugin_config, Opts::default())
    }

    /// [`Envoy::start`] with options.
    pub fn start_with(plugin_config: &str, opts: Opts) -> Envoy {
        match Envoy::try_start(plugin_config, opts) {
            Ok(e) => e,
            Err((msg, log)) => panic!("envoy did not start: {msg}\n--- envoy log ---\n{log}"),
        }
    }

    /// Start the test bootstrap; on failure return (reason, Envoy's log).
    pub fn try_start(plugin_config: &str, opts: Opts) -> Result<Envoy, (String, String)> {
        Envoy::launch(|| {
            let dir = scratch("envoy");
            let (port, admin, upstream) = (free_port(), free_port(), free_port());
            Launch {
                yaml: test_bootstrap(plugin_config, port, admin, upstream, &dir, &opts),
                dir,
                admin,
                port,
                upstream,
                args: vec!["--concurrency".into(), opts.concurrency.to_string()],
            }
        })
    }

    /// Start the test bootstrap with a configuration Envoy must refuse; returns Envoy's log, or
    /// panics when Envoy accepted it.
    pub fn refused(plugin_config: &str) -> String {
        match Envoy::try_start(plugin_config, Opts::default()) {
            Ok(mut e) => {
                let exited = e.wait_exit(Duration::from_secs(5));
                panic!(
                    "envoy accepted a bad configuration (exit: {exited:?}):\n{plugin_config:.300}"
                );
            }
            Err((_, log)) => log,
        }
    }

    /// Launch what `make` describes and wait for admin `/ready` (30 s); on failure return
    /// (reason, Envoy's log) after making sure the process is gone. A port taken between
    /// [`free_port`] and Envoy's bind (tests run in parallel) is retried: `make` is called again
    /// for new ports.
    pub fn launch(mut make: impl FnMut() -> Launch) -> Result<Envoy, (String, String)> {
        let mut last = Err(("not launched".to_string(), String::new()));
        for _ in 0..4 {
            last = Envoy::launch_once(make());
            match &last {
                Err((_, log)) if log.contains("Address already in use") => {}
                _ => return last,
            }
        }
        last
    }

    fn launch_once(l: Launch) -> Result<Envoy, (String, String)> {
        let cfg = l.dir.join("envoy.yaml");
        std::fs::write(&cfg, &l.yaml).expect("write bootstrap");
        let envoy_log = l.dir.join("envoy.log");
        let child = Command::new(envoy_bin())
            .arg("-c")
            .arg(&cfg)
            .args(&l.args)
            .arg("--disable-hot-restart")
            .args(["--log-level", "info", "--component-log-level", "wasm:debug"])
            .arg("--log-path")
            .arg(&envoy_log)
            .args(["--file-flush-interval-msec", "50"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn envoy (run `make envoy` or set ENVOY)");
        let mut e = Envoy {
            child,
            access_log: l.dir.join("access.log"),
            upstream_log: l.dir.join("upstream.log"),
            dir: l.dir,
            port: l.port,
            admin: l.admin,
            upstream: l.upstream,
            envoy_log,
        };
        let ready = eventually(30, || {
            let exited = e.child.try_wait().ok().flatten();
            let ready = get(e.admin, "/ready").is_ok_and(|r| r.status == 200);
            (exited.is_some() || ready).then_some(exited)
        });
        match ready {
            Some(None) => Ok(e),
            Some(Some(status)) => Err((format!("envoy exited with {status}"), e.log())),
            None => Err(("not ready after 30 s".into(), e.log())),
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

    /// The process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for the process to exit by itself (for configurations Envoy must refuse).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
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
        let lines = eventually(10, || {
            let text = std::fs::read_to_string(&self.access_log).unwrap_or_default();
            // Only complete lines: Envoy may be half-way through writing the last one.
            let complete = text.rfind('\n').map_or("", |i| &text[..i]);
            let lines: Vec<String> = complete.lines().map(str::to_string).collect();
            (lines.len() >= n).then_some(lines)
        });
        lines.unwrap_or_else(|| {
            panic!(
                "expected {n} access-log lines, found fewer:\n{}",
                std::fs::read_to_string(&self.access_log).unwrap_or_default()
            )
        })
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

    /// Every numeric stat of admin `/stats`.
    pub fn stats(&self) -> HashMap<String, u64> {
        stats(self.admin, "")
    }

    /// One counter or gauge of admin `/stats`, `None` when absent.
    pub fn try_stat(&self, name: &str) -> Option<u64> {
        self.stats().get(name).copied()
    }

    /// One counter or gauge of admin `/stats`, 0 when absent.
    pub fn stat(&self, name: &str) -> u64 {
        self.try_stat(name).unwrap_or(0)
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
            if let Ok(text) = std::fs::read_to_string(&self.access_log) {
                eprintln!("--- access log ---\n{text}");
            }
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
