#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-sensors: the host-sensor collectors where their sources are absent (the degraded path).

Proves, on a copy of amd-mxgpu under VGPU_ROOT: with no /dev/ipmi0 the IPMI collector turns
itself off with exactly one log line over many polls, raises no event and no error; libsensors
(live /sys only) is off with one line too, and the GPU temperature still comes from the scan's
hwmon reading; /v1/health has an empty "sensors" and /metrics declares the sensor families with
no samples (promtool-clean) and counts bmc_event 0; with [collectors] sensors = no, ipmi = no
neither collector says anything; a /dev/ipmi0 that is not a BMC (a plain file) makes the IPMI
collector fail once in the log and the daemon carry on. The live paths are tested in
tests/unit/test-telemetry.c (libsensors in a mount namespace) and tests/vm/scenarios/45-ipmi.sh
(QEMU's emulated BMC)."""

import os
import time

from vgpudtest import Checks, Daemon, Host

t = Checks("daemon-sensors")
GPU = "0000:03:00.0"
CONF = "[daemon]\npoll-interval = 100ms\nrestore-on-start = no\n[metrics]\nlisten = off\n"


def polls(d, n):
    """Wait for n more polls (vgpud_polls_total comes with /metrics on the local socket)."""
    def count():
        for line in d.get("/metrics")[1].splitlines():
            if line.startswith("vgpud_polls_total "):
                return int(line.split()[1])
        return 0
    want = count() + n
    deadline = time.monotonic() + 15
    while count() < want and time.monotonic() < deadline:
        time.sleep(0.05)


def lines_with(d, text):
    return [line for line in d.logtext().splitlines() if text in line]


def health(d):
    return d.get("/v1/health?checks=false")[1]


h = Host("amd-mxgpu")
try:
    d = Daemon(h, CONF)
    polls(d, 6)
    t.equal(len(lines_with(d, "IPMI collector off: no ")), 1, "no /dev/ipmi0: one log line over 6+ polls")
    t.equal(len(lines_with(d, "sensors collector off:")), 1, "libsensors under VGPU_ROOT: one log line")
    t.equal(lines_with(d, "warning: IPMI collector:"), [], "no IPMI errors logged")
    body = health(d)
    t.equal(body.get("sensors"), [], "/v1/health: sensors is an empty list")
    g = [x for x in body["gpus"] if x["bdf"] == GPU]
    t.check(g and g[0]["temperature_c"] == 38 and g[0]["temperature_source"] == "hwmon",
            "the GPU's temperature still comes from the scan's hwmon (38 C, temp1_input)", g)
    t.equal([e for e in d.events() if e["kind"] in ("bmc_event", "poll_failed")], [], "no bmc_event, no poll_failed")
    text = d.get("/metrics")[1]
    t.check("# TYPE vgpu_host_sensor_value gauge" in text, "/metrics declares vgpu_host_sensor_value")
    t.equal([x for x in text.splitlines() if x.startswith("vgpu_host_sensor_")], [], "no sensor samples")
    t.check('vgpu_events_total{kind="bmc_event"} 0' in text, "vgpu_events_total{kind=bmc_event} 0")
    t.promtool(text)
    d.stop()

    d = Daemon(h, CONF + "[collectors]\nsensors = no\nipmi = no\n")
    polls(d, 3)
    t.equal(lines_with(d, "collector off"), [], "collectors switched off: not a word about them")
    t.equal(health(d).get("sensors"), [], "switched off: no sensors")
    g = [x for x in health(d)["gpus"] if x["bdf"] == GPU]
    t.check(g and g[0]["temperature_c"] == 38, "switched off: hwmon (the scan's) still gives the GPU temperature", g)
    d.stop()

    # something at /dev/ipmi0 that is no BMC: the collector fails, says so once, the daemon goes on
    os.makedirs(h.path("/dev"), exist_ok=True)
    open(h.path("/dev/ipmi0"), "w").close()
    d = Daemon(h, CONF)
    polls(d, 4)
    t.check(len(lines_with(d, "warning: IPMI collector:")) == 1, "a /dev/ipmi0 that does not answer: one warning",
            lines_with(d, "IPMI"))
    t.equal(lines_with(d, "IPMI collector off"), [], "the device exists: not reported as absent")
    t.equal(health(d).get("sensors"), [], "no readings from it")
    t.check(health(d)["state"] in ("ok", "unknown"), "the daemon's health is not affected", health(d)["state"])
    d.stop()
finally:
    h.cleanup()
t.done()
