# SPDX-License-Identifier: LGPL-2.1-or-later
"""The fleet's invariants, checked over one consistent etcd snapshot plus the history that led
to it and the history the clients recorded. Used by the storm (tests/fleet/storm.py) after the
faults; proven able to fail by tests/fleet/checker-test.py on hand-made snapshots.

What it reads:
  snapshot  every key under the cluster prefix at ONE revision R (one range request)
  events    every change under the prefix from revision 1 to R (a watch from revision 1, prev_kv
            on), so it can tell when a host's lease died and what each claim was before it went
  clients   what each client saw: one record per request (place or release) with its idempotency
            key and an outcome "ok" (acknowledged), "fail" (definitely not done: 400/409/503) or
            "unknown" (timeout, connection lost, 5xx: may or may not have happened)

What it finds (each violation names the keys and their revisions):
  alloc      for every GPU: the claims listed in alloc/<gpu> are exactly the claim keys naming
             that GPU; alloc's VRAM (and slice share) equals their sum and is within capacity
  fencing    no claim created on a host after the host lease it carries died (or before it lived),
             nor while the GPU's inventory key was absent; no claim made BOUND under a dead lease
  sessions   every acknowledged session exists exactly once (one session key, one claim, the one
             the client was told) unless released, or its claim expired / was reconciled away
             before it was BOUND; acknowledged retries of one key name one session
  unknown    every request whose outcome was unknown created at most one claim
  type lock  on a GPU every vGPU claim has alloc's type_lock; no lock held by a GPU with no claims
  quota      quota/<tenant>, where kept, is the sum of the tenant's claims
  recovery   (settled=True) every BOUND claim is on a live host under that host's current lease,
             no LOST claim on a live host, no PENDING claim left on a live host

Run alone: checker.py --endpoints URL[,URL] --cluster NAME [--clients FILE.jsonl]"""

import argparse
import base64
import hashlib
import http.client
import json
import sys
import urllib.parse


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def unb64(s):
    return base64.b64decode(s or "").decode("utf-8", "replace")


def prefix_end(prefix):
    """etcd's range_end for every key starting with prefix: its last byte plus one."""
    b = bytearray(prefix.encode())
    b[-1] += 1
    return bytes(b)


