# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench/fleet.sh's driver: the fleet's costs, side by side in one run on one 3-member etcd
(tmpfs, loopback), each phase under its own cluster prefix so one cannot warm the next:

  lock     the baseline other schedulers use: placement serialized by a global etcd lock
           (/v3/lock/lock -> range alloc/ -> claim txn -> /v3/lock/unlock), W workers
  b1, b4   vgpu-broker x1 and x4, the same W workers spread over them (POST /v1/sessions), each
           worker sending its next request when the last is answered: the most they give
  b4p      4 brokers on a fleet of their own with the requests paced at --rate (600/s, the rate
           target) and each latency counted from when its request was due: the p99 at that load
  death    a host killed (-9): how long until no broker offers its GPUs (target TTL + 1 s)
  leader   etcd leader killed (-9) under a stream of writes: the longest write pause (<= 3 s)
  big      1,000 synthetic hosts x 8 GPUs: a broker's ready time after a restart (< 2 s),
           placement p99 at that size, the broker's RSS

Each placement asks one nvidia-230 (GRID T4-1Q, 1 GiB) with a fresh idempotency key, each worker (a
process) on one kept-alive connection with a lean HTTP client (PlaceClient); hosts are synthetic
(lease-bound keys as vgpud writes them, tests/fleet/stormlib.py). Prints one line per number,
ratios, then each target met / NOT met. Beside the rates: etcd requests and the CPU of the brokers,
of etcd and of the bench's own clients per placement (they all share this machine's cores)."""

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fleet"))
from etcdcluster import EtcdCluster, skip_without_etcd  # noqa: E402
import stormlib  # noqa: E402
from stormlib import Etcd, Broker, G, b64, gpu_id  # noqa: E402
from checker import session_id  # noqa: E402

TYPE = "nvidia-230"


def worker_init():
    """A pool worker dies of SIGTERM as processes do: main()'s handler (sys.exit in every process
    forked from it) made a worker that Pool.terminate() stopped unwind into the pool's own locks,
    where it hung, and the bench with it, for good."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


# --- the lock baseline ----------------------------------------------------------------------------------

def lock_worker(args):
    """n placements, each under the global lock; returns (latencies, failures)."""
    endpoints, prefix, gpus, n, wid, deadline = args
    e = Etcd(endpoints)
    lease = e.grant(120)
    lats, fails = [], 0
    for i in range(n):
        t = time.perf_counter()
        if time.monotonic() > deadline:
            break
        lk = e.post("/v3/lock/lock", {"name": b64(prefix + "lock"), "lease": str(lease)})["key"]
        try:
            _, allocs = e.scan(prefix + "alloc/")
            seen = {kv.key.rsplit("/", 1)[1]: kv for kv in allocs}
            best = None
            for host, gpu in gpus:
                a = seen.get(gpu)
                n_claims = len(a.value["claims"]) if a else 0
                if n_claims < 16 and (best is None or n_claims < best[2]):
                    best = (host, gpu, n_claims)
            if best is None:
                fails += 1
                continue
            host, gpu, _ = best
            idem = "lock-%d-%d-%d" % (os.getpid(), wid, i)
            sid, cid = session_id(idem), "c%d-%d" % (wid, i)
            a = seen.get(gpu)
            av = dict(a.value) if a else {"host": host, "gpu": gpu, "vram_bytes": 0, "share_percent": 0, "claims": []}
            av.update(vram_bytes=av["vram_bytes"] + G, type_lock=TYPE, claims=av["claims"] + [cid])
            akey, ckey = prefix + "alloc/" + gpu, prefix + "claims/%s/%s" % (host, cid)
            claim = {"claim": cid, "session": sid, "user": "bench", "tenant": "bench", "host": host, "gpu": gpu,
                     "kind": "vgpu", "type": TYPE, "vram_bytes": G, "slice": None, "state": "PENDING",
                     "host_lease": "0", "created_ms": 0, "deadline_ms": 0}
            cmp = [(akey, "MOD", "EQUAL", a.mod_revision) if a else (akey, "CREATE", "EQUAL", 0),
                   (prefix + "sessions/" + sid, "CREATE", "EQUAL", 0)]
            ok, _, _ = e.txn(cmp, [("put", akey, json.dumps(av)), ("put", ckey, json.dumps(claim)),
                                   ("put", prefix + "sessions/" + sid, json.dumps({"session": sid, "claim_key": ckey}))])
            if not ok:
                fails += 1
        finally:
            e.post("/v3/lock/unlock", {"key": lk})
        lats.append(time.perf_counter() - t)
    return lats, fails


