#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# inventory.sh — `vgpuctl types --json` and `vgpuctl list --json` against Debian's mdevctl
# (`mdevctl types --dumpjson`, `mdevctl list -d`) on the same generated large SR-IOV host:
# 16 GPUs x 32 VFs, each VF an mdev parent of 24 types (12,288 types), 256 instances.
#
# mdevctl 1.2 ignores MDEVCTL_ENV_ROOT, so it runs in a private mount namespace with the fake
# /sys and /etc/mdevctl.d bind-mounted over the real ones (needs root). Per command: the median
# wall time (hyperfine), the syscalls (strace -c -f, total), the peak RSS (/usr/bin/time) and the
# ratio to mdevctl; `vgpuctl --version` is the floor (process start), and the *_plain rows are
# the same commands with VGPU_IO_URING=0 (sysfs reads one by one, basic/sysfs-batch.h).
# Targets (issue 11): types >= 10x faster than mdevctl (aim 15x), list --json < 10 ms (aim 5 ms),
# the table form of list at most 1.25x its --json. On a shared machine the times are noisy:
# raise RUNS, and read the syscall counts, which are exact.
set -euo pipefail
cd "$(dirname "$0")/.."
VGPUCTL=${VGPUCTL:-build/src/vgpuctl/vgpuctl}
RUNS=${RUNS:-40}
[[ -x $VGPUCTL ]] || { echo "inventory.sh: build first ($VGPUCTL missing)" >&2; exit 1; }
for tool in mdevctl hyperfine strace /usr/bin/time; do
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
unshare -m --propagation private /bin/bash -s "$work" "$abs_vgpuctl" "$RUNS" "$PWD/bench/measure.sh" <<'INNER'
set -euo pipefail
work=$1 vgpuctl=$2 runs=$3
source "$4"
mount --bind "$work/host/sys" /sys
mkdir -p /etc/mdevctl.d
mount --bind "$work/host/etc/mdevctl.d" /etc/mdevctl.d
# sanity: both tools see the same number of types
m=$(mdevctl types --dumpjson | python3 -c 'import json,sys; print(sum(len(v) for p in json.load(sys.stdin) for v in p.values()))')
echo "mdevctl sees $m types"
cd "$work"
# the environment is set on hyperfine, strace and time (bench_measure), not timed (measure.sh)
v="VGPU_ROOT=$work/host"
p="VGPU_IO_URING=0 VGPU_ROOT=$work/host"
names=(vgpuctl_version vgpuctl_types vgpuctl_types_plain mdevctl_types vgpuctl_list vgpuctl_list_plain
       vgpuctl_list_table mdevctl_list)
cmds=("$v $vgpuctl --version" "$v $vgpuctl types --json" "$p $vgpuctl types --json" "mdevctl types --dumpjson"
      "$v $vgpuctl list --json" "$p $vgpuctl list --json" "$v $vgpuctl list" "mdevctl list -d")
bench_measure "$work" "$runs"
INNER

python3 - "$work/hf.json" "$work/rss" "$work/syscalls" <<'PY'
import json, sys
rss = dict(l.split() for l in open(sys.argv[2]))
calls = dict(l.split() for l in open(sys.argv[3]))
res = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ms = {k: x["median"] * 1000 for k, x in res.items()}
mdevctl = {"types": "mdevctl_types", "list": "mdevctl_list"}
# CPU: user + system, mean over the runs (hyperfine gives no median of it); on a loaded machine
# it moves less than the wall time
print("%-20s %10s %10s %8s %9s %8s %s" % ("command", "median ms", "min ms", "CPU ms", "syscalls", "RSS MiB",
                                          "vs mdevctl (median)"))
for k in res:
    ref = mdevctl.get(k.split("_")[1]) if k.startswith("vgpuctl_") else None
    ratio = "%.1fx faster" % (ms[ref] / ms[k]) if ref in ms else ""
    cpu = (res[k]["user"] + res[k]["system"]) * 1000
    print("%-20s %10.2f %10.2f %8.1f %9s %8.1f %s" % (k, ms[k], res[k]["min"] * 1000, cpu, calls.get(k, "?"),
                                                      int(rss[k]) / 1024, ratio))
def target(ok, what):
    print("%s: %s" % ("target met" if ok else "target NOT met", what))
t = ms["mdevctl_types"] / ms["vgpuctl_types"]
target(t >= 10, "types --json >= 10x faster than mdevctl types --dumpjson (%.1fx; aim 15x: %s)" %
       (t, "met" if t >= 15 else "not met"))
l = ms["vgpuctl_list"]
target(l < 10, "list --json < 10 ms (%.2f ms; aim 5 ms: %s; --version alone %.2f ms)" %
       (l, "met" if l <= 5 else "not met", ms["vgpuctl_version"]))
tt = ms["vgpuctl_list_table"] / l
target(tt <= 1.25, "list (table) at most 1.25x list --json (%.2fx: %.2f ms)" % (tt, ms["vgpuctl_list_table"]))
PY
