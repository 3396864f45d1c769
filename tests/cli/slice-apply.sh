#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# slice-apply.sh — software slices declared in host.yaml, from the outside on a writable fixture
# copy: apply/assert/--dry-run/--diff, an old file without 'slices' leaving imperative slices
# alone, export -> apply round trip, rollback of a failed apply, refusal while a process (the
# shim on the fake CUDA driver) uses a slice, and a boot restore after /run is emptied.
# Needs VGPUCTL, FIXTURES, NVML_DOUBLE, SHIM, FAKE_CUDA_DIR, TENANT (tests/meson.build).
source "$(dirname "$0")/testlib.sh"
at_exit 'exec 5>&- 2>/dev/null'
nvml=1          # V runs vgpuctl with the NVML double
# name gpu policy share memory scrub of every slice, one line each
slices() { V slice list --json && python3 -c "
import json
for s in json.load(open('$tmp/out')): print(s['name'], s['gpu'], s['policy'], s['share_percent'], s.get('memory_bytes'), s['scrub'])"; }
fixture_copy nvidia-baremetal
records=$tmp/host/var/lib/vgpuctl/slices
cdi=$tmp/host/etc/cdi/vgpuctl.yaml

# an imperative slice, recorded
V slice create scratch --gpu 5e:00.0 --memory 512M; expect 0 "create scratch"
[[ -f $records/scratch.json ]] && ok || bad "no record for scratch"
# an old host.yaml without 'slices' never removes it
cat >"$tmp/old.yaml" <<'EOF'
version: 1
gpus: []
EOF
V apply -f "$tmp/old.yaml"; expect 0 "apply a file without slices"
[[ $(slices) == "scratch 0000:5e:00.0 equal-share None 536870912 on-free" ]] && ok || bad "scratch after the old file: $(slices)"

cat >"$tmp/host.yaml" <<'EOF'
version: 1
slices:
  - name: alice
    gpu: 3b:00.0
    memory: 64M
    share: 30%
  - name: bob
    gpu: "0000:3b:00.0"
    memory: 2G
    scrub: on-exit
EOF
V assert -f "$tmp/host.yaml"; expect 1 "assert before apply"
has out "- slice-remove slice scratch" "assert lists the removal"
V apply -f "$tmp/host.yaml" --dry-run; expect 0 "dry run"
has out "slice-create slice alice (64M on 0000:3b:00.0, fixed-share 30%, scrub on-free): not created yet" "dry run lists alice"
[[ -f $records/scratch.json && ! -f $records/alice.json ]] && ok || bad "the dry run changed records: $(ls "$records")"
V apply -f "$tmp/host.yaml" --json; expect 0 "apply"
python3 -c "
import json; d = json.load(open('$tmp/out'))
assert [(a['action'], a['slice'], a['parent']) for a in d['actions']] == [
    ('slice-remove', 'scratch', '0000:5e:00.0'), ('slice-create', 'alice', '0000:3b:00.0'), ('slice-create', 'bob', '0000:3b:00.0')], d
" && ok || bad "apply --json: $(cat "$tmp/out")"
want=$'alice 0000:3b:00.0 fixed-share 30 67108864 on-free\nbob 0000:3b:00.0 equal-share None 2147483648 on-exit'
[[ $(slices) == "$want" ]] && ok || bad "slices after apply: $(slices)"
[[ $(ls "$records") == $'alice.json\nbob.json' ]] && ok || bad "records after apply: $(ls "$records")"
V assert -f "$tmp/host.yaml"; expect 0 "assert after apply"
V apply -f "$tmp/host.yaml"; expect 0 "apply again"
has out "nothing to do" "a second apply does nothing"

# export -> apply round trip: the export reads back as the same slices, and changes nothing
V export; expect 0 "export"
cp "$tmp/out" "$tmp/export.yaml"
python3 -c "
import yaml; d = yaml.safe_load(open('$tmp/export.yaml'))
assert d['slices'] == [
    {'name': 'alice', 'gpu': '0000:3b:00.0', 'memory': '64M', 'share': '30%', 'policy': 'fixed-share', 'scrub': 'on-free'},
    {'name': 'bob', 'gpu': '0000:3b:00.0', 'memory': '2G', 'policy': 'equal-share', 'scrub': 'on-exit'}], d['slices']
" && ok || bad "export: $(cat "$tmp/export.yaml")"
V assert -f "$tmp/export.yaml"; expect 0 "the export matches the host"

# a bad file: FILE:LINE:COLUMN and nothing changed
printf 'version: 1\nslices:\n  - {name: alice, gpu: 3b:00.0, share: 101%%}\n' >"$tmp/bad.yaml"
V apply -f "$tmp/bad.yaml"; expect 1 "share above 100"
has err "bad.yaml:3:40: field 'share': expected a percentage from 1 to 100" "share message"
printf 'version: 1\nslices:\n  - {name: a, gpu: 3b:00.0, memory: 8G}\n  - {name: b, gpu: 3b:00.0, memory: 8G}\n' >"$tmp/big.yaml"
V apply -f "$tmp/big.yaml"; expect 1 "quotas over the GPU's memory"
has err "big.yaml:4:5: field 'memory': the quotas of the slices on 0000:3b:00.0 add up to 16384 MiB with slice b; the GPU has 15360 MiB" "memory message"
[[ $(slices) == "$want" ]] && ok || bad "a refused file changed slices: $(slices)"

# rollback: carol's GPU has a directory where its region goes (a file would be rebuilt as a
# corrupt region), so creating her fails after alice was removed and bob recreated; both come
# back as they were, records included
rm -f "$tmp/host/run/vgpuctl/slices/0000:5e:00.0.shm"
mkdir -p "$tmp/host/run/vgpuctl/slices/0000:5e:00.0.shm"
printf 'version: 1\nslices:\n  - {name: bob, gpu: 3b:00.0, memory: 1G}\n  - {name: carol, gpu: 5e:00.0}\n' >"$tmp/fail.yaml"
V apply -f "$tmp/fail.yaml"; expect 1 "apply that fails half-way"
has err "(slice-create 0000:5e:00.0) failed: slice carol:" "failure names the step"
has err "every earlier step was rolled back" "rollback reported"
[[ $(slices) == "$want" ]] && ok || bad "slices after the rollback: $(slices)"
[[ $(ls "$records") == $'alice.json\nbob.json' ]] && ok || bad "records after the rollback: $(ls "$records")"
rmdir "$tmp/host/run/vgpuctl/slices/0000:5e:00.0.shm"

# a process in alice (the shim on the fake driver, holding 16 MiB): alice cannot change under it
slices=$tmp/host/run/vgpuctl/slices
asan=$(ldd "$TENANT" | awk '/libasan/ {print $3}')
mkfifo "$tmp/in"
LD_PRELOAD=${asan:+$asan:}$SHIM LD_LIBRARY_PATH=$FAKE_CUDA_DIR VGPU_SLICE_SHM=$slices/alice.slice VGPU_SLICE_SCHED=$slices/0000:3b:00.0.shm VGPU_SLICE=alice \
        "$TENANT" hold 16777216 <"$tmp/in" >"$tmp/hold" 3</dev/null &
holder=$!
exec 5>"$tmp/in"
for _ in $(seq 100); do [[ -s $tmp/hold ]] && break; sleep 0.05; done
[[ $(cat "$tmp/hold") == "rc=0" ]] && ok || bad "holder: '$(cat "$tmp/hold")'"
sed 's/memory: 64M/memory: 128M/' "$tmp/host.yaml" >"$tmp/grow.yaml"
V apply -f "$tmp/grow.yaml"; expect 1 "change a slice in use"
has err "slice alice on 0000:3b:00.0: memory 64 MiB -> 128 MiB, but 1 process uses it; a slice cannot change under running processes" "in-use message"
V slice show alice --json; expect 0 "show alice"
python3 -c "
import json; a = json.load(open('$tmp/out'))
assert (a['memory_bytes'], a['used_bytes'], a['processes']) == (64 << 20, 16 << 20, 1), a
" && ok || bad "alice while held: $(cat "$tmp/out")"
exec 5>&-
wait "$holder"
V apply -f "$tmp/grow.yaml"; expect 0 "change it once the process is gone"
V apply -f "$tmp/host.yaml"; expect 0 "and back"

# boot: /run is empty; apply --restore recreates every slice as recorded, the CDI spec with them
V slice create scratch --gpu 5e:00.0 --share 50% --scrub off; expect 0 "an imperative slice after the apply"
want2=$(slices)
V apply -f "$tmp/host.yaml"; expect 0 "record host.yaml as the state (scratch goes)"
V slice create scratch --gpu 5e:00.0 --share 50% --scrub off; expect 0 "scratch again, imperatively"
[[ $(slices) == "$want2" ]] && ok || bad "before the reboot: $(slices)"
cp "$cdi" "$tmp/cdi-before"
rm -rf "$tmp/host/run/vgpuctl/slices" "$cdi"
V slice list; expect 0 "list after the reboot"
has out "(no slices)" "the regions are gone"
V apply --restore; expect 0 "apply --restore"
has out "restored 3 slices from /var/lib/vgpuctl/slices" "restore says how many"
[[ $(slices) == "$want2" ]] && ok || bad "after restore: $(slices) (want $want2)"
cmp -s "$cdi" "$tmp/cdi-before" && ok || bad "CDI spec after restore: $(diff "$tmp/cdi-before" "$cdi")"
# the records are what the slices were before the reboot (every apply and every `slice` command
# keeps them): scratch, made after host.yaml was applied, comes back too and stays
V apply --restore; expect 0 "restore again"
grep -q "restored" "$tmp/out" && bad "a second restore restored something: $(cat "$tmp/out")" || ok


# records carry the slice objects' names and nulls (one name per fact); a record an older
# version wrote ("memory", "share": 0 for none) still restores, as it was
python3 -c "
import json; d = json.load(open('$records/scratch.json'))
assert d == {'name': 'scratch', 'gpu': '0000:5e:00.0', 'memory_bytes': None, 'share_percent': 50, 'policy': 'fixed-share', 'scrub': 'off'}, d
" && ok || bad "scratch's record: $(cat "$records/scratch.json")"
printf '{ "name": "old", "gpu": "0000:5e:00.0", "memory": 67108864, "share": 0, "policy": "equal-share", "scrub": "on-free" }\n' >"$records/old.json"
rm -rf "$tmp/host/run/vgpuctl/slices" "$cdi"
V apply --restore; expect 0 "restore with a record of an older version"
has out "restored 4 slices" "the old record is restored with the others"
slices | grep -x "old 0000:5e:00.0 equal-share None 67108864 on-free" >/dev/null && ok || bad "old record's slice: $(slices)"

summary
