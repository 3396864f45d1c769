#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fleet-vgpud-libvirtd: a session placed with a `domain` is attached to that domain by the
host's vgpud, in a real libvirtd (Debian's, QEMU driver, session mode as nobody: the same daemon
as cli/assign-libvirtd.sh, started by cli/libvirtd-session.sh). A 3-member etcd cluster, two
vgpud on copies of fixture hosts (a fake kernel each playing the mdev ABI), one vgpu-broker;
vgpud reaches libvirtd through LIBVIRT_DEFAULT_URI. About 30 s.

Proves, reading the domains back with `virsh dumpxml --inactive`:
- a domain defined but shut off: POST /v1/sessions with `domain` → BOUND, its mdev exists and
  the domain's configuration has <hostdev type='mdev'> with the mdev's UUID; DELETE → the hostdev
  is detached, the mdev removed, the claim, session and alloc gone;
- NVIDIA vendor-VFIO (a second vgpud, SR-IOV: the type set on a VF): BOUND to a VF, which the
  configuration holds as <hostdev type='pci' managed='no'>; DELETE detaches it, clears its type;
- a domain that does not exist: FAILED with libvirt's "no domain named" reason, no mdev left
  (rolled back), the GPU's free instances back; DELETE → capacity back (alloc without it);
- a running domain (TCG, no device): libvirt's QEMU driver refuses to hotplug an mdev the real
  kernel does not have ("requires VFIO support"), so the claim is FAILED with that reason, no
  mdev is left, and the configuration stays without the hostdev (live and config change together);
- a slice with a domain (a VM takes a vGPU): 400 from the broker; such a claim written into etcd
  directly is FAILED by vgpud, never BOUND without its attach;
- the sweep of an orphan (its claim, session and alloc share deleted in etcd while its vgpud
  was stopped): at vgpud's next start an mdev is detached from fleet-vm and from fleet-vm2 (whose
  configuration was given it by hand), then removed; a VF remembered for a claim whose report was
  lost is detached, then its type cleared; with libvirtd stopped the mdev is kept, and the
  sweep's retry (5 s later, the same vgpud) detaches and removes it once libvirtd is back;
