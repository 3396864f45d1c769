#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# inventory.sh — `vgpuctl types --json` and `vgpuctl list --json` against Debian's mdevctl
# (`mdevctl types --dumpjson`, `mdevctl list -d`) on the same generated large SR-IOV host:
# 16 GPUs x 32 VFs, each VF an mdev parent of 24 types (12,288 types), 256 instances.
#
# mdevctl 1.2 ignores MDEVCTL_ENV_ROOT, so it runs in a private mount namespace with the fake
# /sys and /etc/mdevctl.d bind-mounted over the real ones (needs root). Prints the medians and
# the ratios; targets: types >= 10x faster than mdevctl, list under 10 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
VGPUCTL=${VGPUCTL:-build/src/vgpuctl/vgpuctl}
RUNS=${RUNS:-15}
[[ -x $VGPUCTL ]] || { echo "inventory.sh: build first ($VGPUCTL missing)" >&2; exit 1; }
command -v mdevctl >/dev/null || { echo "inventory.sh: mdevctl missing (apt-get install mdevctl)" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "inventory.sh: needs root for the mount namespace mdevctl runs in" >&2; exit 1; }

work=$(mktemp -d /tmp/vgpuctl-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 tests/fixtures/gen-hosts.py --large "$work/host" --gpus 16 --vfs 32 --types 24 --instances 256 >/dev/null
# mdevctl refuses to start without its script directories
mkdir -p "$work/host/etc/mdevctl.d/scripts.d/callouts" "$work/host/etc/mdevctl.d/scripts.d/notifiers"

ntypes=$(VGPU_ROOT="$work/host" "$VGPUCTL" types --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
ninst=$(VGPU_ROOT="$work/host" "$VGPUCTL" list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["instances"]))')
echo "host: $work/host, $ntypes types, $ninst instances, $(nproc) CPUs, $RUNS runs each (median)"

abs_vgpuctl=$(readlink -f "$VGPUCTL")
unshare -m --propagation private /bin/bash -s "$work" "$abs_vgpuctl" "$RUNS" <<'INNER' | tee "$work/results"
set -euo pipefail
work=$1 vgpuctl=$2 runs=$3
mount --bind "$work/host/sys" /sys
mkdir -p /etc/mdevctl.d
mount --bind "$work/host/etc/mdevctl.d" /etc/mdevctl.d
# sanity: both tools see the same number of types
m=$(mdevctl types --dumpjson | python3 -c 'import json,sys; print(sum(len(v) for p in json.load(sys.stdin) for v in p.values()))')
echo "mdevctl sees $m types"
python3 "$(pwd)/bench/timecmd.py" -n "$runs" \
        "vgpuctl_types=VGPU_ROOT=$work/host $vgpuctl types --json" \
        "mdevctl_types=mdevctl types --dumpjson" \
        "vgpuctl_list=VGPU_ROOT=$work/host $vgpuctl list --json" \
        "mdevctl_list=mdevctl list -d"
INNER

python3 - "$work/results" <<'PY'
import sys
r = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) == 4 and f[0].count("_") == 1:
        r[f[0]] = (float(f[1]), int(f[3]))
def show(a, b, what):
    (ta, ma), (tb, mb) = r[a], r[b]
    print("%-6s vgpuctl %7.2f ms %6.1f MiB | mdevctl %7.2f ms %6.1f MiB | vgpuctl is %.1fx faster" %
          (what, ta, ma / 1024, tb, mb / 1024, tb / ta))
show("vgpuctl_types", "mdevctl_types", "types")
show("vgpuctl_list", "mdevctl_list", "list")
t = r["vgpuctl_types"][0]; m = r["mdevctl_types"][0]; l = r["vgpuctl_list"][0]
print("targets: types >= 10x faster: %s (%.1fx); list < 10 ms: %s (%.2f ms)" %
      ("met" if m / t >= 10 else "NOT met", m / t, "met" if l < 10 else "NOT met", l))
PY
