# SPDX-License-Identifier: LGPL-2.1-or-later
"""vgpu-broker's placement index (src/vgpu-broker/place-index.c) kept current by the cache, on a
static fleet: hosts written once (stormlib.bulk_hosts), so no GPU key is re-published and only
the index's own bookkeeping can keep it right. The broker runs with VGPU_BROKER_CHECK_INDEX=1: each
placement drawn from the index is also placed by the full scan, any disagreement logged. Then:
places; a cordon and an uncordon (the host's GPUs leave and rejoin the index without a GPU key
changing); a host key deleted and written again while its GPU keys stay; a host added (slots
appended) and GPU keys deleted (the last slot moves into the hole). After each, placements:
nothing on a cordoned or dead host, and the broker's log never says the index disagreed."""

import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from etcdcluster import EtcdCluster, skip_without_etcd  # noqa: E402
import stormlib  # noqa: E402
from stormlib import Broker, Etcd, gpu_id, gpu_value, host_value  # noqa: E402
from checks import Tally  # noqa: E402

BROKER = os.environ["VGPU_BROKER"]
CLUSTER = "index"
PREFIX = "/vgpuctl/v1/%s/" % CLUSTER


check = Tally()


def metric(b, name):
    _, text = b.request("GET", "/metrics")
    return sum(float(line.split()[-1]) for line in str(text).splitlines() if line.startswith(name + " "))


def place(b, tag, n, kind):
    hosts = []
    for i in range(n):
        body = {"user": "u", "idempotency_key": "%s-%d" % (tag, i)}
        body.update({"type": "nvidia-231"} if kind == "type" else {"vram_bytes": 2 << 30})
        st, got = b.request("POST", "/v1/sessions", body)
        check(st == 201, "%s: placed %d" % (tag, i), got)
        hosts.append(got.get("host") if isinstance(got, dict) else None)
    return hosts


def index_lines(b):
    return [line for line in b.logtext().splitlines() if "placement index" in line]


def main():
    skip_without_etcd()
    os.environ["VGPU_BROKER_CHECK_INDEX"] = "1"
    work = tempfile.mkdtemp(prefix="vgpu-broker-index-")
    b = None
    try:
        with EtcdCluster(1) as c:
            e = Etcd(c.endpoints)
            lease = stormlib.bulk_hosts(e, PREFIX, 6, 4, name="h%d")
            b = Broker(BROKER, c.endpoints, CLUSTER, work, 0).start()
            for kind in ("type", "vram"):
                place(b, "warm-" + kind, 8, kind)
            check(not index_lines(b), "a fresh fleet: the index agrees", index_lines(b))

            st, _ = b.request("POST", "/v1/hosts/h0/cordon")
            check(st == 200, "cordon h0")
            for kind in ("type", "vram"):
                got = place(b, "cordoned-" + kind, 12, kind)
                check("h0" not in got, "%s: nothing on the cordoned h0" % kind, got)
            b.request("POST", "/v1/hosts/h0/uncordon")
            place(b, "uncordoned", 12, "type")
            check(not index_lines(b), "cordon, uncordon: the index agrees", index_lines(b))

            e.post("/v3/kv/deleterange", {"key": stormlib.b64(PREFIX + "hosts/h1")})
            for kind in ("type", "vram"):
                got = place(b, "dead-" + kind, 12, kind)
                check("h1" not in got, "%s: nothing on h1, its host key gone" % kind, got)
            e.put_lease(PREFIX + "hosts/h1", host_value("h1", lease), lease)
            place(b, "back", 12, "type")
            check(not index_lines(b), "a host key gone and back: the index agrees", index_lines(b))

            e.txn([], [("put", PREFIX + "hosts/h9", host_value("h9", lease), lease)] +
                  [("put", PREFIX + "gpus/h9/" + gpu_id("h9", i), gpu_value("h9", i), lease) for i in range(4)])
            for gone in (gpu_id("h2", 0), gpu_id("h5", 3)):     # one in the middle, the last one
                host = gone.split("-")[1]
                e.post("/v3/kv/deleterange", {"key": stormlib.b64(PREFIX + "gpus/%s/%s" % (host, gone))})
            for kind in ("type", "vram"):
                got = place(b, "moved-" + kind, 16, kind)
            check(not index_lines(b), "GPUs added and removed: the index agrees", index_lines(b))
            check(metric(b, "vgpu_broker_placements_indexed_total") >= 100,
                  "the placements were drawn from the index", metric(b, "vgpu_broker_placements_indexed_total"))
            check(metric(b, "vgpu_broker_index_mismatches_total") == 0, "no index mismatch counted")
    finally:
        if b:
            b.stop()
            if check.failed:
                print("--- broker log ---\n" + b.logtext()[-4000:])
        shutil.rmtree(work, ignore_errors=True)
    check.exit("fleet-broker-index")


if __name__ == "__main__":
    main()
