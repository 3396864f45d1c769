#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# doctor.sh — `vgpuctl doctor` from the outside, on fixture hosts: exit codes (1 on a failed
# check, 0 otherwise, 2 for usage), the text report, --json's shape and --check.
# Needs VGPUCTL, FIXTURES and NVML_DOUBLE (set by tests/meson.build).
source "$(dirname "$0")/testlib.sh"

# doctor HOST [ARGS...]: run it with the NVML double; stdout, stderr and rc land in $tmp.
doctor() {
        local host=$1
        shift
        VGPU_ROOT="$FIXTURES/$host" LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" doctor "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
}

# A healthy host: every check passes or skips; exit 0, nothing on stderr.
doctor nvidia-mdev
expect 0 "nvidia-mdev"
has out "PASS  privileges" "nvidia-mdev"
has out "PASS  thermal.margin      0000:3b:00.0  41 C" "nvidia-mdev"
has out "41 results: 35 passed, 0 warnings, 0 failed, 6 skipped" "nvidia-mdev tally"
[[ -s $tmp/err ]] && bad "nvidia-mdev: stderr not empty: $(cat "$tmp/err")" || ok

# Warnings alone do not fail the host.
doctor broken-no-root
expect 0 "broken-no-root (warn only)"
has out "WARN  privileges" "broken-no-root"

# A failing host: exit 1, evidence and remedy under the failure.
doctor broken-old-kernel
expect 1 "broken-old-kernel"
has out "FAIL  kernel.version" "broken-old-kernel"
has out "      evidence: /proc/sys/kernel/osrelease: 5.10.0-28-amd64" "broken-old-kernel"
has out "      remedy:   Install a kernel of version 5.15 or newer" "broken-old-kernel"
has out "1 failed" "broken-old-kernel tally"

# --json: an array of objects with exactly the fixed keys; the same exit code.
check_json() {
        python3 - "$tmp/out" "$@" <<'EOF'
import json, sys
path, want_id, want_status = sys.argv[1], sys.argv[2], sys.argv[3]
results = json.load(open(path))
assert isinstance(results, list) and results, "not a non-empty array"
keys = {"id", "status", "subject", "summary", "evidence", "remedy"}
for r in results:
    assert set(r) == keys, "keys %s" % sorted(r)
    assert r["status"] in ("pass", "warn", "fail", "skip"), r
    assert isinstance(r["summary"], str) and "\n" not in r["summary"], r
    assert isinstance(r["evidence"], str), r
    assert r["subject"] is None or isinstance(r["subject"], str), r
    assert (r["remedy"] is not None) == (r["status"] in ("warn", "fail")), r
got = [r["status"] for r in results if r["id"] == want_id]
assert got and all(s == want_status for s in got), "%s: %s" % (want_id, got)
EOF
}
doctor broken-old-kernel --json
expect 1 "broken-old-kernel --json"
check_json kernel.version fail && ok || bad "broken-old-kernel --json: bad JSON"
python3 -c 'import json,sys; json.load(sys.stdin)' <"$tmp/out" && ok || bad "broken-old-kernel --json does not parse"

doctor broken-group-shared-whole --pretty
expect 1 "broken-group-shared-whole --pretty"
check_json privileges pass && ok || bad "broken-group-shared-whole --pretty: bad JSON"
python3 - "$tmp/out" <<'EOF' && ok || bad "broken-group-shared-whole --pretty: subjects"
import json, sys
r = {(x["id"], x["subject"]): x for x in json.load(open(sys.argv[1]))}
assert r[("iommu.group_viable", "0000:60:00.0")]["status"] == "fail"
assert r[("iommu.group_viable", "0000:3b:00.0")]["status"] == "pass"
assert r[("privileges", None)]["status"] == "pass"
assert "e1000e" in r[("iommu.group_viable", "0000:60:00.0")]["evidence"]
EOF

