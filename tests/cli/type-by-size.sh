#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# type-by-size.sh — a vGPU type by frame buffer size, from the outside on writable fixture copies:
# `create --framebuffer SIZE` and host.yaml's device `framebuffer:` pick the parent's smallest type
# that gives at least SIZE (of several that size one running there, else the first listed; never
# one of unknown size), name it, and refuse with the largest when none fits. Vendor-VFIO types get
# their size from NVML (the double's nvml.conf). Needs VGPUCTL, FIXTURES, NVML_DOUBLE.
source "$(dirname "$0")/testlib.sh"
V() { VGPU_ROOT="$tmp/$H" LD_LIBRARY_PATH="$NVML_DOUBLE" VGPUD_SOCKET="$tmp/no-daemon.sock" "$VGPUCTL" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
for h in nvidia-mdev nvidia-sriov-vfio kernel-samples; do cp -a "$FIXTURES/$h" "$tmp/$h"; done
u1=b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01

H=nvidia-mdev
# 3b runs T4-4Q (nvidia-232): of the 4G types that one, so the instance is found as it is
V create --parent 3b:00.0 --framebuffer 3G --uuid $u1; expect 0 "create --framebuffer of a running instance"
has out "type nvidia-232 (GRID T4-4Q): 4096 MiB of frame buffer, the smallest with at least 3G" "the pick is named"
has out "already exists" "nothing created"
V create --parent 0000:3b:00.0 --framebuffer 4G --uuid $u1 --json; expect 0 "create --framebuffer --json"
python3 -c "import json; d = json.load(open('$tmp/out')); assert d == {'uuid': '$u1', 'parent': '0000:3b:00.0', 'type': 'nvidia-232', 'changed': False}, d" &&
        ok || bad "--json: $(cat "$tmp/out")"
V create --parent af:00.0 --framebuffer 100G; expect 1 "nothing that large"
has err "0000:af:00.0: no type gives 102400 MiB of frame buffer; the largest is nvidia-229 (GRID T4-16A, 16384 MiB)" "largest named"
V create --parent af:00.0 --framebuffer 4G --type nvidia-232; expect 2 "--type and --framebuffer"
V create --parent af:00.0 --framebuffer lots; expect 2 "a size that is none"
has err "--framebuffer 'lots': expected a size like 4G or 512M" "size message"
V create --parent 99:00.0 --framebuffer 4G; expect 1 "no such parent"
# host.yaml: af runs nothing, so of the 4G types the first listed (T4-4A); 5000M needs an 8G one
printf 'version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - {framebuffer: 4G}\n      - {framebuffer: 5000M}\n' >"$tmp/fb.yaml"
V apply -f "$tmp/fb.yaml" --dry-run --json; expect 0 "apply --dry-run with framebuffer"
python3 -c "
import json; d = json.load(open('$tmp/out'))
assert [(a['action'], a['type']) for a in d['actions'] if a['action'] == 'create'] == [('create', 'nvidia-227'), ('create', 'nvidia-228')], d
" && ok || bad "the plan's types: $(cat "$tmp/out")"
# the host as it is, written by size: nothing to do (the running type is kept, not swapped)
printf 'version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices: [{framebuffer: 4G, count: 2}]\n  - bdf: 5e:00.0\n    devices: [{framebuffer: 8G}]\n' >"$tmp/same.yaml"
V assert -f "$tmp/same.yaml"; expect 0 "assert: the host matches a file by size"
printf 'version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - framebuffer: 17G\n' >"$tmp/big.yaml"
V apply -f "$tmp/big.yaml"; expect 1 "apply: nothing that large"
has err "big.yaml:5:22: field 'framebuffer': 0000:af:00.0: no type gives 17408 MiB of frame buffer; the largest is nvidia-229" "FILE:LINE:COLUMN"
printf 'version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - framebuffer: 4X\n' >"$tmp/bad.yaml"
V apply -f "$tmp/bad.yaml"; expect 1 "apply: a bad size"
has err "bad.yaml:5:22: field 'framebuffer': expected a size like 4G or 512M, got '4X'" "bad size message"

# vendor-VFIO: the types list no size; NVML's does (the FB column is filled), and create picks by it
H=nvidia-sriov-vfio
V types 41:00.5 --json; expect 0 "types of a VF"
python3 -c "
import json; d = json.load(open('$tmp/out'))
assert [(t['type'], t['framebuffer_bytes']) for t in d] == [('1152', 8 << 30), ('1162', 8 << 30)], d
" && ok || bad "vendor-VFIO frame buffer: $(cat "$tmp/out")"
V create --parent 41:00.5 --framebuffer 6G; expect 0 "vendor-VFIO create --framebuffer"
has out "type 1152 (NVIDIA L40S-8Q): 8192 MiB of frame buffer, the smallest with at least 6G" "vendor-VFIO pick"
[[ $(cat "$tmp/nvidia-sriov-vfio/sys/bus/pci/devices/0000:41:00.5/nvidia/current_vgpu_type") == 1152 ]] && ok ||
        bad "the VF's type: $(cat "$tmp/nvidia-sriov-vfio/sys/bus/pci/devices/0000:41:00.5/nvidia/current_vgpu_type")"
# without NVML the size is unknown, and an unknown size is never picked
env -u LD_LIBRARY_PATH VGPU_ROOT="$tmp/$H" VGPUD_SOCKET="$tmp/no-daemon.sock" "$VGPUCTL" create --parent 41:00.6 --framebuffer 6G >"$tmp/out" 2>"$tmp/err"; rc=$?
expect 1 "vendor-VFIO without NVML"
has err "0000:41:00.6: no type with a known frame buffer size to pick from" "unknown sizes message"

# mtty's serial-port types have no frame buffer
H=kernel-samples
V create --parent mtty --framebuffer 1M; expect 1 "types without a frame buffer"
has err "mtty: no type with a known frame buffer size" "mtty message"
summary
