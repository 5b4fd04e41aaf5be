#!/usr/bin/env python3
"""api-warden benchmark (`make bench`).

Runs six Envoy configurations, each a separate Envoy process with --concurrency 1, interleaved
A B C D P S A B C D P S ... and driven by the same wrk load on loopback:

  A  envoy         the same listener and direct_response route, no wasm filter (the ceiling)
  B  wasm floor    a pass-through proxy-wasm filter (bench/floor): what any wasm filter costs
  C  api-warden    10 APIs, Bearer JWT + API key + cookie on every request, deny lists of N entries
                   per identifier type loaded through the attack-list feed, an allow list, the
                   record in a JSON access log, export to a local collector
  D  blocking      as C, but every request hits a deny entry (local 403)
  P  protections   as C, plus a decoy API, pattern enforcement on every API and a flow-control
                   threshold that is never reached (ASE's inline protections' cost)
  S  sideband      as C, in ASE sideband mode: both calls per request to a local double that
                   answers at once (Envoy's CPU includes the two calls)

Figures per configuration: requests/s, latency p50/p99 (wrk --latency), Envoy CPU time per request
(from /proc/<pid>/stat over the run / requests served), Envoy RSS after loading the lists. Medians
over the rounds; ratios C/A and C/B of CPU per request. Then a sweep of C's CPU per request with
0, 1k, 100k and 1M entries per type, and the native micro-benchmark of the pure pipeline.
Writes bench/results.md. Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

from common import (ENVOY, FLOOR, ROOT, WASM, Envoy, Server, access_log, bootstrap, cluster, direct_response,
                    envoy_version, free_port, jwt, listener, rss_kib, stats, wasm_filter)

OUT = os.path.join(ROOT, "bench/out")
CLK_TCK = os.sysconf("SC_CLK_TCK")
JWT = jwt({"sub": "alice", "username": "alice", "client_id": "app-1", "iss": "https://idp.example",
           "aud": "shop", "scope": "read write", "iat": 1700000000, "exp": 4100000000})
REQUEST_PATH = "/api3/items?id=1"
REQUEST_HEADERS = {
    "Authorization": "Bearer " + JWT,
    "x-api-key": "key-live-123",
    "Cookie": "session=sess-abc; theme=dark",
    "User-Agent": "wrk",
}


class Feed:
    """The attack-list feed (GET, paginated) and the analytics collector (POST) on one server."""

    def __init__(self):
        self.pages = [b"{}"]
        self.server = Server(self.handle)
        self.port = self.server.port

    def handle(self, method, path, body):
        if method == "POST":
            return 200, b""
        page = int(path.rsplit("page=", 1)[1]) if "page=" in path else 0
        return 200, self.pages[page] if page < len(self.pages) else b"{}"

    def set_feed(self, n, per_page=200_000):
        """Build a feed with n entries per type, paginated (Envoy drops HTTP-call responses over
        32 MiB); none of the entries matches the benchmark request."""
        gens = {
            "ip": lambda i: "10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255),
            "token": lambda i: "tok-%d" % i,
            "api_key": lambda i: "key-%d" % i,
            "cookie": lambda i: "sess-%d" % i,
            "username": lambda i: "user-%d" % i,
        }
        pages = []
        starts = list(range(0, n, per_page)) or [0]
        for p, start in enumerate(starts):
            doc = {t: [g(i) for i in range(start, min(n, start + per_page))] for t, g in gens.items()}
            if p + 1 < len(starts):
                doc["next"] = "/attacks?page=%d" % (p + 1)
            pages.append(json.dumps(doc, separators=(",", ":")).encode())
        self.pages = pages


# A no wasm, B the wasm floor, C api-warden, D blocking, P api-warden with the inline protections,
# S api-warden in ASE sideband mode against a local double (the feed server) that answers at once.
KINDS = "ABCDPS"


def plugin_config(kind, feed_port, collector):
    apis = []
    for i in range(10):
        apis.append({"name": "api%d" % i, "api_metadata": {
            "protocol": "http", "url": "/api%d" % i, "hostname": "*", "cookie": "session",
            "cookie_idle_timeout": "200m", "logout_api_enabled": False,
            "cookie_persistence_enabled": False, "oauth2_access_token": True,
            "is_token_mandatory": False, "apikey_qs": "", "apikey_header": "x-api-key",
            "login_url": "", "enable_blocking": True, "api_mapping": {"internal_url": ""},
            "username_header": "",
            "jwt": {"location": "h:authorization:bearer", "username": "username", "clientid": "client_id"},
        }})
        if kind == "P":
            # ASE's inline protections on every API: pattern enforcement the requests pass and a
            # client threshold they never reach.
            apis[-1]["api_metadata"]["api_pattern_enforcement"] = {
                "methods_allowed": ["GET", "POST"], "content_type_allowed": "application/json",
                "protocol_allowed": "http, https"}
            apis[-1]["api_metadata"]["flow_control"] = {"client_spike_threshold": "1000000000/second"}
    if kind == "P":
        apis.append({"name": "decoy", "api_metadata": {"url": "/admin", "hostname": "*", "enable_blocking": True,
                     "decoy_config": {"decoy_enabled": True, "decoy_subpaths": []}}})
    cfg = {
        "ase": {"enable_firewall": True, "enable_ase_detected_attack": True},
        **({"sideband": {"service": "ase", "cluster": "ase", "timeout_ms": 1000, "fail_open": True,
                         "response_call": True}} if kind == "S" else {}),
        "apis": apis,
        "deny_list": {"username": ["alice"] if kind == "D" else ["mallory"]},
        "allow_list": {"ip": ["192.0.2.10"]},
        "attack_list": {"cluster": "abs", "path": "/attacks", "interval_s": 3600, "timeout_ms": 60000},
        "analytics": {"cluster": "collector", "path": "/records", "batch_size": 100,
                      "flush_interval_ms": 1000, "max_buffered": 10000},
    }
    return json.dumps(cfg)


def envoy_bootstrap(kind, port, admin, feed_port, log_path, ase_port=None):
    """The listener of every configuration: direct_response 200 behind the filter of `kind` (none,
    the floor, api-warden), the record access log; the feed and collector clusters."""
    if kind == "A":
        filters = ""
    elif kind == "B":
        filters = wasm_filter("", code=FLOOR, name="floor", root_id="floor", vm_id="floor")
    else:
        filters = wasm_filter(plugin_config(kind, feed_port, None))
    main = listener("main", port, direct_response("ok"), http_filters=filters, access_log=access_log(log_path))
    clusters = cluster("abs", feed_port) + cluster("collector", feed_port)
    if ase_port:
        clusters += cluster("ase", ase_port)
    return bootstrap(admin, main, clusters)


def ase_double(directory):
    """ASE's sideband API as a second Envoy process (its CPU is not measured) that answers every
    call at once with 200: what S pays for the two calls, not a slow double's queueing."""
    port, admin = free_port(), free_port()
    # The buffer filter reads each call's body before the direct response: answering at the headers
    # would make Envoy close the connection, and every call would pay for a new one.
    buffer = ("- name: envoy.filters.http.buffer\n  typed_config:\n"
              "    \"@type\": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer\n"
              "    max_request_bytes: 1048576")
    yaml = bootstrap(admin, listener("ase", port, direct_response("{}"), http_filters=buffer), "")
    return Envoy(directory, yaml, admin, ["--concurrency", "1", "--log-level", "warn"]), port


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


