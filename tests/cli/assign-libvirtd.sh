#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# assign-libvirtd.sh — `vgpuctl assign/detach --config` against a real libvirtd (Debian's
# libvirt-daemon with its QEMU driver), not the in-process test driver of assign.sh: a domain
# defined in libvirtd's QEMU driver (qemu-system-x86_64, shut off: nothing runs) gets an mdev and
# a plain VF of fixture hosts, the result is read back with `virsh dumpxml --inactive` and checked
# with virt-xml-validate, assigning again changes nothing, detach removes each, detaching again
# fails. libvirtd runs in its session mode as an unprivileged user (nobody when we are root),
# with its own directories under $tmp (cli/libvirtd-session.sh, shared with the fleet's libvirt
# test): the host's system libvirtd is never touched. Exit 77 (skip) says exactly what is missing.
# Needs VGPUCTL and FIXTURES (set by tests/meson.build).
source "$(dirname "$0")/testlib.sh"

source "$(dirname "$0")/libvirtd-session.sh"
command -v virt-xml-validate >/dev/null || skip "virt-xml-validate not installed (Debian: libvirt-clients)"
daemon_pid=
at_exit '[[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null'
libvirtd_session_start "$tmp" || skip "$LIBVIRTD_SKIP"
daemon_pid=$LIBVIRTD_PID
qemu=$LIBVIRTD_QEMU
as=("${libvirtd_as[@]}")
env_user=("${libvirtd_env[@]}")
U() { "${as[@]}" "${env_user[@]}" "$@"; }
# the daemon's user runs vgpuctl too: it must reach the binary and the fixtures
for f in "$VGPUCTL" "$FIXTURES/nvidia-mdev"; do
        U test -r "$f" || skip "$f is not readable by $(U id -un), whom the session libvirtd runs as"
done
cp -a "$FIXTURES/nvidia-mdev" "$tmp/mdev-host"
cp -a "$FIXTURES/intel-xe-sriov" "$tmp/vf-host"

cat >"$tmp/dom.xml" <<EOF
<domain type='qemu'>
  <name>vgpuctl-assign</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>$qemu</emulator></devices>
</domain>
EOF
chmod 644 "$tmp/dom.xml"
U virsh define "$tmp/dom.xml" >"$tmp/define.log" 2>&1 ||
        skip "libvirtd's QEMU driver refused a plain domain: $(tr '\n' ' ' <"$tmp/define.log")"
[[ $(U virsh list --all --name | grep -c vgpuctl-assign) == 1 ]] && ok || bad "the domain is not defined"

# Not under ASan: its interceptors of the XDR calls (xdrmem_create, ...) find the real functions
# once, at start, and libvirt's libtirpc only comes later with dlopen("libvirt.so.0"), so libvirt's
# first RPC jumps to address 0 inside virNetMessageEncodeHeader (seen here: SEGV, pc 0). Our code
# on this path runs under ASan in cli-assign (libvirt's test driver has no RPC).
[[ $(ldd "$VGPUCTL") == *libasan* ]] &&
        skip "an ASan build: ASan's XDR interceptors cannot reach libtirpc loaded by dlopen (libvirt's RPC)"

# V HOST ARGS...: vgpuctl on a copy of a fixture, as the libvirtd's user; out/err/rc in $tmp
V() {
        local host=$1; shift
        U env VGPU_ROOT="$tmp/$host" "$VGPUCTL" "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
}
dump() { U virsh dumpxml --inactive vgpuctl-assign >"$tmp/dom-now.xml" 2>&1; }
validate() {
        dump
        virt-xml-validate "$tmp/dom-now.xml" domain >"$tmp/validate.log" 2>&1 && ok ||
                bad "$1: virt-xml-validate: $(tr '\n' ' ' <"$tmp/validate.log")"
}
# hostdev_count XPATH-LIKE: how many <hostdev> of the inactive XML match (python's ElementTree)
hostdevs() {
        dump
        python3 - "$tmp/dom-now.xml" "$1" <<'EOF'
import sys, xml.etree.ElementTree as ET
d = ET.parse(sys.argv[1]).getroot()
print(len(d.findall("./devices/hostdev" + sys.argv[2])))
EOF
}

mdev=b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01
V mdev-host assign "$mdev" --domain vgpuctl-assign --config
expect 0 "assign an mdev (--config)"
grep -q "attached $mdev to domain vgpuctl-assign" "$tmp/out" && ok || bad "assign output: $(cat "$tmp/out")"
[[ $(hostdevs "[@type='mdev'][@model='vfio-pci'][@managed='no']/source/address[@uuid='$mdev']") == 1 ]] && ok ||
        bad "dumpxml has no <hostdev type='mdev'> for $mdev: $(grep -A4 hostdev "$tmp/dom-now.xml")"
validate "with the mdev"
V mdev-host assign "$mdev" --domain vgpuctl-assign --config
expect 0 "assign the mdev again"
grep -q "nothing to do" "$tmp/out" && ok || bad "assign again: $(cat "$tmp/out")"
[[ $(hostdevs "[@type='mdev']") == 1 ]] && ok || bad "assign again added a second hostdev"

vf=0000:03:00.1
V vf-host assign "$vf" --domain vgpuctl-assign --config
expect 0 "assign a plain VF (--config)"
[[ $(hostdevs "[@type='pci'][@managed='yes']/source/address[@bus='0x03'][@slot='0x00'][@function='0x1']") == 1 ]] && ok ||
        bad "dumpxml has no <hostdev type='pci'> for $vf: $(grep -A4 hostdev "$tmp/dom-now.xml")"
validate "with the mdev and the VF"

V mdev-host detach "$mdev" --domain vgpuctl-assign --config
expect 0 "detach the mdev"
[[ $(hostdevs "[@type='mdev']") == 0 ]] && ok || bad "the mdev is still in the configuration"
V mdev-host detach "$mdev" --domain vgpuctl-assign --config
expect 1 "detach the mdev again"
V vf-host detach "$vf" --domain vgpuctl-assign --config
expect 0 "detach the VF"
[[ $(hostdevs "") == 0 ]] && ok || bad "hostdevs left: $(grep -A4 hostdev "$tmp/dom-now.xml")"
validate "after detaching"
U virsh undefine vgpuctl-assign >/dev/null 2>&1

summary
