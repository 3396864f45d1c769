#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# inventory.sh — `vgpuctl types --json` and `vgpuctl list --json` against Debian's mdevctl
# (`mdevctl types --dumpjson`, `mdevctl list -d`) on the same generated large SR-IOV host:
# 16 GPUs x 32 VFs, each VF an mdev parent of 24 types (12,288 types), 256 instances.
#
# mdevctl 1.2 ignores MDEVCTL_ENV_ROOT, so it runs in a private mount namespace with the fake
# /sys and /etc/mdevctl.d bind-mounted over the real ones (needs root). Prints the medians and
# the ratios (medians from hyperfine, peak RSS); targets: types >= 10x faster than mdevctl, list under 10 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
VGPUCTL=${VGPUCTL:-build/src/vgpuctl/vgpuctl}
RUNS=${RUNS:-15}
[[ -x $VGPUCTL ]] || { echo "inventory.sh: build first ($VGPUCTL missing)" >&2; exit 1; }
for tool in mdevctl hyperfine /usr/bin/time; do
        command -v $tool >/dev/null || { echo "inventory.sh: $tool missing (apt-get install ${tool##*/})" >&2; exit 1; }
done
[[ $(id -u) -eq 0 ]] || { echo "inventory.sh: needs root for the mount namespace mdevctl runs in" >&2; exit 1; }

# tmpfs when there is one: the tree is 100k small files, slow to create on a busy disk
base=/tmp; [[ -d /dev/shm && -w /dev/shm ]] && base=/dev/shm
work=$(mktemp -d $base/vgpuctl-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 tests/fixtures/gen-hosts.py --large "$work/host" --gpus 16 --vfs 32 --types 24 --instances 256 >/dev/null
# mdevctl refuses to start without its script directories
mkdir -p "$work/host/etc/mdevctl.d/scripts.d/callouts" "$work/host/etc/mdevctl.d/scripts.d/notifiers"
# every instance also defined (persistent), so `mdevctl list -d` has as much to show as `list`
python3 - "$work/host" <<'PY'
import json, os, sys
root = sys.argv[1]
devs = root + "/sys/bus/mdev/devices"
for uuid in sorted(os.listdir(devs)):
    target = os.readlink(os.path.join(devs, uuid))
    parent = target.rstrip("/").split("/")[-2]
    mtype = os.path.basename(os.readlink(os.path.join(devs, uuid, "mdev_type")))
    d = os.path.join(root, "etc/mdevctl.d", parent)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, uuid), "w") as f:
        json.dump({"mdev_type": mtype, "start": "auto", "attrs": []}, f)
PY

ntypes=$(VGPU_ROOT="$work/host" "$VGPUCTL" types --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
ninst=$(VGPU_ROOT="$work/host" "$VGPUCTL" list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["instances"]))')
echo "host: $work/host, $ntypes types, $ninst instances, $(nproc) CPUs, $RUNS runs each (median)"

abs_vgpuctl=$(readlink -f "$VGPUCTL")
unshare -m --propagation private /bin/bash -s "$work" "$abs_vgpuctl" "$RUNS" <<'INNER'
set -euo pipefail
work=$1 vgpuctl=$2 runs=$3
mount --bind "$work/host/sys" /sys
mkdir -p /etc/mdevctl.d
mount --bind "$work/host/etc/mdevctl.d" /etc/mdevctl.d
# sanity: both tools see the same number of types
m=$(mdevctl types --dumpjson | python3 -c 'import json,sys; print(sum(len(v) for p in json.load(sys.stdin) for v in p.values()))')
echo "mdevctl sees $m types"
cd "$work"
# -N: no shell in between; both tools pay the same exec of `env`
hyperfine -N -w 3 -r "$runs" --export-json "$work/hf.json" \
        -n vgpuctl_types "env VGPU_ROOT=$work/host $vgpuctl types --json" \
        -n mdevctl_types "env mdevctl types --dumpjson" \
        -n vgpuctl_list "env VGPU_ROOT=$work/host $vgpuctl list --json" \
        -n mdevctl_list "env mdevctl list -d" >/dev/null
# peak memory (KiB) of one run each
rss() { echo "$1 $( { /usr/bin/time -f %M "${@:2}" >/dev/null; } 2>&1 | tail -1)" >> "$work/rss"; }
VGPU_ROOT=$work/host rss vgpuctl_types "$vgpuctl" types --json
rss mdevctl_types mdevctl types --dumpjson
VGPU_ROOT=$work/host rss vgpuctl_list "$vgpuctl" list --json
rss mdevctl_list mdevctl list -d
INNER

python3 - "$work/hf.json" "$work/rss" <<'PY'
import json, sys
rss = dict(l.split() for l in open(sys.argv[2]))
r = {x["command"]: (x["median"] * 1000, int(rss[x["command"]])) for x in json.load(open(sys.argv[1]))["results"]}
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
