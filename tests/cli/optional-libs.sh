#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# optional-libs.sh — vgpuctl on a host without the libraries libvgpu loads with dlopen() on first
# use (lib/basic/dlopen-util.h): in a private mount namespace /dev/null is bound over the real
# libsystemd.so.0, libkmod.so.2, libsensors.so.5, libvirt.so.0 and libipmimonitoring.so.6, so
# loading them fails as on a host that lacks them. vgpuctl must still start and list (silently
# without libvirt, even where LIBVIRT_DEFAULT_URI asks for it); the doctor's checks that need one
# fall back or skip, naming it; `assign` and `sel` fail naming theirs. libcurl (both flavours,
# where installed) too: `vgpuctl fleet` names it (lib/basic/curl-dl.c, the loader vgpuctl
# shares with the etcd client). libpci, libyaml and zlib are loaded the same way, though the
# packages depend on them: hidden too, `list` still names the GPUs from pci.ids, the doctor's
# config-space check names libpci3, `apply` libyaml-0-2 and `report` zlib1g, and those two fail
# having changed nothing. Needs root for the namespace (skips without).
source "$(dirname "$0")/testlib.sh"
[[ $(id -u) -eq 0 ]] || skip "needs root for a private mount namespace"
command -v unshare >/dev/null && unshare -m true 2>/dev/null || skip "cannot make a mount namespace (unshare -m)"

hide=()
for so in libsystemd.so.0 libkmod.so.2 libsensors.so.5 libvirt.so.0 libipmimonitoring.so.6 \
        libpci.so.3 libyaml-0.so.2 libz.so.1; do
        p=$(ldconfig -p | awk -v so="$so" '$1 == so { print $NF; exit }')
        [[ -n $p ]] || skip "$so is not installed here: nothing to hide"
        hide+=("$(readlink -f "$p")")
done
for so in libcurl.so.4 libcurl-gnutls.so.4; do
        p=$(ldconfig -p | awk -v so="$so" '$1 == so { print $NF; exit }')
        [[ -z $p ]] || hide+=("$(readlink -f "$p")")
done
# the kernel log: a journal directory (so the journal is tried) and kern.log's BIOS message
fixture_copy broken-kvm-bios
mkdir -p "$tmp/host/var/log/journal"
# a BMC device node (a plain file will do: the library is loaded before the device is opened)
mkdir -p "$tmp/host/dev" && : >"$tmp/host/dev/ipmi0"
# a host.yaml that would set a VF's type, the tree it would change (and its state before), and a
# directory for the report that must stay empty
fixture_copy nvidia-sriov-vfio "$tmp/vfio"
printf 'version: 1\ngpus:\n  - bdf: 41:00.6\n    devices: [{type: "1162"}]\n' >"$tmp/v.yaml"
tree_state() { (cd "$1" && find . -printf '%p %y %l\n' | sort && find . -type f -print0 | sort -z | xargs -0 cat) | sha256sum; }
before=$(tree_state "$tmp/vfio")
mkdir "$tmp/reports"

# bash -s: the commands run in the namespace; their outputs land in $tmp
unshare -m --propagation private bash -s "$VGPUCTL" "$tmp" "$FIXTURES" "${hide[@]}" <<'INNER'
vgpuctl=$1 tmp=$2 fixtures=$3
shift 3
for p in "$@"; do mount --bind /dev/null "$p" || exit 99; done
"$vgpuctl" --version >"$tmp/version" 2>&1; echo $? >"$tmp/version.rc"
VGPU_ROOT=$fixtures/nvidia-mdev "$vgpuctl" list --json >"$tmp/list" 2>&1; echo $? >"$tmp/list.rc"
VGPU_ROOT=$fixtures/nvidia-mdev "$vgpuctl" doctor -c driver.kernel_match --json >"$tmp/kmod" 2>&1
VGPU_ROOT=$tmp/host "$vgpuctl" doctor -c kvm.available --json >"$tmp/journal" 2>&1
VGPU_BROKER=$tmp/no-broker.sock "$vgpuctl" fleet hosts >"$tmp/fleet" 2>&1; echo $? >"$tmp/fleet.rc"
VGPU_ROOT=$fixtures/nvidia-mdev LIBVIRT_DEFAULT_URI=test:///default "$vgpuctl" list --json >"$tmp/virt-list" 2>&1
echo $? >"$tmp/virt-list.rc"
VGPU_ROOT=$fixtures/nvidia-mdev "$vgpuctl" assign b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01 --domain vm \
        --connect test:///default >"$tmp/assign" 2>&1
