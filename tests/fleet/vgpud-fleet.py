#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fleet-vgpud: vgpud joins a fleet in a real 3-member etcd cluster. Three vgpud processes on
copies of the NVIDIA mdev fixture host (each with its own GPU UUIDs), a fake kernel each
(fakekernel.py) playing the mdev ABI, lease TTL 2 s.

Proves: hosts/<host> and gpus/<host>/<gpu> appear bound to the host's lease (offered types with
free instances); a claim written as a broker writes it becomes BOUND and its mdev exists under
the fixture root; a claim fenced by another lease is left alone; RELEASING tears down and deletes
the claim and its session and takes it out of alloc/<gpu>; deleting a BOUND claim tears down;
kill -9 makes a host's keys vanish within TTL + 1 s; SIGSTOP for 2 x TTL then SIGCONT: a new
lease, the claim whose instance runs BOUND again with it, the one whose instance went released,
alloc/<gpu> rewritten."""

import base64
import json
import os
import signal
import time
import urllib.request

import fleetvgpud
from fleetvgpud import Checks, EtcdCluster, Fleet

TTL = 2
PREFIX = "/vgpuctl/v1/t/"
PARENT = "0000:af:00.0"
TYPE = "nvidia-232"
T0 = time.monotonic()

t = Checks("fleet-vgpud")
c = EtcdCluster(3)


def kvs(prefix):
    """{key: (value, kv)} under prefix, read through etcd's JSON gateway (no etcdctl process per
    read: the timing checks measure etcd, not process start-up on a loaded machine)."""
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    body = json.dumps({"key": base64.b64encode(prefix.encode()).decode(),
                       "range_end": base64.b64encode(end.encode()).decode()}).encode()
    for ep in [m.endpoint for i, m in enumerate(c.members) if i not in paused]:
        try:
            req = urllib.request.Request(ep + "/v3/kv/range", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=3) as r:
                out = json.loads(r.read().decode())
            break
        except OSError:
            continue
    else:
        raise RuntimeError("no etcd member answers")
    res = {}
    for kv in out.get("kvs", []):
        k = base64.b64decode(kv["key"]).decode()
        v = base64.b64decode(kv.get("value", "")).decode()
        res[k] = (v, kv)
    return res


def get(key):
    r = kvs(key)
    if key not in r:
        return None, None
    v, kv = r[key]
    try:
        return json.loads(v), kv
    except ValueError:
        return v, kv


paused = set()      # etcd members stopped by the test: not asked


def live():
    return [m.endpoint for i, m in enumerate(c.members) if i not in paused and m.alive()]


def put(key, value):
    c.etcdctl("put", key, json.dumps(value) if not isinstance(value, str) else value, endpoints=live())


def wait(what, fn, timeout=10.0):
    return fleetvgpud.wait(fn, timeout)


vgpuds = Fleet("t", ttl=TTL, poll="30s", port_base=30000)
# host2's GPUs are NVIDIA vendor-VFIO (SR-IOV: types on VFs); host3 has no vGPU parents at all:
# its GPUs are offered as slices
for fixture in ("nvidia-mdev", "nvidia-sriov-vfio", "nvidia-baremetal"):
    vgpuds.add(c.endpoints, fixture)
hosts, daemons = vgpuds.hosts, vgpuds.daemons


def gpu_of(i, index=2):
    return fleetvgpud.gpu_uuid(i, index)       # gpu.2 is 0000:af:00.0


print("%5.1f s: membership" % (time.monotonic() - T0), flush=True)
T1 = time.monotonic()  # etcd and the daemons are up (slow on a loaded machine): the fleet's part from here
# ---- membership ----
def host_key(i):
    return PREFIX + "hosts/host%d" % (i + 1)


for i in range(3):
    ok = wait("hosts", lambda: get(host_key(i))[0] and len(kvs(PREFIX + "gpus/host%d/" % (i + 1))) >= 2)
    t.check(ok, "host%d published hosts/ and its gpus/ keys" % (i + 1), list(kvs(PREFIX)))
value, kv = get(host_key(0))
lease = int(kv["lease"]) if kv else 0
t.check(lease != 0 and value and value.get("lease") == str(lease), "hosts/host1 is bound to the lease it names", (value, kv))
t.equal(value and value.get("address"), "127.0.0.1:30000", "hosts/host1 address")
g, gkv = get(PREFIX + "gpus/host1/" + gpu_of(0))
t.check(g and int(gkv["lease"]) == lease, "gpus/host1/<gpu> bound to the same lease", (g, gkv))
t.equal(g and g.get("pci_address"), PARENT, "gpu's PCI address")
t.equal(g and g.get("mode"), "vgpu", "gpu mode")
types = {x["name"]: x for x in (g or {}).get("types", [])}
t.check(TYPE in types and types[TYPE]["free_instances"] > 0, "offers %s with free instances" % TYPE, g)
free_before = types.get(TYPE, {}).get("free_instances", 0)


print("%5.1f s: a claim as a broker writes it" % (time.monotonic() - T0), flush=True)
# ---- a claim as a broker writes it: claim, alloc, session ----
def delete(key):
    c.etcdctl("del", key, endpoints=live())


def claim_doc(cid, host_i, lease_id, state="PENDING", instance=None):
    return {"claim": cid, "session": "s-" + cid, "user": "alice", "tenant": "t1", "host": "host%d" % (host_i + 1),
            "gpu": gpu_of(host_i), "kind": "vgpu", "type": TYPE, "vram_bytes": 2147483648, "slice": None,
            "domain": None, "state": state, "host_lease": str(lease_id), "created_ms": int(time.time() * 1000),
            "deadline_ms": int(time.time() * 1000) + 30000, "instance": instance, "error": None}


def place(cid, host_i, lease_id, others=()):
    put(PREFIX + "sessions/s-" + cid, {"session": "s-" + cid, "claim_key": "claims/host%d/%s" % (host_i + 1, cid),
                                        "user": "alice", "tenant": "t1", "idempotency_key": cid, "created_ms": 1})
    claims = list(others) + [cid]
    put(PREFIX + "alloc/" + gpu_of(host_i), {"host": "host%d" % (host_i + 1), "gpu": gpu_of(host_i),
                                             "vram_bytes": 2147483648 * len(claims), "share_percent": 0,
                                             "type_lock": TYPE, "claims": claims})
    put(PREFIX + "claims/host%d/%s" % (host_i + 1, cid), claim_doc(cid, host_i, lease_id))


def claim(host_i, cid):
    return get(PREFIX + "claims/host%d/%s" % (host_i + 1, cid))[0]


def mdev_exists(host_i, uuid):
    return uuid and os.path.exists(hosts[host_i].path("sys/bus/mdev/devices/" + uuid))


place("c1", 0, lease)
cl = wait("bound", lambda: (claim(0, "c1") or {}).get("state") == "BOUND" and claim(0, "c1"))
t.check(cl, "claim c1 became BOUND", claim(0, "c1"))
inst = (cl or {}).get("instance")
t.check(mdev_exists(0, inst), "c1's mdev %s exists under the fixture root" % inst)
g2 = wait("inventory", lambda: {x["name"]: x for x in get(PREFIX + "gpus/host1/" + gpu_of(0))[0]["types"]}[TYPE]
          ["free_instances"] == free_before - 1, timeout=6)
# poll-interval is 30 s: only the worker's wake-up of the event loop makes it this quick
t.check(g2, "gpus/host1/<gpu> republished with one instance less within 6 s")

print("%5.1f s: fenced" % (time.monotonic() - T0), flush=True)
# fenced: placed on a lease that is not host1's
devices_before = sorted(os.listdir(hosts[0].path("sys/bus/mdev/devices")))
place("c2", 0, lease + 7, others=["c1"])
time.sleep(1.5)
t.equal((claim(0, "c2") or {}).get("state"), "PENDING", "a claim fenced by another lease stays PENDING")
t.equal(sorted(os.listdir(hosts[0].path("sys/bus/mdev/devices"))), devices_before, "and nothing was created for it")
delete(PREFIX + "claims/host1/c2")
put(PREFIX + "alloc/" + gpu_of(0), {"host": "host1", "gpu": gpu_of(0), "vram_bytes": 2147483648, "share_percent": 0,
                                    "type_lock": TYPE, "claims": ["c1"]})

print("%5.1f s: release" % (time.monotonic() - T0), flush=True)
# release: RELEASING -> torn down, claim + session deleted, alloc and the tenant's usage
# decremented in one txn (the last claim gone: alloc/<gpu> goes, as the brokers' release does)
put(PREFIX + "quota/t1", {"vram_bytes": 2147483648, "sessions": 1})
cur = claim(0, "c1")
cur["state"] = "RELEASING"
put(PREFIX + "claims/host1/c1", cur)
gone = wait("released", lambda: claim(0, "c1") is None)
t.check(gone, "RELEASING claim c1 deleted by vgpud", claim(0, "c1"))
t.check(not mdev_exists(0, inst), "c1's mdev removed")
t.check(get(PREFIX + "sessions/s-c1")[0] is None, "c1's session deleted")
a = get(PREFIX + "alloc/" + gpu_of(0))[0]
t.check(a is None, "alloc/<gpu> of the last claim deleted", a)
t.equal(get(PREFIX + "quota/t1")[0], {"vram_bytes": 0, "sessions": 0}, "tenant usage decremented")

# deletion of a BOUND claim tears down
place("c3", 0, lease)
cl = wait("bound", lambda: (claim(0, "c3") or {}).get("state") == "BOUND" and claim(0, "c3"))
inst3 = (cl or {}).get("instance")
t.check(mdev_exists(0, inst3), "c3 BOUND with its mdev")
delete(PREFIX + "claims/host1/c3")
t.check(wait("torn down", lambda: not mdev_exists(0, inst3)), "deleting c3 tore its mdev down")
put(PREFIX + "alloc/" + gpu_of(0), {"host": "host1", "gpu": gpu_of(0), "vram_bytes": 0, "share_percent": 0,
                                    "type_lock": None, "claims": []})

# a claim that fails: a type the GPU does not offer -> FAILED with the library's error
bad = claim_doc("c4", 0, lease)
bad["type"] = "nvidia-999"
put(PREFIX + "claims/host1/c4", bad)
cl = wait("failed", lambda: (claim(0, "c4") or {}).get("state") == "FAILED" and claim(0, "c4"))
t.check(cl and cl.get("error"), "a claim of a type not offered is FAILED with an error", claim(0, "c4"))
delete(PREFIX + "claims/host1/c4")

print("%5.1f s: a slice claim on host3" % (time.monotonic() - T0), flush=True)
# a slice claim on host3 (a GPU in slice mode): a software slice with the claim's memory and share
g3 = get(PREFIX + "gpus/host3/" + gpu_of(2))[0] or {}
t.equal(g3.get("mode"), "slice", "host3's GPU is offered as slices")
cap = (g3.get("slice_capacity") or {}).get("memory_bytes", 0)
t.check(cap > 2 ** 30, "with slice capacity", g3)
_, h3kv = get(host_key(2))
sl = claim_doc("s1", 2, int(h3kv["lease"]) if h3kv else 0)
sl.update({"kind": "slice", "type": None, "vram_bytes": 2 ** 30, "slice": {"memory_bytes": 2 ** 30, "share_percent": 25}})
put(PREFIX + "claims/host3/s1", sl)
cl = wait("bound", lambda: (claim(2, "s1") or {}).get("state") in ("BOUND", "FAILED") and claim(2, "s1"))
name = (cl or {}).get("instance") or ""
t.check(cl and cl["state"] == "BOUND" and name.startswith("fleet-"), "slice claim s1 BOUND", cl)
region = hosts[2].path("run/vgpuctl/slices/%s.slice" % name)
t.check(name and os.path.exists(region), "its slice region exists under the fixture root", region)
# the fleet's own slices are published apart (alloc/ counts them as claims): the capacity stays
t.check(wait("capacity", lambda: (get(PREFIX + "gpus/host3/" + gpu_of(2))[0] or {}).get("slice_capacity", {})
             .get("fleet_memory_bytes") == 2 ** 30, timeout=6), "the fleet's 1 GiB slice republished within 6 s")
t.equal((get(PREFIX + "gpus/host3/" + gpu_of(2))[0] or {}).get("slice_capacity", {}).get("memory_bytes"), cap,
        "the slice capacity leaves the fleet's own slices out")
delete(PREFIX + "claims/host3/s1")
t.check(wait("gone", lambda: not os.path.exists(region)), "deleting s1 destroyed the slice")

print("%5.1f s: kill -9" % (time.monotonic() - T0), flush=True)
# vendor-VFIO on host2: the type is offered by the GPU's free VFs; the claim gets one of them
VF_TYPE = "1152"
gv = get(PREFIX + "gpus/host2/" + gpu_of(1, 0))[0] or {}
vtypes = {x["name"]: x for x in gv.get("types", [])}
t.check(gv.get("mode") == "vgpu" and vtypes.get(VF_TYPE, {}).get("free_instances") == 3,
        "host2's SR-IOV GPU offers %s on its 3 free VFs" % VF_TYPE, gv)
_, h2kv = get(host_key(1))
vc = claim_doc("v1", 1, int(h2kv["lease"]) if h2kv else 0)
vc.update({"gpu": gpu_of(1, 0), "type": VF_TYPE})
put(PREFIX + "claims/host2/v1", vc)
cl = wait("bound", lambda: (claim(1, "v1") or {}).get("state") in ("BOUND", "FAILED") and claim(1, "v1"))
vf = (cl or {}).get("instance") or ""
t.check(cl and cl["state"] == "BOUND" and vf.startswith("0000:41:00."), "vendor-VFIO claim v1 BOUND to a VF", cl)


def vf_type(bdf):
    try:
        return open(hosts[1].path("sys/bus/pci/devices/%s/nvidia/current_vgpu_type" % bdf)).read().strip()
    except OSError:
        return None


t.equal(vf_type(vf), VF_TYPE, "the VF %s runs type %s" % (vf, VF_TYPE))
t.check(wait("republished", lambda: {x["name"]: x for x in get(PREFIX + "gpus/host2/" + gpu_of(1, 0))[0]["types"]}
             .get(VF_TYPE, {}).get("free_instances") == 2, timeout=6), "one VF less offered, within 6 s")
cur = claim(1, "v1")
if cur:
    cur["state"] = "RELEASING"
    put(PREFIX + "claims/host2/v1", cur)
t.check(wait("released", lambda: claim(1, "v1") is None), "RELEASING v1 finished by vgpud")
t.equal(vf_type(vf), "0", "the VF's type cleared")

# ---- an etcd member that hangs (SIGSTOP: no reset, no answer): vgpud's watch resumes elsewhere ----
# vgpud's clients start on the first endpoint; that member stops (not the leader: an election
# would be another test), and a claim placed through the others is still realized
c.move_leader(1)
c.pause(0)
paused.add(0)
t_pause = time.monotonic()
place("p1", 0, lease)
cl = wait("bound", lambda: (claim(0, "p1") or {}).get("state") == "BOUND" and claim(0, "p1"), timeout=20)
print("claim realized %.1f s after member m1 stopped" % (time.monotonic() - t_pause))
t.check(cl and mdev_exists(0, cl["instance"]), "claim p1 BOUND while the watched etcd member hangs", claim(0, "p1"))
t.equal(int((get(host_key(0))[1] or {}).get("lease", 0)), lease, "host1 kept its lease meanwhile")
c.resume(0)
paused.discard(0)
cur = claim(0, "p1")
if cur:
    cur["state"] = "RELEASING"
    put(PREFIX + "claims/host1/p1", cur)
t.check(wait("released", lambda: claim(0, "p1") is None), "p1 released")

# ---- kill -9: the host's keys go with its lease ----
killed = vgpuds.kill(1)
vanished = wait("vanished", lambda: not kvs(PREFIX + "hosts/host2") and not kvs(PREFIX + "gpus/host2/"), timeout=TTL + 3)
took = time.monotonic() - killed
print("host2's keys vanished %.2f s after kill -9 (TTL %d s)" % (took, TTL))
t.check(vanished and took <= TTL + 1, "keys of a killed vgpud gone within TTL + 1 s (%.2f s)" % took)
t.check(get(host_key(2))[0] is not None, "host3 still there")

print("%5.1f s: SIGSTOP" % (time.monotonic() - T0), flush=True)
# ---- SIGSTOP for 2 x TTL, SIGCONT: reconcile ----
place("k1", 0, lease)
place("k2", 0, lease, others=["k1"])
k1 = wait("bound", lambda: (claim(0, "k1") or {}).get("state") == "BOUND" and claim(0, "k1"))
k2 = wait("bound", lambda: (claim(0, "k2") or {}).get("state") == "BOUND" and claim(0, "k2"))
t.check(k1 and k2, "k1 and k2 BOUND before the partition", (claim(0, "k1"), claim(0, "k2")))
put(PREFIX + "quota/t1", {"vram_bytes": 2 * 2147483648, "sessions": 2})
d1 = daemons[0]
d1.signal(signal.SIGSTOP)
stopped_at = time.monotonic()
# while it is away: k2's instance goes (a reboot, an admin), a broker marks both LOST
if k2:
    with open(hosts[0].path("sys/bus/mdev/devices/%s/remove" % k2["instance"]), "w") as f:
        f.write("1")
    wait("removed", lambda: not mdev_exists(0, k2["instance"]))
t.check(wait("gone", lambda: not kvs(host_key(0)), timeout=TTL + 3), "stopped host1's keys expired")
for cid in ("k1", "k2"):
    cur = claim(0, cid)
    if cur:
        cur["state"] = "LOST"
        put(PREFIX + "claims/host1/" + cid, cur)
time.sleep(max(0.0, 2 * TTL - (time.monotonic() - stopped_at)))
d1.signal(signal.SIGCONT)
back = wait("back", lambda: get(host_key(0))[1] and int(get(host_key(0))[1]["lease"]) != lease and get(host_key(0)), timeout=10)
t.check(back, "host1 rejoined with a new lease")
new_lease = int(get(host_key(0))[1]["lease"]) if back else 0
k1 = wait("rebound", lambda: (claim(0, "k1") or {}).get("host_lease") == str(new_lease) and claim(0, "k1"))
t.check(k1 and k1["state"] == "BOUND" and mdev_exists(0, k1["instance"]),
        "k1 (instance runs) BOUND again with the new lease", claim(0, "k1"))
t.check(wait("released", lambda: claim(0, "k2") is None), "k2 (instance gone) released", claim(0, "k2"))
t.check(get(PREFIX + "sessions/s-k2")[0] is None and get(PREFIX + "sessions/s-k1")[0] is not None,
        "k2's session deleted, k1's kept")
a = get(PREFIX + "alloc/" + gpu_of(0))[0]
t.check(a and a["claims"] == ["k1"] and a["vram_bytes"] == 2147483648 and a["type_lock"] == TYPE,
        "alloc rewritten from the claims that stay", a)
t.equal(get(PREFIX + "quota/t1")[0], {"vram_bytes": 2147483648, "sessions": 1}, "k2 taken out of the tenant's usage")

t.check(time.monotonic() - T1 < 60, "bounded: %.1f s after the start" % (time.monotonic() - T1))
vgpuds.finish(t, c)
