"""bench/results.md from one `make bench` run (bench/run.py): every configuration, the ratios, the
verdict of every budget of issue 18, the host calls per request by kind, the sweep, the feed load
(bench/load.py) and the native micro-benchmark. Standard library only.
"""

import datetime
import os
import platform

from common import envoy_version
from configs import BROWSER, BROWSER_JWT, NAMES, SIMPLE

HOST_CALL_KINDS = ["request_headers", "response_headers", "property", "set_filter_state", "shared_get",
                   "shared_set", "time", "metric", "dispatch", "buffer", "call_headers", "local_reply", "other"]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def verdict(ok):
    if ok is None:
        return "**not measured**"
    return "**met**" if ok else "**missed**"


def request_size(headers):
    return sum(len(k) + len(v) + 4 for k, v in headers.items())


def budgets(table, sweep, load):
    """(name, figures, ok) for every budget of issue 18."""
    cpu = {k: v["cpu_us_per_req"] for k, v in table.items()}
    out = []

    def ratio(num, den, limit, name, request="simple"):
        a, b = cpu.get((num, request)), cpu.get((den, request))
        if a is None or b is None:
            out.append((name, "not measured", None))
            return
        out.append((name, "%s/%s = %.2f (%.1f / %.1f µs)" % (num, den, a / b, a, b), a / b <= limit))

    ratio("C", "A", 1.4, "C ≤ 1.4 × A (CPU per request)")
    ratio("C", "A", 1.4, "C ≤ 1.4 × A, browser-like request", "browser")
    ratio("E", "A", 1.15, "E ≤ 1.15 × A")
    ratio("E", "A", 1.15, "E ≤ 1.15 × A, browser-like request", "browser")
    for request in ("simple", "browser"):
        c, b, lua = (cpu.get((k, request)) for k in ("C", "B", "L"))
        name = "(C − B) ≤ 0.25 × (Lua − B)" + (", browser-like request" if request == "browser" else "")
        if None in (c, b, lua):
            out.append((name, "not measured", None))
        elif lua - b <= 0:
            out.append((name, "Lua adds nothing over B (%.1f vs %.1f µs)" % (lua, b), False))
        else:
            out.append((name, "C − B = %.1f µs, Lua − B = %.1f µs: %.2f ×" % (c - b, lua - b, (c - b) / (lua - b)),
                        (c - b) <= 0.25 * (lua - b)))
    if sweep:
        base = sweep[0][1]
        worst = max(abs(row[1] / base - 1) for row in sweep)
        out.append(("flat within 10 %% from %d to %d entries per type" % (sweep[0][0], sweep[-1][0]),
                    "largest deviation of the medians %.1f %%" % (worst * 100), worst <= 0.10))
    else:
        out.append(("flat within 10 % (sweep)", "not run", None))
    if load and "bytes_per_entry" in load:
        out.append(("≤ 40 bytes of Envoy memory per deny entry", "%.0f B per entry (bench/load.py, %d per type)"
                    % (load["bytes_per_entry"], load.get("entries_per_type", 0)), load["bytes_per_entry"] <= 40))
        out.append(("5,000,000 entries loaded through the feed in < 2 s",
                    "%.2f s; requests during the load: p99 %.0f µs at %.0f req/s"
                    % (load["load_s"], load.get("p99_us_during_load", float("nan")),
                       load.get("rps_during_load", float("nan"))), load["load_s"] < 2.0))
    else:
        why = load["error"] if load and "error" in load else "bench/load.py not present"
        if len(sweep) > 1 and sweep[-1][0] > 0:
            per_entry = (sweep[-1][2] - sweep[0][2]) * 1024 * 1024 / (5 * sweep[-1][0])
            out.append(("≤ 40 bytes of Envoy memory per deny entry", "%.0f B (sweep RSS growth / (5 × %d); %s)"
                        % (per_entry, sweep[-1][0], why), per_entry <= 40))
            out.append(("5,000,000 entries loaded through the feed in < 2 s",
                        "%.1f s for 5 × %d (sweep, no requests during the load; %s)" % (sweep[-1][3], sweep[-1][0], why),
                        sweep[-1][3] < 2.0 if sweep[-1][0] >= 1_000_000 else None))
        else:
            out.append(("≤ 40 bytes per deny entry; 5M load < 2 s", why, None))
    return out


