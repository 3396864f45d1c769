#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-sandbox: vgpud does its job under its own unit's restrictions (issue 9).

The restrictions are read from the installed unit file (UNIT: the vgpud.service meson builds and
installs) by unit-sandbox.sh, which applies its ProtectSystem, ReadWritePaths, ProtectHome,
ProtectKernelModules, PrivateTmp (and the other path settings) in a private mount namespace to
the fixture root the daemon runs on (VGPU_ROOT). Every host path libvgpu opens goes through
VGPU_ROOT, so ROOT/etc/cdi read-only in the namespace is /etc/cdi read-only for the installed
daemon: the test proves what systemd would enforce, path for path, without a systemd PID 1
(there is none in this sandbox) and without touching the real /etc. The directories exist as
systemd-tmpfiles makes them from the installed tmpfiles.d entry before the unit starts (the
unit is After=systemd-tmpfiles-setup.service); a ReadWritePaths entry that does not exist fails
the start, as it would fail the unit's (226/NAMESPACE).

Proves, on a copy of the NVIDIA mdev fixture with a fake kernel: the namespace really is the
unit's (a write to ROOT/etc or ROOT/var outside the writable paths fails in it, ROOT/sys stays
writable); then through the daemon: POST /v1/instances with persist (mdevctl's store), DELETE,
POST /v1/apply of a file with `slices:` (refused there: vGPU host; on a copy of the bare-metal
fixture it writes /etc/cdi/vgpuctl.yaml and the slice records) and with `policy:` (writes /etc/modprobe.d), `vgpuctl apply` (which goes through the daemon),
the NVML collector's readings, the IPMI collector creating its SDR cache under /var/cache, and
GET /v1/health finding the kernel headers under /lib/modules. The CDI spec, the policy, the SDR
cache and the headers failed under the unit before it listed those paths and while it had
ProtectKernelModules=yes."""

import os
import subprocess
import time

from fakekernel import FakeKernel
import vgpudtest
from vgpudtest import Checks, Daemon, Host, request

UNIT, TMPFILES = os.environ["UNIT"], os.environ["TMPFILES"]
SANDBOX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "unit-sandbox.sh")
PARENT = "0000:af:00.0"
U = "dddddddd-0000-4000-8000-000000000001"

t = Checks("daemon-sandbox")
h = Host("nvidia-mdev")
# what systemd-tmpfiles-setup.service does before the unit starts
p = subprocess.run(["systemd-tmpfiles", "--create", "--root=" + h.root, os.path.abspath(TMPFILES)], capture_output=True, text=True)
t.check(p.returncode == 0, "systemd-tmpfiles --create with the installed entry", p.stderr)
# something at /dev/ipmi0: the IPMI collector creates its SDR cache before it talks to the BMC
os.makedirs(h.path("/dev"), exist_ok=True)
open(h.path("/dev/ipmi0"), "w").close()
k = FakeKernel(h.root)
k.start()


def in_sandbox(*cmd):
    return subprocess.run([SANDBOX, UNIT, h.root] + list(cmd), capture_output=True, text=True, timeout=30)


# ---- the namespace is the unit's: without this the checks below could not fail
p = in_sandbox("sh", "-c", 'touch "$1/etc/probe"', "sh", h.root)
t.check(p.returncode != 0 and "Read-only file system" in p.stderr, "ROOT/etc is read-only in the sandbox", (p.returncode, p.stderr))
p = in_sandbox("sh", "-c", 'touch "$1/var/probe"', "sh", h.root)
t.check(p.returncode != 0 and "Read-only file system" in p.stderr, "ROOT/var is read-only in the sandbox", (p.returncode, p.stderr))
p = in_sandbox("sh", "-c", 'touch "$1/sys/probe" && rm "$1/sys/probe"', "sh", h.root)
t.equal((p.returncode, p.stderr), (0, ""), "ROOT/sys stays writable (mdev create, sriov_numvfs)")
t.check(not os.path.exists(h.path("/etc/probe")), "nothing was written to ROOT/etc")

# vgpud in the sandbox: vgpudtest starts VGPUD with the daemon's arguments
wrapper = os.path.join(h.tmp, "vgpud-in-unit")
with open(wrapper, "w") as f:
    f.write('#!/bin/sh\nexec "%s" "%s" "%s" "%s" "$@"\n' % (SANDBOX, UNIT, h.root, vgpudtest.VGPUD))
os.chmod(wrapper, 0o755)
vgpud, vgpudtest.VGPUD = vgpudtest.VGPUD, wrapper

d = Daemon(h, "[metrics]\nlisten = off\n[daemon]\npoll-interval = 100ms\nrestore-on-start = no\n"
              "[collectors]\nipmi = yes\n")
try:
    # ---- create / remove, persisted in mdevctl's store
    st, b, _ = request(h.sock, "POST", "/v1/instances", {"parent": PARENT, "type": "nvidia-232", "uuid": U, "persist": True})
    t.equal(st, 201, "POST /v1/instances with persist")
    t.check(os.path.exists(h.path("/etc/mdevctl.d/%s/%s" % (PARENT, U))), "the definition is in /etc/mdevctl.d", b)
    st, b, _ = request(h.sock, "DELETE", "/v1/instances/" + U)
    t.equal(st, 200, "DELETE /v1/instances/UUID")

    # ---- apply with slices: refused on these vGPU-host GPUs (see the end for where they go)
    slices = 'version: 1\ngpus: []\nslices:\n  - name: alice\n    gpu: "0000:3b:00.0"\n    memory: 64M\n'
    st, b, _ = request(h.sock, "POST", "/v1/apply", slices)
    t.check(st == 409 and "vGPU host mode" in str(b), "POST /v1/apply with slices on a vGPU host: refused", (st, b))

    # ---- apply with a scheduler policy: /etc/modprobe.d
    policy = 'version: 1\ngpus:\n  - bdf: "0000:3b:00.0"\n    policy: {scheduler: equal-share, timeslice-ms: 2}\n'
    st, b, _ = request(h.sock, "POST", "/v1/apply", policy)
    t.equal((st, b if st != 200 else ""), (200, ""), "POST /v1/apply with policy")
    t.check(os.path.exists(h.path("/etc/modprobe.d/nvidia-vgpu-vgpuctl.conf")), "/etc/modprobe.d/nvidia-vgpu-vgpuctl.conf written")

    # ---- the CLI's apply goes through the daemon (the main flow)
    path = os.path.join(h.tmp, "host.yaml")
    with open(path, "w") as f:
        f.write('version: 1\ngpus:\n  - bdf: "%s"\n    devices:\n      - type: nvidia-232\n        count: 1\n        uuids: ["%s"]\n'
                % (PARENT, U))
    rc, out, err = h.vgpuctl("apply", "-f", path, "--daemon")
    t.equal((rc, err), (0, ""), "vgpuctl apply --daemon")
    t.check(os.path.exists(h.path("/var/lib/vgpuctl/host.yaml")), "the applied file is recorded as the state to restore")

    # ---- the collectors: the IPMI SDR cache, the kernel headers the health check looks for
    deadline = time.monotonic() + 10        # the collector starts with the daemon, at most a poll later
    while "IPMI collector" not in d.logtext() and time.monotonic() < deadline:
        time.sleep(0.05)
    t.check(os.path.isdir(h.path("/var/cache/vgpuctl/ipmi")), "IPMI SDR cache directory created", d.logtext()[-800:])
    t.check("SDR cache" not in d.logtext(), "no SDR cache error", d.logtext()[-800:])
    st, gpus, _ = d.get("/v1/gpus")
    hot = [g for g in gpus["gpus"] if g["bdf"] == "0000:3b:00.0"] if st == 200 else []
    t.check(hot and hot[0]["health"]["temperature_c"] == 41, "the NVML collector reads 3b:00.0's 41 C (fixture nvml.conf)", hot)
    st, health, _ = d.get("/v1/health")
    heads = [c for c in health["checks"] if c["id"] == "kernel.headers"] if st == 200 else []
    t.check(heads and heads[0]["status"] == "pass", "kernel.headers passes (the fixture has them)", heads)
    unsandboxed = [c for c in h.vgpuctl_json("doctor") if c["id"] == "kernel.headers"]
    t.equal(heads, unsandboxed, "kernel.headers as `vgpuctl doctor` outside the sandbox says")
finally:
    k.stopping = True

# ---- slices go on a GPU without the vGPU manager: the same unit on the bare-metal twin, where
# apply with slices writes the CDI spec in /etc/cdi and the records in /var/lib/vgpuctl
hb = Host("nvidia-baremetal")
p = subprocess.run(["systemd-tmpfiles", "--create", "--root=" + hb.root, os.path.abspath(TMPFILES)], capture_output=True, text=True)
t.check(p.returncode == 0, "systemd-tmpfiles --create on the bare-metal host", p.stderr)
wrapper = os.path.join(hb.tmp, "vgpud-in-unit")
with open(wrapper, "w") as f:
    f.write('#!/bin/sh\nexec "%s" "%s" "%s" "%s" "$@"\n' % (SANDBOX, UNIT, hb.root, vgpud))
os.chmod(wrapper, 0o755)
vgpudtest.VGPUD = wrapper
db = Daemon(hb, "[metrics]\nlisten = off\n[daemon]\npoll-interval = 100ms\nrestore-on-start = no\n")
try:
    st, b, _ = request(hb.sock, "POST", "/v1/apply", slices)
    t.equal((st, b if st != 200 else ""), (200, ""), "POST /v1/apply with slices")
    t.check(os.path.exists(hb.path("/etc/cdi/vgpuctl.yaml")) and "alice" in open(hb.path("/etc/cdi/vgpuctl.yaml")).read(),
            "/etc/cdi/vgpuctl.yaml names the slice")
    t.check(os.path.exists(hb.path("/var/lib/vgpuctl/slices/alice.json")), "the slice is recorded")
finally:
    db.stop()
t.done()
