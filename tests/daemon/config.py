#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-config: the host's configuration as one declarative resource. GET /v1/config is
{"host_yaml": <host.yaml>} as `vgpuctl export` prints it; PUT /v1/config applies a body of the same
shape as POST /v1/apply would and answers exactly what GET then returns; PUT of what GET returned
changes nothing; a bad host.yaml or body is a 400 naming the line and changes nothing; readers
may GET but not PUT."""

import hashlib
import json
import os
import sys

from vgpudtest import Checks, Daemon, Host, request, request_as

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from validate import validate  # noqa: E402

t = Checks("daemon-config")
h = Host("nvidia-baremetal")   # slices: a change the fake host makes without a kernel
d = Daemon(h, "[daemon]\npoll-interval = 200ms\nsocket-mode = 0666\n[metrics]\nlisten = off\n")
sock = h.sock


def tree():
    """every file of the host and its content, less what an apply always writes: the saved
    host.yaml (the boot restore's copy of what was applied) and the run-time state"""
    out = []
    for dp, _, fs in os.walk(h.root):
        for f in fs:
            p = os.path.join(dp, f)
            if "/run/" not in dp + "/" and not p.endswith("/var/lib/vgpuctl/host.yaml") and os.path.isfile(p):
                with open(p, "rb") as fh:
                    out.append((p, hashlib.sha256(fh.read()).hexdigest()))
    return sorted(out)


try:
    st, got, hdr = d.get("/v1/config")
    t.check(st == 200 and hdr.get("Content-Type") == "application/json", "GET /v1/config: 200 JSON", (st, hdr))
    t.equal(got, {"host_yaml": h.vgpuctl("export")[1]}, "GET /v1/config is {\"host_yaml\": `vgpuctl export`}")
    err = validate("config", got)
    t.check(err is None, "GET /v1/config matches config.schema.json", err)
    before = got["host_yaml"]

    # one more slice (software: no kernel needed to make it): PUT answers what GET returns
    # afterwards, and the host has it
    t.check(before.endswith("slices: []\n"), "the fixture exports no slices", before)
    base = before.replace("slices: []\n", 'slices:\n  - name: cfgtest\n    gpu: "0000:3b:00.0"\n    memory: 64M\n')
    st, put, _ = request(sock, "PUT", "/v1/config", {"host_yaml": base})
    t.check(st == 200 and isinstance(put, dict) and set(put) == {"host_yaml"}, "PUT /v1/config: 200 {host_yaml}", (st, put))
    st, after, _ = d.get("/v1/config")
    t.equal(put, after, "PUT answers exactly what GET then returns")
    t.check("cfgtest" in after["host_yaml"] and os.path.exists(h.path("/var/lib/vgpuctl/slices/cfgtest.json")),
            "the slice PUT asked for exists", after)
    t.equal(after["host_yaml"], h.vgpuctl("export")[1], "GET after PUT is `vgpuctl export`")
    e = d.events()
    t.check(any(x["kind"] == "apply" and "PUT /v1/config" in x["message"] for x in e),
            "an apply event names PUT /v1/config", e)

    # PUT of what GET returned: a no-op, the same answer
    snap = tree()
    st, again, _ = request(sock, "PUT", "/v1/config", after)
    now = tree()
    t.check(st == 200 and again == after and now == snap, "PUT of GET's config changes nothing",
            (st, sorted(set(now) ^ set(snap))))

    # bad input: 400 naming the line (or the body's fault), nothing changed
    for body, needle, what in [
            ({"host_yaml": "version: 1\ngpus:\n  - bdf: [\n"}, "PUT /v1/config:4:1: not valid YAML", "bad YAML: 400 naming the line"),
            ({"host_yaml": "version: 1\nslices:\n  - gpu: 3b:00.0\n    name: trail-\n"},
             "PUT /v1/config:4:11: field 'name': 'trail-' is not a slice name", "a bad field: its line and column"),
            ({"host_yaml": "version: 1\n", "extra": 1}, "expected exactly {\"host_yaml\"", "an unknown member"),
            ({"host_yaml": 5}, "expected exactly {\"host_yaml\"", "host_yaml not a string"),
            ("version: 1\ngpus: []\n", "not valid JSON", "host.yaml without the JSON around it"),
            ("", "must be a JSON object", "an empty body")]:
        st, b, _ = request(sock, "PUT", "/v1/config", body)
        t.check(st == 400 and needle in b.get("error", ""), what, (st, b))
        err = validate("api-error", b)
        t.check(err is None, "the error of '%s' matches api-error.schema.json" % what, err)
    t.check(tree() == snap, "the refused PUTs changed nothing on the host")
    t.equal(d.get("/v1/config")[1], after, "GET unchanged after the refused PUTs")
    st, b, _ = request(sock, "PUT", "/v1/config?dry_run=1", after)
    t.check(st == 400 and "unknown query argument 'dry_run'" in b.get("error", ""), "PUT takes only ?force", (st, b))
    st, b, hdr = request(sock, "POST", "/v1/config", after)
    t.check(st == 405 and hdr.get("Allow") == "GET, PUT", "POST /v1/config: 405, Allow: GET, PUT", (st, hdr))

    # back to the start: the host as it was, PUT's answer GET's
    st, back, _ = request(sock, "PUT", "/v1/config?force=1", {"host_yaml": before})
    t.check(st == 200 and back == {"host_yaml": before} and not os.path.exists(h.path("/var/lib/vgpuctl/slices/cfgtest.json")),
            "PUT of the first config restores it", (st, back))

    # a reader may GET, not PUT
    if os.geteuid() == 0:
        st, b = request_as(sock, 65534, 65534, [], "GET", "/v1/config")
        t.check(st == 200 and b == back, "nobody may GET /v1/config", (st, b))
        st, b = request_as(sock, 65534, 65534, [], "PUT", "/v1/config", json.dumps(after))
        t.check(st == 403, "nobody may not PUT /v1/config", (st, b))
        t.equal(d.get("/v1/config")[1], back, "the refused PUT changed nothing")
finally:
    d.stop()
    h.cleanup()
t.done()
