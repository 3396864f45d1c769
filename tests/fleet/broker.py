#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fleet-broker: vgpu-broker on a real 3-member etcd cluster, with synthetic hosts written
straight into etcd as vgpud writes them (lease-bound hosts/ and gpus/ keys), two brokers:
place and release, holds for large requests (waiters served oldest first), tenant quotas, the idempotent retry (same key, same session, through the other broker),
spread, conflicts between the brokers settled by the txn (no GPU over-allocated), 503 with the
count of each filter when full, cordon and drain, a host whose lease expires no longer offered
within TTL + 1 s and its claims marked LOST, PENDING claims expired by the elected janitor,
400s naming the field, the TCP port's bearer token, `vgpuctl fleet` against a broker, /metrics through promtool, and every
body against doc/schema. Needs VGPU_BROKER and VGPUCTL (tests/fleet/meson.build)."""

import concurrent.futures
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
from etcdcluster import EtcdCluster, free_port, skip_without_etcd  # noqa: E402
from fleetsim import GiB, PREFIX, Broker, Gateway, SyntheticHost, request, t4_gpu  # noqa: E402
from validate import validate  # noqa: E402
from checks import Tally  # noqa: E402

BROKER = os.environ["VGPU_BROKER"]
VGPUCTL = os.environ["VGPUCTL"]



def finish_release(gw, placed):
    """Finish a RELEASING claim as the host's vgpud would (the hosts here are synthetic): the
    claim, its session and its share of the GPU's alloc go. Without it a released claim keeps
    its GPU type-locked, and which GPU that is depends on the placement's draw."""
    key = PREFIX + "claims/%s/%s" % (placed.get("host"), placed.get("claim"))
    claim = gw.get(key)
    if not claim or claim.get("state") != "RELEASING":
        return
    gw.delete(key)
    gw.delete(PREFIX + "sessions/" + claim["session"])
    alloc = gw.get(PREFIX + "alloc/" + claim["gpu"])
    if alloc and claim["claim"] in alloc.get("claims", []):
        alloc["claims"].remove(claim["claim"])
        alloc["vram_bytes"] = max(0, alloc.get("vram_bytes", 0) - (claim.get("vram_bytes") or 0))
        if not alloc["claims"]:
            gw.delete(PREFIX + "alloc/" + claim["gpu"])
        else:
            gw.put(PREFIX + "alloc/" + claim["gpu"], alloc)


check = Tally()


def valid(schema, doc, what):
    error = validate(schema, doc)
    check(error is None, "%s does not match %s.schema.json" % (what, schema), error)


def audit(gw, what):
    """Over one consistent snapshot: per GPU, the claims on it sum to its alloc, within capacity,
    each counted once; every session names a claim and every claim its session."""
    snap, rev = gw.range(PREFIX)
    claims = {k: v for k, (v, _, _) in snap.items() if k.startswith(PREFIX + "claims/")}
    allocs = {k[len(PREFIX + "alloc/"):]: v for k, (v, _, _) in snap.items() if k.startswith(PREFIX + "alloc/")}
    gpus = {v["gpu"]: v for k, (v, _, _) in snap.items() if k.startswith(PREFIX + "gpus/")}
    sessions = {k: v for k, (v, _, _) in snap.items() if k.startswith(PREFIX + "sessions/")}
    per_gpu = {}
    for c in claims.values():
        per_gpu.setdefault(c["gpu"], []).append(c)
    ok = True
    for g, cs in per_gpu.items():
        a = allocs.get(g)
        if not a or sorted(a["claims"]) != sorted(c["claim"] for c in cs) or a["vram_bytes"] != sum(c["vram_bytes"] for c in cs):
            ok = False
            print("  GPU %s at revision %d: alloc %s, claims %s" % (g, rev, a, cs))
        if g in gpus and a and a["vram_bytes"] > gpus[g]["vram_total_bytes"]:
            ok = False
            print("  GPU %s over capacity: %s" % (g, a))
        if a and len({c["type"] for c in cs}) > 1:
            ok = False
            print("  GPU %s runs two types: %s" % (g, cs))
    for g, a in allocs.items():
        if a["claims"] and g not in per_gpu:
            ok = False
            print("  alloc %s counts claims that do not exist: %s" % (g, a))
    for k, s in sessions.items():
        if s["claim_key"] not in claims:
            ok = False
            print("  session %s names no claim" % k)
    check(ok, "%s: claims, allocs and sessions agree at revision %d" % (what, rev))
    return claims, allocs, sessions


