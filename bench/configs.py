"""The benchmark's Envoy configurations and requests (bench/run.py): api-warden's plugin
configuration per kind, the peers users would run instead (a Lua filter, Envoy's RBAC filter) and
the two requests (today's and a browser-like one). Standard library only.
"""

import json
import os

from common import (FLOOR, ROOT, WASM, bootstrap, cluster, direct_response, jwt, listener, render,
                    template, wasm_filter, access_log)

# What each configuration is (run.py measures them interleaved; the report names them so).
NAMES = {
    "A": "A envoy (no wasm)",
    "B": "B wasm floor",
    "Bm": "Bm = B reading the request header map",
    "Bh": "Bh = B reading 8 request headers one by one",
    "Be": "Be = B making E's host calls (header map, property, shared data, clock)",
    "C": "C api-warden (full)",
    "D": "D api-warden blocking",
    "E": "E api-warden enforcement only",
    "L": "L Lua peer",
    "R100": "R100 RBAC peer, 100 keys",
    "R10k": "R10k RBAC peer, 10,000 keys",
    "Cr": "Cr = C, filter_state record",
    "Cm": "Cm = C, filter_state record, no optional record parts",
    "Cb": "Cb = C, baseline build",
    "Eb": "Eb = E, baseline build",
    "P": "P api-warden + protections",
    "S": "S api-warden + ASE sideband",
}
# Kinds that load the attack-list feed through api-warden.
WARDEN = ("C", "D", "E", "P", "S", "Cr", "Cm", "Cb", "Eb")
# Kinds measured with the --baseline-wasm build (same configuration as C / E).
BASELINE = {"Cb": "C", "Eb": "E"}
RBAC_KEYS = {"R100": 100, "R10k": 10_000}
# The floor's plugin configuration per kind (bench/floor): how it reads the request headers. Bh
# reads what enforcement needs: the pseudo-headers and the identifier headers.
FLOOR_READS = {"B": "", "Bm": "map", "Be": "host",
               "Bh": "headers::method,:path,:authority,:scheme,authorization,x-api-key,cookie,x-forwarded-for"}

# Today's request: Bearer JWT (~230 bytes), API key, a short cookie, wrk's User-Agent (+ Host).
JWT = jwt({"sub": "alice", "username": "alice", "client_id": "app-1", "iss": "https://idp.example",
           "aud": "shop", "scope": "read write", "iat": 1700000000, "exp": 4100000000})
REQUEST_PATH = "/api3/items?id=1"
SIMPLE = {
    "Authorization": "Bearer " + JWT,
    "x-api-key": "key-live-123",
    "Cookie": "session=sess-abc; theme=dark",
    "User-Agent": "wrk",
}


def _browser_jwt(size=900):
    """A ~`size`-byte JWT shaped like an identity provider's access token (names, email, roles,
    groups, a session id), padded with a realistic `permissions` claim to the size."""
    claims = {"sub": "a1b2c3d4-e5f6-47a8-9b0c-1d2e3f4a5b6c", "username": "alice", "client_id": "app-1",
              "iss": "https://idp.example/as", "aud": ["shop", "https://api.example"],
              "scope": "openid profile email read write", "iat": 1700000000, "exp": 4100000000,
              "jti": "8f14e45f-ceea-467f-a8f0-2b5c9c3b1d7e", "email": "alice@example.com",
              "roles": ["customer"],
              "permissions": []}
    header = {"alg": "RS256", "typ": "JWT", "kid": "2026-11-key-1"}
    sig = "S" * 342  # an RS256 signature's length
    i = 0
    while len(jwt(claims, header, sig)) < size:
        claims["permissions"].append("orders:read:%d" % i)
        i += 1
    return jwt(claims, header, sig)


def _browser_cookie(size=1024):
    parts = ["session=sess-abc", "theme=dark", "lang=en-GB", "consent=analytics%3Dyes%26ads%3Dno",
             "_ga=GA1.2.1234567890.1700000000", "_gid=GA1.2.987654321.1700000000"]
    i = 0
    while len("; ".join(parts)) < size:
        parts.append("pref%d=%s" % (i, "x" * 40))
        i += 1
    return "; ".join(parts)[:size]


