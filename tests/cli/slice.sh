#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# slice.sh — `vgpuctl slice` from the outside on a writable fixture copy (nvidia-baremetal; the
# refusal on a vGPU host on nvidia-mdev): create/list/show/remove
# with their refusals, the CDI spec kept in step, and end to end: a process of a slice created
# by vgpuctl, running under libvgpu-cuda.so on the fake CUDA driver, is held to the quota.
# Needs VGPUCTL, FIXTURES, NVML_DOUBLE, SHIM, FAKE_CUDA_DIR, TENANT (tests/meson.build).
source "$(dirname "$0")/testlib.sh"
nvml=1          # V runs vgpuctl with the NVML double
fixture_copy nvidia-baremetal
cdi=$tmp/host/etc/cdi/vgpuctl.yaml

V slice create alice --gpu 3b:00.0 --memory 64M --share 30%; expect 0 "create alice"
V slice create alice --gpu 3b:00.0 --memory 64M --share 30%; expect 0 "create alice again"
grep -q "nothing to do" "$tmp/out" && ok || bad "create again did not say so"
V slice create alice --gpu 3b:00.0 --memory 128M --share 30%; expect 1 "alice with another quota"
grep -q "exists on 0000:3b:00.0 with other settings" "$tmp/err" && ok || bad "conflict message: $(cat "$tmp/err")"
V slice create bob --gpu 3b:00.0 --memory 2G; expect 0 "create bob (equal share)"
V slice create alice --gpu 5e:00.0; expect 1 "a name is host-wide"
V slice create big --gpu 3b:00.0 --memory 64G; expect 1 "quota above the GPU's memory"
grep -q "the quotas of the slices on 0000:3b:00.0 add up to 67648 MiB with slice big; the GPU has 15360 MiB" "$tmp/err" && ok || bad "memory message: $(cat "$tmp/err")"
V slice create vga --gpu 03:00.0; expect 1 "not an NVIDIA GPU"
V slice create bad/name --gpu 3b:00.0; expect 1 "bad name"
V slice create x --gpu 3b:00.0 --share 130%; expect 2 "share above 100"
V slice create x --gpu 3b:00.0 --memory lots; expect 2 "bad size"
V slice create x --gpu 3b:00.0 --policy fixed-share; expect 1 "fixed share without a share"
V slice frobnicate; expect 2 "unknown slice command"
grep -q "unknown slice command 'frobnicate'" "$tmp/err" && ok || bad "unknown command: $(cat "$tmp/err")"
# each command has its own options (slice_verbs[]), taken by name anywhere after the command
V slice; expect 2 "slice without a command"
V slice list --gpu 3b:00.0; expect 2 "list has no --gpu"
grep -q "unknown option '--gpu'" "$tmp/err" && ok || bad "list --gpu: $(cat "$tmp/err")"
V slice show --memory 1G alice; expect 2 "show has no --memory"
V slice list alice; expect 2 "list takes no NAME"
grep -q "'slice list' takes no arguments" "$tmp/err" && ok || bad "list NAME: $(cat "$tmp/err")"
V slice remove; expect 2 "remove needs a NAME"
V slice create --help; expect 0 "create --help"
grep -q -- "--scrub WHEN" "$tmp/out" && grep -q "^Usage: vgpuctl slice create \[OPTIONS\] NAME" "$tmp/out" && ok ||
        bad "create --help: $(cat "$tmp/out")"
V slice show --help; expect 0 "show --help"
grep -q -- "--gpu" "$tmp/out" && bad "show --help offers create's --gpu" || ok
V slice --help; expect 0 "slice --help"
grep -qE "^  create +NAME" "$tmp/out" && grep -qE "^  remove +NAME" "$tmp/out" && ok || bad "slice --help: $(cat "$tmp/out")"
V slice create x --gpu 3b:00.0 --policy fair; expect 1 "unknown policy"
grep -q "policy 'fair': expected best-effort, equal-share or fixed-share" "$tmp/err" && ok || bad "policy: $(cat "$tmp/err")"
V slice create x --gpu 3b:00.0 --scrub never; expect 1 "unknown scrub"
V --json slice create --memory 64M --gpu 3b:00.0 carol; expect 0 "options before the NAME, a global one before slice"
V slice show carol --json; expect 0 "show carol"
grep -q '"memory_bytes":67108864' "$tmp/out" && ok || bad "carol: $(cat "$tmp/out")"
V slice remove carol; expect 0 "remove carol"

