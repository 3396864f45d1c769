#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# diagnostics.sh — the diagnostic reads from the outside, on fixture hosts: `vgpuctl sel`
# where there is no BMC (exit 1 and a message that says why, table or --json; the SEL itself
# is read from QEMU's emulated BMC in tests/vm/scenarios/45-ipmi.sh); `vgpuctl diagnose` on
# libvirt's QEMU logs (tests/fixtures/qemu-logs: one fault each), table and --json.
# Needs VGPUCTL, FIXTURES and NVML_DOUBLE (set by tests/meson.build).
set -uo pipefail

failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
        echo "FAIL: $*" >&2
        failures=$((failures + 1))
}
# run HOST ARGS...: vgpuctl on a fixture host; stdout, stderr and rc land in $tmp
run() {
        local host=$1
        shift
        VGPU_ROOT="$FIXTURES/$host" LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
}
expect_rc() {
        [[ $rc == "$1" ]] || fail "$2: exit $rc, expected $1 (stderr: $(head -c 300 "$tmp/err"))"
}
expect_err() {
        grep -qF -- "$1" "$tmp/err" || fail "$2: stderr lacks '$1': $(head -c 300 "$tmp/err")"
}

# --- sel: no BMC (no dev/ipmi0 in the fixture) ---
for json in "" --json; do
        run nvidia-mdev sel $json
        expect_rc 1 "sel $json without a BMC"
        expect_err "sel: no BMC to ask: $FIXTURES/nvidia-mdev/dev/ipmi0 does not exist" "sel $json without a BMC"
        expect_err "modprobe ipmi_devintf" "sel $json without a BMC: the remedy"
        [[ -s $tmp/out ]] && fail "sel $json without a BMC: stdout not empty: $(head -c 200 "$tmp/out")"
done
run nvidia-mdev sel extra
expect_rc 2 "sel takes no argument"

# --- diagnose: a host tree with the QEMU logs where libvirt writes them ---
root=$tmp/host
mkdir -p "$root/var/log/libvirt/qemu"
cp "$FIXTURES/../qemu-logs/"*.log "$root/var/log/libvirt/qemu/"
mdev=4b1e6c1a-2f3d-4c5e-8a7b-9c0d1e2f3a4b
# diag DOMAIN: --json into $tmp/json, then the table into $tmp/out
diag() {
        VGPU_ROOT=$root "$VGPUCTL" diagnose "$1" --json >"$tmp/json" 2>"$tmp/err"
        jrc=$?
        VGPU_ROOT=$root "$VGPUCTL" diagnose "$1" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        [[ $jrc == "$rc" ]] || fail "diagnose $1: --json exits $jrc, the table $rc"
}
# jq-free: the findings as "severity kind check device group count" lines
findings() {
        python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for f in d["findings"]:
    print(f["severity"], f["kind"], f["check"], f["device"], f["iommu_group"], f["count"])' "$tmp/json"
}
# expect DOMAIN RC "FINDING LINES" REMEDY-WORDS
expect() {
        diag "$1"
        expect_rc "$2" "diagnose $1"
        local got
        got=$(findings)
        [[ $got == "$3" ]] || fail "diagnose $1: findings '$got', expected '$3'"
        grep -qF -- "$4" "$tmp/json" || fail "diagnose $1: no remedy '$4' in --json"
        grep -qF -- "remedy: " "$tmp/out" && grep -qF -- "$4" "$tmp/out" || fail "diagnose $1: no remedy '$4' in the table"
}
# the last start only: the file's first start failed with "busy", the last with "not viable"
expect vdi-notviable 1 "error vfio.group_not_viable iommu.group_viable 0000:3b:00.4 45 1" \
        "/sys/kernel/iommu_groups/45/devices to vfio-pci"
grep -q '"start_line":36' "$tmp/json" || fail "diagnose vdi-notviable: the last start is the header on line 36: $(head -c 300 "$tmp/json")"
grep -qF '"started":"2026-12-05 09:14:02.118+0000"' "$tmp/json" || fail "diagnose vdi-notviable: started"
grep -qF '"shutdown_reason":"failed"' "$tmp/json" || fail "diagnose vdi-notviable: shutdown_reason"
grep -qF "log line 69: qemu-system-x86_64: " "$tmp/out" || fail "diagnose vdi-notviable: the table names the log line: $(cat "$tmp/out")"
expect vdi-mgr 1 "error nvidia.vgpu_mgr_refused nvidia.vgpu_mgr $mdev 112 1" "systemctl restart nvidia-vgpu-mgr"
expect vdi-nomdev 1 "error mdev.missing mdev.types $mdev None 1" "vgpuctl start $mdev"
# the hint QEMU prints after it ("... not already in use") is not a second finding
expect vdi-busy 1 "error vfio.device_busy None $mdev 112 1" "in use by another VM"
# QEMU repeats the failed DMA map per region: one finding, counted
expect vdi-memlock 1 "error vfio.memlock None 0000:3b:00.4 45 2" "locked-memory limit"
grep -qF "(and 1 more like it)" "$tmp/out" || fail "diagnose vdi-memlock: the repeat is counted in the table"
expect vdi-nodev 1 "error vfio.group_node_missing iommu.enabled 0000:3b:00.4 45 1" "/dev/vfio/45 does not exist"
# a warning alone: exit 0; still running
expect vdi-bar 0 "warn vfio.bar_mmap bar.above4g 0000:3b:00.4 None 1" "Above 4G decoding"
grep -qF '"shutdown_reason":null' "$tmp/json" || fail "diagnose vdi-bar: running: shutdown_reason null"
grep -qF "still running" "$tmp/out" || fail "diagnose vdi-bar: the table says it runs"
diag vdi-clean
expect_rc 0 "diagnose vdi-clean"
[[ $(findings) == "" ]] || fail "diagnose vdi-clean: findings $(findings)"
grep -qF "no VFIO or mdev errors in its last start" "$tmp/out" || fail "diagnose vdi-clean: says nothing was found"
grep -qF "shut down: shutdown" "$tmp/out" || fail "diagnose vdi-clean: shut down: shutdown"
# no such domain; a name that is a path
diag vdi-nosuch
expect_rc 1 "diagnose of a domain without a log"
expect_err "$root/var/log/libvirt/qemu/vdi-nosuch.log: cannot read the domain's QEMU log" "diagnose vdi-nosuch"
[[ -s $tmp/out ]] && fail "diagnose vdi-nosuch: stdout not empty"
diag ../../../etc/passwd
expect_rc 1 "diagnose of a path"
expect_err "is not a domain name" "diagnose ../../../etc/passwd"
VGPU_ROOT=$root "$VGPUCTL" diagnose >/dev/null 2>&1
[[ $? == 2 ]] || fail "diagnose without a domain is a usage error"

if ((failures)); then
        echo "diagnostics: $failures failure(s)" >&2
        exit 1
fi
echo "diagnostics: ok"
