#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# diagnostics.sh — the diagnostic reads from the outside, on fixture hosts: `vgpuctl sel`
# where there is no BMC (exit 1 and a message that says why, table or --json; the SEL itself
# is read from QEMU's emulated BMC in tests/vm/scenarios/45-ipmi.sh); `vgpuctl diagnose` on
# libvirt's QEMU logs (tests/fixtures/qemu-logs: one fault each), table and --json; and what
# `vgpuctl report` adds for them (unit journals and states, kernel messages, QEMU logs of the
# domains holding vGPUs, versions), the unpacked report still a host tree vgpuctl reads.
# Needs VGPUCTL, FIXTURES and NVML_DOUBLE (set by tests/meson.build).
source "$(dirname "$0")/testlib.sh"

# run HOST ARGS...: vgpuctl on a fixture host; stdout, stderr and rc land in $tmp
run() {
        local host=$1
        shift
        VGPU_ROOT="$FIXTURES/$host" LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
}

# --- sel: no BMC (no dev/ipmi0 in the fixture) ---
for json in "" --json; do
        run nvidia-mdev sel $json
        expect 1 "sel $json without a BMC"
        has err "sel: no BMC to ask: $FIXTURES/nvidia-mdev/dev/ipmi0 does not exist" "sel $json without a BMC"
        has err "modprobe ipmi_devintf" "sel $json without a BMC: the remedy"
        [[ -s $tmp/out ]] && bad "sel $json without a BMC: stdout not empty: $(head -c 200 "$tmp/out")" || ok
done
run nvidia-mdev sel extra
expect 2 "sel takes no argument"

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
        [[ $jrc == "$rc" ]] && ok || bad "diagnose $1: --json exits $jrc, the table $rc"
}
# jq-free: the findings as "severity kind check device group count" lines
findings() {
        python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for f in d["findings"]:
    print(f["severity"], f["kind"], f["check"], f["device"], f["iommu_group"], f["count"])' "$tmp/json"
}
# expect_diagnose DOMAIN RC "FINDING LINES" REMEDY-WORDS
expect_diagnose() {
        diag "$1"
        expect "$2" "diagnose $1"
        local got
        got=$(findings)
        [[ $got == "$3" ]] && ok || bad "diagnose $1: findings '$got', expected '$3'"
        grep -qF -- "$4" "$tmp/json" && ok || bad "diagnose $1: no remedy '$4' in --json"
        grep -qF -- "remedy: " "$tmp/out" && grep -qF -- "$4" "$tmp/out" && ok || bad "diagnose $1: no remedy '$4' in the table"
}
# the last start only: the file's first start failed with "busy", the last with "not viable"
expect_diagnose vdi-notviable 1 "error vfio.group_not_viable iommu.group_viable 0000:3b:00.4 45 1" \
        "/sys/kernel/iommu_groups/45/devices to vfio-pci"
