#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# inventory.sh — `vgpuctl list/show/types/report` and the general CLI contract from the
# outside, on every fixture host: --json validates against doc/schema/*.json, table and JSON
# carry the same data, exit codes 0/1/2 with one-line messages, and a report unpacks into a
# tree that vgpuctl reads exactly like the original host.
# Needs VGPUCTL, FIXTURES and NVML_DOUBLE (set by tests/meson.build).
source "$(dirname "$0")/testlib.sh"

here=$(cd "$(dirname "$0")" && pwd)
schema=$here/../../doc/schema
# run HOST ARGS...: vgpuctl on a fixture with the NVML double; out/err/rc in $tmp
run() {
        local host=$1; shift
        VGPU_ROOT="$FIXTURES/$host" LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
}
validate() {    # validate SCHEMA WHAT
        if python3 "$here/validate.py" "$schema/$1.schema.json" "$tmp/out"; then ok; else bad "$2: does not match $1.schema.json"; fi
}
jq_py() {       # jq_py PYTHON-EXPRESSION-ON-d: prints the value
        python3 -c "import json,sys; d=json.load(open('$tmp/out')); print($1)"
}
one_line_err() {
        if [[ $(wc -l <"$tmp/err") -eq 1 ]] && grep -q '^vgpuctl: ' "$tmp/err"; then ok; else bad "$1: stderr is not one 'vgpuctl: ' line: $(cat "$tmp/err")"; fi
}

# Every host's outputs are kept in $tmp/hosts/HOST and checked against the schemas and each other
# by one python3 after the loop (check_hosts): a python3 per check cost more than the vgpuctl runs.
hosts=$(cd "$FIXTURES" && ls -d */ | tr -d /)
for h in $hosts; do
        o=$tmp/hosts/$h
        mkdir -p "$o"
        run "$h" list --json;   expect 0 "$h list --json";   cp "$tmp/out" "$o/list.json"
        run "$h" types --json;  expect 0 "$h types --json";  cp "$tmp/out" "$o/types.json"
        run "$h" doctor --json; [[ $rc == 0 || $rc == 1 ]] && ok || bad "$h doctor exit $rc"; cp "$tmp/out" "$o/doctor.json"
        run "$h" list;          expect 0 "$h list (table)";  cp "$tmp/out" "$o/list.txt"
        run "$h" types;         expect 0 "$h types (table)"; cp "$tmp/out" "$o/types.txt"

        # report: unpacked, it reads the same as the host it came from (its outputs above)
        run "$h" report -o "$tmp/r.tar.gz"; expect 0 "$h report"
        rm -rf "$tmp/r" && mkdir "$tmp/r" && tar -xzf "$tmp/r.tar.gz" -C "$tmp/r" || bad "$h: report does not unpack"
        for c in "list --json" "types --json"; do
                VGPU_ROOT="$tmp/r" LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" $c >"$tmp/re.json" 2>&1
                cmp -s "$tmp/re.json" "$o/${c% --json}.json" && ok || bad "$h: report tree gives another '$c'"
        done
        [[ -f $tmp/r/vgpuctl/list.json && -f $tmp/r/vgpuctl/types.json && -f $tmp/r/vgpuctl/doctor.json ]] && ok ||
                bad "$h: report lacks vgpuctl/{list,types,doctor}.json"
done

# check_hosts: per host, list/types/doctor --json against their schemas, the list table shows
# every GPU and instance the JSON has, the types table has a row per type of the JSON. One line
# per check, "ok" or "bad WHAT", counted here as the checks above are.
check_hosts() {
        python3 - "$here" "$schema" "$tmp/hosts" $hosts <<'PY'
import json, os, sys
sys.path.insert(0, sys.argv[1])
from validate import validate
schema, top, hosts = sys.argv[2], sys.argv[3], sys.argv[4:]
def verdict(cond, what):
    print("ok" if cond else "bad " + what, flush=True)
def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError:
        return None
for h in hosts:
    o = os.path.join(top, h)
    docs = {c: load(os.path.join(o, c + ".json")) for c in ("list", "types", "doctor")}
    for c in ("list", "types", "doctor"):
        err = "not JSON" if docs[c] is None else validate(c, docs[c], schema)
        if err:
            print("%s/%s.json: %s" % (o, c, err), file=sys.stderr)
        verdict(err is None, "%s %s: does not match %s.schema.json" % (h, c, c))
    table = open(os.path.join(o, "list.txt")).read()
    try:
        d = docs["list"]
        names = [g["bdf"] for g in d["gpus"]] + [i["uuid"] for i in d["instances"] if i["uuid"]]
    except (TypeError, KeyError) as e:     # the schema check failed already; say why here too
        names = []
        verdict(False, "%s: no GPUs and instances in list --json to look for in the table (%r)" % (h, e))
    for b in names:
        verdict(b in table, "%s: table lacks %s" % (h, b))
    rows = [l for l in open(os.path.join(o, "types.txt")).read().splitlines()
            if not l.startswith("PARENT ") and not l.startswith("(no vGPU types")]
    n_json = len(docs["types"]) if isinstance(docs["types"], list) else "(not a JSON array)"
    verdict(n_json == len(rows), "%s: types table has %d rows, JSON %s" % (h, len(rows), n_json))
PY
}
while read -r verdict what; do
        [[ $verdict == ok ]] && ok || bad "$what"
