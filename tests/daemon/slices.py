# SPDX-License-Identifier: LGPL-2.1-or-later
"""vgpud and the software slices: two slices made with vgpuctl lose their /run regions (a
reboot); the daemon restores them at start from their records; then real processes under
libvgpu-cuda.so on the fake CUDA driver use them (one fills alice's 64 MiB quota and is refused
once, one holds 16 MiB of bob's); /metrics carries exactly those numbers per slice, with the
labels slice, gpu, bdf and policy, and passes promtool; GET /v1/slices is `vgpuctl slice list --json`.
Environment: also SHIM, FAKE_CUDA_DIR, TENANT (tests/meson.build)."""

import os
import shutil
import subprocess
import sys
import time

from vgpudtest import Checks, Daemon, Host

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from validate import validate  # noqa: E402

SHIM, FAKE_CUDA_DIR, TENANT = os.environ["SHIM"], os.environ["FAKE_CUDA_DIR"], os.environ["TENANT"]
MiB = 1 << 20

t = Checks("daemon-slices")
h = Host("nvidia-baremetal")


def tenant(slice_name, *args):
    """The tenant program in slice_name, under the shim (after ASan's runtime in a sanitizer build)."""
    ldd = subprocess.run(["ldd", TENANT], capture_output=True, text=True).stdout
    asan = [line.split()[2] for line in ldd.splitlines() if "libasan" in line]
    env = dict(os.environ, PRELOAD=":".join(asan + [SHIM]), LD_LIBRARY_PATH=FAKE_CUDA_DIR, VGPU_SLICE=slice_name,
               VGPU_SLICE_SHM=h.path("/run/vgpuctl/slices/%s.slice" % slice_name),
               VGPU_SLICE_SCHED=h.path("/run/vgpuctl/slices/0000:3b:00.0.shm"))
    env.pop("VGPU_ROOT", None)
    # fd 3 readable at once: the tenant's "go"; the preload for the tenant only, not the shell
    return subprocess.Popen(["bash", "-c", 'LD_PRELOAD=$PRELOAD exec "$@" 3</dev/null', "tenant", TENANT] + list(args), env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def series(text, name):
    """{slice: (labels, value)} of one family."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels = dict(kv.split("=", 1) for kv in line[len(name) + 1:line.index("}")].split(","))
            labels = {k: v.strip('"') for k, v in labels.items()}
            out[labels["slice"]] = (labels, float(line.rsplit(" ", 1)[1]))
    return out


for args in (("alice", "--memory", "64M", "--share", "30%"), ("bob", "--memory", "2G")):
    rc, _, err = h.vgpuctl("slice", "create", args[0], "--gpu", "3b:00.0", *args[1:])
    t.check(rc == 0, "create " + args[0], err)
t.check(os.path.exists(h.path("/var/lib/vgpuctl/slices/alice.json")), "alice is recorded")
shutil.rmtree(h.path("/run/vgpuctl/slices"))
os.unlink(h.path("/etc/cdi/vgpuctl.yaml"))

d = Daemon(h, "[daemon]\npoll-interval = 100ms\n[metrics]\nlisten = off\n")
holder = None
try:
    e = d.wait_event("restore")
    t.check(e is not None and "restored 2 slices from /var/lib/vgpuctl/slices" in e["message"], "restore event at start", e)
    st, body, _ = d.get("/v1/slices")
    t.equal([(s["name"], s["memory_bytes"], s.get("share_percent"), s["policy"]) for s in body["slices"]],
            [("alice", 64 * MiB, 30, "fixed-share"), ("bob", 2048 * MiB, None, "equal-share")], "GET /v1/slices after the restore")
    t.check(os.path.exists(h.path("/etc/cdi/vgpuctl.yaml")), "the CDI spec is back")

    fill = tenant("alice", "fill", str(MiB))
    out, err = fill.communicate(timeout=30)
    t.equal(out.strip(), "count=64 rc=2", "alice's process fills 64 MiB, then is refused")
    holder = tenant("bob", "hold", str(16 * MiB))
    t.equal(holder.stdout.readline().strip(), "rc=0", "bob's process holds 16 MiB")

    # the next poll reads the usage
    deadline, text = time.monotonic() + 10, ""
    while time.monotonic() < deadline:
        st, text, _ = d.get("/metrics")
        if series(text, "vgpu_slice_processes").get("bob", (None, 0))[1] == 1:
            break
        time.sleep(0.1)
    want = {
        "vgpu_slice_memory_quota_bytes": {"alice": 64 * MiB, "bob": 2048 * MiB},
        "vgpu_slice_memory_used_bytes": {"alice": 0, "bob": 16 * MiB},
        "vgpu_slice_memory_peak_bytes": {"alice": 64 * MiB, "bob": 16 * MiB},
        "vgpu_slice_oom_total": {"alice": 1, "bob": 0},
        "vgpu_slice_processes": {"alice": 0, "bob": 1},
        "vgpu_slice_share_ratio": {"alice": 0.3},      # bob has no fixed share: no series
    }
    for name, values in want.items():
        got = {k: v for k, (_, v) in series(text, name).items()}
        t.equal(got, values, name)
        t.check("# TYPE %s %s" % (name, "counter" if name.endswith("_total") else "gauge") in text, name + " has its TYPE")
    labels = series(text, "vgpu_slice_memory_used_bytes")["alice"][0]
    # gpu is the GPU's index as the GPU series have it
    index = [line.split('gpu="')[1].split('"')[0] for line in text.splitlines()
             if line.startswith("vgpu_gpu_degraded{") and 'bdf="0000:3b:00.0"' in line]
    t.equal(labels, {"slice": "alice", "gpu": index[0] if index else "?", "bdf": "0000:3b:00.0", "policy": "fixed-share"}, "labels")
    t.check(labels["gpu"] != "", "the slice's GPU has an index")
    gpu_time = series(text, "vgpu_slice_gpu_time_seconds_total")
    t.check(set(gpu_time) == {"alice", "bob"} and all(v >= 0 for _, v in gpu_time.values()), "gpu time series", gpu_time)

    t.promtool(text)

    # /v1/slices is the CLI's list, usage included
    st, body, _ = d.get("/v1/slices")
    t.equal(st, 200, "GET /v1/slices")
    t.equal(body["slices"], h.vgpuctl_json("slice", "list"), "/v1/slices is `vgpuctl slice list --json`")
    error = validate("api-slices", body)
    t.check(error is None and body["slices"], "GET /v1/slices (with usage) matches api-slices.schema.json", error)

    # 10.15: a tenant of bob rewrote what it can: its region now says alice with a policy of 7,
    # the scheduler is garbage (the daemon exported two alice series and policy="(null)" when
    # all slices shared one region); /metrics stays valid
    with open(h.path("/run/vgpuctl/slices/bob.slice"), "r+b") as f:
        data = bytearray(f.read())
        bob = data.index(b"bob\0")
        data[bob:bob + 6] = b"alice\0"
        data[bob - 20:bob - 16] = (7).to_bytes(4, "little")          # struct vgpu_slice: policy 20 bytes before name
        f.seek(0)
        f.write(data)
    with open(h.path("/run/vgpuctl/slices/0000:3b:00.0.shm"), "r+b") as f:
        f.write(b"\xa5" * 4096)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        st, text, _ = d.get("/metrics")
        if 'slice="bob"' not in text:
            break
        time.sleep(0.1)
    families = [line for line in text.splitlines() if line.startswith("vgpu_slice_")]
    keys = [line.rsplit(" ", 1)[0] for line in families]
    per_slice = [(k.split("{")[0], k.split('slice="')[1].split('"')[0]) for k in keys]
    t.check(len(per_slice) == len(set(per_slice)) and keys, "one series per family and slice", sorted(keys))
    t.check("(null)" not in text, "no (null) label", [k for k in keys if "(null)" in k])
    t.equal(sorted(series(text, "vgpu_slice_memory_used_bytes")), ["alice"], "the one well-formed slot is exported")
    t.promtool(text)
finally:
    if holder:
        holder.stdin.close()
        holder.wait(timeout=10)
    t.equal(d.stop(), 0, "SIGTERM: exit 0")
    h.cleanup()
t.done()