def run_lock(c, prefix, hosts, n, workers, limit=90):
    gpus = [(h, gpu_id(h, i)) for h in hosts for i in range(8)]
    per = n // workers
    t = time.perf_counter()
    with multiprocessing.Pool(workers, initializer=worker_init) as pool:
        res = pool.map(lock_worker, [(c.endpoints, prefix, gpus, per, w, time.monotonic() + limit)
                                     for w in range(workers)])
    wall = time.perf_counter() - t
    lats = [x for r in res for x in r[0]]
    return {"rate": len(lats) / wall, "p50": pct(lats, 0.5), "p99": pct(lats, 0.99), "fails": sum(r[1] for r in res)}


# --- placements through brokers -------------------------------------------------------------------------

def place_body(idem):
    return {"user": "bench", "tenant": "bench", "type": TYPE, "idempotency_key": idem}


class PlaceClient:
    """POST /v1/sessions on one kept-alive connection to a broker's UNIX socket, with as little
    Python per request as HTTP allows. The workers share the brokers' and etcd's two cores here;
    http.client (its header parsing) cost 0.22 ms of CPU per request, ~10 % of what a placement
    costs the whole system, and its latency sat in the client's run queue, not the broker's."""

    def __init__(self, sock, timeout=10):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(timeout)
        self.s.connect(sock)

    def close(self):
        self.s.close()

    def post(self, path, body):
        """the answer's status and body (bytes)"""
        data = json.dumps(body).encode()
        self.s.sendall(b"POST %s HTTP/1.1\r\nHost: broker\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(data), data))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = [int(x.split(b":", 1)[1]) for x in lines[1:] if x[:15].lower() == b"content-length:"]
        if not length:
            raise ConnectionError("an answer without Content-Length: %r" % lines[0])
        while len(rest) < length[0]:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            rest += chunk
        return int(lines[0].split()[1]), rest


def broker_worker(args):
    """per-worker: n placements, back to back (rate None) or paced: with W workers at R/s in all,
    worker w's request i is due at start + (i * W + w) / R, and its latency runs from when it was
    due, not from when it went out: a late answer delays the next request, and that wait counts
    (no coordinated omission)."""
    socks, n, wid, tag, deadline, workers, rate, start = args
    sock = socks[wid % len(socks)]
    conn = PlaceClient(sock)
    # Before the clock: the connection, one placement (not measured) and the wait for the common
    # start. Handing out the workers' jobs took the pool longer than its 20 ms here when the
    # machine was busy, and paced requests then started late: the bench's own start counted as
    # the system's latency (9 of a run's 20 slowest placements were its first 20 ms).
    try:
        conn.post("/v1/sessions", place_body("%s-warm-%d" % (tag, wid)))
    except Exception:  # noqa: BLE001 - the measured requests will say it
        conn.close()
        conn = PlaceClient(sock)
    lats, codes = [], {}
    cpu0 = time.process_time()
    if start > time.perf_counter():
        time.sleep(start - time.perf_counter())
    for i in range(n):
        t = time.perf_counter()
        if rate:
            due = start + (i * workers + wid) / rate
            if due > t:
                time.sleep(due - t)
            t = due
        if time.monotonic() > deadline:
            codes["not sent (phase time limit)"] = codes.get("not sent (phase time limit)", 0) + n - i
            break
        try:
            status, _ = conn.post("/v1/sessions", place_body("%s-%d-%d" % (tag, wid, i)))
        except Exception as e:  # noqa: BLE001 - counted, the bench goes on
            status = type(e).__name__
            conn.close()
            conn = PlaceClient(sock)
        lats.append(time.perf_counter() - t)
        codes[status] = codes.get(status, 0) + 1
    conn.close()
    return lats, codes, time.process_time() - cpu0


def metric_sum(brokers, names):
    """Sum of the first metric found among names over every broker's /metrics."""
    total = 0.0
    for b in brokers:
        try:
            _, text = b.request("GET", "/metrics")
        except OSError:
            continue
        for name in names:
            vals = [float(line.split()[-1]) for line in str(text).splitlines()
                    if line.startswith(name) and not line.startswith("#") and (line[len(name)] in " {")]
            if vals:
                total += sum(vals)
                break
    return total


CONFLICTS = ("vgpu_broker_conflicts_total", "vgpu_broker_claim_conflicts_total")
KV_METHODS = ("Range", "Put", "DeleteRange", "Txn")


def etcd_kv_requests(endpoints):
    """KV requests (range, put, delete, txn) every member has answered so far: the gateway's
    requests go through etcd's gRPC server, which counts them."""
    total = 0
    for ep in endpoints:
        try:
            text = urllib.request.urlopen(ep + "/metrics", timeout=5).read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("grpc_server_handled_total{") and 'grpc_service="etcdserverpb.KV"' in line and \
                    any('grpc_method="%s"' % m in line for m in KV_METHODS):
                total += float(line.split()[-1])
    return total


def cpu_seconds(pids):
    """user + system CPU time of these processes so far"""
    total = 0
    for pid in pids:
        try:
            f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def run_brokers(brokers, n, workers, tag, endpoints=(), limit=90, etcd_pids=(), rate=None):
    """n placements by W workers over the brokers, stopped after limit seconds (a wedged broker
    must not hang the whole bench: each unanswered request waits 10 s). Back to back, each worker
    sending its next request when the last is answered (the most the system gives), or paced at
    rate placements/s offered in all (the latency at that load)."""
    socks = [b.sock for b in brokers]
    before = metric_sum(brokers, CONFLICTS)
    kv0, cpu0 = etcd_kv_requests(endpoints), cpu_seconds([b.proc.pid for b in brokers])
    ecpu0 = cpu_seconds(etcd_pids)
    per = n // workers
    with multiprocessing.Pool(workers, initializer=worker_init) as pool:
        pool.map(time.sleep, [0] * workers)    # the workers forked before the clock starts
        # every worker connected, warmed and waiting by then (broker_worker); the clock starts there
        start = time.perf_counter() + 0.5
        res = pool.map(broker_worker, [(socks, per, w, tag, time.monotonic() + limit, workers, rate, start)
                                       for w in range(workers)])
    wall = time.perf_counter() - start
    lats = [x for r in res for x in r[0]]
    client_cpu = sum(r[2] for r in res)
    codes = {}
    for r in res:
        for k, v in r[1].items():
            codes[k] = codes.get(k, 0) + v
    ok = codes.get(201, 0) + codes.get(200, 0)
    conflicts = metric_sum(brokers, CONFLICTS) - before
    kv, cpu = etcd_kv_requests(endpoints) - kv0, cpu_seconds([b.proc.pid for b in brokers]) - cpu0
    ecpu = cpu_seconds(etcd_pids) - ecpu0
    return {"rate": ok / wall, "p50": pct(lats, 0.5), "p99": pct(lats, 0.99), "codes": codes,
            "conflicts": conflicts / ok if ok else float("nan"),
            "kv": kv / ok if ok and endpoints else float("nan"), "cpu_ms": cpu / ok * 1e3 if ok else float("nan"),
            "etcd_cpu_ms": ecpu / ok * 1e3 if ok and etcd_pids else float("nan"),
            "client_cpu_ms": client_cpu / ok * 1e3 if ok else float("nan")}


def costs(r):
    """what each placement cost: etcd round trips, broker and etcd CPU (all brokers, all members):
    less noisy than rates on a shared machine"""
    return "%.2f etcd KV requests, %.2f ms broker CPU, %.2f ms etcd CPU and %.2f ms client CPU per placement" % (
        r["kv"], r["cpu_ms"], r["etcd_cpu_ms"], r["client_cpu_ms"])


def etcd_pids(c):
    return [c.pid(i) for i in range(len(c.members)) if c.pid(i)]


# --- faults ---------------------------------------------------------------------------------------------

def host_death(c, exe, work, ttl):
    cluster = "bench-death"
    prefix = "/vgpuctl/v1/%s/" % cluster
    procs = stormlib.synthetic_hosts(c.endpoints, cluster, ["doomed", "keeper"], n_gpus=2, ttl=ttl, log_dir=work)
    b = Broker(exe, c.endpoints, cluster, work, 90).start()
    try:
        def offered():
            _, gpus = b.request("GET", "/v1/gpus")
            items = gpus.get("gpus", gpus) if isinstance(gpus, dict) else gpus
            return {g.get("host") for g in items if isinstance(g, dict) and g.get("alive", True)
                    and g.get("state", "up") not in ("dead", "lost", "down")}
        deadline = time.monotonic() + 10
        while "doomed" not in offered() and time.monotonic() < deadline:
            time.sleep(0.05)
        if "doomed" not in offered():
            return float("nan")
        time.sleep(ttl / 3.0 + 0.1)   # not right after a keepalive: the worst case is a full TTL
        os.kill(procs["doomed"].pid, signal.SIGKILL)
        t = time.monotonic()
        while "doomed" in offered() and time.monotonic() - t < ttl + 10:
            time.sleep(0.02)
        return time.monotonic() - t
    finally:
        b.stop()
        for p in procs.values():
            p.kill()
            p.wait()
        Etcd(c.endpoints).post("/v3/kv/deleterange", {"key": b64(prefix), "range_end": b64(stormlib.prefix_end(prefix))})


def leader_pause(c):
    """Writes every 5 ms from one client (every endpoint, 0.5 s timeout); kill -9 the leader;
    the longest gap between two acknowledged writes."""
    e = Etcd(c.endpoints, timeout=0.5)
    acks, stop = [], threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            try:
                e.put_lease("/bench/pause", str(i))
                acks.append(time.monotonic())
            except RuntimeError:
                pass
            i += 1
            time.sleep(0.005)
    th = threading.Thread(target=writer)
    th.start()
    time.sleep(1)
    lead = c.leader()
    c.kill(lead)
    t_kill = time.monotonic()
    time.sleep(5)
    stop.set()
    th.join()
    c.restart(lead)
    c.wait_leader()
    gaps = [b - a for a, b in zip(acks, acks[1:]) if b >= t_kill]
    return max(gaps) if gaps else float("nan")


def big(c, exe, work, n_hosts, n):
    cluster = "bench-big"
    prefix = "/vgpuctl/v1/%s/" % cluster
    e = Etcd(c.endpoints)
    t = time.monotonic()
    stormlib.bulk_hosts(e, prefix, n_hosts, 8)
    fill = time.monotonic() - t
    b = Broker(exe, c.endpoints, cluster, work, 91).start()
    b.stop()
    ready = b.start(wait=False).wait_ready()     # the restart: a cold process against the full prefix
    r = run_brokers([b], n, 4, "big", c.endpoints, etcd_pids=etcd_pids(c))
    rss = b.rss_kib()
    b.stop()
    return fill, ready, r, rss


def main():
    ap = argparse.ArgumentParser()
    # a timeout (meson's, or timeout(1)) sends SIGTERM: unwind, so the finally blocks stop every
    # etcd member, daemon and broker this started (each runs in its own session)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    ap.add_argument("--broker", default=os.environ.get("VGPU_BROKER", "build/src/vgpu-broker/vgpu-broker"))
    ap.add_argument("-n", type=int, default=int(os.environ.get("N", "2000")), help="placements per phase")
    ap.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "8")))
    ap.add_argument("--hosts", type=int, default=25, help="synthetic hosts (x 8 GPUs) for the rate phases")
    ap.add_argument("--big-hosts", type=int, default=1000)
    ap.add_argument("--ttl", type=int, default=2)
    ap.add_argument("--rate", type=int, default=600, help="offered placements/s of the paced 4-broker run (0: none)")
    ap.add_argument("--only", default="lock,b1,b4,b4p,death,leader,big")
    a = ap.parse_args()
    skip_without_etcd()
    t_bench = time.monotonic()
    phases = a.only.split(",")
    have_broker = os.access(a.broker, os.X_OK)
    if not have_broker:
        print("fleet: %s missing: only the etcd-side phases run" % a.broker)
    work = tempfile.mkdtemp(prefix="vgpu-fleet-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    res = {}
    with EtcdCluster(3) as c:
        print("etcd: 3 members %s, data on %s; %d CPUs, load average %s" % (
            ", ".join(c.endpoints), c.dir, os.cpu_count(), " ".join(open("/proc/loadavg").read().split()[:3])), flush=True)
        hosts = ["h%03d" % i for i in range(a.hosts)]
        e = Etcd(c.endpoints)
        for name in ("lock", "b1", "b4", "b4p"):
            stormlib.bulk_hosts(e, "/vgpuctl/v1/bench-%s/" % name, a.hosts, 8, name="h%03d")
        if "lock" in phases:
            r = res["lock"] = run_lock(c, "/vgpuctl/v1/bench-lock/", hosts, a.n, a.workers)
            print("lock baseline: %.0f placements/s, p50 %.1f ms, p99 %.1f ms (%d workers, %d failed)" %
                  (r["rate"], r["p50"] * 1e3, r["p99"] * 1e3, a.workers, r["fails"]), flush=True)
        for name, nb in (("b1", 1), ("b4", 4)):
            if name not in phases or not have_broker:
                continue
            bs = [Broker(a.broker, c.endpoints, "bench-" + name, work, i).start() for i in range(nb)]
            try:
                r = res[name] = run_brokers(bs, a.n, a.workers, name, c.endpoints, etcd_pids=etcd_pids(c))
                r["rss"] = max(b.rss_kib() for b in bs)
                print("%d broker%s: %.0f placements/s, p50 %.1f ms, p99 %.1f ms, %.3f conflicts/placement, "
                      "answers %s, RSS %d KiB; %s" % (nb, "s" if nb > 1 else "", r["rate"], r["p50"] * 1e3,
                                                      r["p99"] * 1e3, r["conflicts"], r["codes"], r["rss"], costs(r)),
                      flush=True)
            finally:
                for b in bs:
                    b.stop()
        if "b4p" in phases and have_broker and a.rate:
            # 4 brokers at the target rate, on a fleet of their own: the latency a client sees at
            # 600/s offered, not at whatever rate back-to-back workers push the two cores to
            bs = [Broker(a.broker, c.endpoints, "bench-b4p", work, 4 + i).start() for i in range(4)]
            try:
                p = res["b4-paced"] = run_brokers(bs, a.n, a.workers, "b4p", c.endpoints, etcd_pids=etcd_pids(c),
                                                  rate=a.rate)
            finally:
                for b in bs:
                    b.stop()
            print("4 brokers at %d/s offered: %.0f placements/s, p50 %.1f ms, p99 %.1f ms, "
                  "%.3f conflicts/placement, answers %s; %s" % (
                      a.rate, p["rate"], p["p50"] * 1e3, p["p99"] * 1e3, p["conflicts"], p["codes"], costs(p)),
                  flush=True)
        if "death" in phases and have_broker:
            res["death"] = host_death(c, a.broker, work, a.ttl)
            print("host death: its GPUs no longer offered after %.2f s (TTL %d s)" % (res["death"], a.ttl), flush=True)
        if "leader" in phases:
            res["leader"] = leader_pause(c)
            print("etcd leader kill -9: longest write pause %.2f s" % res["leader"], flush=True)
        if "big" in phases and have_broker:
            fill, ready, r, rss = big(c, a.broker, work, a.big_hosts, min(a.n, 1000))
            res["big"] = (ready, r, rss)
            print("%d hosts x 8 GPUs (written in %.1f s): broker ready %.2f s after restart, placement p99 %.1f ms "
                  "(%.0f/s, answers %s), RSS %d KiB; %s" % (a.big_hosts, fill, ready, r["p99"] * 1e3, r["rate"],
                                                            r["codes"], rss, costs(r)), flush=True)

    shutil.rmtree(work, ignore_errors=True)
    print("\nload average at the end: %s (absolute rates scale with the CPU left over; ratios less so)" %
          " ".join(open("/proc/loadavg").read().split()[:3]))
    targets = []
    lock, b1, b4 = res.get("lock"), res.get("b1"), res.get("b4")
    if b1 and b4:
        print("ratio 4 brokers / 1 broker: %.2fx" % (b4["rate"] / b1["rate"]))
    if lock and b4:
        print("ratio 4 brokers / lock baseline: %.2fx" % (b4["rate"] / lock["rate"]))
    if lock and b1:
        print("ratio 1 broker / lock baseline: %.2fx" % (b1["rate"] / lock["rate"]))
    if b4:
        targets += [(">= 600 placements/s with 4 brokers", b4["rate"] >= 600, "%.0f/s" % b4["rate"])]
        paced = res.get("b4-paced")
        if paced:
            # the rate target's load, offered: p99 there, and the rate actually kept
            targets.append(("p99 <= 25 ms with 4 brokers at %d/s" % a.rate,
                            paced["p99"] <= 0.025 and paced["rate"] >= 0.97 * a.rate,
                            "%.1f ms (%.0f/s kept)" % (paced["p99"] * 1e3, paced["rate"])))
        # and at whatever rate W workers back to back reach: both are printed, and both must hold
        targets.append(("p99 <= 25 ms with 4 brokers back to back", b4["p99"] <= 0.025,
                        "%.1f ms (%.0f/s, %d workers)" % (b4["p99"] * 1e3, b4["rate"], a.workers)))
        targets.append(("< 0.05 conflicts/placement", b4["conflicts"] < 0.05, "%.3f" % b4["conflicts"]))
    if lock and b4:
        targets.append((">= 3x the lock baseline", b4["rate"] >= 3 * lock["rate"], "%.2fx" % (b4["rate"] / lock["rate"])))
    if "death" in res:
        targets.append(("host death: GPUs gone within TTL + 1 s", res["death"] <= a.ttl + 1, "%.2f s" % res["death"]))
    if "leader" in res:
        targets.append(("leader loss: write pause <= 3 s", res["leader"] <= 3, "%.2f s" % res["leader"]))
    answered = {name: r for name, r in (("b1", b1), ("b4", b4), ("big", res.get("big", (0, None, 0))[1])) if r}
    if answered:
        bad = {name: {k: v for k, v in r["codes"].items() if k not in (200, 201)} for name, r in answered.items()}
        bad = {k: v for k, v in bad.items() if v}
        targets.append(("every placement answered 201", not bad, ", ".join("%s %s" % kv for kv in bad.items()) or "yes"))
    if "big" in res:
        ready, r, rss = res["big"]
        targets += [("broker ready < 2 s at %d x 8" % a.big_hosts, ready < 2, "%.2f s" % ready),
                    ("placement p99 <= 25 ms at %d x 8" % a.big_hosts, r["p99"] <= 0.025, "%.1f ms" % (r["p99"] * 1e3)),
                    ("broker RSS (reported)", True, "%d KiB" % rss)]
    for what, met, got in targets:
        print("target %-44s %-9s %s" % (what, "met" if met else "NOT met", got))
    print("bench: %.0f s" % (time.monotonic() - t_bench))


if __name__ == "__main__":
    main()