done < <(check_hosts || echo "bad the checks of the hosts' outputs failed to run")

# exact values on the NVIDIA mdev host, from the outside
run nvidia-mdev types 3b:00.0 --json; expect 0 "types PARENT (short BDF, option after it)"
[[ $(jq_py "[t for t in d if t['type']=='nvidia-232'][0]") == "{'parent': '0000:3b:00.0', 'type': 'nvidia-232', 'name': 'GRID T4-4Q', 'device_api': 'vfio-pci', 'available_instances': 2, 'max_instances': 4, 'framebuffer_bytes': 4294967296, 'kind': 'mdev', 'description': 'num_heads=4, frl_config=60, framebuffer=4096M, max_resolution=7680x4320, max_instance=4'}" ]] && ok ||
        bad "nvidia-232 on 3b:00.0: $(jq_py "[t for t in d if t['type']=='nvidia-232'][0]")"
# the host driver NVML names (the double's driver_version), on every NVIDIA GPU in list and show
run nvidia-mdev list --json; expect 0 "list --json"
[[ $(jq_py "sorted({g['nvml']['driver_version'] for g in d['gpus'] if g['nvml']})") == "['550.127.06']" ]] && ok ||
        bad "list --json: nvml.driver_version $(jq_py "[g['nvml'] and g['nvml']['driver_version'] for g in d['gpus']]")"
run nvidia-mdev show 3b:00.0 --json; expect 0 "show --json"
[[ $(jq_py "d['nvml']['driver_version']") == 550.127.06 ]] && ok || bad "show --json: nvml.driver_version $(jq_py "d['nvml']")"
run nvidia-mdev show 3b:00.0; expect 0 "show"
grep -qE '^  host driver: +550\.127\.06$' "$tmp/out" && ok || bad "show: no host driver line: $(grep -i driver "$tmp/out")"
run nvidia-mdev types --available --json; expect 0 "types --available"
[[ $(jq_py "all(t['available_instances'] > 0 for t in d)") == True ]] && ok || bad "types --available shows exhausted types"
run nvidia-mdev list --json
[[ $(jq_py "[(g['bdf'], g['driver'], g['iommu_group'], g['link']['width_max'], g['nvml']['temperature_c'] if g['nvml'] else None) for g in d['gpus']]") == "[('0000:03:00.0', 'ast', 2, None, None), ('0000:3b:00.0', 'nvidia', 4, 16, 41), ('0000:5e:00.0', 'nvidia', 6, 16, 47), ('0000:af:00.0', 'nvidia', 8, 16, 33)]" ]] && ok ||
        bad "nvidia-mdev gpus: $(jq_py "[(g['bdf'], g['driver'], g['iommu_group'], g['link']['width_max'], g['nvml']['temperature_c'] if g['nvml'] else None) for g in d['gpus']]")"
run nvidia-sriov-vfio list --json
[[ $(jq_py "[(g['bdf'], g['physfn'], g['sriov']) for g in d['gpus']][:2]") == "[('0000:41:00.0', None, {'total_vfs': 32, 'num_vfs': 4}), ('0000:41:00.4', '0000:41:00.0', None)]" ]] && ok ||
        bad "sriov-vfio PF/VF: $(jq_py "[(g['bdf'], g['physfn'], g['sriov']) for g in d['gpus']][:2]")"
[[ $(jq_py "d['instances']") == "[{'uuid': None, 'parent': '0000:41:00.4', 'type': '1152', 'iommu_group': 9, 'domain': None}]" ]] && ok || bad "vendor-VFIO instance: $(jq_py "d['instances']")"
run nvidia-mdev show 0000:5e:00.0 --json; expect 0 "show"
[[ $(jq_py "(d['bdf'], d['vgpu_types'], [i['uuid'] for i in d['instances']], d['bars'][1]['size_bytes'])") == "('0000:5e:00.0', 17, ['c7a1d2e3-8b4f-4a5c-9d6e-7f8091a2b3c4'], 268435456)" ]] && ok ||
        bad "show 5e:00.0: $(jq_py "(d['bdf'], d['vgpu_types'], [i['uuid'] for i in d['instances']], d['bars'][1]['size_bytes'])")"

