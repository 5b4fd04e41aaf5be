#!/usr/bin/env python3
"""api-warden soak test (`make soak`).

One Envoy (--concurrency 2) with api-warden in front of a direct_response upstream: six APIs
(username header, Bearer JWT + token, API key header, API key query parameter, session cookie, and
the client IP from X-Forwarded-For everywhere), a config deny and allow list, the admin API on a
separate internal listener sharing the lists, the attack list polled every 2 s from a local feed
that changes every 5 s, and export to a local collector that flaps (up 10 s, then down 5 s:
alternately answering 503 and dropping the connection).

A paced client (several threads with keep-alive connections, a fixed total rate) sends a mix of
requests: identities on no list (must pass), on the config deny list (must be blocked), allowed
by the allow list despite a deny entry (must pass), on the admin-managed and feed-managed deny
lists (either outcome: those lists change while the soak runs), and paths of no API (must pass).
Meanwhile deny entries are added and deleted through the admin API every 2 s.

At the end: requests and responses by status, errors caused by the filter (5xx, connection
errors, a block of an identity on no deny list, a 403 whose access-log reason is not a deny list,
a missed block of a config-denied identity: all must be 0), Envoy RSS over the run, and records
exported vs dropped (the collector's count and api-warden's counters). Writes bench/soak.md and
exits non-zero when the filter caused errors. Standard library only.
"""

import argparse
import collections
import datetime
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import sys
import threading
import time

import common
from common import ENVOY, ROOT, TYPES, WASM, Server, envoy_version, free_port, rss_kib

OUT = os.path.join(ROOT, "bench/out/soak")
ADMIN_KEY = "soak-admin-key-0123456789abcdef"
FEED_FILLER = 5000  # feed entries per type that no request uses (a realistic feed size)


def jwt(username):
    return common.jwt({"sub": username, "username": username, "client_id": "app-1", "exp": 4100000000})


def now():
    return time.monotonic()


