#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-limits: what an adversarial probe broke in the input checks (issue 10), through the real
interfaces: the socket as `nobody`, host.yaml files, the CLI.

Proves: a JSON string with \\u0000 (and a host.yaml string with \\0) is refused, not cut short;
190000 UUIDs in host.yaml are checked for repeats in well under a second, directly and through
the daemon, whose loop keeps answering meanwhile; host.yaml has one size limit (16 MiB) for
files and bodies alike: `apply -f /dev/zero` ends with a clear message, and a valid 4 MB file
applies the same with --direct and through the daemon."""

import os
import socket
import subprocess
import sys
import threading
import time

from vgpudtest import Checks, Daemon, Host, request, request_as

t = Checks("daemon-limits")
h = Host("nvidia-mdev")
GROUP, GID = "users", 100
NOBODY = 65534
d = Daemon(h, "[daemon]\ngroup = %s\npoll-interval = 200ms\nsocket-mode = 0666\n[metrics]\nlisten = off\n" % GROUP)
sock = h.sock
is_root = os.geteuid() == 0


def vgpuctl(*args, timeout=60, env=None):
    """(rc, stdout, stderr, seconds) of vgpuctl on the host; rc None when it ran past timeout."""
    t0 = time.monotonic()
    try:
        p = subprocess.run([os.environ["VGPUCTL"]] + list(args), env=dict(h.env, **(env or {})), capture_output=True,
                           text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr, time.monotonic() - t0
    except subprocess.TimeoutExpired:
        return None, "", "timed out", time.monotonic() - t0


try:
    # ---- item 11: \u0000 in a JSON string, \0 in a host.yaml string
    for body, what in (('{"parent": "0000:3b:00.0\\u0000/../x", "type": "nvidia-232"}', "a value"),
                       ('{"parent": "0000:3b:00.0", "type": "nvidia-232", "pa\\u0000rent": "x"}', "a key")):
        st, b, _ = request(sock, "POST", "/v1/instances", body)
        t.check(st == 400 and "NUL" in b.get("error", ""), "\\u0000 in %s of POST /v1/instances: 400" % what, (st, b))
    before = h.vgpuctl_json("list")["instances"]
    yaml = os.path.join(h.tmp, "nul.yaml")
    with open(yaml, "w") as f:
        f.write('version: 1\ngpus:\n  - parent: "0000:3b:00.0\\0/../x"\n    devices: []\n')
    rc, out, err, _ = vgpuctl("apply", "-f", yaml, "--dry-run", "--direct")
    t.check(rc != 0 and "nul.yaml:3:" in err and "NUL" in err, "\\0 in a host.yaml string: refused with FILE:LINE", (rc, err))
    t.equal(h.vgpuctl_json("list")["instances"], before, "nothing created by the NUL attempts")

    # ---- item 13: 190000 UUIDs, the repeat at the end: the last list's one repeats the UUID
    # before it, so comparing each with every later one (the old check) went through them all
    big = os.path.join(h.tmp, "uuids.yaml")
    lines = ["version: 1", "gpus:", '  - parent: "0000:3b:00.0"', "    devices:"]
    for dev in range(47):
        lines += ["      - type: nvidia-232", "        count: 4096", "        uuids:"]
        lines += ["          - %08x-0000-4000-8000-%012x" % (dev, i) for i in range(4096)]
    lines += ["      - type: nvidia-232", "        uuids: [0000002e-0000-4000-8000-000000000fff]"]
    repeat = "UUID 0000002e-0000-4000-8000-000000000fff is also used at line %d" % (5 + 46 * 4099)
    text = "\n".join(lines) + "\n"
    with open(big, "w") as f:
        f.write(text)
    rc, out, err, took = vgpuctl("apply", "-f", big, "--dry-run", "--direct", timeout=20)
    t.check(rc == 1 and repeat in err,
            "192512 UUIDs, one repeated: named (direct)", (rc, err[:300]))
    t.check(took < 10, "192512 UUIDs checked in %.2f s (direct; was 44 s)" % took)
    # through the daemon, while another client polls: the loop stays responsive
    slowest, stop = [0.0], threading.Event()

    def poll():
        while not stop.is_set():
            t0 = time.monotonic()
            request(sock, "GET", "/v1/events?since=999999999")
            slowest[0] = max(slowest[0], time.monotonic() - t0)
            time.sleep(0.02)
    poller = threading.Thread(target=poll)
    poller.start()
    t0 = time.monotonic()
    st, b, _ = request(sock, "POST", "/v1/apply?dry_run=1&source=uuids.yaml", text, timeout=60)
    took = time.monotonic() - t0
    stop.set()
    poller.join()
    t.check(st == 400 and repeat in b.get("error", ""), "192512 UUIDs through the daemon: 400 naming the repeat",
            (st, str(b)[:300]))
    t.check(took < 10, "192512 UUIDs through the daemon in %.2f s" % took)
    t.check(slowest[0] < 3, "the daemon answered others meanwhile (slowest %.2f s)" % slowest[0])

    # ---- item 14: one size limit for host.yaml, files and bodies alike
    rc, out, err, took = vgpuctl("apply", "-f", "/dev/zero", "--direct", timeout=30)
    t.check(rc not in (None, 0) and "/dev/zero: larger than 16 MiB, the limit for host.yaml" in err,
            "apply -f /dev/zero --direct ends with the limit named", (rc, err[:300], took))
    rc, out, err, took = vgpuctl("apply", "-f", "/dev/zero", timeout=30)
    t.check(rc not in (None, 0) and "/dev/zero: larger than 16 MiB, the limit for host.yaml" in err,
            "apply -f /dev/zero (daemon running) ends with the same message", (rc, err[:300], took))
    four = os.path.join(h.tmp, "four.yaml")
    with open(four, "w") as f:
        f.write("version: 1\ngpus:\n  - parent: \"0000:3b:00.0\"\n    devices: []\n")
        f.write(("# " + "x" * 97 + "\n") * 40000)        # 4 MB of comments: valid, and big
    direct = vgpuctl("apply", "-f", four, "--dry-run", "--direct", "--json")
    daemon = vgpuctl("apply", "-f", four, "--dry-run", "--daemon", "--json")
    t.check(direct[0] == 0 and direct[:3] == daemon[:3], "a valid 4 MB host.yaml: the same result with --direct and through vgpud",
            (direct[:3], daemon[:3]))
    over = os.path.join(h.tmp, "over.yaml")
    with open(over, "w") as f:
        f.write("version: 1\ngpus: []\n")
        f.write(("#" + "x" * 1023 + "\n") * (16 * 1024 + 1))
    direct = vgpuctl("apply", "-f", over, "--dry-run", "--direct")
    t.check(direct[0] == 1 and "over.yaml: larger than 16 MiB, the limit for host.yaml" in direct[2], "a 16 MiB + 1 KiB file: refused",
            direct[:3])
    # as a body: the daemon answers from the announced length alone, the same limit
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(sock)
    s.sendall(b"POST /v1/apply?dry_run=1 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % os.path.getsize(over))
    reply = s.recv(4096)
    s.close()
    t.check(reply.startswith(b"HTTP/1.1 413") and b"larger than 16 MiB, the limit for host.yaml" in reply,
            "the same file as a body: 413, same limit", reply[:300])
finally:
    d.stop()
    h.cleanup()
t.done()
