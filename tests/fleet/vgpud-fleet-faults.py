#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fleet-vgpud-faults: what vgpud does when its etcd writes about a claim fail, and the fencing of
its reports. One etcd member; one vgpud on a copy of the NVIDIA mdev fixture (a fake kernel plays
the mdev ABI) that reaches etcd through a proxy in this test, which resets every txn request while
told to (as an etcd leader killed mid-txn does) and passes everything else, the watch included.

Proves (each FAILS on the code before the storm's fixes):
- a release whose finishing txn failed is retried: the claim does not stay RELEASING;
- a vGPU made for a claim whose BOUND report failed, the claim then deleted as PENDING (the
  broker's release of a PENDING claim), is torn down;
- a fleet vGPU that no claim names (its claim deleted while vgpud was down) is swept at the next
  listing, and the fixture's own (an admin's) vGPUs are never touched;
- BOUND is fenced by the lease: a report made while hosts/<host> is bound to another lease is
  refused, the claim stays PENDING;
- a teardown that fails (the device busy) keeps the claim RELEASING with the reason on it and its
  capacity counted, is tried again with backoff, also after a restart, and the claim is released
  (alloc/<gpu> loses it exactly once) when the device can go (fails on the code before issue 12's
  fixes: the claim stayed RELEASING for ever);
- a vendor-VFIO claim (host2: a VF, which has no name) whose BOUND report is lost keeps one VF
  while vgpud decides it again, gets that VF BOUND when the report goes through, also across a
  restart, and the VF is cleared when the claim was deleted before the report (fails on the
  code before: a second VF was taken per try, and a deleted claim's VF stayed configured)."""

import base64
import json
import os
import signal
import socket
import threading
import time
import urllib.request

from fleetvgpud import (Checks, Daemon, EtcdCluster, FakeKernel, finish, fleet_conf, fleet_host, free_port, gpu_uuid,
                        wait)

TTL = 2
PREFIX = "/vgpuctl/v1/t/"
TYPE = "nvidia-232"
GPU = "GPU-00000001-0000-4000-8000-000000000003"   # gpu.2: 0000:af:00.0, empty
T0 = time.monotonic()


class TxnProxy:
    """Loopback HTTP proxy to one etcd member. Requests on a connection are parsed (headers and a
    Content-Length body) so each is seen; while fail_txn is set a POST /v3/kv/txn closes the
    connection unanswered. Answers are piped back as they come (the watch streams)."""

    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.fail_txn = False
        self.killed = 0
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = free_port()
        self.srv.bind(("127.0.0.1", self.port))
        self.srv.listen(64)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                cl, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(cl,), daemon=True).start()

    @staticmethod
    def pipe(src, dst):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                dst.sendall(b)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def serve(self, cl):
        try:
            up = socket.create_connection(self.upstream)
        except OSError:
            cl.close()
            return
        threading.Thread(target=self.pipe, args=(up, cl), daemon=True).start()
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    b = cl.recv(65536)
                    if not b:
                        raise EOFError
                    buf += b
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                if self.fail_txn and lines[0].startswith("POST /v3/kv/txn"):
                    self.killed += 1
                    raise EOFError
                up.sendall(head + b"\r\n\r\n")
                while length > 0:
                    if not buf:
                        buf = cl.recv(65536)
                        if not buf:
                            raise EOFError
                    chunk, buf = buf[:length], buf[length:]
                    up.sendall(chunk)
                    length -= len(chunk)
        except (EOFError, OSError, ValueError):
            pass
        for s in (cl, up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


t = Checks("fleet-vgpud-faults")
# The proxy reads HTTP/1.1 requests to find the txns: vgpud talks to etcd through the JSON gateway
# here. What is tested is vgpud's handling of a txn that failed, the same for either transport
# (a reset of the gRPC transport is tested by fleet-storm's etcd kills).
os.environ["VGPU_ETCD_TRANSPORT"] = "json"
c = EtcdCluster(1)
proxy = TxnProxy(int(c.endpoints[0].rsplit(":", 1)[1]))
host = fleet_host("nvidia-mdev", 0)
kernel = FakeKernel(host.root, limit=110)
kernel.start()
CONF = fleet_conf(["http://127.0.0.1:%d" % proxy.port], "t", "host1", TTL, poll="30s")
MDEVS = host.path("sys/bus/mdev/devices")
own = set(os.listdir(MDEVS))        # the fixture's own vGPUs: an admin's, never the fleet's
daemon = Daemon(host, CONF)
# host2: NVIDIA vendor-VFIO (SR-IOV: a claim gets a VF, which has no name of its own)
host2 = fleet_host("nvidia-sriov-vfio", 1, gpus=2)
GPU2 = gpu_uuid(1, 0)     # gpu.0: 0000:41:00.0, VFs .5-.7 free, .4 an admin's
VF_TYPE = "1152"
CONF2 = CONF.replace("host = host1", "host = host2")
daemon2 = Daemon(host2, CONF2)


def get(key):
    body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
    req = urllib.request.Request(c.endpoints[0] + "/v3/kv/range", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=3) as r:
        out = json.loads(r.read().decode())
    kvs = out.get("kvs", [])
    if not kvs:
        return None, None
    return json.loads(base64.b64decode(kvs[0].get("value", "")).decode()), kvs[0]


def put(key, value, lease=None):
    args = ["put", key, json.dumps(value)] + (["--lease=%x" % lease] if lease else [])
    c.etcdctl(*args)


def delete(key):
    c.etcdctl("del", key)


def claim_doc(cid, lease_id, state="PENDING"):
    return {"claim": cid, "session": "s-" + cid, "user": "alice", "tenant": "t1", "host": "host1", "gpu": GPU,
            "kind": "vgpu", "type": TYPE, "vram_bytes": 4 << 30, "slice": None, "domain": None, "state": state,
            "host_lease": str(lease_id), "created_ms": int(time.time() * 1000),
            "deadline_ms": int(time.time() * 1000) + 60000, "instance": None, "error": None}


def place(cid, lease_id):
    put(PREFIX + "sessions/s-" + cid, {"session": "s-" + cid, "claim_key": PREFIX + "claims/host1/" + cid,
                                        "user": "alice", "tenant": "t1", "idempotency_key": cid, "created_ms": 1})
    put(PREFIX + "alloc/" + GPU, {"host": "host1", "gpu": GPU, "vram_bytes": 4 << 30, "share_percent": 0,
                                  "type_lock": TYPE, "claims": [cid]})
    put(PREFIX + "claims/host1/" + cid, claim_doc(cid, lease_id))


def claim(cid):
    return get(PREFIX + "claims/host1/" + cid)[0]


def fleet_mdevs():
    return set(os.listdir(MDEVS)) - own


def bound(cid):
    return wait(lambda: (claim(cid) or {}).get("state") == "BOUND" and claim(cid))


def kill_txns_until_one(timeout=10):
    """Reset txns from now on; return once one was reset."""
    before = proxy.killed
    proxy.fail_txn = True
    return wait(lambda: proxy.killed > before, timeout)


hk = wait(lambda: get(PREFIX + "hosts/host1")[1])
t.check(hk, "host1 joined through the proxy")
lease = int(hk["lease"]) if hk else 0

print("%5.1f s: a release whose txn fails is retried" % (time.monotonic() - T0), flush=True)
place("r1", lease)
cl = bound("r1")
t.check(cl, "r1 BOUND", claim("r1"))
cl["state"] = "RELEASING"
proxy.fail_txn = True
before = proxy.killed
put(PREFIX + "claims/host1/r1", cl)
t.check(wait(lambda: proxy.killed > before), "the release's txn was reset")
t.check(wait(lambda: cl["instance"] not in os.listdir(MDEVS)), "r1's vGPU torn down before the txn")
time.sleep(0.5)
proxy.fail_txn = False
gone = wait(lambda: claim("r1") is None, timeout=8)
t.check(gone, "the failed release was retried: r1 deleted, not RELEASING for ever", claim("r1"))
t.check(get(PREFIX + "sessions/s-r1")[0] is None and get(PREFIX + "alloc/" + GPU)[0] is None,
        "its session and alloc went with it")

print("%5.1f s: a PENDING claim deleted after a lost BOUND report" % (time.monotonic() - T0), flush=True)
proxy.fail_txn = True
before = proxy.killed
place("p1", lease)
t.check(wait(lambda: proxy.killed > before), "p1's BOUND report was reset")
made = wait(fleet_mdevs)
t.check(made, "vgpud made p1's vGPU")
t.equal((claim("p1") or {}).get("state"), "PENDING", "p1 is still PENDING (its report was lost)")
# the client gives up, the broker releases the PENDING claim: claim, session and alloc go
delete(PREFIX + "claims/host1/p1")
delete(PREFIX + "sessions/s-p1")
delete(PREFIX + "alloc/" + GPU)
time.sleep(0.3)
proxy.fail_txn = False
t.check(wait(lambda: not fleet_mdevs(), timeout=8), "p1's vGPU torn down (not leaked)", sorted(fleet_mdevs()))

print("%5.1f s: the sweep after a restart" % (time.monotonic() - T0), flush=True)
place("w1", lease)
cl = bound("w1")
t.check(cl and cl["instance"] in fleet_mdevs(), "w1 BOUND with its vGPU", claim("w1"))
daemon.signal(signal.SIGKILL)
daemon.proc.wait()
Daemon.started.remove(daemon)
delete(PREFIX + "claims/host1/w1")     # deleted while its host was down: no event will tell vgpud
delete(PREFIX + "sessions/s-w1")
delete(PREFIX + "alloc/" + GPU)
daemon = Daemon(host, CONF)
t.check(wait(lambda: not fleet_mdevs(), timeout=10), "w1's vGPU swept after the restart", sorted(fleet_mdevs()))
t.equal(set(os.listdir(MDEVS)) & own, own, "the fixture's own vGPUs (an admin's) are untouched")
hk = wait(lambda: get(PREFIX + "hosts/host1")[1] and int(get(PREFIX + "hosts/host1")[1]["lease"]) != lease
          and get(PREFIX + "hosts/host1")[1], timeout=10)
t.check(hk, "host1 joined again with a new lease")
lease = int(hk["lease"]) if hk else 0

print("%5.1f s: a teardown that fails is retried" % (time.monotonic() - T0), flush=True)
# the device refuses its removal (busy) a while: the claim stays RELEASING with the reason and
# its capacity counted, vgpud tries again with backoff, and once the device goes the claim is
# released and alloc/<gpu> loses exactly that claim
place("b1", lease)
b1 = bound("b1")
place("b2", lease)
b2 = bound("b2")
t.check(b1 and b2, "b1 and b2 BOUND", (claim("b1"), claim("b2")))
ALLOC2 = {"host": "host1", "gpu": GPU, "vram_bytes": 8 << 30, "share_percent": 0, "type_lock": TYPE,
          "claims": ["b1", "b2"]}
put(PREFIX + "alloc/" + GPU, ALLOC2)
busy_uuid = (b1 or {}).get("instance")
kernel.busy.add(busy_uuid)
t.check(wait(lambda: os.path.isdir(os.path.join(MDEVS, busy_uuid or "x", "remove"))), "b1's device is busy")
cl = claim("b1")
cl["state"] = "RELEASING"
put(PREFIX + "claims/host1/b1", cl)
failed = wait(lambda: "try 2" in ((claim("b1") or {}).get("error") or "") and claim("b1"), timeout=8)
t.check(failed and failed["state"] == "RELEASING", "the failed teardown is reported on the claim and tried again",
        claim("b1"))
t.check(busy_uuid in os.listdir(MDEVS), "b1's device is still there")
t.equal(get(PREFIX + "alloc/" + GPU)[0], ALLOC2, "its capacity is not freed while the device exists")
kernel.busy.discard(busy_uuid)
t.check(wait(lambda: claim("b1") is None, timeout=10), "b1 released once its device could go", claim("b1"))
t.check(busy_uuid not in os.listdir(MDEVS), "b1's device removed")
t.equal(get(PREFIX + "alloc/" + GPU)[0], {"host": "host1", "gpu": GPU, "vram_bytes": 4 << 30, "share_percent": 0,
                                          "type_lock": TYPE, "claims": ["b2"]},
        "alloc/<gpu> lost b1 exactly once (b2 still counted)")
t.check(get(PREFIX + "sessions/s-b1")[0] is None and get(PREFIX + "sessions/s-b2")[0] is not None,
        "b1's session deleted, b2's kept")

# the same across a restart: b2 released while vgpud is down and its device busy; the reconcile
# at the start cannot tear it down, keeps it, and tries again until it can
daemon.signal(signal.SIGKILL)
daemon.proc.wait()
Daemon.started.remove(daemon)
busy_uuid = (b2 or {}).get("instance")
kernel.busy.add(busy_uuid)
cl = claim("b2")
cl["state"] = "RELEASING"
put(PREFIX + "claims/host1/b2", cl)
t.check(wait(lambda: os.path.isdir(os.path.join(MDEVS, busy_uuid or "x", "remove"))), "b2's device is busy")
daemon = Daemon(host, CONF)
failed = wait(lambda: "tearing down failed" in ((claim("b2") or {}).get("error") or "") and claim("b2"), timeout=10)
t.check(failed and failed["state"] == "RELEASING" and busy_uuid in os.listdir(MDEVS),
        "after the restart: b2's teardown failed, reported, kept RELEASING", claim("b2"))
t.equal((get(PREFIX + "alloc/" + GPU)[0] or {}).get("claims"), ["b2"], "b2 still counted")
kernel.busy.discard(busy_uuid)
t.check(wait(lambda: claim("b2") is None, timeout=10), "b2 released by a later try", claim("b2"))
t.check(busy_uuid not in os.listdir(MDEVS) and get(PREFIX + "alloc/" + GPU)[0] is None,
        "its device gone, and the GPU's alloc with its last claim", get(PREFIX + "alloc/" + GPU)[0])
hk = wait(lambda: get(PREFIX + "hosts/host1")[1] and int(get(PREFIX + "hosts/host1")[1]["lease"]) != lease
          and get(PREFIX + "hosts/host1")[1], timeout=10)
lease = int(hk["lease"]) if hk else 0

print("%5.1f s: VF claims whose BOUND report is lost" % (time.monotonic() - T0), flush=True)
# A VF has no name of its own: only the BOUND report tells which VF a claim got. With the report
# lost, vgpud must not configure a second VF when it decides the claim again, must clear the VF
# when the claim is deleted meanwhile, and must bind the same VF after a restart.


def vf_claim(cid, lease_id):
    doc = claim_doc(cid, lease_id)
    doc.update({"host": "host2", "gpu": GPU2, "type": VF_TYPE})
    put(PREFIX + "claims/host2/" + cid, doc)


def claim2(cid):
    return get(PREFIX + "claims/host2/" + cid)[0]


def vfs_running():
    """the VFs of host2's GPU 0 that run VF_TYPE"""
    out = set()
    for fn in (4, 5, 6, 7):
        bdf = "0000:41:00.%d" % fn
        try:
            with open(host2.path("sys/bus/pci/devices/%s/nvidia/current_vgpu_type" % bdf)) as f:
                if f.read().strip() == VF_TYPE:
                    out.add(bdf)
        except OSError:
            pass
    return out


def host2_lease(other_than=None):
    kv = wait(lambda: get(PREFIX + "hosts/host2")[1] and int(get(PREFIX + "hosts/host2")[1]["lease"]) != other_than
              and get(PREFIX + "hosts/host2")[1], timeout=10)
    return int(kv["lease"]) if kv else 0


lease2 = host2_lease()
t.check(lease2, "host2 joined through the proxy")
admin_vfs = vfs_running()          # the fixture's own (an admin's): never touched
t.equal(admin_vfs, {"0000:41:00.4"}, "host2's admin VF")

# (a) the report is reset a while: vgpud lists and decides the claim again every 300 ms, and
# finds the VF it configured the first time instead of taking another
killed = proxy.killed
proxy.fail_txn = True
vf_claim("v1", lease2)
t.check(wait(lambda: proxy.killed > killed), "v1's BOUND report was reset")
t.check(wait(lambda: vfs_running() - admin_vfs), "a VF configured for v1")
time.sleep(1.5)
taken = vfs_running() - admin_vfs
t.equal(len(taken), 1, "tried again while the report fails, v1 still has one VF, not one per try (%s)" % sorted(taken))
proxy.fail_txn = False
cl = wait(lambda: (claim2("v1") or {}).get("state") == "BOUND" and claim2("v1"), timeout=8)
t.check(cl and cl["instance"] in taken, "v1 BOUND to that VF once the report goes through", claim2("v1"))
t.equal(vfs_running() - admin_vfs, taken, "no other VF taken")

# (b) the claim is deleted between the VF's creation and the report: the VF is cleared
before = vfs_running()
killed = proxy.killed
proxy.fail_txn = True
vf_claim("v2", lease2)
t.check(wait(lambda: proxy.killed > killed), "v2's BOUND report was reset")
made = wait(lambda: vfs_running() - before)
t.check(made, "a VF configured for v2", sorted(vfs_running()))
delete(PREFIX + "claims/host2/v2")
time.sleep(0.5)
proxy.fail_txn = False
t.check(wait(lambda: vfs_running() == before, timeout=8), "v2 deleted before its report: its VF cleared",
        sorted(vfs_running()))

# (c) the report lost, then vgpud killed; the claim is bound to that same VF by the reconcile
# after the restart (its VF remembered in /run/vgpuctl/fleet-vfs), not released with the VF kept
before = vfs_running()
killed = proxy.killed
proxy.fail_txn = True
vf_claim("v3", lease2)
t.check(wait(lambda: proxy.killed > killed), "v3's BOUND report was reset")
made = wait(lambda: vfs_running() - before)
t.check(made, "a VF configured for v3", sorted(vfs_running()))
daemon2.signal(signal.SIGKILL)
daemon2.proc.wait()
Daemon.started.remove(daemon2)
proxy.fail_txn = False
daemon2 = Daemon(host2, CONF2)
lease2 = host2_lease(other_than=lease2)
cl = wait(lambda: (claim2("v3") or {}).get("host_lease") == str(lease2) and claim2("v3"), timeout=10)
t.check(cl and cl["state"] == "BOUND" and made and cl["instance"] in made,
        "after the restart v3 is BOUND to the VF made for it", (claim2("v3"), sorted(made or ())))
t.equal(vfs_running() - before, made or set(), "and no other VF")
t.equal(vfs_running() & admin_vfs, admin_vfs, "the admin's VF untouched")

print("%5.1f s: BOUND fenced by the lease" % (time.monotonic() - T0), flush=True)
# hosts/host1 moves to another lease while vgpud makes the vGPU (each creation takes 1.5 s now):
# its BOUND report must not pass
other = int(c.etcdctl("lease", "grant", "60").split()[1], 16)
kernel.delay = 1.5
hv = get(PREFIX + "hosts/host1")[0]
devices = set(os.listdir(MDEVS))
place("f1", lease)
put(PREFIX + "hosts/host1", hv, lease=other)
t.check(wait(lambda: set(os.listdir(MDEVS)) - devices, timeout=8), "f1's vGPU made")
time.sleep(2)   # the report follows the creation at once
t.equal((claim("f1") or {}).get("state"), "PENDING", "no BOUND while hosts/host1 is not under vgpud's lease")

finish(t, c, [host, host2], [kernel])