grep -q '"start_line":36' "$tmp/json" && ok || bad "diagnose vdi-notviable: the last start is the header on line 36: $(head -c 300 "$tmp/json")"
grep -qF '"started":"2026-12-05 09:14:02.118+0000"' "$tmp/json" && ok || bad "diagnose vdi-notviable: started"
grep -qF '"shutdown_reason":"failed"' "$tmp/json" && ok || bad "diagnose vdi-notviable: shutdown_reason"
grep -qF "log line 69: qemu-system-x86_64: " "$tmp/out" && ok || bad "diagnose vdi-notviable: the table names the log line: $(cat "$tmp/out")"
expect_diagnose vdi-mgr 1 "error nvidia.vgpu_mgr_refused nvidia.vgpu_mgr $mdev 112 1" "systemctl restart nvidia-vgpu-mgr"
expect_diagnose vdi-nomdev 1 "error mdev.missing mdev.types $mdev None 1" "vgpuctl start $mdev"
# the hint QEMU prints after it ("... not already in use") is not a second finding
expect_diagnose vdi-busy 1 "error vfio.device_busy None $mdev 112 1" "in use by another VM"
# QEMU repeats the failed DMA map per region: one finding, counted
expect_diagnose vdi-memlock 1 "error vfio.memlock None 0000:3b:00.4 45 2" "locked-memory limit"
grep -qF "(and 1 more like it)" "$tmp/out" && ok || bad "diagnose vdi-memlock: the repeat is counted in the table"
expect_diagnose vdi-nodev 1 "error vfio.group_node_missing iommu.enabled 0000:3b:00.4 45 1" "/dev/vfio/45 does not exist"
# a warning alone: exit 0; still running
expect_diagnose vdi-bar 0 "warn vfio.bar_mmap bar.above4g 0000:3b:00.4 None 1" "Above 4G decoding"
grep -qF '"shutdown_reason":null' "$tmp/json" && ok || bad "diagnose vdi-bar: running: shutdown_reason null"
grep -qF "still running" "$tmp/out" && ok || bad "diagnose vdi-bar: the table says it runs"
diag vdi-clean
expect 0 "diagnose vdi-clean"
[[ $(findings) == "" ]] && ok || bad "diagnose vdi-clean: findings $(findings)"
grep -qF "no VFIO or mdev errors in its last start" "$tmp/out" && ok || bad "diagnose vdi-clean: says nothing was found"
grep -qF "shut down: shutdown" "$tmp/out" && ok || bad "diagnose vdi-clean: shut down: shutdown"
# no such domain; a name that is a path
diag vdi-nosuch
expect 1 "diagnose of a domain without a log"
has err "$root/var/log/libvirt/qemu/vdi-nosuch.log: cannot read the domain's QEMU log" "diagnose vdi-nosuch"
[[ -s $tmp/out ]] && bad "diagnose vdi-nosuch: stdout not empty" || ok
diag ../../../etc/passwd
expect 1 "diagnose of a path"
has err "is not a domain name" "diagnose ../../../etc/passwd"
VGPU_ROOT=$root "$VGPUCTL" diagnose >/dev/null 2>&1
[[ $? == 2 ]] && ok || bad "diagnose without a domain is a usage error"

