# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the storm and bench/fleet.sh share: etcd's JSON gateway with transactions and leases,
synthetic hosts (lease-bound inventory written the way vgpud writes it, claims realized by CAS
the way vgpud realizes them — for sizes no set of real vgpud processes reaches, and for
development before vgpud joined the fleet), and vgpu-broker started, killed and asked.

    python3 stormlib.py host --endpoints URL,.. --cluster C --host NAME [--gpus 8] [--ttl 2]
runs one synthetic host until killed (kill -9 it: its lease expires like a dead vgpud's)."""

import argparse
import base64
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checker import Gateway, b64, prefix_end, unb64, KV  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))
from unixhttp import UnixHTTPConnection  # noqa: E402

G = 1 << 30
MODEL = "Tesla T4"
# a T4's equal-size Q types by mdev type id, as vgpud publishes the nvidia-mdev fixture's
# (GRID T4-1Q .. T4-16Q: frame buffer GiB, instances)
TYPES = [("nvidia-230", 1, 16), ("nvidia-231", 2, 8), ("nvidia-232", 4, 4), ("nvidia-233", 8, 2),
         ("nvidia-234", 16, 1)]


def now_ms():
    return int(time.time() * 1000)


class Etcd(Gateway):
    """Gateway plus what writers need. One per thread (http.client connections are not shared)."""

    def __init__(self, endpoints, timeout=5):
        super().__init__(endpoints, timeout)
        self.conns = {}

    def post(self, path, body):
        last = None
        eps = self.endpoints
        for i in range(len(eps)):
            ep = eps[0]
            c = self.conns.get(ep)
            if c is None:
                u = urllib.parse.urlsplit(ep)
                c = self.conns[ep] = http.client.HTTPConnection(u.hostname, u.port, timeout=self.timeout)
            try:
                c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read().decode()
                if r.status == 200:
                    return json.loads(data)
                last = "%s%s: %d %s" % (ep, path, r.status, data[:300])
            except (OSError, http.client.HTTPException) as e:
                last = "%s%s: %s" % (ep, path, e)
                c.close()
                self.conns.pop(ep, None)
            eps.append(eps.pop(0))      # rotate: the next call starts on the next member
        raise RuntimeError("etcd: no endpoint answered: %s" % last)

    def put_lease(self, key, value, lease=0):
        body = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        return int(self.post("/v3/kv/put", body)["header"]["revision"])

    def get(self, key):
        r = self.post("/v3/kv/range", {"key": b64(key)})
        kvs = r.get("kvs", [])
        return KV.from_gateway(kvs[0]) if kvs else None

    def scan(self, prefix, serializable=False):
        body = {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}
        if serializable:
            body["serializable"] = True
        r = self.post("/v3/kv/range", body)
        return int(r["header"]["revision"]), [KV.from_gateway(kv) for kv in r.get("kvs", [])]

    def txn(self, compare, success, failure=()):
        """compare: (key, "MOD"|"CREATE"|"VERSION"|"VALUE", "EQUAL"|..., number or value);
        success/failure: ("put", key, value[, lease]) | ("delete", key) | ("range", key).
        Returns (succeeded, revision, [[KV] per range])."""
        field = {"MOD": "mod_revision", "CREATE": "create_revision", "VERSION": "version", "VALUE": "value",
                 "LEASE": "lease"}
        cmp = []
        for key, target, result, n in compare:
            c = {"key": b64(key), "target": target, "result": result}
            c[field[target]] = b64(n) if target == "VALUE" else str(n)
            cmp.append(c)

        def ops(lst):
            out = []
            for op in lst:
                if op[0] == "put":
                    p = {"key": b64(op[1]), "value": b64(op[2])}
                    if len(op) > 3 and op[3]:
                        p["lease"] = str(op[3])
                    out.append({"request_put": p})
                elif op[0] == "delete":
                    out.append({"request_delete_range": {"key": b64(op[1])}})
                else:
                    out.append({"request_range": {"key": b64(op[1])}})
            return out
        r = self.post("/v3/kv/txn", {"compare": cmp, "success": ops(success), "failure": ops(failure)})
        ranges = [[KV.from_gateway(kv) for kv in resp["response_range"].get("kvs", [])]
                  for resp in r.get("responses", []) if "response_range" in resp]
        return bool(r.get("succeeded")), int(r["header"]["revision"]), ranges

    def grant(self, ttl):
        return int(self.post("/v3/lease/grant", {"TTL": str(ttl)})["ID"])

    def keepalive(self, lease):
        """Remaining TTL; 0 when the lease is gone (the answer then has no TTL)."""
        r = self.post("/v3/lease/keepalive", {"ID": str(lease)})
        return int(r.get("result", r).get("TTL", 0))

    def revoke(self, lease):
        self.post("/v3/lease/revoke", {"ID": str(lease)})


# --- the values vgpud publishes (FLEET-SPEC) ------------------------------------------------------------

