#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-lifecycle: the mutating calls, SIGTERM in the middle of an apply, and restore, on a
copy of the NVIDIA mdev fixture host with a fake kernel (fakekernel.py) playing the mdev ABI.

Proves: POST /v1/instances creates (201, then 200 "changed": false when repeated) and DELETE
removes (200, then 404), with events; SIGTERM while an apply runs lets it complete, the client
gets the whole plan, the daemon exits 0, and the host matches the file (`vgpuctl assert`), which
is recorded as the state to restore; SIGTERM while an apply fails lets it roll back: the client
gets the error, the host and the recorded state are as before; a parent that appears is seen
at the next poll and gets the saved state restored; restore-on-start recreates what is missing."""

import os
import signal
import threading
import time

from fakekernel import FakeKernel
from vgpudtest import Checks, Daemon, Host, request

t = Checks("daemon-lifecycle")
h = Host("nvidia-mdev")
k = FakeKernel(h.root)
k.start()
CONF = "[metrics]\nlisten = off\n[daemon]\npoll-interval = 100ms\nrestore-on-start = no\n"
PARENT = "0000:af:00.0"
U = ["aaaaaaaa-0000-4000-8000-00000000000%d" % i for i in range(1, 5)]


def config(uuids):
    return ('version: 1\ngpus:\n  - bdf: "%s"\n    devices:\n      - type: nvidia-232\n        count: %d\n        uuids: [%s]\n'
            % (PARENT, len(uuids), ", ".join('"%s"' % u for u in uuids)))


def instances_on(parent):
    return sorted(i["uuid"] for i in h.vgpuctl_json("list")["instances"] if i["parent"] == parent)


def state_file():
    p = h.path("/var/lib/vgpuctl/host.yaml")
    return open(p).read() if os.path.exists(p) else None


def assert_matches(text):
    p = os.path.join(h.tmp, "assert.yaml")
    open(p, "w").write(text)
    return h.vgpuctl("assert", "-f", p)[0] == 0


def post_in_background(path, body):
    box = {}

    def run():
        try:
            box["reply"] = request(h.sock, "POST", path, body, timeout=60)
        except Exception as ex:         # noqa: BLE001
            box["error"] = repr(ex)
    th = threading.Thread(target=run)
    th.start()
    return th, box


d = Daemon(h, CONF)
try:
    # ---- create / remove through the API
    body = {"parent": PARENT, "type": "nvidia-232", "uuid": U[0]}
    st, b, _ = request(h.sock, "POST", "/v1/instances", body)
    t.equal((st, b), (201, {"uuid": U[0], "parent": PARENT, "type": "nvidia-232", "changed": True}), "POST /v1/instances creates: 201")
    st, b, _ = request(h.sock, "POST", "/v1/instances", body)
    t.equal((st, b.get("changed")), (200, False), "the same create again: 200, nothing changed")
    st, b, _ = request(h.sock, "POST", "/v1/instances", {"parent": PARENT, "type": "nvidia-233", "uuid": U[0]})
    t.check(st == 409 and "already exists" in b.get("error", ""), "the same UUID as another type: 409", (st, b))
    t.check(U[0] in [i["uuid"] for i in d.get("/v1/instances")[1]["instances"]], "/v1/instances lists it")
    e = d.wait_event("instance_created")
    t.check(e is not None and e["uuid"] == U[0] and e["bdf"] == PARENT, "instance_created event with uuid and bdf", e)
    st, b, _ = request(h.sock, "DELETE", "/v1/instances/" + U[0])
    t.equal((st, b), (200, {"uuid": U[0], "parent": None, "type": None, "changed": True}), "DELETE removes: 200")
    st, b, _ = request(h.sock, "DELETE", "/v1/instances/" + U[0])
    t.equal(st, 404, "DELETE again: 404")
    t.check(d.wait_event("instance_removed") is not None, "instance_removed event")
    t.equal(instances_on(PARENT), [], "nothing left on the parent")

    # ---- SIGTERM during an apply that succeeds: it completes, the reply arrives, exit 0
    A = config(U[:2])
    k.delay = 0.3
    k.created.clear()
    th, box = post_in_background("/v1/apply", A)
    deadline = time.monotonic() + 10
    while not k.created and time.monotonic() < deadline:
        time.sleep(0.01)
    d.signal(signal.SIGTERM)
    t.equal(len(k.created), 1, "SIGTERM sent with the apply half done (1 of 2 created)")
    th.join(30)
    st, b, _ = box.get("reply", (None, box.get("error"), None))
    t.check(st == 200 and b.get("changes") == 4 and [a["action"] for a in b["actions"]] == ["create", "create", "define", "define"],
            "SIGTERM mid-apply: the client gets the complete plan", (st, b))
    t.equal(d.proc.wait(15), 0, "SIGTERM mid-apply: exit 0 after the apply")
    log = d.logtext()
    t.check(0 <= log.find("apply for uid") < log.find("signal 15: stopping"), "the signal was handled after the apply", log[-800:])
    t.equal(instances_on(PARENT), sorted(U[:2]), "both instances exist")
    t.check(assert_matches(A), "the host matches the file (vgpuctl assert)")
    t.equal(state_file(), A, "the applied file is the state to restore")

    # ---- SIGTERM during an apply that fails: it rolls back, the reply is the error, exit 0
    d = Daemon(h, CONF)
    k.delay, k.refuse = 0.1, {U[3]}      # the 4th never appears: the library waits, then undoes
    k.created.clear()
    th, box = post_in_background("/v1/apply", config(U))
    deadline = time.monotonic() + 10
    while U[2] not in k.created and time.monotonic() < deadline:
        time.sleep(0.01)
    d.signal(signal.SIGTERM)
    t.check(U[2] in k.created and U[3] not in k.created, "SIGTERM sent while the 4th creation is awaited")
    th.join(40)
    st, b, _ = box.get("reply", (None, box.get("error"), None))
    t.check(st is not None and st >= 400 and U[3] in b.get("error", ""), "SIGTERM mid-failing-apply: the client gets the error", (st, b))
    t.equal(d.proc.wait(15), 0, "SIGTERM mid-failing-apply: exit 0 after the rollback")
    t.equal(instances_on(PARENT), sorted(U[:2]), "rolled back: the instances of before, no half-made one")
    t.check(assert_matches(A), "rolled back: the host still matches the previous file")
    t.equal(state_file(), A, "rolled back: the recorded state is unchanged")
    defs = sorted(os.listdir(h.path("/etc/mdevctl.d/" + PARENT)))
    t.equal(defs, sorted(U[:2]), "rolled back: no definition of the new ones")
    k.refuse = set()

    # ---- a parent appearing gets the saved state restored
    for u in U[:2]:
        k._remove(u)            # the devices go with their parent (driver unloaded)
    link = h.path("/sys/class/mdev_bus/" + PARENT)
    target = os.readlink(link)
    os.unlink(link)
    d = Daemon(h, CONF)
    t.check(PARENT not in [p["parent"] for p in d.get("/v1/types")[1]["types"]], "the parent is gone")
    since = d.get("/v1/events")[1]["next_seq"]
    os.symlink(target, link)    # the driver is back
    e = d.wait_event("restore", since, timeout=10)
    t.check(e is not None and "parent appeared" in e["message"] and "2 changes" in e["message"], "parent appeared: restored", e)
    pa = [x for x in d.events(since) if x["kind"] == "parent_added"]
    t.check(len(pa) == 1 and pa[0]["bdf"] == PARENT, "parent_added event names the parent", pa)
    t.equal(instances_on(PARENT), sorted(U[:2]), "the saved instances are back")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sorted(i["uuid"] for i in d.get("/v1/instances")[1]["instances"] if i["parent"] == PARENT) != sorted(U[:2]):
        time.sleep(0.05)
    t.equal(sorted(i["uuid"] for i in d.get("/v1/instances")[1]["instances"] if i["parent"] == PARENT), sorted(U[:2]), "the API shows them")
    t.equal(d.stop(), 0, "stop")

    # ---- restore-on-start recreates what is missing
    k._remove(U[0])
    d = Daemon(h, CONF.replace("restore-on-start = no", "restore-on-start = yes"))
    e = d.wait_event("restore", timeout=5)
    t.check(e is not None and "start: restored" in e["message"] and "1 change" in e["message"], "restore at start", e)
    t.equal(instances_on(PARENT), sorted(U[:2]), "restore at start: back again")
finally:
    d.stop()
    k.stop()
h.cleanup()
t.done()