def session_id(idempotency_key):
    """The session id a broker derives from an idempotency key (FLEET-SPEC: SHA-256, first 32 hex)."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


class KV:
    """One key as etcd returns it; value parsed as JSON (None when it is not JSON)."""

    def __init__(self, key, value, create_revision=0, mod_revision=0, version=0, lease=0):
        self.key, self.raw = key, value
        try:
            self.value = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            self.value = None
        self.create_revision, self.mod_revision = int(create_revision), int(mod_revision)
        self.version, self.lease = int(version), int(lease)

    @classmethod
    def from_gateway(cls, kv):
        return cls(unb64(kv.get("key")), unb64(kv.get("value")), kv.get("create_revision", 0),
                   kv.get("mod_revision", 0), kv.get("version", 0), kv.get("lease", 0))

    def where(self):
        return "%s (create_revision %d, mod_revision %d)" % (self.key, self.create_revision, self.mod_revision)


class Event:
    """One change: a put (kv) or a delete (kv.key, prev) at revision."""

    def __init__(self, revision, deleted, kv, prev=None):
        self.revision, self.deleted, self.kv, self.prev = int(revision), deleted, kv, prev


# --- reading etcd through its JSON gateway ------------------------------------------------------------

class Gateway:
    def __init__(self, endpoints, timeout=10):
        self.endpoints = list(endpoints)
        self.timeout = timeout

    def _conn(self, endpoint, timeout):
        u = urllib.parse.urlsplit(endpoint)
        return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)

    def post(self, path, body):
        """The parsed answer of the first endpoint that answers 200."""
        last = None
        for ep in self.endpoints:
            c = self._conn(ep, self.timeout)
            try:
                c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read().decode()
                if r.status == 200:
                    return json.loads(data)
                last = "%s%s: %d %s" % (ep, path, r.status, data[:300])
            except (OSError, http.client.HTTPException) as e:
                last = "%s%s: %s" % (ep, path, e)
            finally:
                c.close()
        raise RuntimeError("etcd: no endpoint answered: %s" % last)

    def put(self, key, value):
        return int(self.post("/v3/kv/put", {"key": b64(key), "value": b64(value)})["header"]["revision"])

    def range_prefix(self, prefix, revision=0):
        """(revision, [KV]) of every key under prefix at revision (0 = now), in one request."""
        body = {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}
        if revision:
            body["revision"] = str(revision)
        r = self.post("/v3/kv/range", body)
        return int(r["header"]["revision"]), [KV.from_gateway(kv) for kv in r.get("kvs", [])]

    def history(self, prefix, until, start=1):
        """Every event on keys >= prefix from start up to revision until (inclusive), by a watch with
        prev_kv. The caller makes sure a change at exactly `until` exists at or after prefix (the
        storm writes a sentinel key just past the prefix), so the stream has a known last event."""
        end = prefix_end(prefix)
        body = {"create_request": {"key": b64(prefix), "range_end": b64(b"\0"), "start_revision": str(start),
                                   "prev_kv": True}}
        last = None
        for ep in self.endpoints:
            c = self._conn(ep, 30)
            events = []
            try:
                c.request("POST", "/v3/watch", body=json.dumps(body), headers={"Content-Type": "application/json"})
                r = c.getresponse()
                if r.status != 200:
                    last = "%s: %d" % (ep, r.status)
                    continue
                dec = json.JSONDecoder()
                buf = ""
                while True:
                    chunk = r.read1(65536).decode()
                    if not chunk:
                        raise RuntimeError("watch stream ended before revision %d" % until)
                    buf += chunk
                    while True:
                        buf = buf.lstrip()
                        if not buf:
                            break
                        try:
                            msg, n = dec.raw_decode(buf)
                        except ValueError:
                            break
                        buf = buf[n:]
                        res = msg.get("result", msg)
                        if "error" in msg:
                            raise RuntimeError("watch: %s" % msg["error"])
                        if res.get("compact_revision") and int(res["compact_revision"]) > start:
                            raise RuntimeError("history compacted up to %s: cannot check" % res["compact_revision"])
                        for e in res.get("events", []):
                            kv = KV.from_gateway(e["kv"])
                            rev = kv.mod_revision if e.get("type") != "DELETE" else 0
                            prev = KV.from_gateway(e["prev_kv"]) if e.get("prev_kv") else None
                            if e.get("type") == "DELETE":
                                # a delete's kv carries only the key and the delete's revision
                                rev = int(e["kv"].get("mod_revision", 0))
                            if rev > until:
                                return events
                            if kv.key.encode() < end:
                                events.append(Event(rev, e.get("type") == "DELETE", kv, prev))
                            if rev == until:
                                return events
            except (OSError, http.client.HTTPException) as e:
                last = "%s: %s" % (ep, e)
            finally:
                c.close()
        raise RuntimeError("etcd: no endpoint gave the history: %s" % last)


def snapshot(gateway, prefix):
    """(revision, {key: KV}, [Event]) — one consistent view: a sentinel put just past the prefix
    fixes revision R; the prefix is ranged AT R and the history read up to R."""
    sentinel = prefix.rstrip("/") + "0checker"      # "0" sorts right after "/": outside the prefix
    rev = gateway.put(sentinel, "snapshot")
    got, kvs = gateway.range_prefix(prefix, rev)
    events = gateway.history(prefix, rev)
    return rev, {kv.key: kv for kv in kvs}, events


# --- the checks -----------------------------------------------------------------------------------------

class Report:
    def __init__(self):
        self.violations = []
        self.notes = []

    def bad(self, kind, text):
        self.violations.append("%s: %s" % (kind, text))

    def kinds(self):
        return sorted({v.split(":", 1)[0] for v in self.violations})


def split_key(prefix, key):
    """('claims', ['host', 'claim']) for prefix + 'claims/host/claim'; None for keys elsewhere."""
    if not key.startswith(prefix):
        return None
    parts = key[len(prefix):].split("/")
    return parts[0], parts[1:]


def int_field(d, name):
    try:
        return int((d or {}).get(name) or 0)
    except (TypeError, ValueError):
        return 0


def lease_of(v):
    """A lease id from JSON: decimal string (FLEET-SPEC) or number."""
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


class Lives:
    """From the history: for every lease, the revision its first key appeared with it and the
    revision it died (the first revision after birth at which no key carried it any more)."""

    def __init__(self, events):
        self.born, self.died = {}, {}
        holding = {}
        for e in events:
            if e.prev is not None and e.prev.lease:
                keys = holding.get(e.prev.lease, set())
                keys.discard(e.kv.key)
                if not keys and e.prev.lease in self.born and e.prev.lease not in self.died:
                    if e.deleted or e.kv.lease != e.prev.lease:
                        self.died[e.prev.lease] = e.revision
            if not e.deleted and e.kv.lease:
                self.born.setdefault(e.kv.lease, e.revision)
                holding.setdefault(e.kv.lease, set()).add(e.kv.key)

    def alive_at(self, lease, revision):
        """True when lease carried keys just before revision (a txn at revision sees revision - 1)."""
        b = self.born.get(lease)
        d = self.died.get(lease)
        return b is not None and b < revision and (d is None or d >= revision)


def check(prefix, rev, kvs, events, clients=(), settled=True):
    """The Report over a snapshot (kvs: {key: KV} at revision rev), its history and the client
    records. settled: the fleet had time to recover (every host back, reconcile done)."""
    rep = Report()
    hosts, gpus, allocs, claims, sessions, quotas = {}, {}, {}, {}, {}, {}
    for key, kv in kvs.items():
        s = split_key(prefix, key)
        if s is None:
            continue
        kind, rest = s
        if kv.value is None and kind in ("hosts", "gpus", "alloc", "claims", "sessions"):
            rep.bad("format", "%s is not JSON: %r" % (kv.where(), kv.raw[:200]))
            continue
        if kind == "hosts" and len(rest) == 1:
            hosts[rest[0]] = kv
        elif kind == "gpus" and len(rest) == 2:
            gpus[(rest[0], rest[1])] = kv
        elif kind == "alloc" and len(rest) == 1:
            allocs[rest[0]] = kv
        elif kind == "claims" and len(rest) == 2:
            claims[(rest[0], rest[1])] = kv
        elif kind == "sessions" and len(rest) == 1:
            sessions[rest[0]] = kv
        elif kind == "quota" and len(rest) == 1 and kv.value is not None:
            quotas[rest[0]] = kv

    # the last inventory each GPU published (its capacity), also for hosts gone by now
    inventory = {}
    for e in events:
        s = split_key(prefix, e.kv.key)
        if s and s[0] == "gpus" and not e.deleted and e.kv.value:
            inventory[s[1][1]] = e.kv
    for (h, g), kv in gpus.items():
        inventory[g] = kv

    check_alloc(rep, allocs, claims, inventory)
    lives = Lives(events)
    check_fencing(rep, prefix, events, lives)
    check_sessions(rep, prefix, claims, sessions, events, clients)
    check_type_locks(rep, allocs, claims)
    check_quota(rep, quotas, claims)
    if settled:
        check_recovery(rep, hosts, claims)
    rep.notes.append("snapshot at revision %d: %d hosts, %d GPUs, %d alloc, %d claims, %d sessions, %d events" %
                     (rev, len(hosts), len(gpus), len(allocs), len(claims), len(sessions), len(events)))
    return rep


def check_alloc(rep, allocs, claims, inventory):
    by_gpu = {}
    for (h, c), kv in claims.items():
        g = kv.value.get("gpu")
        by_gpu.setdefault(g, []).append(kv)
        if kv.value.get("host") != h:
            rep.bad("alloc", "%s says host %r" % (kv.where(), kv.value.get("host")))
        if kv.value.get("claim") not in (None, c):
            rep.bad("alloc", "%s says claim %r" % (kv.where(), kv.value.get("claim")))
    for g in sorted(set(allocs) | set(by_gpu)):
        a = allocs.get(g)
        mine = by_gpu.get(g, [])
        ids = sorted(kv.key.rsplit("/", 1)[1] for kv in mine)
        if a is None:
            rep.bad("alloc", "GPU %s has claims %s but no alloc key" % (g, ", ".join(kv.where() for kv in mine)))
            continue
        listed = a.value.get("claims") or []
        if sorted(listed) != ids or len(set(listed)) != len(listed):
            rep.bad("alloc", "%s lists claims %s, the claim keys naming GPU %s are %s" %
                    (a.where(), sorted(listed), g, ["%s@%d" % (kv.key, kv.create_revision) for kv in mine]))
        vram = sum(int_field(kv.value, "vram_bytes") for kv in mine)
        share = sum(int_field(kv.value.get("slice"), "share_percent") for kv in mine)
        if int_field(a.value, "vram_bytes") != vram:
            rep.bad("alloc", "%s has vram_bytes %d, its claims sum to %d (%s)" %
                    (a.where(), int_field(a.value, "vram_bytes"), vram, ", ".join(kv.where() for kv in mine)))
        if int_field(a.value, "share_percent") != share:
            rep.bad("alloc", "%s has share_percent %d, its claims sum to %d" %
                    (a.where(), int_field(a.value, "share_percent"), share))
        hosts_of = {kv.value.get("host") for kv in mine}
        if mine and (len(hosts_of) != 1 or a.value.get("host") not in hosts_of):
            rep.bad("alloc", "%s is on host %r, its claims on %s" % (a.where(), a.value.get("host"), sorted(hosts_of)))
        inv = inventory.get(g)
        if inv is None:
            if mine:
                rep.bad("alloc", "GPU %s: %s was never published under gpus/" % (g, a.where()))
            continue
        cap = int_field(inv.value, "vram_total_bytes")
        if int_field(a.value, "vram_bytes") > cap:
            rep.bad("alloc", "%s has vram_bytes %d over the capacity %d of %s" %
                    (a.where(), int_field(a.value, "vram_bytes"), cap, inv.where()))
        if share > 100:
            rep.bad("alloc", "%s: slices share %d %% of GPU %s" % (a.where(), share, g))
        types = {t.get("name"): t for t in inv.value.get("types") or []}
        count = {}
        for kv in mine:
            if kv.value.get("kind") == "vgpu" or (kv.value.get("kind") == "vram" and kv.value.get("type")):
                count[kv.value.get("type")] = count.get(kv.value.get("type"), 0) + 1
        for t, n in count.items():
            mx = int_field(types.get(t), "max_instances")
            if t in types and mx and n > mx:
                rep.bad("alloc", "GPU %s has %d claims of type %s, max_instances %d (%s)" % (g, n, t, mx, inv.where()))


def check_fencing(rep, prefix, events, lives):
    present = {}            # key -> KV as the history goes
    for e in events:
        s = split_key(prefix, e.kv.key)
        if s and s[0] == "claims" and not e.deleted and e.kv.version == 1:
            c = e.kv.value or {}
            lease = lease_of(c.get("host_lease"))
            h, g = s[1][0], c.get("gpu")
            if not lives.alive_at(lease, e.revision):
                why = ("died at revision %d" % lives.died[lease]) if lease in lives.died else "had not been granted"
                rep.bad("fencing", "%s created at revision %d with host_lease %s, which %s" %
                        (e.kv.key, e.revision, c.get("host_lease"), why))
            inv = present.get(prefix + "gpus/%s/%s" % (h, g))
            if inv is None:
                rep.bad("fencing", "%s created at revision %d while %sgpus/%s/%s did not exist" %
                        (e.kv.key, e.revision, prefix, h, g))
        if s and s[0] == "claims" and not e.deleted and e.kv.value and e.kv.value.get("state") == "BOUND" and \
                (e.prev is None or (e.prev.value or {}).get("state") != "BOUND" or
                 (e.prev.value or {}).get("host_lease") != e.kv.value.get("host_lease")):
            lease = lease_of(e.kv.value.get("host_lease"))
            if not lives.alive_at(lease, e.revision):
                rep.bad("fencing", "%s set BOUND at revision %d under host_lease %s, dead since revision %s" %
                        (e.kv.key, e.revision, e.kv.value.get("host_lease"), lives.died.get(lease, "?")))
        if e.deleted:
            present.pop(e.kv.key, None)
        else:
            present[e.kv.key] = e.kv


def check_sessions(rep, prefix, claims, sessions, events, clients):
    claim_by_key = {kv.key: kv for kv in claims.values()}
    # each session key names one existing claim that names it back
    referenced = {}
    for sid, kv in sessions.items():
        ck = kv.value.get("claim_key") or ""
        if not ck.startswith(prefix):
            ck = prefix + ck.lstrip("/")
        referenced.setdefault(ck, []).append(kv)
        c = claim_by_key.get(ck)
        if c is None:
            rep.bad("sessions", "%s names claim %s, which does not exist" % (kv.where(), ck))
        elif c.value.get("session") != sid:
            rep.bad("sessions", "%s names %s, whose session is %r" % (kv.where(), c.where(), c.value.get("session")))
    for ck, kv in claim_by_key.items():
        if kv.value.get("state") == "RELEASING":
            continue      # release in progress: the session may be gone already
        sid = kv.value.get("session")
        if sid not in sessions:
            rep.bad("sessions", "%s (state %s) has session %r, which does not exist" %
                    (kv.where(), kv.value.get("state"), sid))

    # every claim ever created per session, and its last value before it went
    created, last_state = {}, {}
    for e in events:
        s = split_key(prefix, e.kv.key)
        if not s or s[0] != "claims":
            continue
        if not e.deleted and e.kv.version == 1 and e.kv.value:
            created.setdefault(e.kv.value.get("session"), []).append((e.kv.key, e.revision))
        if e.deleted and e.prev is not None and e.prev.value:
            last_state[e.kv.key] = (e.prev.value.get("state"), e.revision)

    by_idem = {}
    for r in clients:
        if r.get("op") == "place":
            by_idem.setdefault(r["idempotency_key"], []).append(r)
    released = {}
    for r in clients:
        if r.get("op") == "release" and r.get("outcome") in ("ok", "unknown"):
            released[r["session"]] = released.get(r["session"]) or r.get("outcome")

    for idem, recs in sorted(by_idem.items()):
        sid = session_id(idem)
        acks = [r for r in recs if r.get("outcome") == "ok"]
        made = created.get(sid, [])
        for r in acks:
            if r.get("session") not in (None, sid):
                rep.bad("sessions", "idempotency key %r acknowledged as session %r, expected %s" %
                        (idem, r.get("session"), sid))
        if len({(r.get("claim"), r.get("host"), r.get("gpu")) for r in acks}) > 1:
            rep.bad("sessions", "idempotency key %r acknowledged as different claims: %s" %
                    (idem, sorted({(r.get("claim"), r.get("host"), r.get("gpu")) for r in acks})))
        if acks:
            if len(made) != 1:
                rep.bad("sessions", "acknowledged session %s (key %r) was created %d times: %s" %
                        (sid, idem, len(made), made))
            s = sessions.get(sid)
            if released.get(sid) == "ok":
                if s is not None:
                    c = claim_by_key.get(s.value.get("claim_key", ""))
                    if c is None or c.value.get("state") != "RELEASING":
                        rep.bad("sessions", "released session %s still exists: %s" % (sid, s.where()))
                continue
            if released.get(sid) == "unknown":
                continue
            if s is None:
                gone = [(k, last_state.get(k)) for k, _ in made]
                ok = made and all(st is not None and st[0] in ("PENDING", "FAILED", "LOST") for _, st in gone)
                if not ok:
                    rep.bad("sessions", "acknowledged session %s (key %r) is gone without a release: claims %s" %
                            (sid, idem, gone))
                else:
                    rep.notes.append("session %s went with its claim %s (state %s at revision %d)" %
                                     (sid, gone[0][0], gone[0][1][0], gone[0][1][1]))
                continue
            a = acks[0]
            want = prefix + "claims/%s/%s" % (a.get("host"), a.get("claim"))
            if a.get("claim") and s.value.get("claim_key") not in (want, want[len(prefix):]):
                rep.bad("sessions", "acknowledged session %s: client was told %s, %s names %r" %
                        (sid, want, s.where(), s.value.get("claim_key")))
        elif any(r.get("outcome") == "unknown" for r in recs):
            if len(made) > 1:
                rep.bad("unknown", "unknown-outcome key %r (session %s) created %d claims: %s" % (idem, sid, len(made), made))
        else:
            if made and released.get(sid) is None and sid in sessions:
                rep.bad("sessions", "key %r was refused every time, yet session %s exists: %s" %
                        (idem, sid, sessions[sid].where()))
    # no session's claim created twice, whoever asked
    for sid, made in created.items():
        if len(made) > 1:
            rep.bad("sessions", "session %s has %d claims created: %s" % (sid, len(made), made))


def check_type_locks(rep, allocs, claims):
    by_gpu = {}
    for kv in claims.values():
        by_gpu.setdefault(kv.value.get("gpu"), []).append(kv)
    for g, a in sorted(allocs.items()):
        lock = a.value.get("type_lock")
        typed = [kv for kv in by_gpu.get(g, []) if kv.value.get("kind") in ("vgpu", "vram") and kv.value.get("type")]
        types = {kv.value.get("type") for kv in typed}
        if len(types) > 1:
            rep.bad("type lock", "GPU %s runs %d types at once: %s" %
                    (g, len(types), ", ".join("%s=%s" % (kv.where(), kv.value.get("type")) for kv in typed)))
        if typed and lock not in types:
            rep.bad("type lock", "%s has type_lock %r, its claims are of type %s" % (a.where(), lock, sorted(types)))
        if lock and not by_gpu.get(g):
            rep.bad("type lock", "%s keeps type_lock %r with no claim (capacity stranded)" % (a.where(), lock))


def check_quota(rep, quotas, claims):
    """quota/<tenant> (kept by the claim and release txns when the broker has limits) is the sum of
    the tenant's claims, whatever their state."""
    for t, q in sorted(quotas.items()):
        mine = [kv for kv in claims.values() if kv.value.get("tenant") == t]
        vram = sum(int_field(kv.value, "vram_bytes") for kv in mine)
        if int_field(q.value, "vram_bytes") != vram or int_field(q.value, "sessions") != len(mine):
            rep.bad("quota", "%s says %d bytes in %d sessions; tenant %s has %d claims of %d bytes" %
                    (q.where(), int_field(q.value, "vram_bytes"), int_field(q.value, "sessions"), t, len(mine), vram))


