#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-limits: what an adversarial probe broke in the input checks (issue 10), through the real
interfaces: the socket as `nobody`, host.yaml files, the CLI.

Proves: a JSON string with \\u0000 (and a host.yaml string with \\0) is refused, not cut short;
190000 UUIDs in host.yaml are checked for repeats in linear time, directly and through
the daemon, whose loop keeps answering meanwhile; host.yaml has one size limit (16 MiB) for
files and bodies alike: `apply -f /dev/zero` ends with a clear message, and a valid 4 MB file
applies the same with --direct and through the daemon."""

import os
import resource
import socket
import subprocess
import threading
import time

from vgpudtest import Checks, Daemon, Host, request

t = Checks("daemon-limits")
h = Host("nvidia-mdev")
GROUP, GID = "users", 100
NOBODY = 65534
d = Daemon(h, "[daemon]\ngroup = %s\npoll-interval = 200ms\nsocket-mode = 0666\n[metrics]\nlisten = off\n" % GROUP)
sock = h.sock
is_root = os.geteuid() == 0


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def vgpuctl(*args, timeout=60, env=None):
    """(rc, stdout, stderr, CPU seconds) of vgpuctl on the host; rc None when it ran past timeout.
    CPU, not wall time: a busy machine stretches the one, not the other."""
    c0 = children_cpu()
    try:
        p = subprocess.run([os.environ["VGPUCTL"]] + list(args), env=dict(h.env, **(env or {})), capture_output=True,
                           text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr, children_cpu() - c0
    except subprocess.TimeoutExpired:
        return None, "", "timed out", children_cpu() - c0


def daemon_cpu():
    """vgpud's CPU seconds so far, all threads (schedstat: nanoseconds on a CPU)."""
    with open("/proc/%d/schedstat" % d.proc.pid) as f:
        return int(f.read().split()[0]) / 1e9


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
    # before it, so comparing each with every later one (the old check) went through them all.
    # Speed is judged against the same check on an eighth of the UUIDs, in the same run, in CPU
    # seconds: a linear check costs about 8x as much on the whole, the old quadratic one 61x,
    # whatever the machine's speed or load (a fixed bound in wall seconds failed under ASan on a
    # busy machine, and would pass a quadratic check on a fast one).
    def uuids_yaml(name, lists):
        lines = ["version: 1", "gpus:", '  - parent: "0000:3b:00.0"', "    devices:"]
        for dev in range(lists):
            lines += ["      - type: nvidia-232", "        count: 4096", "        uuids:"]
            lines += ["          - %08x-0000-4000-8000-%012x" % (dev, i) for i in range(4096)]
        lines += ["      - type: nvidia-232", "        uuids: [%08x-0000-4000-8000-000000000fff]" % (lists - 1)]
        repeat = "UUID %08x-0000-4000-8000-000000000fff is also used at line %d" % (lists - 1, 5 + (lists - 1) * 4099)
        text = "\n".join(lines) + "\n"
        path = os.path.join(h.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path, text, repeat

    def linear(what, took_all, took_eighth):
        # 47 lists against 6: 7.8x the work; 24x leaves room for noise and is far below 61x
        ratio = took_all / max(took_eighth, 0.001)
        print("%s: %.2f s CPU for 192512 UUIDs, %.2f s for 24577 (%.1fx)" % (what, took_all, took_eighth, ratio))
        t.check(ratio < 24, "%s: 192512 UUIDs take %.1fx the time of 24577 (linear: ~8x; quadratic: ~61x)"
                % (what, ratio))

    big, text, repeat = uuids_yaml("uuids.yaml", 47)
    small, small_text, small_repeat = uuids_yaml("uuids-eighth.yaml", 6)
    # without meson's MALLOC_PERTURB_: glibc then fills each block libyaml's scanner frees as its
    # buffers grow, which is no cost of ours and grows faster than the file (2.5 s against 0.24 s)
    unperturbed = {"MALLOC_PERTURB_": "0"}
    rc, out, err, took_small = vgpuctl("apply", "-f", small, "--dry-run", "--direct", timeout=60, env=unperturbed)
    t.check(rc == 1 and small_repeat in err, "24577 UUIDs, one repeated: named (direct)", (rc, err[:300]))
    rc, out, err, took = vgpuctl("apply", "-f", big, "--dry-run", "--direct", timeout=120, env=unperturbed)
    t.check(rc == 1 and repeat in err,
            "192512 UUIDs, one repeated: named (direct)", (rc, err[:300]))
    linear("direct", took, took_small)
    # through the daemon, while another client polls: the loop stays responsive
    c0 = daemon_cpu()
    st, b, _ = request(sock, "POST", "/v1/apply?dry_run=1&source=uuids-eighth.yaml", small_text, timeout=60)
    took_small = daemon_cpu() - c0
    t.check(st == 400 and small_repeat in b.get("error", ""), "24577 UUIDs through the daemon: 400 naming the repeat",
            (st, str(b)[:300]))
    slowest, stop = [0.0], threading.Event()

    def poll():
        while not stop.is_set():
            t0 = time.monotonic()
            request(sock, "GET", "/v1/events?since=999999999")
            slowest[0] = max(slowest[0], time.monotonic() - t0)
            time.sleep(0.02)
    poller = threading.Thread(target=poll)
    poller.start()
    c0 = daemon_cpu()
    st, b, _ = request(sock, "POST", "/v1/apply?dry_run=1&source=uuids.yaml", text, timeout=120)
    took = daemon_cpu() - c0  # with the poller's requests: a few ms
    stop.set()
    poller.join()
    t.check(st == 400 and repeat in b.get("error", ""), "192512 UUIDs through the daemon: 400 naming the repeat",
            (st, str(b)[:300]))
    linear("daemon", took, took_small)
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
