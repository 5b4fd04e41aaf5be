#!/usr/bin/env python3
"""The OCI image test (`make test-oci`): a real registry (Debian's docker-registry) on loopback,
the image pushed with skopeo and pulled back, then checked: OCI media types, exactly one layer,
and that layer's plugin.wasm is byte for byte the built .wasm (same sha256). Standard library only.

Usage: tests/oci/test_oci.py LAYOUT TAG WASM
"""
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


def registry(tmp):
    port = free_port()
    cfg = os.path.join(tmp, "registry.yml")
    with open(cfg, "w") as f:
        f.write("version: 0.1\nlog: { level: error }\nstorage:\n  filesystem: { rootdirectory: %s }\n"
                "http: { addr: 127.0.0.1:%d }\n" % (os.path.join(tmp, "data"), port))
    proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(tmp, "registry.log"), "w"))
    for _ in range(100):
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/v2/" % port, timeout=1)
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("FAIL: the registry did not start (see %s/registry.log)" % tmp)


def blob(layout, digest):
    with open(os.path.join(layout, "blobs", *digest.split(":", 1)), "rb") as f:
        data = f.read()
    check(sha256(data) == digest.split(":", 1)[1], "blob %s matches its digest" % digest[:19])
    return data


def main():
    layout, tag, wasm = sys.argv[1:4]
    with open(wasm, "rb") as f:
        want = sha256(f.read())
    tmp = tempfile.mkdtemp(prefix="api-warden-oci-")
    proc, port = registry(tmp)
    try:
        ref = "docker://127.0.0.1:%d/api-warden:%s" % (port, tag)
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                        "oci:%s:%s" % (layout, tag), ref], check=True)
        req = urllib.request.Request("http://127.0.0.1:%d/v2/api-warden/manifests/%s" % (port, tag),
                                     headers={"Accept": MANIFEST})
        with urllib.request.urlopen(req, timeout=10) as r:
            kind = r.headers.get("content-type", "")
            m = json.loads(r.read())
        check(kind == MANIFEST and m.get("mediaType", MANIFEST) == MANIFEST,
              "the registry serves an OCI image manifest (%s)" % kind)
        check(m["config"]["mediaType"] == CONFIG, "config media type %s" % CONFIG)
        check(len(m["layers"]) == 1, "exactly one layer (what Istio's WasmPlugin expects)")
        check(m["layers"][0]["mediaType"] == LAYER, "layer media type %s" % LAYER)
        pulled = os.path.join(tmp, "pulled")
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", ref,
                        "oci:%s:%s" % (pulled, tag)], check=True)
        with open(os.path.join(pulled, "index.json")) as f:
            index = json.load(f)
        pm = json.loads(blob(pulled, index["manifests"][0]["digest"]))
        check(pm["layers"][0]["digest"] == m["layers"][0]["digest"], "the pulled layer is the pushed one")
        layer = blob(pulled, pm["layers"][0]["digest"])
        with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as t:
            files = [i for i in t.getmembers() if i.isfile()]
            names = [i.name.lstrip("./") for i in files]
            check(names == ["plugin.wasm"], "the layer holds plugin.wasm only (got %s)" % names)
            got = sha256(t.extractfile(files[0]).read())
        check(got == want, "plugin.wasm is the built .wasm (sha256 %s)" % want[:16])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print("OCI image test passed")


if __name__ == "__main__":
    main()
