# SPDX-License-Identifier: LGPL-2.1-or-later
"""The storm's checker can fail: hand-made histories, one clean and then one per violation the
checker must find, each written through a tiny in-memory etcd (revisions, leases, prev_kv) so the
snapshot and the history agree the way a real one does. Then one run against a real etcd, to
prove the snapshot reader (range at a revision + watch from revision 1) sees what was written."""

import copy
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402
from checker import KV, Event, session_id  # noqa: E402

P = "/vgpuctl/v1/t/"
G = 1 << 30
passed = failed = 0


def ok(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s %s" % (what, detail), flush=True)


class Store:
    """Revisions and leases as etcd keeps them, enough to write histories by hand."""

    def __init__(self):
        self.rev, self.kvs, self.events, self.leases = 1, {}, [], {}

    def put(self, key, value, lease=0):
        self.rev += 1
        old = self.kvs.get(P + key)
        kv = KV(P + key, json.dumps(value), old.create_revision if old else self.rev, self.rev,
                old.version + 1 if old else 1, lease)
        self.kvs[P + key] = kv
        self.events.append(Event(self.rev, False, kv, copy.copy(old)))
        return kv

    def delete(self, *keys):
        self.rev += 1
        for key in keys:
            old = self.kvs.pop(P + key)
            self.events.append(Event(self.rev, True, KV(P + key, "", 0, self.rev), old))

    def revoke(self, lease):
        """A lease's keys go in one revision, as etcd does."""
        gone = [k[len(P):] for k, kv in self.kvs.items() if kv.lease == lease]
        self.delete(*gone)

    def get(self, key):
        return json.loads(self.kvs[P + key].raw)

    def check(self, clients=(), settled=True):
        return checker.check(P, self.rev, dict(self.kvs), list(self.events), clients, settled)


def host(s, name, lease, gpus=("g1",), cap=16 * G):
    s.put("hosts/" + name, {"host": name, "lease": str(lease), "boot_id": "b"}, lease)
    for g in gpus:
        s.put("gpus/%s/%s" % (name, g), {"host": name, "gpu": g, "vram_total_bytes": cap, "mode": "vgpu",
                                        "types": [{"name": "A16-4Q", "framebuffer_bytes": 4 * G, "max_instances": 4},
                                                  {"name": "A16-8Q", "framebuffer_bytes": 8 * G, "max_instances": 2}]},
              lease)


def claim(s, h, g, cid, idem, lease, typ="A16-4Q", vram=4 * G, state="BOUND"):
    """The broker's claim txn (one revision in etcd; here three puts) then vgpud's BOUND."""
    sid = session_id(idem)
    a = s.get("alloc/" + g) if P + "alloc/" + g in s.kvs else {"host": h, "gpu": g, "vram_bytes": 0,
                                                                  "share_percent": 0, "type_lock": None, "claims": []}
    a["vram_bytes"] += vram
    a["type_lock"] = typ
    a["claims"] = a["claims"] + [cid]
    s.put("alloc/" + g, a)
    s.put("claims/%s/%s" % (h, cid), {"claim": cid, "session": sid, "host": h, "gpu": g, "kind": "vgpu",
                                      "type": typ, "vram_bytes": vram, "slice": None, "state": "PENDING",
                                      "host_lease": str(lease)})
    s.put("sessions/" + sid, {"session": sid, "claim_key": "claims/%s/%s" % (h, cid), "idempotency_key": idem})
    if state != "PENDING":
        c = s.get("claims/%s/%s" % (h, cid))
        c["state"] = state
        s.put("claims/%s/%s" % (h, cid), c)
    return {"op": "place", "idempotency_key": idem, "outcome": "ok", "session": sid, "claim": cid, "host": h, "gpu": g}


def release(s, h, g, cid):
    c = s.get("claims/%s/%s" % (h, cid))
    a = s.get("alloc/" + g)
    a["claims"] = [x for x in a["claims"] if x != cid]
    a["vram_bytes"] -= c["vram_bytes"]
    if not a["claims"]:
        a["type_lock"] = None
    s.put("alloc/" + g, a)
    s.delete("claims/%s/%s" % (h, cid), "sessions/" + c["session"])
    return {"op": "release", "session": c["session"], "outcome": "ok"}


def base():
    """Two hosts, three sessions, one released: every invariant holds."""
    s = Store()
    host(s, "h1", 101, ("g1", "g2"))
    host(s, "h2", 202, ("g3",))
    rec = [claim(s, "h1", "g1", "c1", "k1", 101), claim(s, "h1", "g1", "c2", "k2", 101),
           claim(s, "h2", "g3", "c3", "k3", 202, typ="A16-8Q", vram=8 * G)]
    rec.append(release(s, "h1", "g1", "c2"))
    return s, rec


def expect(name, rep, kind, *needles):
    text = "\n".join(rep.violations)
    ok(kind in rep.kinds(), "%s: the checker reports %r" % (name, kind), text or "(no violation)")
    for n in needles:
        ok(n in text, "%s: the report names %r" % (name, n), text)


def main():
    s, rec = base()
    rep = s.check(rec)
    ok(rep.violations == [], "a clean history has no violation", rep.violations)

    # Σ claims != alloc
    s, rec = base()
    a = s.get("alloc/g1")
    a["vram_bytes"] += G
    kv = s.put("alloc/g1", a)
    expect("alloc sum", s.check(rec), "alloc", P + "alloc/g1", "mod_revision %d" % kv.mod_revision)

    # alloc lists a claim that is not there
    s, rec = base()
    a = s.get("alloc/g1")
    a["claims"].append("ghost")
    s.put("alloc/g1", a)
    expect("alloc ghost claim", s.check(rec), "alloc", "ghost")

    # over capacity: five 4Q on a 16 GiB GPU (both VRAM and max_instances)
    s, rec = base()
    for i in range(4):
        rec.append(claim(s, "h1", "g2", "x%d" % i, "kx%d" % i, 101))
    ok(s.check(rec).violations == [], "four 4Q fill a 16 GiB GPU exactly", s.check(rec).violations)
    rec.append(claim(s, "h1", "g2", "x4", "kx4", 101))
    expect("over capacity", s.check(rec), "alloc", "over the capacity", "max_instances 4")

    # a claim created after its host's lease died, under the dead lease
    s, rec = base()
    s.revoke(202)
    died = s.rev
    rec.append(claim(s, "h2", "g3", "late", "klate", 202, typ="A16-8Q", vram=8 * G, state="PENDING"))
    rep = s.check(rec, settled=False)
    expect("claim after death", rep, "fencing", P + "claims/h2/late", "died at revision %d" % died)

    # ... and a claim under a lease that was never granted
    s, rec = base()
    rec.append(claim(s, "h2", "g3", "forged", "kf", 999, typ="A16-8Q", vram=8 * G, state="PENDING"))
    expect("unknown lease", s.check(rec, settled=False), "fencing", "had not been granted")

    # a host that woke up (SIGCONT) binds a claim under its lease that died meanwhile
    s, rec = base()
    rec.append(claim(s, "h2", "g3", "woke", "kw", 202, typ="A16-8Q", vram=8 * G, state="PENDING"))
    s.revoke(202)
    c = s.get("claims/h2/woke")
    c["state"] = "BOUND"
    s.put("claims/h2/woke", c)
    expect("bound after death", s.check(rec, settled=False), "fencing", "set BOUND at revision %d" % s.rev)

    # an acknowledged BOUND session vanished without a release
    s, rec = base()
    c = s.get("claims/h1/c1")
    a = s.get("alloc/g1")
    a["claims"].remove("c1")
    a["vram_bytes"] -= c["vram_bytes"]
    a["type_lock"] = None
    s.put("alloc/g1", a)
    s.delete("claims/h1/c1", "sessions/" + session_id("k1"))
    expect("lost ack", s.check(rec), "sessions", session_id("k1"), "BOUND")

    # ... while one whose PENDING claim expired may go
    s, rec = base()
    rec.append(claim(s, "h1", "g2", "p1", "kp", 101, state="PENDING"))
    release(s, "h1", "g2", "p1")
    rep = s.check(rec)
    ok(rep.violations == [], "an expired PENDING claim takes its session along", rep.violations)

    # a session's claim created twice (a retried POST that made a second claim)
    s, rec = base()
    release(s, "h1", "g1", "c1")
    claim(s, "h1", "g1", "c1b", "k1", 101)
    expect("double create", s.check(rec), "sessions", "created 2 times", P + "claims/h1/c1b")

    # retries of one key acknowledged as two different claims
    s, rec = base()
    r2 = dict(rec[0], claim="other", gpu="g2")
    expect("two acks", s.check(rec + [r2]), "sessions", "acknowledged as different claims")

    # an unknown outcome that made two claims (on two GPUs)
    s, rec = base()
    claim(s, "h1", "g2", "u1", "ku", 101)
    release(s, "h1", "g2", "u1")
    claim(s, "h2", "g3", "u2", "ku", 202, typ="A16-8Q", vram=8 * G)
    unknown = [{"op": "place", "idempotency_key": "ku", "outcome": "unknown"}] * 2
    expect("unknown twice", s.check(rec + unknown), "unknown", session_id("ku"), P + "claims/h1/u1")
    s, rec = base()
    claim(s, "h2", "g3", "u2", "ku", 202, typ="A16-8Q", vram=8 * G)
    rep = s.check(rec + unknown)
    ok(rep.violations == [], "an unknown outcome that made one session is fine", rep.violations)

    # a released session that is still there
    s, rec = base()
    rec.append({"op": "release", "session": session_id("k1"), "outcome": "ok"})
    expect("released lives", s.check(rec), "sessions", "released session %s still exists" % session_id("k1"))

    # a session key without its claim, a claim without its session
    s, rec = base()
    s.put("sessions/orphan", {"session": "orphan", "claim_key": "claims/h1/nothing"})
    expect("orphan session", s.check(rec), "sessions", P + "sessions/orphan")
    s, rec = base()
    s.delete("sessions/" + session_id("k3"))
    expect("orphan claim", s.check(rec), "sessions", P + "claims/h2/c3")

    # two types on one GPU in equal-size mode; a lock that does not match; a stale lock
    s, rec = base()
    rec.append(claim(s, "h1", "g1", "t8", "kt8", 101, typ="A16-8Q", vram=8 * G))
    expect("two types", s.check(rec), "type lock", "runs 2 types")
    s, rec = base()
    a = s.get("alloc/g3")
    a["type_lock"] = "A16-4Q"
    s.put("alloc/g3", a)
    expect("wrong lock", s.check(rec), "type lock", P + "alloc/g3", "'A16-4Q'")
    s, rec = base()
    rel = release(s, "h2", "g3", "c3")
    a = s.get("alloc/g3")
    a["type_lock"] = "A16-8Q"
    s.put("alloc/g3", a)
    expect("stale lock", s.check(rec + [rel]), "type lock", "capacity stranded")

    # after recovery: BOUND on a dead host; LOST on a live one; PENDING left behind
    s, rec = base()
    s.revoke(202)
    expect("bound on dead host", s.check(rec), "recovery", P + "claims/h2/c3", "no live lease")
    ok("recovery" not in s.check(rec, settled=False).kinds(), "unsettled: BOUND on a dead host is not judged yet")
    s, rec = base()
    c = s.get("claims/h2/c3")
    c["state"] = "LOST"
    s.put("claims/h2/c3", c)
    expect("lost on live host", s.check(rec), "recovery", "still LOST")
    s, rec = base()
    s.revoke(202)
    host(s, "h2", 303, ("g3",))          # back with a new lease: BOUND under the old one is stale
    expect("bound under old lease", s.check(rec), "recovery", "host_lease 202")
    c = s.get("claims/h2/c3")
    c["host_lease"] = "303"
    s.put("claims/h2/c3", c)
    ok(s.check(rec).violations == [], "reconciled under the new lease", s.check(rec).violations)

    # tenant usage that drifted from its claims
    s, rec = base()
    s.put("quota/acme", {"vram_bytes": 0, "sessions": 0})
    ok(s.check(rec).violations == [], "a tenant without claims uses nothing", s.check(rec).violations)
    c = s.get("claims/h1/c1")
    c["tenant"] = "acme"
    s.put("claims/h1/c1", c)
    expect("quota drift", s.check(rec), "quota", P + "quota/acme", "1 claims of %d bytes" % (4 * G))

    # not JSON
    s, rec = base()
    s.kvs[P + "alloc/g9"] = KV(P + "alloc/g9", "{oops", 50, 50, 1, 0)
    expect("garbage", s.check(rec), "format", P + "alloc/g9")

    real_etcd()
    print("checker-test: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


def real_etcd():
    """The snapshot reader against a real etcd: a history with a lease that dies, read back."""
    try:
        from etcdcluster import EtcdCluster
    except ImportError:
        print("skip: tests/fleet/etcdcluster.py missing: the real-etcd part of the checker test")
        return
    import shutil
    if not shutil.which("etcd"):
        print("skip: etcd not installed: the real-etcd part of the checker test")
        return
    import time
    with EtcdCluster(1) as c:
        gw = checker.Gateway(c.endpoints)
        lease = int(gw.post("/v3/lease/grant", {"TTL": 60})["ID"])
        put = lambda k, v, l=0: gw.post("/v3/kv/put", {"key": checker.b64(P + k), "value": checker.b64(json.dumps(v)),
                                                        "lease": str(l)})
        put("hosts/h1", {"host": "h1", "lease": str(lease)}, lease)
        put("gpus/h1/g1", {"host": "h1", "gpu": "g1", "vram_total_bytes": 16 * G, "types": []}, lease)
        put("alloc/g1", {"host": "h1", "gpu": "g1", "vram_bytes": 4 * G, "claims": ["c1"], "type_lock": "A16-4Q"})
        gw.post("/v3/lease/revoke", {"ID": str(lease)})
        put("claims/h1/c1", {"claim": "c1", "session": "s", "host": "h1", "gpu": "g1", "kind": "vgpu",
                             "type": "A16-4Q", "vram_bytes": 4 * G, "state": "PENDING", "host_lease": str(lease)})
        put("sessions/s", {"session": "s", "claim_key": "claims/h1/c1"})
        rev, kvs, events = checker.snapshot(gw, P)
        ok(sorted(kvs) == [P + "alloc/g1", P + "claims/h1/c1", P + "sessions/s"], "real etcd: the snapshot", sorted(kvs))
        ok(len(events) == 7 and sum(e.deleted for e in events) == 2, "real etcd: the history (5 puts, 2 deletes)",
           [(e.revision, e.deleted, e.kv.key) for e in events])
        rep = checker.check(P, rev, kvs, events, [], settled=False)
        expect("real etcd", rep, "fencing", P + "claims/h1/c1", "died at revision")
        # a later write must not move the snapshot
        put("alloc/g1", {"oops": 1})
        _, kvs2 = gw.range_prefix(P, rev)
        ok(kvs2[0].raw == kvs[P + "alloc/g1"].raw, "real etcd: range at the revision is stable")
        time.sleep(0)


if __name__ == "__main__":
    main()
