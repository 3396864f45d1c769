# SPDX-License-Identifier: LGPL-2.1-or-later
"""Real vgpud processes in a fleet, as the fleet tests that run them share it (fleet-vgpud,
fleet-broker-vgpud, fleet-vgpud-faults and the storm's vgpud hosts): tests/daemon's helpers
(imported after skipping without etcd, since they need vgpud's environment), copies of fixture
hosts whose GPU UUIDs are unique in the fleet, the [fleet] section of their vgpud.conf, a fake
kernel and a vgpud on each, and polling until something holds.

Needs VGPUD, VGPUCTL, FIXTURES, NVML_DOUBLE (as tests/daemon)."""

import os
import sys
import time

__all__ = ["HERE", "VGPUD", "Checks", "Daemon", "EtcdCluster", "FakeKernel", "Fleet", "Host", "finish",
           "fleet_conf", "fleet_host", "free_port", "gpu_uuid", "wait"]

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "daemon"))
sys.path.insert(0, HERE)
from etcdcluster import EtcdCluster, free_port, skip_without_etcd  # noqa: E402

skip_without_etcd()
from fakekernel import FakeKernel  # noqa: E402
from vgpudtest import VGPUD, Checks, Daemon, Host  # noqa: E402


def wait(fn, timeout=10.0):
    """fn()'s first true value within timeout seconds, polled every 50 ms; None if none came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return None


def gpu_uuid(host_index, gpu_index):
    """The UUID of GPU gpu_index on the fleet's host host_index (0-based): unique in the fleet, as
    real ones are (the fixtures all have the same)."""
    return "GPU-%08x-0000-4000-8000-%012x" % (host_index + 1, gpu_index + 1)


def fleet_host(fixture, index, gpus=3):
    """A copy of fixture with the GPU UUIDs of the fleet's host index."""
    h = Host(fixture)
    for g in range(gpus):
        h.set_nvml(g, "uuid", gpu_uuid(index, g))
    return h


def fleet_conf(endpoints, cluster, host, ttl, poll, address=None):
    """vgpud.conf for a fleet member: no metrics port, no restore at start, polling every poll."""
    return ("[metrics]\nlisten = off\n[daemon]\npoll-interval = %s\nrestore-on-start = no\n"
            "[fleet]\nendpoints = %s\ncluster = %s\nhost = %s\n%slease_ttl = %d\n"
            % (poll, ",".join(endpoints), cluster, host, "address = %s\n" % address if address else "", ttl))


class Fleet:
    """Members of cluster (hosts, kernels, daemons by index): each a fixture copy with a fake
    kernel and a vgpud whose address is 127.0.0.1:port_base + index, its GPU UUIDs those of the
    fleet's host uuid_base + index."""

    def __init__(self, cluster, ttl, poll, port_base, uuid_base=0):
        self.cluster, self.ttl, self.poll, self.port_base, self.uuid_base = cluster, ttl, poll, port_base, uuid_base
        self.hosts, self.kernels, self.daemons = [], [], []

    def add(self, endpoints, fixture, name=None, env=None):
        """A member on a copy of fixture, named name (host1, host2, ... by default), its vgpud
        started with env added to its environment; its index."""
        i = len(self.hosts)
        h = fleet_host(fixture, self.uuid_base + i)
        h.env.update(env or {})
        self.hosts.append(h)
        k = FakeKernel(h.root, limit=110)
        k.start()
        self.kernels.append(k)
        conf = fleet_conf(endpoints, self.cluster, name or "host%d" % (i + 1), self.ttl, self.poll,
                          "127.0.0.1:%d" % (self.port_base + i))
        self.daemons.append(Daemon(h, conf))
        return i

    def kill(self, i):
        """kill -9 host i's vgpud; the time it was killed (time.monotonic())."""
        d = self.daemons[i]
        d.proc.kill()
        killed = time.monotonic()
        d.proc.wait()
        Daemon.started.remove(d)        # killed on purpose: not checked for a clean exit
        return killed

    def finish(self, t, cluster, broker=None):
        finish(t, cluster, self.hosts, self.kernels, broker)


def finish(t, cluster, hosts, kernels=(), broker=None):
    """The end of a test: stop the fake kernels and broker (a fleetsim.Broker: its log printed
    when t failed), let t stop and check the daemons and exit, then end etcd (if cluster) and
    remove the hosts."""
    for k in kernels:
        k.stopping = True
    if broker:
        broker.stop()
        if t.failed:
            print(broker.logtext())
    try:
        t.done()
    finally:
        if cluster:
            cluster.close()
        for h in hosts:
            h.cleanup()
