#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-persistence: vgpud re-asserts host.yaml's `persistence: on` when a GPU's parent comes
back (a driver reload, which resets NVIDIA's persistence mode where no nvidia-persistenced keeps
it): the restore of that parent sets the mode again through NVML (the double records it in
nvml.conf), the restore event counts the change, and a parent the file does not mark keeps its
mode."""

import os
import time

from vgpudtest import Checks, Daemon, Host

t = Checks("daemon-persistence")
h = Host("nvidia-mdev")
CONF = "[metrics]\nlisten = off\n[daemon]\npoll-interval = 100ms\nrestore-on-start = no\n"
PARENT = "0000:5e:00.0"


def mode(index):
    lines = [line for line in open(h.path("nvml.conf")).read().splitlines() if line.startswith("gpu.%d.persistence=" % index)]
    return lines[-1].split("=", 1)[1] if lines else None


def set_mode(index, value):
    p = h.path("nvml.conf")
    k = "gpu.%d.persistence=" % index
    lines = [line for line in open(p).read().splitlines() if not line.startswith(k)] + [k + str(value)]
    with open(p + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.rename(p + ".tmp", p)


state = h.path("/var/lib/vgpuctl/host.yaml")
os.makedirs(os.path.dirname(state), exist_ok=True)
with open(state, "w") as f:
    f.write('version: 1\ngpus:\n  - bdf: "%s"\n    persistence: on\n    devices:\n      - type: nvidia-233\n'
            '        uuids: ["c7a1d2e3-8b4f-4a5c-9d6e-7f8091a2b3c4"]\n' % PARENT)
d = None
try:
    # the driver goes: its parent with it, and persistence mode is off when it comes back
    link = h.path("/sys/class/mdev_bus/" + PARENT)
    target = os.readlink(link)
    os.unlink(link)
    set_mode(1, 0)
    set_mode(2, 0)
    d = Daemon(h, CONF)
    t.check(PARENT not in [p["parent"] for p in d.get("/v1/types")[1]["types"]], "the parent is gone")
    since = d.get("/v1/events")[1]["next_seq"]
    time.sleep(0.3)
    t.equal(mode(1), "0", "no restore while the parent is away")
    os.symlink(target, link)    # the driver is back
    e = d.wait_event("restore", since, timeout=10)
    t.check(e is not None and "parent appeared" in e["message"] and "1 change" in e["message"],
            "parent appeared: restored with one change (persistence)", e)
    t.equal(mode(1), "1", "persistence mode on again for %s" % PARENT)
    t.equal(mode(2), "0", "af:00.0, not in the file, keeps its mode")
    deadline = time.monotonic() + 5
    got = None
    while time.monotonic() < deadline:
        got = [g for g in d.get("/v1/gpus")[1]["gpus"] if g["bdf"] == PARENT][0]["nvml"]["persistence_mode"]
        if got == 1:
            break
        time.sleep(0.05)
    t.equal(got, 1, "/v1/gpus reads it back at the next poll")
finally:
    if d:
        d.stop()
h.cleanup()
t.done()