def host_call_table(host_calls):
    cols = sorted(host_calls)
    if not cols:
        return []
    lines = ["| host call (calls / bytes per request) | " + " | ".join(cols) + " |",
             "|---|" + "---:|" * len(cols)]
    kinds = [k for k in HOST_CALL_KINDS if any(k in host_calls[c]["calls"] for c in cols)]
    kinds += sorted({k for c in cols for k in host_calls[c]["calls"]} - set(kinds))
    for k in kinds:
        cells = []
        for c in cols:
            n = host_calls[c]["calls"].get(k, 0)
            b = host_calls[c]["bytes"].get(k, 0)
            cells.append("%.3f / %.0f" % (n, b) if n else "–")
        lines.append("| %s | %s |" % (k, " | ".join(cells)))
    lines.append("| **all** | %s |" % " | ".join(
        "**%.2f** / %.0f" % (sum(host_calls[c]["calls"].values()), sum(host_calls[c]["bytes"].values())) for c in cols))
    return lines


def vm_time_table(host_calls):
    """api-warden's own work inside the VM per request (the host-calls build's spans), µs, the
    clock reads' own cost taken off each span."""
    cols = [c for c in sorted(host_calls) if host_calls[c].get("ns")]
    if not cols:
        return []
    lines = ["| stage (µs per request, in V8) | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    stages = (("parse", "parse the request (RequestView, Request)"),
              ("pipeline", "pipeline (match, identify, lookups, decide)"),
              ("shared_get", "  of which shared-data reads (host calls)"),
              ("record", "record (JSON)"),
              ("header_map", "host call: request header map"),
              ("property", "host call: property"))
    for s, label in stages:
        cells = []
        for c in cols:
            ns = host_calls[c]["ns"]
            spans = ns.get("spans", 0) or 1
            clock = ns.get("clock", 0) / spans
            # Each span's count per request: its clock cost is taken off that many times.
            v = ns.get(s)
            cells.append("%.1f" % (max(v - clock * SPANS_PER_REQUEST.get(s, 1), 0) / 1000) if v else "–")
        lines.append("| %s | %s |" % (label, " | ".join(cells)))
    lines.append("| one clock read pair (taken off above) | %s |" % " | ".join(
        "%.2f" % (host_calls[c]["ns"].get("clock", 0) / (host_calls[c]["ns"].get("spans", 0) or 1) / 1000)
        for c in cols))
    return lines


# Spans per request of a stage whose host calls happen more than once (approximately).
SPANS_PER_REQUEST = {}