def check_recovery(rep, hosts, claims):
    for (h, c), kv in sorted(claims.items()):
        st = kv.value.get("state")
        host = hosts.get(h)
        live_lease = lease_of((host.value or {}).get("lease")) if host else 0
        if host and not live_lease:
            live_lease = host.lease
        if st == "BOUND":
            if host is None:
                rep.bad("recovery", "%s is BOUND on host %s, which has no live lease" % (kv.where(), h))
            elif lease_of(kv.value.get("host_lease")) not in (live_lease, host.lease):
                rep.bad("recovery", "%s is BOUND under host_lease %s; %s's live lease is %d (%s)" %
                        (kv.where(), kv.value.get("host_lease"), h, live_lease, host.where()))
        elif st == "LOST" and host is not None:
            rep.bad("recovery", "%s is still LOST, yet host %s is back (%s)" % (kv.where(), h, host.where()))
        elif st == "PENDING" and host is not None:
            rep.bad("recovery", "%s is still PENDING on live host %s" % (kv.where(), h))


def trace(events, key, limit=30):
    """The history of one key, one line per change: what a violation's reader needs next."""
    out = []
    for e in events:
        if e.kv.key == key:
            v = (e.prev.value if e.deleted and e.prev else e.kv.value) or {}
            out.append("  rev %d %s lease=%d state=%s host_lease=%s" % (
                e.revision, "DELETE" if e.deleted else "PUT", (e.prev.lease if e.deleted and e.prev else e.kv.lease),
                v.get("state"), v.get("host_lease", v.get("lease"))))
    return out[-limit:]


