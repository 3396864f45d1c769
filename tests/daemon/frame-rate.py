#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-frame-rate: the frame-rate limiter read back from running vGPUs (NVML's
nvmlVgpuInstanceGetFrameRateLimit, served by the double) against host.yaml's policy, with real
applies on a fixture played by FakeKernel: assert reports the running vGPU whose limiter differs
(and not the one that matches); apply says it takes effect at the vGPU's next start and does not
touch it; apply --force restarts it with the new parameter while no VM holds it, and does not
while one does (a /proc/PID/fd link to its VFIO group)."""

import os

from fakekernel import FakeKernel
from vgpudtest import Checks, Host

t = Checks("daemon-frame-rate")
h = Host("nvidia-mdev")
k = FakeKernel(h.root, files=["nvidia/vgpu_params"])
k.start()
U1, U2 = "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01", "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e02"
with open(h.path("nvml.conf"), "a") as f:
    f.write("gpu.0.vgpu.0.mdev_uuid=%s\ngpu.0.vgpu.0.frame_rate_limit=60\n"
            "gpu.0.vgpu.1.mdev_uuid=%s\ngpu.0.vgpu.1.frame_rate_limit=0\n" % (U1, U2))
conf = os.path.join(h.tmp, "host.yaml")
with open(conf, "w") as f:
    f.write('version: 1\ngpus:\n  - bdf: "0000:3b:00.0"\n    policy:\n      frame-rate-limit: off\n    devices:\n'
            '      - type: nvidia-232\n        uuids: ["%s", "%s"]\n' % (U1, U2))


def actions(*args):
    p = h.vgpuctl_json(*args)
    return [(a["action"], a["uuid"], a["detail"]) for a in (p or {}).get("actions", []) if a["action"] in ("frame-rate-limit", "restart")]


try:
    rc, out, err = h.vgpuctl("assert", "-f", conf)
    t.equal(rc, 1, "assert: a running vGPU's limiter differs")
    t.check("+ frame-rate-limit b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01 (nvidia-232 on 0000:3b:00.0)" in out, "assert names it", out)
    t.equal(actions("assert", "-f", conf),
            [("frame-rate-limit", U1, "frame-rate limiter on (60 fps), the file says off: takes effect at its next start "
                                      "(apply --force restarts it now)")],
            "assert --json: U1 (60 fps) only; U2 (off) matches")

    rc, out, err = h.vgpuctl("apply", "--direct", "-f", conf)
    t.equal(rc, 0, "apply: " + err)
    t.check("takes effect at its next start" in out, "apply says when it takes effect", out)
    t.check(U1 not in k.removed, "apply without --force leaves the running vGPU alone", k.removed)
    defn = open(h.path("/etc/mdevctl.d/0000:3b:00.0/" + U1)).read()
    t.check("frame_rate_limiter=0" in defn, "its definition has the file's limiter for the next start", defn)
    t.equal(h.vgpuctl("assert", "-f", conf)[0], 1, "assert still says it differs: it does, until it restarts")

    # a VM holds it: --force does not restart it either
    group = [i for i in h.vgpuctl_json("list")["instances"] if i["uuid"] == U1][0]["iommu_group"]
    fd = h.path("/proc/4242/fd")
    os.makedirs(fd, exist_ok=True)
    os.symlink("/dev/vfio/%d" % group, os.path.join(fd, "7"))
    rc, out, err = h.vgpuctl("apply", "--direct", "--force", "-f", conf)
    t.equal(rc, 0, "apply --force while a VM holds it: " + err)
    t.check("a VM holds it" in out and U1 not in k.removed, "held: not restarted, and it says why", out)
    os.unlink(os.path.join(fd, "7"))

    # no VM: --force restarts it with the new parameter
    rc, out, err = h.vgpuctl("apply", "--direct", "--force", "-f", conf)
    t.equal(rc, 0, "apply --force: " + err)
    t.check("restart" in out and U1 in k.removed and U1 in k.created, "restarted: removed and created again", (out, k.removed, k.created))
    t.check(U2 not in k.removed, "U2 (matching) untouched", k.removed)
    params = h.path("/sys/bus/mdev/devices/%s/nvidia/vgpu_params" % U1)
    t.check(os.path.exists(params) and "frame_rate_limiter=0" in open(params).read(), "created with frame_rate_limiter=0",
            open(params).read() if os.path.exists(params) else "(none)")
    h.set_nvml(0, "vgpu.0.frame_rate_limit", 0)     # the driver read it at the start
    rc, out, err = h.vgpuctl("assert", "-f", conf)
    t.equal(rc, 0, "assert: the host matches once the vGPU runs with the file's limiter: " + out)
finally:
    k.stop()
    h.cleanup()
t.done()
