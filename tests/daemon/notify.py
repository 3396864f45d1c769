#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-notify: the service protocol as systemd sees it, with our own NOTIFY_SOCKET.

Proves: READY=1 once the first poll is done; WATCHDOG=1 at half of WATCHDOG_USEC; STATUS=
says how many GPUs are degraded and changes when that does (and only then); SIGHUP sends
RELOADING=1 then READY=1; SIGTERM sends STOPPING=1; a bad configuration sends STATUS= with the
error before exiting 1."""

import os
import signal
import socket
import subprocess
import threading
import time

from vgpudtest import VGPUD, Checks, Daemon, Host

t = Checks("daemon-notify")
h = Host("nvidia-mdev")
path = os.path.join(h.tmp, "notify.sock")
ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ns.bind(path)
ns.settimeout(0.05)
h.env["NOTIFY_SOCKET"] = path
h.env["WATCHDOG_USEC"] = "400000"
messages = []
stop_reading = False


def reader():
    """Read as systemd does, all the time: sd_notify blocks once the socket's queue is full."""
    while not stop_reading:
        try:
            messages.append((time.monotonic(), ns.recv(4096).decode()))
        except socket.timeout:
            pass


def drain(seconds):
    time.sleep(seconds)


threading.Thread(target=reader, daemon=True).start()


def seen(text):
    return [m for _, m in messages if text in m]


d = Daemon(h, "[daemon]\npoll-interval = 100ms\n[metrics]\nlisten = off\n")
try:
    drain(1.3)
    t.check(any(m.split("\n")[0] == "READY=1" or "READY=1" in m.split("\n") for m in seen("READY=1")), "READY=1", messages[:5])
    dogs = [ts for ts, m in messages if "WATCHDOG=1" in m]
    gaps = [b - a for a, b in zip(dogs, dogs[1:])]
    t.check(len(dogs) >= 4 and all(0.1 < g < 0.35 for g in gaps), "WATCHDOG=1 every ~0.2 s (half of 0.4 s)", gaps)
    status = seen("STATUS=")
    t.check(len(status) == 1 and "4 GPUs (0 degraded), 3 vGPU instances" in status[0], "one STATUS= while nothing changes", status)
    h.set_nvml(0, "temperature", 80)
    drain(0.6)
    status = seen("STATUS=")
    t.check(len(status) == 2 and "(1 degraded)" in status[1], "STATUS= when a GPU gets degraded", status)
    d.signal(signal.SIGHUP)
    drain(0.5)
    reload_ = [m for _, m in messages if "RELOADING=1" in m or m == "READY=1"]
    t.check(len(reload_) >= 3 and "RELOADING=1" in reload_[-2] and reload_[-1] == "READY=1", "SIGHUP: RELOADING=1 then READY=1",
            reload_)
    d.signal(signal.SIGTERM)
    d.proc.wait(10)
    drain(0.2)
    t.check(seen("STOPPING=1"), "SIGTERM: STOPPING=1")
finally:
    d.stop()

bad = os.path.join(h.tmp, "bad.conf")
open(bad, "w").write("[daemon]\npoll-interval = never\n")
messages.clear()
p = subprocess.run([VGPUD, "--config", bad], env=h.env, capture_output=True, text=True, timeout=10)
drain(0.2)
t.check(p.returncode == 1 and any("STATUS=bad configuration: %s:2: [daemon] poll-interval" % bad in m for _, m in messages),
        "a bad configuration: STATUS= with FILE:LINE, exit 1", (p.returncode, messages))
stop_reading = True
time.sleep(0.1)
ns.close()
h.cleanup()
t.done()