class Backends:
    """The attack-list feed (GET) and the flapping analytics collector (POST) on one port."""

    def __init__(self, flap_up_s, flap_down_s):
        self.lock = threading.Lock()
        self.feed = b"{}"
        self.feed_gets = 0
        self.accepted = collections.Counter()  # request id -> times accepted
        self.posts = collections.Counter()  # "accepted" / "503" / "dropped"
        self.flap = (flap_up_s, flap_down_s)
        self.t0 = now()
        self.force_up = False
        self.server = Server(self.handle)
        self.port = self.server.port

    def handle(self, method, path, data):
        if method == "GET":
            with self.lock:
                self.feed_gets += 1
                return 200, self.feed
        state = self.collector_state()
        if state in ("dropped", "503"):
            with self.lock:
                self.posts[state] += 1
            return None if state == "dropped" else (503, b"")
        try:
            records = json.loads(data)
        except ValueError:
            records = None
        if not isinstance(records, list):
            return 400, b""
        with self.lock:
            self.posts["accepted"] += 1
            for r in records:
                rid = (r.get("attributes") or {}).get("HttpRequest.CorrelationId") or "?"
                self.accepted[rid] += 1
        return 200, b""

    def collector_state(self):
        if self.force_up:
            return "up"
        up, down = self.flap
        t = (now() - self.t0) % (up + down)
        if t < up:
            return "up"
        cycle = int((now() - self.t0) // (up + down))
        return "503" if cycle % 2 == 0 else "dropped"

    def set_feed(self, doc):
        body = json.dumps(doc, separators=(",", ":")).encode()
        with self.lock:
            self.feed = body

    def stop(self):
        self.server.stop()


def plugin_config(backends_port):
    jwt_all = {"location": "h:authorization:bearer", "username": "username", "clientid": "client_id"}
    apis = [
        {"name": "users", "api_metadata": {"url": "/users", "hostname": "*", "username_header": "x-user",
                                           "enable_blocking": True}},
        {"name": "orders", "api_metadata": {"url": "/orders", "hostname": "*", "oauth2_access_token": True,
                                            "enable_blocking": True, "jwt": jwt_all}},
        {"name": "keys", "api_metadata": {"url": "/keys", "hostname": "*", "apikey_header": "x-api-key",
                                          "enable_blocking": True}},
        {"name": "qs", "api_metadata": {"url": "/qs", "hostname": "*", "apikey_qs": "key",
                                        "enable_blocking": True}},
        {"name": "web", "api_metadata": {"url": "/web", "hostname": "*", "cookie": "session",
                                         "enable_blocking": True}},
        {"name": "monitor", "api_metadata": {"url": "/monitor", "hostname": "*", "username_header": "x-user",
                                             "enable_blocking": False}},
    ]
    return {
        "ase": {"enable_firewall": True, "enable_ase_detected_attack": True, "enable_xff": True},
        "apis": apis,
        "deny_list": {"username": ["cfg-bad-user"], "api_key": ["cfg-bad-key"], "ip": ["203.0.113.1"],
                      "cookie": ["cfg-bad-cookie"]},
        "allow_list": {"ip": ["198.51.100.250"]},
        "attack_list": {"cluster": "backends", "path": "/v1/attack_list", "interval_s": 2, "timeout_ms": 1500},
        "analytics": {"cluster": "backends", "path": "/v1/records", "batch_size": 100,
                      "flush_interval_ms": 1000, "max_buffered": 10000, "timeout_ms": 2000},
    }


def bootstrap(port, admin_port, envoy_admin, backends_port, access_log):
    """The public listener (api-warden, FAIL_CLOSED, the soak's access log) and the admin API
    listener (api-warden with only the admin API, sharing the lists), the backends cluster."""
    log_format = ("%REQ(x-request-id)% %RESPONSE_CODE% %RESPONSE_FLAGS% "
                  "%FILTER_STATE(wasm.api_warden.decision:PLAIN)% %FILTER_STATE(wasm.api_warden.reason:PLAIN)%\\n")

    def filters(name, config):
        return common.wasm_filter(json.dumps(config), name=name, failure_policy="FAIL_CLOSED")

    public = common.listener("public", port, common.direct_response("ok"),
                             http_filters=filters("api_warden", plugin_config(backends_port)),
                             access_log=common.access_log(access_log, log_format))
    admin = common.listener("api_warden_admin", admin_port, common.direct_response("ok"),
                            http_filters=filters("api_warden_admin", {"admin": {"path": "/_api_warden", "key": ADMIN_KEY}}))
    return common.bootstrap(envoy_admin, public + admin, common.cluster("backends", backends_port))


def wasm_stats(admin):
    return common.stats(admin, "wasmcustom.api_warden.")


class Envoy:
    def __init__(self, backends):
        if os.path.isdir(OUT):
            shutil.rmtree(OUT)
        self.port, self.admin_port, self.admin = free_port(), free_port(), free_port()
        self.access_log = os.path.join(OUT, "access.log")
        self.envoy = common.Envoy(
            OUT, bootstrap(self.port, self.admin_port, self.admin, backends.port, self.access_log), self.admin,
            ["--concurrency", "2", "--log-level", "warn", "--component-log-level", "wasm:warn",
             "--file-flush-interval-msec", "500"])
        self.proc, self.log_path = self.envoy.proc, self.envoy.log_path

    def stop(self):
        self.envoy.stop()


class Lists:
    """The admin-managed and feed-managed deny entries, changed while the soak runs. Their values
    come from pools the client also draws from, so requests meet entries that are present, just
    added, just removed or never added."""

    POOL = 40

    def __init__(self, envoy, backends):
        self.envoy, self.backends = envoy, backends
        self.lock = threading.Lock()
        self.admin_ops = collections.Counter()
        self.admin_errors = []
        self.feed_changes = 0
        self.admin_live = collections.deque()
        self.admin_recent = collections.deque(maxlen=6)  # live entries and the last deleted ones
        self.step = 0
        self.feed_window = 0

    @staticmethod
    def value(kind, t, k):
        if t == "ip":
            return "203.0.%d.%d" % (114 if kind == "adm" else 115, k % 250 + 1)
        return "%s-%s-%d" % (kind, t, k)

    def admin_call(self, method, query):
        conn = http.client.HTTPConnection("127.0.0.1", self.envoy.admin_port, timeout=5)
        try:
            conn.request(method, "/_api_warden/deny_list?" + query, headers={"x-api-warden-admin-key": ADMIN_KEY})
            r = conn.getresponse()
            r.read()
            return r.status
        finally:
            conn.close()

    def admin_step(self):
        """Add one entry (cycling through the types); delete the one added 4 steps ago."""
        t = TYPES[self.step % len(TYPES)]
        k = self.step % self.POOL
        v = self.value("adm", t, k)
        ttl = "&ttl_s=30" if self.step % 7 == 3 else ""
        try:
            s = self.admin_call("POST", "type=%s&value=%s%s" % (t, v, ttl))
            self.admin_ops["add %d" % s] += 1
            if s not in (200, 201):
                self.admin_errors.append("POST %s %s -> %d" % (t, v, s))
            self.admin_live.append((t, v))
            with self.lock:
                self.admin_recent.append((t, v))
            if len(self.admin_live) > 4:
                dt, dv = self.admin_live.popleft()
                s = self.admin_call("DELETE", "type=%s&value=%s" % (dt, dv))
                self.admin_ops["delete %d" % s] += 1
                # 404: a TTL entry that expired first.
                if s not in (200, 204, 404):
                    self.admin_errors.append("DELETE %s %s -> %d" % (dt, dv, s))
        except OSError as e:
            self.admin_ops["error"] += 1
            self.admin_errors.append("admin %s: %s" % (t, e))
        self.step += 1

    def pick(self, rng, cat):
        """A (type, value) of the admin or feed pool, mostly near what is live now."""
        with self.lock:
            recent = list(self.admin_recent)
            w = self.feed_window
        if cat == "admin_denied":
            if recent and rng.random() < 0.8:
                return rng.choice(recent)
            t = rng.choice(TYPES)
            return t, self.value("adm", t, rng.randrange(self.POOL))
        t = rng.choice(TYPES)
        return t, self.value("feed", t, rng.randrange(w - 6, w + 12) % self.POOL)

    def feed_step(self):
        """Slide the feed's window of live entries by 3 over the pool; keep the filler."""
        w = self.feed_window
        doc = {}
        for t in TYPES:
            live = [self.value("feed", t, k % self.POOL) for k in range(w, w + 12)]
            if t == "ip":
                filler = ["10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255) for i in range(FEED_FILLER)]
            else:
                filler = ["filler-%s-%d" % (t, i) for i in range(FEED_FILLER)]
            doc[t] = live + filler
        self.backends.set_feed(doc)
        with self.lock:
            self.feed_window += 3
        self.feed_changes += 1


# Request categories: what the outcome must be.
MUST_PASS = ("clean", "allowlisted", "unmatched", "monitor")
MUST_BLOCK = ("config_denied",)
EITHER = ("admin_denied", "feed_denied")


def build_request(rng, n, lists):
    """One request: (category, method, path, headers)."""
    rid = "soak-%d" % n
    r = rng.random()
    if r < 0.62:
        cat = "clean"
    elif r < 0.72:
        cat = "config_denied"
    elif r < 0.80:
        cat = "admin_denied"
    elif r < 0.88:
        cat = "feed_denied"
    elif r < 0.92:
        cat = "allowlisted"
    elif r < 0.96:
        cat = "monitor"
    else:
        cat = "unmatched"
    ip = "198.51.100.%d" % rng.randint(1, 200)
    who = "user-%d" % rng.randint(1, 5000)
    bad_type, bad_value = None, None
    if cat == "config_denied":
        bad_type = rng.choice(["username", "api_key", "ip", "cookie"])
        bad_value = {"username": "cfg-bad-user", "api_key": "cfg-bad-key", "ip": "203.0.113.1",
                     "cookie": "cfg-bad-cookie"}[bad_type]
    elif cat in ("admin_denied", "feed_denied"):
        bad_type, bad_value = lists.pick(rng, cat)
    elif cat in ("allowlisted", "monitor"):
        bad_type, bad_value = "username", "cfg-bad-user"
    if bad_type == "ip":
        ip = bad_value
    if cat == "allowlisted":
        ip = "198.51.100.250"
    headers = {"x-request-id": rid, "x-forwarded-for": ip, "user-agent": "soak"}
    method = "GET" if rng.random() < 0.85 else "POST"
    if cat == "unmatched":
        return cat, method, "/nowhere/%d" % n, headers
    if cat == "monitor":
        headers["x-user"] = bad_value
        return cat, method, "/monitor/items", headers
    # An API that identifies the chosen type (the IP is identified everywhere).
    t = bad_type or rng.choice(["username", "token", "api_key", "cookie"])
    value = bad_value if bad_type and bad_type != "ip" else None
    if t == "ip":
        t = rng.choice(["username", "token", "api_key", "cookie"])
    if t == "username":
        if rng.random() < 0.5:
            headers["x-user"] = value or who
            path = "/users/%d" % n
        else:
            headers["authorization"] = "Bearer " + jwt(value or who)
            path = "/orders/%d" % n
    elif t == "token":
        headers["authorization"] = "Bearer " + (value or "tok-%s" % who)
        path = "/orders/%d" % n
    elif t == "api_key":
        if rng.random() < 0.5:
            headers["x-api-key"] = value or "key-%s" % who
            path = "/keys/%d" % n
        else:
            path = "/qs/%d?key=%s&x=1" % (n, value or "key-%s" % who)
    else:
        headers["cookie"] = "theme=dark; session=%s" % (value or "sess-%s" % who)
        path = "/web/%d" % n
    return cat, method, path, headers


class Client:
    """`threads` paced workers, each with its own keep-alive connection, `rate` requests/s in all."""

    def __init__(self, port, rate, threads, seconds, lists):
        self.port, self.rate, self.threads, self.seconds = port, rate, threads, seconds
        self.lists = lists
        self.lock = threading.Lock()
        self.results = {}  # request id -> (category, status, body or error)
        self.sent = 0
        self.late = 0
        self.drain_s = 0.0
        self.backlog = 0
        self.stop = threading.Event()

    def run(self):
        ws = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(self.threads)]
        for w in ws:
            w.start()
        return ws

    def worker(self, i):
        rng = random.Random(1000 + i)
        interval = self.threads / self.rate
        conn = None
        t_next = now() + i * interval / self.threads
        end = now() + self.seconds
        n = i
        while not self.stop.is_set() and t_next < end:
            delay = t_next - now()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.5:
                with self.lock:
                    self.late += 1
            t_next += interval
            cat, method, path, headers = build_request(rng, n, self.lists)
            rid = headers["x-request-id"]
            if n % 50 == 0:
                headers["connection"] = "close"
            body = b'{"q": 1}' if method == "POST" else None
            n += self.threads
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request(method, path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                res = (cat, r.status, data[:64].decode("utf-8", "replace"))
                if r.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                res = (cat, 0, "%s: %s" % (type(e).__name__, e))
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.results[rid] = res
                self.sent += 1
        if conn is not None:
            conn.close()


def parse_access_log(path):
    out = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5:
                    out[parts[0]] = (parts[1], parts[2], parts[3], parts[4])
    except OSError:
        pass
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", "600")))
    ap.add_argument("--rate", type=int, default=300, help="requests per second, all client threads together")
    ap.add_argument("--threads", type=int, default=6)
    ap.add_argument("--admin-every", type=float, default=2.0)
    ap.add_argument("--feed-every", type=float, default=5.0)
    ap.add_argument("--flap", default="10,5", help="collector up,down seconds")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/soak.md"))
    args = ap.parse_args()
    for p in (ENVOY, WASM):
        if not os.path.exists(p):
            sys.exit("missing %s (run through `make soak`)" % p)

    # SIGTERM / SIGHUP behave like Ctrl-C, so `finally` stops Envoy.
    def interrupted(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    up, down = (float(x) for x in args.flap.split(","))
    backends = Backends(up, down)
    envoy = None
    try:
        envoy = Envoy(backends)
        lists = Lists(envoy, backends)
        lists.feed_step()
        # Wait for the first feed to load.
        deadline = now() + 30
        while wasm_stats(envoy.admin).get("attack_list.polls_ok", 0) < 1:
            if now() > deadline:
                raise RuntimeError("attack list never loaded; see %s" % envoy.log_path)
            time.sleep(0.2)
        print("envoy pid %d on :%d (admin API :%d, envoy admin :%d); soak %d s at %d req/s"
              % (envoy.proc.pid, envoy.port, envoy.admin_port, envoy.admin, args.seconds, args.rate), flush=True)
        backends.t0 = now()
        rss = [(0.0, rss_kib(envoy.proc.pid))]
        client = Client(envoy.port, args.rate, args.threads, args.seconds, lists)
        t0 = now()
        workers = client.run()
        next_admin, next_feed, next_rss, next_print = t0 + args.admin_every, t0 + args.feed_every, t0 + 5, t0 + 10
        while any(w.is_alive() for w in workers):
            t = now()
            if t >= next_admin:
                lists.admin_step()
                next_admin += args.admin_every
            if t >= next_feed:
                lists.feed_step()
                next_feed += args.feed_every
            if t >= next_rss:
                rss.append((t - t0, rss_kib(envoy.proc.pid)))
                next_rss += 5
            if t >= next_print:
                with client.lock:
                    sent = client.sent
                print("  %4.0f s: %d requests, RSS %.1f MiB, collector %s"
                      % (t - t0, sent, rss[-1][1] / 1024, backends.collector_state()), flush=True)
                next_print += 10
            time.sleep(0.05)
        elapsed = now() - t0
        rss.append((elapsed, rss_kib(envoy.proc.pid)))
        if envoy.proc.poll() is not None:
            raise RuntimeError("envoy exited during the soak; see %s" % envoy.log_path)

        # Let the exporters drain with the collector up, as long as they make progress.
        backends.force_up = True
        expected = len(client.results)
        t_drain = now()
        st = wasm_stats(envoy.admin)
        client.backlog = st.get("requests.total", 0) - st.get("export.records_sent", 0) - st.get(
            "export.records_dropped", 0)
        last, last_t, next_print = -1, now(), now() + 10
        while now() - t_drain < 900:
            st = wasm_stats(envoy.admin)
            done = st.get("export.records_sent", 0) + st.get("export.records_dropped", 0)
            if done >= st.get("requests.total", 0):
                break
            if done != last:
                last, last_t = done, now()
            elif now() - last_t > 20:
                break
            if now() >= next_print:
                print("  draining the export: %d of %d records" % (done, st.get("requests.total", 0)), flush=True)
                next_print += 10
            time.sleep(0.5)
        client.drain_s = now() - t_drain
        st = wasm_stats(envoy.admin)
        envoy.stop()  # flushes the access log
        report = analyse(args, client, lists, backends, envoy, st, rss, elapsed, expected)
    finally:
        if envoy is not None:
            envoy.stop()
        backends.stop()
    print(report["text"])
    with open(args.out, "w") as f:
        f.write(report["text"])
    print("wrote %s" % os.path.relpath(args.out, ROOT))
    if report["errors"]:
        sys.exit("soak: %d errors caused by the filter (see %s)" % (report["errors"], os.path.relpath(args.out, ROOT)))


def analyse(args, client, lists, backends, envoy, st, rss, elapsed, expected):
    results = client.results
    log = parse_access_log(envoy.access_log)
    by_status = collections.Counter(s for _, s, _ in results.values())
    by_cat = collections.defaultdict(collections.Counter)
    problems = collections.Counter()
    examples = collections.defaultdict(list)

    def problem(kind, rid, detail):
        problems[kind] += 1
        if len(examples[kind]) < 5:
            examples[kind].append("%s %s" % (rid, detail))

    for rid, (cat, status, body) in results.items():
        by_cat[cat][status] += 1
        if status == 0:
            problem("connection errors", rid, body)
        elif status >= 500:
            problem("5xx responses", rid, "%d %s" % (status, body))
        elif status == 403:
            if cat in MUST_PASS:
                problem("403 for an identity on no deny list", rid, cat)
            entry = log.get(rid)
            if entry is None or entry[2] != "block" or not entry[3].startswith("deny_list:"):
                problem("403 not explained by a deny list in the access log", rid, str(entry))
        elif status != 200:
            problem("unexpected status", rid, "%d %s" % (status, body))
        if cat in MUST_BLOCK and status != 403:
            problem("config-denied identity not blocked", rid, "%d" % status)
    errors = sum(problems.values())
    log_text = open(envoy.log_path, errors="replace").read()
    crit = [l for l in log_text.splitlines() if re.search(r"\]\[(critical|error)\]|panic|trap", l)]
    if crit:
        problems["critical/error lines in the Envoy log"] = len(crit)
        examples["critical/error lines in the Envoy log"] = crit[:5]
        errors += len(crit)

    accepted = backends.accepted
    unique = sum(1 for rid in results if accepted.get(rid))
    lost = len(results) - unique - st.get("export.records_dropped", 0)
    if lost > 0:
        problems["records neither exported nor counted as dropped"] = lost
        errors += lost
    dupes = sum(c - 1 for rid, c in accepted.items() if c > 1)
    sent_stat, dropped_stat = st.get("export.records_sent", 0), st.get("export.records_dropped", 0)
    rss_start, rss_end = rss[0][1] / 1024, rss[-1][1] / 1024
    # Growth after warm-up: the first quarter of the run vs the end.
    quarter = [kib for t, kib in rss if t >= elapsed / 4] or [rss[-1][1]]
    rss_q = quarter[0] / 1024
    rss_max = max(k for _, k in rss) / 1024

    def mib(x):
        return "%.1f" % x

    lines = [
        "# api-warden soak results", "",
        "- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- machine: %s, %d cores; envoy: %s" % (platform.machine(), os.cpu_count(), envoy_version()),
        "- run: %.0f s at a target of %d req/s (%d client threads, keep-alive, 1 in 50 requests closes), "
        "Envoy --concurrency 2, failure_policy FAIL_CLOSED" % (elapsed, args.rate, args.threads),
        "- churn: an admin API deny entry added (and the one 4 steps older deleted) every %.0f s; the feed "
        "(%d live + %d filler entries per type) changed every %.0f s and polled every 2 s; the collector "
        "up %s s / down %s s (alternately 503 and connection dropped)"
        % (args.admin_every, 12, FEED_FILLER, args.feed_every, *args.flap.split(",")),
        "",
        "| | |", "|---|---:|",
        "| requests sent | %d (%.0f req/s achieved; %d sent more than 0.5 s late) |" % (
            len(results), len(results) / max(elapsed, 1e-9), client.late),
        "| responses by status | %s |" % ", ".join("%s: %d" % (s if s else "conn error", c)
                                                   for s, c in sorted(by_status.items())),
        "| **errors caused by the filter** | **%d** |" % errors,
        "| api-warden requests.total / blocked | %d / %d |" % (st.get("requests.total", 0), st.get("requests.blocked", 0)),
        "| Envoy RSS start → end (max) | %s → %s MiB (max %s); after the first quarter %s MiB, growth since %+.1f MiB |"
        % (mib(rss_start), mib(rss_end), mib(rss_max), mib(rss_q), rss_end - rss_q),
        "| records: collector accepted (unique request ids) | %d of %d requests (%d duplicates) |"
        % (unique, expected, dupes),
        "| export backlog when the traffic stopped | %d records (%.1f s of traffic); drained in %.1f s |"
        % (client.backlog, client.backlog / max(len(results) / max(elapsed, 1e-9), 1e-9), client.drain_s),
        "| records: api-warden export.records_sent / records_dropped / batches_retried | %d / %d / %d |"
        % (sent_stat, dropped_stat, st.get("export.batches_retried", 0)),
        "| collector POSTs accepted / answered 503 / dropped | %d / %d / %d |"
        % (backends.posts["accepted"], backends.posts["503"], backends.posts["dropped"]),
        "| attack-list polls ok / failed (feed GETs served); feed changes | %d / %d (%d); %d |"
        % (st.get("attack_list.polls_ok", 0), st.get("attack_list.polls_failed", 0), backends.feed_gets,
           lists.feed_changes),
        "| admin API calls | %s |" % ", ".join("%s: %d" % kv for kv in sorted(lists.admin_ops.items())),
        "",
        "Outcomes by request category (`clean`, `allowlisted`, `monitor`, `unmatched` must pass; "
        "`config_denied` must be blocked; `admin_denied` / `feed_denied` meet entries that come and go):", "",
        "| category | 200 | 403 | other |", "|---|---:|---:|---:|",
    ]
    for cat in MUST_PASS + MUST_BLOCK + EITHER:
        c = by_cat.get(cat, collections.Counter())
        lines.append("| %s | %d | %d | %d |" % (cat, c[200], c[403], sum(v for k, v in c.items() if k not in (200, 403))))
    rate = len(results) / max(elapsed, 1e-9)
    down = float(args.flap.split(",")[1])
    kept_up = client.backlog <= rate * (down + 3)
    lines.append("")
    lines.append("Export kept up with the traffic: **%s** (backlog when the traffic stopped: %d records; "
                 "a collector outage of %.0f s alone leaves about %.0f)." % (
                     "yes" if kept_up else "no", client.backlog, down, rate * down))
    lines.append("")
    if problems:
        lines.append("Errors:")
        lines.append("")
        for kind, n in problems.items():
            eg = " (e.g. %s)" % "; ".join(examples[kind]) if examples[kind] else ""
            lines.append("- %s: %d%s" % (kind, n, eg))
    else:
        lines.append("No errors: no 5xx, no connection error, every 403 was a deny-list block of a denied "
                     "identity, every config-denied identity was blocked.")
    if lists.admin_errors:
        lines.append("")
        lines.append("Admin API anomalies: %s" % "; ".join(lists.admin_errors[:5]))
    lines += ["", "Reproduce: `make soak SOAK_SECONDS=%d` (options: `python3 bench/soak.py --help`)." % args.seconds]
    return {"text": "\n".join(lines) + "\n", "errors": errors}


if __name__ == "__main__":
    main()
