#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-store: mdev attributes, mdevctl's store and what a killed or late change leaves, through
the real interfaces (vgpud's socket, the vgpuctl CLI, host.yaml) on a copy of the NVIDIA mdev
fixture with a fake kernel (fakekernel.py) playing the mdev ABI.

Proves: an attribute key is written only to a regular file in the device's own directory, never
through its sysfs links (mdev_type/create made a second device past the capacity check;
mdev_type/devices/OTHER/remove removed another VM's device and was stored in the definition), by
the API (400, saying why, not 404), the CLI and host.yaml alike, while vendor subdirectories
(nvidia/vgpu_params) still work and a too-long key is an error; a FIFO in /etc/mdevctl.d/PARENT/
neither hangs `list --defined`, vgpud's GET /v1/instances nor an apply that defines that UUID;
apply's done list says "created", "defined"; temporary files of a killed write (UUID.XXXXXX, host.yaml.XXXXXX) are removed by the next change
and never read as definitions; a device that appears after the creation timed out is removed
again (and one recorded as abandoned by the next change); a UUID defined under two parents is
running only on the parent it runs on."""

import json
import os
import stat
import subprocess
import time

from fakekernel import FakeKernel
from vgpudtest import Checks, Daemon, Host, request

t = Checks("daemon-store")
PARENT, OTHER_PARENT = "0000:af:00.0", "0000:3b:00.0"
U = ["5707e000-0000-4000-8000-0000000000%02d" % i for i in range(1, 21)]
CONF = "[metrics]\nlisten = off\n[daemon]\npoll-interval = 100ms\nrestore-on-start = no\n"


def present(h, uuid):
    return os.path.lexists(h.path("/sys/bus/mdev/devices/" + uuid))


def defined(h, parent, uuid):
    return os.path.lexists(h.path("/etc/mdevctl.d/%s/%s" % (parent, uuid)))


def settle():
    time.sleep(0.3)     # the fake kernel looks at the create/remove files every 5 ms


def vgpuctl_timed(h, *args, timeout=20):
    """(rc, out, err) of vgpuctl, rc None when it hung."""
    try:
        p = subprocess.run([os.environ["VGPUCTL"]] + list(args), env=h.env, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return None, "", "hung (killed after %d s)" % timeout


def create_body(uuid, attrs, persist=False):
    return {"parent": PARENT, "type": "nvidia-232", "uuid": uuid, "attrs": attrs, "persist": persist}


h = Host("nvidia-mdev")
k = FakeKernel(h.root, files=["nvidia/vgpu_params"])
k.start()
d = None
try:
    d = Daemon(h, CONF)
    type_dir = os.path.realpath(h.path("/sys/class/mdev_bus/%s/mdev_supported_types/nvidia-232" % PARENT))
    avail = lambda: int(open(os.path.join(type_dir, "available_instances")).read())   # noqa: E731

    # ---- attributes through a link of the device: refused, nothing made, nothing removed
    before = avail()
    st, b, _ = request(h.sock, "POST", "/v1/instances", create_body(U[0], [{"mdev_type/create": U[1]}]))
    settle()
    t.check(st == 400 and "not a file in the device's own directory" in b.get("error", ""),
            "POST attrs mdev_type/create: 400 naming why", (st, b))
    t.check(not present(h, U[1]), "mdev_type/create made no second device")
    t.check(not present(h, U[0]), "the device of the refused request was removed again")
    t.equal(avail(), before, "available instances as before")

    st, b, _ = request(h.sock, "POST", "/v1/instances", create_body(U[2], []))
    t.equal(st, 201, "the victim device is created")
    # as the kernel links them: mdev_supported_types/TYPE/devices/UUID -> the device
    os.makedirs(os.path.join(type_dir, "devices"), exist_ok=True)
    os.symlink("../../../" + U[2], os.path.join(type_dir, "devices", U[2]))
    st, b, _ = request(h.sock, "POST", "/v1/instances",
                       create_body(U[3], [{"mdev_type/devices/%s/remove" % U[2]: "1"}], persist=True))
    settle()
    t.check(st == 400, "POST attrs mdev_type/devices/OTHER/remove with persist: 400", (st, b))
    t.check(present(h, U[2]), "another VM's device is still there")
    t.check(not defined(h, PARENT, U[3]), "the attack is not stored in mdevctl's store")
    os.unlink(os.path.join(type_dir, "devices", U[2]))

    # ---- what must keep working: a vendor attribute in a subdirectory
    st, b, _ = request(h.sock, "POST", "/v1/instances", create_body(U[4], [{"nvidia/vgpu_params": "frame_rate_limiter=0"}]))
    t.equal(st, 201, "POST attrs nvidia/vgpu_params: created")
    p = h.path("/sys/bus/mdev/devices/%s/nvidia/vgpu_params" % U[4])
    t.equal(open(p).read() if os.path.exists(p) else None, "frame_rate_limiter=0", "nvidia/vgpu_params written")

    # ---- a failed attribute write says what failed, as a 4xx, not 404
    st, b, _ = request(h.sock, "POST", "/v1/instances", create_body(U[5], [{"no_such_attribute": "1"}]))
    t.check(st == 400 and "no_such_attribute" in b.get("error", "") and "no such attribute" in b.get("error", ""),
            "an attribute the device lacks: 400 naming it", (st, b))
    long_key = "/".join(["x" * 200] * 25)
    st, b, _ = request(h.sock, "POST", "/v1/instances", create_body(U[5], [{long_key: "1"}]))
    t.check(st == 400 and "too long" in b.get("error", ""), "a too-long attribute path: 400, too long", (st, b.get("error", "")[:200] if isinstance(b, dict) else b))
    settle()
    t.check(not present(h, U[5]), "nothing left of the failed creations")
    d.stop()

    # ---- the same through the CLI and host.yaml
    rc, out, err = vgpuctl_timed(h, "create", "--direct", "--parent", PARENT, "--type", "nvidia-232", "--uuid", U[6],
                                 "--attr", "mdev_type/create=" + U[7])
    settle()
    t.check(rc == 1 and "not a file in the device's own directory" in err and not present(h, U[7]) and not present(h, U[6]),
            "vgpuctl create --attr mdev_type/create: refused, nothing made", (rc, err))
    yml = os.path.join(h.tmp, "attack.yaml")
    with open(yml, "w") as f:
        f.write('version: 1\ngpus:\n  - bdf: "%s"\n    devices:\n      - type: nvidia-232\n        uuids: ["%s", "%s", "%s"]\n'
                '        attrs: [{mdev_type/create: "%s"}]\n' % (PARENT, U[2], U[4], U[14], U[8]))
    rc, out, err = vgpuctl_timed(h, "apply", "--direct", "-f", yml)
    settle()
    t.check(rc == 1 and not present(h, U[8]) and not present(h, U[14]), "host.yaml attrs mdev_type/create: apply fails, nothing made", (rc, err))
    t.check(present(h, U[2]) and present(h, U[4]), "the failed apply rolled back (both devices still there)")

    # ---- a FIFO in the store: no hang, reported and skipped
    store = h.path("/etc/mdevctl.d/" + PARENT)
    os.makedirs(store, exist_ok=True)
    os.mkfifo(os.path.join(store, U[9]))
    rc, out, err = vgpuctl_timed(h, "list", "--defined")
    t.check(rc == 0 and "not a regular file" in err, "list --defined with a FIFO in the store: done, reported", (rc, err))
    d = Daemon(h, CONF)
    try:
        st, b, _ = request(h.sock, "GET", "/v1/instances", timeout=10)
        t.equal(st, 200, "GET /v1/instances with a FIFO in the store answers")
    except OSError as ex:
        t.check(False, "GET /v1/instances with a FIFO in the store answers", repr(ex))
    d.stop()
    with open(yml, "w") as f:
        f.write('version: 1\ngpus:\n  - bdf: "%s"\n    devices:\n      - type: nvidia-232\n        uuids: ["%s", "%s", "%s"]\n'
                % (PARENT, U[2], U[4], U[9]))
    rc, out, err = vgpuctl_timed(h, "apply", "--direct", "-f", yml)
    t.check(rc == 0 and stat.S_ISREG(os.stat(os.path.join(store, U[9])).st_mode),
            "apply defining the FIFO's UUID: done, a definition in its place", (rc, err))
    # the done list says what was done (issue 9, item 8), not why it was planned
    lines = out.splitlines()
    t.check(lines[:1] == ["done:"] and any(x.split()[:2] == ["created", U[9]] for x in lines) and
            any(x.split()[:2] == ["defined", U[2]] for x in lines) and "not defined yet" not in out and "fixed UUID" not in out,
            "apply's done list: 'created U', 'defined U', no 'not defined yet'", out)
    big = os.path.join(store, U[10])
    with open(big, "w") as f:
        f.write('{"mdev_type": "nvidia-232", "start": "auto", "attrs": [], "x": "%s"}\n' % ("y" * 70000))
    rc, out, err = vgpuctl_timed(h, "list", "--defined")
    t.check(rc == 0 and U[10] in err and "larger than" in err, "a definition over 64 KiB: reported as too large", (rc, err))
    os.unlink(big)

    # ---- what a killed write leaves: removed by the next change, never read as a definition
    temp_def = os.path.join(store, U[11] + ".Ab12Xy")
    with open(temp_def, "w") as f:
        f.write('{"mdev_type": "nvidia-232", "start": "auto", "attrs": []}\n')
    temp_state = h.path("/var/lib/vgpuctl/host.yaml.q9Z8w7")
    os.makedirs(os.path.dirname(temp_state), exist_ok=True)
    open(temp_state, "w").write("version: 1\n")
    keep = h.path("/var/lib/vgpuctl/notes.txt")
    open(keep, "w").write("mine\n")
    rc, out, err = vgpuctl_timed(h, "list", "--defined", "--json")
    t.check(rc == 0 and U[11] not in out + err, "a temporary file is not read as a definition (nor warned about)", (out[-300:], err))
    rc, out, err = vgpuctl_timed(h, "apply", "--direct", "-f", yml)
    t.check(rc == 0 and not os.path.exists(temp_def) and not os.path.exists(temp_state),
            "the next apply removes UUID.XXXXXX and host.yaml.XXXXXX", (rc, err, os.listdir(store)))
    t.check(os.path.exists(keep), "other files in /var/lib/vgpuctl stay")

    # ---- a UUID defined under two parents runs on one of them
    other = h.path("/etc/mdevctl.d/" + OTHER_PARENT)
    os.makedirs(other, exist_ok=True)
    with open(os.path.join(other, U[2]), "w") as f:
        f.write('{"mdev_type": "nvidia-232", "start": "manual", "attrs": []}\n')
    data = json.loads(vgpuctl_timed(h, "list", "--defined", "--json")[1])
    running = {(x["parent"], x["uuid"]): x["running"] for x in data["definitions"]}
    t.equal((running.get((PARENT, U[2])), running.get((OTHER_PARENT, U[2]))), (True, False),
            "list --defined: running on its own parent only")

    # ---- a device that appears after the timeout is removed again
    k.delay = 6.0
    start = time.monotonic()
    rc, out, err = vgpuctl_timed(h, "create", "--direct", "--parent", PARENT, "--type", "nvidia-232", "--uuid", U[12], "--persist",
                                 timeout=40)
    took = time.monotonic() - start
    time.sleep(1.5)
    t.check(rc == 1 and "did not appear" in err, "create --persist of a late device fails", (rc, err))
    t.check(not present(h, U[12]), "the device that came late is not left behind (%.1f s)" % took)
    t.check(not defined(h, PARENT, U[12]), "nor its definition")
    k.delay = 0.0
    # one that comes even later is recorded and removed by the next change
    rc, out, err = vgpuctl_timed(h, "create", "--direct", "--parent", PARENT, "--type", "nvidia-232", "--uuid", U[13])
    t.equal(rc, 0, "a device to abandon")
    os.makedirs(h.path("/run/vgpuctl/abandoned"), exist_ok=True)
    open(h.path("/run/vgpuctl/abandoned/" + U[13]), "w").write(U[13])
    rc, out, err = vgpuctl_timed(h, "stop", U[19])     # any change takes the lock; this one changes nothing
    settle()
    t.check(rc == 0 and not present(h, U[13]) and not os.path.exists(h.path("/run/vgpuctl/abandoned/" + U[13])),
            "an abandoned device that came later is removed under the next change's lock", (rc, err))

    # ---- one UUID under two parents: undefine names them and needs --parent (issue 9, item 9)
    rc, out, err = vgpuctl_timed(h, "undefine", U[2])
    t.check(rc == 1 and "defined on 2 parents (%s, %s): say which with --parent" % (OTHER_PARENT, PARENT) in err and
            defined(h, PARENT, U[2]) and defined(h, OTHER_PARENT, U[2]), "undefine of a UUID on two parents: refused, naming both", (rc, err))
    rc, out, err = vgpuctl_timed(h, "undefine", U[2], "--parent", "3b:00.0")
    t.check(rc == 0 and not defined(h, OTHER_PARENT, U[2]) and defined(h, PARENT, U[2]), "undefine --parent removes that one only",
            (rc, out, err))

    # ---- export, then assert on the untouched host: it matches (transient instances included)
    t.equal((vgpuctl_timed(h, "remove", "--direct", U[9])[0], vgpuctl_timed(h, "undefine", U[9])[0]), (0, 0), "room for two more")
    rc, out, err = vgpuctl_timed(h, "create", "--direct", "--parent", PARENT, "--type", "nvidia-232", "--uuid", U[15])
    t.equal(rc, 0, "a transient instance (create without --persist)")
    rc, out, err = vgpuctl_timed(h, "create", "--direct", "--parent", PARENT, "--type", "nvidia-232", "--uuid", U[16], "--persist",
                                 "--attr", "nvidia/vgpu_params=frame_rate_limiter=0")
    t.equal(rc, 0, "a persistent instance with an attribute")
    rc, out, err = vgpuctl_timed(h, "define", "--parent", PARENT, "--type", "nvidia-232", "--uuid", U[17])
    t.equal(rc, 0, "a definition that does not run (vgpuctl define)")
    rc, exported, err = vgpuctl_timed(h, "export")
    exp = os.path.join(h.tmp, "export.yaml")
    open(exp, "w").write(exported)
    rc, out, err = vgpuctl_timed(h, "assert", "-f", exp)
    t.check(rc == 0, "export then assert on the same host: it matches", (rc, out, err, exported[-900:]))
    t.check("persistent: false" in exported, "the transient instance is exported as not persistent", exported)
    t.check("running: false" in exported and U[17] in exported, "the definition is exported as not running", exported)
    rc, out, err = vgpuctl_timed(h, "apply", "--direct", "-f", exp)
    t.check(rc == 0 and "nothing to do" in out and not defined(h, PARENT, U[15]) and defined(h, PARENT, U[17]) and not present(h, U[17]),
            "applying the export changes nothing", (rc, out, err))
finally:
    if d:
        d.stop()
    k.stop()
h.cleanup()
t.done()
