#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# apply.sh — the declarative path's cost:
#  1. a no-op `vgpuctl apply` and `vgpuctl assert` on a generated host with 512 instances
#     (16 GPUs x 32 VFs x 24 types, every instance defined), medians by hyperfine; target < 20 ms;
#  2. in the real-kernel guest (tests/vm), define+start of 64 devices by one `vgpuctl apply`
#     against Debian's mdevctl doing the same (define + start per device), and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
VGPUCTL=${VGPUCTL:-build/src/vgpuctl/vgpuctl}
[[ -x $VGPUCTL ]] || { echo "apply.sh: build first ($VGPUCTL missing)" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "apply.sh: hyperfine missing (apt-get install hyperfine)" >&2; exit 1; }

base=/tmp; [[ -d /dev/shm && -w /dev/shm ]] && base=/dev/shm
work=$(mktemp -d $base/vgpuctl-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
host=$work/host
python3 tests/fixtures/gen-hosts.py --large "$host" --gpus 16 --vfs 32 --types 24 --instances 512 >/dev/null
# the running instances, as the file to apply; define them all (as a first apply would)
VGPU_ROOT=$host "$VGPUCTL" export >"$work/host.yaml"
VGPU_ROOT=$host "$VGPUCTL" apply -f "$work/host.yaml" >/dev/null
n=$(VGPU_ROOT=$host "$VGPUCTL" list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["instances"]))')
VGPU_ROOT=$host "$VGPUCTL" apply -f "$work/host.yaml" | grep -q "nothing to do" || { echo "apply.sh: second apply was not a no-op" >&2; exit 1; }
echo "host: $n instances, all defined; $(nproc) CPUs"
hyperfine -N -w 3 -r "${RUNS:-20}" --export-json "$work/hf.json" \
        -n apply_noop "env VGPU_ROOT=$host $VGPUCTL apply -f $work/host.yaml" \
        -n assert "env VGPU_ROOT=$host $VGPUCTL assert -f $work/host.yaml" >/dev/null
python3 - "$work/hf.json" <<'PY'
import json, sys
for x in json.load(open(sys.argv[1]))["results"]:
    ms = x["median"] * 1000
    print("%-10s %6.2f ms (median)  target < 20 ms: %s" % (x["command"], ms, "met" if ms < 20 else "NOT met"))
PY

echo "real kernel (QEMU guest, TCG: absolute times are slow, the ratio is the result):"
VM_SCENARIO_DIR=$PWD/bench/vm VGPUCTL=$VGPUCTL tests/vm/run.sh 2>&1 | grep -E '^# bench:|^not ok' | sed 's/^# bench: /  /'
