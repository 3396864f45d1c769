#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# scan-batch.sh — the host scan reads sysfs through io_uring in batches, or one by one where
# io_uring is unavailable or denied (lib/basic/sysfs-batch.h; VGPU_IO_URING=0 forces the plain
# path): both give the same bytes for list, list --defined and types, table and --json, on every
# fixture host and on a generated SR-IOV host large enough for several io_uring rounds of 128
# files, and on one wide enough for several threads; and the batch does use io_uring where the
# kernel allows it.
# Needs VGPUCTL and FIXTURES (set by tests/meson.build).
source "$(dirname "$0")/testlib.sh"
here=$(cd "$(dirname "$0")" && pwd)

# 2 GPUs x 8 VFs x 24 types: 384 type attributes per group of parents, 20 PCI functions
python3 "$here/../fixtures/gen-hosts.py" --large "$tmp/large" --gpus 2 --vfs 8 --types 24 --instances 12 >/dev/null

for root in "$FIXTURES"/*/ "$tmp/large"; do
        for args in "list --json" "list --defined --json" "types --json" "list" "types"; do
                VGPU_ROOT=$root "$VGPUCTL" $args >"$tmp/uring" 2>&1
                rc_uring=$?
                VGPU_ROOT=$root VGPU_IO_URING=0 "$VGPUCTL" $args >"$tmp/plain" 2>&1
                rc_plain=$?
                if [[ $rc_uring == "$rc_plain" ]] && cmp -s "$tmp/uring" "$tmp/plain"; then
                        ok
                else
                        bad "$root $args: io_uring and plain reads differ (exit $rc_uring/$rc_plain)"
                        diff "$tmp/uring" "$tmp/plain" | head -5 >&2
                fi
        done
done

# 4 GPUs x 64 VFs: 260 functions, their uevents in one batch and their links on the threads
# (lib/host/pci.c): every function once, with its uevent's driver and its group, both ways
python3 "$here/../fixtures/gen-hosts.py" --large "$tmp/wide" --gpus 4 --vfs 64 --types 1 --instances 4 >/dev/null
for uring in 1 0; do
        got=$(VGPU_ROOT=$tmp/wide VGPU_IO_URING=$uring "$VGPUCTL" list --json | python3 -c '
import json, sys
g = json.load(sys.stdin)["gpus"]
print(len(g), len({x["bdf"] for x in g}), sum(1 for x in g if x["driver"] == "nvidia" and x["iommu_group"] is not None),
      sum(len(x["vfs"]) for x in g), sum(1 for x in g if x["physfn"]))')
        [[ $got == "260 260 260 256 256" ]] && ok || bad "VGPU_IO_URING=$uring: 260 functions read as: $got"
done

# a uevent longer than the batch's slot for it (256 bytes, lib/host/pci.c) is read again whole:
# a VF's PCI_SUBSYS_ID placed past byte 300 must still be read (its subsystem ids are not in the
# separate files either, which the scan would fall back to), both ways
vf=$(readlink -f "$tmp/wide/sys/bus/pci/devices/0000:11:00.4")
{
        echo "DRIVER=nvidia"
        echo "PCI_CLASS=30200"
        echo "PCI_ID=10DE:2235"
        echo "X_PADDING=$(printf 'p%.0s' {1..300})"
        echo "PCI_SUBSYS_ID=10DE:ABCD"
        echo "PCI_SLOT_NAME=0000:11:00.4"
} >"$vf/uevent"
rm -f "$vf/subsystem_vendor" "$vf/subsystem_device"
for uring in 1 0; do
        got=$(VGPU_ROOT=$tmp/wide VGPU_IO_URING=$uring "$VGPUCTL" list --json | python3 -c '
import json, sys
g = [x for x in json.load(sys.stdin)["gpus"] if x["bdf"] == "0000:11:00.4"]
print(g[0]["subsystem_vendor_id"], g[0]["subsystem_device_id"], g[0]["driver"]) if g else print("missing")')
        [[ $got == "0x10de 0xabcd nvidia" ]] && ok || bad "VGPU_IO_URING=$uring: a 400-byte uevent read as: $got"
done

# no more type-reading threads than the descriptor limit leaves room for: with room for one
# group's type directories and batch (some 160 descriptors) but not two, the second thread's
# directories ran out of descriptors ("Too many open files"); one thread reads them all instead
# (on a single CPU there is only one thread anyway)
python3 "$here/../fixtures/gen-hosts.py" --large "$tmp/fds" --gpus 2 --vfs 32 --types 24 --instances 4 >/dev/null
VGPU_ROOT=$tmp/fds "$VGPUCTL" types --json >"$tmp/fds-want"
# 170 more than this shell holds (one thread needs some 165 with the scan's own, two some 200)
limit=$(($(ls /proc/$$/fd | wc -l) + 170))
for uring in 1 0; do
        if (ulimit -n $limit && VGPU_ROOT=$tmp/fds VGPU_IO_URING=$uring "$VGPUCTL" types --json >"$tmp/fds-got" 2>&1) &&
                cmp -s "$tmp/fds-want" "$tmp/fds-got"; then
                ok
        else
                bad "VGPU_IO_URING=$uring: types with $limit descriptors: $(head -c 200 "$tmp/fds-got")"
        fi
done

# the ring is set up on the large host (where allowed), and never with VGPU_IO_URING=0
if command -v strace >/dev/null; then
        VGPU_ROOT=$tmp/large strace -f -e trace=io_uring_setup -o "$tmp/strace" "$VGPUCTL" types --json >/dev/null
        if grep -q 'io_uring_setup(.*= [0-9]' "$tmp/strace"; then
                ok
                VGPU_ROOT=$tmp/large VGPU_IO_URING=0 strace -f -e trace=io_uring_setup -o "$tmp/strace" \
                        "$VGPUCTL" types --json >/dev/null
                if grep -q io_uring_setup "$tmp/strace"; then bad "VGPU_IO_URING=0 still set up a ring"; else ok; fi
                # one ring for all 260 functions' uevents: a ring per 128-function job on the threads
                # cost more CPU and wall time than it saved (bench/inventory.sh, 2 busy cores)
                VGPU_ROOT=$tmp/wide strace -f -e trace=io_uring_setup -o "$tmp/strace" "$VGPUCTL" list --json \
                        >/dev/null
                rings=$(grep -c 'io_uring_setup(.*= [0-9]' "$tmp/strace" || true)
                [[ $rings == 1 ]] && ok || bad "list --json on 260 functions set up $rings rings, not 1"
        else
                echo "SKIP: io_uring unavailable here ($(grep -m1 io_uring_setup "$tmp/strace")): plain path only"
        fi
else
        echo "SKIP: no strace: whether the ring was used is not checked"
fi

summary
