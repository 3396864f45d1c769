#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# slice.sh — `vgpuctl slice` from the outside on a writable fixture copy: create/list/show/remove
# with their refusals, the CDI spec kept in step, and end to end: a process of a slice created
# by vgpuctl, running under libvgpu-cuda.so on the fake CUDA driver, is held to the quota.
# Needs VGPUCTL, FIXTURES, NVML_DOUBLE, SHIM, FAKE_CUDA_DIR, TENANT (tests/meson.build).
set -uo pipefail
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }
V() { VGPU_ROOT="$tmp/host" LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
expect() { [[ $rc == "$1" ]] && ok || bad "$2: exit $rc, expected $1 ($(head -c 300 "$tmp/err"))"; }
cp -a "$FIXTURES/nvidia-mdev" "$tmp/host"
cdi=$tmp/host/etc/cdi/vgpuctl.yaml

V slice create alice --gpu 3b:00.0 --memory 64M --share 30%; expect 0 "create alice"
V slice create alice --gpu 3b:00.0 --memory 64M --share 30%; expect 0 "create alice again"
grep -q "nothing to do" "$tmp/out" && ok || bad "create again did not say so"
V slice create alice --gpu 3b:00.0 --memory 128M --share 30%; expect 1 "alice with another quota"
grep -q "exists on 0000:3b:00.0 with other settings" "$tmp/err" && ok || bad "conflict message: $(cat "$tmp/err")"
V slice create bob --gpu 3b:00.0 --memory 2G; expect 0 "create bob (equal share)"
V slice create alice --gpu 5e:00.0; expect 1 "a name is host-wide"
V slice create big --gpu 3b:00.0 --memory 64G; expect 1 "quota above the GPU's memory"
grep -q "has 15360 MiB of memory" "$tmp/err" && ok || bad "memory message: $(cat "$tmp/err")"
V slice create vga --gpu 03:00.0; expect 1 "not an NVIDIA GPU"
V slice create bad/name --gpu 3b:00.0; expect 1 "bad name"
V slice create x --gpu 3b:00.0 --share 130%; expect 2 "share above 100"
V slice create x --gpu 3b:00.0 --memory lots; expect 2 "bad size"
V slice create x --gpu 3b:00.0 --policy fixed-share; expect 1 "fixed share without a share"
V slice frobnicate; expect 2 "unknown slice command"

V slice list --json; expect 0 "list"
python3 -c "
import json; d = json.load(open('$tmp/out'))
assert [(s['name'], s['gpu'], s['policy'], s['share_percent'], s['memory_bytes']) for s in d] == \
       [('alice', '0000:3b:00.0', 'fixed-share', 30, 64 << 20), ('bob', '0000:3b:00.0', 'equal-share', None, 2 << 30)], d
" && ok || bad "list: $(cat "$tmp/out")"
# the CDI spec lists exactly the slices, each with the preload and its region
python3 -c "
import yaml; d = yaml.safe_load(open('$cdi'))
assert d['kind'] == 'vgpuctl.io/slice' and d['cdiVersion'] == '0.3.0', d
assert [x['name'] for x in d['devices']] == ['alice', 'bob'], d
env = d['devices'][0]['containerEdits']['env']
assert 'VGPU_SLICE=alice' in env and 'VGPU_SLICE_SHM=/run/vgpuctl/slices/0000:3b:00.0.shm' in env, env
assert any(e.startswith('LD_PRELOAD=') and e.endswith('/vgpuctl/libvgpu-cuda.so') for e in env), env
" && ok || bad "CDI spec: $(cat "$cdi")"

# end to end: the shim holds a process of alice to its 64 MiB
region=$tmp/host/run/vgpuctl/slices/0000:3b:00.0.shm
# in a sanitizer build the ASan runtime must come first in LD_PRELOAD, before the instrumented shim
asan=$(ldd "$TENANT" | awk '/libasan/ {print $3}')
out=$(LD_PRELOAD=${asan:+$asan:}$SHIM LD_LIBRARY_PATH=$FAKE_CUDA_DIR VGPU_SLICE_SHM=$region VGPU_SLICE=alice "$TENANT" fill 1048576 3</dev/null)
[[ $out == "count=64 rc=2" ]] && ok || bad "alice's process: '$out' (expected 64 MiB then CUDA_ERROR_OUT_OF_MEMORY)"

# usage per slice in `vgpuctl list --json`: the process above peaked at the quota and was refused once
V list --json; expect 0 "list with slices"
python3 -c "
import json; d = json.load(open('$tmp/out'))
a = [s for s in d['slices'] if s['name'] == 'alice'][0]
assert (a['peak_bytes'], a['oom_count'], a['used_bytes'], a['processes']) == (64 << 20, 1, 0, 0), a
" && ok || bad "list --json slices: $(head -c 600 "$tmp/out")"

V slice remove alice; expect 0 "remove alice"
V slice remove alice; expect 1 "remove alice again"
V slice show alice; expect 1 "show a removed slice"
python3 -c "import yaml; assert [x['name'] for x in yaml.safe_load(open('$cdi'))['devices']] == ['bob']" && ok || bad "CDI spec after remove: $(cat "$cdi")"
echo "slice: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