def rej(body):
    """the 503's or explanation's rejections as {filter: count}"""
    return {r["filter"]: r["rejected_gpus"] for r in body["rejected"]}


def post(b, key, **body):
    body.setdefault("user", "alice")
    body["idempotency_key"] = key
    return b.request("POST", "/v1/sessions", body)


def main():
    skip_without_etcd()
    os.environ["VGPU_BROKER_CHECK_INDEX"] = "1"     # the brokers' index against the full scan
    tmp = tempfile.mkdtemp(prefix="vgpu-broker-test-")
    brokers = []
    try:
        with EtcdCluster(3) as cluster:
            run(cluster, tmp, brokers)
    finally:
        for b in brokers:
            b.stop()
        # every placement the index drew was checked against the full scan, and the index
        # never had to correct itself (a host, a cordon, a claim it missed)
        for b in brokers:
            bad = [line for line in b.logtext().splitlines() if "placement index" in line]
            check(not bad, "%s: the placement index agreed with the full scan" % b.socket, bad[:5])
        if check.failed:
            for b in brokers:
                print("--- %s ---\n%s" % (b.socket, b.logtext()))
        shutil.rmtree(tmp, ignore_errors=True)
    check.exit("fleet-broker")


def run(cluster, tmp, brokers):
    gw = Gateway(cluster.endpoints)
    ttl = 2
    # four hosts of two T4s (16 GiB) each, one with an A10 in slice mode
    hosts = {}
    for i in range(4):
        name = "h%d" % i
        hosts[name] = SyntheticHost(gw, name, [t4_gpu(name, "GPU-%s-%d" % (name, j)) for j in range(2)], ttl=ttl)
    hosts["s0"] = SyntheticHost(gw, "s0", [t4_gpu("s0", "GPU-s0-0", total=24 * GiB, model="NVIDIA A10", mode="slice",
                                                  types=[], slice_memory=20 * GiB)], ttl=ttl)
    token = os.path.join(tmp, "token")
    with open(token, "w") as f:
        f.write("s3cret\n")
    port = free_port()
    # a and b never hold (holds.c): the section on holds starts a broker that does
    # a and b compact etcd's history every second when elected (janitor.c): every check below runs
    # with the history compacted under it
    a = Broker(BROKER, cluster.endpoints, tmp, "a", "--seed", "1", "--janitor-interval", "200", "--election-ttl", "2",
               "--hold-ttl", "0", "--compact-interval", "1",
               "--listen", "127.0.0.1:%d" % port, "--token-file", token)
    brokers.append(a)
    b = Broker(BROKER, cluster.endpoints, tmp, "b", "--seed", "2", "--janitor-interval", "200", "--election-ttl", "2",
               "--hold-ttl", "0", "--compact-interval", "1")
    brokers.append(b)

    # ---- read endpoints and schemas ----
    st, _, gpus = a.request("GET", "/v1/gpus")
    check(st == 200 and len(gpus) == 9, "GET /v1/gpus lists the 9 GPUs", (st, gpus))
    valid("broker-gpus", gpus, "GET /v1/gpus")
    st, _, hl = a.request("GET", "/v1/hosts")
    check(st == 200 and [h["host"] for h in hl] == ["h0", "h1", "h2", "h3", "s0"] and all(h["alive"] for h in hl),
          "GET /v1/hosts lists the 5 hosts alive", hl)
    valid("broker-hosts", hl, "GET /v1/hosts")
    st, _, body = a.request("GET", "/healthz")
    check(st == 200, "/healthz", body)
    st, _, body = a.request("GET", "/readyz")
    check(st == 200 and body == {"status": "ready"}, "/readyz", body)

    # ---- 400s name the field ----
    for bad, field in (({"type": "nvidia-232"}, "idempotency_key"),
                       ({"idempotency_key": "x"}, "vram_bytes"),
                       ({"idempotency_key": "x", "type": "nvidia-232", "vram_bytes": 5}, "vram_bytes"),
                       ({"idempotency_key": "x", "vram_bytes": -1}, "vram_bytes"),
                       ({"idempotency_key": "x", "memory_bytes": GiB, "share_percent": 101}, "share_percent"),
                       ({"idempotency_key": "x", "type": "nvidia-232", "tenant": "a/b"}, "tenant"),
                       ({"idempotency_key": "x", "type": "nvidia-232", "models": "T4"}, "models"),
                       ({"idempotency_key": "x", "type": "nvidia-232", "colour": "red"}, "colour")):
        st, _, body = a.request("POST", "/v1/sessions", bad)
        check(st == 400 and body["error"].startswith(field + ":"), "400 naming %s for %s" % (field, bad), (st, body))
        valid("broker-error", body, "a 400")
    st, _, body = a.request("POST", "/v1/sessions", "{not json")
    check(st == 400, "400 for a body that is not JSON", (st, body))

    # ---- place, retry, release ----
    st, hdr, s1 = post(a, "k1", type="nvidia-232", tenant="acme")
    check(st == 201 and s1["state"] == "PENDING" and s1["type"] == "nvidia-232" and s1["vram_bytes"] == 4 * GiB,
          "POST /v1/sessions: 201 PENDING with the type", (st, s1))
    valid("broker-session", s1, "POST /v1/sessions")
    claim = gw.get(PREFIX + "claims/%s/%s" % (s1["host"], s1["claim"]))
    host_lease = hosts[s1["host"]].lease
    check(claim and claim["state"] == "PENDING" and claim["host_lease"] == str(host_lease),
          "the claim is in etcd, fenced by the host's lease", (claim, host_lease))
    alloc = gw.get(PREFIX + "alloc/" + s1["gpu"])
    check(alloc and alloc["vram_bytes"] == 4 * GiB and alloc["claims"] == [s1["claim"]] and alloc["type_lock"] == "nvidia-232",
          "alloc counts the claim and locks the type", alloc)
    # the placing broker's cache has its own claim at once (not only after the watch replays it)
    mine = [g for g in a.request("GET", "/v1/gpus")[2] if g["gpu"] == s1["gpu"]]
    check(mine and mine[0]["sessions"] == 1 and mine[0]["vram_claimed_bytes"] == 4 * GiB,
          "GET /v1/gpus right after the claim counts it", mine)
    st, _, again = post(b, "k1", type="nvidia-232", tenant="acme")
    check(st == 200 and again["session"] == s1["session"] and again["claim"] == s1["claim"],
          "the same idempotency key through the other broker: the same session (200)", (st, again))
    st, _, one = b.request("GET", "/v1/sessions/" + s1["session"])
    check(st == 200 and one["claim"] == s1["claim"] and one["tenant"] == "acme", "GET /v1/sessions/ID", one)
    st, _, rel = a.request("DELETE", "/v1/sessions/" + s1["session"])
    check(st == 200 and rel["changed"] is True and rel["state"] == "RELEASED", "DELETE releases a PENDING claim", rel)
    valid("broker-release", rel, "DELETE /v1/sessions/ID")
    st, _, rel = b.request("DELETE", "/v1/sessions/" + s1["session"])
    check(st == 200 and rel["changed"] is False, "DELETE again: 200, nothing changed (idempotent)", rel)
    check(gw.get(PREFIX + "alloc/" + s1["gpu"]) is None and gw.get(PREFIX + "sessions/" + s1["session"]) is None,
          "release took the claim out of alloc and deleted the session")
    st, _, body = a.request("GET", "/v1/sessions/" + s1["session"])
    check(st == 404, "GET of a released session: 404", (st, body))

    # ---- spread: eight 4 GiB vGPUs land one per T4 ----
    placed = []
    for i in range(8):
        st, _, s = post(a if i % 2 else b, "spread-%d" % i, type="nvidia-232")
        check(st == 201, "spread placement %d" % i, (st, s))
        placed.append(s)
    check(len({s["gpu"] for s in placed}) == 8, "spread: one session per T4 (lowest utilization first)",
          sorted(s["gpu"] for s in placed))
    # a vram request goes to the slice-mode A10 (4/20 is the lowest utilization after)
    st, _, sl = post(a, "slice-1", vram_bytes=4 * GiB)
    check(st == 201 and sl["host"] == "s0" and sl["kind"] == "slice", "vram request on the slice GPU", (st, sl))
    st, _, sl2 = post(a, "slice-2", memory_bytes=2 * GiB, share_percent=30)
    check(st == 201 and sl2["host"] == "s0" and sl2["share_percent"] == 30, "a slice with a share", (st, sl2))
    # the type lock: nvidia-234 fits nowhere now (every T4 runs nvidia-232)
    st, hdr, full = post(a, "locked", type="nvidia-234")
    check(st == 503 and rej(full)["type"] == 9 and hdr.get("Retry-After"),
          "503 with the type filter's count when every T4 is locked to another type", (st, full, hdr))
    valid("broker-unavailable", full, "a 503")
    st, _, ex = a.request("POST", "/v1/placement/explain", {"type": "nvidia-232", "models": ["T4"]})
    check(st == 200 and rej(ex)["model"] == 1 and len(ex["fits"]) == 8 and ex["fits"][0]["utilization_after_percent"] == 50,
          "explain: the A10 rejected by model, 8 fits at 50 %", ex)
    valid("broker-explain", ex, "POST /v1/placement/explain")
    # both brokers registered (brokers/members/): each draws from its own share of the tied GPUs
    deadline = time.monotonic() + 5
    while ex.get("brokers") != 2 and time.monotonic() < deadline:
        time.sleep(0.1)
        ex = a.request("POST", "/v1/placement/explain", {"type": "nvidia-232"})[2]
    check(ex.get("brokers") == 2 and ex.get("near_equal_percent") == 10,
          "explain: 2 live brokers share the near-equal GPUs (band 10 points)", ex)
    for s in placed + [sl, sl2]:
        a.request("DELETE", "/v1/sessions/" + s["session"])
    audit(gw, "after spread")

    # ---- conflicts: 2 brokers, 48 requests in parallel for 32 places of 4 GiB ----
    def one(i):
        # 409 (the broker lost the race --tries times) is for the client to retry with its key
        for attempt in range(10):
            r = post(a if (i + attempt) % 2 else b, "race-%d" % i, type="nvidia-232", models=["T4"])
            if r[0] != 409:
                return r
        return r
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(48)))
    codes = [r[0] for r in results]
    check(codes.count(201) == 32 and codes.count(503) == 16, "48 racing requests: 32 placed, 16 told 503",
          {c: codes.count(c) for c in set(codes)})
    claims, allocs, _ = audit(gw, "after the race")
    check(len(claims) == 32 and all(al["vram_bytes"] == 16 * GiB for al in allocs.values()),
          "every T4 exactly full, none over", {k: al["vram_bytes"] // GiB for k, al in allocs.items()})
    st, _, met = a.request("GET", "/metrics")
    check(st == 200 and "vgpu_broker_conflicts_total" in met, "/metrics", met[:300])
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=met, capture_output=True, text=True)
        check(p.returncode == 0, "promtool check metrics is clean", p.stdout + p.stderr)
    st, _, sess = b.request("GET", "/v1/sessions")
    check(st == 200 and len(sess) == 32, "GET /v1/sessions lists the 32", len(sess) if st == 200 else sess)
    valid("broker-sessions", sess, "GET /v1/sessions")
    for r in results:
        if r[0] == 201:
            a.request("DELETE", "/v1/sessions/" + r[2]["session"])
    audit(gw, "after releasing the race")

    # ---- cordon and drain ----
    st, _, co = a.request("POST", "/v1/hosts/h1/cordon")
    check(st == 200 and co["cordoned"] is True, "cordon h1", co)
    valid("broker-cordon", co, "POST cordon")
    time.sleep(0.3)
    got = [post(b, "cordon-%d" % i, type="nvidia-231")[2] for i in range(6)]
    check(all(s.get("host") != "h1" for s in got), "nothing placed on a cordoned host", [s.get("host") for s in got])
    st, _, ex = b.request("POST", "/v1/placement/explain", {"type": "nvidia-231"})
    check(rej(ex)["cordoned"] == 2, "explain counts the cordoned GPUs", ex)
    a.request("POST", "/v1/hosts/h1/uncordon")
    time.sleep(0.3)
    st, _, on_h1 = post(a, "drain-me", type="nvidia-231", prefer=["h1"])
    check(st == 201 and on_h1["host"] == "h1", "uncordoned h1 takes a preferred request", on_h1)
    st, _, dr = a.request("POST", "/v1/hosts/h1/drain")
    check(st == 200 and dr["draining"] is True and dr["released"] == 1, "drain h1 releases its session", dr)
    check(gw.get(PREFIX + "sessions/" + on_h1["session"]) is None, "the drained session is gone")
    a.request("POST", "/v1/hosts/h1/uncordon")
    for s in got:
        if "session" in s:
            a.request("DELETE", "/v1/sessions/" + s["session"])

    # ---- PENDING expiry by the elected janitor ----
    c = Broker(BROKER, cluster.endpoints, tmp, "c", "--pending-timeout", "1", "--janitor-interval", "200",
               "--hold-ttl", "0")
    brokers.append(c)
    st, _, short = post(c, "short-lived", type="nvidia-231")
    st2, _, keep = post(a, "long-lived", type="nvidia-231")
    check(st == 201 and st2 == 201, "placed one claim with a 1 s deadline, one with 120 s", (st, st2))
    t = time.monotonic()
    while time.monotonic() - t < 6 and gw.get(PREFIX + "sessions/" + short["session"]) is not None:
        time.sleep(0.1)
    gone = time.monotonic() - t
    check(gw.get(PREFIX + "sessions/" + short["session"]) is None, "the PENDING claim past its deadline expired (%.1f s)" % gone)
    check(gw.get(PREFIX + "sessions/" + keep["session"]) is not None, "the other PENDING claim stays")
    leaders = [x for x in brokers if "\nvgpu_broker_janitor_leader 1\n" in x.request("GET", "/metrics")[2]]
    check(len(leaders) == 1, "exactly one broker is the janitor", [x.socket for x in leaders])
    audit(gw, "after expiry")

    # ---- a host dies: its GPUs are no longer offered within TTL + 1 s, its claims LOST ----
    st, _, on_h3 = post(a, "on-h3", type="nvidia-231", prefer=["h3"])
    check(st == 201 and on_h3["host"] == "h3", "a session on h3", on_h3)
    t = time.monotonic()
    hosts["h3"].stop()
    while time.monotonic() - t < ttl + 3:
        if not any(g["host"] == "h3" for g in b.request("GET", "/v1/gpus")[2]) and \
           not any(g["host"] == "h3" for g in a.request("GET", "/v1/gpus")[2]):
            break
        time.sleep(0.05)
    gone = time.monotonic() - t
    check(gone <= ttl + 1, "h3's GPUs no longer offered %.2f s after its last keepalive (TTL %d s + 1 s)" % (gone, ttl))
    st, _, ex = a.request("POST", "/v1/placement/explain", {"type": "nvidia-231", "prefer": ["h3"]})
    check(all(f["host"] != "h3" for f in ex["fits"]), "explain offers nothing on h3", ex)
    t = time.monotonic()
    state = None
    while time.monotonic() - t < 5:
        state = (gw.get(PREFIX + "claims/h3/" + on_h3["claim"]) or {}).get("state")
        if state == "LOST":
            break
        time.sleep(0.1)
    check(state == "LOST", "the janitor marked h3's claim LOST", state)
    alloc = gw.get(PREFIX + "alloc/" + on_h3["gpu"])
    check(alloc and on_h3["claim"] in alloc["claims"], "a LOST claim keeps its capacity", alloc)
    st, _, rel = a.request("DELETE", "/v1/sessions/" + on_h3["session"])
    check(st == 200 and rel["state"] == "RELEASING", "releasing a LOST claim marks it RELEASING for its host", rel)
    # h3 comes back (a new lease, the same keys): offered again (the cache revives what it linked);
    # its vgpud finishes the RELEASING claim as vgpud does: claim, session and alloc entry go
    hosts["h3"] = SyntheticHost(gw, "h3", [t4_gpu("h3", "GPU-h3-%d" % j) for j in range(2)], ttl=ttl)
    gw.delete(PREFIX + "claims/h3/" + on_h3["claim"])
    gw.delete(PREFIX + "sessions/" + on_h3["session"])
    gw.delete(PREFIX + "alloc/" + on_h3["gpu"])
    t = time.monotonic()
    # b must see the deletes too (they come after the GPUs): else the old claim still counts there
    while time.monotonic() - t < 3 and not any(g["host"] == "h3" and g["gpu"] == on_h3["gpu"] and not g["sessions"]
                                               for g in b.request("GET", "/v1/gpus")[2]):
        time.sleep(0.05)
    st, _, back = post(b, "h3-back", type="nvidia-231", prefer=["h3"])
    check(st == 201 and back["host"] == "h3", "a host back after its lease expired takes placements again", (st, back))
    cl = gw.get(PREFIX + "claims/h3/%s" % back.get("claim")) or {}
    check(cl.get("host_lease") == str(hosts["h3"].lease), "its claim is fenced by the new lease", (cl, hosts["h3"].lease))
    b.request("DELETE", "/v1/sessions/" + back.get("session", "x"))
    finish_release(gw, back)

    # ---- a large request is not starved: a refused one holds the GPU that frees soonest ----
    a.request("DELETE", "/v1/sessions/" + keep["session"])
    finish_release(gw, keep)
    d = Broker(BROKER, cluster.endpoints, tmp, "d", "--hold-ttl", "30")
    brokers.append(d)
    n_t4 = len([g for g in d.request("GET", "/v1/gpus")[2] if g["model"] == "Tesla T4"])
    frag = [post(d, "frag-%d" % i, type="nvidia-232")[2] for i in range(n_t4)]
    check(n_t4 == 8 and len({s.get("gpu") for s in frag}) == n_t4, "small sessions, one on each live T4",
          ([s.get("gpu") for s in frag], [(g["gpu"], g["sessions"], g["type_lock"]) for g in d.request("GET", "/v1/gpus")[2]],
           gw.range(PREFIX + "holds/")[0], gw.range(PREFIX + "claims/h3/")[0]))
    st, _, big = post(d, "big", type="nvidia-235")
    holds = gw.range(PREFIX + "holds/")[0]
    check(st == 503 and len(holds) == 1 and list(holds.values())[0][0]["idempotency_key"] == "big",
          "a refused whole-GPU request holds one GPU", (st, holds))
    held = list(holds)[0][len(PREFIX + "holds/"):] if holds else None
    for s in frag:
        if s.get("gpu") == held:
            d.request("DELETE", "/v1/sessions/" + s["session"])
    time.sleep(0.3)
    st, _, small = post(a, "small-after-hold", type="nvidia-232")
    check(st == 201 and small["gpu"] != held, "a small request keeps off the held GPU (the emptiest)", (st, small, held))
    st, _, big = post(d, "big", type="nvidia-235")
    check(st == 201 and big["gpu"] == held, "the holder's retry gets the held GPU", (st, big, held))
    t = time.monotonic()
    while time.monotonic() - t < 2 and gw.range(PREFIX + "holds/")[0]:
        time.sleep(0.05)
    check(not gw.range(PREFIX + "holds/")[0], "its claim dropped the hold")
    for s in frag + [small, big]:
        if "session" in s:
            d.request("DELETE", "/v1/sessions/" + s["session"])
    audit(gw, "after holds")

    # ---- waiters are served oldest first: whichever GPU frees, whichever broker a retry reaches ----
    frag = [post(d, "frag2-%d" % i, type="nvidia-232")[2] for i in range(n_t4)]
    check(len({s.get("gpu") for s in frag}) == n_t4, "again one small session on each T4", [s.get("gpu") for s in frag])
    st_old = post(d, "big-old", type="nvidia-235")[0]
    time.sleep(0.05)
    st_young = post(d, "big-young", type="nvidia-235")[0]
    holds = {v[0]["idempotency_key"]: k[len(PREFIX + "holds/"):] for k, v in gw.range(PREFIX + "holds/")[0].items()}
    waits = {v[0]["idempotency_key"]: v[0].get("since_ms") for v in gw.range(PREFIX + "waits/")[0].values()}
    check(st_old == 503 and st_young == 503 and set(holds) == {"big-old", "big-young"}
          and holds["big-old"] != holds["big-young"], "two refused whole-GPU requests hold a GPU each", (st_old, st_young, holds))
    check(set(waits) == {"big-old", "big-young"} and waits["big-old"] < waits["big-young"],
          "waits/ keeps when each first waited, the older first", waits)
    def freed(broker, gpu):
        """wait until the broker's cache shows no session on gpu (its watch brought the release)"""
        t = time.monotonic()
        while time.monotonic() - t < 3:
            if any(g["gpu"] == gpu and g["sessions"] == 0 for g in broker.request("GET", "/v1/gpus")[2]):
                return True
            time.sleep(0.05)
        return False

    # capacity frees on the younger waiter's GPU
    for s in frag:
        if s.get("gpu") == holds.get("big-young"):
            d.request("DELETE", "/v1/sessions/" + s["session"])
    check(freed(a, holds.get("big-young")) and freed(d, holds.get("big-young")), "both brokers see the GPU freed")
    st, _, young = post(a, "big-young", type="nvidia-235")
    check(st == 503, "the younger waiter is refused on its own held GPU while the older one fits there "
          "(through another broker: the order is in etcd)", (st, young))
    st, _, old = post(a, "big-old", type="nvidia-235")
    check(st == 201 and old.get("gpu") == holds.get("big-young"), "the older waiter gets the freed GPU", (st, old, holds))
    t = time.monotonic()
    while time.monotonic() - t < 2 and any(v[0]["idempotency_key"] == "big-old" for v in
                                           list(gw.range(PREFIX + "waits/")[0].values()) + list(gw.range(PREFIX + "holds/")[0].values())):
        time.sleep(0.05)
    check(not any(v[0]["idempotency_key"] == "big-old" for v in list(gw.range(PREFIX + "waits/")[0].values())
                  + list(gw.range(PREFIX + "holds/")[0].values())), "placed, the older one waits and holds no more")
    # now the younger is the oldest waiter: the next GPU that frees is its
    for s in frag:
        if s.get("gpu") == holds.get("big-old"):
            d.request("DELETE", "/v1/sessions/" + s["session"])
    check(freed(d, holds.get("big-old")), "the older one's GPU freed")
    st, _, young = post(d, "big-young", type="nvidia-235")
    check(st == 201 and young.get("gpu") == holds.get("big-old"), "then the younger gets the next GPU that frees",
          (st, young, holds))
    for s in frag + [old, young]:
        if "session" in s:
            d.request("DELETE", "/v1/sessions/" + s["session"])
    audit(gw, "after ordered waiters")

    # ---- quotas: a tenant's usage counted in quota/<tenant>, over the limit refused ----
    q = Broker(BROKER, cluster.endpoints, tmp, "q", "--quota-sessions", "2", "--quota-vram", "6G", "--hold-ttl", "0")
    brokers.append(q)
    q1 = post(q, "quota-1", type="nvidia-231", tenant="small-co")
    q2 = post(q, "quota-2", type="nvidia-231", tenant="small-co")
    q3 = post(q, "quota-3", type="nvidia-231", tenant="small-co")
    check(q1[0] == 201 and q2[0] == 201 and q3[0] == 503 and rej(q3[2])["quota"] > 0,
          "the third session of a tenant limited to 2 is refused by quota", (q1[0], q2[0], q3))
    check(gw.get(PREFIX + "quota/small-co") == {"vram_bytes": 4 * GiB, "sessions": 2}, "quota/small-co counts 2 sessions",
          gw.get(PREFIX + "quota/small-co"))
    q.request("DELETE", "/v1/sessions/" + q1[2]["session"])
    check(gw.get(PREFIX + "quota/small-co") == {"vram_bytes": 2 * GiB, "sessions": 1}, "a release gives the quota back",
          gw.get(PREFIX + "quota/small-co"))
    q4 = post(q, "quota-4", type="nvidia-234", tenant="small-co")
    check(q4[0] == 503 and rej(q4[2])["quota"] > 0, "2 GiB used + 8 GiB is over the tenant's 6 GiB", q4)
    q.request("DELETE", "/v1/sessions/" + q2[2]["session"])

    # ---- TCP with a bearer token ----
    st, hdr, body = request(None, "GET", "/v1/hosts", port=port)
    check(st == 401 and "Bearer" in hdr.get("WWW-Authenticate", ""), "TCP without the token: 401", (st, body))
    st, _, body = request(None, "GET", "/v1/hosts", port=port, headers={"Authorization": "Bearer s3cret"})
    check(st == 200, "TCP with the token: 200", (st, body))
    st, _, body = request(None, "GET", "/readyz", port=port)
    check(st == 200, "TCP /readyz needs no token", (st, body))

    # ---- the CLI against a broker ----
    cli_checks(a, port)

    # ---- TLS on the TCP port: the API over https, the CLI trusting the CA it is given ----
    if shutil.which("openssl"):
        key, crt = os.path.join(tmp, "tls.key"), os.path.join(tmp, "tls.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        tport = free_port()
        tb = Broker(BROKER, cluster.endpoints, tmp, "tls", "--listen", "127.0.0.1:%d" % tport, "--tls-cert", crt,
                    "--tls-key", key, "--token-file", token, "--hold-ttl", "0")
        brokers.append(tb)
        ctx = ssl.create_default_context(cafile=crt)
        conn = http.client.HTTPSConnection("127.0.0.1", tport, context=ctx, timeout=10)
        conn.request("GET", "/v1/hosts", headers={"Authorization": "Bearer s3cret"})
        r = conn.getresponse()
        check(r.status == 200 and json.loads(r.read()), "https with the token: 200", r.status)
        conn.close()
        p = vgpuctl("hosts", "--broker", "https://127.0.0.1:%d" % tport, rc=1)
        check("certificate" in p.stderr.lower() or "ssl" in p.stderr.lower(), "the CLI refuses an unknown CA", p.stderr)
        p = vgpuctl("hosts", "--broker", "https://127.0.0.1:%d" % tport,
                    env={"VGPU_BROKER_CA": crt, "VGPU_BROKER_TOKEN": "s3cret"})
        check(p.stdout.startswith("HOST"), "the CLI over https with VGPU_BROKER_CA and the token", p.stdout)

    # ---- the janitor compacted etcd's history (janitor.c) ----
    made = 0
    for x in brokers:
        for line in x.request("GET", "/metrics")[2].splitlines():
            if line.startswith("vgpu_broker_compactions_total "):
                made += int(float(line.split()[1]))
    check(made >= 1, "the elected broker compacted etcd's history (%d times)" % made)
    try:
        gw.range(PREFIX, revision=2)
        old = "readable"
    except RuntimeError as e:
        old = str(e)
    check("400" in old, "revision 2 is compacted away", old)

    # ---- a restarted broker is ready fast and sees the same fleet ----
    b.stop()
    brokers.remove(b)
    b2 = Broker(BROKER, cluster.endpoints, tmp, "b2", ready=False)
    brokers.append(b2)
    took = b2.wait_ready()
    check(took < 2, "a restarted broker is ready in %.2f s" % took)
    check(len(b2.request("GET", "/v1/sessions")[2]) == len(a.request("GET", "/v1/sessions")[2]),
          "the new broker lists the same sessions")


def vgpuctl(*args, env=None, rc=0):
    p = subprocess.run([VGPUCTL, "fleet", *args], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, **(env or {})))
    check(p.returncode == rc, "vgpuctl fleet %s: exit %d (want %d)" % (" ".join(args), p.returncode, rc), p.stderr)
    return p


def cli_checks(a, port):
    out = vgpuctl("place", "--broker", a.socket, "--type", "nvidia-231", "--user", "carol", "--key", "cli-1",
                  "--json").stdout
    s = json.loads(out)
    valid("broker-session", s, "vgpuctl fleet place --json")
    check(s["user"] == "carol" and s["type"] == "nvidia-231", "fleet place --json: the session", s)
    # the broker from the environment; the same key places once
    env = {"VGPU_BROKER": a.socket}
    p = vgpuctl("place", "--type", "nvidia-231", "--key", "cli-1", env=env)
    check(p.stdout.startswith("already placed: session " + s["session"]), "fleet place with the same --key", p.stdout)
    p = vgpuctl("sessions", env=env)
    check(s["session"] in p.stdout and "carol" in p.stdout and p.stdout.startswith("SESSION"), "fleet sessions table",
          p.stdout)
    for verb, schema in (("hosts", "broker-hosts"), ("gpus", "broker-gpus"), ("sessions", "broker-sessions")):
        valid(schema, json.loads(vgpuctl(verb, "--json", env=env).stdout), "fleet %s --json" % verb)
    p = vgpuctl("hosts", env=env)
    check(p.stdout.startswith("HOST") and "h0" in p.stdout, "fleet hosts table", p.stdout)
    p = vgpuctl("gpus", env=env)
    check("GPU-h0-0" in p.stdout and "nvidia-231" in p.stdout, "fleet gpus table shows a type lock", p.stdout)
    lines = p.stdout.splitlines()
    check(all(line.index("GPU-") == lines[0].index("GPU") for line in lines[1:]),
          "fleet gpus: every row's GPU under the header's (columns as wide as their widest cell)", p.stdout)
    p = vgpuctl("explain", "--vram", "100G", env=env)
    check("(no GPU can take it)" in p.stdout and "type" in p.stdout, "fleet explain: nothing fits 100G", p.stdout)
    valid("broker-explain", json.loads(vgpuctl("explain", "--type", "nvidia-231", "--json", env=env).stdout),
          "fleet explain --json")
    p = vgpuctl("place", "--vram", "100G", env=env, rc=1)
    check("GPUs rejected by:" in p.stderr and "type" in p.stderr, "fleet place when nothing fits: the counts", p.stderr)
    p = vgpuctl("place", "--type", "nvidia-231", "--vram", "4G", env=env, rc=2)
    check("one of --type, --vram or --memory" in p.stderr, "fleet place with two sizes: usage error", p.stderr)
    p = vgpuctl("cordon", "h2", env=env)
    check(p.stdout.strip() == "host h2: cordoned", "fleet cordon", p.stdout)
    p = vgpuctl("uncordon", "h2", env=env)
    check(p.stdout.strip() == "host h2: uncordoned", "fleet uncordon", p.stdout)
    p = vgpuctl("release", s["session"], env=env)
    check(p.stdout.strip() == "session %s: released" % s["session"], "fleet release", p.stdout)
    p = vgpuctl("release", s["session"], env=env)
    check("released before" in p.stdout, "fleet release again: nothing to do", p.stdout)
    # over TCP with the token from the environment
    url = "http://127.0.0.1:%d" % port
    p = vgpuctl("hosts", "--broker", url, rc=1)
    check("bearer token" in p.stderr, "fleet over TCP without the token", p.stderr)
    vgpuctl("hosts", "--broker", url, env={"VGPU_BROKER_TOKEN": "s3cret"})
    p = vgpuctl("hosts", "--broker", "/nonexistent.sock", rc=1)
    check("vgpu-broker at /nonexistent.sock" in p.stderr, "fleet with no broker says where it looked", p.stderr)


if __name__ == "__main__":
    main()