# list --defined: mdevctl's store, with running state; a corrupt file is skipped with a warning
run nvidia-mdev list --defined --json; expect 0 "list --defined"; validate list "list --defined"
[[ $(jq_py "[(x['uuid'], x['auto_start'], x['running']) for x in d['definitions']]") == "[('b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01', True, True), ('b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e02', True, True), ('c7a1d2e3-8b4f-4a5c-9d6e-7f8091a2b3c4', True, True)]" ]] && ok ||
        bad "list --defined: $(jq_py "d['definitions']")"
cp -a "$FIXTURES/nvidia-mdev" "$tmp/host" && echo '{"mdev_type": 1' >"$tmp/host/etc/mdevctl.d/0000:3b:00.0/00000000-0000-4000-8000-000000000000"
VGPU_ROOT="$tmp/host" "$VGPUCTL" list -d >"$tmp/out" 2>"$tmp/err"; rc=$?
expect 0 "list -d with a corrupt definition"
grep -q "^vgpuctl: warning: $tmp/host/etc/mdevctl.d/0000:3b:00.0/00000000-0000-4000-8000-000000000000: not valid JSON, skipped$" "$tmp/err" && ok ||
        bad "corrupt definition not reported with its path: $(cat "$tmp/err")"
[[ $(grep -c "nvidia-23[23] .*auto" "$tmp/out") == 3 ]] && ok || bad "the good definitions vanished with the corrupt one"

# define/undefine on a copy (they only write the store); create needs a kernel: tests/vm
u=11111111-2222-4333-8444-555555555555
V define --parent 3b:00.0 --type nvidia-232 --uuid $u --auto --attr nvidia/vgpu_params=frame_rate_limiter=0
expect 0 "define"
python3 -c "import json,sys; d=json.load(open('$tmp/host/etc/mdevctl.d/0000:3b:00.0/$u')); sys.exit(d != {'mdev_type': 'nvidia-232', 'start': 'auto', 'attrs': [{'nvidia/vgpu_params': 'frame_rate_limiter=0'}]})" && ok ||
        bad "define wrote: $(cat "$tmp/host/etc/mdevctl.d/0000:3b:00.0/$u")"
V define --parent 0000:3b:00.0 --type nvidia-232 --uuid $u --auto --attr nvidia/vgpu_params=frame_rate_limiter=0
expect 0 "define again"; grep -q "already defined" "$tmp/out" && ok || bad "define again did not say 'already defined'"
V define --parent 3b:00.0 --type nvidia-233 --uuid $u
expect 1 "define differently"; grep -q "type nvidia-233, not nvidia-232; start manual, not auto; attributes differ" "$tmp/err" && ok || bad "define conflict message: $(cat "$tmp/err")"
V define --parent 3b:00.0 --type nvidia-999
expect 1 "define of an unknown type"; grep -q "it offers: nvidia-222" "$tmp/err" && ok || bad "unknown type message: $(cat "$tmp/err")"
V create --parent 3b:00.0 --type nvidia-230
expect 1 "create without room"
grep -q "no available instances of nvidia-230 on 0000:3b:00.0: 0 left of 16; instances present: b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01 (nvidia-232), b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e02 (nvidia-232)" "$tmp/err" && ok ||
        bad "no-room message: $(cat "$tmp/err")"