- libvirtd stopped, then DELETE of an attached session: the claim stays RELEASING and the mdev is
  kept (the domain's configuration still names it).
Needs VGPU_BROKER, VGPUD, VGPUCTL, FIXTURES, NVML_DOUBLE."""

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

from fleetvgpud import HERE, Checks, EtcdCluster, Fleet, wait

# Not under ASan: its XDR interceptors cannot reach libtirpc, which comes with the dlopen of
# libvirt.so.0, so libvirt's first RPC from vgpud jumps to address 0 (cli/assign-libvirtd.sh says
# more). Our code on this path runs under ASan in cli-assign (libvirt's test driver has no RPC).
if "libasan" in subprocess.run(["ldd", os.environ["VGPUD"]], capture_output=True, text=True).stdout:
    print("SKIP: an ASan build: ASan's XDR interceptors cannot reach libtirpc loaded by dlopen (libvirt's RPC)")
    sys.exit(77)

from fleetsim import Broker, Gateway  # noqa: E402

TTL = 3
PREFIX = "/vgpuctl/v1/lv/"
TYPE = "nvidia-232"        # offered by lvhost's mdev parents
VF_TYPE = "1152"           # offered by vfhost's VFs
T0 = time.monotonic()

tmp = tempfile.mkdtemp(prefix="vgpu-fleet-lv-")
lv = subprocess.run(["bash", os.path.join(HERE, "..", "cli", "libvirtd-session.sh"), tmp],
                    capture_output=True, text=True, timeout=60)
if lv.returncode == 77:
    print(lv.stdout.strip())
    sys.exit(77)
if lv.returncode != 0:
    print("starting libvirtd failed (exit %d): %s %s" % (lv.returncode, lv.stdout, lv.stderr))
    sys.exit(1)
LV = dict(line.split("=", 1) for line in lv.stdout.splitlines() if "=" in line)
URI = LV["URI"]


def stop_libvirtd():
    for name in ("fleet-vm-running", "fleet-vm", "fleet-vm2") if os.path.exists("/proc/%s" % LV["PID"]) else ():
        subprocess.run(["virsh", "-c", URI, "destroy", name], capture_output=True, timeout=30)
        subprocess.run(["virsh", "-c", URI, "undefine", name], capture_output=True, timeout=30)
    try:
        os.kill(int(LV["PID"]), 15)
    except (ProcessLookupError, ValueError):
        pass
    subprocess.run(["rm", "-rf", tmp])


def virsh(*args, check=True):
    p = subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError("virsh %s: %s" % (" ".join(args), p.stderr.strip()))
    return p


def define(name):
    path = os.path.join(tmp, name + ".xml")
    with open(path, "w") as f:
        f.write("<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
                "<devices><emulator>%s</emulator></devices></domain>" % (name, LV["QEMU"]))
    os.chmod(path, 0o644)
    virsh("define", path)


def mdev_hostdevs(name):
    """The UUIDs of the mdev hostdevs in the domain's configuration (virsh dumpxml --inactive)."""
    d = ET.fromstring(virsh("dumpxml", "--inactive", name).stdout)
    return [a.get("uuid") for a in d.findall("./devices/hostdev[@type='mdev']/source/address")]


try:
    define("fleet-vm")
except RuntimeError as e:
    stop_libvirtd()
    print("SKIP: libvirtd's QEMU driver refused a plain domain: %s" % e)
    sys.exit(77)
t = Checks("fleet-vgpud-libvirtd")
c = broker = None
vgpuds = Fleet("lv", ttl=TTL, poll="200ms", port_base=31100, uuid_base=9)
try:
    t.check(mdev_hostdevs("fleet-vm") == [], "fleet-vm is defined, without hostdevs")

    c = EtcdCluster(3)
    gw = Gateway(c.endpoints)
    # lvhost: an mdev parent; vfhost: NVIDIA vendor-VFIO (SR-IOV, the type set on a VF: the
    # domain gets the VF as a PCI hostdev); both reach the session daemon (nobody) by its socket
    for fixture, name in (("nvidia-mdev", "lvhost"), ("nvidia-sriov-vfio", "vfhost")):
        vgpuds.add(c.endpoints, fixture, name, env={"LIBVIRT_DEFAULT_URI": URI})
    host, vfhost = vgpuds.hosts
    broker = Broker(os.environ["VGPU_BROKER"], c.endpoints, tmp, "broker", "--cluster", "lv", "--seed", "1")
    t.check(wait(lambda: len(broker.request("GET", "/v1/gpus")[2] or []) >= 4), "the broker sees both hosts' GPUs",
            broker.request("GET", "/v1/gpus")[2])
    mdevs = host.path("sys/bus/mdev/devices")
    before = set(os.listdir(mdevs)) if os.path.isdir(mdevs) else set()

    def free_instances():
        """{gpu: free instances of TYPE} as the host publishes them"""
        out = {}
        for g in broker.request("GET", "/v1/gpus")[2] or []:
            for x in g.get("types", []):
                if x["name"] == TYPE:
                    out[g["gpu"]] = x["free_instances"]
        return out
    free0 = free_instances()

    def place(key, domain, type=TYPE):
        st, _, s = broker.request("POST", "/v1/sessions", {"user": "alice", "type": type, "domain": domain,
                                                             "idempotency_key": key})
        t.check(st == 201 and s.get("domain") == domain, "placed %s with domain %s (201)" % (key, domain), (st, s))
        return s or {}

    def session(s):
        return broker.request("GET", "/v1/sessions/" + s.get("session", "none"))[2] or {}

    def settled(s):
        return wait(lambda: session(s).get("state") in ("BOUND", "FAILED") and session(s), 15) or session(s)

    def release(s, what):
        st, _, out = broker.request("DELETE", "/v1/sessions/" + s["session"])
        t.check(st == 200, "DELETE %s: 200" % what, (st, out))
        t.check(wait(lambda: broker.request("GET", "/v1/sessions/" + s["session"])[0] == 404, 15),
                "%s: the session is gone" % what, session(s))
        t.check(wait(lambda: s["claim"] not in ((gw.get(PREFIX + "alloc/" + s["gpu"]) or {}).get("claims") or [])),
                "%s: alloc/<gpu> no longer counts its claim (capacity back)" % what, gw.get(PREFIX + "alloc/" + s["gpu"]))

    # ---- a defined, shut-off domain: attached to its configuration, detached on DELETE ----
    s = place("lv-defined", "fleet-vm")
    one = settled(s)
    inst = one.get("instance")
    t.check(one.get("state") == "BOUND", "a claim naming fleet-vm goes BOUND", one)
    t.check(inst and os.path.exists(os.path.join(mdevs, inst)), "its mdev %s exists" % inst, one)
    t.equal(mdev_hostdevs("fleet-vm"), [inst], "fleet-vm's configuration holds the mdev's hostdev")
    release(s, "the attached session")
    t.equal(mdev_hostdevs("fleet-vm"), [], "DELETE detached the hostdev from fleet-vm")
    t.check(not os.path.exists(os.path.join(mdevs, inst or "none")), "DELETE removed the mdev")

    # ---- a vendor-VFIO VF: the domain gets it as a PCI hostdev (managed='no': a rebind would
    # lose its type), detached on DELETE and its type cleared ----
    def pci_hostdevs(name):
        d = ET.fromstring(virsh("dumpxml", "--inactive", name).stdout)
        return ["%04x:%02x:%02x.%x" % tuple(int(a.get(k), 16) for k in ("domain", "bus", "slot", "function")) +
                "/" + h.get("managed") for h in d.findall("./devices/hostdev[@type='pci']")
                for a in h.findall("./source/address")]

    def vf_type(bdf):
        try:
            return open(vfhost.path("sys/bus/pci/devices/%s/nvidia/current_vgpu_type" % bdf)).read().strip()
        except OSError:
            return None
    s = place("lv-vf", "fleet-vm", type=VF_TYPE)
    one = settled(s)
    vf = one.get("instance") or ""
    t.check(one.get("state") == "BOUND" and one.get("host") == "vfhost" and vf.startswith("0000:41:00."),
            "a vendor-VFIO claim naming fleet-vm goes BOUND to a VF", one)
    t.equal(vf_type(vf), VF_TYPE, "the VF %s runs type %s" % (vf, VF_TYPE))
    t.equal(pci_hostdevs("fleet-vm"), [vf + "/no"], "fleet-vm's configuration holds the VF (managed='no')")
    release(s, "the VF session")
    t.equal(pci_hostdevs("fleet-vm"), [], "DELETE detached the VF from fleet-vm")
    t.equal(vf_type(vf), "0", "DELETE cleared the VF's type")

    # ---- a domain that does not exist: FAILED, rolled back ----
    s = place("lv-missing", "no-such-vm")
    one = settled(s)
    t.check(one.get("state") == "FAILED" and "no domain named 'no-such-vm'" in (one.get("error") or ""),
            "a claim naming a missing domain is FAILED with the reason", one)
    t.check(not one.get("instance"), "a FAILED claim names no instance", one)
    t.equal(set(os.listdir(mdevs)), before, "no mdev left behind by the failed attach")
    t.check(wait(lambda: free_instances() == free0), "the GPU's free instances are back", (free_instances(), free0))
    release(s, "the failed session")

    # ---- a running domain: the live hotplug is refused by the QEMU driver, nothing stays ----
    define("fleet-vm-running")
    virsh("start", "fleet-vm-running")
    s = place("lv-running", "fleet-vm-running")
    one = settled(s)
    t.check(one.get("state") == "FAILED" and "fleet-vm-running" in (one.get("error") or "") and
            "VFIO" in (one.get("error") or ""), "a running domain: the hotplug is refused, FAILED with libvirt's reason", one)
    t.equal(set(os.listdir(mdevs)), before, "no mdev left behind by the refused hotplug")
    t.equal(mdev_hostdevs("fleet-vm-running"), [], "the running domain's configuration did not get the hostdev")
    release(s, "the refused session")
    virsh("destroy", "fleet-vm-running", check=False)

    # ---- a slice cannot be attached to a VM: refused by the broker, FAILED by vgpud ----
    for body, what in (({"memory_bytes": 2 ** 30, "domain": "fleet-vm"}, "a slice with a domain"),
                       ({"type": TYPE, "domain": ""}, "an empty domain")):
        st, _, out = broker.request("POST", "/v1/sessions", dict(body, idempotency_key="lv-bad-" + what))
        t.check(st == 400 and (out or {}).get("error", "").startswith("domain:"), "%s: 400 naming domain" % what,
                (st, out))
    # a slice claim with a domain written as an older broker might: vgpud must not go BOUND
    # without the attach it asked for
    lease = gw.range(PREFIX + "hosts/lvhost")[0].get(PREFIX + "hosts/lvhost", (None, 0, 0))[2]
    now = int(time.time() * 1000)
    key = PREFIX + "claims/lvhost/sliceclaim"
    gw.put(key, {"claim": "sliceclaim", "session": "s-sliceclaim", "user": "alice", "tenant": "default",
                 "host": "lvhost", "gpu": "GPU-0000000a-0000-4000-8000-000000000003", "kind": "slice", "type": None,
                 "vram_bytes": 2 ** 30, "slice": {"memory_bytes": 2 ** 30, "share_percent": 10},
                 "domain": "fleet-vm", "state": "PENDING", "host_lease": str(lease), "created_ms": now,
                 "deadline_ms": now + 30000, "instance": None, "error": None})
    one = wait(lambda: (gw.get(key) or {}).get("state") in ("BOUND", "FAILED") and gw.get(key), 10) or gw.get(key)
    t.check(one and one["state"] == "FAILED" and "software slice cannot be attached" in (one.get("error") or ""),
            "vgpud: a slice claim with a domain is FAILED with the reason", one)
    gw.delete(key)

    t.equal(set(os.listdir(mdevs)), before, "no fleet mdev left by the sections above")

    # ---- the sweep: an instance whose claim was deleted while its vgpud was down (no event
    # will tell it) is taken out of every domain that holds it, then removed; with libvirtd
    # unreachable it is kept, and the sweep's retry finishes it once libvirtd is back ----
    from vgpudtest import Daemon  # noqa: E402

    def vgpud_of(h):
        """the host's vgpud: the one started last on it"""
        return [d for d in Daemon.started if d.host is h][-1]

    def logs_of(h):
        return "".join(d.logtext() for d in Daemon.started if d.host is h)   # in the order they ran
    define("fleet-vm2")
    conf_of = {h.root: open(vgpud_of(h).conf).read() for h in (host, vfhost)}

    def orphan(key, h, name, type=TYPE):
        """An instance BOUND to fleet-vm (an mdev: given to fleet-vm2's configuration by hand too,
        as an admin might), whose claim, session and alloc share go while its vgpud is stopped."""
        wait(lambda: any(g.get("host") == name for g in broker.request("GET", "/v1/gpus")[2] or []))
        s = place(key, "fleet-vm", type=type)
        one = settled(s)
        inst = one.get("instance") or "none"
        t.check(one.get("state") == "BOUND" and one.get("host") == name, "%s: BOUND on %s" % (key, name), one)
        if type == TYPE:
            t.equal(mdev_hostdevs("fleet-vm"), [inst], "%s: attached to fleet-vm" % key)
            path = os.path.join(tmp, key + ".xml")
            with open(path, "w") as f:
                f.write("<hostdev mode='subsystem' type='mdev' model='vfio-pci' managed='no'>"
                        "<source><address uuid='%s'/></source></hostdev>" % inst)
            virsh("attach-device", "fleet-vm2", path, "--config")
            t.equal(mdev_hostdevs("fleet-vm2"), [inst], "%s: fleet-vm2's configuration holds it too" % key)
        t.equal(vgpud_of(h).stop(), 0, "%s: %s's vgpud stopped" % (key, name))
        claim = gw.get(PREFIX + "claims/%s/%s" % (name, one["claim"]))
        gw.delete(PREFIX + "claims/%s/%s" % (name, one["claim"]))
        gw.delete(PREFIX + "sessions/" + one["session"])
        alloc = gw.get(PREFIX + "alloc/" + one["gpu"]) or {"claims": []}
        if [c for c in alloc["claims"] if c != one["claim"]]:
            alloc["claims"].remove(one["claim"])
            alloc["vram_bytes"] -= claim["vram_bytes"]
            gw.put(PREFIX + "alloc/" + one["gpu"], alloc)
        else:
            gw.delete(PREFIX + "alloc/" + one["gpu"])
        return one

    def swept(inst, what):
        t.check(wait(lambda: not os.path.exists(os.path.join(mdevs, inst)), 15), "%s: the orphan is removed" % what)
        t.equal(mdev_hostdevs("fleet-vm"), [], "%s: the sweep detached it from fleet-vm first" % what)
        t.equal(mdev_hostdevs("fleet-vm2"), [], "%s: and from fleet-vm2" % what)
        log = logs_of(host)
        order = [log.find("vGPU %s detached from libvirt domain '%s'" % (inst, d)) for d in ("fleet-vm", "fleet-vm2")]
        order.append(log.find("vGPU %s belongs to no claim: removed" % inst))
        t.check(-1 not in order and order[-1] > max(order[:-1]), "%s: detached from both, then removed" % what,
                log[-2000:])

    inst = orphan("lv-orphan", host, "lvhost")["instance"]
    t.check(os.path.exists(os.path.join(mdevs, inst)), "the orphan %s exists" % inst)
    Daemon(host, conf_of[host.root])
    swept(inst, "libvirtd up")

    # a VF whose claim went before its BOUND report was written: vgpud remembers the VF in
    # /run/vgpuctl/fleet-vfs (fleet-vfs.c), as this test writes it for the deleted claim
    one = orphan("lv-orphan-vf", vfhost, "vfhost", type=VF_TYPE)
    vf = one.get("instance") or "none"
    t.equal(pci_hostdevs("fleet-vm"), [vf + "/no"], "the orphan VF %s is in fleet-vm's configuration" % vf)
    os.makedirs(vfhost.path("run/vgpuctl"), exist_ok=True)
    with open(vfhost.path("run/vgpuctl/fleet-vfs"), "w") as f:
        f.write("%s %s\n" % (one["claim"], vf))
    Daemon(vfhost, conf_of[vfhost.root])
    t.check(wait(lambda: vf_type(vf) == "0", 15), "the orphan VF's type is cleared", vf_type(vf))
    t.equal(pci_hostdevs("fleet-vm"), [], "the sweep detached the VF from fleet-vm")
    log = logs_of(vfhost)
    order = (log.find("vGPU %s detached from libvirt domain 'fleet-vm'" % vf),
             log.find("VF %s belongs to no claim (claim %s): cleared" % (vf, one["claim"])))
    t.check(-1 < order[0] < order[1], "the VF: detached, then cleared", log[-2000:])

    inst = orphan("lv-orphan-down", host, "lvhost")["instance"]
    os.kill(int(LV["PID"]), 15)
    t.check(wait(lambda: not os.path.exists("/proc/%s" % LV["PID"])), "libvirtd stopped")
    Daemon(host, conf_of[host.root])
    t.check(wait(lambda: "vGPU %s belongs to no claim, kept" % inst in vgpud_of(host).logtext(), 15),
            "libvirtd down: the sweep keeps the orphan and says why", vgpud_of(host).logtext()[-2000:])
    t.check(os.path.exists(os.path.join(mdevs, inst)), "libvirtd down: the orphan the domains name is kept")
    subprocess.run(["rm", "-f", LV["SOCKET"]])     # the old daemon's, should it be left
    lv = subprocess.run(["bash", os.path.join(HERE, "..", "cli", "libvirtd-session.sh"), tmp],
                        capture_output=True, text=True, timeout=60)
    t.check(lv.returncode == 0, "libvirtd started again", lv.stdout + lv.stderr)
    LV.update(line.split("=", 1) for line in lv.stdout.splitlines() if "=" in line)
    swept(inst, "the sweep's retry, libvirtd back (the same vgpud)")
    t.equal(len([d for d in Daemon.started if d.host is host and d.proc.poll() is None]), 1, "one vgpud on lvhost")

    # ---- libvirtd gone at release: the device is not pulled from under the domain ----
    s = place("lv-down", "fleet-vm")
    one = settled(s)
    inst = one.get("instance") or "none"
    t.check(one.get("state") == "BOUND" and mdev_hostdevs("fleet-vm") == [inst], "BOUND and attached again", one)
    os.kill(int(LV["PID"]), 15)
    t.check(wait(lambda: not os.path.exists("/proc/%s" % LV["PID"])), "libvirtd stopped")
    st, _, out = broker.request("DELETE", "/v1/sessions/" + s["session"])
    t.check(st == 200 and (out or {}).get("state") == "RELEASING", "DELETE with libvirtd down: RELEASING", (st, out))
    time.sleep(2)
    t.equal(session(s).get("state"), "RELEASING", "the claim stays RELEASING while the detach cannot be made")
    t.check(os.path.exists(os.path.join(mdevs, inst)), "the mdev the domain still names is kept")
    t.check(time.monotonic() - T0 < 60, "bounded: %.1f s" % (time.monotonic() - T0))
finally:
    for d in vgpuds.daemons if t.failed else ():
        print(d.logtext()[-4000:])
    try:
        vgpuds.finish(t, c, broker)
    finally:
        stop_libvirtd()
