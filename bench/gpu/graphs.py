#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""graphs.py — the gaps of issue 5's shim closed later, on a real GPU (CI covers them on the fake
driver, `meson test --suite shim`: shim-graph, shim-twogpu, shim-scrub):
  graph memory  the driver API through ctypes under the shim: a graph with a 1.5 GiB allocation
                node in a 2 GiB slice launches (charged by the graph pool's reserved size), a
                second graph of 1 GiB fits once the first one's cached memory is trimmed, and with
                1.5 GiB allocated a relaunch of the first is refused with exactly
                CUDA_ERROR_OUT_OF_MEMORY (2) while the graph pool does not grow.  target: as said
  torch capture PyTorch with backend:cudaMallocAsync captures a step whose temporaries (allocated
                inside torch.cuda.graph, so graph memory nodes) fit a 4 GiB slice and replays it
                50 times; a step needing more than the quota must fail on replay with an
                out-of-memory error, nothing else; NVML (outside the shim) never sees the process
                above quota + its context overhead.   target: 0 bytes over, OOM not another error
  two GPUs      (only with 2+ GPUs) a slice of GPU 0 (by PCI address): tensors on cuda:0 are
                charged, one on cuda:1 raises OutOfMemoryError.  target: exactly that
  scrub handles tenant A (scrub=on-free) fills a 1 GiB cuMemCreate handle with 0xAB through a
                mapping and releases it; tenant B allocates 4 GiB and counts 0xAB. Control: off.
                target: 0 (inconclusive when the control finds nothing)"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import GiB, MiB, Nvml, Sampler, check_build, make_region, remove_region, result, show, slice_env, spawn_python  # noqa: E402

# The driver API from Python, under the shim (LD_PRELOAD covers ctypes' dlopen/dlsym too).
CU = r"""
import ctypes, json, sys
cu = ctypes.CDLL("libcuda.so.1")
def ok(r, what):
    if r: raise SystemExit(json.dumps({"error": f"{what}: CUDA error {r}"}))
class Loc(ctypes.Structure): _fields_ = [("type", ctypes.c_int), ("id", ctypes.c_int)]
class PoolProps(ctypes.Structure):
    _fields_ = [("allocType", ctypes.c_int), ("handleTypes", ctypes.c_int), ("location", Loc),
                ("win32", ctypes.c_void_p), ("maxSize", ctypes.c_size_t), ("usage", ctypes.c_ushort),
                ("reserved", ctypes.c_ubyte * 54)]
class AllocParams(ctypes.Structure):
    _fields_ = [("poolProps", PoolProps), ("accessDescs", ctypes.c_void_p), ("accessDescCount", ctypes.c_size_t),
                ("bytesize", ctypes.c_size_t), ("dptr", ctypes.c_uint64)]
class Prop(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("handleTypes", ctypes.c_int), ("location", Loc), ("win32", ctypes.c_void_p),
                ("flags", ctypes.c_ubyte * 8)]
class Access(ctypes.Structure): _fields_ = [("location", Loc), ("flags", ctypes.c_int)]
ok(cu.cuInit(0), "cuInit")
dev, ctx = ctypes.c_int(), ctypes.c_void_p()
ok(cu.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
ok(cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "retain")
ok(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
def graph(n):
    g, a, f = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    p = AllocParams(bytesize=n); p.poolProps.allocType = 1; p.poolProps.location = Loc(1, 0)
    ok(cu.cuGraphCreate(ctypes.byref(g), 0), "cuGraphCreate")
    ok(cu.cuGraphAddMemAllocNode(ctypes.byref(a), g, None, ctypes.c_size_t(0), ctypes.byref(p)), "alloc node")
    ok(cu.cuGraphAddMemFreeNode(ctypes.byref(f), g, ctypes.byref(a), ctypes.c_size_t(1), ctypes.c_uint64(p.dptr)), "free node")
    e = ctypes.c_void_p()
    ok(cu.cuGraphInstantiateWithFlags(ctypes.byref(e), g, ctypes.c_ulonglong(0)), "instantiate")
    return e
def reserved():
    v = ctypes.c_uint64()
    ok(cu.cuDeviceGetGraphMemAttribute(dev, 2, ctypes.byref(v)), "graph mem attribute")
    return v.value
"""

GRAPH = CU + r"""
out = {}
e1, e2 = graph(1536 << 20), graph(1024 << 20)
out["launch1"] = cu.cuGraphLaunch(e1, None); cu.cuCtxSynchronize(); out["reserved1"] = reserved()
out["launch2"] = cu.cuGraphLaunch(e2, None); cu.cuCtxSynchronize(); out["reserved2"] = reserved()
p = ctypes.c_uint64()
out["alloc"] = cu.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(1536 << 20))
before = reserved()
out["launch_over"] = cu.cuGraphLaunch(e1, None); cu.cuCtxSynchronize()
out["grew"] = reserved() - before
print(json.dumps(out), flush=True)
"""

TORCH = r"""
import json, sys, torch
n = int(sys.argv[1])
x = torch.ones(256 << 20, dtype=torch.uint8, device="cuda")
def step():
    t = [x * 2 for _ in range(n)]           # n temporaries of 256 MiB, freed inside the graph
    return sum(int(i.numel()) for i in t)
s = torch.cuda.Stream()
err = None
try:
    with torch.cuda.stream(s):
        step()                              # warm-up outside capture
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        step()
    for _ in range(50):
        g.replay()
    torch.cuda.synchronize()
except torch.cuda.OutOfMemoryError:
    err = "OutOfMemoryError"
except RuntimeError as e:
    err = "oom" if "out of memory" in str(e) else f"RuntimeError: {e}"
except Exception as e:
    err = f"{type(e).__name__}: {e}"
print(json.dumps({"error": err}), flush=True)
"""

TWO = r"""
import json, torch
a = torch.empty(1 << 30, dtype=torch.uint8, device="cuda:0")
err = None
try:
    b = torch.empty(1 << 30, dtype=torch.uint8, device="cuda:1")
except torch.cuda.OutOfMemoryError:
    err = "OutOfMemoryError"
except Exception as e:
    err = f"{type(e).__name__}: {e}"
print(json.dumps({"error": err}), flush=True)
"""

WRITE_HANDLE = CU + r"""
n = 1 << 30
h, va = ctypes.c_uint64(), ctypes.c_uint64()
prop = Prop(type=1); prop.location = Loc(1, 0)
ok(cu.cuMemCreate(ctypes.byref(h), ctypes.c_size_t(n), ctypes.byref(prop), ctypes.c_ulonglong(0)), "cuMemCreate")
ok(cu.cuMemAddressReserve(ctypes.byref(va), ctypes.c_size_t(n), ctypes.c_size_t(0), ctypes.c_uint64(0), ctypes.c_ulonglong(0)), "reserve")
ok(cu.cuMemMap(ctypes.c_uint64(va.value), ctypes.c_size_t(n), ctypes.c_size_t(0), h, ctypes.c_ulonglong(0)), "map")
acc = Access(Loc(1, 0), 3)
ok(cu.cuMemSetAccess(ctypes.c_uint64(va.value), ctypes.c_size_t(n), ctypes.byref(acc), ctypes.c_size_t(1)), "access")
ok(cu.cuMemsetD8_v2(ctypes.c_uint64(va.value), ctypes.c_ubyte(0xAB), ctypes.c_size_t(n)), "memset")
ok(cu.cuCtxSynchronize(), "sync")
ok(cu.cuMemUnmap(ctypes.c_uint64(va.value), ctypes.c_size_t(n)), "unmap")
ok(cu.cuMemRelease(h), "release")
print(json.dumps({"done": True}), flush=True)
"""

READ = r"""
import json, torch
bufs = [torch.empty(1 << 30, dtype=torch.uint8, device="cuda") for _ in range(4)]
print(json.dumps({"found": sum(int((b == 0xAB).sum()) for b in bufs)}), flush=True)
"""


def run(code, env, *args):
    p = spawn_python(code, env, *args)
    out, _ = p.communicate()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {"error": f"exit {p.returncode}"}


def graph_memory():
    region = make_region([{"name": "g", "memory": 2 * GiB, "policy": "best-effort", "granularity": 2 * MiB}])
    r = run(GRAPH, slice_env(region, "g"))
    print("graph memory:", r, show(region)["g"])
    result("graph memory: first launch", r.get("launch1"), "0", r.get("launch1") == 0)
    result("graph memory: second graph after trimming the first", r.get("launch2"), "0", r.get("launch2") == 0)
    result("graph memory: launch over the quota", r.get("launch_over"), "2 (CUDA_ERROR_OUT_OF_MEMORY)",
           r.get("launch_over") == 2)
    result("graph memory: pool growth of the refused launch", r.get("grew"), "0", r.get("grew") == 0, " bytes")
    remove_region(region)


def torch_capture(nvml):
    quota = 4 * GiB
    # Context overhead is measured by quota.py; here NVML's figure is reported against quota alone.
    for n, fits in ((8, True), (24, False)):       # 2 GiB or 6 GiB of temporaries
        region = make_region([{"name": "t", "memory": quota, "policy": "best-effort", "granularity": 2 * MiB}])
        env = slice_env(region, "t", PYTORCH_CUDA_ALLOC_CONF="backend:cudaMallocAsync")
        p = spawn_python(TORCH, env, n)
        sampler = Sampler(nvml, [p.pid])
        sampler.start()
        out, _ = p.communicate()
        sampler.finish()
        peak = sampler.max_sum
        lines = [line for line in out.splitlines() if line.startswith("{")]
        err = json.loads(lines[-1])["error"] if lines else f"exit {p.returncode}"
        label = f"torch capture, {n * 256 // 1024} GiB of graph temporaries in a 4 GiB slice"
        if fits:
            result(label, err or "replayed 50 times", "no error", err is None)
        else:
            result(label, err, "an out-of-memory error", err in ("OutOfMemoryError", "oom"))
        result(label + ": NVML peak minus quota", (peak - quota) // MiB, "<= context overhead (quota.py)", None,
               " MiB")
        remove_region(region)


def two_gpus():
    import subprocess
    bus = subprocess.run(["nvidia-smi", "--query-gpu=pci.bus_id", "--format=csv,noheader"], capture_output=True,
                         text=True).stdout.split()
    if len(bus) < 2:
        print("two GPUs: skipped, one GPU")
        return
    region = make_region([{"name": "one", "memory": 8 * GiB, "policy": "best-effort"}], bdf=bus[0])
    r = run(TWO, slice_env(region, "one", CUDA_VISIBLE_DEVICES="0,1"))
    result("two GPUs: allocation on the GPU the slice does not cover", r.get("error"), "OutOfMemoryError",
           r.get("error") == "OutOfMemoryError")
    remove_region(region)


def scrub_handles():
    found = {}
    for policy in ("on-free", "off"):
        region = make_region([{"name": "a", "policy": "best-effort", "scrub": policy},
                              {"name": "b", "policy": "best-effort", "scrub": "off"}])
        w = run(WRITE_HANDLE, slice_env(region, "a"))
        r = run(READ, slice_env(region, "b"))
        found[policy] = r.get("found", -1) if w.get("done") else -1
        remove_region(region)
    if found["off"] <= 0:
        result("scrub of cuMemCreate handles", found["on-free"], "0", None, " bytes (inconclusive: control found none)")
    else:
        result("scrub of cuMemCreate handles", found["on-free"], "0", found["on-free"] == 0, " bytes")


def main():
    check_build()
    nvml = Nvml()
    graph_memory()
    torch_capture(nvml)
    two_gpus()
    scrub_handles()


if __name__ == "__main__":
    main()
