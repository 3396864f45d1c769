#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-nvml: the NVML collector's newer readings and Xid events, by editing what the NVML
double serves (nvml.conf, nvml-events) between 100 ms polls.

Proves: utilization, reserved framebuffer and every clocks-event reason reach /metrics
(vgpu_gpu_utilization_ratio, vgpu_gpu_framebuffer_reserved_bytes, vgpu_gpu_throttle{reason})
and the health objects, with GPUs whose NVML lacks them left out, never 0; a thermal slowdown
reason degrades the GPU (reason thermal_slowdown) and its end recovers it; an Xid appended to
the double's event file becomes an event of kind xid with its meaning, counted in
vgpu_events_total; a critical one degrades the GPU (reason xid) until the GPU's driver is
unbound (a reset or reload), a non-critical one does not; the PCIe link comes from NVML where
sysfs has none; VDI: encoder (NVENC) and frame-capture (NVFBC) load per GPU and per running
vGPU, and each vGPU's frame-rate limit, reach /v1/gpus (schema-valid) and promtool-clean
/metrics, and are null / left out where NVML lacks them."""

import os
import sys
import tarfile
import time

from vgpudtest import Checks, Daemon, Host

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from validate import validate  # noqa: E402

t = Checks("daemon-nvml")
REASONS = ["gpu_idle", "applications_clocks_setting", "sw_power_cap", "hw_slowdown", "sync_boost",
           "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown", "display_clock_setting"]
B0, B1, B2 = "0000:3b:00.0", "0000:5e:00.0", "0000:af:00.0"


def set_nvml(h, index, key, value):
    """Set (or add) one key of the double's nvml.conf, atomically."""
    p = h.path("nvml.conf")
    k = "gpu.%d.%s=" % (index, key)
    lines = [line for line in open(p).read().splitlines() if not line.startswith(k)] + [k + str(value)]
    with open(p + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.rename(p + ".tmp", p)


def xid(h, bus_id, kind, value):
    with open(h.path("nvml-events"), "a") as f:
        f.write("%s %s %s\n" % (bus_id, kind, value))


def series(d, name):
    """{(bdf, reason or None): value} of one metric."""
    out = {}
    for line in d.get("/metrics")[1].splitlines():
        if line.startswith(name + "{"):
            labels = dict(kv.split("=", 1) for kv in line[len(name) + 1:line.rindex("}")].replace('"', "").split(","))
            out[(labels["bdf"], labels.get("reason"))] = float(line.rsplit(" ", 1)[1])
    return out


def health_of(d, bdf):
    return [g for g in d.get("/v1/health?checks=false")[1]["gpus"] if g["bdf"] == bdf][0]


def wait_for(fn, want, timeout=5):
    deadline = time.monotonic() + timeout
    got = fn()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.05)
        got = fn()
    return got


h = Host("nvidia-mdev")
hook_log = os.path.join(h.tmp, "hook.log")
d = Daemon(h, "[daemon]\npoll-interval = 100ms\n"
              "hook = echo \"$VGPU_EVENT $VGPU_BDF $VGPU_XID $VGPU_PREVIOUS_STATE>$VGPU_STATE $VGPU_MESSAGE\" >> %s\n"
              "[metrics]\nlisten = off\n" % hook_log)


def xid_hooks():
    """The hook's lines for Xids, once the ones started have written."""
    time.sleep(0.3)
    lines = open(hook_log).read().splitlines() if os.path.exists(hook_log) else []
    return [line for line in lines if line.startswith("xid ")]
