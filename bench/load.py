#!/usr/bin/env python3
"""Deny-list memory and feed load time under traffic (issue #18).

One Envoy (--concurrency 1) runs api-warden with an attack-list feed served by this script. The feed
is empty at first; while requests flow (wrk, plus a paced probe and a canary in their own processes),
the feed switches to --entries deny entries in total, spread evenly over the five identifier types
(5,000,000 = 1,000,000 per type, as the old benchmark counted), paginated like bench/run.py's feed
(200,000 entries per type per page, each page about 15 MB).

Figures per run:
  load_s              from the first page's request reaching the feed server to the first request
                      blocked by an entry of the new feed (a canary carrying the API key of the last
                      page's last entry, sent every 5 ms)
  bytes_per_entry     (RSS once loaded - RSS of the same Envoy with the empty feed, under the same
                      traffic) / total entries: Envoy's shared data, the VMs' memory, everything
  p99_us_during_load  p99 latency of the probe (one keep-alive connection, one request due every 5 ms,
                      latency counted from when it was due)
                      over the requests sent during the load
  stall_ms_during_load the longest time without a probe answer during the load: the longest the worker
                      served nothing (a feed page parsed or written in one callback), which the p99 above
                      mixes with the backlog that stalls leave (the probe keeps its schedule and competes
                      with wrk's connections for what the worker serves between stalls)
  rps_during_load     requests Envoy served per second during the load (admin counter)
  writer              which VM wrote the feed: "main" (the main thread's, which serves no request) or
                      "worker" (the one that serves the requests; only then can the load delay them).
                      Any VM may win the poll election, so report the two kinds apart
  + the same figures for a second, identical load (`reload_*`: the steady state of periodic polls,
    when the previous generation's slot has been written before) and the RSS peak

Several wasm files (--wasm A --baseline B) run interleaved, A B A B ..., medians over --rounds.
Writes --json OUT: the figures of --wasm at top level (medians), `baseline` with those of
--baseline, `runs` with every run. Standard library only.
"""

import argparse
import http.client
import http.server
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

from common import (ENVOY, ROOT, WASM, Envoy, bootstrap, cluster, direct_response, free_port, jwt, listener,
                    rss_kib, stats, wasm_filter)

OUT = os.path.join(ROOT, "bench/out/load")
PATH = "/api3/items?id=1"
JWT = jwt({"sub": "alice", "username": "alice", "client_id": "app-1", "iss": "https://idp.example",
           "aud": "shop", "scope": "read write", "iat": 1700000000, "exp": 4100000000})
HEADERS = {"Authorization": "Bearer " + JWT, "x-api-key": "key-live-123",
           "Cookie": "session=sess-abc; theme=dark", "User-Agent": "load"}
GENS = {
    "ip": lambda i: "10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255),
    "token": lambda i: "tok-%d" % i,
    "api_key": lambda i: "key-%d" % i,
    "cookie": lambda i: "sess-%d" % i,
    "username": lambda i: "user-%d" % i,
}


def feed_pages(per_type, per_page):
    """The feed as JSON pages; none of its entries matches HEADERS."""
    pages = []
    starts = list(range(0, per_type, per_page)) or [0]
    for p, start in enumerate(starts):
        doc = {t: [g(i) for i in range(start, min(per_type, start + per_page))] for t, g in GENS.items()}
        if p + 1 < len(starts):
            doc["next"] = "/attacks?page=%d" % (p + 1)
        pages.append(json.dumps(doc, separators=(",", ":")).encode())
    return pages


