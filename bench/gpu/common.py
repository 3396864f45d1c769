# SPDX-License-Identifier: LGPL-2.1-or-later
"""common.py — what the bench/gpu scripts share: the shim and slice-admin from the build, slice
regions in /dev/shm, starting a child process inside a slice (LD_PRELOAD), NVML read with ctypes
(never under the shim, so it sees the truth) and the RESULT lines run.sh collects."""
import ctypes
import glob
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", os.path.join(REPO, "build"))
SHIM = os.path.join(BUILD, "shim", "libvgpu-cuda.so")
ADMIN = os.path.join(BUILD, "tests", "shim", "slice-admin")
GiB = 1 << 30
MiB = 1 << 20


def check_build():
    for p in (SHIM, ADMIN):
        if not os.path.exists(p):
            sys.exit(f"bench/gpu: {p} missing: run `meson setup build && ninja -C build` first")


def make_region(slices, quantum_ms=None, bdf=None):
    """Create a region with slices [{name, memory, policy, weight, scrub, overhead, granularity}],
    of the GPU at PCI address bdf (None: the first GPU each process allocates on)."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    path = os.path.join(base, f"vgpu-bench-{os.getpid()}-{time.monotonic_ns()}")
    args = [ADMIN, "create", path] + ([str(quantum_ms or 0)] if quantum_ms or bdf else []) + ([bdf] if bdf else [])
    subprocess.run(args, check=True)
    for s in slices:
        subprocess.run([ADMIN, "add", path, s["name"], str(s.get("memory", 0)), s.get("policy", "best-effort"),
                        str(s.get("weight", 0)), s.get("scrub", "off"), str(s.get("overhead", 0)),
                        str(s.get("granularity", 0))], check=True)
    return path


def remove_region(region):
    """The scheduler file and every slice's own region beside it."""
    for p in [region] + glob.glob(glob.escape(region) + ".*.slice"):
        os.unlink(p)


def show(region):
    out = subprocess.run([ADMIN, "show", region], check=True, capture_output=True, text=True).stdout
    return {s["name"]: s for s in map(json.loads, out.splitlines())}


def slice_env(region, name, **extra):
    env = dict(os.environ)
    if region:
        # the slice's own region beside the GPU's scheduler (slice-admin's naming)
        env.update(LD_PRELOAD=SHIM, VGPU_SLICE_SHM=f"{region}.{name}.slice", VGPU_SLICE_SCHED=region, VGPU_SLICE=name)
    else:
        for k in ("LD_PRELOAD", "VGPU_SLICE_SHM", "VGPU_SLICE_SCHED", "VGPU_SLICE"):
            env.pop(k, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def spawn_python(code, env, *args):
    """A python child running code (a string), stdout captured as text."""
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, stdout=subprocess.PIPE,
                            text=True)


def result(name, value, target, ok, unit=""):
    verdict = "PASS" if ok else "FAIL"
    if ok is None:
        verdict = "INFO"
    print(f"RESULT {name}: {value}{unit} (target {target}) {verdict}", flush=True)


class Nvml:
    """Per-process device memory as the driver reports it, via libnvidia-ml (ctypes)."""

    class ProcessInfo(ctypes.Structure):  # nvmlProcessInfo_v2_t, as ..._v3 returns it
        _fields_ = [("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong),
                    ("gpuInstanceId", ctypes.c_uint), ("computeInstanceId", ctypes.c_uint)]

    class Memory(ctypes.Structure):
        _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]

    def __init__(self, index=0):
        self.lib = ctypes.CDLL("libnvidia-ml.so.1")
        assert self.lib.nvmlInit_v2() == 0
        self.dev = ctypes.c_void_p()
        assert self.lib.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(self.dev)) == 0

    def used_by(self):
        n = ctypes.c_uint(256)
        procs = (self.ProcessInfo * 256)()
        fn = getattr(self.lib, "nvmlDeviceGetComputeRunningProcesses_v3", None) or \
            self.lib.nvmlDeviceGetComputeRunningProcesses_v2
        if fn(self.dev, ctypes.byref(n), procs) != 0:
            return {}
        return {procs[i].pid: procs[i].usedGpuMemory for i in range(n.value)}

    def memory(self):
        m = self.Memory()
        self.lib.nvmlDeviceGetMemoryInfo(self.dev, ctypes.byref(m))
        return m


class Sampler(threading.Thread):
    """Samples NVML every `period` s: the largest memory of each pid and of their sum."""

    def __init__(self, nvml, pids, period=0.005):
        super().__init__(daemon=True)
        self.nvml, self.pids, self.period = nvml, set(pids), period
        self.max_each, self.max_sum, self.samples, self.stop = {}, 0, 0, False

    def run(self):
        while not self.stop:
            used = self.nvml.used_by()
            mine = {p: u for p, u in used.items() if p in self.pids}
            for p, u in mine.items():
                self.max_each[p] = max(self.max_each.get(p, 0), u)
            self.max_sum = max(self.max_sum, sum(mine.values()))
            self.samples += 1
            time.sleep(self.period)

    def finish(self):
        self.stop = True
        self.join()


def jain(xs):
    s, q = sum(xs), sum(x * x for x in xs)
    return s * s / (len(xs) * q) if q else 0.0
