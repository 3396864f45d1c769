#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fleet-broker-schema: doc/schema/broker-place.schema.json (POST /v1/sessions) and
broker-explain-request.schema.json (POST /v1/placement/explain) say what vgpu-broker accepts:
a table of good and bad bodies goes through the schema (tests/cli/validate.py, as every other
schema) and through a real broker on a one-member etcd with a synthetic host; a body is good for
the schema exactly when the broker does not answer 400. The bodies `vgpuctl fleet place|explain`
sends for the commands of README.md and doc/fleet.md (recorded by a stand-in broker on a loopback
port) are good for both. Needs VGPU_BROKER, VGPUCTL (tests/fleet/meson.build)."""

import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
from etcdcluster import EtcdCluster, free_port, skip_without_etcd  # noqa: E402
from fleetsim import GiB, Broker, Gateway, SyntheticHost, t4_gpu  # noqa: E402
from validate import validate  # noqa: E402
from checks import Tally  # noqa: E402

ROOT = os.path.join(HERE, "..", "..")


check = Tally(1200)


K = {"idempotency_key": "k"}
# (body, good?, what): POST /v1/sessions. The good ones are the shapes the fleet tests and the
# docs send (broker.py, vgpud-fleet-libvirtd.py, storm.py, dashboard.py).
SESSIONS = [
    ({"type": "nvidia-232", **K}, True, "a type"),
    ({"user": "alice", "type": "nvidia-232", "domain": "fleet-vm", **K}, True, "a type with a domain"),
    ({"vram_bytes": 4 * GiB, **K}, True, "vram_bytes"),
    ({"user": "alice", "tenant": "lab", "vram_bytes": 8 * GiB, **K}, True, "vram_bytes with a tenant"),
    ({"vram_bytes": GiB, "domain": "fleet-vm", **K}, True, "vram_bytes with a domain"),
    ({"memory_bytes": 2 * GiB, "share_percent": 30, **K}, True, "a slice"),
    ({"memory_bytes": 2 * GiB, **K}, True, "a slice without share_percent"),
    ({"type": "nvidia-231", "prefer": ["h3"], "models": ["T4"], "tenant": "acme.eu:1_a-b", **K}, True,
     "models, prefer, a tenant of every allowed character"),
    ({"type": "nvidia-232", "models": [], "prefer": [], **K}, True, "empty models and prefer"),
    ({"type": "nvidia-232", "models": ["T4"] * 32, **K}, True, "32 models"),
    ({"user": None, "tenant": None, "vram_bytes": None, "type": "nvidia-232", "memory_bytes": None,
      "share_percent": None, "models": None, "prefer": None, "domain": None, **K}, True, "null members read as absent"),
    ({"user": "", "type": "nvidia-232", **K}, True, "an empty user"),
    ({"type": "nvidia-232", "idempotency_key": "x" * 256}, True, "a key of 256 characters"),
    ({"vram_bytes": 2 ** 63 - 1, **K}, True, "the largest vram_bytes"),
    ({"type": "nvidia-232"}, False, "no idempotency_key"),
    ({"type": "nvidia-232", "idempotency_key": None}, False, "a null idempotency_key"),
    ({"type": "nvidia-232", "idempotency_key": ""}, False, "an empty idempotency_key"),
    ({"type": "nvidia-232", "idempotency_key": "x" * 257}, False, "a key of 257 characters"),
    ({"type": "nvidia-232", "idempotency_key": 7}, False, "a number as the key"),
    (K, False, "no size at all"),
    ({"vram_bytes": None, "type": None, **K}, False, "only null sizes"),
    ({"type": "nvidia-232", "vram_bytes": 5, **K}, False, "type and vram_bytes"),
    ({"memory_bytes": GiB, "vram_bytes": GiB, **K}, False, "memory_bytes and vram_bytes"),
    ({"memory_bytes": GiB, "type": "nvidia-232", **K}, False, "memory_bytes and type"),
    ({"vram_bytes": -1, **K}, False, "a negative vram_bytes"),
    ({"vram_bytes": 0, **K}, False, "vram_bytes 0"),
    ({"vram_bytes": "4G", **K}, False, "vram_bytes as a string"),
    ({"vram_bytes": True, **K}, False, "vram_bytes as a boolean"),
    ({"memory_bytes": 0, **K}, False, "memory_bytes 0"),
    ({"memory_bytes": GiB, "share_percent": 101, **K}, False, "share_percent 101"),
    ({"memory_bytes": GiB, "share_percent": 0, **K}, False, "share_percent 0"),
    ({"vram_bytes": GiB, "share_percent": 30, **K}, False, "share_percent without memory_bytes"),
    ({"type": "nvidia-232", "share_percent": 30, **K}, False, "share_percent with a type"),
    ({"memory_bytes": GiB, "domain": "fleet-vm", **K}, False, "a slice with a domain"),
    ({"type": "nvidia-232", "domain": "", **K}, False, "an empty domain"),
    ({"type": "nvidia-232", "domain": 3, **K}, False, "a number as the domain"),
    ({"type": "", **K}, False, "an empty type"),
    ({"type": 232, **K}, False, "a number as the type"),
    ({"type": "nvidia-232", "user": 5, **K}, False, "a number as the user"),
    ({"type": "nvidia-232", "tenant": "a/b", **K}, False, "a tenant with a slash"),
    ({"type": "nvidia-232", "tenant": "..", **K}, False, "the tenant .."),
    ({"type": "nvidia-232", "tenant": "", **K}, False, "an empty tenant"),
    ({"type": "nvidia-232", "tenant": "t" * 129, **K}, False, "a tenant of 129 characters"),
    ({"type": "nvidia-232", "models": "T4", **K}, False, "models as a string"),
    ({"type": "nvidia-232", "models": [""], **K}, False, "an empty model"),
    ({"type": "nvidia-232", "models": [4], **K}, False, "a number as a model"),
    ({"type": "nvidia-232", "prefer": ["h"] * 33, **K}, False, "33 preferences"),
    ({"type": "nvidia-232", "colour": "red", **K}, False, "an unknown member"),
    ({"type": "nvidia-232", "vram": GiB, **K}, False, "vram instead of vram_bytes"),
    ([{"type": "nvidia-232", **K}], False, "an array"),
    ("nvidia-232", False, "a string"),
]
# POST /v1/placement/explain: the same request, the key optional
EXPLAIN = [
    ({"type": "nvidia-232"}, True, "a type without key"),
    ({"type": "nvidia-232", "models": ["T4"]}, True, "a type and models"),
    ({"vram_bytes": 100 * GiB}, True, "more than any GPU has (nothing fits: still a good request)"),
    ({"memory_bytes": GiB, "share_percent": 10, **K}, True, "a slice with a key"),
    ({"type": "nvidia-232", "idempotency_key": ""}, False, "an empty key"),
    ({"type": "nvidia-232", "vram_bytes": GiB}, False, "two sizes"),
    ({"memory_bytes": GiB, "domain": "vm"}, False, "a slice with a domain"),
    ({}, False, "nothing"),
]


def doc_commands():
    """The `vgpuctl fleet place|explain` commands of README.md and doc/fleet.md, as argv lists
    after `vgpuctl`: each `$ vgpuctl fleet ...` line, and doc/fleet.md's `... --vram 4G | --type T
    | --memory 2G --share 30%` (one command per alternative)."""
    cmds = []
    for name in ("README.md", os.path.join("doc", "fleet.md")):
        text = open(os.path.join(ROOT, name)).read()
        for m in re.finditer(r"^\$ vgpuctl (fleet (?:place|explain) [^\n#]*)", text, re.M):
            cmds.append(shlex.split(m.group(1)))
        for m in re.finditer(r"`vgpuctl (fleet (?:place|explain)) ([^`]*\|[^`]*)`", text):
            for alt in m.group(2).split("|"):
                cmds.append(m.group(1).split() + shlex.split(alt))
    return [[a for a in c if a != "--json"] for c in cmds]


class Recorder(http.server.BaseHTTPRequestHandler):
    """A stand-in broker: keeps what vgpuctl POSTs and answers 503 (nothing placed)."""
    bodies = []

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Recorder.bodies.append((self.path, raw))
        out = json.dumps({"error": "recorded", "candidates": 0, "rejected": []}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def recorded_bodies(tmp):
    """[(path, body, argv)]: what vgpuctl sends for each documented command, and a few more
    that cover every place option."""
    cmds = doc_commands()
    check(sum(c[1] == "place" for c in cmds) >= 5 and any(c[1] == "explain" for c in cmds),
          "README.md and doc/fleet.md give at least 5 place and an explain command", cmds)
    cmds += [["fleet", "place", "--type", "nvidia-232", "--domain", "fleet-vm", "--user", "alice", "--key", "d1"],
             ["fleet", "place", "--vram", "4G", "--model", "T4", "--model", "A10", "--prefer", "h1",
              "--prefer", "GPU-h0-0", "--tenant", "acme"],
             ["fleet", "place", "--memory", "2G"],
             ["fleet", "explain", "--memory", "1G", "--share", "10%", "--model", "A10"]]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = []
    try:
        for argv in cmds:
            del Recorder.bodies[:]
            env = dict(os.environ, VGPU_BROKER="http://127.0.0.1:%d" % server.server_address[1])
            p = subprocess.run([os.environ["VGPUCTL"], *argv], env=env, capture_output=True, text=True, timeout=30)
            check(len(Recorder.bodies) == 1, "vgpuctl %s: one request" % " ".join(argv), (p.returncode, p.stderr))
            for path, raw in Recorder.bodies:
                try:
                    out.append((path, json.loads(raw), argv))
                except ValueError:
                    check(False, "vgpuctl %s sends JSON" % " ".join(argv), raw)
    finally:
        server.shutdown()
        server.server_close()
    return out


def agree(broker, path, schema, body, good, what):
    """the schema's and the broker's verdict on body, and both the expected one"""
    error = validate(schema, body)
    st, _, answer = broker.request("POST", path, body if not isinstance(body, str) else json.dumps(body))
    check((error is None) == good, "%s %s: %s by %s.schema.json" % (path, what, "accepted" if good else "refused", schema),
          error or body)
    check((st != 400) == good, "%s %s: %s by the broker" % (path, what, "accepted" if good else "400"), (st, answer))
    if st == 400:
        check(isinstance(answer, dict) and validate("broker-error", answer) is None, "%s %s: the 400 is an error body" % (path, what),
              answer)
    else:
        check(st in (200, 201, 503), "%s %s: placed, explained or no capacity" % (path, what), (st, answer))
    return st, answer


def main():
    skip_without_etcd()
    tmp = tempfile.mkdtemp(prefix="vgpu-broker-schema-")
    broker = None
    try:
        with EtcdCluster(1) as cluster:
            gw = Gateway(cluster.endpoints)
            hosts = [SyntheticHost(gw, "h0", [t4_gpu("h0", "GPU-h0-%d" % i) for i in range(4)], ttl=5),
                     SyntheticHost(gw, "s0", [t4_gpu("s0", "GPU-s0-0", total=24 * GiB, model="NVIDIA A10",
                                                     mode="slice", types=[], slice_memory=20 * GiB)], ttl=5)]
            broker = Broker(os.environ["VGPU_BROKER"], cluster.endpoints, tmp, "b", "--seed", "1", "--hold-ttl", "0")
            for i, (body, good, what) in enumerate(SESSIONS):
                if isinstance(body, dict) and body.get("idempotency_key") == "k":
                    body = dict(body, idempotency_key="schema-%d" % i)   # each its own session
                st, answer = agree(broker, "/v1/sessions", "broker-place", body, good, what)
                if st in (200, 201):
                    check(validate("broker-session", answer) is None, "/v1/sessions %s: a session body" % what, answer)
                    broker.request("DELETE", "/v1/sessions/" + answer["session"])   # its capacity back
            for body, good, what in EXPLAIN:
                agree(broker, "/v1/placement/explain", "broker-explain-request", body, good, what)
            for path, body, argv in recorded_bodies(tmp):
                schema = "broker-place" if path == "/v1/sessions" else "broker-explain-request"
                agree(broker, path, schema, body, True, "from `vgpuctl %s`" % " ".join(argv))
            for h in hosts:
                h.stop()
    finally:
        if broker:
            broker.stop()
            if check.failed:
                print("--- broker ---\n" + broker.logtext())
        shutil.rmtree(tmp, ignore_errors=True)
    check.exit("fleet-broker-schema")


if __name__ == "__main__":
    main()
