#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-snmp: vgpud as an AgentX subagent of a real snmpd, walked with the real snmpwalk, its
notifications received by a real snmptrapd (Debian's snmpd, snmp, snmptrapd), and VGPU-MIB
checked by smilint (smitools) and net-snmp's own parser.

Proves: data/VGPU-MIB.txt has no smilint error at level 6 and net-snmp's parser reads it; with
[snmp] enable = yes vgpud registers under the master's AgentX socket (a temp dir; the master
listens on loopback only, a high port, its own configuration with -C -c); the GPU, instance
and slice tables walked through the master say what GET /v1/gpus and /v1/instances say, and
names resolve through the MIB; a GET of a row that is not there is noSuchInstance; a thermal
warning and a critical crossing arrive at snmptrapd as vgpuThermalWarning/Critical with the
BDF, the temperature and the message; the API keeps answering while snmpd is stopped, and the
subagent registers again when it comes back; a critical Xid (not a harmless one) sends
vgpuXidCritical with its number. (BMC notifications need a real /dev/ipmi0: the VM suite.) Skips (77) where the tools or net-snmp are missing."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

from vgpudtest import VGPUD, Checks, Daemon, Host, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
MIBDIRS = "%s:%s" % (os.path.join(HERE, "mibs"), os.path.join(HERE, "..", "..", "data"))
MIB = "1.3.6.1.3.9835"

for tool in ("snmpd", "snmptrapd", "snmpwalk", "snmpget", "smilint", "snmptranslate"):
    if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
        print("skip: %s not installed (scripts/install-deps.sh --test)" % tool)
        sys.exit(77)

t = Checks("daemon-snmp")

# the MIB, by the standard tools
env = dict(os.environ, SMIPATH=os.path.join(HERE, "mibs"))
p = subprocess.run(["smilint", "-l", "6", os.path.join(HERE, "..", "..", "data", "VGPU-MIB.txt")], env=env,
                   capture_output=True, text=True)
t.check(p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), "smilint -l 6 VGPU-MIB: clean", p.stdout + p.stderr)
p = subprocess.run(["snmptranslate", "-M", MIBDIRS, "-m", "VGPU-MIB", "-Tp", "-IR", "vgpuMIB"], capture_output=True, text=True)
t.check(p.returncode == 0 and "vgpuGpuTemperature(4)" in p.stdout and "vgpuSliceOomCount(8)" in p.stdout and not p.stderr.strip(),
        "snmptranslate -Tp reads VGPU-MIB", p.stdout[-500:] + p.stderr)

h = Host("nvidia-mdev")
p = subprocess.run([VGPUD, "--check-config", "--config", "/dev/stdin"], input="[snmp]\nenable = yes\n", capture_output=True, text=True,
                   env=h.env)
if "without net-snmp" in p.stderr:
    print("skip: vgpud built without net-snmp (libsnmp-dev)")
    h.cleanup()
    sys.exit(77)

snmp_dir = os.path.join(h.tmp, "snmp")
os.makedirs(snmp_dir)
os.makedirs(h.path("/var/agentx"))
agentx = h.path("/var/agentx/master")          # vgpud reads [snmp] agentx-socket under VGPU_ROOT
port, trap_port = free_port(), free_port()
while port < 20000 or trap_port < 20000 or port == trap_port:
    port, trap_port = free_port(), free_port()
# net-snmp keeps its state in PERSISTENT_DIR/snmpd.conf: not where our snmpd.conf is
snmp_env = dict(os.environ, SNMP_PERSISTENT_DIR=os.path.join(snmp_dir, "state"), MIBS="", MIBDIRS=MIBDIRS)

with open(os.path.join(snmp_dir, "snmpd.conf"), "w") as f:
    f.write("""master agentx
agentXSocket unix:%s
agentXPerms 0600 0700
agentAddress udp:127.0.0.1:%d
rocommunity public 127.0.0.1
trap2sink 127.0.0.1:%d public
""" % (agentx, port, trap_port))
with open(os.path.join(snmp_dir, "snmptrapd.conf"), "w") as f:
    f.write("authCommunity log public\ndoNotRetainNotificationLogs yes\n")
trap_log = os.path.join(snmp_dir, "traps.log")


