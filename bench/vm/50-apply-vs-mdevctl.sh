#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Inside the real-kernel guest: define+start 64 mbochs devices with one `vgpuctl apply` versus
# Debian's mdevctl (define + start per device, as an admin scripts it), side by side, 3 rounds
# each, every device removed and undefined between rounds. Prints "# bench: ..." lines.
. /vm/lib.sh
need_vgpuctl
command -v mdevctl >/dev/null || skip_all "no mdevctl in the guest"
N=64
now_ms() { awk '{printf "%d", $1 * 1000}' /proc/uptime; }
clean() {
	for d in /sys/bus/mdev/devices/*; do [ -e "$d" ] && echo 1 >$d/remove; done
	rm -f /etc/mdevctl.d/mbochs/*
}
printf 'version: 1\ngpus:\n  - parent: mbochs\n    devices:\n      - type: mbochs-small\n        count: %d\n' $N >/tmp/bench.yaml
best_v=999999 best_m=999999
for round in 1 2 3; do
	clean
	t0=$(now_ms); vgpuctl apply -f /tmp/bench.yaml >/dev/null 2>&1; rc=$?; t1=$(now_ms)
	chk "round $round: vgpuctl apply of $N devices" test $rc -eq 0 -a "$(ls /sys/bus/mdev/devices | wc -l)" -eq $N
	v=$((t1 - t0)); [ $v -lt $best_v ] && best_v=$v
	clean
	t0=$(now_ms)
	i=0; while [ $i -lt $N ]; do
		u=$(new_uuid); mdevctl define -u $u -p mbochs -t mbochs-small -a >/dev/null 2>&1 && mdevctl start -u $u >/dev/null 2>&1 || break
		i=$((i + 1))
	done
	t1=$(now_ms)
	chk "round $round: mdevctl define+start of $N devices" test "$(ls /sys/bus/mdev/devices | wc -l)" -eq $N
	m=$((t1 - t0)); [ $m -lt $best_m ] && best_m=$m
	note "bench: round $round: vgpuctl apply ${v} ms, mdevctl define+start ${m} ms"
done
clean
note "bench: best of 3: vgpuctl apply $best_v ms, mdevctl $best_m ms, ratio $(awk "BEGIN{printf \"%.1f\", $best_m / ($best_v ? $best_v : 1)}")x"
finish