V slice list --json; expect 0 "list"
python3 -c "
import json; d = json.load(open('$tmp/out'))
assert [(s['name'], s['gpu'], s['policy'], s['share_percent'], s['memory_bytes']) for s in d] == \
       [('alice', '0000:3b:00.0', 'fixed-share', 30, 64 << 20), ('bob', '0000:3b:00.0', 'equal-share', None, 2 << 30)], d
" && ok || bad "list: $(cat "$tmp/out")"
# the CDI spec lists exactly the slices, each with the preload, its own region and its GPU's
# scheduler: nothing of another slice is mounted into a slice's containers
python3 -c "
import yaml; d = yaml.safe_load(open('$cdi'))
assert d['kind'] == 'vgpuctl.io/slice' and d['cdiVersion'] == '0.3.0', d
assert [x['name'] for x in d['devices']] == ['alice', 'bob'], d
env = d['devices'][0]['containerEdits']['env']
assert 'VGPU_SLICE=alice' in env and 'VGPU_SLICE_SHM=/run/vgpuctl/slices/alice.slice' in env, env
assert 'VGPU_SLICE_SCHED=/run/vgpuctl/slices/0000:3b:00.0.shm' in env, env
assert any(e.startswith('LD_PRELOAD=') and e.endswith('/vgpuctl/libvgpu-cuda.so') for e in env), env
for dev, own in (d['devices'][0], 'alice'), (d['devices'][1], 'bob'):
    mounts = {m['hostPath']: m['options'] for m in dev['containerEdits']['mounts']}
    slices = sorted(p for p in mounts if p.startswith('/run/vgpuctl/slices/'))
    assert slices == ['/run/vgpuctl/slices/0000:3b:00.0.shm', '/run/vgpuctl/slices/%s.slice' % own], mounts
" && ok || bad "CDI spec: $(cat "$cdi")"

# end to end: the shim holds a process of alice to its 64 MiB
asan=$(ldd "$TENANT" | awk '/libasan/ {print $3}')
slices=$tmp/host/run/vgpuctl/slices
region=$slices/0000:3b:00.0.shm         # the GPU's scheduler
tenant() {      # SLICE ARGS...: the tenant program in a slice, under the shim, as in its container
        local s=$1; shift
        LD_PRELOAD=${asan:+$asan:}$SHIM LD_LIBRARY_PATH=$FAKE_CUDA_DIR VGPU_SLICE_SHM=$slices/$s.slice VGPU_SLICE_SCHED=$region \
                VGPU_SLICE=$s "$TENANT" "$@" 3</dev/null
}
# in a sanitizer build the ASan runtime must come first in LD_PRELOAD, before the instrumented shim
out=$(tenant alice fill 1048576)
[[ $out == "count=64 rc=2" ]] && ok || bad "alice's process: '$out' (expected 64 MiB then CUDA_ERROR_OUT_OF_MEMORY)"

# usage per slice in `vgpuctl list --json`: the process above peaked at the quota and was refused once
V list --json; expect 0 "list with slices"
python3 -c "
import json; d = json.load(open('$tmp/out'))
a = [s for s in d['slices'] if s['name'] == 'alice'][0]
assert (a['peak_bytes'], a['oom_count'], a['used_bytes'], a['processes']) == (64 << 20, 1, 0, 0), a
" && ok || bad "list --json slices: $(head -c 600 "$tmp/out")"

