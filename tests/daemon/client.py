#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-client: `vgpuctl create/remove/apply` go through vgpud when it runs (issue 4).

Two copies of the NVIDIA mdev fixture host, each with a fake kernel: a daemon runs on one,
none on its twin. Proves: with the daemon running the verbs go through it (its /v1/events
records the change for the vgpuctl process's pid) and `--direct` does not; stdout, stderr and
the exit status are those of a direct run on the twin (text, --json, --pretty, apply's
--dry-run/--diff, "nothing to do", errors); a non-root member of the daemon's group succeeds
through it while the same user with --direct gets the direct path's permission error; a
non-member gets "vgpud refused: ..." and exit 1 and nothing changes; --daemon without a daemon
is an error (exit 1); a stale socket (no listener) means direct; VGPUD_SOCKET names the socket."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from fakekernel import FakeKernel
from vgpudtest import VGPUCTL, Checks, Daemon, Host

t = Checks("daemon-client")
GROUP, GID = "users", 100      # an existing group stands in for `vgpu`
PARENT = "0000:af:00.0"
U = ["cccccccc-0000-4000-8000-00000000000%d" % i for i in range(1, 10)]
ha, hb = Host("nvidia-mdev"), Host("nvidia-mdev")       # ha: with a daemon; hb: its twin without
ka, kb = FakeKernel(ha.root), FakeKernel(hb.root)
ka.start()
kb.start()
CONF = "[daemon]\ngroup = %s\npoll-interval = 200ms\nsocket-mode = 0666\nrestore-on-start = no\n[metrics]\nlisten = off\n" % GROUP
work = tempfile.mkdtemp(prefix="vgpud-client-")        # apply's file, named alike on both hosts
os.chmod(work, 0o755)


def vgpuctl(host, *args, user=None, env=None):
    """(rc, stdout, stderr, pid) of vgpuctl on host, run as user (uid, gid, groups) if given."""
    e = dict(host.env, **(env or {}))
    pre = None
    if user:
        uid, gid, groups = user

        def pre():
            os.setgroups(list(groups))
            os.setgid(gid)
            os.setuid(uid)
    p = subprocess.Popen([VGPUCTL] + list(args), env=e, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, preexec_fn=pre)
    out, err = p.communicate(timeout=60)
    return p.returncode, out, err, p.pid


def instances(host):
    rc, out, _, _ = vgpuctl(host, "--direct", "list", "--json")
    return sorted(i["uuid"] for i in json.loads(out)["instances"] if i["parent"] == PARENT) if rc == 0 else None


def events_since(d, seq):
    return d.events(seq)


def next_seq(d):
    return d.get("/v1/events")[1]["next_seq"]


def by_pid(d, seq, kind, pid, timeout=5):
    """The event of kind after seq that names the caller pid, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in events_since(d, seq):
            if e["kind"] == kind and "(pid %d)" % pid in e["message"]:
                return e
        time.sleep(0.05)
    return None


def same(args, what, env=None):
    """Run args through the daemon on ha and directly on hb: the same rc, stdout, stderr."""
    a = vgpuctl(ha, *args, env=env)
    b = vgpuctl(hb, *args, env=env)
    t.equal(a[:3], b[:3], what + ": through vgpud = direct on the twin")
    return a


def same_here(args, what):
    """Through the daemon and with --direct, both on ha (messages that name ha's paths)."""
    a = vgpuctl(ha, *args)
    b = vgpuctl(ha, "--direct", *args)
    t.equal(a[:3], b[:3], what + ": through vgpud = --direct")
    return a


def create_args(uuid, *more):
    return ("create", "--parent", PARENT, "--type", "nvidia-232", "--uuid", uuid) + more


d = Daemon(ha, CONF)
try:
    # ---- create and remove go through the daemon: its events name our pid; output as direct
    seq = next_seq(d)
    rc, out, err, pid = same(create_args(U[0]), "create (text)")
    t.check(rc == 0 and out == "created %s (nvidia-232 on %s)\n" % (U[0], PARENT) and err == "", "create prints the outcome", (rc, out, err))
    t.check(by_pid(d, seq, "instance_created", pid) is not None, "create went through vgpud: instance_created for vgpuctl's pid",
            events_since(d, seq))
    t.equal(instances(ha), [U[0]], "created on the daemon's host")
    rc, out, err, pid = same(create_args(U[1], "--json"), "create --json")
    t.check(rc == 0 and '"changed":true' in out and U[1] in out, "create --json", out)
    rc, out, _, _ = same(create_args(U[2], "--pretty", "--persist"), "create --pretty --persist")
    t.check(rc == 0 and '\n  "changed": true' in out, "--pretty indents", out)
    t.check(os.path.exists(ha.path("/etc/mdevctl.d/%s/%s" % (PARENT, U[2]))), "--persist reached the daemon: defined")
    rc, out, _, _ = same(create_args(U[0]), "create again")
    t.check(rc == 0 and "already exists" in out and "nothing to do" in out, "create again: nothing to do", out)
    # the fixture's devices have no such attribute: the write fails and the device is removed again
    rc, out, err, _ = same(create_args(U[3], "--attr", "nvidia/vgpu_params=frame_rate_limiter=0"), "create --attr (failing)")
    t.check(rc == 1 and "writing attribute nvidia/vgpu_params" in err, "--attr reached the daemon: the same failure", (rc, err))

    seq = next_seq(d)
    rc, out, err, pid = same(("remove", U[0]), "remove (text)")
    t.check(rc == 0 and out == "removed %s\n" % U[0], "remove prints the outcome", (rc, out, err))
    t.check(by_pid(d, seq, "instance_removed", pid) is not None, "remove went through vgpud: instance_removed for vgpuctl's pid")
    same(("remove", U[1], "--json"), "remove --json")
    t.equal(instances(ha), [U[2]], "removed on the daemon's host")

    # ---- errors: the library's message, exit 1, as a direct run prints them
    rc, _, err, _ = same_here(("remove", U[8]), "remove an absent instance")
    t.check(rc == 1 and err.startswith("vgpuctl: %s: no such vGPU instance" % U[8]), "absent: the library's message", err)
    rc, _, err, _ = same_here(("remove", "not-a-uuid"), "remove a bad id")
    t.check(rc == 1 and "neither a UUID nor a PCI address" in err, "bad id: the library's message", err)
    rc, _, err, _ = same_here(create_args("nope"), "create with a bad UUID")
    t.check(rc == 2 and "--uuid 'nope': not a UUID" in err, "bad UUID: a usage error, before the daemon is asked", err)
    rc, _, err, _ = same_here(("create", "--parent", PARENT, "--type", "nvidia-999", "--uuid", U[8]), "create of an unknown type")
    t.check(rc == 1 and err.startswith("vgpuctl: ") and "nvidia-999" in err, "unknown type: an error naming it", err)
    rc, _, err, _ = same(("create", "--parent", PARENT, "--type", "nvidia-232", "--auto"), "create --auto without --persist")
    t.equal(rc, 2, "usage errors stay usage errors (exit 2)")

    # ---- apply: the file is read here and sent; every form of output as direct
    cfg = ('version: 1\ngpus:\n  - bdf: "%s"\n    devices:\n      - type: nvidia-232\n        count: 2\n        uuids: ["%s", "%s"]\n'
           % (PARENT, U[4], U[5]))
    with open(os.path.join(work, "host.yaml"), "w") as f:
        f.write(cfg)
    os.chmod(os.path.join(work, "host.yaml"), 0o644)
    rc, out, _, _ = same(("apply", "-f", "host.yaml", "--dry-run"), "apply --dry-run")
    t.check(rc == 0 and out.startswith("would do (dry run):\n"), "apply --dry-run prints the plan", out)
    rc, out, _, _ = same(("apply", "-f", "host.yaml", "--dry-run", "--diff"), "apply --dry-run --diff")
    t.check(rc == 0 and "\n+ create     %s" % U[4] in out, "--diff reached the daemon: -/+ lines", out)
    same(("apply", "-f", "host.yaml", "--dry-run", "--json"), "apply --dry-run --json")
    t.equal(instances(ha), [U[2]], "dry runs changed nothing")
    seq = next_seq(d)
    rc, out, _, pid = same(("apply", "-f", "host.yaml", "--force"), "apply --force")
    t.check(rc == 0 and out.startswith("done:\n"), "apply prints what it did", out)
    t.check(by_pid(d, seq, "apply", pid) is not None, "apply went through vgpud: apply event for vgpuctl's pid")
    t.check(U[4] in instances(ha) and instances(ha) != [U[2]], "applied on the daemon's host", instances(ha))
    t.equal(instances(ha), instances(hb), "the same result on the twin")
    rc, out, _, _ = same(("apply", "-f", "host.yaml"), "apply again")
    t.equal((rc, out), (0, "nothing to do: the host matches host.yaml\n"), "apply again: nothing to do, naming the file")
    same(("apply", "-f", "host.yaml", "--json", "--pretty"), "apply again --json --pretty")
    # apply --restore runs here even with the daemon up (it must ignore the saved file's slices,
    # which a daemon parsing the text would not), and --daemon --restore is bad usage
    seq = next_seq(d)
    rc, out, _, pid = vgpuctl(ha, "apply", "--restore")
    t.equal((rc, out), (0, "nothing to do: the host matches %s\n" % "/var/lib/vgpuctl/host.yaml"), "apply --restore: nothing to do")
    t.check(by_pid(d, seq, "apply", pid, timeout=0.5) is None, "apply --restore did not go through vgpud")
    rc, _, err, _ = vgpuctl(ha, "--daemon", "apply", "--restore")
    t.check(rc == 2 and "--restore always runs here" in err, "--daemon apply --restore: bad usage", (rc, err))
    with open(os.path.join(work, "bad.yaml"), "w") as f:
        f.write("version: 1\ngpus:\n  - bdf: [\n")
    rc, _, err, _ = same(("apply", "-f", "bad.yaml"), "apply of a bad file")
    t.check(rc == 1 and err.startswith("vgpuctl: bad.yaml:"), "bad file: named with its line", err)

    # ---- --direct never uses the daemon
    seq = next_seq(d)
    rc, _, _, pid = vgpuctl(ha, "--direct", *create_args(U[6]))
    t.equal(rc, 0, "--direct create")
    t.check(U[6] in instances(ha), "--direct created it")
    time.sleep(0.5)
    t.check([e for e in events_since(d, seq) if e["kind"] == "instance_created"] == [], "--direct: no instance_created event",
            events_since(d, seq))
    rc, _, _, _ = vgpuctl(ha, "--direct", "remove", U[6])
    t.equal(rc, 0, "--direct remove")

    # ---- who may: a member of the group through the daemon; the same user directly cannot
    if os.geteuid() == 0:
        member, outsider = (65534, 65534, [GID]), (65534, 65534, [])
        rc, out, err, _ = vgpuctl(ha, *create_args(U[7]), user=member)
        t.check(rc == 0 and U[7] in out, "a member of the group creates through vgpud", (rc, out, err))
        t.check(U[7] in instances(ha), "the member's vGPU exists")
        before = instances(ha)
        rc, out, err, _ = vgpuctl(ha, "--direct", "remove", U[7], user=member)
        t.check(rc == 1 and "ermission denied" in err and err.startswith("vgpuctl: "),
                "the same user with --direct: the direct path's permission error", (rc, out, err))
        t.equal(instances(ha), before, "nothing changed by the refused direct remove")
        seq = next_seq(d)
        for args in (create_args(U[8]), ("remove", U[7]), ("apply", "-f", "host.yaml", "--force")):
            rc, out, err, _ = vgpuctl(ha, *args, user=outsider)
            t.equal((rc, out, err), (1, "", "vgpuctl: vgpud refused: nobody is neither root nor in group %s\n" % GROUP),
                    "a non-member: vgpud's refusal, exit 1 (%s)" % args[0])
        t.equal(instances(ha), before, "nothing changed by the refused calls")
        t.check(d.wait_event("access_denied", seq) is not None, "the refusals are access_denied events")
        rc, out, err, _ = vgpuctl(ha, "remove", U[7], user=member)
        t.equal(rc, 0, "the member removes through vgpud")
        # a socket the caller may not connect to (0660 root:GROUP): the same refusal, earlier
        os.chmod(ha.sock, 0o660)
        rc, out, err, _ = vgpuctl(ha, *create_args(U[8]), user=outsider)
        t.equal((rc, err), (1, "vgpuctl: vgpud refused: nobody is neither root nor in group %s\n" % GROUP),
                "a non-member who cannot connect: the same refusal")
        os.chmod(ha.sock, 0o666)
    else:
        print("skip: not root, cannot run vgpuctl as other users")

    # ---- VGPUD_SOCKET names the socket (here: ha's, while VGPU_ROOT is hb)
    rc, out, err, _ = vgpuctl(hb, "--daemon", *create_args(U[8]), env={"VGPUD_SOCKET": ha.sock})
    t.check(rc == 0 and U[8] in instances(ha) and U[8] not in instances(hb), "VGPUD_SOCKET: the daemon it names did it", (rc, out, err))
    vgpuctl(ha, "remove", U[8])

    # ---- no daemon: --daemon is an error, a stale socket means direct
    rc, out, err, _ = vgpuctl(hb, "--daemon", *create_args(U[7]))
    t.check(rc == 1 and "vgpud is not running" in err and "--daemon" in err, "--daemon without a daemon: error, exit 1", (rc, err))
    t.check(U[7] not in instances(hb), "--daemon without a daemon: nothing created")
    os.makedirs(os.path.dirname(hb.sock), exist_ok=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(hb.sock)
    s.close()                   # the file stays, nobody listens: what a killed daemon leaves
    rc, out, err, _ = vgpuctl(hb, "--daemon", *create_args(U[7]))
    t.check(rc == 1 and "vgpud is not running" in err, "--daemon with a stale socket: error, exit 1", (rc, err))
    rc, out, err, _ = vgpuctl(hb, *create_args(U[7]))
    t.check(rc == 0 and U[7] in instances(hb), "a stale socket: create runs directly", (rc, out, err))
    rc, _, err, _ = vgpuctl(hb, "--daemon", "list")
    t.check(rc == 2 and "always runs directly" in err, "--daemon on a read verb: usage error", (rc, err))
    rc, _, err, _ = vgpuctl(hb, "--direct", "--daemon", "remove", U[7])
    t.equal(rc, 2, "--direct with --daemon: usage error")
finally:
    ka.stop()
    kb.stop()
    for x in Daemon.started:
        x.stop()
    ha.cleanup()
    hb.cleanup()
    shutil.rmtree(work, ignore_errors=True)
    t.done()