class Run:
    """One Envoy of configuration `kind`, started (with its deny lists loaded for C and D)."""

    def __init__(self, kind, feed, tag):
        self.port, admin = free_port(), free_port()
        self.dir = os.path.join(OUT, tag)
        self.double, ase_port = ase_double(self.dir + "-ase") if kind == "S" else (None, None)
        self.envoy = Envoy(self.dir, envoy_bootstrap(kind, self.port, admin, feed.port,
                                                     os.path.join(self.dir, "access.log"), ase_port),
                           admin, ["--concurrency", "1", "--log-level", "warn"])
        self.proc = self.envoy.proc
        self.load_seconds = 0.0
        if kind in "CDPS":
            t0 = time.time()
            while self.stat("attack_list.polls_ok") < 1:
                if self.stat("attack_list.polls_failed") > 0:
                    self.stop()
                    raise RuntimeError("attack-list load failed; see %s" % self.envoy.log_path)
                if time.time() > t0 + 600:
                    self.stop()
                    raise RuntimeError("attack list not loaded after 600 s")
                time.sleep(0.2)
            self.load_seconds = time.time() - t0
        self.rss_kib = rss_kib(self.proc.pid)

    def stat(self, name):
        return stats(self.envoy.admin, "wasmcustom.api_warden.").get(name, 0)

    def stop(self):
        self.envoy.stop()
        if self.double:
            self.double.stop()


