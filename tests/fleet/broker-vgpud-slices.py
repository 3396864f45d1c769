#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fleet-broker-vgpud-slices: a GPU in slice mode takes as many fleet sessions as its slice
capacity holds, with real processes: one etcd member, one vgpud on a copy of the bare-metal
NVIDIA fixture (no vGPU parents: its GPUs are offered as software slices), one vgpu-broker.

The host's gpus/ value publishes what its slices leave and, apart, the fleet's own slices; the
broker's alloc/<gpu> counts the same slices as claims. Proves: with one GPU of 15 GiB, five
3 GiB sessions are placed one after the other, each realized (BOUND, the host's inventory
republished) before the next, and the sixth is refused; an admin's slice made outside the fleet
takes its memory from the capacity. FAILS on the code that subtracted the fleet's realized
slices in the inventory and counted them in alloc too (the fourth was refused).
Needs VGPU_BROKER, VGPUD, FIXTURES, NVML_DOUBLE."""

import os
import subprocess
import tempfile
import time

from fleetvgpud import Checks, Daemon, EtcdCluster, finish, fleet_conf, fleet_host, gpu_uuid, wait
from fleetsim import GiB, Broker, Gateway

PREFIX = "/vgpuctl/v1/sl/"
GPU = gpu_uuid(6, 0)      # gpu.0: 15 GiB
T0 = time.monotonic()
t = Checks("fleet-broker-vgpud-slices")
c = EtcdCluster(1)
gw = Gateway(c.endpoints)
tmp = tempfile.mkdtemp(prefix="vgpu-slices-")
host = fleet_host("nvidia-baremetal", 6)
broker = None


def inventory():
    return gw.get(PREFIX + "gpus/host1/" + GPU) or {}


def state(sid):
    return (broker.request("GET", "/v1/sessions/" + sid)[2] or {}).get("state")


try:
    # one GPU takes the sessions: the other two are too small for a 3 GiB slice
    host.set_nvml(1, "memory_total", 2 * GiB)
    host.set_nvml(2, "memory_total", 2 * GiB)
    daemon = Daemon(host, fleet_conf(c.endpoints[:1], "sl", "host1", 3, poll="200ms"))
    g0 = wait(lambda: inventory().get("mode") == "slice" and inventory())
    t.check(g0, "host1's GPU is offered as slices", gw.range(PREFIX)[0])
    cap = (g0 or {}).get("slice_capacity", {}).get("memory_bytes", 0)
    t.equal(cap, 15 * GiB, "its slice capacity is the whole GPU")
    broker = Broker(os.environ["VGPU_BROKER"], c.endpoints, tmp, "broker", "--cluster", "sl", "--seed", "1",
                    "--hold-ttl", "0")
    t.check(wait(lambda: any(g.get("gpu") == GPU for g in broker.request("GET", "/v1/gpus")[2])),
            "the broker sees the GPU", broker.request("GET", "/v1/gpus")[2])

    placed = []
    for i in range(6):
        before = inventory()
        st, _, s = broker.request("POST", "/v1/sessions", {"user": "alice", "memory_bytes": 3 * GiB,
                                                             "idempotency_key": "slice-%d" % i})
        if i < 5:
            t.check(st == 201 and s.get("gpu") == GPU, "session %d of 5 placed on the 15 GiB GPU" % (i + 1), (st, s))
            if st != 201:
                break
            placed.append(s)
            t.check(wait(lambda: state(s["session"]) == "BOUND"), "session %d realized: BOUND" % (i + 1),
                    state(s["session"]))
            # the host republishes its slices (polled at once after a creation); the broker's
            # watch brings it before the next placement
            t.check(wait(lambda: inventory().get("slice_capacity") != before.get("slice_capacity")),
                    "host1 republished its slices after session %d" % (i + 1), inventory())
            time.sleep(0.3)
        else:
            t.check(st == 503, "the sixth 3 GiB session is refused: the GPU is full", (st, s))
    sc = inventory().get("slice_capacity", {})
    t.equal((sc.get("memory_bytes"), sc.get("fleet_memory_bytes")), (15 * GiB, 15 * GiB),
            "gpus/: the capacity, and the fleet's slices apart")
    alloc = gw.get(PREFIX + "alloc/" + GPU) or {}
    t.equal((alloc.get("vram_bytes"), len(alloc.get("claims", []))), (15 * GiB, 5), "alloc counts the 5 claims once")

    # release two; an admin makes a 3 GiB slice outside the fleet: it takes from the capacity,
    # so one fleet session fits again, not two
    for s in placed[:2]:
        broker.request("DELETE", "/v1/sessions/" + s["session"])
    t.check(wait(lambda: all(broker.request("GET", "/v1/sessions/" + s["session"])[0] == 404 for s in placed[:2])),
            "two sessions released by the host")
    p = subprocess.run([os.environ["VGPUCTL"], "slice", "create", "admin1", "--gpu", "0000:3b:00.0",
                        "--memory", "3G"], env=host.env, capture_output=True, text=True, timeout=30)
    t.check(p.returncode == 0, "an admin's slice created outside the fleet", p.stderr)
    t.check(wait(lambda: inventory().get("slice_capacity", {}).get("memory_bytes") == 12 * GiB),
            "the admin's slice leaves 12 GiB of capacity", inventory())
    time.sleep(0.3)
    st, _, s = broker.request("POST", "/v1/sessions", {"memory_bytes": 3 * GiB, "idempotency_key": "after-admin-1"})
    t.check(st == 201, "one fleet session fits beside the admin's slice", (st, s))
    if st == 201:
        t.check(wait(lambda: state(s["session"]) == "BOUND"), "and is realized", state(s["session"]))
        wait(lambda: inventory().get("slice_capacity", {}).get("fleet_memory_bytes") == 12 * GiB)
        time.sleep(0.3)
    st, _, s = broker.request("POST", "/v1/sessions", {"memory_bytes": 3 * GiB, "idempotency_key": "after-admin-2"})
    t.check(st == 503, "a second does not: 4 fleet and 1 admin slices of 3 GiB fill the GPU", (st, s))
    t.check(time.monotonic() - T0 < 90, "bounded: %.1f s" % (time.monotonic() - T0))
finally:
    finish(t, c, [host], broker=broker)
