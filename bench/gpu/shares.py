#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""shares.py — GPU time per tenant under the time-slice scheduler, with PyTorch bf16 matmul loops:
  fixed-share 30/70 (two 4096^2 tenants)                      target: 30 % within +-3 points
  equal-share, 4 tenants of 1024^2, 2048^2, 4096^2, 8192^2    target: Jain's index >= 0.99
  equal-share, 1024^2 against 8192^2 (the issue's case)       the small tenant toward 50 %
and the same without scheduling (best-effort) for comparison.

GPU time of a tenant = iterations it completed in the window x GPU time of one iteration (CUDA
events over back-to-back iterations, measured alone first). A small-matmul tenant cannot keep the
GPU busy even alone (launch-bound), so equal share is judged against the max-min fair share of
each tenant's demand (its GPU utilization alone): Jain's index of achieved / fair. Raw shares and
the scheduler's own accounting (slice gpu_ns) are printed too."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import GiB, check_build, jain, make_region, remove_region, result, show, slice_env, spawn_python  # noqa: E402

WINDOW = float(os.environ.get("BENCH_WINDOW", "20"))

TENANT = r"""
import json, sys, time, torch
n, start, end = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(a)
torch.cuda.synchronize()
while time.monotonic() < start:
    c = a @ b; torch.cuda.synchronize()
done, batch = 0, 10
while True:
    for _ in range(batch):
        c = a @ b
    torch.cuda.synchronize()
    if time.monotonic() > end:
        break
    done += batch
print(json.dumps({"n": n, "iterations": done}), flush=True)
"""

CALIBRATE = r"""
import json, sys, time, torch
n = int(sys.argv[1])
a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(a)
for _ in range(20):
    c = a @ b
torch.cuda.synchronize()
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
k = max(20, int(2e12 / (2 * n ** 3)))          # about a second of back-to-back work
s.record()
for _ in range(k):
    c = a @ b
e.record(); e.synchronize()
gpu = s.elapsed_time(e) / 1e3 / k
done, t0, batch = 0, time.monotonic(), 10       # the tenant's own loop, alone
while time.monotonic() - t0 < 4:
    for _ in range(batch):
        c = a @ b
    torch.cuda.synchronize(); done += batch
rate = done / (time.monotonic() - t0)
print(json.dumps({"gpu_s": gpu, "demand": min(1.0, rate * gpu)}), flush=True)
"""


def calibrate(sizes):
    cal = {}
    for n in sizes:
        p = spawn_python(CALIBRATE, slice_env(None, None), n)
        cal[n] = json.loads(p.stdout.readline())
        p.wait()
        print(f"  alone: {n}^2 matmul {cal[n]['gpu_s'] * 1e6:.1f} us of GPU, uses {100 * cal[n]['demand']:.0f} % of it",
              flush=True)
    return cal


def run(slices, tenants, cal, quantum_ms=None):
    """tenants: [(slice name, n)]. GPU fraction of the window each one got."""
    region = make_region(slices, quantum_ms)
    start = time.monotonic() + 15                # every process has imported torch by then
    end = start + WINDOW
    procs = [spawn_python(TENANT, slice_env(region, name), n, start, end) for name, n in tenants]
    outs = [json.loads(p.stdout.readline()) for p in procs]
    for p in procs:
        p.wait()
    acct = show(region)
    remove_region(region)
    fractions = [o["iterations"] * cal[o["n"]]["gpu_s"] / WINDOW for o in outs]
    total_ns = sum(acct[name]["gpu_ns"] for name, _ in tenants) or 1
    for (name, n), f in zip(tenants, fractions):
        print(f"  {name}: {n}^2, {100 * f:.1f} % of the GPU's time (scheduler's account: "
              f"{100 * acct[name]['gpu_ns'] / total_ns:.1f} % of slice time)", flush=True)
    return fractions


def fair_shares(demands):
    """Max-min fair division of 1.0 among tenants wanting `demands`."""
    share, left, open_ = [0.0] * len(demands), 1.0, set(range(len(demands)))
    while open_ and left > 1e-9:
        each = left / len(open_)
        done = {i for i in open_ if demands[i] - share[i] <= each}
        if not done:
            for i in open_:
                share[i] += each
            break
        for i in done:
            left -= demands[i] - share[i]
            share[i] = demands[i]
        open_ -= done
    return share


def judge_equal(label, fractions, tenants, cal):
    demands = [cal[n]["demand"] for _, n in tenants]
    fair = fair_shares(demands)
    ratio = [f / s if s else 0 for f, s in zip(fractions, fair)]
    j = jain(ratio)
    result(f"{label} Jain's index (achieved / max-min fair)", f"{j:.4f}", ">= 0.99", j >= 0.99)
    result(f"{label} Jain's index (raw GPU time)", f"{jain(fractions):.4f}", "informational", None)
    return j


def main():
    check_build()
    sizes = [1024, 2048, 4096, 8192]
    print("calibration", flush=True)
    cal = calibrate(sizes)
    mem = 16 * GiB

    print("fixed-share 30/70", flush=True)
    f = run([{"name": "a30", "memory": mem, "policy": "fixed-share", "weight": 30},
             {"name": "b70", "memory": mem, "policy": "fixed-share", "weight": 70}],
            [("a30", 4096), ("b70", 4096)], cal)
    a = 100 * f[0] / (sum(f) or 1)
    result("fixed-share 30/70: a30's share", f"{a:.1f}", "30 +- 3", abs(a - 30) <= 3, " %")
    result("fixed-share 30/70: GPU busy", f"{100 * sum(f):.1f}", "informational", None, " %")

    four = [(f"t{n}", n) for n in sizes]
    for policy in ("equal-share", "best-effort"):
        print(f"{policy}, 4 tenants", flush=True)
        f = run([{"name": name, "memory": mem, "policy": policy} for name, _ in four], four, cal)
        if policy == "equal-share":
            judge_equal("equal-share 4 tenants", f, four, cal)
        else:
            result("best-effort 4 tenants Jain's index (raw)", f"{jain(f):.4f}", "baseline", None)

    two = [("small", 1024), ("large", 8192)]
    for policy in ("best-effort", "equal-share"):
        print(f"{policy}, 1024^2 against 8192^2", flush=True)
        f = run([{"name": name, "memory": mem, "policy": policy} for name, _ in two], two, cal)
        small = 100 * f[0] / (sum(f) or 1)
        result(f"{policy} 1024^2 vs 8192^2: small tenant's share of GPU time", f"{small:.1f}",
               "toward 50" if policy == "equal-share" else "baseline (issue: 5 %)", None, " %")
        if policy == "equal-share":
            judge_equal("equal-share 2 tenants", f, two, cal)


if __name__ == "__main__":
    main()