def host_value(host, lease):
    return json.dumps({"host": host, "address": "127.0.0.1", "boot_id": "synthetic-%s" % host, "version": "sim",
                       "lease": str(lease), "started_ms": now_ms()})


def gpu_id(host, i):
    return "GPU-%s-%04d" % (host, i)


def gpu_value(host, i, types=TYPES, vram=16 * G):
    return json.dumps({"host": host, "gpu": gpu_id(host, i), "pci_address": "0000:%02x:00.0" % (0x10 + i),
                       "model": MODEL, "vram_total_bytes": vram, "vram_used_bytes": 0, "mode": "vgpu",
                       "types": [{"name": n, "framebuffer_bytes": fb * G, "free_instances": m, "max_instances": m}
                                 for n, fb, m in types],
                       "slice_capacity": {"memory_bytes": 0, "share_percent": 0}, "health": "ok",
                       "health_reasons": [], "temperature_celsius": 40, "updated_ms": now_ms()})


def publish(etcd, prefix, host, n_gpus, lease):
    etcd.put_lease(prefix + "hosts/" + host, host_value(host, lease), lease)
    for i in range(n_gpus):
        etcd.put_lease(prefix + "gpus/%s/%s" % (host, gpu_id(host, i)), gpu_value(host, i), lease)


def alloc_minus(a, claim):
    """alloc after the claim goes (what vgpu_fleet_alloc_apply(-1) does)."""
    a = dict(a)
    a["claims"] = [c for c in a.get("claims") or [] if c != claim.get("claim")]
    a["vram_bytes"] = max(0, int(a.get("vram_bytes") or 0) - int(claim.get("vram_bytes") or 0))
    a["share_percent"] = max(0, int(a.get("share_percent") or 0) - int((claim.get("slice") or {}).get("share_percent") or 0))
    if not a["claims"]:
        a["type_lock"] = None
    return a


class SyntheticHost:
    """vgpud's part of the fleet, played against etcd: lease + inventory, claims realized by CAS
    (PENDING under my lease -> BOUND), RELEASING finished (claim + session deleted, alloc
    decremented in one txn), and on a new lease the reconcile: claims it runs (BOUND, LOST,
    RELEASING under an older lease) back to BOUND under the new lease, PENDING ones of an older
    lease released. Polls its claims (serializable reads) instead of watching: simpler, and a
    stale read only costs a failed CAS."""

    def __init__(self, endpoints, cluster, host, n_gpus=8, ttl=2, poll=0.1):
        self.etcd = Etcd(endpoints)
        self.prefix = "/vgpuctl/v1/%s/" % cluster
        self.host, self.n_gpus, self.ttl, self.poll = host, n_gpus, ttl, poll
        self.lease = 0
        self.running = set()        # claim ids "realized" here

    def join(self):
        self.lease = self.etcd.grant(self.ttl)
        publish(self.etcd, self.prefix, self.host, self.n_gpus, self.lease)
        self.reconcile()

    def reconcile(self):
        _, claims = self.etcd.scan(self.prefix + "claims/%s/" % self.host)
        for kv in claims:
            c = kv.value or {}
            if str(c.get("host_lease")) == str(self.lease):
                continue
            # a realized claim survives its host process (an mdev outlives a kill -9 of vgpud)
            if c.get("state") in ("BOUND", "LOST"):
                c = dict(c, state="BOUND", host_lease=str(self.lease))
                self.etcd.txn(self.fenced(kv), [("put", kv.key, json.dumps(c))])
                self.running.add(c.get("claim"))
            elif c.get("state") in ("PENDING", "RELEASING"):
                self.finish(kv)

    def finish(self, kv):
        """Delete the claim and its session, decrement alloc: one txn, retried on alloc races."""
        c = kv.value or {}
        akey = self.prefix + "alloc/" + str(c.get("gpu"))
        for _ in range(20):
            a = self.etcd.get(akey)
            if a is None:
                return
            ops = [("delete", kv.key), ("put", akey, json.dumps(alloc_minus(a.value, c)))]
            if c.get("session"):
                ops.append(("delete", self.prefix + "sessions/" + c["session"]))
            ok, _, _ = self.etcd.txn([(kv.key, "MOD", "EQUAL", kv.mod_revision), (akey, "MOD", "EQUAL", a.mod_revision)], ops)
            if ok:
                self.running.discard(c.get("claim"))
                return
            cur = self.etcd.get(kv.key)
            if cur is None or cur.mod_revision != kv.mod_revision:
                return          # the claim moved: the next poll sees it as it is now

    def fenced(self, kv):
        """The compares that make a claim's CAS fenced: unchanged, and my hosts/ key still bound
        to my lease (a lease that expired while this process was stopped or cut off fails it)."""
        return [(kv.key, "MOD", "EQUAL", kv.mod_revision), (self.prefix + "hosts/" + self.host, "LEASE", "EQUAL", self.lease)]

    def step(self):
        _, claims = self.etcd.scan(self.prefix + "claims/%s/" % self.host, serializable=True)
        for kv in claims:
            c = kv.value or {}
            mine = str(c.get("host_lease")) == str(self.lease)
            if c.get("state") == "PENDING" and mine:
                c = dict(c, state="BOUND", instance="sim-" + str(c.get("claim")))
                ok, _, _ = self.etcd.txn(self.fenced(kv), [("put", kv.key, json.dumps(c))])
                if ok:
                    self.running.add(c.get("claim"))
            elif c.get("state") == "RELEASING":
                self.finish(kv)
            elif c.get("state") == "LOST" and mine and c.get("claim") in self.running:
                c = dict(c, state="BOUND")
                self.etcd.txn(self.fenced(kv), [("put", kv.key, json.dumps(c))])

    def run(self):
        self.join()
        next_ka = time.monotonic() + self.ttl / 3
        while True:
            try:
                if time.monotonic() >= next_ka:
                    next_ka = time.monotonic() + self.ttl / 3
                    if self.etcd.keepalive(self.lease) == 0:
                        self.join()         # the lease went (we were stopped, or cut off): rejoin
                self.step()
            except RuntimeError as e:
                print("%s: %s" % (self.host, e), file=sys.stderr, flush=True)
            time.sleep(self.poll)


