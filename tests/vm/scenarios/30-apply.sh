#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vgpuctl apply/assert/export on the real kernel: apply, re-apply (no change), edit (kept
# UUIDs survive), over-capacity refused before any change, a failure mid-apply rolled back,
# kill -9 mid-apply then apply again converges with nothing leaked, boot restore.
. /vm/lib.sh
need_vgpuctl
BUS=/sys/class/mdev_bus
counts() { for t in $BUS/*/mdev_supported_types/*; do echo "$t $(cat $t/available_instances)"; done; }
# instances of TYPE now (from sysfs, not from vgpuctl)
n_of() { n=0; for d in /sys/bus/mdev/devices/*; do [ -e "$d" ] && [ "$(link_name $d/mdev_type)" = "$1" ] && n=$((n + 1)); done; echo $n; }
uuids_of() { for d in /sys/bus/mdev/devices/*; do [ -e "$d" ] && [ "$(link_name $d/mdev_type)" = "$1" ] && echo "${d##*/}"; done | sort; }
state() { { counts; ls /sys/bus/mdev/devices/ 2>/dev/null; ls -R /etc/mdevctl.d 2>/dev/null; } | sort; }

cat >/tmp/a.yaml <<'Y'
version: 1
gpus:
  - parent: mbochs
    devices:
      - type: mbochs-medium
        count: 3
  - parent: mdpy
    devices:
      - type: mdpy-hd
        count: 2
Y
vgpuctl apply -f /tmp/a.yaml >/tmp/out 2>&1
chk "apply: exit 0" test $? -eq 0
note "$(head -3 /tmp/out | tr '\n' ' ')"
chk "apply: 3 mbochs-medium" test "$(n_of mbochs-medium)" = 3
chk "apply: 2 mdpy-hd" test "$(n_of mdpy-hd)" = 2
chk "apply: 5 definitions in mdevctl's store" test "$(ls /etc/mdevctl.d/mbochs /etc/mdevctl.d/mdpy | grep -c -- -)" = 5
chk "apply: recorded for boot restore" test -f /var/lib/vgpuctl/host.yaml
before=$(state)
vgpuctl apply -f /tmp/a.yaml >/tmp/out 2>&1
chk "re-apply: exit 0" test $? -eq 0
chk "re-apply: says nothing to do" grep -q "nothing to do" /tmp/out
chk "re-apply: nothing changed" test "$(state)" = "$before"
vgpuctl assert -f /tmp/a.yaml >/dev/null 2>&1
chk "assert: exit 0 when the host matches" test $? -eq 0
if command -v mdevctl >/dev/null; then
	chk "mdevctl list -d: sees the 5 definitions" test "$(mdevctl list -d | grep -c -e mbochs-medium -e mdpy-hd)" = 5
fi

note "---- edit: 2 medium + 1 large keeps two of the medium UUIDs"
old=$(uuids_of mbochs-medium)
cat >/tmp/b.yaml <<'Y'
version: 1
gpus:
  - parent: mbochs
    devices:
      - type: mbochs-medium
        count: 2
      - type: mbochs-large
        count: 1
  - parent: mdpy
    devices:
      - type: mdpy-hd
        count: 2
Y
vgpuctl assert -f /tmp/b.yaml >/tmp/out 2>&1
chk "assert of the edit: exit 1 (differs)" test $? -eq 1
chk "assert of the edit: shows the removal" grep -q "^- remove" /tmp/out
vgpuctl apply -f /tmp/b.yaml >/tmp/out 2>&1
chk "apply edit: exit 0" test $? -eq 0
new=$(uuids_of mbochs-medium)
kept=$(for u in $new; do echo "$old" | grep -qx "$u" && echo "$u"; done | wc -l)
chk "apply edit: 2 medium, both among the old UUIDs" test "$(n_of mbochs-medium)" = 2 -a "$kept" = 2
chk "apply edit: 1 large" test "$(n_of mbochs-large)" = 1
chk "apply edit: mdpy untouched" test "$(n_of mdpy-hd)" = 2
removed=$(for u in $old; do echo "$new" | grep -qx "$u" || echo "$u"; done)
chk "apply edit: the removed one's definition is gone too" test ! -e /etc/mdevctl.d/mbochs/$removed
vgpuctl assert -f /tmp/b.yaml >/dev/null 2>&1
chk "assert after the edit: exit 0" test $? -eq 0

note "---- over capacity: refused before any change"
before=$(state)
printf 'version: 1\ngpus:\n  - parent: mdpy\n    devices:\n      - type: mdpy-hd\n        count: 2\n      - type: mdpy-vga\n        count: 3\n' >/tmp/c.yaml
vgpuctl apply -f /tmp/c.yaml >/tmp/out 2>&1
chk "over capacity: exit 1" test $? -eq 1
note "$(cat /tmp/out)"
chk "over capacity: nothing was changed" test "$(state)" = "$before"
printf 'version: 1\ngpus:\n  - parent: mdpy\n    devices:\n      - type: mdpy-hd\n        count: two\n' >/tmp/c.yaml
vgpuctl apply -f /tmp/c.yaml >/tmp/out 2>&1
chk "bad file: exit 1 naming file:line:column and field" grep -q "/tmp/c.yaml:6:16: field 'count'" /tmp/out
chk "bad file: nothing was changed" test "$(state)" = "$before"

