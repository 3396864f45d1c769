#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fleet-broker-vgpud: the whole path with real processes on one machine, the README's quick
start: a 3-member etcd cluster, two vgpud on copies of the NVIDIA mdev fixture host (a fake
kernel each playing the mdev ABI), one vgpu-broker, and `vgpuctl fleet`. A placement made with
the CLI is realized by the chosen host's vgpud (BOUND, its mdev under that host's root); a
release marks it RELEASING and the host tears it down and finishes (claim, session, alloc gone);
a killed vgpud's GPUs are no longer offered and its claim is marked LOST by the janitor.
Needs VGPU_BROKER, VGPUD, VGPUCTL, FIXTURES, NVML_DOUBLE."""

import json
import os
import subprocess
import tempfile
import time

from fleetvgpud import Checks, EtcdCluster, Fleet, wait
from fleetsim import Broker, Gateway

TTL = 2
PREFIX = "/vgpuctl/v1/qs/"
T0 = time.monotonic()
t = Checks("fleet-broker-vgpud")
c = EtcdCluster(3)
gw = Gateway(c.endpoints)
tmp = tempfile.mkdtemp(prefix="vgpu-qs-")
vgpuds = Fleet("qs", ttl=TTL, poll="200ms", port_base=31000)
hosts, broker = vgpuds.hosts, None


def fleet(*args, rc=0):
    p = subprocess.run([os.environ["VGPUCTL"], "fleet", *args], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, VGPU_BROKER=broker.socket))
    t.check(p.returncode == rc, "vgpuctl fleet %s: exit %d" % (" ".join(args), p.returncode), p.stderr)
    print("$ vgpuctl fleet %s\n%s" % (" ".join(args), p.stdout), end="", flush=True)
    return p


try:
    for i in range(2):
        vgpuds.add(c.endpoints, "nvidia-mdev")
    t.check(wait(lambda: len(gw.range(PREFIX + "hosts/")[0]) == 2), "both vgpud joined the fleet")
    broker = Broker(os.environ["VGPU_BROKER"], c.endpoints, tmp, "broker", "--cluster", "qs", "--seed", "1",
                    "--janitor-interval", "200", "--election-ttl", "2")
    t.check(wait(lambda: len(broker.request("GET", "/v1/gpus")[2]) >= 6), "the broker sees both hosts' GPUs",
            broker.request("GET", "/v1/gpus")[2])
    fleet("hosts")
    out = fleet("place", "--type", "nvidia-232", "--user", "alice", "--key", "alice-desktop", "--json").stdout
    s = json.loads(out)
    t.check(s.get("state") == "PENDING" and s.get("host") in ("host1", "host2"), "placed PENDING on a host", s)
    hi = 0 if s.get("host") == "host1" else 1

    def state():
        return (broker.request("GET", "/v1/sessions/" + s["session"])[2] or {}).get("state")
    t.check(wait(lambda: state() == "BOUND"), "the host's vgpud realized it: BOUND", state())
    one = broker.request("GET", "/v1/sessions/" + s["session"])[2]
    inst = one.get("instance")
    t.check(inst and os.path.exists(hosts[hi].path("sys/bus/mdev/devices/" + inst)),
            "its mdev %s exists on %s" % (inst, s["host"]), one)
    fleet("sessions")
    fleet("gpus")
    p = fleet("release", s["session"])
    t.check("RELEASING" in p.stdout, "a BOUND session's release is RELEASING (the host tears down)", p.stdout)
    t.check(wait(lambda: broker.request("GET", "/v1/sessions/" + s["session"])[0] == 404),
            "the host tore it down and finished: the session is gone")
    t.check(not os.path.exists(hosts[hi].path("sys/bus/mdev/devices/" + inst)), "its mdev is gone")
    t.check(wait(lambda: gw.get(PREFIX + "alloc/" + s["gpu"]) in (None,) or
                 not gw.get(PREFIX + "alloc/" + s["gpu"])["claims"]), "its GPU's alloc has no claim left",
            gw.get(PREFIX + "alloc/" + s["gpu"]))

    # a host dies with a session on it: unoffered, the claim LOST (capacity kept)
    s2 = json.loads(fleet("place", "--type", "nvidia-232", "--prefer", "host2", "--key", "bob", "--json").stdout)
    t.check(s2.get("host") == "host2" and wait(lambda: (broker.request("GET", "/v1/sessions/" + s2["session"])[2]
                                                        or {}).get("state") == "BOUND"), "bob BOUND on host2", s2)
    killed = vgpuds.kill(1)
    t.check(wait(lambda: all(g["host"] != "host2" for g in broker.request("GET", "/v1/gpus")[2]), TTL + 3),
            "host2's GPUs unoffered after kill -9 (%.1f s)" % (time.monotonic() - killed))
    t.check(wait(lambda: (broker.request("GET", "/v1/sessions/" + s2["session"])[2] or {}).get("state") == "LOST", 5),
            "the janitor marked bob's claim LOST")
    fleet("hosts")
    t.check(time.monotonic() - T0 < 60, "bounded: %.1f s" % (time.monotonic() - T0))
finally:
    vgpuds.finish(t, c, broker)