def traces(prefix, rep, events, limit=6):
    """trace() of the keys the first violations name, and of their hosts' keys."""
    import re
    keys = []
    for v in rep.violations:
        for k in re.findall(re.escape(prefix) + r"[^ ,()']+", v):
            keys.append(k)
            s = split_key(prefix, k)
            if s and s[0] == "claims":
                keys.append(prefix + "hosts/" + s[1][0])
    seen, lines = set(), []
    for k in keys:
        if k not in seen and len(seen) < limit:
            seen.add(k)
            lines += ["history of %s:" % k] + trace(events, k)
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoints", required=True)
    ap.add_argument("--cluster", default="default")
    ap.add_argument("--clients", help="JSON lines, one per client request")
    ap.add_argument("--unsettled", action="store_true", help="skip the after-recovery checks")
    a = ap.parse_args()
    prefix = "/vgpuctl/v1/%s/" % a.cluster
    rev, kvs, events = snapshot(Gateway(a.endpoints.split(",")), prefix)
    clients = [json.loads(line) for line in open(a.clients)] if a.clients else []
    rep = check(prefix, rev, kvs, events, clients, settled=not a.unsettled)
    for n in rep.notes[-1:]:
        print(n)
    for v in rep.violations:
        print("VIOLATION " + v)
    for line in traces(prefix, rep, events):
        print(line)
    print("checker: %d violations" % len(rep.violations))
    sys.exit(1 if rep.violations else 0)


if __name__ == "__main__":
    main()
