#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""quota.py — the hard vRAM quota under real PyTorch: one process allocating until torch raises
its out-of-memory error (with the default caching allocator, expandable_segments and
cudaMallocAsync; the same with CuPy's memory pool where CuPy is installed), cuMemGetInfo as torch
sees it, and 4 processes of one slice allocating at the
same moment (the issue's case: 4 x 1.5 GiB against 4 GiB; 2 fit when contexts are free, fewer
once their overhead is charged: the script says how many must). NVML, read outside the shim, gives
what the driver really holds for each process; the target is 0 bytes above the quota.

The slice charges allocations; a CUDA context also holds driver memory of its own (hundreds of
MiB on an H100), invisible to cuMemAlloc. The script measures it first and sets it as the slice's
per-process overhead, so that NVML's number can be compared with the quota at all."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import GiB, MiB, Nvml, Sampler, check_build, make_region, remove_region, result, slice_env, spawn_python  # noqa: E402

QUOTA = 4 * GiB

CONTEXT = r"""
import time, torch
torch.zeros(1, device="cuda"); torch.cuda.synchronize()
print("ready", flush=True); time.sleep(3)
"""

FILL = r"""
import json, sys, time, torch
free, total = torch.cuda.mem_get_info()
chunks, err = [], None
try:
    while True:
        chunks.append(torch.empty(256 << 20, dtype=torch.uint8, device="cuda"))
except torch.cuda.OutOfMemoryError:
    err = "OutOfMemoryError"
except Exception as e:  # anything else is a failure of the shim
    err = f"{type(e).__name__}: {e}"
torch.cuda.synchronize()
print(json.dumps({"free": free, "total": total, "allocated": len(chunks) * (256 << 20), "error": err}), flush=True)
time.sleep(2)
"""

ONCE = r"""
import json, os, sys, time, torch
torch.zeros(1, device="cuda"); torch.cuda.synchronize()
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.0005)
try:
    x = torch.empty(int(1.5 * (1 << 30)), dtype=torch.uint8, device="cuda"); torch.cuda.synchronize(); r = "ok"
except torch.cuda.OutOfMemoryError:
    r = "oom"
except Exception as e:
    r = f"{type(e).__name__}: {e}"
print(json.dumps({"result": r}), flush=True)
time.sleep(2)
"""


# CuPy: its own memory pool over cudaMalloc, its own OutOfMemoryError
FILL_CUPY = r"""
import json, time, cupy
free, total = cupy.cuda.runtime.memGetInfo()
chunks, err = [], None
try:
    while True:
        chunks.append(cupy.empty(256 << 20, dtype=cupy.uint8))
except cupy.cuda.memory.OutOfMemoryError:
    err = "OutOfMemoryError"
except Exception as e:  # anything else is a failure of the shim
    err = f"{type(e).__name__}: {e}"
cupy.cuda.runtime.deviceSynchronize()
print(json.dumps({"free": free, "total": total, "allocated": len(chunks) * (256 << 20), "error": err}), flush=True)
time.sleep(2)
"""


def context_overhead(nvml):
    p = spawn_python(CONTEXT, slice_env(None, None))
    p.stdout.readline()
    time.sleep(0.5)
    used = nvml.used_by().get(p.pid, 0)
    p.wait()
    return used


def fill(nvml, overhead, alloc_conf, code=FILL, name=None):
    region = make_region([{"name": "q", "memory": QUOTA, "policy": "best-effort", "overhead": overhead,
                           "granularity": 2 * MiB}])
    extra = {"PYTORCH_CUDA_ALLOC_CONF": alloc_conf} if alloc_conf else {}
    p = spawn_python(code, slice_env(region, "q", **extra))
    s = Sampler(nvml, [p.pid])
    s.start()
    out = __import__("json").loads(p.stdout.readline())
    p.wait()
    s.finish()
    remove_region(region)
    name = name or alloc_conf or "default"
    over = max(0, s.max_each.get(p.pid, 0) - QUOTA)
    result(f"quota[{name}] error at the quota", out["error"], "OutOfMemoryError", out["error"] == "OutOfMemoryError")
    result(f"quota[{name}] mem_get_info total", out["total"] // MiB, QUOTA // MiB, out["total"] == QUOTA, " MiB")
    result(f"quota[{name}] allocated before OOM", out["allocated"] // MiB, f"<= {QUOTA // MiB}",
           out["allocated"] <= QUOTA, " MiB")
    result(f"quota[{name}] NVML max above quota", over, 0, over == 0, " bytes")


def four(nvml, overhead):
    region = make_region([{"name": "t", "memory": QUOTA, "policy": "best-effort", "overhead": overhead,
                           "granularity": 2 * MiB}])
    go = region + ".go"
    procs = [spawn_python(ONCE, slice_env(region, "t"), go) for _ in range(4)]
    s = Sampler(nvml, [p.pid for p in procs])
    s.start()
    time.sleep(15)  # contexts up (the go file makes them allocate together)
    open(go, "w").close()
    results = [__import__("json").loads(p.stdout.readline())["result"] for p in procs]
    for p in procs:
        p.wait()
    s.finish()
    os.unlink(go)
    remove_region(region)
    ok, oom = results.count("ok"), results.count("oom")
    other = [r for r in results if r not in ("ok", "oom")]
    # Each process holds its context (overhead) and torch's first 2 MiB segment before the go.
    room = QUOTA - 4 * (overhead + 2 * MiB)
    want = min(4, max(0, room // int(1.5 * GiB)))
    result("quota[4 processes] allocated / OOM / other", f"{ok}/{oom}/{len(other)}", f"{want}/{4 - want}/0",
           ok == want and oom == 4 - want and not other)
    if other:
        print("  other errors:", other)
    over = max(0, s.max_sum - QUOTA)
    result("quota[4 processes] NVML max of the sum above quota", over, 0, over == 0, " bytes")


def main():
    check_build()
    nvml = Nvml()
    overhead = context_overhead(nvml)
    result("context overhead per process (charged to the slice)", overhead // MiB, "measured", None, " MiB")
    for conf in (None, "expandable_segments:True", "backend:cudaMallocAsync"):
        fill(nvml, overhead, conf)
    try:
        __import__("cupy")
        fill(nvml, overhead, None, FILL_CUPY, "cupy")
    except ImportError:
        print("quota[cupy]: SKIP (CuPy is not installed)", flush=True)
    four(nvml, overhead)


if __name__ == "__main__":
    main()
