#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""overhead.py — what the shim costs a tenant alone on the GPU:
  launch latency   host time of one cuLaunchKernel (launch-latency.c, empty PTX kernel), native,
                   in a best-effort slice and in an equal-share slice     target: <= 0.5 us more
  training loop    steps/s of a bf16 MLP training loop (AdamW), native and in an equal-share
                   slice                                                   target: <= 2 % slower
Runs alternate native and shimmed three times and take medians, against clock drift."""
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import GiB, REPO, check_build, make_region, remove_region, result, slice_env, spawn_python  # noqa: E402

TRAIN = r"""
import json, time, torch
torch.manual_seed(0)
layers = []
for _ in range(8):
    layers += [torch.nn.Linear(4096, 4096), torch.nn.GELU()]
model = torch.nn.Sequential(*layers).cuda()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
x = torch.randn(256, 4096, device="cuda"); y = torch.randn(256, 4096, device="cuda")
def step():
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
for _ in range(30):
    step()
torch.cuda.synchronize(); t0 = time.perf_counter()
for _ in range(300):
    step()
torch.cuda.synchronize()
print(json.dumps({"steps_per_s": 300 / (time.perf_counter() - t0)}), flush=True)
"""


def build_latency():
    exe = os.path.join(tempfile.gettempdir(), "vgpu-launch-latency")
    src = os.path.join(REPO, "bench", "gpu", "launch-latency.c")
    subprocess.run(["cc", "-O2", "-I", os.path.join(REPO, "shim"), src, "-ldl", "-o", exe], check=True)
    return exe


def latency(exe, env):
    out = subprocess.run([exe, "3000"], env=env, check=True, capture_output=True, text=True).stdout
    return float(out.split("launch_us_median=")[1].split()[0])


def train(env):
    p = spawn_python(TRAIN, env)
    r = json.loads(p.stdout.readline())["steps_per_s"]
    p.wait()
    return r


def main():
    check_build()
    region = make_region([{"name": "be", "memory": 60 * GiB, "policy": "best-effort"},
                          {"name": "eq", "memory": 60 * GiB, "policy": "equal-share"}])
    native = slice_env(None, None)
    exe = build_latency()
    lat = {"native": [], "be": [], "eq": []}
    for _ in range(3):
        lat["native"].append(latency(exe, native))
        lat["be"].append(latency(exe, slice_env(region, "be")))
        lat["eq"].append(latency(exe, slice_env(region, "eq")))
    med = {k: statistics.median(v) for k, v in lat.items()}
    print(f"  launch: native {med['native']:.3f} us, best-effort {med['be']:.3f} us, equal-share {med['eq']:.3f} us")
    for k, label in (("be", "best-effort"), ("eq", "equal-share")):
        extra = med[k] - med["native"]
        result(f"launch overhead ({label})", f"{extra:.3f}", "<= 0.5", extra <= 0.5, " us")

    runs = {"native": [], "eq": []}
    for _ in range(3):
        runs["native"].append(train(native))
        runs["eq"].append(train(slice_env(region, "eq")))
    n, s = statistics.median(runs["native"]), statistics.median(runs["eq"])
    slower = 100 * (n / s - 1)
    print(f"  training: native {n:.2f} steps/s, equal-share slice {s:.2f} steps/s")
    result("training loop overhead (equal-share, alone)", f"{slower:.2f}", "<= 2", slower <= 2, " %")
    remove_region(region)


if __name__ == "__main__":
    main()