class FeedServer:
    """The attack-list feed. Mode "empty" serves `{}` with an ETag (so polls are 304s); load(i)
    serves the pages, with `canary-<i>` added to the last page's API keys, and notes when the first
    page was requested (and how often: a retried load is not a load time); hold() then answers 503
    (the poller keeps its list)."""

    def __init__(self, pages):
        self.base, self.pages, self.mode, self.first_request, self.starts = pages, pages, "empty", None, 0
        self.lock = threading.Lock()
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                status, body, extra = srv.answer(self.path, self.headers.get("if-none-match"))
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    for k, v in extra:
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, path, inm):
        with self.lock:
            if self.mode == "empty":
                if inm == '"empty"':
                    return 304, b"", [("etag", '"empty"')]
                return 200, b"{}", [("etag", '"empty"')]
            if self.mode == "hold":
                return 503, b"", []
            page = int(path.rsplit("page=", 1)[1]) if "page=" in path else 0
            self.log.append((time.time(), page))
            if page == 0:
                if self.starts and self.served >= len(self.pages):
                    return 503, b"", []  # the next interval's poll, after this load's last page
                # A first attempt, or a retry after a failed page (the load is timed from it).
                self.starts += 1
                self.first_request, self.served = time.time(), 0
            self.served += 1
            return 200, self.pages[min(page, len(self.pages) - 1)], []

    def load(self, i):
        last = self.base[-1].replace(b'"api_key":[', b'"api_key":["canary-%d",' % i, 1)
        with self.lock:
            self.pages = self.base[:-1] + [last]
            self.mode, self.first_request, self.starts, self.log, self.served = "full", None, 0, [], 0

    def hold(self):
        with self.lock:
            self.mode = "hold"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def plugin_config(interval_s):
    """bench/run.py's configuration C without the export: 10 APIs, Bearer JWT + API key + cookie."""
    apis = [{"name": "api%d" % i, "api_metadata": {
        "url": "/api%d" % i, "hostname": "*", "cookie": "session", "oauth2_access_token": True,
        "apikey_header": "x-api-key", "enable_blocking": True,
        "jwt": {"location": "h:authorization:bearer", "username": "username", "clientid": "client_id"}}}
        for i in range(10)]
    return json.dumps({
        "ase": {"enable_firewall": True, "enable_ase_detected_attack": True},
        "apis": apis,
        "deny_list": {"username": ["mallory"]},
        "allow_list": {"ip": ["192.0.2.10"]},
        "attack_list": {"cluster": "abs", "path": "/attacks", "interval_s": interval_s,
                        "timeout_ms": interval_s * 1000 - 100},
    })


def probe(port, headers_list, interval, stop, out, first403):
    """Paced requests on one keep-alive connection, cycling through `headers_list`: (sent at,
    latency s, status, index) per request; first403[i]: when headers i were first answered 403."""
    rows = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    nxt, n = time.time(), 0
    while not stop.is_set():
        i = n % len(headers_list)
        n += 1
        due = nxt
        try:
            conn.request("GET", PATH, headers=headers_list[i])
            r = conn.getresponse()
            r.read()
            status = r.status
        except (OSError, http.client.HTTPException):
            status = 0
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        t1 = time.time()
        rows.append((due, t1 - due, status, i))
        if status == 403 and first403[i] == 0:
            first403[i] = t1
        # The schedule is kept after a stall (the requests it held back leave at once, and their
        # latency counts from when they were due), so a stall counts for every request it delays;
        # a probe more than 2 s behind (it cannot keep up at all) starts a new schedule.
        nxt += interval
        if time.time() - nxt > 2:
            nxt = time.time()
        time.sleep(max(0.0, nxt - time.time()))
    out.send(rows)


