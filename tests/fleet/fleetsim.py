# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the fleet tests share beside etcdcluster.py: etcd's JSON gateway from Python (to write
synthetic hosts straight into etcd as vgpud would, and to read the state back), synthetic hosts
with their lease kept alive by a thread, and vgpu-broker processes with an HTTP client on their
UNIX socket.

    gw = Gateway(cluster.endpoints)
    h = SyntheticHost(gw, "h0", gpus=[t4_gpu("h0", "GPU-h0-0")], ttl=3)   # publishes, keeps alive
    b = Broker(os.environ["VGPU_BROKER"], cluster.endpoints, tmpdir, "b0")  # started, ready
    status, headers, body = b.request("POST", "/v1/sessions", {...})
"""

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))
from unixhttp import UnixHTTPConnection  # noqa: E402

GiB = 1 << 30
PREFIX = "/vgpuctl/v1/default/"
T4_TYPES = [("nvidia-231", 2), ("nvidia-232", 4), ("nvidia-234", 8), ("nvidia-235", 16)]


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def unb64(s):
    return base64.b64decode(s).decode()


def prefix_end(p):
    b = bytearray(p.encode())
    b[-1] += 1
    return bytes(b)


class Gateway:
    """etcd v3 through its JSON gateway (what the C client speaks too)."""

    def __init__(self, endpoints):
        self.endpoints = list(endpoints)

    def post(self, path, body, timeout=5):
        last = None
        for ep in self.endpoints:
            req = urllib.request.Request(ep + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return json.loads(r.read() or b"{}")
            except (urllib.error.URLError, ConnectionError, socket.timeout) as e:
                last = e
        raise RuntimeError("etcd %s: %s" % (path, last))

    def put(self, key, value, lease=0):
        body = {"key": b64(key), "value": b64(value if isinstance(value, str) else json.dumps(value))}
        if lease:
            body["lease"] = str(lease)
        return self.post("/v3/kv/put", body)

    def delete(self, key):
        return self.post("/v3/kv/deleterange", {"key": b64(key)})

    def range(self, prefix, revision=0):
        """{key: (value parsed as JSON when it is, mod_revision, lease)} and the revision read at"""
        body = {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}
        if revision:
            body["revision"] = str(revision)
        r = self.post("/v3/kv/range", body)
        out = {}
        for kv in r.get("kvs", []):
            v = unb64(kv.get("value", ""))
            try:
                v = json.loads(v)
            except ValueError:
                pass
            out[unb64(kv["key"])] = (v, int(kv.get("mod_revision", 0)), int(kv.get("lease", 0)))
        return out, int(r["header"]["revision"])

    def get(self, key):
        r = self.post("/v3/kv/range", {"key": b64(key)})
        kvs = r.get("kvs", [])
        return json.loads(unb64(kvs[0]["value"])) if kvs else None

    def grant(self, ttl):
        return int(self.post("/v3/lease/grant", {"TTL": ttl})["ID"])

    def keepalive(self, lease):
        return int(self.post("/v3/lease/keepalive", {"ID": str(lease)}).get("result", {}).get("TTL", 0))

    def revoke(self, lease):
        return self.post("/v3/lease/revoke", {"ID": str(lease)})


def t4_gpu(host, gpu, total=16 * GiB, model="Tesla T4", types=T4_TYPES, mode="vgpu", slice_memory=0,
           health="ok", temperature=50):
    return {"host": host, "gpu": gpu, "pci_address": "0000:3b:00.0", "model": model,
            "vram_total_bytes": total, "vram_used_bytes": 0, "mode": mode,
            "types": [{"name": n, "framebuffer_bytes": g * GiB, "free_instances": 16 // g,
                       "max_instances": 16 // g} for n, g in types],
            "slice_capacity": {"memory_bytes": slice_memory, "share_percent": 100},
            "health": health, "health_reasons": [], "temperature_celsius": temperature,
            "updated_ms": int(time.time() * 1000)}


class SyntheticHost:
    """hosts/<name> and gpus/<name>/<gpu> bound to a lease kept alive every ttl/3, as vgpud does."""

    def __init__(self, gw, name, gpus, ttl=3):
        self.gw, self.name, self.gpus, self.ttl = gw, name, gpus, ttl
        self.stopped = threading.Event()
        self.lease = gw.grant(ttl)
        gw.put(PREFIX + "hosts/" + name, {"host": name, "address": "127.0.0.1", "boot_id": "b-" + name,
                                           "version": "test", "lease": str(self.lease),
                                           "started_ms": int(time.time() * 1000)}, self.lease)
        for g in gpus:
            gw.put(PREFIX + "gpus/%s/%s" % (name, g["gpu"]), g, self.lease)
        self.thread = threading.Thread(target=self._keep, daemon=True)
        self.thread.start()

    def _keep(self):
        while not self.stopped.wait(self.ttl / 3):
            try:
                self.gw.keepalive(self.lease)
            except RuntimeError:
                pass

    def stop(self):
        """stop the keepalives: the lease expires after ttl (as when vgpud dies)"""
        self.stopped.set()
        self.thread.join()


def request(socket_path, method, path, body=None, headers=None, port=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15) if port else UnixHTTPConnection(socket_path, 15)
    data = json.dumps(body) if body is not None and not isinstance(body, str) else body
    conn.request(method, path, body=data, headers=dict(headers or {}, **({"Content-Type": "application/json"} if data else {})))
    r = conn.getresponse()
    raw = r.read()
    conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode()
    return r.status, dict(r.getheaders()), parsed


class Broker:
    def __init__(self, exe, endpoints, tmpdir, name, *args, ready=True):
        self.socket = os.path.join(tmpdir, name + ".sock")
        self.log = open(os.path.join(tmpdir, name + ".log"), "w")
        self.argv = [exe, "--etcd", ",".join(endpoints), "--socket", self.socket, *args]
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT)
        if ready:
            self.wait_ready()

    def wait_ready(self, timeout=10):
        t = time.monotonic()
        while time.monotonic() - t < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError("vgpu-broker exited %d: %s" % (self.proc.returncode, self.logtext()))
            try:
                if request(self.socket, "GET", "/readyz")[0] == 200:
                    return time.monotonic() - t
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("vgpu-broker not ready after %d s: %s" % (timeout, self.logtext()))

    def request(self, method, path, body=None, headers=None):
        return request(self.socket, method, path, body, headers)

    def logtext(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log.name) as f:
            return f.read()[-3000:]

    def stop(self, sig=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
