#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-journal: vgpud's structured fields, as journald receives them.

In a private mount namespace (tmpfs over /run) this test is journald: it listens on
/run/systemd/journal/socket and decodes the native protocol (KEY=VALUE lines, and KEY\\n +
64-bit little-endian length + value for values with newlines). vgpud starts with
JOURNAL_STREAM naming its stderr, as systemd sets it for a service logging to the journal.

Proves: every datagram has MESSAGE, PRIORITY and SYSLOG_IDENTIFIER=vgpud; a threshold crossing
carries VGPU_EVENT=thermal_warn, VGPU_BDF and PRIORITY=4; an access denial VGPU_EVENT=
access_denied; an instance created through the API VGPU_INSTANCE and VGPU_BDF (its parent);
a doctor check that does not pass (the copy's boot command line loses intel_iommu=on)
VGPU_CHECK, once per change; and nothing goes to stderr meanwhile. Skips
(77) only where unshare is not permitted."""

import os
import socket
import struct
import subprocess
import sys
import threading
import time

if os.environ.get("VGPU_JOURNAL_NS") != "1":
    # our own mount namespace, so that a tmpfs over /run hides the host's journal (if any)
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        print("SKIP: unshare -m is not permitted here: %s" % probe.stderr.decode().strip())
        sys.exit(77)
    env = dict(os.environ, VGPU_JOURNAL_NS="1")
    os.execvpe("unshare", ["unshare", "-m", "--propagation", "private", sys.executable, os.path.abspath(__file__)], env)

from fakekernel import FakeKernel       # noqa: E402
from vgpudtest import Checks, Daemon, Host, request, request_as  # noqa: E402

t = Checks("daemon-journal")
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
os.makedirs("/run/systemd/journal")
SOCK = "/run/systemd/journal/socket"


def decode(data):
    """One native-protocol datagram as a list of (key, value)."""
    fields, i = [], 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            fields.append((k.decode(), v.decode()))
            i = nl + 1
        else:           # binary form: KEY\n, u64 LE length, value, \n
            (n,) = struct.unpack_from("<Q", data, nl + 1)
            v = data[nl + 9:nl + 9 + n]
            fields.append((line.decode(), v.decode()))
            i = nl + 9 + n + 1
    return fields


entries = []
journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
journal.bind(SOCK)
journal.settimeout(0.2)
stop = False


def listen():
    while not stop:
        try:
            data, anc, _, _ = journal.recvmsg(1 << 20, socket.CMSG_SPACE(4 * 4))
        except socket.timeout:
            continue
        for level, kind, payload in anc:      # big entries come as a memfd (SCM_RIGHTS)
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fd = struct.unpack("i", payload[:4])[0]
                data = os.pread(fd, 1 << 20, 0)
                os.close(fd)
        entries.append(dict(decode(data)))


th = threading.Thread(target=listen, daemon=True)
th.start()


def find(**want):
    return [e for e in entries if all(e.get(k) == v for k, v in want.items())]


def wait_for(timeout=10, **want):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find(**want)
        if found:
            return found[0]
        time.sleep(0.05)
    return None


h = Host("nvidia-mdev")
k = FakeKernel(h.root)
k.start()
# stderr of the daemon is its log file: JOURNAL_STREAM names that file, as systemd names the
# stream it connects; Daemon opens the same path (same inode) for stderr.
log = os.path.join(h.tmp, "vgpud-%d.log" % len(Daemon.started))
open(log, "w").close()
st = os.stat(log)
h.env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
BDF = "0000:3b:00.0"
d = Daemon(h, "[daemon]\npoll-interval = 100ms\nrestore-on-start = no\n[metrics]\nlisten = off\n[thermal]\nwarn = 75\ncritical = 85\n")
try:
    t.check(wait_for(SYSLOG_IDENTIFIER="vgpud") is not None, "vgpud logs to the journal socket")

    # a threshold crossing
    h.set_nvml(0, "temperature", 80)
    e = wait_for(VGPU_EVENT="thermal_warn")
    t.check(e is not None, "thermal_warn reaches the journal", entries[-5:])
    if e:
        t.equal(e.get("VGPU_BDF"), BDF, "thermal_warn: VGPU_BDF")
        t.equal(e.get("PRIORITY"), "4", "thermal_warn: PRIORITY=4 (warning)")
        t.equal(e.get("SYSLOG_IDENTIFIER"), "vgpud", "thermal_warn: SYSLOG_IDENTIFIER")
        t.check("80" in e.get("MESSAGE", ""), "thermal_warn: MESSAGE has the temperature", e)

    # an access denial
    if os.geteuid() == 0:
        st, b = request_as(h.sock, 65534, 65534, [], "POST", "/v1/instances", '{"parent": "0000:af:00.0", "type": "nvidia-232"}')
        t.equal(st, 403, "nobody may not create")
        e = wait_for(VGPU_EVENT="access_denied")
        t.check(e is not None and "uid 65534" in e.get("MESSAGE", ""), "access_denied reaches the journal with its message", e)
        t.check(e is not None and e.get("PRIORITY") == "4", "access_denied: PRIORITY=4", e)

    # an instance created through the API: VGPU_INSTANCE and its parent as VGPU_BDF
    U = "cccccccc-0000-4000-8000-000000000001"
    st, b, _ = request(h.sock, "POST", "/v1/instances", {"parent": "0000:af:00.0", "type": "nvidia-232", "uuid": U})
    t.equal(st, 201, "POST /v1/instances creates")
    e = wait_for(VGPU_EVENT="instance_created")
    t.check(e is not None, "instance_created reaches the journal", entries[-5:])
    if e:
        t.equal(e.get("VGPU_INSTANCE"), U, "instance_created: VGPU_INSTANCE")
        t.equal(e.get("VGPU_BDF"), "0000:af:00.0", "instance_created: VGPU_BDF (the parent)")
        t.equal(e.get("PRIORITY"), "5", "instance_created: PRIORITY=5 (notice)")

    # doctor checks that do not pass, logged once with VGPU_CHECK
    # the boot command line loses intel_iommu=on iommu=pt: iommu.cmdline fails
    cmdline = h.path("/proc/cmdline")
    open(cmdline, "w").write(open(cmdline).read().replace(" intel_iommu=on iommu=pt", ""))
    b = d.get("/v1/health")[1]
    checks = b["checks"]["checks"] if isinstance(b["checks"], dict) else b["checks"]
    bad = {(c["id"], c["status"]) for c in checks if c["status"] in ("warn", "fail")}
    t.check(len(bad) > 0, "the fixture has checks that do not pass", checks[:2])
    time.sleep(0.3)
    logged = {(x["VGPU_CHECK"], "fail" if x["PRIORITY"] == "3" else "warn") for x in entries if "VGPU_CHECK" in x}
    t.equal(logged, bad, "each check /v1/health reports as warn/fail is logged with VGPU_CHECK and its priority")
    n = len([x for x in entries if "VGPU_CHECK" in x])
    d.get("/v1/health")
    time.sleep(0.3)
    t.equal(len([x for x in entries if "VGPU_CHECK" in x]), n, "the same checks are not logged again")

    t.check(all("MESSAGE" in x and "PRIORITY" in x and x.get("SYSLOG_IDENTIFIER") == "vgpud" for x in entries),
            "every entry has MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=vgpud")
finally:
    d.stop()
    k.stop()
    stop = True
    th.join(2)
text = d.logtext()
t.check("thermal" not in text and "denied" not in text, "nothing went to stderr meanwhile", text[-400:])
h.cleanup()
t.done()