def synthetic_hosts(endpoints, cluster, hosts, n_gpus=8, ttl=2, log_dir=None):
    """One process per host (so a test can kill -9 one by PID); returns {host: Popen}."""
    procs = {}
    for h in hosts:
        log = open(os.path.join(log_dir, h + ".log"), "w") if log_dir else subprocess.DEVNULL
        procs[h] = subprocess.Popen([sys.executable, os.path.abspath(__file__), "host", "--endpoints", ",".join(endpoints),
                                     "--cluster", cluster, "--host", h, "--gpus", str(n_gpus), "--ttl", str(ttl)],
                                    stdout=log, stderr=log if log_dir else subprocess.DEVNULL, start_new_session=True)
    return procs


def bulk_hosts(etcd, prefix, n_hosts, n_gpus, ttl=600, name="bulk%04d"):
    """n_hosts synthetic hosts with n_gpus each, written at once under one long lease (for sizes
    only: nothing realizes their claims). Returns the lease."""
    lease = etcd.grant(ttl)
    for h in range(n_hosts):
        host = name % h
        ops = [("put", prefix + "hosts/" + host, host_value(host, lease), lease)]
        ops += [("put", prefix + "gpus/%s/%s" % (host, gpu_id(host, i)), gpu_value(host, i), lease) for i in range(n_gpus)]
        etcd.txn([], ops)
    return lease


# --- vgpu-broker ----------------------------------------------------------------------------------------

def UnixHTTP(path, timeout=10):
    return UnixHTTPConnection(path, timeout)


class Broker:
    """One vgpu-broker process on a UNIX socket."""

    def __init__(self, exe, endpoints, cluster, work, index, extra=()):
        self.exe, self.endpoints, self.cluster, self.extra = exe, endpoints, cluster, list(extra)
        self.sock = os.path.join(work, "broker%d.sock" % index)
        self.logpath = os.path.join(work, "broker%d.log" % index)
        self.index = index
        self.proc = None

    def start(self, wait=True, timeout=20):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen([self.exe, "--etcd", ",".join(self.endpoints), "--cluster", self.cluster,
                                      "--socket", self.sock, "--seed", str(self.index + 1)] + self.extra,
                                     stdout=subprocess.DEVNULL, stderr=open(self.logpath, "a"), start_new_session=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("vgpu-broker exited with %s: %s" % (self.proc.returncode, self.logtext()[-2000:]))
            try:
                if self.request("GET", "/readyz", timeout=1)[0] == 200:
                    return time.monotonic() - self.t_start
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError("vgpu-broker not ready after %d s: %s" % (timeout, self.logtext()[-2000:]))

    def request(self, method, path, body=None, timeout=10, conn=None):
        """(status, parsed body) — raises OSError/HTTPException when the broker does not answer."""
        c = conn or UnixHTTP(self.sock, timeout)
        try:
            data = json.dumps(body) if body is not None else None
            c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
            r = c.getresponse()
            text = r.read().decode()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text
        finally:
            if conn is None:
                c.close()

    def rss_kib(self):
        try:
            for line in open("/proc/%d/status" % self.proc.pid):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            os.kill(self.proc.pid, sig)
            self.proc.wait()

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else 0

    def logtext(self):
        try:
            return open(self.logpath, errors="replace").read()
        except OSError:
            return ""


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("host")
    h.add_argument("--endpoints", required=True)
    h.add_argument("--cluster", default="default")
    h.add_argument("--host", required=True)
    h.add_argument("--gpus", type=int, default=8)
    h.add_argument("--ttl", type=int, default=2)
    a = ap.parse_args()
    random.seed(a.host)
    SyntheticHost(a.endpoints.split(","), a.cluster, a.host, a.gpus, a.ttl).run()


if __name__ == "__main__":
    main()
