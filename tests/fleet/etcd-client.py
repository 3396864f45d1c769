# SPDX-License-Identifier: LGPL-2.1-or-later
"""The etcd client (lib/fleet) against real etcd clusters: runs test-etcd's scenarios on a 3-member
cluster (kv, lease, watch, rotation past a killed member), on one with TLS and client
certificates made here by openssl, and on one with auth enabled by etcdctl.

Environment: TEST_ETCD (the test-etcd binary, set by tests/meson.build)."""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from etcdcluster import EtcdCluster, free_port, make_certs, skip_without_etcd  # noqa: E402

TEST = os.environ["TEST_ETCD"]
passed = failed = 0


def scenario(name, env):
    global passed, failed
    p = subprocess.run([TEST, name], env=dict(os.environ, **env), capture_output=True, text=True, timeout=60)
    out = (p.stdout + p.stderr).strip()
    print(out, flush=True)
    if p.returncode == 0:
        passed += 1
    else:
        failed += 1
        print("FAIL: scenario %s exited %d" % (name, p.returncode), flush=True)


def main():
    global failed
    skip_without_etcd()
    with EtcdCluster(3) as c:
        eps = ",".join(c.endpoints)
        base = {"ETCD_ENDPOINTS": eps, "ETCD_CA": "", "ETCD_CERT": "", "ETCD_KEY": "", "ETCD_USER": "",
                "ETCD_PASSWORD": ""}
        for s in ("codec", "kv", "lease", "watch"):
            scenario(s, base)
        # failover: the leader first in the list, killed -9 by the test while it watches and writes
        lead = c.wait_leader()
        order = [c.endpoints[lead]] + [ep for i, ep in enumerate(c.endpoints) if i != lead]
        scenario("failover", dict(base, ETCD_ENDPOINTS=",".join(order), ETCD_KILL_PID=str(c.members[lead].pid)))
        c.members[lead].wait()
        c.restart(lead)
        c.wait_leader()
        # rotation: the first endpoint's member killed -9, and a port nobody listens on before it
        dead = "http://127.0.0.1:%d" % free_port()
        c.kill(0)
        c.wait_leader()
        scenario("rotation", dict(base, ETCD_ENDPOINTS=",".join([dead] + c.endpoints),
                                  ETCD_DEAD=",".join([dead, c.endpoints[0]])))

    if not shutil.which("openssl"):
        print("FAIL: openssl is not installed (scripts/install-deps.sh --test): no TLS scenario")
        failed += 1
    else:
        with tempfile.TemporaryDirectory(prefix="vgpu-etcd-tls-") as d:
            certs = make_certs(d)
            tls = {"cert": certs["server"][0], "key": certs["server"][1], "ca": certs["ca"],
                   "client_cert": certs["client"][0], "client_key": certs["client"][1]}
            with EtcdCluster(1, tls=tls) as c:
                scenario("tls", {"ETCD_ENDPOINTS": ",".join(c.endpoints), "ETCD_CA": certs["ca"],
                                 "ETCD_CERT": certs["client"][0], "ETCD_KEY": certs["client"][1],
                                 "ETCD_USER": "", "ETCD_PASSWORD": ""})

    with EtcdCluster(3) as c:
        # etcd refuses "auth enable" without a root user; the fleet's user may only touch /vgpuctl/
        c.etcdctl("user", "add", "root:rootpw")
        c.etcdctl("role", "add", "fleet")
        c.etcdctl("role", "grant-permission", "fleet", "--prefix=true", "readwrite", "/vgpuctl/")
        c.etcdctl("user", "add", "vgpud:s3cret pass")
        c.etcdctl("user", "grant-role", "vgpud", "fleet")
        c.etcdctl("auth", "enable")
        scenario("auth", {"ETCD_ENDPOINTS": ",".join(c.endpoints), "ETCD_CA": "", "ETCD_CERT": "", "ETCD_KEY": "",
                          "ETCD_USER": "vgpud", "ETCD_PASSWORD": "s3cret pass"})

    print("etcd-client: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