class Traffic:
    """wrk (8 connections), the probe (every 5 ms) and the canaries (every 5 ms), started together."""

    def __init__(self, port, loads):
        cmd = ["wrk", "-t1", "-c8", "-d600s", "--latency"]
        for k, v in HEADERS.items():
            cmd += ["-H", "%s: %s" % (k, v)]
        self.wrk = subprocess.Popen(cmd + ["http://127.0.0.1:%d%s" % (port, PATH)],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.stop = multiprocessing.Event()
        self.first403 = multiprocessing.Array("d", loads)
        self.procs = []
        canaries = [dict(HEADERS, **{"x-api-key": "canary-%d" % i}) for i in range(loads)]
        for headers, interval, first in (([HEADERS], 0.005, multiprocessing.Array("d", 1)),
                                         (canaries, 0.005 / loads, self.first403)):
            rx, tx = multiprocessing.Pipe(duplex=False)
            p = multiprocessing.Process(target=probe, args=(port, headers, interval, self.stop, tx, first),
                                        daemon=True)
            p.start()
            self.procs.append((p, rx))

    def finish(self):
        self.stop.set()
        rows = [rx.recv() for _, rx in self.procs]
        for p, _ in self.procs:
            p.join(10)
        self.wrk.send_signal(2)  # SIGINT: wrk prints its summary
        out = self.wrk.communicate()[0]
        return rows[0], rows[1], out


class Sampler(threading.Thread):
    """Envoy's RSS and served-request counter every 50 ms."""

    def __init__(self, envoy):
        super().__init__(daemon=True)
        self.envoy, self.rows, self.done = envoy, [], threading.Event()

    def run(self):
        while not self.done.is_set():
            t = time.time()
            rq = stats(self.envoy.admin, "http.main.").get("downstream_rq_total", 0)
            self.rows.append((t, rss_kib(self.envoy.proc.pid), rq))
            self.done.wait(0.05)

    def at(self, t):
        """The sample nearest to `t`."""
        return min(self.rows, key=lambda r: abs(r[0] - t))

    def rss(self, t, span=1.0):
        """Median RSS (KiB) over the `span` seconds before `t`."""
        return statistics.median(r[1] for r in self.rows if t - span <= r[0] <= t)


def writer_threads(log_path):
    """Per load of the full feed (polls_ok of the empty feed first), "main" or "worker": the
    thread that logged "attack list loaded", told apart by the thread of the first "configuration
    loaded" line (the main thread's VM is configured before the workers' VMs)."""
    main, out = None, []
    with open(log_path, errors="replace") as f:
        for line in f:
            m = re.match(r"\[[^]]*\]\[(\d+)\]", line)
            if not m:
                continue
            if main is None and "configuration loaded on root" in line:
                main = m.group(1)
            elif "attack list loaded" in line and " 0 entries" not in line:
                out.append("main" if m.group(1) == main else "worker")
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def run(wasm, pages, per_type, tag, loads, interval_s):
    """One Envoy on `wasm`: the empty feed, then `loads` loads of the full feed under traffic."""
    port, admin = free_port(), free_port()
    feed = FeedServer(pages)
    d = os.path.join(OUT, tag)
    filters = wasm_filter(plugin_config(interval_s), code=wasm)
    yaml = bootstrap(admin, listener("main", port, direct_response("ok"), http_filters=filters),
                     cluster("abs", feed.port))
    envoy = Envoy(d, yaml, admin, ["--concurrency", "1", "--log-level", "warn",
                                   "--component-log-level", "wasm:info"])
    traffic, sampler = None, None
    try:
        t0 = time.time()
        while stats(admin, "wasmcustom.api_warden.").get("attack_list.polls_ok", 0) < 1:
            if time.time() > t0 + 30:
                raise RuntimeError("empty feed not loaded; see %s" % envoy.log_path)
            time.sleep(0.1)
        sampler = Sampler(envoy)
        sampler.start()
        traffic = Traffic(port, loads)
        time.sleep(3)  # warm: connections, the VM's heap, its caches
        phases = []
        for i in range(loads):
            rss0 = sampler.rss(time.time())
            feed.load(i)
            deadline = time.time() + 300
            while traffic.first403[i] == 0:
                if time.time() > deadline or envoy.proc.poll() is not None:
                    raise RuntimeError("feed %d not loaded; see %s" % (i, envoy.log_path))
                time.sleep(0.02)
            feed.hold()
            pages_at = [round(t - feed.first_request, 3) for t, p in feed.log]
            attempts = feed.starts
            time.sleep(3)  # traffic after the load
            phases.append({"start": feed.first_request, "end": traffic.first403[i], "rss0_kib": rss0,
                           "pages_at": pages_at, "attempts": attempts,
                           "after": time.time(), "rss1_kib": sampler.rss(time.time())})
        probe_rows, _, wrk_out = traffic.finish()
        traffic = None
        sampler.done.set()
        sampler.join()
        out = {"tag": tag, "wasm": wasm}
        writers = writer_threads(envoy.log_path)
        for i, ph in enumerate(phases):
            during = [lat for t, lat, s, _ in probe_rows if ph["start"] <= t <= ph["end"]]
            answered = sorted(t + lat for t, lat, s, _ in probe_rows if ph["start"] <= t + lat <= ph["end"])
            gaps = [b - a for a, b in zip([ph["start"]] + answered, answered + [ph["end"]])]
            s0, s1 = sampler.at(ph["start"]), sampler.at(ph["end"])
            pre = "" if i == 0 else "reload_"
            out.update({
                pre + "load_s": ph["end"] - ph["start"],
                pre + "bytes_per_entry": (ph["rss1_kib"] - ph["rss0_kib"]) * 1024 / (5 * per_type),
                pre + "p99_us_during_load": pct(during, 0.99) * 1e6,
                pre + "max_us_during_load": max(during) * 1e6 if during else float("nan"),
                pre + "stall_ms_during_load": max(gaps) * 1e3,
                pre + "rps_during_load": (s1[2] - s0[2]) / max(s1[0] - s0[0], 1e-9),
                pre + "rss_peak_mib": max(r[1] for r in sampler.rows if ph["start"] <= r[0] <= ph["after"]) / 1024,
                pre + "rss_mib": ph["rss1_kib"] / 1024,
                pre + "pages_at_s": ph["pages_at"],
                pre + "attempts": ph["attempts"],
                pre + "writer": writers[i] if i < len(writers) else "?",
            })
        idle = [lat for t, lat, s, _ in probe_rows if t < phases[0]["start"] - 0.1]
        out["p99_us_idle"] = pct(idle, 0.99) * 1e6
        out["rss_empty_mib"] = phases[0]["rss0_kib"] / 1024
        if loads > 1:
            out["bytes_per_entry_after_reload"] = (phases[-1]["rss1_kib"] - phases[0]["rss0_kib"]) * 1024 / (5 * per_type)
        m = re.search(r"Requests/sec:\s+([\d.]+)", wrk_out)
        out["wrk_rps"] = float(m.group(1)) if m else float("nan")
        bad = [s for _, _, s, _ in probe_rows if s != 200]
        if bad:
            raise RuntimeError("%d probe requests were not answered 200 (%s)" % (len(bad), sorted(set(bad))))
    except BaseException:
        print("run %s failed; Envoy's log: %s" % (tag, envoy.log_path), file=sys.stderr)
        raise
    else:
        shutil.rmtree(d, ignore_errors=True)
        return out
    finally:
        if traffic:
            traffic.finish()
        if sampler:
            sampler.done.set()
        envoy.stop()
        feed.stop()


def summary(rows):
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
    return {k: statistics.median(r[k] for r in rows) for k in keys}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=5_000_000,
                    help="deny entries in total, spread evenly over the 5 types (default 5,000,000)")
    ap.add_argument("--per-page", type=int, default=200_000, help="entries per type per feed page")
    ap.add_argument("--wasm", default=WASM)
    ap.add_argument("--baseline", help="another api_warden.wasm, run interleaved with --wasm")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--reload", action="store_true", help="also measure a second load of the same feed")
    ap.add_argument("--interval", type=int, default=10,
                    help="attack_list.interval_s (the page timeout is 100 ms shorter; a poll that fails is "
                         "retried at the next interval and the load is timed from the retry)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    for p in [ENVOY, args.wasm] + ([args.baseline] if args.baseline else []):
        if not os.path.exists(p):
            sys.exit("missing %s (make build; ENVOY=...)" % p)
    per_type = max(1, args.entries // 5)
    print("building the feed: %d entries per type (x5 = %d), %d per type per page ..."
          % (per_type, 5 * per_type, args.per_page), flush=True)
    pages = feed_pages(per_type, args.per_page)
    print("%d pages, %.0f MB" % (len(pages), sum(map(len, pages)) / 1e6), flush=True)
    wasms = [("wasm", args.wasm)] + ([("baseline", args.baseline)] if args.baseline else [])
    runs = {name: [] for name, _ in wasms}
    for rnd in range(args.rounds):
        for name, w in wasms:
            r = run(w, pages, per_type, "%s%d" % (name, rnd), 2 if args.reload else 1, args.interval)
            runs[name].append(r)
            print("round %d %-8s load %.2f s  %5.1f B/entry  p99 during load %7.0f us (max %7.0f, longest "
                  "stall %4.0f ms)  %6.0f req/s  rss %4.0f MiB (peak %4.0f, empty %4.0f)  written by %s%s"
                  % (rnd + 1, name, r["load_s"], r["bytes_per_entry"], r["p99_us_during_load"],
                     r["max_us_during_load"], r["stall_ms_during_load"], r["rps_during_load"], r["rss_mib"],
                     r["rss_peak_mib"], r["rss_empty_mib"], r["writer"],
                     "  | reload %.2f s  %5.1f B/entry  p99 %7.0f us" % (
                         r["reload_load_s"], r["reload_bytes_per_entry"], r["reload_p99_us_during_load"])
                     if "reload_load_s" in r else ""), flush=True)
    out = {"entries_per_type": per_type, "entries_total": 5 * per_type, **summary(runs["wasm"]),
           "runs": runs["wasm"]}
    if args.baseline:
        out["baseline"] = {**summary(runs["baseline"]), "runs": runs["baseline"]}
    print()
    print("deny entries: %d per type x 5 = %d, through a feed of %d pages, %d rounds (medians)"
          % (per_type, 5 * per_type, len(pages), args.rounds))
    for name, _ in wasms:
        s = out if name == "wasm" else out["baseline"]
        print("  %-8s load %.2f s (budget < 2 s)  %.1f bytes/entry (budget <= 40)  p99 during load %.0f us  "
              "longest stall %.0f ms  %.0f req/s during load"
              % (name, s["load_s"], s["bytes_per_entry"], s["p99_us_during_load"], s["stall_ms_during_load"],
                 s["rps_during_load"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