# 10.1: a host user outside the slices cannot open, rewrite or truncate a region (it was 0666:
# `nobody` zeroed alice's quota and locked bob out). Make the fixture tree traversable first, or
# the test would pass on the mktemp directory's 0700 alone.
chmod 0755 "$tmp" "$tmp/host" "$tmp/host/run" "$tmp/host/run/vgpuctl" "$tmp/host/run/vgpuctl/slices"
[[ $(stat -c %a "$slices") == 755 ]] && ok || bad "slice directory mode"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
as_nobody test -x "$slices" && ok || bad "nobody cannot even reach the directory: the checks below prove nothing"
for f in "$region" "$slices/alice.slice" "$slices/bob.slice"; do
        [[ $(stat -c %a "$f") == 600 && $(stat -c %u "$f") == 0 ]] && ok || bad "$f: mode $(stat -c '%a %u' "$f"), expected 600 root"
        as_nobody cat "$f" >/dev/null 2>&1 && bad "nobody read $f" || ok
        as_nobody python3 -c "open('$f', 'r+b').write(b'x')" 2>/dev/null && bad "nobody wrote $f" || ok
        as_nobody truncate -s 0 "$f" 2>/dev/null && bad "nobody truncated $f" || ok
        (( $(stat -c %s "$f") > 0 )) && ok || bad "$f was truncated"
done

# all a tenant of bob can write (his region, the scheduler) gets garbage (the probe zeroed
# alice's quota through the shared region): alice's quota, usage and membership are not in
# them, and her processes are held to her quota all the same
python3 -c "
for p in '$slices/bob.slice', '$region':
    n = len(open(p, 'rb').read()); open(p, 'r+b').write(bytes([0xa5]) * n)
"
out=$(tenant alice fill 1048576)
[[ $out == "count=64 rc=2" ]] && ok || bad "alice's process after bob's tenant wrote garbage: '$out'"
V slice list --json; expect 1 "list with bob's region and the scheduler damaged"
python3 -c "
import json; d = json.load(open('$tmp/out'))
assert [(s['name'], s['memory_bytes'], s['peak_bytes'], s['oom_count']) for s in d] == [('alice', 64 << 20, 64 << 20, 2)], d
" && ok || bad "alice after bob's tenant: $(cat "$tmp/out")"
grep -q "bob.slice: not a slice region of this version" "$tmp/err" && ok || bad "damage message: $(cat "$tmp/err")"
grep -q "0000:3b:00.0.shm: not a slice scheduler of this version" "$tmp/err" && ok || bad "scheduler message: $(cat "$tmp/err")"
V slice create bob --gpu 3b:00.0 --memory 2G; expect 0 "create bob rebuilds the GPU's regions"
V slice list --json; expect 0 "list after the rebuild"
python3 -c "
import json; d = json.load(open('$tmp/out'))
assert [(s['name'], s['memory_bytes']) for s in d] == [('alice', 64 << 20), ('bob', 2 << 30)], d
" && ok || bad "list after the rebuild: $(cat "$tmp/out")"
# a region of an older release (0666) is restricted by the next create
chmod 0666 "$region"
V slice create bob --gpu 3b:00.0 --memory 2G; expect 0 "create bob again"
[[ $(stat -c %a "$region") == 600 ]] && ok || bad "a 0666 region was left as it is: $(stat -c %a "$region")"

