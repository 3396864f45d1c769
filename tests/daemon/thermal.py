#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-thermal: the collectors and the thermal policy, by editing what the sources say
between polls.

Proves: a temperature crossing warn and critical (NVML double's nvml.conf edited between 100 ms
polls) logs one event each, marks the GPU degraded in /v1/gpus and /v1/health, shows in
/metrics, and runs the hook with the event in its environment; readings inside the hysteresis
band change nothing (no flapping); falling below threshold minus hysteresis logs recovery; a
per-GPU [thermal "BDF"] rule applies to that GPU only; a GPU whose PCIe link trained narrow
(broken-link-degraded) is degraded with reason pcie_link and a link_degraded event; a GPU with
only hwmon (broken-hot-hwmon, AMD) is read through hwmon; turning the nvml collector off leaves
NVML GPUs without temperature."""

import os
import time

from vgpudtest import Checks, Daemon, Host

t = Checks("daemon-thermal")
POLL = 0.1


def settle(polls=4):
    time.sleep(POLL * polls)


def thermal_events(d, bdf):
    return [(e["kind"], e["temperature_c"]) for e in d.events()
            if e["bdf"] == bdf and e["kind"].startswith("thermal_")]


def health_of(d, bdf):
    return [g for g in d.get("/v1/health?checks=false")[1]["gpus"] if g["bdf"] == bdf][0]


def metric(d, name, bdf):
    text = d.get("/metrics")[1]
    for line in text.splitlines():
        if line.startswith(name + "{") and 'bdf="%s"' % bdf in line:
            return float(line.rsplit(" ", 1)[1])
    return None


h = Host("nvidia-mdev")
hook_log = os.path.join(h.tmp, "hook.log")
conf = """[daemon]
poll-interval = 100ms
hook = echo "$VGPU_EVENT $VGPU_BDF $VGPU_TEMPERATURE $VGPU_THRESHOLD $VGPU_PREVIOUS_STATE>$VGPU_STATE $VGPU_MODEL" >> %s
[metrics]
listen = off
[thermal]
warn = 75
critical = 85
hysteresis = 5
[thermal "0000:5e:00.0"]
warn = 45
""" % hook_log
d = Daemon(h, conf)
BDF = "0000:3b:00.0"
try:
    # the per-GPU rule: 5e:00.0 runs at 47 C, past its own warn of 45 C, from the start
    e = d.wait_event("thermal_warn", bdf="0000:5e:00.0", timeout=3)
    t.check(e is not None and e["temperature_c"] == 47, "per-GPU rule: 5e:00.0 warns at 47 C from the start", e)
    hs = {g["bdf"]: (g["warn_c"], g["critical_c"]) for g in d.get("/v1/health?checks=false")[1]["gpus"] if g["temperature_c"] is not None}
    t.equal(hs, {"0000:3b:00.0": (75, 85), "0000:5e:00.0": (45, 85), "0000:af:00.0": (75, 85)}, "thresholds per GPU")
    t.equal(health_of(d, BDF)["state"], "ok", "3b:00.0 starts ok")
    t.equal(metric(d, "vgpu_gpu_degraded", BDF), 0, "metrics: not degraded")

    # ok -> warn
    h.set_nvml(0, "temperature", 76)
    e = d.wait_event("thermal_warn", bdf=BDF)
    t.check(e is not None and e["temperature_c"] == 76 and e["severity"] == "warning" and "warning threshold of 75 C" in e["message"],
            "76 C: thermal_warn", e)
    hh = health_of(d, BDF)
    t.equal((hh["state"], hh["thermal"], hh["reasons"]), ("degraded", "warn", ["thermal_warn"]), "/v1/health: degraded by warn")
    t.equal(d.get("/v1/health?checks=false")[1]["state"], "degraded", "/v1/health: host state degraded")
    g = [g for g in d.get("/v1/gpus")[1]["gpus"] if g["bdf"] == BDF][0]
    t.equal((g["health"]["state"], g["health"]["temperature_c"]), ("degraded", 76), "/v1/gpus: degraded")
    t.equal((metric(d, "vgpu_gpu_thermal_state", BDF), metric(d, "vgpu_gpu_degraded", BDF), metric(d, "vgpu_gpu_temperature_celsius", BDF)),
            (1, 1, 76), "metrics: warn, degraded, 76 C")

    # inside the band (70..75): stays warn, no event
    for c in (73, 74, 71, 74):
        h.set_nvml(0, "temperature", c)
        settle(2)
    t.equal(thermal_events(d, BDF), [("thermal_warn", 76)], "71-74 C after warn: no flapping")

    # warn -> critical; inside its band (80..85): stays
    h.set_nvml(0, "temperature", 86)
    e = d.wait_event("thermal_critical", bdf=BDF)
    t.check(e is not None and e["severity"] == "critical", "86 C: thermal_critical", e)
    t.equal(metric(d, "vgpu_gpu_thermal_state", BDF), 2, "metrics: critical")
    h.set_nvml(0, "temperature", 82)
    settle()
    t.equal(health_of(d, BDF)["thermal"], "critical", "82 C: still critical (hysteresis)")

    # critical -> warn -> ok, each only below threshold minus hysteresis
    h.set_nvml(0, "temperature", 79)
    e = d.wait_event("thermal_recovered", bdf=BDF)
    t.check(e is not None and "back to warning" in e["message"], "79 C: recovered from critical to warn", e)
    h.set_nvml(0, "temperature", 71)
    settle()
    t.equal(health_of(d, BDF)["thermal"], "warn", "71 C: still warn (hysteresis)")
    h.set_nvml(0, "temperature", 69)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and health_of(d, BDF)["thermal"] != "ok":
        time.sleep(0.05)
    hh = health_of(d, BDF)
    t.equal((hh["state"], hh["thermal"], hh["reasons"]), ("ok", "ok", []), "69 C: recovered, ok")
    t.equal(d.get("/v1/health?checks=false")[1]["state"], "degraded", "host still degraded (5e:00.0 warns)")
    t.equal(metric(d, "vgpu_gpu_degraded", BDF), 0, "metrics: not degraded again")
    t.equal(thermal_events(d, BDF), [("thermal_warn", 76), ("thermal_critical", 86), ("thermal_recovered", 79), ("thermal_recovered", 69)],
            "exactly four thermal events for the whole excursion")
    counts = {}
    for line in d.get("/metrics")[1].splitlines():
        if line.startswith("vgpu_events_total{"):
            counts[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
    t.equal((counts.get("thermal_warn"), counts.get("thermal_critical"), counts.get("thermal_recovered")), (2, 1, 2),
            "vgpu_events_total by kind")
    # the journal/stderr log has the structured fields
    log = d.logtext()
    t.check("event=thermal_critical bdf=0000:3b:00.0" in log, "log line carries event and bdf fields")

    # the hook ran once per event, with the event in its environment
    deadline = time.monotonic() + 5
    lines = []
    while time.monotonic() < deadline:
        lines = open(hook_log).read().splitlines() if os.path.exists(hook_log) else []
        if len(lines) >= 5:
            break
        time.sleep(0.05)
    mine = [line for line in lines if BDF in line]
    t.equal(mine, ["thermal_warn 0000:3b:00.0 76 75 ok>warn Tesla T4", "thermal_critical 0000:3b:00.0 86 85 warn>critical Tesla T4",
                   "thermal_recovered 0000:3b:00.0 79 85 critical>warn Tesla T4", "thermal_recovered 0000:3b:00.0 69 75 warn>ok Tesla T4"],
            "the hook saw each event")
finally:
    d.stop()
h.cleanup()

# PCIe link trained at x8 of x16: degraded with reason pcie_link, an event at the first poll
h = Host("broken-link-degraded")
d = Daemon(h, "[metrics]\nlisten = off\n")
try:
    hh = health_of(d, "0000:3b:00.0")
    t.equal((hh["state"], hh["link_degraded"], hh["reasons"]), ("degraded", True, ["pcie_link"]), "narrow link: degraded")
    e = d.wait_event("link_degraded", timeout=3)
    t.check(e is not None and "x8 of x16" in e["message"], "link_degraded event", e)
    t.equal((metric(d, "vgpu_gpu_pcie_link_width", "0000:3b:00.0"), metric(d, "vgpu_gpu_pcie_link_width_max", "0000:3b:00.0"),
             metric(d, "vgpu_gpu_pcie_link_speed", "0000:3b:00.0")), (8, 16, 2.5), "link metrics")
finally:
    d.stop()
h.cleanup()

# hwmon only (AMD, no NVML): 92 C read from temp1_input is critical
h = Host("broken-hot-hwmon")
d = Daemon(h, "[metrics]\nlisten = off\n")
try:
    hh = health_of(d, "0000:03:00.0")
    t.equal((hh["temperature_c"], hh["temperature_source"], hh["thermal"]), (92, "hwmon", "critical"), "hwmon reading, critical")
    t.equal(metric(d, "vgpu_gpu_throttle", "0000:03:00.0"), 0, "throttle: 92 C is below hwmon's crit of 100 C")
finally:
    d.stop()
h.cleanup()

# the nvml collector off: NVIDIA GPUs have no temperature, no power
h = Host("broken-hot")
d = Daemon(h, "[metrics]\nlisten = off\n[collectors]\nnvml = no\n")
try:
    hh = health_of(d, "0000:3b:00.0")
    t.equal((hh["temperature_c"], hh["thermal"]), (None, "unknown"), "nvml off: no temperature")
    t.equal(metric(d, "vgpu_gpu_power_watts", "0000:3b:00.0"), None, "nvml off: no power series")
finally:
    d.stop()
h.cleanup()
h = Host("broken-hot")
d = Daemon(h, "[metrics]\nlisten = off\n")
try:
    t.equal(metric(d, "vgpu_gpu_throttle", "0000:3b:00.0"), 1, "95 C at NVML's slowdown of 93 C: throttle{reason=thermal} 1")
finally:
    d.stop()
h.cleanup()
t.done()