def wrk(port, seconds, connections):
    cmd = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds, "--latency"]
    for k, v in REQUEST_HEADERS.items():
        cmd += ["-H", "%s: %s" % (k, v)]
    cmd.append("http://127.0.0.1:%d%s" % (port, REQUEST_PATH))
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def lat(p):
        m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1, "ms": 1000, "s": 1e6}[m.group(2)]

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_us": lat("50"),
        "p99_us": lat("99"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def measure(kind, feed, seconds, connections, tag):
    e = Run(kind, feed, tag)
    try:
        wrk(e.port, 1, connections)  # warm-up
        t0 = cpu_ticks(e.proc.pid)
        r = wrk(e.port, seconds, connections)
        t1 = cpu_ticks(e.proc.pid)
        r["cpu_us_per_req"] = (t1 - t0) / CLK_TCK / max(r["requests"], 1) * 1e6
        r["rss_mib"] = e.rss_kib / 1024
        r["load_s"] = e.load_seconds
        if kind == "D" and r["non2xx"] < r["requests"] * 0.99:
            raise RuntimeError("D: expected every request blocked, got %d non-2xx of %d" % (r["non2xx"], r["requests"]))
        if kind != "D" and r["non2xx"] > 0:
            raise RuntimeError("%s: %d unexpected non-2xx responses" % (kind, r["non2xx"]))
        return r
    finally:
        e.stop()
        shutil.rmtree(e.dir, ignore_errors=True)


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def micro_bench():
    out = subprocess.run(["cargo", "bench", "--quiet", "--bench", "pipeline"], cwd=ROOT,
                         capture_output=True, text=True)
    return out.stdout.strip() or out.stderr.strip()[-2000:]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--entries", type=int, default=1_000_000, help="deny entries per identifier type for C and D")
    ap.add_argument("--sweep", default="0,1000,100000,1000000")
    ap.add_argument("--no-sweep", action="store_true")
    args = ap.parse_args()

    for p in (ENVOY, WASM, FLOOR):
        if not os.path.exists(p):
            sys.exit("missing %s (run through `make bench`)" % p)
    server = Feed()
    print("building the attack-list feed: %d entries per type ..." % args.entries, flush=True)
    server.set_feed(args.entries)
    results = {k: [] for k in KINDS}
    for rnd in range(args.rounds):
        for kind in KINDS:
            r = measure(kind, server, args.seconds, args.connections, "%s%d" % (kind, rnd))
            results[kind].append(r)
            print("round %d %s: %8.0f req/s  p50 %6.0f us  p99 %6.0f us  cpu %6.1f us/req  rss %6.0f MiB"
                  % (rnd + 1, kind, r["rps"], r["p50_us"], r["p99_us"], r["cpu_us_per_req"], r["rss_mib"]),
                  flush=True)

    sweep = []
    if not args.no_sweep:
        # Interleaved like the main table (0, 1k, 100k, 1M, 0, 1k, ...): on a shared machine a
        # size measured alone in a noisy minute would look like a scaling effect.
        sizes = [int(x) for x in args.sweep.split(",")]
        pages = {}
        for n in sizes:
            server.set_feed(n)
            pages[n] = server.pages
        rows = {n: [] for n in sizes}
        for rnd in range(args.rounds):
            for n in sizes:
                server.pages = pages[n]
                r = measure("C", server, args.seconds, args.connections, "sweep%d_%d" % (n, rnd))
                rows[n].append(r)
                print("sweep round %d %8d entries/type: cpu %6.1f us/req  rss %6.0f MiB  load %.1f s"
                      % (rnd + 1, n, r["cpu_us_per_req"], r["rss_mib"], r["load_s"]), flush=True)
        for n in sizes:
            sweep.append((n, median(rows[n], "cpu_us_per_req"), median(rows[n], "rss_mib"),
                          median(rows[n], "load_s"), min(r["cpu_us_per_req"] for r in rows[n])))

    micro = micro_bench()
    print(micro)

    names = {"A": "A envoy (no wasm)", "B": "B wasm floor", "C": "C api-warden", "D": "D api-warden blocking",
             "P": "P api-warden + protections", "S": "S api-warden + ASE sideband"}
    cpu = {k: median(v, "cpu_us_per_req") for k, v in results.items()}
    lines = [
        "# api-warden benchmark results", "",
        "- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- machine: %s, %d cores, %s" % (platform.machine(), os.cpu_count(), cpu_model()),
        "- envoy: %s" % envoy_version(),
        "- load: wrk -t1 -c%d, %d s per run, %d rounds interleaved A B C D, Envoy --concurrency 1, loopback"
        % (args.connections, args.seconds, args.rounds),
        "- C/D: 10 APIs, Bearer JWT + API key + cookie, %d deny entries per type (x5) from the attack-list feed, "
        "allow list, record in JSON access log, export to a local collector" % args.entries,
        "",
        "| configuration | req/s | p50 µs | p99 µs | Envoy CPU µs/req | RSS MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k in KINDS:
        rows = results[k]
        lines.append("| %s | %.0f | %.0f | %.0f | %.1f | %.0f |" % (
            names[k], median(rows, "rps"), median(rows, "p50_us"), median(rows, "p99_us"), cpu[k],
            median(rows, "rss_mib")))
    added_b = cpu["B"] - cpu["A"]
    added_c = cpu["C"] - cpu["B"]
    lines += [
        "",
        "Ratios of CPU per request (medians, same run): **C/A = %.2f**, **C/B = %.2f**, D/A = %.2f."
        % (cpu["C"] / cpu["A"], cpu["C"] / cpu["B"], cpu["D"] / cpu["A"]),
        "",
        "P (C with a decoy API, pattern enforcement on every API and a flow-control threshold never "
        "reached): P/C = %.2f (%+.1f µs per request)." % (cpu["P"] / cpu["C"], cpu["P"] - cpu["C"]),
        "",
        "S (C in ASE sideband mode, both calls to a local double answering at once): S/C = %.2f in CPU "
        "per request, p99 %.0f µs vs C's %.0f µs." % (cpu["S"] / cpu["C"], median(results["S"], "p99_us"),
                                                      median(results["C"], "p99_us")),
        "",
        "Budget: C's added CPU over B (%.1f µs) ≤ half of B's added CPU over A (%.1f µs / 2 = %.1f µs): **%s**."
        % (added_c, added_b, added_b / 2, "met" if added_c <= added_b / 2 else "missed"),
    ]
    if sweep:
        base = sweep[0][1]
        lines += ["", "Scaling sweep (configuration C, %d rounds interleaved, medians):" % args.rounds, "",
                  "| deny entries per type | CPU µs/req | vs 0 entries | fastest run | vs 0 (fastest) | RSS MiB | feed load s |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        fastest0 = sweep[0][4]
        for n, c, rss, load, fast in sweep:
            lines.append("| %d | %.1f | %+.1f%% | %.1f | %+.1f%% | %.0f | %.1f |" % (
                n, c, (c / base - 1) * 100, fast, (fast / fastest0 - 1) * 100, rss, load))
        flat = max(abs(row[1] / base - 1) for row in sweep) <= 0.10
        lines.append("")
        lines.append("Budget: flat within 10%% from 0 to %d entries (medians): **%s**. Interference on a shared "
                     "machine only adds time, so the fastest run of each size is shown too." % (sweep[-1][0], "met" if flat else "missed"))
        if len(sweep) > 1 and sweep[-1][0] > 0:
            per_entry = (sweep[-1][2] - sweep[0][2]) * 1024 * 1024 / (5 * sweep[-1][0])
            lines.append("Memory: %.0f bytes per deny entry (RSS growth / (5 × %d)); budget 150: **%s**."
                         % (per_entry, sweep[-1][0], "met" if per_entry <= 150 else "missed"))
    lines += ["", "Native micro-benchmark of the pure pipeline (identification + decision + record):", "",
              "```", micro, "```", "",
              "Reproduce: `make bench` (options: `python3 bench/run.py --help`)."]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(ROOT, "bench/results.md"), "w") as f:
        f.write(text)
    print()
    print(text)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
