#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# scan-reads.sh — each command reads what it prints and nothing else, each file once (issue 11:
# "do less"). On a generated SR-IOV host, under strace with the plain read path (io_uring opens
# are invisible to strace): `list` touches no type directory (no attributes of the 12,000
# types, which only `types` prints) and walks no instance's whole path twice, a no-op `apply` or
# `assert` no IOMMU group, no type directory and no definition's fstat, and lists the mdev bus
# once; no command opens, stats or resolves the same path twice (directories aside).
# Needs VGPUCTL (set by tests/meson.build) and strace.
source "$(dirname "$0")/testlib.sh"
here=$(cd "$(dirname "$0")" && pwd)
command -v strace >/dev/null || skip "no strace"

python3 "$here/../fixtures/gen-hosts.py" --large "$tmp/large" --gpus 2 --vfs 8 --types 24 --instances 12 >/dev/null

# the host paths a run opens, stats or resolves: "DIRFD-PATH|PATH" per line (strace -y names
# each descriptor's path); the runtime directory (/run) is the slices' side, not the scan's.
# LeakSanitizer cannot run under ptrace (the ASan build aborts at exit), so leaks are left to
# the other tests there.
trace() {
        ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 VGPU_ROOT=$tmp/large VGPU_IO_URING=0 strace -f -qq -y -o "$tmp/trace" \
                -e trace=open,openat,openat2,readlink,readlinkat,stat,lstat,newfstatat,statx,access,faccessat2,getdents64 \
                "$VGPUCTL" "$@" >/dev/null 2>&1 || return 1
        python3 - "$tmp/trace" "$tmp/large" >"$tmp/paths" <<'PY'
import re, sys
root = sys.argv[2]
for line in open(sys.argv[1]):
    m = re.search(r'\b(?:open|openat|openat2|readlink|readlinkat|stat|lstat|newfstatat|statx|access|faccessat2)'
                  r'\((?:(AT_FDCWD|\d+)(?:<([^>]*)>)?, )?"([^"]*)"', line)
    if not m:
        continue
    base, path = m.group(2) or "", m.group(3)
    if "O_DIRECTORY" in line or not path:
        continue  # a directory listed (or fstat'ed) is not a file read
    where = path if path.startswith("/") else base + "|" + path
    if root in where and "/run/" not in where:
        print(where)
PY
}

for args in "list" "list --json"; do
        if ! trace $args; then
                bad "$args: failed under strace"
                continue
        fi
        [[ -s $tmp/paths ]] && ok || bad "$args: no host path seen in the trace (strace -y output changed?)"
        if grep -q 'mdev_supported_types' "$tmp/paths"; then
                bad "$args reads type directories it does not print: $(grep -m3 mdev_supported_types "$tmp/paths")"
        else
                ok
        fi
        dup=$(sort "$tmp/paths" | uniq -d | head -3)
        [[ -z $dup ]] && ok || bad "$args reads these twice: $dup"
        # an instance's links from its parent's directory, not along ../../../devices/... again
        long=$(grep -E '\|\.\./.*/(mdev_type|iommu_group)$' "$tmp/paths" | head -3)
        [[ -z $long ]] && ok || bad "$args walks the whole path to an instance's links: $long"
done

# a no-op apply (and assert) reads the instances' parent and type, nothing it does not compare:
# no IOMMU group (the planner reads one only for an instance it would remove), no type directory
# (a parent's registration comes from the /sys/class/mdev_bus listing), each path once
VGPU_ROOT=$tmp/large "$VGPUCTL" export | grep -v '^ *persistent: false$' >"$tmp/host.yaml"
VGPU_ROOT=$tmp/large "$VGPUCTL" apply -f "$tmp/host.yaml" >/dev/null || bad "apply: defining the instances failed"
for args in "apply -f $tmp/host.yaml" "assert -f $tmp/host.yaml"; do
        if ! trace $args; then
                bad "${args%% *}: failed under strace"
                continue
        fi
        grep -q '/sys/bus/mdev/devices' "$tmp/paths" && ok || bad "${args%% *}: no instance read in the trace"
        if grep -E -q 'iommu_group|mdev_supported_types' "$tmp/paths"; then
                bad "${args%% *} reads what a no-op does not need: $(grep -E -m3 'iommu_group|mdev_supported_types' "$tmp/paths")"
        else
                ok
        fi
        dup=$(sort "$tmp/paths" | uniq -d | head -3)
        [[ -z $dup ]] && ok || bad "${args%% *} reads these twice: $dup"
        # the store's listing says which definitions are regular files: no fstat of each
        stats=$(grep -E -c 'fstat[a-z]*\([0-9]+<[^>]*/etc/mdevctl\.d/[^>]+>, ""' "$tmp/trace")
        [[ $stats == 0 ]] && ok || bad "${args%% *} stats $stats definition files it has listed"
        # the PCI scan's listing of the mdev bus gives the parents too
        # (a call that strace -f splits into "<unfinished ...>" and "resumed" lines, as it does when
        # the instances are read on their thread meanwhile, counts once, by its result)
        listed=$(python3 - "$tmp/trace" <<'PY'
import re, sys
pending, n = {}, 0
for line in open(sys.argv[1]):
    pid = line.split(None, 1)[0]
    m = re.search(r'getdents64\(\d+<([^>]*)>', line)
    if m and "<unfinished" in line:
        pending[pid] = m.group(1)
        continue
    path = m.group(1) if m else (pending.pop(pid, None) if "getdents64 resumed" in line else None)
    r = re.search(r'= (\d+)\s*$', line)
    if path and path.endswith("/sys/class/mdev_bus") and r and int(r.group(1)) > 0:
        n += 1
print(n)
PY
)
        [[ $listed == 1 ]] && ok || bad "${args%% *} lists /sys/class/mdev_bus $listed times"
done

# types reads every type's attributes, and still each path once
if trace types --json; then
        grep -q 'mdev_supported_types' "$tmp/paths" && ok || bad "types: no type directory in the trace"
        dup=$(sort "$tmp/paths" | uniq -d | head -3)
        [[ -z $dup ]] && ok || bad "types --json reads these twice: $dup"
else
        bad "types --json: failed under strace"
fi

summary