# A host without a GPU: no crash, a "no GPU" skip per GPU check.
doctor empty --json
expect 1 "empty --json (IOMMU off)"
python3 - "$tmp/out" <<'EOF' && ok || bad "empty --json: no-GPU skips"
import json, sys
r = json.load(open(sys.argv[1]))
mdev = [x for x in r if x["id"] == "mdev.types"]
assert len(mdev) == 1 and mdev[0]["status"] == "skip" and mdev[0]["subject"] is None
assert mdev[0]["summary"] == "no GPU"
EOF

# --check: only the named checks, and only they decide the exit code.
doctor broken-old-kernel --check privileges,kernel.headers
expect 0 "--check privileges,kernel.headers"
grep -q "kernel.version" "$tmp/out" && bad "--check: kernel.version printed though not asked for" || ok
has out "2 results: 2 passed" "--check tally"
doctor broken-old-kernel -c kernel.version --json
expect 1 "-c kernel.version --json"
python3 -c 'import json,sys; r=json.load(sys.stdin); assert [x["id"] for x in r] == ["kernel.version"]' <"$tmp/out" && ok ||
        bad "-c kernel.version --json: not exactly one result"
doctor broken-old-kernel -c privileges -c kernel.headers,tools.present --json
expect 0 "repeated -c"
python3 -c 'import json,sys; r=json.load(sys.stdin); assert [x["id"] for x in r] == ["privileges", "kernel.headers", "tools.present"], r' <"$tmp/out" && ok ||
        bad "repeated -c: not the three asked for"

# Usage errors: exit 2 and one line on stderr.
expect_usage() {
        expect 2 "$1"
        [[ $(wc -l <"$tmp/err") == 1 ]] && ok || bad "$1: stderr is not one line: $(cat "$tmp/err")"
        grep -q '^vgpuctl: ' "$tmp/err" && ok || bad "$1: stderr does not start with 'vgpuctl: '"
        [[ -s $tmp/out ]] && bad "$1: printed a report" || ok
}
doctor nvidia-mdev --bogus
expect_usage "--bogus"
doctor nvidia-mdev --check nosuch.check
expect_usage "--check nosuch.check"
grep -q "nosuch.check" "$tmp/err" && ok || bad "--check nosuch.check: message does not name the id"
doctor nvidia-mdev --check
expect_usage "--check without an argument"
doctor nvidia-mdev extra-argument
expect_usage "extra argument"

# Without NVML the NVIDIA-only readings are skipped, not failed.
VGPU_ROOT="$FIXTURES/nvidia-mdev" LD_LIBRARY_PATH= "$VGPUCTL" doctor --json >"$tmp/out" 2>"$tmp/err"
rc=$?
expect 0 "nvidia-mdev without NVML"
check_json nvidia.persistence skip && ok || bad "nvidia-mdev without NVML: persistence not skipped"

# nvidia.guest_driver: one result per running vGPU from NVML's host/guest verdict; the same
# facts in `show BDF --json` and `list --json`. Three vGPUs on 3b:00.0: a compatible guest driver,
# one the host's driver cannot run (limited by the guest driver), and a guest without a driver.
G1=8e5a3bd2-1c1f-4f51-9d40-6a2c1f0b0001 G2=8e5a3bd2-1c1f-4f51-9d40-6a2c1f0b0002 G3=8e5a3bd2-1c1f-4f51-9d40-6a2c1f0b0003
cp -a "$FIXTURES/nvidia-mdev" "$tmp/guest-host"
printf '%s\n' "gpu.0.vgpu.0.mdev_uuid=$G1" "gpu.0.vgpu.0.guest_driver=550.127.05" \
        "gpu.0.vgpu.1.mdev_uuid=$G2" "gpu.0.vgpu.1.guest_driver=470.256.02" "gpu.0.vgpu.1.guest_compat_limit=2" \
        "gpu.0.vgpu.2.mdev_uuid=$G3" >>"$tmp/guest-host/nvml.conf"
