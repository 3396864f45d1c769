#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fleet.py BROKER_EXE DIR — a small fleet for run.sh's vgpu_session tests: a real 1-member etcd,
two synthetic hosts written into etcd as vgpud would (tests/fleet/fleetsim.py), and a real
vgpu-broker on a UNIX socket in DIR. Prints "SOCKET ETCD_ENDPOINT" when the broker is ready, then
runs until its stdin closes, and stops everything. Exits 77 without etcd."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fleet"))
from etcdcluster import EtcdCluster, skip_without_etcd  # noqa: E402
from fleetsim import Broker, Gateway, SyntheticHost, t4_gpu  # noqa: E402


def main():
    skip_without_etcd()
    exe, tmp = sys.argv[1], sys.argv[2]
    os.makedirs(tmp, exist_ok=True)
    with EtcdCluster(1) as cluster:
        gw = Gateway(cluster.endpoints)
        hosts = [SyntheticHost(gw, h, [t4_gpu(h, "GPU-%s-0" % h)], ttl=5) for h in ("ans-a", "ans-b")]
        # no vgpud realizes the claims here: they stay PENDING, so the janitor must not expire them
        b = Broker(exe, cluster.endpoints, tmp, "broker", "--pending-timeout", "3600", "--seed", "1")
        try:
            print(b.socket, cluster.endpoints[0], flush=True)
            sys.stdin.read()
        finally:
            b.stop()
            for h in hosts:
                h.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
