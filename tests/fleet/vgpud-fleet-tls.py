#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fleet-vgpud-tls: vgpud joins a fleet whose etcd wants TLS with client certificates and a user:
[fleet] ca, cert, key (host paths, under VGPU_ROOT), user and password, against one real etcd
member with --client-cert-auth and auth enabled (a role limited to /vgpuctl/). Proves the keys
appear bound to the lease, and that a wrong password keeps vgpud out (no keys, and it says why)."""

import base64
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from etcdcluster import EtcdCluster, make_certs, skip_without_etcd  # noqa: E402

skip_without_etcd()
if not shutil.which("openssl"):
    print("FAIL: openssl is not installed (scripts/install-deps.sh --test)")
    sys.exit(1)
from vgpudtest import Checks, Daemon, Host  # noqa: E402

PREFIX = "/vgpuctl/v1/tls/"
t = Checks("fleet-vgpud-tls")
tmp = tempfile.mkdtemp(prefix="vgpu-fleet-tls-")
certs = make_certs(tmp)
c = EtcdCluster(1, tls={"cert": certs["server"][0], "key": certs["server"][1], "ca": certs["ca"],
                        "client_cert": certs["client"][0], "client_key": certs["client"][1]})
c.etcdctl("user", "add", "root:rootpw")
c.etcdctl("role", "add", "fleet")
c.etcdctl("role", "grant-permission", "fleet", "--prefix=true", "readwrite", "/vgpuctl/")
c.etcdctl("user", "add", "vgpud:pw of vgpud")
c.etcdctl("user", "grant-role", "vgpud", "fleet")
c.etcdctl("auth", "enable")


def keys(prefix):
    out = json.loads(c.etcdctl("get", "--prefix", prefix, "-w", "json", user="root:rootpw"))
    return {base64.b64decode(kv["key"]).decode(): kv for kv in out.get("kvs", [])}


def start(name, password):
    h = Host("nvidia-mdev")
    os.makedirs(h.path("etc/vgpuctl"), exist_ok=True)
    for src, dst in ((certs["ca"], "ca.pem"), (certs["client"][0], "client.pem"), (certs["client"][1], "client.key")):
        shutil.copy(src, h.path("etc/vgpuctl/" + dst))
    conf = ("[metrics]\nlisten = off\n[daemon]\nrestore-on-start = no\n[fleet]\nendpoints = %s\ncluster = tls\n"
            "host = %s\nca = /etc/vgpuctl/ca.pem\ncert = /etc/vgpuctl/client.pem\nkey = /etc/vgpuctl/client.key\n"
            "user = vgpud\npassword = %s\nlease-ttl = 3\n" % (c.endpoints[0], name, password))
    return h, Daemon(h, conf)


h1, d1 = start("tls1", "pw of vgpud")
h2, d2 = start("tls2", "wrong")
deadline = time.monotonic() + 15
while time.monotonic() < deadline and not (PREFIX + "hosts/tls1") in keys(PREFIX):
    time.sleep(0.2)
k = keys(PREFIX)
t.check(PREFIX + "hosts/tls1" in k, "hosts/tls1 published over TLS with a client certificate and a user", d1.logtext()[-1500:])
lease = k.get(PREFIX + "hosts/tls1", {}).get("lease")
gpus = [x for x in k if x.startswith(PREFIX + "gpus/tls1/")]
t.check(len(gpus) >= 3 and all(k[x].get("lease") == lease for x in gpus), "its GPUs, bound to the same lease", gpus)
time.sleep(1)
t.check(not any(x.startswith(PREFIX + "hosts/tls2") for x in keys(PREFIX)), "a wrong password publishes nothing")
t.check("authentication failed" in d2.logtext(), "and vgpud says why", d2.logtext()[-800:])
try:
    t.done()
finally:
    c.close()
    for h in (h1, h2):
        h.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)