def start_snmpd():
    if os.path.exists(agentx):
        os.unlink(agentx)       # a stopped snmpd leaves its socket: wait for the new one
    proc = subprocess.Popen(["/usr/sbin/snmpd", "-f", "-C", "-c", os.path.join(snmp_dir, "snmpd.conf"), "-Lf",
                             os.path.join(snmp_dir, "snmpd.log")], env=snmp_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not os.path.exists(agentx):
        time.sleep(0.05)
    return proc


def walk(oid=MIB, mib=False):
    args = ["snmpwalk", "-v2c", "-c", "public", "-t", "2", "-r", "1"]
    args += ["-M", MIBDIRS, "-m", "VGPU-MIB"] if mib else ["-m", "", "-On"]
    p = subprocess.run(args + ["127.0.0.1:%d" % port, oid], capture_output=True, text=True, env=snmp_env)
    values = {}
    for line in p.stdout.splitlines():
        m = re.match(r"(\S+) = (?:(\w+): ?)?(.*)$", line)
        if m:
            v = m.group(3)
            if m.group(2) in ("STRING", None):     # "" is printed without a type
                values[m.group(1).lstrip(".")] = v[1:-1] if v.startswith('"') else v
            else:
                values[m.group(1).lstrip(".")] = v if mib else int(v)
    return values, p.stdout + p.stderr


def wait_walk(timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        values, _ = walk()
        if "%s.1.1.1.2.1" % MIB in values:    # not "No Such Object available on this agent"
            return values
        time.sleep(0.2)
    return {}


snmpd = start_snmpd()
trapd = subprocess.Popen(["/usr/sbin/snmptrapd", "-f", "-C", "-c", os.path.join(snmp_dir, "snmptrapd.conf"), "-On", "-Lf", trap_log,
                          "udp:127.0.0.1:%d" % trap_port], env=snmp_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
d = None
try:
    t.check(os.path.exists(agentx), "snmpd made its AgentX socket", open(os.path.join(snmp_dir, "snmpd.log")).read()[-800:])
    d = Daemon(h, """[daemon]
poll-interval = 100ms
[metrics]
listen = off
[thermal]
warn = 75
critical = 85
[snmp]
enable = yes
agentx-socket = /var/agentx/master
""")
    values = wait_walk()
    t.check(values, "the subagent's tables appear in the master's walk", d.logtext()[-1500:])

    gpus = d.get("/v1/gpus")[1]["gpus"]
    col = lambda table, c, i: values.get("%s.1.%d.1.%d.%d" % (MIB, table, c, i))
    thermal_names = {"unknown": 0, "ok": 1, "warn": 2, "critical": 3}
    health_names = {"unknown": 0, "ok": 1, "degraded": 2}
    for i, g in enumerate(gpus, 1):
        hl, nv = g["health"], g["nvml"]
        model = nv["name"] if nv else "%s:%s" % (g["vendor_id"][2:], g["device_id"][2:])
        want = [g["bdf"], model, hl["temperature_c"], thermal_names[hl["thermal"]],
                nv and nv["memory_total_bytes"] // 2**20, nv and nv["memory_used_bytes"] // 2**20,
                nv and nv["utilization_gpu_percent"], health_names[hl["state"]]]
        got = [col(1, c, i) for c in range(2, 10)]
        t.equal(got, want, "vgpuGpuTable row %d is GET /v1/gpus' %s" % (i, g["bdf"]))
    t.equal(col(1, 2, len(gpus) + 1), None, "no GPU row past the last")
    t.check(any(g["nvml"] for g in gpus) and any(not g["nvml"] for g in gpus), "the fixture has GPUs with and without NVML")

    instances = d.get("/v1/instances")[1]["instances"]
    got = [[col(2, c, i) for c in range(2, 6)] for i in range(1, len(instances) + 1)]
    t.equal(got, [[x["uuid"], x["parent"], x["type"], x["domain"] or ""] for x in instances], "vgpuInstanceTable is GET /v1/instances")
    t.check(len(instances) >= 2, "the fixture has instances", instances)
    t.equal([k for k in values if k.startswith(MIB + ".1.3.")], [], "no slices, no slice rows")

    named, out = walk("VGPU-MIB::vgpuGpuTable", mib=True)
    t.equal(named.get("VGPU-MIB::vgpuGpuBdf.2"), gpus[1]["bdf"], "snmpwalk through the MIB names the columns")
    t.check(named.get("VGPU-MIB::vgpuGpuHealth.2") == "ok(1)", "... and the enumerations", out[-600:])

    p = subprocess.run(["snmpget", "-v2c", "-c", "public", "-m", "", "-On", "127.0.0.1:%d" % port, "%s.1.1.1.2.99" % MIB],
                       capture_output=True, text=True, env=snmp_env)
    t.check("No Such Instance" in p.stdout, "GET of a row that is not there: noSuchInstance", p.stdout + p.stderr)

    # thermal events: a warning, then critical, each a notification through the master
    bdf = gpus[1]["bdf"]
    h.set_nvml(0, "temperature", 76)
    t.check(d.wait_event("thermal_warn", bdf=bdf), "76 C: thermal_warn")
    h.set_nvml(0, "temperature", 90)
    t.check(d.wait_event("thermal_critical", bdf=bdf), "90 C: thermal_critical")

    def traps():
        try:
            return open(trap_log).read()
        except OSError:
            return ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "%s.0.2" % MIB not in traps():
        time.sleep(0.1)
    text = traps()
    t.check(re.search(r"OID: \.%s\.0\.1\b" % re.escape(MIB), text), "snmptrapd got vgpuThermalWarning", text[-1500:])
    t.check(re.search(r"OID: \.%s\.0\.2\b" % re.escape(MIB), text), "snmptrapd got vgpuThermalCritical", text[-1500:])
    t.check(re.search(r"\.%s\.1\.4\.1\.0 = STRING: \"%s\"" % (re.escape(MIB), bdf), text), "the notification names the GPU", text[-1500:])
    t.check(re.search(r"\.%s\.1\.4\.2\.0 = INTEGER: 76\b" % re.escape(MIB), text), "... the temperature of the warning", text[-1500:])
    t.check(re.search(r"\.%s\.1\.4\.2\.0 = INTEGER: 90\b" % re.escape(MIB), text), "... and of the critical crossing", text[-1500:])
    t.check(re.search(r"\.%s\.1\.4\.4\.0 = STRING: \".*critical threshold" % re.escape(MIB), text), "... with the message", text[-1500:])
    time.sleep(0.5)
    t.equal(len(re.findall(r"OID: \.%s\.0\.[12]\b" % re.escape(MIB), traps())), 2, "one notification per crossing, not per poll")

    values, _ = walk()
    t.equal((col(1, 4, 2), col(1, 5, 2), col(1, 9, 2)), (90, 3, 2), "the walk shows 90 C, critical, degraded")

    # Xids (the NVML double's event file): a non-critical one sends nothing, a critical one
    # vgpuXidCritical with its number
    B5E = gpus[2]["bdf"]
    with open(h.path("nvml-events"), "a") as f:
        f.write("00000000:5E:00.0 xid 13\n00000000:5E:00.0 xid 79\n")
    t.check(d.wait_event("xid", bdf=B5E, timeout=5), "Xids read")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "OID: .%s.0.3" % MIB not in traps():
        time.sleep(0.1)
    text = traps()
    t.equal(len(re.findall(r"OID: \.%s\.0\.3\b" % re.escape(MIB), text)), 1, "one vgpuXidCritical, for Xid 79 only")
    t.check(re.search(r"\.%s\.1\.4\.3\.0 = Gauge32: 79\b" % re.escape(MIB), text), "... with vgpuEventXid 79", text[-1500:])
    t.check(re.search(r"\.%s\.1\.4\.1\.0 = STRING: \"%s\"" % (re.escape(MIB), B5E), text), "... and the GPU", text[-1500:])

    # the master goes away: vgpud does not block on it, and registers again when it is back
    snmpd.send_signal(signal.SIGTERM)
    snmpd.wait(10)
    start = time.monotonic()
    t.equal(d.get("/v1/gpus")[0], 200, "the API answers while snmpd is gone")
    t.check(time.monotonic() - start < 2, "... at once")
    time.sleep(1)
    snmpd = start_snmpd()
    values = wait_walk(timeout=20)
    t.check(col(1, 2, 2) == bdf, "after snmpd restarts the subagent registers again", open(os.path.join(snmp_dir, "snmpd.log")).read() + "\n".join(l for l in d.logtext().splitlines() if "debug: poll" not in l)[-2000:])
finally:
    for proc in (snmpd, trapd):
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    if d:
        d.stop()
    h.cleanup()
t.done()
