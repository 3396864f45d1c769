# SPDX-License-Identifier: LGPL-2.1-or-later
"""The fleet under a storm of faults: 3 etcd members, HOSTS hosts (real vgpud processes on copies
of the nvidia-mdev fixture whose fake kernel materializes created devices; or, with
STORM_HOSTS=synthetic, tests/fleet/stormlib.py's stand-ins), 3 vgpu-brokers, CLIENTS client
threads sending OPS place/release requests with idempotency keys, and during it, by PID:

   t≈4 s   kill -9 the etcd leader, restart it 1.5 s later
   t≈9 s   kill -9 a follower, restart it 1.5 s later
   t≈13 s  kill -9 two hosts, restart them after 2 x TTL + 1 s (their claims go LOST, then reconcile)
   t≈22 s  SIGSTOP one host for 2 x TTL, then SIGCONT (its lease is gone: fencing)
   t≈30 s  kill -9 a broker (clients fail over and retry with the same idempotency key), restart it

Then the fleet settles (every host back, nothing LOST or PENDING on a live host) and
tests/fleet/checker.py judges one snapshot plus every request's outcome. Any violation fails and
is printed with its keys and revisions. Bounded: OPS requests, DURATION s of storm, SETTLE s.

Environment: VGPU_BROKER (the broker), and for real hosts VGPUD, VGPUCTL, FIXTURES, NVML_DOUBLE
(as for tests/daemon). STORM_HOSTS=synthetic|vgpud (default vgpud), HOSTS, OPS, CLIENTS,
DURATION, TTL, SEED."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from etcdcluster import EtcdCluster, skip_without_etcd  # noqa: E402
import checker  # noqa: E402
import stormlib  # noqa: E402
from stormlib import Broker, Etcd, G  # noqa: E402

BROKER = os.environ.get("VGPU_BROKER", "")
MODE = os.environ.get("STORM_HOSTS", "vgpud")
N_HOSTS = int(os.environ.get("HOSTS", "20"))
OPS = int(os.environ.get("OPS", "2400"))
CLIENTS = int(os.environ.get("CLIENTS", "6"))
DURATION = float(os.environ.get("DURATION", "40"))
TTL = int(os.environ.get("TTL", "2"))
SEED = int(os.environ.get("SEED", "12"))
SETTLE = 40
CLUSTER = "storm"
PREFIX = "/vgpuctl/v1/%s/" % CLUSTER
LIVE_PER_CLIENT = 15
# Hosts whose sessions the clients leave alone for a while: the hosts about to be killed, so that
# claims are certain to be on them when their lease ends (the janitor must mark those LOST, and
# the hosts reconcile them when they come back). Without it whether any claim is still there
# when the lease ends is luck: the storm releases quickly.
FROZEN = set()
ATTEMPTS = 8

passed = failed = 0


def ok(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s%s" % (what, (": " + str(detail)[:3000]) if detail != "" else ""), flush=True)
    return cond


def log(text):
    print("[%6.2f] %s" % (time.monotonic() - T0, text), flush=True)


T0 = time.monotonic()


# --- hosts ----------------------------------------------------------------------------------------------

class SimHost:
    """A synthetic host process (stormlib.py host)."""

    def __init__(self, name, endpoints, work, index):
        self.name, self.endpoints, self.work = name, endpoints, work
        self.proc = None

    def start(self):
        self.proc = stormlib.synthetic_hosts(self.endpoints, CLUSTER, [self.name], n_gpus=4, ttl=TTL,
                                             log_dir=self.work)[self.name]

    def signal(self, sig):
        if self.proc.poll() is not None:
            return              # the test is ending and stopped it already
        os.kill(self.proc.pid, sig)
        if sig == signal.SIGKILL:
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return 0

    def check_devices(self, claims):
        return []


class VgpudHost:
    """vgpud on a copy of the nvidia-mdev fixture with a [fleet] section; a fake kernel thread
    creates and removes the mdev devices it asks for (tests/daemon/fakekernel.py)."""

    def __init__(self, name, endpoints, work, index):
        import fleetvgpud       # here: synthetic hosts need no vgpud
        if os.path.isdir("/dev/shm"):
            tempfile.tempdir = "/dev/shm"   # 20 fixture copies: seconds each on a busy disk
        self.vt, self.name, self.endpoints = fleetvgpud, name, endpoints
        self.host = fleetvgpud.fleet_host("nvidia-mdev", index)
        self.conf = os.path.join(self.host.tmp, "vgpud.conf")
        with open(self.conf, "w") as f:
            f.write(fleetvgpud.fleet_conf(endpoints, CLUSTER, name, TTL, poll="2s", address="127.0.0.1:%d" % (30000 + index)))
        self.logpath = os.path.join(self.host.tmp, "vgpud.log")
        self.proc = None

    def devices(self):
        bus = self.host.path("sys/bus/mdev/devices")
        return set(os.listdir(bus)) if os.path.isdir(bus) else set()

    def start(self):
        if not hasattr(self, "own"):
            self.own = self.devices()       # the fixture's own instances, not the fleet's
        self.proc = subprocess.Popen([self.vt.VGPUD, "--config", self.conf, "-v"], env=self.host.env,
                                     stdout=subprocess.DEVNULL, stderr=open(self.logpath, "a"), start_new_session=True)

    def signal(self, sig):
        if self.proc.poll() is not None:
            return              # the test is ending and stopped it already
        os.kill(self.proc.pid, sig)
        if sig == signal.SIGKILL:
            self.proc.wait()

    def stop(self):
        rc = 0
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                rc = "hung on SIGTERM"
        return rc

    def logtext(self):
        try:
            return open(self.logpath, errors="replace").read()
        except OSError:
            return ""

    def check_devices(self, claims):
        """Every BOUND claim of this host has its mdev on the fixture; no device of a claim that
        is gone was left behind by a release (the fixture's own three devices aside)."""
        bad = []
        devs = self.devices()
        for kv in claims:
            c = kv.value
            if c.get("state") == "BOUND" and c.get("kind") != "slice" and c.get("instance") and c["instance"] not in devs:
                bad.append("%s is BOUND with instance %s, which %s does not have" % (kv.where(), c["instance"], self.name))
        leaked = devs - self.own - {kv.value.get("instance") for kv in claims}
        if leaked:
            lines, said = self.logtext().splitlines(), []
            for uuid in sorted(leaked)[:2]:     # the claim that made it, and what vgpud said of it
                cids = {line.split("claim ")[1].split(":")[0] for line in lines if uuid in line and "claim " in line}
                said += [line for line in lines if uuid in line or any(c in line for c in cids)][:8]
            bad.append("%s has vGPUs no claim names (leaked): %s\n  %s" % (self.name, sorted(leaked), "\n  ".join(said)))
        return bad


def kernels(roots, limit):
    """The fake kernels of every vgpud host in one process of their own, each stepped every 20 ms:
    20 FakeKernel threads polling every 5 ms in the test's process would starve the clients (the
    GIL) and the daemons (2 CPUs in CI)."""
    sys.path.insert(0, os.path.join(HERE, "..", "daemon"))
    from fakekernel import FakeKernel

    def loop():
        ks = [FakeKernel(r) for r in roots]
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            for k in ks:
                try:
                    k.step()
                except OSError:
                    pass
            time.sleep(0.02)
        os._exit(0)
    pid = os.fork()
    if pid == 0:
        try:
            loop()
        finally:
            os._exit(0)
    return pid


# --- clients --------------------------------------------------------------------------------------------

class Client(threading.Thread):
    """Requests paced over DURATION; every request recorded with its final outcome. On a broker
    that does not answer (connection refused, timeout, 5xx) the same request goes to the next
    broker with the same idempotency key."""

    def __init__(self, idx, brokers, n_ops, records, lock):
        super().__init__(daemon=True)
        self.idx, self.brokers, self.n_ops = idx, brokers, n_ops
        self.records, self.lock = records, lock
        self.rng = random.Random(SEED * 1000 + idx)
        self.live = []
        self.cur = idx % len(brokers)
        self.failovers = 0

    def send(self, method, path, body):
        """([(broker index, status or exception name)] of each attempt, the final status (None when no
        broker answered for sure), the last answer's body, whether an attempt may have acted unseen)."""
        attempts, data, unsure = [], None, False
        for i in range(ATTEMPTS):
            b = self.brokers[self.cur]
            try:
                status, data = b.request(method, path, body, timeout=5)
            except Exception as e:  # noqa: BLE001 - an unanswered request is an outcome
                status = type(e).__name__
            attempts.append((self.cur, status))
            if isinstance(status, int) and status < 500:
                return attempts, status, data, unsure
            if status == 503 and isinstance(data, dict) and "rejected" in data:
                return attempts, status, data, unsure   # no capacity, with the filters' counts: definite
            unsure = True
            self.cur = (self.cur + 1) % len(self.brokers)
            self.failovers += 1
            time.sleep(0.1 * (i + 1))
        return attempts, None, data, unsure

    def place(self, n):
        idem = "storm-%d-%d-%d" % (SEED, self.idx, n)
        r = self.rng.random()
        if r < 0.35:
            body = {"vram_bytes": self.rng.choice((1, 2, 4)) * G}
        elif r < 0.7:
            body = {"type": self.rng.choice(("nvidia-230", "nvidia-231"))}     # GRID T4-1Q, T4-2Q
        else:
            body = {"type": "nvidia-232"}                                       # GRID T4-4Q
        body.update(user="u%d" % self.idx, tenant="t%d" % (self.idx % 3), idempotency_key=idem)
        attempts, status, data, unsure = self.send("POST", "/v1/sessions", body)
        rec = {"op": "place", "idempotency_key": idem, "attempts": attempts, "status": status}
        if status in (200, 201) and isinstance(data, dict):
            rec.update(outcome="ok", session=data.get("session"), claim=data.get("claim"), host=data.get("host"),
                       gpu=data.get("gpu"))
            self.live.append((data.get("session"), data.get("host")))
        elif status is not None and not unsure:
            rec.update(outcome="fail", detail=str(data)[:200])
        else:
            rec.update(outcome="unknown")
        return rec

    def release(self):
        free = [i for i, (_, host) in enumerate(self.live) if host not in FROZEN]
        sid, host = self.live.pop(self.rng.choice(free))
        attempts, status, data, unsure = self.send("DELETE", "/v1/sessions/" + sid, None)
        outcome = "ok" if status in (200, 202, 204, 404) else ("fail" if status and not unsure else "unknown")
        if outcome == "fail":
            self.live.append((sid, host))       # still there: released later
        return {"op": "release", "session": sid, "attempts": attempts, "status": status, "outcome": outcome,
                "detail": str(data)[:200] if outcome == "fail" else ""}

    def run(self):
        start = time.monotonic()
        for n in range(self.n_ops):
            due = start + DURATION * n / self.n_ops
            if time.monotonic() < due:
                time.sleep(due - time.monotonic())
            if time.monotonic() - start > DURATION * 2:
                break                   # bounded even when every request waits on timeouts
            releasable = any(host not in FROZEN for _, host in self.live)
            if releasable and (len(self.live) >= LIVE_PER_CLIENT or self.rng.random() < 0.45):
                rec = self.release()
            else:
                rec = self.place(n)
            rec["t"] = round(time.monotonic() - T0, 3)
            with self.lock:
                self.records.append(rec)


# --- the storm ------------------------------------------------------------------------------------------

def faults(c, hosts, brokers, done):
    """The fault schedule; returns what happened, for the log and the checks."""
    happened = []
    start = time.monotonic()

    def at(t):
        while time.monotonic() - start < t and not done.is_set():
            time.sleep(0.05)

    at(4)
    lead = c.leader()
    if lead is not None:
        c.kill(lead)
        log("kill -9 etcd leader m%d" % (lead + 1))
        happened.append("leader")
        time.sleep(1.5)
        c.restart(lead)
        log("etcd m%d restarted" % (lead + 1))
    at(9)
    lead = c.leader()
    follower = next(i for i in range(3) if i != lead and c.members[i].alive())
    c.kill(follower)
    log("kill -9 etcd follower m%d" % (follower + 1))
    happened.append("follower")
    time.sleep(1.5)
    c.restart(follower)
    log("etcd m%d restarted" % (follower + 1))
    at(11)
    FROZEN.update(h.name for h in hosts[:2])    # their sessions stay until they are back
    at(13)
    for h in hosts[:2]:
        h.signal(signal.SIGKILL)
    log("kill -9 hosts %s" % ", ".join(h.name for h in hosts[:2]))
    happened.append("hosts")
    at(13 + 2 * TTL + 1)
    for h in hosts[:2]:
        h.start()
    log("hosts %s restarted" % ", ".join(h.name for h in hosts[:2]))
    at(13 + 2 * TTL + 3)
    FROZEN.clear()
    at(22)
    hosts[2].signal(signal.SIGSTOP)
    log("SIGSTOP host %s" % hosts[2].name)
    time.sleep(2 * TTL)
    hosts[2].signal(signal.SIGCONT)
    log("SIGCONT host %s" % hosts[2].name)
    happened.append("stop")
    at(30)
    brokers[0].kill()
    log("kill -9 broker 0")
    happened.append("broker")
    time.sleep(3)
    brokers[0].start(wait=False)
    log("broker 0 restarted")
    return happened


def settle(etcd, names, deadline):
    """Wait until every host is back and nothing is LOST, PENDING or RELEASING on a live host;
    what is still unsettled at the deadline."""
    left = ["(not looked)"]
    while time.monotonic() < deadline:
        try:
            _, kvs = etcd.scan(PREFIX)
        except RuntimeError as e:
            left = [str(e)]
            time.sleep(0.2)
            continue
        live = {kv.key[len(PREFIX) + 6:] for kv in kvs if kv.key.startswith(PREFIX + "hosts/")}
        left = ["host %s not back" % h for h in names if h not in live]
        left += ["%s is %s" % (kv.key, kv.value.get("state")) for kv in kvs
                 if kv.key.startswith(PREFIX + "claims/") and kv.value and kv.value.get("state") in ("LOST", "PENDING", "RELEASING")]
        if not left:
            return []
        time.sleep(0.2)
    return left


def main():
    skip_without_etcd()
    # a timeout (meson's, or timeout(1)) sends SIGTERM: unwind, so the finally blocks stop every
    # etcd member, daemon and broker this started (each runs in its own session)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    if not BROKER or not os.access(BROKER, os.X_OK):
        print("skip: vgpu-broker not built (VGPU_BROKER=%r)" % BROKER)
        sys.exit(77)
    work = tempfile.mkdtemp(prefix="vgpu-storm-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    hosts, brokers, records, lock = [], [], [], threading.Lock()
    keep = False
    kernel_pid = None
    with EtcdCluster(3) as c:
        try:
            log("etcd: %s (TTL %d s, %s hosts)" % (" ".join(c.endpoints), TTL, MODE))
            names = ["host%02d" % i for i in range(N_HOSTS)]
            for i, n in enumerate(names):
                hosts.append((VgpudHost if MODE == "vgpud" else SimHost)(n, c.endpoints, work, i))
            if MODE == "vgpud":
                kernel_pid = kernels([h.host.root for h in hosts], DURATION * 2 + SETTLE + 180)
            log("%d host roots ready" % len(hosts))
            for h in hosts:
                h.start()
            log("%d hosts started" % len(hosts))
            etcd = Etcd(c.endpoints)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                _, kvs = etcd.scan(PREFIX + "gpus/")
                up = {kv.key.split("/")[-2] for kv in kvs}
                if up >= set(names):
                    break
                time.sleep(0.2)
            ok(up >= set(names), "every host published its GPUs", sorted(set(names) - up))
            log("%d hosts up with %d GPUs" % (len(up), len(kvs)))
            # every placement the broker's index draws is checked against the full scan (a
            # disagreement is logged and counted; the finally block below fails on it)
            os.environ["VGPU_BROKER_CHECK_INDEX"] = "1"
            brokers = [Broker(BROKER, c.endpoints, CLUSTER, work, i).start() for i in range(3)]
            log("3 brokers ready")

            clients = [Client(i, brokers, OPS // CLIENTS, records, lock) for i in range(CLIENTS)]
            for cl in clients:
                cl.start()
            done = threading.Event()
            box = []
            ft = threading.Thread(target=lambda: box.append(faults(c, hosts, brokers, done)), daemon=True)
            ft.start()
            for cl in clients:
                cl.join(DURATION * 2 + 60)
            done.set()
            ft.join(60)
            happened = box[0] if box else []
            log("storm over: %d requests" % len(records))
            indexed = 0
            for b in brokers:
                try:
                    met = b.request("GET", "/metrics")[1]
                    indexed += sum(int(float(line.split()[-1])) for line in str(met).splitlines()
                                   if line.startswith("vgpu_broker_placements_indexed_total "))
                except OSError:
                    pass
            ok(indexed > 0, "placements were drawn from the brokers' index", indexed)
            ok(set(happened) == {"leader", "follower", "hosts", "stop", "broker"}, "every fault was injected", happened)
            try:
                ok(brokers[0].wait_ready(20) >= 0, "the killed broker is ready again")
            except RuntimeError as e:
                ok(False, "the killed broker is ready again", e)
            outcomes = {}
            for r in records:
                outcomes[(r["op"], r["outcome"])] = outcomes.get((r["op"], r["outcome"]), 0) + 1
            log("outcomes: %s; failovers %d" % (outcomes, sum(cl.failovers for cl in clients)))
            ok(len(records) >= 2000, "at least 2,000 requests", len(records))
            acked = outcomes.get(("place", "ok"), 0)
            ok(acked >= len([r for r in records if r["op"] == "place"]) // 2, "most placements acknowledged", outcomes)
            ok(outcomes.get(("release", "ok"), 0) >= 500, "releases acknowledged", outcomes)

            left = settle(etcd, names, time.monotonic() + SETTLE)
            ok(not left, "the fleet settles within %d s" % SETTLE, left[:20])
            log("settled" if not left else "not settled: %d left" % len(left))

            rev, kvs, events = checker.snapshot(checker.Gateway(c.endpoints), PREFIX)
            for item in left[:4]:       # what the stuck ones went through, and what their host said
                key = item.split(" ")[0]
                if key.startswith(PREFIX + "claims/"):
                    print("history of %s:\n%s" % (key, "\n".join(checker.trace(events, key))))
                    h = next((h for h in hosts if h.name == key.split("/")[-2]), None)
                    if MODE == "vgpud" and h:
                        cid = key.rsplit("/", 1)[1]
                        print("\n".join("  %s: %s" % (h.name, line) for line in h.logtext().splitlines() if cid in line))
            rep = checker.check(PREFIX, rev, kvs, events, records, settled=True)
            log(rep.notes[-1])
            for v in rep.violations[:60]:
                print("VIOLATION " + v, flush=True)
            for line in checker.traces(PREFIX, rep, events):
                print(line, flush=True)
            ok(not rep.violations, "the checker finds no violation (%d)" % len(rep.violations))
            # the faults did what they should: the killed hosts' claims went LOST, then back
            states = {}
            for e in events:
                if not e.deleted and e.kv.key.startswith(PREFIX + "claims/") and e.kv.value:
                    st = e.kv.value.get("state")
                    if e.prev is None or (e.prev.value or {}).get("state") != st:
                        states[st] = states.get(st, 0) + 1
            log("claim state transitions in the history: %s" % states)
            lost = [e for e in events if not e.deleted and e.kv.value and e.kv.value.get("state") == "LOST"]
            ok(lost, "claims on the killed hosts were marked LOST during the storm")
            claims = [kv for kv in kvs.values() if kv.key.startswith(PREFIX + "claims/")]
            for h in hosts:
                for b in h.check_devices([kv for kv in claims if kv.key.startswith(PREFIX + "claims/%s/" % h.name)]):
                    ok(False, "devices", b)
            with open(os.path.join(work, "clients.jsonl"), "w") as f:
                for r in records:
                    f.write(json.dumps(r) + "\n")
        except Exception:
            keep = True
            raise
        finally:
            for b in brokers:
                rc = b.stop()
                text = b.logtext()
                ok(rc in (0, -signal.SIGTERM), "broker %d stops cleanly" % b.index, "%s: %s" % (rc, text[-1500:]))
                ok("Sanitizer" not in text and "runtime error:" not in text, "broker %d: sanitizer report" % b.index,
                   text[-3000:])
                ok("placement index chose" not in text and "placement index: GPU" not in text,
                   "broker %d: its placement index agreed with the full scan" % b.index,
                   "\n".join(line for line in text.splitlines() if "placement index" in line)[:3000])
            for h in hosts:
                rc = h.stop()
                if MODE == "vgpud":
                    text = h.logtext()
                    ok(rc in (0, -signal.SIGTERM), "vgpud %s stops cleanly" % h.name, "%s: %s" % (rc, text[-1500:]))
                    ok("Sanitizer" not in text and "runtime error:" not in text, "vgpud %s: sanitizer report" % h.name,
                       text[-3000:])
            if kernel_pid:
                os.kill(kernel_pid, signal.SIGKILL)
                os.waitpid(kernel_pid, 0)
            if failed or keep:
                if MODE == "vgpud":
                    for h in hosts[:4]:
                        print("--- vgpud %s log tail:\n%s" % (h.name, h.logtext()[-2000:]))
                for b in brokers:
                    print("--- broker %d log tail:\n%s" % (b.index, b.logtext()[-2500:]))
                print("storm: logs and clients.jsonl kept in %s" % work)
            else:
                shutil.rmtree(work, ignore_errors=True)
            if MODE == "vgpud":
                for h in hosts:
                    if failed or keep:
                        print("vgpud %s: %s" % (h.name, h.host.tmp))
                    else:
                        h.host.cleanup()
    print("storm: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