BROWSER_JWT = _browser_jwt()
# About 15 headers (wrk adds Host): what a browser's API call carries.
BROWSER = {
    "Authorization": "Bearer " + BROWSER_JWT,
    "x-api-key": "key-live-123",
    "Cookie": _browser_cookie(),
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Safari/537.36",
    "Accept": "application/json, text/plain, */*",
    "Accept-Language": "en-GB,en;q=0.9,de;q=0.8",
    "Accept-Encoding": "gzip, deflate, br, zstd",
    "Referer": "https://shop.example/account/orders",
    "Origin": "https://shop.example",
    "sec-ch-ua": '"Chromium";v="131", "Not_A Brand";v="24"',
    "sec-ch-ua-mobile": "?0",
    "sec-ch-ua-platform": '"Linux"',
    "sec-fetch-site": "same-site",
    "sec-fetch-mode": "cors",
    "sec-fetch-dest": "empty",
}
REQUESTS = {"simple": SIMPLE, "browser": BROWSER}


def plugin_config(kind):
    kind = BASELINE.get(kind, kind)
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
    analytics = {"cluster": "collector", "path": "/records", "batch_size": 100,
                 "flush_interval_ms": 1000, "max_buffered": 10000}
    if kind == "E":
        # Enforcement only: no filter state, no export (and no access log, see envoy_bootstrap).
        analytics = {"filter_state": "none"}
    if kind in ("Cr", "Cm"):
        analytics["filter_state"] = "record"
    if kind == "Cm":
        analytics.update({"record_request_headers": False, "record_response_headers": False,
                          "record_query_parameters": False})
    cfg = {
        "ase": {"enable_firewall": True, "enable_ase_detected_attack": True},
        **({"sideband": {"service": "ase", "cluster": "ase", "timeout_ms": 1000, "fail_open": True,
                         "response_call": True}} if kind == "S" else {}),
        "apis": apis,
        "deny_list": {"username": ["alice"] if kind == "D" else ["mallory"]},
        "allow_list": {"ip": ["192.0.2.10"]},
        "attack_list": {"cluster": "abs", "path": "/attacks", "interval_s": 3600, "timeout_ms": 60000},
        "analytics": analytics,
    }
    return json.dumps(cfg)


def lua_filter(entries):
    with open(os.path.join(ROOT, "bench/deny.lua")) as f:
        code = render(f.read(), entries=entries)
    return render(template("bench-lua-filter.yaml"), code=code.rstrip("\n"))


def rbac_filter(keys):
    """Envoy's RBAC filter denying `keys` API keys ("key-0" .. ) in x-api-key, one header
    principal each (RBAC matches principals one after the other); none is the request's key."""
    principals = "\n".join('- { header: { name: x-api-key, string_match: { exact: "key-%d" } } }' % i
                           for i in range(keys))
    return render(template("bench-rbac-filter.yaml"), principals=principals)


def envoy_bootstrap(kind, port, admin, feed_port, log_path, ase_port=None, wasm=WASM, lua_entries=0):
    """The listener of every configuration: direct_response 200 behind the filter of `kind`, the
    record access log (not for E); the feed and collector clusters."""
    log = access_log(log_path)
    if kind == "A":
        filters = ""
    elif kind in FLOOR_READS:
        filters = wasm_filter(FLOOR_READS[kind], code=FLOOR, name="floor", root_id="floor", vm_id="floor")
    elif kind == "L":
        filters = lua_filter(lua_entries)
    elif kind in RBAC_KEYS:
        filters = rbac_filter(RBAC_KEYS[kind])
    else:
        filters = wasm_filter(plugin_config(kind), code=wasm)
        if BASELINE.get(kind, kind) == "E":
            log = ""
    main = listener("main", port, direct_response("ok"), http_filters=filters, access_log=log)
    clusters = cluster("abs", feed_port) + cluster("collector", feed_port)
    if ase_port:
        clusters += cluster("ase", ase_port)
    return bootstrap(admin, main, clusters)