try:
    util = series(d, "vgpu_gpu_utilization_ratio")
    t.equal(util, {(B0, None): 0.12, (B1, None): 0.31}, "utilization ratio: 0.12 and 0.31; af:00.0 (no NVML utilization) left out")
    t.equal(series(d, "vgpu_gpu_memory_utilization_ratio"), {(B0, None): 0.05, (B1, None): 0.18}, "memory utilization ratio")
    t.equal(series(d, "vgpu_gpu_framebuffer_reserved_bytes"), {(B0, None): 469762048, (B1, None): 469762048},
            "reserved framebuffer (nvmlMemory_v2); left out for af:00.0")
    used = series(d, "vgpu_gpu_framebuffer_used_bytes")
    t.equal(used.get((B2, None)), 0, "framebuffer used still there for af:00.0 (v1)")
    thr = series(d, "vgpu_gpu_throttle")
    t.equal(sorted(r for b, r in thr if b == B0), sorted(REASONS), "throttle: one series per NVML reason")
    t.equal({r: v for (b, r), v in thr.items() if b == B0 and v}, {"sw_power_cap": 1}, "3b:00.0: power cap only")
    t.equal({r: v for (b, r), v in thr.items() if b == B1 and v}, {"gpu_idle": 1}, "5e:00.0: idle only")
    t.equal({r: v for (b, r), v in thr.items() if b == B2}, {"thermal": 0}, "af:00.0 without NVML reasons: temperature-derived")
    text = d.get("/metrics")[1]
    for name in ("vgpu_gpu_utilization_ratio", "vgpu_gpu_framebuffer_reserved_bytes", "vgpu_gpu_throttle"):
        t.check("# HELP %s " % name in text and "# TYPE %s gauge" % name in text, "HELP and TYPE for " + name)

    hh = health_of(d, B0)
    t.equal((hh["utilization_gpu_percent"], hh["utilization_memory_percent"], hh["memory_reserved_bytes"], hh["clocks_event_reasons"],
             hh["state"]),
            (12, 5, 469762048, ["sw_power_cap"], "ok"), "/v1/health: NVML readings of 3b:00.0, power cap is not degraded")
    hh = health_of(d, B2)
    t.equal((hh["utilization_gpu_percent"], hh["memory_reserved_bytes"], hh["clocks_event_reasons"]), (None, None, None),
            "/v1/health: unknown for af:00.0")
    g = [g for g in d.get("/v1/gpus")[1]["gpus"] if g["bdf"] == B1][0]
    t.equal((g["nvml"]["clocks_event_reasons"], g["nvml"]["utilization_gpu_percent"], g["nvml"]["pcie_generation"]),
            (["gpu_idle"], 31, 1), "/v1/gpus: the nvml object")
    # one name per fact: an NVML reading in /v1/health has its name in the nvml object, and
    # /v1/gpus, where both objects sit side by side, carries it once (under nvml)
    hh = health_of(d, B1)
    readings = {"utilization_gpu_percent", "utilization_memory_percent", "memory_reserved_bytes", "clocks_event_reasons"}
    t.check(readings <= set(hh) and readings <= set(g["nvml"]), "/v1/health's NVML readings have the nvml object's names", sorted(hh))
    t.equal({k: hh[k] for k in readings}, {k: g["nvml"][k] for k in readings}, "/v1/health and /v1/gpus: the same readings")
    t.equal(sorted(set(g["health"]) & set(g["nvml"]) - {"temperature_c"}), [], "/v1/gpus: no NVML reading twice (health and nvml)")

    # thermal slowdown: degraded with reason thermal_slowdown, recovered when NVML stops saying so
    set_nvml(h, 0, "clocks_event_reasons", "0x24")
    got = wait_for(lambda: health_of(d, B0)["reasons"], ["thermal_slowdown"])
    t.equal(got, ["thermal_slowdown"], "sw thermal slowdown: reason thermal_slowdown")
    hh = health_of(d, B0)
    t.equal((hh["state"], hh["thermal"], sorted(hh["clocks_event_reasons"])), ("degraded", "ok", ["sw_power_cap", "sw_thermal_slowdown"]),
            "degraded by the slowdown alone (41 C is fine)")
    thr = series(d, "vgpu_gpu_throttle")
    t.equal((thr[(B0, "sw_thermal_slowdown")], thr[(B0, "sw_power_cap")], series(d, "vgpu_gpu_degraded")[(B0, None)]), (1, 1, 1),
            "metrics: slowdown, power cap, degraded")
    set_nvml(h, 0, "clocks_event_reasons", "0x40")
    time.sleep(0.4)
    t.equal(health_of(d, B0)["reasons"], ["thermal_slowdown"], "hw thermal slowdown: also thermal_slowdown")
    set_nvml(h, 0, "clocks_event_reasons", "0x0")
    got = wait_for(lambda: (health_of(d, B0)["state"], health_of(d, B0)["reasons"]), ("ok", []))
    t.equal(got, ("ok", []), "slowdown over: ok again")
    t.equal(series(d, "vgpu_gpu_degraded")[(B0, None)], 0, "metrics: not degraded again")

    # Xids: a non-critical one is logged, a critical one degrades until the GPU is reset
    xid(h, "00000000:5E:00.0", "xid", 13)
    e = d.wait_event("xid", bdf=B1, timeout=5)
    t.check(e is not None and e["severity"] == "warning" and e["message"].startswith("Xid 13 on 0000:5e:00.0 (graphics engine exception)"),
            "Xid 13: an event, warning", e)
    time.sleep(0.3)
    t.equal((health_of(d, B1)["state"], health_of(d, B1)["xid"]), ("ok", None), "Xid 13 does not degrade")
    xid(h, "00000000:3B:00.0", "xid", 79)
    e = d.wait_event("xid", bdf=B0, timeout=5)
    t.check(e is not None and e["severity"] == "critical" and e["message"].startswith("Xid 79 on 0000:3b:00.0 (GPU has fallen off the bus)"),
            "Xid 79: critical event with its meaning", e)
    hh = health_of(d, B0)
    t.equal((hh["state"], hh["reasons"], hh["xid"]), ("degraded", ["xid"], 79), "Xid 79: degraded, reason xid")
    t.check(hh["xid_time"] is not None, "xid_time set", hh)
    # the hook runs for the critical Xid (79), not for 13, with the Xid in its environment
    t.equal(xid_hooks(), ["xid 0000:3b:00.0 79 ok>degraded Xid 79 on 0000:3b:00.0 (GPU has fallen off the bus): GPU degraded until it is reset"],
            "hook: once, for Xid 79 only")
    g = [g for g in d.get("/v1/gpus")[1]["gpus"] if g["bdf"] == B0][0]
    t.equal(g["health"]["state"], "degraded", "/v1/gpus: degraded by the Xid")
    xid(h, "00000000:3B:00.0", "dbe", 1)
    e = d.wait_event("ecc", bdf=B0, timeout=5)
    t.check(e is not None and "double-bit" in e["message"], "double-bit ECC event", e)
    time.sleep(0.5)
    t.equal(health_of(d, B0)["xid"], 79, "still degraded polls later")
    counts = {}
    for line in d.get("/metrics")[1].splitlines():
        if line.startswith("vgpu_events_total{"):
            counts[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
    t.equal((counts.get("xid"), counts.get("ecc")), (2, 1), "vgpu_events_total{kind=xid} 2, ecc 1")
    t.equal(series(d, "vgpu_gpu_xid_last"), {("0000:03:00.0", None): 0, (B0, None): 79, (B1, None): 0, (B2, None): 0}, "vgpu_gpu_xid_last")
    t.check("event=xid bdf=0000:3b:00.0" in d.logtext(), "log line carries event and bdf fields")

    # the driver unbound (a reset or reload) clears it; rebound, the GPU is ok
    # (unbound as the kernel shows it: no driver link, no DRIVER= in uevent)
    link, uevent = h.path("sys/bus/pci/devices/%s/driver" % B0), h.path("sys/bus/pci/devices/%s/uevent" % B0)
    target, bound = os.readlink(link), open(uevent).read()
    os.unlink(link)
    with open(uevent, "w") as f:
        f.write("".join(line for line in bound.splitlines(True) if not line.startswith("DRIVER=")))
    got = wait_for(lambda: health_of(d, B0)["xid"], None)
    t.equal(got, None, "driver unbound: Xid cleared")
    os.symlink(target, link)
    with open(uevent, "w") as f:
        f.write(bound)
    got = wait_for(lambda: (health_of(d, B0)["state"], health_of(d, B0)["xid"]), ("ok", None))
    t.equal(got, ("ok", None), "driver unbound and bound again: Xid cleared")
    # and the watcher still works afterwards
    xid(h, "00000000:3B:00.0", "xid", 48)
    e = d.wait_event("xid", bdf=B0, since=e["seq"], timeout=5)
    t.check(e is not None and "double bit ECC error" in e["message"], "Xid 48 after the reset", e)
    got = wait_for(lambda: health_of(d, B0)["xid"], 48)
    t.equal(got, 48, "Xid 48 degrades again")
    t.equal([line.split(" ")[:4] for line in xid_hooks()], [["xid", B0, "79", "ok>degraded"], ["xid", B0, "48", "ok>degraded"]],
            "hook: Xid 48 after the reset, from ok again")

    # PCIe link from NVML when sysfs has none: af:00.0 loses its link files, NVML says x8 of x16, gen 4
    for f in ("current_link_speed", "max_link_speed", "current_link_width", "max_link_width"):
        os.unlink(h.path("sys/bus/pci/devices/%s/%s" % (B2, f)))
    for k, v in (("pcie_gen", 4), ("pcie_gen_max", 4), ("pcie_width", 8), ("pcie_width_max", 16)):
        set_nvml(h, 2, k, v)
    got = wait_for(lambda: health_of(d, B2)["link_source"], "nvml")
    t.equal(got, "nvml", "link_source nvml")
    hh = health_of(d, B2)
    t.equal((hh["link_degraded"], hh["reasons"]), (True, ["pcie_link"]), "x8 of x16 from NVML: degraded")
    t.equal((series(d, "vgpu_gpu_pcie_link_width")[(B2, None)], series(d, "vgpu_gpu_pcie_link_width_max")[(B2, None)],
             series(d, "vgpu_gpu_pcie_link_speed")[(B2, None)]), (8, 16, 16), "link metrics from NVML (gen 4: 16 GT/s)")
    t.equal(health_of(d, B1)["link_source"], "sysfs", "5e:00.0 keeps sysfs's link")
finally:
    d.stop()
h.cleanup()

# vgpuctl report writes an nvml.conf the double reads back: the new readings survive the round trip
h = Host("nvidia-mdev")
try:
    out = os.path.join(h.tmp, "report.tar.gz")
    rc, _, err = h.vgpuctl("report", "-o", out)
    t.equal(rc, 0, "vgpuctl report: " + err)
    with tarfile.open(out) as tf:
        member = [m for m in tf.getmembers() if m.name.endswith("/nvml.conf") or m.name == "nvml.conf"]
        conf = tf.extractfile(member[0]).read().decode() if member else ""
    for line in ("utilization_gpu=12", "utilization_memory=5", "memory_reserved=469762048", "clocks_event_reasons=0x4",
                 "pcie_gen=3", "pcie_width_max=16"):
        t.check("gpu.0." + line in conf, "report's nvml.conf has gpu.0." + line, conf[:400])
    t.check("gpu.2.utilization" not in conf and "gpu.2.memory_reserved" not in conf, "unknowns left out", conf)
    with open(h.path("nvml.conf"), "w") as f:
        f.write(conf)
    lst = h.vgpuctl_json("list")
    g = [g for g in lst["gpus"] if g["bdf"] == B0][0]["nvml"]
    t.equal((g["utilization_gpu_percent"], g["utilization_memory_percent"], g["memory_reserved_bytes"], g["clocks_event_reasons"],
             g["pcie_generation"], g["pcie_width_max"]), (12, 5, 469762048, ["sw_power_cap"], 3, 16), "read back through the double")
finally:
    h.cleanup()

# VDI: the encoder and frame-capture load of the GPUs and of the vGPUs running on them
h = Host("nvidia-mdev")
U1, U2 = "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01", "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e02"
for k, v in (("encoder_sessions", 3), ("encoder_fps", 58), ("encoder_latency", 4200),
             ("fbc_sessions", 2), ("fbc_fps", 60), ("fbc_latency", 1500),
             ("vgpu.0.mdev_uuid", U1.upper()), ("vgpu.0.encoder_sessions", 2), ("vgpu.0.encoder_fps", 30),
             ("vgpu.0.encoder_latency", 2500), ("vgpu.0.fbc_sessions", 1), ("vgpu.0.fbc_fps", 60), ("vgpu.0.fbc_latency", 800),
             ("vgpu.0.frame_rate_limit", 60), ("vgpu.1.mdev_uuid", U2), ("vgpu.1.frame_rate_limit", 0),
             # each session: vGPU 1000's two encoder sessions and its capture, and one of the host's own
             ("encoder_session.0", "11,4242,1000,1,1920,1080,30,2500"), ("encoder_session.1", "12,4242,1000,0,1280,720,30,2400"),
             ("encoder_session.2", "13,777,0,2,3840,2160,60,9000"),
             ("fbc_session.0", "21,4242,1000,0,4,1,3840,2160,1920,1080,60,800"), ("fbc_session.1", "22,999,0,1,1,0,1920,1080,1920,1080,60,2200")):
    set_nvml(h, 0, k, v)
set_nvml(h, 1, "encoder_sessions", 0)       # idle encoder: 0 sessions, known; no FBC call answers
d = Daemon(h, "[daemon]\npoll-interval = 100ms\n[metrics]\nlisten = off\n")
try:
    st, body, _ = d.get("/v1/gpus")
    err = validate("api-gpus", body)
    t.check(err is None, "/v1/gpus with VDI readings matches api-gpus.schema.json", err)
    n0 = [g for g in body["gpus"] if g["bdf"] == B0][0]["nvml"]
    n1 = [g for g in body["gpus"] if g["bdf"] == B1][0]["nvml"]
    n2 = [g for g in body["gpus"] if g["bdf"] == B2][0]["nvml"]
    t.equal((n0["encoder"], n0["frame_capture"]),
            ({"sessions": 3, "average_fps": 58, "average_latency_us": 4200}, {"sessions": 2, "average_fps": 60, "average_latency_us": 1500}),
            "3b:00.0: encoder and frame capture")
    t.equal((n1["encoder"], n1["frame_capture"]), ({"sessions": 0, "average_fps": 0, "average_latency_us": 0}, None),
            "5e:00.0: idle encoder known, frame capture unknown (null)")
    t.equal((n2["encoder"], n2["frame_capture"], n2["vgpus"]), (None, None, []), "af:00.0: none of them")
    enc = [{"session_id": 11, "pid": 4242, "vgpu_instance": 1000, "codec": "hevc", "horizontal_resolution": 1920,
            "vertical_resolution": 1080, "average_fps": 30, "average_latency_us": 2500},
           {"session_id": 12, "pid": 4242, "vgpu_instance": 1000, "codec": "h264", "horizontal_resolution": 1280,
            "vertical_resolution": 720, "average_fps": 30, "average_latency_us": 2400},
           {"session_id": 13, "pid": 777, "vgpu_instance": 0, "codec": "av1", "horizontal_resolution": 3840,
            "vertical_resolution": 2160, "average_fps": 60, "average_latency_us": 9000}]
    fbc = [{"session_id": 21, "pid": 4242, "vgpu_instance": 1000, "session_type": "hwenc", "display_ordinal": 0,
            "horizontal_resolution": 1920, "vertical_resolution": 1080, "average_fps": 60, "average_latency_us": 800},
           {"session_id": 22, "pid": 999, "vgpu_instance": 0, "session_type": "tosys", "display_ordinal": 1,
            "horizontal_resolution": 1920, "vertical_resolution": 1080, "average_fps": 60, "average_latency_us": 2200}]
    t.equal((n0["encoder_sessions"], n0["frame_capture_sessions"]), (enc, fbc), "3b:00.0: each encoder and capture session")
    t.equal((n1["encoder_sessions"], n1["frame_capture_sessions"]), ([], None),
            "5e:00.0: no encoder session (known), capture sessions unknown (null)")
    t.equal((n2["encoder_sessions"], n2["frame_capture_sessions"]), (None, None), "af:00.0: no session list")
    t.equal(n0["vgpus"], [
        {"vgpu_instance": 1000, "mdev_uuid": U1, "encoder": {"sessions": 2, "average_fps": 30, "average_latency_us": 2500},
         "frame_capture": {"sessions": 1, "average_fps": 60, "average_latency_us": 800},
         "encoder_sessions": enc[:2], "frame_capture_sessions": fbc[:1], "frame_rate_limit": 60,
         "guest_driver_version": None, "guest_driver_compatibility": "unknown", "guest_driver_compatibility_limits": []},
        {"vgpu_instance": 1001, "mdev_uuid": U2, "encoder": None, "frame_capture": None,
         "encoder_sessions": [], "frame_capture_sessions": [], "frame_rate_limit": 0,
         "guest_driver_version": None, "guest_driver_compatibility": "unknown", "guest_driver_compatibility_limits": []}],
        "3b:00.0's running vGPUs: mdev UUID lower case, stats, their own sessions, FRL 60 and off (0)")
    # `vgpuctl list --json` prints the same lists (one printer): checked against its schema too
    lj = h.vgpuctl_json("list")
    t.check(validate("list", lj) is None, "list --json with sessions matches list.schema.json", validate("list", lj))
    t.equal([g["nvml"]["encoder_sessions"] for g in lj["gpus"] if g["bdf"] == B0], [enc], "list --json: the same encoder sessions")
    t.equal(series(d, "vgpu_gpu_encoder_sessions"), {(B0, None): 3, (B1, None): 0}, "vgpu_gpu_encoder_sessions")
    t.equal(series(d, "vgpu_gpu_encoder_latency_seconds"), {(B0, None): 0.0042, (B1, None): 0}, "encoder latency in seconds")
    t.equal(series(d, "vgpu_gpu_frame_capture_fps"), {(B0, None): 60}, "frame capture fps; unknown left out")
    text = d.get("/metrics")[1]

    def instance_series(name):
        out = {}
        for line in text.splitlines():
            if line.startswith(name + "{"):
                labels = dict(kv.split("=", 1) for kv in line[len(name) + 1:line.rindex("}")].replace('"', "").split(","))
                out[labels["uuid"]] = (labels["parent"], float(line.rsplit(" ", 1)[1]))
        return out
    t.equal(instance_series("vgpu_instance_encoder_fps"), {U1: (B0, 30)}, "vgpu_instance_encoder_fps")
    t.equal(instance_series("vgpu_instance_frame_capture_latency_seconds"), {U1: (B0, 0.0008)}, "vgpu_instance_frame_capture_latency_seconds")
    t.equal(instance_series("vgpu_instance_frame_rate_limit_fps"), {U1: (B0, 60), U2: (B0, 0)}, "vgpu_instance_frame_rate_limit_fps")
    t.promtool(text)
    # a reading that changes between polls is the new one
    set_nvml(h, 0, "encoder_sessions", 5)
    got = wait_for(lambda: series(d, "vgpu_gpu_encoder_sessions").get((B0, None)), 5)
    t.equal(got, 5, "encoder sessions follow NVML between polls")
finally:
    d.stop()
# and a report keeps them: its nvml.conf, served by the double, reads back the same
out = os.path.join(h.tmp, "report.tar.gz")
rc, _, err = h.vgpuctl("report", "-o", out)
t.equal(rc, 0, "vgpuctl report: " + err)
with tarfile.open(out) as tf:
    member = [m for m in tf.getmembers() if m.name.endswith("/nvml.conf") or m.name == "nvml.conf"]
    conf = tf.extractfile(member[0]).read().decode() if member else ""
for line in ("gpu.0.encoder_sessions=5", "gpu.0.fbc_latency=1500", "gpu.0.vgpu.0.mdev_uuid=" + U1, "gpu.0.vgpu.0.encoder_fps=30",
             "gpu.0.vgpu.0.frame_rate_limit=60", "gpu.1.encoder_sessions=0"):
    t.check(line in conf.splitlines(), "report's nvml.conf has " + line, conf[-600:])
t.check("gpu.1.fbc_sessions" not in conf and "gpu.2.encoder" not in conf, "unknown stats left out of the report", conf[-600:])
before = [g["nvml"] for g in h.vgpuctl_json("list")["gpus"]]
with open(h.path("nvml.conf"), "w") as f:
    f.write(conf)
after = [g["nvml"] for g in h.vgpuctl_json("list")["gpus"]]
t.equal([(n or {}).get("vgpus") for n in after], [(n or {}).get("vgpus") for n in before], "vGPUs read back through the report")
t.equal([(n or {}).get("encoder") for n in after], [(n or {}).get("encoder") for n in before], "encoder read back through the report")
t.equal([((n or {}).get("encoder_sessions"), (n or {}).get("frame_capture_sessions")) for n in after],
        [((n or {}).get("encoder_sessions"), (n or {}).get("frame_capture_sessions")) for n in before], "sessions read back through the report")
h.cleanup()
t.done()