note "---- a failure mid-apply is rolled back"
cat >/tmp/d.yaml <<'Y'
version: 1
gpus:
  - parent: mtty
    devices:
      - type: mtty-1
        count: 2
      - type: mtty-2
        count: 1
        attrs:
          - no_such_attribute: "1"
Y
vgpuctl apply -f /tmp/d.yaml >/tmp/out 2>&1
chk "failing apply: exit 1" test $? -eq 1
note "$(cat /tmp/out)"
chk "failing apply: says earlier steps were rolled back" grep -q "every earlier step was rolled back" /tmp/out
chk "failing apply: host exactly as before" test "$(state)" = "$before"

note "---- kill -9 mid-apply, then apply again converges"
cat >/tmp/e.yaml <<'Y'
version: 1
gpus:
  - parent: mtty
    devices:
      - type: mtty-1
        count: 20
  - parent: mbochs
    devices:
      - type: mbochs-small
        count: 64
Y
vgpuctl apply -f /tmp/e.yaml >/dev/null 2>&1 &
pid=$!
# kill it once it has started creating, long before it is done
i=0; while [ "$(ls /sys/bus/mdev/devices | wc -l)" -lt 8 ]; do
	i=$((i + 1)); [ $i -gt 20000 ] && break
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
partial="$(n_of mtty-1) mtty-1, $(n_of mbochs-small) mbochs-small, $(n_of mbochs-medium) mbochs-medium"
note "killed mid-way: $partial running"
chk "the kill landed mid-way (not all 84 created)" test "$(n_of mtty-1)" -lt 20 -o "$(n_of mbochs-small)" -lt 64
vgpuctl apply -f /tmp/e.yaml >/tmp/out 2>&1
chk "apply after kill -9: exit 0" test $? -eq 0
chk "converged: 20 mtty-1" test "$(n_of mtty-1)" = 20
chk "converged: 64 mbochs-small, nothing else on mbochs" test "$(n_of mbochs-small)" = 64 -a "$(n_of mbochs-medium)" = 0 -a "$(n_of mbochs-large)" = 0
chk "converged: mdpy (not in this file) untouched" test "$(n_of mdpy-hd)" = 2
leaked=0
for f in /etc/mdevctl.d/mtty/* /etc/mdevctl.d/mbochs/*; do [ -e "/sys/bus/mdev/devices/${f##*/}" ] || leaked=$((leaked + 1)); done
chk "nothing leaked: every definition on mtty/mbochs runs" test $leaked -eq 0
chk "nothing leaked: definitions = instances" test "$(ls /etc/mdevctl.d/mtty /etc/mdevctl.d/mbochs | grep -c -- -)" = 84
vgpuctl assert -f /tmp/e.yaml >/dev/null 2>&1
chk "assert after convergence: exit 0" test $? -eq 0

note "---- export, and boot restore"
vgpuctl export >/tmp/x.yaml 2>&1
chk "export: apply of the export changes nothing" sh -c 'vgpuctl apply -f /tmp/x.yaml | grep -q "nothing to do"'
keep=$(ls /sys/bus/mdev/devices | sort)
for d in /sys/bus/mdev/devices/*; do echo 1 >$d/remove; done   # as after a reboot
chk "all devices gone (simulated reboot)" test -z "$(ls /sys/bus/mdev/devices)"
vgpuctl apply --restore >/tmp/out 2>&1
chk "apply --restore: exit 0" test $? -eq 0
chk "apply --restore: the same UUIDs are back" test "$(ls /sys/bus/mdev/devices | sort)" = "$keep"
vgpuctl apply --restore >/tmp/out 2>&1
chk "apply --restore again: nothing to do" grep -q "nothing to do" /tmp/out

note "---- an instance a VM holds is not removed without --force"
u=$(ls /sys/bus/mdev/devices | head -1)
g=$(link_name /sys/bus/mdev/devices/$u/iommu_group)
p=$(basename "$(dirname "$(readlink -f /sys/bus/mdev/devices/$u)")")
sh -c "exec 3</dev/vfio/$g; sleep 600" &
holder=$!
sleep 0.2
before=$(state)
printf 'version: 1\ngpus:\n  - parent: %s\n    devices: []\n' "$p" >/tmp/f.yaml
vgpuctl apply -f /tmp/f.yaml >/tmp/out 2>&1
chk "held instance: apply refuses, exit 1" test $? -eq 1
chk "held instance: says a VM holds it" grep -q "is in use by a running VM (/dev/vfio/$g is open)" /tmp/out
chk "held instance: nothing changed" test "$(state)" = "$before"
kill $holder; wait $holder 2>/dev/null
vgpuctl apply -f /tmp/f.yaml --dry-run >/tmp/out 2>&1
chk "released: the plan removes it now" grep -q "remove     $u" /tmp/out

# clean up for later scenarios
printf 'version: 1\ngpus:\n  - all: true\n    devices: []\n' >/tmp/z.yaml
vgpuctl apply -f /tmp/z.yaml >/dev/null 2>&1
chk "empty config for all parents: everything removed" test -z "$(ls /sys/bus/mdev/devices)"
finish