echo $? >"$tmp/assign.rc"
VGPU_ROOT=$tmp/host "$vgpuctl" sel >"$tmp/sel" 2>&1; echo $? >"$tmp/sel.rc"
VGPU_ROOT=$fixtures/broken-sriov-hidden "$vgpuctl" doctor -c sriov.capable --json >"$tmp/pci" 2>&1
VGPU_ROOT=$tmp/vfio "$vgpuctl" apply --direct -f "$tmp/v.yaml" >"$tmp/apply" 2>&1; echo $? >"$tmp/apply.rc"
VGPU_ROOT=$fixtures/nvidia-mdev "$vgpuctl" report --direct -o "$tmp/reports/r.tar.gz" >"$tmp/report" 2>&1
echo $? >"$tmp/report.rc"
exit 0
INNER
[[ $? -eq 0 ]] || bad "could not hide the libraries in the namespace"

[[ $(cat "$tmp/version.rc") == 0 ]] && ok || bad "vgpuctl --version without them: $(cat "$tmp/version")"
[[ $(cat "$tmp/list.rc") == 0 ]] && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/list" && ok ||
        bad "vgpuctl list --json without them: $(head -c 400 "$tmp/list")"
python3 - "$tmp/kmod" "$tmp/journal" <<'PY' && ok || bad "the doctor without libkmod and libsystemd (above)"
import json, sys
kmod = json.load(open(sys.argv[1]))[0]
assert kmod["status"] == "skip", kmod
assert "vermagic unknown: libkmod.so.2 is not installed (Debian: apt install libkmod2" in kmod["summary"], kmod
kvm = json.load(open(sys.argv[2]))[0]
# the journal cannot be read: kern.log still is, and says which library was missing
assert kvm["status"] == "fail" and "disabled by the BIOS" in kvm["summary"], kvm
assert "journal unread: libsystemd.so.0 is not installed (Debian: apt install libsystemd0" in kvm["evidence"], kvm
PY
[[ $(cat "$tmp/fleet.rc") == 1 ]] &&
        grep -q "libcurl.so.4 is not installed (Debian: apt install libcurl4" "$tmp/fleet" && ok ||
        bad "vgpuctl fleet without libcurl: exit $(cat "$tmp/fleet.rc"): $(head -c 400 "$tmp/fleet")"
# lib/assign/virt-dl.c: list does without libvirt, quietly; assign names it
[[ $(cat "$tmp/virt-list.rc") == 0 ]] && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/virt-list" &&
        ok || bad "vgpuctl list without libvirt, LIBVIRT_DEFAULT_URI set: $(head -c 400 "$tmp/virt-list")"
[[ $(cat "$tmp/assign.rc") != 0 ]] && grep -q "libvirt.so.0 is not installed (Debian: apt install libvirt0; " "$tmp/assign" &&
        ok || bad "vgpuctl assign without libvirt: exit $(cat "$tmp/assign.rc"): $(head -c 400 "$tmp/assign")"
# lib/telemetry/ipmi.c: a BMC is there, the library to ask it is not
[[ $(cat "$tmp/sel.rc") != 0 ]] &&
        grep -q "IPMI: libipmimonitoring.so.6 is not installed (Debian: apt install libipmimonitoring6; " "$tmp/sel" &&
        ok || bad "vgpuctl sel without libipmimonitoring: exit $(cat "$tmp/sel.rc"): $(head -c 400 "$tmp/sel")"
# libpci: the names of list's GPUs come from pci.ids alone (above: list ran); its one user there,
# the config-space reads, says which library it lacked
python3 - "$tmp/list" "$tmp/pci" <<'PY' && ok || bad "list's names or the doctor without libpci (above)"
import json, sys
gpus = json.load(open(sys.argv[1]))["gpus"]
assert gpus and all(g["vendor_name"] and g["device_name"] for g in gpus), gpus
assert "TU104GL [Tesla T4]" in [g["device_name"] for g in gpus], gpus
pci = json.load(open(sys.argv[2]))[0]
assert pci["status"] == "skip", pci
assert "config: unreadable: libpci.so.3 is not installed (Debian: apt install libpci3; " in pci["evidence"], pci
PY
[[ $(cat "$tmp/apply.rc") != 0 ]] && grep -q "libyaml-0.so.2 is not installed (Debian: apt install libyaml-0-2; " "$tmp/apply" &&
        ok || bad "vgpuctl apply without libyaml: exit $(cat "$tmp/apply.rc"): $(head -c 400 "$tmp/apply")"
[[ $(tree_state "$tmp/vfio") == "$before" ]] && ok || bad "vgpuctl apply without libyaml changed the host"
[[ $(cat "$tmp/report.rc") != 0 ]] && grep -q "libz.so.1 is not installed (Debian: apt install zlib1g; " "$tmp/report" &&
        ok || bad "vgpuctl report without zlib: exit $(cat "$tmp/report.rc"): $(head -c 400 "$tmp/report")"
[[ -z $(ls -A "$tmp/reports") ]] && ok || bad "vgpuctl report without zlib left $(ls -A "$tmp/reports")"
summary
