#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# lifecycle.sh — what the lifecycle and apply can do without a kernel, on writable copies of
# fixture hosts: NVIDIA vendor-VFIO create/remove (a sysfs write of the type id), runtime
# policy knobs (xe sriov_admin) applied, re-applied as a no-op, and the state recorded.
# mdev creation needs a kernel: tests/vm/scenarios/20-lifecycle.sh and 30-apply.sh.
source "$(dirname "$0")/testlib.sh"

# NVIDIA vendor-VFIO: a VF takes a type by id, and gives it back
fixture_copy nvidia-sriov-vfio
vf=$tmp/host/sys/bus/pci/devices/0000:41:00.5/nvidia/current_vgpu_type
# a UUID one digit too long is refused as a usage error, not cut to fit
V create --parent 41:00.5 --type 1152 --uuid 11111111-2222-4333-8444-0000000000011; expect 2 "over-long --uuid"
grep -q "not a UUID" "$tmp/err" && ok || bad "over-long --uuid: $(cat "$tmp/err")"
[[ $(cat "$vf") == 0 ]] && ok || bad "over-long --uuid changed current_vgpu_type to $(cat "$vf")"
V create --parent 41:00.5 --type 1152; expect 0 "vendor-VFIO create"
[[ $(cat "$vf") == 1152 ]] && ok || bad "current_vgpu_type is $(cat "$vf"), not 1152"
V list --json
python3 -c "import json; d=json.load(open('$tmp/out')); assert {'uuid': None, 'parent': '0000:41:00.5', 'type': '1152', 'iommu_group': 10, 'domain': None} in d['instances']" && ok ||
        bad "list does not show the vendor-VFIO instance: $(cat "$tmp/out" | head -c 400)"
V create --parent 41:00.5 --type 1152; expect 0 "vendor-VFIO create again"
grep -q "already exists" "$tmp/out" && ok || bad "create again did not say so"
V create --parent 41:00.5 --type 1162; expect 1 "another type on a busy VF"
grep -q "0000:41:00.5 already runs vGPU type 1152; remove it first" "$tmp/err" && ok || bad "busy VF message: $(cat "$tmp/err")"
V create --parent 41:00.6 --type 1152 --persist; expect 1 "vendor-VFIO --persist"
grep -q "mdevctl's store cannot hold them" "$tmp/err" && ok || bad "--persist message: $(cat "$tmp/err")"
V remove 41:00.5; expect 0 "vendor-VFIO remove"
[[ $(cat "$vf") == 0 ]] && ok || bad "current_vgpu_type is $(cat "$vf") after remove"
V remove 41:00.5; expect 1 "vendor-VFIO remove again"
# declaratively: one VF gets a type, the VF count of the second L40S is a plan step
printf 'version: 1\ngpus:\n  - bdf: 41:00.6\n    devices: [{type: "1162"}]\n' >"$tmp/v.yaml"
V apply -f "$tmp/v.yaml"; expect 0 "apply vendor-VFIO"
[[ $(cat "$tmp/host/sys/bus/pci/devices/0000:41:00.6/nvidia/current_vgpu_type") == 1162 ]] && ok || bad "apply did not set the type"
V apply -f "$tmp/v.yaml"; expect 0 "apply vendor-VFIO again"; grep -q "nothing to do" "$tmp/out" && ok || bad "second apply changed something"
V assert -f "$tmp/v.yaml"; expect 0 "assert"
[[ -f $tmp/host/var/lib/vgpuctl/host.yaml ]] && ok || bad "applied file not recorded"
rm -rf "$tmp/host"

# Intel xe: the GuC scheduling profile, at run time
fixture_copy intel-xe-sriov
adm=$tmp/host/sys/bus/pci/devices/0000:03:00.0/sriov_admin
printf 'version: 1\ngpus:\n  - bdf: 03:00.0\n    policy: {scheduler: equal-share, timeslice-ms: 8}\n' >"$tmp/x.yaml"
V apply -f "$tmp/x.yaml" --dry-run; expect 0 "xe dry run"
[[ $(cat "$adm/vf3/profile/exec_quantum_ms") == 0 ]] && ok || bad "dry run wrote"
V apply -f "$tmp/x.yaml"; expect 0 "xe apply"
[[ $(cat "$adm/pf/profile/exec_quantum_ms") == 8 && $(cat "$adm/vf8/profile/preempt_timeout_us") == 16000 ]] && ok ||
        bad "xe profile: pf quantum $(cat "$adm/pf/profile/exec_quantum_ms"), vf8 preempt $(cat "$adm/vf8/profile/preempt_timeout_us")"
V apply -f "$tmp/x.yaml"; expect 0 "xe apply again"; grep -q "nothing to do" "$tmp/out" && ok || bad "xe re-apply was not a no-op"
V assert -f "$tmp/x.yaml"; expect 0 "xe assert"

summary
