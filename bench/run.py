#!/usr/bin/env python3
"""api-warden benchmark (`make bench`).

Runs Envoy configurations, each a separate Envoy process with --concurrency 1, interleaved
(A B C D E L R100 R10k A B C ...) and driven by the same wrk load on loopback:

  A     envoy          the same listener and direct_response route, no filter (the ceiling)
  B     wasm floor     a pass-through proxy-wasm filter (bench/floor): what any wasm filter costs
  C     api-warden     10 APIs, Bearer JWT + API key + cookie on every request, deny lists of N
                       entries per identifier type loaded through the attack-list feed, an allow
                       list, the record in a JSON access log and filter states, export to a local
                       collector
  D     blocking       as C, but every request hits a deny entry (local 403)
  E     enforcement    as C with analytics.filter_state none, no export, no access log
  L     Lua peer       an Envoy Lua filter (bench/deny.lua) decoding the Bearer JWT's payload and
                       checking its username against a Lua table of the same N usernames
  R100  RBAC peer      Envoy's RBAC filter denying 100 API keys (header principals)
  R10k  RBAC peer      the same with 10,000 keys
  P, S  (--kinds)      C plus ASE's inline protections / C in ASE sideband mode

Each Envoy serves today's request ("simple") and, for A B C E L, a browser-like request too
(15 headers, a 1 KB cookie, a 900-byte JWT). Figures per configuration and request: requests/s,
latency p50/p99 (wrk --latency), Envoy CPU time per request (/proc/<pid>/stat over the run /
requests served), RSS after loading. Medians over the rounds. Then: host calls per request by
kind (the host-calls build, C and E), a sweep of C's CPU per request over deny-list sizes,
bench/load.py (memory per entry, 5M-entry load) when present, the native micro-benchmark.
Writes bench/results.md (bench/report.py). Standard library only.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

from common import ENVOY, FLOOR, ROOT, WASM, Envoy, Server, bootstrap, direct_response, free_port, listener, rss_kib, stats
from configs import BASELINE, REQUEST_PATH, REQUESTS, WARDEN, envoy_bootstrap
import report

OUT = os.path.join(ROOT, "bench/out")
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST_CALLS_WASM = (os.environ.get("BENCH_HOST_CALLS_WASM")
                   or os.path.join(ROOT, "target/host-calls/wasm32-wasip1/release/api_warden.wasm"))
DEFAULT_KINDS = "A,B,C,D,E,L,R100,R10k"
# Kinds that also serve the browser-like request.
BROWSER_KINDS = ("A", "B", "C", "E", "L", "P", "Cb", "Eb", "Bm", "Bh", "Be")


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


class Run:
    """One Envoy of configuration `kind`, started (with its deny lists loaded for api-warden)."""

    def __init__(self, kind, feed, tag, wasm=WASM, lua_entries=0):
        self.kind = kind
        self.port, admin = free_port(), free_port()
        self.dir = os.path.join(OUT, tag)
        self.double, ase_port = ase_double(self.dir + "-ase") if kind == "S" else (None, None)
        self.envoy = Envoy(self.dir, envoy_bootstrap(kind, self.port, admin, feed.port,
                                                     os.path.join(self.dir, "access.log"), ase_port,
                                                     wasm=wasm, lua_entries=lua_entries),
                           admin, ["--concurrency", "1", "--log-level", "warn"], timeout=300)
        self.proc = self.envoy.proc
        self.load_seconds = 0.0
        if kind in WARDEN:
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
        return self.stats().get(name, 0)

    def stats(self):
        return stats(self.envoy.admin, "wasmcustom.api_warden.")

    def stop(self):
        self.envoy.stop()
        if self.double:
            self.double.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.double:
            shutil.rmtree(self.dir + "-ase", ignore_errors=True)


def wrk(port, seconds, connections, headers):
    cmd = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds, "--latency"]
    for k, v in headers.items():
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


def measure(e, request, seconds, connections):
    """One measured wrk run of `request` against the started Envoy `e` (after a 1 s warm-up)."""
    headers = REQUESTS[request]
    wrk(e.port, 1, connections, headers)
    t0 = cpu_ticks(e.proc.pid)
    r = wrk(e.port, seconds, connections, headers)
    t1 = cpu_ticks(e.proc.pid)
    r["cpu_us_per_req"] = (t1 - t0) / CLK_TCK / max(r["requests"], 1) * 1e6
    r["rss_mib"] = e.rss_kib / 1024
    r["load_s"] = e.load_seconds
    if e.kind == "D" and r["non2xx"] < r["requests"] * 0.99:
        raise RuntimeError("D: expected every request blocked, got %d non-2xx of %d" % (r["non2xx"], r["requests"]))
    if e.kind != "D" and r["non2xx"] > 0:
        raise RuntimeError("%s/%s: %d unexpected non-2xx responses" % (e.kind, request, r["non2xx"]))
    return r


def host_calls_pass(feed, kinds, seconds, connections):
    """Host calls per request by kind with the host-calls build: counters are published on the
    root context's tick (each second), so read them after a tick before and after the load.
    Root-context calls (polls, export batches, gauges) are included, amortized per request."""
    out = {}
    for kind in kinds:
        e = Run(kind, feed, "hostcalls-%s" % kind, wasm=HOST_CALLS_WASM)
        try:
            for request in REQUESTS:
                wrk(e.port, 1, connections, REQUESTS[request])
                time.sleep(1.5)
                before = e.stats()
                wrk(e.port, seconds, connections, REQUESTS[request])
                time.sleep(1.5)
                after = e.stats()
                n = after.get("requests.total", 0) - before.get("requests.total", 0)
                row = {"requests": n, "calls": {}, "bytes": {}, "ns": {}}
                for key, v in after.items():
                    if key.startswith("vm_ns."):
                        row["ns"][key[len("vm_ns."):]] = (v - before.get(key, 0)) / max(n, 1)
                    for what in ("host_calls", "host_bytes"):
                        if key.startswith(what + "."):
                            d = v - before.get(key, 0)
                            if d:
                                row["calls" if what == "host_calls" else "bytes"][key[len(what) + 1:]] = d / max(n, 1)
                out["%s/%s" % (kind, request)] = row
                print("host calls %s/%s: %s; ns in the VM: %s" % (kind, request, ", ".join(
                    "%s %.3f" % kv for kv in sorted(row["calls"].items())), ", ".join(
                    "%s %.0f" % kv for kv in sorted(row["ns"].items()))), flush=True)
        finally:
            e.stop()
    return out


def sweep_pass(feed, sizes, rounds, seconds, connections):
    """C's CPU per request by deny-list size, interleaved like the main table (0, 1k, 100k, 1M,
    0, ...): on a shared machine a size measured alone in a noisy minute would look like scaling."""
    pages = {}
    for n in sizes:
        feed.set_feed(n)
        pages[n] = feed.pages
    rows = {n: [] for n in sizes}
    for rnd in range(rounds):
        for n in sizes:
            feed.pages = pages[n]
            e = Run("C", feed, "sweep%d_%d" % (n, rnd))
            try:
                r = measure(e, "simple", seconds, connections)
            finally:
                e.stop()
            rows[n].append(r)
            print("sweep round %d %8d entries/type: cpu %6.1f us/req  rss %6.0f MiB  load %.1f s"
                  % (rnd + 1, n, r["cpu_us_per_req"], r["rss_mib"], r["load_s"]), flush=True)
    return [(n, median(rows[n], "cpu_us_per_req"), median(rows[n], "rss_mib"), median(rows[n], "load_s"),
             min(r["cpu_us_per_req"] for r in rows[n])) for n in sizes]


def load_pass(entries):
    """bench/load.py (memory per deny entry, the feed load of `entries` entries in all with
    requests flowing), when the file exists: its JSON figures, or None."""
    script = os.path.join(ROOT, "bench/load.py")
    if not os.path.exists(script):
        return None
    out = os.path.join(OUT, "load.json")
    os.makedirs(OUT, exist_ok=True)
    print("bench/load.py --entries %d ..." % entries, flush=True)
    r = subprocess.run([sys.executable, script, "--entries", str(entries), "--json", out])
    if r.returncode != 0 or not os.path.exists(out):
        return {"error": "bench/load.py exited with %d" % r.returncode}
    with open(out) as f:
        return json.load(f)


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def micro_bench():
    out = subprocess.run(["cargo", "bench", "--quiet", "--bench", "pipeline"], cwd=ROOT,
                         capture_output=True, text=True)
    return out.stdout.strip() or out.stderr.strip()[-2000:]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--entries", type=int, default=1_000_000,
                    help="deny entries per identifier type for api-warden (and usernames for the Lua peer)")
    ap.add_argument("--lua-entries", type=int, default=None,
                    help="usernames in the Lua peer's table (default: --entries)")
    ap.add_argument("--kinds", default=DEFAULT_KINDS,
                    help="configurations, comma-separated (also P, S, Cr = C with filter_state record, "
                    "Cm = Cr without the optional record parts, Bm / Bh = B reading the header map / 8 "
                    "headers one by one, Be = B making E's host calls)")
    ap.add_argument("--no-browser", action="store_true", help="today's request only")
    ap.add_argument("--baseline-wasm", help="an earlier api_warden.wasm: adds Cb and Eb (C and E with it) to "
                    "the interleaved rounds, for before/after figures from one run")
    ap.add_argument("--sweep", default="0,1000,100000,1000000")
    ap.add_argument("--sweep-rounds", type=int, default=2)
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--no-host-calls", action="store_true")
    ap.add_argument("--no-load", action="store_true", help="skip bench/load.py")
    ap.add_argument("--no-micro", action="store_true", help="skip the native micro-benchmark")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results.md"))
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    if args.baseline_wasm:
        kinds += [k for k in BASELINE if k not in kinds]
    elif any(k in BASELINE for k in kinds):
        sys.exit("Cb / Eb need --baseline-wasm")
    lua_entries = args.entries if args.lua_entries is None else args.lua_entries

    needed = [ENVOY, WASM, FLOOR] + ([] if args.no_host_calls else [HOST_CALLS_WASM])
    for p in needed:
        if not os.path.exists(p):
            sys.exit("missing %s (run through `make bench`)" % p)
    started = time.time()
    server = Feed()
    print("building the attack-list feed: %d entries per type ..." % args.entries, flush=True)
    server.set_feed(args.entries)
    results = {}
    for rnd in range(args.rounds):
        for kind in kinds:
            wasm = args.baseline_wasm if kind in BASELINE else WASM
            e = Run(kind, server, "%s%d" % (kind, rnd), wasm=wasm, lua_entries=lua_entries)
            try:
                requests = ["simple"] + ([] if args.no_browser or kind not in BROWSER_KINDS else ["browser"])
                for request in requests:
                    r = measure(e, request, args.seconds, args.connections)
                    results.setdefault((kind, request), []).append(r)
                    print("round %d %-5s %-7s: %8.0f req/s  p50 %6.0f us  p99 %6.0f us  cpu %6.1f us/req  "
                          "rss %6.0f MiB" % (rnd + 1, kind, request, r["rps"], r["p50_us"], r["p99_us"],
                                             r["cpu_us_per_req"], r["rss_mib"]), flush=True)
            finally:
                e.stop()
    table = {key: {m: median(rows, m) for m in ("rps", "p50_us", "p99_us", "cpu_us_per_req", "rss_mib", "load_s")}
             for key, rows in results.items()}
    host_calls = {}
    if not args.no_host_calls:
        host_calls = host_calls_pass(server, [k for k in ("C", "E") if k in kinds], 3, args.connections)
    sweep = []
    if not args.no_sweep:
        sweep = sweep_pass(server, [int(x) for x in args.sweep.split(",")], args.sweep_rounds,
                           args.seconds, args.connections)
    server.pages = [b"{}"]
    load = None if args.no_load else load_pass(5 * args.entries)
    micro = "" if args.no_micro else micro_bench()
    text = report.write(args.out, args=args, lua_entries=lua_entries, table=table, host_calls=host_calls,
                        sweep=sweep, load=load, micro=micro, minutes=(time.time() - started) / 60)
    print()
    print(text)


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


if __name__ == "__main__":
    main()