VGPU_ROOT="$tmp/guest-host" LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" doctor --check nvidia.guest_driver >"$tmp/out" 2>"$tmp/err"
rc=$?
expect 1 "guest drivers: an incompatible one fails"
has out "PASS  nvidia.guest_driver $G1 guest driver 550.127.05 runs with host driver 550.127.06" "compatible guest"
has out "FAIL  nvidia.guest_driver $G2 guest driver 470.256.02 does not run with host driver 550.127.06 (limited by: guest_driver)" "incompatible guest"
has out "remedy:   Install in the guest a driver of the branch the host's 550.127.06 vGPU manager supports" "incompatible guest remedy"
has out "SKIP  nvidia.guest_driver $G3 no guest driver loaded" "guest without a driver"
has out "3 results: 1 passed, 0 warnings, 1 failed, 1 skipped" "guest drivers tally"
VGPU_ROOT="$tmp/guest-host" LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" show 3b:00.0 >"$tmp/out" 2>"$tmp/err" && ok || bad "show 3b:00.0: exit $?"
has out "  vGPU $G1: guest driver 550.127.05 (compatible)" "show: compatible guest"
has out "  vGPU $G2: guest driver 470.256.02 (incompatible)" "show: incompatible guest"
has out "  vGPU $G3: no guest driver loaded" "show: guest without a driver"
here=$(dirname "$0")
for cmd in "show 0000:3b:00.0 --json" "list --json"; do
        VGPU_ROOT="$tmp/guest-host" LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" $cmd >"$tmp/out" 2>"$tmp/err" && ok ||
                bad "$cmd on the guest-driver host: exit $?"
        python3 "$here/validate.py" "$here/../../doc/schema/${cmd%% *}.schema.json" "$tmp/out" && ok ||
                bad "$cmd with guest drivers does not match ${cmd%% *}.schema.json"
        python3 - "$tmp/out" "$G1" "$G2" "$G3" <<'PY' && ok || bad "$cmd: guest driver members"
import json, sys
d = json.load(open(sys.argv[1]))
gpus = d if isinstance(d, list) else d.get("gpus", [d])
vgpus = {v["mdev_uuid"]: v for g in gpus if g.get("nvml") for v in g["nvml"]["vgpus"]}
want = {sys.argv[2]: ("550.127.05", "compatible", []), sys.argv[3]: ("470.256.02", "incompatible", ["guest_driver"]),
        sys.argv[4]: (None, "unknown", [])}
for u, (ver, verdict, limits) in want.items():
    v = vgpus[u]
    got = (v["guest_driver_version"], v["guest_driver_compatibility"], v["guest_driver_compatibility_limits"])
    assert got == (ver, verdict, limits), (u, got)
PY
done

# show UUID: the instance as list has it, with NVML's entry for it running (here b1e5...e01 of the
# fixture, with a guest driver); an instance NVML does not list has "vgpu": null.
I1=b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01
printf '%s\n' "gpu.0.vgpu.3.mdev_uuid=$I1" "gpu.0.vgpu.3.guest_driver=550.127.05" >>"$tmp/guest-host/nvml.conf"
VGPU_ROOT="$tmp/guest-host" LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" show "$I1" >"$tmp/out" 2>"$tmp/err" && ok || bad "show $I1: exit $?"
has out "Guest driver:          550.127.05 (compatible)" "show UUID: the guest driver and the verdict"
has out "Parent:                0000:3b:00.0" "show UUID: the parent"
VGPU_ROOT="$tmp/guest-host" LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" show "$I1" --json >"$tmp/out" 2>"$tmp/err" && ok ||
        bad "show $I1 --json: exit $?"
python3 "$here/validate.py" "$here/../../doc/schema/show-instance.schema.json" "$tmp/out" && ok ||
        bad "show UUID --json does not match show-instance.schema.json"
python3 -c "
import json, sys
d = json.load(open('$tmp/out'))
assert d['uuid'] == '$I1' and d['parent'] == '0000:3b:00.0' and d['vgpu']['guest_driver_version'] == '550.127.05', d
assert d['vgpu']['guest_driver_compatibility'] == 'compatible', d
" && ok || bad "show UUID --json: the instance and its guest driver"
VGPU_ROOT="$tmp/guest-host" LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" show 00000000-0000-4000-8000-000000000000 >"$tmp/out" 2>"$tmp/err"
rc=$?
expect 1 "show of an unknown UUID"

summary
