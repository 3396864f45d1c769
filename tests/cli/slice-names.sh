#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# slice-names.sh — the rules every slice obeys on every path (CLI, host.yaml, records, regions
# an older vgpuctl made): CDI's device-name rule, the quotas of a GPU within its memory, and a
# CDI spec of the lowest version its contents need (Debian 12's podman reads up to 0.5.0).
# Needs VGPUCTL, FIXTURES, NVML_DOUBLE (tests/meson.build).
source "$(dirname "$0")/testlib.sh"
nvml=1          # V runs vgpuctl with the NVML double
fixture_copy nvidia-baremetal
cdi=$tmp/host/etc/cdi/vgpuctl.yaml
records=$tmp/host/var/lib/vgpuctl/slices
spec() { python3 -c "
import yaml; d = yaml.safe_load(open('$cdi')); print(d['cdiVersion'], *[x['name'] for x in d['devices']])"; }

# CDI: a device name starts and ends with a letter or digit; '.'/'..' are no record file names
for name in trail- _under .dot .. .hidden a_ b.; do
        V slice create "$name" --gpu 3b:00.0 --memory 64M; expect 1 "slice create '$name'"
        has err "starting and ending with a letter or digit" "refusal of '$name' says the rule"
done
[[ ! -e $cdi && -z $(ls -A "$records" 2>/dev/null) ]] && ok || bad "a refused name left something: $(ls -A "$records" "$cdi" 2>&1)"
V slice create a --gpu 3b:00.0 --memory 64M; expect 0 "a one-letter name"
V slice create my_slice.v-2 --gpu 3b:00.0 --memory 64M; expect 0 "'_', '.', '-' inside a name"
# the lowest version the contents need: 0.3.0, and 0.5.0 once a name starts with a digit
[[ $(spec) == "0.3.0 a my_slice.v-2" ]] && ok || bad "spec: $(spec)"
V slice create 7up --gpu 3b:00.0 --memory 64M; expect 0 "a name starting with a digit"
[[ $(spec) == "0.5.0 7up a my_slice.v-2" ]] && ok || bad "spec with 7up: $(spec)"
V slice remove 7up; expect 0 "remove 7up"
[[ $(spec) == "0.3.0 a my_slice.v-2" ]] && ok || bad "spec without 7up: $(spec)"

# host.yaml: the same rule, with file, line and column
for name in trail- -x .hidden ..; do
        printf 'version: 1\nslices:\n  - gpu: 3b:00.0\n    name: "%s"\n' "$name" >"$tmp/host.yaml"
        V apply -f "$tmp/host.yaml"; expect 1 "host.yaml with slice '$name'"
        has err "$tmp/host.yaml:4:11: field 'name': '$name' is not a slice name" "host.yaml '$name' names the place"
done

# a name CDI refuses written into the GPU's scheduler by hand (no vgpuctl can make one: a slice's
# region is named after it) poisons no spec: the next create rebuilds the GPU from the records
region=$tmp/host/run/vgpuctl/slices/0000:3b:00.0.shm
python3 -c "
d = bytearray(open('$region', 'rb').read()); i = d.find(b'my_slice.v-2\0')
assert i >= 0; d[i:i + 13] = b'my_slice.v2-\0'; open('$region', 'r+b').write(d)"
V slice list; expect 1 "list with a hand-written name"
V slice create b --gpu 3b:00.0 --memory 64M; expect 0 "create next to a hand-written bad name"
[[ $(spec) == "0.3.0 a b my_slice.v-2" ]] && ok || bad "spec after the rebuild: $(spec)"
V slice remove my_slice.v-2; expect 0 "remove my_slice.v-2"

# an old record with a name that is no longer one is reported at restore, not silently skipped
mkdir -p "$records"
printf '{"name": ".hidden", "gpu": "0000:3b:00.0", "memory": 0, "share": 0, "policy": "equal-share", "scrub": "on-free"}\n' >"$records/.hidden.json"
V apply --restore; expect 1 "restore with a hidden record"
has err ".hidden.json: field \"name\" missing, not a slice name" "restore names the hidden record"
rm -f "$records/.hidden.json"

# the quotas of a GPU's slices within its 15 GiB: 10G + 10G is refused as apply would
V slice create big1 --gpu 3b:00.0 --memory 10G; expect 0 "10G on the 15G GPU"
V slice create big2 --gpu 3b:00.0 --memory 10G; expect 1 "another 10G on the 15G GPU"
has err "the quotas of the slices on 0000:3b:00.0 add up to 20608 MiB with slice big2; the GPU has 15360 MiB" "the sum is named"
V slice create big2 --gpu 5e:00.0 --memory 10G; expect 0 "10G on the other GPU"
V slice create big1 --gpu 3b:00.0 --memory 10G; expect 0 "big1 again: nothing to do"
# what export writes, apply takes (as it would not when quotas overran)
V export; expect 0 "export"
cp "$tmp/out" "$tmp/exported.yaml"
V assert -f "$tmp/exported.yaml"; expect 0 "the export asserts"
summary
