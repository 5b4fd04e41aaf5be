"""What bench/run.py and bench/soak.py share: the Envoy bootstrap rendered from envoy/templates/ (the
templates the end-to-end tests render, so the Envoy measured is the Envoy tested), the Envoy
launcher, the admin /stats reader, a small threaded HTTP server and the JWT builder.
Standard library only.
"""

import base64
import http.server
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENVOY = os.environ.get("ENVOY") or os.path.join(ROOT, ".venv/bin/envoy")
# BENCH_WASM / BENCH_HOST_CALLS_WASM measure other builds (e.g. a saved baseline) with this script.
WASM = os.environ.get("BENCH_WASM") or os.path.join(ROOT, "target/wasm32-wasip1/release/api_warden.wasm")
FLOOR = os.path.join(ROOT, "target/wasm32-wasip1/release/wasm_floor.wasm")
TEMPLATES = os.path.join(ROOT, "envoy/templates")
TYPES = ["ip", "token", "api_key", "cookie", "username"]

_PLACEHOLDER = re.compile(r"\{\{([A-Za-z0-9_]+)\}\}")


def template(name):
    with open(os.path.join(TEMPLATES, name)) as f:
        return f.read()


def render(text, **values):
    """Fill the {{name}} placeholders of a template (the rule of envoy/templates/README.md): a
    placeholder alone on its line takes the value's lines indented like it (an empty value drops the
    line); any other is replaced in place by a one-line value. Every placeholder needs a value and
    every value a placeholder."""
    used = set(_PLACEHOLDER.findall(text))
    unused = set(values) - used
    if unused:
        raise KeyError("values without a placeholder: %s" % sorted(unused))
    out = []
    for line in text.splitlines():
        stripped = line.lstrip()
        m = _PLACEHOLDER.fullmatch(stripped)
        if m:
            pad = line[:len(line) - len(stripped)]
            out += [pad + v for v in str(values[m.group(1)]).splitlines()]
            continue

        def one(m):
            v = str(values[m.group(1)])
            if "\n" in v:
                raise ValueError("in-line placeholder %s got a multi-line value" % m.group(0))
            return v
        out.append(_PLACEHOLDER.sub(one, line))
    return "\n".join(out) + "\n"


def bootstrap(admin, listeners, clusters, dynamic_resources=""):
    return render(template("bootstrap.yaml"), admin_port=admin, dynamic_resources=dynamic_resources,
                  listeners=listeners, clusters=clusters)


def listener(name, port, route, http_filters="", access_log="", codec="AUTO", additional_addresses=""):
    return render(template("listener.yaml"), name=name, port=port, route=route, http_filters=http_filters,
                  access_log=access_log, codec=codec, additional_addresses=additional_addresses)


def direct_response(body):
    return 'direct_response: { status: 200, body: { inline_string: "%s" } }' % body


def wasm_filter(plugin_config, code=WASM, name="api_warden", root_id="api_warden", vm_id="api_warden",
                failure_policy="UNSPECIFIED", allow_on_headers_stop_iteration=True):
    """The HTTP filter running `code` with the plugin configuration `plugin_config` (a string)."""
    return render(template("wasm-filter.yaml"), name=name, root_id=root_id, vm_id=vm_id,
                  failure_policy=failure_policy, code="{ local: { filename: %s } }" % code,
                  allow_on_headers_stop_iteration="true" if allow_on_headers_stop_iteration else "false",
                  plugin_config=json.dumps(plugin_config))


def access_log(path, fmt=None):
    """A file access log; the record format of the tests unless `fmt` (YAML double-quoted text)."""
    if fmt is None:
        fmt = template("record-format.txt").rstrip("\n")
    return render(template("access-log.yaml"), path=path, format=fmt)


def cluster(name, port):
    return render(template("cluster.yaml"), name=name, port=port)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, timeout=5):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return r.status, r.read().decode()


def stats(admin, prefix=""):
    """Admin /stats counters and gauges whose name starts with `prefix`, keyed by the rest of the
    name; {} when the admin does not answer."""
    try:
        _, text = http_get(admin, "/stats?filter=" + prefix)
    except OSError:
        return {}
    out = {}
    for m in re.finditer(r"^(\S+): (\d+)$", text, re.M):
        if m.group(1).startswith(prefix):
            out[m.group(1)[len(prefix):]] = int(m.group(2))
    return out


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def envoy_version():
    out = subprocess.run([ENVOY, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"version: (\S+)", out)
    return m.group(1) if m else out.strip()


class Envoy:
    """One Envoy on the bootstrap `yaml` (written to `directory`), its log in envoy.log there; ready
    once admin /ready answers 200. stop() is idempotent."""

    def __init__(self, directory, yaml, admin, args, timeout=60):
        self.dir, self.admin = directory, admin
        os.makedirs(directory, exist_ok=True)
        cfg = os.path.join(directory, "envoy.yaml")
        with open(cfg, "w") as f:
            f.write(yaml)
        self.log_path = os.path.join(directory, "envoy.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([ENVOY, "-c", cfg, "--disable-hot-restart"] + list(args),
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("envoy exited; see %s" % self.log_path)
            try:
                if http_get(admin, "/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("envoy not ready after %d s; see %s" % (timeout, self.log_path))
            time.sleep(0.1)

    def stop(self):
        if self.log.closed:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Server:
    """A threaded HTTP/1.1 server on a free loopback port. `handler(method, path, body)` returns
    (status, body bytes), or None to drop the connection without answering."""

    def __init__(self, handler):
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self):
                n = int(self.headers.get("content-length", "0"))
                data = self.rfile.read(n) if n else b""
                out = handler(self.command, self.path, data)
                if out is None:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                status, body = out
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    if body:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client (an Envoy being stopped) is gone

            do_GET = do_POST = answer

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        # A client (an Envoy being stopped) resetting its connection is not worth a traceback.
        self.httpd.handle_error = lambda request, client_address: None
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims, header=None, signature="c2lnbmF0dXJl"):
    """A compact JWS with these claims (api-warden decodes tokens, it never verifies them)."""
    header = header or {"alg": "HS256", "typ": "JWT"}
    return ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()), signature])