# a corrupt region is an error of `slice list` naming it (it printed "(no slices)" with exit 0),
# and `slice create` rebuilds it from the records, every slice of the GPU included
printf 'garbage!' | dd of="$region" conv=notrunc status=none
V slice list; expect 1 "list with a corrupt region"
grep -q "0000:3b:00.0.shm: not a slice scheduler of this version" "$tmp/err" && ok || bad "corrupt region message: $(cat "$tmp/err")"
V slice create bob --gpu 3b:00.0 --memory 2G; expect 0 "create bob repairs the region"
V slice list --json; expect 0 "list after the repair"
python3 -c "
import json; d = json.load(open('$tmp/out'))
assert [(s['name'], s['memory_bytes'], s['policy']) for s in d] == [('alice', 64 << 20, 'fixed-share'), ('bob', 2 << 30, 'equal-share')], d
" && ok || bad "list after the repair: $(cat "$tmp/out")"
# truncated under its tenants: reported, and restored from the records
truncate -s 0 "$region"
V slice list; expect 1 "list with a truncated region"
grep -q "0000:3b:00.0.shm: a short slice scheduler file" "$tmp/err" && ok || bad "truncated region message: $(cat "$tmp/err")"
V apply --restore; expect 0 "apply --restore rebuilds the truncated region"
V slice list --json; expect 0 "list after apply --restore"
python3 -c "
import json; d = json.load(open('$tmp/out')); assert [s['name'] for s in d] == ['alice', 'bob'], d
" && ok || bad "list after apply --restore: $(cat "$tmp/out")"
# a region written by hand to be another slice's: reported, never listed, rebuilt by create
python3 - "$slices/alice.slice" <<'PY'
import sys
data = bytearray(open(sys.argv[1], 'rb').read())
alice = data.index(b'alice\0')
data[alice:alice + 6] = b'bob\0\0\0'
open(sys.argv[1], 'r+b').write(data)
PY
V slice list --json; expect 1 "list with alice's region saying bob"
grep -q "alice.slice: corrupt slice region: it holds slice bob" "$tmp/err" && ok || bad "hand-written region message: $(cat "$tmp/err")"
python3 -c "
import json; d = json.load(open('$tmp/out')); assert [s['name'] for s in d] == ['bob'], d
" && ok || bad "a hand-written region was listed: $(cat "$tmp/out")"
V slice create alice --gpu 3b:00.0 --memory 64M --share 30%; expect 0 "create alice repairs her region"
V slice list; expect 0 "list after repairing alice's region"

V slice remove alice; expect 0 "remove alice"
V slice remove alice; expect 1 "remove alice again"
V slice show alice; expect 1 "show a removed slice"
python3 -c "import yaml; assert [x['name'] for x in yaml.safe_load(open('$cdi'))['devices']] == ['bob']" && ok || bad "CDI spec after remove: $(cat "$cdi")"

# a GPU the vGPU manager drives (nvidia-mdev: NVML virtualization mode 3, vGPU host) runs no host
# CUDA: a slice there is refused with the reason, by `slice create` and by host.yaml, and nothing
# is written (no region, no record, no CDI spec)
cp -a "$FIXTURES/nvidia-mdev" "$tmp/vgpu-host"
W() { VGPU_ROOT="$tmp/vgpu-host" LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
W slice create carol --gpu af:00.0 --memory 64M; expect 1 "slice create on a vGPU host"
grep -qF "slice carol: 0000:af:00.0: the GPU is in vGPU host mode (NVML virtualization mode 3): host CUDA cannot run there" "$tmp/err" &&
        ok || bad "vGPU host message: $(cat "$tmp/err")"
printf 'version: 1\nslices:\n  - name: carol\n    gpu: af:00.0\n' >"$tmp/vgpu-host.yaml"
W apply -f "$tmp/vgpu-host.yaml" --dry-run; expect 1 "host.yaml slices on a vGPU host (dry run)"
grep -qF "vgpu-host.yaml:3:5: slice carol: 0000:af:00.0: the GPU is in vGPU host mode" "$tmp/err" && ok || bad "apply message: $(cat "$tmp/err")"
W apply -f "$tmp/vgpu-host.yaml"; expect 1 "host.yaml slices on a vGPU host"
grep -qF "vgpu-host.yaml:3:5: slice carol: 0000:af:00.0: the GPU is in vGPU host mode" "$tmp/err" && ok || bad "apply message: $(cat "$tmp/err")"
[[ ! -e $tmp/vgpu-host/run/vgpuctl/slices && ! -e $tmp/vgpu-host/var/lib/vgpuctl/slices && ! -e $tmp/vgpu-host/etc/cdi/vgpuctl.yaml ]] &&
        ok || bad "a refused slice left files: $(cd "$tmp/vgpu-host" && ls -d run/vgpuctl/slices var/lib/vgpuctl/slices etc/cdi 2>&1)"
summary