V create --parent 3b:00.0 --type nvidia-232 --uuid b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01
expect 0 "create of an existing identical instance"; grep -q "already exists" "$tmp/out" && ok || bad "create again did not say so"
V create --parent 5e:00.0 --type nvidia-232 --uuid b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01
expect 1 "create with a UUID in use elsewhere"
V undefine $u; expect 0 "undefine"; [[ ! -e $tmp/host/etc/mdevctl.d/0000:3b:00.0/$u ]] && ok || bad "undefine left the file"
V undefine $u; expect 1 "undefine again"
V vfs 3b:00.0 2; expect 1 "vfs on a GPU without SR-IOV"
V vfs 3b:00.0 --count 2; expect 1 "vfs --count on a GPU without SR-IOV"
has err "3b:00.0" "vfs --count message"
V vfs 3b:00.0; expect 2 "vfs without a count"
V vfs 3b:00.0 2 --count 2; expect 2 "vfs with the count twice"
V vfs 3b:00.0 --count lots; expect 2 "vfs --count not a number"
V create --type nvidia-232; expect 2 "create without --parent"
V create --parent 3b:00.0 --type nvidia-232 --attr novalue; expect 2 "--attr without ="
V remove 0000:3b:00.0; expect 1 "remove of a BDF that is no vendor-VFIO VF"
# names that become paths: nothing may lead a write out of the store or the device's directory
before=$(find "$tmp/host" | sort | md5sum)
V define --parent ../../../tmp --type nvidia-232 --uuid $u; expect 1 "define with a parent that is a path"
grep -q "^vgpuctl: parent '../../../tmp': not a device name$" "$tmp/err" && ok || bad "define ../: $(cat "$tmp/err")"
V define --parent 3b:00.0 --type ../x --uuid $u; expect 1 "define with a type that is a path"
V define --parent 3b:00.0 --type nvidia-232 --uuid $u --attr ../../../../proc/sys/kernel/core_pattern=x
expect 1 "define with an attribute outside the device"
grep -q "attribute '../../../../proc/sys/kernel/core_pattern': not a path below the device" "$tmp/err" && ok || bad "attr ../: $(cat "$tmp/err")"
V create --parent 3b:00.0 --type nvidia-232 --attr /etc/passwd=x; expect 1 "create with an absolute attribute"
[[ $(find "$tmp/host" | sort | md5sum) == "$before" ]] && ok || bad "a refused define or create changed the host"
# definition files that are not plain mdevctl JSON are skipped with the reason
d=$tmp/host/etc/mdevctl.d/0000:3b:00.0
echo '{"mdev_type": "nvidia-232"} {"x": 1}' >"$d/00000000-0000-4000-8000-0000000000a1"
echo '{"mdev_type": "nvidia-232", "attrs": [{"../../../x": "1"}]}' >"$d/00000000-0000-4000-8000-0000000000a2"
echo '{"mdev_type": "../nvidia-232"}' >"$d/00000000-0000-4000-8000-0000000000a3"
V list -d; expect 0 "list -d with unsafe definitions"
grep -q "0000000000a1: trailing data after the JSON object, skipped$" "$tmp/err" && ok || bad "trailing data: $(cat "$tmp/err")"
grep -q "0000000000a2: an \"attrs\" key is not a path below the device, skipped$" "$tmp/err" && ok || bad "attr key: $(cat "$tmp/err")"
grep -q "0000000000a3: field \"mdev_type\" is not a type name, skipped$" "$tmp/err" && ok || bad "type: $(cat "$tmp/err")"
rm -f "$d"/00000000-0000-4000-8000-0000000000a?

# exit codes and messages
run nvidia-mdev show 0000:3b:00.1;  expect 1 "show of an absent BDF"; one_line_err "show absent"
run nvidia-mdev show nonsense;      expect 2 "show of a malformed BDF"; one_line_err "show malformed"
run nvidia-mdev types 0000:03:00.0; expect 1 "types of a non-parent"; one_line_err "types non-parent"
run nvidia-mdev list extra;         expect 2 "list with an argument"; one_line_err "list extra"
run nvidia-mdev list --bogus;       expect 2 "unknown option"; one_line_err "unknown option"
run nvidia-mdev frobnicate;         expect 2 "unknown command"; one_line_err "unknown command"
run nvidia-mdev report -o;          expect 2 "option without its argument"; one_line_err "missing argument"
run nvidia-mdev report -o /nonexistent/dir/r.tgz; expect 1 "report to an unwritable place"; one_line_err "report unwritable"
run nvidia-mdev;                    expect 2 "no command"
run nvidia-mdev --help;             expect 0 "--help"; grep -q "^  doctor" "$tmp/out" && ok || bad "--help lacks doctor"
run nvidia-mdev types --help;       expect 0 "types --help"; grep -q -- "--available" "$tmp/out" && ok || bad "types --help lacks --available"
run nvidia-mdev --version;          expect 0 "--version"; grep -qE '^vgpuctl [0-9]+\.[0-9]+\.[0-9]+$' "$tmp/out" && ok || bad "--version: $(cat "$tmp/out")"
# no NVML library at all is normal
VGPU_ROOT="$FIXTURES/nvidia-mdev" LD_LIBRARY_PATH= "$VGPUCTL" list --json >"$tmp/out" 2>"$tmp/err"; rc=$?
expect 0 "list without NVML"
[[ $(jq_py "[g['nvml'] for g in d['gpus']]") == "[None, None, None, None]" ]] && ok || bad "NVML readings without NVML"

summary
