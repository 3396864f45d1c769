# SPDX-License-Identifier: LGPL-2.1-or-later
"""The etcd client (lib/fleet) against real etcd clusters: runs test-etcd's scenarios on a 3-member
cluster (kv, lease, watch, rotation past a killed member), a one-member cluster restarted under
a client (reconnect), on one with TLS and client
certificates made here by openssl, and on one with auth enabled by etcdctl; kv, lease, watch,
TLS and auth over both transports (gRPC and the JSON gateway).

Environment: TEST_ETCD (the test-etcd binary, set by tests/meson.build)."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from etcdcluster import EtcdCluster, free_port, make_certs, skip_without_etcd  # noqa: E402

TEST = os.environ["TEST_ETCD"]
passed = failed = 0


def scenario(name, env, transports=("grpc", "json")):
    """name run once per transport: etcd's gRPC API (the default) and its JSON gateway
    (VGPU_ETCD_TRANSPORT=json), which answer through the same calls."""
    global passed, failed
    for t in transports:
        p = subprocess.run([TEST, name], env=dict(os.environ, VGPU_ETCD_TRANSPORT=t, **env), capture_output=True,
                           text=True, timeout=60)
        out = (p.stdout + p.stderr).strip()
        print("[%s] %s" % (t, out), flush=True)
        if p.returncode == 0:
            passed += 1
        else:
            failed += 1
            print("FAIL: scenario %s over %s exited %d" % (name, t, p.returncode), flush=True)


def main():
    global passed, failed
    skip_without_etcd()
    with EtcdCluster(3) as c:
        eps = ",".join(c.endpoints)
        base = {"ETCD_ENDPOINTS": eps, "ETCD_CA": "", "ETCD_CERT": "", "ETCD_KEY": "", "ETCD_USER": "",
                "ETCD_PASSWORD": ""}
        scenario("codec", base, transports=("grpc",))
        scenario("protobuf", base, transports=("grpc",))
        for s in ("kv", "lease", "watch"):
            scenario(s, base)
        # failover: the leader first in the list, killed -9 by the test while it watches and writes
        lead = c.wait_leader()
        order = [c.endpoints[lead]] + [ep for i, ep in enumerate(c.endpoints) if i != lead]
        # (the rotation is the same code for both transports: once, over gRPC)
        scenario("failover", dict(base, ETCD_ENDPOINTS=",".join(order), ETCD_KILL_PID=str(c.members[lead].pid)),
                 transports=("grpc",))
        c.members[lead].wait()
        c.restart(lead)
        c.wait_leader()
        # rotation: the first endpoint's member killed -9, and a port nobody listens on before it
        dead = "http://127.0.0.1:%d" % free_port()
        c.kill(0)
        c.wait_leader()
        scenario("rotation", dict(base, ETCD_ENDPOINTS=",".join([dead] + c.endpoints),
                                  ETCD_DEAD=",".join([dead, c.endpoints[0]])), transports=("grpc",))

    # reconnect: one member, restarted between two requests of one client, over both transports
    with EtcdCluster(1) as c:
        for t in ("grpc", "json"):
            with tempfile.TemporaryDirectory(prefix="vgpu-etcd-reconnect-") as d:
                ready, restarted = os.path.join(d, "ready"), os.path.join(d, "restarted")
                env = dict(os.environ, VGPU_ETCD_TRANSPORT=t, ETCD_ENDPOINTS=c.endpoints[0], ETCD_CA="",
                           ETCD_CERT="", ETCD_KEY="", ETCD_USER="", ETCD_PASSWORD="", ETCD_READY=ready,
                           ETCD_RESTARTED=restarted)
                p = subprocess.Popen([TEST, "reconnect"], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
                deadline = time.monotonic() + 30
                while not os.path.exists(ready) and p.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                c.kill(0)
                c.restart(0)
                c.wait_leader()
                open(restarted, "w").close()
                out, _ = p.communicate(timeout=60)
                print("[%s] %s" % (t, out.strip()), flush=True)
                if p.returncode == 0:
                    passed += 1
                else:
                    failed += 1
                    print("FAIL: scenario reconnect over %s exited %d" % (t, p.returncode), flush=True)

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