# --- report: the diagnostic parts, and the unpacked tree still reads as the host ---
# unpack HOST-ROOT: report of that tree, unpacked into $tmp/r
unpack() {
        rm -rf "$tmp/r" "$tmp/r.tgz" && mkdir "$tmp/r"
        VGPU_ROOT=$1 LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" report -o "$tmp/r.tgz" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        expect 0 "report of $1"
        tar -xzf "$tmp/r.tgz" -C "$tmp/r" && ok || bad "report of $1 does not unpack"
}
same() {        # same ROOT ARGS...: the unpacked report answers as the host did
        local a b
        a=$(VGPU_ROOT=$1 LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" "${@:2}" 2>&1)
        b=$(VGPU_ROOT=$tmp/r LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" "${@:2}" 2>&1)
        [[ $a == "$b" ]] && ok || bad "report of $1: '${*:2}' differs on the unpacked tree: $(diff <(echo "$a") <(echo "$b") | head -5)"
}
report_has() {  # report_has FILE TEXT
        grep -qF -- "$2" "$tmp/r/$1" 2>/dev/null && ok || bad "report: $1 lacks '$2': $(head -c 300 "$tmp/r/$1" 2>&1)"
}
h=$FIXTURES/broken-vgpu-mgr-failed
unpack "$h"
same "$h" list --json
same "$h" types --json
# the unit's state as the doctor reads it on a tree: the check gives the same verdict there
report_has run/vgpuctl/systemctl-show/nvidia-vgpu-mgr.service "ActiveState=failed"
# (status and summary: the evidence's log lines come from syslog there, from the bundle's copy here)
verdict() {
        VGPU_ROOT=$1 LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" doctor -c nvidia.vgpu_mgr --json |
                python3 -c 'import json, sys; print([(c["status"], c["summary"]) for c in json.load(sys.stdin)])'
}
[[ $(verdict "$h") == "$(verdict "$tmp/r")" ]] && ok || bad "report: nvidia.vgpu_mgr says '$(verdict "$tmp/r")' on the unpacked tree, '$(verdict "$h")' on the host"
grep -q '"status":"fail"' <(VGPU_ROOT=$tmp/r LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" doctor -c nvidia.vgpu_mgr --json) && ok ||
        bad "report: nvidia.vgpu_mgr does not fail on the unpacked tree"
report_has vgpuctl/journal/nvidia-vgpu-mgr.service.txt "NVIDIA driver version mismatch: nvidia.ko 550.90.05"
report_has vgpuctl/journal/libvirtd.service.txt "lines of libvirtd.service"
# units that are not installed are not captured as if they were
[[ -e $tmp/r/run/vgpuctl/systemctl-show/vgpud.service ]] && bad "report: a systemctl show for vgpud.service, which the host lacks" || ok
report_has vgpuctl/versions.txt "nvml.driver_version=550.127.06"
report_has vgpuctl/versions.txt "module.nvidia=550.127.06"
report_has vgpuctl/versions.txt "module.nvidia_vgpu_vfio=550.127.06"
[[ -e $tmp/r/vgpuctl/sel.json ]] && bad "report: a SEL without a BMC" || ok

# a host with a VM holding a vGPU, one without, and a kernel log with an Xid
h=$tmp/mdev
cp -a "$FIXTURES/nvidia-mdev" "$h"
u1=b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01
mkdir -p "$h/etc/libvirt/qemu" "$h/var/log/libvirt/qemu"
printf "<domain type='kvm'>\n  <name>vdi</name>\n  <devices>\n    <hostdev mode='subsystem' type='mdev' model='vfio-pci'>\n      <source>\n        <address uuid='%s'/>\n      </source>\n    </hostdev>\n  </devices>\n</domain>\n" \
        "$u1" >"$h/etc/libvirt/qemu/vdi.xml"
printf "<domain type='kvm'>\n  <name>plain</name>\n</domain>\n" >"$h/etc/libvirt/qemu/plain.xml"
sed "s/$mdev/$u1/g" "$FIXTURES/../qemu-logs/vdi-mgr.log" >"$h/var/log/libvirt/qemu/vdi.log"
cp "$FIXTURES/../qemu-logs/vdi-clean.log" "$h/var/log/libvirt/qemu/plain.log"
printf '%s\n' "Dec  5 08:00:01 gpu-host kernel: [    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)" \
        "Dec  5 09:20:40 gpu-host kernel: [ 4839.120334] NVRM: Xid (PCI:0000:3b:00): 43, pid=2345, name=qemu-system-x86, Ch 00000008" \
        "Dec  5 09:20:41 gpu-host kernel: [ 4840.001201] usb 1-1: new high-speed USB device number 3 using xhci_hcd" \
        "Dec  5 09:20:41 gpu-host kernel: [ 4840.388101] vfio-pci 0000:3b:00.4: vfio_bar_restore: reset recovery - restoring BARs" >"$h/var/log/kern.log"
unpack "$h"
same "$h" list --json
same "$h" types --json
report_has var/log/libvirt/qemu/vdi.log "error getting device from group 112: Input/output error"
report_has etc/libvirt/qemu/vdi.xml "$u1"
[[ -e $tmp/r/var/log/libvirt/qemu/plain.log ]] && bad "report: the QEMU log of a domain without a vGPU" || ok
same "$h" diagnose vdi --json
report_has vgpuctl/kernel.txt "NVRM: Xid (PCI:0000:3b:00): 43"
report_has vgpuctl/kernel.txt "vfio_bar_restore"
grep -q "xhci_hcd" "$tmp/r/vgpuctl/kernel.txt" && bad "report: kernel.txt has an unrelated USB line" || ok

summary