def write(path, args, lua_entries, table, host_calls, sweep, load, micro, minutes):
    cpu = {k: v["cpu_us_per_req"] for k, v in table.items()}
    a = {r: cpu.get(("A", r)) for r in ("simple", "browser")}
    b = {r: cpu.get(("B", r)) for r in ("simple", "browser")}
    lines = [
        "# api-warden benchmark results", "",
        "- date: %s; the run took %.0f minutes" % (
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), minutes),
        "- machine: %s, %d cores, %s (shared: figures compare only within one run)" % (
            platform.machine(), os.cpu_count(), cpu_model()),
        "- envoy: %s" % envoy_version(),
        "- load: wrk -t1 -c%d, %d s per run after a 1 s warm-up, %d rounds interleaved (%s), Envoy "
        "--concurrency 1, loopback; medians" % (args.connections, args.seconds, args.rounds, args.kinds),
        "- api-warden (C D E): 10 APIs, Bearer JWT + API key + cookie, %d deny entries per type (× 5) from the "
        "attack-list feed, an allow list; C: the record in a JSON access log, six filter states, export "
        "to a local collector; E: `filter_state: none`, no export, no access log" % args.entries,
        "- L: Envoy's Lua filter (`bench/deny.lua`) decoding the JWT payload and looking its username up "
        "in a Lua table of %d usernames; R100 / R10k: Envoy's RBAC filter, DENY with 100 / 10,000 "
        "`x-api-key` header principals" % lua_entries,
        "- requests: `simple` = today's (%d headers incl. Host, %d bytes of headers, %d-byte JWT); "
        "`browser` = browser-like (%d headers incl. Host, %d bytes, a %d-byte cookie, a %d-byte JWT)" % (
            len(SIMPLE) + 1, request_size(SIMPLE), len(SIMPLE["Authorization"]) - 7, len(BROWSER) + 1,
            request_size(BROWSER), len(BROWSER["Cookie"]), len(BROWSER_JWT)),
        "",
        "| configuration | request | req/s | p50 µs | p99 µs | Envoy CPU µs/req | × A | + over B µs | RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = [k for k in NAMES if any(key[0] == k for key in table)]
    for request in ("simple", "browser"):
        for k in order:
            row = table.get((k, request))
            if not row:
                continue
            c = row["cpu_us_per_req"]
            lines.append("| %s | %s | %.0f | %.0f | %.0f | %.1f | %s | %s | %.0f |" % (
                NAMES[k], request, row["rps"], row["p50_us"], row["p99_us"], c,
                "%.2f" % (c / a[request]) if a[request] else "–",
                "%+.1f" % (c - b[request]) if b[request] and k != "A" else "–", row["rss_mib"]))
    lines += ["", "## Budgets (issue 18)", "", "| budget | figures | verdict |", "|---|---|---|"]
    for name, figures, ok in budgets(table, sweep, load):
        lines.append("| %s | %s | %s |" % (name, figures, verdict(ok)))
    before_after = []
    for new, old in (("C", "Cb"), ("E", "Eb"), ("Cr", "C"), ("Cm", "C"), ("Bm", "B"), ("Bh", "B"), ("Bh", "Bm"),
                     ("Be", "B"), ("E", "Be")):
        for request in ("simple", "browser"):
            if (new, request) in cpu and (old, request) in cpu:
                n, o = cpu[(new, request)], cpu[(old, request)]
                before_after.append("| %s vs %s | %s | %.1f | %.1f | %+.1f | %.2f |" % (
                    new, old, request, o, n, n - o, n / o))
    if before_after:
        lines += ["", "## Same run, side by side", "",
                  "Cb / Eb run the `--baseline-wasm` build (before), C / E this one (after); Cr / Cm the "
                  "cheaper analytics settings on this build; Bm / Bh the floor reading the request header map "
                  "in one host call / 8 headers in 8 calls (what enforcement-only would need); Be the floor "
                  "making E's host calls, so E vs Be is api-warden's own work in the VM.", "",
                  "| compared | request | before µs | after µs | Δ µs | after / before |",
                  "|---|---|---:|---:|---:|---:|"] + before_after
    if ("P", "simple") in cpu and ("C", "simple") in cpu:
        lines += ["", "P (C with a decoy API, pattern enforcement on every API, a flow-control threshold never "
                  "reached): P/C = %.2f." % (cpu[("P", "simple")] / cpu[("C", "simple")])]
    if ("S", "simple") in cpu and ("C", "simple") in cpu:
        lines += ["", "S (C in ASE sideband mode, both calls to a local double): S/C = %.2f."
                  % (cpu[("S", "simple")] / cpu[("C", "simple")])]
    if host_calls:
        lines += ["", "## Host calls per request, by kind", "",
                  "The `host-calls` build (`make build-host-calls`) counts every proxy-wasm host call api-warden "
                  "makes and the bytes it moves (header maps and values read, filter states and shared data "
                  "written), published as `api_warden.host_calls.<kind>` / `api_warden.host_bytes.<kind>`. "
                  "Per request (requests counted: %s); the root context's own calls (polls, export "
                  "batches, gauges, metric flushes) are included, amortized per request." % (
                      ", ".join("%s %d" % (k, host_calls[k]["requests"]) for k in sorted(host_calls))), ""]
        lines += host_call_table(host_calls)
        vm = vm_time_table(host_calls)
        if vm:
            lines += ["", "The same build times api-warden's own work inside the VM with the host clock "
                      "(`api_warden.vm_ns.<stage>`): what of a configuration's cost over Be is the filter's code "
                      "in V8 (the rest: its context, callbacks and copies).", ""] + vm
    if sweep:
        base, fastest0 = sweep[0][1], sweep[0][4]
        lines += ["", "## Scaling sweep (configuration C, %d rounds interleaved, medians)" % args.sweep_rounds, "",
                  "| deny entries per type | CPU µs/req | vs 0 entries | fastest run | vs 0 (fastest) | RSS MiB | feed load s |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for n, c, rss, load_s, fast in sweep:
            lines.append("| %d | %.1f | %+.1f%% | %.1f | %+.1f%% | %.0f | %.1f |" % (
                n, c, (c / base - 1) * 100, fast, (fast / fastest0 - 1) * 100, rss, load_s))
        lines += ["", "Interference on a shared machine only adds time, so the fastest run of each size is shown too."]
    if load:
        scalars = sorted((k, v) for k, v in load.items() if isinstance(v, (int, float, str)))
        lines += ["", "## Feed load (bench/load.py)", "", "| figure | value |", "|---|---:|"]
        lines += ["| %s | %s |" % (k, "%.2f" % v if isinstance(v, float) else v) for k, v in scalars]
    if micro:
        lines += ["", "## Native micro-benchmark of the pure pipeline", "", "```", micro, "```"]
    lines += ["", "Reproduce: `make bench` (options: `make bench BENCH_ARGS=\"--rounds 5\"`, "
              "`python3 bench/run.py --help`)."]
    text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return text
